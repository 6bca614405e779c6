"""einsum, the products and autograd_core.linalg beyond the op table: hypothesis-drawn
batch shapes (gradcheck), the gradients' special cases (diagonals, repeated eigenvalues
and singular values, singular matrices, ties of the inf-norm), the namespace and the
Tensor methods, and the errors for bad input. The table (tests/op_table_linalg.py)
checks every op's forward against numpy, its gradcheck, and values and gradients against
torch."""
import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

import autograd_core as ag
from autograd_core import Tensor, gradcheck


def _leaf(array):
    return Tensor(np.asarray(array, dtype=np.float64), requires_grad=True)


def _invertible(rng, shape):
    n = shape[-1]
    return rng.uniform(-0.5, 0.5, shape) + (n + 1.0) * np.eye(n)


# ---- namespace, exports, methods ------------------------------------------------------
def test_linalg_namespace_and_tensor_methods():
    import autograd_core.linalg as linalg
    assert linalg is ag.linalg
    for name in ("inv", "det", "slogdet", "solve", "cholesky", "qr", "eigh", "svd", "svdvals", "norm",
                 "vector_norm", "matrix_norm"):
        assert getattr(ag.linalg, name) is getattr(ag, "linalg_" + name), name
    assert ag.det is ag.linalg.det and ag.inverse is ag.linalg.inv and ag.slogdet is ag.linalg.slogdet  # torch.det ...
    assert issubclass(ag.linalg.LinAlgError, RuntimeError) and issubclass(ag.linalg.LinAlgError, np.linalg.LinAlgError)
    a = _leaf(_invertible(np.random.default_rng(0), (3, 3)))
    np.testing.assert_allclose(a.det().data, np.linalg.det(a.data))
    np.testing.assert_allclose(a.inverse().data, np.linalg.inv(a.data))
    assert a.slogdet().logabsdet.item() == pytest.approx(np.log(abs(np.linalg.det(a.data))))
    v = _leaf([1.0, 2.0])
    assert v.dot(v).item() == 5.0 and v.outer(v).shape == (2, 2) and v.inner(v).item() == 5.0
    assert v.kron(v).shape == (4,)


def test_result_tuples_have_torch_field_names():
    rng = np.random.default_rng(1)
    a = _leaf(_invertible(rng, (3, 3)))
    assert ag.linalg.slogdet(a)._fields == ("sign", "logabsdet")
    assert ag.linalg.qr(a)._fields == ("Q", "R")
    assert ag.linalg.eigh(a)._fields == ("eigenvalues", "eigenvectors")
    assert ag.linalg.svd(a)._fields == ("U", "S", "Vh")
    sign = ag.linalg.slogdet(a).sign
    assert not sign.requires_grad and sign.dtype == np.float64  # the sign has no gradient, as in torch


# ---- einsum ---------------------------------------------------------------------------
def test_einsum_diagonal_gradient_lies_on_the_diagonal():
    a = _leaf(np.arange(9.0).reshape(3, 3))
    ag.einsum("ii->i", a).backward(Tensor(np.array([1.0, 2.0, 3.0])))
    np.testing.assert_array_equal(a.grad.data, np.diag([1.0, 2.0, 3.0]))
    b = _leaf(np.arange(9.0).reshape(3, 3))
    trace = ag.einsum("ii", b)
    assert trace.item() == 12.0
    trace.backward()
    np.testing.assert_array_equal(b.grad.data, np.eye(3))


def test_einsum_summed_letter_and_broadcast_gradients():
    a = _leaf(np.ones((2, 3)))
    ag.einsum("ij->i", a).backward(Tensor(np.array([1.0, 5.0])))
    np.testing.assert_array_equal(a.grad.data, [[1.0] * 3, [5.0] * 3])
    row, full = _leaf([[1.0, 2.0, 3.0]]), _leaf(np.ones((4, 3)))
    ag.einsum("ij,ij->ij", row, full).sum().backward()  # row's size-1 i broadcast: gradient summed over it
    np.testing.assert_array_equal(row.grad.data, [[4.0, 4.0, 4.0]])


