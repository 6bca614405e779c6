"""Higher derivatives of the pointwise ops and activations (ops/pointwise.py,
ops/activation.py): third derivatives against hand derivations, second derivatives
against torch.autograd.grad(create_graph=True) (skipped without torch), gradgradcheck over
the op sweep's hypothesis-drawn shapes, and the graph-mode first derivative equal to the
first-order (numpy) one."""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra.numpy import array_shapes, mutually_broadcastable_shapes

import autograd_core as ac
from autograd_core import Tensor, gradgradcheck, registry

from op_table import TABLE

OPS = registry.ops()


def _derivatives(fn, x, order):
    """[f'(x), f''(x), ...] up to order, elementwise (fn elementwise), each by
    autograd_core.grad of the sum of the previous one, with create_graph=True."""
    x = Tensor(np.asarray(x, dtype=np.float64), requires_grad=True)
    current, found = fn(x), []
    for _ in range(order):
        (current,) = ac.grad(current.sum(), x, create_graph=True)
        found.append(current.data.copy())
    return found


X = np.linspace(-2.5, 2.5, 11)


@pytest.mark.parametrize("name, fn, hand", [
    ("tanh", ac.tanh, lambda x: [1 - np.tanh(x) ** 2, -2 * np.tanh(x) * (1 - np.tanh(x) ** 2),
                                 -2 * (1 - np.tanh(x) ** 2) * (1 - 3 * np.tanh(x) ** 2)]),
    ("sigmoid", ac.sigmoid, lambda x: (lambda s: [s * (1 - s), s * (1 - s) * (1 - 2 * s),
                                                  s * (1 - s) * (1 - 6 * s + 6 * s * s)])(1 / (1 + np.exp(-x)))),
    ("sin", ac.sin, lambda x: [np.cos(x), -np.sin(x), -np.cos(x)]),
    ("erf", ac.erf, lambda x: [2 / math.sqrt(math.pi) * np.exp(-x * x), -4 * x / math.sqrt(math.pi) * np.exp(-x * x),
                               (8 * x * x - 4) / math.sqrt(math.pi) * np.exp(-x * x)]),
    ("atan", ac.atan, lambda x: [1 / (1 + x * x), -2 * x / (1 + x * x) ** 2, (6 * x * x - 2) / (1 + x * x) ** 3]),
    ("logsigmoid", ac.logsigmoid, lambda x: (lambda s: [1 - s, -s * (1 - s), -s * (1 - s) * (1 - 2 * s)])(
        1 / (1 + np.exp(-x)))),
    ("silu", ac.silu, lambda x: (lambda s: [s * (1 + x * (1 - s)), s * (1 - s) * (2 + x * (1 - 2 * s)),
                                            s * (1 - s) * (3 * (1 - 2 * s) + x * (1 - 6 * s + 6 * s * s))])(
        1 / (1 + np.exp(-x)))),
])
def test_third_derivatives_match_hand_derivations(name, fn, hand):
    for got, expected in zip(_derivatives(fn, X, 3), hand(X)):
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12, err_msg=name)


