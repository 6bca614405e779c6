/* conv2d_driver.h: the portable conv2d driver -- tiling, im2col / col2im, the GEMM calls
 * and the threads -- written once as plain functions and included by conv2d.c for each
 * element type with these macros defined:
 *   T                 element type (float / double)
 *   AG_NAME(x)        name mangling (x##_f32 / x##_f64): the public entry points are
 *                     AG_NAME(ag_conv2d_forward) etc., the helpers AG_NAME(im2col) etc.
 *   AG_GEMM           ag_sgemm / ag_dgemm
 *   AG_DIRECT         ag_conv2d_direct_f32 / ag_conv2d_direct_f64 (conv2d_internal.h)
 *   AG_DIRECT_SELECT  ag_conv2d_select_f32 / ag_conv2d_select_f64
 * A debugger steps through these like any other function (im2col_rows_f32, ...).
 *
 * Every parallel region goes through ag_parallel / ag_parallel_for (parallel.h), whose
 * bodies learn the size of the team that actually started. */

/* col[r, :] = receptive field of output pixel p0 + r, zeros where it hangs over the
 * padding. Each (pixel, kh) pair is one contiguous run of kw * c_in elements in both x
 * and col, so it is copied as a run and only the border columns are clipped. */
static void AG_NAME(im2col_rows)(const ag_conv2d_geometry *g, const T *x, T *col,
                                 int64_t p0, int64_t r_begin, int64_t r_end) {
    const int64_t kh_n = g->kernel_h, kw_n = g->kernel_w, cin = g->in_channels;
    const int64_t k = kh_n * kw_n * cin, run = kw_n * cin;
    for (int64_t r = r_begin; r < r_end; r++) {
        const receptive_field f = field_of(g, p0 + r);
        const int64_t n = f.n, ih0 = f.ih0, iw0 = f.iw0, kw_lo = f.kw_lo, kw_hi = f.kw_hi;
        T *dst_row = col + r * k;
        for (int64_t kh = 0; kh < kh_n; kh++) {
            const int64_t ih = ih0 + kh;
            T *dst = dst_row + kh * run;
            if (ih < 0 || ih >= g->height || kw_hi == kw_lo) {
                memset(dst, 0, (size_t)run * sizeof(T));
                continue;
            }
            if (kw_lo > 0) memset(dst, 0, (size_t)(kw_lo * cin) * sizeof(T));
            memcpy(dst + kw_lo * cin, x + ((n * g->height + ih) * g->width + iw0 + kw_lo) * cin,
                   (size_t)((kw_hi - kw_lo) * cin) * sizeof(T));
            if (kw_hi < kw_n)
                memset(dst + kw_hi * cin, 0, (size_t)((kw_n - kw_hi) * cin) * sizeof(T));
        }
    }
}

/* What one call of im2col or col2im moves, for the threads that share it. */
typedef struct {
    const ag_conv2d_geometry *g;
    const T *source;
    T *target;
    int64_t p0, rows;
} AG_NAME(copy_job);

static void AG_NAME(im2col_share)(void *job_pointer, int64_t r_begin, int64_t r_end, int thread) {
    const AG_NAME(copy_job) *job = (const AG_NAME(copy_job) *)job_pointer;
    (void)thread;
    AG_NAME(im2col_rows)(job->g, job->source, job->target, job->p0, r_begin, r_end);
}

/* The whole tile, split over threads when called outside a parallel region. */
static void AG_NAME(im2col)(const ag_conv2d_geometry *g, const T *x, T *col,
                            int64_t p0, int64_t rows) {
    const int64_t k = g->kernel_h * g->kernel_w * g->in_channels;
    AG_NAME(copy_job) job;
    job.g = g; job.source = x; job.target = col; job.p0 = p0; job.rows = rows;
    ag_parallel_for(ag_threads_for((double)(rows * k), AG_CONV2D_COPY_MIN_WORK), rows,
                    AG_NAME(im2col_share), &job);
}

