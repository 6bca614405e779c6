"""erf / erfc kernels (autograd_core/kernels/special.py, csrc/special.c) and the ops that use
them (erf, erfc, exact gelu): C (libm) against the numpy reference (the float64 series and
continued fraction) at 1, 2 and 3 threads, special values, layouts, and bad input.

Tolerances, from the two sides' error bounds:
  float32: 4 ulp. libm's erff / erfcf are within 1-3 ulp (glibc's published ulps table
    lists up to 3 for erfcf on some targets); the reference computes in float64 to 1e-9
    relative and rounds once (<= 0.5 ulp + 0.02 ulp). Measured here: at most 2 ulp.
  float64: 3e-14 relative + 4 ulp. The reference's own bound (kernels/special.py, _BANDS:
    2e-15 relative for erf, 3e-14 for erfc below 1.5 where it is 1 - erf); the ulp term
    covers subnormal results (erfc from x ~ 26.5), where both sides round to the same
    absolute grid. Measured: 78 ulp = 1.2e-14 relative, erfc near 1.43. Against Python's
    math.erf / math.erfc (an independent oracle) the C path is held to 1 ulp.
"""
import contextlib
import math

import numpy as np
import pytest
from kernel_configurations import needs_c

import autograd_core as ag
from autograd_core import kernels
from autograd_core.kernels import special

FLOAT_DTYPES = [np.float32, np.float64]
FUNCTIONS = {"erf": (special.erf, math.erf), "erfc": (special.erfc, math.erfc)}
THREADS = [1, 2, 3]
ULP = {np.dtype(np.float32): 4, np.dtype(np.float64): 4}
RELATIVE = {np.dtype(np.float32): 0.0, np.dtype(np.float64): 3e-14}


@contextlib.contextmanager
def on_c(threads):
    """The body on the C backend with this many threads; the previous settings after."""
    previous = kernels.get_num_threads()
    kernels.set_num_threads(threads)
    try:
        with kernels.backend("c"):
            yield
    finally:
        kernels.set_num_threads(previous)


def _on_numpy(fn, x):
    with kernels.backend("numpy"):
        return fn(x)


def _inputs(dtype):
    """[-30, 30] densely (0 included), normal samples, and the special values: +-0.0,
    +-inf, NaN, the smallest and largest subnormals and the smallest normal. 60 Ki+
    elements, above the C kernel's 16 Ki threading threshold."""
    info = np.finfo(dtype)
    tiny = info.tiny
    smallest = np.nextafter(dtype(0), dtype(1))
    specials = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, smallest, -smallest, tiny, -tiny,
                         tiny - smallest, -(tiny - smallest), tiny * 0.5, 1e-30, -1e-30], dtype=dtype)
    grid = np.linspace(-30, 30, 60001, dtype=np.float64).astype(dtype)  # step 1e-3, 0.0 is element 30000
    normal = np.random.default_rng(0).standard_normal(4099).astype(dtype)
    return np.concatenate([specials, grid, normal])


def _assert_close(got, expected, dtype, ulp=None, relative=None):
    dtype = np.dtype(dtype)
    ulp = ULP[dtype] if ulp is None else ulp
    relative = RELATIVE[dtype] if relative is None else relative
    assert got.dtype == dtype and got.shape == expected.shape
    nan = np.isnan(expected)
    np.testing.assert_array_equal(np.isnan(got), nan)
    wide_got, wide_expected = got[~nan].astype(np.float64), expected[~nan].astype(np.float64)
    spacing = np.spacing(np.abs(expected[~nan])).astype(np.float64)  # one ulp in dtype (a subnormal's at 0)
    error = np.abs(wide_got - wide_expected)
    bound = relative * np.abs(wide_expected) + ulp * spacing
    worst = np.argmax(error - bound) if error.size else 0
    assert np.all(error <= bound), "error %r > bound %r at %r (got %r, expected %r)" % (
        error[worst], bound[worst], worst, wide_got[worst], wide_expected[worst])


@needs_c
@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_c_matches_the_numpy_reference(name, dtype, threads):
    function = FUNCTIONS[name][0]
    x = _inputs(dtype)
    expected = _on_numpy(function, x)
    with on_c(threads):
        got = function(x)
    _assert_close(got, expected, dtype)


@needs_c
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_c_matches_python_math_within_one_ulp(name, dtype):
    """An oracle independent of the reference: math.erf / math.erfc in float64, rounded
    to dtype once (so float32 may be off by the rounding too: 1 ulp + 0.5)."""
    function, exact = FUNCTIONS[name]
    x = _inputs(dtype)[::3]
    expected = np.array([exact(float(value)) for value in x]).astype(dtype)
    with on_c(1):
        got = function(x)
    _assert_close(got, expected, dtype, ulp=1 if dtype == np.float64 else 2, relative=0.0)


