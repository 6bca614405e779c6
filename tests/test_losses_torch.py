"""The torch-vocabulary losses of issue 14 (nll_loss, cross_entropy's weight /
ignore_index / label_smoothing, binary_cross_entropy, pos_weight, l1, smooth_l1, huber,
kl_div, poisson_nll, cosine_embedding, margin_ranking, triplet_margin, hinge_embedding,
multilabel_soft_margin): for every loss and reduction the value against a hand-written
numpy reference (runs without torch), against torch's value and gradients (skipped without
torch), and a float64 gradcheck; the Module forms; bad input.

Classes are the LAST dimension here (channels-last): torch's [N, C, d1] is our [N, d1, C],
so the torch side moves the class axis with movedim(-1, 1).
"""
import numpy as np
import pytest

# torch's kl_div warns that its 'mean' will change; we compare against today's 'mean'
pytestmark = pytest.mark.filterwarnings("ignore:reduction. 'mean' divides:UserWarning")

import autograd_core as ag
import nn
from nn import functional as F

REDUCTIONS = ["mean", "sum", "none"]


def rng(seed=0):
    return np.random.default_rng(seed)


def log_softmax(x):
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def reduce(losses, reduction, divisor=None):
    if reduction == "none":
        return losses
    total = losses.sum()
    return total / (losses.size if divisor is None else divisor) if reduction == "mean" else total


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


# ---- the cases: (differentiable inputs, ours(*tensors), torch's(*tensors), numpy reference)
# Each builder takes the reduction and returns that quadruple; float64 throughout.
def ce_labels_weight_ignore_smoothing(reduction):
    random = rng(1)
    logits = random.standard_normal((3, 2, 5))  # [N, d1, C]: classes last
    labels = random.integers(0, 5, size=(3, 2))
    labels[0, 1] = -100
    labels[2, 0] = -100
    weight = random.uniform(0.5, 2.0, size=5)
    smoothing = 0.2

    def numpy_reference(x):
        log_probs = log_softmax(x)
        kept = labels != -100
        safe = np.where(kept, labels, 0)
        picked = np.take_along_axis(log_probs, safe[..., None], axis=-1)[..., 0]
        nll = -weight[safe] * picked
        smooth = -(log_probs * weight).sum(axis=-1)
        losses = ((1 - smoothing) * nll + smoothing / 5 * smooth) * kept
        return reduce(losses, reduction, (weight[safe] * kept).sum())

    return ([logits],
            lambda x: F.cross_entropy(x, labels, weight=weight, reduction=reduction, label_smoothing=smoothing),
            lambda torch, x: torch.nn.functional.cross_entropy(
                x.movedim(-1, 1), torch.from_numpy(labels), weight=torch.from_numpy(weight),
                reduction=reduction, label_smoothing=smoothing),
            numpy_reference)


def ce_labels_ignore_in_range(reduction):
    random = rng(2)
    logits = random.standard_normal((6, 4))
    labels = np.array([0, 2, 1, 2, 3, 1])

    def numpy_reference(x):
        kept = labels != 2
        losses = -log_softmax(x)[np.arange(6), labels] * kept
        return reduce(losses, reduction, kept.sum())

    return ([logits], lambda x: F.cross_entropy(x, labels, ignore_index=2, reduction=reduction),
            lambda torch, x: torch.nn.functional.cross_entropy(x, torch.from_numpy(labels), ignore_index=2,
                                                               reduction=reduction),
            numpy_reference)


def ce_probabilities_weight_smoothing(reduction):
    random = rng(3)
    logits = random.standard_normal((4, 3))
    target = random.dirichlet(np.ones(3), size=4)
    weight = np.array([0.5, 1.0, 3.0])

    def numpy_reference(x, t):
        smoothed = t * 0.9 + 0.1 / 3
        return reduce(-(weight * smoothed * log_softmax(x)).sum(axis=-1), reduction, 4)

    return ([logits, target],
            lambda x, t: F.cross_entropy(x, t, weight=weight, reduction=reduction, label_smoothing=0.1),
            lambda torch, x, t: torch.nn.functional.cross_entropy(x, t, weight=torch.from_numpy(weight),
                                                                  reduction=reduction, label_smoothing=0.1),
            numpy_reference)


