"""Weights in the ecosystem's format: .safetensors next to .npz (nn.checkpoint, ag.save,
Module.load_state_dict) and state dicts in PyTorch's layout (nn.utils.load_torch_state_dict
and torch_state_dict). Nothing is trained: the same network is built in torch, its state dict
saved with safetensors, loaded here, and both run on the same input."""
import numpy as np
import pytest

import autograd_core as ag
import nn
from nn import checkpoint
from nn.apps.models import build_cnn, build_mlp
from nn.apps.sequence_tasks import RowSequenceClassifier
from nn.module import Module, Parameter


def _safetensors():
    return pytest.importorskip("safetensors.numpy")

TOLERANCE = 1e-5


def _torch():
    torch = pytest.importorskip("torch")
    pytest.importorskip("safetensors.torch")
    torch.manual_seed(0)
    return torch


def _close(ours, theirs):
    np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), rtol=TOLERANCE, atol=TOLERANCE)


def _torch_cnn(torch):
    t = torch.nn
    return t.Sequential(t.Conv2d(1, 32, 5, padding=2), t.ReLU(), t.MaxPool2d(2, 2),
                        t.Conv2d(32, 64, 5, padding=2), t.ReLU(), t.MaxPool2d(2, 2),
                        t.Flatten(), t.Linear(3136, 1024), t.ReLU(), t.Dropout(0.4), t.Linear(1024, 10))


def _torch_mlp(torch):
    t = torch.nn
    layers, width = [t.Flatten()], 784
    for size in (200, 100, 60, 30):
        layers += [t.Linear(width, size), t.Sigmoid()]
        width = size
    return t.Sequential(*layers, t.Linear(width, 10))


