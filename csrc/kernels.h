/*
 * kernels.h: the whole C API of autograd_core's compiled kernels.
 *
 * Conventions
 *   - Every array is dense and row-major unless a leading dimension says otherwise.
 *   - Images are NHWC [n, h, w, c]; conv weights are [kh, kw, c_in, c_out].
 *   - Sizes are int64_t. The Python bridge (autograd_core/kernels.py) validates every
 *     argument before calling, so these functions never check bounds themselves.
 *   - Functions suffixed _f32 / _f64 take float / double.
 *   - Nothing here knows about tensors, graphs or Python.
 *
 * The text between the CFFI markers is parsed by cffi, so it must stay plain
 * declarations (no macros, no #include).
 */
#ifndef AUTOGRAD_CORE_KERNELS_H
#define AUTOGRAD_CORE_KERNELS_H
#include <stdint.h>

/* CFFI-BEGIN */

/* ---- runtime: threads and SIMD path ---------------------------------------- */
/* Number of OpenMP threads the kernels use (1 when built without OpenMP). */
void ag_set_num_threads(int n);
int ag_get_num_threads(void);
/* 1 when the extension was compiled with OpenMP. */
int ag_has_openmp(void);
/* SIMD levels: 0 = portable C, 1 = AVX2+FMA, 2 = AVX-512F. */
int ag_cpu_simd_level(void);           /* best level this CPU supports */
int ag_get_simd_level(void);           /* level in use */
int ag_set_simd_level(int level);      /* force a level (clamped to the CPU's); returns the level in use */

/* ---- GEMM: C = alpha * op(A) * op(B) + beta * C, row-major ------------------ */
/* op(A) is m x k, op(B) is k x n, C is m x n. trans_x != 0 means op(X) = X^T.
 * lda/ldb/ldc are row strides in elements. When beta == 0, C is not read. */
void ag_sgemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
              float alpha, const float *a, int64_t lda, const float *b, int64_t ldb,
              float beta, float *c, int64_t ldc);
void ag_dgemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
              double alpha, const double *a, int64_t lda, const double *b, int64_t ldb,
              double beta, double *c, int64_t ldc);

/* CFFI-END */

#endif
