"""Recurrent ops and layers: gradchecks of the fused steps and cells, multi-layer and
masked-length behaviour, truncated BPTT, Embedding, and PyTorch parity when torch is here."""
import numpy as np
import pytest

import autograd_core as ag
import nn
from autograd_core import gradcheck, kernels
from autograd_core.ops.recurrent import gru_step, input_projection, lstm_step, rnn_step, unbind
from nn.recurrent import GRU, LSTM, RNN, Embedding, GRUCell, LSTMCell, RNNCell, detach_state

F64 = np.float64


def _t(rng, *shape, grad=True, scale=1.0):
    return ag.Tensor(rng.standard_normal(shape) * scale, dtype=F64, requires_grad=grad)


@pytest.fixture(params=["c", "numpy"])
def backend(request):
    if request.param == "c" and not kernels.extension_available():
        pytest.skip("C extension not built")
    with kernels.backend(request.param):
        yield request.param


# ---- fused step ops -----------------------------------------------------------------
@pytest.mark.parametrize("masked", [False, True])
def test_lstm_step_gradcheck(backend, masked):
    rng = np.random.default_rng(0)
    batch, hidden = 3, 4
    mask = np.array([1.0, 0.0, 1.0]) if masked else None
    inputs = (_t(rng, batch, 4 * hidden), _t(rng, batch, hidden), _t(rng, batch, hidden),
              _t(rng, 4 * hidden, hidden, scale=0.5))
    assert gradcheck(lambda x, h, c, w: lstm_step(x, h, c, w, mask), inputs)


@pytest.mark.parametrize("masked", [False, True])
def test_gru_step_gradcheck(backend, masked):
    rng = np.random.default_rng(1)
    batch, hidden = 3, 4
    mask = np.array([[0.0], [1.0], [1.0]]) if masked else None
    inputs = (_t(rng, batch, 3 * hidden), _t(rng, batch, hidden), _t(rng, 3 * hidden, hidden, scale=0.5),
              _t(rng, 3 * hidden))
    assert gradcheck(lambda x, h, w, b: gru_step(x, h, w, b, mask), inputs)


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_rnn_step_gradcheck(nonlinearity):
    rng = np.random.default_rng(2)
    mask = np.array([1.0, 0.0, 1.0, 1.0])
    inputs = (_t(rng, 4, 3), _t(rng, 4, 3), _t(rng, 3, 3, scale=0.5))
    assert gradcheck(lambda x, h, w: rnn_step(x, h, w, nonlinearity), inputs)
    assert gradcheck(lambda x, h, w: rnn_step(x, h, w, nonlinearity, mask), inputs)


def test_steps_without_bias_or_grad_on_state():
    rng = np.random.default_rng(3)
    x, w = _t(rng, 2, 9), _t(rng, 9, 3)
    h = ag.Tensor(np.zeros((2, 3)), dtype=F64)  # a constant initial state needs no gradient
    assert gradcheck(lambda x, w: gru_step(x, h, w, None), (x, w))
    out = gru_step(x, h, w)
    out.sum().backward()
    assert h.grad is None and w.grad is not None


def test_masked_step_keeps_state_and_blocks_gradient():
    rng = np.random.default_rng(4)
    x, h, c, w = _t(rng, 2, 8), _t(rng, 2, 2), _t(rng, 2, 2), _t(rng, 8, 2)
    h1, c1 = lstm_step(x, h, c, w, mask=np.array([1, 0]))
    np.testing.assert_array_equal(h1.data[1], h.data[1])
    np.testing.assert_array_equal(c1.data[1], c.data[1])
    assert not np.allclose(h1.data[0], h.data[0])
    (h1.sum() + c1.sum()).backward()
    np.testing.assert_array_equal(x.grad.data[1], 0.0)  # the finished row's step got nothing
    np.testing.assert_array_equal(h.grad.data[1], 1.0)  # its state's gradient passed straight back
    np.testing.assert_array_equal(c.grad.data[1], 1.0)


def test_unbind_gradcheck_and_one_node():
    rng = np.random.default_rng(5)
    x = _t(rng, 2, 3, 4)
    parts = unbind(x, 1)
    assert len(parts) == 3 and all(p.shape == (2, 4) for p in parts)
    assert len({id(p.grad_fn) for p in parts}) == 1
    # an unused slice gets a zero gradient
    assert gradcheck(lambda x: unbind(x, 1)[0] * unbind(x, 1)[2], (x,))


def test_input_projection_gradcheck(backend):
    rng = np.random.default_rng(19)
    x, w, b1, b2 = _t(rng, 5, 3), _t(rng, 4, 3), _t(rng, 4), _t(rng, 4)
    assert gradcheck(input_projection, (x, w, b1, b2))
    assert gradcheck(lambda x, w: input_projection(x, w), (x, w))
    np.testing.assert_allclose(input_projection(x, w, b1, b2).data, x.data @ w.data.T + b1.data + b2.data)
    with pytest.raises(ValueError, match="input_projection: got bias_b"):
        input_projection(x, w, b1, _t(rng, 3))


