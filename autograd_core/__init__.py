"""autograd_core: a reverse-mode automatic-differentiation engine with hand-written C kernels.

    import autograd_core as ag
    x = ag.tensor([[1.0, 2.0]], requires_grad=True)
    loss = (x @ x.T).sum()
    loss.backward()
    x.grad            # tensor([[2., 4.]])

The functional ops are exported here; the Function classes behind them live in
``autograd_core.ops.*`` and are public too (nn's recurrent layers build on
``autograd_core.ops.recurrent``), since users extend the engine with the same mechanism.
"""
from .grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .function import Context, Function
from .tensor import (Tensor, arange, default_generator, eye, from_numpy, full, manual_seed, ones,
                     ones_like, rand, randn, tensor, zeros, zeros_like)
from .kernels import backend, get_backend, get_num_threads, set_backend, set_num_threads
from .gradcheck import GradcheckError, gradcheck
from .ops.elementwise import (abs, add, cast, clip, div, elu, exp, leaky_relu, log, maximum, minimum, mul,
                              neg, relu, sigmoid, softplus, sqrt, sub, tanh, where)
from .ops.elementwise import pow as pow  # noqa: F401  (shadows the builtin inside this namespace only)
from .ops.reduce import argmax, argmin, log_softmax, max, mean, min, softmax, std, sum, var
from .ops.shape import (broadcast_to, chunk, concat, expand, flatten, getitem, one_hot, pad, permute, reshape,
                        split, squeeze, stack, transpose, unsqueeze)
from .ops.linalg import linear, matmul
from .ops.conv import conv2d
from .ops.pool import avg_pool2d, max_pool2d
from .ops.recurrent import gru_step, input_projection, lstm_step, rnn_step, unbind
from . import _methods  # noqa: F401  (attaches the Tensor methods and operators)

float32 = "float32"
float64 = "float64"
int64 = "int64"

__version__ = "0.1.0"
