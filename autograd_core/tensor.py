"""Tensor: a numpy array that remembers the Function call that produced it.

Tensor owns its fields: Function builds op outputs with ``Tensor._from_function``, and
the engine reads ``grad_fn`` / ``output_index`` and hands gradients over through
``accumulate_grad``. The op methods and operators (``exp``, ``__add__``, ...) are not
written here: ``registry.register`` attaches them as each op is declared in ``ops/``.
"""
import weakref

import numpy as np

from . import engine

_DEFAULT_FLOAT = np.float32


def _as_array(data, dtype=None):
    """numpy array for data; Python floats become float32, Python ints int64."""
    if isinstance(data, Tensor):
        data = data.data
    if isinstance(data, np.ndarray):
        array = data
    else:
        array = np.asarray(data)
        if dtype is None and array.dtype == np.float64 and not isinstance(data, np.generic):
            array = array.astype(_DEFAULT_FLOAT)
        elif dtype is None and array.dtype.kind in "iu" and array.dtype != np.int64:
            array = array.astype(np.int64)
    if dtype is not None:
        array = array.astype(np.dtype(dtype), copy=False)
    if array.dtype.kind not in "biuf":
        raise TypeError("tensor: got an array of dtype %s, expected a bool, integer or float dtype" % array.dtype)
    return array


def as_tensor(op, value):
    """value as a Tensor for op: a Tensor as it is; a number, list or array wrapped (no
    copy of an array); anything else a TypeError naming op."""
    if isinstance(value, Tensor):
        return value
    if isinstance(value, (int, float, bool, np.ndarray, np.generic, list)):
        return Tensor(value)
    raise TypeError("%s: got %s, expected a Tensor, array or number" % (op, type(value).__name__))


