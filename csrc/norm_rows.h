/* norm_rows.h: the normalization loops (see norm_internal.h for each one's contract),
 * written once for element type T at one SIMD level and included by norm_rows_level.h
 * (T, SQRT, AG_NAME, AG_ROWS_TABLE defined). No include guard: included once per type
 * and level. Plain C: the lane loops (layer norm) and the channel loops (batch norm)
 * are what the compiler vectorizes. */
#include <math.h>
#include <stddef.h>

/* The AG_NORM_LANES accumulators folded in a fixed tree: lane j + w into lane j. */
static T AG_NAME(fold_lanes)(T *lanes) {
    for (int width = AG_NORM_LANES / 2; width >= 1; width /= 2)
        for (int j = 0; j < width; j++) lanes[j] += lanes[j + width];
    return lanes[0];
}

static T AG_NAME(row_sum)(const T *x, int64_t n) {
    T lanes[AG_NORM_LANES] = {0};
    int64_t i = 0;
    for (; i + AG_NORM_LANES <= n; i += AG_NORM_LANES)
        for (int j = 0; j < AG_NORM_LANES; j++) lanes[j] += x[i + j];
    for (int j = 0; i + j < n; j++) lanes[j] += x[i + j];
    return AG_NAME(fold_lanes)(lanes);
}

static T AG_NAME(row_centered_squares)(const T *x, T mean, int64_t n) {
    T lanes[AG_NORM_LANES] = {0};
    int64_t i = 0;
    for (; i + AG_NORM_LANES <= n; i += AG_NORM_LANES)
        for (int j = 0; j < AG_NORM_LANES; j++) {
            const T d = x[i + j] - mean;
            lanes[j] += d * d;
        }
    for (int j = 0; i + j < n; j++) {
        const T d = x[i + j] - mean;
        lanes[j] += d * d;
    }
    return AG_NAME(fold_lanes)(lanes);
}

/* mean, then the biased variance from the centred values (two passes over a row that
 * sits in L1: no cancellation of a one-pass sum of squares), then y. */
static void AG_NAME(layer_forward)(const T *x, const T *weight, const T *bias, T eps, int64_t n,
                                   T *y, T *mean_out, T *rstd_out) {
    const T mean = AG_NAME(row_sum)(x, n) / (T)n;
    const T variance = AG_NAME(row_centered_squares)(x, mean, n) / (T)n;
    const T rstd = (T)1 / SQRT(variance + eps);
    if (weight != NULL && bias != NULL) {
        for (int64_t i = 0; i < n; i++) y[i] = (x[i] - mean) * rstd * weight[i] + bias[i];
    } else if (weight != NULL) {
        for (int64_t i = 0; i < n; i++) y[i] = (x[i] - mean) * rstd * weight[i];
    } else if (bias != NULL) {
        for (int64_t i = 0; i < n; i++) y[i] = (x[i] - mean) * rstd + bias[i];
    } else {
        for (int64_t i = 0; i < n; i++) y[i] = (x[i] - mean) * rstd;
    }
    *mean_out = mean;
    *rstd_out = rstd;
}

/* g = grad * weight (grad without a weight), xhat = (x - mean) * rstd; the two row sums
 * sum(g) and sum(g * xhat) in lanes, the affine parameters' partial sums on the way, then
 * grad_x = rstd * (g - mean(g) - xhat * mean(g * xhat)). */
