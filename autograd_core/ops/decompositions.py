"""torch.linalg's matrix functions and decompositions: inv, det, slogdet, solve,
cholesky, qr, eigh, svd, svdvals, and the norms (vector_norm, matrix_norm, norm).

They are registered as ``linalg_<name>`` (aten's names for them) and reached as
``autograd_core.linalg.<name>`` (autograd_core/linalg.py), as in torch. Every one takes
batches of matrices [..., m, n] and float tensors only; numpy's LAPACK computes the
forward. The backward formulas are those torch uses (tools/autograd/derivatives.yaml,
FunctionsManual.cpp), written here with numpy:

* an eigenvector or singular-vector gradient divides by the differences of the
  eigenvalues (of the squared singular values), so repeated values give inf/nan as in
  torch; a loss that does not use the vectors (an all-zero gradient for them, which the
  engine passes for an unused output) takes the formula's shorter branch, finite there
  (torch decides by whether the output is in the graph: 0 * U.sum() + S.sum() is nan
  there at repeated values and finite here);
* cholesky and eigh read one triangle of their input and return the gradient of a
  symmetric input (torch's convention): check them on (A + A^T) / 2 or A A^T + c I.

A singular or non-positive-definite input raises ``LinAlgError``, a RuntimeError as
torch's (and a numpy.linalg.LinAlgError, for code that catches numpy's).

Higher-order gradients: every op has a ``differentiable_backward`` that recomputes the
factorization as a Tensor (the op itself, so its own derivative is this formula again)
and runs the same gradient formula on Tensors. The formulas that need more than
operators (triangles, solves, concatenation) are written once against a namespace,
``_NUMPY`` for the first-order path and ``_TENSORS`` for create_graph. det's second
derivative uses det(A) A^-T, so it needs an invertible A (the first derivative does not)."""
import collections

import numpy as np

from ..function import Function
from ..registry import register
from ..tensor import Tensor
from ._util import is_int, unbroadcast
from .elementwise import cast
from .indexing import tril, triu
from .shape import Permute, Reshape, concat


class LinAlgError(np.linalg.LinAlgError, RuntimeError):
    """A matrix the operation cannot handle (singular for inv/solve, not positive-definite
    for cholesky); a RuntimeError, as torch.linalg.LinAlgError is."""


SlogdetResult = collections.namedtuple("slogdet", ("sign", "logabsdet"))
QRResult = collections.namedtuple("qr", ("Q", "R"))
EighResult = collections.namedtuple("eigh", ("eigenvalues", "eigenvectors"))
SVDResult = collections.namedtuple("svd", ("U", "S", "Vh"))
for _result in (SlogdetResult, QRResult, EighResult, SVDResult):
    _result.__doc__ = "linalg.%s's result: a tuple with named fields %s, as torch.return_types.linalg_%s." % (
        _result.__name__, _result._fields, _result.__name__)


# ---- shared checks and helpers --------------------------------------------------------
def _matrices(op, a, square=False):
    """Refuse a non-Tensor, a non-float tensor, fewer than two dimensions or (square)
    matrices that are not square, naming op."""
    if not isinstance(a, Tensor):
        raise TypeError("%s: got %s, expected a Tensor" % (op, type(a).__name__))
    if a.dtype.kind != "f":
        raise TypeError("%s: got a tensor of dtype %s, expected float32 or float64" % (op, a.dtype))
    if a.ndim < 2:
        raise ValueError("%s: got a tensor of shape %s, expected matrices [..., m, n] (at least 2 dimensions)"
                         % (op, a.shape))
    if square and a.shape[-1] != a.shape[-2]:
        raise ValueError("%s: got a tensor of shape %s, expected square matrices [..., n, n]" % (op, a.shape))


def _t(x):
    """The matrix transpose of a batch [..., m, n] -> [..., n, m]."""
    return np.swapaxes(x, -1, -2)


def _diag_embed(v):
    """[..., n] -> [..., n, n] with v on the diagonal."""
    out = np.zeros(v.shape + v.shape[-1:], dtype=v.dtype)
    np.einsum("...ii->...i", out)[...] = v
    return out


def _lapack(op, what, function, *args, **kwargs):
    try:
        return function(*args, **kwargs)
    except np.linalg.LinAlgError as error:
        raise LinAlgError("%s: %s (numpy: %s)" % (op, what, error)) from None


def _is_zero(grad):
    """An output the loss did not use: the engine passes zeros for it. torch leaves that
    gradient undefined and skips its terms, which is what keeps a loss of the singular
    values alone finite when two of them are equal."""
    return not grad.any()


class _NUMPY:
    """The array functions the shared gradient formulas use, on numpy arrays (first order)."""
    tril = staticmethod(np.tril)
    triu = staticmethod(np.triu)
    solve = staticmethod(np.linalg.solve)

    @staticmethod
    def cat(parts, axis):
        return np.concatenate(parts, axis=axis)

    @staticmethod
    def is_zero(grad):
        return _is_zero(grad)

    @staticmethod
    def diag_embed(v):
        return _diag_embed(v)

    @staticmethod
    def differences(values):
        return _differences(values)

    @staticmethod
    def with_diagonal(x, v):
        """x with its diagonal replaced by v (in place)."""
        np.einsum("...ii->...i", x)[...] = v
        return x


