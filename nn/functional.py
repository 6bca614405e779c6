"""Stateless forms of the layers and losses: ``functional.linear(x, weight, bias)`` etc.

The layers in ``layers.py`` hold parameters and call these. Everything differentiable is
an autograd_core op, a fused loss Function from ``losses.py`` (re-exported here) or, where
the engine has none (dropout), a Function defined here. Nothing here imports a Module.
"""
import numpy as np

import autograd_core
from autograd_core import Function, Tensor
from autograd_core.registry import dimension_aliases

from . import init
from .losses import binary_cross_entropy_with_logits, cross_entropy, gaussian_kl, mse_loss

__all__ = ["linear", "conv2d", "max_pool2d", "avg_pool2d", "dropout", "relu", "sigmoid", "tanh",
           "elu", "leaky_relu", "softmax", "log_softmax", "flatten", "pad",
           "cross_entropy", "binary_cross_entropy_with_logits", "mse_loss", "gaussian_kl"]


def pad(input, pad, mode="constant", value=None):
    """torch.nn.functional.pad: ``pad`` is (before, after) pairs from the last dim backwards;
    mode constant (value), reflect, replicate or circular; differentiable. The op is
    autograd_core.pad (see there)."""
    _check_tensor("pad", "input", input)
    return autograd_core.pad(input, pad, mode=mode, value=value)


def _check_tensor(op, name, value):
    if not isinstance(value, Tensor):
        raise TypeError("%s: %s must be a Tensor, got %s" % (op, name, type(value).__name__))


def linear(x, weight, bias=None, activation=None):
    """y = x @ weight.T + bias, then the activation.

    x: [..., in_features]; weight: [out_features, in_features]; bias: [out_features] or
    None; activation: None or 'relu' (relu(linear(...)) as one op: the bias and the ReLU
    in one pass, the ReLU's mask kept as bits). Returns [..., out_features]. One fused
    engine op (autograd_core.linear).
    """
    _check_tensor("linear", "x", x)
    return autograd_core.linear(x, weight, bias, activation=activation)


def conv2d(x, weight, bias=None, stride=1, padding="valid", dilation=1, groups=1, *, activation=None):
    """2-D convolution (cross-correlation) of NHWC images, then the activation.

    x: [N, H, W, in_channels]; weight: [kh, kw, in_channels, out_channels];
    bias: [out_channels] or None; padding: 'valid' (default, as autograd_core.conv2d),
    'same' (output = ceil(input / stride)) or an int/pair; activation: None or 'relu'
    (relu(conv2d(...)) as one op: the bias and the ReLU in one pass, the ReLU's mask
    kept as bits). Returns [N, out_h, out_w, out_channels].
    """
    return autograd_core.conv2d(x, weight, bias, stride, padding, dilation, groups, activation=activation)


class _Dropout(Function):
    """x * mask, where mask holds 0 or 1 / (1 - p); the same mask scales the gradient."""

    @staticmethod
    def forward(ctx, x, mask):
        ctx.save_for_backward(mask)
        return x * mask

    @staticmethod
    def backward(ctx, grad_output):
        (mask,) = ctx.saved_tensors
        return grad_output * mask, None

    @staticmethod
    def differentiable_backward(ctx, grad_output):
        # the mask is a constant of the node (not an input), so the gradient is linear in grad
        return grad_output * Tensor(ctx.inputs[1]), None


def dropout(x, p=0.5, training=True, generator=None):
    """Inverted dropout: zero each element with probability p and scale the survivors by
    1 / (1 - p), so evaluation (training=False, the identity) needs no rescaling.

    ``generator``: a numpy Generator; by default the one ``nn.init.manual_seed`` seeds.
    """
    _check_tensor("dropout", "x", x)
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
        raise ValueError("dropout: p must be a probability in [0, 1], got %r" % (p,))
    if not training or p == 0.0:
        return x
    if x.dtype.kind != "f":
        raise TypeError("dropout: x must be a float tensor, got dtype %s" % x.dtype)
    if p == 1.0:
        mask = np.zeros(x.shape, dtype=x.dtype)
    else:
        rng = init.get_generator() if generator is None else generator
        keep = rng.random(x.shape, dtype=np.float32 if x.dtype == np.float32 else np.float64) >= p
        mask = keep.astype(x.dtype)
        mask *= x.dtype.type(1.0 / (1.0 - p))
    return _Dropout.apply(x, mask)


def relu(x):
    """max(x, 0), elementwise."""
    return autograd_core.relu(x)


