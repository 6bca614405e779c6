/* pool_rows_level.h: the pooling loops (pool_rows.h) for float and double at one SIMD
 * level. The includer defines AG_LEVEL, the suffix of that level's functions (portable,
 * avx2, avx512), under whatever `#pragma GCC target` the level needs, then undefines it:
 *     #define AG_LEVEL avx2
 *     #include "pool_rows_level.h"
 *     #undef AG_LEVEL
 * gives ag_pool_rows_f32_avx2 and ag_pool_rows_f64_avx2 (see pool_internal.h). */
#ifndef AG_PASTE3
#define AG_PASTE3_(a, b, c) a##b##c
#define AG_PASTE3(a, b, c) AG_PASTE3_(a, b, c)
#endif

#define AG_ROWS_TABLE ag_pool_rows_f32
#define T float
#define IDX int32_t
#define AG_NAME(x) AG_PASTE3(x, _f32_, AG_LEVEL)
#include "pool_rows.h"
#undef AG_ROWS_TABLE
#undef T
#undef IDX
#undef AG_NAME

#define AG_ROWS_TABLE ag_pool_rows_f64
#define T double
#define IDX int64_t
#define AG_NAME(x) AG_PASTE3(x, _f64_, AG_LEVEL)
#include "pool_rows.h"
#undef AG_ROWS_TABLE
#undef T
#undef IDX
#undef AG_NAME
