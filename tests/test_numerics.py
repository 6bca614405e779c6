"""Numerics and dtype rules as PyTorch defines them (issue 10, item 5).

Every expected value here was taken from torch 2.x: the gradients of pow where the
textbook formula gives 0 * inf, where max/min send their gradient when a NaN or a tie is
present, and the dtype an op's result takes (torch.result_type)."""
import warnings

import numpy as np
import pytest

import autograd_core as ag

nan, inf = np.nan, np.inf


def _grads(function, *values, dtype=np.float64):
    """The gradients of function(*tensors).sum() at values, as arrays."""
    tensors = [ag.tensor(np.asarray(v, dtype=dtype), requires_grad=True) for v in values]
    with np.errstate(divide="ignore"):  # the forward's 0 ** -1 = inf is numpy's to warn about
        out = function(*tensors).sum()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 0/0 or 0 * inf in a backward is a bug, not noise
        out.backward()
    for t in tensors:
        assert t.grad.dtype == t.dtype
    return [t.grad.numpy() for t in tensors]


# -- pow ----------------------------------------------------------------------------------
@pytest.mark.parametrize("exponent", [0, 0.0, "tensor"], ids=["int", "float", "tensor"])
def test_power_zero_has_gradient_zero_even_at_zero(exponent):
    x = [0.0, 1.0, -1.0, 2.0]
    if exponent == "tensor":
        (grad, _) = _grads(lambda b, e: b ** e, x, [0.0] * 4)
    else:
        (grad,) = _grads(lambda b: b ** exponent, x)
    np.testing.assert_array_equal(grad, [0.0, 0.0, 0.0, 0.0])  # was NaN at 0: 0 * 0 ** -1


def test_zero_base_gradient_for_the_exponent():
    # d(0 ** e)/de: 0 for e >= 0 (0 ** e is the constant 0, and 1 at e = 0), -inf for e < 0
    exponent = [0.0, 1.0, 2.0, -1.0]
    (grad,) = _grads(lambda e: 0.0 ** e, exponent)
    np.testing.assert_array_equal(grad, [0.0, 0.0, 0.0, -inf])
    base_grad, exponent_grad = _grads(lambda b, e: b ** e, [0.0] * 4, exponent)
    np.testing.assert_array_equal(exponent_grad, [0.0, 0.0, 0.0, -inf])
    np.testing.assert_array_equal(base_grad, [0.0, 1.0, 0.0, -inf])


def test_power_gradients_elsewhere_are_the_formula():
    with np.errstate(all="ignore"):
        (grad,) = _grads(lambda x: x ** 0.5, [1.0, 4.0])
        np.testing.assert_allclose(grad, [0.5, 0.25])
        (grad,) = _grads(lambda x: 2.0 ** x, [0.0, 1.0])
        np.testing.assert_allclose(grad, np.log(2.0) * np.array([1.0, 2.0]))
        # a negative base has no real log: NaN for the exponent, the formula for the base
        base_grad, exponent_grad = _grads(lambda b, e: b ** e, [-2.0, -2.0], [2.0, 3.0])
    np.testing.assert_array_equal(exponent_grad, [nan, nan])
    np.testing.assert_allclose(base_grad, [-4.0, 12.0])


def test_power_gradients_keep_float32():
    x = ag.tensor([0.0, 2.0], requires_grad=True)
    (2.0 ** x).sum().backward()
    assert x.grad.dtype == np.float32
    e = ag.tensor([0.0, 2.0], requires_grad=True)
    (ag.tensor([0.0, 3.0]) ** e).sum().backward()
    assert e.grad.dtype == np.float32 and e.grad.numpy()[0] == 0.0


def test_integer_to_a_negative_integer_power_names_pow():
    with pytest.raises(ValueError, match=r"pow: got an integer base and the negative integer exponent -1"):
        ag.tensor([1, 2]) ** -1
    assert (ag.tensor([1, 2]) ** ag.tensor([2, 3])).numpy().tolist() == [1, 8]


# -- max/min with NaN and ties ------------------------------------------------------------------
@pytest.mark.parametrize("reduce, values, expected", [
    ("max", [1.0, nan, 3.0, nan], [0.0, 0.5, 0.0, 0.5]),   # NaN is the max; its copies share
    ("min", [1.0, nan, 3.0], [0.0, 1.0, 0.0]),
    ("max", [3.0, 1.0, 3.0], [0.5, 0.0, 0.5]),              # ties share evenly
    ("min", [-1.0, 1.0, -1.0, -1.0], [1 / 3, 0.0, 1 / 3, 1 / 3]),
])
def test_full_reduction_gradient_goes_to_nans_and_splits_ties(reduce, values, expected):
    (grad,) = _grads(lambda x: getattr(x, reduce)(), values)
    np.testing.assert_allclose(grad, expected)


