/* pool_rows.h: the loops of 2-D max and average pooling over NHWC images, written once
 * and included for each (element type, SIMD level) with these macros defined:
 *   T              element type (float / double)
 *   IDX            the integer type of a window cell number in the max-pool forward's
 *                  local arrays: as wide as T, so its compare-select vectorizes
 *   AG_NAME(x)     name mangling, e.g. x##_f32_avx512; the one public symbol an
 *                  inclusion defines is AG_NAME(ag_pool_rows), which fills AG_ROWS_TABLE
 *   AG_ROWS_TABLE  ag_pool_rows_f32 / ag_pool_rows_f64 (pool_internal.h)
 * pool.c includes it for the portable level; pool_x86.c includes it again under
 * `#pragma GCC target` for AVX2+FMA and for AVX-512F. Max is exact and each average
 * sums a channel's cells in the same order whatever the vector width (and the build
 * does not contract into FMAs), so every level gives the same bits.
 *
 * Each function does a range of items (output rows, or images) and is called by one
 * thread of pool.c's regions. */

/* Output rows begin .. end - 1 (row t is image t / out_height, output row t % out_height).
 * The argmax is kept as a cell number kh * kw_n + kw of the window and turned into a
 * flat index once per output; the cell's place in x is computed, not looked up in a
 * table of kh * kw entries (which cost 2 GiB for a 2**14 x 2**14 window on a 2x2 image,
 * where all but 4 cells are padding). */
static void AG_NAME(max_forward_rows)(const ag_pool2d_geometry *g, const T *x, T *y,
                                      int64_t *argmax, int64_t begin, int64_t end) {
    const int64_t c_n = g->channels, h = g->height, w = g->width, kw_n = g->kernel_w;
    int64_t t;
    for (t = begin; t < end; t++) {
        const int64_t n = t / g->out_height, oh = t % g->out_height;
        const int64_t ih0 = oh * g->stride_h - g->pad_top;
        const int64_t kh_lo = ag_window_first(ih0);
        const int64_t kh_hi = ag_window_end(ih0, h, g->kernel_h);
        int64_t ow;
        for (ow = 0; ow < g->out_width; ow++) {
            const int64_t iw0 = ow * g->stride_w - g->pad_left;
            const int64_t kw_lo = ag_window_first(iw0);
            const int64_t kw_hi = ag_window_end(iw0, w, kw_n);
            /* may be negative with padding; origin + offset of a real cell never is */
            const int64_t origin = ((n * h + ih0) * w + iw0) * c_n;
            const int64_t out = ((n * g->out_height + oh) * g->out_width + ow) * c_n;
            int64_t c0;
            /* A block of channels at a time in local arrays: they cannot alias x, and the
             * cell number has the width of T, so the compare-select below vectorises into
             * branch-free blends (a branch per element mispredicts half the time on real
             * data). Row-major window order with a strict '>' keeps the first maximum; a
             * NaN always takes over (NaN propagates and the last NaN wins, as in PyTorch). */
            for (c0 = 0; c0 < c_n; c0 += POOL_BLOCK) {
                const int64_t lanes = c_n - c0 < POOL_BLOCK ? c_n - c0 : POOL_BLOCK;
                const int64_t first = kh_lo * kw_n + kw_lo;
                const T *start = x + (origin + (kh_lo * w + kw_lo) * c_n + c0);
                T best[POOL_BLOCK];
                IDX where[POOL_BLOCK];
                int64_t kh, kw, c;
                for (c = 0; c < lanes; c++) { best[c] = start[c]; where[c] = (IDX)first; }
                for (kh = kh_lo; kh < kh_hi; kh++) {
                    for (kw = kh == kh_lo ? kw_lo + 1 : kw_lo; kw < kw_hi; kw++) {
                        const IDX pos = (IDX)(kh * kw_n + kw);
                        const T *src = x + (origin + (kh * w + kw) * c_n + c0);
                        for (c = 0; c < lanes; c++) {
                            const T v = src[c], b = best[c];
                            const int take = (v > b) | (v != v);  /* the last NaN wins, as torch */
                            best[c] = take ? v : b;
                            where[c] = take ? pos : where[c];
                        }
                    }
                }
                for (c = 0; c < lanes; c++) y[out + c0 + c] = best[c];
                if (argmax != NULL)  /* NULL: inference, no backward to route */
                    for (c = 0; c < lanes; c++) {
                        const int64_t cell = (int64_t)where[c];
                        argmax[out + c0 + c] = origin + (cell / kw_n * w + cell % kw_n) * c_n + c0 + c;
                    }
            }
        }
    }
}

/* Images begin .. end - 1; returns how many argmax entries pointed outside their image
 * (and were skipped). */
