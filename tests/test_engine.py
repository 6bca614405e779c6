"""Engine semantics: graph shapes (diamonds, reuse, very deep chains), retain_graph, grad
mode, hooks, retain_grad, detach, gradient accumulation, freeing saved values, explicit
gradients, and users' own Function subclasses."""
import gc
import sys
import threading
import weakref

import numpy as np
import pytest

import autograd_core as ag
from autograd_core import Function, gradcheck

from strategies import leaf


def grad_of(t):
    return None if t.grad is None else t.grad.numpy()


# -- graph shapes -----------------------------------------------------------------------------
def test_diamond():
    x = leaf([1.0, -2.0, 3.0])
    a, b = x * 2, x * 3
    (a * b).sum().backward()  # d(6 x^2)/dx
    np.testing.assert_allclose(grad_of(x), 12 * x.numpy())


def test_value_feeding_several_ops():
    x = leaf([0.5, 1.5])
    y = x * x + x - ag.exp(x) / x  # x used five times
    y.sum().backward()
    value = x.numpy()
    np.testing.assert_allclose(grad_of(x), 2 * value + 1 - np.exp(value) * (value - 1) / value ** 2)


def test_reused_non_leaf_gets_its_gradients_summed_once():
    x = leaf([1.0, 2.0])
    h = x * 3
    seen = []
    h.register_hook(lambda g: seen.append(g.numpy().copy()))
    (h * h + h).sum().backward()
    assert len(seen) == 1  # the hook sees the total, once
    np.testing.assert_allclose(seen[0], 2 * h.numpy() + 1)
    np.testing.assert_allclose(grad_of(x), 3 * (2 * h.numpy() + 1))


def test_branch_that_needs_no_grad():
    x = leaf([1.0, 2.0])
    constant = ag.tensor([3.0, 4.0], dtype=np.float64)
    out = (x * constant + constant * constant).sum()
    out.backward()
    np.testing.assert_array_equal(grad_of(x), [3.0, 4.0])
    assert constant.grad is None


def test_deep_chain_needs_no_recursion():
    depth = 100_000
    assert depth > 10 * sys.getrecursionlimit()  # a recursive walk would overflow the stack
    x = ag.tensor(2.0, requires_grad=True)
    y = x
    for _ in range(depth):
        y = -y
    y.backward()
    assert x.grad.item() == 1.0  # an even number of negations
    del y
    gc.collect()  # freeing the chain must not recurse either


def test_leaf_backward_directly():
    x = leaf([1.0, 2.0])
    x.backward(np.array([3.0, 4.0]))
    np.testing.assert_array_equal(grad_of(x), [3.0, 4.0])


# -- retain_graph ---------------------------------------------------------------------------------
def test_retain_graph_allows_a_second_backward():
    x = leaf([1.0, 2.0])
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_array_equal(grad_of(x), 2 * 2 * x.numpy())  # accumulated twice


def test_second_backward_without_retain_graph_raises():
    x = leaf([1.0, 2.0])
    y = (x.exp() * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="second time.*retain_graph=True"):
        y.backward()


def test_backward_through_a_freed_part_of_the_graph_raises():
    x = leaf([1.0, 2.0])
    h = x * x
    h.sum().backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        (h * 2).sum().backward()


def test_saved_values_are_freed_after_backward():
    x = leaf([1.0, 2.0])
    y = x * x
    z = y + 1
    ctx, add_ctx = y.grad_fn, z.grad_fn
    # binary elementwise ops save (a, b, result)
    assert len(ctx.saved_tensors) == 3 and hasattr(add_ctx, "shapes")
    z.sum().backward()
    assert ctx.freed and ctx._saved == ()
    assert not hasattr(add_ctx, "shapes")  # attributes ops stored on ctx go too
    with pytest.raises(RuntimeError, match="freed"):
        ctx.saved_tensors


def test_saved_values_are_kept_with_retain_graph():
    x = leaf([1.0, 2.0])
    y = x * x
    y.sum().backward(retain_graph=True)
    assert not y.grad_fn.freed and len(y.grad_fn.saved_tensors) == 3


