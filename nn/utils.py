"""Utilities on whole models, in torch.nn.utils's place: converting state dicts between
PyTorch's layout and this library's (load_torch_state_dict, torch_state_dict), and the
gradient clipping functions (defined in nn/clip.py)."""
import os
from collections import OrderedDict
from collections.abc import Mapping

import numpy as np

from autograd_core import Tensor
from autograd_core.ops.convolution import ours_conv_weight_to_torch, torch_conv_weight_to_ours
from autograd_core.serialization import is_safetensors, read_safetensors

from . import checkpoint
from .clip import clip_grad_norm_, clip_grad_value_
from .module import IncompatibleKeys, Module, Sequential

__all__ = ["clip_grad_norm_", "clip_grad_value_", "load_torch_state_dict", "torch_state_dict"]


# ---- PyTorch state dicts: weights in torch's layout (issue 14, item 6) ----------------------
#
# Parameter names here are torch's, so a torch state dict maps onto a model by name. Only
# the layout of some weights differs, because this library is channels-last:
#
# * convolutions (Conv1d/2d/3d, ConvTranspose1d/2d/3d, told apart by the owning module's
#   type): torch's weight [c_out, c_in/groups, *kernel] is ours [*kernel, c_in/groups,
#   c_out] (torch_conv_weight_to_ours; a transposed conv's [c_in, c_out/groups, *kernel]
#   likewise);
# * a Linear that reads a flattened feature map: torch flattens [C, *spatial] and we
#   flatten [*spatial, C], so its input columns are permuted (see ``flattened_from``);
# * everything else as is: Linear [out, in] and Embedding are torch's shapes, RNN/LSTM/GRU
#   (and their cells) keep torch's names weight_ih_l{k}, weight_hh_l{k}, bias_ih_l{k},
#   bias_hh_l{k} and torch's gate order (i, f, g, o for the LSTM, r, z, n for the GRU: see
#   nn/recurrent.py), normalization layers torch's weight, bias, running_mean, running_var.
#
# ``num_batches_tracked`` is the one key torch itself treats as optional (its BatchNorm
# loads a state dict without it): a model here that lacks the buffer ignores torch's, and
# one that has it keeps its value when torch's dict lacks it.

_CONV_TYPES = frozenset({"Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"})
_OPTIONAL_KEY = "num_batches_tracked"


def _is_conv(module):
    # by type name along the MRO: the conv layers of other nn modules and subclasses of them
    # count without this module importing each one
    return any(cls.__name__ in _CONV_TYPES for cls in type(module).__mro__)


def _layer_name(module):
    """How errors name a layer: its class and its construction arguments."""
    text = module.extra_repr() if hasattr(module, "extra_repr") else ""
    return "%s(%s)" % (type(module).__name__, text)


def _flattened_linears(model):
    """{name of a Linear: channels} for each Linear that, inside an nn.Sequential, reads the
    Flatten of a convolution's feature map (the last conv before the Flatten gives the
    channels; pooling, activations, normalization and dropout in between keep them)."""
    found = {}
    for prefix, container in model.named_modules():
        if not isinstance(container, Sequential):
            continue
        channels, flattened = None, None
        for name, module in _sequential_children(container, prefix):
            kind = type(module).__name__
            if _is_conv(module):
                channels, flattened = getattr(module, "out_channels", None), None
            elif kind == "Flatten":
                flattened, channels = channels, None
            elif kind == "Linear":
                if flattened and module.in_features % flattened == 0 and module.in_features != flattened:
                    found[name] = flattened
                channels = flattened = None
    return found


def _sequential_children(container, prefix):
    """(dotted name, module) of a Sequential's children in order, nested Sequentials inlined."""
    for name, module in container.named_children():
        full = prefix + "." + name if prefix else name
        if isinstance(module, Sequential):
            yield from _sequential_children(module, full)
        else:
            yield full, module


def _flatten_plan(model, flattened_from, where):
    if flattened_from is None:
        return _flattened_linears(model)
    if not isinstance(flattened_from, Mapping):
        raise TypeError("%s: flattened_from must be a dict {name of a Linear: channels}, got %s"
                        % (where, type(flattened_from).__name__))
    modules = dict(model.named_modules())
    plan = {}
    for name, channels in flattened_from.items():
        module = modules.get(name)
        weight = getattr(module, "weight", None) if module is not None else None
        if weight is None or len(weight.shape) != 2:
            raise ValueError("%s: flattened_from names %r, which is not a layer with a 2-D weight (a Linear) in "
                             "this model" % (where, name))
        if isinstance(channels, bool) or not isinstance(channels, (int, np.integer)) or channels < 1 \
                or weight.shape[1] % channels:
            raise ValueError("%s: flattened_from[%r] = %r must be a positive channel count dividing the layer's "
                             "%d input features" % (where, name, channels, weight.shape[1]))
        plan[name] = int(channels)
    return plan


def _flatten_columns(weight, channels, to_ours):
    """Permute a Linear weight's input columns between torch's flatten order [C, S] and
    ours [S, C] (S the spatial positions)."""
    out, features = weight.shape
    spatial = features // channels
    if to_ours:
        return weight.reshape(out, channels, spatial).transpose(0, 2, 1).reshape(out, features)
    return weight.reshape(out, spatial, channels).transpose(0, 2, 1).reshape(out, features)


