"""The C GEMM against a float64 numpy reference, on every SIMD path this CPU has, with
1 and 2 threads: sizes around the register tiles and cache blocks, transposes, leading
dimensions (sub-views), alpha/beta (through a direct lib call), float32 and float64.
The bridge-level tests cover views read in place, copies, batched_gemm, the numpy
reference against C, and the errors raised before anything reaches C."""
import threading

import numpy as np
import pytest
from hypothesis import given, strategies as st
from kernel_configurations import (BACKENDS, CONFIGURATIONS, FLOAT_DTYPES, assert_matches, configured, needs_c,
                                   on_c, on_numpy, sum_tolerance)

from autograd_core import kernels
from autograd_core.kernels import runtime
from autograd_core.kernels.gemm import batch_layout, matrix_layout


# Sizes that land on and around the register tiles (mr 4/6/12, nr 8/16/32), the row
# block mc (96..144), the depth block kc (256, 512) and the column block nc (512, 4096).
EDGE_SIZES = [1, 2, 3, 5, 7, 11, 12, 13, 17, 31, 32, 33, 47, 95, 97, 191, 193, 255, 257, 513]


def _pointer(array):
    ctype = "float *" if array.dtype == np.float32 else "double *"
    return runtime.ffi.cast(ctype, array.ctypes.data)


def _embedded(rng, rows, cols, pad, dtype, fill=None):
    """A rows x cols view into a buffer with `pad` extra columns (ld = cols + pad) and one
    extra row, so reads or writes past the view would show in (or come from) the margin."""
    ld = max(cols + pad, 1)
    buffer = rng.standard_normal((rows + 1, ld)).astype(dtype) if fill is None \
        else np.full((rows + 1, ld), fill, dtype=dtype)
    return buffer, buffer[:rows, :cols], ld


def _lib_gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
    function = runtime.lib.ag_sgemm if c.dtype == np.float32 else runtime.lib.ag_dgemm
    function(int(trans_a), int(trans_b), m, n, k, alpha, _pointer(a), lda, _pointer(b), ldb,
             beta, _pointer(c), ldc)


def _assert_close(result, op_a, op_b, alpha=1.0, beta=0.0, c0=None):
    """|result - exact| within a rounding bound that grows with k, element by element."""
    a64, b64 = op_a.astype(np.float64), op_b.astype(np.float64)
    expected = alpha * (a64 @ b64)
    magnitude = abs(alpha) * (np.abs(a64) @ np.abs(b64))
    if c0 is not None and beta != 0:
        expected += beta * c0.astype(np.float64)
        magnitude += abs(beta) * np.abs(c0.astype(np.float64))
    k = op_a.shape[1]
    eps = np.finfo(result.dtype).eps
    bound = 4 * eps * (k + 2) * magnitude + np.finfo(result.dtype).tiny
    error = np.abs(result.astype(np.float64) - expected)
    assert np.all(error <= bound), "max error %g, at bound %g" % (error.max(), bound.flat[np.argmax(error - bound)])


def _run_case(rng, dtype, m, n, k, trans_a, trans_b, pad_a, pad_b, pad_c, alpha, beta):
    """One direct ag_?gemm call on embedded views; checks C and that no margin changed."""
    a_rows, a_cols = (k, m) if trans_a else (m, k)
    b_rows, b_cols = (n, k) if trans_b else (k, n)
    a_buffer, a, lda = _embedded(rng, a_rows, a_cols, pad_a, dtype)
    b_buffer, b, ldb = _embedded(rng, b_rows, b_cols, pad_b, dtype)
    if beta == 0:  # C must not be read: NaN would leak into the result
        c_buffer, c, ldc = _embedded(rng, m, n, pad_c, dtype, fill=np.nan)
        c_buffer[:m, n:] = 7.0
        c_buffer[m:] = 7.0
    else:
        c_buffer, c, ldc = _embedded(rng, m, n, pad_c, dtype)
    c0 = c.copy()
    margin = c_buffer.copy()
    margin[:m, :n] = 0
    _lib_gemm(trans_a, trans_b, m, n, k, alpha, a_buffer, lda, b_buffer, ldb, beta, c_buffer, ldc)
    op_a = a.T if trans_a else a
    op_b = b.T if trans_b else b
    _assert_close(c, op_a, op_b, alpha, beta, c0)
    after = c_buffer.copy()
    after[:m, :n] = 0
    np.testing.assert_array_equal(after, margin)  # nothing written outside C


