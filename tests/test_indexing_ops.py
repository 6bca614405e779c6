"""The shape and indexing ops beyond the op table (tests/op_table_indexing.py): bad
dims and indices name the op, index tensors of any integer dtype work (int64 as torch
makes them), gradients through repeated indices add up, the one-argument where, and the
creation functions (autograd_core/creation.py)."""
import numpy as np
import pytest

import autograd_core as ag
from autograd_core import Tensor, gradcheck


def _leaf(*shape, seed=0):
    rng = np.random.default_rng(seed)
    return Tensor(rng.uniform(0.5, 1.5, shape), requires_grad=True)


# ---- bad input names the op -------------------------------------------------------------
@pytest.mark.parametrize("call, error, message", [
    (lambda x: ag.gather(x, 2, Tensor(np.zeros((3, 4), np.int64))), ValueError, "gather: dim 2 is out of range"),
    (lambda x: ag.gather(x, 0, Tensor(np.array([[3, 0]]))), IndexError, "gather: index 3 is out of range"),
    (lambda x: ag.gather(x, 0, Tensor(np.array([[-1, 0]]))), IndexError, "gather: index -1 is out of range"),
    (lambda x: ag.gather(x, 1, Tensor(np.array([0, 1]))), ValueError, "gather: got an index with 1 dimensions"),
    (lambda x: ag.gather(x, 1, Tensor(np.zeros((4, 1), np.int64))), ValueError, "gather: index shape"),
    (lambda x: ag.scatter(x, 1, Tensor(np.array([[4]])), Tensor(np.ones((1, 1)))), IndexError,
     "scatter: index 4 is out of range for dimension 1 of size 4"),
    (lambda x: ag.scatter(x, -3, Tensor(np.array([[0]])), value=1.0), ValueError, "scatter: dim -3 is out of range"),
    (lambda x: ag.scatter_add(x, 0, Tensor(np.array([[0, 1]])), Tensor(np.ones((1, 1)))), ValueError,
     "scatter_add: index shape"),
    (lambda x: ag.index_select(x, 0, Tensor(np.array([0, 3]))), IndexError, "index_select: index 3 is out of range"),
    (lambda x: ag.index_select(x, 5, Tensor(np.array([0]))), ValueError, "index_select: dim 5 is out of range"),
    (lambda x: ag.index_select(x, 0, Tensor(np.array([[0]]))), ValueError, "index_select: got an index of shape"),
    (lambda x: ag.index_add(x, 1, Tensor(np.array([9])), Tensor(np.ones((3, 1)))), IndexError,
     "index_add: index 9 is out of range"),
    (lambda x: ag.index_add(x, 0, Tensor(np.array([0])), Tensor(np.ones((2, 4)))), ValueError,
     r"index_add: got source of shape \(2, 4\), expected \(1, 4\)"),
    (lambda x: ag.narrow(x, 1, 3, 2), ValueError, "narrow: start 3 \\+ length 2 exceeds dimension 1 of size 4"),
    (lambda x: ag.narrow(x, 0, 5, 1), IndexError, "narrow: start 5 is out of range"),
    (lambda x: ag.flip(x, (0, 2)), ValueError, "flip: dim 2 is out of range"),
    (lambda x: ag.flip(x, (0, 0)), ValueError, "flip: dims .* repeat a dimension"),
    (lambda x: ag.roll(x, (1, 2), 0), ValueError, "roll: got 2 shifts and 1 dims"),
    (lambda x: ag.movedim(x, 0, 3), ValueError, "movedim: dim 3 is out of range"),
    (lambda x: ag.diagonal(x, 0, 1, -1), ValueError, "diagonal: got dim1 and dim2 both 1"),
    (lambda x: x.unfold(1, 5, 1), ValueError, "unfold: got size 5 and step 1 for dimension 1 of size 4"),
    (lambda x: x.unfold(1, 2, 0), ValueError, "unfold: .* expected 0 <= size <= 4 and step > 0"),
    (lambda x: ag.repeat(x, 2), ValueError, "repeat: got 1 repeat counts for a tensor with 2 dimensions"),
    (lambda x: ag.repeat_interleave(x, Tensor(np.array([1, 2])), 0), ValueError,
     "repeat_interleave: got 2 repeat counts for dimension 0 of size 3"),
    (lambda x: ag.tril(x[0]), ValueError, "tril: got a tensor of shape \\(4,\\), expected at least 2 dimensions"),
    (lambda x: ag.trace(x[0]), ValueError, "trace: got a tensor of shape"),
    (lambda x: ag.unflatten(x, 1, (3, 2)), ValueError, "unflatten: sizes \\(3, 2\\) do not split dimension 1"),
    (lambda x: ag.masked_fill(x, Tensor(np.ones((3, 4))), 0.0), TypeError, "masked_fill: got a mask of dtype float64"),
    (lambda x: ag.masked_select(x, Tensor(np.ones((2, 4), bool))), ValueError, "masked_select: shapes"),
    (lambda x: ag.masked_scatter(x, Tensor(np.ones((3, 4), bool)), Tensor(np.ones(5))), ValueError,
     "masked_scatter: the mask selects 12 elements, but source has only 5"),
    (lambda x: ag.index_put(x, (Tensor(np.array([3])),), Tensor(np.array(1.0))), IndexError, "index_put: index 3"),
    (lambda x: ag.meshgrid(x, indexing="yx"), ValueError, "meshgrid: got indexing='yx'"),
])
def test_bad_dims_and_indices_name_the_op(call, error, message):
    x = Tensor(np.arange(12.0).reshape(3, 4))
    with pytest.raises(error, match=message):
        call(x)