class SaveScratch(Function):
    """Saves a large array of its own, so that a weak reference can watch it die."""
    scratch = None

    @staticmethod
    def forward(ctx, a):
        scratch = np.full(a.shape, 2.0)
        SaveScratch.scratch = weakref.ref(scratch)
        ctx.save_for_backward(scratch)
        return a * scratch

    @staticmethod
    def backward(ctx, grad):
        (scratch,) = ctx.saved_tensors
        return grad * scratch


def test_saved_arrays_are_released_from_memory():
    x = leaf([1.0, 2.0])
    y = SaveScratch.apply(x).sum()
    gc.collect()
    assert SaveScratch.scratch() is not None
    y.backward()
    gc.collect()
    assert SaveScratch.scratch() is None  # y still alive, its saved array is not
    np.testing.assert_array_equal(grad_of(x), [2.0, 2.0])


def test_activations_are_released_while_the_result_is_kept():
    # keeping a loss (losses.append(loss)) must not keep its graph's activations alive
    x = leaf([1.0, 2.0])
    hidden = x.exp()
    watcher = weakref.ref(hidden)
    loss = (hidden * 2).sum()
    del hidden
    gc.collect()
    assert watcher() is not None  # the graph holds it until backward
    loss.backward()
    gc.collect()
    assert watcher() is None
    assert loss.grad_fn.freed and loss.grad_fn.inputs == ()


# -- grad mode ------------------------------------------------------------------------------------
def test_no_grad_context_manager():
    x = leaf([1.0, 2.0])
    assert ag.is_grad_enabled()
    with ag.no_grad():
        assert not ag.is_grad_enabled()
        y = x * 2
    assert ag.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.sum().backward()


def test_no_grad_restores_the_mode_after_an_exception():
    with pytest.raises(ZeroDivisionError):
        with ag.no_grad():
            1 / 0
    assert ag.is_grad_enabled()


def test_no_grad_as_decorator_with_and_without_parentheses():
    x = leaf([1.0])

    @ag.no_grad()
    def double(t):
        """Doubles."""
        return t * 2

    @ag.no_grad
    def triple(t):
        return t * 3

    assert not double(x).requires_grad and not triple(x).requires_grad
    assert double.__name__ == "double" and double.__doc__ == "Doubles."
    assert ag.is_grad_enabled()


def test_enable_grad_inside_no_grad():
    x = leaf([1.0])

    @ag.enable_grad()
    def recorded(t):
        return t * 2

    @ag.enable_grad
    def recorded_bare(t):
        return t * 2

    with ag.no_grad():
        assert recorded_bare(x).requires_grad
        with ag.enable_grad():
            assert ag.is_grad_enabled()
            inside = x * 2
        assert not ag.is_grad_enabled()
        decorated = recorded(x)
        assert not ag.is_grad_enabled()
    assert inside.requires_grad and inside.grad_fn is not None and decorated.requires_grad


def test_set_grad_enabled():
    x = leaf([1.0])
    with ag.set_grad_enabled(False):
        assert not (x * 2).requires_grad
        with ag.set_grad_enabled(True):
            assert (x * 2).requires_grad
        assert not ag.is_grad_enabled()
    assert ag.is_grad_enabled()


def test_set_grad_enabled_as_a_plain_call_and_a_decorator():
    try:
        ag.set_grad_enabled(False)  # PyTorch's meaning: the mode stays off until set again
        assert not ag.is_grad_enabled() and not (leaf([1.0]) * 2).requires_grad
    finally:
        ag.set_grad_enabled(True)
    assert ag.is_grad_enabled()

    @ag.set_grad_enabled(False)
    def evaluate():
        return ag.is_grad_enabled()

    assert ag.is_grad_enabled()  # defining the function changed nothing
    assert evaluate() is False and ag.is_grad_enabled()


def test_grad_mode_is_per_thread():
    seen = []
    with ag.no_grad():
        worker = threading.Thread(target=lambda: seen.append(ag.is_grad_enabled()))
        worker.start()
        worker.join()
    assert seen == [True]


# -- what records a graph --------------------------------------------------------------------------
def test_ops_on_tensors_that_need_no_grad_record_nothing():
    a, b = ag.tensor([1.0, 2.0]), ag.tensor([3.0, 4.0])
    for out in (a * b, a + 1, ag.exp(a), a @ b, a.sum(), a[0], ag.concat([a, b]), a.split(1)[0]):
        assert not out.requires_grad and out.grad_fn is None and out.is_leaf
    mixed = a * ag.tensor([1.0, 1.0], requires_grad=True)
    assert mixed.requires_grad and mixed.grad_fn is not None and not mixed.is_leaf


