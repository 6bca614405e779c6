"""Tensor: a numpy array that remembers the Function call that produced it.

Tensor owns its fields: Function builds op outputs with ``Tensor._from_function``, and
the engine reads ``grad_fn`` / ``output_index`` and hands gradients over through
``accumulate_grad``. The op methods and operators (``exp``, ``__add__``, ...) are not
written here: ``registry.register`` attaches them as each op is declared in ``ops/``.
"""
import weakref

import numpy as np

from . import engine
from .errors import ShapeError
from .grad_mode import is_grad_enabled

_DEFAULT_FLOAT = np.float32


class _InGraph:
    """How in-place methods are recorded in a graph: filled in by ops/inplace.py (which
    imports this module; this one cannot import it back): record(tensor, method,
    compute), view_base(tensor), set_item(x, index, values), replace(x, source)."""
    record = view_base = set_item = replace = None


_IN_GRAPH = _InGraph()


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


def numpy_dtype(op, dtype):
    """The numpy dtype for dtype: a numpy dtype or type, a name ("float32", "int64",
    "float", "long"), a Python type (float, int, bool) or a torch dtype (torch.float64,
    read by its name); anything else a TypeError naming op."""
    if isinstance(dtype, np.dtype):
        return dtype
    if dtype is float:  # Python's float is torch's default float, not numpy's float64
        return np.dtype(_DEFAULT_FLOAT)
    if dtype is int:
        return np.dtype(np.int64)
    name = dtype if isinstance(dtype, (str, type)) else str(dtype)
    if isinstance(name, str):
        name = name.replace("torch.", "")
        name = _TORCH_DTYPE_NAMES.get(name, name)
    try:
        return np.dtype(name)
    except TypeError:
        raise TypeError("%s: got dtype=%r, expected a dtype such as float32, float64, int64 or bool"
                        % (op, dtype)) from None


# torch's aliases that numpy reads differently ("float" is float64 and "long" unknown there)
_TORCH_DTYPE_NAMES = {"float": "float32", "double": "float64", "long": "int64", "int": "int32",
                      "half": "float16", "short": "int16"}


def as_tensor(op, value):
    """value as a Tensor for op: a Tensor as it is; a number, list or array wrapped (no
    copy of an array); anything else a TypeError naming op."""
    if isinstance(value, Tensor):
        return value
    if isinstance(value, (int, float, bool, np.ndarray, np.generic, list)):
        return Tensor(value)
    raise TypeError("%s: got %s, expected a Tensor, array or number" % (op, type(value).__name__))


def _is_integer(item):
    return isinstance(item, (int, np.integer)) and not isinstance(item, (bool, np.bool_))


def _is_advanced(item):
    return isinstance(item, (list, np.ndarray))


def torch_order_index(index, shape):
    """The numpy index that reads (or writes) what torch's ``t[index]`` does on a tensor of
    this shape. torch applies integer indices first (as select) and only then places the
    array indices by numpy's rule; numpy counts an integer as an array index, so
    ``x[0, :, [0, 1]]`` is [3, 2] in torch and [2, 3] in numpy. Where an integer and an
    array index both appear, returns one tuple of coordinate arrays in torch's result
    shape (found by indexing the element numbers in torch's two steps); else index."""
    if not isinstance(index, tuple) or not any(_is_integer(i) for i in index) \
            or not any(_is_advanced(i) for i in index):
        return index
    integers = tuple(item if _is_integer(item) or item is None or item is Ellipsis else slice(None)
                     for item in index)
    rest = tuple(slice(None) if item is None else item for item in index if not _is_integer(item))
    positions = np.arange(int(np.prod(shape)), dtype=np.intp).reshape(shape)[integers][rest]
    return np.unravel_index(positions, shape)