sizes = st.one_of(st.integers(1, 40), st.sampled_from(EDGE_SIZES))


@needs_c
@pytest.mark.parametrize("level, threads", CONFIGURATIONS)
@given(data=st.data(), m=sizes, n=sizes, k=sizes, trans_a=st.booleans(), trans_b=st.booleans(),
       dtype=st.sampled_from(FLOAT_DTYPES), pads=st.tuples(*[st.sampled_from([0, 1, 3, 16])] * 3),
       alpha=st.sampled_from([1.0, -0.5, 2.0]), beta=st.sampled_from([0.0, 1.0, -1.5]))
def test_gemm_matches_reference(level, threads, data, m, n, k, trans_a, trans_b, dtype, pads, alpha, beta):
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1), label="seed"))
    with configured(level, threads):
        _run_case(rng, dtype, m, n, k, trans_a, trans_b, *pads, alpha, beta)


@needs_c
@pytest.mark.parametrize("level, threads", CONFIGURATIONS)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("m, n, k", [
    (1, 1, 1), (1, 33, 1), (33, 1, 1), (1, 1, 600),   # vectors and a long dot product
    (385, 70, 600),                                      # several row and depth blocks
    (3, 4100, 5),                                        # more columns than one B panel
    (200, 64, 257),                                      # one past a depth block
    (5, 2000, 300),                                      # one row block: threads split columns
    (20, 4100, 40),                                      # threaded, more columns than one B panel
    (777, 96, 300),                                      # row blocks of unequal micro-panel counts
    (64, 300, 700),                                      # unit path by column chunks, two depth blocks
    (1040, 1100, 530),                                   # both sides big: the shared-panel path
    (100, 20, 512), (21, 17, 40), (13, 24, 9),           # 17..24 columns: the 12 x 24 AVX-512 tile
    (64, 300, 100), (130, 75, 40),                       # small B read in place, its last panel packed
    (100, 10, 1024), (1030, 16, 600), (5, 3, 700),       # at most 16 columns: A (and B) read in place
    (32, 32, 32), (64, 64, 64), (128, 128, 128),         # the small path: nothing packed but B^T
    (8, 100, 100), (30, 60, 200), (16, 2, 1000),         # ... B^T packed beyond the stack buffer; deep
    (101, 100, 100),                                     # ... threaded by rows, a last shorter block
])
def test_gemm_across_blocks(level, threads, dtype, m, n, k):
    rng = np.random.default_rng(m * 7919 + n * 31 + k)
    with configured(level, threads):
        for trans_a, trans_b in ((False, False), (True, True)):
            _run_case(rng, dtype, m, n, k, trans_a, trans_b, 3, 1, 2, 1.5, -1.0)


@needs_c
@pytest.mark.parametrize("level, threads", CONFIGURATIONS)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_degenerate_sizes(level, threads, dtype):
    with configured(level, threads):
        _check_degenerate_sizes(dtype)


def _check_degenerate_sizes(dtype):
    rng = np.random.default_rng(1)
    # k == 0: C = beta * C (and zero, not NaN, when beta == 0)
    _run_case(rng, dtype, 5, 6, 0, False, False, 1, 1, 1, 1.0, 2.0)
    _run_case(rng, dtype, 5, 6, 0, True, False, 1, 1, 1, 1.0, 0.0)
    # alpha == 0: the product is skipped, C still scaled
    _run_case(rng, dtype, 9, 4, 3, False, True, 0, 0, 0, 0.0, -1.0)
    # m == 0 or n == 0: nothing to touch
    for m, n in ((0, 5), (5, 0)):
        c = np.full((max(m, 1), max(n, 1)), 3.0, dtype=dtype)
        a = np.ones((max(m, 1), 4), dtype=dtype)
        b = np.ones((4, max(n, 1)), dtype=dtype)
        _lib_gemm(False, False, m, n, 4, 1.0, a, 4, b, max(n, 1), 0.0, c, max(n, 1))
        assert np.all(c == 3.0)


