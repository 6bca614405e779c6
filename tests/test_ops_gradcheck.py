"""Every differentiable op against central finite differences (gradcheck, float64), over
hypothesis-drawn shapes (ranks 0 to 4, broadcasting, size-1 sides) and values kept off
the points where the op has no derivative."""
import numpy as np
import pytest
from hypothesis import assume, example, given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import autograd_core as ag
from autograd_core import gradcheck

from strategies import (arrays, axis_args, broadcastable_shapes, leaf, leaves, matmul_cases, nonzero, off_grid,
                        positive, reduction_cases, shapes, smooth, values_on_grid)


def check(fn, *arrays_):
    """gradcheck fn at float64 leaves holding arrays_ (gradcheck raises on a mismatch)."""
    assert gradcheck(fn, leaves(*arrays_)) is True


@st.composite
def pairs(draw, first=smooth, second=smooth):
    shape_a, shape_b = draw(broadcastable_shapes(2))
    return draw(arrays(shape_a, first)), draw(arrays(shape_b, second))


# explicit broadcasting cases, always run on top of the drawn ones: a rank-4 shape against a
# rank-2 one with stretched size-1 sides, and a 0-d tensor against a matrix
RANK_4_BROADCAST = (np.linspace(-1, 1, 6).reshape(3, 1, 2, 1), np.linspace(0.5, 1.5, 6).reshape(2, 3))
SCALAR_BROADCAST = (np.array(0.7), np.linspace(0.5, 1.5, 6).reshape(2, 3))


# -- binary elementwise ops, broadcasting ---------------------------------------------------------
@given(pairs())
@example(RANK_4_BROADCAST)
@example(SCALAR_BROADCAST)
def test_add(pair):
    check(lambda a, b: a + b, *pair)
    check(ag.add, *pair)


@given(pairs())
@example(RANK_4_BROADCAST)
@example(SCALAR_BROADCAST[::-1])
def test_sub(pair):
    check(lambda a, b: a - b, *pair)


@given(pairs())
@example(RANK_4_BROADCAST)
@example(SCALAR_BROADCAST[::-1])
def test_mul(pair):
    check(lambda a, b: a * b, *pair)


@given(pairs(smooth, nonzero))
@example(RANK_4_BROADCAST)
@example(SCALAR_BROADCAST[::-1])
def test_div(pair):
    check(lambda a, b: a / b, *pair)


@given(pairs(positive, smooth))
def test_pow_tensor_exponent(pair):
    check(lambda a, b: a ** b, *pair)


@given(pairs(values_on_grid(0.1), values_on_grid(0.35)))
def test_maximum(pair):
    check(ag.maximum, *pair)
    check(lambda a, b: b.maximum(a), *pair)


@given(pairs(values_on_grid(0.1), values_on_grid(0.35)))
def test_minimum(pair):
    check(ag.minimum, *pair)


@st.composite
def where_cases(draw):
    shape_c, shape_a, shape_b = draw(broadcastable_shapes(3))
    condition = draw(hnp.arrays(np.bool_, shape_c))
    return condition, draw(arrays(shape_a)), draw(arrays(shape_b))


@given(where_cases())
def test_where(case):
    condition, a, b = case
    check(lambda x, y: ag.where(condition, x, y), a, b)
    check(lambda x, y: ag.where(ag.tensor(condition), x, y), a, b)


def test_where_gradient_is_split_by_condition():
    x, y = leaf([1.0, 2.0, 3.0]), leaf([10.0, 20.0, 30.0])
    ag.where(ag.tensor([True, False, True]), x, y).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 0.0, 1.0])
    np.testing.assert_array_equal(y.grad.numpy(), [0.0, 1.0, 0.0])


# -- Python scalars on either side -----------------------------------------------------------------
SCALAR_EXPRESSIONS = {
    "2 * x": lambda x: 2 * x, "x * 2": lambda x: x * 2, "x + 1.5": lambda x: x + 1.5,
    "1.5 + x": lambda x: 1.5 + x, "1 - x": lambda x: 1 - x, "x - 1": lambda x: x - 1,
    "x / 2": lambda x: x / 2, "-x": lambda x: -x, "x ** 2": lambda x: x ** 2, "x ** 3": lambda x: x ** 3,
    "2.0 ** x": lambda x: 2.0 ** x, "x.neg()": lambda x: x.neg(),
}


@pytest.mark.parametrize("name", sorted(SCALAR_EXPRESSIONS))
@given(x=arrays(shapes()))
@settings(max_examples=10)
def test_python_scalar_on_either_side(name, x):
    check(SCALAR_EXPRESSIONS[name], x)


