/* rnn_cells_driver.h: the RNN cells' entry points (kernels.h), written once and included
 * by rnn_cells.c for each element type with these macros defined:
 *   T              element type (float / double)
 *   AG_NAME(x)     name mangling (x##_f32 / x##_f64)
 *   AG_GEMM        ag_sgemm / ag_dgemm
 *   AG_ROWS_TABLE  ag_rnn_rows_f32 / ag_rnn_rows_f64 (rnn_cells_internal.h)
 *   AG_SELECT      ag_rnn_select_f32 / ag_rnn_select_f64
 *   AG_GEMM_PACKED, AG_PACK_B, AG_PACKED_B_SIZE, AG_PACKED_A_SIZE
 *                  the pre-packed GEMM of that type (gemm_packed.h)
 * Every call picks the row functions of ag_get_simd_level() and splits the batch rows
 * over threads with ag_parallel_for (parallel.h): each thread gets a contiguous share
 * of the team that actually started, and every row is computed the same way whoever
 * runs it. */

/* Everything a share of the batch needs; unused pointers stay NULL. */
typedef struct {
    AG_ROWS_TABLE rows;
    const T *gates, *c_prev, *saved, *grad_h, *grad_c, *h_prev, *weight, *bias, *gh;
    int64_t ld_x, hidden;
    T *h, *c, *saved_out, *work, *grad_gates, *grad_h_prev, *grad_c_prev, *grad_bias;
    T *grad_gh;
    /* whole sequences (LSTM, GRU, Elman RNN): steps, the batch, the initial state h0 (NULL:
     * zeros), the gradient of the last state (NULL: zeros), where the initial state's
     * gradient goes (NULL: not needed), tanh or relu; the LSTM's cell state likewise
     * (c0 always given) */
    const T *h0, *grad_final, *c0, *grad_final_c;
    T *grad_h0, *grad_c0;
    int64_t steps, batch;
    int relu;
    /* the sequences' recurrent weight packed once for all steps (gemm_packed.h), or
     * NULL (memory short): each step's product then packs it itself */
    const T *packed_weight;
    /* the LSTM layer with its input projection inside the steps: the layer's input
     * [steps, batch, input_width] (lstm_layer_forward) */
    const T *inputs;
    int64_t input_width;
    /* ... and at backward, where the input's gradient goes [steps, batch, input_width]
     * (lstm_layer_backward; weight is then [W_ih | W_hh]) */
    T *grad_inputs;
    int layer_backward;  /* lstm_layer_backward: weight is the layer's [W_ih | W_hh]^T */
    /* lstm_layer_backward with the weights' gradients: each step's grad_gates rows go to
     * gate_rows (a share's rows at first * 4h; NULL: into grad_gates) and from there
     * into packed_gates, the weights' product's packed A = grad_gates^T [4h, steps *
     * batch]; the step's x_t and h_{t-1} rows (h is the forward's states) into
     * packed_inputs and packed_states, its packed B operands (NULL: not wanted) */
    T *gate_rows, *packed_gates, *packed_inputs, *packed_states;
    T *grad_weight_ih, *grad_weight_hh;
    /* ... packed_inputs / packed_states NULL: that operand is read in place (its width
     * is whole micro-panels) */
} AG_NAME(cell_job);

/* ---- LSTM cell -------------------------------------------------------------------------- */
static void AG_NAME(lstm_cell_forward_share)(void *job_pointer, int64_t first, int64_t last,
                                             int thread) {
    const AG_NAME(cell_job) *job = (const AG_NAME(cell_job) *)job_pointer;
    const int64_t hidden = job->hidden;
    (void)thread;
    for (int64_t b = first; b < last; b++)
        job->rows.lstm_forward_row(job->gates + b * 4 * hidden, NULL, NULL, job->c_prev + b * hidden,
                                   job->h + b * hidden, job->c + b * hidden,
                                   job->saved_out + b * 5 * hidden, hidden);
}

void AG_NAME(ag_lstm_cell_forward)(const T *gates, const T *c_prev, T *h, T *c,
                                   T *saved, int64_t batch, int64_t hidden) {
    AG_NAME(cell_job) job = {0};
    AG_SELECT(ag_get_simd_level(), &job.rows);
    job.gates = gates; job.c_prev = c_prev; job.h = h; job.c = c; job.saved_out = saved;
    job.hidden = hidden;
    ag_parallel_for(cell_threads(batch * hidden), batch, AG_NAME(lstm_cell_forward_share), &job);
}

/* Rows first..last-1 of the backward of the cell. */
static void AG_NAME(lstm_cell_backward_share)(void *job_pointer, int64_t first, int64_t last,
                                              int thread) {
    const AG_NAME(cell_job) *job = (const AG_NAME(cell_job) *)job_pointer;
    const int64_t hidden = job->hidden;
    (void)thread;
    for (int64_t b = first; b < last; b++)
        job->rows.lstm_backward_row(job->saved + b * 5 * hidden, job->c_prev + b * hidden,
                                    job->grad_h + b * hidden,
                                    job->grad_c != NULL ? job->grad_c + b * hidden : NULL,
                                    job->grad_gates + b * 4 * hidden,
                                    job->grad_c_prev + b * hidden, hidden);
}

void AG_NAME(ag_lstm_cell_backward)(const T *saved, const T *c_prev, const T *grad_h,
                                    const T *grad_c, T *grad_gates, T *grad_c_prev,
                                    int64_t batch, int64_t hidden) {
    AG_NAME(cell_job) job = {0};
    AG_SELECT(ag_get_simd_level(), &job.rows);
    job.saved = saved; job.c_prev = c_prev; job.grad_h = grad_h; job.grad_c = grad_c;
    job.grad_gates = grad_gates; job.grad_c_prev = grad_c_prev; job.hidden = hidden;
    ag_parallel_for(cell_threads(batch * hidden), batch, AG_NAME(lstm_cell_backward_share), &job);
}