/* Adjoint of im2col: gx += each col row spread back over its receptive field, for the
 * tile rows r_begin .. r_end - 1. Each (pixel, kh) pair adds one contiguous run. Rows of
 * one image may overlap in gx, so one thread must own all rows of an image it writes. */
static void AG_NAME(col2im_rows)(const ag_conv2d_geometry *g, const T *gcol, T *gx,
                                 int64_t p0, int64_t r_begin, int64_t r_end) {
    const int64_t kh_n = g->kernel_h, kw_n = g->kernel_w, cin = g->in_channels;
    const int64_t k = kh_n * kw_n * cin, run = kw_n * cin;
    for (int64_t r = r_begin; r < r_end; r++) {
        const receptive_field f = field_of(g, p0 + r);
        const int64_t n = f.n, ih0 = f.ih0, iw0 = f.iw0, kw_lo = f.kw_lo, kw_hi = f.kw_hi;
        if (kw_hi == kw_lo) continue;  /* the whole window lies in the padding columns */
        for (int64_t kh = 0; kh < kh_n; kh++) {
            const int64_t ih = ih0 + kh;
            if (ih < 0 || ih >= g->height) continue;
            T *dst = gx + ((n * g->height + ih) * g->width + iw0 + kw_lo) * cin;
            const T *src = gcol + r * k + kh * run + kw_lo * cin;
            const int64_t length = (kw_hi - kw_lo) * cin;
            for (int64_t i = 0; i < length; i++) dst[i] += src[i];
        }
    }
}

/* Images i_begin .. i_end - 1 of the tile (counted from the tile's first image). */
static void AG_NAME(col2im_share)(void *job_pointer, int64_t i_begin, int64_t i_end, int thread) {
    const AG_NAME(copy_job) *job = (const AG_NAME(copy_job) *)job_pointer;
    const int64_t plane = job->g->out_height * job->g->out_width;
    const int64_t n_first = job->p0 / plane;
    int64_t r_begin = (n_first + i_begin) * plane - job->p0;
    int64_t r_end = (n_first + i_end) * plane - job->p0;
    (void)thread;
    if (r_begin < 0) r_begin = 0;
    if (r_end > job->rows) r_end = job->rows;
    AG_NAME(col2im_rows)(job->g, job->source, job->target, job->p0, r_begin, r_end);
}

/* The whole tile; threads, when called outside a parallel region, take whole images. */
static void AG_NAME(col2im)(const ag_conv2d_geometry *g, const T *gcol, T *gx,
                            int64_t p0, int64_t rows) {
    const int64_t plane = g->out_height * g->out_width;
    const int64_t n_first = p0 / plane, images = (p0 + rows - 1) / plane - n_first + 1;
    const double work = (double)(rows * g->kernel_h * g->kernel_w * g->in_channels);
    AG_NAME(copy_job) job;
    job.g = g; job.source = gcol; job.target = gx; job.p0 = p0; job.rows = rows;
    ag_parallel_for(ag_threads_for(work, AG_CONV2D_COPY_MIN_WORK), images,
                    AG_NAME(col2im_share), &job);
}

/* 1 when none of values[0 .. count) is Inf or NaN. The direct kernels skip products
 * with padding zeros (forward and backward input: with a weight; backward weight: with
 * grad_y), which the reference (and im2col + GEMM) computes: 0 * Inf = NaN there. A
 * non-finite operand therefore takes the im2col path, which multiplies every padded cell
 * as the reference does. v - v is 0 for finite v and NaN otherwise; the loop stops at
 * the first block that holds one, and finite data costs one pass: on the seed CNN's
 * second layer (batch 64, one thread) the three passes took 10.7 / 10.7 / 10.4 ms with
 * the scan and 10.8-11.5 / 11.5 / 11.2-11.6 ms before it, i.e. no cost above noise. */
static int AG_NAME(all_finite)(const T *values, int64_t count) {
    const int64_t block = 4096;
    for (int64_t start = 0; start < count; start += block) {
        const int64_t end = count - start < block ? count : start + block;
        T lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};  /* 8 independent sums: the loop vectorizes */
        int64_t i = start;
        for (; i + 8 <= end; i += 8)
            for (int j = 0; j < 8; j++) lanes[j] += values[i + j] - values[i + j];
        for (; i < end; i++) lanes[0] += values[i] - values[i];
        for (int j = 0; j < 8; j++)
            if (lanes[j] != 0) return 0;  /* NaN != 0 too */
    }
    return 1;
}

