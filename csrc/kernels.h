/*
 * kernels.h: the whole C API of autograd_core's compiled kernels.
 *
 * Conventions
 *   - Every array is dense and row-major unless a leading dimension says otherwise.
 *   - Images are NHWC [n, h, w, c]; conv weights are [kh, kw, c_in, c_out].
 *   - Sizes are int64_t. The Python bridge (autograd_core/kernels.py) validates every
 *     argument before calling, so these functions never check bounds themselves.
 *   - Functions suffixed _f32 / _f64 take float / double.
 *   - Nothing here knows about tensors, graphs or Python.
 *
 * The text between the CFFI markers is parsed by cffi, so it must stay plain
 * declarations (no macros, no #include).
 */
#ifndef AUTOGRAD_CORE_KERNELS_H
#define AUTOGRAD_CORE_KERNELS_H
#include <stdint.h>

/* The most threads a kernel runs on (Python's kernels.runtime.MAX_THREADS; a test checks
 * they agree). Counts above it are clamped, never handed to libgomp. */
#define AG_MAX_THREADS 256

/* CFFI-BEGIN */

/* ---- runtime: threads and SIMD path ---------------------------------------- */
/* Number of OpenMP threads the kernels use (1 when built without OpenMP). */
void ag_set_num_threads(int n);
int ag_get_num_threads(void);
/* 1 when the extension was compiled with OpenMP. */
int ag_has_openmp(void);
/* SIMD levels: 0 = portable C, 1 = AVX2+FMA, 2 = AVX-512F. */
int ag_cpu_simd_level(void);           /* best level this CPU supports */
int ag_get_simd_level(void);           /* level in use */
int ag_set_simd_level(int level);      /* force a level (clamped to the CPU's; -1 = the CPU's best);
                                          returns the level in use */

/* ---- GEMM: C = alpha * op(A) * op(B) + beta * C, row-major ------------------ */
/* op(A) is m x k, op(B) is k x n, C is m x n. trans_x != 0 means op(X) = X^T.
 * lda/ldb/ldc are row strides in elements. When beta == 0, C is not read. C must not
 * overlap A or B. Threads follow ag_set_num_threads (only for m*n*k >= 128^3); calls
 * from several threads at once are safe (each call allocates its own packing buffers). */
void ag_sgemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
              float alpha, const float *a, int64_t lda, const float *b, int64_t ldb,
              float beta, float *c, int64_t ldc);
void ag_dgemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
              double alpha, const double *a, int64_t lda, const double *b, int64_t ldb,
              double beta, double *c, int64_t ldc);
/* C = op(A) * op(B) into a C-contiguous m x n C (ldc = n, alpha 1, beta 0), with
 * transposes = trans_a | 2 * trans_b: the Python wrapper's call, 4 fewer arguments for
 * cffi to convert than ag_sgemm (at n = 64 the call's Python side is a fifth of it). */
void ag_sgemm_product(int transposes, int64_t m, int64_t n, int64_t k,
                      const float *a, int64_t lda, const float *b, int64_t ldb, float *c);
void ag_dgemm_product(int transposes, int64_t m, int64_t n, int64_t k,
                      const double *a, int64_t lda, const double *b, int64_t ldb, double *c);
/* The same for a batch of independent products: matrix i of A starts at a + i*stride_a
 * (likewise B and C). Small products run in parallel across the batch. */
void ag_sgemm_batched(int trans_a, int trans_b, int64_t batch, int64_t m, int64_t n, int64_t k,
                      float alpha, const float *a, int64_t stride_a, int64_t lda,
                      const float *b, int64_t stride_b, int64_t ldb,
                      float beta, float *c, int64_t stride_c, int64_t ldc);
void ag_dgemm_batched(int trans_a, int trans_b, int64_t batch, int64_t m, int64_t n, int64_t k,
                      double alpha, const double *a, int64_t stride_a, int64_t lda,
                      const double *b, int64_t stride_b, int64_t ldb,
                      double beta, double *c, int64_t stride_c, int64_t ldc);

