"""Recurrent family (csrc/rnn*.c): fused LSTM and GRU cells, whole LSTM steps (the
recurrent matmul and the cell in one C call), whole GRU and Elman RNN layers over their
sequences (one C call each way) and a recurrent layer's input projection.

Gate orders are PyTorch's: LSTM i, f, g, o; GRU r, z, n, with the reset gate applied
after the hidden matmul. Arrays are [batch, k * hidden], float32 or float64.
"""
import numpy as np

from .runtime import FLOAT_DTYPES, by_dtype, c_array, check_array, check_float, dispatch, pointers

_LSTM_CELL_FORWARD = by_dtype("ag_lstm_cell_forward_f32", "ag_lstm_cell_forward_f64")
_LSTM_CELL_BACKWARD = by_dtype("ag_lstm_cell_backward_f32", "ag_lstm_cell_backward_f64")
_GRU_CELL_FORWARD = by_dtype("ag_gru_cell_forward_f32", "ag_gru_cell_forward_f64")
_GRU_CELL_BACKWARD = by_dtype("ag_gru_cell_backward_f32", "ag_gru_cell_backward_f64")
_LSTM_STEP_FORWARD = by_dtype("ag_lstm_step_forward_f32", "ag_lstm_step_forward_f64")
_LSTM_STEP_BACKWARD = by_dtype("ag_lstm_step_backward_f32", "ag_lstm_step_backward_f64")
_LSTM_SEQUENCE_FORWARD = by_dtype("ag_lstm_sequence_forward_f32", "ag_lstm_sequence_forward_f64")
_LSTM_LAYER_FORWARD = by_dtype("ag_lstm_layer_forward_f32", "ag_lstm_layer_forward_f64")
_LSTM_LAYER_BACKWARD = by_dtype("ag_lstm_layer_backward_f32", "ag_lstm_layer_backward_f64")
_LSTM_LAYER_WEIGHT_SCRATCH = by_dtype("ag_lstm_layer_weight_scratch_f32", "ag_lstm_layer_weight_scratch_f64")
_LSTM_SEQUENCE_BACKWARD = by_dtype("ag_lstm_sequence_backward_f32", "ag_lstm_sequence_backward_f64")
_GRU_SEQUENCE_FORWARD = by_dtype("ag_gru_sequence_forward_f32", "ag_gru_sequence_forward_f64")
_GRU_SEQUENCE_BACKWARD = by_dtype("ag_gru_sequence_backward_f32", "ag_gru_sequence_backward_f64")
_RNN_SEQUENCE_FORWARD = by_dtype("ag_rnn_sequence_forward_f32", "ag_rnn_sequence_forward_f64")
_RNN_SEQUENCE_BACKWARD = by_dtype("ag_rnn_sequence_backward_f32", "ag_rnn_sequence_backward_f64")
_GEMM = by_dtype("ag_sgemm", "ag_dgemm")


def _sigmoid(v):
    # exp(-v) overflows to inf for very negative v, giving 0 cleanly; silence the warning.
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-v))


def _cell_arrays(op, expected, **arrays):
    """Checks that each named array is 2-D with the expected shape and one float dtype;
    returns the dtype and C-contiguous copies in the given order."""
    for name, array in arrays.items():
        check_array(op, name, array, 2)
        if array.shape != expected[name]:
            raise ValueError("%s: got %s shape %s, expected %s" % (op, name, array.shape, expected[name]))
    dtype = check_float(op, **arrays)
    return dtype, [c_array(array) for array in arrays.values()]


def _hidden_from(op, name, array, gates):
    """(batch, hidden) of a [batch, gates * hidden] array."""
    check_array(op, name, array, 2)
    if array.shape[1] % gates != 0:
        raise ValueError("%s: got %s shape %s, expected [batch, %d * hidden]" % (op, name, array.shape, gates))
    return array.shape[0], array.shape[1] // gates


# ---- LSTM cell -----------------------------------------------------------------------------

def lstm_cell_forward(gates, c_prev):
    """Fused LSTM cell (PyTorch gate order i, f, g, o). gates [b, 4h] are the
    pre-activations x W_ih^T + b_ih + h W_hh^T + b_hh, c_prev [b, h].
    Returns h [b, h], c [b, h], saved [b, 5h] (i, f, g, o activated, tanh(c))."""
    op = "lstm_cell_forward"
    batch, hidden = _hidden_from(op, "gates", gates, 4)
    _, (gates, c_prev) = _cell_arrays(op, {"gates": (batch, 4 * hidden), "c_prev": (batch, hidden)},
                                      gates=gates, c_prev=c_prev)
    return dispatch(_lstm_cell_forward_c, _lstm_cell_forward_numpy, gates, c_prev)


def _lstm_cell_forward_c(gates, c_prev):
    (batch, hidden), dtype = c_prev.shape, c_prev.dtype
    h = np.empty((batch, hidden), dtype=dtype)
    c = np.empty((batch, hidden), dtype=dtype)
    saved = np.empty((batch, 5 * hidden), dtype=dtype)
    _LSTM_CELL_FORWARD[dtype](*pointers(gates, c_prev, h, c, saved), batch, hidden)
    return h, c, saved


def _lstm_cell_forward_numpy(gates, c_prev):
    """The reference: the LSTM equations, one numpy expression each."""
    i, f, g, o = np.split(gates, 4, axis=1)
    i, f, g, o = _sigmoid(i), _sigmoid(f), np.tanh(g), _sigmoid(o)
    c = f * c_prev + i * g
    tanh_c = np.tanh(c)
    h = o * tanh_c
    saved = np.concatenate([i, f, g, o, tanh_c], axis=1)
    return h.astype(gates.dtype), c.astype(gates.dtype), saved.astype(gates.dtype)


def lstm_cell_backward(saved, c_prev, grad_h, grad_c=None):
    """Backward of lstm_cell_forward. saved [b, 5h], c_prev, grad_h, grad_c [b, h]
    (grad_c None means zeros). Returns grad_gates [b, 4h] (w.r.t. the pre-activations)
    and grad_c_prev [b, h]."""
    op = "lstm_cell_backward"
    batch, hidden = _hidden_from(op, "saved", saved, 5)
    arrays = dict(saved=saved, c_prev=c_prev, grad_h=grad_h)
    if grad_c is not None:
        arrays["grad_c"] = grad_c
    expected = {"saved": (batch, 5 * hidden), "c_prev": (batch, hidden), "grad_h": (batch, hidden),
                "grad_c": (batch, hidden)}
    _, checked = _cell_arrays(op, expected, **arrays)
    saved, c_prev, grad_h = checked[:3]
    grad_c = checked[3] if grad_c is not None else None
    return dispatch(_lstm_cell_backward_c, _lstm_cell_backward_numpy, saved, c_prev, grad_h, grad_c)


def _lstm_cell_backward_c(saved, c_prev, grad_h, grad_c):
    (batch, hidden), dtype = c_prev.shape, c_prev.dtype
    grad_gates = np.empty((batch, 4 * hidden), dtype=dtype)
    grad_c_prev = np.empty((batch, hidden), dtype=dtype)
    _LSTM_CELL_BACKWARD[dtype](*pointers(saved, c_prev, grad_h, grad_c, grad_gates, grad_c_prev), batch, hidden)
    return grad_gates, grad_c_prev


def _lstm_cell_backward_numpy(saved, c_prev, grad_h, grad_c):
    """The reference: the chain rule through c = f c_prev + i g and h = o tanh(c)."""
    i, f, g, o, tanh_c = np.split(saved, 5, axis=1)
    grad_cell = grad_h * o * (1 - tanh_c * tanh_c)
    if grad_c is not None:
        grad_cell = grad_cell + grad_c
    grad_gates = np.concatenate([
        grad_cell * g * i * (1 - i),
        grad_cell * c_prev * f * (1 - f),
        grad_cell * i * (1 - g * g),
        grad_h * tanh_c * o * (1 - o)], axis=1)
    return grad_gates.astype(saved.dtype), (grad_cell * f).astype(saved.dtype)


