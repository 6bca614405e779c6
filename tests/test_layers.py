"""Layers and nn.init: outputs against numpy, gradients by gradcheck (float64, small sizes),
initialisation statistics, Dropout's masks, and the errors for bad inputs."""
import math

import numpy as np
import pytest

import autograd_core as ag
import nn
from nn import functional as F

RNG = np.random.default_rng(1234)


def leaf(*shape, low=-1.0, high=1.0, dtype=np.float64, away_from_zero=False):
    values = RNG.uniform(low, high, size=shape)
    if away_from_zero:  # keep activations' kinks out of finite differences' reach
        values = np.sign(values) * (0.1 + np.abs(values))
    return ag.Tensor(values.astype(dtype), requires_grad=True)


# ---- numpy references --------------------------------------------------------------------
def conv2d_reference(x, w, b, stride, pad):
    """Direct loops over output pixels: x NHWC, w [kh, kw, in, out], pad ((t, b), (l, r))."""
    (top, bottom), (left, right) = pad
    x = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    kh, kw = w.shape[:2]
    out_h = (x.shape[1] - kh) // stride[0] + 1
    out_w = (x.shape[2] - kw) // stride[1] + 1
    y = np.zeros((x.shape[0], out_h, out_w, w.shape[3]))
    for i in range(out_h):
        for j in range(out_w):
            window = x[:, i * stride[0]:i * stride[0] + kh, j * stride[1]:j * stride[1] + kw, :]
            y[:, i, j, :] = np.einsum("nhwc,hwco->no", window, w)
    return y if b is None else y + b


def pool_reference(x, k, stride, reduce):
    out_h = (x.shape[1] - k) // stride + 1
    out_w = (x.shape[2] - k) // stride + 1
    y = np.zeros((x.shape[0], out_h, out_w, x.shape[3]))
    for i in range(out_h):
        for j in range(out_w):
            y[:, i, j, :] = reduce(x[:, i * stride:i * stride + k, j * stride:j * stride + k, :], axis=(1, 2))
    return y


# ---- Linear ---------------------------------------------------------------------------------
def test_linear_matches_numpy_float32_and_batched_shapes():
    layer = nn.Linear(5, 3)
    assert layer.weight.shape == (3, 5) and layer.bias.shape == (3,)
    assert layer.weight.dtype == np.float32
    x = ag.randn(4, 5)
    expected = x.data @ layer.weight.data.T + layer.bias.data
    y = layer(x)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.data, expected, rtol=1e-5, atol=1e-6)
    x3 = ag.randn(2, 4, 5)
    np.testing.assert_allclose(layer(x3).data, x3.data @ layer.weight.data.T + layer.bias.data,
                               rtol=1e-5, atol=1e-6)
    no_bias = nn.Linear(5, 3, bias=False)
    assert no_bias.bias is None and len(list(no_bias.parameters())) == 1
    np.testing.assert_allclose(no_bias(x).data, x.data @ no_bias.weight.data.T, rtol=1e-5, atol=1e-6)


def test_linear_gradcheck():
    x, w, b = leaf(3, 4), leaf(2, 4), leaf(2)
    assert ag.gradcheck(F.linear, (x, w, b))
    assert ag.gradcheck(lambda x, w: F.linear(x, w), (leaf(2, 3, 4), w))


def test_linear_module_gradients_reach_parameters():
    layer = nn.Linear(4, 2, dtype=np.float64)
    x = leaf(3, 4)
    layer(x).sum().backward()
    np.testing.assert_allclose(layer.weight.grad.data, np.tile(x.data.sum(axis=0), (2, 1)))
    np.testing.assert_allclose(layer.bias.grad.data, [3.0, 3.0])
    np.testing.assert_allclose(x.grad.data, np.tile(layer.weight.data.sum(axis=0), (3, 1)))


def test_linear_default_init_bounds():
    nn.manual_seed(0)
    layer = nn.Linear(400, 300)
    bound = 1 / math.sqrt(400)
    assert np.abs(layer.weight.data).max() <= bound
    assert np.abs(layer.bias.data).max() <= bound
    # U(-b, b) has std b / sqrt(3); 120,000 samples pin it within 1%
    assert abs(layer.weight.data.std() - bound / math.sqrt(3)) < 0.01 * bound / math.sqrt(3)


def test_linear_errors_name_layer_and_shapes():
    layer = nn.Linear(4, 2)
    with pytest.raises(ValueError, match=r"Linear\(in_features=4, out_features=2\).*\[\.\.\., 4\].*\(3, 5\)"):
        layer(ag.randn(3, 5))
    with pytest.raises(TypeError, match="float64.*float32"):
        layer(ag.Tensor(np.zeros((3, 4))))
    with pytest.raises(ValueError, match="in_features must be a positive int"):
        nn.Linear(0, 2)


