"""Every optimizer of nn.optim against torch.optim for 20 steps on a small problem (two
parameter groups with their own options), against numpy written here for a few, state
dict round trips (ours and torch's structure, npz) and bad input."""
import math

import numpy as np
import pytest

import nn
from nn import optim

STEPS = 20
SHAPES = [(3, 4), (4,), (2,)]


def _gradient(values, step, index):
    """The gradient of a small quadratic problem plus a step-dependent push, as numpy:
    computed from each side's own parameters, so the two runs must track each other."""
    target = np.linspace(-1.0, 1.0, values.size).reshape(values.shape)
    return 2.0 * (values - target) + 0.3 * np.sin(step + index + np.arange(values.size)).reshape(values.shape)


def _starts():
    rng = np.random.default_rng(11)
    return [rng.standard_normal(shape) for shape in SHAPES]


def _groups(params, group_options):
    """First parameter in group 0 (defaults), the rest in group 1 with ``group_options``."""
    if group_options is None:
        return params
    return [{"params": params[:1]}, dict(group_options, params=params[1:])]


def run_ours(name, options, group_options=None, steps=STEPS, dtype=np.float64):
    params = [nn.Parameter(start.astype(dtype)) for start in _starts()]
    optimizer = getattr(optim, name)(_groups(params, group_options), **options)
    for step in range(steps):
        for index, param in enumerate(params):
            param.grad = _gradient(param.data.astype(np.float64), step, index).astype(dtype)
        optimizer.step()
    return [param.data.copy() for param in params], optimizer


def run_torch(torch, name, options, group_options=None, steps=STEPS):
    params = [torch.nn.Parameter(torch.tensor(start)) for start in _starts()]
    optimizer = getattr(torch.optim, name)(_groups(params, group_options), **options)
    for step in range(steps):
        for index, param in enumerate(params):
            param.grad = torch.tensor(_gradient(param.detach().numpy(), step, index))
        optimizer.step()
    return [param.detach().numpy().copy() for param in params], optimizer


OPTIMIZERS = [
    ("SGD", dict(lr=0.05), dict(lr=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01), dict(weight_decay=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.01), dict(lr=0.02, momentum=0.5)),
    ("Adam", dict(lr=0.05, weight_decay=0.01), dict(lr=0.1, betas=(0.8, 0.9))),
    ("Adam", dict(lr=0.05, amsgrad=True, weight_decay=0.01), dict(lr=0.02)),
    ("Adam", dict(lr=0.05, decoupled_weight_decay=True, weight_decay=0.1), None),
    ("AdamW", dict(lr=0.05, weight_decay=0.1), dict(weight_decay=0.0, lr=0.1)),
    ("AdamW", dict(lr=0.05, weight_decay=0.1, amsgrad=True), dict(eps=1e-3)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, momentum=0.5, centered=True, weight_decay=0.01), dict(centered=False)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.01, initial_accumulator_value=0.1), dict(lr=0.3)),
    ("Adadelta", dict(lr=1.0, rho=0.8, weight_decay=0.01), dict(lr=0.5, eps=1e-4)),
    ("Adamax", dict(lr=0.05, weight_decay=0.01), dict(betas=(0.5, 0.9))),
    ("NAdam", dict(lr=0.05, weight_decay=0.01), dict(momentum_decay=0.01)),
    ("NAdam", dict(lr=0.05, weight_decay=0.1, decoupled_weight_decay=True), None),
    ("RAdam", dict(lr=0.05, weight_decay=0.01), dict(betas=(0.9, 0.9))),
    ("RAdam", dict(lr=0.05, weight_decay=0.1, decoupled_weight_decay=True), None),
]
IDS = ["%s-%d" % (case[0], index) for index, case in enumerate(OPTIMIZERS)]


@pytest.mark.parametrize("name, options, group_options", OPTIMIZERS, ids=IDS)
def test_matches_torch_for_20_steps(name, options, group_options):
    torch = pytest.importorskip("torch")
    ours, our_optimizer = run_ours(name, options, group_options)
    theirs, their_optimizer = run_torch(torch, name, options, group_options)
    for mine, wanted in zip(ours, theirs):
        np.testing.assert_allclose(mine, wanted, rtol=1e-6, atol=1e-6, err_msg=name)
    assert [g["lr"] for g in our_optimizer.param_groups] == [g["lr"] for g in their_optimizer.param_groups]


