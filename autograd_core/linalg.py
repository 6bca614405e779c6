"""``autograd_core.linalg``: torch.linalg's functions, with the same names and arguments.

    import autograd_core as ag
    A = ag.randn(3, 3, requires_grad=True)
    sign, logabsdet = ag.linalg.slogdet(A)
    ag.linalg.norm(A, ord="fro").backward()

The ops are declared in autograd_core/ops/decompositions.py and registered as
``linalg_<name>`` (aten's names, also exported as ``autograd_core.linalg_<name>``); this
module gives them their torch.linalg names. Each takes batches of matrices [..., m, n].
"""
from .ops.decompositions import (EighResult, LinAlgError, QRResult, SlogdetResult, SVDResult,
                                 linalg_cholesky as cholesky, linalg_det as det, linalg_eigh as eigh,
                                 linalg_inv as inv, linalg_matrix_norm as matrix_norm, linalg_norm as norm,
                                 linalg_qr as qr, linalg_slogdet as slogdet, linalg_solve as solve,
                                 linalg_svd as svd, linalg_svdvals as svdvals,
                                 linalg_vector_norm as vector_norm)

__all__ = ["EighResult", "LinAlgError", "QRResult", "SVDResult", "SlogdetResult", "cholesky", "det", "eigh", "inv", "matrix_norm", "norm", "qr", "slogdet", "solve",
           "svd", "svdvals", "vector_norm"]