# ---- Conv2d ---------------------------------------------------------------------------------
@pytest.mark.parametrize("kernel, stride, padding, expected_pad", [
    (3, 1, "same", ((1, 1), (1, 1))),
    (3, 1, "valid", ((0, 0), (0, 0))),
    (3, 2, 1, ((1, 1), (1, 1))),
    ((2, 3), 1, "valid", ((0, 0), (0, 0))),
    (2, 2, "same", ((0, 0), (0, 0))),       # 6 / 2 = 3 outputs need no padding
    (3, 2, "same", ((0, 1), (0, 1))),       # TensorFlow's rule: the odd pad goes after
])
def test_conv2d_matches_numpy(kernel, stride, padding, expected_pad):
    layer = nn.Conv2d(2, 3, kernel, stride=stride, padding=padding)
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    assert layer.weight.shape == (kh, kw, 2, 3) and layer.bias.shape == (3,)
    x = ag.randn(2, 6, 6, 2)
    y = layer(x)
    expected = conv2d_reference(x.data.astype(np.float64), layer.weight.data, layer.bias.data,
                                (stride, stride), expected_pad)
    assert y.shape == expected.shape and y.dtype == np.float32
    np.testing.assert_allclose(y.data, expected, rtol=1e-4, atol=1e-5)


def test_conv2d_same_keeps_size_and_default_is_same():
    layer = nn.Conv2d(1, 4, 5)
    assert layer.padding == "same"
    assert layer(ag.randn(1, 7, 9, 1)).shape == (1, 7, 9, 4)


def test_conv2d_gradcheck():
    x, w, b = leaf(2, 4, 4, 2), leaf(3, 3, 2, 3), leaf(3)
    assert ag.gradcheck(lambda x, w, b: F.conv2d(x, w, b, stride=1, padding="same"), (x, w, b))
    assert ag.gradcheck(lambda x, w: F.conv2d(x, w, None, stride=2, padding=1), (x, w))


def test_conv2d_module_float64_gradients():
    layer = nn.Conv2d(2, 2, 3, padding="valid", dtype=np.float64)
    x = leaf(1, 4, 4, 2)
    layer(x).sum().backward()
    # d(sum y)/d bias = number of output pixels
    np.testing.assert_allclose(layer.bias.grad.data, [4.0, 4.0])
    assert layer.weight.grad.shape == (3, 3, 2, 2)


def test_conv2d_default_init_uses_nhwc_fan_in():
    nn.manual_seed(1)
    layer = nn.Conv2d(16, 32, 3)
    bound = 1 / math.sqrt(3 * 3 * 16)
    assert np.abs(layer.weight.data).max() <= bound
    assert np.abs(layer.weight.data).max() > 0.95 * bound
    assert np.abs(layer.bias.data).max() <= bound


def test_conv2d_errors():
    layer = nn.Conv2d(3, 8, 3)
    with pytest.raises(ValueError, match=r"Conv2d\(3, 8.*\[N, H, W, 3\].*\(2, 3, 8, 8\).*NCHW"):
        layer(ag.randn(2, 3, 8, 8))
    with pytest.raises(ValueError, match=r"\[N, H, W, 3\].*\(8, 8, 3\)"):
        layer(ag.randn(8, 8, 3))
    with pytest.raises(ValueError, match="padding"):
        nn.Conv2d(3, 8, 3, padding="full")
    with pytest.raises(ValueError, match="kernel_size"):
        nn.Conv2d(3, 8, (3, 3, 3))


# ---- pooling ----------------------------------------------------------------------------------
def test_max_pool_matches_numpy_and_gradchecks():
    x = ag.randn(2, 6, 6, 3)
    np.testing.assert_allclose(nn.MaxPool2d(2)(x).data, pool_reference(x.data, 2, 2, np.max), rtol=1e-6)
    np.testing.assert_allclose(nn.MaxPool2d(3, stride=1)(x).data, pool_reference(x.data, 3, 1, np.max),
                               rtol=1e-6)
    assert nn.MaxPool2d(3, stride=2, padding=1)(x).shape == (2, 3, 3, 3)
    # distinct values keep every window's maximum unique under finite differences
    values = RNG.permutation(2 * 4 * 4 * 2).reshape(2, 4, 4, 2) / 10.0
    assert ag.gradcheck(lambda x: F.max_pool2d(x, 2), ag.Tensor(values, requires_grad=True))


