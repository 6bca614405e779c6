/* gemm_packed_body.h: gemm_packed.c's functions, written once and included for each
 * element type with T, AG_NAME(x) (ag_s##x / ag_d##x), AG_CONFIG and AG_SELECT defined. */

/* The depth of one slice: k split into near-equal slices of at most the level's kc
 * (the driver's balanced_block with multiple 1). */
static int64_t AG_NAME(packed_depth)(const AG_CONFIG *config, int64_t k) {
    const int64_t slices = (k + config->kc - 1) / config->kc;
    return slices > 0 ? (k + slices - 1) / slices : 1;
}

int64_t AG_NAME(gemm_packed_b_size)(int64_t k, int64_t n) {
    AG_CONFIG config;
    AG_SELECT(ag_get_simd_level(), &config);
    return (n + config.nr - 1) / config.nr * config.nr * (k > 0 ? k : 1);
}

int64_t AG_NAME(gemm_packed_a_size)(int64_t m, int64_t k) {
    AG_CONFIG config;
    AG_SELECT(ag_get_simd_level(), &config);
    return (m + config.mr - 1) / config.mr * config.mr * AG_NAME(packed_depth)(&config, k > 0 ? k : 1);
}

/* Slice for depth pc at packed + pc * n_padded; its micro-panel jp at jp * nr * kc,
 * element [p * nr + j] = op(B)[pc + p][jp * nr + j], zero beyond column n. */
void AG_NAME(gemm_pack_b)(int trans_b, int64_t k, int64_t n, const T *b, int64_t ldb, T *packed) {
    AG_CONFIG config;
    AG_SELECT(ag_get_simd_level(), &config);
    const int nr = config.nr;
    const int64_t depth = AG_NAME(packed_depth)(&config, k);
    const int64_t panels = (n + nr - 1) / nr, n_padded = panels * nr;
    for (int64_t pc = 0; pc < k; pc += depth) {
        const int64_t kc = k - pc < depth ? k - pc : depth;
        T *slice = packed + pc * n_padded;
        for (int64_t jp = 0; jp < panels; jp++) {
            const int64_t j0 = jp * nr;
            const int cols = (int)(n - j0 < nr ? n - j0 : nr);
            T *panel = slice + jp * nr * kc;
            if (trans_b && cols == nr && config.pack_bt != NULL) {
                config.pack_bt(panel, b + j0 * ldb + pc, ldb, kc);
                continue;
            }
            for (int64_t p = 0; p < kc; p++) {
                for (int j = 0; j < cols; j++)
                    panel[p * nr + j] = trans_b ? b[(j0 + j) * ldb + pc + p] : b[(pc + p) * ldb + j0 + j];
                for (int j = cols; j < nr; j++)
                    panel[p * nr + j] = 0;
            }
        }
    }
}

/* mr-row micro-panels of A [m, lda] columns p0..p0+kc: panel r holds
 * dst[r*mr*kc + p*mr + i] = A[r*mr + i][p0 + p], zero rows beyond m. */
static void AG_NAME(packed_pack_a)(const AG_CONFIG *config, T *dst, const T *a, int64_t lda, int64_t m,
                                   int64_t p0, int64_t kc) {
    const int mr = config->mr;
    for (int64_t ir = 0; ir < m; ir += mr) {
        const int rows = (int)(m - ir < mr ? m - ir : mr);
        T *panel = dst + ir * kc;
        if (config->pack_a != NULL) {
            config->pack_a(panel, a + ir * lda + p0, lda, kc, rows);  /* zeroes the rows beyond */
            continue;
        }
        for (int i = 0; i < rows; i++)
            for (int64_t p = 0; p < kc; p++)
                panel[p * mr + i] = a[(ir + i) * lda + p0 + p];
        for (int i = rows; i < mr; i++)
            for (int64_t p = 0; p < kc; p++)
                panel[p * mr + i] = 0;
    }
}

