"""Op table entries for autograd_core/ops/einsum.py (einsum, outer, dot, inner, bmm,
tensordot, kron) and autograd_core/ops/decompositions.py (the ``linalg_*`` ops behind
autograd_core.linalg); see tests/op_table.py for what an entry says.

The references avoid the routines the ops call: einsum's are written per equation with
elementwise products and sums, det is Leibniz's sum over permutations, cholesky and QR
are the textbook loops (Cholesky-Banachiewicz, Gram-Schmidt), eigenvalues come from the
general (not the symmetric) eigensolver and singular values from the eigenvalues of A^T A.

Decompositions are unique only up to signs (a column of Q with its row of R, an
eigenvector, a pair of singular vectors), and LAPACK's choice is not torch's. Their
entries call the op through a function that fixes the signs (R's diagonal positive; an
eigenvector's or left singular vector's largest entry positive): the result is unique,
differentiable (the signs are constants nearby) and comparable with the reference and
with torch. cholesky and eigh read one triangle of their input, so they are called on
A A^T + 3 I and (A + A^T) / 2, for which the symmetric gradient is the true one.
Samples are well conditioned: diagonally dominant matrices, distinct eigenvalues and
singular values."""
import itertools

import numpy as np

from autograd_core import Tensor
from op_table import Sample, OpEntry, SAME, _away_from_zero


# ---- sample values ------------------------------------------------------------------
def _well_conditioned(rng, *shape):
    """Square matrices [..., n, n] with a dominant diagonal of both signs: invertible,
    condition number below ~10, determinants away from 0."""
    n = shape[-1]
    diagonal = (n + 1.0) * rng.choice([-1.0, 1.0], shape[:-1])
    return rng.uniform(-0.8, 0.8, shape) + diagonal[..., None] * np.eye(n)


def _generic(rng, *shape):
    """Matrices with well-separated singular values (a random orthogonal basis on each
    side, singular values 1.0, 1.8, 2.6, ...) ."""
    m, n = shape[-2:]
    k = min(m, n)
    u = np.linalg.qr(rng.standard_normal(shape[:-2] + (m, m)))[0]
    v = np.linalg.qr(rng.standard_normal(shape[:-2] + (n, n)))[0]
    s = np.zeros(shape)
    np.einsum("...ii->...i", s[..., :k, :k])[...] = 1.0 + 0.8 * np.arange(k)[::-1]
    return u @ s @ np.swapaxes(v, -1, -2)


# ---- gauge fixing, for numpy arrays, our Tensors and torch tensors alike -------------
def _values(x):
    """The array behind x: a numpy array, a Tensor's data, a torch tensor's numpy copy."""
    if isinstance(x, np.ndarray):
        return x
    return x.data if isinstance(x, Tensor) else x.detach().numpy()


def _constant(like, array):
    """array as a constant of like's kind and dtype."""
    if isinstance(like, np.ndarray):
        return array.astype(like.dtype)
    if isinstance(like, Tensor):
        return Tensor(array.astype(like.dtype))
    import torch  # only torch tensors come here: the comparison with torch
    return torch.as_tensor(array, dtype=like.dtype)


def _column_signs(vectors):
    """[..., 1, k]: the sign of each column's entry of largest magnitude."""
    values = _values(vectors)
    rows = np.abs(values).argmax(axis=-2)[..., None, :]
    return np.sign(np.take_along_axis(values, rows, axis=-2))


def _fixed_qr(q, r):
    signs = np.sign(np.diagonal(_values(r), axis1=-2, axis2=-1))  # [..., k]
    fixed_r = r * _constant(r, signs[..., :, None])
    if _values(q).size == 0:  # mode='r'
        return q, fixed_r
    return q * _constant(q, signs[..., None, :]), fixed_r


def _fixed_eigh(values, vectors):
    return values, vectors * _constant(vectors, _column_signs(vectors))


