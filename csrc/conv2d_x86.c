/* conv2d_x86.c: the float32 direct NHWC convolution kernels, written with AVX-512F
 * intrinsics (see conv2d_internal.h for the contract, conv2d.c for the portable driver
 * that calls them and takes im2col + GEMM for everything else).
 *
 * Each function that uses AVX-512 carries its own target attribute instead of the
 * build using -mavx512f: the rest of the extension stays baseline x86-64, and the
 * driver only calls these after ag_get_simd_level() (clamped to the CPU's) said 2.
 */
#include <stdlib.h>
#include <string.h>
#include "conv2d_internal.h"
#include "parallel.h"

#ifdef AG_HAVE_CONV2D_X86
#include <immintrin.h>

/* ---- direct NHWC convolution for float32 on AVX-512 ---------------------------------
 *
 * im2col + GEMM copies every input pixel kh*kw times into the col matrix and the GEMM
 * then packs that matrix again; the direct kernel reads the input where it lies. An
 * output tile of `rw` neighbouring pixels x 16*nb output channels lives in zmm
 * registers; for every (kh, kw, c_in) it loads nb vectors of W and broadcasts one input
 * value per pixel, so each weight vector feeds rw FMAs and each broadcast nb.
 *
 * Used when the CPU has AVX-512 (and the SIMD level is not forced lower) for
 *   - the forward pass when c_out is a multiple of 16,
 *   - the backward input when c_in is a multiple of 16 and the stride is 1: it is a
 *     forward convolution of the zero-padded output gradient with the flipped,
 *     channel-transposed kernel,
 *   - the backward weight when c_out is a multiple of 16: registers hold a block of
 *     grad_w while the pixels of an image stream past (below 8 input channels, a block
 *     spans a whole kernel row, its kw columns merged with the channels).
 * Everything else takes the im2col path.
 *
 * Memory, measured on the seed CNN's second layer (batch 100, 14x14x32 -> 64, 5x5):
 *   - W is packed once per call into blocks of 16*nb output channels,
 *     [block][kh][kw][c_in][16*nb], so a tile streams its weights contiguously and one
 *     (block, kh) slice (5*32*32 floats = 20 KiB there) stays in L1 while the rows of a
 *     chunk pass over it (kh outermost in a chunk; tiles add into y, which the chunk
 *     keeps in L1/L2).
 *   - Each thread zero-pads one image at a time into its own buffer (41 KiB there)
 *     instead of padding the whole batch (4 MiB) up front: the tiles then read an input
 *     that is already in L1/L2, and the batch-sized copy is gone.
 *   - Every array a tile loads vectors from or stores vectors to is 64-byte aligned
 *     (the bridge allocates the outputs so; see alloc_aligned_f32 for the rest).
 *   - The next piece of work is prefetched while the current one runs.
 *   - No multiply-adds with padding zeros: kernel rows that fall on padding rows are
 *     skipped (forward, backward input), as are output rows and columns whose input
 *     is padding (backward weight); 'same' 5x5 padding of a 14x14 image makes 8.6% of
 *     the forward's products and 16.5% of the weight gradient's zeros.
 * One thread, that layer, fwd / bwd input / bwd weight: 13.6 / 13.7 / 16.2 ms before
 * this layout, about 11 / 11 / 10.5 ms after (python -m benchmarks.bench_conv
 * --threads 1, a shared machine; the FMA peak of one core measured 225 GFLOP/s).
 */

#define DIRECT_MAX_PIXELS 14
/* Output rows that share one pass over the kernel rows (see direct_run). */
#define DIRECT_CHUNK_ROWS 4
/* Output rows per pass of the weight-gradient tiles: 7 rows of the seed CNN's grad_y
 * (25 KiB) stay in L1 while every (kh, kw, c_in) tile reads them; a whole image (50 KiB)
 * streamed from L2 and was slower (13.5 -> 12.5 ms there). */
#define DIRECT_WEIGHT_CHUNK_ROWS 7

/* 64-byte aligned buffers. malloc (and numpy) give 16-byte alignment, with which
 * three of every four zmm loads of a packed weight row straddle two cache lines. */
static float *alloc_aligned_f32(int64_t count) {
    unsigned char *raw = (unsigned char *)malloc((size_t)count * sizeof(float) + 64 + sizeof(void *));
    unsigned char *aligned;
    if (raw == NULL) return NULL;
    aligned = raw + sizeof(void *);
    aligned += (64 - (uintptr_t)aligned % 64) % 64;
    ((void **)aligned)[-1] = raw;
    return (float *)aligned;
}

static void free_aligned_f32(float *p) {
    if (p != NULL) free(((void **)p)[-1]);
}

/* Memory the next piece of work will touch first, prefetched a few lines after each
 * tile of the current piece: without it the first tiles of each image stall on main
 * memory (about 4% of the weight gradient on the seed CNN's second layer). */
typedef struct {
    const char *start;
    int64_t bytes, done;
} prefetch_stream;

static prefetch_stream prefetch_plan(const void *start, int64_t bytes) {
    prefetch_stream s;
    s.start = (const char *)start;
    s.bytes = start == NULL ? 0 : bytes;
    s.done = 0;
    return s;
}

