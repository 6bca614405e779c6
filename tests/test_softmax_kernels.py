"""Softmax kernels (autograd_core/kernels/softmax.py, csrc/softmax*.c): C against the numpy
reference at every SIMD level and thread count, the reference against a float64 formula,
the causal limit, the threads' split, in-place use, special values and argument
validation."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kernel_configurations import BACKENDS, CONFIGURATIONS, FLOAT_DTYPES, configured, needs_c

from autograd_core import kernels
from autograd_core.kernels import softmax

CI = settings(derandomize=True, deadline=None, max_examples=25)
# The C path's threads start from 2 Mi elements (csrc/softmax.c): this shape is above it
# (and its width not a multiple of the vector widths), so the row split runs.
LARGE = (32771, 67)


def _tolerance(dtype):
    # a row's values and sums of up to a few hundred terms, each exp ~1 ulp (float32's polynomial)
    return 64 * np.finfo(dtype).eps


def _scores(seed, shape, dtype, spread=3.0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) * spread).astype(dtype), rng.standard_normal(shape).astype(dtype)


def _both(x, grad, causal):
    y = softmax.softmax_forward(x.copy(), causal)
    return y, softmax.softmax_backward(y, grad, causal)


def _expected(x, grad, causal):
    """The formula in float64, from scratch (not the reference's code)."""
    x64, grad64 = x.astype(np.float64), grad.astype(np.float64)
    rows, width = x.shape
    y = np.zeros_like(x64)
    for row in range(rows):
        kept = row % width + 1 if causal else width
        e = np.exp(x64[row, :kept] - x64[row, :kept].max())
        y[row, :kept] = e / e.sum()
    grad_x = y * (grad64 - (grad64 * y).sum(axis=1, keepdims=True))
    return y, grad_x


@st.composite
def cases(draw):
    # widths below, at and off the 4 / 8 / 16 float lanes; rows that are and are not
    # whole [width, width] stacks
    width = draw(st.sampled_from([1, 2, 3, 7, 8, 16, 17, 33, 64]))
    rows = draw(st.sampled_from([1, 2, 5, width, 3 * width, 200]))
    return (rows, width), draw(st.sampled_from(FLOAT_DTYPES)), draw(st.booleans()), draw(st.integers(0, 2 ** 16))


@given(cases())
@CI
def test_reference_matches_the_formula(case):
    shape, dtype, causal, seed = case
    x, grad = _scores(seed, shape, dtype)
    with kernels.backend("numpy"):
        got = _both(x, grad, causal)
    for actual, wanted in zip(got, _expected(x, grad, causal)):
        assert actual.dtype == dtype
        np.testing.assert_allclose(actual, wanted, rtol=_tolerance(dtype), atol=_tolerance(dtype))


@needs_c
@pytest.mark.parametrize("level, threads", CONFIGURATIONS)
@given(case=cases())
@CI
def test_c_matches_reference(level, threads, case):
    shape, dtype, causal, seed = case
    x, grad = _scores(seed, shape, dtype)
    with kernels.backend("numpy"):
        expected = _both(x, grad, causal)
    with configured(level, threads):
        got = _both(x, grad, causal)
    for actual, wanted in zip(got, expected):
        assert actual.shape == wanted.shape and actual.dtype == dtype
        np.testing.assert_allclose(actual, wanted, rtol=_tolerance(dtype), atol=_tolerance(dtype))
    if causal:  # the blocked columns are exactly 0 both ways
        blocked = np.arange(shape[1])[None, :] > (np.arange(shape[0]) % shape[1])[:, None]
        assert not got[0][blocked].any() and not got[1][blocked].any()


@needs_c
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("causal", [False, True])
def test_threads_split_large_inputs_alike(dtype, causal):
    """Above the threading threshold the rows are split; every thread count gives the
    same bits, and the reference's values."""
    x, grad = _scores(7, LARGE, dtype)
    results = []
    for threads in (1, 2, 3):
        with configured(kernels.cpu_simd_level(), threads):
            results.append(_both(x, grad, causal))
    for got in results[1:]:
        for actual, first in zip(got, results[0]):
            np.testing.assert_array_equal(actual, first)
    with kernels.backend("numpy"):
        expected = _both(x, grad, causal)
    for actual, wanted in zip(results[0], expected):
        np.testing.assert_allclose(actual, wanted, rtol=_tolerance(dtype), atol=_tolerance(dtype))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_special_values(backend, dtype):
    """-inf columns give 0 (an additive mask), huge spreads underflow to 0 (not to a
    denormal garbage or NaN), a NaN makes its row NaN, a row all -inf is NaN (as numpy)."""
    inf = np.inf
    x = np.array([[0.0, -inf, 1.0, -inf],
                  [0.0, -200.0, -90.0, -1000.0],
                  [1.0, np.nan, 2.0, 3.0],
                  [-inf, -inf, -inf, -inf],
                  [50.0, 50.0, 50.0, 50.0]], dtype=dtype)
    with kernels.backend(backend), np.errstate(invalid="ignore"):
        y = softmax.softmax_forward(x.copy(), False)
    e = np.exp(dtype(-1.0))
    np.testing.assert_allclose(y[0], [e / (1 + e), 0, 1 / (1 + e), 0], rtol=_tolerance(dtype))
    assert y[1, 0] == 1 and y[1, 3] == 0 and 0 <= y[1, 2] < 1e-30 and np.isfinite(y[1]).all()
    assert np.isnan(y[2]).all() and np.isnan(y[3]).all()
    np.testing.assert_allclose(y[4], 0.25, rtol=_tolerance(dtype))


@pytest.mark.parametrize("backend", BACKENDS)
def test_in_place_and_large_scores(backend):
    """The forward writes the caller's array; the backward may write over grad; large
    scores (where exp(x) alone overflows) are fine after the max is taken off."""
    x, grad = _scores(3, (20, 10), np.float32, spread=100.0)
    with kernels.backend("numpy"):
        y_expected, grad_expected = _both(x, grad, True)
    with kernels.backend(backend):
        y = x.copy()
        assert softmax.softmax_forward(y, causal=True) is y
        grad_x = grad.copy()
        assert softmax.softmax_backward(y, grad_x, causal=True, out=grad_x) is grad_x
    np.testing.assert_allclose(y, y_expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(grad_x, grad_expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(y.sum(axis=1), 1, rtol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_strided_inputs_of_the_backward(backend):
    """y and grad may be views in other layouts (copied for C), out is written alone."""
    x, grad = _scores(5, (12, 9), np.float64)
    y = softmax.softmax_forward(x.copy(), False)
    with kernels.backend("numpy"):
        expected = softmax.softmax_backward(y, grad, False)
    y_fortran, grad_view = np.asfortranarray(y), np.concatenate([grad, grad], axis=1)[:, :9]
    with kernels.backend(backend):
        got = softmax.softmax_backward(y_fortran, grad_view, False)
    np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-13)


def test_empty_arrays():
    for causal in (False, True):
        for shape in ((0, 4), (3, 0)):
            x = np.zeros(shape, np.float32)
            assert softmax.softmax_forward(x, causal) is x
            assert softmax.softmax_backward(x, x.copy(), causal).shape == shape


def test_validation_names_the_op():
    x = np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError, match=r"softmax_forward: got x of shape \(3,\), expected a 2-d"):
        softmax.softmax_forward(np.zeros(3, np.float32))
    with pytest.raises(TypeError, match="softmax_forward: got dtypes x=int64, expected all float32"):
        softmax.softmax_forward(np.zeros((2, 3), np.int64))
    with pytest.raises(ValueError, match="softmax_forward: got x that is not a writable"):
        softmax.softmax_forward(np.zeros((3, 2), np.float32).T)
    with pytest.raises(TypeError, match=r"softmax_forward: got causal=1, expected True or False"):
        softmax.softmax_forward(x, 1)
    with pytest.raises(ValueError, match=r"softmax_backward: got grad of shape \(2, 4\) for y of shape \(2, 3\)"):
        softmax.softmax_backward(x, np.zeros((2, 4), np.float32))
    with pytest.raises(TypeError, match="softmax_backward: got dtypes y=float32, grad=float64"):
        softmax.softmax_backward(x, np.zeros((2, 3)))
    with pytest.raises(ValueError, match="softmax_backward: got out of shape"):
        softmax.softmax_backward(x, x, out=np.zeros((2, 3)))
    frozen = np.zeros((2, 3), np.float32)
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="softmax_backward: got out that is not a writable"):
        softmax.softmax_backward(x, x, out=frozen)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", ["causal", "general"])
def test_packed_attention_with_either_mask_matches_its_ops(backend, kind):
    """nn/apps/gpt.py PackedAttention runs the kernels' causal limit for the causal mask
    and adds any other mask before a full-row softmax: both match the attention written
    with ops (its graph form), values and gradients."""
    import autograd_core as ag
    from nn.apps import gpt

    rng = np.random.default_rng(11)
    batch, length, heads, head_dim = 2, 19, 2, 3  # 19: a block of 16 and a tail
    packed = ag.tensor(rng.standard_normal((batch * length, 3 * heads * head_dim)), requires_grad=True)
    causal = np.where(np.tril(np.ones((length, length), dtype=bool)), 0.0, -np.inf)
    if kind == "causal":
        mask = causal
    else:  # finite additive terms and some blocked keys, no row blocked entirely
        mask = rng.standard_normal((length, length))
        mask[rng.random((length, length)) < 0.3] = -np.inf
        mask[:, 0] = 0.0
    assert gpt.PackedAttention._is_causal(mask) == (kind == "causal")
    weight = ag.tensor(rng.standard_normal((batch * length, heads * head_dim)))
    with kernels.backend(backend):
        fused = gpt.PackedAttention.apply(packed, heads, mask, 0.4)
        (grad_fused,) = ag.grad((fused * weight).sum(), [packed])
    composed = gpt._split_attend_merge(packed, heads, mask, 0.4)
    (grad_composed,) = ag.grad((composed * weight).sum(), [packed])
    np.testing.assert_allclose(fused.data, composed.data, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grad_fused.data, grad_composed.data, rtol=1e-10, atol=1e-12)
