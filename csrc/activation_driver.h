/* activation_driver.h: the bias + ReLU driver and its portable element loops, written
 * once and included by activation.c per element type (T, AG_NAME, AG_SPANS, AG_SELECT). */

/* The portable loops: one element at a time, the mask a byte at a time. The ReLU is
 * numpy's maximum(v, 0): NaN stays NaN (NaN <= 0 is false) and -0.0 becomes +0.0. */
static void AG_NAME(bias_relu_span_portable)(const T *x, const T *bias, int relu, T *y,
                                             uint8_t *mask, int64_t channels,
                                             int64_t begin, int64_t end) {
    int64_t channel = begin % channels;
    for (int64_t byte_start = begin; byte_start < end; byte_start += 8) {
        const int64_t stop = byte_start + 8 < end ? byte_start + 8 : end;
        unsigned bits = 0;
        for (int64_t i = byte_start; i < stop; i++) {
            T v = x[i];
            if (bias != NULL) v += bias[channel];
            if (relu && v <= (T)0) v = (T)0;
            y[i] = v;
            bits |= (unsigned)(v > (T)0) << (i - byte_start);
            if (++channel == channels) channel = 0;
        }
        if (mask != NULL) mask[byte_start >> 3] = (uint8_t)bits;
    }
}

static void AG_NAME(relu_bias_backward_span_portable)(const T *grad, const uint8_t *mask,
                                                      T *grad_x, T *sums, int64_t channels,
                                                      int64_t begin, int64_t end) {
    int64_t channel = begin % channels;
    for (int64_t i = begin; i < end; i++) {
        T g = grad[i];
        if (mask != NULL) {
            g = (mask[i >> 3] >> (i & 7)) & 1u ? g : (T)0;
            if (grad_x != NULL) grad_x[i] = g;
        }
        if (sums != NULL) sums[channel] += g;
        if (++channel == channels) channel = 0;
    }
}

/* Elements below which one thread does the whole pass. The pass is memory-bound (one
 * thread does the seed CNN's 1.25 M-element second conv output in 0.25 ms, its 100 K
 * dense output in 0.04 ms), and waking a sleeping team costs 0.1-0.5 ms on a busy
 * 2-core machine: only outputs of several MiB gain from a second thread. */
#ifndef AG_ACTIVATION_PARALLEL_MIN
#define AG_ACTIVATION_PARALLEL_MIN 2097152.0
#endif

typedef struct {
    AG_ACTIVATION_SPANS spans;
    const T *x, *bias, *grad;
    const uint8_t *mask_in;
    int relu;
    T *y, *grad_x, *partials;
    uint8_t *mask;
    int64_t channels, total;
} AG_NAME(activation_job);

static void AG_NAME(activation_spans)(int64_t channels, AG_ACTIVATION_SPANS *spans) {
    spans->forward = AG_NAME(bias_relu_span_portable);
    spans->backward = AG_NAME(relu_bias_backward_span_portable);
    AG_SELECT(ag_get_simd_level(), channels, spans);
}

/* [begin, end) of thread `thread`: whole 16-element groups, so no mask byte is shared. */
static void AG_NAME(activation_share)(int64_t total, int thread, int team, int64_t *begin, int64_t *end) {
    const int64_t groups = (total + 15) / 16;
    ag_share(groups, thread, team, begin, end);
    *begin *= 16;
    *end = *end * 16 < total ? *end * 16 : total;
}

static void AG_NAME(bias_relu_region)(void *pointer, int thread, int team) {
    const AG_NAME(activation_job) *job = (const AG_NAME(activation_job) *)pointer;
    int64_t begin, end;
    AG_NAME(activation_share)(job->total, thread, team, &begin, &end);
    if (begin < end)
        job->spans.forward(job->x, job->bias, job->relu, job->y, job->mask, job->channels, begin, end);
}

void AG_NAME(ag_bias_relu_forward)(int64_t rows, int64_t channels, const T *x, const T *bias,
                                   int relu, T *y, uint8_t *mask) {
    AG_NAME(activation_job) job;
    const int64_t total = rows * channels;
    if (total <= 0) return;
    AG_NAME(activation_spans)(channels, &job.spans);
    job.x = x; job.bias = bias; job.relu = relu; job.y = y; job.mask = mask;
    job.channels = channels; job.total = total;
    ag_parallel(ag_threads_for((double)total, AG_ACTIVATION_PARALLEL_MIN), AG_NAME(bias_relu_region), &job);
}

