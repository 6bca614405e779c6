/* softmax_driver.h: the softmax forward and backward for one element type, included by
 * softmax.c with T (float / double), AG_NAME (the _f32 / _f64 suffix), AG_ROWS_TABLE
 * and AG_SELECT (the row loops of a SIMD level) defined. Threads take contiguous shares
 * of the rows (ag_parallel_for); a row's result does not depend on which thread ran it. */

typedef struct {
    AG_ROWS_TABLE loops;
    int64_t width;
    int causal;
    const T *y, *grad;
    T *x, *grad_x;
} AG_NAME(softmax_job);

static void AG_NAME(softmax_forward_range)(void *context, int64_t begin, int64_t end, int thread) {
    const AG_NAME(softmax_job) *job = (const AG_NAME(softmax_job) *)context;
    (void)thread;
    job->loops.forward(begin, end, job->width, job->causal, job->x);
}

static void AG_NAME(softmax_backward_range)(void *context, int64_t begin, int64_t end, int thread) {
    const AG_NAME(softmax_job) *job = (const AG_NAME(softmax_job) *)context;
    (void)thread;
    job->loops.backward(begin, end, job->width, job->causal, job->y, job->grad, job->grad_x);
}

void AG_NAME(ag_softmax_forward)(int64_t rows, int64_t width, int causal, T *x) {
    AG_NAME(softmax_job) job;
    if (rows <= 0 || width <= 0) return;
    memset(&job, 0, sizeof job);
    AG_SELECT(ag_get_simd_level(), &job.loops);
    job.width = width;
    job.causal = causal != 0;
    job.x = x;
    ag_parallel_for(ag_threads_for((double)rows * (double)width, AG_SOFTMAX_PARALLEL_MIN), rows,
                    AG_NAME(softmax_forward_range), &job);
}

void AG_NAME(ag_softmax_backward)(int64_t rows, int64_t width, int causal, const T *y, const T *grad,
                                  T *grad_x) {
    AG_NAME(softmax_job) job;
    if (rows <= 0 || width <= 0) return;
    memset(&job, 0, sizeof job);
    AG_SELECT(ag_get_simd_level(), &job.loops);
    job.width = width;
    job.causal = causal != 0;
    job.y = y;
    job.grad = grad;
    job.grad_x = grad_x;
    ag_parallel_for(ag_threads_for((double)rows * (double)width, AG_SOFTMAX_PARALLEL_MIN), rows,
                    AG_NAME(softmax_backward_range), &job);
}
