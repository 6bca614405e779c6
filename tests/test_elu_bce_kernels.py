"""elu and the binary cross-entropy with logits as one C pass each way
(autograd_core/kernels/activation.py, csrc/activation_exp_level.h): C against the numpy
reference on every SIMD level and thread count, float32 accuracy against float64 math,
special values, thread splits, the ops that use them (elu, binary_cross_entropy_with_logits,
the VAE's loss) against the numpy backend, and argument validation."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kernel_configurations import CONFIGURATIONS, FLOAT_DTYPES, LEVELS, configured, needs_c

import autograd_core as ag
import nn
from autograd_core import kernels
from autograd_core.kernels import activation

CI = settings(derandomize=True, deadline=None, max_examples=25)
# float32: the reference's own float32 roundings dominate (elu's backward alpha * expm1(x)
# + alpha, the cross-entropy's max(x, 0) - x t and sigmoid - t cancel: absolute errors of
# a few eps times the operands); float64: libm both sides, to a few ulp.
TOLERANCE = {np.dtype(np.float32): 2e-6, np.dtype(np.float64): 1e-12}
FORMS = ["elu_forward", "elu_backward", "bce_forward", "bce_backward"]


def _run(form, x, other, parameter):
    if form == "elu_forward":
        return activation.elu_forward(x, parameter)
    if form == "elu_backward":
        return activation.elu_backward(x, other, parameter)
    if form == "bce_forward":
        return activation.bce_logits_forward(x, other)
    return activation.bce_logits_backward(x, other, parameter)


def _values(rng, shape, dtype, specials):
    x = rng.standard_normal(shape).astype(dtype)
    if specials and x.size:
        flat = x.reshape(-1)
        picks = rng.integers(0, flat.size, size=max(1, flat.size // 7))
        flat[picks] = rng.choice(np.array([np.nan, np.inf, -np.inf, 0.0, -0.0], dtype=dtype), size=picks.size)
    return x


@st.composite
def cases(draw):
    # sizes around the AVX2 (4 doubles) and AVX-512 (8) vectors: the padded last vector
    size = draw(st.one_of(st.integers(0, 40), st.integers(41, 600)))
    shape = draw(st.sampled_from([(size,), (1, size), (size, 1)]))
    return (shape, draw(st.sampled_from(FLOAT_DTYPES)), draw(st.sampled_from(FORMS)), draw(st.booleans()),
            draw(st.sampled_from([0.5, 1.0, 8.0])), draw(st.sampled_from([1.0, 0.3, 2.5])),
            draw(st.integers(0, 2 ** 16)))


@needs_c
@pytest.mark.parametrize("simd_level, threads", CONFIGURATIONS)
@CI
@given(case=cases())
def test_matches_reference(simd_level, threads, case):
    shape, dtype, form, specials, scale, parameter, seed = case
    rng = np.random.default_rng(seed)
    x = (_values(rng, shape, dtype, specials) * dtype(scale)).astype(dtype)
    if form.startswith("bce"):  # targets are probabilities
        other = rng.random(shape).astype(dtype)
    else:  # finite gradients: inf * a slope the reference rounds to 0 is NaN
        other = _values(rng, shape, dtype, specials)
        other[np.isinf(other)] = np.nan
    with np.errstate(invalid="ignore", over="ignore"):
        with kernels.backend("numpy"):
            expected = _run(form, x, other, parameter)
        with configured(simd_level, threads):
            got = _run(form, x, other, parameter)
    tolerance = TOLERANCE[np.dtype(dtype)]
    assert got.dtype == dtype and got.shape == expected.shape
    magnitude = 1.0 + np.abs(np.nan_to_num(x, posinf=0, neginf=0)) if form == "bce_forward" else 1.0
    assert np.array_equal(np.isnan(got), np.isnan(expected))
    with np.errstate(invalid="ignore"):
        close = np.abs(got - expected) <= tolerance * (np.abs(expected) + magnitude)
    assert np.all(close | (got == expected) | np.isnan(expected)), (x[~close], got[~close], expected[~close])


def _float64_truth(form, x, other, parameter):
    """The form in float64 (math's expm1 / log1p) of float32 inputs."""
    x, other = x.astype(np.float64), other.astype(np.float64)
    if form == "elu_forward":
        return np.where(x > 0, x, parameter * np.expm1(np.minimum(x, 0)))
    if form == "elu_backward":
        return other * np.where(x > 0, 1.0, parameter * np.exp(np.minimum(x, 0)))
    if form == "bce_forward":
        return np.maximum(x, 0) - x * other + np.log1p(np.exp(-np.abs(x)))
    return (1 / (1 + np.exp(-x)) - other) * parameter


@needs_c
@pytest.mark.parametrize("simd_level", LEVELS)
@pytest.mark.parametrize("form", FORMS)
def test_float32_is_rounded_float64(simd_level, form):
    """The float32 pass is the float64 value rounded once (1 ulp at most), including where
    the float32 reference cancels: expm1 near 0, log1p(e^-|x|) for large |x|, sigmoid - t."""
    x = np.concatenate([-np.logspace(-12, 2, 600), np.logspace(-12, 2, 600),
                        np.linspace(-20, 20, 801)]).astype(np.float32)
    other = np.random.default_rng(0).random(x.size).astype(np.float32)
    other[::3] = 1.0
    with configured(simd_level, 1):
        got = _run(form, x, other, 1.7)
    truth = _float64_truth(form, x, other, 1.7)
    ulp = np.spacing(np.abs(truth).astype(np.float32)).astype(np.float64)
    assert np.all(np.abs(got.astype(np.float64) - truth) <= ulp + 1e-45)


@needs_c
@pytest.mark.parametrize("simd_level, threads", CONFIGURATIONS)
def test_special_values(simd_level, threads):
    """NaN stays NaN; elu(inf) = inf, elu(-inf) = -alpha, its slope 1 and 0 there; the
    cross-entropy of x = -inf against t is inf * t, of +inf NaN (inf - inf * t), its
    gradient sigmoid(+-inf) - t."""
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0], dtype=np.float32)
    ones = np.ones_like(x)
    half = np.full_like(x, 0.5)
    with configured(simd_level, threads):
        np.testing.assert_array_equal(activation.elu_forward(x, 2.0), [np.nan, np.inf, -2.0, 0.0, 0.0])
        np.testing.assert_array_equal(activation.elu_backward(x, ones, 2.0), [np.nan, 1.0, 0.0, 2.0, 2.0])
        with np.errstate(invalid="ignore"):
            np.testing.assert_array_equal(activation.bce_logits_forward(x, half),
                                          np.float32([np.nan, np.nan, np.inf, math.log(2), math.log(2)]))
        np.testing.assert_array_equal(activation.bce_logits_backward(x, half, 2.0), [np.nan, 1.0, -1.0, 0.0, 0.0])


