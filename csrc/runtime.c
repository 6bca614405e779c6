/* runtime.c: the global knobs every kernel reads -- thread count and SIMD path.
 *
 * The SIMD path is chosen at run time from what the CPU (and OS) supports, so one
 * build runs on any x86-64; tests can force a lower level to exercise every path.
 * ag_get_simd_level() is the one place the level comes from: each family's driver
 * (gemm.c, conv2d.c, pool.c, rnn_cells.c) reads it on every call and takes the kernels
 * its select function gives for that level, so ag_set_simd_level reaches them all at
 * once (no load-time dispatch such as target_clones, which would ignore it). */
#include "kernels.h"
#ifdef _OPENMP
#include <omp.h>
#endif

/* 0 means "OpenMP's default" (OMP_NUM_THREADS or the core count). Plain ints: a racing
 * setter only changes which of two valid values a concurrent kernel sees. */
static int g_threads = 0;
/* -1 means "the best level the CPU supports"; otherwise the level a test forced. */
static int g_simd_level = -1;

/* Python refuses counts outside 1..AG_MAX_THREADS before they get here; C callers get
 * the same bound by clamping, so no call can ask libgomp for a team it cannot start. */
void ag_set_num_threads(int n) { g_threads = n > 0 ? (n < AG_MAX_THREADS ? n : AG_MAX_THREADS) : 0; }

int ag_get_num_threads(void) {
#ifdef _OPENMP
    const int fallback = omp_get_max_threads();
    if (g_threads > 0) return g_threads;
    return fallback < AG_MAX_THREADS ? fallback : AG_MAX_THREADS;
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

int ag_cpu_simd_level(void) {
#if defined(__x86_64__) && defined(__GNUC__)
    /* libgcc's cpu model also checks XGETBV, so "avx512f" means the OS saves zmm state. */
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f"))
        return 2;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return 1;
#endif
    return 0;
}

int ag_get_simd_level(void) {
    int best = ag_cpu_simd_level();
    return (g_simd_level >= 0 && g_simd_level < best) ? g_simd_level : best;
}

int ag_set_simd_level(int level) {
    g_simd_level = level < 0 ? -1 : level;
    return ag_get_simd_level();
}
