"""conv2d / max_pool2d / avg_pool2d as differentiable ops: gradcheck in float64, bias,
partial gradients, defaults, and both backends."""
import numpy as np
import pytest

import autograd_core as ag
from autograd_core import kernels
from autograd_core.ops.conv2d import conv2d
from autograd_core.ops.pool import avg_pool2d, max_pool2d

BACKENDS = ["numpy"] + (["c"] if kernels.extension_available() else [])


def _tensor(rng, shape, requires_grad=True, dtype=np.float64):
    return ag.tensor(rng.standard_normal(shape).astype(dtype), requires_grad=requires_grad)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("stride, padding", [
    (1, "valid"), (1, "same"), (2, "same"), ((2, 1), 1), ((1, 3), ((1, 0), (2, 1)))])
def test_conv2d_gradcheck(backend, stride, padding):
    rng = np.random.default_rng(0)
    x = _tensor(rng, (2, 5, 6, 3))
    weight = _tensor(rng, (3, 2, 3, 4))
    bias = _tensor(rng, (4,))
    with kernels.backend(backend):
        assert ag.gradcheck(lambda x, w, b: conv2d(x, w, b, stride=stride, padding=padding),
                            (x, weight, bias))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kernel_size, stride, padding", [
    (2, None, 0), (3, 1, 1), ((2, 3), (1, 2), ((1, 0), (0, 2))), (2, 1, "same")])
def test_pool_gradcheck(backend, kernel_size, stride, padding):
    rng = np.random.default_rng(1)
    # distinct values keep every maximum strict, so max pooling is differentiable here
    x = ag.tensor(rng.permutation(2 * 5 * 6 * 3).reshape(2, 5, 6, 3) / 10.0, requires_grad=True)
    with kernels.backend(backend):
        assert ag.gradcheck(lambda x: max_pool2d(x, kernel_size, stride, padding), (x,))
        for count_include_pad in (True, False):
            assert ag.gradcheck(lambda x: avg_pool2d(x, kernel_size, stride, padding, count_include_pad), (x,))


@pytest.mark.parametrize("backend", BACKENDS)
def test_conv2d_forward_values_and_bias(backend):
    rng = np.random.default_rng(2)
    x = _tensor(rng, (2, 4, 4, 2), dtype=np.float32)
    weight = _tensor(rng, (3, 3, 2, 5), dtype=np.float32)
    bias = _tensor(rng, (5,), dtype=np.float32)
    with kernels.backend(backend):
        y = conv2d(x, weight, bias, padding=1)
    assert y.shape == (2, 4, 4, 5) and y.dtype == np.float32
    # one output pixel by hand: the window around (1, 2) of image 1
    window = x.data[1, 0:3, 1:4, :]
    expected = np.einsum("hwc,hwcd->d", window, weight.data) + bias.data
    np.testing.assert_allclose(y.data[1, 1, 2], expected, rtol=1e-5)
    with kernels.backend(backend):
        y.sum().backward()
    np.testing.assert_allclose(bias.grad.data, np.full(5, 2 * 4 * 4), rtol=1e-6)
    assert x.grad.shape == x.shape and weight.grad.shape == weight.shape
    assert x.grad.dtype == np.float32 and weight.grad.dtype == np.float32


@pytest.mark.parametrize("backend", BACKENDS)
def test_conv2d_only_computes_needed_gradients(backend):
    rng = np.random.default_rng(3)
    x = _tensor(rng, (1, 4, 4, 2), requires_grad=False)
    weight = _tensor(rng, (2, 2, 2, 3))
    with kernels.backend(backend):
        conv2d(x, weight, stride=2).sum().backward()
    assert x.grad is None
    # each weight tap sees each of the 4 non-overlapping windows exactly once
    taps = x.data[0].reshape(2, 2, 2, 2, 2).sum(axis=(0, 2))  # [kh, kw, c]
    np.testing.assert_allclose(weight.grad.data, np.repeat(taps[..., None], 3, axis=-1), rtol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_pool_stride_defaults_to_kernel_size(backend):
    x = ag.tensor(np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1), requires_grad=True)
    with kernels.backend(backend):
        y = max_pool2d(x, 2)
        z = avg_pool2d(x, 2)
    np.testing.assert_array_equal(y.data.reshape(2, 2), [[5, 7], [13, 15]])
    np.testing.assert_array_equal(z.data.reshape(2, 2), [[2.5, 4.5], [10.5, 12.5]])
    with kernels.backend(backend):
        (y.sum() + z.sum()).backward()
    expected = np.full((4, 4), 0.25, dtype=np.float32)
    expected[1::2, 1::2] += 1.0
    np.testing.assert_array_equal(x.grad.data.reshape(4, 4), expected)


@pytest.mark.parametrize("backend", BACKENDS)
def test_ops_report_bad_arguments(backend):
    rng = np.random.default_rng(4)
    x = _tensor(rng, (1, 4, 4, 2))
    with kernels.backend(backend):
        with pytest.raises(ValueError, match="conv2d.*bias"):
            conv2d(x, _tensor(rng, (2, 2, 2, 3)), _tensor(rng, (4,)))
        with pytest.raises(TypeError, match="conv2d.*bias dtype"):
            conv2d(x, _tensor(rng, (2, 2, 2, 3)), _tensor(rng, (3,), dtype=np.float32))
        with pytest.raises(ValueError, match="conv2d_forward.*channels"):
            conv2d(x, _tensor(rng, (2, 2, 3, 3)))
        # torch's rule: a pad at most half the kernel
        with pytest.raises(ValueError, match=r"max_pool2d: got padding 2 with kernel_size 2, expected each pad at most half"):
            max_pool2d(x, 2, padding=2)
        # a per-side pad as large as the kernel leaves a window of padding only
        with pytest.raises(ValueError, match="max_pool2d_forward.*smaller"):
            max_pool2d(x, 2, padding=((2, 0), (0, 0)))


def test_backends_agree_in_a_small_network():
    if not kernels.extension_available():
        pytest.skip("C extension not built")
    rng = np.random.default_rng(5)
    x_data = rng.standard_normal((3, 8, 8, 2)).astype(np.float32)
    w_data = (rng.standard_normal((3, 3, 2, 4)) * 0.3).astype(np.float32)
    results = {}
    for backend in ("c", "numpy"):
        x = ag.tensor(x_data, requires_grad=True)
        w = ag.tensor(w_data, requires_grad=True)
        with kernels.backend(backend):
            y = avg_pool2d(max_pool2d(conv2d(x, w, padding="same").relu(), 2), 2, padding=1)
            (y * y).sum().backward()
        results[backend] = (y.data, x.grad.data, w.grad.data)
    for a, b in zip(results["c"], results["numpy"]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
