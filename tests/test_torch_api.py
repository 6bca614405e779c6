"""The PyTorch vocabulary and the deliberate breaking changes of the torch-API issue: one
spelling of dimension arguments for every op (dim/axis, keepdim/keepdims), torch's
Tensor conversion methods, ``size()``, ``max(dim)`` with indices, ``pad`` in F.pad's
order, dtype promotion and torch's exception classes."""
import inspect

import numpy as np
import pytest

import autograd_core as ag
from autograd_core import registry


def _dimension_ops():
    """(name, OpInfo) of every registered op whose function takes a dimension keyword."""
    found = []
    for name, info in registry.ops().items():
        if info.function_class is not None:
            continue
        parameters = inspect.signature(info.function).parameters
        if {"dim", "axis", "keepdim", "keepdims"} & set(parameters):
            found.append((name, info))
    return found


DIMENSION_OPS = _dimension_ops()


def test_dimension_ops_are_found():
    names = {name for name, _ in DIMENSION_OPS}
    assert {"sum", "mean", "max", "argmax", "softmax", "concat", "cat", "stack", "squeeze", "cumsum"} <= names


@pytest.mark.parametrize("name, info", DIMENSION_OPS, ids=[name for name, _ in DIMENSION_OPS])
def test_every_dimension_op_accepts_both_spellings(name, info):
    """The registry maps the other spelling of each dimension keyword onto the one the
    function declares, and refuses both at once naming the op."""
    parameters = inspect.signature(info.function).parameters
    for torch_name, numpy_name in (("dim", "axis"), ("keepdim", "keepdims")):
        if (torch_name in parameters) == (numpy_name in parameters):
            continue  # neither (nothing to map) or both (the op handles them itself)
        declared = torch_name if torch_name in parameters else numpy_name
        alias = numpy_name if declared == torch_name else torch_name
        assert info.function.dimension_aliases[alias] == declared
        with pytest.raises(TypeError, match="%s: got both %s and %s" % (name, declared, alias)):
            info.function(ag.zeros(2, 2), **{declared: 0, alias: 0})


@pytest.mark.parametrize("call", [
    lambda x, **k: x.sum(**k), lambda x, **k: ag.mean(x, **k), lambda x, **k: x.amax(**k),
    lambda x, **k: x.logsumexp(**k), lambda x, **k: x.prod(**{n: v for n, v in k.items()}),
])
def test_dim_and_axis_give_the_same_result(call):
    x = ag.tensor(np.arange(6.0).reshape(2, 3))
    torch_spelling = call(x, dim=1, keepdim=True)
    numpy_spelling = call(x, axis=1, keepdims=True)
    assert torch_spelling.shape == numpy_spelling.shape == (2, 1)
    np.testing.assert_array_equal(torch_spelling.numpy(), numpy_spelling.numpy())


def test_torch_names_are_the_primary_ones():
    for op in (ag.sum, ag.mean, ag.var, ag.argmax, ag.softmax, ag.squeeze, ag.unsqueeze, ag.concat, ag.stack,
               ag.split, ag.chunk, ag.unbind, ag.cumsum, ag.sort):
        parameters = inspect.signature(op).parameters
        assert "dim" in parameters and "axis" not in parameters, op
        assert "keepdims" not in parameters, op


def test_a_positional_dim_and_an_alias_keyword_is_refused():
    with pytest.raises(TypeError, match="sum: got both dim and axis"):
        ag.sum(ag.zeros(2, 2), 0, axis=1)


def test_positional_calls_go_straight_through():
    x = ag.tensor([[1.0, 5.0], [3.0, 2.0]])
    assert ag.argmax(x, 1, True).shape == (2, 1)
    assert ag.argmax(x, dim=1).tolist() == [1, 0]
    assert ag.argmax(x, axis=0).tolist() == [1, 0]


def test_cat_is_concat():
    a, b = ag.ones(2, 3), ag.zeros(2, 1)
    assert ag.cat([a, b], dim=1).shape == (2, 4)
    assert ag.cat([a, b], axis=-1).shape == (2, 4)
    np.testing.assert_array_equal(ag.cat([a, b], 1).numpy(), ag.concat([a, b], 1).numpy())