/* Winograd (winograd.c) for a forward-form geometry g: 1 done, 0 not taken, -1 out of
 * memory. Taken only for stride-1 5x5 geometries it speeds up, with finite operands
 * (see winograd_internal.h), unless AUTOGRAD_CORE_WINOGRAD=0 (a debugging and A/B
 * knob, read per call: os.environ changes reach it). Against the AVX-512 direct
 * kernel (`direct`: it would take this pass) Winograd needs 16+ channels each way and
 * AG_WINOGRAD_MIN_WORK multiply-adds to win: measured (one thread, float32, a busy
 * 2-core machine, A/B alternated) 0.41 / 0.48 / 0.52x of its time for the forward /
 * input gradient / weight gradient of the seed CNN's second layer at batch 100 (0.43 /
 * 0.46 / 0.69x at two threads), 0.8x at 4 x 28x28x16 -> 16,
 * but 0.9-1.5x at batch 1 of that layer and 1.2-1.3x at 8 -> 16 channels, where the
 * transforms of a 16-wide channel vector are half padding. Against im2col + GEMM it
 * won on every eligible shape measured (0.1-0.7x), float64 included (the seed layer
 * in float64: 0.30 / 0.26 / 0.43x). */
#ifndef AG_WINOGRAD_MIN_WORK
#define AG_WINOGRAD_MIN_WORK ((double)(1 << 24))
#endif
/* 1 when Winograd should take a pass of geometry g (forward form); `direct`: the AVX-512
 * direct kernel would take it otherwise. Finiteness is the caller's to check. */
static int AG_NAME(winograd_wanted)(const ag_conv2d_geometry *g, int direct) {
    const char *knob = getenv("AUTOGRAD_CORE_WINOGRAD");
    const double work = (double)(g->batch * g->out_height * g->out_width) *
                        (double)(g->kernel_h * g->kernel_w * g->in_channels * g->out_channels);
    if ((knob != NULL && knob[0] == '0') || g->stride_h != 1 || g->stride_w != 1 ||
            g->kernel_h != 5 || g->kernel_w != 5)
        return 0;
    return !(direct && (work < AG_WINOGRAD_MIN_WORK || g->in_channels < 16 || g->out_channels < 16));
}

static int AG_NAME(winograd)(const ag_conv2d_geometry *g, const T *x, const T *w, int flipped, T *y,
                             int direct) {
    const int64_t weights = g->kernel_h * g->kernel_w * g->in_channels * g->out_channels;
    if (!AG_NAME(winograd_wanted)(g, direct)) return 0;
    if (!AG_NAME(all_finite)(w, weights) ||
            !AG_NAME(all_finite)(x, g->batch * g->height * g->width * g->in_channels))
        return 0;
    return AG_WINOGRAD(g, x, w, flipped, y);
}

/* One call's tiles, shared by the threads of a region (threads take whole tiles). */
typedef struct {
    const ag_conv2d_geometry *g;
    const T *x, *grad_y, *w;
    T *out;              /* y, grad_x or grad_w */
    T *partials;         /* backward weight: one [k, c_out] partial per thread after the first */
    tile_plan plan;
    int failed;
} AG_NAME(tile_job);

static void AG_NAME(mark_failed)(AG_NAME(tile_job) *job) {
    AG_OMP("omp atomic write")
    job->failed = 1;
}

