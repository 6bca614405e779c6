"""einsum, and the tensor products that are one einsum each: outer, dot, inner,
tensordot, kron (bmm is a checked matmul, in this module with them).

einsum follows torch.einsum: an equation of letters (a-z, A-Z), an ellipsis ``...``
standing for the leading broadcast dimensions, an optional ``->`` output (without it,
the output is the ellipsis dimensions then every letter used once, in alphabetical
order: upper case first, as torch sorts), repeated letters within one operand for
diagonals and traces ('ii->i', 'ii', 'bii->b'), and letters of size 1 that broadcast
against the same letter elsewhere.

The backward of operand k is itself one einsum: the gradient (subscripted with the
output) contracted with the other operands, onto operand k's letters. Two cases need
more than that einsum:

* a letter only operand k has, summed away in the forward ('ij->i': j): the gradient
  does not vary along it, so it is broadcast back over that letter;
* a letter repeated within operand k ('ii->i'): the gradient belongs on that diagonal
  and is zero elsewhere, so it is written through a strided view of the diagonal of a
  zero array (no Python loop).
"""
import functools
import string

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..function import Function
from ..registry import register
from ..tensor import Tensor
from ._util import is_int, result_dtype
from .shape import reshape
from .elementwise import Mul
from .linalg import MatMul

# letters in the order torch sorts an implicit output: 'A'..'Z' then 'a'..'z'
_LETTERS = string.ascii_uppercase + string.ascii_lowercase


def _describe_shapes(shapes):
    return ", ".join(str(tuple(s)) for s in shapes)


def _split_term(op, term, equation):
    """The letters of one subscript term and where its ellipsis is (None if absent)."""
    if term.count("...") > 1:
        raise ValueError("%s: the equation %r has more than one ellipsis in the term %r" % (op, equation, term))
    ellipsis = term.find("...")
    letters = term.replace("...", "")
    for char in letters:
        if char not in _LETTERS:
            raise ValueError("%s: the equation %r contains %r, expected letters a-z, A-Z, '...', ',' and '->'"
                             % (op, equation, char))
    return letters, (None if ellipsis < 0 else ellipsis)


def parse_equation(equation, shapes, op="einsum"):
    """(input terms, output term, {letter: size}) for equation over operands of shapes.

    Every ellipsis is replaced by letters of its own (right-aligned, as broadcasting
    aligns dimensions), so that the terms are plain numpy einsum subscripts. Raises a
    ValueError naming op for a malformed equation, an operand count or rank that does not
    match it, or sizes that do not broadcast."""
    if not isinstance(equation, str):
        raise TypeError("%s: got equation=%r, expected a string such as 'ij,jk->ik'" % (op, equation))
    text = equation.replace(" ", "")
    if text.count("->") > 1:
        raise ValueError("%s: the equation %r has more than one '->'" % (op, equation))
    left, arrow, right = text.partition("->")
    raw_terms = left.split(",")
    if len(raw_terms) != len(shapes):
        raise ValueError("%s: the equation %r has %d operand(s), got %d tensor(s)"
                         % (op, equation, len(raw_terms), len(shapes)))
    parsed = [_split_term(op, term, equation) for term in raw_terms]
    used = set("".join(letters for letters, _ in parsed) + right.replace("...", ""))
    spare = [char for char in _LETTERS if char not in used]
    # how many dimensions each ellipsis covers, and the most of them (the output's)
    covered = []
    for (letters, ellipsis), shape in zip(parsed, shapes):
        count = len(shape) - len(letters)
        if count < 0 or (ellipsis is None and count != 0):
            raise ValueError("%s: the term %r of equation %r has %d subscript(s), got an operand of shape %s"
                             % (op, raw_terms[len(covered)], equation, len(letters), tuple(shape)))
        covered.append(count)
    widest = max(covered, default=0)
    if widest > len(spare):
        raise ValueError("%s: the equation %r needs more letters than there are" % (op, equation))
    broadcast_letters = "".join(spare[:widest])
    terms = []
    for (letters, ellipsis), count in zip(parsed, covered):
        if ellipsis is None:
            terms.append(letters)
        else:
            terms.append(letters[:ellipsis] + broadcast_letters[widest - count:] + letters[ellipsis:])
    sizes = {}
    for index, (term, shape) in enumerate(zip(terms, shapes)):
        own = {}
        for char, size in zip(term, shape):
            if char in own and own[char] != size:
                raise ValueError("%s: subscript %r is repeated in operand %d of equation %r with sizes %d and %d, "
                                 "expected equal sizes (a diagonal)" % (op, char, index, equation, own[char], size))
            own[char] = size
            seen = sizes.get(char)
            if seen is None or seen == 1:
                sizes[char] = size
            elif size != 1 and size != seen:
                raise ValueError("%s: subscript %r has size %d in operand %d of equation %r, which does not broadcast "
                                 "with size %d seen before (shapes %s)"
                                 % (op, char, size, index, equation, seen, _describe_shapes(shapes)))
    if arrow:
        out_letters, out_ellipsis = _split_term(op, right, equation)
        if out_ellipsis is None:
            output = out_letters
        else:
            output = out_letters[:out_ellipsis] + broadcast_letters + out_letters[out_ellipsis:]
        for char in out_letters:
            if out_letters.count(char) > 1:
                raise ValueError("%s: output subscript %r appears more than once in equation %r" % (op, char, equation))
            if char not in sizes:
                raise ValueError("%s: output subscript %r of equation %r does not appear in any operand"
                                 % (op, char, equation))
    else:
        counts = {}
        for term in terms:
            for char in term:
                counts[char] = counts.get(char, 0) + 1
        once = sorted((char for char, n in counts.items() if n == 1 and char not in broadcast_letters),
                      key=_LETTERS.index)
        output = broadcast_letters + "".join(once)
    return terms, output, sizes


