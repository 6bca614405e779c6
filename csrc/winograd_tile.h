/* winograd_tile.h: one whole Winograd convolution F(m x m, 5 x 5) for one element type
 * at one SIMD level, written once in GCC vector extensions and included per
 * (element type, m, level) by winograd_level.h. The includer defines
 *   T            float / double
 *   WG_M         output tile side m (2 or 4); the input tile side is n = m + 4
 *   VBYTES       bytes of one vector (16 portable SSE2, 32 AVX2, 64 AVX-512)
 *   MR           tiles per GEMM micro-kernel (rows of accumulators)
 *   AG_NAME(x)   name mangling for the element type, m and level
 *
 * How (Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks"): one
 * output tile Y (m x m) of a stride-1 correlation of an n x n input tile d with a 5 x 5
 * kernel g is  Y = A^T [ (G g G^T) . (B^T d B) ] A,  '.' elementwise. Over channels the
 * elementwise product becomes, at each of the n*n tile positions xi, a GEMM
 *     M_xi [tiles, c_out] = V_xi [tiles, c_in] @ U_xi [c_in, c_out],
 * so the multiply-adds per output pixel and channel pair drop from 25 to n*n / (m*m)
 * (9 for m = 2, 4 for m = 4) plus the transforms. NHWC keeps the channels of a pixel
 * contiguous: every transform works on whole vectors of channels.
 *
 * Per call: U for all positions (the weights, once); then threads take blocks of
 * BLOCK tiles: input transform of the block into V (its own buffer), the n*n GEMMs
 * into M, the output transform into y. V and M of a block stay in L2.
 *
 * The transform matrices' zero entries are skipped at compile time: the loops over
 * the constant tables are fully unrolled and `if (table[i][k] != 0)` folds away. */

#define WG_N (WG_M + 4)
#define WG_NN (WG_N * WG_N)
#define VW ((int64_t)(VBYTES / sizeof(T)))
#define NR (4 * VW)

typedef T AG_NAME(vec) __attribute__((vector_size(VBYTES)));
#define VEC AG_NAME(vec)
/* The same vector at element alignment: loads from and stores to the caller's arrays. */
typedef T AG_NAME(uvec) __attribute__((vector_size(VBYTES), aligned(sizeof(T))));
#define UVEC AG_NAME(uvec)

#if WG_M == 2
/* Points 0, 1, -1, 2, -2, infinity. */
static const T AG_NAME(wg_at)[WG_M][WG_N] = {
    {1, 1, 1, 1, 1, 0},
    {0, 1, -1, 2, -2, 1}};
static const T AG_NAME(wg_g)[WG_N][5] = {
    {(T)1 / 4, 0, 0, 0, 0},
    {(T)-1 / 6, (T)-1 / 6, (T)-1 / 6, (T)-1 / 6, (T)-1 / 6},
    {(T)-1 / 6, (T)1 / 6, (T)-1 / 6, (T)1 / 6, (T)-1 / 6},
    {(T)1 / 24, (T)1 / 12, (T)1 / 6, (T)1 / 3, (T)2 / 3},
    {(T)1 / 24, (T)-1 / 12, (T)1 / 6, (T)-1 / 3, (T)2 / 3},
    {0, 0, 0, 0, 1}};
static const T AG_NAME(wg_bt)[WG_N][WG_N] = {
    {4, 0, -5, 0, 1, 0},
    {0, -4, -4, 1, 1, 0},
    {0, 4, -4, -1, 1, 0},
    {0, -2, -1, 2, 1, 0},
    {0, 2, -1, -2, 1, 0},
    {0, 4, 0, -5, 0, 1}};
/* F(5, 2) on the same points, for the weight gradient (its B^T is the one above). */
static const T AG_NAME(wg_at5)[5][WG_N] = {
    {1, 1, 1, 1, 1, 0},
    {0, 1, -1, 2, -2, 0},
    {0, 1, 1, 4, 4, 0},
    {0, 1, -1, 8, -8, 0},
    {0, 1, 1, 16, 16, 1}};
