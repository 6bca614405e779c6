"""Checkpoints: dictionaries of numpy arrays stored as ``.npz`` archives.

Two guarantees matter more than anything else here:

* A checkpoint can never run code. Archives are read with ``allow_pickle=False``, so an
  object array (which numpy would unpickle) is refused instead of executed.
* A checkpoint on disk is always complete. Writes go to a temporary file in the same
  directory, are flushed to disk with ``fsync`` and then renamed over the target with
  ``os.replace`` (atomic on POSIX and Windows), so a crash mid-write leaves the previous
  checkpoint intact and no partial file behind. A writer killed mid-write (``kill -9``)
  cannot remove its temporary file; the next save of the same target removes such stale
  temporaries (those of its own target whose writing process is gone, nothing else).
* A crafted file cannot force a huge allocation: every array's header must agree with
  the bytes its archive member holds before anything is read, and the metadata must be
  a JSON object.

The low-level pair is :func:`save` / :func:`load`. On top of it,
:func:`save_training_state` / :func:`load_training_state` put a model's ``state_dict()``,
an optimizer's ``state_dict()`` and a small JSON metadata record into one file under the
namespaces ``model/``, ``optim/`` and ``meta/``.

A path ending in ``.safetensors`` is written in the safetensors format instead (the
``safetensors`` package's numpy API: ``pip install "autograd-core[safetensors]"``), which
PyTorch and the rest of the ecosystem read; :func:`load` recognises either format by its
content. The same guarantees hold: the format holds no code, the write is atomic, and the
library checks every tensor's extent against the file before reading it. 0-d string
arrays (the metadata) travel in the safetensors header's ``__metadata__``.
"""

import json
import math
import os
import re
import tempfile
import time
import zipfile

import numpy as np

from autograd_core.serialization import is_safetensors, read_safetensors, read_safetensors_header, safetensors_bytes

SAFETENSORS_SUFFIX = ".safetensors"

__all__ = [
    "save",
    "load",
    "save_training_state",
    "load_training_state",
    "read_metadata",
    "split_namespaces",
    "check_state_dict",
    "check_writable",
    "read_shapes",
    "MODEL_PREFIX",
    "read_state_dict",
    "OPTIM_PREFIX",
    "METADATA_KEY",
    "is_safetensors",
]

MODEL_PREFIX = "model/"
OPTIM_PREFIX = "optim/"
# Metadata is a JSON string stored as a 0-d unicode array: a plain numpy dtype, so it
# loads with allow_pickle=False like everything else.
METADATA_KEY = "meta/json"

_ZIP_SIGNATURE = b"PK\x03\x04"
_EMPTY_ZIP_SIGNATURE = b"PK\x05\x06"
# Deflate cannot expand data by more than about 1032:1, so a member that claims more is
# crafted (checked before numpy allocates the array its header describes).
_DEFLATE_MAX_RATIO = 1032
# A temporary file is ".<target>.pid<writer's pid>.<8 random characters>.tmp". Files of
# the older form ".<target>.<8 random characters>.tmp" (no pid) count as stale once they
# have not changed for _LEGACY_STALE_SECONDS.
_TEMPORARY_MIDDLE = re.compile(r"(?:pid(\d+)\.)?[a-z0-9_]{8}")
_LEGACY_STALE_SECONDS = 3600


def _temporary_prefix(path):
    return "." + os.path.basename(path) + "."


def _process_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # exists but belongs to someone else (or an odd pid: keep the file)
    return True


def _remove_stale_temporaries(path):
    """Remove the temporary files that earlier saves of ``path`` left behind when they
    were killed (only ``path``'s own pattern; a save in progress in a live process keeps
    its file)."""
    directory = os.path.dirname(os.path.abspath(path))
    prefix = _temporary_prefix(path)
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        if not (name.startswith(prefix) and name.endswith(".tmp")):
            continue
        match = _TEMPORARY_MIDDLE.fullmatch(name[len(prefix):-len(".tmp")])
        if match is None:
            continue
        candidate = os.path.join(directory, name)
        try:
            if match.group(1) is not None:
                pid = int(match.group(1))
                if pid == os.getpid() or _process_alive(pid):
                    continue
            elif time.time() - os.stat(candidate).st_mtime < _LEGACY_STALE_SECONDS:
                continue
            os.unlink(candidate)
        except OSError:
            pass  # gone already, or not ours to remove: never fail a save over it


