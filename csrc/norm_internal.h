/* norm_internal.h: what the normalization driver (norm.c, norm_driver.h) and the per-ISA
 * builds of its loops (norm_rows.h, included by norm.c and norm_x86.c) share. Not part
 * of the public C API (that is kernels.h).
 *
 * Two shapes of work:
 *   layer norm   one row of `features` values is one statistic: row functions
 *   batch norm   one channel of a [rows, channels] block is one statistic: block
 *                functions that walk rows and do a whole channel vector per row
 *
 * Row reductions use 64 bytes of independent accumulators (lane j sums the elements
 * j, j + lanes, ...; norm_rows.h) folded in a fixed tree at the end: every SIMD level
 * adds the same numbers in the same order, so a result never depends on the level
 * (nor on the thread count: see norm_driver.h). */
#ifndef AUTOGRAD_CORE_NORM_INTERNAL_H
#define AUTOGRAD_CORE_NORM_INTERNAL_H
#include <stdint.h>
#include "kernels.h"

/* Row functions (layer norm), n values per row:
 *   layer_forward(x, weight or NULL, bias or NULL, eps, n, y, &mean, &rstd)
 *   layer_backward(grad, x, mean, rstd, weight or NULL, n, grad_x or NULL,
 *                  weight_sums or NULL, bias_sums or NULL): grad_x of the row, and
 *                  weight_sums[j] += grad[j] * xhat[j], bias_sums[j] += grad[j]
 * Block functions (batch norm), `rows` rows of `channels` values, per channel c:
 *   channel_sums(x, rows, channels, sums):                   sums[c] += x[r, c]
 *   centered_squares(x, mean, rows, channels, sums):         sums[c] += (x[r, c] - mean[c])^2
 *   normalize(x, mean, scale, bias or NULL, rows, channels, y):
 *       y[r, c] = (x[r, c] - mean[c]) * scale[c] + bias[c]   (scale = rstd * weight)
 *   backward_sums(grad, x, mean, rstd, rows, channels, sum_grad, sum_product):
 *       sum_grad[c] += grad[r, c], sum_product[c] += grad[r, c] * xhat[r, c]
 *   backward_input(grad, x, mean, rstd, scale, mean_grad, mean_product, rows, channels, grad_x):
 *       grad_x[r, c] = scale[c] * (grad[r, c] - mean_grad[c] - xhat[r, c] * mean_product[c])
 * with xhat[r, c] = (x[r, c] - mean[c]) * rstd[c]. */
#define AG_NORM_ROWS_TABLE(SUFFIX, T)                                                           \
    typedef struct {                                                                            \
        void (*layer_forward)(const T *, const T *, const T *, T, int64_t, T *, T *, T *);      \
        void (*layer_backward)(const T *, const T *, T, T, const T *, int64_t, T *, T *, T *);  \
        void (*channel_sums)(const T *, int64_t, int64_t, T *);                                 \
        void (*centered_squares)(const T *, const T *, int64_t, int64_t, T *);                  \
        void (*normalize)(const T *, const T *, const T *, const T *, int64_t, int64_t, T *);   \
        void (*backward_sums)(const T *, const T *, const T *, const T *, int64_t, int64_t,     \
                              T *, T *);                                                        \
        void (*backward_input)(const T *, const T *, const T *, const T *, const T *,           \
                               const T *, const T *, int64_t, int64_t, T *);                    \
    } ag_norm_rows_##SUFFIX;
AG_NORM_ROWS_TABLE(f32, float)
AG_NORM_ROWS_TABLE(f64, double)

/* Filled with the loops of `level` (0 portable, 1 AVX2+FMA, 2 AVX-512F); the caller has
 * already clamped level to what the CPU supports. */
void ag_norm_select_f32(int level, ag_norm_rows_f32 *rows);
void ag_norm_select_f64(int level, ag_norm_rows_f64 *rows);

void ag_norm_rows_f32_portable(ag_norm_rows_f32 *rows);
void ag_norm_rows_f64_portable(ag_norm_rows_f64 *rows);
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define AG_HAVE_NORM_X86 1
void ag_norm_rows_f32_avx2(ag_norm_rows_f32 *rows);
void ag_norm_rows_f64_avx2(ag_norm_rows_f64 *rows);
void ag_norm_rows_f32_avx512(ag_norm_rows_f32 *rows);
void ag_norm_rows_f64_avx512(ag_norm_rows_f64 *rows);
#endif

#endif
