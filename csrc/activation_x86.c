/* activation_x86.c: the float32 bias + ReLU loops (see activation_internal.h for the
 * contract) with AVX-512F and AVX2 intrinsics, for channel counts that are multiples of
 * the vector width, so that a vector never straddles two rows and the bias is one
 * load. The ReLU keeps v where !(v <= 0) (an unordered compare: NaN passes through) and
 * writes +0.0 elsewhere, -0.0 included: numpy's maximum(v, 0) exactly. A mask bit is the ordered comparison v > 0 (false for NaN). Each function carries its
 * own target attribute; activation.c calls them only when ag_get_simd_level() allows. */
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
#endif