def test_integer_results_stay_off_the_graph():
    x = leaf([[1.0, 5.0], [7.0, 2.0]])
    index = x.argmax(axis=1)
    assert not index.requires_grad and index.grad_fn is None
    assert not (x > 2).requires_grad
    assert not x.long().requires_grad


# -- hooks -------------------------------------------------------------------------------------------
def test_leaf_hook_replaces_the_gradient():
    x = leaf([1.0, 2.0])
    x.register_hook(lambda g: g * 10)
    (x * 3).sum().backward()
    np.testing.assert_array_equal(grad_of(x), [30.0, 30.0])


def test_leaf_hook_sees_the_total_gradient_once():
    x = leaf([1.0, 2.0])
    seen = []
    x.register_hook(lambda g: seen.append(g.numpy().copy()))
    (x * 2 + x * 5).sum().backward()
    assert len(seen) == 1
    np.testing.assert_array_equal(seen[0], [7.0, 7.0])


def test_non_leaf_hook_replaces_the_gradient_flowing_on():
    x = leaf([1.0, 2.0])
    h = x * 3
    h.register_hook(lambda g: ag.zeros_like(g, dtype=np.float64) + 1.0)
    (h * h).sum().backward()
    np.testing.assert_array_equal(grad_of(x), [3.0, 3.0])  # 3 * 1, not 3 * 2h


def test_hook_returning_none_keeps_the_gradient_and_remove_works():
    x = leaf([1.0, 2.0])
    seen = []
    handle = x.register_hook(lambda g: seen.append(g.numpy().copy()))
    doubling = x.register_hook(lambda g: g * 2)
    (x * 4).sum().backward()
    np.testing.assert_array_equal(seen[0], [4.0, 4.0])
    np.testing.assert_array_equal(grad_of(x), [8.0, 8.0])
    handle.remove()
    doubling.remove()
    doubling.remove()  # removing twice is harmless
    x.zero_grad()
    (x * 4).sum().backward()
    assert len(seen) == 1
    np.testing.assert_array_equal(grad_of(x), [4.0, 4.0])


def test_hook_on_a_tensor_without_grad_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        ag.tensor([1.0]).register_hook(lambda g: g)


# -- retain_grad, detach, requires_grad_, zeroing -------------------------------------------------
def test_retain_grad_on_non_leaves():
    x = leaf([1.0, 2.0])
    h = x * 3
    kept = h * 2
    kept.retain_grad()
    out = (kept * kept).sum()
    out.retain_grad()
    out.backward()
    assert h.grad is None  # not asked to keep it
    np.testing.assert_allclose(grad_of(kept), 2 * kept.numpy())
    assert out.grad.item() == 1.0
    np.testing.assert_allclose(grad_of(x), 72 * x.numpy())  # d(36 x^2)/dx
    x.retain_grad()  # a leaf keeps its grad anyway: no-op


def test_detach():
    x = leaf([1.0, 2.0])
    h = x * 2
    d = h.detach()
    assert d.is_leaf and not d.requires_grad and d.grad_fn is None
    assert np.shares_memory(d.numpy(), h.numpy())
    (h * d).sum().backward()  # only the h path carries a gradient
    np.testing.assert_array_equal(grad_of(x), 2 * d.numpy())
    h2 = x * 2
    assert h2.detach_() is h2 and h2.is_leaf and not h2.requires_grad


def test_requires_grad_():
    x = ag.tensor([1.0, 2.0])
    assert x.requires_grad_() is x and x.requires_grad
    (x * 3).sum().backward()
    np.testing.assert_array_equal(grad_of(x), [3.0, 3.0])
    x.requires_grad_(False)
    assert not (x * 3).requires_grad
    with pytest.raises(RuntimeError, match="only leaves"):
        (leaf([1.0]) * 2).requires_grad_(False)


def test_gradients_accumulate_until_zeroed():
    x = leaf([1.0, 2.0])
    for _ in range(3):
        (x * 2).sum().backward()
    np.testing.assert_array_equal(grad_of(x), [6.0, 6.0])
    x.zero_grad()
    assert x.grad is None
    (x * 2).sum().backward()
    np.testing.assert_array_equal(grad_of(x), [2.0, 2.0])


