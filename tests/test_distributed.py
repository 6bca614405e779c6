"""Data-parallel training (nn.parallel) and the engine's gradient delivery under it.

The MPI tests write a small script and launch it with ``mpirun -n 2`` (Open MPI's
``--allow-run-as-root --oversubscribe``: CI runs as root on 2 cores); they are skipped when
mpirun or mpi4py is missing. Each job takes about a second.
"""
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import autograd_core as ag
from autograd_core import engine
import nn
from nn.data import DataLoader, DistributedSampler

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _mpi_missing():
    if shutil.which("mpirun") is None:
        return "mpirun is not installed (apt-get install openmpi-bin libopenmpi-dev)"
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return "mpi4py is not installed (pip install 'autograd-core[mpi]')"
    return None


needs_mpi = pytest.mark.skipif(_mpi_missing() is not None, reason=str(_mpi_missing()))

PRELUDE = """
import sys
sys.path.insert(0, %r)
import numpy as np
import autograd_core as ag
import nn
import nn.parallel as dist
""" % ROOT


def mpirun(tmp_path, body, processes=2, timeout=60, argv=(), script=None):
    """Run PRELUDE + body (or the command ``script``) on ``processes`` ranks; returns the
    CompletedProcess (stdout and stderr as text)."""
    if script is None:
        path = tmp_path / "job.py"
        path.write_text(PRELUDE + textwrap.dedent(body))
        script = [sys.executable, str(path)]
    count = ["-n", str(processes)] if processes else []  # (none: the script gives its own, MPMD style)
    command = ["mpirun", "--allow-run-as-root", "--oversubscribe", *count, *script, *argv]
    environment = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=ROOT)
    return subprocess.run(command, cwd=str(tmp_path), capture_output=True, text=True, timeout=timeout,
                          env=environment)


def _check(result):
    assert result.returncode == 0, "stdout:\n%s\nstderr:\n%s" % (result.stdout, result.stderr)
    return result.stdout


# ---- the engine: each leaf's gradient as soon as it is complete, and end-of-backward callbacks ----

def test_leaf_gradient_is_delivered_when_its_last_use_has_contributed():
    a = ag.tensor([1.0, 2.0], requires_grad=True)
    b = ag.tensor([3.0, 4.0], requires_grad=True)
    events = []
    # b is used by the last op only (backward reaches it first), a by the first and last ops
    a.register_post_accumulate_grad_hook(lambda t: events.append(("a", t.grad.numpy().tolist(),
                                                                   b.grad is not None)))
    b.register_post_accumulate_grad_hook(lambda t: events.append(("b", t.grad.numpy().tolist(),
                                                                   a.grad is not None)))
    y = a * 2.0
    z = (y.exp() * 0 + y * b + a).sum()

    def at_end():
        events.append(("end", a.grad.numpy().tolist(), b.grad.numpy().tolist()))

    a.register_hook(lambda g: engine.queue_callback(at_end) or g)
    z.backward()
    # b's gradient (y = 2a) arrived before a's was complete; a's sums its three uses once
    assert events == [("b", [2.0, 4.0], False), ("a", [7.0, 9.0], True),
                      ("end", [7.0, 9.0], [2.0, 4.0])]


def test_post_accumulate_hook_sees_accumulated_grad_and_can_be_removed():
    w = ag.tensor([1.0, -1.0], requires_grad=True)
    seen = []
    handle = w.register_post_accumulate_grad_hook(lambda t: seen.append(t.grad.numpy().copy()))
    (w * 3.0).sum().backward()
    (w * 3.0).sum().backward()
    handle.remove()
    (w * 3.0).sum().backward()
    assert [s.tolist() for s in seen] == [[3.0, 3.0], [6.0, 6.0]]
    assert w.grad.numpy().tolist() == [9.0, 9.0]
    with pytest.raises(RuntimeError, match="leaf"):
        (w * 2.0).register_post_accumulate_grad_hook(lambda t: None)


