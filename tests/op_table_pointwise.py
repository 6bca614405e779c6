"""Op table entries for autograd_core/ops/pointwise.py (elementwise math, bitwise, logical).

References are independent of the ops module: numpy's ufuncs, and math.erf / math.erfc
applied element by element (small samples, so the Python loop costs nothing here)."""
import math

import numpy as np

from op_table import SAME, OpEntry, Sample, _away_from_zero, _positive

_SHAPES = ((), (4,), (2, 3), (2, 1, 3))  # ranks 0 to 3


def _unit(rng, *shape):
    """Values in [-0.9, 0.9]: inside the domain of asin, acos, atanh, erfinv."""
    return rng.uniform(-0.9, 0.9, shape)


def _above_one(rng, *shape):
    return rng.uniform(1.2, 3.0, shape)


def _off_integers(rng, *shape):
    """Values 0.1 to 0.4 away from an integer, never at a half: floor, round and the
    other steps are constant around each of them."""
    return rng.integers(-3, 3, shape) + rng.uniform(0.1, 0.4, shape) * rng.choice([-1.0, 1.0], shape)


def _unary(reference, values=_away_from_zero, torch=SAME, **kwargs):
    """One sample per rank 0..3."""
    return OpEntry(lambda rng: [Sample(np.asarray(values(rng, *shape)), **kwargs) for shape in _SHAPES],
                   lambda x, **k: reference(x, **k), torch=torch, sweep=("unary", values, kwargs))


def _binary(reference, first=_away_from_zero, second=_away_from_zero, torch=SAME, **kwargs):
    """Equal shapes, broadcasting ([2, 1, 3] with [4, 1]), a 0-d tensor and a number."""
    def samples(rng):
        return [Sample(first(rng, 2, 3), second(rng, 2, 3), **kwargs),
                Sample(first(rng, 2, 1, 3), second(rng, 4, 1), **kwargs),
                Sample(np.asarray(first(rng)), second(rng, 3), **kwargs),
                Sample(first(rng, 3), float(second(rng)), **kwargs)]
    return OpEntry(samples, reference, torch=torch, sweep=("binary", first, second, kwargs))


def _other_as_tensor(name):
    """torch.<name> refuses a Python number as its second argument: give it a 0-d tensor."""
    def call(torch, a, b, **kwargs):
        return getattr(torch, name)(a, b if isinstance(b, torch.Tensor) else torch.tensor(b, dtype=a.dtype),
                                    **kwargs)
    return call


_erf = np.vectorize(math.erf, otypes=[float])
_erfc = np.vectorize(math.erfc, otypes=[float])


def _erfinv(y):
    """Bisection on math.erf: 80 halvings of [-6, 6] pin the root to float64."""
    low, high = np.full(np.shape(y), -6.0), np.full(np.shape(y), 6.0)
    for _ in range(80):
        middle = (low + high) / 2
        below = _erf(middle) < y
        low, high = np.where(below, middle, low), np.where(below, high, middle)
    return (low + high) / 2


def _torch_round(x, decimals=0):
    scale = 10.0 ** abs(decimals)
    return np.rint(x * scale) / scale if decimals >= 0 else np.rint(x / scale) * scale


def _integers(rng, *shape):
    return rng.integers(-9, 9, shape)


def _bitwise(ufunc, shifts=False):
    def samples(rng):
        second = (lambda *shape: rng.integers(0, 5, shape)) if shifts else (lambda *shape: _integers(rng, *shape))
        cases = [Sample(_integers(rng, 2, 3), second(2, 3)), Sample(_integers(rng, 2, 1, 3), second(4, 1)),
                 Sample(_integers(rng, 3), 2)]
        if not shifts:
            cases.append(Sample(rng.random((2, 3)) > 0.5, rng.random(3) > 0.5))
        return cases
    return OpEntry(samples, ufunc, gradcheck=False, keeps_dtype=False, torch=SAME)


def _logical(ufunc):
    def samples(rng):
        return [Sample(rng.random((2, 3)) > 0.5, rng.random(3) > 0.5),
                Sample(_integers(rng, 2, 3), rng.choice([0.0, 1.5], (2, 1)))]
    return OpEntry(samples, ufunc, gradcheck=False, keeps_dtype=False, torch=SAME)


def _special_values(rng):
    special = np.array([np.nan, np.inf, -np.inf, 0.0, -1.5, 2.0])
    return [Sample(special), Sample(rng.permutation(special).reshape(2, 3)), Sample(_integers(rng, 3))]


def _test(ufunc):
    return OpEntry(_special_values, ufunc, gradcheck=False, keeps_dtype=False, torch=SAME)


def _nan_to_num(x, nan=0.0, posinf=None, neginf=None):
    return np.nan_to_num(x, nan=nan, posinf=posinf, neginf=neginf)


def _nan_to_num_samples(rng):
    # explicit replacements where infinities occur: the defaults depend on the dtype
    return [Sample(_away_from_zero(rng, 2, 3)),
            Sample(np.array([1.5, np.nan, -0.7, np.inf, -np.inf]), nan=2.0, posinf=9.0, neginf=-9.0),
            Sample(np.array([[np.nan, 0.5], [-1.5, np.inf]]), 0.25, posinf=1e3, neginf=-1e3)]


