"""In-place changes and backward (issue 10, item 3): a tensor's version counter, the
in-place Tensor methods that bump it, and the engine's check that what an op saved for
backward was not changed in place since. As in PyTorch, `loss = f(); optimizer.step();
loss.backward()` raises instead of silently using the new weights."""
import numpy as np
import pytest

import autograd_core as ag
import nn
from nn import optim

from strategies import leaf

MODIFIED = "modified in place after the forward pass saved it"


def _model():
    ag.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2))


OPTIMIZERS = {
    "SGD": lambda params: optim.SGD(params, lr=0.1),
    "SGD momentum": lambda params: optim.SGD(params, lr=0.1, momentum=0.9, nesterov=True),
    "Adam": lambda params: optim.Adam(params, lr=0.1),
    "RMSprop": lambda params: optim.RMSprop(params, lr=0.1, momentum=0.5, centered=True),
}


# -- the optimizer case ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_backward_after_an_optimizer_step_raises_naming_the_op(name):
    model = _model()
    optimizer = OPTIMIZERS[name](model.parameters())
    x = ag.randn(5, 4)
    model(x).sum().backward()
    loss = model(x).sum()
    optimizer.step()  # changes the weights that loss's backward needs
    with pytest.raises(RuntimeError, match=r"Linear: .*shape \(2, 3\).*%s.*%s" % (MODIFIED, name.split()[0])):
        loss.backward()


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_each_step_bumps_the_version_of_the_parameters_it_updates(name):
    model = _model()
    optimizer = OPTIMIZERS[name](model.parameters())
    first, *rest = model.parameters()
    before = [p._version for p in model.parameters()]  # initialisation counts, as in torch
    model(ag.randn(5, 4)).sum().backward()
    first.grad = None  # skipped by the step: unchanged
    optimizer.step()
    optimizer.step()
    assert first._version == before[0]
    assert [p._version for p in rest] == [version + 2 for version in before[1:]]


def test_the_usual_loop_of_backward_then_step_is_unaffected():
    model, reference = _model(), _model()
    optimizer = optim.Adam(model.parameters(), lr=0.01)
    reference_optimizer = optim.Adam(reference.parameters(), lr=0.01)
    x = ag.randn(5, 4)
    for _ in range(3):
        for net, opt in ((model, optimizer), (reference, reference_optimizer)):
            opt.zero_grad()
            net(x).sum().backward()
            opt.step()
    for p, q in zip(model.parameters(), reference.parameters()):
        np.testing.assert_array_equal(p.numpy(), q.numpy())


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
def test_a_recurrent_graph_is_checked_too(kind):
    # the fused layers take their weights as plain arrays: the check goes by memory, so it sees them
    ag.manual_seed(0)
    lstm = getattr(nn, kind)(3, 4, num_layers=2)
    optimizer = optim.SGD(list(lstm.parameters()), lr=0.1)
    x = ag.randn(2, 5, 3)
    output, _ = lstm(x)
    output.sum().backward()
    optimizer.step()  # after backward: fine
    output, _ = lstm(x)
    loss = output.sum()
    optimizer.step()
    with pytest.raises(RuntimeError, match=MODIFIED):
        loss.backward()


def test_a_retained_graph_is_checked_again_on_the_second_backward():
    w = leaf([1.0, 2.0])
    loss = (w * w).sum()
    loss.backward(retain_graph=True)
    with ag.no_grad():
        w.add_(1.0)
    with pytest.raises(RuntimeError, match="mul: .*shape \\(2,\\), float64"):
        loss.backward()


# -- which changes are seen -----------------------------------------------------------------------------
def test_a_saved_input_changed_in_place_raises_naming_the_op_and_the_versions():
    a, b = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    y = (a * b).sum()
    with ag.no_grad():
        b.mul_(2)
    with pytest.raises(RuntimeError, match=r"mul: .*\(shape \(2,\), float64\).*mul_ changed a tensor of shape "
                                           r"\(2,\) \(float64\).*now at version 1.*\.data"):
        y.backward()


def test_a_saved_output_changed_in_place_raises():
    x = leaf([0.5, -1.0])
    s = x.sigmoid()  # sigmoid's backward reads its output
    with ag.no_grad():
        s.zero_()
    with pytest.raises(RuntimeError, match="sigmoid: .*zero_ changed"):
        s.sum().backward()


@pytest.mark.parametrize("change", [
    lambda w: w.mul_(2),                          # the base, saved through its view w.T
    lambda w: w[0].zero_(),                       # a slice view of the base
    lambda w: w.detach().add_(1.0),               # a detached tensor sharing the memory
    lambda w: w.reshape(-1).__setitem__(0, 5.0),  # a reshaped view, by indexing
], ids=["base", "slice", "detached", "reshaped"])
def test_a_change_through_any_view_of_saved_memory_raises(change):
    x = ag.randn(2, 4, dtype=np.float64)
    w = ag.randn(3, 4, dtype=np.float64, requires_grad=True)
    y = (x @ w.T).sum()  # matmul saves w.T's array, a view of w's memory
    with ag.no_grad():
        change(w)
    with pytest.raises(RuntimeError, match="matmul: .*" + MODIFIED):
        y.backward()