def check_writable(path, what="checkpoint"):
    """Check, before any work is done, that a file can be written at ``path``: create its
    directory, refuse a directory at ``path`` itself, and create and remove a probe file
    next to it. Raises ``ValueError`` naming ``what`` and ``path`` and the reason."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise ValueError(f"{what} {path!r} is a directory; expected a file name")
    try:
        os.makedirs(directory, exist_ok=True)
    except FileExistsError:
        raise ValueError(f"cannot write {what} {path!r}: {directory!r} is a file, not a directory") from None
    except OSError as error:
        raise ValueError(f"cannot write {what} {path!r}: cannot create {directory!r} ({error.strerror})") from None
    try:
        descriptor, probe = tempfile.mkstemp(dir=directory, prefix=_temporary_prefix(path) + "probe-")
        os.close(descriptor)
        os.unlink(probe)
    except OSError as error:
        raise ValueError(f"cannot write {what} {path!r}: {directory!r} is not writable ({error.strerror})") from None


def _as_plain_array(key, value, path):
    if not isinstance(key, str) or not key:
        raise TypeError(
            f"checkpoint.save({path!r}): keys must be non-empty strings, got {key!r}"
        )
    # Tensors (or anything else exposing .numpy()) are accepted so callers need not
    # unwrap parameters themselves.
    if not isinstance(value, np.ndarray) and hasattr(value, "numpy"):
        value = value.numpy()
    array = np.asarray(value)
    if array.dtype.hasobject:
        raise TypeError(
            f"checkpoint.save({path!r}): entry {key!r} has dtype object; only plain numeric, "
            "bool or string arrays can be stored (object arrays would need pickle)"
        )
    return array


def save(path, arrays):
    """Atomically write ``arrays`` (dict of name -> array-like) to ``path`` as ``.npz``.

    Keys may contain ``/`` (used for namespacing). Values are converted with
    ``np.asarray``; Python scalars become 0-d arrays. Object arrays are refused with
    ``TypeError``. The file appears under ``path`` only once it is complete: on any error
    the temporary file is removed and an existing ``path`` is left untouched.
    """
    path = os.fspath(path)
    if not isinstance(arrays, dict):
        raise TypeError(
            f"checkpoint.save({path!r}): expected a dict of name -> array, "
            f"got {type(arrays).__name__}"
        )
    plain = {key: _as_plain_array(key, value, path) for key, value in arrays.items()}

    if _is_safetensors_name(path):
        payload = _safetensors_bytes(plain, path)
        _write_atomically(path, lambda stream: stream.write(payload))
        return

    def write_npz(stream):
        # Written member by member (what np.savez does internally) because np.savez
        # reserves some keyword names ("file", "allow_pickle") that could be keys.
        with zipfile.ZipFile(stream, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
            for key, array in plain.items():
                with archive.open(key + ".npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, array, allow_pickle=False)

    _write_atomically(path, write_npz)


def _is_safetensors_name(path):
    return os.fspath(path).endswith(SAFETENSORS_SUFFIX)


def _safetensors_bytes(plain, path):
    """A safetensors file of ``plain``: 0-d string arrays (the metadata record) go to the
    header's ``__metadata__``, every other array is a tensor."""
    metadata, tensors = {}, {}
    for key, array in plain.items():
        if array.dtype.kind == "U" and array.shape == ():
            metadata[key] = str(array[()])
        else:
            tensors[key] = array
    return safetensors_bytes(tensors, metadata, f"checkpoint.save({path!r})")


