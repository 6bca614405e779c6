/* softmax_rows.h: the softmax row loops (see softmax_internal.h for their contract),
 * written once for element type T at one SIMD level and included by
 * softmax_rows_level.h (T, EXP, AG_NAME, AG_ROWS_TABLE defined). No include guard:
 * included once per type and level. Plain C that the compiler vectorises (the blocks'
 * inner loops), EXP inlined. */

/* The columns row `row` keeps: all (causal 0), or 0..(row mod width) (causal 1). */
static inline int64_t AG_NAME(kept)(int64_t row, int64_t width, int causal) {
    return causal ? row % width + 1 : width;
}

/* A row's loops run over whole blocks of AG_SOFTMAX_BLOCK columns: the kept columns
 * rounded up to a block (not past the width's last whole block). A multiple of 16 is a
 * multiple of every vector width, so the vector loops cover it all and the compiler's
 * scalar epilogue -- the polynomial exp one element at a time, which for the causal
 * rows' 1..64 columns cost more than the vector part at AVX-512 -- never runs. The
 * forward first writes -inf over the block's columns past the kept ones (they are
 * outputs, 0 in the end): the max ignores them and their exp is 0, with no mask in the
 * vector loops (an index mask there made GCC split each loop in two at the kept
 * boundary, the second part scalar). The backward reads y, which is 0 there. Columns
 * past the width's last whole block (widths not a multiple of 16) go in plain loops. */
#ifndef AG_SOFTMAX_BLOCK
#define AG_SOFTMAX_BLOCK 16
#endif

static inline int64_t AG_NAME(blocked)(int64_t kept, int64_t width) {
    const int64_t blocked = (kept + AG_SOFTMAX_BLOCK - 1) / AG_SOFTMAX_BLOCK * AG_SOFTMAX_BLOCK;
    const int64_t whole = width / AG_SOFTMAX_BLOCK * AG_SOFTMAX_BLOCK;
    return blocked < whole ? blocked : whole;
}

static void AG_NAME(forward)(int64_t begin, int64_t end, int64_t width, int causal, T *data) {
    for (int64_t row = begin; row < end; ++row) {
        T *x = data + row * width;
        const int64_t kept = AG_NAME(kept)(row, width, causal), blocked = AG_NAME(blocked)(kept, width);
        T largest = x[0], total = 0, inverse;
        int64_t j;
        for (j = kept; j < blocked; ++j) x[j] = -(T)INFINITY;
        AG_OMP("omp simd reduction(max:largest)")
        for (j = 0; j < blocked; ++j) largest = x[j] > largest ? x[j] : largest;
        for (j = blocked; j < kept; ++j) largest = x[j] > largest ? x[j] : largest;
        AG_OMP("omp simd reduction(+:total)")
        for (j = 0; j < blocked; ++j) {
            x[j] = EXP(x[j] - largest);
            total += x[j];
        }
        for (j = blocked; j < kept; ++j) {
            x[j] = EXP(x[j] - largest);
            total += x[j];
        }
        inverse = (T)1 / total;
        AG_OMP("omp simd")
        for (j = 0; j < blocked; ++j) x[j] *= inverse;
        for (j = blocked; j < kept; ++j) x[j] *= inverse;
        for (j = kept; j < width; ++j) x[j] = 0;
    }
}

static void AG_NAME(backward)(int64_t begin, int64_t end, int64_t width, int causal, const T *y_data,
                              const T *grad_data, T *grad_x_data) {
    for (int64_t row = begin; row < end; ++row) {
        const T *y = y_data + row * width;
        const T *grad = grad_data + row * width;
        T *grad_x = grad_x_data + row * width;
        const int64_t kept = AG_NAME(kept)(row, width, causal), blocked = AG_NAME(blocked)(kept, width);
        T dot = 0;
        int64_t j;
        /* past the kept columns y is 0: their products add 0 (as the full row's sum does) */
        AG_OMP("omp simd reduction(+:dot)")
        for (j = 0; j < blocked; ++j) dot += grad[j] * y[j];
        for (j = blocked; j < kept; ++j) dot += grad[j] * y[j];
        /* grad_x may be grad: each element is read before it is written */
        AG_OMP("omp simd")
        for (j = 0; j < blocked; ++j) grad_x[j] = y[j] * (grad[j] - dot);
        for (j = blocked; j < kept; ++j) grad_x[j] = y[j] * (grad[j] - dot);
        for (j = kept; j < width; ++j) grad_x[j] = 0;
    }
}

void AG_NAME(ag_softmax_rows)(AG_ROWS_TABLE *rows) {
    rows->forward = AG_NAME(forward);
    rows->backward = AG_NAME(backward);
}
