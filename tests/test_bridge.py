"""The kernel bridge's own behaviour: backend switching, environment variables, thread
and SIMD setters, and the errors it raises before anything reaches C."""
import os
import subprocess
import sys

import numpy as np
import pytest

from autograd_core import kernels

needs_extension = pytest.mark.skipif(not kernels.extension_available(), reason="C extension not built")


def _run_python(code, **environment):
    """Runs code in a fresh interpreter (module import reads the environment once)."""
    env = dict(os.environ, **environment)
    completed = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    return completed.returncode, completed.stdout.strip(), completed.stderr


# ---- backend ---------------------------------------------------------------------------

def test_backend_context_manager_restores_previous():
    before = kernels.get_backend()
    with kernels.backend("numpy"):
        assert kernels.get_backend() == "numpy"
        if kernels.extension_available():
            with kernels.backend("c"):
                assert kernels.get_backend() == "c"
            assert kernels.get_backend() == "numpy"
    assert kernels.get_backend() == before


def test_backend_restored_after_exception():
    before = kernels.get_backend()
    with pytest.raises(RuntimeError, match="inside"):
        with kernels.backend("numpy"):
            raise RuntimeError("inside")
    assert kernels.get_backend() == before


def test_set_backend_rejects_unknown_names():
    with pytest.raises(ValueError, match="set_backend: got 'fortran'"):
        kernels.set_backend("fortran")


@needs_extension
def test_backends_agree():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((13, 17)).astype(np.float32)
    b = rng.standard_normal((17, 11)).astype(np.float32)
    with kernels.backend("c"):
        from_c = kernels.gemm(a, b)
    with kernels.backend("numpy"):
        from_numpy = kernels.gemm(a, b)
    assert from_c.dtype == from_numpy.dtype == np.float32
    np.testing.assert_allclose(from_c, from_numpy, rtol=1e-5, atol=1e-5)


def test_numpy_backend_gemm_keeps_dtype_and_layout():
    a = np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3))
    b = np.arange(12, dtype=np.float32).reshape(3, 4)
    with kernels.backend("numpy"):
        result = kernels.gemm(a, b)
        batched = kernels.batched_gemm(a[None], b[None], trans_a=False)
    assert result.dtype == np.float32 and result.flags.c_contiguous
    np.testing.assert_array_equal(result, a @ b)
    np.testing.assert_array_equal(batched[0], a @ b)


def test_environment_selects_backend():
    code = "from autograd_core import kernels; print(kernels.get_backend())"
    returncode, out, err = _run_python(code, AUTOGRAD_CORE_BACKEND="numpy")
    assert returncode == 0, err
    assert out == "numpy"
    returncode, out, err = _run_python(code, AUTOGRAD_CORE_BACKEND="cuda")
    assert returncode != 0 and "AUTOGRAD_CORE_BACKEND: got 'cuda'" in err


# ---- threads ---------------------------------------------------------------------------

def test_set_num_threads_validates():
    for bad in (0, -1, 1.5, "2", True, None):
        with pytest.raises(ValueError, match="set_num_threads: got"):
            kernels.set_num_threads(bad)


@needs_extension
def test_num_threads_round_trip():
    previous = kernels.get_num_threads()
    try:
        kernels.set_num_threads(1)
        assert kernels.get_num_threads() == 1
        kernels.set_num_threads(np.int64(2))
        expected = 2 if kernels._lib.ag_has_openmp() else 1
        assert kernels.get_num_threads() == expected
    finally:
        kernels.set_num_threads(previous)


@needs_extension
def test_environment_sets_threads():
    code = "from autograd_core import kernels; print(kernels.get_num_threads())"
    returncode, out, err = _run_python(code, AUTOGRAD_CORE_NUM_THREADS="1")
    assert returncode == 0, err
    assert out == "1"
    returncode, out, err = _run_python(code, AUTOGRAD_CORE_NUM_THREADS="many")
    assert returncode != 0 and "AUTOGRAD_CORE_NUM_THREADS: got 'many'" in err


# ---- SIMD level ------------------------------------------------------------------------