/* ---- whole LSTM step ---------------------------------------------------------------------- */
/* Rows first..last-1 of one step: their part of h_prev W_hh^T, then their cell. */
static void AG_NAME(lstm_step_forward_share)(void *job_pointer, int64_t first, int64_t last,
                                             int thread) {
    const AG_NAME(cell_job) *job = (const AG_NAME(cell_job) *)job_pointer;
    const int64_t hidden = job->hidden;
    (void)thread;
    if (job->h_prev != NULL && last > first)
        AG_GEMM(0, 0, last - first, 4 * hidden, hidden, (T)1, job->h_prev + first * hidden, hidden,
                job->weight, 4 * hidden, (T)0, job->work + first * 4 * hidden, 4 * hidden);
    for (int64_t b = first; b < last; b++)
        job->rows.lstm_forward_row(job->gates + b * job->ld_x,
                                   job->h_prev != NULL ? job->work + b * 4 * hidden : NULL, job->bias,
                                   job->c_prev + b * hidden, job->h + b * hidden, job->c + b * hidden,
                                   job->saved_out + b * 5 * hidden, hidden);
}

/* The recurrent matmul and the cell in one call, so a step costs Python one call and
 * the matmul's result never becomes an array of its own (work is scratch space). */
void AG_NAME(ag_lstm_step_forward)(const T *x_gates, int64_t ld_x, const T *h_prev,
                                   const T *weight_hh_t, const T *bias, const T *c_prev, T *work,
                                   T *h, T *c, T *saved, int64_t batch, int64_t hidden) {
    AG_NAME(cell_job) job = {0};
    AG_SELECT(ag_get_simd_level(), &job.rows);
    job.gates = x_gates; job.ld_x = ld_x; job.h_prev = h_prev; job.weight = weight_hh_t;
    job.bias = bias; job.c_prev = c_prev; job.work = work; job.h = h; job.c = c;
    job.saved_out = saved; job.hidden = hidden;
    ag_parallel_for(step_threads(batch, hidden), batch, AG_NAME(lstm_step_forward_share), &job);
}

/* Rows first..last-1 of one step's backward: their cell, their share of the bias
 * gradient (into the row of grad_bias that belongs to this thread), then their
 * grad_h_prev. */
static void AG_NAME(lstm_step_backward_share)(void *job_pointer, int64_t first, int64_t last,
                                              int thread) {
    const AG_NAME(cell_job) *job = (const AG_NAME(cell_job) *)job_pointer;
    const int64_t hidden = job->hidden;
    AG_NAME(lstm_cell_backward_share)(job_pointer, first, last, thread);
    /* acc[j] += sum over the rows of grad_gates[row][j]: the step's share of the bias
     * gradient, summed while the rows are still in cache */
    if (job->grad_bias != NULL)
        job->rows.add_rows(job->grad_bias + thread * 4 * hidden, job->grad_gates + first * 4 * hidden,
                           last - first, 4 * hidden);
    if (job->grad_h_prev != NULL && last > first)
        AG_GEMM(0, 0, last - first, hidden, 4 * hidden, (T)1, job->grad_gates + first * 4 * hidden,
                4 * hidden, job->weight, hidden, (T)0, job->grad_h_prev + first * hidden, hidden);
}

void AG_NAME(ag_lstm_step_backward)(const T *saved, const T *c_prev, const T *grad_h,
                                    const T *grad_c, const T *weight_hh, T *grad_gates,
                                    T *grad_h_prev, T *grad_c_prev, T *grad_bias,
                                    int64_t grad_bias_rows, int64_t batch, int64_t hidden) {
    AG_NAME(cell_job) job = {0};
    int threads = step_threads(batch, hidden);
    if (grad_bias != NULL && threads > grad_bias_rows)
        threads = (int)grad_bias_rows;  /* each thread adds into a row of its own */
    AG_SELECT(ag_get_simd_level(), &job.rows);
    job.saved = saved; job.c_prev = c_prev; job.grad_h = grad_h; job.grad_c = grad_c;
    job.weight = weight_hh; job.grad_gates = grad_gates; job.grad_h_prev = grad_h_prev;
    job.grad_c_prev = grad_c_prev; job.grad_bias = grad_bias; job.hidden = hidden;
    ag_parallel_for(threads, batch, AG_NAME(lstm_step_backward_share), &job);
}

/* ---- GRU cell ------------------------------------------------------------------------------- */
static void AG_NAME(gru_cell_forward_share)(void *job_pointer, int64_t first, int64_t last,
                                            int thread) {
    const AG_NAME(cell_job) *job = (const AG_NAME(cell_job) *)job_pointer;
    const int64_t hidden = job->hidden;
    (void)thread;
    for (int64_t b = first; b < last; b++)
        job->rows.gru_forward_row(job->gates + b * 3 * hidden, job->gh + b * 3 * hidden,
                                  job->h_prev + b * hidden, job->h + b * hidden,
                                  job->saved_out + b * 4 * hidden, hidden);
}

void AG_NAME(ag_gru_cell_forward)(const T *gi, const T *gh, const T *h_prev, T *h,
                                  T *saved, int64_t batch, int64_t hidden) {
    AG_NAME(cell_job) job = {0};
    AG_SELECT(ag_get_simd_level(), &job.rows);
    job.gates = gi; job.gh = gh; job.h_prev = h_prev; job.h = h; job.saved_out = saved;
    job.hidden = hidden;
    ag_parallel_for(cell_threads(batch * hidden), batch, AG_NAME(gru_cell_forward_share), &job);
}

static void AG_NAME(gru_cell_backward_share)(void *job_pointer, int64_t first, int64_t last,
                                             int thread) {
    const AG_NAME(cell_job) *job = (const AG_NAME(cell_job) *)job_pointer;
    const int64_t hidden = job->hidden;
    (void)thread;
    for (int64_t b = first; b < last; b++)
        job->rows.gru_backward_row(job->saved + b * 4 * hidden, job->h_prev + b * hidden,
                                   job->grad_h + b * hidden, job->grad_gates + b * 3 * hidden,
                                   job->grad_gh + b * 3 * hidden, job->grad_h_prev + b * hidden,
                                   hidden);
}

