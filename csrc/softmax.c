/* softmax.c: softmax over the rows of [rows, width], forward in place and backward, with
 * an optional causal limit, for the attention's weights (nn/apps/gpt.py PackedAttention).
 *
 * Why C: numpy did the causal softmax of the GPT's [48, 64, 64] float32 scores as six
 * passes (mask, max, subtract, exp, sum, scale) and its backward as three, ~3 ms of a
 * 38 ms step. Here one row (64 values: L1) is read once per direction and done there,
 * and with the causal limit the blocked half of each [n, n] stack is only zeroed.
 *
 * Portable C only (no SIMD level split): the loops are written so that the compiler
 * vectorises them at the baseline ISA -- the float32 exponential is a branch-free
 * polynomial (libm's expf is a scalar call per element, slower than numpy's SIMD exp),
 * the reductions are `omp simd` reductions. float64 calls libm's exp (not a hot path).
 * A row is computed the same way whichever thread does it, so results do not depend on
 * the thread count. */
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "kernels.h"
#include "parallel.h"

/* Elements from which a call spreads its rows over the threads. The GPT's [3072, 64]
 * causal scores take ~0.3 ms forward, 0.05 ms backward on one thread; on the busy 2-core
 * machine two threads took 0.8 and 0.55 ms (waking the team costs more than the work).
 * As the activation and norm families: a second thread from 2 Mi elements on. */
#ifndef AG_SOFTMAX_PARALLEL_MIN
#define AG_SOFTMAX_PARALLEL_MIN 2097152.0
#endif

/* exp(x) for x <= 0 (x - the row's max), float32, written for vectorisation: x = n ln2 + r
 * with |r| <= ln2 / 2 (ln2 in two parts, Cody-Waite), exp(r) by its Taylor series to r^7
 * (relative error below 1e-8, under float32's half ulp), times 2^n put into the exponent
 * bits. Below -87 (where exp leaves float32's normal range) and for -inf: 0. NaN stays
 * NaN (the polynomial of NaN). The selects are integer masks on the bits, not float
 * compares: GCC keeps a float compare a branch (it may trap), and the loop scalar.
 * Integer work is unsigned: no undefined overflow on any input. */
static inline float softmax_exp_f32(float x) {
    const float shift = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    const uint32_t low_bits = 0xC2AE0000u; /* -87.0f */
    uint32_t x_bits, rounded_bits, scale_bits, keep, result_bits;
    float clamped, rounded, n, r, p, scale, result;
    memcpy(&x_bits, &x, sizeof x_bits);
    /* all ones unless x < -87 (bits above -87's, up to -inf's; NaNs are kept) */
    keep = (uint32_t)((x_bits > low_bits) & (x_bits <= 0xFF800000u)) - 1u;
    x_bits = (x_bits & keep) | (low_bits & ~keep);
    memcpy(&clamped, &x_bits, sizeof clamped);
    rounded = clamped * 1.44269504088896341f + shift;
    n = rounded - shift;
    memcpy(&rounded_bits, &rounded, sizeof rounded_bits);
    r = clamped - n * 0.693145751953125f;      /* ln2's high part: exact product with n */
    r = r - n * 1.42860682030941723e-06f;      /* and its low part */
    p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    /* n is an integer in [-126, 0] here: the low bits of rounded hold n + 2^22 (its
     * mantissa), 2^n's exponent field is n + 127 */
    scale_bits = ((rounded_bits - 0x4B400000u) + 127u) << 23;
    memcpy(&scale, &scale_bits, sizeof scale);
    result = p * scale;
    memcpy(&result_bits, &result, sizeof result_bits);
    result_bits &= keep;
    memcpy(&result, &result_bits, sizeof result);
    return result;
}

static inline double softmax_exp_f64(double x) { return exp(x); }

/* The columns row `row` keeps: all (causal 0), or 0..(row mod width) (causal 1). */
static inline int64_t softmax_kept(int64_t row, int64_t width, int causal) {
    return causal ? row % width + 1 : width;
}

#define T float
#define EXP softmax_exp_f32
#define AG_NAME(x) x##_f32
#include "softmax_driver.h"
#undef T
#undef EXP
#undef AG_NAME

#define T double
#define EXP softmax_exp_f64
#define AG_NAME(x) x##_f64
#include "softmax_driver.h"
#undef T
#undef EXP
#undef AG_NAME
