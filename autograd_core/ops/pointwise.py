"""Elementwise math as PyTorch has it: trigonometric and hyperbolic functions, exponentials
and logarithms, rounding, erf and its inverse, the remainder family, bitwise and logical
operators, and the NaN/inf tests.

Three shapes of op share the rules:

* ``UnaryFloat``: a float function of one tensor. Integer and bool inputs are computed in
  the default float (float32), as PyTorch does (``sin(int tensor)`` is float32); each op
  gives ``compute(a)`` and ``derivative(xp, grad, a, out)``, one gradient formula written
  against a namespace ``xp``: numpy on arrays for the first-order backward, the engine's
  own ops on Tensors when the gradient is to be differentiated again.
* ``BinaryElementwise`` (from ``elementwise``) for differentiable binary ops; those with a
  float result whatever the inputs (atan2, copysign, hypot, logaddexp, xlogy) derive from
  ``BinaryFloat``, which computes integer operands in float32.
* Plain functions for the ops with no gradient (bitwise, logical, isnan, ...): they
  return a Tensor outside the graph, with PyTorch's result dtype.

Gradients follow PyTorch's derivatives.yaml, including the points it defines specially
(copysign at 0, xlogy at x = 0, nan_to_num at non-finite inputs, zero for the rounding
ops). Each differentiable op's gradient is differentiable again (create_graph=True): the
UnaryFloat formulas run on the ops themselves, the binary ops reuse their grad_a / grad_b
where those are operators only, and piecewise-constant factors (copysign's sign, the
remainders' rounded quotients, finiteness masks) enter as constants."""
import math
from types import SimpleNamespace

import numpy as np

from ..function import Function
from ..kernels import special as _special
from ..kernels.special import _bands, _erf_wide, _erfc_wide, _exp_minus_square
from ..registry import register
from ..tensor import _DEFAULT_FLOAT, Tensor
from ._util import broadcast_shape, result_dtype, unbroadcast
from .elementwise import BinaryElementwise, Div, Exp, Log, Sqrt, where

_SQRT_PI = math.sqrt(math.pi)
_TWO_OVER_SQRT_PI = 2 / _SQRT_PI


def _floating(a):
    """a (an array) in the default float when it is integer or bool (PyTorch computes
    sin(int tensor) in float32), else as it is."""
    return a if a.dtype.kind == "f" else a.astype(_DEFAULT_FLOAT)


# ---- unary float functions --------------------------------------------------------------
class UnaryFloat(Function):
    """f(a) elementwise for a float function f; integer/bool inputs give float32.

    Subclasses define ``compute(a)`` (a float array -> array) and ``derivative(xp, grad,
    a, out)``, the input's gradient from the output's gradient, the (float) input and the
    output, calling functions as ``xp.sin``: xp is numpy in the first-order backward
    (arrays) and _GRAPH_MATH, the same functions as ops, in create_graph mode (Tensors;
    ``out`` is then recomputed from the input by the op itself, so that it is in the graph
    too). ``reads_output`` says whether the formula reads ``out``."""
    coerce_input = True
    reads_output = False

    @staticmethod
    def compute(a):
        raise NotImplementedError

    @classmethod
    def forward(cls, ctx, a):
        a = _floating(a)
        with np.errstate(all="ignore"):  # NaN/inf results are the values, as in PyTorch
            out = cls.compute(a)
        if ctx.inputs:
            ctx.save_for_backward(a, out)
        return out

    @classmethod
    def backward(cls, ctx, grad):
        a, out = ctx.saved_tensors
        with np.errstate(all="ignore"):
            return cls.derivative(np, grad, a, out).astype(grad.dtype, copy=False)

    @classmethod
    def differentiable_backward(cls, ctx, grad):
        a = ctx.inputs[0]
        return cls.derivative(_GRAPH_MATH, grad, a, cls.apply(a) if cls.reads_output else None)


def _unary(name, compute, derivative, doc, reads_output=False):
    """Declare the UnaryFloat op name with its forward and gradient formulas."""
    cls = type(name.capitalize(), (UnaryFloat,), {
        "compute": staticmethod(compute), "derivative": staticmethod(derivative), "reads_output": reads_output,
        "__doc__": doc + " (any shape -> same shape; integer/bool inputs give float32)",
        "__module__": __name__})
    register(name, methods=(name,))(cls)
    return cls


_LN2, _LN10 = math.log(2), math.log(10)

