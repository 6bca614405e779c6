"""The library's error classes: torch's, and the ones this library raised before.

torch raises IndexError for a dim or index out of range and RuntimeError for shapes that
do not fit an op; this library raised ValueError for both until the torch-API release.
Each class below is both, so that code written for torch (``except RuntimeError``) and
code written for the earlier releases (``except ValueError``) catch it.
"""

__all__ = ["ShapeError", "DimensionError"]


class ShapeError(RuntimeError, ValueError):
    """Shapes that do not fit an op (torch's RuntimeError; also a ValueError)."""


class DimensionError(IndexError, ValueError):
    """A dim out of range for a tensor (torch's IndexError; also a ValueError)."""
