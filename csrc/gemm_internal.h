/* gemm_internal.h: what the GEMM driver (gemm.c) and the micro-kernels (gemm_*.c) share.
 * Not part of the public C API (that is kernels.h).
 *
 * A micro-kernel computes one MR x NR tile of C from packed panels:
 *     acc[i][j] = sum_p a[p*MR + i] * b[p*b_step + j]    (p < kc)
 *     C[i][j]   = alpha * acc[i][j] + beta * C[i][j]      (i < m_tile, j < n_tile)
 * where C[i][j] is c[i*ldc + j]. b_step is NR for a packed B micro-panel, or B's row
 * stride when the driver hands a full-width panel of B in place. Packed panels are
 * zero-padded to full MR/NR, so the kernel always computes a full tile and only its
 * store looks at m_tile/n_tile. When
 * beta == 0, C is not read (BLAS convention: NaN/garbage in C must not leak through). */
#ifndef AUTOGRAD_CORE_GEMM_INTERNAL_H
#define AUTOGRAD_CORE_GEMM_INTERNAL_H
#include <stdint.h>

typedef void (*ag_skernel_fn)(int64_t kc, const float *a, const float *b, int64_t b_step, float *c, int64_t ldc,
                              float alpha, float beta, int m_tile, int n_tile);
typedef void (*ag_dkernel_fn)(int64_t kc, const double *a, const double *b, int64_t b_step, double *c, int64_t ldc,
                              double alpha, double beta, int m_tile, int n_tile);

/* Packs one mr-row micro-panel of untransposed A: panel[p*mr + i] = src[i*lda + p] for
 * i < rows (1 <= rows <= mr), and 0 for the rows beyond (src is not read there). */
typedef void (*ag_spack_fn)(float *panel, const float *src, int64_t lda, int64_t kc, int rows);
typedef void (*ag_dpack_fn)(double *panel, const double *src, int64_t lda, int64_t kc, int rows);
/* Packs one full nr-column micro-panel of transposed B: panel[p*nr + j] = src[j*ldb + p]. */
typedef void (*ag_spack_bt_fn)(float *panel, const float *src, int64_t ldb, int64_t kc);
typedef void (*ag_dpack_bt_fn)(double *panel, const double *src, int64_t ldb, int64_t kc);

/* A narrow-product kernel (op(B) at most nr/2 columns: one micro-panel, so each value
 * of A is used once and packing A would be pure overhead): reads op(A) where it is,
 * a[i*lda + p] (trans_a 0) or a[p*lda + i] (trans_a 1), and B's micro-panel at b_step
 * per depth, both only under the n_tile column mask (B may then be read in place);
 * otherwise the micro-kernel contract above, for an mr-row tile. */
typedef void (*ag_sdirect_fn)(int64_t kc, const float *a, int64_t lda, int trans_a, const float *b,
                              int64_t b_step, float *c, int64_t ldc, float alpha, float beta,
                              int m_tile, int n_tile);
typedef void (*ag_ddirect_fn)(int64_t kc, const double *a, int64_t lda, int trans_a, const double *b,
                              int64_t b_step, double *c, int64_t ldc, double alpha, double beta,
                              int m_tile, int n_tile);

/* A whole small product (operands in L1/L2, one thread): op(A) read where it is,
 * a[i*lda + p] (trans_a 0) or a[p*lda + i] (trans_a 1); op(B)[p][j] at
 * b[(j / nr) * b_panel + p * b_step + j % nr] (B in place: b_panel nr, b_step ldb; packed
 * micro-panels: b_panel nr*k, b_step nr); C = alpha * op(A) op(B) + beta * C, C not read
 * when beta == 0. */
typedef void (*ag_ssmall_fn)(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, int trans_a,
                             const float *b, int64_t b_panel, int64_t b_step, float *c, int64_t ldc,
                             float alpha, float beta);
typedef void (*ag_dsmall_fn)(int64_t m, int64_t n, int64_t k, const double *a, int64_t lda, int trans_a,
                             const double *b, int64_t b_panel, int64_t b_step, double *c, int64_t ldc,
                             double alpha, double beta);

/* Register tile (mr x nr) and cache blocks for one SIMD path:
 *   kc: depth of a packed panel (a kc x nr micro-panel of B is reused from L1, or
 *       streamed from L2 when kc is deep),
 *   mc: rows of A packed per thread; the mc x kc block of A should stay in L2,
 *   nc: columns of B packed and shared by all threads (L3);
 *   pack_a: a SIMD packer for full micro-panels of A, or NULL for the generic one;
 *   pack_bt: the same for full micro-panels of transposed B, or NULL;
 *   direct: the narrow-product kernel above, or NULL;
 *   small: the small-product function above (its column panels nr wide), or NULL. */
typedef struct { int mr, nr; int64_t kc, mc, nc; ag_skernel_fn kernel; ag_spack_fn pack_a;
                 ag_spack_bt_fn pack_bt; ag_sdirect_fn direct;
                 ag_ssmall_fn small; } ag_sgemm_config;
typedef struct { int mr, nr; int64_t kc, mc, nc; ag_dkernel_fn kernel; ag_dpack_fn pack_a;
                 ag_dpack_bt_fn pack_bt; ag_ddirect_fn direct;
                 ag_dsmall_fn small; } ag_dgemm_config;

/* Filled with the path for `level` (0 portable, 1 AVX2+FMA, 2 AVX-512F); the caller has
 * already clamped level to what the CPU supports. */
void ag_sgemm_select(int level, ag_sgemm_config *config);
void ag_dgemm_select(int level, ag_dgemm_config *config);

#if defined(__x86_64__) && defined(__GNUC__)
#define AG_HAVE_X86_KERNELS 1
void ag_sgemm_kernel_avx2_6x16(int64_t kc, const float *a, const float *b, int64_t b_step, float *c, int64_t ldc,
                               float alpha, float beta, int m_tile, int n_tile);
void ag_dgemm_kernel_avx2_6x8(int64_t kc, const double *a, const double *b, int64_t b_step, double *c, int64_t ldc,
                              double alpha, double beta, int m_tile, int n_tile);
void ag_sgemm_kernel_avx512_12x32(int64_t kc, const float *a, const float *b, int64_t b_step, float *c, int64_t ldc,
                                  float alpha, float beta, int m_tile, int n_tile);
void ag_sgemm_direct_avx512_12x16(int64_t kc, const float *a, int64_t lda, int trans_a, const float *b,
                                  int64_t b_step, float *c, int64_t ldc, float alpha, float beta,
                                  int m_tile, int n_tile);
void ag_spack_a_avx512_12(float *panel, const float *src, int64_t lda, int64_t kc, int rows);
void ag_spack_bt_avx512_32(float *panel, const float *src, int64_t ldb, int64_t kc);
void ag_spack_bt_avx2_32(float *panel, const float *src, int64_t ldb, int64_t kc);
void ag_dpack_bt_avx2_16(double *panel, const double *src, int64_t ldb, int64_t kc);
void ag_sgemm_small_avx512(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, int trans_a,
                           const float *b, int64_t b_panel, int64_t b_step, float *c, int64_t ldc,
                           float alpha, float beta);
void ag_dgemm_small_avx512(int64_t m, int64_t n, int64_t k, const double *a, int64_t lda, int trans_a,
                           const double *b, int64_t b_panel, int64_t b_step, double *c, int64_t ldc,
                           double alpha, double beta);
void ag_dgemm_kernel_avx512_12x16(int64_t kc, const double *a, const double *b, int64_t b_step, double *c, int64_t ldc,
                                  double alpha, double beta, int m_tile, int n_tile);
#endif

#endif
