"""In-place operations as PyTorch has them (issue 12): augmented assignment and the `_`
methods change the tensor itself; on a leaf that requires grad only under no_grad (the
hand-written SGD step); in a graph they are recorded as ops, writes through views
included (PyTorch's CopySlices). Each graph case is checked against a gradient worked
out by hand and, where torch is installed, against torch's."""
import numpy as np
import pytest

import autograd_core as ag

from strategies import leaf

X = np.array([[0.5, -1.0, 2.0, 0.25], [1.5, -0.45, 0.75, -2.0], [1.0, 0.3, -0.2, 0.6]])
W = np.array([[0.2, 0.4, -0.6, 1.1], [-0.3, 0.9, 0.5, 0.7], [0.8, -1.2, 0.1, 0.35]])
MASK = X > 0.55
INDEX = [[0, 2, 1, 3], [3, 3, 0, 1], [1, 0, 2, 2]]


def _index(lib, values):
    return lib.tensor(np.array(values, dtype=np.int64))


# each case: (lib, x, w) -> the loss; x and w are float64 leaves of shape (3, 4) that require grad.
# Written once with the API the two libraries share.
CASES = {
    "add_ relu_ chain": lambda lib, x, w: _chain(x),
    "add_ relu_ mul_ chain": lambda lib, x, w: _chain_past_relu(x),
    "augmented assignment": lambda lib, x, w: _augmented(x, w),
    "mul_ by itself": lambda lib, x, w: _self_product(x),
    "mul_ by an operand": lambda lib, x, w: ((x + 1).mul_(x) * w).sum(),
    "sigmoid_ tanh_ exp_": lambda lib, x, w: ((x * 0.5).sigmoid_() + (x * w).tanh_() * (x * 0.3).exp_()).sum(),
    "neg_ abs_ sqrt_ pow_": lambda lib, x, w: ((x * 1).neg_().abs_().add_(0.1).sqrt_() * w + (x * 1).pow_(3)).sum(),
    "chains of in-place ops on saved results": lambda lib, x, w: (
        (x * 0.5).sigmoid_().tanh_().exp_() + (x * 1).neg_().abs_().add_(0.1).sqrt_().pow_(3) * w).sum(),
    "clamp_ clamp_min_ clamp_max_": lambda lib, x, w: ((x * 1).clamp_(-0.9, 1.2).clamp_min_(-0.4).clamp_max_(0.7)
                                                       * w).sum(),
    "div_ by a tensor": lambda lib, x, w: ((x * 1).div_(w.abs() + 1) * w).sum(),
    "masked_fill_": lambda lib, x, w: ((x * 2).masked_fill_(lib.tensor(MASK), 0.5) * w).sum(),
    "index_add_": lambda lib, x, w: ((x * 1).index_add_(0, _index(lib, [2, 0]), w[:2] * 3, alpha=2) * x).sum(),
    "scatter_": lambda lib, x, w: ((x * 1).scatter_(1, _index(lib, [[0], [3], [1]]), w[:, :1]) * w).sum(),
    "scatter_add_": lambda lib, x, w: ((x * 1).scatter_add_(1, _index(lib, INDEX), w * w) * x).sum(),
    "copy_ fill_ zero_": lambda lib, x, w: _copy_fill_zero(lib, x, w),
    "setitem of a differentiable value": lambda lib, x, w: _setitem(lib, x, w),
    "setitem with an index tensor": lambda lib, x, w: _setitem_by_tensor(lib, x, w),
    "write through a row view": lambda lib, x, w: _row_view(x, w),
    "write through a column view": lambda lib, x, w: _column_view(x, w),
    "write through a transpose": lambda lib, x, w: _transposed(x, w),
    "write through a reshape": lambda lib, x, w: _reshaped(x, w),
    "view read after its base changed": lambda lib, x, w: _view_after_base(x, w),
    "consumers from before the change": lambda lib, x, w: _consumers(x, w),
    "a tensor without grad made to require it": lambda lib, x, w: _no_grad_target(lib, x, w),
}


def _chain(x):
    y = x * 2
    y.add_(1)
    y.relu_()
    return (y * x).sum()


def _chain_past_relu(x):
    y = x * 2
    y.add_(1)
    y.relu_()
    y.mul_(3)
    return (y * x).sum()


def _augmented(x, w):
    y = x * 1
    y += w
    y -= 0.5 * x
    y *= w
    y /= 4
    y **= 2
    return y.sum()


def _self_product(x):
    y = x + 1
    y.mul_(y)
    return y.sum()


def _copy_fill_zero(lib, x, w):
    y = x * 1
    y[0].copy_(w[1] * 2)
    y[1].fill_(3.0)
    y[2, 1:].zero_()
    return (y * w).sum()


