/* pool_internal.h: what the pooling driver (pool.c) and the per-ISA builds of its loops
 * (pool_rows.h, included by pool.c and pool_x86.c) share. Not part of the public C API
 * (that is kernels.h).
 *
 * The driver splits output rows (forward) or images (backward) over threads and calls
 * the loops of the SIMD level in use (ag_get_simd_level(), the one level every family
 * reads). */
#ifndef AUTOGRAD_CORE_POOL_INTERNAL_H
#define AUTOGRAD_CORE_POOL_INTERNAL_H
#include <stdint.h>
#include <string.h>
#include "kernels.h"

/* Channels per block of the max-pool forward's local accumulators. */
#define POOL_BLOCK 64

/* The loops of one (element type, SIMD level); begin/end are output rows (forward: row
 * t is image t / out_height) or images (backward). max_backward_images returns the
 * number of argmax entries it skipped for pointing outside their image. */
#define AG_POOL_ROWS_TABLE(NAME, T)                                                      \
    typedef struct {                                                                     \
        void (*max_forward_rows)(const ag_pool2d_geometry *, const T *, T *, int64_t *,  \
                                 int64_t, int64_t);                                      \
        int64_t (*max_backward_images)(const ag_pool2d_geometry *, const T *, const int64_t *, \
                                       T *, int64_t, int64_t);                           \
        void (*avg_forward_rows)(const ag_pool2d_geometry *, const T *, T *, int, int64_t, int64_t); \
        void (*avg_backward_images)(const ag_pool2d_geometry *, const T *, T *, int, int64_t, int64_t); \
    } NAME;
AG_POOL_ROWS_TABLE(ag_pool_rows_f32, float)
AG_POOL_ROWS_TABLE(ag_pool_rows_f64, double)

/* Filled with the loops for `level` (0 portable, 1 AVX2+FMA, 2 AVX-512F); the caller
 * has already clamped level to what the CPU supports. */
void ag_pool_select_f32(int level, ag_pool_rows_f32 *rows);
void ag_pool_select_f64(int level, ag_pool_rows_f64 *rows);

/* The kernel cells of a window that lie inside the image, along one axis: a window
 * starting at input index `start` (negative inside the padding) over an axis of `size`
 * cells covers real cells at kernel offsets [window_first, window_end). Every pooling
 * loop clips its windows this way. */
static inline int64_t ag_window_first(int64_t start) {
    return start < 0 ? -start : 0;
}

static inline int64_t ag_window_end(int64_t start, int64_t size, int64_t kernel) {
    return size - start < kernel ? size - start : kernel;
}

/* One definition per instantiation of pool_rows.h. */
void ag_pool_rows_f32_portable(ag_pool_rows_f32 *rows);
void ag_pool_rows_f64_portable(ag_pool_rows_f64 *rows);
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define AG_HAVE_POOL_X86 1
void ag_pool_rows_f32_avx2(ag_pool_rows_f32 *rows);
void ag_pool_rows_f64_avx2(ag_pool_rows_f64 *rows);
void ag_pool_rows_f32_avx512(ag_pool_rows_f32 *rows);
void ag_pool_rows_f64_avx512(ag_pool_rows_f64 *rows);
#endif

#endif
