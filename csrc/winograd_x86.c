/* winograd_x86.c: the Winograd convolution (winograd_tile.h) compiled for AVX2+FMA
 * (32-byte vectors, 3 micro-kernel rows: 12 accumulators of 16 ymm registers) and
 * AVX-512F (64-byte vectors, 6 rows: 24 of 32 zmm). Only the target differs; winograd.c
 * calls these when ag_get_simd_level() (clamped to the CPU's) allows.
 * fp-contract=fast: the products and sums of the transforms and the GEMM become FMAs
 * (the build's -std=c99 turns contraction off); the result is checked against the
 * float64 reference with the transform's tolerance, not bit for bit. */
#pragma GCC optimize ("fp-contract=fast")
#include "winograd_internal.h"

#ifdef AG_HAVE_WINOGRAD_X86

#pragma GCC push_options
#pragma GCC target ("avx2,fma")
#define AG_LEVEL avx2
#define WG_VBYTES 32
#define WG_MR 3
#include "winograd_level.h"
#undef AG_LEVEL
#undef WG_VBYTES
#undef WG_MR
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target ("avx512f")
#define AG_LEVEL avx512
#define WG_VBYTES 64
#define WG_MR 6
#include "winograd_level.h"
#undef AG_LEVEL
#undef WG_VBYTES
#undef WG_MR
#pragma GCC pop_options

#endif
