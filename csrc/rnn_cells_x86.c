/* rnn_cells_x86.c: the RNN cells' row loops (rnn_cells_rows.h) compiled for AVX2+FMA
 * and for AVX-512F, float and double.
 *
 * The loops are plain C that GCC vectorizes; only the target differs. `#pragma GCC
 * target` compiles each inclusion for its ISA while the rest of the extension stays
 * baseline x86-64, and rnn_cells.c calls these only when ag_get_simd_level() (clamped to
 * what the CPU runs) says so. This replaces GCC's target_clones, which picked the ISA
 * at load time by itself and so ignored ag_set_simd_level: the portable rows were
 * never run on an AVX-512 machine, tests included. Other compilers get the portable
 * rows only. */
/* Comparisons may trap by default, which stops GCC from turning the selects in the
 * fast exp/tanh into vector blends; nothing here relies on FP traps. fp-contract=fast
 * (the build's -std=c99 turns contraction off): the polynomials of the fast exp/tanh
 * and the cell's products and sums become FMAs, which made the float LSTM cell's
 * forward ~20% faster (100 x 128 units: 53 -> 42 us). These levels then round a few
 * operations differently from the portable rows (within the tests' tolerance against
 * the numpy reference), as winograd_x86.c does. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize ("no-trapping-math")
#pragma GCC optimize ("fp-contract=fast")
#endif
#include "rnn_cells_internal.h"

#ifdef AG_HAVE_RNN_X86

#define AG_LEVEL_HEADER "rnn_cells_rows_level.h"
#include "x86_levels.h"

#endif