class Tensor:
    """A node of the define-by-run graph over a numpy array.

    ``data`` is the array, ``grad`` the accumulated gradient (a Tensor) once backward
    has reached it, and ``requires_grad`` says whether ops record a graph for it.
    """

    # grad_fn (the graph node, a function.Context, or None for a leaf) and output_index
    # (which of that node's outputs this is) are read by Function and the engine on every
    # op; plain slots rather than properties, as they are the engine's hottest reads.
    # Only Tensor's own methods set them.
    __slots__ = ("data", "grad", "requires_grad", "grad_fn", "output_index", "_hooks", "__weakref__")
    # numpy defers to Tensor's operators (ndarray * Tensor -> Tensor.__rmul__) and refuses
    # to apply its ufuncs to a Tensor: np.exp(t) raises instead of returning an array that
    # silently dropped the graph (use t.exp(), or np.exp(t.numpy()) on purpose).
    __array_ufunc__ = None

    def __init__(self, data, dtype=None, requires_grad=False):
        self.data = _as_array(data, dtype)
        self.grad = None
        self.grad_fn = None
        self.output_index = 0
        self._hooks = None
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _from_function(cls, array, node, index):
        """The one constructor of op outputs: output ``index`` of graph node ``node``
        (a Context, or None when nothing was recorded) holding the numpy array ``array``."""
        out = object.__new__(cls)
        out.data = array
        out.grad = None
        out._hooks = None
        out.output_index = index
        # integer outputs (argmax and the like) carry no gradient, so they stay off the graph
        out.requires_grad = node is not None and array.dtype.kind == "f"
        out.grad_fn = node if out.requires_grad else None
        return out

    # ---- properties -------------------------------------------------------------
    @property
    def shape(self):
        return self.data.shape

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def size(self):
        """Number of elements (numpy's meaning)."""
        return self.data.size

    def numel(self):
        return self.data.size

    def dim(self):
        return self.data.ndim

    @property
    def is_leaf(self):
        return self.grad_fn is None

    @property
    def T(self):
        return self.transpose()

    def __pos__(self):
        return self

    # ---- conversion ---------------------------------------------------------------
    def numpy(self):
        """The underlying array (no copy)."""
        return self.data

    def item(self):
        if self.data.size != 1:
            raise ValueError("item: got a tensor of shape %s, expected exactly one element" % (self.shape,))
        return self.data.item()

    def tolist(self):
        return self.data.tolist()

    def __array__(self, dtype=None, copy=None):
        if dtype is not None:
            return self.data.astype(dtype, copy=bool(copy))
        return self.data.copy() if copy else self.data

    def float(self):
        return self.astype(np.float32)

    def double(self):
        return self.astype(np.float64)

    def long(self):
        return self.astype(np.int64)

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __bool__(self):
        if self.data.size != 1:
            raise ValueError("bool: the truth value of a tensor of shape %s is ambiguous" % (self.shape,))
        return bool(self.data)

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __index__(self):
        if self.dtype.kind not in "iu":
            raise TypeError("__index__: got a %s tensor, expected an integer one" % self.dtype)
        return int(self.item())

    __hash__ = object.__hash__

    def __repr__(self):
        body = np.array2string(self.data, separator=", ", prefix="tensor(", precision=4)
        extras = []
        if self.data.dtype != _DEFAULT_FLOAT and self.data.dtype != np.int64:
            extras.append("dtype=%s" % self.data.dtype)
        elif self.data.dtype == np.int64 and self.data.size == 0:
            extras.append("dtype=int64")
        if self.grad_fn is not None:
            extras.append("grad_fn=<%s>" % self.grad_fn.function.__name__)
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return "tensor(%s%s)" % (body, "".join(", " + e for e in extras))

    # ---- autograd -----------------------------------------------------------------
    def requires_grad_(self, requires_grad=True):
        """Set requires_grad in place (leaves only); returns self."""
        if requires_grad and self.data.dtype.kind != "f":
            raise TypeError("requires_grad_: got a tensor of dtype %s, expected a float dtype "
                            "(only float tensors can have gradients)" % self.data.dtype)
        if not requires_grad and self.grad_fn is not None:
            raise RuntimeError("requires_grad_(False): only leaves can stop requiring grad; use detach()")
        self.requires_grad = bool(requires_grad)
        return self

    def detach(self):
        """A new leaf sharing this tensor's data, cut off from the graph."""
        return Tensor(self.data)

    def detach_(self):
        self.grad_fn = None
        self.requires_grad = False
        return self

    def retain_grad(self):
        """Keep .grad on this non-leaf tensor after backward."""
        node = self.grad_fn
        if node is None:
            return
        if node.retained_outputs is None:
            node.retained_outputs = {}
        node.retained_outputs[self.output_index] = weakref.ref(self)

    def register_hook(self, hook):
        """hook(grad) -> Tensor or None runs when this tensor's gradient is computed; a
        returned value replaces the gradient. Returns a handle with remove()."""
        if not self.requires_grad:
            raise RuntimeError("register_hook: the tensor does not require grad")
        node = self.grad_fn
        if node is None:
            if self._hooks is None:
                self._hooks = []
            hooks = self._hooks
        else:
            if node.output_hooks is None:
                node.output_hooks = {}
            hooks = node.output_hooks.setdefault(self.output_index, [])
        # the engine passes arrays, not Tensors: it never has to build one
        array_hook = _ArrayHook(hook, self.data.dtype)
        hooks.append(array_hook)
        return _HookHandle(hooks, array_hook)

    def accumulate_grad(self, grad):
        """Add the numpy array grad into .grad, after this leaf's hooks (the engine's way
        in). The first gradient is a private C-ordered copy, so that later accumulation
        cannot alias another gradient, and optimizers can update it as one flat array."""
        if self._hooks:
            for hook in self._hooks:
                grad = hook(grad)
        if self.grad is None:
            self.grad = Tensor(np.array(grad, dtype=self.data.dtype, order="C", copy=True))
        else:
            self.grad.data = self.grad.data + grad

    def zero_grad(self):
        self.grad = None

    def backward(self, gradient=None, retain_graph=False):
        """Backpropagate from this tensor. ``gradient`` defaults to 1 for a one-element tensor."""
        if not self.requires_grad:
            raise RuntimeError("backward: the tensor does not require grad and has no graph "
                               "(was it computed under no_grad, or from inputs that need no grad?)")
        if gradient is None:
            if self.data.size != 1:
                raise RuntimeError("backward: got a tensor of shape %s; backward() without a gradient "
                                   "needs a one-element (scalar) tensor, so pass gradient= of that shape"
                                   % (self.shape,))
            grad = np.ones_like(self.data)
        else:
            grad = np.asarray(gradient.data if isinstance(gradient, Tensor) else gradient)
            if grad.shape != self.shape:
                raise ValueError("backward: got a gradient of shape %s for a tensor of shape %s"
                                 % (grad.shape, self.shape))
            grad = grad.astype(self.dtype, copy=False)
        engine.backward(self, grad, retain_graph=retain_graph)


