/* optim_spans.h: the element loops of the fused optimizer steps, written once and
 * included for each (element type, SIMD level) with these macros defined:
 *   T              element type (float / double)
 *   SQRT           sqrtf / sqrt
 *   AG_NAME(x)     name mangling, e.g. x##_f32_avx512; the one public symbol an
 *                  inclusion defines is AG_NAME(ag_optim_spans), which fills AG_SPANS
 *   AG_SPANS, AG_ADAM_HYPER, AG_SGD_HYPER, AG_RMSPROP_HYPER  the types of
 *                  optim_internal.h for T
 * and with AG_NAME(sqrt_array)(T *x, int64_t n), x[i] = SQRT(x[i]), defined before.
 *
 * Why the square roots are a function of their own: GCC vectorizes a loop with sqrt only
 * under -fno-math-errno, a build-wide flag that `#pragma GCC optimize` cannot give
 * (sqrtf's builtin declaration is fixed when the compiler starts), and an errno-setting
 * sqrt leaves the whole loop scalar. So the updates that take a square root run in
 * blocks that stay in L1: one vectorized loop up to the root's argument, the roots with
 * the level's vector instruction (optim_x86.c) or plain sqrt (portable), one vectorized
 * loop after. Every value is still computed by the same operations as the reference.
 *
 * Exactness: each loop does, per element, the same IEEE operations in the same order as
 * the numpy reference (autograd_core/kernels/optim.py), each rounded to T: numpy's
 * multiply, add, subtract, divide and sqrt are correctly rounded, and so are these, in
 * any vector width. Nothing may fuse a multiply and an add into an FMA (one rounding
 * instead of two): the build's -std=c99 implies -ffp-contract=off, and optim.c and
 * optim_x86.c say so again with a pragma. a + b is written in the reference's operand
 * order where it matters for readability only: IEEE addition and multiplication are
 * commutative, bit for bit.
 *
 * No restrict: a gradient that is the parameter array itself still gives the
 * reference's result (each element is read before it is written), and GCC vectorizes
 * behind a runtime overlap test. */

/* Elements per block of an update that takes square roots: its scratch (one T per
 * element, on the stack) and the block's slices of every array stay in L1. */
#ifndef AG_OPTIM_BLOCK
#define AG_OPTIM_BLOCK 512
#endif

/* ---- Adam ------------------------------------------------------------------------------- */
/* Block part 1: the moments, and their v into root (for the square root). */
AG_UNIT void AG_NAME(adam_moments)(const T *p, const T *g, T *exp_avg, T *exp_avg_sq, T *root,
                                   int64_t n, const AG_ADAM_HYPER *h, int decay) {
    const T beta1 = h->beta1, one_minus_beta1 = h->one_minus_beta1;
    const T beta2 = h->beta2, one_minus_beta2 = h->one_minus_beta2;
    const T weight_decay = h->weight_decay;
    for (int64_t i = 0; i < n; i++) {
        T grad = g[i];
        if (decay) grad = p[i] * weight_decay + grad;
        const T m = exp_avg[i] * beta1 + grad * one_minus_beta1;
        const T v = exp_avg_sq[i] * beta2 + (grad * grad) * one_minus_beta2;
        exp_avg[i] = m;
        exp_avg_sq[i] = v;
        root[i] = v;
    }
}

/* Block part 2, root = sqrt(v): p -= lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps). */
AG_UNIT void AG_NAME(adam_apply)(T *p, const T *exp_avg, const T *root, int64_t n,
                                 const AG_ADAM_HYPER *h) {
    const T eps = h->eps, step_size = h->step_size, bias2_scale = h->bias2_scale;
    for (int64_t i = 0; i < n; i++)
        p[i] = p[i] - (exp_avg[i] / (root[i] * bias2_scale + eps)) * step_size;
}

