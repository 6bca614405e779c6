"""Recurrent layers: RNNCell, LSTMCell, GRUCell, the multi-layer RNN, LSTM and GRU over
batch-first sequences, and Embedding.

Parameters have PyTorch's names, shapes and gate order, so a state dict copies between
``nn.LSTM`` here and ``torch.nn.LSTM`` (and likewise for RNN and GRU):

=========================  =================================  ================================
name                       shape                              holds
=========================  =================================  ================================
``weight_ih_l{k}``         ``[gates * hidden, input]``        input-to-hidden, gates stacked
``weight_hh_l{k}``         ``[gates * hidden, hidden]``       hidden-to-hidden
``bias_ih_l{k}``           ``[gates * hidden]``
``bias_hh_l{k}``           ``[gates * hidden]``
=========================  =================================  ================================

Layer 0's input size is ``input_size``; layer k > 0 reads layer k-1's outputs (``hidden``).
The cells use the same names without the ``_l{k}`` suffix.

Equations (x the step's input, h and c the previous state, W and b as above, rows of
each gate's block taken in the order given):

* RNN (1 gate): ``h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)`` (or relu).
* LSTM (4 gates, order i, f, g, o: input, forget, candidate c~, output)::

      i = sigmoid(x W_ii^T + b_ii + h W_hi^T + b_hi)
      f = sigmoid(x W_if^T + b_if + h W_hf^T + b_hf)
      g = tanh   (x W_ig^T + b_ig + h W_hg^T + b_hg)      # the candidate c~
      o = sigmoid(x W_io^T + b_io + h W_ho^T + b_ho)
      c' = f * c + i * g                                  # forget some, add some
      h' = o * tanh(c')

* GRU (3 gates, order r, z, n: reset, update, new; the reset gate multiplies the
  hidden matmul *including its bias*, as in PyTorch)::

      r = sigmoid(x W_ir^T + b_ir + h W_hr^T + b_hr)
      z = sigmoid(x W_iz^T + b_iz + h W_hz^T + b_hz)
      n = tanh   (x W_in^T + b_in + r * (h W_hn^T + b_hn))
      h' = (1 - z) * n + z * h

How it runs: layers work time-major (``[time, batch, features]``, so that each step's
slice is contiguous). Without ``lengths``, each layer of LSTM, GRU and RNN is one graph
node (``nn/sequence_layers.py``): the input projection of all T steps is one GEMM
(``[time*batch, input] @ W_ih^T``), then one C call runs every step's ``h W_hh^T`` and
fused gate math (each thread owning a share of the batch rows for all steps), and one
more runs them backwards; the weights' and biases' gradients, sums over all steps, are
one GEMM per layer. With ``lengths`` (per-step masks), layers run step by step: one
fused node per step (``autograd_core.ops.recurrent``; for the LSTM, the reusable-buffer
steps of ``nn/lstm_steps.py``), and backpropagation through time is the ordinary
engine walking those nodes backwards.
For truncated BPTT, pass the returned state back in after ``detach()`` (see
:func:`detach_state`).
"""
import math

import numpy as np

import autograd_core
from autograd_core import Function, Tensor
from autograd_core.ops.recurrent import (GRUStep, InputProjection, RNNStep, gru_step, input_projection, lstm_step,
                                         rnn_step, unbind)

from .lstm_steps import LayerStep, SequenceSteps, StackedSteps, StepSlots, Workspace
from .sequence_layers import GRUSequence, LSTMSequence, RNNSequence

from . import functional as F
from . import init
from ._checks import positive_int as _positive_int
from .module import Module, Parameter

__all__ = ["RNNCell", "LSTMCell", "GRUCell", "RNN", "LSTM", "GRU", "Embedding", "detach_state"]

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def _as_tensor(layer, name, value):
    if isinstance(value, Tensor):
        return value
    if isinstance(value, np.ndarray):
        return Tensor(value)
    raise TypeError("%s: %s must be a Tensor, got %s" % (layer, name, type(value).__name__))


def _project(x2d, weight_ih, bias_ih=None, bias_hh=None):
    """x2d [n, in] @ weight_ih^T (+ biases): the input part of every gate in one GEMM."""
    return input_projection(x2d, weight_ih, bias_ih, bias_hh)


def detach_state(state):
    """The state with every tensor detached from the graph (h, or a tuple such as (h, c)).

    Truncated BPTT: run a chunk, backward, then feed ``detach_state(state)`` into the next
    chunk, so that the next backward stops at the chunk boundary."""
    if state is None:
        return None
    if isinstance(state, (tuple, list)):
        return type(state)(detach_state(s) for s in state)
    return state.detach()