@needs_c
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_results_do_not_depend_on_the_thread_count(name, dtype):
    """Each element is computed alone, so 2 and 3 threads give 1 thread's bits (sizes
    around the threshold and odd ones, so shares split unevenly)."""
    function = FUNCTIONS[name][0]
    for size in (16383, 16384, 16385, 50021):
        x = np.random.default_rng(size).uniform(-6, 6, size).astype(dtype)
        with on_c(1):
            single = function(x)
        for threads in (2, 3):
            with on_c(threads):
                np.testing.assert_array_equal(function(x), single)


@pytest.mark.parametrize("backend", ["numpy"] + (["c"] if kernels.extension_available() else []))
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_special_values_on_both_backends(backend, dtype):
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0], dtype=dtype)
    with kernels.backend(backend):
        erf, erfc = special.erf(x), special.erfc(x)
    np.testing.assert_array_equal(erf, np.array([np.nan, 1, -1, 0, 0], dtype=dtype))
    np.testing.assert_array_equal(np.signbit(erf[3:]), [False, True])  # erf(-0.0) is -0.0
    np.testing.assert_array_equal(erfc, np.array([np.nan, 0, 2, 1, 1], dtype=dtype))
    assert erf.dtype == erfc.dtype == dtype


@pytest.mark.parametrize("backend", ["numpy"] + (["c"] if kernels.extension_available() else []))
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_empty_and_zero_dimensional_arrays(backend, dtype):
    with kernels.backend(backend):
        for shape in ((0,), (3, 0, 2)):
            for function in (special.erf, special.erfc):
                out = function(np.empty(shape, dtype=dtype))
                assert out.shape == shape and out.dtype == dtype
        scalar = np.array(0.5, dtype=dtype)
        erf, erfc = special.erf(scalar), special.erfc(scalar)
        assert erf.shape == () and erf.dtype == dtype and erfc.shape == () and erfc.dtype == dtype
        assert abs(float(erf) - math.erf(0.5)) < 1e-6 and abs(float(erfc) - math.erfc(0.5)) < 1e-6
        # a numpy float scalar (what arithmetic on a 0-d array gives) is taken as a 0-d array
        assert special.erf(dtype(0.5)).shape == () and special.erf(dtype(0.5)).dtype == dtype


@needs_c
@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_non_contiguous_and_misaligned_input(dtype, threads):
    """The slice hands C a dense aligned copy: transposed, strided and misaligned views
    give the contiguous input's values in the view's shape, and stay unchanged."""
    base = np.random.default_rng(1).uniform(-5, 5, (257, 130)).astype(dtype)
    itemsize = np.dtype(dtype).itemsize
    raw = np.zeros(base.size * itemsize + 1, dtype=np.uint8)
    misaligned = raw[1:].view(dtype).reshape(base.shape)
    misaligned[...] = base
    assert not misaligned.flags.aligned
    views = [base.T, base[::2, 1::3], base[:, ::-1], misaligned]
    with on_c(threads):
        for function in (special.erf, special.erfc):
            for view in views:
                before = view.copy()
                got = function(view)
                assert got.shape == view.shape and got.flags.c_contiguous
                np.testing.assert_array_equal(got, function(np.ascontiguousarray(view)))
                np.testing.assert_array_equal(view, before)


def test_other_float_dtypes_take_the_reference():
    """float16 has no C kernel: it is computed by the reference (in float64) on either backend."""
    x = np.array([-2.0, -0.5, 0.0, 0.5, 2.0], dtype=np.float16)
    for backend in ["numpy"] + (["c"] if kernels.extension_available() else []):
        with kernels.backend(backend):
            got = special.erf(x)
        assert got.dtype == np.float16
        np.testing.assert_array_equal(got, special.erf_reference(x))


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_bad_input_names_the_kernel(name):
    function = FUNCTIONS[name][0]
    with pytest.raises(TypeError, match=r"%s: got ndarray of dtype int64, expected a numpy.ndarray of a float dtype"
                       % name):
        function(np.arange(3, dtype=np.int64))
    with pytest.raises(TypeError, match=r"%s: got list, expected a numpy.ndarray" % name):
        function([0.5])


@needs_c
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_the_ops_run_on_the_kernels(dtype):
    """erf, erfc and the exact gelu (forward and backward) use the slice: on the C
    backend they give the kernel's values and agree with the numpy backend."""
    values = np.random.default_rng(2).standard_normal((64, 300)).astype(dtype)
    with on_c(2):
        np.testing.assert_array_equal(ag.erf(ag.tensor(values)).numpy(), special.erf(values))
        np.testing.assert_array_equal(ag.erfc(ag.tensor(values)).numpy(), special.erfc(values))
    results = {}
    for backend in ("numpy", "c"):
        with kernels.backend(backend):
            x = ag.tensor(values, requires_grad=True)
            y = ag.gelu(x)
            y.backward(ag.tensor(np.ones_like(values)))
            results[backend] = (y.numpy(), x.grad.numpy())
    # gelu = x Phi(x), Phi = erfc / 2: the kernels' difference scaled by |x| <= ~5, plus
    # the surrounding float arithmetic's rounding
    tolerance = 1e-6 if dtype == np.float32 else 1e-13
    for got, expected in zip(results["c"], results["numpy"]):
        np.testing.assert_allclose(got, expected, rtol=tolerance, atol=tolerance)