void AG_NAME(ag_gru_cell_backward)(const T *saved, const T *h_prev, const T *grad_h,
                                   T *grad_gi, T *grad_gh, T *grad_h_prev,
                                   int64_t batch, int64_t hidden) {
    AG_NAME(cell_job) job = {0};
    AG_SELECT(ag_get_simd_level(), &job.rows);
    job.saved = saved; job.h_prev = h_prev; job.grad_h = grad_h; job.grad_gates = grad_gi;
    job.grad_gh = grad_gh; job.grad_h_prev = grad_h_prev; job.hidden = hidden;
    ag_parallel_for(cell_threads(batch * hidden), batch, AG_NAME(gru_cell_backward_share), &job);
}

/* ---- whole LSTM, GRU and Elman RNN layers over their sequences------------------------- */
/* Row b of step t depends on row b of step t-1 only (h_{t-1} W_hh^T is row by row), so
 * each thread runs every step for its own share of the batch: one parallel region for
 * the whole sequence, no barrier between steps. Each step's matmul is a single-threaded
 * GEMM of the share's rows, as in the LSTM step. Arrays are time-major [steps, batch, k]. */

/* The recurrent weight [k, n] (row-major) packed for every step's product, once per
 * sequence: packing it per step (what a plain AG_GEMM call does) read and wrote the
 * whole weight for each 100-row product, ~10% of its time at hidden 128. NULL when the
 * memory cannot be had; free() it after the sequence. */
static T *AG_NAME(pack_weight)(const T *weight, int64_t k, int64_t n) {
    T *packed = (T *)malloc(sizeof(T) * (size_t)AG_PACKED_B_SIZE(k, n));
    if (packed != NULL)
        AG_PACK_B(0, k, n, weight, n, packed);
    return packed;
}

/* A thread's scratch for the packed rows of its share (count rows by depth k), or NULL
 * when there is no packed weight or no memory (step_product then calls AG_GEMM). */
static T *AG_NAME(share_scratch)(const AG_NAME(cell_job) *job, int64_t count, int64_t k) {
    return job->packed_weight != NULL ? (T *)malloc(sizeof(T) * (size_t)AG_PACKED_A_SIZE(count, k)) : NULL;
}

/* c [count, n] = a [count, k] @ weight [k, n] + beta c on this thread: the step's
 * recurrent product, with the weight packed once per sequence when it is. */
static void AG_NAME(step_product)(const AG_NAME(cell_job) *job, T *scratch, int64_t count, int64_t n,
                                  int64_t k, const T *a, T beta, T *c) {
    if (scratch != NULL)
        AG_GEMM_PACKED(count, n, k, (T)1, a, k, job->packed_weight, beta, c, n, scratch);
    else
        AG_GEMM(0, 0, count, n, k, (T)1, a, k, job->weight, n, beta, c, n);
}

/* The previous state of rows first.. at step t: h0 (or NULL, zeros) at t = 0. */
static const T *AG_NAME(previous_state)(const AG_NAME(cell_job) *job, int64_t t, int64_t first) {
    const int64_t hidden = job->hidden;
    if (t > 0)
        return job->h + ((t - 1) * job->batch + first) * hidden;
    return job->h0 != NULL ? job->h0 + first * hidden : NULL;
}

/* rows = value (count rows of width, value NULL: zeros) */
static void AG_NAME(fill_rows)(T *rows, const T *value, int64_t count, int64_t width) {
    for (int64_t b = 0; b < count; b++)
        for (int64_t j = 0; j < width; j++)
            rows[b * width + j] = value != NULL ? value[j] : (T)0;
}

static void AG_NAME(gru_sequence_forward_share)(void *job_pointer, int64_t first, int64_t last,
                                                int thread) {
    const AG_NAME(cell_job) *job = (const AG_NAME(cell_job) *)job_pointer;
    const int64_t hidden = job->hidden, batch = job->batch, count = last - first;
    T *gh = job->work + first * 3 * hidden;  /* h_{t-1} W_hh^T + b_hh of the share's rows */
    T *scratch;
    (void)thread;
    if (count <= 0)
        return;
    scratch = AG_NAME(share_scratch)(job, count, hidden);
    for (int64_t t = 0; t < job->steps; t++) {
        const T *h_prev = AG_NAME(previous_state)(job, t, first);
        const int64_t row = t * batch + first;
        if (job->bias != NULL || h_prev == NULL)
            AG_NAME(fill_rows)(gh, job->bias, count, 3 * hidden);
        if (h_prev != NULL)
            AG_NAME(step_product)(job, scratch, count, 3 * hidden, hidden, h_prev,
                                  job->bias != NULL ? (T)1 : (T)0, gh);
        for (int64_t b = 0; b < count; b++)
            job->rows.gru_forward_row(job->gates + (row + b) * 3 * hidden, gh + b * 3 * hidden,
                                      h_prev != NULL ? h_prev + b * hidden : NULL,
                                      job->h + (row + b) * hidden, job->saved_out + (row + b) * 4 * hidden,
                                      hidden);
    }
    free(scratch);
}

void AG_NAME(ag_gru_sequence_forward)(const T *x_gates, const T *h0, const T *weight_hh_t,
                                      const T *bias_hh, T *work, T *h, T *saved, int64_t steps,
                                      int64_t batch, int64_t hidden) {
    AG_NAME(cell_job) job = {0};
    AG_SELECT(ag_get_simd_level(), &job.rows);
    job.gates = x_gates; job.h0 = h0; job.weight = weight_hh_t; job.bias = bias_hh; job.work = work;
    job.h = h; job.saved_out = saved; job.steps = steps; job.batch = batch; job.hidden = hidden;
    job.packed_weight = AG_NAME(pack_weight)(weight_hh_t, hidden, 3 * hidden);
    ag_parallel_for(step_threads(batch, hidden), batch, AG_NAME(gru_sequence_forward_share), &job);
    free((void *)job.packed_weight);
}

