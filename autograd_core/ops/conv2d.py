"""2-D convolution over NHWC images as a differentiable op (the kernels live in csrc/conv2d.c)."""
import numpy as np

from .. import kernels
from ..function import Function
from ..grad_mode import is_grad_enabled
from ..registry import register
from ..tensor import Tensor
from . import convolution


ACTIVATIONS = (None, "relu")


def check_activation(op, activation):
    """activation itself when it is one the fused ops apply (None or 'relu')."""
    if activation not in ACTIVATIONS:
        raise ValueError("%s: got activation=%r, expected None or 'relu'" % (op, activation))
    return activation


def masked(grad, mask):
    """grad (a Tensor) times the fused ReLU's bit mask (None: no ReLU) as a constant 0/1
    array: the ReLU's derivative, whose own derivative is 0 almost everywhere."""
    if mask is None:
        return grad
    active = np.unpackbits(mask, count=int(np.prod(grad.shape)), bitorder="little").reshape(grad.shape)
    return grad * Tensor(active.astype(grad.dtype))


class Conv2d(Function):
    """y = activation(conv(x, weight) + bias): x [n, h, w, c_in], weight [kh, kw, c_in, c_out],
    bias [c_out] or None, activation None or 'relu' -> y [n, out_h, out_w, c_out].

    The bias and the ReLU are one threaded pass over y, in place (kernels.bias_relu_forward),
    and the backward's mask and bias gradient one pass over the gradient; the ReLU's mask
    is kept as bits, not as the output."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, activation=None):
        y = kernels.conv2d_forward(x, weight, stride, padding)
        relu = activation == "relu"
        if bias is not None:
            if not isinstance(bias, np.ndarray) or bias.shape != (weight.shape[3],):
                raise ValueError("conv2d: got bias of shape %s, expected (%d,) (one per output channel)"
                                 % (np.shape(bias), weight.shape[3]))
            if bias.dtype != y.dtype:
                raise TypeError("conv2d: got bias dtype %s, expected %s like the input"
                                % (bias.dtype, y.dtype))
        ctx.mask = None
        if bias is not None or relu:
            # in place: y is a fresh array, and this avoids a second output buffer
            _, ctx.mask = kernels.bias_relu_forward(y, bias, relu, with_mask=is_grad_enabled(), out=y)
        ctx.save_for_backward(x, weight)
        ctx.stride, ctx.padding = stride, padding
        return y

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        needs_x, needs_weight, needs_bias = ctx.needs_input_grad[:3]
        grad_x = grad_weight = None
        grad, grad_bias = kernels.relu_bias_backward(grad, ctx.mask, with_bias=needs_bias)
        if needs_x:
            grad_x = kernels.conv2d_backward_input(grad, weight, x.shape, ctx.stride, ctx.padding)
        if needs_weight:
            grad_weight = kernels.conv2d_backward_weight(x, grad, weight.shape, ctx.stride, ctx.padding)
        return grad_x, grad_weight, grad_bias, None, None, None

    @staticmethod
    def differentiable_backward(ctx, grad):
        """The gradients as ConvPart nodes on the same C kernels (see
        convolution._ADJOINTS), after the ReLU's mask, a constant (its derivative is 0
        almost everywhere)."""
        x, weight = ctx.inputs[:2]
        needs_x, needs_weight, needs_bias = ctx.needs_input_grad[:3]
        grad = masked(grad, ctx.mask)
        stride, padding, x_shape, weight_shape = ctx.stride, ctx.padding, x.shape, weight.shape
        maps = (lambda a, w: kernels.conv2d_forward(a, w, stride, padding),
                lambda g, w: kernels.conv2d_backward_input(g, w, x_shape, stride, padding),
                lambda a, g: kernels.conv2d_backward_weight(a, g, weight_shape, stride, padding))
        run = lambda part, first, second: convolution.ConvPart.apply(first, second, part, maps)
        grad_x, grad_weight = convolution.conv_adjoints(convolution.CONV, x, weight, grad, (needs_x, needs_weight),
                                                        run)
        grad_bias = grad.sum(axis=(0, 1, 2)) if needs_bias else None
        return grad_x, grad_weight, grad_bias, None, None, None


@register("conv2d")
def conv2d(x, weight, bias=None, stride=1, padding="valid", dilation=1, groups=1, *, activation=None):
    """2-D convolution (cross-correlation, as in PyTorch and TensorFlow) over NHWC images,
    then the activation, as one op.

    x: [batch, height, width, in_channels]; weight: [kh, kw, in_channels, out_channels];
    bias: [out_channels] or None. stride: int or (stride_h, stride_w). padding: 'valid',
    'same' (TensorFlow's rule: output = ceil(input / stride), an odd total padding puts
    the extra row/column after), an int, (pad_h, pad_w) or ((top, bottom), (left, right)).
    activation: None or 'relu' (relu(conv2d(...)) with the bias and the ReLU fused into
    one pass, and the ReLU's mask kept as bits). Returns [batch, out_height, out_width,
    out_channels].

    dilation (int or pair) and groups take PyTorch's positions (activation is keyword-only,
    so torch's positional calls mean the same here): with groups > 1 the weight is [kh, kw,
    in_channels/groups, out_channels] and group j maps input channels
    [j*in/groups, (j+1)*in/groups) to output channels [j*out/groups, (j+1)*out/groups)
    (groups = in_channels: depthwise). Those go through ops/convolution.py (the C conv2d
    kernels once per group, a depthwise numpy path, or im2col and the GEMM kernel),
    which also takes an input without its batch axis (as the default path does); the default dilation=1, groups=1
    stays the one fused C op.
    """
    if dilation == 1 and groups == 1:  # the CNN's path: nothing more than before
        if getattr(x, "ndim", 4) == 3:  # one unbatched image [H, W, C], as torch accepts
            return Conv2d.apply(x.unsqueeze(0), weight, bias, stride, padding,
                                check_activation("conv2d", activation)).squeeze(0)
        return Conv2d.apply(x, weight, bias, stride, padding, check_activation("conv2d", activation))
    relu = check_activation("conv2d", activation) == "relu"
    y = convolution.Convolution.apply(x, weight, bias, "conv2d", 2, stride, padding, dilation, groups)
    return y.relu() if relu else y