# ---- GRU cell ------------------------------------------------------------------------------

def gru_cell_forward(gi, gh, h_prev):
    """Fused GRU cell (PyTorch gate order r, z, n; reset applied after the hidden matmul).
    gi = x W_ih^T + b_ih and gh = h W_hh^T + b_hh are [b, 3h], h_prev [b, h].
    Returns h [b, h] and saved [b, 4h] (r, z, n, gh_n)."""
    op = "gru_cell_forward"
    batch, hidden = _hidden_from(op, "gi", gi, 3)
    _, (gi, gh, h_prev) = _cell_arrays(
        op, {"gi": (batch, 3 * hidden), "gh": (batch, 3 * hidden), "h_prev": (batch, hidden)},
        gi=gi, gh=gh, h_prev=h_prev)
    return dispatch(_gru_cell_forward_c, _gru_cell_forward_numpy, gi, gh, h_prev)


def _gru_cell_forward_c(gi, gh, h_prev):
    (batch, hidden), dtype = h_prev.shape, h_prev.dtype
    h = np.empty((batch, hidden), dtype=dtype)
    saved = np.empty((batch, 4 * hidden), dtype=dtype)
    _GRU_CELL_FORWARD[dtype](*pointers(gi, gh, h_prev, h, saved), batch, hidden)
    return h, saved


def _gru_cell_forward_numpy(gi, gh, h_prev):
    """The reference: the GRU equations, one numpy expression each."""
    gi_r, gi_z, gi_n = np.split(gi, 3, axis=1)
    gh_r, gh_z, gh_n = np.split(gh, 3, axis=1)
    r = _sigmoid(gi_r + gh_r)
    z = _sigmoid(gi_z + gh_z)
    n = np.tanh(gi_n + r * gh_n)
    h = (1 - z) * n + z * h_prev
    return h.astype(gi.dtype), np.concatenate([r, z, n, gh_n], axis=1).astype(gi.dtype)


def gru_cell_backward(saved, h_prev, grad_h):
    """Backward of gru_cell_forward. saved [b, 4h], h_prev and grad_h [b, h].
    Returns grad_gi [b, 3h], grad_gh [b, 3h] and grad_h_prev [b, h]; grad_h_prev is only
    the direct path through z * h_prev (the path through gh is the caller's matmul)."""
    op = "gru_cell_backward"
    batch, hidden = _hidden_from(op, "saved", saved, 4)
    _, (saved, h_prev, grad_h) = _cell_arrays(
        op, {"saved": (batch, 4 * hidden), "h_prev": (batch, hidden), "grad_h": (batch, hidden)},
        saved=saved, h_prev=h_prev, grad_h=grad_h)
    return dispatch(_gru_cell_backward_c, _gru_cell_backward_numpy, saved, h_prev, grad_h)


def _gru_cell_backward_c(saved, h_prev, grad_h):
    (batch, hidden), dtype = h_prev.shape, h_prev.dtype
    grad_gi = np.empty((batch, 3 * hidden), dtype=dtype)
    grad_gh = np.empty((batch, 3 * hidden), dtype=dtype)
    grad_h_prev = np.empty((batch, hidden), dtype=dtype)
    _GRU_CELL_BACKWARD[dtype](*pointers(saved, h_prev, grad_h, grad_gi, grad_gh, grad_h_prev), batch, hidden)
    return grad_gi, grad_gh, grad_h_prev


def _gru_cell_backward_numpy(saved, h_prev, grad_h):
    """The reference: the chain rule through h = (1 - z) n + z h_prev."""
    r, z, n, gh_n = np.split(saved, 4, axis=1)
    grad_n = grad_h * (1 - z) * (1 - n * n)
    grad_z = grad_h * (h_prev - n) * z * (1 - z)
    grad_r = grad_n * gh_n * r * (1 - r)
    grad_gi = np.concatenate([grad_r, grad_z, grad_n], axis=1)
    grad_gh = np.concatenate([grad_r, grad_z, grad_n * r], axis=1)
    return (grad_gi.astype(saved.dtype), grad_gh.astype(saved.dtype),
            (grad_h * z).astype(saved.dtype))


# ---- whole LSTM steps (recurrent matmul + cell in one C call) -------------------------
# A recurrent layer makes these calls T times a step each way, so the checks are the
# few comparisons that keep C in bounds, without building dicts or messages unless
# something is wrong.

def _step_operand(op, name, value, shape, dtype):
    """value as a C-contiguous array of exactly this shape and dtype (a copy only when
    its layout needs one); a TypeError/ValueError naming op and name otherwise."""
    if not isinstance(value, np.ndarray):
        raise TypeError("%s: got %s of type %s, expected a numpy array" % (op, name, type(value).__name__))
    if value.shape != shape or value.dtype != dtype:
        raise ValueError("%s: got %s of shape %s and dtype %s, expected shape %s and dtype %s"
                         % (op, name, value.shape, value.dtype, shape, dtype))
    return value if value.flags.c_contiguous and value.flags.aligned else c_array(value)  # no call when fine


def _step_output(op, name, out, shape, dtype):
    """A new array, or the caller's out after checking that C may write all of it."""
    if out is None:
        return np.empty(shape, dtype=dtype)
    if not (isinstance(out, np.ndarray) and out.shape == shape and out.dtype == dtype
            and out.flags.c_contiguous and out.flags.aligned and out.flags.writeable):
        raise ValueError("%s: %s must be a writeable C-contiguous %s array of shape %s, got %s"
                         % (op, name, dtype, shape, (out.shape, out.dtype) if isinstance(out, np.ndarray)
                            else type(out).__name__))
    return out


def lstm_step_forward(x_gates, h_prev, c_prev, weight_hh_t, h_out=None, c_out=None, saved_out=None, bias=None):
    """One LSTM step: gates = x_gates + h_prev @ weight_hh_t (+ bias [4h]), then
    lstm_cell_forward.

    x_gates [b, 4h] = x W_ih^T + b_ih + b_hh; h_prev [b, h] or None (a zero state: no
    matmul); c_prev [b, h]; weight_hh_t [h, 4h] is W_hh^T (a layer transposes W_hh once
    for all its steps, so the GEMM reads it without transposing). h_out, c_out and
    saved_out, when given, are C-contiguous arrays of the results' shapes to write them
    into (slots of a layer's buffers, reused from call to call: writing to fresh memory
    costs a page fault per 4 KiB, which at batch 100, hidden 128 took as long as the step).
    Returns h [b, h], c [b, h], saved [b, 5h] as lstm_cell_forward does."""
    op = "lstm_step_forward"
    if (not isinstance(weight_hh_t, np.ndarray) or weight_hh_t.ndim != 2
            or weight_hh_t.shape[1] != 4 * weight_hh_t.shape[0]):
        raise ValueError("%s: weight_hh_t must be an array [hidden, 4 * hidden], got %s" % (
            op, weight_hh_t.shape if isinstance(weight_hh_t, np.ndarray) else type(weight_hh_t).__name__))
    hidden, dtype = weight_hh_t.shape[0], weight_hh_t.dtype
    if dtype not in FLOAT_DTYPES:
        raise TypeError("%s: got weight_hh_t of dtype %s, expected float32 or float64" % (op, dtype))
    batch = x_gates.shape[0] if isinstance(x_gates, np.ndarray) and x_gates.ndim == 2 else -1
    x_gates = _step_operand(op, "x_gates", x_gates, (batch, 4 * hidden), dtype)
    c_prev = _step_operand(op, "c_prev", c_prev, (batch, hidden), dtype)
    if h_prev is not None:
        h_prev = _step_operand(op, "h_prev", h_prev, (batch, hidden), dtype)
    if bias is not None:
        bias = _step_operand(op, "bias", bias, (4 * hidden,), dtype)
    h = _step_output(op, "h_out", h_out, (batch, hidden), dtype)
    c = _step_output(op, "c_out", c_out, (batch, hidden), dtype)
    saved = _step_output(op, "saved_out", saved_out, (batch, 5 * hidden), dtype)
    return dispatch(_lstm_step_forward_c, _lstm_step_forward_numpy,
                    x_gates, h_prev, c_prev, weight_hh_t, bias, h, c, saved)