def test_cat_gradient():
    a = ag.randn(2, 3, dtype="float64", requires_grad=True)
    b = ag.randn(2, 1, dtype="float64", requires_grad=True)
    assert ag.gradcheck(lambda a, b: ag.cat([a, b], dim=1), (a, b))


# ---- Tensor conversions as torch ---------------------------------------------------------
def test_dtype_conversions():
    x = ag.tensor([[1.5, -2.0]], requires_grad=True)
    assert x.double().dtype == np.float64 and x.float().dtype == np.float32
    assert x.long().dtype == np.int64 and x.int().dtype == np.int32 and x.bool().dtype == np.bool_
    assert x.long().tolist() == [[1, -2]] and x.bool().tolist() == [[True, True]]
    assert x.type_as(ag.tensor([1])).dtype == np.int64
    assert x.to("float64").dtype == np.float64 and x.to(np.float64).dtype == np.float64
    assert x.to(float).dtype == np.float32  # Python's float is torch's default float
    assert x.to(ag.zeros(1, dtype="float64")).dtype == np.float64
    assert x.to("cpu") is x and x.cpu() is x and x.to("cpu", "float64").dtype == np.float64
    assert x.to(device="cpu", dtype="int64").dtype == np.int64
    assert x.device == "cpu"


def test_conversions_are_differentiable():
    x = ag.tensor([1.0, 2.0], requires_grad=True)
    (x.double() * 3).sum().backward()
    assert x.grad.dtype == np.float32 and x.grad.tolist() == [3.0, 3.0]


def test_to_another_device_is_refused():
    with pytest.raises(RuntimeError, match="to: got device 'cuda'.*CPU only"):
        ag.zeros(2).to("cuda")


def test_to_a_bad_dtype_names_the_op():
    with pytest.raises(TypeError, match="to: got dtype='text'"):
        ag.zeros(2).to("text")


def test_clone_copies_and_keeps_the_graph():
    x = ag.tensor([1.0, 2.0], requires_grad=True)
    y = x.clone()
    assert y.grad_fn is not None and not y.is_leaf and x.is_leaf
    assert not np.shares_memory(y.numpy(), x.numpy())
    (y * y).sum().backward()
    assert x.grad.tolist() == [2.0, 4.0]


def test_contiguous():
    x = ag.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    assert x.contiguous() is x and x.is_contiguous()
    transposed = x.T
    assert not transposed.is_contiguous()
    made = transposed.contiguous()
    assert made.is_contiguous() and made.tolist() == transposed.tolist() and made.grad_fn is not None


# ---- size() as torch: a deliberate break of numpy's .size attribute -----------------------
def test_size_is_torchs():
    x = ag.zeros(2, 3, 4)
    assert x.size() == (2, 3, 4) and isinstance(x.size(), tuple)
    assert x.size(0) == 2 and x.size(-1) == 4 and x.size(-3) == 2
    assert x.numel() == 24 and x.dim() == 3 and x.ndim == 3
    assert ag.tensor(1.5).size() == () and ag.tensor(1.5).numel() == 1


@pytest.mark.parametrize("shape, dim", [((2, 3), 2), ((2, 3), -3), ((), 0), ((), -1)])
def test_size_of_a_dim_out_of_range_is_an_index_error(shape, dim):
    with pytest.raises(IndexError, match="size: dim %d is out of range for a tensor with %d dimensions"
                       % (dim, len(shape))):
        ag.zeros(*shape).size(dim)


def test_size_of_a_non_integer_dim_is_a_type_error():
    with pytest.raises(TypeError, match=r"size: got dim=1.0 \(float\), expected an int"):
        ag.zeros(2, 3).size(1.0)


