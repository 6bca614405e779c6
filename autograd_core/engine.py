"""The engine: reverse-mode backward over the recorded graph. It knows no op, and no
Tensor class: it reads the tensors it is given through ``grad_fn`` (their graph node),
``output_index`` and ``data``, and hands each leaf its gradient with
``accumulate_grad(array)``.

Nodes are the Contexts of Function calls. ``backward`` orders them by an iterative
depth-first search (no recursion, so graphs 100,000 ops deep are fine), then walks
them in reverse topological order, calling each Function's backward once with the
summed gradients of its outputs and passing the results on to its inputs. Hooks on a
node's outputs are callables array -> array (Tensor.register_hook wraps the user's).

A leaf gets its gradient as soon as its last contribution has arrived, not when the
whole backward ends: the topological pass counts each leaf's uses, and the walk hands
the summed gradient over when the count reaches zero. Gradient-ready hooks
(``Tensor.register_post_accumulate_grad_hook``) can so start work (a data-parallel
allreduce) that overlaps the rest of backward. ``queue_callback(fn)`` runs fn once at the
end of the current backward (after every leaf has its gradient).

In-place changes (see ``note_in_place_change``) are checked against what each node
saved, just before its backward runs: a node that saved arrays remembers the change
clock's tick (``Context.save_for_backward``), and only when the clock has moved since
then does the engine look at which memory changed.
"""
import threading
import weakref
from sys import getrefcount

import numpy as np

from .grad_mode import enable_grad, no_grad


class _ChangeLog:
    """The in-place changes the library made, as the engine needs them for its check.

    ``tick`` counts every change ever made; a node saved at tick t is safe unless a
    change with a later tick touched memory it saved. ``ranges`` maps the byte range
    [low, high) of each changed array to (tick, owner, description): owner a weak
    reference to the array that owns the memory (a range whose owner died cannot be
    shared by any live saved array, so it is dropped), description the changed
    tensor's (shape, dtype, version, what changed it), for the error message.
    The log holds no array alive, and one entry per changed range (a parameter's
    optimizer steps keep overwriting one entry)."""

    __slots__ = ("tick", "ranges", "limit", "lock", "known", "versions")

    def __init__(self):
        self.tick = 0
        self.ranges = {}
        self.limit = 64
        # id(array) -> (weakref to array, weakref to its owner, low, high) of arrays changed
        # before: a parameter's range is found in ~0.3 us per step, not worked out again
        self.known = {}
        # id(owner) -> [weakref to owner, count]: the version counter of a block of memory,
        # which every tensor viewing it shares (a view, its base, a detached copy), as in torch
        self.versions = {}
        # changes are rare (an optimizer step makes one per parameter), so a lock costs
        # nothing measurable, and two threads stepping optimizers cannot lose a tick
        self.lock = threading.Lock()

    def record(self, array, by):
        """Log a change of array's memory (by: what changed it, for the error message).
        Returns the new version of the memory's owner."""
        known = self.known.get(id(array))
        if known is None or known[0]() is not array:
            owner = array
            while isinstance(owner.base, np.ndarray):
                owner = owner.base
            known = (weakref.ref(array), weakref.ref(owner)) + _byte_bounds(array)
        _, owner, low, high = known
        with self.lock:  # (the pruning below iterates the dicts)
            self.known[id(array)] = known
            self.tick += 1
            owner_array = owner()
            counter = self.versions.get(id(owner_array))
            if counter is None or counter[0]() is not owner_array:
                counter = self.versions[id(owner_array)] = [owner, 0]
            counter[1] += 1
            if high > low:
                self.ranges[(low, high)] = (self.tick, owner, (array.shape, array.dtype, counter[1], by))
            if len(self.ranges) > self.limit or len(self.known) > self.limit or len(self.versions) > self.limit:
                self._prune()
            return counter[1]

    def prune(self):
        """Drop what belongs to arrays that no longer exist (record does it as the log grows)."""
        with self.lock:
            self._prune()

    def _prune(self):
        self.ranges = {key: entry for key, entry in self.ranges.items() if entry[1]() is not None}
        self.known = {key: entry for key, entry in self.known.items() if entry[0]() is not None}
        self.versions = {key: entry for key, entry in self.versions.items() if entry[0]() is not None}
        self.limit = max(64, 2 * len(self.ranges), 2 * len(self.known), 2 * len(self.versions))

    def version(self, array):
        """How many changes were logged for the memory array views (0 if none)."""
        owner = array
        while isinstance(owner.base, np.ndarray):
            owner = owner.base
        counter = self.versions.get(id(owner))
        return counter[1] if counter is not None and counter[0]() is owner else 0

    def changes_since(self, tick):
        """[(low, high, description)] of the live ranges changed after tick."""
        with self.lock:  # another thread may be recording a change
            entries = list(self.ranges.items())
        return [(low, high, entry[2]) for (low, high), entry in entries if entry[0] > tick and entry[1]() is not None]


