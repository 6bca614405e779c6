"""Bias + ReLU kernels (autograd_core/kernels/activation.py, csrc/activation*.c) and the ops
that use them: C against the numpy reference on every SIMD level and thread count, the
ReLU's NaN rule, the fused conv2d / linear(activation='relu') against the unfused ops,
Sequential's fusion, gradcheck in float64, and argument validation."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kernel_configurations import BACKENDS, CONFIGURATIONS, FLOAT_DTYPES, LEVELS, configured, needs_c, sum_tolerance

import autograd_core as ag
import nn
from autograd_core import kernels
from autograd_core.gradcheck import gradcheck
from autograd_core.kernels import activation

CI = settings(derandomize=True, deadline=None, max_examples=25)
# The C path's threads start from 2 Mi elements (csrc/activation_driver.h): one case that
# large (8 MiB of float32) runs the split, its 16-element groups and its partial sums.
LARGE_ROWS, LARGE_CHANNELS = 65537, 32


def _values(rng, shape, dtype, specials):
    """Normal values with, when specials, NaN, +-inf, +-0.0 sprinkled in."""
    x = rng.standard_normal(shape).astype(dtype)
    if specials and x.size:
        flat = x.reshape(-1)
        picks = rng.integers(0, flat.size, size=max(1, flat.size // 7))
        flat[picks] = rng.choice(np.array([np.nan, np.inf, -np.inf, 0.0, -0.0], dtype=dtype), size=picks.size)
    return x


def _run_both(level, threads, fn):
    with kernels.backend("numpy"):
        expected = fn()
    with configured(level, threads):
        got = fn()
    return got, expected


@st.composite
def activation_cases(draw):
    # channel counts that take the AVX-512 (16k), AVX2 (8k) and portable (others) loops
    channels = draw(st.sampled_from([1, 3, 8, 10, 16, 24, 32, 48, 64]))
    rows = draw(st.integers(0, 40))
    leading = draw(st.sampled_from([(rows,), (1, rows), (rows, 1)]))
    return (leading + (channels,), draw(st.sampled_from(FLOAT_DTYPES)), draw(st.booleans()),
            draw(st.booleans()), draw(st.booleans()), draw(st.integers(0, 2 ** 16)))


@needs_c
@pytest.mark.parametrize("simd_level, threads", CONFIGURATIONS)
@CI
@given(case=activation_cases())
def test_bias_relu_matches_reference(simd_level, threads, case):
    shape, dtype, with_bias, relu, specials, seed = case
    rng = np.random.default_rng(seed)
    x = _values(rng, shape, dtype, specials)
    bias = _values(rng, shape[-1:], dtype, specials) if with_bias else None
    grad = _values(rng, shape, dtype, specials)
    (y, mask), (y_ref, mask_ref) = _run_both(simd_level, threads,
                                             lambda: activation.bias_relu_forward(x, bias, relu))
    # bit for bit, the sign of zero included (numpy's maximum gives +0.0 for -0.0)
    assert y.dtype == dtype and y.tobytes() == y_ref.tobytes()
    if relu:
        assert mask.dtype == np.uint8 and np.array_equal(mask, mask_ref)
    else:
        assert mask is None and mask_ref is None
    (grad_x, grad_bias), (grad_x_ref, grad_bias_ref) = _run_both(
        simd_level, threads, lambda: activation.relu_bias_backward(grad, mask_ref, with_bias=True))
    assert grad_x.tobytes() == grad_x_ref.tobytes()
    np.testing.assert_allclose(grad_bias, grad_bias_ref, equal_nan=True,
                               rtol=sum_tolerance(dtype, x.size), atol=sum_tolerance(dtype, x.size))


@needs_c
@pytest.mark.parametrize("simd_level, threads", CONFIGURATIONS)
def test_large_arrays_split_over_threads_match_reference(simd_level, threads):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((LARGE_ROWS, LARGE_CHANNELS)).astype(np.float32)
    bias = rng.standard_normal(LARGE_CHANNELS).astype(np.float32)
    grad = rng.standard_normal(x.shape).astype(np.float32)
    (y, mask), (y_ref, mask_ref) = _run_both(simd_level, threads, lambda: activation.bias_relu_forward(x, bias))
    assert np.array_equal(y, y_ref) and np.array_equal(mask, mask_ref)
    (grad_x, grad_bias), (grad_x_ref, grad_bias_ref) = _run_both(
        simd_level, threads, lambda: activation.relu_bias_backward(grad, mask))
    assert np.array_equal(grad_x, grad_x_ref)
    np.testing.assert_allclose(grad_bias, grad_bias_ref, rtol=1e-4, atol=sum_tolerance(np.float32, LARGE_ROWS))


@pytest.mark.parametrize("backend", BACKENDS)
def test_mask_is_packbits_of_the_output(backend):
    x = np.array([[1.0, -1.0, 0.0, -0.0, np.nan, np.inf, -np.inf, 2.0, 3.0]], dtype=np.float32)
    with kernels.backend(backend):
        y, mask = activation.bias_relu_forward(x)
    np.testing.assert_array_equal(y, [[1.0, 0.0, 0.0, 0.0, np.nan, np.inf, 0.0, 2.0, 3.0]])
    assert not np.signbit(y).any()
    # element i is bit i % 8 of byte i / 8: elements 0, 5, 7 and 8 are > 0
    np.testing.assert_array_equal(mask, [0b10100001, 0b00000001])


@pytest.mark.parametrize("backend", BACKENDS)
def test_in_place_forward_writes_out(backend):
    x = np.array([[-1.0, 2.0], [3.0, -4.0]])
    with kernels.backend(backend):
        y, _ = activation.bias_relu_forward(x, np.array([0.5, -0.5]), out=x)
    assert y is x
    np.testing.assert_array_equal(x, [[0.0, 1.5], [3.5, 0.0]])


def test_backward_without_mask_or_bias_returns_grad_itself():
    grad = np.ones((2, 3), dtype=np.float32)
    grad_x, grad_bias = activation.relu_bias_backward(grad, None, with_bias=False)
    assert grad_x is grad and grad_bias is None


@pytest.mark.parametrize("call, message", [
    (lambda: activation.bias_relu_forward([1.0]), "numpy.ndarray"),
    (lambda: activation.bias_relu_forward(np.ones((2, 3), np.float32), np.ones(2, np.float32)), "bias"),
    (lambda: activation.bias_relu_forward(np.ones((2, 3), np.float32), np.ones(3)), "float64"),
    (lambda: activation.bias_relu_forward(np.ones((2, 3), np.int64)), "int64"),
    (lambda: activation.bias_relu_forward(np.ones((2, 3)), out=np.ones((3, 2))), "out"),
    (lambda: activation.relu_bias_backward(np.ones((2, 3)), np.zeros(2, np.uint8)), "mask"),
    (lambda: activation.relu_bias_backward(np.ones((2, 3)), np.zeros(1, np.int64)), "mask"),
])
def test_arguments_are_checked(call, message):
    with pytest.raises((TypeError, ValueError), match=message):
        call()


# ---- the ops: the ReLU rule, fused against unfused ----------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("size", [5, 5000])  # numpy's maximum below 4096 elements, the C pass above
def test_relu_passes_nan_forward_and_gives_zero_gradient_where_inactive(backend, size):
    values = np.resize(np.array([np.nan, -1.0, 2.0, 0.0, -0.0], dtype=np.float32), size)
    upstream = np.resize(np.array([1.0, np.nan, 3.0, np.inf, 5.0], dtype=np.float32), size)
    with kernels.backend(backend):
        x = ag.tensor(values, requires_grad=True)
        y = ag.relu(x)
        y.backward(upstream)
    np.testing.assert_array_equal(y.numpy()[:5], [np.nan, 0.0, 2.0, 0.0, 0.0])
    # NaN inputs and inactive units get exactly 0, whatever the upstream gradient (a select)
    np.testing.assert_array_equal(x.grad.numpy()[:5], [0.0, 0.0, 3.0, 0.0, 0.0])


def _conv_case(rng, dtype, channels_out=32, specials=False):
    x = _values(rng, (3, 6, 5, 16), dtype, specials)
    weight = (rng.standard_normal((3, 3, 16, channels_out)) * 0.2).astype(dtype)
    bias = rng.standard_normal(channels_out).astype(dtype)
    return x, weight, bias


def _fused_and_unfused(op, inputs, upstream, **kwargs):
    """(output, gradients) of op(..., activation='relu') and of relu(op(...))."""
    results = []
    for fused in (True, False):
        tensors = [ag.tensor(v, requires_grad=True) for v in inputs]
        y = op(*tensors, activation="relu", **kwargs) if fused else ag.relu(op(*tensors, **kwargs))
        y.backward(upstream)
        results.append((y.numpy(), [t.grad.numpy() for t in tensors]))
    return results


@pytest.mark.parametrize("simd_level, threads", CONFIGURATIONS if kernels.extension_available() else [])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("specials", [False, True])
def test_fused_conv2d_and_linear_equal_unfused(simd_level, threads, dtype, specials):
    rng = np.random.default_rng(2)
    x, weight, bias = _conv_case(rng, dtype, specials=specials)
    tolerance = 1e-5 if dtype == np.float32 else 1e-12
    with configured(simd_level, threads):
        upstream = rng.standard_normal((3, 6, 5, 32)).astype(dtype)
        (y, grads), (y_ref, grads_ref) = _fused_and_unfused(ag.conv2d, (x, weight, bias), upstream, padding="same")
        # the forward is the same conv and the same pass: equal bit for bit
        assert y.tobytes() == y_ref.tobytes()
        for got, wanted in zip(grads, grads_ref):
            np.testing.assert_allclose(got, wanted, rtol=tolerance, atol=tolerance * 10)
        rows = x.reshape(-1, 16)[:40]
        linear_weight, linear_bias = weight.reshape(-1, 32)[:16].T.copy(), bias
        upstream = rng.standard_normal((40, 32)).astype(dtype)
        (y, grads), (y_ref, grads_ref) = _fused_and_unfused(ag.linear, (rows, linear_weight, linear_bias), upstream)
        assert y.tobytes() == y_ref.tobytes()
        for got, wanted in zip(grads, grads_ref):
            np.testing.assert_allclose(got, wanted, rtol=tolerance, atol=tolerance * 10)


@pytest.mark.parametrize("backend", BACKENDS)
def test_fused_ops_match_the_numpy_reference_of_the_unfused_ops(backend):
    rng = np.random.default_rng(3)
    x, weight, bias = _conv_case(rng, np.float32, channels_out=24)
    upstream = rng.standard_normal((3, 6, 5, 24)).astype(np.float32)
    with kernels.backend("numpy"):
        _, (y_ref, grads_ref) = _fused_and_unfused(ag.conv2d, (x, weight, bias), upstream, padding="same")
    with kernels.backend(backend):
        (y, grads), _ = _fused_and_unfused(ag.conv2d, (x, weight, bias), upstream, padding="same")
    np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-5)
    for got, wanted in zip(grads, grads_ref):
        np.testing.assert_allclose(got, wanted, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("backend", BACKENDS)
def test_fused_ops_gradcheck_in_float64(backend):
    rng = np.random.default_rng(4)

    def away_from_kink(*shape):
        return rng.uniform(0.5, 1.5, shape) * rng.choice([-1.0, 1.0], shape)

    with kernels.backend(backend):
        conv_inputs = [ag.tensor(v, requires_grad=True)
                       for v in (away_from_kink(2, 4, 4, 3), away_from_kink(2, 2, 3, 5), away_from_kink(5))]
        assert gradcheck(lambda x, w, b: ag.conv2d(x, w, b, padding=1, activation="relu"), conv_inputs)
        linear_inputs = [ag.tensor(v, requires_grad=True)
                         for v in (away_from_kink(4, 3), away_from_kink(6, 3), away_from_kink(6))]
        assert gradcheck(lambda x, w, b: ag.linear(x, w, b, activation="relu"), linear_inputs)


def test_fused_ops_under_no_grad_keep_no_mask_and_give_the_same_output():
    rng = np.random.default_rng(5)
    x, weight, bias = (ag.tensor(v, requires_grad=True) for v in _conv_case(rng, np.float32))
    with ag.no_grad():
        y = ag.conv2d(x, weight, bias, padding="same", activation="relu")
    assert y.grad_fn is None
    np.testing.assert_array_equal(y.numpy(), ag.relu(ag.conv2d(x, weight, bias, padding="same")).numpy())


@pytest.mark.parametrize("op, args", [
    (ag.conv2d, (np.ones((1, 3, 3, 1)), np.ones((1, 1, 1, 2)))),
    (ag.linear, (np.ones((2, 3)), np.ones((4, 3)))),
])
def test_unknown_activation_is_an_error_naming_the_op(op, args):
    with pytest.raises(ValueError, match=r"%s: got activation='tanh', expected None or 'relu'" % op.__name__):
        op(*(ag.tensor(a) for a in args), activation="tanh")


# ---- Sequential folds Conv2d / Linear + ReLU into the fused op -----------------------------

def _seed_cnn_like():
    nn.init.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 16, 3, padding="same"), nn.ReLU(), nn.MaxPool2d(2, 2), nn.Flatten(),
                         nn.Linear(4 * 4 * 16, 32), nn.ReLU(), nn.Linear(32, 8), nn.ReLU(), nn.Tanh(),
                         nn.Linear(8, 3))


def test_sequential_fuses_relu_and_matches_running_the_modules_one_by_one():
    model = _seed_cnn_like()
    x = ag.tensor(np.random.default_rng(6).standard_normal((5, 8, 8, 1)).astype(np.float32))
    fused = model(x)
    fused.sum().backward()
    fused_grads = [p.grad.numpy().copy() for p in model.parameters()]
    model.zero_grad()
    y = x
    for module in model:
        y = module(y)
    y.sum().backward()
    np.testing.assert_allclose(fused.numpy(), y.numpy(), rtol=1e-6, atol=1e-6)
    for got, wanted in zip(fused_grads, [p.grad.numpy() for p in model.parameters()]):
        np.testing.assert_allclose(got, wanted, rtol=1e-5, atol=1e-6)


def test_sequential_fusion_leaves_one_node_per_layer():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU())
    y = model(ag.tensor(np.ones((2, 3), dtype=np.float32)))
    assert y.grad_fn.function.__name__ == "Linear"  # the ReLU is inside the Linear node
    assert y.grad_fn.function.__name__ != "Relu"


def test_sequential_runs_a_subclass_that_overrides_forward_as_written():
    class Doubled(nn.Linear):
        def forward(self, x):
            return super().forward(x) * 2.0

    nn.init.manual_seed(0)
    model = nn.Sequential(Doubled(3, 2), nn.ReLU())
    x = ag.tensor(np.array([[1.0, -2.0, 0.5]], dtype=np.float32))
    layer = model[0]
    expected = np.maximum((x.numpy() @ layer.weight.numpy().T + layer.bias.numpy()) * 2.0, 0)
    np.testing.assert_allclose(model(x).numpy(), expected, rtol=1e-6)


# ---- gelu (one pass each way) ----------------------------------------------------------------
# float32 against the reference: the reference's own float32 rounding dominates (its
# erfc argument -x/sqrt 2 is rounded in float32, its tanh form's 1 - tanh^2 cancels: up to
# 3e-6 measured at |x| <= 12), so 1e-5; float64 both sides are libm's to a few ulp.
GELU_TOLERANCE = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}
GELU_FORMS = ["none", "tanh"]
# the pass's three functions: gelu's two forms and silu (the same C loops)
FORMS = GELU_FORMS + ["silu"]


def _forward(form, x):
    return activation.silu_forward(x) if form == "silu" else activation.gelu_forward(x, form)


def _backward(form, x, grad):
    return activation.silu_backward(x, grad) if form == "silu" else activation.gelu_backward(x, grad, form)


@st.composite
def gelu_cases(draw):
    # sizes around the AVX2 (4 doubles) and AVX-512 (8) vectors: the padded last vector
    size = draw(st.one_of(st.integers(0, 40), st.integers(41, 600)))
    shape = draw(st.sampled_from([(size,), (1, size), (size, 1)]))
    return (shape, draw(st.sampled_from(FLOAT_DTYPES)), draw(st.sampled_from(FORMS)),
            draw(st.booleans()), draw(st.sampled_from([1.0, 4.0])), draw(st.integers(0, 2 ** 16)))


def _assert_gelu_close(got, expected, dtype):
    tolerance = GELU_TOLERANCE[np.dtype(dtype)]
    assert got.dtype == dtype and got.shape == expected.shape
    # NaN exactly where the reference has NaN (NaN inputs, gelu(-inf), slope at +-inf)
    np.testing.assert_allclose(got, expected, rtol=tolerance, atol=tolerance, equal_nan=True)
    assert np.array_equal(np.isnan(got), np.isnan(expected))


@needs_c
@pytest.mark.parametrize("simd_level, threads", CONFIGURATIONS)
@CI
@given(case=gelu_cases())
def test_gelu_matches_reference(simd_level, threads, case):
    shape, dtype, approximate, specials, scale, seed = case
    rng = np.random.default_rng(seed)
    x = (_values(rng, shape, dtype, specials) * dtype(scale)).astype(dtype)
    grad = _values(rng, shape, dtype, specials)
    # no infinite gradients: where the reference's float32 slope underflows to 0 (tanh
    # rounded to -1 from x ~ -9 on) inf * 0 is NaN, where the kernel's tiny slope gives inf
    grad[np.isinf(grad)] = np.nan
    with np.errstate(invalid="ignore", over="ignore"):
        y, y_ref = _run_both(simd_level, threads, lambda: _forward(approximate, x))
        grad_x, grad_x_ref = _run_both(simd_level, threads, lambda: _backward(approximate, x, grad))
    _assert_gelu_close(y, y_ref, dtype)
    _assert_gelu_close(grad_x, grad_x_ref, dtype)


@needs_c
@pytest.mark.parametrize("simd_level, threads", CONFIGURATIONS)
@pytest.mark.parametrize("approximate", FORMS)
def test_gelu_special_values(simd_level, threads, approximate):
    """NaN stays NaN, gelu(inf) = inf, gelu(-inf) = NaN (x * 0, as the formula gives),
    the slope at +-inf is NaN (inf * 0); zeros give zero and the slope 1/2. silu alike."""
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 40.0, -40.0], dtype=np.float32)
    grad = np.ones_like(x)
    with configured(simd_level, threads):
        y = _forward(approximate, x)
        slope = _backward(approximate, x, grad)
    if approximate == "silu":  # sigmoid(40) rounds to 1 in float32, sigmoid(-40) is 4e-18
        np.testing.assert_array_equal(y[:6], [np.nan, np.inf, np.nan, 0.0, 0.0, 40.0])
        np.testing.assert_allclose(y[6], -40 / (1 + np.exp(40.0)), rtol=1e-6)
        np.testing.assert_array_equal(slope[:6], [np.nan, np.nan, np.nan, 0.5, 0.5, 1.0])
    else:
        np.testing.assert_array_equal(y, [np.nan, np.inf, np.nan, 0.0, 0.0, 40.0, 0.0])
        np.testing.assert_array_equal(slope, [np.nan, np.nan, np.nan, 0.5, 0.5, 1.0, 0.0])
    with configured(simd_level, threads):
        assert np.isnan(_backward(approximate, np.float32([1.0]), np.float32([np.nan]))[0])


@needs_c
@pytest.mark.parametrize("simd_level", LEVELS)
@pytest.mark.parametrize("approximate", GELU_FORMS)
def test_gelu_float32_is_accurate_in_the_left_tail(simd_level, approximate):
    """The C pass is within a few ulp of gelu computed in float64 from the same float32
    inputs, down to x = -12 (gelu ~ -1e-32), where e^(-x^2/2) of a float32-rounded x^2
    alone would cost ~100 ulp (and PyTorch's float32 gelu, 1 + erf cancelling, is off by
    1e-4 at x = -3 and gives 0 from x ~ -5.8): the exact form's float lanes within 4 eps
    relative (3.1 eps measured over every 64th float32 in [-12, 12]), the tanh form's
    double lanes within 1.5 eps; the backward within 1e-7 absolute (its zero near
    x = -0.75) plus 4 eps relative. The tanh form's float64 truth is 1 + tanh(s) written
    as 2 / (1 + e^(-2s)): the reference's 1 + tanh(s) cancels to nothing in the tail even
    in float64."""
    x = np.linspace(-12, 12, 48001).astype(np.float32)
    x = x[x != 0]
    wide = x.astype(np.float64)
    if approximate == "none":
        with kernels.backend("numpy"):
            truth = activation.gelu_forward(wide, approximate)
            truth_slope = activation.gelu_backward(wide, np.ones(x.size), approximate)
    else:
        scale, cubic = np.sqrt(2 / np.pi), 0.044715
        with np.errstate(over="ignore"):
            q = 2 / (1 + np.exp(-2 * scale * (wide + cubic * wide ** 3)))
        truth = 0.5 * wide * q
        truth_slope = 0.5 * q + 0.5 * wide * q * (2 - q) * scale * (1 + 3 * cubic * wide ** 2)
    with configured(simd_level, 1):
        y = activation.gelu_forward(x, approximate)
        slope = activation.gelu_backward(x, np.ones_like(x), approximate)
    eps, tiny = np.finfo(np.float32).eps, np.finfo(np.float32).tiny  # (below tiny: subnormal)
    forward_rtol = 4 * eps if approximate == "none" and simd_level > 0 else 1.5 * eps
    np.testing.assert_allclose(y, truth.astype(np.float32), rtol=forward_rtol, atol=tiny)
    np.testing.assert_allclose(slope, truth_slope.astype(np.float32), rtol=4 * eps, atol=1e-7)


@needs_c
@pytest.mark.parametrize("simd_level", LEVELS)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_gelu_large_arrays_split_over_threads(simd_level, dtype):
    """From 32 Ki elements the pass takes the threads: each element is computed alone, so
    1 and 2 threads give the same bytes, on an odd size and a strided input."""
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((2 * 100003 + 1,)) * 3).astype(dtype)[::2]  # strided: copied once
    grad = rng.standard_normal(x.shape).astype(dtype)
    results = {}
    for threads in (1, 2):
        with configured(simd_level, threads):
            results[threads] = [_forward(form, x).tobytes() for form in FORMS] + \
                               [_backward(form, x, grad).tobytes() for form in FORMS]
    assert results[1] == results[2]
    with kernels.backend("numpy"):
        expected = activation.gelu_forward(x, "none")
    _assert_gelu_close(np.frombuffer(results[2][0], dtype=dtype), expected, dtype)


@pytest.mark.parametrize("backend", BACKENDS)
def test_gelu_other_float_dtypes_take_the_reference(backend):
    x = np.linspace(-3, 3, 13).astype(np.float16)
    with kernels.backend(backend):
        y = activation.gelu_forward(x)
        slopes = [activation.gelu_backward(x, np.ones_like(x), "tanh"), activation.silu_backward(x, np.ones_like(x))]
        silu = activation.silu_forward(x)
    assert y.dtype == np.float16 and silu.dtype == np.float16 and all(s.dtype == np.float16 for s in slopes)
    with kernels.backend("numpy"):
        np.testing.assert_array_equal(silu, activation.silu_forward_reference(x))
    with kernels.backend("numpy"):
        np.testing.assert_array_equal(y, activation.gelu_forward_reference(x))


@pytest.mark.parametrize("call, error, message", [
    (lambda: activation.gelu_forward(np.ones(3, np.float32), "erf"), ValueError,
     r"gelu_forward: got approximate='erf', expected 'none' or 'tanh'"),
    (lambda: activation.gelu_forward([1.0]), TypeError, r"gelu_forward: got x of type list"),
    (lambda: activation.gelu_forward(np.ones(3, np.int64)), TypeError, r"gelu_forward: got x of type int64"),
    (lambda: activation.gelu_backward(np.ones(3, np.float32), np.ones(4, np.float32)), ValueError,
     r"gelu_backward: got grad \(4,\) float32, expected the input's shape \(3,\)"),
    (lambda: activation.gelu_backward(np.ones(3, np.float32), np.ones(3)), ValueError,
     r"gelu_backward: got grad .* float64, expected the input's shape \(3,\) and dtype float32"),
    (lambda: activation.silu_forward(np.ones(3, np.int32)), TypeError, r"silu_forward: got x of type int32"),
    (lambda: activation.silu_backward(np.ones(3), np.ones((3, 1))), ValueError,
     r"silu_backward: got grad \(3, 1\) float64, expected the input's shape \(3,\)"),
])
def test_gelu_arguments_are_checked(call, error, message):
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_gelu_and_silu_ops_give_the_kernels_values(form, dtype):
    """ag.gelu / ag.silu's forward and first-order backward are the kernel's passes (on
    every backend), and their float64 gradients pass gradcheck."""
    rng = np.random.default_rng(4)
    values = (rng.standard_normal((37, 9)) * 3).astype(dtype)
    grad = rng.standard_normal(values.shape).astype(dtype)
    for backend in BACKENDS:
        with kernels.backend(backend):
            x = ag.tensor(values, requires_grad=True)
            y = ag.silu(x) if form == "silu" else ag.gelu(x, approximate=form)
            y.backward(ag.tensor(grad))
            np.testing.assert_array_equal(y.numpy(), _forward(form, values))
            np.testing.assert_array_equal(x.grad.numpy(), _backward(form, values, grad))
    if dtype == np.float64:
        op = ag.silu if form == "silu" else (lambda t: ag.gelu(t, approximate=form))
        assert gradcheck(op, (ag.tensor(values[:4, :5], requires_grad=True),))