class Tensor:
    """A node of the define-by-run graph over a numpy array.

    ``data`` is the array, ``grad`` the accumulated gradient (a Tensor) once backward
    has reached it, and ``requires_grad`` says whether ops record a graph for it.

    In-place changes and backward, as in PyTorch: the in-place methods (``add_``,
    ``mul_``, ``relu_``, ``copy_``, ``t[i] = v``, ``t += x``, ...; see the section
    "in-place operations") change the tensor's own array and bump its ``_version``, which
    every view of the same memory shares. On a leaf that requires grad they need
    ``no_grad()`` (the optimizer's update, ``w -= lr * w.grad``); in a graph they are
    recorded as ops (ops/inplace.py), writes through basic-index views included. If an op
    had saved memory for its backward that changed since (a weight that
    ``optimizer.step()`` updated between ``loss = f()`` and ``loss.backward()``), that
    backward raises a RuntimeError naming the op instead of using the new values; the
    check compares memory, so a change through any view is seen.
    Not seen, on purpose or because they cannot be: writes through ``.data`` (the
    untracked escape hatch, e.g. ``t.data[...] = 0``), and writes through memory shared
    with numpy (an array given to ``from_numpy``, the array ``numpy()`` returns).
    """

    # grad_fn (the graph node, a function.Context, or None for a leaf) and output_index
    # (which of that node's outputs this is) are read by Function and the engine on every
    # op; plain slots rather than properties, as they are the engine's hottest reads.
    # Only Tensor's own methods set them.
    # _moves is set when an in-place op in a graph first moves the tensor onto a new node
    # (ops/inplace.py): [(node epoch, stand-in for its old place)]; unset (never read by ops) before.
    __slots__ = ("data", "grad", "requires_grad", "grad_fn", "output_index", "_hooks", "_moves", "__weakref__")
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

    def size(self, dim=None):
        """torch's size: the shape (a tuple) with no argument, the length of dimension dim
        (an int; negative counts from the end) with one. Not numpy's ``size`` attribute
        (the element count): that is ``numel()``."""
        if dim is None:
            return self.data.shape
        ndim = self.data.ndim
        if isinstance(dim, (bool, np.bool_)) or not isinstance(dim, (int, np.integer)):
            raise TypeError("size: got dim=%r (%s), expected an int" % (dim, type(dim).__name__))
        if not -ndim <= dim < ndim:
            raise IndexError("size: dim %d is out of range for a tensor with %d dimensions (expected %s)"
                             % (dim, ndim, "no dim: a 0-d tensor has none" if ndim == 0
                                else "%d to %d" % (-ndim, ndim - 1)))
        return self.data.shape[dim]

    def numel(self):
        """Number of elements."""
        return self.data.size

    def dim(self):
        """Number of dimensions (as ``ndim``)."""
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
            raise ShapeError("item: got a tensor of shape %s, expected exactly one element" % (self.shape,))
        return self.data.item()

    def tolist(self):
        return self.data.tolist()

    def __array__(self, dtype=None, copy=None):
        if dtype is not None:
            return self.data.astype(dtype, copy=bool(copy))
        return self.data.copy() if copy else self.data

    def float(self):
        """self as float32 (differentiable, as torch's)."""
        return self.astype(np.float32)

    def double(self):
        """self as float64 (differentiable)."""
        return self.astype(np.float64)

    def long(self):
        """self as int64."""
        return self.astype(np.int64)

    def int(self):
        """self as int32 (torch's int)."""
        return self.astype(np.int32)

    def bool(self):
        """self as bool (non-zero -> True)."""
        return self.astype(np.bool_)

    def type_as(self, other):
        """self in other's dtype (other a Tensor)."""
        if not isinstance(other, Tensor):
            raise TypeError("type_as: got %s, expected a Tensor" % type(other).__name__)
        return self.astype(other.dtype)

    def to(self, *args, dtype=None, device=None, copy=False, non_blocking=False):
        """torch's to: ``to(dtype)``, ``to("cpu")``, ``to("cpu", dtype)``, ``to(other)``
        (other's dtype) or keywords. Tensors live on the CPU, the only device; a
        conversion to the same dtype returns self (a copy with copy=True)."""
        for value in args:
            if isinstance(value, Tensor):
                dtype = value.dtype
            elif isinstance(value, str) and value.split(":")[0] in _DEVICES:
                device = value
            elif type(value).__name__ == "device":  # a torch.device, read by name
                device = str(value)
            else:
                dtype = value
        if device is not None:
            _check_device("to", device)
        result = self if dtype is None else self.astype(numpy_dtype("to", dtype))
        return result.clone() if copy and result is self else result

    def cpu(self):
        """self: tensors live on the CPU."""
        return self

    @property
    def device(self):
        """"cpu", the only device."""
        return "cpu"

    def contiguous(self):
        """self when its array is C-contiguous, else a contiguous copy (in the graph, as clone)."""
        return self if self.data.flags.c_contiguous else self.clone()

    def is_contiguous(self):
        return bool(self.data.flags.c_contiguous)

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __bool__(self):
        if self.data.size != 1:
            raise ShapeError("bool: the truth value of a tensor of shape %s is ambiguous" % (self.shape,))
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

    # ---- in-place operations ------------------------------------------------------
    # Two paths, as in PyTorch. Outside a graph (no_grad, or nothing requires grad: the
    # optimizer's parameter update) the method writes into the array with numpy and bumps
    # the version. In a graph (self is a non-leaf, or an operand requires grad) the change
    # is recorded as an op: ops/inplace.py runs the out-of-place op, writes its result
    # into self's array and moves self onto the new graph node.
    @property
    def _version(self):
        """How many in-place changes the library made to this tensor's memory (PyTorch's
        ``_version``): in-place methods, ``+=`` and friends, optimizer steps, through this
        tensor or any view sharing its memory; not writes through ``.data``."""
        return engine.CHANGES.version(self.data)

    @property
    def _base(self):
        """The tensor this one is a view of in the graph (basic indexing, reshape,
        transpose, ...), or None; see ops/inplace.py."""
        return _IN_GRAPH.view_base(self)

    def increment_version(self, by="an in-place change"):
        """Record that this tensor's values were changed in place (``by`` says how, for
        the error message): bumps ``_version`` (shared with every view of the memory), and
        a backward that saved this memory before the change will raise. The in-place
        methods and optimizers call it; code that writes into ``t.data`` on purpose and
        wants the check can call it too."""
        engine.note_in_place_change(self.data, (self.data.shape, self.data.dtype, by))

    def _in_graph(self, method, operands=()):
        """True when this in-place change must be recorded in the graph (grad mode on and
        self or an operand requires grad); a leaf that requires grad may only be changed
        under no_grad, as in PyTorch."""
        if not is_grad_enabled():
            return False
        if self.requires_grad:
            if self.grad_fn is None:
                raise RuntimeError(
                    "%s: a leaf tensor that requires grad (shape %s) is being used in an in-place operation; "
                    "change it under no_grad() (as optimizers do: with ag.no_grad(): w -= lr * w.grad), or use "
                    "the out-of-place op (w = w.add(x))" % (method, self.shape))
            return True
        for operand in operands:
            if isinstance(operand, Tensor) and operand.requires_grad:
                return True
        return False

    def _record(self, method, compute):
        """Record the in-place change self = compute(self) in the graph (ops/inplace.py)."""
        return _IN_GRAPH.record(self, method, compute)

    def _overwrite(self, method, result):
        """Write the array result (any dtype that casts to self's by same_kind) into self."""
        try:
            np.copyto(self.data, result, casting="same_kind")
        except (TypeError, ValueError) as error:
            raise (TypeError if isinstance(error, TypeError) else ValueError)(
                "%s: cannot write the result (shape %s, %s) into a tensor of shape %s and dtype %s: %s"
                % (method, np.shape(result), getattr(result, "dtype", type(result).__name__), self.shape,
                   self.dtype, error)) from None
        self.increment_version(method)
        return self

    def _change(self, method, ufunc, other, alpha=None):
        """self = ufunc(self, other [* alpha]) in place, in self's dtype."""
        data = self.data
        other = other.data if isinstance(other, Tensor) else other
        if alpha is not None and alpha != 1:
            other = np.multiply(other, alpha)
        try:
            ufunc(data, other, out=data, casting="same_kind")
        except (TypeError, ValueError) as error:  # numpy's casting and broadcasting errors
            raise (TypeError if isinstance(error, TypeError) else ValueError)(
                "%s: cannot write the result into a tensor of shape %s and dtype %s: %s"
                % (method, self.shape, self.dtype, error)) from None
        self.increment_version(method)
        return self

    def _unary_(self, method, op, *args):
        """self = op(self, *args) in place, for the methods with no numpy shortcut."""
        if self._in_graph(method, args):
            return self._record(method, lambda source: op(source, *(source if a is self else a for a in args)))
        return self._overwrite(method, op(Tensor(self.data), *args).data)

    def add_(self, other, alpha=1):
        """self += alpha * other, in place (other broadcasts to self's shape); returns self."""
        if self._in_graph("add_", (other,)):
            return self._record("add_", lambda source: source + _scaled(source if other is self else other, alpha))
        return self._change("add_", np.add, other, alpha)

    def sub_(self, other, alpha=1):
        """self -= alpha * other, in place; returns self."""
        if self._in_graph("sub_", (other,)):
            return self._record("sub_", lambda source: source - _scaled(source if other is self else other, alpha))
        return self._change("sub_", np.subtract, other, alpha)

    def mul_(self, other):
        """self *= other, in place; returns self."""
        if self._in_graph("mul_", (other,)):
            return self._record("mul_", lambda source: source * (source if other is self else other))
        return self._change("mul_", np.multiply, other)

    def div_(self, other):
        """self /= other, in place (float tensors); returns self."""
        if self._in_graph("div_", (other,)):
            return self._record("div_", lambda source: source / (source if other is self else other))
        return self._change("div_", np.true_divide, other)

    def __iadd__(self, other):
        """t += other is in place, as in PyTorch (t stays the same object)."""
        return self.add_(other)

    def __isub__(self, other):
        return self.sub_(other)

    def __imul__(self, other):
        return self.mul_(other)

    def __itruediv__(self, other):
        return self.div_(other)

    def __ifloordiv__(self, other):
        return self._unary_("__ifloordiv__", Tensor.__floordiv__, other)

    def __imod__(self, other):
        return self._unary_("__imod__", Tensor.__mod__, other)

    def __ipow__(self, other):
        return self.pow_(other)

    def pow_(self, exponent):
        """self = self ** exponent, in place; returns self."""
        return self._unary_("pow_", Tensor.pow, exponent)

    def clamp_(self, min=None, max=None):
        """Clip self into [min, max] in place (either bound may be None); returns self."""
        if min is None and max is None:
            raise ValueError("clamp_: got neither min nor max, expected at least one bound")
        if self._in_graph("clamp_"):
            return self._record("clamp_", lambda source: source.clamp(min, max))
        low, high = (b.data if isinstance(b, Tensor) else b for b in (min, max))
        return self._change("clamp_", lambda data, _, out, casting: np.clip(data, low, high, out=out,
                                                                            casting=casting), None)

    def clamp_min_(self, min):
        """self = max(self, min), in place; returns self."""
        return self.clamp_(min=min)

    def clamp_max_(self, max):
        """self = min(self, max), in place; returns self."""
        return self.clamp_(max=max)

    def relu_(self):
        """relu in place; returns self."""
        return self._unary_("relu_", Tensor.relu)

    def sigmoid_(self):
        return self._unary_("sigmoid_", Tensor.sigmoid)

    def tanh_(self):
        return self._unary_("tanh_", Tensor.tanh)

    def exp_(self):
        return self._unary_("exp_", Tensor.exp)

    def neg_(self):
        return self._unary_("neg_", Tensor.neg)

    def sqrt_(self):
        return self._unary_("sqrt_", Tensor.sqrt)

    def abs_(self):
        return self._unary_("abs_", Tensor.abs)

    def masked_fill_(self, mask, value):
        """self[mask] = value in place (mask broadcasts to self's shape); returns self."""
        return self._unary_("masked_fill_", Tensor.masked_fill, mask, value)

    def index_add_(self, dim, index, source, alpha=1):
        """self.index_add(dim, index, source, alpha) in place; returns self."""
        return self._unary_("index_add_", lambda x, *args: x.index_add(*args), dim, index, source, alpha)

    def scatter_(self, dim, index, src=None, value=None, reduce=None):
        """self.scatter(dim, index, src / value, reduce) in place; returns self."""
        return self._unary_("scatter_", lambda x, *args: x.scatter(*args), dim, index, src, value, reduce)

    def scatter_add_(self, dim, index, src):
        """self.scatter_add(dim, index, src) in place; returns self."""
        return self._unary_("scatter_add_", lambda x, *args: x.scatter_add(*args), dim, index, src)

    def uniform_(self, low=0.0, high=1.0, generator=None):
        """Fill with uniform samples from [low, high) in place; returns self."""
        rng = generator if generator is not None else _generator[0]
        return self._assign("uniform_", rng.uniform(low, high, self.shape))

    def normal_(self, mean=0.0, std=1.0, generator=None):
        """Fill with normal samples N(mean, std^2) in place; returns self."""
        rng = generator if generator is not None else _generator[0]
        return self._assign("normal_", rng.normal(mean, std, self.shape))

    def copy_(self, source):
        """Copy source's values into self in place (broadcast to self's shape, converted
        to self's dtype); returns self."""
        return self._assign("copy_", source)

    def fill_(self, value):
        """Set every element to value, in place; returns self."""
        return self._assign("fill_", value)

    def zero_(self):
        """Set every element to 0, in place; returns self."""
        return self._assign("zero_", 0)

    def _assign(self, method, source):
        if self._in_graph(method, (source,)):
            return self._record(method, lambda old: _replacement(method, old, old if source is self else source))
        data = self.data
        try:
            np.copyto(data, source.data if isinstance(source, Tensor) else source, casting="unsafe")
        except (TypeError, ValueError) as error:
            raise (TypeError if isinstance(error, TypeError) else ValueError)(
                "%s: cannot write %s into a tensor of shape %s: %s"
                % (method, type(source).__name__, self.shape, error)) from None
        self.increment_version(method)
        return self

    def __setitem__(self, index, value):
        """t[index] = value, in place (numpy's indexing, integers placed as torch's); value a number, array or Tensor.
        In a graph it is recorded (the gradient of value is the written part's)."""
        if isinstance(index, Tensor):
            index = index.data
        elif isinstance(index, tuple) and any(isinstance(item, Tensor) for item in index):
            index = tuple(item.data if isinstance(item, Tensor) else item for item in index)
        index = torch_order_index(index, self.shape)
        if self._in_graph("__setitem__", (value,)):
            self._record("t[...] = value", lambda old: _IN_GRAPH.set_item(old, index, old if value is self else value))
            return
        data = self.data
        try:
            data[index] = value.data if isinstance(value, Tensor) else value
        except (IndexError, TypeError, ValueError) as error:  # numpy's, naming no op
            kind = next(kind for kind in (IndexError, TypeError, ValueError) if isinstance(error, kind))
            raise kind("__setitem__: cannot write %s into t[%r] of a tensor of shape %s: %s"
                       % (type(value).__name__, index, self.shape, error)) from None
        self.increment_version("t[...] = value")

    # ---- hooks --------------------------------------------------------------------
    def register_hook(self, hook):
        """hook(grad) -> Tensor or None runs when this tensor's gradient is computed; a
        returned value replaces the gradient, and must have the tensor's shape and real
        (float, int or bool) values, converted to the tensor's dtype; anything else is a
        RuntimeError naming the hook. Returns a handle with remove()."""
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
        array_hook = _ArrayHook(hook, self.data.shape, self.data.dtype)
        hooks.append(array_hook)
        return _HookHandle(hooks, array_hook)

    def register_post_accumulate_grad_hook(self, hook):
        """hook(tensor) -> None runs after this leaf's ``.grad`` has received its gradient
        of a backward (as torch 2.x's): the engine hands each leaf its gradient as soon as
        its last use has contributed, so the hook can start work (a data-parallel
        allreduce) while the rest of backward runs. Returns a handle with remove()."""
        if not self.requires_grad or self.grad_fn is not None:
            raise RuntimeError("register_post_accumulate_grad_hook: expected a leaf tensor that requires grad, "
                               "got a %s" % ("tensor that does not require grad" if not self.requires_grad
                                             else "non-leaf tensor (computed by %s)" % self.grad_fn.function.__name__))
        if self._hooks is None:
            self._hooks = []
        # kept in the leaf's one hook list (no new slot, so no cost to tensors without
        # hooks), told apart from gradient hooks by its type
        post_hook = _PostAccumulateHook(hook)
        self._hooks.append(post_hook)
        return _HookHandle(self._hooks, post_hook)

    def accumulate_grad(self, grad):
        """Add the numpy array grad into .grad, after this leaf's hooks (the engine's way
        in), then run its post-accumulate hooks. The first gradient is a private C-ordered
        copy, so that later accumulation cannot alias another gradient, and optimizers can
        update it as one flat array."""
        hooks = self._hooks
        if hooks:
            for hook in hooks:
                if type(hook) is not _PostAccumulateHook:
                    grad = hook(grad)
        if self.grad is None:
            self.grad = Tensor(np.array(grad, dtype=self.data.dtype, order="C", copy=True))
        else:
            self.grad.data = self.grad.data + grad
        self._run_post_accumulate_hooks()

    def accumulate_graph_grad(self, grad):
        """accumulate_grad for backward(create_graph=True): grad is a Tensor with a graph
        of its own, and .grad becomes grad (or .grad + grad, recorded) so that it can be
        differentiated again, as in torch."""
        grad = self.run_grad_hooks(grad, True)
        if self.grad is None:
            self.grad = grad
        else:
            self.grad = self.grad + grad
        self._run_post_accumulate_hooks()

    def run_grad_hooks(self, grad, graph=False):
        """This leaf's gradient hooks applied to grad (an array, or a Tensor in graph mode)."""
        for hook in self._hooks or ():
            if type(hook) is not _PostAccumulateHook:
                grad = hook.on_tensor(grad) if graph else hook(grad)
        return grad

    def _run_post_accumulate_hooks(self):
        hooks = self._hooks
        if hooks:
            for hook in list(hooks):  # (a hook may remove itself)
                if type(hook) is _PostAccumulateHook:
                    hook.hook(self)

    def zero_grad(self):
        self.grad = None

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        """Backpropagate from this tensor. ``gradient`` defaults to 1 for a one-element tensor.

        create_graph=True records the backward pass itself, so that the gradients (in
        ``.grad``) are Tensors with a graph and can be differentiated again (see
        autograd_core.grad); retain_graph defaults to create_graph, as in torch. inputs
        (a Tensor or a sequence of them) limits which tensors get a gradient: only they
        accumulate into ``.grad``."""
        if not self.requires_grad:
            raise RuntimeError("backward: the tensor does not require grad and has no graph "
                               "(was it computed under no_grad, or from inputs that need no grad?)")
        if retain_graph is None:
            retain_graph = create_graph
        if gradient is None:
            if self.data.size != 1:
                raise RuntimeError("backward: got a tensor of shape %s; backward() without a gradient "
                                   "needs a one-element (scalar) tensor, so pass gradient= of that shape"
                                   % (self.shape,))
            grad = np.ones_like(self.data)
        else:
            grad = np.asarray(gradient.data if isinstance(gradient, Tensor) else gradient)
            if grad.shape != self.shape:
                raise ShapeError("backward: got a gradient of shape %s for a tensor of shape %s"
                                 % (grad.shape, self.shape))
            if grad.dtype.kind not in "biuf":
                raise TypeError("backward: got a gradient of dtype %s for a %s tensor, expected real (float) "
                                "values" % (grad.dtype, self.dtype))
            grad = grad.astype(self.dtype, copy=False)
        if inputs is not None or create_graph:
            seed = grad
            if create_graph:  # a given Tensor keeps its graph (its gradient may be wanted too)
                seed = gradient if isinstance(gradient, Tensor) and gradient.dtype == self.dtype else Tensor(grad)
            self._backward_into(seed, retain_graph, create_graph, inputs)
            return
        engine.backward(self, grad, retain_graph=retain_graph)


    def _backward_into(self, seed, retain_graph, create_graph, inputs):
        """backward's create_graph and inputs= cases: the gradients of the given inputs
        (by default every leaf) accumulate into their ``.grad``; with create_graph they
        are Tensors with a graph."""
        if inputs is None:
            engine.run_backward((self,), (seed,), retain_graph, create_graph)
            return
        inputs = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
        for index, value in enumerate(inputs):
            if not isinstance(value, Tensor) or not value.requires_grad:
                raise RuntimeError("backward: inputs[%d] is %s; expected a Tensor that requires grad"
                                   % (index, "a tensor that does not require grad" if isinstance(value, Tensor)
                                      else "a %s" % type(value).__name__))
        capture = {gradient_key(value): None for value in inputs}
        engine.run_backward((self,), (seed,), retain_graph, create_graph, capture)
        done = set()
        for value in inputs:
            g = capture[gradient_key(value)]
            if g is None or id(value) in done:
                continue
            done.add(id(value))
            if create_graph:
                value.grad = g if value.grad is None else value.grad + g
            elif value.grad is None:
                value.grad = Tensor(np.array(g, dtype=value.dtype, order="C", copy=True))
            else:
                value.grad.data = value.grad.data + g
            value._run_post_accumulate_hooks()


