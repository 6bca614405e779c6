"""Every kernel family at every SIMD level the CPU supports, against the numpy reference.

One level, set by kernels.set_simd_level (ag_set_simd_level in C), picks the code of
every family: the GEMM micro-kernels, conv2d's direct kernels, the pooling loops and the
RNN cells' row loops. So on an AVX-512 machine this file runs the portable, AVX2+FMA
and AVX-512F paths of each, at 1 and 2 threads. Sizes are chosen to hit both the vector
bodies and the tails (channel and hidden counts such as 37 and 130 that no vector width
divides; 32 / 48 / 64 channels where conv2d's direct kernels apply), and to be large
enough to open parallel regions at 2 threads. The reference is the same bridge function
run with the numpy backend.
"""
import numpy as np
import pytest

from autograd_core import kernels

pytestmark = pytest.mark.skipif(not kernels.extension_available(), reason="C extension not built")

LEVELS = list(range(kernels.cpu_simd_level() + 1)) if kernels.extension_available() else []
LEVEL_NAMES = {0: "portable", 1: "avx2", 2: "avx512"}
CONFIGURATIONS = [pytest.param(level, threads, id="%s-threads%d" % (LEVEL_NAMES[level], threads))
                  for level in LEVELS for threads in (1, 2)]
DTYPES = [np.float32, np.float64]


def _on(level, threads, fn):
    """fn() with the C backend at this SIMD level and thread count."""
    previous = kernels.get_num_threads()
    kernels.set_num_threads(threads)
    try:
        with kernels.backend("c"), kernels.simd_level(level):
            assert kernels.get_simd_level() == level
            return fn()
    finally:
        kernels.set_num_threads(previous)


def _reference(fn):
    with kernels.backend("numpy"):
        return fn()


def _as_tuple(result):
    return result if isinstance(result, tuple) else (result,)


def _assert_matches(got, expected, dtype, tolerance):
    got, expected = _as_tuple(got), _as_tuple(expected)
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


def _sum_tolerance(dtype, terms):
    """For sums of `terms` products of O(1) numbers, summed in another order."""
    return 32 * np.finfo(dtype).eps * max(terms, 1) ** 0.5 * 4


# ---- GEMM --------------------------------------------------------------------------------
# 67 x 45 x 53 is no multiple of any micro-tile (edge tiles everywhere); 150 x 140 x 130
# passes the threading threshold (128^3 multiply-adds).
GEMM_SHAPES = [(67, 45, 53), (150, 140, 130)]