def test_changes_that_backward_does_not_need_are_allowed():
    a = leaf([1.0, 2.0, 3.0])
    weight = leaf([[1.0], [2.0], [3.0]])
    total = (a.reshape(3, 1) * weight).sum()  # mul saves a's reshape for weight's gradient: changed below
    shifted = a[1:].sum()                # getitem and sum save no values
    other = leaf([5.0, 6.0, 7.0])
    with ag.no_grad():
        other.zero_()                    # memory that nothing saved
        a.add_(10.0)
    shifted.backward()
    np.testing.assert_array_equal(a.grad.numpy(), [0.0, 1.0, 1.0])
    with pytest.raises(RuntimeError, match="mul: "):
        total.backward()


def test_add_and_sub_save_nothing_so_their_operands_may_change():
    """As in PyTorch: their gradients never read the operands."""
    a, b = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    y = ((a + b) - a * b).sum()       # mul saves a (for b's gradient): so a change of a is still caught
    z = (a + b - b).sum()
    with ag.no_grad():
        b.add_(1.0)
    z.backward()
    np.testing.assert_array_equal(a.grad.numpy(), [1.0, 1.0])
    np.testing.assert_array_equal(b.grad.numpy(), [0.0, 0.0])
    with ag.no_grad():
        a.add_(1.0)
    with pytest.raises(RuntimeError, match="mul: "):
        y.backward()


def test_mul_saves_an_operand_only_for_the_other_operands_gradient():
    """As in PyTorch: y * 3 needs nothing of y for y's gradient, so y may change after it;
    y * w saves both (each is the other's gradient)."""
    x, w = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    y = x * 1
    scaled = y * 3
    y.add_(1)
    (scaled + y).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [4.0, 4.0])
    y = x * 1
    product = y * w
    y.add_(1)
    with pytest.raises(RuntimeError, match="mul: .*add_ changed"):
        product.sum().backward()


def test_changes_before_the_forward_pass_are_fine():
    w = leaf([1.0, 2.0])
    with ag.no_grad():
        w.mul_(3)
    (w * w).sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), [6.0, 12.0])


def test_writes_through_data_are_the_untracked_escape_hatch():
    w = leaf([1.0, 2.0])
    loss = (w * w).sum()
    w.data[...] = 10.0  # documented: not seen (and so backward uses the new values)
    loss.backward()
    assert w._version == 0
    np.testing.assert_array_equal(w.grad.numpy(), [20.0, 20.0])


# -- the in-place methods -------------------------------------------------------------------------------
IN_PLACE = {
    "add_": (lambda t: t.add_(ag.tensor([1.0, 3.0], dtype=np.float64), alpha=2), [1.0, 4.0]),
    "sub_": (lambda t: t.sub_(1.0), [-2.0, -3.0]),
    "mul_": (lambda t: t.mul_(ag.tensor([2.0, 3.0], dtype=np.float64)), [-2.0, -6.0]),
    "div_": (lambda t: t.div_(2.0), [-0.5, -1.0]),
    "clamp_": (lambda t: t.clamp_(min=-1.5, max=0.0), [-1.0, -1.5]),
    "copy_": (lambda t: t.copy_(np.array([7, 8])), [7.0, 8.0]),
    "fill_": (lambda t: t.fill_(4.0), [4.0, 4.0]),
    "zero_": (lambda t: t.zero_(), [0.0, 0.0]),
}


@pytest.mark.parametrize("method", sorted(IN_PLACE))
def test_in_place_methods_change_the_tensor_itself_and_bump_its_version(method):
    change, expected = IN_PLACE[method]
    t = ag.tensor([-1.0, -2.0], dtype=np.float64)
    array = t.numpy()
    assert change(t) is t
    assert t.numpy() is array  # the same memory, changed
    np.testing.assert_array_equal(array, expected)
    assert t._version == 1


def test_setitem_writes_in_place_and_bumps_the_version():
    t = ag.zeros(2, 3)
    t[0, 1:] = 5.0
    t[ag.tensor([1])] = ag.tensor([1.0, 2.0, 3.0])
    np.testing.assert_array_equal(t.numpy(), [[0.0, 5.0, 5.0], [1.0, 2.0, 3.0]])
    assert t._version == 2


