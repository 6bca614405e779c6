"""Differentiable ops, one module per family. Each op is declared once with
``registry.register`` next to its Function class; importing this package registers them
all (the order below is the order of ``registry.ops()``)."""
from . import (elementwise, pointwise, reduce, shape, linalg, conv2d, pool, recurrent, sampling,  # noqa: F401
               indexing, activation, scan, einsum, decompositions, convolution, inplace, layer_norm,
               normalization)
