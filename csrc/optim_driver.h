/* optim_driver.h: the fused optimizer steps' entry points (kernels.h), written once and
 * included by optim.c for each element type with these macros defined:
 *   T                 element type (float / double)
 *   AG_NAME(x)        name mangling (x##_f32 / x##_f64)
 *   AG_SPANS, AG_ADAM_HYPER, AG_SGD_HYPER, AG_RMSPROP_HYPER  optim_internal.h's types
 *   AG_SELECT         ag_optim_select_f32 / ag_optim_select_f64
 * A step numbers the elements of all its parameters one after the other and splits that
 * range evenly over the threads (ag_parallel_for): one big parameter and many small
 * ones balance alike. Each element is updated the same way whoever runs it. */

typedef struct {
    AG_SPANS spans;
    int64_t count;
    const int64_t *sizes;
    T *const *params;
    const T *const *grads;
    T *const *first, *const *second, *const *third;  /* state buffers, by optimizer */
    const double *step_sizes, *bias2_scales;         /* Adam, per parameter */
    const int *fresh;                                /* SGD, per parameter */
    AG_ADAM_HYPER adam;
    AG_SGD_HYPER sgd;
    AG_RMSPROP_HYPER rmsprop;
} AG_NAME(optim_job);

/* Runs CALL(parameter, offset, n) for each piece of global elements [begin, end): the
 * elements of parameter 0, then of parameter 1, ... numbered one after the other. */
#ifndef AG_FOR_PIECES
#define AG_FOR_PIECES(job, begin, end, CALL)                                          \
    do {                                                                              \
        int64_t start_ = 0;                                                           \
        for (int64_t index_ = 0; index_ < (job)->count && start_ < (end); index_++) { \
            const int64_t size_ = (job)->sizes[index_];                               \
            const int64_t low_ = (begin) > start_ ? (begin) - start_ : 0;             \
            const int64_t high_ = (end) < start_ + size_ ? (end) - start_ : size_;    \
            if (low_ < high_) { CALL(index_, low_, high_ - low_); }                   \
            start_ += size_;                                                          \
        }                                                                             \
    } while (0)
#endif

static int64_t AG_NAME(optim_total)(int64_t count, const int64_t *sizes) {
    int64_t total = 0;
    for (int64_t i = 0; i < count; i++) total += sizes[i];
    return total;
}

/* ---- Adam ------------------------------------------------------------------------------- */
static void AG_NAME(adam_share)(void *job_pointer, int64_t begin, int64_t end, int thread) {
    const AG_NAME(optim_job) *job = (const AG_NAME(optim_job) *)job_pointer;
    AG_ADAM_HYPER hyper = job->adam;
    (void)thread;
#define AG_ADAM_PIECE(i, offset, n)                                                      \
    hyper.step_size = (T)job->step_sizes[i];                                            \
    hyper.bias2_scale = (T)job->bias2_scales[i];                                        \
    job->spans.adam(job->params[i] + offset, job->grads[i] + offset, job->first[i] + offset, \
                    job->second[i] + offset, n, &hyper);
    AG_FOR_PIECES(job, begin, end, AG_ADAM_PIECE);
#undef AG_ADAM_PIECE
}

void AG_NAME(ag_adam_step)(int64_t count, const int64_t *sizes, T *const *params, const T *const *grads,
                           T *const *exp_avg, T *const *exp_avg_sq, const double *step_sizes,
                           const double *bias2_scales, double beta1, double beta2, double eps,
                           double weight_decay) {
    AG_NAME(optim_job) job = {0};
    const int64_t total = AG_NAME(optim_total)(count, sizes);
    AG_SELECT(ag_get_simd_level(), &job.spans);
    job.count = count; job.sizes = sizes; job.params = params; job.grads = grads;
    job.first = exp_avg; job.second = exp_avg_sq;
    job.step_sizes = step_sizes; job.bias2_scales = bias2_scales;
    /* 1 - beta in double, then rounded: what numpy gets from the Python expression */
    job.adam.beta1 = (T)beta1; job.adam.one_minus_beta1 = (T)(1.0 - beta1);
    job.adam.beta2 = (T)beta2; job.adam.one_minus_beta2 = (T)(1.0 - beta2);
    job.adam.eps = (T)eps; job.adam.weight_decay = (T)weight_decay;
    job.adam.decay = weight_decay != 0.0;
    ag_parallel_for(optim_threads(total), total, AG_NAME(adam_share), &job);
}

