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
 * so each thread only ever materialises about TILE_ELEMENTS of it; a tile is still tall
 * enough for the GEMM to run at full speed.
 *
 * Threads: when there is enough work, each thread takes whole tiles (im2col, GEMM,
 * col2im) in one parallel region, and the GEMM, called from inside it, stays on its
 * thread (OpenMP does not activate nested regions by default). One region per call
 * instead of several per tile matters on a busy machine, where every barrier waits for
 * the slowest, possibly descheduled, thread. Small problems, and backward-input tiles
 * smaller than an image, run tiles one after another with im2col / col2im split over
 * threads and the GEMM threading itself.
 *
 * col2im adds each col row back onto its receptive field; receptive fields of one
 * image overlap, so threads of the backward input take whole images and their writes
 * never meet.
 *
 * 1x1 convolutions with stride 1 and no padding skip im2col: x already is the col matrix.
 */
#include <stdlib.h>
#include <string.h>
#include "kernels.h"
#ifdef _OPENMP
#include <omp.h>
#endif

/* Elements of one col buffer (4 MiB of float32, per thread): it stays in the L2/L3
 * cache between im2col and the GEMM, and the tile is still hundreds of rows tall. */
#define TILE_ELEMENTS ((int64_t)1 << 20)
/* Multiply-adds below which one thread does the whole convolution. */
#define PARALLEL_MIN_WORK ((double)(1 << 20))

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

/* Threads for a copy-like loop over `work` elements: below this a fork costs more. */
static int threads_for(int64_t work) {
    return work >= 32768 ? ag_get_num_threads() : 1;
}

/* [begin, end): this thread's even share of count items inside a parallel region. */
static void thread_range(int64_t count, int64_t *begin, int64_t *end) {
#ifdef _OPENMP
    const int64_t me = omp_get_thread_num(), threads = omp_get_num_threads();
#else
    const int64_t me = 0, threads = 1;
#endif
    *begin = count * me / threads;
    *end = count * (me + 1) / threads;
}

