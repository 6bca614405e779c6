/* rnn_cells.c: the elementwise part of one LSTM or GRU step, fused.
 *
 * The matmuls (x W_ih^T, h W_hh^T) stay in the GEMM; what is left is a dozen
 * elementwise ops per hidden unit which, done one numpy op at a time, would each make
 * a full pass over memory. Fusing them makes one pass, and the forward saves exactly
 * the activations the backward needs so nothing is recomputed. The ag_lstm_step_*
 * entry points also call the GEMM for h W_hh^T (forward) and grad_gates W_hh
 * (backward), so that one LSTM step is one call from Python each way: at batch 100,
 * hidden 128 a step's arithmetic takes ~150 us, and per-call Python costs add up.
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
/* The per-unit helpers must be inlined into each row loop, or the loops (several per
 * row function) stop being vectorized: GCC's inlining heuristics give up on the later ones. */
#if defined(__GNUC__)
#define AG_UNIT static inline __attribute__((always_inline))
#else
#define AG_UNIT static inline
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

/* A whole LSTM step splits its batch rows over the threads: each thread does its rows'
 * matmul (a GEMM call of its own, single-threaded: OpenMP leaves regions nested in
 * this one inactive unless OMP_MAX_ACTIVE_LEVELS says otherwise) and
 * then their cell, with no barrier in between. One parallel region per step instead of
 * one for the GEMM and one for the cell: at batch 100, hidden 128 a step is ~150 us,
 * so each region's start and join is felt, more so when other processes share the cores. */
static int step_threads(int64_t batch, int64_t hidden) {
    const int threads = cell_threads(batch * hidden);
    return threads < batch ? threads : (int)(batch > 0 ? batch : 1);
}

#ifdef _OPENMP
static int thread_index(void) { return omp_get_thread_num(); }
static int team_size(void) { return omp_get_num_threads(); }
#else
static int thread_index(void) { return 0; }
static int team_size(void) { return 1; }
#endif

/* float32 exp and tanh that the compiler can vectorize (glibc's expf/tanhf are opaque
 * calls, and they made the LSTM forward 5x slower than numpy). Cephes' polynomials:
 * about 1 ulp for exp, 2 ulp for tanh. Inputs are clamped so that exp never overflows
 * to inf (sigmoid and tanh saturate long before). float64 keeps libm, for gradcheck. */
AG_UNIT float ag_fast_expf(float x) {
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

AG_UNIT float ag_fast_tanhf(float x) {
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
#define DEFINE_CELLS(SUFFIX, T, EXP, TANH, GEMM)                                               \
                                                                                        \
AG_UNIT T sigmoid_##SUFFIX(T v) { return (T)1 / ((T)1 + EXP(-v)); }                      \
                                                                                        \
/* One LSTM unit: pre-activations in, state and saved activations out. */             \
AG_UNIT void lstm_unit_##SUFFIX(T pi, T pf, T pg, T po, T cp, T *hb, T *cb, T *s, \
                                      int64_t hidden) {                                 \
    const T i = sigmoid_##SUFFIX(pi), f = sigmoid_##SUFFIX(pf);                         \
    const T g = TANH(pg), o = sigmoid_##SUFFIX(po);                                     \
    const T cn = f * cp + i * g;                                                        \
    const T tc = TANH(cn);                                                              \
    *cb = cn;                                                                           \
    *hb = o * tc;                                                                       \
    s[0] = i; s[hidden] = f; s[2 * hidden] = g; s[3 * hidden] = o; s[4 * hidden] = tc;  \
}                                                                                       \
                                                                                        \
/* One batch row, outside the OpenMP region: GCC's outlined parallel body would not   \
 * get this file's optimize pragma, and restrict lets the loop be vectorized. The      \
 * pre-activations are xg + hw + bias, where hw (the recurrent matmul; NULL for a zero \
 * state) and bias [4*hidden] may be NULL; each case is its own loop so that no loop   \
 * tests a pointer per element. */                                                     \
AG_ROW_CLONES static void lstm_forward_row_##SUFFIX(const T *restrict xg, const T *restrict hw, \
                                      const T *restrict bias, const T *restrict cp,    \
                                      T *restrict hb, T *restrict cb, T *restrict s,   \
                                      int64_t hidden) {                                \
    const int64_t h1 = hidden, h2 = 2 * hidden, h3 = 3 * hidden;                        \
    int64_t j;                                                                          \
    if (hw == NULL && bias == NULL) {                                                   \
        for (j = 0; j < hidden; j++)                                                    \
            lstm_unit_##SUFFIX(xg[j], xg[h1 + j], xg[h2 + j], xg[h3 + j],               \
                               cp[j], hb + j, cb + j, s + j, hidden);                   \
    } else if (bias == NULL) {                                                          \
        for (j = 0; j < hidden; j++)                                                    \
            lstm_unit_##SUFFIX(xg[j] + hw[j], xg[h1 + j] + hw[h1 + j],                  \
                               xg[h2 + j] + hw[h2 + j], xg[h3 + j] + hw[h3 + j],        \
                               cp[j], hb + j, cb + j, s + j, hidden);                   \
    } else if (hw == NULL) {                                                            \
        for (j = 0; j < hidden; j++)                                                    \
            lstm_unit_##SUFFIX(xg[j] + bias[j], xg[h1 + j] + bias[h1 + j],              \
                               xg[h2 + j] + bias[h2 + j], xg[h3 + j] + bias[h3 + j],    \
                               cp[j], hb + j, cb + j, s + j, hidden);                   \
    } else {                                                                            \
        for (j = 0; j < hidden; j++)                                                    \
            lstm_unit_##SUFFIX(xg[j] + hw[j] + bias[j], xg[h1 + j] + hw[h1 + j] + bias[h1 + j], \
                               xg[h2 + j] + hw[h2 + j] + bias[h2 + j],                  \
                               xg[h3 + j] + hw[h3 + j] + bias[h3 + j],                  \
                               cp[j], hb + j, cb + j, s + j, hidden);                   \
    }                                                                                   \
}                                                                                       \
                                                                                        \