Sin = _unary("sin", np.sin, lambda xp, g, a, out: g * xp.cos(a), "Elementwise sine.")
Cos = _unary("cos", np.cos, lambda xp, g, a, out: -g * xp.sin(a), "Elementwise cosine.")
Tan = _unary("tan", np.tan, lambda xp, g, a, out: g * (1 + out * out), "Elementwise tangent.",
             reads_output=True)
Asin = _unary("asin", np.arcsin, lambda xp, g, a, out: g / xp.sqrt(1 - a * a), "Elementwise arcsine.")
Acos = _unary("acos", np.arccos, lambda xp, g, a, out: -g / xp.sqrt(1 - a * a), "Elementwise arccosine.")
Atan = _unary("atan", np.arctan, lambda xp, g, a, out: g / (1 + a * a), "Elementwise arctangent.")
Sinh = _unary("sinh", np.sinh, lambda xp, g, a, out: g * xp.cosh(a), "Elementwise hyperbolic sine.")
Cosh = _unary("cosh", np.cosh, lambda xp, g, a, out: g * xp.sinh(a), "Elementwise hyperbolic cosine.")
Asinh = _unary("asinh", np.arcsinh, lambda xp, g, a, out: g / xp.sqrt(a * a + 1),
               "Elementwise inverse hyperbolic sine.")
Acosh = _unary("acosh", np.arccosh, lambda xp, g, a, out: g / xp.sqrt(a * a - 1),
               "Elementwise inverse hyperbolic cosine (defined for x >= 1).")
Atanh = _unary("atanh", np.arctanh, lambda xp, g, a, out: g / (1 - a * a),
               "Elementwise inverse hyperbolic tangent (defined for |x| <= 1).")
Exp2 = _unary("exp2", np.exp2, lambda xp, g, a, out: g * out * _LN2, "Elementwise 2 ** x.", reads_output=True)
Expm1 = _unary("expm1", np.expm1, lambda xp, g, a, out: g * (out + 1), "Elementwise exp(x) - 1, exact near 0.",
               reads_output=True)
Log2 = _unary("log2", np.log2, lambda xp, g, a, out: g / (a * _LN2), "Elementwise base-2 logarithm.")
Log10 = _unary("log10", np.log10, lambda xp, g, a, out: g / (a * _LN10), "Elementwise base-10 logarithm.")
Log1p = _unary("log1p", np.log1p, lambda xp, g, a, out: g / (1 + a), "Elementwise log(1 + x), exact near 0.")
Rsqrt = _unary("rsqrt", lambda a: 1 / np.sqrt(a), lambda xp, g, a, out: -0.5 * g * out * out * out,
               "Elementwise 1 / sqrt(x).", reads_output=True)
Reciprocal = _unary("reciprocal", lambda a: 1 / a, lambda xp, g, a, out: -g * out * out, "Elementwise 1 / x.",
                    reads_output=True)


# ---- erf, erfc, erfinv: numpy has none -------------------------------------------------
# erf and erfc are the special kernel family's (kernels/special.py: libm in C, a float64
# series / continued fraction as the numpy reference); erfinv's Halley steps below run on
# that reference's float64 parts.


def erf_values(x):
    """erf of a float array -> same shape and dtype (NaN -> NaN), by the special kernels."""
    return _special.erf(x)


def erfc_values(x):
    """erfc of a float array -> same shape and dtype, exact in the right tail."""
    return _special.erfc(x)


def erfinv_values(y):
    """The inverse of erf on [-1, 1] (+-inf at +-1, NaN outside), in y's dtype.

    Winitzki's closed form (relative error ~2e-3) starts Halley steps on erf(x) = |y|,
    which converge cubically: two reach float64 below |y| = 0.5 (2e-3 -> 1e-8 -> 1e-16).
    Above, the residual is taken as (1 - |y|) - erfc(x), exact where erf(x) - |y| would
    cancel, and three steps are needed: erfc's relative error there is x^2 times x's
    (measured: two leave 3e-14 at 1 - |y| = 1e-15)."""
    wide = np.asarray(y, dtype=np.float64)
    bands = _bands(y.dtype)
    size = np.abs(wide)
    out = np.where(size == 1, np.inf, np.nan)  # NaN for |y| > 1 and NaN
    out[size == 0] = 0.0
    for band, residual, steps in (((size > 0) & (size <= 0.5), lambda x, s: _erf_wide(x, bands) - s, 2),
                                  ((size > 0.5) & (size < 1), lambda x, s: (1 - s) - _erfc_wide(x, bands), 3)):
        if not band.any():
            continue
        s = size[band]
        log_term = np.log((1 - s) * (1 + s))
        first = 2 / (np.pi * 0.147) + log_term / 2
        x = np.sqrt(np.sqrt(first * first - log_term / 0.147) - first)
        for _ in range(steps):
            step = residual(x, s) / (_TWO_OVER_SQRT_PI * _exp_minus_square(x))
            x = x - step / (1 + x * step)
        out[band] = x
    return np.copysign(out, wide).astype(y.dtype, copy=False)


