"""Recurrent kernels (autograd_core/kernels/rnn.py, csrc/rnn*.c): the fused LSTM / GRU
cells in C against the numpy reference on every SIMD level, and the backward kernels
against central finite differences of the forward (float64). The whole-step kernels
(lstm_step_forward/backward) are tested against the layer's matmul + cell in
tests/test_recurrent.py."""
import numpy as np
import pytest
from kernel_configurations import (BACKENDS, CONFIGURATIONS, FLOAT_DTYPES, assert_matches, configured, needs_c,
                                   on_c, on_numpy, sum_tolerance)

from autograd_core import kernels


# batch * hidden = 8320 crosses the kernels' threading threshold; the small shape does not
SHAPES = [(1, 1), (3, 5), (64, 130)]


@needs_c
@pytest.mark.parametrize("level, threads", CONFIGURATIONS)
@pytest.mark.parametrize("batch, hidden", SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lstm_cell_matches_reference(level, threads, batch, hidden, dtype):
    rng = np.random.default_rng(batch * 1000 + hidden)
    gates = (rng.standard_normal((batch, 4 * hidden)) * 2).astype(dtype)
    c_prev = rng.standard_normal((batch, hidden)).astype(dtype)
    grad_h = rng.standard_normal((batch, hidden)).astype(dtype)
    grad_c = rng.standard_normal((batch, hidden)).astype(dtype)
    with kernels.backend("numpy"):
        expected = kernels.lstm_cell_forward(gates, c_prev)
        expected_back = kernels.lstm_cell_backward(expected[2], c_prev, grad_h, grad_c)
        expected_no_grad_c = kernels.lstm_cell_backward(expected[2], c_prev, grad_h)
    with configured(level, threads):
        got = kernels.lstm_cell_forward(gates, c_prev)
        got_back = kernels.lstm_cell_backward(got[2], c_prev, grad_h, grad_c)
        got_no_grad_c = kernels.lstm_cell_backward(got[2], c_prev, grad_h, None)
        # grad_c=None means zeros
        zero_back = kernels.lstm_cell_backward(got[2], c_prev, grad_h, np.zeros_like(grad_h))
    tol = 2e-6 if dtype == np.float32 else 1e-14
    for a, b in zip(got + got_back + got_no_grad_c, expected + expected_back + expected_no_grad_c):
        assert a.dtype == b.dtype == dtype and a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)
    for a, b in zip(got_no_grad_c, zero_back):
        np.testing.assert_array_equal(a, b)


