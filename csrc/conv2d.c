/* conv2d.c: 2-D convolution (cross-correlation, as in every deep-learning library) over
 * NHWC images with [kh, kw, c_in, c_out] weights.
 *
 * Method: im2col per tile of output pixels, then the GEMM (ag_sgemm / ag_dgemm).
 *   forward         y_tile [rows, c_out]  = col_tile [rows, K] @ W [K, c_out]
 *   backward weight gW     [K, c_out]    += col_tile^T @ gy_tile
 *   backward input  gcol   [rows, K]      = gy_tile @ W^T, then col2im into gx
 * where K = kh * kw * c_in and a col row is the receptive field of one output pixel in
 * (kh, kw, c_in) order -- exactly the memory order of W, so W needs no repacking.
 *
 * Why tiles: the full im2col matrix of a batch can be huge (K times the output size),
 * so we only ever materialise about TILE_ELEMENTS of it; the tile is still tall enough
 * for the GEMM to run at full speed.
 *
 * Threads: im2col and col2im run in OpenMP loops; the GEMM is called outside any
 * parallel region because it threads itself (nesting would oversubscribe the cores).
 *
 * col2im is written as a gather (each input pixel sums the col entries that read it)
 * rather than a scatter, so any split of input pixels between threads is race-free.
 *
 * 1x1 convolutions with stride 1 and no padding skip im2col: x already is the col matrix.
 */
#include <stdlib.h>
#include <string.h>
#include "kernels.h"
#ifdef _OPENMP
#include <omp.h>
#endif

/* Elements of the col buffer per tile (4 MiB of float32): measured on the seed CNN's
 * layers, larger tiles gain nothing and smaller ones starve the GEMM. */
#define TILE_ELEMENTS ((int64_t)1 << 20)

static int64_t tile_rows(const ag_conv2d_geometry *g) {
    int64_t k = g->kernel_h * g->kernel_w * g->in_channels;
    int64_t rows = TILE_ELEMENTS / (k > 0 ? k : 1);
    if (rows < 64) rows = 64;    /* keep the GEMM tall even for very wide receptive fields */
    return rows;
}

static int is_pointwise(const ag_conv2d_geometry *g) {
    return g->kernel_h == 1 && g->kernel_w == 1 && g->stride_h == 1 && g->stride_w == 1 &&
           g->pad_top == 0 && g->pad_left == 0 &&
           g->out_height == g->height && g->out_width == g->width;
}

/* Worth forking threads for this many elements of copying? Below it the fork costs more. */
static int threads_for(int64_t work) {
    return work >= 32768 ? ag_get_num_threads() : 1;
}

#define DEFINE_CONV2D(SUFFIX, T, GEMM)                                                   \
                                                                                        \
/* col[r, :] = receptive field of output pixel p0 + r, zeros where it hangs over the    \
 * padding. Each (pixel, kh) pair is one contiguous run of kw * c_in elements in both x  \
 * and col, so it is copied as a run and only the border columns are clipped. */        \
static void im2col_##SUFFIX(const ag_conv2d_geometry *g, const T *x, T *col,            \
                            int64_t p0, int64_t rows) {                                 \
    const int64_t kh_n = g->kernel_h, kw_n = g->kernel_w, cin = g->in_channels;         \
    const int64_t k = kh_n * kw_n * cin, run = kw_n * cin;                              \
    const int64_t plane = g->out_height * g->out_width;                                 \
    int64_t r;                                                                          \
    (void)plane;                                                                        \
    _Pragma("omp parallel for schedule(static) num_threads(threads_for(rows * k))")     \
    for (r = 0; r < rows; r++) {                                                        \
        const int64_t p = p0 + r;                                                       \
        const int64_t n = p / plane, rest = p % plane;                                  \
        const int64_t oh = rest / g->out_width, ow = rest % g->out_width;               \
        const int64_t ih0 = oh * g->stride_h - g->pad_top;                              \
        const int64_t iw0 = ow * g->stride_w - g->pad_left;                             \
        /* kw range whose column lies inside the image: [kw_lo, kw_hi) */               \
        int64_t kw_lo = iw0 < 0 ? -iw0 : 0;                                             \
        int64_t kw_hi = g->width - iw0 < kw_n ? g->width - iw0 : kw_n;                  \
        T *dst_row = col + r * k;                                                       \
        int64_t kh;                                                                     \
        if (kw_lo > kw_n) kw_lo = kw_n;                                                 \
        if (kw_hi < kw_lo) kw_hi = kw_lo;                                               \
        for (kh = 0; kh < kh_n; kh++) {                                                 \
            const int64_t ih = ih0 + kh;                                                \
            T *dst = dst_row + kh * run;                                                \
            if (ih < 0 || ih >= g->height || kw_hi == kw_lo) {                          \
                memset(dst, 0, (size_t)run * sizeof(T));                                \
                continue;                                                               \
            }                                                                           \
            if (kw_lo > 0) memset(dst, 0, (size_t)(kw_lo * cin) * sizeof(T));           \
            memcpy(dst + kw_lo * cin,                                                   \
                   x + ((n * g->height + ih) * g->width + iw0 + kw_lo) * cin,           \
                   (size_t)((kw_hi - kw_lo) * cin) * sizeof(T));                        \
            if (kw_hi < kw_n)                                                           \
                memset(dst + kw_hi * cin, 0, (size_t)((kw_n - kw_hi) * cin) * sizeof(T));\
        }                                                                               \
    }                                                                                   \
}                                                                                       \
                                                                                        \