def gradient_key(tensor):
    """How the engine's capture (engine.run_backward) names a tensor: a leaf by its id, a
    non-leaf by its node and output."""
    return id(tensor) if tensor.grad_fn is None else (id(tensor.grad_fn), tensor.output_index)


class _PostAccumulateHook:
    """A user's hook(tensor) -> None that runs after a leaf's .grad was updated."""

    __slots__ = ("hook",)

    def __init__(self, hook):
        self.hook = hook

_DEVICES = ("cpu", "cuda", "mps", "xpu", "meta")


def _check_device(op, device):
    name = str(device).split(":")[0]
    if name != "cpu":
        raise RuntimeError("%s: got device %r, but autograd_core runs on the CPU only (expected 'cpu')"
                           % (op, str(device)))


class _ArrayHook:
    """A user's hook(Tensor) -> Tensor or None, as the engine calls it: array -> array.
    What the hook returns is checked here, where the hook is known, so that a wrong
    gradient neither becomes a leaf's .grad nor fails later in some op's backward."""

    __slots__ = ("hook", "shape", "dtype")

    def __init__(self, hook, shape, dtype):
        self.hook, self.shape, self.dtype = hook, shape, dtype

    def __call__(self, grad):
        result = self.hook(Tensor(grad))
        if result is None:
            return grad
        return self._checked(result).data

    def on_tensor(self, grad):
        """The hook in graph mode (create_graph=True): it gets the gradient Tensor itself,
        and what it returns stays in the graph."""
        result = self.hook(grad)
        if result is None:
            return grad
        if isinstance(result, Tensor):
            self._checked(result)
            return result if result.dtype == self.dtype else result.astype(self.dtype)
        return Tensor(self._checked(result).data)  # a constant: it has no derivative, like torch's

    def _checked(self, result):
        """What the hook returned, as a Tensor of the tensor's shape and dtype, or a
        RuntimeError naming the hook."""
        array = result.data if isinstance(result, Tensor) else result
        if isinstance(array, (np.ndarray, np.generic, int, float, bool, list)):
            try:
                array = np.asarray(array)
            except ValueError:  # a ragged list
                array = np.asarray(array, dtype=object)
            if array.shape == self.shape and array.dtype.kind in "biuf":
                return Tensor(array.astype(self.dtype, copy=False))
            got = "a gradient of shape %s and dtype %s" % (array.shape, array.dtype)
        else:
            got = "a %s" % type(result).__name__
        raise RuntimeError("hook %s on a tensor of shape %s (%s) returned %s; a hook must return None or a "
                           "gradient of the tensor's shape %s with real (float) values"
                           % (_name_of(self.hook), self.shape, self.dtype, got, self.shape))


def _scaled(other, alpha):
    return other if alpha == 1 else other * alpha


def _replacement(method, old, source):
    """(in a graph) source broadcast to old's shape and dtype, as copy_/fill_/zero_ write it."""
    return old if source is old else _IN_GRAPH.replace(old, source)


def _name_of(function):
    name = getattr(function, "__qualname__", None) or getattr(function, "__name__", None)
    return repr(name) if name else repr(function)


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
    values = np.arange(start, stop, step) if stop is not None else np.arange(0, start, step)
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