def _load_safetensors(path):
    arrays, metadata = read_safetensors(path, "checkpoint")
    for key, text in metadata.items():
        if key not in arrays:
            arrays[key] = np.array(text)
    return arrays


def _write_atomically(path, write):
    """Run ``write(stream)`` into a temporary file next to ``path``, flush it to disk and
    rename it over ``path``; on any error the temporary is removed and ``path`` is left
    as it was."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    _remove_stale_temporaries(path)
    descriptor, temporary = tempfile.mkstemp(
        dir=directory, prefix=f"{_temporary_prefix(path)}pid{os.getpid()}.", suffix=".tmp"
    )
    try:
        with os.fdopen(descriptor, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise
    _fsync_directory(directory)


def _fsync_directory(directory):
    # Makes the rename itself durable. Not possible on every platform (Windows cannot
    # open directories), and the data is already safe, so failure here is ignored.
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def _check_signature(path):
    """Refuse a missing file, a directory or a file that is neither an .npz archive nor a
    safetensors file; returns "safetensors" or "npz"."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint {path!r} does not exist")
    if os.path.isdir(path):
        raise ValueError(f"checkpoint {path!r} is a directory; expected an .npz file")
    if is_safetensors(path):
        return "safetensors"
    with open(path, "rb") as stream:
        signature = stream.read(4)
    if signature not in (_ZIP_SIGNATURE, _EMPTY_ZIP_SIGNATURE):
        raise ValueError(
            f"checkpoint {path!r} is not an .npz archive (starts with {signature!r}, "
            f"expected {_ZIP_SIGNATURE!r}) nor a safetensors file; the file is corrupt or of another format"
        )
    return "npz"


def load(path):
    """Read a checkpoint written by :func:`save`; returns ``dict[str, np.ndarray]``.

    Raises ``FileNotFoundError`` if ``path`` does not exist and ``ValueError`` naming the
    file if it is not an ``.npz`` archive, is truncated or corrupt, or holds object
    arrays (which are never unpickled). A safetensors file (by content, whatever its
    name) is read with the safetensors package; its header metadata comes back as 0-d
    string arrays.
    """
    path = os.fspath(path)
    if _check_signature(path) == "safetensors":
        return _load_safetensors(path)
    try:
        _member_shapes(path)
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except ValueError as error:
        if "allow_pickle" in str(error) or "pickle" in str(error).lower():
            raise ValueError(
                f"checkpoint {path!r} contains object arrays; refusing to load them because "
                "unpickling can run arbitrary code"
            ) from error
        raise ValueError(f"checkpoint {path!r} is corrupt: {error}") from error
    except (zipfile.BadZipFile, EOFError, OSError, KeyError, RuntimeError) as error:
        # Truncated archives surface as BadZipFile/EOFError, damaged members as
        # BadZipFile (CRC) or OSError, depending on where the damage is.
        raise ValueError(
            f"checkpoint {path!r} is corrupt or truncated ({type(error).__name__}: {error})"
        ) from error


def _member_shapes(path):
    """{key: (shape, dtype)} of the archive's arrays, read from their headers only, after
    refusing an archive whose headers claim more data than their members hold (numpy
    would allocate the claimed size first): each ``.npy`` member's size must be exactly
    its header plus shape x itemsize bytes."""
    shapes = {}
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if not info.filename.endswith(".npy"):
                continue
            if (info.compress_type != zipfile.ZIP_STORED
                    and info.file_size > _DEFLATE_MAX_RATIO * max(info.compress_size, 1)):
                raise ValueError(f"member {info.filename!r} claims {info.file_size} bytes from "
                                 f"{info.compress_size} compressed ones, more than deflate can expand")
            with archive.open(info) as member:
                version = np.lib.format.read_magic(member)
                # save() writes 1.0 (2.0 past 64 KiB of header); 3.0 only serves structured
                # dtypes with non-Latin-1 field names, which a checkpoint never holds
                readers = {(1, 0): np.lib.format.read_array_header_1_0,
                           (2, 0): np.lib.format.read_array_header_2_0}
                if version not in readers:
                    raise ValueError(f"member {info.filename!r} has .npy format version {version}, "
                                     "expected 1.0 or 2.0")
                shape, _, dtype = readers[version](member)
                header_size = member.tell()
            key = info.filename[:-len(".npy")]
            shapes[key] = (shape, dtype)
            if dtype.hasobject:
                continue  # np.load refuses it with the pickle message
            expected = header_size + math.prod(shape) * dtype.itemsize
            if expected != info.file_size:
                raise ValueError(f"array {key!r} has shape {shape} of {dtype}, which needs "
                                 f"{expected} bytes, but its member holds {info.file_size}")
    return shapes