def test_gelu_third_derivative_matches_the_normal_density():
    # gelu = x Phi(x): gelu' = Phi + x phi, gelu'' = (2 - x^2) phi, gelu''' = (x^3 - 4x) phi
    phi = np.exp(-X * X / 2) / math.sqrt(2 * math.pi)
    found = _derivatives(ac.gelu, X, 3)
    np.testing.assert_allclose(found[1], (2 - X * X) * phi, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(found[2], (X ** 3 - 4 * X) * phi, rtol=1e-10, atol=1e-12)


def test_erfinv_second_derivative_is_two_y_slope_squared():
    # y = erfinv(x): y' = sqrt(pi)/2 exp(y^2), y'' = 2 y y'^2 (its output recomputed in the graph)
    x = np.linspace(-0.9, 0.9, 9)
    first, second = _derivatives(ac.erfinv, x, 2)
    y = ac.erfinv(Tensor(x)).data
    np.testing.assert_allclose(first, math.sqrt(math.pi) / 2 * np.exp(y * y), rtol=1e-10)
    np.testing.assert_allclose(second, 2 * y * first * first, rtol=1e-9)


def test_zero_gradient_ops_have_zero_second_derivatives_even_for_infinite_gradients():
    # floor's gradient is 0 whatever the output gradient: inf or NaN included (not grad * 0)
    x = Tensor(np.array([0.3, 1.7, -2.2]), requires_grad=True)
    v = Tensor(np.array([np.inf, np.nan, 1.0]), requires_grad=True)
    (g,) = ac.grad(ac.floor(x), x, v, create_graph=True)
    np.testing.assert_array_equal(g.data, 0.0)
    assert g.requires_grad
    (gv,) = ac.grad(g.sum(), v, allow_unused=True)
    np.testing.assert_array_equal(gv.data, 0.0)


# ---- the graph-mode first derivative is the first-order one ------------------------------
_UNARY = [name for name in sorted(OPS) if TABLE.get(name) is not None and TABLE[name].sweep
          and TABLE[name].sweep[0] == "unary" and TABLE[name].gradcheck and OPS[name].differentiable
          and (OPS[name].function_class or OPS[name].function).__module__.rsplit(".", 1)[-1]
          in ("pointwise", "activation", "elementwise")]


def _sweep_values(generator, seed, shape):
    return np.asarray(generator(np.random.default_rng(seed), *shape), dtype=np.float64)


def test_the_sweep_lists_this_areas_unary_ops():
    assert len(_UNARY) >= 30 and {"sin", "erfinv", "mish", "selu", "hardswish"} <= set(_UNARY)


@pytest.mark.parametrize("name", _UNARY)
def test_graph_mode_gradient_equals_the_first_order_gradient(name):
    _, values, kwargs = TABLE[name].sweep
    data = _sweep_values(values, 7, (3, 4))
    function = OPS[name].function
    v = np.random.default_rng(1).normal(size=data.shape)
    x = Tensor(data, requires_grad=True)
    function(x, **kwargs).backward(Tensor(v))
    y = Tensor(data, requires_grad=True)
    (g,) = ac.grad(function(y, **kwargs), y, Tensor(v), create_graph=True)
    np.testing.assert_allclose(g.data, x.grad.data, rtol=1e-12, atol=1e-14)


# ---- gradgradcheck over the op sweep's drawn shapes --------------------------------------
SWEPT_UNARY = ["sin", "tan", "erfinv", "rsqrt", "expm1", "mish", "selu", "softsign", "hardswish", "logsigmoid"]
SWEPT_BINARY = ["logaddexp", "hypot", "atan2", "copysign", "remainder", "fmod"]
SMALL_SHAPES = array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3)


@pytest.mark.parametrize("name", SWEPT_UNARY)
@settings(max_examples=6)
@given(shape=SMALL_SHAPES, seed=st.integers(0, 2 ** 16))
def test_unary_gradgradcheck_over_drawn_shapes(name, shape, seed):
    _, values, kwargs = TABLE[name].sweep
    function = OPS[name].function
    x = Tensor(_sweep_values(values, seed, shape), requires_grad=True)
    if x.data.size == 0:
        # nothing to perturb: the second derivative is empty, and must still come back
        (g,) = ac.grad(function(x, **kwargs), x, Tensor(np.zeros(shape)), create_graph=True)
        assert g.shape == shape
        return
    assert gradgradcheck(lambda t: function(t, **kwargs), (x,)) is True


@pytest.mark.parametrize("name", SWEPT_BINARY)
@settings(max_examples=6)
@given(shapes=mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, min_side=1, max_side=3),
       seed=st.integers(0, 2 ** 16))
def test_binary_gradgradcheck_over_drawn_broadcast_shapes(name, shapes, seed):
    _, first, second, kwargs = TABLE[name].sweep
    a_shape, b_shape = shapes.input_shapes
    function = OPS[name].function
    a = Tensor(_sweep_values(first, seed, a_shape), requires_grad=True)
    b = Tensor(_sweep_values(second, seed + 1, b_shape), requires_grad=True)
    assert gradgradcheck(lambda x, y: function(x, y, **kwargs), (a, b)) is True


def test_binary_ops_with_a_number_operand():
    x = Tensor(np.array([0.4, 1.3, 2.1]), requires_grad=True)
    for fn in (lambda t: ac.hypot(t, 1.5), lambda t: ac.logaddexp(0.5, t), lambda t: ac.xlogy(t, 2.0),
               lambda t: ac.xlogy(1.5, t), lambda t: ac.remainder(2.5, t), lambda t: ac.lerp(t, 2.0, 0.3),
               lambda t: ac.lerp(t, 2.0, t)):
        assert gradgradcheck(fn, (x,)) is True


