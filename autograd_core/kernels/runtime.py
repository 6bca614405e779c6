"""The kernels' runtime: the only module that loads the compiled extension.

It holds the global state the kernels run under (and nothing else): the backend ('c' or
'numpy'), the thread count and, for tests, the SIMD level. Environment variables set
the first two once, at import: AUTOGRAD_CORE_BACKEND=c|numpy, AUTOGRAD_CORE_NUM_THREADS=n.

And the few helpers every kernel family shares, each written once:
  dispatch(c_path, numpy_path, *args)   runs one of the two by the backend in force
  by_dtype(f32_name, f64_name)          {dtype: C function}, looked up once at import
  pointers(*arrays)                     C pointers for a call (NULL for None)
  c_array(array)                        array as C reads it: C-contiguous and aligned
  check_array, check_float, is_integer, check_size (one SIZE_LIMIT)

Threads: cffi's API mode releases the GIL around every C call (documented since cffi
0.3, "C function calls are done with the GIL released"; the generated wrapper brackets
each call with Py_BEGIN_ALLOW_THREADS / Py_END_ALLOW_THREADS), so kernels called from
several Python threads run concurrently. The C kernels keep no shared scratch state.
"""
import contextlib
import os
import warnings

import numpy as np

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
try:  # the extension autograd_core/_kernels*.so is built by `pip install` (csrc/build_kernels.py)
    from .. import _kernels as extension
    lib, ffi = extension.lib, extension.ffi
except ImportError as _error:  # a source checkout that was never built
    extension = lib = ffi = None
    IMPORT_ERROR = _error
else:
    IMPORT_ERROR = None
finally:
    if _SPIN_ADDED:
        for _name in _SPIN_DEFAULT:
            del os.environ[_name]


def extension_available():
    """True when the compiled C extension could be imported."""
    return lib is not None


# ---- backend -----------------------------------------------------------------------------

BACKENDS = ("c", "numpy")


def _initial_backend():
    requested = os.environ.get("AUTOGRAD_CORE_BACKEND", "c").strip().lower()
    if requested not in BACKENDS:
        raise ValueError("AUTOGRAD_CORE_BACKEND: got %r, expected one of %s" % (requested, BACKENDS))
    if requested == "c" and lib is None:
        warnings.warn(
            "autograd_core: the C extension is not built (%s); running on the numpy "
            "reference kernels. Install with `pip install .` to compile csrc/." % IMPORT_ERROR,
            RuntimeWarning, stacklevel=2)
        requested = "numpy"
    return "c" if requested == "c" else "numpy"  # the literals: dispatch compares by identity first


# Read once, at import, so that a kernel call tests one global and nothing more.
_backend = _initial_backend()


def set_backend(name):
    """Choose the kernel backend: 'c' (compiled kernels) or 'numpy' (reference)."""
    global _backend
    if name not in BACKENDS:
        raise ValueError("set_backend: got %r, expected one of %s" % (name, BACKENDS))
    if name == "c" and lib is None:
        raise RuntimeError("set_backend('c'): the C extension is not built (%s)" % IMPORT_ERROR)
    _backend = "c" if name == "c" else "numpy"  # the literals: dispatch compares by identity first


def get_backend():
    """The backend in force: 'c' or 'numpy'."""
    return _backend


@contextlib.contextmanager
def backend(name):
    """Context manager that runs its body with the given backend."""
    global _backend
    previous = _backend
    set_backend(name)
    try:
        yield
    finally:
        _backend = previous


def dispatch(c_path, numpy_path, *args):
    """c_path(*args) under the 'c' backend, numpy_path(*args) under 'numpy'.

    Every kernel chooses this way, after its checks: both paths take the same checked
    arguments, and numpy_path (the reference) sits next to c_path in its family module."""
    return c_path(*args) if _backend == "c" else numpy_path(*args)


# ---- threads -----------------------------------------------------------------------------

