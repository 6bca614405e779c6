"""Matrix multiplication with numpy's matmul semantics; float work goes to the GEMM kernel."""
import numpy as np

from .. import kernels
from ..function import Function


def _matmul(a, b):
    """numpy.matmul semantics for ndim >= 2 (batch dims broadcast), via the kernel bridge."""
    if a.dtype != b.dtype or a.dtype.kind != "f":
        return np.matmul(a, b)  # integer or mixed dtypes: numpy's promotion rules
    if a.ndim == 2 and b.ndim == 2:
        return kernels.gemm(a, b)
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    a3 = np.broadcast_to(a, batch + a.shape[-2:]).reshape((-1,) + a.shape[-2:])
    b3 = np.broadcast_to(b, batch + b.shape[-2:]).reshape((-1,) + b.shape[-2:])
    return kernels.batched_gemm(a3, b3).reshape(batch + (a.shape[-2], b.shape[-1]))


def _sum_to(grad, shape):
    """Sum a batched gradient over the batch dimensions that broadcasting added."""
    if grad.shape == shape:
        return grad
    from ._util import unbroadcast
    return unbroadcast(grad, shape)


class MatMul(Function):
    @staticmethod
    def forward(ctx, a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError("matmul: got shapes %s and %s, expected tensors with at least one dimension"
                             % (a.shape, b.shape))
        if a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
            raise ValueError("matmul: shapes %s and %s do not match: %d columns vs %d rows"
                             % (a.shape, b.shape, a.shape[-1], b.shape[-2 if b.ndim > 1 else 0]))
        try:
            np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        except ValueError:
            raise ValueError("matmul: batch dimensions of %s and %s cannot be broadcast"
                             % (a.shape, b.shape)) from None
        ctx.save_for_backward(a, b)
        # 1-D operands become matrices (a row, a column) and the added axis is dropped after
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        out = _matmul(a2, b2)
        if a.ndim == 1:
            out = out[..., 0, :]
        if b.ndim == 1:
            out = out[..., 0]
        return out

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        # undo forward's squeezes in reverse order: b's column axis went last, so it comes back first
        g = grad
        if b.ndim == 1:
            g = np.expand_dims(g, -1)
        if a.ndim == 1:
            g = np.expand_dims(g, -2)
        grad_a = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_a = _sum_to(_matmul(g, np.swapaxes(b2, -1, -2)), a2.shape).reshape(a.shape)
        if ctx.needs_input_grad[1]:
            grad_b = _sum_to(_matmul(np.swapaxes(a2, -1, -2), g), b2.shape).reshape(b.shape)
        return grad_a, grad_b


def matmul(a, b):
    """a @ b with numpy's rules: 1-D, 2-D, and batched [..., m, k] @ [..., k, n]."""
    return MatMul.apply(a, b)