Erf = _unary("erf", erf_values, lambda xp, g, a, out: g * _TWO_OVER_SQRT_PI * xp.exp(-a * a),
             "Elementwise error function.")
Erfc = _unary("erfc", erfc_values, lambda xp, g, a, out: -g * _TWO_OVER_SQRT_PI * xp.exp(-a * a),
              "Elementwise complementary error function 1 - erf(x), exact in the tail.")
Erfinv = _unary("erfinv", erfinv_values, lambda xp, g, a, out: g * (_SQRT_PI / 2) * xp.exp(out * out),
                "Elementwise inverse error function (+-inf at +-1, NaN outside [-1, 1]).", reads_output=True)

# The functions the derivative formulas call, as ops on Tensors: the namespace ``xp`` of a
# UnaryFloat's derivative in create_graph mode (numpy's names, so that one formula serves both)
_GRAPH_MATH = SimpleNamespace(sin=Sin.apply, cos=Cos.apply, sinh=Sinh.apply, cosh=Cosh.apply, sqrt=Sqrt.apply,
                              exp=Exp.apply)


def _zero_gradient(grad):
    """A zero gradient as a Tensor (create_graph mode) that is in the graph as a function of
    grad (so that the first derivative still depends on the output gradient, with
    derivative 0, as torch's zeros_like gradient behaves in gradgradcheck): a select that
    picks nothing of grad. Not grad * 0, which would be NaN where grad is inf or NaN."""
    return where(np.zeros(grad.shape, dtype=bool), grad, 0.0)


def _constant(values, grad):
    """An array computed from the inputs' values (a mask, a rounded quotient, a sign) as a
    constant factor of grad's dtype: piecewise constant, so its derivative is 0."""
    return np.asarray(values).astype(grad.dtype, copy=False)


def _values(x):
    return x.data if isinstance(x, Tensor) else x


# ---- ops that keep integer dtypes ------------------------------------------------------
@register("square", methods=("square",))
class Square(Function):
    """Elementwise x * x (any shape -> same shape; integer and bool inputs give int64,
    as in PyTorch)."""
    coerce_input = True

    @staticmethod
    def forward(ctx, a):
        if a.dtype.kind == "b":
            a = a.astype(np.int64)
        if ctx.inputs:
            ctx.save_for_backward(a)
        return a * a

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return 2 * grad * a

    @staticmethod
    def differentiable_backward(ctx, grad):
        return 2 * grad * ctx.inputs[0]


class ZeroGradient(Function):
    """An op that is piecewise constant (floor, sign, ...): its gradient is 0 everywhere,
    as PyTorch defines it. Integer inputs keep their dtype (floor of an int64 tensor is
    itself); bool inputs are refused unless ``accepts_bool``."""
    coerce_input = True
    accepts_bool = False

    @classmethod
    def check(cls, a):
        if a.dtype.kind == "b" and not cls.accepts_bool:
            raise TypeError("%s: got a tensor of dtype bool, expected a float or integer tensor" % cls.name)

    @staticmethod
    def backward(ctx, grad):
        return np.zeros_like(grad)

    @staticmethod
    def differentiable_backward(ctx, grad):
        return _zero_gradient(grad)


def _rounding(name, ufunc, doc):
    def forward(ctx, a):
        Class.check(a)
        return ufunc(a) if a.dtype.kind == "f" else a.copy()
    Class = type(name.capitalize(), (ZeroGradient,), {
        "forward": staticmethod(forward), "__module__": __name__,
        "__doc__": doc + " (any shape -> same shape; integer tensors are returned as they are; "
                         "the gradient is 0, as in PyTorch)"})
    register(name, methods=(name,))(Class)
    return Class


Floor = _rounding("floor", np.floor, "Elementwise floor.")
Ceil = _rounding("ceil", np.ceil, "Elementwise ceiling.")
Trunc = _rounding("trunc", np.trunc, "Elementwise rounding toward zero.")


@register("sign", methods=("sign",))
class Sign(ZeroGradient):
    """Elementwise -1, 0 or 1 by the sign of x; 0 at NaN and at -0.0, as PyTorch (numpy
    gives NaN). Integer tensors keep their dtype, bool stays bool. Gradient 0."""
    accepts_bool = True

    @staticmethod
    def forward(ctx, a):
        if a.dtype.kind == "b":
            return a.copy()
        return (np.greater(a, 0).astype(a.dtype) - np.less(a, 0).astype(a.dtype))


