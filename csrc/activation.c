/* activation.c: bias and ReLU as one pass over a layer's output, and its backward, for
 * the fused conv2d / linear ops and the ReLU op: the portable driver.
 *
 * Why a pass of its own: numpy spent three passes and two temporaries on what the
 * layers need (y += bias, maximum(y, 0) into a new array, then out > 0 and grad * mask
 * in the backward, and a fourth for the bias gradient), each on one thread. Here the
 * forward adds the bias, applies the ReLU and writes the ReLU's mask as bits (1/32 of
 * the float32 output it would otherwise keep alive for the backward) in one threaded
 * pass; the backward applies the mask and sums the bias gradient in one.
 *
 * Split as the other families are: this driver (activation_driver.h, per element type)
 * runs the portable loops, or the float32 AVX-512F / AVX2 loops of activation_x86.c when
 * the SIMD level in use and the channel count allow them. Threads take whole groups of
 * 16 elements; the bias gradient is summed per thread and the partial sums added in
 * thread order, so a result depends on the thread count but never on timing.
 *
 * gelu (exact and approximate='tanh') is here too, for the same reason: its numpy form
 * took ~10 passes and temporaries around the erfc kernel (~11 ms of the GPT step's 64 on
 * [768, 512] float32). Its forward is one pass x -> gelu(x); its backward one pass
 * (x, grad) -> grad * gelu'(x), from the saved input. Each element is computed alone, so
 * results never depend on the thread count.
 *
 * elu and the binary cross-entropy with logits go the same way (the VAE's step): numpy
 * took 4-6 passes and temporaries each way (expm1, minimum, where; abs, exp, log1p,
 * where and a division for the sigmoid), single-threaded. Each is one pass here: elu
 * forward x -> y, backward (x, grad) -> grad_x; the cross-entropy forward (x, target) ->
 * the per-element losses, backward (x, target) -> scale * (sigmoid(x) - target). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "kernels.h"
#include "activation_internal.h"
#include "parallel.h"

static void select_f32(int level, int64_t channels, ag_activation_spans_f32 *spans) {
#ifdef AG_HAVE_ACTIVATION_X86
    if (level >= 2) ag_activation_spans_f32_avx512(channels, spans);
    else if (level == 1) ag_activation_spans_f32_avx2(channels, spans);
#endif
    (void)level; (void)channels; (void)spans;
}

/* float64 serves gradcheck, not speed: the portable loops. */
static void select_f64(int level, int64_t channels, ag_activation_spans_f64 *spans) {
    (void)level; (void)channels; (void)spans;
}

/* gelu's loop for the SIMD level in use: the float32 AVX-512F / AVX2 loops of
 * activation_x86.c, else the portable one; float64 always the portable one. */
static ag_gelu_span_f32 select_gelu_f32(int level, ag_gelu_span_f32 portable) {
#ifdef AG_HAVE_ACTIVATION_X86
    if (level >= 2) return ag_gelu_span_f32_avx512();
    if (level == 1) return ag_gelu_span_f32_avx2();
#endif
    (void)level;
    return portable;
}

static ag_gelu_span_f64 select_gelu_f64(int level, ag_gelu_span_f64 portable) {
    (void)level;
    return portable;
}

/* elu's and the cross-entropy's loop: as gelu's */
static ag_exp_span_f32 select_exp_f32(int level, ag_exp_span_f32 portable) {
#ifdef AG_HAVE_ACTIVATION_X86
    if (level >= 2) return ag_exp_span_f32_avx512();
    if (level == 1) return ag_exp_span_f32_avx2();
#endif
    (void)level;
    return portable;
}

static ag_exp_span_f64 select_exp_f64(int level, ag_exp_span_f64 portable) {
    (void)level;
    return portable;
}


#define T float
#define AG_NAME(x) x##_f32
#define AG_ACTIVATION_SPANS ag_activation_spans_f32
#define AG_SELECT select_f32
#define AG_GELU_SPAN ag_gelu_span_f32
#define AG_GELU_SELECT select_gelu_f32
#define AG_EXP_SPAN ag_exp_span_f32
#define AG_EXP_SELECT select_exp_f32
#include "activation_driver.h"
#undef T
#undef AG_NAME
#undef AG_ACTIVATION_SPANS
#undef AG_SELECT
#undef AG_GELU_SPAN
#undef AG_GELU_SELECT
#undef AG_EXP_SPAN
#undef AG_EXP_SELECT

#define T double
#define AG_NAME(x) x##_f64
#define AG_ACTIVATION_SPANS ag_activation_spans_f64
#define AG_SELECT select_f64
#define AG_GELU_SPAN ag_gelu_span_f64
#define AG_GELU_SELECT select_gelu_f64
#define AG_EXP_SPAN ag_exp_span_f64
#define AG_EXP_SELECT select_exp_f64
#include "activation_driver.h"
#undef T
#undef AG_NAME
#undef AG_ACTIVATION_SPANS
#undef AG_SELECT
#undef AG_GELU_SPAN
#undef AG_GELU_SELECT
#undef AG_EXP_SPAN
#undef AG_EXP_SELECT
