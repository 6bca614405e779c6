"""Optimizers against updates computed by hand, state_dict round trips, clipping, StepLR."""
import math

import numpy as np
import pytest

import autograd_core as ag
import nn
from nn import optim


def parameter(values, dtype=np.float64):
    return nn.Parameter(np.array(values, dtype=dtype))


def set_grad(param, values):
    param.grad = ag.Tensor(np.array(values, dtype=param.dtype))


def run(optimizer, param, gradients):
    """One step per gradient; returns the parameter after each step."""
    history = []
    for gradient in gradients:
        set_grad(param, gradient)
        optimizer.step()
        history.append(param.data.copy())
    return history


# ---- SGD ------------------------------------------------------------------------------------
def test_sgd_plain_step():
    p = parameter([1.0, -2.0])
    history = run(optim.SGD([p], lr=0.1), p, [[0.5, 1.0], [0.5, 1.0]])
    np.testing.assert_allclose(history, [[0.95, -2.1], [0.9, -2.2]], rtol=1e-12)


def test_sgd_momentum_by_hand():
    p = parameter([1.0, -2.0])
    history = run(optim.SGD([p], lr=0.1, momentum=0.9), p, [[0.5, 1.0]] * 3)
    # buf: [0.5, 1], [0.95, 1.9], [1.355, 2.71]; p -= 0.1 * buf
    np.testing.assert_allclose(history, [[0.95, -2.1], [0.855, -2.29], [0.7195, -2.561]], rtol=1e-12)


def test_sgd_nesterov_by_hand():
    p = parameter([1.0, -2.0])
    history = run(optim.SGD([p], lr=0.1, momentum=0.9, nesterov=True), p, [[0.5, 1.0]] * 2)
    # update = g + 0.9 * buf: [0.95, 1.9], then [1.355, 2.71]
    np.testing.assert_allclose(history, [[0.905, -2.19], [0.7695, -2.461]], rtol=1e-12)


def test_sgd_weight_decay_and_dampening_by_hand():
    p = parameter([1.0, -2.0])
    history = run(optim.SGD([p], lr=0.1, weight_decay=0.5), p, [[0.5, 1.0]] * 2)
    # g + 0.5 p: [1.0, 0.0], then [0.95, 0.0]
    np.testing.assert_allclose(history, [[0.9, -2.0], [0.805, -2.0]], rtol=1e-12)
    q = parameter([1.0])
    history = run(optim.SGD([q], lr=0.1, momentum=0.5, dampening=0.5), q, [[2.0], [2.0]])
    # buf = 2, then 0.5 * 2 + 0.5 * 2 = 2
    np.testing.assert_allclose(history, [[0.8], [0.6]], rtol=1e-12)
    with pytest.raises(ValueError, match="nesterov momentum needs momentum > 0"):
        optim.SGD([q], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="lr must be >= 0"):
        optim.SGD([q], lr=-1.0)


def test_sgd_does_not_modify_the_gradient():
    p = parameter([1.0, 2.0])
    set_grad(p, [0.5, 0.5])
    optim.SGD([p], lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1).step()
    np.testing.assert_array_equal(p.grad.data, [0.5, 0.5])


# ---- Adam -----------------------------------------------------------------------------------
def adam_reference(p, gradients, lr, beta1, beta2, eps, weight_decay=0.0):
    """Scalar Adam written out from the paper's algorithm (with L2 weight decay)."""
    m = v = 0.0
    history = []
    for t, g in enumerate(gradients, start=1):
        g = g + weight_decay * p
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        m_hat = m / (1 - beta1 ** t)
        v_hat = v / (1 - beta2 ** t)
        p = p - lr * m_hat / (math.sqrt(v_hat) + eps)
        history.append(p)
    return history


def test_adam_by_hand():
    p = parameter([1.0])
    history = run(optim.Adam([p], lr=0.1), p, [[0.5], [-1.0], [2.0]])
    # step 1: m_hat = 0.5, v_hat = 0.25, so the step is exactly lr
    np.testing.assert_allclose(history[0], [1.0 - 0.1 * 0.5 / (0.5 + 1e-8)], rtol=1e-12)
    # step 2: m = -0.055, v = 0.00124975, bias corrections 0.19 and 0.001999
    step2 = 0.1 * (-0.055 / 0.19) / (math.sqrt(0.00124975 / 0.001999) + 1e-8)
    np.testing.assert_allclose(history[1], history[0] - step2, rtol=1e-12)
    expected = adam_reference(1.0, [0.5, -1.0, 2.0], 0.1, 0.9, 0.999, 1e-8)
    np.testing.assert_allclose(np.ravel(history), expected, rtol=1e-12)