def test_avg_pool_matches_numpy_and_gradchecks():
    x = ag.randn(2, 6, 6, 3)
    np.testing.assert_allclose(nn.AvgPool2d(2)(x).data, pool_reference(x.data, 2, 2, np.mean),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(nn.AvgPool2d(3, stride=3)(x).data, pool_reference(x.data, 3, 3, np.mean),
                               rtol=1e-5, atol=1e-6)
    # padding: with count_include_pad the corner window [pad, x00; x10, x11]-style divides by 4
    padded = nn.AvgPool2d(2, stride=2, padding=1)(x)
    np.testing.assert_allclose(padded.data[:, 0, 0, :], x.data[:, 0, 0, :] / 4, rtol=1e-5)
    exclusive = nn.AvgPool2d(2, stride=2, padding=1, count_include_pad=False)(x)
    np.testing.assert_allclose(exclusive.data[:, 0, 0, :], x.data[:, 0, 0, :], rtol=1e-5)
    assert ag.gradcheck(lambda x: F.avg_pool2d(x, 2, stride=1), leaf(1, 3, 3, 2))


def test_pool_errors():
    with pytest.raises(ValueError, match=r"MaxPool2d.*\[N, H, W, C\].*\(4, 4\)"):
        nn.MaxPool2d(2)(ag.randn(4, 4))
    with pytest.raises(ValueError, match="AvgPool2d: padding"):
        nn.AvgPool2d(2, padding=-1)


# ---- Flatten, Dropout, activations --------------------------------------------------------
def test_flatten():
    x = leaf(2, 3, 4, 5)
    y = nn.Flatten()(x)
    assert y.shape == (2, 60)
    np.testing.assert_array_equal(y.data, x.data.reshape(2, 60))
    assert nn.Flatten(1, 2)(x).shape == (2, 12, 5)
    assert ag.gradcheck(lambda x: nn.Flatten()(x), leaf(2, 2, 3))


def test_dropout_training_masks_and_scales():
    nn.manual_seed(7)
    layer = nn.Dropout(0.25)
    x = ag.ones(200, 100, requires_grad=True)
    y = layer(x)
    values = np.unique(y.data)
    np.testing.assert_allclose(values, [0.0, 1 / 0.75], rtol=1e-6)
    dropped = np.mean(y.data == 0)
    assert abs(dropped - 0.25) < 0.01          # 20,000 draws: the std of the rate is 0.003
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.data, y.data)  # the gradient goes through the same mask
    assert y.dtype == np.float32


def test_dropout_is_seedable_and_off_in_eval():
    x = ag.randn(10, 10)
    nn.manual_seed(3)
    first = nn.Dropout(0.5)(x).data
    nn.manual_seed(3)
    second = nn.Dropout(0.5)(x).data
    np.testing.assert_array_equal(first, second)
    own = nn.Dropout(0.5, generator=np.random.default_rng(5))(x).data
    again = F.dropout(x, 0.5, True, np.random.default_rng(5)).data
    np.testing.assert_array_equal(own, again)
    layer = nn.Dropout(0.5).eval()
    assert layer(x) is x
    assert F.dropout(x, 0.0) is x
    np.testing.assert_array_equal(F.dropout(x, 1.0).data, np.zeros((10, 10)))
    with pytest.raises(ValueError, match="Dropout: p must be a probability"):
        nn.Dropout(1.5)


def test_dropout_gradcheck_with_fixed_mask():
    x = leaf(3, 4)
    assert ag.gradcheck(lambda x: F.dropout(x, 0.5, True, np.random.default_rng(0)), x)


ACTIVATIONS = [
    (nn.ReLU(), lambda x: np.maximum(x, 0)),
    (nn.Sigmoid(), lambda x: 1 / (1 + np.exp(-x))),
    (nn.Tanh(), np.tanh),
    (nn.ELU(), lambda x: np.where(x > 0, x, np.exp(x) - 1)),
    (nn.ELU(alpha=0.5), lambda x: np.where(x > 0, x, 0.5 * (np.exp(x) - 1))),
    (nn.LeakyReLU(), lambda x: np.where(x > 0, x, 0.01 * x)),
    (nn.LeakyReLU(0.2), lambda x: np.where(x > 0, x, 0.2 * x)),
    (nn.Softmax(), lambda x: np.exp(x) / np.exp(x).sum(-1, keepdims=True)),
    (nn.Softmax(dim=0), lambda x: np.exp(x) / np.exp(x).sum(0, keepdims=True)),
    (nn.LogSoftmax(), lambda x: x - np.log(np.exp(x).sum(-1, keepdims=True))),
]


@pytest.mark.parametrize("layer, reference", ACTIVATIONS, ids=[repr(a[0]) for a in ACTIVATIONS])
def test_activation_matches_numpy_and_gradchecks(layer, reference):
    x = leaf(3, 5, low=-3, high=3, away_from_zero=True)
    np.testing.assert_allclose(layer(x).data, reference(x.data), rtol=1e-10, atol=1e-12)
    x32 = ag.Tensor(x.data.astype(np.float32))
    assert layer(x32).dtype == np.float32
    assert ag.gradcheck(layer, x)


def test_activation_reprs():
    assert repr(nn.ELU(0.5)) == "ELU(alpha=0.5)"
    assert repr(nn.LeakyReLU(0.2)) == "LeakyReLU(negative_slope=0.2)"
    assert repr(nn.Softmax()) == "Softmax(dim=-1)"
    assert repr(nn.Dropout(0.3)) == "Dropout(p=0.3)"
    assert repr(nn.MaxPool2d(2)) == "MaxPool2d(kernel_size=(2, 2), stride=(2, 2), padding=0)"


def test_small_cnn_end_to_end_gradcheck():
    """A conv -> pool -> flatten -> linear stack, parameters included, in float64."""
    conv_w, conv_b = leaf(3, 3, 1, 2), leaf(2)
    lin_w, lin_b = leaf(3, 8), leaf(3)

    def net(x, conv_w, conv_b, lin_w, lin_b):
        h = F.tanh(F.conv2d(x, conv_w, conv_b, padding="same"))
        h = F.flatten(F.avg_pool2d(h, 2))
        return F.linear(h, lin_w, lin_b)

    assert ag.gradcheck(net, (leaf(2, 4, 4, 1), conv_w, conv_b, lin_w, lin_b))