def ce_plain_extra_dims(reduction):
    random = rng(4)
    logits = random.standard_normal((2, 3, 2, 4))  # [N, H, W, C]
    labels = random.integers(0, 4, size=(2, 3, 2))

    def numpy_reference(x):
        losses = -np.take_along_axis(log_softmax(x), labels[..., None], axis=-1)[..., 0]
        return reduce(losses, reduction)

    return ([logits], lambda x: F.cross_entropy(x, labels, reduction=reduction),
            lambda torch, x: torch.nn.functional.cross_entropy(x.movedim(-1, 1), torch.from_numpy(labels),
                                                               reduction=reduction),
            numpy_reference)


def nll(reduction):
    random = rng(5)
    log_probs = log_softmax(random.standard_normal((5, 2, 4)))
    labels = random.integers(0, 4, size=(5, 2))
    labels[1, 1] = -100
    weight = random.uniform(0.5, 2.0, size=4)

    def numpy_reference(x):
        kept = labels != -100
        safe = np.where(kept, labels, 0)
        losses = -weight[safe] * np.take_along_axis(x, safe[..., None], axis=-1)[..., 0] * kept
        return reduce(losses, reduction, (weight[safe] * kept).sum())

    return ([log_probs], lambda x: F.nll_loss(x, labels, weight=weight, reduction=reduction),
            lambda torch, x: torch.nn.functional.nll_loss(x.movedim(-1, 1), torch.from_numpy(labels),
                                                          weight=torch.from_numpy(weight), reduction=reduction),
            numpy_reference)


def bce(reduction):
    random = rng(6)
    probabilities = random.uniform(0.05, 0.95, size=(4, 3))
    target = random.uniform(size=(4, 3))
    weight = random.uniform(0.5, 2.0, size=3)

    def numpy_reference(x, t):
        return reduce(-weight * (t * np.log(x) + (1 - t) * np.log(1 - x)), reduction)

    return ([probabilities, target],
            lambda x, t: F.binary_cross_entropy(x, t, weight=weight, reduction=reduction),
            lambda torch, x, t: torch.nn.functional.binary_cross_entropy(
                x, t, weight=torch.from_numpy(weight), reduction=reduction),
            numpy_reference)


def bce_with_logits_pos_weight(reduction):
    random = rng(7)
    logits = random.standard_normal((4, 3)) * 3
    target = random.uniform(size=(4, 3))
    weight = random.uniform(0.5, 2.0, size=(4, 1))
    pos_weight = np.array([0.5, 2.0, 4.0])

    def numpy_reference(x, t):
        losses = -(pos_weight * t * np.log(sigmoid(x)) + (1 - t) * np.log(1 - sigmoid(x)))
        return reduce(weight * losses, reduction)

    return ([logits, target],
            lambda x, t: F.binary_cross_entropy_with_logits(x, t, weight=weight, reduction=reduction,
                                                            pos_weight=pos_weight),
            lambda torch, x, t: torch.nn.functional.binary_cross_entropy_with_logits(
                x, t, weight=torch.from_numpy(weight), reduction=reduction, pos_weight=torch.from_numpy(pos_weight)),
            numpy_reference)


def elementwise_case(name, numpy_formula, seed, **options):
    def build(reduction):
        random = rng(seed)
        input, target = random.standard_normal((3, 4)) * 2, random.standard_normal((3, 4)) * 2
        return ([input, target],
                lambda x, t: getattr(F, name)(x, t, reduction=reduction, **options),
                lambda torch, x, t: getattr(torch.nn.functional, name)(x, t, reduction=reduction, **options),
                lambda x, t: reduce(numpy_formula(x - t), reduction))
    build.__name__ = name
    return build


def smooth_l1_formula(beta):
    return lambda d: np.where(np.abs(d) < beta, 0.5 * d * d / beta, np.abs(d) - 0.5 * beta)