# ---- max and min as torch: a deliberate break of the values-only max(axis) ------------------
def test_max_over_everything_is_one_value():
    x = ag.tensor([[1.0, 5.0], [3.0, 2.0]])
    assert x.max().shape == () and x.max().item() == 5.0 and x.min().item() == 1.0
    assert ag.tensor([3, 7, 1]).max().item() == 7


def test_max_along_a_dim_returns_values_and_indices():
    x = ag.tensor([[1.0, 5.0, 5.0], [3.0, 2.0, 0.0]])
    result = x.max(1)
    values, indices = result
    assert result.values is values and result.indices is indices
    assert values.tolist() == [5.0, 3.0] and indices.tolist() == [1, 0] and indices.dtype == np.int64
    kept = ag.min(x, dim=0, keepdim=True)
    assert kept.values.tolist() == [[1.0, 2.0, 0.0]] and kept.indices.tolist() == [[0, 1, 1]]
    assert x.max(axis=-1, keepdims=True).values.shape == (2, 1)
    scalar = ag.tensor(2.0).max(0)
    assert scalar.values.item() == 2.0 and scalar.indices.item() == 0


def test_max_along_a_dim_routes_the_gradient_to_the_index():
    x = ag.tensor([[1.0, 5.0, 5.0], [3.0, 2.0, 0.0]], requires_grad=True)
    x.max(dim=1).values.sum().backward()
    assert x.grad.tolist() == [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]


def test_max_of_two_tensors_is_maximum():
    a, b = ag.tensor([1.0, 5.0]), ag.tensor([3.0, 2.0])
    assert ag.max(a, b).tolist() == [3.0, 5.0] and a.min(b).tolist() == [1.0, 2.0]
    assert ag.max(a, ag.tensor(4.0)).tolist() == [4.0, 5.0]


def test_max_refuses_several_dims_and_keepdim_without_dim():
    x = ag.zeros(2, 3)
    with pytest.raises(TypeError, match=r"max: got dim=\(0, 1\), expected one int .*amax"):
        x.max((0, 1))
    with pytest.raises(TypeError, match="min: got keepdim=True without dim"):
        x.min(keepdim=True)
    with pytest.raises(IndexError, match=r"max: dim 1 has size 0 in a tensor of shape \(2, 0\)"):
        ag.zeros(2, 0).max(1)
    with pytest.raises(RuntimeError, match=r"max: got an empty tensor of shape \(0,\)"):
        ag.zeros(0).max()


def test_argmax_as_torch():
    x = ag.tensor([[1.0, 5.0], [7.0, 2.0]])
    assert x.argmax().item() == 2 and x.argmin(dim=1).tolist() == [0, 1]
    assert x.argmax(keepdim=True).shape == (1, 1) and x.argmax(dim=0, keepdim=True).tolist() == [[1, 0]]


# ---- pad in torch's F.pad order: a deliberate break of numpy's per-dim pairs -----------------
def test_pad_takes_the_last_dim_first():
    x = ag.ones(1, 2)
    assert ag.pad(x, (1, 2)).shape == (1, 5)          # (left, right) of the last dim
    assert ag.pad(x, (0, 0, 3, 0)).shape == (4, 2)    # then (top, bottom)
    assert ag.pad(x, (1, 2)).tolist() == [[0.0, 1.0, 1.0, 0.0, 0.0]]


def test_pad_modes():
    x = ag.tensor([[1.0, 2.0, 3.0]])
    assert ag.pad(x, (2, 1), mode="reflect").tolist() == [[3.0, 2.0, 1.0, 2.0, 3.0, 2.0]]
    assert ag.pad(x, (2, 1), mode="replicate").tolist() == [[1.0, 1.0, 1.0, 2.0, 3.0, 3.0]]
    assert ag.pad(x, (2, 1), mode="circular").tolist() == [[2.0, 3.0, 1.0, 2.0, 3.0, 1.0]]
    assert ag.pad(x, (1, -1), value=7.0).tolist() == [[7.0, 1.0, 2.0]]  # a negative pad crops


def test_pad_gradient_adds_up_the_copies():
    x = ag.tensor([[1.0, 2.0, 3.0]], requires_grad=True)
    ag.pad(x, (2, 2), mode="replicate").sum().backward()
    assert x.grad.tolist() == [[3.0, 1.0, 3.0]]


