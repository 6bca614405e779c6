"""activation family (csrc/activation*.c): bias + ReLU as one pass over a layer's
output, and its backward, for the fused conv2d / linear ops and the ReLU op; and gelu
(exact and approximate='tanh') and silu, one pass forward and one backward each, for the
gelu and silu ops; elu and the binary cross-entropy with logits the same way, for the elu
op and nn's binary_cross_entropy_with_logits (the VAE's step).

Arrays are [rows, channels] in memory (any shape whose last dimension is the channels:
a conv output [n, h, w, c_out] is [n*h*w, c_out]). The ReLU's mask is kept as bits,
numpy's ``packbits(y > 0, bitorder='little')``: 1/32 of the float32 output the backward
would otherwise keep alive. The numpy reference sits next to each C path.

The ReLU rule, shared by the C loops and the reference: the forward is numpy's
``maximum(v, 0)`` (NaN passes through, as in PyTorch; -0.0 stays -0.0); the backward
passes the gradient where the output is > 0 and gives exactly 0 elsewhere, NaN inputs
included (a select, not a product: an inactive unit's NaN or inf gradient gives 0, as
PyTorch's threshold_backward does).
"""
import math

import numpy as np

from . import special
from .runtime import by_dtype, c_array, check_float, dispatch, ffi, pointers

_FORWARD = by_dtype("ag_bias_relu_forward_f32", "ag_bias_relu_forward_f64")
_BACKWARD = by_dtype("ag_relu_bias_backward_f32", "ag_relu_bias_backward_f64")
_GELU_FORWARD = by_dtype("ag_gelu_forward_f32", "ag_gelu_forward_f64")
_GELU_BACKWARD = by_dtype("ag_gelu_backward_f32", "ag_gelu_backward_f64")
_SILU_FORWARD = by_dtype("ag_silu_forward_f32", "ag_silu_forward_f64")
_SILU_BACKWARD = by_dtype("ag_silu_backward_f32", "ag_silu_backward_f64")
_ELU_FORWARD = by_dtype("ag_elu_forward_f32", "ag_elu_forward_f64")
_ELU_BACKWARD = by_dtype("ag_elu_backward_f32", "ag_elu_backward_f64")
_BCE_FORWARD = by_dtype("ag_bce_logits_forward_f32", "ag_bce_logits_forward_f64")
_BCE_BACKWARD = by_dtype("ag_bce_logits_backward_f32", "ag_bce_logits_backward_f64")


def mask_bytes(count):
    """Bytes of the bit mask of ``count`` elements."""
    return (count + 7) // 8


def _check(op, name, array, channels=None):
    if not isinstance(array, np.ndarray) or array.ndim < 1:
        raise TypeError("%s: got %s of type %s, expected a numpy.ndarray with at least one dimension"
                        % (op, name, type(array).__name__))
    if channels is not None and array.shape[-1] != channels:
        raise ValueError("%s: got %s of shape %s, expected its last dimension to be the %d channels"
                         % (op, name, array.shape, channels))


def _check_bias(op, bias, x):
    if bias is None:
        return
    if not isinstance(bias, np.ndarray) or bias.shape != (x.shape[-1],):
        raise ValueError("%s: got bias of shape %s, expected (%d,) (one per channel, the last dimension "
                         "of %s)" % (op, np.shape(bias), x.shape[-1], x.shape))
    check_float(op, x=x, bias=bias)


def _check_mask(op, mask, count):
    if not isinstance(mask, np.ndarray) or mask.dtype != np.uint8 or mask.shape != (mask_bytes(count),):
        raise ValueError("%s: got a mask %s, expected uint8 bits of shape (%d,) for %d elements"
                         % (op, getattr(mask, "shape", type(mask).__name__), mask_bytes(count), count))


# ---- forward -----------------------------------------------------------------------------

