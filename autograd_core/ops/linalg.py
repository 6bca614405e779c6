"""Matrix multiplication with numpy's matmul semantics; float work goes to the GEMM kernel."""
import numpy as np

from .. import kernels
from ..function import Function
from ..grad_mode import is_grad_enabled
from ..registry import register
from ..tensor import Tensor
from ._util import ShapeError, promote, unbroadcast
from .conv2d import check_activation, masked


def _matmul(a, b):
    """numpy.matmul semantics for ndim >= 2 (batch dims broadcast), via the kernel bridge."""
    if a.dtype != b.dtype or a.dtype.kind != "f":
        return np.matmul(a, b)  # integers (MatMul.forward has promoted mixed dtypes)
    if a.ndim == 2 and b.ndim == 2:
        return kernels.gemm(a, b)
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    a3 = np.broadcast_to(a, batch + a.shape[-2:]).reshape((-1,) + a.shape[-2:])
    b3 = np.broadcast_to(b, batch + b.shape[-2:]).reshape((-1,) + b.shape[-2:])
    return kernels.batched_gemm(a3, b3).reshape(batch + (a.shape[-2], b.shape[-1]))


@register("matmul", methods=("matmul", "__matmul__"), reflected=("__rmatmul__",))
class MatMul(Function):
    """a @ b with numpy's rules: 1-D, 2-D, and batched [..., m, k] @ [..., k, n]."""

    # the two-operand apply: ctx is None when the call is not recorded (at n = 64 the
    # general apply's loop, lists and Context were a tenth of `x @ y`)
    two_operands = True

    @staticmethod
    def forward(ctx, a, b):
        try:  # (free in the common case; a number or list operand fails below with TypeError)
            common = a.ndim == 2 and b.ndim == 2 and a.dtype is b.dtype and a.dtype.kind == "f" \
                and a.shape[1] == b.shape[0]
        except AttributeError:
            common = False
        if common:
            # no broadcasting, no promotion, sizes that match: straight to the GEMM (at
            # n = 64 the general path's checks cost as much as the product)
            if ctx is not None:
                ctx.save_for_backward(a, b)
            return kernels.gemm(a, b)
        for operand in (a, b):
            if not isinstance(operand, np.ndarray):
                raise TypeError("matmul: got an operand of type %s, expected a Tensor or a numpy array"
                                % type(operand).__name__)
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError("matmul: got shapes %s and %s, expected tensors with at least one dimension"
                             % (a.shape, b.shape))
        if a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
            raise ShapeError("matmul: shapes %s and %s do not match: %d columns vs %d rows"
                             % (a.shape, b.shape, a.shape[-1], b.shape[-2 if b.ndim > 1 else 0]))
        if a.dtype != b.dtype:  # the elementwise ops' rule: int64 @ float32 is float32, not numpy's float64
            a, b = promote("matmul", a, b)
        try:
            np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        except ValueError:
            raise ShapeError("matmul: batch dimensions of %s and %s cannot be broadcast"
                             % (a.shape, b.shape)) from None
        if ctx is not None:
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
        if a.ndim == 2 and b.ndim == 2 and grad.dtype is a.dtype and a.dtype is b.dtype and a.dtype.kind == "f":
            # both products read the transposed operand in place (no swapaxes view to lay out)
            needs_a, needs_b = ctx.needs_input_grad
            return (kernels.gemm(grad, b, trans_b=True) if needs_a else None,
                    kernels.gemm(a, grad, trans_a=True) if needs_b else None)
        return _product_gradients(a, b, grad, ctx.needs_input_grad, _matmul)

    @staticmethod
    def differentiable_backward(ctx, grad):
        """backward's formula on Tensors: matmul nodes again (the GEMM kernels at every order)."""
        a, b = (value if isinstance(value, Tensor) else Tensor(np.asarray(value)) for value in ctx.inputs)
        return _product_gradients(a, b, grad, ctx.needs_input_grad, MatMul.apply)


