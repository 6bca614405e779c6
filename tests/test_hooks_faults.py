"""Gradients that hooks and users' backward functions return (issue 10, item 4): a wrong
shape, a complex or non-numeric value is a clear error naming the hook or the function,
never a silently wrong .grad (nor only a ComplexWarning)."""
import warnings

import numpy as np
import pytest

import autograd_core as ag
from autograd_core import Function

from strategies import leaf


def seven(grad):
    return ag.zeros(7)


# -- hooks ------------------------------------------------------------------------------------------------
def test_a_leaf_hook_returning_a_wrong_shape_raises_and_leaves_grad_alone():
    x = leaf([1.0, 2.0, 3.0])
    x.register_hook(seven)
    with pytest.raises(RuntimeError, match=r"hook 'seven' on a tensor of shape \(3,\) \(float64\) returned a "
                                           r"gradient of shape \(7,\) and dtype float32"):
        (x * 2).sum().backward()
    assert x.grad is None


def test_a_non_leaf_hook_returning_a_wrong_shape_raises_naming_the_hook():
    x = leaf([1.0, 2.0, 3.0])
    h = x * 2

    def flatten_wrongly(grad):
        return np.zeros((3, 1))

    h.register_hook(flatten_wrongly)
    with pytest.raises(RuntimeError, match=r"hook 'test_a_non_leaf_hook_.*flatten_wrongly' on a tensor of "
                                           r"shape \(3,\) .*returned a gradient of shape \(3, 1\)"):
        (h * h).sum().backward()
    assert x.grad is None


@pytest.mark.parametrize("returned, described", [
    (np.array([1 + 1j, 2j, 0j]), r"shape \(3,\) and dtype complex128"),
    (np.array(["a", "b", "c"]), r"shape \(3,\) and dtype <U1"),
    ("not a gradient", "returned a str"),
    ({"grad": 1}, "returned a dict"),
    ([[1.0], [2.0, 3.0]], "dtype object"),  # a ragged list
], ids=["complex", "strings", "str", "dict", "ragged"])
def test_a_hook_returning_no_real_gradient_raises_saying_what_it_returned(returned, described):
    for is_leaf in (True, False):
        x = leaf([1.0, 2.0, 3.0])
        target = x if is_leaf else x * 1
        target.register_hook(lambda grad: returned)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # not a ComplexWarning: an error
            with pytest.raises(RuntimeError, match=r"hook '.*<lambda>' on a tensor of shape \(3,\).*" + described):
                (target * 3).sum().backward()
        assert x.grad is None


def test_hooks_returning_none_or_a_right_gradient_still_work():
    x = leaf([1.0, 2.0])
    x.register_hook(lambda grad: None)
    x.register_hook(lambda grad: [1, 1])             # a list of ints, cast to x's dtype
    x.register_hook(lambda grad: grad.float() * 2)   # float32 for a float64 tensor: cast
    (x * 5).sum().backward()
    assert x.grad.dtype == np.float64
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0])


# -- what a Function's backward returns ---------------------------------------------------------------
class ComplexBackward(Function):
    @staticmethod
    def forward(ctx, a):
        return a * 2

    @staticmethod
    def backward(ctx, grad):
        return grad * (1 + 1j)


class TextBackward(Function):
    @staticmethod
    def forward(ctx, a, b):
        return a + b

    @staticmethod
    def backward(ctx, grad):
        return grad, np.array(["x"] * grad.size).reshape(grad.shape)


class TransposedBackward(Function):
    @staticmethod
    def forward(ctx, a):
        return a.copy()

    @staticmethod
    def backward(ctx, grad):
        return grad.T


class Float32Backward(Function):
    @staticmethod
    def forward(ctx, a):
        return a * 3

    @staticmethod
    def backward(ctx, grad):
        return (grad * 3).astype(np.float32)


def test_a_complex_gradient_from_backward_is_an_error_naming_the_function():
    x = leaf([1.0, 2.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(RuntimeError, match=r"ComplexBackward.backward returned a gradient of dtype complex128 "
                                               r"for input 0, of dtype float64.*complex"):
            ComplexBackward.apply(x).sum().backward()
    assert x.grad is None


def test_a_non_numeric_gradient_from_backward_is_an_error_naming_the_function_and_input():
    a, b = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    with pytest.raises(RuntimeError, match=r"TextBackward.backward returned a gradient of dtype <U1 for input 1"):
        TextBackward.apply(a, b).sum().backward()


def test_a_wrong_shape_from_backward_names_the_function_and_input():
    x = leaf(np.ones((2, 3)))
    with pytest.raises(RuntimeError, match=r"TransposedBackward.backward returned a gradient of shape \(3, 2\) "
                                           r"for an input of shape \(2, 3\) \(input 0"):
        TransposedBackward.apply(x).sum().backward()


def test_a_real_gradient_of_another_float_dtype_is_cast_as_before():
    x = leaf([1.0, 2.0])
    Float32Backward.apply(x).sum().backward()
    assert x.grad.dtype == np.float64
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 3.0])


def test_backward_refuses_a_complex_gradient_argument():
    x = leaf([1.0, 2.0])
    with pytest.raises(TypeError, match="backward: got a gradient of dtype complex128 for a float64 tensor"):
        (x * 2).backward(np.array([1j, 1j]))
