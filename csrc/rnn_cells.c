/* rnn_cells.c: the elementwise part of one LSTM or GRU step, fused.
 *
 * The matmuls (x W_ih^T, h W_hh^T) stay in the GEMM; what is left is a dozen
 * elementwise ops per hidden unit which, done one numpy op at a time, would each make
 * a full pass over memory. Fusing them makes one pass, and the forward saves exactly
 * the activations the backward needs so nothing is recomputed.
 *
 * Gate order follows PyTorch: LSTM i, f, g, o; GRU r, z, n with the reset gate applied
 * after the hidden matmul (n = tanh(gi_n + r * gh_n)).
 */
/* Comparisons may trap by default, which stops GCC from turning the selects in the
 * fast exp/tanh below into vector blends; nothing here relies on FP traps. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize ("no-trapping-math")
#endif
#include <math.h>
/* The row loops are compiled for AVX-512 and AVX2 as well, and the loader picks the
 * widest the CPU has (GCC function multi-versioning); the build itself targets baseline x86-64. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__)
#define AG_ROW_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define AG_ROW_CLONES
#endif
#include <stddef.h>
#include "kernels.h"
#ifdef _OPENMP
#include <omp.h>
#endif

/* Each element costs a few exp/tanh, so threads pay off earlier than for copies. */
static int cell_threads(int64_t elements) {
    return elements >= 8192 ? ag_get_num_threads() : 1;
}

/* float32 exp and tanh that the compiler can vectorize (glibc's expf/tanhf are opaque
 * calls, and they made the LSTM forward 5x slower than numpy). Cephes' polynomials:
 * about 1 ulp for exp, 2 ulp for tanh. Inputs are clamped so that exp never overflows
 * to inf (sigmoid and tanh saturate long before). float64 keeps libm, for gradcheck. */
static inline float ag_fast_expf(float x) {
    union { float f; int32_t i; } scale;
    float n, r, p;
    x = x > 88.0f ? 88.0f : (x < -87.0f ? -87.0f : x);
    n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;   /* round(x / ln 2) */
    r = x - n * 0.693359375f + n * 2.12194440e-4f;                 /* x - n ln 2, split */
    p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    scale.i = ((int32_t)n + 127) << 23;                             /* 2^n */
    return (p * r * r + r + 1.0f) * scale.f;
}

static inline float ag_fast_tanhf(float x) {
    const float a = x < 0 ? -x : x;
    const float z = x * x;
    /* small |x|: odd polynomial (1 - 2/(e^2x + 1) would cancel); large: via exp */
    const float small = ((((-5.70498872745e-3f * z + 2.06390887954e-2f) * z - 5.37397155531e-2f) * z
                          + 1.33314422036e-1f) * z - 3.33332819422e-1f) * z * x + x;
    const float large = 1.0f - 2.0f / (ag_fast_expf(2.0f * a) + 1.0f);
    return a < 0.625f ? small : (x < 0 ? -large : large);
}

/* 1 / (1 + e^-v): for very negative v, e^-v overflows to inf and the result is a clean
 * 0, never NaN. */
#define DEFINE_CELLS(SUFFIX, T, EXP, TANH)                                               \
                                                                                        \
static T sigmoid_##SUFFIX(T v) { return (T)1 / ((T)1 + EXP(-v)); }                      \
                                                                                        \
/* One batch row, outside the OpenMP region: GCC's outlined parallel body would not   \
 * get this file's optimize pragma, and restrict lets the loop be vectorized. */     \
AG_ROW_CLONES static void lstm_forward_row_##SUFFIX(const T *restrict gate, const T *restrict cp,    \
                                      T *restrict hb, T *restrict cb, T *restrict s,   \
                                      int64_t hidden) {                                \
    int64_t j;                                                                          \
    for (j = 0; j < hidden; j++) {                                                      \
        const T i = sigmoid_##SUFFIX(gate[j]);                                          \
        const T f = sigmoid_##SUFFIX(gate[hidden + j]);                                 \
        const T g = TANH(gate[2 * hidden + j]);                                         \
        const T o = sigmoid_##SUFFIX(gate[3 * hidden + j]);                             \
        const T cn = f * cp[j] + i * g;                                                 \
        const T tc = TANH(cn);                                                          \
        cb[j] = cn;                                                                     \
        hb[j] = o * tc;                                                                 \
        s[j] = i; s[hidden + j] = f; s[2 * hidden + j] = g;                             \
        s[3 * hidden + j] = o; s[4 * hidden + j] = tc;                                  \
    }                                                                                   \
}                                                                                       \
                                                                                        \
void ag_lstm_cell_forward_##SUFFIX(const T *gates, const T *c_prev, T *h, T *c,        \
                                   T *saved, int64_t batch, int64_t hidden) {           \
    int64_t b;                                                                          \
    _Pragma("omp parallel for schedule(static) num_threads(cell_threads(batch * hidden))") \
    for (b = 0; b < batch; b++)                                                         \
        lstm_forward_row_##SUFFIX(gates + b * 4 * hidden, c_prev + b * hidden,          \
                                  h + b * hidden, c + b * hidden, saved + b * 5 * hidden, \
                                  hidden);                                              \
}                                                                                       \
                                                                                        \