@pytest.mark.parametrize("op", [lambda x, i: ag.gather(x, 0, i), lambda x, i: ag.index_select(x, 0, i),
                                lambda x, i: ag.scatter_add(x, 0, i, x), lambda x, i: ag.index_add(x, 0, i, x)])
def test_float_and_bool_indices_are_refused(op):
    x = Tensor(np.arange(3.0))
    with pytest.raises(TypeError, match="expected an integer \\(int64\\) tensor"):
        op(x, Tensor(np.array([0.0, 1.0, 2.0])))
    with pytest.raises(TypeError, match="got index of dtype bool"):
        op(x, Tensor(np.array([True, False, True])))


# ---- index tensors: int64, and any integer dtype -----------------------------------------
@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.int16, np.uint8])
def test_integer_index_tensors_of_any_width(dtype):
    x = Tensor(np.arange(12.0).reshape(3, 4))
    index = Tensor(np.array([[2, 0, 1, 1]], dtype=dtype))
    np.testing.assert_array_equal(ag.gather(x, 0, index).data, [[8.0, 1.0, 6.0, 7.0]])
    np.testing.assert_array_equal(ag.index_select(x, 1, Tensor(np.array([3, 0], dtype=dtype))).data,
                                  [[3.0, 0.0], [7.0, 4.0], [11.0, 8.0]])
    np.testing.assert_array_equal(ag.scatter(ag.zeros(3, 4), 0, index, value=1.0).data.sum(axis=0), [1, 1, 1, 1])


def test_ops_that_return_indices_give_int64():
    x = Tensor(np.array([[0.0, 1.0], [2.0, 0.0]]))
    assert ag.nonzero(x).dtype == np.int64 and ag.nonzero(x).shape == (2, 2)
    assert all(i.dtype == np.int64 for i in ag.nonzero(x, as_tuple=True))
    assert ag.repeat_interleave(Tensor(np.array([2, 1], dtype=np.int32))).dtype == np.int64
    assert ag.tril_indices(3, 3).dtype == np.int64 and ag.randperm(5).dtype == np.int64
    assert ag.randint(0, 5, (3,)).dtype == np.int64


def test_integer_and_bool_inputs_keep_their_dtype():
    ints = Tensor(np.arange(6).reshape(2, 3))
    for result in (ag.flip(ints, (0,)), ag.roll(ints, 1), ints.repeat(2, 1), ag.tril(ints), ints.unfold(1, 2, 1),
                   ag.gather(ints, 1, Tensor(np.array([[0], [2]]))), ag.masked_fill(ints, ints > 2, 0)):
        assert result.dtype == np.int64
    assert ag.trace(ints[:, :2]).dtype == np.int64
    assert ag.masked_select(Tensor(np.array([True, False])), Tensor(np.array([True, True]))).dtype == bool


