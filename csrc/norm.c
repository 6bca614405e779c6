/* norm.c: layer norm over the last dimension and batch norm (training statistics) over
 * channels-last input, forward and backward, each one threaded C pass per phase: the
 * portable driver.
 *
 * Why C: numpy took ~7.7 ms of the 64 ms GPT training step for its 9 layer norms
 * ([768, 128] float32; a mean, a centring, an einsum, a scale and a shift in the
 * forward, five passes and temporaries in the backward) and 14-16 ms for a BatchNorm2d
 * forward + backward of [64, 16, 16, 32] float32 (torch: 1.3 ms). Here a layer-norm row
 * is read into L1 once per direction and done there (the mean, the variance, y; or the
 * two gradient sums, grad_x and the affine parameters' partial sums), and batch norm is
 * one parallel region per direction whose phases (channel sums, centred squares,
 * normalize; gradient sums, grad_x) are split by barriers.
 *
 * Split as the other families are: the loops (norm_rows.h) are built once per SIMD
 * level -- here for portable C, in norm_x86.c for AVX2+FMA and AVX-512F -- and each call
 * takes the loops of ag_get_simd_level(); the drivers (norm_driver.h) are written once
 * per element type. Results do not depend on the level (the loops add in the same
 * order everywhere) nor on the thread count (see norm_driver.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "norm_internal.h"
#include "parallel.h"

/* ---- the portable loops, and the loops of each SIMD level ------------------------------- */
#define AG_LEVEL portable
#include "norm_rows_level.h"
#undef AG_LEVEL

void ag_norm_select_f32(int level, ag_norm_rows_f32 *rows) {
#ifdef AG_HAVE_NORM_X86
    if (level >= 2) { ag_norm_rows_f32_avx512(rows); return; }
    if (level == 1) { ag_norm_rows_f32_avx2(rows); return; }
#endif
    (void)level;
    ag_norm_rows_f32_portable(rows);
}

void ag_norm_select_f64(int level, ag_norm_rows_f64 *rows) {
#ifdef AG_HAVE_NORM_X86
    if (level >= 2) { ag_norm_rows_f64_avx512(rows); return; }
    if (level == 1) { ag_norm_rows_f64_avx2(rows); return; }
#endif
    (void)level;
    ag_norm_rows_f64_portable(rows);
}

/* Elements below which one thread does the whole call. Each direction is a few passes
 * over the data (~0.07 ms for the GPT's [768, 128] float32 on one thread, ~0.25 ms for a
 * [64, 16, 16, 32] batch norm), while waking a sleeping team and its barriers cost
 * 0.1-0.5 ms each on a busy 2-core machine. Measured there (batch norm forward +
 * backward, float32, medians of 15 alternate rounds): [16384, 32] 0.68 ms on one
 * thread, 3.2 ms on two; [65536, 64] 13.2 ms on one, 9.7 ms on two. As the activation
 * family: a second thread from 2 Mi elements on. */
#ifndef AG_NORM_PARALLEL_MIN
#define AG_NORM_PARALLEL_MIN 2097152.0
#endif

/* Chunks of rows for the reductions across rows: about 32 rows each, at most 64 (the
 * partial sums are chunks x width values), a function of the row count alone. */
#define AG_NORM_CHUNK_ROWS 32
#define AG_NORM_MAX_CHUNKS 64
static int64_t norm_chunks(int64_t rows) {
    int64_t chunks = rows / AG_NORM_CHUNK_ROWS;
    if (chunks < 1) chunks = 1;
    return chunks > AG_NORM_MAX_CHUNKS ? AG_NORM_MAX_CHUNKS : chunks;
}

#define T float
#define SQRT sqrtf
#define AG_NAME(x) x##_f32
#define AG_ROWS_TABLE ag_norm_rows_f32
#define AG_SELECT ag_norm_select_f32
#include "norm_driver.h"
#undef T
#undef SQRT
#undef AG_NAME
#undef AG_ROWS_TABLE
#undef AG_SELECT

#define T double
#define SQRT sqrt
#define AG_NAME(x) x##_f64
#define AG_ROWS_TABLE ag_norm_rows_f64
#define AG_SELECT ag_norm_select_f64
#include "norm_driver.h"
#undef T
#undef SQRT
#undef AG_NAME
#undef AG_ROWS_TABLE
#undef AG_SELECT