/* Issue prefetches until `fraction` (tiles done / tiles in the piece) of the stream is. */
static void prefetch_read(prefetch_stream *s, int64_t tiles_done, int64_t tiles) {
    const int64_t target = s->bytes * tiles_done / tiles;
    for (; s->done < target; s->done += 64) __builtin_prefetch(s->start + s->done, 0, 2);
}

static void prefetch_write(prefetch_stream *s, int64_t tiles_done, int64_t tiles) {
    const int64_t target = s->bytes * tiles_done / tiles;
    for (; s->done < target; s->done += 64) __builtin_prefetch(s->start + s->done, 1, 2);
}

typedef struct {
    const float *x;         /* input [batch, height, width, c_in], not padded */
    int64_t height, width, cin, pad_top, pad_left;
    int64_t padded_h, padded_w;   /* the zero-padded image the tiles read */
    const float *w;         /* packed [c_out / block][kh][kw][c_in][block] */
    int64_t kh, kw, cout, block;
    int64_t stride_h, stride_w;
    float *y;               /* [batch, out_h, out_w, c_out] */
    int64_t batch, out_h, out_w;
} direct_problem;

/* One tile: RW output pixels x 16*NB channels at `out` (pixel stride cout), summed over
 * kh_n consecutive kernel rows: x_row is the padded input row under the tile's first
 * pixel for the first of them (the next ones x_step further), w_slice the packed
 * (block, kh) slice [kw][c_in][16*NB] (the next ones w_step further). first: store
 * instead of add into out.
 * NB and RW are literals in each instance, so the loops unroll fully and the
 * accumulators live in zmm registers. */
#define DIRECT_TILE(NB, RW)                                                              \
__attribute__((target("avx512f")))                                                      \
static void direct_tile_##NB##_##RW(const float *x_row, int64_t pixel_step, int64_t cin, \
                                    const float *w_slice, int64_t kw_n, float *out,     \
                                    int64_t cout, int first, int64_t kh_n,              \
                                    int64_t x_step, int64_t w_step) {                   \
    __m512 acc[NB][RW];                                                                 \
    _Pragma("GCC unroll 16")                                                            \
    for (int j = 0; j < NB; j++)                                                        \
        _Pragma("GCC unroll 16")                                                        \
        for (int r = 0; r < RW; r++)                                                    \
            acc[j][r] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(out + r * cout + 16 * j); \
    for (int64_t kh = 0; kh < kh_n; kh++)                                               \
    for (int64_t kw = 0; kw < kw_n; kw++) {                                             \
        const float *xs = x_row + kh * x_step + kw * cin;                               \
        const float *ws = w_slice + kh * w_step + kw * cin * (16 * NB);                 \
        /* two channels per trip: the loop overhead hides behind twice the FMAs */      \
        _Pragma("GCC unroll 2")                                                         \
        for (int64_t c = 0; c < cin; c++) {                                             \
            __m512 wv[NB];                                                              \
            _Pragma("GCC unroll 16")                                                    \
            for (int j = 0; j < NB; j++) wv[j] = _mm512_loadu_ps(ws + c * (16 * NB) + 16 * j); \
            _Pragma("GCC unroll 16")                                                    \
            for (int r = 0; r < RW; r++) {                                              \
                const __m512 xv = _mm512_set1_ps(xs[r * pixel_step + c]);               \
                _Pragma("GCC unroll 16")                                                \
                for (int j = 0; j < NB; j++)                                            \
                    acc[j][r] = _mm512_fmadd_ps(xv, wv[j], acc[j][r]);                  \
            }                                                                           \
        }                                                                               \
    }                                                                                   \
    _Pragma("GCC unroll 16")                                                            \
    for (int r = 0; r < RW; r++)                                                        \
        _Pragma("GCC unroll 16")                                                        \
        for (int j = 0; j < NB; j++) _mm512_storeu_ps(out + r * cout + 16 * j, acc[j][r]); \
}

typedef void (*direct_tile_fn)(const float *, int64_t, int64_t, const float *, int64_t,
                               float *, int64_t, int, int64_t, int64_t, int64_t);

#define DIRECT_TILES_6(NB) \
    DIRECT_TILE(NB, 1) DIRECT_TILE(NB, 2) DIRECT_TILE(NB, 3) DIRECT_TILE(NB, 4) \
    DIRECT_TILE(NB, 5) DIRECT_TILE(NB, 6)
#define DIRECT_TILES_14(NB) DIRECT_TILES_6(NB) \
    DIRECT_TILE(NB, 7) DIRECT_TILE(NB, 8) DIRECT_TILE(NB, 9) DIRECT_TILE(NB, 10) \
    DIRECT_TILE(NB, 11) DIRECT_TILE(NB, 12) DIRECT_TILE(NB, 13) DIRECT_TILE(NB, 14)
DIRECT_TILES_14(1)
DIRECT_TILES_14(2)
DIRECT_TILES_6(4)