def _lengths_masks(layer, lengths, batch, steps, dtype):
    """Per-step masks [batch, 1] (None where every sequence is still running) and the
    [batch, time, 1] mask of valid outputs, from the sequence lengths."""
    lengths = np.asarray(lengths.data if isinstance(lengths, Tensor) else lengths)
    if lengths.shape != (batch,) or lengths.dtype.kind not in "iu":
        raise ValueError("%s: lengths must be [batch] = [%d] ints, got %s of dtype %s"
                         % (layer, batch, lengths.shape, lengths.dtype))
    if batch and (lengths.min() < 0 or lengths.max() > steps):
        raise ValueError("%s: lengths must lie in [0, %d] (the time steps), got min %d, max %d"
                         % (layer, steps, lengths.min(), lengths.max()))
    valid = (np.arange(steps)[None, :] < lengths[:, None]).astype(dtype)  # [batch, time]
    masks = [None if valid[:, t].all() else valid[:, t:t + 1] for t in range(steps)]
    return masks, valid[:, :, None]


class _CellBase(Module):
    """Parameters and checks shared by the single-step cells."""

    _mode = None

    def __init__(self, input_size, hidden_size, bias=True, dtype=np.float32):
        super().__init__()
        name = type(self).__name__
        self.input_size = _positive_int(name, "input_size", input_size)
        self.hidden_size = _positive_int(name, "hidden_size", hidden_size)
        gates = _GATES[self._mode] * self.hidden_size
        self.weight_ih = Parameter(np.empty((gates, self.input_size), dtype=dtype))
        self.weight_hh = Parameter(np.empty((gates, self.hidden_size), dtype=dtype))
        if bias:
            self.bias_ih = Parameter(np.empty(gates, dtype=dtype))
            self.bias_hh = Parameter(np.empty(gates, dtype=dtype))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self):
        """PyTorch's initialisation: every weight and bias uniform in +-1/sqrt(hidden)."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for param in self.parameters():
            init.uniform_(param, -bound, bound)

    def _check(self, input, hx):
        name = type(self).__name__
        input = _as_tensor(name, "input", input)
        if input.ndim != 2 or input.shape[1] != self.input_size:
            raise ValueError("%s: expected input [batch, %d], got shape %s"
                             % (name, self.input_size, input.shape))
        if input.dtype != self.weight_ih.dtype:
            raise TypeError("%s: got input of dtype %s, parameters are %s"
                            % (name, input.dtype, self.weight_ih.dtype))
        expected = (input.shape[0], self.hidden_size)
        states = () if hx is None else (hx if isinstance(hx, (tuple, list)) else (hx,))
        for state in states:
            if not isinstance(state, Tensor) or state.shape != expected or state.dtype != input.dtype:
                raise ValueError("%s: expected state of shape %s and dtype %s, got %s" % (
                    name, expected, input.dtype,
                    (state.shape, state.dtype) if isinstance(state, Tensor) else type(state).__name__))
        return input

    def extra_repr(self):
        return "%d, %d%s" % (self.input_size, self.hidden_size, "" if self.bias_ih is not None else ", bias=False")


class RNNCell(_CellBase):
    """One step of an Elman RNN: h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh) (or relu).

    forward(input [batch, input_size], hx [batch, hidden] or None (zeros)) -> h' [batch, hidden].
    """

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", dtype=np.float32):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError("RNNCell: nonlinearity must be 'tanh' or 'relu', got %r" % (nonlinearity,))
        self._mode = "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"
        super().__init__(input_size, hidden_size, bias, dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input, hx=None):
        input = self._check(input, hx)
        return rnn_step(_project(input, self.weight_ih, self.bias_ih, self.bias_hh), hx, self.weight_hh,
                        self.nonlinearity)

    def extra_repr(self):
        return super().extra_repr() + (", nonlinearity='relu'" if self.nonlinearity == "relu" else "")


class LSTMCell(_CellBase):
    """One LSTM step (gates i, f, g, o; c' = f*c + i*g, h' = o*tanh(c'); see the module
    docstring). forward(input [batch, input_size], hx (h, c) each [batch, hidden] or None)
    -> (h', c')."""

    _mode = "LSTM"

    def forward(self, input, hx=None):
        input = self._check(input, hx)
        if hx is None:
            hx = (None, None)  # a zero state: the step skips the recurrent matmul
        return lstm_step(_project(input, self.weight_ih, self.bias_ih, self.bias_hh), hx[0], hx[1], self.weight_hh)


class GRUCell(_CellBase):
    """One GRU step (gates r, z, n, reset applied after the hidden matmul; see the module
    docstring). forward(input [batch, input_size], hx [batch, hidden] or None) -> h'."""

    _mode = "GRU"

    def forward(self, input, hx=None):
        input = self._check(input, hx)
        return gru_step(_project(input, self.weight_ih, self.bias_ih), hx, self.weight_hh, self.bias_hh)


class _RNNBase(Module):
    """A stack of ``num_layers`` recurrent layers over batch-first sequences."""

    _mode = None

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=True,
                 dropout=0.0, bidirectional=False, dtype=np.float32, proj_size=0):
        super().__init__()
        name = type(self).__name__
        self.input_size = _positive_int(name, "input_size", input_size)
        self.hidden_size = _positive_int(name, "hidden_size", hidden_size)
        self.num_layers = _positive_int(name, "num_layers", num_layers)
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
            raise ValueError("%s: dropout must be a probability in [0, 1), got %r" % (name, dropout))
        self.bias = bool(bias)
        self.batch_first = bool(batch_first)
        self.dropout = float(dropout)
        self.bidirectional = bool(bidirectional)
        self._directions = 2 if self.bidirectional else 1
        if isinstance(proj_size, bool) or not isinstance(proj_size, (int, np.integer)) or proj_size < 0:
            raise ValueError("%s: proj_size must be a non-negative int, got %r" % (name, proj_size))
        if proj_size and (self._mode != "LSTM" or proj_size >= self.hidden_size):
            raise ValueError("%s: proj_size must be 0%s, got %r" % (
                name, " or smaller than hidden_size (%d)" % self.hidden_size if self._mode == "LSTM" else
                " (only LSTM projects its hidden state)", proj_size))
        self.proj_size = int(proj_size)
        output_size = self.proj_size or self.hidden_size  # the h that steps and layers pass on
        gates = _GATES[self._mode] * self.hidden_size
        # torch's names and order: per layer, per direction (suffix _reverse), w_ih, w_hh,
        # b_ih, b_hh, then LSTM's projection w_hr
        for layer in range(self.num_layers):
            width = self.input_size if layer == 0 else output_size * self._directions
            for suffix in ("", "_reverse")[:self._directions]:
                key = "l%d%s" % (layer, suffix)
                setattr(self, "weight_ih_" + key, Parameter(np.empty((gates, width), dtype=dtype)))
                setattr(self, "weight_hh_" + key, Parameter(np.empty((gates, output_size), dtype=dtype)))
                if self.bias:
                    setattr(self, "bias_ih_" + key, Parameter(np.empty(gates, dtype=dtype)))
                    setattr(self, "bias_hh_" + key, Parameter(np.empty(gates, dtype=dtype)))
                if self.proj_size:
                    setattr(self, "weight_hr_" + key, Parameter(np.empty((self.proj_size, self.hidden_size),
                                                                         dtype=dtype)))
        self.reset_parameters()

    def reset_parameters(self):
        """PyTorch's initialisation: every weight and bias uniform in +-1/sqrt(hidden)."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for param in self.parameters():
            init.uniform_(param, -bound, bound)

    def _layer_params(self, layer):
        weight_ih = getattr(self, "weight_ih_l%d" % layer)
        weight_hh = getattr(self, "weight_hh_l%d" % layer)
        if not self.bias:
            return weight_ih, weight_hh, None, None
        return weight_ih, weight_hh, getattr(self, "bias_ih_l%d" % layer), getattr(self, "bias_hh_l%d" % layer)

    def _check_input(self, input):
        """The checked input, time-major [time, batch, features]: each step's slice is then
        contiguous, and so are the per-step gradients the backward stacks."""
        name = type(self).__name__
        input = _as_tensor(name, "input", input)
        if input.ndim != 3 or input.shape[2] != self.input_size or input.shape[1 if self.batch_first else 0] < 1:
            raise ValueError("%s: expected input [batch, time >= 1, %d]%s, got shape %s" % (
                name, self.input_size, "" if self.batch_first else " (time first: batch_first=False)",
                input.shape))
        if input.dtype != self.weight_ih_l0.dtype:
            raise TypeError("%s: got input of dtype %s, parameters are %s"
                            % (name, input.dtype, self.weight_ih_l0.dtype))
        return autograd_core.transpose(input, 0, 1) if self.batch_first else input

    def _initial(self, hx, batch, dtype, what):
        """Per-layer initial states [batch, hidden] from hx [num_layers, batch, hidden]
        (per layer and direction, [num_layers * 2, batch, ...], when bidirectional; an
        LSTM's h [.., proj_size] with a projection)."""
        expected = (self.num_layers * self._directions, batch,
                    self.proj_size if self.proj_size and what == "h" else self.hidden_size)
        if hx is None:
            return [None] * expected[0]  # a zero state: the first step skips its matmul
        if not isinstance(hx, Tensor) or hx.shape != expected or hx.dtype != dtype:
            raise ValueError("%s: expected initial %s of shape %s and dtype %s, got %s" % (
                type(self).__name__, what, expected, dtype,
                (hx.shape, hx.dtype) if isinstance(hx, Tensor) else type(hx).__name__))
        return list(unbind(hx, 0))

    def forward(self, input, hx=None, lengths=None):
        """Run the stack over a sequence.

        input: [batch, time, input_size] (``[time, batch, ...]`` when batch_first=False).
        hx: the initial state, ``[num_layers, batch, hidden]`` (for LSTM a tuple (h0, c0)
        of those), or None for zeros.
        lengths: optional ints [batch]; step t of sequence b runs only when t < lengths[b].
        Past its end a sequence's state stays as it was and its outputs are zero, so
        padding neither changes the final state nor reaches a loss.

        Returns (outputs [batch, time, hidden] from the last layer, state): state is h_n
        [num_layers, batch, hidden], or (h_n, c_n) for LSTM, each layer's state after its
        sequence's last step. With batch_first, outputs is a transposed view of a
        time-major array (as in PyTorch), not a contiguous one.
        """
        input = self._check_input(input)  # time-major from here on
        steps, batch = input.shape[0], input.shape[1]
        masks, valid = ([None] * steps, None) if lengths is None else \
            _lengths_masks(type(self).__name__, lengths, batch, steps, input.dtype)
        states = self._initial_states(hx, batch, input.dtype)
        if self._directions == 2 or self.proj_size:
            return self._forward_general(input, states, masks, valid, lengths)
        layer_input = input
        finals = []
        for layer in range(self.num_layers):
            if layer > 0 and self.dropout and self.training:
                layer_input = F.dropout(layer_input, self.dropout, training=True)
            weight_ih, weight_hh, bias_ih, bias_hh = self._layer_params(layer)
            width = layer_input.shape[2]
            flat = layer_input.reshape(steps * batch, width)
            if valid is None and batch and self._sequence is not None:
                # the whole layer as one node (nn/sequence_layers.py); not with lengths
                initial = states[layer] if isinstance(states[layer], tuple) else (states[layer],)
                layer_input, *final = self._sequence.apply(flat, *initial, weight_ih, weight_hh, bias_ih, bias_hh,
                                                           steps, self._workspace(), layer, *self._sequence_options)
                finals.append(tuple(final) if len(final) > 1 else final[0])
                continue
            projected = self._project_layer(layer, flat, weight_ih, bias_ih, bias_hh)
            layer_input, final = self._run_layer(layer, projected.reshape(steps, batch, projected.shape[1]),
                                                 states[layer], weight_hh, bias_ih, bias_hh, masks, weight_ih, flat)
            finals.append(final)
        outputs = layer_input if valid is None else layer_input * Tensor(np.ascontiguousarray(valid.transpose(1, 0, 2)))
        if self.batch_first:
            outputs = autograd_core.transpose(outputs, 0, 1)
        return outputs, self._final_state(finals)

    def _forward_general(self, input, states, masks, valid, lengths):
        """forward with two directions or a projection (the plain stack stays in forward,
        its fast path untouched). The reverse direction runs the same layer code over
        each sequence reversed within its length (so padding stays at the end, as
        torch's packed sequences), and its outputs are reversed back; the next layer
        reads both directions' outputs side by side [.., 2 * hidden]."""
        steps, batch = input.shape[0], input.shape[1]
        reverse = None
        if self._directions == 2:
            ends = np.full(batch, steps) if lengths is None else \
                np.asarray(lengths.data if isinstance(lengths, Tensor) else lengths)
            time = np.arange(steps)[:, None]
            # row t of sequence b comes from ends[b] - 1 - t while t < ends[b]: a
            # permutation of each column that is its own inverse
            reverse = (np.where(time < ends[None, :], ends[None, :] - 1 - time, time), np.arange(batch)[None, :])
        layer_input, finals = input, []
        for layer in range(self.num_layers):
            if layer > 0 and self.dropout and self.training:
                layer_input = F.dropout(layer_input, self.dropout, training=True)
            outputs = []
            for direction in range(self._directions):
                suffix = "_reverse" if direction else ""
                state = states[layer * self._directions + direction]
                source = layer_input[reverse] if direction else layer_input
                out, final = self._run_direction((layer, suffix) if direction else layer, source, suffix,
                                                 layer, state, masks, valid)
                outputs.append(out[reverse] if direction else out)
                finals.append(final)
            layer_input = outputs[0] if len(outputs) == 1 else autograd_core.cat(outputs, 2)
        outputs = layer_input if valid is None else layer_input * Tensor(np.ascontiguousarray(valid.transpose(1, 0, 2)))
        if self.batch_first:
            outputs = autograd_core.transpose(outputs, 0, 1)
        return outputs, self._final_state(finals)

    def _run_direction(self, key, layer_input, suffix, layer, state, masks, valid):
        """One direction of one layer over time-major layer_input [T, b, width] ->
        (outputs [T, b, hidden], final state); key names its reusable buffers."""
        params = [getattr(self, "%s_l%d%s" % (name, layer, suffix), None)
                  for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
        weight_ih, weight_hh, bias_ih, bias_hh = params
        steps, batch, width = layer_input.shape
        flat = layer_input.reshape(steps * batch, width)
        if self.proj_size:
            return self._run_projected(flat.reshape(steps, batch, width), state, params,
                                       getattr(self, "weight_hr_l%d%s" % (layer, suffix)), masks)
        if valid is None and batch and self._sequence is not None:
            initial = state if isinstance(state, tuple) else (state,)
            out, *final = self._sequence.apply(flat, *initial, weight_ih, weight_hh, bias_ih, bias_hh,
                                               steps, self._workspace(), key, *self._sequence_options)
            return out, tuple(final) if len(final) > 1 else final[0]
        projected = self._project_layer(key, flat, weight_ih, bias_ih, bias_hh)
        return self._run_layer(key, projected.reshape(steps, batch, projected.shape[1]), state, weight_hh,
                               bias_ih, bias_hh, masks, weight_ih, flat)

    # The three modes differ only in these hooks. _sequence: the Function that runs a
    # whole layer as one node (None: step by step), with _sequence_options after its inputs.
    _sequence = None
    _sequence_options = ()

    def _workspace(self):
        workspace = self.__dict__.get("_reusable")
        if workspace is None:
            workspace = self._reusable = Workspace()
        return workspace

    def _initial_states(self, hx, batch, dtype):
        return self._initial(hx, batch, dtype, "h")

    def _project_layer(self, layer, flat, weight_ih, bias_ih, bias_hh):
        return _project(flat, weight_ih, bias_ih, bias_hh)

    def _final_state(self, finals):
        return autograd_core.stack(finals, axis=0)

    def extra_repr(self):
        text = "%d, %d" % (self.input_size, self.hidden_size)
        if self.num_layers != 1:
            text += ", num_layers=%d" % self.num_layers
        if not self.bias:
            text += ", bias=False"
        if not self.batch_first:
            text += ", batch_first=False"
        if self.dropout:
            text += ", dropout=%g" % self.dropout
        if self.bidirectional:
            text += ", bidirectional=True"
        if self.proj_size:
            text += ", proj_size=%d" % self.proj_size
        return text


class RNN(_RNNBase):
    """Multi-layer Elman RNN: h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh) (or relu).

    ``RNN(input_size, hidden_size, num_layers=1, nonlinearity='tanh', bias=True,
    batch_first=True, dropout=0.0)``; ``forward(input [batch, time, input_size], hx
    [num_layers, batch, hidden] or None, lengths=None) -> (outputs [batch, time, hidden],
    h_n [num_layers, batch, hidden])``. See :meth:`_RNNBase.forward`.
    """

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True,
                 batch_first=True, dropout=0.0, bidirectional=False, dtype=np.float32):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError("RNN: nonlinearity must be 'tanh' or 'relu', got %r" % (nonlinearity,))
        self._mode = "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         dtype=dtype)
        self.nonlinearity = nonlinearity

    _sequence = RNNSequence

    @property
    def _sequence_options(self):
        return (self.nonlinearity,)

    def _run_layer(self, layer, projected, h, weight_hh, bias_ih, bias_hh, masks, weight_ih, flat):
        outputs = []
        for x_gates, mask in zip(unbind(projected, 0), masks):
            h = RNNStep.apply(x_gates, h, weight_hh, self.nonlinearity, mask)
            outputs.append(h)
        return autograd_core.stack(outputs, axis=0), h

    def extra_repr(self):
        return super().extra_repr() + (", nonlinearity='relu'" if self.nonlinearity == "relu" else "")


class LSTM(_RNNBase):
    """Multi-layer LSTM (gates i, f, g, o; c_t = f*c_{t-1} + i*g, h_t = o*tanh(c_t); see
    the module docstring).

    ``LSTM(input_size, hidden_size, num_layers=1, bias=True, batch_first=True,
    dropout=0.0)``; ``forward(input [batch, time, input_size], hx (h0, c0) each
    [num_layers, batch, hidden] or None, lengths=None) -> (outputs [batch, time, hidden],
    (h_n, c_n))``. See :meth:`_RNNBase.forward`.
    """

    _mode = "LSTM"
    _sequence = LSTMSequence

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=True, dropout=0.0,
                 bidirectional=False, proj_size=0, dtype=np.float32):
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         dtype=dtype, proj_size=proj_size)

    def _run_projected(self, inputs, state, params, weight_hr, masks):
        """An LSTM direction with a projection, step by step from engine ops:
        h_t = (o * tanh(c_t)) W_hr^T, [b, proj_size], is what the next step and layer
        read (torch's proj_size). inputs [T, b, width] -> (outputs [T, b, proj], (h, c))."""
        weight_ih, weight_hh, bias_ih, bias_hh = params
        steps, batch, width = inputs.shape
        hidden = self.hidden_size
        projected = _project(inputs.reshape(steps * batch, width), weight_ih, bias_ih, bias_hh)
        projected = projected.reshape(steps, batch, 4 * hidden)
        h, c = state
        outputs = []
        for t in range(steps):
            gates = projected[t] if h is None else projected[t] + autograd_core.matmul(h, weight_hh.T)
            i = autograd_core.sigmoid(gates[:, :hidden])
            f = autograd_core.sigmoid(gates[:, hidden:2 * hidden])
            g = autograd_core.tanh(gates[:, 2 * hidden:3 * hidden])
            o = autograd_core.sigmoid(gates[:, 3 * hidden:])
            c_new = i * g if c is None else f * c + i * g
            h_new = autograd_core.matmul(o * autograd_core.tanh(c_new), weight_hr.T)
            if masks[t] is not None:  # finished sequences keep their state
                keep = Tensor(masks[t])
                h_new = keep * h_new + (1 - keep) * (h if h is not None else autograd_core.zeros_like(h_new))
                c_new = keep * c_new + (1 - keep) * (c if c is not None else autograd_core.zeros_like(c_new))
            h, c = h_new, c_new
            outputs.append(h)
        return autograd_core.stack(outputs, axis=0), (h, c)

    def _initial_states(self, hx, batch, dtype):
        if hx is None:
            h0 = c0 = None
        elif isinstance(hx, (tuple, list)) and len(hx) == 2:
            h0, c0 = hx
        else:
            raise ValueError("LSTM: expected the initial state as a tuple (h0, c0), got %s" % type(hx).__name__)
        return list(zip(self._initial(h0, batch, dtype, "h"), self._initial(c0, batch, dtype, "c")))

    def _run_layer(self, layer, projected, state, weight_hh, bias_ih, bias_hh, masks, weight_ih, flat):
        """projected [T, b, 4h] -> (outputs [T, b, h], (h, c) after the last step), step by
        step (the path with lengths; without, the layer is one LSTMSequence node).

        Each step writes its h into a slot of one [T, b, h] array, which then is the
        layer's output with no copy (StackedSteps) and, at backward, the h_{t-1} of
        every step for the weight gradient (SequenceSteps). The step's other results go
        to slots of per-layer buffers too, reused from call to call (Workspace)."""
        h, c = state
        steps, batch = projected.shape[0], projected.shape[1]
        dtype, hidden = projected.dtype, self.hidden_size
        workspace = self._workspace()
        outputs = workspace.empty((layer, "h"), (steps, batch, hidden), dtype)
        cells = workspace.empty((layer, "c"), (steps, batch, hidden), dtype)
        saved = workspace.empty((layer, "saved"), (steps, batch, 5 * hidden), dtype)
        grad_gates = workspace.empty((layer, "grad_gates"), (steps, batch, 4 * hidden), dtype)
        weight_hh_t = np.ascontiguousarray(weight_hh.data.T)  # once, not in each of T matmuls
        bias = grad_bias_sum = None
        if bias_ih is not None:
            bias = bias_ih.data + bias_hh.data
            # one row per thread that may run a step's backward (C never runs more threads
            # than rows); SequenceSteps zero-fills it, so rows of threads OpenMP did not
            # start (OMP_DYNAMIC, OMP_THREAD_LIMIT) add nothing to the sum over rows
            grad_bias_sum = workspace.empty((layer, "grad_bias"), (autograd_core.get_num_threads(), 4 * hidden),
                                            dtype)
        operand = workspace.empty((layer, "operand"), (steps * batch, flat.shape[1] + hidden), dtype)
        step_inputs = SequenceSteps.apply(projected, weight_hh, bias_ih, bias_hh, outputs,
                                          None if h is None else h.data, grad_gates, grad_bias_sum,
                                          weight_ih, flat.data, operand)
        hs = []
        for t in range(steps):
            slots = StepSlots(outputs[t], cells[t], saved[t], grad_gates[t], grad_bias_sum)
            h, c = LayerStep.apply(step_inputs[t], h, c, weight_hh.data, masks[t], weight_hh_t, slots, bias)
            hs.append(h)
        return StackedSteps.apply(outputs, *hs), (h, c)

    def _project_layer(self, layer, flat, weight_ih, bias_ih, bias_hh):
        # no biases here: the steps add them, and W_ih is a constant here: its gradient
        # comes from SequenceSteps with W_hh's (see _run_layer). Shapes and dtypes follow
        # from the layer's own checks, so InputProjection is called without input_projection's.
        out = self._workspace().empty((layer, "projected"), (flat.shape[0], weight_ih.shape[0]), flat.dtype)
        return InputProjection.apply(flat, weight_ih.data, None, None, out)

    def _final_state(self, finals):
        return (autograd_core.stack([h for h, _ in finals], axis=0),
                autograd_core.stack([c for _, c in finals], axis=0))