def _setitem(lib, x, w):
    y = x * 1
    y[1] = w[0] * 2          # a row
    y[:, 0] = 0.0            # a constant
    y[0, 1:3] = w[2, :2]     # a slice of a row
    return (y * y).sum()


def _setitem_by_tensor(lib, x, w):
    y = x * 1
    y[_index(lib, [2, 0])] = w[:2] + 1
    return (y * x).sum()


def _row_view(x, w):
    y = x * 1
    y[0].mul_(2)
    y[2].add_(w[1])
    return (y * y).sum()


def _column_view(x, w):
    y = x * 1
    y[:, 1].mul_(w[:, 2])
    return (y * w).sum()


def _transposed(x, w):
    y = x * 1
    y.transpose(0, 1).mul_(w.transpose(0, 1))
    return (y * x).sum()


def _reshaped(x, w):
    y = x * 1
    y.reshape(2, 6).add_(w.reshape(2, 6) * 3)
    return (y * y).sum()


def _view_after_base(x, w):
    y = x * 1
    row = y[1]
    y.mul_(w)        # the view sees the new values, and its gradient follows them
    return (row * row).sum()


def _consumers(x, w):
    y = x * 1
    before = y + 3   # add saves nothing: y may change afterwards
    y.mul_(w)
    return (before * w + y).sum()


def _no_grad_target(lib, x, w):
    z = lib.zeros(3, 4, dtype=lib.float64)
    z.add_(x * w)     # z becomes part of the graph
    z[0] = w[2]
    return (z * x).sum()


# torch refuses these at backward ("modified by an inplace operation"): its relu_, sigmoid_, sqrt_ and
# mul_ save the memory they write, and the next in-place op changes it. Here each in-place op in a graph
# saves a copy of what it needs, so they work; the numerical gradient checks them.
TORCH_REFUSES = {"add_ relu_ mul_ chain", "mul_ by itself", "chains of in-place ops on saved results"}


def _run(lib, case):
    x = lib.tensor(X.copy(), dtype=lib.float64, requires_grad=True)
    w = lib.tensor(W.copy(), dtype=lib.float64, requires_grad=True)
    loss = CASES[case](lib, x, w)
    loss.backward()
    grads = [t.grad.numpy() if t.grad is not None else np.zeros_like(X) for t in (x, w)]
    return loss.item(), grads


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_case_matches_torch(case):
    torch = pytest.importorskip("torch")
    if case in TORCH_REFUSES:
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            _run(torch, case)
        return
    value, grads = _run(ag, case)
    expected_value, expected_grads = _run(torch, case)
    np.testing.assert_allclose(value, expected_value, rtol=1e-12)
    for name, grad, expected in zip("xw", grads, expected_grads):
        np.testing.assert_allclose(grad, expected, rtol=1e-12, atol=1e-12, err_msg="gradient of " + name)


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_case_matches_the_numerical_gradient(case):
    """Central differences of the case as a function of x and w (no torch needed), at
    six of the twelve positions (every row and column): each in-place op in a graph
    scans the heap for the nodes that used the tensor (~1 ms), so all would be slow."""
    _, grads = _run(ag, case)
    step = 1e-6
    positions = [(0, 0), (0, 3), (1, 1), (1, 2), (2, 0), (2, 2)]
    for which, grad in enumerate(grads):
        numerical = grad.copy()
        for position in positions:
            values = []
            for sign in (1, -1):
                arrays = [X.copy(), W.copy()]
                arrays[which][position] += sign * step
                x = ag.tensor(arrays[0], dtype=ag.float64, requires_grad=True)
                w = ag.tensor(arrays[1], dtype=ag.float64, requires_grad=True)
                values.append(CASES[case](ag, x, w).item())
            numerical[position] = (values[0] - values[1]) / (2 * step)
        np.testing.assert_allclose(grad, numerical, rtol=1e-5, atol=1e-6, err_msg="input %d" % which)


def test_hand_derivations():
    x = leaf([[0.5, -1.0], [2.0, 3.0]])
    _chain_past_relu(x).backward()
    # y = 3 relu(2x + 1), loss = sum(y x): d/dx = 3 relu(2x+1) + x * 6 [2x+1 > 0]
    inside = 2 * x.numpy() + 1 > 0
    expected = 3 * np.maximum(2 * x.numpy() + 1, 0) + 6 * x.numpy() * inside
    np.testing.assert_allclose(x.grad.numpy(), expected)
    x = leaf([[1.0, 2.0], [3.0, 4.0]])
    y = x * 1
    y[0].mul_(2)   # y = [[2, 4], [3, 4]] from x: loss = sum(y^2): d/dx = [[8 x], [2 x]]
    (y * y).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [[8.0, 16.0], [6.0, 8.0]])
    np.testing.assert_allclose(y.numpy(), [[2.0, 4.0], [3.0, 4.0]])
    x = leaf([1.0, 2.0, 3.0])
    v = leaf([10.0])
    y = x * 1
    y[1] = v[0] * 5   # loss = sum(y * [1, 2, 3]): x gets [1, 0, 3], v gets 5 * 2
    (y * ag.tensor([1.0, 2.0, 3.0], dtype=np.float64)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0, 0.0, 3.0])
    np.testing.assert_allclose(v.grad.numpy(), [10.0])