class _TENSORS:
    """The same functions as ops on Tensors (create_graph: the formula is recorded)."""
    tril = staticmethod(tril)
    triu = staticmethod(triu)

    @staticmethod
    def solve(a, b):
        return Solve.apply(a, b)

    @staticmethod
    def cat(parts, axis):
        return concat(parts, axis)

    @staticmethod
    def is_zero(grad):
        return _is_zero(grad.data)

    @staticmethod
    def diag_embed(v):
        """[..., n] -> [..., n, n] with v on the diagonal: v times the identity."""
        return v[..., None, :] * Tensor(np.eye(v.shape[-1], dtype=v.dtype))

    @staticmethod
    def differences(values):
        """As _differences: values[j] - values[i], ones on the diagonal."""
        return values[..., None, :] - values[..., :, None] + Tensor(np.eye(values.shape[-1], dtype=values.dtype))

    @staticmethod
    def with_diagonal(x, v):
        off_diagonal = Tensor(1 - np.eye(x.shape[-1], dtype=x.dtype))
        return x * off_diagonal + _TENSORS.diag_embed(v)


def _graph_t(x):
    """The matrix transpose of a Tensor batch [..., m, n] -> [..., n, m] (an op)."""
    return x.swapaxes(-1, -2)


def _graph_inverse(op, what, a):
    """Inv.apply(a) for a gradient formula of op: a singular a raises naming op."""
    try:
        return Inv.apply(a)
    except LinAlgError as error:
        raise LinAlgError("%s: %s (%s)" % (op, what, error)) from None


# ---- inv, det, slogdet, solve ---------------------------------------------------------
class Inv(Function):
    """A^-1 for A [..., n, n]. Gradient: -A^-T g A^-T."""
    name = "linalg.inv"

    @staticmethod
    def forward(ctx, a):
        inverse = _lapack("linalg.inv", "got a singular matrix, expected an invertible one", np.linalg.inv, a)
        ctx.save_for_backward(inverse)
        return inverse

    @staticmethod
    def backward(ctx, grad):
        (inverse,) = ctx.saved_tensors
        inverse_t = _t(inverse)
        return -(inverse_t @ grad @ inverse_t)

    @staticmethod
    def differentiable_backward(ctx, grad):
        inverse_t = _graph_t(Inv.apply(ctx.inputs[0]))
        return -(inverse_t @ grad @ inverse_t)


@register("linalg_inv", methods=("inverse",))
def linalg_inv(A):
    """torch.linalg.inv: the inverse of each matrix of A [..., n, n] -> [..., n, n];
    a singular matrix raises LinAlgError."""
    _matrices("linalg.inv", A, square=True)
    return Inv.apply(A)


register("inverse")(linalg_inv)  # torch.inverse, the same function


def _cofactor_transpose(a):
    """d det(A) / dA = adj(A)^T for every A, singular ones too: with A = U S V^T it is
    det(U) det(V) U diag(prod_{j != i} s_j) V^T, the products taken without dividing."""
    u, s, vh = np.linalg.svd(a)
    n = s.shape[-1]
    ones = np.ones(s.shape[:-1] + (1,), dtype=s.dtype)
    before = np.cumprod(np.concatenate([ones, s[..., :-1]], axis=-1), axis=-1)
    after = np.cumprod(np.concatenate([ones, s[..., :0:-1]], axis=-1), axis=-1)[..., ::-1]
    others = before * after if n else s
    sign = np.linalg.det(u) * np.linalg.det(vh)
    return sign[..., None, None] * (u * others[..., None, :]) @ vh


