"""Loss functions, each one fused Function (forward and backward side by side).

``nn.functional`` re-exports them; their Module forms (CrossEntropyLoss, BCEWithLogitsLoss,
MSELoss, GaussianKLLoss) are layers (``layers.py``) that call them. This file imports no
Module, so ``functional`` stays below the Modules as in PyTorch.

Fusing matters twice: it avoids a graph of half a dozen elementwise nodes per loss, and
it keeps the numerically stable forms (log-sum-exp, log1p(exp(-|x|))) whose gradients
are simple and exact (softmax - target, sigmoid - target).

``reduction`` is 'mean' (default), 'sum' or 'none' for all of them.
"""
import numpy as np

from autograd_core import Function, Tensor


__all__ = ["cross_entropy", "binary_cross_entropy_with_logits", "mse_loss", "gaussian_kl"]

_REDUCTIONS = ("mean", "sum", "none")


def _array(value):
    return value.data if isinstance(value, Tensor) else np.asarray(value)


def _check_reduction(op, reduction):
    if reduction not in _REDUCTIONS:
        raise ValueError("%s: reduction must be one of %s, got %r" % (op, _REDUCTIONS, reduction))


def _check_float(op, name, array):
    if array.dtype.kind != "f":
        raise TypeError("%s: %s must be a float tensor, got dtype %s" % (op, name, array.dtype))


def _reduce(losses, reduction, count):
    """Reduce per-item losses; ``count`` is the divisor of 'mean'."""
    if reduction == "none":
        return losses
    total = losses.sum(dtype=losses.dtype)
    return np.asarray(total / count if reduction == "mean" else total, dtype=losses.dtype)


def _grad_scale(grad_output, reduction, count, dtype):
    """d(reduced)/d(per-item loss), shaped to broadcast against the per-item losses."""
    grad_output = np.asarray(grad_output, dtype=dtype)
    if reduction == "none":
        return grad_output
    return grad_output / count if reduction == "mean" else grad_output


def _target_as(target, dtype):
    """A float target in the input's dtype; Tensors that need a gradient go through
    the Function as Tensors, everything else as a numpy array."""
    if isinstance(target, Tensor):
        return target
    return np.asarray(target, dtype=dtype)


# ---- cross entropy -------------------------------------------------------------------
class _CrossEntropy(Function):
    """-sum_c target_c * log_softmax(logits)_c per row, fused.

    Labels [N] or probabilities [N, C]; backward is (softmax - target) * grad.
    """

    @staticmethod
    def forward(ctx, logits, target, reduction):
        count = logits.shape[0]
        shifted = logits - logits.max(axis=1, keepdims=True)
        exp = np.exp(shifted)
        sum_exp = exp.sum(axis=1, keepdims=True)
        log_probs = shifted - np.log(sum_exp)
        if target.ndim == 1:  # class labels
            losses = -log_probs[np.arange(count), target]
        else:
            losses = -(target * log_probs).sum(axis=1)
        ctx.reduction = reduction
        ctx.save_for_backward(exp / sum_exp, log_probs, target)
        return _reduce(losses, reduction, count)

    @staticmethod
    def backward(ctx, grad_output):
        probs, log_probs, target = ctx.saved_tensors
        count = probs.shape[0]
        scale = _grad_scale(grad_output, ctx.reduction, count, probs.dtype)
        scale = scale[:, None] if scale.ndim == 1 else scale
        grad_logits = grad_target = None
        if ctx.needs_input_grad[0]:
            if target.ndim == 1:
                grad_logits = probs.copy()
                grad_logits[np.arange(count), target] -= 1
            else:
                # d/dlogits of -sum_c t_c log p_c is p * sum_c t_c - t, which is p - t for
                # targets that sum to one and stays exact for those that do not
                grad_logits = probs * target.sum(axis=1, keepdims=True) - target
            grad_logits *= scale
        if ctx.needs_input_grad[1]:
            grad_target = -log_probs * scale
        return grad_logits, grad_target, None


