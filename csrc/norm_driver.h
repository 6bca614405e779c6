/* norm_driver.h: the layer norm and batch norm drivers, written once and included by
 * norm.c per element type (T, SQRT, AG_NAME, AG_ROWS_TABLE, AG_SELECT defined).
 *
 * Every reduction across rows (layer norm's weight and bias gradients, all of batch
 * norm's per-channel statistics) is summed per chunk of rows into the chunk's own
 * partial sums, and the partials are added in chunk order. The chunks depend on the row
 * count only (norm_chunks), never on the thread count or on which thread ran which
 * chunk: a result is the same at any thread count, and no two threads write the same
 * memory. Threads take whole chunks (ag_share over the team that actually started). */

typedef struct {
    AG_ROWS_TABLE loops;
    const T *x, *weight, *bias, *grad, *mean_in, *rstd_in;
    T eps;
    T *y, *mean, *var, *rstd, *grad_x, *grad_weight, *grad_bias;
    T *partials, *scale, *mean_grad, *mean_product;
    int64_t rows, width, chunks;
} AG_NAME(norm_job);

static void AG_NAME(norm_loops)(AG_ROWS_TABLE *loops) {
    AG_SELECT(ag_get_simd_level(), loops);
}

/* ---- layer norm -------------------------------------------------------------------------- */
static void AG_NAME(layer_forward_range)(void *pointer, int64_t begin, int64_t end, int thread) {
    const AG_NAME(norm_job) *job = (const AG_NAME(norm_job) *)pointer;
    const int64_t n = job->width;
    (void)thread;
    for (int64_t r = begin; r < end; r++)
        job->loops.layer_forward(job->x + r * n, job->weight, job->bias, job->eps, n, job->y + r * n,
                                 job->mean + r, job->rstd + r);
}

void AG_NAME(ag_layer_norm_forward)(int64_t rows, int64_t features, const T *x, const T *weight, const T *bias,
                                    double eps, T *y, T *mean, T *rstd) {
    AG_NAME(norm_job) job;
    if (rows <= 0 || features <= 0) return;
    AG_NAME(norm_loops)(&job.loops);
    job.x = x; job.weight = weight; job.bias = bias; job.eps = (T)eps;
    job.y = y; job.mean = mean; job.rstd = rstd; job.width = features;
    /* rows are independent: any split gives the same result */
    ag_parallel_for(ag_threads_for((double)rows * (double)features, AG_NORM_PARALLEL_MIN), rows,
                    AG_NAME(layer_forward_range), &job);
}

static void AG_NAME(layer_backward_range)(void *pointer, int64_t begin, int64_t end, int thread) {
    const AG_NAME(norm_job) *job = (const AG_NAME(norm_job) *)pointer;
    const int64_t n = job->width;
    (void)thread;
    for (int64_t k = begin; k < end; k++) {
        int64_t first, last;
        T *weight_sums = NULL, *bias_sums = NULL;
        ag_share(job->rows, (int)k, (int)job->chunks, &first, &last);
        if (job->partials != NULL) {
            weight_sums = job->partials + k * 2 * n;
            bias_sums = weight_sums + n;
            memset(weight_sums, 0, (size_t)(2 * n) * sizeof(T));
        }
        for (int64_t r = first; r < last; r++)
            job->loops.layer_backward(job->grad + r * n, job->x + r * n, job->mean_in[r], job->rstd_in[r],
                                      job->weight, n, job->grad_x != NULL ? job->grad_x + r * n : NULL,
                                      job->grad_weight != NULL ? weight_sums : NULL,
                                      job->grad_bias != NULL ? bias_sums : NULL);
    }
}