class GRU(_RNNBase):
    """Multi-layer GRU (gates r, z, n; reset applied after the hidden matmul; see the
    module docstring).

    ``GRU(input_size, hidden_size, num_layers=1, bias=True, batch_first=True,
    dropout=0.0)``; ``forward(input [batch, time, input_size], hx [num_layers, batch,
    hidden] or None, lengths=None) -> (outputs [batch, time, hidden], h_n [num_layers,
    batch, hidden])``. See :meth:`_RNNBase.forward`.
    """

    _mode = "GRU"
    _sequence = GRUSequence

    def _project_layer(self, layer, flat, weight_ih, bias_ih, bias_hh):
        return _project(flat, weight_ih, bias_ih)  # b_hh stays in the step: r scales it

    def _run_layer(self, layer, projected, h, weight_hh, bias_ih, bias_hh, masks, weight_ih, flat):
        outputs = []
        for x_gates, mask in zip(unbind(projected, 0), masks):
            h = GRUStep.apply(x_gates, h, weight_hh, bias_hh, mask)
            outputs.append(h)
        return autograd_core.stack(outputs, axis=0), h


def _sum_rows_by_index(count, indices, rows):
    """table [count, dim] whose row i sums the rows [n, dim] whose index [n] is i (zeros
    for an index that does not occur). The rows are sorted by index and each run summed by
    one add.reduceat: 5x faster than np.add.at's unbuffered scatter (GPT's token table,
    768 rows of 128 into 65: 0.27 vs 1.5 ms)."""
    table = np.zeros((count, rows.shape[1]), dtype=rows.dtype)
    if not indices.size:
        return table
    order = np.argsort(indices, kind="stable")
    ordered = indices[order]
    starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
    table[ordered[starts]] = np.add.reduceat(rows[order], starts, axis=0)
    return table


