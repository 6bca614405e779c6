"""conv2d kernels (autograd_core/kernels/conv2d.py, csrc/conv2d*.c): C against the
numpy reference on every SIMD level, the lecture's worked examples, the 'same' padding
rule, 64-byte-aligned outputs, and argument validation."""
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from kernel_configurations import (BACKENDS, CONFIGURATIONS, FLOAT_DTYPES, assert_matches, assert_same_non_finite,
                                   LEVELS, configured, needs_c, on_c, on_numpy, sum_tolerance, winograd_tolerance)

from autograd_core import kernels
from autograd_core.kernels.conv2d import empty_aligned

CI = settings(derandomize=True, deadline=None, max_examples=25)


def _tolerance(dtype, terms):
    """Absolute tolerance for sums of `terms` products of O(1) numbers."""
    eps = np.finfo(dtype).eps
    return 8 * eps * max(terms, 1) ** 0.5 * 4


def _assert_close(actual, expected, dtype, terms, tolerance=None):
    assert actual.shape == expected.shape
    assert actual.dtype == expected.dtype == dtype
    tolerance = _tolerance(dtype, terms) if tolerance is None else tolerance
    np.testing.assert_allclose(actual, expected, rtol=tolerance, atol=tolerance)


def _winograd_or_sum_tolerance(dtype, terms, kernel_hw, stride):
    """All three passes of a stride-1 5x5 convolution may take Winograd
    (csrc/winograd*), whose rounding is that of its transforms (winograd_tolerance);
    every other geometry sums its products directly."""
    if tuple(kernel_hw) == (5, 5) and stride in (1, (1, 1)):
        return winograd_tolerance(dtype, terms)
    return _tolerance(dtype, terms)


paddings = st.one_of(
    st.sampled_from(["same", "valid", "SAME"]),
    st.integers(0, 2),
    st.tuples(st.integers(0, 2), st.integers(0, 2)),
    st.tuples(st.tuples(st.integers(0, 2), st.integers(0, 2)),
              st.tuples(st.integers(0, 2), st.integers(0, 2))),
)


