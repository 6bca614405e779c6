"""gradcheck itself: it passes correct gradients, and catches wrong ones with a message that
names the input, the element index, and the analytic and numeric values."""
import re
import sys

import numpy as np
import pytest

import autograd_core as ag
from autograd_core import Function, GradcheckError, gradcheck

from strategies import leaf


def _scaled_backward(name, scale_at):
    """A Function computing x**2 whose backward is wrong by a factor where scale_at says."""

    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return 2 * x * grad * scale_at(x.shape)

    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x ** 2

    return type(name, (Function,), {"forward": staticmethod(forward), "backward": staticmethod(backward)})


DoubledSquare = _scaled_backward("DoubledSquare", lambda shape: 2.0)


def _wrong_at_one_element(shape):
    scale = np.ones(shape)
    scale[1, 2] = 1.5
    return scale


WrongAtOneElement = _scaled_backward("WrongAtOneElement", _wrong_at_one_element)


class Square(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x ** 2

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return 2 * x * grad


def _parse(message):
    match = re.search(r"input (\d+), element (\(.*?\)): analytic gradient (\S+), numeric (\S+) ", message)
    assert match, message
    return int(match.group(1)), eval(match.group(2)), float(match.group(3)), float(match.group(4))


def test_correct_gradients_pass():
    x = leaf(np.linspace(-1, 1, 6).reshape(2, 3))
    assert gradcheck(Square.apply, (x,)) is True
    assert gradcheck(lambda t: (t.tanh() @ t.T).sum(), x) is True  # a bare Tensor instead of a tuple


def test_deliberately_wrong_backward_is_caught():
    x = leaf([0.5, -1.0, 2.0])
    with pytest.raises(GradcheckError, match=r"input 0, element \(\d,\): analytic gradient .*, numeric "):
        gradcheck(DoubledSquare.apply, (x,))
    assert issubclass(GradcheckError, AssertionError)  # so that a bare call in a test fails it


def test_error_names_the_element_and_both_values():
    values = np.arange(12.0).reshape(3, 4) / 4 + 0.5
    with pytest.raises(GradcheckError) as info:
        gradcheck(WrongAtOneElement.apply, (leaf(values),))
    index, element, analytic, numeric = _parse(str(info.value))
    assert index == 0 and element == (1, 2)
    # gradcheck differentiates sum(out * v) for a random v: analytic is 1.5 times the true value
    assert analytic == pytest.approx(1.5 * numeric, rel=1e-6)
    # and numeric is the true derivative 2 x times a weight |v| in [0.5, 1.5]
    assert 0.5 * 2 * values[1, 2] <= abs(numeric) <= 1.5 * 2 * values[1, 2]
    assert "exceeds atol" in str(info.value)


def test_error_names_the_right_input():
    class WrongSecond(Function):
        @staticmethod
        def forward(ctx, a, b):
            ctx.save_for_backward(a, b)
            return a * b

        @staticmethod
        def backward(ctx, grad):
            a, b = ctx.saved_tensors
            return grad * b, grad * a * 0.5

    a, b = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    with pytest.raises(GradcheckError, match=r"input 2, element \(1,\)"):
        # a non-Tensor between the tensors keeps its place in the numbering
        gradcheck(lambda x, scale, y: WrongSecond.apply(x, y * scale), (a, 1.0, b))


def test_missing_gradient_is_caught():
    class Forgetful(Function):
        @staticmethod
        def forward(ctx, a, b):
            return a + b

        @staticmethod
        def backward(ctx, grad):
            return grad, None  # forgets b

    with pytest.raises(GradcheckError, match=r"input 1, element \(0,\): analytic gradient 0, numeric"):
        gradcheck(Forgetful.apply, (leaf([1.0]), leaf([2.0])))


def test_nan_gradient_is_caught():
    class NanBackward(Function):
        @staticmethod
        def forward(ctx, a):
            return a * 2

        @staticmethod
        def backward(ctx, grad):
            return grad * np.nan

    with pytest.raises(GradcheckError, match="analytic gradient nan"):
        gradcheck(NanBackward.apply, (leaf([1.0, 2.0]),))


def test_wrong_gradient_of_a_second_output_is_caught():
    class TwoOutputs(Function):
        @staticmethod
        def forward(ctx, a):
            ctx.save_for_backward(a)
            return a * 2, a * a

        @staticmethod
        def backward(ctx, grad_double, grad_square):
            (a,) = ctx.saved_tensors
            return grad_double * 2 + grad_square * a  # should be 2 a

    assert gradcheck(lambda t: TwoOutputs.apply(t)[0], (leaf([1.0, 2.0]),))
    with pytest.raises(GradcheckError, match="input 0"):
        gradcheck(TwoOutputs.apply, (leaf([1.0, 2.0]),))


def test_tolerances_are_used():
    class SlightlyOff(Function):
        @staticmethod
        def forward(ctx, a):
            return a * 3

        @staticmethod
        def backward(ctx, grad):
            return grad * 3 * (1 + 1e-4)

    x = leaf([1.0, 2.0])
    assert gradcheck(SlightlyOff.apply, (x,))  # within the default rtol=1e-3
    with pytest.raises(GradcheckError, match="rtol=1e-06"):
        gradcheck(SlightlyOff.apply, (x,), rtol=1e-6, atol=0)


def test_inputs_are_left_untouched_and_float32_is_checked_in_float64():
    x = ag.tensor([0.25, 0.5], requires_grad=True)
    seen = []

    def fn(t):
        seen.append(t.dtype)
        return t.exp()

    assert gradcheck(fn, (x,))
    assert set(seen) == {np.dtype(np.float64)}
    assert x.grad is None and x.dtype == np.float32
    np.testing.assert_array_equal(x.numpy(), np.float32([0.25, 0.5]))


def test_inputs_without_requires_grad_are_constants():
    constant = ag.tensor([2.0, 3.0], dtype=np.float64)
    assert gradcheck(lambda a, c: a * c, (leaf([1.0, 1.0]), constant))


def test_output_independent_of_an_input_passes():
    assert gradcheck(lambda a, b: a * 2, (leaf([1.0]), leaf([5.0])))


def test_nothing_to_check_raises():
    with pytest.raises(ValueError, match="no input requires grad"):
        gradcheck(lambda a: a * 2, (ag.tensor([1.0]),))
    with pytest.raises(ValueError, match="does not depend on any input"):
        gradcheck(lambda a: ag.tensor([1.0]), (leaf([1.0]),))


# -- each class of wrong backward is caught ---------------------------------------------------
# The injected bug: a gradcheck comparing magnitudes passed this file's tests, so a
# backward with the wrong sign would pass too. Each Function below has one classic bug; the
# tests say gradcheck catches it, and test_each_weakened_comparison_lets_its_bug_through
# shows that each test would fail against a gradcheck weakened in the matching way.
_B_SQUARE = np.array([[1.0, 2.0, -0.5], [0.3, -1.0, 0.7], [2.0, 0.1, 1.5]])
_B_WIDE = np.array([[1.0, 2.0, -0.5, 0.2], [0.3, -1.0, 0.7, 1.1], [2.0, 0.1, 1.5, -0.4]])


def _times(constant, wrong_grad):
    """A Function computing x @ constant whose backward is wrong_grad(grad, constant, x_shape)."""

    def forward(ctx, x):
        ctx.shape = x.shape
        return x @ constant

    def backward(ctx, grad):
        return wrong_grad(grad, constant, ctx.shape)

    return type("Times", (Function,), {"forward": staticmethod(forward), "backward": staticmethod(backward)})


NegatedSquare = _scaled_backward("NegatedSquare", lambda shape: -1.0)
# d(x @ B)/dx is grad @ B.T; these return it transposed: for a square x the transpose has
# x's shape, so only the values tell; for a wide x the values are laid out in the wrong order
# (what a C/Fortran-order or stride mix-up gives)
TransposedSquare = _times(_B_SQUARE, lambda grad, b, shape: (grad @ b.T).T)
TransposedWide = _times(_B_WIDE, lambda grad, b, shape: (grad @ b.T).T.reshape(shape))
CorrectTimes = _times(_B_SQUARE, lambda grad, b, shape: grad @ b.T)


class NanAtOneElement(Function):
    @staticmethod
    def forward(ctx, a):
        return a * 3

    @staticmethod
    def backward(ctx, grad):
        out = grad * 3
        out[0] = np.nan
        return out


def _square_input():
    return leaf(np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75], [-2.0, 1.0, 0.6]]))