# ---- nn.init ------------------------------------------------------------------------------
def test_fans_for_linear_and_nhwc_conv():
    assert nn.init.compute_fans((30, 20)) == (20, 30)
    assert nn.init.compute_fans((3, 5, 4, 8)) == (3 * 5 * 4, 3 * 5 * 8)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        nn.init.compute_fans((5,))


@pytest.mark.parametrize("shape", [(200, 300), (5, 5, 16, 32)])
def test_init_statistics(shape):
    fan_in, fan_out = nn.init.compute_fans(shape)
    w = nn.Parameter(np.empty(shape, dtype=np.float32))
    generator = np.random.default_rng(0)
    tolerance = 0.03  # 60,000 / 12,800 samples: std estimates within ~1%

    nn.init.kaiming_uniform_(w, nonlinearity="relu", generator=generator)
    bound = math.sqrt(2) * math.sqrt(3 / fan_in)
    assert np.abs(w.data).max() <= bound
    assert abs(w.data.std() / (bound / math.sqrt(3)) - 1) < tolerance

    nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu", generator=generator)
    assert abs(w.data.std() / (math.sqrt(2) / math.sqrt(fan_out)) - 1) < tolerance

    nn.init.xavier_uniform_(w, generator=generator)
    bound = math.sqrt(6 / (fan_in + fan_out))
    assert np.abs(w.data).max() <= bound
    assert abs(w.data.std() / (bound / math.sqrt(3)) - 1) < tolerance

    nn.init.xavier_normal_(w, gain=2.0, generator=generator)
    assert abs(w.data.std() / (2 * math.sqrt(2 / (fan_in + fan_out))) - 1) < tolerance

    nn.init.normal_(w, mean=3.0, std=0.5, generator=generator)
    assert abs(w.data.mean() - 3.0) < 0.02 and abs(w.data.std() - 0.5) < 0.02
    assert w.dtype == np.float32


def test_init_is_in_place_and_seedable():
    w = nn.Parameter(np.empty((4, 3), dtype=np.float64))
    array = w.data
    assert nn.init.zeros_(w) is w and w.data is array and np.all(array == 0)
    nn.init.ones_(w)
    assert np.all(array == 1)
    nn.init.constant_(w, 2.5)
    assert np.all(array == 2.5) and array.dtype == np.float64
    nn.init.uniform_(w, -2, -1)
    assert np.all((array >= -2) & (array < -1))
    nn.manual_seed(11)
    first = nn.init.kaiming_uniform_(np.empty((4, 3))).copy()
    nn.manual_seed(11)
    np.testing.assert_array_equal(nn.init.kaiming_uniform_(np.empty((4, 3))), first)
    nn.manual_seed(5)
    a = nn.Linear(3, 3).weight.data.copy()
    nn.manual_seed(5)
    np.testing.assert_array_equal(nn.Linear(3, 3).weight.data, a)


def test_gain_and_init_errors():
    assert nn.init.calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert nn.init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert nn.init.calculate_gain("leaky_relu", math.sqrt(5)) == pytest.approx(math.sqrt(1 / 3))
    with pytest.raises(ValueError, match="unsupported nonlinearity 'swish'"):
        nn.init.calculate_gain("swish")
    with pytest.raises(ValueError, match="mode must be"):
        nn.init.kaiming_normal_(np.empty((2, 2)), mode="fan_avg")
    with pytest.raises(TypeError, match="floating-point"):
        nn.init.zeros_(np.empty((2, 2), dtype=np.int64))
    with pytest.raises(TypeError, match="expected a Tensor"):
        nn.init.zeros_([1.0, 2.0])


# ---- issue 14's layers: numpy references, gradchecks, bad input ---------------------------

def module_gradcheck(module, x):
    """gradcheck of module(x) with respect to x and every parameter of the module (float64)."""
    names = [name for name, _ in module.named_parameters()]
    params = [ag.Tensor(np.array(p.data, dtype=np.float64), requires_grad=True) for _, p in module.named_parameters()]

    def run(x, *values):
        saved = dict(module._parameters)
        module._parameters.update(zip(names, values))
        try:
            return module(x)
        finally:
            module._parameters.update(saved)
    return ag.gradcheck(run, (x, *params))


def conv1d_reference(x, w, b, stride, pad, dilation=1):
    """x [N, L, C], w [k, C, O] (groups 1), zero padding pad on both sides."""
    x = np.pad(x, ((0, 0), (pad, pad), (0, 0)))
    k = w.shape[0]
    out_len = (x.shape[1] - dilation * (k - 1) - 1) // stride + 1
    y = np.zeros((x.shape[0], out_len, w.shape[2]))
    for i in range(out_len):
        for j in range(k):
            y[:, i, :] += x[:, i * stride + j * dilation, :] @ w[j]
    return y if b is None else y + b