class Round(ZeroGradient):
    name = "round"

    @staticmethod
    def forward(ctx, a, decimals):
        Round.check(a)
        if a.dtype.kind != "f":
            if decimals:
                raise TypeError("round: got an integer tensor (%s) with decimals=%d, expected a float tensor "
                                "(integers round only with decimals=0)" % (a.dtype, decimals))
            return a.copy()
        if decimals == 0:
            return np.rint(a)
        # PyTorch's formula, in the tensor's dtype: rint(x * 10^d) / 10^d, or for d < 0
        # rint(x / 10^-d) * 10^-d (halves go to the even neighbour)
        scale = a.dtype.type(10.0 ** abs(decimals))
        with np.errstate(over="ignore", invalid="ignore"):
            return np.rint(a * scale) / scale if decimals > 0 else np.rint(a / scale) * scale

    @staticmethod
    def backward(ctx, grad):
        return np.zeros_like(grad), None

    @staticmethod
    def differentiable_backward(ctx, grad):
        return _zero_gradient(grad), None


@register("round", methods=("round",))
def round(x, decimals=0):  # noqa: A001  (torch's name)
    """x rounded to ``decimals`` decimal places, halves to even (any shape -> same shape;
    integer tensors unchanged with decimals=0). Gradient 0, as in PyTorch."""
    if isinstance(decimals, (bool, np.bool_)) or not isinstance(decimals, (int, np.integer)):
        raise TypeError("round: got decimals=%r, expected an int" % (decimals,))
    return Round.apply(x, int(decimals))


@register("frac", methods=("frac",))
class Frac(Function):
    """Elementwise fractional part x - trunc(x), with x's sign (float tensors; any shape ->
    same shape). Its gradient is 1, as in PyTorch."""
    float_input = coerce_input = True

    @staticmethod
    def forward(ctx, a):
        return a - np.trunc(a)

    @staticmethod
    def backward(ctx, grad):
        return grad

    # (frac is not linear, so not ``linear``: its gradient is grad itself, whose derivative
    # with respect to grad is 1 and with respect to the input 0)
    @staticmethod
    def differentiable_backward(ctx, grad):
        return grad * 1.0


class NanToNum(Function):
    name = "nan_to_num"
    coerce_input = True

    @staticmethod
    def forward(ctx, a, nan, posinf, neginf):
        if a.dtype.kind != "f":
            return a.copy()  # integers and bools are finite already
        if ctx.inputs:
            ctx.save_for_backward(a)
        return np.nan_to_num(a, nan=nan, posinf=posinf, neginf=neginf)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return grad * np.isfinite(a), None, None, None

    @staticmethod
    def differentiable_backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return grad * _constant(np.isfinite(a), grad), None, None, None


@register("nan_to_num", methods=("nan_to_num",))
def nan_to_num(x, nan=0.0, posinf=None, neginf=None):
    """x with NaN replaced by ``nan``, +inf by ``posinf`` and -inf by ``neginf`` (by
    default the largest and lowest finite value of x's dtype); any shape -> same shape.
    The gradient passes where x is finite and is 0 elsewhere, as in PyTorch."""
    for name, value in (("nan", nan), ("posinf", posinf), ("neginf", neginf)):
        if value is not None and (isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number))):
            raise TypeError("nan_to_num: got %s=%r, expected a number or None" % (name, value))
    return NanToNum.apply(x, nan, posinf, neginf)


# ---- binary ops with a gradient ---------------------------------------------------------
class BinaryFloat(BinaryElementwise):
    """A binary op whose result is float whatever its inputs: integer/bool operands (that
    promote to an integer or bool dtype) are computed in float32, as in PyTorch. Subclasses
    define ``formula(a, b)`` instead of ``compute``."""

    @classmethod
    def compute(cls, a, b):
        dtype = result_dtype(cls.name, a, b)
        if dtype.kind != "f":
            dtype = np.dtype(_DEFAULT_FLOAT)
        # both operands as arrays of the result dtype: a Python number would otherwise
        # reach numpy as a float64 scalar (np.log(1.7)) and widen a float32 result
        a, b = np.asarray(a, dtype=dtype), np.asarray(b, dtype=dtype)
        with np.errstate(all="ignore"):
            return np.asarray(cls.formula(a, b), dtype=dtype)