def huber_formula(delta):
    return lambda d: np.where(np.abs(d) < delta, 0.5 * d * d, delta * (np.abs(d) - 0.5 * delta))


def kl_div_case(log_target):
    def build(reduction):
        random = rng(8)
        input = log_softmax(random.standard_normal((3, 4)))
        target = random.dirichlet(np.ones(4), size=3)
        if log_target:
            target = np.log(target)

        def numpy_reference(x, t):
            losses = np.exp(t) * (t - x) if log_target else t * (np.log(t) - x)
            return losses.sum() / 3 if reduction == "batchmean" else reduce(losses, reduction)

        return ([input, target], lambda x, t: F.kl_div(x, t, reduction=reduction, log_target=log_target),
                lambda torch, x, t: torch.nn.functional.kl_div(x, t, reduction=reduction, log_target=log_target),
                numpy_reference)
    build.__name__ = "kl_div_log_target" if log_target else "kl_div"
    return build


def poisson_case(log_input, full):
    def build(reduction):
        random = rng(9)
        input = random.standard_normal((3, 4)) if log_input else random.uniform(0.5, 3.0, size=(3, 4))
        target = random.poisson(2.0, size=(3, 4)).astype(np.float64)

        def numpy_reference(x):
            losses = np.exp(x) - target * x if log_input else x - target * np.log(x + 1e-8)
            if full:
                safe = np.where(target > 1, target, 1)
                losses = losses + np.where(target > 1, target * np.log(safe) - target + 0.5 * np.log(2 * np.pi * safe), 0)
            return reduce(losses, reduction)

        return ([input], lambda x: F.poisson_nll_loss(x, target, log_input=log_input, full=full, reduction=reduction),
                lambda torch, x: torch.nn.functional.poisson_nll_loss(x, torch.from_numpy(target), log_input=log_input,
                                                                      full=full, reduction=reduction),
                numpy_reference)
    build.__name__ = "poisson_nll_log_input_%s_full_%s" % (log_input, full)
    return build


def cosine_embedding(reduction):
    random = rng(10)
    x1, x2 = random.standard_normal((6, 4)), random.standard_normal((6, 4))
    labels = np.array([1, -1, 1, -1, -1, 1])

    def numpy_reference(a, b):
        cosine = (a * b).sum(-1) / np.sqrt(((a * a).sum(-1) + 1e-12) * ((b * b).sum(-1) + 1e-12))
        return reduce(np.where(labels == 1, 1 - cosine, np.maximum(cosine - 0.1, 0)), reduction)

    return ([x1, x2], lambda a, b: F.cosine_embedding_loss(a, b, labels, margin=0.1, reduction=reduction),
            lambda torch, a, b: torch.nn.functional.cosine_embedding_loss(a, b, torch.from_numpy(labels), margin=0.1,
                                                                          reduction=reduction),
            numpy_reference)


def margin_ranking(reduction):
    random = rng(11)
    x1, x2 = random.standard_normal(7), random.standard_normal(7)
    labels = np.array([1.0, -1.0, 1.0, 1.0, -1.0, -1.0, 1.0])
    return ([x1, x2], lambda a, b: F.margin_ranking_loss(a, b, labels, margin=0.3, reduction=reduction),
            lambda torch, a, b: torch.nn.functional.margin_ranking_loss(a, b, torch.from_numpy(labels), margin=0.3,
                                                                        reduction=reduction),
            lambda a, b: reduce(np.maximum(-labels * (a - b) + 0.3, 0), reduction))


def triplet_case(p, swap):
    def build(reduction):
        random = rng(12)
        anchor, positive, negative = (random.standard_normal((5, 3)) for _ in range(3))

        def distance(a, b):
            return (np.abs(a - b + 1e-6) ** p).sum(-1) ** (1 / p)

        def numpy_reference(a, pos, neg):
            negative_distance = distance(a, neg)
            if swap:
                negative_distance = np.minimum(negative_distance, distance(pos, neg))
            return reduce(np.maximum(distance(a, pos) - negative_distance + 1.0, 0), reduction)

        return ([anchor, positive, negative],
                lambda a, pos, neg: F.triplet_margin_loss(a, pos, neg, p=p, swap=swap, reduction=reduction),
                lambda torch, a, pos, neg: torch.nn.functional.triplet_margin_loss(a, pos, neg, p=p, swap=swap,
                                                                                   reduction=reduction),
                numpy_reference)
    build.__name__ = "triplet_p%s_swap_%s" % (p, swap)
    return build


