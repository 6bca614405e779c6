"""Elementwise ops with numpy broadcasting; gradients are summed back to each input's shape.

Binary ops derive from BinaryElementwise, which holds the rules they share (broadcast
check, float matching, summing gradients back to each input's shape); each op then
says only how to compute its result and each input's gradient. Unary ops that need a
float input set ``float_input`` (checked once, in Function.apply)."""
import numpy as np

from .. import kernels
from ..function import Function
from ..grad_mode import is_grad_enabled
from ..registry import register
from ..tensor import _DEFAULT_FLOAT, Tensor, as_tensor, numpy_dtype
from ._util import broadcast_shape, number_dtype, promote, result_dtype, unbroadcast


def _scalar_shape(value):
    """The shape of a non-array operand: () for a Python number without asking numpy
    (np.shape(2.0) costs ~1 us, and x * 2.0 is common)."""
    return () if type(value) in (float, int, bool) else np.shape(value)


class BinaryElementwise(Function):
    """a (op) b with numpy broadcasting, for Tensor or number operands.

    Subclasses define ``compute(a, b)`` (numpy arrays or numbers -> array) and
    ``grad_a(grad, a, b, out)`` / ``grad_b(grad, a, b, out)``, each input's gradient at
    the broadcast shape; this class checks the shapes, casts the operands to PyTorch's
    result dtype (``promote``: int64 with float32 or with 2.5 is float32), saves a, b and
    the result, and sums each gradient back to its input's shape. A gradient is computed
    only for an input that needs it.

    ``saves_operands = False`` (add, sub: gradients that never read a, b or the result)
    saves nothing, so that changing an operand in place after the op is no error, as in
    PyTorch, and a graph of sums keeps no operand alive. ``saves_operands = "inputs"``
    (mul) saves each operand only when the other needs a gradient, and not the result, so
    that ``y = x * 2; y.add_(1)`` and ``z = y * 3; y.add_(1)`` are no error, as in PyTorch."""

    saves_operands = True
    two_operands = True
    # backward unbroadcasts each gradient to its input's shape and casts it back to the
    # input's dtype where forward promoted (tests/test_engine_fast_path.py holds every
    # subclass to it), so the engine need not check them
    exact_gradients = True

    @staticmethod
    def compute(a, b):
        raise NotImplementedError

    @classmethod
    def forward(cls, ctx, a, b):
        shape_a = a.shape if type(a) is np.ndarray else _scalar_shape(a)
        shape_b = b.shape if type(b) is np.ndarray else _scalar_shape(b)
        # equal shapes and a number always broadcast; the check costs ~1.5 us
        if shape_a != shape_b and shape_a and shape_b:
            broadcast_shape(cls.name, shape_a, shape_b)
        cast = None
        if type(a) is not np.ndarray or type(b) is not np.ndarray or a.dtype is not b.dtype:
            given = a, b
            a, b = promote(cls.name, a, b)  # (arrays of one dtype, the common case, need nothing)
            if a is not given[0] or b is not given[1]:  # an operand was cast: its gradient is cast back
                cast = tuple(value.dtype if type(value) is np.ndarray else None for value in given)
        out = cls.compute(a, b)
        if ctx is not None:  # recorded for backward (two_operands: None when nothing is recorded)
            saves = cls.saves_operands
            if saves:
                if saves is True:
                    ctx.save_for_backward(a, b, out)
                else:  # "inputs": each operand only for the other's gradient
                    needs_a, needs_b = ctx.needs_input_grad
                    ctx.save_for_backward(a if needs_b else None, b if needs_a else None, None)
            ctx.shapes = (shape_a, shape_b, cast)
        return out

    @classmethod
    def backward(cls, ctx, grad):
        # (_saved, not the saved_tensors property: the engine refuses a freed node before this)
        a, b, out = ctx._saved if cls.saves_operands else (None, None, None)
        needs_a, needs_b = ctx.needs_input_grad
        shape_a, shape_b, cast = ctx.shapes
        grad_a = grad_b = None
        if needs_a:
            grad_a = cls.grad_a(grad, a, b, out)
            if grad_a.shape != shape_a:  # (tested here: unbroadcast is a call per op otherwise)
                grad_a = unbroadcast(grad_a, shape_a)
            if cast is not None:
                grad_a = np.asarray(grad_a, dtype=cast[0])
        if needs_b:
            grad_b = cls.grad_b(grad, a, b, out)
            if grad_b.shape != shape_b:
                grad_b = unbroadcast(grad_b, shape_b)
            if cast is not None:
                grad_b = np.asarray(grad_b, dtype=cast[1])
        return grad_a, grad_b

    # Higher-order gradients: the same grad_a / grad_b formulas run on the input Tensors
    # (add, sub, mul and div are written with operators only, so one formula serves both
    # arrays and Tensors); an op whose formula needs numpy functions sets graph_grad_a/b.
    graph_grad_a = graph_grad_b = None

    @classmethod
    def differentiable_backward(cls, ctx, grad):
        a, b = ctx.inputs
        needs_a, needs_b = ctx.needs_input_grad
        shape_a, shape_b, _ = ctx.shapes  # (the engine casts graph-mode gradients itself)
        grad_a = grad_b = None
        if needs_a:
            grad_a = unbroadcast((cls.graph_grad_a or cls.grad_a)(grad, a, b, None), shape_a)
        if needs_b:
            grad_b = unbroadcast((cls.graph_grad_b or cls.grad_b)(grad, a, b, None), shape_b)
        return grad_a, grad_b


