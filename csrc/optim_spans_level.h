/* optim_spans_level.h: the fused optimizers' element loops (optim_spans.h) for float and
 * double at one SIMD level. The includer defines AG_LEVEL, the suffix of that level's
 * functions (portable, avx2, avx512), under whatever `#pragma GCC target` the level
 * needs, then undefines it:
 *     #define AG_LEVEL avx2
 *     #include "optim_spans_level.h"
 *     #undef AG_LEVEL
 * gives ag_optim_spans_f32_avx2 and ag_optim_spans_f64_avx2 (see optim_internal.h). */
#ifndef AG_PASTE3
#define AG_PASTE3_(a, b, c) a##b##c
#define AG_PASTE3(a, b, c) AG_PASTE3_(a, b, c)
#endif

#define T float
#define SQRT sqrtf
#define AG_NAME(x) AG_PASTE3(x, _f32_, AG_LEVEL)
#define AG_SPANS ag_optim_spans_f32
#define AG_ADAM_HYPER ag_adam_hyper_f32
#define AG_SGD_HYPER ag_sgd_hyper_f32
#define AG_RMSPROP_HYPER ag_rmsprop_hyper_f32
#include "optim_spans.h"
#undef T
#undef SQRT
#undef AG_NAME
#undef AG_SPANS
#undef AG_ADAM_HYPER
#undef AG_SGD_HYPER
#undef AG_RMSPROP_HYPER

#define T double
#define SQRT sqrt
#define AG_NAME(x) AG_PASTE3(x, _f64_, AG_LEVEL)
#define AG_SPANS ag_optim_spans_f64
#define AG_ADAM_HYPER ag_adam_hyper_f64
#define AG_SGD_HYPER ag_sgd_hyper_f64
#define AG_RMSPROP_HYPER ag_rmsprop_hyper_f64
#include "optim_spans.h"
#undef T
#undef SQRT
#undef AG_NAME
#undef AG_SPANS
#undef AG_ADAM_HYPER
#undef AG_SGD_HYPER
#undef AG_RMSPROP_HYPER