def test_nn_functional_pad():
    import nn.functional as F
    x = ag.randn(1, 4, 4, 2, dtype="float64", requires_grad=True)
    assert F.pad(x, (0, 0, 1, 1, 2, 0), mode="reflect").shape == (1, 6, 6, 2)
    assert ag.gradcheck(lambda x: F.pad(x, (0, 0, 1, 1, 2, 0), mode="circular"), (x,))


# ---- dtypes as torch ----------------------------------------------------------------------
@pytest.mark.parametrize("name", ["exp", "log", "sqrt", "tanh", "sigmoid"])
@pytest.mark.parametrize("values", [[1, 2], [True, True]])
def test_float_math_on_integers_gives_float32(name, values):
    out = getattr(ag, name)(ag.tensor(values))
    assert out.dtype == np.float32
    expected = getattr(ag, name)(ag.tensor(values).float())
    np.testing.assert_array_equal(out.numpy(), expected.numpy())


@pytest.mark.parametrize("expression, dtype", [
    (lambda: ag.tensor([1, 2]) + ag.tensor([3, 4]), np.int64),
    (lambda: ag.tensor([1, 2]) * 2.5, np.float32),
    (lambda: ag.tensor([True, False]) + ag.tensor([True, True]), np.bool_),
    (lambda: ag.tensor([True, False]) + 1, np.int64),
    (lambda: ag.tensor([1.0, 2.0]) * ag.tensor(2.0, dtype="float64"), np.float32),
    (lambda: ag.tensor([1, 2], dtype=ag.int32) + 5, np.int32),
    (lambda: ag.tensor([1, 2], dtype=ag.int32) + ag.tensor(3), np.int32),
    (lambda: ag.tensor([1, 2]), np.int64), (lambda: ag.tensor([1, 2.5]), np.float32),
    (lambda: ag.arange(3), np.int64), (lambda: ag.full((2,), 3), np.int64),
])
def test_dtype_promotion_is_torchs(expression, dtype):
    assert expression().dtype == dtype


def test_dtype_names():
    assert ag.zeros(2, dtype=ag.int32).dtype == np.int32 and ag.zeros(2, dtype=ag.bool).dtype == np.bool_
    assert ag.zeros(2, dtype=ag.int8).dtype == np.int8 and ag.zeros(2, dtype=ag.uint8).dtype == np.uint8
    assert ag.zeros(2, dtype=ag.int16).dtype == np.int16 and ag.zeros(2, dtype=ag.float16).dtype == np.float16


# ---- torch's exception classes (each also the ValueError this library raised before) ---------
@pytest.mark.parametrize("call", [
    lambda x: x.sum(dim=2), lambda x: x.softmax(-3), lambda x: x.argmax(5), lambda x: x.unsqueeze(4),
    lambda x: ag.stack([x, x], 4), lambda x: x.cumsum(2), lambda x: x.gather(3, ag.tensor([[0]])),
    lambda x: x.transpose(0, 2), lambda x: x.size(2), lambda x: ag.unbind(x, 2), lambda x: x.flip(2),
])
def test_a_dim_out_of_range_is_an_index_error(call):
    with pytest.raises(IndexError, match="out of range"):
        call(ag.zeros(2, 3))


@pytest.mark.parametrize("call", [
    lambda: ag.zeros(2, 3) + ag.zeros(4), lambda: ag.zeros(2, 3) @ ag.zeros(2, 3),
    lambda: ag.zeros(2, 3).reshape(4, 2), lambda: ag.cat([ag.zeros(2, 3), ag.zeros(2, 2)]),
    lambda: ag.zeros(2, 3).expand(4, 3), lambda: ag.zeros(2).item(), lambda: bool(ag.zeros(2)),
    lambda: ag.zeros(2).split([1, 2]), lambda: ag.zeros(2, 3, requires_grad=True).sum(1).backward(ag.ones(3)),
])
def test_a_shape_mismatch_is_a_runtime_error(call):
    with pytest.raises(RuntimeError):
        call()


