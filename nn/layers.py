"""Layers: Modules that hold parameters (Linear, Conv2d) or settings (pooling, Dropout,
activations, losses) and call ``nn.functional``.

Shapes follow the project's conventions: features last, images NHWC
``[batch, height, width, channels]``, conv weights ``[kh, kw, in_channels, out_channels]``.
Default initialisation matches PyTorch's: weights kaiming-uniform with a = sqrt(5)
(bound 1 / sqrt(fan_in)), biases U(-1 / sqrt(fan_in), 1 / sqrt(fan_in)).
"""
import math

import numpy as np

from autograd_core import Tensor

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


class _WeightAndBias(Module):
    """A layer with a ``weight`` and an optional ``bias`` (Linear and the convolutions),
    initialised as torch's: kaiming_uniform(a=sqrt(5)) on the weight, uniform(+-1/sqrt(fan_in))
    on the bias, with fan_in as init.compute_fans reads this project's layouts ([out, in]
    for Linear; [*kernel, in, out] for a convolution; [*kernel, out/groups, in] for a
    transposed one, which gives torch's fan_in of its [in, out/groups, *kernel])."""

    def _add_parameters(self, weight_shape, bias_size, bias, dtype):
        self.weight = Parameter(np.empty(weight_shape, dtype=dtype))
        if bias:
            self.bias = Parameter(np.empty(bias_size, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = _bias_bound(init.compute_fans(self.weight.shape)[0])
            init.uniform_(self.bias, -bound, bound)


class Linear(_WeightAndBias):
    """y = x @ weight.T + bias.

    x: [..., in_features] -> y: [..., out_features]. weight: [out_features, in_features],
    bias: [out_features].
    """

    def __init__(self, in_features, out_features, bias=True, dtype=np.float32):
        super().__init__()
        self.in_features = positive_int("Linear", "in_features", in_features)
        self.out_features = positive_int("Linear", "out_features", out_features)
        self._add_parameters((self.out_features, self.in_features), self.out_features, bias, dtype)

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


class Conv2d(_WeightAndBias):
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
        self._add_parameters((kh, kw, self.in_channels, self.out_channels), self.out_channels, bias, dtype)

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


class _AlongDim(Module):
    """An activation taken along one dimension ``dim`` (default: the last): ``function(x, dim)``."""

    function = None  # set by each subclass (a staticmethod)

    def __init__(self, dim=-1):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return self.function(x, self.dim)

    def extra_repr(self):
        return "dim=%d" % self.dim


class Softmax(_AlongDim):
    """exp(x) / sum(exp(x)) along ``dim`` (default: the last)."""
    function = staticmethod(F.softmax)


class LogSoftmax(_AlongDim):
    """log(softmax(x)) along ``dim``, computed stably."""
    function = staticmethod(F.log_softmax)


# ---- more layers (issue 14): 1-D and transposed convs, resampling, adaptive and 1-D
# pooling, channel dropout, PReLU and the activations of autograd_core as Modules ----------
__all__ += ["Conv1d", "ConvTranspose2d", "Upsample", "AdaptiveAvgPool1d", "AdaptiveAvgPool2d",
            "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "MaxPool1d", "AvgPool1d", "Dropout1d", "Dropout2d",
            "AlphaDropout", "Unflatten", "PReLU", "GELU", "SiLU", "Mish", "Hardswish", "Hardsigmoid", "SELU",
            "CELU", "Softsign", "Hardtanh", "ReLU6", "LogSigmoid", "Softplus", "Softmin", "GLU"]

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _check_channels_last(layer, x, ndims, channels, what):
    """x must have ndims (with the batch) or ndims - 1 (without) dimensions and ``channels``
    in the last one; a ValueError naming the layer otherwise."""
    if not isinstance(x, Tensor):
        raise TypeError("%s: expected a Tensor input, got %s" % (layer, type(x).__name__))
    if x.ndim not in (ndims - 1, ndims) or x.shape[-1] != channels:
        hint = ""
        if x.ndim in (ndims - 1, ndims) and x.shape[-ndims + 1 if x.ndim == ndims else 0] == channels:
            hint = " (it looks like channels-first; this library is channels-last)"
        raise ValueError("%s: expected channels-last input %s (or without the batch dimension), got shape %s%s"
                         % (layer, what % channels, tuple(x.shape), hint))


class Conv1d(_WeightAndBias):
    """1-D convolution over channels-last sequences, torch.nn.Conv1d's arguments.

    x: [N, L, in_channels] (or [L, in_channels]) -> [N, out_L, out_channels].
    weight: [kernel_size, in_channels / groups, out_channels] (torch's [out, in/groups, k]
    mapped by ``autograd_core.ops.convolution.torch_conv_weight_to_ours``); bias:
    [out_channels]. padding: int, 'valid' or 'same' (default 0, as torch); padding_mode
    'zeros', 'reflect', 'replicate' or 'circular'.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", dtype=np.float32):
        super().__init__()
        self.in_channels = positive_int("Conv1d", "in_channels", in_channels)
        self.out_channels = positive_int("Conv1d", "out_channels", out_channels)
        self.kernel_size = positive_int("Conv1d", "kernel_size", _single(kernel_size, "Conv1d", "kernel_size"))
        self.stride = positive_int("Conv1d", "stride", _single(stride, "Conv1d", "stride"))
        self.dilation = positive_int("Conv1d", "dilation", _single(dilation, "Conv1d", "dilation"))
        self.groups = positive_int("Conv1d", "groups", groups)
        if self.in_channels % self.groups or self.out_channels % self.groups:
            raise ValueError("Conv1d: groups (%d) must divide in_channels (%d) and out_channels (%d)"
                             % (self.groups, self.in_channels, self.out_channels))
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError("Conv1d: padding must be 'same', 'valid' or an int, got %r" % (padding,))
        else:
            padding = _single(padding, "Conv1d", "padding")
            if isinstance(padding, bool) or not isinstance(padding, (int, np.integer)) or padding < 0:
                raise ValueError("Conv1d: padding must be 'same', 'valid' or a non-negative int, got %r"
                                 % (padding,))
            padding = int(padding)
        if padding_mode not in _PADDING_MODES:
            raise ValueError("Conv1d: padding_mode must be one of %s, got %r" % (_PADDING_MODES, padding_mode))
        self.padding, self.padding_mode = padding, padding_mode
        self._add_parameters((self.kernel_size, self.in_channels // self.groups, self.out_channels),
                             self.out_channels, bias, dtype)

    def forward(self, x):
        """x [N, L, in_channels] -> [N, out_L, out_channels]."""
        _check_channels_last(self._name(), x, 3, self.in_channels, "[N, L, %d]")
        _check_dtype(self._name(), x, self.weight)
        padding = self.padding
        if self.padding_mode != "zeros" and padding != "valid":
            # torch pads with the mode first, then convolves without padding
            if padding == "same":
                total = self.dilation * (self.kernel_size - 1)
                before, after = total // 2, total - total // 2
            else:
                before = after = padding
            x = F.pad(x, (0, 0, before, after), mode=self.padding_mode)
            padding = 0
        return F.conv1d(x, self.weight, self.bias, self.stride, padding, self.dilation, self.groups)

    def _name(self):
        return "Conv1d(%d, %d, kernel_size=%d)" % (self.in_channels, self.out_channels, self.kernel_size)

    def extra_repr(self):
        text = "%d, %d, kernel_size=%d, stride=%d, padding=%r" % (
            self.in_channels, self.out_channels, self.kernel_size, self.stride, self.padding)
        if self.dilation != 1:
            text += ", dilation=%d" % self.dilation
        if self.groups != 1:
            text += ", groups=%d" % self.groups
        if self.padding_mode != "zeros":
            text += ", padding_mode=%r" % self.padding_mode
        return text + ("" if self.bias is not None else ", bias=False")


def _single(value, layer, name):
    """torch accepts an int or a 1-tuple for 1-D sizes."""
    if isinstance(value, (tuple, list)):
        if len(value) != 1:
            raise ValueError("%s: %s must be an int or a 1-tuple, got %r" % (layer, name, value))
        return value[0]
    return value


def _non_negative_pair(layer, name, value):
    values = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(values) != 2 or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0 for v in values):
        raise ValueError("%s: %s must be a non-negative int or pair of them, got %r" % (layer, name, value))
    return tuple(int(v) for v in values)


class Upsample(Module):
    """Resample channels-last input [N, *spatial, C] to ``size`` or by ``scale_factor``
    (torch.nn.Upsample; autograd_core.interpolate does the work, its modes included)."""

    def __init__(self, size=None, scale_factor=None, mode="nearest", align_corners=None,
                 recompute_scale_factor=None):
        super().__init__()
        if (size is None) == (scale_factor is None):
            raise ValueError("Upsample: give exactly one of size and scale_factor, got size=%r, scale_factor=%r"
                             % (size, scale_factor))
        self.size, self.scale_factor, self.mode = size, scale_factor, mode
        self.align_corners, self.recompute_scale_factor = align_corners, recompute_scale_factor

    def forward(self, x):
        return F.interpolate(x, size=self.size, scale_factor=self.scale_factor, mode=self.mode,
                             align_corners=self.align_corners, recompute_scale_factor=self.recompute_scale_factor)

    def extra_repr(self):
        text = ("size=%r" % (self.size,)) if self.size is not None else "scale_factor=%r" % (self.scale_factor,)
        return text + ", mode=%r" % self.mode


class _AdaptivePool(Module):
    _function = None
    _spatial = 2

    def __init__(self, output_size, return_indices=False):
        super().__init__()
        self.output_size = output_size
        self.return_indices = bool(return_indices)

    def forward(self, x):
        if not isinstance(x, Tensor) or x.ndim not in (self._spatial + 1, self._spatial + 2):
            raise ValueError("%s: expected channels-last input [N, %s, C] (or without N), got %s" % (
                type(self).__name__, ", ".join("HW"[:self._spatial] if self._spatial == 2 else "L"),
                tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__))
        function = getattr(F, self._function)
        if self.return_indices:
            return function(x, self.output_size, return_indices=True)
        return function(x, self.output_size)

    def extra_repr(self):
        return "output_size=%r" % (self.output_size,)


class AdaptiveAvgPool1d(_AdaptivePool):
    """Mean over adaptive windows: [N, L, C] -> [N, output_size, C] (torch's start/end rule)."""
    _function, _spatial = "adaptive_avg_pool1d", 1

    def __init__(self, output_size):
        super().__init__(output_size)


class AdaptiveAvgPool2d(_AdaptivePool):
    """Mean over adaptive windows: [N, H, W, C] -> [N, *output_size, C]; output_size an int,
    a pair, or None in a pair for "keep that dimension"."""
    _function = "adaptive_avg_pool2d"

    def __init__(self, output_size):
        super().__init__(output_size)


class AdaptiveMaxPool1d(_AdaptivePool):
    """Max over adaptive windows: [N, L, C] -> [N, output_size, C] (and the argmax indices
    with return_indices)."""
    _function, _spatial = "adaptive_max_pool1d", 1


class AdaptiveMaxPool2d(_AdaptivePool):
    """Max over adaptive windows: [N, H, W, C] -> [N, *output_size, C] (and the argmax
    indices with return_indices)."""
    _function = "adaptive_max_pool2d"


class MaxPool1d(Module):
    """Max over windows of channels-last [N, L, C]; torch.nn.MaxPool1d's arguments."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.dilation, self.return_indices, self.ceil_mode = dilation, bool(return_indices), bool(ceil_mode)

    def forward(self, x):
        if not isinstance(x, Tensor) or x.ndim not in (2, 3):
            raise ValueError("MaxPool1d: expected channels-last input [N, L, C] or [L, C], got %s"
                             % ((tuple(x.shape),) if isinstance(x, Tensor) else type(x).__name__))
        return F.max_pool1d(x, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode,
                            self.return_indices)

    def extra_repr(self):
        return "kernel_size=%r, stride=%r, padding=%r" % (self.kernel_size, self.stride, self.padding)


class AvgPool1d(Module):
    """Mean over windows of channels-last [N, L, C]; torch.nn.AvgPool1d's arguments."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.ceil_mode, self.count_include_pad = bool(ceil_mode), bool(count_include_pad)

    def forward(self, x):
        if not isinstance(x, Tensor) or x.ndim not in (2, 3):
            raise ValueError("AvgPool1d: expected channels-last input [N, L, C] or [L, C], got %s"
                             % ((tuple(x.shape),) if isinstance(x, Tensor) else type(x).__name__))
        return F.avg_pool1d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad)

    def extra_repr(self):
        return "kernel_size=%r, stride=%r, padding=%r" % (self.kernel_size, self.stride, self.padding)


class _ChannelDropout(Dropout):
    _spatial = 2

    def forward(self, x):
        return F.channel_dropout(x, self.p, self.training, self.generator, self._spatial, type(self).__name__)


class Dropout1d(_ChannelDropout):
    """Channel dropout of channels-last [N, L, C] (or [L, C]): in training each sample's
    channel is zeroed whole with probability p, the others scaled by 1 / (1 - p)."""
    _spatial = 1


class Dropout2d(_ChannelDropout):
    """Channel dropout of NHWC [N, H, W, C] (or [H, W, C]): in training each sample's
    channel (an [H, W] map) is zeroed whole with probability p, the others scaled by
    1 / (1 - p). As torch.nn.Dropout2d with channels last."""
    _spatial = 2


class AlphaDropout(Dropout):
    """Dropout that keeps SELU's zero mean and unit variance: dropped elements take SELU's
    negative saturation, then an affine map restores the statistics (torch.nn.AlphaDropout)."""

    def forward(self, x):
        return F.alpha_dropout(x, self.p, self.training, self.generator)


class Unflatten(Module):
    """Split dimension ``dim`` into ``unflattened_size``: [N, 12] -> [N, 3, 4] for
    Unflatten(1, (3, 4)); one entry may be -1."""

    def __init__(self, dim, unflattened_size):
        super().__init__()
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
            raise TypeError("Unflatten: dim must be an int, got %r" % (dim,))
        sizes = tuple(unflattened_size)
        if not sizes or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or (s < 1 and s != -1)
                            for s in sizes) or sizes.count(-1) > 1:
            raise ValueError("Unflatten: unflattened_size must be positive ints (one may be -1), got %r"
                             % (unflattened_size,))
        self.dim, self.unflattened_size = int(dim), tuple(int(s) for s in sizes)

    def forward(self, x):
        dim = self.dim + x.ndim if self.dim < 0 else self.dim
        if not 0 <= dim < x.ndim:
            raise ValueError("Unflatten: dim %d out of range for input of shape %s" % (self.dim, tuple(x.shape)))
        known = int(np.prod([s for s in self.unflattened_size if s != -1]))
        length = x.shape[dim]
        if (-1 in self.unflattened_size and length % known) or (-1 not in self.unflattened_size and known != length):
            raise ValueError("Unflatten: cannot split dimension %d of size %d into %s (input shape %s)"
                             % (self.dim, length, self.unflattened_size, tuple(x.shape)))
        return x.reshape(tuple(x.shape[:dim]) + self.unflattened_size + tuple(x.shape[dim + 1:]))

    def extra_repr(self):
        return "dim=%d, unflattened_size=%s" % (self.dim, self.unflattened_size)


class PReLU(Module):
    """x for x > 0, weight * x otherwise; weight [num_parameters] learned, one shared value
    or one per channel (the LAST dimension, channels-last), starting at ``init``."""

    def __init__(self, num_parameters=1, init=0.25, dtype=np.float32):
        super().__init__()
        self.num_parameters = positive_int("PReLU", "num_parameters", num_parameters)
        self.init = float(init)
        self.weight = Parameter(np.full(self.num_parameters, self.init, dtype=dtype))

    def reset_parameters(self):
        self.weight.data[...] = self.init

    def forward(self, x):
        if self.num_parameters > 1 and (x.ndim < 2 or x.shape[-1] != self.num_parameters):
            raise ValueError("PReLU(num_parameters=%d): expected channels-last input [..., %d], got shape %s"
                             % (self.num_parameters, self.num_parameters, tuple(x.shape)))
        _check_dtype("PReLU", x, self.weight)
        return F.prelu(x, self.weight)

    def extra_repr(self):
        return "num_parameters=%d" % self.num_parameters


class _Activation(Module):
    """An elementwise activation without settings; ``inplace`` is accepted for torch's
    signature and ignored (the result is the same, computed out of place)."""
    _function = None

    def __init__(self, inplace=False):
        super().__init__()

    def forward(self, x):
        return getattr(F, self._function)(x)


class GELU(Module):
    """x * Phi(x) (approximate='none') or its tanh approximation (approximate='tanh')."""

    def __init__(self, approximate="none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError("GELU: approximate must be 'none' or 'tanh', got %r" % (approximate,))
        self.approximate = approximate

    def forward(self, x):
        return F.gelu(x, approximate=self.approximate)

    def extra_repr(self):
        return "approximate=%r" % self.approximate


class SiLU(_Activation):
    """x * sigmoid(x)."""
    _function = "silu"


class Mish(_Activation):
    """x * tanh(softplus(x))."""
    _function = "mish"


class Hardswish(_Activation):
    """x * relu6(x + 3) / 6."""
    _function = "hardswish"


class Hardsigmoid(_Activation):
    """relu6(x + 3) / 6."""
    _function = "hardsigmoid"


class SELU(_Activation):
    """scale * (x for x > 0, alpha * (exp(x) - 1) otherwise), torch's alpha and scale."""
    _function = "selu"


class Softsign(Module):
    """x / (1 + |x|)."""

    def forward(self, x):
        return F.softsign(x)


class ReLU6(_Activation):
    """min(max(x, 0), 6)."""
    _function = "relu6"


class LogSigmoid(Module):
    """log(sigmoid(x)), computed stably."""

    def forward(self, x):
        return F.logsigmoid(x)


class CELU(Module):
    """x for x > 0, alpha * (exp(x / alpha) - 1) otherwise."""

    def __init__(self, alpha=1.0, inplace=False):
        super().__init__()
        self.alpha = float(alpha)
        if self.alpha == 0:
            raise ValueError("CELU: alpha must not be 0")

    def forward(self, x):
        return F.celu(x, self.alpha)

    def extra_repr(self):
        return "alpha=%s" % self.alpha


class Hardtanh(Module):
    """x clipped to [min_val, max_val]."""

    def __init__(self, min_val=-1.0, max_val=1.0, inplace=False):
        super().__init__()
        if max_val <= min_val:
            raise ValueError("Hardtanh: max_val (%r) must be greater than min_val (%r)" % (max_val, min_val))
        self.min_val, self.max_val = float(min_val), float(max_val)

    def forward(self, x):
        return F.hardtanh(x, self.min_val, self.max_val)

    def extra_repr(self):
        return "min_val=%s, max_val=%s" % (self.min_val, self.max_val)


class Softplus(Module):
    """log(1 + exp(beta * x)) / beta, and x itself where beta * x > threshold (torch's rule)."""

    def __init__(self, beta=1.0, threshold=20.0):
        super().__init__()
        self.beta, self.threshold = float(beta), float(threshold)
        if self.beta == 0:
            raise ValueError("Softplus: beta must not be 0")

    def forward(self, x):
        return F.softplus(x, self.beta, self.threshold)

    def extra_repr(self):
        return "beta=%s, threshold=%s" % (self.beta, self.threshold)


class Softmin(_AlongDim):
    """softmax(-x) along ``dim`` (default: the last)."""
    function = staticmethod(F.softmin)


class GLU(_AlongDim):
    """a * sigmoid(b) where a, b are the halves of x along ``dim`` (default: the last):
    [..., 2n] -> [..., n]."""

    def forward(self, x):
        size = x.shape[self.dim] if -x.ndim <= self.dim < x.ndim else None
        if size is None or size % 2:
            raise ValueError("GLU(dim=%d): the dimension must exist and have an even size, got input shape %s"
                             % (self.dim, tuple(x.shape)))
        return F.glu(x, self.dim)


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


# ---- issue 14 leftovers: Conv3d, ConvTranspose1d/3d, MaxPool3d, AvgPool3d ----
__all__ += ["Conv3d", "ConvTranspose1d", "ConvTranspose3d", "MaxPool3d", "AvgPool3d"]


def _ints(layer, name, value, dims, minimum):
    """An int or ``dims`` ints -> a tuple of ``dims`` ints >= minimum, or a ValueError
    naming the layer and the argument."""
    values = tuple(value) if isinstance(value, (tuple, list)) else (value,) * dims
    if len(values) != dims or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < minimum
                                  for v in values):
        raise ValueError("%s: %s must be an int >= %d or %d of them, got %r" % (layer, name, minimum, dims, value))
    return tuple(int(v) for v in values)


class Conv3d(_WeightAndBias):
    """3-D convolution over channels-last volumes, torch.nn.Conv3d's arguments.

    x: [N, D, H, W, in_channels] (or without N) -> [N, out_D, out_H, out_W, out_channels].
    weight: [kd, kh, kw, in_channels / groups, out_channels] (torch's [out, in/groups, kd,
    kh, kw] mapped by ``torch_conv_weight_to_ours``); bias: [out_channels]. padding: an
    int, 3 ints, 'valid' or 'same' (default 0, as torch); padding_mode 'zeros',
    'reflect', 'replicate' or 'circular'.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", dtype=np.float32):
        super().__init__()
        self.in_channels = positive_int("Conv3d", "in_channels", in_channels)
        self.out_channels = positive_int("Conv3d", "out_channels", out_channels)
        self.kernel_size = _ints("Conv3d", "kernel_size", kernel_size, 3, 1)
        self.stride = _ints("Conv3d", "stride", stride, 3, 1)
        self.dilation = _ints("Conv3d", "dilation", dilation, 3, 1)
        self.groups = positive_int("Conv3d", "groups", groups)
        if self.in_channels % self.groups or self.out_channels % self.groups:
            raise ValueError("Conv3d: groups (%d) must divide in_channels (%d) and out_channels (%d)"
                             % (self.groups, self.in_channels, self.out_channels))
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError("Conv3d: padding must be 'same', 'valid', an int or 3 ints, got %r" % (padding,))
            if padding == "same" and self.stride != (1, 1, 1):
                raise ValueError("Conv3d: padding='same' needs stride 1 (as torch), got stride %s" % (self.stride,))
        else:
            padding = _ints("Conv3d", "padding", padding, 3, 0)
        if padding_mode not in _PADDING_MODES:
            raise ValueError("Conv3d: padding_mode must be one of %s, got %r" % (_PADDING_MODES, padding_mode))
        self.padding, self.padding_mode = padding, padding_mode
        self._add_parameters(self.kernel_size + (self.in_channels // self.groups, self.out_channels),
                             self.out_channels, bias, dtype)

    def forward(self, x):
        """x [N, D, H, W, in_channels] -> [N, out_D, out_H, out_W, out_channels]."""
        _check_channels_last(self._name(), x, 5, self.in_channels, "[N, D, H, W, %d]")
        _check_dtype(self._name(), x, self.weight)
        padding = self.padding
        if self.padding_mode != "zeros" and padding != "valid":
            # torch pads with the mode first, then convolves without padding
            if padding == "same":
                totals = [d * (k - 1) for d, k in zip(self.dilation, self.kernel_size)]
                pairs = [(t // 2, t - t // 2) for t in totals]
            else:
                pairs = [(p, p) for p in padding]
            flat = [0, 0]  # F.pad lists the last dim (channels, unpadded) first
            for before, after in reversed(pairs):
                flat += [before, after]
            x = F.pad(x, tuple(flat), mode=self.padding_mode)
            padding = 0
        return F.conv3d(x, self.weight, self.bias, self.stride, padding, self.dilation, self.groups)

    def _name(self):
        return "Conv3d(%d, %d, kernel_size=%s)" % (self.in_channels, self.out_channels, self.kernel_size)

    def extra_repr(self):
        text = "%d, %d, kernel_size=%s, stride=%s, padding=%r" % (
            self.in_channels, self.out_channels, self.kernel_size, self.stride, self.padding)
        if self.dilation != (1, 1, 1):
            text += ", dilation=%s" % (self.dilation,)
        if self.groups != 1:
            text += ", groups=%d" % self.groups
        if self.padding_mode != "zeros":
            text += ", padding_mode=%r" % self.padding_mode
        return text + ("" if self.bias is not None else ", bias=False")


class _ConvTransposeNd(_WeightAndBias):
    """The transposed convolutions of ``_dims`` spatial dims (ConvTranspose1d, 2d, 3d); see
    ConvTranspose2d for the arithmetic."""
    _dims = None
    _what = None  # the input's shape in errors

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
                 bias=True, dilation=1, padding_mode="zeros", dtype=np.float32):
        super().__init__()
        name, dims = type(self).__name__, self._dims
        self.in_channels = positive_int(name, "in_channels", in_channels)
        self.out_channels = positive_int(name, "out_channels", out_channels)
        self.kernel_size = _ints(name, "kernel_size", kernel_size, dims, 1)
        self.stride = _ints(name, "stride", stride, dims, 1)
        self.dilation = _ints(name, "dilation", dilation, dims, 1)
        self.padding = _ints(name, "padding", padding, dims, 0)
        self.output_padding = _ints(name, "output_padding", output_padding, dims, 0)
        self.groups = positive_int(name, "groups", groups)
        if self.in_channels % self.groups or self.out_channels % self.groups:
            raise ValueError("%s: groups (%d) must divide in_channels (%d) and out_channels (%d)"
                             % (name, self.groups, self.in_channels, self.out_channels))
        if any(o >= max(s, d) for o, s, d in zip(self.output_padding, self.stride, self.dilation)):
            raise ValueError("%s: output_padding %s must be smaller than stride %s or dilation %s"
                             % (name, self.output_padding, self.stride, self.dilation))
        if padding_mode != "zeros":
            raise ValueError("%s: only padding_mode 'zeros' is supported (as torch), got %r" % (name, padding_mode))
        self._add_parameters(self.kernel_size + (self.out_channels // self.groups, self.in_channels),
                             self.out_channels, bias, dtype)

    def forward(self, x, output_size=None):
        """x [N, *spatial, in_channels] (or without N) -> [N, *out_spatial, out_channels].
        output_size: the spatial sizes wanted (torch's argument), which pick the
        output_padding."""
        _check_channels_last(self._name(), x, self._dims + 2, self.in_channels, self._what)
        _check_dtype(self._name(), x, self.weight)
        output_padding = self.output_padding
        if output_size is not None:
            output_padding = self._output_padding(x, output_size)
        function = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}[self._dims]
        return function(x, self.weight, self.bias, self.stride, self.padding, output_padding, self.groups,
                        self.dilation)

    def _output_padding(self, x, output_size):
        dims = self._dims
        size = tuple(output_size)[-dims:] if len(tuple(output_size)) >= dims else None
        if size is None:
            raise ValueError("%s: output_size must hold the %d spatial sizes, got %r"
                             % (self._name(), dims, output_size))
        padding = []
        for axis in range(dims):
            smallest = ((x.shape[x.ndim - 1 - dims + axis] - 1) * self.stride[axis] - 2 * self.padding[axis]
                        + self.dilation[axis] * (self.kernel_size[axis] - 1) + 1)
            extra = int(size[axis]) - smallest
            if not 0 <= extra < max(self.stride[axis], self.dilation[axis]):
                raise ValueError("%s: output_size %s cannot be reached: dimension %d must lie in [%d, %d]"
                                 % (self._name(), tuple(size), axis, smallest,
                                    smallest + max(self.stride[axis], self.dilation[axis]) - 1))
            padding.append(extra)
        return tuple(padding)

    def _name(self):
        return "%s(%d, %d, kernel_size=%s)" % (type(self).__name__, self.in_channels, self.out_channels,
                                               self.kernel_size)

    def extra_repr(self):
        ones = (1,) * self._dims
        text = "%d, %d, kernel_size=%s, stride=%s, padding=%s" % (
            self.in_channels, self.out_channels, self.kernel_size, self.stride, self.padding)
        if self.output_padding != (0,) * self._dims:
            text += ", output_padding=%s" % (self.output_padding,)
        if self.dilation != ones:
            text += ", dilation=%s" % (self.dilation,)
        if self.groups != 1:
            text += ", groups=%d" % self.groups
        return text + ("" if self.bias is not None else ", bias=False")


class ConvTranspose1d(_ConvTransposeNd):
    """1-D transposed convolution over channels-last sequences, torch.nn.ConvTranspose1d's
    arguments. x: [N, L, in_channels] (or [L, in_channels]) -> [N, out_L, out_channels],
    out_L = (L - 1) * stride - 2 * padding + dilation * (k - 1) + output_padding + 1.
    weight: [k, out_channels / groups, in_channels] (torch's [in, out/groups, k]);
    bias: [out_channels]."""
    _dims, _what = 1, "[N, L, %d]"


class ConvTranspose2d(_ConvTransposeNd):
    """2-D transposed convolution over NHWC images, torch.nn.ConvTranspose2d's arguments.

    x: [N, H, W, in_channels] (or [H, W, in_channels]) -> [N, out_h, out_w, out_channels],
    out_h = (H - 1) * stride - 2 * padding + dilation * (kh - 1) + output_padding + 1.
    weight: [kh, kw, out_channels / groups, in_channels] (torch's [in, out/groups, kh, kw]
    mapped by ``torch_conv_weight_to_ours``); bias: [out_channels].
    """
    _dims, _what = 2, "[N, H, W, %d]"


class ConvTranspose3d(_ConvTransposeNd):
    """3-D transposed convolution over channels-last volumes, torch.nn.ConvTranspose3d's
    arguments. x: [N, D, H, W, in_channels] (or without N) -> [N, out_D, out_H, out_W,
    out_channels] (per dim as ConvTranspose1d). weight: [kd, kh, kw, out_channels /
    groups, in_channels] (torch's [in, out/groups, kd, kh, kw]); bias: [out_channels]."""
    _dims, _what = 3, "[N, D, H, W, %d]"


def _check_volume(layer, x):
    if not isinstance(x, Tensor) or x.ndim not in (4, 5):
        raise ValueError("%s: expected channels-last input [N, D, H, W, C] or [D, H, W, C], got %s"
                         % (layer, tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__))


class MaxPool3d(Module):
    """Max over windows of channels-last volumes [N, D, H, W, C] (or without N);
    torch.nn.MaxPool3d's arguments (stride defaults to kernel_size). Returns
    [N, out_D, out_H, out_W, C], and the indices with return_indices."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False):
        super().__init__()
        self.kernel_size = _ints("MaxPool3d", "kernel_size", kernel_size, 3, 1)
        self.stride = self.kernel_size if stride is None else _ints("MaxPool3d", "stride", stride, 3, 1)
        self.padding = _ints("MaxPool3d", "padding", padding, 3, 0)
        self.dilation = _ints("MaxPool3d", "dilation", dilation, 3, 1)
        self.return_indices, self.ceil_mode = bool(return_indices), bool(ceil_mode)

    def forward(self, x):
        _check_volume("MaxPool3d", x)
        return F.max_pool3d(x, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode,
                            self.return_indices)

    def extra_repr(self):
        return "kernel_size=%s, stride=%s, padding=%s, dilation=%s, ceil_mode=%s" % (
            self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode)


class AvgPool3d(Module):
    """Mean over windows of channels-last volumes [N, D, H, W, C] (or without N);
    torch.nn.AvgPool3d's arguments: padded cells add zero and count in the divisor with
    count_include_pad (True, as torch); divisor_override replaces the divisor."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                 divisor_override=None):
        super().__init__()
        self.kernel_size = _ints("AvgPool3d", "kernel_size", kernel_size, 3, 1)
        self.stride = self.kernel_size if stride is None else _ints("AvgPool3d", "stride", stride, 3, 1)
        self.padding = _ints("AvgPool3d", "padding", padding, 3, 0)
        self.ceil_mode, self.count_include_pad = bool(ceil_mode), bool(count_include_pad)
        if divisor_override is not None:
            divisor_override = positive_int("AvgPool3d", "divisor_override", divisor_override)
        self.divisor_override = divisor_override

    def forward(self, x):
        _check_volume("AvgPool3d", x)
        return F.avg_pool3d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad,
                            self.divisor_override)

    def extra_repr(self):
        return "kernel_size=%s, stride=%s, padding=%s" % (self.kernel_size, self.stride, self.padding)
