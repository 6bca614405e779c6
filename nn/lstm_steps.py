"""The machinery of nn.LSTM's layers when they run step by step (with lengths: without,
a layer is one node of nn/sequence_layers.py), private to them: not general-purpose ops.
``sequence_weight_grads`` (the weights' gradients over a whole sequence as one GEMM) and
``Workspace`` serve every recurrent layer.

nn.LSTM runs a layer as T steps of autograd_core's fused LSTM step, and makes that
fast with three things that only hold under the layer's own contract:

* ``LayerStep``: the step writing its results into slots (``StepSlots``) of per-layer
  buffers that a ``Workspace`` reuses from call to call;
* ``SequenceSteps``: one node before the steps that hands them their x_gates and, at
  backward, computes the weights' and biases' gradients for the whole sequence in one
  GEMM (instead of T small ones);
* ``StackedSteps``: the layer's output [T, b, h] as the buffer the steps wrote into,
  with no copy.

Second derivatives: this machinery passes the weights to the steps as constants and
gives them their gradient in SequenceSteps from the saved states (arrays), so a
gradient computed through it does not record how it depends on the weights and states.
LayerStep and SequenceSteps are therefore once-differentiable: differentiating such a
gradient raises naming them (nn.LSTM without lengths is one LSTMSequence node, which
differentiates to any order).
"""
import sys
from collections import namedtuple

import numpy as np

from autograd_core import Function
from autograd_core.ops.recurrent import LSTMStep, transposed_product

__all__ = ["LayerStep", "SequenceSteps", "StackedSteps", "StepSlots", "Workspace", "sequence_weight_grads"]


StepSlots = namedtuple("StepSlots", ["h", "c", "saved", "grad_gates", "grad_bias_sum"], defaults=(None,) * 5)
StepSlots.__doc__ = """Where one LSTMStep writes its results: arrays h, c [b, h], saved [b, 5h]
and grad_gates [b, 4h], each C-contiguous, or None for a new array; grad_bias_sum, a
[rows, 4h] accumulator (see kernels.lstm_step_backward) shared by a layer's steps, or None."""



class LayerStep(LSTMStep):
    """LSTMStep as nn.LSTM runs it: (x_gates, h_prev, c_prev, weight_hh, mask,
    weight_hh_t, slots, bias) -> (h, c), where weight_hh_t is W_hh^T made contiguous once
    for all of a layer's steps, slots a StepSlots (parts of the layer's reusable
    buffers) that receive h, c, the saved activations and, at backward, the gates'
    gradient, and bias [4h] = b_ih + b_hh as an array added to the gates (a constant
    here; SequenceSteps gives the biases their gradient). The layer passes weight_hh as
    an array and gets its gradient from SequenceSteps, in one GEMM."""

    name = "nn.LSTM's step (the path with lengths)"
    # LSTMStep's composite would take W_hh as the constant it is here: a gradient whose
    # dependence on the weights is missing. Differentiating it raises instead.
    composite = None
    once_differentiable = ("the weights reach the steps as constants and get their gradient from SequenceSteps's "
                           "saved arrays; nn.LSTM without lengths differentiates to any order")

    @staticmethod
    def forward(ctx, x_gates, h_prev, c_prev, weight_hh, mask, weight_hh_t, slots, bias):
        return LSTMStep.run_forward(ctx, x_gates, h_prev, c_prev, weight_hh, mask, weight_hh_t, slots.h, slots.c,
                                    slots.saved, bias, slots.grad_gates, slots.grad_bias_sum)

    @staticmethod
    def backward(ctx, grad_h, grad_c):
        return LSTMStep.run_backward(ctx, grad_h, grad_c) + (None, None, None)


