/* norm_rows.h: the normalization loops (see norm_internal.h for each one's contract),
 * written once for element type T at one SIMD level and included by norm_rows_level.h
 * (T, SQRT, AG_NAME, AG_ROWS_TABLE defined). No include guard: included once per type
 * and level. Plain C: the lane loops (layer norm) and the channel loops (batch norm)
 * are what the compiler vectorizes. */
#include <math.h>
#include <stddef.h>
#include <string.h>

/* Lane reductions: lane j sums elements j, j + LANES, j + 2 LANES, ... (LANES = 64 bytes
 * of T: 16 floats, 8 doubles), then the lanes fold in a fixed tree, lane j + w into lane
 * j. With GCC / clang the lanes are vectors of the vector extension; other compilers get
 * the same additions in the same order from an array. */
#define AG_LANES_OF_T (64 / (int)sizeof(T))

static T AG_NAME(fold_lanes)(T *lanes) {
    for (int width = AG_LANES_OF_T / 2; width >= 1; width /= 2)
        for (int j = 0; j < width; j++) lanes[j] += lanes[j + width];
    return lanes[0];
}

#if defined(__GNUC__)
/* Four 16-byte vectors hold the 64 bytes of lanes: 16 bytes is a native register at
 * every level (SSE2 included), so the accumulators stay in registers; a 64-byte vector
 * of the extension would go through the stack below AVX-512. Vector q holds lanes
 * 4q .. 4q + 3 (floats; 2q, 2q + 1 for doubles). */
typedef T AG_NAME(quarter_vector) __attribute__((vector_size(16)));
#define AG_VECTOR AG_NAME(quarter_vector)
#define AG_QUARTER (AG_LANES_OF_T / 4)
/* an unaligned load of 16 bytes into a vector variable (memcpy: no alignment assumed) */
#define AG_LOAD(vector, pointer) memcpy(&(vector), (pointer), sizeof(vector))

/* fold_lanes of the lanes a0 | a1 | a2 | a3, mostly in vectors: its first two steps
 * (lane j + LANES/2 into j, then j + LANES/4 into j) are (a0 + a2) + (a1 + a3). */
static T AG_NAME(fold_vectors)(AG_VECTOR a0, AG_VECTOR a1, AG_VECTOR a2, AG_VECTOR a3) {
    const AG_VECTOR folded = (a0 + a2) + (a1 + a3);
    T lanes[AG_QUARTER];
    memcpy(lanes, &folded, sizeof lanes);
    for (int width = AG_QUARTER / 2; width >= 1; width /= 2)
        for (int j = 0; j < width; j++) lanes[j] += lanes[j + width];
    return lanes[0];
}

/* the tail's values (fewer than LANES) go into lanes 0, 1, ...: through memory, once */
#define AG_ADD_TAIL(a, tail_values, count)                                               \
    do {                                                                                 \
        T lanes_[AG_LANES_OF_T];                                                         \
        for (int q_ = 0; q_ < 4; q_++) memcpy(lanes_ + q_ * AG_QUARTER, &(a)[q_], sizeof((a)[q_])); \
        for (int j_ = 0; j_ < (count); j_++) lanes_[j_] += (tail_values)[j_];            \
        for (int q_ = 0; q_ < 4; q_++) memcpy(&(a)[q_], lanes_ + q_ * AG_QUARTER, sizeof((a)[q_])); \
    } while (0)

/* sum of x (centred: of (x - mean)^2) */
static T AG_NAME(row_sum)(const T *x, int64_t n, int centred, T mean) {
    AG_VECTOR acc[4] = {{0}}, v[4];
    int64_t i = 0;
    for (; i + AG_LANES_OF_T <= n; i += AG_LANES_OF_T) {
        for (int q = 0; q < 4; q++) {
            AG_LOAD(v[q], x + i + q * AG_QUARTER);
            if (centred) {
                v[q] -= mean;
                v[q] *= v[q];
            }
            acc[q] += v[q];
        }
    }
    if (i < n) {
        T tail[AG_LANES_OF_T];
        for (int j = 0; i + j < n; j++) {
            const T d = centred ? x[i + j] - mean : x[i + j];
            tail[j] = centred ? d * d : d;
        }
        AG_ADD_TAIL(acc, tail, (int)(n - i));
    }
    return AG_NAME(fold_vectors)(acc[0], acc[1], acc[2], acc[3]);
}

/* sum of g and of g * xhat, g = grad * weight (grad when weight is NULL) */
static void AG_NAME(row_gradient_sums)(const T *grad, const T *x, const T *weight, T mean, T rstd, int64_t n,
                                       T *sum_grad, T *sum_product) {
    AG_VECTOR g[4], v[4], w[4], grad_acc[4] = {{0}}, product_acc[4] = {{0}};
    int64_t i = 0;
    for (; i + AG_LANES_OF_T <= n; i += AG_LANES_OF_T) {
        for (int q = 0; q < 4; q++) {
            AG_LOAD(g[q], grad + i + q * AG_QUARTER);
            AG_LOAD(v[q], x + i + q * AG_QUARTER);
            if (weight != NULL) {
                AG_LOAD(w[q], weight + i + q * AG_QUARTER);
                g[q] *= w[q];
            }
            grad_acc[q] += g[q];
            product_acc[q] += g[q] * ((v[q] - mean) * rstd);
        }
    }
    if (i < n) {
        T grad_tail[AG_LANES_OF_T], product_tail[AG_LANES_OF_T];
        for (int j = 0; i + j < n; j++) {
            grad_tail[j] = weight != NULL ? grad[i + j] * weight[i + j] : grad[i + j];
            product_tail[j] = grad_tail[j] * ((x[i + j] - mean) * rstd);
        }
        AG_ADD_TAIL(grad_acc, grad_tail, (int)(n - i));
        AG_ADD_TAIL(product_acc, product_tail, (int)(n - i));
    }
    *sum_grad = AG_NAME(fold_vectors)(grad_acc[0], grad_acc[1], grad_acc[2], grad_acc[3]);
    *sum_product = AG_NAME(fold_vectors)(product_acc[0], product_acc[1], product_acc[2], product_acc[3]);
}
#undef AG_VECTOR
#undef AG_QUARTER
#undef AG_LOAD
#undef AG_ADD_TAIL