/* forward, one thread: y rows of its tiles = im2col(x) @ W */
static void AG_NAME(forward_tiles)(void *job_pointer, int thread, int team) {
    AG_NAME(tile_job) *job = (AG_NAME(tile_job) *)job_pointer;
    const ag_conv2d_geometry *g = job->g;
    const int64_t k = g->kernel_h * g->kernel_w * g->in_channels, cout = g->out_channels;
    const int64_t total = g->batch * g->out_height * g->out_width, step = job->plan.step;
    T *col = (T *)malloc((size_t)(step * k) * sizeof(T));
    (void)thread; (void)team;
    if (col == NULL) AG_NAME(mark_failed)(job);
    AG_OMP("omp for schedule(static)")
    for (int64_t tile = 0; tile < job->plan.tiles; tile++) {
        const int64_t p0 = tile * step;
        const int64_t rows = total - p0 < step ? total - p0 : step;
        if (col == NULL || rows <= 0) continue;
        AG_NAME(im2col_rows)(g, job->x, col, p0, 0, rows);
        AG_GEMM(0, 0, rows, cout, k, (T)1, col, k, job->w, cout, (T)0, job->out + p0 * cout, cout);
    }
    free(col);
}

int AG_NAME(ag_conv2d_forward)(const ag_conv2d_geometry *g, const T *x, const T *w, T *y) {
    const int64_t k = g->kernel_h * g->kernel_w * g->in_channels;
    const int64_t cout = g->out_channels;
    const int64_t total = g->batch * g->out_height * g->out_width;
    AG_DIRECT direct;
    AG_NAME(tile_job) job;
    if (total == 0) return 0;
    if (is_pointwise(g)) {
        AG_GEMM(0, 0, total, cout, k, (T)1, x, k, w, cout, (T)0, y, cout);
        return 0;
    }
    AG_DIRECT_SELECT(ag_get_simd_level(), &direct);
    switch (AG_NAME(winograd)(g, x, w, 0, y, direct.forward != NULL && cout % 16 == 0)) {
    case 1: return 0;
    case -1: return -1;
    default: break;
    }
    if (direct.forward != NULL && AG_NAME(all_finite)(w, k * cout) && direct.forward(g, x, w, y) > 0)
        return 0;
    job.plan = plan_tiles(g, total, 1);
    if (job.plan.threads <= 1) {
        const int64_t step = job.plan.step;
        T *col = (T *)malloc((size_t)(step * k) * sizeof(T));
        if (col == NULL) return -1;
        for (int64_t p0 = 0; p0 < total; p0 += step) {
            const int64_t rows = total - p0 < step ? total - p0 : step;
            AG_NAME(im2col)(g, x, col, p0, rows);
            AG_GEMM(0, 0, rows, cout, k, (T)1, col, k, w, cout, (T)0, y + p0 * cout, cout);
        }
        free(col);
        return 0;
    }
    job.g = g; job.x = x; job.grad_y = NULL; job.w = w; job.out = y; job.partials = NULL;
    job.failed = 0;
    ag_parallel(job.plan.threads, AG_NAME(forward_tiles), &job);
    return job.failed ? -1 : 0;
}

/* backward input, one thread: gcol = grad_y rows @ W^T, col2im'd into its whole images */
static void AG_NAME(backward_input_tiles)(void *job_pointer, int thread, int team) {
    AG_NAME(tile_job) *job = (AG_NAME(tile_job) *)job_pointer;
    const ag_conv2d_geometry *g = job->g;
    const int64_t k = g->kernel_h * g->kernel_w * g->in_channels, cout = g->out_channels;
    const int64_t plane = g->out_height * g->out_width, total = g->batch * plane;
    const int64_t image = g->height * g->width * g->in_channels, step = job->plan.step;
    T *gcol = (T *)malloc((size_t)(step * k) * sizeof(T));
    (void)thread; (void)team;
    if (gcol == NULL) AG_NAME(mark_failed)(job);
    AG_OMP("omp for schedule(static)")
    for (int64_t tile = 0; tile < job->plan.tiles; tile++) {
        const int64_t p0 = tile * step;
        const int64_t rows = total - p0 < step ? total - p0 : step;
        if (rows <= 0) continue;
        memset(job->out + p0 / plane * image, 0, (size_t)(rows / plane * image) * sizeof(T));
        if (gcol == NULL) continue;
        AG_GEMM(0, 1, rows, k, cout, (T)1, job->grad_y + p0 * cout, cout, job->w, cout, (T)0, gcol, k);
        AG_NAME(col2im_rows)(g, gcol, job->out, p0, 0, rows);
    }
    free(gcol);
}

