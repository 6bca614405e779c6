/* softmax_rows_level.h: the softmax row loops (softmax_rows.h) for float and double at
 * one SIMD level. The includer defines AG_LEVEL, the suffix of that level's functions
 * (portable, avx2, avx512), under whatever `#pragma GCC target` the level needs; this
 * gives ag_softmax_rows_f32_<level> and ag_softmax_rows_f64_<level> (softmax_internal.h). */
#include <math.h>
#include <stdint.h>
#include <string.h>
#ifndef AG_PASTE3
#define AG_PASTE3_(a, b, c) a##b##c
#define AG_PASTE3(a, b, c) AG_PASTE3_(a, b, c)
#endif
#ifndef AG_PASTE2
#define AG_PASTE2_(a, b) a##b
#define AG_PASTE2(a, b) AG_PASTE2_(a, b)
#endif

/* exp(x) for x <= 0 (x - the row's max), float32, written for vectorisation: x = n ln2 + r
 * with |r| <= ln2 / 2 (ln2 in two parts, Cody-Waite), exp(r) by its Taylor series to r^7
 * (relative error below 1e-8, under float32's half ulp), times 2^n put into the exponent
 * bits. Below -87 (where exp leaves float32's normal range) and for -inf: 0. NaN stays
 * NaN (the polynomial of NaN). The selects are integer masks on the bits, not float
 * compares: GCC keeps a float compare a branch (it may trap), and the loop scalar.
 * Integer work is unsigned: no undefined overflow on any input. */
static inline float AG_PASTE2(softmax_exp_f32_, AG_LEVEL)(float x) {
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

#define AG_ROWS_TABLE ag_softmax_rows_f32
#define T float
#define EXP AG_PASTE2(softmax_exp_f32_, AG_LEVEL)
#define AG_NAME(x) AG_PASTE3(x, _f32_, AG_LEVEL)
#include "softmax_rows.h"
#undef AG_ROWS_TABLE
#undef T
#undef EXP
#undef AG_NAME

/* float64 calls libm's exp per element (not a hot path: the models train in float32) */
#define AG_ROWS_TABLE ag_softmax_rows_f64
#define T double
#define EXP exp
#define AG_NAME(x) AG_PASTE3(x, _f64_, AG_LEVEL)
#include "softmax_rows.h"
#undef AG_ROWS_TABLE
#undef T
#undef EXP
#undef AG_NAME
