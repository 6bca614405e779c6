"""kernels.gemm's C entry (autograd_core._gemm_call, csrc/python/gemm_call.c): it must
answer exactly what the cffi path answers where it takes a call, send every other call
to the general path (which checks, raises and reads views), and be built wherever the
cffi extension is."""
import sys
import threading
import time

import numpy as np
import pytest
from kernel_configurations import CONFIGURATIONS, FLOAT_DTYPES, configured, needs_c

from autograd_core import kernels
from autograd_core.kernels import runtime

gemm_module = sys.modules["autograd_core.kernels.gemm"]
# (m, k, n): tiny, around the register tiles, the small-product path and above the size
# where the GIL is released (2^18 multiply-adds), and empty products
SHAPES = [(1, 1, 1), (3, 5, 7), (13, 17, 11), (64, 64, 64), (70, 70, 70), (130, 33, 97), (0, 3, 4),
          (3, 0, 4), (3, 4, 0)]


def _operands(rng, m, k, n, trans_a, trans_b, dtype):
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
    return a, b


def _general_path(a, b, trans_a, trans_b, monkeypatch):
    """kernels.gemm with the C entry switched off: the cffi path alone."""
    with monkeypatch.context() as patch:
        patch.setattr(gemm_module, "_gemm_call", None)
        return kernels.gemm(a, b, trans_a, trans_b)


@needs_c
def test_the_entry_is_built_and_bound_with_the_extension():
    # setup.py builds it next to the cffi extension; a missing one would silently cost
    # kernels.gemm ~1.4 us a call, so CI must notice.
    assert gemm_module._gemm_call is not None, "autograd_core._gemm_call is not built"


@needs_c
@pytest.mark.parametrize("level, threads", CONFIGURATIONS)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_entry_equals_the_cffi_path_bit_for_bit(level, threads, dtype, monkeypatch):
    rng = np.random.default_rng(7)
    with configured(level, threads):
        for m, k, n in SHAPES:
            for trans_a in (False, True):
                for trans_b in (False, True):
                    a, b = _operands(rng, m, k, n, trans_a, trans_b, dtype)
                    got = gemm_module._gemm_call(a, b, trans_a, trans_b)
                    assert got is not None, (m, k, n, trans_a, trans_b)
                    expected = _general_path(a, b, trans_a, trans_b, monkeypatch)
                    assert got.dtype == dtype and got.shape == (m, n) and got.flags.c_contiguous
                    np.testing.assert_array_equal(got, expected)
                    reference = (a.T if trans_a else a).astype(np.float64) @ (b.T if trans_b else b).astype(np.float64)
                    np.testing.assert_allclose(got, reference, rtol=1e-4, atol=1e-4 * max(k, 1))


def _misaligned(rows, cols):
    raw = np.zeros(rows * cols * 4 + 1, dtype=np.uint8)
    array = raw[1:].view(np.float32).reshape(rows, cols)
    array[...] = np.arange(rows * cols).reshape(rows, cols)
    assert not array.flags.aligned
    return array


class _Subclass(np.ndarray):
    pass


def _sent_on():
    """Calls the C entry must not take: (a, b, trans_a, trans_b, why)."""
    f32 = np.arange(12, dtype=np.float32).reshape(3, 4)
    return [
        (f32[:, :3], f32[:3], False, False, "a row-strided view"),
        (f32.T, f32, False, False, "a transposed view"),
        (f32.astype(">f4"), f32.T.copy(), False, False, "a non-native byte order"),
        (_misaligned(3, 4), f32.T.copy(), False, False, "a misaligned array"),
        (f32.view(_Subclass), f32.T.copy(), False, False, "an ndarray subclass"),
        (f32, f32.astype(np.float64).T.copy(), False, False, "mixed dtypes"),
        (f32.astype(np.float16), f32.T.astype(np.float16), False, False, "float16"),
        (f32, f32, False, np.bool_(True), "a numpy bool flag"),
        (f32, f32, 0, 1, "integer flags"),
        (f32[None], f32.T.copy(), False, False, "3-D a"),
    ]


