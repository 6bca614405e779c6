"""Layers: Modules that hold parameters (Linear, Conv2d) or settings (pooling, Dropout,
activations, losses) and call ``nn.functional``.

Shapes follow the project's conventions: features last, images NHWC
``[batch, height, width, channels]``, conv weights ``[kh, kw, in_channels, out_channels]``.
Default initialisation matches PyTorch's: weights kaiming-uniform with a = sqrt(5)
(bound 1 / sqrt(fan_in)), biases U(-1 / sqrt(fan_in), 1 / sqrt(fan_in)).
"""
import math

import numpy as np

from . import functional as F
from . import init
from ._checks import pair, positive_int
from .losses import _check_reduction
from .module import FUSED_ACTIVATION_LAYERS, FUSED_ACTIVATIONS, Module, Parameter

__all__ = ["Linear", "Conv2d", "MaxPool2d", "AvgPool2d", "Flatten", "Dropout", "Identity",
           "ReLU", "Sigmoid", "Tanh", "ELU", "LeakyReLU", "Softmax", "LogSoftmax",
           "CrossEntropyLoss", "BCEWithLogitsLoss", "MSELoss", "GaussianKLLoss"]


def _check_dtype(layer, x, weight):
    if x.dtype != weight.dtype:
        raise TypeError("%s: input has dtype %s but the parameters are %s (convert one of them, "
                        "e.g. x.astype(np.%s))" % (layer, x.dtype, weight.dtype, weight.dtype))


def _bias_bound(fan_in):
    return 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0