/* gx[n, ih, iw, :] += sum of gcol entries that im2col copied from (n, ih, iw), over     \
 * the output pixels p0 .. p0 + rows - 1 only (tiles are processed one after another,   \
 * so accumulation across tiles is race-free). */                                        \
static void col2im_##SUFFIX(const ag_conv2d_geometry *g, const T *gcol, T *gx,          \
                            int64_t p0, int64_t rows) {                                 \
    const int64_t kh_n = g->kernel_h, kw_n = g->kernel_w, cin = g->in_channels;         \
    const int64_t sh = g->stride_h, sw = g->stride_w;                                   \
    const int64_t k = kh_n * kw_n * cin;                                                \
    const int64_t plane = g->out_height * g->out_width;                                 \
    const int64_t p1 = p0 + rows;                                                       \
    const int64_t n_first = p0 / plane, n_last = (p1 - 1) / plane;                      \
    const int64_t count = (n_last - n_first + 1) * g->height;                           \
    int64_t t;                                                                          \
    _Pragma("omp parallel for schedule(static) num_threads(threads_for(rows * k))")     \
    for (t = 0; t < count; t++) {                                                       \
        const int64_t n = n_first + t / g->height, ih = t % g->height;                  \
        /* output rows oh whose window covers ih: oh*sh - pad_top <= ih < that + kh_n */ \
        const int64_t num = ih + g->pad_top;                                            \
        int64_t oh_lo = num - kh_n + 1 <= 0 ? 0 : (num - kh_n + 1 + sh - 1) / sh;        \
        int64_t oh_hi = num / sh; /* inclusive; num >= 0 always */                      \
        int64_t iw, oh;                                                                 \
        if (oh_hi >= g->out_height) oh_hi = g->out_height - 1;                          \
        if (oh_lo > oh_hi) continue;                                                    \
        /* skip rows that belong to no output pixel of this tile */                     \
        if ((n * plane + (oh_hi + 1) * g->out_width) <= p0) continue;                    \
        if ((n * plane + oh_lo * g->out_width) >= p1) continue;                         \
        for (iw = 0; iw < g->width; iw++) {                                             \
            const int64_t numw = iw + g->pad_left;                                      \
            int64_t ow_lo = numw - kw_n + 1 <= 0 ? 0 : (numw - kw_n + 1 + sw - 1) / sw;  \
            int64_t ow_hi = numw / sw;                                                  \
            T *dst = gx + ((n * g->height + ih) * g->width + iw) * cin;                 \
            if (ow_hi >= g->out_width) ow_hi = g->out_width - 1;                        \
            if (ow_lo > ow_hi) continue;                                                \
            for (oh = oh_lo; oh <= oh_hi; oh++) {                                       \
                const int64_t kh = num - oh * sh;                                       \
                int64_t ow;                                                             \
                for (ow = ow_lo; ow <= ow_hi; ow++) {                                   \
                    const int64_t p = n * plane + oh * g->out_width + ow;               \
                    const int64_t kw = numw - ow * sw;                                  \
                    const T *src;                                                       \
                    int64_t c;                                                          \
                    if (p < p0 || p >= p1) continue;                                    \
                    src = gcol + (p - p0) * k + (kh * kw_n + kw) * cin;                 \
                    for (c = 0; c < cin; c++) dst[c] += src[c];                         \
                }                                                                       \
            }                                                                           \
        }                                                                               \
    }                                                                                   \
}                                                                                       \
                                                                                        \
