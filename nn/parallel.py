"""Data-parallel training over MPI: the same script on N processes, one machine or many.

    mpirun -n 2 python train.py            # or: mpirun -n 2 autograd-core train cnn --distributed

    import nn, nn.parallel as dist
    dist.init_process_group()                              # rank and world size from MPI
    model = dist.DistributedDataParallel(nn_model)         # rank 0's weights on every rank
    sampler = nn.data.DistributedSampler(len(images), shuffle=True, seed=0)
    loader = nn.data.DataLoader(images, labels, batch_size=32, sampler=sampler)
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        for x, y in loader:
            optimizer.zero_grad()
            loss_fn(model(ag.from_numpy(x)), y).backward()  # gradients averaged over ranks
            optimizer.step()

This module is the ``nn`` library layer's (DESIGN.md: "parallel (MPI)"): it is built on
the engine's public hooks (``Tensor.register_post_accumulate_grad_hook`` and
``autograd_core.engine.queue_callback``), on ``Module`` and on numpy buffers; the engine
knows nothing of MPI. The transport is MPI through mpi4py, an optional extra
(``pip install "autograd-core[mpi]"`` plus an MPI library such as Debian's
``openmpi-bin libopenmpi-dev``): importing this module needs neither; the first call that
talks to other processes does.

**Gradient averaging.** :class:`DistributedDataParallel` puts the parameters, in reverse
order of registration (roughly the order backward produces their gradients), into
buckets of about ``bucket_cap_mb`` megabytes. The engine hands each parameter its
gradient as soon as its last use has contributed; when a bucket's last gradient arrives,
the bucket is copied into one flat numpy buffer and a nonblocking ``Iallreduce`` starts,
while backward goes on with the layers below. Buckets start in a fixed order on every
rank (a bucket that is ready early waits for the ones before it), since MPI requires the
same order of collectives on every rank. At the end of backward one callback waits for
all of them, divides by the world size and writes the averages back into ``.grad``.

**Faults.** :func:`init_process_group` installs an exception hook: a rank whose script
raises prints ``rank R of N: ...`` and the traceback, then calls ``MPI_Abort``, which ends
every process of the job (the others would otherwise wait in their next collective for
ever). Models that differ across ranks (parameter names, shapes or dtypes) are an error
on every rank when ``DistributedDataParallel`` is built, before any collective could
mismatch.
"""
import contextlib
import os
import sys
import time
import traceback

import numpy as np

from autograd_core import Tensor, engine

from .module import Module

__all__ = ["MPINotAvailableError", "is_available", "init_process_group", "is_initialized", "get_rank",
           "get_world_size", "all_reduce", "broadcast", "broadcast_object", "all_reduce_object", "barrier",
           "abort", "DistributedDataParallel", "INSTALL_HINT"]

INSTALL_HINT = ("install an MPI library and mpi4py: on Debian/Ubuntu 'apt-get install openmpi-bin "
                "libopenmpi-dev', then 'pip install \"autograd-core[mpi]\"' (or 'pip install mpi4py'), and "
                "launch with 'mpirun -n N ...'")


class MPINotAvailableError(ImportError):
    """mpi4py (or the MPI library under it) is not installed."""


_group = None  # the _ProcessGroup of init_process_group


def _mpi():
    try:
        from mpi4py import MPI
    except ImportError as error:
        raise MPINotAvailableError("distributed training needs MPI, which is not available (%s): %s"
                                   % (error, INSTALL_HINT)) from None
    return MPI


def is_available():
    """True when mpi4py and an MPI library can be imported."""
    try:
        _mpi()
    except ImportError:
        return False
    return True


class _ProcessGroup:
    __slots__ = ("comm", "rank", "size", "MPI")

    def __init__(self, MPI, comm):
        self.MPI, self.comm = MPI, comm
        self.rank, self.size = comm.Get_rank(), comm.Get_size()


def init_process_group(backend="mpi", abort_on_exception=True):
    """Join the job: rank and world size come from MPI (``mpirun`` sets them; a plain
    ``python`` is a job of one). Idempotent. ``abort_on_exception`` installs a
    ``sys.excepthook`` that prints the failing rank and its traceback and calls
    ``MPI_Abort``, so one rank's uncaught exception ends the whole job instead of leaving
    the others waiting. Returns the world size."""
    global _group
    if backend != "mpi":
        raise ValueError("init_process_group: backend %r is not supported; expected 'mpi'" % (backend,))
    if _group is None:
        MPI = _mpi()
        _group = _ProcessGroup(MPI, MPI.COMM_WORLD)
        if abort_on_exception and _group.size > 1:
            previous = sys.excepthook

            def abort_job(kind, value, trace):
                _report_and_abort(kind, value, trace, previous)

            sys.excepthook = abort_job
    return _group.size


