"""conv2d / max_pool2d / avg_pool2d as differentiable ops: gradcheck in float64, bias,
partial gradients, defaults, and both backends."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

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
            assert ag.gradcheck(lambda x: avg_pool2d(x, kernel_size, stride, padding, count_include_pad=count_include_pad), (x,))


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
        with pytest.raises(ValueError,
                           match=r"max_pool2d: got padding 2 with kernel_size 2, expected each pad at most half"):
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


# ---- the pooling and resampling variants (ops/pool.py, ops/sampling.py) ------------------------

def _distinct(rng, *shape):
    return rng.permutation(int(np.prod(shape))).reshape(shape) / 10.0 - 1.0


@pytest.mark.parametrize("backend", BACKENDS)
def test_max_pool2d_indices_are_in_plane_and_agree_with_the_numpy_path(backend):
    """The C path (dilation 1) and the window-table path (ops/pool.py's _max_pool) give
    the same values, indices and gradients; each index is h * W + w in its own plane."""
    from autograd_core.ops.pool import _max_pool
    rng = np.random.default_rng(6)
    data = _distinct(rng, 2, 7, 6, 3)
    for kwargs in (dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
                   dict(kernel_size=(2, 3), stride=(2, 1), padding=((1, 0), (2, 1)), ceil_mode=True)):
        results = []
        for path in ("c", "windows"):
            x = ag.tensor(data, requires_grad=True)
            with kernels.backend(backend):
                if path == "c":
                    y, indices = max_pool2d(x, return_indices=True, **kwargs)
                else:
                    y, indices = _max_pool("max_pool2d", x, 2, kwargs["kernel_size"], kwargs.get("stride"),
                                           kwargs.get("padding", 0), 1, kwargs.get("ceil_mode", False), True)
                (y * y).sum().backward()
            assert indices.dtype == np.int64 and not indices.requires_grad and indices.grad_fn is None
            results.append((y.data, indices.data, x.grad.data))
        for a, b in zip(*results):
            np.testing.assert_array_equal(a, b)
        y, indices, _ = results[0]
        rows, cols = np.divmod(indices, data.shape[2])
        batch = np.arange(data.shape[0]).reshape(-1, 1, 1, 1)
        channel = np.arange(data.shape[3])
        np.testing.assert_array_equal(data[batch, rows, cols, channel], y)


def test_return_indices_under_no_grad_and_max_unpool_round_trip():
    rng = np.random.default_rng(7)
    x = ag.tensor(_distinct(rng, 2, 4, 6, 3))
    with ag.no_grad():
        y, indices = max_pool2d(x, 2, return_indices=True)
    restored = ag.max_unpool2d(y, indices, 2)
    assert restored.shape == x.shape
    kept = restored.data != 0
    np.testing.assert_array_equal(restored.data[kept], x.data[kept])
    assert kept.sum() == y.numel()  # one maximum per window, written back in place
    y1, i1 = ag.max_pool1d(ag.tensor(_distinct(rng, 1, 7, 2)), 2, return_indices=True)
    assert ag.max_unpool1d(y1, i1, 2, output_size=(7,)).shape == (1, 7, 2)


@pytest.mark.parametrize("call, message", [
    # the C path's check (kernels/pool.py) and the window tables' (kernels/sampling.py)
    (lambda x: ag.max_pool2d(x, 7), r"max_pool2d_forward: input 4x5 with kernel \(7, 7\).*gives output 0x0"),
    (lambda x: ag.avg_pool2d(x, 7, ceil_mode=True),
     r"avg_pool2d: got input of spatial size \(4, 5\).*smaller than the"),
    (lambda x: ag.max_pool2d(x, 3, dilation=3), r"max_pool2d: .*\(dilated\) kernel"),
    (lambda x: ag.max_pool2d(x, 3, padding=2),
     r"max_pool2d: got padding 2 with kernel_size 3, expected each pad at most"),
    (lambda x: ag.avg_pool2d(x, 3, padding=2, ceil_mode=True), r"avg_pool2d: got padding 2 .* at most half"),
    (lambda x: ag.avg_pool2d(x, 2, divisor_override=0), r"avg_pool2d: got divisor_override=0"),
    (lambda x: ag.max_pool1d(x, 2),
     r"max_pool1d: got input of shape \(1, 4, 5, 2\), expected 3 dims \[n, l, c\] \(channels last\) or 2 without"),
    (lambda x: ag.max_pool3d(x[0], 2), r"max_pool3d: got input of shape \(4, 5, 2\), expected 5 dims .* or 4 without"),
    (lambda x: ag.max_pool2d(x, 0, dilation=2), r"max_pool2d: got kernel_size=0, expected values >= 1"),
    (lambda x: ag.adaptive_avg_pool2d(x, (0, 2)), r"adaptive_avg_pool2d: got output_size=\(0, 2\)"),
    (lambda x: ag.adaptive_max_pool2d(x, (1, 2, 3)), r"adaptive_max_pool2d: got output_size=\(1, 2, 3\)"),
    (lambda x: ag.interpolate(x, size=3, mode="cubic"), r"interpolate: got mode='cubic', expected one of"),
    (lambda x: ag.interpolate(x, size=3, mode="linear"), r"interpolate: got mode='linear' for input of shape"),
    (lambda x: ag.interpolate(x, size=3, align_corners=True),
     r"interpolate: got align_corners=True with mode='nearest'"),
    (lambda x: ag.interpolate(x), r"interpolate: got size=None and scale_factor=None, expected exactly one"),
    (lambda x: ag.interpolate(x, scale_factor=0.1), r"interpolate: input sizes \(4, 5\) .*output sizes \(0, 0\)"),
    (lambda x: ag.interpolate(x, size=(2, 2, 2)), r"interpolate: got size=\(2, 2, 2\) for 2 spatial dims"),
    (lambda x: ag.pixel_shuffle(x, 2),
     r"pixel_shuffle: got input of shape \(1, 4, 5, 2\), expected \[\*, h, w, c \* 4\]"),
    (lambda x: ag.pixel_unshuffle(x, 2), r"pixel_unshuffle: got input of shape \(1, 4, 5, 2\)"),
    (lambda x: ag.max_unpool2d(x, ag.tensor(np.full((1, 4, 5, 2), 99)), 2), r"max_unpool2d: got indices in \[99, 99\]"),
    (lambda x: ag.max_unpool2d(x, ag.tensor(np.zeros((1, 4, 4, 2), dtype=np.int64)), 2),
     r"max_unpool2d: got indices of shape"),
    (lambda x: ag.max_unpool2d(x, ag.tensor(np.zeros((1, 4, 5, 2), dtype=np.int64)), 2, output_size=(20, 10)),
     r"max_unpool2d: got output_size \(20, 10\), expected each size within the stride of \(8, 10\)"),
])
def test_pooling_and_resampling_report_bad_arguments(call, message):
    x = ag.tensor(np.ones((1, 4, 5, 2)))
    with pytest.raises((ValueError, TypeError), match=message):
        call(x)


def test_float32_stays_float32_and_gradients_flow():
    x = ag.tensor(np.linspace(-1, 1, 2 * 4 * 6 * 4).reshape(2, 4, 6, 4).astype(np.float32), requires_grad=True)
    outputs = [ag.max_pool2d(x, 2, dilation=2, stride=1), ag.avg_pool2d(x, 3, 2, 1, ceil_mode=True),
               ag.adaptive_avg_pool2d(x, 3), ag.adaptive_max_pool2d(x, (3, 2)),
               ag.interpolate(x, scale_factor=2, mode="bicubic"), ag.pixel_shuffle(x, 2)]
    total = 0
    for y in outputs:
        assert y.dtype == np.float32
        total = total + y.sum()
    total.backward()
    assert x.grad.dtype == np.float32 and np.isfinite(x.grad.data).all()


def test_interpolate_keeps_constants_and_upsamples_nearest_by_repeating():
    """Every interpolating mode reproduces a constant image (weights sum to one), and
    nearest by an integer factor repeats each cell."""
    constant = ag.tensor(np.full((1, 3, 4, 2), 0.7))
    for mode in ("nearest", "nearest-exact", "bilinear", "bicubic", "area"):
        for size in ((5, 7), (2, 3)):
            np.testing.assert_allclose(ag.interpolate(constant, size=size, mode=mode).data, 0.7, rtol=1e-12)
    x = np.arange(6.0).reshape(1, 2, 3, 1)
    up = ag.interpolate(ag.tensor(x), scale_factor=2).data
    np.testing.assert_array_equal(up, x.repeat(2, axis=1).repeat(2, axis=2))
    assert ag.interpolate(ag.tensor(np.zeros((1, 4, 2))), scale_factor=1.5, mode="linear").shape == (1, 6, 2)


@st.composite
def _pool_geometries(draw):
    """A random 1-, 2- or 3-D pooling: kernel, stride, torch-legal padding (at most half
    the kernel), dilation, ceil_mode, on an input at least as large as the dilated kernel."""
    dims = draw(st.integers(1, 3))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(dims))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(dims))
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(dims))
    # small: each example gradchecks two pools (two evaluations per input element)
    smallest = [max(1, d * (k - 1) + 1 - 2 * p) for k, p, d in zip(kernel, padding, dilation)]
    spatial = tuple(draw(st.integers(low, max(low, 6 if dims < 3 else 4))) for low in smallest)
    shape = (draw(st.integers(1, 2)),) + spatial + (draw(st.integers(1, 2)),)
    return shape, kernel, stride, padding, dilation, draw(st.booleans())


@given(geometry=_pool_geometries(), count_include_pad=st.booleans())
def test_pools_match_the_window_by_window_reference(geometry, count_include_pad):
    """max_pool{1,2,3}d and avg_pool{1,2,3}d against op_table_pool's loop references on
    random geometries, values and in-plane indices, and gradcheck in float64."""
    import op_table  # noqa: F401  (it collects op_table_pool; importing that first would be circular)
    from op_table_pool import _pool_reference
    shape, kernel, stride, padding, dilation, ceil_mode = geometry
    dims = len(shape) - 2
    rng = np.random.default_rng(sum(shape))
    data = _distinct(rng, *shape)
    x = ag.tensor(data, requires_grad=True)
    max_pool = getattr(ag, "max_pool%dd" % dims)
    avg_pool = getattr(ag, "avg_pool%dd" % dims)
    if dilation != (1,) * dims:
        try:
            max_pool(x, kernel, stride, padding, dilation)
        except ValueError as error:  # a dilated window that steps over every real cell
            assert "covers only padding" in str(error)
            return
    y, indices = max_pool(x, kernel, stride, padding, dilation, ceil_mode, True)
    y_ref, indices_ref = _pool_reference("max")(data, kernel, stride, padding, dilation, ceil_mode, True)
    np.testing.assert_array_equal(y.data, y_ref)
    np.testing.assert_array_equal(indices.data, indices_ref)
    assert ag.gradcheck(lambda x: max_pool(x, kernel, stride, padding, dilation, ceil_mode), (x,))
    # by name: avg_pool2d keeps its earlier order (count_include_pad before ceil_mode)
    arguments = dict(stride=stride, padding=padding, ceil_mode=ceil_mode, count_include_pad=count_include_pad)
    mean = avg_pool(x, kernel, **arguments)
    np.testing.assert_allclose(mean.data, _pool_reference("avg")(data, kernel, **arguments), rtol=1e-12)
    assert ag.gradcheck(lambda x: avg_pool(x, kernel, **arguments), (x,))