/* The gradient flowing into h_{t} of rows first..: carry (from step t+1) plus the
 * output's own gradient (grad_h NULL: none), into gy. */
static void AG_NAME(incoming_gradient)(const AG_NAME(cell_job) *job, int64_t t, int64_t first,
                                       int64_t count, const T *carry, T *gy) {
    const int64_t width = count * job->hidden;
    const T *grad_h = job->grad_h != NULL ? job->grad_h + (t * job->batch + first) * job->hidden : NULL;
    for (int64_t j = 0; j < width; j++)
        gy[j] = grad_h != NULL ? carry[j] + grad_h[j] : carry[j];
}

static void AG_NAME(start_carry)(const AG_NAME(cell_job) *job, int64_t first, int64_t count, T *carry) {
    const int64_t width = count * job->hidden;
    for (int64_t j = 0; j < width; j++)
        carry[j] = job->grad_final != NULL ? job->grad_final[first * job->hidden + j] : (T)0;
}

static void AG_NAME(finish_carry)(const AG_NAME(cell_job) *job, int64_t first, int64_t count, const T *carry) {
    const int64_t width = count * job->hidden;
    if (job->grad_h0 != NULL)
        for (int64_t j = 0; j < width; j++)
            job->grad_h0[first * job->hidden + j] = carry[j];
}

static void AG_NAME(gru_sequence_backward_share)(void *job_pointer, int64_t first, int64_t last,
                                                 int thread) {
    const AG_NAME(cell_job) *job = (const AG_NAME(cell_job) *)job_pointer;
    const int64_t hidden = job->hidden, batch = job->batch, count = last - first;
    T *gy = job->work + first * hidden;                 /* the gradient reaching h_t */
    T *carry = job->work + (batch + first) * hidden;    /* ... and reaching h_{t-1} */
    T *scratch;
    (void)thread;
    if (count <= 0)
        return;
    scratch = AG_NAME(share_scratch)(job, count, 3 * hidden);
    AG_NAME(start_carry)(job, first, count, carry);
    for (int64_t t = job->steps - 1; t >= 0; t--) {
        const T *h_prev = AG_NAME(previous_state)(job, t, first);
        const int64_t row = t * batch + first;
        AG_NAME(incoming_gradient)(job, t, first, count, carry, gy);
        for (int64_t b = 0; b < count; b++)
            job->rows.gru_backward_row(job->saved + (row + b) * 4 * hidden,
                                       h_prev != NULL ? h_prev + b * hidden : NULL, gy + b * hidden,
                                       job->grad_gates + (row + b) * 3 * hidden,
                                       job->grad_gh + (row + b) * 3 * hidden, carry + b * hidden, hidden);
        if (h_prev != NULL && (t > 0 || job->grad_h0 != NULL))
            AG_NAME(step_product)(job, scratch, count, hidden, 3 * hidden, job->grad_gh + row * 3 * hidden,
                                  (T)1, carry);
    }
    AG_NAME(finish_carry)(job, first, count, carry);
    free(scratch);
}

void AG_NAME(ag_gru_sequence_backward)(const T *saved, const T *h, const T *h0, const T *grad_h,
                                       const T *grad_final, const T *weight_hh, T *work, T *grad_gi,
                                       T *grad_gh, T *grad_h0, int64_t steps, int64_t batch,
                                       int64_t hidden) {
    AG_NAME(cell_job) job = {0};
    AG_SELECT(ag_get_simd_level(), &job.rows);
    job.saved = saved; job.h = (T *)h; job.h0 = h0; job.grad_h = grad_h; job.grad_final = grad_final;
    job.weight = weight_hh; job.work = work; job.grad_gates = grad_gi; job.grad_gh = grad_gh;
    job.grad_h0 = grad_h0; job.steps = steps; job.batch = batch; job.hidden = hidden;
    job.packed_weight = AG_NAME(pack_weight)(weight_hh, 3 * hidden, hidden);
    ag_parallel_for(step_threads(batch, hidden), batch, AG_NAME(gru_sequence_backward_share), &job);
    free((void *)job.packed_weight);
}

static void AG_NAME(rnn_sequence_forward_share)(void *job_pointer, int64_t first, int64_t last,
                                                int thread) {
    const AG_NAME(cell_job) *job = (const AG_NAME(cell_job) *)job_pointer;
    const int64_t hidden = job->hidden, batch = job->batch, count = last - first;
    T *scratch;
    (void)thread;
    if (count <= 0)
        return;
    scratch = AG_NAME(share_scratch)(job, count, hidden);
    for (int64_t t = 0; t < job->steps; t++) {
        const T *h_prev = AG_NAME(previous_state)(job, t, first);
        const int64_t row = t * batch + first;
        T *h = job->h + row * hidden;
        const T *x = job->gates + row * hidden;
        for (int64_t j = 0; j < count * hidden; j++)
            h[j] = x[j];
        if (h_prev != NULL)
            AG_NAME(step_product)(job, scratch, count, hidden, hidden, h_prev, (T)1, h);
        job->rows.rnn_forward_span(h, count * hidden, job->relu);
    }
    free(scratch);
}

void AG_NAME(ag_rnn_sequence_forward)(const T *x_gates, const T *h0, const T *weight_hh_t, T *h,
                                      int64_t steps, int64_t batch, int64_t hidden, int relu) {
    AG_NAME(cell_job) job = {0};
    AG_SELECT(ag_get_simd_level(), &job.rows);
    job.gates = x_gates; job.h0 = h0; job.weight = weight_hh_t; job.h = h; job.steps = steps;
    job.batch = batch; job.hidden = hidden; job.relu = relu;
    job.packed_weight = AG_NAME(pack_weight)(weight_hh_t, hidden, hidden);
    ag_parallel_for(step_threads(batch, hidden), batch, AG_NAME(rnn_sequence_forward_share), &job);
    free((void *)job.packed_weight);
}

