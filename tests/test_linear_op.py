"""The fused linear op: values, gradients, layouts and errors."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import autograd_core as ag


@given(batch=st.integers(1, 5), fan_in=st.integers(1, 6), fan_out=st.integers(1, 5),
       lead=st.sampled_from([(), (2,), (2, 3)]), with_bias=st.booleans())
def test_linear_matches_numpy_and_passes_gradcheck(batch, fan_in, fan_out, lead, with_bias):
    rng = np.random.default_rng(batch * 100 + fan_in * 10 + fan_out)
    x = ag.tensor(rng.standard_normal(lead + (batch, fan_in)), dtype="float64", requires_grad=True)
    w = ag.tensor(rng.standard_normal((fan_out, fan_in)), dtype="float64", requires_grad=True)
    b = ag.tensor(rng.standard_normal(fan_out), dtype="float64", requires_grad=True) if with_bias else None
    expected = x.data @ w.data.T + (b.data if with_bias else 0)
    np.testing.assert_allclose(ag.linear(x, w, b).data, expected, rtol=1e-12, atol=1e-12)
    inputs = (x, w, b) if with_bias else (x, w)
    assert ag.gradcheck(lambda *t: ag.linear(*t), inputs)


def test_linear_weight_gradient_is_c_contiguous_float32():
    x = ag.randn(4, 3)
    w = ag.randn(5, 3, requires_grad=True)
    ag.linear(x, w).sum().backward()
    assert w.grad.dtype == np.float32 and w.grad.data.flags.c_contiguous
    np.testing.assert_allclose(w.grad.data, np.ones((4, 5), np.float32).T @ x.data, rtol=1e-6)


def test_leaf_gradient_of_a_transposed_use_is_c_contiguous():
    w = ag.randn(3, 5, requires_grad=True)
    (ag.randn(2, 5) @ w.T).sum().backward()
    assert w.grad.data.flags.c_contiguous


@pytest.mark.parametrize("x_shape, w_shape, b_shape, message", [
    ((2, 3), (4, 2), None, r"linear: got input of shape \(2, 3\) and weight of shape \(4, 2\)"),
    ((2, 3), (4, 3, 1), None, r"linear: got weight of shape \(4, 3, 1\)"),
    ((2, 3), (4, 3), (3,), r"linear: got bias of shape \(3,\), expected \(4,\)"),
])
def test_linear_shape_errors_name_the_op_and_shapes(x_shape, w_shape, b_shape, message):
    bias = ag.zeros(b_shape) if b_shape else None
    with pytest.raises(ValueError, match=message):
        ag.linear(ag.zeros(x_shape), ag.zeros(w_shape), bias)


def test_linear_refuses_mixed_dtypes():
    with pytest.raises(TypeError, match="linear: got dtypes"):
        ag.linear(ag.zeros((2, 3)), ag.zeros((4, 3), dtype="float64"))
