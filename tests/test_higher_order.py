"""Higher-order gradients as a user meets them: autograd_core.grad, backward with
create_graph and inputs=, the functional API (autograd_core.func), gradgradcheck, users'
own Functions, hooks, retain_graph and no_grad, third derivatives against hand
derivations, the errors torch gives, and the memory of a second-order graph."""
import gc
import weakref

import numpy as np
import pytest

import autograd_core as ag
from autograd_core import Function, GradcheckError, Tensor, func, gradcheck, gradgradcheck


def leaf(values):
    return ag.tensor(np.asarray(values, dtype=np.float64), requires_grad=True)


X = [0.3, -0.7, 1.2, 0.05]


# ---- autograd_core.grad ---------------------------------------------------------------
def test_grad_returns_gradients_without_touching_dot_grad():
    x, w = leaf(X), leaf([1.0, 2.0, 3.0, 4.0])
    (gx, gw) = ag.grad((x * w).sum(), (x, w))
    np.testing.assert_allclose(gx.data, w.data)
    np.testing.assert_allclose(gw.data, x.data)
    assert x.grad is None and w.grad is None
    assert not gx.requires_grad


def test_grad_of_grad_to_the_third_order_matches_hand_derivatives():
    x = leaf(X)
    t = np.tanh(x.data)
    (g,) = ag.grad(x.tanh().sum(), x, create_graph=True)
    (h,) = ag.grad(g.sum(), x, create_graph=True)
    (k,) = ag.grad(h.sum(), x)
    np.testing.assert_allclose(g.data, 1 - t ** 2)
    np.testing.assert_allclose(h.data, -2 * t * (1 - t ** 2))
    np.testing.assert_allclose(k.data, (-2 + 6 * t ** 2) * (1 - t ** 2))


def test_third_derivative_of_sigmoid():
    x = leaf(X)
    s = 1 / (1 + np.exp(-x.data))
    (g,) = ag.grad(x.sigmoid().sum(), x, create_graph=True)
    (h,) = ag.grad(g.sum(), x, create_graph=True)
    (k,) = ag.grad(h.sum(), x)
    np.testing.assert_allclose(h.data, s * (1 - s) * (1 - 2 * s))
    np.testing.assert_allclose(k.data, s * (1 - s) * (1 - 6 * s + 6 * s ** 2))


def test_grad_with_non_leaf_inputs_gives_partial_derivatives():
    x = leaf(X)
    y = x * 2
    z = (y * y).sum() + x.sum()
    (gy, gx) = ag.grad(z, (y, x))
    np.testing.assert_allclose(gy.data, 2 * y.data)
    np.testing.assert_allclose(gx.data, 8 * x.data + 1)  # the total derivative, as torch


def test_grad_outputs_and_several_outputs():
    x = leaf(X)
    v = np.array([1.0, -2.0, 0.5, 3.0])
    (g,) = ag.grad([x * 3, (x * x).sum()], x, [v, None])
    np.testing.assert_allclose(g.data, 3 * v + 2 * x.data)


def test_create_graph_under_no_grad_still_records_the_backward():
    x = leaf(X)
    y = (x ** 3).sum()
    with ag.no_grad():
        (g,) = ag.grad(y, x, create_graph=True)
    assert g.requires_grad
    (h,) = ag.grad(g.sum(), x)
    np.testing.assert_allclose(h.data, 6 * x.data)


def test_retain_graph_defaults_to_create_graph():
    x = leaf(X)
    y = (x.exp() * x).sum()
    ag.grad(y, x, create_graph=True)
    (again,) = ag.grad(y, x)  # the graph was retained
    np.testing.assert_allclose(again.data, np.exp(x.data) * (1 + x.data))
    with pytest.raises(RuntimeError, match="second time"):
        ag.grad(y, x)  # that one freed it