AG_UNIT void AG_NAME(adam_blocks)(T *p, const T *g, T *exp_avg, T *exp_avg_sq, int64_t n,
                                  const AG_ADAM_HYPER *h, int decay) {
    T root[AG_OPTIM_BLOCK];
    for (int64_t low = 0; low < n; low += AG_OPTIM_BLOCK) {
        const int64_t count = n - low < AG_OPTIM_BLOCK ? n - low : AG_OPTIM_BLOCK;
        AG_NAME(adam_moments)(p + low, g + low, exp_avg + low, exp_avg_sq + low, root, count, h, decay);
        AG_NAME(sqrt_array)(root, count);
        AG_NAME(adam_apply)(p + low, exp_avg + low, root, count, h);
    }
}

static void AG_NAME(adam_span)(T *p, const T *g, T *exp_avg, T *exp_avg_sq, int64_t n,
                               const AG_ADAM_HYPER *h) {
    if (h->decay) AG_NAME(adam_blocks)(p, g, exp_avg, exp_avg_sq, n, h, 1);
    else AG_NAME(adam_blocks)(p, g, exp_avg, exp_avg_sq, n, h, 0);
}

/* ---- SGD (no square root: one loop) ------------------------------------------------------ */
/* mode 0: no momentum; 1: the buffer's first step (it becomes the gradient, undamped);
 * 2: buffer = momentum * buffer + (1 - dampening) * gradient. */
AG_UNIT void AG_NAME(sgd_loop)(T *p, const T *g, T *buffer, int64_t n, const AG_SGD_HYPER *h,
                               int decay, int mode, int dampened, int nesterov) {
    const T lr = h->lr, momentum = h->momentum, weight_decay = h->weight_decay;
    const T one_minus_dampening = h->one_minus_dampening;
    for (int64_t i = 0; i < n; i++) {
        T grad = g[i];
        if (decay) grad = p[i] * weight_decay + grad;
        T update = grad;
        if (mode != 0) {
            T b = grad;
            if (mode == 2) b = dampened ? buffer[i] * momentum + grad * one_minus_dampening
                                        : buffer[i] * momentum + grad;
            buffer[i] = b;
            update = nesterov ? b * momentum + grad : b;
        }
        p[i] = p[i] - update * lr;
    }
}

/* Each flag becomes a constant of its own copy of the loop, one level at a time. */
AG_UNIT void AG_NAME(sgd_nesterov)(T *p, const T *g, T *buffer, int64_t n, const AG_SGD_HYPER *h,
                                   int decay, int mode, int dampened) {
    if (h->nesterov) AG_NAME(sgd_loop)(p, g, buffer, n, h, decay, mode, dampened, 1);
    else AG_NAME(sgd_loop)(p, g, buffer, n, h, decay, mode, dampened, 0);
}

AG_UNIT void AG_NAME(sgd_momentum)(T *p, const T *g, T *buffer, int64_t n, const AG_SGD_HYPER *h,
                                   int decay) {
    if (!h->with_momentum) AG_NAME(sgd_loop)(p, g, buffer, n, h, decay, 0, 0, 0);
    else if (h->fresh) AG_NAME(sgd_nesterov)(p, g, buffer, n, h, decay, 1, 0);
    else if (h->dampened) AG_NAME(sgd_nesterov)(p, g, buffer, n, h, decay, 2, 1);
    else AG_NAME(sgd_nesterov)(p, g, buffer, n, h, decay, 2, 0);
}

static void AG_NAME(sgd_span)(T *p, const T *g, T *buffer, int64_t n, const AG_SGD_HYPER *h) {
    if (h->decay) AG_NAME(sgd_momentum)(p, g, buffer, n, h, 1);
    else AG_NAME(sgd_momentum)(p, g, buffer, n, h, 0);
}

