"""Optimizers, gradient clipping and learning-rate schedules (torch.optim's vocabulary).

The update rules are PyTorch's (same hyperparameter names and meanings). Each step updates
``p.data`` in place from ``p.grad``, a float32 parameter staying float32 (the
hyperparameters are Python floats, which numpy does not let widen an array's dtype).
Parameters whose ``grad`` is None are skipped. SGD, Adam (without amsgrad) and RMSprop
run in autograd_core/kernels/optim.py: one fused C call per group and dtype updates all
the group's parameters, bit for bit the numpy reference written there, which runs instead
for what C does not take (strided parameters, mixed dtypes, the 'numpy' backend). AdamW
decays the weights with one numpy multiply and then takes that same fused Adam step. The
other optimizers (Adagrad, Adadelta, Adamax, NAdam, RAdam, Adam with amsgrad) are numpy,
vectorised over each parameter.
Each step bumps every updated parameter's version (``Tensor.increment_version``), so
that a backward through a graph built before the step raises instead of silently using
the new weights, as in PyTorch.

``param_groups`` is torch's: a list of dicts, each with 'params' and every
hyperparameter; a group's 'lr' may be changed between steps (that is what the schedulers
of ``nn.optim.lr_scheduler`` do). ``add_param_group`` adds one.

``state_dict()`` is torch's structure::

    {"state": {index: {"step": int, "exp_avg": array, ...}},   # index counts parameters
     "param_groups": [{"lr": ..., ..., "params": [indices]}]}  # over all groups in order

``flat_state_dict()`` is the same content flat, names -> numpy arrays, ready for
``np.savez`` (and what nn.checkpoint stores):
  ``group.{g}.{hyperparameter}``      0-d arrays (lr, momentum, betas as a 2-vector, ...)
  ``state.{i}.{buffer}``              per-parameter buffers
  ``state.{i}.step``                  per-parameter step counts
``load_state_dict`` takes either form.
"""
import math
import sys

import numpy as np

from autograd_core.kernels import optim as optim_kernels

from .clip import _grad_array, clip_grad_norm_, clip_grad_value_

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "Adamax", "NAdam", "RAdam",
           "clip_grad_norm_", "clip_grad_value_", "lr_scheduler", "StepLR"]

# Elements per chunk of the numpy reference update (autograd_core/kernels/optim.py).
_CHUNK = optim_kernels.CHUNK

# Group entries the learning-rate schedulers add (as torch's do): accepted in groups and
# in state dicts next to an optimizer's own hyperparameters.
_SCHEDULE_KEYS = ("initial_lr", "max_lr", "min_lr", "max_momentum", "base_momentum")
# Group entries of torch's optimizers that select its implementation, not the update:
# a torch state dict carrying them at their defaults loads here.
_TORCH_IMPLEMENTATION_KEYS = {"foreach": (None, False), "capturable": (False,), "differentiable": (False,),
                              "fused": (None, False), "maximize": (False,)}