@needs_extension
def test_simd_level_setters():
    best = kernels.cpu_simd_level()
    assert best in kernels.SIMD_LEVELS
    assert kernels.get_simd_level() == best
    for level in range(best + 1):
        with kernels.simd_level(level):
            assert kernels.get_simd_level() == level
        assert kernels.get_simd_level() == best
    with kernels.simd_level(0):
        with kernels.simd_level(best):
            assert kernels.get_simd_level() == best
        assert kernels.get_simd_level() == 0  # nested contexts restore the outer level
    assert kernels.get_simd_level() == best
    assert kernels.set_simd_level(0) == 0
    assert kernels.set_simd_level(None) == best


def test_simd_level_validates():
    for bad in (-1, 3, 1.0, "avx2", True):
        with pytest.raises(ValueError, match="set_simd_level: got"):
            kernels.set_simd_level(bad)
    if kernels.cpu_simd_level() < 2:
        with pytest.raises(ValueError, match="this CPU supports at most"):
            kernels.set_simd_level(2)


# ---- gemm argument errors --------------------------------------------------------------

@pytest.mark.parametrize("backend_name", ["c", "numpy"])
def test_gemm_errors(backend_name):
    if backend_name == "c" and not kernels.extension_available():
        pytest.skip("C extension not built")
    f32 = np.ones((3, 4), dtype=np.float32)
    with kernels.backend(backend_name):
        with pytest.raises(ValueError, match=r"gemm: got a with shape \(3,\), expected a 2-D array"):
            kernels.gemm(np.ones(3, dtype=np.float32), f32)
        with pytest.raises(TypeError, match="gemm: got list for b, expected a numpy.ndarray"):
            kernels.gemm(f32, [[1.0]])
        with pytest.raises(TypeError, match="gemm: got dtypes a=float32, b=float64, expected all float32"):
            kernels.gemm(f32, np.ones((4, 2)))
        with pytest.raises(TypeError, match="gemm: got dtypes a=int64, b=int64"):
            kernels.gemm(np.ones((3, 4), dtype=np.int64), np.ones((4, 2), dtype=np.int64))
        with pytest.raises(ValueError, match=r"gemm: inner dimensions differ: op\(a\) is \(3, 4\), op\(b\) is \(3, 2\)"):
            kernels.gemm(f32, np.ones((3, 2), dtype=np.float32))
        with pytest.raises(ValueError, match=r"inner dimensions differ: op\(a\) is \(4, 3\)"):
            kernels.gemm(f32, np.ones((4, 2), dtype=np.float32), trans_a=True)
        with pytest.raises(TypeError, match="gemm: got trans_b='yes', expected a bool"):
            kernels.gemm(f32, np.ones((4, 2), dtype=np.float32), trans_b="yes")


def test_batched_gemm_errors():
    a = np.ones((2, 3, 4), dtype=np.float32)
    with pytest.raises(ValueError, match=r"batched_gemm: got b with shape \(4, 5\), expected a 3-D array"):
        kernels.batched_gemm(a, np.ones((4, 5), dtype=np.float32))
    with pytest.raises(ValueError, match=r"batched_gemm: batch sizes differ"):
        kernels.batched_gemm(a, np.ones((3, 4, 5), dtype=np.float32))
    with pytest.raises(ValueError, match=r"batched_gemm: inner dimensions differ"):
        kernels.batched_gemm(a, np.ones((2, 5, 5), dtype=np.float32))
    with pytest.raises(TypeError, match="batched_gemm: got dtypes a=float32, b=float16"):
        kernels.batched_gemm(a, np.ones((2, 4, 5), dtype=np.float16))


@needs_extension
def test_gemm_result_is_fresh_and_inputs_untouched():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((5, 6))
    b = rng.standard_normal((6, 7))
    a_copy, b_copy = a.copy(), b.copy()
    with kernels.backend("c"):
        first = kernels.gemm(a, b)
        second = kernels.gemm(a, b)
    assert first is not second and not np.shares_memory(first, a)
    np.testing.assert_array_equal(a, a_copy)
    np.testing.assert_array_equal(b, b_copy)
    np.testing.assert_array_equal(first, second)  # deterministic for a fixed thread count
