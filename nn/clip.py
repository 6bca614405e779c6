"""Gradient clipping: ``clip_grad_norm_`` and ``clip_grad_value_``, torch's
``torch.nn.utils`` functions (reachable as ``nn.utils.clip_grad_*``; ``nn.optim`` keeps
``clip_grad_norm_`` too). They scale or clamp ``param.grad`` in place."""
import math

import numpy as np

__all__ = ["clip_grad_norm_", "clip_grad_value_"]


def _grad_array(param):
    grad = param.grad
    if grad is None:
        return None
    return grad if isinstance(grad, np.ndarray) else grad.data


def _gradients(params):
    if hasattr(params, "data"):
        params = [params]
    return [g for g in (_grad_array(p) for p in params) if g is not None]


def clip_grad_norm_(params, max_norm, norm_type=2.0, error_if_nonfinite=False):
    """Scale the gradients in place so their joint norm is at most ``max_norm``.

    The norm is taken over all gradients together, as if concatenated into one vector
    (``norm_type`` 2 by default, or ``float('inf')``). Returns the norm before clipping,
    as a Python float. Parameters without a gradient are ignored. With
    ``error_if_nonfinite`` a nan or infinite norm raises instead of clipping.
    """
    grads = _gradients(params)
    if not grads:
        return 0.0
    norm_type = float(norm_type)
    if math.isinf(norm_type):
        total = max(float(np.max(np.abs(g))) if g.size else 0.0 for g in grads)
    elif norm_type == 2.0:
        # float64 accumulation: a float32 sum of squares over millions of entries drifts.
        total = math.sqrt(sum(float(np.dot(g.ravel(), g.ravel()).astype(np.float64))
                              if g.dtype == np.float64 else
                              float(np.sum(np.square(g, dtype=np.float64))) for g in grads))
    else:
        total = sum(float(np.sum(np.abs(g, dtype=np.float64) ** norm_type)) for g in grads) ** (1.0 / norm_type)
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError("clip_grad_norm_: the total norm of order %r of the gradients is %r, expected a "
                           "finite number (pass error_if_nonfinite=False to clip anyway)" % (norm_type, total))
    # (gradients are not saved by any op's forward, so scaling them in place needs no
    # version bump)
    coefficient = float(max_norm) / (total + 1e-6)
    if coefficient < 1.0:
        for g in grads:
            np.multiply(g, coefficient, out=g)
    return total


def clip_grad_value_(params, clip_value):
    """Clamp every gradient in place to [-clip_value, clip_value] (``clip_value`` >= 0).
    Parameters without a gradient are ignored; returns None, as torch's."""
    clip_value = float(clip_value)
    if not clip_value >= 0.0:
        raise ValueError("clip_grad_value_: clip_value must be a number >= 0, got %r" % (clip_value,))
    for g in _gradients(params):
        np.clip(g, -clip_value, clip_value, out=g)