def hinge_embedding(reduction):
    random = rng(13)
    input = random.standard_normal((3, 4))
    labels = np.where(random.uniform(size=(3, 4)) < 0.5, 1.0, -1.0)
    return ([input], lambda x: F.hinge_embedding_loss(x, labels, margin=0.5, reduction=reduction),
            lambda torch, x: torch.nn.functional.hinge_embedding_loss(x, torch.from_numpy(labels), margin=0.5,
                                                                      reduction=reduction),
            lambda x: reduce(np.where(labels == 1, x, np.maximum(0.5 - x, 0)), reduction))


def multilabel_soft_margin(reduction):
    random = rng(14)
    input = random.standard_normal((4, 3)) * 2
    target = (random.uniform(size=(4, 3)) < 0.5).astype(np.float64)
    weight = np.array([0.5, 1.0, 2.0])

    def numpy_reference(x):
        losses = -weight * (target * np.log(sigmoid(x)) + (1 - target) * np.log(sigmoid(-x)))
        return reduce(losses.mean(axis=-1), reduction)

    return ([input], lambda x: F.multilabel_soft_margin_loss(x, target, weight=weight, reduction=reduction),
            lambda torch, x: torch.nn.functional.multilabel_soft_margin_loss(
                x, torch.from_numpy(target), weight=torch.from_numpy(weight), reduction=reduction),
            numpy_reference)


CASES = [ce_labels_weight_ignore_smoothing, ce_labels_ignore_in_range, ce_probabilities_weight_smoothing,
         ce_plain_extra_dims, nll, bce, bce_with_logits_pos_weight,
         elementwise_case("l1_loss", np.abs, 20),
         elementwise_case("smooth_l1_loss", smooth_l1_formula(1.0), 21),
         elementwise_case("smooth_l1_loss", smooth_l1_formula(0.5), 22, beta=0.5),
         elementwise_case("huber_loss", huber_formula(1.0), 23),
         elementwise_case("huber_loss", huber_formula(1.5), 24, delta=1.5),
         kl_div_case(False), kl_div_case(True),
         poisson_case(True, False), poisson_case(False, False), poisson_case(True, True),
         cosine_embedding, margin_ranking, triplet_case(2, False), triplet_case(1, True), triplet_case(3, False),
         hinge_embedding, multilabel_soft_margin]
PARAMETERS = [(case, reduction) for case in CASES for reduction in REDUCTIONS]
PARAMETERS += [(kl_div_case(False), "batchmean"), (kl_div_case(True), "batchmean")]
IDS = ["%s-%s" % (case.__name__, reduction) for case, reduction in PARAMETERS]


@pytest.mark.parametrize("case, reduction", PARAMETERS, ids=IDS)
def test_value_matches_numpy_and_gradcheck(case, reduction):
    arrays, ours, _, numpy_reference = case(reduction)
    inputs = [ag.Tensor(array, requires_grad=True) for array in arrays]
    loss = ours(*inputs)
    expected = np.asarray(numpy_reference(*arrays))
    assert loss.shape == expected.shape
    np.testing.assert_allclose(loss.data, expected, rtol=1e-10, atol=1e-12)
    assert ag.gradcheck(ours, tuple(inputs))