@pytest.mark.parametrize("spelling", [{"axis": 1}, {"dim": 1}, {"axis": 1, "keepdims": True}])
def test_reduction_over_an_axis_routes_to_nans_per_slice(spelling):
    values = [[1.0, nan, 3.0, nan], [3.0, 1.0, 3.0, 0.0], [-1.0, nan, 2.0, 0.5]]
    # max(dim) as torch's: all of the gradient to the returned index, the first NaN or tie
    (grad,) = _grads(lambda x: x.max(**spelling).values, values)
    np.testing.assert_allclose(grad, [[0, 1, 0, 0], [1, 0, 0, 0], [0, 1, 0, 0]])
    assert ag.tensor(values).max(**spelling).indices.numpy().reshape(-1).tolist() == [1, 0, 1]
    out = ag.tensor(values).max(**spelling).values.numpy().reshape(-1)
    np.testing.assert_array_equal(out, [nan, 3.0, nan])


def test_maximum_and_minimum_give_both_inputs_the_gradient_where_either_is_nan():
    a, b = [1.0, nan, 2.0, 2.0, nan], [nan, 1.0, 2.0, 3.0, nan]
    grad_a, grad_b = _grads(ag.maximum, a, b)
    np.testing.assert_array_equal(grad_a, [1.0, 1.0, 0.5, 0.0, 1.0])
    np.testing.assert_array_equal(grad_b, [1.0, 1.0, 0.5, 1.0, 1.0])
    grad_a, grad_b = _grads(ag.minimum, a, b)
    np.testing.assert_array_equal(grad_a, [1.0, 1.0, 0.5, 1.0, 1.0])
    np.testing.assert_array_equal(grad_b, [1.0, 1.0, 0.5, 0.0, 1.0])


def test_maximum_gradient_keeps_float32():
    a = ag.tensor([1.0, 2.0], requires_grad=True)
    ag.maximum(a, 1.0).sum().backward()
    assert a.grad.dtype == np.float32
    np.testing.assert_array_equal(a.grad.numpy(), [0.5, 1.0])


# -- dtype promotion ------------------------------------------------------------------------------
def _t(values, dtype):
    return ag.tensor(np.asarray(values, dtype=dtype))


_INT, _F32, _F64, _BOOL = (lambda: _t([1, 2], np.int64)), (lambda: _t([1, 2], np.float32)), \
    (lambda: _t([1, 2], np.float64)), (lambda: _t([True, True], bool))
_MASK = np.array([True, False])

# (description, expression, torch's result dtype)
PROMOTIONS = [
    ("int * python float", lambda: _INT() * 1.5, np.float32),
    ("python float - int", lambda: 1.5 - _INT(), np.float32),
    ("int + python int", lambda: _INT() + 1, np.int64),
    ("float32 * python float", lambda: _F32() * 1.5, np.float32),
    ("float32 * python int", lambda: _F32() * 2, np.float32),
    ("int + float32", lambda: _INT() + _F32(), np.float32),
    ("int + float64", lambda: _INT() + _F64(), np.float64),
    ("float32 + float64", lambda: _F32() + _F64(), np.float64),
    ("float32 + 0-d float64", lambda: _F32() + _t(2.0, np.float64), np.float32),
    ("int + 0-d float64", lambda: _INT() + _t(2.0, np.float64), np.float64),
    ("int32 * 0-d int64", lambda: _t([1, 2], np.int32) * _t(3, np.int64), np.int32),
    ("int32 * python int", lambda: _t([1, 2], np.int32) * 3, np.int32),
    ("uint8 + int8", lambda: _t([1, 2], np.uint8) + _t([1, 2], np.int8), np.int16),
    ("bool + python int", lambda: _BOOL() + 1, np.int64),
    ("bool + python float", lambda: _BOOL() + 1.5, np.float32),
    ("bool * bool", lambda: _BOOL() * _BOOL(), np.bool_),
    ("bool + int32", lambda: _BOOL() + _t([1, 2], np.int32), np.int32),
    ("int / int", lambda: _INT() / _INT(), np.float32),
    ("int / python int", lambda: _INT() / 2, np.float32),
    ("int / python float", lambda: _INT() / 2.5, np.float32),
    ("bool / bool", lambda: _BOOL() / _BOOL(), np.float32),
    ("int ** python int", lambda: _INT() ** 2, np.int64),
    ("int ** python float", lambda: _INT() ** 2.0, np.float32),
    ("python float ** int", lambda: 2.0 ** _INT(), np.float32),
    ("python int ** int", lambda: 2 ** _INT(), np.int64),
    ("maximum(int, python float)", lambda: ag.maximum(_INT(), 1.5), np.float32),
    ("minimum(python float, int)", lambda: ag.minimum(1.5, _INT()), np.float32),
    ("maximum(int, 0-d float32)", lambda: ag.maximum(_INT(), _t(1.5, np.float32)), np.float32),
    ("where(mask, int, python float)", lambda: ag.where(_MASK, _INT(), 0.5), np.float32),
    ("where(mask, python int, python int)", lambda: ag.where(_MASK, 1, 0), np.int64),
    ("where(mask, python float, python int)", lambda: ag.where(_MASK, 1.0, 0), np.float32),
    ("where(mask, float32, float64)", lambda: ag.where(_MASK, _F32(), _F64()), np.float64),
    ("clip(int, python float)", lambda: ag.clip(_INT(), 1.5), np.float32),
    ("clip(int, python int)", lambda: ag.clip(_INT(), 2), np.int64),
    ("concat(int, float32)", lambda: ag.concat([_INT(), _F32()]), np.float32),
    ("concat(int, float64)", lambda: ag.concat([_INT(), _F64()]), np.float64),
    ("stack(bool, int)", lambda: ag.stack([_BOOL(), _INT()]), np.int64),
]


