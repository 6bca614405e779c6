"""Loss functions, each one fused Function (forward and backward side by side).

``nn.functional`` re-exports them; their Module forms (CrossEntropyLoss, BCEWithLogitsLoss,
MSELoss, GaussianKLLoss) are layers (``layers.py``) that call them. This file imports no
Module, so ``functional`` stays below the Modules as in PyTorch.

Fusing matters twice: it avoids a graph of half a dozen elementwise nodes per loss, and
it keeps the numerically stable forms (log-sum-exp, log1p(exp(-|x|))) whose gradients
are simple and exact (softmax - target, sigmoid - target).

``reduction`` is 'mean' (default), 'sum' or 'none' for all of them.

Higher-order gradients (a gradient penalty through a loss, a Hessian): each fused
Function has a ``composite``, the same loss written with autograd_core ops, which the
engine differentiates only when create_graph=True; the first-order path stays fused.
"""
import numpy as np

import autograd_core as ag
from autograd_core import Function, Tensor
from autograd_core.kernels import activation as _activation_kernels


__all__ = ["cross_entropy", "binary_cross_entropy_with_logits", "mse_loss", "gaussian_kl",
           "nll_loss", "binary_cross_entropy", "l1_loss", "smooth_l1_loss", "huber_loss", "kl_div",
           "poisson_nll_loss", "cosine_embedding_loss", "margin_ranking_loss", "triplet_margin_loss",
           "hinge_embedding_loss", "multilabel_soft_margin_loss"]

_REDUCTIONS = ("mean", "sum", "none")


def _array(value):
    return value.data if isinstance(value, Tensor) else np.asarray(value)


def _constant(op, name, value):
    """A weight argument's values; one that requires grad is an error, as in torch (these
    losses have no gradient with respect to their weights, and giving none silently
    would be a wrong answer)."""
    if isinstance(value, Tensor) and value.requires_grad:
        raise RuntimeError("%s: the loss is not differentiable with respect to %s, which requires grad; pass "
                           "%s.detach() (as torch, which refuses it too)" % (op, name, name))
    return _array(value)


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


def _reduce_graph(losses, reduction, count):
    """_reduce on Tensors (for the composites)."""
    if reduction == "none":
        return losses
    total = losses.sum()
    return total / count if reduction == "mean" else total


def _graph_log_softmax(scores):
    """log_softmax over the last axis with ops; the shift by the row maximum is a
    constant (the result does not depend on it)."""
    shifted = scores - Tensor(scores.data.max(axis=-1, keepdims=True))
    return shifted - ag.log(ag.exp(shifted).sum(axis=-1, keepdims=True))


def _graph_operand(value, dtype):
    """A Function argument in a composite: Tensors stay, arrays become constants."""
    return value if isinstance(value, Tensor) else Tensor(np.asarray(value, dtype=dtype))


def _target_as(target, dtype):
    """A float target in the input's dtype; Tensors that need a gradient go through
    the Function as Tensors, everything else as a numpy array."""
    if isinstance(target, Tensor):
        return target
    return np.asarray(target, dtype=dtype)


