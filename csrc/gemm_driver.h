/* gemm_driver.h: the blocked GEMM driver, written once and included by gemm.c for each
 * element type with these macros defined:
 *   T                element type (float / double)
 *   AG_NAME(x)       name mangling for the static helpers (ag_s##x / ag_d##x)
 *   AG_GEMM          name of the public entry point (ag_sgemm / ag_dgemm)
 *   AG_GEMM_PRODUCT  its short form for the Python wrapper (ag_sgemm_product / ...)
 *   AG_GEMM_BATCHED  its batched twin (ag_sgemm_batched / ag_dgemm_batched)
 *   AG_CONFIG        ag_sgemm_config / ag_dgemm_config
 *   AG_SELECT        ag_sgemm_select / ag_dgemm_select
 *
 * Two paths. Most products (the smaller of m and n at most 1024: every layer shape
 * and batch of small products) take the unit path (unit_body, below): C cut into units
 * that threads claim from a counter, no barrier. The others take the shared-panel path:
 *
 * Structure (BLIS's loops around a micro-kernel, for row-major C):
 *   for jc over n in steps of nc:
 *     pack op(B)[:, jc:jc+nc] into kc x nr micro-panels, every kc step of k   (shared;
 *                                                   threads split the packing, 1 barrier)
 *     for each (block of ~mc rows, share of the panel's columns) -- split across threads:
 *       for pc over k in steps of kc:
 *         pack op(A)[ic:ic+mc, pc:pc+kc] into mr x kc micro-panels   (per thread, L2)
 *         for jr over the share in steps of nr:      one kc x nr B micro-panel (L1/L2)
 *           for ir over the block in steps of mr:    streams A micro-panels from L2
 *             micro-kernel: C[ir:ir+mr, jr:jr+nr] = alpha*A~B~ + beta'*C
 * beta' is the caller's beta for the first kc block and 1 afterwards, so C accumulates
 * across k blocks without an extra pass. Packing zero-pads the last micro-panels to full
 * mr/nr, which lets every micro-kernel call compute a full tile; the kernel stores only
 * the part of the tile inside C. Transposes and leading dimensions are absorbed by the
 * packing routines, so the kernels see one layout only. */

typedef struct {
    int trans_a, trans_b;
    int64_t m, n, k, lda, ldb, ldc;
    T alpha, beta;
    const T *a, *b;
    T *c;
    AG_CONFIG config;
    int64_t m_blocks;       /* row blocks: block b is micro-panels [b*P/B, (b+1)*P/B) of
                               the P = ceil(m/mr) row micro-panels, so sizes differ by
                               at most one micro-panel */
    int64_t mc, nc, kc;     /* largest row block; column and depth block sizes */
    T *b_pack;              /* nc_padded x k, shared */
    T *a_pack;              /* threads x (mc x kc), one slice per thread */
    int64_t a_pack_stride;  /* elements between thread slices */
    /* The unit path (see unit_body): C is cut into units of row_rows x chunk_columns;
     * rows_padded / columns_padded are those rounded up to mr / nr. */
    int64_t row_rows, chunk_columns, row_blocks, column_chunks, units;
    int64_t rows_padded, columns_padded;
    int b_in_place;         /* full micro-panels of op(B) read from b itself (unit path) */
    int direct;             /* a narrow product for config.direct (unit path, direct_body) */
    int64_t next_unit;      /* the next unclaimed unit (claimed atomically) */
    T *scratch;             /* threads x scratch_stride: each thread's A and B caches */
    int64_t scratch_stride;
} AG_NAME(gemm_context);

static AG_ALWAYS_INLINE void AG_NAME(pack_a_full)(T *panel, const T *src, int64_t lda,
                                                  int64_t kc, const int mr) {
    for (int64_t p = 0; p < kc; p++)
        for (int i = 0; i < mr; i++)
            panel[p * mr + i] = src[i * lda + p];
}

/* Packs rows i0..i0+mc of op(A), columns p0..p0+kc, into mr x kc micro-panels:
 * micro-panel r holds dst[r*mr*kc + p*mr + i] = op(A)[i0 + r*mr + i][p0 + p]. */
static AG_NOINLINE void AG_NAME(pack_a)(T *dst, const AG_NAME(gemm_context) *ctx, int64_t i0, int64_t mc,
                            int64_t p0, int64_t kc) {
    const int mr = ctx->config.mr;
    const int64_t lda = ctx->lda;
    for (int64_t ir = 0; ir < mc; ir += mr) {
        const int rows = (int)(mc - ir < mr ? mc - ir : mr);
        T *panel = dst + ir * kc;
        if (!ctx->trans_a && ctx->config.pack_a != NULL) {
            ctx->config.pack_a(panel, ctx->a + (i0 + ir) * lda + p0, lda, kc, rows);
            continue;  /* rows beyond `rows` are zeroed by pack_a */
        } else if (!ctx->trans_a && rows == mr && (mr == 12 || mr == 6 || mr == 4)) {
            /* The common full micro-panel: a compile-time mr lets the compiler unroll
             * the gather of one column of mr rows into straight-line code. */
            const T *src = ctx->a + (i0 + ir) * lda + p0;
            if (mr == 12)
                AG_NAME(pack_a_full)(panel, src, lda, kc, 12);
            else if (mr == 6)
                AG_NAME(pack_a_full)(panel, src, lda, kc, 6);
            else
                AG_NAME(pack_a_full)(panel, src, lda, kc, 4);
        } else if (!ctx->trans_a) {  /* op(A)[i][p] = a[i*lda + p]: read each row contiguously */
            for (int i = 0; i < rows; i++) {
                const T *src = ctx->a + (i0 + ir + i) * lda + p0;
                for (int64_t p = 0; p < kc; p++)
                    panel[p * mr + i] = src[p];
            }
        } else if (rows == mr && mr == 12) {  /* op(A)[i][p] = a[p*lda + i]: mr contiguous values per p */
            for (int64_t p = 0; p < kc; p++)
                memcpy(panel + p * 12, ctx->a + (p0 + p) * lda + i0 + ir, sizeof(T) * 12);
            continue;
        } else {
            for (int64_t p = 0; p < kc; p++) {
                const T *src = ctx->a + (p0 + p) * lda + i0 + ir;
                for (int i = 0; i < rows; i++)
                    panel[p * mr + i] = src[i];
            }
        }
        for (int i = rows; i < mr; i++)
            for (int64_t p = 0; p < kc; p++)
                panel[p * mr + i] = 0;
    }
}

