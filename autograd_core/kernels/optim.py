"""Optimizer family (csrc/optim*.c): one step of Adam, SGD (momentum, Nesterov, dampening,
weight decay) or RMSprop (centered, momentum) over many parameters in one C call, and the
numpy reference those calls reproduce bit for bit.

A step takes lists, one entry per parameter: the parameters (updated in place), their
gradients, their state buffers (updated in place), and the hyperparameters of the
group. nn/optim.py calls these; its update rules are documented there.

The C path runs a parameter when it is exact to the reference and safe to hand to C: the
parameter, its gradient and its buffers are C-contiguous arrays of one float dtype, the
parameter and buffers writeable, and every hyperparameter is a Python number (numpy
rounds a Python float to the array's dtype before it computes, NEP 50; a numpy float64
scalar against a float32 array would compute in float64, which C does not copy).
Anything else (a strided view, a float64 gradient for a float32 parameter, ...) and the
'numpy' backend run the reference, one parameter at a time.

The reference is a dozen elementwise numpy passes; on a C-contiguous parameter they run
chunk by chunk (CHUNK elements), each chunk through all passes, so that it stays in
cache. The C kernel does the same operations per element, in the same order, each
rounded to the dtype, in one pass over memory on all threads.

Pass a StepCache to keep the C pointer tables and the reference's scratch arrays across
steps: they are rebuilt only when a parameter or state array is not the same object as
last time (a parameter's .data was replaced, load_state_dict replaced the buffers).
"""
import math

import numpy as np

from . import runtime
from .runtime import FLOAT_DTYPES, by_dtype

# Elements per chunk of the reference: 64 Ki float32 is 256 KiB per array, so the
# handful of arrays one chunk touches stays in L2 cache across the update's passes.
CHUNK = 1 << 16

_ADAM = by_dtype("ag_adam_step_f32", "ag_adam_step_f64")
_SGD = by_dtype("ag_sgd_step_f32", "ag_sgd_step_f64")
_RMSPROP = by_dtype("ag_rmsprop_step_f32", "ag_rmsprop_step_f64")
_POINTER_ARRAY = {FLOAT_DTYPES[0]: "float *[]", FLOAT_DTYPES[1]: "double *[]"}
_ELEMENT = {FLOAT_DTYPES[0]: "float[]", FLOAT_DTYPES[1]: "double[]"}
_PYTHON_NUMBERS = (float, int, bool)


# ---- the numpy reference: one parameter, or one chunk of it ---------------------------------

def _effective_grad(data, grad, weight_decay, work):
    """grad + weight_decay * data. Without weight decay this is ``grad`` itself, which
    callers must only read: it belongs to the parameter."""
    if not weight_decay:
        return grad
    np.multiply(data, weight_decay, out=work)
    np.add(work, grad, out=work)
    return work


def adam_update(data, grad, exp_avg, exp_avg_sq, work, step, lr, betas, eps, weight_decay):
    """The reference Adam update of ``data`` in place (all arrays one shape; ``work`` is
    two scratch arrays of it); ``step`` counts this parameter's steps, this one included."""
    beta1, beta2 = betas
    g = _effective_grad(data, grad, weight_decay, work[0])
    scratch = work[1]
    # exp_avg = beta1 * exp_avg + (1 - beta1) * g
    np.multiply(exp_avg, beta1, out=exp_avg)
    np.multiply(g, 1.0 - beta1, out=scratch)
    np.add(exp_avg, scratch, out=exp_avg)
    # exp_avg_sq = beta2 * exp_avg_sq + (1 - beta2) * g * g
    np.multiply(exp_avg_sq, beta2, out=exp_avg_sq)
    np.multiply(g, g, out=scratch)
    np.multiply(scratch, 1.0 - beta2, out=scratch)
    np.add(exp_avg_sq, scratch, out=exp_avg_sq)
    # p -= lr / bc1 * exp_avg / (sqrt(exp_avg_sq) / sqrt(bc2) + eps)
    step_size, bias2_scale = _adam_scales(step, lr, betas)
    np.sqrt(exp_avg_sq, out=scratch)
    np.multiply(scratch, bias2_scale, out=scratch)
    np.add(scratch, eps, out=scratch)
    np.divide(exp_avg, scratch, out=scratch)
    np.multiply(scratch, step_size, out=scratch)
    np.subtract(data, scratch, out=data)


def _adam_scales(step, lr, betas):
    """(lr / (1 - beta1^step), 1 / sqrt(1 - beta2^step)), as Python floats: the two
    per-parameter factors of the update, computed once for reference and C alike."""
    bias_correction1 = 1.0 - betas[0] ** step
    bias_correction2 = 1.0 - betas[1] ** step
    return lr / bias_correction1, 1.0 / math.sqrt(bias_correction2)


