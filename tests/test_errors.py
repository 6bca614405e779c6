"""Bad input raises a ValueError/TypeError that names the op, what it got and what it
expected; nothing returns a silently wrong result."""
import re

import numpy as np
import pytest

import autograd_core as ag

T = ag.tensor


def shaped(*shape, dtype=np.float32):
    return T(np.ones(shape, dtype=dtype))


def _shapes(*shapes):
    """A regex matching the shapes in order, as Python prints them."""
    return ".*".join(re.escape(str(tuple(s))) for s in shapes)


# -- shapes that do not fit --------------------------------------------------------------------
BROADCASTING_OPS = {
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b, "pow": lambda a, b: a ** b, "maximum": ag.maximum, "minimum": ag.minimum,
    "less": lambda a, b: a < b, "greater_equal": lambda a, b: a >= b, "equal": lambda a, b: a == b,
    "not_equal": lambda a, b: a != b,
}


@pytest.mark.parametrize("name", sorted(BROADCASTING_OPS))
def test_binary_op_shape_mismatch_names_op_and_shapes(name):
    a, b = shaped(2, 3), shaped(3, 2)
    with pytest.raises(ValueError, match=r"%s: shapes %s cannot be broadcast" % (name, _shapes((2, 3), (3, 2)))):
        BROADCASTING_OPS[name](a, b)
    with pytest.raises(ValueError, match=r"^%s: .*%s" % (name, _shapes((4,), (2, 3)))):
        BROADCASTING_OPS[name](shaped(4), a)  # either order, numpy arrays too


def test_where_shape_mismatch():
    with pytest.raises(ValueError, match=r"where: shapes %s" % _shapes((4,), (2, 3), ())):
        ag.where(np.ones(4, dtype=bool), shaped(2, 3), 0.0)


def test_matmul_errors():
    with pytest.raises(ValueError, match=r"matmul: shapes %s do not match: 3 columns vs 4 rows" % _shapes((2, 3), (4, 5))):
        shaped(2, 3) @ shaped(4, 5)
    with pytest.raises(ValueError, match=r"matmul: shapes %s do not match" % _shapes((3,), (2,))):
        shaped(3) @ shaped(2)
    with pytest.raises(ValueError, match=r"matmul: batch dimensions of %s cannot be broadcast"
                                         % _shapes((2, 2, 3), (3, 3, 4))):
        shaped(2, 2, 3) @ shaped(3, 3, 4)
    with pytest.raises(ValueError, match=r"matmul: got shapes %s, expected tensors with at least one dimension"
                                         % _shapes((), (2, 3))):
        ag.matmul(shaped(), shaped(2, 3))
    for operand in ([1.0, 2.0, 3.0], 2.0):  # either side, recorded or not
        with pytest.raises(TypeError, match="matmul: got an operand of type %s, expected a Tensor or a numpy array"
                                            % type(operand).__name__):
            shaped(2, 3) @ operand
        with pytest.raises(TypeError, match="matmul: got an operand of type %s" % type(operand).__name__):
            operand @ ag.tensor(np.ones((3, 2)), requires_grad=True)


def test_matmul_not_recorded_keeps_no_graph_and_matches_recorded():
    # MatMul takes the two-operand apply: forward gets ctx=None when nothing is recorded
    a, b = np.arange(6.0).reshape(2, 3), np.arange(12.0).reshape(3, 4)
    plain = ag.tensor(a) @ ag.tensor(b)
    with ag.no_grad():
        unrecorded = ag.tensor(a, requires_grad=True) @ ag.tensor(b)
    recorded = ag.tensor(a, requires_grad=True) @ ag.tensor(b)
    assert plain.grad_fn is None and unrecorded.grad_fn is None and recorded.grad_fn is not None
    for result in (plain, unrecorded, recorded):
        np.testing.assert_array_equal(result.data, a @ b)
    for left, right in ((np.arange(3.0), b), (a, np.arange(3.0)), (a[None], b)):  # the general path too
        with ag.no_grad():
            np.testing.assert_array_equal((ag.tensor(left, requires_grad=True) @ ag.tensor(right)).data, left @ right)


def test_reshape_expand_errors():
    with pytest.raises(ValueError, match=r"reshape: cannot reshape a tensor of shape \(2, 3\) \(6 elements\) "
                                         r"into \(4,\)"):
        shaped(2, 3).reshape(4)
    with pytest.raises(ValueError, match=r"reshape: .*\(5, -1\)"):
        shaped(2, 3).view(5, -1)
    with pytest.raises(ValueError, match=r"expand: cannot broadcast a tensor of shape %s" % _shapes((2, 3), (3, 2))):
        shaped(2, 3).expand(3, 2)
    with pytest.raises(ValueError, match=r"expand: cannot broadcast a tensor of shape %s" % _shapes((2, 3), (4, 4))):
        shaped(2, 3).broadcast_to((4, 4))
    with pytest.raises(ValueError, match=r"expand: cannot expand a tensor of shape \(2, 3\) to fewer dimensions"):
        shaped(2, 3).expand(3)


