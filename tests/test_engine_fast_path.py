"""The engine's fast path (issue 11's per-op overhead) keeps every promise the checked
path made:

- Function.exact_gradients: a family that sets it (the binary elementwise ops) returns
  each gradient in its input's exact shape and dtype, so the engine may skip its own
  check. Every such op is held to it here, for equal, mixed and promoted dtypes, for
  broadcasting shapes and Python-number operands, and its gradients equal the checked
  path's (the same op with the flag off).
- A node whose outputs are gone is freed whole during backward instead of released
  (release() only for nodes still referenced); a kept output's graph still refuses a
  second backward, and memory is still given back as the walk goes.
- Root gradients of another dtype reach the graph cast to the root's dtype.
- Two-operand ops make no Context when nothing is recorded.
"""
import gc
import weakref

import numpy as np
import pytest

import autograd_core as ag
from autograd_core import engine
from autograd_core.function import Function
from autograd_core.ops.elementwise import BinaryElementwise


def _exact_families():
    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)
    found = {cls for cls in subclasses(Function) if cls.exact_gradients}
    return sorted(found, key=lambda cls: cls.__name__)


EXACT = [cls for cls in _exact_families() if cls.name]  # the registered ops (not abstract bases)


def test_the_binary_elementwise_family_is_the_one_that_skips_the_check():
    assert EXACT, "no op claims exact gradients: the fast path is unused"
    assert all(issubclass(cls, BinaryElementwise) for cls in _exact_families())
    assert {"add", "sub", "mul", "div", "pow", "maximum", "minimum"} <= {cls.name for cls in EXACT}


def _operand(rng, shape, dtype, positive):
    values = rng.uniform(0.5, 2.0, shape) if positive else rng.standard_normal(shape)
    return ag.tensor(np.asarray(values, dtype=dtype), requires_grad=True)


CASES = [  # (shape a, dtype a, shape b, dtype b)
    ((3, 4), np.float32, (3, 4), np.float32),
    ((3, 1), np.float32, (1, 4), np.float32),
    ((), np.float32, (2, 3), np.float32),
    ((2, 3), np.float64, (3,), np.float64),
    ((2, 3), np.float32, (2, 3), np.float64),
    ((4,), np.float64, (2, 4), np.float32),
    ((), np.float64, (), np.float32),
]


class _Probe(Function):
    """Identity that records the gradient it receives: the op's gradient for a non-leaf
    input, before any leaf's accumulate_grad would cast it."""
    received = {}

    @staticmethod
    def forward(ctx, value, tag):
        ctx.tag = tag
        return value.copy()

    @staticmethod
    def backward(ctx, grad):
        _Probe.received[ctx.tag] = grad
        return grad, None


def _gradients(op, a, b):
    """The gradients op hands its two (non-leaf) inputs, in input order."""
    _Probe.received = {}
    out = op(_Probe.apply(a, "a"), _Probe.apply(b, "b"))
    (out * ag.tensor(np.linspace(0.5, 1.5, out.data.size).reshape(out.shape).astype(out.dtype))).sum().backward()
    return _Probe.received["a"], _Probe.received["b"]


@pytest.mark.parametrize("cls", EXACT, ids=lambda cls: cls.name)
@pytest.mark.parametrize("shape_a,dtype_a,shape_b,dtype_b", CASES)
def test_exact_gradients_have_their_inputs_shape_and_dtype(cls, shape_a, dtype_a, shape_b, dtype_b, monkeypatch):
    rng = np.random.default_rng(len(shape_a) * 10 + len(shape_b))
    positive = cls.name in ("pow", "xlogy", "fmod", "remainder", "floor_divide", "trunc_divide", "div")
    a = _operand(rng, shape_a, dtype_a, positive)
    b = _operand(rng, shape_b, dtype_b, positive)
    fast = _gradients(cls.apply, a, b)
    for grad, tensor in zip(fast, (a, b)):
        assert type(grad) is np.ndarray
        assert grad.shape == tensor.shape and grad.dtype == tensor.dtype, cls.name
    monkeypatch.setattr(cls, "exact_gradients", False)  # the checked path, for the values
    checked = _gradients(cls.apply, a, b)
    for grad, reference in zip(fast, checked):
        np.testing.assert_array_equal(grad, reference)


@pytest.mark.parametrize("cls", EXACT, ids=lambda cls: cls.name)
def test_exact_gradients_with_a_number_operand(cls):
    rng = np.random.default_rng(3)
    a = _operand(rng, (2, 3), np.float32, True)
    for out in (cls.apply(a, 1.5), cls.apply(2.5, a)):
        a.grad = None
        out.sum().backward()
        assert a.grad.data.shape == (2, 3) and a.grad.data.dtype == np.float32, cls.name


def test_a_float64_seed_reaches_a_float32_graph_cast():
    x = ag.tensor(np.arange(1.0, 4.0, dtype=np.float32), requires_grad=True)
    y = x * x
    engine.backward(y, np.ones(3, dtype=np.float64))
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad.data, 2 * np.arange(1.0, 4.0, dtype=np.float32))


def test_a_complex_seed_is_refused():
    x = ag.tensor(np.ones(2, dtype=np.float32), requires_grad=True)
    with pytest.raises(RuntimeError, match="complex"):
        engine.backward(x * 2, np.ones(2, dtype=np.complex64))


def test_a_kept_output_still_refuses_a_second_backward():
    x = ag.tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    kept = x * 3  # referenced here: its node is released, not dropped
    loss = (kept * 2).sum()
    loss.backward()
    with pytest.raises(RuntimeError, match="second time"):
        kept.sum().backward()
    assert kept.grad_fn.freed


def test_nodes_whose_outputs_are_gone_are_freed_during_backward():
    """The walk frees each node as it passes it when nothing else holds it: a node's
    saved arrays are gone before backward reaches the nodes below it."""
    x = ag.tensor(np.ones(4, dtype=np.float32), requires_grad=True)
    seen = []

    class Probe(Function):
        @staticmethod
        def forward(ctx, value):
            return value.copy()

        @staticmethod
        def backward(ctx, grad):
            gc.collect()
            seen.append(upper() is None)
            return grad

    y = Probe.apply(x)
    z = y * 2  # its node saves nothing it must keep, and only z refers to it
    upper = weakref.ref(z.grad_fn)
    w = (z * 3).sum()
    del y, z
    w.backward()
    assert seen == [True]
    np.testing.assert_array_equal(x.grad.data, np.full(4, 6, np.float32))


def test_retain_graph_keeps_every_node():
    x = ag.tensor(np.ones(2, dtype=np.float32), requires_grad=True)
    loss = (x * 2 + 1).sum()
    loss.backward(retain_graph=True)
    loss.backward()
    np.testing.assert_array_equal(x.grad.data, [4, 4])


def test_an_unrecorded_two_operand_call_makes_no_node():
    x = ag.tensor(np.ones(2, dtype=np.float32), requires_grad=True)
    with ag.no_grad():
        y = x * 2
    assert y.grad_fn is None and not y.requires_grad
    z = ag.tensor(np.ones(2, dtype=np.float32)) * x
    assert z.grad_fn is not None and z.grad_fn.needs_input_grad == (False, True)