@given(x=arrays(shapes(), nonzero))
def test_scalar_divided_by_tensor(x):
    check(lambda t: 2 / t, x)


@given(x=arrays(shapes(), positive), exponent=st.sampled_from([0.5, -1.0, -1.5, 2.5, 1.0, 0.0]))
def test_pow_scalar_exponent(x, exponent):
    check(lambda t: t ** exponent, x)
    check(lambda t: t.pow(exponent), x)


# -- unary ops ---------------------------------------------------------------------------------
SMOOTH_UNARY = {"exp": ag.exp, "tanh": ag.tanh, "sigmoid": ag.sigmoid, "softplus": ag.softplus,
                "exp method": lambda x: x.exp(), "tanh method": lambda x: x.tanh()}
KINKED_UNARY = {"abs": ag.abs, "abs builtin": lambda x: abs(x), "relu": ag.relu,
                "leaky_relu": ag.leaky_relu, "leaky_relu 0.2": lambda x: ag.leaky_relu(x, 0.2),
                "elu": ag.elu, "elu alpha 0.5": lambda x: x.elu(0.5),
                "clip both": lambda x: ag.clip(x, -0.5, 0.5), "clip min": lambda x: x.clip(min=-0.3),
                "clamp max": lambda x: x.clamp(max=0.7)}


@pytest.mark.parametrize("name", sorted(SMOOTH_UNARY))
@given(x=arrays(shapes()))
@settings(max_examples=15)
def test_smooth_unary(name, x):
    check(SMOOTH_UNARY[name], x)


@pytest.mark.parametrize("name", ["log", "sqrt"])
@given(x=arrays(shapes(), positive))
@settings(max_examples=15)
def test_unary_on_positive_values(name, x):
    check(getattr(ag, name), x)
    check(lambda t: getattr(t, name)(), x)


@pytest.mark.parametrize("name", sorted(KINKED_UNARY))
@given(x=arrays(shapes(), off_grid))
@settings(max_examples=15)
def test_unary_off_kinks(name, x):
    check(KINKED_UNARY[name], x)


def test_unary_large_inputs_stay_finite():
    x = leaf([-800.0, -30.0, 0.5, 30.0, 800.0])
    for fn in (ag.sigmoid, ag.softplus, ag.tanh):
        out = fn(x)
        out.sum().backward()
        assert np.isfinite(out.numpy()).all() and np.isfinite(x.grad.numpy()).all(), fn.__name__
        x.grad = None


# -- matmul ----------------------------------------------------------------------------------------
@given(matmul_cases())
@example((np.linspace(-1, 1, 24).reshape(2, 1, 3, 4), np.linspace(-1, 1, 24).reshape(3, 4, 2)))
@example((np.array([0.5, -1.0]), np.array([2.0, 3.0])))
def test_matmul(case):
    check(lambda a, b: a @ b, *case)
    check(ag.matmul, *case)


@given(matmul_cases())
@settings(max_examples=10)
def test_matmul_one_side_constant(case):
    a, b = case
    check(lambda x: x @ ag.tensor(b, dtype=np.float64), a)
    check(lambda y: ag.tensor(a, dtype=np.float64).matmul(y), b)


# -- reductions --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["sum", "mean"])
@given(case=reduction_cases())
@settings(max_examples=20)
def test_sum_mean(name, case):
    array, axis, keepdims = case
    check(lambda x: getattr(ag, name)(x, axis=axis, keepdims=keepdims), array)
    check(lambda x: getattr(x, name)(axis, keepdims), array)


@pytest.mark.parametrize("name", ["max", "min"])
@given(case=reduction_cases(distinct=True))
@settings(max_examples=20)
def test_max_min(name, case):
    # torch's forms: max(x) one value, max(x, dim) (values, indices); several dims: amax
    array, axis, keepdims = case
    if axis is None:
        check(lambda x: getattr(ag, name)(x), array)
    elif isinstance(axis, int):
        check(lambda x: getattr(ag, name)(x, dim=axis, keepdim=keepdims).values, array)
    else:
        check(lambda x: getattr(ag, "a" + name)(x, axis=axis, keepdims=keepdims), array)


def _reduced_count(shape, axis):
    if axis is None:
        return int(np.prod(shape))
    axes = (axis,) if isinstance(axis, int) else axis
    return int(np.prod([shape[a] for a in axes]))


@pytest.mark.parametrize("name", ["var", "std"])
@given(case=reduction_cases(min_dims=1, distinct=True), correction=st.sampled_from([0, 1]))
@settings(max_examples=20)
def test_var_std(name, case, correction):
    array, axis, keepdims = case
    # std has no derivative where the variance is 0, and correction=1 needs two elements
    assume(_reduced_count(array.shape, axis) >= 2)
    check(lambda x: getattr(ag, name)(x, axis=axis, keepdims=keepdims, correction=correction), array)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@given(array=arrays(shapes(min_dims=1)), data=st.data())
