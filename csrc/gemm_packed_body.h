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
    const int mr = config.mr, nr = config.nr;
    const int64_t depth = AG_NAME(packed_depth)(&config, k);
    const int64_t panels = (n + nr - 1) / nr, n_padded = panels * nr;
    /* Row sub-blocks of twice the level's mc, as the driver's unit path
     * (AG_GEMM_UNIT_SUBBLOCK): a batch share of 100 or 128 rows is one block, which
     * meets each B micro-panel once per depth slice. */
    const int64_t block_rows = 2 * config.mc / mr * mr;
    for (int64_t pc = 0; pc < k; pc += depth) {
        const int64_t kc = k - pc < depth ? k - pc : depth;
        const T slice_beta = pc == 0 ? beta : (T)1;
        const T *slice = packed + pc * n_padded;
        AG_NAME(packed_pack_a)(&config, a_scratch, a, lda, m, pc, kc);
        for (int64_t ic = 0; ic < m; ic += block_rows) {
            const int64_t ic_end = ic + block_rows < m ? ic + block_rows : m;
            for (int64_t jp = 0; jp < panels; jp++) {
                const int64_t j = jp * nr;
                const int n_tile = (int)(n - j < nr ? n - j : nr);
                const T *b_panel = slice + j * kc;
                for (int64_t ir = ic; ir < ic_end; ir += mr) {
                    const int m_tile = (int)(m - ir < mr ? m - ir : mr);
                    config.kernel(kc, a_scratch + ir * kc, b_panel, nr, c + ir * ldc + j, ldc, alpha, slice_beta,
                                  m_tile, n_tile);
                }
            }
        }
    }
}