/* ---- conv2d, pooling, fused recurrent cells (conv2d.c, pool.c, rnn_cells.c) ---- */
/* Geometry of a 2-D convolution over NHWC x [batch, height, width, in_channels] with
 * weights [kernel_h, kernel_w, in_channels, out_channels] and output
 * [batch, out_height, out_width, out_channels]. pad_top / pad_left are the zero rows /
 * columns before the image; the padding after it is implied by out_height / out_width. */
typedef struct {
    int64_t batch, height, width, in_channels;
    int64_t kernel_h, kernel_w, out_channels;
    int64_t stride_h, stride_w, pad_top, pad_left;
    int64_t out_height, out_width;
} ag_conv2d_geometry;
/* Return 0, or -1 when the im2col workspace could not be allocated. grad_x / grad_w
 * are overwritten, not accumulated into. */
int ag_conv2d_forward_f32(const ag_conv2d_geometry *g, const float *x, const float *w, float *y);
int ag_conv2d_forward_f64(const ag_conv2d_geometry *g, const double *x, const double *w, double *y);
int ag_conv2d_backward_input_f32(const ag_conv2d_geometry *g, const float *grad_y, const float *w, float *grad_x);
int ag_conv2d_backward_input_f64(const ag_conv2d_geometry *g, const double *grad_y, const double *w, double *grad_x);
int ag_conv2d_backward_weight_f32(const ag_conv2d_geometry *g, const float *x, const float *grad_y, float *grad_w);
int ag_conv2d_backward_weight_f64(const ag_conv2d_geometry *g, const double *x, const double *grad_y, double *grad_w);

/* Geometry of 2-D pooling over NHWC [batch, height, width, channels]; every window
 * must hold at least one real (unpadded) cell. */
typedef struct {
    int64_t batch, height, width, channels;
    int64_t kernel_h, kernel_w, stride_h, stride_w, pad_top, pad_left;
    int64_t out_height, out_width;
} ag_pool2d_geometry;
/* argmax[i] = flat index into x of the maximum that y[i] took (first maximum in
 * row-major window order; argmax may be NULL in the forward: y only); kernel_h * kernel_w must be below 2**31 (a float32 forward
 * keeps window cell numbers in 32 bits). The forward allocates nothing, whatever the
 * window's size, and returns 0 (-1 is reserved for a failed allocation). The backward returns -1
 * (and skips the entry) when an argmax points outside its own image, else 0. */
int ag_max_pool2d_forward_f32(const ag_pool2d_geometry *g, const float *x, float *y, int64_t *argmax);
int ag_max_pool2d_forward_f64(const ag_pool2d_geometry *g, const double *x, double *y, int64_t *argmax);
int ag_max_pool2d_backward_f32(const ag_pool2d_geometry *g, const float *grad_y, const int64_t *argmax, float *grad_x);
int ag_max_pool2d_backward_f64(const ag_pool2d_geometry *g, const double *grad_y, const int64_t *argmax, double *grad_x);
void ag_avg_pool2d_forward_f32(const ag_pool2d_geometry *g, const float *x, float *y, int count_include_pad);
void ag_avg_pool2d_forward_f64(const ag_pool2d_geometry *g, const double *x, double *y, int count_include_pad);
void ag_avg_pool2d_backward_f32(const ag_pool2d_geometry *g, const float *grad_y, float *grad_x, int count_include_pad);
void ag_avg_pool2d_backward_f64(const ag_pool2d_geometry *g, const double *grad_y, double *grad_x, int count_include_pad);

/* Fused LSTM cell (PyTorch gate order i, f, g, o). gates [batch, 4*hidden] are the
 * pre-activations x W_ih^T + b_ih + h W_hh^T + b_hh; c_prev, h, c are [batch, hidden];
 * saved [batch, 5*hidden] receives i, f, g, o (activated) and tanh(c). The backward
 * writes grad_gates [batch, 4*hidden] (w.r.t. the pre-activations) and grad_c_prev;
 * grad_c may be NULL, meaning zeros. */