int AG_NAME(ag_layer_norm_backward)(int64_t rows, int64_t features, const T *grad, const T *x, const T *mean,
                                    const T *rstd, const T *weight, T *grad_x, T *grad_weight, T *grad_bias) {
    AG_NAME(norm_job) job;
    const int64_t n = features > 0 ? features : 0;
    if (grad_weight != NULL) memset(grad_weight, 0, (size_t)n * sizeof(T));
    if (grad_bias != NULL) memset(grad_bias, 0, (size_t)n * sizeof(T));
    if (rows <= 0 || features <= 0) return 0;
    AG_NAME(norm_loops)(&job.loops);
    job.grad = grad; job.x = x; job.mean_in = mean; job.rstd_in = rstd; job.weight = weight;
    job.grad_x = grad_x; job.grad_weight = grad_weight; job.grad_bias = grad_bias;
    job.rows = rows; job.width = n; job.chunks = norm_chunks(rows); job.partials = NULL;
    if (grad_weight != NULL || grad_bias != NULL) {
        job.partials = (T *)malloc((size_t)job.chunks * 2 * (size_t)n * sizeof(T));
        if (job.partials == NULL) return -1;
    }
    ag_parallel_for(ag_threads_for((double)rows * (double)n, AG_NORM_PARALLEL_MIN), job.chunks,
                    AG_NAME(layer_backward_range), &job);
    if (job.partials != NULL) {
        for (int64_t k = 0; k < job.chunks; k++) {
            const T *weight_sums = job.partials + k * 2 * n, *bias_sums = weight_sums + n;
            if (grad_weight != NULL)
                for (int64_t i = 0; i < n; i++) grad_weight[i] += weight_sums[i];
            if (grad_bias != NULL)
                for (int64_t i = 0; i < n; i++) grad_bias[i] += bias_sums[i];
        }
        free(job.partials);
    }
    return 0;
}

/* ---- batch norm -------------------------------------------------------------------------- */
/* out[c] = sum over chunks k, in order, of parts[k * stride + c]. */
static void AG_NAME(add_chunks)(const T *parts, int64_t chunks, int64_t stride, int64_t channels, T *out) {
    memset(out, 0, (size_t)channels * sizeof(T));
    for (int64_t k = 0; k < chunks; k++)
        for (int64_t c = 0; c < channels; c++) out[c] += parts[k * stride + c];
}

/* One region, four phases split by barriers: the chunks' channel sums; thread 0 folds
 * them into the mean; the chunks' centred squares; thread 0 folds them into the variance
 * and the scale; then every chunk's rows are normalized. */
static void AG_NAME(batch_forward_region)(void *pointer, int thread, int team) {
    const AG_NAME(norm_job) *job = (const AG_NAME(norm_job) *)pointer;
    const int64_t channels = job->width;
    int64_t begin, end, first, last;
    ag_share(job->chunks, thread, team, &begin, &end);
    for (int64_t k = begin; k < end; k++) {
        T *sums = job->partials + k * channels;
        ag_share(job->rows, (int)k, (int)job->chunks, &first, &last);
        memset(sums, 0, (size_t)channels * sizeof(T));
        job->loops.channel_sums(job->x + first * channels, last - first, channels, sums);
    }
    AG_OMP("omp barrier")
    if (thread == 0) {
        AG_NAME(add_chunks)(job->partials, job->chunks, channels, channels, job->mean);
        for (int64_t c = 0; c < channels; c++) job->mean[c] /= (T)job->rows;
    }
    AG_OMP("omp barrier")
    for (int64_t k = begin; k < end; k++) {
        T *sums = job->partials + k * channels;
        ag_share(job->rows, (int)k, (int)job->chunks, &first, &last);
        memset(sums, 0, (size_t)channels * sizeof(T));
        job->loops.centered_squares(job->x + first * channels, job->mean, last - first, channels, sums);
    }
    AG_OMP("omp barrier")
    if (thread == 0) {
        T *var = job->scale;  /* the variance passes through scale on its way */
        AG_NAME(add_chunks)(job->partials, job->chunks, channels, channels, var);
        for (int64_t c = 0; c < channels; c++) {
            const T variance = var[c] / (T)job->rows;
            const T rstd = (T)1 / SQRT(variance + job->eps);
            if (job->var != NULL) job->var[c] = variance;
            job->rstd[c] = rstd;
            job->scale[c] = job->weight != NULL ? rstd * job->weight[c] : rstd;
        }
    }
    AG_OMP("omp barrier")
    for (int64_t k = begin; k < end; k++) {
        ag_share(job->rows, (int)k, (int)job->chunks, &first, &last);
        job->loops.normalize(job->x + first * channels, job->mean, job->scale, job->bias, last - first, channels,
                             job->y + first * channels);
    }
}