# ---- cross entropy ------------------------------------------------------------------
class _CrossEntropy(Function):
    """-sum_c t_c * log_softmax(logits)_c per row, fused; logits [..., C] are read as rows
    of C. The target is labels [...] (the plain case: t one-hot) or dense [..., C] targets,
    t = (target * (1 - smoothing) + smoothing / C) * class_weight; the wrapper turns labels
    with weights, ignored entries or smoothing into such dense targets. Backward is
    (softmax * sum_c t_c - t) * grad, which is softmax - t for targets that sum to one.
    ``divisor`` is what 'mean' divides by (rows, or the summed label weights).
    """

    @staticmethod
    def forward(ctx, logits, target, reduction, smoothing, class_weight, divisor):
        classes = logits.shape[-1]
        scores = logits if logits.ndim == 2 else logits.reshape(-1, classes)
        count = scores.shape[0] if divisor is None else divisor
        top = scores.max(axis=1, keepdims=True)
        exp = np.exp(scores - top)
        # einsum's row sums: several times faster than sum(axis=1) over short rows (GPT's 65 classes)
        sum_exp = np.einsum("ij->i", exp)[:, None]
        if target.dtype.kind in "iu":  # class labels: only each row's picked logit is needed
            effective = target if target.ndim == 1 else target.reshape(-1)
            losses = (np.log(sum_exp[:, 0]) + top[:, 0]) - scores[np.arange(scores.shape[0]), effective]
            log_probs = None  # labels take no gradient
        else:
            log_probs = (scores - top) - np.log(sum_exp)
            effective = target.reshape(scores.shape)
            if smoothing:
                effective = effective * (1 - smoothing) + smoothing / classes
            if class_weight is not None:
                effective = effective * class_weight
            losses = -(effective * log_probs).sum(axis=1)
        exp *= 1 / sum_exp  # the softmax, in place
        ctx.reduction, ctx.count, ctx.smoothing, ctx.class_weight = reduction, count, smoothing, class_weight
        ctx.shape = logits.shape
        ctx.save_for_backward(exp, log_probs, effective)
        if logits.ndim != 2:
            losses = losses.reshape(logits.shape[:-1])
        return _reduce(losses, reduction, count)

    @staticmethod
    def backward(ctx, grad_output):
        probs, log_probs, effective = ctx.saved_tensors
        scale = _grad_scale(grad_output, ctx.reduction, ctx.count, probs.dtype)
        scale = scale.reshape(-1, 1) if scale.ndim else scale
        grad_logits = grad_target = None
        if ctx.needs_input_grad[0]:
            if effective.ndim == 1:
                grad_logits = probs.copy()
                grad_logits[np.arange(probs.shape[0]), effective] -= 1
            else:
                # d/dlogits of -sum_c t_c log p_c is p * sum_c t_c - t, which is p - t for
                # targets that sum to one and stays exact for those that do not
                grad_logits = probs * effective.sum(axis=1, keepdims=True) - effective
            grad_logits *= scale
            if len(ctx.shape) != 2:
                grad_logits = grad_logits.reshape(ctx.shape)
        if ctx.needs_input_grad[1]:
            grad_target = -log_probs * scale * (1 - ctx.smoothing)
            if ctx.class_weight is not None:
                grad_target = grad_target * ctx.class_weight
            grad_target = grad_target.reshape(ctx.shape)
        return grad_logits, grad_target, None, None, None, None

    @staticmethod
    def composite(logits, target, reduction, smoothing, class_weight, divisor):
        """forward with ops, for create_graph."""
        classes = logits.shape[-1]
        scores = logits.reshape(-1, classes)
        count = scores.shape[0] if divisor is None else divisor
        log_probs = _graph_log_softmax(scores)
        target_values = target.data if isinstance(target, Tensor) else np.asarray(target)
        if target_values.dtype.kind in "iu":  # labels: a one-hot constant picks each row's term
            picked = np.zeros(scores.shape, dtype=scores.dtype)
            picked[np.arange(scores.shape[0]), target_values.reshape(-1)] = 1
            losses = -(log_probs * Tensor(picked)).sum(axis=1)
        else:
            effective = _graph_operand(target, scores.dtype).reshape(scores.shape)
            if smoothing:
                effective = effective * (1 - smoothing) + smoothing / classes
            if class_weight is not None:
                effective = effective * Tensor(class_weight)
            losses = -(effective * log_probs).sum(axis=1)
        if logits.ndim != 2:
            losses = losses.reshape(logits.shape[:-1])
        return _reduce_graph(losses, reduction, count)


def _check_class_weight(op, weight, classes, dtype):
    if weight is None:
        return None
    weight = _constant(op, "weight", weight)
    if weight.shape != (classes,):
        raise ValueError("%s: weight must have shape [C] = (%d,) (one per class), got shape %s"
                         % (op, classes, weight.shape))
    return weight.astype(dtype, copy=False)


def _check_labels(op, input_name, scores, target_array, ignore_index):
    """Labels of the right shape, in [0, C) unless equal to ignore_index; returns (int64
    labels, mask of the ignored ones or None)."""
    classes = scores.shape[-1]
    if target_array.dtype.kind not in "iu":
        raise TypeError("%s: labels must be integer class labels, got dtype %s (for class "
                        "probabilities pass the shape of %s)" % (op, target_array.dtype, input_name))
    if target_array.shape != scores.shape[:-1]:
        raise ValueError("%s: %s %s shape %s but labels have shape %s; expected %s (classes are "
                         "the last dimension of %s)" % (op, input_name, "have" if input_name == "logits" else "has",
                                                        scores.shape, target_array.shape, scores.shape[:-1], input_name))
    ignored = None
    # the default ignore_index (-100) is out of range: only then look for it
    out_of_range = bool(target_array.size) and (target_array.min() < 0 or target_array.max() >= classes)
    if out_of_range or 0 <= ignore_index < classes:
        ignored = target_array == ignore_index
        if out_of_range:
            bad = ((target_array < 0) | (target_array >= classes)) & ~ignored
            if bad.any():
                raise ValueError("%s: label %d out of range for %d classes (expected 0 <= label < %d, or "
                                 "ignore_index=%d)" % (op, target_array[bad][0], classes, classes, ignore_index))
        if not ignored.any():
            ignored = None
    return target_array.astype(np.int64, copy=False), ignored


