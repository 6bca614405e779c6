"""The activations of autograd_core/ops/activation.py beyond the op table's sweep: the
private erf against math.erf, torch's gradients at the kinks (pinned here as numbers
taken from torch 2.13, and compared live where torch is installed), extreme inputs,
integer inputs, and the errors for bad arguments."""
import math

import numpy as np
import pytest

import autograd_core as ag
from autograd_core import Tensor
from autograd_core.ops.pointwise import erf_values as _erf, erfc_values as _erfc


def _value_and_grad(op, values, *args, **kwargs):
    x = Tensor(np.array(values, dtype=np.float64), requires_grad=True)
    y = op(x, *args, **kwargs)
    y.sum().backward()
    return y.data, x.grad.data


# ---- erf (ops/pointwise.py's, which exact gelu uses through erfc) ----------------------
def test_erf_matches_math_erf_to_1e_15_relative():
    x = np.concatenate([np.linspace(-7.0, 7.0, 20001), np.geomspace(1e-300, 6.0, 2001),
                        [1.999999999, 2.0, 2.000000001, 26.0, 30.0]])
    expected = np.array([math.erf(v) for v in x])
    got = _erf(x)
    assert np.array_equal(got[x == 0], expected[x == 0])
    assert np.max(np.abs(got - expected)[x != 0] / np.abs(expected[x != 0])) < 1e-15
    assert np.array_equal(np.sign(got), np.sign(expected)) and got[x == 2.0] == pytest.approx(math.erf(2.0))


def test_erfc_is_accurate_in_both_tails():
    x = np.linspace(-6.0, 26.0, 16001)
    expected = np.array([math.erfc(v) for v in x])
    got = _erfc(x)
    assert np.max(np.abs(got - expected)) < 1e-15  # absolute everywhere
    far = (x <= 0) | (x >= 2)  # 1 + erf, or the continued fraction: relative accuracy too
    assert np.max(np.abs(got[far] - expected[far]) / expected[far]) < 1e-15


def test_erf_special_values():
    np.testing.assert_array_equal(_erf(np.array([0.0, np.inf, -np.inf, 40.0])), [0.0, 1.0, -1.0, 1.0])
    np.testing.assert_array_equal(_erfc(np.array([0.0, np.inf, -np.inf, 40.0])), [1.0, 0.0, 2.0, 0.0])
    assert np.isnan(_erf(np.array([np.nan]))).all() and np.isnan(_erfc(np.array([np.nan]))).all()
    assert math.copysign(1.0, _erf(np.array([-0.0]))[0]) == -1.0


def _gelu_slope(x):
    """Phi(x) + x phi(x), exact gelu's derivative, with math.erfc."""
    return 0.5 * math.erfc(-x / math.sqrt(2.0)) + x * math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


# ---- gradients at the kinks, as torch defines them -------------------------------------
# (op name, function, arguments, inputs at the kinks, torch's values, torch's gradients)
KINKS = [
    ("hardtanh", {}, [-1.0, 1.0, 0.0, -2.0, 2.0], [-1.0, 1.0, 0.0, -1.0, 1.0], [0.0, 0.0, 1.0, 0.0, 0.0]),
    ("hardtanh", {"min_val": -0.5, "max_val": 2.5}, [-0.5, 2.5], [-0.5, 2.5], [0.0, 0.0]),
    ("relu6", {}, [0.0, 6.0, 3.0, -1.0, 7.0], [0.0, 6.0, 3.0, 0.0, 6.0], [0.0, 0.0, 1.0, 0.0, 0.0]),
    ("hardswish", {}, [-3.0, 3.0, 0.0, -4.0, 4.0], [0.0, 3.0, 0.0, 0.0, 4.0], [0.0, 1.0, 0.5, 0.0, 1.0]),
    ("hardsigmoid", {}, [-3.0, 3.0, 0.0, -4.0, 4.0], [0.0, 1.0, 0.5, 0.0, 1.0], [0.0, 0.0, 1 / 6, 0.0, 0.0]),
    ("selu", {}, [0.0], [0.0], [1.7580993408473766]),
    ("celu", {"alpha": 0.5}, [0.0], [0.0], [1.0]),
    ("softsign", {}, [0.0], [0.0], [1.0]),
    # gelu's left tail: x * erfc(-x / sqrt 2) / 2 (torch's x (1 + erf(x / sqrt 2)) / 2 cancels
    # there, to 0 at -30 and 4e-11 relative at -5; compared with an absolute tolerance below)
    ("gelu", {}, [0.0, -30.0, 30.0, -5.0], [0.0, -15.0 * math.erfc(30.0 / math.sqrt(2.0)), 30.0,
                                            -2.5 * math.erfc(5.0 / math.sqrt(2.0))],
     [0.5, _gelu_slope(-30.0), 1.0, _gelu_slope(-5.0)]),
    ("gelu", {"approximate": "tanh"}, [0.0], [0.0], [0.5]),
    ("mish", {}, [0.0, -30.0, 30.0, -800.0, 800.0], [0.0, -2.807286890651921e-12, 30.0, 0.0, 800.0],
     [0.6, -2.713710660963392e-12, 1.0, 0.0, 1.0]),
    ("logsigmoid", {}, [0.0, -800.0, 800.0], [-math.log(2.0), -800.0, 0.0], [0.5, 1.0, 0.0]),
    ("silu", {}, [0.0, -800.0, 800.0], [0.0, 0.0, 800.0], [0.5, 0.0, 1.0]),
]