static int thread_index(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* How the output pixels are cut into tiles. threads > 1 means "one parallel region,
 * threads take whole tiles"; then step is a multiple of `unit` output pixels and the
 * number of tiles a multiple of the thread count where possible, so that the static
 * split is even. */
typedef struct {
    int64_t step, tiles;
    int threads;
} tile_plan;

static tile_plan plan_tiles(const ag_conv2d_geometry *g, int64_t total, int64_t unit) {
    const int64_t max_rows = tile_rows(g);
    const int threads = ag_get_num_threads();
    const double work = (double)total * (double)(g->kernel_h * g->kernel_w * g->in_channels) *
                        (double)g->out_channels;
    tile_plan plan;
    plan.threads = 1;
    plan.step = max_rows < total ? max_rows : total;
    plan.tiles = (total + plan.step - 1) / plan.step;
    if (threads > 1 && work >= PARALLEL_MIN_WORK && unit <= max_rows) {
        const int64_t units = total / unit, per_tile = max_rows / unit;
        int64_t tiles = (units + per_tile - 1) / per_tile;
        tiles = (tiles + threads - 1) / threads * threads;
        if (tiles > units) tiles = units;
        if (tiles >= 2) {
            const int64_t units_per_tile = (units + tiles - 1) / tiles;
            plan.step = units_per_tile * unit;
            plan.tiles = (units + units_per_tile - 1) / units_per_tile;
            plan.threads = threads < plan.tiles ? threads : (int)plan.tiles;
        }
    }
    return plan;
}

#define DEFINE_CONV2D(SUFFIX, T, GEMM)                                                  \
                                                                                        \
/* col[r, :] = receptive field of output pixel p0 + r, zeros where it hangs over the    \
 * padding. Each (pixel, kh) pair is one contiguous run of kw * c_in elements in both x \
 * and col, so it is copied as a run and only the border columns are clipped. */        \
static void im2col_rows_##SUFFIX(const ag_conv2d_geometry *g, const T *x, T *col,       \
                                 int64_t p0, int64_t r_begin, int64_t r_end) {          \
    const int64_t kh_n = g->kernel_h, kw_n = g->kernel_w, cin = g->in_channels;         \
    const int64_t k = kh_n * kw_n * cin, run = kw_n * cin;                              \
    const int64_t plane = g->out_height * g->out_width;                                 \
    for (int64_t r = r_begin; r < r_end; r++) {                                         \
        const int64_t p = p0 + r;                                                       \
        const int64_t n = p / plane, rest = p % plane;                                  \
        const int64_t oh = rest / g->out_width, ow = rest % g->out_width;               \
        const int64_t ih0 = oh * g->stride_h - g->pad_top;                              \
        const int64_t iw0 = ow * g->stride_w - g->pad_left;                             \
        /* kw range whose column lies inside the image: [kw_lo, kw_hi) */               \
        int64_t kw_lo = iw0 < 0 ? -iw0 : 0;                                             \
        int64_t kw_hi = g->width - iw0 < kw_n ? g->width - iw0 : kw_n;                  \
        T *dst_row = col + r * k;                                                       \
        if (kw_lo > kw_n) kw_lo = kw_n;                                                 \
        if (kw_hi < kw_lo) kw_hi = kw_lo;                                               \
        for (int64_t kh = 0; kh < kh_n; kh++) {                                         \
            const int64_t ih = ih0 + kh;                                                \
            T *dst = dst_row + kh * run;                                                \
            if (ih < 0 || ih >= g->height || kw_hi == kw_lo) {                          \
                memset(dst, 0, (size_t)run * sizeof(T));                                \
                continue;                                                               \
            }                                                                           \
            if (kw_lo > 0) memset(dst, 0, (size_t)(kw_lo * cin) * sizeof(T));           \
            memcpy(dst + kw_lo * cin, x + ((n * g->height + ih) * g->width + iw0 + kw_lo) * cin, \
                   (size_t)((kw_hi - kw_lo) * cin) * sizeof(T));                        \
            if (kw_hi < kw_n)                                                           \
                memset(dst + kw_hi * cin, 0, (size_t)((kw_n - kw_hi) * cin) * sizeof(T)); \
        }                                                                               \
    }                                                                                   \
}                                                                                       \
                                                                                        \
/* The whole tile, split over threads when called outside a parallel region. */         \
static void im2col_##SUFFIX(const ag_conv2d_geometry *g, const T *x, T *col,            \
                            int64_t p0, int64_t rows) {                                 \
    const int64_t k = g->kernel_h * g->kernel_w * g->in_channels;                       \
    const int threads = threads_for(rows * k);                                          \
    if (threads <= 1) {                                                                 \
        im2col_rows_##SUFFIX(g, x, col, p0, 0, rows);                                   \
        return;                                                                         \
    }                                                                                   \
    _Pragma("omp parallel num_threads(threads)")                                        \
    {                                                                                   \
        int64_t r_begin, r_end;                                                         \
        thread_range(rows, &r_begin, &r_end);                                           \
        im2col_rows_##SUFFIX(g, x, col, p0, r_begin, r_end);                            \
    }                                                                                   \
}                                                                                       \
                                                                                        \
/* Adjoint of im2col: gx += each col row spread back over its receptive field, for the  \
 * tile rows r_begin .. r_end - 1. Each (pixel, kh) pair adds one contiguous run. Rows of \
 * one image may overlap in gx, so one thread must own all rows of an image it writes. */ \
