"""Function: the one mechanism behind every differentiable op, built-in or user-defined.

A subclass defines two static methods side by side:

    class Cube(Function):
        @staticmethod
        def forward(ctx, x):                  # Tensor inputs arrive as numpy arrays
            ctx.save_for_backward(x)
            return x ** 3                     # a numpy array, or a tuple of them
        @staticmethod
        def backward(ctx, grad_output):       # one numpy array per forward output
            (x,) = ctx.saved_tensors
            return 3 * x ** 2 * grad_output   # one per forward input (None: no gradient)

and is called as ``Cube.apply(t)``. Non-Tensor arguments (ints, tuples, strings) pass
through to ``forward`` unchanged and get ``None`` as their gradient.
"""
import numpy as np

from .grad_mode import is_grad_enabled


class Context:
    """What a Function call remembers for its backward: one node of the graph.

    ``inputs`` are the call's arguments (Tensors keep the graph reachable);
    ``needs_input_grad`` says which inputs want a gradient. Ops may set any other
    attribute (``ctx.stride = ...``).
    """

    def __init__(self, function, inputs, needs_input_grad):
        self.function = function
        self.inputs = inputs
        self.needs_input_grad = needs_input_grad
        self.num_outputs = 1
        self.freed = False
        self._saved = ()
        # per-output bookkeeping, filled only when asked for (retain_grad / register_hook)
        self.output_hooks = None
        self.retained_outputs = None

    def save_for_backward(self, *values):
        """Keep arrays for backward; they are freed after backward unless retain_graph."""
        self._saved = values

    @property
    def saved_tensors(self):
        if self.freed:
            raise RuntimeError(
                "%s.backward: the saved values were freed by an earlier backward(); "
                "call backward(retain_graph=True) the first time to backward twice"
                % self.function.__name__)
        return self._saved

    def release(self):
        """Drop everything only backward needed (saved values, edges to inputs)."""
        self._saved = ()
        self.freed = True
        # without this a kept result (say losses.append(loss)) would keep every
        # activation of its graph alive; a second backward still finds `freed` and raises
        self.inputs = ()
        # attributes that ops stored on ctx can be large arrays: drop them too
        for name in list(vars(self)):
            if name not in _CONTEXT_FIELDS:
                delattr(self, name)


_CONTEXT_FIELDS = frozenset(
    ["function", "inputs", "needs_input_grad", "num_outputs", "freed", "_saved",
     "output_hooks", "retained_outputs"])


class Function:
    """Base class of differentiable ops. Subclass it, define forward and backward, call apply."""

    @staticmethod
    def forward(ctx, *args):
        raise NotImplementedError("Function subclasses must define forward(ctx, *inputs)")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError("Function subclasses must define backward(ctx, *grad_outputs)")

    @classmethod
    def apply(cls, *args):
        """Run forward on the arguments' arrays and, when a Tensor input needs a
        gradient and grad mode is on, record the call in the graph."""
        needs = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        raw = [a.data if isinstance(a, Tensor) else _weak_scalar(a) for a in args]
        record = any(needs) and is_grad_enabled()
        ctx = Context(cls, args if record else (), needs)
        result = cls.forward(ctx, *raw)
        if isinstance(result, tuple):
            ctx.num_outputs = len(result)
            if record:  # backward fills zeros for outputs that got no gradient
                ctx.output_meta = [(r.shape, r.dtype) if isinstance(r, np.ndarray)
                                   else (np.shape(r), np.asarray(r).dtype) for r in result]
            outputs = tuple(_wrap_output(cls, r, ctx if record else None, i) for i, r in enumerate(result))
            return outputs
        return _wrap_output(cls, result, ctx if record else None, 0)


def _weak_scalar(value):
    """A numpy scalar (np.float64(0.5), np.int64(2): what np.sqrt(2) or array.sum() return)
    as the Python number it stands for. numpy lets a Python number adapt to an array's
    dtype but promotes with a numpy scalar, so x * np.sqrt(2) would turn float32 into float64."""
    if isinstance(value, np.generic) and value.dtype.kind in "biuf":
        return value.item()
    return value


def _wrap_output(cls, array, ctx, index):
    if not isinstance(array, np.ndarray):
        if isinstance(array, (np.generic, int, float, bool)):
            array = np.asarray(array)
        else:
            raise TypeError("%s.forward must return numpy arrays, got %s" % (cls.__name__, type(array).__name__))
    out = Tensor.__new__(Tensor)
    out.data = array
    out.grad = None
    out._hooks = None
    out._index = index
    # integer outputs (argmax and the like) carry no gradient, so they stay off the graph
    out.requires_grad = ctx is not None and array.dtype.kind == "f"
    out._ctx = ctx if out.requires_grad else None
    return out


from .tensor import Tensor  # noqa: E402  (tensor.py needs Function defined first)