def test_xlogy_at_zero_keeps_finite_second_derivatives():
    # a == 0 and b <= 0: the gradient to a is 0 (torch's rule) and so are its derivatives,
    # where log(b) and 1 / b would be NaN or inf
    a = Tensor(np.array([0.0, 0.0, 1.0]), requires_grad=True)
    b = Tensor(np.array([0.0, -1.0, 2.0]), requires_grad=True)
    (ga,) = ac.grad(ac.xlogy(a, b), a, Tensor(np.ones(3)), create_graph=True)
    np.testing.assert_allclose(ga.data, [0.0, 0.0, math.log(2.0)])
    gb, gga = ac.grad(ga.sum(), (b, a), allow_unused=True, materialize_grads=True)
    np.testing.assert_allclose(gb.data, [0.0, 0.0, 0.5])
    np.testing.assert_array_equal(gga.data, 0.0)


# ---- against torch ---------------------------------------------------------------------
def _torch_cases():
    rng = np.random.default_rng(3)
    x = rng.uniform(-1.8, 1.8, (2, 3))
    positive = rng.uniform(0.3, 2.0, (2, 3))
    unit = rng.uniform(-0.8, 0.8, (2, 3))
    weight = rng.uniform(0.1, 0.5, (3,))
    return [
        ("tan", lambda m, t: m.tan(t), (unit,)),
        ("erfinv", lambda m, t: m.erfinv(t), (unit,)),
        ("rsqrt", lambda m, t: m.rsqrt(t), (positive,)),
        ("acosh", lambda m, t: m.acosh(t), (positive + 1.1,)),
        ("gelu", lambda m, t: m.gelu(t), (x,)),
        ("gelu tanh", lambda m, t: m.gelu(t, approximate="tanh"), (x,)),
        ("mish", lambda m, t: m.mish(t), (x,)),
        ("silu", lambda m, t: m.silu(t), (x,)),
        ("selu", lambda m, t: m.selu(t), (x,)),
        # (an alpha exact in float32: at alpha=0.7 torch's float64 celu gradient differs from
        # exp(x / alpha) by ~1e-8 relative, while its forward is exact)
        ("celu", lambda m, t: m.celu(t, alpha=0.5), (x,)),
        ("softsign", lambda m, t: m.softsign(t), (x,)),
        ("hardswish", lambda m, t: m.hardswish(t), (x,)),
        ("glu", lambda m, t: m.glu(t, dim=0), (x,)),
        ("prelu", lambda m, t, w: m.prelu(t, w), (x, weight)),
        ("logaddexp", lambda m, a, b: m.logaddexp(a, b), (x, x[::-1] * 0.7)),
        ("hypot", lambda m, a, b: m.hypot(a, b), (x, positive)),
        ("xlogy", lambda m, a, b: m.xlogy(a, b), (x, positive)),
        ("atan2", lambda m, a, b: m.atan2(a, b), (x, positive)),
        ("lerp", lambda m, a, b, w: m.lerp(a, b, w), (x, positive, unit)),
    ]


class _TorchNames:
    """The functions the cases call, in torch (torch.nn.functional for the activations)."""

    def __init__(self, torch):
        import torch.nn.functional as F
        self.torch, self.F = torch, F

    def __getattr__(self, name):
        if name in ("gelu", "mish", "silu", "selu", "celu", "softsign", "hardswish", "glu"):
            return getattr(self.F, name)
        return getattr(self.torch, name)


@pytest.mark.parametrize("name, fn, arrays", _torch_cases(), ids=[c[0] for c in _torch_cases()])
def test_second_derivatives_match_torch(name, fn, arrays):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    ours = [Tensor(a, requires_grad=True) for a in arrays]
    out = fn(ac, *ours)
    v = rng.normal(size=out.shape)
    w = [rng.normal(size=a.shape) for a in arrays]
    firsts = ac.grad(out, ours, Tensor(v), create_graph=True)
    total = sum((f * Tensor(wi)).sum() for f, wi in zip(firsts, w))
    seconds = ac.grad(total, ours)

    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    out_t = fn(_TorchNames(torch), *theirs)
    firsts_t = torch.autograd.grad(out_t, theirs, torch.tensor(v), create_graph=True)
    total_t = sum((f * torch.tensor(wi)).sum() for f, wi in zip(firsts_t, w))
    seconds_t = torch.autograd.grad(total_t, theirs)
    for got, expected in zip(firsts, firsts_t):
        np.testing.assert_allclose(got.data, expected.detach().numpy(), rtol=1e-10, atol=1e-12, err_msg=name)
    for got, expected in zip(seconds, seconds_t):
        np.testing.assert_allclose(got.data, expected.numpy(), rtol=1e-9, atol=1e-11, err_msg=name)
