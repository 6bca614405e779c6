"""Property-based differential test: every C kernel against its numpy reference over odd
layouts, odd sizes, every SIMD level this CPU has and 1, 2 or 3 threads.

The operands reach the public kernels as a user's arrays may: C-ordered, Fortran-ordered,
strided slices of a larger array, views with negative strides, or misaligned (inside a
bytes buffer at an offset that is not a multiple of the element size's alignment, or of
64 bytes). Wherever a wrapper reads an array in place or copies it, the answer must be
the reference's on the same values in plain C order; it may never be a different one.
Sizes are 1, primes and the edges of the kernels' tiles (vector widths 8/16, GEMM
micro-tiles), some large enough to go parallel. Example counts are bounded (settings
below) so the file runs in well under a minute on two cores.
"""
import importlib
import os

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from kernel_configurations import LEVELS, assert_matches, configured, needs_c, sum_tolerance

from autograd_core import kernels

pytestmark = needs_c

# .ci/sanitize.sh asks for fewer: under ASan each example costs ~5x more
EXAMPLES = settings(derandomize=True, deadline=None,
                    max_examples=int(os.environ.get("AUTOGRAD_CORE_DIFFERENTIAL_EXAMPLES", "60")))

LAYOUTS = ("c", "fortran", "strided", "negative", "offset64", "misaligned")
# 1, primes, and the edges of 8- and 16-wide vectors and of the GEMM micro-tiles
ODD_SIZES = (1, 2, 3, 5, 7, 8, 9, 13, 15, 16, 17, 23, 31, 32, 33)

levels = st.sampled_from(LEVELS)
thread_counts = st.sampled_from((1, 2, 3))
dtypes = st.sampled_from((np.float32, np.float64))
layouts = st.sampled_from(LAYOUTS)
sizes = st.sampled_from(ODD_SIZES)


def in_layout(values, layout):
    """An array equal to values (any shape) whose memory is laid out as `layout` says."""
    shape, dtype = values.shape, values.dtype
    every = (slice(None),) * values.ndim
    if layout == "c":
        out = values.copy()
    elif layout == "fortran":
        out = np.asfortranarray(values)
    elif layout == "strided":  # every other element of a larger array, on every axis
        larger = np.full(tuple(2 * size + 1 for size in shape), -1, dtype=dtype)  # never read
        out = larger[(slice(1, None, 2),) * values.ndim]
        out[...] = values
    elif layout == "negative":  # the reverse of a reversed copy: negative strides
        backwards = (slice(None, None, -1),) * values.ndim
        out = np.ascontiguousarray(values[backwards])[backwards]
    else:  # C order, 4 bytes past a 64-byte boundary (offset64), or 2 bytes (misaligned)
        offset = 4 if layout == "offset64" else 2
        raw = np.zeros(values.nbytes + 128, dtype=np.uint8)
        start = (-raw.ctypes.data) % 64 + offset
        out = raw[start:start + values.nbytes].view(dtype).reshape(shape)
        out[every] = values
    if layout == "misaligned" and values.size:
        assert not out.flags.aligned
    if layout == "negative" and values.size > 1 and max(shape) > 1:
        assert any(stride < 0 for stride in out.strides)
    np.testing.assert_array_equal(out, values)
    return out


def run(level, threads, fn):
    """fn() on C at this SIMD level and thread count, and the numpy reference's fn()."""
    with configured(level, threads):
        got = fn()
    with kernels.backend("numpy"):
        expected = fn()
    return got, expected