def test_the_error_classes_are_also_value_errors():
    from autograd_core.errors import DimensionError, ShapeError
    assert issubclass(ShapeError, RuntimeError) and issubclass(ShapeError, ValueError)
    assert issubclass(DimensionError, IndexError) and issubclass(DimensionError, ValueError)
    with pytest.raises(ValueError):
        ag.zeros(2, 3) + ag.zeros(4)


def test_squeeze_leaves_other_dims_as_torch():
    x = ag.zeros(2, 1, 3)
    assert x.squeeze(0).shape == (2, 1, 3) and x.squeeze(1).shape == (2, 3) and x.squeeze((0, 1)).shape == (2, 3)


# ---- var/std without degrees of freedom, clamp with min > max: as torch -------------------------
def test_var_without_degrees_of_freedom_is_nan_with_a_warning():
    x = ag.tensor([[1.0, 2.0]], requires_grad=True)
    with pytest.warns(UserWarning, match="var: 1 elements per reduction with correction=1 leave no degrees of freedom"):
        value = x.var(0)
    assert np.isnan(value.numpy()).all()
    value.sum().backward()
    assert np.isnan(x.grad.numpy()).all()
    with pytest.warns(UserWarning, match="std: 1 elements"):
        assert np.isnan(ag.tensor([3.0]).std().item())
    with pytest.warns(UserWarning, match="correction=3"):
        assert ag.tensor([1.0, 2.0]).var(correction=3).item() == np.inf  # torch's divisor max(0, n - correction)


def test_clamp_with_min_above_max_gives_max():
    x = ag.tensor([-1.0, 0.5, 3.0], requires_grad=True)
    y = x.clamp(2.0, 1.0)
    assert y.tolist() == [1.0, 1.0, 1.0]
    y.sum().backward()
    assert x.grad.tolist() == [0.0, 0.0, 0.0]
    assert ag.tensor([1, 5]).clamp(3, 2).tolist() == [2, 2]


def test_nn_functional_softmax_takes_both_spellings():
    import nn.functional as F
    x = ag.randn(2, 3)
    np.testing.assert_array_equal(F.softmax(x, axis=0).numpy(), F.softmax(x, dim=0).numpy())
    np.testing.assert_array_equal(F.log_softmax(x, axis=0).numpy(), x.log_softmax(0).numpy())
    with pytest.raises(TypeError, match="softmax: got both dim and axis"):
        F.softmax(x, dim=0, axis=0)


def test_functional_binds_the_ops_torch_code_reaches_through_F():
    import nn.functional as F
    for name in F._SAME_AS_OPS:
        assert getattr(F, name) is getattr(ag, name), name
    assert F.unfold is ag.im2col and F.fold is ag.col2im
    x = ag.tensor(np.arange(50.0).reshape(1, 5, 5, 2))
    # torch's positional order: (input, kernel_size, stride, padding, ceil_mode, count_include_pad)
    assert F.avg_pool2d(x, 2, 2, 0, True).shape == (1, 3, 3, 2)
    assert F.max_pool2d(x, 2, 2, 0, 1, True).shape == (1, 3, 3, 2)