@register("atan2", methods=("atan2",))
class Atan2(BinaryFloat):
    """Elementwise angle of the point (b, a): atan(a / b) in the right quadrant (broadcast)."""
    formula = staticmethod(np.arctan2)

    @staticmethod
    def grad_a(grad, a, b, out):
        return grad * b / (a * a + b * b)

    @staticmethod
    def grad_b(grad, a, b, out):
        return -grad * a / (a * a + b * b)


@register("copysign", methods=("copysign",))
class Copysign(BinaryFloat):
    """|a| with the sign of b, elementwise (broadcast). Gradient as in PyTorch: to a,
    sign(a) * sign(b) (0 where a is 0); to b, 0."""
    formula = staticmethod(np.copysign)

    @staticmethod
    def grad_a(grad, a, b, out):
        with np.errstate(all="ignore"):
            return np.where(np.equal(a, 0), 0, grad * (out / a)).astype(grad.dtype, copy=False)

    @staticmethod
    def grad_b(grad, a, b, out):
        return np.zeros_like(grad)

    # the factor out / a is +-1 (piecewise constant): the same formula on the values, times grad
    @staticmethod
    def graph_grad_a(grad, a, b, out):
        a, b = _values(a), _values(b)
        with np.errstate(all="ignore"):
            return grad * _constant(np.where(np.equal(a, 0), 0, np.copysign(a, b) / a), grad)

    @staticmethod
    def graph_grad_b(grad, a, b, out):
        return _zero_gradient(grad)


@register("hypot", methods=("hypot",))
class Hypot(BinaryFloat):
    """sqrt(a^2 + b^2) elementwise without overflow (broadcast)."""
    formula = staticmethod(np.hypot)

    @staticmethod
    def grad_a(grad, a, b, out):
        return grad * a / out

    @staticmethod
    def grad_b(grad, a, b, out):
        return grad * b / out

    # the same formulas, with the result recomputed by the op so that it is in the graph
    @classmethod
    def graph_grad_a(cls, grad, a, b, out):
        return cls.grad_a(grad, a, b, cls.apply(a, b))

    @classmethod
    def graph_grad_b(cls, grad, a, b, out):
        return cls.grad_b(grad, a, b, cls.apply(a, b))


def _logaddexp(a, b):
    larger = np.maximum(a, b)
    out = larger + np.log1p(np.exp(-np.abs(a - b)))
    # equal infinities: the formula gives NaN (inf - inf); the value is that infinity
    return np.where(np.isinf(a) & np.equal(a, b), a, out)


@register("logaddexp", methods=("logaddexp",))
class Logaddexp(BinaryFloat):
    """log(exp(a) + exp(b)) elementwise, computed stably (broadcast)."""
    formula = staticmethod(_logaddexp)

    # one formula for both inputs, against a namespace (numpy, or the ops in create_graph mode)
    @staticmethod
    def share(xp, grad, mine, other):
        return grad / (1 + xp.exp(other - mine))

    @classmethod
    def grad_a(cls, grad, a, b, out):
        with np.errstate(all="ignore"):
            return cls.share(np, grad, a, b)

    @classmethod
    def grad_b(cls, grad, a, b, out):
        with np.errstate(all="ignore"):
            return cls.share(np, grad, b, a)

    @classmethod
    def graph_grad_a(cls, grad, a, b, out):
        return cls.share(_GRAPH_MATH, grad, a, b)

    @classmethod
    def graph_grad_b(cls, grad, a, b, out):
        return cls.share(_GRAPH_MATH, grad, b, a)


def _xlogy(a, b):
    return np.where(np.equal(a, 0) & ~np.isnan(b), 0, a * np.log(b))


@register("xlogy", methods=("xlogy",))
class Xlogy(BinaryFloat):
    """a * log(b) elementwise, 0 where a is 0 (unless b is NaN), as in PyTorch (broadcast).
    Gradient to a: log(b), 0 where a == 0 and b <= 0; to b: a / b."""
    formula = staticmethod(_xlogy)

    @staticmethod
    def grad_a(grad, a, b, out):
        with np.errstate(all="ignore"):
            full = np.where(np.equal(grad, 0), 0, grad * np.log(b))
            return np.where(np.equal(a, 0) & np.less_equal(b, 0), 0, full).astype(grad.dtype, copy=False)

    @staticmethod
    def grad_b(grad, a, b, out):
        with np.errstate(all="ignore"):
            return grad * a / b

    @staticmethod
    def graph_grad_a(grad, a, b, out):
        # log(b), 0 where a == 0 and b <= 0 (grad_a's rule; grad_a's grad == 0 guard only
        # avoids 0 * -inf); b is replaced by 1 under the mask so that neither log(b) nor
        # its derivative 1 / b is NaN or inf there
        values_a, values_b = np.asarray(_values(a)), np.asarray(_values(b))
        zero = np.equal(values_a, 0) & np.less_equal(values_b, 0)
        if not zero.any():
            return grad * _log_of(b, grad)
        return where(zero, 0.0, grad * _log_of(where(zero, 1.0, b), grad))


