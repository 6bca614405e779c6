"""Op table entries for the activations of autograd_core/ops/activation.py (see
tests/op_table.py for what an entry is). References are written out with numpy and
math.erf, independently of the ops; torch mappings call torch.nn.functional (prelu moves
the channel axis: this project's channel is the last dimension, torch's dimension 1)."""
import math

import numpy as np

from op_table import Sample, OpEntry, SAME, _away_from_zero


def _functional(name):
    """torch=...: torch.nn.functional.<name> with the same arguments."""
    return lambda torch, *args, **kwargs: getattr(torch.nn.functional, name)(*args, **kwargs)


def _away_from(*kinks, low=-4.0, high=4.0):
    """Sample values in [low, high] at least 0.2 from each kink (finite differences
    straddling a kink would not see torch's one-sided gradient)."""
    def values(rng, *shape):
        x = rng.uniform(low, high, shape)
        for kink in kinks:
            x = np.where(np.abs(x - kink) < 0.2, kink + np.where(x < kink, -0.3, 0.3), x)
        return x
    return values


def _ranks(values, **kwargs):
    """Samples of ranks 0 to 3 for an elementwise op."""
    return lambda rng: [Sample(np.asarray(values(rng)), **kwargs), Sample(values(rng, 5), **kwargs),
                        Sample(values(rng, 2, 3), **kwargs), Sample(values(rng, 2, 3, 2), **kwargs)]


def elementwise(reference, values=_away_from_zero, torch=None, **kwargs):
    return OpEntry(_ranks(values, **kwargs), lambda x, **k: reference(x, **k), torch=torch,
                   sweep=("unary", values, kwargs))


_erf = np.vectorize(math.erf, otypes=[float])


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _gelu(x, approximate="none"):
    if approximate == "tanh":
        return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    return 0.5 * x * (1 + _erf(x / math.sqrt(2)))


_SELU_ALPHA, _SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946


def _prelu(x, weight):
    weight = weight.reshape(()) if weight.size == 1 else weight
    return np.where(x > 0, x, weight * x)


def _torch_prelu(torch, x, weight):
    if x.dim() < 2:
        return torch.prelu(x, weight)
    return torch.prelu(x.movedim(-1, 1), weight).movedim(1, -1)


def _prelu_samples(rng):
    slopes = lambda *shape: rng.uniform(0.1, 0.5, shape)  # noqa: E731
    return [Sample(np.asarray(_away_from_zero(rng)), slopes(1)), Sample(_away_from_zero(rng, 4), slopes()),
            Sample(_away_from_zero(rng, 2, 3), slopes(3)), Sample(_away_from_zero(rng, 2, 3, 4), slopes(4)),
            Sample(_away_from_zero(rng, 2, 2, 3), slopes(1))]


def _softmin(x, dim=-1):
    e = np.exp(-(x - x.min(axis=dim, keepdims=True)))
    return e / e.sum(axis=dim, keepdims=True)


def _glu(x, dim=-1):
    a, b = np.split(x, 2, axis=dim)
    return a * _sigmoid(b)


TABLE = {
    "gelu": OpEntry(lambda rng: _ranks(_away_from(0.0))(rng)
                    + [Sample(_away_from(0.0)(rng, 2, 3), approximate="tanh"),
                       Sample(_away_from(0.0, low=-9.0, high=-4.0)(rng, 4), approximate="none"),
                       Sample(_away_from(0.0, low=-9.0, high=-4.0)(rng, 4), approximate="tanh")],
                    _gelu, torch=_functional("gelu")),
    "silu": elementwise(lambda x: x * _sigmoid(x), _away_from(0.0), torch=_functional("silu")),
    "mish": elementwise(lambda x: x * np.tanh(np.log1p(np.exp(x))), _away_from(0.0), torch=_functional("mish")),
    "logsigmoid": elementwise(lambda x: np.log(_sigmoid(x)), _away_from(0.0), torch=_functional("logsigmoid")),
    "softsign": elementwise(lambda x: x / (1 + np.abs(x)), torch=_functional("softsign")),
    "selu": elementwise(lambda x: _SELU_SCALE * np.where(x > 0, x, _SELU_ALPHA * (np.exp(x) - 1)), torch=SAME),
    "celu": OpEntry(lambda rng: _ranks(_away_from_zero)(rng) + [Sample(_away_from_zero(rng, 2, 3), alpha=0.5),
                                                                Sample(_away_from_zero(rng, 4), 2.0)],
                    lambda x, alpha=1.0: np.where(x > 0, x, alpha * (np.exp(x / alpha) - 1)), torch=SAME),
    "hardtanh": OpEntry(lambda rng: _ranks(_away_from(-1.0, 1.0, low=-2.0, high=2.0))(rng)
                        + [Sample(_away_from(-0.5, 2.5)(rng, 2, 3), -0.5, 2.5),
                           Sample(_away_from(0.0, 1.0, low=-1.0, high=2.0)(rng, 4), min_val=0.0, max_val=1.0)],
                        lambda x, min_val=-1.0, max_val=1.0: np.minimum(np.maximum(x, min_val), max_val),
                        torch=_functional("hardtanh")),
    "relu6": elementwise(lambda x: np.minimum(np.maximum(x, 0), 6), _away_from(0.0, 6.0, low=-3.0, high=9.0),
                         torch=_functional("relu6")),
    # torch's hardsigmoid backward multiplies by 1/6 rounded to float32, even in float64
    # (0.16666667163...); its documented definition relu6(x + 3) / 6 has the exact 1/6
    "hardsigmoid": elementwise(lambda x: np.minimum(np.maximum(x + 3, 0), 6) / 6,
                               _away_from(-3.0, 3.0, low=-5.0, high=5.0),
                               torch=lambda torch, x: torch.nn.functional.relu6(x + 3) / 6),
    "hardswish": elementwise(lambda x: x * np.minimum(np.maximum(x + 3, 0), 6) / 6,
                             _away_from(-3.0, 3.0, low=-5.0, high=5.0), torch=_functional("hardswish")),
    "prelu": OpEntry(_prelu_samples, _prelu, torch=_torch_prelu),
    "softmin": OpEntry(lambda rng: [Sample(_away_from_zero(rng, 4)), Sample(_away_from_zero(rng, 2, 3), 0),
                                    Sample(_away_from_zero(rng, 2, 3, 2), dim=1)],
                       _softmin, torch=lambda torch, x, dim=-1: torch.nn.functional.softmin(x, dim)),
    "glu": OpEntry(lambda rng: [Sample(_away_from_zero(rng, 4)), Sample(_away_from_zero(rng, 4, 3), 0),
                                Sample(_away_from_zero(rng, 2, 3, 2), dim=-1)],
                   _glu, torch=_functional("glu")),
}