def cross_entropy(logits, target, reduction="mean"):
    """Softmax cross-entropy of ``logits`` [N, C] against ``target``.

    ``target`` is either integer class labels [N] with values in [0, C), or class
    probabilities (e.g. one-hot) [N, C]. Returns the mean over N ('mean'), the sum
    ('sum') or the per-sample losses [N] ('none').
    """
    op = "cross_entropy"
    _check_reduction(op, reduction)
    if not isinstance(logits, Tensor):
        raise TypeError("%s: logits must be a Tensor, got %s" % (op, type(logits).__name__))
    scores = logits.data
    _check_float(op, "logits", scores)
    if scores.ndim != 2:
        raise ValueError("%s: logits must have shape [N, C], got shape %s" % (op, scores.shape))
    count, classes = scores.shape
    target_array = _array(target)
    if target_array.ndim == 1:
        if target_array.dtype.kind not in "iu":
            raise TypeError("%s: 1-D target must hold integer class labels, got dtype %s (for class "
                            "probabilities pass shape [N, C])" % (op, target_array.dtype))
        if target_array.shape[0] != count:
            raise ValueError("%s: logits have shape %s but labels have shape %s; expected [%d]"
                             % (op, scores.shape, target_array.shape, count))
        if count and (target_array.min() < 0 or target_array.max() >= classes):
            bad = target_array[(target_array < 0) | (target_array >= classes)][0]
            raise ValueError("%s: label %d out of range for %d classes (expected 0 <= label < %d)"
                             % (op, bad, classes, classes))
        target = target_array.astype(np.int64, copy=False)
    elif target_array.ndim == 2:
        if target_array.shape != scores.shape:
            raise ValueError("%s: logits have shape %s but target probabilities have shape %s; "
                             "expected the same shape" % (op, scores.shape, target_array.shape))
        if isinstance(target, Tensor) and target.requires_grad:
            if target_array.dtype != scores.dtype:
                raise TypeError("%s: target requires grad and has dtype %s but logits have dtype %s"
                                % (op, target_array.dtype, scores.dtype))
        else:
            target = target_array.astype(scores.dtype, copy=False)
    else:
        raise ValueError("%s: target must be labels [N] or probabilities [N, C], got shape %s"
                         % (op, target_array.shape))
    return _CrossEntropy.apply(logits, target, reduction)


# ---- binary cross entropy ------------------------------------------------------------
class _BinaryCrossEntropyWithLogits(Function):
    """max(x, 0) - x * y + log1p(exp(-|x|)); backward (sigmoid(x) - y, -x)."""

    @staticmethod
    def forward(ctx, logits, target, reduction):
        losses = np.maximum(logits, 0) - logits * target + np.log1p(np.exp(-np.abs(logits)))
        ctx.reduction = reduction
        ctx.save_for_backward(logits, target)
        return _reduce(losses, reduction, logits.size)

    @staticmethod
    def backward(ctx, grad_output):
        logits, target = ctx.saved_tensors
        scale = _grad_scale(grad_output, ctx.reduction, logits.size, logits.dtype)
        grad_logits = grad_target = None
        if ctx.needs_input_grad[0]:
            # sigmoid without overflow: exp of a non-positive number only
            exp = np.exp(-np.abs(logits))
            sigmoid = np.where(logits >= 0, 1 / (1 + exp), exp / (1 + exp))
            grad_logits = (sigmoid - target) * scale
        if ctx.needs_input_grad[1]:
            grad_target = -logits * scale
        return grad_logits, grad_target, None


def _check_pair(op, input, target, input_name="input"):
    if not isinstance(input, Tensor):
        raise TypeError("%s: %s must be a Tensor, got %s" % (op, input_name, type(input).__name__))
    _check_float(op, input_name, input.data)
    target_array = _array(target)
    if target_array.shape != input.shape:
        raise ValueError("%s: %s has shape %s but target has shape %s; expected the same shape"
                         % (op, input_name, input.shape, target_array.shape))
    if isinstance(target, Tensor) and target.requires_grad and target.dtype != input.dtype:
        raise TypeError("%s: target requires grad and has dtype %s but %s has dtype %s"
                        % (op, target.dtype, input_name, input.dtype))
    if isinstance(target, Tensor) and target.requires_grad:
        return target
    return target_array.astype(input.dtype, copy=False)