class Linear(Module):
    """y = x @ weight.T + bias.

    x: [..., in_features] -> y: [..., out_features]. weight: [out_features, in_features],
    bias: [out_features].
    """

    def __init__(self, in_features, out_features, bias=True, dtype=np.float32):
        super().__init__()
        self.in_features = positive_int("Linear", "in_features", in_features)
        self.out_features = positive_int("Linear", "out_features", out_features)
        self.weight = Parameter(np.empty((self.out_features, self.in_features), dtype=dtype))
        if bias:
            self.bias = Parameter(np.empty(self.out_features, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = _bias_bound(self.in_features)
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x, activation=None):
        """x [..., in_features] -> [..., out_features]. activation: None or 'relu', applied
        in the same fused op (Sequential passes 'relu' when a ReLU module follows)."""
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError("%s: expected input [..., %d], got shape %s"
                             % (self._name(), self.in_features, tuple(x.shape)))
        _check_dtype(self._name(), x, self.weight)
        return F.linear(x, self.weight, self.bias, activation=activation)

    def _name(self):
        return "Linear(in_features=%d, out_features=%d)" % (self.in_features, self.out_features)

    def extra_repr(self):
        return "in_features=%d, out_features=%d, bias=%s" % (
            self.in_features, self.out_features, self.bias is not None)


class Conv2d(Module):
    """2-D convolution over NHWC images.

    x: [N, H, W, in_channels] -> [N, out_h, out_w, out_channels].
    weight: [kh, kw, in_channels, out_channels]; bias: [out_channels].
    ``padding``: 'same' (default; output H, W = ceil(input / stride)), 'valid' (none) or
    an int / pair of ints of zero padding on each side.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding="same", bias=True,
                 dtype=np.float32):
        super().__init__()
        self.in_channels = positive_int("Conv2d", "in_channels", in_channels)
        self.out_channels = positive_int("Conv2d", "out_channels", out_channels)
        self.kernel_size = pair("Conv2d", "kernel_size", kernel_size)
        self.stride = pair("Conv2d", "stride", stride)
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError("Conv2d: padding must be 'same', 'valid' or an int, got %r" % (padding,))
        elif isinstance(padding, (tuple, list)):
            if len(padding) != 2 or any(isinstance(p, bool) or not isinstance(p, int) or p < 0 for p in padding):
                raise ValueError("Conv2d: padding must be a pair of non-negative ints, got %r" % (padding,))
            padding = tuple(padding)
        elif isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
            raise ValueError("Conv2d: padding must be 'same', 'valid' or a non-negative int, got %r"
                             % (padding,))
        self.padding = padding
        kh, kw = self.kernel_size
        self.weight = Parameter(np.empty((kh, kw, self.in_channels, self.out_channels), dtype=dtype))
        if bias:
            self.bias = Parameter(np.empty(self.out_channels, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = _bias_bound(self.kernel_size[0] * self.kernel_size[1] * self.in_channels)
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x, activation=None):
        """x [N, H, W, in_channels] -> [N, out_h, out_w, out_channels]. activation: None or
        'relu', applied in the same fused op (Sequential passes 'relu' when a ReLU module
        follows)."""
        if x.ndim != 4 or x.shape[3] != self.in_channels:
            hint = ""
            if x.ndim == 4 and x.shape[1] == self.in_channels:
                hint = " (it looks like NCHW; this library is NHWC)"
            raise ValueError("%s: expected NHWC input [N, H, W, %d], got shape %s%s"
                             % (self._name(), self.in_channels, tuple(x.shape), hint))
        _check_dtype(self._name(), x, self.weight)
        return F.conv2d(x, self.weight, self.bias, stride=self.stride, padding=self.padding,
                        activation=activation)

    def _name(self):
        return "Conv2d(%d, %d, kernel_size=%s)" % (self.in_channels, self.out_channels, self.kernel_size)

    def extra_repr(self):
        text = "%d, %d, kernel_size=%s, stride=%s, padding=%r" % (
            self.in_channels, self.out_channels, self.kernel_size, self.stride, self.padding)
        return text + ("" if self.bias is not None else ", bias=False")


class _Pool2d(Module):
    _function = None

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        name = type(self).__name__
        self.kernel_size = pair(name, "kernel_size", kernel_size)
        self.stride = self.kernel_size if stride is None else pair(name, "stride", stride)
        if isinstance(padding, str):
            valid = padding in ("valid", "same")
        elif isinstance(padding, (tuple, list)):
            padding = tuple(padding)
            valid = len(padding) == 2 and all(isinstance(p, int) and not isinstance(p, bool) and p >= 0
                                              for p in padding)
        else:
            valid = isinstance(padding, int) and not isinstance(padding, bool) and padding >= 0
        if not valid:
            raise ValueError("%s: padding must be a non-negative int or pair, 'valid' or 'same', got %r"
                             % (name, padding))
        self.padding = padding

    def _check_input(self, x):
        if x.ndim != 4:
            raise ValueError("%s: expected NHWC input [N, H, W, C], got shape %s"
                             % (type(self).__name__, tuple(x.shape)))

    def extra_repr(self):
        return "kernel_size=%s, stride=%s, padding=%r" % (self.kernel_size, self.stride, self.padding)


class MaxPool2d(_Pool2d):
    """Max over kernel_size windows of NHWC input [N, H, W, C]; stride defaults to
    kernel_size. Padded cells never win."""

    def forward(self, x):
        self._check_input(x)
        return F.max_pool2d(x, self.kernel_size, stride=self.stride, padding=self.padding)


class AvgPool2d(_Pool2d):
    """Mean over kernel_size windows of NHWC input [N, H, W, C]; stride defaults to
    kernel_size. Padded cells add zero; ``count_include_pad`` (True, as in PyTorch) also
    counts them in the divisor."""

    def __init__(self, kernel_size, stride=None, padding=0, count_include_pad=True):
        super().__init__(kernel_size, stride, padding)
        self.count_include_pad = bool(count_include_pad)

    def forward(self, x):
        self._check_input(x)
        return F.avg_pool2d(x, self.kernel_size, stride=self.stride, padding=self.padding,
                            count_include_pad=self.count_include_pad)

    def extra_repr(self):
        text = super().extra_repr()
        return text if self.count_include_pad else text + ", count_include_pad=False"


class Flatten(Module):
    """Merge dimensions start_dim..end_dim: [N, H, W, C] -> [N, H*W*C] by default."""

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        return F.flatten(x, self.start_dim, self.end_dim)

    def extra_repr(self):
        return "start_dim=%d, end_dim=%d" % (self.start_dim, self.end_dim)


class Dropout(Module):
    """Inverted dropout with probability ``p`` in training mode, the identity in eval mode.

    Masks come from ``generator`` (a numpy Generator) or, by default, the generator that
    ``nn.init.manual_seed`` seeds.
    """

    def __init__(self, p=0.5, generator=None):
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
            raise ValueError("Dropout: p must be a probability in [0, 1], got %r" % (p,))
        self.p = float(p)
        self.generator = generator

    def forward(self, x):
        return F.dropout(x, self.p, self.training, self.generator)

    def extra_repr(self):
        return "p=%s" % self.p


class Identity(Module):
    """Returns its input (a placeholder, e.g. for an optional layer)."""

    def forward(self, x):
        return x


class ReLU(Module):
    """max(x, 0)."""

    def forward(self, x):
        return F.relu(x)


# Sequential runs a Linear or Conv2d followed by a ReLU as one fused op (see
# Sequential.forward); exact types only, so a subclass that overrides forward is run as written.
FUSED_ACTIVATION_LAYERS.update((Linear, Conv2d))
FUSED_ACTIVATIONS[ReLU] = "relu"


class Sigmoid(Module):
    """1 / (1 + exp(-x))."""

    def forward(self, x):
        return F.sigmoid(x)


class Tanh(Module):
    """tanh(x)."""

    def forward(self, x):
        return F.tanh(x)


class ELU(Module):
    """x for x > 0, alpha * (exp(x) - 1) otherwise."""

    def __init__(self, alpha=1.0):
        super().__init__()
        self.alpha = float(alpha)

    def forward(self, x):
        return F.elu(x, self.alpha)

    def extra_repr(self):
        return "alpha=%s" % self.alpha


class LeakyReLU(Module):
    """x for x > 0, negative_slope * x otherwise."""

    def __init__(self, negative_slope=0.01):
        super().__init__()
        self.negative_slope = float(negative_slope)

    def forward(self, x):
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self):
        return "negative_slope=%s" % self.negative_slope


class Softmax(Module):
    """exp(x) / sum(exp(x)) along ``dim`` (default: the last)."""

    def __init__(self, dim=-1):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return F.softmax(x, self.dim)

    def extra_repr(self):
        return "dim=%d" % self.dim


class LogSoftmax(Module):
    """log(softmax(x)) along ``dim``, computed stably."""

    def __init__(self, dim=-1):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return F.log_softmax(x, self.dim)

    def extra_repr(self):
        return "dim=%d" % self.dim


# ---- losses: Module forms of the loss functions in ``nn.losses`` ------------------------
class _Loss(Module):
    def __init__(self, reduction="mean"):
        super().__init__()
        _check_reduction(type(self).__name__, reduction)
        self.reduction = reduction

    def extra_repr(self):
        return "reduction=%r" % self.reduction if self.reduction != "mean" else ""


class CrossEntropyLoss(_Loss):
    """Module form of ``cross_entropy``: loss(logits [N, C], labels [N] or probabilities [N, C])."""

    def forward(self, logits, target):
        return F.cross_entropy(logits, target, self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Module form of ``binary_cross_entropy_with_logits``: loss(logits, target), same shapes."""

    def forward(self, logits, target):
        return F.binary_cross_entropy_with_logits(logits, target, self.reduction)


class MSELoss(_Loss):
    """Module form of ``mse_loss``: loss(input, target), same shapes."""

    def forward(self, input, target):
        return F.mse_loss(input, target, self.reduction)


class GaussianKLLoss(_Loss):
    """Module form of ``gaussian_kl``: loss(mu, logvar), each [N, ...]."""

    def forward(self, mu, logvar):
        return F.gaussian_kl(mu, logvar, self.reduction)