@register("add", methods=("add", "__add__"), reflected=("__radd__",))
class Add(BinaryElementwise):
    """a + b (broadcast)."""
    saves_operands = False
    compute = staticmethod(np.add)
    grad_a = grad_b = staticmethod(lambda grad, a, b, out: grad)


@register("sub", methods=("sub", "__sub__"), reflected=("__rsub__",))
class Sub(BinaryElementwise):
    """a - b (broadcast)."""
    saves_operands = False
    compute = staticmethod(np.subtract)
    grad_a = staticmethod(lambda grad, a, b, out: grad)
    grad_b = staticmethod(lambda grad, a, b, out: -grad)


@register("mul", methods=("mul", "__mul__"), reflected=("__rmul__",))
class Mul(BinaryElementwise):
    """a * b (broadcast)."""
    saves_operands = "inputs"
    compute = staticmethod(np.multiply)
    grad_a = staticmethod(lambda grad, a, b, out: grad * b)
    grad_b = staticmethod(lambda grad, a, b, out: grad * a)


@register("div", methods=("div", "__truediv__"), reflected=("__rtruediv__",))
class Div(BinaryElementwise):
    """a / b (broadcast), true division: integers divided give float32, the default
    float, as in PyTorch (numpy would say float64)."""

    @staticmethod
    def compute(a, b):
        out = np.true_divide(a, b)
        if not any(isinstance(v, np.ndarray) and v.dtype.kind == "f" for v in (a, b)):
            out = out.astype(_DEFAULT_FLOAT)
        return out

    grad_a = staticmethod(lambda grad, a, b, out: grad / b)
    grad_b = staticmethod(lambda grad, a, b, out: -grad * a / b / b)


def _pow_grad_base(grad, a, b, out):
    # d(a^b)/da = b a^(b-1), and 0 where b == 0 (a^0 is the constant 1), as in PyTorch:
    # the formula alone gives 0 * 0^-1 = NaN at a = 0
    if type(b) is not np.ndarray:  # a number exponent (x ** 2): no mask to build
        return np.zeros_like(grad) if b == 0 else grad * b * np.power(a, b - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b == 0, 0, grad * b * np.power(a, b - 1))


def _pow_grad_exponent(grad, a, b, out):
    # d(a^b)/db = a^b log a, and 0 where a == 0 and b >= 0, as in PyTorch: 0^b is the
    # constant 0 for b > 0 (the formula gives 0 * -inf = NaN there) and has the one-sided
    # limit 0 at b = 0. A negative base gives NaN (log of a negative number), and 0 to a
    # negative power -inf (inf * log 0), PyTorch's values too.
    with np.errstate(divide="ignore", invalid="ignore"):
        full = grad * out * np.log(a)
        return np.where(np.equal(a, 0) & np.greater_equal(b, 0), 0, full).astype(grad.dtype, copy=False)


