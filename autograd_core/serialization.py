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

A path ending in ``.safetensors`` is written in that format instead (the ``safetensors``
package's numpy API, an optional extra: ``pip install "autograd-core[safetensors]"``), so
that PyTorch and the rest of the ecosystem read it: each tensor under its path itself
("a/b"; a flat state dict's keys unchanged), and the marker, the kind, which tensors
require grad and the order of the dicts and tensors in the header's ``__metadata__`` (string -> string).
``load`` tells the formats apart by content, and reads a safetensors file that some other
program wrote (no marker) as a flat dict of Tensors.
"""
import json
import os
import zipfile

import numpy as np

from .tensor import Tensor

__all__ = ["save", "load", "is_safetensors", "safetensors_bytes", "read_safetensors", "read_safetensors_header"]

_MARKER = "autograd_core.save/1"
SAFETENSORS_SUFFIX = ".safetensors"
# The largest header the safetensors library itself accepts (100 MB): a longer claim is
# a crafted or foreign file, refused before anything of that size is read.
_SAFETENSORS_MAX_HEADER = 100_000_000


def _safetensors_numpy(what):
    """The safetensors package's numpy API, or an ImportError that says how to get it."""
    try:
        import safetensors.numpy
    except ImportError:
        raise ImportError("%s: .safetensors files need the safetensors package: pip install safetensors (or "
                          "pip install \"autograd-core[safetensors]\")" % what) from None
    return safetensors.numpy


def is_safetensors(path):
    """Whether the file at ``path`` starts as a safetensors file does: an 8-byte
    little-endian header length that fits in the file, then a JSON object ('{')."""
    try:
        with open(os.fspath(path), "rb") as stream:
            head = stream.read(9)
            size = os.fstat(stream.fileno()).st_size
    except OSError:
        return False
    if len(head) < 9 or head[8:9] != b"{":
        return False
    length = int.from_bytes(head[:8], "little")
    return 0 < length <= min(size - 8, _SAFETENSORS_MAX_HEADER)


def safetensors_bytes(arrays, metadata, what):
    """The bytes of a safetensors file holding ``arrays`` (name -> numpy array; made
    contiguous) and ``metadata`` (str -> str or None). ``what`` names the caller in
    errors: a dtype the format cannot hold (strings, complex) is a TypeError naming the
    key."""
    numpy_api = _safetensors_numpy(what)
    plain = {}
    for key, array in arrays.items():
        array = np.asarray(array)
        if array.dtype.kind not in "biuf" or array.dtype.byteorder == ">":
            raise TypeError("%s: the entry %r has dtype %s, which safetensors cannot hold (expected bool, "
                            "integers or floats)" % (what, key, array.dtype))
        # not np.ascontiguousarray, which turns a 0-d array into shape (1,)
        plain[key] = array if array.flags.c_contiguous else array.copy(order="C")
    return numpy_api.save(plain, metadata=metadata or None)


def read_safetensors_header(path, what):
    """(shapes, metadata) of the safetensors file at ``path`` from its header alone
    (nothing else is read): name -> shape tuple, and the ``__metadata__`` dict."""
    path = os.fspath(path)
    with open(path, "rb") as stream:
        length = int.from_bytes(stream.read(8), "little")
        size = os.fstat(stream.fileno()).st_size
        if not 0 < length <= min(size - 8, _SAFETENSORS_MAX_HEADER):
            raise ValueError("%s: %r is not a safetensors file (its header length %d does not fit in its %d bytes)"
                             % (what, path, length, size))
        text = stream.read(length)
    try:
        header = json.loads(text)
        metadata = header.pop("__metadata__", None) or {}
        shapes = {key: tuple(int(n) for n in entry["shape"]) for key, entry in header.items()}
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise ValueError("%s: %r has a damaged safetensors header (%s: %s)"
                         % (what, path, type(error).__name__, error)) from None
    return shapes, metadata


def read_safetensors(path, what):
    """(arrays, metadata) of the safetensors file at ``path``: name -> writable numpy
    array, and the header's ``__metadata__`` (str -> str, {} if none). A damaged or
    truncated file is a ValueError naming ``what`` and the file."""
    path = os.fspath(path)
    numpy_api = _safetensors_numpy(what)
    with open(path, "rb") as stream:
        data = stream.read()
    length = int.from_bytes(data[:8], "little") if len(data) >= 8 else -1
    if not 0 < length <= min(len(data) - 8, _SAFETENSORS_MAX_HEADER):
        raise ValueError("%s: %r is not a safetensors file (its header length %d does not fit in its %d bytes)"
                         % (what, path, length, len(data)))
    try:
        header = json.loads(data[8:8 + length])
        if not isinstance(header, dict):
            raise ValueError("the header is a JSON %s, expected an object" % type(header).__name__)
        metadata = header.get("__metadata__") or {}
        if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
            raise ValueError("__metadata__ must map strings to strings")
        arrays = numpy_api.load(data)
    except Exception as error:  # the library raises its own SafetensorError for damage
        raise ValueError("%s: %r is a corrupt or truncated safetensors file (%s: %s)"
                         % (what, path, type(error).__name__, error)) from None
    # writable copies, as np.load gives: callers update parameters from them in place
    return {key: np.array(array) for key, array in arrays.items()}, dict(metadata)


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
    if os.fspath(path).endswith(SAFETENSORS_SUFFIX):
        _save_safetensors(members, path)
        return
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
    if is_safetensors(path):
        return _load_safetensors(path)
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


def _save_safetensors(members, path):
    """Write save's members as a safetensors file: tensors under their own paths, the
    rest (marker, kind, requires_grad flags, empty dicts) in the header's metadata."""
    tensors = {key[2:]: array for key, array in members.items() if key.startswith("t/")}
    if "" in tensors:  # a single Tensor: the format needs a name
        tensors = {"tensor": tensors.pop("")}
    metadata = {
        "__autograd_core__": _MARKER,
        "__kind__": str(members["__kind__"]),
        "requires_grad": json.dumps(sorted(key[2:] or "tensor" for key, flag in members.items()
                                           if key.startswith("g/") and bool(flag))),
        # the dicts (empty ones too) and tensors in the order saved: the format sorts its keys
        "order": json.dumps([key for key in members if key[:2] in ("d/", "t/")]),
    }
    payload = safetensors_bytes(tensors, metadata, "save(%r)" % os.fspath(path))
    with open(os.fspath(path), "wb") as stream:
        stream.write(payload)


def _load_safetensors(path):
    arrays, metadata = read_safetensors(path, "load")
    if metadata.get("__autograd_core__") != _MARKER:
        # written elsewhere (PyTorch's safetensors.torch.save_file, say): a flat dict
        return {key: Tensor(array) for key, array in arrays.items()}
    try:
        grads = set(json.loads(metadata.get("requires_grad", "[]")))
        order = json.loads(metadata.get("order", "[]"))
    except ValueError as error:
        raise ValueError("load: %r has damaged autograd_core metadata (%s)" % (path, error)) from None
    tensors = {}
    for key, array in arrays.items():
        tensor = Tensor(array)
        if key in grads:
            tensor.requires_grad_(True)
        tensors[key] = tensor
    kind = metadata.get("__kind__")
    if kind == "tensor":
        if set(tensors) != {"tensor"}:
            raise ValueError("load: %r says it holds one tensor but has %s" % (path, sorted(tensors)))
        return tensors["tensor"]
    if kind != "dict":
        raise ValueError("load: %r holds an object of unknown kind %r" % (path, kind))
    result = {}
    for key in order:
        if key.startswith("d/"):
            _place(result, key[2:].split("/"), None)
        elif key[2:] in tensors:
            _place(result, key[2:].split("/"), tensors.pop(key[2:]))
    for key, tensor in tensors.items():  # any the order does not list
        _place(result, key.split("/"), tensor)
    return result
