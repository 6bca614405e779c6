"""autograd_core.grad: gradients of outputs with respect to chosen inputs, returned
instead of accumulated, and differentiable again with create_graph=True (torch's
``torch.autograd.grad``).

The engine does the work (engine.run_backward): with a ``capture`` dict it runs only the
part of the graph that leads to the wanted tensors and stores their gradients there, so
no ``.grad`` changes. With create_graph the backward pass runs every node's
``graph_backward`` (function.Function) with grad mode on, so the gradients it returns
are Tensors with a graph of their own: ``grad`` of a ``grad`` works to any order.
"""
import numpy as np

from . import engine
from .errors import ShapeError
from .tensor import Tensor, gradient_key

__all__ = ["grad"]


def _as_tuple(value, what):
    if isinstance(value, Tensor):
        return (value,), True
    if isinstance(value, (tuple, list)) and all(isinstance(item, Tensor) for item in value):
        return tuple(value), False
    raise TypeError("grad: %s must be a Tensor or a sequence of Tensors, got %s"
                    % (what, type(value).__name__ if not isinstance(value, (tuple, list))
                       else "a sequence holding %s" % ", ".join(sorted({type(v).__name__ for v in value}))))


def _seeds(outputs, grad_outputs, create_graph, op="grad"):
    """The gradient each output starts with: arrays, or Tensors with create_graph (a
    given Tensor is kept as it is, so that its own graph carries on: jvp needs that)."""
    if grad_outputs is None:
        grad_outputs = (None,) * len(outputs)
    elif isinstance(grad_outputs, (Tensor, np.ndarray)) or not isinstance(grad_outputs, (tuple, list)):
        grad_outputs = (grad_outputs,)
    if len(grad_outputs) != len(outputs):
        raise ValueError("%s: got %d grad_outputs for %d outputs; pass one per output (None for a scalar's 1)"
                         % (op, len(grad_outputs), len(outputs)))
    seeds = []
    for index, (output, given) in enumerate(zip(outputs, grad_outputs)):
        if given is None:
            if output.data.size != 1:
                raise RuntimeError("%s: grad_outputs[%d] is None, but outputs[%d] has shape %s; a gradient can "
                                   "be implied only for a one-element output, so pass grad_outputs"
                                   % (op, index, index, output.shape))
            array = np.ones_like(output.data)
            seeds.append(Tensor(array) if create_graph else array)
            continue
        array = given.data if isinstance(given, Tensor) else np.asarray(given)
        if array.shape != output.shape:
            raise ShapeError("%s: grad_outputs[%d] has shape %s, but outputs[%d] has shape %s; each must "
                             "have its output's shape" % (op, index, array.shape, index, output.shape))
        if array.dtype.kind not in "biuf":
            raise TypeError("%s: grad_outputs[%d] has dtype %s, expected real (float) values"
                            % (op, index, array.dtype))
        if create_graph:
            seed = given if isinstance(given, Tensor) else Tensor(array)
            seeds.append(seed if seed.dtype == output.dtype else seed.astype(output.dtype))
        else:
            seeds.append(array.astype(output.dtype, copy=False))
    return seeds


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, allow_unused=None,
         materialize_grads=False):
    """The gradients of sum(<outputs[i], grad_outputs[i]>) with respect to each of inputs,
    as a tuple of Tensors (one per input, in its shape), as torch.autograd.grad.

    outputs, inputs: a Tensor or a sequence of them; every output and input must require
    grad. grad_outputs: one per output (a Tensor or array of its shape; None means 1 for
    a one-element output). Nothing accumulates into any ``.grad``.

    create_graph=True records the backward pass, so the returned gradients can be
    differentiated again (to any order); retain_graph defaults to create_graph. An input
    that the outputs do not depend on is an error unless allow_unused=True, which gives
    None for it (zeros with materialize_grads=True)."""
    outputs, _ = _as_tuple(outputs, "outputs")
    inputs, _ = _as_tuple(inputs, "inputs")
    if allow_unused is None:
        allow_unused = materialize_grads
    for index, output in enumerate(outputs):
        if not output.requires_grad:
            raise RuntimeError("grad: outputs[%d] (shape %s) does not require grad and has no grad_fn: it was "
                               "computed under no_grad or from inputs that need no grad" % (index, output.shape))
    for index, tensor in enumerate(inputs):
        if not tensor.requires_grad:
            raise RuntimeError("grad: inputs[%d] (shape %s) does not require grad; only tensors that require "
                               "grad have a gradient" % (index, tensor.shape))
    seeds = _seeds(outputs, grad_outputs, create_graph)
    if retain_graph is None:
        retain_graph = create_graph
    capture = {gradient_key(tensor): None for tensor in inputs}
    engine.run_backward(outputs, seeds, retain_graph, create_graph, capture)
    results = []
    for index, tensor in enumerate(inputs):
        value = capture[gradient_key(tensor)]
        if value is None:
            if not allow_unused:
                raise RuntimeError("grad: inputs[%d] (shape %s) was not used to compute the outputs, so it has "
                                   "no gradient; pass allow_unused=True to get None for it"
                                   % (index, tensor.shape))
            results.append(Tensor(np.zeros_like(tensor.data)) if materialize_grads else None)
        elif create_graph:
            results.append(value)
        else:
            results.append(Tensor(np.array(value, dtype=tensor.dtype, copy=True)))
    return tuple(results)
