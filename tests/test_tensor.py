"""The Tensor class: construction and dtypes, properties, conversions, repr, factories, and
the methods/operators that wrap the ops."""
import numpy as np
import pytest

import autograd_core as ag


# -- construction ---------------------------------------------------------------------------------
def test_tensor_copies_and_from_numpy_shares():
    array = np.array([1.0, 2.0], dtype=np.float32)
    copied, shared = ag.tensor(array), ag.from_numpy(array)
    array[0] = 9.0
    assert copied.numpy()[0] == 1.0 and shared.numpy()[0] == 9.0
    source = ag.tensor([1.0, 2.0])
    assert not np.shares_memory(ag.tensor(source).numpy(), source.numpy())


def test_default_dtypes():
    assert ag.tensor(1.0).dtype == np.float32 and ag.tensor(1.0).shape == ()
    assert ag.tensor([[1.0, 2.0]]).dtype == np.float32
    assert ag.tensor([1, 2]).dtype == np.int64
    assert ag.tensor(3).dtype == np.int64
    assert ag.tensor([True, False]).dtype == np.bool_
    assert ag.tensor(np.arange(3, dtype=np.float64)).dtype == np.float64  # an array keeps its dtype
    assert ag.tensor(np.float64(2.5)).dtype == np.float64  # so does a numpy scalar
    assert ag.tensor([1.0], dtype=np.float64).dtype == np.float64
    assert ag.tensor([1.0], dtype=ag.float64).dtype == np.float64
    assert ag.tensor([1.5], dtype="int64").dtype == np.int64
    assert ag.Tensor([1.0, 2.0]).dtype == np.float32
    assert ag.tensor([np.uint8(1), np.uint8(2)]).dtype == np.int64  # Python lists of ints give int64
    assert ag.tensor(np.arange(3, dtype=np.uint8)).dtype == np.uint8  # arrays keep theirs (IDX images)


def test_requires_grad_at_construction():
    x = ag.tensor([1.0], requires_grad=True)
    assert x.requires_grad and x.is_leaf and x.grad is None
    assert ag.zeros(2, requires_grad=True).requires_grad
    assert not ag.ones(2).requires_grad


def test_factories():
    assert ag.zeros(2, 3).shape == (2, 3) and ag.zeros((2, 3)).shape == (2, 3)
    assert (ag.ones(4).numpy() == 1).all()
    np.testing.assert_array_equal(ag.full((2,), 7.0).numpy(), [7.0, 7.0])
    assert ag.full(3, 1.0).shape == (3,)
    np.testing.assert_array_equal(ag.eye(2, 3).numpy(), np.eye(2, 3))
    np.testing.assert_array_equal(ag.arange(2, 8, 2).numpy(), [2, 4, 6])
    np.testing.assert_allclose(ag.arange(0.0, 1.0, 0.25).numpy(), [0, 0.25, 0.5, 0.75])
    like = ag.tensor([[1.0, 2.0]], dtype=np.float64)
    assert ag.zeros_like(like).dtype == np.float64 and ag.ones_like(like).shape == (1, 2)
    assert ag.zeros(2, dtype=np.float64).dtype == np.float64


def test_random_factories_follow_manual_seed():
    ag.manual_seed(3)
    first = ag.randn(2, 3).numpy().copy()
    uniform = ag.rand(4).numpy().copy()
    ag.manual_seed(3)
    np.testing.assert_array_equal(ag.randn(2, 3).numpy(), first)
    np.testing.assert_array_equal(ag.rand(4).numpy(), uniform)
    assert ((uniform >= 0) & (uniform < 1)).all()
    generator = np.random.default_rng(0)
    assert ag.randn(3, generator=generator, dtype=np.float64).dtype == np.float64
    seeded = ag.manual_seed(5)
    assert ag.default_generator() is seeded


# -- properties and conversions -------------------------------------------------------------------
def test_properties():
    x = ag.tensor(np.zeros((2, 3, 4), dtype=np.float32))
    assert x.shape == (2, 3, 4) and x.ndim == 3 and x.dim() == 3
    assert x.size() == (2, 3, 4) and x.size(1) == 3 and x.size(-1) == 4 and x.numel() == 24 and len(x) == 2
    assert x.dtype == np.float32


def test_conversions():
    x = ag.tensor([[1.5, 2.5]])
    assert isinstance(x.numpy(), np.ndarray) and x.numpy() is x.data
    assert x.tolist() == [[1.5, 2.5]]
    assert np.asarray(x).shape == (1, 2)
    assert np.asarray(x, dtype=np.float64).dtype == np.float64
    assert ag.tensor([3.5]).item() == 3.5 and float(ag.tensor(3.5)) == 3.5
    assert int(ag.tensor([4])) == 4
    assert [0, 1, 2, 3][ag.tensor(2)] == 2  # an integer tensor can index a list
    assert bool(ag.tensor([1.0])) and not bool(ag.tensor(0.0))
    assert x.double().dtype == np.float64 and x.float().dtype == np.float32
    assert x.long().dtype == np.int64 and x.long().tolist() == [[1, 2]]
    assert x.astype(np.float64).dtype == np.float64


def test_iteration_yields_rows():
    x = ag.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    rows = list(x)
    assert len(rows) == 2 and rows[1].tolist() == [3.0, 4.0]
    (rows[0] * 2 + rows[1]).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[2.0, 2.0], [1.0, 1.0]])


