"""Fused optimizer steps (autograd_core/kernels/optim.py, csrc/optim*.c): the C step
against the numpy reference, bit for bit (np.array_equal, not a tolerance), for every
update rule's cases on every SIMD level and thread count; which parameters go to C and
which to the reference; the pointer cache; argument errors; and nn.optim's optimizers
under both backends."""
import numpy as np
import pytest
from kernel_configurations import CONFIGURATIONS, FLOAT_DTYPES, configured, needs_c

import nn
from autograd_core import kernels
from autograd_core.kernels import optim as optim_kernels

# 40,000 + 231 + ... elements: above the C step's 32 Ki threading threshold, so that two
# threads really split the work (inside the big parameter and across parameters); an
# empty parameter and a 1-element one for the edges.
SHAPES = [(40000,), (7, 33), (1,), (0,), (3, 5, 2)]

ADAM_CASES = [dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0),
              dict(lr=0.3, betas=(0.5, 0.9), eps=0.1, weight_decay=0.01)]
SGD_CASES = [dict(lr=0.1, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False),
             dict(lr=0.1, momentum=0.0, dampening=0.0, weight_decay=0.02, nesterov=False),
             dict(lr=0.05, momentum=0.9, dampening=0.0, weight_decay=0.0, nesterov=False),
             dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.01, nesterov=False),
             dict(lr=0.05, momentum=0.8, dampening=0.0, weight_decay=0.0, nesterov=True),
             dict(lr=0.05, momentum=0.8, dampening=0.0, weight_decay=0.01, nesterov=True)]
RMSPROP_CASES = [dict(lr=0.01, alpha=alpha, eps=1e-8, weight_decay=decay, momentum=momentum, centered=centered)
                 for centered in (False, True) for momentum in (0.0, 0.9) for decay, alpha in ((0.0, 0.99),
                                                                                                (0.01, 0.9))]
CASES = ([pytest.param("adam", case, id="adam-%d" % i) for i, case in enumerate(ADAM_CASES)]
         + [pytest.param("sgd", case, id="sgd-%d" % i) for i, case in enumerate(SGD_CASES)]
         + [pytest.param("rmsprop", case, id="rmsprop-%d" % i) for i, case in enumerate(RMSPROP_CASES)])


def _gradients(rng, dtype, steps):
    """Per step, one gradient per shape, spread over many magnitudes: in float32, g * g
    of the smallest ones is subnormal or zero, where a flushed or fused operation would
    show."""
    return [[(rng.standard_normal(shape) * 10.0 ** rng.uniform(-25, 3, shape)).astype(dtype) for shape in SHAPES]
            for _ in range(steps)]


def _run_steps(kind, case, dtype, gradients, cache):
    """Three steps of one rule from the same start; returns every array it updated."""
    rng = np.random.default_rng(7)
    params = [rng.standard_normal(shape).astype(dtype) for shape in SHAPES]
    buffers = [[np.zeros(shape, dtype=dtype) for shape in SHAPES] for _ in range(3)]
    for step, grads in enumerate(gradients, start=1):
        if kind == "adam":
            optim_kernels.adam_step(params, grads, buffers[0], buffers[1], [step] * len(SHAPES), cache=cache, **case)
        elif kind == "sgd":
            # the first step starts the momentum buffers; later ones run them
            optim_kernels.sgd_step(params, grads, buffers[0], [step == 1] * len(SHAPES), cache=cache, **case)
        else:
            optim_kernels.rmsprop_step(params, grads, buffers[0], buffers[1], buffers[2], cache=cache, **case)
    return params + [buffer for role in buffers for buffer in role]


def _assert_identical(got, expected):
    assert len(got) == len(expected)
    for actual, wanted in zip(got, expected):
        assert actual.dtype == wanted.dtype and actual.shape == wanted.shape
        np.testing.assert_array_equal(actual, wanted)  # bit for bit; NaN only where the reference has NaN
        assert np.array_equal(np.signbit(actual), np.signbit(wanted))


@needs_c
@pytest.mark.parametrize("level, threads", CONFIGURATIONS)
@pytest.mark.parametrize("kind, case", CASES)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_c_step_is_bit_identical_to_reference(level, threads, kind, case, dtype):
    gradients = _gradients(np.random.default_rng(3), dtype, steps=3)
    with kernels.backend("numpy"):
        expected = _run_steps(kind, case, dtype, gradients, None)
    with configured(level, threads):
        got = _run_steps(kind, case, dtype, gradients, optim_kernels.StepCache())
    _assert_identical(got, expected)


def _no_reference(*args):
    raise AssertionError("the numpy reference ran where the C step should have")


