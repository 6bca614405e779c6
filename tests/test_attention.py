"""scaled_dot_product_attention, MultiheadAttention and LayerNorm (nn/attention.py,
nn/layer_norm.py): hand-written numpy references (run without torch), gradcheck in
float64, torch's modules with the same state dict (skipped without torch), bad input."""
import math

import numpy as np
import pytest

import autograd_core as ag
import nn
from autograd_core import gradcheck
from nn import LayerNorm, MultiheadAttention

F = nn.functional


# ---- numpy references -------------------------------------------------------------------
def _softmax_rows(scores):
    """softmax over the last axis; rows that are all -inf give zeros (torch 2.x)."""
    top = np.max(scores, axis=-1, keepdims=True)
    blocked = np.isneginf(top)
    e = np.exp(scores - np.where(blocked, 0.0, top))
    total = e.sum(axis=-1, keepdims=True)
    return np.where(blocked, 0.0, e / np.where(total == 0, 1.0, total))


def sdpa_reference(q, k, v, attn_mask=None, is_causal=False, scale=None):
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = q @ np.swapaxes(k, -1, -2) * scale
    if is_causal:
        attn_mask = np.tril(np.ones(scores.shape[-2:], dtype=bool))
    if attn_mask is not None:
        scores = scores + (np.where(attn_mask, 0.0, -np.inf) if attn_mask.dtype == bool else attn_mask)
    return _softmax_rows(scores) @ v


def mha_reference(params, query, key, value, num_heads, key_padding_mask=None, attn_mask=None,
                  batch_first=False, average=True):
    """torch.nn.MultiheadAttention's forward, one head at a time, on numpy arrays."""
    if not batch_first:
        query, key, value = (np.swapaxes(x, 0, 1) for x in (query, key, value))
    E = query.shape[-1]
    if "in_proj_weight" in params:
        wq, wk, wv = np.split(params["in_proj_weight"], 3)
    else:
        wq, wk, wv = params["q_proj_weight"], params["k_proj_weight"], params["v_proj_weight"]
    bq, bk, bv = np.split(params["in_proj_bias"], 3)
    q, k, v = query @ wq.T + bq, key @ wk.T + bk, value @ wv.T + bv
    N, L, S, D = query.shape[0], query.shape[1], key.shape[1], E // num_heads
    out = np.zeros((N, L, E))
    weights = np.zeros((N, num_heads, L, S))
    for n in range(N):
        for h in range(num_heads):
            cols = slice(h * D, (h + 1) * D)
            scores = q[n, :, cols] @ k[n, :, cols].T / math.sqrt(D)
            if attn_mask is not None:
                mask = attn_mask if attn_mask.ndim == 2 else attn_mask[n * num_heads + h]
                scores = scores + (np.where(mask, -np.inf, 0.0) if mask.dtype == bool else mask)
            if key_padding_mask is not None:
                scores = scores + np.where(key_padding_mask[n], -np.inf, 0.0)[None, :]
            weights[n, h] = _softmax_rows(scores)
            out[n, :, cols] = weights[n, h] @ v[n, :, cols]
    out = out @ params["out_proj.weight"].T + params["out_proj.bias"]
    if not batch_first:
        out = np.swapaxes(out, 0, 1)
    return out, weights.mean(axis=1) if average else weights


def _params(module):
    return {name: value.copy() for name, value in module.state_dict().items()}


# ---- scaled_dot_product_attention -------------------------------------------------------
def _qkv(rng, batch=(2, 3), L=4, S=5, E=6, Ev=7):
    return (rng.standard_normal(batch + (L, E)), rng.standard_normal(batch + (S, E)),
            rng.standard_normal(batch + (S, Ev)))


def _mask_cases(rng):
    return [dict(), dict(is_causal=True), dict(scale=0.3),
            dict(attn_mask=rng.standard_normal((4, 5))),            # float, added
            dict(attn_mask=rng.random((3, 1, 5)) > 0.3),            # bool, broadcast over the batch and L
            dict(attn_mask=rng.random((2, 3, 4, 5)) > 0.5)]          # bool, full shape