@pytest.mark.parametrize("case, reduction", PARAMETERS, ids=IDS)
def test_value_and_gradients_match_torch(case, reduction):
    torch = pytest.importorskip("torch")
    arrays, ours, theirs, _ = case(reduction)
    inputs = [ag.Tensor(array, requires_grad=True) for array in arrays]
    torch_inputs = [torch.tensor(array, requires_grad=True) for array in arrays]
    loss, torch_loss = ours(*inputs), theirs(torch, *torch_inputs)
    np.testing.assert_allclose(loss.data, torch_loss.detach().numpy(), rtol=1e-10, atol=1e-12)
    upstream = rng(99).standard_normal(loss.shape)
    (loss * ag.Tensor(upstream)).sum().backward()
    (torch_loss * torch.from_numpy(upstream)).sum().backward()
    for ours_input, torch_input in zip(inputs, torch_inputs):
        np.testing.assert_allclose(ours_input.grad.data, torch_input.grad.numpy(), rtol=1e-9, atol=1e-12)


# ---- Module forms ----------------------------------------------------------------------------
MODULES = [
    (nn.NLLLoss, dict(weight=np.array([1.0, 2.0, 0.5]), ignore_index=1), "nll_loss", "labels"),
    (nn.CrossEntropyLoss, dict(weight=np.array([1.0, 2.0, 0.5]), ignore_index=0, label_smoothing=0.1),
     "cross_entropy", "labels"),
    (nn.BCELoss, dict(weight=np.array([1.0, 2.0, 0.5])), "binary_cross_entropy", "probabilities"),
    (nn.BCEWithLogitsLoss, dict(pos_weight=np.array([1.0, 2.0, 0.5])), "binary_cross_entropy_with_logits",
     "probabilities"),
    (nn.L1Loss, {}, "l1_loss", "real"), (nn.SmoothL1Loss, dict(beta=0.5), "smooth_l1_loss", "real"),
    (nn.HuberLoss, dict(delta=0.7), "huber_loss", "real"),
    (nn.KLDivLoss, dict(log_target=True), "kl_div", "real"),
    (nn.PoissonNLLLoss, dict(full=True), "poisson_nll_loss", "counts"),
    (nn.HingeEmbeddingLoss, dict(margin=0.5), "hinge_embedding_loss", "signs"),
    (nn.MultiLabelSoftMarginLoss, dict(weight=np.array([1.0, 2.0, 0.5])), "multilabel_soft_margin_loss",
     "probabilities"),
]


def module_target(kind, random):
    return {"labels": random.integers(0, 3, size=4), "probabilities": random.uniform(size=(4, 3)),
            "real": random.standard_normal((4, 3)), "counts": random.poisson(2.0, size=(4, 3)).astype(np.float64),
            "signs": np.where(random.uniform(size=(4, 3)) < 0.5, 1.0, -1.0)}[kind]


@pytest.mark.parametrize("module, options, function, kind", MODULES, ids=[m[0].__name__ for m in MODULES])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_two_input_modules_match_functions_and_torch(module, options, function, kind, reduction):
    random = rng(30)
    input_array = random.uniform(0.1, 0.9, size=(4, 3)) if function == "binary_cross_entropy" \
        else random.standard_normal((4, 3))
    target = module_target(kind, random)
    layer = module(reduction=reduction, **options)
    assert isinstance(layer, nn.Module)
    loss = layer(ag.Tensor(input_array), target)
    expected = getattr(F, function)(ag.Tensor(input_array), target, reduction=reduction,
                                    **{k: v for k, v in options.items()})
    np.testing.assert_array_equal(loss.data, expected.data)
    try:
        import torch
    except ImportError:
        return
    torch_options = {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in options.items()}
    torch_layer = getattr(torch.nn, module.__name__)(reduction=reduction, **torch_options)
    np.testing.assert_allclose(loss.data, torch_layer(torch.from_numpy(input_array), torch.from_numpy(target)).numpy(),
                               rtol=1e-10, atol=1e-12)


