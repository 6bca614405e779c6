"""TransformerEncoderLayer, TransformerDecoderLayer and TransformerEncoder (nn/transformer.py):
torch's submodule names, a numpy reference (runs without torch), gradcheck in float64, and
torch's modules with the same state dict: outputs and gradients (skipped without torch)."""
import math

import numpy as np
import pytest

import autograd_core as ag
import nn
from autograd_core import gradcheck
from nn import TransformerDecoderLayer, TransformerEncoder, TransformerEncoderLayer
from test_attention import mha_reference

_ERF = np.vectorize(math.erf)


def _layer_norm(x, params, prefix, eps=1e-5):
    normalized = (x - x.mean(axis=-1, keepdims=True)) / np.sqrt(x.var(axis=-1, keepdims=True) + eps)
    return normalized * params[prefix + ".weight"] + params[prefix + ".bias"]


def _sub(params, prefix):
    return {name[len(prefix) + 1:]: value for name, value in params.items() if name.startswith(prefix + ".")}


def _feed_forward(x, params, activation):
    hidden = x @ params["linear1.weight"].T + params["linear1.bias"]
    hidden = np.maximum(hidden, 0) if activation == "relu" else 0.5 * hidden * (1 + _ERF(hidden / math.sqrt(2)))
    return hidden @ params["linear2.weight"].T + params["linear2.bias"]


def encoder_layer_reference(params, x, nhead, activation, norm_first, padding=None, mask=None):
    """torch's TransformerEncoderLayer on [L, N, E] numpy arrays (dropout 0)."""
    def attend(y):
        return mha_reference(_sub(params, "self_attn"), y, y, y, nhead, key_padding_mask=padding, attn_mask=mask)[0]
    if norm_first:
        x = x + attend(_layer_norm(x, params, "norm1"))
        return x + _feed_forward(_layer_norm(x, params, "norm2"), params, activation)
    x = _layer_norm(x + attend(x), params, "norm1")
    return _layer_norm(x + _feed_forward(x, params, activation), params, "norm2")


def decoder_layer_reference(params, x, memory, nhead, activation, norm_first, mask=None):
    def self_block(y):
        return mha_reference(_sub(params, "self_attn"), y, y, y, nhead, attn_mask=mask)[0]

    def memory_block(y):
        return mha_reference(_sub(params, "multihead_attn"), y, memory, memory, nhead)[0]
    if norm_first:
        x = x + self_block(_layer_norm(x, params, "norm1"))
        x = x + memory_block(_layer_norm(x, params, "norm2"))
        return x + _feed_forward(_layer_norm(x, params, "norm3"), params, activation)
    x = _layer_norm(x + self_block(x), params, "norm1")
    x = _layer_norm(x + memory_block(x), params, "norm2")
    return _layer_norm(x + _feed_forward(x, params, activation), params, "norm3")


def _randomize(module, rng):
    """Random parameters everywhere (torch's zero biases and unit norms would hide bugs)."""
    for parameter in module.parameters():
        parameter.data[...] = rng.standard_normal(parameter.shape) * 0.5


_CAUSAL = np.triu(np.ones((4, 4), dtype=bool), k=1)  # True: masked out (MultiheadAttention's meaning)


def test_submodule_names_are_torchs():
    encoder = TransformerEncoder(TransformerEncoderLayer(8, 2, 16), 2, norm=nn.LayerNorm(8))
    names = set(encoder.state_dict())
    for prefix in ("layers.0.", "layers.1."):
        for name in ("self_attn.in_proj_weight", "self_attn.in_proj_bias", "self_attn.out_proj.weight",
                     "self_attn.out_proj.bias", "linear1.weight", "linear1.bias", "linear2.weight", "linear2.bias",
                     "norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias"):
            names.remove(prefix + name)
    assert names == {"norm.weight", "norm.bias"}
    decoder = TransformerDecoderLayer(8, 2, 16, bias=False)
    assert sorted(decoder.state_dict()) == sorted(
        ["self_attn.in_proj_weight", "self_attn.out_proj.weight", "multihead_attn.in_proj_weight",
         "multihead_attn.out_proj.weight", "linear1.weight", "linear2.weight", "norm1.weight", "norm2.weight",
         "norm3.weight"])
    # the copies are independent
    assert encoder.layers[0].linear1.weight is not encoder.layers[1].linear1.weight