/* One depth slice of a packed product: the packed A slice (a_scratch, [m padded, kc])
 * against every B micro-panel of the slice, in row sub-blocks of twice the level's mc
 * as the driver's unit path (AG_GEMM_UNIT_SUBBLOCK): a batch share of 100 or 128 rows is
 * one block, which meets each B micro-panel once per depth slice. */
static void AG_NAME(packed_slice_tiles)(const AG_CONFIG *config, int64_t m, int64_t n, int64_t kc, T alpha,
                                        const T *a_scratch, const T *slice, T beta, T *c, int64_t ldc) {
    const int mr = config->mr, nr = config->nr;
    const int64_t panels = (n + nr - 1) / nr;
    const int64_t block_rows = 2 * config->mc / mr * mr;
    for (int64_t ic = 0; ic < m; ic += block_rows) {
        const int64_t ic_end = ic + block_rows < m ? ic + block_rows : m;
        for (int64_t jp = 0; jp < panels; jp++) {
            const int64_t j = jp * nr;
            const int n_tile = (int)(n - j < nr ? n - j : nr);
            const T *b_panel = slice + j * kc;
            for (int64_t ir = ic; ir < ic_end; ir += mr) {
                const int m_tile = (int)(m - ir < mr ? m - ir : mr);
                config->kernel(kc, a_scratch + ir * kc, b_panel, nr, c + ir * ldc + j, ldc, alpha, beta, m_tile,
                               n_tile);
            }
        }
    }
}

void AG_NAME(gemm_packed)(int64_t m, int64_t n, int64_t k, T alpha, const T *a, int64_t lda,
                          const T *packed, T beta, T *c, int64_t ldc, T *a_scratch) {
    AG_CONFIG config;
    if (m <= 0 || n <= 0)
        return;
    if (k <= 0 || alpha == 0) {  /* C = beta C, never reading C when beta == 0 */
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++)
                c[i * ldc + j] = beta == 0 ? (T)0 : beta * c[i * ldc + j];
        return;
    }
    AG_SELECT(ag_get_simd_level(), &config);
    const int64_t depth = AG_NAME(packed_depth)(&config, k);
    const int64_t n_padded = (n + config.nr - 1) / config.nr * config.nr;
    for (int64_t pc = 0; pc < k; pc += depth) {
        const int64_t kc = k - pc < depth ? k - pc : depth;
        const T slice_beta = pc == 0 ? beta : (T)1;
        const T *slice = packed + pc * n_padded;
        AG_NAME(packed_pack_a)(&config, a_scratch, a, lda, m, pc, kc);
        AG_NAME(packed_slice_tiles)(&config, m, n, kc, alpha, a_scratch, slice, slice_beta, c, ldc);
    }
}

/* gemm_packed with A = [A1 | A2] side by side (A1 [m, k1], A2 [m, k - k1], each row-major
 * with its own leading dimension): the LSTM layer's [x_t | h_{t-1}] @ [W_ih | W_hh]^T,
 * whose operand each step used to copy into one array first. Each A micro-panel is
 * packed from both: its columns below k1 from A1, the rest from A2 (the panel layout
 * is column after column, so the two parts are two runs of it). */