static void AG_NAME(rnn_sequence_backward_share)(void *job_pointer, int64_t first, int64_t last,
                                                 int thread) {
    const AG_NAME(cell_job) *job = (const AG_NAME(cell_job) *)job_pointer;
    const int64_t hidden = job->hidden, batch = job->batch, count = last - first;
    T *carry = job->work + first * hidden;  /* the gradient reaching h_t from step t+1 */
    T *scratch;
    (void)thread;
    if (count <= 0)
        return;
    scratch = AG_NAME(share_scratch)(job, count, hidden);
    AG_NAME(start_carry)(job, first, count, carry);
    for (int64_t t = job->steps - 1; t >= 0; t--) {
        const int64_t row = t * batch + first;
        T *grad_pre = job->grad_gates + row * hidden;
        job->rows.rnn_backward_span(job->h + row * hidden,
                                    job->grad_h != NULL ? job->grad_h + row * hidden : NULL, carry, grad_pre,
                                    count * hidden, job->relu);
        if (t > 0 || job->grad_h0 != NULL)
            AG_NAME(step_product)(job, scratch, count, hidden, hidden, grad_pre, (T)0, carry);
    }
    AG_NAME(finish_carry)(job, first, count, carry);
    free(scratch);
}

void AG_NAME(ag_rnn_sequence_backward)(const T *h, const T *grad_h, const T *grad_final,
                                       const T *weight_hh, T *work, T *grad_pre, T *grad_h0,
                                       int64_t steps, int64_t batch, int64_t hidden, int relu) {
    AG_NAME(cell_job) job = {0};
    AG_SELECT(ag_get_simd_level(), &job.rows);
    job.h = (T *)h; job.grad_h = grad_h; job.grad_final = grad_final; job.weight = weight_hh;
    job.work = work; job.grad_gates = grad_pre; job.grad_h0 = grad_h0; job.steps = steps; job.batch = batch;
    job.hidden = hidden; job.relu = relu;
    job.packed_weight = AG_NAME(pack_weight)(weight_hh, hidden, hidden);
    ag_parallel_for(step_threads(batch, hidden), batch, AG_NAME(rnn_sequence_backward_share), &job);
    free((void *)job.packed_weight);
}

static void AG_NAME(lstm_sequence_forward_share)(void *job_pointer, int64_t first, int64_t last,
                                                 int thread) {
    const AG_NAME(cell_job) *job = (const AG_NAME(cell_job) *)job_pointer;
    const int64_t hidden = job->hidden, batch = job->batch, count = last - first;
    T *hw = job->work + first * 4 * hidden;  /* h_{t-1} W_hh^T of the share's rows */
    T *scratch;
    (void)thread;
    if (count <= 0)
        return;
    scratch = AG_NAME(share_scratch)(job, count, hidden);
    for (int64_t t = 0; t < job->steps; t++) {
        const T *h_prev = AG_NAME(previous_state)(job, t, first);
        const T *c_prev = t > 0 ? job->c + ((t - 1) * batch + first) * hidden : job->c0 + first * hidden;
        const int64_t row = t * batch + first;
        if (h_prev != NULL)
            AG_NAME(step_product)(job, scratch, count, 4 * hidden, hidden, h_prev, (T)0, hw);
        for (int64_t b = 0; b < count; b++)
            job->rows.lstm_forward_row(job->gates + (row + b) * 4 * hidden,
                                       h_prev != NULL ? hw + b * 4 * hidden : NULL, NULL, c_prev + b * hidden,
                                       job->h + (row + b) * hidden, job->c + (row + b) * hidden,
                                       job->saved_out + (row + b) * 5 * hidden, hidden);
    }
    free(scratch);
}

void AG_NAME(ag_lstm_sequence_forward)(const T *x_gates, const T *h0, const T *c0, const T *weight_hh_t,
                                       T *work, T *h, T *c, T *saved, int64_t steps, int64_t batch,
                                       int64_t hidden) {
    AG_NAME(cell_job) job = {0};
    AG_SELECT(ag_get_simd_level(), &job.rows);
    job.gates = x_gates; job.h0 = h0; job.c0 = c0; job.weight = weight_hh_t; job.work = work; job.h = h;
    job.c = c; job.saved_out = saved; job.steps = steps; job.batch = batch; job.hidden = hidden;
    job.packed_weight = AG_NAME(pack_weight)(weight_hh_t, hidden, 4 * hidden);
    ag_parallel_for(step_threads(batch, hidden), batch, AG_NAME(lstm_sequence_forward_share), &job);
    free((void *)job.packed_weight);
}

/* The layer's backward with the input's gradient inside the steps: [grad x_t |
 * grad h_{t-1}] = grad_gates_t @ [W_ih | W_hh] (job->weight is its transpose, the
 * forward's [W_ih | W_hh]^T [input_width + h, 4h]) as one product (weight packed once per
 * sequence) into joint [count, input_width + hidden], split into grad_inputs and carry;
 * it replaced a GEMM over all steps afterwards that read grad_gates back from memory.
 * At t = 0, when h_{-1}'s gradient is not wanted, only grad x_0 = grad_gates_0 W_ih is
 * computed. Without memory for the packed weight or joint: two plain products. */