def sgd_update(data, grad, momentum_buffer, work, fresh, lr, momentum, dampening, weight_decay, nesterov):
    """The reference SGD update of ``data`` in place; ``momentum_buffer`` is None without
    momentum, ``fresh`` says it starts (at the gradient, undamped) on this step."""
    g = _effective_grad(data, grad, weight_decay, work[0])
    if momentum:
        buffer = momentum_buffer
        if fresh:  # PyTorch starts the buffer at the first gradient, undamped
            np.copyto(buffer, g)
        else:
            np.multiply(buffer, momentum, out=buffer)
            if dampening:
                np.multiply(g, 1.0 - dampening, out=work[1])
                np.add(buffer, work[1], out=buffer)
            else:
                np.add(buffer, g, out=buffer)
        if nesterov:
            np.multiply(buffer, momentum, out=work[1])
            np.add(work[1], g, out=work[1])
            g = work[1]
        else:
            g = buffer
    np.multiply(g, lr, out=work[1])
    np.subtract(data, work[1], out=data)


def rmsprop_update(data, grad, square_avg, grad_avg, momentum_buffer, work, lr, alpha, eps, weight_decay,
                   momentum, centered):
    """The reference RMSprop update of ``data`` in place; ``grad_avg`` is None unless
    centered, ``momentum_buffer`` None without momentum."""
    g = _effective_grad(data, grad, weight_decay, work[0])
    scratch = work[1]
    # square_avg = alpha * square_avg + (1 - alpha) * g * g
    np.multiply(square_avg, alpha, out=square_avg)
    np.multiply(g, g, out=scratch)
    np.multiply(scratch, 1.0 - alpha, out=scratch)
    np.add(square_avg, scratch, out=square_avg)
    if centered:
        np.multiply(grad_avg, alpha, out=grad_avg)
        np.multiply(g, 1.0 - alpha, out=scratch)
        np.add(grad_avg, scratch, out=grad_avg)
        np.multiply(grad_avg, grad_avg, out=scratch)
        np.subtract(square_avg, scratch, out=scratch)
        np.sqrt(scratch, out=scratch)
    else:
        np.sqrt(square_avg, out=scratch)
    np.add(scratch, eps, out=scratch)
    np.divide(g, scratch, out=scratch)  # g / avg
    if momentum:
        np.multiply(momentum_buffer, momentum, out=momentum_buffer)
        np.add(momentum_buffer, scratch, out=momentum_buffer)
        np.multiply(momentum_buffer, lr, out=scratch)
    else:
        np.multiply(scratch, lr, out=scratch)
    np.subtract(data, scratch, out=data)


def _reference(update, data, grad, buffers, cache, *hyperparameters):
    """update(data, grad, *buffers, work, *hyperparameters) over one parameter: chunk by
    chunk when it is C-contiguous (buffers always are: the optimizer makes them so), whole
    otherwise (a strided view, rare)."""
    if not data.flags.c_contiguous:
        update(data, grad, *buffers, [np.empty_like(data), np.empty_like(data)], *hyperparameters)
        return
    size = data.size
    flat_data, flat_grad = data.reshape(-1), grad.reshape(-1)
    flat_buffers = [None if buffer is None else buffer.reshape(-1) for buffer in buffers]
    work = (cache or StepCache()).work(data.dtype)
    for low in range(0, size, CHUNK):
        high = min(low + CHUNK, size)
        update(flat_data[low:high], flat_grad[low:high],
               *[None if buffer is None else buffer[low:high] for buffer in flat_buffers],
               [w[:high - low] for w in work], *hyperparameters)


# ---- the cache of one optimizer group ------------------------------------------------------

class _Tables:
    """The C arrays of one fused call: a pointer table per array role (parameters, then
    state buffers), the sizes, and per-step slots (gradients, per-parameter numbers).
    Holds the arrays it points into, so those outlive it."""

    def __init__(self, dtype, columns):
        self.arrays = [array for column in columns if column is not None for array in column]
        self.layout = tuple(None if column is None else len(column) for column in columns)
        count = len(columns[0])
        pointer_type, element = _POINTER_ARRAY[dtype], _ELEMENT[dtype]
        ffi = runtime.ffi
        self.columns = [ffi.NULL if column is None else
                        ffi.new(pointer_type, [ffi.from_buffer(element, array, require_writable=True)
                                               for array in column])
                        for column in columns]
        self.sizes = ffi.new("int64_t[]", [array.size for array in columns[0]])
        self.grads = ffi.new(pointer_type, count)
        self.first = ffi.new("double[]", count)
        self.second = ffi.new("double[]", count)
        self.flags = ffi.new("int[]", count)
        self.element = element
        self.overlapping = _overlapping(self.arrays)

    def matches(self, columns):
        if tuple(None if column is None else len(column) for column in columns) != self.layout:
            return False
        arrays = [array for column in columns if column is not None for array in column]
        return all(new is old for new, old in zip(arrays, self.arrays))

    def load_grads(self, grads):
        from_buffer, element, table = runtime.ffi.from_buffer, self.element, self.grads
        for index, grad in enumerate(grads):
            table[index] = from_buffer(element, grad)


