"""nn.LSTM's, nn.GRU's and nn.RNN's layers as one graph node each: the whole sequence
forward in one C call, and backward in one more, private to those layers.

A layer's node runs T steps with no Python per step: the input projection of every
step as one GEMM (biases folded in), then ``kernels.rnn.gru_sequence_forward`` or
``rnn_sequence_forward``, which run every step's recurrent GEMM and fused cell in C;
the LSTM's ``lstm_layer_forward`` does the projection inside the steps instead (one
product [x_t | h_{t-1}] @ [W_ih | W_hh]^T a step, biases added in the cell). Each
thread owns a share of the batch rows for all steps: row b of a step depends on row b
of the step before only. Backward runs the
steps in reverse in C likewise, then takes the gradients of the input, of both weights
and of both biases over all steps at once: grad_x as one GEMM (the LSTM's inside its
steps, from the same product as grad h_{t-1}: ``lstm_layer_backward``), the weights and biases
as one GEMM over [x_t | h_{t-1} | 1] (``sequence_weight_grads``, shared with nn.LSTM).
Results go into per-layer buffers that a ``Workspace`` reuses from call to call.

Inputs: (inputs [T*b, in], initial [b, h] or None, weight_ih, weight_hh, bias_ih,
bias_hh (both or neither), steps, workspace, layer) -> (outputs [T, b, h], h_T [b, h]);
the LSTM's take the initial (h0, c0) and give (outputs, h_T, c_T).
Lengths (masks) are not covered: the layers then run their step-by-step path (for the
LSTM, the step nodes of nn/lstm_steps.py).

Higher-order gradients: each layer's ``composite`` runs the same recursion with
autograd_core ops (the input projection, then the steps' composites), used only when a
gradient is to be differentiated (create_graph=True); the first-order path is the C
sequence kernels, unchanged.
"""
import numpy as np

import autograd_core
from autograd_core import Function
from autograd_core.kernels import gemm
from autograd_core.kernels import rnn as rnn_kernels
from autograd_core.ops.recurrent import GRUStep, RNNStep, lstm_cell

from .lstm_steps import sequence_weight_grads

__all__ = ["GRUSequence", "LSTMSequence", "RNNSequence"]


def _project(workspace, layer, inputs, weight_ih, bias, width):
    """inputs [T*b, in] @ weight_ih^T + bias -> [T*b, width], into the layer's buffer."""
    out = workspace.empty((layer, "projected"), (inputs.shape[0], width), inputs.dtype)
    return rnn_kernels.projection_forward(inputs, weight_ih, bias, out)


def _remember(ctx, inputs, initial, weight_ih, weight_hh, outputs, workspace, layer, has_bias):
    # the arrays backward reads that a user or optimizer could change in place: saved
    # so that backward checks them (an optimizer.step() between forward and backward raises)
    ctx.save_for_backward(inputs, weight_ih, weight_hh)
    ctx.layer_inputs, ctx.initial, ctx.weight_ih, ctx.weight_hh = inputs, initial, weight_ih, weight_hh
    ctx.outputs, ctx.workspace, ctx.layer, ctx.has_bias = outputs, workspace, layer, has_bias


def _weight_and_bias_grads(ctx, grad_gates, needed):
    """grad W_ih, grad W_hh and the gradient of both biases (None without biases) from
    the pre-activations' gradient grad_gates [T, b, G], as one GEMM (the LSTM and the
    Elman RNN, whose biases both join the input projection); needed: whether any of
    them is."""
    if not needed:
        return None, None, None
    inputs, outputs = ctx.layer_inputs, ctx.outputs
    operand = ctx.workspace.empty((ctx.layer, "operand"),
                                  (inputs.shape[0], inputs.shape[1] + outputs.shape[2] + ctx.has_bias),
                                  outputs.dtype)
    grads = sequence_weight_grads(grad_gates, inputs, outputs, ctx.initial, operand, ctx.has_bias)
    return grads[0], grads[1], grads[2] if ctx.has_bias else None


