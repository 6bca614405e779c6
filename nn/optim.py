"""Optimizers, gradient clipping and a learning-rate schedule.

The update rules are PyTorch's (same hyperparameter names and meanings). Each step updates
``p.data`` in place from ``p.grad``, a float32 parameter staying float32 (the
hyperparameters are Python floats, which numpy does not let widen an array's dtype).
Parameters whose ``grad`` is None are skipped. The arithmetic lives in
autograd_core/kernels/optim.py: one fused C call per group and dtype updates all the
group's parameters, bit for bit the numpy reference written there, which runs instead for
what C does not take (strided parameters, mixed dtypes, the 'numpy' backend).
Each step bumps every updated parameter's version (``Tensor.increment_version``), so
that a backward through a graph built before the step raises instead of silently using
the new weights, as in PyTorch.

``state_dict()`` is flat: names -> numpy arrays, ready for ``np.savez``:
  ``group.{g}.{hyperparameter}``      0-d arrays (lr, momentum, betas as a 2-vector, ...)
  ``state.{i}.{buffer}``              per-parameter buffers; i counts parameters over all
                                      groups in order
  ``state.{i}.step``                  per-parameter step counts (Adam)
"""
import math

import numpy as np

from autograd_core.kernels import optim as optim_kernels

__all__ = ["Optimizer", "SGD", "Adam", "RMSprop", "clip_grad_norm_", "StepLR"]

# Elements per chunk of the numpy reference update (autograd_core/kernels/optim.py).
_CHUNK = optim_kernels.CHUNK


def _grad_array(param):
    grad = param.grad
    if grad is None:
        return None
    return grad if isinstance(grad, np.ndarray) else grad.data


