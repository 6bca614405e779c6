"""2-D convolution over NHWC images as a differentiable op (the kernels live in csrc/conv2d.c)."""
import numpy as np

from .. import kernels
from ..function import Function
from ..registry import register


class Conv2d(Function):
    """y = conv(x, weight) + bias: x [n, h, w, c_in], weight [kh, kw, c_in, c_out],
    bias [c_out] or None -> y [n, out_h, out_w, c_out]."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding):
        y = kernels.conv2d_forward(x, weight, stride, padding)
        if bias is not None:
            if not isinstance(bias, np.ndarray) or bias.shape != (weight.shape[3],):
                raise ValueError("conv2d: got bias of shape %s, expected (%d,) (one per output channel)"
                                 % (np.shape(bias), weight.shape[3]))
            if bias.dtype != y.dtype:
                raise TypeError("conv2d: got bias dtype %s, expected %s like the input"
                                % (bias.dtype, y.dtype))
            y += bias  # in place: y is a fresh array, and this avoids a second output buffer
        ctx.save_for_backward(x, weight)
        ctx.stride, ctx.padding = stride, padding
        return y

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        needs_x, needs_weight, needs_bias = ctx.needs_input_grad[:3]
        grad_x = grad_weight = grad_bias = None
        if needs_x:
            grad_x = kernels.conv2d_backward_input(grad, weight, x.shape, ctx.stride, ctx.padding)
        if needs_weight:
            grad_weight = kernels.conv2d_backward_weight(x, grad, weight.shape, ctx.stride, ctx.padding)
        if needs_bias:
            grad_bias = grad.sum(axis=(0, 1, 2))
        return grad_x, grad_weight, grad_bias, None, None


@register("conv2d")
def conv2d(x, weight, bias=None, stride=1, padding="valid"):
    """2-D convolution (cross-correlation, as in PyTorch and TensorFlow) over NHWC images.

    x: [batch, height, width, in_channels]; weight: [kh, kw, in_channels, out_channels];
    bias: [out_channels] or None. stride: int or (stride_h, stride_w). padding: 'valid',
    'same' (TensorFlow's rule: output = ceil(input / stride), an odd total padding puts
    the extra row/column after), an int, (pad_h, pad_w) or ((top, bottom), (left, right)).
    Returns [batch, out_height, out_width, out_channels].
    """
    return Conv2d.apply(x, weight, bias, stride, padding)