void ag_lstm_cell_forward_f32(const float *gates, const float *c_prev, float *h, float *c, float *saved, int64_t batch, int64_t hidden);
void ag_lstm_cell_forward_f64(const double *gates, const double *c_prev, double *h, double *c, double *saved, int64_t batch, int64_t hidden);
void ag_lstm_cell_backward_f32(const float *saved, const float *c_prev, const float *grad_h, const float *grad_c, float *grad_gates, float *grad_c_prev, int64_t batch, int64_t hidden);
void ag_lstm_cell_backward_f64(const double *saved, const double *c_prev, const double *grad_h, const double *grad_c, double *grad_gates, double *grad_c_prev, int64_t batch, int64_t hidden);
/* One whole LSTM step: gates = x_gates + h_prev W_hh^T + bias (x_gates rows ld_x
 * apart; weight_hh_t is W_hh^T, [hidden, 4*hidden] row-major; h_prev NULL means a zero
 * state and skips the matmul; bias [4*hidden] or NULL), then the cell as above. work [batch, 4*hidden] is scratch.
 * The backward is the cell's backward followed by grad_h_prev = grad_gates W_hh
 * (weight_hh [4*hidden, hidden]; skipped when grad_h_prev is NULL). grad_bias, unless
 * NULL, is [grad_bias_rows, 4*hidden]: the column sums of grad_gates are added into it,
 * each thread into a row of its own (at most grad_bias_rows threads run). */
void ag_lstm_step_forward_f32(const float *x_gates, int64_t ld_x, const float *h_prev, const float *weight_hh_t, const float *bias, const float *c_prev, float *work, float *h, float *c, float *saved, int64_t batch, int64_t hidden);
void ag_lstm_step_forward_f64(const double *x_gates, int64_t ld_x, const double *h_prev, const double *weight_hh_t, const double *bias, const double *c_prev, double *work, double *h, double *c, double *saved, int64_t batch, int64_t hidden);
void ag_lstm_step_backward_f32(const float *saved, const float *c_prev, const float *grad_h, const float *grad_c, const float *weight_hh, float *grad_gates, float *grad_h_prev, float *grad_c_prev, float *grad_bias, int64_t grad_bias_rows, int64_t batch, int64_t hidden);
void ag_lstm_step_backward_f64(const double *saved, const double *c_prev, const double *grad_h, const double *grad_c, const double *weight_hh, double *grad_gates, double *grad_h_prev, double *grad_c_prev, double *grad_bias, int64_t grad_bias_rows, int64_t batch, int64_t hidden);
/* Fused GRU cell (PyTorch gate order r, z, n; reset applied after the hidden matmul).
 * gi = x W_ih^T + b_ih and gh = h W_hh^T + b_hh are [batch, 3*hidden]; saved
 * [batch, 4*hidden] receives r, z, n and gh_n. grad_h_prev is only the direct path
 * through z * h_prev; the path through gh is the caller's matmul with W_hh. */