CHANGES = _ChangeLog()


def note_in_place_change(array, description):
    """Record that the library changed ``array``'s memory in place (an in-place Tensor
    method, an optimizer step) and return the memory's new version (shared by every
    tensor viewing it). description, (..., what changed it), is for the error that
    backward raises if an op had saved that memory; its last item is what is kept."""
    return CHANGES.record(array, description[-1])


def _byte_bounds(array):
    """[low, high) addresses of the bytes array can touch (numpy's byte_bounds)."""
    low = high = array.__array_interface__["data"][0]
    if array.size == 0:
        return low, low
    for length, stride in zip(array.shape, array.strides):
        if stride < 0:
            low += (length - 1) * stride
        else:
            high += (length - 1) * stride
    return low, high + array.itemsize


def _check_saved(node, recent):
    """Raise if memory that node saved for backward was changed in place after it saved it.
    recent caches CHANGES.changes_since by tick for one backward: the nodes of one forward
    pass mostly share a tick, so the log is scanned once, not once per node."""
    changes = recent.get(node._saved_at)
    if changes is None:
        changes = recent[node._saved_at] = CHANGES.changes_since(node._saved_at)
    if not changes:
        return
    for value in node._saved:
        if not isinstance(value, np.ndarray) or value.size == 0:
            continue
        low, high = _byte_bounds(value)
        for changed_low, changed_high, description in changes:
            if low < changed_high and changed_low < high:
                shape, dtype, version, by = description
                raise RuntimeError(
                    "%s: one of the arrays saved for backward (shape %s, %s) was modified in place after the "
                    "forward pass saved it: %s changed a tensor of shape %s (%s) that shares its memory, which "
                    "is now at version %d. Backward would use the new values and give a wrong gradient. Call "
                    "backward() before changing it (e.g. before optimizer.step()), or change a copy "
                    "(ag.tensor(t) copies); writes through .data are not tracked, if the change is meant."
                    % (node.function.name or node.function.__name__, value.shape, value.dtype, by, shape,
                       dtype, version))


def _topological_order(roots):
    """Nodes reachable from the root nodes, each after every node whose outputs it
    consumes (producers first: the walk pops consumers off the end), and {leaf tensor:
    the number of edges through which gradient flows to it}.
    (Nodes and tensors are their own keys: both hash by identity, and skipping id()
    saves about 0.1 us per node in this loop.)"""
    order, visited, stack, leaf_uses = [], set(), [(root, False) for root in reversed(roots)], {}
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if node in visited:
            continue
        visited.add(node)
        stack.append((node, True))
        # an input that needs a gradient is a Tensor; others (numbers, arrays, tensors
        # that need none) lead nowhere, and are not even looked at
        for value, needs in zip(node.inputs, node.needs_input_grad):
            if needs:
                parent = value.grad_fn
                if parent is None:  # a leaf: counted, so that its gradient leaves on its last use
                    leaf_uses[value] = leaf_uses.get(value, 0) + 1
                elif parent not in visited:
                    stack.append((parent, False))
    return order, leaf_uses


def _run_hooks(hooks, grad, graph=False):
    for hook in hooks:
        grad = hook.on_tensor(grad) if graph else hook(grad)
    return grad


_state = threading.local()  # .callbacks: one list per backward running in this thread


def queue_callback(callback):
    """Run ``callback()`` once when the backward now running in this thread ends, after
    every leaf has its gradient (as torch's ``Variable._execution_engine.queue_callback``).
    Called from a hook during backward; outside one it is a RuntimeError. Callbacks run
    in the order queued; one may queue another. A backward that raises runs none."""
    frames = getattr(_state, "callbacks", None)
    if not frames:
        raise RuntimeError("queue_callback: no backward is running in this thread; call it from a "
                           "gradient hook during backward()")
    frames[-1].append(callback)


