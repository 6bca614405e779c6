/* gemm_x86.c: AVX2+FMA and AVX-512F GEMM micro-kernels (see gemm_internal.h for the
 * contract).
 *
 * Each function carries its own target attribute instead of the build using -mavx2 or
 * -march=native: the rest of the extension stays baseline x86-64, and gemm.c only calls
 * these after ag_cpu_simd_level() has confirmed the CPU runs them.
 *
 * Every kernel has the same shape: C is row-major, so a row of the tile is two vectors
 * along n, loaded from the packed B micro-panel; each of the MR rows gets one broadcast
 * of a packed A value per step of k. That is 2*MR independent FMA chains, enough to hide
 * the FMA latency (4 cycles, 2 ports) with registers to spare:
 *   AVX-512 (32 zmm): 12 rows x 2 = 24 accumulators + 2 B vectors + 1 broadcast.
 *   AVX2    (16 ymm):  6 rows x 2 = 12 accumulators + 2 B vectors + 1 broadcast. */
#include "gemm_internal.h"

#ifdef AG_HAVE_X86_KERNELS
#include <immintrin.h>

#define AG_ROWS6(X) X(0) X(1) X(2) X(3) X(4) X(5)
#define AG_ROWS12(X) AG_ROWS6(X) X(6) X(7) X(8) X(9) X(10) X(11)
#define AG_ROWS4(X) X(0) X(1) X(2) X(3)
#define AG_ROWS8(X) AG_ROWS4(X) X(4) X(5) X(6) X(7)

/* Building blocks; VT/ZERO/LOADU/... are defined just before each instantiation. */
#define AG_DECLARE(i) VT c##i##_0 = ZERO(), c##i##_1 = ZERO();
/* Pull the C tile toward L1 while the k loop runs; only rows and columns that exist. */
#define AG_PREFETCH(i) if (i < m_tile) { _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0); \
                                        if (n_tile == 2 * VL)                                    \
                                            _mm_prefetch((const char *)(c + i * ldc + 2 * VL - 1), _MM_HINT_T0); }
