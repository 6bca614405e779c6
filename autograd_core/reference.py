"""Numpy reference implementations of every compiled kernel.

Each function here has the same signature and result as its counterpart in
``kernels.py``. They are the test oracle, the benchmark baseline, and the fallback
when the C extension was not built. Clarity beats speed here, within reason.
"""
import numpy as np


def gemm(a, b, trans_a=False, trans_b=False, alpha=1.0, beta=0.0, c=None):
    """C = alpha * op(A) @ op(B) + beta * C for 2-D arrays; returns a new array."""
    op_a = a.T if trans_a else a
    op_b = b.T if trans_b else b
    out = np.matmul(op_a, op_b)
    if alpha != 1.0:
        out *= alpha
    if c is not None and beta != 0.0:
        out += beta * c
    return out
