"""Every threaded C kernel gives the numpy reference's answer whatever team OpenMP grants.

OpenMP may start a smaller team than a region asks for: OMP_DYNAMIC=true lets it shrink
teams to the machine's load, OMP_THREAD_LIMIT caps them, and HPC schedulers set both. A
kernel that splits work or sizes per-thread buffers by the count it asked for (rather
than the team it got, which csrc/parallel.h tells every region body) leaves work undone
or sums partials no thread wrote: conv2d's weight gradient was wrong by up to 1e36 that
way, with no error. Each environment runs in a fresh interpreter (libgomp reads it once,
at load), which runs every threaded kernel at set_num_threads 1, 2, 3 and 7 on sizes
above the kernels' thresholds for going parallel (ag_threads_for minimums: GEMM 128**3
multiply-adds, conv2d 2**20, pooling 32768 cells, RNN cells 8192 elements).
"""
import os
import subprocess
import sys

import pytest
from kernel_configurations import needs_c

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# Run in the subprocess: prints one line per mismatch, then "checked N".
SCRIPT = r"""
import sys
import numpy as np
sys.path.insert(0, sys.argv[1])
from kernel_configurations import assert_matches, sum_tolerance
from autograd_core import kernels

rng = np.random.default_rng(10)


def normal(*shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


def conv_case(x_shape, w_shape, dtype, stride=1, padding="same"):
    x, w = normal(*x_shape, dtype=dtype), normal(*w_shape, dtype=dtype)
    with kernels.backend("numpy"):
        grad_y = normal(*kernels.conv2d_forward(x, w, stride, padding).shape, dtype=dtype)
    terms = max(w_shape[0] * w_shape[1] * max(w_shape[2], w_shape[3]), grad_y.size // grad_y.shape[3])
    return (lambda: (kernels.conv2d_forward(x, w, stride, padding),
                     kernels.conv2d_backward_input(grad_y, w, x.shape, stride, padding),
                     kernels.conv2d_backward_weight(x, grad_y, w.shape, stride, padding)), dtype, terms)


def winograd_case(x_shape, w_shape, dtype):
    passes, dtype, terms = conv_case(x_shape, w_shape, dtype)
    return passes, dtype, 64 * terms


def pool_case(x_shape, kernel, stride, padding, dtype):
    x = normal(*x_shape, dtype=dtype)

    def passes():
        y, argmax = kernels.max_pool2d_forward(x, kernel, stride, padding)
        grad_y = np.cos(np.arange(y.size, dtype=dtype)).reshape(y.shape)
        mean = kernels.avg_pool2d_forward(x, kernel, stride, padding, False)
        return (y, argmax, kernels.max_pool2d_backward(grad_y, argmax, x.shape), mean,
                kernels.avg_pool2d_backward(grad_y, x.shape, kernel, stride, padding, False))
    return passes, dtype, kernel * kernel


def lstm_cell_case(batch, hidden, dtype):
    gates, c_prev = normal(batch, 4 * hidden, dtype=dtype), normal(batch, hidden, dtype=dtype)
    grad_h, grad_c = normal(batch, hidden, dtype=dtype), normal(batch, hidden, dtype=dtype)

    def passes():
        h, c, saved = kernels.lstm_cell_forward(gates, c_prev)
        return (h, c, saved) + tuple(kernels.lstm_cell_backward(saved, c_prev, grad_h, grad_c))
    return passes, dtype, 4


def gru_cell_case(batch, hidden, dtype):
    gi, gh = normal(batch, 3 * hidden, dtype=dtype), normal(batch, 3 * hidden, dtype=dtype)
    h_prev, grad_h = normal(batch, hidden, dtype=dtype), normal(batch, hidden, dtype=dtype)

    def passes():
        h, saved = kernels.gru_cell_forward(gi, gh, h_prev)
        return (h, saved) + tuple(kernels.gru_cell_backward(saved, h_prev, grad_h))
    return passes, dtype, 4


def lstm_step_case(batch, hidden, dtype, bias_rows):
    x_gates, h_prev = normal(batch, 4 * hidden, dtype=dtype), normal(batch, hidden, dtype=dtype)
    c_prev, weight_hh = normal(batch, hidden, dtype=dtype), normal(4 * hidden, hidden, dtype=dtype) / 8
    bias, grad_h = normal(4 * hidden, dtype=dtype), normal(batch, hidden, dtype=dtype)
    grad_c = normal(batch, hidden, dtype=dtype)
    weight_hh_t = np.ascontiguousarray(weight_hh.T)

    def passes():
        h, c, saved = kernels.lstm_step_forward(x_gates, h_prev, c_prev, weight_hh_t, bias=bias)
        # rows for the team asked for, or fewer / more: each thread adds into a row of its
        # own, the rest stay as they were (zero); only the total over rows counts
        rows = kernels.get_num_threads() if bias_rows is None else bias_rows
        grad_bias_sum = np.zeros((rows, 4 * hidden), dtype=dtype)
        grads = kernels.lstm_step_backward(saved, c_prev, grad_h, grad_c, weight_hh, grad_bias_sum=grad_bias_sum)
        return (h, c, saved) + tuple(grads) + (grad_bias_sum.sum(axis=0),)
    return passes, dtype, batch * hidden


def gemm_case(dtype):
    a, b = normal(161, 131, dtype=dtype), normal(131, 150, dtype=dtype)
    at, bt = normal(131, 161, dtype=dtype), normal(150, 131, dtype=dtype)
    stack_a, stack_b = normal(41, 47, 37, dtype=dtype), normal(41, 37, 40, dtype=dtype)
    x, weight, bias = normal(300, 97, dtype=dtype), normal(120, 97, dtype=dtype), normal(120, dtype=dtype)
    return (lambda: (kernels.gemm(a, b), kernels.gemm(at, bt, True, True), kernels.batched_gemm(stack_a, stack_b),
                     kernels.projection_forward(x, weight, bias)), dtype, 161)


CASES = {
    "gemm float32": gemm_case(np.float32),
    "gemm float64": gemm_case(np.float64),
    # the seed CNN's first layer: its weight gradient was the one off by up to 1e36
    "conv seed first layer cin1 cout32 float32": conv_case((16, 28, 28, 1), (5, 5, 1, 32), np.float32),
    "conv cin3 cout7 float32": conv_case((16, 24, 24, 3), (3, 3, 3, 7), np.float32),
    "conv cin8 cout16 float64": conv_case((8, 16, 16, 8), (3, 3, 8, 16), np.float64),
    "conv direct cin16 cout32 float32": conv_case((6, 12, 12, 16), (3, 3, 16, 32), np.float32),
    "conv stride2 cin5 cout9 float64": conv_case((9, 21, 19, 5), (4, 3, 5, 9), np.float64, 2),
    # Winograd F(4x4, 5x5) forward and input gradient (threads take blocks of tiles); 64x
    # the terms: its transforms' rounding (winograd_tolerance, 8x sum_tolerance)
    "conv winograd 5x5 cin20 cout24 float32": winograd_case((6, 13, 12, 20), (5, 5, 20, 24), np.float32),
    "pool 2x2 float32": pool_case((4, 32, 32, 16), 2, None, 0, np.float32),
    "pool 3x3 stride2 pad1 float64": pool_case((5, 31, 29, 7), 3, 2, 1, np.float64),
    "lstm cell float32": lstm_cell_case(37, 256, np.float32),
    "gru cell float64": gru_cell_case(37, 256, np.float64),
    "lstm step float32": lstm_step_case(37, 256, np.float32, None),
    "lstm step float64, 2 bias rows": lstm_step_case(37, 256, np.float64, 2),
    "lstm step float32, 9 bias rows": lstm_step_case(37, 256, np.float32, 9),
}

failures, checked = [], 0
for name, (passes, dtype, terms) in CASES.items():
    with kernels.backend("numpy"):
        expected = passes()
    for threads in (1, 2, 3, 7):
        kernels.set_num_threads(threads)
        try:  # an error is a failure of this case too, reported with the others
            with kernels.backend("c"):
                got = passes()
            assert_matches(got, expected, dtype, sum_tolerance(dtype, terms))
        except (AssertionError, ValueError, MemoryError) as error:
            failures.append("%s at set_num_threads(%d): %s: %s" % (
                name, threads, type(error).__name__, " ".join(str(error).split())[:300]))
        checked += 1
print("\n".join(failures))
print("checked", checked)
"""

ENVIRONMENTS = {
    "OMP_DYNAMIC=true": {"OMP_DYNAMIC": "true"},
    "OMP_THREAD_LIMIT=1": {"OMP_THREAD_LIMIT": "1"},
    "OMP_THREAD_LIMIT=2": {"OMP_THREAD_LIMIT": "2"},
    "default": {},
}


@needs_c
@pytest.mark.parametrize("setting", list(ENVIRONMENTS))
def test_every_threaded_kernel_matches_the_reference_whatever_team_openmp_grants(setting):
    environment = {name: value for name, value in os.environ.items()
                   if not name.startswith(("OMP_", "GOMP_", "AUTOGRAD_CORE_"))}
    environment.update(ENVIRONMENTS[setting])
    result = subprocess.run([sys.executable, "-c", SCRIPT, HERE], cwd=ROOT, env=environment,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    assert lines[-1] == "checked %d" % (15 * 4), result.stdout[-3000:]
    mismatches = [line for line in lines[:-1] if line]
    assert not mismatches, "under %s:\n%s" % (setting, "\n".join(mismatches))