@st.composite
def conv_cases(draw):
    n = draw(st.integers(1, 3))
    height, width = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    in_channels, out_channels = draw(st.integers(1, 4)), draw(st.integers(1, 5))
    kernel_h, kernel_w = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride = draw(st.one_of(st.integers(1, 3), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    padding = draw(paddings)
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    return (n, height, width, in_channels), (kernel_h, kernel_w, in_channels, out_channels), stride, padding, dtype


def _output_ok(x_shape, kernel_hw, stride, padding):
    stride = (stride, stride) if isinstance(stride, int) else stride
    pads = kernels.resolve_padding(padding, x_shape[1:3], kernel_hw, stride)
    return all(kernels.conv_output_size(size, k, s, *p) >= 1
               for size, k, s, p in zip(x_shape[1:3], kernel_hw, stride, pads))


@needs_c
@pytest.mark.parametrize("simd_level, threads", CONFIGURATIONS)
@CI
@given(case=conv_cases(), seed=st.integers(0, 2 ** 16))
def test_conv2d_matches_reference(simd_level, threads, case, seed):
    x_shape, w_shape, stride, padding, dtype = case
    assume(_output_ok(x_shape, w_shape[:2], stride, padding))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    with kernels.backend("numpy"):
        y_ref = kernels.conv2d_forward(x, w, stride, padding)
        grad_y = rng.standard_normal(y_ref.shape).astype(dtype)
        grad_x_ref = kernels.conv2d_backward_input(grad_y, w, x_shape, stride, padding)
        grad_w_ref = kernels.conv2d_backward_weight(x, grad_y, w_shape, stride, padding)
    with configured(simd_level, threads):
        y = kernels.conv2d_forward(x, w, stride, padding)
        grad_x = kernels.conv2d_backward_input(grad_y, w, x_shape, stride, padding)
        grad_w = kernels.conv2d_backward_weight(x, grad_y, w_shape, stride, padding)
    k = w_shape[0] * w_shape[1] * w_shape[2]
    _assert_close(y, y_ref, dtype, k)
    _assert_close(grad_x, grad_x_ref, dtype, w_shape[0] * w_shape[1] * w_shape[3])
    _assert_close(grad_w, grad_w_ref, dtype, y_ref.shape[0] * y_ref.shape[1] * y_ref.shape[2])


@needs_c
@pytest.mark.parametrize("simd_level, threads", CONFIGURATIONS)
@pytest.mark.parametrize("stride, padding", [(1, "same"), (2, "same"), ((2, 1), ((2, 1), (0, 3)))])
def test_conv2d_across_workspace_tiles(simd_level, threads, stride, padding):
    # K = 5*5*48 = 1200 gives tiles of 873 output pixels: boundaries fall inside an image,
    # which exercises the tile bookkeeping of im2col and col2im.
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, 13, 13, 48)).astype(np.float32)
    w = (rng.standard_normal((5, 5, 48, 6)) * 0.1).astype(np.float32)
    with kernels.backend("numpy"):
        y_ref = kernels.conv2d_forward(x, w, stride, padding)
        grad_y = rng.standard_normal(y_ref.shape).astype(np.float32)
        grad_x_ref = kernels.conv2d_backward_input(grad_y, w, x.shape, stride, padding)
        grad_w_ref = kernels.conv2d_backward_weight(x, grad_y, w.shape, stride, padding)
    with configured(simd_level, threads):
        y = kernels.conv2d_forward(x, w, stride, padding)
        grad_x = kernels.conv2d_backward_input(grad_y, w, x.shape, stride, padding)
        grad_w = kernels.conv2d_backward_weight(x, grad_y, w.shape, stride, padding)
    np.testing.assert_allclose(y, y_ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(grad_x, grad_x_ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(grad_w, grad_w_ref, rtol=1e-4, atol=2e-3)


@st.composite
def wide_conv_cases(draw):
    """Channel counts that are multiples of 16: the float32 direct kernel's territory
    (forward and backward weight when c_out is, backward input when c_in is and the
    stride is 1; c_in below 8 takes the weight gradient's merged kw x c_in tiles)."""
    n = draw(st.integers(1, 2))
    height, width = draw(st.integers(1, 15)), draw(st.integers(1, 15))
    in_channels = draw(st.sampled_from([1, 3, 16, 32]))
    out_channels = draw(st.sampled_from([16, 32, 48, 64, 128]))
    kernel_h, kernel_w = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    stride = draw(st.one_of(st.just(1), st.integers(1, 3), st.tuples(st.integers(1, 2), st.integers(1, 3))))
    padding = draw(paddings)
    return (n, height, width, in_channels), (kernel_h, kernel_w, in_channels, out_channels), stride, padding


@needs_c
@pytest.mark.parametrize("simd_level, threads", CONFIGURATIONS)
@CI
@given(case=wide_conv_cases(), seed=st.integers(0, 2 ** 16))
def test_conv2d_wide_channels_match_reference(simd_level, threads, case, seed):
    x_shape, w_shape, stride, padding = case
    assume(_output_ok(x_shape, w_shape[:2], stride, padding))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal(w_shape).astype(np.float32)
    with kernels.backend("numpy"):
        y_ref = kernels.conv2d_forward(x, w, stride, padding)
        grad_y = rng.standard_normal(y_ref.shape).astype(np.float32)
        grad_x_ref = kernels.conv2d_backward_input(grad_y, w, x_shape, stride, padding)
        grad_w_ref = kernels.conv2d_backward_weight(x, grad_y, w_shape, stride, padding)
    with configured(simd_level, threads):
        y = kernels.conv2d_forward(x, w, stride, padding)
        grad_x = kernels.conv2d_backward_input(grad_y, w, x_shape, stride, padding)
        grad_w = kernels.conv2d_backward_weight(x, grad_y, w_shape, stride, padding)
    terms_y, terms_x = w_shape[0] * w_shape[1] * w_shape[2], w_shape[0] * w_shape[1] * w_shape[3]
    _assert_close(y, y_ref, np.float32, terms_y,
                  _winograd_or_sum_tolerance(np.float32, terms_y, w_shape[:2], stride))
    _assert_close(grad_x, grad_x_ref, np.float32, terms_x,
                  _winograd_or_sum_tolerance(np.float32, terms_x, w_shape[:2], stride))
    terms_w = y_ref.shape[0] * y_ref.shape[1] * y_ref.shape[2]
    _assert_close(grad_w, grad_w_ref, np.float32, terms_w,
                  _winograd_or_sum_tolerance(np.float32, terms_w, w_shape[:2], stride))


@needs_c
@pytest.mark.parametrize("simd_level, threads", CONFIGURATIONS)
def test_conv2d_seed_first_layer_weight_gradient_matches_reference(simd_level, threads):
    # The seed CNN's first layer (28x28x1 -> 32, 5x5 'same'): one input channel, so the
    # direct weight gradient merges the kernel columns with the channels (a 5-wide span)
    rng = np.random.default_rng(7)
    x = rng.standard_normal((5, 28, 28, 1)).astype(np.float32)
    grad_y = rng.standard_normal((5, 28, 28, 32)).astype(np.float32)
    with kernels.backend("numpy"):
        grad_w_ref = kernels.conv2d_backward_weight(x, grad_y, (5, 5, 1, 32), 1, "same")
    with configured(simd_level, threads):
        grad_w = kernels.conv2d_backward_weight(x, grad_y, (5, 5, 1, 32), 1, "same")
    _assert_close(grad_w, grad_w_ref, np.float32, 5 * 28 * 28)


def _placed(array, aligned):
    """A copy of array whose data starts on a 64-byte boundary, or 4 bytes past one."""
    if aligned:
        out = empty_aligned(array.shape, array.dtype)
    else:
        raw = empty_aligned((array.size + 1,), array.dtype)
        out = raw[1:].reshape(array.shape)
    out[...] = array
    assert (out.ctypes.data % 64 == 0) == aligned
    return out


@needs_c
@pytest.mark.parametrize("simd_level, threads", CONFIGURATIONS)
@pytest.mark.parametrize("aligned", [True, False], ids=["aligned", "misaligned"])
def test_conv2d_seed_layer_matches_reference(simd_level, threads, aligned):
    # The seed CNN's second layer (14x14x32 -> 64, 5x5 'same'), with more images than the
    # weight gradient's groups of images at two threads, and inputs on and off 64-byte
    # boundaries (a misaligned grad_y is copied before the weight-gradient tiles read it).
    rng = np.random.default_rng(7)
    x = _placed(rng.standard_normal((9, 14, 14, 32)).astype(np.float32), aligned)
    w = _placed(rng.standard_normal((5, 5, 32, 64)).astype(np.float32), aligned)
    grad_y = _placed(rng.standard_normal((9, 14, 14, 64)).astype(np.float32), aligned)
    with kernels.backend("numpy"):
        y_ref = kernels.conv2d_forward(x, w, 1, "same")
        grad_x_ref = kernels.conv2d_backward_input(grad_y, w, x.shape, 1, "same")
        grad_w_ref = kernels.conv2d_backward_weight(x, grad_y, w.shape, 1, "same")
    with configured(simd_level, threads):
        y = kernels.conv2d_forward(x, w, 1, "same")
        grad_x = kernels.conv2d_backward_input(grad_y, w, x.shape, 1, "same")
        grad_w = kernels.conv2d_backward_weight(x, grad_y, w.shape, 1, "same")
        grad_w_again = kernels.conv2d_backward_weight(x, grad_y, w.shape, 1, "same")
    # all three passes: Winograd F(4x4, 5x5) (batch 9 is past its threshold)
    _assert_close(y, y_ref, np.float32, 5 * 5 * 32, winograd_tolerance(np.float32, 5 * 5 * 32))
    _assert_close(grad_x, grad_x_ref, np.float32, 5 * 5 * 64, winograd_tolerance(np.float32, 5 * 5 * 64))
    _assert_close(grad_w, grad_w_ref, np.float32, 9 * 14 * 14, winograd_tolerance(np.float32, 9 * 14 * 14))
    # threads take groups of images in whatever order they get to them; the sum must not
    # depend on that
    np.testing.assert_array_equal(grad_w_again, grad_w)


@needs_c
def test_conv2d_outputs_are_64_byte_aligned():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 6, 6, 16)).astype(np.float32)
    w = rng.standard_normal((3, 3, 16, 32)).astype(np.float32)
    with kernels.backend("c"):
        y = kernels.conv2d_forward(x, w, 1, "same")
        grad_x = kernels.conv2d_backward_input(y, w, x.shape, 1, "same")
        grad_w = kernels.conv2d_backward_weight(x, y, w.shape, 1, "same")
    for array in (y, grad_x, grad_w):
        assert array.ctypes.data % 64 == 0
        assert array.flags.c_contiguous