def _log_of(x, grad):
    return Log.apply(x) if isinstance(x, Tensor) else _constant(np.log(x), grad)


def _integer_zero_divisor(op, a, b):
    """PyTorch refuses an integer division by zero (numpy would give 0 and a warning)."""
    if not any(type(v) is float or isinstance(v, np.ndarray) and v.dtype.kind == "f" for v in (a, b)) \
            and np.any(np.equal(b, 0)):
        raise RuntimeError("%s: got an integer divisor that is zero (ZeroDivisionError), expected non-zero "
                           "integer divisors (or float tensors, which give inf/NaN)" % op)


def _integer_operands(op, a, b):
    if result_dtype(op, a, b).kind == "b":
        raise TypeError("%s: got bool operands, expected integer or float tensors" % op)


class _Remainder(BinaryElementwise):
    """What fmod and remainder share: integer and float operands (not bool), a clear error
    for an integer zero divisor, gradient 1 to a and -grad * quotient(a, b) to b."""
    remainder = quotient = None  # set by each op: the remainder and its rounded quotient

    @classmethod
    def compute(cls, a, b):
        _integer_operands(cls.name, a, b)
        _integer_zero_divisor(cls.name, a, b)
        with np.errstate(all="ignore"):
            return cls.remainder(a, b)

    grad_a = staticmethod(lambda grad, a, b, out: grad)

    @classmethod
    def grad_b(cls, grad, a, b, out):
        with np.errstate(all="ignore"):
            return -grad * cls.quotient(a, b)

    # the rounded quotient is piecewise constant: the same formula on the values
    @classmethod
    def graph_grad_b(cls, grad, a, b, out):
        with np.errstate(all="ignore"):
            return -grad * _constant(cls.quotient(_values(a), _values(b)), grad)


@register("fmod", methods=("fmod",))
class Fmod(_Remainder):
    """The C remainder of a / b elementwise, with the sign of a (broadcast; integers stay
    integers). Gradient as in PyTorch: to a, 1; to b, -trunc(a / b)."""
    remainder = staticmethod(np.fmod)
    quotient = staticmethod(lambda a, b: np.trunc(a / b))


@register("remainder", methods=("remainder", "__mod__"), reflected=("__rmod__",))
class Remainder(_Remainder):
    """a % b elementwise with the sign of b, Python's rule (broadcast; integers stay
    integers). Gradient as in PyTorch: to a, 1; to b, -floor(a / b)."""
    remainder = staticmethod(np.remainder)
    quotient = staticmethod(np.floor_divide)


def _rounded_quotient(op, a, b, mode):
    _integer_operands(op, a, b)
    _integer_zero_divisor(op, a, b)
    with np.errstate(all="ignore"):
        if mode == "floor":
            return np.floor_divide(a, b)
        quotient = np.floor_divide(a, b)
        if np.asarray(quotient).dtype.kind == "f":
            return np.trunc(np.true_divide(a, b)).astype(quotient.dtype, copy=False)
        # integers: floor rounds down where the exact quotient is negative and not whole
        inexact = np.not_equal(np.remainder(a, b), 0) & (np.less(a, 0) != np.less(b, 0))
        return quotient + inexact.astype(quotient.dtype)


class FloorDivide(BinaryElementwise):
    """floor(a / b) elementwise; its gradient is 0 (see floor_divide)."""
    name = "floor_divide"
    saves_operands = False
    compute = staticmethod(lambda a, b: _rounded_quotient("floor_divide", a, b, "floor"))
    grad_a = grad_b = staticmethod(lambda grad, a, b, out: np.zeros_like(grad))
    graph_grad_a = graph_grad_b = staticmethod(lambda grad, a, b, out: _zero_gradient(grad))


class TruncDivide(FloorDivide):
    """trunc(a / b) elementwise; its gradient is 0."""
    name = "divide"
    compute = staticmethod(lambda a, b: _rounded_quotient("divide", a, b, "trunc"))


@register("floor_divide", methods=("floor_divide", "__floordiv__"), reflected=("__rfloordiv__",))
def floor_divide(a, b):
    """a // b elementwise, rounding down as Python does (broadcast; integers stay integers).
    Its gradient is 0, as div(rounding_mode="floor") in PyTorch."""
    return FloorDivide.apply(a, b)


