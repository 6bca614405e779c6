"""Op table entries for the pooling and resampling ops of autograd_core/ops/pool.py and
ops/sampling.py (see tests/op_table.py for what an entry says). The references are
written window by window with Python loops over tiny shapes, from torch's documented
rules, independently of the vectorised ops; the torch comparisons move channels-last to
torch's channels-first and back (indices come back in our layout unchanged: both count
cells inside one plane)."""
import itertools
import math

import numpy as np

from op_table import Sample, OpEntry, _away_from_zero, _distinct


# ---- torch adapters -------------------------------------------------------------------------
def _first(t):
    return t.movedim(-1, 1)


def _last(result):
    if isinstance(result, tuple):
        return tuple(_last(r) for r in result)
    return result.movedim(1, -1)


def _torch(name):
    """torch.nn.functional.<name> on channels-first, results back to channels-last."""
    def call(torch, x, *args, **kwargs):
        import torch.nn.functional as F
        return _last(getattr(F, name)(_first(x), *args, **kwargs))
    return call


def _torch_max_pool2d(torch, x, kernel_size, stride=None, padding=0, *args, **kwargs):
    """Per-side pads ((top, bottom), (left, right)), which torch does not take, as an
    explicit -inf border (values only: indices would count the border's cells)."""
    import torch.nn.functional as F
    if isinstance(padding, tuple) and isinstance(padding[0], tuple):
        (top, bottom), (left, right) = padding
        x = _last(F.pad(_first(x), (left, right, top, bottom), value=-math.inf))
        padding = 0
    return _last(F.max_pool2d(_first(x), kernel_size, stride, padding, *args, **kwargs))


def _torch_unpool(name):
    def call(torch, x, indices, *args, output_size=None, **kwargs):
        import torch.nn.functional as F
        if output_size is not None:
            output_size = list(output_size)
        return _last(getattr(F, name)(_first(x), _first(indices), *args, output_size=output_size, **kwargs))
    return call


# ---- references: window by window -------------------------------------------------------------
def _tuple(value, dims):
    return (value,) * dims if isinstance(value, (int, float)) else tuple(value)


def _sides(padding, dims):
    if isinstance(padding, int):
        return ((padding, padding),) * dims
    if dims == 1 and len(padding) == 2 and isinstance(padding[0], int):
        return (tuple(padding),)
    return tuple((p, p) if isinstance(p, int) else tuple(p) for p in padding)


