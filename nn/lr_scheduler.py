"""Learning-rate schedulers, torch.optim.lr_scheduler's (reachable as
``nn.optim.lr_scheduler``): LambdaLR, MultiplicativeLR, StepLR, MultiStepLR,
ExponentialLR, CosineAnnealingLR, CosineAnnealingWarmRestarts, OneCycleLR, LinearLR,
SequentialLR and ReduceLROnPlateau.

Call ``scheduler.step()`` after ``optimizer.step()``, once per epoch (OneCycleLR: once
per batch; ReduceLROnPlateau: ``step(metric)``). A scheduler writes each group's 'lr'
(and records the first one as the group's 'initial_lr', as torch does, so schedulers
built one after the other on one optimizer all start from it). The rules are torch's
recursive ("chainable") forms, so several schedulers may act on one optimizer;
``step(epoch)`` jumps to an epoch with the closed form where torch has one.
``state_dict()`` holds plain Python values (no optimizer), ``load_state_dict`` restores
them; a function (LambdaLR's lambdas) is not saved.
"""
import math
from bisect import bisect_right
from collections import Counter

import numpy as np

__all__ = ["LRScheduler", "LambdaLR", "MultiplicativeLR", "StepLR", "MultiStepLR", "ExponentialLR",
           "CosineAnnealingLR", "CosineAnnealingWarmRestarts", "OneCycleLR", "LinearLR", "SequentialLR",
           "ReduceLROnPlateau"]


def _check_optimizer(name, optimizer):
    # duck-typed (param_groups of dicts with an 'lr', defaults): nn.optim imports this
    # module, so it cannot import nn.optim's Optimizer back
    groups = getattr(optimizer, "param_groups", None)
    if (not isinstance(groups, list) or not hasattr(optimizer, "defaults")
            or not all(isinstance(group, dict) and "lr" in group for group in groups)):
        raise TypeError("%s: expected an Optimizer, got %s" % (name, type(optimizer).__name__))


def _per_group(name, what, value, optimizer):
    """One value per parameter group: a list/tuple of that length, or one value for all."""
    groups = len(optimizer.param_groups)
    if isinstance(value, (list, tuple)):
        if len(value) != groups:
            raise ValueError("%s: expected %d %s (one per parameter group), got %d"
                             % (name, groups, what, len(value)))
        return list(value)
    return [value] * groups


class LRScheduler:
    """Base of the epoch schedulers: holds ``optimizer``, ``base_lrs`` (each group's
    'initial_lr'), ``last_epoch`` (-1 before the first step; the constructor takes step 0)
    and ``get_lr()``, the subclass's rule for the learning rates of ``last_epoch``."""

    def __init__(self, optimizer, last_epoch=-1):
        name = type(self).__name__
        _check_optimizer(name, optimizer)
        if not isinstance(last_epoch, int) or last_epoch < -1:
            raise ValueError("%s: last_epoch must be an int >= -1, got %r" % (name, last_epoch))
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for index, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError("%s: last_epoch=%d resumes a schedule, but parameter group %d has no "
                                   "'initial_lr' (resume with the optimizer's state dict first)"
                                   % (name, last_epoch, index))
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._initial_step()

    def _initial_step(self):
        self._step_count = 0
        self._initial = True
        try:
            self.step()
        finally:
            self._initial = False

    def get_lr(self):
        """The learning rates of epoch ``last_epoch`` (one per group), from the current ones."""
        raise NotImplementedError

    def get_last_lr(self):
        """The learning rate of each group set by the last step."""
        return list(self._last_lr)

    def step(self, epoch=None):
        """Advance one epoch (or jump to ``epoch``) and set every group's learning rate."""
        self._step_count += 1
        if epoch is None:
            self.last_epoch += 1
            values = self.get_lr()
        else:
            self.last_epoch = int(epoch)
            closed = getattr(self, "_get_closed_form_lr", None)
            values = closed() if closed is not None else self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, values):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def _group_lrs(self):
        return [group["lr"] for group in self.optimizer.param_groups]

    # -- checkpoints ------------------------------------------------------------------------
    _unsaved = ("optimizer", "_initial")

    def state_dict(self):
        """Everything but the optimizer (and functions), as plain Python values."""
        return {key: value for key, value in self.__dict__.items()
                if key not in self._unsaved and not callable(value)}

    def load_state_dict(self, state_dict):
        """Restore what ``state_dict`` returned (also read back from an .npz archive)."""
        name = type(self).__name__
        groups = len(self.optimizer.param_groups)
        known = set(self.state_dict())
        unknown = sorted(set(state_dict) - known)
        if unknown:
            raise ValueError("%s.load_state_dict: unexpected keys %s, expected some of %s"
                             % (name, unknown, sorted(known)))
        if "base_lrs" in state_dict:
            base_lrs = [float(lr) for lr in np.asarray(state_dict["base_lrs"]).ravel()]
            if len(base_lrs) != groups:
                raise ValueError("%s.load_state_dict: the checkpoint has %d learning rates for an "
                                 "optimizer with %d group(s)" % (name, len(base_lrs), groups))
        for key, value in state_dict.items():
            current = getattr(self, key, None)
            if isinstance(value, np.ndarray):  # read back from npz
                value = value.tolist()
            if isinstance(current, bool):
                value = bool(value)
            elif isinstance(current, int) and not isinstance(value, int):
                value = int(value)
            elif isinstance(current, float):
                value = float(value)
            elif isinstance(current, Counter):
                value = Counter(value)
            self.__dict__[key] = value