@register("pow", methods=("pow", "__pow__"), reflected=("__rpow__",))
class Pow(BinaryElementwise):
    """a ** b (broadcast) for a Tensor or number base and exponent.

    Gradients follow PyTorch: d/da = b * a^(b-1), 0 where b == 0 (so x ** 0 has gradient
    0 at x = 0); d/db = a^b * log(a), 0 where a == 0 and b >= 0. An integer base with a
    negative integer exponent is an error, as in PyTorch."""

    @staticmethod
    def compute(a, b):
        if (type(a) is not np.ndarray or a.dtype.kind != "f") and np.asarray(a).dtype.kind in "biu" \
                and np.asarray(b).dtype.kind in "biu" and np.any(np.less(b, 0)):
            raise ValueError("pow: got an integer base and the negative integer exponent %s; integers to "
                             "negative powers are not allowed, expected a float base (x.float() ** %s)"
                             % (np.min(b), np.min(b)))
        return np.power(a, b)

    grad_a = staticmethod(_pow_grad_base)
    grad_b = staticmethod(_pow_grad_exponent)

    @staticmethod
    def graph_grad_a(grad, a, b, out):
        if not isinstance(b, Tensor):  # a number exponent (x ** 2)
            return grad * 0 if b == 0 else grad * b * a ** (b - 1)
        zero = _data(b) == 0
        safe = where(zero, 1.0, b)  # (0 * a^-1 would be NaN at a = 0, and its derivative too)
        return where(zero, 0.0, grad * safe * a ** (safe - 1))

    @staticmethod
    def graph_grad_b(grad, a, b, out):
        base = _data(a)
        flat = (base == 0) & (np.asarray(_data(b)) >= 0)  # 0^b is constant there: gradient 0
        if isinstance(a, Tensor):
            safe = where(flat, 1.0, a)
        else:
            safe = Tensor(np.where(flat, 1.0, base).astype(_data(grad).dtype))
        return where(flat, 0.0, grad * safe ** b * safe.log())


class Maximum(BinaryElementwise):
    """Elementwise max. Gradients follow PyTorch: the larger input gets it all, ties split
    it evenly, and where either input is NaN (the result is NaN) both get all of it."""
    name = "maximum"
    compute, loses = staticmethod(np.maximum), staticmethod(np.less)

    # a's share is 1 unless a loses (0) or ties (1/2); NaN neither loses nor ties, so a NaN
    # on either side gives both inputs the full gradient, as PyTorch's formula does
    @classmethod
    def grad_a(cls, grad, a, b, out):
        return (grad * (1 - cls.loses(a, b) - 0.5 * np.equal(a, b))).astype(grad.dtype, copy=False)

    @classmethod
    def grad_b(cls, grad, a, b, out):
        return (grad * (1 - cls.loses(b, a) - 0.5 * np.equal(a, b))).astype(grad.dtype, copy=False)

    # the shares are constants of the inputs' values (piecewise linear): the same formula
    # on the values' arrays, times the gradient Tensor
    @classmethod
    def graph_grad_a(cls, grad, a, b, out):
        a, b = _data(a), _data(b)
        return grad * (1 - cls.loses(a, b) - 0.5 * np.equal(a, b)).astype(grad.dtype)

    @classmethod
    def graph_grad_b(cls, grad, a, b, out):
        a, b = _data(a), _data(b)
        return grad * (1 - cls.loses(b, a) - 0.5 * np.equal(a, b)).astype(grad.dtype)


class Minimum(Maximum):
    """Elementwise min. Gradients follow PyTorch: the smaller input gets it all, ties split
    it evenly, and where either input is NaN (the result is NaN) both get all of it."""
    name = "minimum"
    compute, loses = staticmethod(np.minimum), staticmethod(np.greater)


def _operand(op, x):
    # a Python number stays a number, so that it ranks below the tensor in dtype promotion
    # (maximum(2, x) keeps x's dtype), as it does for x + 2
    return x if isinstance(x, (int, float, np.number, np.bool_)) else as_tensor(op, x)


@register("maximum", methods=("maximum",))
def maximum(a, b):
    """Elementwise max of a and b (broadcast, PyTorch's dtype promotion). Gradient as in
    PyTorch: to the larger input, split evenly at ties, to both where either is NaN."""
    return Maximum.apply(_operand("maximum", a), b)


@register("minimum", methods=("minimum",))
def minimum(a, b):
    """Elementwise min of a and b (broadcast, PyTorch's dtype promotion). Gradient as in
    PyTorch: to the smaller input, split evenly at ties, to both where either is NaN."""
    return Minimum.apply(_operand("minimum", a), b)