static const T AG_NAME(wg_ge)[WG_N][WG_M] = {
    {(T)1 / 4, 0},
    {(T)-1 / 6, (T)-1 / 6},
    {(T)-1 / 6, (T)1 / 6},
    {(T)1 / 24, (T)1 / 12},
    {(T)1 / 24, (T)-1 / 12},
    {0, 1}};
#elif WG_M == 4
#include "winograd_f4_tables.h"
#else
#error "winograd_tile.h: WG_M must be 2 or 4"
#endif

/* U[xi][c][k] (k padded to kp with zeros) = (G g G^T)[xi] of the kernel of input
 * channel c and output channel k. w is [5][5][c_in][c_out] (flipped = 0), or, for the
 * input gradient, the forward layer's [5][5][c_out][c_in] read flipped in both spatial
 * axes (flipped = 1): then this call's c is the layer's output channel. */
static void AG_NAME(weights)(const T *w, int flipped, int64_t cin, int64_t cout, int64_t kp,
                             T *scratch, T *u) {
    const T *g = w;
    int64_t c, k;
    if (flipped) {  /* scratch[a][b][c][k] = w[4 - a][4 - b][k][c] */
        for (int64_t a = 0; a < 25; a++)
            for (c = 0; c < cin; c++)
                for (k = 0; k < cout; k++)
                    scratch[(a * cin + c) * cout + k] = w[((24 - a) * cout + k) * cin + c];
        g = scratch;
    }
    for (c = 0; c < cin; c++) {
        T rows[WG_N][5][NR];  /* (G g)[i][b] for one chunk of output channels */
        for (int64_t k0 = 0; k0 < kp; k0 += NR) {
            const int64_t chunk = kp - k0 < NR ? kp - k0 : NR;
            const int64_t width = cout - k0 < chunk ? cout - k0 : chunk;
            for (int i = 0; i < WG_N; i++)
                for (int b = 0; b < 5; b++) {
                    for (k = 0; k < width; k++) {
                        T sum = 0;
                        for (int a = 0; a < 5; a++)
                            sum += AG_NAME(wg_g)[i][a] * g[((a * 5 + b) * cin + c) * cout + k0 + k];
                        rows[i][b][k] = sum;
                    }
                    for (; k < chunk; k++) rows[i][b][k] = 0;
                }
            for (int i = 0; i < WG_N; i++)
                for (int j = 0; j < WG_N; j++) {
                    T *out = u + ((int64_t)(i * WG_N + j) * cin + c) * kp + k0;
                    for (k = 0; k < chunk; k++) {
                        T sum = 0;
                        for (int b = 0; b < 5; b++) sum += rows[i][b][k] * AG_NAME(wg_g)[j][b];
                        out[k] = sum;
                    }
                }
        }
    }
}

/* What every thread of one call reads. */
typedef struct {
    const ag_conv2d_geometry *g;
    const T *x;
    const T *u;
    T *y;
    const T *grad_y;     /* weight gradient: the output gradient */
    T *sums;             /* weight gradient: one [n*n][c_in][kp] sum per thread */
    int64_t cp, kp, tiles_h, tiles_w, tiles, block;
    int failed;
} AG_NAME(wg_job);

/* V[xi][r][:] = (B^T d B)[xi] of tile `tile`, r its row in the block; d its n x n input
 * pixels, zeros outside the image. With c a multiple of the vector, the transform reads
 * the pixels where they lie (zeros from `zeros`); otherwise each pixel is first staged
 * channel-padded in `staged`. */