def test_einsum_operand_list_implicit_output_and_integers():
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((2, 3)), rng.standard_normal((3, 4))
    np.testing.assert_allclose(ag.einsum("ij,jk", [Tensor(a), Tensor(b)]).data, a @ b)
    np.testing.assert_allclose(ag.einsum("ba", Tensor(a)).data, a.T)  # implicit output: sorted letters
    np.testing.assert_allclose(ag.einsum("Ab,bA", Tensor(a), Tensor(a.T)).data, np.sum(a * a))
    np.testing.assert_allclose(ag.einsum(Tensor(a), [0, 1], Tensor(b), [1, 2], [0, 2]).data, a @ b)  # sublists
    np.testing.assert_allclose(ag.einsum(Tensor(a), [Ellipsis, 1], Tensor(b), [1, 2]).data, a @ b)
    with pytest.raises(ValueError, match="einsum: got sublist label 'x'"):
        ag.einsum(Tensor(a), ["x", 1])
    ints = ag.einsum("i,i->", Tensor(np.arange(3)), Tensor(np.arange(3)))
    assert ints.dtype == np.int64 and ints.item() == 5
    result = ag.einsum("ij->ji", Tensor(a))
    assert not np.shares_memory(result.data, a)  # numpy's einsum returns a view here; the op copies


def test_einsum_empty_dimensions():
    a, b = _leaf(np.zeros((2, 0))), _leaf(np.zeros((0, 3)))
    out = ag.einsum("ij,jk->ik", a, b)
    np.testing.assert_array_equal(out.data, np.zeros((2, 3)))
    out.sum().backward()
    assert a.grad.shape == (2, 0) and b.grad.shape == (0, 3)


@given(batch_a=hnp.array_shapes(min_dims=0, max_dims=2, min_side=1, max_side=2),
       batch_b=hnp.array_shapes(min_dims=0, max_dims=2, min_side=1, max_side=2),
       sizes=st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3)), seed=st.integers(0, 2 ** 16))
def test_einsum_ellipsis_matches_matmul_with_gradients(batch_a, batch_b, sizes, seed):
    try:
        np.broadcast_shapes(batch_a, batch_b)
    except ValueError:
        batch_b = batch_a
    m, k, n = sizes
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal(batch_a + (m, k)), rng.standard_normal(batch_b + (k, n))
    np.testing.assert_allclose(ag.einsum("...ij,...jk", Tensor(a), Tensor(b)).data, np.matmul(a, b), atol=1e-12)
    assert gradcheck(lambda x, y: ag.einsum("...ij,...jk->...ik", x, y), (_leaf(a), _leaf(b)))


@pytest.mark.parametrize("equation, shapes, message", [
    ("ij,jk->ik", [(2, 3)], "has 2 operand"),
    ("ij", [(2, 3, 4)], "has 2 subscript"),
    ("ij,jk", [(2, 3), (4, 2)], "subscript 'j' has size 4"),
    ("ij->k", [(2, 3)], "output subscript 'k'"),
    ("ij->ii", [(2, 3)], "appears more than once"),
    ("i$j", [(2, 3)], "contains '\\$'"),
    ("......ij", [(2, 3)], "more than one ellipsis"),
    ("ij->i->j", [(2, 3)], "more than one '->'"),
    ("ii", [(2, 3)], "repeated in operand 0"),
])
def test_einsum_bad_equations_name_the_op(equation, shapes, message):
    with pytest.raises(ValueError, match="einsum: .*" + message):
        ag.einsum(equation, *[Tensor(np.ones(s)) for s in shapes])


def test_einsum_bad_arguments():
    with pytest.raises(TypeError, match="einsum: got equation=3"):
        ag.einsum(3, Tensor(np.ones(2)))
    with pytest.raises(TypeError, match="einsum: operand 0 is ndarray"):
        ag.einsum("i", np.ones(2))
    with pytest.raises(ValueError, match="einsum: got no operands"):
        ag.einsum("i")