@needs_c
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv2d_pointwise_path(dtype):
    # 1x1 / stride 1 / no padding skips im2col: x itself is the col matrix.
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 5, 4)).astype(dtype)
    w = rng.standard_normal((1, 1, 4, 3)).astype(dtype)
    grad_y = rng.standard_normal((2, 3, 5, 3)).astype(dtype)
    with kernels.backend("c"):
        y = kernels.conv2d_forward(x, w, 1, "same")
        grad_x = kernels.conv2d_backward_input(grad_y, w, x.shape, 1, 0)
        grad_w = kernels.conv2d_backward_weight(x, grad_y, w.shape, 1, "valid")
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y, np.einsum("nhwc,cd->nhwd", x, w[0, 0]), rtol=tol, atol=tol)
    np.testing.assert_allclose(grad_x, np.einsum("nhwd,cd->nhwc", grad_y, w[0, 0]), rtol=tol, atol=tol)
    np.testing.assert_allclose(grad_w[0, 0], np.einsum("nhwc,nhwd->cd", x, grad_y), rtol=tol, atol=tol)


@pytest.mark.parametrize("backend", ["c", "numpy"])
def test_lecture_1d_convolution_same_padding(backend):
    """Worked example (a): moving average of 3 with 'same' padding, as a 1xW image."""
    if backend == "c" and not kernels.extension_available():
        pytest.skip("C extension not built")
    x = np.array([10, 50, 60, 10, 20, 30, 40], dtype=np.float64).reshape(1, 1, 7, 1)
    h = np.full((1, 3, 1, 1), 1.0 / 3.0)
    with kernels.backend(backend):
        y = kernels.conv2d_forward(x, h, 1, "same")
    np.testing.assert_allclose(y.ravel(), [20, 40, 40, 30, 20, 30, 70.0 / 3.0], rtol=1e-12)
    np.testing.assert_allclose(y.ravel()[-1], 23.333, atol=1e-3)