def _product_gradients(a, b, grad, needs, product):
    """(grad_a, grad_b) of a @ b (None where needs says no) from the output's gradient,
    with product the matrix product: written with what numpy arrays and Tensors share
    (reshape, swapaxes, unbroadcast), so that one formula serves both orders."""
    # 1-D operands as a row / a column, as forward multiplied them
    a2 = a.reshape((1,) + a.shape) if a.ndim == 1 else a
    b2 = b.reshape(b.shape + (1,)) if b.ndim == 1 else b
    # undo forward's squeezes in reverse order: b's column axis went last, so it comes back first
    g = grad
    if b.ndim == 1:
        g = g.reshape(g.shape + (1,))
    if a.ndim == 1:
        g = g.reshape(g.shape[:-1] + (1,) + g.shape[-1:])
    grad_a = grad_b = None
    if needs[0]:
        grad_a = unbroadcast(product(g, b2.swapaxes(-1, -2)), a2.shape).reshape(a.shape)
    if needs[1]:
        grad_b = unbroadcast(product(a2.swapaxes(-1, -2), g), b2.shape).reshape(b.shape)
    return grad_a, grad_b


class Linear(Function):
    """y = activation(x @ weight.T + bias) as one node: every product is one GEMM on the
    arrays as they lie (weight [out, in] is read transposed in place), the weight
    gradient comes out [out, in] and C-contiguous, as the optimizers want it, and the
    bias and the ReLU are one threaded pass over y (kernels.bias_relu_forward), the
    ReLU's mask kept as bits."""

    @staticmethod
    def forward(ctx, x, weight, bias, activation=None):
        ctx.save_for_backward(x, weight)
        y = kernels.gemm(x, weight, trans_b=True)
        relu = activation == "relu"
        ctx.mask = None
        if bias is not None or relu:
            _, ctx.mask = kernels.bias_relu_forward(y, bias, relu, with_mask=is_grad_enabled(), out=y)
        return y

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        needs_x, needs_weight, needs_bias = ctx.needs_input_grad[:3]
        grad, grad_bias = kernels.relu_bias_backward(grad, ctx.mask, with_bias=needs_bias)
        return (kernels.gemm(grad, weight) if needs_x else None,
                kernels.gemm(grad, x, trans_a=True) if needs_weight else None,
                grad_bias, None)

    @staticmethod
    def differentiable_backward(ctx, grad):
        # matmul nodes (GEMM at every order) after the ReLU's mask, a constant
        x, weight = ctx.inputs[:2]
        needs_x, needs_weight, needs_bias = ctx.needs_input_grad[:3]
        grad = masked(grad, ctx.mask)
        return (MatMul.apply(grad, weight) if needs_x else None,
                MatMul.apply(grad.swapaxes(0, 1), x) if needs_weight else None,
                grad.sum(axis=0) if needs_bias else None, None)


@register("linear")
def linear(x, weight, bias=None, activation=None):
    """activation(x @ weight.T + bias) for x [batch, in], weight [out, in], bias [out] or
    None, activation None or 'relu' (fused: one pass for the bias and the ReLU, whose
    mask is kept as bits); returns [batch, out]. Leading dimensions of x beyond two are
    flattened and restored."""
    check_activation("linear", activation)
    for name, value in (("x", x), ("weight", weight), ("bias", bias)):
        if value is not None and not isinstance(value, Tensor):
            raise TypeError("linear: %s must be a Tensor, got %s" % (name, type(value).__name__))
    if weight.ndim != 2:
        raise ValueError("linear: got weight of shape %s, expected [out_features, in_features]" % (weight.shape,))
    if x.ndim < 1 or x.shape[-1] != weight.shape[1]:
        raise ValueError("linear: got input of shape %s and weight of shape %s, expected the input to end "
                         "in in_features=%d" % (x.shape, weight.shape, weight.shape[1]))
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError("linear: got bias of shape %s, expected (%d,)" % (bias.shape, weight.shape[0]))
    dtypes = {v.dtype for v in (x, weight, bias) if v is not None}
    if len(dtypes) != 1 or x.dtype.kind != "f":
        raise TypeError("linear: got dtypes %s, expected one float dtype for input, weight and bias"
                        % sorted(str(d) for d in dtypes))
    if x.ndim == 2:
        return Linear.apply(x, weight, bias, activation)
    rows = x.reshape(-1, x.shape[-1]) if x.ndim != 1 else x.reshape(1, -1)
    y = Linear.apply(rows, weight, bias, activation)
    return y.reshape(x.shape[:-1] + (weight.shape[0],))
