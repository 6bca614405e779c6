"""Higher-order gradients of the indexing, scan, reduction, shape, sampling and in-place
ops beyond the op table's samples (tests/test_gradgrad_ops.py): gradgradcheck over
hypothesis-drawn shapes and dims, a third derivative of log_softmax against its closed
form, in-place changes inside a create_graph graph against the out-of-place result, and
second derivatives against torch.autograd.grad(create_graph=True)."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import autograd_core as ag
from autograd_core import Tensor, gradgradcheck

from strategies import arrays, distinct_arrays, reduction_cases, shapes


def _leaf(array):
    return Tensor(np.array(array, dtype=np.float64), requires_grad=True)


def _one_axis(axis):
    """A drawn reduction axis (an int or a tuple) narrowed to one int."""
    return axis[0] if isinstance(axis, tuple) else axis


# ---- hypothesis: reductions and the softmax family ----------------------------------------
@given(reduction_cases())
def test_sum_mean_logsumexp_gradgrad(case):
    array, axis, keepdim = case
    for op in (ag.sum, ag.mean, ag.logsumexp):
        assert gradgradcheck(lambda x: op(x, axis, keepdim) ** 2, (_leaf(array),))


@given(reduction_cases(distinct=True))
def test_var_std_norm_gradgrad(case):
    array, axis, keepdim = case
    x = _leaf(array)
    count = int(np.prod([array.shape[a] for a in np.atleast_1d(axis)])) if axis is not None and array.ndim \
        else array.size
    if count > 1:  # a variance with degrees of freedom; std away from 0 (distinct values)
        assert gradgradcheck(lambda x: ag.var(x, axis, keepdim), (x,))
        assert gradgradcheck(lambda x: ag.std(x, axis, keepdim), (x,))
    for p in (2, 3, 1.5):
        assert gradgradcheck(lambda x: ag.norm(x + 0.05, p, axis, keepdim), (x,))


@given(reduction_cases(distinct=True))
def test_selections_gradgrad(case):
    """max/min/amax/amin route the gradient through fixed positions: second derivative
    0, gradient of the gradient with respect to grad_output the routing itself."""
    array, axis, keepdim = case
    x = _leaf(array)
    assert gradgradcheck(lambda x: ag.amax(x, () if axis is None else axis, keepdim) ** 2, (x,))
    assert gradgradcheck(lambda x: ag.amin(x, () if axis is None else axis, keepdim) ** 2, (x,))
    if axis is None:
        assert gradgradcheck(lambda x: ag.max(x) * x.sum(), (x,))
    else:
        dim = _one_axis(axis)
        assert gradgradcheck(lambda x: ag.max(x, dim, keepdim).values ** 3, (x,))
        assert gradgradcheck(lambda x: ag.sort(x, dim).values * x, (x,))


@given(st.data())
def test_prod_cumprod_gradgrad(data):
    shape = data.draw(shapes(min_dims=1))
    array = data.draw(arrays(shape))
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    if data.draw(st.booleans()):  # a zero (or two) somewhere: the exact product rule must hold there
        array.reshape(-1)[data.draw(st.integers(0, array.size - 1))] = 0.0
    x, keepdim = _leaf(array), data.draw(st.booleans())
    assert gradgradcheck(lambda x: ag.prod(x, dim, keepdim), (x,))
    assert gradgradcheck(lambda x: ag.prod(x), (x,))
    assert gradgradcheck(lambda x: ag.cumprod(x, dim), (x,))
    assert gradgradcheck(lambda x: ag.cumsum(x, dim) ** 2, (x,))


@given(st.data())
def test_softmax_log_softmax_gradgrad(data):
    shape = data.draw(shapes(min_dims=1))
    x = _leaf(data.draw(arrays(shape)))
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    assert gradgradcheck(lambda x: ag.softmax(x, dim), (x,))
    assert gradgradcheck(lambda x: ag.log_softmax(x, dim), (x,))


# ---- a third derivative against the closed form -------------------------------------------
def test_log_softmax_third_derivative_matches_formula():
    """L = w . log_softmax(x): the Hessian is -S (diag(s) - s s^T) with S = sum(w), s =
    softmax(x), so d^3 L / dx_i dx_j dx_k = -S [d_ij s_i (d_ik - s_k) - s_i s_j (d_ik + d_jk - 2 s_k)]."""
    rng = np.random.default_rng(3)
    n = 4
    values, w = rng.standard_normal(n), rng.standard_normal(n)
    x = _leaf(values)
    (first,) = ag.grad((ag.log_softmax(x, 0) * Tensor(w)).sum(), [x], create_graph=True)
    found = np.zeros((n, n, n))
    for i in range(n):
        (second,) = ag.grad(first[i], [x], create_graph=True)
        for j in range(n):
            (third,) = ag.grad(second[j], [x], retain_graph=True)
            found[i, j] = third.data
    s = np.exp(values - values.max())
    s /= s.sum()
    eye = np.eye(n)
    expected = -w.sum() * (eye[:, :, None] * s[:, None, None] * (eye[:, None, :] - s[None, None, :])
                           - s[:, None, None] * s[None, :, None]
                           * (eye[:, None, :] + eye[None, :, :] - 2 * s[None, None, :]))
    np.testing.assert_allclose(found, expected, rtol=1e-10, atol=1e-12)


# ---- in-place changes inside a create_graph graph -------------------------------------------
def _changed_in_place(x):
    y = x * 1.0
    y[0] = x[1] ** 2  # SetItem with a tensor
    y[2, 1:3] = 0.5  # SetItem with a number
    y[1].mul_(x[0])  # through a view: CopySlices
    z = x.exp() + 1.0  # (exp's own output is saved for its backward: not to be changed)
    z.masked_fill_(Tensor(np.array([True, False, False, True])), -1.0)
    w = (x * 2.0)
    w[1].copy_(x[2])  # Replace through a view
    return (y ** 3).sum() + (z * y).sum() + (w ** 2 * x).sum()


def _out_of_place(x):
    y = ag.stack([x[1] ** 2, x[1] * x[0], ag.cat([x[2, :1], Tensor(np.full(2, 0.5)), x[2, 3:]])])
    z = ag.masked_fill(x.exp() + 1.0, Tensor(np.array([True, False, False, True])), -1.0)
    w = ag.stack([x[0] * 2.0, x[2], x[2] * 2.0])
    return (y ** 3).sum() + (z * y).sum() + (w ** 2 * x).sum()


def test_in_place_ops_in_a_create_graph_graph_match_the_out_of_place_result():
    values = np.random.default_rng(1).standard_normal((3, 4))
    found = []
    for f in (_changed_in_place, _out_of_place):
        x = _leaf(values)
        (g,) = ag.grad(f(x), [x], create_graph=True)
        (h,) = ag.grad((g * g).sum(), [x])
        found.append((g.data, h.data))
    np.testing.assert_allclose(found[0][0], found[1][0], rtol=1e-12)
    np.testing.assert_allclose(found[0][1], found[1][1], rtol=1e-12)
    assert np.abs(found[0][1]).max() > 0


def test_in_place_ops_pass_gradgradcheck():
    x = _leaf(np.random.default_rng(2).standard_normal((3, 4)))
    assert gradgradcheck(_changed_in_place, (x,))


# ---- against torch.autograd.grad(create_graph=True) ----------------------------------------
def _hessian_vector(ours, theirs, array, torch):
    """(grad, H v) of ours (on Tensors) and theirs (on torch tensors) at array, v fixed."""
    v = np.random.default_rng(5).standard_normal(array.shape)
    x = _leaf(array)
    (g,) = ag.grad(ours(x), [x], create_graph=True)
    (hv,) = ag.grad((g * Tensor(v)).sum(), [x])
    t = torch.tensor(array, requires_grad=True)
    (tg,) = torch.autograd.grad(theirs(t), [t], create_graph=True)
    (thv,) = torch.autograd.grad((tg * torch.tensor(v)).sum(), [t])
    return (g.data, hv.data), (tg.detach().numpy(), thv.numpy())


def _torch_cases():
    index = np.array([[2, 0, 1], [1, 1, 0]])
    mask = np.array([[True, False, True], [False, False, True]])
    return [
        ("prod with a zero", lambda x: (ag.prod(x, 1) ** 2).sum(), lambda t: (t.prod(1) ** 2).sum(), "zero"),
        ("cumprod with a zero", lambda x: (ag.cumprod(x, 1) ** 2).sum(), lambda t: (t.cumprod(1) ** 2).sum(), "zero"),
        ("norm p=3", lambda x: ag.norm(x, 3, 1).sum() ** 2, lambda t: t.norm(3, 1).sum() ** 2, None),
        ("logsumexp", lambda x: (ag.logsumexp(x, 1) ** 3).sum(), lambda t: (t.logsumexp(1) ** 3).sum(), None),
        ("var", lambda x: (ag.var(x, 0) ** 2).sum(), lambda t: (t.var(0) ** 2).sum(), None),
        ("sort", lambda x: (ag.sort(x, 1).values ** 3 * Tensor(np.arange(3.0))).sum(),
         lambda t: (t.sort(1).values ** 3 * torch_arange(t)).sum(), None),
        ("topk", lambda x: (ag.topk(x, 2, 1).values ** 3).sum(), lambda t: (t.topk(2, 1).values ** 3).sum(), None),
        ("pad with a value", lambda x: (ag.pad(x, (1, 2), value=0.5) ** 3).sum(),
         lambda t: (torch_f().pad(t, (1, 2), value=0.5) ** 3).sum(), None),
        ("scatter a number", lambda x: (ag.scatter(x, 1, Tensor(index), value=2.0) ** 3).sum(),
         lambda t: (t.scatter(1, torch_tensor(index), 2.0) ** 3).sum(), None),
        ("masked_fill", lambda x: (ag.masked_fill(x, Tensor(mask), 0.25) ** 3).sum(),
         lambda t: (t.masked_fill(torch_tensor(mask), 0.25) ** 3).sum(), None),
        ("gather", lambda x: (ag.gather(x, 1, Tensor(index)) ** 3).sum(),
         lambda t: (t.gather(1, torch_tensor(index)) ** 3).sum(), None),
    ]


def torch_arange(t):
    import torch
    return torch.arange(3.0, dtype=t.dtype)


def torch_f():
    import torch.nn.functional as F
    return F


def torch_tensor(array):
    import torch
    return torch.tensor(array)


@pytest.mark.parametrize("label, ours, theirs, special", _torch_cases(), ids=lambda v: v if isinstance(v, str) else "")
def test_second_derivatives_match_torch(label, ours, theirs, special):
    torch = pytest.importorskip("torch")
    array = np.random.default_rng(4).standard_normal((2, 3))
    if special == "zero":
        array[0, 1] = 0.0
    (g, hv), (tg, thv) = _hessian_vector(ours, theirs, array, torch)
    np.testing.assert_allclose(g, tg, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(hv, thv, rtol=1e-10, atol=1e-12)


def test_interpolate_second_derivative_matches_torch():
    torch = pytest.importorskip("torch")
    array = np.random.default_rng(6).standard_normal((1, 3, 4, 2))  # [n, h, w, c]: channels last
    ours = lambda x: (ag.interpolate(x, size=(5, 3), mode="bicubic", align_corners=False) ** 3).sum()
    theirs = lambda t: (torch.nn.functional.interpolate(t.permute(0, 3, 1, 2), size=(5, 3), mode="bicubic",
                                                        align_corners=False) ** 3).sum()
    (g, hv), (tg, thv) = _hessian_vector(ours, theirs, array, torch)
    np.testing.assert_allclose(g, tg, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(hv, thv, rtol=1e-10, atol=1e-12)


def test_in_place_changes_through_reshape_and_transpose_views_match_torch():
    torch = pytest.importorskip("torch")

    def changed(x, reshape):
        y = x * 2.0
        reshape(y, (3, 2)).mul_(x.reshape(3, 2))  # CopySlices replaying a reshape
        y.transpose(0, 1).add_(x.transpose(0, 1) ** 2)  # ... and a transpose
        return (y ** 3).sum()

    array = np.random.default_rng(7).standard_normal((2, 3))
    (g, hv), (tg, thv) = _hessian_vector(lambda x: changed(x, lambda t, shape: t.reshape(shape)),
                                         lambda t: changed(t, lambda t, shape: t.view(shape)), array, torch)
    np.testing.assert_allclose(g, tg, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(hv, thv, rtol=1e-10, atol=1e-12)
