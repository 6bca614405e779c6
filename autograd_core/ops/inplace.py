"""In-place operations recorded in the graph, as PyTorch records them.

``y.add_(1)`` on a tensor in a graph (a non-leaf, or with an operand that requires grad)
runs the out-of-place op on a stand-in for y's old graph position, writes the result
into y's own array and moves y onto the new node: y's grad_fn becomes the in-place op's,
whose backward leads to the old one. Three things make that right:

- The stand-in holds a copy of y's old values, so the new node's saved arrays are not
  the memory about to be overwritten; an older node that saved y's memory is caught by
  the engine's check of in-place changes (the write bumps y's version).
- Nodes store their input Tensors and the engine reads ``grad_fn`` at backward time, so
  the ops that used y before the change would follow y onto the new node. Each move
  starts a new node epoch (``function.new_node_epoch``: later nodes are of a fresh
  subclass of Context) and is recorded on y (``y._moves``: epoch, stand-in); the nodes
  of older epochs get a data descriptor for ``inputs`` that replaces y, when they are
  next read, by the stand-in of its first move after they were made. Ops pay nothing
  for this (they create their node as before), nor does backward through a graph made
  after the last move.
- Views. A view of y in the graph (basic indexing, reshape, transpose, ...) whose array
  shares y's memory sees the new values, so its grad_fn is rebuilt on y's new node (its
  older consumers keep the old one). Live views are found by scanning the heap
  (``gc.get_referrers``, ~3 ms), done only when y's memory has references besides y's own
  (a numpy view refers to its base), so ``y = f(x); y.relu_()`` costs ~50 us, not a
  scan. A change through a view ``v = y[0]`` (``y[0].mul_(2)``, ``v[:, 0] = 0``) moves
  the base too, as PyTorch's CopySlices: y's new node passes the gradient of the
  written part to the view's new value and the rest to y's old node. A case that cannot be followed (a view made by an
  op that cannot be replayed, a view of memory without a graph link to its base) raises
  a RuntimeError instead of giving a wrong gradient.
"""
import gc
import sys

import numpy as np

from .. import function as function_module
from ..function import Context, Function
from ..tensor import _IN_GRAPH, Tensor
from ._util import unbroadcast
from .shape import GetItem, Permute, Reshape, _is_basic_index, affine_backward

# the view ops whose forward can be replayed on a gradient array to find the same elements
_REPLAYABLE = (GetItem, Reshape, Permute)


class SetItem(Function):
    """x[index] = values as a new array (in a graph: t[index] = v on a non-leaf). The
    gradient of x is grad with the written elements zeroed, that of values the
    written elements' gradient (summed over broadcasting)."""

    name = "setitem"
    differentiable_backward = affine_backward(2)  # linear in x and values, but for number values

    @staticmethod
    def forward(ctx, a, index, values):
        ctx.index, ctx.values_shape = index, np.shape(values)
        out = a.copy()
        try:
            out[index] = values
        except (IndexError, TypeError, ValueError) as error:
            kind = next(kind for kind in (IndexError, TypeError, ValueError) if isinstance(error, kind))
            raise kind("__setitem__: cannot write values of shape %s into t[%r] of a tensor of shape %s: %s"
                       % (np.shape(values), index, a.shape, error)) from None
        return out

    @staticmethod
    def backward(ctx, grad):
        grad_a = grad_values = None
        if ctx.needs_input_grad[0]:
            grad_a = grad.copy()
            grad_a[ctx.index] = 0
        if ctx.needs_input_grad[2]:
            grad_values = unbroadcast(np.asarray(grad[ctx.index]), ctx.values_shape)
        return grad_a, None, grad_values


class Replace(Function):
    """source broadcast to x's shape and dtype (copy_, fill_, zero_ in a graph): no
    gradient to x, the broadcast-summed gradient to source."""

    name = "copy_"
    differentiable_backward = affine_backward(1)  # linear in source, but for a number (fill_)

    @staticmethod
    def forward(ctx, a, source):
        ctx.source_shape = np.shape(source)
        out = np.empty_like(a)
        try:
            np.copyto(out, source, casting="unsafe")
        except ValueError as error:
            raise ValueError("copy_: cannot write a value of shape %s into a tensor of shape %s: %s"
                             % (np.shape(source), a.shape, error)) from None
        return out

    @staticmethod
    def backward(ctx, grad):
        grad_source = unbroadcast(grad, ctx.source_shape) if ctx.needs_input_grad[1] else None
        return np.zeros_like(grad) if ctx.needs_input_grad[0] else None, grad_source