def backward(tensor, grad, retain_graph=False, create_graph=False):
    """Accumulate d(tensor)/d(leaf) * grad into ``.grad`` of every leaf that requires grad,
    then run the callbacks queued during it (:func:`queue_callback`). With create_graph,
    grad is a Tensor and so are the gradients: see :func:`run_backward`."""
    run_backward((tensor,), (grad,), retain_graph, create_graph)


def run_backward(roots, grads, retain_graph=False, create_graph=False, capture=None):
    """Backward from several tensors at once: the gradient of sum(<root, grad>).

    Two modes. Plain (create_graph False): grads and every gradient are numpy arrays and
    each node's ``function.backward`` runs (the fast numpy/C path). Graph mode
    (create_graph True): grads are Tensors, each node's ``function.graph_backward`` runs
    with grad mode on, so the gradients are Tensors recorded in a graph of their own and
    can be differentiated again.

    capture, when given, is a dict whose keys name the tensors whose gradients are
    wanted (``id(leaf)``, or ``(id(node), output_index)`` of a non-leaf): their
    gradients are stored there instead of reaching any ``.grad``, and only the part of
    the graph that leads to them runs (autograd_core.grad)."""
    frames = getattr(_state, "callbacks", None)
    if frames is None:
        frames = _state.callbacks = []
    callbacks = []
    frames.append(callbacks)
    try:
        _backward(roots, grads, retain_graph, create_graph, capture)
    finally:
        frames.pop()
    index = 0
    while index < len(callbacks):  # (a callback may queue another)
        callbacks[index]()
        index += 1


def _deliver_plain(value, g):
    value.accumulate_grad(g)


def _deliver_graph(value, g):
    value.accumulate_graph_grad(g)


def _deliver_captured(capture, graph):
    """The leaf delivery of autograd_core.grad: a wanted leaf's gradient (after its
    gradient hooks) goes to capture, any other leaf gets nothing."""
    def deliver(value, g):
        key = id(value)
        if key in capture:
            g = value.run_grad_hooks(g, graph)
            previous = capture[key]
            capture[key] = g if previous is None else previous + g
    return deliver


def _needed_nodes(order, capture):
    """ids of the nodes whose backward leads to a wanted tensor (order: producers first)."""
    needed = set()
    for node in order:  # producers first: a node's parents are decided before it
        for value, needs in zip(node.inputs, node.needs_input_grad):
            if not needs:
                continue
            parent = value.grad_fn
            if parent is None:
                if id(value) in capture:
                    needed.add(id(node))
                    break
            elif id(parent) in needed or (id(parent), value.output_index) in capture:
                needed.add(id(node))
                break
    return needed