/* Packs micro-panels jp_begin..jp_end of the B panel (columns j0..j0+nc of op(B), rows
 * p0..p0+kc): micro-panel jp holds dst[jp*nr*kc + p*nr + j] = op(B)[p0+p][j0 + jp*nr + j],
 * zero beyond column nc. Several micro-panels at once so that, without a transpose,
 * each row of b is read as one long contiguous run instead of nr-wide pieces a row
 * stride apart (which would miss the TLB on every row). */
/* Rows of b prefetched ahead of the untransposed copy below. Each row's piece is a few
 * cache lines on a page of its own (the row stride is ldb), which the hardware
 * prefetchers do not follow: without the hint the copy waited on memory for each row,
 * and packing was 20% of a 100 x 3136 @ 3136 x 1024 product (the seed CNN's first dense
 * layer) on one AMD EPYC core; with 8 rows ahead 15%, and the product 0.95x -> 1.05x
 * numpy's. (The include guard: one definition for both element types.) */
#ifndef AG_PACK_B_AHEAD
#define AG_PACK_B_AHEAD 8
#if defined(__GNUC__) || defined(__clang__)
#define AG_PREFETCH_READ(address) __builtin_prefetch((address), 0, 3)
#else
#define AG_PREFETCH_READ(address) ((void)(address))
#endif
#endif
static AG_NOINLINE void AG_NAME(pack_b)(T *dst, const AG_NAME(gemm_context) *ctx,
                                        int64_t jp_begin, int64_t jp_end,
                                        int64_t j0, int64_t nc, int64_t p0, int64_t kc) {
    const int nr = ctx->config.nr;
    const int64_t ldb = ctx->ldb;
    if (!ctx->trans_b) {      /* op(B)[p][j] = b[p*ldb + j] */
        const int64_t span_begin = jp_begin * nr;
        const int64_t span_end = jp_end * nr < nc ? jp_end * nr : nc;
        for (int64_t p = 0; p < kc; p++) {
            const T *src = ctx->b + (p0 + p) * ldb + j0;
            if (p + AG_PACK_B_AHEAD < kc) {
                const T *ahead = src + AG_PACK_B_AHEAD * ldb;
                for (int64_t j = span_begin; j < span_end; j += 64 / (int64_t)sizeof(T))
                    AG_PREFETCH_READ(ahead + j);
            }
            for (int64_t jp = jp_begin; jp < jp_end; jp++) {
                const int64_t jstart = jp * nr;
                const int cols = (int)(nc - jstart < nr ? nc - jstart : nr);
                T *row = dst + jp * nr * kc + p * nr;
                if (cols == nr) {
                    /* A copy of a size known at compile time is inlined as a few vector
                     * moves; a libc memcpy call per micro-panel row cost 7% of a batch
                     * of 32^3 products. */
                    if (nr == 32)
                        memcpy(row, src + jstart, sizeof(T) * 32);
                    else if (nr == 16)
                        memcpy(row, src + jstart, sizeof(T) * 16);
                    else if (nr == 8)
                        memcpy(row, src + jstart, sizeof(T) * 8);
                    else
                        memcpy(row, src + jstart, sizeof(T) * (size_t)nr);
                    continue;
                }
                for (int j = 0; j < cols; j++)
                    row[j] = src[jstart + j];
                for (int j = cols; j < nr; j++)
                    row[j] = 0;
            }
        }
    } else {                  /* op(B)[p][j] = b[j*ldb + p]: read each row of b contiguously */
        for (int64_t jp = jp_begin; jp < jp_end; jp++) {
            const int64_t jstart = jp * nr;
            const int cols = (int)(nc - jstart < nr ? nc - jstart : nr);
            T *panel = dst + jp * nr * kc;
            if (cols == nr && ctx->config.pack_bt != NULL) {
                ctx->config.pack_bt(panel, ctx->b + (j0 + jstart) * ldb + p0, ldb, kc);
                continue;
            }
            for (int j = 0; j < cols; j++) {
                const T *src = ctx->b + (j0 + jstart + j) * ldb + p0;
                for (int64_t p = 0; p < kc; p++)
                    panel[p * nr + j] = src[p];
            }
            for (int j = cols; j < nr; j++)
                for (int64_t p = 0; p < kc; p++)
                    panel[p * nr + j] = 0;
        }
    }
}