#define DIRECT_TILE_ROW_6(NB) NULL, direct_tile_##NB##_1, direct_tile_##NB##_2, \
    direct_tile_##NB##_3, direct_tile_##NB##_4, direct_tile_##NB##_5, direct_tile_##NB##_6
#define DIRECT_TILE_ROW_14(NB) DIRECT_TILE_ROW_6(NB), direct_tile_##NB##_7, \
    direct_tile_##NB##_8, direct_tile_##NB##_9, direct_tile_##NB##_10, direct_tile_##NB##_11, \
    direct_tile_##NB##_12, direct_tile_##NB##_13, direct_tile_##NB##_14
/* [nb index][pixels]: nb index 0, 1, 2 for 1, 2, 4 vectors. Register budget (32 zmm):
 * nb * pixels accumulators + nb weight vectors + 1 broadcast, so 4 vectors go up to 6
 * pixels and 1 or 2 vectors up to 14. */
static const direct_tile_fn direct_tiles[3][DIRECT_MAX_PIXELS + 1] = {
    {DIRECT_TILE_ROW_14(1)},
    {DIRECT_TILE_ROW_14(2)},
    {DIRECT_TILE_ROW_6(4), NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL},
};

/* Output channels per weight block for c_out (a multiple of 16). 32 (2 vectors x up to
 * 14 pixels: 28 accumulators, 2 + 14 loads per 28 FMAs) beat 64 (4 vectors x up to 6
 * pixels) on the seed CNN: a whole 14-pixel row per tile, and half the W slice in L1. */
static int64_t direct_block(int64_t cout) {
    return cout % 32 == 0 ? 32 : 16;
}

/* dst [dst_h, dst_w, c] = one image src [src_h, src_w, c] placed at (top, left), zeros
 * elsewhere; rows or columns of src that fall outside dst are dropped. */
static void pad_image_f32(const float *src, int64_t src_h, int64_t src_w, int64_t c,
                          float *dst, int64_t dst_h, int64_t dst_w, int64_t top, int64_t left) {
    const int64_t j_lo = left < 0 ? 0 : left;
    const int64_t j_hi = left + src_w < dst_w ? left + src_w : dst_w;
    for (int64_t i = 0; i < dst_h; i++) {
        const int64_t si = i - top;
        float *row = dst + i * dst_w * c;
        if (si < 0 || si >= src_h || j_hi <= j_lo) {
            memset(row, 0, (size_t)(dst_w * c) * sizeof(float));
            continue;
        }
        memset(row, 0, (size_t)(j_lo * c) * sizeof(float));
        memcpy(row + j_lo * c, src + (si * src_w + j_lo - left) * c,
               (size_t)((j_hi - j_lo) * c) * sizeof(float));
        memset(row + j_hi * c, 0, (size_t)((dst_w - j_hi) * c) * sizeof(float));
    }
}

/* How many groups of consecutive items (images, or image row chunks) `threads` threads
 * share: one per thread would let a thread that the OS descheduled (the machine is
 * shared) hold up the whole call, so busy machines get several groups per thread, taken
 * first come first served; each group is still long enough for the prefetching and the
 * per-image padding to pay off. */
static int64_t work_groups(int64_t items, int threads) {
    const int64_t groups = threads > 1 ? 4 * (int64_t)threads : 1;
    return groups < items ? groups : items;
}

typedef struct {
    const direct_problem *problem;
    int64_t groups;
    int failed;
} direct_run_job;

