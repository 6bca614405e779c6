"""Module, Parameter and the containers Sequential and ModuleList.

A Module registers its Parameters and sub-Modules when they are assigned as attributes
(``self.weight = Parameter(...)``, ``self.encoder = Linear(...)``), so that
``parameters()``, ``state_dict()``, ``train()`` and the rest reach the whole tree, with
PyTorch's names and meanings.
"""
import os
from collections import OrderedDict, namedtuple
from collections.abc import Mapping

import numpy as np

from autograd_core import Tensor

from . import checkpoint

__all__ = ["Parameter", "Module", "Sequential", "ModuleList", "IncompatibleKeys"]


class Parameter(Tensor):
    """A leaf Tensor that a Module registers as trainable (requires_grad=True).

    ``data``: an array-like or Tensor. A floating numpy array or Tensor keeps its dtype
    (so float64 parameters work for gradcheck); anything else (Python numbers, lists,
    integer arrays) becomes float32 unless ``dtype`` says otherwise. The array is used
    as is, not copied, when its dtype already fits.
    """

    def __init__(self, data, requires_grad=True, dtype=None):
        if isinstance(data, Tensor):
            data = data.data
        if dtype is None:
            keeps_dtype = isinstance(data, np.ndarray) and data.dtype.kind == "f"
            dtype = data.dtype if keeps_dtype else np.float32
        super().__init__(np.asarray(data, dtype=dtype), requires_grad=requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()

    def __reduce_ex__(self, protocol):
        # Tensor has __slots__ and Parameter a __dict__: rebuild from the array instead
        return (Parameter, (self.data, self.requires_grad))


IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class Module:
    """Base class of layers and models: subclass, assign parts in ``__init__`` (after
    calling ``super().__init__()``), and define ``forward``; call the module to run it."""

    def __init__(self):
        # object.__setattr__: our own __setattr__ relies on these registries existing
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "training", True)

    # -- registration -----------------------------------------------------------------
    def _registries(self, name):
        registries = self.__dict__.get("_parameters")
        if registries is None:
            raise AttributeError("cannot assign %r to %s before Module.__init__() was called "
                                 "(call super().__init__() first)" % (name, type(self).__name__))
        return self.__dict__["_parameters"], self.__dict__["_modules"], self.__dict__["_buffers"]

    def __setattr__(self, name, value):
        # Registered values also live in __dict__, so that reading them is a plain
        # attribute lookup (no __getattr__ detour on every forward).
        if isinstance(value, Parameter):
            parameters, modules, buffers = self._registries(name)
            modules.pop(name, None)
            buffers.pop(name, None)
            parameters[name] = value
        elif isinstance(value, Module):
            parameters, modules, buffers = self._registries(name)
            parameters.pop(name, None)
            buffers.pop(name, None)
            modules[name] = value
        elif "_parameters" in self.__dict__:
            parameters, modules, buffers = self._registries(name)
            if name in parameters:
                if value is not None:
                    raise TypeError("%s.%s is a Parameter; cannot assign a %s to it (assign a Parameter "
                                    "or None)" % (type(self).__name__, name, type(value).__name__))
                parameters[name] = None
            elif name in modules:
                if value is not None:
                    raise TypeError("%s.%s is a sub-module; cannot assign a %s to it (assign a Module "
                                    "or None)" % (type(self).__name__, name, type(value).__name__))
                modules[name] = None
            elif name in buffers:
                buffers[name] = None if value is None else np.asarray(value)
                value = buffers[name]
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        for registry in ("_parameters", "_modules", "_buffers"):
            self.__dict__.get(registry, {}).pop(name, None)
        object.__delattr__(self, name)

    def register_parameter(self, name, param):
        """Register ``param`` (a Parameter, or None for an absent one such as bias=False)."""
        if param is not None and not isinstance(param, Parameter):
            raise TypeError("register_parameter: %r must be a Parameter or None, got %s"
                            % (name, type(param).__name__))
        if param is None:
            parameters, modules, buffers = self._registries(name)
            modules.pop(name, None)
            buffers.pop(name, None)
            parameters[name] = None
            object.__setattr__(self, name, None)
        else:
            setattr(self, name, param)

    def register_buffer(self, name, array):
        """Register a non-trainable numpy array (e.g. running statistics) that
        ``state_dict`` saves and ``load_state_dict`` restores."""
        parameters, modules, buffers = self._registries(name)
        parameters.pop(name, None)
        modules.pop(name, None)
        buffers[name] = None if array is None else np.asarray(array)
        object.__setattr__(self, name, buffers[name])

    def add_module(self, name, module):
        """Register ``module`` under ``name`` (names such as '0' suit containers)."""
        if module is not None and not isinstance(module, Module):
            raise TypeError("add_module: %r must be a Module or None, got %s" % (name, type(module).__name__))
        parameters, modules, buffers = self._registries(name)
        parameters.pop(name, None)
        buffers.pop(name, None)
        modules[name] = module
        object.__setattr__(self, name, module)

    # -- traversal ---------------------------------------------------------------------
    def named_modules(self, prefix="", memo=None):
        """(dotted name, module) for this module and every descendant, each once."""
        memo = set() if memo is None else memo
        if id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, module in self._modules.items():
            if module is not None:
                yield from module.named_modules(prefix + "." + name if prefix else name, memo)

    def modules(self):
        for _, module in self.named_modules():
            yield module

    def named_children(self):
        seen = set()
        for name, module in self._modules.items():
            if module is not None and id(module) not in seen:
                seen.add(id(module))
                yield name, module

    def children(self):
        for _, module in self.named_children():
            yield module

    def named_parameters(self, prefix="", recurse=True):
        """(dotted name, Parameter) pairs, e.g. ('encoder.0.weight', ...); a Parameter
        shared by several modules appears once, under the first name it is found at."""
        seen = set()
        modules = self.named_modules(prefix) if recurse else [(prefix, self)]
        for module_name, module in modules:
            for name, param in module._parameters.items():
                if param is None or id(param) in seen:
                    continue
                seen.add(id(param))
                yield (module_name + "." + name if module_name else name), param

    def parameters(self, recurse=True):
        for _, param in self.named_parameters(recurse=recurse):
            yield param

    def named_buffers(self, prefix=""):
        for module_name, module in self.named_modules(prefix):
            for name, buffer in module._buffers.items():
                if buffer is not None:
                    yield (module_name + "." + name if module_name else name), buffer

    def buffers(self):
        for _, buffer in self.named_buffers():
            yield buffer

    def apply(self, fn):
        """Call ``fn(module)`` on every descendant and then on self (e.g. to initialise)."""
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    # -- modes and gradients -----------------------------------------------------------------
    def train(self, mode=True):
        """Set training mode (Dropout active) on this module and all descendants."""
        if not isinstance(mode, bool):
            raise TypeError("train: mode must be a bool, got %s" % type(mode).__name__)
        for module in self.modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self):
        """Evaluation mode: ``train(False)``."""
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        for param in self.parameters():
            param.requires_grad_(requires_grad)
        return self

    def to(self, dtype):
        """Convert every floating parameter and buffer to ``dtype`` (e.g. np.float64 for
        gradcheck) in place on the Parameter objects; gradients are dropped. Returns self.
        Optimizers created before keep working (they hold the Parameters, not arrays)."""
        dtype = np.dtype(dtype)
        if dtype.kind != "f":
            raise TypeError("%s.to: expected a float dtype, got %s" % (type(self).__name__, dtype))
        for param in self.parameters():
            if param.data.dtype != dtype:
                param.data = param.data.astype(dtype)
                param.grad = None
        for module in self.modules():
            for name, buffer in list(module._buffers.items()):
                if buffer is not None and buffer.dtype.kind == "f" and buffer.dtype != dtype:
                    module.register_buffer(name, buffer.astype(dtype))
        return self

    def double(self):
        """``to(np.float64)``."""
        return self.to(np.float64)

    def float(self):
        """``to(np.float32)``."""
        return self.to(np.float32)

    def zero_grad(self, set_to_none=True):
        """Clear every parameter's gradient: drop it (default) or zero it in place."""
        for param in self.parameters():
            if param.grad is None:
                continue
            if set_to_none:
                param.grad = None
            else:
                param.grad.data[...] = 0

    # -- calling -----------------------------------------------------------------------
    def forward(self, *args, **kwargs):
        raise NotImplementedError("%s must define forward()" % type(self).__name__)

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # -- checkpoints -------------------------------------------------------------------
    def state_dict(self):
        """OrderedDict of dotted name -> numpy copy of every parameter and buffer.

        Shared parameters appear once (as in ``named_parameters``).
        """
        result = OrderedDict()
        for name, param in self.named_parameters():
            result[name] = param.data.copy()
        for name, buffer in self.named_buffers():
            result[name] = np.array(buffer, copy=True)
        return result

    def _state_targets(self):
        """name -> (owning module, attribute name, current array), the state_dict's keys."""
        targets = OrderedDict()
        seen = set()
        for module_name, module in self.named_modules():
            for registry in (module._parameters, module._buffers):
                for name, value in registry.items():
                    if value is None or id(value) in seen:
                        continue
                    seen.add(id(value))
                    array = value.data if isinstance(value, Tensor) else value
                    targets[module_name + "." + name if module_name else name] = (module, name, array)
        return targets

    def load_state_dict(self, state_dict, strict=True):
        """Copy arrays from ``state_dict`` into the parameters and buffers, in place.

        ``state_dict`` is a dict of name -> array or Tensor, or the path of a file that
        holds one: a checkpoint written by the CLI (its model state), an
        ``autograd_core.save`` file of a state dict, or an ``nn.checkpoint.save`` file.

        With ``strict`` (default), keys missing from ``state_dict`` or not belonging to
        this module raise a ValueError naming them; otherwise they are returned as
        ``IncompatibleKeys(missing_keys, unexpected_keys)``. A shape mismatch always
        raises a ValueError naming the key and both shapes. Nothing is changed when an
        error is raised. Values are cast to each parameter's dtype.
        """
        owner = type(self).__name__
        if isinstance(state_dict, (str, os.PathLike)):
            state_dict = checkpoint.read_state_dict(state_dict)
        elif not isinstance(state_dict, Mapping):
            raise TypeError("%s.load_state_dict: got %s, expected a dict of name -> array or the path of a "
                            "checkpoint file" % (owner, type(state_dict).__name__))
        targets = self._state_targets()
        missing = [name for name in targets if name not in state_dict]
        unexpected = [name for name in state_dict if name not in targets]
        if strict and (missing or unexpected):
            parts = []
            if missing:
                parts.append("missing keys %s" % missing)
            if unexpected:
                parts.append("unexpected keys %s" % unexpected)
            raise ValueError("%s.load_state_dict: %s" % (owner, "; ".join(parts)))
        arrays = {}
        for name, (module, attribute, current) in targets.items():
            if name not in state_dict:
                continue
            value = state_dict[name]
            if isinstance(value, Mapping):
                raise TypeError("%s.load_state_dict: the entry %r is a dict, expected an array or Tensor (a "
                                "nested checkpoint? pass its model part)" % (owner, name))
            value = np.asarray(value.data if isinstance(value, Tensor) else value)
            if value.dtype.kind not in "biuf":
                raise TypeError("%s.load_state_dict: the entry %r has dtype %s, expected numbers"
                                % (owner, name, value.dtype))
            if value.shape != current.shape:
                raise ValueError("%s.load_state_dict: shape mismatch for %r: the checkpoint has %s, "
                                 "the module has %s" % (owner, name, value.shape, current.shape))
            arrays[name] = value
        for name, value in arrays.items():
            module, attribute, current = targets[name]
            # in place: optimizers and tied modules keep referring to the same arrays
            np.copyto(current, value, casting="unsafe")
            tensor = getattr(module, attribute, None)
            if isinstance(tensor, Tensor):  # a backward that saved the old values would be wrong
                tensor.increment_version("%s.load_state_dict" % owner)
        return IncompatibleKeys(missing, unexpected)

    # -- printing ----------------------------------------------------------------------
    def extra_repr(self):
        """The text inside this module's parentheses in ``repr`` (layers override it)."""
        return ""

    def __repr__(self):
        lines = []
        extra = self.extra_repr()
        if extra:
            lines.extend(extra.split("\n"))
        for name, module in self._modules.items():
            text = repr(module).replace("\n", "\n  ")
            lines.append("(%s): %s" % (name, text))
        name = type(self).__name__
        if not lines:
            return name + "()"
        if len(lines) == 1 and not self._modules:
            return "%s(%s)" % (name, lines[0])
        return name + "(\n  " + "\n  ".join(lines) + "\n)"


