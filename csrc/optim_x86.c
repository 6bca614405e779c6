/* optim_x86.c: the fused optimizers' element loops (optim_spans.h) compiled for AVX2+FMA
 * and for AVX-512F, float and double.
 *
 * The loops are plain C that GCC vectorizes; only the target differs. `#pragma GCC
 * target` compiles each inclusion for its ISA while the rest of the extension stays
 * baseline x86-64, and optim.c calls these only when ag_get_simd_level() (clamped to
 * what the CPU runs) says so. "fma" is in the AVX2 target, so fp-contract=off matters
 * most here: a fused multiply-add would round once where the numpy reference rounds
 * twice. Other compilers get the portable loops only. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize ("fp-contract=off")
#endif
#include "optim_internal.h"

#ifdef AG_HAVE_OPTIM_X86
#include <immintrin.h>

/* The square roots of a block (see optim_spans.h): vector sqrt is correctly rounded, as
 * numpy's is, and a negative argument gives NaN without touching errno. */
#define AG_SQRT_ARRAY(name, T, WIDTH, VECTOR, LOAD, ROOT, STORE, SCALAR)     \
    static void name(T *x, int64_t n) {                                      \
        int64_t i = 0;                                                       \
        for (; i + WIDTH <= n; i += WIDTH) {                                 \
            const VECTOR value = LOAD(x + i);                                \
            STORE(x + i, ROOT(value));                                       \
        }                                                                    \
        for (; i < n; i++) x[i] = SCALAR(x[i]);                              \
    }

#pragma GCC push_options
#pragma GCC target ("avx2,fma")
AG_SQRT_ARRAY(sqrt_array_f32_avx2, float, 8, __m256, _mm256_loadu_ps, _mm256_sqrt_ps, _mm256_storeu_ps, sqrtf)
AG_SQRT_ARRAY(sqrt_array_f64_avx2, double, 4, __m256d, _mm256_loadu_pd, _mm256_sqrt_pd, _mm256_storeu_pd, sqrt)
#define AG_LEVEL avx2
#include "optim_spans_level.h"
#undef AG_LEVEL
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target ("avx512f")
AG_SQRT_ARRAY(sqrt_array_f32_avx512, float, 16, __m512, _mm512_loadu_ps, _mm512_sqrt_ps, _mm512_storeu_ps, sqrtf)
AG_SQRT_ARRAY(sqrt_array_f64_avx512, double, 8, __m512d, _mm512_loadu_pd, _mm512_sqrt_pd, _mm512_storeu_pd, sqrt)
#define AG_LEVEL avx512
#include "optim_spans_level.h"
#undef AG_LEVEL
#pragma GCC pop_options

#endif