@pytest.mark.parametrize("backend", ["c", "numpy"])
def test_lecture_weight_gradient_is_correlation_of_input_with_output_gradient(backend):
    """Worked example (b): 3x3 input, 2x2 filter, no padding, stride 1:
    dE/dW[a, b] = sum_ij X[i + a, j + b] * dE/dH[i, j]."""
    if backend == "c" and not kernels.extension_available():
        pytest.skip("C extension not built")
    x = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]])
    grad_h = np.array([[0.5, -1.0], [2.0, 0.25]])
    expected = np.zeros((2, 2))
    for a in range(2):
        for b in range(2):
            for i in range(2):
                for j in range(2):
                    expected[a, b] += x[i + a, j + b] * grad_h[i, j]
    with kernels.backend(backend):
        grad_w = kernels.conv2d_backward_weight(x.reshape(1, 3, 3, 1), grad_h.reshape(1, 2, 2, 1),
                                                (2, 2, 1, 1), 1, "valid")
    np.testing.assert_allclose(grad_w.reshape(2, 2), expected, rtol=1e-12)
    # and the numbers by hand: [[1*.5+2*-1+4*2+5*.25, ...]]
    assert expected[0, 0] == pytest.approx(0.5 - 2.0 + 8.0 + 1.25)


def test_same_padding_follows_tensorflow():
    # odd total padding: the extra cell goes after (bottom/right)
    assert kernels.resolve_padding("same", (5, 5), (2, 2), (1, 1)) == ((0, 1), (0, 1))
    # height 7, k=3, s=2: out=4, total=max(3*2+3-7, 0)=2; width 6: out=3, total=1
    assert kernels.resolve_padding("same", (7, 6), (3, 3), (2, 2)) == ((1, 1), (0, 1))
    # kernel smaller than stride: no padding at all
    assert kernels.resolve_padding("same", (5, 5), (1, 1), (2, 2)) == ((0, 0), (0, 0))
    assert kernels.resolve_padding(2, (5, 5), (3, 3), (1, 1)) == ((2, 2), (2, 2))
    assert kernels.resolve_padding((1, 0), (5, 5), (3, 3), (1, 1)) == ((1, 1), (0, 0))
    assert kernels.conv_output_size(7, 3, 2, 1, 1) == 4
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 5, 5, 2))
    w = rng.standard_normal((2, 2, 2, 3))
    for backend in ["numpy"] + (["c"] if kernels.extension_available() else []):
        with kernels.backend(backend):
            same = kernels.conv2d_forward(x, w, 1, "same")
            explicit = kernels.conv2d_forward(x, w, 1, ((0, 1), (0, 1)))
        assert same.shape == (1, 5, 5, 3)
        np.testing.assert_array_equal(same, explicit)