def _fixed_svd(u, s, vh):
    """U's first k columns and Vh's first k rows (the rest are not unique) with fixed signs."""
    k = _values(s).shape[-1]
    u, vh = u[..., :k], vh[..., :k, :]
    signs = _column_signs(u)
    return u * _constant(u, signs), s, vh * _constant(vh, np.swapaxes(signs, -1, -2))


def _transposed(x):
    return x.transpose(-1, -2) if not isinstance(x, np.ndarray) else np.swapaxes(x, -1, -2)


def _spd(a):
    """A A^T + 3 I: symmetric positive-definite (a numpy array, Tensor or torch tensor)."""
    return a @ _transposed(a) + _constant(a, 3.0 * np.eye(a.shape[-1]))


def _symmetric(a):
    return (a + _transposed(a)) * 0.5


# ---- independent references -----------------------------------------------------------
def _einsum_reference(equation, *xs):
    """Each sample equation of the einsum entry written with elementwise numpy."""
    diagonal = lambda x: np.diagonal(x, axis1=-2, axis2=-1)  # noqa: E731
    table = {
        "ij,jk->ik": lambda a, b: (a[:, :, None] * b[None, :, :]).sum(1),
        "ii->i": lambda a: diagonal(a),
        "ii": lambda a: diagonal(a).sum(),
        "bij,bjk->bik": lambda a, b: (a[:, :, :, None] * b[:, None, :, :]).sum(2),
        "...ij,...jk": lambda a, b: (a[..., :, :, None] * b[..., None, :, :]).sum(-2),
        "ij->i": lambda a: a.sum(1),
        "bii->b": lambda a: diagonal(a).sum(-1),
        "ij,ij->ij": lambda a, b: a * b,
        "i,j,k->ijk": lambda a, b, c: a[:, None, None] * b[None, :, None] * c[None, None, :],
        "iij,jk->ik": lambda a, b: (np.moveaxis(np.diagonal(a, axis1=0, axis2=1), -1, 0)[:, :, None]
                                   * b[None, :, :]).sum(1),
        "ba,ab": lambda a, b: (a * b.T).sum(),
        "...ii->...i": lambda a: diagonal(a),
        "iji->j": lambda a: np.diagonal(a, axis1=0, axis2=2).sum(-1),
        "i,i->": lambda a, b: (a * b).sum(),
        "bn,anm,bm->ba": lambda a, b, c: (a[:, None, :, None] * b[None] * c[:, None, None, :]).sum((2, 3)),
        "ij": lambda a: a,
        "ji": lambda a: a.T,
    }
    return table[equation](*xs)


def _einsum_samples(rng):
    v = _away_from_zero
    return [Sample("ij,jk->ik", v(rng, 2, 3), v(rng, 3, 4)),
            Sample("ii->i", v(rng, 3, 3)),
            Sample("ii", v(rng, 3, 3)),
            Sample("bij,bjk->bik", v(rng, 2, 2, 3), v(rng, 2, 3, 2)),
            Sample("...ij,...jk", v(rng, 2, 1, 2, 3), v(rng, 2, 3, 2)),  # ellipsis dims broadcast
            Sample("...ij,...jk", v(rng, 2, 3), v(rng, 3, 2)),  # the ellipsis covers nothing
            Sample("ij->i", v(rng, 2, 3)),  # j summed away: its gradient is broadcast back
            Sample("bii->b", v(rng, 2, 3, 3)),
            Sample("ij,ij->ij", v(rng, 1, 3), v(rng, 2, 3)),  # a size-1 letter broadcasts
            Sample("i,j,k->ijk", v(rng, 2), v(rng, 3), v(rng, 2)),
            Sample("iij,jk->ik", v(rng, 2, 2, 3), v(rng, 3, 2)),
            Sample("ba,ab", v(rng, 2, 3), v(rng, 3, 2)),
            Sample("...ii->...i", v(rng, 2, 3, 3)),
            Sample("iji->j", v(rng, 2, 3, 2)),
            Sample("i,i->", v(rng, 3), v(rng, 3)),
            Sample("bn,anm,bm->ba", v(rng, 2, 3), v(rng, 2, 3, 2), v(rng, 2, 2)),  # a bilinear layer
            Sample("ij", v(rng, 2, 3)),
            Sample("ji", v(rng, 2, 3))]  # implicit output: letters sorted, so a transpose