static void AG_NAME(input_tile)(const AG_NAME(wg_job) *job, int64_t tile, int64_t r, T *staged,
                                const T *zeros, T *v, int64_t block) {
    const ag_conv2d_geometry *g = job->g;
    const int64_t c = g->in_channels, cp = job->cp;
    const int64_t per_image = job->tiles_h * job->tiles_w;
    const int64_t image = tile / per_image, rest = tile % per_image;
    const int64_t row0 = rest / job->tiles_w * WG_M - g->pad_top;
    const int64_t col0 = rest % job->tiles_w * WG_M - g->pad_left;
    const T *pixel[WG_NN];
    for (int i = 0; i < WG_N; i++) {
        const int64_t row = row0 + i;
        for (int j = 0; j < WG_N; j++) {
            const int64_t col = col0 + j;
            const T *source = job->x + ((image * g->height + row) * g->width + col) * c;
            if (row < 0 || row >= g->height || col < 0 || col >= g->width) {
                pixel[i * WG_N + j] = zeros;
            } else if (c == cp) {
                pixel[i * WG_N + j] = source;
            } else {
                T *dst = staged + (i * WG_N + j) * cp;
                memcpy(dst, source, (size_t)c * sizeof(T));
                memset(dst + c, 0, (size_t)(cp - c) * sizeof(T));
                pixel[i * WG_N + j] = dst;
            }
        }
    }
    for (int64_t c0 = 0; c0 < cp; c0 += VW) {
        VEC t[WG_N][WG_N];
WG_UNROLL
        for (int j = 0; j < WG_N; j++) {  /* column by column: each pixel loaded once */
            VEC column[WG_N];
WG_UNROLL
            for (int k = 0; k < WG_N; k++) column[k] = *(const UVEC *)(pixel[k * WG_N + j] + c0);
WG_UNROLL
            for (int i = 0; i < WG_N; i++) {
                VEC sum = {0};
WG_UNROLL
                for (int k = 0; k < WG_N; k++)
                    if (AG_NAME(wg_bt)[i][k] != 0) sum += AG_NAME(wg_bt)[i][k] * column[k];
                t[i][j] = sum;
            }
        }
WG_UNROLL
        for (int i = 0; i < WG_N; i++)
WG_UNROLL
            for (int j = 0; j < WG_N; j++) {
                VEC sum = {0};
WG_UNROLL
                for (int k = 0; k < WG_N; k++)
                    if (AG_NAME(wg_bt)[j][k] != 0) sum += AG_NAME(wg_bt)[j][k] * t[i][k];
                *(VEC *)(v + ((int64_t)(i * WG_N + j) * block + r) * cp + c0) = sum;
            }
    }
}

/* M[xi][r0 .. r0+MR)[k0 .. k0+NR) = V[xi] rows @ U[xi] columns, over c channels. */
static void AG_NAME(micro)(const T *v, const T *u, T *m, int64_t c, int64_t cp, int64_t kp) {
    VEC acc[MR][4];
    for (int r = 0; r < MR; r++)
        for (int q = 0; q < 4; q++) acc[r][q] = (VEC){0};
    for (int64_t i = 0; i < c; i++) {
        const VEC *b = (const VEC *)(u + i * kp);
        const VEC b0 = b[0], b1 = b[1], b2 = b[2], b3 = b[3];
WG_UNROLL
        for (int r = 0; r < MR; r++) {
            const T a = v[r * cp + i];
            acc[r][0] += a * b0;
            acc[r][1] += a * b1;
            acc[r][2] += a * b2;
            acc[r][3] += a * b3;
        }
    }
    for (int r = 0; r < MR; r++)
        for (int q = 0; q < 4; q++) *(VEC *)(m + r * kp + q * VW) = acc[r][q];
}

/* The same for the last 2 vectors of columns (c_out padded to 2 vectors, not 4), over
 * 2 * MR rows: the same accumulator count. */
static void AG_NAME(micro2)(const T *v, const T *u, T *m, int64_t c, int64_t cp, int64_t kp) {
    VEC acc[2 * MR][2];
    for (int r = 0; r < 2 * MR; r++) acc[r][0] = acc[r][1] = (VEC){0};
    for (int64_t i = 0; i < c; i++) {
        const VEC *b = (const VEC *)(u + i * kp);
        const VEC b0 = b[0], b1 = b[1];
WG_UNROLL
        for (int r = 0; r < 2 * MR; r++) {
            const T a = v[r * cp + i];
            acc[r][0] += a * b0;
            acc[r][1] += a * b1;
        }
    }
    for (int r = 0; r < 2 * MR; r++) {
        *(VEC *)(m + r * kp) = acc[r][0];
        *(VEC *)(m + r * kp + VW) = acc[r][1];
    }
}