void ag_gru_cell_forward_f32(const float *gi, const float *gh, const float *h_prev, float *h, float *saved, int64_t batch, int64_t hidden);
void ag_gru_cell_forward_f64(const double *gi, const double *gh, const double *h_prev, double *h, double *saved, int64_t batch, int64_t hidden);
void ag_gru_cell_backward_f32(const float *saved, const float *h_prev, const float *grad_h, float *grad_gi, float *grad_gh, float *grad_h_prev, int64_t batch, int64_t hidden);
void ag_gru_cell_backward_f64(const double *saved, const double *h_prev, const double *grad_h, double *grad_gi, double *grad_gh, double *grad_h_prev, int64_t batch, int64_t hidden);
/* A whole LSTM layer over its sequence, time-major: x_gates [steps, batch, 4*hidden] =
 * x W_ih^T + b_ih + b_hh for every step; h0 [batch, hidden] or NULL (zeros), c0
 * [batch, hidden] (always given); weight_hh_t [hidden, 4*hidden] is W_hh^T. h and c
 * [steps, batch, hidden] receive every step's states, saved [steps, batch, 5*hidden]
 * each step's i, f, g, o and tanh(c); work [batch, 4*hidden] is scratch. The backward
 * reads saved, c, h0 and c0, the gradients of the outputs grad_h [steps, batch, hidden]
 * (NULL: zeros) and of the last states grad_final_h and grad_final_c [batch, hidden]
 * (NULL: zeros), weight_hh [4*hidden, hidden] and work [4, batch, hidden] scratch; it
 * writes grad_gates [steps, batch, 4*hidden] (the gradient of x_gates) and, unless
 * NULL, grad_h0 (only when h0 is given) and grad_c0 [batch, hidden]. */
void ag_lstm_sequence_forward_f32(const float *x_gates, const float *h0, const float *c0, const float *weight_hh_t, float *work, float *h, float *c, float *saved, int64_t steps, int64_t batch, int64_t hidden);
void ag_lstm_sequence_forward_f64(const double *x_gates, const double *h0, const double *c0, const double *weight_hh_t, double *work, double *h, double *c, double *saved, int64_t steps, int64_t batch, int64_t hidden);
void ag_lstm_sequence_backward_f32(const float *saved, const float *c, const float *h0, const float *c0, const float *grad_h, const float *grad_final_h, const float *grad_final_c, const float *weight_hh, float *work, float *grad_gates, float *grad_h0, float *grad_c0, int64_t steps, int64_t batch, int64_t hidden);
void ag_lstm_sequence_backward_f64(const double *saved, const double *c, const double *h0, const double *c0, const double *grad_h, const double *grad_final_h, const double *grad_final_c, const double *weight_hh, double *work, double *grad_gates, double *grad_h0, double *grad_c0, int64_t steps, int64_t batch, int64_t hidden);
void ag_lstm_layer_forward_f32(const float *inputs, int64_t input_width, const float *h0, const float *c0, const float *weight_t, const float *bias, float *work, float *h, float *c, float *saved, int64_t steps, int64_t batch, int64_t hidden);
void ag_lstm_layer_forward_f64(const double *inputs, int64_t input_width, const double *h0, const double *c0, const double *weight_t, const double *bias, double *work, double *h, double *c, double *saved, int64_t steps, int64_t batch, int64_t hidden);
int64_t ag_lstm_layer_weight_scratch_f32(int64_t steps, int64_t batch, int64_t hidden, int64_t input_width);
int ag_lstm_layer_backward_f32(const float *saved, const float *c, const float *h0, const float *c0, const float *grad_h, const float *grad_final_h, const float *grad_final_c, const float *weight_t, int64_t input_width, float *work, float *grad_gates, float *grad_inputs, float *grad_h0, float *grad_c0, float *grad_bias, int64_t steps, int64_t batch, int64_t hidden, const float *inputs, const float *h, float *grad_weight_ih, float *grad_weight_hh, float *weight_scratch, int64_t weight_scratch_size);
int64_t ag_lstm_layer_weight_scratch_f64(int64_t steps, int64_t batch, int64_t hidden, int64_t input_width);
int ag_lstm_layer_backward_f64(const double *saved, const double *c, const double *h0, const double *c0, const double *grad_h, const double *grad_final_h, const double *grad_final_c, const double *weight_t, int64_t input_width, double *work, double *grad_gates, double *grad_inputs, double *grad_h0, double *grad_c0, double *grad_bias, int64_t steps, int64_t batch, int64_t hidden, const double *inputs, const double *h, double *grad_weight_ih, double *grad_weight_hh, double *weight_scratch, int64_t weight_scratch_size);
/* A whole GRU layer over its sequence, time-major: x_gates [steps, batch, 3*hidden] =
 * x W_ih^T + b_ih for every step; h0 [batch, hidden] or NULL (zeros); weight_hh_t
 * [hidden, 3*hidden] is W_hh^T; bias_hh [3*hidden] or NULL. h [steps, batch, hidden]
 * receives every step's state, saved [steps, batch, 4*hidden] each step's r, z, n, gh_n;
 * work [batch, 3*hidden] is scratch. The backward takes the gradients of the outputs
 * grad_h [steps, batch, hidden] (NULL: zeros) and of the last state grad_final [batch,
 * hidden] (NULL: zeros), weight_hh [3*hidden, hidden] and work [2, batch, hidden]
 * scratch; it writes grad_gi and grad_gh [steps, batch, 3*hidden] (the gradients of the
 * input and hidden pre-activations) and, unless NULL, grad_h0 [batch, hidden]. */
