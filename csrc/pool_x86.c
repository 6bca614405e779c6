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
#define AG_LEVEL avx2
#include "pool_rows_level.h"
#undef AG_LEVEL
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target ("avx512f")
#define AG_LEVEL avx512
#include "pool_rows_level.h"
#undef AG_LEVEL
#pragma GCC pop_options

#endif