@pytest.mark.parametrize("activation,norm_first", [("relu", False), ("gelu", True)])
def test_encoder_layer_matches_the_numpy_reference(activation, norm_first):
    rng = np.random.default_rng(0)
    layer = TransformerEncoderLayer(8, 2, 12, dropout=0.0, activation=activation, norm_first=norm_first,
                                    dtype=np.float64)
    _randomize(layer, rng)
    params = {name: value.copy() for name, value in layer.state_dict().items()}
    x = rng.standard_normal((4, 3, 8))
    padding = np.zeros((3, 4), dtype=bool)
    padding[2, 3] = True
    got = layer(ag.tensor(x), src_mask=_CAUSAL, src_key_padding_mask=padding, is_causal=True)
    expected = encoder_layer_reference(params, x, 2, activation, norm_first, padding=padding, mask=_CAUSAL)
    np.testing.assert_allclose(got.data, expected, rtol=1e-10, atol=1e-10)
    encoder = TransformerEncoder(layer, 2)
    expected = encoder_layer_reference(params, encoder_layer_reference(params, x, 2, activation, norm_first),
                                       2, activation, norm_first)
    np.testing.assert_allclose(encoder(ag.tensor(x)).data, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_layer_matches_the_numpy_reference(norm_first):
    rng = np.random.default_rng(1)
    layer = TransformerDecoderLayer(8, 4, 12, dropout=0.0, batch_first=True, norm_first=norm_first,
                                    dtype=np.float64)
    _randomize(layer, rng)
    params = {name: value.copy() for name, value in layer.state_dict().items()}
    x, memory = rng.standard_normal((2, 4, 8)), rng.standard_normal((2, 6, 8))
    got = layer(ag.tensor(x), ag.tensor(memory), tgt_mask=_CAUSAL)
    expected = decoder_layer_reference(params, x.swapaxes(0, 1), memory.swapaxes(0, 1), 4, "relu", norm_first,
                                       mask=_CAUSAL).swapaxes(0, 1)
    np.testing.assert_allclose(got.data, expected, rtol=1e-10, atol=1e-10)


def test_gradcheck_and_dropout_only_in_training():
    rng = np.random.default_rng(2)
    layer = TransformerEncoderLayer(4, 2, 6, dropout=0.3, activation="gelu", batch_first=True, dtype=np.float64)
    _randomize(layer, rng)
    layer.eval()
    x = ag.tensor(rng.standard_normal((2, 3, 4)), requires_grad=True)
    gradcheck(lambda x: layer(x, src_mask=_CAUSAL[:3, :3]), (x,))
    decoder = TransformerDecoderLayer(4, 2, 6, norm_first=True, dtype=np.float64).eval()
    _randomize(decoder, rng)
    memory = ag.tensor(rng.standard_normal((5, 2, 4)), requires_grad=True)
    gradcheck(lambda x, memory: decoder(x, memory), (ag.tensor(rng.standard_normal((3, 2, 4)), requires_grad=True),
                                                     memory))
    evaluated = layer(x).data
    np.testing.assert_array_equal(evaluated, layer(x).data)
    layer.train()
    nn.manual_seed(0)
    assert not np.allclose(evaluated, layer(x).data)


def test_custom_activation_and_bad_input():
    layer = TransformerEncoderLayer(4, 2, 6, dropout=0.0, activation=lambda x: x * 0.0)
    nn.init.zeros_(layer.linear2.bias)  # the feed-forward block then adds nothing
    x = ag.tensor(np.random.default_rng(3).standard_normal((3, 2, 4)).astype(np.float32))
    without_feed_forward = layer.norm2(layer.norm1(x + layer._sa_block(x, None, None, False)))
    np.testing.assert_allclose(layer(x).data, without_feed_forward.data, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="TransformerEncoderLayer: activation must be 'relu', 'gelu' or a callable"):
        TransformerEncoderLayer(4, 2, activation="tanh")
    with pytest.raises(ValueError, match=r"MultiheadAttention: embed_dim \(6\) must be divisible by num_heads \(4\)"):
        TransformerEncoderLayer(6, 4)
    with pytest.raises(ValueError, match=r"TransformerEncoderLayer: expected src of shape \[length, batch, 4\]"):
        layer(ag.tensor(np.zeros((3, 2, 5), dtype=np.float32)))
    with pytest.raises(ValueError, match=r"TransformerDecoderLayer: expected memory of shape \[length, batch, 4\]"):
        TransformerDecoderLayer(4, 2)(x, ag.tensor(np.zeros((3, 2, 3), dtype=np.float32)))
    with pytest.raises(ValueError, match=r"MultiheadAttention\(embed_dim=4, num_heads=2\): expected attn_mask"):
        layer(x, src_mask=np.zeros((2, 2), dtype=bool))


def _load_from_torch(ours, theirs):
    result = ours.load_state_dict({name: t.detach().numpy() for name, t in theirs.state_dict().items()})
    assert result == ([], [])


def _compare_gradients(ours, theirs):
    grads = dict(theirs.named_parameters())
    for name, parameter in ours.named_parameters():
        np.testing.assert_allclose(parameter.grad.data, grads[name].grad.numpy(), rtol=1e-8, atol=1e-10,
                                   err_msg=name)


@pytest.mark.parametrize("activation,batch_first,norm_first", [("relu", False, False), ("gelu", True, False),
                                                                ("relu", True, True), ("gelu", False, True)])
def test_encoder_matches_torch(activation, batch_first, norm_first):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    rng = np.random.default_rng(4)
    options = dict(dim_feedforward=16, dropout=0.0, activation=activation, batch_first=batch_first,
                   norm_first=norm_first)
    theirs = torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(8, 2, dtype=torch.float64, **options), 2,
                                         norm=torch.nn.LayerNorm(8, dtype=torch.float64), enable_nested_tensor=False)
    with torch.no_grad():
        for parameter in theirs.parameters():
            parameter.add_(torch.tensor(rng.standard_normal(tuple(parameter.shape)) * 0.3))
    ours = TransformerEncoder(TransformerEncoderLayer(8, 2, dtype=np.float64, **options), 2,
                              norm=nn.LayerNorm(8, dtype=np.float64))
    _load_from_torch(ours, theirs)
    theirs.eval()
    ours.eval()
    x = rng.standard_normal((3, 5, 8))
    length = 5 if batch_first else 3
    batch = 3 if batch_first else 5
    padding = np.zeros((batch, length), dtype=bool)
    padding[1, -1] = True
    mask = np.triu(np.ones((length, length), dtype=bool), k=1)
    mine, reference = ag.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out = ours(mine, mask=mask, src_key_padding_mask=padding)
    expected = theirs(reference, mask=torch.tensor(mask), src_key_padding_mask=torch.tensor(padding))
    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=1e-10, atol=1e-10)
    upstream = rng.standard_normal(out.shape)
    (out * ag.tensor(upstream)).sum().backward()
    (expected * torch.tensor(upstream)).sum().backward()
    np.testing.assert_allclose(mine.grad.data, reference.grad.numpy(), rtol=1e-8, atol=1e-10)
    _compare_gradients(ours, theirs)


