"""Second derivatives of the fused ops and nn Functions that take them through a
``composite`` (the op rewritten with registered ops) or a ``differentiable_backward``:
layer/batch/instance/group/local-response norms, the recurrent steps, the decompositions,
the fused losses, dropout, the embedding lookup and the recurrent layers.

gradgradcheck alone cannot catch a composite that computes a different function from the
fused op: the first derivative it differentiates is the composite's own. So every
composite is also checked to give, with create_graph=True, the fused backward's first
derivative. Where torch is installed, second derivatives are compared with
torch.autograd.grad(create_graph=True)."""
import numpy as np
import pytest

import autograd_core as ag
from autograd_core import Tensor, gradgradcheck, registry

from op_table import TABLE

OPS = registry.ops()

try:
    import torch
except ImportError:  # the comparisons with torch skip
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed")

# registry ops whose create_graph path is a composite (a second implementation of the op)
COMPOSITE_OPS = ("layer_norm", "batch_norm", "instance_norm", "group_norm", "local_response_norm", "lstm_step",
                 "gru_step", "rnn_step", "input_projection")


def _tensors(args):
    return tuple(Tensor(a.astype(np.float64) if a.dtype.kind == "f" else a, requires_grad=a.dtype.kind == "f")
                 if isinstance(a, np.ndarray) else a for a in args)


def _call(name, args, kwargs):
    entry, function = TABLE[name], OPS[name].function
    return entry.call(function, *args, **kwargs) if entry.call else function(*args, **kwargs)


def _first_derivatives(fn, inputs, create_graph):
    outputs = fn(*inputs)
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    outputs = [o for o in outputs if isinstance(o, Tensor) and o.requires_grad]
    rng = np.random.default_rng(3)
    weights = [Tensor(rng.standard_normal(o.shape)) for o in outputs]
    wanted = [x for x in inputs if isinstance(x, Tensor) and x.requires_grad]
    found = ag.grad(outputs, wanted, weights, create_graph=create_graph, allow_unused=True)
    return [None if g is None else g.data for g in found]


def _composite_cases():
    rng = np.random.default_rng(0)
    return [pytest.param(name, sample, id="%s-%d" % (name, index))
            for name in COMPOSITE_OPS for index, sample in enumerate(TABLE[name].samples(rng))]


@pytest.mark.parametrize("name, sample", _composite_cases())
def test_composite_gives_the_fused_first_derivative(name, sample):
    fn = lambda *xs: _call(name, xs, sample.kwargs)
    inputs = _tensors(sample.args)
    fused = _first_derivatives(fn, inputs, create_graph=False)
    composite = _first_derivatives(fn, inputs, create_graph=True)
    for a, b in zip(fused, composite):
        if a is None:
            assert b is None or not np.any(b)
            continue
        np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-10)