# ---- validation ----------------------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
def test_conv2d_validates_arguments(backend):
    x = np.zeros((2, 5, 5, 3), dtype=np.float32)
    w = np.zeros((3, 3, 3, 4), dtype=np.float32)
    with kernels.backend(backend):
        with pytest.raises(ValueError, match="conv2d_forward.*3 channels.*expects 2"):
            kernels.conv2d_forward(x, np.zeros((3, 3, 2, 4), np.float32))
        with pytest.raises(ValueError, match="conv2d_forward.*4 dimensions"):
            kernels.conv2d_forward(x[0], w)
        with pytest.raises(TypeError, match="conv2d_forward.*float32 or all float64"):
            kernels.conv2d_forward(x, w.astype(np.float64))
        with pytest.raises(TypeError, match="conv2d_forward.*float32 or all float64"):
            kernels.conv2d_forward(x.astype(np.int32), w.astype(np.int32))
        with pytest.raises(ValueError, match="stride"):
            kernels.conv2d_forward(x, w, 0)
        with pytest.raises(ValueError, match="padding"):
            kernels.conv2d_forward(x, w, 1, -1)
        with pytest.raises(ValueError, match="padding"):
            kernels.conv2d_forward(x, w, 1, "full")
        with pytest.raises(ValueError, match="at least 1x1"):
            kernels.conv2d_forward(x, np.zeros((7, 3, 3, 4), np.float32))
        with pytest.raises(ValueError, match="weight shape"):
            kernels.conv2d_forward(x, np.zeros((0, 3, 3, 4), np.float32))
        with pytest.raises(ValueError, match="2\\*\\*62"):
            kernels.conv2d_forward(x, w, 1, 2 ** 40)
        with pytest.raises(ValueError, match="conv2d_backward_input.*grad_y shape"):
            kernels.conv2d_backward_input(np.zeros((2, 4, 4, 4), np.float32), w, x.shape, 1, "valid")
        with pytest.raises(ValueError, match="conv2d_backward_weight.*grad_y shape"):
            kernels.conv2d_backward_weight(x, np.zeros((2, 3, 3, 5), np.float32), w.shape, 1, "valid")
        with pytest.raises(ValueError, match="x_shape"):
            kernels.conv2d_backward_input(np.zeros((2, 3, 3, 4), np.float32), w, (2, 5, 5), 1, "valid")


@pytest.mark.parametrize("backend", BACKENDS)
def test_empty_batch(backend):
    x = np.zeros((0, 5, 5, 3), np.float32)
    w = np.ones((3, 3, 3, 16), np.float32)
    with kernels.backend(backend):
        y = kernels.conv2d_forward(x, w, 1, "same")
        assert y.shape == (0, 5, 5, 16)
        assert kernels.conv2d_backward_input(y, w, x.shape, 1, "same").shape == x.shape
        np.testing.assert_array_equal(kernels.conv2d_backward_weight(x, y, w.shape, 1, "same"),
                                      np.zeros(w.shape, np.float32))

