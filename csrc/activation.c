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
 * thread order, so a result depends on the thread count but never on timing. */
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

#define T float
#define AG_NAME(x) x##_f32
#define AG_ACTIVATION_SPANS ag_activation_spans_f32
#define AG_SELECT select_f32
#include "activation_driver.h"
#undef T
#undef AG_NAME
#undef AG_ACTIVATION_SPANS
#undef AG_SELECT

#define T double
#define AG_NAME(x) x##_f64
#define AG_ACTIVATION_SPANS ag_activation_spans_f64
#define AG_SELECT select_f64
#include "activation_driver.h"
#undef T
#undef AG_NAME
#undef AG_ACTIVATION_SPANS
#undef AG_SELECT
