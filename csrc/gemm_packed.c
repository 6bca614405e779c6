/* gemm_packed.c: a GEMM with a pre-packed B operand (see gemm_packed.h), for products
 * that reuse one B many times on one thread: the recurrent layers' per-step products
 * h_{t-1} W_hh^T (100 x 128 @ 128 x 512 at batch 100, hidden 128) and their backward.
 *
 * It runs the GEMM's own micro-kernels and A packers (ag_sgemm_select, gemm_internal.h)
 * in the unit path's loop order (gemm_driver.h): per depth slice, A is packed whole
 * (m rows: a batch share, L2-sized), then every B micro-panel (kept in L1 or streamed
 * from L2) meets every A micro-panel. Nothing is allocated here: the caller owns the
 * packed B and the A scratch. */
#include <stdint.h>
#include <string.h>
#include "gemm_internal.h"
#include "gemm_packed.h"
#include "kernels.h"


#define T float
#define AG_NAME(x) ag_s##x
#define AG_CONFIG ag_sgemm_config
#define AG_SELECT ag_sgemm_select
#include "gemm_packed_body.h"
#undef T
#undef AG_NAME
#undef AG_CONFIG
#undef AG_SELECT

#define T double
#define AG_NAME(x) ag_d##x
#define AG_CONFIG ag_dgemm_config
#define AG_SELECT ag_dgemm_select
#include "gemm_packed_body.h"
#undef T
#undef AG_NAME
#undef AG_CONFIG
#undef AG_SELECT