void ag_lstm_cell_forward_##SUFFIX(const T *gates, const T *c_prev, T *h, T *c,        \
                                   T *saved, int64_t batch, int64_t hidden) {           \
    int64_t b;                                                                          \
    _Pragma("omp parallel for schedule(static) num_threads(cell_threads(batch * hidden))") \
    for (b = 0; b < batch; b++)                                                         \
        lstm_forward_row_##SUFFIX(gates + b * 4 * hidden, NULL, NULL, c_prev + b * hidden, \
                                  h + b * hidden, c + b * hidden, saved + b * 5 * hidden, \
                                  hidden);                                              \
}                                                                                       \
                                                                                        \
/* Rows first..last-1 of one step: their part of h_prev W_hh^T, then their cell. */    \
static void lstm_step_forward_rows_##SUFFIX(const T *x_gates, int64_t ld_x, const T *h_prev, \
                                            const T *weight_hh_t, const T *bias,        \
                                            const T *c_prev, T *work, T *h, T *c, T *saved, \
                                            int64_t hidden, int64_t first, int64_t last) { \
    int64_t b;                                                                          \
    if (h_prev != NULL && last > first)                                                 \
        GEMM(0, 0, last - first, 4 * hidden, hidden, (T)1, h_prev + first * hidden, hidden, \
             weight_hh_t, 4 * hidden, (T)0, work + first * 4 * hidden, 4 * hidden);     \
    for (b = first; b < last; b++)                                                      \
        lstm_forward_row_##SUFFIX(x_gates + b * ld_x,                                   \
                                  h_prev != NULL ? work + b * 4 * hidden : NULL, bias,  \
                                  c_prev + b * hidden, h + b * hidden, c + b * hidden,  \
                                  saved + b * 5 * hidden, hidden);                      \
}                                                                                       \
                                                                                        \
/* The recurrent matmul and the cell in one call, so a step costs Python one call and \
 * the matmul's result never becomes an array of its own (work is scratch space). */  \
void ag_lstm_step_forward_##SUFFIX(const T *x_gates, int64_t ld_x, const T *h_prev,    \
                                   const T *weight_hh_t, const T *bias, const T *c_prev, T *work, \
                                   T *h, T *c, T *saved, int64_t batch, int64_t hidden) { \
    const int threads = step_threads(batch, hidden);                                    \
    if (threads <= 1) {                                                                 \
        lstm_step_forward_rows_##SUFFIX(x_gates, ld_x, h_prev, weight_hh_t, bias, c_prev, \
                                        work, h, c, saved, hidden, 0, batch);           \
        return;                                                                         \
    }                                                                                   \
    _Pragma("omp parallel num_threads(threads)")                                        \
    {                                                                                   \
        const int64_t index = thread_index(), count = team_size();                      \
        lstm_step_forward_rows_##SUFFIX(x_gates, ld_x, h_prev, weight_hh_t, bias, c_prev, \
                                        work, h, c, saved, hidden, batch * index / count, \
                                        batch * (index + 1) / count);                   \
    }                                                                                   \
}                                                                                       \
                                                                                        \
/* The backward of one unit; gc is the gradient arriving at c from the next step. */  \
AG_UNIT void lstm_unit_backward_##SUFFIX(const T *s, T cp, T gh, T gc, T *gg,     \
                                               T *gcp, int64_t hidden) {               \
    const T i = s[0], f = s[hidden], g = s[2 * hidden];                                 \
    const T o = s[3 * hidden], tc = s[4 * hidden];                                      \
    /* c feeds both the next step (gc) and h = o * tanh(c) */                           \
    const T dc = gc + gh * o * ((T)1 - tc * tc);                                        \
    gg[0] = dc * g * i * ((T)1 - i);                                                    \
    gg[hidden] = dc * cp * f * ((T)1 - f);                                              \
    gg[2 * hidden] = dc * i * ((T)1 - g * g);                                           \
    gg[3 * hidden] = gh * tc * o * ((T)1 - o);                                          \
    *gcp = dc * f;                                                                      \
}                                                                                       \
                                                                                        \
