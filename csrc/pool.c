/* pool.c: 2-D max and average pooling over NHWC images.
 *
 * NHWC keeps the channels of one pixel contiguous, so every loop below walks a window
 * pixel by pixel and does a whole channel vector at each step (the compiler vectorises
 * the channel loops).
 *
 * Padding is virtual: cells outside the image are skipped, never read. For max pooling
 * that means padded cells never win (they act as -inf, but even a real -inf beats them);
 * the bridge guarantees every window holds at least one real cell.
 *
 * Threads split images (and, for the forward passes, output rows); the backward passes
 * scatter into the input gradient and only split images, since windows of one image may
 * overlap while different images never share input cells.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "kernels.h"
#ifdef _OPENMP
#include <omp.h>
#define POOL_OMP(directive) _Pragma(directive)
#else
#define POOL_OMP(directive)  /* without OpenMP the loops simply run on one thread */
#endif

/* Channels per block of the max-pool forward's local accumulators. */
#define POOL_BLOCK 64

/* Below this many elements of work a parallel region costs more than it saves. */
static int pool_threads(int64_t work) {
    return work >= 32768 ? ag_get_num_threads() : 1;
}

#define DEFINE_POOL(SUFFIX, T, IDX)                                                        \
                                                                                        \
int ag_max_pool2d_forward_##SUFFIX(const ag_pool2d_geometry *g, const T *x, T *y,       \
                                   int64_t *argmax) {                                   \
    const int64_t c_n = g->channels, h = g->height, w = g->width, kw_n = g->kernel_w;   \
    const int64_t rows = g->batch * g->out_height;                                      \
    const int64_t cells = g->kernel_h * kw_n;                                           \
    int64_t t, cell;                                                                    \
    /* offset[kh * kw_n + kw]: where window cell (kh, kw) sits relative to the window's \
     * origin, so the argmax is stored as an origin plus a cell number. */              \
    int64_t *offset = (int64_t *)malloc((size_t)cells * sizeof(int64_t));               \
    if (offset == NULL) return -1;                                                      \
    for (cell = 0; cell < cells; cell++)                                                \
        offset[cell] = ((cell / kw_n) * w + cell % kw_n) * c_n;                         \
    POOL_OMP("omp parallel for schedule(static) num_threads(pool_threads(rows * g->out_width * c_n * cells))") \
    for (t = 0; t < rows; t++) {                                                        \
        const int64_t n = t / g->out_height, oh = t % g->out_height;                    \
        const int64_t ih0 = oh * g->stride_h - g->pad_top;                              \
        const int64_t kh_lo = ih0 < 0 ? -ih0 : 0;                                       \
        const int64_t kh_hi = h - ih0 < g->kernel_h ? h - ih0 : g->kernel_h;            \
        int64_t ow;                                                                     \
        for (ow = 0; ow < g->out_width; ow++) {                                         \
            const int64_t iw0 = ow * g->stride_w - g->pad_left;                         \
            const int64_t kw_lo = iw0 < 0 ? -iw0 : 0;                                   \
            const int64_t kw_hi = w - iw0 < kw_n ? w - iw0 : kw_n;                      \
            /* may be negative with padding; origin + offset of a real cell never is */ \
            const int64_t origin = ((n * h + ih0) * w + iw0) * c_n;                     \
            const int64_t out = ((n * g->out_height + oh) * g->out_width + ow) * c_n;   \
            int64_t c0;                                                                 \
            /* A block of channels at a time in local arrays: they cannot alias x, and the \
             * cell number has the width of T, so the compare-select below vectorises into \
             * branch-free blends (a branch per element mispredicts half the time on real \
             * data). Row-major window order with a strict '>' keeps the first maximum; a \
             * NaN replaces a number (NaN propagates, as in PyTorch) but not an earlier NaN. */ \
            for (c0 = 0; c0 < c_n; c0 += POOL_BLOCK) {                                  \
                const int64_t lanes = c_n - c0 < POOL_BLOCK ? c_n - c0 : POOL_BLOCK;    \
                const int64_t first = kh_lo * kw_n + kw_lo;                             \
                const T *start = x + origin + offset[first] + c0;                       \
                T best[POOL_BLOCK];                                                     \
                IDX where[POOL_BLOCK];                                                  \
                int64_t kh, kw, c;                                                      \
                for (c = 0; c < lanes; c++) { best[c] = start[c]; where[c] = (IDX)first; } \
                for (kh = kh_lo; kh < kh_hi; kh++) {                                    \
                    for (kw = kh == kh_lo ? kw_lo + 1 : kw_lo; kw < kw_hi; kw++) {      \
                        const IDX pos = (IDX)(kh * kw_n + kw);                          \
                        const T *src = x + origin + offset[pos] + c0;                   \
                        for (c = 0; c < lanes; c++) {                                   \
                            const T v = src[c], b = best[c];                            \
                            const int take = (v > b) | ((v != v) & (b == b));           \
                            best[c] = take ? v : b;                                     \
                            where[c] = take ? pos : where[c];                           \
                        }                                                               \
                    }                                                                   \
                }                                                                       \
                for (c = 0; c < lanes; c++) {                                           \
                    y[out + c0 + c] = best[c];                                          \
                    argmax[out + c0 + c] = origin + offset[where[c]] + c0 + c;          \
                }                                                                       \
            }                                                                           \
        }                                                                               \
    }                                                                                   \
    free(offset);                                                                       \
    return 0;                                                                           \
}                                                                                       \
                                                                                        \
