"""GEMM family (csrc/gemm*.c): op(a) @ op(b) for 2-D matrices and for batches of them.

The C GEMM reads an operand as row-major with a leading dimension (row stride), or as
the transpose of one. Most views numpy hands us fit one of the two without a copy: a
C-ordered array or a row slice of one (ld = row stride), and a Fortran-ordered array or
a `.T` / swapaxes view (the transpose of a row-major array: flip the trans flag).
matrix_layout and batch_layout work that out; anything else is copied first.
"""
import numpy as np

from . import runtime
from .runtime import FLOAT_DTYPES, by_dtype, c_array, check_array, check_float, ffi, lib, pointers

# cffi's array type per dtype (the ctype object, not its name: from_buffer then skips
# parsing it), for the C-contiguous operands of the fast path in gemm
_C_ARRAY = {FLOAT_DTYPES[0]: "float[]", FLOAT_DTYPES[1]: "double[]"}
if ffi is not None:
    _C_ARRAY = {dtype: ffi.typeof(name) for dtype, name in _C_ARRAY.items()}
    _from_buffer = ffi.from_buffer
# dtype -> (cffi array type, C GEMM): one lookup on the fast path of gemm
_C_PATH = {dtype: (_C_ARRAY[dtype], function)
           for dtype, function in by_dtype("ag_sgemm_product", "ag_dgemm_product").items()}
_GEMM_BATCHED = by_dtype("ag_sgemm_batched", "ag_dgemm_batched")
_C_PATH_BATCHED = {dtype: (_C_ARRAY[dtype], function) for dtype, function in _GEMM_BATCHED.items()}
try:  # built by setup.py next to the cffi extension; optional (see _bind_gemm_call)
    from .. import _gemm_call as _gemm_call_module
except ImportError:
    _gemm_call_module = None


def _bind_gemm_call():
    """autograd_core._gemm_call.gemm bound to the C GEMM entries, or None.

    That module (csrc/python/gemm_call.c) runs gemm's common case (C-contiguous operands
    of one float dtype) through the CPython and numpy C APIs: ~0.4 us around the product
    where the cffi path below costs ~1.8 us, a quarter of a 64^3 product. It calls the
    same C function as the cffi path, and answers None for every other call. Its build is
    optional (setup.py); without it, or without the cffi extension, gemm takes the path
    below alone."""
    if lib is None or _gemm_call_module is None:
        return None
    _gemm_call_module.bind(*(int(ffi.cast("uintptr_t", ffi.addressof(lib, name)))
                             for name in ("ag_sgemm_product", "ag_dgemm_product")))
    return _gemm_call_module.gemm