def bias_relu_forward(x, bias=None, relu=True, with_mask=True, out=None):
    """y = relu(x + bias) (or x + bias without relu), and the ReLU's bit mask.

    x: [..., channels] float; bias: [channels] or None; out: where y goes (may be x
    itself: in place; default a new array). Returns (y, mask): mask is uint8
    [ceil(x.size / 8)] when relu and with_mask, else None."""
    op = "bias_relu_forward"
    _check(op, "x", x)
    check_float(op, x=x)
    _check_bias(op, bias, x)
    if out is not None and (not isinstance(out, np.ndarray) or out.shape != x.shape or out.dtype != x.dtype
                            or not out.flags.c_contiguous or not out.flags.writeable):
        raise ValueError("bias_relu_forward: out must be a writeable C-contiguous %s array of shape %s"
                         % (x.dtype, x.shape))
    return dispatch(_forward_c, _forward_numpy, x, bias, bool(relu), bool(relu and with_mask), out)


def _forward_c(x, bias, relu, with_mask, out):
    x = c_array(x)
    y = np.empty_like(x) if out is None else out
    mask = np.empty(mask_bytes(x.size), dtype=np.uint8) if with_mask else None
    channels = x.shape[-1]
    rows = x.size // channels if channels else 0
    _FORWARD[x.dtype](rows, channels, *pointers(x, None if bias is None else c_array(bias)),
                      int(relu), *pointers(y), ffi.from_buffer("uint8_t[]", mask) if with_mask else ffi.NULL)
    return y, mask


def _forward_numpy(x, bias, relu, with_mask, out):
    """The reference: numpy's add and maximum, and packbits of y > 0."""
    if bias is not None:
        with np.errstate(invalid="ignore"):  # inf - inf is NaN, silently, as in C
            y = np.add(x, bias, out=out)
    elif out is not None:
        np.copyto(out, x)
        y = out
    else:
        y = x.copy()
    if relu:
        np.maximum(y, 0, out=y)
    mask = np.packbits((y > 0).ravel(), bitorder="little") if with_mask else None
    return y, mask


# ---- backward ----------------------------------------------------------------------------

def relu_bias_backward(grad, mask=None, with_bias=True):
    """The backward of bias_relu_forward: (grad_x, grad_bias).

    grad: [..., channels]; mask: the forward's bit mask, or None when there was no ReLU
    (then grad_x is grad itself). grad_x = grad where the ReLU's output was > 0, else
    0; grad_bias: [channels], the sums of grad_x over every dimension but the last, or
    None unless with_bias."""
    op = "relu_bias_backward"
    _check(op, "grad", grad)
    check_float(op, grad=grad)
    if mask is not None:
        _check_mask(op, mask, grad.size)
    if mask is None and not with_bias:
        return grad, None
    return dispatch(_backward_c, _backward_numpy, grad, mask, with_bias)


def _backward_c(grad, mask, with_bias):
    grad = c_array(grad)
    channels = grad.shape[-1]
    rows = grad.size // channels if channels else 0
    grad_x = np.empty_like(grad) if mask is not None else grad
    grad_bias = np.empty(channels, dtype=grad.dtype) if with_bias else None
    status = _BACKWARD[grad.dtype](
        rows, channels, *pointers(grad), ffi.from_buffer("uint8_t[]", mask) if mask is not None else ffi.NULL,
        *pointers(grad_x if mask is not None else None, grad_bias))
    if status != 0:
        raise MemoryError("relu_bias_backward: could not allocate the bias gradient's partial sums")
    return grad_x, grad_bias


def _backward_numpy(grad, mask, with_bias):
    """The reference: a select by the unpacked mask, then a sum over the leading axes."""
    grad_x = grad
    if mask is not None:
        active = np.unpackbits(mask, count=grad.size, bitorder="little").reshape(grad.shape).view(bool)
        grad_x = np.where(active, grad, grad.dtype.type(0))
    with np.errstate(invalid="ignore"):
        grad_bias = grad_x.reshape(-1, grad.shape[-1]).sum(axis=0) if with_bias else None
    return grad_x, grad_bias