AG_ROW_CLONES static void lstm_backward_row_##SUFFIX(const T *restrict s, const T *restrict cp, \
                                       const T *restrict gh, const T *restrict gc,      \
                                       T *restrict gg, T *restrict gcp, int64_t hidden) { \
    int64_t j;                                                                          \
    if (gc == NULL) {                                                                   \
        for (j = 0; j < hidden; j++)                                                    \
            lstm_unit_backward_##SUFFIX(s + j, cp[j], gh[j], (T)0, gg + j, gcp + j, hidden); \
    } else {                                                                            \
        for (j = 0; j < hidden; j++)                                                    \
            lstm_unit_backward_##SUFFIX(s + j, cp[j], gh[j], gc[j], gg + j, gcp + j, hidden); \
    }                                                                                   \
}                                                                                       \
                                                                                        \
void ag_lstm_cell_backward_##SUFFIX(const T *saved, const T *c_prev, const T *grad_h,   \
                                    const T *grad_c, T *grad_gates, T *grad_c_prev,     \
                                    int64_t batch, int64_t hidden) {                    \
    int64_t b;                                                                          \
    _Pragma("omp parallel for schedule(static) num_threads(cell_threads(batch * hidden))") \
    for (b = 0; b < batch; b++)                                                         \
        lstm_backward_row_##SUFFIX(saved + b * 5 * hidden, c_prev + b * hidden,         \
                                   grad_h + b * hidden,                                 \
                                   grad_c != NULL ? grad_c + b * hidden : NULL,         \
                                   grad_gates + b * 4 * hidden, grad_c_prev + b * hidden, \
                                   hidden);                                             \
}                                                                                       \
                                                                                        \
/* acc[j] += sum over rows first..last-1 of grad_gates[row][j]: one step's share of the \
 * bias gradient, summed while the rows are still in cache. */                         \
AG_ROW_CLONES static void add_rows_##SUFFIX(T *restrict acc, const T *restrict rows,    \
                                            int64_t count, int64_t width) {            \
    int64_t b, j;                                                                       \
    for (b = 0; b < count; b++)                                                         \
        for (j = 0; j < width; j++)                                                     \
            acc[j] += rows[b * width + j];                                              \
}                                                                                       \
                                                                                        \
/* Rows first..last-1 of one step's backward: their cell, then their grad_h_prev. */  \
static void lstm_step_backward_rows_##SUFFIX(const T *saved, const T *c_prev, const T *grad_h, \
                                             const T *grad_c, const T *weight_hh, T *grad_gates, \
                                             T *grad_h_prev, T *grad_c_prev, T *grad_bias, \
                                             int64_t hidden, int64_t first, int64_t last) { \
    int64_t b;                                                                          \
    for (b = first; b < last; b++)                                                      \
        lstm_backward_row_##SUFFIX(saved + b * 5 * hidden, c_prev + b * hidden,         \
                                   grad_h + b * hidden,                                 \
                                   grad_c != NULL ? grad_c + b * hidden : NULL,         \
                                   grad_gates + b * 4 * hidden, grad_c_prev + b * hidden, \
                                   hidden);                                             \
    if (grad_bias != NULL)                                                              \
        add_rows_##SUFFIX(grad_bias, grad_gates + first * 4 * hidden, last - first, 4 * hidden); \
    if (grad_h_prev != NULL && last > first)                                            \
        GEMM(0, 0, last - first, hidden, 4 * hidden, (T)1, grad_gates + first * 4 * hidden, \
             4 * hidden, weight_hh, hidden, (T)0, grad_h_prev + first * hidden, hidden); \
}                                                                                       \
                                                                                        \
void ag_lstm_step_backward_##SUFFIX(const T *saved, const T *c_prev, const T *grad_h,   \
                                    const T *grad_c, const T *weight_hh, T *grad_gates, \
                                    T *grad_h_prev, T *grad_c_prev, T *grad_bias,       \
                                    int64_t grad_bias_rows, int64_t batch, int64_t hidden) { \
    int threads = step_threads(batch, hidden);                                          \
    if (grad_bias != NULL && threads > grad_bias_rows)                                  \
        threads = (int)grad_bias_rows;  /* each thread adds into a row of its own */    \
    if (threads <= 1) {                                                                 \
        lstm_step_backward_rows_##SUFFIX(saved, c_prev, grad_h, grad_c, weight_hh,      \
                                         grad_gates, grad_h_prev, grad_c_prev, grad_bias, \
                                         hidden, 0, batch);                             \
        return;                                                                         \
    }                                                                                   \
    _Pragma("omp parallel num_threads(threads)")                                        \
    {                                                                                   \
        const int64_t index = thread_index(), count = team_size();                      \
        lstm_step_backward_rows_##SUFFIX(saved, c_prev, grad_h, grad_c, weight_hh,      \
                                         grad_gates, grad_h_prev, grad_c_prev,          \
                                         grad_bias != NULL ? grad_bias + index * 4 * hidden : NULL, \
                                         hidden, batch * index / count, batch * (index + 1) / count); \
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

DEFINE_CELLS(f32, float, ag_fast_expf, ag_fast_tanhf, ag_sgemm)
DEFINE_CELLS(f64, double, exp, tanh, ag_dgemm)