def read_shapes(path):
    """``{key: shape}`` of the arrays in the checkpoint at ``path``, from their headers
    alone (nothing is loaded): to check metadata against the arrays before building
    anything of the size it gives. Errors as in :func:`load`."""
    path = os.fspath(path)
    if _check_signature(path) == "safetensors":
        shapes, metadata = read_safetensors_header(path, "checkpoint")
        return {**{key: () for key in metadata}, **shapes}
    try:
        return {key: shape for key, (shape, _) in _member_shapes(path).items()}
    except ValueError as error:
        raise ValueError(f"checkpoint {path!r} is corrupt: {error}") from error
    except (zipfile.BadZipFile, EOFError, OSError, KeyError, RuntimeError) as error:
        raise ValueError(
            f"checkpoint {path!r} is corrupt or truncated ({type(error).__name__}: {error})"
        ) from error


def split_namespaces(arrays):
    """Group ``{"model/w": .., "optim/m": ..}`` into ``{"model": {"w": ..}, "optim": {..}}``.

    Keys without a ``/`` go to the ``""`` namespace.
    """
    groups = {}
    for key, value in arrays.items():
        namespace, separator, rest = key.partition("/")
        if not separator:
            namespace, rest = "", key
        groups.setdefault(namespace, {})[rest] = value
    return groups


def _shape_of(value):
    return tuple(np.shape(value.numpy() if hasattr(value, "numpy") else value))


def check_state_dict(expected, found, what, path=None, check_shapes=True):
    """Raise ``ValueError`` unless ``found`` has exactly ``expected``'s keys and shapes.

    ``what`` names the state ("model", "optimizer") and ``path`` the checkpoint, so the
    message says where the mismatch came from. All problems are reported at once.
    """
    where = f" in checkpoint {os.fspath(path)!r}" if path is not None else ""
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    mismatched = []
    if check_shapes:
        for key in sorted(set(expected) & set(found)):
            want, got = _shape_of(expected[key]), _shape_of(found[key])
            if want != got:
                mismatched.append(f"{key}: checkpoint has {got}, {what} expects {want}")
    problems = []
    if missing:
        problems.append(f"missing keys {missing}")
    if unexpected:
        problems.append(f"unexpected keys {unexpected}")
    if mismatched:
        problems.append("shape mismatches [" + "; ".join(mismatched) + "]")
    if problems:
        raise ValueError(f"{what} state{where} does not match: " + ", ".join(problems))


def save_training_state(path, model, optimizer=None, metadata=None):
    """Atomically save ``model.state_dict()``, ``optimizer.state_dict()`` and metadata.

    ``metadata`` is any JSON-serialisable dict (epoch, model name, hyperparameters...).
    Keys are stored as ``model/<name>``, ``optim/<name>`` and ``meta/json``.
    """
    arrays = {MODEL_PREFIX + key: value for key, value in model.state_dict().items()}
    if optimizer is not None:
        # nn.optim's optimizers give their state flat (names -> arrays) for the archive
        flat = getattr(optimizer, "flat_state_dict", optimizer.state_dict)
        arrays.update({OPTIM_PREFIX + key: value for key, value in flat().items()})
    if metadata is not None:
        try:
            text = json.dumps(metadata, sort_keys=True)
        except TypeError as error:
            raise TypeError(
                f"save_training_state({os.fspath(path)!r}): metadata must be JSON-serialisable: {error}"
            ) from error
        arrays[METADATA_KEY] = np.array(text)
    save(path, arrays)