/* Run by every thread of the team (or alone). In a team, the B panel holds all of k,
 * packed once per jc step behind a single barrier; after it the threads never wait for
 * each other until the panel is done (see the depth loop). With the cores shared with
 * other processes, a preempted thread then delays only its own work, not a barrier per
 * kc step: on this project's loaded 2-core machine that made 2-thread products ~1.5x
 * more efficient (GFLOP per CPU-second) than packing B per kc step with a barrier. */
static void AG_NAME(gemm_body)(const AG_NAME(gemm_context) *ctx, int thread_id, int team_size) {
    const int mr = ctx->config.mr, nr = ctx->config.nr;
    const int64_t m = ctx->m, n = ctx->n, k = ctx->k;
    T *a_pack = ctx->a_pack + thread_id * ctx->a_pack_stride;
    const int64_t m_blocks = ctx->m_blocks;
    const int64_t m_panels = (m + mr - 1) / mr;

    for (int64_t jc = 0; jc < n; jc += ctx->nc) {
        const int64_t nc = n - jc < ctx->nc ? n - jc : ctx->nc;
        const int64_t panels = (nc + nr - 1) / nr;
        const int64_t nc_padded = panels * nr;
        /* When the row blocks do not divide evenly among the threads (few rows, or a
         * team smaller than asked for), also split the B panel's columns so no thread
         * idles; the A block is then packed once per share, which costs mc*k against
         * mc*k*nc/threads of arithmetic. */
        int64_t splits = m_blocks % team_size == 0 ? 1 : team_size;
        if (splits > panels)
            splits = panels;
        const int64_t units = m_blocks * splits;

        /* The kc x nc_padded slice for depth pc starts at b_pack + pc * nc_padded. A
         * lone thread packs each slice just before using it instead (below), while it
         * is still in L2 (a few percent faster single-threaded). */
        if (team_size > 1) {
            /* Groups of micro-panels, small enough that every thread gets one. */
            int64_t group_size = (panels + team_size - 1) / team_size;
            if (group_size > AG_PACK_B_GROUP)
                group_size = AG_PACK_B_GROUP;
            AG_OMP("omp for schedule(static)")
            for (int64_t group = 0; group < panels; group += group_size) {
                const int64_t end = group + group_size < panels ? group + group_size : panels;
                for (int64_t pc = 0; pc < k; pc += ctx->kc) {
                    const int64_t kc = k - pc < ctx->kc ? k - pc : ctx->kc;
                    AG_NAME(pack_b)(ctx->b_pack + pc * nc_padded, ctx, group, end, jc, nc, pc, kc);
                }
            }
        }

        /* Depth outermost, so each kc x nc slice of B is reused by all of a thread's
         * row blocks while it is still in cache. No barrier between depth steps:
         * schedule(static) over the same units gives every thread the same units at
         * each step, so a C tile is only ever accumulated by one thread, in order. */
        for (int64_t pc = 0; pc < k; pc += ctx->kc) {
            const int64_t kc = k - pc < ctx->kc ? k - pc : ctx->kc;
            const T beta = pc == 0 ? ctx->beta : (T)1;
            const T *b_slice = ctx->b_pack + pc * nc_padded;
            if (team_size == 1)
                for (int64_t group = 0; group < panels; group += AG_PACK_B_GROUP) {
                    const int64_t end = group + AG_PACK_B_GROUP < panels ? group + AG_PACK_B_GROUP : panels;
                    AG_NAME(pack_b)(ctx->b_pack + pc * nc_padded, ctx, group, end, jc, nc, pc, kc);
                }
            int64_t packed_block = -1;  /* the A block (at this depth) now in a_pack */
            AG_OMP("omp for schedule(static) nowait")
            for (int64_t unit = 0; unit < units; unit++) {
                const int64_t block = unit / splits, share = unit % splits;
                const int64_t i0 = block * m_panels / m_blocks * mr;
                const int64_t i_end = (block + 1) * m_panels / m_blocks * mr;
                const int64_t mc = (i_end < m ? i_end : m) - i0;
                const int64_t jp_begin = share * panels / splits;
                const int64_t jp_end = (share + 1) * panels / splits;
                if (block != packed_block) {
                    AG_NAME(pack_a)(a_pack, ctx, i0, mc, pc, kc);
                    packed_block = block;
                }
                for (int64_t jp = jp_begin; jp < jp_end; jp++) {
                    const int64_t j = jp * nr;
                    const int n_tile = (int)(nc - j < nr ? nc - j : nr);
                    const T *b_panel = b_slice + jp * nr * kc;
                    T *c_column = ctx->c + i0 * ctx->ldc + jc + j;
                    for (int64_t ir = 0; ir < mc; ir += mr) {
                        const int m_tile = (int)(mc - ir < mr ? mc - ir : mr);
                        ctx->config.kernel(kc, a_pack + ir * kc, b_panel, nr, c_column + ir * ctx->ldc,
                                           ctx->ldc, ctx->alpha, beta, m_tile, n_tile);
                    }
                }
            }
        }
        /* Everyone is done with this B panel before the next jc step repacks it. */
        AG_OMP("omp barrier")
    }
}


/* Splits `total` into the fewest blocks of at most `limit`, of near-equal size rounded
 * up to `multiple`: avoids a last block of a few rows/columns doing a full pass. */