# ---- the products ---------------------------------------------------------------------
def test_product_shape_errors_name_the_op():
    m, v = Tensor(np.ones((2, 3))), Tensor(np.ones(3))
    with pytest.raises(ValueError, match=r"outer: got shapes \(2, 3\) and \(3,\), expected two 1-D"):
        ag.outer(m, v)
    with pytest.raises(ValueError, match="dot: got shapes"):
        ag.dot(v, Tensor(np.ones(4)))
    with pytest.raises(ValueError, match="inner: got shapes"):
        ag.inner(m, Tensor(np.ones(2)))
    with pytest.raises(ValueError, match="bmm: got shapes .* expected two 3-D"):
        ag.bmm(m, m)
    with pytest.raises(ValueError, match="bmm: .* the same b and m"):
        ag.bmm(Tensor(np.ones((2, 2, 3))), Tensor(np.ones((2, 2, 3))))
    with pytest.raises(ValueError, match=r"tensordot: dimension 1 of a \(size 3\) and dimension 0 of b \(size 2\)"):
        ag.tensordot(m, m, dims=([1], [0]))
    with pytest.raises(ValueError, match="tensordot: got dims=3"):
        ag.tensordot(m, m, dims=3)
    with pytest.raises(IndexError, match="tensordot: dimension 5 of a is out of range"):
        ag.tensordot(m, m, dims=([5], [0]))
    with pytest.raises(TypeError, match="tensordot: got dims='x'"):
        ag.tensordot(m, m, dims="x")
    with pytest.raises(TypeError, match="kron: got other=list"):
        ag.kron(m, [1.0])


def test_bmm_gradient_and_tensordot_pair_of_ints():
    rng = np.random.default_rng(3)
    a, b = _leaf(rng.standard_normal((2, 3, 4))), _leaf(rng.standard_normal((2, 4, 2)))
    assert gradcheck(ag.bmm, (a, b))
    c = ag.tensordot(Tensor(a.data), Tensor(b.data[0]), dims=(2, 0))  # torch also takes a pair of ints
    np.testing.assert_allclose(c.data, np.tensordot(a.data, b.data[0], axes=([2], [0])))


# ---- inv, det, slogdet, solve ---------------------------------------------------------
@given(batch=hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=2), n=st.integers(1, 3),
       seed=st.integers(0, 2 ** 16))
def test_inv_det_solve_over_batches(batch, n, seed):
    rng = np.random.default_rng(seed)
    a = _invertible(rng, batch + (n, n))
    b = rng.standard_normal(batch + (n, 2))
    np.testing.assert_allclose(ag.linalg.inv(Tensor(a)).data @ a, np.broadcast_to(np.eye(n), a.shape), atol=1e-12)
    np.testing.assert_allclose(ag.linalg.det(Tensor(a)).data, np.linalg.det(a))
    if a.size:
        assert gradcheck(ag.linalg.inv, (_leaf(a),))
        assert gradcheck(ag.linalg.det, (_leaf(a),))
        assert gradcheck(ag.linalg.solve, (_leaf(a), _leaf(b)))


def test_det_gradient_of_a_singular_matrix_is_the_adjugate():
    # rank 2: det is 0 but its gradient (the transposed adjugate) is not. finite
    # differences agree; torch 2.13 returns zeros here (its singular-matrix branch).
    a = np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [1.0, 0.0, 1.0]])
    assert gradcheck(ag.linalg.det, (_leaf(a),))
    x = _leaf([[0.0, 0.0], [0.0, 1.0]])
    ag.linalg.det(x).backward()
    np.testing.assert_allclose(x.grad.data, [[1.0, 0.0], [0.0, 0.0]], atol=1e-15)


def test_singular_matrices_raise_linalg_error():
    singular = Tensor(np.array([[1.0, 2.0], [2.0, 4.0]]))
    with pytest.raises(ag.linalg.LinAlgError, match="linalg.inv: got a singular matrix"):
        ag.linalg.inv(singular)
    with pytest.raises(RuntimeError, match="linalg.solve: got a singular matrix"):
        ag.linalg.solve(singular, Tensor(np.ones(2)))
    with pytest.raises(ag.linalg.LinAlgError, match="linalg.cholesky: got a matrix that is not positive-definite"):
        ag.linalg.cholesky(Tensor(-np.eye(2)))
    sign, logabsdet = ag.linalg.slogdet(singular)
    assert sign.item() == 0.0 and logabsdet.item() == -np.inf


