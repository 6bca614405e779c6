/* rnn_cells_internal.h: what the RNN cell driver (rnn_cells.c) and the per-ISA builds
 * of its row loops (rnn_cells_rows.h, included by rnn_cells.c and rnn_cells_x86.c)
 * share. Not part of the public C API (that is kernels.h).
 *
 * A row function does one batch row of a cell (hidden units, gates laid out as in
 * kernels.h); the driver splits the batch over threads and calls the row functions of
 * the SIMD level in use (ag_get_simd_level(), the one level every family reads). */
#ifndef AUTOGRAD_CORE_RNN_CELLS_INTERNAL_H
#define AUTOGRAD_CORE_RNN_CELLS_INTERNAL_H
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include "kernels.h"

/* The per-unit helpers must be inlined into each row loop, or the loops (several per
 * row function) stop being vectorized: GCC's inlining heuristics give up on the later ones. */
#if defined(__GNUC__)
#define AG_UNIT static inline __attribute__((always_inline))
#else
#define AG_UNIT static inline
#endif

/* The row loops of one (element type, SIMD level):
 *   lstm_forward_row(xg, hw, bias, cp, h, c, saved, hidden): the cell on pre-activations
 *       xg + hw + bias (hw, bias may be NULL); saved is the row's [5, hidden] block
 *   lstm_backward_row(saved, cp, grad_h, grad_c, grad_gates, grad_c_prev, hidden):
 *       grad_c may be NULL (zeros)
 *   add_rows(acc, rows, count, width): acc[j] += sum of rows[b][j], b in order
 *   gru_forward_row(gi, gh, h_prev, h, saved, hidden): h_prev may be NULL (zeros)
 *   gru_backward_row(saved, h_prev, grad_h, grad_gi, grad_gh, grad_h_prev, hidden):
 *       h_prev may be NULL (zeros)
 *   rnn_forward_span(h, count, relu): tanh (or relu) in place over count elements
 *   rnn_backward_span(h, grad_h, carry, grad_pre, count, relu): grad_pre =
 *       (grad_h + carry) * act'(pre) from the outputs h; grad_h may be NULL (zeros) */
#define AG_RNN_ROWS_TABLE(NAME, T)                                                      \
    typedef struct {                                                                    \
        void (*lstm_forward_row)(const T *, const T *, const T *, const T *, T *, T *, T *, int64_t); \
        void (*lstm_backward_row)(const T *, const T *, const T *, const T *, T *, T *, int64_t); \
        void (*add_rows)(T *, const T *, int64_t, int64_t);                             \
        void (*gru_forward_row)(const T *, const T *, const T *, T *, T *, int64_t);    \
        void (*gru_backward_row)(const T *, const T *, const T *, T *, T *, T *, int64_t); \
        void (*rnn_forward_span)(T *, int64_t, int);                                    \
        void (*rnn_backward_span)(const T *, const T *, const T *, T *, int64_t, int);  \
    } NAME;
AG_RNN_ROWS_TABLE(ag_rnn_rows_f32, float)
AG_RNN_ROWS_TABLE(ag_rnn_rows_f64, double)

/* Filled with the row functions for `level` (0 portable, 1 AVX2+FMA, 2 AVX-512F); the
 * caller has already clamped level to what the CPU supports. */
void ag_rnn_select_f32(int level, ag_rnn_rows_f32 *rows);
void ag_rnn_select_f64(int level, ag_rnn_rows_f64 *rows);

/* One definition per instantiation of rnn_cells_rows.h. */
void ag_rnn_rows_f32_portable(ag_rnn_rows_f32 *rows);
void ag_rnn_rows_f64_portable(ag_rnn_rows_f64 *rows);
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define AG_HAVE_RNN_X86 1
void ag_rnn_rows_f32_avx2(ag_rnn_rows_f32 *rows);
void ag_rnn_rows_f64_avx2(ag_rnn_rows_f64 *rows);
void ag_rnn_rows_f32_avx512(ag_rnn_rows_f32 *rows);
void ag_rnn_rows_f64_avx512(ag_rnn_rows_f64 *rows);
#endif

/* float32 exp and tanh that the compiler can vectorize (glibc's expf/tanhf are opaque
 * calls, and they made the LSTM forward 5x slower than numpy). Cephes' exp polynomial:
 * about 1 ulp for exp, 2.5 ulp for the tanh built on it. Inputs are clamped so that exp never overflows
 * to inf (sigmoid and tanh saturate long before). float64 keeps libm, for gradcheck.
 *
 * Both take x = n ln 2 + r apart here: returns e^r - 1 = r + r^2 p(r), and 2^n in
 * *scale (x must lie in [-87, 88], so that 2^n is a normal float). */
AG_UNIT float ag_fast_exp_reduced(float x, float *scale) {
    union { float f; int32_t i; } power;
    float n, r, p;
    n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;   /* round(x / ln 2) */
    r = x - n * 0.693359375f + n * 2.12194440e-4f;                 /* x - n ln 2, split */
    p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    power.i = ((int32_t)n + 127) << 23;                             /* 2^n */
    *scale = power.f;
    return p * r * r + r;
}

AG_UNIT float ag_fast_expf(float x) {
    float scale;
    x = x > 88.0f ? 88.0f : (x < -87.0f ? -87.0f : x);
    const float reduced = ag_fast_exp_reduced(x, &scale);
    return (reduced + 1.0f) * scale;
}

/* e^x - 1 for x <= 0, accurate near 0 (no cancellation): 2^n (e^r - 1) + (2^n - 1),
 * exact in its last step for n = 0. Clamped below at -87 (expm1 is -1 there). */
AG_UNIT float ag_fast_expm1f_negative(float x) {
    float scale;
    x = x < -87.0f ? -87.0f : x;
    const float reduced = ag_fast_exp_reduced(x, &scale);
    return reduced * scale + (scale - 1.0f);
}

/* tanh |x| = -u / (2 + u) with u = e^(-2|x|) - 1 from expm1, so that no branch is
 * needed for small |x| (1 - 2/(e^2x + 1) would cancel there): one polynomial, one
 * division. It replaced an odd polynomial for |x| < 0.625 plus the exp formula, both
 * computed for every element by the vectorized loops (the tanh ~40% faster alone).
 * Max error 2.5 ulp over every float in [1e-9, 20] against double tanh (the two-branch
 * one: 1.3). 0 - u (not -u) keeps tanh(0) = +0; the sign is x's. */
AG_UNIT float ag_fast_tanhf(float x) {
    const float a = x < 0 ? -x : x;
    const float u = ag_fast_expm1f_negative(-2.0f * a);
    const float t = (0.0f - u) / (2.0f + u);
    return copysignf(t, x);
}

#endif