# ---- gelu ----------------------------------------------------------------------------------
# One C pass each way instead of ~10 numpy passes and temporaries around the erfc kernel.
# float32 at the AVX2 / AVX-512 levels: the exact form computes in float lanes (16 per
# AVX-512 vector: csrc/activation_gelu_float_level.h), Phi from u Q(u) e^(-x^2/2) / 2 with
# x^2 split exactly so that e^(-x^2/2) keeps a small relative error in the left tail, and
# the backward reuses that exponential for phi(x); the tanh form computes in double lanes
# (csrc/activation_gelu_level.h). float64, and float32 at the portable level, use libm's
# erfc / exp in double. The reference below is the op's former numpy code: Phi through the
# special family's erfc (exact in the left tail), tanh by numpy.
# Accuracy of the exact form's float lanes against x Phi(x) in float64 of the same float32
# inputs, every 64th float32 in [-12, 12] (34 M inputs; tests/test_activation_kernels.py
# keeps a 48001-point sweep at 4 eps): forward within 3.1 eps relative (5.7 ulp) wherever
# gelu is a normal float, x = -12 (gelu ~ -1e-32) included; backward within 1.8e-7
# absolute (near its zero at x = -0.75 the cancellation Phi + x phi leaves no relative
# bound, PyTorch's float32 backward neither). PyTorch 2.13's float32 gelu, 1 + erf
# cancelling, is off by 1e-4 relative at x = -3, 12 % at -4.95, and gives 0 from x ~ -5.8.
# Measured on the 2-core development machine (AMD EPYC, AVX-512), float32 [768, 512],
# medians of 200 calls, builds alternated: the exact form forward 0.275 ms and backward
# 0.29 ms on one thread (double lanes: 0.84 and 1.15), 0.14 / 0.15-0.17 ms on two (0.42 /
# 0.57-0.66); at AVX2 0.45 / 0.49 ms on one thread (1.5 / 2.1). The tanh form 0.43 + 0.54
# ms (one thread); the former numpy code around the C erfc took 4.3 ms (exact) and 6.3 ms
# (tanh) in the same process, more in a training step where its ~10 temporaries of 1.5 MiB
# each are fresh pages.
_TANH_SCALE = math.sqrt(2.0 / math.pi)
_TANH_CUBIC = 0.044715
_GELU_FORMS = ("none", "tanh")


def _check_gelu(op, x, approximate, grad=None):
    if approximate not in _GELU_FORMS:
        raise ValueError("%s: got approximate=%r, expected 'none' or 'tanh'" % (op, approximate))
    if not isinstance(x, np.ndarray) or x.dtype.kind != "f":
        raise TypeError("%s: got x of type %s, expected a numpy.ndarray of a float dtype"
                        % (op, getattr(x, "dtype", type(x).__name__)))
    if grad is not None and (not isinstance(grad, np.ndarray) or grad.shape != x.shape or grad.dtype != x.dtype):
        raise ValueError("%s: got grad %s %s, expected the input's shape %s and dtype %s"
                         % (op, getattr(grad, "shape", type(grad).__name__), getattr(grad, "dtype", ""),
                            x.shape, x.dtype))


def gelu_forward(x, approximate="none"):
    """gelu of each element: x Phi(x) (approximate='none') or 0.5 x (1 + tanh(sqrt(2/pi)
    (x + 0.044715 x^3))) ('tanh'). x: float array, any shape -> a new array of its shape
    and dtype. float32 / float64 run in C; other float dtypes take the reference."""
    _check_gelu("gelu_forward", x, approximate)
    if x.dtype not in _GELU_FORWARD:
        return gelu_forward_reference(x, approximate)
    return dispatch(_gelu_forward_c, gelu_forward_reference, x, approximate)


def gelu_backward(x, grad, approximate="none"):
    """grad * gelu'(x), from the forward's input x: float arrays of one shape and dtype
    -> a new array of that shape and dtype."""
    _check_gelu("gelu_backward", x, approximate, grad)
    if x.dtype not in _GELU_BACKWARD:
        return gelu_backward_reference(x, grad, approximate)
    return dispatch(_gelu_backward_c, gelu_backward_reference, x, grad, approximate)


def _pointwise_c(table, arrays, *parameters):
    """One elementwise C pass of the gelu/silu/elu/cross-entropy kinds: table[dtype](n,
    *the arrays' pointers, *parameters, output pointer) over C-contiguous copies of
    arrays (one shape and dtype, checked by the caller); returns the new output."""
    arrays = [c_array(array) for array in arrays]
    first = arrays[0]
    out = np.empty(first.shape, dtype=first.dtype)
    table[first.dtype](first.size, *pointers(*arrays), *parameters, *pointers(out))
    return out