#else
static T AG_NAME(row_sum)(const T *x, int64_t n, int centred, T mean) {
    T lanes[AG_LANES_OF_T] = {0};
    for (int64_t i = 0; i < n; i++) {
        const T d = centred ? x[i] - mean : x[i];
        lanes[i % AG_LANES_OF_T] += centred ? d * d : d;
    }
    return AG_NAME(fold_lanes)(lanes);
}

static void AG_NAME(row_gradient_sums)(const T *grad, const T *x, const T *weight, T mean, T rstd, int64_t n,
                                       T *sum_grad, T *sum_product) {
    T grad_lanes[AG_LANES_OF_T] = {0}, product_lanes[AG_LANES_OF_T] = {0};
    for (int64_t i = 0; i < n; i++) {
        const T g = weight != NULL ? grad[i] * weight[i] : grad[i];
        grad_lanes[i % AG_LANES_OF_T] += g;
        product_lanes[i % AG_LANES_OF_T] += g * ((x[i] - mean) * rstd);
    }
    *sum_grad = AG_NAME(fold_lanes)(grad_lanes);
    *sum_product = AG_NAME(fold_lanes)(product_lanes);
}
#endif

/* mean, then the biased variance from the centred values (two passes over a row that
 * sits in L1: no cancellation of a one-pass sum of squares), then y. */
static void AG_NAME(layer_forward)(const T *restrict x, const T *restrict weight, const T *restrict bias, T eps,
                                   int64_t n, T *restrict y, T *mean_out, T *rstd_out) {
    const T mean = AG_NAME(row_sum)(x, n, 0, (T)0) / (T)n;
    const T variance = AG_NAME(row_sum)(x, n, 1, mean) / (T)n;
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
static void AG_NAME(layer_backward)(const T *restrict grad, const T *restrict x, T mean, T rstd,
                                    const T *restrict weight, int64_t n, T *restrict grad_x,
                                    T *restrict weight_sums, T *restrict bias_sums) {
    if (weight_sums != NULL)
        for (int64_t i = 0; i < n; i++) weight_sums[i] += grad[i] * ((x[i] - mean) * rstd);
    if (bias_sums != NULL)
        for (int64_t i = 0; i < n; i++) bias_sums[i] += grad[i];
    if (grad_x == NULL) return;
    T sum_grad, sum_product;
    AG_NAME(row_gradient_sums)(grad, x, weight, mean, rstd, n, &sum_grad, &sum_product);
    const T mean_grad = sum_grad / (T)n;
    const T mean_product = sum_product / (T)n;
    if (weight != NULL) {
        for (int64_t k = 0; k < n; k++)
            grad_x[k] = rstd * (grad[k] * weight[k] - mean_grad - ((x[k] - mean) * rstd) * mean_product);
    } else {
        for (int64_t k = 0; k < n; k++)
            grad_x[k] = rstd * (grad[k] - mean_grad - ((x[k] - mean) * rstd) * mean_product);
    }
}

/* ---- batch norm: a block of rows, one channel vector per row ---------------------------- */
static void AG_NAME(channel_sums)(const T *restrict x, int64_t rows, int64_t channels, T *restrict sums) {
    for (int64_t r = 0; r < rows; r++) {
        const T *row = x + r * channels;
        for (int64_t c = 0; c < channels; c++) sums[c] += row[c];
    }
}

static void AG_NAME(centered_squares)(const T *restrict x, const T *mean, int64_t rows, int64_t channels,
                                      T *restrict sums) {
    for (int64_t r = 0; r < rows; r++) {
        const T *row = x + r * channels;
        for (int64_t c = 0; c < channels; c++) {
            const T d = row[c] - mean[c];
            sums[c] += d * d;
        }
    }
}

static void AG_NAME(normalize)(const T *restrict x, const T *mean, const T *scale, const T *bias,
                               int64_t rows, int64_t channels, T *restrict y) {
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

static void AG_NAME(backward_sums)(const T *restrict grad, const T *restrict x, const T *mean, const T *rstd,
                                   int64_t rows, int64_t channels, T *restrict sum_grad, T *restrict sum_product) {
    for (int64_t r = 0; r < rows; r++) {
        const T *g = grad + r * channels, *row = x + r * channels;
        for (int64_t c = 0; c < channels; c++) {
            sum_grad[c] += g[c];
            sum_product[c] += g[c] * ((row[c] - mean[c]) * rstd[c]);
        }
    }
}

static void AG_NAME(backward_input)(const T *restrict grad, const T *restrict x, const T *mean, const T *rstd,
                                    const T *scale,
                                    const T *mean_grad, const T *mean_product, int64_t rows, int64_t channels,
                                    T *restrict grad_x) {
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
