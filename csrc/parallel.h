/* parallel.h: the one OpenMP helper every kernel family (GEMM, conv2d, pooling, the RNN
 * cells) uses to open a parallel region. Not part of the public C API (kernels.h).
 *
 * Why one helper: the region boilerplate (a serial path for one thread, the region,
 * each thread's index and share, a build without OpenMP) used to be written out in
 * each family, and one copy sized its per-thread buffers by the thread count it ASKED
 * for. OpenMP may start a smaller team (OMP_DYNAMIC=true, OMP_THREAD_LIMIT, nesting):
 * the conv2d weight gradient then summed partials no thread had written. Here a body
 * is always told the team it actually got (omp_get_num_threads() inside the region),
 * and ag_parallel returns that size, so work splits and buffer reductions follow it.
 *
 * A body may use orphaned `omp for` / `omp barrier` (they bind to the region
 * ag_parallel opened); for that, a one-thread call inside someone else's region still
 * opens an inactive region of its own, so those constructs never bind to the caller's
 * team. Outside any region a one-thread call is a plain function call. Range bodies
 * (ag_parallel_for) get their items as arguments and must not use such constructs:
 * a one-thread ag_parallel_for is always a plain call.
 */
#ifndef AUTOGRAD_CORE_PARALLEL_H
#define AUTOGRAD_CORE_PARALLEL_H
#include <stdint.h>
#include "kernels.h"
#ifdef _OPENMP
#include <omp.h>
/* An OpenMP directive that vanishes, warning-free, in a build without OpenMP. */
#define AG_OMP(directive) _Pragma(directive)
#else
#define AG_OMP(directive)
#endif

/* The body of a region: run once by each thread of a team of `team` threads. */
typedef void (*ag_region_fn)(void *context, int thread, int team);
/* One thread's share of a loop: items [begin, end), `thread` of the team that runs. */
typedef void (*ag_range_fn)(void *context, int64_t begin, int64_t end, int thread);

/* [begin, end): thread `thread`'s even, contiguous share of count items over `team`. */
static inline void ag_share(int64_t count, int thread, int team, int64_t *begin, int64_t *end) {
    *begin = count * thread / team;
    *end = count * (thread + 1) / team;
}

/* The thread count for `work` units when a region pays off from `minimum` units on:
 * ag_get_num_threads() (the user's setting) or 1. */
static inline int ag_threads_for(double work, double minimum) {
    return work >= minimum ? ag_get_num_threads() : 1;
}

/* Runs body in a team of at most `threads` threads (1 or less: the calling thread
 * alone); returns the size of the team that ran it. */
static int ag_parallel(int threads, ag_region_fn body, void *context) {
#ifdef _OPENMP
    int started = 1;
    if (threads <= 1 && omp_get_level() == 0) {
        body(context, 0, 1);
        return 1;
    }
    AG_OMP("omp parallel num_threads(threads > 1 ? threads : 1) if (threads > 1)")
    {
        const int team = omp_get_num_threads(), thread = omp_get_thread_num();
        if (thread == 0) started = team;
        body(context, thread, team);
    }
    return started;
#else
    (void)threads;
    body(context, 0, 1);
    return 1;
#endif
}

typedef struct {
    int64_t count;
    ag_range_fn body;
    void *context;
} ag_range_job;

static void ag_range_region(void *job_pointer, int thread, int team) {
    const ag_range_job *job = (const ag_range_job *)job_pointer;
    int64_t begin, end;
    ag_share(job->count, thread, team, &begin, &end);
    if (begin < end) job->body(job->context, begin, end, thread);
}

/* Splits [0, count) into one contiguous share per thread of the team that starts (at
 * most `threads`, never more than count) and runs body on each share. Every item is
 * done once whatever the team size, so results do not depend on how many threads
 * OpenMP actually grants. Returns the team size. */
static int ag_parallel_for(int threads, int64_t count, ag_range_fn body, void *context) {
    ag_range_job job;
    if (count <= 0) return 1;
    if (threads > count) threads = (int)count;
    if (threads <= 1) {
        body(context, 0, count, 0);
        return 1;
    }
    job.count = count;
    job.body = body;
    job.context = context;
    return ag_parallel(threads, ag_range_region, &job);
}

#endif
