"""The op registry drives these tests (PyTorch's OpInfo, in small): every registered op
must have an entry in tests/op_table.py, and each entry's samples are checked against
its numpy reference and, for differentiable ops, with gradcheck in float64. Also: the
exports and Tensor methods come from the registry, and the core imports form no cycle."""

import numpy as np
import pytest

import autograd_core as ag
from autograd_core import Tensor, gradcheck, registry

from op_table import SAME, TABLE

OPS = registry.ops()


def test_every_registered_op_has_a_table_entry():
    missing = sorted(set(OPS) - set(TABLE))
    assert not missing, "registered ops without an entry in tests/op_table.py: %s" % missing


def test_every_table_entry_names_a_registered_op():
    unknown = sorted(set(TABLE) - set(OPS))
    assert not unknown, "tests/op_table.py has entries for ops that are not registered: %s" % unknown


def _tensors(args, dtype=np.float64, requires_grad=False):
    """Sample args with their numpy arrays as Tensors (float ones in dtype)."""
    return tuple(Tensor(a.astype(dtype) if a.dtype.kind == "f" else a,
                        requires_grad=requires_grad and a.dtype.kind == "f") if isinstance(a, np.ndarray) else a
                 for a in args)


def _call(name, args, kwargs):
    entry, function = TABLE[name], OPS[name].function
    return entry.call(function, *args, **kwargs) if entry.call else function(*args, **kwargs)


def _cases(differentiable_only=False):
    rng = np.random.default_rng(0)
    cases = []
    for name in sorted(OPS):
        entry = TABLE.get(name)
        if entry is None:  # reported by test_every_registered_op_has_a_table_entry
            continue
        if differentiable_only and not entry.gradcheck:
            continue
        for index, sample in enumerate(entry.samples(rng)):
            cases.append(pytest.param(name, sample, id="%s-%d" % (name, index)))
    return cases


@pytest.mark.parametrize("name, sample", _cases())
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_forward_matches_numpy_reference(name, sample, dtype):
    got = _call(name, _tensors(sample.args, dtype), sample.kwargs)
    expected = TABLE[name].reference(*sample.args, **sample.kwargs)
    got, expected = (got, expected) if isinstance(expected, tuple) else ((got,), (expected,))
    assert len(got) == len(expected)
    tolerance = 1e-5 if dtype == np.float32 else 1e-12
    for g, e in zip(got, expected):
        assert isinstance(g, Tensor)
        assert g.shape == np.shape(e)
        if not TABLE[name].keeps_dtype:
            assert g.dtype == np.asarray(e).dtype
        elif np.asarray(e).dtype.kind == "f" and g.dtype.kind == "f":
            # float results keep the inputs' float dtype (a Python number operand does not promote)
            assert g.dtype == dtype or not any(isinstance(a, np.ndarray) and a.dtype.kind == "f" for a in sample.args)
        np.testing.assert_allclose(g.data.astype(np.float64), e, rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("name, sample", _cases(differentiable_only=True))
def test_gradcheck(name, sample):
    assert OPS[name].differentiable, "%s: the table gradchecks an op registered as not differentiable" % name
    inputs = _tensors(sample.args, requires_grad=True)
    assert gradcheck(lambda *xs: _call(name, xs, sample.kwargs), inputs) is True


@pytest.mark.parametrize("name", sorted(name for name, info in OPS.items() if not info.differentiable))
def test_non_differentiable_ops_stay_off_the_graph(name):
    assert not TABLE[name].gradcheck, "%s is not differentiable: its table entry must say gradcheck=False" % name
    sample = TABLE[name].samples(np.random.default_rng(0))[0]
    result = _call(name, _tensors(sample.args, requires_grad=True), sample.kwargs)
    assert not result.requires_grad and result.grad_fn is None


def _torch_cases():
    return [case for case in _cases() if TABLE[case.values[0]].torch is not None]


@pytest.mark.parametrize("name, sample", _torch_cases())
def test_forward_and_gradients_match_pytorch(name, sample):
    """Where torch is installed: the same call in torch gives the same values, dtypes and,
    for differentiable ops, the same gradients of a random weighting of the outputs."""
    torch = pytest.importorskip("torch")
    entry = TABLE[name]
    ours = _tensors(sample.args, requires_grad=entry.gradcheck)
    theirs = tuple(torch.tensor(a, requires_grad=entry.gradcheck and a.dtype.kind == "f")
                   if isinstance(a, np.ndarray) else a for a in sample.args)
    got = _call(name, ours, sample.kwargs)
    expected = (getattr(torch, name)(*theirs, **sample.kwargs) if entry.torch == SAME
                else entry.torch(torch, *theirs, **sample.kwargs))
    got, expected = (tuple(got), tuple(expected)) if isinstance(got, tuple) else ((got,), (expected,))
    assert len(got) == len(expected)
    rng = np.random.default_rng(1)
    our_total, their_total = 0, 0
    for g, e in zip(got, expected):
        assert g.shape == tuple(e.shape), (name, g.shape, tuple(e.shape))
        assert str(g.dtype) == str(e.dtype).replace("torch.", ""), (name, g.dtype, e.dtype)
        np.testing.assert_allclose(g.data, e.detach().numpy(), rtol=1e-10, atol=1e-12)
        if entry.gradcheck and g.dtype.kind == "f":
            weights = rng.standard_normal(g.shape)
            our_total = our_total + (g * Tensor(weights)).sum()
            their_total = their_total + (e * torch.tensor(weights)).sum()
    if not entry.gradcheck:
        return
    our_total.backward()
    their_total.backward()
    for mine, torchs in zip(ours, theirs):
        if isinstance(mine, Tensor) and mine.requires_grad:
            expected_grad = torchs.grad.numpy() if torchs.grad is not None else np.zeros(mine.shape)
            np.testing.assert_allclose(mine.grad.data, expected_grad, rtol=1e-9, atol=1e-12)


def test_exports_and_methods_come_from_the_registry():
    for name, info in OPS.items():
        assert getattr(ag, name) is info.function and name in ag.__all__
        for method in info.methods:  # the function itself: no wrapper call between a + b and add
            assert Tensor.__dict__[method] is info.function, (name, method)
        for method in info.reflected:
            assert callable(Tensor.__dict__[method])
    assert Tensor.__add__ is ag.add and Tensor.exp is ag.exp and Tensor.view is ag.reshape


def test_register_refuses_a_duplicate_name_and_a_non_op():
    with pytest.raises(ValueError, match="register: an op named 'add' is already registered"):
        registry.register("add")(lambda a, b: a)
    with pytest.raises(TypeError, match=r"register\('thing'\): got int, expected a Function subclass or a function"):
        registry.register("thing")(3)
    assert "thing" not in registry.ops()


def test_register_refuses_to_replace_a_tensor_method():
    with pytest.raises(ValueError, match=r"register\('my_op'\): Tensor already defines backward"):
        registry.register("my_op", methods=("backward",))(lambda x: x)


