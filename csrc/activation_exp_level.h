/* activation_exp_level.h: elu's and the binary cross-entropy with logits' float32 loops
 * (the forms of activation_internal.h's ag_exp_span) at one SIMD level, included by
 * activation_x86.c after activation_gelu_level.h under the same double-lane GV_ macros,
 * whose exp (error < 2e-13 relative) and sigmoid they use.
 *
 * Double lanes for the reason gelu's tanh form has them: the results are then exact to
 * float32's rounding, and each float is converted once each way.
 *   expm1(x), x <= 0: exp(x) - 1 cancels for small |x|; where |x| < ln2 / 2 it is the
 *     Taylor series x (1 + x/2 + ... + x^11 / 12!) instead (truncation < 2e-14 relative).
 *   log1p(e), e = exp(-|x|) in (0, 1]: 2 atanh(s) with s = e / (2 + e) in (0, 1/3],
 *     2 s (1 + s^2/3 + ... + s^18/19) (truncation < 2e-11 relative), no cancellation
 *     however small e is. */

/* expm1 of x <= 0 (NaN stays NaN; -inf gives -1) */
static inline GV AG_GELU_NAME(expm1_nonpositive)(GV x) {
    GV p = GV_SET1(1.0 / 479001600.0);
    p = GV_FMADD(p, x, GV_SET1(1.0 / 39916800.0));
    p = GV_FMADD(p, x, GV_SET1(1.0 / 3628800.0));
    p = GV_FMADD(p, x, GV_SET1(1.0 / 362880.0));
    p = GV_FMADD(p, x, GV_SET1(1.0 / 40320.0));
    p = GV_FMADD(p, x, GV_SET1(1.0 / 5040.0));
    p = GV_FMADD(p, x, GV_SET1(1.0 / 720.0));
    p = GV_FMADD(p, x, GV_SET1(1.0 / 120.0));
    p = GV_FMADD(p, x, GV_SET1(1.0 / 24.0));
    p = GV_FMADD(p, x, GV_SET1(1.0 / 6.0));
    p = GV_FMADD(p, x, GV_SET1(0.5));
    p = GV_FMADD(p, x, GV_SET1(1.0));
    const GV small = GV_MUL(p, x);
    const GV large = GV_SUB(AG_GELU_NAME(exp)(x), GV_SET1(1.0));
    return GV_SELECT_LT(GV_SET1(-0.34657359027997264), x, small, large);
}

/* log1p(e) for e in [0, 1] */
static inline GV AG_GELU_NAME(log1p_unit)(GV e) {
    const GV s = GV_DIV(e, GV_ADD(GV_SET1(2.0), e));
    const GV s2 = GV_MUL(s, s);
    GV p = GV_SET1(1.0 / 19.0);
    p = GV_FMADD(p, s2, GV_SET1(1.0 / 17.0));
    p = GV_FMADD(p, s2, GV_SET1(1.0 / 15.0));
    p = GV_FMADD(p, s2, GV_SET1(1.0 / 13.0));
    p = GV_FMADD(p, s2, GV_SET1(1.0 / 11.0));
    p = GV_FMADD(p, s2, GV_SET1(1.0 / 9.0));
    p = GV_FMADD(p, s2, GV_SET1(1.0 / 7.0));
    p = GV_FMADD(p, s2, GV_SET1(1.0 / 5.0));
    p = GV_FMADD(p, s2, GV_SET1(1.0 / 3.0));
    p = GV_FMADD(p, s2, GV_SET1(1.0));
    return GV_MUL(GV_ADD(s, s), p);
}

static inline GV AG_GELU_NAME(exp_lanes)(GV x, GV other, int form, GV parameter) {
    const GV zero = GV_SET1(0.0);
    /* min and max pass their second operand's NaN: x second keeps a NaN input NaN */
    const GV nonpositive = GV_MIN(zero, x);
    switch (form) {
    case AG_ELU_FORWARD:
        return GV_SELECT_LT(zero, x, x, GV_MUL(parameter, AG_GELU_NAME(expm1_nonpositive)(nonpositive)));
    case AG_ELU_BACKWARD:
        return GV_MUL(other, GV_SELECT_LT(zero, x, GV_SET1(1.0),
                                          GV_MUL(parameter, AG_GELU_NAME(exp)(nonpositive))));
    case AG_BCE_LOGITS_FORWARD: {
        /* -|x| = min(x, -x) */
        const GV e = AG_GELU_NAME(exp)(GV_MIN(GV_SUB(zero, x), x));
        return GV_ADD(GV_FNMADD(x, other, GV_MAX(zero, x)), AG_GELU_NAME(log1p_unit)(e));
    }
    default: /* AG_BCE_LOGITS_BACKWARD */
        return GV_MUL(GV_SUB(AG_GELU_NAME(sigmoid)(x), other), parameter);
    }
}

/* the last partial vector goes through a padded copy, so every element takes the same
 * path (and the result never depends on where a thread's share starts) */
static void AG_GELU_NAME(exp_span)(const float *x, const float *other, int form, double parameter,
                                   float *out, int64_t begin, int64_t end) {
    const GV scalar = GV_SET1(parameter);
    const int uses_other = form != AG_ELU_FORWARD;
    int64_t i = begin;
    for (; i + GELU_LANES <= end; i += GELU_LANES) {
        const GV v = GV_LOAD_FLOATS(x + i);
        const GV o = uses_other ? GV_LOAD_FLOATS(other + i) : v;
        GV_STORE_FLOATS(out + i, AG_GELU_NAME(exp_lanes)(v, o, form, scalar));
    }
    if (i < end) {
        float x_tail[GELU_LANES] = {0}, other_tail[GELU_LANES] = {0}, out_tail[GELU_LANES];
        const int64_t rest = end - i;
        memcpy(x_tail, x + i, (size_t)rest * sizeof(float));
        if (uses_other) memcpy(other_tail, other + i, (size_t)rest * sizeof(float));
        AG_GELU_NAME(exp_span)(x_tail, other_tail, form, parameter, out_tail, 0, GELU_LANES);
        memcpy(out + i, out_tail, (size_t)rest * sizeof(float));
    }
}