@pytest.mark.parametrize("name, options, group_options", OPTIMIZERS, ids=IDS)
def test_float32_parameters_stay_float32_and_close(name, options, group_options):
    ours64, _ = run_ours(name, options, group_options, steps=5)
    ours32, optimizer = run_ours(name, options, group_options, steps=5, dtype=np.float32)
    for single, double in zip(ours32, ours64):
        assert single.dtype == np.float32
        np.testing.assert_allclose(single, double, rtol=1e-4, atol=1e-4)
    assert all(value.dtype == np.float32 for state in optimizer.state.values()
               for value in state.values() if isinstance(value, np.ndarray))


@pytest.mark.parametrize("name, options, group_options", OPTIMIZERS, ids=IDS)
def test_loads_torchs_state_dict(name, options, group_options):
    """A torch optimizer's state_dict (tensors, float steps, its implementation flags)
    loads here, and the two continue identically."""
    torch = pytest.importorskip("torch")
    _, their_optimizer = run_torch(torch, name, options, group_options, steps=4)
    ours, our_optimizer = run_ours(name, options, group_options, steps=4)
    fresh = [nn.Parameter(values.copy()) for values in ours]
    other = getattr(optim, name)(_groups(fresh, group_options), **options)
    other.load_state_dict(their_optimizer.state_dict())
    ours_state, loaded_state = our_optimizer.state_dict(), other.state_dict()
    # to 1e-6, not bit for bit: the runs drift apart by rounding (torch keeps NAdam's
    # mu_product in float32, for one)
    assert ours_state["param_groups"] == loaded_state["param_groups"]
    for index, entries in ours_state["state"].items():
        for key, value in entries.items():
            np.testing.assert_allclose(loaded_state["state"][index][key], value, rtol=1e-6, atol=1e-9, err_msg=key)


# ---- state dict round trips -----------------------------------------------------------------------
def _continue(optimizer, params, steps=3):
    for step in range(steps):
        for index, param in enumerate(params):
            param.grad = _gradient(param.data, 100 + step, index)
        optimizer.step()
    return [param.data.copy() for param in params]


@pytest.mark.parametrize("name, options, group_options", OPTIMIZERS, ids=IDS)
@pytest.mark.parametrize("form", ["torch", "flat", "npz"])
def test_state_dict_round_trip(name, options, group_options, form, tmp_path):
    _, optimizer = run_ours(name, options, group_options, steps=4)
    owned = optimizer._all_params()
    restored = [nn.Parameter(param.data.copy()) for param in owned]
    other = getattr(optim, name)(_groups(restored, group_options), **options)
    other.param_groups[0]["lr"] = 123.0  # overwritten by the state dict
    if form == "torch":
        other.load_state_dict(optimizer.state_dict())
    elif form == "flat":
        other.load_state_dict(optimizer.flat_state_dict())
    else:
        np.savez(tmp_path / "optimizer.npz", **optimizer.flat_state_dict())
        with np.load(tmp_path / "optimizer.npz") as archive:
            other.load_state_dict(dict(archive))
    assert [g["lr"] for g in other.param_groups] == [g["lr"] for g in optimizer.param_groups]
    for mine, wanted in zip(_continue(other, restored), _continue(optimizer, owned)):
        np.testing.assert_array_equal(mine, wanted)


# ---- numpy references written here (run without torch) -------------------------------------------
def _one_parameter(name, gradients, start=(1.0, -2.0), **options):
    param = nn.Parameter(np.array(start))
    optimizer = getattr(optim, name)([param], **options)
    history = []
    for gradient in gradients:
        param.grad = np.array(gradient, dtype=np.float64)
        optimizer.step()
        history.append(param.data.copy())
    return history


def test_adamw_decays_before_the_adam_step_by_hand():
    lr, decay, beta1, beta2, eps = 0.1, 0.5, 0.9, 0.99, 1e-8
    p, g = np.array([1.0, -2.0]), np.array([0.5, 1.0])
    m = v = np.zeros(2)
    expected = []
    for t in (1, 2):
        p = p * (1 - lr * decay)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        p = p - lr / (1 - beta1 ** t) * m / (np.sqrt(v) / math.sqrt(1 - beta2 ** t) + eps)
        expected.append(p)
    got = _one_parameter("AdamW", [g, g], lr=lr, weight_decay=decay, betas=(beta1, beta2))
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_adagrad_and_adamax_by_hand():
    g1, g2 = np.array([0.5, 1.0]), np.array([-1.0, 2.0])
    # Adagrad: sum starts at 0.1; lr decays as lr / (1 + (t - 1) lr_decay)
    total = 0.1 + g1 ** 2
    p = np.array([1.0, -2.0]) - 0.5 * g1 / (np.sqrt(total) + 1e-10)
    total = total + g2 ** 2
    p = p - 0.5 / 1.2 * g2 / (np.sqrt(total) + 1e-10)
    got = _one_parameter("Adagrad", [g1, g2], lr=0.5, lr_decay=0.2, initial_accumulator_value=0.1)
    np.testing.assert_allclose(got[-1], p, rtol=1e-12)
    # Adamax: u = max(beta2 u, |g| + eps)
    m = 0.1 * g1
    u = np.abs(g1) + 1e-8
    p = np.array([1.0, -2.0]) - 0.2 / 0.1 * m / u
    m = 0.9 * m + 0.1 * g2
    u = np.maximum(0.999 * u, np.abs(g2) + 1e-8)
    p = p - 0.2 / (1 - 0.81) * m / u
    np.testing.assert_allclose(_one_parameter("Adamax", [g1, g2], lr=0.2)[-1], p, rtol=1e-12)


