"""Fused recurrent steps: one graph node per time step of an RNN, LSTM or GRU layer.

Each step op takes the input projection of one step (computed for all steps at once by
the caller, in one GEMM), the previous state and the hidden-to-hidden weight, and does
the recurrent matmul and the gate math in one Function. Backpropagation through time
is then the generic engine walking T of these nodes in reverse; nothing here knows
about sequences.

Gate layouts follow PyTorch, so weights copy between the two:

* LSTM, gates i, f, g, o (input, forget, candidate, output) stacked in ``weight_hh``
  ``[4*hidden, hidden]``; ``x_gates = x W_ih^T + b_ih + b_hh``::

      gates = x_gates + h_prev W_hh^T
      i, f, o = sigmoid(gates_i), sigmoid(gates_f), sigmoid(gates_o)
      g = tanh(gates_g)                      # the candidate c~
      c = f * c_prev + i * g
      h = o * tanh(c)

* GRU, gates r, z, n (reset, update, new); ``x_gates = x W_ih^T + b_ih`` and the
  hidden bias stays inside because the reset gate scales the hidden part of n::

      gh = h_prev W_hh^T + b_hh
      r = sigmoid(x_r + gh_r);  z = sigmoid(x_z + gh_z)
      n = tanh(x_n + r * gh_n)
      h = (1 - z) * n + z * h_prev

* Elman RNN: ``h = tanh(x_gates + h_prev W_hh^T)`` (or relu), ``x_gates = x W_ih^T + b_ih + b_hh``.

``h_prev`` (and ``c_prev``) may be None for a zero state, as at the first step without an
initial state: the step then skips the recurrent matmul and its gradients.

The LSTM layer's own machinery (reused buffers, the whole-sequence weight gradient)
lives next to it, in ``nn/lstm_steps.py``.

``mask`` (optional, a numpy array ``[batch, 1]`` of 0/1 in the state's dtype) marks
which sequences are still running: where it is 0 the step returns the previous state
unchanged and passes the incoming gradient straight back to it, so steps past a
sequence's end neither change its state nor receive gradient from the loss.

Higher-order gradients: each step's ``composite`` is the same cell written with ops
(matmul, sigmoid, tanh, slices), used only when a gradient is to be differentiated
(create_graph=True); the first-order path is the fused C kernels, unchanged. ``Unbind``
is linear.
"""
import numpy as np

from .. import kernels
from ..function import Function
from ..registry import register
from ..tensor import Tensor
from ._util import DimensionError

__all__ = ["LSTMStep", "GRUStep", "RNNStep", "Unbind", "InputProjection", "lstm_step", "gru_step", "rnn_step",
           "unbind", "input_projection", "transposed_product", "lstm_cell"]


def _blend(mask, new, old):
    """new where mask is 1, old where it is 0 (mask [b, 1] broadcasts over features)."""
    if mask is None:
        return new
    return old + mask * (new - old)


def _recurrent(x_gates, h_prev, weight_hh):
    """x_gates + h_prev W_hh^T as a new C-contiguous array; h_prev None is a zero state,
    so only (a copy of) x_gates remains."""
    if h_prev is None:
        return np.array(x_gates, copy=True, order="C")
    result = kernels.gemm(h_prev, weight_hh, trans_b=True)
    result += x_gates
    return result


def _zeros_state(x_gates, weight_hh):
    return np.zeros((x_gates.shape[0], weight_hh.shape[1]), dtype=x_gates.dtype)


def _weight_grad(grad_gates, h_prev, weight_hh):
    """sum over the batch of grad_gates^T h_prev: zero when the state was zero."""
    if h_prev is None:
        return np.zeros_like(weight_hh)
    return kernels.gemm(grad_gates, h_prev, trans_a=True)


def _split_grad(mask, grad):
    """The part of grad that reaches the cell, and the part that skips it (masked rows)."""
    if mask is None:
        return grad, None
    return grad * mask, grad * (1 - mask)