@needs_c
@pytest.mark.parametrize("level, threads", CONFIGURATIONS)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_bridge_gemm_views(level, threads, dtype):
    """Views the bridge reads in place (transposed, row-strided, Fortran-ordered) and
    ones it must copy (column-strided, negative strides) all give op(a) @ op(b)."""
    rng = np.random.default_rng(2)
    base = rng.standard_normal((70, 90)).astype(dtype)
    other = rng.standard_normal((90, 70)).astype(dtype)
    cases = [
        (base[:40, :30], other[:30, :20], False, False),
        (base[:40, :30].T, other[:30, :20], True, False),          # transposed view
        (np.asfortranarray(base[:40, :30]), other[:30, :20], False, False),
        (base[5:45, 10:40], other[:20, 3:33], False, True),        # row-strided views
        (base[:40, :60:2], other[:30, :20], False, False),          # column step: copied
        (base[::-1, :30], other[:30, :20], False, False),           # negative stride: copied
        (base[:1, :30], other[:30, 5:6], False, False),             # a row times a column
    ]
    for a, b, trans_a, trans_b in cases:
        with configured(level, threads):
            result = kernels.gemm(a, b, trans_a=trans_a, trans_b=trans_b)
        assert result.shape == ((a.T if trans_a else a).shape[0], (b.T if trans_b else b).shape[1])
        assert result.flags.c_contiguous and result.dtype == dtype
        _assert_close(result, a.T if trans_a else a, b.T if trans_b else b)


def test_views_are_not_copied():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((6, 8)).astype(np.float32)
    fortran = np.asfortranarray(a)
    array, trans, ld = matrix_layout(fortran, False)
    assert array is fortran and trans is True and ld == 6
    rows = np.zeros((10, 20), dtype=np.float32)[2:8, 4:12]
    array, trans, ld = matrix_layout(rows, True)
    assert array is rows and trans is True and ld == 20
    strided = a[:, ::2]
    array, trans, ld = matrix_layout(strided, False)
    assert array is not strided and array.flags.c_contiguous and ld == 4
    stack = np.broadcast_to(a, (5, 6, 8))
    array, trans, ld, stride = batch_layout(stack, False)
    assert array is stack and stride == 0 and ld == 8 and trans is False


@needs_c
@pytest.mark.parametrize("level, threads", CONFIGURATIONS)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("batch, m, n, k", [
    (1, 3, 4, 5), (9, 7, 5, 3), (3, 1, 1, 1),
    (4, 70, 80, 90),     # small products, one after another
    (40, 40, 41, 39),    # small products spread over the threads across the batch
    (2, 150, 130, 140),  # products threaded on their own
    (5, 13, 32, 20), (3, 9, 16, 7), (2, 5, 8, 70),  # n == nr of some path: B read in place unpacked
    (2, 5, 32, 600), (2, 3, 16, 600), (2, 4, 8, 600),  # ... over several depth blocks
    (64, 32, 32, 32), (37, 13, 33, 17),  # the small path, products claimed in groups (and a last short group)
])
def test_batched_gemm(level, threads, dtype, batch, m, n, k):
    rng = np.random.default_rng(batch + m + n + k)
    a = rng.standard_normal((batch, m, k)).astype(dtype)
    b = rng.standard_normal((batch, k, n)).astype(dtype)
    shared_b = np.broadcast_to(b[0], b.shape)   # stride-0 batch axis, as matmul broadcasting makes
    cases = [(a, b, False, False), (np.swapaxes(a, 1, 2), b, True, False),
             (a, np.swapaxes(b, 1, 2).copy(), False, True), (a, shared_b, False, False),
             (np.swapaxes(a, 1, 2).copy(), np.swapaxes(b, 1, 2).copy(), True, True),
             (np.asfortranarray(a), b[:, :, :], False, False)]
    for x, y, trans_a, trans_b in cases:
        with configured(level, threads):
            result = kernels.batched_gemm(x, y, trans_a=trans_a, trans_b=trans_b)
        assert result.shape == (batch, m, n) and result.flags.c_contiguous
        for i in range(batch):
            _assert_close(result[i], x[i].T if trans_a else x[i], y[i].T if trans_b else y[i])


@needs_c
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_read_only_operands(dtype):
    """A read-only operand (np.broadcast_to, a frozen array) leaves gemm's and
    batched_gemm's fast path for the general one, and gives the same product."""
    rng = np.random.default_rng(5)
    a = rng.standard_normal((2, 20, 30)).astype(dtype)
    b = rng.standard_normal((2, 30, 40)).astype(dtype)
    frozen_a, frozen_b = a.copy(), b.copy()
    frozen_a.setflags(write=False)
    frozen_b.setflags(write=False)
    with kernels.backend("c"):
        _assert_close(kernels.gemm(frozen_a[0], frozen_b[0]), a[0], b[0])
        _assert_close(kernels.gemm(frozen_b[1], frozen_a[1], True, True), b[1].T, a[1].T)
        result = kernels.batched_gemm(frozen_a, frozen_b)
    for i in range(2):
        _assert_close(result[i], a[i], b[i])


