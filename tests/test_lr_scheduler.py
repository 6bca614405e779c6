"""Every scheduler of nn.optim.lr_scheduler against torch.optim.lr_scheduler for 20
steps (learning rates, and OneCycleLR's momentum, to 1e-6), against formulas written
here, state dict round trips and bad input."""
import math

import numpy as np
import pytest

import nn
from nn import optim
from nn.optim import lr_scheduler

STEPS = 20


def _optimizer(module, kind="SGD", **options):
    """An optimizer of ``module`` (nn.optim or torch.optim) over two groups with lrs 1.0 and 0.5."""
    if module is optim:
        params = [nn.Parameter(np.zeros(2)), nn.Parameter(np.zeros(3))]
    else:
        import torch
        params = [torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(3))]
    return getattr(module, kind)([{"params": params[:1]}, {"params": params[1:], "lr": 0.5}], lr=1.0, **options)


def _momentum(group):
    return group["betas"][0] if "betas" in group else group.get("momentum")


# name, optimizer kind and options, a function (scheduler module, optimizer) -> scheduler,
# and the metric passed to each step (ReduceLROnPlateau)
SCHEDULERS = [
    ("LambdaLR", ("SGD", {}), lambda m, o: m.LambdaLR(o, lambda e: 0.9 ** e + 0.01 * e), None),
    ("LambdaLR-groups", ("SGD", {}), lambda m, o: m.LambdaLR(o, [lambda e: 1.0 / (e + 1), lambda e: 0.95 ** e]),
     None),
    ("MultiplicativeLR", ("SGD", {}), lambda m, o: m.MultiplicativeLR(o, lambda e: 0.9 if e % 2 else 1.05), None),
    ("StepLR", ("SGD", {}), lambda m, o: m.StepLR(o, step_size=3, gamma=0.5), None),
    ("MultiStepLR", ("SGD", {}), lambda m, o: m.MultiStepLR(o, milestones=[2, 5, 5, 9], gamma=0.5), None),
    ("ExponentialLR", ("SGD", {}), lambda m, o: m.ExponentialLR(o, gamma=0.9), None),
    ("CosineAnnealingLR", ("SGD", {}), lambda m, o: m.CosineAnnealingLR(o, T_max=7, eta_min=0.01), None),
    ("CosineAnnealingWarmRestarts", ("SGD", {}),
     lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2, eta_min=0.001), None),
    ("CosineAnnealingWarmRestarts-1", ("SGD", {}), lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=4), None),
    ("OneCycleLR-sgd", ("SGD", {"momentum": 0.9}), lambda m, o: m.OneCycleLR(o, max_lr=[1.0, 0.5], total_steps=21),
     None),
    ("OneCycleLR-adam-linear", ("Adam", {}),
     lambda m, o: m.OneCycleLR(o, max_lr=0.1, epochs=4, steps_per_epoch=6, anneal_strategy="linear",
                               pct_start=0.25), None),
    ("OneCycleLR-three-phase", ("AdamW", {}),
     lambda m, o: m.OneCycleLR(o, max_lr=0.1, total_steps=25, three_phase=True, div_factor=10.0), None),
    ("LinearLR", ("SGD", {}), lambda m, o: m.LinearLR(o, start_factor=0.25, end_factor=0.9, total_iters=6), None),
    ("SequentialLR", ("SGD", {}),
     lambda m, o: m.SequentialLR(o, [m.LinearLR(o, start_factor=0.1, total_iters=4), m.ExponentialLR(o, gamma=0.9)],
                                 milestones=[5]), None),
    ("SequentialLR-cosine", ("Adam", {}),
     lambda m, o: m.SequentialLR(o, [m.ConstantLR(o, factor=0.5, total_iters=3) if hasattr(m, "ConstantLR")
                                     and m is not lr_scheduler else m.LinearLR(o, start_factor=0.5, end_factor=0.5,
                                                                                total_iters=3),
                                     m.CosineAnnealingLR(o, T_max=6), m.StepLR(o, step_size=2)],
                                 milestones=[3, 12]), None),
    ("ReduceLROnPlateau", ("SGD", {}),
     lambda m, o: m.ReduceLROnPlateau(o, patience=2, cooldown=1, factor=0.5, min_lr=[0.1, 0.2]),
     [1.0, 0.9, 0.95, 0.95, 0.96, 0.97, 0.8, 0.85, 0.85, 0.85, 0.85, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7]),
    ("ReduceLROnPlateau-max-abs", ("Adam", {}),
     lambda m, o: m.ReduceLROnPlateau(o, mode="max", threshold=0.05, threshold_mode="abs", patience=1),
     [0.1, 0.2, 0.22, 0.24, 0.3, 0.31, 0.32, 0.33, 0.5] + [0.5] * 11),
]
IDS = [case[0] for case in SCHEDULERS]


