"""The functional API: derivatives of Python functions of Tensors, as PyTorch's
``torch.autograd.functional`` (vjp, jvp, jacobian, hessian, hvp, vhp) and ``torch.func``
(grad, value_and_grad with argnums).

    import autograd_core as ag
    from autograd_core import func

    def f(x):
        return (x.tanh() * x).sum()

    x = ag.randn(3, dtype="float64")
    func.hessian(f, x)                     # [3, 3]
    func.hvp(f, x, ag.ones(3, dtype="float64"))[1]
    func.grad(f)(x)                        # the gradient, a function of x
    func.grad(func.grad(lambda x: x.sin().sum()))  # not allowed: grad needs a scalar; use hessian

All of them run on the engine's reverse mode (autograd_core.grad with create_graph), so
they work for every op that supports higher-order gradients. ``jvp`` uses the
double-vjp trick: the vjp u -> J^T u is linear in u, so its own vjp with the tangent v
is J v; it costs two reverse passes and no forward-mode rule per op.

The inputs are never changed. With create_graph=False (the default) the results are
constants (no graph); with create_graph=True they stay differentiable with respect to
inputs that require grad, so these compose (a hessian of a function that uses jacobian)."""
import numpy as np

from .autograd import grad as _grad
from .function import _Alias
from .grad_mode import enable_grad
from .ops.shape import stack
from .tensor import Tensor

__all__ = ["vjp", "jvp", "jacobian", "hessian", "hvp", "vhp", "grad", "value_and_grad"]


def _as_inputs(op, inputs):
    """(tuple of Tensors, whether a single Tensor was given)."""
    if isinstance(inputs, Tensor):
        return (inputs,), True
    if isinstance(inputs, (tuple, list)) and inputs and all(isinstance(x, Tensor) for x in inputs):
        return tuple(inputs), False
    raise TypeError("%s: inputs must be a Tensor or a non-empty tuple of Tensors, got %s"
                    % (op, type(inputs).__name__))


def _track(op, inputs, create_graph):
    """Inputs the function will be differentiated with respect to: a float input that
    requires grad enters through an alias (so that with create_graph the results keep
    their graph to it), any other a fresh leaf copy that requires grad."""
    tracked = []
    for index, x in enumerate(inputs):
        if x.dtype.kind != "f":
            raise TypeError("%s: inputs[%d] has dtype %s; derivatives need float inputs" % (op, index, x.dtype))
        if create_graph and x.requires_grad:
            tracked.append(_Alias.apply(x))
        else:
            tracked.append(Tensor(x.data, requires_grad=True))
    return tracked


def _outputs(op, value):
    if isinstance(value, Tensor):
        return (value,), True
    if isinstance(value, (tuple, list)) and value and all(isinstance(v, Tensor) for v in value):
        return tuple(value), False
    raise TypeError("%s: the function must return a Tensor or a tuple of Tensors, got %s"
                    % (op, type(value).__name__))


def _gradients(outputs, inputs, grad_outputs, create_graph):
    """grad of outputs wrt inputs, zeros where an input is unused or an output has no graph."""
    pairs = [(o, g) for o, g in zip(outputs, grad_outputs) if o.requires_grad]
    if not pairs:
        return tuple(Tensor(np.zeros_like(x.data)) for x in inputs)
    # (retain_graph: jacobian runs one pass per row over the same graph; it is freed with it)
    return _grad([o for o, _ in pairs], list(inputs), [g for _, g in pairs], retain_graph=True,
                 create_graph=create_graph, allow_unused=True, materialize_grads=True)


def _result(values, single, create_graph):
    values = tuple(v if create_graph else v.detach() for v in values)
    return values[0] if single else values


def _check_like(op, name, given, expected):
    given_t, _ = _as_inputs(op, given) if not isinstance(given, Tensor) else ((given,), True)
    if len(given_t) != len(expected):
        raise ValueError("%s: got %d tensors in %s, expected %d (one per %s)"
                         % (op, len(given_t), name, len(expected), "output" if name == "v" else "input"))
    for index, (g, e) in enumerate(zip(given_t, expected)):
        if g.shape != e.shape:
            raise RuntimeError("%s: %s[%d] has shape %s, expected %s" % (op, name, index, g.shape, e.shape))
    return given_t