/* y pixels of tile `tile` = A^T M A, from the block's row r of M. With c_out a multiple
 * of the vector the results go straight to y; otherwise through `staged`. */
static void AG_NAME(output_tile)(const AG_NAME(wg_job) *job, int64_t tile, int64_t r, const T *m,
                                 T *staged, int64_t block) {
    const ag_conv2d_geometry *g = job->g;
    const int64_t k = g->out_channels, kp = job->kp;
    const int64_t per_image = job->tiles_h * job->tiles_w;
    const int64_t image = tile / per_image, rest = tile % per_image;
    const int64_t row0 = rest / job->tiles_w * WG_M, col0 = rest % job->tiles_w * WG_M;
    const int direct = k % VW == 0;
    T *pixel[WG_M * WG_M];
    for (int a = 0; a < WG_M; a++)
        for (int b = 0; b < WG_M; b++) {
            const int64_t row = row0 + a, col = col0 + b;
            const int inside = row < g->out_height && col < g->out_width;
            pixel[a * WG_M + b] = direct ? (inside ? job->y + ((image * g->out_height + row) * g->out_width + col) * k : NULL)
                                         : staged + (a * WG_M + b) * kp;
        }
    for (int64_t k0 = 0; k0 < (direct ? k : kp); k0 += VW) {
        VEC t[WG_M][WG_N];
WG_UNROLL
        for (int a = 0; a < WG_M; a++)
WG_UNROLL
            for (int j = 0; j < WG_N; j++) {
                VEC sum = {0};
WG_UNROLL
                for (int i = 0; i < WG_N; i++)
                    if (AG_NAME(wg_at)[a][i] != 0)
                        sum += AG_NAME(wg_at)[a][i] * *(const VEC *)(m + ((int64_t)(i * WG_N + j) * block + r) * kp + k0);
                t[a][j] = sum;
            }
WG_UNROLL
        for (int a = 0; a < WG_M; a++)
WG_UNROLL
            for (int b = 0; b < WG_M; b++) {
                VEC sum = {0};
WG_UNROLL
                for (int j = 0; j < WG_N; j++)
                    if (AG_NAME(wg_at)[b][j] != 0) sum += AG_NAME(wg_at)[b][j] * t[a][j];
                if (pixel[a * WG_M + b] != NULL) *(UVEC *)(pixel[a * WG_M + b] + k0) = sum;
            }
    }
    if (direct) return;
    for (int a = 0; a < WG_M; a++) {
        const int64_t row = row0 + a;
        if (row >= g->out_height) break;
        for (int b = 0; b < WG_M; b++) {
            const int64_t col = col0 + b;
            if (col >= g->out_width) break;
            memcpy(job->y + ((image * g->out_height + row) * g->out_width + col) * k,
                   staged + (a * WG_M + b) * kp, (size_t)k * sizeof(T));
        }
    }
}