def _overlapping(arrays):
    """True when two of the arrays share memory (two parameters viewing one buffer, say):
    the reference updates them one after the other, C's threads might at once."""
    spans = sorted((array.__array_interface__["data"][0], array.nbytes) for array in arrays if array.nbytes)
    return any(start < previous + size for (previous, size), (start, _) in zip(spans, spans[1:]))


class StepCache:
    """What one optimizer group's steps reuse: the C pointer tables by dtype (rebuilt
    when any parameter or state array is a different object than last time) and the
    reference's two chunk-sized scratch arrays by dtype."""

    def __init__(self):
        self._tables = {}
        self._work = {}

    def tables(self, dtype, columns):
        """The _Tables for these arrays (lists by role; None for an absent role)."""
        tables = self._tables.get(dtype)
        if tables is None or not tables.matches(columns):
            tables = self._tables[dtype] = _Tables(dtype, columns)
        return tables

    def work(self, dtype):
        """Two CHUNK-sized scratch arrays of dtype."""
        work = self._work.get(dtype)
        if work is None:
            work = self._work[dtype] = [np.empty(CHUNK, dtype=dtype), np.empty(CHUNK, dtype=dtype)]
        return work


# ---- which parameters go to C --------------------------------------------------------------

def _exact_in_c(hyperparameters):
    """True when every hyperparameter is a Python number (see the module docstring)."""
    return all(type(value) in _PYTHON_NUMBERS for value in hyperparameters)


def _by_dtype_for_c(params, grads, buffer_lists):
    """({dtype: [indices]} of the parameters C can update, [indices] of the others)."""
    fused, others = {}, []
    for index, (data, grad) in enumerate(zip(params, grads)):
        dtype = data.dtype
        ok = (dtype in FLOAT_DTYPES and grad.dtype == dtype and data.flags.c_contiguous
              and data.flags.writeable and grad.flags.c_contiguous)
        if ok:
            for buffers in buffer_lists:
                buffer = buffers[index]
                if not (buffer.dtype == dtype and buffer.flags.c_contiguous and buffer.flags.writeable):
                    ok = False
                    break
        if ok:
            fused.setdefault(dtype, []).append(index)
        else:
            others.append(index)
    return fused, others


def _check_lists(op, params, grads, **buffer_lists):
    """Every list (None: an absent role) as long as params, of float arrays shaped like
    their parameter; TypeError or ValueError naming op and the parameter otherwise."""
    count = len(params)
    for name, values in (("params", params), ("grads", grads)) + tuple(buffer_lists.items()):
        if values is None:
            continue
        if len(values) != count:
            raise ValueError("%s: got %d %s for %d parameters, expected one per parameter"
                             % (op, len(values), name, count))
        for index, (data, value) in enumerate(zip(params, values)):
            if not isinstance(value, np.ndarray) or value.dtype.kind != "f":
                raise TypeError("%s: got %s[%d] of type %s%s, expected a float numpy array"
                                % (op, name, index, type(value).__name__,
                                   " (dtype %s)" % value.dtype if isinstance(value, np.ndarray) else ""))
            if value.shape != data.shape:
                raise ValueError("%s: got %s[%d] with shape %s for a parameter of shape %s, expected equal "
                                 "shapes" % (op, name, index, value.shape, data.shape))


def _pick(values, indices):
    return None if values is None else [values[i] for i in indices]


def _run(c_call, reference, params, grads, buffer_lists, hyperparameters, cache):
    """The shared body of a step: C for the parameters it can take (by dtype, one call
    each), the reference for the rest. reference(index) runs one parameter;
    c_call(dtype, indices, tables) one C call."""
    if runtime.get_backend() == "c" and _exact_in_c(hyperparameters):
        present = [buffers for buffers in buffer_lists if buffers is not None]
        fused, others = _by_dtype_for_c(params, grads, present)
        cache = cache or StepCache()
        for dtype, indices in fused.items():
            columns = [_pick(params, indices)] + [_pick(buffers, indices) for buffers in buffer_lists]
            tables = cache.tables(dtype, columns)
            if tables.overlapping:
                others += indices
                continue
            tables.load_grads([grads[i] for i in indices])
            c_call(dtype, indices, tables)
    else:
        others = range(len(params))
    for index in others:
        reference(index)