def _report_and_abort(kind, value, trace, previous=None):
    group = _group
    message = "".join(traceback.format_exception(kind, value, trace))
    sys.stderr.write("rank %d of %d: %s: %s\n%s" % (group.rank, group.size, kind.__name__, value, message)
                     + "rank %d: aborting the job (MPI_Abort) so that the other ranks do not wait for it\n"
                     % group.rank)
    sys.stderr.flush()
    group.comm.Abort(1)


def abort(message, code=1):
    """Print ``rank R of N: message`` to stderr and end every process of the job
    (``MPI_Abort``); without a process group, raise SystemExit(code) after printing."""
    if _group is None or _group.size == 1:
        sys.stderr.write(message + "\n")
        sys.stderr.flush()
        raise SystemExit(code)
    sys.stderr.write("rank %d of %d: %s\nrank %d: aborting the job (MPI_Abort)\n"
                     % (_group.rank, _group.size, message, _group.rank))
    sys.stderr.flush()
    _group.comm.Abort(code)


def is_initialized():
    return _group is not None


def _require(caller):
    if _group is None:
        raise RuntimeError("%s: call nn.parallel.init_process_group() first" % caller)
    return _group


def get_rank():
    """This process's rank, 0 .. world size - 1 (0 before init_process_group)."""
    return 0 if _group is None else _group.rank


def get_world_size():
    """The number of processes in the job (1 before init_process_group)."""
    return 1 if _group is None else _group.size


def _ops(MPI):
    return {"sum": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN, "mean": MPI.SUM, "product": MPI.PROD}


def _array_of(value, caller):
    array = value.data if isinstance(value, Tensor) else value
    if not isinstance(array, np.ndarray):
        raise TypeError("%s: expected a Tensor or numpy array, got %s" % (caller, type(value).__name__))
    if not array.flags.c_contiguous:
        raise ValueError("%s: expected C-contiguous memory (the result is written in place), got a "
                         "strided array of shape %s; pass a copy" % (caller, array.shape))
    return array


def all_reduce(tensor, op="sum"):
    """Reduce ``tensor`` (a Tensor or numpy array, any shape) element-wise over all ranks
    in place, as torch.distributed.all_reduce; ``op`` is 'sum', 'mean', 'max', 'min' or
    'product'. Every rank must call it. Returns ``tensor``."""
    group = _require("all_reduce")
    operations = _ops(group.MPI)
    if op not in operations:
        raise ValueError("all_reduce: op %r is not supported; expected one of %s" % (op, sorted(operations)))
    array = _array_of(tensor, "all_reduce")
    group.comm.Allreduce(group.MPI.IN_PLACE, array, op=operations[op])
    if op == "mean":
        np.divide(array, group.size, out=array, casting="unsafe")
    return tensor


def broadcast(tensor, src=0):
    """Overwrite ``tensor`` (Tensor or numpy array) on every rank with rank ``src``'s, in
    place. Returns ``tensor``."""
    group = _require("broadcast")
    group.comm.Bcast(_array_of(tensor, "broadcast"), root=src)
    return tensor


def broadcast_object(value, src=0):
    """Rank ``src``'s picklable ``value`` on every rank (e.g. rank 0's decision to stop)."""
    return _require("broadcast_object").comm.bcast(value, root=src)


def all_reduce_object(value, op="sum"):
    """The sum (or 'max', 'min') over ranks of a number or of a list of numbers (summed
    element-wise), as float64: for metrics that each rank counted on its shard."""
    group = _require("all_reduce_object")
    array = np.array(value, dtype=np.float64)
    group.comm.Allreduce(group.MPI.IN_PLACE, array, op=_ops(group.MPI)[op])
    return array.tolist()


def barrier():
    """Wait until every rank has reached this call."""
    _require("barrier").comm.Barrier()


class _Bucket:
    __slots__ = ("params", "offsets", "buffer", "ready", "request")

    def __init__(self, params, dtype):
        self.params = params
        sizes = [p.data.size for p in params]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int).tolist()
        self.buffer = np.empty(self.offsets[-1], dtype=dtype)
        self.ready = 0
        self.request = None


