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