def _leibniz_det(a):
    """det over the last two axes by the sum over permutations (n <= 4 here)."""
    n = a.shape[-1]
    total = np.zeros(a.shape[:-2])
    for permutation in itertools.permutations(range(n)):
        inversions = sum(1 for i in range(n) for j in range(i + 1, n) if permutation[i] > permutation[j])
        term = np.ones(a.shape[:-2])
        for row, column in enumerate(permutation):
            term = term * a[..., row, column]
        total = total + (-1) ** inversions * term
    return total


def _cholesky_loops(a):
    """Cholesky-Banachiewicz for one matrix or a batch (loops over the entries)."""
    lower = np.zeros_like(a)
    n = a.shape[-1]
    for i in range(n):
        for j in range(i + 1):
            partial = (lower[..., i, :j] * lower[..., j, :j]).sum(-1)
            if i == j:
                lower[..., i, i] = np.sqrt(a[..., i, i] - partial)
            else:
                lower[..., i, j] = (a[..., i, j] - partial) / lower[..., j, j]
    return lower


def _cholesky_reference(a, upper=False):
    lower = _cholesky_loops(_spd(a))
    return np.swapaxes(lower, -1, -2) if upper else lower


def _gram_schmidt(a):
    """Reduced QR of a [..., m, n], m >= n, by modified Gram-Schmidt (R's diagonal positive)."""
    m, n = a.shape[-2:]
    q = np.zeros(a.shape[:-1] + (n,))
    r = np.zeros(a.shape[:-2] + (n, n))
    for j in range(n):
        column = a[..., :, j].copy()
        for i in range(j):
            r[..., i, j] = (q[..., :, i] * column).sum(-1)
            column = column - r[..., i, j][..., None] * q[..., :, i]
        r[..., j, j] = np.sqrt((column * column).sum(-1))
        q[..., :, j] = column / r[..., j, j][..., None]
    return q, r


def _qr_reference(a, mode="reduced"):
    m, n = a.shape[-2:]
    if m >= n:
        q, r = _gram_schmidt(a)
    else:  # the first m columns determine Q; R's other columns are Q^T times A's
        q, _ = _gram_schmidt(a[..., :m])
        r = np.swapaxes(q, -1, -2) @ a
    if mode == "r":
        return np.zeros((0,)), r
    return q, r


def _eigh_reference(a, UPLO="L"):
    """Eigenpairs of the symmetric matrix from the general eigensolver, sorted ascending."""
    symmetric = _symmetric(a)
    values, vectors = np.linalg.eig(symmetric)
    order = np.argsort(values.real, axis=-1)
    values = np.take_along_axis(values.real, order, axis=-1)
    vectors = np.take_along_axis(vectors.real, order[..., None, :], axis=-1)
    vectors = vectors / np.sqrt((vectors * vectors).sum(-2, keepdims=True))
    return _fixed_eigh(values, vectors)


def _svd_reference(a, full_matrices=True):
    """Singular values and vectors from the eigenpairs of A^T A (or A A^T when wider)."""
    m, n = a.shape[-2:]
    wide = m < n
    b = np.swapaxes(a, -1, -2) if wide else a  # tall: [..., p, k], p >= k
    gram = np.swapaxes(b, -1, -2) @ b
    values, vectors = np.linalg.eig(gram)
    order = np.argsort(-values.real, axis=-1)
    s = np.sqrt(np.take_along_axis(values.real, order, axis=-1))
    v = np.take_along_axis(vectors.real, order[..., None, :], axis=-1)
    u = (b @ v) / s[..., None, :]
    if wide:
        u, v = v, u
    return _fixed_svd(u, s, np.swapaxes(v, -1, -2))