def vjp(func, inputs, v=None, create_graph=False):
    """(func(inputs), v^T J): the vector-Jacobian product, shaped like inputs. v is one
    Tensor per output (may be None for a one-element output)."""
    inputs_t, single = _as_inputs("vjp", inputs)
    with enable_grad():
        tracked = _track("vjp", inputs_t, create_graph)
        outputs, single_out = _outputs("vjp", func(*tracked))
        if v is None:
            for o in outputs:
                if o.data.size != 1:
                    raise RuntimeError("vjp: v may be None only when the function's output has one element; it "
                                       "returned a tensor of shape %s" % (o.shape,))
            v_t = tuple(Tensor(np.ones_like(o.data)) for o in outputs)
        else:
            v_t = _check_like("vjp", "v", v, outputs)
        found = _gradients(outputs, tracked, v_t, create_graph)
    return _result(outputs, single_out, create_graph), _result(found, single, create_graph)


def jvp(func, inputs, v=None, create_graph=False):
    """(func(inputs), J v): the Jacobian-vector product, shaped like the output, by the
    double-vjp trick (two reverse passes; see the module docstring). v is one Tensor
    per input (may be None for a one-element input)."""
    inputs_t, single = _as_inputs("jvp", inputs)
    if v is None:
        if any(x.data.size != 1 for x in inputs_t):
            raise RuntimeError("jvp: v may be None only when the input has one element")
        v_t = tuple(Tensor(np.ones_like(x.data)) for x in inputs_t)
    else:
        v_t = _check_like("jvp", "v", v, inputs_t)
    with enable_grad():
        tracked = _track("jvp", inputs_t, create_graph)
        outputs, single_out = _outputs("jvp", func(*tracked))
        dummies = [Tensor(np.zeros_like(o.data), requires_grad=True) for o in outputs]
        # u -> J^T u, recorded: linear in u, so its vjp with v is J v
        vjps = _gradients(outputs, tracked, dummies, True)
        products = _gradients(vjps, dummies, v_t, create_graph)
    return _result(outputs, single_out, create_graph), _result(products, single_out, create_graph)


def jacobian(func, inputs, create_graph=False):
    """The Jacobian of func at inputs, row by row (one reverse pass per output element).

    For one input and one output: a Tensor of shape output.shape + input.shape. For a
    tuple of inputs: a tuple with one such Tensor per input; for a tuple of outputs, a
    tuple of those (jacobian[i][j]: output i with respect to input j), as in torch."""
    inputs_t, single = _as_inputs("jacobian", inputs)
    with enable_grad():
        tracked = _track("jacobian", inputs_t, create_graph)
        outputs, single_out = _outputs("jacobian", func(*tracked))
        rows = []
        for output in outputs:
            per_input = [[] for _ in tracked]
            for k in range(output.data.size):
                seed = np.zeros(output.data.size, dtype=output.dtype)
                seed[k] = 1
                found = _gradients((output,), tracked, (Tensor(seed.reshape(output.shape)),), create_graph)
                for j, g in enumerate(found):
                    per_input[j].append(g.reshape(-1) if create_graph else g.detach().reshape(-1))
            blocks = []
            for j, x in enumerate(tracked):
                if per_input[j]:
                    block = stack(per_input[j], 0).reshape(tuple(output.shape) + tuple(x.shape))
                else:  # an empty output: an empty Jacobian
                    block = Tensor(np.zeros(tuple(output.shape) + tuple(x.shape), dtype=x.dtype))
                blocks.append(block if create_graph else block.detach())
            rows.append(blocks[0] if single else tuple(blocks))
    return rows[0] if single_out else tuple(rows)


