/* rnn_cells_rows.h: the per-row loops of the fused LSTM / GRU / Elman RNN cells, written once and
 * included for each (element type, SIMD level) with these macros defined:
 *   T             element type (float / double)
 *   AG_NAME(x)    name mangling, e.g. x##_f32_avx512; the one public symbol an
 *                 inclusion defines is AG_NAME(ag_rnn_rows), which fills AG_ROWS_TABLE
 *   AG_ROWS_TABLE ag_rnn_rows_f32 / ag_rnn_rows_f64 (rnn_cells_internal.h)
 *   EXP, TANH     the exp and tanh the units use
 * rnn_cells.c includes it for the portable level; rnn_cells_x86.c includes it again
 * under `#pragma GCC target` for AVX2+FMA and for AVX-512F, so the same C is
 * vectorized for each ISA and the driver picks one by ag_get_simd_level(). Rows are
 * elementwise (add_rows sums each column in row order whatever the vector width). The
 * portable level does not contract a*b+c into FMAs (-std=c99 implies
 * -ffp-contract=off); rnn_cells_x86.c does (fp-contract=fast), so the AVX2 and AVX-512
 * rows may differ from the portable ones in the last bits.
 *
 * Each row loop is its own function, outside any OpenMP region: GCC's outlined
 * parallel bodies would not get this file's optimize pragma, and restrict lets the
 * loops be vectorized. */

/* 1 / (1 + e^-v): for very negative v, e^-v overflows to inf and the result is a clean
 * 0, never NaN. */
AG_UNIT T AG_NAME(sigmoid)(T v) { return (T)1 / ((T)1 + EXP(-v)); }

/* One LSTM unit: pre-activations in, state and saved activations out. */
AG_UNIT void AG_NAME(lstm_unit)(T pi, T pf, T pg, T po, T cp, T *hb, T *cb, T *s,
                                      int64_t hidden) {
    const T i = AG_NAME(sigmoid)(pi), f = AG_NAME(sigmoid)(pf);
    const T g = TANH(pg), o = AG_NAME(sigmoid)(po);
    const T cn = f * cp + i * g;
    const T tc = TANH(cn);
    *cb = cn;
    *hb = o * tc;
    s[0] = i; s[hidden] = f; s[2 * hidden] = g; s[3 * hidden] = o; s[4 * hidden] = tc;
}

/* One batch row, outside the OpenMP region: GCC's outlined parallel body would not
 * get this file's optimize pragma, and restrict lets the loop be vectorized. The
 * pre-activations are xg + hw + bias, where hw (the recurrent matmul; NULL for a zero
 * state) and bias [4*hidden] may be NULL; each case is its own loop so that no loop
 * tests a pointer per element. */
static void AG_NAME(lstm_forward_row)(const T *restrict xg, const T *restrict hw,
                                      const T *restrict bias, const T *restrict cp,
                                      T *restrict hb, T *restrict cb, T *restrict s,
                                      int64_t hidden) {
    const int64_t h1 = hidden, h2 = 2 * hidden, h3 = 3 * hidden;
    int64_t j;
    if (hw == NULL && bias == NULL) {
        for (j = 0; j < hidden; j++)
            AG_NAME(lstm_unit)(xg[j], xg[h1 + j], xg[h2 + j], xg[h3 + j],
                               cp[j], hb + j, cb + j, s + j, hidden);
    } else if (bias == NULL) {
        for (j = 0; j < hidden; j++)
            AG_NAME(lstm_unit)(xg[j] + hw[j], xg[h1 + j] + hw[h1 + j],
                               xg[h2 + j] + hw[h2 + j], xg[h3 + j] + hw[h3 + j],
                               cp[j], hb + j, cb + j, s + j, hidden);
    } else if (hw == NULL) {
        for (j = 0; j < hidden; j++)
            AG_NAME(lstm_unit)(xg[j] + bias[j], xg[h1 + j] + bias[h1 + j],
                               xg[h2 + j] + bias[h2 + j], xg[h3 + j] + bias[h3 + j],
                               cp[j], hb + j, cb + j, s + j, hidden);
    } else {
        for (j = 0; j < hidden; j++)
            AG_NAME(lstm_unit)(xg[j] + hw[j] + bias[j], xg[h1 + j] + hw[h1 + j] + bias[h1 + j],
                               xg[h2 + j] + hw[h2 + j] + bias[h2 + j],
                               xg[h3 + j] + hw[h3 + j] + bias[h3 + j],
                               cp[j], hb + j, cb + j, s + j, hidden);
    }
}

