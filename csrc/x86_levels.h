/* x86_levels.h: compiles one family's row loops at the AVX2+FMA and the AVX-512F levels.
 *
 * Define AG_LEVEL_HEADER as the family's level header (which names its functions with
 * AG_LEVEL and is written for any level), then include this file; it includes that
 * header once per level under the level's target options. Not part of the public C API.
 * No include guard: each family's x86 file includes it once with its own header. */
#ifndef AG_LEVEL_HEADER
#error "define AG_LEVEL_HEADER (the family's level header) before including x86_levels.h"
#endif

#pragma GCC push_options
#pragma GCC target ("avx2,fma")
#define AG_LEVEL avx2
#include AG_LEVEL_HEADER
#undef AG_LEVEL
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target ("avx512f")
#define AG_LEVEL avx512
#include AG_LEVEL_HEADER
#undef AG_LEVEL
#pragma GCC pop_options

#undef AG_LEVEL_HEADER