class Det(Function):
    """det(A) for A [..., n, n] -> [...]. Gradient: g * adj(A)^T (finite for singular A)."""
    name = "linalg.det"

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return np.linalg.det(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        if a.shape[-1] == 0:
            return np.zeros_like(a)
        return np.asarray(grad)[..., None, None] * _cofactor_transpose(a)

    @staticmethod
    def differentiable_backward(ctx, grad):
        # adj(A)^T = det(A) A^-T: both ops, so this differentiates again (torch's form for
        # an invertible A; the cofactors of a singular one have no such product)
        (a,) = ctx.inputs
        if a.shape[-1] == 0:
            return a * 0.0
        inverse = _graph_inverse("linalg.det", "the second derivative of det needs an invertible matrix, got a "
                                 "singular one", a)
        return (grad * Det.apply(a))[..., None, None] * _graph_t(inverse)


@register("linalg_det", methods=("det",))
def linalg_det(A):
    """torch.linalg.det: the determinant of each matrix, A [..., n, n] -> [...]."""
    _matrices("linalg.det", A, square=True)
    return Det.apply(A)


register("det")(linalg_det)  # torch.det, the same function


class Slogdet(Function):
    """(sign, log|det A|) for A [..., n, n]; the gradient of log|det A| is A^-T (the
    sign has none)."""
    name = "linalg.slogdet"

    @staticmethod
    def forward(ctx, a):
        sign, logabsdet = np.linalg.slogdet(a)
        ctx.save_for_backward(a)
        return sign.astype(a.dtype, copy=False), logabsdet.astype(a.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad_sign, grad_logabsdet):
        (a,) = ctx.saved_tensors
        inverse = _lapack("linalg.slogdet", "the gradient of log|det A| needs an invertible A, got a singular one",
                          np.linalg.inv, a)
        return np.asarray(grad_logabsdet)[..., None, None] * _t(inverse)

    @staticmethod
    def differentiable_backward(ctx, grad_sign, grad_logabsdet):
        (a,) = ctx.inputs
        inverse = _graph_inverse("linalg.slogdet", "the gradient of log|det A| needs an invertible A, got a "
                                 "singular one", a)
        return grad_logabsdet[..., None, None] * _graph_t(inverse)


@register("linalg_slogdet", methods=("slogdet",))
def linalg_slogdet(A):
    """torch.linalg.slogdet: (sign, logabsdet), each [...] for A [..., n, n], with
    det(A) = sign * exp(logabsdet); a singular matrix gives sign 0 and logabsdet -inf.
    The sign carries no gradient."""
    _matrices("linalg.slogdet", A, square=True)
    sign, logabsdet = Slogdet.apply(A)
    return SlogdetResult(Tensor(sign.data), logabsdet)


register("slogdet")(linalg_slogdet)  # torch.slogdet, the same function


class Solve(Function):
    """X with A X = B, A [..., n, n] and B [..., n, k] (batch dimensions broadcast).
    Gradients: gB = A^-T gX, gA = -gB X^T, each summed back to its input's shape."""
    name = "linalg.solve"

    @staticmethod
    def forward(ctx, a, b):
        x = _lapack("linalg.solve", "got a singular matrix A, expected an invertible one", np.linalg.solve, a, b)
        ctx.save_for_backward(a, x)
        ctx.shapes = a.shape, b.shape
        return x

    @staticmethod
    def backward(ctx, grad):
        a, x = ctx.saved_tensors
        shape_a, shape_b = ctx.shapes
        grad_b = np.linalg.solve(_t(a), grad)
        grad_a = unbroadcast(-(grad_b @ _t(x)), shape_a) if ctx.needs_input_grad[0] else None
        return grad_a, unbroadcast(grad_b, shape_b) if ctx.needs_input_grad[1] else None

    @staticmethod
    def differentiable_backward(ctx, grad):
        a, b = ctx.inputs
        grad_b = Solve.apply(_graph_t(a), grad)
        grad_a = None
        if ctx.needs_input_grad[0]:
            grad_a = unbroadcast(-(grad_b @ _graph_t(Solve.apply(a, b))), a.shape)
        return grad_a, unbroadcast(grad_b, b.shape) if ctx.needs_input_grad[1] else None


@register("linalg_solve")
def linalg_solve(A, B, *, left=True):
    """torch.linalg.solve: X with A X = B (left=True) or X A = B (left=False).
    A [..., n, n]; B [..., n, k], or a vector [n] / [..., n] (when B.shape == A.shape[:-1]);
    batch dimensions broadcast. X has B's form. A singular A raises LinAlgError."""
    op = "linalg.solve"
    _matrices(op, A, square=True)
    if not isinstance(B, Tensor):
        raise TypeError("%s: got B of type %s, expected a Tensor" % (op, type(B).__name__))
    if B.dtype.kind != "f":
        raise TypeError("%s: got B of dtype %s, expected float32 or float64" % (op, B.dtype))
    if A.dtype != B.dtype:  # torch refuses mixed dtypes; promoting (float32 with float64) is as safe
        dtype = np.promote_types(A.dtype, B.dtype)
        A, B = cast(A, dtype), cast(B, dtype)
    n = A.shape[-1]
    vector = B.ndim == 1 or (B.ndim == A.ndim - 1 and B.shape == A.shape[:-1])
    if not left:
        if vector:
            raise ValueError("%s: left=False needs B as matrices [..., k, n], got shape %s" % (op, B.shape))
        return Permute.apply(linalg_solve(Permute.apply(A, _swap_last(A.ndim)), Permute.apply(B, _swap_last(B.ndim))),
                             _swap_last(max(A.ndim, B.ndim)))
    rows = B.shape[-1] if vector else (B.shape[-2] if B.ndim >= 2 else None)
    if rows != n:
        raise ValueError("%s: A of shape %s and B of shape %s do not fit A X = B, expected B [..., %d, k] or "
                         "[..., %d]" % (op, A.shape, B.shape, n, n))
    b = Reshape.apply(B, B.shape + (1,)) if vector else B
    try:
        np.broadcast_shapes(A.shape[:-2], b.shape[:-2])
    except ValueError:
        raise ValueError("%s: the batch dimensions of A %s and B %s cannot be broadcast" % (op, A.shape, B.shape)) \
            from None
    x = Solve.apply(A, b)
    return Reshape.apply(x, x.shape[:-1]) if vector else x


def _swap_last(ndim):
    return tuple(range(ndim - 2)) + (ndim - 1, ndim - 2)


# ---- cholesky, qr ---------------------------------------------------------------------
class Cholesky(Function):
    """L with A = L L^T (lower), or U = L^T (upper). Gradient (for a symmetric A):
    L^-T sym(Phi(L^T gL)) L^-1, where Phi keeps the lower triangle and halves the diagonal."""
    name = "linalg.cholesky"

    @staticmethod
    def forward(ctx, a, upper):
        lower = _lapack("linalg.cholesky", "got a matrix that is not positive-definite, expected a symmetric "
                        "positive-definite one", np.linalg.cholesky, a)
        ctx.save_for_backward(lower)
        ctx.upper = upper
        return _t(lower).copy() if upper else lower

    @staticmethod
    def backward(ctx, grad, _=None):
        (lower,) = ctx.saved_tensors
        if ctx.upper:
            grad = _t(grad)
        return _cholesky_backward(_NUMPY, grad, lower, np.linalg.inv(lower)), None

    @staticmethod
    def differentiable_backward(ctx, grad):
        a, upper = ctx.inputs
        lower = Cholesky.apply(a, False)
        if upper:
            grad = _graph_t(grad)
        return _cholesky_backward(_TENSORS, grad, lower, Inv.apply(lower)), None


def _cholesky_backward(xp, grad, lower, inverse):
    """L^-T sym(Phi(L^T gL)) L^-1 (see Cholesky), in namespace xp (_NUMPY or _TENSORS)."""
    product = xp.tril(lower.swapaxes(-1, -2) @ grad)
    symmetric = 0.5 * (product + xp.tril(product, -1).swapaxes(-1, -2))
    return inverse.swapaxes(-1, -2) @ symmetric @ inverse


@register("linalg_cholesky")
def linalg_cholesky(A, *, upper=False):
    """torch.linalg.cholesky: L [..., n, n] lower-triangular with A = L L^T for A
    [..., n, n] symmetric positive-definite (only its lower triangle is read), or the
    upper factor L^T when upper=True. A matrix that is not positive-definite raises
    LinAlgError."""
    _matrices("linalg.cholesky", A, square=True)
    return Cholesky.apply(A, bool(upper))


def _qr_backward(xp, grad_q, grad_r, q, r):
    """The gradient of A = QR for A [..., m, n] with m >= n (Q [..., m, n], R [..., n, n]):
    (gQ + Q copyltu(M)) R^-T with M = triu(gR R^T - Q^T gQ) mirrored to a symmetric matrix.
    xp: _NUMPY or _TENSORS."""
    m = xp.triu(grad_r @ r.swapaxes(-1, -2) - q.swapaxes(-1, -2) @ grad_q)
    symmetric = m + xp.triu(m, 1).swapaxes(-1, -2)
    b = grad_q + q @ symmetric
    # b R^-T, R triangular and invertible for full rank A
    return xp.solve(r, b.swapaxes(-1, -2)).swapaxes(-1, -2)


def _qr_gradient(xp, grad_q, grad_r, q, r, mode):
    """The gradient of linalg.qr for every shape and mode, in namespace xp."""
    m, n = q.shape[-2], r.shape[-1]
    if mode == "complete" and m > n:
        raise RuntimeError("linalg.qr: the QR decomposition is not differentiable when mode='complete' and "
                           "the matrices have more rows than columns (got %d x %d)" % (m, n))
    if m >= n:
        return _qr_backward(xp, grad_q, grad_r, q, r)
    # A = [X | Y] with X square: X = Q U and Y = Q V for R = [U | V]
    u, grad_u, grad_v = r[..., :m], grad_r[..., :m], grad_r[..., m:]
    y = q @ r[..., m:]
    grad_x = _qr_backward(xp, grad_q + y @ grad_v.swapaxes(-1, -2), grad_u, q, u)
    return xp.cat([grad_x, q @ grad_v], -1)


class QR(Function):
    """A = QR for A [..., m, n]; mode 'reduced' (Q [..., m, k], R [..., k, n], k = min(m, n)),
    'complete' (Q [..., m, m], R [..., m, n]) or 'r' (R only; Q empty)."""
    name = "linalg.qr"

    @staticmethod
    def forward(ctx, a, mode):
        if mode == "r":
            r = np.linalg.qr(a, mode="r")
            ctx.mode = mode
            return np.zeros((0,), dtype=a.dtype), r
        q, r = np.linalg.qr(a, mode=mode)
        ctx.save_for_backward(q, r)
        ctx.mode = mode
        return q, r

    @staticmethod
    def backward(ctx, grad_q, grad_r):
        if ctx.mode == "r":
            raise RuntimeError("linalg.qr: the derivative of mode='r' depends on Q, which it does not compute; "
                               "use mode='reduced'")
        q, r = ctx.saved_tensors
        return _qr_gradient(_NUMPY, grad_q, grad_r, q, r, ctx.mode), None

    @staticmethod
    def differentiable_backward(ctx, grad_q, grad_r):
        a, mode = ctx.inputs
        if mode == "r":
            return QR.backward(ctx, grad_q.data, grad_r.data)  # raises: see backward
        q, r = QR.apply(a, mode)
        return _qr_gradient(_TENSORS, grad_q, grad_r, q, r, mode), None


@register("linalg_qr")
def linalg_qr(A, mode="reduced"):
    """torch.linalg.qr: (Q, R) with A = Q R, Q with orthonormal columns and R upper
    triangular, for A [..., m, n]; see QR for the modes' shapes. The gradient exists for
    mode='reduced', and for 'complete' when m <= n."""
    _matrices("linalg.qr", A)
    if mode not in ("reduced", "complete", "r"):
        raise ValueError("linalg.qr: got mode=%r, expected 'reduced', 'complete' or 'r'" % (mode,))
    return QRResult(*QR.apply(A, mode))


# ---- eigh, svd ------------------------------------------------------------------------
def _differences(values):
    """E[..., i, j] = values[j] - values[i], with ones on the diagonal (divided by there
    only where the formula then overwrites the result)."""
    e = values[..., None, :] - values[..., :, None]
    np.einsum("...ii->...i", e)[...] = 1
    return e


class Eigh(Function):
    """Eigenvalues (ascending) and orthonormal eigenvectors of symmetric A [..., n, n].
    Gradient: V (diag(gL) + sym((V^T gV) / E)) V^T, E[i, j] = L[j] - L[i]: symmetric, as
    torch's."""
    name = "linalg.eigh"

    @staticmethod
    def forward(ctx, a, uplo):
        values, vectors = np.linalg.eigh(a, UPLO=uplo)
        ctx.save_for_backward(values, vectors)
        return values, vectors

    @staticmethod
    def backward(ctx, grad_values, grad_vectors):
        values, vectors = ctx.saved_tensors
        return _eigh_backward(_NUMPY, grad_values, grad_vectors, values, vectors), None

    @staticmethod
    def differentiable_backward(ctx, grad_values, grad_vectors):
        a, uplo = ctx.inputs
        values, vectors = Eigh.apply(a, uplo)
        return _eigh_backward(_TENSORS, grad_values, grad_vectors, values, vectors), None


def _eigh_backward(xp, grad_values, grad_vectors, values, vectors):
    """V (diag(gL) + sym((V^T gV) / E)) V^T (see Eigh), in namespace xp."""
    vectors_t = vectors.swapaxes(-1, -2)
    if xp.is_zero(grad_vectors):
        inner = xp.diag_embed(grad_values)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):  # repeated eigenvalues: inf/nan, as torch
            inner = (vectors_t @ grad_vectors) / xp.differences(values)
        # the symmetric part, since A is symmetric (torch's: the skew part of V^T gV over E)
        inner = xp.with_diagonal(0.5 * (inner + inner.swapaxes(-1, -2)), grad_values)
    return vectors @ inner @ vectors_t


