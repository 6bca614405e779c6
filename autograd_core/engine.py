"""The engine: reverse-mode backward over the recorded graph. It knows no op.

Nodes are the Contexts of Function calls. ``backward`` orders them by an iterative
depth-first search (no recursion, so graphs 100,000 ops deep are fine), then walks
them in reverse topological order, calling each Function's backward once with the
summed gradients of its outputs and passing the results on to its inputs.
"""
import numpy as np

from .grad_mode import no_grad


def _topological_order(root):
    """Nodes reachable from root, each after every node that consumes its outputs."""
    order, visited, stack = [], set(), [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        for value in node.inputs:
            parent = getattr(value, "_ctx", None)
            if parent is not None and id(parent) not in visited:
                stack.append((parent, False))
    order.reverse()
    return order


def _accumulate(store, key, grad):
    previous = store.get(key)
    # never add in place: a backward may hand the same array to several inputs
    store[key] = grad if previous is None else previous + grad


def _run_hooks(hooks, grad, dtype):
    from .tensor import Tensor
    for hook in hooks:
        result = hook(Tensor(grad))
        if result is not None:
            grad = np.asarray(result.data if isinstance(result, Tensor) else result, dtype=dtype)
    return grad


def _store_grad(tensor, grad):
    """Add grad into tensor.grad. The first gradient is a private C-ordered copy, so
    that later accumulation cannot alias another gradient, and optimizers can update
    it as one flat array."""
    from .tensor import Tensor
    if tensor.grad is None:
        tensor.grad = Tensor(np.array(grad, dtype=tensor.data.dtype, order="C", copy=True))
    else:
        tensor.grad.data = tensor.grad.data + grad


def _deliver_to_leaf(leaf, grad):
    if leaf._hooks:
        grad = _run_hooks(leaf._hooks, grad, leaf.data.dtype)
    _store_grad(leaf, grad)


def backward(tensor, grad, retain_graph=False):
    """Accumulate d(tensor)/d(leaf) * grad into ``.grad`` of every leaf that requires grad."""
    root = tensor._ctx
    if root is None:
        _deliver_to_leaf(tensor, grad)
        return
    pending = {(id(root), tensor._index): grad}
    # a leaf's gradient is summed over all its consumers first, so that its hooks see
    # the total once (as for non-leaves), not one partial sum per consumer
    leaf_grads = {}
    with no_grad():
        for node in _topological_order(root):
            if node.freed:
                raise RuntimeError(
                    "backward: trying to backward through part of the graph a second time "
                    "(%s's saved values were freed); pass retain_graph=True to the first backward"
                    % node.function.__name__)
            # this loop runs once per node of every backward (an LSTM makes one node per
            # time step): the per-output hook checks stay out of the way when unused
            node_id, hooks, retained = id(node), node.output_hooks, node.retained_outputs
            grads = [pending.pop((node_id, index), None) for index in range(node.num_outputs)]
            if hooks or retained:
                for index, g in enumerate(grads):
                    if g is not None and hooks and hooks.get(index):
                        g = grads[index] = _run_hooks(hooks[index], g, g.dtype)
                    if g is not None and retained and index in retained:
                        _deliver_to_leaf_retained(retained[index], g)
            missing = [index for index, g in enumerate(grads) if g is None]
            if len(missing) == len(grads):
                continue  # nothing flows through this node (e.g. an unused output)
            for index in missing:  # an output nobody used still gets its (zero) gradient
                grads[index] = _zeros_for(node, index)
            input_grads = node.function.backward(node, *grads)
            if not isinstance(input_grads, tuple):
                input_grads = (input_grads,)
            if len(input_grads) != len(node.inputs):
                raise RuntimeError("%s.backward returned %d gradients, expected %d (one per forward input)"
                                   % (node.function.__name__, len(input_grads), len(node.inputs)))
            for value, needs, g in zip(node.inputs, node.needs_input_grad, input_grads):
                if not needs or g is None:
                    continue
                if type(g) is not np.ndarray:
                    g = np.asarray(g)
                if g.shape != value.data.shape:
                    raise RuntimeError("%s.backward returned a gradient of shape %s for an input of shape %s"
                                       % (node.function.__name__, g.shape, value.data.shape))
                if g.dtype != value.data.dtype:
                    g = g.astype(value.data.dtype)
                if value._ctx is None:
                    entry = leaf_grads.get(id(value))
                    leaf_grads[id(value)] = (value, g if entry is None else entry[1] + g)
                else:
                    _accumulate(pending, (id(value._ctx), value._index), g)
            if not retain_graph:
                node.release()
        for leaf, g in leaf_grads.values():
            _deliver_to_leaf(leaf, g)


def _deliver_to_leaf_retained(ref, grad):
    tensor = ref()
    if tensor is not None:  # retain_grad() on a tensor that no longer exists: nothing to do
        _store_grad(tensor, grad)


def _zeros_for(node, index):
    shapes = getattr(node, "output_meta", None)
    if shapes is None:
        raise RuntimeError("%s: an output without gradient needs output_meta" % node.function.__name__)
    shape, dtype = shapes[index]
    return np.zeros(shape, dtype=dtype)