@pytest.mark.parametrize("level, threads", CONFIGURATIONS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m, n, k", GEMM_SHAPES)
@pytest.mark.parametrize("trans_a, trans_b", [(False, False), (True, True)])
def test_gemm(level, threads, dtype, m, n, k, trans_a, trans_b):
    rng = np.random.default_rng(m + n + k)
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
    expected = _reference(lambda: kernels.gemm(a, b, trans_a, trans_b))
    got = _on(level, threads, lambda: kernels.gemm(a, b, trans_a, trans_b))
    _assert_matches(got, expected, dtype, _sum_tolerance(dtype, k))


# ---- conv2d --------------------------------------------------------------------------------
# (x shape, w shape, stride, padding). 32 -> 48 channels at stride 1 takes the direct
# AVX-512 kernels (all three passes) at level 2, with a 16-channel block and 'same'
# padding; 37 -> 21 channels and stride 2 take im2col + GEMM at every level.
CONV_CASES = [
    pytest.param((4, 12, 11, 32), (3, 3, 32, 48), 1, "same", id="direct-32to48"),
    pytest.param((3, 9, 10, 16), (5, 3, 16, 64), 1, "valid", id="direct-16to64"),
    pytest.param((5, 13, 11, 37), (3, 4, 37, 21), 2, "same", id="im2col-37to21-stride2"),
    pytest.param((6, 10, 10, 3), (1, 1, 3, 40), 1, "valid", id="pointwise"),
]


@pytest.mark.parametrize("level, threads", CONFIGURATIONS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x_shape, w_shape, stride, padding", CONV_CASES)
def test_conv2d(level, threads, dtype, x_shape, w_shape, stride, padding):
    rng = np.random.default_rng(sum(x_shape) + sum(w_shape))
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    y_ref = _reference(lambda: kernels.conv2d_forward(x, w, stride, padding))
    grad_y = rng.standard_normal(y_ref.shape).astype(dtype)
    terms = int(np.prod(w_shape[:3]))
    weight_terms = y_ref.shape[0] * y_ref.shape[1] * y_ref.shape[2]

    def passes():
        return (kernels.conv2d_forward(x, w, stride, padding),
                kernels.conv2d_backward_input(grad_y, w, x_shape, stride, padding),
                kernels.conv2d_backward_weight(x, grad_y, w_shape, stride, padding))

    expected = _reference(passes)
    got = _on(level, threads, passes)
    _assert_matches(got[0], expected[0], dtype, _sum_tolerance(dtype, terms))
    _assert_matches(got[1], expected[1], dtype, _sum_tolerance(dtype, terms))
    _assert_matches(got[2], expected[2], dtype, _sum_tolerance(dtype, weight_terms))


# ---- pooling ---------------------------------------------------------------------------------
# 37 and 40 channels leave tails after 8- and 16-lane vectors; both cases open parallel
# regions at 2 threads.
POOL_CASES = [
    pytest.param((6, 17, 17, 37), 3, 2, 1, id="3x3-stride2-pad1-37ch"),
    pytest.param((5, 16, 14, 40), 2, 2, 0, id="2x2-stride2-40ch"),
]


@pytest.mark.parametrize("level, threads", CONFIGURATIONS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x_shape, kernel, stride, padding", POOL_CASES)
def test_max_pool2d(level, threads, dtype, x_shape, kernel, stride, padding):
    rng = np.random.default_rng(sum(x_shape))
    x = rng.standard_normal(x_shape).astype(dtype)
    x[0, 1, 1, :5] = np.nan  # NaN wins its windows, as in PyTorch

    def passes():
        y, argmax = kernels.max_pool2d_forward(x, kernel, stride, padding)
        grad_y = np.arange(y.size, dtype=dtype).reshape(y.shape) / y.size
        return y, argmax, kernels.max_pool2d_backward(grad_y, argmax, x_shape)

    expected = _reference(passes)
    got = _on(level, threads, passes)
    np.testing.assert_array_equal(got[0], expected[0])  # max is exact, NaN included
    np.testing.assert_array_equal(got[1], expected[1])
    _assert_matches(got[2], expected[2], dtype, _sum_tolerance(dtype, kernel * kernel))


@pytest.mark.parametrize("level, threads", CONFIGURATIONS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x_shape, kernel, stride, padding", POOL_CASES)
@pytest.mark.parametrize("count_include_pad", [True, False])
def test_avg_pool2d(level, threads, dtype, x_shape, kernel, stride, padding, count_include_pad):
    rng = np.random.default_rng(sum(x_shape) + 1)
    x = rng.standard_normal(x_shape).astype(dtype)

    def passes():
        y = kernels.avg_pool2d_forward(x, kernel, stride, padding, count_include_pad)
        grad_y = np.cos(np.arange(y.size, dtype=dtype)).reshape(y.shape)
        return y, kernels.avg_pool2d_backward(grad_y, x_shape, kernel, stride, padding, count_include_pad)

    expected = _reference(passes)
    got = _on(level, threads, passes)
    _assert_matches(got, expected, dtype, _sum_tolerance(dtype, kernel * kernel))


# ---- RNN cells and whole LSTM steps ------------------------------------------------------
# hidden 37 leaves tails after every vector width; 70 x 130 = 9100 elements passes the
# cells' threading threshold (8192).
RNN_SHAPES = [(3, 37), (70, 130)]


def _cell_tolerance(dtype):
    # the float32 cells use a vectorizable exp/tanh within a few ulp of numpy's
    return 2e-6 if dtype == np.float32 else 1e-14


@pytest.mark.parametrize("level, threads", CONFIGURATIONS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch, hidden", RNN_SHAPES)
def test_lstm_cell(level, threads, dtype, batch, hidden):
    rng = np.random.default_rng(batch + hidden)
    gates = (rng.standard_normal((batch, 4 * hidden)) * 2).astype(dtype)
    c_prev = rng.standard_normal((batch, hidden)).astype(dtype)
    grad_h = rng.standard_normal((batch, hidden)).astype(dtype)
    grad_c = rng.standard_normal((batch, hidden)).astype(dtype)

    def passes():
        h, c, saved = kernels.lstm_cell_forward(gates, c_prev)
        return ((h, c, saved) + kernels.lstm_cell_backward(saved, c_prev, grad_h, grad_c)
                + kernels.lstm_cell_backward(saved, c_prev, grad_h, None))

    _assert_matches(_on(level, threads, passes), _reference(passes), dtype, _cell_tolerance(dtype))


@pytest.mark.parametrize("level, threads", CONFIGURATIONS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch, hidden", RNN_SHAPES)
def test_gru_cell(level, threads, dtype, batch, hidden):
    rng = np.random.default_rng(batch + hidden + 1)
    gi = (rng.standard_normal((batch, 3 * hidden)) * 2).astype(dtype)
    gh = (rng.standard_normal((batch, 3 * hidden)) * 2).astype(dtype)
    h_prev = rng.standard_normal((batch, hidden)).astype(dtype)
    grad_h = rng.standard_normal((batch, hidden)).astype(dtype)

    def passes():
        h, saved = kernels.gru_cell_forward(gi, gh, h_prev)
        return (h, saved) + kernels.gru_cell_backward(saved, h_prev, grad_h)

    _assert_matches(_on(level, threads, passes), _reference(passes), dtype, _cell_tolerance(dtype))


@pytest.mark.parametrize("level, threads", CONFIGURATIONS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch, hidden", RNN_SHAPES)
@pytest.mark.parametrize("with_state", [True, False])
def test_lstm_step(level, threads, dtype, batch, hidden, with_state):
    rng = np.random.default_rng(batch + hidden + 2)
    x_gates = rng.standard_normal((batch, 4 * hidden)).astype(dtype)
    h_prev = rng.standard_normal((batch, hidden)).astype(dtype) if with_state else None
    c_prev = rng.standard_normal((batch, hidden)).astype(dtype)
    weight_hh = (rng.standard_normal((4 * hidden, hidden)) / np.sqrt(hidden)).astype(dtype)
    weight_hh_t = np.ascontiguousarray(weight_hh.T)
    bias = rng.standard_normal(4 * hidden).astype(dtype)
    grad_h = rng.standard_normal((batch, hidden)).astype(dtype)
    grad_c = rng.standard_normal((batch, hidden)).astype(dtype)

    def passes():
        h, c, saved = kernels.lstm_step_forward(x_gates, h_prev, c_prev, weight_hh_t, bias=bias)
        # two rows: at 2 threads each thread sums its rows' bias gradient into its own row
        grad_bias_sum = np.zeros((2, 4 * hidden), dtype=dtype)
        back = kernels.lstm_step_backward(saved, c_prev, grad_h, grad_c, weight_hh,
                                          grad_bias_sum=grad_bias_sum)
        return (h, c, saved) + back + (grad_bias_sum.sum(axis=0),)

    tolerance = max(_cell_tolerance(dtype), _sum_tolerance(dtype, 4 * hidden))
    if dtype == np.float32:
        tolerance = 1e-5 * np.sqrt(batch)  # the bias gradient sums `batch` rows
    _assert_matches(_on(level, threads, passes), _reference(passes), dtype, tolerance)


def test_every_level_is_exercised():
    """The CPU's best level and the portable one are both in the table above: the
    portable paths of every family run even on a machine with AVX-512."""
    assert LEVELS[0] == 0 and LEVELS[-1] == kernels.cpu_simd_level()
    assert {configuration.values[0] for configuration in CONFIGURATIONS} == set(LEVELS)