def _unique(term):
    return "".join(dict.fromkeys(term))


# numpy's einsum either loops over every combination of the letters in C (no set-up) or,
# with optimize=True, plans a contraction order and hands products to BLAS (about 10 us
# of planning). Measured on this project's 2-core machine: 'ij,jk->ik' at 3x4x5 takes
# 2 us plain vs 13 us planned; at 64x64x64, 229 us vs 56 us; 'bhqd,bhkd->bhqk' with
# b, h, q, k, d = 8, 4, 32, 32, 16, 1031 us vs 192 us; 'ij,j->i' at 256x128, 11 vs 15 us.
# So: plan for three or more operands (the order matters there) or when the loops would
# visit more than this many combinations.
_PLAN_ABOVE = 65536


def _contract(subscripts, arrays, work):
    """np.einsum(subscripts, *arrays); work: the product of all letters' sizes."""
    return np.einsum(subscripts, *arrays, optimize=len(arrays) > 2 or work > _PLAN_ABOVE)


@functools.lru_cache(maxsize=256)
def _parsed(equation, shapes):
    """parse_equation, remembered: a model calls the same equations on the same shapes
    every step, and parsing costs more than a small contraction (the results are never
    modified)."""
    terms, output, sizes = parse_equation(equation, shapes)
    full_shapes = tuple(tuple(sizes[char] for char in term) for term in terms)
    work = 1
    for size in sizes.values():
        work *= size
    return terms, output, sizes, full_shapes, work, ",".join(terms) + "->" + output


def _gradient_contraction(terms, output, k):
    """(subscripts, letters, kept) of operand k's gradient: the einsum of the output's
    gradient with the other operands onto kept, the letters of operand k (each once,
    in order) that the output or another operand has; the rest are constant along
    (see the module docstring). Both backward paths start from it."""
    others = [t for j, t in enumerate(terms) if j != k]
    letters = _unique(terms[k])
    reachable = set(output).union(*others)
    kept = "".join(char for char in letters if char in reachable)
    return ",".join([output] + others) + "->" + kept, letters, kept