# ---- the nn Functions (fused losses, dropout, embedding): gradgradcheck, and the
# create_graph first derivative equal to the fused one ------------------------------------
def _nn_cases():
    import nn
    from nn import functional as F
    rng = np.random.default_rng(1)
    logits = rng.standard_normal((4, 5))
    labels = np.array([0, 3, 1, 4])
    probabilities = rng.dirichlet(np.ones(5), size=4)
    grid = rng.standard_normal((2, 3, 5))
    grid_labels = rng.integers(0, 5, (2, 3))
    class_weight = rng.uniform(0.5, 2.0, 5)
    binary_logits = rng.standard_normal((3, 4))
    binary_target = rng.uniform(0.1, 0.9, (3, 4))
    probs = rng.uniform(0.1, 0.9, (3, 4))
    weight = rng.uniform(0.5, 1.5, (3, 4))
    pos_weight = rng.uniform(0.5, 2.0, 4)
    cases = {
        "cross_entropy-labels": (lambda x: F.cross_entropy(x, labels), (logits,)),
        "cross_entropy-sum-3d": (lambda x: F.cross_entropy(x, grid_labels, reduction="sum"), (grid,)),
        "cross_entropy-none": (lambda x: F.cross_entropy(x, labels, reduction="none"), (logits,)),
        "cross_entropy-weight-ignore-smoothing": (
            lambda x: F.cross_entropy(x, np.array([0, 3, -100, 4]), weight=class_weight, label_smoothing=0.2),
            (logits,)),
        "cross_entropy-probabilities": (lambda x, t: F.cross_entropy(x, t, label_smoothing=0.1),
                                        (logits, probabilities)),
        "nll_loss": (lambda x: F.nll_loss(x, labels, weight=class_weight), (logits,)),
        "nll_loss-none-3d": (lambda x: F.nll_loss(x, grid_labels, reduction="none"), (grid,)),
        "bce_with_logits": (lambda x, t: F.binary_cross_entropy_with_logits(x, t), (binary_logits, binary_target)),
        "bce_with_logits-weights": (
            lambda x: F.binary_cross_entropy_with_logits(x, binary_target, weight=weight, pos_weight=pos_weight,
                                                         reduction="sum"), (binary_logits,)),
        "bce": (lambda x, t: F.binary_cross_entropy(x, t, weight=weight), (probs, binary_target)),
        "mse_loss": (lambda x, t: F.mse_loss(x, t), (binary_logits, binary_target)),
        "mse_loss-none": (lambda x: F.mse_loss(x, binary_target, reduction="none"), (binary_logits,)),
        "gaussian_kl": (lambda m, v: F.gaussian_kl(m, v), (binary_logits, binary_target)),
        "dropout": (lambda x: F.dropout(x * x, 0.5, generator=np.random.default_rng(5)), (binary_logits,)),
        # the lookup of rows [0, 2, 5], [2, 1, 1] with row 2 the padding row (no gradient)
        "embedding": (lambda w: nn.recurrent._EmbeddingLookup.apply(w * w, np.array([[0, 2, 5], [2, 1, 1]]), 2),
                      (rng.standard_normal((6, 3)),)),
    }
    return cases


NN_CASES = _nn_cases()


@pytest.mark.parametrize("name", sorted(NN_CASES))
def test_nn_function_gradgradcheck(name):
    fn, arrays = NN_CASES[name]
    assert gradgradcheck(fn, tuple(Tensor(a, requires_grad=True) for a in arrays))


@pytest.mark.parametrize("name", sorted(NN_CASES))
def test_nn_function_composite_gives_the_fused_first_derivative(name):
    fn, arrays = NN_CASES[name]
    inputs = tuple(Tensor(a, requires_grad=True) for a in arrays)
    fused = _first_derivatives(fn, inputs, create_graph=False)
    composite = _first_derivatives(fn, inputs, create_graph=True)
    for a, b in zip(fused, composite):
        np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-12)


# ---- against torch ----------------------------------------------------------------------
def _torch(array):
    return torch.tensor(array, dtype=torch.float64, requires_grad=True)


@needs_torch
def test_hessian_of_an_mlp_cross_entropy_loss_matches_torch():
    from nn import functional as F
    rng = np.random.default_rng(2)
    x = rng.standard_normal((5, 3))
    labels = np.array([0, 2, 1, 1, 0])
    first, bias = rng.standard_normal((4, 3)) * 0.7, rng.standard_normal(4) * 0.1
    second = rng.standard_normal((3, 4)) * 0.7

    def loss(w1, b1, w2):
        return F.cross_entropy(ag.tanh(Tensor(x) @ w1.T + b1) @ w2.T, labels)

    ours = ag.func.hessian(loss, (Tensor(first), Tensor(bias), Tensor(second)))

    def torch_loss(w1, b1, w2):
        logits = torch.tanh(torch.tensor(x) @ w1.T + b1) @ w2.T
        return torch.nn.functional.cross_entropy(logits, torch.tensor(labels))

    theirs = torch.autograd.functional.hessian(torch_loss, (torch.tensor(first), torch.tensor(bias),
                                                            torch.tensor(second)))
    for i in range(3):
        for j in range(3):
            np.testing.assert_allclose(ours[i][j].data, theirs[i][j].numpy(), rtol=1e-7, atol=1e-10)