void AG_NAME(gemm_packed_split)(int64_t m, int64_t n, int64_t k, int64_t k1, const T *a1, int64_t lda1, const T *a2,
                                int64_t lda2, const T *packed, T beta, T *c, int64_t ldc, T *a_scratch) {
    AG_CONFIG config;
    if (m <= 0 || n <= 0)
        return;
    if (k <= 0) {
        AG_NAME(gemm_packed)(m, n, k, (T)1, a1, lda1, packed, beta, c, ldc, a_scratch);
        return;
    }
    AG_SELECT(ag_get_simd_level(), &config);
    const int mr = config.mr;
    const int64_t depth = AG_NAME(packed_depth)(&config, k);
    const int64_t n_padded = (n + config.nr - 1) / config.nr * config.nr;
    for (int64_t pc = 0; pc < k; pc += depth) {
        const int64_t kc = k - pc < depth ? k - pc : depth;
        const int64_t first_end = k1 < pc + kc ? k1 : pc + kc;  /* columns pc..first_end-1 from A1 */
        const int64_t part1 = first_end > pc ? first_end - pc : 0, part2 = kc - part1;
        const T slice_beta = pc == 0 ? beta : (T)1;
        const T *slice = packed + pc * n_padded;
        for (int64_t ir = 0; ir < m; ir += mr) {
            const int rows = (int)(m - ir < mr ? m - ir : mr);
            T *panel = a_scratch + ir * kc;
            if (part1 > 0)
                AG_NAME(packed_pack_a)(&config, panel, a1 + ir * lda1, lda1, rows, pc, part1);
            if (part2 > 0)
                AG_NAME(packed_pack_a)(&config, panel + part1 * mr, a2 + ir * lda2, lda2, rows, pc + part1 - k1,
                                       part2);
        }
        AG_NAME(packed_slice_tiles)(&config, m, n, kc, (T)1, a_scratch, slice, slice_beta, c, ldc);
    }
}

/* ---- both operands pre-packed, written piece by piece by their producer --------------
 * A producer that makes op(A)'s columns one at a time (the LSTM backward makes each
 * row of grad_gates, a column of grad_gates^T, in its step) writes them straight into
 * the packed layout, so the product that follows packs nothing: a pass over the whole
 * operand saved. The layout of a whole op(A) [m, k]: depth slice pc (packed_depth) at
 * packed + pc * m_padded, its mr-row micro-panel q at + q * mr * kc, element
 * [p * mr + i] = op(A)[q * mr + i][pc + p], zero in the rows beyond m. op(B) [k, n]
 * has gemm_pack_b's layout, written a few rows at a time by gemm_pack_b_rows. */

int64_t AG_NAME(gemm_prepacked_a_size)(int64_t m, int64_t k) {
    AG_CONFIG config;
    AG_SELECT(ag_get_simd_level(), &config);
    return (m + config.mr - 1) / config.mr * config.mr * (k > 0 ? k : 1);
}

int64_t AG_NAME(gemm_prepacked_a_panels)(int64_t m) {
    AG_CONFIG config;
    AG_SELECT(ag_get_simd_level(), &config);
    return (m + config.mr - 1) / config.mr;
}

/* Columns p0..p0+count-1 of op(A) [m, k] into the whole packed A; column c is given as
 * the m contiguous values at columns + c * ld (a row of op(A)^T). Micro-panel by
 * micro-panel, so that the writes run on in one place (the columns of one slice are
 * adjacent in each panel) instead of jumping between m / mr panels every column. */
void AG_NAME(gemm_pack_a_columns)(int64_t m, int64_t k, int64_t p0, int64_t count, const T *columns, int64_t ld,
                                  T *packed) {
    AG_CONFIG config;
    AG_SELECT(ag_get_simd_level(), &config);
    const int mr = config.mr;
    const int64_t depth = AG_NAME(packed_depth)(&config, k);
    const int64_t panels = (m + mr - 1) / mr, m_padded = panels * mr, full = m / mr;
    for (int64_t column = 0; column < count;) {
        const int64_t p_all = p0 + column, pc = p_all / depth * depth;
        const int64_t kc = k - pc < depth ? k - pc : depth;
        const int64_t run = pc + kc - p_all < count - column ? pc + kc - p_all : count - column;  /* in this slice */
        const T *source = columns + column * ld;
        T *base = packed + pc * m_padded + (p_all - pc) * mr;
        for (int64_t q = 0; q < panels; q++) {
            T *destination = base + q * mr * kc;
            const T *from = source + q * mr;
            if (q < full && mr == 12) {  /* the AVX-512 float and double tiles: a fixed-size copy */
                for (int64_t c = 0; c < run; c++)
                    memcpy(destination + c * 12, from + c * ld, 12 * sizeof(T));
            } else if (q < full) {
                for (int64_t c = 0; c < run; c++)
                    memcpy(destination + c * mr, from + c * ld, (size_t)mr * sizeof(T));
            } else {
                const int rows = (int)(m - q * mr);
                for (int64_t c = 0; c < run; c++)
                    for (int i = 0; i < mr; i++)
                        destination[c * mr + i] = i < rows ? from[c * ld + i] : (T)0;
            }
        }
        column += run;
    }
}