/* ---- SGD -------------------------------------------------------------------------------- */
static void AG_NAME(sgd_share)(void *job_pointer, int64_t begin, int64_t end, int thread) {
    const AG_NAME(optim_job) *job = (const AG_NAME(optim_job) *)job_pointer;
    AG_SGD_HYPER hyper = job->sgd;
    (void)thread;
#define AG_SGD_PIECE(i, offset, n)                                                       \
    hyper.fresh = hyper.with_momentum && job->fresh[i];                                 \
    job->spans.sgd(job->params[i] + offset, job->grads[i] + offset,                     \
                   hyper.with_momentum ? job->first[i] + offset : NULL, n, &hyper);
    AG_FOR_PIECES(job, begin, end, AG_SGD_PIECE);
#undef AG_SGD_PIECE
}

void AG_NAME(ag_sgd_step)(int64_t count, const int64_t *sizes, T *const *params, const T *const *grads,
                          T *const *momentum_buffers, const int *fresh, double lr, double momentum,
                          double dampening, double weight_decay, int nesterov) {
    AG_NAME(optim_job) job = {0};
    const int64_t total = AG_NAME(optim_total)(count, sizes);
    AG_SELECT(ag_get_simd_level(), &job.spans);
    job.count = count; job.sizes = sizes; job.params = params; job.grads = grads;
    job.first = momentum_buffers; job.fresh = fresh;
    job.sgd.lr = (T)lr; job.sgd.momentum = (T)momentum;
    job.sgd.one_minus_dampening = (T)(1.0 - dampening); job.sgd.weight_decay = (T)weight_decay;
    job.sgd.decay = weight_decay != 0.0;
    job.sgd.with_momentum = momentum != 0.0;
    job.sgd.dampened = dampening != 0.0;
    job.sgd.nesterov = nesterov != 0;
    ag_parallel_for(optim_threads(total), total, AG_NAME(sgd_share), &job);
}

/* ---- RMSprop ---------------------------------------------------------------------------- */
static void AG_NAME(rmsprop_share)(void *job_pointer, int64_t begin, int64_t end, int thread) {
    const AG_NAME(optim_job) *job = (const AG_NAME(optim_job) *)job_pointer;
    const AG_RMSPROP_HYPER *hyper = &job->rmsprop;
    (void)thread;
#define AG_RMSPROP_PIECE(i, offset, n)                                                   \
    job->spans.rmsprop(job->params[i] + offset, job->grads[i] + offset, job->first[i] + offset, \
                       hyper->centered ? job->second[i] + offset : NULL,                \
                       hyper->with_momentum ? job->third[i] + offset : NULL, n, hyper);
    AG_FOR_PIECES(job, begin, end, AG_RMSPROP_PIECE);
#undef AG_RMSPROP_PIECE
}

void AG_NAME(ag_rmsprop_step)(int64_t count, const int64_t *sizes, T *const *params, const T *const *grads,
                              T *const *square_avg, T *const *grad_avg, T *const *momentum_buffers,
                              double lr, double alpha, double eps, double weight_decay, double momentum,
                              int centered) {
    AG_NAME(optim_job) job = {0};
    const int64_t total = AG_NAME(optim_total)(count, sizes);
    AG_SELECT(ag_get_simd_level(), &job.spans);
    job.count = count; job.sizes = sizes; job.params = params; job.grads = grads;
    job.first = square_avg; job.second = grad_avg; job.third = momentum_buffers;
    job.rmsprop.lr = (T)lr; job.rmsprop.alpha = (T)alpha; job.rmsprop.one_minus_alpha = (T)(1.0 - alpha);
    job.rmsprop.eps = (T)eps; job.rmsprop.weight_decay = (T)weight_decay; job.rmsprop.momentum = (T)momentum;
    job.rmsprop.decay = weight_decay != 0.0;
    job.rmsprop.centered = centered != 0;
    job.rmsprop.with_momentum = momentum != 0.0;
    ag_parallel_for(optim_threads(total), total, AG_NAME(rmsprop_share), &job);
}
