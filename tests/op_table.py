"""The op table: per registered op, sample inputs, an independent numpy reference and
how to gradcheck it (PyTorch's OpInfo, in small). tests/test_op_registry.py runs every
entry: the forward against the reference and, for differentiable ops, gradcheck in
float64. An op registered without an entry here fails that test, and so does an entry
that names no registered op.

An entry is ``OpEntry(samples, reference, call=None, gradcheck=True)``:

* ``samples(rng)``: a list of ``Sample(*args, **kwargs)``. numpy arrays among the args
  become Tensors (float ones are the inputs gradcheck checks); other args (axes,
  shapes, strings) pass through unchanged.
* ``reference(*args, **kwargs)``: the expected result, computed with numpy on the
  samples' arrays (a tuple for an op with several outputs).
* ``call(op, *args, **kwargs)``: how to call the op on the converted args, when not
  ``op(*args, **kwargs)`` (concat takes a list of tensors, for example).
* ``gradcheck``: False for ops with no gradient (argmax, comparisons, one_hot).
* ``keeps_dtype``: False when the result's dtype is the reference's, not the float
  inputs' (cast).
* ``sweep``: for elementwise ops, how to draw inputs of any shape: ``("unary", values,
  kwargs)`` or ``("binary", first, second, kwargs)`` with ``values(rng, *shape)``
  generators; tests/test_op_sweep.py then gradchecks the op over hypothesis-drawn shapes
  (ranks 0 to 4, size-0 and size-1 dims, broadcasting); ``("reduction", values, {})``
  draws a shape and the dims to reduce. The builders below set it.
* ``torch``: how PyTorch computes the same, for tests/test_op_registry.py's comparison
  with torch (run where torch is installed): ``SAME`` for ``torch.<name>(*args,
  **kwargs)`` with the sample's arrays as torch tensors, a callable ``torch(torch_module,
  *args, **kwargs)`` for anything else, or None (the default) where torch has no
  counterpart with the same arguments (channels-last convolutions, the fused steps).

The entries live in this file and in ``op_table_<area>.py`` files beside it, each with
a ``TABLE`` dict of its own (one file per area keeps parallel work from colliding);
this module collects them all into ``TABLE`` and refuses an op listed twice.

Sample values stay away from the points where an op has no derivative (0 for abs
and relu, ties for max, clip's bounds), so that finite differences are exact enough.
"""
import numpy as np


class Sample:
    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs

    def __repr__(self):
        return "Sample(%s)" % ", ".join([_short(a) for a in self.args] +
                                        ["%s=%s" % (k, _short(v)) for k, v in self.kwargs.items()])


def _short(value):
    return "array%s" % (value.shape,) if isinstance(value, np.ndarray) else repr(value)


SAME = "same"  # OpEntry(torch=SAME): torch.<name> takes the same arguments


class OpEntry:
    def __init__(self, samples, reference, call=None, gradcheck=True, keeps_dtype=True, torch=None, sweep=None):
        self.samples, self.reference, self.call, self.gradcheck = samples, reference, call, gradcheck
        self.keeps_dtype = keeps_dtype
        self.torch = torch
        self.sweep = sweep


def _away_from_zero(rng, *shape):
    """Values in [-1.5, -0.5] or [0.5, 1.5]: no op below is at a kink there."""
    return rng.uniform(0.5, 1.5, shape) * rng.choice([-1.0, 1.0], shape)


def _positive(rng, *shape):
    return rng.uniform(0.5, 2.0, shape)


def _distinct(rng, *shape):
    """Distinct values (no ties for max, min, maximum)."""
    return rng.permutation(np.linspace(-2.0, 2.0, int(np.prod(shape)))).reshape(shape) + 0.01


def binary(reference, torch=None):
    """Two broadcast cases (same shapes; [2, 1, 3] with [4, 1]) and a Python number operand."""
    def samples(rng):
        return [Sample(_away_from_zero(rng, 2, 3), _away_from_zero(rng, 2, 3)),
                Sample(_away_from_zero(rng, 2, 1, 3), _away_from_zero(rng, 4, 1)),
                Sample(_away_from_zero(rng, 3), 0.7)]
    return OpEntry(samples, reference, torch=torch, sweep=("binary", _away_from_zero, _away_from_zero, {}))