def _solve_reference(a, b, left=True):
    inverse = np.linalg.inv(a)
    if not left:
        return b @ inverse
    if b.ndim == 1 or b.shape == a.shape[:-1]:
        return (inverse @ b[..., None])[..., 0]
    return inverse @ b


def _singular_values(a):
    return _svd_reference(a)[1]


def _vector_norm_reference(x, ord=2, dim=None, keepdim=False):
    magnitude = np.abs(x)
    axis = tuple(dim) if isinstance(dim, (tuple, list)) else dim
    if ord == np.inf:
        return magnitude.max(axis=axis, keepdims=keepdim)
    if ord == -np.inf:
        return magnitude.min(axis=axis, keepdims=keepdim)
    if ord == 0:
        return (magnitude != 0).sum(axis=axis, keepdims=keepdim).astype(x.dtype)
    return (magnitude ** ord).sum(axis=axis, keepdims=keepdim) ** (1.0 / ord)


def _matrix_norm_reference(a, ord="fro", dim=(-2, -1), keepdim=False):
    moved = np.moveaxis(a, dim, (-2, -1))
    if ord == "fro":
        result = np.sqrt((moved ** 2).sum((-2, -1)))
    elif ord in ("nuc", 2, -2):
        s = _singular_values(moved)
        result = s.sum(-1) if ord == "nuc" else s.max(-1) if ord == 2 else s.min(-1)
    else:
        sums = np.abs(moved).sum(-2 if ord in (1, -1) else -1)
        result = sums.max(-1) if ord > 0 else sums.min(-1)
    if keepdim:
        for d in sorted(d % a.ndim for d in dim):
            result = np.expand_dims(result, d)
    return result


def _norm_reference(a, ord=None, dim=None, keepdim=False):
    if dim is None and ord is None:
        return np.sqrt((a * a).sum())
    if isinstance(dim, int) or (dim is None and a.ndim == 1):
        return _vector_norm_reference(a, 2 if ord is None else ord, dim, keepdim)
    return _matrix_norm_reference(a, "fro" if ord is None else ord, (-2, -1) if dim is None else dim, keepdim)


def _torch_linalg(name, fix=None, prepare=None):
    """The torch comparison for linalg_<name>: torch.linalg.<name>, its input prepared
    and its outputs sign-fixed as the entry's call does."""
    def call(torch, a, *args, **kwargs):
        result = getattr(torch.linalg, name)(prepare(a) if prepare else a, *args, **kwargs)
        return fix(*result) if fix else result
    return call


def _call_fixed(fix, prepare=None):
    def call(op, a, *args, **kwargs):
        result = op(prepare(a) if prepare else a, *args, **kwargs)
        return fix(*result)
    return call