_gemm_call = _bind_gemm_call()
# module globals: a lookup cheaper than np.ndarray / np.empty on the fast paths
_ndarray = np.ndarray
_empty = np.empty


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
    if _gemm_call is not None and runtime._backend == "c":
        c = _gemm_call(a, b, trans_a, trans_b)
        if c is not None:
            return c
    # The general path (and the whole call where _gemm_call is not built).
    # Every check is first made as cheaply as it can be (an exact type, an identical
    # dtype object, a bool flag), and only a call that fails it goes through the helpers
    # that raise. The C path is written out here, not behind runtime.dispatch and a
    # function of its own: at n = 64 the Python around the C call was a quarter of the
    # time (numpy's whole call costs ~0.9 us there), and each call frame ~0.1 us of it.
    if type(a) is not _ndarray or type(b) is not _ndarray or a.ndim != 2 or b.ndim != 2:
        check_array("gemm", "a", a, 2)
        check_array("gemm", "b", b, 2)
    if trans_a is not False and trans_a is not True:
        trans_a = _check_flag("gemm", "trans_a", trans_a)
    if trans_b is not False and trans_b is not True:
        trans_b = _check_flag("gemm", "trans_b", trans_b)
    dtype = a.dtype
    if (dtype is not b.dtype or dtype not in _C_PATH) and (dtype != b.dtype or dtype not in FLOAT_DTYPES):
        check_float("gemm", a=a, b=b)
    if trans_a:
        k, m = a.shape
    else:
        m, k = a.shape
    if trans_b:
        n, k2 = b.shape
    else:
        k2, n = b.shape
    if k != k2:
        _gemm_sizes("gemm", a.shape, b.shape, trans_a, trans_b)  # raises
    if runtime._backend != "c":
        return _gemm_numpy(a, b, trans_a, trans_b, m, n, k)
    array_type, function = _C_PATH[dtype]
    c = _empty((m, n), dtype)
    # C-contiguous, aligned operands (nearly every call) go straight to ffi.from_buffer
    # (with the array type looked up once, not parsed per call), which refuses any other
    # layout; flags.behaved (aligned and writeable: one attribute where c_contiguous and
    # aligned were two) sends a read-only array the general way too. Views take
    # matrix_layout and pointers. Empty products need nothing here: the C entry returns
    # at once for m or n == 0 and writes zeros for k == 0.
    try:
        if not (a.flags.behaved and b.flags.behaved):
            raise ValueError
        function(trans_a + 2 * trans_b, m, n, k, _from_buffer(array_type, a), a.shape[1],
                 _from_buffer(array_type, b), b.shape[1], _from_buffer(array_type, c))
    except ValueError:
        a, trans_a, lda = matrix_layout(a, trans_a)
        b, trans_b, ldb = matrix_layout(b, trans_b)
        a_pointer, b_pointer, c_pointer = pointers(a, b, c)
        function(trans_a + 2 * trans_b, m, n, k, a_pointer, lda, b_pointer, ldb, c_pointer)
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
    # The checks and the C call as in gemm: cheap tests first, the raising helpers only
    # for a call that fails one (the general checks took 5 us of a 45 us batch of 64
    # products of 32^3).
    if type(a) is not _ndarray or type(b) is not _ndarray or a.ndim != 3 or b.ndim != 3:
        check_array("batched_gemm", "a", a, 3)
        check_array("batched_gemm", "b", b, 3)
    if trans_a is not False and trans_a is not True:
        trans_a = _check_flag("batched_gemm", "trans_a", trans_a)
    if trans_b is not False and trans_b is not True:
        trans_b = _check_flag("batched_gemm", "trans_b", trans_b)
    dtype = a.dtype
    if (dtype is not b.dtype or dtype not in _C_PATH_BATCHED) and (dtype != b.dtype or dtype not in FLOAT_DTYPES):
        check_float("batched_gemm", a=a, b=b)
    if trans_a:
        batch, k, m = a.shape
    else:
        batch, m, k = a.shape
    if trans_b:
        batch_b, n, k2 = b.shape
    else:
        batch_b, k2, n = b.shape
    if batch != batch_b:
        raise ValueError("batched_gemm: batch sizes differ: a is %s, b is %s" % (a.shape, b.shape))
    if k != k2:
        _gemm_sizes("batched_gemm", a.shape[1:], b.shape[1:], trans_a, trans_b)  # raises
    if runtime._backend != "c":
        return _batched_gemm_numpy(a, b, trans_a, trans_b, m, n, k)
    array_type, function = _C_PATH_BATCHED[dtype]
    c = _empty((batch, m, n), dtype)
    # C returns at once for an empty batch or m or n == 0, and writes zeros for k == 0.
    try:
        if not (a.flags.behaved and b.flags.behaved):
            raise ValueError
        _, rows_a, lda = a.shape
        _, rows_b, ldb = b.shape
        function(trans_a, trans_b, batch, m, n, k, 1.0, _from_buffer(array_type, a), rows_a * lda, lda,
                 _from_buffer(array_type, b), rows_b * ldb, ldb, 0.0, _from_buffer(array_type, c), m * n, n)
    except ValueError:  # not C-contiguous, or read-only: batch_layout
        a, trans_a, lda, stride_a = batch_layout(a, trans_a)
        b, trans_b, ldb, stride_b = batch_layout(b, trans_b)
        a_pointer, b_pointer, c_pointer = pointers(a, b, c)
        function(trans_a, trans_b, batch, m, n, k, 1.0, a_pointer, stride_a, lda,
                 b_pointer, stride_b, ldb, 0.0, c_pointer, m * n, n)
    return c


def _batched_gemm_numpy(a, b, trans_a, trans_b, m, n, k):
    """The reference: numpy's matmul of the swapped-axes views."""
    op_a = np.swapaxes(a, 1, 2) if trans_a else a
    op_b = np.swapaxes(b, 1, 2) if trans_b else b
    return np.ascontiguousarray(np.matmul(op_a, op_b), dtype=a.dtype)
