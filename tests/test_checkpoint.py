"""Checkpoints: round trips, atomic writes, refusal of pickled data, clear errors."""
import os
import signal
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest

from nn import checkpoint

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _arrays():
    rng = np.random.default_rng(0)
    return {
        "model/layers.0.weight": rng.standard_normal((4, 3)).astype(np.float32),
        "model/layers.0.bias": np.zeros(4, np.float64),
        "optim/state.0.step": np.array(7, np.int64),
        "scalar": 0.5,
        "flags": np.array([True, False]),
        "file": np.arange(3),  # a name np.savez would reject as a keyword clash
    }


def test_round_trip_keeps_values_dtypes_and_shapes(tmp_path):
    path = tmp_path / "ckpt.npz"
    arrays = _arrays()
    checkpoint.save(path, arrays)
    loaded = checkpoint.load(path)
    assert set(loaded) == set(arrays)
    for key, value in arrays.items():
        expected = np.asarray(value)
        assert loaded[key].dtype == expected.dtype, key
        assert loaded[key].shape == expected.shape, key
        np.testing.assert_array_equal(loaded[key], expected)
    # the file is an ordinary .npz that numpy reads with pickling disabled
    with np.load(path, allow_pickle=False) as archive:
        assert sorted(archive.files) == sorted(arrays)


def test_save_overwrites_and_leaves_no_temporary_files(tmp_path):
    path = tmp_path / "ckpt.npz"
    checkpoint.save(path, {"a": np.ones(2)})
    checkpoint.save(path, {"b": np.zeros(3)})
    assert list(checkpoint.load(path)) == ["b"]
    assert os.listdir(tmp_path) == ["ckpt.npz"]


def test_save_creates_missing_directories(tmp_path):
    path = tmp_path / "run" / "nested" / "ckpt.npz"
    checkpoint.save(str(path), {"a": np.arange(2)})
    np.testing.assert_array_equal(checkpoint.load(path)["a"], [0, 1])