/* Rows p0..p0+count-1 of op(B) [k, n] into gemm_pack_b's layout; row r is the n values
 * at rows + r * ld, or zeros when rows is NULL. Micro-panel by micro-panel, as
 * gemm_pack_a_columns. */
void AG_NAME(gemm_pack_b_rows)(int64_t k, int64_t n, int64_t p0, int64_t count, const T *rows, int64_t ld,
                               T *packed) {
    AG_CONFIG config;
    AG_SELECT(ag_get_simd_level(), &config);
    const int nr = config.nr;
    const int64_t depth = AG_NAME(packed_depth)(&config, k);
    const int64_t panels = (n + nr - 1) / nr, n_padded = panels * nr;
    for (int64_t row = 0; row < count;) {
        const int64_t p_all = p0 + row, pc = p_all / depth * depth;
        const int64_t kc = k - pc < depth ? k - pc : depth;
        const int64_t run = pc + kc - p_all < count - row ? pc + kc - p_all : count - row;  /* in this slice */
        T *base = packed + pc * n_padded + (p_all - pc) * nr;
        for (int64_t jp = 0; jp < panels; jp++) {
            const int cols = (int)(n - jp * nr < nr ? n - jp * nr : nr);
            T *destination = base + jp * nr * kc;
            if (rows == NULL) {
                memset(destination, 0, sizeof(T) * (size_t)(run * nr));
                continue;
            }
            if (cols == 32) {  /* a full float AVX-512 panel: a fixed-size copy, inlined */
                for (int64_t r = 0; r < run; r++)
                    memcpy(destination + r * 32, rows + (row + r) * ld + jp * 32, 32 * sizeof(T));
                continue;
            }
            for (int64_t r = 0; r < run; r++) {
                const T *from = rows + (row + r) * ld + jp * nr;
                for (int j = 0; j < nr; j++)
                    destination[r * nr + j] = j < cols ? from[j] : (T)0;
            }
        }
        row += run;
    }
}

/* C = op(A) op(B) (C [m, n], ldc; not read) for the rows of A's micro-panels
 * panel_first..panel_last-1 only, both operands pre-packed as above; on the calling
 * thread (threads split the panels between them). The loop order is gemm_packed's. */
void AG_NAME(gemm_prepacked)(int64_t m, int64_t n, int64_t k, const T *packed_a, const T *packed_b, T *c,
                             int64_t ldc, int64_t panel_first, int64_t panel_last) {
    AG_CONFIG config;
    if (m <= 0 || n <= 0 || panel_last <= panel_first)
        return;
    AG_SELECT(ag_get_simd_level(), &config);
    const int mr = config.mr, nr = config.nr;
    const int64_t row_last = panel_last * mr < m ? panel_last * mr : m;
    if (k <= 0) {
        for (int64_t i = panel_first * mr; i < row_last; i++)
            for (int64_t j = 0; j < n; j++)
                c[i * ldc + j] = 0;
        return;
    }
    const int64_t depth = AG_NAME(packed_depth)(&config, k);
    const int64_t m_padded = (m + mr - 1) / mr * mr, panels = (n + nr - 1) / nr, n_padded = panels * nr;
    const int64_t block_rows = 2 * config.mc / mr * mr;
    for (int64_t pc = 0; pc < k; pc += depth) {
        const int64_t kc = k - pc < depth ? k - pc : depth;
        const T *slice_a = packed_a + pc * m_padded, *slice_b = packed_b + pc * n_padded;
        for (int64_t ic = panel_first * mr; ic < row_last; ic += block_rows) {
            const int64_t ic_end = ic + block_rows < row_last ? ic + block_rows : row_last;
            for (int64_t jp = 0; jp < panels; jp++) {
                const int64_t j = jp * nr;
                const int n_tile = (int)(n - j < nr ? n - j : nr);
                for (int64_t ir = ic; ir < ic_end; ir += mr) {
                    const int m_tile = (int)(m - ir < mr ? m - ir : mr);
                    config.kernel(kc, slice_a + ir * kc, slice_b + j * kc, nr, c + ir * ldc + j, ldc, (T)1,
                                  pc == 0 ? (T)0 : (T)1, m_tile, n_tile);
                }
            }
        }
    }
}

