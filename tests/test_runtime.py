"""The kernels' runtime (autograd_core/kernels/runtime.py): backend switching and
dispatch, environment variables, thread and SIMD setters, the helpers every kernel family
shares (C functions by dtype, pointers, argument checks), and the package's public names."""
import os
import subprocess
import sys

import numpy as np
import pytest

from kernel_configurations import CONFIGURATIONS, LEVELS, needs_c

from autograd_core import kernels
from autograd_core.kernels import runtime

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
    before = kernels.get_backend()
    with pytest.raises(ValueError, match="set_backend: got 'fortran'"):
        kernels.set_backend("fortran")
    with pytest.raises(ValueError, match="set_backend: got 'fortran'"):
        with kernels.backend("fortran"):
            pass
    assert kernels.get_backend() == before


def test_dispatch_follows_the_backend():
    def c_path(*args):
        return "c", args

    def numpy_path(*args):
        return "numpy", args

    for name in ["numpy"] + (["c"] if kernels.extension_available() else []):
        with kernels.backend(name):
            assert runtime.dispatch(c_path, numpy_path, 1, None) == (name, (1, None))


def test_environment_selects_backend():
    code = "from autograd_core import kernels; print(kernels.get_backend())"
    returncode, out, err = _run_python(code, AUTOGRAD_CORE_BACKEND="numpy")
    assert returncode == 0, err
    assert out == "numpy"
    returncode, out, err = _run_python(code, AUTOGRAD_CORE_BACKEND="cuda")
    assert returncode != 0 and "AUTOGRAD_CORE_BACKEND: got 'cuda'" in err


# ---- threads ---------------------------------------------------------------------------

def test_set_num_threads_validates():
    for bad in (0, -1, 1.5, "2", True, None, kernels.MAX_THREADS + 1, 100000, 2 ** 31, 2 ** 64):
        with pytest.raises(ValueError, match=r"set_num_threads: got .*expected an integer from 1 to 256"):
            kernels.set_num_threads(bad)


@needs_extension
def test_thread_bound_agrees_with_c():
    """C clamps to AG_MAX_THREADS, Python refuses beyond MAX_THREADS: the same constant."""
    previous = kernels.get_num_threads()
    try:
        runtime.lib.ag_set_num_threads(100000)
        expected = kernels.MAX_THREADS if runtime.lib.ag_has_openmp() else 1
        assert kernels.get_num_threads() == expected
        kernels.set_num_threads(kernels.MAX_THREADS)
        assert kernels.get_num_threads() == expected
    finally:
        kernels.set_num_threads(previous)


@needs_extension
def test_many_threads_do_not_crash():
    """100,000 threads once crashed pooling with SIGSEGV; the most allowed runs a pool."""
    code = ("import numpy as np, autograd_core as ag\n"
            "from autograd_core import kernels\n"
            "try:\n"
            "    kernels.set_num_threads(100000)\n"
            "except ValueError as error:\n"
            "    print('refused', error)\n"
            "kernels.set_num_threads(kernels.MAX_THREADS)\n"
            "x = ag.tensor(np.ones((2, 8, 8, 3), np.float32), requires_grad=True)\n"
            "y = ag.max_pool2d(x, 2)\n"
            "y.sum().backward()\n"
            "print(float(y.sum()), float(x.grad.sum()))\n")
    returncode, out, err = _run_python(code)
    assert returncode == 0, err
    assert "refused set_num_threads: got 100000" in out
    assert out.splitlines()[-1] == "96.0 96.0"


@needs_extension
def test_num_threads_round_trip():
    previous = kernels.get_num_threads()
    try:
        kernels.set_num_threads(1)
        assert kernels.get_num_threads() == 1
        kernels.set_num_threads(np.int64(2))
        expected = 2 if runtime.lib.ag_has_openmp() else 1
        assert kernels.get_num_threads() == expected
    finally:
        kernels.set_num_threads(previous)


@needs_extension
def test_environment_sets_threads():
    code = "from autograd_core import kernels; print(kernels.get_num_threads())"
    returncode, out, err = _run_python(code, AUTOGRAD_CORE_NUM_THREADS="1")
    assert returncode == 0, err
    assert out == "1"
    for bad in ("many", "0", "-2", "257", "2147483648", "1.5"):
        returncode, out, err = _run_python(code, AUTOGRAD_CORE_NUM_THREADS=bad)
        assert returncode != 0 and f"AUTOGRAD_CORE_NUM_THREADS: got {bad!r}" in err, (bad, err)
    returncode, out, err = _run_python(code, AUTOGRAD_CORE_NUM_THREADS=" 3 ")
    assert returncode == 0, err
    assert out == ("3" if runtime.lib.ag_has_openmp() else "1")


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


# ---- the helpers of the C call -------------------------------------------------------

