"""Activation functions with PyTorch's names, arguments and gradients (torch.nn.functional's
gelu, silu, mish, hardswish, hardsigmoid, selu, celu, softsign, hardtanh, relu6,
logsigmoid, softmin, glu and prelu). relu, leaky_relu, elu, softplus, sigmoid and tanh
live in elementwise.py; softmax in reduce.py.

Every op is elementwise (any shape -> the same shape) except softmin and glu, which work
along one dimension, and prelu, whose weight is per channel. This project is
channels-last, so prelu's channel is the LAST dimension of an input of two or more
dimensions (torch's is dimension 1): ``prelu(x, w)`` here is
``torch.prelu(x.movedim(-1, 1), w).movedim(1, -1)``.

Gradients at the kinks are torch's (tools/autograd/derivatives.yaml and its kernels): the
piecewise-linear ops pass the gradient only strictly inside their linear piece (hardtanh
and relu6 give 0 at their bounds, hardsigmoid 0 at -3 and 3, hardswish 0 at -3 and 1 at
3); selu and celu take their negative branch at 0; prelu's input gradient at 0 is the
weight.

Second derivatives (create_graph=True): each op's differentiable_backward is its gradient
formula on Tensors, the saved factors (Phi, tanh, sigmoid) recomputed from the input by
ops; where the formula allows, it is the numpy backward's own (gelu's against a namespace,
silu's, mish's and glu's with operators only). The piecewise-linear ops multiply the
gradient by a constant mask, so their second derivative is 0 as in torch."""
import math

import numpy as np

from ..function import Function
from ..kernels import activation as _activation_kernels
from ..registry import register
from ..tensor import _DEFAULT_FLOAT, as_tensor
from ._util import DimensionError, unbroadcast
from .elementwise import Neg, Softplus, Tanh, _sigmoid, cast, where
from .pointwise import _GRAPH_MATH, Erfc
from .reduce import softmax
from .shape import chunk, concat

def _softplus(a):
    # log(1 + exp(a)) with exp of a non-positive number only
    return np.maximum(a, 0) + np.log1p(np.exp(-np.abs(a)))


def _refuse_bool(op, a):
    if a.dtype == np.bool_:
        raise TypeError("%s: got a tensor of dtype bool, expected a float or integer tensor" % op)


def _check_number(op, name, value):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError("%s: got %s=%r, expected a number" % (op, name, value))
    return float(value)


# ---- gelu -------------------------------------------------------------------------------
# The first-order forward and backward are one pass each of the activation kernel family
# (kernels/activation.py: C, with the former numpy code as its reference); the backward
# recomputes gelu'(x) from the saved input instead of keeping Phi(x) or tanh alive.
_TANH_SCALE = _activation_kernels._TANH_SCALE
_TANH_CUBIC = _activation_kernels._TANH_CUBIC
# gelu's derivative, one formula for numpy arrays and Tensors (the graph form below)
_gelu_slope = _activation_kernels.gelu_slope


class Gelu(Function):
    name = "gelu"
    float_input = True

    @staticmethod
    def forward(ctx, a, approximate):
        ctx.approximate = approximate
        ctx.save_for_backward(a)
        return _activation_kernels.gelu_forward(a, approximate)

    @staticmethod
    def backward(ctx, grad):
        a, = ctx.saved_tensors
        if grad.dtype != a.dtype or grad.shape != a.shape:  # (a gradient of another dtype promotes, as numpy does)
            return _activation_kernels.gelu_backward_reference(a, grad, ctx.approximate), None
        return _activation_kernels.gelu_backward(a, grad, ctx.approximate), None

    @staticmethod
    def differentiable_backward(ctx, grad):
        # the saved factor recomputed from the input by ops, so that it is in the graph
        a = ctx.inputs[0]
        if ctx.approximate == "none":
            saved = 0.5 * Erfc.apply(a * -math.sqrt(0.5))
        else:
            saved = Tanh.apply(_TANH_SCALE * (a + _TANH_CUBIC * a * a * a))
        return grad * _gelu_slope(_GRAPH_MATH, a, saved, ctx.approximate), None