int ag_conv2d_forward_##SUFFIX(const ag_conv2d_geometry *g, const T *x, const T *w,     \
                               T *y) {                                                  \
    const int64_t k = g->kernel_h * g->kernel_w * g->in_channels;                       \
    const int64_t cout = g->out_channels;                                               \
    const int64_t total = g->batch * g->out_height * g->out_width;                      \
    int64_t step = tile_rows(g), p0;                                                    \
    T *col;                                                                             \
    if (total == 0 || cout == 0) return 0;                                              \
    if (is_pointwise(g)) {                                                              \
        GEMM(0, 0, total, cout, k, (T)1, x, k, w, cout, (T)0, y, cout);                 \
        return 0;                                                                       \
    }                                                                                   \
    if (step > total) step = total;                                                     \
    col = (T *)malloc((size_t)(step * k) * sizeof(T));                                  \
    if (col == NULL) return -1;                                                         \
    for (p0 = 0; p0 < total; p0 += step) {                                              \
        const int64_t rows = total - p0 < step ? total - p0 : step;                     \
        im2col_##SUFFIX(g, x, col, p0, rows);                                           \
        GEMM(0, 0, rows, cout, k, (T)1, col, k, w, cout, (T)0, y + p0 * cout, cout);    \
    }                                                                                   \
    free(col);                                                                          \
    return 0;                                                                           \
}                                                                                       \
                                                                                        \
int ag_conv2d_backward_input_##SUFFIX(const ag_conv2d_geometry *g, const T *grad_y,     \
                                      const T *w, T *grad_x) {                          \
    const int64_t k = g->kernel_h * g->kernel_w * g->in_channels;                       \
    const int64_t cout = g->out_channels;                                               \
    const int64_t total = g->batch * g->out_height * g->out_width;                      \
    const int64_t x_size = g->batch * g->height * g->width * g->in_channels;            \
    int64_t step = tile_rows(g), p0;                                                    \
    T *gcol;                                                                            \
    if (is_pointwise(g) && total > 0) {                                                 \
        if (cout == 0) { memset(grad_x, 0, (size_t)x_size * sizeof(T)); return 0; }     \
        GEMM(0, 1, total, k, cout, (T)1, grad_y, cout, w, cout, (T)0, grad_x, k);       \
        return 0;                                                                       \
    }                                                                                   \
    memset(grad_x, 0, (size_t)x_size * sizeof(T));                                      \
    if (total == 0 || cout == 0) return 0;                                              \
    if (step > total) step = total;                                                     \
    gcol = (T *)malloc((size_t)(step * k) * sizeof(T));                                 \
    if (gcol == NULL) return -1;                                                        \
    for (p0 = 0; p0 < total; p0 += step) {                                              \
        const int64_t rows = total - p0 < step ? total - p0 : step;                     \
        GEMM(0, 1, rows, k, cout, (T)1, grad_y + p0 * cout, cout, w, cout, (T)0, gcol, k);\
        col2im_##SUFFIX(g, gcol, grad_x, p0, rows);                                     \
    }                                                                                   \
    free(gcol);                                                                         \
    return 0;                                                                           \
}                                                                                       \
                                                                                        \
int ag_conv2d_backward_weight_##SUFFIX(const ag_conv2d_geometry *g, const T *x,         \
                                       const T *grad_y, T *grad_w) {                    \
    const int64_t k = g->kernel_h * g->kernel_w * g->in_channels;                       \
    const int64_t cout = g->out_channels;                                               \
    const int64_t total = g->batch * g->out_height * g->out_width;                      \
    int64_t step = tile_rows(g), p0;                                                    \
    T *col;                                                                             \
    if (k == 0 || cout == 0) return 0;                                                  \
    if (total == 0) { memset(grad_w, 0, (size_t)(k * cout) * sizeof(T)); return 0; }    \
    if (is_pointwise(g)) {                                                              \
        GEMM(1, 0, k, cout, total, (T)1, x, k, grad_y, cout, (T)0, grad_w, cout);       \
        return 0;                                                                       \
    }                                                                                   \
    if (step > total) step = total;                                                     \
    col = (T *)malloc((size_t)(step * k) * sizeof(T));                                  \
    if (col == NULL) return -1;                                                         \
    for (p0 = 0; p0 < total; p0 += step) {                                              \
        const int64_t rows = total - p0 < step ? total - p0 : step;                     \
        im2col_##SUFFIX(g, x, col, p0, rows);                                           \
        GEMM(1, 0, k, cout, rows, (T)1, col, k, grad_y + p0 * cout, cout,               \
             p0 == 0 ? (T)0 : (T)1, grad_w, cout);                                      \
    }                                                                                   \
    free(col);                                                                          \
    return 0;                                                                           \
}

DEFINE_CONV2D(f32, float, ag_sgemm)
DEFINE_CONV2D(f64, double, ag_dgemm)
