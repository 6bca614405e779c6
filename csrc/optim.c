/* optim.c: fused optimizer steps (Adam, SGD with momentum, RMSprop): the portable driver.
 *
 * nn/optim.py's numpy update is a dozen elementwise passes per parameter; each pass
 * reads and writes whole arrays, so a step over the seed CNN's 3.3M parameters moves
 * several times the memory the update needs. Here one call updates every parameter of
 * an optimizer group: each element is read once, updated in registers, written once, on
 * all threads. The results are bit for bit the numpy reference's (see optim_spans.h).
 *
 * Split as the other families are: this file splits the elements over threads
 * (parallel.h); the element loops (optim_spans.h) are built once per SIMD level -- here
 * for portable C, in optim_x86.c for AVX2+FMA and AVX-512F -- and each call takes the
 * loops of ag_get_simd_level(). */
/* Exactness needs every multiply and add rounded on its own: no FMA contraction
 * (-std=c99 already implies it; this keeps it under any build). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize ("fp-contract=off")
#endif
#include "optim_internal.h"
#include "parallel.h"

/* ---- the portable loops, and the loops of each SIMD level -------------------------------- */
/* Portable square roots: scalar (each sets errno for a negative argument, which is why
 * they are not in the update loops; see optim_spans.h). */
static void sqrt_array_f32_portable(float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] = sqrtf(x[i]);
}

static void sqrt_array_f64_portable(double *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] = sqrt(x[i]);
}

#define AG_LEVEL portable
#include "optim_spans_level.h"
#undef AG_LEVEL

void ag_optim_select_f32(int level, ag_optim_spans_f32 *spans) {
#ifdef AG_HAVE_OPTIM_X86
    if (level >= 2) { ag_optim_spans_f32_avx512(spans); return; }
    if (level == 1) { ag_optim_spans_f32_avx2(spans); return; }
#endif
    (void)level;
    ag_optim_spans_f32_portable(spans);
}

void ag_optim_select_f64(int level, ag_optim_spans_f64 *spans) {
#ifdef AG_HAVE_OPTIM_X86
    if (level >= 2) { ag_optim_spans_f64_avx512(spans); return; }
    if (level == 1) { ag_optim_spans_f64_avx2(spans); return; }
#endif
    (void)level;
    ag_optim_spans_f64_portable(spans);
}

/* ---- threads ------------------------------------------------------------------------------ */
/* An element costs about a nanosecond on one thread (it is memory bound), a parallel
 * region's start and join some microseconds: threads from 32 Ki elements on. */
static int optim_threads(int64_t elements) {
    return ag_threads_for((double)elements, 32768.0);
}

/* ---- the entry points, once per element type ---------------------------------------------- */
#define T float
#define AG_NAME(x) x##_f32
#define AG_SPANS ag_optim_spans_f32
#define AG_ADAM_HYPER ag_adam_hyper_f32
#define AG_SGD_HYPER ag_sgd_hyper_f32
#define AG_RMSPROP_HYPER ag_rmsprop_hyper_f32
#define AG_SELECT ag_optim_select_f32
#include "optim_driver.h"
#undef T
#undef AG_NAME
#undef AG_SPANS
#undef AG_ADAM_HYPER
#undef AG_SGD_HYPER
#undef AG_RMSPROP_HYPER
#undef AG_SELECT

#define T double
#define AG_NAME(x) x##_f64
#define AG_SPANS ag_optim_spans_f64
#define AG_ADAM_HYPER ag_adam_hyper_f64
#define AG_SGD_HYPER ag_sgd_hyper_f64
#define AG_RMSPROP_HYPER ag_rmsprop_hyper_f64
#define AG_SELECT ag_optim_select_f64
#include "optim_driver.h"
#undef T
#undef AG_NAME
#undef AG_SPANS
#undef AG_ADAM_HYPER
#undef AG_SGD_HYPER
#undef AG_RMSPROP_HYPER
#undef AG_SELECT