static int64_t AG_NAME(balanced_block)(int64_t total, int64_t limit, int64_t multiple) {
    int64_t blocks = (total + limit - 1) / limit;
    int64_t size = (total + blocks - 1) / blocks;
    return (size + multiple - 1) / multiple * multiple;
}

/* ---- the unit path: products whose smaller side is small (the layer shapes, n <= ~1024) --
 * C is cut into units: one row block by one column chunk. When m <= n there is one row
 * block (all of m) and the columns are cut into chunks of a few micro-panels; otherwise
 * one chunk (all of n) and row blocks of up to mc rows. Each thread claims units one at a
 * time from a shared counter and computes each unit to the end: no barrier anywhere. On
 * a machine whose cores are shared with other processes, a thread that is preempted (or
 * starts late) then delays only the unit in its hands; the other takes the rest. With
 * the static split and the shared B panel's barrier, both threads waited for the slower
 * one: 2-thread products ran at one core's speed or worse (a median 0.1-0.3x numpy on
 * the layer shapes, under load).
 *
 * Each thread keeps its own packed copy of the operand side that is the same for all
 * units (all of op(A) when there is one row block, all of op(B) when there is one
 * chunk), packed at its first unit over the whole depth k; the other side is packed per
 * unit, once, and never again by anyone. The only work done twice is the first side's
 * packing, once per thread: m*k (or k*n) against 2*m*n*k flops. */
/* The unit path of a narrow product (op(B) at most nr/2 columns, so one column chunk):
 * config.direct reads op(A) where it is, and an untransposed B in place too; a
 * transposed B is packed once per thread. Units are row blocks, claimed as in unit_body. */
static AG_NOINLINE void AG_NAME(direct_body)(AG_NAME(gemm_context) *ctx, T *b_cache) {
    const int mr = ctx->config.mr, nr = ctx->config.nr;
    const int64_t k = ctx->k, lda = ctx->lda, ldc = ctx->ldc;
    int packed = 0;
    for (;;) {
        int64_t unit;
        AG_OMP("omp atomic capture")
        unit = ctx->next_unit++;
        if (unit >= ctx->units)
            break;
        const int64_t i0 = unit * ctx->row_rows;
        const int64_t mc = ctx->m - i0 < ctx->row_rows ? ctx->m - i0 : ctx->row_rows;
        for (int64_t pc = 0; pc < k; pc += ctx->kc) {
            const int64_t kc = k - pc < ctx->kc ? k - pc : ctx->kc;
            const T beta = pc == 0 ? ctx->beta : (T)1;
            const T *b_panel = ctx->b + pc * ctx->ldb;
            int64_t b_step = ctx->ldb;
            if (ctx->trans_b) {
                b_panel = b_cache + pc * ctx->columns_padded;
                b_step = nr;
                if (!packed)
                    AG_NAME(pack_b)(b_cache + pc * ctx->columns_padded, ctx, 0, 1, 0, ctx->n, pc, kc);
            }
            for (int64_t ir = 0; ir < mc; ir += mr) {
                const int m_tile = (int)(mc - ir < mr ? mc - ir : mr);
                const T *a_tile = ctx->trans_a ? ctx->a + pc * lda + i0 + ir : ctx->a + (i0 + ir) * lda + pc;
                ctx->config.direct(kc, a_tile, lda, ctx->trans_a, b_panel, b_step, ctx->c + (i0 + ir) * ldc,
                                   ldc, ctx->alpha, beta, m_tile, (int)ctx->n);
            }
        }
        packed = 1;
    }
}

static void AG_NAME(unit_body)(AG_NAME(gemm_context) *ctx, int thread_id) {
    const int mr = ctx->config.mr, nr = ctx->config.nr;
    const int64_t k = ctx->k, ldc = ctx->ldc;
    T *a_cache = ctx->scratch + thread_id * ctx->scratch_stride;  /* rows_padded x k */
    T *b_cache = a_cache + ctx->rows_padded * k;                   /* columns_padded x k */
    if (ctx->direct) {
        AG_NAME(direct_body)(ctx, b_cache);
        return;
    }
    int64_t cached_block = -1, cached_chunk = -1;
    /* Full micro-panels of an untransposed op(B) are read in place (the kernel steps ldb
     * per depth instead of nr) when B is small (see AG_GEMM_B_IN_PLACE_ELEMENTS): only a
     * last, narrower micro-panel is packed. */
    const int b_in_place = ctx->b_in_place;
    for (;;) {
        int64_t unit;
        AG_OMP("omp atomic capture")
        unit = ctx->next_unit++;
        if (unit >= ctx->units)
            break;
        const int64_t block = unit / ctx->column_chunks, chunk = unit % ctx->column_chunks;
        const int64_t i0 = block * ctx->row_rows, j0 = chunk * ctx->chunk_columns;
        const int64_t mc = ctx->m - i0 < ctx->row_rows ? ctx->m - i0 : ctx->row_rows;
        const int64_t nc = ctx->n - j0 < ctx->chunk_columns ? ctx->n - j0 : ctx->chunk_columns;
        const int64_t panels = (nc + nr - 1) / nr;
        /* micro-panels [0, full_panels) of the chunk come from B itself when in place */
        const int64_t full_panels = b_in_place ? nc / nr : 0;
        const int pack_rows = block != cached_block, pack_columns = chunk != cached_chunk;
        /* The slice for depth pc starts at pc * padded size: slices before it hold
         * pc values of depth in all. */
        for (int64_t pc = 0; pc < k; pc += ctx->kc) {
            const int64_t kc = k - pc < ctx->kc ? k - pc : ctx->kc;
            const T beta = pc == 0 ? ctx->beta : (T)1;
            T *a_slice = a_cache + pc * ctx->rows_padded;
            const T *b_slice = b_cache + pc * ctx->columns_padded;
            if (pack_rows)
                AG_NAME(pack_a)(a_slice, ctx, i0, mc, pc, kc);
            if (pack_columns && full_panels < panels)
                AG_NAME(pack_b)(b_cache + pc * ctx->columns_padded, ctx, full_panels, panels, j0, nc, pc, kc);
            /* Row sub-blocks of about mc rows: one stays in L2 while it meets every
             * B micro-panel of the chunk. */
            for (int64_t ic = 0; ic < mc; ic += ctx->mc) {
                const int64_t ic_end = ic + ctx->mc < mc ? ic + ctx->mc : mc;
                for (int64_t jp = 0; jp < panels; jp++) {
                    const int64_t j = jp * nr;
                    const int n_tile = (int)(nc - j < nr ? nc - j : nr);
                    const int in_place = jp < full_panels;
                    const T *b_panel = in_place ? ctx->b + pc * ctx->ldb + j0 + j : b_slice + j * kc;
                    const int64_t b_step = in_place ? ctx->ldb : nr;
                    T *c_column = ctx->c + i0 * ldc + j0 + j;
                    for (int64_t ir = ic; ir < ic_end; ir += mr) {
                        const int m_tile = (int)(mc - ir < mr ? mc - ir : mr);
                        ctx->config.kernel(kc, a_slice + ir * kc, b_panel, b_step, c_column + ir * ldc,
                                           ldc, ctx->alpha, beta, m_tile, n_tile);
                    }
                }
            }
        }
        cached_block = block;
        cached_chunk = chunk;
    }
}

