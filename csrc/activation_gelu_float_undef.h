/* Undefines the GF_ macros one SIMD level of activation_x86.c defined for
 * activation_gelu_float_level.h, so that the next level can define its own. */
#undef GF
#undef GELU_FLOAT_LANES
#undef AG_GELU_FLOAT_NAME
#undef GF_SET1
#undef GF_ADD
#undef GF_SUB
#undef GF_MUL
#undef GF_DIV
#undef GF_MIN
#undef GF_MAX
#undef GF_FMADD
#undef GF_FMSUB
#undef GF_FNMADD
#undef GF_ROUND
#undef GF_ABS
#undef GF_SELECT_LT
#undef GF_LOAD
#undef GF_STORE
#undef GF_SCALE2