def _lstm_step_forward_c(x_gates, h_prev, c_prev, weight_hh_t, bias, h, c, saved):
    batch, hidden = c_prev.shape
    if batch and hidden:
        if not (weight_hh_t.flags.c_contiguous and weight_hh_t.flags.aligned):
            weight_hh_t = c_array(weight_hh_t)
        # the GEMM's result, before the cell reads it (none without h_prev: x_gates is the gates)
        work = np.empty((batch, 4 * hidden), dtype=c_prev.dtype) if h_prev is not None else None
        x_gates, h_prev, weight_hh_t, bias, c_prev, work, h_pointer, c_pointer, saved_pointer = pointers(
            x_gates, h_prev, weight_hh_t, bias, c_prev, work, h, c, saved)
        _LSTM_STEP_FORWARD[h.dtype](x_gates, 4 * hidden, h_prev, weight_hh_t, bias, c_prev, work,
                                    h_pointer, c_pointer, saved_pointer, batch, hidden)
    return h, c, saved


def _lstm_step_forward_numpy(x_gates, h_prev, c_prev, weight_hh_t, bias, h, c, saved):
    """The reference: numpy's matmul, then the cell's reference, written into h, c, saved."""
    gates = x_gates if h_prev is None else x_gates + np.matmul(h_prev, weight_hh_t)
    gates = gates if bias is None else gates + bias
    h[...], c[...], saved[...] = _lstm_cell_forward_numpy(gates.astype(h.dtype, copy=False), c_prev)
    return h, c, saved


def lstm_step_backward(saved, c_prev, grad_h, grad_c, weight_hh, grad_gates_out=None, grad_bias_sum=None):
    """Backward of lstm_step_forward. saved [b, 5h], c_prev, grad_h [b, h], grad_c [b, h]
    or None (zeros); weight_hh [4h, h] or None when h_prev needs no gradient;
    grad_gates_out an optional C-contiguous [b, 4h] array to write grad_gates into.
    grad_bias_sum, optional, is a C-contiguous [rows, 4h] accumulator: the column sums of
    grad_gates are added into it (spread over its rows, one per thread; its total over
    rows is what counts). A layer sums the bias gradient over its steps this way, while
    each step's gradients are still in cache.
    Returns grad_gates [b, 4h] (also the gradient of x_gates), grad_h_prev [b, h] (None
    without weight_hh) and grad_c_prev [b, h]."""
    op = "lstm_step_backward"
    if not isinstance(saved, np.ndarray) or saved.ndim != 2 or saved.shape[1] % 5:
        raise ValueError("%s: saved must be an array [batch, 5 * hidden], got %s" % (
            op, saved.shape if isinstance(saved, np.ndarray) else type(saved).__name__))
    (batch, width), dtype = saved.shape, saved.dtype
    hidden = width // 5
    if dtype not in FLOAT_DTYPES:
        raise TypeError("%s: got saved of dtype %s, expected float32 or float64" % (op, dtype))
    saved = _step_operand(op, "saved", saved, (batch, width), dtype)
    c_prev = _step_operand(op, "c_prev", c_prev, (batch, hidden), dtype)
    grad_h = _step_operand(op, "grad_h", grad_h, (batch, hidden), dtype)
    if grad_c is not None:
        grad_c = _step_operand(op, "grad_c", grad_c, (batch, hidden), dtype)
    if weight_hh is not None:
        weight_hh = _step_operand(op, "weight_hh", weight_hh, (4 * hidden, hidden), dtype)
    grad_gates = _step_output(op, "grad_gates_out", grad_gates_out, (batch, 4 * hidden), dtype)
    if grad_bias_sum is not None:
        rows = grad_bias_sum.shape[0] if isinstance(grad_bias_sum, np.ndarray) and grad_bias_sum.ndim == 2 else 0
        grad_bias_sum = _step_output(op, "grad_bias_sum", grad_bias_sum, (max(rows, 1), 4 * hidden), dtype)
    return dispatch(_lstm_step_backward_c, _lstm_step_backward_numpy,
                    saved, c_prev, grad_h, grad_c, weight_hh, grad_gates, grad_bias_sum)


def _lstm_step_backward_c(saved, c_prev, grad_h, grad_c, weight_hh, grad_gates, grad_bias_sum):
    (batch, hidden), dtype = c_prev.shape, c_prev.dtype
    grad_h_prev = None if weight_hh is None else np.empty((batch, hidden), dtype=dtype)
    grad_c_prev = np.empty((batch, hidden), dtype=dtype)
    if batch and hidden:
        _LSTM_STEP_BACKWARD[dtype](*pointers(saved, c_prev, grad_h, grad_c, weight_hh, grad_gates, grad_h_prev,
                                             grad_c_prev, grad_bias_sum),
                                   0 if grad_bias_sum is None else grad_bias_sum.shape[0], batch, hidden)
    elif grad_h_prev is not None:
        grad_h_prev.fill(0)
    return grad_gates, grad_h_prev, grad_c_prev


def _lstm_step_backward_numpy(saved, c_prev, grad_h, grad_c, weight_hh, grad_gates, grad_bias_sum):
    """The reference: the cell's reference backward, then numpy's matmul and column sums."""
    grad_gates[...], grad_c_prev = _lstm_cell_backward_numpy(saved, c_prev, grad_h, grad_c)
    grad_h_prev = None if weight_hh is None else np.matmul(grad_gates, weight_hh).astype(saved.dtype, copy=False)
    if grad_bias_sum is not None:
        grad_bias_sum[0] += grad_gates.sum(axis=0)
    return grad_gates, grad_h_prev, grad_c_prev


# ---- whole LSTM, GRU and Elman RNN layers (every step of a sequence in one C call) --------
# Arrays are time-major, [steps, batch, k]. Row b of a step depends only on row b of
# the step before, so C runs all steps of a share of the batch rows per thread.

def _sequence_shapes(op, x_gates, weight_hh_t, gates):
    """(steps, batch, hidden, dtype) from x_gates [steps, batch, gates * hidden] and
    weight_hh_t [hidden, gates * hidden], checked."""
    if (not isinstance(weight_hh_t, np.ndarray) or weight_hh_t.ndim != 2
            or weight_hh_t.shape[1] != gates * weight_hh_t.shape[0]):
        raise ValueError("%s: weight_hh_t must be an array [hidden, %d * hidden], got %s" % (
            op, gates, weight_hh_t.shape if isinstance(weight_hh_t, np.ndarray) else type(weight_hh_t).__name__))
    hidden, dtype = weight_hh_t.shape[0], weight_hh_t.dtype
    if dtype not in FLOAT_DTYPES:
        raise TypeError("%s: got weight_hh_t of dtype %s, expected float32 or float64" % (op, dtype))
    if not isinstance(x_gates, np.ndarray) or x_gates.ndim != 3:
        raise ValueError("%s: x_gates must be an array [steps, batch, %d * %d], got %s" % (
            op, gates, hidden, x_gates.shape if isinstance(x_gates, np.ndarray) else type(x_gates).__name__))
    return x_gates.shape[0], x_gates.shape[1], hidden, dtype


