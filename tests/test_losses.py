"""Losses: values against numpy formulas, gradients by gradcheck, stability at extreme
logits, reductions, module forms and input errors."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import autograd_core as ag
import nn
from nn import functional as F

RNG = np.random.default_rng(99)
REDUCTIONS = ["mean", "sum", "none"]


def leaf(*shape, scale=1.0, dtype=np.float64):
    return ag.Tensor((RNG.standard_normal(shape) * scale).astype(dtype), requires_grad=True)


def reduce(losses, reduction, count):
    return {"mean": losses.sum() / count, "sum": losses.sum(), "none": losses}[reduction]


def log_softmax_reference(x):
    shifted = x - x.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


# ---- cross entropy ------------------------------------------------------------------------
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_labels_value_and_gradient(reduction):
    logits = leaf(5, 4)
    labels = np.array([0, 3, 1, 1, 2])
    loss = F.cross_entropy(logits, labels, reduction=reduction)
    expected = -log_softmax_reference(logits.data)[np.arange(5), labels]
    np.testing.assert_allclose(loss.data, reduce(expected, reduction, 5), rtol=1e-12)
    assert ag.gradcheck(lambda x: F.cross_entropy(x, labels, reduction=reduction), logits)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_probabilities_value_and_gradient(reduction):
    logits = leaf(3, 5)
    probabilities = RNG.dirichlet(np.ones(5), size=3)
    loss = F.cross_entropy(logits, probabilities, reduction=reduction)
    expected = -(probabilities * log_softmax_reference(logits.data)).sum(axis=1)
    np.testing.assert_allclose(loss.data, reduce(expected, reduction, 3), rtol=1e-12)
    # gradient with respect to the logits and, when it asks for one, to the target
    target = ag.Tensor(probabilities, requires_grad=True)
    assert ag.gradcheck(lambda x, t: F.cross_entropy(x, t, reduction=reduction), (logits, target))


def test_cross_entropy_one_hot_equals_labels_and_backward_is_softmax_minus_target():
    logits = leaf(4, 3)
    labels = np.array([2, 0, 1, 2])
    one_hot = np.eye(3)[labels]
    by_label = F.cross_entropy(logits, labels)
    by_one_hot = F.cross_entropy(logits, ag.Tensor(one_hot))
    np.testing.assert_allclose(by_label.data, by_one_hot.data, rtol=1e-12)
    by_label.backward()
    softmax = np.exp(log_softmax_reference(logits.data))
    np.testing.assert_allclose(logits.grad.data, (softmax - one_hot) / 4, rtol=1e-12)


def test_cross_entropy_is_stable_and_keeps_float32():
    logits = ag.Tensor(np.array([[1000.0, 0.0, -1000.0], [-5e4, 5e4, 0.0]], dtype=np.float32),
                       requires_grad=True)
    loss = F.cross_entropy(logits, np.array([1, 1]), reduction="none")
    assert loss.dtype == np.float32
    np.testing.assert_allclose(loss.data, [1000.0, 0.0], rtol=1e-6)
    loss.sum().backward()
    assert np.all(np.isfinite(logits.grad.data)) and logits.grad.dtype == np.float32
    np.testing.assert_allclose(logits.grad.data, [[1, -1, 0], [0, 0, 0]], atol=1e-6)
    assert F.cross_entropy(ag.randn(3, 2), np.array([0, 1, 1])).dtype == np.float32


def test_cross_entropy_errors():
    logits = ag.randn(3, 4)
    with pytest.raises(ValueError, match="label 4 out of range for 4 classes"):
        F.cross_entropy(logits, np.array([0, 4, 1]))
    with pytest.raises(ValueError, match="label -1 out of range"):
        F.cross_entropy(logits, np.array([0, -1, 1]))
    with pytest.raises(ValueError, match=r"logits have shape \(3, 4\) but labels have shape \(2,\)"):
        F.cross_entropy(logits, np.array([0, 1]))
    with pytest.raises(TypeError, match="integer class labels, got dtype float"):
        F.cross_entropy(logits, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match=r"target probabilities have shape \(3, 3\)"):
        F.cross_entropy(logits, np.ones((3, 3)) / 3)
    with pytest.raises(ValueError, match=r"logits must have shape \[N, C\], \[C\] or \[N, d1, ..., C\], got shape \(\)"):
        F.cross_entropy(ag.Tensor(np.float32(1.0)), np.array(1))
    with pytest.raises(ValueError, match=r"logits have shape \(4,\) but labels have shape \(1,\); expected \(\)"):
        F.cross_entropy(ag.randn(4), np.array([1]))
    with pytest.raises(TypeError, match="logits must be a float tensor"):
        F.cross_entropy(ag.Tensor(np.zeros((3, 4), dtype=np.int64)), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="reduction must be one of"):
        F.cross_entropy(logits, np.array([0, 1, 2]), reduction="avg")


# ---- binary cross entropy with logits -------------------------------------------------------
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_with_logits_value_and_gradient(reduction):
    logits = leaf(3, 4, scale=3.0)
    target = RNG.uniform(size=(3, 4))
    loss = F.binary_cross_entropy_with_logits(logits, target, reduction=reduction)
    probability = 1 / (1 + np.exp(-logits.data))
    expected = -(target * np.log(probability) + (1 - target) * np.log(1 - probability))
    np.testing.assert_allclose(loss.data, reduce(expected, reduction, 12), rtol=1e-10)
    target_tensor = ag.Tensor(target, requires_grad=True)
    assert ag.gradcheck(lambda x, y: F.binary_cross_entropy_with_logits(x, y, reduction=reduction),
                        (logits, target_tensor))


def test_bce_with_logits_is_stable_at_extreme_logits():
    logits = ag.Tensor(np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0], dtype=np.float32), requires_grad=True)
    target = np.array([0.0, 1.0, 0.5, 0.0, 1.0])
    loss = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    np.testing.assert_allclose(loss.data, [0.0, 50.0, np.log(2), 50.0, 0.0], rtol=1e-6, atol=1e-7)
    loss.sum().backward()
    np.testing.assert_allclose(logits.grad.data, [0.0, -1.0, 0.0, 1.0, 0.0], atol=1e-6)
    assert logits.grad.dtype == np.float32


def test_bce_with_logits_errors():
    with pytest.raises(ValueError, match=r"logits has shape \(3, 4\) but target has shape \(3,\)"):
        F.binary_cross_entropy_with_logits(ag.randn(3, 4), np.zeros(3))
    with pytest.raises(TypeError, match="logits must be a Tensor"):
        F.binary_cross_entropy_with_logits(np.zeros(3), np.zeros(3))


# ---- mean squared error ---------------------------------------------------------------------
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_value_and_gradient(reduction):
    prediction, target = leaf(2, 3, 2), leaf(2, 3, 2)
    loss = F.mse_loss(prediction, target, reduction=reduction)
    expected = (prediction.data - target.data) ** 2
    np.testing.assert_allclose(loss.data, reduce(expected, reduction, 12), rtol=1e-12)
    assert ag.gradcheck(lambda a, b: F.mse_loss(a, b, reduction=reduction), (prediction, target))


def test_mse_with_numpy_target_keeps_float32_and_checks_shapes():
    prediction = ag.randn(4, 2, requires_grad=True)
    loss = F.mse_loss(prediction, np.zeros((4, 2)))
    assert loss.dtype == np.float32
    loss.backward()
    np.testing.assert_allclose(prediction.grad.data, 2 * prediction.data / 8, rtol=1e-6)
    with pytest.raises(ValueError, match=r"mse_loss: input has shape \(4, 2\) but target has shape \(4,\)"):
        F.mse_loss(prediction, np.zeros(4))
    with pytest.raises(TypeError, match="target requires grad and has dtype float64"):
        F.mse_loss(prediction, ag.Tensor(np.zeros((4, 2)), requires_grad=True))


# ---- Gaussian KL ----------------------------------------------------------------------------
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_gaussian_kl_value_and_gradient(reduction):
    mu, logvar = leaf(4, 3), leaf(4, 3, scale=0.5)
    loss = F.gaussian_kl(mu, logvar, reduction=reduction)
    per_sample = -0.5 * np.sum(1 + logvar.data - mu.data ** 2 - np.exp(logvar.data), axis=1)
    np.testing.assert_allclose(loss.data, reduce(per_sample, reduction, 4), rtol=1e-12)
    assert ag.gradcheck(lambda m, v: F.gaussian_kl(m, v, reduction=reduction), (mu, logvar))


def test_gaussian_kl_closed_form_and_higher_rank():
    # KL(N(mu, s^2) || N(0, 1)) = 0.5 * (s^2 + mu^2 - 1 - log s^2), per dimension
    mu = ag.Tensor(np.array([[1.0, 0.0]]))
    logvar = ag.Tensor(np.log(np.array([[1.0, 4.0]])))
    expected = 0.5 * (1 + 1 - 1 - 0) + 0.5 * (4 + 0 - 1 - np.log(4))
    np.testing.assert_allclose(F.gaussian_kl(mu, logvar).data, expected, rtol=1e-12)
    assert F.gaussian_kl(ag.zeros(2, 3), ag.zeros(2, 3)).item() == 0.0
    mu4, logvar4 = leaf(2, 2, 2, 1), leaf(2, 2, 2, 1)
    assert F.gaussian_kl(mu4, logvar4, reduction="none").shape == (2,)
    assert ag.gradcheck(F.gaussian_kl, (mu4, logvar4))


def test_gaussian_kl_errors():
    with pytest.raises(ValueError, match=r"mu has shape \(2, 3\) and logvar \(2, 4\)"):
        F.gaussian_kl(ag.randn(2, 3), ag.randn(2, 4))
    with pytest.raises(TypeError, match="mu has dtype float32 but logvar has dtype float64"):
        F.gaussian_kl(ag.randn(2, 3), ag.Tensor(np.zeros((2, 3))))


# ---- module forms ---------------------------------------------------------------------------
def test_loss_modules_match_functions():
    logits, labels = leaf(3, 4), np.array([0, 1, 3])
    np.testing.assert_array_equal(nn.CrossEntropyLoss()(logits, labels).data,
                                  F.cross_entropy(logits, labels).data)
    np.testing.assert_array_equal(nn.CrossEntropyLoss(reduction="none")(logits, labels).data,
                                  F.cross_entropy(logits, labels, reduction="none").data)
    target = RNG.uniform(size=(3, 4))
    np.testing.assert_array_equal(nn.BCEWithLogitsLoss(reduction="sum")(logits, target).data,
                                  F.binary_cross_entropy_with_logits(logits, target, reduction="sum").data)
    np.testing.assert_array_equal(nn.MSELoss()(logits, target).data, F.mse_loss(logits, target).data)
    mu, logvar = leaf(2, 3), leaf(2, 3)
    np.testing.assert_array_equal(nn.GaussianKLLoss()(mu, logvar).data, F.gaussian_kl(mu, logvar).data)
    assert repr(nn.CrossEntropyLoss()) == "CrossEntropyLoss()"
    assert repr(nn.MSELoss(reduction="sum")) == "MSELoss(reduction='sum')"
    with pytest.raises(ValueError, match="MSELoss: reduction must be one of"):
        nn.MSELoss(reduction="max")


def test_loss_modules_are_layers_and_the_functions_need_no_module():
    """As in PyTorch: the loss Modules sit with the other Modules and call functional;
    nn.losses (the fused functions, re-exported by nn.functional) holds no Module."""
    import nn.layers
    import nn.losses

    for name in ("CrossEntropyLoss", "BCEWithLogitsLoss", "MSELoss", "GaussianKLLoss"):
        assert getattr(nn, name) is getattr(nn.layers, name) and issubclass(getattr(nn, name), nn.Module)
        assert not hasattr(nn.losses, name)
    for name in ("cross_entropy", "binary_cross_entropy_with_logits", "mse_loss", "gaussian_kl"):
        assert getattr(F, name) is getattr(nn.losses, name)
    for module in (nn.losses, F):
        assert not any(isinstance(value, type) and issubclass(value, nn.Module) for value in vars(module).values())


def test_training_a_linear_classifier_reduces_cross_entropy():
    """Ten full-batch SGD steps on a separable problem: the loss must fall by a lot."""
    generator = np.random.default_rng(0)
    x = ag.Tensor(generator.standard_normal((64, 2)).astype(np.float32))
    labels = (x.data[:, 0] + x.data[:, 1] > 0).astype(np.int64)
    nn.manual_seed(0)
    model = nn.Linear(2, 2)
    optimizer = nn.optim.SGD(model.parameters(), lr=1.0)
    losses = []
    for _ in range(10):
        optimizer.zero_grad()
        loss = nn.CrossEntropyLoss()(model(x), labels)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


@given(rows=st.integers(1, 6), classes=st.integers(1, 5), scale=st.sampled_from([1e-3, 1.0, 30.0]),
       seed=st.integers(0, 2 ** 16))
def test_cross_entropy_properties(rows, classes, scale, seed):
    """Over shapes and logit scales: labels and one-hot agree, the loss is non-negative,
    shifting a row's logits changes nothing, and the gradient is (softmax - one_hot) / N."""
    generator = np.random.default_rng(seed)
    logits = ag.Tensor(generator.standard_normal((rows, classes)) * scale, requires_grad=True)
    labels = generator.integers(0, classes, size=rows)
    one_hot = np.eye(classes)[labels]
    loss = F.cross_entropy(logits, labels, reduction="none")
    np.testing.assert_allclose(loss.data, F.cross_entropy(logits, one_hot, reduction="none").data,
                               rtol=1e-12, atol=1e-12)
    assert np.all(loss.data >= 0)
    shifted = ag.Tensor(logits.data + generator.standard_normal((rows, 1)) * 100)
    np.testing.assert_allclose(F.cross_entropy(shifted, labels, reduction="none").data, loss.data,
                               rtol=1e-9, atol=1e-9)
    F.cross_entropy(logits, labels).backward()
    softmax = np.exp(log_softmax_reference(logits.data))
    np.testing.assert_allclose(logits.grad.data, (softmax - one_hot) / rows, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("call", [
    lambda F, x, w: F.binary_cross_entropy_with_logits(x, ag.tensor(np.ones((2, 2))), pos_weight=w),
    lambda F, x, w: F.binary_cross_entropy_with_logits(x, ag.tensor(np.ones((2, 2))), weight=w),
    lambda F, x, w: F.cross_entropy(x, ag.tensor(np.array([0, 1])), weight=w),
    lambda F, x, w: F.nll_loss(x, ag.tensor(np.array([0, 1])), weight=w),
    lambda F, x, w: F.binary_cross_entropy(x.sigmoid(), ag.tensor(np.ones((2, 2))), weight=w),
    lambda F, x, w: F.multilabel_soft_margin_loss(x, ag.tensor(np.ones((2, 2))), weight=w)])
def test_a_loss_weight_that_requires_grad_is_refused_as_in_torch(call):
    import nn
    x = ag.tensor(np.array([[0.2, -0.3], [1.0, 0.5]]), requires_grad=True)
    w = ag.tensor(np.array([0.5, 1.5]), requires_grad=True)
    with pytest.raises(RuntimeError, match="not differentiable with respect to (pos_)?weight"):
        call(nn.functional, x, w)
    call(nn.functional, x, w.detach()).backward()  # a constant weight is fine
    assert x.grad is not None