class LambdaLR(LRScheduler):
    """lr = initial_lr * lr_lambda(epoch); ``lr_lambda`` is one function or one per group."""

    def __init__(self, optimizer, lr_lambda, last_epoch=-1):
        _check_optimizer("LambdaLR", optimizer)
        self.lr_lambdas = _per_group("LambdaLR", "lr_lambda functions", lr_lambda, optimizer)
        if not all(callable(f) for f in self.lr_lambdas):
            raise TypeError("LambdaLR: lr_lambda must be a function of the epoch (or one per group), got %r"
                            % (lr_lambda,))
        super().__init__(optimizer, last_epoch)

    _unsaved = ("optimizer", "_initial", "lr_lambdas")

    def get_lr(self):
        return [base * f(self.last_epoch) for base, f in zip(self.base_lrs, self.lr_lambdas)]


class MultiplicativeLR(LRScheduler):
    """lr = lr * lr_lambda(epoch) each step after the first."""

    def __init__(self, optimizer, lr_lambda, last_epoch=-1):
        _check_optimizer("MultiplicativeLR", optimizer)
        self.lr_lambdas = _per_group("MultiplicativeLR", "lr_lambda functions", lr_lambda, optimizer)
        if not all(callable(f) for f in self.lr_lambdas):
            raise TypeError("MultiplicativeLR: lr_lambda must be a function of the epoch (or one per group), "
                            "got %r" % (lr_lambda,))
        super().__init__(optimizer, last_epoch)

    _unsaved = ("optimizer", "_initial", "lr_lambdas")

    def get_lr(self):
        if self.last_epoch > 0:
            return [lr * f(self.last_epoch) for lr, f in zip(self._group_lrs(), self.lr_lambdas)]
        return self._group_lrs()


def _check_gamma(name, gamma):
    if not (isinstance(gamma, (int, float)) and gamma > 0):
        raise ValueError("%s: gamma must be a number > 0, got %r" % (name, gamma))