def test_radam_takes_momentum_steps_until_the_variance_is_tractable():
    """rho_t <= 5 for the first steps with beta2 = 0.999: plain bias-corrected momentum."""
    g = np.array([0.5, 1.0])
    got = _one_parameter("RAdam", [g, g], lr=0.1)
    m1 = 0.1 * g
    m2 = 0.9 * m1 + 0.1 * g
    p1 = np.array([1.0, -2.0]) - 0.1 * m1 / 0.1
    np.testing.assert_allclose(got, [p1, p1 - 0.1 * m2 / (1 - 0.81)], rtol=1e-12)


def test_adadelta_and_amsgrad_by_hand():
    g1, g2 = np.array([0.5, 1.0]), np.array([0.1, -0.2])
    v = 0.1 * g1 ** 2
    d = np.sqrt(1e-6) / np.sqrt(v + 1e-6) * g1
    u = 0.1 * d ** 2
    p = np.array([1.0, -2.0]) - d
    v = 0.9 * v + 0.1 * g2 ** 2
    d = np.sqrt(u + 1e-6) / np.sqrt(v + 1e-6) * g2
    np.testing.assert_allclose(_one_parameter("Adadelta", [g1, g2])[-1], p - d, rtol=1e-12)
    # amsgrad: the denominator keeps the largest second moment seen (g1's here)
    m, v = 0.1 * g1, 0.001 * g1 ** 2
    p = np.array([1.0, -2.0]) - 0.1 / 0.1 * m / (np.sqrt(v) / math.sqrt(0.001) + 1e-8)
    m, v_max = 0.9 * m + 0.1 * g2, np.maximum(v, 0.999 * v + 0.001 * g2 ** 2)
    p = p - 0.1 / 0.19 * m / (np.sqrt(v_max) / math.sqrt(1 - 0.999 ** 2) + 1e-8)
    np.testing.assert_allclose(_one_parameter("Adam", [g1, g2], lr=0.1, amsgrad=True)[-1], p, rtol=1e-12)


# ---- parameter groups ---------------------------------------------------------------------------
def test_param_groups_are_torchs():
    a, b, c = (nn.Parameter(np.zeros(2)) for _ in range(3))
    optimizer = optim.AdamW([{"params": [a], "weight_decay": 0.0}, {"params": [b]}], lr=0.01)
    assert [g["weight_decay"] for g in optimizer.param_groups] == [0.0, 0.01]
    assert optimizer.param_groups[0]["params"] == [a]
    optimizer.add_param_group({"params": c, "lr": 0.5})
    assert optimizer.param_groups[2]["lr"] == 0.5 and optimizer.param_groups[2]["betas"] == (0.9, 0.999)
    optimizer.param_groups[1]["lr"] = 2.0  # writable: the next step uses it
    for param in (a, b, c):
        param.grad = np.ones(2)
    optimizer.step()
    np.testing.assert_allclose(b.data, [-2.0, -2.0], rtol=1e-6)
    np.testing.assert_allclose(c.data, [-0.5, -0.5], rtol=1e-6)
    state = optimizer.state_dict()
    assert [g["params"] for g in state["param_groups"]] == [[0], [1], [2]]
    assert sorted(state["state"]) == [0, 1, 2] and state["state"][2]["step"] == 1


def test_sgd_fast_path_is_unchanged_by_groups():
    """One group or two with the same options: the same bits (one fused call per group)."""
    rng = np.random.default_rng(2)
    starts = [rng.standard_normal((30, 20)).astype(np.float32) for _ in range(2)]
    results = []
    for split in (False, True):
        params = [nn.Parameter(s.copy()) for s in starts]
        groups = [{"params": [params[0]]}, {"params": [params[1]]}] if split else params
        optimizer = optim.SGD(groups, lr=0.1, momentum=0.9, nesterov=True)
        for step in range(3):
            for param in params:
                param.grad = np.full(param.data.shape, 0.1 * step, dtype=np.float32)
            optimizer.step()
        results.append([p.data for p in params])
    for one, two in zip(*results):
        np.testing.assert_array_equal(one, two)