def test_queue_callback_outside_backward_is_an_error():
    with pytest.raises(RuntimeError, match="no backward is running"):
        engine.queue_callback(lambda: None)


def test_leaf_with_a_use_that_brings_no_gradient_still_gets_its_sum():
    class NoGradientToFirst(ag.Function):
        @staticmethod
        def forward(ctx, x, y):
            return x * y

        @staticmethod
        def backward(ctx, grad):
            return None, grad

    x = ag.tensor([2.0], requires_grad=True)
    out = (NoGradientToFirst.apply(x, x) + x * 5.0).sum()
    out.backward()
    assert x.grad.numpy().tolist() == [6.0]


# ---- the sampler ----

@pytest.mark.parametrize("size,replicas,drop_last", [(10, 3, False), (10, 3, True), (12, 4, False),
                                                    (2, 3, False), (7, 2, True)])
def test_sampler_shards_are_disjoint_and_cover_the_data(size, replicas, drop_last):
    for epoch in (0, 1):
        shards = []
        for rank in range(replicas):
            sampler = DistributedSampler(size, num_replicas=replicas, rank=rank, seed=3, drop_last=drop_last)
            sampler.set_epoch(epoch)
            shards.append(list(sampler))
            assert len(shards[-1]) == len(sampler)
        assert len({len(shard) for shard in shards}) == 1  # every rank the same number of batches
        flat = [index for shard in shards for index in shard]
        if drop_last:
            assert len(set(flat)) == len(flat) == size - size % replicas  # disjoint, the tail dropped
        else:
            assert set(flat) == set(range(size))  # covering
            real = [DistributedSampler(size, replicas, rank, seed=3).real_count() for rank in range(replicas)]
            assert sum(real) == size  # the padding, counted by nobody
            assert len(flat) - size == (-size) % replicas  # as few repeats as divisibility needs
            distinct = [index for rank, shard in enumerate(shards) for index in shard[:real[rank]]]
            assert sorted(distinct) == list(range(size))
    orders = []
    for epoch in (0, 1):
        sampler = DistributedSampler(100, 2, 0, seed=3)
        sampler.set_epoch(epoch)
        orders.append(list(sampler))
    assert orders[0] != orders[1]  # reshuffled per epoch, the same on every rank (a function of seed, epoch)


def test_sampler_matches_torch():
    torch = pytest.importorskip("torch")
    from torch.utils.data.distributed import DistributedSampler as TorchSampler
    for size, replicas, drop_last in ((10, 3, False), (10, 3, True), (9, 3, False)):
        for rank in range(replicas):
            ours = DistributedSampler(size, replicas, rank, shuffle=False, drop_last=drop_last)
            theirs = TorchSampler(list(range(size)), replicas, rank, shuffle=False, drop_last=drop_last)
            assert list(ours) == list(theirs) and len(ours) == len(theirs)
    del torch


def test_data_loader_takes_a_sampler():
    images = np.arange(10)
    sampler = DistributedSampler(10, num_replicas=2, rank=1, seed=0)
    loader = DataLoader(images, batch_size=3, sampler=sampler)
    assert len(loader) == 2
    batches = [batch.tolist() for (batch,) in loader]
    assert sum(batches, []) == list(sampler)
    loader.set_epoch(4)
    assert sampler.epoch == 4
    with pytest.raises(ValueError, match="shuffle"):
        DataLoader(images, batch_size=3, sampler=sampler, shuffle=True)
    with pytest.raises(ValueError, match="rank"):
        DistributedSampler(10, num_replicas=2, rank=2)


def test_parallel_without_mpi_says_how_to_install(monkeypatch):
    import nn.parallel as dist
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    with pytest.raises(dist.MPINotAvailableError, match="pip install"):
        dist._mpi()
    assert not dist.is_available()


# ---- MPI jobs ----

