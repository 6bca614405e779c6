"""Hypothesis strategies shared by the engine tests: shapes, arrays and values kept off
the points where an op is not differentiable.

Shapes are small (sides 1 to 3, ranks 0 to 4) because gradcheck perturbs every element
twice; size-1 sides are drawn often, so broadcasting and squeezing get exercised.
"""
import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import autograd_core as ag

MAX_DIMS = 4
MAX_SIDE = 3

# -- element strategies (float64 values) -----------------------------------------------------
# anywhere: for ops that are smooth everywhere (add, tanh, exp, ...)
smooth = st.floats(-2.0, 2.0, allow_nan=False, allow_infinity=False, width=64)
# strictly positive and not tiny: log, sqrt, bases of real powers
positive = st.floats(0.3, 3.0, allow_nan=False, allow_infinity=False, width=64)
# |value| >= 0.3: denominators
nonzero = st.tuples(st.sampled_from([-1.0, 1.0]), positive).map(lambda pair: pair[0] * pair[1])
# k / 10 + 0.05: never within 0.05 of 0 or of any multiple of 0.1, so kinks at 0 (relu, abs,
# leaky_relu, elu) and clip bounds on the 0.1 grid are never within finite-difference reach
off_grid = st.integers(-20, 19).map(lambda k: k / 10.0 + 0.05)


def values_on_grid(offset):
    """Values k / 2 + offset: two strategies with offsets 0.1 and 0.35 never produce equal
    values (they differ by at least 0.25), which keeps maximum/minimum away from ties."""
    return st.integers(-4, 4).map(lambda k: k / 2.0 + offset)


# -- shapes ---------------------------------------------------------------------------------------
def shapes(min_dims=0, max_dims=MAX_DIMS, min_side=1, max_side=MAX_SIDE):
    """Array shapes with ranks in [min_dims, max_dims]."""
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side)


def broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=MAX_DIMS, max_side=MAX_SIDE):
    """A tuple of num_shapes shapes that broadcast together (with stretched size-1 sides and
    missing leading dimensions)."""
    return hnp.mutually_broadcastable_shapes(
        num_shapes=num_shapes, min_dims=min_dims, max_dims=max_dims, min_side=1,
        max_side=max_side).map(lambda result: result.input_shapes)


def arrays(shape, elements=smooth, dtype=np.float64, unique=False):
    """numpy arrays of the given shape (or shape strategy) and dtype."""
    return hnp.arrays(dtype, shape, elements=elements, unique=unique)


def distinct_arrays(shape):
    """float64 arrays whose elements are pairwise at least 0.1 apart (no ties for max/min/
    argmax). Holds up to 81 = 3**4 elements."""
    return hnp.arrays(np.float64, shape, elements=st.integers(-60, 60).map(lambda k: k / 10.0), unique=True)


@st.composite
def axis_args(draw, shape, allow_none=True, allow_tuple=True):
    """An axis for a reduction over shape: None, an int (negative too) or a non-empty tuple."""
    ndim = len(shape)
    options = []
    if allow_none:
        options.append(st.none())
    if ndim:
        options.append(st.integers(-ndim, ndim - 1))
        if allow_tuple:
            options.append(hnp.valid_tuple_axes(ndim, min_size=1))
    return draw(st.one_of(*options))


@st.composite
def reduction_cases(draw, min_dims=0, elements=None, distinct=False):
    """(array, axis, keepdims) for reductions."""
    shape = draw(shapes(min_dims=min_dims))
    array = draw(distinct_arrays(shape) if distinct else arrays(shape, elements or smooth))
    axis = draw(axis_args(shape))
    return array, axis, draw(st.booleans())


@st.composite
def matmul_cases(draw):
    """(a, b) float64 arrays for a @ b: 1-D, 2-D, 1-D with N-D, and batched with broadcasting."""
    m, k, n = (draw(st.integers(1, 3)) for _ in range(3))
    kind = draw(st.sampled_from(["1d@1d", "2d@2d", "1d@nd", "nd@1d", "batched"]))
    if kind == "1d@1d":
        shape_a, shape_b = (k,), (k,)
    elif kind == "2d@2d":
        shape_a, shape_b = (m, k), (k, n)
    elif kind == "1d@nd":
        batch = draw(shapes(0, 2))
        shape_a, shape_b = (k,), batch + (k, n)
    elif kind == "nd@1d":
        batch = draw(shapes(0, 2))
        shape_a, shape_b = batch + (m, k), (k,)
    else:
        batch_a, batch_b = draw(broadcastable_shapes(2, min_dims=0, max_dims=2))
        shape_a, shape_b = batch_a + (m, k), batch_b + (k, n)
    return draw(arrays(shape_a)), draw(arrays(shape_b))


def leaf(array, requires_grad=True):
    """A float64 leaf tensor (a copy of array)."""
    return ag.tensor(np.array(array, dtype=np.float64), dtype=np.float64, requires_grad=requires_grad)


def leaves(*arrays):
    return tuple(leaf(a) for a in arrays)