/* One thread's part of direct_run: it takes groups first come first served. */
static void direct_run_region(void *job_pointer, int thread, int team) {
    direct_run_job *job = (direct_run_job *)job_pointer;
    const direct_problem *p = job->problem;
    const int64_t groups = job->groups;
    const int64_t block = p->block;
    const int nb_index = block == 64 ? 2 : (block == 32 ? 1 : 0);
    const int64_t max_pixels = nb_index == 2 ? 6 : DIRECT_MAX_PIXELS;
    const int64_t pixel_blocks = (p->out_w + max_pixels - 1) / max_pixels;
    const int64_t chunks = (p->out_h + DIRECT_CHUNK_ROWS - 1) / DIRECT_CHUNK_ROWS;
    const int64_t items = p->batch * chunks;
    const int64_t image = p->padded_h * p->padded_w * p->cin;
    /* Few input channels (the seed CNN's first layer has one): a tile per kernel row
     * would load and store its accumulators for only kw * c_in multiply-adds a pixel,
     * so each tile sums the whole window instead (its weights, kh * kw * c_in * block
     * floats, 3 KiB there, stay in L1 anyway). That layer: 2.3 -> 1.3 ms on one thread. */
    const int whole_window = p->cin < 8;
    (void)thread; (void)team;
    {
        float *padded = alloc_aligned_f32(image);
        int64_t group, current = -1;
        if (padded == NULL) {
            AG_OMP("omp atomic write")
            job->failed = 1;
        }
        AG_OMP("omp for schedule(dynamic, 1)")
        for (group = 0; group < groups; group++) {
            const int64_t i_begin = items * group / groups, i_end = items * (group + 1) / groups;
            for (int64_t item = i_begin; item < i_end && padded != NULL; item++) {
                const int64_t n = item / chunks;
                const int64_t oh0 = item % chunks * DIRECT_CHUNK_ROWS;
                const int64_t oh1 = oh0 + DIRECT_CHUNK_ROWS < p->out_h ? oh0 + DIRECT_CHUNK_ROWS : p->out_h;
                float *y_image = p->y + n * p->out_h * p->out_w * p->cout;
                const int64_t next_n = (item + 1) / chunks, next_oh0 = (item + 1) % chunks * DIRECT_CHUNK_ROWS;
                const int64_t next_rows = p->out_h - next_oh0 < DIRECT_CHUNK_ROWS ? p->out_h - next_oh0 : DIRECT_CHUNK_ROWS;
                const int64_t tiles = p->cout / block * (whole_window ? 1 : p->kh) * (oh1 - oh0) * pixel_blocks;
                int64_t tiles_done = 0;
                /* the next item's output rows, and its input image when that changes */
                prefetch_stream next_y = prefetch_plan(
                    item + 1 < i_end ? p->y + ((next_n * p->out_h + next_oh0) * p->out_w) * p->cout : NULL,
                    next_rows * p->out_w * p->cout * (int64_t)sizeof(float));
                prefetch_stream next_x = prefetch_plan(
                    item + 1 < i_end && next_n != n ? p->x + next_n * p->height * p->width * p->cin : NULL,
                    p->height * p->width * p->cin * (int64_t)sizeof(float));
                if (n != current) {
                    pad_image_f32(p->x + n * p->height * p->width * p->cin, p->height, p->width,
                                  p->cin, padded, p->padded_h, p->padded_w, p->pad_top, p->pad_left);
                    current = n;
                }
                for (int64_t co0 = 0; whole_window && co0 < p->cout; co0 += block) {
                    const float *w_block = p->w + co0 * p->kh * p->kw * p->cin;
                    for (int64_t oh = oh0; oh < oh1; oh++) {
                        /* every kernel row that lands on a real input row, in one tile;
                         * the kernel columns merged with the channels (one loop of
                         * kw * c_in, the window row's cells contiguous in the padded row) */
                        const int64_t top = p->pad_top - oh * p->stride_h;
                        const int64_t bottom = p->pad_top + p->height - oh * p->stride_h;
                        const int64_t kh_lo = top > 0 ? top : 0;
                        const int64_t kh_hi = bottom < p->kh ? bottom : p->kh;
                        const float *x_row = padded + (oh * p->stride_h + kh_lo) * p->padded_w * p->cin;
                        float *y_row = y_image + oh * p->out_w * p->cout + co0;
                        for (int64_t b = 0; b < pixel_blocks; b++) {
                            const int64_t ow0 = p->out_w * b / pixel_blocks;
                            const int64_t ow1 = p->out_w * (b + 1) / pixel_blocks;
                            if (kh_lo < kh_hi)
                                direct_tiles[nb_index][ow1 - ow0](
                                    x_row + ow0 * p->stride_w * p->cin, p->stride_w * p->cin,
                                    p->kw * p->cin, w_block + kh_lo * p->kw * p->cin * block, 1,
                                    y_row + ow0 * p->cout, p->cout, 1, kh_hi - kh_lo,
                                    p->padded_w * p->cin, p->kw * p->cin * block);
                            else  /* the whole window is padding */
                                for (int64_t ow = ow0; ow < ow1; ow++)
                                    memset(y_row + ow * p->cout, 0, (size_t)block * sizeof(float));
                            tiles_done++;
                            prefetch_write(&next_y, tiles_done, tiles);
                            prefetch_read(&next_x, tiles_done, tiles);
                        }
                    }
                }
                for (int64_t co0 = 0; !whole_window && co0 < p->cout; co0 += block) {
                    const float *w_block = p->w + co0 * p->kh * p->kw * p->cin;
                    for (int64_t kh = 0; kh < p->kh; kh++) {
                        const float *w_slice = w_block + kh * p->kw * p->cin * block;
                        for (int64_t oh = oh0; oh < oh1; oh++) {
                            /* kernel rows that land on real input rows (the others read only padding
                             * zeros: 6 of the 70 row passes of a 14-row image with 'same' 5x5
                             * padding); the first of them stores */
                            const int64_t top = p->pad_top - oh * p->stride_h;
                            const int64_t bottom = p->pad_top + p->height - oh * p->stride_h;
                            const int64_t kh_lo = top > 0 ? top : 0;
                            const int64_t kh_hi = bottom < p->kh ? bottom : p->kh;
                            const float *x_row = padded + (oh * p->stride_h + kh) * p->padded_w * p->cin;
                            float *y_row = y_image + oh * p->out_w * p->cout + co0;
                            if (kh_lo >= kh_hi && kh == 0)  /* the whole window is padding */
                                for (int64_t ow = 0; ow < p->out_w; ow++)
                                    memset(y_row + ow * p->cout, 0, (size_t)block * sizeof(float));
                            for (int64_t b = 0; b < pixel_blocks; b++) {
                                const int64_t ow0 = p->out_w * b / pixel_blocks;
                                const int64_t ow1 = p->out_w * (b + 1) / pixel_blocks;
                                if (kh >= kh_lo && kh < kh_hi)
                                    direct_tiles[nb_index][ow1 - ow0](
                                        x_row + ow0 * p->stride_w * p->cin, p->stride_w * p->cin, p->cin,
                                        w_slice, p->kw, y_row + ow0 * p->cout, p->cout, kh == kh_lo, 1, 0, 0);
                                tiles_done++;
                                prefetch_write(&next_y, tiles_done, tiles);
                                prefetch_read(&next_x, tiles_done, tiles);
                            }
                        }
                    }
                }
            }
        }
        free_aligned_f32(padded);
    }
}