@register("divide", methods=("divide",))
def divide(a, b, rounding_mode=None):
    """a / b elementwise (broadcast). rounding_mode None: true division (``div``); "trunc":
    rounded toward zero; "floor": rounded down. A rounded quotient of integers stays
    integer and has gradient 0, as in PyTorch."""
    if rounding_mode is None:
        return Div.apply(a, b)
    if rounding_mode == "floor":
        return FloorDivide.apply(a, b)
    if rounding_mode == "trunc":
        return TruncDivide.apply(a, b)
    raise ValueError("divide: got rounding_mode=%r, expected None, 'trunc' or 'floor'" % (rounding_mode,))


class Lerp(Function):
    name = "lerp"
    coerce_input = True

    @staticmethod
    def forward(ctx, start, end, weight):
        dtype = result_dtype("lerp", start, end, weight)
        if dtype.kind != "f":
            dtype = np.dtype(_DEFAULT_FLOAT)
        arrays = [np.asarray(v, dtype=dtype) if isinstance(v, np.ndarray) else v for v in (start, end, weight)]
        start, end, weight = arrays
        broadcast_shape("lerp", *(np.shape(v) for v in arrays))
        ctx.shapes = tuple(np.shape(v) for v in arrays)
        if ctx.inputs:
            ctx.save_for_backward(start, end, weight)
        # PyTorch's formula: from the nearer end, so that weight 1 gives end exactly
        difference = np.subtract(end, start)
        small = np.abs(weight) < 0.5
        out = np.where(small, start + weight * difference, end - difference * (1 - np.asarray(weight)))
        return out.astype(dtype, copy=False)

    @staticmethod
    def gradients(grad, start, end, weight, needs):
        """The three gradients at the broadcast shape (None where not needed); operators
        only, so that the formula serves arrays and Tensors (start is an array or Tensor)."""
        return (grad * (1 - weight) if needs[0] else None,
                grad * weight if needs[1] else None,
                grad * (end - start) if needs[2] else None)

    @staticmethod
    def backward(ctx, grad):
        grads = Lerp.gradients(grad, *ctx.saved_tensors, ctx.needs_input_grad)
        return tuple(None if g is None else unbroadcast(np.asarray(g, dtype=grad.dtype), shape)
                     for g, shape in zip(grads, ctx.shapes))

    @staticmethod
    def differentiable_backward(ctx, grad):
        # inputs without a gradient enter as constants of grad's dtype (forward computed in it)
        operands = [value if isinstance(value, Tensor) and needs else
                    _constant(_values(value), grad) if isinstance(value, (Tensor, np.ndarray)) else value
                    for value, needs in zip(ctx.inputs, ctx.needs_input_grad)]
        grads = Lerp.gradients(grad, *operands, ctx.needs_input_grad)
        return tuple(None if g is None else unbroadcast(g, shape) for g, shape in zip(grads, ctx.shapes))


@register("lerp", methods=("lerp",))
def lerp(input, end, weight):
    """input + weight * (end - input) elementwise (broadcast); weight a number or a
    tensor. Gradients: 1 - weight to input, weight to end, end - input to weight."""
    return Lerp.apply(input, end, weight)


# ---- ops without a gradient: bitwise, logical, tests ------------------------------------
def _raw(op, value):
    """value (a Tensor, array or Python number) as an array or a number."""
    if isinstance(value, Tensor):
        return value.data
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, (bool, int, float, np.bool_, np.integer, np.floating)):
        return value.item() if isinstance(value, np.generic) else value
    raise TypeError("%s: got %s, expected a Tensor, array or number" % (op, type(value).__name__))


def _bitwise_operands(op, a, b, allow_bool=True):
    a, b = _raw(op, a), _raw(op, b)
    broadcast_shape(op, np.shape(a), np.shape(b))
    dtype = result_dtype(op, a, b)
    if dtype.kind == "f" or dtype.kind == "b" and not allow_bool:
        raise TypeError("%s: got operands of dtype %s, expected integer%s tensors"
                        % (op, dtype, " or bool" if allow_bool else ""))
    return np.asarray(a, dtype=dtype), np.asarray(b, dtype=dtype), dtype


def _bitwise(name, ufunc, symbol):
    def bitwise(a, b):
        x, y, dtype = _bitwise_operands(name, a, b)
        return Tensor(ufunc(x, y).astype(dtype, copy=False))
    bitwise.__name__ = bitwise.__qualname__ = name
    bitwise.__doc__ = ("a %s b elementwise for integer or bool tensors (broadcast; PyTorch's dtype "
                       "promotion); float operands are a TypeError. Not differentiable." % symbol)
    return bitwise


