"""Elementwise math (autograd_core/ops/pointwise.py) beyond the op table: PyTorch's dtype
rules for integer and bool inputs, the operators, integer division, shifts out of range,
the special points where gradients are defined by rule, erf/erfinv accuracy and errors.
The op table (tests/op_table_pointwise.py) covers float values and gradients."""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import autograd_core as ag
from autograd_core import Tensor, gradcheck

from strategies import arrays, broadcastable_shapes, leaves, nonzero, off_grid, positive, shapes, smooth

INTS = np.array([3, -7, 5])
DIVISORS = np.array([2, 2, -3])
BOOLS = np.array([True, False, True])


def _t(values, **kwargs):
    """A Tensor as tensor() makes it: a list of floats is float32, an array keeps its dtype."""
    return Tensor(values, **kwargs)


# ---- dtypes ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["sin", "cos", "tan", "atan", "sinh", "cosh", "asinh", "exp2", "expm1", "log2",
                                  "log10", "log1p", "rsqrt", "reciprocal", "erf", "erfc", "erfinv"])
@pytest.mark.parametrize("values", [INTS, BOOLS])
def test_float_functions_of_integer_and_bool_tensors_are_float32(name, values):
    with np.errstate(all="ignore"):
        expected = getattr(ag, name)(_t(values.astype(np.float32)))
    got = getattr(ag, name)(_t(values))
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got.data, expected.data)


def test_integer_results_keep_integer_dtypes():
    ints, bools = _t(INTS), _t(BOOLS)
    assert ag.square(ints).dtype == np.int64 and ag.square(ints).tolist() == [9, 49, 25]
    assert ag.square(bools).dtype == np.int64 and ag.square(bools).tolist() == [1, 0, 1]
    assert ag.sign(ints).tolist() == [1, -1, 1] and ag.sign(ints).dtype == np.int64
    assert ag.sign(bools).dtype == bool and ag.sign(bools).tolist() == [True, False, True]
    for name in ("floor", "ceil", "round", "trunc", "nan_to_num"):
        result = getattr(ag, name)(ints)
        assert result.dtype == np.int64 and result.tolist() == INTS.tolist(), name
    small = _t(np.array([1, -2], dtype=np.int32))
    assert ag.floor(small).dtype == np.int32 and ag.square(small).dtype == np.int32


def test_binary_dtypes_follow_pytorch():
    ints, divisors = _t(INTS), _t(DIVISORS)
    for name in ("atan2", "copysign", "hypot", "logaddexp", "xlogy"):
        assert getattr(ag, name)(ints, divisors).dtype == np.float32, name
    assert ag.fmod(ints, divisors).dtype == np.int64 and ag.fmod(ints, divisors).tolist() == [1, -1, 2]
    assert ag.remainder(ints, divisors).tolist() == [1, 1, -1]
    assert ag.fmod(ints, 2.5).dtype == np.float32 and ag.fmod(ints, 2.5).tolist() == [0.5, -2.0, 0.0]
    assert ag.floor_divide(ints, divisors).tolist() == [1, -4, -2]
    assert ag.divide(ints, divisors, rounding_mode="trunc").tolist() == [1, -3, -1]
    assert ag.divide(ints, divisors, rounding_mode="trunc").dtype == np.int64
    assert ag.divide(ints, divisors).dtype == np.float32
    assert ag.copysign(_t([1.5], dtype=np.float64), -1).dtype == np.float64
    assert ag.xlogy(_t([1.5, 2.0]), 1.7).dtype == np.float32
    assert ag.lerp(_t([1.0, 3.0]), _t([3.0, 5.0]), 0.5).tolist() == [2.0, 4.0]