def test_step_argument_errors():
    rng = np.random.default_rng(6)
    h, c = _t(rng, 2, 3), _t(rng, 2, 3)
    with pytest.raises(ValueError, match="lstm_step: got x_gates of shape"):
        lstm_step(_t(rng, 2, 11), h, c, _t(rng, 12, 3))
    with pytest.raises(ValueError, match="gru_step: got mask of shape"):
        gru_step(_t(rng, 2, 9), h, _t(rng, 9, 3), mask=np.ones(3))
    with pytest.raises(TypeError, match="rnn_step: got weight_hh of dtype float64 and x_gates of dtype float32"):
        rnn_step(ag.Tensor(np.ones((2, 3), dtype=np.float32)), h, _t(rng, 3, 3))
    with pytest.raises(ValueError, match="nonlinearity"):
        rnn_step(_t(rng, 2, 3), h, _t(rng, 3, 3), "sigmoid")


# ---- cells ------------------------------------------------------------------------
@pytest.mark.parametrize("cell_type", [RNNCell, LSTMCell, GRUCell])
def test_cell_gradcheck_all_inputs_and_parameters(cell_type):
    nn.init.manual_seed(0)
    cell = cell_type(3, 2, dtype=F64)
    rng = np.random.default_rng(7)
    x, h = _t(rng, 2, 3), _t(rng, 2, 2)
    params = list(cell.parameters())
    names = [n for n, _ in cell.named_parameters()]
    assert names == ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]

    def run(x, h, *weights):
        for name, value in zip(names, weights):
            object.__setattr__(cell, name, value)  # plain tensors: gradcheck perturbs them
        if cell_type is LSTMCell:
            h1, c1 = cell(x, (h, h * 0.5))
            return h1 * c1
        return cell(x, h)

    assert gradcheck(run, (x, h, *[ag.Tensor(p.data, requires_grad=True) for p in params]))


def test_relu_cell_and_zero_state_default():
    nn.init.manual_seed(1)
    cell = RNNCell(3, 4, nonlinearity="relu", dtype=F64)
    x = ag.Tensor(np.random.default_rng(8).standard_normal((5, 3)))
    h = cell(x)
    expected = np.maximum(x.data @ cell.weight_ih.data.T + cell.bias_ih.data + cell.bias_hh.data, 0)
    np.testing.assert_allclose(h.data, expected, rtol=1e-12)


def test_cell_equals_one_step_of_the_layer():
    nn.init.manual_seed(2)
    layer = LSTM(3, 4, dtype=F64)
    cell = LSTMCell(3, 4, dtype=F64)
    cell.load_state_dict({k[:-3]: v for k, v in layer.state_dict().items()})
    x = np.random.default_rng(9).standard_normal((2, 3, 3))
    outputs, (h_n, c_n) = layer(ag.tensor(x))
    h = c = None
    for t in range(3):
        h, c = cell(ag.tensor(x[:, t]), None if h is None else (h, c))
        np.testing.assert_allclose(outputs.data[:, t], h.data, rtol=1e-12)
    np.testing.assert_allclose(c_n.data[0], c.data, rtol=1e-12)


def test_cell_rejects_bad_shapes():
    cell = GRUCell(3, 2)
    with pytest.raises(ValueError, match=r"GRUCell: expected input \[batch, 3\]"):
        cell(ag.zeros(4, 5))
    with pytest.raises(ValueError, match="GRUCell: expected state of shape"):
        cell(ag.zeros(4, 3), ag.zeros(4, 3))