# ---- gradients through repeated indices add up --------------------------------------------
def test_gather_gradient_counts_each_pick():
    x = _leaf(3, 2)
    index = Tensor(np.array([[0, 1], [0, 1], [2, 1], [0, 0]]))
    ag.gather(x, 0, index).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [[3.0, 1.0], [0.0, 3.0], [1.0, 0.0]])
    assert gradcheck(lambda t: ag.gather(t, 0, index) ** 2, (_leaf(3, 2),))


def test_scatter_add_gradient_with_repeated_indices():
    x, src = _leaf(2, 3), _leaf(2, 4, seed=1)
    index = Tensor(np.array([[1, 1, 1, 0], [2, 2, 0, 2]]))
    out = ag.scatter_add(x, 1, index, src)
    expected = x.data.copy()
    np.add.at(expected, (np.array([[0], [1]]), index.data), src.data)
    np.testing.assert_allclose(out.data, expected)
    weights = np.arange(6.0).reshape(2, 3)
    (out * Tensor(weights)).sum().backward()
    np.testing.assert_array_equal(x.grad.data, weights)
    np.testing.assert_array_equal(src.grad.data, np.take_along_axis(weights, index.data, 1))
    assert gradcheck(lambda a, b: ag.scatter_add(a, 1, index, b) ** 2, (_leaf(2, 3), _leaf(2, 4, seed=1)))


def test_scatter_gradient_zeroes_the_overwritten_places():
    x, src = _leaf(3, 4), _leaf(2, 5, seed=1)  # src larger than index: only its corner is written
    index = Tensor(np.array([[0, 1, 2], [2, 0, 1]]))
    ag.scatter(x, 0, index, src).sum().backward()
    written = np.zeros((3, 4), bool)
    written[index.data, np.arange(3)] = True
    np.testing.assert_array_equal(x.grad.data, ~written)
    np.testing.assert_array_equal(src.grad.data, np.pad(np.ones((2, 3)), ((0, 0), (0, 2))))
    assert gradcheck(lambda a, b: ag.scatter(a, 0, index, b) * a, (_leaf(3, 4), _leaf(2, 5, seed=1)))


def test_index_select_index_add_and_index_put_accumulate_repeats():
    x = _leaf(3, 2)
    index = Tensor(np.array([2, 2, 0, 2]))
    ag.index_select(x, 0, index).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [[1.0, 1.0], [0.0, 0.0], [3.0, 3.0]])
    source = _leaf(4, 2, seed=1)
    out = ag.index_add(ag.zeros(3, 2, dtype=np.float64), 0, index, source, alpha=2.0)
    np.testing.assert_allclose(out.data[2], 2 * source.data[[0, 1, 3]].sum(axis=0))
    values = _leaf(4, seed=2)
    ag.index_put(ag.zeros(3, dtype=np.float64), (index,), values, accumulate=True).sum().backward()
    np.testing.assert_array_equal(values.grad.data, np.ones(4))
    assert gradcheck(lambda a, b: ag.index_add(a, 0, index, b, alpha=0.5) ** 2, (_leaf(3, 2), _leaf(4, 2, seed=1)))
    assert gradcheck(lambda a, b: ag.index_put(a, (index,), b, accumulate=True) ** 2, (_leaf(3), _leaf(4, seed=2)))


def test_unfold_gradient_adds_overlapping_windows():
    x = _leaf(2, 7)
    x.unfold(1, 3, 2).sum().backward()
    np.testing.assert_array_equal(x.grad.data, np.tile([1.0, 1.0, 2.0, 1.0, 2.0, 1.0, 1.0], (2, 1)))
    assert gradcheck(lambda t: t.unfold(0, 2, 1) ** 2, (_leaf(5, 2),))


def test_repeat_interleave_gradient_skips_zero_counts():
    x = _leaf(4)
    ag.repeat_interleave(x, Tensor(np.array([0, 2, 0, 3]))).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [0.0, 2.0, 0.0, 3.0])


def test_masked_fill_value_tensor_gets_the_filled_gradient():
    x, value = _leaf(2, 3), Tensor(np.array(0.5), requires_grad=True)
    mask = Tensor(np.array([True, False, True]))
    ag.masked_fill(x, mask, value).sum().backward()
    assert value.grad.item() == 4.0
    np.testing.assert_array_equal(x.grad.data, np.tile([0.0, 1.0, 0.0], (2, 1)))