class SequenceSteps(Function):
    """The steps of one LSTM layer's input projection, and the layer's hidden-to-hidden
    weight gradient in one GEMM.

    forward(projected [T, b, 4h], weight_hh [4h, h], bias_ih [4h] or None, bias_hh [4h]
    or None, states [T, b, h], initial [b, h] or None, grad_buffer [T, b, 4h] or None)
    -> T views projected[t] [b, 4h], the x_gates of each step.

    The biases come in here for the same reason: the steps add them to the gates (in
    the cell, at no extra pass over memory) as a constant, and their gradient is the
    sum of all the steps' grad_gates. grad_bias_sum, when given, is the [rows, 4h]
    accumulator the steps add their column sums into (StepSlots); this node then only
    sums its rows, and zeroes it for a second backward through a retained graph.

    Why the weight is an input here and not of the steps: its gradient is
    sum_t grad_gates_t^T h_{t-1}, and grad_gates_t is exactly the gradient that comes
    back to x_gates_t (gates = x_gates + h W_hh^T). So this node, which receives all of
    them, computes the sum as one [4h, T*b] @ [T*b, h] product; T products of inner size
    b, each summed into the total, took twice as long. The steps then take W_hh as a
    plain array (a constant to them) and the engine still does BPTT step by step.

    This is correct only under the layer's contract: states is the array that step t
    writes h_t into (filled while the steps run, read here at backward), step t's
    h_prev is states[t-1] (initial, or a zero state when None, for t = 0), and the
    views are used by nothing but the steps. Not a general-purpose op.

    grad_buffer, when given, is where the steps write their gates' gradients (see
    StepSlots); the gradients that already lie in their slot are not copied again.

    weight_ih [4h, in] and inputs [T*b, in] (the layer's input, flattened), when given,
    move the input weight's gradient here too (the layer's InputProjection then takes
    W_ih as a constant): both weights' gradients come from one GEMM over grad_gates.
    operand, optional: a [T*b, in + h] array to assemble that GEMM's other factor in."""

    name = "nn.LSTM's weight gradients (the path with lengths)"
    once_differentiable = LayerStep.once_differentiable

    @staticmethod
    def forward(ctx, projected, weight_hh, bias_ih, bias_hh, states, initial, grad_buffer=None, grad_bias_sum=None,
                weight_ih=None, inputs=None, operand=None):
        ctx.states, ctx.initial, ctx.grad_buffer, ctx.grad_bias_sum = states, initial, grad_buffer, grad_bias_sum
        ctx.layer_inputs, ctx.operand = inputs, operand  # (ctx.inputs is the graph's edges)
        if grad_bias_sum is not None:
            grad_bias_sum.fill(0)
        return tuple(projected)

    @staticmethod
    def backward(ctx, *grads):
        grad_gates = ctx.grad_buffer
        if grad_gates is None:
            grad_gates = np.stack(grads)  # [T, b, 4h], contiguous: time-major
        else:
            for slot, grad in zip(grad_gates, grads):
                if not _same_memory(slot, grad):
                    slot[...] = grad
        grad_weight = grad_bias = None
        needs = ctx.needs_input_grad
        if ctx.grad_bias_sum is not None:
            grad_bias = ctx.grad_bias_sum.sum(axis=0)
            ctx.grad_bias_sum.fill(0)
        elif needs[2] or needs[3]:
            grad_bias = grad_gates.reshape(-1, grad_gates.shape[2]).sum(axis=0)
        grad_weight_ih = None
        if len(needs) > 8 and needs[8]:
            grad_weight_ih, grad_weight = _input_and_recurrent_weight_grads(ctx, grad_gates)
            if not needs[1]:
                grad_weight = None
        elif needs[1]:
            steps, batch, width = grad_gates.shape
            hidden = ctx.states.shape[2]
            if steps > 1:
                grad_weight = transposed_product(grad_gates[1:].reshape((steps - 1) * batch, width),
                                                  ctx.states[:-1].reshape((steps - 1) * batch, hidden))
            else:
                grad_weight = np.zeros((width, hidden), dtype=grad_gates.dtype)
            if ctx.initial is not None:
                grad_weight = grad_weight + transposed_product(grad_gates[0], ctx.initial)
        grads = (grad_gates, grad_weight, grad_bias if needs[2] else None, grad_bias if needs[3] else None,
                 None, None, None, None, grad_weight_ih, None, None)
        return grads[:len(needs)]