def _no_c(*args):
    raise AssertionError("the C step ran where the numpy reference should have")


@needs_c
def test_eligible_parameters_run_in_c(monkeypatch):
    """With the C backend and plain arrays, no parameter falls back to the reference (which
    would hide a broken C path behind equal results)."""
    monkeypatch.setattr(optim_kernels, "_reference", _no_reference)
    for kind, case in (("adam", ADAM_CASES[1]), ("sgd", SGD_CASES[3]), ("rmsprop", RMSPROP_CASES[-1])):
        for dtype in FLOAT_DTYPES:
            with kernels.backend("c"):
                _run_steps(kind, case, dtype, _gradients(np.random.default_rng(0), dtype, 2), None)


@needs_c
def test_what_c_cannot_copy_runs_the_reference(monkeypatch):
    """A strided parameter, a gradient of another dtype, a numpy-scalar hyperparameter (numpy
    computes float32 * np.float64(x) in float64): the reference, never C, and the result of
    the numpy backend."""
    rng = np.random.default_rng(0)
    base = rng.standard_normal((6, 8)).astype(np.float32)
    grad32 = rng.standard_normal((6, 4)).astype(np.float32)
    cases = [(lambda: base.copy()[:, ::2], grad32, 1e-2),
             (lambda: base[:, :4].copy(), grad32.astype(np.float64), 1e-2),
             (lambda: base[:, :4].copy(), grad32, np.float64(1e-2))]
    for make_param, grad, lr in cases:
        expected = make_param()
        state = [np.zeros(expected.shape, np.float32) for _ in range(2)]
        with kernels.backend("numpy"):
            optim_kernels.adam_step([expected], [grad], *[[s] for s in state], [1], lr, (0.9, 0.999), 1e-8, 0.0)
        got = make_param()
        state = [np.zeros(got.shape, np.float32) for _ in range(2)]
        with monkeypatch.context() as patch, kernels.backend("c"):
            patch.setattr(optim_kernels, "_ADAM", {dtype: _no_c for dtype in FLOAT_DTYPES})
            optim_kernels.adam_step([got], [grad], *[[s] for s in state], [1], lr, (0.9, 0.999), 1e-8, 0.0)
        _assert_identical([got], [expected])


@needs_c
def test_parameters_sharing_memory_run_the_reference(monkeypatch):
    """Two parameters viewing one buffer: the reference updates one after the other, so C
    (whose threads could update both at once) must not take them."""
    def run(backend):
        base = np.random.default_rng(0).standard_normal(80000).astype(np.float32)
        params = [base[:50000], base[30000:]]
        grads = [np.full(50000, 0.5, np.float32), np.full(50000, -0.25, np.float32)]
        buffers = [[np.zeros(50000, np.float32) for _ in params] for _ in range(2)]
        with kernels.backend(backend):
            optim_kernels.adam_step(params, grads, *buffers, [1, 1], 0.1, (0.9, 0.999), 1e-8, 0.0)
        return [base]
    expected = run("numpy")
    monkeypatch.setattr(optim_kernels, "_ADAM", {dtype: _no_c for dtype in FLOAT_DTYPES})
    _assert_identical(run("c"), expected)


@needs_c
def test_pointer_tables_are_reused_until_an_array_changes():
    rng = np.random.default_rng(0)
    params = [rng.standard_normal(shape) for shape in SHAPES]
    buffers = [[np.zeros(shape) for shape in SHAPES] for _ in range(2)]
    cache = optim_kernels.StepCache()

    def step(params, grads, exp_avgs, exp_avg_sqs):
        optim_kernels.adam_step(params, grads, exp_avgs, exp_avg_sqs, [1] * len(params), 1e-3, (0.9, 0.999), 1e-8,
                                0.0, cache=cache)
        return cache._tables[np.dtype(np.float64)]

    with kernels.backend("c"):
        grads = [rng.standard_normal(shape) for shape in SHAPES]
        first = step(params, grads, *buffers)
        # new gradient arrays every step (as backward makes them): the same tables
        assert step(params, [g.copy() for g in grads], *buffers) is first
        # a parameter's array replaced, a buffer replaced, a parameter left out: rebuilt
        params[0] = params[0].copy()
        second = step(params, grads, *buffers)
        assert second is not first
        buffers[1][2] = buffers[1][2].copy()
        third = step(params, grads, *buffers)
        assert third is not second
        assert step(params[1:], grads[1:], buffers[0][1:], buffers[1][1:]) is not third


