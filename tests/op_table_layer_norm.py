"""Op table entry for layer_norm (autograd_core/ops/layer_norm.py; see tests/op_table.py
for what an entry is). The reference normalises with numpy's mean and var (the biased
variance, as torch), independently of the op's fused rows."""
import numpy as np

from op_table import Sample, OpEntry, _away_from_zero


def _layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    axes = tuple(range(x.ndim - len(shape), x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    variance = x.var(axis=axes, keepdims=True)
    out = (x - mean) / np.sqrt(variance + eps)
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return out


def _samples(rng):
    r = lambda *shape: _away_from_zero(rng, *shape)  # noqa: E731
    return [Sample(r(4, 5), 5, r(5), r(5)),                       # one trailing dimension
            Sample(r(2, 3, 4), (3, 4), r(3, 4), r(3, 4), 1e-3),   # two, positional eps
            Sample(r(3, 6), [6]),                                 # no affine
            Sample(r(2, 2, 3), 3, r(3), None),                    # weight only
            Sample(r(2, 4), (4,), None, r(4), eps=0.1),           # bias only
            Sample(r(5), 5, r(5), r(5))]                          # no batch dimensions


def _torch_layer_norm(torch, x, normalized_shape, *args, **kwargs):
    # torch's functional takes a tuple only (its nn.LayerNorm, like this op, an int too)
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    return torch.nn.functional.layer_norm(x, shape, *args, **kwargs)


TABLE = {
    "layer_norm": OpEntry(_samples, _layer_norm, torch=_torch_layer_norm),
}
