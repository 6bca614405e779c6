"""Resampling as differentiable ops, channels-last ([n, l, c], [n, h, w, c],
[n, d, h, w, c]): interpolate (nearest, nearest-exact, linear, bilinear, bicubic,
trilinear, area) and pixel_shuffle / pixel_unshuffle.

Every interpolation mode is linear in the input and separable by dim, so it is one
[out, in] weight matrix per spatial dim (kernels/sampling.py builds them with torch's
source-index rules) applied by the same Function as average pooling; the gradient applies
their transposes. pixel_shuffle is a reshape and a permute of existing ops."""
import math

from ..kernels import sampling
from ..registry import register
from ..tensor import Tensor
from .pool import Separable

class Resample(Separable):
    """Separable's matrices applied along the spatial dims, for interpolate: every mode is
    linear in the input (the matrices are structural), so its backward's derivative is its
    forward, to any order (see function.Function)."""

    name = "interpolate"
    linear = True


_MODES = {"nearest": (1, 2, 3), "nearest-exact": (1, 2, 3), "area": (1, 2, 3), "linear": (1,),
          "bilinear": (2,), "bicubic": (2,), "trilinear": (3,)}


def _output_sizes(op, spatial, size, scale_factor, recompute_scale_factor):
    """(output sizes, the scale factor per dim the source index uses (None: in / out))."""
    dims = len(spatial)
    if (size is None) == (scale_factor is None):
        raise ValueError("%s: got size=%r and scale_factor=%r, expected exactly one of them"
                         % (op, size, scale_factor))
    if size is not None:
        sizes = sampling.check_output_size(op, size, dims) if sampling.is_integer(size) or len(size) == dims \
            else None
        if sizes is None:
            raise ValueError("%s: got size=%r for %d spatial dims, expected an int or %d ints"
                             % (op, size, dims, dims))
        return sizes, (None,) * dims
    factors = (scale_factor,) * dims if isinstance(scale_factor, (int, float)) else tuple(scale_factor)
    if len(factors) != dims or not all(isinstance(f, (int, float)) and f > 0 for f in factors):
        raise ValueError("%s: got scale_factor=%r, expected a positive number or %d of them"
                         % (op, scale_factor, dims))
    sizes = tuple(int(math.floor(s * float(f))) for s, f in zip(spatial, factors))
    if any(s < 1 for s in sizes):
        raise ValueError("%s: input sizes %s with scale_factor %r give output sizes %s, expected >= 1"
                         % (op, tuple(spatial), scale_factor, sizes))
    # torch uses the given factor for the source index unless told to recompute it
    return sizes, ((None,) * dims if recompute_scale_factor else tuple(float(f) for f in factors))


@register("interpolate")
def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None, antialias=False):
    """Resample input [batch, *spatial, channels] (1 to 3 spatial dims, channels last) to
    size (int or one per dim) or by scale_factor (output = floor(in * factor)), as torch's
    F.interpolate: mode 'nearest', 'nearest-exact', 'area' (any dims), 'linear' (1-D),
    'bilinear' and 'bicubic' (2-D), 'trilinear' (3-D); align_corners for the
    interpolating modes only. Returns [batch, *size, channels]."""
    op = "interpolate"
    if not isinstance(input, Tensor):
        raise TypeError("%s: got input of type %s, expected a Tensor" % (op, type(input).__name__))
    dims = input.data.ndim - 2
    if mode not in _MODES:
        raise ValueError("%s: got mode=%r, expected one of %s" % (op, mode, ", ".join(sorted(_MODES))))
    if dims not in _MODES[mode]:
        raise ValueError("%s: got mode=%r for input of shape %s, expected %s" % (
            op, mode, input.shape, " or ".join("%d-D [n, %s, c]" % (d, ", ".join("lhw"[3 - d:] if d < 3 else "dhw"))
                                               for d in _MODES[mode])))
    if align_corners is not None and mode not in ("linear", "bilinear", "bicubic", "trilinear"):
        raise ValueError("%s: got align_corners=%r with mode=%r, expected align_corners only with linear, "
                         "bilinear, bicubic or trilinear" % (op, align_corners, mode))
    if antialias:
        raise ValueError("%s: got antialias=True, expected False (not implemented)" % op)
    sampling.check_input(op, input.data, dims)
    spatial = input.data.shape[1:-1]
    sizes, factors = _output_sizes(op, spatial, size, scale_factor, recompute_scale_factor)
    corners = bool(align_corners)
    if mode == "area":  # adaptive average pooling to the output sizes
        matrices = [sampling.adaptive_avg_matrix(s, o) for s, o in zip(spatial, sizes)]
    elif mode in ("nearest", "nearest-exact"):
        matrices = [sampling.nearest_matrix(s, o, f, exact=mode == "nearest-exact")
                    for s, o, f in zip(spatial, sizes, factors)]
    elif mode == "bicubic":
        matrices = [sampling.cubic_matrix(s, o, f, corners) for s, o, f in zip(spatial, sizes, factors)]
    else:
        matrices = [sampling.linear_matrix(s, o, f, corners) for s, o, f in zip(spatial, sizes, factors)]
    return Resample.apply(input, matrices)


def _factor(op, name, value):
    if not sampling.is_integer(value) or value < 1:
        raise ValueError("%s: got %s=%r, expected a positive int" % (op, name, value))
    return int(value)


@register("pixel_shuffle")
def pixel_shuffle(input, upscale_factor):
    """[*, h, w, c * r * r] -> [*, h * r, w * r, c] (r = upscale_factor), torch's order
    read through channels-last: channel c * r * r + i * r + j goes to pixel
    (h * r + i, w * r + j) of channel c."""
    op = "pixel_shuffle"
    r = _factor(op, "upscale_factor", upscale_factor)
    shape = tuple(input.shape)
    if len(shape) < 3 or shape[-1] % (r * r):
        raise ValueError("%s: got input of shape %s, expected [*, h, w, c * %d] (channels last, divisible by "
                         "upscale_factor**2)" % (op, shape, r * r))
    batch, (height, width, channels) = shape[:-3], shape[-3:]
    b = len(batch)
    split = input.reshape(batch + (height, width, channels // (r * r), r, r))
    moved = split.permute(*range(b), b, b + 3, b + 1, b + 4, b + 2)
    return moved.reshape(batch + (height * r, width * r, channels // (r * r)))


@register("pixel_unshuffle")
def pixel_unshuffle(input, downscale_factor):
    """[*, h * r, w * r, c] -> [*, h, w, c * r * r] (r = downscale_factor): the inverse
    of pixel_shuffle."""
    op = "pixel_unshuffle"
    r = _factor(op, "downscale_factor", downscale_factor)
    shape = tuple(input.shape)
    if len(shape) < 3 or shape[-3] % r or shape[-2] % r:
        raise ValueError("%s: got input of shape %s, expected [*, h * %d, w * %d, c] (channels last)"
                         % (op, shape, r, r))
    batch, (height, width, channels) = shape[:-3], shape[-3:]
    b = len(batch)
    split = input.reshape(batch + (height // r, r, width // r, r, channels))
    moved = split.permute(*range(b), b, b + 2, b + 4, b + 1, b + 3)
    return moved.reshape(batch + (height // r, width // r, channels * r * r))


@register("upsample")
def upsample(input, size=None, scale_factor=None, mode="nearest", align_corners=None):
    """torch's older name of interpolate (same arguments and result)."""
    return interpolate(input, size, scale_factor, mode, align_corners)