@needs_c
@pytest.mark.parametrize("simd_level", LEVELS)
@pytest.mark.parametrize("form", FORMS)
def test_thread_split_gives_the_same_bits(simd_level, form):
    """From 32 Ki elements on the pass is split over threads; each element is computed
    alone, so the result is the one-thread result bit for bit (odd size: a padded tail)."""
    rng = np.random.default_rng(1)
    x = (rng.standard_normal(100003) * 4).astype(np.float32)
    other = rng.random(x.size).astype(np.float32)
    results = []
    for threads in (1, 2, 3):
        with configured(simd_level, threads):
            results.append(_run(form, x, other, 0.9))
    assert all(np.array_equal(results[0], result) for result in results[1:])


@needs_c
def test_vae_loss_and_gradients_match_the_numpy_backend():
    """The VAE's loss (elu layers, the cross-entropy, the KL term) and its gradients on the
    C passes equal the numpy reference's to float32 rounding."""
    from nn.autoencoders import VariationalAutoencoder

    rng = np.random.default_rng(2)
    images = ag.Tensor(rng.random((16, 784), dtype=np.float32))
    noise = rng.standard_normal((16, 20))
    results = {}
    for name in ("numpy", "c"):
        nn.init.manual_seed(3)
        model = VariationalAutoencoder(784, (64,), 20)
        with kernels.backend(name):
            loss = model.loss(images, noise)
            loss.backward()
        results[name] = (float(loss.data), [p.grad.data.copy() for p in model.parameters()])
    (loss_ref, grads_ref), (loss, grads) = results["numpy"], results["c"]
    assert loss == pytest.approx(loss_ref, rel=1e-5)
    for grad, grad_ref in zip(grads, grads_ref):
        np.testing.assert_allclose(grad, grad_ref, rtol=1e-3, atol=1e-4 * np.abs(grad_ref).max())


def test_arguments_are_checked():
    x = np.zeros(4, dtype=np.float32)
    with pytest.raises(TypeError, match="elu_forward: got x of type"):
        activation.elu_forward([1.0, 2.0])
    with pytest.raises(ValueError, match="elu_backward: got grad"):
        activation.elu_backward(x, np.zeros(3, dtype=np.float32))
    with pytest.raises(ValueError, match="bce_logits_forward: got target .* expected the input's shape"):
        activation.bce_logits_forward(x, np.zeros(4, dtype=np.float64))
    with pytest.raises(ValueError, match="bce_logits_backward: got target"):
        activation.bce_logits_backward(x, np.zeros((2, 2), dtype=np.float32), 1.0)
