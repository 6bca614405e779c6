/* activation_x86.c: the float32 bias + ReLU loops and gelu's loops (see
 * activation_internal.h for the contracts; gelu's math is activation_gelu_level.h,
 * included here once per level) with AVX-512F and AVX2 intrinsics; the ReLU loops for channel counts that are multiples of
 * the vector width, so that a vector never straddles two rows and the bias is one
 * load. The ReLU keeps v where !(v <= 0) (an unordered compare: NaN passes through) and
 * writes +0.0 elsewhere, -0.0 included: numpy's maximum(v, 0) exactly. A mask bit is the ordered comparison v > 0 (false for NaN). Each function carries its
 * own target attribute; activation.c calls them only when ag_get_simd_level() allows.
 * elu's and the binary cross-entropy with logits' loops (activation_exp_level.h) share
 * gelu's double-lane macros and exp. */
#include <math.h>
#include <string.h>
#include "activation_internal.h"

#ifdef AG_HAVE_ACTIVATION_X86
#include <immintrin.h>

__attribute__((target("avx512f")))
static void bias_relu_span_avx512(const float *x, const float *bias, int relu, float *y,
                                  uint8_t *mask, int64_t channels, int64_t begin, int64_t end) {
    const __m512 zero = _mm512_setzero_ps();
    int64_t channel = begin % channels;
    for (int64_t i = begin; i < end; i += 16) {
        __m512 v = _mm512_loadu_ps(x + i);
        if (bias != NULL) v = _mm512_add_ps(v, _mm512_loadu_ps(bias + channel));
        if (relu) v = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, zero, _CMP_NLE_UQ), v);
        _mm512_storeu_ps(y + i, v);
        if (mask != NULL) {
            const uint16_t bits = (uint16_t)_mm512_cmp_ps_mask(v, zero, _CMP_GT_OQ);
            memcpy(mask + (i >> 3), &bits, 2);  /* little-endian: element i in bit 0 of byte i/8 */
        }
        channel += 16;
        if (channel == channels) channel = 0;
    }
}

__attribute__((target("avx512f")))
static void relu_bias_backward_span_avx512(const float *grad, const uint8_t *mask, float *grad_x,
                                           float *sums, int64_t channels, int64_t begin, int64_t end) {
    int64_t channel = begin % channels;
    for (int64_t i = begin; i < end; i += 16) {
        __m512 g = _mm512_loadu_ps(grad + i);
        if (mask != NULL) {
            uint16_t bits;
            memcpy(&bits, mask + (i >> 3), 2);
            g = _mm512_maskz_mov_ps((__mmask16)bits, g);
            if (grad_x != NULL) _mm512_storeu_ps(grad_x + i, g);
        }
        if (sums != NULL) _mm512_storeu_ps(sums + channel, _mm512_add_ps(_mm512_loadu_ps(sums + channel), g));
        channel += 16;
        if (channel == channels) channel = 0;
    }
}

__attribute__((target("avx2")))
static void bias_relu_span_avx2(const float *x, const float *bias, int relu, float *y,
                                uint8_t *mask, int64_t channels, int64_t begin, int64_t end) {
    const __m256 zero = _mm256_setzero_ps();
    int64_t channel = begin % channels;
    for (int64_t i = begin; i < end; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        if (bias != NULL) v = _mm256_add_ps(v, _mm256_loadu_ps(bias + channel));
        if (relu) v = _mm256_and_ps(v, _mm256_cmp_ps(v, zero, _CMP_NLE_UQ));
        _mm256_storeu_ps(y + i, v);
        if (mask != NULL) mask[i >> 3] = (uint8_t)_mm256_movemask_ps(_mm256_cmp_ps(v, zero, _CMP_GT_OQ));
        channel += 8;
        if (channel == channels) channel = 0;
    }
}

__attribute__((target("avx2")))
static void relu_bias_backward_span_avx2(const float *grad, const uint8_t *mask, float *grad_x,
                                         float *sums, int64_t channels, int64_t begin, int64_t end) {
    const __m256i lanes = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    int64_t channel = begin % channels;
    for (int64_t i = begin; i < end; i += 8) {
        __m256 g = _mm256_loadu_ps(grad + i);
        if (mask != NULL) {
            /* each lane keeps its gradient where its bit of the mask byte is set */
            const __m256i bits = _mm256_and_si256(_mm256_set1_epi32(mask[i >> 3]), lanes);
            g = _mm256_and_ps(g, _mm256_castsi256_ps(_mm256_cmpeq_epi32(bits, lanes)));
            if (grad_x != NULL) _mm256_storeu_ps(grad_x + i, g);
        }
        if (sums != NULL) _mm256_storeu_ps(sums + channel, _mm256_add_ps(_mm256_loadu_ps(sums + channel), g));
        channel += 8;
        if (channel == channels) channel = 0;
    }
}

