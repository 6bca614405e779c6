"""Forward results equal numpy's, in float32 and float64, and dtypes are kept: float32 by
default, a Python scalar never turns float32 into float64, integer tensors stay integer."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import autograd_core as ag

from strategies import (arrays, axis_args, broadcastable_shapes, distinct_arrays, matmul_cases, nonzero,
                        positive, reduction_cases, shapes, smooth)

FLOATS = [np.float32, np.float64]
TOLERANCE = {np.float32: dict(rtol=2e-6, atol=1e-6), np.float64: dict(rtol=1e-12, atol=1e-12)}


def assert_matches(result, expected, dtype):
    """result is a Tensor of expected's shape, of dtype, with expected's values."""
    assert isinstance(result, ag.Tensor)
    assert result.dtype == dtype, (result.dtype, dtype)
    assert result.shape == np.shape(expected)
    np.testing.assert_allclose(result.numpy(), expected, **TOLERANCE[dtype])


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


# -- elementwise -------------------------------------------------------------------------------
BINARY = {
    "add": (lambda a, b: a + b, np.add, smooth),
    "sub": (lambda a, b: a - b, np.subtract, smooth),
    "mul": (lambda a, b: a * b, np.multiply, smooth),
    "div": (lambda a, b: a / b, np.divide, nonzero),
    "pow": (lambda a, b: a ** b, np.power, smooth),
    "maximum": (ag.maximum, np.maximum, smooth),
    "minimum": (ag.minimum, np.minimum, smooth),
}


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", sorted(BINARY))
@given(shape_pair=broadcastable_shapes(2), data=st.data())
@settings(max_examples=10)
def test_binary_matches_numpy(name, dtype, shape_pair, data):
    op, reference, second = BINARY[name]
    first = positive if name == "pow" else smooth
    a = data.draw(arrays(shape_pair[0], first)).astype(dtype)
    b = data.draw(arrays(shape_pair[1], second)).astype(dtype)
    assert_matches(op(ag.tensor(a), ag.tensor(b)), reference(a, b), dtype)


UNARY = {
    "exp": (ag.exp, np.exp, smooth), "log": (ag.log, np.log, positive), "sqrt": (ag.sqrt, np.sqrt, positive),
    "abs": (ag.abs, np.abs, smooth), "neg": (lambda x: -x, np.negative, smooth),
    "tanh": (ag.tanh, np.tanh, smooth), "sigmoid": (ag.sigmoid, _sigmoid, smooth),
    "relu": (ag.relu, lambda x: np.maximum(x, 0), smooth),
    "leaky_relu": (lambda x: ag.leaky_relu(x, 0.1), lambda x: np.where(x > 0, x, 0.1 * x), smooth),
    "elu": (lambda x: ag.elu(x, 0.7), lambda x: np.where(x > 0, x, 0.7 * (np.exp(x) - 1)), smooth),
    "softplus": (ag.softplus, lambda x: np.log1p(np.exp(x)), smooth),
    "clip": (lambda x: ag.clip(x, -0.5, 1.0), lambda x: np.clip(x, -0.5, 1.0), smooth),
}


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", sorted(UNARY))
@given(data=st.data())
@settings(max_examples=10)
def test_unary_matches_numpy(name, dtype, data):
    op, reference, elements = UNARY[name]
    x = data.draw(arrays(shapes(), elements)).astype(dtype)
    expected = reference(x.astype(np.float64))
    tolerance = dict(rtol=1e-6, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-15)
    result = op(ag.tensor(x))
    assert result.dtype == dtype and result.shape == x.shape
    np.testing.assert_allclose(result.numpy(), expected, **tolerance)


def test_where_matches_numpy():
    condition = np.array([[True], [False]])
    a, b = np.arange(6, dtype=np.float32).reshape(2, 3), np.float32(-1)
    assert_matches(ag.where(condition, ag.tensor(a), ag.tensor(b)), np.where(condition, a, b), np.float32)
    assert_matches(ag.where(ag.tensor(condition), ag.tensor(a), 0.5), np.where(condition, a, 0.5), np.float32)
    # two Python numbers: float32 like tensor(1.0), not numpy's float64
    assert_matches(ag.where(condition, 1.0, 0.0), np.where(condition, 1.0, 0.0), np.float32)
    assert ag.where(condition, 1, 0).dtype == np.int64


def test_activations_with_extreme_inputs():
    x = ag.tensor([-1000.0, -50.0, 0.0, 50.0, 1000.0])
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow to 0 is fine
        np.testing.assert_allclose(ag.sigmoid(x).numpy(), [0, _sigmoid(-50.0), 0.5, 1, 1], atol=1e-7)
        np.testing.assert_allclose(ag.softplus(x).numpy(), [0, np.exp(-50.0), np.log(2), 50, 1000], rtol=1e-6)


# -- Python scalars never upcast float32 ---------------------------------------------------------
SCALAR_OPS = {
    "add": lambda x, s: x + s, "radd": lambda x, s: s + x, "sub": lambda x, s: x - s,
    "rsub": lambda x, s: s - x, "mul": lambda x, s: x * s, "rmul": lambda x, s: s * x,
    "div": lambda x, s: x / s, "rdiv": lambda x, s: s / x, "pow": lambda x, s: x ** s,
    "rpow": lambda x, s: s ** x, "maximum": ag.maximum, "minimum": ag.minimum,
    "maximum reflected": lambda x, s: ag.maximum(s, x), "where": lambda x, s: ag.where(x.numpy() > 1, x, s),
    "where reflected": lambda x, s: ag.where(x.numpy() > 1, s, x), "clip": lambda x, s: x.clip(-s, s),
    "add method": lambda x, s: x.add(s), "mul method": lambda x, s: x.mul(s),
}


@pytest.mark.parametrize("scalar", [2, 2.5, True], ids=["int", "float", "bool"])
@pytest.mark.parametrize("name", sorted(SCALAR_OPS))
def test_python_scalar_keeps_float32(name, scalar):
    values = np.array([[0.5, 1.5, 2.0]], dtype=np.float32)
    x = ag.tensor(values, requires_grad=True)
    out = SCALAR_OPS[name](x, scalar)
    assert out.dtype == np.float32, "%s with %r gave %s" % (name, scalar, out.dtype)
    # the same op in numpy on float64 data gives the reference values
    expected = SCALAR_OPS[name](ag.tensor(values.astype(np.float64)), scalar).numpy()
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-6)
    out.sum().backward()
    assert x.grad.dtype == np.float32
    # float64 stays float64
    assert SCALAR_OPS[name](ag.tensor(values, dtype=np.float64), scalar).dtype == np.float64


@pytest.mark.parametrize("scalar", [np.float64(2.5), np.int64(2), np.sqrt(2.0)], ids=["float64", "int64", "sqrt"])
@pytest.mark.parametrize("name", sorted(SCALAR_OPS))
def test_numpy_scalar_keeps_float32_too(name, scalar):
    # np.sqrt(2) or array.sum() give numpy scalars; they act like the Python numbers they hold
    x = ag.tensor(np.array([[0.5, 1.5, 2.0]], dtype=np.float32))
    out = SCALAR_OPS[name](x, scalar)
    assert out.dtype == np.float32, "%s with %r gave %s" % (name, scalar, out.dtype)
    np.testing.assert_allclose(out.numpy(), SCALAR_OPS[name](x, scalar.item()).numpy())


REDUCTIONS = ["sum", "mean", "max", "min", "var", "std", "softmax", "log_softmax"]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", REDUCTIONS)
def test_reductions_keep_dtype(name, dtype):
    x = ag.tensor(np.arange(6.0).reshape(2, 3), dtype=dtype, requires_grad=True)
    for out in (getattr(x, name)(), getattr(x, name)(1), getattr(ag, name)(x, axis=0)):
        out = out.values if isinstance(out, tuple) else out  # max(dim) and min(dim): (values, indices)
        assert out.dtype == dtype, (name, out.dtype)
    out = getattr(x, name)(1)
    out = out.values if isinstance(out, tuple) else out
    (out * 2.0).sum().backward()
    assert x.grad.dtype == dtype


def test_python_number_constructors_default_to_float32():
    assert ag.tensor(1.5).dtype == np.float32
    assert ag.tensor([1.0, 2.0]).dtype == np.float32
    assert ag.tensor([[1, 2.5]]).dtype == np.float32
    assert ag.zeros(2, 3).dtype == np.float32 and ag.ones((2,)).dtype == np.float32
    assert ag.randn(2).dtype == np.float32 and ag.rand(2).dtype == np.float32
    assert ag.full((2,), 0.5).dtype == np.float32 and ag.eye(2).dtype == np.float32
    assert ag.arange(0.0, 1.0, 0.25).dtype == np.float32
    assert (ag.tensor([1.0]) + ag.tensor(2.0)).dtype == np.float32


def test_float64_everywhere():
    x = ag.tensor(np.linspace(0.1, 1.0, 6).reshape(2, 3), dtype=np.float64, requires_grad=True)
    out = (ag.softmax(x @ x.T, axis=-1).log() * 2 + x.sum(0).exp().mean()).std()
    out.backward()
    assert out.dtype == np.float64 and x.grad.dtype == np.float64


# -- integer tensors (labels, indices) -----------------------------------------------------------
def test_integer_tensors():
    labels = ag.tensor([2, 0, 1])
    assert labels.dtype == np.int64 and not labels.requires_grad
    assert ag.tensor(np.array([1, 2], dtype=np.int32)).dtype == np.int32  # an array keeps its dtype
    assert ag.arange(4).dtype == np.int64
    assert (labels + 1).dtype == np.int64 and (labels * 2).dtype == np.int64
    assert labels.sum().dtype == np.int64 and labels.sum().item() == 3
    assert (labels == 1).dtype == np.bool_
    logits = ag.tensor(np.arange(12.0).reshape(3, 4), requires_grad=True)
    picked = logits[ag.arange(3), labels]
    np.testing.assert_array_equal(picked.numpy(), [2.0, 4.0, 9.0])
    picked.sum().backward()
    np.testing.assert_array_equal(logits.grad.numpy(), np.eye(4)[[2, 0, 1]][:, :4])
    assert labels.long() is labels and labels.float().dtype == np.float32


INTEGER_MIXES = {
    "mul": lambda x, i: x * i, "rmul": lambda x, i: i * x, "add": lambda x, i: x + i, "sub": lambda x, i: i - x,
    "div": lambda x, i: x / i, "rdiv": lambda x, i: i / x, "pow": lambda x, i: x ** i, "rpow": lambda x, i: i ** x,
    "maximum": ag.maximum, "minimum": lambda x, i: ag.minimum(i, x),
    "where": lambda x, i: ag.where(np.array([True, False]), x, i),
}


@pytest.mark.parametrize("float_dtype", FLOATS)
@pytest.mark.parametrize("integer_dtype", [np.int64, np.int32, np.bool_])
@pytest.mark.parametrize("name", sorted(INTEGER_MIXES))
def test_integer_tensor_meeting_a_float_one_takes_its_dtype(name, integer_dtype, float_dtype):
    # PyTorch's rule; numpy would turn float32 with int64 into float64
    x = ag.tensor([1.5, 2.0], dtype=float_dtype, requires_grad=True)
    i = ag.tensor(np.array([2, 1]).astype(integer_dtype))
    out = INTEGER_MIXES[name](x, i)
    assert out.dtype == float_dtype
    expected = INTEGER_MIXES[name](ag.tensor([1.5, 2.0], dtype=np.float64), ag.tensor([2.0, 1.0], dtype=np.float64))
    if integer_dtype == np.bool_:
        expected = INTEGER_MIXES[name](ag.tensor([1.5, 2.0], dtype=np.float64), ag.tensor([1.0, 1.0], dtype=np.float64))
    np.testing.assert_allclose(out.numpy(), expected.numpy(), rtol=1e-6)
    out.sum().backward()
    assert x.grad.dtype == float_dtype


def test_joining_integer_and_float_tensors_keeps_the_float_dtype():
    x, i = ag.tensor([1.5], requires_grad=True), ag.tensor([2])
    joined = ag.concat([x, i, ag.tensor([True])])
    assert joined.dtype == np.float32 and joined.tolist() == [1.5, 2.0, 1.0]
    assert ag.stack([i, x], axis=1).dtype == np.float32
    assert ag.concat([i, i]).dtype == np.int64
    assert ag.concat([x, ag.tensor([1.0], dtype=np.float64)]).dtype == np.float64  # floats: numpy's rule
    (joined.sum() * 2).backward()
    assert x.grad.tolist() == [2.0]


def test_integer_division_gives_float32():
    i = ag.tensor([1, 2])
    for out in (i / 2, i / i, 2 / i, i / 2.5, ag.div(i, np.int64(4))):
        assert out.dtype == np.float32
    np.testing.assert_array_equal((i / 2).numpy(), [0.5, 1.0])
    assert (i * 2).dtype == np.int64 and (i + i).dtype == np.int64 and (i - 1).dtype == np.int64


def test_one_hot():
    labels = ag.tensor([[0, 2], [1, 1]])
    out = ag.one_hot(labels, 3)
    assert out.dtype == np.int64 and out.shape == (2, 2, 3) and not out.requires_grad  # PyTorch's dtype
    np.testing.assert_array_equal(out.numpy(), np.eye(3)[labels.numpy()])
    np.testing.assert_array_equal(ag.one_hot(ag.tensor([1, 3])).numpy(), np.eye(4)[[1, 3]])
    assert ag.one_hot([0, 1], 2, dtype=np.float64).dtype == np.float64


# -- comparisons, argmax/argmin ------------------------------------------------------------------
COMPARISONS = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal,
               "==": np.equal, "!=": np.not_equal}


@pytest.mark.parametrize("symbol", sorted(COMPARISONS))
@given(shape_pair=broadcastable_shapes(2), data=st.data())
@settings(max_examples=10)
def test_comparisons_match_numpy(symbol, shape_pair, data):
    grid = st.integers(-2, 2).map(float)  # small grid: equal elements are common
    a = data.draw(arrays(shape_pair[0], grid))
    b = data.draw(arrays(shape_pair[1], grid))
    x = ag.tensor(a, requires_grad=True)
    result = eval("x %s ag.tensor(b)" % symbol)
    assert result.dtype == np.bool_ and not result.requires_grad and result.grad_fn is None
    np.testing.assert_array_equal(result.numpy(), COMPARISONS[symbol](a, b))
    np.testing.assert_array_equal(eval("x %s 0.0" % symbol).numpy(), COMPARISONS[symbol](a, 0.0))


@pytest.mark.parametrize("name", ["argmax", "argmin"])
@given(data=st.data())
@settings(max_examples=15)
def test_argmax_argmin_match_numpy(name, data):
    array = data.draw(distinct_arrays(shapes(min_dims=1)))
    axis = data.draw(st.none() | st.integers(-array.ndim, array.ndim - 1))
    keepdims = data.draw(st.booleans())
    x = ag.tensor(array, requires_grad=True)
    result = getattr(x, name)(axis=axis, keepdims=keepdims)
    assert result.dtype == np.int64 and not result.requires_grad and result.grad_fn is None
    np.testing.assert_array_equal(result.numpy(), getattr(np, name)(array, axis=axis, keepdims=keepdims))
    np.testing.assert_array_equal(getattr(ag, name)(x, axis).numpy(), getattr(np, name)(array, axis))


# -- reductions ------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name, reference", [("sum", np.sum), ("mean", np.mean), ("amax", np.max), ("amin", np.min)])
@given(case=reduction_cases())
@settings(max_examples=10)
def test_reduction_matches_numpy(name, reference, dtype, case):
    array, axis, keepdims = case
    array = array.astype(dtype)
    assert_matches(getattr(ag, name)(ag.tensor(array), axis=axis, keepdims=keepdims),
                   reference(array, axis=axis, keepdims=keepdims), dtype)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", ["var", "std"])
@given(case=reduction_cases(min_dims=1, distinct=True), correction=st.sampled_from([0, 1]))
@settings(max_examples=10)
def test_var_std_match_numpy(name, dtype, case, correction):
    array, axis, keepdims = case
    array = array.astype(dtype)
    count = array.size if axis is None else int(np.prod(np.array(array.shape)[np.array(axis)]))
    if count <= correction:
        return  # no degrees of freedom: test_errors covers the error
    expected = getattr(np, name)(array.astype(np.float64), axis=axis, keepdims=keepdims, ddof=correction)
    result = getattr(ag, name)(ag.tensor(array), axis=axis, keepdims=keepdims, correction=correction)
    assert result.dtype == dtype
    np.testing.assert_allclose(result.numpy(), expected, rtol=1e-5 if dtype == np.float32 else 1e-12)


def test_var_defaults_to_the_bessel_correction():
    x = ag.tensor([1.0, 2.0, 4.0])
    assert np.isclose(x.var().item(), np.var([1.0, 2.0, 4.0], ddof=1))
    assert np.isclose(x.std(correction=0).item(), np.std([1.0, 2.0, 4.0]))


def test_pytorch_spellings_dim_keepdim():
    x = ag.tensor(np.arange(6.0).reshape(2, 3))
    assert x.sum(dim=1, keepdim=True).shape == (2, 1)
    np.testing.assert_array_equal(ag.mean(x, dim=0).numpy(), [1.5, 2.5, 3.5])
    np.testing.assert_allclose(ag.softmax(x, dim=0).numpy().sum(0), 1.0, rtol=1e-6)


@pytest.mark.parametrize("dtype", FLOATS)
@given(data=st.data())
@settings(max_examples=15)
def test_softmax_log_softmax_match_numpy(dtype, data):
    array = data.draw(arrays(shapes(min_dims=1), st.floats(-5, 5))).astype(dtype)
    axis = data.draw(axis_args(array.shape, allow_none=False, allow_tuple=False))
    wide = array.astype(np.float64)
    expected = np.exp(wide) / np.exp(wide).sum(axis=axis, keepdims=True)
    tolerance = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-14)
    result = ag.softmax(ag.tensor(array), axis=axis)
    assert result.dtype == dtype
    np.testing.assert_allclose(result.numpy(), expected, **tolerance)
    np.testing.assert_allclose(ag.log_softmax(ag.tensor(array), axis=axis).numpy(), np.log(expected), **tolerance)


@pytest.mark.parametrize("dtype", FLOATS)
def test_softmax_large_logits_are_stable(dtype):
    logits = np.array([[1000.0, 0.0, -1000.0], [1e4, 1e4, 1e4 - 1], [-1e4, -1e4 - 2, -1e4]], dtype=dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        probabilities = ag.softmax(ag.tensor(logits), axis=1).numpy()
        log_probabilities = ag.log_softmax(ag.tensor(logits), axis=1).numpy()
    shifted = (logits - logits.max(axis=1, keepdims=True)).astype(np.float64)
    expected_log = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(log_probabilities, expected_log, rtol=1e-6)
    np.testing.assert_allclose(probabilities, np.exp(expected_log), rtol=1e-6, atol=1e-30)
    assert log_probabilities[0, 2] == pytest.approx(-2000.0)  # not -inf
    assert np.isfinite(log_probabilities).all()


# -- matmul ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOATS)
@given(data=st.data())
@settings(max_examples=20)
def test_matmul_matches_numpy(dtype, data):
    a, b = data.draw(matmul_cases())
    a, b = a.astype(dtype), b.astype(dtype)
    tolerance = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-13)
    result = ag.tensor(a) @ ag.tensor(b)
    assert result.dtype == dtype and result.shape == np.matmul(a, b).shape
    np.testing.assert_allclose(result.numpy(), np.matmul(a, b), **tolerance)


def test_matmul_larger_than_one_block():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((3, 70, 33)), rng.standard_normal((33, 65))
    np.testing.assert_allclose((ag.tensor(a, dtype=np.float64) @ ag.tensor(b, dtype=np.float64)).numpy(),
                               a @ b, rtol=1e-10, atol=1e-10)
    result = ag.tensor(a.astype(np.float32)) @ ag.tensor(b.astype(np.float32))
    assert result.dtype == np.float32
    np.testing.assert_allclose(result.numpy(), a.astype(np.float32) @ b.astype(np.float32), rtol=1e-4, atol=1e-4)
    # numpy arrays on the left defer to Tensor's reflected operator
    assert isinstance(b.T @ ag.tensor(b), ag.Tensor)


@pytest.mark.parametrize("dtype", FLOATS)
def test_matmul_of_strided_views(dtype):
    # transposed, reversed and stepped views reach the GEMM kernel without a copy in between
    rng = np.random.default_rng(1)
    a = rng.standard_normal((4, 6, 10)).astype(dtype)
    b = rng.standard_normal((9, 6)).astype(dtype)
    x, y = ag.tensor(a), ag.tensor(b)
    cases = [
        (x.transpose(1, 2)[:, ::2], a.transpose(0, 2, 1)[:, ::2]),  # [4, 5, 6]
        (x[::-1, :, 3], a[::-1, :, 3]),                              # [4, 6]
        (x[1].T[::3], a[1].T[::3]),                                  # [4, 6]
    ]
    tolerance = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    for left, left_array in cases:
        np.testing.assert_allclose((left @ y.T[:, ::-1]).numpy(), left_array @ b.T[:, ::-1], **tolerance)
        np.testing.assert_allclose((left @ y[::2].T).numpy(), left_array @ b[::2].T, **tolerance)


def test_integer_matmul():
    a = ag.tensor([[1, 2], [3, 4]])
    result = a @ a
    assert result.dtype == np.int64
    np.testing.assert_array_equal(result.numpy(), [[7, 10], [15, 22]])


# -- shape ops ---------------------------------------------------------------------------------
@given(array=arrays(shapes()), data=st.data())
@settings(max_examples=15)
def test_shape_ops_match_numpy(array, data):
    x = ag.tensor(array.astype(np.float32))
    a = array.astype(np.float32)
    assert_matches(x.reshape(-1), a.reshape(-1), np.float32)
    assert_matches(x.view(a.shape[::-1]), a.reshape(a.shape[::-1]), np.float32)
    assert_matches(x.flatten(), a.reshape(-1), np.float32)
    assert_matches(x.T, a.T, np.float32)
    order = data.draw(st.permutations(range(a.ndim)))
    assert_matches(x.permute(*order), np.transpose(a, order), np.float32)
    assert_matches(x.squeeze(), np.squeeze(a), np.float32)
    axis = data.draw(st.integers(-a.ndim - 1, a.ndim))
    assert_matches(x.unsqueeze(axis), np.expand_dims(a, axis), np.float32)
    target = (2,) + a.shape
    assert_matches(x.expand(*target), np.broadcast_to(a, target), np.float32)
    index = data.draw(hnp.basic_indices(a.shape, allow_newaxis=True))
    assert_matches(x[index], a[index], np.float32)
    width = data.draw(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2)), min_size=a.ndim, max_size=a.ndim))
    # F.pad's order: the pairs flattened, last dim first
    torch_order = [w for pair in reversed(width) for w in pair]
    assert_matches(ag.pad(x, torch_order, value=7.0), np.pad(a, width, constant_values=7.0) if a.ndim else a,
                   np.float32)
    if a.ndim >= 2:
        assert_matches(x.transpose(0, -1), np.swapaxes(a, 0, -1), np.float32)
        assert_matches(ag.flatten(x, 1), a.reshape(a.shape[0], -1), np.float32)


@given(array=arrays(shapes(min_dims=1)), data=st.data())
@settings(max_examples=15)
def test_integer_array_indexing_matches_numpy(array, data):
    index = data.draw(hnp.integer_array_indices(array.shape, result_shape=shapes(1, 2)))
    assert_matches(ag.tensor(array, dtype=np.float64)[index], array[index], np.float64)


def test_join_and_split_match_numpy():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = np.arange(4, dtype=np.float32).reshape(2, 2) + 10
    assert_matches(ag.concat([ag.tensor(a), ag.tensor(b)], axis=1), np.concatenate([a, b], axis=1), np.float32)
    assert_matches(ag.concat([ag.tensor(a), a], axis=-1), np.concatenate([a, a], axis=-1), np.float32)
    assert_matches(ag.stack([ag.tensor(a), ag.tensor(a + 1)], axis=1), np.stack([a, a + 1], axis=1), np.float32)
    assert_matches(ag.stack([ag.tensor(a), ag.tensor(a + 1)], axis=-1), np.stack([a, a + 1], axis=-1), np.float32)
    x = ag.tensor(np.arange(10, dtype=np.float32))
    assert [p.numpy().tolist() for p in x.split(4)] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert [p.shape for p in x.split([2, 0, 8])] == [(2,), (0,), (8,)]
    assert [p.shape for p in x.chunk(3)] == [(4,), (4,), (2,)]  # PyTorch's ceil-sized chunks
    assert [p.shape for p in ag.chunk(ag.tensor(a), 2, axis=1)] == [(2, 2), (2, 1)]
    assert len(x.split(10)) == 1 and x.split(10)[0] is x


def test_pad_forms():
    # torch's F.pad order: (left, right) of the last dim first, then (top, bottom), ...
    x = ag.tensor(np.ones((2, 2), dtype=np.float32))
    np.testing.assert_array_equal(ag.pad(x, (1, 1, 1, 1)).numpy(), np.pad(np.ones((2, 2)), 1))
    np.testing.assert_array_equal(x.pad((0, 1), value=2.0).numpy(),
                                  np.pad(np.ones((2, 2)), ((0, 0), (0, 1)), constant_values=2))
    assert ag.pad(x, (0, 3, 1, 0)).shape == (3, 5) and ag.pad(x, [2, 0]).shape == (2, 4)


def test_zero_dimensional_tensors():
    # PyTorch accepts axis 0 / -1 on a 0-d tensor; each of these used to raise IndexError
    s = ag.tensor(2.0, requires_grad=True)
    for result in (s.squeeze(0), s.squeeze(-1), s.transpose(0, 0), s.sum(0), s.mean(-1), s.max(0).values, s.min(0).values,
                   s.sum(0, keepdims=True), s.softmax(0) * 2, s.pad(()), s.T, s.permute(), s.var(correction=0) + s):
        assert result.shape == () and result.requires_grad
    assert s.unsqueeze(0).shape == (1,) and s.flatten().shape == (1,) and s.expand(3).shape == (3,)
    assert s.argmax(0).item() == 0 and s[None].shape == (1,)
    (s.squeeze(0) * s.transpose(0, 0) + s.sum(0)).backward()
    assert s.grad.item() == 5.0


# -- PyTorch's meaning, where names match (optional: torch is only a reference) -------------------
def test_values_and_gradients_match_pytorch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    values = rng.uniform(-2, 2, size=(3, 4))
    other = rng.uniform(0.5, 2, size=(4,))
    expressions = {
        "leaky_relu": lambda m, x: m.leaky_relu(x) if m is ag else torch.nn.functional.leaky_relu(x),
        "elu": lambda m, x: m.elu(x) if m is ag else torch.nn.functional.elu(x),
        "softplus": lambda m, x: m.softplus(x) if m is ag else torch.nn.functional.softplus(x),
        "sigmoid": lambda m, x: x.sigmoid(), "tanh": lambda m, x: x.tanh(), "relu": lambda m, x: x.relu(),
        "log_softmax": lambda m, x: x.log_softmax(dim=1), "softmax": lambda m, x: x.softmax(dim=0),
        "var": lambda m, x: x.var(dim=1), "std": lambda m, x: x.std(dim=0, keepdim=True),
        "var correction=0": lambda m, x: x.var(dim=1, correction=0),
        "mean": lambda m, x: x.mean(dim=(0, 1)), "max": lambda m, x: x.max() * 1.0,
        "clamp": lambda m, x: x.clamp(-0.5, 0.7), "abs": lambda m, x: x.abs(),
        "pow": lambda m, x: x.abs() ** 1.5, "rpow": lambda m, x: 2.0 ** x, "rsub": lambda m, x: 1 - x,
        "rdiv": lambda m, x: 1 / (x.abs() + 1), "matmul": lambda m, x: x @ m.tensor(other, dtype=m.float64),
        "vector matmul": lambda m, x: m.tensor(other[:3], dtype=m.float64) @ x,
        "transpose": lambda m, x: x.transpose(0, 1) * m.tensor(np.arange(3.0), dtype=m.float64),
        "chunk": lambda m, x: x.chunk(3, 1)[1] * 2, "split": lambda m, x: x.split([1, 3], 1)[1].exp(),
        "expand": lambda m, x: x[:, :1].expand(3, 5) * 1.0, "flatten": lambda m, x: x.flatten().exp(),
        "unsqueeze/squeeze": lambda m, x: (x.abs() + 0.1).unsqueeze(1).squeeze(1).sqrt(),
    }
    for name, expression in expressions.items():
        mine = ag.tensor(values, dtype=np.float64, requires_grad=True)
        theirs = torch.tensor(values, dtype=torch.float64, requires_grad=True)
        out_mine, out_theirs = expression(ag, mine), expression(torch, theirs)
        np.testing.assert_allclose(out_mine.numpy(), out_theirs.detach().numpy(), rtol=1e-12, atol=1e-12,
                                   err_msg=name)
        weights = rng.uniform(0.5, 1.5, size=out_mine.shape)
        (out_mine * ag.tensor(weights, dtype=np.float64)).sum().backward()
        (out_theirs * torch.tensor(weights)).sum().backward()
        np.testing.assert_allclose(mine.grad.numpy(), theirs.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=name)