void ag_gru_sequence_forward_f32(const float *x_gates, const float *h0, const float *weight_hh_t, const float *bias_hh, float *work, float *h, float *saved, int64_t steps, int64_t batch, int64_t hidden);
void ag_gru_sequence_forward_f64(const double *x_gates, const double *h0, const double *weight_hh_t, const double *bias_hh, double *work, double *h, double *saved, int64_t steps, int64_t batch, int64_t hidden);
void ag_gru_sequence_backward_f32(const float *saved, const float *h, const float *h0, const float *grad_h, const float *grad_final, const float *weight_hh, float *work, float *grad_gi, float *grad_gh, float *grad_h0, int64_t steps, int64_t batch, int64_t hidden);
void ag_gru_sequence_backward_f64(const double *saved, const double *h, const double *h0, const double *grad_h, const double *grad_final, const double *weight_hh, double *work, double *grad_gi, double *grad_gh, double *grad_h0, int64_t steps, int64_t batch, int64_t hidden);
/* A whole Elman RNN layer: h_t = act(x_gates_t + h_{t-1} W_hh^T), act tanh or (relu
 * nonzero) relu; x_gates [steps, batch, hidden] = x W_ih^T + b_ih + b_hh, h0 and
 * weight_hh_t [hidden, hidden] as for the GRU. The backward reads the outputs h (the
 * nonlinearity's derivative comes from them), grad_h and grad_final as for the GRU,
 * weight_hh, work [batch, hidden] scratch, and writes grad_pre [steps, batch, hidden]
 * (the gradient of the pre-activations, so of x_gates) and, unless NULL, grad_h0. */
void ag_rnn_sequence_forward_f32(const float *x_gates, const float *h0, const float *weight_hh_t, float *h, int64_t steps, int64_t batch, int64_t hidden, int relu);
void ag_rnn_sequence_forward_f64(const double *x_gates, const double *h0, const double *weight_hh_t, double *h, int64_t steps, int64_t batch, int64_t hidden, int relu);
void ag_rnn_sequence_backward_f32(const float *h, const float *grad_h, const float *grad_final, const float *weight_hh, float *work, float *grad_pre, float *grad_h0, int64_t steps, int64_t batch, int64_t hidden, int relu);
void ag_rnn_sequence_backward_f64(const double *h, const double *grad_h, const double *grad_final, const double *weight_hh, double *work, double *grad_pre, double *grad_h0, int64_t steps, int64_t batch, int64_t hidden, int relu);

