"""GEMM family (csrc/gemm*.c): op(a) @ op(b) for 2-D matrices and for batches of them.

The C GEMM reads an operand as row-major with a leading dimension (row stride), or as
the transpose of one. Most views numpy hands us fit one of the two without a copy: a
C-ordered array or a row slice of one (ld = row stride), and a Fortran-ordered array or
a `.T` / swapaxes view (the transpose of a row-major array: flip the trans flag).
matrix_layout and batch_layout work that out; anything else is copied first.
"""
import numpy as np

from .runtime import FLOAT_DTYPES, by_dtype, c_array, check_array, check_float, dispatch, ffi, pointers

_GEMM = by_dtype("ag_sgemm", "ag_dgemm")
# cffi's array type per dtype (the ctype object, not its name: from_buffer then skips
# parsing it), for the C-contiguous operands of the fast path in _gemm_c
_C_ARRAY = {FLOAT_DTYPES[0]: "float[]", FLOAT_DTYPES[1]: "double[]"}
if ffi is not None:
    _C_ARRAY = {dtype: ffi.typeof(name) for dtype, name in _C_ARRAY.items()}
    _from_buffer = ffi.from_buffer
_GEMM_BATCHED = by_dtype("ag_sgemm_batched", "ag_dgemm_batched")


def _check_flag(op, name, value):
    if value is True or value is False:
        return value
    if not isinstance(value, (bool, np.bool_)) and value not in (0, 1):
        raise TypeError("%s: got %s=%r, expected a bool" % (op, name, value))
    return bool(value)


def _gemm_sizes(op, a_shape, b_shape, trans_a, trans_b):
    """(m, n, k) of op(a) [m, k] @ op(b) [k, n]; ValueError when the inner sizes differ."""
    m, k = (a_shape[1], a_shape[0]) if trans_a else a_shape
    k2, n = (b_shape[1], b_shape[0]) if trans_b else b_shape
    if k != k2:
        raise ValueError("%s: inner dimensions differ: op(a) is %s, op(b) is %s (a %s, b %s, "
                         "trans_a=%s, trans_b=%s)" % (op, (m, k), (k2, n), a_shape, b_shape, trans_a, trans_b))
    # No size check: numpy keeps size * itemsize of every array below 2**63 (even of
    # stride-0 views and arrays with a zero-length axis), so m, n, k and every offset C
    # computes in an operand or the result stay below runtime.SIZE_LIMIT.
    return m, n, k


def _strided_layout(array, rows, cols, row_stride, col_stride):
    """(flip, ld) when element [i, j] of a rows x cols matrix at byte strides
    (row_stride, col_stride) is at (i*ld + j) elements from its start (flip False) or at
    (j*ld + i) (flip True: C reads it as the transpose); None when neither holds."""
    item = array.itemsize
    if not array.flags.aligned or row_stride % item or col_stride % item:
        return None
    s0, s1 = row_stride // item, col_stride // item
    if (s1 == 1 or cols <= 1) and (rows <= 1 or s0 >= max(cols, 1)):
        return False, s0 if rows > 1 else max(cols, 1)
    if (s0 == 1 or rows <= 1) and (cols <= 1 or s1 >= max(rows, 1)):
        return True, s1 if cols > 1 else max(rows, 1)
    return None


def matrix_layout(matrix, trans):
    """How C reads the 2-D `matrix` (op(X) = X^T when trans): (array, trans, ld), with
    `matrix` itself when its strides fit, else a C-contiguous copy."""
    if matrix.flags.c_contiguous and matrix.flags.aligned:  # the common case, first
        return matrix, trans, max(matrix.shape[1], 1)
    layout = _strided_layout(matrix, matrix.shape[0], matrix.shape[1], *matrix.strides)
    if layout is None:
        matrix = c_array(matrix)
        return matrix, trans, max(matrix.shape[1], 1)
    flip, ld = layout
    return matrix, trans != flip, ld


def batch_layout(stack, trans):
    """matrix_layout for a [batch, rows, cols] stack: (array, trans, ld, batch_stride)
    in elements. The matrices share one layout, so one (trans, ld) serves all; a stride-0
    batch axis (np.broadcast_to) is read in place too. Otherwise: a C-contiguous copy."""
    batch, rows, cols = stack.shape
    batch_stride = stack.strides[0] if batch > 1 else 0
    layout = _strided_layout(stack, rows, cols, stack.strides[1], stack.strides[2])
    if layout is None or batch_stride < 0 or batch_stride % stack.itemsize:
        stack = c_array(stack)
        return stack, trans, max(cols, 1), rows * cols
    flip, ld = layout
    return stack, trans != flip, ld, batch_stride // stack.itemsize


# ---- gemm --------------------------------------------------------------------------------

