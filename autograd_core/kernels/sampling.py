"""Pooling and resampling over 1, 2 and 3 spatial dims, in vectorised numpy: the
variants the C pooling kernels (pool.py) do not cover (ceil_mode, dilation, indices,
divisor_override, 1-D and 3-D, adaptive pooling, max_unpool, interpolation).

Layout is channels-last: x [n, *spatial, c] with 1 to 3 spatial dims ([n, l, c],
[n, h, w, c], [n, d, h, w, c]).

Two building blocks cover everything:

* **window tables** (max pooling, adaptive max pooling): per spatial dim, for each kernel
  offset j, the input coordinate each output reads ([k, out] ints) and whether that cell
  is real ([k, out] bools). Max pooling visits the prod(kernel) offsets, each one a
  vectorised gather over every output at once, and keeps the running maximum and the
  index of its cell.
* **separable matrices** (average pooling, adaptive average pooling, interpolation): each
  of these is linear in x and acts on each spatial dim separately, so it is one matrix
  [out, in] per dim; the forward applies them dim by dim, the backward their
  transposes. A window mean's divisor is a product of per-dim factors in every torch
  mode (count_include_pad or not, ceil_mode), so it folds into the matrices.

Indices follow torch's convention: the flat index of the cell inside its own plane (one
sample, one channel): h * W + w for 2-D, d * H * W + h * W + w for 3-D, l for 1-D.
"""
import itertools

import numpy as np

from .runtime import SIZE_LIMIT, is_integer


# ---- argument forms ------------------------------------------------------------------------

def per_dim(op, name, value, dims, minimum):
    """A tuple of dims ints from an int or a sequence of dims ints, each >= minimum."""
    values = (value,) * dims if is_integer(value) else value
    if not (isinstance(values, (tuple, list)) and len(values) == dims and all(is_integer(v) for v in values)):
        raise TypeError("%s: got %s=%r, expected an int or a tuple of %d ints" % (op, name, value, dims))
    if any(v < minimum or v >= SIZE_LIMIT for v in values):
        raise ValueError("%s: got %s=%r, expected values >= %d" % (op, name, value, minimum))
    return tuple(int(v) for v in values)


def per_side_padding(op, padding, dims):
    """((before, after), ...) per spatial dim and whether the form was torch's symmetric
    one. Accepts an int, a tuple of dims ints (torch's forms), a tuple of dims
    (before, after) pairs, and for 1-D a bare (before, after) pair."""
    if is_integer(padding) or (isinstance(padding, (tuple, list)) and len(padding) == dims
                               and all(is_integer(p) for p in padding)):
        symmetric = per_dim(op, "padding", padding, dims, 0)
        return tuple((p, p) for p in symmetric), True
    if dims == 1 and isinstance(padding, (tuple, list)) and len(padding) == 2 and all(is_integer(p) for p in padding):
        padding = (tuple(padding),)
    if (isinstance(padding, (tuple, list)) and len(padding) == dims
            and all(isinstance(p, (tuple, list)) and len(p) == 2 and all(is_integer(v) for v in p) for p in padding)):
        if any(v < 0 or v >= SIZE_LIMIT for p in padding for v in p):
            raise ValueError("%s: got padding=%r, expected non-negative pads" % (op, padding))
        return tuple((int(b), int(a)) for b, a in padding), False
    raise TypeError("%s: got padding=%r, expected an int, a tuple of %d ints or a tuple of %d "
                    "(before, after) pairs" % (op, padding, dims, dims))


def check_input(op, x, dims):
    """x must be a float array [n, *spatial (dims), c] with every spatial size and c >= 1."""
    if x.ndim != dims + 2:
        layout = {1: "[n, l, c]", 2: "[n, h, w, c]", 3: "[n, d, h, w, c]"}[dims]
        # the pooling ops also take one input without the batch axis (ops/_util.accepts_unbatched)
        unbatched = " or %d without the batch axis" % (dims + 1) if "pool" in op and "unpool" not in op else ""
        raise ValueError("%s: got input of shape %s, expected %d dims %s (channels last)%s"
                         % (op, x.shape, dims + 2, layout, unbatched))
    if x.dtype.kind != "f":
        raise TypeError("%s: got input of dtype %s, expected float32 or float64" % (op, x.dtype))
    if any(s < 1 for s in x.shape[1:]):
        raise ValueError("%s: got input of shape %s, expected every spatial size and the channels >= 1"
                         % (op, x.shape))