def sigmoid(x):
    """1 / (1 + exp(-x)), elementwise."""
    return autograd_core.sigmoid(x)


def tanh(x):
    """tanh(x), elementwise."""
    return autograd_core.tanh(x)


def elu(x, alpha=1.0):
    """x for x > 0, alpha * (exp(x) - 1) otherwise."""
    return autograd_core.elu(x, alpha)


def leaky_relu(x, negative_slope=0.01):
    """x for x > 0, negative_slope * x otherwise."""
    return autograd_core.leaky_relu(x, negative_slope)


@dimension_aliases
def softmax(x, dim=-1):
    """exp(x) / sum(exp(x)) along ``dim``."""
    return autograd_core.softmax(x, dim=dim)


@dimension_aliases
def log_softmax(x, dim=-1):
    """x - logsumexp(x) along ``dim`` (stable)."""
    return autograd_core.log_softmax(x, dim=dim)


def flatten(x, start_dim=1, end_dim=-1):
    """Merge dimensions start_dim..end_dim (default: all but the batch dimension)."""
    return autograd_core.flatten(x, start_dim, end_dim)


# torch.nn.functional names whose autograd_core op takes the same arguments: bound here, not
# wrapped, so each op stays declared once (help() shows the op's own docstring). unfold/fold
# are torch's im2col/col2im, ag.im2col/ag.col2im here (ag.unfold is Tensor.unfold's windows).
_SAME_AS_OPS = ("max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d",
                "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d",
                "adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d",
                "max_unpool1d", "max_unpool2d", "max_unpool3d", "interpolate", "upsample",
                "pixel_shuffle", "pixel_unshuffle", "conv1d", "conv3d", "conv_transpose1d",
                "conv_transpose2d", "conv_transpose3d", "gelu", "silu", "mish", "hardswish",
                "hardsigmoid", "selu", "celu", "softsign", "hardtanh", "relu6", "logsigmoid",
                "softmin", "glu", "prelu", "softplus", "one_hot")
for _name in _SAME_AS_OPS:
    globals()[_name] = getattr(autograd_core, _name)
unfold = autograd_core.im2col
fold = autograd_core.col2im
__all__ += list(_SAME_AS_OPS) + ["unfold", "fold"]


# ---- losses (issue 14): torch's loss vocabulary, defined in nn.losses ----------------------
from .losses import (binary_cross_entropy, cosine_embedding_loss, hinge_embedding_loss, huber_loss,  # noqa: E402
                     kl_div, l1_loss, margin_ranking_loss, multilabel_soft_margin_loss, nll_loss,
                     poisson_nll_loss, smooth_l1_loss, triplet_margin_loss)
__all__ += ["nll_loss", "binary_cross_entropy", "l1_loss", "smooth_l1_loss", "huber_loss", "kl_div",
            "poisson_nll_loss", "cosine_embedding_loss", "margin_ranking_loss", "triplet_margin_loss",
            "hinge_embedding_loss", "multilabel_soft_margin_loss"]

# ---- attention and layer normalisation (issue 14, item 2) --------------------------------
layer_norm = autograd_core.layer_norm


def _float_mask(op, name, mask, dtype, bool_means_keep):
    """A bool mask as an additive array of ``dtype`` (0 where attending, -inf elsewhere;
    ``bool_means_keep`` says which meaning True has: sdpa's True attends, MultiheadAttention's
    True is masked out); a float mask as it is (a Tensor stays one, so it may carry a
    gradient), in ``dtype``."""
    array = mask.data if isinstance(mask, Tensor) else np.asarray(mask)
    if array.dtype == np.bool_:
        blocked = ~array if bool_means_keep else array
        return np.where(blocked, dtype.type(-np.inf), dtype.type(0))
    if array.dtype.kind != "f":
        raise TypeError("%s: got %s of dtype %s, expected a bool or float mask" % (op, name, array.dtype))
    if isinstance(mask, Tensor) and mask.requires_grad:
        if mask.dtype != dtype:
            raise TypeError("%s: got %s of dtype %s for inputs of dtype %s, expected one dtype"
                            % (op, name, mask.dtype, dtype))
        return mask
    return array.astype(dtype, copy=False)


def _check_mask_shape(op, name, mask, scores_shape, expected):
    shape = tuple(mask.shape)
    try:
        broadcast = np.broadcast_shapes(shape, scores_shape)
    except ValueError:
        broadcast = None
    if broadcast != tuple(scores_shape):
        raise ValueError("%s: got %s of shape %s, expected one that broadcasts to the attention scores %s (%s)"
                         % (op, name, shape, tuple(scores_shape), expected))