def _backward(roots, grads, retain_graph, create_graph, capture):
    graph = bool(create_graph)
    if capture is not None:
        deliver = _deliver_captured(capture, graph)
    else:
        deliver = _deliver_graph if graph else _deliver_plain
    # pending: the summed gradient of each node output that has one so far, keyed by the
    # node for output 0 (most nodes have one output) and by (node, index) for the others
    pending, nodes = {}, []
    for tensor, grad in zip(roots, grads):
        node = tensor.grad_fn
        if node is None:  # a leaf as a root: its gradient is the seed itself
            deliver(tensor, grad)
            continue
        key = _slot(node, tensor.output_index)
        data = tensor.data
        if type(grad) is np.ndarray and grad.dtype != data.dtype and grad.shape == data.shape:
            # every gradient reaching a node output has the output's dtype (the walk below
            # casts the others, and Function.exact_gradients relies on it)
            if grad.dtype.kind not in "biuf":
                raise RuntimeError("backward: got a gradient of dtype %s for a tensor of dtype %s, expected "
                                   "real (float) values" % (grad.dtype, data.dtype))
            grad = grad.astype(data.dtype)
        previous = pending.get(key)
        pending[key] = grad if previous is None else previous + grad
        nodes.append(node)
    if not nodes:
        return
    # a leaf's gradient is summed over all its consumers first, so that its hooks see
    # the total once (as for non-leaves), not one partial sum per consumer; it is handed
    # over when the last of its counted uses has contributed
    order, leaf_uses = _topological_order(nodes)
    needed = None if capture is None else _needed_nodes(order, capture)
    leaf_grads = {}
    changes = CHANGES
    recent = recent_tick = None  # the cache of _check_saved, valid while the tick stays
    # the common case (plain mode, one output, no hooks) takes the short way below; in the
    # other modes no node has this output count, so they take the general way, at no cost
    short_way = 1 if not graph and capture is None else -1
    with (enable_grad() if graph else no_grad()):
        while order:
            # popped, so that a node whose outputs are gone is referenced only by this
            # loop and dies when the loop moves on (see the release at the end)
            node = order.pop()
            # one test for both rare cases: a freed node's _saved_at is -1, and a node that
            # saved arrays before an in-place change has an older tick than the clock
            if node._saved_at < changes.tick:
                if node.freed:
                    raise RuntimeError(
                        "backward: trying to backward through part of the graph a second time "
                        "(%s's saved values were freed); pass retain_graph=True to the first backward"
                        % node.function.__name__)
                if any(_slot(node, index) in pending for index in range(node.num_outputs)):
                    if recent is None or recent_tick != changes.tick:
                        recent, recent_tick = {}, changes.tick
                    _check_saved(node, recent)  # (a node nothing flows through is skipped below)
            # this loop runs once per node of every backward (an LSTM makes one node per
            # time step): the common case, one output and no hooks, takes the short way
            hooks, retained = node.output_hooks, node.retained_outputs
            if node.num_outputs == short_way and not (hooks or retained):
                g = pending.pop(node, None)
                if g is None:
                    continue  # nothing flows through this node
                function = node.function
                input_grads = function.backward(node, g)
                # a family whose backward returns a gradient per input in its input's shape
                # and dtype (Function.exact_gradients) skips the checks below, ~0.15 us an input
                checked = not function.exact_gradients
            else:
                checked = True
                node_id = id(node)  # (capture and needed name nodes by id)
                grads = [pending.pop(_slot(node, index), None) for index in range(node.num_outputs)]
                for index, g in enumerate(grads):
                    if g is not None and hooks and hooks.get(index):
                        g = grads[index] = _run_hooks(hooks[index], g, graph)
                    if g is not None and retained and index in retained:
                        _deliver_to_retained(retained[index], g, graph)
                    if capture is not None and g is not None and (node_id, index) in capture:
                        previous = capture[(node_id, index)]
                        capture[(node_id, index)] = g if previous is None else previous + g
                missing = [index for index, g in enumerate(grads) if g is None]
                if len(missing) == len(grads) or (needed is not None and node_id not in needed):
                    continue  # nothing flows through this node, or nothing wanted lies below it
                if graph:  # (graph_backward fills the missing outputs' zeros itself)
                    input_grads = node.function.graph_backward(node, grads)
                    _refuse_arrays(node, input_grads)
                else:
                    for index in missing:  # an output nobody used still gets its (zero) gradient
                        grads[index] = _zeros_for(node, index)
                    input_grads = node.function.backward(node, *grads)
            if checked:  # (an exact_gradients family returns its tuple as the rules say)
                if type(input_grads) is not tuple and not isinstance(input_grads, tuple):
                    input_grads = (input_grads,)
                if len(input_grads) != len(node.inputs):
                    raise RuntimeError("%s.backward returned %d gradients, expected %d (one per forward input)"
                                       % (node.function.__name__, len(input_grads), len(node.inputs)))
            for value, needs, g in zip(node.inputs, node.needs_input_grad, input_grads):
                if not needs or g is None:
                    continue
                if type(g) is not np.ndarray:  # (a Tensor in graph mode)
                    g = _as_gradient(node, value, g, graph)
                if checked:
                    data = value.data
                    if g.shape != data.shape:
                        raise RuntimeError("%s.backward returned a gradient of shape %s for an input of shape %s "
                                           "(input %d; a gradient has its input's shape)"
                                           % (node.function.__name__, g.shape, data.shape,
                                              _position(node, value)))
                    if g.dtype is not data.dtype and g.dtype != data.dtype:  # (identity: the fast common case)
                        g = _cast_gradient(node, value, g, data.dtype)
                parent = value.grad_fn
                if parent is None:
                    entry = leaf_grads.get(value)
                    if entry is None:
                        remaining = leaf_uses[value] - 1
                        if not remaining:  # its only use: deliver now (accumulate_grad copies g)
                            deliver(value, g)
                            continue
                        leaf_grads[value] = [value, g, False, remaining]
                        continue
                    if entry[2]:  # a sum this loop made: add into it (no new array per use)
                        np.add(entry[1], g, entry[1])
                    else:  # g may be shared with other inputs (never add into it): a new sum
                        total = entry[1] + g  # (0-d arrays add up to a numpy scalar: not owned)
                        entry[1], entry[2] = total, type(total) is np.ndarray
                    entry[3] -= 1
                    if not entry[3]:  # the last use: the sum is complete
                        del leaf_grads[value]
                        deliver(value, entry[1])
                else:
                    index = value.output_index
                    key = (parent, index) if index else parent  # (_slot written out: once per edge)
                    previous = pending.get(key)
                    # never add in place: a backward may hand the same array to several inputs
                    pending[key] = g if previous is None else previous + g
            # a node still referenced from elsewhere (a tensor kept by the user) drops what
            # only backward needed; one referenced only by `node` here (its outputs are
            # gone, so no later backward can reach it) is freed whole on the next pop,
            # which saves release()'s ~0.2 us on most nodes (2: `node` and the argument)
            if not retain_graph and getrefcount(node) > 2:
                node.release()
        # leaves some of whose uses brought no gradient (a node nothing flowed through,
        # a backward that returned None for them) get theirs at the end, as before
        for leaf, g, _, _ in leaf_grads.values():
            deliver(leaf, g)