@needs_c
def test_batched_gemm_empty():
    with kernels.backend("c"):
        a = np.zeros((0, 3, 4), dtype=np.float32)
        assert kernels.batched_gemm(a, np.zeros((0, 4, 5), dtype=np.float32)).shape == (0, 3, 5)
        zero_k = kernels.batched_gemm(np.ones((2, 3, 0)), np.ones((2, 0, 5)))
        assert zero_k.shape == (2, 3, 5) and np.all(zero_k == 0)


@needs_c
def test_concurrent_calls_from_python_threads():
    """The GIL is released around C calls and the kernels share no scratch state, so
    simultaneous calls from several Python threads must each get their own right answer."""
    rng = np.random.default_rng(4)
    operands = [(rng.standard_normal((150, 130)).astype(np.float32),
                 rng.standard_normal((130, 170)).astype(np.float32)) for _ in range(4)]
    results = [None] * len(operands)

    def work(index):
        a, b = operands[index]
        for _ in range(3):
            results[index] = kernels.gemm(a, b)

    with kernels.backend("c"):
        workers = [threading.Thread(target=work, args=(i,)) for i in range(len(operands))]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    for (a, b), result in zip(operands, results):
        _assert_close(result, a, b)


# ---- the numpy reference and the argument checks -------------------------------------------

@needs_c
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
    assert batched.dtype == np.float32 and batched.flags.c_contiguous
    np.testing.assert_array_equal(result, a @ b)
    np.testing.assert_array_equal(batched[0], a @ b)


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_gemm_errors(backend_name):
    f32 = np.ones((3, 4), dtype=np.float32)
    with kernels.backend(backend_name):
        with pytest.raises(ValueError, match=r"gemm: got a with shape \(3,\), expected 2 dimensions"):
            kernels.gemm(np.ones(3, dtype=np.float32), f32)
        with pytest.raises(TypeError, match="gemm: got b of type list, expected a numpy.ndarray"):
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


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_batched_gemm_errors(backend_name):
    a = np.ones((2, 3, 4), dtype=np.float32)
    with kernels.backend(backend_name):
        with pytest.raises(ValueError, match=r"batched_gemm: got b with shape \(4, 5\), expected 3 dimensions"):
            kernels.batched_gemm(a, np.ones((4, 5), dtype=np.float32))
        with pytest.raises(ValueError, match=r"batched_gemm: batch sizes differ"):
            kernels.batched_gemm(a, np.ones((3, 4, 5), dtype=np.float32))
        with pytest.raises(ValueError, match=r"batched_gemm: inner dimensions differ"):
            kernels.batched_gemm(a, np.ones((2, 5, 5), dtype=np.float32))
        with pytest.raises(TypeError, match="batched_gemm: got dtypes a=float32, b=float16"):
            kernels.batched_gemm(a, np.ones((2, 4, 5), dtype=np.float16))


@needs_c
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

# ---- fixed sizes at every SIMD level: vector bodies, tails, parallel regions ----------
# ---- GEMM, --------------------------------------------------------------------------------
# 67 x 45 x 53 is no multiple of any micro-tile (edge tiles everywhere); 150 x 140 x 130
# passes the threading threshold (128^3 multiply-adds).
GEMM_SHAPES = [(67, 45, 53), (150, 140, 130)]


@pytest.mark.parametrize("level, threads", CONFIGURATIONS)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("m, n, k", GEMM_SHAPES)
@pytest.mark.parametrize("trans_a, trans_b", [(False, False), (True, True)])
def test_gemm(level, threads, dtype, m, n, k, trans_a, trans_b):
    rng = np.random.default_rng(m + n + k)
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
    expected = on_numpy(lambda: kernels.gemm(a, b, trans_a, trans_b))
    got = on_c(level, threads, lambda: kernels.gemm(a, b, trans_a, trans_b))
    assert_matches(got, expected, dtype, sum_tolerance(dtype, k))