def _attend(query, key, value, additive_mask, dropout_p, scale):
    """softmax(query @ key^T * scale + additive_mask) (dropout) @ value over the last two
    dimensions, batched over the leading ones. Rows that the mask blocks entirely attend to
    nothing (zero weights, as torch 2.x's safe softmax). Returns (output, weights)."""
    scores = autograd_core.matmul(query * query.dtype.type(scale), key.transpose(-2, -1))
    if additive_mask is not None:
        scores = scores + additive_mask
        mask_values = additive_mask.data if isinstance(additive_mask, Tensor) else additive_mask
        blocked_rows = np.all(mask_values == -np.inf, axis=-1, keepdims=True)
        if blocked_rows.any():
            blocked_rows = np.broadcast_to(blocked_rows, scores.shape[:-1] + (1,))
            # a finite row for softmax, whose weights are then zeroed (no gradient flows)
            scores = autograd_core.masked_fill(scores, blocked_rows, 0.0)
            weights = autograd_core.softmax(scores, dim=-1) * (~blocked_rows).astype(scores.dtype)
        else:
            weights = autograd_core.softmax(scores, dim=-1)
    else:
        weights = autograd_core.softmax(scores, dim=-1)
    if dropout_p > 0.0:
        weights = dropout(weights, dropout_p)
    return autograd_core.matmul(weights, value), weights


def _check_probability(op, name, p):
    if isinstance(p, bool) or not isinstance(p, (int, float, np.integer, np.floating)) or not 0.0 <= p <= 1.0:
        raise ValueError("%s: %s must be a probability in [0, 1], got %r" % (op, name, p))
    return float(p)


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None):
    """softmax(query @ key^T * scale + mask) @ value, as
    torch.nn.functional.scaled_dot_product_attention (dropout applies whenever dropout_p > 0,
    as torch's: pass 0.0 in evaluation).

    query [..., L, E], key [..., S, E], value [..., S, Ev] (leading dimensions broadcast;
    one float dtype) -> [..., L, Ev]. attn_mask broadcastable to [..., L, S]: bool (True
    takes part in attention) or float (added to the scores). is_causal: query i attends to
    keys 0..i (a lower-triangular [L, S] mask; not with attn_mask). scale: default
    1 / sqrt(E). A query row that the mask blocks entirely gets zeros, as torch's.
    """
    op = "scaled_dot_product_attention"
    for name, tensor in (("query", query), ("key", key), ("value", value)):
        _check_tensor(op, name, tensor)
        if tensor.ndim < 2 or tensor.dtype.kind != "f":
            raise ValueError("%s: %s must be a float tensor [..., length, features], got shape %s and dtype %s"
                             % (op, name, tuple(tensor.shape), tensor.dtype))
    if not query.dtype == key.dtype == value.dtype:
        raise TypeError("%s: query, key and value must share a dtype, got %s, %s and %s"
                        % (op, query.dtype, key.dtype, value.dtype))
    if query.shape[-1] != key.shape[-1]:
        raise ValueError("%s: query [..., L, E] and key [..., S, E] must share E, got shapes %s and %s"
                         % (op, tuple(query.shape), tuple(key.shape)))
    if key.shape[-2] != value.shape[-2]:
        raise ValueError("%s: key [..., S, E] and value [..., S, Ev] must share S, got shapes %s and %s"
                         % (op, tuple(key.shape), tuple(value.shape)))
    try:
        batch = np.broadcast_shapes(tuple(query.shape[:-2]), tuple(key.shape[:-2]), tuple(value.shape[:-2]))
    except ValueError:
        raise ValueError("%s: the leading dimensions of query %s, key %s and value %s do not broadcast"
                         % (op, tuple(query.shape), tuple(key.shape), tuple(value.shape))) from None
    dropout_p = _check_probability(op, "dropout_p", dropout_p)
    length, source = query.shape[-2], key.shape[-2]
    scores_shape = tuple(batch) + (length, source)
    if is_causal:
        if attn_mask is not None:
            raise ValueError("%s: got both attn_mask and is_causal=True, expected one of them" % op)
        attn_mask = np.tril(np.ones((length, source), dtype=bool))
    additive = None
    if attn_mask is not None:
        _check_mask_shape(op, "attn_mask", attn_mask, scores_shape, "[..., L, S]")
        additive = _float_mask(op, "attn_mask", attn_mask, query.dtype, bool_means_keep=True)
    if scale is None:
        scale = 1.0 / np.sqrt(query.shape[-1])
    elif isinstance(scale, bool) or not isinstance(scale, (int, float, np.integer, np.floating)):
        raise TypeError("%s: got scale=%r, expected a number or None" % (op, scale))
    return _attend(query, key, value, additive, dropout_p, float(scale))[0]