class Optimizer:
    """Holds parameter groups and per-parameter state; subclasses define ``_prepare`` and
    ``_step_group``.

    ``params`` is an iterable of Parameters, or of dicts ``{"params": [...], **overrides}``
    (parameter groups with their own hyperparameters, e.g. a different ``lr``).
    """

    # Per-parameter buffers that state_dict saves, in subclasses' order.
    _buffer_names = ()
    _counted = False  # whether the state has a per-parameter step count

    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        if hasattr(params, "data") and not isinstance(params, (list, tuple, dict)):
            raise TypeError("%s: params must be an iterable of Parameters or dicts, got a single %s "
                            "(wrap it in a list)" % (type(self).__name__, type(params).__name__))
        params = list(params)
        if not params:
            raise ValueError("%s: got an empty parameter list" % type(self).__name__)
        if not isinstance(params[0], dict):
            params = [{"params": params}]
        self.param_groups = []
        seen = set()
        for index, group in enumerate(params):
            if not isinstance(group, dict) or "params" not in group:
                raise TypeError("%s: parameter group %d must be a dict with a 'params' entry"
                                % (type(self).__name__, index))
            unknown = set(group) - set(self.defaults) - {"params"}
            if unknown:
                raise ValueError("%s: parameter group %d has unknown options %s, expected some of %s"
                                 % (type(self).__name__, index, sorted(unknown), sorted(self.defaults)))
            members = group["params"]
            members = [members] if hasattr(members, "data") else list(members)
            for param in members:
                if not isinstance(getattr(param, "data", None), np.ndarray):
                    raise TypeError("%s: expected Parameters (objects with a numpy .data), got %s"
                                    % (type(self).__name__, type(param).__name__))
                if id(param) in seen:
                    raise ValueError("%s: a parameter appears in more than one place in params"
                                     % type(self).__name__)
                seen.add(id(param))
            full = dict(self.defaults)
            full.update(group)
            full["params"] = members
            self.param_groups.append(full)
        # Per-parameter state, keyed by id(param): the parameters themselves outlive it
        # because param_groups holds them.
        self.state = {}
        self._caches = {}  # group index -> optim_kernels.StepCache (pointer tables, scratch)

    # -- the loop shared by all optimizers -------------------------------------------
    def zero_grad(self, set_to_none=True):
        """Forget the gradients: drop them (default) or zero them in place."""
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is None:
                    continue
                if set_to_none:
                    param.grad = None
                else:
                    _grad_array(param)[...] = 0

    def step(self):
        """Apply one update to every parameter that has a gradient."""
        by = "%s.step()" % type(self).__name__
        for index, group in enumerate(self.param_groups):
            members = []  # (data, grad, state, what _prepare returned) per parameter updated
            for param in group["params"]:
                grad = _grad_array(param)
                if grad is None:
                    continue
                data = param.data
                if grad.shape != data.shape:
                    raise ValueError("%s.step: gradient shape %s differs from parameter shape %s"
                                     % (type(self).__name__, grad.shape, data.shape))
                state = self.state.get(id(param))
                if state is None:
                    state = self.state[id(param)] = {}
                members.append((data, grad, state, self._prepare(state, data, group)))
                _changed_in_place(param, by)
            if members:
                cache = self._caches.get(index)
                if cache is None:
                    cache = self._caches[index] = optim_kernels.StepCache()
                self._step_group(group, members, cache)

    def _prepare(self, state, data, group):
        """Once per parameter and step, before the update: create the state arrays it needs
        (full size, C-contiguous) and advance counters. Returns what the update needs to
        know of this parameter (e.g. its step)."""
        return None

    def _step_group(self, group, members, cache):
        """Update every member (data, grad, state, prepared) of one group in place: one
        call of autograd_core.kernels.optim; ``cache`` is this group's StepCache."""
        raise NotImplementedError

    @staticmethod
    def _ensure(state, name, data):
        """Create state[name] as zeros shaped like the parameter, unless it exists."""
        if name not in state:
            state[name] = np.zeros(data.shape, dtype=data.dtype)

    # -- checkpoints ---------------------------------------------------------------------
    def _all_params(self):
        return [param for group in self.param_groups for param in group["params"]]

    def state_dict(self):
        """A flat dict of numpy arrays (see the module docstring), for ``np.savez``."""
        result = {}
        for g, group in enumerate(self.param_groups):
            for name, value in group.items():
                if name != "params":
                    result["group.%d.%s" % (g, name)] = np.array(value)
        for i, param in enumerate(self._all_params()):
            state = self.state.get(id(param), {})
            for name in self._buffer_names:
                if name in state:
                    result["state.%d.%s" % (i, name)] = state[name].copy()
            if "step" in state:
                result["state.%d.step" % i] = np.array(state["step"], dtype=np.int64)
        return result

    def load_state_dict(self, state_dict):
        """Restore hyperparameters and buffers saved by ``state_dict`` (or loaded from .npz)."""
        name = type(self).__name__
        params = self._all_params()
        new_state = {}
        for key in state_dict:
            parts = key.split(".")
            if len(parts) != 3 or parts[0] not in ("group", "state") or not parts[1].isdigit():
                raise ValueError("%s.load_state_dict: unexpected key %r" % (name, key))
            index, field = int(parts[1]), parts[2]
            value = np.asarray(state_dict[key])
            if parts[0] == "group":
                if index >= len(self.param_groups):
                    raise ValueError("%s.load_state_dict: key %r names group %d but the optimizer has %d "
                                     "group(s)" % (name, key, index, len(self.param_groups)))
                if field not in self.defaults:
                    raise ValueError("%s.load_state_dict: unexpected key %r (unknown hyperparameter)"
                                     % (name, key))
                # a crafted value (text, nan, a wrong shape) would fail, or corrupt, a later step
                if (value.dtype.kind not in "biuf" or value.shape != np.shape(self.defaults[field])
                        or not np.all(np.isfinite(value))):
                    raise ValueError("%s.load_state_dict: %r is %r, expected a finite number like %r"
                                     % (name, key, value, self.defaults[field]))
                continue
            if index >= len(params):
                raise ValueError("%s.load_state_dict: key %r names parameter %d but the optimizer has %d"
                                 % (name, key, index, len(params)))
            param = params[index]
            slot = new_state.setdefault(id(param), {})
            if field == "step" and self._counted:
                # the bias corrections divide by 1 - beta ** (step + 1): a negative count divides by 0
                if value.shape != () or value.dtype.kind not in "iu" or int(value) < 0:
                    raise ValueError("%s.load_state_dict: %r is %r, expected an integer step count >= 0"
                                     % (name, key, value))
                slot["step"] = int(value)
            elif field in self._buffer_names:
                if value.shape != param.data.shape:
                    raise ValueError("%s.load_state_dict: %r has shape %s but parameter %d has shape %s"
                                     % (name, key, value.shape, index, param.data.shape))
                # C-contiguous: step() updates flat chunks of it, which must be views
                slot[field] = np.array(value, dtype=param.data.dtype, order="C", copy=True)
            else:
                raise ValueError("%s.load_state_dict: unexpected key %r" % (name, key))
        # Only now, with every key checked, change anything.
        for key in state_dict:
            parts = key.split(".")
            if parts[0] == "group":
                group, field = self.param_groups[int(parts[1])], parts[2]
                value = np.asarray(state_dict[key])
                group[field] = tuple(value.tolist()) if value.ndim else value.item()
        self.state = new_state

    def __repr__(self):
        lines = [type(self).__name__ + " ("]
        for g, group in enumerate(self.param_groups):
            lines.append("Parameter Group %d" % g)
            for name in sorted(group):
                if name != "params":
                    lines.append("    %s: %s" % (name, group[name]))
        lines.append(")")
        return "\n".join(lines)


