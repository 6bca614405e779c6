"""Grad mode: whether ops record the graph. One of the three pieces of global state."""
import contextlib
import functools
import threading

class _State(threading.local):
    """Per-thread grad mode. The class attribute is every new thread's default, so that
    reading ``_local.enabled`` never misses: a getattr with a default that misses costs
    ~0.7 us (an AttributeError raised and caught), and every op reads the mode."""
    enabled = True


_local = _State()


def is_grad_enabled():
    """True when ops record the graph for backward (the default)."""
    return _local.enabled


def _set(enabled):
    _local.enabled = bool(enabled)


class _GradModeContext:
    """Base for no_grad/enable_grad/set_grad_enabled: a context manager and a decorator."""

    _enabled = True

    def __enter__(self):
        self._previous = is_grad_enabled()
        _set(self._enabled)
        return self

    def __exit__(self, *exc):
        _set(self._previous)
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            previous = is_grad_enabled()
            _set(self._enabled)
            try:
                return fn(*args, **kwargs)
            finally:
                _set(previous)
        return wrapper


class _BareDecorator(_GradModeContext):
    """Also usable as a decorator without parentheses: `@no_grad` as well as `@no_grad()`."""

    def __new__(cls, fn=None):
        self = super().__new__(cls)
        return self(fn) if callable(fn) else self

    def __init__(self, fn=None):
        pass


class no_grad(_BareDecorator):
    """Disable graph recording: `with no_grad(): ...`, `@no_grad()` or `@no_grad`."""
    _enabled = False


class enable_grad(_BareDecorator):
    """Enable graph recording inside a no_grad region: `with enable_grad(): ...`,
    `@enable_grad()` or `@enable_grad`."""
    _enabled = True


class set_grad_enabled(_GradModeContext):
    """Turn recording on or off: as a plain call `set_grad_enabled(False)` (it stays so),
    as `with set_grad_enabled(flag): ...` (restored on exit) or as a decorator, as in PyTorch."""

    def __init__(self, mode):
        self._enabled = bool(mode)
        self._previous = is_grad_enabled()
        _set(self._enabled)  # takes effect now, so that the plain call works

    def __enter__(self):
        return self  # already set by __init__; _previous is the mode from before

    def __call__(self, fn):
        _set(self._previous)  # as a decorator it must not change the mode at definition time
        return super().__call__(fn)