int AG_NAME(ag_conv2d_backward_input)(const ag_conv2d_geometry *g, const T *grad_y,
                                      const T *w, T *grad_x) {
    const int64_t k = g->kernel_h * g->kernel_w * g->in_channels;
    const int64_t cout = g->out_channels;
    const int64_t plane = g->out_height * g->out_width;
    const int64_t total = g->batch * plane;
    const int64_t image = g->height * g->width * g->in_channels;
    AG_DIRECT direct;
    AG_NAME(tile_job) job;
    if (total > 0 && is_pointwise(g)) {
        AG_GEMM(0, 1, total, k, cout, (T)1, grad_y, cout, w, cout, (T)0, grad_x, k);
        return 0;
    }
    if (total == 0) {
        memset(grad_x, 0, (size_t)(g->batch * image) * sizeof(T));
        return 0;
    }
    AG_DIRECT_SELECT(ag_get_simd_level(), &direct);
    {
        /* grad_x is the stride-1 correlation of grad_y (padded by kernel - 1 - pad) with
         * the flipped, channel-transposed kernel: the forward geometry with the roles of
         * input and output swapped. */
        ag_conv2d_geometry swapped = *g;
        swapped.height = g->out_height; swapped.width = g->out_width;
        swapped.out_height = g->height; swapped.out_width = g->width;
        swapped.in_channels = g->out_channels; swapped.out_channels = g->in_channels;
        swapped.pad_top = g->kernel_h - 1 - g->pad_top;
        swapped.pad_left = g->kernel_w - 1 - g->pad_left;
        switch (AG_NAME(winograd)(&swapped, grad_y, w, 1, grad_x,
                                  direct.backward_input != NULL && g->in_channels % 16 == 0)) {
        case 1: return 0;
        case -1: return -1;
        default: break;
        }
    }
    if (direct.backward_input != NULL && AG_NAME(all_finite)(w, k * cout) &&
            direct.backward_input(g, grad_y, w, grad_x) > 0)
        return 0;
    /* Threads take whole images, so their col2im never write the same input cells. */
    job.plan = plan_tiles(g, total, plane);
    if (job.plan.threads <= 1) {
        const int64_t step = job.plan.step;
        T *gcol = (T *)malloc((size_t)(step * k) * sizeof(T));
        if (gcol == NULL) return -1;
        memset(grad_x, 0, (size_t)(g->batch * image) * sizeof(T));
        for (int64_t p0 = 0; p0 < total; p0 += step) {
            const int64_t rows = total - p0 < step ? total - p0 : step;
            AG_GEMM(0, 1, rows, k, cout, (T)1, grad_y + p0 * cout, cout, w, cout, (T)0, gcol, k);
            AG_NAME(col2im)(g, gcol, grad_x, p0, rows);
        }
        free(gcol);
        return 0;
    }
    job.g = g; job.x = NULL; job.grad_y = grad_y; job.w = w; job.out = grad_x; job.partials = NULL;
    job.failed = 0;
    ag_parallel(job.plan.threads, AG_NAME(backward_input_tiles), &job);
    return job.failed ? -1 : 0;
}

/* backward weight, one thread: its tiles' col^T @ grad_y summed into its own partial
 * (thread 0's is grad_w itself), then, after a barrier, its share of grad_w += every
 * other thread's partial. Only the `team` threads that actually started own partials:
 * when OpenMP grants fewer threads than asked for, the partials of threads that never
 * ran are never read. */