def _changed_in_place(param, by):
    """Tell the engine param's values change in place now (Parameters are Tensors; other
    objects with a numpy .data, which the optimizers also accept, have no version)."""
    increment_version = getattr(param, "increment_version", None)
    if increment_version is not None:
        increment_version(by)


def _check_non_negative(op, **values):
    for name, value in values.items():
        if not value >= 0.0:
            raise ValueError("%s: %s must be >= 0, got %r" % (op, name, value))


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum and weight decay.

    With g = grad + weight_decay * p:
      buf = g on the first step, then buf = momentum * buf + (1 - dampening) * g
      g = g + momentum * buf (nesterov) or g = buf
      p = p - lr * g
    """
    _buffer_names = ("momentum_buffer",)

    def __init__(self, params, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
        _check_non_negative("SGD", lr=lr, momentum=momentum, weight_decay=weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: nesterov momentum needs momentum > 0 and dampening = 0, got "
                             "momentum=%r, dampening=%r" % (momentum, dampening))
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))

    def _prepare(self, state, data, group):
        fresh = bool(group["momentum"]) and "momentum_buffer" not in state
        if fresh:
            self._ensure(state, "momentum_buffer", data)
        return fresh

    def _step_group(self, group, members, cache):
        momentum = group["momentum"]
        optim_kernels.sgd_step(
            [m[0] for m in members], [m[1] for m in members],
            [m[2]["momentum_buffer"] for m in members] if momentum else None, [m[3] for m in members],
            group["lr"], momentum, group["dampening"], group["weight_decay"], group["nesterov"], cache)


class Adam(Optimizer):
    """Adam (Kingma & Ba) with PyTorch's L2-style weight_decay (added to the gradient).

    m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2
    p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
    """
    _buffer_names = ("exp_avg", "exp_avg_sq")
    _counted = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        _check_non_negative("Adam", lr=lr, eps=eps, weight_decay=weight_decay)
        betas = tuple(float(b) for b in betas)
        if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError("Adam: betas must be two numbers in [0, 1), got %r" % (betas,))
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    def _prepare(self, state, data, group):
        self._ensure(state, "exp_avg", data)
        self._ensure(state, "exp_avg_sq", data)
        state["step"] = state.get("step", 0) + 1
        return state["step"]

    def _step_group(self, group, members, cache):
        optim_kernels.adam_step(
            [m[0] for m in members], [m[1] for m in members], [m[2]["exp_avg"] for m in members],
            [m[2]["exp_avg_sq"] for m in members], [m[3] for m in members],
            group["lr"], group["betas"], group["eps"], group["weight_decay"], cache)


class RMSprop(Optimizer):
    """RMSprop, PyTorch's form (eps outside the square root).

    v = alpha v + (1 - alpha) g^2; with centered, avg = sqrt(v - mean_g^2) + eps else sqrt(v) + eps
    momentum > 0: buf = momentum buf + g / avg, p -= lr buf;  else p -= lr g / avg
    """
    _buffer_names = ("square_avg", "momentum_buffer", "grad_avg")

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                 centered=False):
        _check_non_negative("RMSprop", lr=lr, eps=eps, weight_decay=weight_decay, momentum=momentum)
        if not 0.0 <= alpha <= 1.0:
            raise ValueError("RMSprop: alpha must be in [0, 1], got %r" % (alpha,))
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered))

    def _prepare(self, state, data, group):
        self._ensure(state, "square_avg", data)
        if group["centered"]:
            self._ensure(state, "grad_avg", data)
        if group["momentum"]:
            self._ensure(state, "momentum_buffer", data)
        return None

    def _step_group(self, group, members, cache):
        centered, momentum = group["centered"], group["momentum"]
        optim_kernels.rmsprop_step(
            [m[0] for m in members], [m[1] for m in members], [m[2]["square_avg"] for m in members],
            [m[2]["grad_avg"] for m in members] if centered else None,
            [m[2]["momentum_buffer"] for m in members] if momentum else None,
            group["lr"], group["alpha"], group["eps"], group["weight_decay"], momentum, centered, cache)


def clip_grad_norm_(params, max_norm, norm_type=2.0):
    """Scale the gradients in place so their joint norm is at most ``max_norm``.

    The norm is taken over all gradients together, as if concatenated into one vector
    (``norm_type`` 2 by default, or ``float('inf')``). Returns the norm before clipping,
    as a Python float. Parameters without a gradient are ignored.
    """
    if hasattr(params, "data"):
        params = [params]
    grads = [g for g in (_grad_array(p) for p in params) if g is not None]
    if not grads:
        return 0.0
    norm_type = float(norm_type)
    if math.isinf(norm_type):
        total = max(float(np.max(np.abs(g))) if g.size else 0.0 for g in grads)
    elif norm_type == 2.0:
        # float64 accumulation: a float32 sum of squares over millions of entries drifts.
        total = math.sqrt(sum(float(np.dot(g.ravel(), g.ravel()).astype(np.float64))
                              if g.dtype == np.float64 else
                              float(np.sum(np.square(g, dtype=np.float64))) for g in grads))
    else:
        total = sum(float(np.sum(np.abs(g, dtype=np.float64) ** norm_type)) for g in grads) ** (1.0 / norm_type)
    # (gradients are not saved by any op's forward, so scaling them in place needs no
    # version bump)
    coefficient = float(max_norm) / (total + 1e-6)
    if coefficient < 1.0:
        for g in grads:
            np.multiply(g, coefficient, out=g)
    return total


class StepLR:
    """Multiply every group's learning rate by ``gamma`` every ``step_size`` epochs.

    Call ``scheduler.step()`` once per epoch, after the optimizer's steps:
    lr = initial_lr * gamma ** (epoch // step_size).
    """

    def __init__(self, optimizer, step_size, gamma=0.1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError("StepLR: expected an Optimizer, got %s" % type(optimizer).__name__)
        if not isinstance(step_size, int) or step_size < 1:
            raise ValueError("StepLR: step_size must be a positive int, got %r" % (step_size,))
        self.optimizer = optimizer
        self.step_size = step_size
        self.gamma = gamma
        self.base_lrs = [group["lr"] for group in optimizer.param_groups]
        self.last_epoch = 0

    def get_last_lr(self):
        """The learning rate of each group now."""
        return [group["lr"] for group in self.optimizer.param_groups]

    def step(self):
        self.last_epoch += 1
        factor = self.gamma ** (self.last_epoch // self.step_size)
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = base * factor

    def state_dict(self):
        return {"last_epoch": np.array(self.last_epoch), "step_size": np.array(self.step_size),
                "gamma": np.array(self.gamma), "base_lrs": np.array(self.base_lrs)}

    def load_state_dict(self, state_dict):
        base_lrs = [float(lr) for lr in np.asarray(state_dict["base_lrs"]).ravel()]
        groups = len(self.optimizer.param_groups)
        if len(base_lrs) != groups:
            raise ValueError("StepLR.load_state_dict: the checkpoint has %d learning rates for an "
                             "optimizer with %d group(s)" % (len(base_lrs), groups))
        self.last_epoch = int(state_dict["last_epoch"])
        self.step_size = int(state_dict["step_size"])
        self.gamma = float(state_dict["gamma"])
        self.base_lrs = base_lrs