class DistributedDataParallel(Module):
    """Wraps ``module`` for synchronous data-parallel training (torch's name and options).

    On construction every rank checks that all ranks hold the same parameters (names,
    shapes, dtypes: a ValueError naming the first difference otherwise) and takes rank
    0's parameter values and buffers. During each ``backward`` the gradients are
    averaged over the ranks in buckets of about ``bucket_cap_mb`` MB, each started
    (nonblocking ``Iallreduce``) as soon as its gradients are ready and waited for when
    backward ends, so that after ``loss.backward()`` every rank has the same
    ``.grad``: the mean of the ranks' gradients (with a loss that is a mean over the local
    batch and equal local batches, the gradient of the global batch). Inside
    :meth:`no_sync` gradients only accumulate locally; the first backward after it
    averages the accumulated sums. ``broadcast_buffers``: each forward in training mode
    first copies rank 0's buffers (e.g. BatchNorm statistics) to every rank.

    A parameter that received no gradient in a backward is averaged as zeros (every rank
    must send the same buckets) and then has a zero ``.grad``.

    After each synchronised backward, ``last_wait_seconds`` is the time backward's end
    spent waiting for the reductions (the part overlap did not hide) and
    ``last_launch_seconds`` the time spent copying buckets and starting them.
    """

    def __init__(self, module, bucket_cap_mb=25.0, broadcast_buffers=True, process_group=None):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError("DistributedDataParallel: expected an nn.Module, got %s" % type(module).__name__)
        if not (isinstance(bucket_cap_mb, (int, float)) and bucket_cap_mb > 0):
            raise ValueError("DistributedDataParallel: bucket_cap_mb must be a number > 0, got %r"
                             % (bucket_cap_mb,))
        group = process_group or _group
        if group is None:
            init_process_group()
            group = _group
        object.__setattr__(self, "_group", group)
        self.module = module
        self.broadcast_buffers = bool(broadcast_buffers)
        self.bucket_cap_mb = float(bucket_cap_mb)
        self.require_backward_grad_sync = True
        named = [(name, p) for name, p in module.named_parameters() if p.requires_grad]
        _check_same_parameters(group, "DistributedDataParallel", named, module)
        object.__setattr__(self, "_buckets", _make_buckets([p for _, p in named], bucket_cap_mb))
        self._sync_parameters()
        if self.broadcast_buffers:
            self._sync_buffers()
        self._bucket_of = {}
        for bucket in self._buckets:
            for param in bucket.params:
                self._bucket_of[id(param)] = bucket
        self._handles = [p.register_post_accumulate_grad_hook(self._gradient_ready) for _, p in named]
        self._next_bucket = 0
        self._armed = False
        self.last_wait_seconds = 0.0
        self.last_launch_seconds = 0.0
        self._launch_seconds = 0.0

    def _sync_parameters(self):
        """Every parameter (and gradient) as rank 0's: one broadcast per bucket."""
        if self._group.size == 1:
            return
        for bucket in self._buckets:
            self._pack(bucket, lambda p: p.data)
            self._group.comm.Bcast(bucket.buffer, root=0)
            for param, start, stop in zip(bucket.params, bucket.offsets, bucket.offsets[1:]):
                param.data[...] = bucket.buffer[start:stop].reshape(param.data.shape)

    def _sync_buffers(self):
        if self._group.size == 1:
            return
        for _, buffer in self.module.named_buffers():
            if buffer.size and buffer.flags.c_contiguous and buffer.flags.writeable:
                self._group.comm.Bcast(buffer, root=0)

    def forward(self, *args, **kwargs):
        if self.broadcast_buffers and self.training:
            self._sync_buffers()
        return self.module(*args, **kwargs)

    @contextlib.contextmanager
    def no_sync(self):
        """Backward passes inside only accumulate gradients locally (no communication);
        the first synchronised backward after it averages the accumulated gradients."""
        previous = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = previous

    # -- the backward hooks ---------------------------------------------------------------
    @staticmethod
    def _pack(bucket, value_of):
        buffer = bucket.buffer
        for param, start, stop in zip(bucket.params, bucket.offsets, bucket.offsets[1:]):
            value = value_of(param)
            if value is None:
                buffer[start:stop] = 0
            else:
                buffer[start:stop] = value.reshape(-1)

    def _gradient_ready(self, param):
        if not self.require_backward_grad_sync or self._group.size == 1:
            return
        if not self._armed:  # the first gradient of this backward: finish at its end
            self._armed = True
            engine.queue_callback(self._finish_backward)
        bucket = self._bucket_of[id(param)]
        bucket.ready += 1
        started = time.perf_counter()
        if bucket.ready == len(bucket.params):
            self._start_ready_buckets()
        elif self._next_bucket:
            # Open MPI moves nonblocking collectives on only inside MPI calls (no progress
            # thread): each gradient that arrives pokes the reductions already started
            self._group.MPI.Request.Testall([b.request for b in self._buckets[:self._next_bucket]])
        self._launch_seconds += time.perf_counter() - started

    def _start_ready_buckets(self, everything=False):
        buckets, MPI, comm = self._buckets, self._group.MPI, self._group.comm
        while self._next_bucket < len(buckets):
            bucket = buckets[self._next_bucket]
            if not everything and bucket.ready < len(bucket.params):
                break
            self._pack(bucket, lambda p: None if p.grad is None else p.grad.data)
            bucket.request = comm.Iallreduce(MPI.IN_PLACE, bucket.buffer, op=MPI.SUM)
            self._next_bucket += 1
        # Open MPI progresses nonblocking collectives only inside MPI calls: poke them
        started = [bucket.request for bucket in buckets[:self._next_bucket] if bucket.request is not None]
        if started:
            MPI.Request.Testall(started)

    def _finish_backward(self):
        started = time.perf_counter()
        self._start_ready_buckets(everything=True)  # buckets with a parameter that got no gradient
        launched = time.perf_counter()
        self._launch_seconds += launched - started
        self._group.MPI.Request.Waitall([bucket.request for bucket in self._buckets])
        self.last_wait_seconds = time.perf_counter() - launched
        size = self._group.size
        for bucket in self._buckets:
            np.divide(bucket.buffer, size, out=bucket.buffer)
            for param, start, stop in zip(bucket.params, bucket.offsets, bucket.offsets[1:]):
                average = bucket.buffer[start:stop].reshape(param.data.shape)
                if param.grad is None:
                    param.grad = Tensor(average.copy())
                else:  # (accumulate_grad made .grad a private C-ordered array)
                    param.grad.data[...] = average
            bucket.ready, bucket.request = 0, None
        self._next_bucket = 0
        self._armed = False
        self.last_launch_seconds, self._launch_seconds = self._launch_seconds, 0.0

    def extra_repr(self):
        return "world_size=%d, buckets=%d, bucket_cap_mb=%g" % (self._group.size, len(self._buckets),
                                                                self.bucket_cap_mb)