void ag_activation_spans_f32_avx512(int64_t channels, ag_activation_spans_f32 *spans) {
    if (channels % 16 != 0) return;
    spans->forward = bias_relu_span_avx512;
    spans->backward = relu_bias_backward_span_avx512;
}

void ag_activation_spans_f32_avx2(int64_t channels, ag_activation_spans_f32 *spans) {
    if (channels % 8 != 0) return;
    spans->forward = bias_relu_span_avx2;
    spans->backward = relu_bias_backward_span_avx2;
}

/* ---- gelu (activation_gelu_level.h), at AVX2+FMA and AVX-512F ---- */

#pragma GCC push_options
#pragma GCC target("avx2,fma")
#define GV __m256d
#define GELU_LANES 4
#define AG_GELU_NAME(x) gelu_##x##_avx2
#define GV_SET1 _mm256_set1_pd
#define GV_ADD _mm256_add_pd
#define GV_SUB _mm256_sub_pd
#define GV_MUL _mm256_mul_pd
#define GV_DIV _mm256_div_pd
#define GV_MIN _mm256_min_pd
#define GV_MAX _mm256_max_pd
#define GV_FMADD _mm256_fmadd_pd
#define GV_FNMADD _mm256_fnmadd_pd
#define GV_ROUND(v) _mm256_round_pd((v), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define GV_SELECT_LT(a, b, then, otherwise) \
    _mm256_blendv_pd((otherwise), (then), _mm256_cmp_pd((a), (b), _CMP_LT_OQ))
#define GV_LOAD_FLOATS(p) _mm256_cvtps_pd(_mm_loadu_ps(p))
#define GV_STORE_FLOATS(p, v) _mm_storeu_ps((p), _mm256_cvtpd_ps(v))
/* p * 2^n for integral n in [-433, 433]: n + 1.5 * 2^52 holds n in its low bits, and
 * the low 12 bits of that plus the bias, shifted into place, are 2^n's exponent field */
static inline __m256d gelu_scale2_avx2(__m256d p, __m256d n) {
    const __m256i bits = _mm256_castpd_si256(_mm256_add_pd(n, _mm256_set1_pd(6755399441055744.0)));
    const __m256i power = _mm256_slli_epi64(_mm256_add_epi64(bits, _mm256_set1_epi64x(1023)), 52);
    return _mm256_mul_pd(p, _mm256_castsi256_pd(power));
}
#define GV_SCALE2 gelu_scale2_avx2
#include "activation_gelu_level.h"
#include "activation_exp_level.h"
#include "activation_gelu_undef.h"
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx512f")
#define GV __m512d
#define GELU_LANES 8
#define AG_GELU_NAME(x) gelu_##x##_avx512
#define GV_SET1 _mm512_set1_pd
#define GV_ADD _mm512_add_pd
#define GV_SUB _mm512_sub_pd
#define GV_MUL _mm512_mul_pd
#define GV_DIV _mm512_div_pd
#define GV_MIN _mm512_min_pd
#define GV_MAX _mm512_max_pd
#define GV_FMADD _mm512_fmadd_pd
#define GV_FNMADD _mm512_fnmadd_pd
#define GV_ROUND(v) _mm512_roundscale_pd((v), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define GV_SELECT_LT(a, b, then, otherwise) \
    _mm512_mask_blend_pd(_mm512_cmp_pd_mask((a), (b), _CMP_LT_OQ), (otherwise), (then))
#define GV_LOAD_FLOATS(p) _mm512_cvtps_pd(_mm256_loadu_ps(p))
#define GV_STORE_FLOATS(p, v) _mm256_storeu_ps((p), _mm512_cvtpd_ps(v))
#define GV_SCALE2 _mm512_scalef_pd
#include "activation_gelu_level.h"
#include "activation_exp_level.h"
#include "activation_gelu_undef.h"
#pragma GCC pop_options

/* ---- the exact gelu in float lanes (activation_gelu_float_level.h) ---- */