void ag_lstm_cell_backward_##SUFFIX(const T *saved, const T *c_prev, const T *grad_h,   \
                                    const T *grad_c, T *grad_gates, T *grad_c_prev,     \
                                    int64_t batch, int64_t hidden) {                    \
    int64_t b;                                                                          \
    _Pragma("omp parallel for schedule(static) num_threads(cell_threads(batch * hidden))") \
    for (b = 0; b < batch; b++) {                                                       \
        const T *s = saved + b * 5 * hidden;                                            \
        const T *cp = c_prev + b * hidden;                                              \
        const T *gh = grad_h + b * hidden;                                              \
        const T *gc = grad_c != NULL ? grad_c + b * hidden : NULL;                      \
        T *gg = grad_gates + b * 4 * hidden;                                            \
        T *gcp = grad_c_prev + b * hidden;                                              \
        int64_t j;                                                                      \
        for (j = 0; j < hidden; j++) {                                                  \
            const T i = s[j], f = s[hidden + j], g = s[2 * hidden + j];                 \
            const T o = s[3 * hidden + j], tc = s[4 * hidden + j];                      \
            /* c feeds both the next step (grad_c) and h = o * tanh(c) */               \
            const T dc = (gc != NULL ? gc[j] : (T)0) + gh[j] * o * ((T)1 - tc * tc);    \
            gg[j] = dc * g * i * ((T)1 - i);                                            \
            gg[hidden + j] = dc * cp[j] * f * ((T)1 - f);                               \
            gg[2 * hidden + j] = dc * i * ((T)1 - g * g);                               \
            gg[3 * hidden + j] = gh[j] * tc * o * ((T)1 - o);                           \
            gcp[j] = dc * f;                                                            \
        }                                                                               \
    }                                                                                   \
}                                                                                       \
                                                                                        \
AG_ROW_CLONES static void gru_forward_row_##SUFFIX(const T *restrict xi, const T *restrict hh,       \
                                     const T *restrict hp, T *restrict hb, T *restrict s, \
                                     int64_t hidden) {                                  \
    int64_t j;                                                                          \
    for (j = 0; j < hidden; j++) {                                                      \
        const T r = sigmoid_##SUFFIX(xi[j] + hh[j]);                                    \
        const T z = sigmoid_##SUFFIX(xi[hidden + j] + hh[hidden + j]);                  \
        const T ghn = hh[2 * hidden + j];                                               \
        const T n = TANH(xi[2 * hidden + j] + r * ghn);                                 \
        hb[j] = ((T)1 - z) * n + z * hp[j];                                             \
        s[j] = r; s[hidden + j] = z; s[2 * hidden + j] = n; s[3 * hidden + j] = ghn;    \
    }                                                                                   \
}                                                                                       \
                                                                                        \
void ag_gru_cell_forward_##SUFFIX(const T *gi, const T *gh, const T *h_prev, T *h,     \
                                  T *saved, int64_t batch, int64_t hidden) {            \
    int64_t b;                                                                          \
    _Pragma("omp parallel for schedule(static) num_threads(cell_threads(batch * hidden))") \
    for (b = 0; b < batch; b++)                                                         \
        gru_forward_row_##SUFFIX(gi + b * 3 * hidden, gh + b * 3 * hidden,              \
                                 h_prev + b * hidden, h + b * hidden, saved + b * 4 * hidden, \
                                 hidden);                                               \
}                                                                                       \
                                                                                        \
void ag_gru_cell_backward_##SUFFIX(const T *saved, const T *h_prev, const T *grad_h,    \
                                   T *grad_gi, T *grad_gh, T *grad_h_prev,              \
                                   int64_t batch, int64_t hidden) {                     \
    int64_t b;                                                                          \
    _Pragma("omp parallel for schedule(static) num_threads(cell_threads(batch * hidden))") \
    for (b = 0; b < batch; b++) {                                                       \
        const T *s = saved + b * 4 * hidden;                                            \
        const T *hp = h_prev + b * hidden, *gy = grad_h + b * hidden;                   \
        T *gi = grad_gi + b * 3 * hidden, *gh = grad_gh + b * 3 * hidden;               \
        T *ghp = grad_h_prev + b * hidden;                                              \
        int64_t j;                                                                      \
        for (j = 0; j < hidden; j++) {                                                  \
            const T r = s[j], z = s[hidden + j], n = s[2 * hidden + j];                 \
            const T ghn = s[3 * hidden + j];                                            \
            const T dn = gy[j] * ((T)1 - z) * ((T)1 - n * n);                           \
            const T dz = gy[j] * (hp[j] - n) * z * ((T)1 - z);                          \
            const T dr = dn * ghn * r * ((T)1 - r);                                     \
            gi[j] = dr; gi[hidden + j] = dz; gi[2 * hidden + j] = dn;                   \
            gh[j] = dr; gh[hidden + j] = dz; gh[2 * hidden + j] = dn * r;               \
            /* only the direct path h' = ... + z * h; the path through gh is the caller's \
             * matmul with W_hh */                                                      \
            ghp[j] = gy[j] * z;                                                         \
        }                                                                               \
    }                                                                                   \
}

DEFINE_CELLS(f32, float, ag_fast_expf, ag_fast_tanhf)
DEFINE_CELLS(f64, double, exp, tanh)