/* ---- fused optimizer steps (optim.c) ------------------------------------------ */
/* One optimizer step over `count` parameters in one call, bit for bit the numpy update
 * of autograd_core/kernels/optim.py (the same operations in the same order, each
 * rounded to T; no FMA). Parameter i is sizes[i] dense elements at params[i]; grads[i]
 * and its state buffers have the same size. Hyperparameters come as double and are
 * rounded to T as numpy rounds a Python float against a T array; a term whose
 * hyperparameter is 0 is left out, as the reference tests them for truth. The elements
 * of all parameters split over ag_get_num_threads() threads (from 32 Ki elements on).
 * Adam: step_sizes[i] = lr / (1 - beta1^t), bias2_scales[i] = 1 / sqrt(1 - beta2^t) with
 * parameter i's own step t. SGD: momentum_buffers may be NULL when momentum == 0;
 * fresh[i] != 0 starts buffer i at the gradient (its first step). RMSprop: grad_avg is
 * read only when centered, momentum_buffers only when momentum != 0 (else NULL). */
void ag_adam_step_f32(int64_t count, const int64_t *sizes, float *const *params, const float *const *grads, float *const *exp_avg, float *const *exp_avg_sq, const double *step_sizes, const double *bias2_scales, double beta1, double beta2, double eps, double weight_decay);
void ag_adam_step_f64(int64_t count, const int64_t *sizes, double *const *params, const double *const *grads, double *const *exp_avg, double *const *exp_avg_sq, const double *step_sizes, const double *bias2_scales, double beta1, double beta2, double eps, double weight_decay);
void ag_sgd_step_f32(int64_t count, const int64_t *sizes, float *const *params, const float *const *grads, float *const *momentum_buffers, const int *fresh, double lr, double momentum, double dampening, double weight_decay, int nesterov);
void ag_sgd_step_f64(int64_t count, const int64_t *sizes, double *const *params, const double *const *grads, double *const *momentum_buffers, const int *fresh, double lr, double momentum, double dampening, double weight_decay, int nesterov);
void ag_rmsprop_step_f32(int64_t count, const int64_t *sizes, float *const *params, const float *const *grads, float *const *square_avg, float *const *grad_avg, float *const *momentum_buffers, double lr, double alpha, double eps, double weight_decay, double momentum, int centered);
void ag_rmsprop_step_f64(int64_t count, const int64_t *sizes, double *const *params, const double *const *grads, double *const *square_avg, double *const *grad_avg, double *const *momentum_buffers, double lr, double alpha, double eps, double weight_decay, double momentum, int centered);

/* ---- bias + ReLU, the fused layers' epilogue, and its backward (activation.c) ---- */
/* x, y [rows, channels], dense (y may be x: in place). y = x + bias (bias [channels], or
 * NULL for none), then, when relu != 0, y = max(y, 0) with NaN passing through (numpy's
 * maximum). mask, unless NULL (it must be NULL when relu == 0), receives the ReLU's
 * mask as bits: bit i % 8 of byte i / 8 is y[i] > 0 (numpy's packbits with
 * bitorder='little'; ceil(rows * channels / 8) bytes). Threads follow ag_get_num_threads. */
void ag_bias_relu_forward_f32(int64_t rows, int64_t channels, const float *x, const float *bias, int relu, float *y, uint8_t *mask);
void ag_bias_relu_forward_f64(int64_t rows, int64_t channels, const double *x, const double *bias, int relu, double *y, uint8_t *mask);
/* grad [rows, channels]. With a mask (as the forward wrote it): grad_x[i] = grad[i] where
 * bit i is set, else 0 (a select: a NaN gradient of an inactive unit gives 0), written
 * unless grad_x is NULL. grad_bias [channels], unless NULL, = the column sums of grad_x
 * (of grad without a mask). Returns 0, or -1 when the partial sums could not be allocated. */
int ag_relu_bias_backward_f32(int64_t rows, int64_t channels, const float *grad, const uint8_t *mask, float *grad_x, float *grad_bias);
int ag_relu_bias_backward_f64(int64_t rows, int64_t channels, const double *grad, const uint8_t *mask, double *grad_x, double *grad_bias);