def test_sdpa_matches_the_numpy_reference():
    rng = np.random.default_rng(0)
    q, k, v = _qkv(rng)
    for case in _mask_cases(rng):
        got = F.scaled_dot_product_attention(ag.tensor(q), ag.tensor(k), ag.tensor(v), **case)
        np.testing.assert_allclose(got.data, sdpa_reference(q, k, v, **case), rtol=1e-12, atol=1e-12,
                                   err_msg=str(list(case)))


def test_sdpa_broadcasts_leading_dimensions_and_keeps_float32():
    rng = np.random.default_rng(1)
    q = rng.standard_normal((2, 1, 4, 6)).astype(np.float32)
    k = rng.standard_normal((3, 5, 6)).astype(np.float32)
    v = rng.standard_normal((1, 5, 2)).astype(np.float32)
    got = F.scaled_dot_product_attention(ag.tensor(q), ag.tensor(k), ag.tensor(v), is_causal=True)
    assert got.shape == (2, 3, 4, 2) and got.dtype == np.float32
    np.testing.assert_allclose(got.data, sdpa_reference(q.astype(float), k.astype(float), v.astype(float),
                                                        is_causal=True), rtol=1e-5, atol=1e-6)


def test_sdpa_row_blocked_entirely_gives_zeros_and_no_nan_gradient():
    rng = np.random.default_rng(2)
    q, k, v = (ag.tensor(a, requires_grad=True) for a in _qkv(rng, batch=(1,)))
    mask = np.ones((4, 5), dtype=bool)
    mask[1] = False
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    np.testing.assert_array_equal(out.data[0, 1], 0.0)
    out.sum().backward()
    assert np.isfinite(q.grad.data).all() and np.isfinite(k.grad.data).all()
    np.testing.assert_array_equal(q.grad.data[0, 1], 0.0)


def test_sdpa_gradcheck():
    rng = np.random.default_rng(3)
    q, k, v = (ag.tensor(a, requires_grad=True) for a in _qkv(rng, batch=(2,), L=3, S=4, E=3, Ev=2))
    float_mask = ag.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    bool_mask = rng.random((2, 3, 4)) > 0.3
    gradcheck(lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, attn_mask=m), (q, k, v, float_mask))
    gradcheck(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=bool_mask, scale=0.7), (q, k, v))
    gradcheck(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True), (q, k, v))


def test_sdpa_dropout():
    rng = np.random.default_rng(4)
    q, k, v = (ag.tensor(a) for a in _qkv(rng))
    np.testing.assert_array_equal(F.scaled_dot_product_attention(q, k, v, dropout_p=1.0).data, 0.0)
    nn.manual_seed(0)
    dropped = F.scaled_dot_product_attention(q, k, v, dropout_p=0.5).data
    kept = F.scaled_dot_product_attention(q, k, v).data
    assert dropped.shape == kept.shape and not np.allclose(dropped, kept)


def test_sdpa_bad_input():
    rng = np.random.default_rng(5)
    q, k, v = (ag.tensor(a) for a in _qkv(rng))
    with pytest.raises(ValueError, match=r"scaled_dot_product_attention: got attn_mask of shape \(4, 4\)"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=np.ones((4, 4), dtype=bool))
    with pytest.raises(ValueError, match="scaled_dot_product_attention: got both attn_mask and is_causal"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=np.ones((4, 5), dtype=bool), is_causal=True)
    with pytest.raises(ValueError, match="scaled_dot_product_attention: query .* and key .* must share E"):
        F.scaled_dot_product_attention(q, ag.tensor(np.ones((2, 3, 5, 2))), v)
    with pytest.raises(ValueError, match="scaled_dot_product_attention: dropout_p"):
        F.scaled_dot_product_attention(q, k, v, dropout_p=1.5)
    with pytest.raises(TypeError, match="scaled_dot_product_attention: got attn_mask of dtype int64"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=np.ones((4, 5), dtype=np.int64))


