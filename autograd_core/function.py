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

Higher-order gradients. ``backward`` on numpy arrays is the fast first-order path. When
a backward is itself to be differentiated (``create_graph=True``), the engine calls
``graph_backward`` instead, which takes the first of these the class gives:

* ``differentiable_backward(ctx, *grad_outputs)``: the gradient formula written with the
  engine's own ops on Tensors. ``ctx.inputs`` are the forward's arguments as given
  (input Tensors, in the graph), and the grads are Tensors; it returns Tensors (None: no
  gradient). A class that defines only this gets its numpy ``backward`` from it::

      class Cube(Function):
          @staticmethod
          def forward(ctx, x):
              return x ** 3
          @staticmethod
          def differentiable_backward(ctx, grad):
              (x,) = ctx.inputs
              return 3 * x ** 2 * grad

* ``composite(*args)``: the op written as a composition of other ops (a fused kernel's
  plain form); its derivative is taken through that composition.
* ``linear = True``: the op is linear in its float Tensor inputs (reshape, sum, cat,
  indexing): the backward is a linear map whose own derivative is the op's forward.
* none of these: the gradient is computed by ``backward`` and is correct, but it cannot
  be differentiated again: doing so raises a RuntimeError naming the op (torch's
  once_differentiable).

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


_new_object = object.__new__
_output_tensor = Tensor._from_function  # (bound once: the applies call it on every op)


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
    # written out for two arguments, which saves a loop and two lists on every call, and
    # their forward gets ctx=None when the call is not recorded (see _make_binary_apply)
    two_operands = False
    # True when backward returns a tuple of one gradient (or None) per input, each in its
    # input's exact shape and dtype (given a gradient in its output's, which the engine
    # ensures): the engine then skips its checks of them (~0.15 us an input). The binary
    # elementwise family sets it; tests/test_engine_fast_path.py holds every one to it.
    exact_gradients = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "differentiable_backward" in cls.__dict__ and cls.backward is Function.backward:
            # only the Tensor formula given: it is the numpy backward too (run without a graph)
            cls.backward = staticmethod(_backward_from_tensors(cls))
        if "apply" not in cls.__dict__:
            plain = cls.two_operands and not (cls.float_input or cls.coerce_input)
            cls.apply = staticmethod(_make_binary_apply(cls) if plain else _make_apply(cls))

    @staticmethod
    def forward(ctx, *args):
        raise NotImplementedError("Function subclasses must define forward(ctx, *inputs)")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError("Function subclasses must define backward(ctx, *grad_outputs)")

    # the ways to differentiate the backward itself (see the module docstring)
    differentiable_backward = None
    composite = None
    linear = False

    @classmethod
    def graph_backward(cls, ctx, grads):
        """The input gradients of node ctx as Tensors recorded in the graph, from its
        outputs' gradients (Tensors; None for an output that got none). Called by the
        engine when create_graph=True."""
        if any(g is None for g in grads):
            meta = ctx.output_meta
            grads = [Tensor(np.zeros(*meta[i])) if g is None else g for i, g in enumerate(grads)]
        if cls.differentiable_backward is not None:
            return cls.differentiable_backward(ctx, *grads)
        if cls.composite is not None:
            return _composite_backward(cls, ctx, grads)
        if cls.linear:
            return _linear_backward(ctx, grads)
        return _once_differentiable(ctx, grads)


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
        ctx = _new_object(_node_class)  # (Context's fields set here: see _make_binary_apply)
        ctx.function, ctx.inputs, ctx.needs_input_grad = cls, (args if record else ()), tuple(needs)
        result = cls.forward(ctx, *raw)
        node = ctx if record else None
        if isinstance(result, tuple):
            ctx.num_outputs = len(result)
            result = [_output_array(cls, r) for r in result]
            if record:  # backward fills zeros for outputs that got no gradient
                ctx.output_meta = [(r.shape, r.dtype) for r in result]
            return tuple(_output_tensor(r, node, i) for i, r in enumerate(result))
        if type(result) is not np.ndarray:
            result = _output_array(cls, result)
        return _output_tensor(result, node, 0)

    apply.__name__ = apply.__qualname__ = cls.name or cls.__name__
    apply.__doc__ = cls.__doc__
    return apply