/* ---- erf and erfc, elementwise (special.c) -------------------------------------------- */
/* y[i] = erf(x[i]) / erfc(x[i]) for i < count, x and y dense (y may be x: in place), by
 * libm (erff / erf / erfcf / erfc, ~1 ulp; NaN -> NaN, +-inf -> +-1 / 0 and 2).
 * Threads follow ag_get_num_threads from 16 Ki elements on. */
void ag_erf_f32(int64_t count, const float *x, float *y);
void ag_erf_f64(int64_t count, const double *x, double *y);
void ag_erfc_f32(int64_t count, const float *x, float *y);
void ag_erfc_f64(int64_t count, const double *x, double *y);

/* ---- layer norm and batch norm, forward and backward (norm.c) ------------------------ */
/* Layer norm of each row of x [rows, features] (dense): mean and the biased variance of
 * the row, rstd = 1 / sqrt(var + eps) (eps rounded to T), y = (x - mean) * rstd *
 * weight + bias (weight, bias [features], each may be NULL). mean, rstd [rows] are
 * written for the backward. The backward takes grad [rows, features] and the forward's
 * x, mean, rstd, weight and writes, each unless NULL: grad_x [rows, features], and
 * grad_weight = sum over rows of grad * xhat, grad_bias = sum over rows of grad
 * ([features]), xhat = (x - mean) * rstd. Threads follow ag_get_num_threads from 2 Mi
 * elements on; results are the same at every thread count and SIMD level. Returns 0,
 * or -1 when the partial sums could not be allocated. */
void ag_layer_norm_forward_f32(int64_t rows, int64_t features, const float *x, const float *weight, const float *bias, double eps, float *y, float *mean, float *rstd);
void ag_layer_norm_forward_f64(int64_t rows, int64_t features, const double *x, const double *weight, const double *bias, double eps, double *y, double *mean, double *rstd);
int ag_layer_norm_backward_f32(int64_t rows, int64_t features, const float *grad, const float *x, const float *mean, const float *rstd, const float *weight, float *grad_x, float *grad_weight, float *grad_bias);
int ag_layer_norm_backward_f64(int64_t rows, int64_t features, const double *grad, const double *x, const double *mean, const double *rstd, const double *weight, double *grad_x, double *grad_weight, double *grad_bias);
/* Batch norm in training of channels-last x [rows, channels] (dense; rows = N*H*W):
 * per channel the mean and the biased variance over the rows, rstd = 1 / sqrt(var +
 * eps), y = (x - mean) * (rstd * weight) + bias (weight, bias [channels] or NULL). mean,
 * rstd and, unless NULL, var [channels] are written (the running statistics' update is
 * the caller's). The backward writes grad_weight = sum of grad * xhat and grad_bias =
 * sum of grad over the rows (both required) and, unless NULL, grad_x = weight * rstd *
 * (grad - mean(grad) - xhat * mean(grad * xhat)). Threads and determinism as for layer
 * norm. Return 0, or -1 when the partial sums could not be allocated. */
int ag_batch_norm_forward_f32(int64_t rows, int64_t channels, const float *x, const float *weight, const float *bias, double eps, float *y, float *mean, float *var, float *rstd);
int ag_batch_norm_forward_f64(int64_t rows, int64_t channels, const double *x, const double *weight, const double *bias, double eps, double *y, double *mean, double *var, double *rstd);
int ag_batch_norm_backward_f32(int64_t rows, int64_t channels, const float *grad, const float *x, const float *mean, const float *rstd, const float *weight, float *grad_x, float *grad_weight, float *grad_bias);
int ag_batch_norm_backward_f64(int64_t rows, int64_t channels, const double *grad, const double *x, const double *mean, const double *rstd, const double *weight, double *grad_x, double *grad_weight, double *grad_bias);