def _saved_sequence(op, saved, parts):
    """(steps, batch, hidden, dtype, saved) of a forward's saved activations [steps,
    batch, parts * hidden], checked (saved C-contiguous)."""
    if not isinstance(saved, np.ndarray) or saved.ndim != 3 or saved.shape[2] % parts:
        raise ValueError("%s: saved must be an array [steps, batch, %d * hidden], got %s" % (
            op, parts, saved.shape if isinstance(saved, np.ndarray) else type(saved).__name__))
    if saved.dtype not in FLOAT_DTYPES:
        raise TypeError("%s: got saved of dtype %s, expected float32 or float64" % (op, saved.dtype))
    steps, batch, width = saved.shape
    return steps, batch, width // parts, saved.dtype, _step_operand(op, "saved", saved, saved.shape, saved.dtype)


def _optional_state(op, name, value, batch, hidden, dtype):
    return None if value is None else _step_operand(op, name, value, (batch, hidden), dtype)


def _relu_flag(op, nonlinearity):
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError("%s: got nonlinearity=%r, expected 'tanh' or 'relu'" % (op, nonlinearity))
    return int(nonlinearity == "relu")


def _lstm_forward_states(op, h0, c0, h_out, c_out, saved_out, steps, batch, hidden, dtype):
    """The checked state arrays of an LSTM sequence or layer forward: (h0 or None, c0
    (zeros when None), h [T, b, h], c [T, b, h], saved [T, b, 5h]); the outputs are
    h_out / c_out / saved_out when given, else new arrays."""
    h0 = _optional_state(op, "h0", h0, batch, hidden, dtype)
    c0 = _optional_state(op, "c0", c0, batch, hidden, dtype)
    h = _step_output(op, "h_out", h_out, (steps, batch, hidden), dtype)
    c = _step_output(op, "c_out", c_out, (steps, batch, hidden), dtype)
    saved = _step_output(op, "saved_out", saved_out, (steps, batch, 5 * hidden), dtype)
    return h0, np.zeros((batch, hidden), dtype=dtype) if c0 is None else c0, h, c, saved


def lstm_sequence_forward(x_gates, h0, c0, weight_hh_t, h_out=None, c_out=None, saved_out=None):
    """A whole LSTM layer over its sequence (gates i, f, g, o; see lstm_cell_forward).

    x_gates [T, b, 4h] = x W_ih^T + b_ih + b_hh for every step; h0, c0 [b, h] or None
    (zeros); weight_hh_t [h, 4h] is W_hh^T. h_out, c_out [T, b, h] and saved_out
    [T, b, 5h], when given, are C-contiguous arrays to write into (a layer's reusable
    buffers). Returns h and c [T, b, h], every step's states, and saved [T, b, 5h],
    every step's activations for lstm_sequence_backward."""
    op = "lstm_sequence_forward"
    steps, batch, hidden, dtype = _sequence_shapes(op, x_gates, weight_hh_t, 4)
    x_gates = _step_operand(op, "x_gates", x_gates, (steps, batch, 4 * hidden), dtype)
    h0, c0, h, c, saved = _lstm_forward_states(op, h0, c0, h_out, c_out, saved_out, steps, batch, hidden, dtype)
    return dispatch(_lstm_sequence_forward_c, _lstm_sequence_forward_numpy, x_gates, h0, c0,
                    _step_operand(op, "weight_hh_t", weight_hh_t, weight_hh_t.shape, dtype), h, c, saved)


def _lstm_sequence_forward_c(x_gates, h0, c0, weight_hh_t, h, c, saved):
    steps, batch, hidden = h.shape
    if steps and batch and hidden:
        work = np.empty((batch, 4 * hidden), dtype=h.dtype)
        _LSTM_SEQUENCE_FORWARD[h.dtype](*pointers(x_gates, h0, c0, weight_hh_t, work, h, c, saved),
                                        steps, batch, hidden)
    return h, c, saved


def _lstm_sequence_forward_numpy(x_gates, h0, c0, weight_hh_t, h, c, saved):
    """The reference: the LSTM cell's reference, step after step."""
    h_prev, c_prev = h0, c0
    for t in range(h.shape[0]):
        gates = x_gates[t] if h_prev is None else (x_gates[t] + np.matmul(h_prev, weight_hh_t)).astype(h.dtype)
        h[t], c[t], saved[t] = _lstm_cell_forward_numpy(gates, c_prev)
        h_prev, c_prev = h[t], c[t]
    return h, c, saved


def lstm_layer_forward(inputs, h0, c0, weight_t, bias=None, h_out=None, c_out=None, saved_out=None):
    """lstm_sequence_forward with the input projection inside the steps: each step's
    gates are [x_t | h_{t-1}] @ weight_t + bias in one product, so the projection of
    the whole sequence never goes to memory.

    inputs [T, b, in] (the layer's input); h0, c0 [b, h] or None (zeros); weight_t
    [in + h, 4h] = [W_ih | W_hh]^T; bias [4h] (b_ih + b_hh) or None. h_out, c_out and
    saved_out as in lstm_sequence_forward, whose results it returns: h, c [T, b, h] and
    saved [T, b, 5h] (for lstm_sequence_backward, whose grad_gates is then also the
    gradient of x_t W_ih^T)."""
    op = "lstm_layer_forward"
    check_array(op, "weight_t", weight_t, 2)
    check_array(op, "inputs", inputs, 3)
    depth, width = weight_t.shape
    hidden, dtype = width // 4, check_float(op, weight_t=weight_t)
    steps, batch, input_width = inputs.shape
    if width % 4 or depth != input_width + hidden:
        raise ValueError("%s: got weight_t %s for inputs %s, expected [%d + h, 4h]"
                         % (op, weight_t.shape, inputs.shape, input_width))
    inputs = _step_operand(op, "inputs", inputs, inputs.shape, dtype)
    weight_t = _step_operand(op, "weight_t", weight_t, weight_t.shape, dtype)
    if bias is not None:
        bias = _step_operand(op, "bias", bias, (width,), dtype)
    h0, c0, h, c, saved = _lstm_forward_states(op, h0, c0, h_out, c_out, saved_out, steps, batch, hidden, dtype)
    return dispatch(_lstm_layer_forward_c, _lstm_layer_forward_numpy, inputs, h0, c0, weight_t, bias, h, c, saved)


def _lstm_layer_forward_c(inputs, h0, c0, weight_t, bias, h, c, saved):
    steps, batch, hidden = h.shape
    if steps and batch and hidden:
        work = np.empty((batch, 4 * hidden), dtype=h.dtype)
        input_pointer, *rest = pointers(inputs, h0, c0, weight_t, bias, work, h, c, saved)
        _LSTM_LAYER_FORWARD[h.dtype](input_pointer, inputs.shape[2], *rest, steps, batch, hidden)
    return h, c, saved


def _lstm_layer_forward_numpy(inputs, h0, c0, weight_t, bias, h, c, saved):
    """The reference: the whole projection, then lstm_sequence_forward's reference."""
    width = inputs.shape[2]
    x_gates = np.matmul(inputs, weight_t[:width])
    if bias is not None:
        x_gates += bias
    return _lstm_sequence_forward_numpy(x_gates, h0, c0, weight_t[width:], h, c, saved)


