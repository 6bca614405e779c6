"""The normalization layers (nn/normalization.py) against a hand-written numpy reference
(always) and torch's modules with the same weights (where torch is installed; torch's
channels-first layout moved to channels-last): outputs and gradients over several
training steps, running statistics and num_batches_tracked after them, eval mode; float64
gradcheck through each layer; and the errors bad input gets."""
import numpy as np
import pytest

import autograd_core as ag
import nn
from autograd_core import Tensor, gradcheck


# ---- numpy references -----------------------------------------------------------------------
class _ReferenceBatchNorm:
    """torch's BatchNorm rules in plain numpy, channels last."""

    def __init__(self, channels, momentum=0.1, eps=1e-5, weight=None, bias=None):
        self.mean, self.var, self.batches = np.zeros(channels), np.ones(channels), 0
        self.momentum, self.eps = momentum, eps
        self.weight = np.ones(channels) if weight is None else weight
        self.bias = np.zeros(channels) if bias is None else bias

    def train(self, x):
        flat = x.reshape(-1, x.shape[-1])
        mean, var = flat.mean(axis=0), flat.var(axis=0)
        self.batches += 1
        factor = 1.0 / self.batches if self.momentum is None else self.momentum
        self.mean = (1 - factor) * self.mean + factor * mean
        self.var = (1 - factor) * self.var + factor * var * len(flat) / (len(flat) - 1)
        return (x - mean) / np.sqrt(var + self.eps) * self.weight + self.bias

    def eval(self, x):
        return (x - self.mean) / np.sqrt(self.var + self.eps) * self.weight + self.bias


def _instance_norm_reference(x, eps=1e-5):
    axes = tuple(range(1, x.ndim - 1))
    mean, var = x.mean(axis=axes, keepdims=True), x.var(axis=axes, keepdims=True)
    return (x - mean) / np.sqrt(var + eps)