static void col2im_rows_##SUFFIX(const ag_conv2d_geometry *g, const T *gcol, T *gx,     \
                                 int64_t p0, int64_t r_begin, int64_t r_end) {          \
    const int64_t kh_n = g->kernel_h, kw_n = g->kernel_w, cin = g->in_channels;         \
    const int64_t k = kh_n * kw_n * cin, run = kw_n * cin;                              \
    const int64_t plane = g->out_height * g->out_width;                                 \
    for (int64_t r = r_begin; r < r_end; r++) {                                         \
        const int64_t p = p0 + r;                                                       \
        const int64_t n = p / plane, rest = p % plane;                                  \
        const int64_t oh = rest / g->out_width, ow = rest % g->out_width;               \
        const int64_t ih0 = oh * g->stride_h - g->pad_top;                              \
        const int64_t iw0 = ow * g->stride_w - g->pad_left;                             \
        int64_t kw_lo = iw0 < 0 ? -iw0 : 0;                                             \
        int64_t kw_hi = g->width - iw0 < kw_n ? g->width - iw0 : kw_n;                  \
        if (kw_lo > kw_n) kw_lo = kw_n;                                                 \
        if (kw_hi <= kw_lo) continue;                                                   \
        for (int64_t kh = 0; kh < kh_n; kh++) {                                         \
            const int64_t ih = ih0 + kh;                                                \
            if (ih < 0 || ih >= g->height) continue;                                    \
            T *dst = gx + ((n * g->height + ih) * g->width + iw0 + kw_lo) * cin;        \
            const T *src = gcol + r * k + kh * run + kw_lo * cin;                       \
            const int64_t length = (kw_hi - kw_lo) * cin;                               \
            for (int64_t i = 0; i < length; i++) dst[i] += src[i];                      \
        }                                                                               \
    }                                                                                   \
}                                                                                       \
                                                                                        \
/* The whole tile; threads, when called outside a parallel region, take whole images. */ \
static void col2im_##SUFFIX(const ag_conv2d_geometry *g, const T *gcol, T *gx,          \
                            int64_t p0, int64_t rows) {                                 \
    const int64_t plane = g->out_height * g->out_width;                                 \
    const int64_t n_first = p0 / plane, images = (p0 + rows - 1) / plane - n_first + 1; \
    int threads = threads_for(rows * g->kernel_h * g->kernel_w * g->in_channels);       \
    if (threads > images) threads = (int)images;                                        \
    if (threads <= 1) {                                                                 \
        col2im_rows_##SUFFIX(g, gcol, gx, p0, 0, rows);                                 \
        return;                                                                         \
    }                                                                                   \
    _Pragma("omp parallel num_threads(threads)")                                        \
    {                                                                                   \
        int64_t i_begin, i_end, r_begin, r_end;                                         \
        thread_range(images, &i_begin, &i_end);                                         \
        r_begin = (n_first + i_begin) * plane - p0;                                     \
        r_end = (n_first + i_end) * plane - p0;                                         \
        if (r_begin < 0) r_begin = 0;                                                   \
        if (r_end > rows) r_end = rows;                                                 \
        col2im_rows_##SUFFIX(g, gcol, gx, p0, r_begin, r_end);                          \
    }                                                                                   \
}                                                                                       \
                                                                                        \
int ag_conv2d_forward_##SUFFIX(const ag_conv2d_geometry *g, const T *x, const T *w, T *y) { \
    const int64_t k = g->kernel_h * g->kernel_w * g->in_channels;                       \
    const int64_t cout = g->out_channels;                                               \
    const int64_t total = g->batch * g->out_height * g->out_width;                      \
    tile_plan plan;                                                                     \
    int failed = 0;                                                                     \
    if (total == 0) return 0;                                                           \
    if (is_pointwise(g)) {                                                              \
        GEMM(0, 0, total, cout, k, (T)1, x, k, w, cout, (T)0, y, cout);                 \
        return 0;                                                                       \
    }                                                                                   \
    plan = plan_tiles(g, total, 1);                                                     \
    if (plan.threads <= 1) {                                                            \
        T *col = (T *)malloc((size_t)(plan.step * k) * sizeof(T));                      \
        if (col == NULL) return -1;                                                     \
        for (int64_t p0 = 0; p0 < total; p0 += plan.step) {                             \
            const int64_t rows = total - p0 < plan.step ? total - p0 : plan.step;       \
            im2col_##SUFFIX(g, x, col, p0, rows);                                       \
            GEMM(0, 0, rows, cout, k, (T)1, col, k, w, cout, (T)0, y + p0 * cout, cout); \
        }                                                                               \
        free(col);                                                                      \
        return 0;                                                                       \
    }                                                                                   \
    _Pragma("omp parallel num_threads(plan.threads) reduction(|:failed)")               \
    {                                                                                   \
        T *col = (T *)malloc((size_t)(plan.step * k) * sizeof(T));                      \
        failed = col == NULL;                                                           \
        _Pragma("omp for schedule(static)")                                             \
        for (int64_t tile = 0; tile < plan.tiles; tile++) {                             \
            const int64_t p0 = tile * plan.step;                                        \
            const int64_t rows = total - p0 < plan.step ? total - p0 : plan.step;       \
            if (col == NULL || rows <= 0) continue;                                     \
            im2col_rows_##SUFFIX(g, x, col, p0, 0, rows);                               \
            GEMM(0, 0, rows, cout, k, (T)1, col, k, w, cout, (T)0, y + p0 * cout, cout); \
        }                                                                               \
        free(col);                                                                      \
    }                                                                                   \
    return failed ? -1 : 0;                                                             \
}                                                                                       \
                                                                                        \
