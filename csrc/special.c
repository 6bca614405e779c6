/* special.c: erf and erfc, elementwise, for the erf / erfc ops and the exact gelu.
 *
 * Why C: numpy has no erf, and the reference (autograd_core/kernels/special.py) builds it
 * from a float64 series and continued fraction of ~30 numpy passes: 44 ms for a float32
 * [768, 512] gelu where relu takes 0.6 ms. libm's erff / erf / erfcf / erfc are accurate
 * to about 1 ulp and cost a few nanoseconds each.
 *
 * Scalar libm calls only, no SIMD-level variants (no special_x86.c): the work is the libm
 * call itself, which has no vector form here, so the SIMD level does not apply. Threads
 * take contiguous shares of the array through ag_parallel_for from SPECIAL_PARALLEL_MIN
 * elements on. Every element is computed alone, so results never depend on the thread
 * count. */
#include <math.h>
#include "kernels.h"
#include "parallel.h"

/* An element costs ~4-8 ns on one thread (erff of a normal sample; erfc of float64 more);
 * a region's start and join some microseconds: threads from 16 Ki elements on, where a
 * share is worth ~30 us or more (measured: 2 threads are 1.9x faster at 393 Ki floats). */
#define SPECIAL_PARALLEL_MIN 16384.0

typedef struct {
    const void *x;
    void *y;
} special_job;

#define AG_SPECIAL_BODY(name, T, fn)                                              \
    static void name##_range(void *context, int64_t begin, int64_t end, int thread) { \
        const special_job *job = (const special_job *)context;                   \
        const T *x = (const T *)job->x;                                          \
        T *y = (T *)job->y;                                                      \
        int64_t i;                                                               \
        (void)thread;                                                            \
        for (i = begin; i < end; ++i) y[i] = fn(x[i]);                           \
    }                                                                            \
    void ag_##name(int64_t count, const T *x, T *y) {                            \
        special_job job;                                                         \
        job.x = x;                                                               \
        job.y = y;                                                               \
        ag_parallel_for(ag_threads_for((double)count, SPECIAL_PARALLEL_MIN), count, \
                        name##_range, &job);                                     \
    }

AG_SPECIAL_BODY(erf_f32, float, erff)
AG_SPECIAL_BODY(erf_f64, double, erf)
AG_SPECIAL_BODY(erfc_f32, float, erfcf)
AG_SPECIAL_BODY(erfc_f64, double, erfc)
