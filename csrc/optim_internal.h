/* optim_internal.h: what the fused optimizer driver (optim.c) and the per-ISA builds of
 * its element loops (optim_spans.h, included by optim.c and optim_x86.c) share. Not part
 * of the public C API (that is kernels.h).
 *
 * A span function updates n consecutive elements of one parameter (and of its gradient
 * and state buffers, at the same offsets); the driver splits all parameters' elements
 * over threads and calls the span functions of the SIMD level in use
 * (ag_get_simd_level(), the one level every family reads). The hyperparameters arrive
 * already rounded to T, the way numpy rounds a Python float scalar against a T array. */
#ifndef AUTOGRAD_CORE_OPTIM_INTERNAL_H
#define AUTOGRAD_CORE_OPTIM_INTERNAL_H
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include "kernels.h"

/* The per-element helpers must be inlined with constant flags, so that each case of an
 * update (weight decay or not, momentum or not, ...) is its own vectorized loop. */
#if defined(__GNUC__)
#define AG_UNIT static inline __attribute__((always_inline))
#else
#define AG_UNIT static inline
#endif

/* Hyperparameters of one parameter's update, in T; the ints say which terms the update
 * has (the numpy reference tests the same hyperparameters for truth):
 *   adam:    decay (weight_decay != 0); step_size = lr / (1 - beta1^t),
 *            bias2_scale = 1 / sqrt(1 - beta2^t) with the parameter's own step t
 *   sgd:     decay; with_momentum (momentum != 0); fresh (the first step of the momentum
 *            buffer, which starts at the gradient); dampened (dampening != 0); nesterov
 *   rmsprop: decay; centered; with_momentum
 * Span functions: adam(p, g, exp_avg, exp_avg_sq, n, hyper),
 * sgd(p, g, momentum_buffer or NULL, n, hyper),
 * rmsprop(p, g, square_avg, grad_avg or NULL, momentum_buffer or NULL, n, hyper). */
#define AG_OPTIM_TYPES(SUFFIX, T)                                                       \
    typedef struct {                                                                    \
        T beta1, one_minus_beta1, beta2, one_minus_beta2, eps, weight_decay;            \
        T step_size, bias2_scale;                                                       \
        int decay;                                                                      \
    } ag_adam_hyper_##SUFFIX;                                                           \
    typedef struct {                                                                    \
        T lr, momentum, one_minus_dampening, weight_decay;                              \
        int decay, with_momentum, fresh, dampened, nesterov;                            \
    } ag_sgd_hyper_##SUFFIX;                                                            \
    typedef struct {                                                                    \
        T lr, alpha, one_minus_alpha, eps, weight_decay, momentum;                      \
        int decay, centered, with_momentum;                                             \
    } ag_rmsprop_hyper_##SUFFIX;                                                        \
    typedef struct {                                                                    \
        void (*adam)(T *, const T *, T *, T *, int64_t, const ag_adam_hyper_##SUFFIX *); \
        void (*sgd)(T *, const T *, T *, int64_t, const ag_sgd_hyper_##SUFFIX *);        \
        void (*rmsprop)(T *, const T *, T *, T *, T *, int64_t, const ag_rmsprop_hyper_##SUFFIX *); \
    } ag_optim_spans_##SUFFIX;
AG_OPTIM_TYPES(f32, float)
AG_OPTIM_TYPES(f64, double)

/* Filled with the span functions for `level` (0 portable, 1 AVX2+FMA, 2 AVX-512F); the
 * caller has already clamped level to what the CPU supports. */
void ag_optim_select_f32(int level, ag_optim_spans_f32 *spans);
void ag_optim_select_f64(int level, ag_optim_spans_f64 *spans);

/* One definition per instantiation of optim_spans.h. */
void ag_optim_spans_f32_portable(ag_optim_spans_f32 *spans);
void ag_optim_spans_f64_portable(ag_optim_spans_f64 *spans);
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define AG_HAVE_OPTIM_X86 1
void ag_optim_spans_f32_avx2(ag_optim_spans_f32 *spans);
void ag_optim_spans_f64_avx2(ag_optim_spans_f64 *spans);
void ag_optim_spans_f32_avx512(ag_optim_spans_f32 *spans);
void ag_optim_spans_f64_avx512(ag_optim_spans_f64 *spans);
#endif

#endif