#pragma GCC push_options
#pragma GCC target("avx2,fma")
#define GF __m256
#define GELU_FLOAT_LANES 8
#define AG_GELU_FLOAT_NAME(x) gelu_float_##x##_avx2
#define GF_SET1 _mm256_set1_ps
#define GF_ADD _mm256_add_ps
#define GF_SUB _mm256_sub_ps
#define GF_MUL _mm256_mul_ps
#define GF_DIV _mm256_div_ps
#define GF_MIN _mm256_min_ps
#define GF_MAX _mm256_max_ps
#define GF_FMADD _mm256_fmadd_ps
#define GF_FMSUB _mm256_fmsub_ps
#define GF_FNMADD _mm256_fnmadd_ps
#define GF_ROUND(v) _mm256_round_ps((v), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define GF_ABS(v) _mm256_andnot_ps(_mm256_set1_ps(-0.0f), (v))
#define GF_SELECT_LT(a, b, then, otherwise) \
    _mm256_blendv_ps((otherwise), (then), _mm256_cmp_ps((a), (b), _CMP_LT_OQ))
#define GF_LOAD _mm256_loadu_ps
#define GF_STORE _mm256_storeu_ps
/* p * 2^n for integral n in [-254, 0] (e^(-x^2/2)'s exponents): two factors 2^(n/2),
 * each a normal float, so that results in the subnormal range come out right */
static inline __m256 gelu_float_scale2_avx2(__m256 p, __m256 n) {
    const __m256i whole = _mm256_cvtps_epi32(n);
    const __m256i first = _mm256_srai_epi32(whole, 1);
    const __m256i second = _mm256_sub_epi32(whole, first);
    const __m256i bias = _mm256_set1_epi32(127);
    const __m256 first_power = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(first, bias), 23));
    const __m256 second_power = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(second, bias), 23));
    return _mm256_mul_ps(_mm256_mul_ps(p, first_power), second_power);
}
#define GF_SCALE2 gelu_float_scale2_avx2
#include "activation_gelu_float_level.h"
#include "activation_gelu_float_undef.h"
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx512f")
#define GF __m512
#define GELU_FLOAT_LANES 16
#define AG_GELU_FLOAT_NAME(x) gelu_float_##x##_avx512
#define GF_SET1 _mm512_set1_ps
#define GF_ADD _mm512_add_ps
#define GF_SUB _mm512_sub_ps
#define GF_MUL _mm512_mul_ps
#define GF_DIV _mm512_div_ps
#define GF_MIN _mm512_min_ps
#define GF_MAX _mm512_max_ps
#define GF_FMADD _mm512_fmadd_ps
#define GF_FMSUB _mm512_fmsub_ps
#define GF_FNMADD _mm512_fnmadd_ps
#define GF_ROUND(v) _mm512_roundscale_ps((v), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define GF_ABS(v) _mm512_castsi512_ps(_mm512_and_epi32(_mm512_castps_si512(v), \
                                                         _mm512_set1_epi32(0x7fffffff)))
#define GF_SELECT_LT(a, b, then, otherwise) \
    _mm512_mask_blend_ps(_mm512_cmp_ps_mask((a), (b), _CMP_LT_OQ), (otherwise), (then))
#define GF_LOAD _mm512_loadu_ps
#define GF_STORE _mm512_storeu_ps
#define GF_SCALE2 _mm512_scalef_ps
#include "activation_gelu_float_level.h"
#include "activation_gelu_float_undef.h"
#pragma GCC pop_options

/* the exact form in float lanes, the tanh form and silu in double lanes */
static void gelu_dispatch_avx2(const float *x, const float *grad, int form, float *out,
                               int64_t begin, int64_t end) {
    if (form == AG_GELU_EXACT) gelu_float_span_avx2(x, grad, out, begin, end);
    else gelu_span_avx2(x, grad, form, out, begin, end);
}

static void gelu_dispatch_avx512(const float *x, const float *grad, int form, float *out,
                                 int64_t begin, int64_t end) {
    if (form == AG_GELU_EXACT) gelu_float_span_avx512(x, grad, out, begin, end);
    else gelu_span_avx512(x, grad, form, out, begin, end);
}

ag_gelu_span_f32 ag_gelu_span_f32_avx2(void) { return gelu_dispatch_avx2; }
ag_gelu_span_f32 ag_gelu_span_f32_avx512(void) { return gelu_dispatch_avx512; }

/* elu and the cross-entropy with logits (activation_exp_level.h), double lanes */
ag_exp_span_f32 ag_exp_span_f32_avx2(void) { return gelu_exp_span_avx2; }
ag_exp_span_f32 ag_exp_span_f32_avx512(void) { return gelu_exp_span_avx512; }
#endif
