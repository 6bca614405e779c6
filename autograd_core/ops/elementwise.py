"""Elementwise ops with numpy broadcasting; gradients are summed back to each input's shape."""
import numpy as np

from ..function import Function
from ..tensor import Tensor
from ._util import broadcast_shape, check_float, unbroadcast


def _shape(value):
    return np.shape(value)


def _match_float(a, b):
    """An integer or bool array meeting a float array takes the float's dtype, as in
    PyTorch; numpy would promote float32 with int64 to float64 (x * counts, x / lengths)."""
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and (a.dtype.kind == "f") != (b.dtype.kind == "f"):
        if a.dtype.kind == "f":
            b = b.astype(a.dtype)
        else:
            a = a.astype(b.dtype)
    return a, b


class Add(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes = (_shape(a), _shape(b))
        broadcast_shape("add", *ctx.shapes)
        return np.add(*_match_float(a, b))

    @staticmethod
    def backward(ctx, grad):
        sa, sb = ctx.shapes
        return (unbroadcast(grad, sa) if ctx.needs_input_grad[0] else None,
                unbroadcast(grad, sb) if ctx.needs_input_grad[1] else None)


class Sub(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes = (_shape(a), _shape(b))
        broadcast_shape("sub", *ctx.shapes)
        return np.subtract(*_match_float(a, b))

    @staticmethod
    def backward(ctx, grad):
        sa, sb = ctx.shapes
        return (unbroadcast(grad, sa) if ctx.needs_input_grad[0] else None,
                unbroadcast(-grad, sb) if ctx.needs_input_grad[1] else None)


class Mul(Function):
    @staticmethod
    def forward(ctx, a, b):
        broadcast_shape("mul", _shape(a), _shape(b))
        a, b = _match_float(a, b)
        ctx.save_for_backward(a, b)
        return np.multiply(a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        return (unbroadcast(grad * b, _shape(a)) if ctx.needs_input_grad[0] else None,
                unbroadcast(grad * a, _shape(b)) if ctx.needs_input_grad[1] else None)


class Div(Function):
    @staticmethod
    def forward(ctx, a, b):
        broadcast_shape("div", _shape(a), _shape(b))
        a, b = _match_float(a, b)
        ctx.save_for_backward(a, b)
        out = np.true_divide(a, b)
        if not any(isinstance(v, np.ndarray) and v.dtype.kind == "f" for v in (a, b)):
            # integers divided: a float made here is float32, the default (numpy says float64)
            out = out.astype(np.float32)
        return out

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        grad_a = grad / b
        return (unbroadcast(grad_a, _shape(a)) if ctx.needs_input_grad[0] else None,
                unbroadcast(-grad_a * a / b, _shape(b)) if ctx.needs_input_grad[1] else None)


class Neg(Function):
    @staticmethod
    def forward(ctx, a):
        return np.negative(a)

    @staticmethod
    def backward(ctx, grad):
        return -grad


class Pow(Function):
    """a ** b for a Tensor or scalar exponent b (and a scalar or Tensor base)."""

    @staticmethod
    def forward(ctx, a, b):
        broadcast_shape("pow", _shape(a), _shape(b))
        a, b = _match_float(a, b)
        out = np.power(a, b)
        ctx.save_for_backward(a, b, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        a, b, out = ctx.saved_tensors
        grad_a = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_a = unbroadcast(grad * b * np.power(a, np.subtract(b, 1)), _shape(a))
        if ctx.needs_input_grad[1]:
            # d(a^b)/db = a^b log a; defined as 0 where a == 0 (the limit for b > 0)
            with np.errstate(divide="ignore", invalid="ignore"):
                log_a = np.where(a > 0, np.log(np.where(a > 0, a, 1)), np.where(a == 0, 0, np.nan))
            grad_b = unbroadcast(grad * out * log_a, _shape(b))
        return grad_a, grad_b


class Exp(Function):
    @staticmethod
    def forward(ctx, a):
        out = np.exp(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * out


class Log(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return np.log(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return grad / a


class Sqrt(Function):
    @staticmethod
    def forward(ctx, a):
        out = np.sqrt(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad / (2 * out)


class Abs(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return np.abs(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return grad * np.sign(a)


class Clip(Function):
    """Clamp to [low, high]; the gradient passes where the input was inside the range."""

    @staticmethod
    def forward(ctx, a, low, high):
        if low is not None and high is not None and low > high:
            raise ValueError("clip: got low=%s > high=%s" % (low, high))
        mask = np.ones(a.shape, dtype=bool)
        if low is not None:
            mask &= a >= low
        if high is not None:
            mask &= a <= high
        ctx.save_for_backward(mask)
        return np.clip(a, low, high)

    @staticmethod
    def backward(ctx, grad):
        (mask,) = ctx.saved_tensors
        return grad * mask, None, None


class Maximum(Function):
    """Elementwise max; at ties the gradient is split evenly."""

    pick, wins = staticmethod(np.maximum), staticmethod(np.greater)

    @classmethod
    def forward(cls, ctx, a, b):
        broadcast_shape(cls.__name__.lower(), _shape(a), _shape(b))
        a, b = _match_float(a, b)
        ctx.save_for_backward(a, b)
        ctx.wins = cls.wins
        return cls.pick(a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        share_a = ctx.wins(a, b) + 0.5 * (a == b)
        return (unbroadcast(grad * share_a, _shape(a)) if ctx.needs_input_grad[0] else None,
                unbroadcast(grad * (1 - share_a), _shape(b)) if ctx.needs_input_grad[1] else None)


class Minimum(Maximum):
    """Elementwise min; at ties the gradient is split evenly."""

    pick, wins = staticmethod(np.minimum), staticmethod(np.less)


class Where(Function):
    @staticmethod
    def forward(ctx, condition, a, b):
        condition = np.asarray(condition)
        if condition.dtype != bool:
            raise TypeError("where: got a condition of dtype %s, expected bool" % condition.dtype)
        broadcast_shape("where", condition.shape, _shape(a), _shape(b))
        ctx.save_for_backward(condition)
        ctx.shapes = (_shape(a), _shape(b))
        return np.where(condition, *_match_float(a, b))

    @staticmethod
    def backward(ctx, grad):
        (condition,) = ctx.saved_tensors
        sa, sb = ctx.shapes
        zero = np.zeros((), dtype=grad.dtype)
        return (None,
                unbroadcast(np.where(condition, grad, zero), sa) if ctx.needs_input_grad[1] else None,
                unbroadcast(np.where(condition, zero, grad), sb) if ctx.needs_input_grad[2] else None)


class Tanh(Function):
    @staticmethod
    def forward(ctx, a):
        out = np.tanh(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * (1 - out * out)


def _sigmoid(a):
    # exp of a non-positive number only, so it never overflows
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1 / (1 + e), e / (1 + e)).astype(a.dtype, copy=False)


class Sigmoid(Function):
    @staticmethod
    def forward(ctx, a):
        out = _sigmoid(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * out * (1 - out)


class Relu(Function):
    @staticmethod
    def forward(ctx, a):
        out = np.maximum(a, 0)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * (out > 0)


class LeakyRelu(Function):
    @staticmethod
    def forward(ctx, a, negative_slope):
        ctx.save_for_backward(a)
        ctx.negative_slope = negative_slope
        return np.where(a > 0, a, a * negative_slope)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return np.where(a > 0, grad, grad * ctx.negative_slope), None


class Elu(Function):
    @staticmethod
    def forward(ctx, a, alpha):
        negative = alpha * np.expm1(np.minimum(a, 0))
        ctx.save_for_backward(a, negative)
        ctx.alpha = alpha
        return np.where(a > 0, a, negative)

    @staticmethod
    def backward(ctx, grad):
        a, negative = ctx.saved_tensors
        return np.where(a > 0, grad, grad * (negative + ctx.alpha)), None


class Softplus(Function):
    """log(1 + exp(a)), computed stably."""

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return np.maximum(a, 0) + np.log1p(np.exp(-np.abs(a)))

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return grad * _sigmoid(a)


class Cast(Function):
    @staticmethod
    def forward(ctx, a, dtype):
        ctx.dtype = a.dtype
        return a.astype(dtype)

    @staticmethod
    def backward(ctx, grad):
        return grad.astype(ctx.dtype), None


# ---- functional forms ---------------------------------------------------------------
def _float_op(name, cls):
    def op(x):
        check_float(name, _data(x))
        return cls.apply(x)
    op.__name__ = name
    op.__doc__ = "Elementwise %s (any shape -> same shape)." % name
    return op


def _data(x):
    return x.data if isinstance(x, Tensor) else np.asarray(x)


def _tensor_arg(op, x):
    if isinstance(x, Tensor):
        return x
    if isinstance(x, (int, float, bool, np.ndarray, np.generic, list)):
        return Tensor(x)
    raise TypeError("%s: got %s, expected a Tensor, array or number" % (op, type(x).__name__))


add = Add.apply
sub = Sub.apply
mul = Mul.apply
div = Div.apply
neg = Neg.apply
pow = Pow.apply
exp = _float_op("exp", Exp)
log = _float_op("log", Log)
sqrt = _float_op("sqrt", Sqrt)
tanh = _float_op("tanh", Tanh)
sigmoid = _float_op("sigmoid", Sigmoid)
softplus = _float_op("softplus", Softplus)


def abs(x):
    """Elementwise absolute value; the gradient at 0 is 0."""
    return Abs.apply(_tensor_arg("abs", x))


def relu(x):
    """max(x, 0) elementwise."""
    return Relu.apply(_tensor_arg("relu", x))


def leaky_relu(x, negative_slope=0.01):
    """x where x > 0, negative_slope * x elsewhere."""
    x = _tensor_arg("leaky_relu", x)
    check_float("leaky_relu", x.data)  # an integer input would silently come back as float64
    return LeakyRelu.apply(x, negative_slope)


def elu(x, alpha=1.0):
    """x where x > 0, alpha * (exp(x) - 1) elsewhere."""
    check_float("elu", _data(x))
    return Elu.apply(x, alpha)


def clip(x, min=None, max=None):
    """Clamp x to [min, max] (either may be None)."""
    if min is None and max is None:
        raise ValueError("clip: got min=None and max=None, expected at least one bound")
    return Clip.apply(_tensor_arg("clip", x), min, max)


def _operand(op, x):
    # a Python number stays a number: wrapped in a Tensor it would be an int64/float32 array
    # and numpy would promote float32 with it (maximum(2, x) gave float64)
    return x if isinstance(x, (int, float, np.number, np.bool_)) else _tensor_arg(op, x)


def maximum(a, b):
    return Maximum.apply(_operand("maximum", a), b)


def minimum(a, b):
    return Minimum.apply(_operand("minimum", a), b)


def where(condition, a, b):
    """Elements of a where condition holds, of b elsewhere (broadcast)."""
    if isinstance(a, (int, float, np.number)) and isinstance(b, (int, float, np.number)):
        # two numbers, no tensor: numpy would make float64, but a float built from Python
        # numbers is float32 here, as in tensor(1.0), so where(mask, 1.0, 0.0) is float32
        condition = _data(condition)
        if condition.dtype != bool:
            raise TypeError("where: got a condition of dtype %s, expected bool" % condition.dtype)
        values = np.where(condition, a, b)
        return Tensor(values.astype(np.float32) if values.dtype == np.float64 else values)
    return Where.apply(_data(condition), a, b)


def cast(x, dtype):
    dtype = np.dtype(dtype)
    if dtype == x.dtype:
        return x
    if dtype.kind != "f":  # integer/bool results carry no gradient
        return Tensor(x.data.astype(dtype))
    return Cast.apply(x, dtype)