SAME_MODEL = """
dist.init_process_group()
rank, size = dist.get_rank(), dist.get_world_size()

def build(seed):
    nn.init.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 6 * 6, 16), nn.Tanh(),
                         nn.Linear(16, 4))

rng = np.random.default_rng(0)
images = rng.standard_normal((5, 12, 6, 6, 1)).astype(np.float32)   # 5 steps of a global batch of 12
labels = rng.integers(0, 4, (5, 12))

def loss_of(model, x, y):
    return nn.functional.cross_entropy(model(ag.from_numpy(x)), y)

# the single-process reference on the global batch, from rank 0's initial weights
reference = build(0)
optimizer = nn.optim.Adam(reference.parameters(), lr=0.01)
for step in range(5):
    optimizer.zero_grad(); loss_of(reference, images[step], labels[step]).backward(); optimizer.step()

model = build(0 if rank == 0 else 7)  # different on each rank: DistributedDataParallel takes rank 0's
ddp = dist.DistributedDataParallel(model, bucket_cap_mb=0.001)  # several buckets
assert len(ddp._buckets) > 1
optimizer = nn.optim.Adam(model.parameters(), lr=0.01)
sampler = nn.data.DistributedSampler(12, shuffle=False)
for step in range(5):
    mine = list(sampler)
    optimizer.zero_grad(); loss_of(ddp, images[step][mine], labels[step][mine]).backward(); optimizer.step()

# same parameters on every rank (gathered), and equal to the one-process run
for mine, theirs in zip(model.parameters(), reference.parameters()):
    gathered = dist._group.comm.allgather(mine.data)
    assert all(np.array_equal(gathered[0], other) for other in gathered), "ranks differ"
    np.testing.assert_allclose(mine.data, theirs.data, rtol=1e-4, atol=1e-5)

# no_sync: two local micro-batches accumulate, the synchronised one averages the sums
ddp.zero_grad()
with ddp.no_sync():
    loss_of(ddp, images[0][rank::2][:3], labels[0][rank::2][:3]).backward()
local = [p.grad.numpy().copy() for p in model.parameters()]
other = dist._group.comm.allgather(local)
assert not all(np.array_equal(a, b) for a, b in zip(other[0], other[1])), "no_sync communicated"
loss_of(ddp, images[0][rank::2][3:], labels[0][rank::2][3:]).backward()
reference.zero_grad()
for p, q in zip(reference.parameters(), model.parameters()):
    p.data[...] = q.data
for r in range(2):
    for part in (slice(0, 3), slice(3, 6)):
        loss_of(reference, images[0][r::2][part], labels[0][r::2][part]).backward()
for mine, theirs in zip(model.parameters(), reference.parameters()):
    np.testing.assert_allclose(mine.grad.numpy(), theirs.grad.numpy() / 2, rtol=1e-4, atol=1e-6)

# overlap: when backward reaches the convolution (its output's gradient is complete), the
# buckets of both Linear layers have been started (the engine delivered their gradients early)
started_then = []
ddp.zero_grad()
features = model[2](model[1](model[0](ag.from_numpy(images[1][rank::2]))))
features.register_hook(lambda g: started_then.append(ddp._next_bucket))
nn.functional.cross_entropy(model[5](model[4](model[3](features))), labels[1][rank::2]).backward()
assert started_then == [len(ddp._buckets) - 1] and len(ddp._buckets) == 3, (started_then, len(ddp._buckets))

# broadcast_buffers: a training forward first takes rank 0's buffers
holder = nn.Sequential(nn.Linear(2, 2))
holder[0].register_buffer("running", np.full(3, float(rank + 5)))
wrapped = dist.DistributedDataParallel(holder)
assert holder[0].running.tolist() == [5.0] * 3  # at construction
holder[0].running[...] = rank + 7
wrapped(ag.ones(1, 2))
assert holder[0].running.tolist() == [7.0] * 3

# the Tensor helpers
t = ag.tensor([float(rank + 1), 10.0 * rank])
dist.all_reduce(t)
assert t.numpy().tolist() == [3.0, 10.0]
dist.all_reduce(t, op="max")
b = ag.tensor([float(rank)] * 3)
dist.broadcast(b, src=1)
assert b.numpy().tolist() == [1.0] * 3
dist.barrier()
assert dist.all_reduce_object([rank, 1]) == [1.0, 2.0]
done = dist._group.comm.gather(rank, root=0)
if rank == 0:
    print("ranks done:", done)
"""