class LSTMStep(Function):
    """One LSTM step: (x_gates [b, 4h], h_prev [b, h], c_prev [b, h], weight_hh [4h, h],
    mask [b, 1] or None) -> (h [b, h], c [b, h]). Gate order i, f, g, o. The matmul and
    the cell are one C call each way (kernels.lstm_step_forward / lstm_step_backward).

    weight_hh may be a Tensor (its gradient, grad_gates^T h_prev, is then summed over the
    steps by the engine) or a plain array, a constant for this node.

    ``run_forward`` / ``run_backward`` are the step itself, with the places a caller may
    supply for its results: nn.LSTM's layer step (nn/lstm_steps.py) passes slots of its
    reusable buffers through them."""

    @staticmethod
    def forward(ctx, x_gates, h_prev, c_prev, weight_hh, mask):
        return LSTMStep.run_forward(ctx, x_gates, h_prev, c_prev, weight_hh, mask)

    @staticmethod
    def backward(ctx, grad_h, grad_c):
        return LSTMStep.run_backward(ctx, grad_h, grad_c)

    @staticmethod
    def run_forward(ctx, x_gates, h_prev, c_prev, weight_hh, mask, weight_hh_t=None, h_out=None, c_out=None,
                    saved_out=None, bias=None, grad_gates_out=None, grad_bias_sum=None):
        """The step's forward. weight_hh_t: W_hh^T, contiguous (default weight_hh.T); h_out,
        c_out [b, h], saved_out [b, 5h]: C-contiguous arrays for the results (None: new
        ones); bias [4h]: a constant added to the gates; grad_gates_out [b, 4h] and
        grad_bias_sum [rows, 4h]: where backward writes the gates' gradient and adds its
        column sums (see kernels.lstm_step_backward)."""
        if c_prev is None:
            c_prev = _zeros_state(x_gates, weight_hh)
        if weight_hh_t is None:
            weight_hh_t = weight_hh.T
        h, c, saved = kernels.lstm_step_forward(x_gates, h_prev, c_prev, weight_hh_t, h_out, c_out, saved_out, bias)
        ctx.save_for_backward(h_prev, c_prev, weight_hh, saved, mask)
        ctx.grad_gates_out, ctx.grad_bias_sum = grad_gates_out, grad_bias_sum
        if mask is not None:  # in place: h and c may be slots of a caller's buffers
            h[...] = _blend(mask, h, _zeros_state(x_gates, weight_hh) if h_prev is None else h_prev)
            c[...] = _blend(mask, c, c_prev)
        return h, c

    @staticmethod
    def run_backward(ctx, grad_h, grad_c):
        """The step's backward: gradients of (x_gates, h_prev, c_prev, weight_hh, mask)."""
        h_prev, c_prev, weight_hh, saved, mask = ctx.saved_tensors
        grad_h_cell, skip_h = _split_grad(mask, grad_h)
        grad_c_cell, skip_c = _split_grad(mask, grad_c)
        needs = ctx.needs_input_grad
        grad_gates, grad_h_prev, grad_c_prev = kernels.lstm_step_backward(
            saved, c_prev, grad_h_cell, grad_c_cell, weight_hh if needs[1] else None, ctx.grad_gates_out,
            ctx.grad_bias_sum)
        if skip_h is not None and grad_h_prev is not None:
            grad_h_prev += skip_h
        if skip_c is not None:
            grad_c_prev += skip_c
        grad_weight = _weight_grad(grad_gates, h_prev, weight_hh) if needs[3] else None
        return grad_gates if needs[0] else None, grad_h_prev, grad_c_prev if needs[2] else None, grad_weight, None

    @staticmethod
    def composite(x_gates, h_prev, c_prev, weight_hh, mask, *_):
        """The step with ops (for create_graph); the extra run_forward arguments of a
        layer's step (buffers, a constant bias) come after mask."""
        return lstm_cell(x_gates, h_prev, c_prev, weight_hh, mask)


def _constant(value):
    """A Function argument given as a plain array (a constant for the node) as a Tensor."""
    return value if value is None or isinstance(value, Tensor) else Tensor(value)


def _graph_gates(x_gates, h_prev, weight_hh):
    """x_gates + h_prev W_hh^T with ops; h_prev None is a zero state."""
    if h_prev is None:
        return x_gates
    return x_gates + h_prev @ _constant(weight_hh).T


def _graph_blend(mask, new, old):
    """_blend with ops: old + mask * (new - old); old None is a zero state."""
    if mask is None:
        return new
    mask = Tensor(mask)
    return mask * new if old is None else old + mask * (new - old)


def lstm_cell(x_gates, h_prev, c_prev, weight_hh, mask=None, bias=None):
    """The LSTM step of LSTMStep written with ops (Tensors in, (h, c) Tensors out): the
    form whose derivatives are taken when a gradient is to be differentiated. bias [4h]
    or None: a constant added to the gates."""
    gates = _graph_gates(x_gates, h_prev, weight_hh)
    if bias is not None:
        gates = gates + _constant(bias)
    hidden = gates.shape[-1] // 4
    input_gate = gates[:, :hidden].sigmoid()
    forget_gate = gates[:, hidden:2 * hidden].sigmoid()
    candidate = gates[:, 2 * hidden:3 * hidden].tanh()
    output_gate = gates[:, 3 * hidden:].sigmoid()
    c = input_gate * candidate if c_prev is None else forget_gate * c_prev + input_gate * candidate
    h = output_gate * c.tanh()
    return _graph_blend(mask, h, h_prev), _graph_blend(mask, c, c_prev)


