"""Pooling kernels (autograd_core/kernels/pool.py, csrc/pool*.c): C against the numpy
reference on every SIMD level, tie-breaking, padding that never wins, NaN, the
count_include_pad divisor, and argument validation."""
import ast
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from kernel_configurations import (BACKENDS, CONFIGURATIONS, FLOAT_DTYPES, assert_matches, configured, needs_c,
                                   on_c, on_numpy, sum_tolerance)

from autograd_core import kernels

CI = settings(derandomize=True, deadline=None, max_examples=25)


@st.composite
def pool_cases(draw):
    n = draw(st.integers(1, 3))
    height, width = draw(st.integers(1, 8)), draw(st.integers(1, 8))
    channels = draw(st.integers(1, 5))
    kernel = draw(st.tuples(st.integers(1, 4), st.integers(1, 4)))
    stride = draw(st.one_of(st.none(), st.integers(1, 3), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    pads = draw(st.tuples(st.tuples(st.integers(0, kernel[0] - 1), st.integers(0, kernel[0] - 1)),
                          st.tuples(st.integers(0, kernel[1] - 1), st.integers(0, kernel[1] - 1))))
    padding = draw(st.sampled_from([pads, "same", "valid", (pads[0][0], pads[1][0])]))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    return (n, height, width, channels), kernel, stride, padding, dtype


def _pool_output_ok(x_shape, kernel, stride, padding):
    stride = kernel if stride is None else ((stride, stride) if isinstance(stride, int) else stride)
    pads = kernels.resolve_padding(padding, x_shape[1:3], kernel, stride)
    return all(kernels.conv_output_size(size, k, s, *p) >= 1
               for size, k, s, p in zip(x_shape[1:3], kernel, stride, pads))


@needs_c
@pytest.mark.parametrize("simd_level, threads", CONFIGURATIONS)
@CI
@given(case=pool_cases(), seed=st.integers(0, 2 ** 16), ties=st.booleans(), ceil_mode=st.booleans())
def test_max_pool_matches_reference(simd_level, threads, case, seed, ties, ceil_mode):
    x_shape, kernel, stride, padding, dtype = case
    assume(_pool_output_ok(x_shape, kernel, stride, padding))
    rng = np.random.default_rng(seed)
    # small integers make ties common, which is where the argmax rule matters
    x = (rng.integers(-2, 3, x_shape) if ties else rng.standard_normal(x_shape)).astype(dtype)
    with kernels.backend("numpy"):
        y_ref, argmax_ref = kernels.max_pool2d_forward(x, kernel, stride, padding, ceil_mode=ceil_mode)
        grad_y = rng.standard_normal(y_ref.shape).astype(dtype)
        grad_x_ref = kernels.max_pool2d_backward(grad_y, argmax_ref, x_shape)
    with configured(simd_level, threads):
        y, argmax = kernels.max_pool2d_forward(x, kernel, stride, padding, ceil_mode=ceil_mode)
        grad_x = kernels.max_pool2d_backward(grad_y, argmax, x_shape)
    np.testing.assert_array_equal(y, y_ref)
    assert argmax.dtype == np.int64
    np.testing.assert_array_equal(argmax, argmax_ref)
    np.testing.assert_array_equal(x.ravel()[argmax], y)
    np.testing.assert_allclose(grad_x, grad_x_ref, rtol=1e-6, atol=1e-6)


@needs_c
@pytest.mark.parametrize("simd_level, threads", CONFIGURATIONS)
@CI
@given(case=pool_cases(), seed=st.integers(0, 2 ** 16), count_include_pad=st.booleans())
def test_avg_pool_matches_reference(simd_level, threads, case, seed, count_include_pad):
    x_shape, kernel, stride, padding, dtype = case
    assume(_pool_output_ok(x_shape, kernel, stride, padding))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(dtype)
    args = (kernel, stride, padding, count_include_pad)
    with kernels.backend("numpy"):
        y_ref = kernels.avg_pool2d_forward(x, *args)
        grad_y = rng.standard_normal(y_ref.shape).astype(dtype)
        grad_x_ref = kernels.avg_pool2d_backward(grad_y, x_shape, *args)
    with configured(simd_level, threads):
        y = kernels.avg_pool2d_forward(x, *args)
        grad_x = kernels.avg_pool2d_backward(grad_y, x_shape, *args)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y, y_ref, rtol=tol, atol=tol)
    np.testing.assert_allclose(grad_x, grad_x_ref, rtol=tol, atol=tol)



@pytest.mark.parametrize("backend", BACKENDS)
def test_max_pool_ties_go_to_first_maximum_in_row_major_order(backend):
    # one 3x3 window, 2 channels: channel 0 has its maximum 5 at (0, 2) and (1, 0);
    # channel 1 is all equal, so the very first cell wins
    x = np.zeros((1, 3, 3, 2))
    x[0, 0, 2, 0] = x[0, 1, 0, 0] = 5.0
    x[0, 2, 2, 0] = 4.0
    with kernels.backend(backend):
        y, argmax = kernels.max_pool2d_forward(x, 3, 3, 0)
        grad_x = kernels.max_pool2d_backward(np.ones_like(y), argmax, x.shape)
    assert y.ravel().tolist() == [5.0, 0.0]
    assert argmax.ravel().tolist() == [(0 * 3 + 2) * 2 + 0, 1]
    assert grad_x[0, 0, 2, 0] == 1.0 and grad_x[0, 1, 0, 0] == 0.0
    assert grad_x[0, 0, 0, 1] == 1.0 and grad_x.sum() == 2.0


@pytest.mark.parametrize("backend", BACKENDS)
def test_max_pool_padding_never_wins_and_overlaps_accumulate(backend):
    # every real cell is -inf: padded cells (also "-inf") must still lose
    x = np.full((1, 2, 2, 1), -np.inf, dtype=np.float32)
    with kernels.backend(backend):
        y, argmax = kernels.max_pool2d_forward(x, 2, 1, 1)
    assert y.shape == (1, 3, 3, 1) and np.all(y == -np.inf)
    assert argmax.min() >= 0 and argmax.max() < 4
    # the top-left output's window holds only (0, 0) as a real cell
    assert argmax[0, 0, 0, 0] == 0 and argmax[0, 2, 2, 0] == 3
    # overlapping 2x2/1 windows whose maximum is the centre: its gradient sums 4 times
    x = np.zeros((1, 3, 3, 1))
    x[0, 1, 1, 0] = 1.0
    with kernels.backend(backend):
        y, argmax = kernels.max_pool2d_forward(x, 2, 1, 0)
        grad_x = kernels.max_pool2d_backward(np.full_like(y, 0.5), argmax, x.shape)
    assert np.all(argmax == 4)
    assert grad_x[0, 1, 1, 0] == 2.0 and grad_x.sum() == 2.0


@pytest.mark.parametrize("backend", BACKENDS)
def test_max_pool_propagates_nan(backend):
    # torch 2.13 routes a window's gradient to its LAST NaN (max_pool2d of
    # [[nan, 1], [nan, 2]] gives index 2): a NaN always takes over
    x = np.array([1.0, np.nan, 3.0, np.nan]).reshape(1, 1, 4, 1)
    with kernels.backend(backend):
        y, argmax = kernels.max_pool2d_forward(x, (1, 4), 1, 0)
    assert np.isnan(y.ravel()[0]) and argmax.ravel()[0] == 3


@pytest.mark.parametrize("backend", BACKENDS)
def test_avg_pool_count_include_pad(backend):
    x = np.ones((1, 2, 2, 1))
    with kernels.backend(backend):
        with_pad = kernels.avg_pool2d_forward(x, 2, 1, 1, count_include_pad=True)
        without = kernels.avg_pool2d_forward(x, 2, 1, 1, count_include_pad=False)
        grad = kernels.avg_pool2d_backward(np.ones((1, 3, 3, 1)), x.shape, 2, 1, 1, count_include_pad=True)
    # corner windows hold one real cell out of four
    assert with_pad[0, 0, 0, 0] == 0.25 and with_pad[0, 1, 1, 0] == 1.0
    assert np.all(without == 1.0)
    # each input cell sits in 4 windows, each passing on 1/4
    np.testing.assert_allclose(grad, np.ones((1, 2, 2, 1)))


# ---- validation ----------------------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
def test_max_pool_ceil_mode_adds_the_windows_that_start_inside(backend):
    """torch's ceil_mode: 5 cells, kernel 2, stride 2 give 3 windows (the last holds one
    real cell); with padding 1 a fourth would start in the trailing pad and is dropped."""
    x = np.arange(25, dtype=np.float64).reshape(1, 5, 5, 1)
    with kernels.backend(backend):
        y, argmax = kernels.max_pool2d_forward(x, 2, ceil_mode=True)
        assert kernels.max_pool2d_forward(x, 2, 2, 1, ceil_mode=True)[0].shape == (1, 3, 3, 1)
        assert kernels.max_pool2d_forward(x, 3, 2, 0, ceil_mode=True)[0].shape == (1, 2, 2, 1)
    np.testing.assert_array_equal(y[0, :, :, 0], [[6, 8, 9], [16, 18, 19], [21, 23, 24]])
    np.testing.assert_array_equal(x.ravel()[argmax], y)


@pytest.mark.parametrize("backend", BACKENDS)
def test_pool_validates_arguments(backend):
    x = np.zeros((2, 4, 4, 3), dtype=np.float32)
    with kernels.backend(backend):
        with pytest.raises(ValueError, match="max_pool2d_forward.*smaller than the kernel"):
            kernels.max_pool2d_forward(x, 2, 2, 2)
        with pytest.raises(ValueError, match="kernel_size"):
            kernels.max_pool2d_forward(x, 0)
        with pytest.raises(TypeError, match="kernel_size"):
            kernels.avg_pool2d_forward(x, 2.5)
        with pytest.raises(ValueError, match="at least 1x1"):
            kernels.avg_pool2d_forward(x, 5)
        y, argmax = kernels.max_pool2d_forward(x, 2)
        with pytest.raises(TypeError, match="max_pool2d_backward.*int64"):
            kernels.max_pool2d_backward(y, argmax.astype(np.int32), x.shape)
        with pytest.raises(ValueError, match="max_pool2d_backward.*equal shapes"):
            kernels.max_pool2d_backward(y, argmax[:, :1], x.shape)
        for bad in (-1, x.size, 48):  # 48: inside x but in the other image
            wrong = argmax.copy()
            wrong[0, 0, 0, 0] = bad
            with pytest.raises(ValueError, match="outside its own image"):
                kernels.max_pool2d_backward(y, wrong, x.shape)
        with pytest.raises(ValueError, match="avg_pool2d_backward.*grad_y shape"):
            kernels.avg_pool2d_backward(np.zeros((2, 3, 3, 3), np.float32), x.shape, 2)


@pytest.mark.parametrize("backend", BACKENDS)
def test_empty_batch(backend):
    x = np.zeros((0, 5, 5, 3), np.float32)
    with kernels.backend(backend):
        pooled, argmax = kernels.max_pool2d_forward(x, 2)
        assert pooled.shape == argmax.shape == (0, 2, 2, 3)
        assert kernels.max_pool2d_backward(pooled, argmax, x.shape).shape == x.shape
        assert kernels.avg_pool2d_forward(x, 2).shape == (0, 2, 2, 3)
        assert kernels.avg_pool2d_backward(pooled, x.shape, 2).shape == x.shape

# ---- fixed sizes at every SIMD level: vector bodies, tails, parallel regions ----------
# ---- pooling ---------------------------------------------------------------------------------
# 37 and 40 channels leave tails after 8- and 16-lane vectors; both cases open parallel
# regions at 2 threads.
POOL_CASES = [
    pytest.param((6, 17, 17, 37), 3, 2, 1, id="3x3-stride2-pad1-37ch"),
    pytest.param((5, 16, 14, 40), 2, 2, 0, id="2x2-stride2-40ch"),
    # odd sizes: ceil_mode adds a last row and column of windows hanging past the input
    pytest.param((3, 15, 13, 37), 2, 2, 0, id="2x2-stride2-odd-37ch"),
]


@pytest.mark.parametrize("level, threads", CONFIGURATIONS)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("x_shape, kernel, stride, padding", POOL_CASES)
@pytest.mark.parametrize("ceil_mode", [False, True])
def test_max_pool2d(level, threads, dtype, x_shape, kernel, stride, padding, ceil_mode):
    rng = np.random.default_rng(sum(x_shape))
    x = rng.standard_normal(x_shape).astype(dtype)
    x[0, 1, 1, :5] = np.nan  # NaN wins its windows, as in PyTorch

    def passes():
        y, argmax = kernels.max_pool2d_forward(x, kernel, stride, padding, ceil_mode=ceil_mode)
        grad_y = np.arange(y.size, dtype=dtype).reshape(y.shape) / y.size
        return y, argmax, kernels.max_pool2d_backward(grad_y, argmax, x_shape)

    expected = on_numpy(passes)
    got = on_c(level, threads, passes)
    np.testing.assert_array_equal(got[0], expected[0])  # max is exact, NaN included
    np.testing.assert_array_equal(got[1], expected[1])
    assert_matches(got[2], expected[2], dtype, sum_tolerance(dtype, kernel * kernel))


@pytest.mark.parametrize("level, threads", CONFIGURATIONS)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("x_shape, kernel, stride, padding", POOL_CASES)
@pytest.mark.parametrize("count_include_pad", [True, False])
def test_avg_pool2d(level, threads, dtype, x_shape, kernel, stride, padding, count_include_pad):
    rng = np.random.default_rng(sum(x_shape) + 1)
    x = rng.standard_normal(x_shape).astype(dtype)

    def passes():
        y = kernels.avg_pool2d_forward(x, kernel, stride, padding, count_include_pad)
        grad_y = np.cos(np.arange(y.size, dtype=dtype)).reshape(y.shape)
        return y, kernels.avg_pool2d_backward(grad_y, x_shape, kernel, stride, padding, count_include_pad)

    expected = on_numpy(passes)
    got = on_c(level, threads, passes)
    assert_matches(got, expected, dtype, sum_tolerance(dtype, kernel * kernel))


# A window that dwarfs its input: kernel 2**14 with padding 2**13 - 1 on a 2x2 image is
# one window holding the 4 real cells and 2**28 - 4 padded ones. It used to cost 2 GiB
# (C: a table of one offset per window cell; numpy: a padded copy of 2**28 cells, and
# the average's backward looped over every cell in Python, for hours). Measured in fresh
# interpreters (the peak resident memory of a process is never reset), against the same
# calls with a 2x2 window, so the interpreter's own size (larger under ASan) cancels out.
WINDOW_SCRIPT = """
import resource, sys
import numpy as np
from autograd_core import kernels
kernels.set_backend(sys.argv[1])
x = np.array([1.0, 4.0, -2.0, 3.0], dtype=np.float32).reshape(1, 2, 2, 1)
kernel, padding = int(sys.argv[2]), int(sys.argv[3])
cells = float(kernel * kernel)
y, argmax = kernels.max_pool2d_forward(x, kernel, padding=padding)
grad_max = kernels.max_pool2d_backward(np.ones_like(y), argmax, x.shape)
mean = kernels.avg_pool2d_forward(x, kernel, padding=padding, count_include_pad=False)
grad_mean = kernels.avg_pool2d_backward(np.full_like(mean, 8.0), x.shape, kernel, padding=padding,
                                        count_include_pad=False)
padded_mean = kernels.avg_pool2d_forward(x, kernel, padding=padding)
grad_padded = kernels.avg_pool2d_backward(np.full_like(padded_mean, cells), x.shape, kernel, padding=padding)
print(repr([y.ravel().tolist(), argmax.ravel().tolist(), grad_max.ravel().tolist(), mean.ravel().tolist(),
            grad_mean.ravel().tolist(), (padded_mean * cells).ravel().tolist(), grad_padded.ravel().tolist()]))
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""


def _pool_window_run(backend, kernel, padding):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    result = subprocess.run([sys.executable, "-c", WINDOW_SCRIPT, backend, str(kernel), str(padding)],
                            capture_output=True, text=True, timeout=120, cwd=root)
    assert result.returncode == 0, result.stderr
    values, peak_mb = result.stdout.split("\n")[:2]
    return ast.literal_eval(values), int(peak_mb)


@pytest.mark.parametrize("backend", BACKENDS)
def test_window_that_dwarfs_the_input_costs_little_memory(backend):
    small, small_peak_mb = _pool_window_run(backend, 2, 0)
    huge, huge_peak_mb = _pool_window_run(backend, 2 ** 14, 2 ** 13 - 1)
    # the same numbers as the 2x2 window: padding adds nothing but (count_include_pad)
    # cells to the divisor
    assert small == [[4.0], [1], [0.0, 1.0, 0.0, 0.0], [1.5], [2.0, 2.0, 2.0, 2.0], [6.0], [1.0, 1.0, 1.0, 1.0]]
    assert huge == small
    assert huge_peak_mb - small_peak_mb < 250, (
        "peak resident memory %d MB with the 2**14 window, %d MB with a 2x2 one (%s backend), expected less "
        "than 250 MB more" % (huge_peak_mb, small_peak_mb, backend))


@needs_c
@pytest.mark.parametrize("simd_level, threads", CONFIGURATIONS)
def test_max_pool_without_argmax_gives_the_same_output(simd_level, threads):
    # inference (no_grad) asks for y only: C gets a NULL argmax and must not write it
    x = np.random.default_rng(8).standard_normal((3, 9, 8, 20)).astype(np.float32)
    x[0, 1, 1, :3] = np.nan
    with kernels.backend("numpy"):
        y_ref, _ = kernels.max_pool2d_forward(x, (3, 2), (2, 2), "same")
    with configured(simd_level, threads):
        y, argmax = kernels.max_pool2d_forward(x, (3, 2), (2, 2), "same", with_argmax=False)
    assert argmax is None
    np.testing.assert_array_equal(y, y_ref)