def test_three_input_modules_match_torch_and_functions():
    random = rng(31)
    a, b, c = (random.standard_normal((5, 3)) for _ in range(3))
    labels = np.array([1.0, -1.0, 1.0, -1.0, 1.0])
    layers = [(nn.CosineEmbeddingLoss(margin=0.2), (a, b, labels), "CosineEmbeddingLoss", dict(margin=0.2)),
              (nn.MarginRankingLoss(margin=0.1, reduction="sum"), (a[:, 0], b[:, 0], labels), "MarginRankingLoss",
               dict(margin=0.1, reduction="sum")),
              (nn.TripletMarginLoss(margin=0.5, p=1, swap=True, reduction="none"), (a, b, c), "TripletMarginLoss",
               dict(margin=0.5, p=1, swap=True, reduction="none"))]
    expected = [F.cosine_embedding_loss(ag.Tensor(a), ag.Tensor(b), labels, margin=0.2),
                F.margin_ranking_loss(ag.Tensor(a[:, 0]), ag.Tensor(b[:, 0]), labels, margin=0.1, reduction="sum"),
                F.triplet_margin_loss(ag.Tensor(a), ag.Tensor(b), ag.Tensor(c), margin=0.5, p=1, swap=True,
                                      reduction="none")]
    for (layer, arrays, _, _), value in zip(layers, expected):
        inputs = [ag.Tensor(arrays[0]), ag.Tensor(arrays[1]),
                  arrays[2] if arrays[2] is labels else ag.Tensor(arrays[2])]
        np.testing.assert_array_equal(layer(*inputs).data, value.data)
    try:
        import torch
    except ImportError:
        return
    for (layer, arrays, name, options), value in zip(layers, expected):
        torch_value = getattr(torch.nn, name)(**options)(*(torch.from_numpy(array) for array in arrays))
        np.testing.assert_allclose(value.data, torch_value.numpy(), rtol=1e-10, atol=1e-12)


def test_weights_are_buffers_as_torchs_and_reprs():
    layer = nn.CrossEntropyLoss(weight=np.array([1.0, 2.0]), label_smoothing=0.1)
    assert list(layer.state_dict()) == ["weight"]
    assert list(nn.CrossEntropyLoss().state_dict()) == []
    assert list(nn.BCEWithLogitsLoss(pos_weight=np.ones(3)).state_dict()) == ["pos_weight"]
    assert repr(nn.KLDivLoss(reduction="batchmean")) == "KLDivLoss(reduction='batchmean')"
    # the earlier positional reduction still works
    logits, labels = ag.randn(3, 2), np.array([0, 1, 1])
    np.testing.assert_array_equal(nn.CrossEntropyLoss("sum")(logits, labels).data,
                                  F.cross_entropy(logits, labels, reduction="sum").data)
    np.testing.assert_array_equal(F.cross_entropy(logits, labels, "none").data,
                                  F.cross_entropy(logits, labels, reduction="none").data)


def test_cross_entropy_equals_nll_of_log_softmax_and_unbatched():
    random = rng(40)
    logits = ag.Tensor(random.standard_normal((4, 2, 5)))
    labels = random.integers(0, 5, size=(4, 2))
    np.testing.assert_allclose(F.cross_entropy(logits, labels, reduction="none").data,
                               F.nll_loss(F.log_softmax(logits, dim=-1), labels, reduction="none").data, rtol=1e-12)
    single = ag.Tensor(random.standard_normal(5))
    loss = F.cross_entropy(single, np.array(3))
    assert loss.shape == () and np.isclose(loss.data, -log_softmax(single.data)[3])


def test_everything_ignored_gives_nan_as_torch():
    with np.errstate(invalid="ignore", divide="ignore"):
        loss = F.cross_entropy(ag.randn(2, 3).astype(np.float64), np.array([-100, -100]), label_smoothing=0.1)
    assert np.isnan(loss.data)


def test_float32_stays_float32():
    logits = ag.Tensor(np.zeros((3, 4), dtype=np.float32), requires_grad=True)
    labels = np.array([0, 1, -100])
    loss = F.cross_entropy(logits, labels, weight=np.ones(4), label_smoothing=0.1)
    loss.backward()
    assert loss.dtype == np.float32 and logits.grad.dtype == np.float32
    for function, target in ((F.l1_loss, np.ones((3, 4))), (F.huber_loss, np.ones((3, 4))),
                             (F.binary_cross_entropy, np.ones((3, 4)) / 2)):
        probabilities = ag.Tensor(np.full((3, 4), 0.5, dtype=np.float32))
        assert function(probabilities, target).dtype == np.float32