@register("linalg_eigh")
def linalg_eigh(A, UPLO="L"):
    """torch.linalg.eigh: (eigenvalues [..., n] ascending, eigenvectors [..., n, n] as
    columns) of symmetric A [..., n, n], reading its lower (UPLO='L') or upper ('U')
    triangle. Eigenvectors are unique up to sign; their gradient needs distinct
    eigenvalues (repeated ones give inf/nan, as in torch)."""
    _matrices("linalg.eigh", A, square=True)
    if UPLO not in ("L", "U"):
        raise ValueError("linalg.eigh: got UPLO=%r, expected 'L' or 'U'" % (UPLO,))
    return EighResult(*Eigh.apply(A, UPLO))


def _svd_backward(xp, grad_u, grad_s, grad_vh, u, s, vh):
    """The gradient of A = U diag(S) Vh (thin: k = min(m, n) columns), torch's formula;
    None for an unused output. xp: _NUMPY or _TENSORS."""
    m, n = u.shape[-2], vh.shape[-1]
    if grad_u is None and grad_vh is None:
        return (u * grad_s[..., None, :]) @ vh
    s_row, s_col = s[..., None, :], s[..., :, None]
    with np.errstate(divide="ignore", invalid="ignore"):  # repeated singular values: inf/nan, as torch
        e = xp.differences(s * s)
        inner = 0
        if grad_u is not None:
            skew_u = u.swapaxes(-1, -2) @ grad_u
            inner = (skew_u - skew_u.swapaxes(-1, -2)) * s_row
        if grad_vh is not None:
            skew_v = vh @ grad_vh.swapaxes(-1, -2)
            inner = inner + s_col * (skew_v - skew_v.swapaxes(-1, -2))
        inner = inner / e
        if grad_s is not None:
            inner = inner + xp.diag_embed(grad_s)
        if m > n and grad_u is not None:
            scaled = grad_u / s_row
            return (u @ inner + scaled - u @ (u.swapaxes(-1, -2) @ scaled)) @ vh
        if m < n and grad_vh is not None:
            scaled = grad_vh / s_col
            return u @ (inner @ vh + scaled - (scaled @ vh.swapaxes(-1, -2)) @ vh)
        return u @ inner @ vh