# ---- errors as torch gives them --------------------------------------------------------
def test_grad_errors_name_what_is_wrong():
    x = leaf(X)
    constant = ag.tensor([1.0, 2.0])
    with pytest.raises(RuntimeError, match=r"outputs\[0\].*does not require grad"):
        ag.grad(constant.sum(), x)
    with pytest.raises(RuntimeError, match=r"inputs\[0\].*does not require grad"):
        ag.grad((x * 2).sum(), constant)
    unused = leaf([1.0])
    with pytest.raises(RuntimeError, match=r"inputs\[1\].*not used.*allow_unused"):
        ag.grad((x * 2).sum(), (x, unused))
    gx, gu = ag.grad((x * 2).sum(), (x, unused), allow_unused=True)
    assert gu is None and np.allclose(gx.data, 2)
    with pytest.raises(RuntimeError, match=r"grad_outputs\[0\] has shape \(3,\).*\(4,\)"):
        ag.grad(x * 2, x, np.ones(3))
    with pytest.raises(RuntimeError, match="grad_outputs"):
        ag.grad(x * 2, x)  # a non-scalar output needs grad_outputs
    with pytest.raises(TypeError, match="inputs"):
        ag.grad((x * 2).sum(), [x, 3.0])


# ---- Tensor.backward ---------------------------------------------------------------------
def test_backward_create_graph_makes_dot_grad_differentiable():
    x = leaf(X)
    (x ** 3).sum().backward(create_graph=True)
    assert x.grad.requires_grad
    first = x.grad
    x.grad = None
    first.sum().backward()
    np.testing.assert_allclose(x.grad.data, 6 * x.data)


def test_backward_create_graph_accumulates_in_the_graph():
    x = leaf(X)
    (x ** 2).sum().backward(create_graph=True)
    (x ** 3).sum().backward(create_graph=True)
    np.testing.assert_allclose(x.grad.data, 2 * x.data + 3 * x.data ** 2)
    (h,) = ag.grad(x.grad.sum(), x)
    np.testing.assert_allclose(h.data, 2 + 6 * x.data)


def test_backward_inputs_limits_which_tensors_get_a_gradient():
    x, w = leaf(X), leaf([1.0, 2.0, 3.0, 4.0])
    (x * w).sum().backward(inputs=[w])
    assert x.grad is None
    np.testing.assert_allclose(w.grad.data, x.data)


# ---- hooks ----------------------------------------------------------------------------
def test_hooks_see_and_change_the_gradient_tensor_in_the_graph():
    x = leaf(X)
    y = x * x
    seen = []
    y.register_hook(lambda g: seen.append(g.requires_grad) or g * 2)
    (g,) = ag.grad(y.sum(), x, create_graph=True)
    assert seen == [False]  # the seed 1 is a constant; the hook's result joins the graph
    np.testing.assert_allclose(g.data, 4 * x.data)
    (h,) = ag.grad(g.sum(), x)
    np.testing.assert_allclose(h.data, 4.0)


def test_leaf_hooks_run_in_grad():
    x = leaf(X)
    x.register_hook(lambda g: g * 10)
    (g,) = ag.grad((x * 2).sum(), x)
    np.testing.assert_allclose(g.data, 20.0)


# ---- users' own Functions --------------------------------------------------------------
class CubeWithTensorFormula(Function):
    """A user's op whose backward is written with differentiable ops: it works to any order."""

    @staticmethod
    def forward(ctx, x):
        return x ** 3

    @staticmethod
    def differentiable_backward(ctx, grad):
        (x,) = ctx.inputs
        return 3 * x ** 2 * grad


