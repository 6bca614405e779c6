/* conv2d_internal.h: what the conv2d driver (conv2d.c, conv2d_driver.h) and its
 * ISA-specific direct kernels (conv2d_x86.c) share. Not part of the public C API (that
 * is kernels.h).
 *
 * A direct kernel computes a whole pass (forward, backward input or backward weight)
 * for one geometry without im2col, and returns
 *    1  it handled the pass,
 *    0  the geometry is not one it handles (the driver then takes im2col + GEMM),
 *   -1  a workspace could not be allocated.
 * The driver asks ag_conv2d_select_* for the kernels of the SIMD level in use
 * (ag_get_simd_level(), the one level every family reads); a NULL entry means "no
 * direct kernel at this level". */
#ifndef AUTOGRAD_CORE_CONV2D_INTERNAL_H
#define AUTOGRAD_CORE_CONV2D_INTERNAL_H
#include <stdint.h>
#include "kernels.h"

/* Multiply-adds below which one thread does the whole convolution. */
#define AG_CONV2D_PARALLEL_MIN_WORK ((double)(1 << 20))

/* forward(g, x, w, y); backward_input(g, grad_y, w, grad_x); backward_weight(g, x, grad_y, grad_w) */
typedef int (*ag_conv2d_direct_f32_fn)(const ag_conv2d_geometry *g, const float *a,
                                       const float *b, float *out);
typedef int (*ag_conv2d_direct_f64_fn)(const ag_conv2d_geometry *g, const double *a,
                                       const double *b, double *out);
typedef struct {
    ag_conv2d_direct_f32_fn forward, backward_input, backward_weight;
} ag_conv2d_direct_f32;
typedef struct {
    ag_conv2d_direct_f64_fn forward, backward_input, backward_weight;
} ag_conv2d_direct_f64;

/* Filled with the direct kernels for `level` (0 portable, 1 AVX2+FMA, 2 AVX-512F); the
 * caller has already clamped level to what the CPU supports. */
void ag_conv2d_select_f32(int level, ag_conv2d_direct_f32 *kernels);
void ag_conv2d_select_f64(int level, ag_conv2d_direct_f64 *kernels);

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define AG_HAVE_CONV2D_X86 1
/* conv2d_x86.c: float32 direct NHWC kernels with AVX-512F intrinsics. */
int ag_conv2d_direct_forward_avx512_f32(const ag_conv2d_geometry *g, const float *x,
                                        const float *w, float *y);
int ag_conv2d_direct_backward_input_avx512_f32(const ag_conv2d_geometry *g, const float *grad_y,
                                               const float *w, float *grad_x);
int ag_conv2d_direct_backward_weight_avx512_f32(const ag_conv2d_geometry *g, const float *x,
                                                const float *grad_y, float *grad_w);
#endif

#endif