def _torch_row_classifier(torch, cell, hidden, layers):
    class RowClassifier(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = getattr(torch.nn, cell.upper())(28, hidden, num_layers=layers, batch_first=True)
            self.classifier = torch.nn.Linear(hidden, 10)

        def forward(self, images):
            _, state = self.rnn(images.reshape(images.shape[0], 28, 28))
            h_n = state[0] if isinstance(state, tuple) else state
            return self.classifier(h_n[-1])

    return RowClassifier()


def _run_both(torch, torch_model, model, images_nchw):
    """Outputs of torch's model on NCHW images and ours on the same images channels-last."""
    torch_model.eval()
    model.eval()
    with torch.no_grad():
        expected = torch_model(torch.from_numpy(images_nchw)).numpy()
    with ag.no_grad():
        ours = model(ag.tensor(np.ascontiguousarray(images_nchw.transpose(0, 2, 3, 1)))).numpy()
    return ours, expected


def _images(count=3):
    return np.random.default_rng(0).standard_normal((count, 1, 28, 28)).astype(np.float32)


@pytest.mark.parametrize("name", ["cnn", "mlp", "lstm", "gru"])
def test_a_torch_model_saved_with_safetensors_runs_here_with_its_outputs(name, tmp_path):
    torch = _torch()
    from safetensors.torch import save_file
    if name == "cnn":
        torch_model, model = _torch_cnn(torch), build_cnn()
    elif name == "mlp":
        torch_model, model = _torch_mlp(torch), build_mlp()
    else:  # the 2-layer recurrent classifier of nn.apps
        torch_model = _torch_row_classifier(torch, name, 32, 2)
        model = RowSequenceClassifier(name, hidden_size=32, num_layers=2)
    path = tmp_path / ("%s.safetensors" % name)
    save_file(torch_model.state_dict(), str(path))

    assert nn.utils.load_torch_state_dict(model, path) == ([], [])
    ours, expected = _run_both(torch, torch_model, model, _images())
    _close(ours, expected)


def test_torch_state_dict_is_what_torch_loads_and_runs_with_our_outputs():
    """The inverse: a model built (or trained) here loads into torch's and gives its outputs."""
    torch = _torch()
    for torch_model, model in [(_torch_cnn(torch), build_cnn()),
                               (_torch_row_classifier(torch, "lstm", 16, 2), RowSequenceClassifier("lstm", 16, 2))]:
        state = nn.utils.torch_state_dict(model)
        torch_model.load_state_dict({key: torch.from_numpy(value) for key, value in state.items()}, strict=True)
        ours, expected = _run_both(torch, torch_model, model, _images(2))
        _close(ours, expected)


class Conv1d(Module):
    """A stand-in conv layer of another type: the layout follows the owning module's type."""

    def __init__(self, in_channels, out_channels, kernel):
        super().__init__()
        self.out_channels = out_channels
        rng = np.random.default_rng(1)
        self.weight = Parameter(rng.standard_normal((kernel, in_channels, out_channels)).astype(np.float32))
        self.bias = Parameter(rng.standard_normal(out_channels).astype(np.float32))

    def forward(self, x):
        return ag.conv1d(x, self.weight, self.bias, padding=1)


class ConvTranspose2d(Module):
    def __init__(self, in_channels, out_channels, kernel):
        super().__init__()
        self.out_channels = out_channels
        self.weight = Parameter(np.zeros((kernel, kernel, out_channels, in_channels), np.float32))
        self.bias = Parameter(np.zeros(out_channels, np.float32))

    def forward(self, x):
        return ag.conv_transpose2d(x, self.weight, self.bias, stride=2)


def test_conv1d_and_transposed_conv_weights_take_the_layout_of_their_layer_type():
    torch = _torch()
    length = 6
    torch_model = torch.nn.Sequential(torch.nn.Conv1d(3, 4, 3, padding=1), torch.nn.Flatten(),
                                      torch.nn.Linear(4 * length, 5))
    model = nn.Sequential(Conv1d(3, 4, 3), nn.Flatten(), nn.Linear(4 * length, 5))
    nn.utils.load_torch_state_dict(model, torch_model.state_dict())  # torch tensors are taken too
    x = np.random.default_rng(2).standard_normal((2, 3, length)).astype(np.float32)
    with torch.no_grad():
        expected = torch_model(torch.from_numpy(x)).numpy()
    _close(model(ag.tensor(np.ascontiguousarray(x.transpose(0, 2, 1)))).numpy(), expected)

    torch_up = torch.nn.ConvTranspose2d(3, 2, 3, stride=2)
    up = ConvTranspose2d(3, 2, 3)
    nn.utils.load_torch_state_dict(up, {key: value.numpy() for key, value in torch_up.state_dict().items()})
    x = np.random.default_rng(3).standard_normal((2, 3, 4, 5)).astype(np.float32)
    with torch.no_grad():
        expected = torch_up(torch.from_numpy(x)).numpy().transpose(0, 2, 3, 1)
    _close(up(ag.tensor(np.ascontiguousarray(x.transpose(0, 2, 3, 1)))).numpy(), expected)
    back = nn.utils.torch_state_dict(up)
    np.testing.assert_array_equal(back["weight"], torch_up.weight.detach().numpy())


# ---- without torch: the layouts and the round trips --------------------------------------

def _by_hand_torch_layout(model):
    """torch's layout of build_cnn's state, written out by hand (OIHW convs; the first
    dense layer's columns in [C, H, W] flatten order)."""
    state = model.state_dict()
    expected = {}
    for key, value in state.items():
        if value.ndim == 4:
            expected[key] = value.transpose(3, 2, 0, 1)
        elif key == "7.weight":  # columns (h, w, c) -> (c, h, w)
            expected[key] = value.reshape(1024, 7, 7, 64).transpose(0, 3, 1, 2).reshape(1024, 3136)
        else:
            expected[key] = value
    return expected


def test_torch_state_dict_has_torch_layout_and_loads_back_exactly():
    model = build_cnn()
    state = nn.utils.torch_state_dict(model)
    expected = _by_hand_torch_layout(model)
    assert list(state) == list(model.state_dict())
    for key in expected:
        np.testing.assert_array_equal(state[key], expected[key], err_msg=key)
    fresh = build_cnn()
    assert nn.utils.load_torch_state_dict(fresh, state) == ([], [])
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(fresh.state_dict()[key], value, err_msg=key)


def test_flattened_from_overrides_or_disables_the_column_permutation():
    model = build_cnn()
    as_is = nn.utils.torch_state_dict(model, flattened_from={})
    np.testing.assert_array_equal(as_is["7.weight"], model.state_dict()["7.weight"])
    explicit = nn.utils.torch_state_dict(model, flattened_from={"7": 64})
    np.testing.assert_array_equal(explicit["7.weight"], nn.utils.torch_state_dict(model)["7.weight"])
    with pytest.raises(ValueError, match=r"flattened_from names '9'.*not a layer with a 2-D weight"):
        nn.utils.torch_state_dict(model, flattened_from={"9": 64})
    with pytest.raises(ValueError, match=r"flattened_from\['7'\] = 5 .*3136 input features"):
        nn.utils.load_torch_state_dict(model, as_is, flattened_from={"7": 5})


def test_state_round_trips_npz_safetensors_and_torch_layout(tmp_path):
    safetensors_numpy = _safetensors()
    model = RowSequenceClassifier("gru", hidden_size=8, num_layers=2)
    original = model.state_dict()
    checkpoint.save(tmp_path / "a.npz", original)
    checkpoint.save(tmp_path / "b.safetensors", checkpoint.load(tmp_path / "a.npz"))
    assert open(tmp_path / "b.safetensors", "rb").read(9)[8:] == b"{"  # the safetensors format
    loaded = RowSequenceClassifier("gru", hidden_size=8, num_layers=2)
    loaded.load_state_dict(str(tmp_path / "b.safetensors"))
    safetensors_numpy.save_file(dict(nn.utils.torch_state_dict(loaded)), str(tmp_path / "c.safetensors"))
    final = RowSequenceClassifier("gru", hidden_size=8, num_layers=2)
    nn.utils.load_torch_state_dict(final, tmp_path / "c.safetensors")
    checkpoint.save(tmp_path / "d.npz", final.state_dict())
    for key, value in original.items():
        np.testing.assert_array_equal(checkpoint.load(tmp_path / "d.npz")[key], value, err_msg=key)
    # read by safetensors itself: the keys are the state dict's own
    assert set(safetensors_numpy.load_file(str(tmp_path / "b.safetensors"))) == set(original)


def test_training_state_and_ag_save_round_trip_through_safetensors(tmp_path):
    safetensors_numpy = _safetensors()
    model = build_mlp()
    optimizer = nn.optim.Adam(model.parameters(), lr=0.01)
    path = tmp_path / "run.safetensors"
    checkpoint.save_training_state(path, model, optimizer, metadata={"epoch": 3, "model": "mlp"})
    assert checkpoint.read_metadata(path) == {"epoch": 3, "model": "mlp"}
    assert checkpoint.read_shapes(path)["model/1.weight"] == (200, 784)
    fresh = build_mlp()
    fresh_optimizer = nn.optim.Adam(fresh.parameters(), lr=0.5)
    assert checkpoint.load_training_state(path, fresh, fresh_optimizer) == {"epoch": 3, "model": "mlp"}
    assert fresh_optimizer.param_groups[0]["lr"] == 0.01
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(fresh.state_dict()[key], value)

    weights = ag.tensor(np.arange(6, dtype=np.float64).reshape(2, 3), requires_grad=True)
    tree = {"b": weights, "a": {"steps": ag.tensor(np.array([1, 2], np.int64)), "empty": {}}}
    ag.save(tree, tmp_path / "tree.safetensors")
    back = ag.load(tmp_path / "tree.safetensors")
    assert list(back) == ["b", "a"] and list(back["a"]) == ["steps", "empty"] and back["a"]["empty"] == {}
    assert back["b"].requires_grad and back["b"].dtype == np.float64
    np.testing.assert_array_equal(back["b"].numpy(), weights.numpy())
    assert not back["a"]["steps"].requires_grad and back["a"]["steps"].dtype == np.int64
    ag.save(weights, tmp_path / "one.safetensors")
    single = ag.load(tmp_path / "one.safetensors")
    assert single.requires_grad and np.array_equal(single.numpy(), weights.numpy())
    # a flat dict of tensors is a plain state dict that Module.load_state_dict reads
    ag.save({key: ag.tensor(value) for key, value in model.state_dict().items()}, tmp_path / "sd.safetensors")
    fresh.load_state_dict(tmp_path / "sd.safetensors")
    # a file some other program wrote loads as a flat dict of tensors
    safetensors_numpy.save_file({"w": np.ones((2, 2), np.float32)}, str(tmp_path / "foreign.safetensors"))
    foreign = ag.load(tmp_path / "foreign.safetensors")
    assert list(foreign) == ["w"] and foreign["w"].shape == (2, 2)


def test_npz_files_are_still_npz(tmp_path):
    checkpoint.save(tmp_path / "m.npz", build_mlp().state_dict())
    ag.save({"w": ag.tensor([1.0])}, tmp_path / "t.npz")
    for name in ("m.npz", "t.npz"):
        assert (tmp_path / name).read_bytes()[:4] == b"PK\x03\x04"


# ---- bad input -----------------------------------------------------------------------------

def test_missing_unexpected_and_misshaped_keys_name_the_key_and_the_layer():
    model = build_cnn()
    state = nn.utils.torch_state_dict(model)
    before = {key: value.copy() for key, value in model.state_dict().items()}

    broken = dict(state)
    del broken["3.bias"]
    broken["9.weight"] = np.zeros(3, np.float32)
    broken["features.0.weight"] = np.zeros(3, np.float32)
    with pytest.raises(ValueError) as error:
        nn.utils.load_torch_state_dict(model, broken)
    message = str(error.value)
    assert "missing key '3.bias' (Conv2d(32, 64, kernel_size=(5, 5)" in message
    assert "unexpected key '9.weight' (Dropout(p=0.4) at '9' has no such parameter)" in message
    assert "unexpected key 'features.0.weight' (the model has no layer 'features.0')" in message

    # our own layout where torch's is expected: the conv weight's shape is wrong
    wrong = dict(state, **{"0.weight": model.state_dict()["0.weight"]})
    with pytest.raises(ValueError, match=r"shape mismatch for '0.weight' \(Conv2d\(1, 32.* has \(5, 5, 1, 32\), "
                                         r"expected \(32, 1, 5, 5\) in torch's layout \(\(5, 5, 1, 32\) here\)"):
        nn.utils.load_torch_state_dict(model, wrong)
    with pytest.raises(ValueError, match=r"shape mismatch for '10.weight' \(Linear"):
        nn.utils.load_torch_state_dict(model, dict(state, **{"10.weight": np.zeros((10, 3), np.float32)}))
    for key, value in before.items():  # nothing changed by any failed load
        np.testing.assert_array_equal(model.state_dict()[key], value)


def test_strict_false_loads_what_matches_and_returns_the_rest_as_torch_does():
    source, model = build_cnn(), build_cnn()
    own_bias = np.full(10, 7.0, np.float32)
    model.load_state_dict({"10.bias": own_bias}, strict=False)
    state = nn.utils.torch_state_dict(source)
    del state["10.bias"]
    state["extra"] = np.zeros(1, np.float32)
    result = nn.utils.load_torch_state_dict(model, state, strict=False)
    assert result.missing_keys == ["10.bias"] and result.unexpected_keys == ["extra"]
    np.testing.assert_array_equal(model.state_dict()["0.weight"], source.state_dict()["0.weight"])
    np.testing.assert_array_equal(model.state_dict()["10.bias"], own_bias)  # missing: left as it was


def test_num_batches_tracked_is_optional_as_in_torch():
    model = build_mlp()
    state = nn.utils.torch_state_dict(model)
    state["1.num_batches_tracked"] = np.array(4, np.int64)  # torch's BatchNorm counter
    assert nn.utils.load_torch_state_dict(model, state) == ([], [])


def test_bad_files_and_arguments_get_clear_errors(tmp_path):
    model = build_mlp()
    with pytest.raises(TypeError, match="load_torch_state_dict: model must be an nn.Module"):
        nn.utils.load_torch_state_dict({}, {})
    with pytest.raises(TypeError, match="expected a dict of name -> array or the path"):
        nn.utils.load_torch_state_dict(model, [1, 2])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        nn.utils.load_torch_state_dict(model, tmp_path / "absent.safetensors")
    (tmp_path / "model.pt").write_bytes(b"\x80\x02pickle")
    with pytest.raises(ValueError, match="torch.save file, which is a pickle"):
        nn.utils.load_torch_state_dict(model, tmp_path / "model.pt")
    with pytest.raises(TypeError, match="'1.weight' has dtype <U"):
        nn.utils.load_torch_state_dict(model, dict(nn.utils.torch_state_dict(model), **{"1.weight": np.array("x")}))

    _safetensors()
    good = tmp_path / "good.safetensors"
    checkpoint.save(good, model.state_dict())
    data = good.read_bytes()
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(data[:-100])
    with pytest.raises(ValueError, match="truncated.safetensors' is a corrupt or truncated safetensors file"):
        checkpoint.load(truncated)
    with pytest.raises(ValueError, match="corrupt or truncated safetensors file"):
        nn.utils.load_torch_state_dict(model, truncated)
    with pytest.raises(TypeError, match=r"the entry 'names' has dtype <U1, which safetensors cannot hold"):
        checkpoint.save(tmp_path / "s.safetensors", {"names": np.array(["a", "b"])})
    assert not (tmp_path / "s.safetensors").exists()


def test_without_the_safetensors_package_the_error_says_how_to_get_it(tmp_path, monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "safetensors.numpy", None)
    with pytest.raises(ImportError, match=r"pip install safetensors"):
        checkpoint.save(tmp_path / "x.safetensors", {"w": np.ones(2)})
    with pytest.raises(ImportError, match=r"autograd-core\[safetensors\]"):
        ag.save({"w": ag.tensor([1.0])}, tmp_path / "y.safetensors")
    checkpoint.save(tmp_path / "x.npz", {"w": np.ones(2)})  # .npz needs nothing more


def test_a_language_model_checkpoint_can_be_a_safetensors_file(tmp_path):
    _safetensors()
    from nn.apps.text import CharLanguageModel, CharVocabulary, load_language_model, save_language_model
    vocabulary = CharVocabulary("hello world")
    model = CharLanguageModel(vocabulary.size, embedding_dim=4, hidden_size=8, num_layers=2)
    path = tmp_path / "lm.safetensors"
    save_language_model(path, model, vocabulary)
    loaded, loaded_vocabulary, metadata = load_language_model(path)
    assert metadata["kind"] == "char-lm" and loaded_vocabulary.size == vocabulary.size
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(loaded.state_dict()[key], value, err_msg=key)