@pytest.mark.parametrize("name", ["inv", "det", "slogdet", "cholesky", "eigh"])
def test_square_ops_refuse_other_shapes_and_integers(name):
    op = getattr(ag.linalg, name)
    with pytest.raises(ValueError, match=r"linalg.%s: got a tensor of shape \(2, 3\), expected square" % name):
        op(Tensor(np.ones((2, 3))))
    with pytest.raises(ValueError, match=r"linalg.%s: got a tensor of shape \(3,\), expected matrices" % name):
        op(Tensor(np.ones(3)))
    with pytest.raises(TypeError, match="linalg.%s: got a tensor of dtype int64, expected float32 or float64" % name):
        op(Tensor(np.eye(2, dtype=np.int64)))


def test_solve_shapes_and_errors():
    rng = np.random.default_rng(4)
    a = _invertible(rng, (3, 2, 2))
    assert ag.linalg.solve(Tensor(a), Tensor(np.ones((3, 2)))).shape == (3, 2)  # a batch of vectors
    assert ag.linalg.solve(Tensor(a), Tensor(np.ones(2))).shape == (3, 2)
    assert ag.linalg.solve(Tensor(a[0]), Tensor(np.ones((4, 2, 5)))).shape == (4, 2, 5)
    with pytest.raises(ValueError, match=r"linalg.solve: A of shape \(2, 2\) and B of shape \(3,\) do not fit"):
        ag.linalg.solve(Tensor(a[0]), Tensor(np.ones(3)))
    with pytest.raises(ValueError, match="linalg.solve: the batch dimensions"):
        ag.linalg.solve(Tensor(a), Tensor(np.ones((4, 2, 1))))
    mixed = ag.linalg.solve(Tensor(a.astype(np.float32)), Tensor(np.ones((3, 2))))  # promoted to float64
    assert mixed.dtype == np.float64
    np.testing.assert_allclose(mixed.data, np.linalg.solve(a.astype(np.float32).astype(np.float64),
                                                             np.ones((3, 2, 1)))[..., 0])
    assert gradcheck(lambda x, y: ag.linalg.solve(x, y, left=False), (_leaf(a), _leaf(rng.standard_normal((3, 4, 2)))))


# ---- cholesky, qr, eigh, svd ----------------------------------------------------------
def test_cholesky_factors_and_gradient_of_a_symmetric_input():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 3))
    spd = x @ np.swapaxes(x, -1, -2) + 3 * np.eye(3)
    lower = ag.linalg.cholesky(Tensor(spd)).data
    np.testing.assert_allclose(lower @ np.swapaxes(lower, -1, -2), spd, atol=1e-12)
    assert np.all(np.triu(lower, 1) == 0)
    upper = ag.linalg.cholesky(Tensor(spd), upper=True).data
    np.testing.assert_allclose(upper, np.swapaxes(lower, -1, -2))
    assert gradcheck(lambda a: ag.linalg.cholesky(a @ a.transpose(-1, -2) + Tensor(3 * np.eye(3))), (_leaf(x),))


def test_qr_modes():
    rng = np.random.default_rng(6)
    a = rng.standard_normal((4, 3))
    q, r = ag.linalg.qr(Tensor(a), mode="complete")
    assert q.shape == (4, 4) and r.shape == (4, 3)
    np.testing.assert_allclose(q.data @ r.data, a, atol=1e-12)
    np.testing.assert_allclose(q.data.T @ q.data, np.eye(4), atol=1e-12)
    leaf = _leaf(a)
    q, r = ag.linalg.qr(leaf, mode="complete")
    with pytest.raises(RuntimeError, match="linalg.qr: .* not differentiable when mode='complete'"):
        (q.sum() + r.sum()).backward()
    q, r = ag.linalg.qr(leaf, mode="r")
    assert q.shape == (0,) and r.shape == (3, 3)
    with pytest.raises(RuntimeError, match="linalg.qr: the derivative of mode='r'"):
        r.sum().backward()
    with pytest.raises(ValueError, match="linalg.qr: got mode='full'"):
        ag.linalg.qr(leaf, mode="full")
    # a loss that does not depend on the signs of Q's columns: checked on the raw outputs
    assert gradcheck(lambda x: (ag.linalg.qr(x).Q @ ag.linalg.qr(x).R).sum(), (_leaf(a),))