# ---- forms without a table entry of their own --------------------------------------------
def test_where_with_one_argument_is_nonzero_as_tuple():
    condition = Tensor(np.array([[True, False], [False, True]]))
    rows, columns = ag.where(condition)
    np.testing.assert_array_equal(rows.data, [0, 1])
    np.testing.assert_array_equal(columns.data, [0, 1])
    with pytest.raises(TypeError, match="where: got only one of the two values"):
        ag.where(condition, 1.0)


def test_methods_and_0d_tensors():
    x = Tensor(np.arange(6.0).reshape(2, 3))
    assert x.swapaxes(0, 1).shape == (3, 2) and x.moveaxis(0, 1).shape == (3, 2)
    assert x.flip(1).data[0, 0] == 2.0 and x.flip((0, 1)).data[0, 0] == 5.0
    scalar = Tensor(np.array(2.5))
    assert ag.gather(scalar, 0, Tensor(np.array(0))).item() == 2.5
    assert scalar.repeat(2, 2).shape == (2, 2) and ag.tile(scalar, (3,)).shape == (3,)
    assert ag.nonzero(scalar, as_tuple=True)[0].shape == (1,)


# ---- creation -------------------------------------------------------------------------------
def test_creation_shapes_and_dtypes():
    like = Tensor(np.zeros((2, 3), np.float64))
    assert ag.empty(2, 3).shape == (2, 3) and ag.empty(2, 3).dtype == np.float32
    assert ag.empty_like(like).dtype == np.float64
    full = ag.full_like(Tensor(np.arange(3)), 2.7)
    assert full.dtype == np.int64 and full.tolist() == [2, 2, 2]  # input's dtype, as torch
    assert ag.rand_like(like).dtype == np.float64 and ag.randn_like(like, dtype=np.float32).dtype == np.float32
    values = ag.randint_like(like, 3, 5)
    assert values.dtype == np.float64 and set(np.unique(values.data)) <= {3.0, 4.0}
    assert sorted(ag.randperm(6).tolist()) == list(range(6))
    assert ag.randint(5, (4, 2)).shape == (4, 2) and ag.randint(5, (50,)).data.max() < 5
    np.testing.assert_allclose(ag.logspace(0, 2, 3).data, [1.0, 10.0, 100.0])
    np.testing.assert_array_equal(ag.linspace(0, 1, 5).data, np.float32([0, 0.25, 0.5, 0.75, 1]))
    np.testing.assert_array_equal(ag.arange(10, step=3).data, [0, 3, 6, 9])
    np.testing.assert_array_equal(ag.arange(0, 1, 0.25).data, np.float32([0, 0.25, 0.5, 0.75]))
    np.testing.assert_array_equal(ag.triu_indices(2, 3).data, [[0, 0, 0, 1, 1], [0, 1, 2, 1, 2]])
    with pytest.raises(TypeError, match="rand_like: got dtype int64, expected a float dtype"):
        ag.rand_like(Tensor(np.arange(3)))
    with pytest.raises(ValueError, match="randint: got low=5 and high=5"):
        ag.randint(5, 5, (2,))


def test_random_creation_follows_manual_seed():
    ag.manual_seed(7)
    first = (ag.randperm(8).tolist(), ag.randint(0, 100, (4,)).tolist(), ag.rand_like(ag.zeros(3)).tolist())
    ag.manual_seed(7)
    assert (ag.randperm(8).tolist(), ag.randint(0, 100, (4,)).tolist(), ag.rand_like(ag.zeros(3)).tolist()) == first


def test_creation_matches_torch():
    torch = pytest.importorskip("torch")
    for ours, theirs in [(ag.linspace(-3.3, 7.1, 11), torch.linspace(-3.3, 7.1, 11)),
                         (ag.linspace(0, 1, 7), torch.linspace(0, 1, 7)),
                         (ag.logspace(0, 2, 5, base=2), torch.logspace(0, 2, 5, base=2)),
                         (ag.arange(-1, 2.2, 0.3), torch.arange(-1, 2.2, 0.3)),
                         (ag.tril_indices(4, 3, -1), torch.tril_indices(4, 3, -1)),
                         (ag.triu_indices(3, 4, 1), torch.triu_indices(3, 4, 1))]:
        assert str(ours.dtype) == str(theirs.dtype).replace("torch.", "")
        np.testing.assert_array_equal(ours.data, theirs.numpy())