def is_integer(value):
    """True for Python and numpy integers, False for bools (which are ints in Python)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


# The most threads the C kernels accept. A fixed constant, not the core count:
# oversubscribing (more threads than cores) is legal and sometimes useful, but each
# thread costs a stack and per-thread scratch in every kernel, and a team of 100,000
# threads exhausts memory inside libgomp, where no Python exception can be raised.
MAX_THREADS = 256


def check_num_threads(value, source="set_num_threads"):
    """value as an int in 1..MAX_THREADS; ValueError naming ``source`` otherwise.

    Text (an environment variable, a command-line argument) is read as a decimal integer
    when ``source`` says where it came from; set_num_threads itself takes ints only.
    Bools, floats and anything out of range are refused."""
    number = value
    if isinstance(value, str) and source != "set_num_threads":
        try:
            number = int(value.strip())
        except ValueError:
            number = None
    if not is_integer(number) or not 1 <= number <= MAX_THREADS:
        raise ValueError("%s: got %r, expected an integer from 1 to %d (MAX_THREADS)"
                         % (source, value, MAX_THREADS))
    return int(number)


def set_num_threads(n):
    """Number of threads the C kernels use: an int from 1 to MAX_THREADS (256)."""
    n = check_num_threads(n)
    if lib is not None:
        lib.ag_set_num_threads(n)


def get_num_threads():
    """Number of threads the C kernels use (1 without the extension or OpenMP)."""
    return int(lib.ag_get_num_threads()) if lib is not None else 1


if os.environ.get("AUTOGRAD_CORE_NUM_THREADS"):  # set and not empty
    set_num_threads(check_num_threads(os.environ["AUTOGRAD_CORE_NUM_THREADS"],
                                      "AUTOGRAD_CORE_NUM_THREADS"))


# ---- the allocator ------------------------------------------------------------------------
# glibc serves a large block (from 128 KiB, a threshold that then moves with what is freed)
# by a fresh mmap and returns it to the system on free, so an array of a training step's
# size is new memory every step, and touching it page-faults page by page. Fixed
# thresholds keep blocks below 32 MiB in the heap, reused from step to step, and return
# freed memory to the system only beyond 128 MiB at the heap's top. Measured on the 2-core
# development machine, the GPT of train-lm --arch gpt (4 layers, 128 channels, batch 12):
# 47.5 -> 40.5 ms a step (medians of 3 alternated processes). Set once at import, on
# glibc only, unless the user set glibc's own MALLOC_* variables; AUTOGRAD_CORE_MALLOC_TUNING=0
# leaves the allocator alone. (It applies to the whole process, as the thread count does.)
_MALLOC_SETTINGS = ((-3, 32 << 20), (-1, 128 << 20))  # (M_MMAP_THRESHOLD, M_TRIM_THRESHOLD)


def _tune_allocator():
    """Apply _MALLOC_SETTINGS with mallopt; returns whether it did."""
    import ctypes
    import platform

    if os.environ.get("AUTOGRAD_CORE_MALLOC_TUNING", "1") == "0" \
            or any(name.startswith("MALLOC_") for name in os.environ) \
            or platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return all(mallopt(option, value) == 1 for option, value in _MALLOC_SETTINGS)


ALLOCATOR_TUNED = _tune_allocator()


# ---- SIMD level --------------------------------------------------------------------------
# SIMD paths of the C kernels; the best one the CPU supports is used unless a test forces
# a lower one to exercise it.
SIMD_LEVELS = {0: "portable C", 1: "AVX2+FMA", 2: "AVX-512F"}


def cpu_simd_level():
    """Best SIMD level this CPU supports: 0 portable C, 1 AVX2+FMA, 2 AVX-512F
    (0 without the extension)."""
    return int(lib.ag_cpu_simd_level()) if lib is not None else 0


def get_simd_level():
    """SIMD level the C kernels use now (see cpu_simd_level)."""
    return int(lib.ag_get_simd_level()) if lib is not None else 0


def set_simd_level(level):
    """Force the C kernels onto SIMD level 0, 1 or 2, or None for the CPU's best.
    Raises ValueError for a level this CPU cannot run. Returns the level in use."""
    if level is None:
        level = -1
    elif not is_integer(level) or level not in SIMD_LEVELS:
        raise ValueError("set_simd_level: got %r, expected None or one of %s" % (level, sorted(SIMD_LEVELS)))
    elif level > cpu_simd_level():
        raise ValueError("set_simd_level: got %d (%s), but this CPU supports at most %d (%s)"
                         % (level, SIMD_LEVELS[level], cpu_simd_level(), SIMD_LEVELS[cpu_simd_level()]))
    if lib is None:
        return 0
    return int(lib.ag_set_simd_level(int(level)))


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


# ---- the C call: functions by dtype, pointers --------------------------------------------

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def by_dtype(f32_name, f64_name):
    """{float32: lib.<f32_name>, float64: lib.<f64_name>}: the one way a kernel picks its
    C function, looked up once at import (a call indexes a dict by the array's dtype).
    Empty without the extension, where only the numpy paths run."""
    if lib is None:
        return {}
    return {FLOAT_DTYPES[0]: getattr(lib, f32_name), FLOAT_DTYPES[1]: getattr(lib, f64_name)}


_C_ARRAY_TYPE = {FLOAT_DTYPES[0]: "float[]", FLOAT_DTYPES[1]: "double[]", np.dtype(np.int64): "int64_t[]"}
_C_POINTER_TYPE = {dtype: name.replace("[]", " *") for dtype, name in _C_ARRAY_TYPE.items()}


def pointers(*arrays):
    """C pointers to the first elements of float32, float64 or int64 arrays (NULL for
    None), in order. The arrays must outlive the C call.

    A C-contiguous array goes through ffi.from_buffer (~10x cheaper than array.ctypes),
    without a layout test first: numpy refuses that buffer for any other layout (a
    strided view GEMM reads in place), which then goes through its data address."""
    result = []
    for array in arrays:
        if array is None:
            result.append(ffi.NULL)
            continue
        try:
            result.append(ffi.from_buffer(_C_ARRAY_TYPE[array.dtype], array))
        except (ValueError, BufferError):
            result.append(ffi.cast(_C_POINTER_TYPE[array.dtype], array.ctypes.data))
    return result


def c_array(array):
    """array itself when C may read it as is (C-contiguous and aligned for its dtype), else
    a C-contiguous aligned copy.

    Not np.ascontiguousarray: it returns a C-contiguous array that is misaligned (a float64
    view 4 bytes into a bytes buffer) unchanged, and C would then read every element through
    a misaligned pointer (undefined behaviour; vector code that assumes element alignment
    can fault)."""
    if array.flags.c_contiguous and array.flags.aligned:
        return array
    return np.array(array, order="C", copy=True)


# ---- argument checks ---------------------------------------------------------------------

# Every size, offset and index the C kernels compute stays below this, so their int64
# arithmetic never overflows.
SIZE_LIMIT = 2 ** 62


def check_size(op, what, *factors):
    """The product of factors (the element count of `what`); ValueError naming op unless
    it is below SIZE_LIMIT."""
    size = 1
    for factor in factors:
        size *= int(factor)
    if size >= SIZE_LIMIT:
        raise ValueError("%s: %s would have %d elements, expected fewer than 2**62" % (op, what, size))
    return size


def check_array(op, name, value, ndim):
    """value itself when it is a numpy array of ndim dimensions; TypeError or ValueError
    naming op, name and what it got otherwise."""
    if not isinstance(value, np.ndarray):
        raise TypeError("%s: got %s of type %s, expected a numpy.ndarray" % (op, name, type(value).__name__))
    if value.ndim != ndim:
        raise ValueError("%s: got %s with shape %s, expected %d dimensions" % (op, name, value.shape, ndim))
    return value


def check_float(op, **arrays):
    """The one dtype of the named arrays, which must be all float32 or all float64;
    TypeError listing every array's dtype otherwise."""
    dtypes = {name: array.dtype for name, array in arrays.items()}
    first = next(iter(dtypes.values()))
    if first not in FLOAT_DTYPES or any(dtype != first for dtype in dtypes.values()):
        raise TypeError("%s: got dtypes %s, expected all float32 or all float64" % (
            op, ", ".join("%s=%s" % item for item in dtypes.items())))
    return first