# ---- the lecture's manual RNN ---------------------------------------------------------
def test_lecture_two_step_rnn_equals_nn_rnn():
    """h0 = tanh(X0 Wx + b), h1 = tanh(h0 Wh + X1 Wx + b), with the lecture's shapes:
    Wx [inputs, neurons], Wh [neurons, neurons], b [1, neurons]."""
    rng = np.random.default_rng(10)
    n_inputs, n_neurons = 3, 5
    X0_batch = np.array([[0, 1, 2], [3, 4, 5], [6, 7, 8], [9, 0, 1]], dtype=np.float32)
    X1_batch = np.array([[9, 8, 7], [0, 0, 0], [6, 5, 4], [3, 2, 1]], dtype=np.float32)
    Wx = rng.standard_normal((n_inputs, n_neurons)).astype(np.float32) * 0.3
    Wh = rng.standard_normal((n_neurons, n_neurons)).astype(np.float32) * 0.3
    b = np.zeros((1, n_neurons), dtype=np.float32) + 0.1
    Y0 = np.tanh(X0_batch @ Wx + b)
    Y1 = np.tanh(Y0 @ Wh + X1_batch @ Wx + b)

    rnn = RNN(n_inputs, n_neurons)
    rnn.load_state_dict({"weight_ih_l0": Wx.T, "weight_hh_l0": Wh.T,
                         "bias_ih_l0": b[0], "bias_hh_l0": np.zeros(n_neurons, dtype=np.float32)})
    outputs, h_n = rnn(ag.tensor(np.stack([X0_batch, X1_batch], axis=1)))
    np.testing.assert_allclose(outputs.data[:, 0], Y0, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(outputs.data[:, 1], Y1, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(h_n.data[0], Y1, rtol=1e-5, atol=1e-6)


# ---- multi-layer networks ---------------------------------------------------------------
@pytest.mark.parametrize("layer_type", [RNN, LSTM, GRU])
def test_layer_gradcheck_two_layers_with_lengths_and_initial_state(layer_type):
    nn.init.manual_seed(3)
    layer = layer_type(2, 3, num_layers=2, dtype=F64)
    rng = np.random.default_rng(11)
    x = _t(rng, 3, 4, 2)
    h0 = _t(rng, 2, 3, 3, scale=0.5)
    lengths = np.array([4, 2, 0])

    def run(x, h0, weight_hh_l1):
        object.__setattr__(layer, "weight_hh_l1", weight_hh_l1)
        state = (h0, h0 * 0.5) if layer_type is LSTM else h0
        outputs, final = layer(x, state, lengths=lengths)
        final = final[0] * final[1] if layer_type is LSTM else final
        return outputs.sum(axis=1) * final[1]

    assert gradcheck(run, (x, h0, ag.Tensor(layer.weight_hh_l1.data, requires_grad=True)))


@pytest.mark.parametrize("layer_type", [RNN, LSTM, GRU])
def test_stack_equals_layers_in_sequence(layer_type):
    nn.init.manual_seed(4)
    deep = layer_type(3, 4, num_layers=3, dtype=F64)
    state = deep.state_dict()
    x = ag.tensor(np.random.default_rng(12).standard_normal((2, 5, 3)))
    outputs, final = deep(x)
    hs = final[0] if layer_type is LSTM else final
    assert outputs.shape == (2, 5, 4) and hs.shape == (3, 2, 4)
    current = x
    for k in range(3):
        single = layer_type(3 if k == 0 else 4, 4, dtype=F64)
        single.load_state_dict({name.replace("_l%d" % k, "_l0"): value for name, value in state.items()
                                if name.endswith("_l%d" % k)})
        current, single_final = single(current)
        single_h = single_final[0] if layer_type is LSTM else single_final
        np.testing.assert_allclose(hs.data[k], single_h.data[0], rtol=1e-12)
    np.testing.assert_allclose(outputs.data, current.data, rtol=1e-12)


@pytest.mark.parametrize("layer_type", [RNN, LSTM, GRU])
def test_lengths_match_running_each_sequence_alone(layer_type):
    nn.init.manual_seed(5)
    layer = layer_type(2, 3, num_layers=2, dtype=F64)
    rng = np.random.default_rng(13)
    x = ag.Tensor(rng.standard_normal((3, 5, 2)), requires_grad=True)
    lengths = [5, 3, 1]
    outputs, final = layer(x, lengths=lengths)
    h_n = final[0] if layer_type is LSTM else final
    for b, length in enumerate(lengths):
        alone, alone_final = layer(ag.tensor(x.data[b:b + 1, :length]))
        alone_h = alone_final[0] if layer_type is LSTM else alone_final
        np.testing.assert_allclose(outputs.data[b, :length], alone.data[0], rtol=1e-12)
        np.testing.assert_array_equal(outputs.data[b, length:], 0.0)
        np.testing.assert_allclose(h_n.data[:, b], alone_h.data[:, 0], rtol=1e-12)
    # padding never reaches the loss: no gradient flows into the padded inputs
    (outputs.sum() + h_n.sum()).backward()
    for b, length in enumerate(lengths):
        np.testing.assert_array_equal(x.grad.data[b, length:], 0.0)
        assert np.abs(x.grad.data[b, :length]).min() > 0


def test_lengths_errors():
    layer = GRU(2, 3)
    x = ag.zeros(2, 4, 2)
    with pytest.raises(ValueError, match=r"lengths must lie in \[0, 4\]"):
        layer(x, lengths=[5, 1])
    with pytest.raises(ValueError, match="lengths must be"):
        layer(x, lengths=[1.5, 2.0])


def test_initial_state_shape_checked_and_gradients_reach_it():
    nn.init.manual_seed(6)
    layer = LSTM(2, 3, num_layers=2)
    x = ag.randn(4, 5, 2)
    with pytest.raises(ValueError, match=r"LSTM: expected initial h of shape \(2, 4, 3\)"):
        layer(x, (ag.zeros(1, 4, 3), ag.zeros(2, 4, 3)))
    with pytest.raises(ValueError, match="tuple"):
        layer(x, ag.zeros(2, 4, 3))
    h0 = ag.zeros(2, 4, 3, requires_grad=True)
    c0 = ag.zeros(2, 4, 3, requires_grad=True)
    outputs, (h_n, c_n) = layer(x, (h0, c0))
    assert outputs.dtype == np.float32 and h_n.dtype == np.float32
    outputs[:, -1].sum().backward()
    assert h0.grad.shape == (2, 4, 3) and np.abs(c0.grad.data).sum() > 0


def test_batch_first_false_and_input_checks():
    nn.init.manual_seed(7)
    layer = GRU(2, 3, dtype=F64)
    time_first = GRU(2, 3, batch_first=False, dtype=F64)
    time_first.load_state_dict(layer.state_dict())
    x = np.random.default_rng(14).standard_normal((4, 6, 2))
    outputs, h_n = layer(ag.tensor(x))
    outputs_tf, h_n_tf = time_first(ag.tensor(x.transpose(1, 0, 2)))
    np.testing.assert_allclose(outputs_tf.data.transpose(1, 0, 2), outputs.data, rtol=1e-12)
    np.testing.assert_allclose(h_n_tf.data, h_n.data, rtol=1e-12)
    with pytest.raises(ValueError, match=r"GRU: expected input \[batch, time >= 1, 2\]"):
        layer(ag.zeros(4, 6, 3, dtype=F64))
    with pytest.raises(TypeError, match="GRU: got input of dtype float32"):
        layer(ag.zeros(4, 6, 2))


def test_dropout_between_layers_only_in_training():
    nn.init.manual_seed(8)
    layer = LSTM(2, 8, num_layers=2, dropout=0.5)
    x = ag.randn(3, 4, 2)
    layer.eval()
    first, _ = layer(x)
    second, _ = layer(x)
    np.testing.assert_array_equal(first.data, second.data)
    layer.train()
    third, _ = layer(x)
    assert not np.allclose(third.data, first.data)
    with pytest.raises(ValueError, match="dropout"):
        LSTM(2, 3, dropout=1.0)


def test_parameter_names_shapes_and_initialisation():
    nn.init.manual_seed(9)
    layer = GRU(5, 7, num_layers=2, bias=True)
    shapes = {name: p.shape for name, p in layer.named_parameters()}
    assert shapes == {"weight_ih_l0": (21, 5), "weight_hh_l0": (21, 7), "bias_ih_l0": (21,),
                      "bias_hh_l0": (21,), "weight_ih_l1": (21, 7), "weight_hh_l1": (21, 7),
                      "bias_ih_l1": (21,), "bias_hh_l1": (21,)}
    bound = 1 / np.sqrt(7)
    assert all(np.abs(p.data).max() <= bound for p in layer.parameters())
    no_bias = LSTM(3, 2, bias=False)
    assert [n for n, _ in no_bias.named_parameters()] == ["weight_ih_l0", "weight_hh_l0"]
    out, _ = no_bias(ag.randn(2, 3, 3))
    assert out.shape == (2, 3, 2)


# ---- truncated BPTT and clipping ------------------------------------------------------
def test_truncated_bptt_detaches_between_chunks():
    nn.init.manual_seed(10)
    layer = LSTM(2, 3)
    rng = np.random.default_rng(15)
    first = ag.Tensor(rng.standard_normal((2, 4, 2)).astype(np.float32), requires_grad=True)
    second = ag.Tensor(rng.standard_normal((2, 4, 2)).astype(np.float32), requires_grad=True)
    _, state = layer(first)
    state = detach_state(state)
    assert all(s.requires_grad is False for s in state)
    outputs, _ = layer(second, state)
    outputs.sum().backward()
    assert first.grad is None and second.grad is not None
    # without detaching, the gradient does reach the first chunk
    _, state = layer(first)
    outputs, _ = layer(second, state)
    outputs.sum().backward()
    assert first.grad is not None and np.abs(first.grad.data).sum() > 0


def test_gradient_clipping_bounds_the_norm():
    nn.init.manual_seed(11)
    layer = RNN(3, 16, nonlinearity="relu")
    outputs, _ = layer(ag.randn(8, 30, 3) * 10.0)
    (outputs * outputs).sum().backward()
    before = nn.optim.clip_grad_norm_(layer.parameters(), max_norm=1.0)
    after = np.sqrt(sum(float((p.grad.data.astype(np.float64) ** 2).sum()) for p in layer.parameters()))
    assert before > 1.0 and after == pytest.approx(1.0, rel=1e-4)


def test_lstm_learns_to_remember_the_first_input():
    """A tiny training run: the answer is the sign of step 0, read at the last step."""
    nn.init.manual_seed(12)
    rng = np.random.default_rng(16)
    model = LSTM(1, 8)
    head = nn.Linear(8, 2)
    optimizer = nn.optim.Adam(list(model.parameters()) + list(head.parameters()), lr=0.03)
    x = rng.standard_normal((64, 6, 1)).astype(np.float32)
    labels = (x[:, 0, 0] > 0).astype(np.int64)
    for _ in range(60):
        outputs, _ = model(ag.from_numpy(x))
        loss = nn.functional.cross_entropy(head(outputs[:, -1]), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    accuracy = (head(model(ag.from_numpy(x))[0][:, -1]).data.argmax(1) == labels).mean()
    assert accuracy >= 0.9


# ---- Embedding --------------------------------------------------------------------------
def test_embedding_lookup_gradient_and_padding():
    nn.init.manual_seed(13)
    embedding = Embedding(5, 3, padding_idx=0, dtype=F64)
    np.testing.assert_array_equal(embedding.weight.data[0], 0.0)
    indices = np.array([[1, 2, 1], [0, 4, 1]])
    out = embedding(indices)
    assert out.shape == (2, 3, 3)
    np.testing.assert_array_equal(out.data[0, 1], embedding.weight.data[2])
    out.sum().backward()
    np.testing.assert_array_equal(embedding.weight.grad.data[:, 0], [0, 3, 1, 0, 1])  # padding row: none
    weight = ag.Tensor(embedding.weight.data.copy(), requires_grad=True)
    object.__setattr__(embedding, "weight", weight)
    assert gradcheck(lambda w: (object.__setattr__(embedding, "weight", w), embedding(indices))[1] ** 2, (weight,))
    with pytest.raises(ValueError, match=r"Embedding: indices must lie in \[0, 5\)"):
        embedding(np.array([5]))
    with pytest.raises(TypeError, match="integers"):
        embedding(np.array([1.0]))


# ---- PyTorch parity -------------------------------------------------------------------
@pytest.mark.parametrize("name", ["RNN", "LSTM", "GRU"])
def test_state_dict_copies_to_and_from_pytorch(name):
    torch = pytest.importorskip("torch")
    nn.init.manual_seed(14)
    ours = {"RNN": RNN, "LSTM": LSTM, "GRU": GRU}[name](4, 5, num_layers=2, dtype=F64)
    theirs = getattr(torch.nn, name)(4, 5, num_layers=2, batch_first=True).double()
    theirs.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in ours.state_dict().items()})
    rng = np.random.default_rng(17)
    x = rng.standard_normal((3, 6, 4))
    lengths = [6, 4, 2]
    out, final = ours(ag.Tensor(x, requires_grad=True), lengths=lengths)
    packed = torch.nn.utils.rnn.pack_padded_sequence(torch.from_numpy(x), lengths, batch_first=True)
    t_out, t_final = theirs(packed)
    t_out, _ = torch.nn.utils.rnn.pad_packed_sequence(t_out, batch_first=True, total_length=6)
    np.testing.assert_allclose(out.data, t_out.detach().numpy(), rtol=1e-10, atol=1e-12)
    finals = final if name == "LSTM" else (final,)
    t_finals = t_final if name == "LSTM" else (t_final,)
    for mine, reference in zip(finals, t_finals):
        np.testing.assert_allclose(mine.data, reference.detach().numpy(), rtol=1e-10, atol=1e-12)
    (out.sum() + finals[0].sum()).backward()
    (t_out.sum() + t_finals[0].sum()).backward()
    torch_grads = dict(theirs.named_parameters())
    for param_name, param in ours.named_parameters():
        np.testing.assert_allclose(param.grad.data, torch_grads[param_name].grad.numpy(),
                                   rtol=1e-9, atol=1e-12, err_msg=param_name)
    # and back: PyTorch's state dict loads into ours unchanged
    copy = type(ours)(4, 5, num_layers=2, dtype=F64)
    copy.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    np.testing.assert_array_equal(copy(ag.tensor(x))[0].data, ours(ag.tensor(x))[0].data)


# ---- the lecture's sequence patterns (smoke tests; the long runs are CLI commands) ----------
@pytest.fixture
def one_thread():
    # tiny GEMMs: one thread avoids OpenMP barriers on a machine shared with other jobs
    previous = ag.get_num_threads()
    ag.set_num_threads(1)
    yield
    ag.set_num_threads(previous)


def test_time_series_data_and_naive_baseline(one_thread):
    from nn.apps.sequence_tasks import make_sine_series, naive_last_value_mse, run_time_series
    series = make_sine_series(4, 10, generator=np.random.default_rng(0))
    assert series.shape == (4, 11) and series.dtype == np.float32
    assert naive_last_value_mse(np.array([[0.0, 1.0, 3.0]])) == pytest.approx(2.5)
    logs = []
    result = run_time_series(train_count=100, test_count=50, steps=20, hidden_size=16, epochs=4,
                             batch_size=25, log=logs.append)
    assert set(result) >= {"test_mse", "naive_last_value_mse"} and np.isfinite(result["test_mse"])
    first, last = (float(line.split()[-1]) for line in (logs[0], logs[-1]))
    assert last < first


def test_digit_tasks_and_exact_sequence_accuracy(one_thread):
    from nn.apps.sequence_tasks import Seq2Seq, exact_sequence_accuracy, make_digit_task, run_digit_seq2seq
    sources, targets = make_digit_task(5, 4, "reverse", np.random.default_rng(0))
    np.testing.assert_array_equal(targets, sources[:, ::-1])
    sources, targets = make_digit_task(5, 4, "sort", np.random.default_rng(0))
    np.testing.assert_array_equal(targets, np.sort(sources, axis=1))
    assert exact_sequence_accuracy([[1, 2], [3, 4], [5, 6]], [[1, 2], [3, 0], [5, 6]]) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="differ"):
        exact_sequence_accuracy([[1, 2]], [[1, 2, 3]])
    nn.init.manual_seed(0)
    model = Seq2Seq(hidden_size=8, embedding_dim=4)
    assert model(sources, targets).shape == (5, 4, 10) and model.generate(sources, 4).shape == (5, 4)
    logs = []
    result = run_digit_seq2seq("reverse", length=3, train_count=400, test_count=50, hidden_size=32, epochs=4,
                               batch_size=50, lr=0.01, log=logs.append)
    assert 0.0 <= result["exact_sequence_accuracy"] <= 1.0
    assert float(logs[-1].split()[-1]) < float(logs[0].split()[-1])