@pytest.mark.parametrize("case", range(6))
def test_sdpa_matches_torch(case):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(6)
    arrays = _qkv(rng)
    kwargs = _mask_cases(rng)[case]
    ours = [ag.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    torch_kwargs = {n: torch.tensor(x) if isinstance(x, np.ndarray) else x for n, x in kwargs.items()}
    out = F.scaled_dot_product_attention(*ours, **kwargs)
    expected = torch.nn.functional.scaled_dot_product_attention(*theirs, **torch_kwargs)
    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=1e-10, atol=1e-12)
    upstream = rng.standard_normal(out.shape)
    out.backward(ag.tensor(upstream))
    expected.backward(torch.tensor(upstream))
    for mine, reference in zip(ours, theirs):
        np.testing.assert_allclose(mine.grad.data, reference.grad.numpy(), rtol=1e-9, atol=1e-11)


# ---- MultiheadAttention ------------------------------------------------------------------
def _inputs(rng, batch_first, L=4, S=5, N=3, E=8, kdim=8, vdim=8):
    shape = (lambda length, features: (N, length, features)) if batch_first else (
        lambda length, features: (length, N, features))
    return (rng.standard_normal(shape(L, E)), rng.standard_normal(shape(S, kdim)), rng.standard_normal(shape(S, vdim)))


def _random_biases(module, rng):
    """torch initialises the biases to zero; random ones test that they are applied."""
    module.in_proj_bias.data[...] = rng.standard_normal(module.in_proj_bias.shape)
    module.out_proj.bias.data[...] = rng.standard_normal(module.out_proj.bias.shape)


def test_mha_parameters_have_torch_names_and_shapes():
    same = MultiheadAttention(8, 2)
    assert {n: v.shape for n, v in same.state_dict().items()} == {
        "in_proj_weight": (24, 8), "in_proj_bias": (24,), "out_proj.weight": (8, 8), "out_proj.bias": (8,)}
    other = MultiheadAttention(8, 2, kdim=3, vdim=5, bias=False)
    assert {n: v.shape for n, v in other.state_dict().items()} == {
        "q_proj_weight": (8, 8), "k_proj_weight": (8, 3), "v_proj_weight": (8, 5), "out_proj.weight": (8, 8)}
    np.testing.assert_array_equal(same.in_proj_bias.data, 0.0)
    bound = math.sqrt(6.0 / (24 + 8))  # xavier-uniform over the packed [3E, E] weight, as torch
    assert np.abs(same.in_proj_weight.data).max() <= bound