def _input_and_recurrent_weight_grads(ctx, grad_gates):
    """grad W_ih = sum_t grad_gates_t^T x_t and grad W_hh = sum_t grad_gates_t^T h_{t-1}
    as one GEMM (see sequence_weight_grads)."""
    return sequence_weight_grads(grad_gates, ctx.layer_inputs, ctx.states, ctx.initial, ctx.operand)


def sequence_weight_grads(grad_gates, inputs=None, states=None, initial=None, operand=None, bias=False):
    """The weight (and bias) gradients of a recurrent layer over its whole sequence, as
    one GEMM: grad_gates [T, b, G] (the gradient of every step's pre-activations)
    against [x_t | h_{t-1} | 1] side by side in one [T*b, columns] operand, so that
    grad_gates, the big operand, is read and packed once for every gradient, not once
    per weight. inputs [T*b, in] (the layer's input) or None; states [T, b, h] (every
    step's state; h_{t-1} is states[t-1], initial [b, h] or zeros for t = 0) or None;
    bias: a column of ones, whose product is the bias gradient sum_t,b grad_gates.
    operand, optional: an array [T*b, columns] to assemble in (a layer's reusable
    buffer). Returns the gradients asked for, in that order: [G, in], [G, h], [G]."""
    steps, batch, width = grad_gates.shape
    parts = []
    if inputs is not None:
        parts.append(inputs.shape[1])
    if states is not None:
        parts.append(states.shape[2])
    if bias:
        parts.append(1)
    columns = sum(parts)
    if operand is None or operand.shape != (steps * batch, columns) or operand.dtype != grad_gates.dtype:
        operand = np.empty((steps * batch, columns), dtype=grad_gates.dtype)
    start = 0
    if inputs is not None:
        operand[:, :inputs.shape[1]] = inputs
        start = inputs.shape[1]
    if states is not None:
        hidden = states.shape[2]
        operand[batch:, start:start + hidden] = states[:-1].reshape((steps - 1) * batch, hidden)
        operand[:batch, start:start + hidden] = 0 if initial is None else initial
    if bias:
        operand[:, -1] = 1
    product = transposed_product(grad_gates.reshape(steps * batch, width), operand)  # [G, columns]
    grads, start = [], 0
    for count in parts:
        grads.append(product[:, start:start + count])
        start += count
    if bias:
        grads[-1] = grads[-1][:, 0]
    return grads


def _same_memory(a, b):
    """Whether arrays a and b are the very same elements (same start, shape and strides)."""
    return (a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
            and a.shape == b.shape and a.strides == b.strides and a.dtype == b.dtype)


class StackedSteps(Function):
    """(states [T, b, h], h_0, ..., h_{T-1}) -> states as one Tensor, where each h_t is a
    step's output whose array *is* states[t] (written there by the step): the layer's
    output without copying T arrays into a new one. Backward hands each step its slice."""

    @staticmethod
    def forward(ctx, states, *step_outputs):
        return states

    @staticmethod
    def backward(ctx, grad):
        return (None,) + tuple(grad)

    @staticmethod
    def differentiable_backward(ctx, grad):
        return (None,) + tuple(grad[t] for t in range(grad.shape[0]))


class Workspace:
    """Arrays that a layer reuses from one call to the next.

    ``empty(key, shape, dtype)`` returns the array it gave last time for key when nothing
    else refers to it any more (its graph was released by backward, its outputs
    dropped); otherwise a new one. Reuse matters because fresh memory costs a page fault
    per 4 KiB on first touch: an LSTM layer's saved activations are megabytes a call.
    Copies and pickles of a layer start with an empty workspace."""

    def __init__(self):
        self._arrays = {}

    def empty(self, key, shape, dtype):
        array = self._arrays.get(key)
        # references: the dict, the local name and getrefcount's own argument; any view
        # of the array (a Tensor's data, a saved slice) holds one more through .base
        if array is None or array.shape != shape or array.dtype != dtype or sys.getrefcount(array) > 3:
            array = self._arrays[key] = np.empty(shape, dtype=dtype)
        return array

    def __getstate__(self):
        return {}

    def __setstate__(self, state):
        self._arrays = {}