@register("gelu")
def gelu(x, approximate="none"):
    """x * Phi(x), Phi the standard normal CDF (approximate='none', computed with erf), or
    0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) (approximate='tanh'), as
    torch.nn.functional.gelu. Float tensors; any shape -> same shape."""
    if approximate not in ("none", "tanh"):
        raise ValueError("gelu: got approximate=%r, expected 'none' or 'tanh'" % (approximate,))
    return Gelu.apply(x, approximate)


# ---- smooth elementwise activations ----------------------------------------------------
@register("silu")
class Silu(Function):
    """x * sigmoid(x) (swish), as torch.nn.functional.silu. Float tensors; any shape."""
    float_input = True

    # first order: one pass each way of the activation kernel family, from the input
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return _activation_kernels.silu_forward(a)

    @staticmethod
    def backward(ctx, grad):
        a, = ctx.saved_tensors
        if grad.dtype != a.dtype or grad.shape != a.shape:  # (a gradient of another dtype promotes, as numpy does)
            return _activation_kernels.silu_backward_reference(a, grad)
        return _activation_kernels.silu_backward(a, grad)

    @staticmethod
    def differentiable_backward(ctx, grad):
        a = ctx.inputs[0]
        return grad * _silu_slope(a, a.sigmoid())


def _silu_slope(a, sigmoid):
    """silu's derivative from a and sigmoid(a): operators only, for arrays and Tensors."""
    return sigmoid * (1.0 + a * (1.0 - sigmoid))


@register("mish")
class Mish(Function):
    """x * tanh(softplus(x)), as torch.nn.functional.mish. Float tensors; any shape."""
    float_input = True

    @staticmethod
    def forward(ctx, a):
        tanh = np.tanh(_softplus(a))
        ctx.save_for_backward(a, tanh)
        return a * tanh

    @staticmethod
    def backward(ctx, grad):
        a, tanh = ctx.saved_tensors
        return grad * _mish_slope(a, tanh, _sigmoid(a))

    @staticmethod
    def differentiable_backward(ctx, grad):
        a = ctx.inputs[0]
        # softplus without its linear cut-off (threshold inf), as the forward computes it
        tanh = Softplus.apply(a, 1.0, math.inf).tanh()
        return grad * _mish_slope(a, tanh, a.sigmoid())


def _mish_slope(a, tanh, sigmoid):
    """mish's derivative from a, tanh(softplus(a)) and sigmoid(a) (the derivative of
    softplus): operators only, for arrays and Tensors."""
    return tanh + a * sigmoid * (1.0 - tanh * tanh)


@register("logsigmoid")
class Logsigmoid(Function):
    """log(sigmoid(x)) = -softplus(-x), computed stably, as torch.nn.functional.logsigmoid.
    Float tensors; any shape."""
    float_input = True

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return np.minimum(a, 0) - np.log1p(np.exp(-np.abs(a)))

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return grad * _sigmoid(-a)

    @staticmethod
    def differentiable_backward(ctx, grad):
        return grad * (-ctx.inputs[0]).sigmoid()


@register("softsign")
class Softsign(Function):
    """x / (1 + |x|), as torch.nn.functional.softsign; an integer tensor gives float32, as
    in torch. Any shape -> same shape."""
    coerce_input = True

    @staticmethod
    def forward(ctx, a):
        _refuse_bool("softsign", a)
        if a.dtype.kind != "f":
            a = a.astype(_DEFAULT_FLOAT)
        denominator = 1.0 + np.abs(a)
        ctx.save_for_backward(denominator)
        return a / denominator

    @staticmethod
    def backward(ctx, grad):
        (denominator,) = ctx.saved_tensors
        return grad / (denominator * denominator)

    @staticmethod
    def differentiable_backward(ctx, grad):
        denominator = 1.0 + ctx.inputs[0].abs()
        return grad / (denominator * denominator)


# ---- the exponential-linear family -----------------------------------------------------
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


