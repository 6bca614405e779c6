/* gemm.c: row-major GEMM, C = alpha * op(A) * op(B) + beta * C, for float and double.
 *
 * The portable loops -- blocking for the caches, packing, threading -- live in
 * gemm_driver.h and are the same for every CPU. Only the micro-kernel and its block
 * sizes depend on the SIMD level, chosen at run time (see ag_*gemm_select below). */
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include "kernels.h"
#include "gemm_internal.h"
#include "parallel.h"

/* m*n*k below which a call stays on one thread. 10^6 multiply-adds take ~20 us on one
 * core; with the units claimed from a counter (gemm_driver.h) a second thread that
 * wakes in time halves that: on the idle 2-core development machine the seed CNN's
 * 1024 x 100 @ 100 x 10 weight gradient ran at 66 GFLOP/s on 2 threads against 37 on
 * one (numpy's OpenBLAS threads it too: 62). When the other core is busy with another
 * process, waking the second thread can take a scheduler slice (~0.5 ms) at any size:
 * that cost is the machine's, not the split's, and it hits numpy's BLAS the same way. */
#ifndef AG_GEMM_PARALLEL_MIN_WORK
#define AG_GEMM_PARALLEL_MIN_WORK (100.0 * 100.0 * 100.0)
#endif
/* Upper bound on the packed B panel (nc columns x all of k): deep products get fewer
 * columns per panel rather than more memory. */
#define AG_GEMM_B_PANEL_BYTES (32.0 * 1024 * 1024)
/* The unit path (gemm_driver.h) keeps, per thread, a packed copy of the smaller side
 * (m x k or k x n) when it has at most this many elements (16 MiB of float) and the
 * smaller of m and n is at most AG_GEMM_UNIT_MAX_SIDE; other products take the
 * shared-panel path, whose single packed B panel serves both threads (at n = 2048 the
 * unit path's second copy of A would be 16 MiB of extra traffic). */
#define AG_GEMM_UNIT_CACHE_ELEMENTS (4.0 * 1024 * 1024)
#define AG_GEMM_UNIT_MAX_SIDE 1024
/* The most micro-panels in one column chunk of the unit path: 8 x 32 columns x kc 512
 * floats is 512 KiB, half an L2 of the development machine. */
#define AG_GEMM_UNIT_CHUNK_PANELS 8
/* Row sub-blocks of the unit path are up to this many times the path's mc: a 100- or
 * 128-row batch is then one sub-block that meets each B micro-panel once per depth step
 * instead of twice (100 x 3136 @ 3136 x 1024 single-threaded: 84 against 77 GFLOP/s). */
#define AG_GEMM_UNIT_SUBBLOCK 2
/* The unit path reads full micro-panels of an untransposed B where they are (the kernel
 * steps a row of B per depth) instead of packing them, when B spans at most this many
 * elements (128 KiB of float: 32 pages, few enough for the first-level TLB, and in L2):
 * packing B was 6-9% of a 64^3 or 128^3 product. A bigger B is packed: its rows a page
 * or more apart would miss the TLB on every depth step. */
#ifndef AG_GEMM_B_IN_PLACE_ELEMENTS
#define AG_GEMM_B_IN_PLACE_ELEMENTS (32.0 * 1024)
#endif
/* Products whose op(A) and op(B) together hold at most this many elements (128 KiB of
 * float: in L2, mostly in L1) take the small path on one thread (gemm_driver.h), which
 * packs nothing but a transposed B. */
#ifndef AG_GEMM_SMALL_ELEMENTS
#define AG_GEMM_SMALL_ELEMENTS (32.0 * 1024)
#endif
/* m*n*k from which a product on the small path is split over threads (by rows). Split
 * lower, it pays on an idle machine (2 threads, 64^3: 3.5 against 5.1 us; 96^3: 9.2
 * against 16.3) but, with the other core busy, the region then waits ~0.5 ms for its
 * worker at every call (measured: 48^3 to 96^3 all took 0.50-0.52 ms), 100x the product;
 * numpy's BLAS keeps these on one thread. Kept with AG_GEMM_PARALLEL_MIN_WORK, where a
 * product is ~20 us of work. */
#ifndef AG_GEMM_SMALL_PARALLEL_MIN_WORK
#define AG_GEMM_SMALL_PARALLEL_MIN_WORK (100.0 * 100.0 * 100.0)
#endif
/* A transposed B of a small product up to this many elements is packed on the stack. */
#define AG_GEMM_SMALL_STACK_ELEMENTS 4096
/* B micro-panels packed per step of the parallel packing loop (8 x 32 floats = 1 KiB
 * of each row of B read contiguously). */
#define AG_PACK_B_GROUP 8
/* Keeps the packing loops out of the big threaded function, whose register pressure
 * otherwise spills their loop counters to the stack. */
#if defined(__GNUC__)
#define AG_NOINLINE __attribute__((noinline))
#define AG_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define AG_ALWAYS_INLINE inline
#define AG_NOINLINE
#endif

/* ---- portable micro-kernels ------------------------------------------------------- */
/* Plain C over fixed-size arrays: the compiler keeps the tile in registers and
 * vectorizes the j loop with whatever baseline SIMD the target has. The tile must fit
 * the baseline's registers (x86-64: 16 xmm): float 6x8 is 12 accumulators, and ran
 * ~4x faster there than 4x16, which spills (27 vs 7 GFLOP/s single-threaded). */