/* The backward of one unit; gc is the gradient arriving at c from the next step. */
AG_UNIT void AG_NAME(lstm_unit_backward)(const T *s, T cp, T gh, T gc, T *gg,
                                               T *gcp, int64_t hidden) {
    const T i = s[0], f = s[hidden], g = s[2 * hidden];
    const T o = s[3 * hidden], tc = s[4 * hidden];
    /* c feeds both the next step (gc) and h = o * tanh(c) */
    const T dc = gc + gh * o * ((T)1 - tc * tc);
    gg[0] = dc * g * i * ((T)1 - i);
    gg[hidden] = dc * cp * f * ((T)1 - f);
    gg[2 * hidden] = dc * i * ((T)1 - g * g);
    gg[3 * hidden] = gh * tc * o * ((T)1 - o);
    *gcp = dc * f;
}

static void AG_NAME(lstm_backward_row)(const T *restrict s, const T *restrict cp,
                                       const T *restrict gh, const T *restrict gc,
                                       T *restrict gg, T *restrict gcp, int64_t hidden) {
    int64_t j;
    if (gc == NULL) {
        for (j = 0; j < hidden; j++)
            AG_NAME(lstm_unit_backward)(s + j, cp[j], gh[j], (T)0, gg + j, gcp + j, hidden);
    } else {
        for (j = 0; j < hidden; j++)
            AG_NAME(lstm_unit_backward)(s + j, cp[j], gh[j], gc[j], gg + j, gcp + j, hidden);
    }
}

/* acc[j] += sum over rows first..last-1 of grad_gates[row][j]: one step's share of the
 * bias gradient, summed while the rows are still in cache. */
static void AG_NAME(add_rows)(T *restrict acc, const T *restrict rows,
                                            int64_t count, int64_t width) {
    int64_t b, j;
    for (b = 0; b < count; b++)
        for (j = 0; j < width; j++)
            acc[j] += rows[b * width + j];
}


/* One GRU unit: pre-activations in (xi_* = x W_i*^T + b_i*, gh_* = h W_h*^T + b_h*),
 * h' and the saved r, z, n, gh_n out. hp is the unit's previous state. */
AG_UNIT void AG_NAME(gru_unit)(T xr, T xz, T xn, T ghr, T ghz, T ghn, T hp, T *hb, T *s,
                               int64_t hidden) {
    const T r = AG_NAME(sigmoid)(xr + ghr);
    const T z = AG_NAME(sigmoid)(xz + ghz);
    const T n = TANH(xn + r * ghn);
    *hb = ((T)1 - z) * n + z * hp;
    s[0] = r; s[hidden] = z; s[2 * hidden] = n; s[3 * hidden] = ghn;
}

/* hp NULL is a zero state (a layer's first step without an initial state); each case
 * is its own loop so that no loop tests a pointer per element. */
static void AG_NAME(gru_forward_row)(const T *restrict xi, const T *restrict hh,
                                     const T *restrict hp, T *restrict hb, T *restrict s,
                                     int64_t hidden) {
    const int64_t h1 = hidden, h2 = 2 * hidden;
    int64_t j;
    if (hp == NULL) {
        for (j = 0; j < hidden; j++)
            AG_NAME(gru_unit)(xi[j], xi[h1 + j], xi[h2 + j], hh[j], hh[h1 + j], hh[h2 + j], (T)0,
                              hb + j, s + j, hidden);
    } else {
        for (j = 0; j < hidden; j++)
            AG_NAME(gru_unit)(xi[j], xi[h1 + j], xi[h2 + j], hh[j], hh[h1 + j], hh[h2 + j], hp[j],
                              hb + j, s + j, hidden);
    }
}

