/* gemm_packed.h: a single-threaded GEMM whose B operand is packed once and then reused
 * by many products (gemm_packed.c). Internal: the recurrent layers' sequence kernels
 * (rnn_cells_driver.h) multiply every step by the same weight, so they pack it once
 * per sequence instead of once per step (the per-step packing of a 128 x 512 weight
 * was ~10% of each step's product). Not part of the cffi API (kernels.h).
 *
 * The packed layout is the GEMM driver's (gemm_driver.h) for the SIMD level in use:
 * depth slices of kc rows of op(B), each cut into kc x nr micro-panels zero-padded to
 * full nr. It depends on ag_get_simd_level(), so a packed B is valid only for products
 * run while the level is the one it was packed at (within one kernel call).
 *
 *   ag_sgemm_packed_b_size(k, n)     elements a packed k x n op(B) takes
 *   ag_sgemm_packed_a_size(m, k)     elements of the A scratch a product of m rows needs
 *   ag_sgemm_pack_b(trans_b, k, n, b, ldb, packed)
 *                                    packs op(B) [k, n] (b is [k, ldb], or [n, ldb] when
 *                                    trans_b) into `packed`
 *   ag_sgemm_packed(m, n, k, alpha, a, lda, packed, beta, c, ldc, a_scratch)
 *                                    C [m, n] = alpha * A [m, k] @ op(B) + beta * C on the
 *                                    calling thread; A row-major (lda), C row-major (ldc);
 *                                    C is not read when beta == 0
 * and the same with d for double. */
#ifndef AUTOGRAD_CORE_GEMM_PACKED_H
#define AUTOGRAD_CORE_GEMM_PACKED_H
#include <stdint.h>

int64_t ag_sgemm_packed_b_size(int64_t k, int64_t n);
int64_t ag_sgemm_packed_a_size(int64_t m, int64_t k);
void ag_sgemm_pack_b(int trans_b, int64_t k, int64_t n, const float *b, int64_t ldb, float *packed);
void ag_sgemm_packed(int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                     const float *packed, float beta, float *c, int64_t ldc, float *a_scratch);

/* ag_sgemm_packed_split(m, n, k, k1, a1, lda1, a2, lda2, packed, beta, c, ldc, a_scratch)
 *                                    ag_sgemm_packed with A = [A1 | A2] (A1 [m, k1], A2 [m, k - k1])
 * and the same with d for double. */
void ag_sgemm_packed_split(int64_t m, int64_t n, int64_t k, int64_t k1, const float *a1, int64_t lda1,
                           const float *a2, int64_t lda2, const float *packed, float beta, float *c, int64_t ldc,
                           float *a_scratch);
void ag_dgemm_packed_split(int64_t m, int64_t n, int64_t k, int64_t k1, const double *a1, int64_t lda1,
                           const double *a2, int64_t lda2, const double *packed, double beta, double *c,
                           int64_t ldc, double *a_scratch);

/* Both operands pre-packed by their producer (see gemm_packed_body.h):
 *   ag_sgemm_prepacked_a_size(m, k)  elements a whole packed op(A) [m, k] takes
 *   ag_sgemm_prepacked_a_panels(m)   its micro-panels of rows (threads split these)
 *   ag_sgemm_pack_a_columns(m, k, p0, count, columns, ld, packed)
 *                                    columns p0.. of op(A), each given as m contiguous values
 *   ag_sgemm_pack_b_rows(k, n, p0, count, rows, ld, packed)
 *                                    rows p0.. of op(B) into ag_sgemm_pack_b's layout (NULL: zeros)
 *   ag_sgemm_prepacked(m, n, k, packed_a, packed_b, c, ldc, panel_first, panel_last)
 *                                    C = op(A) op(B) for the rows of those A micro-panels
 * and the same with d for double. */
/*   ag_sgemm_panel_columns()         the width of B's micro-panels at the level in force
 *   ag_sgemm_prepacked_a(m, n, k, packed_a, k_split, b_low, b_high, ldb, c, ldc, panel_first, panel_last)
 *                                    C = op(A) B with A pre-packed and B [k, n] read in place
 *                                    (n whole panels; rows below k_split from b_low, NULL: zeros) */
int ag_sgemm_panel_columns(void);
void ag_sgemm_prepacked_a(int64_t m, int64_t n, int64_t k, const float *packed_a, int64_t k_split,
                          const float *b_low, const float *b_high, int64_t ldb, float *c, int64_t ldc,
                          int64_t panel_first, int64_t panel_last);
int ag_dgemm_panel_columns(void);
void ag_dgemm_prepacked_a(int64_t m, int64_t n, int64_t k, const double *packed_a, int64_t k_split,
                          const double *b_low, const double *b_high, int64_t ldb, double *c, int64_t ldc,
                          int64_t panel_first, int64_t panel_last);
int64_t ag_sgemm_prepacked_a_size(int64_t m, int64_t k);
int64_t ag_sgemm_prepacked_a_panels(int64_t m);
void ag_sgemm_pack_a_columns(int64_t m, int64_t k, int64_t p0, int64_t count, const float *columns, int64_t ld,
                             float *packed);
void ag_sgemm_pack_b_rows(int64_t k, int64_t n, int64_t p0, int64_t count, const float *rows, int64_t ld,
                          float *packed);
void ag_sgemm_prepacked(int64_t m, int64_t n, int64_t k, const float *packed_a, const float *packed_b, float *c,
                        int64_t ldc, int64_t panel_first, int64_t panel_last);
int64_t ag_dgemm_prepacked_a_size(int64_t m, int64_t k);
int64_t ag_dgemm_prepacked_a_panels(int64_t m);
void ag_dgemm_pack_a_columns(int64_t m, int64_t k, int64_t p0, int64_t count, const double *columns, int64_t ld,
                             double *packed);
void ag_dgemm_pack_b_rows(int64_t k, int64_t n, int64_t p0, int64_t count, const double *rows, int64_t ld,
                          double *packed);
void ag_dgemm_prepacked(int64_t m, int64_t n, int64_t k, const double *packed_a, const double *packed_b, double *c,
                        int64_t ldc, int64_t panel_first, int64_t panel_last);

int64_t ag_dgemm_packed_b_size(int64_t k, int64_t n);
int64_t ag_dgemm_packed_a_size(int64_t m, int64_t k);
void ag_dgemm_pack_b(int trans_b, int64_t k, int64_t n, const double *b, int64_t ldb, double *packed);
void ag_dgemm_packed(int64_t m, int64_t n, int64_t k, double alpha, const double *a, int64_t lda,
                     const double *packed, double beta, double *c, int64_t ldc, double *a_scratch);

#endif