@needs_torch
@pytest.mark.parametrize("with_state", [False, True])
def test_double_backward_through_an_lstm_layer_matches_torch(with_state):
    """A gradient penalty through nn.LSTM (one LSTMSequence node per layer): the norm of
    d(loss)/d(input), differentiated with respect to every weight and the input."""
    import nn
    rng = np.random.default_rng(4)
    ours = nn.LSTM(3, 4, num_layers=2, dtype=np.float64)
    theirs = torch.nn.LSTM(3, 4, num_layers=2, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        for name, parameter in theirs.named_parameters():
            parameter.copy_(torch.tensor(getattr(ours, name).data))
    x = rng.standard_normal((2, 5, 3))
    state = (rng.standard_normal((2, 2, 4)), rng.standard_normal((2, 2, 4))) if with_state else None

    def penalty(module, inputs, hx, grad_of, square):
        outputs, (h, c) = module(inputs, hx)
        loss = (outputs * outputs).sum() + (h * c).sum()
        (gradient,) = grad_of(loss, inputs)
        return square(gradient)

    inputs = Tensor(x, requires_grad=True)
    hx = None if state is None else tuple(Tensor(s, requires_grad=True) for s in state)
    value = penalty(ours, inputs, hx, lambda out, x: ag.grad(out, [x], create_graph=True),
                    lambda g: (g * g).sum())
    names = [name for name, _ in theirs.named_parameters()]
    wanted = [inputs] + [getattr(ours, name) for name in names] + list(hx or [])
    found = ag.grad(value, wanted)

    torch_inputs = _torch(x)
    torch_hx = None if state is None else tuple(_torch(s) for s in state)
    torch_value = penalty(theirs, torch_inputs, torch_hx,
                          lambda out, x: torch.autograd.grad(out, [x], create_graph=True),
                          lambda g: (g * g).sum())
    expected = torch.autograd.grad(torch_value, [torch_inputs] + list(theirs.parameters()) + list(torch_hx or []))
    np.testing.assert_allclose(value.item(), torch_value.item(), rtol=1e-10)
    for ours_grad, torch_grad in zip(found, expected):
        np.testing.assert_allclose(ours_grad.data, torch_grad.numpy(), rtol=1e-7, atol=1e-10)


@needs_torch
@pytest.mark.parametrize("mode", ["GRU", "RNN"])
def test_double_backward_through_gru_and_rnn_layers_matches_torch(mode):
    import nn
    rng = np.random.default_rng(6)
    ours = getattr(nn, mode)(3, 4, dtype=np.float64)
    theirs = getattr(torch.nn, mode)(3, 4, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        for name, parameter in theirs.named_parameters():
            parameter.copy_(torch.tensor(getattr(ours, name).data))
    x = rng.standard_normal((2, 4, 3))
    inputs = Tensor(x, requires_grad=True)
    outputs, _ = ours(inputs)
    (gradient,) = ag.grad((outputs * outputs * outputs).sum(), [inputs], create_graph=True)
    names = [name for name, _ in theirs.named_parameters()]
    found = ag.grad((gradient * gradient).sum(), [getattr(ours, name) for name in names])
    torch_inputs = _torch(x)
    torch_outputs, _ = theirs(torch_inputs)
    (torch_gradient,) = torch.autograd.grad((torch_outputs ** 3).sum(), [torch_inputs], create_graph=True)
    expected = torch.autograd.grad((torch_gradient ** 2).sum(), list(theirs.parameters()))
    for ours_grad, torch_grad in zip(found, expected):
        np.testing.assert_allclose(ours_grad.data, torch_grad.numpy(), rtol=1e-7, atol=1e-10)


def test_lstm_with_lengths_is_once_differentiable_and_says_so():
    """The step-by-step LSTM path (lengths) takes the weights as constants: its gradient
    is right, and differentiating it raises naming the step instead of a silent zero."""
    import nn
    rng = np.random.default_rng(7)
    layer = nn.LSTM(3, 4, dtype=np.float64)
    inputs = Tensor(rng.standard_normal((2, 5, 3)), requires_grad=True)
    outputs, _ = layer(inputs, lengths=[5, 3])
    (gradient,) = ag.grad((outputs * outputs).sum(), [inputs], create_graph=True)
    plain = ag.grad((layer(inputs, lengths=[5, 3])[0] ** 2).sum(), [inputs])[0]
    np.testing.assert_allclose(gradient.data, plain.data, rtol=1e-12)
    with pytest.raises(RuntimeError, match="nn.LSTM's"):
        ag.grad((gradient * gradient).sum(), [layer.weight_hh_l0])


# decompositions: the Hessian-vector product d/dA <grad f(A), V> against torch's, on
# well-conditioned matrices (gauge-free functions of the factors)
def _spd(rng, n):
    a = rng.standard_normal((n, n))
    return a @ a.T + n * np.eye(n)


def _decomposition_cases():
    rng = np.random.default_rng(8)
    square = rng.uniform(-0.5, 0.5, (2, 3, 3)) + 4 * np.eye(3)
    tall = rng.standard_normal((4, 3))
    return {
        "inv": (lambda L, a: (L.linalg.inv(a) ** 2).sum(), square),
        "det": (lambda L, a: (L.linalg.det(a) ** 2).sum(), square),
        "slogdet": (lambda L, a: (L.linalg.slogdet(a)[1] ** 2).sum(), square),
        "solve": (lambda L, a: (L.linalg.solve(a, a[..., :1] * 2 + 1) ** 2).sum(), square),
        "cholesky": (lambda L, a: (L.linalg.cholesky(a @ a.swapaxes(-1, -2)) ** 2).sum(), square),
        "qr": (lambda L, a: (L.linalg.qr(a)[1].abs() * L.linalg.qr(a)[1].abs()).sum()
               + (L.linalg.qr(a)[0] @ L.linalg.qr(a)[0].swapaxes(-1, -2) ** 2).sum(), tall),
        "eigh": (lambda L, a: (L.linalg.eigh(a + a.swapaxes(-1, -2))[0] ** 3).sum(), _spd(rng, 4)),
        "eigh-vectors": (lambda L, a: (L.linalg.eigh(a + a.swapaxes(-1, -2))[1] ** 4).sum(), _spd(rng, 3)),
        "svd": (lambda L, a: (L.linalg.svd(a, full_matrices=False)[0] ** 4).sum()
                + (L.linalg.svd(a, full_matrices=False)[1] ** 3).sum(), tall),
        "svdvals": (lambda L, a: (L.linalg.svdvals(a) ** 3).sum(), tall),
        "matrix_norm-nuc": (lambda L, a: L.linalg.matrix_norm(a, "nuc") ** 2, tall),
        "vector_norm-3": (lambda L, a: L.linalg.vector_norm(a, 3) ** 2, tall),
    }


DECOMPOSITIONS = _decomposition_cases()


@needs_torch
@pytest.mark.parametrize("name", sorted(DECOMPOSITIONS))
def test_decomposition_second_derivative_matches_torch(name):
    fn, matrix = DECOMPOSITIONS[name]
    direction = np.random.default_rng(9).standard_normal(matrix.shape)
    a = Tensor(matrix, requires_grad=True)
    (gradient,) = ag.grad(fn(ag, a), [a], create_graph=True)
    (ours,) = ag.grad((gradient * Tensor(direction)).sum(), [a])
    torch_a = _torch(matrix)
    (torch_gradient,) = torch.autograd.grad(fn(torch, torch_a), [torch_a], create_graph=True)
    (theirs,) = torch.autograd.grad((torch_gradient * torch.tensor(direction)).sum(), [torch_a])
    np.testing.assert_allclose(gradient.data, torch_gradient.detach().numpy(), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(ours.data, theirs.numpy(), rtol=1e-6, atol=1e-9)


def test_det_create_graph_of_a_singular_matrix_raises_naming_det():
    """det's first derivative exists at a singular matrix (the cofactors), but its
    differentiable form det(A) A^-T does not: create_graph says so instead of giving inf."""
    a = Tensor(np.array([[1.0, 2.0], [2.0, 4.0]]), requires_grad=True)
    np.testing.assert_allclose(ag.grad(ag.linalg.det(a), [a])[0].data, [[4.0, -2.0], [-2.0, 1.0]])
    with pytest.raises(RuntimeError, match="linalg.det: the second derivative of det needs an invertible matrix"):
        ag.grad(ag.linalg.det(a), [a], create_graph=True)