class SVD(Function):
    """A = U diag(S) Vh for A [..., m, n]: U [..., m, m or k], S [..., k], Vh [..., n or k, n]."""
    name = "linalg.svd"

    @staticmethod
    def forward(ctx, a, full_matrices):
        u, s, vh = np.linalg.svd(a, full_matrices=full_matrices)
        ctx.save_for_backward(u, s, vh)
        return u, s, vh

    @staticmethod
    def backward(ctx, grad_u, grad_s, grad_vh):
        u, s, vh = ctx.saved_tensors
        k = s.shape[-1]
        # with full_matrices the extra columns of U and rows of Vh are not unique: torch
        # takes the gradient of the first k only, and so does this
        u, vh, grad_u, grad_vh = u[..., :k], vh[..., :k, :], grad_u[..., :k], grad_vh[..., :k, :]
        return _svd_backward(_NUMPY, None if _is_zero(grad_u) else grad_u, grad_s,
                             None if _is_zero(grad_vh) else grad_vh, u, s, vh), None

    @staticmethod
    def differentiable_backward(ctx, grad_u, grad_s, grad_vh):
        a, full_matrices = ctx.inputs
        u, s, vh = SVD.apply(a, full_matrices)
        k = s.shape[-1]
        if full_matrices:  # as backward: the first k columns / rows only
            u, vh, grad_u, grad_vh = u[..., :k], vh[..., :k, :], grad_u[..., :k], grad_vh[..., :k, :]
        return _svd_backward(_TENSORS, None if _TENSORS.is_zero(grad_u) else grad_u, grad_s,
                             None if _TENSORS.is_zero(grad_vh) else grad_vh, u, s, vh), None