def test_leaf_gradient_is_a_private_copy():
    x = leaf([1.0, 2.0])
    gradient = np.array([1.0, 1.0])
    (x + 0).backward(gradient)
    gradient[:] = 99
    np.testing.assert_array_equal(grad_of(x), [1.0, 1.0])


def test_leaf_gradient_has_the_leaf_dtype():
    x = ag.tensor([1.0, 2.0], requires_grad=True)  # float32
    (x.double() * ag.tensor([1.0, 2.0], dtype=np.float64)).sum().backward()
    assert x.grad.dtype == np.float32


# -- backward's arguments ----------------------------------------------------------------------------
def test_backward_with_an_explicit_gradient():
    x = leaf([1.0, 2.0, 3.0])
    y = x * x
    y.backward(ag.tensor([1.0, 0.5, 0.0]))
    np.testing.assert_allclose(grad_of(x), [2.0, 2.0, 0.0])
    z = leaf([[1.0, 2.0]])
    (z * 3).backward(np.ones((1, 2)))  # an array works too
    np.testing.assert_array_equal(grad_of(z), [[3.0, 3.0]])


def test_backward_on_one_element_tensors_without_gradient():
    x = leaf([[2.0]])
    (x * 3).backward()  # shape (1, 1): one element is enough
    assert grad_of(x).tolist() == [[3.0]]


def test_backward_on_non_scalar_raises():
    x = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match=r"shape \(2,\).*scalar.*gradient="):
        (x * 2).backward()


def test_backward_with_a_gradient_of_the_wrong_shape_raises():
    x = leaf([1.0, 2.0])
    with pytest.raises(ValueError, match=r"gradient of shape \(3,\) for a tensor of shape \(2,\)"):
        (x * 2).backward(np.ones(3))


class StopGradient(Function):
    """Identity forward; backward declares no gradient for its input."""

    @staticmethod
    def forward(ctx, a):
        return a.copy()

    @staticmethod
    def backward(ctx, grad):
        return None


def test_a_none_gradient_stops_the_flow_upstream():
    x = leaf([1.0, 2.0])
    h = x * 2  # a non-leaf that then receives no gradient at all
    (StopGradient.apply(h) * 3 + x).sum().backward()
    np.testing.assert_array_equal(grad_of(x), [1.0, 1.0])  # only the direct path
    y = leaf([1.0])
    (StopGradient.apply(y * 2) * 3).sum().backward()
    assert y.grad is None