static void AG_NAME(wg_threads)(void *job_pointer, int thread, int team) {
    AG_NAME(wg_job) *job = (AG_NAME(wg_job) *)job_pointer;
    const int64_t cp = job->cp, kp = job->kp, block = job->block, c = job->g->in_channels;
    const int64_t blocks = (job->tiles + block - 1) / block;
    const size_t bytes = (size_t)(WG_NN * block * (cp + kp) + WG_NN * cp + WG_M * WG_M * kp + cp) * sizeof(T);
    T *v = (T *)ag_winograd_alloc(bytes);
    T *m = v + WG_NN * block * cp, *d = m + WG_NN * block * kp, *staged = d + WG_NN * cp;
    T *zeros = staged + WG_M * WG_M * kp;
    int64_t first, last;
    if (v == NULL) {
        AG_OMP("omp atomic write")
        job->failed = 1;
        return;
    }
    memset(zeros, 0, (size_t)cp * sizeof(T));
    ag_share(blocks, thread, team, &first, &last);
    for (int64_t b = first; b < last; b++) {
        const int64_t t0 = b * block;
        const int64_t rows = job->tiles - t0 < block ? job->tiles - t0 : block;
        const int64_t padded = (rows + 2 * MR - 1) / (2 * MR) * (2 * MR);
        for (int64_t r = 0; r < rows; r++) AG_NAME(input_tile)(job, t0 + r, r, d, zeros, v, block);
        for (int64_t xi = 0; xi < WG_NN; xi++) {
            const T *vx = v + xi * block * cp, *ux = job->u + xi * c * kp;
            T *mx = m + xi * block * kp;
            if (padded > rows) memset((void *)(vx + rows * cp), 0, (size_t)((padded - rows) * cp) * sizeof(T));
            int64_t k0 = 0;
            for (; k0 + NR <= kp; k0 += NR)
                for (int64_t r0 = 0; r0 < padded; r0 += MR)
                    AG_NAME(micro)(vx + r0 * cp, ux + k0, mx + r0 * kp + k0, c, cp, kp);
            if (k0 < kp)
                for (int64_t r0 = 0; r0 < padded; r0 += 2 * MR)
                    AG_NAME(micro2)(vx + r0 * cp, ux + k0, mx + r0 * kp + k0, c, cp, kp);
        }
        for (int64_t r = 0; r < rows; r++) AG_NAME(output_tile)(job, t0 + r, r, m, staged, block);
    }
    ag_winograd_free(v);
}

/* The whole convolution: y = conv(x, w) for a stride-1 5x5 geometry (the caller checked
 * it); 1 done, -1 out of memory. */
int AG_NAME(ag_winograd_run)(const ag_conv2d_geometry *g, const T *x, const T *w, int flipped, T *y) {
    AG_NAME(wg_job) job;
    const int64_t c = g->in_channels, k = g->out_channels;
    T *u, *scratch = NULL;
    int64_t block;
    job.g = g; job.x = x; job.y = y; job.failed = 0;
    job.cp = (c + VW - 1) / VW * VW;
    job.kp = (k + 2 * VW - 1) / (2 * VW) * (2 * VW);
    job.tiles_h = (g->out_height + WG_M - 1) / WG_M;
    job.tiles_w = (g->out_width + WG_M - 1) / WG_M;
    job.tiles = g->batch * job.tiles_h * job.tiles_w;
    /* V and M of a block in about 384 KiB (L2 is 1-2 MiB per core) */
    block = ((int64_t)384 * 1024 / (int64_t)sizeof(T)) / (WG_NN * (job.cp + job.kp));
    block = block / (2 * MR) * (2 * MR);  /* micro2 takes 2 * MR rows */
    if (block < 2 * MR) block = 2 * MR;
    if (block > 64 * MR) block = 64 * MR;
    job.block = block;
    u = (T *)ag_winograd_alloc((size_t)(WG_NN * c * job.kp) * sizeof(T));
    if (flipped) scratch = (T *)malloc((size_t)(25 * c * k) * sizeof(T));
    if (u == NULL || (flipped && scratch == NULL)) {
        ag_winograd_free(u);
        free(scratch);
        return -1;
    }
    AG_NAME(weights)(w, flipped, c, k, job.kp, scratch, u);
    free(scratch);
    job.u = u;
    {
        const int64_t blocks = (job.tiles + block - 1) / block;
        const double work = (double)job.tiles * WG_NN * (double)c * (double)k;
        int threads = ag_threads_for(work, AG_CONV2D_PARALLEL_MIN_WORK);
        if (threads > blocks) threads = (int)blocks;
        ag_parallel(threads, AG_NAME(wg_threads), &job);
    }
    ag_winograd_free(u);
    return job.failed ? -1 : 1;
}