def test_adam_weight_decay_and_betas():
    p = parameter([1.0, -3.0])
    gradients = [[0.5, 0.1], [-1.0, 0.2], [2.0, -0.3]]
    history = run(optim.Adam([p], lr=0.05, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1), p, gradients)
    for column, start in enumerate([1.0, -3.0]):
        expected = adam_reference(start, [g[column] for g in gradients], 0.05, 0.8, 0.99, 1e-6, 0.1)
        np.testing.assert_allclose([h[column] for h in history], expected, rtol=1e-12)
    with pytest.raises(ValueError, match="betas must be two numbers in \\[0, 1\\)"):
        optim.Adam([p], betas=(0.9, 1.0))


# ---- RMSprop --------------------------------------------------------------------------------
def test_rmsprop_by_hand():
    p = parameter([1.0])
    history = run(optim.RMSprop([p], lr=0.01), p, [[0.5], [-1.0]])
    # square_avg = 0.0025 -> step 0.01 * 0.5 / 0.05 = 0.1
    first = 1.0 - 0.01 * 0.5 / (0.05 + 1e-8)
    np.testing.assert_allclose(history[0], [first], rtol=1e-12)
    square_avg = 0.99 * 0.0025 + 0.01 * 1.0
    np.testing.assert_allclose(history[1], [first + 0.01 / (math.sqrt(square_avg) + 1e-8)], rtol=1e-12)


def test_rmsprop_momentum_and_centered_by_hand():
    p = parameter([1.0])
    history = run(optim.RMSprop([p], lr=0.01, alpha=0.9, momentum=0.5), p, [[1.0], [1.0]])
    v1 = 0.1
    buf1 = 1.0 / (math.sqrt(v1) + 1e-8)
    v2 = 0.9 * v1 + 0.1
    buf2 = 0.5 * buf1 + 1.0 / (math.sqrt(v2) + 1e-8)
    np.testing.assert_allclose(np.ravel(history), [1 - 0.01 * buf1, 1 - 0.01 * (buf1 + buf2)], rtol=1e-12)

    q = parameter([1.0])
    history = run(optim.RMSprop([q], lr=0.01, alpha=0.9, centered=True), q, [[1.0], [-1.0]])
    # centered: v - mean_g^2. step 1: 0.1 - 0.01 = 0.09; step 2: v = 0.19, mean_g = -0.01
    first = 1 - 0.01 * 1.0 / (math.sqrt(0.09) + 1e-8)
    second = first + 0.01 * 1.0 / (math.sqrt(0.19 - 0.0001) + 1e-8)
    np.testing.assert_allclose(np.ravel(history), [first, second], rtol=1e-12)


# ---- shared behaviour ---------------------------------------------------------------------
@pytest.mark.parametrize("make", [
    lambda params: optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=0.01),
    lambda params: optim.Adam(params, lr=0.01, weight_decay=0.01),
    lambda params: optim.RMSprop(params, lr=0.01, momentum=0.9, centered=True),
], ids=["SGD", "Adam", "RMSprop"])
def test_float32_in_place_and_skipping(make):
    with_grad = parameter(np.ones((3, 2)), dtype=np.float32)
    without_grad = parameter(np.ones(2), dtype=np.float32)
    optimizer = make([with_grad, without_grad])
    array = with_grad.data
    for _ in range(2):
        set_grad(with_grad, np.full((3, 2), 0.5))
        optimizer.step()
    assert with_grad.data is array and array.dtype == np.float32
    assert np.all(array < 1.0)
    np.testing.assert_array_equal(without_grad.data, [1.0, 1.0])
    assert all(value.dtype == np.float32 for key, value in optimizer.flat_state_dict().items()
               if key.startswith("state.") and not key.endswith(".step"))
    assert not any(key.startswith("state.1.") for key in optimizer.flat_state_dict())
    assert list(optimizer.state_dict()["state"]) == [0]
    optimizer.zero_grad()
    assert with_grad.grad is None


def test_zero_grad_in_place_and_real_backward():
    model = nn.Linear(3, 2)
    optimizer = optim.SGD(model.parameters(), lr=0.5)
    x = ag.randn(4, 3)
    before = model.weight.data.copy()
    (model(x) ** 2).sum().backward()
    gradient = model.weight.grad.data.copy()
    optimizer.step()
    np.testing.assert_allclose(model.weight.data, before - 0.5 * gradient, rtol=1e-6)
    optimizer.zero_grad(set_to_none=False)
    assert np.all(model.weight.grad.data == 0)