int ag_max_pool2d_backward_##SUFFIX(const ag_pool2d_geometry *g, const T *grad_y,      \
                                    const int64_t *argmax, T *grad_x) {                 \
    const int64_t image = g->height * g->width * g->channels;                           \
    const int64_t per_image = g->out_height * g->out_width * g->channels;               \
    int64_t n, bad = 0;                                                                 \
    POOL_OMP("omp parallel for schedule(static) reduction(+:bad) num_threads(pool_threads(g->batch * (image + per_image)))") \
    for (n = 0; n < g->batch; n++) {                                                    \
        T *dst = grad_x + n * image;                                                    \
        const T *src = grad_y + n * per_image;                                          \
        const int64_t *idx = argmax + n * per_image;                                    \
        const int64_t base = n * image;                                                 \
        int64_t i;                                                                      \
        memset(dst, 0, (size_t)image * sizeof(T));                                      \
        for (i = 0; i < per_image; i++) {                                               \
            /* argmax may come from the user: one unsigned compare keeps every write    \
             * inside this image, so threads never race and never leave the buffer. */  \
            const uint64_t local = (uint64_t)(idx[i] - base);                           \
            if (local >= (uint64_t)image) { bad++; continue; }                          \
            dst[local] += src[i];                                                       \
        }                                                                               \
    }                                                                                   \
    return bad ? -1 : 0;                                                                \
}                                                                                       \
                                                                                        \