/* ---- the weight gradient: F(5x5, m x m) ----------------------------------------------
 * grad_w[a][b] = sum over output pixels p of x(p + (a, b)) grad_y(p): per output tile, a
 * correlation of the n x n input tile d with the m x m grad_y tile e, 5 x 5 outputs, so
 *   grad_w = A5^T [ sum over tiles of (B^T d B) . (G_e e G_e^T) ] A5
 * with the same B^T as the forward. The sum over tiles is, at each position xi, a GEMM
 * S_xi [c_in, c_out] += V_xi^T @ E_xi over the tiles of a block; each thread sums its
 * blocks into its own S, the threads' S are added, then A5^T S A5 gives grad_w. */

/* E[xi][r][:] = (G_e e G_e^T)[xi] of tile `tile`'s output-gradient pixels. */
static void AG_NAME(gradient_tile)(const AG_NAME(wg_job) *job, int64_t tile, int64_t r, T *staged,
                                   const T *zeros, T *e, int64_t block) {
    const ag_conv2d_geometry *g = job->g;
    const int64_t k = g->out_channels, kp = job->kp;
    const int64_t per_image = job->tiles_h * job->tiles_w;
    const int64_t image = tile / per_image, rest = tile % per_image;
    const int64_t row0 = rest / job->tiles_w * WG_M, col0 = rest % job->tiles_w * WG_M;
    const T *pixel[WG_M * WG_M];
    for (int i = 0; i < WG_M; i++)
        for (int j = 0; j < WG_M; j++) {
            const int64_t row = row0 + i, col = col0 + j;
            const T *source = job->grad_y + ((image * g->out_height + row) * g->out_width + col) * k;
            if (row >= g->out_height || col >= g->out_width) {
                pixel[i * WG_M + j] = zeros;
            } else if (k % VW == 0) {
                pixel[i * WG_M + j] = source;
            } else {
                T *dst = staged + (i * WG_M + j) * kp;
                memcpy(dst, source, (size_t)k * sizeof(T));
                memset(dst + k, 0, (size_t)(kp - k) * sizeof(T));
                pixel[i * WG_M + j] = dst;
            }
        }
    for (int64_t k0 = 0; k0 < kp; k0 += VW) {
        VEC t[WG_N][WG_M];
WG_UNROLL
        for (int j = 0; j < WG_M; j++) {
            VEC column[WG_M];
WG_UNROLL
            for (int q = 0; q < WG_M; q++)
                column[q] = (k % VW != 0 || k0 < k) ? *(const UVEC *)(pixel[q * WG_M + j] + k0) : (VEC){0};
WG_UNROLL
            for (int i = 0; i < WG_N; i++) {
                VEC sum = {0};
WG_UNROLL
                for (int q = 0; q < WG_M; q++)
                    if (AG_NAME(wg_ge)[i][q] != 0) sum += AG_NAME(wg_ge)[i][q] * column[q];
                t[i][j] = sum;
            }
        }
WG_UNROLL
        for (int i = 0; i < WG_N; i++)
WG_UNROLL
            for (int j = 0; j < WG_N; j++) {
                VEC sum = {0};
WG_UNROLL
                for (int q = 0; q < WG_M; q++)
                    if (AG_NAME(wg_ge)[j][q] != 0) sum += AG_NAME(wg_ge)[j][q] * t[i][q];
                *(VEC *)(e + ((int64_t)(i * WG_N + j) * block + r) * kp + k0) = sum;
            }
    }
}

/* S[c0 .. c0+rows)[k0 .. k0 + NQ vectors) += sum over `count` tiles of V[t][c] E[t][k]:
 * rows of accumulators are input channels (broadcast from V), vectors output channels. */
