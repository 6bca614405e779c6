/* norm_x86.c: the normalization loops (norm_rows.h) compiled for AVX2+FMA and for
 * AVX-512F, float and double.
 *
 * The loops are plain C that GCC vectorizes (along a row's lanes for layer norm, along
 * the channels for batch norm); only the target differs. norm.c calls these only when
 * ag_get_simd_level() (clamped to what the CPU runs) says so. fp-contract=off: a fused
 * multiply-add here but not in the portable build would make the levels round
 * differently (the results are meant not to depend on the level). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize ("fp-contract=off")
#endif
#include "norm_internal.h"

#ifdef AG_HAVE_NORM_X86

#define AG_LEVEL_HEADER "norm_rows_level.h"
#include "x86_levels.h"

#endif
