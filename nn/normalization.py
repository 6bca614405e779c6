"""Normalization layers, channels-last, with torch's names, arguments and state dict keys:
BatchNorm1d ([N, C] or [N, L, C]), BatchNorm2d ([N, H, W, C]), BatchNorm3d ([N, D, H, W, C]),
InstanceNorm1d/2d, GroupNorm, LocalResponseNorm. Parameters (weight, bias) and buffers
(running_mean, running_var, num_batches_tracked) are [C] arrays as torch's, so a torch
state dict loads by name with no layout change.

BatchNorm follows torch's rules: in training mode the batch statistics normalize and the
running ones are updated (momentum, or with momentum=None the cumulative average over
num_batches_tracked batches; the unbiased variance), in eval mode the running statistics
normalize; without track_running_stats the batch statistics are used in both modes.
"""
import warnings

import numpy as np

from . import functional as F
from ._checks import positive_int
from .module import Module, Parameter

__all__ = ["BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "InstanceNorm1d", "InstanceNorm2d", "GroupNorm",
           "LocalResponseNorm"]


def _check_number(owner, name, value, allow_none=False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or value < 0:
        raise ValueError("%s: %s must be a non-negative number%s, got %r"
                         % (owner, name, " or None" if allow_none else "", value))
    return float(value)


class _NormBase(Module):
    """The parameters and buffers BatchNorm and InstanceNorm share (torch's _NormBase):
    weight (ones) and bias (zeros) when affine, running_mean (zeros), running_var (ones)
    and num_batches_tracked (an int64 scalar) when track_running_stats; all [C]."""

    def __init__(self, num_features, eps, momentum, affine, track_running_stats, dtype):
        super().__init__()
        layer = type(self).__name__
        self.num_features = positive_int(layer, "num_features", num_features)
        self.eps = _check_number(layer, "eps", eps)
        self.momentum = _check_number(layer, "momentum", momentum, allow_none=True)
        self.affine, self.track_running_stats = bool(affine), bool(track_running_stats)
        if self.affine:
            self.weight = Parameter(np.ones(self.num_features, dtype=dtype))
            self.bias = Parameter(np.zeros(self.num_features, dtype=dtype))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if self.track_running_stats:
            self.register_buffer("running_mean", np.zeros(self.num_features, dtype=dtype))
            self.register_buffer("running_var", np.ones(self.num_features, dtype=dtype))
            self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self):
        """Running mean 0, running var 1, no batch tracked (in place)."""
        if self.track_running_stats:
            self.running_mean[...] = 0
            self.running_var[...] = 1
            self.num_batches_tracked[...] = 0

    def reset_parameters(self):
        """Running statistics reset; weight 1, bias 0."""
        self.reset_running_stats()
        if self.affine:
            self.weight.data[...] = 1
            self.bias.data[...] = 0

    def _name(self):
        return "%s(%d)" % (type(self).__name__, self.num_features)

    def _check_input(self, x, dims, what):
        if not hasattr(x, "ndim") or not hasattr(x, "shape"):
            raise TypeError("%s: got input of type %s, expected a Tensor" % (self._name(), type(x).__name__))
        if x.ndim not in dims:
            raise ValueError("%s: expected %s input (got %dD input of shape %s)"
                             % (self._name(), what, x.ndim, tuple(x.shape)))
        if x.shape[-1] != self.num_features:
            raise ValueError("%s: got input of shape %s with %d channels (its last dim), expected %d"
                             % (self._name(), tuple(x.shape), x.shape[-1], self.num_features))
        if self.affine and x.dtype != self.weight.dtype:
            raise TypeError("%s: input has dtype %s but the parameters are %s (convert one of them)"
                            % (self._name(), x.dtype, self.weight.dtype))

    def extra_repr(self):
        return "%d, eps=%s, momentum=%s, affine=%s, track_running_stats=%s" % (
            self.num_features, self.eps, self.momentum, self.affine, self.track_running_stats)


class _BatchNorm(_NormBase):
    _dims, _what = (), ""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True,
                 dtype=np.float32):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, dtype)

    def forward(self, x):
        """x [N, *, C] (channels last) -> the same shape, normalized per channel."""
        self._check_input(x, self._dims, self._what)
        # without running statistics the batch's normalize in eval mode too (torch's rule)
        use_batch = self.training or self.running_mean is None
        if use_batch and x.data.size // self.num_features <= 1:
            raise ValueError("%s: Expected more than 1 value per channel when training, got input of shape %s"
                             % (self._name(), tuple(x.shape)))
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked += 1
            if self.momentum is None:  # the cumulative average of every batch so far
                momentum = 1.0 / float(self.num_batches_tracked)
        tracked = not self.training or self.track_running_stats
        return F.batch_norm(x, self.running_mean if tracked else None, self.running_var if tracked else None,
                            self.weight, self.bias, use_batch, momentum, self.eps)


class BatchNorm1d(_BatchNorm):
    """Batch normalization over [N, C] or [N, L, C] (channels last): per channel, y = (x -
    mean) / sqrt(var + eps) * weight + bias with the batch's statistics in training (the
    running ones updated) and the running statistics in eval mode. weight, bias,
    running_mean, running_var: [C]."""
    _dims, _what = (2, 3), "2D or 3D"