@register("selu")
class Selu(Function):
    """scale * (x if x > 0 else alpha * (exp(x) - 1)) with torch's fixed alpha ~ 1.6733 and
    scale ~ 1.0507, as torch.selu. Float tensors; any shape. The gradient at 0 is the
    negative branch's, scale * alpha, as in torch."""
    float_input = True

    @staticmethod
    def forward(ctx, a):
        negative = (_SELU_SCALE * _SELU_ALPHA) * np.expm1(np.minimum(a, 0))
        ctx.save_for_backward(a, negative)
        return np.where(a > 0, _SELU_SCALE * a, negative)

    @staticmethod
    def backward(ctx, grad):
        a, negative = ctx.saved_tensors
        return np.where(a > 0, _SELU_SCALE * grad, grad * (negative + _SELU_SCALE * _SELU_ALPHA))

    @staticmethod
    def differentiable_backward(ctx, grad):
        a = ctx.inputs[0]
        positive = a.data > 0
        # (the exp of the positive side is never used; 0 there so that it cannot overflow)
        negative_slope = (_SELU_SCALE * _SELU_ALPHA) * where(positive, 0.0, a).exp()
        return where(positive, _SELU_SCALE * grad, grad * negative_slope)


class Celu(Function):
    name = "celu"
    float_input = True

    @staticmethod
    def forward(ctx, a, alpha):
        exponential = np.exp(np.minimum(a, 0) / alpha)
        ctx.save_for_backward(a, exponential)
        return np.where(a > 0, a, alpha * np.expm1(np.minimum(a, 0) / alpha))

    @staticmethod
    def backward(ctx, grad):
        a, exponential = ctx.saved_tensors
        return np.where(a > 0, grad, grad * exponential), None

    @staticmethod
    def differentiable_backward(ctx, grad):
        a, alpha = ctx.inputs[0], ctx.inputs[1]
        positive = a.data > 0
        return where(positive, grad, grad * (where(positive, 0.0, a) / alpha).exp()), None


@register("celu")
def celu(x, alpha=1.0):
    """x if x > 0 else alpha * (exp(x / alpha) - 1), as torch.celu; alpha must not be 0.
    Float tensors; any shape. The gradient at 0 is the negative branch's, 1."""
    alpha = _check_number("celu", "alpha", alpha)
    if alpha == 0:
        raise ValueError("celu: got alpha=0, expected a nonzero alpha (it divides x)")
    return Celu.apply(x, alpha)


# ---- piecewise-linear activations ------------------------------------------------------
class Hardtanh(Function):
    """Clamp to [low, high]; the gradient passes strictly inside (0 at the bounds, unlike
    clip's), as torch's hardtanh_backward. An integer tensor stays integer with the bounds
    truncated to integers, as in torch; bool is refused."""
    name = "hardtanh"
    coerce_input = True

    @classmethod
    def forward(cls, ctx, a, low, high):
        _refuse_bool(cls.name, a)
        if a.dtype.kind != "f":
            info = np.iinfo(a.dtype)
            return np.clip(a, max(int(low), info.min), min(int(high), info.max)).astype(a.dtype, copy=False)
        ctx.save_for_backward(a)
        ctx.bounds = (low, high)
        return np.clip(a, low, high)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        low, high = ctx.bounds
        zero = grad.dtype.type(0)
        return np.where((a > low) & (a < high), grad, zero), None, None

    # piecewise linear: the mask is a constant (second derivative 0)
    @staticmethod
    def differentiable_backward(ctx, grad):
        (a,) = ctx.saved_tensors
        low, high = ctx.bounds
        return where((a > low) & (a < high), grad, 0.0), None, None


class Relu6(Hardtanh):
    name = "relu6"


@register("hardtanh")
def hardtanh(x, min_val=-1.0, max_val=1.0):
    """x clamped to [min_val, max_val], as torch.nn.functional.hardtanh; the gradient is 1
    strictly between the bounds and 0 at and beyond them. Any shape -> same shape."""
    low, high = _check_number("hardtanh", "min_val", min_val), _check_number("hardtanh", "max_val", max_val)
    if low > high:
        raise ValueError("hardtanh: got min_val=%s > max_val=%s, expected min_val <= max_val" % (min_val, max_val))
    return Hardtanh.apply(x, low, high)


