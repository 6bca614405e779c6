/* Undefines the GV_ macros one SIMD level of activation_x86.c defined for
 * activation_gelu_level.h, so that the next level can define its own. */
#undef GV
#undef GELU_LANES
#undef AG_GELU_NAME
#undef GV_SET1
#undef GV_ADD
#undef GV_SUB
#undef GV_MUL
#undef GV_DIV
#undef GV_MIN
#undef GV_MAX
#undef GV_FMADD
#undef GV_FNMADD
#undef GV_ROUND
#undef GV_SELECT_LT
#undef GV_LOAD_FLOATS
#undef GV_STORE_FLOATS
#undef GV_SCALE2