def conv_transpose2d_reference(x, w, b, stride, pad, output_padding):
    """x [N, H, W, C_in], w [kh, kw, C_out, C_in] (groups 1): every input pixel scatters
    w @ x into the output, then the padding is cropped."""
    n, h, width, _ = x.shape
    kh, kw, c_out, _ = w.shape
    full_h = (h - 1) * stride + kh + output_padding
    full_w = (width - 1) * stride + kw + output_padding
    y = np.zeros((n, full_h, full_w, c_out))
    for i in range(h):
        for j in range(width):
            for a in range(kh):
                for c in range(kw):
                    y[:, i * stride + a, j * stride + c, :] += x[:, i, j, :] @ w[a, c].T
    y = y[:, pad:full_h - pad, pad:full_w - pad, :]
    return y if b is None else y + b


def test_conv1d_matches_numpy_and_gradchecks():
    layer = nn.Conv1d(3, 4, 3, stride=2, padding=1, dtype=np.float64)
    assert layer.weight.shape == (3, 3, 4) and layer.bias.shape == (4,)
    x = leaf(2, 7, 3)
    np.testing.assert_allclose(layer(x).data, conv1d_reference(x.data, layer.weight.data, layer.bias.data, 2, 1),
                               rtol=1e-10, atol=1e-12)
    assert module_gradcheck(layer, x)
    dilated = nn.Conv1d(2, 2, 2, dilation=2, bias=False, dtype=np.float64)
    x = leaf(1, 6, 2)
    np.testing.assert_allclose(dilated(x).data, conv1d_reference(x.data, dilated.weight.data, None, 1, 0, 2),
                               rtol=1e-10, atol=1e-12)
    # padding_mode: the input padded first (here by reflection), then a valid convolution
    reflect = nn.Conv1d(2, 3, 3, padding=1, padding_mode="reflect", dtype=np.float64)
    padded = np.pad(x.data, ((0, 0), (1, 1), (0, 0)), mode="reflect")
    np.testing.assert_allclose(reflect(x).data, conv1d_reference(padded, reflect.weight.data, reflect.bias.data, 1, 0),
                               rtol=1e-10, atol=1e-12)
    assert nn.Conv1d(2, 3, 3, padding="same")(ag.randn(1, 5, 2)).shape == (1, 5, 3)


def test_conv_transpose2d_matches_numpy_and_gradchecks():
    layer = nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1, output_padding=1, dtype=np.float64)
    assert layer.weight.shape == (3, 3, 2, 3)
    x = leaf(2, 3, 3, 3)
    y = layer(x)
    assert y.shape == (2, 6, 6, 2)
    np.testing.assert_allclose(y.data, conv_transpose2d_reference(x.data, layer.weight.data, layer.bias.data, 2, 1, 1),
                               rtol=1e-10, atol=1e-12)
    assert module_gradcheck(layer, x)
    # output_size picks the output padding as torch's forward(x, output_size)
    assert layer(x, output_size=(5, 5)).shape == (2, 5, 5, 2)
    with pytest.raises(ValueError, match="ConvTranspose2d.*output_size"):
        layer(x, output_size=(9, 9))


