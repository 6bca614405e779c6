/* pool_x86.c: the pooling loops (pool_rows.h) compiled for AVX2+FMA and for AVX-512F,
 * float and double.
 *
 * The loops are plain C that GCC vectorizes along the channels; only the target
 * differs. `#pragma GCC target` compiles each inclusion for its ISA while the rest of
 * the extension stays baseline x86-64, and pool.c calls these only when
 * ag_get_simd_level() (clamped to what the CPU runs) says so. Other compilers get the
 * portable loops only. */
#include "pool_internal.h"

#ifdef AG_HAVE_POOL_X86

#pragma GCC push_options
#pragma GCC target ("avx2,fma")
#define AG_ROWS_TABLE ag_pool_rows_f32
#define T float
#define IDX int32_t
#define AG_NAME(x) x##_f32_avx2
#include "pool_rows.h"
#undef AG_ROWS_TABLE
#undef T
#undef IDX
#undef AG_NAME
#define AG_ROWS_TABLE ag_pool_rows_f64
#define T double
#define IDX int64_t
#define AG_NAME(x) x##_f64_avx2
#include "pool_rows.h"
#undef AG_ROWS_TABLE
#undef T
#undef IDX
#undef AG_NAME
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target ("avx512f")
#define AG_ROWS_TABLE ag_pool_rows_f32
#define T float
#define IDX int32_t
#define AG_NAME(x) x##_f32_avx512
#include "pool_rows.h"
#undef AG_ROWS_TABLE
#undef T
#undef IDX
#undef AG_NAME
#define AG_ROWS_TABLE ag_pool_rows_f64
#define T double
#define IDX int64_t
#define AG_NAME(x) x##_f64_avx512
#include "pool_rows.h"
#undef AG_ROWS_TABLE
#undef T
#undef IDX
#undef AG_NAME
#pragma GCC pop_options

#endif