# ---- bad input --------------------------------------------------------------------------------
def test_bad_input_errors_name_the_loss():
    logits = ag.randn(3, 4)
    with pytest.raises(ValueError, match=r"cross_entropy: label 7 out of range for 4 classes .*ignore_index=-100"):
        F.cross_entropy(logits, np.array([0, 7, -100]))
    with pytest.raises(ValueError, match=r"cross_entropy: label -1 out of range"):
        F.cross_entropy(logits, np.array([0, -1, 1]), ignore_index=3)
    with pytest.raises(ValueError, match=r"cross_entropy: weight must have shape \[C\] = \(4,\)"):
        F.cross_entropy(logits, np.array([0, 1, 1]), weight=np.ones(3))
    with pytest.raises(ValueError, match="cross_entropy: label_smoothing must be in"):
        F.cross_entropy(logits, np.array([0, 1, 1]), label_smoothing=1.5)
    with pytest.raises(ValueError, match=r"cross_entropy: logits have shape \(3, 4\) but labels have shape \(4,\)"):
        F.cross_entropy(logits, np.array([0, 1, 1, 2]))
    with pytest.raises(ValueError, match=r"nll_loss: label 4 out of range for 4 classes"):
        F.nll_loss(logits, np.array([0, 4, 1]))
    with pytest.raises(ValueError, match=r"nll_loss: input has shape \(3, 4\) but labels have shape \(3, 1\)"):
        F.nll_loss(logits, np.zeros((3, 1), dtype=np.int64))
    with pytest.raises(ValueError, match=r"binary_cross_entropy: input must hold probabilities in \[0, 1\], got 1.5"):
        F.binary_cross_entropy(ag.Tensor(np.array([0.5, 1.5])), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"binary_cross_entropy: input has shape \(2,\) but target has shape \(3,\)"):
        F.binary_cross_entropy(ag.Tensor(np.array([0.5, 0.5])), np.zeros(3))
    with pytest.raises(ValueError, match="binary_cross_entropy_with_logits: pos_weight of shape \\(5,\\) does not"):
        F.binary_cross_entropy_with_logits(logits, np.zeros((3, 4)), pos_weight=np.ones(5))
    for function in (F.l1_loss, F.smooth_l1_loss, F.huber_loss, F.kl_div, F.poisson_nll_loss,
                     F.multilabel_soft_margin_loss):
        with pytest.raises(ValueError, match=r"%s: input has shape \(3, 4\) but target has shape \(4,\)"
                           % function.__name__):
            function(logits, np.zeros(4))
        with pytest.raises(ValueError, match="%s: reduction must be one of" % function.__name__):
            function(logits, np.zeros((3, 4)), reduction="average")
    with pytest.raises(ValueError, match=r"cosine_embedding_loss: target has shape \(2,\); expected \(3,\)"):
        F.cosine_embedding_loss(logits, logits, np.ones(2))
    with pytest.raises(ValueError, match=r"triplet_margin_loss: anchor has shape \(3, 4\) but target has shape"):
        F.triplet_margin_loss(logits, logits, ag.randn(3, 5))
    with pytest.raises(ValueError, match=r"margin_ranking_loss: target has shape \(2,\)"):
        F.margin_ranking_loss(ag.randn(3), ag.randn(3), np.ones(2))
    with pytest.raises(ValueError, match=r"hinge_embedding_loss: target has shape"):
        F.hinge_embedding_loss(ag.randn(3), np.ones(2))
    with pytest.raises(ValueError, match="HuberLoss: delta must be > 0"):
        nn.HuberLoss(delta=0)
    with pytest.raises(ValueError, match="NLLLoss: reduction must be one of"):
        nn.NLLLoss(reduction="avg")
    with pytest.raises(ValueError, match="kl_div: reduction must be one of"):
        F.kl_div(logits, np.zeros((3, 4)), reduction="batch")
