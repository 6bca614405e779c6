"""Tensor methods and operators: each is a one-line wrapper around an op in ops/."""
import types

import numpy as np

from .tensor import Tensor
from .ops import elementwise as E, linalg as L, reduce as R, shape as S
from .ops._util import broadcast_shape


def _r(fn):
    """The reflected form of a binary op: other <op> self."""
    return lambda self, other: fn(other, self)


def _compare(ufunc):
    def method(self, other):
        other = other.data if isinstance(other, Tensor) else other
        # numpy's own message would not say which op failed
        broadcast_shape(ufunc.__name__, self.data.shape, np.shape(other))
        return Tensor(ufunc(self.data, other))
    return method


_METHODS = {
    "__add__": E.add, "__radd__": _r(E.add),
    "__sub__": E.sub, "__rsub__": _r(E.sub),
    "__mul__": E.mul, "__rmul__": _r(E.mul),
    "__truediv__": E.div, "__rtruediv__": _r(E.div),
    "__pow__": E.pow, "__rpow__": _r(E.pow),
    "__matmul__": L.matmul, "__rmatmul__": _r(L.matmul),
    "__neg__": E.neg, "__pos__": lambda self: self, "__abs__": E.abs,
    "__getitem__": S.getitem,
    "__lt__": _compare(np.less), "__le__": _compare(np.less_equal),
    "__gt__": _compare(np.greater), "__ge__": _compare(np.greater_equal),
    "__eq__": _compare(np.equal), "__ne__": _compare(np.not_equal),
    "add": E.add, "sub": E.sub, "mul": E.mul, "div": E.div, "pow": E.pow, "matmul": L.matmul,
    "neg": E.neg, "exp": E.exp, "log": E.log, "sqrt": E.sqrt, "abs": E.abs, "clip": E.clip, "clamp": E.clip,
    "maximum": E.maximum, "minimum": E.minimum, "tanh": E.tanh, "sigmoid": E.sigmoid, "relu": E.relu,
    "leaky_relu": E.leaky_relu, "elu": E.elu, "softplus": E.softplus,
    "sum": R.sum, "mean": R.mean, "max": R.max, "min": R.min, "var": R.var, "std": R.std,
    "softmax": R.softmax, "log_softmax": R.log_softmax, "argmax": R.argmax, "argmin": R.argmin,
    "reshape": S.reshape, "view": S.reshape, "flatten": S.flatten, "transpose": S.transpose,
    "permute": S.permute, "expand": S.expand, "broadcast_to": S.broadcast_to, "squeeze": S.squeeze,
    "unsqueeze": S.unsqueeze, "split": S.split, "chunk": S.chunk, "pad": S.pad,
}

def _as_method(fn):
    # Function.apply is a bound classmethod, which would not bind self as a method
    if isinstance(fn, types.FunctionType):
        return fn
    return lambda self, *args, **kwargs: fn(self, *args, **kwargs)


for _name, _fn in _METHODS.items():
    setattr(Tensor, _name, _as_method(_fn))
