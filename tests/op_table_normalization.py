"""Op table entries for the normalization ops of autograd_core/ops/normalization.py (see
tests/op_table.py for what an entry says). The references are written from torch's
documented formulas, channel by channel and group by group with Python loops over tiny
shapes, independently of the fused op; the torch comparisons move channels-last to
torch's channels-first and back.

Running statistics are buffers, not graph inputs: the samples pass them as keywords
(numpy arrays, which the table leaves alone), and ``_reorder`` hands the op copies, since
the training forward updates them in place and the same sample serves every test."""
import numpy as np

from op_table import Sample, OpEntry, _away_from_zero

def _torch(name):
    """torch.nn.functional.<name> on channels-first input (first arg), back to channels-last."""
    def call(torch, x, *args, **kwargs):
        import torch.nn.functional as F
        return getattr(F, name)(x.movedim(-1, 1), *args, **kwargs).movedim(1, -1)
    return call


# ---- references -----------------------------------------------------------------------------
def _affine(values, weight, bias):
    if weight is not None:
        values = values * weight
    if bias is not None:
        values = values + bias
    return values


def _batch_norm(x, weight=None, bias=None, running_mean=None, running_var=None, training=False, momentum=0.1,
                eps=1e-5):
    out = np.empty_like(x, dtype=np.float64)
    for c in range(x.shape[-1]):
        values = x[..., c].astype(np.float64)
        if training or running_mean is None:
            mean, var = values.sum() / values.size, ((values - values.sum() / values.size) ** 2).sum() / values.size
        else:
            mean, var = running_mean[c], running_var[c]
        out[..., c] = (values - mean) / np.sqrt(var + eps)
    return _affine(out, weight, bias)


def _instance_norm(x, weight=None, bias=None, running_mean=None, running_var=None, use_input_stats=True,
                   momentum=0.1, eps=1e-5):
    if not use_input_stats:
        return _batch_norm(x, weight, bias, running_mean, running_var, False, momentum, eps)
    out = np.empty_like(x, dtype=np.float64)
    for n in range(x.shape[0]):
        for c in range(x.shape[-1]):
            values = x[n, ..., c].astype(np.float64)
            mean = values.sum() / values.size
            out[n, ..., c] = (values - mean) / np.sqrt(((values - mean) ** 2).sum() / values.size + eps)
    return _affine(out, weight, bias)


def _group_norm(x, num_groups, weight=None, bias=None, eps=1e-5):
    out = np.empty_like(x, dtype=np.float64)
    per_group = x.shape[-1] // num_groups
    for n in range(x.shape[0]):
        for g in range(num_groups):
            values = x[n, ..., g * per_group:(g + 1) * per_group].astype(np.float64)
            mean = values.sum() / values.size
            var = ((values - mean) ** 2).sum() / values.size
            out[n, ..., g * per_group:(g + 1) * per_group] = (values - mean) / np.sqrt(var + eps)
    return _affine(out, weight, bias)


def _local_response_norm(x, size, alpha=1e-4, beta=0.75, k=1.0):
    channels = x.shape[-1]
    out = np.empty_like(x, dtype=np.float64)
    for c in range(channels):
        low, high = max(c - size // 2, 0), min(c + (size - 1) // 2, channels - 1)
        total = sum(x[..., j].astype(np.float64) ** 2 for j in range(low, high + 1))
        out[..., c] = x[..., c] / (k + alpha / size * total) ** beta
    return out


# ---- samples --------------------------------------------------------------------------------
# batch_norm and instance_norm samples are (x, weight, bias) positionally, so that the table
# turns those into Tensors (gradchecked, compared with torch's gradients), and the running
# statistics as keywords; _reorder puts them in the op's own order.
def _statistics(rng, channels):
    return {"running_mean": rng.standard_normal(channels), "running_var": rng.uniform(0.5, 2.0, channels)}


def _batch_norm_samples(rng):
    x2, x3, x4 = (_away_from_zero(rng, *shape) for shape in ((5, 3), (3, 4, 2), (2, 3, 2, 3)))
    return [Sample(x2, None, None, training=True, **_statistics(rng, 3)),
            Sample(x3, _away_from_zero(rng, 2), _away_from_zero(rng, 2), training=True, momentum=0.3, eps=1e-3,
                   **_statistics(rng, 2)),
            Sample(x4, _away_from_zero(rng, 3), _away_from_zero(rng, 3), training=False, **_statistics(rng, 3)),
            Sample(x4, None, _away_from_zero(rng, 3), training=False, **_statistics(rng, 3)),
            Sample(x3, _away_from_zero(rng, 2), None, training=True)]


def _instance_norm_samples(rng):
    x3, x4 = _away_from_zero(rng, 2, 4, 3), _away_from_zero(rng, 2, 3, 2, 3)
    return [Sample(x3, None, None),
            Sample(x4, _away_from_zero(rng, 3), _away_from_zero(rng, 3), momentum=0.2, eps=1e-3,
                   **_statistics(rng, 3)),
            Sample(x4, _away_from_zero(rng, 3), None, use_input_stats=False, **_statistics(rng, 3))]


def _group_norm_samples(rng):
    return [Sample(_away_from_zero(rng, 2, 3, 4), 2, _away_from_zero(rng, 4), _away_from_zero(rng, 4)),
            Sample(_away_from_zero(rng, 2, 2, 2, 6), 3, _away_from_zero(rng, 6), None, eps=1e-3),
            Sample(_away_from_zero(rng, 3, 4), 1),
            Sample(_away_from_zero(rng, 2, 3, 4), 4, _away_from_zero(rng, 4), _away_from_zero(rng, 4))]


def _local_response_norm_samples(rng):
    return [Sample(_away_from_zero(rng, 2, 3, 5), 3),
            Sample(_away_from_zero(rng, 2, 2, 2, 6), 4, alpha=0.1, beta=0.6, k=2.0),
            Sample(_away_from_zero(rng, 1, 4, 3), 1, alpha=0.5),
            Sample(_away_from_zero(rng, 2, 3, 4), 7, alpha=0.3, beta=1.2)]


def _reorder(op, x, weight, bias, running_mean=None, running_var=None, **kwargs):
    """op(x, running_mean, running_var, weight, bias, ...) with copies of the statistics
    (the training forward updates them in place; the sample serves every test)."""
    copies = [None if s is None else np.array(s, copy=True) for s in (running_mean, running_var)]
    return op(x, copies[0], copies[1], weight, bias, **kwargs)


def _torch_reordered(name):
    """torch.nn.functional.<name> in its own argument order, channels-first, back to channels-last."""
    def call(torch, x, weight, bias, running_mean=None, running_var=None, **kwargs):
        import torch.nn.functional as F
        copies = [None if s is None else torch.tensor(np.array(s, dtype=np.float64))
                  for s in (running_mean, running_var)]
        return getattr(F, name)(x.movedim(-1, 1), copies[0], copies[1], weight, bias, **kwargs).movedim(1, -1)
    return call


TABLE = {
    "batch_norm": OpEntry(_batch_norm_samples, _batch_norm, call=_reorder, torch=_torch_reordered("batch_norm")),
    "instance_norm": OpEntry(_instance_norm_samples, _instance_norm, call=_reorder,
                             torch=_torch_reordered("instance_norm")),
    "group_norm": OpEntry(_group_norm_samples, _group_norm, torch=_torch("group_norm")),
    "local_response_norm": OpEntry(_local_response_norm_samples, _local_response_norm,
                                   torch=_torch("local_response_norm")),
}