class StepLR(LRScheduler):
    """Multiply every group's learning rate by ``gamma`` every ``step_size`` epochs:
    lr = initial_lr * gamma ** (epoch // step_size)."""

    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        if isinstance(step_size, bool) or not isinstance(step_size, int) or step_size < 1:
            raise ValueError("StepLR: step_size must be a positive int, got %r" % (step_size,))
        _check_gamma("StepLR", gamma)
        self.step_size = step_size
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return self._group_lrs()
        return [lr * self.gamma for lr in self._group_lrs()]

    def _get_closed_form_lr(self):
        return [base * self.gamma ** (self.last_epoch // self.step_size) for base in self.base_lrs]


class MultiStepLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` at each epoch of ``milestones``."""

    def __init__(self, optimizer, milestones, gamma=0.1, last_epoch=-1):
        milestones = list(milestones)
        if not all(isinstance(m, int) and not isinstance(m, bool) and m >= 0 for m in milestones):
            raise ValueError("MultiStepLR: milestones must be ints >= 0, got %r" % (milestones,))
        _check_gamma("MultiStepLR", gamma)
        self.milestones = Counter(milestones)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self.last_epoch not in self.milestones:
            return self._group_lrs()
        return [lr * self.gamma ** self.milestones[self.last_epoch] for lr in self._group_lrs()]

    def _get_closed_form_lr(self):
        passed = bisect_right(sorted(self.milestones.elements()), self.last_epoch)
        return [base * self.gamma ** passed for base in self.base_lrs]

    def state_dict(self):
        state = super().state_dict()
        state["milestones"] = dict(self.milestones)
        return state


class ExponentialLR(LRScheduler):
    """lr = initial_lr * gamma ** epoch."""

    def __init__(self, optimizer, gamma, last_epoch=-1):
        _check_gamma("ExponentialLR", gamma)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self.last_epoch == 0:
            return self._group_lrs()
        return [lr * self.gamma for lr in self._group_lrs()]

    def _get_closed_form_lr(self):
        return [base * self.gamma ** self.last_epoch for base in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """Cosine from initial_lr down to ``eta_min`` over ``T_max`` epochs (and back up over
    the next T_max, as torch's): lr = eta_min + (initial_lr - eta_min)(1 + cos(pi epoch / T_max)) / 2."""

    def __init__(self, optimizer, T_max, eta_min=0.0, last_epoch=-1):
        if isinstance(T_max, bool) or not isinstance(T_max, int) or T_max < 1:
            raise ValueError("CosineAnnealingLR: T_max must be a positive int, got %r" % (T_max,))
        self.T_max = T_max
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        e, T, low = self.last_epoch, self.T_max, self.eta_min
        if self._initial and e == 0:
            return self._group_lrs()
        if self._step_count == 1 and e > 0:
            return [low + (base - low) * (1 + math.cos(e * math.pi / T)) / 2 for base in self.base_lrs]
        if (e - 1 - T) % (2 * T) == 0:
            return [lr + (base - low) * (1 - math.cos(math.pi / T)) / 2
                    for base, lr in zip(self.base_lrs, self._group_lrs())]
        return [(1 + math.cos(math.pi * e / T)) / (1 + math.cos(math.pi * (e - 1) / T)) * (lr - low) + low
                for lr in self._group_lrs()]

    def _get_closed_form_lr(self):
        return [self.eta_min + (base - self.eta_min) * (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
                for base in self.base_lrs]


class CosineAnnealingWarmRestarts(LRScheduler):
    """SGDR: cosine from initial_lr to ``eta_min`` over T_i epochs, then restart, with
    T_0 the first period and each next one T_mult times longer."""

    def __init__(self, optimizer, T_0, T_mult=1, eta_min=0.0, last_epoch=-1):
        if isinstance(T_0, bool) or not isinstance(T_0, int) or T_0 < 1:
            raise ValueError("CosineAnnealingWarmRestarts: T_0 must be a positive int, got %r" % (T_0,))
        if isinstance(T_mult, bool) or not isinstance(T_mult, int) or T_mult < 1:
            raise ValueError("CosineAnnealingWarmRestarts: T_mult must be an int >= 1, got %r" % (T_mult,))
        self.T_0, self.T_i, self.T_mult, self.eta_min = T_0, T_0, T_mult, eta_min
        self.T_cur = last_epoch
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        return [self.eta_min + (base - self.eta_min) * (1 + math.cos(math.pi * self.T_cur / self.T_i)) / 2
                for base in self.base_lrs]

    def step(self, epoch=None):
        """Advance one epoch, or go to ``epoch`` (a float: a fraction of an epoch, per batch)."""
        if epoch is None and self.last_epoch < 0:
            epoch = 0
        if epoch is None:
            epoch = self.last_epoch + 1
            self.T_cur += 1
            if self.T_cur >= self.T_i:
                self.T_cur -= self.T_i
                self.T_i *= self.T_mult
        else:
            if epoch < 0:
                raise ValueError("CosineAnnealingWarmRestarts.step: epoch must be >= 0, got %r" % (epoch,))
            if epoch >= self.T_0:
                if self.T_mult == 1:
                    self.T_cur = epoch % self.T_0
                else:
                    n = int(math.log(epoch / self.T_0 * (self.T_mult - 1) + 1, self.T_mult))
                    self.T_cur = epoch - self.T_0 * (self.T_mult ** n - 1) / (self.T_mult - 1)
                    self.T_i = self.T_0 * self.T_mult ** n
            else:
                self.T_i = self.T_0
                self.T_cur = epoch
        self._step_count += 1
        self.last_epoch = math.floor(epoch)
        for group, lr in zip(self.optimizer.param_groups, self.get_lr()):
            group["lr"] = lr
        self._last_lr = self._group_lrs()


class LinearLR(LRScheduler):
    """Scale the learning rate linearly from ``start_factor`` to ``end_factor`` of
    initial_lr over ``total_iters`` epochs, then hold it."""

    def __init__(self, optimizer, start_factor=1.0 / 3, end_factor=1.0, total_iters=5, last_epoch=-1):
        if not 0 < start_factor <= 1:
            raise ValueError("LinearLR: start_factor must be in (0, 1], got %r" % (start_factor,))
        if not 0 <= end_factor <= 1:
            raise ValueError("LinearLR: end_factor must be in [0, 1], got %r" % (end_factor,))
        if isinstance(total_iters, bool) or not isinstance(total_iters, int) or total_iters < 1:
            raise ValueError("LinearLR: total_iters must be a positive int, got %r" % (total_iters,))
        self.start_factor, self.end_factor, self.total_iters = start_factor, end_factor, total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        e, start, end = self.last_epoch, self.start_factor, self.end_factor
        if e == 0:
            return [lr * start for lr in self._group_lrs()]
        if e > self.total_iters:
            return self._group_lrs()
        factor = 1.0 + (end - start) / (self.total_iters * start + (e - 1) * (end - start))
        return [lr * factor for lr in self._group_lrs()]

    def _get_closed_form_lr(self):
        fraction = min(self.total_iters, self.last_epoch) / self.total_iters
        return [base * (self.start_factor + (self.end_factor - self.start_factor) * fraction)
                for base in self.base_lrs]


class SequentialLR(LRScheduler):
    """Run ``schedulers`` one after the other on one optimizer, switching at each epoch of
    ``milestones`` (one fewer than schedulers); each starts its schedule afresh."""

    def __init__(self, optimizer, schedulers, milestones, last_epoch=-1):
        _check_optimizer("SequentialLR", optimizer)
        schedulers, milestones = list(schedulers), list(milestones)
        if not schedulers:
            raise ValueError("SequentialLR: expected at least one scheduler, got none")
        for index, scheduler in enumerate(schedulers):
            if isinstance(scheduler, ReduceLROnPlateau) or not isinstance(scheduler, LRScheduler):
                raise TypeError("SequentialLR: scheduler %d is a %s, expected an epoch scheduler (not "
                                "ReduceLROnPlateau, whose step needs a metric)" % (index, type(scheduler).__name__))
            if scheduler.optimizer is not optimizer:
                raise ValueError("SequentialLR: scheduler %d (%s) belongs to another optimizer, expected all to "
                                 "schedule the one given" % (index, type(scheduler).__name__))
        if len(milestones) != len(schedulers) - 1:
            raise ValueError("SequentialLR: expected %d milestone(s) for %d schedulers, got %d"
                             % (len(schedulers) - 1, len(schedulers), len(milestones)))
        self.optimizer = optimizer
        self._schedulers = schedulers
        self._milestones = milestones
        self.last_epoch = last_epoch + 1
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"]
        for scheduler in schedulers:  # undo the step each took when it was built
            scheduler.last_epoch -= 1
        schedulers[bisect_right(milestones, 0)]._initial_step()
        self._last_lr = schedulers[bisect_right(milestones, 0)].get_last_lr()

    def step(self):
        self.last_epoch += 1
        index = bisect_right(self._milestones, self.last_epoch)
        scheduler = self._schedulers[index]
        if index > 0 and self._milestones[index - 1] == self.last_epoch:
            scheduler.step(0)
        else:
            scheduler.step()
        self._last_lr = scheduler.get_last_lr()

    _unsaved = ("optimizer", "_initial", "_schedulers")

    def state_dict(self):
        state = super().state_dict()
        state["_schedulers"] = [scheduler.state_dict() for scheduler in self._schedulers]
        return state

    def load_state_dict(self, state_dict):
        state_dict = dict(state_dict)
        inner = state_dict.pop("_schedulers", None)
        if inner is not None and len(inner) != len(self._schedulers):
            raise ValueError("SequentialLR.load_state_dict: the checkpoint has %d schedulers, this one %d"
                             % (len(inner), len(self._schedulers)))
        super().load_state_dict(state_dict)
        for scheduler, saved in zip(self._schedulers, inner or ()):
            scheduler.load_state_dict(saved)


class OneCycleLR(LRScheduler):
    """The 1cycle policy (Smith): per batch, the learning rate warms from max_lr /
    div_factor to ``max_lr`` over pct_start of ``total_steps`` (or epochs *
    steps_per_epoch), then anneals to initial_lr / final_div_factor (``three_phase``:
    back to initial first); momentum (SGD's momentum or Adam's beta1) cycles inversely
    between max_momentum and base_momentum."""

    def __init__(self, optimizer, max_lr, total_steps=None, epochs=None, steps_per_epoch=None, pct_start=0.3,
                 anneal_strategy="cos", cycle_momentum=True, base_momentum=0.85, max_momentum=0.95,
                 div_factor=25.0, final_div_factor=1e4, three_phase=False, last_epoch=-1):
        name = "OneCycleLR"
        _check_optimizer(name, optimizer)
        if total_steps is None:
            if epochs is None or steps_per_epoch is None:
                raise ValueError("OneCycleLR: expected total_steps, or epochs and steps_per_epoch")
            for what, value in (("epochs", epochs), ("steps_per_epoch", steps_per_epoch)):
                if not isinstance(value, int) or value < 1:
                    raise ValueError("OneCycleLR: %s must be a positive int, got %r" % (what, value))
            total_steps = epochs * steps_per_epoch
        if isinstance(total_steps, bool) or not isinstance(total_steps, int) or total_steps < 1:
            raise ValueError("OneCycleLR: total_steps must be a positive int, got %r" % (total_steps,))
        if not 0 <= pct_start <= 1:
            raise ValueError("OneCycleLR: pct_start must be in [0, 1], got %r" % (pct_start,))
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError("OneCycleLR: anneal_strategy must be 'cos' or 'linear', got %r" % (anneal_strategy,))
        self.total_steps = total_steps
        self.anneal_strategy = anneal_strategy
        self.cycle_momentum = cycle_momentum
        if three_phase:
            # (last step of the phase, lr from, lr to, momentum from, momentum to)
            self._phases = [
                [float(pct_start * total_steps) - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"],
                [float(2 * pct_start * total_steps) - 2, "max_lr", "initial_lr", "base_momentum", "max_momentum"],
                [total_steps - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum"]]
        else:
            self._phases = [
                [float(pct_start * total_steps) - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"],
                [total_steps - 1, "max_lr", "min_lr", "base_momentum", "max_momentum"]]
        max_lrs = _per_group(name, "max_lr values", max_lr, optimizer)
        if last_epoch == -1:
            for lr, group in zip(max_lrs, optimizer.param_groups):
                group["initial_lr"] = lr / div_factor
                group["max_lr"] = lr
                group["min_lr"] = group["initial_lr"] / final_div_factor
        if cycle_momentum:
            if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
                raise ValueError("OneCycleLR: cycle_momentum needs an optimizer with momentum or betas, got %s "
                                 "(pass cycle_momentum=False)" % type(optimizer).__name__)
            self._use_beta1 = "betas" in optimizer.defaults
            bases = _per_group(name, "base_momentum values", base_momentum, optimizer)
            maxes = _per_group(name, "max_momentum values", max_momentum, optimizer)
            if last_epoch == -1:
                for low, high, group in zip(bases, maxes, optimizer.param_groups):
                    self._set_momentum(group, high)
                    group["max_momentum"] = high
                    group["base_momentum"] = low
        super().__init__(optimizer, last_epoch)

    def _set_momentum(self, group, value):
        if self._use_beta1:
            group["betas"] = (value,) + tuple(group["betas"][1:])
        else:
            group["momentum"] = value

    def _anneal(self, start, end, fraction):
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * fraction) + 1)
        return (end - start) * fraction + start

    def get_lr(self):
        step = self.last_epoch
        if step > self.total_steps:
            raise ValueError("OneCycleLR: stepped %d times, more than total_steps=%d" % (step, self.total_steps))
        lrs = []
        for group in self.optimizer.param_groups:
            start_step = 0.0
            for index, (end_step, lr_from, lr_to, m_from, m_to) in enumerate(self._phases):
                if step <= end_step or index == len(self._phases) - 1:
                    fraction = (step - start_step) / (end_step - start_step)
                    lr = self._anneal(group[lr_from], group[lr_to], fraction)
                    if self.cycle_momentum:
                        momentum = self._anneal(group[m_from], group[m_to], fraction)
                    break
                start_step = end_step
            lrs.append(lr)
            if self.cycle_momentum:
                self._set_momentum(group, momentum)
        return lrs


class ReduceLROnPlateau:
    """Multiply the learning rates by ``factor`` when a metric stops improving for more
    than ``patience`` epochs: ``scheduler.step(validation_loss)`` once per epoch.

    mode 'min' (a loss) or 'max' (an accuracy); an improvement beats the best by more than
    ``threshold`` (relative: best * (1 -+ threshold); absolute: best -+ threshold);
    after a reduction, ``cooldown`` epochs pass before counting again; lr never goes below
    ``min_lr`` (one value or one per group), and changes smaller than ``eps`` are skipped.
    """

    def __init__(self, optimizer, mode="min", factor=0.1, patience=10, threshold=1e-4, threshold_mode="rel",
                 cooldown=0, min_lr=0.0, eps=1e-8):
        name = "ReduceLROnPlateau"
        _check_optimizer(name, optimizer)
        if not 0 <= factor < 1:
            raise ValueError("%s: factor must be in [0, 1) (it multiplies the lr), got %r" % (name, factor))
        if mode not in ("min", "max"):
            raise ValueError("%s: mode must be 'min' or 'max', got %r" % (name, mode))
        if threshold_mode not in ("rel", "abs"):
            raise ValueError("%s: threshold_mode must be 'rel' or 'abs', got %r" % (name, threshold_mode))
        for what, value in (("patience", patience), ("cooldown", cooldown)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError("%s: %s must be an int >= 0, got %r" % (name, what, value))
        self.optimizer = optimizer
        self.min_lrs = [float(v) for v in _per_group(name, "min_lr values", min_lr, optimizer)]
        self.factor, self.patience, self.cooldown = factor, patience, cooldown
        self.mode, self.threshold, self.threshold_mode, self.eps = mode, threshold, threshold_mode, eps
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        self.last_epoch = 0
        self._last_lr = [group["lr"] for group in optimizer.param_groups]

    def _better(self, value):
        if self.mode == "min":
            if self.threshold_mode == "rel":
                return value < self.best * (1.0 - self.threshold)
            return value < self.best - self.threshold
        if self.threshold_mode == "rel":
            return value > self.best * (1.0 + self.threshold)
        return value > self.best + self.threshold

    def step(self, metrics):
        """Record this epoch's metric (a number) and reduce the rates if it has plateaued."""
        try:
            current = float(metrics)
        except (TypeError, ValueError):
            raise TypeError("ReduceLROnPlateau.step: expected the metric as a number, got %s"
                            % type(metrics).__name__) from None
        self.last_epoch += 1
        if self._better(current):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            for group, low in zip(self.optimizer.param_groups, self.min_lrs):
                old = group["lr"]
                new = max(old * self.factor, low)
                if old - new > self.eps:
                    group["lr"] = new
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    @property
    def in_cooldown(self):
        return self.cooldown_counter > 0

    def get_last_lr(self):
        """The learning rate of each group after the last step."""
        return list(self._last_lr)

    def state_dict(self):
        """The scheduler's settings and counters, as plain Python values."""
        return {key: value for key, value in self.__dict__.items() if key != "optimizer"}

    def load_state_dict(self, state_dict):
        unknown = sorted(set(state_dict) - set(self.state_dict()))
        if unknown:
            raise ValueError("ReduceLROnPlateau.load_state_dict: unexpected keys %s" % unknown)
        for key, value in state_dict.items():
            self.__dict__[key] = value.tolist() if isinstance(value, np.ndarray) else value