def _trace(module, schedulers_module, kind, options, make, metrics, chained=False):
    optimizer = _optimizer(module, kind, **options)
    scheduler = make(schedulers_module, optimizer)
    extra = schedulers_module.ExponentialLR(optimizer, gamma=0.95) if chained else None
    trace = []
    for step in range(STEPS):
        optimizer.step()
        if metrics is None:
            scheduler.step()
        else:
            scheduler.step(metrics[step])
        if extra is not None:
            extra.step()
        trace.append((list(scheduler.get_last_lr()), [g["lr"] for g in optimizer.param_groups],
                      [_momentum(g) for g in optimizer.param_groups]))
    return trace, scheduler, optimizer


def _assert_traces_equal(ours, theirs):
    for step, (mine, wanted) in enumerate(zip(ours, theirs)):
        for a, b in zip(mine, wanted):
            np.testing.assert_allclose(np.array(a, dtype=float), np.array(b, dtype=float), rtol=1e-6, atol=1e-9,
                                       err_msg="step %d" % step)


@pytest.mark.parametrize("name, optimizer, make, metrics", SCHEDULERS, ids=IDS)
def test_matches_torch_for_20_steps(name, optimizer, make, metrics):
    torch = pytest.importorskip("torch")
    kind, options = optimizer
    ours, _, _ = _trace(optim, lr_scheduler, kind, options, make, metrics)
    theirs, _, _ = _trace(torch.optim, torch.optim.lr_scheduler, kind, options, make, metrics)
    _assert_traces_equal(ours, theirs)


@pytest.mark.parametrize("name", ["StepLR", "MultiStepLR", "CosineAnnealingLR", "LinearLR", "MultiplicativeLR"])
def test_chained_with_another_scheduler_matches_torch(name):
    torch = pytest.importorskip("torch")
    _, optimizer, make, metrics = SCHEDULERS[IDS.index(name)]
    ours, _, _ = _trace(optim, lr_scheduler, optimizer[0], optimizer[1], make, metrics, chained=True)
    theirs, _, _ = _trace(torch.optim, torch.optim.lr_scheduler, optimizer[0], optimizer[1], make, metrics,
                          chained=True)
    _assert_traces_equal(ours, theirs)


# ---- closed forms written here (run without torch) ----------------------------------------------
def _lrs(make, steps=STEPS, kind="SGD", **options):
    optimizer = _optimizer(optim, kind, **options)
    scheduler = make(optimizer)
    lrs = [scheduler.get_last_lr()]
    for _ in range(steps):
        optimizer.step()
        scheduler.step()
        lrs.append(scheduler.get_last_lr())
    return np.array(lrs), optimizer