class Optimizer:
    """Holds parameter groups and per-parameter state; subclasses define ``_check_group``,
    ``_prepare`` and ``_step_group`` (or ``_update`` for a numpy update per parameter).

    ``params`` is an iterable of Parameters, or of dicts ``{"params": [...], **overrides}``
    (parameter groups with their own hyperparameters, e.g. a different ``lr``).
    """

    # Per-parameter buffers that state_dict saves, in subclasses' order.
    _buffer_names = ()
    _scalar_names = ()  # per-parameter float state (NAdam's mu_product)
    _counted = False  # whether the state has a per-parameter step count

    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        name = type(self).__name__
        if hasattr(params, "data") and not isinstance(params, (list, tuple, dict)):
            raise TypeError("%s: params must be an iterable of Parameters or dicts, got a single %s "
                            "(wrap it in a list)" % (name, type(params).__name__))
        if isinstance(params, dict):
            params = [params]
        params = list(params)
        if not params:
            raise ValueError("%s: got an empty parameter list" % name)
        if not isinstance(params[0], dict):
            params = [{"params": params}]
        self.param_groups = []
        # Per-parameter state, keyed by id(param): the parameters themselves outlive it
        # because param_groups holds them.
        self.state = {}
        self._caches = {}  # group index -> optim_kernels.StepCache (pointer tables, scratch)
        for group in params:
            self.add_param_group(group)

    def add_param_group(self, param_group):
        """Add a group ``{"params": [...], **overrides}``; options it leaves out take the
        optimizer's defaults. A parameter may belong to one group only."""
        name, index = type(self).__name__, len(self.param_groups)
        if not isinstance(param_group, dict) or "params" not in param_group:
            raise TypeError("%s: parameter group %d must be a dict with a 'params' entry, got %s"
                            % (name, index, type(param_group).__name__ if not isinstance(param_group, dict)
                               else "a dict with keys %s" % sorted(param_group)))
        unknown = set(param_group) - set(self.defaults) - {"params"} - set(_SCHEDULE_KEYS)
        if unknown:
            raise ValueError("%s: parameter group %d has unknown options %s, expected some of %s"
                             % (name, index, sorted(unknown), sorted(self.defaults)))
        members = param_group["params"]
        if isinstance(members, set):
            raise TypeError("%s: parameter group %d holds its parameters in a set, expected an ordered "
                            "sequence (a set's order changes between runs)" % (name, index))
        members = [members] if hasattr(members, "data") else list(members)
        if not members:
            raise ValueError("%s: parameter group %d has no parameters" % (name, index))
        owners = {id(param): g for g, group in enumerate(self.param_groups) for param in group["params"]}
        seen = set()
        for param in members:
            if not isinstance(getattr(param, "data", None), np.ndarray):
                raise TypeError("%s: expected Parameters (objects with a numpy .data), got %s"
                                % (name, type(param).__name__))
            if id(param) in seen:
                raise ValueError("%s: a parameter appears in more than one place in params (twice in "
                                 "group %d)" % (name, index))
            if id(param) in owners:
                raise ValueError("%s: a parameter appears in more than one place in params (groups %d and "
                                 "%d): each parameter belongs to one group" % (name, owners[id(param)], index))
            seen.add(id(param))
        full = dict(self.defaults)
        full.update(param_group)
        full["params"] = members
        self._check_group(full, "parameter group %d" % index if index or len(param_group) > 1 else None)
        self.param_groups.append(full)

    def _check_group(self, group, where):
        """Raise ValueError naming the optimizer (and ``where``: the group, or None for the
        constructor's arguments) when a hyperparameter is out of range."""

    def _bad(self, where, message):
        return ValueError("%s: %s%s" % (type(self).__name__, "%s: " % where if where else "", message))

    def _non_negative(self, group, where, *names):
        for key in names:
            value = group[key]
            if not (isinstance(value, (int, float, np.number)) and value >= 0.0):
                raise self._bad(where, "%s must be >= 0, got %r" % (key, value))

    def _check_betas(self, group, where):
        betas = group["betas"]
        try:
            betas = tuple(float(b) for b in betas)
        except (TypeError, ValueError):
            betas = None
        if betas is None or len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
            raise self._bad(where, "betas must be two numbers in [0, 1), got %r" % (group["betas"],))
        group["betas"] = betas

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

    def step(self, closure=None):
        """Apply one update to every parameter that has a gradient. ``closure`` (optional,
        as torch's) re-evaluates the loss first; its result is returned."""
        loss = closure() if closure is not None else None
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
        return loss

    def _prepare(self, state, data, group):
        """Once per parameter and step, before the update: create the state arrays it needs
        (full size, C-contiguous) and advance counters. Returns what the update needs to
        know of this parameter (e.g. its step)."""
        for name in self._buffer_names:
            self._ensure(state, name, data)
        if self._counted:
            state["step"] = state.get("step", 0) + 1
            return state["step"]
        return None

    def _step_group(self, group, members, cache):
        """Update every member (data, grad, state, prepared) of one group in place. This
        default runs ``_update`` on each parameter; the fused optimizers make one call of
        autograd_core.kernels.optim (``cache`` is this group's StepCache)."""
        for data, grad, state, prepared in members:
            self._update(group, data, grad, state, prepared)

    def _update(self, group, data, grad, state, step):
        raise NotImplementedError

    @staticmethod
    def _ensure(state, name, data, fill=0.0):
        """Create state[name] as ``fill`` shaped like the parameter, unless it exists."""
        if name not in state:
            state[name] = np.full(data.shape, fill, dtype=data.dtype)

    # -- checkpoints ---------------------------------------------------------------------
    def _all_params(self):
        return [param for group in self.param_groups for param in group["params"]]

    def state_dict(self):
        """torch's structure (see the module docstring): {'state': {index: {name: value}},
        'param_groups': [{hyperparameters..., 'params': [indices]}]}; arrays are copies."""
        state, groups, start = {}, [], 0
        for group in self.param_groups:
            count = len(group["params"])
            saved = {key: value for key, value in group.items() if key != "params"}
            saved["params"] = list(range(start, start + count))
            groups.append(saved)
            start += count
        for i, param in enumerate(self._all_params()):
            own = self.state.get(id(param))
            if not own:
                continue
            state[i] = {key: value.copy() if isinstance(value, np.ndarray) else value for key, value in own.items()}
        return {"state": state, "param_groups": groups}

    def flat_state_dict(self):
        """The state as a flat dict of numpy arrays (see the module docstring), for
        ``np.savez``; ``load_state_dict`` takes it back."""
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
            for name in self._scalar_names:
                if name in state:
                    result["state.%d.%s" % (i, name)] = np.array(state[name], dtype=np.float64)
            if "step" in state:
                result["state.%d.step" % i] = np.array(state["step"], dtype=np.int64)
        return result

    def load_state_dict(self, state_dict):
        """Restore hyperparameters and state saved by ``state_dict`` (torch's structure,
        also a torch optimizer's with its tensors) or ``flat_state_dict`` (or loaded from
        .npz). Everything is checked before anything changes."""
        if "state" in state_dict or "param_groups" in state_dict:
            state_dict = self._flatten(state_dict)
        self._load_flat(state_dict)

    def _flatten(self, state_dict):
        """torch's structure -> the flat form, checking the structure on the way."""
        name = type(self).__name__
        if set(state_dict) != {"state", "param_groups"}:
            raise ValueError("%s.load_state_dict: got keys %s, expected 'state' and 'param_groups'"
                             % (name, sorted(map(str, state_dict))))
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError("%s.load_state_dict: the state dict has %d parameter group(s), the optimizer %d"
                             % (name, len(groups), len(self.param_groups)))
        flat, position = {}, {}
        start = 0
        for g, (saved, own) in enumerate(zip(groups, self.param_groups)):
            if "params" not in saved:
                raise ValueError("%s.load_state_dict: parameter group %d has no 'params' list" % (name, g))
            if len(saved["params"]) != len(own["params"]):
                raise ValueError("%s.load_state_dict: parameter group %d has %d parameter(s) in the state dict, "
                                 "%d in the optimizer" % (name, g, len(saved["params"]), len(own["params"])))
            for offset, saved_index in enumerate(saved["params"]):
                position[saved_index] = start + offset
            start += len(own["params"])
            for key, value in saved.items():
                if key == "params" or (key in _TORCH_IMPLEMENTATION_KEYS and key not in self.defaults
                                       and any(value is v for v in _TORCH_IMPLEMENTATION_KEYS[key])):
                    continue
                flat["group.%d.%s" % (g, key)] = value
        for saved_index, entries in state_dict["state"].items():
            if saved_index not in position:
                raise ValueError("%s.load_state_dict: the state names parameter %r, which no parameter group "
                                 "lists" % (name, saved_index))
            for key, value in entries.items():
                if value is None:  # torch's SGD keeps momentum_buffer None without momentum
                    continue
                if key == "step" and not self._counted:  # torch counts RMSprop's steps, no rule uses them
                    continue
                value = np.asarray(value)
                if key == "step" and value.dtype.kind == "f" and value.shape == () and float(value).is_integer():
                    value = value.astype(np.int64)  # torch counts steps in a float tensor
                flat["state.%d.%s" % (position[saved_index], key)] = value
        return flat

    def _load_flat(self, state_dict):
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
                if field not in self.defaults and field not in _SCHEDULE_KEYS:
                    raise ValueError("%s.load_state_dict: unexpected key %r (unknown hyperparameter)"
                                     % (name, key))
                # a crafted value (text, nan, a wrong shape) would fail, or corrupt, a later step
                like = self.defaults.get(field, 0.0)
                if (value.dtype.kind not in "biuf" or value.shape != np.shape(like)
                        or not np.all(np.isfinite(value))):
                    raise ValueError("%s.load_state_dict: %r is %r, expected a finite number like %r"
                                     % (name, key, value, like))
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
            elif field in self._scalar_names:
                if value.shape != () or value.dtype.kind not in "iuf" or not np.isfinite(value):
                    raise ValueError("%s.load_state_dict: %r is %r, expected a finite number"
                                     % (name, key, value))
                slot[field] = float(value)
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