def _make_binary_apply(cls):
    """_make_apply's apply for an op of two operands returning one array, unrolled: the
    same rules (see _make_apply) with no loop, list or tuple result to handle. When
    nothing is recorded, no Context is made: forward gets ctx=None (about 0.3 us of a
    1.5 us op under no_grad), so a two_operands forward must test ctx before using it."""
    forward = cls.forward  # (bound once: the classmethod's lookup is paid here, not per call)

    def apply(a, b):
        if isinstance(a, Tensor):
            x, needs_a = a.data, a.requires_grad
        else:
            x, needs_a = (_weak_scalar(a) if isinstance(a, np.generic) else a), False
        if isinstance(b, Tensor):
            y, needs_b = b.data, b.requires_grad
        else:
            y, needs_b = (_weak_scalar(b) if isinstance(b, np.generic) else b), False
        if (needs_a or needs_b) and grad_state.enabled:
            # Context's three fields set here, not by calling it: its __init__ frame is
            # ~0.1 us of a 1.7 us op
            ctx = _new_object(_node_class)
            ctx.function, ctx.inputs, ctx.needs_input_grad = cls, (a, b), (needs_a, needs_b)
        else:
            ctx = None
        result = forward(ctx, x, y)
        if type(result) is not np.ndarray:
            result = _output_array(cls, result)
        return _output_tensor(result, ctx, 0)

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


# ---- higher-order gradients: the generic ways (see the module docstring) ----------------
def _backward_from_tensors(cls):
    """A numpy backward made from cls.differentiable_backward: the formula runs on Tensors
    wrapping the arrays, with no graph recorded."""

    def backward(ctx, *grad_outputs):
        previous = grad_state.enabled
        grad_state.enabled = False
        try:
            result = cls.differentiable_backward(ctx, *[Tensor(g) for g in grad_outputs])
        finally:
            grad_state.enabled = previous
        if isinstance(result, tuple):
            return tuple(r.data if isinstance(r, Tensor) else r for r in result)
        return result.data if isinstance(result, Tensor) else result

    return backward


def _tensor_inputs(ctx):
    return [i for i, (value, needs) in enumerate(zip(ctx.inputs, ctx.needs_input_grad)) if needs]


def _composite_backward(cls, ctx, grads):
    """Differentiate cls.composite (the op as a composition of ops) at the node's inputs.
    Each input that needs a gradient enters through a fresh alias node, so that the
    gradients are the op's own partial derivatives even when one input depends on another."""
    from .autograd import grad as gradient_of

    wanted = _tensor_inputs(ctx)
    arguments = list(ctx.inputs)
    aliases = []
    for i in wanted:
        arguments[i] = _Alias.apply(arguments[i])
        aliases.append(arguments[i])
    outputs = cls.composite(*arguments)
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    pairs = [(o, g) for o, g in zip(outputs, grads) if isinstance(o, Tensor) and o.requires_grad]
    if not pairs:
        found = (None,) * len(aliases)
    else:
        found = gradient_of([o for o, _ in pairs], aliases, [g for _, g in pairs], create_graph=True,
                            allow_unused=True)
    result = [None] * len(ctx.inputs)
    for i, g in zip(wanted, found):
        result[i] = g
    return tuple(result)


class _Alias(Function):
    """An identity op: a fresh graph node in front of an input (see _composite_backward)."""

    name = "alias"
    linear = True

    @staticmethod
    def forward(ctx, a):
        return a.view()

    @staticmethod
    def backward(ctx, grad):
        return grad


def _linear_backward(ctx, grads):
    """The backward of an op linear in its float Tensor inputs, as an op of the output
    gradients (see _LinearBackward)."""
    wanted = _tensor_inputs(ctx)
    results = _LinearBackward.apply(ctx, *grads)
    results = results if isinstance(results, tuple) else (results,)
    out = [None] * len(ctx.inputs)
    for i, g in zip(wanted, results):
        out[i] = g
    return tuple(out)