def cross_entropy(logits, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """Softmax cross-entropy of ``logits`` [..., C] against ``target`` (torch.nn.functional.
    cross_entropy).

    Classes are the LAST dimension, as everywhere in this library's channels-last layout:
    logits [N, C], [C], or [N, d1, ..., C] where torch takes [N, C, d1, ...] (torch's
    ``input.movedim(1, -1)`` is ours). ``target`` is integer class labels of logits'
    shape without the class dimension ([N] or [N, d1, ...]), or class probabilities of
    logits' shape. ``weight`` [C] scales each class's loss; labels equal to
    ``ignore_index`` add nothing (and are not counted by 'mean'); ``label_smoothing`` in
    [0, 1] mixes the target with the uniform distribution. 'mean' divides by the summed
    weights of the counted labels (by the number of rows for probabilities), 'sum' adds,
    'none' returns the per-row losses of logits' shape without the class dimension.
    The plain case (labels, no weight, nothing ignored, no smoothing) is one fused op
    without dense targets.
    """
    op = "cross_entropy"
    if isinstance(weight, str):  # the earlier positional reduction: cross_entropy(x, y, 'sum')
        weight, reduction = None, weight
    _check_reduction(op, reduction)
    if not isinstance(logits, Tensor):
        raise TypeError("%s: logits must be a Tensor, got %s" % (op, type(logits).__name__))
    scores = logits.data
    _check_float(op, "logits", scores)
    if scores.ndim < 1:
        raise ValueError("%s: logits must have shape [N, C], [C] or [N, d1, ..., C], got shape %s"
                         % (op, scores.shape))
    if label_smoothing and (isinstance(label_smoothing, bool) or not 0.0 <= label_smoothing <= 1.0):
        raise ValueError("%s: label_smoothing must be in [0, 1], got %r" % (op, label_smoothing))
    classes = scores.shape[-1]
    class_weight = None if weight is None else _check_class_weight(op, weight, classes, scores.dtype)
    target_array = _array(target)
    if target_array.shape == scores.shape:  # probabilities (labels lack the class dimension)
        if isinstance(target, Tensor) and target.requires_grad:
            if target_array.dtype != scores.dtype:
                raise TypeError("%s: target requires grad and has dtype %s but logits have dtype %s"
                                % (op, target_array.dtype, scores.dtype))
        else:
            target = target_array.astype(scores.dtype, copy=False)
        return _CrossEntropy.apply(logits, target, reduction, float(label_smoothing), class_weight, None)
    if target_array.dtype.kind == "f" and target_array.ndim == scores.ndim:
        raise ValueError("%s: logits have shape %s but target probabilities have shape %s; "
                         "expected the same shape" % (op, scores.shape, target_array.shape))
    labels, ignored = _check_labels(op, "logits", scores, target_array, ignore_index)
    if class_weight is None and ignored is None and not label_smoothing:
        return _CrossEntropy.apply(logits, labels, reduction, 0.0, None, None)
    # the general label case: a dense target t per row, zero on ignored rows, whose
    # 'mean' divisor is the summed weight of the counted labels (torch's convention)
    flat = labels.reshape(-1)
    rows = np.arange(flat.size)
    kept = np.ones(flat.size, dtype=bool) if ignored is None else ~ignored.reshape(-1)
    safe = np.where(kept, flat, 0)
    label_weight = np.ones(flat.size, dtype=scores.dtype) if class_weight is None else class_weight[safe]
    label_weight = label_weight * kept
    dense = np.zeros((flat.size, classes), dtype=scores.dtype)
    dense[rows, safe] = label_weight * (1 - label_smoothing)
    if label_smoothing:
        uniform = (np.ones(classes, dtype=scores.dtype) if class_weight is None else class_weight)
        dense += (label_smoothing / classes) * uniform * kept[:, None]
    divisor = label_weight.sum(dtype=scores.dtype)
    return _CrossEntropy.apply(logits, dense.reshape(scores.shape), reduction, 0.0, None, divisor)


# ---- binary cross entropy ------------------------------------------------------------
class _BinaryCrossEntropyWithLogits(Function):
    """max(x, 0) - x * y + log1p(exp(-|x|)); backward (sigmoid(x) - y, -x).

    With ``pos_weight`` p (broadcast over the last dimension) the positive term is scaled:
    (1 - y) x + (1 + (p - 1) y) softplus(-x); ``weight`` scales each element's loss.
    """

    @staticmethod
    def forward(ctx, logits, target, reduction, weight, pos_weight):
        if pos_weight is None and target.shape == logits.shape and target.dtype == logits.dtype:
            # one C pass (kernels/activation.py), its reference the numpy line below
            losses = _activation_kernels.bce_logits_forward(logits, target)
        elif pos_weight is None:
            losses = np.maximum(logits, 0) - logits * target + np.log1p(np.exp(-np.abs(logits)))
        else:
            softplus_negative = np.log1p(np.exp(-np.abs(logits))) + np.maximum(-logits, 0)
            losses = (1 - target) * logits + (1 + (pos_weight - 1) * target) * softplus_negative
        if weight is not None:
            losses = losses * weight
        ctx.reduction, ctx.weight, ctx.pos_weight = reduction, weight, pos_weight
        ctx.save_for_backward(logits, target, None if pos_weight is None else softplus_negative)
        return _reduce(losses, reduction, logits.size)

    @staticmethod
    def backward(ctx, grad_output):
        logits, target, softplus_negative = ctx.saved_tensors
        scale = _grad_scale(grad_output, ctx.reduction, logits.size, logits.dtype)
        if ctx.weight is not None:
            scale = scale * ctx.weight
        grad_logits = grad_target = None
        if (ctx.needs_input_grad[0] and ctx.pos_weight is None and scale.ndim == 0
                and target.shape == logits.shape and target.dtype == logits.dtype):
            # one C pass: scale * (sigmoid(x) - target)
            grad_logits = _activation_kernels.bce_logits_backward(logits, target, float(scale))
        elif ctx.needs_input_grad[0]:
            # sigmoid without overflow: exp of a non-positive number only
            exp = np.exp(-np.abs(logits))
            sigmoid = np.where(logits >= 0, 1 / (1 + exp), exp / (1 + exp))
            if ctx.pos_weight is None:
                grad_logits = (sigmoid - target) * scale
            else:
                grad_logits = ((1 - target) - (1 + (ctx.pos_weight - 1) * target) * (1 - sigmoid)) * scale
        if ctx.needs_input_grad[1]:
            if ctx.pos_weight is None:
                grad_target = -logits * scale
            else:
                grad_target = (-logits + (ctx.pos_weight - 1) * softplus_negative) * scale
        return grad_logits, grad_target, None, None, None

    @staticmethod
    def composite(logits, target, reduction, weight, pos_weight):
        """forward with ops, for create_graph: softplus(x) - x y (softplus(-x) + x (1 - y)
        with pos_weight), softplus being the stable log(1 + exp(x))."""
        target = _graph_operand(target, logits.dtype)
        if pos_weight is None:
            losses = ag.softplus(logits) - logits * target
        else:
            losses = (1 - target) * logits + (1 + (Tensor(pos_weight) - 1) * target) * ag.softplus(-logits)
        if weight is not None:
            losses = losses * Tensor(weight)
        return _reduce_graph(losses, reduction, logits.data.size)


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


def _check_broadcast_weight(op, name, weight, shape, dtype):
    """A constant array (no gradient) that broadcasts against ``shape``."""
    if weight is None:
        return None
    weight = _constant(op, name, weight).astype(dtype, copy=False)
    try:
        np.broadcast_shapes(weight.shape, shape)
    except ValueError:
        raise ValueError("%s: %s of shape %s does not broadcast against the input's shape %s"
                         % (op, name, weight.shape, shape)) from None
    if np.broadcast_shapes(weight.shape, shape) != tuple(shape):
        raise ValueError("%s: %s of shape %s would grow the input's shape %s"
                         % (op, name, weight.shape, shape))
    return weight


def binary_cross_entropy_with_logits(logits, target, weight=None, reduction="mean", pos_weight=None):
    """Sigmoid + binary cross-entropy, stable for any logit size.

    ``logits`` and ``target`` (probabilities in [0, 1]) have the same shape, any shape;
    ``weight`` (broadcasts to it) rescales each element's loss; ``pos_weight`` (broadcasts
    to it, typically [C] for classes last) weighs the positive term, as torch's. 'mean'
    averages over all elements. ``reduction`` may also be passed third, as the earlier
    signature did (binary_cross_entropy_with_logits(x, y, 'sum')).
    """
    op = "binary_cross_entropy_with_logits"
    if isinstance(weight, str):  # the earlier positional reduction
        weight, reduction = None, weight
    _check_reduction(op, reduction)
    target = _check_pair(op, logits, target, "logits")
    weight = _check_broadcast_weight(op, "weight", weight, logits.shape, logits.dtype)
    pos_weight = _check_broadcast_weight(op, "pos_weight", pos_weight, logits.shape, logits.dtype)
    if weight is None and pos_weight is None:
        return _BinaryCrossEntropyWithLogits.apply(logits, target, reduction, None, None)
    return _BinaryCrossEntropyWithLogits.apply(logits, target, reduction, weight, pos_weight)


class _BinaryCrossEntropy(Function):
    """-(y log x + (1 - y) log(1 - x)) with each log clamped at -100 (torch's choice, so a
    probability of exactly 0 or 1 gives a finite loss); backward (x - y) / max(x (1 - x), 1e-12)."""

    @staticmethod
    def forward(ctx, input, target, reduction, weight):
        log_input = np.maximum(np.log(input), -100)
        log_complement = np.maximum(np.log1p(-input), -100)
        losses = -(target * log_input + (1 - target) * log_complement)
        if weight is not None:
            losses = losses * weight
        ctx.reduction, ctx.weight = reduction, weight
        ctx.save_for_backward(input, target, log_input, log_complement)
        return _reduce(losses, reduction, input.size)

    @staticmethod
    def backward(ctx, grad_output):
        input, target, log_input, log_complement = ctx.saved_tensors
        scale = _grad_scale(grad_output, ctx.reduction, input.size, input.dtype)
        if ctx.weight is not None:
            scale = scale * ctx.weight
        grad_input = grad_target = None
        if ctx.needs_input_grad[0]:
            grad_input = (input - target) / np.maximum(input * (1 - input), 1e-12) * scale
        if ctx.needs_input_grad[1]:
            grad_target = (log_complement - log_input) * scale
        return grad_input, grad_target, None, None

    @staticmethod
    def composite(input, target, reduction, weight):
        """forward with ops, for create_graph (away from the clamps at -100, where the
        fused backward's gradient is the unclamped one too)."""
        target = _graph_operand(target, input.dtype)
        losses = -(target * ag.log(input) + (1 - target) * ag.log(1 - input))
        if weight is not None:
            losses = losses * Tensor(weight)
        return _reduce_graph(losses, reduction, input.data.size)


def binary_cross_entropy(input, target, weight=None, reduction="mean"):
    """Binary cross-entropy of probabilities ``input`` (in [0, 1], e.g. after a sigmoid)
    against ``target`` of the same shape; ``weight`` broadcasts to it and rescales each
    element. Each log is clamped at -100 as torch's. Prefer
    binary_cross_entropy_with_logits on logits (stable)."""
    op = "binary_cross_entropy"
    _check_reduction(op, reduction)
    target = _check_pair(op, input, target)
    if input.size and (input.data.min() < 0 or input.data.max() > 1 or np.isnan(input.data).any()):
        bad = input.data[~((input.data >= 0) & (input.data <= 1))][0]
        raise ValueError("%s: input must hold probabilities in [0, 1], got %r (pass logits to "
                         "binary_cross_entropy_with_logits instead)" % (op, float(bad)))
    weight = _check_broadcast_weight(op, "weight", weight, input.shape, input.dtype)
    return _BinaryCrossEntropy.apply(input, target, reduction, weight)


# ---- negative log likelihood -------------------------------------------------------------
class _NLLLoss(Function):
    """-weight[y] * input[y] per row of log-probabilities; backward scatters -weight[y]."""

    @staticmethod
    def forward(ctx, input, labels, reduction, label_weight, divisor):
        rows = input.reshape(-1, input.shape[-1])
        flat = labels.reshape(-1)
        losses = -rows[np.arange(flat.size), flat] * label_weight
        ctx.reduction, ctx.divisor, ctx.shape = reduction, divisor, input.shape
        ctx.save_for_backward(flat, label_weight)
        return _reduce(losses.reshape(input.shape[:-1]), reduction, divisor)

    @staticmethod
    def backward(ctx, grad_output):
        flat, label_weight = ctx.saved_tensors
        scale = _grad_scale(grad_output, ctx.reduction, ctx.divisor, label_weight.dtype)
        grad = np.zeros((flat.size, ctx.shape[-1]), dtype=label_weight.dtype)
        grad[np.arange(flat.size), flat] = -label_weight * scale.reshape(-1)
        return grad.reshape(ctx.shape), None, None, None, None

    @staticmethod
    def composite(input, labels, reduction, label_weight, divisor):
        """forward with ops, for create_graph: a weighted one-hot constant picks each row's term."""
        rows = input.reshape(-1, input.shape[-1])
        flat = np.asarray(labels).reshape(-1)
        picked = np.zeros(rows.shape, dtype=rows.dtype)
        picked[np.arange(flat.size), flat] = label_weight
        losses = -(rows * Tensor(picked)).sum(axis=1)
        return _reduce_graph(losses.reshape(input.shape[:-1]), reduction, divisor)


def nll_loss(input, target, weight=None, ignore_index=-100, reduction="mean"):
    """Negative log-likelihood of log-probabilities ``input`` [..., C] (classes LAST:
    [N, C], [C] or [N, d1, ..., C] where torch takes [N, C, d1, ...]) at the integer
    labels ``target`` (input's shape without the class dimension): -weight[y] * input[y].
    Labels equal to ``ignore_index`` add nothing; 'mean' divides by the summed weights of
    the counted labels (torch's convention). nll_loss(log_softmax(x)) == cross_entropy(x).
    """
    op = "nll_loss"
    _check_reduction(op, reduction)
    if not isinstance(input, Tensor):
        raise TypeError("%s: input must be a Tensor, got %s" % (op, type(input).__name__))
    _check_float(op, "input", input.data)
    if input.ndim < 1:
        raise ValueError("%s: input must have shape [N, C], [C] or [N, d1, ..., C], got shape %s"
                         % (op, input.shape))
    class_weight = _check_class_weight(op, weight, input.shape[-1], input.dtype)
    labels, ignored = _check_labels(op, "input", input.data, _array(target), ignore_index)
    flat = labels.reshape(-1)
    kept = np.ones(flat.size, dtype=bool) if ignored is None else ~ignored.reshape(-1)
    safe = np.where(kept, flat, 0)
    label_weight = (np.ones(flat.size, dtype=input.dtype) if class_weight is None else class_weight[safe]) * kept
    label_weight = label_weight.astype(input.dtype, copy=False)
    return _NLLLoss.apply(input, safe.reshape(labels.shape), reduction, label_weight,
                          label_weight.sum(dtype=input.dtype))


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

    @staticmethod
    def composite(input, target, reduction):
        """forward with ops, for create_graph."""
        difference = input - _graph_operand(target, input.dtype)
        return _reduce_graph(difference * difference, reduction, input.data.size)


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

    @staticmethod
    def composite(mean, logvar, reduction):
        """forward with ops, for create_graph."""
        per_element = 1 + logvar - mean * mean - ag.exp(logvar)
        losses = -0.5 * per_element.reshape(mean.shape[0], -1).sum(axis=1)
        return _reduce_graph(losses, reduction, mean.shape[0])


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


# ---- losses composed from differentiable ops ---------------------------------------------
# Elementwise formulas of a few ops each: the engine differentiates them, and none is on a
# hot path that a fused Function would pay back.
def _reduce_tensor(losses, reduction):
    if reduction == "none":
        return losses
    return losses.sum() if reduction == "sum" else losses.mean()


def _as_operand(target, dtype):
    """A Tensor target stays a Tensor (it may need a gradient); anything else a constant."""
    return target if isinstance(target, Tensor) else ag.Tensor(np.asarray(target, dtype=dtype))


def l1_loss(input, target, reduction="mean"):
    """|input - target|, same shapes (any); 'mean' averages over all elements."""
    op = "l1_loss"
    _check_reduction(op, reduction)
    target = _as_operand(_check_pair(op, input, target), input.dtype)
    return _reduce_tensor(ag.abs(input - target), reduction)


def smooth_l1_loss(input, target, reduction="mean", beta=1.0):
    """0.5 d**2 / beta where |d| < beta, |d| - 0.5 beta elsewhere (d = input - target);
    beta = 0 is l1_loss. Same shapes (any)."""
    op = "smooth_l1_loss"
    _check_reduction(op, reduction)
    if beta < 0:
        raise ValueError("%s: beta must be >= 0, got %r" % (op, beta))
    target = _as_operand(_check_pair(op, input, target), input.dtype)
    difference = input - target
    size = ag.abs(difference)
    if beta == 0:
        return _reduce_tensor(size, reduction)
    losses = ag.where(size.data < beta, difference * difference * (0.5 / beta), size - 0.5 * beta)
    return _reduce_tensor(losses, reduction)


def huber_loss(input, target, reduction="mean", delta=1.0):
    """0.5 d**2 where |d| <= delta, delta (|d| - 0.5 delta) elsewhere (d = input - target):
    smooth_l1_loss with beta = delta, times delta. Same shapes (any)."""
    op = "huber_loss"
    _check_reduction(op, reduction)
    if delta <= 0:
        raise ValueError("%s: delta must be > 0, got %r" % (op, delta))
    target = _as_operand(_check_pair(op, input, target), input.dtype)
    difference = input - target
    size = ag.abs(difference)
    losses = ag.where(size.data < delta, difference * difference * 0.5, (size - 0.5 * delta) * delta)
    return _reduce_tensor(losses, reduction)


def kl_div(input, target, reduction="mean", log_target=False):
    """KL(target || q) pointwise with ``input`` = log q: target * (log target - input), 0
    where target is 0 (log_target=False), or exp(target) * (target - input) when the
    target is given as log-probabilities. Same shapes (any). 'batchmean' divides the sum
    by the batch size input.shape[0] (the true KL divergence per sample); 'mean', as
    torch's, by the number of elements."""
    op = "kl_div"
    if reduction != "batchmean":
        _check_reduction(op, reduction)
    target = _as_operand(_check_pair(op, input, target), input.dtype)
    if log_target:
        losses = ag.exp(target) * (target - input)
    else:
        losses = ag.xlogy(target, target) - target * input
    if reduction == "batchmean":
        return losses.sum() / (input.shape[0] if input.ndim else 1)
    return _reduce_tensor(losses, reduction)


def poisson_nll_loss(input, target, log_input=True, full=False, eps=1e-8, reduction="mean"):
    """Poisson negative log likelihood of ``target`` counts with rate exp(input)
    (log_input=True: exp(input) - target * input) or rate input (input - target *
    log(input + eps)); ``full`` adds Stirling's term target log target - target +
    0.5 log(2 pi target) where target > 1. Same shapes (any)."""
    op = "poisson_nll_loss"
    _check_reduction(op, reduction)
    target = _as_operand(_check_pair(op, input, target), input.dtype)
    if log_input:
        losses = ag.exp(input) - target * input
    else:
        losses = input - target * ag.log(input + eps)
    if full:
        counts = target.data
        stirling = np.where(counts > 1, counts * np.log(np.where(counts > 1, counts, 1)) - counts
                            + 0.5 * np.log(2 * np.pi * np.where(counts > 1, counts, 1)), 0)
        losses = losses + ag.Tensor(stirling.astype(input.dtype, copy=False))
    return _reduce_tensor(losses, reduction)


def _check_labels_pm1(op, name, target, shape, dtype):
    target_array = _array(target)
    if target_array.shape != tuple(shape):
        raise ValueError("%s: %s has shape %s; expected %s" % (op, name, target_array.shape, tuple(shape)))
    return target_array.astype(dtype, copy=False)


def cosine_embedding_loss(input1, input2, target, margin=0.0, reduction="mean"):
    """1 - cos(x1, x2) where target is 1, max(0, cos(x1, x2) - margin) where it is -1;
    ``input1``, ``input2`` [N, D] (or [D]), cosine along the last dimension, ``target``
    [N] (or []) of 1 and -1."""
    op = "cosine_embedding_loss"
    _check_reduction(op, reduction)
    input2 = _as_operand(_check_pair(op, input1, input2, "input1"), input1.dtype)
    if input1.ndim not in (1, 2):
        raise ValueError("%s: inputs must be [N, D] or [D], got shape %s" % (op, input1.shape))
    labels = _check_labels_pm1(op, "target", target, input1.shape[:-1], input1.dtype)
    # torch's: eps added to each squared norm, not to the product
    products = (input1 * input2).sum(axis=-1)
    squares1 = (input1 * input1).sum(axis=-1) + 1e-12
    squares2 = (input2 * input2).sum(axis=-1) + 1e-12
    cosine = products / ag.sqrt(squares1 * squares2)
    zero = np.zeros(labels.shape, dtype=input1.dtype)
    losses = ag.where(labels == 1, 1 - cosine, zero) + ag.where(labels == -1, ag.relu(cosine - margin), zero)
    return _reduce_tensor(losses, reduction)


def margin_ranking_loss(input1, input2, target, margin=0.0, reduction="mean"):
    """max(0, -target * (input1 - input2) + margin); inputs and target (1 or -1) of one shape."""
    op = "margin_ranking_loss"
    _check_reduction(op, reduction)
    input2 = _as_operand(_check_pair(op, input1, input2, "input1"), input1.dtype)
    labels = _check_labels_pm1(op, "target", target, input1.shape, input1.dtype)
    return _reduce_tensor(ag.relu((input2 - input1) * labels + margin), reduction)


def _pairwise_distance(a, b, p, eps):
    """||a - b + eps||_p along the last dimension (torch's pairwise_distance)."""
    difference = a - b + eps
    if p == 2:
        return ag.sqrt((difference * difference).sum(axis=-1))
    if p == 1:
        return ag.abs(difference).sum(axis=-1)
    return (ag.abs(difference) ** p).sum(axis=-1) ** (1.0 / p)


def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2, eps=1e-6, swap=False, reduction="mean"):
    """max(d(a, p) - d(a, n) + margin, 0) with d the p-norm distance along the last
    dimension (||x - y + eps||_p); ``swap`` uses min(d(a, n), d(p, n)) as the negative
    distance. anchor, positive, negative: [N, D] (or [D]); 'none' gives [N]."""
    op = "triplet_margin_loss"
    _check_reduction(op, reduction)
    if p <= 0:
        raise ValueError("%s: p must be > 0, got %r" % (op, p))
    positive = _as_operand(_check_pair(op, anchor, positive, "anchor"), anchor.dtype)
    negative = _as_operand(_check_pair(op, anchor, negative, "anchor"), anchor.dtype)
    if anchor.ndim not in (1, 2):
        raise ValueError("%s: inputs must be [N, D] or [D], got shape %s" % (op, anchor.shape))
    positive_distance = _pairwise_distance(anchor, positive, p, eps)
    negative_distance = _pairwise_distance(anchor, negative, p, eps)
    if swap:
        negative_distance = ag.minimum(negative_distance, _pairwise_distance(positive, negative, p, eps))
    return _reduce_tensor(ag.relu(positive_distance - negative_distance + margin), reduction)


