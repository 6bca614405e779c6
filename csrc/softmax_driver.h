/* softmax_driver.h: the softmax forward and backward for one element type, included
 * by softmax.c with T (float / double), EXP (the exponential of a value <= 0) and AG_NAME
 * (the _f32 / _f64 suffix) defined. */

typedef struct {
    int64_t width;
    int causal;
    T *x;
} AG_NAME(softmax_forward_job);

static void AG_NAME(softmax_forward_rows)(void *context, int64_t begin, int64_t end, int thread) {
    const AG_NAME(softmax_forward_job) *job = (const AG_NAME(softmax_forward_job) *)context;
    const int64_t width = job->width;
    int64_t row, j;
    (void)thread;
    for (row = begin; row < end; ++row) {
        T *x = job->x + row * width;
        const int64_t kept = softmax_kept(row, width, job->causal);
        T largest = x[0], total = 0, inverse;
        AG_OMP("omp simd reduction(max:largest)")
        for (j = 1; j < kept; ++j) largest = x[j] > largest ? x[j] : largest;
        AG_OMP("omp simd reduction(+:total)")
        for (j = 0; j < kept; ++j) {
            x[j] = EXP(x[j] - largest);
            total += x[j];
        }
        inverse = (T)1 / total;
        for (j = 0; j < kept; ++j) x[j] *= inverse;
        for (j = kept; j < width; ++j) x[j] = 0;
    }
}

void AG_NAME(ag_softmax_forward)(int64_t rows, int64_t width, int causal, T *x) {
    AG_NAME(softmax_forward_job) job;
    if (rows <= 0 || width <= 0) return;
    job.width = width;
    job.causal = causal != 0;
    job.x = x;
    ag_parallel_for(ag_threads_for((double)rows * (double)width, AG_SOFTMAX_PARALLEL_MIN), rows,
                    AG_NAME(softmax_forward_rows), &job);
}

typedef struct {
    int64_t width;
    int causal;
    const T *y;
    const T *grad;
    T *grad_x;
} AG_NAME(softmax_backward_job);

static void AG_NAME(softmax_backward_rows)(void *context, int64_t begin, int64_t end, int thread) {
    const AG_NAME(softmax_backward_job) *job = (const AG_NAME(softmax_backward_job) *)context;
    const int64_t width = job->width;
    int64_t row, j;
    (void)thread;
    for (row = begin; row < end; ++row) {
        const T *y = job->y + row * width;
        const T *grad = job->grad + row * width;
        T *grad_x = job->grad_x + row * width;
        const int64_t kept = softmax_kept(row, width, job->causal);
        T dot = 0;
        AG_OMP("omp simd reduction(+:dot)")
        for (j = 0; j < kept; ++j) dot += grad[j] * y[j];
        /* grad_x may be grad: each element is read before it is written */
        for (j = 0; j < kept; ++j) grad_x[j] = y[j] * (grad[j] - dot);
        for (j = kept; j < width; ++j) grad_x[j] = 0;
    }
}

void AG_NAME(ag_softmax_backward)(int64_t rows, int64_t width, int causal, const T *y, const T *grad,
                                  T *grad_x) {
    AG_NAME(softmax_backward_job) job;
    if (rows <= 0 || width <= 0) return;
    job.width = width;
    job.causal = causal != 0;
    job.y = y;
    job.grad = grad;
    job.grad_x = grad_x;
    ag_parallel_for(ag_threads_for((double)rows * (double)width, AG_SOFTMAX_PARALLEL_MIN), rows,
                    AG_NAME(softmax_backward_rows), &job);
}