@needs_c
@pytest.mark.parametrize("level, threads", CONFIGURATIONS)
@pytest.mark.parametrize("batch, hidden", SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gru_cell_matches_reference(level, threads, batch, hidden, dtype):
    rng = np.random.default_rng(batch * 1000 + hidden + 1)
    gi = (rng.standard_normal((batch, 3 * hidden)) * 2).astype(dtype)
    gh = (rng.standard_normal((batch, 3 * hidden)) * 2).astype(dtype)
    h_prev = rng.standard_normal((batch, hidden)).astype(dtype)
    grad_h = rng.standard_normal((batch, hidden)).astype(dtype)
    with kernels.backend("numpy"):
        expected = kernels.gru_cell_forward(gi, gh, h_prev)
        expected_back = kernels.gru_cell_backward(expected[1], h_prev, grad_h)
    with configured(level, threads):
        got = kernels.gru_cell_forward(gi, gh, h_prev)
        got_back = kernels.gru_cell_backward(got[1], h_prev, grad_h)
    tol = 2e-6 if dtype == np.float32 else 1e-14
    for a, b in zip(got + got_back, expected + expected_back):
        assert a.dtype == b.dtype == dtype and a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


def _numeric_gradient(loss, array, eps=1e-6):
    grad = np.zeros_like(array)
    for index in np.ndindex(array.shape):
        original = array[index]
        array[index] = original + eps
        plus = loss()
        array[index] = original - eps
        minus = loss()
        array[index] = original
        grad[index] = (plus - minus) / (2 * eps)
    return grad


@pytest.mark.parametrize("backend", BACKENDS)
def test_lstm_backward_equals_finite_differences(backend):
    rng = np.random.default_rng(11)
    batch, hidden = 3, 4
    gates = rng.standard_normal((batch, 4 * hidden))
    c_prev = rng.standard_normal((batch, hidden))
    weight_h = rng.standard_normal((batch, hidden))
    weight_c = rng.standard_normal((batch, hidden))
    with kernels.backend(backend):
        def loss():
            h, c, _ = kernels.lstm_cell_forward(gates, c_prev)
            return float(np.sum(h * weight_h) + np.sum(c * weight_c))

        _, _, saved = kernels.lstm_cell_forward(gates, c_prev)
        grad_gates, grad_c_prev = kernels.lstm_cell_backward(saved, c_prev, weight_h, weight_c)
        np.testing.assert_allclose(grad_gates, _numeric_gradient(loss, gates), rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(grad_c_prev, _numeric_gradient(loss, c_prev), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("backend", BACKENDS)
def test_gru_backward_equals_finite_differences(backend):
    rng = np.random.default_rng(12)
    batch, hidden = 3, 4
    gi = rng.standard_normal((batch, 3 * hidden))
    gh = rng.standard_normal((batch, 3 * hidden))
    h_prev = rng.standard_normal((batch, hidden))
    weight = rng.standard_normal((batch, hidden))
    with kernels.backend(backend):
        def loss():
            h, _ = kernels.gru_cell_forward(gi, gh, h_prev)
            return float(np.sum(h * weight))

        _, saved = kernels.gru_cell_forward(gi, gh, h_prev)
        grad_gi, grad_gh, grad_h_prev = kernels.gru_cell_backward(saved, h_prev, weight)
        # with gh held fixed, h_prev reaches h only through z * h_prev: the kernel's direct path
        np.testing.assert_allclose(grad_gi, _numeric_gradient(loss, gi), rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(grad_gh, _numeric_gradient(loss, gh), rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(grad_h_prev, _numeric_gradient(loss, h_prev), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("backend", BACKENDS)
def test_cells_saturate_without_nan(backend):
    gates = np.array([[-1000.0, 1000.0, -1000.0, 1000.0]], dtype=np.float32)
    with kernels.backend(backend):
        h, c, saved = kernels.lstm_cell_forward(gates, np.ones((1, 1), np.float32))
        grad_gates, _ = kernels.lstm_cell_backward(saved, np.ones((1, 1), np.float32),
                                                   np.ones((1, 1), np.float32))
        h_gru, saved_gru = kernels.gru_cell_forward(np.full((1, 3), -1000.0), np.full((1, 3), 1000.0),
                                                    np.ones((1, 1)))
    assert np.all(np.isfinite(saved)) and np.all(np.isfinite(grad_gates))
    # i = 0, f = 1, g = -1, o = 1: c = c_prev = 1, h = tanh(1)
    np.testing.assert_allclose(c, [[1.0]])
    np.testing.assert_allclose(h, [[np.tanh(1.0)]], rtol=1e-6)
    assert np.all(np.isfinite(h_gru)) and np.all(np.isfinite(saved_gru))


@pytest.mark.parametrize("backend", BACKENDS)
def test_cells_validate_arguments(backend):
    with kernels.backend(backend):
        with pytest.raises(ValueError, match="lstm_cell_forward.*4 \\* hidden"):
            kernels.lstm_cell_forward(np.zeros((2, 6)), np.zeros((2, 1)))
        with pytest.raises(ValueError, match="lstm_cell_forward.*c_prev shape"):
            kernels.lstm_cell_forward(np.zeros((2, 8)), np.zeros((2, 3)))
        with pytest.raises(TypeError, match="lstm_cell_forward.*float32 or all float64"):
            kernels.lstm_cell_forward(np.zeros((2, 8)), np.zeros((2, 2), np.float32))
        with pytest.raises(ValueError, match="lstm_cell_backward.*grad_c shape"):
            kernels.lstm_cell_backward(np.zeros((2, 10)), np.zeros((2, 2)), np.zeros((2, 2)), np.zeros((1, 2)))
        with pytest.raises(ValueError, match="gru_cell_forward.*gh shape"):
            kernels.gru_cell_forward(np.zeros((2, 6)), np.zeros((2, 3)), np.zeros((2, 2)))
        with pytest.raises(ValueError, match="gru_cell_backward.*2 dimensions"):
            kernels.gru_cell_backward(np.zeros((2, 8)), np.zeros(2), np.zeros((2, 2)))

# ---- fixed sizes at every SIMD level: vector bodies, tails, parallel regions ----------
# ---- RNN cells and whole LSTM steps ------------------------------------------------------
# hidden 37 leaves tails after every vector width; 70 x 130 = 9100 elements passes the
# cells' threading threshold (8192).
RNN_SHAPES = [(3, 37), (70, 130)]


def _cell_tolerance(dtype):
    # the float32 cells use a vectorizable exp/tanh within a few ulp of numpy's
    return 2e-6 if dtype == np.float32 else 1e-14


@pytest.mark.parametrize("level, threads", CONFIGURATIONS)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("batch, hidden", RNN_SHAPES)
def test_lstm_cell(level, threads, dtype, batch, hidden):
    rng = np.random.default_rng(batch + hidden)
    gates = (rng.standard_normal((batch, 4 * hidden)) * 2).astype(dtype)
    c_prev = rng.standard_normal((batch, hidden)).astype(dtype)
    grad_h = rng.standard_normal((batch, hidden)).astype(dtype)
    grad_c = rng.standard_normal((batch, hidden)).astype(dtype)

    def passes():
        h, c, saved = kernels.lstm_cell_forward(gates, c_prev)
        return ((h, c, saved) + kernels.lstm_cell_backward(saved, c_prev, grad_h, grad_c)
                + kernels.lstm_cell_backward(saved, c_prev, grad_h, None))

    assert_matches(on_c(level, threads, passes), on_numpy(passes), dtype, _cell_tolerance(dtype))


@pytest.mark.parametrize("level, threads", CONFIGURATIONS)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("batch, hidden", RNN_SHAPES)
def test_gru_cell(level, threads, dtype, batch, hidden):
    rng = np.random.default_rng(batch + hidden + 1)
    gi = (rng.standard_normal((batch, 3 * hidden)) * 2).astype(dtype)
    gh = (rng.standard_normal((batch, 3 * hidden)) * 2).astype(dtype)
    h_prev = rng.standard_normal((batch, hidden)).astype(dtype)
    grad_h = rng.standard_normal((batch, hidden)).astype(dtype)

    def passes():
        h, saved = kernels.gru_cell_forward(gi, gh, h_prev)
        return (h, saved) + kernels.gru_cell_backward(saved, h_prev, grad_h)

    assert_matches(on_c(level, threads, passes), on_numpy(passes), dtype, _cell_tolerance(dtype))


@pytest.mark.parametrize("level, threads", CONFIGURATIONS)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("batch, hidden", RNN_SHAPES)
@pytest.mark.parametrize("with_state", [True, False])
def test_lstm_step(level, threads, dtype, batch, hidden, with_state):
    rng = np.random.default_rng(batch + hidden + 2)
    x_gates = rng.standard_normal((batch, 4 * hidden)).astype(dtype)
    h_prev = rng.standard_normal((batch, hidden)).astype(dtype) if with_state else None
    c_prev = rng.standard_normal((batch, hidden)).astype(dtype)
    weight_hh = (rng.standard_normal((4 * hidden, hidden)) / np.sqrt(hidden)).astype(dtype)
    weight_hh_t = np.ascontiguousarray(weight_hh.T)
    bias = rng.standard_normal(4 * hidden).astype(dtype)
    grad_h = rng.standard_normal((batch, hidden)).astype(dtype)
    grad_c = rng.standard_normal((batch, hidden)).astype(dtype)

    def passes():
        h, c, saved = kernels.lstm_step_forward(x_gates, h_prev, c_prev, weight_hh_t, bias=bias)
        # two rows: at 2 threads each thread sums its rows' bias gradient into its own row
        grad_bias_sum = np.zeros((2, 4 * hidden), dtype=dtype)
        back = kernels.lstm_step_backward(saved, c_prev, grad_h, grad_c, weight_hh,
                                          grad_bias_sum=grad_bias_sum)
        return (h, c, saved) + back + (grad_bias_sum.sum(axis=0),)

    tolerance = max(_cell_tolerance(dtype), sum_tolerance(dtype, 4 * hidden))
    if dtype == np.float32:
        tolerance = 1e-5 * np.sqrt(batch)  # the bias gradient sums `batch` rows
    assert_matches(on_c(level, threads, passes), on_numpy(passes), dtype, tolerance)


# ---- whole LSTM, GRU and Elman RNN layers over a sequence ----------------------------------------
# 70 x 130 splits the batch over 2 threads; each thread then runs every step of its rows.
SEQUENCE_STEPS = 4


_REFERENCES = {}


def _every_configuration(test):
    """test at every (SIMD level, threads), float dtype and RNN_SHAPES shape."""
    test = pytest.mark.parametrize("batch, hidden", RNN_SHAPES)(test)
    test = pytest.mark.parametrize("dtype", FLOAT_DTYPES)(test)
    return pytest.mark.parametrize("level, threads", CONFIGURATIONS)(test)


def _reference(key, passes):
    """on_numpy(passes), once per key: the slow reference is the same at every level."""
    if key not in _REFERENCES:
        _REFERENCES[key] = on_numpy(passes)
    return _REFERENCES[key]


def _sequence_tolerance(dtype, hidden):
    # float32: fast exp/tanh, and errors carried through the steps' matmuls
    return 5e-5 if dtype == np.float32 else max(1e-12, sum_tolerance(dtype, 3 * hidden))


@_every_configuration
@pytest.mark.parametrize("with_state", [True, False])
def test_lstm_sequence(level, threads, dtype, batch, hidden, with_state):
    rng = np.random.default_rng(batch + hidden + 6)
    x_gates = rng.standard_normal((SEQUENCE_STEPS, batch, 4 * hidden)).astype(dtype)
    h0 = rng.standard_normal((batch, hidden)).astype(dtype) if with_state else None
    c0 = rng.standard_normal((batch, hidden)).astype(dtype) if with_state else None
    weight_hh = (rng.standard_normal((4 * hidden, hidden)) / np.sqrt(hidden)).astype(dtype)
    weight_hh_t = np.ascontiguousarray(weight_hh.T)
    grad_h = rng.standard_normal((SEQUENCE_STEPS, batch, hidden)).astype(dtype)
    grad_final_h = rng.standard_normal((batch, hidden)).astype(dtype)
    grad_final_c = rng.standard_normal((batch, hidden)).astype(dtype)

    def passes():
        h, c, saved = kernels.rnn.lstm_sequence_forward(x_gates, h0, c0, weight_hh_t)
        back = kernels.rnn.lstm_sequence_backward(saved, c, h0, c0, grad_h, grad_final_h, grad_final_c, weight_hh)
        # no gradient arriving at the outputs or at the last states: zeros stand in
        only_finals = kernels.rnn.lstm_sequence_backward(saved, c, h0, c0, None, grad_final_h, grad_final_c,
                                                         weight_hh)
        only_outputs = kernels.rnn.lstm_sequence_backward(saved, c, h0, c0, grad_h, None, None, weight_hh,
                                                          needs_grad_h0=False, needs_grad_c0=False)
        return (h, c, saved) + back + only_finals + only_outputs

    got = on_c(level, threads, passes)
    expected = _reference(("lstm", dtype, batch, hidden, with_state), passes)
    assert_matches(got, expected, dtype, _sequence_tolerance(dtype, hidden))
    assert (got[4] is None) == (not with_state) and got[-2] is None and got[-1] is None


@_every_configuration
@pytest.mark.parametrize("with_state, input_width", [(True, 7), (False, 7), (False, 1)])
def test_lstm_layer(level, threads, dtype, batch, hidden, with_state, input_width):
    """lstm_layer_forward/backward (the input projection and the input's gradient inside
    the steps) against their reference, and against the projection + sequence kernels
    they replace: the same results."""
    rng = np.random.default_rng(batch + hidden + input_width + 8)
    inputs = rng.standard_normal((SEQUENCE_STEPS, batch, input_width)).astype(dtype)
    h0 = rng.standard_normal((batch, hidden)).astype(dtype) if with_state else None
    c0 = rng.standard_normal((batch, hidden)).astype(dtype) if with_state else None
    weight_ih = (rng.standard_normal((4 * hidden, input_width)) / np.sqrt(input_width)).astype(dtype)
    weight_hh = (rng.standard_normal((4 * hidden, hidden)) / np.sqrt(hidden)).astype(dtype)
    weight_t = np.ascontiguousarray(np.concatenate([weight_ih, weight_hh], axis=1).T)
    bias = rng.standard_normal(4 * hidden).astype(dtype)
    grad_h = rng.standard_normal((SEQUENCE_STEPS, batch, hidden)).astype(dtype)
    grad_finals = rng.standard_normal((2, batch, hidden)).astype(dtype)

    def passes():
        h, c, saved = kernels.rnn.lstm_layer_forward(inputs, h0, c0, weight_t, bias)
        back = kernels.rnn.lstm_layer_backward(saved, c, h0, c0, grad_h, grad_finals[0], grad_finals[1], weight_t,
                                               needs_grad_bias=True)
        only_outputs = kernels.rnn.lstm_layer_backward(saved, c, h0, c0, grad_h, None, None, weight_t,
                                                       needs_grad_h0=False, needs_grad_c0=False)
        # the first layer of a model: no input gradient (its input needs none)
        no_input_grad = kernels.rnn.lstm_layer_backward(saved, c, h0, c0, grad_h, grad_finals[0], grad_finals[1],
                                                        weight_t, needs_grad_inputs=False, needs_grad_bias=True)
        no_bias = kernels.rnn.lstm_layer_forward(inputs, h0, c0, weight_t)
        return (h, c, saved) + back + only_outputs + no_input_grad + no_bias

    def replaced():
        """The same through the whole-sequence projection and lstm_sequence_*."""
        projected = (kernels.rnn.projection_forward(inputs.reshape(-1, input_width), weight_ih, bias)
                     .reshape(SEQUENCE_STEPS, batch, 4 * hidden))
        h, c, saved = kernels.rnn.lstm_sequence_forward(projected, h0, c0, np.ascontiguousarray(weight_hh.T))
        grad_gates, grad_h0, grad_c0 = kernels.rnn.lstm_sequence_backward(saved, c, h0, c0, grad_h, grad_finals[0],
                                                                          grad_finals[1], weight_hh)
        return (h, c, saved, grad_gates, np.matmul(grad_gates, weight_ih), grad_h0, grad_c0,
                grad_gates.sum(axis=(0, 1)))

    got = on_c(level, threads, passes)
    tolerance = _sequence_tolerance(dtype, max(hidden, input_width))
    # the bias gradient sums batch * steps rows
    bias_tolerance = tolerance * np.sqrt(batch * SEQUENCE_STEPS)
    expected = _reference(("lstm_layer", dtype, batch, hidden, with_state, input_width), passes)
    assert_matches(got[:7] + got[8:], expected[:7] + expected[8:], dtype, tolerance)
    assert_matches(got[7], expected[7], dtype, bias_tolerance)
    assert_matches(got[:7], on_c(level, threads, replaced)[:7], dtype, tolerance)
    assert_matches(got[7], on_c(level, threads, replaced)[7], dtype, bias_tolerance)
    assert (got[5] is None) == (not with_state) and got[10] is None and got[11] is None and got[12] is None
    assert got[4].shape == inputs.shape and got[9] is not None and got[14] is None
    # without the input's gradient, the rest is the same
    assert_matches((got[13],) + got[15:18], (got[3],) + got[5:8], dtype, bias_tolerance)


@pytest.mark.parametrize("level, threads", CONFIGURATIONS)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("steps, batch, hidden, input_width",
                         [(9, 70, 37, 7), (4, 3, 37, 40), (3, 5, 130, 200), (9, 70, 32, 64)])
@pytest.mark.parametrize("with_state", [True, False])
def test_lstm_layer_gradients(level, threads, dtype, steps, batch, hidden, input_width, with_state):
    """lstm_layer_gradients (grad_gates packed by the steps for the weights' product)
    against its reference and against lstm_layer_backward with the weights' gradients
    as matmuls. 9 steps of 70 rows are 630 rows of depth: more than one depth slice of
    the packed product at every level, with a step's rows across a slice boundary; input
    200 + hidden 130 is a forward depth of more than one slice at AVX2 and portable
    levels, one slice of it from both x_t and h_{t-1} (gemm_packed_split); hidden 32 and
    input 64 are whole micro-panels at every level, so the weights' product reads x_t and
    h_{t-1} in place (gemm_prepacked_a), h0 or zeros below row batch."""
    rng = np.random.default_rng(steps + batch + hidden + input_width)
    inputs = rng.standard_normal((steps, batch, input_width)).astype(dtype)
    h0 = rng.standard_normal((batch, hidden)).astype(dtype) if with_state else None
    c0 = rng.standard_normal((batch, hidden)).astype(dtype) if with_state else None
    weight_t = (rng.standard_normal((input_width + hidden, 4 * hidden)) / np.sqrt(hidden)).astype(dtype)
    bias = rng.standard_normal(4 * hidden).astype(dtype)
    grad_h = rng.standard_normal((steps, batch, hidden)).astype(dtype)
    grad_finals = rng.standard_normal((2, batch, hidden)).astype(dtype)

    def passes():
        h, c, saved = kernels.rnn.lstm_layer_forward(inputs, h0, c0, weight_t, bias)
        every = kernels.rnn.lstm_layer_gradients(saved, c, h, inputs, h0, c0, grad_h, grad_finals[0], grad_finals[1],
                                                 weight_t, needs_grad_bias=True)
        # a scratch of the layer's (reused), and only one weight's gradient
        scratch = np.empty(kernels.rnn.lstm_layer_scratch_size(steps, batch, hidden, input_width, dtype), dtype)
        only_hh = kernels.rnn.lstm_layer_gradients(saved, c, h, inputs, h0, c0, grad_h, *grad_finals, weight_t,
                                                   scratch=scratch, needs_grad_inputs=False, needs_grad_c0=False,
                                                   needs_grad_weight_ih=False)
        only_ih = kernels.rnn.lstm_layer_gradients(saved, c, h, inputs, h0, c0, grad_h, *grad_finals, weight_t,
                                                   scratch=scratch[:1], needs_grad_weight_hh=False)
        return (h, c, saved) + every + only_hh + only_ih

    def replaced():
        """The same from lstm_layer_backward's grad_gates, the weights' gradients as matmuls."""
        h, c, saved = kernels.rnn.lstm_layer_forward(inputs, h0, c0, weight_t, bias)
        grad_gates, grad_inputs, grad_h0, grad_c0, grad_bias = kernels.rnn.lstm_layer_backward(
            saved, c, h0, c0, grad_h, grad_finals[0], grad_finals[1], weight_t, needs_grad_bias=True)
        previous = np.concatenate([np.zeros((1, batch, hidden), dtype) if h0 is None else h0[None], h[:-1]])
        flat = grad_gates.reshape(-1, 4 * hidden).T
        return (grad_inputs, grad_h0, grad_c0, grad_bias, flat @ inputs.reshape(-1, input_width),
                flat @ previous.reshape(-1, hidden))

    got = on_c(level, threads, passes)
    expected = _reference(("lstm_layer_gradients", dtype, steps, batch, hidden, input_width, with_state), passes)
    # the bias and weight gradients sum steps * batch rows
    tolerance = _sequence_tolerance(dtype, max(hidden, input_width)) * np.sqrt(steps * batch)
    assert_matches(got, expected, dtype, tolerance)
    assert_matches(got[3:9], on_c(level, threads, replaced), dtype, tolerance)
    assert got[7].shape == (4 * hidden, input_width) and got[8].shape == (4 * hidden, hidden)
    assert (got[4] is None) == (not with_state)
    only_hh, only_ih = got[9:15], got[15:21]
    assert only_hh[0] is None and only_hh[2] is None and only_hh[3] is None and only_hh[4] is None
    assert only_ih[5] is None and only_ih[3] is None
    assert_matches(only_hh[5], got[8], dtype, tolerance)
    assert_matches(only_ih[4], got[7], dtype, tolerance)


def test_lstm_layer_gradients_rejects_a_bad_scratch():
    saved, c = np.zeros((2, 3, 10), np.float32), np.zeros((2, 3, 2), np.float32)
    with pytest.raises(ValueError, match=r"lstm_layer_gradients: scratch must be a writeable contiguous 1-D float32"):
        kernels.rnn.lstm_layer_gradients(saved, c, c, np.zeros((2, 3, 1), np.float32), None, None, None, None, None,
                                         np.zeros((3, 8), np.float32), scratch=np.zeros((4, 4), np.float32))
    with pytest.raises(TypeError, match=r"lstm_layer_scratch_size: got dtype int64"):
        kernels.rnn.lstm_layer_scratch_size(2, 3, 2, 1, np.int64)


@_every_configuration
@pytest.mark.parametrize("with_state, with_bias", [(True, True), (False, False)])
def test_gru_sequence(level, threads, dtype, batch, hidden, with_state, with_bias):
    rng = np.random.default_rng(batch + hidden + 3)
    x_gates = rng.standard_normal((SEQUENCE_STEPS, batch, 3 * hidden)).astype(dtype)
    h0 = rng.standard_normal((batch, hidden)).astype(dtype) if with_state else None
    weight_hh = (rng.standard_normal((3 * hidden, hidden)) / np.sqrt(hidden)).astype(dtype)
    weight_hh_t = np.ascontiguousarray(weight_hh.T)
    bias_hh = rng.standard_normal(3 * hidden).astype(dtype) if with_bias else None
    grad_h = rng.standard_normal((SEQUENCE_STEPS, batch, hidden)).astype(dtype)
    grad_final = rng.standard_normal((batch, hidden)).astype(dtype)

    def passes():
        h, saved = kernels.rnn.gru_sequence_forward(x_gates, h0, weight_hh_t, bias_hh)
        back = kernels.rnn.gru_sequence_backward(saved, h, h0, grad_h, grad_final, weight_hh)
        # no gradient arriving at the outputs or the last state: zeros stand in for them
        only_final = kernels.rnn.gru_sequence_backward(saved, h, h0, None, grad_final, weight_hh)
        only_outputs = kernels.rnn.gru_sequence_backward(saved, h, h0, grad_h, None, weight_hh,
                                                         needs_grad_h0=False)
        return (h, saved) + back + only_final + only_outputs

    got = on_c(level, threads, passes)
    expected = _reference(("gru", dtype, batch, hidden, with_state, with_bias), passes)
    assert_matches(got, expected, dtype, _sequence_tolerance(dtype, hidden))
    assert (got[4] is None) == (not with_state) and got[-1] is None


@_every_configuration
@pytest.mark.parametrize("nonlinearity, with_state", [("tanh", True), ("relu", False)])
def test_rnn_sequence(level, threads, dtype, batch, hidden, nonlinearity, with_state):
    rng = np.random.default_rng(batch + hidden + 4)
    x_gates = rng.standard_normal((SEQUENCE_STEPS, batch, hidden)).astype(dtype)
    h0 = rng.standard_normal((batch, hidden)).astype(dtype) if with_state else None
    weight_hh = (rng.standard_normal((hidden, hidden)) / np.sqrt(hidden)).astype(dtype)
    weight_hh_t = np.ascontiguousarray(weight_hh.T)
    grad_h = rng.standard_normal((SEQUENCE_STEPS, batch, hidden)).astype(dtype)
    grad_final = rng.standard_normal((batch, hidden)).astype(dtype)

    def passes():
        h = kernels.rnn.rnn_sequence_forward(x_gates, h0, weight_hh_t, nonlinearity)
        back = kernels.rnn.rnn_sequence_backward(h, grad_h, grad_final, weight_hh, nonlinearity)
        only_final = kernels.rnn.rnn_sequence_backward(h, None, grad_final, weight_hh, nonlinearity)
        only_outputs = kernels.rnn.rnn_sequence_backward(h, grad_h, None, weight_hh, nonlinearity,
                                                         needs_grad_h0=False)
        return (h,) + back + only_final + only_outputs

    got = on_c(level, threads, passes)
    expected = _reference(("rnn", dtype, batch, hidden, nonlinearity, with_state), passes)
    assert_matches(got, expected, dtype, _sequence_tolerance(dtype, hidden))
    assert got[-1] is None
    if nonlinearity == "relu":
        assert (got[0] >= 0).all() and (got[0] == 0).any()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", ["lstm", "gru", "tanh", "relu"])
def test_sequence_backward_equals_finite_differences(backend, kind):
    """The numpy reference and the C kernels both against central differences of the
    forward, through every step and the initial state(s) (float64)."""
    rng = np.random.default_rng(5)
    steps, batch, hidden = 3, 2, 3
    gates = {"lstm": 4, "gru": 3}.get(kind, 1)
    values = [rng.standard_normal((steps, batch, gates * hidden)), rng.standard_normal((batch, hidden)),
              rng.standard_normal((batch, hidden))]  # x_gates, h0, c0 (the LSTM's)
    weight_hh = rng.standard_normal((gates * hidden, hidden)) * 0.5
    weight_hh_t = np.ascontiguousarray(weight_hh.T)
    bias_hh = rng.standard_normal(3 * hidden)
    grad_h = rng.standard_normal((steps, batch, hidden))
    grad_finals = rng.standard_normal((2, batch, hidden))

    def forward(x_gates, h0, c0):
        """Every step's h, the last states, and what the backward needs."""
        if kind == "lstm":
            h, c, saved = kernels.rnn.lstm_sequence_forward(x_gates, h0, c0, weight_hh_t)
            return h, (h[-1], c[-1]), (saved, c)
        if kind == "gru":
            h, saved = kernels.rnn.gru_sequence_forward(x_gates, h0, weight_hh_t, bias_hh)
            return h, (h[-1],), saved
        h = kernels.rnn.rnn_sequence_forward(x_gates, h0, weight_hh_t, kind)
        return h, (h[-1],), None

    def loss(*args):
        h, finals, _ = forward(*args)
        return (h * grad_h).sum() + sum((final * grad).sum() for final, grad in zip(finals, grad_finals))

    with kernels.backend(backend):
        h, _, kept = forward(*values)
        if kind == "lstm":
            saved, c = kept
            analytic = kernels.rnn.lstm_sequence_backward(saved, c, values[1], values[2], grad_h, grad_finals[0],
                                                          grad_finals[1], weight_hh)
        elif kind == "gru":
            grad_x, _, grad_h0 = kernels.rnn.gru_sequence_backward(kept, h, values[1], grad_h, grad_finals[0],
                                                                   weight_hh)
            analytic = (grad_x, grad_h0)
        else:
            analytic = kernels.rnn.rnn_sequence_backward(h, grad_h, grad_finals[0], weight_hh, kind)
        for position, gradient in enumerate(analytic):
            numeric = np.zeros_like(values[position])
            for index in np.ndindex(numeric.shape):
                shifted = []
                for step in (1e-6, -1e-6):
                    args = list(values)
                    args[position] = values[position].copy()
                    args[position][index] += step
                    shifted.append(loss(*args))
                numeric[index] = (shifted[0] - shifted[1]) / 2e-6
            np.testing.assert_allclose(gradient, numeric, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("backend", BACKENDS)
def test_sequence_kernels_validate_arguments(backend):
    x_gates = np.zeros((2, 3, 12), dtype=np.float32)
    weight_hh_t = np.zeros((4, 12), dtype=np.float32)
    with kernels.backend(backend):
        with pytest.raises(ValueError, match="gru_sequence_forward: weight_hh_t must be an array"):
            kernels.rnn.gru_sequence_forward(x_gates, None, weight_hh_t[:, :8])
        with pytest.raises(ValueError, match="gru_sequence_forward: got h0 of shape"):
            kernels.rnn.gru_sequence_forward(x_gates, np.zeros((3, 5), dtype=np.float32), weight_hh_t)
        with pytest.raises(ValueError, match="gru_sequence_forward: x_gates must be an array"):
            kernels.rnn.gru_sequence_forward(x_gates[0], None, weight_hh_t)
        with pytest.raises(ValueError, match="rnn_sequence_forward: got nonlinearity='sigmoid'"):
            kernels.rnn.rnn_sequence_forward(x_gates[:, :, :4], None, weight_hh_t[:, :4], "sigmoid")
        with pytest.raises(ValueError, match="rnn_sequence_backward: got weight_hh of shape"):
            kernels.rnn.rnn_sequence_backward(x_gates[:, :, :4], None, None, weight_hh_t)
        with pytest.raises(ValueError, match="h_out must be a writeable C-contiguous"):
            kernels.rnn.rnn_sequence_forward(x_gates[:, :, :4], None, weight_hh_t[:, :4],
                                             h_out=np.zeros((3, 2, 4), dtype=np.float32))
        with pytest.raises(ValueError, match=r"lstm_layer_forward: got weight_t \(4, 12\) for inputs \(2, 3, 5\)"):
            kernels.rnn.lstm_layer_forward(np.zeros((2, 3, 5), dtype=np.float32), None, None, weight_hh_t)
        with pytest.raises(ValueError, match="lstm_layer_forward: got inputs of shape"):
            kernels.rnn.lstm_layer_forward(np.zeros((2, 3, 1), dtype=np.float64), None, None, weight_hh_t[:4])
        with pytest.raises(ValueError, match=r"lstm_layer_backward: got weight_t \(4, 8\) for hidden size 3"):
            kernels.rnn.lstm_layer_backward(np.zeros((2, 3, 15), dtype=np.float32), np.zeros((2, 3, 3), np.float32),
                                            None, None, None, None, None, weight_hh_t[:, :8])