@settings(max_examples=20)
def test_softmax_family(name, array, data):
    axis = data.draw(axis_args(array.shape, allow_none=False, allow_tuple=False))
    check(lambda x: getattr(ag, name)(x, axis=axis), array)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_family_large_logits(name):
    logits = np.array([[1000.0, 0.0, -1000.0], [500.0, 501.0, 499.0]])
    check(lambda x: getattr(ag, name)(x, axis=1), logits)
    check(lambda x: getattr(x, name)(-1) * 1e-3, logits * 1e3)


def test_max_ties_share_the_gradient():
    # amax and max() over all elements split it (torch's evenly_distribute_backward) ...
    x = leaf([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])
    x.amax(axis=1).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [[0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]])
    x = leaf([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])
    x.max().backward()
    np.testing.assert_allclose(x.grad.numpy(), [[0, 0.5, 0.5], [0, 0, 0]])
    # ... max(dim) gives all of it to the index it returns, the first of the ties
    x = leaf([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])
    x.max(dim=1).values.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [[0, 1, 0], [1, 0, 0]])


# -- shape ops -----------------------------------------------------------------------------------
@given(array=arrays(shapes()), data=st.data())
@settings(max_examples=20)
def test_reshape_view_flatten(array, data):
    target = data.draw(st.permutations(array.shape)).copy() if array.ndim else []
    check(lambda x: x.reshape(tuple(target)), array)
    check(lambda x: x.view(-1), array)
    check(lambda x: ag.reshape(x, *array.shape[::-1]), array)
    check(lambda x: x.flatten(), array)
    if array.ndim:
        start = data.draw(st.integers(0, array.ndim - 1))
        end = data.draw(st.integers(start, array.ndim - 1))
        check(lambda x: ag.flatten(x, start, end), array)


@given(array=arrays(shapes()), data=st.data())
@settings(max_examples=20)
def test_transpose_permute(array, data):
    order = data.draw(st.permutations(range(array.ndim)))
    check(lambda x: x.permute(*order), array)
    check(lambda x: ag.permute(x, tuple(order)), array)
    check(lambda x: x.T, array)
    check(lambda x: x.transpose(), array)
    if array.ndim >= 2:
        dim0, dim1 = data.draw(st.tuples(st.integers(-array.ndim, array.ndim - 1),
                                          st.integers(-array.ndim, array.ndim - 1)))
        check(lambda x: x.transpose(dim0, dim1), array)


@given(shape_pair=broadcastable_shapes(2), data=st.data())
@settings(max_examples=20)
def test_expand_broadcast_to(shape_pair, data):
    shape = shape_pair[0]
    target = np.broadcast_shapes(*shape_pair)
    array = data.draw(arrays(shape))
    check(lambda x: x.broadcast_to(target), array)
    check(lambda x: ag.broadcast_to(x, *target), array)
    # expand's -1 keeps a dimension's size
    keep = tuple(-1 if i >= len(target) - len(shape) and shape[i - len(target) + len(shape)] == n else n
                 for i, n in enumerate(target))
    check(lambda x: x.expand(keep), array)


@given(array=arrays(shapes(max_side=2)), data=st.data())
@settings(max_examples=20)
def test_squeeze_unsqueeze(array, data):
    check(lambda x: x.squeeze(), array)
    ones = [i for i, n in enumerate(array.shape) if n == 1]
    if ones:
        axis = data.draw(st.sampled_from(ones))
        check(lambda x: ag.squeeze(x, axis), array)
    axis = data.draw(st.integers(-array.ndim - 1, array.ndim))
    check(lambda x: x.unsqueeze(axis), array)


@given(array=arrays(shapes()), data=st.data())
@settings(max_examples=25)
def test_basic_indexing(array, data):
    index = data.draw(hnp.basic_indices(array.shape, allow_newaxis=True))
    check(lambda x: x[index], array)


@given(array=arrays(shapes(min_dims=1)), data=st.data())
@settings(max_examples=25)
def test_integer_array_indexing(array, data):
    index = data.draw(hnp.integer_array_indices(array.shape, result_shape=shapes(1, 2, max_side=4)))
    check(lambda x: x[index], array)
    first = index[0]
    check(lambda x: x[ag.tensor(first)], array)  # a Tensor of int64 indices along axis 0
    check(lambda x: x[first.tolist()], array)    # a Python list


