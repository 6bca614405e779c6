/* softmax_internal.h: what the softmax drivers (softmax.c, softmax_driver.h) and the
 * per-ISA builds of its row loops (softmax_rows.h, included by softmax.c and
 * softmax_x86.c) share. Not part of the public C API (that is kernels.h).
 *
 * Row functions, rows [begin, end) of a dense [rows, width] array, each row's kept
 * columns being all of them (causal 0) or 0..(row mod width) (causal 1):
 *   forward(begin, end, width, causal, x):   x = exp(x - max) / sum in place, 0 beyond
 *   backward(begin, end, width, causal, y, grad, grad_x):
 *       grad_x = y * (grad - sum(grad * y)), 0 beyond (grad_x may be grad) */
#ifndef AUTOGRAD_CORE_SOFTMAX_INTERNAL_H
#define AUTOGRAD_CORE_SOFTMAX_INTERNAL_H
#include <stdint.h>
#include "kernels.h"

#define AG_SOFTMAX_ROWS_TABLE(SUFFIX, T)                                                   \
    typedef struct {                                                                       \
        void (*forward)(int64_t, int64_t, int64_t, int, T *);                              \
        void (*backward)(int64_t, int64_t, int64_t, int, const T *, const T *, T *);       \
    } ag_softmax_rows_##SUFFIX;
AG_SOFTMAX_ROWS_TABLE(f32, float)
AG_SOFTMAX_ROWS_TABLE(f64, double)

void ag_softmax_rows_f32_portable(ag_softmax_rows_f32 *rows);
void ag_softmax_rows_f64_portable(ag_softmax_rows_f64 *rows);
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define AG_HAVE_SOFTMAX_X86 1
void ag_softmax_rows_f32_avx2(ag_softmax_rows_f32 *rows);
void ag_softmax_rows_f64_avx2(ag_softmax_rows_f64 *rows);
void ag_softmax_rows_f32_avx512(ag_softmax_rows_f32 *rows);
void ag_softmax_rows_f64_avx512(ag_softmax_rows_f64 *rows);
#endif

#endif