static int64_t AG_NAME(max_backward_images)(const ag_pool2d_geometry *g, const T *grad_y,
                                            const int64_t *argmax, T *grad_x,
                                            int64_t begin, int64_t end) {
    const int64_t image = g->height * g->width * g->channels;
    const int64_t per_image = g->out_height * g->out_width * g->channels;
    int64_t n, bad = 0;
    for (n = begin; n < end; n++) {
        T *dst = grad_x + n * image;
        const T *src = grad_y + n * per_image;
        const int64_t *idx = argmax + n * per_image;
        const int64_t base = n * image;
        int64_t i;
        memset(dst, 0, (size_t)image * sizeof(T));
        for (i = 0; i < per_image; i++) {
            /* argmax may come from the user: one unsigned compare keeps every write
             * inside this image, so threads never race and never leave the buffer. */
            const uint64_t local = (uint64_t)(idx[i] - base);
            if (local >= (uint64_t)image) { bad++; continue; }
            dst[local] += src[i];
        }
    }
    return bad;
}

/* Output rows begin .. end - 1. */
static void AG_NAME(avg_forward_rows)(const ag_pool2d_geometry *g, const T *x, T *y,
                                      int count_include_pad, int64_t begin, int64_t end) {
    const int64_t c_n = g->channels, h = g->height, w = g->width;
    int64_t t;
    for (t = begin; t < end; t++) {
        const int64_t n = t / g->out_height, oh = t % g->out_height;
        const int64_t ih0 = oh * g->stride_h - g->pad_top;
        const int64_t kh_lo = ag_window_first(ih0);
        const int64_t kh_hi = ag_window_end(ih0, h, g->kernel_h);
        int64_t ow;
        for (ow = 0; ow < g->out_width; ow++) {
            const int64_t iw0 = ow * g->stride_w - g->pad_left;
            const int64_t kw_lo = ag_window_first(iw0);
            const int64_t kw_hi = ag_window_end(iw0, w, g->kernel_w);
            T *sum = y + ((n * g->out_height + oh) * g->out_width + ow) * c_n;
            const int64_t cells = count_include_pad ? g->kernel_h * g->kernel_w
                                                    : (kh_hi - kh_lo) * (kw_hi - kw_lo);
            const T scale = (T)1 / (T)cells;
            int64_t kh, kw, c;
            for (c = 0; c < c_n; c++) sum[c] = 0;
            for (kh = kh_lo; kh < kh_hi; kh++)
                for (kw = kw_lo; kw < kw_hi; kw++) {
                    const T *src = x + ((n * h + ih0 + kh) * w + iw0 + kw) * c_n;
                    for (c = 0; c < c_n; c++) sum[c] += src[c];
                }
            for (c = 0; c < c_n; c++) sum[c] *= scale;
        }
    }
}

/* Images begin .. end - 1. */
static void AG_NAME(avg_backward_images)(const ag_pool2d_geometry *g, const T *grad_y,
                                         T *grad_x, int count_include_pad,
                                         int64_t begin, int64_t end) {
    const int64_t c_n = g->channels, h = g->height, w = g->width;
    const int64_t image = h * w * c_n;
    int64_t n;
    for (n = begin; n < end; n++) {
        T *dst_image = grad_x + n * image;
        int64_t oh;
        memset(dst_image, 0, (size_t)image * sizeof(T));
        for (oh = 0; oh < g->out_height; oh++) {
            const int64_t ih0 = oh * g->stride_h - g->pad_top;
            const int64_t kh_lo = ag_window_first(ih0);
            const int64_t kh_hi = ag_window_end(ih0, h, g->kernel_h);
            int64_t ow;
            for (ow = 0; ow < g->out_width; ow++) {
                const int64_t iw0 = ow * g->stride_w - g->pad_left;
                const int64_t kw_lo = ag_window_first(iw0);
                const int64_t kw_hi = ag_window_end(iw0, w, g->kernel_w);
                const T *src = grad_y + ((n * g->out_height + oh) * g->out_width + ow) * c_n;
                const int64_t cells = count_include_pad ? g->kernel_h * g->kernel_w
                                                        : (kh_hi - kh_lo) * (kw_hi - kw_lo);
                const T scale = (T)1 / (T)cells;
                int64_t kh, kw, c;
                for (kh = kh_lo; kh < kh_hi; kh++)
                    for (kw = kw_lo; kw < kw_hi; kw++) {
                        T *dst = dst_image + ((ih0 + kh) * w + iw0 + kw) * c_n;
                        for (c = 0; c < c_n; c++) dst[c] += src[c] * scale;
                    }
            }
        }
    }
}

void AG_NAME(ag_pool_rows)(AG_ROWS_TABLE *rows) {
    rows->max_forward_rows = AG_NAME(max_forward_rows);
    rows->max_backward_images = AG_NAME(max_backward_images);
    rows->avg_forward_rows = AG_NAME(avg_forward_rows);
    rows->avg_backward_images = AG_NAME(avg_backward_images);
}