def test_integer_division_matches_python():
    a = np.arange(-7, 8)
    b = np.array([-3, -2, 2, 3])[:, None]
    np.testing.assert_array_equal((_t(a) // _t(b)).data, a // b)
    np.testing.assert_array_equal((_t(a) % _t(b)).data, a % b)
    quotient = np.array([[int(x / y) for x in a] for y in b[:, 0]])
    np.testing.assert_array_equal(ag.divide(_t(a), _t(b), rounding_mode="trunc").data, quotient)
    np.testing.assert_array_equal(ag.fmod(_t(a), _t(b)).data, a - b * quotient)


@pytest.mark.parametrize("call", [lambda x: x % 0, lambda x: x // 0, lambda x: ag.fmod(x, 0),
                                  lambda x: ag.divide(x, _t([1, 0, 2]), rounding_mode="trunc")])
def test_integer_division_by_zero_is_an_error(call):
    with pytest.raises(RuntimeError, match="zero"):
        call(_t(INTS))


def test_float_division_by_zero_gives_inf_and_nan():
    x = _t([1.0, -1.0, 0.0])
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(ag.floor_divide(x, 0.0).data, np.floor_divide(x.data, 0.0))
    assert np.isnan(ag.remainder(x, 0.0).data).all()


# ---- operators ---------------------------------------------------------------------------
def test_operators_and_reflected_operators():
    ints, divisors = _t(INTS), _t(DIVISORS)
    assert (ints & divisors).tolist() == (INTS & DIVISORS).tolist()
    assert (ints | 8).tolist() == (INTS | 8).tolist() and (8 | ints).tolist() == (8 | INTS).tolist()
    assert (ints ^ divisors).tolist() == (INTS ^ DIVISORS).tolist() and (1 ^ ints).tolist() == (1 ^ INTS).tolist()
    assert (6 & ints).tolist() == (6 & INTS).tolist()
    assert (~ints).tolist() == (~INTS).tolist()
    assert (~_t(BOOLS)).tolist() == [False, True, False] and (~_t(BOOLS)).dtype == bool
    assert (_t(BOOLS) & True).dtype == bool and (_t(BOOLS) ^ True).tolist() == [False, True, False]
    assert (_t(BOOLS) & 1).dtype == np.int64  # bool with an int promotes, as in PyTorch
    assert (ints << 2).tolist() == [12, -28, 20] and (ints >> 1).tolist() == [1, -4, 2]
    assert (2 << _t(DIVISORS.clip(0))).tolist() == [8, 8, 2] and (64 >> _t([1, 2, 3])).tolist() == [32, 16, 8]
    assert (_t(BOOLS) << 1).tolist() == [2, 0, 2]
    assert (ints % 3).tolist() == [0, 2, 2] and (10 % _t([3, -4])).tolist() == [1, -2]
    assert (ints // 2).tolist() == [1, -4, 2] and (10 // _t([3, -4])).tolist() == [3, -3]
    assert (5.5 % _t(INTS)).dtype == np.float32 and (5.5 % _t(INTS)).tolist() == [2.5, -1.5, 0.5]


def test_shifts_out_of_range_give_zero_or_the_sign_as_in_pytorch():
    ints = _t(INTS)
    assert (ints << 70).tolist() == [0, 0, 0] and (ints << -1).tolist() == [0, 0, 0]
    assert (ints >> 70).tolist() == [0, -1, 0] and (ints >> -1).tolist() == [0, -1, 0]
    assert (ints << 63).tolist() == (INTS << 63).tolist()
    bytes_ = _t(np.array([200, 3], dtype=np.uint8))
    assert (bytes_ >> 9).tolist() == [0, 0] and (bytes_ << 8).tolist() == [0, 0]
    assert (bytes_ >> 9).dtype == np.uint8


def test_logical_ops_and_tests_take_any_dtype():
    assert ag.logical_and(_t(INTS), _t([0.0, 1.5, 2.0])).tolist() == [False, True, True]
    assert ag.logical_or(_t(BOOLS), 0).tolist() == [True, False, True]
    assert ag.logical_xor(_t([0, 1, 2]), _t([True, True, False])).tolist() == [True, False, True]
    assert ag.logical_not(_t([0.0, -0.5])).tolist() == [True, False]
    values = _t([np.nan, np.inf, -np.inf, 1.0])
    assert values.isnan().tolist() == [True, False, False, False]
    assert values.isinf().tolist() == [False, True, True, False]
    assert values.isfinite().tolist() == [False, False, False, True]
    assert ag.isnan(_t(INTS)).tolist() == [False] * 3 and ag.isfinite(_t(BOOLS)).dtype == bool


def test_non_differentiable_results_stay_off_the_graph():
    x = _t([1.0, np.nan], requires_grad=True)
    for result in (x.isnan(), ag.logical_not(x), ag.logical_and(x, x), ag.isfinite(x)):
        assert not result.requires_grad and result.grad_fn is None


# ---- values at special points --------------------------------------------------------------
def test_special_values_as_in_pytorch():
    assert ag.sign(_t([np.nan, -0.0, 2.0, -3.0])).tolist() == [0.0, 0.0, 1.0, -1.0]
    assert ag.round(_t([0.5, 1.5, 2.5, -0.5])).tolist() == [0.0, 2.0, 2.0, -0.0]
    np.testing.assert_allclose(ag.round(_t([1.2345, -0.125], dtype=np.float64), decimals=2).data, [1.23, -0.12])
    assert ag.round(_t([1234.5, -151.0]), decimals=-2).tolist() == [1200.0, -200.0]
    assert ag.frac(_t([1.25, -2.75])).tolist() == [0.25, -0.75]
    assert ag.logaddexp(_t([-np.inf, np.inf]), _t([-np.inf, np.inf])).tolist() == [-np.inf, np.inf]
    xlogy = ag.xlogy(_t([0.0, 0.0, 0.0]), _t([0.0, np.nan, -1.0])).tolist()
    assert xlogy[0] == 0.0 and math.isnan(xlogy[1]) and xlogy[2] == 0.0
    finite = np.finfo(np.float32)
    assert ag.nan_to_num(_t([np.nan, np.inf, -np.inf])).tolist() == [0.0, finite.max, finite.min]
    assert ag.nan_to_num(_t([np.nan, np.inf]), nan=1.0, posinf=2.0).tolist() == [1.0, 2.0]
    assert ag.lerp(_t([1.0]), _t([3.0]), 1.0).tolist() == [3.0]  # the weight-1 end exactly


def test_erf_matches_math_erf_to_float64_precision():
    x = np.concatenate([np.linspace(-7, 7, 4001), [0.0, 1e-300, -1e-20, 2.4999999, 2.5, 1.5, 26.0]])
    got = ag.erf(_t(x)).data
    expected = np.array([math.erf(v) for v in x])
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=2e-15, atol=0)
    tail = ag.erfc(_t(x)).data
    expected_tail = np.array([math.erfc(v) for v in x])
    # below 1.5 erfc is 1 - erf (erfc > 0.03 there); beyond, its continued fraction
    np.testing.assert_allclose(tail, expected_tail, rtol=3e-14, atol=0)
    np.testing.assert_allclose(tail[x >= 1.5], expected_tail[x >= 1.5], rtol=2e-15, atol=0)
    assert ag.erf(_t([np.inf, -np.inf, np.nan])).data[:2].tolist() == [1.0, -1.0]
    assert np.isnan(ag.erf(_t([np.nan])).data[0]) and np.isnan(ag.erfc(_t([np.nan])).data[0])
    assert ag.erfc(_t([np.inf, -np.inf])).tolist() == [0.0, 2.0]


def test_float32_erf_family_is_accurate_to_float32():
    x = np.linspace(-7, 7, 2001).astype(np.float32)
    wide = x.astype(np.float64)
    np.testing.assert_allclose(ag.erf(_t(x)).data, [math.erf(v) for v in wide], rtol=2e-7, atol=1e-30)
    tail = np.array([math.erfc(v) for v in wide])
    normal = tail > np.finfo(np.float32).tiny  # below it float32 has fewer digits
    np.testing.assert_allclose(ag.erfc(_t(x)).data[normal], tail[normal], rtol=2e-7)
    y = np.linspace(-0.9999, 0.9999, 2001).astype(np.float32)
    got = ag.erfinv(_t(y)).data
    assert got.dtype == np.float32
    np.testing.assert_allclose([math.erf(v) for v in got.astype(np.float64)], y, rtol=2e-7, atol=1e-30)


def test_erfinv_inverts_erf_to_float64_precision():
    y = np.concatenate([np.linspace(-0.999, 0.999, 2001), [1e-300, -1e-12, 0.5, 0.75]])
    x = ag.erfinv(_t(y)).data
    np.testing.assert_allclose([math.erf(v) for v in x], y, rtol=2e-15, atol=1e-300)
    near_one = 1 - np.logspace(-15, -2, 40)  # the tail: 1 - y is what must come back exactly
    x = ag.erfinv(_t(near_one)).data
    np.testing.assert_allclose([math.erfc(v) for v in x], 1 - near_one, rtol=1e-14)
    edges = ag.erfinv(_t([1.0, -1.0, 0.0, -0.0, 1.5, np.nan])).data
    assert edges[:4].tolist() == [np.inf, -np.inf, 0.0, 0.0] and np.isnan(edges[4:]).all()


# ---- gradcheck over drawn shapes: ranks 0 to 4, size-0 and size-1 sides, broadcasting ----
unit = st.floats(-0.9, 0.9, width=64)
above_one = st.floats(1.2, 3.0, width=64)
# divisors whose quotients with off_grid values (k / 10 + 0.05) are never whole numbers, so
# that trunc/floor of the quotient (the remainders' gradients) is constant around them
divisor = st.sampled_from([-1.3, -0.7, 0.7, 1.3])

UNARY_VALUES = {
    "sin": smooth, "cos": smooth, "atan": smooth, "sinh": smooth, "cosh": smooth, "asinh": smooth,
    "exp2": smooth, "expm1": smooth, "square": smooth, "erf": smooth, "erfc": smooth, "nan_to_num": smooth,
    "tan": unit, "asin": unit, "acos": unit, "atanh": unit, "erfinv": unit, "acosh": above_one,
    "log2": positive, "log10": positive, "log1p": positive, "rsqrt": positive, "reciprocal": nonzero,
    "floor": off_grid, "ceil": off_grid, "trunc": off_grid, "round": off_grid, "sign": off_grid, "frac": off_grid,
}
BINARY_VALUES = {
    "atan2": (nonzero, nonzero), "copysign": (nonzero, nonzero), "hypot": (nonzero, nonzero),
    "logaddexp": (smooth, smooth), "xlogy": (smooth, positive), "fmod": (off_grid, divisor),
    "remainder": (off_grid, divisor), "floor_divide": (off_grid, divisor),
}


def _any_shape():
    return shapes(min_side=0)  # a size-0 side sometimes: empty tensors too


@pytest.mark.parametrize("name", sorted(UNARY_VALUES))
@given(data=st.data())
@settings(max_examples=8)
def test_unary_gradcheck_over_drawn_shapes(name, data):
    x = data.draw(arrays(_any_shape(), UNARY_VALUES[name]))
    assert gradcheck(getattr(ag, name), leaves(x)) is True
    assert gradcheck(lambda t: getattr(t, name)(), leaves(x)) is True  # the Tensor method


@pytest.mark.parametrize("name", sorted(BINARY_VALUES))
@given(data=st.data())
@settings(max_examples=8)
def test_binary_gradcheck_over_drawn_broadcast_shapes(name, data):
    shape_a, shape_b = data.draw(broadcastable_shapes(2))
    first, second = BINARY_VALUES[name]
    a, b = data.draw(arrays(shape_a, first)), data.draw(arrays(shape_b, second))
    assert gradcheck(getattr(ag, name), leaves(a, b)) is True


@given(data=st.data())
@settings(max_examples=8)
def test_lerp_and_rounded_division_gradcheck_over_drawn_shapes(data):
    shape_a, shape_b, shape_w = data.draw(broadcastable_shapes(3))
    start, end, weight = (data.draw(arrays(shape, smooth)) for shape in (shape_a, shape_b, shape_w))
    assert gradcheck(ag.lerp, leaves(start, end, weight)) is True
    a, b = data.draw(arrays(shape_a, off_grid)), data.draw(arrays(shape_b, divisor))
    mode = data.draw(st.sampled_from(["trunc", "floor"]))
    assert gradcheck(lambda x, y: ag.divide(x, y, rounding_mode=mode), leaves(a, b)) is True
    assert gradcheck(lambda x, y: x % y, leaves(a, b)) is True


# ---- gradients at the points PyTorch defines by rule ----------------------------------------
def _grad(function, *values):
    inputs = [_t(np.asarray(v, dtype=np.float64), requires_grad=True) for v in values]
    function(*inputs).sum().backward()
    return [x.grad.data for x in inputs]


def test_gradients_at_special_points():
    (g,) = _grad(lambda x: ag.copysign(x, -1.0), [1.5, -2.5, 0.0])
    assert g.tolist() == [-1.0, 1.0, 0.0]
    g_a, g_b = _grad(ag.xlogy, [0.0, 0.0, 1.0], [-1.0, 2.0, 2.0])
    assert g_a.tolist() == [0.0, math.log(2), math.log(2)] and g_b.tolist() == [0.0, 0.0, 0.5]
    (g,) = _grad(ag.nan_to_num, [np.nan, np.inf, -np.inf, 2.0])
    assert g.tolist() == [0.0, 0.0, 0.0, 1.0]
    for name in ("floor", "ceil", "round", "trunc", "sign"):
        (g,) = _grad(getattr(ag, name), [1.5, -0.2, 3.0])
        assert g.tolist() == [0.0, 0.0, 0.0], name
    (g,) = _grad(ag.frac, [1.5, -0.2])
    assert g.tolist() == [1.0, 1.0]
    g_a, g_b = _grad(lambda a, b: a // b, [3.0, -7.5], [2.0, 2.0])
    assert g_a.tolist() == [0.0, 0.0] and g_b.tolist() == [0.0, 0.0]
    g_a, g_b = _grad(lambda a, b: a % b, [3.0, -7.5], [2.0, 2.0])
    assert g_a.tolist() == [1.0, 1.0] and g_b.tolist() == [-1.0, 4.0]
    g_a, g_b, g_w = _grad(ag.lerp, [1.0, 2.0], [3.0, 6.0], [0.25, 0.75])
    assert g_a.tolist() == [0.75, 0.25] and g_b.tolist() == [0.25, 0.75] and g_w.tolist() == [2.0, 4.0]


def test_float32_gradients_stay_float32():
    x = _t(np.array([0.3, -0.6], dtype=np.float32), requires_grad=True)
    (ag.erfinv(x) + ag.atan2(x, 2.0) + ag.xlogy(x, 3.0) + ag.hypot(x, x)).sum().backward()
    assert x.grad.dtype == np.float32


# ---- errors --------------------------------------------------------------------------------
@pytest.mark.parametrize("call, message", [
    (lambda: _t([1.5]) & _t([1.0]), r"bitwise_and: got operands of dtype float32, expected integer or bool"),
    (lambda: ag.bitwise_or(_t(INTS), 2.5), r"bitwise_or: got operands of dtype float32"),
    (lambda: ~_t([1.5]), r"bitwise_not: got a tensor of dtype float32, expected an integer or bool"),
    (lambda: _t(BOOLS) << _t(BOOLS), r"bitwise_left_shift: got operands of dtype bool, expected integer tensors"),
    (lambda: _t([1.5]) >> 1, r"bitwise_right_shift: got operands of dtype float32"),
    (lambda: ag.floor(_t(BOOLS)), r"floor: got a tensor of dtype bool, expected a float or integer"),
    (lambda: ag.frac(_t(INTS)), r"frac: got a tensor of dtype int64, expected float32 or float64"),
    (lambda: ag.round(_t(INTS), decimals=1), r"round: got an integer tensor \(int64\) with decimals=1"),
    (lambda: ag.round(_t([1.5]), decimals=1.5), r"round: got decimals=1.5, expected an int"),
    (lambda: ag.fmod(_t(BOOLS), _t(BOOLS)), r"fmod: got bool operands, expected integer or float"),
    (lambda: ag.divide(_t([1.0]), 2.0, rounding_mode="round"), r"divide: got rounding_mode='round'"),
    (lambda: ag.nan_to_num(_t([1.0]), nan="zero"), r"nan_to_num: got nan='zero', expected a number or None"),
    (lambda: ag.sin("a"), r"sin: got str, expected a Tensor, array or number"),
    (lambda: ag.isnan(None), r"isnan: got NoneType, expected a Tensor, array or number"),
    (lambda: _t([1, 2]) | _t([1, 2, 3]), r"bitwise_or: shapes \(2,\) and \(3,\) cannot be broadcast"),
    (lambda: ag.logical_and(_t([1, 2]), _t([1, 2, 3])), r"logical_and: shapes \(2,\) and \(3,\) cannot be broadcast"),
    (lambda: ag.atan2(_t([1.0, 2.0]), _t([1.0, 2.0, 3.0])), r"atan2: shapes \(2,\) and \(3,\) cannot be broadcast"),
    (lambda: ag.lerp(_t([1.0, 2.0]), _t([1.0, 2.0, 3.0]), 0.5), r"lerp: shapes \(2,\) and \(3,\) and \(\) cannot"),
])
def test_bad_input_names_the_op(call, message):
    with pytest.raises((TypeError, ValueError, RuntimeError), match=message):
        call()


# ---- torch, where installed: the integer and bool cases the op table does not cover ---------
@pytest.mark.parametrize("name, args", [
    ("sin", (INTS,)), ("erf", (BOOLS,)), ("square", (BOOLS,)), ("sign", (INTS,)), ("floor", (INTS,)),
    ("atan2", (INTS, DIVISORS)), ("copysign", (INTS, DIVISORS)), ("xlogy", (INTS, DIVISORS)),
    ("fmod", (INTS, DIVISORS)), ("remainder", (INTS, DIVISORS)), ("floor_divide", (INTS, DIVISORS)),
    ("bitwise_and", (BOOLS, BOOLS)), ("bitwise_not", (INTS,)), ("logical_xor", (INTS, BOOLS)),
    ("bitwise_left_shift", (INTS, np.array([70, -1, 3]))), ("bitwise_right_shift", (INTS, np.array([70, -1, 1]))),
])
def test_integer_and_bool_inputs_match_pytorch(name, args):
    torch = pytest.importorskip("torch")
    got = getattr(ag, name)(*[_t(a) for a in args])
    expected = getattr(torch, name)(*[torch.tensor(a) for a in args])
    assert str(got.dtype) == str(expected.dtype).replace("torch.", "")
    if got.dtype.kind == "f":  # float32 libm results may differ in the last place
        np.testing.assert_allclose(got.data, expected.numpy(), rtol=1e-6)
    else:
        np.testing.assert_array_equal(got.data, expected.numpy())