static void AG_NAME(backward_weight_tiles)(void *job_pointer, int thread, int team) {
    AG_NAME(tile_job) *job = (AG_NAME(tile_job) *)job_pointer;
    const ag_conv2d_geometry *g = job->g;
    const int64_t k = g->kernel_h * g->kernel_w * g->in_channels, cout = g->out_channels;
    const int64_t total = g->batch * g->out_height * g->out_width, step = job->plan.step;
    const int64_t size = k * cout;
    T *mine = thread == 0 ? job->out : job->partials + (thread - 1) * size;
    T *col = (T *)malloc((size_t)(step * k) * sizeof(T));
    int started = 0;
    int64_t begin, end;
    if (col == NULL) AG_NAME(mark_failed)(job);
    AG_OMP("omp for schedule(static)")
    for (int64_t tile = 0; tile < job->plan.tiles; tile++) {
        const int64_t p0 = tile * step;
        const int64_t rows = total - p0 < step ? total - p0 : step;
        if (col == NULL || rows <= 0) continue;
        AG_NAME(im2col_rows)(g, job->x, col, p0, 0, rows);
        AG_GEMM(1, 0, k, cout, rows, (T)1, col, k, job->grad_y + p0 * cout, cout,
                started ? (T)1 : (T)0, mine, cout);
        started = 1;
    }
    if (!started) memset(mine, 0, (size_t)size * sizeof(T));
    free(col);
    AG_OMP("omp barrier")
    ag_share(size, thread, team, &begin, &end);
    for (int t = 1; t < team; t++) {
        const T *part = job->partials + (t - 1) * size;
        for (int64_t e = begin; e < end; e++) job->out[e] += part[e];
    }
}

int AG_NAME(ag_conv2d_backward_weight)(const ag_conv2d_geometry *g, const T *x,
                                       const T *grad_y, T *grad_w) {
    const int64_t k = g->kernel_h * g->kernel_w * g->in_channels;
    const int64_t cout = g->out_channels;
    const int64_t total = g->batch * g->out_height * g->out_width;
    const int64_t size = k * cout;
    AG_DIRECT direct;
    AG_NAME(tile_job) job;
    if (total == 0) {
        memset(grad_w, 0, (size_t)size * sizeof(T));
        return 0;
    }
    if (is_pointwise(g)) {
        AG_GEMM(1, 0, k, cout, total, (T)1, x, k, grad_y, cout, (T)0, grad_w, cout);
        return 0;
    }
    AG_DIRECT_SELECT(ag_get_simd_level(), &direct);
    if (AG_NAME(winograd_wanted)(g, direct.backward_weight != NULL && cout % 16 == 0) &&
            AG_NAME(all_finite)(x, g->batch * g->height * g->width * g->in_channels) &&
            AG_NAME(all_finite)(grad_y, total * cout)) {
        const int status = AG_WINOGRAD_WEIGHT(g, x, grad_y, grad_w);
        if (status != 0) return status < 0 ? -1 : 0;
    }
    if (direct.backward_weight != NULL && AG_NAME(all_finite)(grad_y, total * cout) &&
            direct.backward_weight(g, x, grad_y, grad_w) > 0)
        return 0;
    job.plan = plan_tiles(g, total, 1);
    if (job.plan.threads <= 1) {
        const int64_t step = job.plan.step;
        T *col = (T *)malloc((size_t)(step * k) * sizeof(T));
        if (col == NULL) return -1;
        for (int64_t p0 = 0; p0 < total; p0 += step) {
            const int64_t rows = total - p0 < step ? total - p0 : step;
            AG_NAME(im2col)(g, x, col, p0, rows);
            AG_GEMM(1, 0, k, cout, rows, (T)1, col, k, grad_y + p0 * cout, cout,
                    p0 == 0 ? (T)0 : (T)1, grad_w, cout);
        }
        free(col);
        return 0;
    }
    /* Room for the partials of the largest team that can start (the one asked for);
     * the threads sum only those of the team that did. The partials are added in
     * thread order, so the result does not depend on timing. */
    job.partials = (T *)malloc((size_t)((job.plan.threads - 1) * size) * sizeof(T));
    if (job.partials == NULL) return -1;
    job.g = g; job.x = x; job.grad_y = grad_y; job.w = NULL; job.out = grad_w;
    job.failed = 0;
    ag_parallel(job.plan.threads, AG_NAME(backward_weight_tiles), &job);
    free(job.partials);
    return job.failed ? -1 : 0;
}