def _slot(node, index):
    """The key of output index of node in _backward's pending gradients."""
    return (node, index) if index else node


def _position(node, value):
    """Which of node's inputs value is (for error messages: the loop does not count)."""
    return next(i for i, candidate in enumerate(node.inputs) if candidate is value)


def _refuse_arrays(node, input_grads):
    """(graph mode) An array among graph_backward's results would be a gradient cut off
    from the graph (the loop below lets arrays through unchecked, for plain mode's speed)."""
    for index, g in enumerate(input_grads if isinstance(input_grads, tuple) else (input_grads,)):
        if type(g) is np.ndarray:
            raise RuntimeError("%s.graph_backward returned a numpy array for input %d; with create_graph=True a "
                               "gradient must be a Tensor computed by differentiable ops (an array would "
                               "silently have no derivative)" % (node.function.__name__, index))


def _as_gradient(node, value, g, graph):
    """A backward's result that is not an ndarray: in graph mode it must be a Tensor (an
    array or a number would be a gradient cut off from the graph, whose derivative would
    silently be 0); in plain mode a number, Tensor or list becomes an array."""
    if graph:
        if hasattr(g, "grad_fn"):
            return g
        raise RuntimeError("%s.graph_backward returned %s for input %d; with create_graph=True a gradient must "
                           "be a Tensor computed by differentiable ops (an array would silently have no "
                           "derivative)" % (node.function.__name__, type(g).__name__, _position(node, value)))
    try:
        return np.asarray(g)
    except (TypeError, ValueError) as error:
        raise RuntimeError("%s.backward returned %s for input %d, expected a numpy array (%s)"
                           % (node.function.__name__, type(g).__name__, _position(node, value),
                              error)) from None


def _cast_gradient(node, value, g, dtype):
    """g in the input's dtype: a float, integer or bool gradient is cast (float64 math
    for a float32 input is common); complex or non-numeric values are an error, since
    dropping an imaginary part would be a silently wrong gradient."""
    if g.dtype.kind not in "biuf":
        raise RuntimeError("%s.backward returned a gradient of dtype %s for input %d, of dtype %s: expected "
                           "real (float) values%s" % (node.function.__name__, g.dtype, _position(node, value),
                                                      dtype, " (complex values have no meaning here)"
                                                      if g.dtype.kind == "c" else ""))
    return g.astype(dtype)  # (a Tensor's astype is the differentiable cast)


def _deliver_to_retained(ref, grad, graph=False):
    tensor = ref()
    if tensor is not None:  # retain_grad() on a tensor that no longer exists: nothing to do
        if graph:
            tensor.accumulate_graph_grad(grad)
        else:
            tensor.accumulate_grad(grad)


def _zeros_for(node, index):
    shapes = getattr(node, "output_meta", None)
    if shapes is None:
        raise RuntimeError("%s: an output without gradient needs output_meta" % node.function.__name__)
    shape, dtype = shapes[index]
    return np.zeros(shape, dtype=dtype)