class CopySlices(Function):
    """The base of a view after the view was changed in place: its array already holds
    the new values. backward: the gradient of the viewed elements goes to the view's new
    value, the rest to the base's old node."""

    name = "CopySlices"

    @staticmethod
    def forward(ctx, base, value, function, arguments):
        ctx.view_function, ctx.arguments = function, arguments
        return base

    @staticmethod
    def backward(ctx, grad):
        grad_base = np.array(grad, copy=True)
        region = _replay(ctx.view_function, ctx.arguments, grad_base)
        if not np.may_share_memory(region, grad_base):
            raise RuntimeError("CopySlices: the view made by %s could not be found again in the gradient"
                               % ctx.view_function.name)
        grad_value = np.array(region, copy=True)
        region[...] = 0
        return grad_base, grad_value, None, None

    @staticmethod
    def differentiable_backward(ctx, grad):
        # backward's two parts as ops: the view op itself on grad (linear) gives the view's
        # part, and _ViewZeroed the rest; both are linear, so differentiable to any order
        grad_base = _ViewZeroed.apply(grad, ctx.view_function, ctx.arguments) if ctx.needs_input_grad[0] else None
        grad_value = ctx.view_function.apply(grad, *ctx.arguments) if ctx.needs_input_grad[1] else None
        return grad_base, grad_value, None, None


class _ViewZeroed(Function):
    """A copy of a with the elements that the view op function (on arguments) selects set
    to 0: CopySlices' gradient of the base. A projection, so its own gradient is itself."""

    name = "CopySlices"
    linear = True  # (its backward's derivative is its forward: see function.Function)

    @staticmethod
    def forward(ctx, a, function, arguments):
        ctx.view_function, ctx.arguments = function, arguments
        out = np.array(a, copy=True)
        region = _replay(function, arguments, out)
        if not np.may_share_memory(region, out):
            raise RuntimeError("CopySlices: the view made by %s could not be found again in the gradient"
                               % function.name)
        region[...] = 0
        return out

    @staticmethod
    def backward(ctx, grad):
        return _ViewZeroed.forward(ctx, grad, ctx.view_function, ctx.arguments), None, None


def _replay(function, arguments, array):
    """function's forward on array (a view op: a view of array's elements)."""
    return function.forward(Context(function, (), ()), array, *arguments)


def _view_step(tensor):
    """(base, node) when tensor's node made it as a view of its first input's memory."""
    node = tensor.grad_fn
    if node is None or node.freed or not node.inputs or node.function is CopySlices:
        return None  # (a CopySlices output is the base itself, holding the view's write)
    base = node.inputs[0]
    if not isinstance(base, Tensor) or not np.may_share_memory(tensor.data, base.data):
        return None
    return base, node


def view_base(tensor):
    """The tensor that tensor is a (possibly repeated) view of in the graph, or None."""
    base, step = None, _view_step(tensor)
    while step is not None:
        base = step[0]
        step = _view_step(base)
    return base


def _stand_in(tensor, copy):
    """A Tensor in tensor's place in the graph (its node and output index), holding a
    copy of its values (copy), or else an array of its shape and dtype with no memory
    (the engine reads only those): a reference to the memory would make every later
    in-place change look as if a view of it were alive (see _may_have_views)."""
    data = tensor.data
    stand_in = Tensor._from_function(data.copy() if copy else np.broadcast_to(np.empty((), data.dtype), data.shape),
                                     None, 0)
    stand_in.grad_fn, stand_in.output_index = tensor.grad_fn, tensor.output_index
    stand_in.requires_grad = tensor.requires_grad
    return stand_in


def _add_move(tensor, epoch, stand_in):
    """Record that tensor moved onto a new node when the node epoch became epoch; the
    stand-in holds its place from before (see _ResolvedInputs). Kept on the tensor
    (``_moves``), so that it goes with it, reference cycles included."""
    moves = getattr(tensor, "_moves", None)
    if moves is None:
        moves = tensor._moves = []
    moves.append((epoch, stand_in))


