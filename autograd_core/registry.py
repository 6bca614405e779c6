"""The op registry: every public op is declared once, where it is defined.

    @register("exp", methods=("exp",))
    class Exp(Function):
        float_input = True
        ...forward / backward...

    @register("sum", methods=("sum",))
    def sum(x, dim=None, keepdim=False):        # a functional wrapper that checks arguments
        return Sum.apply(x, ...)

``register`` records an :class:`OpInfo` and attaches the op to Tensor: each name in
``methods`` is bound to the op's function itself (it takes the tensor first, so
``a + b`` calls ``add(a, b)`` with no wrapper in between), each name in ``reflected``
calls it with the operands swapped (``2 - t`` is ``sub(2, t)``). The package's exports
(``autograd_core.exp``, ``__all__``) come from :func:`exports`, and the tests iterate
over :func:`ops`, so an op registered without a test table entry fails the suite.

One vocabulary for dimensions: an op whose function takes ``dim`` (or ``axis``) and
``keepdim`` (or ``keepdims``) accepts the other spelling too, as a keyword. The registry
reads the signature once, here, and wraps the function in a forwarder that renames the
alias (a call without keywords goes straight through); passing both spellings is a
TypeError naming the op. So ``x.sum(axis=1, keepdims=True)`` is ``x.sum(dim=1,
keepdim=True)``, for every op registered now or later, with no per-op code.
"""
import functools
import inspect

from .function import Function
from .tensor import Tensor

__all__ = ["OpInfo", "register", "ops", "exports", "dimension_aliases"]


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
    messages) and is returned unchanged; a function registers itself and is returned as
    registered (with the dim/axis aliases below), so its module's name, ``autograd_core.<name>``
    and a namespace that re-exports it (``autograd_core.linalg``) are one object."""

    def decorate(target):
        if name in _OPS:
            raise ValueError("register: an op named %r is already registered (in %s)" % (name, _OPS[name].module))
        if isinstance(target, type) and issubclass(target, Function):
            target.name = name
            function, function_class = target.apply, target
            function.__name__ = function.__qualname__ = name
        elif callable(target):
            function, function_class = _with_dimension_aliases(name, target), None
        else:
            raise TypeError("register(%r): got %s, expected a Function subclass or a function"
                            % (name, type(target).__name__))
        for method in methods:
            _attach(name, method, function)
        for method in reflected:
            _attach(name, method, _reflected(function, method))
        _OPS[name] = OpInfo(name, function, tuple(methods), tuple(reflected), differentiable, function_class,
                            target.__module__)
        return target if function_class is not None else function

    return decorate


def dimension_aliases(function):
    """Decorator giving a function that is not a registered op (``nn.functional.softmax``)
    the same dim/axis and keepdim/keepdims aliases as the registered ops."""
    return _with_dimension_aliases(function.__name__, function)


# torch's spelling -> numpy's; either may be the one in an op's signature
_ALIASES = (("dim", "axis"), ("keepdim", "keepdims"))


def _with_dimension_aliases(name, function):
    """function, or a forwarder that accepts the other spelling of each dimension keyword
    it takes (see the module docstring). Only names the signature lacks are mapped: an op
    that lists both spellings handles them itself."""
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):  # a builtin without a signature: nothing to map
        return function
    renames = {}
    for torch_name, numpy_name in _ALIASES:
        if torch_name in parameters and numpy_name not in parameters:
            renames[numpy_name] = torch_name
        elif numpy_name in parameters and torch_name not in parameters:
            renames[torch_name] = numpy_name
    if not renames:
        return function
    aliases = frozenset(renames)
    # how many positional arguments reach the primary name (sort(x, 0, axis=1) passes it twice)
    names = list(parameters)
    position = {alias: (names.index(primary) + 1
                        if parameters[primary].kind == inspect.Parameter.POSITIONAL_OR_KEYWORD else len(names) + 1)
                for alias, primary in renames.items()}

    @functools.wraps(function)
    def forward(*args, **kwargs):
        if kwargs and not aliases.isdisjoint(kwargs):
            for alias in aliases.intersection(kwargs):
                primary = renames[alias]
                if primary in kwargs or len(args) >= position[alias]:
                    raise TypeError("%s: got both %s and %s, two spellings of the same argument; pass one"
                                    % (name, primary, alias))
                kwargs[primary] = kwargs.pop(alias)
        return function(*args, **kwargs)

    forward.dimension_aliases = dict(renames)
    return forward


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