@needs_c
@pytest.mark.parametrize("case", range(10))
def test_other_calls_take_the_general_path_and_still_compute(case, monkeypatch):
    a, b, trans_a, trans_b, why = _sent_on()[case]
    assert gemm_module._gemm_call(a, b, trans_a, trans_b) is None, why
    if a.ndim != 2 or a.dtype != b.dtype or a.dtype == np.float16:
        with pytest.raises((TypeError, ValueError), match="gemm: got"):
            kernels.gemm(a, b, trans_a, trans_b)
        return
    got = kernels.gemm(a, b, trans_a, trans_b)
    op_a = np.asarray(a).T if trans_a else np.asarray(a)
    op_b = np.asarray(b).T if trans_b else np.asarray(b)
    assert type(got) is np.ndarray and got.dtype == a.dtype
    np.testing.assert_allclose(got, op_a.astype(np.float64) @ op_b.astype(np.float64), rtol=1e-6)


@needs_c
def test_read_only_operands_are_taken():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    b = np.arange(8, dtype=np.float32).reshape(4, 2)
    a.flags.writeable = False
    b.flags.writeable = False
    got = gemm_module._gemm_call(a, b, False, False)
    assert got is not None and got.flags.writeable
    np.testing.assert_array_equal(got, a @ b)


@needs_c
def test_shape_mismatch_is_left_to_the_general_path_error():
    f32 = np.ones((3, 4), dtype=np.float32)
    assert gemm_module._gemm_call(f32, np.ones((3, 2), dtype=np.float32), False, False) is None
    with pytest.raises(ValueError, match=r"gemm: inner dimensions differ: op\(a\) is \(3, 4\), op\(b\) is \(3, 2\)"):
        kernels.gemm(f32, np.ones((3, 2), dtype=np.float32))


@needs_c
def test_the_numpy_backend_does_not_call_the_entry(monkeypatch):
    calls = []
    monkeypatch.setattr(gemm_module, "_gemm_call", lambda *args: calls.append(args))
    a = np.ones((2, 3), dtype=np.float32)
    with kernels.backend("numpy"):
        np.testing.assert_array_equal(kernels.gemm(a, a.T.copy()), np.full((2, 2), 3, dtype=np.float32))
    assert calls == []
    with kernels.backend("c"):
        kernels.gemm(a, a.T.copy())  # the patched entry answers None: the general path computes
    assert len(calls) == 1


@needs_c
def test_bind_and_argument_errors():
    from autograd_core import _gemm_call
    with pytest.raises(ValueError, match="_gemm_call.bind: got one address of zero"):
        _gemm_call.bind(0, 1)
    with pytest.raises(TypeError, match="_gemm_call.gemm: got 2 arguments, expected 4"):
        _gemm_call.gemm(np.ones((1, 1), np.float32), np.ones((1, 1), np.float32))
    a = np.ones((2, 2), dtype=np.float32)
    _gemm_call.bind(0, 0)
    try:
        assert _gemm_call.gemm(a, a, False, False) is None  # unbound: nothing to call
        np.testing.assert_array_equal(kernels.gemm(a, a), np.full((2, 2), 2, dtype=np.float32))
    finally:
        _gemm_call.bind(*(int(runtime.ffi.cast("uintptr_t", runtime.ffi.addressof(runtime.lib, name)))
                          for name in ("ag_sgemm_product", "ag_dgemm_product")))
    assert _gemm_call.gemm(a, a, False, False) is not None


@needs_c
def test_large_products_release_the_gil():
    # Above 2^18 multiply-adds the entry releases the GIL. A thread woken just before a
    # ~10 ms product stamps the time: with the GIL released it runs during the product;
    # held, it could run only once the main thread blocks in join() (the switch interval
    # is raised to 10 s, so the interpreter does not hand the GIL over on its own).
    a = np.random.default_rng(1).standard_normal((1000, 1000)).astype(np.float32)
    previous_interval = sys.getswitchinterval()
    sys.setswitchinterval(10.0)
    try:
        for _ in range(5):  # a loaded machine may not wake the thread in time once
            go, stamps = threading.Event(), []
            worker = threading.Thread(target=lambda: (go.wait(), stamps.append(time.perf_counter())))
            worker.start()
            time.sleep(0.01)  # the worker now waits in go.wait()
            go.set()
            kernels.gemm(a, a)
            end = time.perf_counter()
            worker.join()
            if stamps[0] < end:
                return
    finally:
        sys.setswitchinterval(previous_interval)
    pytest.fail("no other thread ran during five 1000^3 products: the GIL was held")