def test_closed_forms():
    epochs = np.arange(STEPS + 1)[:, None]
    base = np.array([[1.0, 0.5]])
    cases = [
        (lambda o: lr_scheduler.StepLR(o, 3, gamma=0.5), base * 0.5 ** (epochs // 3)),
        (lambda o: lr_scheduler.ExponentialLR(o, 0.9), base * 0.9 ** epochs),
        (lambda o: lr_scheduler.MultiStepLR(o, [4, 9], 0.1), base * 0.1 ** ((epochs >= 4).astype(int) + (epochs >= 9).astype(int))),
        (lambda o: lr_scheduler.LambdaLR(o, lambda e: 1.0 / (1 + e)), base / (1 + epochs)),
        # within one period (T_max >= STEPS) the recursive form is the closed one
        (lambda o: lr_scheduler.CosineAnnealingLR(o, STEPS, eta_min=0.01),
         0.01 + (base - 0.01) * (1 + np.cos(np.pi * epochs / STEPS)) / 2),
        (lambda o: lr_scheduler.LinearLR(o, 0.2, 1.0, total_iters=10), base * (0.2 + 0.8 * np.minimum(epochs, 10) / 10)),
        (lambda o: lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=5),
         base * (1 + np.cos(np.pi * (epochs % 5) / 5)) / 2),
    ]
    for make, expected in cases:
        got, optimizer = _lrs(make)
        np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)
        assert [g["lr"] for g in optimizer.param_groups] == list(got[-1])
        assert [g["initial_lr"] for g in optimizer.param_groups] == [1.0, 0.5]


def test_one_cycle_endpoints_and_momentum():
    got, optimizer = _lrs(lambda o: lr_scheduler.OneCycleLR(o, max_lr=2.0, total_steps=STEPS + 1), momentum=0.9)
    np.testing.assert_allclose(got[0], [2.0 / 25] * 2)
    peak = int(0.3 * (STEPS + 1)) - 1  # the warm-up ends at pct_start * total_steps - 1
    assert np.argmax(got[:, 0]) in (peak, peak + 1) and got[:, 0].max() <= 2.0
    np.testing.assert_allclose(got[-1], [2.0 / 25 / 1e4] * 2)
    assert [g["momentum"] for g in optimizer.param_groups] == pytest.approx([0.95, 0.95])


def test_reduce_on_plateau_by_hand():
    optimizer = _optimizer(optim)
    scheduler = lr_scheduler.ReduceLROnPlateau(optimizer, patience=1, factor=0.5)
    seen = []
    for loss in [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5]:
        scheduler.step(loss)
        seen.append(scheduler.get_last_lr()[0])
    # bad epochs: 0, 1, 2 (> patience: halve, reset), better, 1, 2 (halve), 1
    assert seen == [1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25]


def test_sequential_switches_at_milestones():
    got, _ = _lrs(lambda o: lr_scheduler.SequentialLR(
        o, [lr_scheduler.LinearLR(o, 0.5, total_iters=2), lr_scheduler.ExponentialLR(o, 0.5)], milestones=[3]), 6)
    np.testing.assert_allclose(got[:, 0], [0.5, 0.75, 1.0, 1.0, 0.5, 0.25, 0.125])


# ---- state dicts ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, optimizer, make, metrics", SCHEDULERS, ids=IDS)
def test_state_dict_round_trip(name, optimizer, make, metrics):
    """Halfway through, save optimizer and scheduler; a fresh pair that loads both
    continues exactly as the original."""
    kind, options = optimizer
    half = STEPS // 2
    original = _optimizer(optim, kind, **options)
    scheduler = make(lr_scheduler, original)

    def advance(opt, sched, steps):
        trace = []
        for step in steps:
            opt.step()
            sched.step() if metrics is None else sched.step(metrics[step])
            trace.append(sched.get_last_lr() + [_momentum(g) for g in opt.param_groups])
        return trace

    advance(original, scheduler, range(half))
    optimizer_state, scheduler_state = original.state_dict(), scheduler.state_dict()
    resumed = _optimizer(optim, kind, **options)
    other = make(lr_scheduler, resumed)
    resumed.load_state_dict(optimizer_state)
    other.load_state_dict(scheduler_state)
    assert advance(resumed, other, range(half, STEPS)) == advance(original, scheduler, range(half, STEPS))


def test_state_dict_through_npz(tmp_path):
    optimizer = _optimizer(optim)
    scheduler = lr_scheduler.MultiStepLR(optimizer, [2, 4], gamma=0.5)
    for _ in range(3):
        scheduler.step()
    state = {key: np.array(value) for key, value in scheduler.state_dict().items() if key != "milestones"}
    np.savez(tmp_path / "scheduler.npz", **state)
    other = lr_scheduler.MultiStepLR(_optimizer(optim), [2, 4], gamma=0.5)
    with np.load(tmp_path / "scheduler.npz") as archive:
        other.load_state_dict(dict(archive))
    assert other.last_epoch == 3 and other.base_lrs == [1.0, 0.5] and isinstance(other.last_epoch, int)