def _gelu_forward_c(x, approximate):
    return _pointwise_c(_GELU_FORWARD, (x,), int(approximate == "tanh"))


def _gelu_backward_c(x, grad, approximate):
    return _pointwise_c(_GELU_BACKWARD, (x, grad), int(approximate == "tanh"))


def _normal_cdf_reference(x):
    """P(N(0, 1) <= x) = erfc(-x / sqrt 2) / 2 in x's dtype (accurate in the far left tail)."""
    return (0.5 * special.erfc(-x * math.sqrt(0.5))).astype(x.dtype, copy=False)


def gelu_forward_reference(x, approximate="none"):
    """The reference gelu: numpy around the special family's erfc."""
    if approximate == "none":
        return x * _normal_cdf_reference(x)
    return 0.5 * x * (1.0 + np.tanh(_TANH_SCALE * (x + _TANH_CUBIC * x * x * x)))


def gelu_slope(xp, x, saved, approximate):
    """gelu'(x), one formula for numpy arrays (xp = np) and Tensors (the op's graph form);
    saved is Phi(x) for the exact form, tanh of the inner polynomial for the tanh form."""
    if approximate == "none":  # Phi(x) + x phi(x)
        density = xp.exp(-0.5 * x * x) * (1.0 / math.sqrt(2.0 * math.pi))
        return saved + x * density
    inner_slope = _TANH_SCALE * (1.0 + 3.0 * _TANH_CUBIC * x * x)
    return 0.5 * (1.0 + saved) + 0.5 * x * (1.0 - saved * saved) * inner_slope


def gelu_backward_reference(x, grad, approximate="none"):
    """The reference gelu backward: grad * gelu_slope, the saved factor recomputed."""
    if approximate == "none":
        saved = _normal_cdf_reference(x)
    else:
        saved = np.tanh(_TANH_SCALE * (x + _TANH_CUBIC * x * x * x))
    return grad * gelu_slope(np, x, saved, approximate)


# ---- silu ----------------------------------------------------------------------------------
# The same pass (csrc/activation_gelu_level.h) with sigmoid = 1 / (1 + e^(-x)) in double
# lanes; the reference is the op's former numpy code (the stable sigmoid of elementwise.py).

def silu_forward(x):
    """x * sigmoid(x) of each element: float array, any shape -> a new array of its shape
    and dtype. float32 / float64 run in C; other float dtypes take the reference."""
    _check_gelu("silu_forward", x, "none")
    if x.dtype not in _SILU_FORWARD:
        return silu_forward_reference(x)
    return dispatch(_silu_forward_c, silu_forward_reference, x)


def silu_backward(x, grad):
    """grad * silu'(x) = grad * sigmoid(x) (1 + x (1 - sigmoid(x))), from the forward's
    input x: float arrays of one shape and dtype -> a new array of that shape and dtype."""
    _check_gelu("silu_backward", x, "none", grad)
    if x.dtype not in _SILU_BACKWARD:
        return silu_backward_reference(x, grad)
    return dispatch(_silu_backward_c, silu_backward_reference, x, grad)


def _silu_forward_c(x):
    return _pointwise_c(_SILU_FORWARD, (x,))


def _silu_backward_c(x, grad):
    return _pointwise_c(_SILU_BACKWARD, (x, grad))


def _sigmoid_reference(x):
    # exp of a non-positive number only, so it never overflows
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


def silu_forward_reference(x):
    """The reference silu: x times numpy's stable sigmoid."""
    return x * _sigmoid_reference(x)


def silu_backward_reference(x, grad):
    """The reference silu backward: grad * sigmoid (1 + x (1 - sigmoid))."""
    sigmoid = _sigmoid_reference(x)
    return grad * (sigmoid * (1.0 + x * (1.0 - sigmoid)))


# ---- elu and the binary cross-entropy with logits --------------------------------------------
# The same pass (csrc/activation_exp_level.h: double lanes, exp and sigmoid shared with silu,
# expm1 and log1p without cancellation); the references are the ops' former numpy code.
# Measured on the 2-core AMD EPYC (AVX-512), float32, one thread, PyTorch 2.13 alternating in
# the same process: elu forward + backward of [128, 512] 487 -> 164 us (PyTorch 166), forward
# of [500, 512] 1147 -> 302 us (345); the cross-entropy forward + backward of [128, 784]
# 738 -> 322 us (304). The numpy passes were single-threaded; these split from 32 Ki on.