def test_in_place_methods_on_a_tensor_that_requires_grad_need_no_grad():
    w = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match="add_: a leaf tensor that requires grad .* in-place operation"):
        w.add_(1.0)
    with pytest.raises(RuntimeError, match="__setitem__: a leaf tensor that requires grad"):
        w[0] = 3.0
    with pytest.raises(RuntimeError, match="sub_: a leaf tensor that requires grad"):
        w -= 1.0
    assert w._version == 0
    np.testing.assert_array_equal(w.numpy(), [1.0, 2.0])
    with ag.no_grad():
        w.add_(1.0)
    np.testing.assert_array_equal(w.numpy(), [2.0, 3.0])


def test_in_place_methods_refuse_what_does_not_fit_naming_the_method():
    t = ag.zeros(2, 3)
    with pytest.raises(ValueError, match=r"add_: cannot write the result into a tensor of shape \(2, 3\)"):
        t.add_(ag.zeros(4))
    with pytest.raises(TypeError, match="mul_: .*int64"):
        ag.tensor([1, 2]).mul_(0.5)  # a float result does not fit an integer tensor
    with pytest.raises(ValueError, match="copy_: cannot write"):
        t.copy_(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="clamp_: got neither min nor max"):
        t.clamp_()
    assert t._version == 0


def test_augmented_assignment_is_in_place():
    """As in PyTorch (it rebound t to a new tensor before issue 12)."""
    t = ag.tensor([1.0, 2.0])
    array = t.numpy()
    u = t
    u += 1
    assert u is t and t.numpy() is array and t._version == 1
    np.testing.assert_array_equal(array, [2.0, 3.0])


def test_the_log_of_changes_keeps_no_array_alive_and_stays_small():
    import gc
    import weakref
    from autograd_core import engine
    gc.collect()
    engine.CHANGES.prune()  # (earlier tests may have left the limit raised: it grows with the live arrays)
    refs = []
    for _ in range(200):
        t = ag.zeros(16)
        t.zero_()
        refs.append(weakref.ref(t.data))
        del t
    gc.collect()
    assert all(r() is None for r in refs)
    # dead ranges are dropped as the log grows
    assert len(engine.CHANGES.ranges) <= 65 and len(engine.CHANGES.known) <= 65


def test_setitem_refuses_what_does_not_fit_naming_the_method():
    t = ag.zeros(2, 3)
    with pytest.raises(IndexError, match=r"__setitem__: cannot write int into t\[5\] of a tensor of shape \(2, 3\)"):
        t[5] = 1
    with pytest.raises(ValueError, match=r"__setitem__: cannot write Tensor into t\[0\]"):
        t[0] = ag.zeros(4)
    assert t._version == 0


def test_an_unrelated_change_between_forward_and_backward_costs_one_scan_of_the_log():
    # every node takes the slow path then (the clock moved); the result is still right
    from autograd_core import engine
    x = leaf(np.linspace(-1.0, 1.0, 6))
    y = x
    for _ in range(50):
        y = y * 1.01 + 0.1
    unrelated = ag.zeros(3)
    unrelated.zero_()
    scans = []
    original = engine.CHANGES.changes_since

    class Counting:
        def __getattr__(self, name):
            return getattr(original.__self__, name)

        def changes_since(self, tick):
            scans.append(tick)
            return original(tick)

    engine.CHANGES = Counting()
    try:
        y.sum().backward()
    finally:
        engine.CHANGES = original.__self__
    assert len(scans) == 1
    np.testing.assert_allclose(x.grad.numpy(), np.full(6, 1.01 ** 50))


def test_changes_from_several_threads_are_all_counted_and_seen():
    import threading
    from autograd_core import engine
    tensors = [ag.zeros(4) for _ in range(8)]
    start = engine.CHANGES.tick
    w = leaf([1.0, 2.0])
    loss = (w * w).sum()

    def work(t):
        for _ in range(200):
            t.add_(1.0)

    threads = [threading.Thread(target=work, args=(t,)) for t in tensors]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert engine.CHANGES.tick - start == 8 * 200
    assert [t._version for t in tensors] == [200] * 8
    loss.backward()  # none of them touched w
    with ag.no_grad():
        w.mul_(2)
    loss = (w * w).sum()
    changer = threading.Thread(target=lambda: w.detach().add_(1.0))  # a change from another thread
    changer.start()
    changer.join()
    with pytest.raises(RuntimeError, match="mul: "):
        loss.backward()


def test_load_state_dict_and_init_are_in_place_changes():
    import nn
    layer = nn.Linear(3, 2)
    x = ag.tensor(np.ones((4, 3), np.float32))
    loss = layer(x).sum()
    layer.load_state_dict({name: np.zeros_like(p.data) for name, p in layer.named_parameters()})
    with pytest.raises(RuntimeError, match="load_state_dict"):
        loss.backward()
    loss = layer(x).sum()
    nn.init.normal_(layer.weight)
    with pytest.raises(RuntimeError, match="nn.init.normal_"):
        loss.backward()