bitwise_and = register("bitwise_and", methods=("bitwise_and", "__and__"), reflected=("__rand__",),
                       differentiable=False)(_bitwise("bitwise_and", np.bitwise_and, "&"))
bitwise_or = register("bitwise_or", methods=("bitwise_or", "__or__"), reflected=("__ror__",),
                      differentiable=False)(_bitwise("bitwise_or", np.bitwise_or, "|"))
bitwise_xor = register("bitwise_xor", methods=("bitwise_xor", "__xor__"), reflected=("__rxor__",),
                       differentiable=False)(_bitwise("bitwise_xor", np.bitwise_xor, "^"))


@register("bitwise_not", methods=("bitwise_not", "__invert__"), differentiable=False)
def bitwise_not(x):
    """~x elementwise: the bits flipped for integers, logical not for bool. Not differentiable."""
    data = _raw("bitwise_not", x)
    data = np.asarray(data, dtype=result_dtype("bitwise_not", data))  # a Python int is int64
    if data.dtype.kind == "f":
        raise TypeError("bitwise_not: got a tensor of dtype %s, expected an integer or bool tensor" % data.dtype)
    return Tensor(np.invert(data))


@register("bitwise_left_shift", methods=("bitwise_left_shift", "__lshift__"), reflected=("__rlshift__",),
          differentiable=False)
def bitwise_left_shift(a, b):
    """a << b elementwise for integer tensors (broadcast); a shift below 0 or of the width
    of the dtype or more gives 0, as in PyTorch. Not differentiable."""
    x, shift, dtype = _bitwise_operands("bitwise_left_shift", a, b, allow_bool=False)
    bits = dtype.itemsize * 8
    inside = (shift >= 0) & (shift < bits)
    out = np.left_shift(x, np.where(inside, shift, 0).astype(dtype, copy=False))
    return Tensor(np.where(inside, out, 0).astype(dtype, copy=False))


@register("bitwise_right_shift", methods=("bitwise_right_shift", "__rshift__"), reflected=("__rrshift__",),
          differentiable=False)
def bitwise_right_shift(a, b):
    """a >> b elementwise for integer tensors (broadcast), the sign bit filling in; a
    shift below 0 or of the width of the dtype or more gives -1 for negative a and 0
    otherwise, as in PyTorch. Not differentiable."""
    x, shift, dtype = _bitwise_operands("bitwise_right_shift", a, b, allow_bool=False)
    bits = dtype.itemsize * 8
    inside = (shift >= 0) & (shift < bits)
    out = np.right_shift(x, np.where(inside, shift, 0).astype(dtype, copy=False))
    fill = np.where(np.less(x, 0), -1, 0).astype(dtype)
    return Tensor(np.where(inside, out, fill).astype(dtype, copy=False))


def _logical(name, ufunc):
    def logical(a, b):
        x, y = _raw(name, a), _raw(name, b)
        broadcast_shape(name, np.shape(x), np.shape(y))
        return Tensor(np.asarray(ufunc(x, y), dtype=bool))
    logical.__name__ = logical.__qualname__ = name
    logical.__doc__ = ("%s of a and b elementwise, each read as true where non-zero (broadcast; any "
                       "dtype) -> a bool tensor. Not differentiable." % name.replace("_", " "))
    return logical


logical_and = register("logical_and", methods=("logical_and",), differentiable=False)(
    _logical("logical_and", np.logical_and))
logical_or = register("logical_or", methods=("logical_or",), differentiable=False)(
    _logical("logical_or", np.logical_or))
logical_xor = register("logical_xor", methods=("logical_xor",), differentiable=False)(
    _logical("logical_xor", np.logical_xor))


def _test(name, ufunc, doc):
    def test(x):
        return Tensor(np.asarray(ufunc(np.asarray(_raw(name, x))), dtype=bool))
    test.__name__ = test.__qualname__ = name
    test.__doc__ = doc + " elementwise (any dtype; any shape -> same shape, bool). Not differentiable."
    return register(name, methods=(name,), differentiable=False)(test)


logical_not = _test("logical_not", np.logical_not, "True where x is zero (false)")
isnan = _test("isnan", np.isnan, "True where x is NaN")
isinf = _test("isinf", np.isinf, "True where x is +inf or -inf")
isfinite = _test("isfinite", np.isfinite, "True where x is neither NaN nor infinite")