class Einsum(Function):
    """torch.einsum's product (see the module docstring): operands of any shapes the
    equation fits; the output's shape is the output letters' sizes."""

    @staticmethod
    def forward(ctx, equation, *arrays):
        if not isinstance(equation, str):
            raise TypeError("einsum: got equation=%r, expected a string such as 'ij,jk->ik'" % (equation,))
        terms, output, sizes, full_shapes, work, subscripts = _parsed(equation, tuple(a.shape for a in arrays))
        dtype = result_dtype("einsum", *arrays)
        operands = []
        for array, full in zip(arrays, full_shapes):
            array = array.astype(dtype, copy=False)
            if array.shape != full:  # a size-1 letter broadcast against a larger one
                array = np.broadcast_to(array, full)
            operands.append(array)
        ctx.terms, ctx.output, ctx.sizes, ctx.work = terms, output, sizes, work
        ctx.save_for_backward(*operands)
        result = _contract(subscripts, operands, work)
        if isinstance(result, np.ndarray) and any(np.may_share_memory(result, a) for a in arrays):
            result = result.copy()  # 'ij->ji' and 'ii->i' give views; the result must own its data
        return result

    @staticmethod
    def backward(ctx, grad):
        operands = ctx.saved_tensors
        terms, output, sizes = ctx.terms, ctx.output, ctx.sizes
        grads = [None]
        for k, term in enumerate(terms):
            if not ctx.needs_input_grad[k + 1]:
                grads.append(None)
                continue
            subscripts, letters, kept = _gradient_contraction(terms, output, k)
            g = _contract(subscripts, [grad] + [a for j, a in enumerate(operands) if j != k], ctx.work)
            g = np.asarray(g)
            if len(kept) < len(letters):  # letters only this operand had: constant along them
                g = np.broadcast_to(g.reshape([sizes[c] if c in kept else 1 for c in letters]),
                                    [sizes[c] for c in letters])
            if len(letters) < len(term):  # repeated letters: onto the diagonal, zero elsewhere
                full = np.zeros([sizes[c] for c in term], dtype=grad.dtype)
                strides = [sum(full.strides[i] for i, c in enumerate(term) if c == char) for char in letters]
                as_strided(full, shape=g.shape, strides=strides)[...] = g
                g = full
            shape = ctx.inputs[k + 1].shape
            if g.shape != shape:  # the operand's size-1 dimensions were broadcast
                g = g.sum(axis=tuple(i for i, n in enumerate(shape) if n != g.shape[i]), keepdims=True)
            # (ascontiguousarray makes a 0-d array 1-d: a 0-d operand, as in ',i->i', keeps its shape)
            grads.append(np.ascontiguousarray(g) if g.ndim else g)
        return tuple(grads)

    @staticmethod
    def differentiable_backward(ctx, grad):
        """backward's steps with Tensors: the same einsum (an Einsum node again), the
        broadcast over letters only operand k had, the diagonal embedding as a product
        with a constant 0/1 mask, and the sum over broadcast size-1 dimensions."""
        terms, output, sizes = ctx.terms, ctx.output, ctx.sizes
        # as forward: size-1 letters broadcast against the same letter's full size
        operands = [a if a.shape == full else a.broadcast_to(full)
                    for a, full in zip(ctx.inputs[1:], (tuple(sizes[c] for c in term) for term in terms))]
        grads = [None]
        for k, term in enumerate(terms):
            if not ctx.needs_input_grad[k + 1]:
                grads.append(None)
                continue
            subscripts, letters, kept = _gradient_contraction(terms, output, k)
            g = Einsum.apply(subscripts, grad, *[a for j, a in enumerate(operands) if j != k])
            if len(kept) < len(letters):
                g = g.reshape([sizes[c] if c in kept else 1 for c in letters]).broadcast_to(
                    tuple(sizes[c] for c in letters))
            if len(letters) < len(term):
                # letters' order is their first appearance in term: a size-1 axis at each
                # repeat lines g up with term, and the mask keeps the diagonal
                g = g.reshape([sizes[c] if term.index(c) == i else 1 for i, c in enumerate(term)])
                g = g * Tensor(_diagonal_mask(term, sizes, g.dtype))
            shape = ctx.inputs[k + 1].shape
            if g.shape != shape:
                g = g.sum(axis=tuple(i for i, n in enumerate(shape) if n != g.shape[i]), keepdims=True)
            grads.append(g)
        return tuple(grads)


def _diagonal_mask(term, sizes, dtype):
    """[sizes of term]: 1 where every repeated letter of term has equal indices, else 0."""
    mask = np.ones([sizes[c] for c in term], dtype=dtype)
    for i, char in enumerate(term):
        first = term.index(char)
        if first != i:
            shape = [1] * len(term)
            shape[first], shape[i] = sizes[char], sizes[char]
            mask = mask * np.eye(sizes[char], dtype=dtype).reshape(shape)
    return mask


