"""Issue 14's layers against torch's modules with the same weights: forward, and the
gradients of the input and of every parameter (skipped without torch)."""
import numpy as np
import pytest

import autograd_core as ag
import nn
from autograd_core.ops.convolution import ours_conv_weight_to_torch, torch_conv_weight_to_ours

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(14)


def same(array):
    return array


def channels_first(array):
    """ours [N, *spatial, C] -> torch's [N, C, *spatial]."""
    return np.moveaxis(array, -1, 1)


def channels_last(array):
    """torch's [N, C, *spatial] -> ours [N, *spatial, C]."""
    return np.moveaxis(array, 1, -1)


def conv_map(name, array):
    return torch_conv_weight_to_ours(array) if name == "weight" else array


def check(ours, theirs, x, to_theirs=same, to_ours=same, weight_map=lambda name, array: array,
          rtol=1e-9, atol=1e-11):
    """Copy theirs' parameters into ours (weight_map maps a torch array to our layout),
    run both on x (ours' layout; to_theirs converts), compare the outputs and, for one
    random upstream gradient, the gradients of the input and of every parameter."""
    theirs = theirs.double()
    for name, param in theirs.named_parameters():
        getattr(ours, name).data[...] = weight_map(name, param.detach().numpy())
    x_ours = ag.Tensor(x, requires_grad=True)
    x_theirs = torch.tensor(np.ascontiguousarray(to_theirs(x)), requires_grad=True)
    y_ours, y_theirs = ours(x_ours), theirs(x_theirs)
    np.testing.assert_allclose(y_ours.data, to_ours(y_theirs.detach().numpy()), rtol=rtol, atol=atol)
    upstream = RNG.standard_normal(y_ours.shape)
    y_ours.backward(upstream)
    y_theirs.backward(torch.tensor(np.ascontiguousarray(to_theirs(upstream))))
    np.testing.assert_allclose(x_ours.grad.data, to_ours(x_theirs.grad.numpy()), rtol=rtol, atol=atol)
    for name, param in theirs.named_parameters():
        np.testing.assert_allclose(getattr(ours, name).grad.data, weight_map(name, param.grad.numpy()),
                                   rtol=rtol, atol=atol, err_msg=name)
    return y_ours


@pytest.mark.parametrize("options", [dict(), dict(stride=2, padding=2, dilation=2), dict(groups=2, padding="same"),
                                     dict(padding=1, padding_mode="circular"), dict(padding=2, padding_mode="reflect"),
                                     dict(bias=False, padding="valid")])
def test_conv1d_matches_torch(options):
    ours = nn.Conv1d(4, 6, 3, dtype=np.float64, **options)
    theirs = torch.nn.Conv1d(4, 6, 3, **options)
    check(ours, theirs, RNG.standard_normal((2, 9, 4)), channels_first, channels_last, conv_map)
    np.testing.assert_array_equal(ours_conv_weight_to_torch(ours.weight.data), theirs.weight.detach().numpy())


@pytest.mark.parametrize("options", [dict(), dict(stride=2, padding=1, output_padding=1),
                                     dict(stride=(2, 1), groups=2, dilation=2), dict(bias=False, padding=(1, 0))])
def test_conv_transpose2d_matches_torch(options):
    ours = nn.ConvTranspose2d(4, 6, (3, 2), dtype=np.float64, **options)
    theirs = torch.nn.ConvTranspose2d(4, 6, (3, 2), **options)
    check(ours, theirs, RNG.standard_normal((2, 4, 5, 4)), channels_first, channels_last, conv_map)


def test_conv_transpose2d_output_size_matches_torch():
    ours = nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1, dtype=np.float64)
    theirs = torch.nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1).double()
    ours.weight.data[...] = torch_conv_weight_to_ours(theirs.weight.detach().numpy())
    ours.bias.data[...] = theirs.bias.detach().numpy()
    x = RNG.standard_normal((1, 4, 4, 2))
    expected = theirs(torch.tensor(channels_first(x).copy()), output_size=[8, 8]).detach().numpy()
    np.testing.assert_allclose(ours(ag.Tensor(x), output_size=(8, 8)).data, channels_last(expected), rtol=1e-10)


def test_default_initialisation_bounds_match_torch():
    # torch's default init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for both; fan_in from torch's layout
    for ours, fan_in in ((nn.Conv1d(4, 6, 3, groups=2), 2 * 3), (nn.ConvTranspose2d(4, 6, 3, groups=2), 3 * 3 * 3)):
        for param in (ours.weight, ours.bias):
            assert np.abs(param.data).max() <= 1 / np.sqrt(fan_in) + 1e-7
            assert np.abs(param.data).max() > 0.5 / np.sqrt(fan_in)


