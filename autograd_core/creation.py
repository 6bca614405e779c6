"""Creation functions beyond tensor.py's basic ones, with PyTorch's names, arguments and
dtypes: empty, *_like, randint, randperm, linspace, logspace, tril_indices, triu_indices.

None of them is differentiable (the results are new leaves, requires_grad as asked), so
they are plain functions exported by the package, like zeros and randn, not registered
ops. Random ones draw from the default generator (manual_seed) unless given one.
"""
import numpy as np

from .tensor import _DEFAULT_FLOAT, Tensor, _shape_arg, default_generator

__all__ = ["empty", "empty_like", "full_like", "rand_like", "randn_like", "randint", "randint_like", "randperm",
           "linspace", "logspace", "tril_indices", "triu_indices"]


def _shape(op, shape):
    shape = _shape_arg(shape)
    if any(isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or n < 0 for n in shape):
        raise ValueError("%s: got size %s, expected non-negative ints" % (op, shape))
    return tuple(int(n) for n in shape)


def _data(op, like):
    if isinstance(like, Tensor):
        return like.data
    if isinstance(like, np.ndarray):
        return like
    raise TypeError("%s: got %s, expected a Tensor" % (op, type(like).__name__))


def _float_dtype(op, dtype):
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise TypeError("%s: got dtype %s, expected a float dtype" % (op, dtype))
    return dtype


def _rng(generator):
    return generator if generator is not None else default_generator()


def empty(*size, dtype=_DEFAULT_FLOAT, requires_grad=False):
    """A [*size] tensor whose values are unspecified (zeros here, for reproducibility)."""
    return Tensor(np.zeros(_shape("empty", size), dtype=dtype), requires_grad=requires_grad)


def empty_like(input, dtype=None, requires_grad=False):
    """A tensor of input's shape and dtype (or dtype) with unspecified values (zeros here)."""
    data = _data("empty_like", input)
    return Tensor(np.zeros(data.shape, dtype=dtype or data.dtype), requires_grad=requires_grad)


def full_like(input, fill_value, dtype=None, requires_grad=False):
    """A tensor of input's shape filled with fill_value, in input's dtype unless dtype is given."""
    data = _data("full_like", input)
    if isinstance(fill_value, Tensor):
        fill_value = fill_value.item()
    if not isinstance(fill_value, (bool, int, float, np.number, np.bool_)):
        raise TypeError("full_like: got fill_value=%r, expected a number" % (fill_value,))
    return Tensor(np.full(data.shape, fill_value, dtype=dtype or data.dtype), requires_grad=requires_grad)


def rand_like(input, dtype=None, requires_grad=False, generator=None):
    """Uniform [0, 1) samples of input's shape and (float) dtype."""
    data = _data("rand_like", input)
    dtype = _float_dtype("rand_like", dtype or data.dtype)
    return Tensor(_rng(generator).random(data.shape).astype(dtype), requires_grad=requires_grad)


def randn_like(input, dtype=None, requires_grad=False, generator=None):
    """Standard normal samples of input's shape and (float) dtype."""
    data = _data("randn_like", input)
    dtype = _float_dtype("randn_like", dtype or data.dtype)
    return Tensor(_rng(generator).standard_normal(data.shape).astype(dtype), requires_grad=requires_grad)


def _integers(op, low, high, shape, dtype, generator):
    for name, value in (("low", low), ("high", high)):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            raise TypeError("%s: got %s=%r, expected an int" % (op, name, value))
    if low >= high:
        raise ValueError("%s: got low=%d and high=%d, expected low < high" % (op, low, high))
    return Tensor(_rng(generator).integers(low, high, size=shape).astype(dtype))


def randint(low, high=None, size=None, dtype=np.int64, generator=None, requires_grad=False):
    """Uniform integers in [low, high) of shape size (int64): randint(high, size) or
    randint(low, high, size), as in torch."""
    if size is None:
        if high is None or not isinstance(high, (tuple, list)):
            raise TypeError("randint: got no size, expected randint(high, size) or randint(low, high, size)")
        low, high, size = 0, low, high
    result = _integers("randint", low, high, _shape("randint", (size,)), dtype, generator)
    return result.requires_grad_(requires_grad) if requires_grad else result


def randint_like(input, low, high=None, dtype=None, generator=None):
    """Uniform integers in [low, high) (or [0, low)) of input's shape, in input's dtype."""
    data = _data("randint_like", input)
    if high is None:
        low, high = 0, low
    return _integers("randint_like", low, high, data.shape, dtype or data.dtype, generator)


def randperm(n, dtype=np.int64, generator=None, requires_grad=False):
    """A random permutation of 0 .. n-1 (int64)."""
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError("randperm: got n=%r, expected a non-negative int" % (n,))
    return Tensor(_rng(generator).permutation(int(n)).astype(dtype), requires_grad=requires_grad)


def _steps(op, steps):
    if isinstance(steps, (bool, np.bool_)) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError("%s: got steps=%r, expected a non-negative int" % (op, steps))
    return int(steps)


def linspace(start, end, steps, dtype=None, requires_grad=False):
    """steps evenly spaced values from start to end, both included (float32 by default)."""
    return Tensor(_evenly_spaced("linspace", start, end, steps, dtype), requires_grad=requires_grad)


def _evenly_spaced(op, start, end, steps, dtype):
    """torch's linspace arithmetic, in the result's float dtype so that float32 values
    round as torch's do: the first half counts up from start, the second down from end."""
    steps, dtype = _steps(op, steps), np.dtype(dtype or _DEFAULT_FLOAT)
    work = dtype if dtype.kind == "f" else np.dtype(np.float64)
    first, last = work.type(start), work.type(end)
    if steps == 1:
        return np.full(1, first).astype(dtype)
    step = (last - first) / work.type(steps - 1)
    positions = np.arange(steps, dtype=work)
    values = np.where(np.arange(steps) < steps // 2, first + step * positions,
                      last - step * (work.type(steps - 1) - positions))
    return values.astype(dtype)


def logspace(start, end, steps, base=10.0, dtype=None, requires_grad=False):
    """base ** linspace(start, end, steps) (float32 by default)."""
    exponents = np.linspace(float(start), float(end), _steps("logspace", steps))
    return Tensor(np.power(float(base), exponents).astype(dtype or _DEFAULT_FLOAT), requires_grad=requires_grad)


def _triangle_indices(op, numpy_indices, row, col, offset):
    for name, value in (("row", row), ("col", col), ("offset", offset)):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            raise TypeError("%s: got %s=%r, expected an int" % (op, name, value))
    if row < 0 or col < 0:
        raise ValueError("%s: got row=%d and col=%d, expected non-negative sizes" % (op, row, col))
    rows, columns = numpy_indices(row, offset, col)
    return Tensor(np.stack([rows, columns]).astype(np.int64).reshape(2, -1))


def tril_indices(row, col, offset=0):
    """[2, N] int64: the (row, column) coordinates of the lower triangle of a [row, col]
    matrix (on and below the offset-th diagonal), in row-major order."""
    return _triangle_indices("tril_indices", np.tril_indices, row, col, offset)


def triu_indices(row, col, offset=0):
    """[2, N] int64: the coordinates of the upper triangle (on and above the offset-th
    diagonal) of a [row, col] matrix, in row-major order."""
    return _triangle_indices("triu_indices", np.triu_indices, row, col, offset)