static void AG_NAME(unit_region)(void *context, int thread, int team) {
    (void)team;
    AG_NAME(unit_body)((AG_NAME(gemm_context) *)context, thread);
}

/* Plans the unit path for ctx (sizes, config and kc set) on `threads` threads: returns 0
 * when both m and n are big, or the cached side (m*k or k*n) is, else 1 with the units and each
 * thread's scratch size (scratch_stride) filled in. */
static int AG_NAME(plan_units)(AG_NAME(gemm_context) *ctx, int threads) {
    const int mr = ctx->config.mr, nr = ctx->config.nr;
    const int64_t m = ctx->m, n = ctx->n, k = ctx->k;
    const int64_t m_panels = (m + mr - 1) / mr, n_panels = (n + nr - 1) / nr;
    /* Enough units that a thread left behind costs little: about 4 per thread. */
    const int64_t wanted = 4 * (int64_t)threads;
    if ((m < n ? m : n) > AG_GEMM_UNIT_MAX_SIDE)
        return 0;
    if (m <= n) {
        if ((double)m_panels * mr * (double)k > AG_GEMM_UNIT_CACHE_ELEMENTS)
            return 0;
        int64_t per_chunk = n_panels / wanted;
        if (per_chunk > AG_GEMM_UNIT_CHUNK_PANELS)
            per_chunk = AG_GEMM_UNIT_CHUNK_PANELS;
        if (per_chunk < 1)
            per_chunk = 1;
        ctx->row_rows = m;
        ctx->chunk_columns = per_chunk * nr;
    } else {
        if ((double)n_panels * nr * (double)k > AG_GEMM_UNIT_CACHE_ELEMENTS)
            return 0;
        /* Twice as many row blocks: B is cached whole, so a smaller block costs little,
         * and 784 rows in 9 blocks of 96 split 5:4 over two threads (17 split 9:8). */
        int64_t per_block = m_panels / (2 * wanted);
        if (per_block > ctx->config.mc / mr)
            per_block = ctx->config.mc / mr;
        if (per_block < 1)
            per_block = 1;
        ctx->row_rows = per_block * mr;
        ctx->chunk_columns = n;
    }
    ctx->row_blocks = (m + ctx->row_rows - 1) / ctx->row_rows;
    ctx->column_chunks = (n + ctx->chunk_columns - 1) / ctx->chunk_columns;
    ctx->units = ctx->row_blocks * ctx->column_chunks;
    ctx->rows_padded = (ctx->row_rows + mr - 1) / mr * mr;
    ctx->columns_padded = (ctx->chunk_columns + nr - 1) / nr * nr;
    /* Row sub-blocks of the unit loop: mc rounded to micro-panels, balanced. */
    ctx->mc = AG_NAME(balanced_block)(ctx->row_rows, AG_GEMM_UNIT_SUBBLOCK * ctx->config.mc, mr);
    const int64_t align = 64 / (int64_t)sizeof(T);
    ctx->scratch_stride = ((ctx->rows_padded + ctx->columns_padded) * k + align - 1) / align * align;
    ctx->direct = ctx->config.direct != NULL && 2 * n <= nr && ctx->column_chunks == 1;
    ctx->b_in_place = !ctx->trans_b
        && (ctx->ldb == nr || (double)(k - 1) * ctx->ldb + n <= AG_GEMM_B_IN_PLACE_ELEMENTS);
    ctx->next_unit = 0;
    return 1;
}