def transposed_product(a, b):
    """a^T b for a [n, p], b [n, q] with n large: computed as (b^T a)^T, so that the
    GEMM packs the transposed operand with q rows, not p (for a weight gradient p = 4h,
    q = h or the input width: a quarter of the packing). The result is a transposed view."""
    return kernels.gemm(b, a, trans_a=True).T


class GRUStep(Function):
    """One GRU step: (x_gates [b, 3h] = x W_ih^T + b_ih, h_prev [b, h], weight_hh [3h, h],
    bias_hh [3h] or None, mask [b, 1] or None) -> h [b, h]. Gate order r, z, n."""

    @staticmethod
    def forward(ctx, x_gates, h_prev, weight_hh, bias_hh, mask):
        if h_prev is None:
            h_prev = _zeros_state(x_gates, weight_hh)
            hidden_gates = np.zeros((x_gates.shape[0], weight_hh.shape[0]), dtype=x_gates.dtype)
            if bias_hh is not None:
                hidden_gates += bias_hh
            ctx.zero_state = True
        else:
            hidden_gates = kernels.gemm(h_prev, weight_hh, trans_b=True)
            if bias_hh is not None:
                hidden_gates += bias_hh
            ctx.zero_state = False
        h, saved = kernels.gru_cell_forward(x_gates, hidden_gates, h_prev)
        ctx.save_for_backward(h_prev, weight_hh, saved, mask)
        ctx.has_bias = bias_hh is not None
        return _blend(mask, h, h_prev)

    @staticmethod
    def backward(ctx, grad_h):
        h_prev, weight_hh, saved, mask = ctx.saved_tensors
        grad_h_cell, skip_h = _split_grad(mask, grad_h)
        grad_x, grad_hidden, grad_h_direct = kernels.gru_cell_backward(saved, h_prev, grad_h_cell)
        needs = ctx.needs_input_grad
        grad_h_prev = grad_weight = grad_bias = None
        if needs[1]:
            grad_h_prev = grad_h_direct + kernels.gemm(grad_hidden, weight_hh)
            if skip_h is not None:
                grad_h_prev += skip_h
        if needs[2]:
            grad_weight = _weight_grad(grad_hidden, None if ctx.zero_state else h_prev, weight_hh)
        if ctx.has_bias and needs[3]:
            grad_bias = grad_hidden.sum(axis=0)
        return grad_x if needs[0] else None, grad_h_prev, grad_weight, grad_bias, None

    @staticmethod
    def composite(x_gates, h_prev, weight_hh, bias_hh, mask):
        """The step with ops, for create_graph (see the module docstring's equations)."""
        hidden = x_gates.shape[-1] // 3
        hidden_gates = _graph_gates(Tensor(np.zeros((x_gates.shape[0], 3 * hidden), dtype=x_gates.dtype)),
                                    h_prev, weight_hh)
        if bias_hh is not None:
            hidden_gates = hidden_gates + _constant(bias_hh)
        reset = (x_gates[:, :hidden] + hidden_gates[:, :hidden]).sigmoid()
        update = (x_gates[:, hidden:2 * hidden] + hidden_gates[:, hidden:2 * hidden]).sigmoid()
        new = (x_gates[:, 2 * hidden:] + reset * hidden_gates[:, 2 * hidden:]).tanh()
        h = (1 - update) * new if h_prev is None else (1 - update) * new + update * h_prev
        return _graph_blend(mask, h, h_prev)