@needs_c
def test_replaced_arrays_are_updated_not_the_old_ones():
    """After param.data is replaced or load_state_dict swaps the buffers, the step writes
    the new arrays, exactly as the reference would."""
    def run(backend):
        nn.init.manual_seed(0)
        model = nn.Linear(300, 200)
        optimizer = nn.optim.Adam(model.parameters(), lr=1e-2)
        rng = np.random.default_rng(1)
        with kernels.backend(backend):
            for step in range(4):
                for param in model.parameters():
                    param.grad = rng.standard_normal(param.data.shape).astype(param.data.dtype)
                if step == 1:
                    old = model.weight.data
                    model.weight.data = old.copy()
                    old[...] = 0  # must stay untouched from now on
                if step == 2:
                    optimizer.load_state_dict(optimizer.state_dict())
                optimizer.step()
        assert not old.any()
        return [param.data for param in model.parameters()] + list(optimizer.flat_state_dict().values())
    _assert_identical(run("c"), run("numpy"))


@pytest.mark.parametrize("make", [
    lambda groups: nn.optim.Adam(groups, lr=1e-2, weight_decay=0.01),
    lambda groups: nn.optim.SGD(groups, lr=0.1, momentum=0.9, nesterov=True),
    lambda groups: nn.optim.SGD(groups, lr=0.1, momentum=0.5, dampening=0.2, weight_decay=0.1),
    lambda groups: nn.optim.RMSprop(groups, lr=1e-2, momentum=0.5, centered=True),
], ids=["Adam", "SGD-nesterov", "SGD-dampening", "RMSprop"])
def test_optimizers_give_the_same_bits_on_both_backends(make):
    """Whole optimizers: two groups with their own lr, float32 and float64 parameters in
    one group, a strided one, one whose gradient comes every other step (its own Adam step
    count) and one that never gets one."""
    def run(backend):
        rng = np.random.default_rng(5)
        dense = [nn.Parameter(rng.standard_normal(shape).astype(dtype))
                 for shape, dtype in (((50, 40), np.float32), ((40,), np.float64), ((3000,), np.float32))]
        strided = nn.Parameter(rng.standard_normal((20, 10))[:, ::2])
        never = nn.Parameter(np.ones(3))
        optimizer = make([{"params": dense}, {"params": [strided, never], "lr": 0.05}])
        with kernels.backend(backend):
            for step in range(4):
                for index, param in enumerate(dense + [strided]):
                    if index == 2 and step % 2:
                        param.grad = None
                        continue
                    param.grad = rng.standard_normal(param.data.shape).astype(param.data.dtype)
                optimizer.step()
        assert never.grad is None and np.array_equal(never.data, np.ones(3))
        state = optimizer.flat_state_dict()
        return [param.data for param in dense + [strided]] + [state[key] for key in sorted(state)]
    expected = run("numpy")
    if kernels.extension_available():
        _assert_identical(run("c"), expected)


def test_argument_errors_name_the_op_and_what_it_got():
    params = [np.zeros(3), np.zeros((2, 2))]
    grads = [np.zeros(3), np.zeros((2, 2))]
    with pytest.raises(ValueError, match=r"adam_step: got 1 grads for 2 parameters, expected one per parameter"):
        optim_kernels.adam_step(params, grads[:1], grads, grads, [1, 1], 1e-3, (0.9, 0.999), 1e-8, 0.0)
    with pytest.raises(ValueError, match=r"sgd_step: got grads\[1\] with shape \(4,\) for a parameter of "
                                         r"shape \(2, 2\), expected equal shapes"):
        optim_kernels.sgd_step(params, [grads[0], np.zeros(4)], None, [True, True], 0.1, 0.0, 0.0, 0.0, False)
    with pytest.raises(TypeError, match=r"rmsprop_step: got square_avgs\[0\] of type list, expected a float "
                                        r"numpy array"):
        optim_kernels.rmsprop_step(params, grads, [[0.0] * 3, grads[1]], None, None, 0.01, 0.99, 1e-8, 0.0, 0.0,
                                   False)
    with pytest.raises(TypeError, match=r"adam_step: got params\[0\] of type ndarray \(dtype int64\)"):
        optim_kernels.adam_step([np.zeros(3, np.int64)], grads[:1], grads[:1], grads[:1], [1], 1e-3,
                                (0.9, 0.999), 1e-8, 0.0)
    with pytest.raises(ValueError, match=r"sgd_step: got momentum 0.9 and no momentum_buffers"):
        optim_kernels.sgd_step(params, grads, None, [True, True], 0.1, 0.9, 0.0, 0.0, False)
    with pytest.raises(ValueError, match=r"rmsprop_step: got centered=True and no grad_avgs"):
        optim_kernels.rmsprop_step(params, grads, grads, None, None, 0.01, 0.99, 1e-8, 0.0, 0.0, True)