# ---- fixed sizes at every SIMD level: vector bodies, tails, parallel regions ----------
# ---- conv2d, --------------------------------------------------------------------------------
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
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("x_shape, w_shape, stride, padding", CONV_CASES)
def test_conv2d(level, threads, dtype, x_shape, w_shape, stride, padding):
    rng = np.random.default_rng(sum(x_shape) + sum(w_shape))
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    y_ref = on_numpy(lambda: kernels.conv2d_forward(x, w, stride, padding))
    grad_y = rng.standard_normal(y_ref.shape).astype(dtype)
    terms = int(np.prod(w_shape[:3]))
    weight_terms = y_ref.shape[0] * y_ref.shape[1] * y_ref.shape[2]

    def passes():
        return (kernels.conv2d_forward(x, w, stride, padding),
                kernels.conv2d_backward_input(grad_y, w, x_shape, stride, padding),
                kernels.conv2d_backward_weight(x, grad_y, w_shape, stride, padding))

    expected = on_numpy(passes)
    got = on_c(level, threads, passes)
    assert_matches(got[0], expected[0], dtype, sum_tolerance(dtype, terms))
    assert_matches(got[1], expected[1], dtype, sum_tolerance(dtype, terms))
    assert_matches(got[2], expected[2], dtype, sum_tolerance(dtype, weight_terms))


# Non-finite operands: the C path must put NaN and Inf exactly where the reference does.
# The AVX-512 direct kernels skip products with padding zeros (a speed-up for finite
# data); the reference computes them, and 0 * Inf = NaN. Before the finiteness scan that
# routes such operands to im2col, an Inf weight at the border of a 5x5 'same' conv gave
# 80 NaNs in C and 176 in the reference (forward); an Inf weight gave NaNs the reference
# does not have (backward input); an Inf in grad_y gave none of the reference's NaNs
# (backward weight).
NON_FINITE_CASES = [
    pytest.param((2, 8, 8, 16), (3, 3, 16, 16), 1, "direct-3x3-same"),
    pytest.param((3, 14, 14, 32), (5, 5, 32, 64), 1, "direct-seed-layer-5x5-same"),
    pytest.param((2, 9, 7, 3), (3, 4, 3, 7), 2, "im2col-stride2-same"),
]


@needs_c
@pytest.mark.parametrize("level, threads", CONFIGURATIONS)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("x_shape, w_shape, stride, name", NON_FINITE_CASES)
@pytest.mark.parametrize("special", [np.inf, -np.inf, np.nan])
def test_conv2d_non_finite_values_land_where_the_reference_puts_them(level, threads, dtype, x_shape,
                                                                       w_shape, stride, name, special):
    rng = np.random.default_rng(sum(x_shape) + sum(w_shape))
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    w_bad = w.copy()
    w_bad[0, 0, 0, 0] = special           # a corner tap: it meets the padding at the border
    w_bad[-1, -1, -1, -1] = special
    x_bad = x.copy()
    x_bad[0, 0, 0, 0] = special            # a corner pixel
    y_shape = on_numpy(lambda: kernels.conv2d_forward(x, w, stride, "same")).shape
    grad_y = rng.standard_normal(y_shape).astype(dtype)
    grad_y_bad = grad_y.copy()
    grad_y_bad[0, 0, 0, :] = special
    grad_y_bad[-1, -1, -1, -1] = special

    def passes():
        return {
            "forward, non-finite w": kernels.conv2d_forward(x, w_bad, stride, "same"),
            "forward, non-finite x": kernels.conv2d_forward(x_bad, w, stride, "same"),
            "backward input, non-finite w": kernels.conv2d_backward_input(grad_y, w_bad, x_shape, stride, "same"),
            "backward input, non-finite grad_y":
                kernels.conv2d_backward_input(grad_y_bad, w, x_shape, stride, "same"),
            "backward weight, non-finite grad_y":
                kernels.conv2d_backward_weight(x, grad_y_bad, w_shape, stride, "same"),
            "backward weight, non-finite x": kernels.conv2d_backward_weight(x_bad, grad_y, w_shape, stride, "same"),
        }

    with np.errstate(invalid="ignore"):
        expected = on_numpy(passes)
        got = on_c(level, threads, passes)
    for what in expected:
        assert not np.isfinite(expected[what]).all(), what  # the case does reach the output
        assert_same_non_finite(got[what], expected[what], what)
        finite = np.isfinite(expected[what])
        np.testing.assert_allclose(got[what][finite], expected[what][finite],
                                   rtol=sum_tolerance(dtype, 5 * 5 * 64), atol=sum_tolerance(dtype, 5 * 5 * 64))