static void AG_NAME(layer_backward_product)(const AG_NAME(cell_job) *job, T *scratch, T *joint, int64_t t,
                                            int64_t first, int64_t count, const T *grad_gates, T *carry) {
    const int64_t hidden = job->hidden, width = job->input_width, depth = width + hidden;
    const int64_t row = t * job->batch + first;
    T *grad_x = job->grad_inputs != NULL ? job->grad_inputs + row * width : NULL;
    const int need_carry = t > 0 || (job->h0 != NULL && job->grad_h0 != NULL);
    if (grad_x == NULL) {  /* no input gradient: the packed weight is W_hh's part only */
        if (!need_carry)
            return;
        if (scratch != NULL)
            AG_GEMM_PACKED(count, hidden, 4 * hidden, (T)1, grad_gates, 4 * hidden, job->packed_weight, (T)0, carry,
                           hidden, scratch);
        else
            AG_GEMM(0, 1, count, hidden, 4 * hidden, (T)1, grad_gates, 4 * hidden, job->weight + width * 4 * hidden,
                    4 * hidden, (T)0, carry, hidden);
        return;
    }
    if (!need_carry || scratch == NULL || joint == NULL) {
        AG_GEMM(0, 1, count, width, 4 * hidden, (T)1, grad_gates, 4 * hidden, job->weight, 4 * hidden, (T)0,
                grad_x, width);
        if (need_carry)
            AG_GEMM(0, 1, count, hidden, 4 * hidden, (T)1, grad_gates, 4 * hidden, job->weight + width * 4 * hidden,
                    4 * hidden, (T)0, carry, hidden);
        return;
    }
    AG_GEMM_PACKED(count, depth, 4 * hidden, (T)1, grad_gates, 4 * hidden, job->packed_weight, (T)0, joint, depth,
                   scratch);
    for (int64_t b = 0; b < count; b++) {
        memcpy(grad_x + b * width, joint + b * depth, sizeof(T) * (size_t)width);
        memcpy(carry + b * hidden, joint + b * depth + width, sizeof(T) * (size_t)hidden);
    }
}

/* The weights' gradients [W_ih | W_hh] += grad_gates_t^T [x_t | h_{t-1}] summed over
 * every step and row are one product over depth steps * batch; a share's rows of step
 * t go into its packed operands here, while they are in cache, so that the product
 * after the steps packs nothing (see gemm_packed.h). */
static void AG_NAME(pack_weight_operands)(const AG_NAME(cell_job) *job, int64_t t, int64_t first, int64_t count,
                                          const T *gates) {
    const int64_t hidden = job->hidden, width = job->input_width, depth = job->steps * job->batch;
    const int64_t row = t * job->batch + first;
    AG_GEMM_FN(pack_a_columns)(4 * hidden, depth, row, count, gates, 4 * hidden, job->packed_gates);
    if (job->packed_inputs != NULL)
        AG_GEMM_FN(pack_b_rows)(depth, width, row, count, job->inputs + row * width, width, job->packed_inputs);
    if (job->packed_states != NULL)
        AG_GEMM_FN(pack_b_rows)(depth, hidden, row, count, AG_NAME(previous_state)(job, t, first), hidden,
                                job->packed_states);
}

/* The weights' product for rows of A's micro-panels first..last-1 (gates 12 at a time). */
static void AG_NAME(weight_gradient_share)(void *job_pointer, int64_t first, int64_t last, int thread) {
    const AG_NAME(cell_job) *job = (const AG_NAME(cell_job) *)job_pointer;
    const int64_t hidden = job->hidden, width = job->input_width, depth = job->steps * job->batch;
    (void)thread;
    if (job->grad_weight_ih != NULL && job->packed_inputs != NULL)
        AG_GEMM_FN(prepacked)(4 * hidden, width, depth, job->packed_gates, job->packed_inputs, job->grad_weight_ih,
                              width, first, last);
    else if (job->grad_weight_ih != NULL)
        AG_GEMM_FN(prepacked_a)(4 * hidden, width, depth, job->packed_gates, 0, NULL, job->inputs, width,
                                job->grad_weight_ih, width, first, last);
    if (job->grad_weight_hh != NULL && job->packed_states != NULL)
        AG_GEMM_FN(prepacked)(4 * hidden, hidden, depth, job->packed_gates, job->packed_states,
                              job->grad_weight_hh, hidden, first, last);
    else if (job->grad_weight_hh != NULL)  /* h_{t-1}: h0 (NULL: zeros) at t = 0, then the states */
        AG_GEMM_FN(prepacked_a)(4 * hidden, hidden, depth, job->packed_gates, job->batch, job->h0, job->h, hidden,
                                job->grad_weight_hh, hidden, first, last);
}

static void AG_NAME(lstm_sequence_backward_share)(void *job_pointer, int64_t first, int64_t last,
                                                  int thread) {
    const AG_NAME(cell_job) *job = (const AG_NAME(cell_job) *)job_pointer;
    const int64_t hidden = job->hidden, batch = job->batch, count = last - first, width = count * hidden;
    T *gy = job->work + first * hidden;                       /* the gradient reaching h_t */
    T *carry = job->work + (batch + first) * hidden;          /* ... and reaching h_{t-1} */
    T *carry_c = job->work + (2 * batch + first) * hidden;    /* reaching c_t, then c_{t-1}: */
    T *next_c = job->work + (3 * batch + first) * hidden;     /* two arrays, swapped each step */
    T *scratch, *joint;
    if (count <= 0)
        return;
    scratch = AG_NAME(share_scratch)(job, count, 4 * hidden);
    joint = job->grad_inputs != NULL ? (T *)malloc(sizeof(T) * (size_t)(count * (job->input_width + hidden))) : NULL;
    AG_NAME(start_carry)(job, first, count, carry);
    for (int64_t j = 0; j < width; j++)
        carry_c[j] = job->grad_final_c != NULL ? job->grad_final_c[first * hidden + j] : (T)0;
    for (int64_t t = job->steps - 1; t >= 0; t--) {
        const T *c_prev = t > 0 ? job->c + ((t - 1) * batch + first) * hidden : job->c0 + first * hidden;
        const int64_t row = t * batch + first;
        T *gates = job->gate_rows != NULL ? job->gate_rows + first * 4 * hidden : job->grad_gates + row * 4 * hidden;
        T *swap;
        AG_NAME(incoming_gradient)(job, t, first, count, carry, gy);
        for (int64_t b = 0; b < count; b++)
            job->rows.lstm_backward_row(job->saved + (row + b) * 5 * hidden, c_prev + b * hidden, gy + b * hidden,
                                        carry_c + b * hidden, gates + b * 4 * hidden, next_c + b * hidden, hidden);
        swap = carry_c; carry_c = next_c; next_c = swap;
        if (job->grad_bias != NULL)  /* this thread's row of the bias gradient, while the rows are in cache */
            job->rows.add_rows(job->grad_bias + thread * 4 * hidden, gates, count, 4 * hidden);
        if (job->layer_backward)
            AG_NAME(layer_backward_product)(job, scratch, joint, t, first, count, gates, carry);
        else if (t > 0 || (job->h0 != NULL && job->grad_h0 != NULL))
            AG_NAME(step_product)(job, scratch, count, hidden, 4 * hidden, gates, (T)0, carry);
        if (job->packed_gates != NULL)
            AG_NAME(pack_weight_operands)(job, t, first, count, gates);
    }
    free(joint);
    free(scratch);
    AG_NAME(finish_carry)(job, first, count, carry);
    if (job->grad_c0 != NULL)
        for (int64_t j = 0; j < width; j++)
            job->grad_c0[first * hidden + j] = carry_c[j];
}