def _lerp_samples(rng):
    return [Sample(_away_from_zero(rng, 2, 3), _away_from_zero(rng, 2, 3), 0.3),
            Sample(_away_from_zero(rng, 2, 1, 3), _away_from_zero(rng, 4, 1), rng.uniform(0, 1, 3)),
            Sample(_away_from_zero(rng, 3), _away_from_zero(rng, 3), rng.uniform(0.6, 1.2, 3)),
            Sample(np.asarray(_away_from_zero(rng)), _away_from_zero(rng, 2), rng.uniform(0, 1, ()))]


def _lerp(start, end, weight):
    return start + weight * (end - start)


def _xlogy_samples(rng):
    return [Sample(_away_from_zero(rng, 2, 3), _positive(rng, 2, 3)),
            Sample(np.array([0.0, 1.5, -0.7]), _positive(rng, 2, 1)),  # x = 0: the result and gradient are 0
            Sample(_away_from_zero(rng, 3), 1.7)]


def _divide_samples(rng):
    return [Sample(_away_from_zero(rng, 2, 3) * 3, _away_from_zero(rng, 2, 3)),
            Sample(_away_from_zero(rng, 2, 1, 3) * 3, _away_from_zero(rng, 4, 1), rounding_mode="trunc"),
            Sample(_away_from_zero(rng, 3) * 3, 0.7, rounding_mode="floor")]


def _divide(a, b, rounding_mode=None):
    quotient = a / b
    return {None: quotient, "trunc": np.trunc(quotient), "floor": np.floor(quotient)}[rounding_mode]


TABLE = {
    "sin": _unary(np.sin),
    "cos": _unary(np.cos),
    "tan": _unary(np.tan, _unit),
    "asin": _unary(np.arcsin, _unit),
    "acos": _unary(np.arccos, _unit),
    "atan": _unary(np.arctan),
    "sinh": _unary(np.sinh),
    "cosh": _unary(np.cosh),
    "asinh": _unary(np.arcsinh),
    "acosh": _unary(np.arccosh, _above_one),
    "atanh": _unary(np.arctanh, _unit),
    "exp2": _unary(lambda x: 2.0 ** x),
    "expm1": _unary(lambda x: np.exp(x) - 1),
    "log2": _unary(lambda x: np.log(x) / np.log(2), _positive),
    "log10": _unary(lambda x: np.log(x) / np.log(10), _positive),
    "log1p": _unary(lambda x: np.log(1 + x), _positive),
    "rsqrt": _unary(lambda x: 1 / np.sqrt(x), _positive),
    "reciprocal": _unary(lambda x: 1 / x),
    "square": _unary(lambda x: x * x),
    "sign": _unary(lambda x: (x > 0).astype(x.dtype) - (x < 0)),
    "floor": _unary(np.floor, _off_integers),
    "ceil": _unary(np.ceil, _off_integers),
    "trunc": _unary(lambda x: np.where(x < 0, np.ceil(x), np.floor(x)), _off_integers),
    "frac": _unary(lambda x: np.fmod(x, 1.0), _off_integers),
    "round": OpEntry(lambda rng: [Sample(_off_integers(rng, 2, 3)), Sample(_off_integers(rng, 4)),
                                  Sample(_off_integers(rng, 2, 3) * 7, decimals=2),
                                  Sample(_off_integers(rng, 3) * 300, decimals=-1)],
                     _torch_round, torch=SAME),
    "erf": _unary(_erf),
    "erfc": _unary(_erfc, lambda rng, *shape: rng.uniform(-1, 4, shape)),
    "erfinv": _unary(_erfinv, _unit),
    "nan_to_num": OpEntry(_nan_to_num_samples, _nan_to_num, torch=SAME),
    "atan2": _binary(np.arctan2, torch=_other_as_tensor("atan2")),
    "copysign": _binary(lambda a, b: np.abs(a) * np.where(b < 0, -1.0, 1.0)),
    "hypot": _binary(lambda a, b: np.sqrt(a * a + b * b), torch=_other_as_tensor("hypot")),
    "logaddexp": _binary(lambda a, b: np.log(np.exp(a) + np.exp(b)), torch=_other_as_tensor("logaddexp")),
    "xlogy": OpEntry(_xlogy_samples, lambda a, b: np.where(a == 0, 0.0, a * np.log(b)), torch=SAME),
    "fmod": _binary(lambda a, b: a - b * np.trunc(a / b)),
    "remainder": _binary(lambda a, b: a - b * np.floor(a / b)),
    "floor_divide": _binary(lambda a, b: np.floor(a / b),  # torch's floor_divide has no backward
                            torch=lambda torch, a, b: torch.div(a, b, rounding_mode="floor")),
    "divide": OpEntry(_divide_samples, _divide, torch=SAME),
    "lerp": OpEntry(_lerp_samples, _lerp, torch=SAME),
    "bitwise_and": _bitwise(np.bitwise_and),
    "bitwise_or": _bitwise(np.bitwise_or),
    "bitwise_xor": _bitwise(np.bitwise_xor),
    "bitwise_not": OpEntry(lambda rng: [Sample(_integers(rng, 2, 3)), Sample(rng.random(4) > 0.5)],
                           np.invert, gradcheck=False, keeps_dtype=False, torch=SAME),
    "bitwise_left_shift": _bitwise(np.left_shift, shifts=True),
    "bitwise_right_shift": _bitwise(np.right_shift, shifts=True),
    "logical_and": _logical(np.logical_and),
    "logical_or": _logical(np.logical_or),
    "logical_xor": _logical(np.logical_xor),
    "logical_not": _test(np.logical_not),
    "isnan": _test(np.isnan),
    "isinf": _test(np.isinf),
    "isfinite": _test(np.isfinite),
}