@register("relu6")
def relu6(x):
    """min(max(x, 0), 6), as torch.nn.functional.relu6 (hardtanh(x, 0, 6)): gradient 1 on
    (0, 6), 0 at 0 and 6. Any shape -> same shape."""
    return Relu6.apply(x, 0.0, 6.0)


@register("hardsigmoid")
class Hardsigmoid(Function):
    """relu6(x + 3) / 6, as torch.nn.functional.hardsigmoid: gradient 1/6 on (-3, 3), 0 at
    and beyond -3 and 3. Float tensors; any shape."""
    float_input = True

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return np.clip(a + 3.0, 0.0, 6.0) / 6.0

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return np.where((a > -3.0) & (a < 3.0), grad / 6.0, grad.dtype.type(0))

    @staticmethod
    def differentiable_backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return where((a > -3.0) & (a < 3.0), grad / 6.0, 0.0)


@register("hardswish")
class Hardswish(Function):
    """x * relu6(x + 3) / 6, as torch.nn.functional.hardswish: gradient 0 for x <= -3,
    x / 3 + 1/2 on (-3, 3), 1 for x >= 3 (torch's values at the kinks). Float tensors."""
    float_input = True

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return np.where(a <= -3.0, a.dtype.type(0), np.where(a >= 3.0, a, a * (a + 3.0) / 6.0))

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        inside = grad * (a / 3.0 + 0.5)
        return np.where(a <= -3.0, grad.dtype.type(0), np.where(a < 3.0, inside, grad))

    @staticmethod
    def differentiable_backward(ctx, grad):
        a = ctx.inputs[0]
        values = a.data
        inside = grad * (a / 3.0 + 0.5)  # (the middle piece is quadratic: its slope is in the graph)
        return where(values <= -3.0, 0.0, where(values < 3.0, inside, grad))


class Prelu(Function):
    name = "prelu"

    @staticmethod
    def forward(ctx, a, weight):
        ctx.weight_shape = weight.shape
        ctx.per_channel = weight.size > 1
        slope = weight if ctx.per_channel else weight.reshape(())
        ctx.save_for_backward(a, slope)
        return np.where(a > 0, a, slope * a)

    @staticmethod
    def backward(ctx, grad):
        a, slope = ctx.saved_tensors
        positive = a > 0
        zero = grad.dtype.type(0)
        grad_input = np.where(positive, grad, slope * grad) if ctx.needs_input_grad[0] else None
        grad_weight = None
        if ctx.needs_input_grad[1]:
            contribution = np.where(positive, zero, grad * a)
            if ctx.per_channel:
                grad_weight = unbroadcast(contribution, ctx.weight_shape)
            else:
                grad_weight = np.reshape(contribution.sum(), ctx.weight_shape)
        return grad_input, grad_weight

    @staticmethod
    def differentiable_backward(ctx, grad):
        a, weight = ctx.inputs
        positive = a.data > 0
        slope = weight if ctx.per_channel else weight.reshape(())
        grad_input = where(positive, grad, slope * grad) if ctx.needs_input_grad[0] else None
        grad_weight = None
        if ctx.needs_input_grad[1]:
            contribution = where(positive, 0.0, grad * a)
            if ctx.per_channel:
                grad_weight = unbroadcast(contribution, ctx.weight_shape)
            else:
                grad_weight = contribution.sum().reshape(ctx.weight_shape)
        return grad_input, grad_weight


