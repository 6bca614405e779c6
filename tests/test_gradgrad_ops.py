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


# ---- over hypothesis-drawn shapes: every swept op (elementwise and reductions) -------------
from hypothesis import settings  # noqa: E402
from hypothesis.extra.numpy import array_shapes, mutually_broadcastable_shapes  # noqa: E402

SWEEPS = {kind: sorted(name for name, entry in TABLE.items() if entry.sweep and entry.sweep[0] == kind
                       and entry.gradcheck and OPS[name].differentiable and not _once_differentiable(name))
          for kind in ("unary", "binary", "reduction")}
# small sides and few draws: each draw differentiates numerically with respect to every
# element of the inputs and of the output gradient
PER_OP = settings(max_examples=6)


def _values(generator, seed, shape):
    return np.asarray(generator(np.random.default_rng(seed), *shape), dtype=np.float64)


def _leaves(*arrays):
    return tuple(Tensor(a, requires_grad=True) for a in arrays)


@pytest.mark.parametrize("name", SWEEPS["unary"])
@PER_OP
@given(shape=array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=2), seed=st.integers(0, 2 ** 16))
def test_unary_gradgrad_over_drawn_shapes(name, shape, seed):
    _, values, kwargs = TABLE[name].sweep
    x = _values(values, seed, shape)
    if x.size:
        assert gradgradcheck(lambda t: OPS[name].function(t, **kwargs), _leaves(x)) is True


@pytest.mark.parametrize("name", SWEEPS["binary"])
@PER_OP
@given(shapes=mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, min_side=1, max_side=2),
       seed=st.integers(0, 2 ** 16))
def test_binary_gradgrad_over_drawn_broadcast_shapes(name, shapes, seed):
    _, first, second, kwargs = TABLE[name].sweep
    a_shape, b_shape = shapes.input_shapes
    a, b = _values(first, seed, a_shape), _values(second, seed + 1, b_shape)
    assert gradgradcheck(lambda x, y: OPS[name].function(x, y, **kwargs), _leaves(a, b)) is True


@pytest.mark.parametrize("name", SWEEPS["reduction"])
@PER_OP
@given(data=st.data(), keepdim=st.booleans(), seed=st.integers(0, 2 ** 16))
def test_reduction_gradgrad_over_drawn_shapes_and_dims(name, data, keepdim, seed):
    shape = data.draw(array_shapes(min_dims=1, max_dims=3, min_side=2, max_side=3), label="shape")
    dims = tuple(sorted(data.draw(st.sets(st.integers(0, len(shape) - 1), min_size=1), label="dims")))
    _, values, _ = TABLE[name].sweep
    x = _values(values, seed, shape)
    assert gradgradcheck(lambda t: OPS[name].function(t, dim=dims, keepdim=keepdim), _leaves(x)) is True


def test_the_gradgrad_sweep_covers_the_elementwise_ops():
    assert len(SWEEPS["unary"]) >= 40 and len(SWEEPS["binary"]) >= 10 and len(SWEEPS["reduction"]) >= 4