/* Threads take groups of consecutive (image, chunk of output rows) items, so each pads
 * an image into its own buffer once per group. Every output element is computed by the
 * same arithmetic whichever thread runs it, and however many threads OpenMP grants.
 * Returns -1 when a buffer could not be had. */
static int direct_run(const direct_problem *p) {
    const int64_t chunks = (p->out_h + DIRECT_CHUNK_ROWS - 1) / DIRECT_CHUNK_ROWS;
    const int64_t items = p->batch * chunks;
    const double work = (double)(p->batch * p->out_h * p->out_w) *
                        (double)(p->kh * p->kw * p->cin * p->cout);
    int threads = ag_threads_for(work, AG_CONV2D_PARALLEL_MIN_WORK);
    direct_run_job job;
    if (threads > items) threads = (int)items;
    job.problem = p;
    job.groups = work_groups(items, threads);
    job.failed = 0;
    ag_parallel(threads, direct_run_region, &job);
    return job.failed ? -1 : 0;
}

/* Weight-gradient tile: grad_w[kh, kw, ci0 .. ci0+CI, co0 .. co0+16*NB] += the sum over
 * output rows oh0 .. oh1-1 of one image of x(pixel shifted by kh, kw)[ci] *
 * grad_y(pixel)[co]. x is the image's padded copy at (kh, kw, ci0), grad_y the image's
 * gradient at co0, gw the grad_w block. CI input channels x NB vectors of output channels
 * stay in registers while the pixels stream. */
#define DIRECT_WEIGHT_TILE(NB, CI)                                                       \
__attribute__((target("avx512f")))                                                      \
static void direct_weight_tile_##NB##_##CI(const float *x, int64_t row_step,            \
                                           int64_t pixel_step, const float *grad_y,     \
                                           int64_t out_w, int64_t cout, int64_t oh0,    \
                                           int64_t oh1, int64_t ow0, int64_t ow1,       \
                                           float *gw) {                                 \
    __m512 acc[NB][CI];                                                                 \
    _Pragma("GCC unroll 16")                                                            \
    for (int i = 0; i < CI; i++)                                                        \
        _Pragma("GCC unroll 16")                                                        \
        for (int j = 0; j < NB; j++) acc[j][i] = _mm512_loadu_ps(gw + i * cout + 16 * j); \
    for (int64_t oh = oh0; oh < oh1; oh++) {                                            \
        const float *xs = x + oh * row_step;                                            \
        const float *gs = grad_y + oh * out_w * cout;                                   \
        _Pragma("GCC unroll 2")                                                         \
        for (int64_t ow = ow0; ow < ow1; ow++) {                                        \
            __m512 gv[NB];                                                              \
            _Pragma("GCC unroll 16")                                                    \
            for (int j = 0; j < NB; j++) gv[j] = _mm512_loadu_ps(gs + ow * cout + 16 * j); \
            _Pragma("GCC unroll 16")                                                    \
            for (int i = 0; i < CI; i++) {                                              \
                const __m512 xv = _mm512_set1_ps(xs[ow * pixel_step + i]);              \
                _Pragma("GCC unroll 16")                                                \
                for (int j = 0; j < NB; j++) acc[j][i] = _mm512_fmadd_ps(xv, gv[j], acc[j][i]); \
            }                                                                           \
        }                                                                               \
    }                                                                                   \
    _Pragma("GCC unroll 16")                                                            \
    for (int i = 0; i < CI; i++)                                                        \
        _Pragma("GCC unroll 16")                                                        \
        for (int j = 0; j < NB; j++) _mm512_storeu_ps(gw + i * cout + 16 * j, acc[j][i]); \
}

typedef void (*direct_weight_tile_fn)(const float *, int64_t, int64_t, const float *, int64_t,
                                      int64_t, int64_t, int64_t, int64_t, int64_t, float *);
#define DIRECT_WEIGHT_TILES_6(NB) \
    DIRECT_WEIGHT_TILE(NB, 1) DIRECT_WEIGHT_TILE(NB, 2) DIRECT_WEIGHT_TILE(NB, 3) \
    DIRECT_WEIGHT_TILE(NB, 4) DIRECT_WEIGHT_TILE(NB, 5) DIRECT_WEIGHT_TILE(NB, 6)
