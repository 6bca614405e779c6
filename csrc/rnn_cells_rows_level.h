/* rnn_cells_rows_level.h: the RNN cells' row loops (rnn_cells_rows.h) for float and
 * double at one SIMD level. The includer defines AG_LEVEL, the suffix of that level's
 * functions (portable, avx2, avx512), under whatever `#pragma GCC target` the level
 * needs, then undefines it:
 *     #define AG_LEVEL avx2
 *     #include "rnn_cells_rows_level.h"
 *     #undef AG_LEVEL
 * gives ag_rnn_rows_f32_avx2 and ag_rnn_rows_f64_avx2 (see rnn_cells_internal.h).
 * float uses the fast vectorizable exp/tanh, double libm's. */
#ifndef AG_PASTE3
#define AG_PASTE3_(a, b, c) a##b##c
#define AG_PASTE3(a, b, c) AG_PASTE3_(a, b, c)
#endif

#define AG_ROWS_TABLE ag_rnn_rows_f32
#define T float
#define AG_NAME(x) AG_PASTE3(x, _f32_, AG_LEVEL)
#define EXP ag_fast_expf
#define TANH ag_fast_tanhf
#include "rnn_cells_rows.h"
#undef AG_ROWS_TABLE
#undef T
#undef AG_NAME
#undef EXP
#undef TANH

#define AG_ROWS_TABLE ag_rnn_rows_f64
#define T double
#define AG_NAME(x) AG_PASTE3(x, _f64_, AG_LEVEL)
#define EXP exp
#define TANH tanh
#include "rnn_cells_rows.h"
#undef AG_ROWS_TABLE
#undef T
#undef AG_NAME
#undef EXP
#undef TANH