/* ---- RMSprop ---------------------------------------------------------------------------- */
/* Block part 1: the averages, and the square root's argument into root. */
AG_UNIT void AG_NAME(rmsprop_averages)(const T *p, const T *g, T *square_avg, T *grad_avg, T *root,
                                       int64_t n, const AG_RMSPROP_HYPER *h, int decay, int centered) {
    const T alpha = h->alpha, one_minus_alpha = h->one_minus_alpha, weight_decay = h->weight_decay;
    for (int64_t i = 0; i < n; i++) {
        T grad = g[i];
        if (decay) grad = p[i] * weight_decay + grad;
        const T square = square_avg[i] * alpha + (grad * grad) * one_minus_alpha;
        square_avg[i] = square;
        if (centered) {
            const T mean = grad_avg[i] * alpha + grad * one_minus_alpha;
            grad_avg[i] = mean;
            root[i] = square - mean * mean;
        } else {
            root[i] = square;
        }
    }
}

/* Block part 2, root = the average: the gradient (recomputed the same way: p is not
 * written before this loop) over it, through the momentum buffer or not. */
AG_UNIT void AG_NAME(rmsprop_apply)(T *p, const T *g, T *buffer, const T *root, int64_t n,
                                    const AG_RMSPROP_HYPER *h, int decay, int with_momentum) {
    const T lr = h->lr, eps = h->eps, weight_decay = h->weight_decay, momentum = h->momentum;
    for (int64_t i = 0; i < n; i++) {
        T grad = g[i];
        if (decay) grad = p[i] * weight_decay + grad;
        T update = grad / (root[i] + eps);
        if (with_momentum) {
            const T b = buffer[i] * momentum + update;
            buffer[i] = b;
            update = b;
        }
        p[i] = p[i] - update * lr;
    }
}

AG_UNIT void AG_NAME(rmsprop_blocks)(T *p, const T *g, T *square_avg, T *grad_avg, T *buffer,
                                     int64_t n, const AG_RMSPROP_HYPER *h,
                                     int decay, int centered, int with_momentum) {
    T root[AG_OPTIM_BLOCK];
    for (int64_t low = 0; low < n; low += AG_OPTIM_BLOCK) {
        const int64_t count = n - low < AG_OPTIM_BLOCK ? n - low : AG_OPTIM_BLOCK;
        AG_NAME(rmsprop_averages)(p + low, g + low, square_avg + low, centered ? grad_avg + low : NULL,
                                  root, count, h, decay, centered);
        AG_NAME(sqrt_array)(root, count);
        AG_NAME(rmsprop_apply)(p + low, g + low, with_momentum ? buffer + low : NULL, root, count, h,
                               decay, with_momentum);
    }
}

AG_UNIT void AG_NAME(rmsprop_momentum)(T *p, const T *g, T *square_avg, T *grad_avg, T *buffer,
                                       int64_t n, const AG_RMSPROP_HYPER *h, int decay, int centered) {
    if (h->with_momentum) AG_NAME(rmsprop_blocks)(p, g, square_avg, grad_avg, buffer, n, h, decay, centered, 1);
    else AG_NAME(rmsprop_blocks)(p, g, square_avg, grad_avg, buffer, n, h, decay, centered, 0);
}

AG_UNIT void AG_NAME(rmsprop_centered)(T *p, const T *g, T *square_avg, T *grad_avg, T *buffer,
                                       int64_t n, const AG_RMSPROP_HYPER *h, int decay) {
    if (h->centered) AG_NAME(rmsprop_momentum)(p, g, square_avg, grad_avg, buffer, n, h, decay, 1);
    else AG_NAME(rmsprop_momentum)(p, g, square_avg, grad_avg, buffer, n, h, decay, 0);
}

static void AG_NAME(rmsprop_span)(T *p, const T *g, T *square_avg, T *grad_avg, T *buffer,
                                  int64_t n, const AG_RMSPROP_HYPER *h) {
    if (h->decay) AG_NAME(rmsprop_centered)(p, g, square_avg, grad_avg, buffer, n, h, 1);
    else AG_NAME(rmsprop_centered)(p, g, square_avg, grad_avg, buffer, n, h, 0);
}

void AG_NAME(ag_optim_spans)(AG_SPANS *spans) {
    spans->adam = AG_NAME(adam_span);
    spans->sgd = AG_NAME(sgd_span);
    spans->rmsprop = AG_NAME(rmsprop_span);
}
