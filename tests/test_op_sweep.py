"""Every elementwise op and reduction of the op table over hypothesis-drawn shapes: ranks
0 to 4 with size-0 and size-1 dims, every broadcasting pair numpy allows for the binary
ops, and any set of dims (keepdim or not) for the reductions. Each draw checks the
forward against the entry's numpy reference and, for differentiable ops, gradcheck in
float64. The values come from the entry's own generator (``OpEntry.sweep``), which keeps
them off the op's kinks and outside its domain's edges, as its fixed samples are."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra.numpy import array_shapes, mutually_broadcastable_shapes

from autograd_core import Tensor, gradcheck, registry

from op_table import TABLE

OPS = registry.ops()
SWEEPS = {kind: sorted(name for name, entry in TABLE.items() if entry.sweep and entry.sweep[0] == kind)
          for kind in ("unary", "binary", "reduction")}
SHAPES = array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=3)
# few draws per op: the ops are many and each draw gradchecks every element
PER_OP = settings(max_examples=15)


def _check(name, arrays, kwargs, call=None):
    entry, function = TABLE[name], OPS[name].function
    call = call or (lambda *tensors: function(*tensors, **kwargs))
    expected = np.asarray(entry.reference(*arrays, **kwargs))
    got = call(*[Tensor(a) for a in arrays])
    assert got.shape == expected.shape
    np.testing.assert_allclose(got.data, expected, rtol=1e-10, atol=1e-12)
    if entry.gradcheck and OPS[name].differentiable:
        assert gradcheck(call, tuple(Tensor(a, requires_grad=True) for a in arrays)) is True


def _values(generator, seed, shape):
    return np.asarray(generator(np.random.default_rng(seed), *shape), dtype=np.float64)


def test_the_sweep_covers_the_elementwise_ops():
    # a guard against the builders losing their sweep: these families are large
    assert len(SWEEPS["unary"]) >= 40 and len(SWEEPS["binary"]) >= 10 and len(SWEEPS["reduction"]) >= 4


@pytest.mark.parametrize("name", SWEEPS["unary"])
@PER_OP
@given(shape=SHAPES, seed=st.integers(0, 2 ** 16))
def test_unary_op_over_drawn_shapes(name, shape, seed):
    _, values, kwargs = TABLE[name].sweep
    _check(name, [_values(values, seed, shape)], kwargs)


@pytest.mark.parametrize("name", SWEEPS["binary"])
@PER_OP
@given(shapes=mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, min_side=0, max_side=3),
       seed=st.integers(0, 2 ** 16))
def test_binary_op_over_drawn_broadcast_shapes(name, shapes, seed):
    _, first, second, kwargs = TABLE[name].sweep
    a_shape, b_shape = shapes.input_shapes
    _check(name, [_values(first, seed, a_shape), _values(second, seed + 1, b_shape)], kwargs)


@pytest.mark.parametrize("name", SWEEPS["reduction"])
@PER_OP
@given(data=st.data(), keepdim=st.booleans(), seed=st.integers(0, 2 ** 16))
def test_reduction_over_drawn_shapes_and_dims(name, data, keepdim, seed):
    # sides of 2 and 3: var/std need two values along what they reduce
    shape = data.draw(array_shapes(min_dims=1, max_dims=4, min_side=2, max_side=3), label="shape")
    dims = tuple(sorted(data.draw(st.sets(st.integers(0, len(shape) - 1), min_size=1), label="dims")))
    _, values, _ = TABLE[name].sweep
    x = _values(values, seed, shape)
    _check(name, [x], {"dim": dims, "keepdim": keepdim})
