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

#define AG_LEVEL_HEADER "pool_rows_level.h"
#include "x86_levels.h"

#endif
