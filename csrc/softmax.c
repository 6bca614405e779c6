/* softmax.c: softmax over the rows of [rows, width], forward in place and backward, with
 * an optional causal limit, for the attention's weights (nn/apps/gpt.py PackedAttention).
 *
 * Why C: numpy did the causal softmax of the GPT's [48, 64, 64] float32 scores as six
 * passes (mask, max, subtract, exp, sum, scale) and its backward as three, ~3 ms of a
 * 38 ms step. Here one row (64 values: L1) is read once per direction and done there,
 * and with the causal limit the blocked half of each [n, n] stack is only zeroed.
 *
 * Split as the other families are: the row loops (softmax_rows.h) are built once per
 * SIMD level -- here for portable C, in softmax_x86.c for AVX2+FMA and AVX-512F -- and
 * each call takes the loops of ag_get_simd_level(); the driver (softmax_driver.h) is
 * written once per element type. The loops are plain C the compiler vectorises: the
 * float32 exponential is a branch-free polynomial (libm's expf is a scalar call per
 * element, slower than numpy's SIMD exp). A row is computed the same way whichever
 * thread does it, so results do not depend on the thread count. */
#include <stdint.h>
#include <string.h>
#include "softmax_internal.h"
#include "parallel.h"

/* Elements from which a call spreads its rows over the threads. The GPT's [3072, 64]
 * causal scores take ~0.3 ms forward, 0.05 ms backward on one thread; on the busy 2-core
 * machine two threads took 0.8 and 0.55 ms (waking the team costs more than the work).
 * As the activation and norm families: a second thread from 2 Mi elements on. */
#ifndef AG_SOFTMAX_PARALLEL_MIN
#define AG_SOFTMAX_PARALLEL_MIN 2097152.0
#endif

/* ---- the portable loops ----------------------------------------------------------------- */
#define AG_LEVEL portable
#include "softmax_rows_level.h"
#undef AG_LEVEL

static void softmax_select_f32(int level, ag_softmax_rows_f32 *rows) {
#ifdef AG_HAVE_SOFTMAX_X86
    if (level >= 2) { ag_softmax_rows_f32_avx512(rows); return; }
    if (level == 1) { ag_softmax_rows_f32_avx2(rows); return; }
#endif
    (void)level;
    ag_softmax_rows_f32_portable(rows);
}

static void softmax_select_f64(int level, ag_softmax_rows_f64 *rows) {
#ifdef AG_HAVE_SOFTMAX_X86
    if (level >= 2) { ag_softmax_rows_f64_avx512(rows); return; }
    if (level == 1) { ag_softmax_rows_f64_avx2(rows); return; }
#endif
    (void)level;
    ag_softmax_rows_f64_portable(rows);
}

#define T float
#define AG_NAME(x) x##_f32
#define AG_ROWS_TABLE ag_softmax_rows_f32
#define AG_SELECT softmax_select_f32
#include "softmax_driver.h"
#undef T
#undef AG_NAME
#undef AG_ROWS_TABLE
#undef AG_SELECT

#define T double
#define AG_NAME(x) x##_f64
#define AG_ROWS_TABLE ag_softmax_rows_f64
#define AG_SELECT softmax_select_f64
#include "softmax_driver.h"
#undef T
#undef AG_NAME
#undef AG_ROWS_TABLE
#undef AG_SELECT