def lstm_sequence_backward(saved, c, h0, c0, grad_h, grad_final_h, grad_final_c, weight_hh, grad_gates_out=None,
                           needs_grad_h0=True, needs_grad_c0=True):
    """Backward of lstm_sequence_forward through all its steps. saved [T, b, 5h] and c
    [T, b, h] are its results, h0 and c0 its initial states (None: zeros); grad_h
    [T, b, h], grad_final_h and grad_final_c [b, h] (each None: zeros) the gradients of
    every step's output and of the last states; weight_hh [4h, h]; grad_gates_out,
    optional, a C-contiguous [T, b, 4h] array to write into. Returns grad_gates
    [T, b, 4h] (of x_gates), grad_h0 (None when h0 is None or not needs_grad_h0) and
    grad_c0 [b, h] (None unless needs_grad_c0)."""
    op = "lstm_sequence_backward"
    steps, batch, hidden, dtype, saved = _saved_sequence(op, saved, 5)
    states = _lstm_backward_states(op, (steps, batch, hidden), dtype, c, h0, c0, grad_h, grad_final_h,
                                   grad_final_c, needs_grad_h0, needs_grad_c0)
    weight_hh = _step_operand(op, "weight_hh", weight_hh, (4 * hidden, hidden), dtype)
    grad_gates = _step_output(op, "grad_gates_out", grad_gates_out, (steps, batch, 4 * hidden), dtype)
    c, h0, c0, grad_h, grad_final_h, grad_final_c, grad_h0, grad_c0 = states
    return dispatch(_lstm_sequence_backward_c, _lstm_sequence_backward_numpy, saved, c, h0, c0, grad_h,
                    grad_final_h, grad_final_c, weight_hh, grad_gates, grad_h0, grad_c0)


def _lstm_backward_states(op, shape, dtype, c, h0, c0, grad_h, grad_final_h, grad_final_c, needs_grad_h0,
                          needs_grad_c0):
    """The operands both LSTM backwards take, checked against shape (T, b, h) and dtype:
    (c, h0, c0 (zeros for None), grad_h, grad_final_h, grad_final_c, and new grad_h0 and
    grad_c0 arrays, each None where it is not wanted)."""
    steps, batch, hidden = shape
    c = _step_operand(op, "c", c, shape, dtype)
    h0 = _optional_state(op, "h0", h0, batch, hidden, dtype)
    c0 = _optional_state(op, "c0", c0, batch, hidden, dtype)
    if grad_h is not None:
        grad_h = _step_operand(op, "grad_h", grad_h, shape, dtype)
    grad_final_h = _optional_state(op, "grad_final_h", grad_final_h, batch, hidden, dtype)
    grad_final_c = _optional_state(op, "grad_final_c", grad_final_c, batch, hidden, dtype)
    grad_h0 = np.empty((batch, hidden), dtype=dtype) if h0 is not None and needs_grad_h0 else None
    grad_c0 = np.empty((batch, hidden), dtype=dtype) if needs_grad_c0 else None
    return (c, h0, np.zeros((batch, hidden), dtype=dtype) if c0 is None else c0, grad_h, grad_final_h,
            grad_final_c, grad_h0, grad_c0)


def _lstm_sequence_backward_c(saved, c, h0, c0, grad_h, grad_final_h, grad_final_c, weight_hh, grad_gates, grad_h0,
                              grad_c0):
    steps, batch, hidden = c.shape
    if steps and batch and hidden:
        work = np.empty((4, batch, hidden), dtype=c.dtype)
        _LSTM_SEQUENCE_BACKWARD[c.dtype](*pointers(saved, c, h0, c0, grad_h, grad_final_h, grad_final_c, weight_hh,
                                                   work, grad_gates, grad_h0, grad_c0), steps, batch, hidden)
    else:
        for grad, final in ((grad_h0, grad_final_h), (grad_c0, grad_final_c)):
            if grad is not None:
                grad[...] = 0 if final is None else final
    return grad_gates, grad_h0, grad_c0


def _lstm_sequence_backward_numpy(saved, c, h0, c0, grad_h, grad_final_h, grad_final_c, weight_hh, grad_gates,
                                  grad_h0, grad_c0):
    """The reference: the LSTM cell's reference backward and numpy's matmul, step after
    step from the last."""
    zeros = np.zeros(c.shape[1:], dtype=c.dtype)
    carry = zeros if grad_final_h is None else grad_final_h
    carry_c = zeros if grad_final_c is None else grad_final_c
    for t in range(c.shape[0] - 1, -1, -1):
        incoming = carry if grad_h is None else carry + grad_h[t]
        grad_gates[t], carry_c = _lstm_cell_backward_numpy(saved[t], c[t - 1] if t else c0, incoming, carry_c)
        carry = np.matmul(grad_gates[t], weight_hh).astype(c.dtype, copy=False)
    if grad_h0 is not None:
        grad_h0[...] = carry
    if grad_c0 is not None:
        grad_c0[...] = carry_c
    return grad_gates, grad_h0, grad_c0


def lstm_layer_backward(saved, c, h0, c0, grad_h, grad_final_h, grad_final_c, weight_t, grad_gates_out=None,
                        grad_inputs_out=None, needs_grad_inputs=True, needs_grad_h0=True, needs_grad_c0=True,
                        needs_grad_bias=False):
    """lstm_sequence_backward of lstm_layer_forward that also gives the layer input's
    gradient, from the same product per step: [grad x_t | grad h_{t-1}] = grad_gates_t
    @ weight_t^T, and the biases' gradient, summed while each step's rows are in cache.
    weight_t [in + h, 4h] = [W_ih | W_hh]^T (lstm_layer_forward's); grad_inputs_out,
    optional, a C-contiguous [T, b, in] array to write into; the other arguments as in
    lstm_sequence_backward. Returns grad_gates [T, b, 4h], grad_inputs [T, b, in] (None
    unless needs_grad_inputs), grad_h0 (None when h0 is None or not needs_grad_h0),
    grad_c0 [b, h] (None unless needs_grad_c0) and grad_bias [4h] = the sum of grad_gates
    over steps and rows (None unless needs_grad_bias)."""
    op = "lstm_layer_backward"
    steps, batch, hidden, dtype, saved = _saved_sequence(op, saved, 5)
    weight_t, width = _layer_weight(op, weight_t, hidden, dtype)
    states = _lstm_backward_states(op, (steps, batch, hidden), dtype, c, h0, c0, grad_h, grad_final_h,
                                   grad_final_c, needs_grad_h0, needs_grad_c0)
    grad_gates = _step_output(op, "grad_gates_out", grad_gates_out, (steps, batch, 4 * hidden), dtype)
    grad_inputs = (_step_output(op, "grad_inputs_out", grad_inputs_out, (steps, batch, width), dtype)
                   if needs_grad_inputs else None)
    grad_bias = np.empty(4 * hidden, dtype=dtype) if needs_grad_bias else None
    c, h0, c0, grad_h, grad_final_h, grad_final_c, grad_h0, grad_c0 = states
    return dispatch(_lstm_layer_backward_c, _lstm_layer_backward_numpy, saved, c, h0, c0, grad_h, grad_final_h,
                    grad_final_c, weight_t, grad_gates, grad_inputs, grad_h0, grad_c0, grad_bias)


