"""In-place operations recorded in the graph, as PyTorch records them.

``y.add_(1)`` on a tensor in a graph (a non-leaf, or with an operand that requires grad)
runs the out-of-place op on a stand-in for y's old graph position, writes the result
into y's own array and moves y onto the new node: y's grad_fn becomes the in-place op's,
whose backward leads to the old one. Three things make that right:

- The stand-in holds a copy of y's old values, so the new node's saved arrays are not
  the memory about to be overwritten; an older node that saved y's memory is caught by
  the engine's check of in-place changes (the write bumps y's version).
- Nodes store their input Tensors and the engine reads ``grad_fn`` at backward time, so
  the ops that used y before the change would follow y onto the new node. They are
  found (``gc.get_referrers``: a scan of the heap, ~1 ms with ~30,000 objects, paid only
  by in-place ops in a graph) and pointed at the stand-in instead.
- Views. A view of y in the graph (basic indexing, reshape, transpose, ...) whose array
  shares y's memory sees the new values, so its grad_fn is rebuilt on y's new node (its
  older consumers keep the old one); and a change through a view ``v = y[0]``
  (``y[0].mul_(2)``, ``y[:, 0] = 0`` on a view) rebases the base too, as PyTorch's
  CopySlices: y's new node passes the gradient of the written part to the view's new
  value and the rest to y's old node. A case that cannot be followed (a view made by an
  op that cannot be replayed, a view of memory without a graph link to its base) raises
  a RuntimeError instead of giving a wrong gradient.
"""
import gc

import numpy as np

from ..function import Context, Function
from ..tensor import _IN_GRAPH, Tensor
from ._util import unbroadcast
from .shape import GetItem, Permute, Reshape, _is_basic_index

# the view ops whose forward can be replayed on a gradient array to find the same elements
_REPLAYABLE = (GetItem, Reshape, Permute)


class SetItem(Function):
    """x[index] = values as a new array (in a graph: t[index] = v on a non-leaf). The
    gradient of x is grad with the written elements zeroed, that of values the
    written elements' gradient (summed over broadcasting)."""

    name = "setitem"

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


def _replay(function, arguments, array):
    """function's forward on array (a view op: a view of array's elements)."""
    return function.forward(Context(function, (), ()), array, *arguments)


def _view_step(tensor):
    """(base, node) when tensor's node made it as a view of its first input's memory."""
    node = tensor.grad_fn
    if node is None or node.freed or not node.inputs:
        return None
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
    copy of its values (copy) or the same array."""
    stand_in = Tensor._from_function(tensor.data.copy() if copy else tensor.data, None, 0)
    stand_in.grad_fn, stand_in.output_index = tensor.grad_fn, tensor.output_index
    stand_in.requires_grad = tensor.requires_grad
    return stand_in


def _consumers(tensor):
    """[(holder, inputs)]: every recorded node's input tuple that holds tensor; holder is
    the node or its attribute dict."""
    tuples = [r for r in gc.get_referrers(tensor) if type(r) is tuple]
    if not tuples:
        return []
    found = []
    for holder in gc.get_referrers(*tuples):
        inputs = holder.get("inputs") if isinstance(holder, dict) else getattr(holder, "inputs", None) \
            if isinstance(holder, Context) else None
        if inputs is not None and any(inputs is t for t in tuples):
            found.append((holder, inputs))
    return found


def _node_of(holder):
    if isinstance(holder, Context):
        return holder
    for candidate in gc.get_referrers(holder):
        if isinstance(candidate, Context) and getattr(candidate, "__dict__", None) is holder:
            return candidate
    return None


def _redirect(tensor, stand_in, method):
    """Point every recorded use of tensor at stand_in (tensor is about to move onto a new
    node), and rebuild the grad_fn of the graph views of tensor that are alive."""
    views = []
    for holder, inputs in _consumers(tensor):
        replaced = tuple(stand_in if value is tensor else value for value in inputs)
        if isinstance(holder, dict):
            holder["inputs"] = replaced
        else:
            holder.inputs = replaced
        node = _node_of(holder)
        if node is not None and inputs and inputs[0] is tensor:
            views.append(node)
    rebuilt = []
    for node in views:
        for view in gc.get_referrers(node):
            if (isinstance(view, Tensor) and view.grad_fn is node
                    and np.may_share_memory(view.data, tensor.data)):
                rebuilt.append((view, node))
    return rebuilt


def _rebuild_views(rebuilt, tensor, method):
    """Put each live view (view, its old node) on a node replaying its op on tensor's new
    node; the view's older consumers are pointed at a stand-in first."""
    for view, node in rebuilt:
        if node.num_outputs != 1:
            raise RuntimeError(
                "%s: a view of this tensor made by %s (shape %s) is still in use; changing its base in place "
                "is not supported for views of that op: clone() the tensor before the in-place change"
                % (method, node.function.name or node.function.__name__, view.shape))
        arguments = [tensor if i == 0 else value for i, value in enumerate(node.inputs)]
        old = _stand_in(view, copy=False)
        inner = _redirect(view, old, method)
        fresh = node.function.apply(*arguments)
        view.grad_fn, view.output_index, view.requires_grad = fresh.grad_fn, fresh.output_index, fresh.requires_grad
        _rebuild_views(inner, view, method)


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
    if node is not None:
        for value in node.inputs:
            if isinstance(value, Tensor) and np.may_share_memory(value.data, tensor.data):
                raise RuntimeError(
                    "%s: this tensor (shape %s) is a view made by %s, which cannot be changed in place in a graph; "
                    "clone() it first" % (method, tensor.shape, node.function.name or node.function.__name__))
    old = _stand_in(tensor, copy=True)
    result = _result(method, tensor, compute(old))
    views = _redirect(tensor, old, method)
    np.copyto(tensor.data, result.data)
    tensor.grad_fn, tensor.output_index, tensor.requires_grad = result.grad_fn, result.output_index, \
        result.requires_grad
    _rebuild_views(views, tensor, method)
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
    old_base = _stand_in(base, copy=False)
    views = _redirect(base, old_base, method)
    views = [(other, other_node) for other, other_node in views if other is not view]
    inner = _redirect(view, old_view, method)
    np.copyto(view.data, value.data)
    new_base = CopySlices.apply(old_base, value, function, arguments)
    base.grad_fn, base.output_index, base.requires_grad = new_base.grad_fn, 0, True
    fresh = function.apply(base, *arguments)
    view.grad_fn, view.output_index, view.requires_grad = fresh.grad_fn, fresh.output_index, True
    _rebuild_views(views, base, method)
    _rebuild_views(inner, view, method)
    view.increment_version(method)
    return view


_IN_GRAPH.record, _IN_GRAPH.view_base = record, view_base
_IN_GRAPH.set_item, _IN_GRAPH.replace = SetItem.apply, Replace.apply