TABLE = {
    # -- products (autograd_core/ops/einsum.py)
    "einsum": OpEntry(_einsum_samples, _einsum_reference, torch=SAME),
    "outer": OpEntry(lambda rng: [Sample(_away_from_zero(rng, 3), _away_from_zero(rng, 2))],
                     lambda a, b: a[:, None] * b[None, :], torch=SAME),
    "dot": OpEntry(lambda rng: [Sample(_away_from_zero(rng, 4), _away_from_zero(rng, 4))],
                   lambda a, b: (a * b).sum(), torch=SAME),
    "inner": OpEntry(lambda rng: [Sample(_away_from_zero(rng, 2, 3), _away_from_zero(rng, 4, 3)),
                                  Sample(_away_from_zero(rng, 3), _away_from_zero(rng, 3)),
                                  Sample(_away_from_zero(rng, 2, 1, 3), _away_from_zero(rng, 3)),
                                  Sample(np.array(1.5), _away_from_zero(rng, 2, 3))],
                     lambda a, b: a * b if a.ndim == 0 else (a[(...,) + (None,) * (b.ndim - 1) + (slice(None),)]
                                                             * b).sum(-1), torch=SAME),
    "bmm": OpEntry(lambda rng: [Sample(_away_from_zero(rng, 2, 3, 4), _away_from_zero(rng, 2, 4, 2))],
                   lambda a, b: (a[:, :, :, None] * b[:, None, :, :]).sum(2), torch=SAME),
    "tensordot": OpEntry(lambda rng: [Sample(_away_from_zero(rng, 2, 3, 4), _away_from_zero(rng, 3, 4, 2)),
                                      Sample(_away_from_zero(rng, 2, 3), _away_from_zero(rng, 3, 2), dims=1),
                                      Sample(_away_from_zero(rng, 2, 3, 2), _away_from_zero(rng, 3, 2, 2),
                                             dims=([1, 0], [0, 2])),
                                      Sample(_away_from_zero(rng, 2), _away_from_zero(rng, 3), dims=0)],
                         lambda a, b, dims=2: np.tensordot(a, b, axes=dims), torch=SAME),
    "kron": OpEntry(lambda rng: [Sample(_away_from_zero(rng, 2, 3), _away_from_zero(rng, 2, 2)),
                                 Sample(_away_from_zero(rng, 2), _away_from_zero(rng, 3, 2)),
                                 Sample(np.array(2.0), _away_from_zero(rng, 2))],
                    lambda a, b: np.kron(a, b), torch=SAME),
    # -- autograd_core.linalg (autograd_core/ops/decompositions.py)
    "linalg_inv": OpEntry(lambda rng: [Sample(_well_conditioned(rng, 3, 3)), Sample(_well_conditioned(rng, 2, 2, 2))],
                          lambda a: np.linalg.solve(a, np.broadcast_to(np.eye(a.shape[-1]), a.shape)),
                          torch=_torch_linalg("inv")),
    "linalg_det": OpEntry(lambda rng: [Sample(_well_conditioned(rng, 3, 3)), Sample(_well_conditioned(rng, 2, 2, 2)),
                                       Sample(_well_conditioned(rng, 1, 1))],
                          _leibniz_det, torch=_torch_linalg("det")),
    "linalg_slogdet": OpEntry(lambda rng: [Sample(_well_conditioned(rng, 3, 3)),
                                           Sample(_well_conditioned(rng, 2, 2, 2))],
                              lambda a: (np.sign(_leibniz_det(a)), np.log(np.abs(_leibniz_det(a)))),
                              call=lambda op, a: tuple(op(a)), torch=lambda torch, a: tuple(torch.linalg.slogdet(a))),
    "linalg_solve": OpEntry(lambda rng: [Sample(_well_conditioned(rng, 3, 3), _away_from_zero(rng, 3, 2)),
                                         Sample(_well_conditioned(rng, 3, 3), _away_from_zero(rng, 3)),
                                         Sample(_well_conditioned(rng, 2, 3, 3), _away_from_zero(rng, 2, 3)),
                                         Sample(_well_conditioned(rng, 2, 1, 2, 2), _away_from_zero(rng, 3, 2, 1)),
                                         Sample(_well_conditioned(rng, 2, 2), _away_from_zero(rng, 3, 2), left=False)],
                            _solve_reference,
                            torch=_torch_linalg("solve")),
    "linalg_cholesky": OpEntry(lambda rng: [Sample(_away_from_zero(rng, 3, 3)), Sample(_away_from_zero(rng, 2, 3, 3)),
                                            Sample(_away_from_zero(rng, 3, 3), upper=True)],
                               _cholesky_reference, call=lambda op, a, **kwargs: op(_spd(a), **kwargs),
                               torch=_torch_linalg("cholesky", prepare=_spd)),
    "linalg_qr": OpEntry(lambda rng: [Sample(_generic(rng, 4, 3)), Sample(_generic(rng, 3, 3)),
                                      Sample(_generic(rng, 2, 4)), Sample(_generic(rng, 2, 3, 2)),
                                      Sample(_generic(rng, 2, 3), mode="complete")],
                         _qr_reference, call=_call_fixed(_fixed_qr), torch=_torch_linalg("qr", _fixed_qr)),
    "linalg_eigh": OpEntry(lambda rng: [Sample(_generic(rng, 3, 3)), Sample(_generic(rng, 2, 3, 3)),
                                        Sample(_generic(rng, 3, 3), UPLO="U")],
                           _eigh_reference, call=_call_fixed(_fixed_eigh, _symmetric),
                           torch=_torch_linalg("eigh", _fixed_eigh, _symmetric)),
    "linalg_svd": OpEntry(lambda rng: [Sample(_generic(rng, 4, 3), full_matrices=False), Sample(_generic(rng, 3, 3)),
                                       Sample(_generic(rng, 2, 4), full_matrices=False),
                                       Sample(_generic(rng, 2, 4, 3)), Sample(_generic(rng, 2, 4))],
                          _svd_reference, call=_call_fixed(_fixed_svd), torch=_torch_linalg("svd", _fixed_svd)),
    "linalg_svdvals": OpEntry(lambda rng: [Sample(_generic(rng, 4, 3)), Sample(_generic(rng, 2, 2, 3))],
                              _singular_values, torch=_torch_linalg("svdvals")),
    "linalg_vector_norm": OpEntry(lambda rng: [Sample(_away_from_zero(rng, 2, 3)),
                                               Sample(_away_from_zero(rng, 2, 3, 2), 1, dim=(0, 2)),
                                               Sample(_away_from_zero(rng, 2, 3), 3, dim=1, keepdim=True),
                                               Sample(_away_from_zero(rng, 2, 3), 0.5, dim=-1),
                                               Sample(_away_from_zero(rng, 4) * np.arange(1, 5), np.inf),
                                               Sample(_away_from_zero(rng, 4) * np.arange(1, 5), -np.inf, 0),
                                               Sample(_away_from_zero(rng, 3), 0),
                                               Sample(_away_from_zero(rng, 2, 3), -2, [0, 1]),
                                               Sample(np.array(-1.5), 2)],
                                  _vector_norm_reference, torch=_torch_linalg("vector_norm")),
    "linalg_matrix_norm": OpEntry(lambda rng: [Sample(_generic(rng, 3, 4)), Sample(_generic(rng, 2, 3, 2), "nuc"),
                                               Sample(_generic(rng, 3, 2), 2), Sample(_generic(rng, 2, 3, 3), -2),
                                               Sample(_distinct_sums(rng), 1), Sample(_distinct_sums(rng), -1),
                                               Sample(_distinct_sums(rng), np.inf, dim=(1, 0)),
                                               Sample(_distinct_sums(rng), -np.inf),
                                               Sample(_generic(rng, 2, 3, 2), "fro", dim=(0, 2), keepdim=True)],
                                  _matrix_norm_reference, torch=_torch_linalg("matrix_norm")),
    "linalg_norm": OpEntry(lambda rng: [Sample(_away_from_zero(rng, 2, 3, 2)), Sample(_away_from_zero(rng, 4), 3),
                                        Sample(_generic(rng, 3, 3), "nuc"), Sample(_away_from_zero(rng, 2, 3), dim=1),
                                        Sample(_generic(rng, 2, 3, 3), 2, dim=(1, 2), keepdim=True)],
                           _norm_reference, torch=_torch_linalg("norm")),
}


def _distinct_sums(rng):
    """[3, 3] with row sums and column sums of |A| far apart (no ties for max and min)."""
    return _away_from_zero(rng, 3, 3) * np.array([[1.0, 2.0, 3.5], [1.3, 2.6, 4.6], [1.7, 3.1, 5.2]])


# torch's top-level names for three linalg ops: the same functions, the same entries
TABLE["det"], TABLE["inverse"], TABLE["slogdet"] = TABLE["linalg_det"], TABLE["linalg_inv"], TABLE["linalg_slogdet"]