#define DIRECT_WEIGHT_TILES_12(NB) DIRECT_WEIGHT_TILES_6(NB) \
    DIRECT_WEIGHT_TILE(NB, 7) DIRECT_WEIGHT_TILE(NB, 8) DIRECT_WEIGHT_TILE(NB, 9) \
    DIRECT_WEIGHT_TILE(NB, 10) DIRECT_WEIGHT_TILE(NB, 11) DIRECT_WEIGHT_TILE(NB, 12)
DIRECT_WEIGHT_TILES_12(1)
DIRECT_WEIGHT_TILES_12(2)
DIRECT_WEIGHT_TILES_6(4)

#define DIRECT_WEIGHT_ROW(NB) {NULL, direct_weight_tile_##NB##_1, direct_weight_tile_##NB##_2, \
    direct_weight_tile_##NB##_3, direct_weight_tile_##NB##_4, direct_weight_tile_##NB##_5, \
    direct_weight_tile_##NB##_6
/* [nb index][input channels]; the same register budget as the forward tiles */
static const direct_weight_tile_fn direct_weight_tiles[3][13] = {
    DIRECT_WEIGHT_ROW(1), direct_weight_tile_1_7, direct_weight_tile_1_8, direct_weight_tile_1_9,
    direct_weight_tile_1_10, direct_weight_tile_1_11, direct_weight_tile_1_12},
    DIRECT_WEIGHT_ROW(2), direct_weight_tile_2_7, direct_weight_tile_2_8, direct_weight_tile_2_9,
    direct_weight_tile_2_10, direct_weight_tile_2_11, direct_weight_tile_2_12},
    DIRECT_WEIGHT_ROW(4), NULL, NULL, NULL, NULL, NULL, NULL},
};

/* 1 when it handled the forward, 0 when not eligible, -1 when out of memory. */
int ag_conv2d_direct_forward_avx512_f32(const ag_conv2d_geometry *g, const float *x,
                                        const float *w, float *y) {
    const int64_t kh = g->kernel_h, kw = g->kernel_w, cin = g->in_channels, cout = g->out_channels;
    const int64_t k = kh * kw * cin;
    direct_problem p;
    float *packed;
    int status;
    if (cout % 16 != 0) return 0;
    p.block = direct_block(cout);
    packed = alloc_aligned_f32(k * cout);
    if (packed == NULL) return -1;
    /* packed[block b][row r of W][j] = W[r][b * block + j] */
    for (int64_t co0 = 0; co0 < cout; co0 += p.block)
        for (int64_t r = 0; r < k; r++)
            memcpy(packed + co0 * k + r * p.block, w + r * cout + co0, (size_t)p.block * sizeof(float));
    p.x = x; p.height = g->height; p.width = g->width; p.cin = cin;
    p.pad_top = g->pad_top; p.pad_left = g->pad_left;
    p.padded_h = (g->out_height - 1) * g->stride_h + kh;
    p.padded_w = (g->out_width - 1) * g->stride_w + kw;
    p.w = packed; p.kh = kh; p.kw = kw; p.cout = cout;
    p.stride_h = g->stride_h; p.stride_w = g->stride_w;
    p.y = y; p.batch = g->batch; p.out_h = g->out_height; p.out_w = g->out_width;
    status = direct_run(&p);
    free_aligned_f32(packed);
    return status < 0 ? -1 : 1;
}

/* The smallest o >= 0 with o * stride >= edge: from there on, output positions see
 * input at or past `edge` (an index into the padded image). */
static int64_t first_inside(int64_t edge, int64_t stride) {
    return edge <= 0 ? 0 : (edge + stride - 1) / stride;
}

typedef struct {
    const ag_conv2d_geometry *g;
    const float *x, *grad_y;
    float *grad_w, *partials;
    int64_t groups;
    int failed;
} direct_weight_job;

/* One thread's part of ag_conv2d_direct_backward_weight_avx512_f32: groups first come first served, then
 * its share of the sum of the partials. */