void AG_NAME(ag_lstm_sequence_backward)(const T *saved, const T *c, const T *h0, const T *c0, const T *grad_h,
                                        const T *grad_final_h, const T *grad_final_c, const T *weight_hh,
                                        T *work, T *grad_gates, T *grad_h0, T *grad_c0, int64_t steps,
                                        int64_t batch, int64_t hidden) {
    AG_NAME(cell_job) job = {0};
    AG_SELECT(ag_get_simd_level(), &job.rows);
    job.saved = saved; job.c = (T *)c; job.h0 = h0; job.c0 = c0; job.grad_h = grad_h;
    job.grad_final = grad_final_h; job.grad_final_c = grad_final_c; job.weight = weight_hh; job.work = work;
    job.grad_gates = grad_gates; job.grad_h0 = grad_h0; job.grad_c0 = grad_c0; job.steps = steps;
    job.batch = batch; job.hidden = hidden;
    job.packed_weight = AG_NAME(pack_weight)(weight_hh, 4 * hidden, hidden);
    ag_parallel_for(step_threads(batch, hidden), batch, AG_NAME(lstm_sequence_backward_share), &job);
    free((void *)job.packed_weight);
}

/* The layer with the input projection inside the steps: each step's gates are one
 * product [x_t | h_{t-1}] @ [W_ih | W_hh]^T (the weight packed once per sequence)
 * plus the bias in the cell, instead of a GEMM over all steps up front whose [T*b, 4h]
 * result went to memory and came back for the cells. At t = 0 without h0 only x_t
 * W_ih^T is computed (the first `input_width` rows of weight). */
static void AG_NAME(lstm_layer_forward_share)(void *job_pointer, int64_t first, int64_t last, int thread) {
    const AG_NAME(cell_job) *job = (const AG_NAME(cell_job) *)job_pointer;
    const int64_t hidden = job->hidden, batch = job->batch, count = last - first;
    const int64_t width = job->input_width, depth = width + hidden;
    T *gates = job->work + first * 4 * hidden;  /* the share's pre-activations, less the bias */
    T *scratch;
    (void)thread;
    if (count <= 0)
        return;
    scratch = AG_NAME(share_scratch)(job, count, depth);
    for (int64_t t = 0; t < job->steps; t++) {
        const T *h_prev = AG_NAME(previous_state)(job, t, first);
        const T *c_prev = t > 0 ? job->c + ((t - 1) * batch + first) * hidden : job->c0 + first * hidden;
        const int64_t row = t * batch + first;
        const T *x = job->inputs + row * width;
        if (h_prev == NULL)
            AG_GEMM(0, 0, count, 4 * hidden, width, (T)1, x, width, job->weight, 4 * hidden, (T)0, gates,
                    4 * hidden);
        else if (scratch != NULL)  /* [x_t | h_{t-1}] packed straight from both */
            AG_GEMM_FN(packed_split)(count, 4 * hidden, depth, width, x, width, h_prev, hidden, job->packed_weight,
                                     (T)0, gates, 4 * hidden, scratch);
        else {  /* no memory for the packed weight: two plain products */
            AG_GEMM(0, 0, count, 4 * hidden, width, (T)1, x, width, job->weight, 4 * hidden, (T)0, gates,
                    4 * hidden);
            AG_GEMM(0, 0, count, 4 * hidden, hidden, (T)1, h_prev, hidden, job->weight + width * 4 * hidden,
                    4 * hidden, (T)1, gates, 4 * hidden);
        }
        for (int64_t b = 0; b < count; b++)
            job->rows.lstm_forward_row(gates + b * 4 * hidden, NULL, job->bias, c_prev + b * hidden,
                                       job->h + (row + b) * hidden, job->c + (row + b) * hidden,
                                       job->saved_out + (row + b) * 5 * hidden, hidden);
    }
    free(scratch);
}

void AG_NAME(ag_lstm_layer_forward)(const T *inputs, int64_t input_width, const T *h0, const T *c0,
                                    const T *weight_t, const T *bias, T *work, T *h, T *c, T *saved,
                                    int64_t steps, int64_t batch, int64_t hidden) {
    AG_NAME(cell_job) job = {0};
    AG_SELECT(ag_get_simd_level(), &job.rows);
    job.inputs = inputs; job.input_width = input_width; job.h0 = h0; job.c0 = c0; job.weight = weight_t;
    job.bias = bias; job.work = work; job.h = h; job.c = c; job.saved_out = saved; job.steps = steps;
    job.batch = batch; job.hidden = hidden;
    job.packed_weight = AG_NAME(pack_weight)(weight_t, input_width + hidden, 4 * hidden);
    ag_parallel_for(step_threads(batch, hidden), batch, AG_NAME(lstm_layer_forward_share), &job);
    free((void *)job.packed_weight);
}