def test_eigh_reconstruction_and_repeated_eigenvalues():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 3, 3))
    symmetric = x + np.swapaxes(x, -1, -2)
    values, vectors = ag.linalg.eigh(Tensor(symmetric))
    np.testing.assert_allclose((vectors.data * values.data[..., None, :]) @ np.swapaxes(vectors.data, -1, -2),
                               symmetric, atol=1e-12)
    # |V| is sign-invariant, so gradcheck can use the raw eigenvectors
    assert gradcheck(lambda a: ag.linalg.eigh((a + a.transpose(-1, -2)) * 0.5).eigenvectors.abs(), (_leaf(x),))
    identity = _leaf(np.eye(3))
    ag.linalg.eigh(identity).eigenvalues.sum().backward()  # eigenvalues only: finite with ties
    np.testing.assert_allclose(identity.grad.data, np.eye(3), atol=1e-12)
    identity = _leaf(np.eye(3))
    ag.linalg.eigh(identity).eigenvectors.abs().sum().backward()  # vectors of tied values: as torch, not finite
    assert not np.all(np.isfinite(identity.grad.data))


def test_svd_shapes_and_repeated_singular_values():
    rng = np.random.default_rng(8)
    a = rng.standard_normal((2, 4, 3))
    u, s, vh = ag.linalg.svd(Tensor(a))
    assert (u.shape, s.shape, vh.shape) == ((2, 4, 4), (2, 3), (2, 3, 3))
    u, s, vh = ag.linalg.svd(Tensor(a), full_matrices=False)
    assert u.shape == (2, 4, 3)
    np.testing.assert_allclose((u.data * s.data[..., None, :]) @ vh.data, a, atol=1e-12)
    # sign-invariant losses of the vectors, full_matrices or not (wide and tall)
    for shape in ((4, 3), (2, 3)):
        for full in (True, False):
            assert gradcheck(lambda x: ag.linalg.svd(x, full_matrices=full).U[..., :2].abs().sum()
                             + ag.linalg.svd(x, full_matrices=full).Vh[..., :2, :].abs().sum(),
                             (_leaf(rng.standard_normal(shape)),))
    identity = _leaf(np.eye(3))
    ag.linalg.svd(identity).S.sum().backward()  # singular values only: finite with ties (U Vh)
    np.testing.assert_allclose(identity.grad.data, np.eye(3), atol=1e-12)
    identity = _leaf(np.eye(3))
    ag.linalg.svd(identity).U.abs().sum().backward()  # vectors of tied values: as torch, not finite
    assert not np.all(np.isfinite(identity.grad.data))


# ---- norms ----------------------------------------------------------------------------
def test_vector_norm_gradients_at_zero_and_ties():
    zero = _leaf(np.zeros(3))
    ag.linalg.vector_norm(zero).backward()  # torch: 0 where the 2-norm is 0
    np.testing.assert_array_equal(zero.grad.data, np.zeros(3))
    tied = _leaf([3.0, -3.0, 1.0])
    ag.linalg.vector_norm(tied, float("inf")).backward()  # split evenly among the tied maxima
    np.testing.assert_array_equal(tied.grad.data, [0.5, -0.5, 0.0])
    half = _leaf([0.0, 2.0])
    ag.linalg.vector_norm(half, 0.5).backward()  # ord < 1: 0 at a zero element
    assert half.grad.data[0] == 0.0 and np.isfinite(half.grad.data[1])
    assert ag.linalg.vector_norm(Tensor(np.array([1.0, 0.0, 2.0])), 0).item() == 2.0
    assert ag.linalg.vector_norm(Tensor(np.ones((0, 3))), float("inf"), dim=1).shape == (0,)
    with pytest.raises(ValueError, match="linalg.vector_norm: got a tensor of shape \\(0, 3\\), expected no empty"):
        ag.linalg.vector_norm(Tensor(np.ones((0, 3))), float("inf"))
    out = ag.linalg.vector_norm(Tensor(np.ones((2, 3), dtype=np.float32)), dtype=np.float64)
    assert out.dtype == np.float64


def test_norm_dispatch_matches_numpy():
    rng = np.random.default_rng(9)
    a = rng.standard_normal((3, 4))
    for ord in (None, "fro", "nuc", 1, -1, 2, -2, np.inf, -np.inf):
        np.testing.assert_allclose(ag.linalg.norm(Tensor(a), ord).data, np.linalg.norm(a, ord), rtol=1e-12)
    v = a[0]
    for ord in (None, 0.5, 1, 2, 3, np.inf, -np.inf):
        np.testing.assert_allclose(ag.linalg.norm(Tensor(v), ord).data, np.linalg.norm(v, ord), rtol=1e-12)
    np.testing.assert_allclose(ag.linalg.norm(Tensor(a), dim=0).data, np.linalg.norm(a, axis=0))