def _layout(model, flattened_from, where):
    """key -> (module, module name, to_ours, to_torch) for every state-dict key of model."""
    plan = _flatten_plan(model, flattened_from, where)
    owners = {}
    for module_name, module in model.named_modules():
        for registry in (module._parameters, module._buffers):
            for attribute in registry:
                key = module_name + "." + attribute if module_name else attribute
                owners.setdefault(key, (module, module_name, attribute))
    layout = OrderedDict()
    for key in model._state_targets():
        module, module_name, attribute = owners[key]
        to_ours = to_torch = None
        if attribute == "weight" and _is_conv(module):
            to_ours, to_torch = torch_conv_weight_to_ours, ours_conv_weight_to_torch
        elif attribute == "weight" and module_name in plan:
            channels = plan[module_name]
            to_ours = lambda w, c=channels: _flatten_columns(w, c, True)
            to_torch = lambda w, c=channels: _flatten_columns(w, c, False)
        layout[key] = (module, module_name, to_ours, to_torch)
    return layout


def _as_numpy(value, key, where):
    if isinstance(value, Tensor):
        return value.data
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor
        value = value.detach().cpu().numpy()
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        raise TypeError("%s: the entry %r has dtype %s, expected numbers" % (where, key, array.dtype))
    return array


def _read_torch_file(path, where):
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError("%s: %r does not exist" % (where, path))
    if is_safetensors(path):
        return read_safetensors(path, where)[0]
    if path.endswith((".pt", ".pth", ".bin")):
        raise ValueError("%s: %r looks like a torch.save file, which is a pickle (it could run code); save the "
                         "state dict with safetensors.torch.save_file(model.state_dict(), 'model.safetensors') "
                         "and load that" % (where, path))
    return checkpoint.read_state_dict(path)


def load_torch_state_dict(model, state_dict, strict=True, flattened_from=None):
    """Load a state dict in PyTorch's layout into ``model`` (in place), so that a model
    trained in PyTorch runs here without torch installed.

    ``state_dict``: a dict of name -> array (numpy arrays, our Tensors or torch tensors),
    or the path of a ``.safetensors`` file (e.g. written by
    ``safetensors.torch.save_file(torch_model.state_dict(), path)``) or of an ``.npz``
    state dict. Conv weights [c_out, c_in, *kernel] become ours [*kernel, c_in, c_out];
    other entries load by name as they are (see the comment above for the rules).

    ``flattened_from``: {name of a Linear: channels} for Linears that read a flattened
    feature map (torch flattens [C, H, W], this library [H, W, C]); ``None`` (default)
    finds them in the model's Sequentials: a Linear after a Flatten after a conv layer.
    Pass ``{}`` to load every Linear as is.

    With ``strict`` (default), missing and unexpected keys raise a ValueError naming each
    key and its layer; otherwise they are returned, as torch does, as
    ``IncompatibleKeys(missing_keys, unexpected_keys)``. A shape that does not match
    always raises a ValueError naming the key, the layer, torch's shape and the one
    expected. Nothing is changed when an error is raised.
    """
    where = "load_torch_state_dict"
    if not isinstance(model, Module):
        raise TypeError("%s: model must be an nn.Module, got %s" % (where, type(model).__name__))
    if isinstance(state_dict, (str, os.PathLike)):
        state_dict = _read_torch_file(state_dict, where)
    elif not isinstance(state_dict, Mapping):
        raise TypeError("%s: got %s, expected a dict of name -> array or the path of a .safetensors file"
                        % (where, type(state_dict).__name__))
    layout = _layout(model, flattened_from, where)
    targets = model._state_targets()
    modules = dict(model.named_modules())

    missing = [key for key in layout if key not in state_dict
               and not key.rpartition(".")[2] == _OPTIONAL_KEY]
    unexpected = [key for key in state_dict if key not in layout
                  and not (key.rpartition(".")[2] == _OPTIONAL_KEY and key.rpartition(".")[0] in modules)]
    if strict and (missing or unexpected):
        lines = ["missing key %r (%s at %r)" % (key, _layer_name(layout[key][0]), layout[key][1] or "the model")
                 for key in missing]
        for key in unexpected:
            owner = key.rpartition(".")[0]
            lines.append("unexpected key %r (%s)" % (
                key, "%s at %r has no such parameter" % (_layer_name(modules[owner]), owner)
                if owner in modules else "the model has no layer %r" % owner))
        raise ValueError("%s into %s: %s" % (where, type(model).__name__, "; ".join(lines)))

    converted = OrderedDict()
    for key, (module, module_name, to_ours, _) in layout.items():
        if key not in state_dict:
            continue
        array = _as_numpy(state_dict[key], key, where)
        current = targets[key][2]
        expected = current.shape if to_ours is None else layout[key][3](current).shape
        if array.shape != expected:
            raise ValueError("%s: shape mismatch for %r (%s at %r): the torch state dict has %s, expected %s in "
                             "torch's layout (%s here)" % (where, key, _layer_name(module), module_name,
                                                           tuple(array.shape), tuple(expected),
                                                           tuple(current.shape)))
        converted[key] = array if to_ours is None else to_ours(array)
    model.load_state_dict(converted, strict=False)
    return IncompatibleKeys(missing, unexpected)


def torch_state_dict(model, flattened_from=None):
    """The inverse of :func:`load_torch_state_dict`: an OrderedDict of name -> numpy array
    (copies) in PyTorch's layout, which ``torch_model.load_state_dict({k:
    torch.from_numpy(v) ...})`` takes, or which ``safetensors.numpy.save_file`` writes for
    torch to read. ``flattened_from`` as in :func:`load_torch_state_dict`."""
    if not isinstance(model, Module):
        raise TypeError("torch_state_dict: model must be an nn.Module, got %s" % type(model).__name__)
    layout = _layout(model, flattened_from, "torch_state_dict")
    result = OrderedDict()
    for key, array in model.state_dict().items():
        to_torch = layout[key][3]
        result[key] = np.ascontiguousarray(array if to_torch is None else to_torch(array)) \
            if np.ndim(array) else array
    return result
