"""2-D max and average pooling over NHWC images as differentiable ops (kernels: csrc/pool.c)."""
from .. import kernels
from ..function import Function
from ..grad_mode import is_grad_enabled
from ..registry import register


class MaxPool2d(Function):
    """y [n, out_h, out_w, c] = max over each window of x [n, h, w, c]."""

    @staticmethod
    def forward(ctx, x, kernel_size, stride, padding):
        y, argmax = kernels.max_pool2d_forward(x, kernel_size, stride, padding, with_argmax=is_grad_enabled())
        # the argmax is all backward needs: it routes each gradient to its winning cell
        # (none under no_grad, where no backward can run)
        ctx.save_for_backward(argmax)
        ctx.x_shape = x.shape
        return y

    @staticmethod
    def backward(ctx, grad):
        (argmax,) = ctx.saved_tensors
        return kernels.max_pool2d_backward(grad, argmax, ctx.x_shape), None, None, None


class AvgPool2d(Function):
    """y [n, out_h, out_w, c] = mean over each window of x [n, h, w, c]."""

    @staticmethod
    def forward(ctx, x, kernel_size, stride, padding, count_include_pad):
        ctx.x_shape = x.shape
        ctx.arguments = (kernel_size, stride, padding, count_include_pad)
        return kernels.avg_pool2d_forward(x, kernel_size, stride, padding, count_include_pad)

    @staticmethod
    def backward(ctx, grad):
        grad_x = kernels.avg_pool2d_backward(grad, ctx.x_shape, *ctx.arguments)
        return grad_x, None, None, None, None


@register("max_pool2d")
def max_pool2d(x, kernel_size, stride=None, padding=0):
    """2-D max pooling over NHWC x [batch, height, width, channels].

    kernel_size, stride: int or (h, w); stride defaults to kernel_size. padding: int,
    (pad_h, pad_w), ((top, bottom), (left, right)), 'valid' or 'same'; each pad must be
    smaller than the kernel. Padded cells never win; ties go to the first maximum in
    row-major window order. Returns [batch, out_height, out_width, channels].
    """
    return MaxPool2d.apply(x, kernel_size, stride, padding)


@register("avg_pool2d")
def avg_pool2d(x, kernel_size, stride=None, padding=0, count_include_pad=True):
    """2-D average pooling over NHWC x [batch, height, width, channels].

    Arguments as max_pool2d. Padded cells add zero to the sum; count_include_pad (True,
    as in PyTorch) also counts them in the divisor. Returns
    [batch, out_height, out_width, channels].
    """
    return AvgPool2d.apply(x, kernel_size, stride, padding, count_include_pad)