@pytest.mark.parametrize("make", [
    lambda t: t.Upsample(scale_factor=2), lambda t: t.Upsample(size=(5, 7), mode="bilinear"),
    lambda t: t.Upsample(scale_factor=1.5, mode="bicubic", align_corners=True),
    lambda t: t.AdaptiveAvgPool2d((3, 2)), lambda t: t.AdaptiveAvgPool2d((None, 3)), lambda t: t.AdaptiveMaxPool2d(2),
    lambda t: t.Dropout2d(0.5).eval(), lambda t: t.AlphaDropout(0.5).eval()])
def test_2d_settings_layers_match_torch(make):
    check(make(nn), make(torch.nn), RNG.standard_normal((2, 4, 6, 3)), channels_first, channels_last)


@pytest.mark.parametrize("make", [
    lambda t: t.MaxPool1d(3, stride=2, padding=1), lambda t: t.MaxPool1d(2, ceil_mode=True),
    lambda t: t.AvgPool1d(3, stride=2, padding=1, count_include_pad=False), lambda t: t.AvgPool1d(2),
    lambda t: t.AdaptiveAvgPool1d(3), lambda t: t.AdaptiveMaxPool1d(4)])
def test_1d_pools_match_torch(make):
    check(make(nn), make(torch.nn), RNG.standard_normal((2, 7, 3)), channels_first, channels_last)


ACTIVATIONS = [
    lambda t: t.GELU(), lambda t: t.GELU(approximate="tanh"), lambda t: t.SiLU(), lambda t: t.Mish(),
    lambda t: t.Hardswish(), lambda t: t.Hardsigmoid(), lambda t: t.SELU(), lambda t: t.CELU(0.7),
    lambda t: t.Softsign(), lambda t: t.Hardtanh(-0.5, 1.5), lambda t: t.ReLU6(), lambda t: t.LogSigmoid(),
    lambda t: t.Softplus(), lambda t: t.Softplus(beta=0.5, threshold=1.0), lambda t: t.Softmin(dim=1),
    lambda t: t.GLU(), lambda t: t.GLU(dim=1), lambda t: t.PReLU(), lambda t: t.PReLU(4, init=0.1)]


@pytest.mark.parametrize("make", ACTIVATIONS)
def test_activation_modules_match_torch(make):
    theirs = make(torch.nn)
    if isinstance(theirs, torch.nn.PReLU):  # a learned slope per channel, not the init for all
        theirs.weight.data = torch.tensor(RNG.uniform(0.05, 0.5, theirs.weight.shape), dtype=torch.float32)
    x = RNG.standard_normal((3, 6, 4)) * 4
    # PReLU's channels: ours the last dimension, torch's dimension 1
    layout = (channels_first, channels_last) if isinstance(theirs, torch.nn.PReLU) else (same, same)
    # torch's hardsigmoid and celu backward kernels take their constants (1/6, 1/alpha) as
    # float32 even for doubles: their gradients are float32-exact only, ours are float64's
    rtol = 1e-6 if isinstance(theirs, (torch.nn.Hardsigmoid, torch.nn.CELU)) else 1e-9
    check(make(nn) if not isinstance(theirs, torch.nn.PReLU) else _prelu64(theirs), theirs, x, *layout, rtol=rtol)


def _prelu64(theirs):
    return nn.PReLU(theirs.num_parameters, dtype=np.float64)


def test_unflatten_matches_torch():
    check(nn.Unflatten(1, (2, -1)), torch.nn.Unflatten(1, (2, -1)), RNG.standard_normal((3, 8, 2)))


def test_embedding_matches_torch_with_padding_idx_and_max_norm():
    table = RNG.standard_normal((7, 3)) * 2
    indices = np.array([[1, 3, 3, 0], [6, 1, 2, 3]])
    for options in (dict(padding_idx=3), dict(max_norm=1.5), dict(max_norm=2.0, norm_type=1.0, padding_idx=0)):
        ours = nn.Embedding.from_pretrained(table, freeze=False, **options)
        theirs = torch.nn.Embedding.from_pretrained(torch.tensor(table), freeze=False, **options)
        y_ours, y_theirs = ours(indices), theirs(torch.tensor(indices))
        np.testing.assert_allclose(y_ours.data, y_theirs.detach().numpy(), rtol=1e-12)
        upstream = RNG.standard_normal(y_ours.shape)
        y_ours.backward(upstream)
        y_theirs.backward(torch.tensor(upstream))
        np.testing.assert_allclose(ours.weight.grad.data, theirs.weight.grad.numpy(), rtol=1e-12)
        # max_norm changed both tables in place, alike
        np.testing.assert_allclose(ours.weight.data, theirs.weight.detach().numpy(), rtol=1e-12)
    ours, theirs = nn.Embedding(5, 2, padding_idx=-2), torch.nn.Embedding(5, 2, padding_idx=-2)
    assert ours.padding_idx == theirs.padding_idx == 3
    assert set(ours.state_dict()) == set(theirs.state_dict())