#define AG_FMA(i) { VT ai = SET1(a[i]); c##i##_0 = FMADD(ai, b0, c##i##_0); c##i##_1 = FMADD(ai, b1, c##i##_1); }
#define AG_STORE_BETA0(i) STOREU(c + i * ldc, MUL(va, c##i##_0)); \
                          STOREU(c + i * ldc + VL, MUL(va, c##i##_1));
#define AG_STORE_BETA(i) STOREU(c + i * ldc, FMADD(va, c##i##_0, MUL(vb, LOADU(c + i * ldc)))); \
                         STOREU(c + i * ldc + VL, FMADD(va, c##i##_1, MUL(vb, LOADU(c + i * ldc + VL))));
#define AG_SPILL(i) STOREU(tile + i * 2 * VL, c##i##_0); STOREU(tile + i * 2 * VL + VL, c##i##_1);

/* The whole kernel body for element type T with MR rows listed by ROWS. */
#define AG_KERNEL_BODY(T, MR, ROWS)                                                    \
    ROWS(AG_DECLARE)                                                                   \
    ROWS(AG_PREFETCH)                                                                  \
    _Pragma("GCC unroll 4")                                                            \
    for (int64_t p = 0; p < kc; p++) {                                                 \
        VT b0 = LOADU(b), b1 = LOADU(b + VL);                                          \
        ROWS(AG_FMA)                                                                   \
        a += MR;                                                                       \
        b += AG_B_STEP;                                                                \
    }                                                                                  \
    if (m_tile == MR && n_tile == 2 * VL) {                                            \
        VT va = SET1(alpha);                                                           \
        if (beta == 0) {                                                               \
            ROWS(AG_STORE_BETA0)                                                       \
        } else {                                                                       \
            VT vb = SET1(beta);                                                        \
            ROWS(AG_STORE_BETA)                                                        \
        }                                                                              \
    } else { /* edge tile: spill, then touch only the m_tile x n_tile that exist */    \
        T tile[MR * 2 * VL];                                                           \
        ROWS(AG_SPILL)                                                                 \
        for (int i = 0; i < m_tile; i++)                                               \
            for (int j = 0; j < n_tile; j++) {                                         \
                T value = alpha * tile[i * 2 * VL + j];                                \
                c[i * ldc + j] = beta == 0 ? value : value + beta * c[i * ldc + j];    \
            }                                                                          \
    }

/* AVX-512 has masked loads and stores: an edge tile (the last rows or columns of C) is
 * stored row by row under a column mask instead of spilled and copied one value at a
 * time, which cost about as much as the tile's arithmetic in a 32^3 product. Masked-off
 * lanes are neither read nor written (no fault past the end of C). */
#define AG_STORE_MASK_BETA0(i) if (i < m_tile) {                                        \
        MASK_STOREU(c + i * ldc, mask0, MUL(va, c##i##_0));                             \
        MASK_STOREU(c + i * ldc + VL, mask1, MUL(va, c##i##_1)); }
#define AG_STORE_MASK_BETA(i) if (i < m_tile) {                                         \
        MASK_STOREU(c + i * ldc, mask0, FMADD(va, c##i##_0, MUL(vb, MASKZ_LOADU(mask0, c + i * ldc))));  \
        MASK_STOREU(c + i * ldc + VL, mask1,                                            \
                    FMADD(va, c##i##_1, MUL(vb, MASKZ_LOADU(mask1, c + i * ldc + VL)))); }
#define AG_KERNEL_BODY_MASKED(T, MR, ROWS)                                             \
    ROWS(AG_DECLARE)                                                                   \
    ROWS(AG_PREFETCH)                                                                  \
    _Pragma("GCC unroll 4")                                                            \
    for (int64_t p = 0; p < kc; p++) {                                                 \
        VT b0 = LOADU(b), b1 = LOADU(b + VL);                                          \
        ROWS(AG_FMA)                                                                   \
        a += MR;                                                                       \
        b += AG_B_STEP;                                                                \
    }                                                                                  \
    VT va = SET1(alpha);                                                               \
    if (m_tile == MR && n_tile == 2 * VL) {                                            \
        if (beta == 0) {                                                               \
            ROWS(AG_STORE_BETA0)                                                       \
        } else {                                                                       \
            VT vb = SET1(beta);                                                        \
            ROWS(AG_STORE_BETA)                                                        \
        }                                                                              \
    } else {                                                                           \
        const MASKT mask0 = n_tile >= VL ? (MASKT)~(MASKT)0 : (MASKT)((1u << n_tile) - 1);              \
        const MASKT mask1 = n_tile >= 2 * VL ? (MASKT)~(MASKT)0                                        \
                          : n_tile > VL ? (MASKT)((1u << (n_tile - VL)) - 1) : (MASKT)0;              \
        if (beta == 0) {                                                               \
            ROWS(AG_STORE_MASK_BETA0)                                                  \
        } else {                                                                       \
            VT vb = SET1(beta);                                                        \
            ROWS(AG_STORE_MASK_BETA)                                                   \
        }                                                                              \
    }

/* Narrow tiles: the last micro-panel of A often holds few rows (m = 100 is 8 x 12 + 4)
 * and the last of B few columns (n = 10, or 200 = 6 x 32 + 8). Computing the full 12 x 32
 * tile for them wasted up to 2/3 of the arithmetic (a 100 x 1024 @ 1024 x 10 layer ran at
 * a third of the kernel's speed). These bodies compute only ROWS rows (4 or 8 of the
 * packed 12; the A panel keeps its stride MR) and one or two vectors of columns. */
#define AG_DECLARE1(i) VT c##i##_0 = ZERO();
#define AG_FMA1(i) c##i##_0 = FMADD(SET1(a[i]), b0, c##i##_0);
#define AG_STORE_MASK1_BETA0(i) if (i < m_tile) MASK_STOREU(c + i * ldc, mask0, MUL(va, c##i##_0));
#define AG_STORE_MASK1_BETA(i) if (i < m_tile)                                          \
        MASK_STOREU(c + i * ldc, mask0, FMADD(va, c##i##_0, MUL(vb, MASKZ_LOADU(mask0, c + i * ldc))));
#define AG_KERNEL_BODY_HALF(T, MR, ROWS)                                               \
    ROWS(AG_DECLARE1)                                                                  \
    _Pragma("GCC unroll 4")                                                            \
    for (int64_t p = 0; p < kc; p++) {                                                 \
        VT b0 = LOADU(b);                                                              \
        ROWS(AG_FMA1)                                                                  \
        a += MR;                                                                       \
        b += AG_B_STEP;                                                                \
    }                                                                                  \
    VT va = SET1(alpha);                                                               \
    const MASKT mask0 = n_tile >= VL ? (MASKT)~(MASKT)0 : (MASKT)((1u << n_tile) - 1); \
    if (beta == 0) {                                                                   \
        ROWS(AG_STORE_MASK1_BETA0)                                                     \
    } else {                                                                           \
        VT vb = SET1(beta);                                                            \
        ROWS(AG_STORE_MASK1_BETA)                                                      \
    }
/* The narrow-tile dispatch, for a kernel whose full tile is 12 x 2 vectors. */
#define AG_EDGE_DISPATCH(T)                                                            \
    if (n_tile <= VL) {                                                                \
        if (m_tile <= 4) { AG_KERNEL_BODY_HALF(T, 12, AG_ROWS4) }                      \
        else if (m_tile <= 8) { AG_KERNEL_BODY_HALF(T, 12, AG_ROWS8) }                 \
        else { AG_KERNEL_BODY_HALF(T, 12, AG_ROWS12) }                                 \
    } else if (m_tile <= 4) {                                                          \
        AG_KERNEL_BODY_MASKED(T, 12, AG_ROWS4)                                         \
    } else {                                                                           \
        AG_KERNEL_BODY_MASKED(T, 12, AG_ROWS8)                                         \
    }

/* ---- AVX2 + FMA ------------------------------------------------------------------ */
#define VL 8
#define VT __m256
#define ZERO _mm256_setzero_ps
#define SET1 _mm256_set1_ps
#define LOADU _mm256_loadu_ps
#define STOREU _mm256_storeu_ps
#define FMADD _mm256_fmadd_ps
#define MUL _mm256_mul_ps
__attribute__((target("avx2,fma")))
void ag_sgemm_kernel_avx2_6x16(int64_t kc, const float *a, const float *b, int64_t b_step, float *c, int64_t ldc,
                               float alpha, float beta, int m_tile, int n_tile) {
    if (b_step == 2 * VL) {  /* a packed panel: a constant step, which a variable one
                              * made 13% slower at k = 10 (g @ W^T of a 10-wide layer) */
#define AG_B_STEP (2 * VL)
        AG_KERNEL_BODY(float, 6, AG_ROWS6)
#undef AG_B_STEP
    } else {
#define AG_B_STEP b_step
        AG_KERNEL_BODY(float, 6, AG_ROWS6)
#undef AG_B_STEP
    }
}
#undef VL
#undef VT
#undef ZERO
#undef SET1
#undef LOADU
#undef STOREU
#undef FMADD
#undef MUL

#define VL 4
#define VT __m256d
#define ZERO _mm256_setzero_pd
#define SET1 _mm256_set1_pd
#define LOADU _mm256_loadu_pd
#define STOREU _mm256_storeu_pd
#define FMADD _mm256_fmadd_pd
#define MUL _mm256_mul_pd
__attribute__((target("avx2,fma")))
void ag_dgemm_kernel_avx2_6x8(int64_t kc, const double *a, const double *b, int64_t b_step, double *c, int64_t ldc,
                              double alpha, double beta, int m_tile, int n_tile) {
    if (b_step == 2 * VL) {  /* a packed panel (see above) */
#define AG_B_STEP (2 * VL)
        AG_KERNEL_BODY(double, 6, AG_ROWS6)
#undef AG_B_STEP
    } else {
#define AG_B_STEP b_step
        AG_KERNEL_BODY(double, 6, AG_ROWS6)
#undef AG_B_STEP
    }
}
#undef VL
#undef VT
#undef ZERO
#undef SET1
#undef LOADU
#undef STOREU
#undef FMADD
#undef MUL

/* ---- AVX-512F -------------------------------------------------------------------- */
#define VL 16
#define VT __m512
#define ZERO _mm512_setzero_ps
#define SET1 _mm512_set1_ps
#define LOADU _mm512_loadu_ps
#define STOREU _mm512_storeu_ps
#define FMADD _mm512_fmadd_ps
#define MUL _mm512_mul_ps
#define MASKT __mmask16
#define MASK_STOREU _mm512_mask_storeu_ps
#define MASKZ_LOADU _mm512_maskz_loadu_ps
__attribute__((target("avx512f"), noinline))
static void ag_sgemm_edge_avx512(int64_t kc, const float *a, const float *b, int64_t b_step, float *c, int64_t ldc,
                                 float alpha, float beta, int m_tile, int n_tile) {
    if (b_step == 2 * VL) {  /* a packed panel (see above) */
#define AG_B_STEP (2 * VL)
        AG_EDGE_DISPATCH(float)
#undef AG_B_STEP
    } else {
#define AG_B_STEP b_step
        AG_EDGE_DISPATCH(float)
#undef AG_B_STEP
    }
}

/* A 12-row tile 17 to 24 columns wide (the VAE's 20-wide latent layer, where the full
 * 32-column tile wasted 3/8 of its arithmetic: 128 x 512 @ 512 x 20 ran at 0.76x numpy):
 * per row one 16-wide and one 8-wide accumulator. On CPUs that split a 512-bit FMA in
 * two 256-bit halves (AMD Zen 4) the 8-wide one costs half; elsewhere it costs what the
 * full tile did. The packed B panel keeps its 32-column stride. */
__attribute__((target("avx512f,avx2,fma"), noinline))
static void ag_sgemm_12x24_avx512(int64_t kc, const float *a, const float *b, int64_t b_step, float *c, int64_t ldc,
                                  float alpha, float beta, int m_tile, int n_tile) {
    __m512 low[12];
    __m256 high[12];
    for (int i = 0; i < 12; i++) {
        low[i] = _mm512_setzero_ps();
        high[i] = _mm256_setzero_ps();
    }
    for (int64_t p = 0; p < kc; p++) {
        const __m512 b0 = _mm512_loadu_ps(b);
        const __m256 b1 = _mm256_loadu_ps(b + 16);
        for (int i = 0; i < 12; i++) {
            const __m512 ai = _mm512_set1_ps(a[i]);
            low[i] = _mm512_fmadd_ps(ai, b0, low[i]);
            high[i] = _mm256_fmadd_ps(_mm512_castps512_ps256(ai), b1, high[i]);
        }
        a += 12;
        b += b_step;
    }
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    const __m256 va8 = _mm256_set1_ps(alpha), vb8 = _mm256_set1_ps(beta);
    /* lane j of the 8-wide half is stored when 16 + j < n_tile */
    const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(n_tile - 16), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    for (int i = 0; i < 12; i++) {
        if (i >= m_tile)
            break;
        float *row = c + i * ldc;
        __m512 out = _mm512_mul_ps(va, low[i]);
        __m256 out8 = _mm256_mul_ps(va8, high[i]);
        if (beta != 0) {
            out = _mm512_fmadd_ps(vb, _mm512_loadu_ps(row), out);
            out8 = _mm256_fmadd_ps(vb8, _mm256_maskload_ps(row + 16, mask), out8);
        }
        _mm512_storeu_ps(row, out);
        _mm256_maskstore_ps(row + 16, mask, out8);
    }
}

/* A full tile read from B in place (b_step B's row stride): out of line, so that the
 * packed path below stays the function it was (inlined here, this copy made 12 x 32
 * tiles at k = 10 about 15% slower: g @ W^T of a 10-wide layer). */
__attribute__((target("avx512f"), noinline))
static void ag_sgemm_12x32_strided_avx512(int64_t kc, const float *a, const float *b, int64_t b_step, float *c,
                                          int64_t ldc, float alpha, float beta, int m_tile, int n_tile) {
#define AG_B_STEP b_step
    AG_KERNEL_BODY_MASKED(float, 12, AG_ROWS12)
#undef AG_B_STEP
}

__attribute__((target("avx512f")))
void ag_sgemm_kernel_avx512_12x32(int64_t kc, const float *a, const float *b, int64_t b_step, float *c, int64_t ldc,
                                  float alpha, float beta, int m_tile, int n_tile) {
    if (m_tile > 8 && n_tile > 16 && n_tile <= 24) {
        ag_sgemm_12x24_avx512(kc, a, b, b_step, c, ldc, alpha, beta, m_tile, n_tile);
        return;
    }
    if (m_tile <= 8 || n_tile <= 16) {
        ag_sgemm_edge_avx512(kc, a, b, b_step, c, ldc, alpha, beta, m_tile, n_tile);
        return;
    }
    if (b_step != 2 * VL) {
        ag_sgemm_12x32_strided_avx512(kc, a, b, b_step, c, ldc, alpha, beta, m_tile, n_tile);
        return;
    }
#define AG_B_STEP (2 * VL)
    AG_KERNEL_BODY_MASKED(float, 12, AG_ROWS12)
#undef AG_B_STEP
}
#undef MASKT
#undef MASK_STOREU
#undef MASKZ_LOADU
#undef VL
#undef VT
#undef ZERO
#undef SET1
#undef LOADU
#undef STOREU
#undef FMADD
#undef MUL

#define VL 8
#define VT __m512d
#define ZERO _mm512_setzero_pd
#define SET1 _mm512_set1_pd
#define LOADU _mm512_loadu_pd
#define STOREU _mm512_storeu_pd
#define FMADD _mm512_fmadd_pd
#define MUL _mm512_mul_pd
#define MASKT __mmask8
#define MASK_STOREU _mm512_mask_storeu_pd
#define MASKZ_LOADU _mm512_maskz_loadu_pd
__attribute__((target("avx512f"), noinline))
static void ag_dgemm_edge_avx512(int64_t kc, const double *a, const double *b, int64_t b_step, double *c, int64_t ldc,
                                 double alpha, double beta, int m_tile, int n_tile) {
    if (b_step == 2 * VL) {  /* a packed panel (see above) */
#define AG_B_STEP (2 * VL)
        AG_EDGE_DISPATCH(double)
#undef AG_B_STEP
    } else {
#define AG_B_STEP b_step
        AG_EDGE_DISPATCH(double)
#undef AG_B_STEP
    }
}

__attribute__((target("avx512f")))
void ag_dgemm_kernel_avx512_12x16(int64_t kc, const double *a, const double *b, int64_t b_step, double *c, int64_t ldc,
                                  double alpha, double beta, int m_tile, int n_tile) {
    if (m_tile <= 8 || n_tile <= 8) {
        ag_dgemm_edge_avx512(kc, a, b, b_step, c, ldc, alpha, beta, m_tile, n_tile);
        return;
    }
    if (b_step == 2 * VL) {  /* a packed panel (see above) */
#define AG_B_STEP (2 * VL)
        AG_KERNEL_BODY_MASKED(double, 12, AG_ROWS12)
#undef AG_B_STEP
    } else {
#define AG_B_STEP b_step
        AG_KERNEL_BODY_MASKED(double, 12, AG_ROWS12)
#undef AG_B_STEP
    }
}
#undef MASKT
#undef MASK_STOREU
#undef MASKZ_LOADU
#undef VL
#undef VT
#undef ZERO
#undef SET1
#undef LOADU
#undef STOREU
#undef FMADD
#undef MUL

#endif /* AG_HAVE_X86_KERNELS */

#ifdef AG_HAVE_X86_KERNELS
/* ---- narrow products: op(B) at most 16 columns, A read in place -------------------- */
/* With one micro-panel of B every value of A is used once: packing A cost a quarter of
 * a 100 x 1024 @ 1024 x 10 layer (0.85x numpy single-threaded), packing B's 10 columns
 * into a 32-wide panel another tenth. Here A is read where it is and B under the column
 * mask (masked-off lanes are not read, so B's last row may end the allocation). Rows
 * from m_tile on read row 0 again (always there) and are never stored. ROW(i) is the
 * pointer to row i of the tile at depth 0; STEP advances all rows one depth. */
#define AG_DIRECT_DECLARE(i) __m512 acc##i = _mm512_setzero_ps(); \
                             const float *row##i = ROW(i < m_tile ? i : 0);
#define AG_DIRECT_FMA(i) acc##i = _mm512_fmadd_ps(_mm512_set1_ps(row##i[offset]), b0, acc##i);
#define AG_DIRECT_STORE(i) if (i < m_tile) {                                            \
        __m512 out = _mm512_mul_ps(va, acc##i);                                         \
        if (beta != 0)                                                                  \
            out = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(mask, c + i * ldc), out);   \
        _mm512_mask_storeu_ps(c + i * ldc, mask, out); }
#define AG_DIRECT_BODY(ROWS)                                                           \
    {                                                                                  \
        ROWS(AG_DIRECT_DECLARE)                                                        \
        int64_t offset = 0;                                                            \
        for (int64_t p = 0; p < kc; p++) {                                             \
            const __m512 b0 = _mm512_maskz_loadu_ps(mask, b);                          \
            ROWS(AG_DIRECT_FMA)                                                        \
            offset += STEP;                                                            \
            b += b_step;                                                               \
        }                                                                              \
        ROWS(AG_DIRECT_STORE)                                                          \
    }
#define AG_DIRECT_ROWS(ROWS_FOR)                                                       \
    if (m_tile <= 4) AG_DIRECT_BODY(AG_ROWS4)                                          \
    else if (m_tile <= 8) AG_DIRECT_BODY(AG_ROWS8)                                     \
    else AG_DIRECT_BODY(AG_ROWS12)

__attribute__((target("avx512f")))
void ag_sgemm_direct_avx512_12x16(int64_t kc, const float *a, int64_t lda, int trans_a, const float *b,
                                  int64_t b_step, float *c, int64_t ldc, float alpha, float beta,
                                  int m_tile, int n_tile) {
    const __mmask16 mask = n_tile >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n_tile) - 1);
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    if (trans_a) {  /* op(A)[i][p] = a[p*lda + i] */
#define ROW(i) (a + (i))
#define STEP lda
        AG_DIRECT_ROWS()
#undef ROW
#undef STEP
    } else {        /* op(A)[i][p] = a[i*lda + p] */
#define ROW(i) (a + (i) * lda)
#define STEP 1
        AG_DIRECT_ROWS()
#undef ROW
#undef STEP
    }
}

/* ---- small products: the whole product in one call, nothing packed ------------------ */
/* For a product whose operands sit in L1/L2 (a batch of 32^3 products, a 64^3 one) the
 * blocked path's packing of A and its per-tile calls were a third of the time: here
 * op(A) is read where it is (as the narrow kernel above does) and op(B) one 2-vector
 * column panel at a time, element (p, j) at b[(j / (2*VL)) * b_panel + p * b_step +
 * j % (2*VL)] (b_panel 2*VL and b_step B's row stride for an untransposed B read in
 * place; b_panel 2*VL*k and b_step 2*VL for packed micro-panels). Row tiles of 12, 8 or
 * 4 rows (32 = 12 + 12 + 8: no row computed twice); rows beyond the tile's `rows`
 * re-read row 0 and are never stored. Columns beyond n are neither read nor written
 * (masked loads and stores). op(A)[i][p] is a_tile[i*row_step + p*depth_step]: the two
 * transpose forms differ only in those two strides, so one loop serves both. */
#define AG_SMALL_DECLARE(i) VT s##i##_0 = ZERO(), s##i##_1 = ZERO(); \
                            const T *r##i = a_tile + (i < rows ? i : 0) * row_step;
#define AG_SMALL_DECLARE1(i) VT s##i##_0 = ZERO(); \
                             const T *r##i = a_tile + (i < rows ? i : 0) * row_step;
#define AG_SMALL_FMA(i) { VT ai = SET1(r##i[offset]); s##i##_0 = FMADD(ai, b0, s##i##_0); \
                          s##i##_1 = FMADD(ai, b1, s##i##_1); }
#define AG_SMALL_FMA1(i) s##i##_0 = FMADD(SET1(r##i[offset]), b0, s##i##_0);
#define AG_SMALL_STORE(i) if (i < rows) {                                               \
        T *out = c_tile + i * ldc;                                                      \
        VT low = MUL(va, s##i##_0), high = MUL(va, s##i##_1);                           \
        if (beta != 0) {                                                                \
            low = FMADD(vb, MASKZ_LOADU(mask0, out), low);                              \
            high = FMADD(vb, MASKZ_LOADU(mask1, out + VL), high);                       \
        }                                                                               \
        MASK_STOREU(out, mask0, low);                                                   \
        MASK_STOREU(out + VL, mask1, high); }
/* alpha 1, beta 0 (every call from Python): the accumulators as they are; a multiply
 * by alpha takes an FMA pipe, 3% of a 12 x 32 tile at k = 32 */
#define AG_SMALL_STORE_PLAIN(i) if (i < rows) {                                         \
        MASK_STOREU(c_tile + i * ldc, mask0, s##i##_0);                                 \
        MASK_STOREU(c_tile + i * ldc + VL, mask1, s##i##_1); }
#define AG_SMALL_STORE1_PLAIN(i) if (i < rows) MASK_STOREU(c_tile + i * ldc, mask0, s##i##_0);
#define AG_SMALL_STORE1(i) if (i < rows) {                                              \
        T *out = c_tile + i * ldc;                                                      \
        VT low = MUL(va, s##i##_0);                                                     \
        if (beta != 0)                                                                  \
            low = FMADD(vb, MASKZ_LOADU(mask0, out), low);                              \
        MASK_STOREU(out, mask0, low); }
#define AG_SMALL_TILE(T, ROWS)                                                         \
    {                                                                                  \
        ROWS(AG_SMALL_DECLARE)                                                         \
        const T *bp = b_column;                                                        \
        int64_t offset = 0;                                                            \
        _Pragma("GCC unroll 4")                                                        \
        for (int64_t p = 0; p < k; p++) {                                              \
            const VT b0 = MASKZ_LOADU(mask0, bp), b1 = MASKZ_LOADU(mask1, bp + VL);    \
            ROWS(AG_SMALL_FMA)                                                         \
            offset += depth_step;                                                      \
            bp += b_step;                                                              \
        }                                                                              \
        if (plain) {                                                                   \
            ROWS(AG_SMALL_STORE_PLAIN)                                                 \
        } else {                                                                       \
            ROWS(AG_SMALL_STORE)                                                       \
        }                                                                              \
    }
#define AG_SMALL_TILE1(T, ROWS)                                                        \
    {                                                                                  \
        ROWS(AG_SMALL_DECLARE1)                                                         \
        const T *bp = b_column;                                                        \
        int64_t offset = 0;                                                            \
        for (int64_t p = 0; p < k; p++) {                                              \
            const VT b0 = MASKZ_LOADU(mask0, bp);                                      \
            ROWS(AG_SMALL_FMA1)                                                        \
            offset += depth_step;                                                      \
            bp += b_step;                                                              \
        }                                                                              \
        if (plain) {                                                                   \
            ROWS(AG_SMALL_STORE1_PLAIN)                                                \
        } else {                                                                       \
            ROWS(AG_SMALL_STORE1)                                                      \
        }                                                                              \
    }
/* The row tiles of one column panel (cols > VL: two vectors, else one). */
#define AG_SMALL_ROW_TILES(T, TILE)                                                    \
    {                                                                                  \
        int rows;                                                                      \
        for (int64_t i0 = 0; i0 < m; i0 += rows) {                                     \
            const int64_t left = m - i0;                                               \
            /* 13..16 rows left: 8 + 8 rather than 12 + 4 (a 4-row tile keeps few      \
             * accumulators in flight) */                                              \
            rows = left > 12 ? (left <= 16 ? 8 : 12) : (int)left;                      \
            const T *a_tile = a + i0 * row_step;                                       \
            T *c_tile = c_column + i0 * ldc;                                           \
            if (rows <= 4) TILE(T, AG_ROWS4)                                           \
            else if (rows <= 8) TILE(T, AG_ROWS8)                                      \
            else TILE(T, AG_ROWS12)                                                    \
        }                                                                              \
    }
#define AG_SMALL_FUNCTION(NAME)                                                        \
__attribute__((target("avx512f")))                                                     \
void NAME(int64_t m, int64_t n, int64_t k, const T *a, int64_t lda, int trans_a,       \
          const T *b, int64_t b_panel, int64_t b_step, T *c, int64_t ldc, T alpha, T beta) { \
    const VT va = SET1(alpha), vb = SET1(beta);                                        \
    const int plain = alpha == 1 && beta == 0;                                         \
    const int64_t row_step = trans_a ? 1 : lda, depth_step = trans_a ? lda : 1;        \
    for (int64_t j0 = 0; j0 < n; j0 += 2 * VL) {                                       \
        const int cols = (int)(n - j0 < 2 * VL ? n - j0 : 2 * VL);                     \
        const T *b_column = b + j0 / (2 * VL) * b_panel;                               \
        T *c_column = c + j0;                                                          \
        if (cols == 2 * VL) {                                                          \
            /* constant masks: plain loads and stores */                               \
            const MASKT mask0 = (MASKT)~(MASKT)0, mask1 = (MASKT)~(MASKT)0;            \
            AG_SMALL_ROW_TILES(T, AG_SMALL_TILE)                                       \
        } else {                                                                       \
            const MASKT mask0 = cols >= VL ? (MASKT)~(MASKT)0 : (MASKT)((1u << cols) - 1); \
            const MASKT mask1 = cols > VL ? (MASKT)((1u << (cols - VL)) - 1) : (MASKT)0; \
            if (cols > VL)                                                             \
                AG_SMALL_ROW_TILES(T, AG_SMALL_TILE)                                   \
            else                                                                       \
                AG_SMALL_ROW_TILES(T, AG_SMALL_TILE1)                                  \
        }                                                                              \
    }                                                                                  \
}

#define VL 16
#define VT __m512
#define ZERO _mm512_setzero_ps
#define SET1 _mm512_set1_ps
#define FMADD _mm512_fmadd_ps
#define MUL _mm512_mul_ps
#define MASKT __mmask16
#define MASK_STOREU _mm512_mask_storeu_ps
#define MASKZ_LOADU _mm512_maskz_loadu_ps
#define T float
AG_SMALL_FUNCTION(ag_sgemm_small_avx512)
#undef T
#undef VL
#undef VT
#undef ZERO
#undef SET1
#undef FMADD
#undef MUL
#undef MASKT
#undef MASK_STOREU
#undef MASKZ_LOADU

#define VL 8
#define VT __m512d
#define ZERO _mm512_setzero_pd
#define SET1 _mm512_set1_pd
#define FMADD _mm512_fmadd_pd
#define MUL _mm512_mul_pd
#define MASKT __mmask8
#define MASK_STOREU _mm512_mask_storeu_pd
#define MASKZ_LOADU _mm512_maskz_loadu_pd
#define T double
AG_SMALL_FUNCTION(ag_dgemm_small_avx512)
#undef T
#undef VL
#undef VT
#undef ZERO
#undef SET1
#undef FMADD
#undef MUL
#undef MASKT
#undef MASK_STOREU
#undef MASKZ_LOADU

/* ---- packing a full 12-row micro-panel of A (float, no transpose) ----------------- */
/* panel[p*12 + i] = src[i*lda + p] is a transpose; element by element it took ~5% of a
 * 1024^3 product and a third of a batch of 32^3 ones. Here 16 columns at a time: load
 * 16 values from each of the 12 rows, transpose as a 16x16 block (rows 12..15 zero) in
 * registers, store 12 values per column. Rows from `rows` on (the last, partial
 * micro-panel of A) are packed as zeros: the generic loop for that panel, which stores
 * one value at a time 48 bytes apart, took a fifth of a batch of 32^3 products. */
__attribute__((target("avx512f")))
void ag_spack_a_avx512_12(float *panel, const float *src, int64_t lda, int64_t kc, int rows) {
    const __m512 zero = _mm512_setzero_ps();
    int64_t p = 0;
    for (; p + 16 <= kc; p += 16) {
        __m512 r[12];
        for (int i = 0; i < 12; i++)
            r[i] = i < rows ? _mm512_loadu_ps(src + i * lda + p) : zero;
        /* Stage 1: pairs of rows interleaved by 32 bits; stage 2: by 64 bits. Then u[g][c]
         * holds, in 128-bit lane l, rows 4g..4g+3 of column 4l + c. */
        __m512 u[4][4];
        for (int g = 0; g < 4; g++) {
            __m512 a = g < 3 ? r[4 * g] : zero, b = g < 3 ? r[4 * g + 1] : zero;
            __m512 c = g < 3 ? r[4 * g + 2] : zero, d = g < 3 ? r[4 * g + 3] : zero;
            __m512 ab_lo = _mm512_unpacklo_ps(a, b), ab_hi = _mm512_unpackhi_ps(a, b);
            __m512 cd_lo = _mm512_unpacklo_ps(c, d), cd_hi = _mm512_unpackhi_ps(c, d);
            u[g][0] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(ab_lo), _mm512_castps_pd(cd_lo)));
            u[g][1] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(ab_lo), _mm512_castps_pd(cd_lo)));
            u[g][2] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(ab_hi), _mm512_castps_pd(cd_hi)));
            u[g][3] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(ab_hi), _mm512_castps_pd(cd_hi)));
        }
        /* Stages 3 and 4: gather lane l of every group into column 4l + c. */
        for (int c = 0; c < 4; c++) {
            __m512 v0 = _mm512_shuffle_f32x4(u[0][c], u[1][c], 0x88);  /* cols c, c+8 of groups 0,1 */
            __m512 v1 = _mm512_shuffle_f32x4(u[0][c], u[1][c], 0xDD);  /* cols c+4, c+12 */
            __m512 w0 = _mm512_shuffle_f32x4(u[2][c], u[3][c], 0x88);
            __m512 w1 = _mm512_shuffle_f32x4(u[2][c], u[3][c], 0xDD);
            float *out = panel + (p + c) * 12;
            _mm512_mask_storeu_ps(out, 0x0FFF, _mm512_shuffle_f32x4(v0, w0, 0x88));           /* col c */
            _mm512_mask_storeu_ps(out + 4 * 12, 0x0FFF, _mm512_shuffle_f32x4(v1, w1, 0x88));  /* c+4 */
            _mm512_mask_storeu_ps(out + 8 * 12, 0x0FFF, _mm512_shuffle_f32x4(v0, w0, 0xDD));  /* c+8 */
            _mm512_mask_storeu_ps(out + 12 * 12, 0x0FFF, _mm512_shuffle_f32x4(v1, w1, 0xDD)); /* c+12 */
        }
    }
    for (; p < kc; p++)
        for (int i = 0; i < 12; i++)
            panel[p * 12 + i] = i < rows ? src[i * lda + p] : 0.0f;
}

/* ---- packing a full 32-column micro-panel of transposed B (float) ------------------ */
/* op(B)[p][j] = src[j*ldb + p]: panel[p*32 + j] = src[j*ldb + p]. Element by element
 * each store lands 128 bytes from the last; that made the input gradient g @ W^T of a
 * 100-row batch (where B is packed once per 200 flops of it) 0.66x numpy single-threaded.
 * Here 16 rows of src by 16 depths at a time, transposed in registers, so every store
 * is a whole 64-byte half-row of the panel. */
__attribute__((target("avx512f")))
static inline void ag_transpose16_ps(__m512 r[16]) {
    __m512 t[16];
    for (int i = 0; i < 16; i += 2) {  /* 32-bit interleave of row pairs */
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {  /* 64-bit interleave: 4 rows per 128-bit lane */
        r[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
        r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
        r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
        r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
    }
    /* r[4g + c], lane l, holds rows 4g..4g+3 of column 4l + c. Gather lanes. */
    for (int c = 0; c < 4; c++) {
        __m512 v0 = _mm512_shuffle_f32x4(r[c], r[4 + c], 0x88);
        __m512 v1 = _mm512_shuffle_f32x4(r[c], r[4 + c], 0xDD);
        __m512 w0 = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0x88);
        __m512 w1 = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0xDD);
        t[c] = _mm512_shuffle_f32x4(v0, w0, 0x88);       /* column c */
        t[4 + c] = _mm512_shuffle_f32x4(v1, w1, 0x88);   /* column c + 4 */
        t[8 + c] = _mm512_shuffle_f32x4(v0, w0, 0xDD);   /* column c + 8 */
        t[12 + c] = _mm512_shuffle_f32x4(v1, w1, 0xDD);  /* column c + 12 */
    }
    for (int i = 0; i < 16; i++)
        r[i] = t[i];
}

__attribute__((target("avx512f")))
void ag_spack_bt_avx512_32(float *panel, const float *src, int64_t ldb, int64_t kc) {
    int64_t p = 0;
    for (; p + 16 <= kc; p += 16)
        for (int half = 0; half < 2; half++) {
            __m512 r[16];
            for (int j = 0; j < 16; j++)
                r[j] = _mm512_loadu_ps(src + (half * 16 + j) * ldb + p);
            ag_transpose16_ps(r);
            for (int q = 0; q < 16; q++)
                _mm512_storeu_ps(panel + (p + q) * 32 + half * 16, r[q]);
        }
    for (; p < kc; p++)
        for (int j = 0; j < 32; j++)
            panel[p * 32 + j] = src[j * ldb + p];
}
#endif

#ifdef AG_HAVE_X86_KERNELS
/* ---- packing transposed B with 256-bit 8x8 (float) and 4x4 (double) transposes ------ */
/* panel[p*NR + j] = src[j*ldb + p] for j < NR, p < kc. Each block's two halves are loaded
 * 128 bits at a time into the two lanes of a register (a load, not a shuffle), which
 * leaves 2 in-lane shuffles per 8 floats (1 per 4 doubles): on AMD Zen 4, where a 512-bit
 * shuffle takes both 256-bit pipes, this packed a 32 x 32 float block in about half the
 * time of the 16x16 register transpose above (that packing was a sixth of a batch of
 * 32^3 products with a transposed B). */
__attribute__((target("avx2")))
static inline void ag_transpose8x8_store_ps(float *out, int64_t out_step, const float *src, int64_t ldb) {
    const float *r0 = src, *r1 = src + ldb, *r2 = src + 2 * ldb, *r3 = src + 3 * ldb;
    const float *r4 = src + 4 * ldb, *r5 = src + 5 * ldb, *r6 = src + 6 * ldb, *r7 = src + 7 * ldb;
    for (int half = 0; half < 8; half += 4) {
        /* lanes: rows 0..3 low, rows 4..7 high; depths half..half+3 */
        const __m256 t0 = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(r0 + half)), _mm_loadu_ps(r4 + half), 1);
        const __m256 t1 = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(r1 + half)), _mm_loadu_ps(r5 + half), 1);
        const __m256 t2 = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(r2 + half)), _mm_loadu_ps(r6 + half), 1);
        const __m256 t3 = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(r3 + half)), _mm_loadu_ps(r7 + half), 1);
        const __m256 u0 = _mm256_unpacklo_ps(t0, t1), u1 = _mm256_unpackhi_ps(t0, t1);
        const __m256 u2 = _mm256_unpacklo_ps(t2, t3), u3 = _mm256_unpackhi_ps(t2, t3);
        _mm256_storeu_ps(out + (half + 0) * out_step, _mm256_shuffle_ps(u0, u2, 0x44));
        _mm256_storeu_ps(out + (half + 1) * out_step, _mm256_shuffle_ps(u0, u2, 0xEE));
        _mm256_storeu_ps(out + (half + 2) * out_step, _mm256_shuffle_ps(u1, u3, 0x44));
        _mm256_storeu_ps(out + (half + 3) * out_step, _mm256_shuffle_ps(u1, u3, 0xEE));
    }
}