def test_parameter_groups_have_their_own_lr():
    a, b = parameter([1.0]), parameter([1.0])
    optimizer = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
    set_grad(a, [1.0])
    set_grad(b, [1.0])
    optimizer.step()
    np.testing.assert_allclose([a.data[0], b.data[0]], [0.9, 0.5])
    with pytest.raises(ValueError, match="unknown options \\['learning_rate'\\]"):
        optim.SGD([{"params": [a], "learning_rate": 1.0}], lr=0.1)
    with pytest.raises(ValueError, match="more than one place"):
        optim.SGD([a, a], lr=0.1)
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="wrap it in a list"):
        optim.SGD(a, lr=0.1)


# ---- checkpoints ------------------------------------------------------------------------------
@pytest.mark.parametrize("make", [
    lambda params: optim.SGD(params, lr=0.1, momentum=0.9),
    lambda params: optim.Adam(params, lr=0.01),
    lambda params: optim.RMSprop(params, lr=0.01, momentum=0.5),
], ids=["SGD", "Adam", "RMSprop"])
def test_state_dict_round_trip_through_npz(make, tmp_path):
    gradients = [np.array([[0.5, -1.0], [0.25, 2.0]]), np.array([[1.0, 0.5], [-0.5, 0.1]]),
                 np.array([[0.3, 0.3], [0.2, -0.7]])]
    original = parameter([[1.0, 2.0], [3.0, 4.0]])
    optimizer = make([original])
    run(optimizer, original, gradients[:2])
    np.savez(tmp_path / "optimizer.npz", **optimizer.flat_state_dict())

    restored = parameter(original.data.copy())
    resumed = make([restored])
    resumed.param_groups[0]["lr"] = 123.0  # overwritten by the checkpoint
    with np.load(tmp_path / "optimizer.npz") as archive:
        resumed.load_state_dict(dict(archive))
    assert resumed.param_groups[0]["lr"] == optimizer.param_groups[0]["lr"]
    run(optimizer, original, gradients[2:])
    run(resumed, restored, gradients[2:])
    np.testing.assert_array_equal(restored.data, original.data)


def test_adam_state_dict_contents_and_errors():
    p = parameter([1.0, 2.0])
    optimizer = optim.Adam([p], lr=0.1, betas=(0.8, 0.9))
    run(optimizer, p, [[1.0, 1.0], [1.0, 1.0]])
    state = optimizer.flat_state_dict()
    assert set(state) == {"group.0.lr", "group.0.betas", "group.0.eps", "group.0.weight_decay",
                          "group.0.amsgrad", "group.0.decoupled_weight_decay",
                          "state.0.exp_avg", "state.0.exp_avg_sq", "state.0.step"}
    assert int(state["state.0.step"]) == 2
    np.testing.assert_allclose(state["group.0.betas"], [0.8, 0.9])
    np.testing.assert_allclose(state["state.0.exp_avg"], [0.36, 0.36])  # 0.2, then 0.8*0.2 + 0.2
    bad = dict(state, **{"state.0.exp_avg": np.zeros(3)})
    with pytest.raises(ValueError, match=r"'state.0.exp_avg' has shape \(3,\) but parameter 0 has shape \(2,\)"):
        optimizer.load_state_dict(bad)
    with pytest.raises(ValueError, match="unexpected key 'state.0.velocity'"):
        optimizer.load_state_dict(dict(state, **{"state.0.velocity": np.zeros(2)}))
    with pytest.raises(ValueError, match="names parameter 5"):
        optimizer.load_state_dict(dict(state, **{"state.5.exp_avg": np.zeros(2)}))
    # the failed loads changed nothing
    np.testing.assert_allclose(optimizer.flat_state_dict()["state.0.exp_avg"], [0.36, 0.36])


# ---- clipping and schedules ---------------------------------------------------------------------
def test_clip_grad_norm():
    a, b, c = parameter([0.0, 0.0]), parameter([0.0]), parameter([0.0])
    set_grad(a, [3.0, 4.0])
    set_grad(b, [12.0])
    total = optim.clip_grad_norm_([a, b, c], max_norm=6.5)
    assert total == pytest.approx(13.0)
    np.testing.assert_allclose(np.concatenate([a.grad.data, b.grad.data]), [1.5, 2.0, 6.0], rtol=1e-6)
    # under the limit: unchanged, norm still reported
    assert optim.clip_grad_norm_([a, b], max_norm=100.0) == pytest.approx(6.5, rel=1e-6)
    np.testing.assert_allclose(a.grad.data, [1.5, 2.0], rtol=1e-6)
    assert optim.clip_grad_norm_([a, b], max_norm=3.0, norm_type=float("inf")) == pytest.approx(6.0, rel=1e-6)
    np.testing.assert_allclose(b.grad.data, [3.0], rtol=1e-6)
    assert optim.clip_grad_norm_([c], 1.0) == 0.0