def test_repeated_indices_accumulate():
    x = leaf([1.0, 2.0, 3.0])
    x[[0, 0, 2, 0]].sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 0.0, 1.0])
    y = leaf(np.zeros((2, 3)))
    (y[ag.tensor([1, 1]), ag.tensor([2, 2])] * ag.tensor([2.0, 5.0], dtype=np.float64)).sum().backward()
    np.testing.assert_array_equal(y.grad.numpy(), [[0, 0, 0], [0, 0, 7.0]])
    check(lambda t: t[[2, 2, 1, 2]] * t[np.array([1, 1])].sum(), np.array([0.5, -1.0, 2.0]))


def test_boolean_mask_indexing():
    array = np.array([[0.5, -1.0, 2.0], [1.5, -0.5, 0.25]])
    mask = array > 0
    check(lambda x: x[mask], array)
    check(lambda x: x[ag.tensor(mask)] * 2, array)
    check(lambda x: x[True], array)  # a scalar bool is an (advanced) index too
    check(lambda x: x[1, mask[0]], array)


@st.composite
def join_cases(draw, same_shape):
    base = draw(shapes(min_dims=1, max_dims=3))
    axis = draw(st.integers(-len(base), len(base) - 1))
    count = draw(st.integers(1, 3))
    result = []
    for _ in range(count):
        shape = list(base)
        if not same_shape:
            shape[axis] = draw(st.integers(1, 3))
        result.append(draw(arrays(tuple(shape))))
    return result, axis


@given(join_cases(same_shape=False))
@settings(max_examples=20)
def test_concat(case):
    arrays_, axis = case
    check(lambda *xs: ag.concat(xs, axis=axis), *arrays_)


@given(join_cases(same_shape=True), st.data())
@settings(max_examples=20)
def test_stack(case, data):
    arrays_, _ = case
    axis = data.draw(st.integers(-arrays_[0].ndim - 1, arrays_[0].ndim))
    check(lambda *xs: ag.stack(list(xs), axis=axis), *arrays_)


@given(array=arrays(shapes(min_dims=1, max_side=4)), data=st.data())
@settings(max_examples=20)
def test_split_chunk(array, data):
    axis = data.draw(st.integers(-array.ndim, array.ndim - 1))
    length = array.shape[axis]
    size = data.draw(st.integers(1, length + 1))
    check(lambda x: x.split(size, axis), array)
    sections = data.draw(st.lists(st.integers(0, length), min_size=1, max_size=3).filter(
        lambda s: sum(s) <= length))
    sections = sections + [length - sum(sections)]
    check(lambda x: ag.split(x, sections, axis=axis), array)
    chunks = data.draw(st.integers(1, 4))
    check(lambda x: x.chunk(chunks, axis), array)


def test_split_pieces_used_unevenly():
    # only some pieces reach the loss, one of them twice: the others get zero gradient
    array = np.arange(6.0).reshape(2, 3)
    check(lambda x: x.split(1, axis=1)[2] * 3 + x.split(1, axis=1)[2], array)
    x = leaf(array)
    first, second, third = x.chunk(3, axis=1)
    (second * 2).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[0, 2, 0], [0, 2, 0]])


@given(array=arrays(shapes()), data=st.data())
@settings(max_examples=20)
def test_pad(array, data):
    # F.pad's order: a flat (before, after) pair per dim, the last dim first; any number of dims
    dims = data.draw(st.integers(0, array.ndim))
    width = data.draw(st.lists(st.integers(-1, 2), min_size=2 * dims, max_size=2 * dims))
    width = [max(w, -1 if n > 1 else 0) for w, n in zip(width, np.repeat(array.shape[::-1][:dims], 2))]
    value = data.draw(st.sampled_from([0.0, -1.5]))
    check(lambda x: ag.pad(x, width, value=value), array)
    check(lambda x: x.pad((1, 1) * x.ndim), array)
    for mode in ("reflect", "replicate", "circular"):
        limits = [n - 1 if mode == "reflect" else n for n in array.shape[::-1][:dims]]
        if dims and min(limits) > 0:
            pads = [data.draw(st.integers(0, limit)) for limit in np.repeat(limits, 2)]
            check(lambda x: ag.pad(x, pads, mode=mode), array)


# -- compositions ----------------------------------------------------------------------------------
@given(pairs())
@settings(max_examples=15)
def test_composite_expression(pair):
    # several ops and a value reused in different branches
    def fn(a, b):
        h = ag.tanh(a * b + a) - ag.sigmoid(b) * a
        return (h * h).sum(axis=-1 if h.ndim else None) + h.mean()
    check(fn, *pair)


def test_cast_passes_the_gradient_back_in_the_input_dtype():
    x = ag.tensor([1.0, 2.0], requires_grad=True)
    y = x.double() * 3
    assert y.dtype == np.float64
    y.sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 3.0])
