/* softmax_x86.c: the softmax row loops (softmax_rows.h) compiled for AVX2+FMA and for
 * AVX-512F, float and double.
 *
 * The loops are plain C that GCC vectorises along a row; only the target differs (8 or
 * 16 float lanes of the polynomial exp against SSE2's 4 at the portable level).
 * softmax.c calls these only when ag_get_simd_level() (clamped to what the CPU runs)
 * says so. The levels may round differently in the last bits (FMA, the reductions'
 * lane counts); each is checked against the numpy reference. */
#include "softmax_internal.h"
#include "parallel.h"

#ifdef AG_HAVE_SOFTMAX_X86

#define AG_LEVEL_HEADER "softmax_rows_level.h"
#include "x86_levels.h"

#endif