static void AG_NAME(relu_bias_backward_region)(void *pointer, int thread, int team) {
    const AG_NAME(activation_job) *job = (const AG_NAME(activation_job) *)pointer;
    T *sums = job->partials != NULL ? job->partials + (int64_t)thread * job->channels : NULL;
    int64_t begin, end;
    AG_NAME(activation_share)(job->total, thread, team, &begin, &end);
    if (sums != NULL) memset(sums, 0, (size_t)job->channels * sizeof(T));
    if (begin < end)
        job->spans.backward(job->grad, job->mask_in, job->grad_x, sums, job->channels, begin, end);
}

int AG_NAME(ag_relu_bias_backward)(int64_t rows, int64_t channels, const T *grad, const uint8_t *mask,
                                   T *grad_x, T *grad_bias) {
    AG_NAME(activation_job) job;
    const int64_t total = rows * channels;
    int threads = ag_threads_for((double)total, AG_ACTIVATION_PARALLEL_MIN), team;
    if (grad_bias != NULL) memset(grad_bias, 0, (size_t)(channels > 0 ? channels : 0) * sizeof(T));
    if (total <= 0) return 0;
    AG_NAME(activation_spans)(channels, &job.spans);
    job.grad = grad; job.mask_in = mask; job.grad_x = grad_x;
    job.channels = channels; job.total = total; job.partials = NULL;
    if (grad_bias != NULL) {
        /* one row of partial sums per thread that may start, added in thread order */
        job.partials = (T *)malloc((size_t)(threads > 1 ? threads : 1) * (size_t)channels * sizeof(T));
        if (job.partials == NULL) return -1;
    }
    team = ag_parallel(threads, AG_NAME(relu_bias_backward_region), &job);
    if (grad_bias != NULL) {
        for (int t = 0; t < team; t++) {
            const T *part = job.partials + (int64_t)t * channels;
            for (int64_t c = 0; c < channels; c++) grad_bias[c] += part[c];
        }
        free(job.partials);
    }
    return 0;
}

/* ---- gelu and silu: one pass forward, one pass backward (from the input) ---- */

/* The portable loop, both element types: libm's erfc / exp in double, rounded once to T
 * (float64 data takes this loop at every level: it serves gradcheck, not speed). The
 * formulas are the SIMD loops' (activation_gelu_level.h): Phi(x) = erfc(-x / sqrt 2) / 2
 * and 1 + tanh(s) = 2 / (1 + e^(-2s)), both without cancellation in the left tail. */
static void AG_NAME(gelu_span_portable)(const T *x, const T *grad, int form, T *out,
                                        int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; i++) {
        const double v = (double)x[i];
        double result;
        if (form == AG_SILU) {
            const double sigmoid = 1.0 / (1.0 + exp(-v));
            if (grad == NULL) result = v * sigmoid;
            else result = sigmoid * (1.0 + v * (1.0 - sigmoid));
        } else if (form == AG_GELU_TANH) {
            const double q = 2.0 / (1.0 + exp(-2.0 * AG_GELU_TANH_SCALE * v * (1.0 + AG_GELU_TANH_CUBIC * v * v)));
            if (grad == NULL) result = 0.5 * v * q;
            else result = 0.5 * q + 0.5 * v * q * (2.0 - q) * AG_GELU_TANH_SCALE
                                        * (1.0 + 3.0 * AG_GELU_TANH_CUBIC * v * v);
        } else {
            const double cdf = 0.5 * erfc(-v * 0.70710678118654752440);
            if (grad == NULL) result = v * cdf;
            else result = cdf + v * exp(-0.5 * v * v) * 0.39894228040143267794;
        }
        out[i] = grad == NULL ? (T)result : grad[i] * (T)result;
    }
}

/* Elements from which gelu's pass takes the threads: an element costs ~1-2 ns in the SIMD
 * loops (more in the portable one), so a share of 32 Ki elements is worth ~30 us or more,
 * well above a region's start and join. */
#ifndef AG_GELU_PARALLEL_MIN
#define AG_GELU_PARALLEL_MIN 32768.0
#endif

typedef struct {
    AG_GELU_SPAN span;
    const T *x, *grad;
    int form;
    T *out;
} AG_NAME(gelu_job);

static void AG_NAME(gelu_range)(void *pointer, int64_t begin, int64_t end, int thread) {
    const AG_NAME(gelu_job) *job = (const AG_NAME(gelu_job) *)pointer;
    (void)thread;
    job->span(job->x, job->grad, job->form, job->out, begin, end);
}