class _EmbeddingLookup(Function):
    """weight[indices]; backward adds each row's gradient into the rows it came from."""

    @staticmethod
    def forward(ctx, weight, indices, padding_idx):
        ctx.indices, ctx.num_embeddings, ctx.padding_idx = indices, weight.shape[0], padding_idx
        return weight[indices]

    @staticmethod
    def backward(ctx, grad):
        grad_weight = _sum_rows_by_index(ctx.num_embeddings, ctx.indices.reshape(-1), grad.reshape(-1, grad.shape[-1]))
        if ctx.padding_idx is not None:
            grad_weight[ctx.padding_idx] = 0
        return grad_weight, None, None

    @staticmethod
    def differentiable_backward(ctx, grad):
        # the same scatter-add as an op (index_add), linear in grad; the padding row's
        # zeroing a constant mask
        dim = grad.shape[-1]
        zeros = Tensor(np.zeros((ctx.num_embeddings, dim), dtype=grad.dtype))
        grad_weight = autograd_core.index_add(zeros, 0, ctx.indices.reshape(-1), grad.reshape(-1, dim))
        if ctx.padding_idx is not None:
            keep = np.ones((ctx.num_embeddings, 1), dtype=grad.dtype)
            keep[ctx.padding_idx] = 0
            grad_weight = grad_weight * Tensor(keep)
        return grad_weight, None, None