# Filled by layers.py (module.py imports no layer): the layer types whose forward takes
# activation=, and the activation modules Sequential may fold into them ({type: name}).
FUSED_ACTIVATION_LAYERS = set()
FUSED_ACTIVATIONS = {}


class Sequential(Module):
    """Runs its modules in order, each one's output the next one's input.

    ``Sequential(a, b, c)`` names them '0', '1', '2'; ``Sequential(OrderedDict(...))``
    uses the given names.
    """

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, module in modules[0].items():
                self._add(str(name), module)
        else:
            for index, module in enumerate(modules):
                self._add(str(index), module)

    def _add(self, name, module):
        if not isinstance(module, Module):
            raise TypeError("Sequential: element %s must be a Module, got %s" % (name, type(module).__name__))
        self.add_module(name, module)

    def append(self, module):
        self._add(str(len(self._modules)), module)
        return self

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, index):
        modules = list(self._modules.items())
        if isinstance(index, slice):
            return Sequential(OrderedDict(modules[index]))
        try:
            return modules[index][1]
        except (IndexError, TypeError):
            raise IndexError("Sequential: index %r out of range for %d modules" % (index, len(modules))) from None

    def forward(self, x):
        """Each module on the previous one's output. A Linear or Conv2d directly followed
        by a ReLU runs as one fused op (layer.forward(x, activation='relu')): the bias and
        the ReLU in one pass and the ReLU's mask kept as bits, the same result as the two
        modules one after the other."""
        pending = None  # a fusable layer waiting to see whether a ReLU follows it
        for module in self._modules.values():
            if pending is not None:
                activation = FUSED_ACTIVATIONS.get(type(module))
                if activation is not None:
                    x = pending.forward(x, activation=activation)
                    pending = None
                    continue
                x = pending(x)
                pending = None
            if type(module) in FUSED_ACTIVATION_LAYERS:
                pending = module
            else:
                x = module(x)
        return pending(x) if pending is not None else x