__attribute__((target("avx2")))
void ag_spack_bt_avx2_32(float *panel, const float *src, int64_t ldb, int64_t kc) {
    int64_t p = 0;
    for (; p + 8 <= kc; p += 8)
        for (int j = 0; j < 32; j += 8)
            ag_transpose8x8_store_ps(panel + p * 32 + j, 32, src + j * ldb + p, ldb);
    for (; p < kc; p++)
        for (int j = 0; j < 32; j++)
            panel[p * 32 + j] = src[j * ldb + p];
}

__attribute__((target("avx2")))
void ag_dpack_bt_avx2_16(double *panel, const double *src, int64_t ldb, int64_t kc) {
    int64_t p = 0;
    for (; p + 4 <= kc; p += 4)
        for (int j = 0; j < 16; j += 4) {
            const double *r0 = src + j * ldb + p, *r1 = r0 + ldb, *r2 = r0 + 2 * ldb, *r3 = r0 + 3 * ldb;
            double *out = panel + p * 16 + j;
            /* lanes: rows 0, 1 low and 2, 3 high */
            const __m256d t0 = _mm256_insertf128_pd(_mm256_castpd128_pd256(_mm_loadu_pd(r0)), _mm_loadu_pd(r2), 1);
            const __m256d t1 = _mm256_insertf128_pd(_mm256_castpd128_pd256(_mm_loadu_pd(r1)), _mm_loadu_pd(r3), 1);
            const __m256d t2 = _mm256_insertf128_pd(_mm256_castpd128_pd256(_mm_loadu_pd(r0 + 2)), _mm_loadu_pd(r2 + 2), 1);
            const __m256d t3 = _mm256_insertf128_pd(_mm256_castpd128_pd256(_mm_loadu_pd(r1 + 2)), _mm_loadu_pd(r3 + 2), 1);
            _mm256_storeu_pd(out, _mm256_unpacklo_pd(t0, t1));
            _mm256_storeu_pd(out + 16, _mm256_unpackhi_pd(t0, t1));
            _mm256_storeu_pd(out + 32, _mm256_unpacklo_pd(t2, t3));
            _mm256_storeu_pd(out + 48, _mm256_unpackhi_pd(t2, t3));
        }
    for (; p < kc; p++)
        for (int j = 0; j < 16; j++)
            panel[p * 16 + j] = src[j * ldb + p];
}
#endif