def gemm(a, b, trans_a=False, trans_b=False):
    """op(a) @ op(b) for 2-D float arrays of one dtype (float32 or float64).

    a is [m, k] ([k, m] when trans_a), b is [k, n] ([n, k] when trans_b); returns a new
    C-contiguous [m, n] array. Transposed and row-strided views are read in place."""
    # Every check is first made as cheaply as it can be (an exact type, an identical
    # dtype object, a bool flag), and only a call that fails it goes through the helpers
    # that raise: at n = 64 the checks and the C call's set-up were half of the time.
    if type(a) is not np.ndarray or type(b) is not np.ndarray or a.ndim != 2 or b.ndim != 2:
        check_array("gemm", "a", a, 2)
        check_array("gemm", "b", b, 2)
    if trans_a is not False and trans_a is not True:
        trans_a = _check_flag("gemm", "trans_a", trans_a)
    if trans_b is not False and trans_b is not True:
        trans_b = _check_flag("gemm", "trans_b", trans_b)
    if (a.dtype is not b.dtype or a.dtype not in _C_ARRAY) and (a.dtype != b.dtype or a.dtype not in FLOAT_DTYPES):
        check_float("gemm", a=a, b=b)
    m, k = (a.shape[1], a.shape[0]) if trans_a else a.shape
    k2, n = (b.shape[1], b.shape[0]) if trans_b else b.shape
    if k != k2:
        _gemm_sizes("gemm", a.shape, b.shape, trans_a, trans_b)  # raises
    return dispatch(_gemm_c, _gemm_numpy, a, b, trans_a, trans_b, m, n, k)


def _gemm_c(a, b, trans_a, trans_b, m, n, k):
    dtype = a.dtype
    c = np.empty((m, n), dtype)
    if m == 0 or n == 0 or k == 0:
        if k == 0:
            c.fill(0)
        return c
    # C-contiguous, aligned operands (nearly every call) go straight to ffi.from_buffer
    # (with the array type looked up once, not parsed per call); views take
    # matrix_layout and pointers. At n = 64 this set-up is a fifth of the call.
    array_type = _C_ARRAY[dtype]
    flags = a.flags
    if flags.c_contiguous and flags.aligned:
        lda = a.shape[1]
        a_pointer = _from_buffer(array_type, a)
    else:
        a, trans_a, lda = matrix_layout(a, trans_a)
        a_pointer = pointers(a)[0]
    flags = b.flags
    if flags.c_contiguous and flags.aligned:
        ldb = b.shape[1]
        b_pointer = _from_buffer(array_type, b)
    else:
        b, trans_b, ldb = matrix_layout(b, trans_b)
        b_pointer = pointers(b)[0]
    _GEMM[dtype](trans_a, trans_b, m, n, k, 1.0, a_pointer, lda, b_pointer, ldb, 0.0,
                 _from_buffer(array_type, c), n)
    return c


def _gemm_numpy(a, b, trans_a, trans_b, m, n, k):
    """The reference: numpy's matmul of the transposed views."""
    return np.ascontiguousarray(np.matmul(a.T if trans_a else a, b.T if trans_b else b), dtype=a.dtype)


# ---- batched_gemm ------------------------------------------------------------------------

def batched_gemm(a, b, trans_a=False, trans_b=False):
    """op(a[i]) @ op(b[i]) for every i of two 3-D float arrays of one dtype.

    a is [batch, m, k] ([batch, k, m] when trans_a), b is [batch, k, n] ([batch, n, k]
    when trans_b); returns a new C-contiguous [batch, m, n] array. One C call runs the
    whole batch (small products in parallel across it)."""
    check_array("batched_gemm", "a", a, 3)
    check_array("batched_gemm", "b", b, 3)
    trans_a = _check_flag("batched_gemm", "trans_a", trans_a)
    trans_b = _check_flag("batched_gemm", "trans_b", trans_b)
    check_float("batched_gemm", a=a, b=b)
    if a.shape[0] != b.shape[0]:
        raise ValueError("batched_gemm: batch sizes differ: a is %s, b is %s" % (a.shape, b.shape))
    m, n, k = _gemm_sizes("batched_gemm", a.shape[1:], b.shape[1:], trans_a, trans_b)
    return dispatch(_batched_gemm_c, _batched_gemm_numpy, a, b, trans_a, trans_b, m, n, k)


def _batched_gemm_c(a, b, trans_a, trans_b, m, n, k):
    batch = a.shape[0]
    c = np.empty((batch, m, n), dtype=a.dtype)
    if batch == 0 or m == 0 or n == 0:
        return c
    if k == 0:
        c.fill(0)
        return c
    a, trans_a, lda, stride_a = batch_layout(a, trans_a)
    b, trans_b, ldb, stride_b = batch_layout(b, trans_b)
    a_pointer, b_pointer, c_pointer = pointers(a, b, c)
    _GEMM_BATCHED[c.dtype](trans_a, trans_b, batch, m, n, k, 1.0, a_pointer, stride_a, lda,
                           b_pointer, stride_b, ldb, 0.0, c_pointer, m * n, n)
    return c


def _batched_gemm_numpy(a, b, trans_a, trans_b, m, n, k):
    """The reference: numpy's matmul of the swapped-axes views."""
    op_a = np.swapaxes(a, 1, 2) if trans_a else a
    op_b = np.swapaxes(b, 1, 2) if trans_b else b
    return np.ascontiguousarray(np.matmul(op_a, op_b), dtype=a.dtype)