class Where(Function):
    @staticmethod
    def forward(ctx, condition, a, b):
        condition = np.asarray(condition)
        if condition.dtype != bool:
            raise TypeError("where: got a condition of dtype %s, expected bool" % condition.dtype)
        ctx.shapes = (np.shape(a), np.shape(b))
        broadcast_shape("where", condition.shape, *ctx.shapes)
        ctx.save_for_backward(condition)
        return np.where(condition, *promote("where", a, b))

    @staticmethod
    def backward(ctx, grad):
        (condition,) = ctx.saved_tensors
        shape_a, shape_b = ctx.shapes
        zero = np.zeros((), dtype=grad.dtype)
        return (None,
                unbroadcast(np.where(condition, grad, zero), shape_a) if ctx.needs_input_grad[1] else None,
                unbroadcast(np.where(condition, zero, grad), shape_b) if ctx.needs_input_grad[2] else None)

    @staticmethod
    def differentiable_backward(ctx, grad):
        condition = ctx.inputs[0]
        shape_a, shape_b = ctx.shapes
        return (None,
                unbroadcast(Where.apply(condition, grad, 0.0), shape_a) if ctx.needs_input_grad[1] else None,
                unbroadcast(Where.apply(condition, 0.0, grad), shape_b) if ctx.needs_input_grad[2] else None)


@register("where")
def where(condition, a=None, b=None):
    """Elements of a where condition holds, of b elsewhere (broadcast). With condition
    alone, torch.where(condition): nonzero(condition, as_tuple=True), one int64 tensor of
    coordinates per dimension."""
    if a is None and b is None:
        data = _data(condition)
        return tuple(Tensor(i.astype(np.int64)) for i in np.nonzero(data.reshape(-1) if data.ndim == 0 else data))
    if a is None or b is None:
        raise TypeError("where: got only one of the two values, expected both (or neither: the nonzero form)")
    if isinstance(a, (int, float, np.number)) and isinstance(b, (int, float, np.number)):
        # two numbers, no tensor: numpy would make float64, but PyTorch gives a Python float
        # the default float32 (where(mask, 1.0, 0.0) is float32, where(mask, 1, 0) int64)
        condition = _data(condition)
        if condition.dtype != bool:
            raise TypeError("where: got a condition of dtype %s, expected bool" % condition.dtype)
        return Tensor(np.where(condition, a, b).astype(result_dtype("where", a, b)))
    return Where.apply(_data(condition), a, b)


# ---- unary ops ------------------------------------------------------------------------
@register("neg", methods=("neg", "__neg__"))
class Neg(Function):
    """-a."""

    @staticmethod
    def forward(ctx, a):
        return np.negative(a)

    @staticmethod
    def backward(ctx, grad):
        return -grad

    linear = True


