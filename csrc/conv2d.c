/* conv2d.c: 2-D convolution (cross-correlation, as in every deep-learning library) over
 * NHWC images with [kh, kw, c_in, c_out] weights: the portable driver.
 *
 * Split as GEMM is (after BLIS): this file and conv2d_driver.h (the driver, written once
 * and included per element type) are portable C; the ISA-specific direct kernels live
 * in conv2d_x86.c behind conv2d_internal.h, chosen here per call from the one SIMD
 * level (ag_get_simd_level) that every family reads.
 *
 * Three methods. Stride-1 5x5 convolutions with 8+ channels each way and finite
 * operands take Winograd's F(4x4, 5x5) (F(2x2, 5x5) below 8 output pixels a side;
 * winograd.c), all three passes, at every SIMD level and both element types, except
 * where the AVX-512 direct kernel is faster (below 2^24 multiply-adds or 16 channels;
 * conv2d_driver.h has the figures). float32 at SIMD level 2 (AVX-512F) with channel
 * counts that are multiples of 16 takes a direct NHWC kernel (conv2d_x86.c, where its
 * measured figures are); everything else takes im2col per tile of output pixels, then
 * the GEMM
 * (ag_sgemm / ag_dgemm):
 *   forward         y_tile [rows, c_out]  = col_tile [rows, K] @ W [K, c_out]
 *   backward weight gW     [K, c_out]    += col_tile^T @ gy_tile
 *   backward input  gcol   [rows, K]      = gy_tile @ W^T, then col2im into gx
 * where K = kh * kw * c_in and a col row is the receptive field of one output pixel in
 * (kh, kw, c_in) order -- exactly the memory order of W, so W needs no repacking.
 *
 * Why tiles: the full im2col matrix of a batch can be huge (K times the output size),
 * so each thread only ever materialises about TILE_ELEMENTS of it; a tile is still tall
 * enough for the GEMM to run at full speed.
 *
 * Threads: when there is enough work, each thread takes whole tiles (im2col, GEMM,
 * col2im) in one parallel region, and the GEMM, called from inside it, stays on its
 * thread (OpenMP does not activate nested regions by default). One region per call
 * instead of several per tile matters on a busy machine, where every barrier waits for
 * the slowest, possibly descheduled, thread. Small problems, and backward-input tiles
 * smaller than an image, run tiles one after another with im2col / col2im split over
 * threads and the GEMM threading itself.
 *
 * col2im adds each col row back onto its receptive field; receptive fields of one
 * image overlap, so threads of the backward input take whole images and their writes
 * never meet.
 *
 * 1x1 convolutions with stride 1 and no padding skip im2col: x already is the col matrix.
 */
#include <stdlib.h>
#include <string.h>
#include "kernels.h"
#include "conv2d_internal.h"
#include "winograd_internal.h"
#include "parallel.h"

/* Elements of one col buffer (1 MiB of float32, per thread): it stays in the L2
 * cache between im2col and the GEMM, and the tile is still hundreds of rows tall. */
#define TILE_ELEMENTS ((int64_t)1 << 18)
/* Elements of an im2col / col2im copy below which a parallel region costs more than it
 * saves. */
#define AG_CONV2D_COPY_MIN_WORK 32768.0

static int64_t tile_rows(const ag_conv2d_geometry *g) {
    int64_t k = g->kernel_h * g->kernel_w * g->in_channels;
    int64_t rows = TILE_ELEMENTS / (k > 0 ? k : 1);
    if (rows < 64) rows = 64;    /* keep the GEMM tall even for very wide receptive fields */
    return rows;
}

static int is_pointwise(const ag_conv2d_geometry *g) {
    return g->kernel_h == 1 && g->kernel_w == 1 && g->stride_h == 1 && g->stride_w == 1 &&
           g->pad_top == 0 && g->pad_left == 0 &&
           g->out_height == g->height && g->out_width == g->width;
}

/* Where output pixel p reads the input: its image n, the input row and column of its
 * window's top-left cell (ih0, iw0; negative inside the padding), and the kernel columns
 * [kw_lo, kw_hi) that fall inside the image (kw_lo == kw_hi when none does). im2col and
 * col2im both walk windows this way. */
typedef struct {
    int64_t n, ih0, iw0, kw_lo, kw_hi;
} receptive_field;

