/* rnn_cells.c: the elementwise part of one LSTM, GRU or Elman RNN step, fused: the portable driver.
 *
 * The matmuls (x W_ih^T, h W_hh^T) stay in the GEMM; what is left is a dozen
 * elementwise ops per hidden unit which, done one numpy op at a time, would each make
 * a full pass over memory. Fusing them makes one pass, and the forward saves exactly
 * the activations the backward needs so nothing is recomputed. The ag_lstm_step_*
 * entry points also call the GEMM for h W_hh^T (forward) and grad_gates W_hh
 * (backward), so that one LSTM step is one call from Python each way: at batch 100,
 * hidden 128 a step's arithmetic takes ~150 us, and per-call Python costs add up.
 * The ag_*_sequence_* entry points go further and run a whole layer's steps in one call
 * each way (LSTM, GRU, Elman RNN): row b of a step needs only row b of the step before,
 * so each thread runs every step for its share of the batch rows, with no barrier and
 * no Python between steps.
 *
 * Split as GEMM is: this file splits the batch rows over threads (parallel.h) and calls
 * the GEMM; the row loops (rnn_cells_rows.h) are built once per SIMD level -- here
 * for portable C, in rnn_cells_x86.c for AVX2+FMA and AVX-512F -- and each call takes
 * the rows of ag_get_simd_level(), the one level every family reads.
 *
 * Gate order follows PyTorch: LSTM i, f, g, o; GRU r, z, n with the reset gate applied
 * after the hidden matmul (n = tanh(gi_n + r * gh_n)).
 */
/* Comparisons may trap by default, which stops GCC from turning the selects in the
 * fast exp/tanh below into vector blends; nothing here relies on FP traps. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize ("no-trapping-math")
#endif
#include "rnn_cells_internal.h"
#include <stdlib.h>
#include <string.h>
#include "gemm_packed.h"
#include "parallel.h"

/* ---- the portable rows, and the rows of each SIMD level ------------------------------ */
#define AG_LEVEL portable
#include "rnn_cells_rows_level.h"
#undef AG_LEVEL

void ag_rnn_select_f32(int level, ag_rnn_rows_f32 *rows) {
#ifdef AG_HAVE_RNN_X86
    if (level >= 2) { ag_rnn_rows_f32_avx512(rows); return; }
    if (level == 1) { ag_rnn_rows_f32_avx2(rows); return; }
#endif
    (void)level;
    ag_rnn_rows_f32_portable(rows);
}

void ag_rnn_select_f64(int level, ag_rnn_rows_f64 *rows) {
#ifdef AG_HAVE_RNN_X86
    if (level >= 2) { ag_rnn_rows_f64_avx512(rows); return; }
    if (level == 1) { ag_rnn_rows_f64_avx2(rows); return; }
#endif
    (void)level;
    ag_rnn_rows_f64_portable(rows);
}

/* ---- threads ------------------------------------------------------------------------ */
/* Each element costs a few exp/tanh, so threads pay off earlier than for copies. */
static int cell_threads(int64_t elements) {
    return ag_threads_for((double)elements, 8192.0);
}

/* A whole LSTM step splits its batch rows over the threads: each thread does its rows'
 * matmul (a GEMM call of its own, single-threaded: OpenMP leaves regions nested in
 * this one inactive unless OMP_MAX_ACTIVE_LEVELS says otherwise) and
 * then their cell, with no barrier in between. One parallel region per step instead of
 * one for the GEMM and one for the cell: at batch 100, hidden 128 a step is ~150 us,
 * so each region's start and join is felt, more so when other processes share the cores. */
static int step_threads(int64_t batch, int64_t hidden) {
    const int threads = cell_threads(batch * hidden);
    return threads < batch ? threads : (int)(batch > 0 ? batch : 1);
}

/* ---- the entry points, once per element type ------------------------------------------ */
#define T float
#define AG_NAME(x) x##_f32
#define AG_GEMM ag_sgemm
#define AG_ROWS_TABLE ag_rnn_rows_f32
#define AG_SELECT ag_rnn_select_f32
#define AG_GEMM_PACKED ag_sgemm_packed
#define AG_PACK_B ag_sgemm_pack_b
#define AG_PACKED_B_SIZE ag_sgemm_packed_b_size
#define AG_PACKED_A_SIZE ag_sgemm_packed_a_size
#define AG_GEMM_FN(x) ag_sgemm_##x
#include "rnn_cells_driver.h"
#undef T
#undef AG_NAME
#undef AG_GEMM
#undef AG_ROWS_TABLE
#undef AG_SELECT
#undef AG_GEMM_PACKED
#undef AG_PACK_B
#undef AG_PACKED_B_SIZE
#undef AG_PACKED_A_SIZE
#undef AG_GEMM_FN

#define T double
#define AG_NAME(x) x##_f64
#define AG_GEMM ag_dgemm
#define AG_ROWS_TABLE ag_rnn_rows_f64
#define AG_SELECT ag_rnn_select_f64
#define AG_GEMM_PACKED ag_dgemm_packed
#define AG_PACK_B ag_dgemm_pack_b
#define AG_PACKED_B_SIZE ag_dgemm_packed_b_size
#define AG_PACKED_A_SIZE ag_dgemm_packed_a_size
#define AG_GEMM_FN(x) ag_dgemm_##x
#include "rnn_cells_driver.h"
#undef T
#undef AG_NAME
#undef AG_GEMM
#undef AG_ROWS_TABLE
#undef AG_SELECT
#undef AG_GEMM_PACKED
#undef AG_PACK_B
#undef AG_PACKED_B_SIZE
#undef AG_PACKED_A_SIZE
#undef AG_GEMM_FN