def test_join_errors():
    with pytest.raises(ValueError, match=r"concat: shapes %s differ outside dim 1" % _shapes((2, 3), (3, 3))):
        ag.concat([shaped(2, 3), shaped(3, 3)], axis=1)
    with pytest.raises(ValueError, match=r"concat: shapes .*\(2, 3\).*\(2, 3, 1\)"):
        ag.concat([shaped(2, 3), shaped(2, 3, 1)])
    with pytest.raises(ValueError, match="concat: got no tensors"):
        ag.concat([])
    with pytest.raises(ValueError, match="concat: got a zero-dimensional tensor"):
        ag.concat([shaped()])
    with pytest.raises(ValueError, match=r"stack: shapes %s differ" % _shapes((2, 3), (3, 3))):
        ag.stack([shaped(2, 3), shaped(3, 3)])
    with pytest.raises(ValueError, match="stack: dim 4 is out of range for a result with 3 dimensions"):
        ag.stack([shaped(2, 3), shaped(2, 3)], axis=4)
    with pytest.raises(ValueError, match="stack: got no tensors"):
        ag.stack([])


def test_split_pad_errors():
    x = shaped(2, 5)
    with pytest.raises(ValueError, match=r"split: sections \[1, 1\] do not add up to the length 5 of dim 1"):
        x.split([1, 1], axis=1)
    with pytest.raises(ValueError, match="split: got split_size 0, expected a positive int"):
        x.split(0)
    with pytest.raises(ValueError, match="chunk: got chunks=0, expected a positive int"):
        x.chunk(0)
    with pytest.raises(ValueError, match="split: dim 2 is out of range"):
        x.split(1, axis=2)
    with pytest.raises(ValueError, match="split: got a 0-d tensor, expected at least one dimension"):
        shaped().split(1)
    with pytest.raises(ValueError, match="chunk: got a 0-d tensor, expected at least one dimension"):
        shaped().chunk(1)
    with pytest.raises(RuntimeError, match=r"pad: pads \(-3, -3\) would leave a dim of size 5 with -1 elements"):
        x.pad((-3, -3))
    with pytest.raises(RuntimeError, match=r"pad: got 6 pad values \(1, 1, 1, 1, 1, 1\) for a tensor of shape "
                       r"\(2, 5\), expected an even number, at most 2 per dim \(4\)"):
        x.pad((1, 1, 1, 1, 1, 1))
    with pytest.raises(RuntimeError, match="pad: got 3 pad values"):
        x.pad((1, 1, 1))
    with pytest.raises(TypeError, match="pad: got pad=1, expected a tuple of ints"):
        x.pad(1)
    with pytest.raises(ValueError, match="pad: got mode='edge', expected one of constant, reflect, replicate, "
                       "circular"):
        x.pad((1, 1), mode="edge")
    with pytest.raises(RuntimeError, match=r"pad: mode 'reflect' needs pads from 0 to 1 for dim 0 of size 2"):
        x.pad((0, 0, 2, 0), mode="reflect")
    with pytest.raises(ValueError, match="pad: mode 'circular' takes no value"):
        x.pad((1, 1), mode="circular", value=3.0)


AXIS_OPS = {
    "sum": lambda x, a: x.sum(axis=a), "mean": lambda x, a: x.mean(a), "max": lambda x, a: x.max(a),
    "min": lambda x, a: ag.min(x, a), "var": lambda x, a: x.var(a), "std": lambda x, a: x.std(a),
    "softmax": lambda x, a: x.softmax(a), "log_softmax": lambda x, a: x.log_softmax(a),
    "argmax": lambda x, a: x.argmax(a), "argmin": lambda x, a: x.argmin(a),
    "squeeze": lambda x, a: x.squeeze(a), "transpose": lambda x, a: x.transpose(0, a),
    "flatten": lambda x, a: x.flatten(a), "chunk": lambda x, a: x.chunk(2, a),
}


@pytest.mark.parametrize("name", sorted(AXIS_OPS))
def test_axis_out_of_range_names_op(name):
    with pytest.raises(ValueError, match=r"%s: dim 5 is out of range for a tensor with 2 dimensions" % name):
        AXIS_OPS[name](shaped(2, 3), 5)
    with pytest.raises(ValueError, match=r"%s: dim -3 is out of range" % name):
        AXIS_OPS[name](shaped(2, 3), -3)