class Embedding(Module):
    """A lookup table: integer indices [...] -> rows of weight, [..., embedding_dim].

    weight [num_embeddings, embedding_dim] starts standard normal (PyTorch's default);
    ``padding_idx``'s row starts at zero and never receives gradient. ``max_norm``: each
    row looked up whose ``norm_type``-norm exceeds it is first rescaled to that norm, in
    place in weight (outside the graph, as torch's embedding_renorm_).
    ``Embedding.from_pretrained(weights)`` wraps an existing table.
    """

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, max_norm=None, norm_type=2.0,
                 scale_grad_by_freq=False, sparse=False, _weight=None, _freeze=False, dtype=np.float32):
        super().__init__()
        self.num_embeddings = _positive_int("Embedding", "num_embeddings", num_embeddings)
        self.embedding_dim = _positive_int("Embedding", "embedding_dim", embedding_dim)
        if padding_idx is not None:
            if isinstance(padding_idx, bool) or not isinstance(padding_idx, (int, np.integer)) \
                    or not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError("Embedding: padding_idx must be an int in [-%d, %d), got %r"
                                 % (num_embeddings, num_embeddings, padding_idx))
            padding_idx = int(padding_idx) % num_embeddings
        if max_norm is not None and (isinstance(max_norm, bool) or not isinstance(max_norm, (int, float))
                                     or not max_norm > 0):
            raise ValueError("Embedding: max_norm must be a positive number or None, got %r" % (max_norm,))
        if scale_grad_by_freq or sparse:
            raise NotImplementedError("Embedding: scale_grad_by_freq and sparse gradients are not supported")
        self.padding_idx = padding_idx
        self.max_norm = None if max_norm is None else float(max_norm)
        self.norm_type = float(norm_type)
        if _weight is None:
            self.weight = Parameter(np.empty((self.num_embeddings, self.embedding_dim), dtype=dtype))
            self.reset_parameters()
        else:
            if tuple(_weight.shape) != (self.num_embeddings, self.embedding_dim):
                raise ValueError("Embedding: _weight must have shape %s, got %s"
                                 % ((self.num_embeddings, self.embedding_dim), tuple(_weight.shape)))
            self.weight = Parameter(np.array(_weight, copy=True))
        if _freeze:
            self.weight.requires_grad = False

    @classmethod
    def from_pretrained(cls, embeddings, freeze=True, padding_idx=None, max_norm=None, norm_type=2.0,
                        scale_grad_by_freq=False, sparse=False):
        """An Embedding whose table is a copy of ``embeddings`` [num_embeddings, embedding_dim]
        (numpy array or Tensor), not trained when ``freeze`` (torch's default). The
        padding_idx row is kept as given, as torch does."""
        data = np.asarray(embeddings.data if isinstance(embeddings, Tensor) else embeddings)
        if data.ndim != 2 or data.dtype.kind != "f":
            raise ValueError("Embedding.from_pretrained: embeddings must be a 2-D float table, got shape %s "
                             "dtype %s" % (data.shape, data.dtype))
        return cls(data.shape[0], data.shape[1], padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse,
                   _weight=data, _freeze=freeze, dtype=data.dtype)

    def reset_parameters(self):
        init.normal_(self.weight)
        if self.padding_idx is not None:
            self.weight.data[self.padding_idx] = 0

    def forward(self, indices):
        """indices: ints [...] in [0, num_embeddings) -> [..., embedding_dim]."""
        indices = np.asarray(indices.data if isinstance(indices, Tensor) else indices)
        if indices.dtype.kind not in "iu":
            raise TypeError("Embedding: indices must be integers, got dtype %s" % indices.dtype)
        if indices.size and (indices.min() < 0 or indices.max() >= self.num_embeddings):
            raise ValueError("Embedding: indices must lie in [0, %d), got min %d, max %d"
                             % (self.num_embeddings, indices.min(), indices.max()))
        if self.max_norm is not None:
            self._renorm(indices)
        return _EmbeddingLookup.apply(self.weight, indices, self.padding_idx)

    def _renorm(self, indices):
        """torch's embedding_renorm_: rows looked up with a norm above max_norm scaled to
        max_norm / (norm + 1e-7), in place; not recorded in the graph."""
        rows = np.unique(indices)
        table = self.weight.data
        norms = np.linalg.norm(table[rows], ord=self.norm_type, axis=1)
        over = norms > self.max_norm
        if over.any():
            rows, norms = rows[over], norms[over]
            table[rows] *= (self.max_norm / (norms + 1e-7)).astype(table.dtype)[:, None]

    def extra_repr(self):
        text = "%d, %d" % (self.num_embeddings, self.embedding_dim)
        if self.padding_idx is not None:
            text += ", padding_idx=%d" % self.padding_idx
        if self.max_norm is not None:
            text += ", max_norm=%s" % self.max_norm
        return text