/* lstm_sequence_backward whose product per step also gives the layer's input
 * gradient (see layer_backward_product): weight_t [input_width + h, 4h] = [W_ih |
 * W_hh]^T (lstm_layer_forward's), grad_inputs [steps, batch, input_width] or NULL (not
 * needed), grad_bias [4h] or NULL: the sum of grad_gates over every step and row (the
 * biases' gradient), taken while each step's rows are in cache instead of as a column
 * of ones in the weights' gradient GEMM, where it cost a whole extra row of
 * micro-tiles. */
int64_t AG_NAME(ag_lstm_layer_weight_scratch)(int64_t steps, int64_t batch, int64_t hidden, int64_t input_width) {
    const int64_t depth = steps * batch;
    return batch * 4 * hidden + AG_GEMM_FN(prepacked_a_size)(4 * hidden, depth)
           + AG_PACKED_B_SIZE(depth, input_width) + AG_PACKED_B_SIZE(depth, hidden);
}

int AG_NAME(ag_lstm_layer_backward)(const T *saved, const T *c, const T *h0, const T *c0, const T *grad_h,
                                    const T *grad_final_h, const T *grad_final_c, const T *weight_t,
                                    int64_t input_width, T *work, T *grad_gates, T *grad_inputs, T *grad_h0,
                                    T *grad_c0, T *grad_bias, int64_t steps, int64_t batch, int64_t hidden,
                                    const T *inputs, const T *h, T *grad_weight_ih, T *grad_weight_hh,
                                    T *weight_scratch, int64_t weight_scratch_size) {
    AG_NAME(cell_job) job = {0};
    const int weights = grad_weight_ih != NULL || grad_weight_hh != NULL;
    if (weights && (weight_scratch == NULL
                    || weight_scratch_size < AG_NAME(ag_lstm_layer_weight_scratch)(steps, batch, hidden, input_width)))
        return -1;  /* (the SIMD level changed since the caller asked for the size) */
    if (!weights && grad_gates == NULL)
        return -1;
    const int threads = step_threads(batch, hidden);
    const int64_t depth = grad_inputs != NULL ? input_width + hidden : hidden;
    AG_SELECT(ag_get_simd_level(), &job.rows);
    job.saved = saved; job.c = (T *)c; job.h0 = h0; job.c0 = c0; job.grad_h = grad_h;
    job.grad_final = grad_final_h; job.grad_final_c = grad_final_c; job.weight = weight_t; job.work = work;
    job.grad_gates = grad_gates; job.grad_inputs = grad_inputs; job.input_width = input_width;
    job.grad_h0 = grad_h0; job.grad_c0 = grad_c0; job.steps = steps; job.batch = batch; job.hidden = hidden;
    job.layer_backward = 1;
    if (weights) {
        const int64_t rows = steps * batch;
        job.gate_rows = grad_gates == NULL ? weight_scratch : NULL;
        job.packed_gates = weight_scratch + batch * 4 * hidden;
        const int panel = AG_GEMM_FN(panel_columns)();  /* whole panels wide: read in place, not packed */
        job.packed_inputs = grad_weight_ih != NULL && input_width % panel != 0
                            ? job.packed_gates + AG_GEMM_FN(prepacked_a_size)(4 * hidden, rows) : NULL;
        job.packed_states = grad_weight_hh != NULL && hidden % panel != 0
                            ? job.packed_gates + AG_GEMM_FN(prepacked_a_size)(4 * hidden, rows)
                              + AG_PACKED_B_SIZE(rows, input_width) : NULL;
        job.inputs = inputs; job.h = (T *)h;
        job.grad_weight_ih = grad_weight_ih; job.grad_weight_hh = grad_weight_hh;
    }
    /* op(B) = the weight's rows from the first one needed, transposed: [4h, depth] */
    job.packed_weight = (T *)malloc(sizeof(T) * (size_t)AG_PACKED_B_SIZE(4 * hidden, depth));
    if (job.packed_weight != NULL)
        AG_PACK_B(1, 4 * hidden, depth, weight_t + (input_width + hidden - depth) * 4 * hidden, 4 * hidden,
                  (T *)job.packed_weight);
    /* one accumulator row per thread, summed in thread order after the region */
    if (grad_bias != NULL)
        job.grad_bias = (T *)calloc((size_t)(threads * 4 * hidden), sizeof(T));
    if (grad_bias != NULL && job.grad_bias == NULL && grad_gates == NULL) {
        free((void *)job.packed_weight);  /* no grad_gates to sum afterwards */
        return -2;
    }
    ag_parallel_for(threads, batch, AG_NAME(lstm_sequence_backward_share), &job);
    if (grad_bias != NULL) {
        for (int64_t j = 0; j < 4 * hidden; j++)
            grad_bias[j] = (T)0;
        for (int thread = 0; thread < threads && job.grad_bias != NULL; thread++)
            for (int64_t j = 0; j < 4 * hidden; j++)
                grad_bias[j] += job.grad_bias[thread * 4 * hidden + j];
        if (job.grad_bias == NULL)  /* no memory for the accumulators: sum afterwards */
            for (int64_t r = 0; r < steps * batch; r++)
                for (int64_t j = 0; j < 4 * hidden; j++)
                    grad_bias[j] += grad_gates != NULL ? grad_gates[r * 4 * hidden + j] : (T)0;
    }
    free(job.grad_bias);
    free((void *)job.packed_weight);
    if (weights)  /* the threads split the gates' micro-panels: each owns rows of both gradients */
        ag_parallel_for(threads, AG_GEMM_FN(prepacked_a_panels)(4 * hidden), AG_NAME(weight_gradient_share), &job);
    return 0;
}