# -- the hand-written SGD step --------------------------------------------------------------------------
def test_the_hand_written_sgd_loop_updates_the_same_leaf():
    """The issue's first report: w -= lr * w.grad under no_grad replaced w with a new
    tensor that did not require grad, and the next backward failed."""
    ag.manual_seed(0)
    data, target = ag.randn(8, 3, dtype=np.float64), ag.randn(8, 1, dtype=np.float64)
    w = ag.zeros(3, 1, dtype=np.float64, requires_grad=True)
    b = ag.zeros(1, dtype=np.float64, requires_grad=True)
    arrays, losses = (w.numpy(), b.numpy()), []
    reference_w, reference_b = np.zeros((3, 1)), np.zeros(1)
    for step in range(20):
        loss = ((data @ w + b - target) ** 2).mean()
        loss.backward()
        losses.append(loss.item())
        with ag.no_grad():
            w -= 0.1 * w.grad
            b -= 0.1 * b.grad
        w.grad = b.grad = None
        # the same step by hand in numpy
        residual = data.numpy() @ reference_w + reference_b - target.numpy()
        reference_w = reference_w - 0.1 * 2 * data.numpy().T @ residual / 8
        reference_b = reference_b - 0.1 * 2 * residual.sum(0) / 8
        assert w.numpy() is arrays[0] and b.numpy() is arrays[1] and w.requires_grad and w.is_leaf
        assert w._version == step + 1
    np.testing.assert_allclose(w.numpy(), reference_w)
    np.testing.assert_allclose(b.numpy(), reference_b)
    assert all(later < earlier for earlier, later in zip(losses, losses[1:]))


@pytest.mark.parametrize("operator", ["+=", "-=", "*=", "/=", "//=", "%=", "**="])
def test_augmented_assignment_changes_the_tensor_itself(operator):
    t = ag.tensor([5.0, 7.0, 9.0])
    array, original = t.numpy(), t
    namespace = {"t": t}
    exec("t %s 2.0" % operator, namespace)
    assert namespace["t"] is original and original.numpy() is array and original._version == 1
    expected = eval("np.array([5.0, 7.0, 9.0], dtype=np.float32) %s 2.0" % operator[:-1])
    np.testing.assert_allclose(array, expected, rtol=1e-6)


def test_augmented_assignment_refuses_a_result_its_dtype_cannot_hold():
    t = ag.tensor([1, 2])
    with pytest.raises(TypeError, match="mul_: .*int64"):
        t *= 0.5
    assert t._version == 0


# -- errors as torch raises them ------------------------------------------------------------------------
@pytest.mark.parametrize("change", [
    lambda w: w.add_(1.0),
    lambda w: w.__iadd__(1.0),
    lambda w: w.relu_(),
    lambda w: w.__setitem__(0, 1.0),
    lambda w: w.copy_(ag.zeros(2, dtype=np.float64)),
], ids=["add_", "+=", "relu_", "setitem", "copy_"])
def test_a_leaf_that_requires_grad_changed_in_place_outside_no_grad_raises(change):
    w = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match="a leaf tensor that requires grad .*in-place operation"):
        change(w)
    np.testing.assert_array_equal(w.numpy(), [1.0, 2.0])
    assert w._version == 0