def test_upsample_and_adaptive_and_1d_pools_match_numpy():
    x = leaf(2, 3, 4, 2)
    np.testing.assert_array_equal(nn.Upsample(scale_factor=2)(x).data, x.data.repeat(2, axis=1).repeat(2, axis=2))
    assert nn.Upsample(size=(5, 7), mode="bilinear", align_corners=False)(x).shape == (2, 5, 7, 2)
    pooled = nn.AdaptiveAvgPool2d((2, 3))(x)
    expected = np.zeros((2, 2, 3, 2))
    for i in range(2):
        for j in range(3):
            rows = slice(i * 3 // 2, -(-(i + 1) * 3 // 2))
            cols = slice(j * 4 // 3, -(-(j + 1) * 4 // 3))
            expected[:, i, j] = x.data[:, rows, cols].mean(axis=(1, 2))
    np.testing.assert_allclose(pooled.data, expected, rtol=1e-12)
    assert ag.gradcheck(nn.AdaptiveAvgPool2d((2, 3)), (x,))
    np.testing.assert_allclose(nn.AdaptiveMaxPool2d(1)(x).data, x.data.max(axis=(1, 2), keepdims=True))
    values, indices = nn.AdaptiveMaxPool2d(1, return_indices=True)(x)
    assert values.shape == (2, 1, 1, 2) and indices.shape == (2, 1, 1, 2)
    sequence = leaf(2, 6, 3)
    np.testing.assert_allclose(nn.MaxPool1d(2)(sequence).data, sequence.data.reshape(2, 3, 2, 3).max(axis=2))
    np.testing.assert_allclose(nn.AvgPool1d(3)(sequence).data, sequence.data.reshape(2, 2, 3, 3).mean(axis=2))
    np.testing.assert_allclose(nn.AdaptiveAvgPool1d(1)(sequence).data, sequence.data.mean(axis=1, keepdims=True))
    np.testing.assert_allclose(nn.AdaptiveMaxPool1d(2)(sequence).data, sequence.data.reshape(2, 2, 3, 3).max(axis=2))


def test_dropout2d_drops_whole_channels_per_sample():
    layer = nn.Dropout2d(0.5, generator=np.random.default_rng(7))
    x = ag.Tensor(RNG.uniform(1.0, 2.0, size=(4, 3, 3, 8)), requires_grad=True)
    y = layer(x)
    keep = np.random.default_rng(7).random((4, 1, 1, 8)) >= 0.5
    np.testing.assert_allclose(y.data, x.data * keep * 2.0)
    assert 0 < keep.sum() < keep.size  # both outcomes happen at this seed
    y.sum().backward()
    np.testing.assert_allclose(x.grad.data, np.broadcast_to(keep * 2.0, x.shape))
    layer.eval()
    assert layer(x) is x
    np.testing.assert_allclose(nn.Dropout1d(1.0)(x[:, 0]).data, 0.0)
    with pytest.raises(ValueError, match="Dropout2d.*channels-last"):
        nn.Dropout2d()(ag.randn(2, 3))


def test_alpha_dropout_formula_and_statistics():
    p, saturation = 0.2, -1.7580993408473766
    layer = nn.AlphaDropout(p, generator=np.random.default_rng(3))
    x = leaf(5, 6)
    keep = np.random.default_rng(3).random((5, 6)) >= p
    a = ((1 - p) * (1 + p * saturation ** 2)) ** -0.5
    expected = a * np.where(keep, x.data, saturation) - a * saturation * p
    np.testing.assert_allclose(layer(x).data, expected, rtol=1e-12)
    assert ag.gradcheck(lambda x: F.alpha_dropout(x, p, True, np.random.default_rng(3)), (x,))
    # it keeps zero mean and unit variance of a standard normal input
    big = nn.AlphaDropout(0.3, generator=np.random.default_rng(0))(ag.Tensor(np.random.default_rng(1).standard_normal(200000)))
    assert abs(big.data.mean()) < 0.02 and abs(big.data.std() - 1) < 0.02
    layer.eval()
    assert layer(x) is x


def test_unflatten_and_errors():
    x = leaf(2, 12)
    np.testing.assert_array_equal(nn.Unflatten(1, (3, 4))(x).data, x.data.reshape(2, 3, 4))
    np.testing.assert_array_equal(nn.Unflatten(-1, (2, -1))(x).data, x.data.reshape(2, 2, 6))
    with pytest.raises(ValueError, match="Unflatten: cannot split"):
        nn.Unflatten(1, (5, 2))(x)
    with pytest.raises(ValueError, match="Unflatten: unflattened_size"):
        nn.Unflatten(1, (0, 2))


def test_prelu_per_channel_and_shared():
    layer = nn.PReLU(3, init=0.1, dtype=np.float64)
    layer.weight.data[:] = [0.1, 0.2, 0.3]
    x = leaf(4, 5, 3, away_from_zero=True)
    np.testing.assert_allclose(layer(x).data, np.where(x.data > 0, x.data, x.data * [0.1, 0.2, 0.3]))
    assert module_gradcheck(layer, x)
    shared = nn.PReLU(dtype=np.float64)
    np.testing.assert_allclose(shared(x).data, np.where(x.data > 0, x.data, 0.25 * x.data))
    with pytest.raises(ValueError, match=r"PReLU\(num_parameters=3\).*\[\.\.\., 3\]"):
        layer(leaf(4, 2))


def _np_sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _np_softplus(x):
    return np.logaddexp(0, x)


ACTIVATION_REFERENCES = [
    (nn.GELU(), lambda x: 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))),
    (nn.GELU("tanh"), lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))),
    (nn.SiLU(), lambda x: x * _np_sigmoid(x)),
    (nn.Mish(), lambda x: x * np.tanh(_np_softplus(x))),
    (nn.Hardswish(), lambda x: x * np.clip(x + 3, 0, 6) / 6),
    (nn.Hardsigmoid(), lambda x: np.clip(x + 3, 0, 6) / 6),
    (nn.SELU(), lambda x: 1.0507009873554805 * np.where(x > 0, x, 1.6732632423543772 * np.expm1(x))),
    (nn.CELU(0.5), lambda x: np.where(x > 0, x, 0.5 * np.expm1(x / 0.5))),
    (nn.Softsign(), lambda x: x / (1 + np.abs(x))),
    (nn.Hardtanh(-0.5, 2.0), lambda x: np.clip(x, -0.5, 2.0)),
    (nn.ReLU6(), lambda x: np.clip(x, 0, 6)),
    (nn.LogSigmoid(), lambda x: -_np_softplus(-x)),
    (nn.Softplus(), _np_softplus),
    (nn.Softplus(beta=2.0, threshold=3.0), lambda x: np.where(2 * x > 3, x, _np_softplus(2 * x) / 2)),
    (nn.Softmin(dim=1), lambda x: np.exp(-x) / np.exp(-x).sum(axis=1, keepdims=True)),
    (nn.GLU(), lambda x: x[..., :2] * _np_sigmoid(x[..., 2:])),
]