static void AG_NAME(gelu_run)(int64_t count, const T *x, const T *grad, int form, T *out) {
    AG_NAME(gelu_job) job;
    if (count <= 0) return;
    job.span = AG_GELU_SELECT(ag_get_simd_level(), AG_NAME(gelu_span_portable));
    job.x = x; job.grad = grad; job.form = form; job.out = out;
    ag_parallel_for(ag_threads_for((double)count, AG_GELU_PARALLEL_MIN), count, AG_NAME(gelu_range), &job);
}

void AG_NAME(ag_gelu_forward)(int64_t count, const T *x, int tanh_form, T *y) {
    AG_NAME(gelu_run)(count, x, NULL, tanh_form ? AG_GELU_TANH : AG_GELU_EXACT, y);
}

void AG_NAME(ag_gelu_backward)(int64_t count, const T *x, const T *grad, int tanh_form, T *grad_x) {
    AG_NAME(gelu_run)(count, x, grad, tanh_form ? AG_GELU_TANH : AG_GELU_EXACT, grad_x);
}

void AG_NAME(ag_silu_forward)(int64_t count, const T *x, T *y) {
    AG_NAME(gelu_run)(count, x, NULL, AG_SILU, y);
}

void AG_NAME(ag_silu_backward)(int64_t count, const T *x, const T *grad, T *grad_x) {
    AG_NAME(gelu_run)(count, x, grad, AG_SILU, grad_x);
}

/* ---- elu and the binary cross-entropy with logits: one pass each way ---- */

/* The portable loop, both element types: libm's expm1 / exp / log1p in double, rounded
 * once to T (float64 data takes it at every level). The forms: activation_internal.h. */
static void AG_NAME(exp_span_portable)(const T *x, const T *other, int form, double parameter,
                                       T *out, int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; i++) {
        const double v = (double)x[i];
        double result;
        if (form == AG_ELU_FORWARD) {
            result = v > 0.0 ? v : parameter * expm1(v < 0.0 ? v : 0.0 * v);
        } else if (form == AG_ELU_BACKWARD) {
            result = (double)other[i] * (v > 0.0 ? 1.0 : parameter * exp(v < 0.0 ? v : 0.0 * v));
        } else if (form == AG_BCE_LOGITS_FORWARD) {
            result = (v > 0.0 ? v : 0.0) - v * (double)other[i] + log1p(exp(-fabs(v)));
            if (v != v) result = v;
        } else {
            result = (1.0 / (1.0 + exp(-v)) - (double)other[i]) * parameter;
        }
        out[i] = (T)result;
    }
}

typedef struct {
    AG_EXP_SPAN span;
    const T *x, *other;
    int form;
    double parameter;
    T *out;
} AG_NAME(exp_job);

static void AG_NAME(exp_range)(void *pointer, int64_t begin, int64_t end, int thread) {
    const AG_NAME(exp_job) *job = (const AG_NAME(exp_job) *)pointer;
    (void)thread;
    job->span(job->x, job->other, job->form, job->parameter, job->out, begin, end);
}

/* the same threshold as gelu's: an element costs about as much */
static void AG_NAME(exp_run)(int64_t count, const T *x, const T *other, int form, double parameter, T *out) {
    AG_NAME(exp_job) job;
    if (count <= 0) return;
    job.span = AG_EXP_SELECT(ag_get_simd_level(), AG_NAME(exp_span_portable));
    job.x = x; job.other = other; job.form = form; job.parameter = parameter; job.out = out;
    ag_parallel_for(ag_threads_for((double)count, AG_GELU_PARALLEL_MIN), count, AG_NAME(exp_range), &job);
}

void AG_NAME(ag_elu_forward)(int64_t count, const T *x, double alpha, T *y) {
    AG_NAME(exp_run)(count, x, NULL, AG_ELU_FORWARD, alpha, y);
}

void AG_NAME(ag_elu_backward)(int64_t count, const T *x, const T *grad, double alpha, T *grad_x) {
    AG_NAME(exp_run)(count, x, grad, AG_ELU_BACKWARD, alpha, grad_x);
}

void AG_NAME(ag_bce_logits_forward)(int64_t count, const T *logits, const T *target, T *losses) {
    AG_NAME(exp_run)(count, logits, target, AG_BCE_LOGITS_FORWARD, 1.0, losses);
}

void AG_NAME(ag_bce_logits_backward)(int64_t count, const T *logits, const T *target, double scale, T *grad_logits) {
    AG_NAME(exp_run)(count, logits, target, AG_BCE_LOGITS_BACKWARD, scale, grad_logits);
}