# bug name -> (Function, input, where the error must point)
_BUGS = {
    "sign": (NegatedSquare, lambda: leaf([0.5, -1.0, 2.0]), r"input 0, element \(\d,\)"),
    "factor": (DoubledSquare, lambda: leaf([0.5, -1.0, 2.0]), r"input 0, element \(\d,\)"),
    "transposed square": (TransposedSquare, _square_input, r"input 0, element \(\d, \d\)"),
    "transposed wide": (TransposedWide, lambda: leaf(np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]])),
                        r"input 0, element \(\d, \d\)"),
    "nan": (NanAtOneElement, lambda: leaf([0.5, -1.0, 2.0]), r"input 0, element \(0,\): analytic gradient nan"),
}


@pytest.mark.parametrize("bug", sorted(_BUGS))
def test_wrong_backward_is_caught(bug):
    function, make_input, where = _BUGS[bug]
    with pytest.raises(GradcheckError, match=where):
        gradcheck(function.apply, (make_input(),))


def test_a_sign_error_is_caught_at_every_element():
    with pytest.raises(GradcheckError, match=r"3 element\(s\) fail in all"):
        gradcheck(NegatedSquare.apply, (leaf([0.5, -1.0, 2.0]),))


def test_a_transposed_gradient_of_the_wrong_shape_is_refused():
    # a non-square x whose gradient comes back transposed, shape and all: the engine refuses it
    transposed = _times(_B_WIDE, lambda grad, b, shape: (grad @ b.T).T)
    with pytest.raises(RuntimeError, match=r"gradient of shape \(3, 2\) for an input of shape \(2, 3\)"):
        gradcheck(transposed.apply, (leaf(np.ones((2, 3))),))