class _ArrayHook:
    """A user's hook(Tensor) -> Tensor or None, as the engine calls it: array -> array."""

    __slots__ = ("hook", "dtype")

    def __init__(self, hook, dtype):
        self.hook, self.dtype = hook, dtype

    def __call__(self, grad):
        result = self.hook(Tensor(grad))
        if result is None:
            return grad
        return np.asarray(result.data if isinstance(result, Tensor) else result, dtype=self.dtype)


class _HookHandle:
    def __init__(self, hooks, hook):
        self._hooks, self._hook = hooks, hook

    def remove(self):
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)


# ---- construction -----------------------------------------------------------------
_generator = [np.random.default_rng()]


def manual_seed(seed):
    """Seed the default generator used by rand/randn (and nn's initializers)."""
    _generator[0] = np.random.default_rng(seed)
    return _generator[0]


def default_generator():
    """The numpy Generator that rand/randn use when no generator is given."""
    return _generator[0]


def _shape_arg(shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


def tensor(data, dtype=None, requires_grad=False):
    """A new leaf Tensor holding a copy of data (floats default to float32)."""
    array = _as_array(data, dtype)
    if isinstance(data, (np.ndarray, Tensor)) and array is (data.data if isinstance(data, Tensor) else data):
        array = array.copy()
    return Tensor(array, requires_grad=requires_grad)


def from_numpy(array):
    """A Tensor sharing memory with the numpy array (no copy)."""
    if not isinstance(array, np.ndarray):
        raise TypeError("from_numpy: got %s, expected a numpy.ndarray" % type(array).__name__)
    return Tensor(array)


def zeros(*shape, dtype=_DEFAULT_FLOAT, requires_grad=False):
    return Tensor(np.zeros(_shape_arg(shape), dtype=dtype), requires_grad=requires_grad)


def ones(*shape, dtype=_DEFAULT_FLOAT, requires_grad=False):
    return Tensor(np.ones(_shape_arg(shape), dtype=dtype), requires_grad=requires_grad)


def full(shape, fill_value, dtype=None, requires_grad=False):
    """A [*shape] tensor of fill_value. Without dtype it follows the fill value, as in
    PyTorch: a bool gives bool, an int int64, a float the default float32."""
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    if isinstance(fill_value, Tensor):
        fill_value = fill_value.item()
    elif isinstance(fill_value, np.generic):
        fill_value = fill_value.item()
    if not isinstance(fill_value, (bool, int, float)):
        raise TypeError("full: got fill_value=%r (%s), expected a number (bool, int or float)"
                        % (fill_value, type(fill_value).__name__))
    if dtype is None:
        dtype = bool if isinstance(fill_value, bool) else np.int64 if isinstance(fill_value, int) else _DEFAULT_FLOAT
    return Tensor(np.full(shape, fill_value, dtype=dtype), requires_grad=requires_grad)


def zeros_like(t, dtype=None, requires_grad=False):
    return Tensor(np.zeros_like(np.asarray(t), dtype=dtype), requires_grad=requires_grad)


def ones_like(t, dtype=None, requires_grad=False):
    return Tensor(np.ones_like(np.asarray(t), dtype=dtype), requires_grad=requires_grad)


def arange(start, stop=None, step=1, dtype=None, requires_grad=False):
    """Like numpy.arange; integer arguments give int64, float ones float32."""
    values = np.arange(start, stop, step) if stop is not None else np.arange(start)
    if dtype is None:
        dtype = _DEFAULT_FLOAT if values.dtype.kind == "f" else np.int64
    return Tensor(values.astype(dtype), requires_grad=requires_grad)


def eye(n, m=None, dtype=_DEFAULT_FLOAT, requires_grad=False):
    return Tensor(np.eye(n, m, dtype=dtype), requires_grad=requires_grad)


def rand(*shape, dtype=_DEFAULT_FLOAT, requires_grad=False, generator=None):
    """Uniform [0, 1) samples; generator is a numpy Generator (default: manual_seed's)."""
    rng = generator if generator is not None else _generator[0]
    return Tensor(rng.random(_shape_arg(shape)).astype(dtype), requires_grad=requires_grad)


def randn(*shape, dtype=_DEFAULT_FLOAT, requires_grad=False, generator=None):
    """Standard normal samples; generator is a numpy Generator (default: manual_seed's)."""
    rng = generator if generator is not None else _generator[0]
    return Tensor(rng.standard_normal(_shape_arg(shape)).astype(dtype), requires_grad=requires_grad)
