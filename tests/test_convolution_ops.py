"""The convolutions of autograd_core/ops/convolution.py (and conv2d's groups/dilation):
both backends agree, the C conv2d path and the im2col + GEMM path agree, a transposed
convolution is the adjoint of its convolution, im2col times the weight is conv2d, the
torch weight layout mapping, and bad input. Values against numpy and torch, and
gradcheck, are in tests/op_table_conv.py (run by tests/test_op_registry.py)."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import autograd_core as ag
from autograd_core import kernels
from autograd_core.ops.conv2d import Conv2d
from autograd_core.ops.convolution import Convolution, ours_conv_weight_to_torch, torch_conv_weight_to_ours

from op_table import TABLE as OP_TABLE
from kernel_configurations import CONFIGURATIONS, configured, needs_c

BACKENDS = ["numpy"] + (["c"] if kernels.extension_available() else [])


def _tensor(rng, shape, requires_grad=True, dtype=np.float64):
    return ag.tensor(rng.standard_normal(shape).astype(dtype), requires_grad=requires_grad)


def _run(function, *inputs):
    """function(*inputs), then its gradients for a fixed weighting of the output."""
    for t in inputs:
        t.grad = None
    y = function(*inputs)
    (y * ag.tensor(np.linspace(-1.0, 1.0, y.data.size).reshape(y.shape))).sum().backward()
    return [y.data] + [t.grad.data for t in inputs]


CASES = [
    ("conv1d", (2, 7, 4), (3, 2, 6), dict(stride=2, padding=1, dilation=2, groups=2)),
    ("conv1d", (2, 7, 4), (3, 4, 5), dict(padding="same")),
    ("conv2d", (2, 6, 5, 4), (3, 2, 1, 8), dict(groups=4, dilation=(1, 2), padding=1)),
    ("conv2d", (2, 6, 5, 4), (3, 2, 2, 6), dict(groups=2, stride=2)),
    ("conv3d", (1, 4, 5, 3, 2), (2, 3, 2, 2, 3), dict(padding=(1, 0, 1), stride=(1, 2, 1))),
    ("conv_transpose1d", (2, 4, 4), (3, 3, 4), dict(stride=2, padding=1, output_padding=1)),
    ("conv_transpose2d", (2, 3, 4, 4), (3, 2, 3, 4), dict(stride=2, padding=1, output_padding=1, groups=2)),
    ("conv_transpose2d", (2, 3, 4, 2), (2, 3, 3, 2), dict(stride=(2, 1), padding=(0, 1))),
    ("conv_transpose3d", (1, 2, 3, 2, 2), (2, 2, 2, 3, 2), dict(stride=2, dilation=(1, 2, 1))),
]


@pytest.mark.skipif(len(BACKENDS) < 2, reason="the C extension is not built")
@pytest.mark.parametrize("name, x_shape, w_shape, kwargs", CASES)
def test_backends_agree(name, x_shape, w_shape, kwargs):
    rng = np.random.default_rng(0)
    x, w = _tensor(rng, x_shape), _tensor(rng, w_shape)
    b = _tensor(rng, (w_shape[-1] if "transpose" not in name else w_shape[-2] * kwargs.get("groups", 1),))
    results = {}
    for backend in BACKENDS:
        with kernels.backend(backend):
            results[backend] = _run(lambda x, w, b: getattr(ag, name)(x, w, b, **kwargs), x, w, b)
    for got, expected in zip(results["c"], results["numpy"]):
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_c_conv2d_path_and_the_im2col_path_agree(backend):
    """conv1d and conv_transpose2d at dilation 1 run the C conv2d kernels (once per
    group); the same problem as a 3-D convolution with unit depth runs im2col + GEMM."""
    rng = np.random.default_rng(1)
    x, w = _tensor(rng, (2, 9, 4)), _tensor(rng, (4, 2, 6))
    with kernels.backend(backend):
        ours = _run(lambda x, w: ag.conv1d(x, w, stride=2, padding=((1, 2),), groups=2), x, w)
        general = _run(lambda x, w: ag.conv3d(x.reshape(2, 1, 1, 9, 4), w.reshape(1, 1, 4, 2, 6), stride=(1, 1, 2),
                                               padding=((0, 0), (0, 0), (1, 2)), groups=2).reshape(2, -1, 6), x, w)
        for got, expected in zip(ours, general):
            np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
        x, w = _tensor(rng, (2, 3, 4, 4)), _tensor(rng, (3, 2, 5, 4))
        ours = _run(lambda x, w: ag.conv_transpose2d(x, w, stride=2, padding=1, output_padding=1), x, w)
        general = _run(lambda x, w: ag.conv_transpose3d(x.reshape(2, 1, 3, 4, 4), w.reshape(1, 3, 2, 5, 4),
                                                        stride=(1, 2, 2), padding=(0, 1, 1),
                                                        output_padding=(0, 1, 1)).reshape(2, 6, 7, 5), x, w)
        for got, expected in zip(ours, general):
            np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dims, groups, stride, dilation, padding", [
    (1, 1, 2, 1, 1), (1, 2, 1, 2, 0), (2, 1, 2, 1, 1), (2, 3, (2, 1), (1, 2), (1, 0)), (3, 1, 2, 1, 0)])
def test_a_transposed_convolution_is_the_adjoint_of_its_convolution(backend, dims, groups, stride, dilation, padding):
    """<conv(x), y> == <x, conv_transpose(y)> for one weight: the same [*kernel, a, b]
    array is conv's [*kernel, c_in/groups, c_out] and conv_transpose's [*kernel,
    c_out/groups, c_in]."""
    rng = np.random.default_rng(2)
    names = {1: ("conv1d", "conv_transpose1d"), 2: ("conv2d", "conv_transpose2d"), 3: ("conv3d", "conv_transpose3d")}
    conv, transpose = (getattr(ag, name) for name in names[dims])
    x = _tensor(rng, (2,) + (7, 6, 5)[:dims] + (3 * groups,), requires_grad=False)
    w = _tensor(rng, (3, 2, 2)[:dims] + (3, 2 * groups), requires_grad=False)
    with kernels.backend(backend):
        y = conv(x, w, stride=stride, padding=padding, dilation=dilation, groups=groups)
        probe = _tensor(rng, y.shape, requires_grad=False)
        # output_padding restores the input size the convolution's floor dropped
        sizes = x.shape[1:-1]
        expected = [(o - 1) * s - 2 * p + d * (k - 1) + 1 for o, s, p, d, k in zip(
            y.shape[1:-1], _per_dim(stride, dims), _per_dim(padding, dims), _per_dim(dilation, dims), w.shape[:dims])]
        extra = tuple(size - e for size, e in zip(sizes, expected))
        back = transpose(probe, w, stride=stride, padding=padding, output_padding=extra, groups=groups,
                         dilation=dilation)
    assert back.shape == x.shape
    np.testing.assert_allclose(np.sum(y.data * probe.data), np.sum(x.data * back.data), rtol=1e-12)


def _per_dim(value, dims):
    return tuple(value) if isinstance(value, tuple) else (value,) * dims


@pytest.mark.parametrize("backend", BACKENDS)
def test_im2col_times_the_weight_is_conv2d_and_col2im_is_its_adjoint(backend):
    rng = np.random.default_rng(3)
    x, w = _tensor(rng, (2, 6, 7, 3)), _tensor(rng, (3, 2, 3, 4))
    with kernels.backend(backend):
        columns = ag.im2col(x, (3, 2), dilation=(1, 2), padding=1, stride=(2, 1))
        y = ag.conv2d(x, w, stride=(2, 1), padding=1, dilation=(1, 2))
        np.testing.assert_allclose((columns @ w.reshape(-1, 4)).data.reshape(y.shape), y.data, rtol=1e-12, atol=1e-12)
        probe = rng.standard_normal(columns.shape)
        folded = ag.col2im(ag.tensor(probe), (6, 7), (3, 2), dilation=(1, 2), padding=1, stride=(2, 1))
        np.testing.assert_allclose(np.sum(columns.data * probe), np.sum(x.data * folded.data), rtol=1e-12)
        # torch's fold(unfold(x)) == x * (the number of windows covering each cell)
        ones = ag.col2im(ag.im2col(ag.ones((1, 4, 4, 1), dtype="float64"), 2), (4, 4), 2)
        np.testing.assert_array_equal(ones.data[0, :, :, 0], [[1, 2, 2, 1], [2, 4, 4, 2], [2, 4, 4, 2], [1, 2, 2, 1]])


def test_the_default_conv2d_stays_the_fused_op_and_float32_stays_float32():
    rng = np.random.default_rng(4)
    x, w = _tensor(rng, (1, 5, 5, 2), dtype=np.float32), _tensor(rng, (3, 3, 2, 4), dtype=np.float32)
    assert ag.conv2d(x, w).grad_fn.function is Conv2d
    assert ag.conv2d(x, w, dilation=(1, 1), groups=1).grad_fn.function is Convolution
    for y in (ag.conv2d(x, w, dilation=2), ag.conv1d(x[0], w[0]), ag.conv_transpose2d(x, w.permute(0, 1, 3, 2)),
              ag.im2col(x, 2)):
        assert y.dtype == np.float32
    # the relu of a grouped conv2d is applied after it, as a separate op
    y = ag.conv2d(x, w[:, :, :1], groups=2, activation="relu")
    assert (y.data >= 0).all() and y.shape == (1, 3, 3, 4)


def test_the_torch_weight_layout_mapping():
    rng = np.random.default_rng(5)
    theirs = rng.standard_normal((6, 2, 3, 4))  # [c_out, c_in/groups, kh, kw]
    ours = torch_conv_weight_to_ours(theirs)
    assert ours.shape == (3, 4, 2, 6)
    assert ours[2, 1, 0, 5] == theirs[5, 0, 2, 1]
    np.testing.assert_array_equal(ours_conv_weight_to_torch(ours), theirs)
    tensor = ag.tensor(rng.standard_normal((5, 3, 4)))  # a conv1d weight [c_out, c_in, k] as our Tensor
    assert torch_conv_weight_to_ours(tensor).shape == (4, 3, 5)
    np.testing.assert_array_equal(ours_conv_weight_to_torch(torch_conv_weight_to_ours(tensor)).data, tensor.data)


def test_bad_input_names_the_op():
    rng = np.random.default_rng(6)
    x = _tensor(rng, (1, 6, 6, 4))
    with pytest.raises(ValueError, match=r"conv2d: input has 4 channels .* multiple of groups=3"):
        ag.conv2d(x, _tensor(rng, (3, 3, 1, 6)), groups=3)
    with pytest.raises(ValueError, match=r"conv2d: got weight of shape \(3, 3, 4, 6\) .* groups=2, expected "
                                         r"\[kh, kw, c_in/groups, c_out\] with c_in/groups = 2"):
        ag.conv2d(x, _tensor(rng, (3, 3, 4, 6)), groups=2)
    with pytest.raises(ValueError, match=r"conv2d: .* c_out a multiple of 2"):
        ag.conv2d(x, _tensor(rng, (3, 3, 2, 5)), groups=2)
    with pytest.raises(ValueError, match=r"conv1d: got input of shape \(1, 6, 6, 4\), expected \[N, L, C\]"):
        ag.conv1d(x, _tensor(rng, (3, 4, 2)))
    with pytest.raises(ValueError, match=r"conv1d: got weight of shape \(3, 3, 4, 2\), expected 3 dims"):
        ag.conv1d(x[0], _tensor(rng, (3, 3, 4, 2)))
    with pytest.raises(ValueError, match=r"conv3d: .* gives output \(-2, 4, 2\), expected at least 1"):
        ag.conv3d(x[..., None], _tensor(rng, (3, 3, 3, 1, 2)), dilation=(4, 1, 1))
    with pytest.raises(ValueError, match=r"conv2d: got dilation=0, expected values >= 1"):
        ag.conv2d(x, _tensor(rng, (3, 3, 2, 2)), groups=2, dilation=0)
    with pytest.raises(ValueError, match=r"conv2d: got groups=0, expected >= 1"):
        ag.conv2d(x, _tensor(rng, (3, 3, 4, 2)), groups=0)
    with pytest.raises(TypeError, match=r"conv2d: got groups=1.5, expected an int"):
        ag.conv2d(x, _tensor(rng, (3, 3, 4, 2)), groups=1.5)
    with pytest.raises(ValueError, match=r"conv2d: got bias of shape \(3,\), expected \(4,\)"):
        ag.conv2d(x, _tensor(rng, (3, 3, 2, 4)), _tensor(rng, (3,)), groups=2)
    with pytest.raises(TypeError, match=r"conv1d: got input dtype float32 and weight dtype float64"):
        ag.conv1d(_tensor(rng, (1, 5, 2), dtype=np.float32), _tensor(rng, (2, 2, 2)))
    with pytest.raises(ValueError, match=r"conv_transpose2d: got output_padding=\(2, 2\) with stride=\(2, 2\) and "
                                         r"dilation=\(1, 1\), expected each output_padding below its stride or"):
        ag.conv_transpose2d(x, _tensor(rng, (3, 3, 2, 4)), stride=2, output_padding=2)
    with pytest.raises(ValueError, match=r"conv_transpose1d: .* gives output \(-2,\), expected at least 1 per dim "
                                         r"\(padding too big\)"):
        ag.conv_transpose1d(x[0, 0], _tensor(rng, (3, 2, 4)), padding=5)
    with pytest.raises(ValueError, match=r"conv_transpose2d: got padding='same', expected an int or 2 ints"):
        ag.conv_transpose2d(x, _tensor(rng, (3, 3, 2, 4)), padding="same")
    with pytest.raises(ValueError, match=r"conv_transpose2d: got weight of shape \(3, 3, 2, 3\) for an input with 4 "
                                         r"channels, expected \[kh, kw, c_out/groups, c_in\] with c_in = 4"):
        ag.conv_transpose2d(x, _tensor(rng, (3, 3, 2, 3)))
    with pytest.raises(ValueError, match=r"conv1d: got padding='full', expected 'same', 'valid'"):
        ag.conv1d(x[0], _tensor(rng, (3, 4, 2)), padding="full")
    with pytest.raises(ValueError, match=r"im2col: got input of shape \(6, 6, 4\), expected \[N, H, W, C\]"):
        ag.im2col(x[0], 2)
    with pytest.raises(ValueError, match=r"im2col: image \(6, 6\) with kernel_size \(4, 4\), .* has \(0, 0\) windows"):
        ag.im2col(x, 4, dilation=2)
    with pytest.raises(ValueError, match=r"col2im: got input of shape \(1, 8, 16\), expected 9 windows"):
        ag.col2im(_tensor(rng, (1, 8, 16)), (4, 4), 2)
    with pytest.raises(ValueError, match=r"col2im: got input of shape \(1, 9, 15\), expected its last dim a multiple"):
        ag.col2im(_tensor(rng, (1, 9, 15)), (4, 4), 2)


@st.composite
def _problems(draw):
    """A small convolution problem: dims 1-3, groups, stride, dilation, padding, and
    input sizes that leave at least one output cell (size-1 dims included)."""
    dims = draw(st.integers(1, 3))
    groups = draw(st.integers(1, 2))
    per_group, out_per_group = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    kernel = tuple(draw(st.integers(1, 2 if dims == 3 else 3)) for _ in range(dims))
    stride = tuple(draw(st.integers(1, 2)) for _ in range(dims))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(dims))
    padding = tuple(draw(st.integers(0, 1)) for _ in range(dims))
    sizes = tuple(max(d * (k - 1) + 1 - 2 * p, 1) + draw(st.integers(0, 2))
                  for k, d, p in zip(kernel, dilation, padding))
    batch = draw(st.integers(1, 2))
    return dims, groups, per_group, out_per_group, kernel, stride, dilation, padding, sizes, batch


@given(_problems(), st.booleans(), st.booleans())
@settings(max_examples=20)
def test_random_convolutions_match_the_reference_and_gradcheck(problem, transposed, with_bias):
    dims, groups, per_group, out_per_group, kernel, stride, dilation, padding, sizes, batch = problem
    rng = np.random.default_rng(7)
    x = rng.standard_normal((batch,) + sizes + (groups * per_group,))
    w = rng.standard_normal(kernel + ((out_per_group, groups * per_group) if transposed
                                      else (per_group, groups * out_per_group)))
    b = rng.standard_normal(groups * out_per_group) if with_bias else None
    if transposed:
        name = "conv_transpose%dd" % dims
        # an output_padding below stride or dilation, where one is above 1
        kwargs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups,
                      output_padding=tuple(max(s, d) - 1 for s, d in zip(stride, dilation)))
    else:
        name = "conv%dd" % dims
        kwargs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    expected = OP_TABLE[name].reference(x, w, b, **kwargs)
    inputs = [ag.tensor(a, requires_grad=True) for a in (x, w, b) if a is not None]
    function = getattr(ag, name)
    got = function(*inputs, **kwargs) if with_bias else function(*inputs, None, **kwargs)
    np.testing.assert_allclose(got.data, expected, rtol=1e-12, atol=1e-12)
    assert ag.gradcheck(lambda *xs: function(*xs, **kwargs) if with_bias else function(*xs, None, **kwargs), inputs)


@needs_c
@pytest.mark.parametrize("level, threads", CONFIGURATIONS)
def test_every_simd_level_matches_the_numpy_backend(level, threads):
    """The ops run the C conv2d and GEMM kernels: each SIMD level agrees with numpy."""
    rng = np.random.default_rng(8)
    cases = [("conv2d", (2, 6, 5, 4), (3, 2, 2, 6), dict(groups=2, dilation=2)),
             ("conv2d", (2, 6, 5, 4), (3, 2, 2, 6), dict(groups=2, padding=1)),
             ("conv1d", (2, 9, 3), (3, 3, 4), dict(stride=2, padding=1)),
             ("conv_transpose2d", (2, 3, 4, 3), (2, 3, 4, 3), dict(stride=2, output_padding=1))]
    for name, x_shape, w_shape, kwargs in cases:
        x, w = _tensor(rng, x_shape, dtype=np.float32), _tensor(rng, w_shape, dtype=np.float32)
        with kernels.backend("numpy"):
            expected = _run(lambda x, w: getattr(ag, name)(x, w, **kwargs), x, w)
        with configured(level, threads):
            got = _run(lambda x, w: getattr(ag, name)(x, w, **kwargs), x, w)
        for g, e in zip(got, expected):
            np.testing.assert_allclose(g, e, rtol=2e-5, atol=2e-5)