/* ---- the small path: a whole product on one thread, nothing packed but a transposed B --
 * When op(A) and op(B) together fit AG_GEMM_SMALL_ELEMENTS (in L1/L2), config.small reads
 * op(A) where it is and an untransposed B in place; a transposed B is packed once into
 * nr-wide micro-panels in b_scratch (small_scratch elements). */
static int AG_NAME(small_fits)(const AG_NAME(gemm_context) *ctx) {
    return ctx->config.small != NULL
        && (double)ctx->k * (double)(ctx->m + ctx->n) <= AG_GEMM_SMALL_ELEMENTS;
}

static int64_t AG_NAME(small_scratch)(const AG_NAME(gemm_context) *ctx) {
    const int nr = ctx->config.nr;
    return ctx->trans_b ? (ctx->n + nr - 1) / nr * nr * ctx->k : 0;
}

static void AG_NAME(small_run)(const AG_NAME(gemm_context) *ctx, T *b_scratch) {
    const int nr = ctx->config.nr;
    if (ctx->trans_b) {
        AG_NAME(pack_b)(b_scratch, ctx, 0, (ctx->n + nr - 1) / nr, 0, ctx->n, 0, ctx->k);
        ctx->config.small(ctx->m, ctx->n, ctx->k, ctx->a, ctx->lda, ctx->trans_a, b_scratch, nr * ctx->k, nr,
                          ctx->c, ctx->ldc, ctx->alpha, ctx->beta);
    } else {
        ctx->config.small(ctx->m, ctx->n, ctx->k, ctx->a, ctx->lda, ctx->trans_a, ctx->b, nr, ctx->ldb,
                          ctx->c, ctx->ldc, ctx->alpha, ctx->beta);
    }
}

/* The small path on a team: row blocks of ctx->row_rows claimed from ctx->next_unit
 * (as unit_body claims units: a thread that starts late leaves its blocks to the
 * other), each thread packing a transposed B once into its own scratch slice. */
static void AG_NAME(small_region)(void *context, int thread, int team) {
    AG_NAME(gemm_context) *ctx = (AG_NAME(gemm_context) *)context;
    const int nr = ctx->config.nr;
    T *b_scratch = ctx->scratch + thread * ctx->scratch_stride;
    const T *b = ctx->b;
    int64_t b_panel = nr, b_step = ctx->ldb;
    int packed = 0;
    (void)team;
    for (;;) {
        int64_t unit;
        AG_OMP("omp atomic capture")
        unit = ctx->next_unit++;
        if (unit >= ctx->units)
            break;
        if (ctx->trans_b && !packed) {
            AG_NAME(pack_b)(b_scratch, ctx, 0, (ctx->n + nr - 1) / nr, 0, ctx->n, 0, ctx->k);
            b = b_scratch;
            b_panel = nr * ctx->k;
            b_step = nr;
            packed = 1;
        }
        const int64_t i0 = unit * ctx->row_rows;
        const int64_t rows = ctx->m - i0 < ctx->row_rows ? ctx->m - i0 : ctx->row_rows;
        ctx->config.small(rows, ctx->n, ctx->k, ctx->a + (ctx->trans_a ? i0 : i0 * ctx->lda), ctx->lda,
                          ctx->trans_a, b, b_panel, b_step, ctx->c + i0 * ctx->ldc, ctx->ldc,
                          ctx->alpha, ctx->beta);
    }
}

/* Runs a product that small_fits on `threads` threads; 0 when the scratch cannot be had. */
static int AG_NAME(small_threaded)(AG_NAME(gemm_context) *ctx, int threads) {
    /* Two row blocks per thread, each a multiple of 4 rows (the small tiles are 12, 8
     * and 4 rows): 128 rows on 2 threads are 4 blocks of 32 = 12 + 12 + 8. */
    const int64_t blocks = 2 * (int64_t)threads;
    int64_t rows = (ctx->m + blocks - 1) / blocks;
    rows = (rows + 3) / 4 * 4;
    ctx->row_rows = rows;
    ctx->units = (ctx->m + rows - 1) / rows;
    ctx->next_unit = 0;
    if (threads > ctx->units)
        threads = (int)ctx->units;
    const int64_t align = 64 / (int64_t)sizeof(T);
    ctx->scratch_stride = (AG_NAME(small_scratch)(ctx) + align - 1) / align * align;
    void *scratch = NULL;
    if (ctx->scratch_stride > 0) {
        scratch = malloc((size_t)(threads * ctx->scratch_stride) * sizeof(T) + 64);
        if (scratch == NULL)
            return 0;
        ctx->scratch = (T *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    } else {
        ctx->scratch = NULL;
    }
    ag_parallel(threads, AG_NAME(small_region), ctx);
    free(scratch);
    return 1;
}

static void AG_NAME(gemm_region)(void *context, int thread, int team) {
    AG_NAME(gemm_body)((const AG_NAME(gemm_context) *)context, thread, team);
}

/* The plain triple loop: used only when the packing buffers cannot be allocated. */
static void AG_NAME(gemm_unblocked)(const AG_NAME(gemm_context) *ctx) {
    for (int64_t i = 0; i < ctx->m; i++)
        for (int64_t j = 0; j < ctx->n; j++) {
            T acc = 0;
            for (int64_t p = 0; p < ctx->k; p++) {
                T av = ctx->trans_a ? ctx->a[p * ctx->lda + i] : ctx->a[i * ctx->lda + p];
                T bv = ctx->trans_b ? ctx->b[j * ctx->ldb + p] : ctx->b[p * ctx->ldb + j];
                acc += av * bv;
            }
            T *cij = ctx->c + i * ctx->ldc + j;
            *cij = ctx->alpha * acc + (ctx->beta == 0 ? (T)0 : ctx->beta * *cij);
        }
}

/* Fills ctx for one product and returns the thread count to run it with. */
static int AG_NAME(setup)(AG_NAME(gemm_context) *ctx, int trans_a, int trans_b, int64_t m, int64_t n,
                          int64_t k, T alpha, const T *a, int64_t lda, const T *b, int64_t ldb,
                          T beta, T *c, int64_t ldc) {
    ctx->trans_a = trans_a;
    ctx->trans_b = trans_b;
    ctx->m = m; ctx->n = n; ctx->k = k;
    ctx->lda = lda; ctx->ldb = ldb; ctx->ldc = ldc;
    ctx->alpha = alpha; ctx->beta = beta;
    ctx->a = a; ctx->b = b; ctx->c = c;
    AG_SELECT(ag_get_simd_level(), &ctx->config);
    ctx->kc = AG_NAME(balanced_block)(k, ctx->config.kc, 1);
    int threads = ag_get_num_threads();
    /* A parallel region costs a few microseconds, and waking the second thread tens of
     * them when the cores are busy: below AG_GEMM_PARALLEL_MIN_WORK one thread is faster. */
    if ((double)m * (double)n * (double)k < AG_GEMM_PARALLEL_MIN_WORK)
        threads = 1;
    return threads < 1 ? 1 : threads;
}

/* C = beta*C for an empty product (k == 0 or alpha == 0); never reads C when beta == 0. */
static void AG_NAME(scale_c)(int64_t m, int64_t n, T beta, T *c, int64_t ldc) {
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++)
            c[i * ldc + j] = beta == 0 ? (T)0 : beta * c[i * ldc + j];
}