class Geometry:
    """A pooling window's validated geometry over dims spatial dims: kernel, stride,
    dilation, pads ((before, after) per dim) and the output sizes."""

    def __init__(self, op, spatial, kernel_size, stride, padding, dilation=1, ceil_mode=False):
        dims = len(spatial)
        self.kernel = per_dim(op, "kernel_size", kernel_size, dims, 1)
        self.stride = self.kernel if stride is None or stride == () or stride == [] \
            else per_dim(op, "stride", stride, dims, 1)
        self.dilation = per_dim(op, "dilation", dilation, dims, 1)
        self.pads, symmetric = per_side_padding(op, padding, dims)
        self.spatial = tuple(spatial)
        effective = [d * (k - 1) + 1 for k, d in zip(self.kernel, self.dilation)]
        for (before, after), k, e in zip(self.pads, self.kernel, effective):
            # torch's rule for its symmetric padding; a per-side pad must leave every
            # window at least one real cell
            if symmetric and 2 * before > k:
                raise ValueError("%s: got padding %s with kernel_size %s, expected each pad at most half "
                                 "the kernel (as torch)" % (op, padding, kernel_size))
            if not symmetric and (before >= e or after >= e):
                raise ValueError("%s: got padding %s with kernel_size %s, expected each pad smaller than "
                                 "the (dilated) kernel" % (op, padding, kernel_size))
        out = []
        for size, (before, after), e, s in zip(spatial, self.pads, effective, self.stride):
            span = size + before + after - e
            if span < 0:
                raise ValueError("%s: got input of spatial size %s with padding %s, smaller than the "
                                 "(dilated) kernel %s" % (op, self.spatial, self.pads, tuple(effective)))
            count = (-(-span // s) if ceil_mode else span // s) + 1
            # torch: in ceil_mode the last window must start inside the input or its left pad
            if ceil_mode and (count - 1) * s >= size + before:
                count -= 1
            out.append(count)
        self.out = tuple(out)
        if any(o < 1 for o in out):
            raise ValueError("%s: input %s with kernel %s, stride %s and padding %s gives output size %s, "
                             "expected >= 1" % (op, self.spatial, self.kernel, self.stride, self.pads, self.out))
        for axis in range(dims):
            # a dilated kernel can step over every real cell (torch returns -inf there,
            # with an index outside the input): refuse it
            if not self.table(axis)[1].any(axis=0).all():
                raise ValueError("%s: with kernel %s, dilation %s and padding %s some window along spatial dim %d "
                                 "covers only padding, expected every window to hold an input cell"
                                 % (op, self.kernel, self.dilation, self.pads, axis))

    def table(self, axis):
        """(coordinates [k, out], real [k, out]) along spatial axis: output o's offset j
        reads input o * stride - before + j * dilation."""
        o = np.arange(self.out[axis])
        j = np.arange(self.kernel[axis])[:, None]
        coordinates = o * self.stride[axis] - self.pads[axis][0] + j * self.dilation[axis]
        real = (coordinates >= 0) & (coordinates < self.spatial[axis])
        return np.clip(coordinates, 0, self.spatial[axis] - 1), real


def adaptive_bounds(size, out):
    """torch's adaptive windows along one dim: output o covers [floor(o * size / out),
    ceil((o + 1) * size / out))."""
    o = np.arange(out)
    return (o * size) // out, -(-((o + 1) * size) // out)


def adaptive_table(size, out):
    """A window table for adaptive windows: offset j of output o reads start + j, clamped
    to the window's last cell (a repeat of that cell never wins a strict '>')."""
    start, end = adaptive_bounds(size, out)
    longest = int((end - start).max())
    coordinates = np.minimum(start + np.arange(longest)[:, None], end - 1)
    return coordinates, np.ones(coordinates.shape, dtype=bool)


def check_output_size(op, output_size, dims):
    sizes = per_dim(op, "output_size", output_size, dims, 0)
    if any(s < 1 for s in sizes):
        raise ValueError("%s: got output_size=%r, expected sizes >= 1" % (op, output_size))
    return sizes


# ---- max pooling over window tables --------------------------------------------------------

def _along(array, axis, dims):
    """array [...] shaped to broadcast along spatial axis of [n, *spatial, c]."""
    shape = [1] * (dims + 2)
    shape[axis + 1] = -1
    return array.reshape(shape)


def _spatial(array, axis, dims):
    """array [out] shaped as the index of spatial axis among dims broadcast indices."""
    shape = [1] * dims
    shape[axis] = -1
    return array.reshape(shape)


def max_pool_forward(x, tables):
    """Max over windows described by one table per spatial dim (see the module
    docstring): x [n, *spatial, c] -> (y [n, *out, c], indices int64 of y's shape, each
    the flat in-plane index of its window's maximum). As torch's CPU loop: row-major
    window order, a strict '>' keeps the first maximum, a NaN always takes over (NaN
    propagates), padded cells are never read."""
    dims = x.ndim - 2
    spatial = x.shape[1:-1]
    plane_strides = [int(np.prod(spatial[a + 1:])) for a in range(dims)]
    out_shape = (x.shape[0],) + tuple(t[0].shape[1] for t in tables) + (x.shape[-1],)
    best = np.full(out_shape, -np.inf, dtype=x.dtype)
    where = np.zeros(out_shape, dtype=np.int64)
    seen = np.zeros(out_shape, dtype=bool)
    for offsets in itertools.product(*(range(t[0].shape[0]) for t in tables)):
        index = (slice(None),) + tuple(_spatial(t[0][j], a, dims) for a, (t, j) in enumerate(zip(tables, offsets))) \
            + (slice(None),)
        value = x[index]
        real = np.ones((1,) * (dims + 2), dtype=bool)
        flat = 0
        for a, (t, j) in enumerate(zip(tables, offsets)):
            real = real & _along(t[1][j], a, dims)
            flat = flat + _along(t[0][j], a, dims) * plane_strides[a]
        take = real & (~seen | (value > best) | np.isnan(value))
        np.copyto(best, value, where=take)
        np.copyto(where, np.broadcast_to(flat, out_shape), where=take)
        seen |= real
    return best, where


def scatter_to_planes(grad_y, indices, x_shape):
    """grad_x [x_shape]: each grad_y entry added to the in-plane cell its index names
    (the gradient of max pooling; overlapping windows accumulate)."""
    n, channels = x_shape[0], x_shape[-1]
    plane = int(np.prod(x_shape[1:-1]))
    batch = np.arange(n).reshape((-1,) + (1,) * (grad_y.ndim - 1))
    channel = np.arange(channels)
    flat = (batch * plane + indices) * channels + channel
    summed = np.bincount(flat.ravel(), weights=grad_y.ravel().astype(np.float64), minlength=n * plane * channels)
    return summed.astype(grad_y.dtype, copy=False).reshape(x_shape)


def check_indices(op, indices, plane):
    """indices must be int64 in-plane indices within [0, plane)."""
    if indices.dtype.kind not in "iu":
        raise TypeError("%s: got indices of dtype %s, expected int64" % (op, indices.dtype))
    if indices.size and (indices.min() < 0 or indices.max() >= plane):
        raise ValueError("%s: got indices in [%d, %d], expected in-plane indices in [0, %d) for the output size"
                         % (op, indices.min(), indices.max(), plane))


# ---- separable linear maps (average pooling, adaptive average pooling, interpolation) -----

def apply_separable(x, matrices):
    """x [n, *spatial, c] with matrix [out_a, in_a] applied along each spatial axis a
    (None: that axis unchanged) -> [n, *out, c]."""
    for axis, matrix in enumerate(matrices):
        if matrix is None:
            continue
        moved = np.moveaxis(x, axis + 1, -1)
        x = np.moveaxis(moved @ matrix.T.astype(x.dtype, copy=False), -1, axis + 1)
    return np.ascontiguousarray(x)


def transpose_separable(grad_y, matrices):
    """The gradient of apply_separable: the transposed matrices applied to grad_y."""
    return apply_separable(grad_y, [None if m is None else m.T for m in matrices])


def avg_pool_matrices(geometry, count_include_pad=True, divisor_override=None):
    """One [out, in] matrix per spatial dim whose product over dims is average pooling,
    with torch's divisor: a window clipped to the padded input (ceil_mode windows can
    hang past it), counting pads when count_include_pad, else only its real cells; or
    divisor_override."""
    matrices = []
    for axis, size in enumerate(geometry.spatial):
        kernel, stride, (before, after) = geometry.kernel[axis], geometry.stride[axis], geometry.pads[axis]
        start = np.arange(geometry.out[axis]) * stride - before
        end = np.minimum(start + kernel, size + after)
        cells = np.arange(size)
        inside = (cells >= start[:, None]) & (cells < end[:, None])
        if divisor_override is not None:
            divisor = np.ones(len(start))
        elif count_include_pad:
            divisor = (end - start).astype(np.float64)
        else:
            divisor = (np.minimum(end, size) - np.maximum(start, 0)).astype(np.float64)
        matrices.append(inside / divisor[:, None])
    if divisor_override is not None:
        matrices[0] = matrices[0] / float(divisor_override)
    return matrices


def adaptive_avg_matrix(size, out):
    start, end = adaptive_bounds(size, out)
    cells = np.arange(size)
    inside = (cells >= start[:, None]) & (cells < end[:, None])
    return inside / (end - start)[:, None].astype(np.float64)


def _source_scale(size, out, scale_factor, align_corners):
    """torch's area_pixel_compute_scale: output step in input cells."""
    if align_corners:
        return (size - 1) / (out - 1) if out > 1 else 0.0
    return 1.0 / scale_factor if scale_factor is not None and scale_factor > 0 else size / out


def nearest_matrix(size, out, scale_factor, exact=False):
    """torch's nearest (floor(dst * scale)) or nearest-exact (floor((dst + 0.5) * scale)),
    computed in float32 as torch computes the scale, so that the same cells are picked."""
    scale = np.float32(1.0 / scale_factor) if scale_factor is not None and scale_factor > 0 \
        else np.float32(size) / np.float32(out)
    dst = np.arange(out, dtype=np.float32) + (np.float32(0.5) if exact else np.float32(0.0))
    source = np.minimum(np.floor(dst * scale).astype(np.int64), size - 1)
    matrix = np.zeros((out, size))
    matrix[np.arange(out), source] = 1.0
    return matrix


def linear_matrix(size, out, scale_factor, align_corners):
    """torch's linear interpolation weights along one dim."""
    scale = _source_scale(size, out, scale_factor, align_corners)
    dst = np.arange(out, dtype=np.float64)
    source = dst * scale if align_corners else np.maximum(scale * (dst + 0.5) - 0.5, 0.0)
    low = np.minimum(np.floor(source).astype(np.int64), size - 1)
    high = np.minimum(low + 1, size - 1)
    fraction = source - low
    matrix = np.zeros((out, size))
    rows = np.arange(out)
    np.add.at(matrix, (rows, low), 1.0 - fraction)
    np.add.at(matrix, (rows, high), fraction)
    return matrix


def cubic_matrix(size, out, scale_factor, align_corners, a=-0.75):
    """torch's bicubic weights along one dim (Keys' kernel with A = -0.75; the 4 taps
    clamped to the border)."""
    scale = _source_scale(size, out, scale_factor, align_corners)
    dst = np.arange(out, dtype=np.float64)
    source = dst * scale if align_corners else scale * (dst + 0.5) - 0.5
    base = np.floor(source)
    t = source - base

    def near(d):   # |d| <= 1
        return ((a + 2) * d - (a + 3)) * d * d + 1

    def far(d):    # 1 < |d| < 2
        return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a

    weights = (far(t + 1), near(t), near(1 - t), far(2 - t))
    matrix = np.zeros((out, size))
    rows = np.arange(out)
    for tap, weight in enumerate(weights):
        np.add.at(matrix, (rows, np.clip(base.astype(np.int64) - 1 + tap, 0, size - 1)), weight)
    return matrix
