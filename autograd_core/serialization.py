"""ag.save / ag.load: a Tensor, or a (nested) dict of them keyed by strings, in one .npz
file, as torch.save / torch.load are used for checkpoints, without pickle.

Layout of the archive (every member a plain .npy array, read with allow_pickle=False):

    __autograd_core__     0-d string: the format marker and version ("autograd_core.save/1")
    __kind__              0-d string: "tensor" (one Tensor) or "dict"
    t/<path>              the array of the tensor at <path> ("" for a single Tensor;
                          "a/b" is obj["a"]["b"])
    g/<path>              0-d bool: whether it requires grad

dtype and shape travel in the .npy headers. The key separator "/" may not appear in the
dict's keys, so that every path reads back one way.
"""
import os
import zipfile

import numpy as np

from .tensor import Tensor

__all__ = ["save", "load"]

_MARKER = "autograd_core.save/1"


def _flatten(obj, path, out, where):
    if isinstance(obj, Tensor):
        out["t/" + path] = obj.data
        out["g/" + path] = np.array(bool(obj.requires_grad))
        return
    if isinstance(obj, dict):
        if path:
            out["d/" + path] = np.array(True)  # an (empty or not) dict at path
        for key, value in obj.items():
            if not isinstance(key, str) or not key or "/" in key:
                raise TypeError("save: got the key %r at %s, expected non-empty strings without '/'"
                                % (key, where(path)))
            _flatten(value, path + "/" + key if path else key, out, where)
        return
    raise TypeError("save: got a %s at %s, expected a Tensor or a dict of Tensors (str keys); convert numbers "
                    "and arrays with ag.tensor" % (type(obj).__name__, where(path)))


def save(obj, path):
    """Write obj, a Tensor or a dict (nested dicts allowed) of str -> Tensor, to path as
    an .npz archive (see the module docstring): values, dtypes, shapes and requires_grad
    are kept; the graph and .grad are not. Anything else is a TypeError."""
    members = {"__autograd_core__": np.array(_MARKER), "__kind__": np.array("tensor" if isinstance(obj, Tensor)
                                                                            else "dict")}
    _flatten(obj, "", members, lambda path: "obj[%s]" % "][".join(repr(p) for p in path.split("/"))
             if path else "the top level")
    for key, array in members.items():
        if array.dtype.hasobject:
            raise TypeError("save: the tensor at %r has dtype object" % key)
    with open(os.fspath(path), "wb") as stream:
        # member by member (what np.savez does) so that no key can clash with savez's own arguments
        with zipfile.ZipFile(stream, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
            for key, array in members.items():
                with archive.open(key + ".npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, np.asarray(array), allow_pickle=False)


def load(path):
    """Read what save wrote: a Tensor or a dict (nested as saved) of Tensors, each with
    its dtype and requires_grad. A file that is not such an archive is a ValueError
    naming it; nothing is unpickled."""
    path = os.fspath(path)
    try:
        archive = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as error:
        raise ValueError("load: %r is not a file written by autograd_core.save (%s)" % (path, error)) from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError("load: %r is a single .npy array, not a file written by autograd_core.save" % path)
    with archive:
        try:
            members = {key: archive[key] for key in archive.files}
        except (ValueError, OSError, zipfile.BadZipFile, EOFError) as error:
            raise ValueError("load: %r is corrupt or holds object arrays (%s)" % (path, error)) from None
    marker = members.pop("__autograd_core__", None)
    if marker is None or marker.shape != () or str(marker) != _MARKER:
        raise ValueError("load: %r is an .npz archive but not one written by autograd_core.save (no %r marker); "
                         "a training checkpoint of the CLI is read by nn.checkpoint.load or "
                         "Module.load_state_dict(path)" % (path, _MARKER))
    kind = str(members.pop("__kind__", ""))
    tensors = {}
    for key, array in members.items():
        if key.startswith("t/"):
            grad = members.get("g/" + key[2:])
            tensor = Tensor(array)
            if grad is not None and bool(grad):
                tensor.requires_grad_(True)
            tensors[key[2:]] = tensor
    if kind == "tensor":
        if "" not in tensors:
            raise ValueError("load: %r says it holds one tensor but has none" % path)
        return tensors[""]
    if kind != "dict":
        raise ValueError("load: %r holds an object of unknown kind %r" % (path, kind))
    result = {}
    for key in members:  # in the order saved: dicts keep their key order
        if key.startswith("d/"):
            _place(result, key[2:].split("/"), None)
        elif key.startswith("t/"):
            _place(result, key[2:].split("/"), tensors[key[2:]])
    return result


def _place(result, parts, value):
    node = result
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    if value is None:
        node.setdefault(parts[-1], {})
    else:
        node[parts[-1]] = value