def test_row_classifier_registered_and_learning(one_thread):
    from nn.apps.models import build_model, get_model_spec
    from nn.apps.sequence_tasks import RowSequenceClassifier
    assert get_model_spec("rnn-fashion").task == "classification"
    nn.init.manual_seed(1)
    assert build_model("lstm-fashion")(ag.zeros(3, 28, 28, 1)).shape == (3, 10)
    model = RowSequenceClassifier("gru", hidden_size=16, rows=6, columns=5, classes=2)
    rng = np.random.default_rng(18)
    images = rng.standard_normal((40, 6, 5, 1)).astype(np.float32)
    labels = (images[:, 0, 0, 0] > 0).astype(np.int64)  # answer in the first row: memory needed
    optimizer = nn.optim.Adam(model.parameters(), lr=0.02)
    losses = []
    for _ in range(40):
        loss = nn.functional.cross_entropy(model(ag.from_numpy(images)), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.data))
    assert losses[-1] < 0.5 * losses[0]


def test_cli_trains_rnn_fashion_on_a_slice(tmp_path, one_thread):
    cli = pytest.importorskip("nn.apps.cli")
    from nn import data
    try:
        data.find_fashion_mnist(download=False)
    except data.DatasetNotFoundError:
        pytest.skip("Fashion-MNIST is not on this machine")
    status = cli.main(["train", "rnn-fashion", "--epochs", "1", "--limit-train", "200", "--limit-test", "100",
                       "--no-download", "--no-progress", "--out", str(tmp_path / "run")])
    assert status == 0