def test_clip_grad_norm_float32_in_place():
    model = nn.Linear(4, 3)
    (model(ag.randn(5, 4)) * 100).sum().backward()
    grads = [p.grad.data for p in model.parameters()]
    expected = math.sqrt(sum(float(np.sum(g.astype(np.float64) ** 2)) for g in grads))
    total = optim.clip_grad_norm_(model.parameters(), 1.0)
    assert total == pytest.approx(expected, rel=1e-6)
    clipped = math.sqrt(sum(float(np.sum(p.grad.data.astype(np.float64) ** 2)) for p in model.parameters()))
    assert clipped == pytest.approx(1.0, rel=1e-4)
    assert all(p.grad.data is g and g.dtype == np.float32 for p, g in zip(model.parameters(), grads))


def test_step_lr():
    p = parameter([1.0])
    optimizer = optim.SGD([{"params": [p]}, {"params": [parameter([0.0])], "lr": 0.2}], lr=1.0)
    scheduler = optim.StepLR(optimizer, step_size=2, gamma=0.5)
    seen = []
    for _ in range(5):
        seen.append(scheduler.get_last_lr())
        scheduler.step()
    assert seen == [[1.0, 0.2], [1.0, 0.2], [0.5, 0.1], [0.5, 0.1], [0.25, 0.05]]
    state = scheduler.state_dict()
    other_optimizer = optim.SGD([{"params": [parameter([0.0])]}, {"params": [parameter([0.0])]}], lr=9.0)
    other = optim.StepLR(other_optimizer, step_size=7)
    # as torch's: the learning rates come back with the optimizer's state, the schedule with the scheduler's
    other_optimizer.load_state_dict(optimizer.state_dict())
    other.load_state_dict(state)
    other.step()
    assert other.last_epoch == 6 and other.get_last_lr() == [0.125, 0.025]
    with pytest.raises(ValueError, match="2 learning rates for an optimizer with 1 group"):
        optim.StepLR(optim.SGD([p], lr=1.0), step_size=1).load_state_dict(state)
    with pytest.raises(ValueError, match="step_size must be a positive int"):
        optim.StepLR(optimizer, step_size=0)


def test_matches_pytorch_when_available():
    torch = pytest.importorskip("torch")
    generator = np.random.default_rng(3)
    start = generator.standard_normal((4, 3))
    gradients = [generator.standard_normal((4, 3)) for _ in range(4)]
    configurations = [
        (optim.SGD, torch.optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
        (optim.Adam, torch.optim.Adam, dict(lr=0.01, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1)),
        (optim.RMSprop, torch.optim.RMSprop, dict(lr=0.01, alpha=0.9, momentum=0.5, centered=True)),
    ]
    for ours_class, theirs_class, options in configurations:
        ours = parameter(start)
        theirs = torch.nn.Parameter(torch.tensor(start))
        ours_optimizer, theirs_optimizer = ours_class([ours], **options), theirs_class([theirs], **options)
        for gradient in gradients:
            set_grad(ours, gradient)
            ours_optimizer.step()
            theirs.grad = torch.tensor(gradient)
            theirs_optimizer.step()
        np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-10, atol=1e-12,
                                   err_msg=ours_class.__name__)


@pytest.mark.parametrize("make", [
    lambda params: optim.SGD(params, lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01),
    lambda params: optim.Adam(params, lr=0.01, weight_decay=0.01),
    lambda params: optim.RMSprop(params, lr=0.01, momentum=0.9, centered=True, weight_decay=0.01),
], ids=["SGD", "Adam", "RMSprop"])
def test_chunked_and_strided_parameters_match_small_ones(make):
    """step() updates large parameters chunk by chunk and strided ones whole: both must
    give exactly the updates that a small parameter gets, element by element."""
    size = 2 * optim._CHUNK + 7
    generator = np.random.default_rng(0)
    start = generator.standard_normal(size)
    gradients = [generator.standard_normal(size) for _ in range(3)]
    large = parameter(start)
    strided = nn.Parameter(np.zeros((2, size))[0, ::1].reshape(1, size)[:, ::-1])  # a reversed view
    strided.data[...] = start[None, :]
    assert not strided.data.flags.c_contiguous
    picks = [0, 1, optim._CHUNK - 1, optim._CHUNK, size - 1]
    smalls = [parameter([start[i]]) for i in picks]
    optimizers = [make([large]), make([strided])] + [make([s]) for s in smalls]
    for gradient in gradients:
        set_grad(large, gradient)
        set_grad(strided, gradient[None, :])
        for small, i in zip(smalls, picks):
            set_grad(small, [gradient[i]])
        for optimizer in optimizers:
            optimizer.step()
    np.testing.assert_array_equal(large.data[picks], [s.data[0] for s in smalls])
    np.testing.assert_array_equal(strided.data[0], large.data)