@needs_extension
def test_by_dtype_picks_the_function_of_each_float_dtype():
    functions = runtime.by_dtype("ag_sgemm", "ag_dgemm")
    assert functions == {np.dtype(np.float32): runtime.lib.ag_sgemm, np.dtype(np.float64): runtime.lib.ag_dgemm}
    with pytest.raises(AttributeError):
        runtime.by_dtype("ag_no_such_kernel_f32", "ag_no_such_kernel_f64")


@needs_extension
def test_pointers_address_first_elements_of_any_layout():
    base = np.arange(24, dtype=np.float64).reshape(4, 6)
    cases = [base, base.T, base[1:3, 2:5], np.arange(5, dtype=np.int64), np.ones(3, np.float32)[::-1]]
    found = runtime.pointers(*cases, None)
    assert found[-1] == runtime.ffi.NULL
    for array, pointer in zip(cases, found):
        assert int(runtime.ffi.cast("uintptr_t", pointer)) == array.__array_interface__["data"][0]
        assert pointer[0] == array.flat[0]


def test_argument_checks_name_the_op_and_what_they_got():
    with pytest.raises(TypeError, match="my_op: got x of type list, expected a numpy.ndarray"):
        runtime.check_array("my_op", "x", [1.0], 1)
    with pytest.raises(ValueError, match=r"my_op: got x with shape \(2, 2\), expected 3 dimensions"):
        runtime.check_array("my_op", "x", np.zeros((2, 2)), 3)
    assert runtime.check_float("my_op", a=np.zeros(1, np.float32), b=np.zeros(2, np.float32)) == np.float32
    with pytest.raises(TypeError, match="my_op: got dtypes a=float64, b=float32, expected all float32 or all float64"):
        runtime.check_float("my_op", a=np.zeros(1), b=np.zeros(1, np.float32))
    assert runtime.check_size("my_op", "the output", 2, 3, 4) == 24
    with pytest.raises(ValueError, match=r"my_op: the output would have 4611686018427387904 elements, "
                                         r"expected fewer than 2\*\*62"):
        runtime.check_size("my_op", "the output", 2 ** 31, 2 ** 31)
    assert runtime.is_integer(3) and runtime.is_integer(np.int32(3))
    assert not runtime.is_integer(True) and not runtime.is_integer(3.0)


def test_package_exports_every_kernel_and_setting():
    names = {"gemm", "batched_gemm", "conv2d_forward", "conv2d_backward_input", "conv2d_backward_weight",
             "max_pool2d_forward", "max_pool2d_backward", "avg_pool2d_forward", "avg_pool2d_backward",
             "lstm_cell_forward", "lstm_cell_backward", "gru_cell_forward", "gru_cell_backward",
             "lstm_step_forward", "lstm_step_backward", "projection_forward", "adam_step", "sgd_step",
             "rmsprop_step", "StepCache", "bias_relu_forward", "relu_bias_backward", "erf", "erfc", "resolve_padding",
             "layer_norm_forward", "layer_norm_backward", "batch_norm_forward", "batch_norm_backward",
             "softmax_forward", "softmax_backward",
             "conv_output_size", "backend", "get_backend", "set_backend", "extension_available",
             "set_num_threads", "get_num_threads", "MAX_THREADS", "SIMD_LEVELS", "cpu_simd_level", "get_simd_level",
             "set_simd_level", "simd_level"}
    assert names == set(kernels.__all__)
    for name in names:
        assert not isinstance(getattr(kernels, name), type(kernels)), name  # not a module
    # the family modules stay reachable by their full names, kernels.gemm is the function
    from autograd_core.kernels.gemm import gemm
    assert kernels.gemm is gemm


@needs_c
def test_every_level_is_exercised():
    """The CPU's best level and the portable one are both in CONFIGURATIONS: the
    portable paths of every family run even on a machine with AVX-512 (the family
    test files compare each level against the numpy reference)."""
    assert LEVELS[0] == 0 and LEVELS[-1] == kernels.cpu_simd_level()
    assert {configuration.values[0] for configuration in CONFIGURATIONS} == set(LEVELS)


@pytest.mark.parametrize("environment, tuned", [({}, True), ({"AUTOGRAD_CORE_MALLOC_TUNING": "0"}, False),
                                                ({"MALLOC_ARENA_MAX": "2"}, False)])
def test_the_allocator_is_tuned_unless_the_user_says_otherwise(environment, tuned):
    import platform

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        pytest.skip("the allocator tuning is glibc's mallopt")
    if tuned and "asan" in os.environ.get("LD_PRELOAD", ""):
        pytest.skip("AddressSanitizer's allocator replaces glibc's: its mallopt takes no thresholds")
    env = {name: value for name, value in os.environ.items()
           if not name.startswith("MALLOC_") and name != "AUTOGRAD_CORE_MALLOC_TUNING"}
    env.update(environment)
    result = subprocess.run([sys.executable, "-c", "from autograd_core.kernels import runtime; "
                             "print(runtime.ALLOCATOR_TUNED)"], env=env, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == str(tuned)
