/* winograd_level.h: winograd_tile.h for float and double, m = 2 and 4, at one SIMD
 * level. The includer defines AG_LEVEL (portable, avx2, avx512) under the level's
 * `#pragma GCC target`, and WG_VBYTES / WG_MR, the vector bytes and the micro-kernel
 * rows of that level; this gives ag_winograd_run_f32_m2_<level> and its siblings. */
#ifndef AG_PASTE4
#define AG_PASTE4_(a, b, c, d) a##b##c##d
#define AG_PASTE4(a, b, c, d) AG_PASTE4_(a, b, c, d)
#endif

#define VBYTES WG_VBYTES
#define MR WG_MR

#define T float
#define WG_M 2
#define AG_NAME(x) AG_PASTE4(x, _f32_m2_, , AG_LEVEL)
#include "winograd_tile.h"
#undef AG_NAME
#undef WG_M
#define WG_M 4
#define AG_NAME(x) AG_PASTE4(x, _f32_m4_, , AG_LEVEL)
#include "winograd_tile.h"
#undef AG_NAME
#undef WG_M
#undef T

#define T double
#define WG_M 2
#define AG_NAME(x) AG_PASTE4(x, _f64_m2_, , AG_LEVEL)
#include "winograd_tile.h"
#undef AG_NAME
#undef WG_M
#define WG_M 4
#define AG_NAME(x) AG_PASTE4(x, _f64_m4_, , AG_LEVEL)
#include "winograd_tile.h"
#undef AG_NAME
#undef WG_M
#undef T

#undef VBYTES
#undef MR