/* The backward of one unit: gy arrives at h'; gi and gh receive the gradients of the
 * input and hidden pre-activations, ghp the direct path h' = ... + z * hp only (the
 * path through gh is the caller's matmul with W_hh). */
AG_UNIT void AG_NAME(gru_unit_backward)(const T *s, T hp, T gy, T *gi, T *gh, T *ghp,
                                        int64_t hidden) {
    const T r = s[0], z = s[hidden], n = s[2 * hidden], ghn = s[3 * hidden];
    const T dn = gy * ((T)1 - z) * ((T)1 - n * n);
    const T dz = gy * (hp - n) * z * ((T)1 - z);
    const T dr = dn * ghn * r * ((T)1 - r);
    gi[0] = dr; gi[hidden] = dz; gi[2 * hidden] = dn;
    gh[0] = dr; gh[hidden] = dz; gh[2 * hidden] = dn * r;
    *ghp = gy * z;
}

/* hp NULL is a zero state, as in gru_forward_row. */
static void AG_NAME(gru_backward_row)(const T *restrict s, const T *restrict hp,
                                      const T *restrict gy, T *restrict gi, T *restrict gh,
                                      T *restrict ghp, int64_t hidden) {
    int64_t j;
    if (hp == NULL) {
        for (j = 0; j < hidden; j++)
            AG_NAME(gru_unit_backward)(s + j, (T)0, gy[j], gi + j, gh + j, ghp + j, hidden);
    } else {
        for (j = 0; j < hidden; j++)
            AG_NAME(gru_unit_backward)(s + j, hp[j], gy[j], gi + j, gh + j, ghp + j, hidden);
    }
}

/* The Elman RNN's nonlinearity over count contiguous pre-activations, in place:
 * tanh, or relu when relu is nonzero. */
static void AG_NAME(rnn_forward_span)(T *restrict h, int64_t count, int relu) {
    int64_t j;
    if (relu) {
        for (j = 0; j < count; j++)
            h[j] = h[j] > (T)0 ? h[j] : (T)0;
    } else {
        for (j = 0; j < count; j++)
            h[j] = TANH(h[j]);
    }
}

/* Its backward from the outputs h: grad_pre = (grad_h + carry) * act'(pre), where
 * act' is 1 - h^2 for tanh and [h > 0] for relu; grad_h NULL is zeros (carry, the
 * gradient coming back from the next step, is always given). */
static void AG_NAME(rnn_backward_span)(const T *restrict h, const T *restrict grad_h,
                                       const T *restrict carry, T *restrict grad_pre,
                                       int64_t count, int relu) {
    int64_t j;
    if (relu && grad_h == NULL) {
        for (j = 0; j < count; j++)
            grad_pre[j] = h[j] > (T)0 ? carry[j] : (T)0;
    } else if (relu) {
        for (j = 0; j < count; j++)
            grad_pre[j] = h[j] > (T)0 ? grad_h[j] + carry[j] : (T)0;
    } else if (grad_h == NULL) {
        for (j = 0; j < count; j++)
            grad_pre[j] = carry[j] * ((T)1 - h[j] * h[j]);
    } else {
        for (j = 0; j < count; j++)
            grad_pre[j] = (grad_h[j] + carry[j]) * ((T)1 - h[j] * h[j]);
    }
}

void AG_NAME(ag_rnn_rows)(AG_ROWS_TABLE *rows) {
    rows->lstm_forward_row = AG_NAME(lstm_forward_row);
    rows->lstm_backward_row = AG_NAME(lstm_backward_row);
    rows->add_rows = AG_NAME(add_rows);
    rows->gru_forward_row = AG_NAME(gru_forward_row);
    rows->gru_backward_row = AG_NAME(gru_backward_row);
    rows->rnn_forward_span = AG_NAME(rnn_forward_span);
    rows->rnn_backward_span = AG_NAME(rnn_backward_span);
}
