"""Issue 14's leftovers: Conv3d, ConvTranspose1d/3d, MaxPool3d, AvgPool3d (nn/layers.py),
MultiheadAttention's add_bias_kv and add_zero_attn, TransformerDecoder and Transformer
(nn/transformer.py), and the optimizers the ``train`` command offers. Each against a
hand-written numpy reference (runs without torch), gradients in float64, torch's modules
with the same state dict (skipped without torch), and bad input."""
import itertools
import json
import math

import numpy as np
import pytest

import autograd_core as ag
import nn
from autograd_core import gradcheck
from nn import (AvgPool3d, Conv3d, ConvTranspose1d, ConvTranspose3d, MaxPool3d, MultiheadAttention, Transformer,
                TransformerDecoder, TransformerDecoderLayer, TransformerEncoderLayer)
from nn.apps import trainer
from nn.utils import load_torch_state_dict, torch_state_dict
from test_attention import _softmax_rows
from test_transformer import decoder_layer_reference, encoder_layer_reference, _layer_norm, _sub

# ---- numpy references: channels-last, torch's arithmetic --------------------------------------


def conv_reference(x, w, b, stride, padding, dilation, groups):
    """N-d convolution: x [N, *spatial, c_in], w [*kernel, c_in/groups, c_out]."""
    dims = x.ndim - 2
    x = np.pad(x, [(0, 0)] + [(p, p) for p in padding] + [(0, 0)])
    kernel = w.shape[:dims]
    out_sizes = [(n - d * (k - 1) - 1) // s + 1 for n, k, s, d in zip(x.shape[1:-1], kernel, stride, dilation)]
    c_in_group, c_out = w.shape[-2], w.shape[-1]
    c_out_group = c_out // groups
    out = np.zeros((x.shape[0], *out_sizes, c_out))
    for offset in itertools.product(*(range(k) for k in kernel)):
        window = x[(slice(None),) + tuple(slice(o * d, o * d + s * (n - 1) + 1, s)
                                          for o, d, s, n in zip(offset, dilation, stride, out_sizes))]
        for g in range(groups):
            out[..., g * c_out_group:(g + 1) * c_out_group] += (
                window[..., g * c_in_group:(g + 1) * c_in_group] @ w[offset][:, g * c_out_group:(g + 1) * c_out_group])
    return out if b is None else out + b


def conv_transpose_reference(x, w, b, stride, padding, output_padding, dilation, groups):
    """N-d transposed convolution by scattering: x [N, *spatial, c_in], w [*kernel,
    c_out/groups, c_in]; each input cell adds x @ w[offset].T at position i * s + o * d."""
    dims = x.ndim - 2
    kernel = w.shape[:dims]
    c_out_group, c_in = w.shape[-2], w.shape[-1]
    c_in_group = c_in // groups
    full = [(n - 1) * s + d * (k - 1) + 1 + op for n, s, d, k, op in zip(x.shape[1:-1], stride, dilation, kernel,
                                                                        output_padding)]
    out = np.zeros((x.shape[0], *full, c_out_group * groups))
    for offset in itertools.product(*(range(k) for k in kernel)):
        target = (slice(None),) + tuple(slice(o * d, o * d + s * (n - 1) + 1, s)
                                        for o, d, s, n in zip(offset, dilation, stride, x.shape[1:-1]))
        for g in range(groups):
            part = x[..., g * c_in_group:(g + 1) * c_in_group] @ w[offset][:, g * c_in_group:(g + 1) * c_in_group].T
            out[target + (slice(g * c_out_group, (g + 1) * c_out_group),)] += part
    out = out[(slice(None),) + tuple(slice(p, n - p) for p, n in zip(padding, full))]
    return out if b is None else out + b


def pool3d_reference(x, kernel, stride, padding, kind, count_include_pad=True):
    """max or avg pooling of [N, D, H, W, C] (no ceil_mode, no dilation)."""
    fill = -np.inf if kind == "max" else 0.0
    pads = [(0, 0)] + [(p, p) for p in padding] + [(0, 0)]
    padded = np.pad(x, pads, constant_values=fill)
    ones = np.pad(np.ones(x.shape[1:4]), pads[1:4])
    out_sizes = [(n + 2 * p - k) // s + 1 for n, k, s, p in zip(x.shape[1:4], kernel, stride, padding)]
    result = np.full((x.shape[0], *out_sizes, x.shape[4]), fill)
    count = np.zeros(out_sizes)
    for offset in itertools.product(*(range(k) for k in kernel)):
        index = tuple(slice(o, o + s * (n - 1) + 1, s) for o, s, n in zip(offset, stride, out_sizes))
        window = padded[(slice(None),) + index]
        result = np.maximum(result, window) if kind == "max" else result + window
        count += ones[index]
    if kind == "max":
        return result
    divisor = np.prod(kernel) if count_include_pad else count[None, ..., None]
    return result / divisor


def _channels_last(array):
    return np.ascontiguousarray(np.moveaxis(array, 1, -1))


def _channels_first(array):
    return np.ascontiguousarray(np.moveaxis(array, -1, 1))


def _randomize(module, rng, scale=0.5):
    for parameter in module.parameters():
        parameter.data[...] = rng.standard_normal(parameter.shape) * scale


def _numeric_grad_check(loss, parameter, eps=1e-6):
    """loss() -> float64 scalar Tensor; parameter's backward gradient against central
    differences, every element."""
    parameter.grad = None
    loss().backward()
    analytic = np.array(parameter.grad.data if hasattr(parameter.grad, "data") else parameter.grad)
    numeric = np.zeros_like(parameter.data)
    for index in np.ndindex(parameter.shape):
        keep = parameter.data[index]
        parameter.data[index] = keep + eps
        up = float(loss().data)
        parameter.data[index] = keep - eps
        down = float(loss().data)
        parameter.data[index] = keep
        numeric[index] = (up - down) / (2 * eps)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-4, atol=1e-6)


# ---- Conv3d, ConvTranspose1d/3d, MaxPool3d, AvgPool3d ----------------------------------------

_CONV3D_CASES = [dict(kernel_size=(2, 3, 2), stride=(1, 2, 1), padding=1, groups=2),
                 dict(kernel_size=2, dilation=(2, 1, 1), bias=False),
                 dict(kernel_size=3, padding="same", padding_mode="replicate")]


@pytest.mark.parametrize("options", _CONV3D_CASES)
def test_conv3d_matches_the_numpy_reference(options):
    rng = np.random.default_rng(0)
    layer = Conv3d(4, 6, dtype=np.float64, **options)
    _randomize(layer, rng)
    assert layer.weight.shape == layer.kernel_size + (4 // layer.groups, 6)
    x = rng.standard_normal((2, 5, 6, 5, 4))
    padding = layer.padding
    source = x
    if padding == "same":
        padding = tuple((layer.dilation[i] * (layer.kernel_size[i] - 1)) // 2 for i in range(3))
        source = np.pad(x, [(0, 0)] + [(p, p) for p in padding] + [(0, 0)], mode="edge")
        padding = (0, 0, 0)
    expected = conv_reference(source, layer.weight.data, None if layer.bias is None else layer.bias.data,
                              layer.stride, padding, layer.dilation, layer.groups)
    got = layer(ag.Tensor(x))
    np.testing.assert_allclose(got.data, expected, rtol=1e-10, atol=1e-10)
    unbatched = layer(ag.Tensor(x[0]))
    np.testing.assert_allclose(unbatched.data, expected[0], rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("cls, dims, options", [
    (ConvTranspose1d, 1, dict(kernel_size=3, stride=2, padding=1, output_padding=1, groups=2)),
    (ConvTranspose1d, 1, dict(kernel_size=2, dilation=2, bias=False)),
    (ConvTranspose3d, 3, dict(kernel_size=(2, 3, 2), stride=(2, 1, 2), padding=(0, 1, 0), output_padding=(1, 0, 0))),
    (ConvTranspose3d, 3, dict(kernel_size=2, groups=2, dilation=(1, 2, 1))),
])
def test_conv_transpose_matches_the_numpy_reference(cls, dims, options):
    rng = np.random.default_rng(1)
    layer = cls(4, 6, dtype=np.float64, **options)
    _randomize(layer, rng)
    assert layer.weight.shape == layer.kernel_size + (6 // layer.groups, 4)
    x = rng.standard_normal((2,) + (3, 4, 3)[:dims] + (4,))
    expected = conv_transpose_reference(x, layer.weight.data, None if layer.bias is None else layer.bias.data,
                                        layer.stride, layer.padding, layer.output_padding, layer.dilation,
                                        layer.groups)
    np.testing.assert_allclose(layer(ag.Tensor(x)).data, expected, rtol=1e-10, atol=1e-10)
    # output_size picks the output_padding, as torch's
    wanted = expected.shape[1:-1]
    plain = cls(4, 6, dtype=np.float64, **dict(options, output_padding=0))
    plain.load_state_dict(layer.state_dict())
    np.testing.assert_allclose(plain(ag.Tensor(x), output_size=wanted).data, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("options", [dict(kernel_size=2), dict(kernel_size=(2, 3, 2), stride=1, padding=1),
                                     dict(kernel_size=3, stride=2, padding=1)])
def test_pool3d_matches_the_numpy_reference(options):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 5, 6, 5, 3))
    maximum = MaxPool3d(**options)
    kernel, stride, padding = maximum.kernel_size, maximum.stride, maximum.padding
    np.testing.assert_array_equal(maximum(ag.Tensor(x)).data, pool3d_reference(x, kernel, stride, padding, "max"))
    for include in (True, False):
        average = AvgPool3d(count_include_pad=include, **options)
        np.testing.assert_allclose(average(ag.Tensor(x)).data,
                                   pool3d_reference(x, kernel, stride, padding, "avg", include), rtol=1e-12)
    overridden = AvgPool3d(divisor_override=5, **options)(ag.Tensor(x)).data
    np.testing.assert_allclose(overridden * 5, pool3d_reference(x, kernel, stride, padding, "avg", True)
                               * np.prod(kernel), rtol=1e-12)


def test_new_conv_and_pool_layers_gradcheck():
    rng = np.random.default_rng(3)

    def leaf(*shape):
        return ag.Tensor(rng.standard_normal(shape), requires_grad=True)
    conv = Conv3d(2, 3, 2, stride=(1, 2, 1), padding=1, dtype=np.float64)
    x = leaf(1, 3, 3, 3, 2)
    gradcheck(lambda x, w, b: nn.functional.conv3d(x, w, b, conv.stride, conv.padding),
              (x, leaf(*conv.weight.shape), leaf(3)))
    assert gradcheck(lambda x: conv(x), (x,))
    transposed = ConvTranspose1d(2, 4, 3, stride=2, padding=1, output_padding=1, groups=2, dtype=np.float64)
    gradcheck(lambda x, w, b: nn.functional.conv_transpose1d(x, w, b, 2, 1, 1, 2),
              (leaf(2, 4, 2), leaf(*transposed.weight.shape), leaf(4)))
    volume = ConvTranspose3d(2, 3, 2, stride=2, dtype=np.float64)
    gradcheck(lambda x, w: nn.functional.conv_transpose3d(x, w, None, 2),
              (leaf(1, 2, 2, 2, 2), leaf(*volume.weight.shape)))
    assert gradcheck(lambda x: volume(x), (leaf(1, 2, 2, 2, 2),))
    # distinct values: no ties for the maximum
    values = ag.Tensor(rng.permutation(54).reshape(1, 3, 3, 3, 2) * 0.1, requires_grad=True)
    assert gradcheck(lambda x: MaxPool3d(2, stride=1)(x), (values,))
    assert gradcheck(lambda x: AvgPool3d(2, stride=1, padding=1, count_include_pad=False)(x), (leaf(1, 3, 3, 3, 2),))


def test_conv_weights_map_to_torchs_layout_by_state_dict():
    rng = np.random.default_rng(4)
    model = nn.Sequential(Conv3d(2, 4, (1, 2, 3)), ConvTranspose1d(4, 6, 3, groups=2), ConvTranspose3d(3, 5, 2))
    _randomize(model, rng)
    torch_layout = torch_state_dict(model)
    assert torch_layout["0.weight"].shape == (4, 2, 1, 2, 3)  # [out, in, kd, kh, kw]
    assert torch_layout["1.weight"].shape == (4, 3, 3)  # [in, out/groups, k]
    assert torch_layout["2.weight"].shape == (3, 5, 2, 2, 2)
    np.testing.assert_array_equal(torch_layout["0.weight"][3, 1, 0, 1, 2], model[0].weight.data[0, 1, 2, 1, 3])
    copy = nn.Sequential(Conv3d(2, 4, (1, 2, 3)), ConvTranspose1d(4, 6, 3, groups=2), ConvTranspose3d(3, 5, 2))
    load_torch_state_dict(copy, torch_layout)
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(copy.state_dict()[key], value, err_msg=key)


def test_new_layers_bad_input():
    with pytest.raises(ValueError, match=r"Conv3d: groups \(3\) must divide"):
        Conv3d(4, 6, 2, groups=3)
    with pytest.raises(ValueError, match="Conv3d: kernel_size must be"):
        Conv3d(4, 6, (2, 2))
    with pytest.raises(ValueError, match="Conv3d: padding_mode must be one of"):
        Conv3d(4, 6, 2, padding_mode="mirror")
    with pytest.raises(ValueError, match="Conv3d: padding='same' needs stride 1"):
        Conv3d(4, 6, 2, stride=2, padding="same")
    with pytest.raises(ValueError, match=r"Conv3d\(4, 6.*channels-last input \[N, D, H, W, 4\].*channels-first"):
        Conv3d(4, 6, 2)(ag.Tensor(np.zeros((1, 4, 3, 3, 3), np.float32)))
    with pytest.raises(TypeError, match=r"Conv3d\(4, 6.*dtype"):
        Conv3d(4, 6, 2)(ag.Tensor(np.zeros((1, 3, 3, 3, 4))))
    with pytest.raises(ValueError, match="ConvTranspose1d: output_padding .* must be smaller"):
        ConvTranspose1d(2, 2, 3, stride=2, output_padding=2)
    with pytest.raises(ValueError, match="ConvTranspose3d: only padding_mode 'zeros'"):
        ConvTranspose3d(2, 2, 3, padding_mode="reflect")
    with pytest.raises(ValueError, match=r"ConvTranspose1d\(2, 2.*\[N, L, 2\]"):
        ConvTranspose1d(2, 2, 3)(ag.Tensor(np.zeros((1, 4, 3), np.float32)))
    with pytest.raises(ValueError, match=r"ConvTranspose3d\(2, 2.*output_size .* cannot be reached"):
        ConvTranspose3d(2, 2, 3, stride=2)(ag.Tensor(np.zeros((1, 2, 2, 2, 2), np.float32)), output_size=(9, 5, 5))
    with pytest.raises(ValueError, match=r"MaxPool3d: expected channels-last input \[N, D, H, W, C\]"):
        MaxPool3d(2)(ag.Tensor(np.zeros((2, 4, 4), np.float32)))
    with pytest.raises(ValueError, match="AvgPool3d: stride must be"):
        AvgPool3d(2, stride=0)
    with pytest.raises(ValueError, match="AvgPool3d: divisor_override must be a positive int"):
        AvgPool3d(2, divisor_override=0)


# ---- MultiheadAttention: add_bias_kv, add_zero_attn -------------------------------------------

def mha_extra_reference(params, query, key, value, num_heads, add_zero_attn, key_padding_mask=None,
                        attn_mask=None):
    """torch's MultiheadAttention (batch_first) with bias_k / bias_v (when in params) and
    add_zero_attn, one head at a time; returns (output, weights per head)."""
    E = query.shape[-1]
    wq, wk, wv = np.split(params["in_proj_weight"], 3)
    bq, bk, bv = np.split(params["in_proj_bias"], 3)
    q, k, v = query @ wq.T + bq, key @ wk.T + bk, value @ wv.T + bv
    N, L, D = query.shape[0], query.shape[1], E // num_heads
    extra = 0
    if "bias_k" in params:
        k = np.concatenate([k, np.broadcast_to(params["bias_k"], (N, 1, E))], axis=1)
        v = np.concatenate([v, np.broadcast_to(params["bias_v"], (N, 1, E))], axis=1)
        extra += 1
    if add_zero_attn:
        k = np.concatenate([k, np.zeros((N, 1, E))], axis=1)
        v = np.concatenate([v, np.zeros((N, 1, E))], axis=1)
        extra += 1
    S = k.shape[1]
    out, weights = np.zeros((N, L, E)), np.zeros((N, num_heads, L, S))
    for n in range(N):
        for h in range(num_heads):
            cols = slice(h * D, (h + 1) * D)
            scores = q[n, :, cols] @ k[n, :, cols].T / math.sqrt(D)
            if attn_mask is not None:  # bool, True masked out; the added columns always attend
                scores[:, :S - extra] += np.where(attn_mask, -np.inf, 0.0)
            if key_padding_mask is not None:
                scores[:, :S - extra] += np.where(key_padding_mask[n], -np.inf, 0.0)[None, :]
            weights[n, h] = _softmax_rows(scores)
            out[n, :, cols] = weights[n, h] @ v[n, :, cols]
    return out @ params["out_proj.weight"].T + params["out_proj.bias"], weights


@pytest.mark.parametrize("bias_kv, zero_attn", [(True, False), (False, True), (True, True)])
def test_mha_bias_kv_and_zero_attn_match_the_numpy_reference(bias_kv, zero_attn):
    rng = np.random.default_rng(5)
    module = MultiheadAttention(8, 2, add_bias_kv=bias_kv, add_zero_attn=zero_attn, batch_first=True,
                                dtype=np.float64)
    names = {n: v.shape for n, v in module.state_dict().items()}
    assert ("bias_k" in names) == bias_kv and ("bias_v" in names) == bias_kv
    if bias_kv:
        assert names["bias_k"] == names["bias_v"] == (1, 1, 8)
    _randomize(module, rng)
    params = {name: value.copy() for name, value in module.state_dict().items()}
    query, key = rng.standard_normal((3, 4, 8)), rng.standard_normal((3, 5, 8))
    padding = np.zeros((3, 5), dtype=bool)
    padding[0, :] = True  # a whole row of padding: the added key still gets attention
    padding[1, 2] = True
    causal = np.triu(np.ones((4, 5), dtype=bool), k=1)
    for masks in (dict(), dict(key_padding_mask=padding, attn_mask=causal)):
        out, weights = module(ag.Tensor(query), ag.Tensor(key), ag.Tensor(key), average_attn_weights=False, **masks)
        expected_out, expected_weights = mha_extra_reference(params, query, key, key, 2, zero_attn, **masks)
        np.testing.assert_allclose(out.data, expected_out, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(weights.data, expected_weights, rtol=1e-10, atol=1e-12)
        assert weights.shape == (3, 2, 4, 5 + bias_kv + zero_attn)
    # a float attn_mask with a gradient is padded by an op: its gradient has its own shape
    float_mask = ag.Tensor(rng.standard_normal((4, 5)), requires_grad=True)
    gradcheck(lambda q, k, m: module(q, k, k, attn_mask=m, need_weights=False)[0],
              (ag.Tensor(query[:1, :3], requires_grad=True), ag.Tensor(key[:1, :3], requires_grad=True),
               ag.Tensor(float_mask.data[:3, :3], requires_grad=True)))
    # unbatched input works as torch's
    single, _ = module(ag.Tensor(query[1]), ag.Tensor(key[1]), ag.Tensor(key[1]))
    np.testing.assert_allclose(single.data, mha_extra_reference(params, query[1:2], key[1:2], key[1:2], 2,
                                                                zero_attn)[0][0], rtol=1e-10, atol=1e-12)


def test_mha_bias_kv_gradients_and_initialisation():
    rng = np.random.default_rng(6)
    module = MultiheadAttention(4, 2, add_bias_kv=True, add_zero_attn=True, dtype=np.float64)
    # torch's xavier_normal_ on [1, 1, E]: std sqrt(2 / (E + E)); not zero, not all equal
    assert np.all(module.bias_k.data != 0) and np.ptp(module.bias_v.data) > 0
    assert "add_bias_kv=True, add_zero_attn=True" in repr(module)
    query = ag.Tensor(rng.standard_normal((3, 2, 4)))
    key = ag.Tensor(rng.standard_normal((2, 2, 4)))
    projection = rng.standard_normal((3, 2, 4))

    def loss():
        return (module(query, key, key)[0] * ag.Tensor(projection)).sum()
    _numeric_grad_check(loss, module.bias_k)
    _numeric_grad_check(loss, module.bias_v)
    gradcheck(lambda q, k: module(q, k, k)[0], (ag.Tensor(query.data, requires_grad=True),
                                                ag.Tensor(key.data, requires_grad=True)))


# ---- TransformerDecoder and Transformer -------------------------------------------------------

_CAUSAL = np.triu(np.ones((3, 3), dtype=bool), k=1)


def test_generate_square_subsequent_mask():
    mask = Transformer.generate_square_subsequent_mask(4)
    assert mask.dtype == np.float32 and mask.shape == (4, 4)
    expected = np.where(np.arange(4)[None, :] > np.arange(4)[:, None], -np.inf, 0.0)
    np.testing.assert_array_equal(mask.data, expected)
    assert Transformer.generate_square_subsequent_mask(2, dtype=np.float64).dtype == np.float64
    with pytest.raises(ValueError, match="generate_square_subsequent_mask: sz must be a positive int"):
        Transformer.generate_square_subsequent_mask(0)


def test_transformer_names_and_initialisation():
    model = Transformer(8, 2, num_encoder_layers=2, num_decoder_layers=1, dim_feedforward=12, dropout=0.0)
    names = model.state_dict()
    for key in ("encoder.layers.1.self_attn.in_proj_weight", "encoder.norm.weight", "encoder.layers.0.linear1.bias",
                "decoder.layers.0.multihead_attn.out_proj.weight", "decoder.layers.0.norm3.bias",
                "decoder.norm.bias"):
        assert key in names, key
    assert not any(key.startswith(("encoder.layers.2", "decoder.layers.1")) for key in names)
    for name, parameter in model.named_parameters():
        if parameter.ndim > 1:  # xavier-uniform everywhere, as torch's _reset_parameters
            fan_out, fan_in = parameter.shape
            assert np.abs(parameter.data).max() <= math.sqrt(6.0 / (fan_in + fan_out)), name
    np.testing.assert_array_equal(model.decoder.norm.weight.data, 1.0)


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_and_transformer_match_the_numpy_reference(norm_first):
    rng = np.random.default_rng(8)
    model = Transformer(4, 2, num_encoder_layers=2, num_decoder_layers=2, dim_feedforward=6, dropout=0.0,
                        norm_first=norm_first, dtype=np.float64)
    _randomize(model, rng)
    params = {name: value.copy() for name, value in model.state_dict().items()}
    src, tgt = rng.standard_normal((5, 2, 4)), rng.standard_normal((3, 2, 4))
    memory = src
    for index in range(2):
        memory = encoder_layer_reference(_sub(params, "encoder.layers.%d" % index), memory, 2, "relu", norm_first)
    memory = _layer_norm(memory, params, "encoder.norm")
    expected = tgt
    for index in range(2):
        expected = decoder_layer_reference(_sub(params, "decoder.layers.%d" % index), expected, memory, 2, "relu",
                                           norm_first, mask=_CAUSAL)
    expected = _layer_norm(expected, params, "decoder.norm")
    got = model(ag.Tensor(src), ag.Tensor(tgt), tgt_mask=_CAUSAL)
    np.testing.assert_allclose(got.data, expected, rtol=1e-9, atol=1e-10)
    # the decoder alone, with and without its norm
    decoded = model.decoder(ag.Tensor(tgt), ag.Tensor(memory), tgt_mask=_CAUSAL)
    np.testing.assert_allclose(decoded.data, expected, rtol=1e-9, atol=1e-10)
    bare = TransformerDecoder(model.decoder.layers[0], num_layers=1)
    np.testing.assert_allclose(bare(ag.Tensor(tgt), ag.Tensor(memory), tgt_mask=_CAUSAL).data,
                               decoder_layer_reference(_sub(params, "decoder.layers.0"), tgt, memory, 2, "relu",
                                                       norm_first, mask=_CAUSAL), rtol=1e-9, atol=1e-10)


def test_transformer_gradcheck_custom_parts_and_dropout_only_in_training():
    rng = np.random.default_rng(9)
    model = Transformer(4, 2, num_encoder_layers=1, num_decoder_layers=1, dim_feedforward=5, dropout=0.0,
                        batch_first=True, dtype=np.float64)
    src = ag.Tensor(rng.standard_normal((2, 3, 4)), requires_grad=True)
    tgt = ag.Tensor(rng.standard_normal((2, 2, 4)), requires_grad=True)
    mask = Transformer.generate_square_subsequent_mask(2, dtype=np.float64)
    assert gradcheck(lambda s, t: model(s, t, tgt_mask=mask, tgt_is_causal=True), (src, tgt))
    # custom parts are used as they are
    encoder = nn.TransformerEncoder(TransformerEncoderLayer(4, 2, 5, 0.0, batch_first=True, dtype=np.float64), 1)
    custom = Transformer(4, 2, custom_encoder=encoder, dim_feedforward=5, num_decoder_layers=1, dropout=0.0,
                         batch_first=True, dtype=np.float64)
    assert custom.encoder is encoder and "encoder.norm.weight" not in custom.state_dict()
    np.testing.assert_allclose(custom(src, tgt).data, custom.decoder(tgt, encoder(src)).data, rtol=1e-12)
    # dropout acts in training only
    dropping = Transformer(4, 2, 1, 1, 5, dropout=0.5, batch_first=True, dtype=np.float64)
    dropping.eval()
    first, second = dropping(src, tgt).data, dropping(src, tgt).data
    np.testing.assert_array_equal(first, second)
    dropping.train()
    assert not np.allclose(dropping(src, tgt).data, first)


def test_transformer_bad_input():
    model = Transformer(4, 2, 1, 1, 6, dropout=0.0)
    with pytest.raises(ValueError, match=r"Transformer: src and tgt must have the same batch size"):
        model(ag.Tensor(np.zeros((5, 2, 4), np.float32)), ag.Tensor(np.zeros((3, 3, 4), np.float32)))
    with pytest.raises(ValueError, match=r"Transformer: expected tgt of shape \[length, batch, 4\]"):
        model(ag.Tensor(np.zeros((5, 2, 4), np.float32)), ag.Tensor(np.zeros((3, 2, 5), np.float32)))
    with pytest.raises(ValueError, match="Transformer: src and tgt must both be batched or both unbatched"):
        model(ag.Tensor(np.zeros((5, 4), np.float32)), ag.Tensor(np.zeros((3, 2, 4), np.float32)))
    with pytest.raises(TypeError, match="Transformer: src must be a Tensor"):
        model(np.zeros((5, 2, 4)), ag.Tensor(np.zeros((3, 2, 4), np.float32)))
    with pytest.raises(TypeError, match="Transformer: custom_encoder must be a Module"):
        Transformer(4, 2, custom_encoder="encoder")
    with pytest.raises(ValueError, match="Transformer: d_model must be a positive int"):
        Transformer(0, 2)
    with pytest.raises(TypeError, match="TransformerDecoder: decoder_layer must be a Module"):
        TransformerDecoder("layer", 2)
    with pytest.raises(ValueError, match="TransformerDecoder: num_layers must be a positive int"):
        TransformerDecoder(TransformerDecoderLayer(4, 2, 6), 0)
    with pytest.raises(TypeError, match="TransformerDecoder: norm must be a Module or None"):
        TransformerDecoder(TransformerDecoderLayer(4, 2, 6), 1, norm=3)


# ---- torch: the same weights give torch's outputs and gradients --------------------------------

def _perturb(torch, module):
    """Move every torch parameter off its initial value (unit norms and zero biases would
    hide a missing or misplaced LayerNorm or bias)."""
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.add_(0.2 * torch.randn(parameter.shape))


def _torch_weights(module):
    return {name: value.detach().numpy() for name, value in module.state_dict().items()}


def _assert_same_state(ours, theirs):
    mine = torch_state_dict(ours)
    reference = _torch_weights(theirs)
    assert list(mine) == list(reference)
    for key, value in reference.items():
        np.testing.assert_array_equal(mine[key], value, err_msg=key)


@pytest.mark.parametrize("ours, make_torch, shape", [
    (lambda: Conv3d(4, 6, (2, 3, 2), stride=(1, 2, 1), padding=1, groups=2),
     lambda t: t.nn.Conv3d(4, 6, (2, 3, 2), stride=(1, 2, 1), padding=1, groups=2), (2, 4, 5, 6, 5)),
    (lambda: Conv3d(4, 6, 3, padding="same", padding_mode="circular", dilation=(1, 2, 1)),
     lambda t: t.nn.Conv3d(4, 6, 3, padding="same", padding_mode="circular", dilation=(1, 2, 1)), (2, 4, 5, 6, 5)),
    (lambda: ConvTranspose1d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2),
     lambda t: t.nn.ConvTranspose1d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2), (2, 4, 7)),
    (lambda: ConvTranspose3d(4, 6, (2, 3, 2), stride=2, padding=(0, 1, 0), dilation=(1, 1, 2), bias=False),
     lambda t: t.nn.ConvTranspose3d(4, 6, (2, 3, 2), stride=2, padding=(0, 1, 0), dilation=(1, 1, 2), bias=False),
     (2, 4, 3, 4, 3)),
    (lambda: MaxPool3d(2, stride=1, padding=1, dilation=(1, 2, 1)),
     lambda t: t.nn.MaxPool3d(2, stride=1, padding=1, dilation=(1, 2, 1)), (2, 4, 5, 6, 5)),
    (lambda: MaxPool3d(3, stride=2, ceil_mode=True), lambda t: t.nn.MaxPool3d(3, stride=2, ceil_mode=True),
     (2, 3, 6, 6, 6)),
    (lambda: AvgPool3d(3, stride=2, padding=1, count_include_pad=False),
     lambda t: t.nn.AvgPool3d(3, stride=2, padding=1, count_include_pad=False), (2, 4, 5, 6, 5)),
    (lambda: AvgPool3d(2, ceil_mode=True, divisor_override=3),
     lambda t: t.nn.AvgPool3d(2, ceil_mode=True, divisor_override=3), (2, 3, 5, 5, 5)),
])
def test_new_layers_match_torch(ours, make_torch, shape):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    theirs, layer = make_torch(torch), ours()
    if list(theirs.state_dict()):
        load_torch_state_dict(layer, _torch_weights(theirs))
        _assert_same_state(layer, theirs)
    x = torch.randn(*shape, requires_grad=True)
    expected = theirs(x)
    mine_input = ag.Tensor(_channels_last(x.detach().numpy()), requires_grad=True)
    got = layer(mine_input)
    np.testing.assert_allclose(got.data, _channels_last(expected.detach().numpy()), rtol=1e-5, atol=1e-5)
    upstream = torch.randn(expected.shape)
    expected.backward(upstream)
    got.backward(ag.Tensor(_channels_last(upstream.numpy())))
    np.testing.assert_allclose(mine_input.grad.data if hasattr(mine_input.grad, "data") else mine_input.grad,
                               _channels_last(x.grad.numpy()), rtol=1e-4, atol=1e-5)
    if list(theirs.state_dict()):
        got_weight = ag.Tensor(layer.weight.grad.data if hasattr(layer.weight.grad, "data") else layer.weight.grad)
        from autograd_core.ops.convolution import ours_conv_weight_to_torch
        np.testing.assert_allclose(ours_conv_weight_to_torch(got_weight.data), theirs.weight.grad.numpy(),
                                   rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("bias_kv, zero_attn, kdim", [(True, False, None), (False, True, None), (True, True, 5)])
def test_mha_bias_kv_and_zero_attn_match_torch(bias_kv, zero_attn, kdim):
    torch = pytest.importorskip("torch")
    torch.manual_seed(1)
    theirs = torch.nn.MultiheadAttention(8, 2, add_bias_kv=bias_kv, add_zero_attn=zero_attn, kdim=kdim, vdim=kdim)
    _perturb(torch, theirs)
    ours = MultiheadAttention(8, 2, add_bias_kv=bias_kv, add_zero_attn=zero_attn, kdim=kdim, vdim=kdim)
    load_torch_state_dict(ours, _torch_weights(theirs))
    _assert_same_state(ours, theirs)
    query = torch.randn(4, 3, 8, requires_grad=True)
    key = torch.randn(5, 3, kdim or 8)
    padding = torch.zeros(3, 5, dtype=torch.bool)
    padding[1, 3:] = True
    padding = torch.zeros(3, 5).masked_fill(padding, float("-inf"))  # float, as attn_mask (torch wants one kind)
    attn_mask = torch.randn(3 * 2, 4, 5)  # float, per batch and head
    expected, expected_weights = theirs(query, key, key, key_padding_mask=padding, attn_mask=attn_mask,
                                        average_attn_weights=False)
    mine_query = ag.Tensor(query.detach().numpy(), requires_grad=True)
    got, weights = ours(mine_query, ag.Tensor(key.numpy()), ag.Tensor(key.numpy()), key_padding_mask=padding.numpy(),
                        attn_mask=attn_mask.numpy(), average_attn_weights=False)
    np.testing.assert_allclose(got.data, expected.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(weights.data, expected_weights.detach().numpy(), rtol=1e-5, atol=1e-6)
    upstream = torch.randn(expected.shape)
    expected.backward(upstream)
    got.backward(ag.Tensor(upstream.numpy()))
    grad = lambda t: t.grad.data if hasattr(t.grad, "data") else t.grad
    np.testing.assert_allclose(grad(mine_query), query.grad.numpy(), rtol=1e-4, atol=1e-5)
    if bias_kv:
        np.testing.assert_allclose(grad(ours.bias_k), theirs.bias_k.grad.numpy(), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(grad(ours.bias_v), theirs.bias_v.grad.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("batch_first, norm_first, activation", [(False, False, "relu"), (True, True, "gelu"),
                                                                 (True, False, "relu")])
def test_transformer_matches_torch(batch_first, norm_first, activation):
    torch = pytest.importorskip("torch")
    torch.manual_seed(2)
    import warnings
    with warnings.catch_warnings():  # torch's nested-tensor notice about its own fast path
        warnings.simplefilter("ignore")
        theirs = torch.nn.Transformer(8, 2, 2, 2, 16, dropout=0.0, activation=activation, batch_first=batch_first,
                                      norm_first=norm_first)
    _perturb(torch, theirs)
    ours = Transformer(8, 2, 2, 2, 16, dropout=0.0, activation=activation, batch_first=batch_first,
                       norm_first=norm_first)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    load_torch_state_dict(ours, _torch_weights(theirs))
    src, tgt = torch.randn(5, 3, 8, requires_grad=True), torch.randn(4, 3, 8)
    if batch_first:
        src, tgt = (torch.randn(3, 5, 8, requires_grad=True), torch.randn(3, 4, 8))
    tgt_mask = torch.nn.Transformer.generate_square_subsequent_mask(4)
    np.testing.assert_array_equal(Transformer.generate_square_subsequent_mask(4).data, tgt_mask.numpy())
    padding = torch.zeros(3, 5, dtype=torch.bool)
    padding[1, 3:] = True
    # training mode with dropout 0: torch's encoder skips its nested-tensor fast path, which
    # zeroes the padded positions of the memory (the decoder ignores them either way)
    expected = theirs(src, tgt, tgt_mask=tgt_mask, src_key_padding_mask=padding, memory_key_padding_mask=padding,
                      tgt_is_causal=True)
    mine_src = ag.Tensor(src.detach().numpy(), requires_grad=True)
    got = ours(mine_src, ag.Tensor(tgt.numpy()), tgt_mask=Transformer.generate_square_subsequent_mask(4),
               src_key_padding_mask=padding.numpy(), memory_key_padding_mask=padding.numpy(), tgt_is_causal=True)
    np.testing.assert_allclose(got.data, expected.detach().numpy(), rtol=1e-4, atol=2e-5)
    upstream = torch.randn(expected.shape)
    expected.backward(upstream)
    got.backward(ag.Tensor(upstream.numpy()))
    grad = mine_src.grad.data if hasattr(mine_src.grad, "data") else mine_src.grad
    np.testing.assert_allclose(grad, src.grad.numpy(), rtol=1e-3, atol=1e-4)
    # eval mode, unbatched
    theirs.eval()
    single_src, single_tgt = (src[0], tgt[0]) if batch_first else (src[:, 0], tgt[:, 0])
    expected = theirs(single_src, single_tgt, tgt_mask=tgt_mask).detach().numpy()
    got = ours.eval()(ag.Tensor(single_src.detach().numpy()), ag.Tensor(single_tgt.numpy()),
                      tgt_mask=Transformer.generate_square_subsequent_mask(4))
    np.testing.assert_allclose(got.data, expected, rtol=1e-4, atol=2e-5)


def test_transformer_decoder_with_norm_matches_torch():
    torch = pytest.importorskip("torch")
    torch.manual_seed(3)
    layer = torch.nn.TransformerDecoderLayer(8, 2, 12, dropout=0.0, batch_first=True)
    theirs = torch.nn.TransformerDecoder(layer, 3, norm=torch.nn.LayerNorm(8)).eval()
    _perturb(torch, theirs)
    ours = TransformerDecoder(TransformerDecoderLayer(8, 2, 12, dropout=0.0, batch_first=True), 3,
                              norm=nn.LayerNorm(8))
    load_torch_state_dict(ours, _torch_weights(theirs))
    _assert_same_state(ours, theirs)
    tgt, memory = torch.randn(2, 4, 8), torch.randn(2, 6, 8)
    tgt_padding = torch.tensor([[False, False, False, True], [False] * 4])
    expected = theirs(tgt, memory, tgt_key_padding_mask=tgt_padding).detach().numpy()
    got = ours(ag.Tensor(tgt.numpy()), ag.Tensor(memory.numpy()), tgt_key_padding_mask=tgt_padding.numpy())
    np.testing.assert_allclose(got.data, expected, rtol=1e-4, atol=2e-5)


# ---- the train command offers nn.optim's optimizers -------------------------------------------

_NEW_OPTIMIZERS = ("nesterov", "adamw", "amsgrad", "adagrad", "adadelta", "adamax", "nadam", "radam")


def test_every_cli_optimizer_builds_the_optimizer_it_names():
    expected = {"sgd": nn.optim.SGD, "momentum": nn.optim.SGD, "nesterov": nn.optim.SGD, "adam": nn.optim.Adam,
                "amsgrad": nn.optim.Adam, "adamw": nn.optim.AdamW, "rmsprop": nn.optim.RMSprop,
                "adagrad": nn.optim.Adagrad, "adadelta": nn.optim.Adadelta, "adamax": nn.optim.Adamax,
                "nadam": nn.optim.NAdam, "radam": nn.optim.RAdam}
    assert set(trainer.OPTIMIZERS) == set(expected)
    parameter = nn.Parameter(np.zeros(3, np.float32))
    for name, cls in expected.items():
        optimizer = trainer.make_optimizer(name, [parameter], 0.05)
        assert type(optimizer) is cls and optimizer.param_groups[0]["lr"] == 0.05, name
    groups = trainer.make_optimizer("nesterov", [parameter], 0.1).param_groups[0]
    assert groups["nesterov"] and groups["momentum"] == 0.9
    assert trainer.make_optimizer("amsgrad", [parameter], 0.1).param_groups[0]["amsgrad"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    from test_cli import data_dir as build  # the same tiny synthetic Fashion-MNIST
    return build.__wrapped__(tmp_path_factory)


@pytest.mark.parametrize("optimizer", _NEW_OPTIMIZERS)
def test_train_command_runs_with_each_new_optimizer(capsys, data_dir, tmp_path, optimizer):
    from test_cli import _train
    out_dir = tmp_path / optimizer
    status, out, err = _train(capsys, data_dir, out_dir, "softmax", "--optimizer", optimizer,
                              "--limit-train", 60, "--limit-test", 20)
    assert status == 0, err
    assert optimizer in out
    metrics = json.loads((out_dir / "metrics.json").read_text())
    assert metrics["config"]["optimizer"] == optimizer
    assert np.isfinite(metrics["epochs"][0]["train_loss"])


@pytest.mark.parametrize("optimizer", ["nadam", "adadelta"])
def test_resume_with_a_new_optimizer_continues_exactly(capsys, data_dir, tmp_path, optimizer):
    from nn import checkpoint
    from test_cli import _train
    extra = ("--optimizer", optimizer, "--limit-train", 60, "--limit-test", 20)
    assert _train(capsys, data_dir, tmp_path / "straight", "softmax", "--epochs", 2, *extra)[0] == 0
    assert _train(capsys, data_dir, tmp_path / "first", "softmax", "--epochs", 1, *extra)[0] == 0
    status, out, err = _train(capsys, data_dir, tmp_path / "resumed", "softmax", "--epochs", 2, *extra,
                              "--resume", tmp_path / "first" / "checkpoint.npz")
    assert status == 0, err
    expected = checkpoint.load(tmp_path / "straight" / "checkpoint.npz")
    got = checkpoint.load(tmp_path / "resumed" / "checkpoint.npz")
    keys = [key for key in expected if key.startswith(("model/", "optim/"))]
    assert any(key.startswith("optim/state.") for key in keys)
    for key in keys:  # the optimizer's state came back whole: identical results
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-6, atol=1e-7, err_msg=key)


def test_train_command_refuses_an_unknown_optimizer(capsys, data_dir, tmp_path):
    from test_cli import _run
    with pytest.raises(SystemExit):
        _run(capsys, "train", "softmax", "--optimizer", "lion", "--data-dir", data_dir)
    assert "invalid choice: 'lion'" in capsys.readouterr().err
