/* activation_internal.h: what the bias + ReLU driver (activation.c) and its ISA-specific
 * element loops (activation_x86.c) share. Not part of the public C API (kernels.h).
 *
 * A span function does elements [begin, end) of a dense [rows, channels] array; begin
 * is a multiple of 16 (the driver splits threads on 16-element groups, so no two threads
 * ever write the same mask byte), and the channel of element i is i % channels.
 *   forward(x, bias or NULL, relu, y, mask or NULL, channels, begin, end)
 *   backward(grad, mask or NULL, grad_x or NULL, sums or NULL, channels, begin, end):
 *       grad_x[i] = bit i of mask ? grad[i] : 0, and sums[c] += that value (or grad[i]
 *       when mask is NULL) for every element of channel c in the span.
 * The mask holds bit i % 8 of byte i / 8 for element i (numpy's packbits with
 * bitorder='little'), set where the ReLU's output is > 0. */
#ifndef AUTOGRAD_CORE_ACTIVATION_INTERNAL_H
#define AUTOGRAD_CORE_ACTIVATION_INTERNAL_H
#include <stdint.h>
#include "kernels.h"

#define AG_ACTIVATION_TYPES(SUFFIX, T)                                                   \
    typedef void (*ag_bias_relu_span_##SUFFIX)(const T *x, const T *bias, int relu, T *y, \
                                               uint8_t *mask, int64_t channels,          \
                                               int64_t begin, int64_t end);              \
    typedef void (*ag_relu_bias_backward_span_##SUFFIX)(const T *grad, const uint8_t *mask, \
                                                        T *grad_x, T *sums, int64_t channels, \
                                                        int64_t begin, int64_t end);     \
    typedef struct {                                                                     \
        ag_bias_relu_span_##SUFFIX forward;                                              \
        ag_relu_bias_backward_span_##SUFFIX backward;                                    \
    } ag_activation_spans_##SUFFIX;
AG_ACTIVATION_TYPES(f32, float)
AG_ACTIVATION_TYPES(f64, double)

/* gelu and silu: out[i] = f(x[i]) when grad is NULL, else grad[i] * f'(x[i]), for i in
 * [begin, end) of dense arrays; form picks f: the exact gelu, the tanh gelu or silu. */
enum { AG_GELU_EXACT = 0, AG_GELU_TANH = 1, AG_SILU = 2 };
#define AG_GELU_TYPES(SUFFIX, T)                                                         \
    typedef void (*ag_gelu_span_##SUFFIX)(const T *x, const T *grad, int form, T *out, \
                                          int64_t begin, int64_t end);
AG_GELU_TYPES(f32, float)
AG_GELU_TYPES(f64, double)
/* the tanh form's constants: s = sqrt(2/pi) (x + 0.044715 x^3) */
#define AG_GELU_TANH_SCALE 0.79788456080286535588
#define AG_GELU_TANH_CUBIC 0.044715

/* elu and binary cross-entropy with logits: out[i] for i in [begin, end) of dense arrays
 * x, other, out, the float32 SIMD loops computing in double lanes:
 *   AG_ELU_FORWARD:  x > 0 ? x : parameter * expm1(x)            (parameter: alpha)
 *   AG_ELU_BACKWARD: other * (x > 0 ? 1 : parameter * exp(x))    (other: the gradient)
 *   AG_BCE_LOGITS_FORWARD:  max(x, 0) - x other + log1p(exp(-|x|))  (other: the target)
 *   AG_BCE_LOGITS_BACKWARD: (sigmoid(x) - other) * parameter       (parameter: the scale) */
enum { AG_ELU_FORWARD = 0, AG_ELU_BACKWARD = 1, AG_BCE_LOGITS_FORWARD = 2, AG_BCE_LOGITS_BACKWARD = 3 };
#define AG_EXP_TYPES(SUFFIX, T)                                                          \
    typedef void (*ag_exp_span_##SUFFIX)(const T *x, const T *other, int form, double parameter, \
                                         T *out, int64_t begin, int64_t end);
AG_EXP_TYPES(f32, float)
AG_EXP_TYPES(f64, double)

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define AG_HAVE_ACTIVATION_X86 1
/* activation_x86.c: float32 loops for channel counts that are multiples of the vector
 * width (16 for AVX-512F, 8 for AVX2); they fill `spans` only when `channels` allows. */
void ag_activation_spans_f32_avx512(int64_t channels, ag_activation_spans_f32 *spans);
void ag_activation_spans_f32_avx2(int64_t channels, ag_activation_spans_f32 *spans);
/* gelu's float32 loops (the exact form in float lanes, the tanh form and silu in double
 * lanes; any count: the last partial vector is padded) */
ag_gelu_span_f32 ag_gelu_span_f32_avx512(void);
ag_gelu_span_f32 ag_gelu_span_f32_avx2(void);
/* elu's and the cross-entropy's float32 loops (activation_exp_level.h, double lanes) */
ag_exp_span_f32 ag_exp_span_f32_avx512(void);
ag_exp_span_f32 ag_exp_span_f32_avx2(void);
#endif

#endif