void AG_GEMM(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
             T alpha, const T *a, int64_t lda, const T *b, int64_t ldb,
             T beta, T *c, int64_t ldc) {
    if (m <= 0 || n <= 0)
        return;
    if (k <= 0 || alpha == 0) {
        AG_NAME(scale_c)(m, n, beta, c, ldc);
        return;
    }
    AG_NAME(gemm_context) ctx;
    int threads = AG_NAME(setup)(&ctx, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);

    if (threads > 1 && AG_NAME(small_fits)(&ctx)) {
        /* Threaded, the small path splits rows; below AG_GEMM_SMALL_PARALLEL_MIN_WORK one
         * thread is faster than the team's start and end. */
        if ((double)m * (double)n * (double)k < AG_GEMM_SMALL_PARALLEL_MIN_WORK)
            threads = 1;
        else if (AG_NAME(small_threaded)(&ctx, threads))
            return;
    }
    if (threads == 1 && AG_NAME(small_fits)(&ctx)) {
        const int64_t scratch_size = AG_NAME(small_scratch)(&ctx);
        if (scratch_size <= AG_GEMM_SMALL_STACK_ELEMENTS) {
            T stack[AG_GEMM_SMALL_STACK_ELEMENTS];
            AG_NAME(small_run)(&ctx, stack);
            return;
        }
        T *scratch = (T *)malloc((size_t)scratch_size * sizeof(T));
        if (scratch != NULL) {
            AG_NAME(small_run)(&ctx, scratch);
            free(scratch);
            return;
        }
    }

    if (AG_NAME(plan_units)(&ctx, threads)) {
        if (threads > ctx.units)
            threads = (int)ctx.units;
        void *scratch = malloc((size_t)(threads * ctx.scratch_stride) * sizeof(T) + 64);
        if (scratch != NULL) {
            ctx.scratch = (T *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
            /* Units are claimed, not assigned: whatever team starts, each is done once. */
            ag_parallel(threads, AG_NAME(unit_region), &ctx);
            free(scratch);
            return;
        }
    }

    /* Row blocks of near-equal size (within one micro-panel), and a multiple of the
     * thread count when there are several, so the blocks split evenly over threads
     * (e.g. 11 blocks on 2 threads would leave one idle for 1/12 of the time). */
    const int64_t m_panels = (m + ctx.config.mr - 1) / ctx.config.mr;
    int64_t m_blocks = (m + ctx.config.mc - 1) / ctx.config.mc;
    if (threads > 1 && m_blocks > 1)
        m_blocks = (m_blocks + threads - 1) / threads * threads;
    if (m_blocks > m_panels)
        m_blocks = m_panels;
    ctx.m_blocks = m_blocks;
    ctx.mc = (m_panels + m_blocks - 1) / m_blocks * ctx.config.mr;
    /* The packed B panel spans all of k; cap its columns so it stays within
     * AG_GEMM_B_PANEL_BYTES however deep k is. */
    int64_t nc_limit = (int64_t)(AG_GEMM_B_PANEL_BYTES / sizeof(T)) / k / ctx.config.nr * ctx.config.nr;
    if (nc_limit > ctx.config.nc)
        nc_limit = ctx.config.nc;
    if (nc_limit < ctx.config.nr)
        nc_limit = ctx.config.nr;
    ctx.nc = AG_NAME(balanced_block)(n, nc_limit, ctx.config.nr);

    /* One allocation for every buffer, each slice aligned to a cache line. */
    const int64_t align = 64 / (int64_t)sizeof(T);
    const int64_t b_size = (ctx.nc + ctx.config.nr - 1) / ctx.config.nr * ctx.config.nr * k;
    ctx.a_pack_stride = (ctx.mc * ctx.kc + align - 1) / align * align;
    const int64_t b_stride = (b_size + align - 1) / align * align;
    void *memory = malloc((size_t)(b_stride + threads * ctx.a_pack_stride) * sizeof(T) + 64);
    if (memory == NULL) {
        AG_NAME(gemm_unblocked)(&ctx);
        return;
    }
    T *base = (T *)(((uintptr_t)memory + 63) & ~(uintptr_t)63);
    ctx.b_pack = base;
    ctx.a_pack = base + b_stride;

    /* ag_parallel runs one thread outside any parallel region as a plain call (the
     * `omp for`s in gemm_body then run as a team of one); otherwise it opens our own
     * region, even an inactive one (threads == 1 inside a caller's region), which binds
     * those `omp for`s to this call's team instead of the caller's. gemm_body splits
     * the work by the team that actually started. */
    ag_parallel(threads, AG_NAME(gemm_region), &ctx);
    free(memory);
}

void AG_GEMM_PRODUCT(int transposes, int64_t m, int64_t n, int64_t k,
                     const T *a, int64_t lda, const T *b, int64_t ldb, T *c) {
    AG_GEMM(transposes & 1, (transposes >> 1) & 1, m, n, k, (T)1, a, lda, b, ldb, (T)0, c, n);
}

typedef struct {
    AG_NAME(gemm_context) plan;  /* the plan every product shares (operands of product 0) */
    int64_t batch, stride_a, stride_b, stride_c;
    int64_t next_item;           /* the next unclaimed product (claimed atomically) */
    int64_t group;               /* products claimed at a time */
    int small;                   /* each product on the small path (else the unit path) */
    T *scratch;                  /* one plan.scratch_stride slice per thread */
} AG_NAME(batch_job);

/* Run by each thread of the team: claims products one at a time and computes each
 * alone on the unit path, in this thread's scratch (allocated once for the batch, not
 * once per product). Claiming, not a fixed share, so a thread that is preempted or
 * starts late holds up one product at most. */
static void AG_NAME(batch_region)(void *job_pointer, int thread, int team) {
    AG_NAME(batch_job) *job = (AG_NAME(batch_job) *)job_pointer;
    AG_NAME(gemm_context) ctx = job->plan;
    (void)team;
    ctx.scratch = job->scratch + thread * job->plan.scratch_stride;
    const int64_t group = job->group;
    for (;;) {
        int64_t first;
        AG_OMP("omp atomic capture")
        { first = job->next_item; job->next_item += group; }
        if (first >= job->batch)
            break;
        const int64_t end = first + group < job->batch ? first + group : job->batch;
        for (int64_t item = first; item < end; item++) {
            ctx.a = job->plan.a + item * job->stride_a;
            ctx.b = job->plan.b + item * job->stride_b;
            ctx.c = job->plan.c + item * job->stride_c;
            if (job->small) {
                AG_NAME(small_run)(&ctx, ctx.scratch);
            } else {
                ctx.next_unit = 0;
                AG_NAME(unit_body)(&ctx, 0);
            }
        }
    }
}

void AG_GEMM_BATCHED(int trans_a, int trans_b, int64_t batch, int64_t m, int64_t n, int64_t k,
                     T alpha, const T *a, int64_t stride_a, int64_t lda,
                     const T *b, int64_t stride_b, int64_t ldb,
                     T beta, T *c, int64_t stride_c, int64_t ldc) {
    if (batch <= 0 || m <= 0 || n <= 0)
        return;
    AG_NAME(batch_job) job;
    /* A product big enough to thread on its own is threaded inside AG_GEMM; smaller
     * ones (each on one thread, on the unit path) are spread over the team instead,
     * when the whole batch is worth a parallel region. */
    if (k > 0 && alpha != 0
            && AG_NAME(setup)(&job.plan, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc) == 1
            && ((job.small = AG_NAME(small_fits)(&job.plan)) || AG_NAME(plan_units)(&job.plan, 1))) {
        int threads = ag_threads_for((double)m * (double)n * (double)k * (double)batch,
                                     AG_GEMM_PARALLEL_MIN_WORK);
        if (threads > batch)
            threads = (int)batch;
        if (job.small) {
            const int64_t align = 64 / (int64_t)sizeof(T);
            job.plan.scratch_stride = (AG_NAME(small_scratch)(&job.plan) + align - 1) / align * align;
        }
        /* About 8 claims per thread: fewer round trips of the shared counter between
         * the cores (a small product takes well under a microsecond), while a thread
         * that starts late still leaves the rest to the others. */
        job.group = batch / (8 * (int64_t)threads);
        if (job.group < 1)
            job.group = 1;
        void *scratch = malloc((size_t)(threads * job.plan.scratch_stride) * sizeof(T) + 64);
        if (scratch != NULL) {
            job.scratch = (T *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
            job.batch = batch;
            job.stride_a = stride_a; job.stride_b = stride_b; job.stride_c = stride_c;
            job.next_item = 0;
            ag_parallel(threads, AG_NAME(batch_region), &job);
            free(scratch);
            return;
        }
    }
    for (int64_t i = 0; i < batch; i++)
        AG_GEMM(trans_a, trans_b, m, n, k, alpha, a + i * stride_a, lda, b + i * stride_b, ldb,
                beta, c + i * stride_c, ldc);
}
