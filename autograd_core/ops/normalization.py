"""Normalization ops, channels-last (channels are the last dim: [N, C], [N, L, C],
[N, H, W, C], ...), with torch.nn.functional's names and arguments:

    batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps)
    instance_norm(x, running_mean, running_var, weight, bias, use_input_stats, momentum, eps)
    group_norm(x, num_groups, weight, bias, eps)
    local_response_norm(x, size, alpha, beta, k)

Batch, instance and group normalization are one fused Function: each views x as
[n, s, g, cg] and takes statistics over the axes (1, 3), per (sample, group), or over
(0, 1, 3), per channel:

    batch norm     view [1, N*spatial, C, 1]    statistics per channel        [C]
    instance norm  view [N, spatial, C, 1]      per sample and channel        [N, C]
    group norm     view [N, spatial, G, C/G]    per sample and group          [N, G]

so forward and backward are written once, vectorised numpy; the per-channel case of
batch norm in training (the common one) runs the norm kernels instead (see
_Normalize). The backward is the closed form (one pass over x and the gradient) rather
than the graph of a mean, a variance and a division, which would keep five
activation-sized arrays alive instead of one.

Higher-order gradients (create_graph) go through each Function's ``composite``: the
same normalisation written with ops, recomputed only then; the first-order path stays
the closed form.

Running statistics are buffers, not inputs of the graph (as in torch): the training
forward updates them in place, ``running = (1 - momentum) * running + momentum *
batch`` with the batch's unbiased variance, and the eval forward reads them as constants
(no gradient reaches them).
"""
import numpy as np

from ..function import Function
from ..kernels import norm as _norm
from ..kernels.runtime import FLOAT_DTYPES
from ..registry import register
from ..tensor import Tensor
from ._util import ShapeError
from .shape import concat