# ---- bad input ---------------------------------------------------------------------------------------
def test_bad_input_names_the_scheduler():
    optimizer = _optimizer(optim)
    with pytest.raises(TypeError, match="StepLR.__init__.. got an unexpected keyword argument 'steps'"):
        lr_scheduler.StepLR(optimizer, steps=3)
    with pytest.raises(TypeError, match="ExponentialLR: expected an Optimizer, got list"):
        lr_scheduler.ExponentialLR([], gamma=0.9)
    with pytest.raises(ValueError, match="ExponentialLR: gamma must be a number > 0"):
        lr_scheduler.ExponentialLR(optimizer, gamma=-1)
    with pytest.raises(ValueError, match="CosineAnnealingLR: T_max must be a positive int"):
        lr_scheduler.CosineAnnealingLR(optimizer, T_max=0)
    with pytest.raises(ValueError, match="LambdaLR: expected 2 lr_lambda functions \\(one per parameter group\\)"):
        lr_scheduler.LambdaLR(optimizer, [lambda e: 1.0])
    with pytest.raises(ValueError, match="OneCycleLR: expected total_steps, or epochs and steps_per_epoch"):
        lr_scheduler.OneCycleLR(optimizer, max_lr=1.0)
    with pytest.raises(ValueError, match="OneCycleLR: cycle_momentum needs an optimizer with momentum or betas"):
        lr_scheduler.OneCycleLR(optim.Adagrad([nn.Parameter(np.zeros(1))]), max_lr=1.0, total_steps=5)
    with pytest.raises(ValueError, match="OneCycleLR: anneal_strategy must be 'cos' or 'linear'"):
        lr_scheduler.OneCycleLR(optimizer, max_lr=1.0, total_steps=5, anneal_strategy="cosine")
    one_cycle = lr_scheduler.OneCycleLR(_optimizer(optim, momentum=0.9), max_lr=1.0, total_steps=2)
    one_cycle.step()
    one_cycle.step()
    with pytest.raises(ValueError, match="OneCycleLR: stepped 3 times, more than total_steps=2"):
        one_cycle.step()
    with pytest.raises(ValueError, match="SequentialLR: expected 1 milestone\\(s\\) for 2 schedulers, got 2"):
        lr_scheduler.SequentialLR(optimizer, [lr_scheduler.StepLR(optimizer, 2), lr_scheduler.StepLR(optimizer, 3)],
                                  milestones=[2, 4])
    with pytest.raises(ValueError, match="SequentialLR: scheduler 0 .StepLR. belongs to another optimizer"):
        lr_scheduler.SequentialLR(optimizer, [lr_scheduler.StepLR(_optimizer(optim), 2)], milestones=[])
    with pytest.raises(ValueError, match="ReduceLROnPlateau: mode must be 'min' or 'max', got 'minimum'"):
        lr_scheduler.ReduceLROnPlateau(optimizer, mode="minimum")
    with pytest.raises(ValueError, match="ReduceLROnPlateau: factor must be in \\[0, 1\\)"):
        lr_scheduler.ReduceLROnPlateau(optimizer, factor=2.0)
    with pytest.raises(TypeError, match="ReduceLROnPlateau.step: expected the metric as a number, got str"):
        lr_scheduler.ReduceLROnPlateau(optimizer).step("loss")
    with pytest.raises(ValueError, match="StepLR.load_state_dict: unexpected keys \\['gama'\\]"):
        lr_scheduler.StepLR(optimizer, 2).load_state_dict({"gama": 0.1})
    with pytest.raises(KeyError, match="ExponentialLR: last_epoch=3 resumes a schedule, but parameter group 0 has no"):
        lr_scheduler.ExponentialLR(optim.SGD([nn.Parameter(np.zeros(1))], lr=0.1), 0.9, last_epoch=3)
