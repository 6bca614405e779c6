"""ag.save / ag.load (a Tensor or a nested dict of them, npz without pickle) and
Module.load_state_dict taking a checkpoint file (issue 12)."""
import zipfile

import numpy as np
import pytest

import autograd_core as ag
import nn
from nn import checkpoint, optim


def test_a_tensor_round_trips_with_its_dtype_and_requires_grad(tmp_path):
    for value, requires_grad in [(np.arange(6, dtype=np.float64).reshape(2, 3), True),
                                 (np.array([1, 2, 3], dtype=np.int64), False),
                                 (np.array([True, False]), False),
                                 (np.float32(2.5), False),
                                 (np.zeros((0, 4), np.float32), True)]:
        tensor = ag.tensor(value, requires_grad=requires_grad)
        ag.save(tensor, tmp_path / "t.pt")
        loaded = ag.load(str(tmp_path / "t.pt"))
        assert isinstance(loaded, ag.Tensor)
        assert loaded.dtype == tensor.dtype and loaded.shape == tensor.shape
        assert loaded.requires_grad == requires_grad and loaded.is_leaf
        np.testing.assert_array_equal(loaded.numpy(), tensor.numpy())


def test_a_nested_dict_round_trips_in_order(tmp_path):
    state = {"encoder": {"weight": ag.randn(3, 2, requires_grad=True), "bias": ag.zeros(2)},
             "step": ag.tensor(7), "empty": {}, "scale": ag.tensor([0.5], dtype=np.float64)}
    ag.save(state, tmp_path / "state.npz")
    loaded = ag.load(tmp_path / "state.npz")
    assert list(loaded) == ["encoder", "step", "empty", "scale"]
    assert list(loaded["encoder"]) == ["weight", "bias"] and loaded["empty"] == {}
    assert loaded["encoder"]["weight"].requires_grad and not loaded["encoder"]["bias"].requires_grad
    assert loaded["step"].dtype == np.int64 and loaded["scale"].dtype == np.float64
    np.testing.assert_array_equal(loaded["encoder"]["weight"].numpy(), state["encoder"]["weight"].numpy())


def test_the_file_holds_no_pickle(tmp_path):
    ag.save({"w": ag.ones(2)}, tmp_path / "f.npz")
    with np.load(tmp_path / "f.npz", allow_pickle=False) as archive:
        assert all(archive[key].dtype != object for key in archive.files)


@pytest.mark.parametrize("obj, message", [
    ([ag.ones(2)], "got a list at the top level"),
    ({"w": np.ones(2)}, r"got a ndarray at obj\['w'\], expected a Tensor"),
    ({"a": {"b": 3}}, r"got a int at obj\['a'\]\['b'\]"),
    ({1: ag.ones(2)}, "got the key 1"),
    ({"a/b": ag.ones(2)}, "got the key 'a/b' .*without '/'"),
], ids=["list", "array", "number", "int key", "slash"])
def test_unknown_objects_are_refused_naming_where(tmp_path, obj, message):
    with pytest.raises(TypeError, match="save: " + message):
        ag.save(obj, tmp_path / "x.npz")


def test_a_file_that_is_not_ours_is_a_clear_error(tmp_path):
    (tmp_path / "text.pt").write_text("not an archive")
    with pytest.raises(ValueError, match="load: .*text.pt.* is not a file written by autograd_core.save"):
        ag.load(tmp_path / "text.pt")
    np.savez(tmp_path / "plain.npz", w=np.ones(2))
    with pytest.raises(ValueError, match="an .npz archive but not one written by autograd_core.save"):
        ag.load(tmp_path / "plain.npz")
    np.save(tmp_path / "single.npy", np.ones(2))
    with pytest.raises(ValueError, match="a single .npy array"):
        ag.load(tmp_path / "single.npy")
    with zipfile.ZipFile(tmp_path / "pickled.npz", "w") as archive:
        with archive.open("__autograd_core__.npy", "w") as member:
            np.lib.format.write_array(member, np.array(["x", 1], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="corrupt or holds object arrays"):
        ag.load(tmp_path / "pickled.npz")
    with pytest.raises(FileNotFoundError):
        ag.load(tmp_path / "missing.npz")


def _trained_softmax():
    ag.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2))
    optimizer = optim.Adam(model.parameters(), lr=0.1)
    model(ag.randn(5, 4)).sum().backward()
    optimizer.step()
    return model, optimizer


def test_load_state_dict_reads_a_checkpoint_written_by_the_cli(tmp_path):
    model, optimizer = _trained_softmax()
    # what the CLI's trainer writes each epoch
    checkpoint.save_training_state(tmp_path / "checkpoint.npz", model, optimizer, {"epoch": 1})
    ag.manual_seed(1)
    fresh = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2))
    fresh.load_state_dict(tmp_path / "checkpoint.npz")
    for (name, p), q in zip(model.named_parameters(), fresh.parameters()):
        np.testing.assert_array_equal(p.numpy(), q.numpy(), err_msg=name)


def test_load_state_dict_reads_an_ag_save_file_and_a_plain_dict(tmp_path):
    model, _ = _trained_softmax()
    ag.save({name: ag.tensor(value) for name, value in model.state_dict().items()}, tmp_path / "s.pt")
    fresh = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2))
    fresh.load_state_dict(str(tmp_path / "s.pt"))
    np.testing.assert_array_equal(fresh[0].weight.numpy(), model[0].weight.numpy())
    other = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2))
    other.load_state_dict(ag.load(tmp_path / "s.pt"))
    np.testing.assert_array_equal(other[2].bias.numpy(), model[2].bias.numpy())


def test_load_state_dict_names_missing_extra_and_mis_shaped_keys(tmp_path):
    model, _ = _trained_softmax()
    state = model.state_dict()
    small = nn.Sequential(nn.Linear(4, 3))
    with pytest.raises(ValueError, match=r"unexpected keys \['2.weight', '2.bias'\]"):
        small.load_state_dict(state)
    with pytest.raises(ValueError, match=r"missing keys \['2.weight', '2.bias'\]"):
        model.load_state_dict({key: state[key] for key in ("0.weight", "0.bias")})
    wide = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 2))
    checkpoint.save_training_state(tmp_path / "c.npz", model)
    before = wide[0].weight.numpy().copy()
    with pytest.raises(ValueError, match=r"shape mismatch for '0.weight': the checkpoint has \(3, 4\), "
                                          r"the module has \(5, 4\)"):
        wide.load_state_dict(tmp_path / "c.npz")
    np.testing.assert_array_equal(wide[0].weight.numpy(), before)  # nothing changed
    with pytest.raises(TypeError, match="the entry '0.weight' is a dict"):
        model.load_state_dict(dict(state, **{"0.weight": {"nested": state["0.weight"]}}))
    with pytest.raises(TypeError, match="got list, expected a dict of name -> array or the path"):
        model.load_state_dict([state])
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(ValueError, match="not an .npz archive"):
        model.load_state_dict(tmp_path / "junk.npz")
    ag.save(ag.ones(2), tmp_path / "one.pt")
    with pytest.raises(ValueError, match="holds a Tensor, expected a flat dict"):
        model.load_state_dict(tmp_path / "one.pt")
