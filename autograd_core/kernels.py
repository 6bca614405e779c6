"""The kernel bridge: the only module that touches the compiled extension.

Every public function here validates its arguments (shapes, dtypes, contiguity,
sizes) and then runs either the C kernel or the numpy reference in ``reference.py``,
according to the backend in force. C therefore never sees an argument that would
make it read or write out of bounds.

Global state (and nothing else): the backend ('c' or 'numpy'), the thread count and,
for tests, the SIMD path. Environment variables set the initial values:
  AUTOGRAD_CORE_BACKEND=c|numpy, AUTOGRAD_CORE_NUM_THREADS=n.

Threads: cffi's API mode releases the GIL around every C call (documented since cffi
0.3, "C function calls are done with the GIL released"; the generated wrapper brackets
each call with Py_BEGIN_ALLOW_THREADS / Py_END_ALLOW_THREADS), so kernels called from
several Python threads run concurrently. The C kernels keep no shared scratch state.
"""
import contextlib
import os
import warnings

import numpy as np

from . import reference

# OpenMP threads that wait for work spin only briefly, then sleep, unless the user chose
# a policy (OMP_WAIT_POLICY or GOMP_SPINCOUNT). libgomp reads these once, when loading
# the extension loads it, so the default is set around that import only (torch or others
# imported later still see the user's environment). Why: libgomp's default spins ~300k
# iterations, and on a machine whose cores are shared with other processes a spinning
# waiter burns the time slice its partner needs. Measured on the 2-core development
# machine with two busy processes beside it, a 128x784 @ 784x256 product on 2 threads:
# 15.5 ms spinning, 0.98 ms with 10,000 spins (0.96 ms never spinning). On an idle
# machine the short spin keeps most of spinning's speed: a CNN training step 70 ms,
# against 70.8 ms spinning and 77-81 ms never spinning.
_SPIN_DEFAULT = {"GOMP_SPINCOUNT": "10000"}
_SPIN_ADDED = not any(name in os.environ for name in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT"))
if _SPIN_ADDED:
    os.environ.update(_SPIN_DEFAULT)
try:  # the extension is built by `pip install` (csrc/build_kernels.py)
    from . import _kernels as _ext
    _lib, _ffi = _ext.lib, _ext.ffi
except ImportError as _error:  # a source checkout that was never built
    _lib = _ffi = None
    _IMPORT_ERROR = _error
else:
    _IMPORT_ERROR = None
finally:
    if _SPIN_ADDED:
        for _name in _SPIN_DEFAULT:
            del os.environ[_name]

_BACKENDS = ("c", "numpy")
_state = {"backend": None, "warned": False}


def extension_available():
    """True when the compiled C extension could be imported."""
    return _lib is not None


def _warn_missing_once():
    if not _state["warned"]:
        _state["warned"] = True
        warnings.warn(
            "autograd_core: the C extension is not built (%s); running on the numpy "
            "reference kernels. Install with `pip install .` to compile csrc/." % _IMPORT_ERROR,
            RuntimeWarning, stacklevel=3)


def set_backend(name):
    """Choose the kernel backend: 'c' (compiled kernels) or 'numpy' (reference)."""
    if name not in _BACKENDS:
        raise ValueError("set_backend: got %r, expected one of %s" % (name, _BACKENDS))
    if name == "c" and _lib is None:
        raise RuntimeError("set_backend('c'): the C extension is not built (%s)" % _IMPORT_ERROR)
    _state["backend"] = name


def get_backend():
    """The backend in force: 'c' or 'numpy'."""
    if _state["backend"] is None:
        requested = os.environ.get("AUTOGRAD_CORE_BACKEND", "c").strip().lower()
        if requested not in _BACKENDS:
            raise ValueError("AUTOGRAD_CORE_BACKEND: got %r, expected one of %s" % (requested, _BACKENDS))
        if requested == "c" and _lib is None:
            _warn_missing_once()
            requested = "numpy"
        _state["backend"] = requested
    return _state["backend"]


@contextlib.contextmanager
def backend(name):
    """Context manager that runs its body with the given backend."""
    previous = get_backend()
    set_backend(name)
    try:
        yield
    finally:
        _state["backend"] = previous


def _is_integer(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def set_num_threads(n):
    """Number of threads the C kernels use (n >= 1)."""
    if not _is_integer(n) or n < 1:
        raise ValueError("set_num_threads: got %r, expected an int >= 1" % (n,))
    if _lib is not None:
        _lib.ag_set_num_threads(int(n))


def get_num_threads():
    """Number of threads the C kernels use (1 without the extension or OpenMP)."""
    return int(_lib.ag_get_num_threads()) if _lib is not None else 1


if os.environ.get("AUTOGRAD_CORE_NUM_THREADS"):
    try:
        _env_threads = int(os.environ["AUTOGRAD_CORE_NUM_THREADS"])
    except ValueError:
        raise ValueError("AUTOGRAD_CORE_NUM_THREADS: got %r, expected an int >= 1"
                         % os.environ["AUTOGRAD_CORE_NUM_THREADS"]) from None
    set_num_threads(_env_threads)


# SIMD paths of the C kernels; the best one the CPU supports is used unless a test forces
# a lower one to exercise it.
SIMD_LEVELS = {0: "portable C", 1: "AVX2+FMA", 2: "AVX-512F"}


def cpu_simd_level():
    """Best SIMD level this CPU supports: 0 portable C, 1 AVX2+FMA, 2 AVX-512F
    (0 without the extension)."""
    return int(_lib.ag_cpu_simd_level()) if _lib is not None else 0


def get_simd_level():
    """SIMD level the C kernels use now (see cpu_simd_level)."""
    return int(_lib.ag_get_simd_level()) if _lib is not None else 0


def set_simd_level(level):
    """Force the C kernels onto SIMD level 0, 1 or 2, or None for the CPU's best.
    Raises ValueError for a level this CPU cannot run. Returns the level in use."""
    if level is None:
        level = -1
    elif not _is_integer(level) or level not in SIMD_LEVELS:
        raise ValueError("set_simd_level: got %r, expected None or one of %s" % (level, sorted(SIMD_LEVELS)))
    elif level > cpu_simd_level():
        raise ValueError("set_simd_level: got %d (%s), but this CPU supports at most %d (%s)"
                         % (level, SIMD_LEVELS[level], cpu_simd_level(), SIMD_LEVELS[cpu_simd_level()]))
    if _lib is None:
        return 0
    return int(_lib.ag_set_simd_level(int(level)))


@contextlib.contextmanager
def simd_level(level):
    """Context manager that runs its body on the given SIMD level (see set_simd_level),
    then restores the level in force before it."""
    previous = get_simd_level()
    set_simd_level(level)
    try:
        yield
    finally:
        set_simd_level(None if previous == cpu_simd_level() else previous)


def _use_c():
    return get_backend() == "c"


_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _check_float(op, **arrays):
    dtypes = {name: a.dtype for name, a in arrays.items()}
    first = next(iter(dtypes.values()))
    if first not in _FLOAT_DTYPES or any(d != first for d in dtypes.values()):
        raise TypeError("%s: got dtypes %s, expected all float32 or all float64" % (
            op, ", ".join("%s=%s" % kv for kv in dtypes.items())))
    return first


def _ptr(array, ctype):
    """A C pointer to the array's first element (the array must outlive the call)."""
    if array.flags.c_contiguous:  # ~10x cheaper than going through array.ctypes
        return _ffi.from_buffer(ctype.replace("*", "[]"), array)
    return _ffi.cast(ctype, array.ctypes.data)


# ---- GEMM ----------------------------------------------------------------------------
# The C GEMM reads an operand as row-major with a leading dimension (row stride), or as
# the transpose of one. Most views numpy hands us fit one of the two without a copy:
# a C-ordered array or a row slice of one (ld = row stride), and a Fortran-ordered array
# or a `.T` / swapaxes view (the transpose of a row-major array: flip the trans flag).

_INT64_LIMIT = 2 ** 62  # every offset C computes stays below this


def _check_array(op, name, value, ndim):
    if not isinstance(value, np.ndarray):
        raise TypeError("%s: got %s for %s, expected a numpy.ndarray" % (op, type(value).__name__, name))
    if value.ndim != ndim:
        raise ValueError("%s: got %s with shape %s, expected a %d-D array" % (op, name, value.shape, ndim))


def _check_flag(op, name, value):
    if value is True or value is False:
        return value
    if not isinstance(value, (bool, np.bool_)) and value not in (0, 1):
        raise TypeError("%s: got %s=%r, expected a bool" % (op, name, value))
    return bool(value)


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


def _matrix_layout(matrix, trans):
    """How C reads the 2-D `matrix` (op(X) = X^T when trans): (array, trans, ld), with
    `matrix` itself when its strides fit, else a C-contiguous copy."""
    if matrix.flags.c_contiguous and matrix.flags.aligned:  # the common case, first
        return matrix, trans, max(matrix.shape[1], 1)
    layout = _strided_layout(matrix, matrix.shape[0], matrix.shape[1], *matrix.strides)
    if layout is None:
        matrix = np.ascontiguousarray(matrix)
        return matrix, trans, max(matrix.shape[1], 1)
    flip, ld = layout
    return matrix, trans != flip, ld


def _gemm_shapes(op, a_shape, b_shape, trans_a, trans_b):
    m, k = (a_shape[1], a_shape[0]) if trans_a else a_shape
    k2, n = (b_shape[1], b_shape[0]) if trans_b else b_shape
    if k != k2:
        raise ValueError("%s: inner dimensions differ: op(a) is %s, op(b) is %s (a %s, b %s, "
                         "trans_a=%s, trans_b=%s)" % (op, (m, k), (k2, n), a_shape, b_shape, trans_a, trans_b))
    for size in (m, n, k):
        if size >= _INT64_LIMIT:
            raise ValueError("%s: size %d does not fit the kernels' int64 arithmetic" % (op, size))
    return m, n, k


def gemm(a, b, trans_a=False, trans_b=False):
    """op(a) @ op(b) for 2-D float arrays of one dtype (float32 or float64).

    a is [m, k] ([k, m] when trans_a), b is [k, n] ([n, k] when trans_b); returns a new
    C-contiguous [m, n] array. Transposed and row-strided views are read in place."""
    _check_array("gemm", "a", a, 2)
    _check_array("gemm", "b", b, 2)
    trans_a = _check_flag("gemm", "trans_a", trans_a)
    trans_b = _check_flag("gemm", "trans_b", trans_b)
    dtype = a.dtype
    if dtype != b.dtype or dtype not in _FLOAT_DTYPES:
        _check_float("gemm", a=a, b=b)
    m, n, k = _gemm_shapes("gemm", a.shape, b.shape, trans_a, trans_b)
    if not _use_c():
        return np.ascontiguousarray(reference.gemm(a, b, trans_a, trans_b), dtype=dtype)
    c = np.empty((m, n), dtype=dtype)
    if m == 0 or n == 0:
        return c
    if k == 0:
        c.fill(0)
        return c
    a, ta, lda = _matrix_layout(a, trans_a)
    b, tb, ldb = _matrix_layout(b, trans_b)
    if dtype == np.float32:
        _lib.ag_sgemm(ta, tb, m, n, k, 1.0, _ptr(a, "float *"), lda, _ptr(b, "float *"), ldb,
                      0.0, _ptr(c, "float *"), n)
    else:
        _lib.ag_dgemm(ta, tb, m, n, k, 1.0, _ptr(a, "double *"), lda, _ptr(b, "double *"), ldb,
                      0.0, _ptr(c, "double *"), n)
    return c


def _batch_layout(stack, trans):
    """_matrix_layout for a [batch, rows, cols] stack: (array, trans, ld, batch_stride)
    in elements. The matrices share one layout, so one (trans, ld) serves all; a stride-0
    batch axis (np.broadcast_to) is read in place too. Otherwise: a C-contiguous copy."""
    batch, rows, cols = stack.shape
    batch_stride = stack.strides[0] if batch > 1 else 0
    layout = _strided_layout(stack, rows, cols, stack.strides[1], stack.strides[2])
    if layout is None or batch_stride < 0 or batch_stride % stack.itemsize:
        stack = np.ascontiguousarray(stack)
        return stack, trans, max(cols, 1), rows * cols
    flip, ld = layout
    return stack, trans != flip, ld, batch_stride // stack.itemsize


def batched_gemm(a, b, trans_a=False, trans_b=False):
    """op(a[i]) @ op(b[i]) for every i of two 3-D float arrays of one dtype.

    a is [batch, m, k] ([batch, k, m] when trans_a), b is [batch, k, n] ([batch, n, k]
    when trans_b); returns a new C-contiguous [batch, m, n] array. One C call runs the
    whole batch (small products in parallel across it)."""
    _check_array("batched_gemm", "a", a, 3)
    _check_array("batched_gemm", "b", b, 3)
    trans_a = _check_flag("batched_gemm", "trans_a", trans_a)
    trans_b = _check_flag("batched_gemm", "trans_b", trans_b)
    dtype = _check_float("batched_gemm", a=a, b=b)
    if a.shape[0] != b.shape[0]:
        raise ValueError("batched_gemm: batch sizes differ: a is %s, b is %s" % (a.shape, b.shape))
    batch = a.shape[0]
    m, n, k = _gemm_shapes("batched_gemm", a.shape[1:], b.shape[1:], trans_a, trans_b)
    if not _use_c():
        return np.ascontiguousarray(reference.batched_gemm(a, b, trans_a, trans_b), dtype=dtype)
    c = np.empty((batch, m, n), dtype=dtype)
    if batch == 0 or m == 0 or n == 0:
        return c
    if k == 0:
        c.fill(0)
        return c
    a, ta, lda, stride_a = _batch_layout(a, trans_a)
    b, tb, ldb, stride_b = _batch_layout(b, trans_b)
    if dtype == np.float32:
        _lib.ag_sgemm_batched(ta, tb, batch, m, n, k, 1.0, _ptr(a, "float *"), stride_a, lda,
                              _ptr(b, "float *"), stride_b, ldb, 0.0, _ptr(c, "float *"), m * n, n)
    else:
        _lib.ag_dgemm_batched(ta, tb, batch, m, n, k, 1.0, _ptr(a, "double *"), stride_a, lda,
                              _ptr(b, "double *"), stride_b, ldb, 0.0, _ptr(c, "double *"), m * n, n)
    return c


# ---- conv2d, pooling, fused recurrent cells ----------------------------------------
# Images are NHWC [batch, height, width, channels]; conv weights [kh, kw, c_in, c_out].
# Stride is an int or (stride_h, stride_w). Padding is 'valid', 'same' (TensorFlow's rule:
# out = ceil(in / stride), the odd pixel of the total padding goes after), an int, a pair
# (pad_h, pad_w), or ((top, bottom), (left, right)).

# Every index the C kernels compute stays below this, so int64 arithmetic never overflows.
_SIZE_LIMIT = 2 ** 62


def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _pair(value, op, name, minimum):
    """(a, b) from an int or a pair of ints, each >= minimum."""
    pair = (value, value) if _is_int(value) else value
    if not (isinstance(pair, (tuple, list)) and len(pair) == 2 and all(_is_int(v) for v in pair)):
        raise TypeError("%s: got %s=%r, expected an int or a pair of ints" % (op, name, value))
    if any(v < minimum for v in pair) or any(v >= _SIZE_LIMIT for v in pair):
        raise ValueError("%s: got %s=%r, expected values >= %d" % (op, name, value, minimum))
    return int(pair[0]), int(pair[1])


def conv_output_size(input_size, kernel_size, stride, pad_before=0, pad_after=0):
    """Output length of a window of kernel_size sliding by stride over input_size cells
    padded by pad_before + pad_after: (input + pads - kernel) // stride + 1. Can be
    <= 0 when the kernel is larger than the padded input; callers reject that."""
    return (input_size + pad_before + pad_after - kernel_size) // stride + 1


def resolve_padding(padding, input_hw, kernel_hw, stride_hw, op="conv2d"):
    """((top, bottom), (left, right)) for any accepted padding form.

    'same' follows TensorFlow: out = ceil(in / stride), total = max((out - 1) * stride +
    kernel - in, 0), before = total // 2, after = total - before."""
    if isinstance(padding, str):
        mode = padding.lower()
        if mode == "valid":
            return (0, 0), (0, 0)
        if mode == "same":
            pads = []
            for size, kernel, stride in zip(input_hw, kernel_hw, stride_hw):
                out = -(-size // stride)
                total = max((out - 1) * stride + kernel - size, 0)
                pads.append((total // 2, total - total // 2))
            return tuple(pads)
        raise ValueError("%s: got padding=%r, expected 'same', 'valid', an int, (pad_h, pad_w) "
                         "or ((top, bottom), (left, right))" % (op, padding))
    if (isinstance(padding, (tuple, list)) and len(padding) == 2
            and all(isinstance(p, (tuple, list)) for p in padding)):
        top_bottom = _pair(padding[0], op, "padding[0]", 0)
        left_right = _pair(padding[1], op, "padding[1]", 0)
        return top_bottom, left_right
    pad_h, pad_w = _pair(padding, op, "padding", 0)
    return (pad_h, pad_h), (pad_w, pad_w)


def _check_size(op, what, *factors):
    size = 1
    for f in factors:
        size *= int(f)
    if size >= _SIZE_LIMIT:
        raise ValueError("%s: %s would have %d elements, expected fewer than 2**62" % (op, what, size))
    return size


def _shape4(op, name, shape):
    if not (isinstance(shape, (tuple, list)) and len(shape) == 4 and all(_is_int(s) for s in shape)
            and all(s >= 0 for s in shape)):
        raise ValueError("%s: got %s=%r, expected a 4-tuple of non-negative ints" % (op, name, shape))
    return tuple(int(s) for s in shape)


def _as_array(op, name, value, ndim):
    if not isinstance(value, np.ndarray):
        raise TypeError("%s: got %s of type %s, expected a numpy array" % (op, name, type(value).__name__))
    if value.ndim != ndim:
        raise ValueError("%s: got %s with shape %s, expected %d dimensions" % (op, name, value.shape, ndim))
    return value


def _conv_geometry(op, x_shape, w_shape, stride, padding):
    """Validated geometry dict for ag_conv2d_geometry, plus the resolved stride/padding."""
    n, height, width, in_channels = x_shape
    kernel_h, kernel_w, w_in, out_channels = w_shape
    if in_channels != w_in:
        raise ValueError("%s: input has %d channels (shape %s) but weight expects %d (shape %s, "
                         "[kh, kw, c_in, c_out])" % (op, in_channels, x_shape, w_in, w_shape))
    if kernel_h < 1 or kernel_w < 1 or in_channels < 1 or out_channels < 1:
        raise ValueError("%s: got weight shape %s, expected [kh, kw, c_in, c_out] all >= 1" % (op, w_shape))
    stride = _pair(stride, op, "stride", 1)
    pads = resolve_padding(padding, (height, width), (kernel_h, kernel_w), stride, op)
    out_h = conv_output_size(height, kernel_h, stride[0], *pads[0])
    out_w = conv_output_size(width, kernel_w, stride[1], *pads[1])
    if out_h < 1 or out_w < 1:
        raise ValueError("%s: input %dx%d with kernel %dx%d, stride %s, padding %s gives output "
                         "%dx%d, expected at least 1x1" % (op, height, width, kernel_h, kernel_w,
                                                           stride, pads, out_h, out_w))
    _check_size(op, "the padded input", n, height + sum(pads[0]) + stride[0],
                width + sum(pads[1]) + stride[1], in_channels)
    _check_size(op, "the output", n, out_h, out_w, max(out_channels, kernel_h * kernel_w * in_channels))
    geometry = dict(batch=n, height=height, width=width, in_channels=in_channels,
                    kernel_h=kernel_h, kernel_w=kernel_w, out_channels=out_channels,
                    stride_h=stride[0], stride_w=stride[1], pad_top=pads[0][0],
                    pad_left=pads[1][0], out_height=out_h, out_width=out_w)
    return geometry, stride, pads


def _empty_aligned(shape, dtype):
    """np.empty whose data starts on a 64-byte boundary. numpy's 16-byte alignment makes
    every AVX-512 load or store the conv kernels do on it straddle two cache lines
    (measured 3-8% of a conv2d pass on the seed CNN's second layer)."""
    itemsize = np.dtype(dtype).itemsize
    count = 1
    for size in shape:
        count *= int(size)
    raw = np.empty(count + 64 // itemsize, dtype=dtype)
    offset = (-raw.ctypes.data % 64) // itemsize
    return raw[offset:offset + count].reshape(shape)


def _conv_call(op, function, geometry, dtype, *arrays):
    ctype = "float *" if dtype == np.float32 else "double *"
    status = function(_ffi.new("ag_conv2d_geometry *", geometry), *[_ptr(a, ctype) for a in arrays])
    if status != 0:
        raise MemoryError("%s: could not allocate the im2col workspace" % op)


def conv2d_forward(x, w, stride=1, padding="valid"):
    """2-D convolution (cross-correlation): x [n, h, w, c_in], w [kh, kw, c_in, c_out]
    -> y [n, out_h, out_w, c_out]."""
    op = "conv2d_forward"
    x = _as_array(op, "x", x, 4)
    w = _as_array(op, "w", w, 4)
    dtype = _check_float(op, x=x, w=w)
    geometry, stride, pads = _conv_geometry(op, x.shape, w.shape, stride, padding)
    if not _use_c():
        return np.ascontiguousarray(reference.conv2d_forward(x, w, stride, pads))
    x, w = np.ascontiguousarray(x), np.ascontiguousarray(w)
    y = _empty_aligned((geometry["batch"], geometry["out_height"], geometry["out_width"],
                        geometry["out_channels"]), dtype)
    suffix = "f32" if dtype == np.float32 else "f64"
    _conv_call(op, getattr(_lib, "ag_conv2d_forward_" + suffix), geometry, dtype, x, w, y)
    return y


def conv2d_backward_input(grad_y, w, x_shape, stride=1, padding="valid"):
    """Gradient of conv2d w.r.t. its input: grad_y [n, out_h, out_w, c_out],
    w [kh, kw, c_in, c_out] -> grad_x [x_shape] = [n, h, w, c_in]."""
    op = "conv2d_backward_input"
    grad_y = _as_array(op, "grad_y", grad_y, 4)
    w = _as_array(op, "w", w, 4)
    dtype = _check_float(op, grad_y=grad_y, w=w)
    x_shape = _shape4(op, "x_shape", x_shape)
    geometry, stride, pads = _conv_geometry(op, x_shape, w.shape, stride, padding)
    expected = (x_shape[0], geometry["out_height"], geometry["out_width"], w.shape[3])
    if grad_y.shape != expected:
        raise ValueError("%s: got grad_y shape %s, expected %s for x_shape %s and weight %s"
                         % (op, grad_y.shape, expected, x_shape, w.shape))
    if not _use_c():
        return np.ascontiguousarray(reference.conv2d_backward_input(grad_y, w, x_shape, stride, pads))
    grad_y, w = np.ascontiguousarray(grad_y), np.ascontiguousarray(w)
    grad_x = _empty_aligned(x_shape, dtype)
    suffix = "f32" if dtype == np.float32 else "f64"
    _conv_call(op, getattr(_lib, "ag_conv2d_backward_input_" + suffix), geometry, dtype,
               grad_y, w, grad_x)
    return grad_x


def conv2d_backward_weight(x, grad_y, w_shape, stride=1, padding="valid"):
    """Gradient of conv2d w.r.t. its weight: x [n, h, w, c_in], grad_y
    [n, out_h, out_w, c_out] -> grad_w [w_shape] = [kh, kw, c_in, c_out]."""
    op = "conv2d_backward_weight"
    x = _as_array(op, "x", x, 4)
    grad_y = _as_array(op, "grad_y", grad_y, 4)
    dtype = _check_float(op, x=x, grad_y=grad_y)
    w_shape = _shape4(op, "w_shape", w_shape)
    geometry, stride, pads = _conv_geometry(op, x.shape, w_shape, stride, padding)
    expected = (x.shape[0], geometry["out_height"], geometry["out_width"], w_shape[3])
    if grad_y.shape != expected:
        raise ValueError("%s: got grad_y shape %s, expected %s for x shape %s and w_shape %s"
                         % (op, grad_y.shape, expected, x.shape, w_shape))
    if not _use_c():
        return np.ascontiguousarray(reference.conv2d_backward_weight(x, grad_y, w_shape, stride, pads))
    x, grad_y = np.ascontiguousarray(x), np.ascontiguousarray(grad_y)
    grad_w = _empty_aligned(w_shape, dtype)
    suffix = "f32" if dtype == np.float32 else "f64"
    _conv_call(op, getattr(_lib, "ag_conv2d_backward_weight_" + suffix), geometry, dtype,
               x, grad_y, grad_w)
    return grad_w


def _pool_geometry(op, x_shape, kernel_size, stride, padding):
    """Validated geometry dict for ag_pool2d_geometry, plus kernel/stride/padding resolved.
    stride None means kernel_size. Padding on a side must be smaller than the kernel so
    that every window holds at least one real cell."""
    n, height, width, channels = x_shape
    kernel = _pair(kernel_size, op, "kernel_size", 1)
    stride = kernel if stride is None else _pair(stride, op, "stride", 1)
    if height < 1 or width < 1 or channels < 1:
        raise ValueError("%s: got input shape %s, expected [n, h, w, c] with h, w, c >= 1" % (op, x_shape))
    pads = resolve_padding(padding, (height, width), kernel, stride, op)
    for (before, after), k in zip(pads, kernel):
        if before >= k or after >= k:
            raise ValueError("%s: got padding %s with kernel_size %s, expected each pad smaller "
                             "than the kernel (a window of only padding has no value)"
                             % (op, pads, kernel))
    if kernel[0] * kernel[1] >= 2 ** 31:
        raise ValueError("%s: got kernel_size %s, expected a window of fewer than 2**31 cells"
                         % (op, kernel))
    out_h = conv_output_size(height, kernel[0], stride[0], *pads[0])
    out_w = conv_output_size(width, kernel[1], stride[1], *pads[1])
    if out_h < 1 or out_w < 1:
        raise ValueError("%s: input %dx%d with kernel %s, stride %s, padding %s gives output "
                         "%dx%d, expected at least 1x1" % (op, height, width, kernel, stride,
                                                           pads, out_h, out_w))
    _check_size(op, "the output", n, out_h, out_w, channels, kernel[0] * kernel[1])
    geometry = dict(batch=n, height=height, width=width, channels=channels,
                    kernel_h=kernel[0], kernel_w=kernel[1], stride_h=stride[0], stride_w=stride[1],
                    pad_top=pads[0][0], pad_left=pads[1][0], out_height=out_h, out_width=out_w)
    return geometry, kernel, stride, pads


def _pool_args(geometry, dtype, *arrays):
    ctype = "float *" if dtype == np.float32 else "double *"
    return [_ffi.new("ag_pool2d_geometry *", geometry)] + [
        _ptr(a, "int64_t *" if a.dtype == np.int64 else ctype) for a in arrays]


def _pool_out_shape(geometry):
    return (geometry["batch"], geometry["out_height"], geometry["out_width"], geometry["channels"])


def max_pool2d_forward(x, kernel_size, stride=None, padding=0):
    """2-D max pooling: x [n, h, w, c] -> (y [n, out_h, out_w, c], argmax int64 of y's
    shape holding the flat index into x of each maximum; ties go to the first maximum
    in row-major window order, padded cells never win)."""
    op = "max_pool2d_forward"
    x = _as_array(op, "x", x, 4)
    dtype = _check_float(op, x=x)
    geometry, kernel, stride, pads = _pool_geometry(op, x.shape, kernel_size, stride, padding)
    if not _use_c():
        return reference.max_pool2d_forward(x, kernel, stride, pads)
    x = np.ascontiguousarray(x)
    y = np.empty(_pool_out_shape(geometry), dtype=dtype)
    argmax = np.empty(y.shape, dtype=np.int64)
    status = getattr(_lib, "ag_max_pool2d_forward_" + ("f32" if dtype == np.float32 else "f64"))(
        *_pool_args(geometry, dtype, x, y, argmax))
    if status != 0:
        raise MemoryError("%s: could not allocate the window offset table" % op)
    return y, argmax


def max_pool2d_backward(grad_y, argmax, x_shape):
    """Gradient of max pooling: grad_y [n, out_h, out_w, c] added into grad_x [x_shape]
    at the cells argmax (from max_pool2d_forward) names, accumulating where windows
    overlap."""
    op = "max_pool2d_backward"
    grad_y = _as_array(op, "grad_y", grad_y, 4)
    argmax = _as_array(op, "argmax", argmax, 4)
    dtype = _check_float(op, grad_y=grad_y)
    x_shape = _shape4(op, "x_shape", x_shape)
    if argmax.dtype != np.int64:
        raise TypeError("%s: got argmax dtype %s, expected int64" % (op, argmax.dtype))
    if argmax.shape != grad_y.shape:
        raise ValueError("%s: got argmax shape %s and grad_y shape %s, expected equal shapes"
                         % (op, argmax.shape, grad_y.shape))
    if grad_y.shape[0] != x_shape[0] or grad_y.shape[3] != x_shape[3]:
        raise ValueError("%s: got grad_y shape %s and x_shape %s, expected the same batch and "
                         "channels" % (op, grad_y.shape, x_shape))
    bad_index = ValueError("%s: argmax holds an index outside its own image of x_shape %s; "
                           "expected the argmax returned by max_pool2d_forward" % (op, x_shape))
    if not _use_c():
        if argmax.size:
            image = x_shape[1] * x_shape[2] * x_shape[3]
            local = argmax.reshape(x_shape[0], -1) - (np.arange(x_shape[0]) * image)[:, None]
            if local.min() < 0 or local.max() >= image:
                raise bad_index
        return reference.max_pool2d_backward(grad_y, argmax, x_shape)
    grad_y, argmax = np.ascontiguousarray(grad_y), np.ascontiguousarray(argmax)
    grad_x = np.empty(x_shape, dtype=dtype)
    geometry = dict(batch=x_shape[0], height=x_shape[1], width=x_shape[2], channels=x_shape[3],
                    out_height=grad_y.shape[1], out_width=grad_y.shape[2])
    status = getattr(_lib, "ag_max_pool2d_backward_" + ("f32" if dtype == np.float32 else "f64"))(
        *_pool_args(geometry, dtype, grad_y, argmax, grad_x))
    if status != 0:
        raise bad_index
    return grad_x


def avg_pool2d_forward(x, kernel_size, stride=None, padding=0, count_include_pad=True):
    """2-D average pooling: x [n, h, w, c] -> y [n, out_h, out_w, c]. Padded cells add
    zero; count_include_pad (PyTorch's default, True) also counts them in the divisor."""
    op = "avg_pool2d_forward"
    x = _as_array(op, "x", x, 4)
    dtype = _check_float(op, x=x)
    geometry, kernel, stride, pads = _pool_geometry(op, x.shape, kernel_size, stride, padding)
    if not _use_c():
        return np.ascontiguousarray(
            reference.avg_pool2d_forward(x, kernel, stride, pads, bool(count_include_pad)))
    x = np.ascontiguousarray(x)
    y = np.empty(_pool_out_shape(geometry), dtype=dtype)
    getattr(_lib, "ag_avg_pool2d_forward_" + ("f32" if dtype == np.float32 else "f64"))(
        *_pool_args(geometry, dtype, x, y), int(bool(count_include_pad)))
    return y


def avg_pool2d_backward(grad_y, x_shape, kernel_size, stride=None, padding=0, count_include_pad=True):
    """Gradient of average pooling: grad_y [n, out_h, out_w, c] -> grad_x [x_shape]."""
    op = "avg_pool2d_backward"
    grad_y = _as_array(op, "grad_y", grad_y, 4)
    dtype = _check_float(op, grad_y=grad_y)
    x_shape = _shape4(op, "x_shape", x_shape)
    geometry, kernel, stride, pads = _pool_geometry(op, x_shape, kernel_size, stride, padding)
    if grad_y.shape != _pool_out_shape(geometry):
        raise ValueError("%s: got grad_y shape %s, expected %s for x_shape %s"
                         % (op, grad_y.shape, _pool_out_shape(geometry), x_shape))
    if not _use_c():
        return np.ascontiguousarray(reference.avg_pool2d_backward(
            grad_y, x_shape, kernel, stride, pads, bool(count_include_pad)))
    grad_y = np.ascontiguousarray(grad_y)
    grad_x = np.empty(x_shape, dtype=dtype)
    getattr(_lib, "ag_avg_pool2d_backward_" + ("f32" if dtype == np.float32 else "f64"))(
        *_pool_args(geometry, dtype, grad_y, grad_x), int(bool(count_include_pad)))
    return grad_x


def _cell_arrays(op, expected, **arrays):
    """Check that each named array is 2-D with the expected shape and one float dtype;
    returns the dtype and C-contiguous copies in the given order."""
    for name, a in arrays.items():
        _as_array(op, name, a, 2)
        if a.shape != expected[name]:
            raise ValueError("%s: got %s shape %s, expected %s" % (op, name, a.shape, expected[name]))
    dtype = _check_float(op, **arrays)
    return dtype, [np.ascontiguousarray(a) for a in arrays.values()]


def _hidden_from(op, name, array, gates):
    _as_array(op, name, array, 2)
    if array.shape[1] % gates != 0:
        raise ValueError("%s: got %s shape %s, expected [batch, %d * hidden]" % (op, name, array.shape, gates))
    return array.shape[0], array.shape[1] // gates


def _cell_call(name, dtype, arrays, batch, hidden):
    ctype = "float *" if dtype == np.float32 else "double *"
    getattr(_lib, name + ("_f32" if dtype == np.float32 else "_f64"))(
        *[_ffi.NULL if a is None else _ptr(a, ctype) for a in arrays], batch, hidden)


def lstm_cell_forward(gates, c_prev):
    """Fused LSTM cell (PyTorch gate order i, f, g, o). gates [b, 4h] are the
    pre-activations x W_ih^T + b_ih + h W_hh^T + b_hh, c_prev [b, h].
    Returns h [b, h], c [b, h], saved [b, 5h] (i, f, g, o activated, tanh(c))."""
    op = "lstm_cell_forward"
    batch, hidden = _hidden_from(op, "gates", gates, 4)
    dtype, (gates, c_prev) = _cell_arrays(op, {"gates": (batch, 4 * hidden), "c_prev": (batch, hidden)},
                                          gates=gates, c_prev=c_prev)
    if not _use_c():
        return reference.lstm_cell_forward(gates, c_prev)
    h = np.empty((batch, hidden), dtype=dtype)
    c = np.empty((batch, hidden), dtype=dtype)
    saved = np.empty((batch, 5 * hidden), dtype=dtype)
    _cell_call("ag_lstm_cell_forward", dtype, [gates, c_prev, h, c, saved], batch, hidden)
    return h, c, saved


def lstm_cell_backward(saved, c_prev, grad_h, grad_c=None):
    """Backward of lstm_cell_forward. saved [b, 5h], c_prev, grad_h, grad_c [b, h]
    (grad_c None means zeros). Returns grad_gates [b, 4h] (w.r.t. the pre-activations)
    and grad_c_prev [b, h]."""
    op = "lstm_cell_backward"
    batch, hidden = _hidden_from(op, "saved", saved, 5)
    arrays = dict(saved=saved, c_prev=c_prev, grad_h=grad_h)
    if grad_c is not None:
        arrays["grad_c"] = grad_c
    expected = {"saved": (batch, 5 * hidden), "c_prev": (batch, hidden), "grad_h": (batch, hidden),
                "grad_c": (batch, hidden)}
    dtype, checked = _cell_arrays(op, expected, **arrays)
    saved, c_prev, grad_h = checked[:3]
    grad_c = checked[3] if grad_c is not None else None
    if not _use_c():
        return reference.lstm_cell_backward(saved, c_prev, grad_h, grad_c)
    grad_gates = np.empty((batch, 4 * hidden), dtype=dtype)
    grad_c_prev = np.empty((batch, hidden), dtype=dtype)
    _cell_call("ag_lstm_cell_backward", dtype, [saved, c_prev, grad_h, grad_c, grad_gates, grad_c_prev],
               batch, hidden)
    return grad_gates, grad_c_prev


def gru_cell_forward(gi, gh, h_prev):
    """Fused GRU cell (PyTorch gate order r, z, n; reset applied after the hidden matmul).
    gi = x W_ih^T + b_ih and gh = h W_hh^T + b_hh are [b, 3h], h_prev [b, h].
    Returns h [b, h] and saved [b, 4h] (r, z, n, gh_n)."""
    op = "gru_cell_forward"
    batch, hidden = _hidden_from(op, "gi", gi, 3)
    dtype, (gi, gh, h_prev) = _cell_arrays(
        op, {"gi": (batch, 3 * hidden), "gh": (batch, 3 * hidden), "h_prev": (batch, hidden)},
        gi=gi, gh=gh, h_prev=h_prev)
    if not _use_c():
        return reference.gru_cell_forward(gi, gh, h_prev)
    h = np.empty((batch, hidden), dtype=dtype)
    saved = np.empty((batch, 4 * hidden), dtype=dtype)
    _cell_call("ag_gru_cell_forward", dtype, [gi, gh, h_prev, h, saved], batch, hidden)
    return h, saved


def gru_cell_backward(saved, h_prev, grad_h):
    """Backward of gru_cell_forward. saved [b, 4h], h_prev and grad_h [b, h].
    Returns grad_gi [b, 3h], grad_gh [b, 3h] and grad_h_prev [b, h]; grad_h_prev is only
    the direct path through z * h_prev (the path through gh is the caller's matmul)."""
    op = "gru_cell_backward"
    batch, hidden = _hidden_from(op, "saved", saved, 4)
    dtype, (saved, h_prev, grad_h) = _cell_arrays(
        op, {"saved": (batch, 4 * hidden), "h_prev": (batch, hidden), "grad_h": (batch, hidden)},
        saved=saved, h_prev=h_prev, grad_h=grad_h)
    if not _use_c():
        return reference.gru_cell_backward(saved, h_prev, grad_h)
    grad_gi = np.empty((batch, 3 * hidden), dtype=dtype)
    grad_gh = np.empty((batch, 3 * hidden), dtype=dtype)
    grad_h_prev = np.empty((batch, hidden), dtype=dtype)
    _cell_call("ag_gru_cell_backward", dtype, [saved, h_prev, grad_h, grad_gi, grad_gh, grad_h_prev],
               batch, hidden)
    return grad_gi, grad_gh, grad_h_prev


# ---- whole LSTM steps (recurrent matmul + cell in one C call) -------------------------
# A recurrent layer makes these calls T times a step each way, so the checks are the
# few comparisons that keep C in bounds, without building dicts or messages unless
# something is wrong.

_ARRAY_CTYPE = {np.dtype(np.float32): "float[]", np.dtype(np.float64): "double[]"}


def _step_pointers(dtype, *arrays):
    """C pointers to C-contiguous arrays of dtype (NULL for None), without _ptr's layout
    test: every array here went through _step_operand or _step_output."""
    ctype, null, from_buffer = _ARRAY_CTYPE[dtype], _ffi.NULL, _ffi.from_buffer
    return [null if a is None else from_buffer(ctype, a) for a in arrays]


def _step_operand(op, name, value, shape, dtype):
    """value as a C-contiguous array of exactly this shape and dtype (a copy only when
    its layout needs one); a TypeError/ValueError naming op and name otherwise."""
    if not isinstance(value, np.ndarray):
        raise TypeError("%s: got %s of type %s, expected a numpy array" % (op, name, type(value).__name__))
    if value.shape != shape or value.dtype != dtype:
        raise ValueError("%s: got %s of shape %s and dtype %s, expected shape %s and dtype %s"
                         % (op, name, value.shape, value.dtype, shape, dtype))
    return value if value.flags.c_contiguous and value.flags.aligned else np.ascontiguousarray(value)


def _step_output(op, name, out, shape, dtype):
    """A new array, or the caller's out after checking that C may write all of it."""
    if out is None:
        return np.empty(shape, dtype=dtype)
    if not (isinstance(out, np.ndarray) and out.shape == shape and out.dtype == dtype
            and out.flags.c_contiguous and out.flags.aligned and out.flags.writeable):
        raise ValueError("%s: %s must be a writeable C-contiguous %s array of shape %s, got %s"
                         % (op, name, dtype, shape, (out.shape, out.dtype) if isinstance(out, np.ndarray)
                            else type(out).__name__))
    return out


def lstm_step_forward(x_gates, h_prev, c_prev, weight_hh_t, h_out=None, c_out=None, saved_out=None, bias=None):
    """One LSTM step: gates = x_gates + h_prev @ weight_hh_t (+ bias [4h]), then
    lstm_cell_forward.

    x_gates [b, 4h] = x W_ih^T + b_ih + b_hh; h_prev [b, h] or None (a zero state: no
    matmul); c_prev [b, h]; weight_hh_t [h, 4h] is W_hh^T (a layer transposes W_hh once
    for all its steps, so the GEMM reads it without transposing). h_out, c_out and
    saved_out, when given, are C-contiguous arrays of the results' shapes to write them
    into (slots of a layer's buffers, reused from call to call: writing to fresh memory
    costs a page fault per 4 KiB, which at batch 100, hidden 128 took as long as the step).
    Returns h [b, h], c [b, h], saved [b, 5h] as lstm_cell_forward does."""
    op = "lstm_step_forward"
    if (not isinstance(weight_hh_t, np.ndarray) or weight_hh_t.ndim != 2
            or weight_hh_t.shape[1] != 4 * weight_hh_t.shape[0]):
        raise ValueError("%s: weight_hh_t must be an array [hidden, 4 * hidden], got %s" % (
            op, weight_hh_t.shape if isinstance(weight_hh_t, np.ndarray) else type(weight_hh_t).__name__))
    hidden, dtype = weight_hh_t.shape[0], weight_hh_t.dtype
    if dtype not in _FLOAT_DTYPES:
        raise TypeError("%s: got weight_hh_t of dtype %s, expected float32 or float64" % (op, dtype))
    batch = x_gates.shape[0] if isinstance(x_gates, np.ndarray) and x_gates.ndim == 2 else -1
    x_gates = _step_operand(op, "x_gates", x_gates, (batch, 4 * hidden), dtype)
    c_prev = _step_operand(op, "c_prev", c_prev, (batch, hidden), dtype)
    if h_prev is not None:
        h_prev = _step_operand(op, "h_prev", h_prev, (batch, hidden), dtype)
    if bias is not None:
        bias = _step_operand(op, "bias", bias, (4 * hidden,), dtype)
    h = _step_output(op, "h_out", h_out, (batch, hidden), dtype)
    c = _step_output(op, "c_out", c_out, (batch, hidden), dtype)
    saved = _step_output(op, "saved_out", saved_out, (batch, 5 * hidden), dtype)
    if not _use_c():
        gates = x_gates if h_prev is None else x_gates + reference.gemm(h_prev, weight_hh_t, False, False)
        gates = gates if bias is None else gates + bias
        h[...], c[...], saved[...] = reference.lstm_cell_forward(gates.astype(dtype, copy=False), c_prev)
        return h, c, saved
    if not (weight_hh_t.flags.c_contiguous and weight_hh_t.flags.aligned):
        weight_hh_t = np.ascontiguousarray(weight_hh_t)
    work = np.empty((batch, 4 * hidden), dtype=dtype) if h_prev is not None else None
    function = _lib.ag_lstm_step_forward_f32 if dtype == np.float32 else _lib.ag_lstm_step_forward_f64
    if batch and hidden:
        x_gates, h_prev, weight_hh_t, bias, c_prev, work, h_ptr, c_ptr, saved_ptr = _step_pointers(
            dtype, x_gates, h_prev, weight_hh_t, bias, c_prev, work, h, c, saved)
        function(x_gates, 4 * hidden, h_prev, weight_hh_t, bias, c_prev, work, h_ptr, c_ptr, saved_ptr, batch, hidden)
    return h, c, saved


def lstm_step_backward(saved, c_prev, grad_h, grad_c, weight_hh, grad_gates_out=None, grad_bias_sum=None):
    """Backward of lstm_step_forward. saved [b, 5h], c_prev, grad_h [b, h], grad_c [b, h]
    or None (zeros); weight_hh [4h, h] or None when h_prev needs no gradient;
    grad_gates_out an optional C-contiguous [b, 4h] array to write grad_gates into.
    grad_bias_sum, optional, is a C-contiguous [rows, 4h] accumulator: the column sums of
    grad_gates are added into it (spread over its rows, one per thread; its total over
    rows is what counts). A layer sums the bias gradient over its steps this way, while
    each step's gradients are still in cache.
    Returns grad_gates [b, 4h] (also the gradient of x_gates), grad_h_prev [b, h] (None
    without weight_hh) and grad_c_prev [b, h]."""
    op = "lstm_step_backward"
    if not isinstance(saved, np.ndarray) or saved.ndim != 2 or saved.shape[1] % 5:
        raise ValueError("%s: saved must be an array [batch, 5 * hidden], got %s" % (
            op, saved.shape if isinstance(saved, np.ndarray) else type(saved).__name__))
    (batch, width), dtype = saved.shape, saved.dtype
    hidden = width // 5
    if dtype not in _FLOAT_DTYPES:
        raise TypeError("%s: got saved of dtype %s, expected float32 or float64" % (op, dtype))
    saved = _step_operand(op, "saved", saved, (batch, width), dtype)
    c_prev = _step_operand(op, "c_prev", c_prev, (batch, hidden), dtype)
    grad_h = _step_operand(op, "grad_h", grad_h, (batch, hidden), dtype)
    if grad_c is not None:
        grad_c = _step_operand(op, "grad_c", grad_c, (batch, hidden), dtype)
    if weight_hh is not None:
        weight_hh = _step_operand(op, "weight_hh", weight_hh, (4 * hidden, hidden), dtype)
    grad_gates = _step_output(op, "grad_gates_out", grad_gates_out, (batch, 4 * hidden), dtype)
    if grad_bias_sum is not None:
        rows = grad_bias_sum.shape[0] if isinstance(grad_bias_sum, np.ndarray) and grad_bias_sum.ndim == 2 else 0
        grad_bias_sum = _step_output(op, "grad_bias_sum", grad_bias_sum, (max(rows, 1), 4 * hidden), dtype)
    if not _use_c():
        grad_gates[...], grad_c_prev = reference.lstm_cell_backward(saved, c_prev, grad_h, grad_c)
        grad_h_prev = None if weight_hh is None else \
            reference.gemm(grad_gates, weight_hh, False, False).astype(dtype, copy=False)
        if grad_bias_sum is not None:
            grad_bias_sum[0] += grad_gates.sum(axis=0)
        return grad_gates, grad_h_prev, grad_c_prev
    grad_h_prev = None if weight_hh is None else np.empty((batch, hidden), dtype=dtype)
    grad_c_prev = np.empty((batch, hidden), dtype=dtype)
    function = _lib.ag_lstm_step_backward_f32 if dtype == np.float32 else _lib.ag_lstm_step_backward_f64
    if batch and hidden:
        function(*_step_pointers(dtype, saved, c_prev, grad_h, grad_c, weight_hh, grad_gates, grad_h_prev,
                                 grad_c_prev, grad_bias_sum),
                 0 if grad_bias_sum is None else grad_bias_sum.shape[0], batch, hidden)
    elif grad_h_prev is not None:
        grad_h_prev.fill(0)
    return grad_gates, grad_h_prev, grad_c_prev


def projection_forward(x, weight, bias=None, out=None):
    """x [n, in] @ weight [m, in]^T + bias [m] (or None) -> [n, m], the input projection
    of a recurrent layer. out, when given, is a C-contiguous [n, m] array to write into
    (a layer reuses one from call to call). The bias is written first and the GEMM adds
    the product to it (beta = 1): one pass over the result, not a GEMM and then another."""
    op = "projection_forward"
    _as_array(op, "x", x, 2)
    _as_array(op, "weight", weight, 2)
    (n, width), m, dtype = x.shape, weight.shape[0], weight.dtype
    if dtype not in _FLOAT_DTYPES or x.dtype != dtype or weight.shape[1] != width:
        raise ValueError("%s: got x %s %s and weight %s %s, expected x [n, %d] of the weight's float dtype"
                         % (op, x.shape, x.dtype, weight.shape, weight.dtype, weight.shape[1]))
    if bias is not None:
        bias = _step_operand(op, "bias", bias, (m,), dtype)
    out = _step_output(op, "out", out, (n, m), dtype)
    if not _use_c() or n == 0 or m == 0 or width == 0:
        out[...] = gemm(x, weight, trans_b=True)
        if bias is not None:
            out += bias
        return out
    x = x if x.flags.c_contiguous and x.flags.aligned else np.ascontiguousarray(x)
    weight = weight if weight.flags.c_contiguous and weight.flags.aligned else np.ascontiguousarray(weight)
    if bias is not None:
        out[...] = bias
    ctype = "float *" if dtype == np.float32 else "double *"
    function = _lib.ag_sgemm if dtype == np.float32 else _lib.ag_dgemm
    function(0, 1, n, m, width, 1.0, _ptr(x, ctype), width, _ptr(weight, ctype), width,
             0.0 if bias is None else 1.0, _ptr(out, ctype), m)
    return out
