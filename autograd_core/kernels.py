"""The kernel bridge: the only module that touches the compiled extension.

Every public function here validates its arguments (shapes, dtypes, contiguity,
sizes) and then runs either the C kernel or the numpy reference in ``reference.py``,
according to the backend in force. C therefore never sees an argument that would
make it read or write out of bounds.

Global state (and nothing else): the backend ('c' or 'numpy') and the thread count.
Environment variables set the initial values:
  AUTOGRAD_CORE_BACKEND=c|numpy, AUTOGRAD_CORE_NUM_THREADS=n.
"""
import contextlib
import os
import warnings

import numpy as np

from . import reference

try:  # the extension is built by `pip install` (csrc/build_kernels.py)
    from . import _kernels as _ext
    _lib, _ffi = _ext.lib, _ext.ffi
except ImportError as _error:  # a source checkout that was never built
    _lib = _ffi = None
    _IMPORT_ERROR = _error
else:
    _IMPORT_ERROR = None

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


def set_num_threads(n):
    """Number of threads the C kernels use (n >= 1)."""
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
        raise ValueError("set_num_threads: got %r, expected an int >= 1" % (n,))
    if _lib is not None:
        _lib.ag_set_num_threads(int(n))


def get_num_threads():
    """Number of threads the C kernels use (1 without the extension or OpenMP)."""
    return int(_lib.ag_get_num_threads()) if _lib is not None else 1


if os.environ.get("AUTOGRAD_CORE_NUM_THREADS"):
    set_num_threads(int(os.environ["AUTOGRAD_CORE_NUM_THREADS"]))


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
    return _ffi.cast(ctype, array.ctypes.data)


def gemm(a, b, trans_a=False, trans_b=False):
    """op(a) @ op(b) for 2-D float arrays: a is [m, k] (or [k, m] when trans_a), b is
    [k, n] (or [n, k] when trans_b). Returns a new C-contiguous [m, n] array."""
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError("gemm: got shapes %s and %s, expected 2-D arrays" % (a.shape, b.shape))
    dtype = _check_float("gemm", a=a, b=b)
    m, k = (a.shape[1], a.shape[0]) if trans_a else a.shape
    k2, n = (b.shape[1], b.shape[0]) if trans_b else b.shape
    if k != k2:
        raise ValueError("gemm: inner dimensions differ: op(a) is %s, op(b) is %s" % ((m, k), (k2, n)))
    if not _use_c():
        return np.ascontiguousarray(reference.gemm(a, b, trans_a, trans_b))
    a = np.ascontiguousarray(a)
    b = np.ascontiguousarray(b)
    c = np.empty((m, n), dtype=dtype)
    if m == 0 or n == 0:
        return c
    if k == 0:
        c.fill(0)
        return c
    if dtype == np.float32:
        _lib.ag_sgemm(int(trans_a), int(trans_b), m, n, k, 1.0, _ptr(a, "float *"), a.shape[1],
                      _ptr(b, "float *"), b.shape[1], 0.0, _ptr(c, "float *"), n)
    else:
        _lib.ag_dgemm(int(trans_a), int(trans_b), m, n, k, 1.0, _ptr(a, "double *"), a.shape[1],
                      _ptr(b, "double *"), b.shape[1], 0.0, _ptr(c, "double *"), n)
    return c
