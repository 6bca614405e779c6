"""Layer norm and batch norm kernels (autograd_core/kernels/norm.py, csrc/norm*.c) and the
ops that use them: C against the numpy reference on every SIMD level and thread count,
the reference against a float64 formula, results that do not depend on the thread count
or the level, the ops on both backends, gradcheck in float64, and argument validation."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kernel_configurations import (BACKENDS, CONFIGURATIONS, FLOAT_DTYPES, LEVELS, configured, needs_c,
                                   sum_tolerance)

import autograd_core as ag
from autograd_core import kernels
from autograd_core.gradcheck import gradcheck
from autograd_core.kernels import norm
from autograd_core.ops.normalization import batch_norm

CI = settings(derandomize=True, deadline=None, max_examples=20)
# The C path's threads start from 2 Mi elements (csrc/norm.c): these shapes are above it
# (and not multiples of the vector widths), so the split and the chunked partial sums run.
LARGE_LAYER, LARGE_BATCH = (32771, 67), (65539, 33)


def _arrays(seed, shape, dtype, affine):
    rng = np.random.default_rng(seed)
    # an offset and a scale: the statistics must not cancel away the mean
    x = (rng.standard_normal(shape) * 3 + 1.5).astype(dtype)
    grad = rng.standard_normal(shape).astype(dtype)
    weight = rng.standard_normal(shape[1]).astype(dtype) if affine[0] else None
    bias = rng.standard_normal(shape[1]).astype(dtype) if affine[1] else None
    return x, grad, weight, bias


def _layer(x, grad, weight, bias):
    y, mean, rstd = norm.layer_norm_forward(x, weight, bias, 1e-5)
    return (y, mean, rstd) + norm.layer_norm_backward(grad, x, mean, rstd, weight)


def _batch(x, grad, weight, bias):
    y, mean, var, rstd = norm.batch_norm_forward(x, weight, bias, 1e-5)
    return (y, mean, var, rstd) + norm.batch_norm_backward(grad, x, mean, rstd, weight)


def _compare(got, expected, tolerance):
    assert len(got) == len(expected)
    for actual, wanted in zip(got, expected):
        if wanted is None:
            assert actual is None
            continue
        assert actual.shape == wanted.shape and actual.dtype == wanted.dtype
        np.testing.assert_allclose(actual, wanted, rtol=tolerance, atol=tolerance)


@st.composite
def norm_cases(draw):
    # widths below, at and off the 16 lanes and the 8 / 16 float vector widths
    width = draw(st.sampled_from([1, 2, 7, 8, 16, 17, 33, 64, 128]))
    rows = draw(st.sampled_from([1, 2, 5, 31, 32, 65, 200]))
    return ((rows, width), draw(st.sampled_from(FLOAT_DTYPES)), (draw(st.booleans()), draw(st.booleans())),
            draw(st.integers(0, 2 ** 16)))


@needs_c
@pytest.mark.parametrize("simd_level, threads", CONFIGURATIONS)
@CI
@given(case=norm_cases())
def test_layer_norm_matches_reference(simd_level, threads, case):
    shape, dtype, affine, seed = case
    arrays = _arrays(seed, shape, dtype, affine)
    with kernels.backend("numpy"):
        expected = _layer(*arrays)
    with configured(simd_level, threads):
        got = _layer(*arrays)
    _compare(got, expected, sum_tolerance(dtype, shape[0] * shape[1]))


@needs_c
@pytest.mark.parametrize("simd_level, threads", CONFIGURATIONS)
@CI
@given(case=norm_cases())
def test_batch_norm_matches_reference(simd_level, threads, case):
    shape, dtype, affine, seed = case
    arrays = _arrays(seed, shape, dtype, affine)
    with kernels.backend("numpy"):
        expected = _batch(*arrays)
    with configured(simd_level, threads):
        got = _batch(*arrays)
    _compare(got, expected, sum_tolerance(dtype, shape[0] * shape[1]))


@needs_c
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("run, shape", [(_layer, LARGE_LAYER), (_batch, LARGE_BATCH)], ids=["layer", "batch"])
def test_large_results_do_not_depend_on_threads_or_level(run, shape, dtype):
    """The chunked partial sums are added in chunk order, and every level adds in the same
    order: bit for bit the same result on every configuration, and the reference's within
    the float tolerance."""
    arrays = _arrays(3, shape, dtype, (True, True))
    with kernels.backend("numpy"):
        expected = run(*arrays)
    first = None
    for level in LEVELS:
        for threads in (1, 2, 3):
            with configured(level, threads):
                got = run(*arrays)
            _compare(got, expected, sum_tolerance(dtype, shape[0] * shape[1]))
            if first is None:
                first = got
            for actual, wanted in zip(got, first):
                assert actual.tobytes() == wanted.tobytes(), "level %d, %d threads" % (level, threads)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_references_match_a_float64_formula(dtype):
    x, grad, weight, bias = _arrays(5, (40, 24), dtype, (True, True))
    wide = [a.astype(np.float64) for a in (x, grad, weight, bias)]
    tolerance = 1e-4 if dtype == np.float32 else 1e-10

    def formula(axis):
        xw, gw, ww, bw = wide
        mean = xw.mean(axis=axis, keepdims=True)
        rstd = 1 / np.sqrt(((xw - mean) ** 2).mean(axis=axis, keepdims=True) + 1e-5)
        xhat = (xw - mean) * rstd
        g = gw * ww if axis == 1 else gw
        scale = rstd if axis == 1 else rstd * ww
        grad_x = scale * (g - g.mean(axis=axis, keepdims=True) - xhat * (g * xhat).mean(axis=axis, keepdims=True))
        # the affine parameters are per column in both: their gradients sum over the rows
        return xhat * ww + bw, grad_x, (gw * xhat).sum(axis=0), gw.sum(axis=0)

    with kernels.backend("numpy"):
        layer, batch = _layer(x, grad, weight, bias), _batch(x, grad, weight, bias)
    for got, wanted in zip((layer[0],) + layer[3:], formula(1)):
        np.testing.assert_allclose(got, wanted, rtol=tolerance, atol=tolerance)
    for got, wanted in zip((batch[0],) + batch[4:], formula(0)):
        np.testing.assert_allclose(got, wanted, rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("backend", BACKENDS)
def test_layer_norm_backward_gives_only_what_is_asked(backend):
    x, grad, weight, _ = _arrays(1, (6, 10), np.float32, (True, False))
    with kernels.backend(backend):
        _, mean, rstd = norm.layer_norm_forward(x, weight)
        grad_x, grad_weight, grad_bias = norm.layer_norm_backward(grad, x, mean, rstd, weight, input_grad=False,
                                                                  bias_grad=False)
        assert grad_x is None and grad_bias is None and grad_weight.shape == (10,)
        full = norm.layer_norm_backward(grad, x, mean, rstd, weight)
        assert full[1].tobytes() == grad_weight.tobytes()
        assert norm.layer_norm_backward(grad, x, mean, rstd, None)[1] is None
        assert norm.batch_norm_backward(grad, x, *norm.batch_norm_forward(x)[1::2], input_grad=False)[0] is None


@pytest.mark.parametrize("call, message", [
    (lambda: norm.layer_norm_forward(np.zeros(4, np.float32)), "2-d"),
    (lambda: norm.layer_norm_forward(np.zeros((2, 0), np.float32)), "at least one feature"),
    (lambda: norm.layer_norm_forward(np.zeros((2, 3), np.int64)), "float32 or all float64"),
    (lambda: norm.layer_norm_forward(np.zeros((2, 3), np.float32), np.ones(4, np.float32)), r"weight of shape \(4,\)"),
    (lambda: norm.layer_norm_forward(np.zeros((2, 3), np.float32), None, np.ones(3)), "bias of dtype float64"),
    (lambda: norm.layer_norm_forward(np.zeros((2, 3), np.float32), eps=-1.0), "eps"),
    (lambda: norm.layer_norm_backward(np.zeros((2, 4), np.float32), np.zeros((2, 3), np.float32),
                                      np.zeros(2, np.float32), np.zeros(2, np.float32)), r"grad of shape \(2, 4\)"),
    (lambda: norm.layer_norm_backward(np.zeros((2, 3), np.float32), np.zeros((2, 3), np.float32),
                                      np.zeros(3, np.float32), np.zeros(2, np.float32)), r"mean of shape \(3,\)"),
    (lambda: norm.batch_norm_forward(np.zeros((0, 3), np.float32)), "at least one row"),
    (lambda: norm.batch_norm_backward(np.zeros((2, 3), np.float32), np.zeros((2, 3), np.float32),
                                      np.zeros(3, np.float32), None), "rstd"),
])
def test_arguments_are_checked(call, message):
    with pytest.raises((TypeError, ValueError), match=message) as error:
        call()
    assert "norm_" in str(error.value)


# ---- the ops on both backends --------------------------------------------------------------

@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_layer_norm_and_batch_norm_ops_agree_across_backends(dtype):
    rng = np.random.default_rng(7)
    x_data = (rng.standard_normal((4, 5, 6)) * 2 + 1).astype(dtype)
    weight_data, bias_data = rng.standard_normal(6).astype(dtype), rng.standard_normal(6).astype(dtype)
    results = []
    for backend in BACKENDS:
        with kernels.backend(backend):
            x, weight, bias = (ag.Tensor(a.copy(), requires_grad=True) for a in (x_data, weight_data, bias_data))
            running_mean, running_var = np.zeros(6, dtype), np.ones(6, dtype)
            out = ag.layer_norm(x, 6, weight, bias) * 2 + batch_norm(x, running_mean, running_var, weight, bias,
                                                                     training=True)
            (out * out).sum().backward()
            results.append([out.data, x.grad, weight.grad, bias.grad, running_mean, running_var])
    for got, wanted in zip(results[-1], results[0]):
        np.testing.assert_allclose(got, wanted, rtol=sum_tolerance(dtype, 120), atol=sum_tolerance(dtype, 120))


@pytest.mark.parametrize("backend", BACKENDS)
def test_layer_norm_and_batch_norm_ops_gradcheck(backend):
    rng = np.random.default_rng(2)
    x = ag.Tensor(rng.standard_normal((3, 4, 5)), requires_grad=True)
    weight, bias = (ag.Tensor(rng.standard_normal(5), requires_grad=True) for _ in range(2))
    with kernels.backend(backend):
        assert gradcheck(lambda x, w, b: ag.layer_norm(x, 5, w, b), [x, weight, bias])
        assert gradcheck(lambda x, w, b: ag.layer_norm(x, (4, 5), None, None) * w + b, [x, weight, bias])
        assert gradcheck(lambda x, w, b: batch_norm(x, None, None, w, b, training=True), [x, weight, bias])
        assert gradcheck(lambda x: batch_norm(x, None, None, None, None, training=True), [x])