__all__ += ["layer_norm", "scaled_dot_product_attention"]

# ---- layers (issue 14): channel and alpha dropout ----
_SELU_SATURATION = -1.7580993408473766  # -scale * alpha of SELU: where its output saturates


def channel_dropout(x, p=0.5, training=True, generator=None, spatial=2, name="dropout2d"):
    """Channel dropout, channels-last: x [N, *spatial, C] (or without N); in training each
    (sample, channel) pair is zeroed whole with probability p and the rest scaled by
    1 / (1 - p). ``spatial`` is the number of spatial dims (1: dropout1d, 2: dropout2d,
    3: dropout3d); ``name`` names the caller in errors."""
    _check_tensor(name, "x", x)
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
        raise ValueError("%s: p must be a probability in [0, 1], got %r" % (name, p))
    if x.ndim not in (spatial + 1, spatial + 2):
        raise ValueError("%s: expected channels-last input of %d dims [N, %s, C] (or %d without N), got shape %s"
                         % (name, spatial + 2, ", ".join(["S"] * spatial), spatial + 1, tuple(x.shape)))
    if not training or p == 0.0:
        return x
    if x.dtype.kind != "f":
        raise TypeError("%s: x must be a float tensor, got dtype %s" % (name, x.dtype))
    mask_shape = ((x.shape[0],) if x.ndim == spatial + 2 else ()) + (1,) * spatial + (x.shape[-1],)
    if p == 1.0:
        mask = np.zeros(mask_shape, dtype=x.dtype)
    else:
        rng = init.get_generator() if generator is None else generator
        keep = rng.random(mask_shape, dtype=np.float32 if x.dtype == np.float32 else np.float64) >= p
        mask = keep.astype(x.dtype)
        mask *= x.dtype.type(1.0 / (1.0 - p))
    return _Dropout.apply(x, mask)


def dropout1d(x, p=0.5, training=True, generator=None):
    """Channel dropout of [N, L, C] (or [L, C]); see :func:`channel_dropout`."""
    return channel_dropout(x, p, training, generator, 1, "dropout1d")


def dropout2d(x, p=0.5, training=True, generator=None):
    """Channel dropout of [N, H, W, C] (or [H, W, C]); see :func:`channel_dropout`."""
    return channel_dropout(x, p, training, generator, 2, "dropout2d")


def alpha_dropout(x, p=0.5, training=False, generator=None):
    """Alpha dropout (for SELU networks), torch's formula: a dropped element becomes SELU's
    saturation alpha' = -1.758..., then y = a * x' + b with a = ((1 - p)(1 + p alpha'^2))^-1/2
    and b = -a alpha' p, so zero mean and unit variance survive. The identity when not
    training (torch's default training=False for the function)."""
    _check_tensor("alpha_dropout", "x", x)
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
        raise ValueError("alpha_dropout: p must be a probability in [0, 1], got %r" % (p,))
    if not training or p == 0.0:
        return x
    if x.dtype.kind != "f":
        raise TypeError("alpha_dropout: x must be a float tensor, got dtype %s" % x.dtype)
    if p == 1.0:
        return x * Tensor(np.zeros(x.shape, dtype=x.dtype))  # torch: all zeros, gradient zero
    rng = init.get_generator() if generator is None else generator
    keep = rng.random(x.shape, dtype=np.float32 if x.dtype == np.float32 else np.float64) >= p
    a = (1.0 - p) * (1.0 + p * _SELU_SATURATION ** 2)
    a = a ** -0.5
    b = -a * _SELU_SATURATION * p
    mask = (keep * a).astype(x.dtype)
    offset = (np.where(keep, 0.0, a * _SELU_SATURATION) + b).astype(x.dtype)
    return _Dropout.apply(x, mask) + Tensor(offset)


__all__ += ["channel_dropout", "dropout1d", "dropout2d", "alpha_dropout"]

# ---- normalization (issue 14): torch.nn.functional's names and arguments, channels-last; the
# ops are declared once in autograd_core/ops/normalization.py and bound here, not wrapped.
# (layer_norm is another area's.)
_NORMALIZATION_OPS = ("batch_norm", "instance_norm", "group_norm", "local_response_norm")
for _name in _NORMALIZATION_OPS:
    globals()[_name] = getattr(autograd_core, _name)
__all__ += list(_NORMALIZATION_OPS)