class RNNStep(Function):
    """One Elman RNN step: (x_gates [b, h] = x W_ih^T + b_ih + b_hh, h_prev [b, h],
    weight_hh [h, h], nonlinearity 'tanh' or 'relu', mask [b, 1] or None) -> h [b, h]."""

    @staticmethod
    def forward(ctx, x_gates, h_prev, weight_hh, nonlinearity, mask):
        pre = _recurrent(x_gates, h_prev, weight_hh)
        if nonlinearity == "tanh":
            h = np.tanh(pre, out=pre)
        else:
            h = np.maximum(pre, 0, out=pre)
        ctx.save_for_backward(h_prev, weight_hh, h, mask)
        ctx.nonlinearity = nonlinearity
        if mask is None:
            return h
        return _blend(mask, h, _zeros_state(x_gates, weight_hh) if h_prev is None else h_prev)

    @staticmethod
    def backward(ctx, grad_h):
        h_prev, weight_hh, h, mask = ctx.saved_tensors
        grad_h_cell, skip_h = _split_grad(mask, grad_h)
        if ctx.nonlinearity == "tanh":
            grad_pre = grad_h_cell * (1 - h * h)
        else:
            grad_pre = grad_h_cell * (h > 0)
        needs = ctx.needs_input_grad
        grad_h_prev = grad_weight = None
        if needs[1]:
            grad_h_prev = kernels.gemm(grad_pre, weight_hh)
            if skip_h is not None:
                grad_h_prev += skip_h
        if needs[2]:
            grad_weight = _weight_grad(grad_pre, h_prev, weight_hh)
        return grad_pre if needs[0] else None, grad_h_prev, grad_weight, None, None

    @staticmethod
    def composite(x_gates, h_prev, weight_hh, nonlinearity, mask):
        """The step with ops, for create_graph."""
        pre = _graph_gates(x_gates, h_prev, weight_hh)
        return _graph_blend(mask, pre.tanh() if nonlinearity == "tanh" else pre.relu(), h_prev)


class Unbind(Function):
    """x [..., n, ...] -> n views along axis (each without that axis); one graph node, so
    slicing a sequence into its steps costs one backward stack, not n scatters."""

    linear = True  # axis is structural: the backward's derivative is unbind again

    @staticmethod
    def forward(ctx, x, axis):
        ctx.axis = axis
        return tuple(np.moveaxis(x, axis, 0))

    @staticmethod
    def backward(ctx, *grads):
        return np.stack(grads, axis=ctx.axis), None


class InputProjection(Function):
    """x [n, in] @ weight [out, in]^T + bias_a [out] + bias_b [out] (either bias None):
    the input part of every gate for all time steps, in one GEMM and one graph node.
    out, optional: a C-contiguous [n, out] array to write the result into (a layer's
    reusable buffer)."""

    @staticmethod
    def forward(ctx, x, weight, bias_a, bias_b, out=None):
        if bias_a is not None and bias_b is not None:
            bias = bias_a + bias_b  # [out] once, not a second pass over [n, out]
        else:
            bias = bias_a if bias_a is not None else bias_b
        ctx.save_for_backward(x, weight)
        return kernels.projection_forward(x, weight, bias, out)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        needs = ctx.needs_input_grad
        grad_x = kernels.gemm(grad, weight) if needs[0] else None
        grad_weight = transposed_product(grad, x) if needs[1] else None
        grad_bias = grad.sum(axis=0) if needs[2] or needs[3] else None
        grads = (grad_x, grad_weight, grad_bias if needs[2] else None, grad_bias if needs[3] else None)
        return grads + (None,) * (len(needs) - len(grads))  # for out when given

    @staticmethod
    def composite(x, weight, bias_a, bias_b, out=None):
        """x @ weight^T + the biases with ops, for create_graph (out, a buffer, is unused)."""
        result = x @ _constant(weight).T
        for bias in (bias_a, bias_b):
            if bias is not None:
                result = result + _constant(bias)
        return result


# ---- functional forms with argument checks ------------------------------------------
def _check_tensor(op, name, value, ndim):
    if not isinstance(value, Tensor):
        raise TypeError("%s: %s must be a Tensor, got %s" % (op, name, type(value).__name__))
    if value.ndim != ndim:
        raise ValueError("%s: got %s of shape %s, expected %d dimensions" % (op, name, value.shape, ndim))
    if value.dtype.kind != "f":
        raise TypeError("%s: got %s of dtype %s, expected float32 or float64" % (op, name, value.dtype))


def _check_step(op, gates, x_gates, h_prev, weight_hh, mask, extra=()):
    _check_tensor(op, "x_gates", x_gates, 2)
    _check_tensor(op, "weight_hh", weight_hh, 2)
    batch, hidden = x_gates.shape[0], weight_hh.shape[1]
    expected = {"x_gates": (x_gates, (batch, gates * hidden)),
                "weight_hh": (weight_hh, (gates * hidden, hidden))}
    if h_prev is not None:
        _check_tensor(op, "h_prev", h_prev, 2)
        expected["h_prev"] = (h_prev, (batch, hidden))
    expected.update(extra)
    for name, (value, shape) in expected.items():
        if value.shape != shape:
            raise ValueError("%s: got %s of shape %s, expected %s (x_gates is %s, weight_hh %s, %d gates)"
                             % (op, name, value.shape, shape, x_gates.shape, weight_hh.shape, gates))
        if value.dtype != x_gates.dtype:
            raise TypeError("%s: got %s of dtype %s and x_gates of dtype %s, expected one dtype"
                            % (op, name, value.dtype, x_gates.dtype))
    if mask is None:
        return None
    mask = np.asarray(mask.data if isinstance(mask, Tensor) else mask)
    if mask.shape not in ((batch,), (batch, 1)):
        raise ValueError("%s: got mask of shape %s, expected [%d] or [%d, 1]" % (op, mask.shape, batch, batch))
    return mask.reshape(batch, 1).astype(x_gates.dtype, copy=False)