int AG_NAME(ag_batch_norm_forward)(int64_t rows, int64_t channels, const T *x, const T *weight, const T *bias,
                                   double eps, T *y, T *mean, T *var, T *rstd) {
    AG_NAME(norm_job) job;
    if (rows <= 0 || channels <= 0) return 0;
    AG_NAME(norm_loops)(&job.loops);
    job.x = x; job.weight = weight; job.bias = bias; job.eps = (T)eps;
    job.y = y; job.mean = mean; job.var = var; job.rstd = rstd;
    job.rows = rows; job.width = channels; job.chunks = norm_chunks(rows);
    job.partials = (T *)malloc(((size_t)job.chunks + 1) * (size_t)channels * sizeof(T));
    if (job.partials == NULL) return -1;
    job.scale = job.partials + job.chunks * channels;
    ag_parallel(ag_threads_for((double)rows * (double)channels, AG_NORM_PARALLEL_MIN),
                AG_NAME(batch_forward_region), &job);
    free(job.partials);
    return 0;
}

/* Two phases: the chunks' sums of grad and grad * xhat (thread 0 folds them into the
 * affine gradients and the two means), then grad_x. */
static void AG_NAME(batch_backward_region)(void *pointer, int thread, int team) {
    const AG_NAME(norm_job) *job = (const AG_NAME(norm_job) *)pointer;
    const int64_t channels = job->width;
    int64_t begin, end, first, last;
    ag_share(job->chunks, thread, team, &begin, &end);
    for (int64_t k = begin; k < end; k++) {
        T *sum_grad = job->partials + k * 2 * channels, *sum_product = sum_grad + channels;
        ag_share(job->rows, (int)k, (int)job->chunks, &first, &last);
        memset(sum_grad, 0, (size_t)(2 * channels) * sizeof(T));
        job->loops.backward_sums(job->grad + first * channels, job->x + first * channels, job->mean_in,
                                 job->rstd_in, last - first, channels, sum_grad, sum_product);
    }
    AG_OMP("omp barrier")
    if (thread == 0) {
        AG_NAME(add_chunks)(job->partials, job->chunks, 2 * channels, channels, job->grad_bias);
        AG_NAME(add_chunks)(job->partials + channels, job->chunks, 2 * channels, channels, job->grad_weight);
        for (int64_t c = 0; c < channels; c++) {
            job->mean_grad[c] = job->grad_bias[c] / (T)job->rows;
            job->mean_product[c] = job->grad_weight[c] / (T)job->rows;
            job->scale[c] = job->weight != NULL ? job->weight[c] * job->rstd_in[c] : job->rstd_in[c];
        }
    }
    AG_OMP("omp barrier")
    if (job->grad_x == NULL) return;
    for (int64_t k = begin; k < end; k++) {
        ag_share(job->rows, (int)k, (int)job->chunks, &first, &last);
        job->loops.backward_input(job->grad + first * channels, job->x + first * channels, job->mean_in,
                                  job->rstd_in, job->scale, job->mean_grad, job->mean_product, last - first,
                                  channels, job->grad_x + first * channels);
    }
}

int AG_NAME(ag_batch_norm_backward)(int64_t rows, int64_t channels, const T *grad, const T *x, const T *mean,
                                    const T *rstd, const T *weight, T *grad_x, T *grad_weight, T *grad_bias) {
    AG_NAME(norm_job) job;
    if (channels <= 0) return 0;
    if (rows <= 0) {
        memset(grad_weight, 0, (size_t)channels * sizeof(T));
        memset(grad_bias, 0, (size_t)channels * sizeof(T));
        return 0;
    }
    AG_NAME(norm_loops)(&job.loops);
    job.grad = grad; job.x = x; job.mean_in = mean; job.rstd_in = rstd; job.weight = weight;
    job.grad_x = grad_x; job.grad_weight = grad_weight; job.grad_bias = grad_bias;
    job.rows = rows; job.width = channels; job.chunks = norm_chunks(rows);
    job.partials = (T *)malloc(((size_t)job.chunks * 2 + 3) * (size_t)channels * sizeof(T));
    if (job.partials == NULL) return -1;
    job.scale = job.partials + job.chunks * 2 * channels;
    job.mean_grad = job.scale + channels;
    job.mean_product = job.mean_grad + channels;
    ag_parallel(ag_threads_for((double)rows * (double)channels, AG_NORM_PARALLEL_MIN),
                AG_NAME(batch_backward_region), &job);
    free(job.partials);
    return 0;
}