@needs_mpi
def test_ranks_agree_and_match_one_process_and_no_sync_accumulates(tmp_path):
    out = _check(mpirun(tmp_path, SAME_MODEL))
    assert "ranks done: [0, 1]" in out


@needs_mpi
def test_a_raising_rank_aborts_the_job(tmp_path):
    result = mpirun(tmp_path, """
        dist.init_process_group()
        if dist.get_rank() == 1:
            raise ValueError("bad batch on purpose")
        dist.barrier()   # rank 0 would wait here for ever without the abort
        print("rank 0 passed the barrier")
    """, timeout=30)
    assert result.returncode != 0
    assert "rank 1 of 2: ValueError: bad batch on purpose" in result.stderr
    assert "MPI_Abort" in result.stderr
    assert "passed the barrier" not in result.stdout


@needs_mpi
def test_mismatched_models_are_an_error_at_start_up(tmp_path):
    result = mpirun(tmp_path, """
        dist.init_process_group()
        model = nn.Linear(4, 3 + dist.get_rank())
        dist.DistributedDataParallel(model)
    """, timeout=30)
    assert result.returncode != 0
    assert "the ranks hold different models" in result.stderr
    assert "(3, 4)" in result.stderr and "(4, 4)" in result.stderr and "rank 1" in result.stderr


# ---- the command line ----

TRAIN_COUNT, TEST_COUNT = 90, 41  # batches of 25 (13 + 12 per rank) and a last of 15; 21 + 20 to test


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("fashion-mnist")
    for split, count, seed in (("train", TRAIN_COUNT, 0), ("test", TEST_COUNT, 1)):
        rng = np.random.default_rng(seed)
        labels = rng.integers(0, 10, size=count).astype(np.uint8)
        images = rng.integers(0, 60, size=(count, 28, 28)).astype(np.uint8)
        for index, label in enumerate(labels):
            images[index, 2 * label: 2 * label + 6, :] = 220
        images_name, labels_name = nn.data.FASHION_MNIST_FILES[split]
        nn.data.write_idx(directory / images_name, images)
        nn.data.write_idx(directory / labels_name, labels)
    return str(directory)


def _train_command(data_dir, out, epochs, *extra):
    return [sys.executable, "-m", "nn", "train", "softmax", "--epochs", str(epochs), "--batch-size", "25",
            "--optimizer", "adam", "--lr", "0.01", "--data-dir", data_dir, "--out", out, "--no-download",
            "--no-progress", "--threads", "1", *extra]


def _single(tmp_path, command):
    environment = dict(os.environ, PYTHONPATH=ROOT)
    result = subprocess.run(command, cwd=str(tmp_path), capture_output=True, text=True, timeout=60,
                            env=environment)
    return _check(result)


def _weights(run_dir):
    with np.load(os.path.join(run_dir, "checkpoint.npz")) as archive:
        return {key: archive[key] for key in archive.files if key.startswith("model")}


def _assert_same_weights(a, b):
    assert a.keys() == b.keys() and a
    for key in a:
        np.testing.assert_allclose(a[key], b[key], rtol=1e-4, atol=1e-6, err_msg=key)