#define AG_WEIGHT_MICRO(NAME, NQ, ROWS)                                                    \
static void NAME(const T *v, const T *e, T *s, int64_t rows, int64_t count, int64_t cp,   \
                 int64_t kp) {                                                             \
    VEC acc[ROWS][NQ];                                                                     \
    (void)rows;                                                                            \
    for (int r = 0; r < ROWS; r++)                                                         \
        for (int q = 0; q < NQ; q++) acc[r][q] = *(const VEC *)(s + r * kp + q * VW);      \
    for (int64_t t = 0; t < count; t++) {                                                  \
        const VEC *b = (const VEC *)(e + t * kp);                                          \
        VEC bq[NQ];                                                                        \
        for (int q = 0; q < NQ; q++) bq[q] = b[q];                                         \
        WG_UNROLL                                                           \
        for (int r = 0; r < ROWS; r++) {                                                   \
            const T a = v[t * cp + r];                                                     \
            for (int q = 0; q < NQ; q++) acc[r][q] += a * bq[q];                           \
        }                                                                                  \
    }                                                                                      \
    for (int r = 0; r < ROWS; r++)                                                         \
        for (int q = 0; q < NQ; q++) *(VEC *)(s + r * kp + q * VW) = acc[r][q];            \
}
AG_WEIGHT_MICRO(AG_NAME(weight_micro4), 4, MR)
AG_WEIGHT_MICRO(AG_NAME(weight_micro2), 2, 2 * MR)
AG_WEIGHT_MICRO(AG_NAME(weight_row4), 4, 1)
AG_WEIGHT_MICRO(AG_NAME(weight_row2), 2, 1)
#undef AG_WEIGHT_MICRO

static void AG_NAME(weight_threads)(void *job_pointer, int thread, int team) {
    AG_NAME(wg_job) *job = (AG_NAME(wg_job) *)job_pointer;
    const ag_conv2d_geometry *g = job->g;
    const int64_t cp = job->cp, kp = job->kp, block = job->block, c = g->in_channels, k = g->out_channels;
    const int64_t blocks = (job->tiles + block - 1) / block, size = WG_NN * c * kp;
    const size_t bytes = (size_t)(WG_NN * block * (cp + kp) + WG_NN * cp + WG_M * WG_M * kp + cp + kp) * sizeof(T);
    T *v = (T *)ag_winograd_alloc(bytes);
    T *e = v + WG_NN * block * cp, *staged_x = e + WG_NN * block * kp, *staged_e = staged_x + WG_NN * cp;
    T *zeros = staged_e + WG_M * WG_M * kp;
    T *sums = job->sums + thread * size;
    int64_t first, last;
    memset(sums, 0, (size_t)size * sizeof(T));
    if (v == NULL) {
        AG_OMP("omp atomic write")
        job->failed = 1;
    } else {
        memset(zeros, 0, (size_t)(cp > kp ? cp : kp) * sizeof(T));
        ag_share(blocks, thread, team, &first, &last);
        for (int64_t b = first; b < last; b++) {
            const int64_t t0 = b * block;
            const int64_t rows = job->tiles - t0 < block ? job->tiles - t0 : block;
            for (int64_t r = 0; r < rows; r++) {
                AG_NAME(input_tile)(job, t0 + r, r, staged_x, zeros, v, block);
                AG_NAME(gradient_tile)(job, t0 + r, r, staged_e, zeros, e, block);
            }
            for (int64_t xi = 0; xi < WG_NN; xi++) {
                const T *vx = v + xi * block * cp, *ex = e + xi * block * kp;
                T *sx = sums + xi * c * kp;
                int64_t k0 = 0;
                for (; k0 + NR <= kp; k0 += NR) {
                    int64_t c0 = 0;
                    for (; c0 + MR <= c; c0 += MR)
                        AG_NAME(weight_micro4)(vx + c0, ex + k0, sx + c0 * kp + k0, MR, rows, cp, kp);
                    for (; c0 < c; c0++)
                        AG_NAME(weight_row4)(vx + c0, ex + k0, sx + c0 * kp + k0, 1, rows, cp, kp);
                }
                if (k0 < kp) {
                    int64_t c0 = 0;
                    for (; c0 + 2 * MR <= c; c0 += 2 * MR)
                        AG_NAME(weight_micro2)(vx + c0, ex + k0, sx + c0 * kp + k0, 2 * MR, rows, cp, kp);
                    for (; c0 < c; c0++)
                        AG_NAME(weight_row2)(vx + c0, ex + k0, sx + c0 * kp + k0, 1, rows, cp, kp);
                }
            }
        }
        ag_winograd_free(v);
    }
    AG_OMP("omp barrier")
    /* grad_w rows (input channels) of this thread: the threads' sums added in thread
     * order (the result does not depend on timing), then A5^T S A5 */
    ag_share(c, thread, team, &first, &last);
    for (int64_t ci = first; ci < last; ci++) {
        for (int t = 1; t < team; t++)
            for (int64_t xi = 0; xi < WG_NN; xi++) {
                T *to = job->sums + (xi * c + ci) * kp;
                const T *from = job->sums + t * size + (xi * c + ci) * kp;
                for (int64_t q = 0; q < kp; q++) to[q] += from[q];
            }
        for (int64_t k0 = 0; k0 < k; k0 += VW) {
            VEC t[5][WG_N];
            T out[VW];
WG_UNROLL
            for (int a = 0; a < 5; a++)
WG_UNROLL
                for (int j = 0; j < WG_N; j++) {
                    VEC sum = {0};
WG_UNROLL
                    for (int i = 0; i < WG_N; i++)
                        if (AG_NAME(wg_at5)[a][i] != 0)
                            sum += AG_NAME(wg_at5)[a][i] * *(const VEC *)(job->sums + ((int64_t)(i * WG_N + j) * c + ci) * kp + k0);
                    t[a][j] = sum;
                }
            for (int a = 0; a < 5; a++)
                for (int b = 0; b < 5; b++) {
                    VEC sum = {0};
WG_UNROLL
                    for (int j = 0; j < WG_N; j++)
                        if (AG_NAME(wg_at5)[b][j] != 0) sum += AG_NAME(wg_at5)[b][j] * t[a][j];
                    T *to = job->y + ((int64_t)(a * 5 + b) * c + ci) * k + k0;
                    if (k0 + VW <= k) {
                        *(UVEC *)to = sum;
                    } else {
                        memcpy(out, &sum, sizeof(out));
                        memcpy(to, out, (size_t)(k - k0) * sizeof(T));
                    }
                }
        }
    }
}