def _check_pair(op, x, other, other_name):
    if not isinstance(x, np.ndarray) or x.dtype.kind != "f":
        raise TypeError("%s: got x of type %s, expected a numpy.ndarray of a float dtype"
                        % (op, getattr(x, "dtype", type(x).__name__)))
    if other is not None and (not isinstance(other, np.ndarray) or other.shape != x.shape
                              or other.dtype != x.dtype):
        raise ValueError("%s: got %s %s %s, expected the input's shape %s and dtype %s"
                         % (op, other_name, getattr(other, "shape", type(other).__name__),
                            getattr(other, "dtype", ""), x.shape, x.dtype))


def elu_forward(x, alpha=1.0):
    """x where x > 0, alpha * expm1(x) elsewhere. x: float array, any shape -> a new array of
    its shape and dtype. float32 / float64 run in C; other float dtypes take the reference."""
    _check_pair("elu_forward", x, None, "")
    if x.dtype not in _ELU_FORWARD:
        return elu_forward_reference(x, alpha)
    return dispatch(_elu_forward_c, elu_forward_reference, x, alpha)


def elu_backward(x, grad, alpha=1.0):
    """grad * elu'(x) = grad where x > 0, grad * alpha * exp(x) elsewhere, from the
    forward's input x: float arrays of one shape and dtype -> a new array of that shape."""
    _check_pair("elu_backward", x, grad, "grad")
    if x.dtype not in _ELU_BACKWARD:
        return elu_backward_reference(x, grad, alpha)
    return dispatch(_elu_backward_c, elu_backward_reference, x, grad, alpha)


def _elu_forward_c(x, alpha):
    return _pointwise_c(_ELU_FORWARD, (x,), float(alpha))


def _elu_backward_c(x, grad, alpha):
    return _pointwise_c(_ELU_BACKWARD, (x, grad), float(alpha))


def elu_forward_reference(x, alpha=1.0):
    """The reference elu: numpy's expm1 on the non-positive side."""
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))


def elu_backward_reference(x, grad, alpha=1.0):
    """The reference elu backward: grad * (alpha * expm1(x) + alpha) on the non-positive side."""
    return np.where(x > 0, grad, grad * (alpha * np.expm1(np.minimum(x, 0)) + alpha))


def bce_logits_forward(logits, target):
    """The per-element binary cross-entropy of sigmoid(logits) against target:
    max(x, 0) - x * target + log1p(exp(-|x|)). Float arrays of one shape and dtype -> a
    new array of that shape (reduce it as the loss asks)."""
    _check_pair("bce_logits_forward", logits, target, "target")
    if logits.dtype not in _BCE_FORWARD:
        return bce_logits_forward_reference(logits, target)
    return dispatch(_bce_forward_c, bce_logits_forward_reference, logits, target)


def bce_logits_backward(logits, target, scale):
    """scale * (sigmoid(logits) - target), the gradient of the summed cross-entropy times
    scale (a float: the output gradient, over the count for 'mean')."""
    _check_pair("bce_logits_backward", logits, target, "target")
    if logits.dtype not in _BCE_BACKWARD:
        return bce_logits_backward_reference(logits, target, scale)
    return dispatch(_bce_backward_c, bce_logits_backward_reference, logits, target, scale)


def _bce_forward_c(logits, target):
    return _pointwise_c(_BCE_FORWARD, (logits, target))


def _bce_backward_c(logits, target, scale):
    return _pointwise_c(_BCE_BACKWARD, (logits, target), float(scale))


def bce_logits_forward_reference(logits, target):
    """The reference cross-entropy: numpy, stable for either sign of the logits."""
    return np.maximum(logits, 0) - logits * target + np.log1p(np.exp(-np.abs(logits)))


def bce_logits_backward_reference(logits, target, scale):
    """The reference gradient: numpy's stable sigmoid (exp of a non-positive number only)."""
    return ((_sigmoid_reference(logits) - target) * scale).astype(logits.dtype, copy=False)