def binary_cross_entropy_with_logits(logits, target, reduction="mean"):
    """Sigmoid + binary cross-entropy, stable for any logit size.

    ``logits`` and ``target`` (probabilities in [0, 1]) have the same shape, any shape;
    'mean' averages over all elements.
    """
    op = "binary_cross_entropy_with_logits"
    _check_reduction(op, reduction)
    target = _check_pair(op, logits, target, "logits")
    return _BinaryCrossEntropyWithLogits.apply(logits, target, reduction)


# ---- mean squared error ---------------------------------------------------------------
class _MSELoss(Function):
    @staticmethod
    def forward(ctx, input, target, reduction):
        difference = input - target
        ctx.reduction = reduction
        ctx.save_for_backward(difference)
        return _reduce(difference * difference, reduction, difference.size)

    @staticmethod
    def backward(ctx, grad_output):
        (difference,) = ctx.saved_tensors
        scale = _grad_scale(grad_output, ctx.reduction, difference.size, difference.dtype)
        grad_input = 2 * difference * scale
        grad_target = -grad_input if ctx.needs_input_grad[1] else None
        return (grad_input if ctx.needs_input_grad[0] else None), grad_target, None


def mse_loss(input, target, reduction="mean"):
    """(input - target)**2, same shapes (any); 'mean' averages over all elements."""
    op = "mse_loss"
    _check_reduction(op, reduction)
    target = _check_pair(op, input, target)
    return _MSELoss.apply(input, target, reduction)


# ---- Gaussian KL divergence -----------------------------------------------------------
class _GaussianKL(Function):
    @staticmethod
    def forward(ctx, mean, logvar, reduction):
        exp_logvar = np.exp(logvar)
        per_element = 1 + logvar - mean * mean - exp_logvar
        losses = -0.5 * per_element.reshape(mean.shape[0], -1).sum(axis=1)
        ctx.reduction = reduction
        ctx.save_for_backward(mean, exp_logvar)
        return _reduce(losses.astype(mean.dtype, copy=False), reduction, mean.shape[0])

    @staticmethod
    def backward(ctx, grad_output):
        mean, exp_logvar = ctx.saved_tensors
        scale = _grad_scale(grad_output, ctx.reduction, mean.shape[0], mean.dtype)
        if scale.ndim == 1:  # one per sample: broadcast over the feature dimensions
            scale = scale.reshape((-1,) + (1,) * (mean.ndim - 1))
        grad_mean = mean * scale if ctx.needs_input_grad[0] else None
        grad_logvar = 0.5 * (exp_logvar - 1) * scale if ctx.needs_input_grad[1] else None
        return grad_mean, grad_logvar, None


def gaussian_kl(mu, logvar, reduction="mean"):
    """KL(N(mu, exp(logvar)) || N(0, 1)) per sample:
    -0.5 * sum over features of (1 + logvar - mu**2 - exp(logvar)).

    ``mu`` and ``logvar``: [N, ...] of the same shape. 'none' gives [N], 'sum' the total,
    'mean' the average over the N samples (not over features).
    """
    op = "gaussian_kl"
    _check_reduction(op, reduction)
    for name, value in (("mu", mu), ("logvar", logvar)):
        if not isinstance(value, Tensor):
            raise TypeError("%s: %s must be a Tensor, got %s" % (op, name, type(value).__name__))
        _check_float(op, name, value.data)
    if mu.shape != logvar.shape or mu.ndim < 1:
        raise ValueError("%s: mu has shape %s and logvar %s; expected the same shape [N, ...]"
                         % (op, mu.shape, logvar.shape))
    if mu.dtype != logvar.dtype:
        raise TypeError("%s: mu has dtype %s but logvar has dtype %s" % (op, mu.dtype, logvar.dtype))
    return _GaussianKL.apply(mu, logvar, reduction)