def _out_size(size, k, s, d, before, after, ceil_mode):
    span = size + before + after - d * (k - 1) - 1
    out = (math.ceil(span / s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= size + before:
        out -= 1
    return out


def _pool_reference(kind):
    def reference(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False,
                  count_include_pad=True, divisor_override=None):
        dims = x.ndim - 2
        k, pads, d = _tuple(kernel_size, dims), _sides(padding, dims), _tuple(dilation, dims)
        s = k if stride is None else _tuple(stride, dims)
        spatial = x.shape[1:-1]
        out = [_out_size(spatial[a], k[a], s[a], d[a], *pads[a], ceil_mode) for a in range(dims)]
        y = np.zeros((x.shape[0],) + tuple(out) + (x.shape[-1],))
        indices = np.zeros(y.shape, dtype=np.int64)
        for position in itertools.product(*(range(o) for o in out)):
            starts = [position[a] * s[a] - pads[a][0] for a in range(dims)]
            cells = [c for c in itertools.product(*(range(starts[a], starts[a] + d[a] * (k[a] - 1) + 1, d[a])
                                                    for a in range(dims)))
                     if all(0 <= c[a] < spatial[a] for a in range(dims))]
            values = np.stack([x[(slice(None),) + c + (slice(None),)] for c in cells])  # [cells, n, c]
            if kind == "max":
                best = np.argmax(values, axis=0)
                y[(slice(None),) + position + (slice(None),)] = np.max(values, axis=0)
                flat = np.array([np.ravel_multi_index(c, spatial) for c in cells])
                indices[(slice(None),) + position + (slice(None),)] = flat[best]
            else:
                ends = [min(starts[a] + k[a], spatial[a] + pads[a][1]) for a in range(dims)]
                if divisor_override:
                    divisor = divisor_override
                elif count_include_pad:
                    divisor = np.prod([ends[a] - starts[a] for a in range(dims)])
                else:
                    divisor = len(cells)
                y[(slice(None),) + position + (slice(None),)] = values.sum(axis=0) / divisor
        return (y, indices) if return_indices else y
    return reference


def _adaptive_reference(kind):
    def reference(x, output_size, return_indices=False):
        dims = x.ndim - 2
        spatial = x.shape[1:-1]
        out = tuple(spatial[a] if o is None else o for a, o in enumerate(_tuple(output_size, dims)))
        y = np.zeros((x.shape[0],) + out + (x.shape[-1],))
        indices = np.zeros(y.shape, dtype=np.int64)
        for position in itertools.product(*(range(o) for o in out)):
            ranges = [range(math.floor(position[a] * spatial[a] / out[a]),
                            math.ceil((position[a] + 1) * spatial[a] / out[a])) for a in range(dims)]
            cells = list(itertools.product(*ranges))
            values = np.stack([x[(slice(None),) + c + (slice(None),)] for c in cells])
            at = (slice(None),) + position + (slice(None),)
            if kind == "max":
                y[at] = values.max(axis=0)
                indices[at] = np.array([np.ravel_multi_index(c, spatial) for c in cells])[values.argmax(axis=0)]
            else:
                y[at] = values.mean(axis=0)
        return (y, indices) if return_indices else y
    return reference


def _unpool_reference(x, indices, kernel_size, stride=None, padding=0, output_size=None):
    dims = x.ndim - 2
    k, pads = _tuple(kernel_size, dims), _sides(padding, dims)
    s = k if stride is None else _tuple(stride, dims)
    out = tuple(output_size[-dims:]) if output_size is not None else tuple(
        (x.shape[1 + a] - 1) * s[a] - sum(pads[a]) + k[a] for a in range(dims))
    y = np.zeros((x.shape[0],) + out + (x.shape[-1],))
    for n in range(x.shape[0]):
        for c in range(x.shape[-1]):
            plane = y[n, ..., c].reshape(-1)
            plane[indices[n, ..., c].ravel()] = x[n, ..., c].ravel()
            y[n, ..., c] = plane.reshape(out)
    return y


def _pooled_with_indices(rng, shape, kernel_size, stride=None):
    x = _distinct(rng, *shape)
    return _pool_reference("max")(x, kernel_size, stride, return_indices=True)


def _unpool_samples(dims):
    def samples(rng):
        shape = {1: (2, 6, 2), 2: (2, 4, 6, 2), 3: (1, 4, 4, 2, 2)}[dims]
        values, indices = _pooled_with_indices(rng, shape, 2)
        cases = [Sample(_away_from_zero(rng, *values.shape), indices, 2)]
        if dims == 2:
            # windows that do not overlap: each index is written once (overlapping
            # windows can pick one cell twice, where torch leaves the winner undefined)
            values, indices = _pooled_with_indices(rng, (1, 5, 5, 2), 2)
            cases.append(Sample(_away_from_zero(rng, *values.shape), indices, 2, output_size=(5, 5)))
        return cases
    return samples


def _interpolate_reference(x, size=None, scale_factor=None, mode="nearest", align_corners=None,
                           recompute_scale_factor=None):
    """Per output cell and per dim: the source coordinate by torch's rule, then the 1, 2
    or 4 taps and their weights; the product over dims of the per-dim weights."""
    dims = x.ndim - 2
    spatial = x.shape[1:-1]
    if size is not None:
        out, factors = _tuple(size, dims), (None,) * dims
    else:
        factors = _tuple(scale_factor, dims)
        out = tuple(int(math.floor(spatial[a] * factors[a])) for a in range(dims))

    def taps(a, o):
        size_in, size_out, factor = spatial[a], out[a], factors[a]
        if mode in ("nearest", "nearest-exact"):
            scale = np.float32(1.0 / factor) if factor else np.float32(size_in) / np.float32(size_out)
            shift = np.float32(0.5) if mode == "nearest-exact" else np.float32(0)
            return [(min(int(math.floor((np.float32(o) + shift) * scale)), size_in - 1), 1.0)]
        if align_corners:
            scale = (size_in - 1) / (size_out - 1) if size_out > 1 else 0.0
            source = o * scale
        else:
            scale = 1.0 / factor if factor else size_in / size_out
            source = scale * (o + 0.5) - 0.5
        if mode == "bicubic":
            base = math.floor(source)
            t = source - base
            A = -0.75
            weights = [((A * u - 5 * A) * u + 8 * A) * u - 4 * A if u > 1 else ((A + 2) * u - (A + 3)) * u * u + 1
                       for u in (t + 1, t, 1 - t, 2 - t)]
            return [(min(max(base - 1 + i, 0), size_in - 1), w) for i, w in enumerate(weights)]
        source = max(source, 0.0)
        low = min(int(source), size_in - 1)
        return [(low, 1 - (source - low)), (min(low + 1, size_in - 1), source - low)]

    y = np.zeros((x.shape[0],) + out + (x.shape[-1],))
    for position in itertools.product(*(range(o) for o in out)):
        total = 0
        for combination in itertools.product(*(taps(a, position[a]) for a in range(dims))):
            weight = np.prod([w for _, w in combination])
            total = total + weight * x[(slice(None),) + tuple(i for i, _ in combination) + (slice(None),)]
        y[(slice(None),) + position + (slice(None),)] = total
    return y


def _pixel_shuffle_reference(x, r):
    *batch, h, w, c = x.shape
    y = np.zeros(tuple(batch) + (h * r, w * r, c // (r * r)))
    for i in range(h * r):
        for j in range(w * r):
            for k in range(c // (r * r)):
                y[..., i, j, k] = x[..., i // r, j // r, k * r * r + (i % r) * r + (j % r)]
    return y


def _pixel_unshuffle_reference(x, r):
    *batch, h, w, c = x.shape
    y = np.zeros(tuple(batch) + (h // r, w // r, c * r * r))
    for i in range(h):
        for j in range(w):
            for k in range(c):
                y[..., i // r, j // r, k * r * r + (i % r) * r + (j % r)] = x[..., i, j, k]
    return y


def _torch_pixels(name):
    """torch's pixel ops take [*, c, h, w]: channels move to -3 (any batch dims)."""
    def call(torch, x, factor):
        import torch.nn.functional as F
        return getattr(F, name)(x.movedim(-1, -3), factor).movedim(-3, -1)
    return call


def _entry(samples, reference, torch_name):
    return OpEntry(samples, reference, torch=_torch(torch_name))


TABLE = {
    # the first samples run the C kernels (the seed CNN's pools), the others the numpy path
    "max_pool2d": OpEntry(lambda rng: [
        Sample(_distinct(rng, 2, 4, 4, 2), 2),
        Sample(_distinct(rng, 1, 5, 5, 2), 3, 2, 1),
        Sample(_distinct(rng, 2, 5, 6, 2), (2, 3), (1, 2), ((1, 0), (0, 2))),
        Sample(_distinct(rng, 2, 5, 6, 2), 3, 2, 1, ceil_mode=True, return_indices=True),
        Sample(_distinct(rng, 1, 6, 7, 2), (2, 3), (1, 2), (1, 1), dilation=(2, 1), return_indices=True),
        Sample(_distinct(rng, 1, 4, 5, 1), 2, 1, 0, 2, True)],
        _pool_reference("max"), torch=_torch_max_pool2d),
    # avg_pool2d keeps its earlier (x, kernel_size, stride, padding, count_include_pad)
    # order, so torch's ceil_mode is passed by name here
    "avg_pool2d": OpEntry(lambda rng: [
        Sample(_away_from_zero(rng, 2, 4, 4, 2), 2),
        Sample(_away_from_zero(rng, 1, 5, 5, 2), 3, 2, 1),
        Sample(_away_from_zero(rng, 1, 5, 5, 2), 3, 2, 1, count_include_pad=False),
        Sample(_away_from_zero(rng, 2, 5, 6, 2), 3, 2, 1, ceil_mode=True),
        Sample(_away_from_zero(rng, 2, 5, 6, 2), 3, 2, 1, ceil_mode=True, count_include_pad=False),
        Sample(_away_from_zero(rng, 1, 4, 5, 1), (2, 3), 1, (1, 0), divisor_override=4)],
        _pool_reference("avg"), torch=_torch("avg_pool2d")),
    "max_pool1d": _entry(lambda rng: [
        Sample(_distinct(rng, 2, 7, 2), 3),
        Sample(_distinct(rng, 2, 8, 2), 3, 2, 1, ceil_mode=True, return_indices=True),
        Sample(_distinct(rng, 1, 9, 3), 2, 1, 1, dilation=2, return_indices=True)],
        _pool_reference("max"), "max_pool1d"),
    "max_pool3d": _entry(lambda rng: [
        Sample(_distinct(rng, 1, 4, 4, 4, 2), 2),
        Sample(_distinct(rng, 2, 5, 4, 3, 1), (3, 2, 2), (2, 1, 2), (1, 1, 0), ceil_mode=True,
               return_indices=True),
        Sample(_distinct(rng, 1, 5, 5, 5, 1), 2, 1, 0, dilation=(2, 1, 2), return_indices=True)],
        _pool_reference("max"), "max_pool3d"),
    "avg_pool1d": _entry(lambda rng: [
        Sample(_away_from_zero(rng, 2, 7, 2), 3),
        Sample(_away_from_zero(rng, 2, 8, 2), 3, 2, 1, ceil_mode=True),
        Sample(_away_from_zero(rng, 1, 8, 3), 3, 2, 1, ceil_mode=True, count_include_pad=False)],
        _pool_reference("avg"), "avg_pool1d"),
    "avg_pool3d": _entry(lambda rng: [
        Sample(_away_from_zero(rng, 1, 4, 4, 4, 2), 2),
        Sample(_away_from_zero(rng, 2, 5, 4, 3, 1), (3, 2, 2), (2, 1, 2), (1, 1, 0), ceil_mode=True),
        Sample(_away_from_zero(rng, 1, 4, 5, 4, 1), 3, 2, 1, count_include_pad=False),
        Sample(_away_from_zero(rng, 1, 4, 4, 4, 1), 2, divisor_override=3)],
        _pool_reference("avg"), "avg_pool3d"),
    "adaptive_avg_pool1d": _entry(lambda rng: [Sample(_away_from_zero(rng, 2, 7, 2), 3),
                                               Sample(_away_from_zero(rng, 1, 4, 2), 6)],
                                  _adaptive_reference("avg"), "adaptive_avg_pool1d"),
    "adaptive_avg_pool2d": _entry(lambda rng: [Sample(_away_from_zero(rng, 2, 5, 7, 2), (2, 3)),
                                               Sample(_away_from_zero(rng, 1, 4, 3, 2), 1),
                                               Sample(_away_from_zero(rng, 1, 5, 3, 1), (3, None))],
                                  _adaptive_reference("avg"), "adaptive_avg_pool2d"),
    "adaptive_avg_pool3d": _entry(lambda rng: [Sample(_away_from_zero(rng, 1, 5, 4, 3, 2), (2, 3, 2))],
                                  _adaptive_reference("avg"), "adaptive_avg_pool3d"),
    "adaptive_max_pool1d": _entry(lambda rng: [Sample(_distinct(rng, 2, 7, 2), 3),
                                               Sample(_distinct(rng, 1, 5, 2), 3, return_indices=True)],
                                  _adaptive_reference("max"), "adaptive_max_pool1d"),
    "adaptive_max_pool2d": _entry(lambda rng: [Sample(_distinct(rng, 2, 5, 7, 2), (2, 3)),
                                               Sample(_distinct(rng, 1, 5, 5, 2), 3, return_indices=True),
                                               Sample(_distinct(rng, 1, 3, 4, 1), (5, 2), return_indices=True)],
                                  _adaptive_reference("max"), "adaptive_max_pool2d"),
    "adaptive_max_pool3d": _entry(lambda rng: [Sample(_distinct(rng, 1, 5, 4, 3, 2), (2, 3, 2),
                                                      return_indices=True)],
                                  _adaptive_reference("max"), "adaptive_max_pool3d"),
    "max_unpool1d": OpEntry(_unpool_samples(1), _unpool_reference, torch=_torch_unpool("max_unpool1d")),
    "max_unpool2d": OpEntry(_unpool_samples(2), _unpool_reference, torch=_torch_unpool("max_unpool2d")),
    "max_unpool3d": OpEntry(_unpool_samples(3), _unpool_reference, torch=_torch_unpool("max_unpool3d")),
    "interpolate": _entry(lambda rng: [
        Sample(_away_from_zero(rng, 2, 3, 4, 2), scale_factor=2),
        Sample(_away_from_zero(rng, 1, 5, 7, 2), size=(3, 4)),
        Sample(_away_from_zero(rng, 1, 3, 5, 2), size=(7, 4), mode="nearest-exact"),
        Sample(_away_from_zero(rng, 2, 5, 2), size=8, mode="linear"),
        Sample(_away_from_zero(rng, 1, 6, 2), scale_factor=0.5, mode="linear", align_corners=True),
        Sample(_away_from_zero(rng, 2, 3, 4, 2), scale_factor=2.5, mode="bilinear"),
        Sample(_away_from_zero(rng, 1, 5, 4, 1), size=(3, 7), mode="bilinear", align_corners=True),
        Sample(_away_from_zero(rng, 1, 4, 5, 2), size=(7, 3), mode="bicubic"),
        Sample(_away_from_zero(rng, 1, 4, 3, 1), scale_factor=(1.5, 2), mode="bicubic", align_corners=True),
        Sample(_away_from_zero(rng, 1, 2, 3, 2, 1), scale_factor=2, mode="trilinear"),
        Sample(_away_from_zero(rng, 1, 2, 3, 2, 1), size=(3, 2, 4))],
        _interpolate_reference, "interpolate"),
    "upsample": _entry(lambda rng: [Sample(_away_from_zero(rng, 1, 3, 4, 2), scale_factor=2, mode="bilinear"),
                                    Sample(_away_from_zero(rng, 2, 3, 2), size=5)],
                       _interpolate_reference, "upsample"),
    "pixel_shuffle": OpEntry(lambda rng: [Sample(_away_from_zero(rng, 2, 2, 3, 8), 2),
                                         Sample(_away_from_zero(rng, 1, 2, 9), 3)],
                            _pixel_shuffle_reference, torch=_torch_pixels("pixel_shuffle")),
    "pixel_unshuffle": OpEntry(lambda rng: [Sample(_away_from_zero(rng, 2, 4, 6, 2), 2),
                                           Sample(_away_from_zero(rng, 1, 3, 6, 1), 3)],
                              _pixel_unshuffle_reference, torch=_torch_pixels("pixel_unshuffle")),
}