static void direct_weight_region(void *job_pointer, int thread, int team) {
    direct_weight_job *job = (direct_weight_job *)job_pointer;
    const ag_conv2d_geometry *g = job->g;
    const float *x = job->x, *grad_y = job->grad_y;
    float *grad_w = job->grad_w, *partials = job->partials;
    const int64_t groups = job->groups;
    const int64_t kh_n = g->kernel_h, kw_n = g->kernel_w;
    const int64_t cin = g->in_channels, cout = g->out_channels;
    const int64_t out_h = g->out_height, out_w = g->out_width;
    const int64_t size = kh_n * kw_n * cin * cout;
    const int64_t padded_h = (out_h - 1) * g->stride_h + kh_n;
    const int64_t padded_w = (out_w - 1) * g->stride_w + kw_n;
    const int nb_index = cout % 64 == 0 ? 2 : (cout % 32 == 0 ? 1 : 0);
    const int64_t channels = nb_index == 2 ? 64 : (nb_index == 1 ? 32 : 16);
    const int64_t max_ci = nb_index == 2 ? 6 : 12;
    /* With few input channels a tile of one (kh, kw) would hold too few accumulators
     * (c_in = 1: 2 of them, load-bound). The kernel columns then merge with the input
     * channels: x(pixel ow shifted by kw)[ci] is the padded row's element
     * ow * stride_w * c_in + (kw * c_in + ci), and grad_w[kh, kw, ci] is row
     * kw * c_in + ci of grad_w[kh], so one tile over the span kw_n * c_in of "channels"
     * covers a whole kernel row. Its columns include the padding, whose zeros add
     * nothing. The seed CNN's first layer (c_in = 1, 5x5): 5.4 -> 1.6 ms on one thread,
     * where im2col + GEMM ran before. */
    const int merged = cin < 8;
    const int64_t span = merged ? kw_n * cin : cin, kw_steps = merged ? 1 : kw_n;
    /* input channels split evenly: 32 as 6 x 5-6, not 5 x 6 + 2 */
    const int64_t ci_tiles = (span + max_ci - 1) / max_ci;
    const int64_t chunk = DIRECT_WEIGHT_CHUNK_ROWS;
    float *padded = alloc_aligned_f32(padded_h * padded_w * cin);
    /* grad_y read by the tiles: the caller's when 64-byte aligned, else an aligned
     * copy of each image (its 4 vectors a pixel would each straddle two lines) */
    const int copy_gy = (uintptr_t)grad_y % 64 != 0;
    float *gy_copy = copy_gy ? alloc_aligned_f32(out_h * out_w * cout) : NULL;
    int64_t group;
    if (padded == NULL || (copy_gy && gy_copy == NULL)) {
        AG_OMP("omp atomic write")
        job->failed = 1;
        free_aligned_f32(padded);
        padded = NULL;
    }
    AG_OMP("omp for schedule(dynamic, 1)")
    for (group = 0; group < groups; group++) {
        float *mine = group == 0 ? grad_w : partials + (group - 1) * size;
        const int64_t n_begin = g->batch * group / groups, n_end = g->batch * (group + 1) / groups;
        memset(mine, 0, (size_t)size * sizeof(float));
        for (int64_t n = n_begin; n < n_end && padded != NULL; n++) {
            const float *gy_next = grad_y + n * out_h * out_w * cout;
            const float *gy_image = gy_next;
            if (copy_gy) {
                memcpy(gy_copy, gy_image, (size_t)(out_h * out_w * cout) * sizeof(float));
                gy_image = gy_copy;
            }
            pad_image_f32(x + n * g->height * g->width * cin, g->height, g->width, cin,
                          padded, padded_h, padded_w, g->pad_top, g->pad_left);
            for (int64_t oh0 = 0; oh0 < out_h; oh0 += chunk) {
                const int64_t oh1 = oh0 + chunk < out_h ? oh0 + chunk : out_h;
                const int64_t tiles = kh_n * kw_steps * ci_tiles;
                const int last = oh1 == out_h;
                /* the next chunk's grad_y rows (of this image or the next), and the
                 * next image's input before the last chunk ends */
                const int64_t next_rows = last ? (chunk < out_h ? chunk : out_h)
                                               : (oh1 + chunk < out_h ? oh1 + chunk : out_h) - oh1;
                int64_t tiles_done = 0;
                prefetch_stream next_gy = prefetch_plan(
                    !last || n + 1 < n_end ? gy_next + (last ? out_h : oh1) * out_w * cout : NULL,
                    next_rows * out_w * cout * (int64_t)sizeof(float));
                prefetch_stream next_x = prefetch_plan(
                    last && n + 1 < n_end ? x + (n + 1) * g->height * g->width * cin : NULL,
                    g->height * g->width * cin * (int64_t)sizeof(float));
                for (int64_t kh = 0; kh < kh_n; kh++)
                    for (int64_t kw = 0; kw < kw_steps; kw++) {
                        /* the output rows and columns whose input under (kh, kw) is a real
                         * pixel: the rest would add products with padding zeros */
                        const int64_t oh_lo = first_inside(g->pad_top - kh, g->stride_h);
                        const int64_t oh_hi = first_inside(g->pad_top + g->height - kh, g->stride_h);
                        const int64_t ow_lo = merged ? 0 : first_inside(g->pad_left - kw, g->stride_w);
                        const int64_t ow_hi = merged ? out_w : first_inside(g->pad_left + g->width - kw, g->stride_w);
                        const int64_t rows_lo = oh_lo > oh0 ? oh_lo : oh0;
                        const int64_t rows_hi = oh_hi < oh1 ? oh_hi : oh1;
                        const int64_t cols_hi = ow_hi < out_w ? ow_hi : out_w;
                        for (int64_t t = 0; t < ci_tiles; t++) {
                            const int64_t ci0 = span * t / ci_tiles, ci1 = span * (t + 1) / ci_tiles;
                            tiles_done++;
                            prefetch_read(&next_gy, tiles_done, tiles);
                            prefetch_read(&next_x, tiles_done, tiles);
                            if (rows_lo >= rows_hi || ow_lo >= cols_hi) continue;
                            for (int64_t co0 = 0; co0 < cout; co0 += channels)
                                direct_weight_tiles[nb_index][ci1 - ci0](
                                    padded + (kh * padded_w + kw) * cin + ci0,
                                    g->stride_h * padded_w * cin, g->stride_w * cin,
                                    gy_image + co0, out_w, cout, rows_lo, rows_hi, ow_lo, cols_hi,
                                    mine + ((kh * kw_n + kw) * cin + ci0) * cout + co0);
                        }
                    }
            }
        }
    }
    free_aligned_f32(padded);
    free_aligned_f32(gy_copy);
    /* the omp for above ends with a barrier: every partial is complete */
    {
        int64_t begin, end;
        ag_share(size, thread, team, &begin, &end);
        for (int64_t t = 1; t < groups; t++) {
            const float *part = partials + (t - 1) * size;
            for (int64_t e = begin; e < end; e++) grad_w[e] += part[e];
        }
    }
}

