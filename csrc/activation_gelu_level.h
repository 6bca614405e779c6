/* activation_gelu_level.h: gelu's (and silu's) float32 forward and backward loops at one
 * SIMD level,
 * included by activation_x86.c once per level under that level's target, with the
 * level's double-lane vector operations defined as the GV_ macros below (GV: a vector
 * of GELU_LANES doubles; AG_GELU_NAME(x) names the level's functions).
 *
 * Why double lanes for float32 data: the exact gelu needs erfc with a small RELATIVE
 * error in the left tail (gelu(-5) = -1.4e-6 is still a normal float), and erfc(t) =
 * exp(-t^2) * (...) multiplies exp's argument error, ~t^2 * eps, into the result: in
 * float arithmetic up to ~100 float ulps at t ~ 10. In double the same formulas are
 * exact to float32's rounding, and a float element is converted once each way.
 *
 * erfc(t), t >= 0, is u * exp(-t^2 + P(u)) with u = 1 / (1 + t / 2) in (0, 1] and P a
 * degree-12 polynomial fitted (Chebyshev least squares over u, then converted to powers
 * of u) to log(erfc(t) e^(t^2) / u) computed with 40-digit mpmath: max error 5.9e-9 over
 * u in (0, 1], so erfc's relative error is ~6e-9 (float32's half ulp: 6e-8). exp is a
 * range reduction by ln 2 (split in two parts, exact products) and a degree-10 Taylor
 * polynomial on |r| <= ln2 / 2 (error < 2e-13), scaled by 2^n; arguments above 300 give
 * inf, below -300 give 0 (float32 has no nonzero e^-300 anyway), NaN gives NaN. */

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

/* Phi(x) = P(N(0, 1) <= x) = erfc(-x / sqrt 2) / 2, from erfc(|x| / sqrt 2). */
static inline GV AG_GELU_NAME(normal_cdf)(GV x) {
    const GV t = GV_MUL(GV_ABS(x), GV_SET1(0.70710678118654752440));
    const GV u = GV_DIV(GV_SET1(1.0), GV_FMADD(t, GV_SET1(0.5), GV_SET1(1.0)));
    GV p = GV_SET1(0.054769679258097316);
    p = GV_FMADD(p, u, GV_SET1(-0.50737531888156107));
    p = GV_FMADD(p, u, GV_SET1(1.8539800425381321));
    p = GV_FMADD(p, u, GV_SET1(-3.5058873751787756));
    p = GV_FMADD(p, u, GV_SET1(3.6426044815571119));
    p = GV_FMADD(p, u, GV_SET1(-2.0110277479477818));
    p = GV_FMADD(p, u, GV_SET1(0.66651168160965013));
    p = GV_FMADD(p, u, GV_SET1(-0.32548988986862504));
    p = GV_FMADD(p, u, GV_SET1(-0.058600639919433969));
    p = GV_FMADD(p, u, GV_SET1(0.080919323901591678));
    p = GV_FMADD(p, u, GV_SET1(0.37510982986338326));
    p = GV_FMADD(p, u, GV_SET1(0.99999804688253535));
    p = GV_FMADD(p, u, GV_SET1(-1.2655121177480138));
    /* -t^2 = -x^2 / 2 exactly: a float's square is exact in double */
    const GV half_tail = GV_MUL(GV_SET1(0.5), GV_MUL(u, AG_GELU_NAME(exp)(
        GV_FMADD(GV_MUL(x, x), GV_SET1(-0.5), p))));
    return GV_SELECT_LT(x, GV_SET1(0.0), half_tail, GV_SUB(GV_SET1(1.0), half_tail));
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

static inline GV AG_GELU_NAME(forward_lanes)(GV x, int form) {
    if (form == AG_SILU) return GV_MUL(x, AG_GELU_NAME(sigmoid)(x));
    if (form == AG_GELU_TANH) return GV_MUL(GV_MUL(GV_SET1(0.5), x), AG_GELU_NAME(one_plus_tanh)(x));
    return GV_MUL(x, AG_GELU_NAME(normal_cdf)(x));
}

/* gelu'(x): Phi(x) + x phi(x), or 0.5 q + 0.5 x q (2 - q) s'(x) with q = 1 + tanh(s)
 * (1 - tanh^2 = q (2 - q)); silu'(x) = sigmoid (1 + x (1 - sigmoid)). */
static inline GV AG_GELU_NAME(slope_lanes)(GV x, int form) {
    if (form == AG_SILU) {
        const GV sigmoid = AG_GELU_NAME(sigmoid)(x);
        return GV_FMADD(GV_MUL(x, sigmoid), GV_SUB(GV_SET1(1.0), sigmoid), sigmoid);
    }
    if (form == AG_GELU_TANH) {
        const GV q = AG_GELU_NAME(one_plus_tanh)(x);
        const GV inner_slope = GV_MUL(GV_SET1(AG_GELU_TANH_SCALE),
                                      GV_FMADD(GV_MUL(x, x), GV_SET1(3.0 * AG_GELU_TANH_CUBIC), GV_SET1(1.0)));
        const GV half_q = GV_MUL(GV_SET1(0.5), q);
        return GV_FMADD(GV_MUL(GV_MUL(half_q, x), GV_SUB(GV_SET1(2.0), q)), inner_slope, half_q);
    }
    const GV density = GV_MUL(AG_GELU_NAME(exp)(GV_MUL(GV_MUL(x, x), GV_SET1(-0.5))),
                              GV_SET1(0.39894228040143267794));
    return GV_FMADD(x, density, AG_GELU_NAME(normal_cdf)(x));
}

/* out[i] = gelu(x[i]) (grad NULL) or grad[i] * gelu'(x[i]) for i in [begin, end); the
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
