/* activation_gelu_level.h: the tanh gelu's and silu's float32 forward and backward loops
 * at one SIMD level, included by activation_x86.c once per level under that level's
 * target, with the level's double-lane vector operations defined as the GV_ macros below
 * (GV: a vector of GELU_LANES doubles; AG_GELU_NAME(x) names the level's functions). The
 * exact gelu's loops are in float lanes: activation_gelu_float_level.h.
 *
 * Why double lanes for float32 data: 1 + tanh(s) = 2 / (1 + e^(-2s)) and silu's sigmoid
 * need e^y with a small RELATIVE error in the left tail, and e^y's relative error is y's
 * absolute error, ~|y| * eps for a y computed in float (|y| ~ 90 at x = -10 for the tanh
 * form): up to tens of float ulps. In double the same formulas are exact to float32's
 * rounding, and a float element is converted once each way. (The exact gelu has the same
 * problem with e^(-x^2/2), which its float-lane loops solve by splitting x^2 exactly.)
 *
 * exp is a range reduction by ln 2 (split in two parts, exact products) and a degree-10
 * Taylor polynomial on |r| <= ln2 / 2 (error < 2e-13), scaled by 2^n; arguments above 300
 * give inf, below -300 give 0 (float32 has no nonzero e^-300 anyway), NaN gives NaN. */

static inline GV AG_GELU_NAME(exp)(GV y) {
    const GV low = GV_SET1(-300.0), high = GV_SET1(300.0);
    /* clamped with the argument second, so NaN passes through max and min */
    const GV clamped = GV_MIN(high, GV_MAX(low, y));
    const GV n = GV_ROUND(GV_MUL(clamped, GV_SET1(1.4426950408889634)));
    GV r = GV_FNMADD(n, GV_SET1(6.93147180369123816490e-01), clamped);
    r = GV_FNMADD(n, GV_SET1(1.90821492927058770002e-10), r);
    GV p = GV_SET1(1.0 / 3628800.0);
    p = GV_FMADD(p, r, GV_SET1(1.0 / 362880.0));
    p = GV_FMADD(p, r, GV_SET1(1.0 / 40320.0));
    p = GV_FMADD(p, r, GV_SET1(1.0 / 5040.0));
    p = GV_FMADD(p, r, GV_SET1(1.0 / 720.0));
    p = GV_FMADD(p, r, GV_SET1(1.0 / 120.0));
    p = GV_FMADD(p, r, GV_SET1(1.0 / 24.0));
    p = GV_FMADD(p, r, GV_SET1(1.0 / 6.0));
    p = GV_FMADD(p, r, GV_SET1(0.5));
    p = GV_FMADD(p, r, GV_SET1(1.0));
    p = GV_FMADD(p, r, GV_SET1(1.0));
    p = GV_SCALE2(p, n);
    p = GV_SELECT_LT(high, y, GV_SET1(INFINITY), p);
    return GV_SELECT_LT(y, low, GV_SET1(0.0), p);
}

/* 1 + tanh(s) = 2 / (1 + e^(-2s)) for the tanh form's s = sqrt(2/pi) (x + 0.044715 x^3):
 * no cancellation in the left tail, where 1 + tanh(s) is small. */
static inline GV AG_GELU_NAME(one_plus_tanh)(GV x) {
    const GV minus_two_s = GV_MUL(GV_MUL(x, GV_SET1(-2.0 * AG_GELU_TANH_SCALE)),
                                  GV_FMADD(GV_MUL(x, x), GV_SET1(AG_GELU_TANH_CUBIC), GV_SET1(1.0)));
    return GV_DIV(GV_SET1(2.0), GV_ADD(GV_SET1(1.0), AG_GELU_NAME(exp)(minus_two_s)));
}

/* sigmoid(x) = 1 / (1 + e^(-x)), for silu */
static inline GV AG_GELU_NAME(sigmoid)(GV x) {
    return GV_DIV(GV_SET1(1.0), GV_ADD(GV_SET1(1.0), AG_GELU_NAME(exp)(GV_SUB(GV_SET1(0.0), x))));
}

/* the tanh gelu (form AG_GELU_TANH) or silu (AG_SILU) */
static inline GV AG_GELU_NAME(forward_lanes)(GV x, int form) {
    if (form == AG_SILU) return GV_MUL(x, AG_GELU_NAME(sigmoid)(x));
    return GV_MUL(GV_MUL(GV_SET1(0.5), x), AG_GELU_NAME(one_plus_tanh)(x));
}

/* the tanh gelu's slope 0.5 q + 0.5 x q (2 - q) s'(x) with q = 1 + tanh(s) (1 - tanh^2 =
 * q (2 - q)), or silu'(x) = sigmoid (1 + x (1 - sigmoid)). */
static inline GV AG_GELU_NAME(slope_lanes)(GV x, int form) {
    if (form == AG_SILU) {
        const GV sigmoid = AG_GELU_NAME(sigmoid)(x);
        return GV_FMADD(GV_MUL(x, sigmoid), GV_SUB(GV_SET1(1.0), sigmoid), sigmoid);
    }
    const GV q = AG_GELU_NAME(one_plus_tanh)(x);
    const GV inner_slope = GV_MUL(GV_SET1(AG_GELU_TANH_SCALE),
                                  GV_FMADD(GV_MUL(x, x), GV_SET1(3.0 * AG_GELU_TANH_CUBIC), GV_SET1(1.0)));
    const GV half_q = GV_MUL(GV_SET1(0.5), q);
    return GV_FMADD(GV_MUL(GV_MUL(half_q, x), GV_SUB(GV_SET1(2.0), q)), inner_slope, half_q);
}

/* out[i] = f(x[i]) (grad NULL) or grad[i] * f'(x[i]) for i in [begin, end), f the tanh
 * gelu or silu (activation_x86.c sends the exact gelu to the float-lane loop); the
 * last partial vector goes through a padded copy, so every element takes the same path. */
static void AG_GELU_NAME(span)(const float *x, const float *grad, int form, float *out,
                               int64_t begin, int64_t end) {
    int64_t i = begin;
    for (; i + GELU_LANES <= end; i += GELU_LANES) {
        const GV v = GV_LOAD_FLOATS(x + i);
        if (grad == NULL) GV_STORE_FLOATS(out + i, AG_GELU_NAME(forward_lanes)(v, form));
        else GV_STORE_FLOATS(out + i, GV_MUL(GV_LOAD_FLOATS(grad + i), AG_GELU_NAME(slope_lanes)(v, form)));
    }
    if (i < end) {
        float x_tail[GELU_LANES] = {0}, grad_tail[GELU_LANES] = {0}, out_tail[GELU_LANES];
        const int64_t rest = end - i;
        memcpy(x_tail, x + i, (size_t)rest * sizeof(float));
        if (grad != NULL) memcpy(grad_tail, grad + i, (size_t)rest * sizeof(float));
        AG_GELU_NAME(span)(x_tail, grad != NULL ? grad_tail : NULL, form, out_tail, 0, GELU_LANES);
        memcpy(out + i, out_tail, (size_t)rest * sizeof(float));
    }
}