@pytest.mark.parametrize("name, kwargs, inputs, values, grads", KINKS, ids=[k[0] for k in KINKS])
def test_values_and_gradients_at_the_kinks_are_torchs(name, kwargs, inputs, values, grads):
    with np.errstate(over="raise", divide="raise", invalid="raise"):  # none in the far tails
        got_values, got_grads = _value_and_grad(getattr(ag, name), inputs, **kwargs)
    np.testing.assert_allclose(got_values, values, rtol=1e-12, atol=0)
    np.testing.assert_allclose(got_grads, grads, rtol=1e-12, atol=0)


@pytest.mark.parametrize("name, kwargs, inputs, values, grads", KINKS, ids=[k[0] for k in KINKS])
def test_kink_values_are_what_torch_computes(name, kwargs, inputs, values, grads):
    torch = pytest.importorskip("torch")
    x = torch.tensor(inputs, dtype=torch.float64, requires_grad=True)
    function = getattr(torch.nn.functional, name)
    y = function(x, **kwargs)
    y.sum().backward()
    np.testing.assert_allclose(y.detach().numpy(), values, rtol=1e-12, atol=1e-16 if name == "gelu" else 0)
    # torch's hardsigmoid backward multiplies by 1/6 rounded to float32, even in float64
    np.testing.assert_allclose(x.grad.numpy(), grads, rtol=1e-7 if name == "hardsigmoid" else 1e-12,
                               atol=1e-16 if name == "gelu" else 0)


def test_prelu_gradients_at_zero_are_torchs():
    # torch: the input's gradient at 0 is the weight, the weight's sums x * grad over x <= 0
    x = Tensor(np.array([0.0, -1.0, 2.0]), requires_grad=True)
    weight = Tensor(np.array([0.25]), requires_grad=True)
    ag.prelu(x, weight).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [0.25, 0.25, 1.0])
    np.testing.assert_array_equal(weight.grad.data, [-1.0])


def test_prelu_weight_is_per_channel_on_the_last_dimension():
    x = Tensor(np.array([[[-1.0, -2.0, 3.0], [-4.0, 5.0, -6.0]]]), requires_grad=True)  # [1, 2, 3]: 3 channels
    weight = Tensor(np.array([0.1, 0.2, 0.3]), requires_grad=True)
    y = ag.prelu(x, weight)
    np.testing.assert_allclose(y.data, [[[-0.1, -0.4, 3.0], [-0.4, 5.0, -1.8]]])
    y.sum().backward()
    np.testing.assert_allclose(weight.grad.data, [-5.0, -2.0, -6.0])
    assert y.shape == (1, 2, 3) and x.prelu(weight).shape == (1, 2, 3)


# ---- dtypes and integer inputs ---------------------------------------------------------
def test_float32_stays_float32():
    x = Tensor(np.linspace(-3, 3, 7, dtype=np.float32))
    for name in ("gelu", "silu", "mish", "hardswish", "hardsigmoid", "selu", "celu", "softsign", "hardtanh",
                 "relu6", "logsigmoid", "softmin", "glu"):
        assert getattr(ag, name)(x if name != "glu" else x[:6]).dtype == np.float32, name
    assert ag.gelu(x, approximate="tanh").dtype == np.float32
    assert ag.prelu(x, Tensor(np.array([0.1], dtype=np.float32))).dtype == np.float32