class _ResolvedInputs:
    """``inputs`` of the nodes of an epoch that a later move made old: a data descriptor
    on their class, so it runs instead of the instance attribute (the nodes of the
    current epoch keep the plain attribute: nothing changes for them). A node's input
    that moved after the node was made is replaced, once, by the stand-in of its first
    move after that: the engine then follows the input's old node, as the op saw it."""

    def __get__(self, node, owner=None):
        if node is None:
            return ()
        fields = node.__dict__
        inputs = fields.get("inputs", ())
        epoch = type(node).epoch
        resolved = None
        for position, value in enumerate(inputs):
            if isinstance(value, Tensor):
                moves = getattr(value, "_moves", None)
                if moves is not None:
                    stand_in = next((s for moved_at, s in moves if moved_at > epoch), None)
                    if stand_in is not None:
                        resolved = list(inputs) if resolved is None else resolved
                        resolved[position] = stand_in
        if resolved is not None:
            inputs = fields["inputs"] = tuple(resolved)
        return inputs

    def __set__(self, node, value):
        node.__dict__["inputs"] = value


_RESOLVED_INPUTS = _ResolvedInputs()


def _move(moves):
    """Start a new node epoch and record each (tensor, stand-in) of moves as moved at it."""
    old_class, epoch = function_module.new_node_epoch()
    if not isinstance(old_class.__dict__.get("inputs"), _ResolvedInputs):
        old_class.inputs = _RESOLVED_INPUTS
    for tensor, stand_in in moves:
        _add_move(tensor, epoch, stand_in)


def _live_views(tensor, method, exclude=()):
    """[(view, node)]: tensors alive whose node made them from tensor as a view of its
    memory (they see its new values, so they must move too). Found by scanning the heap
    (gc.get_referrers, ~3 ms), which is done only when tensor's memory has references
    besides tensor (and the tensors in exclude): without one there can be no view."""
    holders = [tensor] + [t for t in exclude if t is not tensor]
    if not _may_have_views(tensor.data, holders):
        return []
    array = tensor.data
    tuples = [r for r in gc.get_referrers(tensor) if type(r) is tuple]
    nodes = []
    if tuples:
        for holder in gc.get_referrers(*tuples):
            if isinstance(holder, Context):
                inputs = holder.__dict__.get("inputs", ())
                if inputs and inputs[0] is tensor and any(inputs is t for t in tuples):
                    nodes.append(holder)
    views = []
    if nodes:
        for view in gc.get_referrers(*nodes):
            if (isinstance(view, Tensor) and view.grad_fn is not None and any(view.grad_fn is n for n in nodes)
                    and not any(view is t for t in exclude) and np.may_share_memory(view.data, array)):
                views.append((view, view.grad_fn))
    return views


def _may_have_views(array, holders):
    """False when nothing but the holders' arrays refers to array's memory (its owner,
    and array itself): then no other array views it, as a numpy view refers to the owner."""
    owner = array
    while isinstance(owner.base, np.ndarray):
        owner = owner.base
    # a holder's array refers to the owner (it is the owner, held by the tensor, or a view of it);
    # getrefcount's argument and the names owner and array refer to it too
    expected = 2 + (owner is array) + sum(1 for t in holders if t.data is owner or t.data.base is owner)
    if sys.getrefcount(owner) > expected:
        return True
    # array itself, when it is a view: the holder's slot, array, getrefcount's argument
    return owner is not array and sys.getrefcount(array) > 2 + sum(1 for t in holders if t.data is array)


def _move_views(views, method, base):
    """Move each live view (view, its node) onto a replay of its op on its base's new
    node; called after the base moved, so that the replay is a node of the new epoch.
    Views of those views follow."""
    for view, node in views:
        if node.num_outputs != 1:
            raise RuntimeError(
                "%s: a view of this tensor made by %s (shape %s) is still in use, and cannot follow the change; "
                "clone() the tensor before changing it in place" % (method, node.function.name
                                                                   or node.function.__name__, view.shape))
        inner = _live_views(view, method, exclude=(base,))
        stand_in = _stand_in(view, copy=False)
        fresh = node.function.apply(*node.__dict__["inputs"])
        view.grad_fn, view.output_index, view.requires_grad = fresh.grad_fn, fresh.output_index, fresh.requires_grad
        _move([(view, stand_in)])
        _move_views(inner, method, base)