/* grad_w = sum over images of the weight tiles. The images are cut into groups of
 * consecutive images (see work_groups); threads take groups first come first served,
 * each padding one image at a time into its own buffer and summing a group into that
 * group's partial (group 0's is grad_w). The partials are added in group order at the
 * end, so the result depends on the thread count but not on timing. 1 / 0 / -1 as
 * ag_conv2d_direct_forward_avx512_f32. */
int ag_conv2d_direct_backward_weight_avx512_f32(const ag_conv2d_geometry *g, const float *x,
                                                const float *grad_y, float *grad_w) {
    const int64_t cin = g->in_channels, cout = g->out_channels;
    const int64_t size = g->kernel_h * g->kernel_w * cin * cout;
    const double work = (double)(g->batch * g->out_height * g->out_width) * (double)size;
    int threads = g->batch > 1 ? ag_threads_for(work, AG_CONV2D_PARALLEL_MIN_WORK) : 1;
    direct_weight_job job;
    if (cout % 16 != 0) return 0;
    if (threads > g->batch) threads = (int)g->batch;
    job.g = g; job.x = x; job.grad_y = grad_y; job.grad_w = grad_w; job.partials = NULL;
    /* partials belong to groups, not threads: every group is summed (and its partial
     * written) whatever size of team runs them */
    job.groups = work_groups(g->batch, threads);
    job.failed = 0;
    if (job.groups > 1) {
        job.partials = alloc_aligned_f32((job.groups - 1) * size);
        if (job.partials == NULL) return -1;
    }
    ag_parallel(threads, direct_weight_region, &job);
    free_aligned_f32(job.partials);
    return job.failed ? -1 : 1;
}

/* grad_x = valid stride-1 correlation of grad_y, zero-padded by (kh-1-pad_top,
 * kw-1-pad_left) before, with W flipped in space and transposed in channels:
 * W'[a, b, co, ci] = W[kh-1-a, kw-1-b, ci, co], packed in blocks of input channels like
 * the forward's W. 1 / 0 / -1 as ag_conv2d_direct_forward_avx512_f32. */
int ag_conv2d_direct_backward_input_avx512_f32(const ag_conv2d_geometry *g, const float *grad_y,
                                               const float *w, float *grad_x) {
    const int64_t kh = g->kernel_h, kw = g->kernel_w, cin = g->in_channels, cout = g->out_channels;
    const int64_t pad_bottom = (g->out_height - 1) + kh - g->height - g->pad_top;
    const int64_t pad_right = (g->out_width - 1) + kw - g->width - g->pad_left;
    direct_problem p;
    float *packed;
    int status;
    if (cin % 16 != 0 || g->stride_h != 1 || g->stride_w != 1 ||
        g->pad_top > kh - 1 || g->pad_left > kw - 1 || pad_bottom < 0 || pad_right < 0 ||
        pad_bottom > kh - 1 || pad_right > kw - 1)
        return 0;
    p.block = direct_block(cin);
    packed = alloc_aligned_f32(kh * kw * cin * cout);
    if (packed == NULL) return -1;
    for (int64_t ci0 = 0; ci0 < cin; ci0 += p.block)
        for (int64_t a = 0; a < kh; a++)
            for (int64_t b = 0; b < kw; b++)
                for (int64_t co = 0; co < cout; co++) {
                    float *dst = packed + ci0 * kh * kw * cout + ((a * kw + b) * cout + co) * p.block;
                    const float *src = w + (((kh - 1 - a) * kw + (kw - 1 - b)) * cin + ci0) * cout + co;
                    for (int64_t j = 0; j < p.block; j++) dst[j] = src[j * cout];
                }
    p.x = grad_y; p.height = g->out_height; p.width = g->out_width; p.cin = cout;
    p.pad_top = kh - 1 - g->pad_top; p.pad_left = kw - 1 - g->pad_left;
    p.padded_h = g->height + kh - 1;
    p.padded_w = g->width + kw - 1;
    p.w = packed; p.kh = kh; p.kw = kw; p.cout = cin;
    p.stride_h = 1; p.stride_w = 1;
    p.y = grad_x; p.batch = g->batch; p.out_h = g->height; p.out_w = g->width;
    status = direct_run(&p);
    free_aligned_f32(packed);
    return status < 0 ? -1 : 1;
}
#endif
