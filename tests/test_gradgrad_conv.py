"""Second (and third) derivatives of the C-kernel and bilinear ops: conv2d and the other
convolutions (their input and weight gradients are ConvPart nodes on the same kernels),
max / average pooling (fixed routing), matmul, linear and einsum. Values against
torch.autograd.grad(create_graph=True) where torch is installed (the weights through
ours_conv_weight_to_torch, images NHWC <-> NCHW), gradgradcheck over hypothesis-drawn
conv2d geometries, and a gradient-penalty step as WGAN-GP takes it."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import autograd_core as ag
from autograd_core import Tensor, gradgradcheck
from autograd_core.ops.convolution import ConvPart, ours_conv_weight_to_torch
from autograd_core.ops.pool import RouteToCells

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # the suite runs without torch; the comparisons skip
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed")


def _leaf(array):
    return Tensor(np.asarray(array, dtype=np.float64), requires_grad=True)


def _torch_leaf(array):
    return torch.tensor(np.asarray(array, dtype=np.float64), requires_grad=True)


def _nchw(t):
    """A torch NHWC tensor as NCHW (or [N, L, C] as [N, C, L])."""
    return t.permute(0, t.dim() - 1, *range(1, t.dim() - 1))


def _second_order_loss(grads, weights):
    """A scalar that depends on every first gradient nonlinearly: sum of w * g**2 / 2 + g."""
    total = 0
    for g, w in zip(grads, weights):
        total = total + (g * g * w * 0.5 + g).sum()
    return total


# ---- conv2d against torch ------------------------------------------------------------------

CONV2D_CASES = [
    dict(stride=1, padding="valid", dilation=1, groups=1, activation=None, bias=True),
    dict(stride=2, padding=1, dilation=1, groups=1, activation="relu", bias=True),
    dict(stride=1, padding="same", dilation=1, groups=1, activation=None, bias=False),
    dict(stride=1, padding=1, dilation=2, groups=1, activation=None, bias=True),
    dict(stride=1, padding=0, dilation=1, groups=2, activation="relu", bias=False),
    dict(stride=2, padding=1, dilation=1, groups=4, activation=None, bias=True),  # depthwise
]


@needs_torch
@pytest.mark.parametrize("case", CONV2D_CASES, ids=lambda c: "-".join("%s=%s" % kv for kv in c.items()))
def test_conv2d_second_derivatives_match_torch(case):
    rng = np.random.default_rng(1)
    groups = case["groups"]
    x = rng.standard_normal((2, 6, 5, 4))
    w = rng.standard_normal((3, 3, 4 // groups, 4))
    b = rng.standard_normal(4) if case["bias"] else None
    ours_in = [_leaf(x), _leaf(w)] + ([_leaf(b)] if b is not None else [])
    y = ag.conv2d(ours_in[0], ours_in[1], ours_in[2] if b is not None else None, case["stride"], case["padding"],
                  case["dilation"], groups, activation=case["activation"])
    v = rng.standard_normal(y.shape)
    scales = [rng.standard_normal(t.shape) for t in ours_in]
    grads = ag.grad((y * Tensor(v)).sum(), ours_in, create_graph=True)
    # the bias's second derivative is 0 (it enters the gradients only through the ReLU's
    # constant mask): None for it, made zeros on both sides
    ours = ag.grad(_second_order_loss(grads, [Tensor(s) for s in scales]), ours_in, allow_unused=True,
                   materialize_grads=True)

    theirs_in = [_torch_leaf(x), _torch_leaf(w)] + ([_torch_leaf(b)] if b is not None else [])
    out = F.conv2d(_nchw(theirs_in[0]), ours_conv_weight_to_torch(theirs_in[1]), theirs_in[2] if b is not None else None,
                   case["stride"], case["padding"], case["dilation"], groups)
    if case["activation"] == "relu":
        out = torch.relu(out)
    out = out.permute(0, 2, 3, 1)
    their_grads = torch.autograd.grad((out * torch.as_tensor(v)).sum(), theirs_in, create_graph=True)
    total = sum((g * g * torch.as_tensor(s) * 0.5 + g).sum() for g, s in zip(their_grads, scales))
    theirs = torch.autograd.grad(total, theirs_in, allow_unused=True, materialize_grads=True)
    assert [g.shape for g in ours] == [tuple(t.shape) for t in theirs]
    for mine, their in zip(ours, theirs):
        np.testing.assert_allclose(mine.data, their.numpy(), rtol=1e-9, atol=1e-9)


@needs_torch
@pytest.mark.parametrize("stride, padding, groups", [(1, 0, 1), (2, 1, 2)])
def test_conv_transpose2d_and_conv1d_second_derivatives_match_torch(stride, padding, groups):
    rng = np.random.default_rng(2)
    for kind in ("conv_transpose2d", "conv1d"):
        if kind == "conv_transpose2d":
            x, w = rng.standard_normal((2, 4, 3, 4)), rng.standard_normal((3, 3, 4 // groups, 4))
            ours_op = lambda a, k: ag.conv_transpose2d(a, k, None, stride, padding, groups=groups)
            torch_op = lambda a, k: F.conv_transpose2d(_nchw(a), ours_conv_weight_to_torch(k), None, stride, padding,
                                                       groups=groups).permute(0, 2, 3, 1)
        else:
            x, w = rng.standard_normal((2, 7, 4)), rng.standard_normal((3, 4 // groups, 2))
            ours_op = lambda a, k: ag.conv1d(a, k, None, stride, padding, 1, groups)
            torch_op = lambda a, k: F.conv1d(_nchw(a), ours_conv_weight_to_torch(k), None, stride, padding, 1,
                                             groups).permute(0, 2, 1)
        ours_in, theirs_in = [_leaf(x), _leaf(w)], [_torch_leaf(x), _torch_leaf(w)]
        y = ours_op(*ours_in)
        v = rng.standard_normal(y.shape)
        scales = [rng.standard_normal(a.shape) for a in (x, w)]
        grads = ag.grad((y * Tensor(v)).sum(), ours_in, create_graph=True)
        ours = ag.grad(_second_order_loss(grads, [Tensor(s) for s in scales]), ours_in)
        their_grads = torch.autograd.grad((torch_op(*theirs_in) * torch.as_tensor(v)).sum(), theirs_in,
                                          create_graph=True)
        total = sum((g * g * torch.as_tensor(s) * 0.5 + g).sum() for g, s in zip(their_grads, scales))
        for mine, their in zip(ours, torch.autograd.grad(total, theirs_in)):
            np.testing.assert_allclose(mine.data, their.numpy(), rtol=1e-9, atol=1e-9, err_msg=kind)


def _gradient_penalty_weight_grad(x, w, b):
    """d/dw of |d sum(relu(conv2d(x, w, b)) @ head) / dx|^2, ours."""
    x, w, b = _leaf(x), _leaf(w), _leaf(b)
    features = ag.conv2d(x, w, b, 1, "same", activation="relu")
    score = ag.conv2d(features, Tensor(np.full((3, 3, 3, 1), 0.1)), None, 2, 1).sum()
    (grad_x,) = ag.grad(score, [x], create_graph=True)
    penalty = (grad_x * grad_x).sum()
    return [g.data for g in ag.grad(penalty, [w, b], allow_unused=True, materialize_grads=True)]


@needs_torch
def test_gradient_penalty_of_a_conv_net_matches_torch():
    rng = np.random.default_rng(3)
    x, w, b = rng.standard_normal((2, 5, 5, 2)), rng.standard_normal((3, 3, 2, 3)), rng.standard_normal(3)
    ours = _gradient_penalty_weight_grad(x, w, b)
    tx, tw, tb = _torch_leaf(x), _torch_leaf(w), _torch_leaf(b)
    features = torch.relu(F.conv2d(_nchw(tx), ours_conv_weight_to_torch(tw), tb, 1, "same"))
    score = F.conv2d(features, torch.full((1, 3, 3, 3), 0.1, dtype=torch.float64), None, 2, 1).sum()
    (grad_x,) = torch.autograd.grad(score, tx, create_graph=True)
    theirs = torch.autograd.grad((grad_x * grad_x).sum(), [tw, tb], allow_unused=True, materialize_grads=True)
    for mine, their in zip(ours, theirs):
        np.testing.assert_allclose(mine, their.numpy(), rtol=1e-9, atol=1e-10)


def test_a_gradient_penalty_training_step_lowers_the_penalty():
    # no torch needed: the penalty's weight gradient is a descent direction
    rng = np.random.default_rng(4)
    x, w, b = rng.standard_normal((2, 5, 5, 2)), rng.standard_normal((3, 3, 2, 3)), rng.standard_normal(3)

    def penalty(weight):
        xt = _leaf(x)
        score = ag.conv2d(ag.conv2d(xt, Tensor(weight), Tensor(b), activation="relu"),
                          Tensor(np.full((3, 3, 3, 1), 0.1))).sum()
        (grad_x,) = ag.grad(score, [xt], create_graph=True)
        return float((grad_x * grad_x).sum().data)

    grad_w = _gradient_penalty_weight_grad(x, w, b)[0]
    assert np.abs(grad_w).max() > 0
    assert penalty(w - 1e-3 * grad_w) < penalty(w)


# ---- the second order runs on the C kernels; the first order is unchanged -------------------

def test_conv2d_gradients_are_conv_part_nodes_only_with_create_graph():
    x, w = _leaf(np.ones((1, 4, 4, 2))), _leaf(np.ones((3, 3, 2, 2)))
    (plain,) = ag.grad(ag.conv2d(x, w).sum(), [x])
    assert plain.grad_fn is None and not plain.requires_grad
    grad_x, grad_w = ag.grad(ag.conv2d(x, w).sum(), [x, w], create_graph=True)
    assert grad_x.grad_fn.function is ConvPart and grad_w.grad_fn.function is ConvPart
    # and their gradients again: ConvPart at the third order too
    (again,) = ag.grad((grad_x * grad_x).sum(), [w], create_graph=True)
    assert again.grad_fn is not None and again.requires_grad


def test_conv2d_third_derivative_by_gradgradcheck():
    rng = np.random.default_rng(5)
    x, w = _leaf(rng.standard_normal((1, 4, 4, 2))), _leaf(rng.standard_normal((2, 2, 2, 2)))

    def weight_gradient(x, w):  # d/dw sum(conv2d(x, w)**3): its second derivatives are third ones
        y = ag.conv2d(x, w, None, 1, 1)
        return ag.grad((y * y * y).sum(), [w], create_graph=True)[0]

    assert gradgradcheck(weight_gradient, (x, w)) is True


@given(st.data())
def test_conv2d_gradgradcheck_over_drawn_geometries(data):
    groups = data.draw(st.sampled_from([1, 2]), "groups")
    c_in = groups * data.draw(st.integers(1, 2), "in per group")
    c_out = groups * data.draw(st.integers(1, 2), "out per group")
    kh, kw = data.draw(st.integers(1, 3), "kh"), data.draw(st.integers(1, 3), "kw")
    stride = data.draw(st.integers(1, 2), "stride")
    dilation = data.draw(st.integers(1, 2), "dilation")
    padding = data.draw(st.sampled_from([0, 1, "same"]) if stride == 1 else st.sampled_from([0, 1]), "padding")
    h = data.draw(st.integers(dilation * (kh - 1) + 1, dilation * (kh - 1) + 3), "h")
    w = data.draw(st.integers(dilation * (kw - 1) + 1, dilation * (kw - 1) + 3), "w")
    activation = data.draw(st.sampled_from([None, "relu"]), "activation")
    with_bias = data.draw(st.booleans(), "bias")
    rng = np.random.default_rng(6)
    inputs = [_leaf(rng.standard_normal((2, h, w, c_in))), _leaf(rng.standard_normal((kh, kw, c_in // groups, c_out)))]
    if with_bias:
        inputs.append(_leaf(rng.standard_normal(c_out)))

    def fn(x, weight, bias=None):
        return ag.conv2d(x, weight, bias, stride, padding, dilation, groups, activation=activation)

    assert gradgradcheck(fn, tuple(inputs)) is True


# ---- pooling ----------------------------------------------------------------------------------

@needs_torch
@pytest.mark.parametrize("kind", ["max_pool2d", "max_pool2d_dilated", "avg_pool2d", "adaptive_max_pool2d"])
def test_pool_after_conv_second_derivatives_match_torch(kind):
    rng = np.random.default_rng(7)
    x, w = rng.standard_normal((2, 6, 6, 2)), rng.standard_normal((2, 2, 2, 3))
    ours_pool = {"max_pool2d": lambda t: ag.max_pool2d(t, 2, 1),
                 "max_pool2d_dilated": lambda t: ag.max_pool2d(t, 2, 1, 0, 2),
                 "avg_pool2d": lambda t: ag.avg_pool2d(t, 3, 2, 1),
                 "adaptive_max_pool2d": lambda t: ag.adaptive_max_pool2d(t, 2)}[kind]
    torch_pool = {"max_pool2d": lambda t: F.max_pool2d(t, 2, 1),
                  "max_pool2d_dilated": lambda t: F.max_pool2d(t, 2, 1, 0, 2),
                  "avg_pool2d": lambda t: F.avg_pool2d(t, 3, 2, 1),
                  "adaptive_max_pool2d": lambda t: F.adaptive_max_pool2d(t, 2)}[kind]
    xo, wo = _leaf(x), _leaf(w)
    y = ours_pool(ag.conv2d(xo, wo))
    v = rng.standard_normal(y.shape)
    vo = _leaf(v)  # the output gradient is an input too: the pool's second derivative w.r.t. it
    grads = ag.grad(y, [xo, wo], vo, create_graph=True)
    ours = ag.grad(_second_order_loss(grads, [Tensor(np.ones(x.shape)), Tensor(np.ones(w.shape))]), [xo, wo, vo])

    xt, wt, vt = _torch_leaf(x), _torch_leaf(w), _torch_leaf(v)
    out = torch_pool(F.conv2d(_nchw(xt), ours_conv_weight_to_torch(wt))).permute(0, 2, 3, 1)
    their_grads = torch.autograd.grad(out, [xt, wt], vt, create_graph=True)
    total = sum((g * g * 0.5 + g).sum() for g in their_grads)
    for mine, their in zip(ours, torch.autograd.grad(total, [xt, wt, vt])):
        np.testing.assert_allclose(mine.data, their.numpy(), rtol=1e-9, atol=1e-10)


def test_max_pool_second_derivative_in_x_is_zero_and_in_the_gradient_a_gather():
    rng = np.random.default_rng(8)
    x = _leaf(rng.standard_normal((1, 4, 4, 2)))
    v = _leaf(rng.standard_normal((1, 2, 2, 2)))
    (grad_x,) = ag.grad(ag.max_pool2d(x, 2), [x], v, create_graph=True)
    assert grad_x.grad_fn.function is RouteToCells
    u = rng.standard_normal(x.shape)
    # <u, grad_x> = <u at the maxima, v>: its gradient in v reads u at each window's maximum
    (grad_v,) = ag.grad((grad_x * Tensor(u)).sum(), [v], create_graph=True)
    windows = u.reshape(1, 2, 2, 2, 2, 2).transpose(0, 1, 3, 2, 4, 5).reshape(1, 2, 2, 4, 2)
    at_max = x.data.reshape(1, 2, 2, 2, 2, 2).transpose(0, 1, 3, 2, 4, 5).reshape(1, 2, 2, 4, 2).argmax(axis=3)
    np.testing.assert_array_equal(grad_v.data, np.take_along_axis(windows, at_max[:, :, :, None], 3)[:, :, :, 0])
    # and it does not depend on x: the routing is fixed
    (grad_x2,) = ag.grad((grad_x * Tensor(u)).sum(), [x], allow_unused=True, materialize_grads=True)
    np.testing.assert_array_equal(grad_x2.data, 0)


# ---- matmul, linear, einsum ----------------------------------------------------------------------

@needs_torch
@pytest.mark.parametrize("shapes", [((3, 4), (4, 2)), ((2, 1, 3, 4), (2, 4, 2)), ((4,), (2, 4, 3)), ((3, 4), (4,))])
def test_matmul_second_derivatives_match_torch(shapes):
    rng = np.random.default_rng(9)
    a, b = rng.standard_normal(shapes[0]), rng.standard_normal(shapes[1])
    ao, bo = _leaf(a), _leaf(b)
    y = ao @ bo
    v = rng.standard_normal(y.shape)
    vo = _leaf(v)
    grads = ag.grad(y, [ao, bo], vo, create_graph=True)
    ours = ag.grad(_second_order_loss(grads, [Tensor(np.full(a.shape, 0.5)), Tensor(np.full(b.shape, 2.0))]),
                   [ao, bo, vo])
    at, bt, vt = _torch_leaf(a), _torch_leaf(b), _torch_leaf(v)
    their_grads = torch.autograd.grad(at @ bt, [at, bt], vt, create_graph=True)
    total = sum((g * g * s * 0.5 + g).sum() for g, s in zip(their_grads, (0.5, 2.0)))
    for mine, their in zip(ours, torch.autograd.grad(total, [at, bt, vt])):
        np.testing.assert_allclose(mine.data, their.numpy(), rtol=1e-10, atol=1e-12)


@needs_torch
def test_linear_with_relu_hessian_vector_product_matches_torch():
    rng = np.random.default_rng(10)
    x, w, b = rng.standard_normal((5, 4)), rng.standard_normal((3, 4)), rng.standard_normal(3)
    direction = [rng.standard_normal(a.shape) for a in (x, w, b)]
    ours_in = [_leaf(a) for a in (x, w, b)]
    loss = (ag.linear(*ours_in, activation="relu") ** 2).sum()
    grads = ag.grad(loss, ours_in, create_graph=True)
    ours = ag.grad(sum((g * Tensor(d)).sum() for g, d in zip(grads, direction)), ours_in)
    theirs_in = [_torch_leaf(a) for a in (x, w, b)]
    their_loss = (torch.relu(F.linear(*theirs_in)) ** 2).sum()
    their_grads = torch.autograd.grad(their_loss, theirs_in, create_graph=True)
    theirs = torch.autograd.grad(sum((g * torch.as_tensor(d)).sum() for g, d in zip(their_grads, direction)),
                                 theirs_in)
    for mine, their in zip(ours, theirs):
        np.testing.assert_allclose(mine.data, their.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("equation, shapes", [("ij,jk->ik", [(2, 3), (3, 4)]), ("bii->bi", [(2, 3, 3)]),
                                               ("i,->i", [(3,), ()]), ("ij,j->", [(2, 3), (1,)]),
                                               ("iij,jk->ik", [(2, 2, 3), (3, 2)])])
def test_einsum_third_derivative_by_gradgradcheck(equation, shapes):
    rng = np.random.default_rng(11)
    inputs = tuple(_leaf(rng.standard_normal(s)) for s in shapes)

    def gradients(*operands):  # the first gradients of sum(einsum**2): gradgradcheck makes them third order
        y = ag.einsum(equation, *operands)
        return ag.grad((y * y).sum(), list(operands), create_graph=True)

    assert gradgradcheck(gradients, inputs) is True