@pytest.mark.parametrize("layer, reference", ACTIVATION_REFERENCES, ids=lambda v: repr(v) if isinstance(v, nn.Module) else "")
def test_activation_modules_match_numpy_and_gradcheck(layer, reference):
    # values away from every kink (0, +-1, +-3, 6, the thresholds) for finite differences
    x = ag.Tensor(np.array([[-4.2, -2.1, -0.7, 0.4], [0.9, 1.3, 2.6, 7.5]]), requires_grad=True)
    np.testing.assert_allclose(layer(x).data, reference(x.data), rtol=1e-7, atol=1e-10)
    assert ag.gradcheck(layer, (x,))


def test_glu_needs_an_even_dimension():
    with pytest.raises(ValueError, match="GLU.*even"):
        nn.GLU()(ag.randn(2, 3))
    with pytest.raises(ValueError, match="GELU: approximate"):
        nn.GELU("fast")


def test_new_conv_layers_reject_bad_input():
    with pytest.raises(ValueError, match=r"Conv1d\(3, 4, kernel_size=3\).*\[N, L, 3\].*channels-first"):
        nn.Conv1d(3, 4, 3)(ag.randn(2, 3, 10))
    with pytest.raises(ValueError, match=r"ConvTranspose2d\(3, 2.*\[N, H, W, 3\]"):
        nn.ConvTranspose2d(3, 2, 3)(ag.randn(2, 4, 4, 5))
    with pytest.raises(ValueError, match="Conv1d: groups"):
        nn.Conv1d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="Conv1d: padding_mode"):
        nn.Conv1d(3, 4, 3, padding_mode="mirror")
    with pytest.raises(TypeError, match="Conv1d.*dtype"):
        nn.Conv1d(3, 4, 3)(ag.randn(1, 5, 3).astype(np.float64))
    with pytest.raises(ValueError, match="AdaptiveAvgPool2d: expected channels-last"):
        nn.AdaptiveAvgPool2d(2)(ag.randn(4, 4))
    with pytest.raises(ValueError, match="Upsample: give exactly one"):
        nn.Upsample()


def test_embedding_padding_idx_gets_no_gradient():
    layer = nn.Embedding(6, 3, padding_idx=-1, dtype=np.float64)
    assert layer.padding_idx == 5
    np.testing.assert_array_equal(layer.weight.data[5], 0)
    indices = np.array([[0, 5, 2], [5, 2, 1]])
    out = layer(indices)
    np.testing.assert_array_equal(out.data, layer.weight.data[indices])
    out.backward(np.ones(out.shape))
    expected = np.zeros((6, 3))
    np.add.at(expected, indices.reshape(-1), 1.0)
    expected[5] = 0
    np.testing.assert_array_equal(layer.weight.grad.data, expected)
    with pytest.raises(ValueError, match="Embedding: padding_idx"):
        nn.Embedding(6, 3, padding_idx=6)
    with pytest.raises(ValueError, match=r"Embedding: indices must lie in \[0, 6\)"):
        layer(np.array([6]))


def test_embedding_gradient_sums_the_rows_of_repeated_indices():
    # the sorted add.reduceat of the backward against np.add.at: unsorted repeats, rows
    # never looked up (zero), and no indices at all
    rng = np.random.default_rng(5)
    layer = nn.Embedding(9, 4, dtype=np.float64)
    indices = rng.integers(0, 7, size=(5, 6))
    out = layer(indices)
    upstream = rng.standard_normal(out.shape)
    out.backward(upstream)
    expected = np.zeros((9, 4))
    np.add.at(expected, indices.reshape(-1), upstream.reshape(-1, 4))
    np.testing.assert_allclose(layer.weight.grad.data, expected, rtol=1e-12, atol=1e-12)
    assert not expected[7:].any() and expected[:7].any()
    layer.weight.grad = None
    empty = layer(np.zeros((0,), dtype=np.int64))
    empty.backward(np.zeros(empty.shape))
    np.testing.assert_array_equal(layer.weight.grad.data, np.zeros((9, 4)))


def test_embedding_max_norm_renormalises_looked_up_rows_in_place():
    table = np.array([[3.0, 4.0], [0.3, 0.4], [6.0, 8.0], [1.0, 0.0]])
    layer = nn.Embedding.from_pretrained(table, freeze=False, max_norm=1.0)
    out = layer(np.array([0, 1, 0]))
    scaled = table[0] / (5.0 + 1e-7)
    np.testing.assert_allclose(out.data, [scaled, table[1], scaled])
    np.testing.assert_allclose(layer.weight.data[0], scaled)  # renormalised in place
    np.testing.assert_array_equal(layer.weight.data[2], table[2])  # not looked up: untouched
    np.testing.assert_array_equal(table[0], [3.0, 4.0])  # from_pretrained copied the table
    l1 = nn.Embedding.from_pretrained(table, max_norm=2.0, norm_type=1.0)
    np.testing.assert_allclose(l1(np.array([2])).data, [table[2] * 2.0 / (14.0 + 1e-7)])
    out.sum().backward()
    assert layer.weight.grad is not None