def _lstm_layer_backward_c(saved, c, h0, c0, grad_h, grad_final_h, grad_final_c, weight_t, grad_gates, grad_inputs,
                           grad_h0, grad_c0, grad_bias):
    steps, batch, hidden = c.shape
    width = weight_t.shape[0] - hidden
    if not (steps and batch and hidden and width):
        return _lstm_layer_backward_numpy(saved, c, h0, c0, grad_h, grad_final_h, grad_final_c, weight_t, grad_gates,
                                          grad_inputs, grad_h0, grad_c0, grad_bias)
    work = np.empty((4, batch, hidden), dtype=c.dtype)
    pointer = pointers(saved, c, h0, c0, grad_h, grad_final_h, grad_final_c, weight_t, work, grad_gates, grad_inputs,
                       grad_h0, grad_c0, grad_bias)
    status = _LSTM_LAYER_BACKWARD[c.dtype](*pointer[:8], width, *pointer[8:], steps, batch, hidden,
                                           *pointers(None, None, None, None, None), 0)
    if status != 0:  # (only without the weights' gradients: grad_gates is given, so never)
        raise RuntimeError("lstm_layer_backward: the C kernel refused its arguments (status %d)" % status)
    return grad_gates, grad_inputs, grad_h0, grad_c0, grad_bias


def _lstm_layer_backward_numpy(saved, c, h0, c0, grad_h, grad_final_h, grad_final_c, weight_t, grad_gates,
                               grad_inputs, grad_h0, grad_c0, grad_bias):
    """The reference: lstm_sequence_backward's reference, then grad x = grad_gates W_ih
    and the bias gradient as a sum."""
    width = weight_t.shape[0] - c.shape[2]
    _lstm_sequence_backward_numpy(saved, c, h0, c0, grad_h, grad_final_h, grad_final_c, weight_t[width:].T,
                                  grad_gates, grad_h0, grad_c0)
    if grad_inputs is not None:
        grad_inputs[...] = np.matmul(grad_gates, weight_t[:width].T)
    if grad_bias is not None:
        grad_bias[...] = grad_gates.sum(axis=(0, 1))
    return grad_gates, grad_inputs, grad_h0, grad_c0, grad_bias


def _layer_weight(op, weight_t, hidden, dtype):
    """(weight_t as the C kernels read it, the input width) of an LSTM layer's
    weight_t = [W_ih | W_hh]^T [in + h, 4h]; ValueError for another shape."""
    check_array(op, "weight_t", weight_t, 2)
    if weight_t.shape[1] != 4 * hidden or weight_t.shape[0] < hidden:
        raise ValueError("%s: got weight_t %s for hidden size %d, expected [input_width + %d, %d]"
                         % (op, weight_t.shape, hidden, hidden, 4 * hidden))
    return _step_operand(op, "weight_t", weight_t, weight_t.shape, dtype), weight_t.shape[0] - hidden


def lstm_layer_scratch_size(steps, batch, hidden, input_width, dtype):
    """Elements of the scratch (a flat array of dtype) that lstm_layer_gradients needs
    for these sizes at the SIMD level in force: the weights' product's operands, packed."""
    dtype = np.dtype(dtype)
    if dtype not in FLOAT_DTYPES:
        raise TypeError("lstm_layer_scratch_size: got dtype %s, expected float32 or float64" % dtype)
    return int(_LSTM_LAYER_WEIGHT_SCRATCH[dtype](steps, batch, hidden, input_width))


def lstm_layer_gradients(saved, c, h, inputs, h0, c0, grad_h, grad_final_h, grad_final_c, weight_t,
                         grad_inputs_out=None, scratch=None, needs_grad_inputs=True, needs_grad_h0=True,
                         needs_grad_c0=True, needs_grad_bias=False, needs_grad_weight_ih=True,
                         needs_grad_weight_hh=True):
    """Every gradient of lstm_layer_forward in one call: lstm_layer_backward's, plus the
    weights' grad W_ih = sum_t grad_gates_t^T x_t [4h, in] and grad W_hh = sum_t
    grad_gates_t^T h_{t-1} [4h, h]. The steps write each grad_gates row straight into
    the packed operand of the weights' product (which then packs nothing), and
    grad_gates itself never goes to memory.

    saved, c, h [T, b, .] are lstm_layer_forward's results (h its states), inputs [T,
    b, in] its input; the other arguments as in lstm_layer_backward. scratch, optional:
    a flat array of at least lstm_layer_scratch_size(...) elements of the dtype to work
    in (a layer's reusable buffer; a new one when None or too small). Returns
    (grad_inputs, grad_h0, grad_c0, grad_bias, grad_weight_ih, grad_weight_hh), each
    None where not wanted (as lstm_layer_backward's)."""
    op = "lstm_layer_gradients"
    steps, batch, hidden, dtype, saved = _saved_sequence(op, saved, 5)
    weight_t, width = _layer_weight(op, weight_t, hidden, dtype)
    states = _lstm_backward_states(op, (steps, batch, hidden), dtype, c, h0, c0, grad_h, grad_final_h,
                                   grad_final_c, needs_grad_h0, needs_grad_c0)
    h = _step_operand(op, "h", h, (steps, batch, hidden), dtype)
    inputs = _step_operand(op, "inputs", inputs, (steps, batch, width), dtype)
    grad_inputs = (_step_output(op, "grad_inputs_out", grad_inputs_out, (steps, batch, width), dtype)
                   if needs_grad_inputs else None)
    grad_bias = np.empty(4 * hidden, dtype=dtype) if needs_grad_bias else None
    grad_weight_ih = np.empty((4 * hidden, width), dtype=dtype) if needs_grad_weight_ih else None
    grad_weight_hh = np.empty((4 * hidden, hidden), dtype=dtype) if needs_grad_weight_hh else None
    if scratch is not None and not (isinstance(scratch, np.ndarray) and scratch.ndim == 1 and scratch.dtype == dtype
                                    and scratch.flags.c_contiguous and scratch.flags.writeable):
        raise ValueError("%s: scratch must be a writeable contiguous 1-D %s array, got %s"
                         % (op, dtype, (scratch.shape, scratch.dtype) if isinstance(scratch, np.ndarray)
                            else type(scratch).__name__))
    c, h0, c0, grad_h, grad_final_h, grad_final_c, grad_h0, grad_c0 = states
    return dispatch(_lstm_layer_gradients_c, _lstm_layer_gradients_numpy, saved, c, h, inputs, h0, c0, grad_h,
                    grad_final_h, grad_final_c, weight_t, grad_inputs, grad_h0, grad_c0, grad_bias, grad_weight_ih,
                    grad_weight_hh, scratch)


def _lstm_layer_gradients_c(saved, c, h, inputs, h0, c0, grad_h, grad_final_h, grad_final_c, weight_t, grad_inputs,
                            grad_h0, grad_c0, grad_bias, grad_weight_ih, grad_weight_hh, scratch):
    steps, batch, hidden = c.shape
    width = weight_t.shape[0] - hidden
    if not (steps and batch and hidden and width) or (grad_weight_ih is None and grad_weight_hh is None):
        return _lstm_layer_gradients_numpy(saved, c, h, inputs, h0, c0, grad_h, grad_final_h, grad_final_c, weight_t,
                                           grad_inputs, grad_h0, grad_c0, grad_bias, grad_weight_ih, grad_weight_hh,
                                           scratch)
    size = _LSTM_LAYER_WEIGHT_SCRATCH[c.dtype](steps, batch, hidden, width)
    if scratch is None or scratch.size < size:
        scratch = np.empty(size, dtype=c.dtype)
    work = np.empty((4, batch, hidden), dtype=c.dtype)
    pointer = pointers(saved, c, h0, c0, grad_h, grad_final_h, grad_final_c, weight_t, work, None, grad_inputs,
                       grad_h0, grad_c0, grad_bias, inputs, h, grad_weight_ih, grad_weight_hh, scratch)
    status = _LSTM_LAYER_BACKWARD[c.dtype](*pointer[:8], width, *pointer[8:14], steps, batch, hidden, *pointer[14:],
                                           scratch.size)
    if status != 0:  # the scratch's size changed under us (SIMD level) or no memory: the reference
        return _lstm_layer_gradients_numpy(saved, c, h, inputs, h0, c0, grad_h, grad_final_h, grad_final_c, weight_t,
                                           grad_inputs, grad_h0, grad_c0, grad_bias, grad_weight_ih, grad_weight_hh,
                                           scratch)
    return grad_inputs, grad_h0, grad_c0, grad_bias, grad_weight_ih, grad_weight_hh