def _make_buckets(params, bucket_cap_mb):
    """Parameters in reverse order, grouped greedily into buckets of at most
    bucket_cap_mb MB (a larger parameter gets a bucket of its own), one dtype per bucket."""
    cap = bucket_cap_mb * 1024 * 1024
    buckets, current, current_bytes = [], [], 0
    for param in reversed(params):
        if current and (current_bytes + param.data.nbytes > cap or param.data.dtype != current[0].data.dtype):
            buckets.append(_Bucket(current, current[0].data.dtype))
            current, current_bytes = [], 0
        current.append(param)
        current_bytes += param.data.nbytes
    if current:
        buckets.append(_Bucket(current, current[0].data.dtype))
    return buckets


def _check_same_parameters(group, caller, named, module):
    """Every rank's (name, shape, dtype) list against rank 0's; a ValueError on every rank
    naming the first difference (all ranks gather, so all raise: none is left waiting)."""
    mine = [(name, tuple(p.data.shape), p.data.dtype.str) for name, p in named]
    if group.size == 1:
        return
    everyone = group.comm.allgather(mine)
    reference = everyone[0]
    for rank, theirs in enumerate(everyone):
        if theirs == reference:
            continue
        for index in range(max(len(theirs), len(reference))):
            a = reference[index] if index < len(reference) else None
            b = theirs[index] if index < len(theirs) else None
            if a != b:
                raise ValueError(
                    "%s: the ranks hold different models (%s): parameter %d is %s on rank 0 but %s on rank %d "
                    "(name, shape, dtype); every rank must build the same model"
                    % (caller, type(module).__name__, index, a or "missing", b or "missing", rank))