/* grad_w [5][5][c_in][c_out] of a stride-1 5x5 geometry (the caller checked it) from x
 * and grad_y; 1 done, -1 out of memory. */
int AG_NAME(ag_winograd_weight_run)(const ag_conv2d_geometry *g, const T *x, const T *grad_y, T *grad_w) {
    AG_NAME(wg_job) job;
    const int64_t c = g->in_channels, k = g->out_channels;
    int64_t block;
    int threads;
    job.g = g; job.x = x; job.grad_y = grad_y; job.y = grad_w; job.u = NULL; job.failed = 0;
    job.cp = (c + VW - 1) / VW * VW;
    job.kp = (k + 2 * VW - 1) / (2 * VW) * (2 * VW);
    job.tiles_h = (g->out_height + WG_M - 1) / WG_M;
    job.tiles_w = (g->out_width + WG_M - 1) / WG_M;
    job.tiles = g->batch * job.tiles_h * job.tiles_w;
    block = ((int64_t)384 * 1024 / (int64_t)sizeof(T)) / (WG_NN * (job.cp + job.kp));
    if (block < 4) block = 4;
    job.block = block;
    {
        const int64_t blocks = (job.tiles + block - 1) / block;
        const double work = (double)job.tiles * WG_NN * (double)c * (double)k;
        threads = ag_threads_for(work, AG_CONV2D_PARALLEL_MIN_WORK);
        if (threads > blocks) threads = (int)blocks;
        if (threads < 1) threads = 1;
    }
    /* room for the sums of the largest team that can start (the one asked for) */
    job.sums = (T *)ag_winograd_alloc((size_t)(threads * WG_NN * c * job.kp) * sizeof(T));
    if (job.sums == NULL) return -1;
    ag_parallel(threads, AG_NAME(weight_threads), &job);
    ag_winograd_free(job.sums);
    return job.failed ? -1 : 1;
}

#undef WG_N
#undef WG_NN
#undef VW
#undef NR
#undef VEC
#undef UVEC
