"""The kernel bridge: the only code that calls the compiled extension.

One module per kernel family, each lining up with its C and its tests:

  runtime.py   extension loading, backend, threads, SIMD level, and the helpers every
               family shares (dispatch, by_dtype, pointers, the argument checks)
  windows.py   stride/padding forms and the 'same' rule, shared by conv2d and pool
  gemm.py      csrc/gemm*.c     tests/test_gemm_kernels.py
  conv2d.py    csrc/conv2d*.c   tests/test_conv2d_kernels.py
  activation.py csrc/activation*.c tests/test_activation_kernels.py
  pool.py      csrc/pool*.c     tests/test_pool_kernels.py
  sampling.py  (numpy only)     the pooling/resampling variants without C: window tables
               and per-dim matrices (tests/op_table_pool.py, tests/test_conv_pool_ops.py)
  rnn.py       csrc/rnn*.c      tests/test_rnn_kernels.py
  optim.py     csrc/optim*.c    tests/test_optim_kernels.py
  special.py   csrc/special.c   tests/test_special_kernels.py (erf, erfc)
  norm.py      csrc/norm*.c     tests/test_norm_kernels.py (layer norm, batch norm)
  softmax.py   csrc/softmax*.c  tests/test_softmax_kernels.py (softmax over rows, causal limit)

Every public kernel validates its arguments (shapes, dtypes, contiguity, sizes), so C
never sees an argument that would make it read or write out of bounds, and then runs
its C path or its numpy reference (written next to it) by the backend in force.

Use the kernels through this package: `from autograd_core import kernels;
kernels.gemm(a, b)`. Note that `kernels.gemm` is the function; the module is
`autograd_core.kernels.gemm` in sys.modules, reached with
`from autograd_core.kernels.gemm import matrix_layout` (not `import ... as`).
"""
from .activation import bias_relu_forward, relu_bias_backward
from .conv2d import conv2d_backward_input, conv2d_backward_weight, conv2d_forward
from .gemm import batched_gemm, gemm
from .norm import batch_norm_backward, batch_norm_forward, layer_norm_backward, layer_norm_forward
from .optim import StepCache, adam_step, rmsprop_step, sgd_step
from .pool import avg_pool2d_backward, avg_pool2d_forward, max_pool2d_backward, max_pool2d_forward
from .rnn import (gru_cell_backward, gru_cell_forward, lstm_cell_backward, lstm_cell_forward,
                  lstm_step_backward, lstm_step_forward, projection_forward)
from .runtime import (MAX_THREADS, SIMD_LEVELS, backend, cpu_simd_level, extension_available, get_backend,
                      get_num_threads, get_simd_level, set_backend, set_num_threads, set_simd_level,
                      simd_level)
from .softmax import softmax_backward, softmax_forward
from .special import erf, erfc
from .windows import conv_output_size, resolve_padding

__all__ = [
    "MAX_THREADS", "SIMD_LEVELS", "StepCache", "adam_step", "avg_pool2d_backward", "avg_pool2d_forward",
    "backend", "batch_norm_backward", "batch_norm_forward", "batched_gemm", "bias_relu_forward", "conv2d_backward_input", "conv2d_backward_weight", "conv2d_forward",
    "conv_output_size", "cpu_simd_level", "erf", "erfc", "extension_available", "gemm", "get_backend", "get_num_threads",
    "get_simd_level", "gru_cell_backward", "gru_cell_forward", "layer_norm_backward", "layer_norm_forward",
    "lstm_cell_backward",
    "lstm_cell_forward", "lstm_step_backward", "lstm_step_forward", "max_pool2d_backward",
    "max_pool2d_forward", "projection_forward", "relu_bias_backward", "resolve_padding", "rmsprop_step", "set_backend",
    "set_num_threads", "set_simd_level", "sgd_step", "simd_level", "softmax_backward", "softmax_forward",
]