def test_the_correct_versions_pass():
    assert gradcheck(Square.apply, (leaf([0.5, -1.0, 2.0]),))
    assert gradcheck(CorrectTimes.apply, (_square_input(),))


def _weakened(kind):
    """gradcheck's per-element comparison with one deliberate weakness."""
    tolerance = lambda numeric, atol, rtol: atol + rtol * np.abs(numeric)  # noqa: E731

    def magnitudes(analytic, numeric, atol, rtol):
        return np.nan_to_num(np.abs(np.abs(analytic) - np.abs(numeric)) - tolerance(numeric, atol, rtol), nan=np.inf)

    def as_multisets(analytic, numeric, atol, rtol):  # the right values, in any places
        analytic, numeric = (np.sort(v.reshape(-1)).reshape(v.shape) for v in (analytic, numeric))
        return np.nan_to_num(np.abs(analytic - numeric) - tolerance(numeric, atol, rtol), nan=np.inf)

    def directions(analytic, numeric, atol, rtol):  # the right direction, any length
        analytic, numeric = analytic / np.linalg.norm(analytic), numeric / np.linalg.norm(numeric)
        return np.nan_to_num(np.abs(analytic - numeric) - tolerance(numeric, atol, rtol), nan=np.inf)

    def nan_unguarded(analytic, numeric, atol, rtol):  # NaN > 0 is False
        return np.abs(analytic - numeric) - tolerance(numeric, atol, rtol)

    return {"magnitudes": magnitudes, "multisets": as_multisets, "directions": directions,
            "nan unguarded": nan_unguarded}[kind]


@pytest.mark.parametrize("weakness, bug", [("magnitudes", "sign"), ("directions", "factor"),
                                           ("multisets", "transposed square"), ("multisets", "transposed wide"),
                                           ("nan unguarded", "nan")])
def test_each_weakened_comparison_lets_its_bug_through(monkeypatch, weakness, bug):
    """The bug tests above have teeth: against a gradcheck weakened in the matching way,
    the buggy backward passes (so test_wrong_backward_is_caught would fail), while
    correct gradients still pass the weakened check."""
    module = sys.modules["autograd_core.gradcheck"]
    monkeypatch.setattr(module, "_excess", _weakened(weakness))
    function, make_input, _ = _BUGS[bug]
    assert gradcheck(function.apply, (make_input(),)) is True
    assert gradcheck(Square.apply, (leaf([0.5, -1.0, 2.0]),)) is True
    monkeypatch.undo()
    with pytest.raises(GradcheckError):
        gradcheck(function.apply, (make_input(),))
