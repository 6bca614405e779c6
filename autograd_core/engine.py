"""The engine: reverse-mode backward over the recorded graph. It knows no op, and no
Tensor class: it reads the tensors it is given through ``grad_fn`` (their graph node),
``output_index`` and ``data``, and hands each leaf its gradient with
``accumulate_grad(array)``.

Nodes are the Contexts of Function calls. ``backward`` orders them by an iterative
depth-first search (no recursion, so graphs 100,000 ops deep are fine), then walks
them in reverse topological order, calling each Function's backward once with the
summed gradients of its outputs and passing the results on to its inputs. Hooks on a
node's outputs are callables array -> array (Tensor.register_hook wraps the user's).
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
            parent = getattr(value, "grad_fn", None)
            if parent is not None and id(parent) not in visited:
                stack.append((parent, False))
    order.reverse()
    return order


def _accumulate(store, key, grad):
    previous = store.get(key)
    # never add in place: a backward may hand the same array to several inputs
    store[key] = grad if previous is None else previous + grad


def _run_hooks(hooks, grad):
    for hook in hooks:
        grad = hook(grad)
    return grad


def backward(tensor, grad, retain_graph=False):
    """Accumulate d(tensor)/d(leaf) * grad into ``.grad`` of every leaf that requires grad."""
    root = tensor.grad_fn
    if root is None:
        tensor.accumulate_grad(grad)
        return
    pending = {(id(root), tensor.output_index): grad}
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
                        g = grads[index] = _run_hooks(hooks[index], g)
                    if g is not None and retained and index in retained:
                        _deliver_to_retained(retained[index], g)
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
                parent = value.grad_fn
                if parent is None:
                    entry = leaf_grads.get(id(value))
                    leaf_grads[id(value)] = (value, g if entry is None else entry[1] + g)
                else:
                    _accumulate(pending, (id(parent), value.output_index), g)
            if not retain_graph:
                node.release()
        for leaf, g in leaf_grads.values():
            leaf.accumulate_grad(g)


def _deliver_to_retained(ref, grad):
    tensor = ref()
    if tensor is not None:  # retain_grad() on a tensor that no longer exists: nothing to do
        tensor.accumulate_grad(grad)


def _zeros_for(node, index):
    shapes = getattr(node, "output_meta", None)
    if shapes is None:
        raise RuntimeError("%s: an output without gradient needs output_meta" % node.function.__name__)
    shape, dtype = shapes[index]
    return np.zeros(shape, dtype=dtype)
