"""The op registry: every public op is declared once, where it is defined.

    @register("exp", methods=("exp",))
    class Exp(Function):
        float_input = True
        ...forward / backward...

    @register("sum", methods=("sum",))
    def sum(x, axis=None, keepdims=False):      # a functional wrapper that checks arguments
        return Sum.apply(x, ...)

``register`` records an :class:`OpInfo` and attaches the op to Tensor: each name in
``methods`` is bound to the op's function itself (it takes the tensor first, so
``a + b`` calls ``add(a, b)`` with no wrapper in between), each name in ``reflected``
calls it with the operands swapped (``2 - t`` is ``sub(2, t)``). The package's exports
(``autograd_core.exp``, ``__all__``) come from :func:`exports`, and the tests iterate
over :func:`ops`, so an op registered without a test table entry fails the suite.
"""
from .function import Function
from .tensor import Tensor

__all__ = ["OpInfo", "register", "ops", "exports"]


class OpInfo:
    """One registered op: its public ``name``, its ``function`` (what ``autograd_core.<name>``
    is), the Tensor ``methods`` and ``reflected`` operators it gives, whether it is
    ``differentiable`` (argmax, one_hot and comparisons are not), the Function class
    behind it when it was registered as one (else None) and the module it lives in."""

    __slots__ = ("name", "function", "methods", "reflected", "differentiable", "function_class", "module")

    def __init__(self, name, function, methods, reflected, differentiable, function_class, module):
        self.name, self.function, self.methods, self.reflected = name, function, methods, reflected
        self.differentiable, self.function_class, self.module = differentiable, function_class, module

    def __repr__(self):
        return "OpInfo(%r, methods=%r, reflected=%r, differentiable=%r)" % (
            self.name, self.methods, self.reflected, self.differentiable)


_OPS = {}


def register(name, methods=(), reflected=(), differentiable=True):
    """Class or function decorator declaring the op ``name`` (see the module docstring).

    A Function subclass registers its ``apply`` (and learns its ``name`` for error
    messages); a function registers itself. Returns the decorated object unchanged."""

    def decorate(target):
        if name in _OPS:
            raise ValueError("register: an op named %r is already registered (in %s)" % (name, _OPS[name].module))
        if isinstance(target, type) and issubclass(target, Function):
            target.name = name
            function, function_class = target.apply, target
            function.__name__ = function.__qualname__ = name
        elif callable(target):
            function, function_class = target, None
        else:
            raise TypeError("register(%r): got %s, expected a Function subclass or a function"
                            % (name, type(target).__name__))
        for method in methods:
            _attach(name, method, function)
        for method in reflected:
            _attach(name, method, _reflected(function, method))
        _OPS[name] = OpInfo(name, function, tuple(methods), tuple(reflected), differentiable, function_class,
                            target.__module__)
        return target

    return decorate


def _attach(name, method, function):
    if method in Tensor.__dict__ and not getattr(Tensor.__dict__[method], "_registered_op", None):
        # a registered op must not silently replace one of Tensor's own methods
        raise ValueError("register(%r): Tensor already defines %s" % (name, method))
    try:
        function._registered_op = name
    except AttributeError:  # a builtin: cannot carry the mark, and needs none
        pass
    setattr(Tensor, method, function)


def _reflected(function, method):
    def reflected(self, other):
        return function(other, self)
    reflected.__name__ = reflected.__qualname__ = method
    reflected.__doc__ = "other %s self: %s with the operands swapped." % (method, function.__name__)
    return reflected


def ops():
    """{name: OpInfo} of every registered op, in registration order."""
    return dict(_OPS)


def exports():
    """{name: function} of every registered op: the package namespace's op names."""
    return {name: info.function for name, info in _OPS.items()}