def test_repr():
    assert repr(ag.tensor([1.0, 2.0])) == "tensor([1., 2.])"
    assert repr(ag.tensor([1, 2])) == "tensor([1, 2])"
    assert "dtype=float64" in repr(ag.tensor([1.0], dtype=np.float64))
    assert "requires_grad=True" in repr(ag.tensor([1.0], requires_grad=True))
    assert "grad_fn=<Mul>" in repr(ag.tensor([1.0], requires_grad=True) * 2)
    assert repr(ag.tensor(np.zeros(0, dtype=np.int64))) == "tensor([], dtype=int64)"


def test_tensors_hash_by_identity():
    a, b = ag.tensor([1.0]), ag.tensor([1.0])
    assert len({a, b}) == 2 and {a: 1}[a] == 1


# -- methods are the ops -----------------------------------------------------------------------------
def test_operators_and_methods_agree_with_functions():
    a = ag.tensor([[1.0, 2.0], [3.0, 4.0]])
    b = ag.tensor([[0.5, -1.0], [2.0, 0.25]])
    pairs = [
        (a + b, ag.add(a, b)), (a - b, ag.sub(a, b)), (a * b, ag.mul(a, b)), (a / b, ag.div(a, b)),
        (a ** b, ag.pow(a, b)), (a @ b, ag.matmul(a, b)), (-a, ag.neg(a)), (abs(b), ag.abs(b)),
        (a.add(b), a + b), (a.sub(b), a - b), (a.mul(b), a * b), (a.div(b), a / b), (a.pow(2), a ** 2),
        (a.matmul(b), a @ b), (a.neg(), -a), (a.exp(), ag.exp(a)), (a.log(), ag.log(a)),
        (a.sqrt(), ag.sqrt(a)), (b.abs(), ag.abs(b)), (b.relu(), ag.relu(b)), (b.sigmoid(), ag.sigmoid(b)),
        (b.tanh(), ag.tanh(b)), (b.softplus(), ag.softplus(b)), (b.elu(), ag.elu(b)),
        (b.leaky_relu(0.2), ag.leaky_relu(b, 0.2)), (b.clamp(0, 1), ag.clip(b, 0, 1)),
        (a.maximum(b), ag.maximum(a, b)), (a.minimum(b), ag.minimum(a, b)),
        (a.sum(0), ag.sum(a, 0)), (a.mean(), ag.mean(a)), (a.max(1).values, ag.max(a, 1).values), (a.max(1).indices, ag.argmax(a, 1)), (a.min(), ag.min(a)),
        (a.max(b), ag.maximum(a, b)), (ag.min(a, b), a.minimum(b)),
        (a.var(0), ag.var(a, 0)), (a.std(), ag.std(a)), (a.softmax(0), ag.softmax(a, 0)),
        (a.log_softmax(), ag.log_softmax(a)), (a.argmax(1), ag.argmax(a, 1)), (a.argmin(), ag.argmin(a)),
        (a.reshape(4), ag.reshape(a, 4)), (a.view(1, 4), ag.reshape(a, (1, 4))), (a.flatten(), ag.flatten(a)),
        (a.transpose(0, 1), ag.transpose(a, 0, 1)), (a.permute(1, 0), a.T), (a.expand(3, 2, 2), ag.expand(a, 3, 2, 2)),
        (a.broadcast_to((2, 2, 2)), ag.broadcast_to(a, (2, 2, 2))), (a.unsqueeze(0), ag.unsqueeze(a, 0)),
        (a.unsqueeze(0).squeeze(0), a), (a.pad((1, 1)), ag.pad(a, (1, 1))), (a[1], ag.getitem(a, 1)),
        (+a, a), (2 + a, a + 2), (2 * a, a * 2), (1 - a, -(a - 1)),
    ]
    for method_result, function_result in pairs:
        assert isinstance(method_result, ag.Tensor)
        assert method_result.dtype == function_result.dtype
        np.testing.assert_array_equal(method_result.numpy(), function_result.numpy())
    assert [p.shape for p in a.split(1, 1)] == [(2, 1), (2, 1)]
    assert [p.shape for p in a.chunk(2)] == [(1, 2), (1, 2)]


def test_numpy_array_on_the_left_gives_a_tensor():
    x = ag.tensor([1.0, 2.0], requires_grad=True)
    for result in (np.ones(2) * x, np.ones(2) + x, np.ones(2) - x, np.ones(2) / x, np.ones((2, 2)) @ x):
        assert isinstance(result, ag.Tensor) and result.requires_grad


def test_functions_accept_plain_values():
    assert ag.abs(-2.0).item() == 2.0
    assert ag.relu([-1.0, 2.0]).tolist() == [0.0, 2.0]
    assert ag.maximum(1.0, 2.0).item() == 2.0
    assert ag.concat([np.ones(2), ag.tensor([3.0])]).shape == (3,)
    assert ag.stack([np.ones(2), np.zeros(2)]).shape == (2, 2)


def test_version_and_dtype_names():
    assert ag.__version__
    assert np.dtype(ag.float32) == np.float32 and np.dtype(ag.int64) == np.int64


def test_numpy_ufuncs_refuse_tensors_instead_of_dropping_the_graph():
    import numpy as np
    import pytest

    import autograd_core as ag
    t = ag.tensor([[1.0, 2.0]], requires_grad=True)
    with pytest.raises(TypeError, match="does not support ufuncs"):
        np.exp(t)
    # operators with an ndarray on the left still reach Tensor's reflected methods
    result = np.array([[3.0, 4.0]], dtype=np.float32) * t
    assert isinstance(result, ag.Tensor) and result.requires_grad
    result.sum().backward()
    assert t.grad.data.tolist() == [[3.0, 4.0]]