@pytest.mark.parametrize("batch_first", [False, True])
def test_mha_matches_the_numpy_reference(batch_first):
    rng = np.random.default_rng(7)
    module = MultiheadAttention(8, 2, batch_first=batch_first, dtype=np.float64)
    _random_biases(module, rng)
    params = _params(module)
    query, key, value = _inputs(rng, batch_first)
    padding = np.zeros((3, 5), dtype=bool)
    padding[0, 3:] = True
    float_mask = rng.standard_normal((4, 5))
    head_mask = rng.random((3 * 2, 4, 5)) > 0.7
    head_mask[:, :, 0] = False  # every query keeps one key
    for kwargs in (dict(), dict(key_padding_mask=padding), dict(attn_mask=float_mask),
                   dict(attn_mask=head_mask, key_padding_mask=padding)):
        for average in (True, False):
            out, weights = module(ag.tensor(query), ag.tensor(key), ag.tensor(value), average_attn_weights=average,
                                  **kwargs)
            expected_out, expected_weights = mha_reference(params, query, key, value, 2, batch_first=batch_first,
                                                           average=average, **kwargs)
            np.testing.assert_allclose(out.data, expected_out, rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(weights.data, expected_weights, rtol=1e-10, atol=1e-12)


def test_mha_self_attention_unbatched_and_different_kdim_vdim():
    rng = np.random.default_rng(8)
    module = MultiheadAttention(6, 3, kdim=2, vdim=4, dtype=np.float64)
    _random_biases(module, rng)
    query, key, value = _inputs(rng, False, E=6, kdim=2, vdim=4)
    out, weights = module(ag.tensor(query), ag.tensor(key), ag.tensor(value), need_weights=False)
    assert weights is None
    np.testing.assert_allclose(out.data, mha_reference(_params(module), query, key, value, 3)[0], rtol=1e-10,
                               atol=1e-12)
    self_attention = MultiheadAttention(6, 2, dtype=np.float64)
    _random_biases(self_attention, rng)
    x = rng.standard_normal((4, 6))  # unbatched [L, E]
    out, weights = self_attention(ag.tensor(x), ag.tensor(x), ag.tensor(x))
    expected_out, expected_weights = mha_reference(_params(self_attention), x[:, None], x[:, None], x[:, None], 2)
    assert out.shape == (4, 6) and weights.shape == (4, 4)
    np.testing.assert_allclose(out.data, expected_out[:, 0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(weights.data, expected_weights[0], rtol=1e-10, atol=1e-12)


def test_mha_gradcheck_and_dropout_only_in_training():
    rng = np.random.default_rng(9)
    module = MultiheadAttention(4, 2, dropout=0.5, batch_first=True, dtype=np.float64).eval()
    _random_biases(module, rng)
    query, key, value = (ag.tensor(a, requires_grad=True) for a in _inputs(rng, True, L=2, S=3, N=2, E=4,
                                                                               kdim=4, vdim=4))
    padding = np.array([[False, False, True], [False, False, False]])
    gradcheck(lambda q, k, v: module(q, k, v, key_padding_mask=padding)[0], (query, key, value))
    first = module(query, key, value)[0].data
    np.testing.assert_array_equal(first, module(query, key, value)[0].data)  # eval: no dropout
    module.train()
    nn.manual_seed(0)
    assert not np.allclose(first, module(query, key, value)[0].data)


def test_mha_bad_input():
    with pytest.raises(ValueError, match=r"MultiheadAttention: embed_dim \(10\) must be divisible by num_heads \(3\)"):
        MultiheadAttention(10, 3)
    module = MultiheadAttention(8, 2)
    x = ag.tensor(np.zeros((4, 3, 8), dtype=np.float32))
    with pytest.raises(ValueError, match=r"MultiheadAttention\(embed_dim=8, num_heads=2\): expected attn_mask"):
        module(x, x, x, attn_mask=np.zeros((4, 5), dtype=bool))
    with pytest.raises(ValueError, match=r"MultiheadAttention\(embed_dim=8, num_heads=2\): expected key_padding"):
        module(x, x, x, key_padding_mask=np.zeros((4, 3), dtype=bool))
    with pytest.raises(ValueError, match=r"MultiheadAttention\(embed_dim=8, num_heads=2\): expected query"):
        module(ag.tensor(np.zeros((4, 3, 6), dtype=np.float32)), x, x)
    with pytest.raises(ValueError, match="is_causal=True is a hint"):
        module(x, x, x, is_causal=True)


@pytest.mark.parametrize("batch_first,kdim,masks", [(False, None, "padding"), (True, None, "float"),
                                                     (True, 3, "bool"), (False, 5, "heads")])
def test_mha_matches_torch(batch_first, kdim, masks):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(10)
    theirs = torch.nn.MultiheadAttention(8, 2, batch_first=batch_first, kdim=kdim, vdim=kdim, dtype=torch.float64)
    with torch.no_grad():
        for parameter in theirs.parameters():
            parameter.copy_(torch.tensor(rng.standard_normal(tuple(parameter.shape))))
    theirs.eval()
    ours = MultiheadAttention(8, 2, batch_first=batch_first, kdim=kdim, vdim=kdim, dtype=np.float64)
    assert ours.load_state_dict({n: t.detach().numpy() for n, t in theirs.state_dict().items()}) == ([], [])
    ours.eval()
    arrays = _inputs(rng, batch_first, kdim=kdim or 8, vdim=kdim or 8)
    kwargs = {}
    if masks == "padding":
        padding = np.zeros((3, 5), dtype=bool)
        padding[1, 2:] = True
        kwargs["key_padding_mask"] = padding
    elif masks == "float":
        kwargs["attn_mask"] = rng.standard_normal((4, 5))
    elif masks == "bool":
        kwargs["attn_mask"] = rng.random((4, 5)) > 0.6
        kwargs["attn_mask"][:, 0] = False
    else:
        kwargs["attn_mask"] = rng.standard_normal((6, 4, 5))
    ours_in = [ag.tensor(a, requires_grad=True) for a in arrays]
    theirs_in = [torch.tensor(a, requires_grad=True) for a in arrays]
    out, weights = ours(*ours_in, average_attn_weights=False, **kwargs)
    expected, expected_weights = theirs(*theirs_in, average_attn_weights=False,
                                        **{n: torch.tensor(m) for n, m in kwargs.items()})
    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(weights.data, expected_weights.detach().numpy(), rtol=1e-10, atol=1e-12)
    upstream = rng.standard_normal(out.shape)
    (out * ag.tensor(upstream)).sum().backward()
    (expected * torch.tensor(upstream)).sum().backward()
    for mine, reference in zip(ours_in, theirs_in):
        np.testing.assert_allclose(mine.grad.data, reference.grad.numpy(), rtol=1e-9, atol=1e-11)
    grads = dict(theirs.named_parameters())
    for name, parameter in ours.named_parameters():
        np.testing.assert_allclose(parameter.grad.data, grads[name].grad.numpy(), rtol=1e-9, atol=1e-11,
                                   err_msg=name)


# ---- LayerNorm ---------------------------------------------------------------------------
def test_layer_norm_module_matches_the_numpy_reference_and_gradcheck():
    rng = np.random.default_rng(11)
    norm = LayerNorm((3, 4), eps=1e-3, dtype=np.float64)
    norm.weight.data[...] = rng.standard_normal((3, 4))
    norm.bias.data[...] = rng.standard_normal((3, 4))
    x = rng.standard_normal((2, 3, 4))
    mean = x.mean(axis=(1, 2), keepdims=True)
    expected = (x - mean) / np.sqrt(x.var(axis=(1, 2), keepdims=True) + 1e-3) * norm.weight.data + norm.bias.data
    np.testing.assert_allclose(norm(ag.tensor(x)).data, expected, rtol=1e-12, atol=1e-12)
    gradcheck(lambda x, w, b: ag.layer_norm(x, (3, 4), w, b, 1e-3),
              (ag.tensor(x, requires_grad=True), norm.weight, norm.bias))
    assert sorted(LayerNorm(5, bias=False).state_dict()) == ["weight"]
    assert LayerNorm(5, elementwise_affine=False).state_dict() == {}
    plain = LayerNorm(4, elementwise_affine=False)(ag.tensor(np.arange(8, dtype=np.float32).reshape(2, 4)))
    np.testing.assert_allclose(plain.data.mean(axis=1), 0.0, atol=1e-6)
    assert plain.dtype == np.float32


def test_layer_norm_bad_input():
    with pytest.raises(ValueError, match=r"LayerNorm\(\(4,\)\): expected an input of shape \[\*, 4\], got \(2, 3\)"):
        LayerNorm(4)(ag.tensor(np.zeros((2, 3), dtype=np.float32)))
    with pytest.raises(ValueError, match="LayerNorm: normalized_shape"):
        LayerNorm(0)
    with pytest.raises(ValueError, match=r"layer_norm: got an input of shape \(2, 3\) and normalized_shape=\(2,\)"):
        ag.layer_norm(ag.tensor(np.zeros((2, 3))), 2)
    with pytest.raises(ValueError, match=r"layer_norm: got weight of shape \(2,\), expected normalized_shape \(3,\)"):
        ag.layer_norm(ag.tensor(np.zeros((2, 3))), 3, ag.tensor(np.ones(2)))


def test_layer_norm_module_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(12)
    theirs = torch.nn.LayerNorm((3, 4), eps=1e-4)
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(rng.standard_normal((3, 4))))
        theirs.bias.copy_(torch.tensor(rng.standard_normal((3, 4))))
    ours = LayerNorm((3, 4), eps=1e-4)
    ours.load_state_dict({n: t.detach().numpy() for n, t in theirs.state_dict().items()})
    x = rng.standard_normal((5, 3, 4)).astype(np.float32)
    mine, reference = ag.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, expected = ours(mine), theirs(reference)
    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=1e-5, atol=1e-5)
    out.sum().backward()
    expected.sum().backward()
    np.testing.assert_allclose(mine.grad.data, reference.grad.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ours.weight.grad.data, theirs.weight.grad.numpy(), rtol=1e-4, atol=1e-5)
