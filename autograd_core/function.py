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

Two class flags move the checks that many ops share out of their forward:
``float_input = True`` refuses a first argument of integer or bool dtype
(``float_input = "promote"`` converts it to the default float, float32, as torch's exp,
log, sqrt, tanh and sigmoid do), and
``coerce_input = True`` turns a first argument that is a number, list or array into a
Tensor (anything else is a TypeError naming the op). ``name`` is the op's public name
(set by ``registry.register``), used in those errors.
"""
import numpy as np

from .engine import CHANGES
from .grad_mode import _local as grad_state
from .tensor import _DEFAULT_FLOAT, Tensor, as_tensor


class Context:
    """What a Function call remembers for its backward: one node of the graph.

    ``inputs`` are the call's arguments (Tensors keep the graph reachable);
    ``needs_input_grad`` says which inputs want a gradient. Ops may set any other
    attribute (``ctx.stride = ...``).

    The engine checks the arrays given to ``save_for_backward`` (only those) before
    backward: if the library changed their memory in place since (an optimizer step, an
    in-place Tensor method), backward raises instead of using the new values.
    """

    # the change clock's tick when save_for_backward ran (see engine.CHANGES); a node
    # that saved nothing keeps this class default, which no tick ever exceeds, and a
    # freed one has -1, below every tick, so that the engine tests one number per node
    _saved_at = float("inf")

    # defaults every node starts with, as class attributes: an op call sets only the
    # three fields below (every op pays for __init__)
    epoch = 0  # (see new_node_epoch)
    num_outputs = 1
    freed = False
    _saved = ()
    inputs = needs_input_grad = ()  # what a released node has
    # per-output bookkeeping, filled only when asked for (retain_grad / register_hook)
    output_hooks = None
    retained_outputs = None

    def __init__(self, function, inputs, needs_input_grad):
        self.function = function
        self.inputs = inputs
        self.needs_input_grad = needs_input_grad

    def save_for_backward(self, *values):
        """Keep arrays for backward; they are freed after backward unless retain_graph.
        Their memory is checked for in-place changes before backward (see the class)."""
        self._saved = values
        self._saved_at = CHANGES.tick

    @property
    def saved_tensors(self):
        if self.freed:
            raise RuntimeError(
                "%s.backward: the saved values were freed by an earlier backward(); "
                "call backward(retain_graph=True) the first time to backward twice"
                % self.function.__name__)
        return self._saved

    def release(self):
        """Drop everything only backward needed (saved values, edges to inputs, and any
        attribute an op stored, which can be large arrays). Without this a kept result
        (say losses.append(loss)) would keep every activation of its graph alive; a
        second backward still finds ``freed`` and raises. What stays: the function (for
        error messages) and the output count; hooks and retained outputs go with the graph."""
        function, num_outputs = self.function, self.num_outputs
        fields = self.__dict__
        fields.clear()  # one call, however many attributes the op set (runs once per node)
        fields["function"] = function
        fields["num_outputs"] = num_outputs
        fields["freed"] = True
        fields["_saved_at"] = -1


# The class of the nodes that ops make now: Context, or after an in-place change recorded
# in a graph, a subclass of it with a higher ``epoch``. The epoch tells ops/inplace.py
# which nodes were made before a tensor moved onto an in-place op's node (they must still
# lead to its old node), at no cost per op: apply looks this name up as it looked up Context.
_node_class = Context


def new_node_epoch():
    """Make the nodes of later op calls a fresh subclass of Context with the next epoch;
    returns (the class of the nodes made until now, the new epoch). The old classes are
    freed with their last node."""
    global _node_class
    previous = _node_class
    _node_class = type("Context", (Context,), {"epoch": previous.epoch + 1, "inputs": (), "__slots__": (),
                                               "__module__": __name__})
    return previous, _node_class.epoch


class Function:
    """Base class of differentiable ops. Subclass it, define forward and backward, call apply.

    Every subclass gets its own ``apply``, a plain function (see _make_apply), so that
    the registry can bind it as a Tensor method with no wrapper in between."""

    name = None
    float_input = False
    coerce_input = False
    # True for ops of exactly two operands (the binary elementwise ops): their apply is
    # written out for two arguments, which saves a loop and two lists on every call
    two_operands = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "apply" not in cls.__dict__:
            plain = cls.two_operands and not (cls.float_input or cls.coerce_input)
            cls.apply = staticmethod(_make_binary_apply(cls) if plain else _make_apply(cls))

    @staticmethod
    def forward(ctx, *args):
        raise NotImplementedError("Function subclasses must define forward(ctx, *inputs)")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError("Function subclasses must define backward(ctx, *grad_outputs)")


def _make_apply(cls):
    """cls.apply: run forward on the arguments' arrays and, when a Tensor input needs a
    gradient and grad mode is on, record the call in the graph."""

    # decided once here: an op without the flags pays nothing for them per call
    checked = bool(cls.float_input or cls.coerce_input)

    def apply(*args):
        if checked:
            args = _check_first_input(cls, args)
        # one pass over the arguments (every op pays this loop: it is written for speed)
        raw, needs, record = [], [], False
        for value in args:
            if isinstance(value, Tensor):
                raw.append(value.data)
                wanted = value.requires_grad
                needs.append(wanted)
                if wanted:
                    record = True
            else:
                raw.append(_weak_scalar(value) if isinstance(value, np.generic) else value)
                needs.append(False)
        if record and not grad_state.enabled:
            record = False
        ctx = _node_class(cls, args if record else (), tuple(needs))
        result = cls.forward(ctx, *raw)
        node = ctx if record else None
        if isinstance(result, tuple):
            ctx.num_outputs = len(result)
            result = [_output_array(cls, r) for r in result]
            if record:  # backward fills zeros for outputs that got no gradient
                ctx.output_meta = [(r.shape, r.dtype) for r in result]
            return tuple(Tensor._from_function(r, node, i) for i, r in enumerate(result))
        if type(result) is not np.ndarray:
            result = _output_array(cls, result)
        return Tensor._from_function(result, node, 0)

    apply.__name__ = apply.__qualname__ = cls.name or cls.__name__
    apply.__doc__ = cls.__doc__
    return apply


def _make_binary_apply(cls):
    """_make_apply's apply for an op of two operands returning one array, unrolled: the
    same rules (see _make_apply) with no loop, list or tuple result to handle."""

    def apply(a, b):
        if isinstance(a, Tensor):
            x, needs_a = a.data, a.requires_grad
        else:
            x, needs_a = (_weak_scalar(a) if isinstance(a, np.generic) else a), False
        if isinstance(b, Tensor):
            y, needs_b = b.data, b.requires_grad
        else:
            y, needs_b = (_weak_scalar(b) if isinstance(b, np.generic) else b), False
        record = (needs_a or needs_b) and grad_state.enabled
        ctx = _node_class(cls, (a, b) if record else (), (needs_a, needs_b))
        result = cls.forward(ctx, x, y)
        if type(result) is not np.ndarray:
            result = _output_array(cls, result)
        return Tensor._from_function(result, ctx if record else None, 0)

    apply.__name__ = apply.__qualname__ = cls.name or cls.__name__
    apply.__doc__ = cls.__doc__
    return apply


Function.apply = staticmethod(_make_apply(Function))


def _op_name(cls):
    return cls.name or cls.__name__.lower()


def _check_first_input(cls, args):
    """The shared input rules of the flagged ops (see the module docstring)."""
    first = args[0] if args else None
    if cls.coerce_input and not isinstance(first, Tensor):
        first = as_tensor(_op_name(cls), first)
        args = (first,) + args[1:]
    if cls.float_input:
        dtype = first.data.dtype if isinstance(first, Tensor) else np.asarray(first).dtype
        if dtype.kind != "f":
            if cls.float_input == "promote" and dtype.kind in "biu":
                data = first.data if isinstance(first, Tensor) else np.asarray(first)
                return (Tensor(data.astype(_DEFAULT_FLOAT)),) + args[1:]
            raise TypeError("%s: got a tensor of dtype %s, expected float32 or float64" % (_op_name(cls), dtype))
    return args


def _weak_scalar(value):
    """(value: a numpy scalar) A numpy scalar (np.float64(0.5), np.int64(2): what np.sqrt(2) or array.sum() return)
    as the Python number it stands for. numpy lets a Python number adapt to an array's
    dtype but promotes with a numpy scalar, so x * np.sqrt(2) would turn float32 into float64."""
    if value.dtype.kind in "biuf":
        return value.item()
    return value


def _output_array(cls, value):
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, (np.generic, int, float, bool)):
        return np.asarray(value)
    raise TypeError("%s.forward must return numpy arrays, got %s" % (cls.__name__, type(value).__name__))