@register("lstm_step")
def lstm_step(x_gates, h_prev, c_prev, weight_hh, mask=None):
    """One fused LSTM step (see the module docstring for the equations).

    x_gates [b, 4h] = x W_ih^T + b_ih + b_hh; h_prev, c_prev [b, h] (None: zeros); weight_hh [4h, h];
    mask [b] or [b, 1] of 0/1 (0: keep the previous state). Returns (h, c), each [b, h].
    """
    extra = {}
    if c_prev is not None:
        _check_tensor("lstm_step", "c_prev", c_prev, 2)
        extra["c_prev"] = (c_prev, (x_gates.shape[0], weight_hh.shape[1]))
    mask = _check_step("lstm_step", 4, x_gates, h_prev, weight_hh, mask, extra)
    return LSTMStep.apply(x_gates, h_prev, c_prev, weight_hh, mask)


@register("gru_step")
def gru_step(x_gates, h_prev, weight_hh, bias_hh=None, mask=None):
    """One fused GRU step (see the module docstring for the equations).

    x_gates [b, 3h] = x W_ih^T + b_ih; h_prev [b, h] (None: zeros); weight_hh [3h, h]; bias_hh [3h]
    or None; mask [b] or [b, 1] of 0/1. Returns h [b, h].
    """
    extra = {}
    if bias_hh is not None:
        _check_tensor("gru_step", "bias_hh", bias_hh, 1)
        extra["bias_hh"] = (bias_hh, (weight_hh.shape[0],))
    mask = _check_step("gru_step", 3, x_gates, h_prev, weight_hh, mask, extra)
    return GRUStep.apply(x_gates, h_prev, weight_hh, bias_hh, mask)


@register("rnn_step")
def rnn_step(x_gates, h_prev, weight_hh, nonlinearity="tanh", mask=None):
    """One Elman RNN step: h = act(x_gates + h_prev W_hh^T), act tanh or relu.

    x_gates [b, h] = x W_ih^T + b_ih + b_hh; h_prev [b, h] (None: zeros); weight_hh [h, h]; mask [b]
    or [b, 1] of 0/1. Returns h [b, h].
    """
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError("rnn_step: got nonlinearity=%r, expected 'tanh' or 'relu'" % (nonlinearity,))
    mask = _check_step("rnn_step", 1, x_gates, h_prev, weight_hh, mask)
    return RNNStep.apply(x_gates, h_prev, weight_hh, nonlinearity, mask)


@register("unbind")
def unbind(x, dim=0):
    """The slices of x along dim, as a tuple of Tensors (one graph node for all)."""
    if not isinstance(x, Tensor):
        raise TypeError("unbind: x must be a Tensor, got %s" % type(x).__name__)
    if x.ndim == 0 or not -x.ndim <= dim < x.ndim:
        raise DimensionError("unbind: dim %s is out of range for a tensor of shape %s" % (dim, x.shape))
    return Unbind.apply(x, dim % x.ndim)


@register("input_projection")
def input_projection(x, weight, bias_a=None, bias_b=None):
    """x [n, in] @ weight^T + bias_a + bias_b -> [n, out]; weight [out, in], biases [out]
    or None. Recurrent layers use it to project every time step's input at once."""
    _check_tensor("input_projection", "x", x, 2)
    _check_tensor("input_projection", "weight", weight, 2)
    if x.shape[1] != weight.shape[1] or x.dtype != weight.dtype:
        raise ValueError("input_projection: got x %s %s and weight %s %s, expected x [n, %d] of the weight's dtype"
                         % (x.shape, x.dtype, weight.shape, weight.dtype, weight.shape[1]))
    for name, bias in (("bias_a", bias_a), ("bias_b", bias_b)):
        if bias is not None and (not isinstance(bias, Tensor) or bias.shape != (weight.shape[0],)
                                 or bias.dtype != weight.dtype):
            raise ValueError("input_projection: got %s %s, expected a %s Tensor of shape (%d,)" % (
                name, (bias.shape, bias.dtype) if isinstance(bias, Tensor) else type(bias).__name__,
                weight.dtype, weight.shape[0]))
    return InputProjection.apply(x, weight, bias_a, bias_b)