@pytest.mark.parametrize("activation,batch_first,norm_first", [("relu", False, False), ("gelu", True, True)])
def test_decoder_layer_matches_torch(activation, batch_first, norm_first):
    torch = pytest.importorskip("torch")
    torch.manual_seed(1)
    rng = np.random.default_rng(5)
    options = dict(dim_feedforward=16, dropout=0.0, activation=activation, batch_first=batch_first,
                   norm_first=norm_first)
    theirs = torch.nn.TransformerDecoderLayer(8, 4, dtype=torch.float64, **options)
    with torch.no_grad():
        for parameter in theirs.parameters():
            parameter.add_(torch.tensor(rng.standard_normal(tuple(parameter.shape)) * 0.3))
    ours = TransformerDecoderLayer(8, 4, dtype=np.float64, **options)
    _load_from_torch(ours, theirs)
    theirs.eval()
    ours.eval()
    tgt = rng.standard_normal((2, 4, 8) if batch_first else (4, 2, 8))
    memory = rng.standard_normal((2, 6, 8) if batch_first else (6, 2, 8))
    memory_padding = np.zeros((2, 6), dtype=bool)
    memory_padding[0, 4:] = True
    causal = torch.nn.Transformer.generate_square_subsequent_mask(4, dtype=torch.float64)
    mine = [ag.tensor(a, requires_grad=True) for a in (tgt, memory)]
    reference = [torch.tensor(a, requires_grad=True) for a in (tgt, memory)]
    out = ours(*mine, tgt_mask=causal.numpy(), memory_key_padding_mask=memory_padding, tgt_is_causal=True)
    expected = theirs(*reference, tgt_mask=causal, memory_key_padding_mask=torch.tensor(memory_padding),
                      tgt_is_causal=True)
    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=1e-10, atol=1e-10)
    upstream = rng.standard_normal(out.shape)
    (out * ag.tensor(upstream)).sum().backward()
    (expected * torch.tensor(upstream)).sum().backward()
    for a, b in zip(mine, reference):
        np.testing.assert_allclose(a.grad.data, b.grad.numpy(), rtol=1e-8, atol=1e-10)
    _compare_gradients(ours, theirs)


def test_float32_encoder_matches_torch_in_eval_mode():
    """torch's evaluation fast path (one fused kernel) against ours, in float32."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(2)
    theirs = torch.nn.TransformerEncoderLayer(16, 4, 32, batch_first=True).eval()
    ours = TransformerEncoderLayer(16, 4, 32, batch_first=True)
    _load_from_torch(ours, theirs)
    ours.eval()
    x = np.random.default_rng(6).standard_normal((2, 7, 16)).astype(np.float32)
    with torch.no_grad():
        expected = theirs(torch.tensor(x)).numpy()
    np.testing.assert_allclose(ours(ag.tensor(x)).data, expected, rtol=1e-4, atol=1e-5)