def _metadata_from(arrays, path):
    if METADATA_KEY not in arrays:
        return {}
    stored = arrays[METADATA_KEY]
    if stored.shape != () or stored.dtype.kind != "U":
        raise ValueError(f"checkpoint {os.fspath(path)!r}: {METADATA_KEY!r} is a {stored.dtype} array of "
                         f"shape {stored.shape}, expected a JSON string")
    try:
        metadata = json.loads(str(stored[()]))
    except ValueError as error:
        raise ValueError(f"checkpoint {os.fspath(path)!r}: metadata is not valid JSON ({error})") from None
    if not isinstance(metadata, dict):
        raise ValueError(f"checkpoint {os.fspath(path)!r}: metadata is a JSON {type(metadata).__name__}, "
                         "expected an object")
    return metadata


def read_metadata(path):
    """Return the metadata dict stored by :func:`save_training_state` (``{}`` if none);
    metadata that is not a JSON object is a ``ValueError`` naming the file."""
    return _metadata_from(load(path), path)


def read_state_dict(path):
    """The model state (dotted name -> array) held by the file at ``path``: a training
    checkpoint of the CLI (:func:`save_training_state`: its ``model/`` keys), an
    ``autograd_core.save`` file of a flat dict of tensors, or a :func:`save` file of a
    state dict. Anything else is a ``ValueError`` naming the file."""
    path = os.fspath(path)
    _check_signature(path)
    arrays = load(path)
    if "__autograd_core__" in arrays:
        import autograd_core
        state = autograd_core.load(path)
        if not isinstance(state, dict) or any(not hasattr(value, "numpy") for value in state.values()):
            raise ValueError(f"checkpoint {path!r} was written by autograd_core.save but holds "
                             f"{'a Tensor' if not isinstance(state, dict) else 'nested dicts'}, expected a flat "
                             "dict of name -> Tensor (a state_dict)")
        return {key: value.numpy() for key, value in state.items()}
    groups = split_namespaces(arrays)
    if "model" in groups:
        return groups["model"]
    if set(groups) - {""}:
        raise ValueError(f"checkpoint {path!r} holds no model state ('model/...' keys) but the namespaces "
                         f"{sorted(set(groups) - {''})}")
    return groups.get("", {})


def load_training_state(path, model, optimizer=None):
    """Restore ``model`` (and ``optimizer`` if given) from ``path``; returns the metadata.

    The model's keys and shapes must match the checkpoint exactly; a mismatch raises
    ``ValueError`` listing every missing key, unexpected key and shape difference before
    the model is touched. Asking for an optimizer that the checkpoint does not hold is an
    error too. Optimizer keys are not compared with the fresh optimizer's, because
    optimizers create their per-parameter state lazily on the first step.
    """
    arrays = load(path)
    metadata = _metadata_from(arrays, path)
    groups = split_namespaces(arrays)
    unknown = sorted(set(groups) - {"model", "optim", "meta"})
    if unknown:
        raise ValueError(
            f"checkpoint {os.fspath(path)!r}: unexpected key namespaces {unknown}; "
            "expected only 'model/', 'optim/' and 'meta/' (was it written by save_training_state?)"
        )
    if "model" not in groups:
        raise ValueError(f"checkpoint {os.fspath(path)!r} holds no model state ('model/...' keys)")
    model_state = groups["model"]
    check_state_dict(model.state_dict(), model_state, "model", path)
    if optimizer is not None:
        if "optim" not in groups:
            raise ValueError(
                f"checkpoint {os.fspath(path)!r} holds no optimizer state ('optim/...' keys)"
            )
    model.load_state_dict(model_state)
    if optimizer is not None:
        optimizer.load_state_dict(groups["optim"])
    return metadata
