"""What the kernel tests run under, shared by tests/test_gemm_kernels.py, test_conv2d_kernels.py,
test_pool_kernels.py, test_rnn_kernels.py and test_activation_kernels.py: every SIMD level this CPU has, with 1 and 2
threads, on the C backend; and the backends to compare."""
import contextlib

import numpy as np
import pytest

from autograd_core import kernels

needs_c = pytest.mark.skipif(not kernels.extension_available(), reason="C extension not built")

# the numpy reference always; the C kernels when the extension is built
BACKENDS = ["numpy"] + (["c"] if kernels.extension_available() else [])

LEVELS = list(range(kernels.cpu_simd_level() + 1))
CONFIGURATIONS = [pytest.param(level, threads, id="%s-threads%d" % (kernels.SIMD_LEVELS[level], threads))
                  for level in LEVELS for threads in (1, 2)]


@contextlib.contextmanager
def configured(level, threads):
    """Runs the body on the C backend with this SIMD level and thread count, then
    restores the level, the thread count and the backend in force before."""
    previous = kernels.get_num_threads()
    kernels.set_num_threads(threads)
    try:
        with kernels.backend("c"), kernels.simd_level(level):
            assert kernels.get_simd_level() == level
            yield
    finally:
        kernels.set_num_threads(previous)


FLOAT_DTYPES = [np.float32, np.float64]


def on_c(level, threads, fn):
    """fn() on the C backend at this SIMD level and thread count."""
    with configured(level, threads):
        return fn()


def on_numpy(fn):
    """fn() on the numpy reference: the expected result."""
    with kernels.backend("numpy"):
        return fn()


def assert_matches(got, expected, dtype, tolerance):
    """Each array of got (one, or a tuple) equals expected's within tolerance: float
    arrays have the dtype asked for, integer ones (argmax) match exactly, None stays None."""
    got = got if isinstance(got, tuple) else (got,)
    expected = expected if isinstance(expected, tuple) else (expected,)
    assert len(got) == len(expected)
    for actual, wanted in zip(got, expected):
        if wanted is None:
            assert actual is None
            continue
        assert actual.shape == wanted.shape and actual.dtype == wanted.dtype
        if wanted.dtype.kind == "f":
            assert actual.dtype == dtype
            np.testing.assert_allclose(actual, wanted, rtol=tolerance, atol=tolerance)
        else:
            np.testing.assert_array_equal(actual, wanted)


def sum_tolerance(dtype, terms):
    """For sums of `terms` products of O(1) numbers, summed in another order."""
    return 32 * np.finfo(dtype).eps * max(terms, 1) ** 0.5 * 4


def winograd_tolerance(dtype, terms):
    """For a stride-1 5x5 convolution output whose exact value sums `terms` products of
    O(1) numbers, computed by Winograd's F(4x4, 5x5) or F(2x2, 5x5) (csrc/winograd*):
    the transforms (entries up to 21/4 in B^T and 8 in A^T, applied along both axes)
    scale the rounding of the tile's inputs into each output. Measured worst element
    over the Winograd tests' shapes, every SIMD level, both dtypes: 330 eps * sqrt(terms)
    (a direct sum: a few eps * sqrt(terms)); the bound is 3x that, 8x sum_tolerance."""
    return 1024 * np.finfo(dtype).eps * max(terms, 1) ** 0.5


def assert_same_non_finite(got, expected, what=""):
    """got has NaN, +Inf and -Inf exactly where expected has them (compared as masks,
    so a count is reported), and its finite values close to expected's."""
    for name, test in (("NaN", np.isnan), ("+Inf", np.isposinf), ("-Inf", np.isneginf)):
        got_mask, expected_mask = test(got), test(expected)
        assert np.array_equal(got_mask, expected_mask), (
            "%s: %d %s in C, %d in the reference, %d positions differ"
            % (what, got_mask.sum(), name, expected_mask.sum(), (got_mask != expected_mask).sum()))