def test_other_axis_errors():
    x = shaped(2, 3)
    with pytest.raises(ValueError, match=r"sum: dim \(0, 0\) repeats a dimension"):
        x.sum(axis=(0, 0))
    with pytest.raises(TypeError, match="sum: got both dim and axis, two spellings of the same argument; pass one"):
        x.sum(axis=0, dim=0)
    assert x.squeeze(0).shape == x.shape  # torch's squeeze leaves a dim of size > 1 as it is
    with pytest.raises(ValueError, match="unsqueeze: dim 3 is out of range for a result with 3 dimensions"):
        x.unsqueeze(3)
    with pytest.raises(ValueError, match=r"permute: got axes \(0, 0\), expected a permutation of 2 dimensions"):
        x.permute(0, 0)
    with pytest.raises(ValueError, match=r"permute: got axes \(0,\), expected a permutation"):
        x.permute(0)
    with pytest.raises(ValueError, match="transpose: pass both dim0 and dim1, or neither"):
        x.transpose(0)
    with pytest.raises(ValueError, match="flatten: start_dim 2 comes after end_dim 0"):
        ag.flatten(shaped(2, 2, 2), 2, 0)


NON_INTEGER_ARGUMENTS = {
    "sum: got dim=1.5": lambda x: x.sum(axis=1.5), "sum: got dim=True": lambda x: x.sum(axis=True),
    "mean: got dim=0.0": lambda x: x.mean(axis=(0.0, 1)), "softmax: got dim=0.5": lambda x: x.softmax(0.5),
    "argmax: got dim=1.0": lambda x: x.argmax(1.0), "permute: got dim=1.0": lambda x: x.permute(1.0, 0),
    "transpose: got dim=0.5": lambda x: x.transpose(0.5, 1), "squeeze: got dim=0.0": lambda x: x.squeeze(0.0),
    "unsqueeze: got dim=0.5": lambda x: x.unsqueeze(0.5), "stack: got dim=0.5": lambda x: ag.stack([x], 0.5),
    "reshape: got shape entry=2.5": lambda x: x.reshape(2.5, 3), "pad: got pad entry=1.5": lambda x: x.pad((1.5, 1)),
    "chunk: got chunks=2.5": lambda x: x.chunk(2.5), "split: got section=1.0": lambda x: x.split([1.0, 1]),
    "split: got split_size_or_sections=1.5": lambda x: x.split(1.5),
}


@pytest.mark.parametrize("message", sorted(NON_INTEGER_ARGUMENTS))
def test_non_integer_sizes_and_axes_are_refused(message):
    # int() would truncate them and give a silently wrong result
    with pytest.raises(TypeError, match=re.escape(message) + ".*expected"):
        NON_INTEGER_ARGUMENTS[message](shaped(2, 3))


def test_integer_like_sizes_and_axes_are_accepted():
    x = shaped(2, 3)
    assert x.sum(axis=np.int64(1)).shape == (2,)
    assert x.reshape(np.int64(3), T(2)).shape == (3, 2)
    assert x.sum(axis=[0, 1]).shape == ()
    assert [p.shape for p in x.split(np.int64(1))] == [(1, 3), (1, 3)]
    assert x.pad((np.int64(1), 1)).shape == (2, 5)


def test_indexing_errors_name_the_shape():
    with pytest.raises(IndexError, match=r"getitem: index 5 is out of bounds .*\(tensor of shape \(2, 3\)\)"):
        shaped(2, 3)[5]
    with pytest.raises(IndexError, match=r"getitem: .*\(tensor of shape \(2, 3\)\)"):
        shaped(2, 3)[0, 0, 0]
    with pytest.raises(IndexError, match=r"getitem: .*\(tensor of shape \(2, 3\)\)"):
        shaped(2, 3)[1.5]


def test_value_errors_of_reductions_and_activations():
    with pytest.raises(ValueError, match=r"max: got an empty tensor of shape \(0,\), expected at least one element"):
        shaped(0).max()
    with pytest.raises(IndexError, match=r"min: dim 1 has size 0 in a tensor of shape \(2, 0\)"):
        shaped(2, 0).min(axis=1)
    with pytest.raises(ValueError, match="clip: got min=None and max=None, expected at least one bound"):
        shaped(2).clip()


def test_one_hot_errors():
    with pytest.raises(TypeError, match="one_hot: got labels of dtype float32, expected integers"):
        ag.one_hot(T([1.0]))
    with pytest.raises(ValueError, match=r"one_hot: labels must lie in \[0, 3\), got min 0 and max 3"):
        ag.one_hot(T([0, 3]), 3)
    with pytest.raises(ValueError, match=r"one_hot: labels must lie in \[0, 4\), got min -1"):
        ag.one_hot(T([-1, 2]), 4)