# ---- bad input ----------------------------------------------------------------------------------
def test_bad_input_names_the_optimizer():
    a, b = nn.Parameter(np.zeros(2)), nn.Parameter(np.zeros(2))
    for name in ("SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "Adamax", "NAdam", "RAdam"):
        with pytest.raises(ValueError, match=r"^%s: lr must be >= 0, got -0.1" % name):
            getattr(optim, name)([a], lr=-0.1)
        with pytest.raises(ValueError, match=r"^%s: parameter group 1: lr must be >= 0, got -1" % name):
            getattr(optim, name)([{"params": [a]}, {"params": [b], "lr": -1}], lr=0.1)
        with pytest.raises(TypeError, match=r"^%s: parameter group 1 must be a dict with a 'params' entry" % name):
            getattr(optim, name)([{"params": [a]}, {"lr": 0.1}], lr=0.1)
        with pytest.raises(ValueError, match=r"^%s: a parameter appears in more than one place .*groups 0 and 1"
                           % name):
            getattr(optim, name)([{"params": [a, b]}, {"params": [b]}], lr=0.1)
        with pytest.raises(TypeError, match="unexpected keyword argument 'learning_rate'"):
            getattr(optim, name)([a], learning_rate=0.1)
    optimizer = optim.Adam([a], lr=0.1)
    with pytest.raises(ValueError, match="Adam: parameter group 1: betas must be two numbers"):
        optimizer.add_param_group({"params": [b], "betas": (0.9, 1.5)})
    with pytest.raises(ValueError, match="Adam: a parameter appears in more than one place"):
        optimizer.add_param_group({"params": [a]})
    assert len(optimizer.param_groups) == 1
    with pytest.raises(ValueError, match="Adadelta: rho must be in"):
        optim.Adadelta([a], rho=1.5)


def test_bad_state_dicts_name_the_optimizer():
    a, b = nn.Parameter(np.zeros(2)), nn.Parameter(np.zeros(3))
    optimizer = optim.Adagrad([{"params": [a]}, {"params": [b]}])
    for param in (a, b):
        param.grad = np.ones(param.data.shape)
    optimizer.step()
    state = optimizer.state_dict()
    other = optim.Adagrad([a, b])
    with pytest.raises(ValueError, match="Adagrad.load_state_dict: the state dict has 2 parameter group"):
        other.load_state_dict(state)
    swapped = optim.Adagrad([{"params": [a, b]}, {"params": [nn.Parameter(np.zeros(1))]}])
    with pytest.raises(ValueError, match="Adagrad.load_state_dict: parameter group 0 has 1 parameter"):
        swapped.load_state_dict(state)
    bad = {"state": {0: dict(state["state"][0], sum=np.zeros(5))}, "param_groups": state["param_groups"]}
    with pytest.raises(ValueError, match=r"'state.0.sum' has shape \(5,\) but parameter 0 has shape \(2,\)"):
        optimizer.load_state_dict(bad)
    with pytest.raises(ValueError, match="Adagrad.load_state_dict: got keys"):
        optimizer.load_state_dict({"state": {}, "param_groups": [], "extra": 1})
    np.testing.assert_array_equal(optimizer.state_dict()["state"][0]["sum"], [1.0, 1.0])  # unchanged


def test_clip_grad_value_and_utils():
    a, b = nn.Parameter(np.zeros(3)), nn.Parameter(np.zeros(2))
    a.grad = np.array([-3.0, 0.5, 2.0])
    nn.utils.clip_grad_value_([a, b], 1.0)
    np.testing.assert_array_equal(a.grad, [-1.0, 0.5, 1.0])
    assert b.grad is None
    assert nn.utils.clip_grad_norm_ is optim.clip_grad_norm_
    assert nn.utils.clip_grad_norm_(a, 0.5) == pytest.approx(1.5)
    with pytest.raises(ValueError, match="clip_grad_value_: clip_value must be a number >= 0"):
        nn.utils.clip_grad_value_([a], -1.0)
    a.grad = np.array([np.inf, 0.0, 0.0])
    with pytest.raises(RuntimeError, match="clip_grad_norm_: the total norm"):
        nn.utils.clip_grad_norm_([a], 1.0, error_if_nonfinite=True)