#define AG_DEFINE_PORTABLE_KERNEL(NAME, T, MR, NR)                                      \
static void NAME(int64_t kc, const T *a, const T *b, int64_t b_step, T *c, int64_t ldc, T alpha, T beta, \
                 int m_tile, int n_tile) {                                              \
    T acc[MR][NR] = {{0}};                                                              \
    for (int64_t p = 0; p < kc; p++) {                                                  \
        for (int i = 0; i < MR; i++)                                                    \
            for (int j = 0; j < NR; j++)                                                \
                acc[i][j] += a[i] * b[j];                                               \
        a += MR;                                                                        \
        b += b_step;                                                                    \
    }                                                                                   \
    for (int i = 0; i < m_tile; i++)                                                    \
        for (int j = 0; j < n_tile; j++) {                                              \
            T value = alpha * acc[i][j];                                                \
            c[i * ldc + j] = beta == 0 ? value : value + beta * c[i * ldc + j];         \
        }                                                                               \
}

AG_DEFINE_PORTABLE_KERNEL(ag_sgemm_kernel_c_6x8, float, 6, 8)
AG_DEFINE_PORTABLE_KERNEL(ag_dgemm_kernel_c_4x8, double, 4, 8)

/* ---- per-level configuration ------------------------------------------------------- */
/* Block sizes (kc, mc, nc) start from the usual rules -- the mc x kc A block well
 * inside L2, the kc x nc slice of B in L2 or L3 -- and were then measured on a 2-core
 * Xeon with AVX-512 (48 KiB L1d, 2 MiB L2 per core), single-threaded, in GFLOP per
 * CPU-second (the machine was shared, so wall time was noise):
 *   float AVX-512:  kc 512, mc 96, nc 512 beat kc 256, mc 192, nc 4096 by ~5% at
 *                   n = 2048 (150-157 vs 132-153) and matched it at 1024. A deep kc
 *                   halves the passes over C; its 64 KiB B micro-panel then streams
 *                   from L2 (~11 bytes per cycle) instead of sitting in L1, and
 *                   nc 512 keeps the whole kc x nc B slice in L2.
 *   double AVX-512: nc 512 beat 4096 by ~5% (67-70 vs 64-66 at n = 1536). On a 2-core
 *                   AMD EPYC, kc 512 (the float config's bytes per micro-panel) beat
 *                   256 by ~4% at n = 1024 (49.5 vs 47.5 GFLOP/s on one core, 93 vs
 *                   91 on two); kc 128, 192 and 384 were no better than 256.
 *   AVX2: nc 512 or a deep kc made no difference (within noise); left as they were.
 * Other searched points (kc 128..768 x mc 48..384 x nc 512..4096) were no better. */
void ag_sgemm_select(int level, ag_sgemm_config *config) {
#ifdef AG_HAVE_X86_KERNELS
    if (level >= 2) {
        ag_sgemm_config avx512 = {12, 32, 512, 96, 512, ag_sgemm_kernel_avx512_12x32,
                                   ag_spack_a_avx512_12, ag_spack_bt_avx2_32,
                                   ag_sgemm_direct_avx512_12x16, ag_sgemm_small_avx512};
        *config = avx512;
        return;
    }
    if (level == 1) {
        ag_sgemm_config avx2 = {6, 16, 256, 144, 4096, ag_sgemm_kernel_avx2_6x16, NULL, NULL, NULL, NULL};
        *config = avx2;
        return;
    }
#endif
    (void)level;
    ag_sgemm_config portable = {6, 8, 256, 120, 4096, ag_sgemm_kernel_c_6x8, NULL, NULL, NULL, NULL};
    *config = portable;
}

void ag_dgemm_select(int level, ag_dgemm_config *config) {
#ifdef AG_HAVE_X86_KERNELS
    if (level >= 2) {
        ag_dgemm_config avx512 = {12, 16, 512, 96, 512, ag_dgemm_kernel_avx512_12x16, NULL, ag_dpack_bt_avx2_16, NULL,
                                   ag_dgemm_small_avx512};
        *config = avx512;
        return;
    }
    if (level == 1) {
        ag_dgemm_config avx2 = {6, 8, 256, 96, 4096, ag_dgemm_kernel_avx2_6x8, NULL, NULL, NULL, NULL};
        *config = avx2;
        return;
    }
#endif
    (void)level;
    ag_dgemm_config portable = {4, 8, 256, 96, 4096, ag_dgemm_kernel_c_4x8, NULL, NULL, NULL, NULL};
    *config = portable;
}

/* ---- the two entry points ------------------------------------------------------------ */
#define T float
#define AG_NAME(x) ag_s##x
#define AG_GEMM ag_sgemm
#define AG_GEMM_PRODUCT ag_sgemm_product
#define AG_GEMM_BATCHED ag_sgemm_batched
#define AG_CONFIG ag_sgemm_config
#define AG_SELECT ag_sgemm_select
#include "gemm_driver.h"
#undef T
#undef AG_NAME
#undef AG_GEMM
#undef AG_GEMM_PRODUCT
#undef AG_GEMM_BATCHED
#undef AG_CONFIG
#undef AG_SELECT

#define T double
#define AG_NAME(x) ag_d##x
#define AG_GEMM ag_dgemm
#define AG_GEMM_PRODUCT ag_dgemm_product
#define AG_GEMM_BATCHED ag_dgemm_batched
#define AG_CONFIG ag_dgemm_config
#define AG_SELECT ag_dgemm_select
#include "gemm_driver.h"
#undef T
#undef AG_NAME
#undef AG_GEMM
#undef AG_GEMM_PRODUCT
#undef AG_GEMM_BATCHED
#undef AG_CONFIG
#undef AG_SELECT