# ---- bidirectional RNN / LSTM / GRU and LSTM proj_size ----------------------------------------
RECURRENT = [("RNN", dict(bidirectional=True, num_layers=2)), ("GRU", dict(bidirectional=True)),
             ("LSTM", dict(bidirectional=True, num_layers=2)), ("LSTM", dict(proj_size=3)),
             ("LSTM", dict(proj_size=2, bidirectional=True, num_layers=2)),
             ("GRU", dict(bidirectional=True, num_layers=2, batch_first=False))]


@pytest.mark.parametrize("kind, options", RECURRENT)
@pytest.mark.parametrize("with_lengths", [False, True])
@pytest.mark.parametrize("with_state", [False, True])
def test_recurrent_directions_and_projection_match_torch(kind, options, with_lengths, with_state):
    ours = getattr(nn, kind)(4, 5, dtype=np.float64, **options)
    theirs = getattr(torch.nn, kind)(4, 5, **dict(options, batch_first=options.get("batch_first", True))).double()
    assert [name for name, _ in ours.named_parameters()] == [name for name, _ in theirs.named_parameters()]
    for name, param in theirs.named_parameters():
        assert getattr(ours, name).shape == tuple(param.shape), name
        getattr(ours, name).data[...] = param.detach().numpy()
    batch_first = options.get("batch_first", True)
    batch, steps = 3, 6
    x = RNG.standard_normal((batch, steps, 4) if batch_first else (steps, batch, 4))
    lengths = np.array([6, 2, 4])
    layers = options.get("num_layers", 1) * (2 if options.get("bidirectional") else 1)
    out_size = options.get("proj_size", 0) or 5
    state = None
    if with_state:
        h0 = RNG.standard_normal((layers, batch, out_size))
        state = (h0, RNG.standard_normal((layers, batch, 5))) if kind == "LSTM" else h0
    as_ours = (lambda s: tuple(ag.Tensor(v, requires_grad=True) for v in s)) if kind == "LSTM" else \
        (lambda s: ag.Tensor(s, requires_grad=True))
    as_theirs = (lambda s: tuple(torch.tensor(v, requires_grad=True) for v in s)) if kind == "LSTM" else \
        (lambda s: torch.tensor(s, requires_grad=True))
    state_ours = None if state is None else as_ours(state)
    state_theirs = None if state is None else as_theirs(state)
    x_ours, x_theirs = ag.Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    y_ours, final_ours = ours(x_ours, state_ours, lengths=lengths if with_lengths else None)
    if with_lengths:
        packed = torch.nn.utils.rnn.pack_padded_sequence(x_theirs, torch.tensor(lengths), batch_first=batch_first,
                                                         enforce_sorted=False)
        y_packed, final_theirs = theirs(packed, state_theirs)
        y_theirs, _ = torch.nn.utils.rnn.pad_packed_sequence(y_packed, batch_first=batch_first, total_length=steps)
    else:
        y_theirs, final_theirs = theirs(x_theirs, state_theirs)
    finals_ours = final_ours if kind == "LSTM" else (final_ours,)
    finals_theirs = final_theirs if kind == "LSTM" else (final_theirs,)
    np.testing.assert_allclose(y_ours.data, y_theirs.detach().numpy(), rtol=1e-9, atol=1e-11)
    for a, b in zip(finals_ours, finals_theirs):
        np.testing.assert_allclose(a.data, b.detach().numpy(), rtol=1e-9, atol=1e-11)
    # one backward through the outputs and the final states
    upstream = [RNG.standard_normal(t.shape) for t in (y_ours, *finals_ours)]
    loss_ours = sum((t * ag.Tensor(u)).sum() for t, u in zip((y_ours, *finals_ours), upstream))
    loss_theirs = sum((t * torch.tensor(u)).sum() for t, u in zip((y_theirs, *finals_theirs), upstream))
    loss_ours.backward()
    loss_theirs.backward()
    np.testing.assert_allclose(x_ours.grad.data, x_theirs.grad.numpy(), rtol=1e-8, atol=1e-10)
    for name, param in theirs.named_parameters():
        np.testing.assert_allclose(getattr(ours, name).grad.data, param.grad.numpy(), rtol=1e-8, atol=1e-10,
                                   err_msg=name)
    if with_state:
        for a, b in zip(state_ours if kind == "LSTM" else (state_ours,),
                        state_theirs if kind == "LSTM" else (state_theirs,)):
            np.testing.assert_allclose(a.grad.data, b.grad.numpy(), rtol=1e-8, atol=1e-10)