int ag_conv2d_backward_input_##SUFFIX(const ag_conv2d_geometry *g, const T *grad_y,     \
                                      const T *w, T *grad_x) {                          \
    const int64_t k = g->kernel_h * g->kernel_w * g->in_channels;                       \
    const int64_t cout = g->out_channels;                                               \
    const int64_t plane = g->out_height * g->out_width;                                 \
    const int64_t total = g->batch * plane;                                             \
    const int64_t image = g->height * g->width * g->in_channels;                        \
    tile_plan plan;                                                                     \
    int failed = 0;                                                                     \
    if (total > 0 && is_pointwise(g)) {                                                 \
        GEMM(0, 1, total, k, cout, (T)1, grad_y, cout, w, cout, (T)0, grad_x, k);       \
        return 0;                                                                       \
    }                                                                                   \
    if (total == 0) {                                                                   \
        memset(grad_x, 0, (size_t)(g->batch * image) * sizeof(T));                      \
        return 0;                                                                       \
    }                                                                                   \
    /* Threads take whole images, so their col2im never write the same input cells. */  \
    plan = plan_tiles(g, total, plane);                                                 \
    if (plan.threads <= 1) {                                                            \
        T *gcol = (T *)malloc((size_t)(plan.step * k) * sizeof(T));                     \
        if (gcol == NULL) return -1;                                                    \
        memset(grad_x, 0, (size_t)(g->batch * image) * sizeof(T));                      \
        for (int64_t p0 = 0; p0 < total; p0 += plan.step) {                             \
            const int64_t rows = total - p0 < plan.step ? total - p0 : plan.step;       \
            GEMM(0, 1, rows, k, cout, (T)1, grad_y + p0 * cout, cout, w, cout, (T)0, gcol, k); \
            col2im_##SUFFIX(g, gcol, grad_x, p0, rows);                                 \
        }                                                                               \
        free(gcol);                                                                     \
        return 0;                                                                       \
    }                                                                                   \
    _Pragma("omp parallel num_threads(plan.threads) reduction(|:failed)")               \
    {                                                                                   \
        T *gcol = (T *)malloc((size_t)(plan.step * k) * sizeof(T));                     \
        failed = gcol == NULL;                                                          \
        _Pragma("omp for schedule(static)")                                             \
        for (int64_t tile = 0; tile < plan.tiles; tile++) {                             \
            const int64_t p0 = tile * plan.step;                                        \
            const int64_t rows = total - p0 < plan.step ? total - p0 : plan.step;       \
            if (rows <= 0) continue;                                                    \
            memset(grad_x + p0 / plane * image, 0, (size_t)(rows / plane * image) * sizeof(T)); \
            if (gcol == NULL) continue;                                                 \
            GEMM(0, 1, rows, k, cout, (T)1, grad_y + p0 * cout, cout, w, cout, (T)0, gcol, k); \
            col2im_rows_##SUFFIX(g, gcol, grad_x, p0, 0, rows);                         \
        }                                                                               \
        free(gcol);                                                                     \
    }                                                                                   \
    return failed ? -1 : 0;                                                             \
}                                                                                       \
                                                                                        \
