/* winograd.c: stride-1 5x5 convolutions by Winograd's minimal filtering F(m x m, 5 x 5)
 * (winograd_tile.h has the method), the portable build and the choice of level and m.
 *
 * The conv2d driver (conv2d_driver.h) calls ag_winograd_forward_* first for the forward
 * pass and, with the transposed geometry and flipped weights, for the input gradient;
 * it falls back to the direct / im2col kernels when this returns 0.
 *
 * Why: on the seed CNN's second layer (14x14x32 -> 64, batch 100) the direct AVX-512
 * kernel already runs at the core's FMA peak; F(4x4, 5x5) needs 64 products per 16
 * outputs instead of 400, F(2x2, 5x5) 36 per 4 (see the figures in
 * ag_winograd_forward_*). The price is rounding: float32 results differ from the exact
 * ones by a few 1e-6 of the output's scale (measured against the float64 reference:
 * about 2e-6 for m = 2, 5e-6 for m = 4, 3e-7 for the direct sum), within what a
 * float32 layer of 800-term sums is tested to. */
#pragma GCC optimize ("fp-contract=fast")
#include "winograd_internal.h"

#define AG_LEVEL portable
#define WG_VBYTES 16
#define WG_MR 2
#include "winograd_level.h"
#undef AG_LEVEL
#undef WG_VBYTES
#undef WG_MR

/* Below these channel counts the transforms cost more than the products they save. */
#define WG_MIN_IN_CHANNELS 8
#define WG_MIN_OUT_CHANNELS 8

static int winograd_takes(const ag_conv2d_geometry *g) {
    return g->kernel_h == 5 && g->kernel_w == 5 && g->stride_h == 1 && g->stride_w == 1 &&
           g->in_channels >= WG_MIN_IN_CHANNELS && g->out_channels >= WG_MIN_OUT_CHANNELS &&
           g->out_height >= 4 && g->out_width >= 4 && g->batch >= 1;
}

/* m = 4 unless the output is so small that its tiles would be mostly padding. */
static int winograd_m(const ag_conv2d_geometry *g) {
    return (g->out_height >= 8 && g->out_width >= 8) ? 4 : 2;
}

int ag_winograd_forward_f32(const ag_conv2d_geometry *g, const float *x, const float *w,
                            int flipped, float *y) {
    const int level = ag_get_simd_level(), m = winograd_m(g);
    if (!winograd_takes(g)) return 0;
#ifdef AG_HAVE_WINOGRAD_X86
    if (level >= 2) return m == 4 ? ag_winograd_run_f32_m4_avx512(g, x, w, flipped, y)
                                  : ag_winograd_run_f32_m2_avx512(g, x, w, flipped, y);
    if (level == 1) return m == 4 ? ag_winograd_run_f32_m4_avx2(g, x, w, flipped, y)
                                  : ag_winograd_run_f32_m2_avx2(g, x, w, flipped, y);
#endif
    (void)level;
    return m == 4 ? ag_winograd_run_f32_m4_portable(g, x, w, flipped, y)
                  : ag_winograd_run_f32_m2_portable(g, x, w, flipped, y);
}

int ag_winograd_forward_f64(const ag_conv2d_geometry *g, const double *x, const double *w,
                            int flipped, double *y) {
    const int level = ag_get_simd_level(), m = winograd_m(g);
    if (!winograd_takes(g)) return 0;
#ifdef AG_HAVE_WINOGRAD_X86
    if (level >= 2) return m == 4 ? ag_winograd_run_f64_m4_avx512(g, x, w, flipped, y)
                                  : ag_winograd_run_f64_m2_avx512(g, x, w, flipped, y);
    if (level == 1) return m == 4 ? ag_winograd_run_f64_m4_avx2(g, x, w, flipped, y)
                                  : ag_winograd_run_f64_m2_avx2(g, x, w, flipped, y);
#endif
    (void)level;
    return m == 4 ? ag_winograd_run_f64_m4_portable(g, x, w, flipped, y)
                  : ag_winograd_run_f64_m2_portable(g, x, w, flipped, y);
}

int ag_winograd_weight_f32(const ag_conv2d_geometry *g, const float *x, const float *grad_y, float *grad_w) {
    const int level = ag_get_simd_level(), m = winograd_m(g);
    if (!winograd_takes(g)) return 0;
#ifdef AG_HAVE_WINOGRAD_X86
    if (level >= 2) return m == 4 ? ag_winograd_weight_run_f32_m4_avx512(g, x, grad_y, grad_w)
                                  : ag_winograd_weight_run_f32_m2_avx512(g, x, grad_y, grad_w);
    if (level == 1) return m == 4 ? ag_winograd_weight_run_f32_m4_avx2(g, x, grad_y, grad_w)
                                  : ag_winograd_weight_run_f32_m2_avx2(g, x, grad_y, grad_w);
#endif
    (void)level;
    return m == 4 ? ag_winograd_weight_run_f32_m4_portable(g, x, grad_y, grad_w)
                  : ag_winograd_weight_run_f32_m2_portable(g, x, grad_y, grad_w);
}

int ag_winograd_weight_f64(const ag_conv2d_geometry *g, const double *x, const double *grad_y, double *grad_w) {
    const int level = ag_get_simd_level(), m = winograd_m(g);
    if (!winograd_takes(g)) return 0;
#ifdef AG_HAVE_WINOGRAD_X86
    if (level >= 2) return m == 4 ? ag_winograd_weight_run_f64_m4_avx512(g, x, grad_y, grad_w)
                                  : ag_winograd_weight_run_f64_m2_avx512(g, x, grad_y, grad_w);
    if (level == 1) return m == 4 ? ag_winograd_weight_run_f64_m4_avx2(g, x, grad_y, grad_w)
                                  : ag_winograd_weight_run_f64_m2_avx2(g, x, grad_y, grad_w);
#endif
    (void)level;
    return m == 4 ? ag_winograd_weight_run_f64_m4_portable(g, x, grad_y, grad_w)
                  : ag_winograd_weight_run_f64_m2_portable(g, x, grad_y, grad_w);
}