def _lstm_layer_gradients_numpy(saved, c, h, inputs, h0, c0, grad_h, grad_final_h, grad_final_c, weight_t,
                                grad_inputs, grad_h0, grad_c0, grad_bias, grad_weight_ih, grad_weight_hh, scratch):
    """The reference: lstm_layer_backward's, then the weights' gradients as numpy matmuls
    over all steps."""
    steps, batch, hidden = c.shape
    grad_gates = np.empty((steps, batch, 4 * hidden), dtype=c.dtype)
    _lstm_layer_backward_numpy(saved, c, h0, c0, grad_h, grad_final_h, grad_final_c, weight_t, grad_gates,
                               grad_inputs, grad_h0, grad_c0, grad_bias)
    flat = grad_gates.reshape(steps * batch, 4 * hidden)
    if grad_weight_ih is not None:
        grad_weight_ih[...] = np.matmul(flat.T, inputs.reshape(steps * batch, -1))
    if grad_weight_hh is not None:
        previous = np.concatenate([np.zeros((1, batch, hidden), dtype=c.dtype) if h0 is None else h0[None], h[:-1]])
        grad_weight_hh[...] = np.matmul(flat.T, previous.reshape(steps * batch, hidden))
    return grad_inputs, grad_h0, grad_c0, grad_bias, grad_weight_ih, grad_weight_hh


def gru_sequence_forward(x_gates, h0, weight_hh_t, bias_hh=None, h_out=None, saved_out=None):
    """A whole GRU layer over its sequence (gates r, z, n; see gru_cell_forward).

    x_gates [T, b, 3h] = x W_ih^T + b_ih for every step; h0 [b, h] or None (zeros);
    weight_hh_t [h, 3h] is W_hh^T, bias_hh [3h] or None. h_out [T, b, h] and saved_out
    [T, b, 4h], when given, are C-contiguous arrays to write into (a layer's reusable
    buffers). Returns h [T, b, h], every step's state, and saved [T, b, 4h], every
    step's r, z, n, gh_n for gru_sequence_backward."""
    op = "gru_sequence_forward"
    steps, batch, hidden, dtype = _sequence_shapes(op, x_gates, weight_hh_t, 3)
    x_gates = _step_operand(op, "x_gates", x_gates, (steps, batch, 3 * hidden), dtype)
    h0 = _optional_state(op, "h0", h0, batch, hidden, dtype)
    if bias_hh is not None:
        bias_hh = _step_operand(op, "bias_hh", bias_hh, (3 * hidden,), dtype)
    h = _step_output(op, "h_out", h_out, (steps, batch, hidden), dtype)
    saved = _step_output(op, "saved_out", saved_out, (steps, batch, 4 * hidden), dtype)
    return dispatch(_gru_sequence_forward_c, _gru_sequence_forward_numpy, x_gates, h0,
                    _step_operand(op, "weight_hh_t", weight_hh_t, weight_hh_t.shape, dtype), bias_hh, h, saved)


def _gru_sequence_forward_c(x_gates, h0, weight_hh_t, bias_hh, h, saved):
    steps, batch, hidden = h.shape
    if steps and batch and hidden:
        work = np.empty((batch, 3 * hidden), dtype=h.dtype)
        _GRU_SEQUENCE_FORWARD[h.dtype](*pointers(x_gates, h0, weight_hh_t, bias_hh, work, h, saved),
                                       steps, batch, hidden)
    return h, saved


def _gru_sequence_forward_numpy(x_gates, h0, weight_hh_t, bias_hh, h, saved):
    """The reference: the GRU cell's reference, step after step."""
    h_prev = np.zeros(h.shape[1:], dtype=h.dtype) if h0 is None else h0
    for t in range(h.shape[0]):
        hidden_gates = np.matmul(h_prev, weight_hh_t)
        if bias_hh is not None:
            hidden_gates = hidden_gates + bias_hh
        h[t], saved[t] = _gru_cell_forward_numpy(x_gates[t], hidden_gates.astype(h.dtype, copy=False), h_prev)
        h_prev = h[t]
    return h, saved


def gru_sequence_backward(saved, h, h0, grad_h, grad_final, weight_hh, grad_gi_out=None, grad_gh_out=None,
                          needs_grad_h0=True):
    """Backward of gru_sequence_forward through all its steps. saved [T, b, 4h] and h
    [T, b, h] are its results, h0 its initial state (None: zeros); grad_h [T, b, h] and
    grad_final [b, h] (either None: zeros) the gradients of every step's output and of
    the last state; weight_hh [3h, h]. grad_gi_out and grad_gh_out, optional, are
    C-contiguous [T, b, 3h] arrays to write into. Returns grad_gi [T, b, 3h] (of
    x_gates), grad_gh [T, b, 3h] (of h_{t-1} W_hh^T + b_hh, for the weight and bias
    gradients) and grad_h0 [b, h] (None when h0 is None or not needs_grad_h0)."""
    op = "gru_sequence_backward"
    steps, batch, hidden, dtype, saved = _saved_sequence(op, saved, 4)
    h = _step_operand(op, "h", h, (steps, batch, hidden), dtype)
    h0 = _optional_state(op, "h0", h0, batch, hidden, dtype)
    if grad_h is not None:
        grad_h = _step_operand(op, "grad_h", grad_h, (steps, batch, hidden), dtype)
    grad_final = _optional_state(op, "grad_final", grad_final, batch, hidden, dtype)
    weight_hh = _step_operand(op, "weight_hh", weight_hh, (3 * hidden, hidden), dtype)
    grad_gi = _step_output(op, "grad_gi_out", grad_gi_out, (steps, batch, 3 * hidden), dtype)
    grad_gh = _step_output(op, "grad_gh_out", grad_gh_out, (steps, batch, 3 * hidden), dtype)
    grad_h0 = np.empty((batch, hidden), dtype=dtype) if h0 is not None and needs_grad_h0 else None
    return dispatch(_gru_sequence_backward_c, _gru_sequence_backward_numpy,
                    saved, h, h0, grad_h, grad_final, weight_hh, grad_gi, grad_gh, grad_h0)


def _gru_sequence_backward_c(saved, h, h0, grad_h, grad_final, weight_hh, grad_gi, grad_gh, grad_h0):
    steps, batch, hidden = h.shape
    if steps and batch and hidden:
        work = np.empty((2, batch, hidden), dtype=h.dtype)
        _GRU_SEQUENCE_BACKWARD[h.dtype](*pointers(saved, h, h0, grad_h, grad_final, weight_hh, work, grad_gi,
                                                  grad_gh, grad_h0), steps, batch, hidden)
    elif grad_h0 is not None:
        grad_h0[...] = 0 if grad_final is None else grad_final
    return grad_gi, grad_gh, grad_h0


def _gru_sequence_backward_numpy(saved, h, h0, grad_h, grad_final, weight_hh, grad_gi, grad_gh, grad_h0):
    """The reference: the GRU cell's reference backward and numpy's matmul, step after
    step from the last."""
    carry = np.zeros(h.shape[1:], dtype=h.dtype) if grad_final is None else grad_final
    for t in range(h.shape[0] - 1, -1, -1):
        h_prev = h[t - 1] if t else (np.zeros_like(carry) if h0 is None else h0)
        incoming = carry if grad_h is None else carry + grad_h[t]
        grad_gi[t], grad_gh[t], direct = _gru_cell_backward_numpy(saved[t], h_prev, incoming)
        carry = (direct + np.matmul(grad_gh[t], weight_hh)).astype(h.dtype, copy=False)
    if grad_h0 is not None:
        grad_h0[...] = carry
    return grad_gi, grad_gh, grad_h0