def test_a_view_of_such_a_leaf_raises_too():
    w = leaf([[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(RuntimeError, match="mul_: a view of a leaf tensor that requires grad"):
        w[0].mul_(2)
    np.testing.assert_array_equal(w.numpy(), [[1.0, 2.0], [3.0, 4.0]])


def test_a_saved_value_changed_in_place_raises_at_backward():
    x = leaf([0.5, -1.0])
    s = x.sigmoid()   # its backward reads s
    s.mul_(2)
    with pytest.raises(RuntimeError, match="sigmoid: one of the arrays saved for backward.*mul_ changed"):
        s.sum().backward()
    y = x * 1
    z = y.exp()       # saves its output, not y: y may change
    y.add_(1)
    w = y * y         # saves y's new values
    y.add_(1)
    with pytest.raises(RuntimeError, match="mul: .*add_ changed"):
        (z + w).sum().backward()


def test_unsupported_views_raise_instead_of_a_wrong_gradient():
    x = leaf([[1.0, 2.0], [3.0, 4.0]])
    y = x * 1
    with pytest.raises(RuntimeError, match="mul_: this tensor .* is a view of a view"):
        y[0][1:].mul_(2)
    with pytest.raises(RuntimeError, match="read-only view"):
        y.expand(3, 2, 2).add_(1)
    plain = ag.zeros(2, 2, dtype=np.float64)
    with pytest.raises(RuntimeError, match="copy_: this tensor .* does not require grad and its array may be a view"):
        plain[0].copy_(x[0])
    np.testing.assert_array_equal(plain.numpy(), np.zeros((2, 2)))
    plain[0] = x[0] * 2   # writing into the base itself is fine
    plain.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[2.0, 2.0], [0.0, 0.0]])


# -- versions shared through views ----------------------------------------------------------------------
def test_views_share_the_version_counter_of_their_base():
    base = ag.zeros(3, 4)
    row, flat, transposed, detached = base[1], base.reshape(12), base.transpose(0, 1), base.detach()
    row.add_(1.0)
    assert [t._version for t in (base, row, flat, transposed, detached)] == [1] * 5
    base.mul_(2)
    transposed[0] = 5.0
    assert [t._version for t in (base, row, flat, transposed, detached)] == [3] * 5
    copy = base.transpose(0, 1).reshape(12)  # not a view: numpy copies
    assert copy._version == 0
    copy.add_(1.0)
    assert base._version == 3


def test_base_of_a_view_in_the_graph():
    x = leaf([[1.0, 2.0], [3.0, 4.0]])
    y = x * 1
    assert y[0]._base is y and y.reshape(4)._base is y and y._base is None
    assert (y + 1)._base is None


def test_nn_init_on_a_parameter_needs_no_no_grad():
    import nn
    layer = nn.Linear(3, 2)
    version = layer.weight._version
    nn.init.normal_(layer.weight)
    layer.weight.data.fill(0.5)
    with ag.no_grad():
        layer.weight.uniform_(-1.0, 1.0)
        layer.bias.normal_(0.0, 2.0)
    assert layer.weight._version == version + 2
    assert np.all(np.abs(layer.weight.numpy()) <= 1.0) and layer.weight.requires_grad


# -- random programs: old consumers, live views and writes through views, mixed ---------------------
def _program(lib, x, w, seed):
    """A random sequence of reads of y (kept until the loss), in-place changes of y and
    writes through views of it; every kept tensor enters the loss with its own weight."""
    rng = np.random.default_rng(seed)
    y = x * 1
    kept = []
    for _ in range(12):
        choice = rng.integers(7)
        row = int(rng.integers(3))
        if choice == 0:
            kept.append(y + float(rng.normal()))   # a read that saves nothing
        elif choice == 1:
            kept.append(y[row])                    # a view kept alive
        elif choice == 2:
            y.add_(w * float(rng.normal()))
        elif choice == 3:
            y.mul_(float(rng.normal()))
        elif choice == 4:
            y[row].add_(w[row])                    # a write through a view
        elif choice == 5:
            y[row].mul_(float(rng.normal()))
        else:
            y[:, row] = w[:, row] * 2              # setitem of a differentiable value
    loss = (y * w).sum()
    for position, tensor in enumerate(kept):
        loss = loss + (tensor * (position + 1.5)).sum()
    return loss


@pytest.mark.parametrize("seed", range(8))
def test_random_programs_match_torch(seed):
    torch = pytest.importorskip("torch")
    results = []
    for lib in (ag, torch):
        x = lib.tensor(X.copy(), dtype=lib.float64, requires_grad=True)
        w = lib.tensor(W.copy(), dtype=lib.float64, requires_grad=True)
        loss = _program(lib, x, w, seed)
        loss.backward()
        results.append((loss.item(), x.grad.numpy(), w.grad.numpy()))
    (value, grad_x, grad_w), (expected_value, expected_x, expected_w) = results
    np.testing.assert_allclose(value, expected_value, rtol=1e-12)
    np.testing.assert_allclose(grad_x, expected_x, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grad_w, expected_w, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_random_programs_match_the_numerical_gradient(seed):
    x = ag.tensor(X.copy(), dtype=ag.float64, requires_grad=True)
    w = ag.tensor(W.copy(), dtype=ag.float64, requires_grad=True)
    _program(ag, x, w, seed).backward()
    for which, grad in enumerate((x.grad.numpy(), w.grad.numpy())):
        for position in [(0, 1), (1, 3), (2, 0)]:
            values = []
            for sign in (1, -1):
                arrays = [X.copy(), W.copy()]
                arrays[which][position] += sign * 1e-6
                values.append(_program(ag, ag.tensor(arrays[0], dtype=ag.float64),
                                       ag.tensor(arrays[1], dtype=ag.float64), seed).item())
            np.testing.assert_allclose(grad[position], (values[0] - values[1]) / 2e-6, rtol=1e-5, atol=1e-6)
