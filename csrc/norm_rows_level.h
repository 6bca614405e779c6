/* norm_rows_level.h: the normalization loops (norm_rows.h) for float and double at one
 * SIMD level. The includer defines AG_LEVEL, the suffix of that level's functions
 * (portable, avx2, avx512), under whatever `#pragma GCC target` the level needs:
 *     #define AG_LEVEL avx2
 *     #include "norm_rows_level.h"
 *     #undef AG_LEVEL
 * gives ag_norm_rows_f32_avx2 and ag_norm_rows_f64_avx2 (see norm_internal.h). */
#ifndef AG_PASTE3
#define AG_PASTE3_(a, b, c) a##b##c
#define AG_PASTE3(a, b, c) AG_PASTE3_(a, b, c)
#endif

#define AG_ROWS_TABLE ag_norm_rows_f32
#define T float
#define SQRT sqrtf
#define AG_NAME(x) AG_PASTE3(x, _f32_, AG_LEVEL)
#include "norm_rows.h"
#undef AG_ROWS_TABLE
#undef T
#undef SQRT
#undef AG_NAME

#define AG_ROWS_TABLE ag_norm_rows_f64
#define T double
#define SQRT sqrt
#define AG_NAME(x) AG_PASTE3(x, _f64_, AG_LEVEL)
#include "norm_rows.h"
#undef AG_ROWS_TABLE
#undef T
#undef SQRT
#undef AG_NAME
