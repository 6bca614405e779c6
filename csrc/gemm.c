/* gemm.c: row-major GEMM. This first version is a plain, correct triple loop; the
 * kernels issue replaces it with a cache-blocked, SIMD micro-kernel implementation. */
#include "kernels.h"
#ifdef _OPENMP
#include <omp.h>
#endif

static int g_threads = 0;

void ag_set_num_threads(int n) { g_threads = n > 0 ? n : 0; }

int ag_get_num_threads(void) {
#ifdef _OPENMP
    return g_threads > 0 ? g_threads : omp_get_max_threads();
#else
    return 1;
#endif
}

int ag_has_openmp(void) {
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

int ag_cpu_simd_level(void) { return 0; }
int ag_get_simd_level(void) { return 0; }
int ag_set_simd_level(int level) { (void)level; return 0; }

#define DEFINE_NAIVE_GEMM(NAME, T)                                                     \
void NAME(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, T alpha,         \
          const T *a, int64_t lda, const T *b, int64_t ldb, T beta, T *c, int64_t ldc) {\
    for (int64_t i = 0; i < m; i++) {                                                  \
        for (int64_t j = 0; j < n; j++) {                                              \
            T acc = 0;                                                                 \
            for (int64_t p = 0; p < k; p++) {                                          \
                T av = trans_a ? a[p * lda + i] : a[i * lda + p];                      \
                T bv = trans_b ? b[j * ldb + p] : b[p * ldb + j];                      \
                acc += av * bv;                                                        \
            }                                                                          \
            c[i * ldc + j] = alpha * acc + (beta == 0 ? (T)0 : beta * c[i * ldc + j]); \
        }                                                                              \
    }                                                                                  \
}

DEFINE_NAIVE_GEMM(ag_sgemm, float)
DEFINE_NAIVE_GEMM(ag_dgemm, double)
