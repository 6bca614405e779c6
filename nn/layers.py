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
           "CrossEntropyLoss", "BCEWithLogitsLoss", "MSELoss", "GaussianKLLoss",
           # issue 14 losses
           "NLLLoss", "BCELoss", "L1Loss", "SmoothL1Loss", "HuberLoss", "KLDivLoss", "PoissonNLLLoss",
           "CosineEmbeddingLoss", "MarginRankingLoss", "TripletMarginLoss", "HingeEmbeddingLoss",
           "MultiLabelSoftMarginLoss"]


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


def _loss_constant(value):
    """A loss's weight as torch keeps it: a buffer (None, or an array; a Tensor's data)."""
    if value is None:
        return None
    return np.asarray(value.data if hasattr(value, "data") and not isinstance(value, np.ndarray) else value)


class CrossEntropyLoss(_Loss):
    """Module form of ``cross_entropy``: loss(logits [..., C], labels [...] or probabilities
    [..., C]); classes LAST (torch's [N, C, d1, ...] is our [N, d1, ..., C]).
    ``weight`` [C], ``ignore_index`` and ``label_smoothing`` as torch's."""

    def __init__(self, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
        if isinstance(weight, str):  # the earlier CrossEntropyLoss('sum')
            weight, reduction = None, weight
        super().__init__(reduction)
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError("CrossEntropyLoss: label_smoothing must be in [0, 1], got %r" % (label_smoothing,))
        self.register_buffer("weight", _loss_constant(weight))
        self.ignore_index, self.label_smoothing = ignore_index, label_smoothing

    def forward(self, logits, target):
        if self.weight is None and self.label_smoothing == 0.0 and self.ignore_index == -100:
            return F.cross_entropy(logits, target, reduction=self.reduction)
        return F.cross_entropy(logits, target, self.weight, self.ignore_index, self.reduction,
                               self.label_smoothing)


class BCEWithLogitsLoss(_Loss):
    """Module form of ``binary_cross_entropy_with_logits``: loss(logits, target), same shapes;
    ``weight`` and ``pos_weight`` (broadcast to them; pos_weight [C] for classes last)."""

    def __init__(self, weight=None, reduction="mean", pos_weight=None):
        if isinstance(weight, str):  # the earlier BCEWithLogitsLoss('sum')
            weight, reduction = None, weight
        super().__init__(reduction)
        self.register_buffer("weight", _loss_constant(weight))
        self.register_buffer("pos_weight", _loss_constant(pos_weight))

    def forward(self, logits, target):
        return F.binary_cross_entropy_with_logits(logits, target, self.weight, self.reduction, self.pos_weight)


class MSELoss(_Loss):
    """Module form of ``mse_loss``: loss(input, target), same shapes."""

    def forward(self, input, target):
        return F.mse_loss(input, target, self.reduction)


class GaussianKLLoss(_Loss):
    """Module form of ``gaussian_kl``: loss(mu, logvar), each [N, ...]."""

    def forward(self, mu, logvar):
        return F.gaussian_kl(mu, logvar, self.reduction)


# ---- issue 14 losses: Module forms of the torch-vocabulary losses in ``nn.losses`` --------
class NLLLoss(_Loss):
    """Module form of ``nll_loss``: loss(log-probabilities [..., C], labels [...]); classes
    LAST. ``weight`` [C] and ``ignore_index`` as torch's."""

    def __init__(self, weight=None, ignore_index=-100, reduction="mean"):
        super().__init__(reduction)
        self.register_buffer("weight", _loss_constant(weight))
        self.ignore_index = ignore_index

    def forward(self, input, target):
        return F.nll_loss(input, target, self.weight, self.ignore_index, self.reduction)


class BCELoss(_Loss):
    """Module form of ``binary_cross_entropy``: loss(probabilities, target), same shapes."""

    def __init__(self, weight=None, reduction="mean"):
        super().__init__(reduction)
        self.register_buffer("weight", _loss_constant(weight))

    def forward(self, input, target):
        return F.binary_cross_entropy(input, target, self.weight, self.reduction)


class L1Loss(_Loss):
    """Module form of ``l1_loss``: loss(input, target), same shapes."""

    def forward(self, input, target):
        return F.l1_loss(input, target, self.reduction)


class SmoothL1Loss(_Loss):
    """Module form of ``smooth_l1_loss`` (beta)."""

    def __init__(self, reduction="mean", beta=1.0):
        super().__init__(reduction)
        if beta < 0:
            raise ValueError("SmoothL1Loss: beta must be >= 0, got %r" % (beta,))
        self.beta = beta

    def forward(self, input, target):
        return F.smooth_l1_loss(input, target, self.reduction, self.beta)


class HuberLoss(_Loss):
    """Module form of ``huber_loss`` (delta)."""

    def __init__(self, reduction="mean", delta=1.0):
        super().__init__(reduction)
        if delta <= 0:
            raise ValueError("HuberLoss: delta must be > 0, got %r" % (delta,))
        self.delta = delta

    def forward(self, input, target):
        return F.huber_loss(input, target, self.reduction, self.delta)


class KLDivLoss(_Loss):
    """Module form of ``kl_div``: loss(log-probabilities, target); reduction may also be
    'batchmean' (the KL divergence per sample); ``log_target``."""

    def __init__(self, reduction="mean", log_target=False):
        super().__init__("mean" if reduction == "batchmean" else reduction)
        self.reduction, self.log_target = reduction, log_target

    def forward(self, input, target):
        return F.kl_div(input, target, self.reduction, self.log_target)


class PoissonNLLLoss(_Loss):
    """Module form of ``poisson_nll_loss`` (log_input, full, eps)."""

    def __init__(self, log_input=True, full=False, eps=1e-8, reduction="mean"):
        super().__init__(reduction)
        self.log_input, self.full, self.eps = log_input, full, eps

    def forward(self, input, target):
        return F.poisson_nll_loss(input, target, self.log_input, self.full, self.eps, self.reduction)


class CosineEmbeddingLoss(_Loss):
    """Module form of ``cosine_embedding_loss``: loss(x1 [N, D], x2 [N, D], target [N] of +-1)."""

    def __init__(self, margin=0.0, reduction="mean"):
        super().__init__(reduction)
        self.margin = margin

    def forward(self, input1, input2, target):
        return F.cosine_embedding_loss(input1, input2, target, self.margin, self.reduction)


class MarginRankingLoss(_Loss):
    """Module form of ``margin_ranking_loss``: loss(x1, x2, target of +-1), one shape."""

    def __init__(self, margin=0.0, reduction="mean"):
        super().__init__(reduction)
        self.margin = margin

    def forward(self, input1, input2, target):
        return F.margin_ranking_loss(input1, input2, target, self.margin, self.reduction)


class TripletMarginLoss(_Loss):
    """Module form of ``triplet_margin_loss``: loss(anchor, positive, negative), each [N, D]."""

    def __init__(self, margin=1.0, p=2.0, eps=1e-6, swap=False, reduction="mean"):
        super().__init__(reduction)
        if p <= 0:
            raise ValueError("TripletMarginLoss: p must be > 0, got %r" % (p,))
        self.margin, self.p, self.eps, self.swap = margin, p, eps, swap

    def forward(self, anchor, positive, negative):
        return F.triplet_margin_loss(anchor, positive, negative, self.margin, self.p, self.eps, self.swap,
                                     self.reduction)


class HingeEmbeddingLoss(_Loss):
    """Module form of ``hinge_embedding_loss``: loss(input, target of +-1), one shape."""

    def __init__(self, margin=1.0, reduction="mean"):
        super().__init__(reduction)
        self.margin = margin

    def forward(self, input, target):
        return F.hinge_embedding_loss(input, target, self.margin, self.reduction)


class MultiLabelSoftMarginLoss(_Loss):
    """Module form of ``multilabel_soft_margin_loss``: loss(input [N, C], target [N, C]); ``weight`` [C]."""

    def __init__(self, weight=None, reduction="mean"):
        super().__init__(reduction)
        self.register_buffer("weight", _loss_constant(weight))

    def forward(self, input, target):
        return F.multilabel_soft_margin_loss(input, target, self.weight, self.reduction)