static inline receptive_field field_of(const ag_conv2d_geometry *g, int64_t p) {
    const int64_t plane = g->out_height * g->out_width;
    const int64_t rest = p % plane;
    receptive_field f;
    f.n = p / plane;
    f.ih0 = rest / g->out_width * g->stride_h - g->pad_top;
    f.iw0 = rest % g->out_width * g->stride_w - g->pad_left;
    f.kw_lo = f.iw0 < 0 ? -f.iw0 : 0;
    f.kw_hi = g->width - f.iw0 < g->kernel_w ? g->width - f.iw0 : g->kernel_w;
    if (f.kw_lo > g->kernel_w) f.kw_lo = g->kernel_w;
    if (f.kw_hi < f.kw_lo) f.kw_hi = f.kw_lo;
    return f;
}

/* How the output pixels are cut into tiles. threads > 1 means "one parallel region,
 * threads take whole tiles"; then step is a multiple of `unit` output pixels and the
 * number of tiles a multiple of the thread count where possible, so that the static
 * split is even. */
typedef struct {
    int64_t step, tiles;
    int threads;
} tile_plan;

static tile_plan plan_tiles(const ag_conv2d_geometry *g, int64_t total, int64_t unit) {
    const int64_t max_rows = tile_rows(g);
    const int threads = ag_get_num_threads();
    const double work = (double)total * (double)(g->kernel_h * g->kernel_w * g->in_channels) *
                        (double)g->out_channels;
    tile_plan plan;
    plan.threads = 1;
    plan.step = max_rows < total ? max_rows : total;
    plan.tiles = (total + plan.step - 1) / plan.step;
#ifndef _OPENMP
    (void)threads; (void)work; (void)unit;
    return plan;  /* lets the compiler drop the threaded paths */
#endif
    if (threads > 1 && work >= AG_CONV2D_PARALLEL_MIN_WORK && unit <= max_rows) {
        const int64_t units = total / unit, per_tile = max_rows / unit;
        int64_t tiles = (units + per_tile - 1) / per_tile;
        tiles = (tiles + threads - 1) / threads * threads;
        if (tiles > units) tiles = units;
        if (tiles >= 2) {
            const int64_t units_per_tile = (units + tiles - 1) / tiles;
            plan.step = units_per_tile * unit;
            plan.tiles = (units + units_per_tile - 1) / units_per_tile;
            plan.threads = threads < plan.tiles ? threads : (int)plan.tiles;
        }
    }
    return plan;
}


/* ---- the direct kernels for each SIMD level ----------------------------------------- */
void ag_conv2d_select_f32(int level, ag_conv2d_direct_f32 *kernels) {
    kernels->forward = NULL;
    kernels->backward_input = NULL;
    kernels->backward_weight = NULL;
#ifdef AG_HAVE_CONV2D_X86
    if (level >= 2) {
        kernels->forward = ag_conv2d_direct_forward_avx512_f32;
        kernels->backward_input = ag_conv2d_direct_backward_input_avx512_f32;
        kernels->backward_weight = ag_conv2d_direct_backward_weight_avx512_f32;
    }
#endif
    (void)level;
}

/* float64 always takes the im2col path: it serves gradcheck, not speed. */
void ag_conv2d_select_f64(int level, ag_conv2d_direct_f64 *kernels) {
    (void)level;
    kernels->forward = NULL;
    kernels->backward_input = NULL;
    kernels->backward_weight = NULL;
}

/* ---- the six entry points --------------------------------------------------------------- */
#define T float
#define AG_NAME(x) x##_f32
#define AG_GEMM ag_sgemm
#define AG_DIRECT ag_conv2d_direct_f32
#define AG_DIRECT_SELECT ag_conv2d_select_f32
#define AG_WINOGRAD ag_winograd_forward_f32
#define AG_WINOGRAD_WEIGHT ag_winograd_weight_f32
#include "conv2d_driver.h"
#undef T
#undef AG_NAME
#undef AG_GEMM
#undef AG_DIRECT
#undef AG_DIRECT_SELECT
#undef AG_WINOGRAD
#undef AG_WINOGRAD_WEIGHT

#define T double
#define AG_NAME(x) x##_f64
#define AG_GEMM ag_dgemm
#define AG_DIRECT ag_conv2d_direct_f64
#define AG_DIRECT_SELECT ag_conv2d_select_f64
#define AG_WINOGRAD ag_winograd_forward_f64
#define AG_WINOGRAD_WEIGHT ag_winograd_weight_f64
#include "conv2d_driver.h"
#undef T
#undef AG_NAME
#undef AG_GEMM
#undef AG_DIRECT
#undef AG_DIRECT_SELECT
#undef AG_WINOGRAD
#undef AG_WINOGRAD_WEIGHT