def _result(method, tensor, result):
    """result as tensor's new value: a Tensor of tensor's shape, cast to its dtype."""
    if not isinstance(result, Tensor):
        result = Tensor(np.asarray(result))
    if result.shape != tensor.shape:
        raise RuntimeError("%s: the result has shape %s, which does not fit the tensor's shape %s "
                           "(an in-place op cannot change the shape)" % (method, result.shape, tensor.shape))
    if result.dtype != tensor.dtype:
        if not np.can_cast(result.dtype, tensor.dtype, casting="same_kind"):
            raise TypeError("%s: the result has dtype %s, which cannot be written into a %s tensor in place"
                            % (method, result.dtype, tensor.dtype))
        result = result.astype(tensor.dtype)
    return result


def record(tensor, method, compute):
    """tensor = compute(tensor), recorded in the graph: compute(stand_in) returns the
    out-of-place result; it is written into tensor's array and tensor moves onto its
    node (see the module docstring). Returns tensor."""
    if not tensor.data.flags.writeable:
        raise RuntimeError("%s: the tensor (shape %s) is a read-only view (made by expand, broadcast_to or "
                           "diagonal) whose elements may share memory; clone() it before changing it in place"
                           % (method, tensor.shape))
    step = _view_step(tensor)
    if step is not None:
        return _record_through_view(tensor, method, compute, *step)
    node = tensor.grad_fn
    if node is None and tensor.data.base is not None:
        raise RuntimeError(
            "%s: this tensor (shape %s) does not require grad and its array may be a view of another tensor's "
            "memory, so a value that requires grad written into it could not reach that tensor's gradient; "
            "write into the base tensor itself (base[index] = value), or clone() this one first"
            % (method, tensor.shape))
    if node is not None and node.function is not CopySlices:
        for value in node.inputs:
            if isinstance(value, Tensor) and np.may_share_memory(value.data, tensor.data):
                raise RuntimeError(
                    "%s: this tensor (shape %s) is a view made by %s, which cannot be changed in place in a graph; "
                    "clone() it first" % (method, tensor.shape, node.function.name or node.function.__name__))
    old = _stand_in(tensor, copy=True)
    result = _result(method, tensor, compute(old))
    views = _live_views(tensor, method)
    np.copyto(tensor.data, result.data)
    tensor.grad_fn, tensor.output_index, tensor.requires_grad = result.grad_fn, result.output_index, \
        result.requires_grad
    _move([(tensor, old)])
    _move_views(views, method, tensor)
    tensor.increment_version(method)
    return tensor


def _record_through_view(view, method, compute, base, node):
    """view = compute(view) where view's node made it as a view of base: base moves onto
    a CopySlices node, the view onto a replay of its op on base's new node."""
    function = node.function
    arguments = tuple(node.inputs[1:])
    if function not in _REPLAYABLE or node.num_outputs != 1 or (
            function is GetItem and not _is_basic_index(arguments[0])):
        raise RuntimeError(
            "%s: this tensor (shape %s) is a view made by %s; changing it in place in a graph is supported for "
            "views made by basic indexing, reshape/view and transpose/permute; clone() it first"
            % (method, view.shape, function.name or function.__name__))
    if _view_step(base) is not None:
        raise RuntimeError(
            "%s: this tensor (shape %s) is a view of a view; changing it in place in a graph is supported for "
            "a view of a tensor that is not itself a view: index the base once (base[i, j]), or clone() first"
            % (method, view.shape))
    if base.requires_grad and base.grad_fn is None:
        raise RuntimeError(
            "%s: a view of a leaf tensor that requires grad (shape %s) is being used in an in-place operation; "
            "change it under no_grad(), or clone() the leaf first" % (method, base.shape))
    old_view = _stand_in(view, copy=True)
    value = _result(method, view, compute(old_view))
    views = _live_views(base, method, exclude=(view,)) + _live_views(view, method, exclude=(base,))
    old_base = _stand_in(base, copy=False)
    np.copyto(view.data, value.data)
    new_base = CopySlices.apply(old_base, value, function, arguments)
    base.grad_fn, base.output_index, base.requires_grad = new_base.grad_fn, 0, True
    _move([(base, old_base)])
    fresh = function.apply(base, *arguments)
    view.grad_fn, view.output_index, view.requires_grad = fresh.grad_fn, fresh.output_index, True
    _move([(view, old_view)])
    _move_views(views, method, base)
    view.increment_version(method)
    return view


_IN_GRAPH.record, _IN_GRAPH.view_base = record, view_base
_IN_GRAPH.set_item, _IN_GRAPH.replace = SetItem.apply, Replace.apply