def test_embedding_from_pretrained_freezes_by_default():
    table = RNG.standard_normal((4, 3)).astype(np.float32)
    layer = nn.Embedding.from_pretrained(table)
    assert not layer.weight.requires_grad and layer.weight.dtype == np.float32
    np.testing.assert_array_equal(layer(np.array([3, 1])).data, table[[3, 1]])
    with pytest.raises(ValueError, match="Embedding.from_pretrained"):
        nn.Embedding.from_pretrained(np.zeros(4))


def _lstm_projected_reference(x, params, proj, hidden):
    """numpy LSTM with a projection, one direction: x [b, T, in] -> outputs [b, T, proj]."""
    w_ih, w_hh, b_ih, b_hh, w_hr = params
    h, c = np.zeros((x.shape[0], proj)), np.zeros((x.shape[0], hidden))
    sigmoid = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    outputs = []
    for t in range(x.shape[1]):
        gates = x[:, t] @ w_ih.T + b_ih + h @ w_hh.T + b_hh
        i, f, g, o = np.split(gates, 4, axis=1)
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        h = (sigmoid(o) * np.tanh(c)) @ w_hr.T
        outputs.append(h)
    return np.stack(outputs, axis=1), h, c


def test_lstm_proj_size_matches_numpy_and_gradchecks():
    layer = nn.LSTM(3, 4, proj_size=2, dtype=np.float64)
    assert layer.weight_hr_l0.shape == (2, 4) and layer.weight_hh_l0.shape == (16, 2)
    x = leaf(2, 5, 3)
    outputs, (h, c) = layer(x)
    params = [getattr(layer, name + "_l0").data for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh",
                                                             "weight_hr")]
    expected, h_ref, c_ref = _lstm_projected_reference(x.data, params, 2, 4)
    np.testing.assert_allclose(outputs.data, expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(h.data[0], h_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(c.data[0], c_ref, rtol=1e-10, atol=1e-12)
    small = nn.LSTM(2, 3, proj_size=1, dtype=np.float64)
    assert module_gradcheck(_FirstOutput(small), leaf(2, 3, 2))


class _FirstOutput(nn.Module):
    """A recurrent layer's outputs without its state (for module_gradcheck)."""

    def __init__(self, layer):
        super().__init__()
        self.layer = layer
        self._parameters = layer._parameters  # module_gradcheck swaps these

    def forward(self, x):
        return self.layer(x)[0]


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_bidirectional_is_a_forward_and_a_reversed_layer(kind):
    """The reference: two unidirectional layers with the same weights, the second run on
    each sequence reversed within its length and its outputs reversed back."""
    both = getattr(nn, kind)(3, 4, bidirectional=True, dtype=np.float64)
    forward, backward = getattr(nn, kind)(3, 4, dtype=np.float64), getattr(nn, kind)(3, 4, dtype=np.float64)
    for name, param in forward.named_parameters():
        param.data[...] = getattr(both, name).data
        getattr(backward, name).data[...] = getattr(both, name + "_reverse").data
    x = RNG.standard_normal((3, 5, 3))
    lengths = np.array([5, 3, 1])
    reversed_x = x.copy()
    for b, n in enumerate(lengths):
        reversed_x[b, :n] = x[b, :n][::-1]
    out, state = both(ag.Tensor(x), lengths=lengths)
    out_f, state_f = forward(ag.Tensor(x), lengths=lengths)
    out_b, state_b = backward(ag.Tensor(reversed_x), lengths=lengths)
    expected_b = out_b.data.copy()
    for b, n in enumerate(lengths):
        expected_b[b, :n] = out_b.data[b, :n][::-1]
    np.testing.assert_allclose(out.data, np.concatenate([out_f.data, expected_b], axis=2), rtol=1e-12, atol=1e-14)
    h, h_f, h_b = (s[0] if kind == "LSTM" else s for s in (state, state_f, state_b))
    np.testing.assert_allclose(h.data, np.concatenate([h_f.data, h_b.data]), rtol=1e-12, atol=1e-14)


def test_bidirectional_gru_gradchecks():
    layer = nn.GRU(2, 2, num_layers=2, bidirectional=True, dtype=np.float64)
    assert module_gradcheck(_FirstOutput(layer), leaf(2, 3, 2))


def test_bidirectional_and_projection_errors_name_the_layer():
    layer = nn.LSTM(3, 4, num_layers=2, bidirectional=True, proj_size=2)
    with pytest.raises(ValueError, match=r"LSTM: expected initial h of shape \(4, 2, 2\)"):
        layer(ag.randn(2, 5, 3), (ag.zeros(2, 2, 2), ag.zeros(4, 2, 4)))
    with pytest.raises(ValueError, match="LSTM: proj_size must be 0 or smaller than hidden_size"):
        nn.LSTM(3, 4, proj_size=4)
    with pytest.raises(ValueError, match="GRU: proj_size"):
        nn.GRU(3, 4, proj_size=2)
    with pytest.raises(ValueError, match=r"GRU: expected input \[batch, time >= 1, 3\]"):
        nn.GRU(3, 4, bidirectional=True)(ag.randn(2, 5, 4))