@register("prelu", methods=("prelu",))
def prelu(x, weight):
    """x where x > 0, weight * x elsewhere, as torch.prelu but channels-last: ``weight``
    (0-d or 1-D) has one element, shared by all, or one per channel, the LAST dimension of
    an x of two or more dimensions (torch's dimension 1; an x of fewer dimensions has one
    channel). x [..., C], weight [C] or [1] -> [..., C]; x and weight share a float dtype.
    Gradients as torch: the input's is the weight at x <= 0, the weight's sums x * grad
    over x <= 0."""
    x, weight = as_tensor("prelu", x), as_tensor("prelu", weight)
    for name, value in (("x", x), ("weight", weight)):
        if value.dtype.kind != "f":
            raise TypeError("prelu: got %s of dtype %s, expected float32 or float64" % (name, value.dtype))
    if x.dtype != weight.dtype:
        raise TypeError("prelu: got x of dtype %s and weight of dtype %s, expected one dtype (no promotion, as in "
                        "torch)" % (x.dtype, weight.dtype))
    if weight.ndim > 1:
        raise ValueError("prelu: got a weight of shape %s, expected 0-d or 1-D" % (tuple(weight.shape),))
    channels = x.shape[-1] if x.ndim >= 2 else 1
    if weight.data.size not in (1, channels):
        raise ValueError("prelu: got %d weights for an input of shape %s, expected 1 or %d (one per channel, the "
                         "last dimension: this project is channels-last)"
                         % (weight.data.size, tuple(x.shape), channels))
    return Prelu.apply(x, weight)


# ---- along one dimension ---------------------------------------------------------------
def _dimension(op, dim, ndim):
    if isinstance(dim, (bool, np.bool_)) or not isinstance(dim, (int, np.integer)):
        raise TypeError("%s: got dim=%r, expected an int" % (op, dim))
    if not -max(ndim, 1) <= dim < max(ndim, 1):
        raise DimensionError("%s: dim %d is out of range for a tensor with %d dimensions" % (op, dim, ndim))
    return int(dim) % max(ndim, 1)


class Glu(Function):
    name = "glu"
    float_input = True

    @staticmethod
    def forward(ctx, a, axis):
        first, second = np.split(a, 2, axis=axis)
        gate = _sigmoid(second)
        ctx.save_for_backward(first, gate)
        ctx.axis = axis
        return first * gate

    @staticmethod
    def backward(ctx, grad):
        first, gate = ctx.saved_tensors
        return np.concatenate(_glu_gradients(grad, first, gate), axis=ctx.axis), None

    @staticmethod
    def differentiable_backward(ctx, grad):
        first, second = chunk(ctx.inputs[0], 2, ctx.axis)
        return concat(_glu_gradients(grad, first, second.sigmoid()), ctx.axis), None


def _glu_gradients(grad, first, gate):
    """glu's gradients to the two halves (operators only, for arrays and Tensors)."""
    return [grad * gate, grad * first * gate * (1.0 - gate)]


@register("glu")
def glu(x, dim=-1):
    """a * sigmoid(b), where a and b are the first and second halves of x along dim, as
    torch.nn.functional.glu: [..., 2n, ...] -> [..., n, ...]. Float tensors."""
    x = as_tensor("glu", x)
    if x.ndim == 0:
        raise ValueError("glu: got a 0-d tensor, expected at least one dimension to halve")
    axis = _dimension("glu", dim, x.ndim)
    if x.shape[axis] % 2:
        raise ValueError("glu: dimension %d has size %d, expected an even size to halve" % (axis, x.shape[axis]))
    return Glu.apply(x, axis)


@register("softmin")
def softmin(x, dim=-1, *, axis=None, dtype=None):
    """softmax(-x) along dim (``axis`` is an alias), as torch.nn.functional.softmin; with
    ``dtype`` x is cast to it first. Note: torch's dim has no usable default (an implicit
    choice, deprecated); here it is the last dimension, as for softmax. Float tensors."""
    x = as_tensor("softmin", x)
    if dtype is not None:
        x = cast(x, dtype)
    if x.dtype.kind != "f":
        raise TypeError("softmin: got a tensor of dtype %s, expected float32 or float64" % x.dtype)
    dim = _dimension("softmin", dim if axis is None else axis, x.ndim)
    return softmax(Neg.apply(x), dim)