def unary(reference, values=_away_from_zero, torch=None, **kwargs):
    return OpEntry(lambda rng: [Sample(values(rng, 2, 3), **kwargs), Sample(values(rng, 4), **kwargs)],
                   lambda x, **k: reference(x, **k), torch=torch, sweep=("unary", values, kwargs))


def comparison(ufunc):
    return OpEntry(lambda rng: [Sample(_distinct(rng, 2, 3), _distinct(rng, 3)), Sample(_distinct(rng, 3), 0.1)],
                   ufunc, gradcheck=False)


def reduction(reference, values=_away_from_zero):
    def samples(rng):
        return [Sample(values(rng, 2, 3, 4)), Sample(values(rng, 2, 3, 4), 1),
                Sample(values(rng, 2, 3, 4), (0, 2), keepdims=True), Sample(values(rng, 3), dim=-1, keepdim=True)]
    return OpEntry(samples, lambda x, axis=None, keepdims=False, dim=None, keepdim=False:
                   reference(x, axis=dim if dim is not None else axis, keepdims=keepdims or keepdim),
                   sweep=("reduction", values, {}))


def _extreme_entry(reduce, choose, elementwise):
    """torch's max/min: over all elements (one value), along one dim ((values, indices)),
    and against a second tensor (elementwise)."""
    def samples(rng):
        return [Sample(_distinct(rng, 2, 3, 4)), Sample(_distinct(rng, 2, 3, 4), 1),
                Sample(_distinct(rng, 2, 3, 4), dim=-1, keepdim=True), Sample(_distinct(rng, 3), axis=0),
                Sample(np.array(_distinct(rng)), 0), Sample(_distinct(rng, 2, 3), _distinct(rng, 3) * 0.9)]

    def reference(x, dim=None, keepdim=False, axis=None):
        dim = axis if axis is not None else dim
        if isinstance(dim, np.ndarray):
            return elementwise(x, dim)
        if dim is None:
            return reduce(x)
        return reduce(x, axis=dim, keepdims=keepdim), choose(x, axis=dim, keepdims=keepdim)
    return OpEntry(samples, reference, torch=SAME)