@register("linalg_svd")
def linalg_svd(A, full_matrices=True):
    """torch.linalg.svd: (U, S, Vh) with A = U diag(S) Vh, S [..., k] descending,
    k = min(m, n), for A [..., m, n]; U [..., m, m] and Vh [..., n, n] when full_matrices
    (the default), else U [..., m, k] and Vh [..., k, n]. Singular vectors are unique up
    to a common sign per pair; their gradient needs distinct singular values (inf/nan
    otherwise, as in torch), a gradient of S alone does not."""
    _matrices("linalg.svd", A)
    return SVDResult(*SVD.apply(A, bool(full_matrices)))


class SVDValues(Function):
    """The singular values S [..., k] of A [..., m, n]. Gradient: U diag(gS) Vh."""
    name = "linalg.svdvals"

    @staticmethod
    def forward(ctx, a):
        u, s, vh = np.linalg.svd(a, full_matrices=False)
        ctx.save_for_backward(u, vh)
        return s

    @staticmethod
    def backward(ctx, grad):
        u, vh = ctx.saved_tensors
        return (u * grad[..., None, :]) @ vh

    @staticmethod
    def differentiable_backward(ctx, grad):
        # U and Vh as outputs of the svd op: their own derivative is svd's formula
        u, _, vh = SVD.apply(ctx.inputs[0], False)
        return (u * grad[..., None, :]) @ vh


@register("linalg_svdvals")
def linalg_svdvals(A):
    """torch.linalg.svdvals: the singular values [..., min(m, n)], descending, of A [..., m, n]."""
    _matrices("linalg.svdvals", A)
    return SVDValues.apply(A)


# ---- norms ----------------------------------------------------------------------------
def _norm_dims(op, dim, ndim):
    """dim (None: all; an int; a tuple or list) as a sorted tuple of non-negative ints."""
    if dim is None:
        return tuple(range(ndim))
    dims = [dim] if not isinstance(dim, (tuple, list)) else list(dim)
    result = []
    for d in dims:
        d = is_int(op, "dim", d)
        if not -max(ndim, 1) <= d < max(ndim, 1):
            raise IndexError("%s: dim %d is out of range for a tensor with %d dimensions" % (op, d, ndim))
        result.append(d % max(ndim, 1))
    if len(set(result)) != len(result):
        raise ValueError("%s: dim %s repeats a dimension" % (op, dim))
    return tuple(sorted(result)) if ndim else ()


