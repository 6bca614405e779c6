/* pool.c: 2-D max and average pooling over NHWC images: the portable driver.
 *
 * NHWC keeps the channels of one pixel contiguous, so every loop below walks a window
 * pixel by pixel and does a whole channel vector at each step (the compiler vectorises
 * the channel loops).
 *
 * Padding is virtual: cells outside the image are skipped, never read. For max pooling
 * that means padded cells never win (they act as -inf, but even a real -inf beats them);
 * the bridge guarantees every window holds at least one real cell.
 *
 * Split as GEMM is: this file opens the parallel regions (parallel.h) and hands each
 * thread its rows or images; the loops themselves (pool_rows.h) are built once per SIMD
 * level -- here for portable C, in pool_x86.c for AVX2+FMA and AVX-512F -- and each
 * call takes the loops of ag_get_simd_level(), the one level every family reads.
 *
 * Threads split images (and, for the forward passes, output rows); the backward passes
 * scatter into the input gradient and only split images, since windows of one image may
 * overlap while different images never share input cells.
 */
#include <stdlib.h>
#include <string.h>
#include "pool_internal.h"
#include "parallel.h"

/* ---- the portable loops, and the loops of each SIMD level ------------------------------- */
#define AG_LEVEL portable
#include "pool_rows_level.h"
#undef AG_LEVEL

void ag_pool_select_f32(int level, ag_pool_rows_f32 *rows) {
#ifdef AG_HAVE_POOL_X86
    if (level >= 2) { ag_pool_rows_f32_avx512(rows); return; }
    if (level == 1) { ag_pool_rows_f32_avx2(rows); return; }
#endif
    (void)level;
    ag_pool_rows_f32_portable(rows);
}

void ag_pool_select_f64(int level, ag_pool_rows_f64 *rows) {
#ifdef AG_HAVE_POOL_X86
    if (level >= 2) { ag_pool_rows_f64_avx512(rows); return; }
    if (level == 1) { ag_pool_rows_f64_avx2(rows); return; }
#endif
    (void)level;
    ag_pool_rows_f64_portable(rows);
}

/* Below this many elements of work a parallel region costs more than it saves. */
static int pool_threads(int64_t work) {
    return ag_threads_for((double)work, 32768.0);
}

/* ---- the eight entry points ---------------------------------------------------------------- */
#define T float
#define AG_NAME(x) x##_f32
#define AG_ROWS_TABLE ag_pool_rows_f32
#define AG_SELECT ag_pool_select_f32
#include "pool_driver.h"
#undef T
#undef AG_NAME
#undef AG_ROWS_TABLE
#undef AG_SELECT

#define T double
#define AG_NAME(x) x##_f64
#define AG_ROWS_TABLE ag_pool_rows_f64
#define AG_SELECT ag_pool_select_f64
#include "pool_driver.h"
#undef T
#undef AG_NAME
#undef AG_ROWS_TABLE
#undef AG_SELECT