class CubeWithNumpyBackward(Function):
    """A user's op with a numpy backward only: its gradient cannot be differentiated again."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x ** 3

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return 3 * x ** 2 * grad


def test_users_function_with_a_tensor_formula_is_differentiable_to_any_order():
    x = leaf(X)
    assert gradcheck(CubeWithTensorFormula.apply, (x,))
    assert gradgradcheck(CubeWithTensorFormula.apply, (x,))
    (g,) = ag.grad(CubeWithTensorFormula.apply(x).sum(), x, create_graph=True)
    (h,) = ag.grad(g.sum(), x, create_graph=True)
    (k,) = ag.grad(h.sum(), x)
    np.testing.assert_allclose(k.data, 6.0)


def test_users_function_with_only_a_numpy_backward_raises_naming_it():
    x = leaf(X)
    (g,) = ag.grad(CubeWithNumpyBackward.apply(x).sum(), x, create_graph=True)
    np.testing.assert_allclose(g.data, 3 * x.data ** 2)  # the first derivative is right
    with pytest.raises(RuntimeError, match="CubeWithNumpyBackward.*not differentiable"):
        ag.grad(g.sum(), x)
    with pytest.raises(RuntimeError, match="CubeWithNumpyBackward"):
        gradgradcheck(CubeWithNumpyBackward.apply, (x,))


def test_gradgradcheck_catches_a_wrong_second_derivative():
    class WrongSecond(Function):
        @staticmethod
        def forward(ctx, x):
            return x ** 3

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.inputs
            return 3 * x.data ** 2 * grad

        @staticmethod
        def differentiable_backward(ctx, grad):
            (x,) = ctx.inputs
            return 3 * x.detach() ** 2 * grad  # detached: its second derivative is lost

    x = leaf(X)
    assert gradcheck(WrongSecond.apply, (x,))
    with pytest.raises(GradcheckError):
        gradgradcheck(WrongSecond.apply, (x,))


# ---- the functional API ------------------------------------------------------------------
def cubic(x):
    return (x.tanh() * x.exp()).sum() + (x ** 3).sum()


def test_hessian_hvp_and_jvp_agree_with_each_other_and_with_differences():
    x = ag.tensor(np.array(X))
    hessian = func.hessian(cubic, x)
    assert hessian.shape == (4, 4)
    v = ag.tensor(np.array([1.0, -1.0, 0.5, 2.0]))
    value, product = func.hvp(cubic, x, v)
    np.testing.assert_allclose(product.data, hessian.data @ v.data)
    np.testing.assert_allclose(value.data, cubic(x).data)
    # jvp of the gradient is H v too (double-vjp trick)
    _, tangent = func.jvp(lambda y: func.grad(cubic)(y), x, v)
    np.testing.assert_allclose(tangent.data, product.data)
    # finite differences of the gradient
    eps = 1e-6
    g = lambda d: func.grad(cubic)(ag.tensor(x.data + d)).data
    numeric = np.stack([(g(eps * e) - g(-eps * e)) / (2 * eps) for e in np.eye(4)], 1)
    np.testing.assert_allclose(hessian.data, numeric, atol=1e-6)


def test_jacobian_shapes_follow_torch():
    x, y = ag.tensor(np.ones((2, 3))), ag.tensor(np.ones(4))
    single = func.jacobian(lambda a: a.exp(), x)
    assert single.shape == (2, 3, 2, 3)
    pair = func.jacobian(lambda a, b: (a.sum() * b), (x, y))
    assert isinstance(pair, tuple) and pair[0].shape == (4, 2, 3) and pair[1].shape == (4, 4)
    np.testing.assert_allclose(pair[1].data, 6 * np.eye(4))


def test_vjp_and_grad_transforms_with_argnums():
    x, w = ag.tensor(np.array(X)), ag.tensor(np.array([1.0, 2.0, 3.0, 4.0]))
    out, (gx, gw) = func.vjp(lambda a, b: a * b, (x, w), ag.ones(4, dtype="float64"))
    np.testing.assert_allclose(gx.data, w.data)
    np.testing.assert_allclose(gw.data, x.data)
    loss = lambda a, b: (a * b * b).sum()
    np.testing.assert_allclose(func.grad(loss, argnums=1)(x, w).data, 2 * x.data * w.data)
    value, (ga, gb) = func.value_and_grad(loss, argnums=(0, 1))(x, w)
    np.testing.assert_allclose(value.data, loss(x, w).data)
    np.testing.assert_allclose(ga.data, w.data ** 2)
    # grad of grad (a scalar function of a scalar): d^2/dx^2 x^4 = 12 x^2
    s = ag.tensor(np.array(0.5))
    np.testing.assert_allclose(func.grad(func.grad(lambda t: t ** 4))(s).data, 12 * 0.25)
    with pytest.raises(RuntimeError, match="one-element"):
        func.grad(lambda a: a * 2)(x)
    with pytest.raises(ValueError, match="argnums"):
        func.grad(loss, argnums=2)(x, w)


def test_functional_api_against_torch():
    torch = pytest.importorskip("torch")
    data = np.array(X)
    ours = func.hessian(cubic, ag.tensor(data))
    theirs = torch.autograd.functional.hessian(lambda t: (t.tanh() * t.exp()).sum() + (t ** 3).sum(),
                                               torch.tensor(data))
    np.testing.assert_allclose(ours.data, theirs.numpy(), rtol=1e-12)
    v = np.array([0.5, 1.0, -1.0, 2.0])
    _, ours_jvp = func.jvp(lambda t: t.sin() * t, ag.tensor(data), ag.tensor(v))
    _, theirs_jvp = torch.autograd.functional.jvp(lambda t: t.sin() * t, torch.tensor(data), torch.tensor(v))
    np.testing.assert_allclose(ours_jvp.data, theirs_jvp.numpy(), rtol=1e-12)


def test_functional_api_leaves_inputs_alone():
    x = ag.tensor(np.array(X))
    before = x.data.copy()
    func.hessian(cubic, x)
    assert not x.requires_grad and x.grad is None
    np.testing.assert_array_equal(x.data, before)


# ---- memory ------------------------------------------------------------------------------
def test_a_dropped_second_order_graph_is_freed():
    x = leaf(np.linspace(-1, 1, 1000))
    (g,) = ag.grad((x.tanh() * x.exp()).sum(), x, create_graph=True)
    (h,) = ag.grad(g.sum(), x, create_graph=True)
    watched = weakref.ref(h.grad_fn)
    first = weakref.ref(g.grad_fn)
    del g, h
    assert watched() is None and first() is None  # by reference counting, no cycle left
    gc.collect()


# ---- the worked examples (benchmarks/higher_order_examples.py), briefly -------------------
def test_worked_examples_run_and_match_torch():
    from benchmarks import higher_order_examples as examples

    losses = examples.gradient_penalty(ag, ag.grad, 5)
    assert losses[-1] < losses[0]
    newton, hessian_free = examples.newton_ours(3)
    assert newton[1] < newton[0] and newton[3] <= newton[2] + 1e-12
    assert hessian_free < newton[0]
    try:
        import torch
    except ImportError:
        return
    np.testing.assert_allclose(losses, examples.gradient_penalty(torch, torch.autograd.grad, 5), rtol=1e-10)
    theirs, theirs_free = examples.newton_torch(torch, 3)
    np.testing.assert_allclose(newton, theirs, rtol=1e-10)
    np.testing.assert_allclose(hessian_free, theirs_free, rtol=1e-10)


def test_every_function_of_the_library_has_a_second_derivative_or_says_why_not():
    import importlib
    import pkgutil

    import nn
    from autograd_core import ops
    from autograd_core.function import _OnceDifferentiable

    for info in pkgutil.iter_modules(ops.__path__):
        importlib.import_module("autograd_core.ops." + info.name)
    for info in pkgutil.walk_packages(nn.__path__, "nn."):
        if not info.name.endswith("__main__"):
            importlib.import_module(info.name)

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    missing = sorted("%s.%s" % (cls.__module__, cls.__qualname__) for cls in set(subclasses(Function))
                     if cls.__module__.split(".")[0] in ("autograd_core", "nn") and cls is not _OnceDifferentiable
                     and cls.differentiable_backward is None and cls.composite is None and not cls.linear
                     and not getattr(cls, "once_differentiable", None))
    assert not missing, "Functions with no graph_backward form and no once_differentiable reason: %s" % missing


def test_a_graph_backward_that_returns_an_array_is_an_error():
    class Detached(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, grad):
            return grad * 2

        @staticmethod
        def differentiable_backward(ctx, grad):
            return grad.data * 2  # an array: its derivative would be lost

    x = leaf(X)
    with pytest.raises(RuntimeError, match="Detached.graph_backward returned a numpy array"):
        ag.grad(Detached.apply(x).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="Number.graph_backward returned float"):
        class Number(Detached):
            @staticmethod
            def differentiable_backward(ctx, grad):
                return 2.0
        ag.grad(Number.apply(x).sum(), x, create_graph=True)
