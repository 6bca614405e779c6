"""autograd_core: a reverse-mode automatic-differentiation engine with hand-written C kernels.

    import autograd_core as ag
    x = ag.tensor([[1.0, 2.0]], requires_grad=True)
    loss = (x @ x.T).sum()
    loss.backward()
    x.grad            # tensor([[2., 4.]])

The op names exported here (``exp``, ``matmul``, ``conv2d``, ...) and the Tensor methods
and operators come from the op registry (``autograd_core.registry``): each op declares
them where it is defined, in ``autograd_core.ops.*``. The Function classes there are
public too, since users extend the engine with the same mechanism.

Imports form a chain with no cycle: grad_mode <- engine <- tensor <- function <-
registry <- ops <- this package.
"""
from .grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .tensor import (Tensor, arange, default_generator, eye, from_numpy, full, manual_seed, ones,
                     ones_like, rand, randn, tensor, zeros, zeros_like)
from .function import Context, Function
from .creation import (empty, empty_like, full_like, linspace, logspace, rand_like, randint, randint_like,
                       randn_like, randperm, tril_indices, triu_indices)
from . import creation
from .kernels import backend, get_backend, get_num_threads, set_backend, set_num_threads
from .gradcheck import GradcheckError, gradcheck, gradgradcheck
from .autograd import grad
from . import func  # noqa: F401  (vjp, jvp, jacobian, hessian, hvp, grad transforms)
from .serialization import load, save
from . import registry
from . import ops  # noqa: F401  (importing the ops registers them)
from . import linalg  # noqa: F401  (torch.linalg's names: ag.linalg.inv, ...)

globals().update(registry.exports())

float16 = "float16"
float32 = "float32"
float64 = "float64"
uint8 = "uint8"
int8 = "int8"
int16 = "int16"
int32 = "int32"
int64 = "int64"
bool = "bool"  # noqa: A001 (torch.bool's name; the package namespace has no use for the builtin)

__version__ = "0.1.0"

__all__ = ["Context", "Function", "GradcheckError", "Tensor", "arange", "backend", "bool", "default_generator",
           "enable_grad", "eye", "float16", "float32", "float64", "from_numpy", "full", "get_backend",
           "get_num_threads", "grad", "gradcheck", "gradgradcheck", "int8", "int16", "int32", "int64", "is_grad_enabled", "load",
           "manual_seed", "no_grad", "ones", "ones_like", "rand", "randn", "save", "set_backend",
           "set_grad_enabled", "set_num_threads", "tensor", "uint8", "zeros", "zeros_like"]
__all__ += creation.__all__
__all__ += list(registry.exports())