@pytest.mark.parametrize("step", ["lstm", "gru", "rnn"])
def test_zero_state_none_equals_explicit_zeros(step):
    """h_prev=None (the first step without an initial state) skips the recurrent matmul
    but must give the same values and gradients as a zero state."""
    rng = np.random.default_rng(20)
    gates = {"lstm": 4, "gru": 3, "rnn": 1}[step]
    x, w = _t(rng, 3, gates * 2), _t(rng, gates * 2, 2)
    zeros = ag.Tensor(np.zeros((3, 2)))
    mask = np.array([1.0, 0.0, 1.0])

    def run(h):
        if step == "lstm":
            h1, c1 = lstm_step(x, h, h, w, mask)
            return h1 * 2 + c1
        if step == "gru":
            return gru_step(x, h, w, None, mask)
        return rnn_step(x, h, w, "tanh", mask)

    implicit = run(None)
    implicit.sum().backward()
    grads = (x.grad.data.copy(), w.grad.data.copy())
    x.grad = w.grad = None
    explicit = run(zeros)
    explicit.sum().backward()
    np.testing.assert_allclose(implicit.data, explicit.data, rtol=1e-14)
    np.testing.assert_allclose(grads[0], x.grad.data, rtol=1e-14)
    np.testing.assert_allclose(grads[1], w.grad.data, rtol=1e-14, atol=0)
    assert gradcheck(lambda x, w: (lstm_step(x, None, None, w)[0] if step == "lstm" else
                                   gru_step(x, None, w) if step == "gru" else rnn_step(x, None, w)), (x, w))