# ---- the steps --------------------------------------------------------------------------------

def adam_step(params, grads, exp_avgs, exp_avg_sqs, steps, lr, betas, eps, weight_decay, cache=None):
    """One Adam step over every parameter (lists of equally shaped arrays per parameter:
    ``params`` and the state ``exp_avgs``, ``exp_avg_sqs`` updated in place; ``steps``
    each parameter's step count, this step included). See nn.optim.Adam."""
    op = "adam_step"
    _check_lists(op, params, grads, exp_avgs=exp_avgs, exp_avg_sqs=exp_avg_sqs)
    beta1, beta2 = betas

    def c_call(dtype, indices, tables):
        for slot, index in enumerate(indices):
            tables.first[slot], tables.second[slot] = _adam_scales(steps[index], lr, betas)
        first, second = tables.columns[1], tables.columns[2]
        _ADAM[dtype](len(indices), tables.sizes, tables.columns[0], tables.grads, first, second,
                     tables.first, tables.second, beta1, beta2, eps, weight_decay)

    def reference(index):
        _reference(adam_update, params[index], grads[index], [exp_avgs[index], exp_avg_sqs[index]], cache,
                   steps[index], lr, betas, eps, weight_decay)

    _run(c_call, reference, params, grads, [exp_avgs, exp_avg_sqs], (lr, beta1, beta2, eps, weight_decay),
         cache)


def sgd_step(params, grads, momentum_buffers, fresh, lr, momentum, dampening, weight_decay, nesterov, cache=None):
    """One SGD step over every parameter. ``momentum_buffers`` is None when momentum is 0,
    else one buffer per parameter (updated in place); ``fresh[i]`` is true on buffer i's
    first step, when it starts at the gradient. See nn.optim.SGD."""
    op = "sgd_step"
    if momentum and momentum_buffers is None:
        raise ValueError("%s: got momentum %r and no momentum_buffers, expected one buffer per parameter"
                         % (op, momentum))
    buffers = momentum_buffers if momentum else None
    _check_lists(op, params, grads, momentum_buffers=buffers)

    def c_call(dtype, indices, tables):
        for slot, index in enumerate(indices):
            tables.flags[slot] = bool(fresh[index])
        _SGD[dtype](len(indices), tables.sizes, tables.columns[0], tables.grads, tables.columns[1], tables.flags,
                    lr, momentum, dampening, weight_decay, bool(nesterov))

    def reference(index):
        _reference(sgd_update, params[index], grads[index], [None if buffers is None else buffers[index]], cache,
                   fresh[index], lr, momentum, dampening, weight_decay, nesterov)

    _run(c_call, reference, params, grads, [buffers], (lr, momentum, dampening, weight_decay), cache)


def rmsprop_step(params, grads, square_avgs, grad_avgs, momentum_buffers, lr, alpha, eps, weight_decay, momentum,
                 centered, cache=None):
    """One RMSprop step over every parameter. ``grad_avgs`` is used (and required) only
    when centered, ``momentum_buffers`` only when momentum is not 0. See nn.optim.RMSprop."""
    op = "rmsprop_step"
    if centered and grad_avgs is None:
        raise ValueError("%s: got centered=True and no grad_avgs, expected one per parameter" % op)
    if momentum and momentum_buffers is None:
        raise ValueError("%s: got momentum %r and no momentum_buffers, expected one buffer per parameter"
                         % (op, momentum))
    grad_avgs = grad_avgs if centered else None
    buffers = momentum_buffers if momentum else None
    _check_lists(op, params, grads, square_avgs=square_avgs, grad_avgs=grad_avgs, momentum_buffers=buffers)

    def c_call(dtype, indices, tables):
        first, second, third = tables.columns[1:4]
        _RMSPROP[dtype](len(indices), tables.sizes, tables.columns[0], tables.grads, first, second, third,
                        lr, alpha, eps, weight_decay, momentum, bool(centered))

    def reference(index):
        _reference(rmsprop_update, params[index], grads[index],
                   [square_avgs[index], None if grad_avgs is None else grad_avgs[index],
                    None if buffers is None else buffers[index]], cache,
                   lr, alpha, eps, weight_decay, momentum, centered)

    _run(c_call, reference, params, grads, [square_avgs, grad_avgs, buffers],
         (lr, alpha, eps, weight_decay, momentum), cache)