@register("exp", methods=("exp",))
class Exp(Function):
    """Elementwise e ** x (float tensors; any shape -> same shape)."""
    float_input = "promote"  # as torch: an integer or bool input gives float32

    @staticmethod
    def forward(ctx, a):
        out = np.exp(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * out

    @staticmethod
    def differentiable_backward(ctx, grad):
        return grad * ctx.inputs[0].exp()


@register("log", methods=("log",))
class Log(Function):
    """Elementwise natural logarithm (float tensors)."""
    float_input = "promote"  # as torch: an integer or bool input gives float32

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return np.log(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return grad / a

    @staticmethod
    def differentiable_backward(ctx, grad):
        return grad / ctx.inputs[0]


@register("sqrt", methods=("sqrt",))
class Sqrt(Function):
    """Elementwise square root (float tensors)."""
    float_input = "promote"  # as torch: an integer or bool input gives float32

    @staticmethod
    def forward(ctx, a):
        out = np.sqrt(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad / (2 * out)

    @staticmethod
    def differentiable_backward(ctx, grad):
        return grad / (2 * ctx.inputs[0].sqrt())


@register("abs", methods=("abs", "__abs__"))
class Abs(Function):
    """Elementwise absolute value; the gradient at 0 is 0."""
    coerce_input = True

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return np.abs(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return grad * np.sign(a)

    @staticmethod
    def differentiable_backward(ctx, grad):
        return grad * np.sign(ctx.inputs[0].data)


class Clip(Function):
    """Clamp to [low, high]; the gradient passes where the input was inside the range.
    With low > high every element becomes high (and gets no gradient), as in torch."""
    name = "clip"
    coerce_input = True

    @staticmethod
    def forward(ctx, a, low, high):
        for bound in (low, high):
            if bound is not None and type(bound) is not float and type(bound) is not int:
                number_dtype("clip", bound)  # a TypeError naming clip unless a number
        if a.dtype.kind != "f":  # an integer tensor clipped to 2.5 is float32, as in PyTorch
            a = a.astype(result_dtype("clip", a, low, high), copy=False)
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

    @staticmethod
    def differentiable_backward(ctx, grad):
        (mask,) = ctx.saved_tensors
        return grad * mask.astype(grad.dtype), None, None


@register("clip", methods=("clip", "clamp"))
def clip(x, min=None, max=None):
    """Clamp x to [min, max] (either may be None); any shape -> same shape. As torch's
    clamp, min > max is allowed and gives max everywhere."""
    if min is None and max is None:
        raise ValueError("clip: got min=None and max=None, expected at least one bound")
    return Clip.apply(x, min, max)


@register("tanh", methods=("tanh",))
class Tanh(Function):
    """Elementwise hyperbolic tangent (float tensors)."""
    float_input = "promote"  # as torch: an integer or bool input gives float32

    @staticmethod
    def forward(ctx, a):
        out = np.tanh(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * (1 - out * out)

    @staticmethod
    def differentiable_backward(ctx, grad):
        out = ctx.inputs[0].tanh()
        return grad * (1 - out * out)


def _sigmoid(a):
    # exp of a non-positive number only, so it never overflows
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1 / (1 + e), e / (1 + e)).astype(a.dtype, copy=False)


@register("sigmoid", methods=("sigmoid",))
class Sigmoid(Function):
    """Elementwise 1 / (1 + exp(-x)), computed stably (float tensors)."""
    float_input = "promote"  # as torch: an integer or bool input gives float32

    @staticmethod
    def forward(ctx, a):
        out = _sigmoid(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * out * (1 - out)

    @staticmethod
    def differentiable_backward(ctx, grad):
        out = ctx.inputs[0].sigmoid()
        return grad * out * (1 - out)


_RELU_C_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
# Elements from which the ReLU takes the threaded C pass (kernels.bias_relu_forward,
# whose mask is bits): below it numpy's maximum costs less than the C call's setup.
_RELU_C_MIN = 4096


@register("relu", methods=("relu",))
class Relu(Function):
    """max(x, 0) elementwise: NaN passes through, as numpy's maximum and PyTorch's relu;
    the gradient is passed where the output is > 0 and is exactly 0 elsewhere (NaN
    inputs included; a select, so an inactive unit's NaN or inf gradient gives 0). The
    fused conv2d / linear(activation='relu') follow the same rule."""
    coerce_input = True

    @staticmethod
    def forward(ctx, a):
        if a.size >= _RELU_C_MIN and a.dtype in _RELU_C_DTYPES:
            out, ctx.mask = kernels.bias_relu_forward(a, None, True, with_mask=is_grad_enabled())
            return out
        out = np.maximum(a, 0)
        ctx.mask = None
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        if ctx.mask is not None:
            return kernels.relu_bias_backward(grad, ctx.mask, with_bias=False)[0]
        (out,) = ctx.saved_tensors
        return np.where(out > 0, grad, grad.dtype.type(0))

    @staticmethod
    def differentiable_backward(ctx, grad):
        # relu is piecewise linear: its second derivative is 0 (where it exists), and the
        # gradient is linear in grad with a constant mask
        return where(ctx.inputs[0].data > 0, grad, 0.0)


class LeakyRelu(Function):
    name = "leaky_relu"
    # an integer input would silently come back as float64
    coerce_input = float_input = True

    @staticmethod
    def forward(ctx, a, negative_slope):
        ctx.save_for_backward(a)
        ctx.negative_slope = negative_slope
        return np.where(a > 0, a, a * negative_slope)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return np.where(a > 0, grad, grad * ctx.negative_slope), None

    @staticmethod
    def differentiable_backward(ctx, grad):
        return where(ctx.inputs[0].data > 0, grad, grad * ctx.negative_slope), None


@register("leaky_relu", methods=("leaky_relu",))
def leaky_relu(x, negative_slope=0.01):
    """x where x > 0, negative_slope * x elsewhere."""
    return LeakyRelu.apply(x, negative_slope)


class Elu(Function):
    name = "elu"
    float_input = True

    # one C pass each way (kernels/activation.py; its references are the former numpy
    # code), the backward from the saved input: nothing else kept alive
    @staticmethod
    def forward(ctx, a, alpha):
        ctx.save_for_backward(a)
        ctx.alpha = alpha
        return kernels.activation.elu_forward(a, alpha)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return kernels.activation.elu_backward(a, grad, ctx.alpha), None

    @staticmethod
    def differentiable_backward(ctx, grad):
        a = ctx.inputs[0]
        positive = a.data > 0
        # (the exp of the positive side is never used; clamp it so that it cannot overflow)
        return where(positive, grad, grad * ctx.alpha * where(positive, 0.0, a).exp()), None


@register("elu", methods=("elu",))
def elu(x, alpha=1.0):
    """x where x > 0, alpha * (exp(x) - 1) elsewhere."""
    return Elu.apply(x, alpha)


class Softplus(Function):
    """log(1 + exp(beta * a)) / beta, computed stably, and a itself where beta * a >
    threshold (torch's rule, which keeps it linear there). Float tensors."""
    name = "softplus"
    float_input = True

    @staticmethod
    def forward(ctx, a, beta, threshold):
        scaled = a * beta if beta != 1 else a
        ctx.save_for_backward(scaled)
        ctx.threshold = threshold
        soft = np.maximum(scaled, 0) + np.log1p(np.exp(-np.abs(scaled)))
        if beta != 1:
            soft = soft / beta
        return np.where(scaled > threshold, a, soft)

    @staticmethod
    def backward(ctx, grad):
        (scaled,) = ctx.saved_tensors
        return np.where(scaled > ctx.threshold, grad, grad * _sigmoid(scaled)), None, None

    @staticmethod
    def differentiable_backward(ctx, grad):
        a, beta = ctx.inputs[0], ctx.inputs[1]
        return where(a.data * beta > ctx.threshold, grad, grad * (a * beta).sigmoid()), None, None


@register("softplus", methods=("softplus",))
def softplus(x, beta=1.0, threshold=20.0):
    """torch.nn.functional.softplus: log(1 + exp(beta * x)) / beta, and x where
    beta * x > threshold. Float tensors; any shape."""
    return Softplus.apply(x, beta, threshold)


class Cast(Function):
    @staticmethod
    def forward(ctx, a, dtype):
        ctx.dtype = a.dtype
        return a.astype(dtype)

    @staticmethod
    def backward(ctx, grad):
        return grad.astype(ctx.dtype), None

    @staticmethod
    def differentiable_backward(ctx, grad):
        return grad.astype(ctx.dtype), None


@register("cast", methods=("astype",))
def cast(x, dtype):
    """x converted to dtype (a numpy dtype, a name such as "float64", or a torch dtype);
    a float result keeps the graph, an integer/bool one does not."""
    dtype = numpy_dtype("cast", dtype)
    if dtype == x.dtype:
        return x
    if dtype.kind != "f":  # integer/bool results carry no gradient
        return Tensor(x.data.astype(dtype))
    return Cast.apply(x, dtype)


class Clone(Function):
    """A copy of a in new memory; the gradient passes through unchanged."""

    @staticmethod
    def forward(ctx, a):
        return a.copy()

    @staticmethod
    def backward(ctx, grad):
        return grad

    linear = True


@register("clone", methods=("clone",))
def clone(x):
    """A copy of x (any shape -> same shape and dtype) in its own memory, in the graph as
    torch's clone: the gradient flows back to x."""
    return Clone.apply(as_tensor("clone", x))


# ---- comparisons: not differentiable, bool results ------------------------------------
def _comparison(name, ufunc):
    def compare(a, b):
        other = b.data if isinstance(b, Tensor) else b
        if type(other) is not np.ndarray and type(other) is not float and type(other) is not int \
                and other is not None and np.asarray(other).dtype.kind not in "biuf":
            # numpy's error would not name the op (x == None stays all False, as in numpy)
            raise TypeError("%s: got %s, expected a Tensor, array or number" % (name, type(other).__name__))
        # numpy's own message would not say which op failed
        broadcast_shape(ufunc.__name__, np.shape(a.data), np.shape(other))
        return Tensor(ufunc(a.data, other))
    compare.__name__ = compare.__qualname__ = name
    compare.__doc__ = "a %s b elementwise (broadcast) as a bool tensor; not differentiable." % ufunc.__name__
    return compare


for _name, _ufunc in (("lt", np.less), ("le", np.less_equal), ("gt", np.greater),
                      ("ge", np.greater_equal), ("eq", np.equal), ("ne", np.not_equal)):
    register(_name, methods=(_name, "__%s__" % _name), differentiable=False)(_comparison(_name, _ufunc))


# ---- helpers for argument handling -----------------------------------------------------
def _data(x):
    return x.data if isinstance(x, Tensor) else np.asarray(x)