# ---- Winograd F(m x m, 5x5) for stride-1 5x5 convolutions, all three passes -----------
# Shapes whose H, W are not multiples of the tile (4, or 2 below 8 output pixels),
# channel counts that are not multiples of any vector width (staged loads and stores),
# batch 1, asymmetric padding, and the seed CNN's second layer. (x shape, c_out, padding)
WINOGRAD_CASES = [
    pytest.param((1, 13, 11, 9), 17, "same", id="batch1-13x11-9to17-m4"),
    pytest.param((2, 7, 6, 20), 12, "same", id="7x6-20to12-m2"),
    pytest.param((3, 10, 9, 16), 33, "valid", id="valid-16to33-m2"),
    pytest.param((2, 13, 12, 24), 40, ((1, 2), (2, 0)), id="asymmetric-pad-24to40"),
    pytest.param((2, 14, 14, 32), 64, "same", id="seed-second-layer"),
]


def _winograd_passes(x, w, grad_y, padding):
    return (kernels.conv2d_forward(x, w, 1, padding),
            kernels.conv2d_backward_input(grad_y, w, x.shape, 1, padding),
            kernels.conv2d_backward_weight(x, grad_y, w.shape, 1, padding))


@needs_c
@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("x_shape, out_channels, padding", WINOGRAD_CASES)
def test_winograd_matches_float64_reference(level, threads, dtype, x_shape, out_channels, padding, monkeypatch):
    rng = np.random.default_rng(sum(x_shape) + out_channels)
    w_shape = (5, 5, x_shape[3], out_channels)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    y_shape = on_numpy(lambda: kernels.conv2d_forward(x, w, 1, padding)).shape
    grad_y = rng.standard_normal(y_shape).astype(dtype)
    # the exact answer: the numpy reference in float64
    exact = on_numpy(lambda: _winograd_passes(x.astype(np.float64), w.astype(np.float64),
                                              grad_y.astype(np.float64), padding))
    got = on_c(level, threads, lambda: _winograd_passes(x, w, grad_y, padding))
    monkeypatch.setenv("AUTOGRAD_CORE_WINOGRAD", "0")
    without = on_c(level, threads, lambda: _winograd_passes(x, w, grad_y, padding))
    all_terms = (25 * w_shape[2], 25 * w_shape[3], y_shape[0] * y_shape[1] * y_shape[2])
    for actual, wanted, plain, terms in zip(got, exact, without, all_terms):
        assert actual.dtype == dtype and actual.shape == wanted.shape
        tolerance = winograd_tolerance(dtype, terms)
        np.testing.assert_allclose(actual, wanted, rtol=tolerance, atol=tolerance)
        # the knob turns Winograd off: the direct / im2col sums are as close as ever
        np.testing.assert_allclose(plain, wanted, rtol=_tolerance(dtype, terms), atol=_tolerance(dtype, terms))
    # Winograd did run (its rounding differs from a direct sum's): the forward and the
    # weight gradient on every shape here (no c_out is a multiple of 16 except the seed
    # layer's, past the direct kernel's break-even); the input gradient wherever no
    # direct kernel competes
    assert not np.array_equal(got[0], without[0])
    assert not np.array_equal(got[2], without[2])
    if level < 2 or dtype == np.float64 or x_shape[3] % 16 != 0 or x_shape == (2, 14, 14, 32):
        assert not np.array_equal(got[1], without[1])


@needs_c
def test_winograd_is_skipped_below_its_threshold_against_the_direct_kernel(monkeypatch):
    # batch 1 of the seed layer (10M multiply-adds) runs faster on the AVX-512 direct
    # kernel: the result is bit for bit the knob-off one
    if kernels.cpu_simd_level() < 2:
        pytest.skip("the direct kernel needs AVX-512")
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 14, 14, 32)).astype(np.float32)
    w = rng.standard_normal((5, 5, 32, 64)).astype(np.float32)
    grad_y = rng.standard_normal((1, 14, 14, 64)).astype(np.float32)
    got = on_c(2, 1, lambda: _winograd_passes(x, w, grad_y, "same"))
    monkeypatch.setenv("AUTOGRAD_CORE_WINOGRAD", "0")
    without = on_c(2, 1, lambda: _winograd_passes(x, w, grad_y, "same"))
    for actual, plain in zip(got, without):
        np.testing.assert_array_equal(actual, plain)
