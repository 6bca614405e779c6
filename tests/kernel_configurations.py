"""What the kernel tests run under, shared by tests/test_gemm.py, test_conv2d_kernels.py,
test_pool_kernels.py and test_rnn_kernels.py: every SIMD level this CPU has, with 1 and 2
threads, on the C backend; and the backends to compare."""
import contextlib

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