def test_failed_write_keeps_the_old_file_and_removes_the_partial_one(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.npz"
    checkpoint.save(path, {"old": np.arange(5)})
    before = path.read_bytes()
    real_write_array = np.lib.format.write_array
    calls = []

    def failing_write_array(stream, array, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # fail in the middle of the archive, after one member
            raise OSError("disk full (simulated)")
        return real_write_array(stream, array, **kwargs)

    monkeypatch.setattr(np.lib.format, "write_array", failing_write_array)
    with pytest.raises(OSError, match="disk full"):
        checkpoint.save(path, {"new1": np.ones(100), "new2": np.ones(100)})
    assert len(calls) == 2
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["ckpt.npz"]
    monkeypatch.undo()
    # a first-time save that fails leaves nothing at all
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    with pytest.raises(TypeError, match="dtype object"):
        checkpoint.save(fresh / "x.npz", {"bad": np.array([{"code": 1}], dtype=object)})
    assert os.listdir(fresh) == []


def test_object_arrays_are_refused_on_load(tmp_path):
    path = tmp_path / "evil.npz"
    # np.savez pickles object arrays; loading this with pickling enabled would unpickle.
    np.savez(path, weights=np.ones(2), payload=np.array([{"run": "code"}], dtype=object))
    with pytest.raises(ValueError, match=r"evil\.npz.*object arrays.*arbitrary code"):
        checkpoint.load(path)


def test_non_npz_file_is_refused_without_unpickling(tmp_path):
    import pickle

    path = tmp_path / "pickled.npz"
    path.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    with pytest.raises(ValueError, match=r"pickled\.npz.*not an \.npz archive"):
        checkpoint.load(path)
    plain = tmp_path / "array.npy"
    np.save(plain, np.ones(3))
    with pytest.raises(ValueError, match=r"array\.npy.*not an \.npz archive"):
        checkpoint.load(plain)


def test_truncated_file_is_reported(tmp_path):
    path = tmp_path / "ckpt.npz"
    checkpoint.save(path, {"w": np.arange(1000, dtype=np.float32)})
    content = path.read_bytes()
    for cut in (len(content) // 2, len(content) - 10, 5):
        path.write_bytes(content[:cut])
        with pytest.raises(ValueError, match=r"ckpt\.npz.*corrupt or truncated"):
            checkpoint.load(path)


def test_corrupted_bytes_are_reported(tmp_path):
    path = tmp_path / "ckpt.npz"
    checkpoint.save(path, {"w": np.arange(1000, dtype=np.float32)})
    content = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("w.npy")
    # flip a byte inside the stored array data: the zip CRC catches it
    content[info.header_offset + 200] ^= 0xFF
    path.write_bytes(bytes(content))
    with pytest.raises(ValueError, match=r"ckpt\.npz.*corrupt"):
        checkpoint.load(path)


def test_missing_file_and_bad_arguments(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.npz"):
        checkpoint.load(tmp_path / "nothing.npz")
    with pytest.raises(TypeError, match="dict"):
        checkpoint.save(tmp_path / "x.npz", [np.ones(2)])
    with pytest.raises(TypeError, match="non-empty strings"):
        checkpoint.save(tmp_path / "x.npz", {3: np.ones(2)})


def test_split_namespaces():
    groups = checkpoint.split_namespaces({"model/a.weight": 1, "model/b": 2, "optim/group.0.lr": 3, "x": 4})
    assert groups == {"model": {"a.weight": 1, "b": 2}, "optim": {"group.0.lr": 3}, "": {"x": 4}}


def test_check_state_dict_reports_all_problems_at_once():
    expected = {"a": np.zeros((2, 3)), "b": np.zeros(4), "c": np.zeros(1)}
    found = {"a": np.zeros((3, 2)), "b": np.zeros(4), "d": np.zeros(1)}
    with pytest.raises(ValueError) as caught:
        checkpoint.check_state_dict(expected, found, "model", path="run/ckpt.npz")
    message = str(caught.value)
    assert "run/ckpt.npz" in message
    assert "missing keys ['c']" in message
    assert "unexpected keys ['d']" in message
    assert "a: checkpoint has (3, 2), model expects (2, 3)" in message
    checkpoint.check_state_dict(expected, dict(expected), "model")  # exact match passes


# -- model + optimizer state in one file ---------------------------------------------------


class _StateHolder:
    """Stands in for anything with state_dict()/load_state_dict() (a Module, an optimizer)."""

    def __init__(self, state):
        self.state = {key: np.array(value) for key, value in state.items()}

    def state_dict(self):
        return {key: value.copy() for key, value in self.state.items()}

    def load_state_dict(self, state):
        self.state = {key: np.array(value) for key, value in state.items()}


def test_training_state_round_trip_with_metadata(tmp_path):
    path = tmp_path / "ckpt.npz"
    model = _StateHolder({"fc.weight": np.arange(6.0).reshape(2, 3), "fc.bias": np.ones(2)})
    optimizer = _StateHolder({"group.0.lr": 0.01, "state.0.step": 3})
    metadata = {"epoch": 2, "model": "softmax", "hyperparameters": {"lr": 0.01}}
    checkpoint.save_training_state(path, model, optimizer, metadata)
    keys = set(checkpoint.load(path))
    assert keys == {"model/fc.weight", "model/fc.bias", "optim/group.0.lr", "optim/state.0.step",
                    checkpoint.METADATA_KEY}
    assert checkpoint.read_metadata(path) == metadata

    restored_model = _StateHolder({"fc.weight": np.zeros((2, 3)), "fc.bias": np.zeros(2)})
    restored_optimizer = _StateHolder({})
    assert checkpoint.load_training_state(path, restored_model, restored_optimizer) == metadata
    np.testing.assert_array_equal(restored_model.state["fc.weight"], model.state["fc.weight"])
    assert restored_optimizer.state["state.0.step"] == 3
    assert float(restored_optimizer.state["group.0.lr"]) == 0.01


def test_training_state_mismatches_raise_before_touching_the_model(tmp_path):
    path = tmp_path / "ckpt.npz"
    checkpoint.save_training_state(path, _StateHolder({"w": np.zeros((2, 3)), "b": np.zeros(2)}))
    wider = _StateHolder({"w": np.ones((2, 4)), "b": np.ones(2), "extra": np.ones(1)})
    with pytest.raises(ValueError, match=r"model state in checkpoint .*ckpt\.npz.*missing keys \['extra'\]"
                                         r".*w: checkpoint has \(2, 3\), model expects \(2, 4\)"):
        checkpoint.load_training_state(path, wider)
    np.testing.assert_array_equal(wider.state["w"], np.ones((2, 4)))  # untouched
    smaller = _StateHolder({"w": np.zeros((2, 3))})
    with pytest.raises(ValueError, match=r"unexpected keys \['b'\]"):
        checkpoint.load_training_state(path, smaller)
    with pytest.raises(ValueError, match="holds no optimizer state"):
        checkpoint.load_training_state(path, _StateHolder({"w": np.zeros((2, 3)), "b": np.zeros(2)}),
                                       _StateHolder({}))
    assert checkpoint.read_metadata(path) == {}


def test_training_state_refuses_foreign_checkpoints(tmp_path):
    path = tmp_path / "plain.npz"
    checkpoint.save(path, {"w": np.zeros(2)})
    with pytest.raises(ValueError, match="unexpected key namespaces"):
        checkpoint.load_training_state(path, _StateHolder({"w": np.zeros(2)}))
    checkpoint.save(path, {"optim/group.0.lr": 0.1})
    with pytest.raises(ValueError, match="holds no model state"):
        checkpoint.load_training_state(path, _StateHolder({"w": np.zeros(2)}))


def test_metadata_must_be_json(tmp_path):
    with pytest.raises(TypeError, match="JSON"):
        checkpoint.save_training_state(tmp_path / "x.npz", _StateHolder({"w": np.zeros(1)}),
                                       metadata={"bad": object()})


def test_real_model_and_adam_round_trip(tmp_path):
    import autograd_core
    import nn

    def make():
        nn.init.manual_seed(0)
        model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
        return model, nn.optim.Adam(model.parameters(), lr=0.01)

    def step(model, optimizer, seed):
        x = autograd_core.from_numpy(np.random.default_rng(seed).standard_normal((5, 3)).astype(np.float32))
        loss = nn.functional.cross_entropy(model(x), np.array([0, 1, 0, 1, 1]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    model, optimizer = make()
    step(model, optimizer, 1)
    path = tmp_path / "ckpt.npz"
    checkpoint.save_training_state(path, model, optimizer, {"epoch": 1})
    restored_model, restored_optimizer = make()
    assert checkpoint.load_training_state(path, restored_model, restored_optimizer) == {"epoch": 1}
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(restored_model.state_dict()[key], value)
    # One more identical step on both: same Adam moments and step count -> same weights.
    step(model, optimizer, 2)
    step(restored_model, restored_optimizer, 2)
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(restored_model.state_dict()[key], value, err_msg=key)

    wider = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 2))
    with pytest.raises(ValueError, match=r"0\.weight: checkpoint has \(4, 3\), model expects \(5, 3\)"):
        checkpoint.load_training_state(path, wider)


# -- leftovers of killed saves, crafted archives -------------------------------------------


_KILLED_SAVE = """
import os, signal, sys
import numpy as np
from nn import checkpoint
os.replace = lambda *args: os.kill(os.getpid(), signal.SIGKILL)   # killed after writing, before the rename
checkpoint.save(sys.argv[1], {"w": np.zeros(1000)})
"""


def test_a_save_removes_the_temporaries_that_killed_saves_of_its_target_left(tmp_path):
    target = tmp_path / "run.npz"
    checkpoint.save(target, {"w": np.ones(3)})
    for _ in range(2):
        result = subprocess.run([sys.executable, "-c", _KILLED_SAVE, str(target)], cwd=ROOT, timeout=60)
        assert result.returncode == -signal.SIGKILL
    # each killed save left its temporary, and the next save removed the one before
    left = sorted(name for name in os.listdir(tmp_path) if name.endswith(".tmp"))
    assert len(left) == 1 and left[0].startswith(".run.npz.pid")

    # what a save must never remove: another target's temporary, a live writer's, other files
    others = [".other.npz.pid999999.abcdefgh.tmp", f".run.npz.pid{os.getppid()}.abcdefgh.tmp",
              ".run.npz.notes.tmp", "run.npz.tmp", ".run.npz.pid1.abcdefgh.tmp.keep"]
    for name in others:
        (tmp_path / name).write_bytes(b"x")
    legacy_fresh, legacy_old = tmp_path / ".run.npz.fresh123.tmp", tmp_path / ".run.npz.stale123.tmp"
    legacy_fresh.write_bytes(b"x")
    legacy_old.write_bytes(b"x")
    os.utime(legacy_old, (time.time() - 7200, time.time() - 7200))

    checkpoint.save(target, {"w": np.full(3, 2.0)})
    np.testing.assert_array_equal(checkpoint.load(target)["w"], np.full(3, 2.0))
    remaining = set(os.listdir(tmp_path))
    assert not remaining & set(left) and legacy_old.name not in remaining
    assert remaining == {"run.npz", legacy_fresh.name, *others}


def test_array_header_claiming_more_than_its_member_holds_is_refused(tmp_path):
    # a .npy header of shape (10**12,) float64 with 8 bytes of data: numpy would allocate 8 TB first
    import io
    import zipfile

    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "<f8", "fortran_order": False, "shape": (10**12,)})
    path = tmp_path / "crafted.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("model/w.npy", buffer.getvalue() + bytes(8))
    for read in (checkpoint.load, checkpoint.read_shapes):
        with pytest.raises(ValueError, match=r"crafted.npz.*'model/w' has shape \(1000000000000,\)"):
            read(path)


def test_read_shapes_reads_headers_only(tmp_path):
    path = tmp_path / "c.npz"
    checkpoint.save(path, {"model/w": np.zeros((3, 4), np.float32), "meta/json": np.array("{}")})
    assert checkpoint.read_shapes(path) == {"model/w": (3, 4), "meta/json": ()}


@pytest.mark.parametrize("stored", [np.array("[1, 2]"), np.array("{not json"), np.array(5), np.array(["{}", "{}"])])
def test_metadata_must_be_a_json_object(tmp_path, stored):
    path = tmp_path / "c.npz"
    checkpoint.save(path, {"model/w": np.zeros(2), checkpoint.METADATA_KEY: stored})
    with pytest.raises(ValueError, match="c.npz"):
        checkpoint.read_metadata(path)


def test_check_writable(tmp_path):
    checkpoint.check_writable(tmp_path / "new" / "deeper" / "c.npz")
    assert os.path.isdir(tmp_path / "new" / "deeper") and os.listdir(tmp_path / "new" / "deeper") == []
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is a file, not a directory"):
        checkpoint.check_writable(tmp_path / "file" / "c.npz")
    with pytest.raises(ValueError, match="cannot create"):
        checkpoint.check_writable(tmp_path / "file" / "below" / "c.npz")   # NotADirectoryError, even for root
    with pytest.raises(ValueError, match="is a directory"):
        checkpoint.check_writable(tmp_path / "new")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories; covered by the "
                                               "NotADirectoryError cases above")
def test_check_writable_read_only_directory(tmp_path):
    directory = tmp_path / "read-only"
    directory.mkdir()
    directory.chmod(0o500)
    try:
        with pytest.raises(ValueError, match="is not writable"):
            checkpoint.check_writable(directory / "c.npz")
    finally:
        directory.chmod(0o700)