def test_integer_inputs_as_torch():
    ints = Tensor(np.array([1, 5, -3]))
    assert ag.hardtanh(ints, 0.5, 2.5).dtype == np.int64  # bounds truncated, as in torch: [1, 2, 0]
    np.testing.assert_array_equal(ag.hardtanh(ints, 0.5, 2.5).data, [1, 2, 0])
    relu6 = ag.relu6(Tensor(np.array([1, 7, 250], dtype=np.uint8)))
    assert relu6.dtype == np.uint8
    np.testing.assert_array_equal(relu6.data, [1, 6, 6])
    softsign = ag.softsign(Tensor(np.array([1, -2, 3])))
    assert softsign.dtype == np.float32
    np.testing.assert_allclose(softsign.data, [0.5, -2 / 3, 0.75], rtol=1e-6)
    for name in ("gelu", "silu", "mish", "hardswish", "hardsigmoid", "selu", "celu", "logsigmoid", "softmin", "glu"):
        with pytest.raises(TypeError, match="%s: got a tensor of dtype int64, expected float" % name):
            getattr(ag, name)(Tensor(np.array([1, 2])))
    for name in ("hardtanh", "relu6", "softsign"):
        with pytest.raises(TypeError, match="%s: got a tensor of dtype bool" % name):
            getattr(ag, name)(Tensor(np.array([True, False])))


# ---- softmin and glu -------------------------------------------------------------------
def test_softmin_is_softmax_of_the_negation_with_dim_and_dtype():
    x = np.array([[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]])
    expected = np.exp(-x) / np.exp(-x).sum(axis=0, keepdims=True)
    np.testing.assert_allclose(ag.softmin(Tensor(x), 0).data, expected)
    np.testing.assert_allclose(ag.softmin(Tensor(x), axis=0).data, expected)
    assert ag.softmin(Tensor(x.astype(np.float32)), dim=1, dtype=np.float64).dtype == np.float64
    with pytest.raises(ValueError, match="softmin: dim 2 is out of range for a tensor with 2 dimensions"):
        ag.softmin(Tensor(x), 2)


def test_glu_errors():
    with pytest.raises(ValueError, match="glu: dimension 1 has size 3, expected an even size"):
        ag.glu(Tensor(np.zeros((2, 3))))
    with pytest.raises(ValueError, match="glu: got a 0-d tensor"):
        ag.glu(Tensor(np.array(1.0)))
    with pytest.raises(TypeError, match="glu: got dim=0.5, expected an int"):
        ag.glu(Tensor(np.zeros((2, 4))), 0.5)


# ---- bad arguments ---------------------------------------------------------------------
def test_bad_arguments_name_the_op():
    x = Tensor(np.array([0.5, -0.5]))
    with pytest.raises(ValueError, match="gelu: got approximate='foo', expected 'none' or 'tanh'"):
        ag.gelu(x, approximate="foo")
    with pytest.raises(ValueError, match="celu: got alpha=0, expected a nonzero alpha"):
        ag.celu(x, alpha=0)
    with pytest.raises(TypeError, match="celu: got alpha='1', expected a number"):
        ag.celu(x, alpha="1")
    with pytest.raises(ValueError, match="hardtanh: got min_val=1.0 > max_val=-1.0"):
        ag.hardtanh(x, 1.0, -1.0)
    with pytest.raises(ValueError, match=r"prelu: got 2 weights for an input of shape \(2, 3\), expected 1 or 3"):
        ag.prelu(Tensor(np.zeros((2, 3))), Tensor(np.zeros(2)))
    with pytest.raises(ValueError, match=r"prelu: got 2 weights for an input of shape \(2,\), expected 1 or 1"):
        ag.prelu(x, Tensor(np.zeros(2)))  # fewer than two dimensions: one channel, as in torch
    with pytest.raises(ValueError, match=r"prelu: got a weight of shape \(3, 1\), expected 0-d or 1-D"):
        ag.prelu(Tensor(np.zeros((2, 3))), Tensor(np.zeros((3, 1))))
    with pytest.raises(TypeError, match="prelu: got x of dtype float32 and weight of dtype float64"):
        ag.prelu(Tensor(np.zeros(3, dtype=np.float32)), Tensor(np.zeros(1)))
    with pytest.raises(TypeError, match="prelu: got x of dtype int64, expected float"):
        ag.prelu(Tensor(np.array([1, 2])), Tensor(np.zeros(1)))


def test_prelu_accepts_a_0d_weight_and_a_0d_input():
    assert ag.prelu(Tensor(np.array(-2.0)), Tensor(np.array([0.25]))).shape == ()
    np.testing.assert_allclose(ag.prelu(Tensor(np.array([-2.0, 3.0])), Tensor(np.array(0.25))).data, [-0.5, 3.0])