/* ---- gelu and silu, one pass each way (activation.c) ------------------------------------- */
/* x, y, grad, grad_x dense [count] (y may be x). y = gelu(x) = x Phi(x), or with
 * tanh_form != 0 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))); the backward writes
 * grad_x = grad * gelu'(x) from the forward's input. float32 at the AVX2 / AVX-512 levels
 * computes in double lanes (erfc to ~6e-9 relative); float64 uses libm. NaN -> NaN,
 * gelu(inf) = inf, gelu(-inf) = NaN (x * 0, as x * Phi(x) gives). Threads follow
 * ag_get_num_threads from 32 Ki elements on. */
void ag_gelu_forward_f32(int64_t count, const float *x, int tanh_form, float *y);
void ag_gelu_forward_f64(int64_t count, const double *x, int tanh_form, double *y);
void ag_gelu_backward_f32(int64_t count, const float *x, const float *grad, int tanh_form, float *grad_x);
void ag_gelu_backward_f64(int64_t count, const double *x, const double *grad, int tanh_form, double *grad_x);
/* silu the same way: y = x sigmoid(x), grad_x = grad * sigmoid(x) (1 + x (1 - sigmoid(x))).
 * silu(-inf) = NaN (-inf * 0), as x * sigmoid(x) gives. */
void ag_silu_forward_f32(int64_t count, const float *x, float *y);
void ag_silu_forward_f64(int64_t count, const double *x, double *y);
void ag_silu_backward_f32(int64_t count, const float *x, const float *grad, float *grad_x);
void ag_silu_backward_f64(int64_t count, const double *x, const double *grad, double *grad_x);
/* elu and the binary cross-entropy with logits, one pass each way (activation.c), dense
 * [count] arrays, float32 SIMD loops in double lanes, float64 libm; threads as gelu's.
 * elu: y = x > 0 ? x : alpha expm1(x); grad_x = grad * (x > 0 ? 1 : alpha exp(x)).
 * bce: losses = max(x, 0) - x target + log1p(exp(-|x|)) per element (x the logits);
 * grad_logits = scale * (sigmoid(x) - target). NaN -> NaN. */
void ag_elu_forward_f32(int64_t count, const float *x, double alpha, float *y);
void ag_elu_forward_f64(int64_t count, const double *x, double alpha, double *y);
void ag_elu_backward_f32(int64_t count, const float *x, const float *grad, double alpha, float *grad_x);
void ag_elu_backward_f64(int64_t count, const double *x, const double *grad, double alpha, double *grad_x);
void ag_bce_logits_forward_f32(int64_t count, const float *logits, const float *target, float *losses);
void ag_bce_logits_forward_f64(int64_t count, const double *logits, const double *target, double *losses);
void ag_bce_logits_backward_f32(int64_t count, const float *logits, const float *target, double scale, float *grad_logits);
void ag_bce_logits_backward_f64(int64_t count, const double *logits, const double *target, double scale, double *grad_logits);

/* ---- softmax over rows, forward in place and backward (softmax.c) ------------------------ */
/* x [rows, width] dense. The forward replaces each row by exp(x - max) / sum over its kept
 * columns: all of them (causal 0), or 0..(row mod width) (causal 1: the rows of [n, n]
 * stacks of attention scores, query by key) with 0 written beyond. The backward writes
 * grad_x = y * (grad - sum(grad * y)) over the kept columns, 0 beyond, from the forward's
 * output y; grad_x may be grad (in place). float32 uses a polynomial exp (relative error
 * ~1 ulp), float64 libm's. A row whose kept values are all -inf gives NaN (as numpy).
 * Threads follow ag_get_num_threads from 2 Mi elements on; results do not depend on them. */
void ag_softmax_forward_f32(int64_t rows, int64_t width, int causal, float *x);
void ag_softmax_forward_f64(int64_t rows, int64_t width, int causal, double *x);
void ag_softmax_backward_f32(int64_t rows, int64_t width, int causal, const float *y, const float *grad, float *grad_x);
void ag_softmax_backward_f64(int64_t rows, int64_t width, int causal, const double *y, const double *grad, double *grad_x);

/* CFFI-END */

#endif
