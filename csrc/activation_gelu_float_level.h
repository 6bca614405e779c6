/* activation_gelu_float_level.h: the exact gelu's float32 forward and backward in FLOAT
 * lanes (16 per AVX-512 vector, 8 per AVX2 one: twice the double lanes of
 * activation_gelu_level.h), included by activation_x86.c once per level under that
 * level's target, with the level's float-lane operations defined as the GF_ macros (GF: a
 * vector of GELU_FLOAT_LANES floats; AG_GELU_FLOAT_NAME(x) names the level's functions).
 * The tanh form and silu stay in double lanes (activation_gelu_level.h).
 *
 * Phi(x) = P(N(0, 1) <= x) comes from the left tail T(x) = Phi(-|x|) = erfc(t) / 2,
 * t = |x| / sqrt 2, written as
 *     T = u Q(u) e^(-x^2 / 2) / 2,   u = 1 / (1 + t / 2) in (0, 1],
 * Q(u) = erfc(t) e^(t^2) / u a smooth function of u (1 at u = 1, 0.28 as u -> 0), fitted
 * (Q / 2) as a degree-10 polynomial in w = 2.25 u - 1.25 (u in [0.15, 1], i.e. |x| <=
 * 14.6: beyond, e^(-x^2/2) is 0 in float32 anyway), least squares of the relative error
 * at 2000 Chebyshev points against 30-digit mpmath: max relative error 4.2e-9, 1.0e-8
 * with the coefficients rounded to float (float32's half ulp: 6e-8).
 * Phi = T for x < 0, 1 - T for x >= 0, with no cancellation in the left tail.
 *
 * Why e^(-x^2/2) needs care in float: its relative error is its argument's absolute
 * error, and x^2 rounded to float is off by up to x^2 2^-24 (~60 ulp of the result at
 * x = -10). Here x^2 = hi + lo exactly (lo by FMA), the range reduction n = round(-hi/2
 * log2 e), r = -hi/2 - n ln2 is exact (FMA, ln 2 split in two), lo/2 is added to r after,
 * and e^r is a degree-7 Taylor polynomial on |r| <= ln2 / 2 (error < 6e-9), scaled by 2^n.
 * The one e^(-x^2/2) serves Phi and the backward's density phi(x) = e^(-x^2/2) / sqrt(2 pi).
 *
 * The rest is a chain of float roundings, each <= half an ulp: t, the division (the
 * rounding of 1 + t/2 itself is recovered, below), w, Horner, two products, then 1 - T
 * and the product by x. Measured against x Phi(x) in float64 of the same float32 inputs,
 * every 64th float32 in [-12, 12]: the forward within 3.1 eps relative (5.7 ulp) wherever
 * gelu is a normal float (the double lanes were 0.5 ulp), the backward within 1.8e-7
 * absolute (Phi + x phi cancels near its zero at x = -0.75); figures and PyTorch's in
 * autograd_core/kernels/activation.py, the bound in tests/test_activation_kernels.py. */

/* x clamped to [-15, 15] (e^-112.5 is 0 in float32, whose smallest subnormal is e^-103.3;
 * and inf^2 - inf would be NaN), NaN stays NaN (max and min pass their second operand's
 * NaN) */
static inline GF AG_GELU_FLOAT_NAME(clamp)(GF x) {
    return GF_MIN(GF_SET1(15.0f), GF_MAX(GF_SET1(-15.0f), x));
}

/* e^(-x^2/2) of a clamped x: x^2 = hi + lo exactly */
static inline GF AG_GELU_FLOAT_NAME(exp_half_square)(GF clamped) {
    const GF hi = GF_MUL(clamped, clamped);
    const GF lo = GF_FMSUB(clamped, clamped, hi);
    const GF a = GF_MUL(hi, GF_SET1(-0.5f));
    const GF n = GF_ROUND(GF_MUL(a, GF_SET1(1.44269504088896341f)));
    GF r = GF_FNMADD(n, GF_SET1(0.693359375f), a);       /* ln 2's high part: 9 bits */
    r = GF_FNMADD(n, GF_SET1(-2.12194440e-4f), r);       /* and the rest */
    r = GF_FNMADD(lo, GF_SET1(0.5f), r);
    GF p = GF_SET1(1.0f / 5040.0f);
    p = GF_FMADD(p, r, GF_SET1(1.0f / 720.0f));
    p = GF_FMADD(p, r, GF_SET1(1.0f / 120.0f));
    p = GF_FMADD(p, r, GF_SET1(1.0f / 24.0f));
    p = GF_FMADD(p, r, GF_SET1(1.0f / 6.0f));
    p = GF_FMADD(p, r, GF_SET1(0.5f));
    p = GF_FMADD(p, r, GF_SET1(1.0f));
    p = GF_FMADD(p, r, GF_SET1(1.0f));
    return GF_SCALE2(p, n);
}