def hinge_embedding_loss(input, target, margin=1.0, reduction="mean"):
    """input where target is 1, max(0, margin - input) where it is -1 (torch's: both
    terms where target is neither); input and target of one shape."""
    op = "hinge_embedding_loss"
    _check_reduction(op, reduction)
    if not isinstance(input, Tensor):
        raise TypeError("%s: input must be a Tensor, got %s" % (op, type(input).__name__))
    _check_float(op, "input", input.data)
    labels = _check_labels_pm1(op, "target", target, input.shape, input.dtype)
    zero = np.zeros(input.shape, dtype=input.dtype)
    losses = ag.where(labels != 1, ag.relu(margin - input), zero) + ag.where(labels != -1, input, zero)
    return _reduce_tensor(losses, reduction)


def multilabel_soft_margin_loss(input, target, weight=None, reduction="mean"):
    """-(y log sigmoid(x) + (1 - y) log sigmoid(-x)), times ``weight`` [C], averaged over
    the C classes (the last dimension): input and target [N, C] (or [C]); 'none' gives [N]."""
    op = "multilabel_soft_margin_loss"
    _check_reduction(op, reduction)
    target = _as_operand(_check_pair(op, input, target), input.dtype)
    if input.ndim not in (1, 2):
        raise ValueError("%s: input must be [N, C] or [C], got shape %s" % (op, input.shape))
    losses = -(target * ag.logsigmoid(input) + (1 - target) * ag.logsigmoid(-input))
    if weight is not None:
        losses = losses * ag.Tensor(_check_class_weight(op, weight, input.shape[-1], input.dtype))
    return _reduce_tensor(losses.mean(axis=-1), reduction)