class ModuleList(Module):
    """A list of modules, registered so their parameters belong to the owner; it has no
    forward of its own (iterate over it)."""

    def __init__(self, modules=()):
        super().__init__()
        self.extend(modules)

    def _check(self, module):
        if not isinstance(module, Module):
            raise TypeError("ModuleList: expected a Module, got %s" % type(module).__name__)
        return module

    def _renumber(self, modules):
        for name in list(self._modules):
            object.__delattr__(self, name)
        self._modules.clear()
        for index, module in enumerate(modules):
            self.add_module(str(index), module)

    def append(self, module):
        self.add_module(str(len(self._modules)), self._check(module))
        return self

    def extend(self, modules):
        for module in modules:
            self.append(module)
        return self

    def insert(self, index, module):
        modules = list(self._modules.values())
        modules.insert(index, self._check(module))
        self._renumber(modules)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def _index(self, index):
        size = len(self._modules)
        if not isinstance(index, int) or not -size <= index < size:
            raise IndexError("ModuleList: index %r out of range for %d modules" % (index, size))
        return index % size

    def __getitem__(self, index):
        if isinstance(index, slice):
            return ModuleList(list(self._modules.values())[index])
        return self._modules[str(self._index(index))]

    def __setitem__(self, index, module):
        self.add_module(str(self._index(index)), self._check(module))

    def __delitem__(self, index):
        modules = list(self._modules.values())
        del modules[self._index(index)]
        self._renumber(modules)