class BatchNorm2d(_BatchNorm):
    """Batch normalization over NHWC [N, H, W, C]: per channel, over N, H and W (see
    BatchNorm1d for the rules). weight, bias, running_mean, running_var: [C]."""
    _dims, _what = (4,), "4D"


class BatchNorm3d(_BatchNorm):
    """Batch normalization over [N, D, H, W, C]: per channel (see BatchNorm1d)."""
    _dims, _what = (5,), "5D"


class _InstanceNorm(_NormBase):
    _spatial = 0

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=False, track_running_stats=False,
                 dtype=np.float32):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, dtype)

    def forward(self, x):
        """x [N, *spatial, C] or unbatched [*spatial, C] -> the same shape, normalized per
        sample and channel over the spatial dims."""
        dims = self._spatial + 2
        if hasattr(x, "ndim") and x.ndim in (dims - 1, dims) and x.shape[-1] != self.num_features \
                and not (self.affine or self.track_running_stats):
            # torch only warns here: without per-channel parameters any channel count works
            warnings.warn("%s: input has %d channels (its last dim), but num_features is %d"
                          % (self._name(), x.shape[-1], self.num_features))
            return self._normalize(x, dims)
        self._check_input(x, (dims - 1, dims), "%dD (unbatched) or %dD (batched)" % (dims - 1, dims))
        return self._normalize(x, dims)

    def _normalize(self, x, dims):
        if x.ndim == dims - 1:
            return self._normalize(x.unsqueeze(0), dims).squeeze(0)
        if x.data.size // (x.shape[0] * x.shape[-1]) <= 1 and (self.training or not self.track_running_stats):
            raise ValueError("%s: Expected more than 1 spatial element when training, got input of shape %s"
                             % (self._name(), tuple(x.shape)))
        return F.instance_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                               self.training or not self.track_running_stats,
                               0.0 if self.momentum is None else self.momentum, self.eps)


class InstanceNorm1d(_InstanceNorm):
    """Instance normalization over [N, L, C] or unbatched [L, C]: per sample and channel,
    over L. affine (weight, bias [C]) and track_running_stats off by default, as torch."""
    _spatial = 1


class InstanceNorm2d(_InstanceNorm):
    """Instance normalization over NHWC [N, H, W, C] or unbatched [H, W, C]: per sample and
    channel, over H and W. affine (weight, bias [C]) and track_running_stats (running_mean,
    running_var [C], used in eval mode) off by default, as torch."""
    _spatial = 2


class GroupNorm(Module):
    """Group normalization over [N, *, C] (channels last): the C channels split into
    num_groups groups of consecutive channels, each (sample, group) normalized over its
    channels and every other dim but the batch; then weight and bias [C] when affine."""

    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, dtype=np.float32):
        super().__init__()
        self.num_groups = positive_int("GroupNorm", "num_groups", num_groups)
        self.num_channels = positive_int("GroupNorm", "num_channels", num_channels)
        if self.num_channels % self.num_groups:
            raise ValueError("GroupNorm: num_channels must be divisible by num_groups, got num_channels=%d and "
                             "num_groups=%d" % (self.num_channels, self.num_groups))
        self.eps = _check_number("GroupNorm", "eps", eps)
        self.affine = bool(affine)
        if self.affine:
            self.weight = Parameter(np.ones(self.num_channels, dtype=dtype))
            self.bias = Parameter(np.zeros(self.num_channels, dtype=dtype))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def reset_parameters(self):
        if self.affine:
            self.weight.data[...] = 1
            self.bias.data[...] = 0

    def _name(self):
        return "GroupNorm(%d, %d)" % (self.num_groups, self.num_channels)

    def forward(self, x):
        """x [N, *, C] -> the same shape."""
        if not hasattr(x, "ndim") or x.ndim < 2:
            raise ValueError("%s: expected input [N, *, C] of at least 2 dims, got %s"
                             % (self._name(), getattr(x, "shape", type(x).__name__)))
        if x.shape[-1] != self.num_channels:
            raise ValueError("%s: got input of shape %s with %d channels (its last dim), expected %d"
                             % (self._name(), tuple(x.shape), x.shape[-1], self.num_channels))
        return F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return "%d, %d, eps=%s, affine=%s" % (self.num_groups, self.num_channels, self.eps, self.affine)


class LocalResponseNorm(Module):
    """Local response normalization across channels of [N, *, C] (at least 3 dims, channels
    last): y = x / (k + alpha / size * sum of x^2 over the size neighbouring channels) ^ beta."""

    def __init__(self, size, alpha=1e-4, beta=0.75, k=1.0):
        super().__init__()
        self.size = positive_int("LocalResponseNorm", "size", size)
        self.alpha = _check_number("LocalResponseNorm", "alpha", alpha)
        self.beta = _check_number("LocalResponseNorm", "beta", beta)
        self.k = _check_number("LocalResponseNorm", "k", k)

    def forward(self, x):
        """x [N, *, C] -> the same shape."""
        if not hasattr(x, "ndim") or x.ndim < 3:
            raise ValueError("LocalResponseNorm(%d): expected input [N, *, C] of at least 3 dims, got %s"
                             % (self.size, getattr(x, "shape", type(x).__name__)))
        return F.local_response_norm(x, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self):
        return "%d, alpha=%s, beta=%s, k=%s" % (self.size, self.alpha, self.beta, self.k)
