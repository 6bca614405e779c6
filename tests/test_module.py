"""Module mechanics: registration, traversal, modes, state_dict round trips and errors, repr."""
import copy
import pickle
from collections import OrderedDict

import numpy as np
import pytest

import autograd_core as ag
import nn


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.first = nn.Linear(3, 4)
        self.activation = nn.ReLU()
        self.second = nn.Linear(4, 2, bias=False)
        self.scale = nn.Parameter(np.ones(2, dtype=np.float32))

    def forward(self, x):
        return self.second(self.activation(self.first(x))) * self.scale


class Tied(nn.Module):
    """Two Linear layers sharing one weight Parameter."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.Linear(3, 3)
        self.decoder = nn.Linear(3, 3)
        self.decoder.weight = self.encoder.weight

    def forward(self, x):
        return self.decoder(self.encoder(x))


def test_parameter_defaults():
    p = nn.Parameter([1.0, 2.0])
    assert p.requires_grad and p.dtype == np.float32 and isinstance(p, ag.Tensor)
    assert nn.Parameter(np.arange(3)).dtype == np.float32            # integers become float32
    assert nn.Parameter(np.zeros(2, dtype=np.float64)).dtype == np.float64  # floats keep their dtype
    assert nn.Parameter(np.zeros(2), dtype=np.float32).dtype == np.float32
    assert not nn.Parameter(np.zeros(2), requires_grad=False).requires_grad
    assert repr(p).startswith("Parameter containing:")


def test_registration_and_named_parameters_order():
    block = Block()
    names = [name for name, _ in block.named_parameters()]
    assert names == ["scale", "first.weight", "first.bias", "second.weight"]
    assert [p.shape for p in block.parameters()] == [(2,), (4, 3), (4,), (2, 4)]
    assert [name for name, _ in block.named_children()] == ["first", "activation", "second"]
    assert [type(m).__name__ for m in block.modules()] == ["Block", "Linear", "ReLU", "Linear"]
    assert [name for name, _ in block.named_modules()] == ["", "first", "activation", "second"]
    assert list(block.named_parameters(recurse=False)) == [("scale", block.scale)]


def test_reassigning_and_deleting_registered_attributes():
    block = Block()
    block.first = nn.Linear(3, 5)
    assert block.first.out_features == 5
    assert dict(block.named_parameters())["first.weight"].shape == (5, 3)
    with pytest.raises(TypeError, match="Block.scale is a Parameter"):
        block.scale = np.ones(2)
    with pytest.raises(TypeError, match="sub-module"):
        block.first = 3
    block.scale = None
    assert "scale" not in dict(block.named_parameters())
    del block.second
    assert [name for name, _ in block.named_children()] == ["first", "activation"]
    with pytest.raises(AttributeError):
        block.second


def test_assignment_before_init_is_explained():
    class Broken(nn.Module):
        def __init__(self):
            self.layer = nn.Linear(2, 2)
    with pytest.raises(AttributeError, match="super\\(\\).__init__"):
        Broken()


def test_shared_parameters_are_deduplicated():
    tied = Tied()
    names = [name for name, _ in tied.named_parameters()]
    assert names == ["encoder.weight", "encoder.bias", "decoder.bias"]
    assert list(tied.state_dict()) == names
    # the same module registered twice is visited once
    layer = nn.Linear(2, 2)
    seq = nn.Sequential(layer, layer)
    assert len(list(seq.parameters())) == 2
    assert len(list(seq.modules())) == 2


def test_train_eval_is_recursive():
    model = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.Dropout(0.5), nn.ReLU()))
    assert all(m.training for m in model.modules())
    assert model.eval() is model
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())
    with pytest.raises(TypeError, match="bool"):
        model.train("no")


def test_call_runs_forward_and_zero_grad():
    block = Block()
    x = ag.randn(5, 3)
    out = block(x)
    assert out.shape == (5, 2)
    out.sum().backward()
    assert all(p.grad is not None for p in block.parameters())
    block.zero_grad(set_to_none=False)
    assert all(np.all(p.grad.data == 0) for p in block.parameters())
    block.zero_grad()
    assert all(p.grad is None for p in block.parameters())


def test_state_dict_is_an_ordered_copy():
    block = Block()
    state = block.state_dict()
    assert isinstance(state, OrderedDict)
    assert list(state) == [name for name, _ in block.named_parameters()]
    state["first.weight"][...] = 123.0
    assert not np.any(block.first.weight.data == 123.0)


def test_state_dict_round_trip_in_place():
    source, target = Block(), Block()
    weight_array = target.first.weight.data
    result = target.load_state_dict(source.state_dict())
    assert result == nn.IncompatibleKeys([], [])
    for (name, a), (_, b) in zip(source.named_parameters(), target.named_parameters()):
        np.testing.assert_array_equal(a.data, b.data, err_msg=name)
    assert target.first.weight.data is weight_array  # loaded in place
    x = ag.randn(4, 3)
    np.testing.assert_array_equal(source(x).data, target(x).data)


def test_state_dict_through_npz(tmp_path):
    source, target = Block(), Block()
    np.savez(tmp_path / "model.npz", **source.state_dict())
    with np.load(tmp_path / "model.npz") as archive:
        target.load_state_dict(dict(archive))
    np.testing.assert_array_equal(source.second.weight.data, target.second.weight.data)


def test_load_state_dict_errors_name_the_keys():
    block = Block()
    state = block.state_dict()
    del state["first.bias"]
    state["extra.weight"] = np.zeros(3, dtype=np.float32)
    before = block.first.weight.data.copy()
    with pytest.raises(ValueError) as info:
        block.load_state_dict(state)
    message = str(info.value)
    assert "missing keys ['first.bias']" in message and "unexpected keys ['extra.weight']" in message
    np.testing.assert_array_equal(block.first.weight.data, before)  # nothing changed
    result = block.load_state_dict(state, strict=False)
    assert result.missing_keys == ["first.bias"] and result.unexpected_keys == ["extra.weight"]


def test_load_state_dict_shape_mismatch_names_key_and_shapes():
    block = Block()
    state = block.state_dict()
    state["first.weight"] = np.zeros((3, 4), dtype=np.float32)
    with pytest.raises(ValueError, match=r"'first.weight'.*\(3, 4\).*\(4, 3\)"):
        block.load_state_dict(state)
    with pytest.raises(ValueError, match="shape mismatch"):
        block.load_state_dict(state, strict=False)


def test_load_state_dict_casts_to_parameter_dtype():
    layer = nn.Linear(2, 2)
    state = {name: value.astype(np.float64) + 1 for name, value in layer.state_dict().items()}
    layer.load_state_dict(state)
    assert layer.weight.dtype == np.float32
    np.testing.assert_allclose(layer.weight.data, state["weight"], rtol=1e-6)


def test_buffers_are_saved_and_loaded():
    class WithBuffer(nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = nn.Linear(2, 2)
            self.register_buffer("running_mean", np.zeros(2, dtype=np.float32))

    model = WithBuffer()
    assert list(model.state_dict()) == ["layer.weight", "layer.bias", "running_mean"]
    state = model.state_dict()
    state["running_mean"] = np.array([1.0, 2.0], dtype=np.float32)
    model.load_state_dict(state)
    np.testing.assert_array_equal(model.running_mean, [1.0, 2.0])
    assert list(model.parameters()) == [model.layer.weight, model.layer.bias]


def test_sequential_indexing_and_ordered_dict_names():
    model = nn.Sequential(OrderedDict([("hidden", nn.Linear(2, 3)), ("act", nn.Tanh())]))
    assert [name for name, _ in model.named_parameters()] == ["hidden.weight", "hidden.bias"]
    assert isinstance(model[1], nn.Tanh) and isinstance(model[-1], nn.Tanh) and len(model) == 2
    head = model[:1]
    assert isinstance(head, nn.Sequential) and head[0] is model.hidden
    with pytest.raises(IndexError, match="out of range"):
        model[5]
    with pytest.raises(TypeError, match="must be a Module"):
        nn.Sequential(nn.ReLU(), lambda x: x)
    model.append(nn.Linear(3, 1))
    x = ag.randn(4, 2)
    expected = model[2](model[1](model[0](x)))
    np.testing.assert_array_equal(model(x).data, expected.data)


def test_module_list():
    layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    assert len(layers) == 3
    assert [name for name, _ in layers.named_parameters()][:2] == ["0.weight", "0.bias"]
    extra = nn.Linear(2, 2)
    layers.insert(0, extra)
    assert layers[0] is extra and len(layers) == 4
    assert [name for name, _ in layers.named_children()] == ["0", "1", "2", "3"]
    del layers[1]
    assert len(layers) == 3 and layers[0] is extra
    replacement = nn.Linear(2, 2)
    layers[-1] = replacement
    assert layers[2] is replacement
    with pytest.raises(IndexError):
        layers[3]
    with pytest.raises(TypeError, match="expected a Module"):
        layers.append("linear")
    owner = nn.Module()
    owner.blocks = layers
    assert len(list(owner.parameters())) == 6


def test_repr_is_nested_like_pytorch():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Sequential(nn.Flatten(), nn.Linear(8, 2)))
    assert repr(model) == (
        "Sequential(\n"
        "  (0): Conv2d(1, 4, kernel_size=(3, 3), stride=(1, 1), padding='same')\n"
        "  (1): ReLU()\n"
        "  (2): Sequential(\n"
        "    (0): Flatten(start_dim=1, end_dim=-1)\n"
        "    (1): Linear(in_features=8, out_features=2, bias=True)\n"
        "  )\n"
        ")")


def test_apply_and_requires_grad():
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    model.apply(lambda m: nn.init.zeros_(m.weight) if isinstance(m, nn.Linear) else None)
    assert all(np.all(m.weight.data == 0) for m in model if isinstance(m, nn.Linear))
    model.requires_grad_(False)
    assert not any(p.requires_grad for p in model.parameters())


def test_deepcopy_and_pickle_copy_parameters():
    block = Block()
    clone = copy.deepcopy(block)
    assert isinstance(clone.first.weight, nn.Parameter)
    assert clone.first.weight.data is not block.first.weight.data
    np.testing.assert_array_equal(clone.first.weight.data, block.first.weight.data)
    restored = pickle.loads(pickle.dumps(block))
    x = ag.randn(2, 3)
    np.testing.assert_array_equal(restored(x).data, block(x).data)


def test_forward_must_be_defined():
    with pytest.raises(NotImplementedError, match="Module must define forward"):
        nn.Module()(1)


def test_to_double_enables_gradcheck_of_a_whole_model():
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    weight = model[0].weight
    optimizer = nn.optim.SGD(model.parameters(), lr=0.1)
    assert model.double() is model
    assert all(p.dtype == np.float64 for p in model.parameters()) and model[0].weight is weight
    x = ag.Tensor(np.random.default_rng(0).standard_normal((2, 3)), requires_grad=True)
    assert ag.gradcheck(model, x)
    # a parameter's gradient, checked against central differences by hand
    model.zero_grad()  # gradcheck's own backward reached the parameters too
    model(x).sum().backward()
    analytic = weight.grad.data[1, 2]
    original = weight.data[1, 2]
    values = []
    for shift in (1e-6, -1e-6):
        weight.data[1, 2] = original + shift
        values.append(model(x).sum().item())
    weight.data[1, 2] = original
    assert analytic == pytest.approx((values[0] - values[1]) / 2e-6, rel=1e-6)
    optimizer.step()  # the optimizer still updates the converted parameters
    assert weight.data[1, 2] != original
    assert model.float()[0].weight.dtype == np.float32
    with pytest.raises(TypeError, match="expected a float dtype"):
        model.to(np.int32)