def _group_norm_reference(x, groups, weight, bias, eps=1e-5):
    n, channels = x.shape[0], x.shape[-1]
    grouped = x.reshape(n, -1, groups, channels // groups)
    mean, var = grouped.mean(axis=(1, 3), keepdims=True), grouped.var(axis=(1, 3), keepdims=True)
    return ((grouped - mean) / np.sqrt(var + eps)).reshape(x.shape) * weight + bias


def _local_response_norm_reference(x, size, alpha, beta, k):
    channels = x.shape[-1]
    padded = np.concatenate([np.zeros(x.shape[:-1] + (size // 2,)), x ** 2,
                             np.zeros(x.shape[:-1] + ((size - 1) // 2,))], axis=-1)
    window = sum(padded[..., i:i + channels] for i in range(size))
    return x / (k + alpha / size * window) ** beta


@pytest.mark.parametrize("layer, shape", [(nn.BatchNorm1d, (6, 3)), (nn.BatchNorm1d, (3, 4, 3)),
                                          (nn.BatchNorm2d, (2, 3, 4, 3))])
@pytest.mark.parametrize("momentum", [0.1, 0.3, None])
def test_batch_norm_matches_numpy_reference_over_training_steps_and_in_eval(layer, shape, momentum):
    rng = np.random.default_rng(0)
    weight, bias = rng.standard_normal(3), rng.standard_normal(3)
    module = layer(3, momentum=momentum, dtype=np.float64)
    module.weight.data[...], module.bias.data[...] = weight, bias
    reference = _ReferenceBatchNorm(3, momentum, weight=weight, bias=bias)
    for _ in range(3):
        x = rng.standard_normal(shape) * 2 + 1
        np.testing.assert_allclose(module(Tensor(x)).data, reference.train(x), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(module.running_mean, reference.mean, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(module.running_var, reference.var, rtol=1e-12)
    assert module.num_batches_tracked == 3 and module.num_batches_tracked.dtype == np.int64
    module.eval()
    x = rng.standard_normal(shape)
    np.testing.assert_allclose(module(Tensor(x)).data, reference.eval(x), rtol=1e-12, atol=1e-12)
    assert module.num_batches_tracked == 3  # eval forwards track nothing


def test_batch_norm_without_running_statistics_uses_the_batch_in_eval_mode_too():
    rng = np.random.default_rng(1)
    module = nn.BatchNorm2d(4, affine=False, track_running_stats=False, dtype=np.float64).eval()
    assert module.running_mean is None and list(module.state_dict()) == []
    x = rng.standard_normal((2, 3, 3, 4))
    np.testing.assert_allclose(module(Tensor(x)).data, _ReferenceBatchNorm(4).train(x), rtol=1e-12, atol=1e-12)


def test_instance_group_and_local_response_norm_match_numpy_references():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 4, 6))
    np.testing.assert_allclose(nn.InstanceNorm2d(6, dtype=np.float64)(Tensor(x)).data,
                               _instance_norm_reference(x), rtol=1e-12, atol=1e-12)
    # unbatched [H, W, C], as torch's [C, H, W]
    np.testing.assert_allclose(nn.InstanceNorm2d(6, dtype=np.float64)(Tensor(x[0])).data,
                               _instance_norm_reference(x[:1])[0], rtol=1e-12, atol=1e-12)
    group = nn.GroupNorm(3, 6, dtype=np.float64)
    group.weight.data[...], group.bias.data[...] = rng.standard_normal(6), rng.standard_normal(6)
    np.testing.assert_allclose(group(Tensor(x)).data,
                               _group_norm_reference(x, 3, group.weight.data, group.bias.data),
                               rtol=1e-12, atol=1e-12)
    for size in (1, 2, 3, 5, 8):
        np.testing.assert_allclose(nn.LocalResponseNorm(size, alpha=0.2, beta=0.7, k=1.5)(Tensor(x)).data,
                                   _local_response_norm_reference(x, size, 0.2, 0.7, 1.5), rtol=1e-12)


def test_instance_norm_tracks_running_statistics_and_uses_them_in_eval():
    rng = np.random.default_rng(3)
    module = nn.InstanceNorm2d(2, affine=True, track_running_stats=True, momentum=0.5, dtype=np.float64)
    x = rng.standard_normal((3, 4, 5, 2))
    module(Tensor(x))
    per_instance = x.reshape(3, -1, 2)
    np.testing.assert_allclose(module.running_mean, 0.5 * per_instance.mean(axis=1).mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(module.running_var, 0.5 + 0.5 * per_instance.var(axis=1, ddof=1).mean(axis=0),
                               rtol=1e-12)
    module.eval()
    expected = (x - module.running_mean) / np.sqrt(module.running_var + 1e-5)
    np.testing.assert_allclose(module(Tensor(x)).data, expected, rtol=1e-12, atol=1e-12)


def test_functional_forms_update_tensor_and_array_statistics():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((8, 3))
    running_mean, running_var = np.zeros(3), ag.ones(3, dtype=np.float64)
    version = running_var._version
    nn.functional.batch_norm(Tensor(x), running_mean, running_var, training=True, momentum=0.25)
    np.testing.assert_allclose(running_mean, 0.25 * x.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(running_var.data, 0.75 + 0.25 * x.var(axis=0, ddof=1), rtol=1e-12)
    assert running_var._version > version
    assert nn.functional.group_norm is ag.group_norm and nn.functional.local_response_norm is ag.local_response_norm


# ---- gradients ------------------------------------------------------------------------------
@pytest.mark.parametrize("make, shape, training", [
    (lambda: nn.BatchNorm1d(3, dtype=np.float64), (4, 3), True),
    (lambda: nn.BatchNorm1d(3, dtype=np.float64), (2, 3, 3), True),
    (lambda: nn.BatchNorm2d(3, dtype=np.float64), (2, 2, 3, 3), True),
    (lambda: nn.BatchNorm2d(3, dtype=np.float64), (2, 2, 3, 3), False),
    (lambda: nn.InstanceNorm2d(3, affine=True, dtype=np.float64), (2, 3, 2, 3), True),
    (lambda: nn.InstanceNorm2d(3, affine=True, track_running_stats=True, dtype=np.float64), (2, 3, 2, 3), False),
    (lambda: nn.GroupNorm(2, 4, dtype=np.float64), (2, 3, 4), True),
    (lambda: nn.LocalResponseNorm(3, alpha=0.5), (2, 2, 5), True),
])
def test_layers_gradcheck_in_float64(make, shape, training):
    rng = np.random.default_rng(5)
    module = make().train(training)
    for parameter in module.parameters():
        parameter.data[...] = rng.standard_normal(parameter.shape)
    if getattr(module, "running_var", None) is not None:
        module.running_mean[...], module.running_var[...] = rng.standard_normal(3), rng.uniform(0.5, 2, 3)
    x = Tensor(rng.standard_normal(shape), requires_grad=True)
    parameters = list(module.parameters())
    assert gradcheck(lambda x, *w: _with_parameters(module, parameters, w, x), (x,) + tuple(
        Tensor(p.data.copy(), requires_grad=True) for p in parameters)) is True


def _with_parameters(module, parameters, weights, x):
    """module(x) with its parameters swapped for the Tensors gradcheck differentiates."""
    saved = [(name, getattr(module, name)) for name in ("weight", "bias") if getattr(module, name, None) is not None]
    for (name, _), weight in zip(saved, weights):
        module._parameters[name] = weight
        object.__setattr__(module, name, weight)
    try:
        return module(x)
    finally:
        for name, parameter in saved:
            module._parameters[name] = parameter
            object.__setattr__(module, name, parameter)


# ---- torch ----------------------------------------------------------------------------------
def _first(t):
    return t.movedim(-1, 1)


def _last(t):
    return t.movedim(1, -1)


def _copy_to_torch(torch, ours, theirs):
    """Our parameters and buffers into torch's module, by name (the same [C] layout)."""
    state = {name: torch.tensor(np.array(value)) for name, value in ours.state_dict().items()}
    theirs.load_state_dict(state)


_TORCH_CASES = [
    ("BatchNorm1d(3, momentum={m})", (6, 3)),
    ("BatchNorm1d(3, momentum={m})", (4, 5, 3)),
    ("BatchNorm2d(3, momentum={m})", (2, 4, 3, 3)),
    ("BatchNorm2d(3, momentum={m}, affine=False)", (2, 4, 3, 3)),
    ("BatchNorm2d(3, momentum={m}, track_running_stats=False)", (2, 4, 3, 3)),
    ("InstanceNorm2d(3, momentum={m}, affine=True, track_running_stats=True)", (2, 4, 3, 3)),
    ("InstanceNorm2d(3, affine=True)", (2, 4, 3, 3)),
    ("InstanceNorm2d(3)", (4, 3, 3)),
    ("GroupNorm(3, 6)", (2, 4, 3, 6)),
    ("GroupNorm(2, 6, affine=False)", (3, 5, 6)),
    ("LocalResponseNorm(3, alpha=0.1, k=2.0)", (2, 4, 3, 5)),
]


@pytest.mark.parametrize("spec, shape", [(make.format(m=momentum), shape) for make, shape in _TORCH_CASES
                                         for momentum in ((0.1, None) if "{m}" in make else (0.1,))])
def test_layers_match_torch_over_training_steps_and_in_eval(spec, shape):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(6)
    ours = eval("nn." + spec.replace(")", ", dtype=np.float64)") if "(" in spec and "LocalResponse" not in spec
                else "nn." + spec)
    theirs = eval("torch.nn." + spec).double()
    for parameter in ours.parameters():
        parameter.data[...] = rng.standard_normal(parameter.shape)
    _copy_to_torch(torch, ours, theirs)
    optimizer = nn.optim.SGD(ours.parameters(), lr=0.1) if list(ours.parameters()) else None
    their_optimizer = torch.optim.SGD(theirs.parameters(), lr=0.1) if optimizer else None
    for step in range(3):
        x = rng.standard_normal(shape) * 1.5 + 0.5
        grad = rng.standard_normal(shape)
        x_ours, x_theirs = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        unbatched = len(shape) == 3 and "InstanceNorm2d" in spec
        y_ours = ours(x_ours)
        to_torch = (lambda t: t.movedim(-1, 0)) if unbatched else _first
        to_ours = (lambda t: t.movedim(0, -1)) if unbatched else _last
        y_theirs = theirs(to_torch(x_theirs))
        np.testing.assert_allclose(y_ours.data, to_ours(y_theirs).detach().numpy(), rtol=1e-10, atol=1e-12)
        (y_ours * Tensor(grad)).sum().backward()
        # the weighting in torch's own layout, contiguous: torch 2.13's InstanceNorm2d gives
        # an unbatched input a wrong gradient when the output's gradient is not contiguous
        # (checked against its own batched call)
        (y_theirs * to_torch(torch.tensor(grad)).contiguous()).sum().backward()
        np.testing.assert_allclose(x_ours.grad.data, x_theirs.grad.numpy(), rtol=1e-9, atol=1e-11)
        for (name, mine), (_, torchs) in zip(ours.named_parameters(), theirs.named_parameters()):
            np.testing.assert_allclose(mine.grad.data, torchs.grad.numpy(), rtol=1e-9, atol=1e-11, err_msg=name)
        if optimizer:
            optimizer.step(), their_optimizer.step()
            optimizer.zero_grad(), their_optimizer.zero_grad()
    their_state = theirs.state_dict()
    assert list(ours.state_dict()) == list(their_state)
    for name, value in ours.state_dict().items():
        np.testing.assert_allclose(value, their_state[name].numpy(), rtol=1e-10, atol=1e-12, err_msg=name)
    ours.eval(), theirs.eval()
    x = rng.standard_normal(shape)
    expected = (theirs(torch.tensor(x).movedim(-1, 0)).movedim(0, -1) if len(shape) == 3 and "InstanceNorm2d" in spec
                else _last(theirs(_first(torch.tensor(x)))))
    np.testing.assert_allclose(ours(Tensor(x)).data, expected.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_float32_layers_keep_float32_and_match_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    x = rng.standard_normal((8, 5, 5, 4)).astype(np.float32)
    ours, theirs = nn.BatchNorm2d(4), torch.nn.BatchNorm2d(4)
    for _ in range(3):
        y = ours(Tensor(x))
        expected = _last(theirs(_first(torch.tensor(x))))
        assert y.dtype == np.float32
        np.testing.assert_allclose(y.data, expected.detach().numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ours.running_var, theirs.running_var.numpy(), rtol=1e-5)


# ---- bad input ------------------------------------------------------------------------------
def test_batch_norm_refuses_one_value_per_channel_in_training():
    module = nn.BatchNorm1d(3)
    with pytest.raises(ValueError, match=r"BatchNorm1d\(3\): Expected more than 1 value per channel when training"):
        module(ag.ones(1, 3))
    assert module.num_batches_tracked == 0
    module.eval()
    assert module(ag.ones(1, 3)).shape == (1, 3)  # eval uses the running statistics: one value is fine
    with pytest.raises(ValueError, match="batch_norm: expected more than 1 value per channel when training"):
        nn.functional.batch_norm(ag.ones(1, 1, 3), None, None, training=True)
    with pytest.raises(ValueError, match=r"InstanceNorm2d\(3\): Expected more than 1 spatial element"):
        nn.InstanceNorm2d(3)(ag.ones(2, 1, 1, 3))


def test_wrong_channel_counts_and_shapes_name_the_layer():
    with pytest.raises(ValueError, match=r"BatchNorm2d\(3\): got input of shape \(2, 4, 4, 5\) with 5 channels"):
        nn.BatchNorm2d(3)(ag.ones(2, 4, 4, 5))
    with pytest.raises(ValueError, match=r"BatchNorm2d\(3\): expected 4D input \(got 3D input"):
        nn.BatchNorm2d(3)(ag.ones(4, 4, 3))
    with pytest.raises(ValueError, match=r"BatchNorm1d\(3\): expected 2D or 3D input \(got 4D"):
        nn.BatchNorm1d(3)(ag.ones(2, 2, 2, 3))
    with pytest.raises(ValueError, match=r"GroupNorm\(2, 4\): got input of shape \(2, 3, 6\) with 6 channels"):
        nn.GroupNorm(2, 4)(ag.ones(2, 3, 6))
    with pytest.raises(ValueError, match=r"InstanceNorm2d\(3\): got input of shape \(2, 2, 2, 4\) with 4 channels"):
        nn.InstanceNorm2d(3, affine=True)(ag.ones(2, 2, 2, 4))
    with pytest.raises(TypeError, match=r"BatchNorm2d\(3\): input has dtype float64 but the parameters are float32"):
        nn.BatchNorm2d(3)(ag.ones(2, 2, 2, 3, dtype=np.float64))
    with pytest.raises(ValueError, match=r"batch_norm: got weight of shape \(4,\) for an input with 3 channels"):
        nn.functional.batch_norm(ag.ones(2, 3), None, None, ag.ones(4), training=True)
    with pytest.raises(RuntimeError, match="batch_norm: got training=False without running_mean"):
        nn.functional.batch_norm(ag.ones(2, 3), None, None)
    with pytest.raises(ValueError, match=r"LocalResponseNorm\(2\): expected input \[N, \*, C\] of at least 3 dims"):
        nn.LocalResponseNorm(2)(ag.ones(2, 3))
    with pytest.raises(TypeError, match="group_norm: got a tensor of dtype int64, expected float32 or float64"):
        nn.functional.group_norm(ag.tensor([[1, 2], [3, 4]]), 1)


def test_group_count_must_divide_the_channels():
    with pytest.raises(ValueError, match="GroupNorm: num_channels must be divisible by num_groups, got "
                                         "num_channels=6 and num_groups=4"):
        nn.GroupNorm(4, 6)
    with pytest.raises(ValueError, match="group_norm: got an input with 6 channels .* and num_groups=4, expected "
                                         "the number of channels to be divisible by num_groups"):
        nn.functional.group_norm(ag.ones(2, 3, 6), 4)
    with pytest.raises(ValueError, match="GroupNorm: num_groups must be a positive int, got 0"):
        nn.GroupNorm(0, 6)
    with pytest.raises(ValueError, match="BatchNorm2d: momentum must be a non-negative number or None, got 'fast'"):
        nn.BatchNorm2d(3, momentum="fast")


def test_a_torch_state_dict_loads_by_name_and_gives_torchs_eval_output():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    theirs = torch.nn.Sequential(torch.nn.BatchNorm2d(4), torch.nn.GroupNorm(2, 4)).double()
    with torch.no_grad():
        for parameter in theirs.parameters():
            parameter.normal_()
    for _ in range(2):
        theirs(torch.randn(3, 4, 5, 5, dtype=torch.float64) * 2 + 1)
    theirs.eval()
    ours = nn.Sequential(nn.BatchNorm2d(4, dtype=np.float64), nn.GroupNorm(2, 4, dtype=np.float64)).eval()
    ours.load_state_dict({name: value.numpy() for name, value in theirs.state_dict().items()})
    assert ours[0].num_batches_tracked == 2
    x = np.random.default_rng(8).standard_normal((2, 5, 5, 4))
    np.testing.assert_allclose(ours(Tensor(x)).data, _last(theirs(_first(torch.tensor(x)))).detach().numpy(),
                               rtol=1e-10, atol=1e-12)