def _replaced_arguments(op_ctx, cotangents, zeros):
    """The forward's arguments with each float Tensor input replaced: those that needed a
    gradient by their cotangent (in order), the others by zeros(array). Integer and bool
    Tensors (indices, masks) keep their values."""
    arguments, position = [], 0
    for value, needs in zip(op_ctx.arguments, op_ctx.needs):
        if needs:
            arguments.append(cotangents[position])
            position += 1
        elif isinstance(value, np.ndarray) and value.dtype.kind == "f":
            arguments.append(zeros(value))
        else:
            arguments.append(value)
    return arguments


class _LinearBackward(Function):
    """The backward of a linear op f as an op of the gradients g: B(g) = f^T g. Its own
    backward is B's transpose, which is f itself: the gradients of B's outputs (one per
    input of f that needed one) go through f's forward, with zeros for the inputs that
    needed none. So the first backward runs the op's numpy/C backward, the second its
    forward, and the third its backward again, to any order."""

    name = "linear backward"

    @staticmethod
    def forward(ctx, node, *grads):
        op = node.function
        ctx.op, ctx.op_name = op, op.name or op.__name__
        ctx.needs = node.needs_input_grad
        # the forward's arguments, with arrays for Tensors (integer indices keep their values)
        ctx.arguments = [value.data if isinstance(value, Tensor) else value for value in node.inputs]
        ctx.input_meta = [(value.shape, value.dtype) for value, needs in zip(node.inputs, node.needs_input_grad)
                          if needs]
        found = op.backward(node, *grads)
        found = found if isinstance(found, tuple) else (found,)
        results = []
        for (shape, dtype), (value, needs, g) in zip(ctx.input_meta, [(v, n, g) for v, n, g in zip(
                node.inputs, node.needs_input_grad, found) if n]):
            results.append(np.zeros(shape, dtype) if g is None else np.asarray(g, dtype=dtype).reshape(shape))
        ctx.output_meta = list(ctx.input_meta)
        return tuple(results) if len(results) != 1 else results[0]

    @staticmethod
    def backward(ctx, *cotangents):
        arguments = _replaced_arguments(ctx, cotangents, np.zeros_like)
        op_ctx = _node_class(ctx.op, (), (False,) * len(arguments))
        out = ctx.op.forward(op_ctx, *arguments)
        out = out if isinstance(out, tuple) else (out,)
        return (None,) + tuple(out)

    @staticmethod
    def differentiable_backward(ctx, *cotangents):
        arguments = _replaced_arguments(ctx, cotangents, lambda array: Tensor(np.zeros_like(array)))
        arguments = [Tensor(value) if isinstance(value, np.ndarray) else value for value in arguments]
        out = ctx.op.apply(*arguments)
        out = out if isinstance(out, tuple) else (out,)
        return (None,) + tuple(out)


def _once_differentiable(ctx, grads):
    """The gradient by the numpy backward, as Tensors on a node whose own backward raises:
    the first derivative is right, and differentiating it again names the op."""
    found = ctx.function.backward(ctx, *[g.data for g in grads])
    found = found if isinstance(found, tuple) else (found,)
    wanted = _tensor_inputs(ctx)
    values = [found[i] for i in wanted]
    present = [j for j, v in enumerate(values) if v is not None]
    if not present:
        return (None,) * len(ctx.inputs)
    sources = [g for g in grads] + [ctx.inputs[i] for i in wanted]
    outputs = _OnceDifferentiable.apply(ctx.function.name or ctx.function.__name__,
                                        [np.asarray(values[j]) for j in present], *sources)
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    result = [None] * len(ctx.inputs)
    for j, out in zip(present, outputs):
        result[wanted[j]] = out
    return tuple(result)


class _OnceDifferentiable(Function):
    """Gradients already computed (by an op's numpy backward) placed in the graph after
    the tensors they came from, so that differentiating them is an error, not a zero."""

    name = "once differentiable"

    @staticmethod
    def forward(ctx, op_name, values, *sources):
        ctx.op_name = op_name
        return tuple(values) if len(values) != 1 else values[0]

    @staticmethod
    def backward(ctx, *grads):
        raise RuntimeError(
            "%s: its backward is not differentiable, so this gradient cannot be differentiated again "
            "(a second derivative through %s is not implemented; it has no differentiable_backward, "
            "composite or linear form)" % (ctx.op_name, ctx.op_name))