class VectorNorm(Function):
    """(sum |x|^ord)^(1/ord) over dims; ord inf / -inf the max / min of |x|, ord 0 the
    count of non-zeros. Gradients as torch's norm_backward: zero where the norm is 0
    (ord > 1) or x is 0 (ord < 1); for inf / -inf, split evenly among ties."""
    name = "linalg.vector_norm"

    @staticmethod
    def forward(ctx, x, ord, dims, keepdim):
        magnitude = np.abs(x)
        if ord == np.inf:
            norm = magnitude.max(axis=dims, keepdims=True)
        elif ord == -np.inf:
            norm = magnitude.min(axis=dims, keepdims=True)
        elif ord == 0:
            norm = (magnitude != 0).sum(axis=dims, keepdims=True).astype(x.dtype)
        elif ord == 1:
            norm = magnitude.sum(axis=dims, keepdims=True)
        elif ord == 2:
            norm = np.sqrt(np.sum(magnitude * magnitude, axis=dims, keepdims=True))
        else:
            with np.errstate(divide="ignore"):  # negative ord with a zero element: torch gives 0
                norm = np.sum(magnitude ** ord, axis=dims, keepdims=True) ** (1.0 / ord)
        ctx.save_for_backward(x, norm)
        ctx.ord, ctx.dims, ctx.keepdim = ord, dims, keepdim
        return norm if keepdim else norm.reshape([n for i, n in enumerate(norm.shape) if i not in dims])

    @staticmethod
    def backward(ctx, grad):
        x, norm = ctx.saved_tensors
        ord, dims = ctx.ord, ctx.dims
        grad = grad if ctx.keepdim else np.expand_dims(grad, dims)
        if ord == 0:
            return np.zeros_like(x), None, None, None
        if ord == 1:
            return np.sign(x) * grad, None, None, None
        if ord == np.inf or ord == -np.inf:
            magnitude = np.abs(x)
            selected = (magnitude == norm) | np.isnan(magnitude)
            share = grad / selected.sum(axis=dims, keepdims=True)
            return np.sign(x) * selected * share, None, None, None
        with np.errstate(divide="ignore", invalid="ignore"):
            if ord == 2:
                scale = np.where(norm == 0, 0, grad / norm)
                return x * scale, None, None, None
            if ord < 1:
                scaled = np.where(x == 0, 0, np.sign(x) * np.abs(x) ** (ord - 1))
                return scaled * grad * norm ** (1 - ord), None, None, None
            scale = np.where(norm == 0, 0, grad / norm ** (ord - 1))
            return x * np.abs(x) ** (ord - 2) * scale, None, None, None

    @staticmethod
    def differentiable_backward(ctx, grad):
        # backward's cases on Tensors; masks (ties, zeros) and signs are constants, exact
        # where they are locally constant. Divisors are kept away from 0 where the formula
        # takes the value 0 instead, so that no inf * 0 reaches a later derivative.
        x, ord, dims, keepdim = ctx.inputs
        if not keepdim:
            grad = grad.reshape(tuple(1 if i in dims else n for i, n in enumerate(x.shape)))
        values = x.data
        sign = Tensor(np.sign(values))
        if ord == 0:
            return x * 0.0, None, None, None
        if ord == 1:
            return grad * sign, None, None, None
        norm = VectorNorm.apply(x, ord, dims, True)
        if ord == np.inf or ord == -np.inf:
            magnitude = np.abs(values)
            selected = (magnitude == norm.data) | np.isnan(magnitude)
            share = (sign.data * selected / selected.sum(axis=dims, keepdims=True)).astype(values.dtype)
            return grad * Tensor(share), None, None, None
        zero_norm = norm.data == 0
        if ord == 2:
            scale = grad / (norm + Tensor(zero_norm.astype(values.dtype))) * Tensor((~zero_norm).astype(values.dtype))
            return x * scale, None, None, None
        zero = values == 0
        magnitude = abs(x) + Tensor(zero.astype(values.dtype))  # 1 at the zeros, which are masked out
        powered = sign * magnitude ** (ord - 1) * Tensor((~zero).astype(values.dtype))
        if ord < 1:
            return powered * grad * norm ** (1 - ord), None, None, None
        safe_norm = norm + Tensor(zero_norm.astype(values.dtype))
        return powered * (grad / safe_norm ** (ord - 1) * Tensor((~zero_norm).astype(values.dtype))), None, None, None


def _check_ord(op, ord):
    if isinstance(ord, (bool, np.bool_)) or not isinstance(ord, (int, float, np.integer, np.floating)):
        raise TypeError("%s: got ord=%r, expected a number (inf and -inf included)" % (op, ord))
    return float(ord)


@register("linalg_vector_norm")
def linalg_vector_norm(x, ord=2, dim=None, keepdim=False, *, dtype=None):
    """torch.linalg.vector_norm: the ord-norm of x over dim (None: every element, as one
    vector), any shape -> the shape without dim (kept as size 1 with keepdim). ord: any
    number, inf or -inf (0 counts the non-zeros). dtype: compute in that float dtype."""
    op = "linalg.vector_norm"
    if not isinstance(x, Tensor):
        raise TypeError("%s: got %s, expected a Tensor" % (op, type(x).__name__))
    if dtype is not None:
        x = cast(x, dtype)
    if x.dtype.kind != "f":
        raise TypeError("%s: got a tensor of dtype %s, expected float32 or float64" % (op, x.dtype))
    ord = _check_ord(op, ord)
    dims = _norm_dims(op, dim, x.ndim)
    if (ord < 0 or ord == np.inf) and any(x.shape[d] == 0 for d in dims):
        # max and the negative powers have no value on an empty slice (torch refuses too)
        raise ValueError("%s: got a tensor of shape %s, expected no empty dimension among dim %s for ord=%s"
                         % (op, x.shape, dim, ord))
    return VectorNorm.apply(x, ord, dims, bool(keepdim))