@pytest.mark.parametrize("index, expected_shape, reference", [
    # numpy gives [2, 3]: it counts the 0 as an advanced index separated from [0, 1] by a slice
    ((0, slice(None), [0, 1]), (3, 2, 5), lambda a: a[0][:, [0, 1]]),
    ((1, [0, 2], slice(1, 3), [1, 1]), (2, 2), lambda a: a[1][[0, 2], 1:3, [1, 1]]),
    ((0, Ellipsis, [1, 2]), (3, 4, 2), lambda a: a[0][..., [1, 2]]),
    ((None, 1, slice(None), [0, 2], None), (1, 3, 2, 1, 5), lambda a: a[None, 1][:, :, [0, 2], None]),
    (([0, 1], slice(None), [0, 1]), (2, 3, 5), lambda a: a[[0, 1], :, [0, 1]]),  # no integer: numpy's rule
])
def test_indexing_applies_integers_before_placing_advanced_indices_as_torch(index, expected_shape, reference):
    a = np.arange(120.0).reshape(2, 3, 4, 5)
    x = ag.tensor(a, requires_grad=True)
    y = x[index]
    assert y.shape == expected_shape
    np.testing.assert_array_equal(y.data, reference(a))
    (y * ag.tensor(np.arange(float(y.numel())).reshape(y.shape))).sum().backward()
    # each output element's weight lands on the element it read (reference() on element ids)
    expected_grad = np.zeros(a.size)
    read = reference(np.arange(a.size).reshape(a.shape)).ravel()
    np.add.at(expected_grad, read, np.arange(float(y.numel())))
    np.testing.assert_array_equal(x.grad.data, expected_grad.reshape(a.shape))


@pytest.mark.parametrize("op, shape, kwargs", [
    ("max_pool1d", (6, 2), {}), ("max_pool2d", (4, 6, 2), {}), ("max_pool3d", (4, 4, 4, 2), {}),
    ("avg_pool1d", (6, 2), {}), ("avg_pool2d", (4, 6, 2), {"ceil_mode": True}), ("avg_pool3d", (4, 4, 4, 2), {}),
    ("max_pool2d", (4, 6, 2), {"return_indices": True}), ("max_pool2d", (5, 5, 2), {"dilation": 2}),
])
def test_pooling_takes_one_unbatched_input_as_torch(op, shape, kwargs):
    rng = np.random.default_rng(3)
    x = rng.permutation(np.arange(float(np.prod(shape)))).reshape(shape)
    pool = getattr(ag, op)
    kernel = 2
    unbatched = pool(ag.tensor(x, requires_grad=True), kernel, **kwargs)
    batched = pool(ag.tensor(x[None]), kernel, **kwargs)
    unbatched, batched = (unbatched, batched) if isinstance(batched, tuple) else ((unbatched,), (batched,))
    for u, b in zip(unbatched, batched):
        assert u.shape == b.shape[1:]
        np.testing.assert_array_equal(u.data, b.data[0])


def test_conv2d_takes_one_unbatched_image_as_torch():
    rng = np.random.default_rng(4)
    x, w = rng.standard_normal((5, 5, 2)), rng.standard_normal((3, 3, 2, 4))
    image = ag.tensor(x, requires_grad=True)
    y = ag.conv2d(image, ag.tensor(w), padding=1)
    np.testing.assert_allclose(y.data, ag.conv2d(ag.tensor(x[None]), ag.tensor(w), padding=1).data[0])
    assert ag.gradcheck(lambda t: ag.conv2d(t, ag.tensor(w), padding=1, activation="relu"), (image,))


def test_assignment_places_integers_and_array_indices_as_torch():
    # torch: x[0, :, [0, 1]] is [3, 2], so a [3, 2] value fits (numpy would want [2, 3])
    x = ag.zeros(2, 3, 4)
    x[0, :, [0, 1]] = ag.tensor(np.arange(6.0).reshape(3, 2))
    expected = np.zeros((2, 3, 4))
    expected[0][:, [0, 1]] = np.arange(6.0).reshape(3, 2)
    np.testing.assert_array_equal(x.data, expected)
    # in a graph: the written part's gradient goes to the value, the rest to x
    base = ag.tensor(np.ones((2, 3, 4)), requires_grad=True)
    value = ag.tensor(np.full((3, 2), 2.0), requires_grad=True)
    y = base * 1
    y[0, :, [0, 1]] = value
    (y * ag.tensor(np.arange(24.0).reshape(2, 3, 4))).sum().backward()
    weights = np.arange(24.0).reshape(2, 3, 4)
    np.testing.assert_array_equal(value.grad.data, weights[0][:, [0, 1]])
    kept = weights.copy()
    kept[0][:, [0, 1]] = 0
    np.testing.assert_array_equal(base.grad.data, kept)