def test_scalar_conversions_of_larger_tensors():
    with pytest.raises(ValueError, match=r"item: got a tensor of shape \(2, 3\), expected exactly one element"):
        shaped(2, 3).item()
    with pytest.raises(ValueError, match=r"bool: the truth value of a tensor of shape \(2,\) is ambiguous"):
        if shaped(2):
            pass
    with pytest.raises(TypeError, match="len"):
        len(shaped())
    with pytest.raises(TypeError, match="__index__: got a float32 tensor, expected an integer one"):
        [1, 2][T(1.0)]


# -- dtypes ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("data", [["a", "b"], np.array([1 + 2j]), [None], np.array([b"x"])],
                         ids=["str", "complex", "object", "bytes"])
def test_unsupported_dtypes_are_refused_at_construction(data):
    with pytest.raises(TypeError, match=r"tensor: got an array of dtype \S+, expected a bool, integer or float dtype"):
        T(data)


# (exp, log, sqrt, tanh and sigmoid turn integer and bool inputs into float32, as torch's:
# tests/test_torch_api.py)
FLOAT_ONLY = {
    "softplus": ag.softplus, "elu": ag.elu, "leaky_relu": ag.leaky_relu, "mean": ag.mean, "var": ag.var,
    "std": ag.std, "softmax": ag.softmax, "log_softmax": ag.log_softmax,
}


@pytest.mark.parametrize("name", sorted(FLOAT_ONLY))
@pytest.mark.parametrize("dtype", [np.int64, np.bool_])
def test_float_only_ops_refuse_other_dtypes(name, dtype):
    with pytest.raises(TypeError, match=r"%s: got a tensor of dtype %s, expected float32 or float64"
                                        % (name, np.dtype(dtype).name)):
        FLOAT_ONLY[name](T(np.ones(3, dtype=dtype)))


def test_only_float_tensors_can_require_grad():
    with pytest.raises(TypeError, match="requires_grad_: got a tensor of dtype int64, expected a float dtype"):
        T([1, 2], requires_grad=True)
    with pytest.raises(TypeError, match="dtype bool"):
        T([True]).requires_grad_()


def test_gemm_refuses_half_precision():
    half = shaped(2, 2, dtype=np.float16)
    with pytest.raises(TypeError, match="gemm: got dtypes a=float16, b=float16, expected all float32 or all float64"):
        half @ half


def test_other_type_errors():
    with pytest.raises(TypeError, match="where: got a condition of dtype float32, expected bool"):
        ag.where(T([1.0]), shaped(1), shaped(1))
    with pytest.raises(TypeError, match="where: got a condition of dtype int64, expected bool"):
        ag.where(T([1]), 1.0, 0.0)
    with pytest.raises(TypeError, match="from_numpy: got list, expected a numpy.ndarray"):
        ag.from_numpy([1.0])
    with pytest.raises(TypeError, match="abs: got str, expected a Tensor, array or number"):
        ag.abs("x")
    with pytest.raises(TypeError, match="relu: got dict"):
        ag.relu({})
    with pytest.raises(TypeError, match="add: got str 's', expected a Tensor, array or number"):
        shaped(2) + "s"


# -- autograd misuse ---------------------------------------------------------------------------------
def test_backward_errors():
    x = T([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"backward: got a tensor of shape \(2,\); backward\(\) without a "
                                           r"gradient needs a one-element \(scalar\) tensor"):
        (x * 2).backward()
    with pytest.raises(ValueError, match=r"backward: got a gradient of shape \(1, 2\) for a tensor of shape \(2,\)"):
        (x * 2).backward(np.ones((1, 2)))
    with pytest.raises(RuntimeError, match="backward: the tensor does not require grad"):
        T([1.0]).sum().backward()
    with ag.no_grad():
        y = (x * 2).sum()
    with pytest.raises(RuntimeError, match="computed under no_grad"):
        y.backward()


# -- nothing silently wrong -------------------------------------------------------------------------
def test_results_are_never_silently_wrong():
    # results that a careless implementation would get wrong without raising
    x = T([[1.0, 2.0, 3.0]], requires_grad=True)
    (x.T @ x).sum().backward()  # a (3, 1) @ (1, 3) outer product, not an error or a dot product
    np.testing.assert_array_equal(x.grad.numpy(), [[12.0, 12.0, 12.0]])
    assert (shaped(3, 1) + shaped(3)).shape == (3, 3)  # broadcast, as numpy does
    bias = T([1.0, 2.0], requires_grad=True)
    (shaped(4, 2) + bias).sum().backward()
    np.testing.assert_array_equal(bias.grad.numpy(), [4.0, 4.0])  # summed over the broadcast rows
    assert bias.grad.shape == bias.shape