void ag_avg_pool2d_forward_##SUFFIX(const ag_pool2d_geometry *g, const T *x, T *y,      \
                                    int count_include_pad) {                            \
    const int64_t c_n = g->channels, h = g->height, w = g->width;                       \
    const int64_t rows = g->batch * g->out_height;                                      \
    int64_t t;                                                                          \
    POOL_OMP("omp parallel for schedule(static) num_threads(pool_threads(rows * g->out_width * c_n * g->kernel_h * g->kernel_w))") \
    for (t = 0; t < rows; t++) {                                                        \
        const int64_t n = t / g->out_height, oh = t % g->out_height;                    \
        const int64_t ih0 = oh * g->stride_h - g->pad_top;                              \
        const int64_t kh_lo = ih0 < 0 ? -ih0 : 0;                                       \
        const int64_t kh_hi = h - ih0 < g->kernel_h ? h - ih0 : g->kernel_h;            \
        int64_t ow;                                                                     \
        for (ow = 0; ow < g->out_width; ow++) {                                         \
            const int64_t iw0 = ow * g->stride_w - g->pad_left;                         \
            const int64_t kw_lo = iw0 < 0 ? -iw0 : 0;                                   \
            const int64_t kw_hi = w - iw0 < g->kernel_w ? w - iw0 : g->kernel_w;        \
            T *sum = y + ((n * g->out_height + oh) * g->out_width + ow) * c_n;          \
            const int64_t cells = count_include_pad ? g->kernel_h * g->kernel_w         \
                                                    : (kh_hi - kh_lo) * (kw_hi - kw_lo);\
            const T scale = (T)1 / (T)cells;                                            \
            int64_t kh, kw, c;                                                          \
            for (c = 0; c < c_n; c++) sum[c] = 0;                                       \
            for (kh = kh_lo; kh < kh_hi; kh++)                                          \
                for (kw = kw_lo; kw < kw_hi; kw++) {                                    \
                    const T *src = x + ((n * h + ih0 + kh) * w + iw0 + kw) * c_n;       \
                    for (c = 0; c < c_n; c++) sum[c] += src[c];                         \
                }                                                                       \
            for (c = 0; c < c_n; c++) sum[c] *= scale;                                  \
        }                                                                               \
    }                                                                                   \
}                                                                                       \
                                                                                        \
void ag_avg_pool2d_backward_##SUFFIX(const ag_pool2d_geometry *g, const T *grad_y,      \
                                     T *grad_x, int count_include_pad) {                \
    const int64_t c_n = g->channels, h = g->height, w = g->width;                       \
    const int64_t image = h * w * c_n;                                                  \
    int64_t n;                                                                          \
    POOL_OMP("omp parallel for schedule(static) num_threads(pool_threads(g->batch * image))") \
    for (n = 0; n < g->batch; n++) {                                                    \
        T *dst_image = grad_x + n * image;                                              \
        int64_t oh;                                                                     \
        memset(dst_image, 0, (size_t)image * sizeof(T));                                \
        for (oh = 0; oh < g->out_height; oh++) {                                        \
            const int64_t ih0 = oh * g->stride_h - g->pad_top;                          \
            const int64_t kh_lo = ih0 < 0 ? -ih0 : 0;                                   \
            const int64_t kh_hi = h - ih0 < g->kernel_h ? h - ih0 : g->kernel_h;        \
            int64_t ow;                                                                 \
            for (ow = 0; ow < g->out_width; ow++) {                                     \
                const int64_t iw0 = ow * g->stride_w - g->pad_left;                     \
                const int64_t kw_lo = iw0 < 0 ? -iw0 : 0;                               \
                const int64_t kw_hi = w - iw0 < g->kernel_w ? w - iw0 : g->kernel_w;    \
                const T *src = grad_y + ((n * g->out_height + oh) * g->out_width + ow) * c_n; \
                const int64_t cells = count_include_pad ? g->kernel_h * g->kernel_w     \
                                                        : (kh_hi - kh_lo) * (kw_hi - kw_lo); \
                const T scale = (T)1 / (T)cells;                                        \
                int64_t kh, kw, c;                                                      \
                for (kh = kh_lo; kh < kh_hi; kh++)                                      \
                    for (kw = kw_lo; kw < kw_hi; kw++) {                                \
                        T *dst = dst_image + ((ih0 + kh) * w + iw0 + kw) * c_n;         \
                        for (c = 0; c < c_n; c++) dst[c] += src[c] * scale;             \
                    }                                                                   \
            }                                                                           \
        }                                                                               \
    }                                                                                   \
}

DEFINE_POOL(f32, float, int32_t)
DEFINE_POOL(f64, double, int64_t)
