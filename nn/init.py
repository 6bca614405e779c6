"""Parameter initialisation, in place on a tensor's numpy data.

Every function takes a Tensor/Parameter (or a bare numpy array), overwrites its values
without changing its shape or dtype, and returns it, like PyTorch's ``torch.nn.init``.

Fan computation follows the project's weight layouts:
  * 2-D ``[out_features, in_features]`` (Linear): fan_in = in, fan_out = out.
  * N-D with N >= 3, ``[*kernel, in_channels, out_channels]`` (NHWC conv weights are
    ``[kh, kw, in, out]``): fan_in = prod(kernel) * in, fan_out = prod(kernel) * out.

Randomness comes from autograd_core's default numpy Generator (``manual_seed`` reseeds it),
shared with ``nn.Dropout``, so one seed makes a whole model build and training run
reproducible.
Each function also accepts its own ``generator=``.
"""
import math

import numpy as np

import autograd_core

__all__ = [
    "manual_seed", "get_generator", "calculate_gain", "compute_fans",
    "uniform_", "normal_", "constant_", "ones_", "zeros_",
    "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_",
]



def manual_seed(seed):
    """Reseed the generator that nn.init, nn.Dropout and autograd_core.rand/randn draw
    from (it is autograd_core's default generator); returns it."""
    return autograd_core.manual_seed(seed)


def get_generator():
    """The numpy Generator that nn.init and nn.Dropout use when given none."""
    return autograd_core.default_generator()


def _array(tensor, op):
    """The numpy array behind ``tensor`` (a Tensor/Parameter or an ndarray)."""
    array = tensor if isinstance(tensor, np.ndarray) else getattr(tensor, "data", None)
    if not isinstance(array, np.ndarray):
        raise TypeError("nn.init.%s: expected a Tensor, Parameter or numpy array, got %s"
                        % (op, type(tensor).__name__))
    if not np.issubdtype(array.dtype, np.floating):
        raise TypeError("nn.init.%s: expected a floating-point tensor, got dtype %s" % (op, array.dtype))
    return array


def _fill(tensor, values, op):
    array = _array(tensor, op)
    # Assigning through [...] keeps the caller's array object (and dtype) alive: anything
    # that holds a reference to it, such as an optimizer, sees the new values.
    array[...] = values
    if hasattr(tensor, "increment_version"):  # a backward that saved it would now be wrong
        tensor.increment_version("nn.init." + op)
    return tensor


def _rng(generator):
    return autograd_core.default_generator() if generator is None else generator


def compute_fans(shape):
    """(fan_in, fan_out) for a weight of the given shape (see the module docstring)."""
    shape = tuple(shape)
    if len(shape) < 2:
        raise ValueError("nn.init.compute_fans: fan in and fan out need a weight with at least "
                         "2 dimensions, got shape %s" % (shape,))
    if len(shape) == 2:
        out_features, in_features = shape
        return in_features, out_features
    receptive_field = int(np.prod(shape[:-2]))
    return receptive_field * shape[-2], receptive_field * shape[-1]


def calculate_gain(nonlinearity, param=None):
    """The recommended gain for a nonlinearity (PyTorch's table).

    ``param`` is the negative slope of 'leaky_relu' (default 0.01).
    """
    linear_like = ("linear", "identity", "conv1d", "conv2d", "conv3d", "sigmoid")
    if nonlinearity in linear_like:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3.0
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        if isinstance(slope, bool) or not isinstance(slope, (int, float)):
            raise ValueError("nn.init.calculate_gain: negative slope %r is not a number" % (param,))
        return math.sqrt(2.0 / (1.0 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4.0
    raise ValueError("nn.init.calculate_gain: unsupported nonlinearity %r, expected one of "
                     "%s, 'tanh', 'relu', 'leaky_relu', 'selu'" % (nonlinearity, linear_like))


def _fan(shape, mode, op):
    fan_in, fan_out = compute_fans(shape)
    if mode == "fan_in":
        return fan_in
    if mode == "fan_out":
        return fan_out
    raise ValueError("nn.init.%s: mode must be 'fan_in' or 'fan_out', got %r" % (op, mode))


def uniform_(tensor, a=0.0, b=1.0, generator=None):
    """Fill with values drawn from U(a, b)."""
    array = _array(tensor, "uniform_")
    return _fill(tensor, _rng(generator).uniform(a, b, size=array.shape), "uniform_")


def normal_(tensor, mean=0.0, std=1.0, generator=None):
    """Fill with values drawn from N(mean, std**2)."""
    array = _array(tensor, "normal_")
    return _fill(tensor, _rng(generator).normal(mean, std, size=array.shape), "normal_")


def constant_(tensor, value):
    """Fill with ``value``."""
    return _fill(tensor, value, "constant_")


def ones_(tensor):
    """Fill with ones."""
    return _fill(tensor, 1.0, "ones_")


def zeros_(tensor):
    """Fill with zeros."""
    return _fill(tensor, 0.0, "zeros_")


def xavier_uniform_(tensor, gain=1.0, generator=None):
    """Glorot uniform: U(-b, b) with b = gain * sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = compute_fans(_array(tensor, "xavier_uniform_").shape)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound, generator)


def xavier_normal_(tensor, gain=1.0, generator=None):
    """Glorot normal: N(0, std**2) with std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = compute_fans(_array(tensor, "xavier_normal_").shape)
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    return normal_(tensor, 0.0, std, generator)


def kaiming_uniform_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """He uniform: U(-b, b) with b = gain * sqrt(3 / fan); ``a`` is the leaky_relu slope.

    ``kaiming_uniform_(w, a=math.sqrt(5))`` gives b = 1 / sqrt(fan_in), PyTorch's default
    for Linear and conv weights.
    """
    fan = _fan(_array(tensor, "kaiming_uniform_").shape, mode, "kaiming_uniform_")
    if fan == 0:
        return tensor  # an empty weight has nothing to fill
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / fan)
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """He normal: N(0, std**2) with std = gain / sqrt(fan); ``a`` is the leaky_relu slope."""
    fan = _fan(_array(tensor, "kaiming_normal_").shape, mode, "kaiming_normal_")
    if fan == 0:
        return tensor
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan)
    return normal_(tensor, 0.0, std, generator)