# ---- whole-step kernels and the LSTM layer's buffers ------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("zero_state", [False, True])
@pytest.mark.parametrize("threads", [1, 2])
def test_lstm_step_kernels_match_matmul_plus_cell(backend, dtype, zero_state, threads):
    """lstm_step_forward/backward (the matmul and the cell in one C call) against the
    separate GEMM and the numpy cell; batch * hidden = 9100 crosses the threading threshold."""
    rng = np.random.default_rng(21)
    batch, hidden = 70, 130
    x_gates = rng.standard_normal((batch, 4 * hidden)).astype(dtype)
    h_prev = None if zero_state else rng.standard_normal((batch, hidden)).astype(dtype)
    c_prev = rng.standard_normal((batch, hidden)).astype(dtype)
    weight_hh = (rng.standard_normal((4 * hidden, hidden)) * 0.1).astype(dtype)
    grad_h, grad_c = (rng.standard_normal((batch, hidden)).astype(dtype) for _ in range(2))
    gates = x_gates if zero_state else x_gates + h_prev.astype(F64) @ weight_hh.T.astype(F64)
    with kernels.backend("numpy"):
        expected = kernels.lstm_cell_forward(gates.astype(dtype), c_prev)
        expected_back = kernels.lstm_cell_backward(expected[2], c_prev, grad_h, grad_c)
    previous = kernels.get_num_threads()
    kernels.set_num_threads(threads)
    try:
        shapes = ((batch, hidden), (batch, hidden), (batch, 5 * hidden))
        slots = [np.full(shape, np.nan, dtype=dtype) for shape in shapes]
        got = kernels.lstm_step_forward(x_gates, h_prev, c_prev, weight_hh.T, *slots)
        grad_slot = np.full((batch, 4 * hidden), np.nan, dtype=dtype)
        bias_sum = np.ones((2, 4 * hidden), dtype=dtype)  # rows: one per thread at most
        got_back = kernels.lstm_step_backward(got[2], c_prev, grad_h, grad_c, weight_hh, grad_slot, bias_sum)
        got_no_h = kernels.lstm_step_backward(got[2], c_prev, grad_h, None, None)
    finally:
        kernels.set_num_threads(previous)
    tol = 2e-5 if dtype == np.float32 else 1e-12
    for result, slot in zip(got, slots):
        assert result is slot  # written in place
    assert got_back[0] is grad_slot
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)
    np.testing.assert_allclose(got_back[0], expected_back[0], rtol=tol, atol=tol)
    np.testing.assert_allclose(got_back[1], expected_back[0].astype(F64) @ weight_hh.astype(F64), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(got_back[2], expected_back[1], rtol=tol, atol=tol)
    assert got_no_h[1] is None
    np.testing.assert_allclose(bias_sum.sum(axis=0), 2 + expected_back[0].astype(F64).sum(axis=0), rtol=1e-4, atol=1e-3)
    with kernels.backend("numpy"):
        no_grad_c = kernels.lstm_cell_backward(expected[2], c_prev, grad_h)
    np.testing.assert_allclose(got_no_h[0], no_grad_c[0], rtol=tol, atol=tol)


def test_lstm_step_kernels_reject_bad_arguments():
    rng = np.random.default_rng(22)
    x_gates, c = rng.standard_normal((3, 8)), rng.standard_normal((3, 2))
    weight_t = rng.standard_normal((2, 8))
    with pytest.raises(ValueError, match="lstm_step_forward: got h_prev of shape"):
        kernels.lstm_step_forward(x_gates, np.zeros((3, 3)), c, weight_t)
    with pytest.raises(ValueError, match="weight_hh_t must be an array"):
        kernels.lstm_step_forward(x_gates, None, c, np.zeros((2, 7)))
    with pytest.raises(ValueError, match="dtype float32"):
        kernels.lstm_step_forward(x_gates, None, c.astype(np.float32), weight_t)
    with pytest.raises(ValueError, match="h_out must be a writeable C-contiguous"):
        kernels.lstm_step_forward(x_gates, None, c, weight_t, h_out=np.zeros((2, 3)).T)
    saved = kernels.lstm_step_forward(x_gates, None, c, weight_t)[2]
    with pytest.raises(ValueError, match="lstm_step_backward: got weight_hh of shape"):
        kernels.lstm_step_backward(saved, c, c, None, weight_t)
    with pytest.raises(ValueError, match="grad_gates_out must be"):
        kernels.lstm_step_backward(saved, c, c, None, None, np.zeros((3, 8), dtype=np.float32))
    with pytest.raises(ValueError, match="grad_bias_sum must be"):
        kernels.lstm_step_backward(saved, c, c, None, None, None, np.zeros((2, 7)))


def test_workspace_reuses_an_array_only_when_nothing_holds_it():
    from nn.lstm_steps import Workspace
    workspace = Workspace()
    first = workspace.empty("a", (2, 3), np.float32)
    address = first.__array_interface__["data"][0]
    view = first[1]
    del first
    held = workspace.empty("a", (2, 3), np.float32)
    assert held.__array_interface__["data"][0] != address  # the view still holds the first
    del view
    address = held.__array_interface__["data"][0]
    del held
    again = workspace.empty("a", (2, 3), np.float32)
    assert again.__array_interface__["data"][0] == address
    assert workspace.empty("a", (2, 4), np.float32).shape == (2, 4)
    import copy
    import pickle
    assert pickle.loads(pickle.dumps(workspace))._arrays == {}
    assert copy.deepcopy(workspace)._arrays == {}


@pytest.mark.parametrize("backend_name", ["numpy", "c"])
def test_lstm_layer_gradcheck_of_input_weights_and_biases(backend_name):
    """W_ih and the biases get their gradients from SequenceSteps (one GEMM with W_hh's,
    and the steps' bias accumulator), not from the projection: check them directly."""
    if backend_name == "c" and not kernels.extension_available():
        pytest.skip("C extension not built")
    rng = np.random.default_rng(24)
    layer = LSTM(2, 3, num_layers=2, dtype=F64)
    x, h0 = _t(rng, 3, 4, 2), _t(rng, 2, 3, 3, scale=0.5)
    params = [ag.Tensor(getattr(layer, name).data.copy(), requires_grad=True)
              for name in ("weight_ih_l0", "weight_ih_l1", "bias_ih_l1", "bias_hh_l0")]

    def run(*params):
        for name, param in zip(("weight_ih_l0", "weight_ih_l1", "bias_ih_l1", "bias_hh_l0"), params):
            object.__setattr__(layer, name, param)
        outputs, (h, c) = layer(x, (h0, h0 * 0.3), lengths=np.array([4, 1, 3]))
        return outputs.sum(axis=1) * h[1] + c[0]

    with kernels.backend(backend_name):
        assert gradcheck(run, params)


# ---- GRU and RNN layers as one node each (nn/sequence_layers.py) ------------------------------
def _sequence_inputs(rng, gates, with_state, with_bias, steps=3, batch=2, width=2, hidden=3):
    inputs = [_t(rng, steps * batch, width), _t(rng, batch, hidden, scale=0.5) if with_state else None,
              _t(rng, gates * hidden, width, scale=0.5), _t(rng, gates * hidden, hidden, scale=0.5)]
    inputs += [_t(rng, gates * hidden), _t(rng, gates * hidden)] if with_bias else [None, None]
    return inputs


@pytest.mark.parametrize("with_state, with_bias", [(True, True), (False, False)])
@pytest.mark.parametrize("kind", ["LSTM", "GRU", "tanh", "relu"])
def test_sequence_layer_gradcheck(backend, kind, with_state, with_bias):
    """The fused whole-layer Functions against finite differences, every input at once:
    the layer's input, initial state(s), both weights and both biases (float64)."""
    from nn.lstm_steps import Workspace
    from nn.sequence_layers import GRUSequence, LSTMSequence, RNNSequence
    rng = np.random.default_rng(30)
    gates = {"LSTM": 4, "GRU": 3}.get(kind, 1)
    inputs = _sequence_inputs(rng, gates, with_state, with_bias)
    if kind == "relu":  # keep pre-activations away from relu's kink, where differences jump
        inputs[0] = ag.Tensor(inputs[0].data + np.sign(inputs[0].data), requires_grad=True)
    if kind == "LSTM":  # c0 after h0
        inputs.insert(2, _t(rng, 2, 3, scale=0.5) if with_state else None)
    present = [i for i, value in enumerate(inputs) if value is not None]
    workspace = Workspace()

    def run(*values):
        arguments = list(inputs)
        for i, value in zip(present, values):
            arguments[i] = value
        if kind == "LSTM":
            outputs, h, c = LSTMSequence.apply(*arguments, 3, workspace, 0)
            return outputs.sum(axis=0) * h + c
        if kind == "GRU":
            outputs, final = GRUSequence.apply(*arguments, 3, workspace, 0)
        else:
            outputs, final = RNNSequence.apply(*arguments, 3, workspace, 0, kind)
        return outputs.sum(axis=0) * final

    assert gradcheck(run, [inputs[i] for i in present])


def _layer_results(layer, x, h0, fused):
    """outputs, final state and the gradients of x, h0 and every parameter, with the
    layer's fused whole-layer path or (fused False) its step-by-step one."""
    if not fused:
        object.__setattr__(layer, "_sequence", None)
    layer.zero_grad()
    x = ag.Tensor(x, requires_grad=True)
    initial = [] if h0 is None else [ag.Tensor(h0, requires_grad=True)]
    if initial and isinstance(layer, LSTM):
        initial.append(ag.Tensor(h0[::-1] * 0.5, requires_grad=True))  # c0
    nn.init.manual_seed(5)  # the same dropout masks on both paths
    outputs, final = layer(x, None if not initial else tuple(initial) if len(initial) == 2 else initial[0])
    finals = final if isinstance(layer, LSTM) else (final,)
    loss = (outputs * outputs).sum()
    for weight, state in enumerate(finals):
        loss = loss + (state * state * (weight + 3)).sum()
    loss.backward()
    if not fused:
        del layer.__dict__["_sequence"]
    results = [outputs.data] + [state.data for state in finals] + [x.grad.data]
    return results + [state.grad.data for state in initial] + [p.grad.data for p in layer.parameters()]


@pytest.mark.parametrize("dtype", [np.float32, F64])
@pytest.mark.parametrize("layer_type, options", [
    (GRU, {}), (GRU, {"bias": False, "batch_first": False}), (GRU, {"dropout": 0.3}),
    (RNN, {}), (RNN, {"nonlinearity": "relu", "batch_first": False}), (RNN, {"bias": False, "dropout": 0.3}),
    (LSTM, {}), (LSTM, {"bias": False, "batch_first": False}), (LSTM, {"dropout": 0.3})])
@pytest.mark.parametrize("with_state", [True, False])
def test_fused_layers_equal_the_step_by_step_path(backend, layer_type, options, dtype, with_state):
    """LSTM, GRU and RNN run each layer as one fused node unless lengths are given;
    outputs, states and every gradient equal the step-by-step path's."""
    nn.init.manual_seed(31)
    layer = layer_type(4, 5, num_layers=2, dtype=dtype, **options)
    calls = []
    fused = type(layer)._sequence

    class Counting:
        @staticmethod
        def apply(*args):
            calls.append(len(args))
            return fused.apply(*args)

    object.__setattr__(layer, "_sequence", Counting)
    rng = np.random.default_rng(32)
    x = rng.standard_normal((3, 6, 4)).astype(dtype)
    batch = 3 if layer.batch_first else 6
    h0 = rng.standard_normal((2, batch, 5)).astype(dtype) if with_state else None
    got = _layer_results(layer, x, h0, fused=True)
    assert len(calls) == 2  # one node per layer
    expected = _layer_results(layer, x, h0, fused=False)
    assert len(calls) == 2
    tolerance = 2e-5 if dtype == np.float32 else 1e-12
    for a, b in zip(got, expected):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("layer_type", [LSTM, GRU, RNN])
def test_layers_two_graphs_alive_and_retain_graph(layer_type):
    """The layers reuse their buffers between calls: two forwards whose graphs are both
    alive must not share them, and a retained graph must backward twice alike."""
    rng = np.random.default_rng(23)
    model = layer_type(3, 4, num_layers=2, dtype=F64)
    x1, x2 = ag.Tensor(rng.standard_normal((2, 5, 3))), ag.Tensor(rng.standard_normal((2, 5, 3)))

    def grads(loss, retain=False):
        model.zero_grad()
        loss.backward(retain_graph=retain)
        return [p.grad.data.copy() for p in model.parameters()]

    out1, _ = model(x1)
    expected1 = grads((out1 * out1).sum())
    out2, _ = model(x2)
    expected2 = grads((out2 * out2).sum())
    out1, _ = model(x1)
    out2, _ = model(x2)  # both graphs alive now
    loss1, loss2 = (out1 * out1).sum(), (out2 * out2).sum()
    first = grads(loss1, retain=True)
    for a, b in zip(first + grads(loss2) + grads(loss1), expected1 + expected2 + expected1):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(model(x1)[0].data, out1.data, rtol=0, atol=0)
    with ag.no_grad():
        np.testing.assert_allclose(model(x1)[0].data, out1.data, rtol=0, atol=0)