def hessian(func, inputs, create_graph=False):
    """The Hessian of a scalar-valued func at inputs: the Jacobian of its gradient. For
    one input, a Tensor of shape input.shape + input.shape; for a tuple, a tuple of
    tuples (hessian[i][j]: second derivative in inputs i and j), as in torch."""
    inputs_t, single = _as_inputs("hessian", inputs)

    def gradient(*xs):
        outputs, _ = _outputs("hessian", func(*xs))
        if len(outputs) != 1 or outputs[0].data.size != 1:
            raise RuntimeError("hessian: the function must return a single one-element Tensor, got %s"
                               % ", ".join(str(o.shape) for o in outputs))
        return _gradients(outputs, xs, (Tensor(np.ones_like(outputs[0].data)),), True)

    result = jacobian(gradient, inputs_t, create_graph)
    if single:
        return result[0][0]
    return result


def hvp(func, inputs, v, create_graph=False):
    """(func(inputs), H v) for a scalar-valued func: the Hessian-vector product by
    reverse-over-reverse (two backward passes, no Hessian built)."""
    inputs_t, single = _as_inputs("hvp", inputs)
    v_t = _check_like("hvp", "v", v, inputs_t)
    with enable_grad():
        tracked = _track("hvp", inputs_t, create_graph)
        outputs, _ = _outputs("hvp", func(*tracked))
        if len(outputs) != 1 or outputs[0].data.size != 1:
            raise RuntimeError("hvp: the function must return a single one-element Tensor, got %s"
                               % ", ".join(str(o.shape) for o in outputs))
        first = _gradients(outputs, tracked, (Tensor(np.ones_like(outputs[0].data)),), True)
        products = _gradients(first, tracked, v_t, create_graph)
    return _result(outputs, True, create_graph), _result(products, single, create_graph)


def vhp(func, inputs, v, create_graph=False):
    """(func(inputs), v^T H): equal to hvp, since a Hessian is symmetric."""
    return hvp(func, inputs, v, create_graph)


def _argnums(op, argnums, count):
    numbers = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    for n in numbers:
        if not isinstance(n, int) or not -count <= n < count:
            raise ValueError("%s: argnums %r is out of range for a call with %d positional arguments"
                             % (op, argnums, count))
    return tuple(n % count for n in numbers)


def value_and_grad(func, argnums=0, has_aux=False):
    """A function returning (func(*args), the gradient of func with respect to the
    arguments at argnums) for a func returning a one-element Tensor (or (Tensor, aux)
    with has_aux). argnums: an int gives one gradient, a tuple a tuple of them. The
    results stay differentiable, so grad transforms nest (grad(grad(f)) for scalar x)."""

    def wrapped(*args, **kwargs):
        numbers = _argnums("grad", argnums, len(args))
        args = list(args)
        with enable_grad():
            for n in numbers:
                if not isinstance(args[n], Tensor):
                    raise TypeError("grad: argument %d must be a Tensor to differentiate with respect to it, got %s"
                                    % (n, type(args[n]).__name__))
                (args[n],) = _track("grad", (args[n],), True)
            result = func(*args, **kwargs)
            aux = None
            if has_aux:
                if not (isinstance(result, tuple) and len(result) == 2):
                    raise TypeError("grad: with has_aux=True the function must return (output, aux)")
                result, aux = result
            if not isinstance(result, Tensor) or result.data.size != 1:
                raise RuntimeError("grad: the function must return a one-element Tensor, got %s"
                                   % (result.shape if isinstance(result, Tensor) else type(result).__name__,))
            found = _gradients((result,), [args[n] for n in numbers], (Tensor(np.ones_like(result.data)),), True)
        grads = found[0] if isinstance(argnums, int) else tuple(found)
        value = (result, aux) if has_aux else result
        return value, grads

    return wrapped


def grad(func, argnums=0, has_aux=False):
    """The gradient of func (returning a one-element Tensor) as a function of the same
    arguments, as torch.func.grad (see value_and_grad)."""
    both = value_and_grad(func, argnums, has_aux)

    def wrapped(*args, **kwargs):
        value, grads = both(*args, **kwargs)
        return (grads, value[1]) if has_aux else grads

    return wrapped