@pytest.fixture(scope="module")
def first_epochs(tmp_path_factory, data_dir):
    """One epoch in one process ("single") and on two ranks ("rank0/run"), each rank in its
    own working directory: the relative run directory must appear in rank 0's only."""
    if _mpi_missing():
        pytest.skip(_mpi_missing())
    tmp_path = tmp_path_factory.mktemp("first-epochs")
    _single(tmp_path, _train_command(data_dir, str(tmp_path / "single"), 1))
    (tmp_path / "rank0").mkdir()
    (tmp_path / "rank1").mkdir()
    command = _train_command(data_dir, "run", 1, "--distributed")
    out = _check(mpirun(tmp_path, None, script=["-n", "1", "-wdir", str(tmp_path / "rank0"), *command, ":",
                                                 "-n", "1", "-wdir", str(tmp_path / "rank1"), *command],
                        processes=None))
    return tmp_path, out


@needs_mpi
def test_cli_distributed_matches_one_process_and_only_rank_0_writes(first_epochs):
    tmp_path, out = first_epochs
    single = str(tmp_path / "single")
    assert sorted(os.listdir(tmp_path / "rank0" / "run")) == ["checkpoint.npz", "curve.png", "metrics.json"]
    assert os.listdir(tmp_path / "rank1") == []
    assert out.count("epoch 1/1:") == 1 and "2 ranks" in out
    _assert_same_weights(_weights(str(tmp_path / "rank0" / "run")), _weights(single))
    # the sharded evaluation counts each test example once: the one-process metrics
    import json
    with open(os.path.join(single, "metrics.json")) as stream:
        expected = json.load(stream)["epochs"][0]
    with open(tmp_path / "rank0" / "run" / "metrics.json") as stream:
        got = json.load(stream)["epochs"][0]
    for key in ("train_loss", "test_accuracy", "test_loss"):
        assert got[key] == pytest.approx(expected[key], rel=1e-4), key


@needs_mpi
def test_cli_resumes_under_another_world_size(tmp_path, data_dir, first_epochs):
    first, _ = first_epochs
    reference = str(tmp_path / "reference")
    _single(tmp_path, _train_command(data_dir, reference, 2))
    two_then_one = str(tmp_path / "two_then_one")
    shutil.copytree(first / "rank0" / "run", two_then_one)
    _single(tmp_path, _train_command(data_dir, two_then_one, 2, "--resume",
                                     os.path.join(two_then_one, "checkpoint.npz")))
    one_then_two = str(tmp_path / "one_then_two")
    shutil.copytree(first / "single", one_then_two)
    _check(mpirun(tmp_path, None, script=_train_command(data_dir, one_then_two, 2, "--distributed", "--resume",
                                                        os.path.join(one_then_two, "checkpoint.npz"))))
    _assert_same_weights(_weights(two_then_one), _weights(reference))
    _assert_same_weights(_weights(one_then_two), _weights(reference))


@needs_mpi
def test_train_lm_distributed_stops_together_and_rank_0_saves(tmp_path):
    text = tmp_path / "text.txt"
    text.write_text("to be or not to be, that is the question. " * 40)
    command = [sys.executable, "-m", "nn", "train-lm", str(text), "--out", "lm.npz", "--hidden", "16",
               "--embedding", "8", "--batch-size", "5", "--seq-len", "10", "--minutes", "0.002",
               "--eval-every", "0", "--threads", "1", "--distributed"]
    out = _check(mpirun(tmp_path, None, script=command))
    assert out.count("best validation") == 1  # rank 0 alone reports
    assert (tmp_path / "lm.npz").exists()


def test_distributed_without_mpi_says_how_to_install(monkeypatch, capsys, tmp_path):
    from nn import parallel
    from nn.apps import cli
    monkeypatch.setattr(parallel, "is_available", lambda: False)
    status = cli.main(["train", "softmax", "--distributed", "--out", str(tmp_path / "run"), "--no-download"])
    assert status == 1
    error = capsys.readouterr().err
    assert "--distributed" in error and "pip install" in error and "openmpi-bin" in error
