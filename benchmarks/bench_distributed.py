"""Benchmark: data-parallel training of the seed CNN over MPI (nn.parallel).

    python -m benchmarks.bench_distributed [--steps 12] [--out FILE.json]

It needs ``mpirun`` and mpi4py, so ``python -m benchmarks`` leaves it out; run it on
its own (or ``python -m benchmarks --only distributed``). It launches the worker twice on this machine, on the same global batch of 100
(the seed CNN's, ``autograd-core train cnn``: Adam, 3.27 M parameters, dropout on):

  1 process x 2 threads     python -m benchmarks.bench_distributed --worker --threads 2
  2 processes x 1 thread    mpirun -n 2 ... --worker --threads 1 (50 examples per rank)

and reports, from medians over ``--steps`` timed steps (after 2 warm-up steps):

* the step time, and the epoch time (60,000 images, 600 steps) extrapolated from it,
  not measured over a whole epoch;
* for the 2-process run: the time backward's end waited for the gradient allreduce
  (DistributedDataParallel.last_wait_seconds, the part overlap did not hide), the time of
  the same allreduce run blocking on its own (all buckets, one after the other), and the
  fraction hidden = 1 - waited / blocking; the compute time per example at 1 thread
  (a local step under no_sync, no communication); the gradient size.

The model on paper of the speed-up to 8 and 64 machines (benchmarks/README.md) is
:func:`model_on_paper` applied to these figures.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

import numpy as np

GLOBAL_BATCH = 100
EPOCH_EXAMPLES = 60000


def _worker(steps, threads, bucket_cap_mb):
    import autograd_core as ag
    import nn
    from nn import parallel
    from nn.apps import models

    ag.set_num_threads(threads)
    distributed = parallel.is_available() and int(os.environ.get("OMPI_COMM_WORLD_SIZE", "1")) > 1
    if distributed:
        parallel.init_process_group()
    rank, size = parallel.get_rank(), parallel.get_world_size()
    nn.init.manual_seed(0)
    ag.manual_seed(0)
    model = models.get_model_spec("cnn").build()
    trained = parallel.DistributedDataParallel(model, bucket_cap_mb=bucket_cap_mb) if distributed else model
    optimizer = nn.optim.Adam(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    images = rng.random((GLOBAL_BATCH, 28, 28, 1), dtype=np.float32)
    labels = rng.integers(0, 10, GLOBAL_BATCH)
    local = slice(rank * GLOBAL_BATCH // size, (rank + 1) * GLOBAL_BATCH // size)
    x, y = ag.from_numpy(np.ascontiguousarray(images[local])), labels[local]

    def step():
        optimizer.zero_grad()
        nn.functional.cross_entropy(trained(x), y).backward()
        optimizer.step()

    step_times, waits = [], []
    for index in range(steps + 2):
        if distributed:
            parallel.barrier()
        started = time.perf_counter()
        step()
        if index >= 2:
            step_times.append(time.perf_counter() - started)
            if distributed:
                waits.append(trained.last_wait_seconds)
    result = {"processes": size, "threads": threads, "examples_per_process": len(y),
              "step_seconds": statistics.median(step_times),
              "parameters": int(sum(p.data.size for p in model.parameters())),
              "gradient_bytes": int(sum(p.data.nbytes for p in model.parameters()))}
    if distributed:
        # the same reduction, blocking and alone: what overlap had to hide
        blocking = []
        for _ in range(steps):
            parallel.barrier()
            started = time.perf_counter()
            for bucket in trained._buckets:
                parallel.all_reduce(bucket.buffer)
            blocking.append(time.perf_counter() - started)
        compute = []
        for _ in range(steps):  # a local step without communication
            started = time.perf_counter()
            with trained.no_sync():
                optimizer.zero_grad()
                nn.functional.cross_entropy(trained(x), y).backward()
            optimizer.step()
            compute.append(time.perf_counter() - started)
        result.update(buckets=len(trained._buckets), waited_seconds=statistics.median(waits),
                      allreduce_seconds=statistics.median(blocking),
                      compute_seconds=statistics.median(compute),
                      compute_seconds_per_example=statistics.median(compute) / len(y))
        result["hidden_fraction"] = max(0.0, 1.0 - result["waited_seconds"] / result["allreduce_seconds"])
    if rank == 0:
        print("RESULT " + json.dumps(result), flush=True)


def model_on_paper(compute_per_example, gradient_bytes, machines, bandwidth, latency, batch_per_machine=None,
                   global_batch=GLOBAL_BATCH):
    """Step time and speed-up on ``machines`` by a ring allreduce: each machine sends and
    receives 2 (P - 1) / P of the gradient and waits 2 (P - 1) latencies. With
    ``batch_per_machine`` (weak scaling) the global batch grows with P; otherwise
    (strong scaling) ``global_batch`` is split. Returns (step seconds without overlap,
    with the whole reduction hidden behind backward (bounded by backward, taken as 2/3
    of the compute), examples per second, speed-up over one machine without overlap)."""
    per_machine = batch_per_machine or global_batch / machines
    compute = compute_per_example * per_machine
    communication = 0.0 if machines == 1 else (2 * (machines - 1) / machines * gradient_bytes / bandwidth
                                               + 2 * (machines - 1) * latency)
    exposed = compute + communication
    overlapped = compute + max(0.0, communication - 2 / 3 * compute)
    examples = per_machine * machines
    one = compute_per_example * per_machine if batch_per_machine else compute_per_example * global_batch
    speedup = (examples / exposed) / (per_machine / one if batch_per_machine else global_batch / one)
    return exposed, overlapped, examples / exposed, speedup


def _launch(command, environment):
    result = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=600)
    if result.returncode != 0:
        raise RuntimeError("%s failed:\n%s\n%s" % (" ".join(command), result.stdout, result.stderr))
    line = next(line for line in result.stdout.splitlines() if line.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def measure(steps=12, bucket_cap_mb=1.0):
    """Both configurations: (1 process x 2 threads, 2 processes x 1 thread) result dicts."""
    try:
        import mpi4py  # noqa: F401  (without it each mpirun rank would run alone, as a world of 1)
        found = shutil.which("mpirun") is not None
    except ImportError:
        found = False
    if not found:
        raise RuntimeError("bench_distributed: needs mpirun and mpi4py (apt-get install openmpi-bin "
                           "libopenmpi-dev; pip install '.[mpi]')")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    environment = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    worker = [sys.executable, "-m", "benchmarks.bench_distributed", "--worker", "--steps", str(steps),
              "--bucket-cap-mb", str(bucket_cap_mb)]
    single = _launch(worker + ["--threads", "2"], dict(environment, OMP_NUM_THREADS="2"))
    double = _launch(["mpirun", "--allow-run-as-root", "--oversubscribe", "-n", "2", "--bind-to", "none"]
                     + worker + ["--threads", "1"], dict(environment, OMP_NUM_THREADS="1"))
    return single, double


def run(quick=False):
    """Rows for ``python -m benchmarks --only distributed`` (not in the default run: it
    launches mpirun)."""
    single, double = measure(steps=3 if quick else 12)
    rows = []
    for result in (single, double):
        rows.append(dict(benchmark="distributed_cnn_step", case="seed CNN, global batch %d, %d process(es) x %d "
                         "thread(s)" % (GLOBAL_BATCH, result["processes"], result["threads"]),
                         impl="autograd_core", seconds=result["step_seconds"], cpu_seconds=float("nan"),
                         note="epoch (600 steps) extrapolated: %.0f s" % (600 * result["step_seconds"])))
    rows.append(dict(benchmark="distributed_allreduce", case="13.1 MB gradient, 2 processes, blocking",
                     impl="autograd_core", seconds=double["allreduce_seconds"], cpu_seconds=float("nan"),
                     note="waited %.1f ms per step: %.0f%% hidden by overlap"
                     % (1e3 * double["waited_seconds"], 100 * double["hidden_fraction"])))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=12, help="timed steps per configuration (default 12)")
    parser.add_argument("--bucket-cap-mb", type=float, default=1.0,
                        help="DistributedDataParallel's bucket size (default 1: the 12.8 MB dense weight is a bucket "
                             "of its own, started before the convolutions' backward; 25, torch's default, makes "
                             "one bucket of this model's 13.1 MB, started only at the end)")
    parser.add_argument("--out", help="also write the results as JSON here")
    args = parser.parse_args(argv)
    if args.worker:
        _worker(args.steps, args.threads, args.bucket_cap_mb)
        return 0
    try:
        single, double = measure(args.steps, args.bucket_cap_mb)
    except RuntimeError as error:
        print(error, file=sys.stderr)
        return 1
    steps_per_epoch = EPOCH_EXAMPLES // GLOBAL_BATCH
    print("seed CNN, global batch %d, %d timed steps (medians); epoch = %d steps, extrapolated"
          % (GLOBAL_BATCH, args.steps, steps_per_epoch))
    for result in (single, double):
        print("  %d process(es) x %d thread(s): step %.1f ms, epoch %.0f s"
              % (result["processes"], result["threads"], 1e3 * result["step_seconds"],
                 result["step_seconds"] * steps_per_epoch))
    print("  2 processes: gradient %.1f MB in %d bucket(s); allreduce alone %.2f ms/step, waited at the end "
          "of backward %.2f ms/step: %.0f%% hidden by overlap"
          % (double["gradient_bytes"] / 1e6, double["buckets"], 1e3 * double["allreduce_seconds"],
             1e3 * double["waited_seconds"], 100 * double["hidden_fraction"]))
    print("  compute per example at 1 thread (local step, no communication): %.2f ms"
          % (1e3 * double["compute_seconds_per_example"]))
    print("model on paper (ring allreduce; per machine: the measured 1-thread compute per example):")
    for label, bandwidth, latency in (("10 Gbit/s Ethernet, 50 us", 1.25e9, 50e-6),
                                      ("100 Gbit/s InfiniBand, 2 us", 12.5e9, 2e-6)):
        for machines in (1, 8, 64):
            for name, per_machine in (("global batch 100", None), ("100 per machine", 100)):
                exposed, overlapped, rate, speedup = model_on_paper(
                    double["compute_seconds_per_example"], double["gradient_bytes"], machines, bandwidth, latency,
                    batch_per_machine=per_machine)
                print("  %-28s P=%-3d %-17s step %7.1f ms (overlapped %7.1f ms), %8.0f examples/s, "
                      "speed-up %5.1f" % (label, machines, name, 1e3 * exposed, 1e3 * overlapped, rate, speedup))
    if args.out:
        with open(args.out, "w") as stream:
            json.dump({"single": single, "distributed": double}, stream, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
