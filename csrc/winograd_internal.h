/* winograd_internal.h: what the Winograd convolution (winograd.c, the per-level
 * builds of winograd_tile.h in winograd.c and winograd_x86.c) and the conv2d driver
 * share. Not part of the public C API (that is kernels.h).
 *
 * ag_winograd_forward_* computes a stride-1 5x5 convolution (forward form: for the
 * input gradient the driver passes the transposed geometry and flipped = 1) with
 * F(m x m, 5 x 5) at the SIMD level in use; it returns 1 done, 0 not a geometry it
 * takes (the caller falls back), -1 out of memory. The caller checks that the operands
 * are finite: a transform mixes a whole input tile, so one Inf would turn its
 * neighbours' outputs into NaN where the reference keeps them finite. */
#ifndef AUTOGRAD_CORE_WINOGRAD_INTERNAL_H
#define AUTOGRAD_CORE_WINOGRAD_INTERNAL_H
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "kernels.h"
#include "conv2d_internal.h"
#include "parallel.h"

int ag_winograd_forward_f32(const ag_conv2d_geometry *g, const float *x, const float *w,
                            int flipped, float *y);
int ag_winograd_forward_f64(const ag_conv2d_geometry *g, const double *x, const double *w,
                            int flipped, double *y);
/* grad_w of the forward geometry g from x and grad_y: 1 done, 0 not taken, -1 out of memory. */
int ag_winograd_weight_f32(const ag_conv2d_geometry *g, const float *x, const float *grad_y, float *grad_w);
int ag_winograd_weight_f64(const ag_conv2d_geometry *g, const double *x, const double *grad_y, double *grad_w);

/* Unrolls the transforms' loops over the constant tables completely, so that products
 * with their zero entries fold away. Not in sanitizer builds (-O1 -g): there the
 * unrolled, instrumented functions took GCC over 5 minutes to compile. */
#if defined(__SANITIZE_ADDRESS__)
#define WG_UNROLL
#else
#define WG_UNROLL _Pragma("GCC unroll 16")
#endif

/* 64-byte aligned buffers: every vector the tiles load or store is aligned. */
static void *ag_winograd_alloc(size_t bytes) {
    unsigned char *raw = (unsigned char *)malloc(bytes + 64 + sizeof(void *));
    unsigned char *aligned;
    if (raw == NULL) return NULL;
    aligned = raw + sizeof(void *);
    aligned += (64 - (uintptr_t)aligned % 64) % 64;
    ((void **)aligned)[-1] = raw;
    return aligned;
}

static void ag_winograd_free(void *p) {
    if (p != NULL) free(((void **)p)[-1]);
}

typedef int (*ag_winograd_f32_fn)(const ag_conv2d_geometry *, const float *, const float *, int, float *);
typedef int (*ag_winograd_f64_fn)(const ag_conv2d_geometry *, const double *, const double *, int, double *);

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define AG_HAVE_WINOGRAD_X86 1
#define AG_WINOGRAD_DECLARE(LEVEL)                                                              \
    int ag_winograd_run_f32_m2_##LEVEL(const ag_conv2d_geometry *, const float *, const float *, int, float *);  \
    int ag_winograd_run_f32_m4_##LEVEL(const ag_conv2d_geometry *, const float *, const float *, int, float *);  \
    int ag_winograd_run_f64_m2_##LEVEL(const ag_conv2d_geometry *, const double *, const double *, int, double *); \
    int ag_winograd_run_f64_m4_##LEVEL(const ag_conv2d_geometry *, const double *, const double *, int, double *); \
    int ag_winograd_weight_run_f32_m2_##LEVEL(const ag_conv2d_geometry *, const float *, const float *, float *);  \
    int ag_winograd_weight_run_f32_m4_##LEVEL(const ag_conv2d_geometry *, const float *, const float *, float *);  \
    int ag_winograd_weight_run_f64_m2_##LEVEL(const ag_conv2d_geometry *, const double *, const double *, double *); \
    int ag_winograd_weight_run_f64_m4_##LEVEL(const ag_conv2d_geometry *, const double *, const double *, double *);
AG_WINOGRAD_DECLARE(avx2)
AG_WINOGRAD_DECLARE(avx512)
#endif

#endif