def _torch_pad(x, pad, mode="constant", value=0.0):
    """F.pad's order turned into numpy's per-dim pairs; a negative constant pad crops."""
    pairs = [(0, 0)] * x.ndim
    for k in range(len(pad) // 2):
        pairs[x.ndim - 1 - k] = (pad[2 * k], pad[2 * k + 1])
    x = x[tuple(slice(max(-b, 0), n - max(-a, 0)) for (b, a), n in zip(pairs, x.shape))]
    pairs = [(max(b, 0), max(a, 0)) for b, a in pairs]
    if mode == "constant":
        return np.pad(x, pairs, constant_values=value)
    return np.pad(x, pairs, mode={"replicate": "edge", "circular": "wrap"}.get(mode, mode))


def _log_softmax(x, axis=-1, dim=None):
    axis = dim if dim is not None else axis
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _activated(y, activation):
    """The fused ops' activation: None or 'relu'."""
    return np.maximum(y, 0) if activation == "relu" else y




def _lstm_step(x_gates, h, c, w, mask=None):
    gates = x_gates + h @ w.T
    i, f, g, o = np.split(gates, 4, axis=1)
    c_new = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
    h_new = _sigmoid(o) * np.tanh(c_new)
    if mask is not None:
        m = np.reshape(mask, (-1, 1))
        h_new, c_new = m * h_new + (1 - m) * h, m * c_new + (1 - m) * c
    return h_new, c_new


def _gru_step(x_gates, h, w, bias_hh=None):
    hidden = h @ w.T + (0 if bias_hh is None else bias_hh)
    xr, xz, xn = np.split(x_gates, 3, axis=1)
    hr, hz, hn = np.split(hidden, 3, axis=1)
    r, z = _sigmoid(xr + hr), _sigmoid(xz + hz)
    n = np.tanh(xn + r * hn)
    return (1 - z) * n + z * h


def _rnn_step(x_gates, h, w, nonlinearity="tanh"):
    pre = x_gates + h @ w.T
    return np.tanh(pre) if nonlinearity == "tanh" else np.maximum(pre, 0)


def _extreme_samples(rng):
    return [Sample(_distinct(rng, 2, 3), _distinct(rng, 3) * 0.9), Sample(_distinct(rng, 4), 0.05)]


def _equality_samples(rng):
    return [Sample(np.array([1.0, 2.0, 3.0]), np.array([1.0, 0.0, 3.0])), Sample(np.array([1.0, 2.0]), 2.0)]


def _where_samples(rng):
    condition = rng.random((2, 3)) > 0.5
    return [Sample(condition, _away_from_zero(rng, 2, 3), _away_from_zero(rng, 3)),
            Sample(condition, _away_from_zero(rng, 2, 3), 0.5)]


TABLE = {
    # -- elementwise
    "add": binary(np.add, torch=SAME),
    "sub": binary(np.subtract, torch=SAME),
    "mul": binary(np.multiply, torch=SAME),
    "div": binary(np.divide, torch=SAME),
    # x ** 0 at x = 0 and 0 ** e for e > 0 have gradient 0 (PyTorch's rule), which finite
    # differences see too: the formulas alone would give NaN there
    "pow": OpEntry(lambda rng: [Sample(_positive(rng, 2, 3), _away_from_zero(rng, 2, 3)),
                                Sample(_positive(rng, 2, 3), 3.0), Sample(2.0, _away_from_zero(rng, 3)),
                                Sample(np.array([[0.0, 1.5, -0.7], [0.0, 2.0, 0.5]]), 0.0),
                                Sample(0.0, _positive(rng, 3))], np.power),
    "maximum": OpEntry(_extreme_samples, np.maximum),
    "minimum": OpEntry(_extreme_samples, np.minimum),
    "where": OpEntry(_where_samples, np.where),
    "neg": unary(np.negative, torch=SAME),
    "exp": unary(np.exp, torch=SAME),
    "log": unary(np.log, _positive, torch=SAME),
    "sqrt": unary(np.sqrt, _positive, torch=SAME),
    "abs": unary(np.abs, torch=SAME),
    "clip": OpEntry(lambda rng: [Sample(_distinct(rng, 2, 3), -1.005, 1.005), Sample(_distinct(rng, 4), min=0.005)],
                    lambda x, min=None, max=None: np.clip(x, min, max)),
    "tanh": unary(np.tanh, torch=SAME),
    "sigmoid": unary(_sigmoid, torch=SAME),
    "relu": unary(lambda x: np.maximum(x, 0), torch=SAME),
    "leaky_relu": unary(lambda x, negative_slope: np.where(x > 0, x, negative_slope * x), negative_slope=0.2),
    "elu": unary(lambda x, alpha: np.where(x > 0, x, alpha * (np.exp(x) - 1)), alpha=0.7),
    "softplus": OpEntry(lambda rng: [Sample(_away_from_zero(rng, 2, 3)), Sample(_away_from_zero(rng, 4), beta=2.0),
                                     Sample(_away_from_zero(rng, 2, 2) * 3, beta=1.5, threshold=2.0)],
                        lambda x, beta=1.0, threshold=20.0: np.where(beta * x > threshold, x,
                                                                     np.log1p(np.exp(beta * x)) / beta),
                        torch=lambda torch, *args, **kwargs: torch.nn.functional.softplus(*args, **kwargs),
                        sweep=("unary", _away_from_zero, {})),
    "cast": OpEntry(lambda rng: [Sample(_away_from_zero(rng, 2, 3), "float32"),
                                 Sample(_away_from_zero(rng, 3), np.int64)],
                    lambda x, dtype: x.astype(dtype), gradcheck=False, keeps_dtype=False),
    "clone": unary(np.copy, torch=SAME),
    "lt": comparison(np.less),
    "le": comparison(np.less_equal),
    "gt": comparison(np.greater),
    "ge": comparison(np.greater_equal),
    "eq": OpEntry(_equality_samples, np.equal, gradcheck=False),
    "ne": OpEntry(_equality_samples, np.not_equal, gradcheck=False),
    # -- reductions
    "sum": reduction(np.sum),
    "mean": reduction(np.mean),
    "max": _extreme_entry(np.max, np.argmax, np.maximum),
    "min": _extreme_entry(np.min, np.argmin, np.minimum),
    "var": reduction(lambda x, axis, keepdims: np.var(x, axis=axis, keepdims=keepdims, ddof=1)),
    "std": reduction(lambda x, axis, keepdims: np.std(x, axis=axis, keepdims=keepdims, ddof=1)),
    "softmax": OpEntry(lambda rng: [Sample(_away_from_zero(rng, 2, 3)), Sample(_away_from_zero(rng, 2, 3), 0)],
                       lambda x, axis=-1: np.exp(_log_softmax(x, axis))),
    "log_softmax": OpEntry(lambda rng: [Sample(_away_from_zero(rng, 2, 3)), Sample(_away_from_zero(rng, 2, 3), dim=0)],
                           _log_softmax),
    "argmax": OpEntry(lambda rng: [Sample(_distinct(rng, 2, 3)), Sample(_distinct(rng, 2, 3), 1)],
                      lambda x, axis=None: np.argmax(x, axis=axis), gradcheck=False),
    "argmin": OpEntry(lambda rng: [Sample(_distinct(rng, 2, 3)), Sample(_distinct(rng, 2, 3), 0, keepdims=True)],
                      lambda x, axis=None, keepdims=False: np.argmin(x, axis=axis, keepdims=keepdims), gradcheck=False),
    # -- shape
    "reshape": OpEntry(lambda rng: [Sample(_away_from_zero(rng, 2, 3), 3, -1), Sample(_away_from_zero(rng, 6), (2, 3))],
                       lambda x, *shape: x.reshape(*shape)),
    "flatten": OpEntry(lambda rng: [Sample(_away_from_zero(rng, 2, 3, 2)), Sample(_away_from_zero(rng, 2, 3, 2), 1)],
                       lambda x, start_dim=0: x.reshape(x.shape[:start_dim] + (-1,))),
    "permute": OpEntry(lambda rng: [Sample(_away_from_zero(rng, 2, 3, 4), 2, 0, 1)],
                       lambda x, *axes: np.transpose(x, axes)),
    "transpose": OpEntry(lambda rng: [Sample(_away_from_zero(rng, 2, 3)), Sample(_away_from_zero(rng, 2, 3, 4), 0, 2)],
                         lambda x, *dims: np.swapaxes(x, *dims) if dims else x.T),
    "broadcast_to": OpEntry(lambda rng: [Sample(_away_from_zero(rng, 3, 1), (2, 3, 4))], np.broadcast_to),
    "expand": OpEntry(lambda rng: [Sample(_away_from_zero(rng, 3, 1), 2, -1, 4)],
                      lambda x, *shape: np.broadcast_to(x, (2, 3, 4))),
    "squeeze": OpEntry(lambda rng: [Sample(_away_from_zero(rng, 2, 1, 3, 1)), Sample(_away_from_zero(rng, 2, 1, 3), 1)],
                       lambda x, axis=None: np.squeeze(x, axis)),
    "unsqueeze": OpEntry(lambda rng: [Sample(_away_from_zero(rng, 2, 3), 1), Sample(_away_from_zero(rng, 2, 3), -1)],
                         np.expand_dims),
    "getitem": OpEntry(lambda rng: [Sample(_away_from_zero(rng, 3, 4), (slice(0, 2), 1)),
                                    Sample(_away_from_zero(rng, 3, 4), [2, 0, 2])],  # a repeated index accumulates
                       lambda x, index: x[np.asarray(index) if isinstance(index, list) else index]),
    "concat": OpEntry(lambda rng: [Sample(_away_from_zero(rng, 2, 3), _away_from_zero(rng, 1, 3)),
                                   Sample(_away_from_zero(rng, 2, 3), _away_from_zero(rng, 2, 2), axis=1)],
                      lambda *xs, axis=0: np.concatenate(xs, axis=axis),
                      call=lambda op, *xs, **kwargs: op(list(xs), **kwargs)),
    "cat": OpEntry(lambda rng: [Sample(_away_from_zero(rng, 2, 3), _away_from_zero(rng, 1, 3)),
                                Sample(_away_from_zero(rng, 2, 3), _away_from_zero(rng, 2, 2), dim=1),
                                Sample(_away_from_zero(rng, 2, 3), _away_from_zero(rng, 2, 2), axis=-1)],
                   lambda *xs, dim=0, axis=None: np.concatenate(xs, axis=dim if axis is None else axis),
                   call=lambda op, *xs, **kwargs: op(list(xs), **kwargs),
                   torch=lambda torch, *xs, **kwargs: torch.cat(xs, **kwargs)),
    "stack": OpEntry(lambda rng: [Sample(_away_from_zero(rng, 2, 3), _away_from_zero(rng, 2, 3), axis=1)],
                     lambda *xs, axis=0: np.stack(xs, axis=axis),
                     call=lambda op, *xs, **kwargs: op(list(xs), **kwargs)),
    "split": OpEntry(lambda rng: [Sample(_away_from_zero(rng, 5, 2), 2), Sample(_away_from_zero(rng, 2, 5), [1, 4], 1)],
                     lambda x, sizes, axis=0: tuple(np.split(x, np.cumsum(sizes)[:-1] if isinstance(sizes, list)
                                                               else range(sizes, x.shape[axis], sizes), axis=axis))),
    "chunk": OpEntry(lambda rng: [Sample(_away_from_zero(rng, 5, 2), 3)],
                     lambda x, chunks: tuple(np.split(x, [2, 4]))),
    # torch's F.pad order: (before, after) pairs from the last dim backwards
    "pad": OpEntry(lambda rng: [Sample(_away_from_zero(rng, 2, 3), (0, 2, 1, 0), value=0.5),
                                Sample(_away_from_zero(rng, 2, 3), (1, -1)),
                                Sample(_away_from_zero(rng, 1, 2, 4), (2, 3), mode="reflect"),
                                Sample(_away_from_zero(rng, 1, 3, 2, 3), (1, 2, 2, 0), mode="replicate"),
                                Sample(_away_from_zero(rng, 2, 2, 3), (3, 1), mode="circular")],
                   _torch_pad, torch=lambda torch, x, *args, **kwargs: torch.nn.functional.pad(x, *args, **kwargs)),
    "one_hot": OpEntry(lambda rng: [Sample(np.array([2, 0, 1])), Sample(np.array([[1], [3]]), 5)],
                       lambda labels, num_classes=None: np.eye(num_classes or labels.max() + 1, dtype=np.int64)[labels],
                       gradcheck=False, keeps_dtype=False),  # int64, as in PyTorch
    # -- linear algebra, convolution, pooling
    "matmul": OpEntry(lambda rng: [Sample(_away_from_zero(rng, 2, 3), _away_from_zero(rng, 3, 4)),
                                   Sample(_away_from_zero(rng, 2, 2, 3), _away_from_zero(rng, 3)),
                                   Sample(_away_from_zero(rng, 3), _away_from_zero(rng, 2, 3, 2))], np.matmul),
    "linear": OpEntry(lambda rng: [Sample(_away_from_zero(rng, 4, 3), _away_from_zero(rng, 2, 3),
                                          _away_from_zero(rng, 2)),
                                   Sample(_away_from_zero(rng, 2, 2, 3), _away_from_zero(rng, 2, 3)),
                                   Sample(_away_from_zero(rng, 4, 3), _away_from_zero(rng, 5, 3),
                                          _away_from_zero(rng, 5), activation="relu")],
                      lambda x, w, b=None, activation=None: _activated(x @ w.T + (0 if b is None else b), activation)),
    # -- recurrent steps
    "lstm_step": OpEntry(lambda rng: [Sample(_away_from_zero(rng, 2, 8), _away_from_zero(rng, 2, 2),
                                             _away_from_zero(rng, 2, 2), _away_from_zero(rng, 8, 2)),
                                      Sample(_away_from_zero(rng, 2, 8), _away_from_zero(rng, 2, 2),
                                             _away_from_zero(rng, 2, 2), _away_from_zero(rng, 8, 2), mask=[1.0, 0.0])],
                         _lstm_step),
    "gru_step": OpEntry(lambda rng: [Sample(_away_from_zero(rng, 2, 6), _away_from_zero(rng, 2, 2),
                                            _away_from_zero(rng, 6, 2), _away_from_zero(rng, 6))], _gru_step),
    "rnn_step": OpEntry(lambda rng: [Sample(_away_from_zero(rng, 2, 3), _away_from_zero(rng, 2, 3),
                                            _away_from_zero(rng, 3, 3)),
                                     Sample(_away_from_zero(rng, 2, 3), _away_from_zero(rng, 2, 3),
                                            _away_from_zero(rng, 3, 3), "relu")], _rnn_step),
    "unbind": OpEntry(lambda rng: [Sample(_away_from_zero(rng, 3, 2)), Sample(_away_from_zero(rng, 2, 3), 1)],
                      lambda x, axis=0: tuple(np.moveaxis(x, axis, 0))),
    "input_projection": OpEntry(lambda rng: [Sample(_away_from_zero(rng, 4, 3), _away_from_zero(rng, 2, 3),
                                                    _away_from_zero(rng, 2), _away_from_zero(rng, 2))],
                                lambda x, w, b1=None, b2=None: x @ w.T + b1 + b2),
}


# torch's counterparts of the entries above that were written before the comparison with
# torch existed; the fused recurrent steps and input_projection have none (torch has no op
# with their arguments: tests/test_recurrent.py compares the layers with torch's instead)
def _numbers_as_tensors(torch, args):
    """torch.maximum/minimum take tensors only: a Python number becomes a 0-d tensor of the
    other operand's dtype (what our weak-scalar promotion gives)."""
    dtype = next(a.dtype for a in args if isinstance(a, torch.Tensor))
    return [a if isinstance(a, torch.Tensor) else torch.tensor(a, dtype=dtype) for a in args]


def _torch_function(name):
    return lambda torch, *args, **kwargs: getattr(torch.nn.functional, name)(*args, **kwargs)


def _torch_transpose(torch, x, *dims):
    return torch.transpose(x, *dims) if dims else x.permute(*reversed(range(x.dim())))


def _torch_linear(torch, x, w, b=None, activation=None):
    y = torch.nn.functional.linear(x, w, b)
    return torch.relu(y) if activation == "relu" else y


_TORCH = {
    "pow": SAME, "where": SAME, "clip": SAME, "lt": SAME, "le": SAME, "gt": SAME, "ge": SAME, "eq": SAME,
    "ne": SAME, "sum": SAME, "mean": SAME, "var": SAME, "std": SAME, "argmax": SAME, "argmin": SAME,
    "flatten": SAME, "broadcast_to": SAME, "squeeze": SAME, "unsqueeze": SAME, "split": SAME, "chunk": SAME,
    "matmul": SAME, "unbind": SAME,
    "maximum": lambda torch, *args: torch.maximum(*_numbers_as_tensors(torch, args)),
    "minimum": lambda torch, *args: torch.minimum(*_numbers_as_tensors(torch, args)),
    "leaky_relu": _torch_function("leaky_relu"),
    "elu": _torch_function("elu"),
    "one_hot": _torch_function("one_hot"),
    "cast": lambda torch, x, dtype: x.to(getattr(torch, np.dtype(dtype).name)),
    "softmax": lambda torch, x, dim=-1: torch.softmax(x, dim),
    "log_softmax": lambda torch, x, dim=-1: torch.log_softmax(x, dim),
    "reshape": lambda torch, x, *shape: x.reshape(*shape),
    "permute": lambda torch, x, *dims: x.permute(*dims),
    "transpose": _torch_transpose,
    "expand": lambda torch, x, *sizes: x.expand(*sizes),
    "getitem": lambda torch, x, index: x[index],
    "concat": lambda torch, *xs, axis=0: torch.cat(xs, axis),
    "stack": lambda torch, *xs, axis=0: torch.stack(xs, axis),
    "linear": _torch_linear,
}
for _name, _torch in _TORCH.items():
    assert TABLE[_name].torch is None, _name
    TABLE[_name].torch = _torch


def _collect_area_tables():
    """Add the entries of every tests/op_table_<area>.py to TABLE (they import the helpers
    above from this module, which is why this runs last)."""
    import importlib
    import pathlib
    for path in sorted(pathlib.Path(__file__).parent.glob("op_table_*.py")):
        area = importlib.import_module(path.stem).TABLE
        twice = sorted(set(area) & set(TABLE))
        if twice:
            raise ValueError("tests/%s lists ops that another table lists too: %s" % (path.name, twice))
        TABLE.update(area)


_collect_area_tables()