@pytest.mark.parametrize("expression, expected", [p[1:] for p in PROMOTIONS], ids=[p[0] for p in PROMOTIONS])
def test_result_dtype_follows_pytorch(expression, expected):
    assert expression().dtype == np.dtype(expected)


def test_promoted_values_are_exact_and_gradients_keep_their_dtype():
    np.testing.assert_array_equal((_INT() * 1.5).numpy(), np.float32([1.5, 3.0]))
    np.testing.assert_array_equal((_INT() / 2).numpy(), np.float32([0.5, 1.0]))
    w = ag.tensor([0.5, 0.25], requires_grad=True)
    (w * _INT()).sum().backward()  # the integer operand becomes float32, not float64
    assert w.grad.dtype == np.float32
    np.testing.assert_array_equal(w.grad.numpy(), [1.0, 2.0])


# -- creation ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("fill, expected", [(3, np.int64), (3.0, np.float32), (True, np.bool_),
                                            (np.float64(2.5), np.float32), (np.int32(2), np.int64),
                                            (ag.tensor(2.5), np.float32)])
def test_full_dtype_follows_the_fill_value(fill, expected):
    out = ag.full((2, 3), fill)
    assert out.dtype == np.dtype(expected) and out.shape == (2, 3)
    assert ag.full(2, fill, dtype=np.float64).dtype == np.float64  # a given dtype wins


def test_full_refuses_a_fill_that_is_not_a_number():
    with pytest.raises(TypeError, match=r"full: got fill_value='a' \(str\), expected a number"):
        ag.full(2, "a")
    with pytest.raises(TypeError, match=r"full: got fill_value=\[1, 2\] \(list\), expected a number"):
        ag.full(2, [1, 2])


def test_one_hot_is_int64_and_accepts_pytorchs_minus_one():
    out = ag.one_hot(ag.tensor([0, 2]))
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out.numpy(), [[1, 0, 0], [0, 0, 1]])
    assert ag.one_hot(ag.tensor([0, 2]), -1).shape == (2, 3)
    assert ag.one_hot(ag.tensor([1]), 2, dtype=np.float32).dtype == np.float32
    with pytest.raises(ValueError, match=r"one_hot: got num_classes=-2, expected a count >= 0"):
        ag.one_hot(ag.tensor([1]), -2)
    with pytest.raises(TypeError, match=r"one_hot: got num_classes=2.5, expected an int"):
        ag.one_hot(ag.tensor([1]), 2.5)


# -- bad operands name the op ---------------------------------------------------------------------
@pytest.mark.parametrize("op, call", [
    ("add", lambda: _F32() + "a"),
    ("pow", lambda: _F32() ** "a"),
    ("mul", lambda: _INT() * 1j),
    ("maximum", lambda: ag.maximum(_F32(), "a")),
    ("where", lambda: ag.where(_MASK, _F32(), "a")),  # was a silent string tensor
    ("clip", lambda: ag.clip(_F32(), "a")),
])
def test_an_operand_that_is_not_a_number_names_the_op(op, call):
    with pytest.raises(TypeError, match="%s: got " % op):
        call()


def test_a_comparison_with_a_string_names_the_op():
    with pytest.raises(TypeError, match="lt: got str, expected a Tensor, array or number"):
        _F32() < "a"
    assert (_F32() == [1.0, 3.0]).numpy().tolist() == [True, False]


def test_matmul_promotes_mixed_dtypes_by_the_same_rule():
    # numpy would compute int64 @ float32 in float64 (PyTorch refuses mixed dtypes; here a
    # numpy array on the left of a tensor is allowed, so the elementwise rule applies)
    assert (_INT() @ _F32()).dtype == np.float32
    assert (_F32() @ _F64()).dtype == np.float64
    assert (_INT() @ _INT()).dtype == np.int64 and (_INT() @ _INT()).item() == 5
    w = ag.tensor([[1.0], [2.0]], requires_grad=True)
    (ag.tensor([[1, 2]]) @ w).sum().backward()
    assert w.grad.dtype == np.float32 and w.grad.numpy().tolist() == [[1.0], [2.0]]