/* The width of B's micro-panels at the level in force (a product reads B in place,
 * without packing, when its columns are whole panels). */
int AG_NAME(gemm_panel_columns)(void) {
    AG_CONFIG config;
    AG_SELECT(ag_get_simd_level(), &config);
    return config.nr;
}

/* C = op(A) [m, k] @ B [k, n] for the rows of A's micro-panels panel_first..panel_last-1,
 * A pre-packed (gemm_pack_a_columns) and B read where it is, n a multiple of the panel
 * width: row p of B is at b_low + p * ldb below k_split and at b_high + (p - k_split) *
 * ldb from there on; b_low NULL means zero rows, which are skipped. The LSTM's weight
 * gradient takes h_{t-1} this way (b_low h0, b_high the states), where packing it was a
 * pass writing 2.9 MB a layer. C is not read. */
void AG_NAME(gemm_prepacked_a)(int64_t m, int64_t n, int64_t k, const T *packed_a, int64_t k_split,
                               const T *b_low, const T *b_high, int64_t ldb, T *c, int64_t ldc, int64_t panel_first,
                               int64_t panel_last) {
    AG_CONFIG config;
    int started = 0;
    if (m <= 0 || n <= 0 || panel_last <= panel_first)
        return;
    AG_SELECT(ag_get_simd_level(), &config);
    const int mr = config.mr, nr = config.nr;
    const int64_t row_last = panel_last * mr < m ? panel_last * mr : m;
    const int64_t depth = AG_NAME(packed_depth)(&config, k > 0 ? k : 1);
    const int64_t m_padded = (m + mr - 1) / mr * mr, panels = n / nr;
    const int64_t block_rows = 2 * config.mc / mr * mr;
    for (int64_t pc = 0; pc < k; pc += depth) {
        const int64_t kc = k - pc < depth ? k - pc : depth;
        const T *slice_a = packed_a + pc * m_padded;
        for (int part = 0; part < 2; part++) {  /* the slice's rows below k_split, then from it on */
            const int64_t p0 = part == 0 ? pc : (k_split > pc ? k_split : pc);
            const int64_t p1 = part == 0 ? (k_split < pc + kc ? k_split : pc + kc) : pc + kc;
            const T *b = part == 0 ? (b_low != NULL ? b_low + p0 * ldb : NULL) : b_high + (p0 - k_split) * ldb;
            if (p1 <= p0 || b == NULL)
                continue;
            for (int64_t ic = panel_first * mr; ic < row_last; ic += block_rows) {
                const int64_t ic_end = ic + block_rows < row_last ? ic + block_rows : row_last;
                for (int64_t jp = 0; jp < panels; jp++)
                    for (int64_t ir = ic; ir < ic_end; ir += mr) {
                        const int m_tile = (int)(m - ir < mr ? m - ir : mr);
                        config.kernel(p1 - p0, slice_a + ir * kc + (p0 - pc) * mr, b + jp * nr, ldb,
                                      c + ir * ldc + jp * nr, ldc, (T)1, started ? (T)1 : (T)0, m_tile, nr);
                    }
            }
            started = 1;
        }
    }
    if (!started)  /* no rows at all, or zero rows only */
        for (int64_t i = panel_first * mr; i < row_last; i++)
            for (int64_t j = 0; j < n; j++)
                c[i * ldc + j] = 0;
}