def _sublist_term(sublist):
    """A sublist of torch's second einsum form ([0, 1], [Ellipsis, 2]) as subscript letters."""
    if not isinstance(sublist, (list, tuple)):
        raise TypeError("einsum: got %r where a sublist was expected (a list of ints in [0, 52) and Ellipsis)"
                        % (sublist,))
    letters = []
    for label in sublist:
        if label is Ellipsis:
            letters.append("...")
        elif isinstance(label, int) and not isinstance(label, bool) and 0 <= label < len(_LETTERS):
            letters.append(_LETTERS[label])
        else:
            raise ValueError("einsum: got sublist label %r, expected an int in [0, 52) or Ellipsis" % (label,))
    return "".join(letters)


def _from_sublists(arguments):
    """einsum(op1, sublist1, op2, sublist2, ..., [output sublist]) as (equation, operands)."""
    operands, terms = arguments[0::2], arguments[1::2]
    output = None
    if len(arguments) % 2:  # a trailing output sublist
        operands, output = operands[:-1], arguments[-1]
    equation = ",".join(_sublist_term(term) for term in terms)
    if output is not None:
        equation += "->" + _sublist_term(output)
    return equation, operands


@register("einsum")
def einsum(equation, *operands):
    """torch.einsum(equation, *operands), einsum(equation, [operands]), or the sublist
    form einsum(op1, [0, 1], op2, [1, 2], [0, 2]) (ints label dimensions, Ellipsis the
    broadcast ones).

    'ij,jk->ik' (matrix product), 'bij,bjk->bik' (batched), '...ij,...jk' (broadcast
    batch dimensions), 'ii->i' (diagonal), 'ii' (trace), 'i,j->ij' (outer). Shapes: each
    operand has as many dimensions as its term has letters (an ellipsis covers the
    rest); the result has the output letters' sizes."""
    if isinstance(equation, Tensor):
        equation, operands = _from_sublists((equation,) + operands)
    elif len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    if not operands:
        raise ValueError("einsum: got no operands, expected at least one tensor after the equation")
    for index, operand in enumerate(operands):
        if not isinstance(operand, Tensor):
            raise TypeError("einsum: operand %d is %s, expected a Tensor" % (index, type(operand).__name__))
    return Einsum.apply(equation, *operands)


def _check_tensor(op, name, value):
    if not isinstance(value, Tensor):
        raise TypeError("%s: got %s=%s, expected a Tensor" % (op, name, type(value).__name__))


@register("outer", methods=("outer",))
def outer(input, vec2):
    """Outer product of two vectors: [n] and [m] -> [n, m]."""
    _check_tensor("outer", "input", input)
    _check_tensor("outer", "vec2", vec2)
    if input.ndim != 1 or vec2.ndim != 1:
        raise ValueError("outer: got shapes %s and %s, expected two 1-D tensors" % (input.shape, vec2.shape))
    return Einsum.apply("i,j->ij", input, vec2)


@register("dot", methods=("dot",))
def dot(input, tensor):
    """Inner product of two 1-D tensors of the same length: [n], [n] -> [] (0-d)."""
    _check_tensor("dot", "input", input)
    _check_tensor("dot", "tensor", tensor)
    if input.ndim != 1 or tensor.ndim != 1 or input.shape != tensor.shape:
        raise ValueError("dot: got shapes %s and %s, expected two 1-D tensors of the same length"
                         % (input.shape, tensor.shape))
    return Einsum.apply("i,i->", input, tensor)


@register("inner", methods=("inner",))
def inner(input, other):
    """Sum over the last dimensions of both: [..., n] and [..., n] -> input.shape[:-1] +
    other.shape[:-1]; a 0-d operand multiplies the other elementwise."""
    _check_tensor("inner", "input", input)
    _check_tensor("inner", "other", other)
    if input.ndim == 0 or other.ndim == 0:
        return Mul.apply(input, other)
    if input.shape[-1] != other.shape[-1]:
        raise ValueError("inner: got shapes %s and %s, expected the same size of the last dimension"
                         % (input.shape, other.shape))
    return tensordot(input, other, ([-1], [-1]))


@register("bmm", methods=("bmm",))
def bmm(input, mat2):
    """Batched matrix product without broadcasting: [b, n, m] @ [b, m, p] -> [b, n, p]."""
    _check_tensor("bmm", "input", input)
    _check_tensor("bmm", "mat2", mat2)
    if input.ndim != 3 or mat2.ndim != 3:
        raise ValueError("bmm: got shapes %s and %s, expected two 3-D tensors [b, n, m] and [b, m, p]"
                         % (input.shape, mat2.shape))
    if input.shape[0] != mat2.shape[0] or input.shape[2] != mat2.shape[1]:
        raise ValueError("bmm: got shapes %s and %s, expected [b, n, m] and [b, m, p] with the same b and m"
                         % (input.shape, mat2.shape))
    return MatMul.apply(input, mat2)