class _Normalize(Function):
    """y = (x - mean) / sqrt(var + eps) * weight + bias over a view [n, s, g, cg] of x.

    ``statistics`` is None (take the mean and the biased variance of x over ``axes``) or
    a pair of arrays (mean, var) broadcastable to the view (eval mode's running
    statistics). ``running`` is None or (running_mean, running_var, momentum): arrays of
    C values that the forward updates in place with the batch statistics, averaged over
    the view's first axis (instance norm's samples; batch norm has one).

    Measured (BatchNorm, float32 [64, 16, 16, 32], forward + backward, medians of 7
    alternate rounds of 15 calls in one process on the shared 2-core machine): 33-42 ms
    with a [n, s, c, 1] view and a fresh array per temporary, 14-16 ms with the size-1
    axis dropped, two activation-sized arrays per direction written in place, and the
    backward's four means reduced to two sums (the weight factors out); torch's CPU
    kernel (1 thread) takes 1.3 ms there. So the per-channel statistics of a training
    batch norm (view [1, rows, C, 1], statistics None) go through the norm kernels
    (autograd_core/kernels/norm.py: a threaded C region per direction, the numpy
    reference without the extension), which save x, the mean and rstd instead of the
    normalized copy: 0.6-1.0 ms there against 3.2-3.6 ms for the numpy path below and
    1.2-1.9 ms for torch (channels_last, 1 thread each, 9 alternate rounds in one
    process, on a busier machine than the figures above). Group norm, instance norm
    (more than one sample) and evaluation mode stay on the numpy path.
    """
    float_input = True

    @staticmethod
    def forward(ctx, x, weight, bias, view, axes, statistics, eps, running):
        shape = x.shape
        ctx.fused = statistics is None and view[0] == 1 and view[3] == 1 and x.dtype in FLOAT_DTYPES
        if ctx.fused:
            # batch norm in training (or an instance norm of one sample): per-channel
            # statistics of a [rows, channels] view, one C pass per phase (kernels/norm.py)
            rows = x.reshape(view[1], view[2])
            y, mean, var, inv_std = _norm.batch_norm_forward(rows, _vector(weight, x.dtype), _vector(bias, x.dtype),
                                                             eps)
            if running is not None:
                _update_running(running, mean[None], var[None], view[1])
            ctx.save_for_backward(rows, mean, inv_std, weight)
            ctx.shape = shape
            return y.reshape(shape)
        if view[3] == 1:
            # one channel per statistic (batch and instance norm): drop the size-1 last axis,
            # so that the broadcasts below run numpy's inner loop along the channels
            view, axes = view[:3], tuple(a for a in axes if a != 3)
        x = x.reshape(view)
        parameter_shape = (1, 1) + view[2:]
        # two activation-sized arrays per call (normalized, saved; out, returned), the
        # temporaries computed into them: fresh arrays of that size cost page faults that
        # took longer than the arithmetic (see the class docstring)
        if statistics is None:
            mean = x.mean(axis=axes, keepdims=True)
            normalized = np.subtract(x, mean)
            out = np.square(normalized)
            var = out.mean(axis=axes, keepdims=True)
            if running is not None:
                _update_running(running, mean, var, x.size // mean.size)
        else:
            mean, var = (s.astype(x.dtype, copy=False).reshape(parameter_shape) for s in statistics)
            normalized = np.subtract(x, mean)
            out = np.empty_like(normalized)
        inv_std = 1.0 / np.sqrt(var + eps)
        normalized *= inv_std
        if weight is not None:
            np.multiply(normalized, weight.astype(x.dtype, copy=False).reshape(parameter_shape), out=out)
        else:
            out[...] = normalized  # a copy: the result must not share the saved memory
        if bias is not None:
            out += bias.astype(x.dtype, copy=False).reshape(parameter_shape)
        ctx.save_for_backward(normalized, inv_std, weight)
        ctx.shape, ctx.batch_statistics = shape, statistics is None
        return out.reshape(shape)

    @staticmethod
    def backward(ctx, grad):
        needs = ctx.needs_input_grad
        if ctx.fused:
            rows, mean, inv_std, weight = ctx.saved_tensors
            grad_x, grad_weight, grad_bias = _norm.batch_norm_backward(
                grad.astype(rows.dtype, copy=False).reshape(rows.shape), rows, mean, inv_std,
                _vector(weight, rows.dtype), needs[0])
            return (grad_x.reshape(ctx.shape) if needs[0] else None, grad_weight if needs[1] else None,
                    grad_bias if needs[2] else None, None, None, None, None, None)
        normalized, inv_std, weight = ctx.saved_tensors
        grad = grad.reshape(normalized.shape)
        parameter_shape = (1, 1) + normalized.shape[2:]
        # the two sums every gradient needs, over the axes that are not the parameters'
        # (n and s): the bias's gradient, and the weight's, sum(grad * normalized)
        product = grad * normalized
        grad_weight_full = product.sum(axis=(0, 1), keepdims=True)
        grad_bias_full = grad.sum(axis=(0, 1), keepdims=True)
        grad_x = None
        if needs[0]:
            weight = None if weight is None else weight.astype(grad.dtype, copy=False).reshape(parameter_shape)
            if not ctx.batch_statistics:
                grad_x = np.multiply(grad, inv_std if weight is None else inv_std * weight, out=product)
            else:
                # d/dx of (x - mean) * inv_std when mean and var depend on x too: with g the
                # gradient of the normalized values (grad * weight), inv_std * (g - mean(g)
                # - normalized * mean(g * normalized)), the means per statistic
                if normalized.ndim == 4 and weight is not None:
                    # group norm: the weight varies inside a group, so g itself is needed
                    grad = grad * weight
                    product = np.multiply(grad, normalized, out=product)
                    scale = inv_std
                else:
                    # the weight is constant per statistic: it factors out of the means
                    scale = inv_std if weight is None else inv_std * weight
                if normalized.ndim == 3 and normalized.shape[0] == 1:
                    # batch norm (view [1, s, c]): the statistics' axes are the parameters'
                    # (or an instance norm of one sample: the same sums)
                    sum_grad, sum_product = grad_bias_full, grad_weight_full
                else:
                    axes = _STATISTIC_AXES[normalized.ndim]
                    sum_grad, sum_product = grad.sum(axis=axes, keepdims=True), product.sum(axis=axes, keepdims=True)
                count = normalized.size // sum_grad.size
                grad_x = np.multiply(normalized, sum_product / count, out=product)
                np.subtract(grad, grad_x, out=grad_x)
                grad_x -= sum_grad / count
                grad_x *= scale
            grad_x = grad_x.reshape(ctx.shape)
        grad_weight = grad_weight_full.reshape(-1) if needs[1] else None
        grad_bias = grad_bias_full.reshape(-1) if needs[2] else None
        return grad_x, grad_weight, grad_bias, None, None, None, None, None

    @staticmethod
    def composite(x, weight, bias, view, axes, statistics, eps, running):
        """forward with ops, for create_graph (the running statistics were updated by the
        forward already: nothing is written here)."""
        shape = x.shape
        x = x.reshape(view)
        parameter_shape = (1, 1) + tuple(view[2:])
        if statistics is None:
            mean = x.mean(axis=axes, keepdims=True)
            centered = x - mean
            variance = (centered * centered).mean(axis=axes, keepdims=True)
        else:
            mean, variance = (Tensor(s.astype(x.dtype, copy=False).reshape(parameter_shape)) for s in statistics)
            centered = x - mean
        out = centered / (variance + eps).sqrt()
        if weight is not None:
            out = out * _parameter(weight, x.dtype, parameter_shape)
        if bias is not None:
            out = out + _parameter(bias, x.dtype, parameter_shape)
        return out.reshape(shape)


def _vector(value, dtype):
    """A weight or bias array (or None) as the norm kernels take it: [C] in dtype."""
    return None if value is None else value.astype(dtype, copy=False).reshape(-1)


def _parameter(value, dtype, shape):
    """A weight or bias (a Tensor, or an array: a constant) reshaped to broadcast over the view."""
    if not isinstance(value, Tensor):
        return Tensor(np.asarray(value, dtype=dtype).reshape(shape))
    return value.reshape(shape)


# the axes a per-(sample, group) statistic reduces in the view [n, s, c] or [n, s, g, cg]
_STATISTIC_AXES = {3: (1,), 4: (1, 3)}


def _update_running(running, mean, var, count):
    """running = (1 - momentum) * running + momentum * batch, in place, with the
    unbiased variance (torch's rule; count values per statistic)."""
    running_mean, running_var, momentum = running
    batch_mean = mean.mean(axis=0).reshape(-1)
    batch_var = var.mean(axis=0).reshape(-1) * (count / (count - 1) if count > 1 else np.inf)
    for target, value in ((running_mean, batch_mean), (running_var, batch_var)):
        if target is None:
            continue
        array = target.data if isinstance(target, Tensor) else target
        array *= 1.0 - momentum
        array += momentum * value.astype(array.dtype, copy=False)
        if isinstance(target, Tensor):
            target.increment_version("the running statistics' update")


# ---- argument checks ------------------------------------------------------------------------
def _array(op, name, value, channels, required=False):
    """The numpy array of an optional per-channel argument (a Tensor or an array), checked
    to hold ``channels`` values."""
    if value is None:
        if required:
            raise ValueError("%s: got %s=None, expected an array of %d values" % (op, name, channels))
        return None
    array = value.data if isinstance(value, Tensor) else value
    if not isinstance(array, np.ndarray):
        raise TypeError("%s: got %s of type %s, expected a Tensor or numpy array of %d values"
                        % (op, name, type(value).__name__, channels))
    if array.size != channels:
        raise ShapeError("%s: got %s of shape %s for an input with %d channels (its last dim), expected %d values"
                         % (op, name, array.shape, channels, channels))
    return array


def _input(op, x, min_dims):
    if not isinstance(x, Tensor):
        raise TypeError("%s: got input of type %s, expected a Tensor" % (op, type(x).__name__))
    if x.ndim < min_dims:
        raise ShapeError("%s: got input of shape %s, expected at least %d dims, channels last"
                         % (op, x.shape, min_dims))
    if x.dtype.kind != "f":
        raise TypeError("%s: got a tensor of dtype %s, expected float32 or float64" % (op, x.dtype))
    return x.shape


def _number(op, name, value, positive=False):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or (positive and not value > 0):
        raise ValueError("%s: got %s=%r, expected a %snumber" % (op, name, value, "positive " if positive else ""))
    return float(value)


def _affine(op, weight, bias, channels):
    """weight and bias as Function inputs: Tensors stay Tensors (their gradient), arrays are
    constants; both checked to hold one value per channel."""
    _array(op, "weight", weight, channels)
    _array(op, "bias", bias, channels)
    return weight, bias


# ---- the ops --------------------------------------------------------------------------------
@register("batch_norm")
def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    """Batch normalization of channels-last input [N, C] or [N, *, C] (torch.nn.functional's
    arguments): per channel, over every other dim, y = (x - mean) / sqrt(var + eps) *
    weight + bias. In training mean and the biased var come from the batch, and
    running_mean/running_var ([C] arrays or Tensors, may be None) are updated in place
    with momentum and the unbiased var; otherwise (evaluation) they are used.
    weight, bias: [C] or None. Returns a Tensor of input's shape."""
    op = "batch_norm"
    shape = _input(op, input, 2)
    channels = shape[-1]
    running_mean_array = _array(op, "running_mean", running_mean, channels)
    running_var_array = _array(op, "running_var", running_var, channels)
    weight, bias = _affine(op, weight, bias, channels)
    eps = _number(op, "eps", eps)
    if not training and (running_mean_array is None or running_var_array is None):
        raise RuntimeError("%s: got training=False without running_mean and running_var, expected both in evaluation "
                         "mode (torch's rule; a layer without running statistics passes training=True)" % op)
    if training and input.data.size // max(channels, 1) <= 1:
        raise ValueError("%s: expected more than 1 value per channel when training, got input of shape %s"
                         % (op, shape))
    view = (1, input.data.size // max(channels, 1), channels, 1)
    if training:
        running = None
        if running_mean is not None or running_var is not None:
            running = (running_mean, running_var, _number(op, "momentum", momentum))
        return _Normalize.apply(input, weight, bias, view, (0, 1, 3), None, eps, running)
    return _Normalize.apply(input, weight, bias, view, (0, 1, 3), (running_mean_array, running_var_array), eps, None)


@register("instance_norm")
def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None, use_input_stats=True,
                  momentum=0.1, eps=1e-5):
    """Instance normalization of channels-last input [N, *spatial, C] (torch.nn.functional's
    arguments): per sample and channel, over the spatial dims. With use_input_stats the
    statistics come from each instance, and running_mean/running_var ([C], may be None)
    are updated in place with their average over the batch; without, the running
    statistics are used. weight, bias: [C] or None. Returns a Tensor of input's shape."""
    op = "instance_norm"
    shape = _input(op, input, 3)
    channels = shape[-1]
    running_mean_array = _array(op, "running_mean", running_mean, channels)
    running_var_array = _array(op, "running_var", running_var, channels)
    weight, bias = _affine(op, weight, bias, channels)
    eps = _number(op, "eps", eps)
    spatial = input.data.size // max(shape[0] * channels, 1)
    if use_input_stats:
        if spatial <= 1:
            raise ValueError("%s: expected more than 1 spatial element when training, got input of shape %s"
                             % (op, shape))
        running = None
        if running_mean is not None or running_var is not None:
            running = (running_mean, running_var, _number(op, "momentum", momentum))
        return _Normalize.apply(input, weight, bias, (shape[0], spatial, channels, 1), (1, 3), None, eps, running)
    if running_mean_array is None or running_var_array is None:
        raise ValueError("%s: got use_input_stats=False without running_mean and running_var, expected both" % op)
    return _Normalize.apply(input, weight, bias, (1, input.data.size // max(channels, 1), channels, 1), (0, 1, 3),
                            (running_mean_array, running_var_array), eps, None)


@register("group_norm")
def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    """Group normalization of channels-last input [N, *, C] (torch.nn.functional's
    arguments): the C channels split into num_groups groups of consecutive channels, and
    each (sample, group) is normalized over its channels and every dim but the batch.
    weight, bias: [C] or None. Returns a Tensor of input's shape."""
    op = "group_norm"
    shape = _input(op, input, 2)
    channels = shape[-1]
    if isinstance(num_groups, bool) or not isinstance(num_groups, (int, np.integer)) or num_groups < 1:
        raise ValueError("%s: got num_groups=%r, expected a positive int" % (op, num_groups))
    if channels % num_groups:
        raise ShapeError("%s: got an input with %d channels (shape %s) and num_groups=%d, expected the number of "
                         "channels to be divisible by num_groups" % (op, channels, shape, num_groups))
    weight, bias = _affine(op, weight, bias, channels)
    eps = _number(op, "eps", eps)
    spatial = input.data.size // max(shape[0] * channels, 1)
    view = (shape[0], spatial, int(num_groups), channels // num_groups)
    return _Normalize.apply(input, weight, bias, view, (1, 3), None, eps, None)


def _window_sum(values, before, after):
    """out[..., c] = sum of values[..., c - before : c + after + 1] along the last axis
    (zeros outside), by differences of a cumulative sum."""
    channels = values.shape[-1]
    padded = np.zeros(values.shape[:-1] + (channels + before + after + 1,), dtype=values.dtype)
    np.cumsum(values, axis=-1, out=padded[..., before + 1:before + 1 + channels])
    padded[..., before + 1 + channels:] = padded[..., before + channels:before + 1 + channels]
    return padded[..., before + after + 1:] - padded[..., :channels]


class _LocalResponseNorm(Function):
    """y = x / (k + alpha / size * sum of x^2 over a window of channels) ^ beta."""
    float_input = True

    @staticmethod
    def forward(ctx, x, size, alpha, beta, k):
        before, after = size // 2, (size - 1) // 2
        scale = alpha / size
        denominator = k + scale * _window_sum(np.square(x), before, after)
        power = denominator ** -beta
        ctx.save_for_backward(x, denominator, power)
        ctx.arguments = (before, after, scale, beta)
        return x * power

    @staticmethod
    def backward(ctx, grad):
        x, denominator, power = ctx.saved_tensors
        before, after, scale = ctx.arguments[:3]
        beta = ctx.arguments[3]
        # channel i enters the denominators of the channels j whose window holds it:
        # j - before <= i <= j + after, i.e. the window (after, before) transposed
        through = _window_sum(grad * x * power / denominator, after, before)
        return grad * power - (2.0 * scale * beta) * x * through, None, None, None, None

    @staticmethod
    def composite(x, size, alpha, beta, k):
        """forward with ops, for create_graph: the window sum as a sum of shifted copies."""
        before, after = size // 2, (size - 1) // 2
        squares = x * x
        window = None
        for offset in range(-before, after + 1):
            shifted = _shifted(squares, offset)
            window = shifted if window is None else window + shifted
        return x * (k + (alpha / size) * window) ** -beta


def _shifted(values, offset):
    """out[..., c] = values[..., c + offset] (zeros past either end), by slicing and cat."""
    channels = values.shape[-1]
    if offset == 0:
        return values
    width = min(abs(offset), channels)
    zeros = Tensor(np.zeros(values.shape[:-1] + (width,), dtype=values.dtype))
    if offset > 0:
        return concat([values[..., width:], zeros], -1)
    return concat([zeros, values[..., :channels - width]], -1)


@register("local_response_norm")
def local_response_norm(input, size, alpha=1e-4, beta=0.75, k=1.0):
    """Local response normalization across channels of channels-last input [N, *, C] (at
    least 3 dims, as torch): y = x / (k + alpha / size * sum of x^2 over the size
    channels around each one) ^ beta, the window zero-padded as torch's (size // 2
    channels before, (size - 1) // 2 after). Returns a Tensor of input's shape."""
    op = "local_response_norm"
    _input(op, input, 3)
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError("%s: got size=%r, expected a positive int" % (op, size))
    return _LocalResponseNorm.apply(input, int(size), _number(op, "alpha", alpha), _number(op, "beta", beta),
                                    _number(op, "k", k))