/* T(x) = Phi(-|x|) of a clamped x, from e = e^(-x^2/2) */
static inline GF AG_GELU_FLOAT_NAME(left_tail)(GF clamped, GF e) {
    const GF t = GF_MUL(GF_ABS(clamped), GF_SET1(0.70710678118654752f));
    /* u = 1 / d, d = 1 + t/2 = rounded + missing exactly (1 - rounded is exact for
     * rounded < 2^24, so one FMA gives what the rounding dropped); u = u0 (1 - missing
     * u0) then holds only the division's rounding: d just above 1 alone cost 1 ulp */
    const GF half_t = GF_MUL(t, GF_SET1(0.5f));
    const GF rounded = GF_ADD(half_t, GF_SET1(1.0f));
    const GF missing = GF_ADD(half_t, GF_SUB(GF_SET1(1.0f), rounded));
    const GF u0 = GF_DIV(GF_SET1(1.0f), rounded);
    const GF u = GF_FNMADD(GF_MUL(u0, u0), missing, u0);
    /* w = 2.25 u - 1.25 (exact constants: one rounding), u clamped to the fit's [0.15, 1]
     * (NaN passes through); h = Q(u) / 2 */
    const GF w = GF_FMADD(GF_MAX(GF_SET1(0.15f), u), GF_SET1(2.25f), GF_SET1(-1.25f));
    GF h = GF_SET1(5.734449587e-06f);
    h = GF_FMADD(h, w, GF_SET1(2.336502121e-06f));
    h = GF_FMADD(h, w, GF_SET1(-5.928073733e-05f));
    h = GF_FMADD(h, w, GF_SET1(3.290901077e-05f));
    h = GF_FMADD(h, w, GF_SET1(4.323180183e-04f));
    h = GF_FMADD(h, w, GF_SET1(-5.918873940e-04f));
    h = GF_FMADD(h, w, GF_SET1(-3.824370680e-03f));
    h = GF_FMADD(h, w, GF_SET1(4.595424049e-03f));
    h = GF_FMADD(h, w, GF_SET1(5.727299303e-02f));
    h = GF_FMADD(h, w, GF_SET1(1.667761356e-01f));
    h = GF_FMADD(h, w, GF_SET1(2.753576934e-01f));
    return GF_MUL(GF_MUL(u, h), e);
}

static inline GF AG_GELU_FLOAT_NAME(normal_cdf)(GF x, GF clamped, GF e) {
    const GF tail = AG_GELU_FLOAT_NAME(left_tail)(clamped, e);
    return GF_SELECT_LT(x, GF_SET1(0.0f), tail, GF_SUB(GF_SET1(1.0f), tail));
}

/* out[i] = gelu(x[i]) = x Phi(x) (grad NULL) or grad[i] (Phi(x) + x phi(x)), for the
 * exact form only; the last partial vector goes through a padded copy, so every element
 * takes the same path (and the result never depends on where a thread's share starts). */
static void AG_GELU_FLOAT_NAME(span)(const float *x, const float *grad, float *out,
                                     int64_t begin, int64_t end) {
    int64_t i = begin;
    for (; i + GELU_FLOAT_LANES <= end; i += GELU_FLOAT_LANES) {
        const GF v = GF_LOAD(x + i);
        const GF clamped = AG_GELU_FLOAT_NAME(clamp)(v);
        const GF e = AG_GELU_FLOAT_NAME(exp_half_square)(clamped);
        const GF cdf = AG_GELU_FLOAT_NAME(normal_cdf)(v, clamped, e);
        if (grad == NULL) {
            GF_STORE(out + i, GF_MUL(v, cdf));
        } else {
            const GF slope = GF_FMADD(GF_MUL(v, GF_SET1(0.39894228040143267794f)), e, cdf);
            GF_STORE(out + i, GF_MUL(GF_LOAD(grad + i), slope));
        }
    }
    if (i < end) {
        float x_tail[GELU_FLOAT_LANES] = {0}, grad_tail[GELU_FLOAT_LANES] = {0}, out_tail[GELU_FLOAT_LANES];
        const int64_t rest = end - i;
        memcpy(x_tail, x + i, (size_t)rest * sizeof(float));
        if (grad != NULL) memcpy(grad_tail, grad + i, (size_t)rest * sizeof(float));
        AG_GELU_FLOAT_NAME(span)(x_tail, grad != NULL ? grad_tail : NULL, out_tail, 0, GELU_FLOAT_LANES);
        memcpy(out + i, out_tail, (size_t)rest * sizeof(float));
    }
}
