"""gradcheck: compare backward's gradients with central finite differences in float64."""
import numpy as np

from .grad_mode import enable_grad, no_grad
from .tensor import Tensor


class GradcheckError(AssertionError):
    """Raised when an analytic gradient disagrees with the numeric one."""


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, seed=0):
    """Check the gradients of ``fn`` at ``inputs`` against central differences.

    fn(*inputs) returns a Tensor (or a tuple of Tensors) of any shape. Each float input
    Tensor with requires_grad=True is checked: it is copied to float64, and the
    gradient of sum(output * v), for a fixed random v, computed by backward is compared
    with (f(x + eps) - f(x - eps)) / (2 eps) element by element, signed values in the
    input's shape. An element passes when |analytic - numeric| <= atol + rtol * |numeric|;
    a NaN on either side fails.

    Returns True, or raises GradcheckError naming the input (its position in inputs),
    the element index, the analytic and numeric values of the worst mismatch, and how
    many elements fail.
    """
    inputs, checked = _float64_inputs("gradcheck", inputs)

    rng = np.random.default_rng(seed)
    weights = []

    def with_weights(outputs):
        """The outputs as a tuple, drawing a fixed random weight v for each on first sight."""
        outputs = outputs if isinstance(outputs, tuple) else (outputs,)
        while len(weights) < len(outputs):
            o = outputs[len(weights)]
            weights.append(rng.uniform(0.5, 1.5, size=o.shape) * rng.choice([-1.0, 1.0], size=o.shape))
        return outputs

    with enable_grad():
        outputs = with_weights(fn(*inputs))
        float_outputs = [(o, v) for o, v in zip(outputs, weights) if o.requires_grad]
        if not float_outputs:
            raise ValueError("gradcheck: fn's output does not depend on any input that requires grad")
        for o, v in float_outputs:
            o.backward(v.astype(o.dtype), retain_graph=True)
    analytic = [inputs[i].grad.data.copy() if inputs[i].grad is not None else np.zeros_like(inputs[i].data)
                for i in checked]

    def evaluate():
        with no_grad():
            outs = fn(*inputs)
        outs = outs if isinstance(outs, tuple) else (outs,)
        return sum(float(np.sum(o.data.astype(np.float64) * v)) for o, v in zip(outs, weights)
                   if isinstance(o, Tensor) and o.dtype.kind == "f")

    failures = []  # (excess, input index, flat element index, analytic, numeric)
    failing = 0
    for position, i in enumerate(checked):
        numeric = _numeric_gradient(evaluate, inputs[i].data, eps)
        excess = _excess(analytic[position], numeric, atol, rtol).reshape(-1)
        bad = np.flatnonzero(excess > 0)
        failing += bad.size
        if bad.size:
            j = bad[np.argmax(excess[bad])]
            failures.append((excess[j], i, j, analytic[position].reshape(-1)[j], numeric.reshape(-1)[j]))
    if failures:
        _, i, j, value, numeric = max(failures, key=lambda failure: failure[0])
        index = np.unravel_index(j, inputs[i].shape)
        raise GradcheckError(
            "gradcheck: input %d, element %s: analytic gradient %.8g, numeric %.8g "
            "(difference %.3g exceeds atol=%g + rtol=%g * |numeric|; %d element(s) fail in all)"
            % (i, tuple(int(k) for k in index), value, numeric, abs(value - numeric), atol, rtol, failing))
    return True


def _float64_inputs(op, inputs):
    """(inputs as a tuple, the inputs that require grad copied to float64 leaves; their
    positions), or a ValueError when none requires grad."""
    if isinstance(inputs, Tensor) or not isinstance(inputs, (tuple, list)):
        inputs = (inputs,)
    inputs = tuple(Tensor(np.array(x.data, dtype=np.float64), requires_grad=True)
                   if isinstance(x, Tensor) and x.requires_grad else x for x in inputs)
    checked = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not checked:
        raise ValueError("%s: no input requires grad; pass float Tensors with requires_grad=True" % op)
    return inputs, checked


def _numeric_gradient(evaluate, data, eps):
    """Central differences of evaluate() with respect to each element of data (perturbed
    in place, then restored), in data's shape."""
    flat = data.reshape(-1)  # a view: perturbing it perturbs the input
    numeric = np.empty(flat.size)
    for j in range(flat.size):
        original = flat[j]
        flat[j] = original + eps
        plus = evaluate()
        flat[j] = original - eps
        minus = evaluate()
        flat[j] = original
        numeric[j] = (plus - minus) / (2 * eps)
    return numeric.reshape(data.shape)


def _excess(analytic, numeric, atol, rtol):
    """How far each element's |analytic - numeric| lies beyond atol + rtol * |numeric|; an
    element fails where this is > 0.

    The signed values are compared, element by element in the input's own layout: a
    gradient of the wrong sign, scaled by a factor, or transposed (same values, wrong
    places) fails. A NaN on either side counts as infinitely far, as NaN > 0 would be False
    and let it pass silently."""
    excess = np.abs(analytic - numeric) - (atol + rtol * np.abs(numeric))
    return np.where(np.isnan(excess), np.inf, excess)


def gradgradcheck(fn, inputs, grad_outputs=None, eps=1e-6, atol=1e-5, rtol=1e-3, seed=0):
    """Check the second derivatives of ``fn`` at ``inputs`` against central differences
    of its first derivatives (torch's gradgradcheck).

    The first derivative, as a function of the inputs and of the output gradients v,
    is ``autograd_core.grad(fn(*inputs), inputs, v, create_graph=True)``; gradcheck then
    compares the backward through that (the second derivative, computed by each op's
    graph_backward) with finite differences of it, in float64, with respect to the
    inputs and to v. grad_outputs (one array or Tensor per output) fixes v; by default it
    is drawn at random (seeded). Returns True or raises GradcheckError, as gradcheck."""
    from .autograd import grad as gradient_of

    inputs, checked = _float64_inputs("gradgradcheck", inputs)
    with enable_grad():
        outputs = fn(*inputs)
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    differentiable = [k for k, o in enumerate(outputs) if isinstance(o, Tensor) and o.requires_grad]
    if not differentiable:
        raise ValueError("gradgradcheck: fn's output does not depend on any input that requires grad")
    rng = np.random.default_rng(seed + 1)
    if grad_outputs is None:
        grad_outputs = [rng.uniform(0.5, 1.5, outputs[k].shape) * rng.choice([-1.0, 1.0], outputs[k].shape)
                        for k in differentiable]
    else:
        grad_outputs = grad_outputs if isinstance(grad_outputs, (tuple, list)) else (grad_outputs,)
        if len(grad_outputs) != len(differentiable):
            raise ValueError("gradgradcheck: got %d grad_outputs for %d differentiable outputs"
                             % (len(grad_outputs), len(differentiable)))
        grad_outputs = [np.asarray(g.data if isinstance(g, Tensor) else g, dtype=np.float64) for g in grad_outputs]
    vs = tuple(Tensor(np.array(g, dtype=np.float64), requires_grad=True) for g in grad_outputs)
    count = len(inputs)

    def first_derivative(*arguments):
        xs, given = arguments[:count], arguments[count:]
        with enable_grad():
            outs = fn(*xs)
            outs = outs if isinstance(outs, tuple) else (outs,)
            return gradient_of([outs[k] for k in differentiable], [xs[i] for i in checked], list(given),
                               create_graph=True, allow_unused=True, materialize_grads=True)

    return gradcheck(first_derivative, inputs + vs, eps=eps, atol=atol, rtol=rtol, seed=seed)
