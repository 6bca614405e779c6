"""What the commands need to run data-parallel (``--distributed``, under ``mpirun``).

:class:`World` is the one object the trainer and the language model ask: which rank this
is, which part of a global batch is its own, how to weight its loss so that the average
over ranks is the global batch's gradient, how to sum metrics over ranks, and rank 0's
decisions. ``World()`` without ``distributed`` is a world of one that does nothing, so
the single-process path is the same code without communication.
"""
import os

import autograd_core

from .. import parallel

__all__ = ["World", "SINGLE"]


class World:
    """The ranks of a run. ``World(distributed=True)`` joins the MPI job (a ValueError
    that says how to install MPI when it is missing)."""

    def __init__(self, distributed=False):
        self.distributed = bool(distributed)
        if self.distributed:
            if not parallel.is_available():
                raise ValueError("--distributed: " + parallel.INSTALL_HINT)
            parallel.init_process_group()
        self.rank = parallel.get_rank() if self.distributed else 0
        self.size = parallel.get_world_size() if self.distributed else 1

    @property
    def is_main(self):
        """Rank 0: the one that prints and writes files."""
        return self.rank == 0

    def say(self, *args, **kwargs):
        """print on rank 0 only."""
        if self.rank == 0:
            print(*args, **kwargs)

    def part(self, count):
        """This rank's slice of ``count`` items cut into ``size`` contiguous parts whose
        lengths differ by at most one (the first ``count % size`` ranks get one more)."""
        base, extra = divmod(count, self.size)
        start = self.rank * base + min(self.rank, extra)
        return slice(start, start + base + (self.rank < extra))

    def loss_weight(self, local, total):
        """The factor for a loss that is a mean over this rank's ``local`` of ``total``
        examples: DistributedDataParallel averages over ranks, so local * size / total
        makes that average the mean over all ``total`` (the one-process gradient) even
        when the ranks' counts differ."""
        return local * self.size / total

    def wrap(self, model):
        """``model`` inside DistributedDataParallel (rank 0's weights on every rank), or
        itself for a world of one."""
        return parallel.DistributedDataParallel(model) if self.distributed else model

    def sum(self, values):
        """Element-wise sum over ranks of a list of numbers (itself for a world of one)."""
        return parallel.all_reduce_object(list(values)) if self.distributed else list(values)

    def decide(self, value):
        """Rank 0's ``value`` on every rank (e.g. its decision to stop)."""
        return parallel.broadcast_object(value) if self.distributed else value

    def set_threads_per_rank(self, threads):
        """Unless ``--threads`` or OMP_NUM_THREADS chose, give each rank its share of this
        machine's cores (mpirun's local size), so that ranks do not oversubscribe them."""
        if not self.distributed or threads is not None or "OMP_NUM_THREADS" in os.environ:
            return
        local = int(os.environ.get("OMPI_COMM_WORLD_LOCAL_SIZE") or os.environ.get("MPI_LOCALNRANKS") or 1)
        autograd_core.set_num_threads(max(1, (os.cpu_count() or 1) // max(1, local)))

    def abort_if_failed(self, status, prog):
        """After a command returned ``status``: a failure on one rank ends the whole job
        (its message was printed), since the other ranks would wait for it for ever."""
        if self.distributed and self.size > 1 and status not in (0, None):
            parallel.abort(f"{prog}: this rank failed (exit status {status})", code=status)
        return status


SINGLE = World()