def test_norm_errors_name_the_op():
    a = Tensor(np.ones((2, 3, 4)))
    with pytest.raises(ValueError, match="linalg.norm: got ord=2 and a tensor of shape"):
        ag.linalg.norm(a, 2)
    with pytest.raises(ValueError, match="linalg.matrix_norm: got ord=3"):
        ag.linalg.matrix_norm(a, 3)
    with pytest.raises(ValueError, match="linalg.matrix_norm: got dim=0"):
        ag.linalg.matrix_norm(a, dim=0)
    with pytest.raises(IndexError, match="linalg.matrix_norm: dim 5 is out of range"):
        ag.linalg.matrix_norm(a, dim=(0, 5))
    with pytest.raises(IndexError, match="linalg.vector_norm: dim 3 is out of range"):
        ag.linalg.vector_norm(a, dim=3)
    with pytest.raises(TypeError, match="linalg.vector_norm: got ord='fro'"):
        ag.linalg.vector_norm(a, "fro")
    with pytest.raises(TypeError, match="linalg.vector_norm: got a tensor of dtype int64"):
        ag.linalg.vector_norm(Tensor(np.ones(3, dtype=np.int64)))
    with pytest.raises(ValueError, match="linalg.norm: got ord='fro' for a vector norm"):
        ag.linalg.norm(a, "fro", dim=1)


# ---- decompositions over hypothesis-drawn batches ----------------------------------------
def _well_separated(rng, shape):
    """Matrices [..., m, n] with singular values 1, 1.8, 2.6, ... (random orthogonal bases)."""
    m, n = shape[-2:]
    u = np.linalg.qr(rng.standard_normal(shape[:-2] + (m, m)))[0]
    v = np.linalg.qr(rng.standard_normal(shape[:-2] + (n, n)))[0]
    s = np.zeros(shape)
    k = min(m, n)
    np.einsum("...ii->...i", s[..., :k, :k])[...] = 1.0 + 0.8 * np.arange(k)
    return u @ s @ np.swapaxes(v, -1, -2)


@given(batch=hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=2),
       rows=st.integers(1, 3), columns=st.integers(1, 3), seed=st.integers(0, 2 ** 16))
def test_decompositions_over_batches(batch, rows, columns, seed):
    """Reconstructions for every batch shape (empty ones too); gradcheck of sign-invariant
    losses where the batch is not empty."""
    rng = np.random.default_rng(seed)
    a = _well_separated(rng, batch + (rows, columns))
    square = _well_separated(rng, batch + (rows, rows))
    symmetric = square + np.swapaxes(square, -1, -2)
    q, r = ag.linalg.qr(Tensor(a))
    np.testing.assert_allclose(q.data @ r.data, a, atol=1e-12)
    u, s, vh = ag.linalg.svd(Tensor(a), full_matrices=False)
    np.testing.assert_allclose((u.data * s.data[..., None, :]) @ vh.data, a, atol=1e-12)
    values, vectors = ag.linalg.eigh(Tensor(symmetric))
    np.testing.assert_allclose((vectors.data * values.data[..., None, :]) @ np.swapaxes(vectors.data, -1, -2),
                               symmetric, atol=1e-12)
    lower = ag.linalg.cholesky(Tensor(square @ np.swapaxes(square, -1, -2) + np.eye(rows)))
    assert lower.shape == batch + (rows, rows)
    if not a.size:
        return
    assert gradcheck(lambda x: ag.linalg.qr(x).R.abs(), (_leaf(a),))
    assert gradcheck(lambda x: ag.linalg.svd(x, full_matrices=False).U.abs(), (_leaf(a),))
    assert gradcheck(lambda x: ag.linalg.eigh((x + x.transpose(-1, -2)) * 0.5).eigenvectors.abs(), (_leaf(square),))
    assert gradcheck(lambda x: ag.linalg.cholesky(x @ x.transpose(-1, -2) + Tensor(np.eye(rows))), (_leaf(square),))
    assert gradcheck(lambda x: ag.linalg.matrix_norm(x, "nuc"), (_leaf(a),))