int ag_conv2d_backward_weight_##SUFFIX(const ag_conv2d_geometry *g, const T *x,         \
                                       const T *grad_y, T *grad_w) {                    \
    const int64_t k = g->kernel_h * g->kernel_w * g->in_channels;                       \
    const int64_t cout = g->out_channels;                                               \
    const int64_t total = g->batch * g->out_height * g->out_width;                      \
    const int64_t size = k * cout;                                                      \
    tile_plan plan;                                                                     \
    T *partials;                                                                        \
    int failed = 0;                                                                     \
    if (total == 0) {                                                                   \
        memset(grad_w, 0, (size_t)size * sizeof(T));                                    \
        return 0;                                                                       \
    }                                                                                   \
    if (is_pointwise(g)) {                                                              \
        GEMM(1, 0, k, cout, total, (T)1, x, k, grad_y, cout, (T)0, grad_w, cout);       \
        return 0;                                                                       \
    }                                                                                   \
    plan = plan_tiles(g, total, 1);                                                     \
    if (plan.threads <= 1) {                                                            \
        T *col = (T *)malloc((size_t)(plan.step * k) * sizeof(T));                      \
        if (col == NULL) return -1;                                                     \
        for (int64_t p0 = 0; p0 < total; p0 += plan.step) {                             \
            const int64_t rows = total - p0 < plan.step ? total - p0 : plan.step;       \
            im2col_##SUFFIX(g, x, col, p0, rows);                                       \
            GEMM(1, 0, k, cout, rows, (T)1, col, k, grad_y + p0 * cout, cout,           \
                 p0 == 0 ? (T)0 : (T)1, grad_w, cout);                                  \
        }                                                                               \
        free(col);                                                                      \
        return 0;                                                                       \
    }                                                                                   \
    /* Each thread sums its tiles into its own partial (thread 0's is grad_w itself);   \
     * the partials are then added in thread order, so the result does not depend on    \
     * timing. */                                                                       \
    partials = (T *)malloc((size_t)((plan.threads - 1) * size) * sizeof(T));            \
    if (partials == NULL) return -1;                                                    \
    _Pragma("omp parallel num_threads(plan.threads) reduction(|:failed)")               \
    {                                                                                   \
        const int me = thread_index();                                            \
        T *mine = me == 0 ? grad_w : partials + (me - 1) * size;                        \
        T *col = (T *)malloc((size_t)(plan.step * k) * sizeof(T));                      \
        int started = 0;                                                                \
        failed = col == NULL;                                                           \
        _Pragma("omp for schedule(static)")                                             \
        for (int64_t tile = 0; tile < plan.tiles; tile++) {                             \
            const int64_t p0 = tile * plan.step;                                        \
            const int64_t rows = total - p0 < plan.step ? total - p0 : plan.step;       \
            if (col == NULL || rows <= 0) continue;                                     \
            im2col_rows_##SUFFIX(g, x, col, p0, 0, rows);                               \
            GEMM(1, 0, k, cout, rows, (T)1, col, k, grad_y + p0 * cout, cout,           \
                 started ? (T)1 : (T)0, mine, cout);                                    \
            started = 1;                                                                \
        }                                                                               \
        if (!started) memset(mine, 0, (size_t)size * sizeof(T));                        \
        free(col);                                                                      \
        _Pragma("omp barrier")                                                          \
        {                                                                               \
            int64_t begin, end;                                                         \
            thread_range(size, &begin, &end);                                           \
            for (int t = 1; t < plan.threads; t++) {                                    \
                const T *part = partials + (t - 1) * size;                              \
                for (int64_t e = begin; e < end; e++) grad_w[e] += part[e];             \
            }                                                                           \
        }                                                                               \
    }                                                                                   \
    free(partials);                                                                     \
    return failed ? -1 : 0;                                                             \
}                                                                                       \

DEFINE_CONV2D(f32, float, ag_sgemm)
DEFINE_CONV2D(f64, double, ag_dgemm)