# -- users' own Functions -----------------------------------------------------------------------------
class Cube(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x ** 3

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return 3 * x ** 2 * grad


class SumAndProduct(Function):
    """Two outputs, and a non-Tensor argument (a scale) among the inputs."""

    @staticmethod
    def forward(ctx, a, scale, b):
        ctx.save_for_backward(a, b)
        ctx.scale = scale
        return (a + b) * scale, a * b

    @staticmethod
    def backward(ctx, grad_sum, grad_product):
        a, b = ctx.saved_tensors
        grad_a = grad_sum * ctx.scale + grad_product * b if ctx.needs_input_grad[0] else None
        grad_b = grad_sum * ctx.scale + grad_product * a if ctx.needs_input_grad[2] else None
        return grad_a, None, grad_b


class PowerWithOptions(Function):
    """Non-Tensor arguments of several kinds: an int, a string and a tuple."""

    @staticmethod
    def forward(ctx, x, power, mode, axes):
        assert isinstance(power, int) and isinstance(mode, str) and isinstance(axes, tuple)
        ctx.save_for_backward(x)
        ctx.power, ctx.sign = power, -1.0 if mode == "negate" else 1.0
        return ctx.sign * np.sum(x ** power, axis=axes)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return ctx.sign * ctx.power * x ** (ctx.power - 1) * grad, None, None, None


def test_custom_function():
    x = leaf([1.0, -2.0])
    y = Cube.apply(x)
    assert isinstance(y, ag.Tensor) and y.grad_fn.function is Cube
    assert "Cube" in repr(y)
    y.sum().backward()
    np.testing.assert_array_equal(grad_of(x), [3.0, 12.0])
    assert gradcheck(Cube.apply, (leaf([0.3, -1.2, 2.0]),))


def test_custom_function_with_two_outputs_and_a_non_tensor_argument():
    a, b = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    total, product = SumAndProduct.apply(a, 2.0, b)
    np.testing.assert_array_equal(total.numpy(), [8.0, 12.0])
    np.testing.assert_array_equal(product.numpy(), [3.0, 8.0])
    assert total.grad_fn is product.grad_fn
    assert gradcheck(lambda x, y: SumAndProduct.apply(x, 0.5, y), (a, b))
    assert gradcheck(lambda x, y: SumAndProduct.apply(x, 3, y)[1], (a, b))  # one output unused


def test_custom_function_with_one_output_unused_gets_zeros_for_it():
    a, b = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    _, product = SumAndProduct.apply(a, 2.0, b)
    product.sum().backward()
    np.testing.assert_array_equal(grad_of(a), [3.0, 4.0])
    np.testing.assert_array_equal(grad_of(b), [1.0, 2.0])


def test_custom_function_needs_input_grad():
    a, b = leaf([1.0]), ag.tensor([2.0], dtype=np.float64)
    total, _ = SumAndProduct.apply(a, 1.0, b)
    assert total.grad_fn.needs_input_grad == (True, False, False)
    total.sum().backward()
    assert b.grad is None and grad_of(a).tolist() == [1.0]


def test_custom_function_with_int_string_and_tuple_arguments():
    x = leaf([[1.0, 2.0], [3.0, -1.0]])
    out = PowerWithOptions.apply(x, 3, "negate", (1,))
    np.testing.assert_array_equal(out.numpy(), [-9.0, -26.0])
    assert gradcheck(lambda t: PowerWithOptions.apply(t, 2, "keep", (0, 1)), (x,))
    assert gradcheck(lambda t: PowerWithOptions.apply(t, 3, "negate", (0,)), (x,))


def test_custom_function_under_no_grad_records_nothing():
    x = leaf([1.0])
    with ag.no_grad():
        y = Cube.apply(x)
    assert y.grad_fn is None and not y.requires_grad


class WrongCount(Function):
    @staticmethod
    def forward(ctx, a, b):
        return a + b

    @staticmethod
    def backward(ctx, grad):
        return grad


class WrongShape(Function):
    @staticmethod
    def forward(ctx, a):
        return a.sum()

    @staticmethod
    def backward(ctx, grad):
        return grad  # should be broadcast back to a's shape


class ReturnsList(Function):
    @staticmethod
    def forward(ctx, a):
        return [a]

    @staticmethod
    def backward(ctx, grad):
        return grad


def test_custom_function_mistakes_raise_clearly():
    a = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match="WrongCount.backward returned 1 gradients, expected 2"):
        WrongCount.apply(a, a).sum().backward()
    with pytest.raises(RuntimeError, match=r"WrongShape.backward returned a gradient of shape \(\) "
                                           r"for an input of shape \(2,\)"):
        WrongShape.apply(a).backward()
    with pytest.raises(TypeError, match="ReturnsList.forward must return numpy arrays, got list"):
        ReturnsList.apply(a)
    with pytest.raises(NotImplementedError, match="forward"):
        Function.apply(a)


# -- everything together --------------------------------------------------------------------------
def test_a_small_network_learns_with_the_public_api():
    rng = np.random.default_rng(0)
    inputs = ag.tensor(rng.standard_normal((32, 4)).astype(np.float32))
    labels = ag.tensor((inputs.numpy()[:, 0] + inputs.numpy()[:, 1] > 0).astype(np.int64))
    w1 = ag.tensor(rng.standard_normal((4, 8)).astype(np.float32) * 0.5, requires_grad=True)
    b1 = ag.zeros(8, requires_grad=True)
    w2 = ag.tensor(rng.standard_normal((8, 2)).astype(np.float32) * 0.5, requires_grad=True)
    losses = []
    for _ in range(60):
        logits = (inputs @ w1 + b1).relu() @ w2
        loss = -logits.log_softmax(axis=1)[ag.arange(32), labels].mean()
        for parameter in (w1, b1, w2):
            parameter.zero_grad()
        loss.backward()
        with ag.no_grad():
            for parameter in (w1, b1, w2):
                parameter.data -= 0.5 * parameter.grad.data
        losses.append(loss.item())
    assert loss.dtype == np.float32 and w1.grad.dtype == np.float32
    assert losses[-1] < 0.5 * losses[0]