static void AG_NAME(layer_backward)(const T *grad, const T *x, T mean, T rstd, const T *weight, int64_t n,
                                    T *grad_x, T *weight_sums, T *bias_sums) {
    if (weight_sums != NULL)
        for (int64_t i = 0; i < n; i++) weight_sums[i] += grad[i] * ((x[i] - mean) * rstd);
    if (bias_sums != NULL)
        for (int64_t i = 0; i < n; i++) bias_sums[i] += grad[i];
    if (grad_x == NULL) return;
    T grad_lanes[AG_NORM_LANES] = {0}, product_lanes[AG_NORM_LANES] = {0};
    int64_t i = 0;
    if (weight != NULL) {
        for (; i + AG_NORM_LANES <= n; i += AG_NORM_LANES)
            for (int j = 0; j < AG_NORM_LANES; j++) {
                const T g = grad[i + j] * weight[i + j];
                grad_lanes[j] += g;
                product_lanes[j] += g * ((x[i + j] - mean) * rstd);
            }
        for (int j = 0; i + j < n; j++) {
            const T g = grad[i + j] * weight[i + j];
            grad_lanes[j] += g;
            product_lanes[j] += g * ((x[i + j] - mean) * rstd);
        }
    } else {
        for (; i + AG_NORM_LANES <= n; i += AG_NORM_LANES)
            for (int j = 0; j < AG_NORM_LANES; j++) {
                const T g = grad[i + j];
                grad_lanes[j] += g;
                product_lanes[j] += g * ((x[i + j] - mean) * rstd);
            }
        for (int j = 0; i + j < n; j++) {
            const T g = grad[i + j];
            grad_lanes[j] += g;
            product_lanes[j] += g * ((x[i + j] - mean) * rstd);
        }
    }
    const T mean_grad = AG_NAME(fold_lanes)(grad_lanes) / (T)n;
    const T mean_product = AG_NAME(fold_lanes)(product_lanes) / (T)n;
    if (weight != NULL) {
        for (int64_t k = 0; k < n; k++)
            grad_x[k] = rstd * (grad[k] * weight[k] - mean_grad - ((x[k] - mean) * rstd) * mean_product);
    } else {
        for (int64_t k = 0; k < n; k++)
            grad_x[k] = rstd * (grad[k] - mean_grad - ((x[k] - mean) * rstd) * mean_product);
    }
}

/* ---- batch norm: a block of rows, one channel vector per row ---------------------------- */
static void AG_NAME(channel_sums)(const T *x, int64_t rows, int64_t channels, T *sums) {
    for (int64_t r = 0; r < rows; r++) {
        const T *row = x + r * channels;
        for (int64_t c = 0; c < channels; c++) sums[c] += row[c];
    }
}

static void AG_NAME(centered_squares)(const T *x, const T *mean, int64_t rows, int64_t channels, T *sums) {
    for (int64_t r = 0; r < rows; r++) {
        const T *row = x + r * channels;
        for (int64_t c = 0; c < channels; c++) {
            const T d = row[c] - mean[c];
            sums[c] += d * d;
        }
    }
}

static void AG_NAME(normalize)(const T *x, const T *mean, const T *scale, const T *bias,
                               int64_t rows, int64_t channels, T *y) {
    for (int64_t r = 0; r < rows; r++) {
        const T *row = x + r * channels;
        T *out = y + r * channels;
        if (bias != NULL) {
            for (int64_t c = 0; c < channels; c++) out[c] = (row[c] - mean[c]) * scale[c] + bias[c];
        } else {
            for (int64_t c = 0; c < channels; c++) out[c] = (row[c] - mean[c]) * scale[c];
        }
    }
}

static void AG_NAME(backward_sums)(const T *grad, const T *x, const T *mean, const T *rstd,
                                   int64_t rows, int64_t channels, T *sum_grad, T *sum_product) {
    for (int64_t r = 0; r < rows; r++) {
        const T *g = grad + r * channels, *row = x + r * channels;
        for (int64_t c = 0; c < channels; c++) {
            sum_grad[c] += g[c];
            sum_product[c] += g[c] * ((row[c] - mean[c]) * rstd[c]);
        }
    }
}

static void AG_NAME(backward_input)(const T *grad, const T *x, const T *mean, const T *rstd, const T *scale,
                                    const T *mean_grad, const T *mean_product, int64_t rows, int64_t channels,
                                    T *grad_x) {
    for (int64_t r = 0; r < rows; r++) {
        const T *g = grad + r * channels, *row = x + r * channels;
        T *out = grad_x + r * channels;
        for (int64_t c = 0; c < channels; c++)
            out[c] = scale[c] * (g[c] - mean_grad[c] - ((row[c] - mean[c]) * rstd[c]) * mean_product[c]);
    }
}

void AG_NAME(ag_norm_rows)(AG_ROWS_TABLE *rows) {
    rows->layer_forward = AG_NAME(layer_forward);
    rows->layer_backward = AG_NAME(layer_backward);
    rows->channel_sums = AG_NAME(channel_sums);
    rows->centered_squares = AG_NAME(centered_squares);
    rows->normalize = AG_NAME(normalize);
    rows->backward_sums = AG_NAME(backward_sums);
    rows->backward_input = AG_NAME(backward_input);
}