def _move_to_end(x, dims):
    """x with dims (two non-negative ints) moved to the last two places, and the permutation."""
    rest = [d for d in range(x.ndim) if d not in dims]
    order = tuple(rest) + tuple(dims)
    return (Permute.apply(x, order) if order != tuple(range(x.ndim)) else x), order


@register("linalg_matrix_norm")
def linalg_matrix_norm(A, ord="fro", dim=(-2, -1), keepdim=False, *, dtype=None):
    """torch.linalg.matrix_norm: the ord-norm of the matrices over the two dims of A
    (default the last two) -> A's shape without them. ord: 'fro', 'nuc' (sum of singular
    values), 2 / -2 (largest / smallest singular value), 1 / -1 (max / min column sum of
    |A|), inf / -inf (max / min row sum of |A|)."""
    op = "linalg.matrix_norm"
    if not isinstance(A, Tensor):
        raise TypeError("%s: got %s, expected a Tensor" % (op, type(A).__name__))
    if dtype is not None:
        A = cast(A, dtype)
    _matrices(op, A)
    if not isinstance(dim, (tuple, list)) or len(dim) != 2:
        raise ValueError("%s: got dim=%r, expected a pair of dimensions" % (op, dim))
    dims = tuple(is_int(op, "dim", d) for d in dim)
    for d in dims:
        if not -A.ndim <= d < A.ndim:
            raise IndexError("%s: dim %d is out of range for a tensor with %d dimensions" % (op, d, A.ndim))
    rows, cols = (d % A.ndim for d in dims)
    if rows == cols:
        raise ValueError("%s: got dim=%r, expected two different dimensions" % (op, dim))
    if ord == "fro":
        result = VectorNorm.apply(A, 2.0, tuple(sorted((rows, cols))), False)
    elif ord in ("nuc", 2, -2):
        moved, _ = _move_to_end(A, (rows, cols))
        values = SVDValues.apply(moved)
        last = (values.ndim - 1,)
        result = VectorNorm.apply(values, {"nuc": 1.0, 2: np.inf, -2: -np.inf}[ord], last, False)
    elif ord in (1, -1, np.inf, -np.inf):
        summed, kept = (rows, cols) if ord in (1, -1) else (cols, rows)  # column sums for 1, row sums for inf
        sums = VectorNorm.apply(A, 1.0, (summed,), True)
        extreme = np.inf if ord > 0 else -np.inf
        result = VectorNorm.apply(sums, extreme, (kept,), True)
        result = Reshape.apply(result, tuple(n for i, n in enumerate(result.shape) if i not in (rows, cols)))
    else:
        raise ValueError("%s: got ord=%r, expected 'fro', 'nuc', 1, -1, 2, -2, inf or -inf" % (op, ord))
    if keepdim:
        shape = list(result.shape)
        for d in sorted((rows, cols)):
            shape.insert(d, 1)
        result = Reshape.apply(result, tuple(shape))
    return result


@register("linalg_norm")
def linalg_norm(A, ord=None, dim=None, keepdim=False, *, dtype=None):
    """torch.linalg.norm: a vector norm when dim is an int (or ord is None and dim is None:
    the 2-norm of all elements), a matrix norm when dim is a pair; with dim None and ord
    given, A must be 1-D (vector norm) or 2-D (matrix norm)."""
    op = "linalg.norm"
    if not isinstance(A, Tensor):
        raise TypeError("%s: got %s, expected a Tensor" % (op, type(A).__name__))
    if dim is not None and not isinstance(dim, (tuple, list)):
        dim = (dim,)
    if dim is None:
        if ord is None:
            return linalg_vector_norm(A, 2, None, keepdim, dtype=dtype)
        if A.ndim not in (1, 2):
            raise ValueError("%s: got ord=%r and a tensor of shape %s with dim=None, expected a 1-D or 2-D tensor "
                             "(or pass dim)" % (op, ord, A.shape))
        dim = tuple(range(A.ndim))
    if len(dim) == 1:
        if isinstance(ord, str):
            raise ValueError("%s: got ord=%r for a vector norm (one dim), expected a number" % (op, ord))
        return linalg_vector_norm(A, 2 if ord is None else ord, dim, keepdim, dtype=dtype)
    if len(dim) == 2:
        return linalg_matrix_norm(A, "fro" if ord is None else ord, dim, keepdim, dtype=dtype)
    raise ValueError("%s: got dim=%r, expected an int or a pair of ints" % (op, dim))