def normal(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


# ---- GEMM ----------------------------------------------------------------------------------

@EXAMPLES
@given(m=sizes, n=sizes, k=sizes, big=st.booleans(), trans_a=st.booleans(), trans_b=st.booleans(),
       layout_a=layouts, layout_b=layouts, dtype=dtypes, level=levels, threads=thread_counts,
       seed=st.integers(0, 2 ** 16))
def test_gemm(m, n, k, big, trans_a, trans_b, layout_a, layout_b, dtype, level, threads, seed):
    if big:  # past the 128**3 multiply-adds from which GEMM threads
        m, n, k = m + 128, n + 120, k + 127
    rng = np.random.default_rng(seed)
    a = normal(rng, (k, m) if trans_a else (m, k), dtype)
    b = normal(rng, (n, k) if trans_b else (k, n), dtype)
    expected = np.matmul(a.T if trans_a else a, b.T if trans_b else b)
    odd_a, odd_b = in_layout(a, layout_a), in_layout(b, layout_b)
    got, reference = run(level, threads, lambda: kernels.gemm(odd_a, odd_b, trans_a, trans_b))
    tolerance = sum_tolerance(dtype, k)
    assert_matches(got, expected.astype(dtype), dtype, tolerance)
    assert_matches(reference, expected.astype(dtype), dtype, tolerance)


@EXAMPLES
@given(batch=sizes, m=sizes, n=sizes, k=sizes, trans_a=st.booleans(), trans_b=st.booleans(),
       layout_a=layouts, layout_b=layouts, dtype=dtypes, level=levels, threads=thread_counts,
       seed=st.integers(0, 2 ** 16))
def test_batched_gemm(batch, m, n, k, trans_a, trans_b, layout_a, layout_b, dtype, level, threads, seed):
    rng = np.random.default_rng(seed)
    a = normal(rng, (batch, k, m) if trans_a else (batch, m, k), dtype)
    b = normal(rng, (batch, n, k) if trans_b else (batch, k, n), dtype)
    expected = np.matmul(np.swapaxes(a, 1, 2) if trans_a else a, np.swapaxes(b, 1, 2) if trans_b else b)
    odd_a, odd_b = in_layout(a, layout_a), in_layout(b, layout_b)
    got, reference = run(level, threads, lambda: kernels.batched_gemm(odd_a, odd_b, trans_a, trans_b))
    assert_matches(got, expected.astype(dtype), dtype, sum_tolerance(dtype, k))
    assert_matches(reference, expected.astype(dtype), dtype, sum_tolerance(dtype, k))


@EXAMPLES
@given(m=sizes, n=sizes, k=sizes, special=st.sampled_from([np.inf, -np.inf, np.nan]), dtype=dtypes,
       level=levels, threads=thread_counts, seed=st.integers(0, 2 ** 16))
def test_gemm_non_finite_values_land_where_numpy_puts_them(m, n, k, special, dtype, level, threads, seed):
    # numpy's matmul gives NaN for 0 * Inf; a kernel that skipped zeros would not
    rng = np.random.default_rng(seed)
    a = normal(rng, (m, k), dtype)
    a[rng.random((m, k)) < 0.3] = 0
    b = normal(rng, (k, n), dtype)
    b[rng.integers(k), rng.integers(n)] = special
    with np.errstate(invalid="ignore"):
        expected = np.matmul(a, b)
        got, _ = run(level, threads, lambda: kernels.gemm(a, b))
    assert np.array_equal(np.isnan(got), np.isnan(expected))
    assert np.array_equal(np.isposinf(got), np.isposinf(expected))
    assert np.array_equal(np.isneginf(got), np.isneginf(expected))


# ---- conv2d ---------------------------------------------------------------------------------

@st.composite
def conv_problems(draw, direct=False):
    """(x_shape, w_shape, stride, padding); direct: mostly the float32 AVX-512 direct
    kernels' problems (channels multiples of 16, stride 1, padded)."""
    kernel = draw(st.tuples(st.integers(1, 5), st.integers(1, 5)))
    stride = (1, 1) if direct else draw(st.tuples(st.integers(1, 3), st.integers(1, 3)))
    padding = draw(st.sampled_from(["same", 1, ((2, 0), (1, 3))] if direct
                                   else ["same", "valid", 0, 1, ((2, 0), (1, 3))]))
    # channel counts: odd, and multiples of 16 that take the AVX-512 direct kernels
    in_channels = draw(st.sampled_from((3, 16, 32) if direct else (1, 3, 8, 16, 17, 32)))
    out_channels = draw(st.sampled_from((7, 16, 32) if direct else (1, 7, 16, 32)))
    x_shape = (draw(st.integers(1, 4)), draw(st.sampled_from(ODD_SIZES[:12])), draw(st.sampled_from(ODD_SIZES[:12])),
               in_channels)
    return x_shape, kernel + (in_channels, out_channels), stride, padding


def _conv_ok(x_shape, w_shape, stride, padding):
    pads = kernels.resolve_padding(padding, x_shape[1:3], w_shape[:2], stride)
    return all(kernels.conv_output_size(size, k, s, *p) >= 1
               for size, k, s, p in zip(x_shape[1:3], w_shape[:2], stride, pads))


@EXAMPLES
@given(problem=conv_problems(), layouts_=st.tuples(layouts, layouts, layouts), dtype=dtypes, level=levels,
       threads=thread_counts, seed=st.integers(0, 2 ** 16))
def test_conv2d(problem, layouts_, dtype, level, threads, seed):
    x_shape, w_shape, stride, padding = problem
    assume(_conv_ok(x_shape, w_shape, stride, padding))
    rng = np.random.default_rng(seed)
    x, w = normal(rng, x_shape, dtype), normal(rng, w_shape, dtype)
    with kernels.backend("numpy"):
        y_shape = kernels.conv2d_forward(x, w, stride, padding).shape
    grad_y = normal(rng, y_shape, dtype)
    with kernels.backend("numpy"):  # the reference on plain C-ordered operands
        expected = (kernels.conv2d_forward(x, w, stride, padding),
                    kernels.conv2d_backward_input(grad_y, w, x_shape, stride, padding),
                    kernels.conv2d_backward_weight(x, grad_y, w_shape, stride, padding))
    odd_x, odd_w, odd_grad_y = (in_layout(array, layout) for array, layout in zip((x, w, grad_y), layouts_))
    got, reference = run(level, threads, lambda: (
        kernels.conv2d_forward(odd_x, odd_w, stride, padding),
        kernels.conv2d_backward_input(odd_grad_y, odd_w, x_shape, stride, padding),
        kernels.conv2d_backward_weight(odd_x, odd_grad_y, w_shape, stride, padding)))
    terms = max(int(np.prod(w_shape)), y_shape[0] * y_shape[1] * y_shape[2])
    assert_matches(got, expected, dtype, sum_tolerance(dtype, terms))
    assert_matches(reference, expected, dtype, sum_tolerance(dtype, terms))


@EXAMPLES
@given(problem=conv_problems(direct=True), where=st.sampled_from(["x", "w", "grad_y"]),
       special=st.sampled_from([np.inf, -np.inf, np.nan]), dtype=dtypes, threads=thread_counts,
       seed=st.integers(0, 2 ** 16))
def test_conv2d_non_finite_values_land_where_the_reference_puts_them(problem, where, special, dtype, threads, seed):
    x_shape, w_shape, stride, padding = problem
    assume(_conv_ok(x_shape, w_shape, stride, padding))
    rng = np.random.default_rng(seed)
    arrays = {"x": normal(rng, x_shape, dtype), "w": normal(rng, w_shape, dtype)}
    with kernels.backend("numpy"):
        arrays["grad_y"] = normal(rng, kernels.conv2d_forward(arrays["x"], arrays["w"], stride, padding).shape,
                                  dtype)
    target = arrays[where]
    target[tuple(rng.integers(size) for size in target.shape)] = special
    target.flat[0] = special  # a corner: next to the padding
    x, w, grad_y = arrays["x"], arrays["w"], arrays["grad_y"]
    for level in LEVELS:  # every level: the direct kernels (level 2) are the ones that skip padding
        with np.errstate(invalid="ignore"):
            got, expected = run(level, threads, lambda: (
                kernels.conv2d_forward(x, w, stride, padding),
                kernels.conv2d_backward_input(grad_y, w, x_shape, stride, padding),
                kernels.conv2d_backward_weight(x, grad_y, w_shape, stride, padding)))
        for name, actual, wanted in zip(("forward", "backward input", "backward weight"), got, expected):
            for test in (np.isnan, np.isposinf, np.isneginf):
                assert np.array_equal(test(actual), test(wanted)), (
                    "%s at level %d: %s differs (%d in C, %d in the reference)"
                    % (name, level, test.__name__, test(actual).sum(), test(wanted).sum()))


# ---- pooling --------------------------------------------------------------------------------

@st.composite
def pool_problems(draw):
    kernel = draw(st.tuples(st.integers(1, 4), st.integers(1, 4)))
    stride = draw(st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    pads = draw(st.tuples(st.tuples(st.integers(0, kernel[0] - 1), st.integers(0, kernel[0] - 1)),
                          st.tuples(st.integers(0, kernel[1] - 1), st.integers(0, kernel[1] - 1))))
    x_shape = (draw(st.integers(1, 3)), draw(st.sampled_from(ODD_SIZES[:12])), draw(st.sampled_from(ODD_SIZES[:12])),
               draw(st.sampled_from(ODD_SIZES)))
    return x_shape, kernel, stride, pads


def _pool_ok(x_shape, kernel, stride, pads):
    stride = kernel if stride is None else stride
    return all(kernels.conv_output_size(size, k, s, *p) >= 1
               for size, k, s, p in zip(x_shape[1:3], kernel, stride, pads))


@EXAMPLES
@given(problem=pool_problems(), layout_x=layouts, layout_grad=layouts, count_include_pad=st.booleans(),
       specials=st.booleans(), dtype=dtypes, level=levels, threads=thread_counts, seed=st.integers(0, 2 ** 16))
def test_pooling(problem, layout_x, layout_grad, count_include_pad, specials, dtype, level, threads, seed):
    x_shape, kernel, stride, pads = problem
    assume(_pool_ok(x_shape, kernel, stride, pads))
    rng = np.random.default_rng(seed)
    x = rng.integers(-3, 4, x_shape).astype(dtype)  # ties: the argmax rule matters
    if specials:  # NaN and +-Inf placement must match too
        x[rng.random(x_shape) < 0.1] = np.nan
        x[rng.random(x_shape) < 0.1] = np.inf
        x[rng.random(x_shape) < 0.1] = -np.inf
    with kernels.backend("numpy"):
        y, argmax = kernels.max_pool2d_forward(x, kernel, stride, pads)
    grad_y = normal(rng, y.shape, dtype)

    def passes(x, grad_y, argmax):
        y, argmax_got = kernels.max_pool2d_forward(x, kernel, stride, pads)
        return (y, argmax_got, kernels.max_pool2d_backward(grad_y, argmax, x_shape),
                kernels.avg_pool2d_forward(x, kernel, stride, pads, count_include_pad),
                kernels.avg_pool2d_backward(grad_y, x_shape, kernel, stride, pads, count_include_pad))

    with kernels.backend("numpy"), np.errstate(invalid="ignore"):
        expected = passes(x, grad_y, argmax)
    odd_x, odd_grad_y, odd_argmax = in_layout(x, layout_x), in_layout(grad_y, layout_grad), in_layout(argmax,
                                                                                                    layout_grad)
    with np.errstate(invalid="ignore"):
        got, reference = run(level, threads, lambda: passes(odd_x, odd_grad_y, odd_argmax))
    tolerance = sum_tolerance(dtype, kernel[0] * kernel[1])
    for result in (got, reference):
        np.testing.assert_array_equal(result[0], expected[0])  # max is exact, NaN and Inf included
        assert_matches(result[1:], expected[1:], dtype, tolerance)  # allclose: NaN/Inf at the same places


# ---- recurrent cells ------------------------------------------------------------------------

@EXAMPLES
@given(batch=sizes, hidden=sizes, big=st.booleans(), layouts_=st.tuples(layouts, layouts, layouts, layouts),
       dtype=dtypes, level=levels, threads=thread_counts, seed=st.integers(0, 2 ** 16))
def test_recurrent_cells(batch, hidden, big, layouts_, dtype, level, threads, seed):
    if big:  # past the 8192 elements from which the cells thread
        batch, hidden = batch + 40, hidden + 200
    rng = np.random.default_rng(seed)
    gates, c_prev = normal(rng, (batch, 4 * hidden), dtype) * 2, normal(rng, (batch, hidden), dtype)
    grad_h, grad_c = normal(rng, (batch, hidden), dtype), normal(rng, (batch, hidden), dtype)
    gi, gh = normal(rng, (batch, 3 * hidden), dtype) * 2, normal(rng, (batch, 3 * hidden), dtype) * 2
    weight_hh = (normal(rng, (4 * hidden, hidden), dtype) / np.sqrt(hidden)).astype(dtype)
    bias = normal(rng, (4 * hidden,), dtype)

    def passes(gates, c_prev, grad_h, grad_c, gi, gh, weight_hh_t, weight_hh):
        h, c, saved = kernels.lstm_cell_forward(gates, c_prev)
        lstm_back = kernels.lstm_cell_backward(saved, c_prev, grad_h, grad_c)
        h_gru, saved_gru = kernels.gru_cell_forward(gi, gh, c_prev)
        gru_back = kernels.gru_cell_backward(saved_gru, c_prev, grad_h)
        step = kernels.lstm_step_forward(gates, grad_c, c_prev, weight_hh_t, bias=bias)
        grad_bias_sum = np.zeros((3, 4 * hidden), dtype=dtype)
        step_back = kernels.lstm_step_backward(step[2], c_prev, grad_h, grad_c, weight_hh,
                                               grad_bias_sum=grad_bias_sum)
        projection = kernels.projection_forward(grad_h, weight_hh, bias)
        return ((h, c, saved) + tuple(lstm_back) + (h_gru, saved_gru) + tuple(gru_back) + tuple(step)
                + tuple(step_back) + (grad_bias_sum.sum(axis=0), projection))

    plain = (gates, c_prev, grad_h, grad_c, gi, gh, np.ascontiguousarray(weight_hh.T), weight_hh)
    with kernels.backend("numpy"):
        expected = passes(*plain)
    odd = [in_layout(array, layouts_[i % 4]) for i, array in enumerate(plain)]
    got, reference = run(level, threads, lambda: passes(*odd))
    tolerance = max(2e-6 if dtype == np.float32 else 1e-14, sum_tolerance(dtype, 4 * hidden))
    if dtype == np.float32:
        tolerance = max(tolerance, 1e-5 * np.sqrt(batch))  # the bias gradient sums `batch` rows
    assert_matches(got, expected, dtype, tolerance)
    assert_matches(reference, expected, dtype, tolerance)


# ---- what reaches C ---------------------------------------------------------------------------

def test_c_never_receives_a_misaligned_pointer(monkeypatch):
    """np.ascontiguousarray returns a C-contiguous misaligned array (a float64 view 4 bytes
    into a buffer) unchanged; the wrappers used it, so C read doubles through misaligned
    pointers (undefined behaviour, flagged by UBSan). Every array handed to C must be
    aligned for its dtype."""
    # the modules (kernels.gemm is the function)
    families = [importlib.import_module("autograd_core.kernels." + name) for name in ("conv2d", "gemm", "pool", "rnn")]
    runtime = importlib.import_module("autograd_core.kernels.runtime")
    seen = []

    def checked_pointers(*arrays):
        for array in arrays:
            if array is not None:
                seen.append(array.flags.aligned)
        return runtime.pointers(*arrays)

    for module in families:
        monkeypatch.setattr(module, "pointers", checked_pointers)
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        odd = lambda *shape: in_layout(normal(rng, shape, dtype), "misaligned")  # noqa: E731
        with kernels.backend("c"):
            kernels.gemm(odd(5, 3), odd(3, 4))
            kernels.batched_gemm(odd(2, 5, 3), odd(2, 3, 4))
            x, w, grad_y = odd(2, 5, 5, 3), odd(3, 3, 3, 4), odd(2, 5, 5, 4)
            kernels.conv2d_forward(x, w, 1, "same")
            kernels.conv2d_backward_input(grad_y, w, x.shape, 1, "same")
            kernels.conv2d_backward_weight(x, grad_y, w.shape, 1, "same")
            y, argmax = kernels.max_pool2d_forward(x, 2)
            kernels.max_pool2d_backward(odd(*y.shape), in_layout(argmax, "misaligned"), x.shape)
            kernels.avg_pool2d_backward(odd(*y.shape), x.shape, 2)
            kernels.avg_pool2d_forward(x, 2)
            h, c, saved = kernels.lstm_cell_forward(odd(3, 8), odd(3, 2))
            kernels.lstm_cell_backward(in_layout(saved, "misaligned"), odd(3, 2), odd(3, 2), odd(3, 2))
            h, saved = kernels.gru_cell_forward(odd(3, 6), odd(3, 6), odd(3, 2))
            kernels.gru_cell_backward(in_layout(saved, "misaligned"), odd(3, 2), odd(3, 2))
            h, c, saved = kernels.lstm_step_forward(odd(3, 8), odd(3, 2), odd(3, 2), odd(2, 8), bias=odd(8))
            kernels.lstm_step_backward(in_layout(saved, "misaligned"), odd(3, 2), odd(3, 2), odd(3, 2), odd(8, 2))
            kernels.projection_forward(odd(3, 5), odd(4, 5), odd(4))
    assert len(seen) > 50 and all(seen), "%d of %d arrays handed to C were misaligned" % (
        seen.count(False), len(seen))