def _dims_list(op, dims, ndim, name):
    result = []
    for d in dims:
        d = is_int(op, "dims", d)
        if not -ndim <= d < ndim:
            raise IndexError("%s: dimension %d of %s is out of range for a tensor with %d dimensions"
                             % (op, d, name, ndim))
        result.append(d % ndim)
    if len(set(result)) != len(result):
        raise ValueError("%s: dims %s repeats a dimension of %s" % (op, list(dims), name))
    return result


@register("tensordot")
def tensordot(a, b, dims=2):
    """Contract dims of a with dims of b: ``dims=n`` pairs a's last n dimensions with b's
    first n; ``dims=([a dims], [b dims])`` pairs them explicitly. Result shape: a's other
    dimensions then b's other dimensions."""
    _check_tensor("tensordot", "a", a)
    _check_tensor("tensordot", "b", b)
    if isinstance(dims, (list, tuple)) and len(dims) == 2 and all(isinstance(d, (list, tuple)) for d in dims):
        dims_a = _dims_list("tensordot", dims[0], a.ndim, "a")
        dims_b = _dims_list("tensordot", dims[1], b.ndim, "b")
        if len(dims_a) != len(dims_b):
            raise ValueError("tensordot: got %d dims of a and %d of b, expected as many of each"
                             % (len(dims_a), len(dims_b)))
    elif isinstance(dims, (list, tuple)) and len(dims) == 2 and all(isinstance(d, int) for d in dims):
        dims_a = _dims_list("tensordot", [dims[0]], a.ndim, "a")
        dims_b = _dims_list("tensordot", [dims[1]], b.ndim, "b")
    else:
        try:
            count = is_int("tensordot", "dims", dims)
        except TypeError:
            raise TypeError("tensordot: got dims=%r, expected an int or a pair of lists of dimensions" % (dims,)) \
                from None
        if count < 0 or count > a.ndim or count > b.ndim:
            raise ValueError("tensordot: got dims=%d for shapes %s and %s, expected 0 <= dims <= each one's rank"
                             % (count, a.shape, b.shape))
        dims_a, dims_b = list(range(a.ndim - count, a.ndim)), list(range(count))
    for i, j in zip(dims_a, dims_b):
        if a.shape[i] != b.shape[j]:
            raise ValueError("tensordot: dimension %d of a (size %d) and dimension %d of b (size %d) do not match "
                             "(shapes %s and %s)" % (i, a.shape[i], j, b.shape[j], a.shape, b.shape))
    if a.ndim + b.ndim - len(dims_a) > len(_LETTERS):
        raise ValueError("tensordot: got shapes %s and %s, expected at most %d dimensions in all"
                         % (a.shape, b.shape, len(_LETTERS)))
    letters = iter(_LETTERS)
    term_a = [next(letters) for _ in range(a.ndim)]
    term_b = [None] * b.ndim
    for i, j in zip(dims_a, dims_b):
        term_b[j] = term_a[i]
    term_b = [char or next(letters) for char in term_b]
    output = [c for i, c in enumerate(term_a) if i not in dims_a] + [c for j, c in enumerate(term_b) if j not in dims_b]
    return Einsum.apply("%s,%s->%s" % ("".join(term_a), "".join(term_b), "".join(output)), a, b)


@register("kron", methods=("kron",))
def kron(input, other):
    """Kronecker product: the shapes are aligned from the right (padded with leading
    ones); result dimension d has size input.shape[d] * other.shape[d], and block i of it
    is input[i] * other."""
    _check_tensor("kron", "input", input)
    _check_tensor("kron", "other", other)
    ndim = max(input.ndim, other.ndim)
    shape_a = (1,) * (ndim - input.ndim) + input.shape
    shape_b = (1,) * (ndim - other.ndim) + other.shape
    # interleave: a's dims at even positions, b's at odd, so the product's row-major
    # layout is exactly the Kronecker blocks
    a = reshape(input, tuple(x for n in shape_a for x in (n, 1)))
    b = reshape(other, tuple(x for n in shape_b for x in (1, n)))
    return reshape(Mul.apply(a, b), tuple(m * n for m, n in zip(shape_a, shape_b)))