def rnn_sequence_forward(x_gates, h0, weight_hh_t, nonlinearity="tanh", h_out=None):
    """A whole Elman RNN layer: h_t = act(x_gates_t + h_{t-1} W_hh^T), act tanh or relu.

    x_gates [T, b, h] = x W_ih^T + b_ih + b_hh for every step; h0 [b, h] or None
    (zeros); weight_hh_t [h, h] is W_hh^T; h_out, optional, a C-contiguous [T, b, h]
    array to write into. Returns h [T, b, h], every step's state (the backward needs
    nothing else)."""
    op = "rnn_sequence_forward"
    relu = _relu_flag(op, nonlinearity)
    steps, batch, hidden, dtype = _sequence_shapes(op, x_gates, weight_hh_t, 1)
    x_gates = _step_operand(op, "x_gates", x_gates, (steps, batch, hidden), dtype)
    h0 = _optional_state(op, "h0", h0, batch, hidden, dtype)
    h = _step_output(op, "h_out", h_out, (steps, batch, hidden), dtype)
    return dispatch(_rnn_sequence_forward_c, _rnn_sequence_forward_numpy, x_gates, h0,
                    _step_operand(op, "weight_hh_t", weight_hh_t, weight_hh_t.shape, dtype), relu, h)


def _rnn_sequence_forward_c(x_gates, h0, weight_hh_t, relu, h):
    steps, batch, hidden = h.shape
    if steps and batch and hidden:
        _RNN_SEQUENCE_FORWARD[h.dtype](*pointers(x_gates, h0, weight_hh_t, h), steps, batch, hidden, relu)
    return h


def _rnn_sequence_forward_numpy(x_gates, h0, weight_hh_t, relu, h):
    """The reference: numpy's matmul and np.tanh (or np.maximum), step after step."""
    h_prev = h0
    for t in range(h.shape[0]):
        pre = x_gates[t] if h_prev is None else x_gates[t] + np.matmul(h_prev, weight_hh_t)
        h[t] = np.maximum(pre, 0) if relu else np.tanh(pre)
        h_prev = h[t]
    return h


def rnn_sequence_backward(h, grad_h, grad_final, weight_hh, nonlinearity="tanh", grad_pre_out=None,
                          needs_grad_h0=True):
    """Backward of rnn_sequence_forward through all its steps. h [T, b, h] are its
    outputs (the nonlinearity's derivative comes from them: 1 - h^2, or h > 0);
    grad_h [T, b, h] and grad_final [b, h] (either None: zeros) the gradients of every
    step's output and of the last state; weight_hh [h, h]; grad_pre_out, optional, a
    C-contiguous [T, b, h] array to write into. Returns grad_pre [T, b, h] (of x_gates)
    and grad_h0 [b, h] (None unless needs_grad_h0)."""
    op = "rnn_sequence_backward"
    relu = _relu_flag(op, nonlinearity)
    if not isinstance(h, np.ndarray) or h.ndim != 3 or h.dtype not in FLOAT_DTYPES:
        raise ValueError("%s: h must be a float32 or float64 array [steps, batch, hidden], got %s" % (
            op, (h.shape, h.dtype) if isinstance(h, np.ndarray) else type(h).__name__))
    (steps, batch, hidden), dtype = h.shape, h.dtype
    h = _step_operand(op, "h", h, h.shape, dtype)
    if grad_h is not None:
        grad_h = _step_operand(op, "grad_h", grad_h, h.shape, dtype)
    grad_final = _optional_state(op, "grad_final", grad_final, batch, hidden, dtype)
    weight_hh = _step_operand(op, "weight_hh", weight_hh, (hidden, hidden), dtype)
    grad_pre = _step_output(op, "grad_pre_out", grad_pre_out, h.shape, dtype)
    grad_h0 = np.empty((batch, hidden), dtype=dtype) if needs_grad_h0 else None
    return dispatch(_rnn_sequence_backward_c, _rnn_sequence_backward_numpy,
                    h, grad_h, grad_final, weight_hh, relu, grad_pre, grad_h0)


def _rnn_sequence_backward_c(h, grad_h, grad_final, weight_hh, relu, grad_pre, grad_h0):
    steps, batch, hidden = h.shape
    if steps and batch and hidden:
        work = np.empty((batch, hidden), dtype=h.dtype)
        _RNN_SEQUENCE_BACKWARD[h.dtype](*pointers(h, grad_h, grad_final, weight_hh, work, grad_pre, grad_h0),
                                        steps, batch, hidden, relu)
    elif grad_h0 is not None:
        grad_h0[...] = 0 if grad_final is None else grad_final
    return grad_pre, grad_h0


def _rnn_sequence_backward_numpy(h, grad_h, grad_final, weight_hh, relu, grad_pre, grad_h0):
    """The reference: the chain rule through h_t = act(pre_t), step after step from the last."""
    carry = np.zeros(h.shape[1:], dtype=h.dtype) if grad_final is None else grad_final
    for t in range(h.shape[0] - 1, -1, -1):
        incoming = carry if grad_h is None else carry + grad_h[t]
        grad_pre[t] = incoming * (h[t] > 0) if relu else incoming * (1 - h[t] * h[t])
        carry = np.matmul(grad_pre[t], weight_hh).astype(h.dtype, copy=False)
    if grad_h0 is not None:
        grad_h0[...] = carry
    return grad_pre, grad_h0


# ---- the input projection of a recurrent layer --------------------------------------------

def projection_forward(x, weight, bias=None, out=None):
    """x [n, in] @ weight [m, in]^T + bias [m] (or None) -> [n, m], the input projection
    of a recurrent layer. out, when given, is a C-contiguous [n, m] array to write into
    (a layer reuses one from call to call). The bias is written first and the GEMM adds
    the product to it (beta = 1): one pass over the result, not a GEMM and then another."""
    op = "projection_forward"
    check_array(op, "x", x, 2)
    check_array(op, "weight", weight, 2)
    (n, width), m, dtype = x.shape, weight.shape[0], weight.dtype
    if dtype not in FLOAT_DTYPES or x.dtype != dtype or weight.shape[1] != width:
        raise ValueError("%s: got x %s %s and weight %s %s, expected x [n, %d] of the weight's float dtype"
                         % (op, x.shape, x.dtype, weight.shape, weight.dtype, weight.shape[1]))
    if bias is not None:
        bias = _step_operand(op, "bias", bias, (m,), dtype)
    out = _step_output(op, "out", out, (n, m), dtype)
    return dispatch(_projection_forward_c, _projection_forward_numpy, x, weight, bias, out)


def _projection_forward_c(x, weight, bias, out):
    (n, width), m = x.shape, weight.shape[0]
    if n == 0 or m == 0 or width == 0:
        return _projection_forward_numpy(x, weight, bias, out)
    x, weight = c_array(x), c_array(weight)
    if bias is not None:
        out[...] = bias
    x_pointer, weight_pointer, out_pointer = pointers(x, weight, out)
    _GEMM[out.dtype](0, 1, n, m, width, 1.0, x_pointer, width, weight_pointer, width,
                     0.0 if bias is None else 1.0, out_pointer, m)
    return out


def _projection_forward_numpy(x, weight, bias, out):
    """The reference: numpy's matmul with the transposed weight, plus the bias."""
    out[...] = np.matmul(x, weight.T)
    if bias is not None:
        out += bias
    return out