def _graph_projection(inputs, weight_ih, steps, *biases):
    """inputs [T*b, in] @ W_ih^T + the biases, as [T, b, G] Tensors (the composites')."""
    projected = inputs @ weight_ih.T
    for bias in biases:
        if bias is not None:
            projected = projected + bias
    return projected.reshape(steps, inputs.shape[0] // steps, projected.shape[1])


def _input_grad(ctx, grad_gates):
    """grad inputs [T*b, in] = grad_gates [T, b, G] @ W_ih, one GEMM over all steps."""
    if not ctx.needs_input_grad[0]:
        return None
    return gemm(grad_gates.reshape(-1, grad_gates.shape[2]), ctx.weight_ih)


class GRUSequence(Function):
    """A whole GRU layer (gates r, z, n; reset applied after the hidden matmul, so b_hh
    stays inside the steps while b_ih joins the input projection). See the module
    docstring for the inputs."""

    @staticmethod
    def forward(ctx, inputs, initial, weight_ih, weight_hh, bias_ih, bias_hh, steps, workspace, layer):
        hidden, dtype = weight_hh.shape[1], inputs.dtype
        batch = inputs.shape[0] // steps
        x_gates = _project(workspace, layer, inputs, weight_ih, bias_ih, 3 * hidden)
        outputs, saved = rnn_kernels.gru_sequence_forward(
            x_gates.reshape(steps, batch, 3 * hidden), initial, np.ascontiguousarray(weight_hh.T), bias_hh,
            workspace.empty((layer, "h"), (steps, batch, hidden), dtype),
            workspace.empty((layer, "saved"), (steps, batch, 4 * hidden), dtype))
        _remember(ctx, inputs, initial, weight_ih, weight_hh, outputs, workspace, layer, bias_hh is not None)
        ctx.saved = saved
        return outputs, outputs[-1].copy()

    @staticmethod
    def backward(ctx, grad_outputs, grad_final):
        workspace, layer, outputs = ctx.workspace, ctx.layer, ctx.outputs
        shape, dtype = (outputs.shape[0], outputs.shape[1], 3 * outputs.shape[2]), outputs.dtype
        grad_gi, grad_gh, grad_initial = rnn_kernels.gru_sequence_backward(
            ctx.saved, outputs, ctx.initial, grad_outputs, grad_final, ctx.weight_hh,
            workspace.empty((layer, "grad_gi"), shape, dtype), workspace.empty((layer, "grad_gh"), shape, dtype),
            needs_grad_h0=ctx.needs_input_grad[1])
        needs = ctx.needs_input_grad
        grad_weight_ih = grad_weight_hh = grad_bias_ih = grad_bias_hh = None
        if needs[2] or needs[4]:
            grads = sequence_weight_grads(grad_gi, inputs=ctx.layer_inputs, bias=ctx.has_bias,
                                          operand=workspace.empty((layer, "operand_ih"),
                                                                  (ctx.layer_inputs.shape[0],
                                                                   ctx.layer_inputs.shape[1] + ctx.has_bias),
                                                                  dtype))
            grad_weight_ih, grad_bias_ih = grads[0], grads[1] if ctx.has_bias else None
        if needs[3] or needs[5]:
            grads = sequence_weight_grads(grad_gh, states=outputs, initial=ctx.initial, bias=ctx.has_bias,
                                          operand=workspace.empty((layer, "operand_hh"),
                                                                  (ctx.layer_inputs.shape[0],
                                                                   outputs.shape[2] + ctx.has_bias), dtype))
            grad_weight_hh, grad_bias_hh = grads[0], grads[1] if ctx.has_bias else None
        return (_input_grad(ctx, grad_gi), grad_initial, grad_weight_ih, grad_weight_hh, grad_bias_ih, grad_bias_hh,
                None, None, None)

    @staticmethod
    def composite(inputs, initial, weight_ih, weight_hh, bias_ih, bias_hh, steps, workspace, layer):
        """The layer with ops (for create_graph): GRUStep's composite at each step."""
        projected = _graph_projection(inputs, weight_ih, steps, bias_ih)
        h, outputs = initial, []
        for t in range(steps):
            h = GRUStep.composite(projected[t], h, weight_hh, bias_hh, None)
            outputs.append(h)
        return autograd_core.stack(outputs, 0), h


class LSTMSequence(Function):
    """A whole LSTM layer (gates i, f, g, o); both biases join the input projection.
    Inputs as in the module docstring, with the initial state as h0, c0 (each [b, h] or
    None); gives (outputs [T, b, h], h_T, c_T)."""

    @staticmethod
    def forward(ctx, inputs, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh, steps, workspace, layer):
        hidden, dtype = weight_hh.shape[1], inputs.dtype
        batch = inputs.shape[0] // steps
        bias = None if bias_ih is None else bias_ih + bias_hh  # [4h] once, not a pass over [T*b, 4h]
        # the input projection runs inside the steps, one product [x_t | h_{t-1}] @
        # [W_ih | W_hh]^T each: its [T*b, 4h] result never goes through memory
        width = inputs.shape[1]
        weight_t = workspace.empty((layer, "weight_t"), (width + hidden, 4 * hidden), dtype)
        weight_t[:width] = weight_ih.T
        weight_t[width:] = weight_hh.T
        outputs, cells, saved = rnn_kernels.lstm_layer_forward(
            inputs.reshape(steps, batch, width), h0, c0, weight_t, bias,
            workspace.empty((layer, "h"), (steps, batch, hidden), dtype),
            workspace.empty((layer, "c"), (steps, batch, hidden), dtype),
            workspace.empty((layer, "saved"), (steps, batch, 5 * hidden), dtype))
        _remember(ctx, inputs, h0, weight_ih, weight_hh, outputs, workspace, layer, bias is not None)
        ctx.cells, ctx.c0, ctx.saved, ctx.weight_t = cells, c0, saved, weight_t
        return outputs, outputs[-1].copy(), cells[-1].copy()

    @staticmethod
    def backward(ctx, grad_outputs, grad_h, grad_c):
        needs = ctx.needs_input_grad
        workspace, layer, outputs, inputs = ctx.workspace, ctx.layer, ctx.outputs, ctx.layer_inputs
        needs_bias = ctx.has_bias and (needs[5] or needs[6])
        if needs[3] or needs[4]:
            # every gradient in one C call: the steps write grad_gates straight into the
            # packed operand of the weights' product, whose packing pass (and the
            # [T*b, in + h] operand assembled here) it replaced
            steps, batch, hidden = outputs.shape
            size = rnn_kernels.lstm_layer_scratch_size(steps, batch, hidden, inputs.shape[1], outputs.dtype)
            grad_inputs, grad_h0, grad_c0, grad_bias, grad_weight_ih, grad_weight_hh = rnn_kernels.lstm_layer_gradients(
                ctx.saved, ctx.cells, outputs, inputs.reshape(steps, batch, inputs.shape[1]), ctx.initial, ctx.c0,
                grad_outputs, grad_h, grad_c, ctx.weight_t,
                # reused buffers: fresh memory costs a page fault per 4 KiB on first touch
                grad_inputs_out=workspace.empty((layer, "grad_inputs"), (steps, batch, inputs.shape[1]), outputs.dtype)
                if needs[0] else None,
                scratch=workspace.empty((layer, "weight_scratch"), (size,), outputs.dtype),
                needs_grad_inputs=needs[0], needs_grad_h0=needs[1], needs_grad_c0=needs[2],
                needs_grad_bias=needs_bias, needs_grad_weight_ih=needs[3], needs_grad_weight_hh=needs[4])
            return (None if grad_inputs is None else grad_inputs.reshape(inputs.shape), grad_h0, grad_c0,
                    grad_weight_ih, grad_weight_hh, grad_bias, grad_bias, None, None, None)
        # the input's gradient comes from each step's product with [W_ih | W_hh], the
        # biases' from the steps too
        _, grad_inputs, grad_h0, grad_c0, grad_bias = rnn_kernels.lstm_layer_backward(
            ctx.saved, ctx.cells, ctx.initial, ctx.c0, grad_outputs, grad_h, grad_c, ctx.weight_t,
            workspace.empty((layer, "grad_gates"), ctx.saved.shape[:2] + (4 * outputs.shape[2],), outputs.dtype),
            needs_grad_inputs=needs[0], needs_grad_h0=needs[1], needs_grad_c0=needs[2],
            needs_grad_bias=needs_bias)
        return (None if grad_inputs is None else grad_inputs.reshape(inputs.shape), grad_h0, grad_c0,
                None, None, grad_bias, grad_bias, None, None, None)

    @staticmethod
    def composite(inputs, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh, steps, workspace, layer):
        """The layer with ops (for create_graph): lstm_cell at each step."""
        projected = _graph_projection(inputs, weight_ih, steps, bias_ih, bias_hh)
        h, c, outputs = h0, c0, []
        for t in range(steps):
            h, c = lstm_cell(projected[t], h, c, weight_hh)
            outputs.append(h)
        return autograd_core.stack(outputs, 0), h, c


class RNNSequence(Function):
    """A whole Elman RNN layer, h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh),
    act tanh or relu; both biases join the input projection. Inputs as in the module
    docstring, with the nonlinearity ('tanh' or 'relu') after the layer."""

    @staticmethod
    def forward(ctx, inputs, initial, weight_ih, weight_hh, bias_ih, bias_hh, steps, workspace, layer,
                nonlinearity):
        hidden, dtype = weight_hh.shape[1], inputs.dtype
        batch = inputs.shape[0] // steps
        bias = None if bias_ih is None else bias_ih + bias_hh  # [h] once, not a pass over [T*b, h]
        x_gates = _project(workspace, layer, inputs, weight_ih, bias, hidden)
        outputs = rnn_kernels.rnn_sequence_forward(
            x_gates.reshape(steps, batch, hidden), initial, np.ascontiguousarray(weight_hh.T), nonlinearity,
            workspace.empty((layer, "h"), (steps, batch, hidden), dtype))
        _remember(ctx, inputs, initial, weight_ih, weight_hh, outputs, workspace, layer, bias is not None)
        ctx.nonlinearity = nonlinearity
        return outputs, outputs[-1].copy()

    @staticmethod
    def backward(ctx, grad_outputs, grad_final):
        outputs, needs = ctx.outputs, ctx.needs_input_grad
        grad_pre, grad_initial = rnn_kernels.rnn_sequence_backward(
            outputs, grad_outputs, grad_final, ctx.weight_hh, ctx.nonlinearity,
            ctx.workspace.empty((ctx.layer, "grad_pre"), outputs.shape, outputs.dtype),
            needs_grad_h0=ctx.initial is not None and needs[1])
        grad_weight_ih, grad_weight_hh, grad_bias = _weight_and_bias_grads(ctx, grad_pre, any(needs[2:6]))
        return (_input_grad(ctx, grad_pre), grad_initial, grad_weight_ih, grad_weight_hh, grad_bias, grad_bias,
                None, None, None, None)

    @staticmethod
    def composite(inputs, initial, weight_ih, weight_hh, bias_ih, bias_hh, steps, workspace, layer, nonlinearity):
        """The layer with ops (for create_graph): RNNStep's composite at each step."""
        projected = _graph_projection(inputs, weight_ih, steps, bias_ih, bias_hh)
        h, outputs = initial, []
        for t in range(steps):
            h = RNNStep.composite(projected[t], h, weight_hh, nonlinearity, None)
            outputs.append(h)
        return autograd_core.stack(outputs, 0), h
