/* pool_driver.h: the pooling entry points (kernels.h), written once and included by
 * pool.c for each element type with these macros defined:
 *   T              element type (float / double)
 *   AG_NAME(x)     name mangling (x##_f32 / x##_f64)
 *   AG_ROWS_TABLE  ag_pool_rows_f32 / ag_pool_rows_f64 (pool_internal.h)
 *   AG_SELECT      ag_pool_select_f32 / ag_pool_select_f64
 * Every call picks the loops of ag_get_simd_level() and splits its rows or images over
 * threads with ag_parallel_for (parallel.h): each thread gets a contiguous share of the
 * team that actually started. */

typedef struct {
    AG_ROWS_TABLE rows;
    const ag_pool2d_geometry *g;
    const T *input;         /* x, or grad_y */
    T *output;              /* y, or grad_x */
    int64_t *argmax;
    int count_include_pad;
    int64_t bad;            /* max backward: entries skipped, summed over threads */
} AG_NAME(pool_job);

static void AG_NAME(max_forward_share)(void *job_pointer, int64_t begin, int64_t end, int thread) {
    const AG_NAME(pool_job) *job = (const AG_NAME(pool_job) *)job_pointer;
    (void)thread;
    job->rows.max_forward_rows(job->g, job->input, job->output, job->argmax, begin, end);
}

int AG_NAME(ag_max_pool2d_forward)(const ag_pool2d_geometry *g, const T *x, T *y,
                                   int64_t *argmax) {
    const int64_t rows = g->batch * g->out_height;
    const int64_t cells = g->kernel_h * g->kernel_w;
    AG_NAME(pool_job) job;
    AG_SELECT(ag_get_simd_level(), &job.rows);
    job.g = g; job.input = x; job.output = y; job.argmax = argmax;
    job.count_include_pad = 0; job.bad = 0;
    ag_parallel_for(pool_threads(rows * g->out_width * g->channels * cells), rows,
                    AG_NAME(max_forward_share), &job);
    return 0;  /* allocates nothing (kept for the API: -1 would mean no workspace) */
}

static void AG_NAME(max_backward_share)(void *job_pointer, int64_t begin, int64_t end, int thread) {
    AG_NAME(pool_job) *job = (AG_NAME(pool_job) *)job_pointer;
    const int64_t bad = job->rows.max_backward_images(job->g, job->input, job->argmax,
                                                      job->output, begin, end);
    (void)thread;
    if (bad != 0) {
        AG_OMP("omp atomic")
        job->bad += bad;
    }
}

int AG_NAME(ag_max_pool2d_backward)(const ag_pool2d_geometry *g, const T *grad_y,
                                    const int64_t *argmax, T *grad_x) {
    const int64_t image = g->height * g->width * g->channels;
    const int64_t per_image = g->out_height * g->out_width * g->channels;
    AG_NAME(pool_job) job;
    AG_SELECT(ag_get_simd_level(), &job.rows);
    job.g = g; job.input = grad_y; job.output = grad_x;
    /* the loops only read argmax here */
    job.argmax = (int64_t *)argmax;
    job.count_include_pad = 0; job.bad = 0;
    ag_parallel_for(pool_threads(g->batch * (image + per_image)), g->batch,
                    AG_NAME(max_backward_share), &job);
    return job.bad ? -1 : 0;
}

static void AG_NAME(avg_forward_share)(void *job_pointer, int64_t begin, int64_t end, int thread) {
    const AG_NAME(pool_job) *job = (const AG_NAME(pool_job) *)job_pointer;
    (void)thread;
    job->rows.avg_forward_rows(job->g, job->input, job->output, job->count_include_pad, begin, end);
}

void AG_NAME(ag_avg_pool2d_forward)(const ag_pool2d_geometry *g, const T *x, T *y,
                                    int count_include_pad) {
    const int64_t rows = g->batch * g->out_height;
    AG_NAME(pool_job) job;
    AG_SELECT(ag_get_simd_level(), &job.rows);
    job.g = g; job.input = x; job.output = y; job.argmax = NULL;
    job.count_include_pad = count_include_pad; job.bad = 0;
    ag_parallel_for(pool_threads(rows * g->out_width * g->channels * g->kernel_h * g->kernel_w),
                    rows, AG_NAME(avg_forward_share), &job);
}

static void AG_NAME(avg_backward_share)(void *job_pointer, int64_t begin, int64_t end, int thread) {
    const AG_NAME(pool_job) *job = (const AG_NAME(pool_job) *)job_pointer;
    (void)thread;
    job->rows.avg_backward_images(job->g, job->input, job->output, job->count_include_pad,
                                  begin, end);
}

void AG_NAME(ag_avg_pool2d_backward)(const ag_pool2d_geometry *g, const T *grad_y,
                                     T *grad_x, int count_include_pad) {
    AG_NAME(pool_job) job;
    AG_SELECT(ag_get_simd_level(), &job.rows);
    job.g = g; job.input = grad_y; job.output = grad_x; job.argmax = NULL;
    job.count_include_pad = count_include_pad; job.bad = 0;
    ag_parallel_for(pool_threads(g->batch * g->height * g->width * g->channels), g->batch,
                    AG_NAME(avg_backward_share), &job);
}