def _decay_weights(members, lr, weight_decay):
    """Decoupled weight decay (AdamW, and NAdam/RAdam with decoupled_weight_decay):
    p *= 1 - lr * weight_decay, before the update, as torch."""
    if weight_decay and lr:
        factor = 1.0 - lr * weight_decay
        for data, _grad, _state, _step in members:
            np.multiply(data, factor, out=data)


def _with_weight_decay(data, grad, weight_decay):
    """grad + weight_decay * data, a new array (the gradient itself is the parameter's)."""
    return grad + weight_decay * data if weight_decay else grad


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum and weight decay.

    With g = grad + weight_decay * p:
      buf = g on the first step, then buf = momentum * buf + (1 - dampening) * g
      g = g + momentum * buf (nesterov) or g = buf
      p = p - lr * g
    """
    _buffer_names = ("momentum_buffer",)

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))

    def _check_group(self, group, where):
        self._non_negative(group, where, "lr", "momentum", "weight_decay")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise self._bad(where, "nesterov momentum needs momentum > 0 and dampening = 0, got "
                                   "momentum=%r, dampening=%r" % (group["momentum"], group["dampening"]))

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
    """Adam (Kingma & Ba) with PyTorch's L2-style weight_decay (added to the gradient), or
    AdamW's decoupled decay with ``decoupled_weight_decay=True``.

    m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2
    p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
    with ``amsgrad``, v_max = max(v_max, v) replaces v in the denominator.
    """
    _buffer_names = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")  # the last with amsgrad only
    _counted = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False,
                 decoupled_weight_decay=False):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                                      decoupled_weight_decay=decoupled_weight_decay))

    def _check_group(self, group, where):
        self._non_negative(group, where, "lr", "eps", "weight_decay")
        self._check_betas(group, where)

    def _prepare(self, state, data, group):
        self._ensure(state, "exp_avg", data)
        self._ensure(state, "exp_avg_sq", data)
        if group["amsgrad"]:
            self._ensure(state, "max_exp_avg_sq", data)
        state["step"] = state.get("step", 0) + 1
        return state["step"]

    def _step_group(self, group, members, cache):
        weight_decay = group["weight_decay"]
        if group["decoupled_weight_decay"]:
            _decay_weights(members, group["lr"], weight_decay)
            weight_decay = 0.0
        if group["amsgrad"]:
            for data, grad, state, step in members:
                self._amsgrad_update(group, data, grad, state, step, weight_decay)
            return
        optim_kernels.adam_step(
            [m[0] for m in members], [m[1] for m in members], [m[2]["exp_avg"] for m in members],
            [m[2]["exp_avg_sq"] for m in members], [m[3] for m in members],
            group["lr"], group["betas"], group["eps"], weight_decay, cache)

    @staticmethod
    def _amsgrad_update(group, data, grad, state, step, weight_decay):
        beta1, beta2 = group["betas"]
        g = _with_weight_decay(data, grad, weight_decay)
        exp_avg, exp_avg_sq, max_sq = state["exp_avg"], state["exp_avg_sq"], state["max_exp_avg_sq"]
        exp_avg *= beta1
        exp_avg += (1.0 - beta1) * g
        exp_avg_sq *= beta2
        exp_avg_sq += (1.0 - beta2) * (g * g)
        np.maximum(max_sq, exp_avg_sq, out=max_sq)
        denominator = np.sqrt(max_sq) / math.sqrt(1.0 - beta2 ** step) + group["eps"]
        data -= (group["lr"] / (1.0 - beta1 ** step)) * (exp_avg / denominator)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), torch's AdamW: each step
    first shrinks p by (1 - lr * weight_decay), then takes Adam's step without decay."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False):
        Optimizer.__init__(self, params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                              amsgrad=amsgrad, decoupled_weight_decay=True))


class RMSprop(Optimizer):
    """RMSprop, PyTorch's form (eps outside the square root).

    v = alpha v + (1 - alpha) g^2; with centered, avg = sqrt(v - mean_g^2) + eps else sqrt(v) + eps
    momentum > 0: buf = momentum buf + g / avg, p -= lr buf;  else p -= lr g / avg
    """
    _buffer_names = ("square_avg", "momentum_buffer", "grad_avg")

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                 centered=False):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered))

    def _check_group(self, group, where):
        self._non_negative(group, where, "lr", "eps", "weight_decay", "momentum")
        if not 0.0 <= group["alpha"] <= 1.0:
            raise self._bad(where, "alpha must be in [0, 1], got %r" % (group["alpha"],))

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


class Adagrad(Optimizer):
    """Adagrad: sum += g^2;  p -= lr / (1 + (t - 1) lr_decay) * g / (sqrt(sum) + eps),
    with g = grad + weight_decay * p; ``sum`` starts at initial_accumulator_value."""
    _buffer_names = ("sum",)
    _counted = True

    def __init__(self, params, lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10):
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value, eps=eps))

    def _check_group(self, group, where):
        self._non_negative(group, where, "lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps")

    def _prepare(self, state, data, group):
        self._ensure(state, "sum", data, group["initial_accumulator_value"])
        return super()._prepare(state, data, group)

    def _update(self, group, data, grad, state, step):
        g = _with_weight_decay(data, grad, group["weight_decay"])
        total = state["sum"]
        total += g * g
        rate = group["lr"] / (1.0 + (step - 1) * group["lr_decay"])
        data -= rate * (g / (np.sqrt(total) + group["eps"]))


class Adadelta(Optimizer):
    """Adadelta: v = rho v + (1 - rho) g^2;  d = sqrt(u + eps) / sqrt(v + eps) * g;
    u = rho u + (1 - rho) d^2;  p -= lr d  (g = grad + weight_decay * p)."""
    _buffer_names = ("square_avg", "acc_delta")
    _counted = True

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay))

    def _check_group(self, group, where):
        self._non_negative(group, where, "lr", "eps", "weight_decay")
        if not 0.0 <= group["rho"] <= 1.0:
            raise self._bad(where, "rho must be in [0, 1], got %r" % (group["rho"],))

    def _update(self, group, data, grad, state, step):
        rho, eps = group["rho"], group["eps"]
        g = _with_weight_decay(data, grad, group["weight_decay"])
        square_avg, acc_delta = state["square_avg"], state["acc_delta"]
        square_avg *= rho
        square_avg += (1.0 - rho) * (g * g)
        delta = np.sqrt(acc_delta + eps) / np.sqrt(square_avg + eps) * g
        acc_delta *= rho
        acc_delta += (1.0 - rho) * (delta * delta)
        data -= group["lr"] * delta


class Adamax(Optimizer):
    """Adamax (Adam with the infinity norm): m = beta1 m + (1 - beta1) g;
    u = max(beta2 u, |g| + eps);  p -= lr / (1 - beta1^t) * m / u."""
    _buffer_names = ("exp_avg", "exp_inf")
    _counted = True

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    def _check_group(self, group, where):
        self._non_negative(group, where, "lr", "eps", "weight_decay")
        self._check_betas(group, where)

    def _update(self, group, data, grad, state, step):
        beta1, beta2 = group["betas"]
        g = _with_weight_decay(data, grad, group["weight_decay"])
        exp_avg, exp_inf = state["exp_avg"], state["exp_inf"]
        exp_avg *= beta1
        exp_avg += (1.0 - beta1) * g
        exp_inf *= beta2
        np.maximum(exp_inf, np.abs(g) + group["eps"], out=exp_inf)
        data -= (group["lr"] / (1.0 - beta1 ** step)) * (exp_avg / exp_inf)


class NAdam(Optimizer):
    """NAdam (Adam with Nesterov momentum, Dozat), torch's form with the momentum
    schedule mu_t = beta1 (1 - 0.5 * 0.96^(t momentum_decay)):
      m, v as Adam;  denom = sqrt(v / (1 - beta2^t)) + eps
      p -= lr (1 - mu_t) / (1 - prod mu) g / denom + lr mu_{t+1} / (1 - prod mu * mu_{t+1}) m / denom
    """
    _buffer_names = ("exp_avg", "exp_avg_sq")
    _scalar_names = ("mu_product",)
    _counted = True

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, momentum_decay=4e-3,
                 decoupled_weight_decay=False):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      momentum_decay=momentum_decay, decoupled_weight_decay=decoupled_weight_decay))

    def _check_group(self, group, where):
        self._non_negative(group, where, "lr", "eps", "weight_decay", "momentum_decay")
        self._check_betas(group, where)

    def _step_group(self, group, members, cache):
        if group["decoupled_weight_decay"]:
            _decay_weights(members, group["lr"], group["weight_decay"])
        super()._step_group(group, members, cache)

    def _update(self, group, data, grad, state, step):
        beta1, beta2 = group["betas"]
        lr, decay = group["lr"], group["momentum_decay"]
        g = grad if group["decoupled_weight_decay"] else _with_weight_decay(data, grad, group["weight_decay"])
        mu = beta1 * (1.0 - 0.5 * 0.96 ** (step * decay))
        mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((step + 1) * decay))
        product = state["mu_product"] = state.get("mu_product", 1.0) * mu
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        exp_avg *= beta1
        exp_avg += (1.0 - beta1) * g
        exp_avg_sq *= beta2
        exp_avg_sq += (1.0 - beta2) * (g * g)
        denominator = np.sqrt(exp_avg_sq / (1.0 - beta2 ** step)) + group["eps"]
        data -= (lr * (1.0 - mu) / (1.0 - product)) * (g / denominator)
        data -= (lr * mu_next / (1.0 - product * mu_next)) * (exp_avg / denominator)


class RAdam(Optimizer):
    """RAdam (rectified Adam, Liu et al.): m, v as Adam; with rho_inf = 2 / (1 - beta2) - 1
    and rho_t = rho_inf - 2 t beta2^t / (1 - beta2^t), the step is Adam's scaled by the
    rectification r_t when rho_t > 5, else plain momentum: p -= lr m / (1 - beta1^t)."""
    _buffer_names = ("exp_avg", "exp_avg_sq")
    _counted = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 decoupled_weight_decay=False):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      decoupled_weight_decay=decoupled_weight_decay))

    def _check_group(self, group, where):
        self._non_negative(group, where, "lr", "eps", "weight_decay")
        self._check_betas(group, where)

    def _step_group(self, group, members, cache):
        if group["decoupled_weight_decay"]:
            _decay_weights(members, group["lr"], group["weight_decay"])
        super()._step_group(group, members, cache)

    def _update(self, group, data, grad, state, step):
        beta1, beta2 = group["betas"]
        g = grad if group["decoupled_weight_decay"] else _with_weight_decay(data, grad, group["weight_decay"])
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        exp_avg *= beta1
        exp_avg += (1.0 - beta1) * g
        exp_avg_sq *= beta2
        exp_avg_sq += (1.0 - beta2) * (g * g)
        bias_correction1 = 1.0 - beta1 ** step
        bias_correction2 = 1.0 - beta2 ** step
        rho_inf = 2.0 / (1.0 - beta2) - 1.0
        rho = rho_inf - 2.0 * step * beta2 ** step / bias_correction2
        rate = group["lr"] / bias_correction1
        if rho > 5.0:
            rectification = math.sqrt((rho - 4.0) * (rho - 2.0) * rho_inf / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho))
            adaptive = math.sqrt(bias_correction2) / (np.sqrt(exp_avg_sq) + group["eps"])
            data -= (rate * rectification) * (exp_avg * adaptive)
        else:
            data -= rate * exp_avg


# torch.optim.lr_scheduler is nn.optim.lr_scheduler here (nn/lr_scheduler.py); StepLR
# stays reachable as nn.optim.StepLR.
from . import lr_scheduler  # noqa: E402
from .lr_scheduler import StepLR  # noqa: E402

sys.modules.setdefault(__name__ + ".lr_scheduler", lr_scheduler)
