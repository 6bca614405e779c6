"""Benchmark: peak memory (max RSS) of the seed CNN's training step, batch 100, here and
in PyTorch, each in a fresh process of its own (max RSS only grows, so one process
cannot measure two libraries).

Each process imports its library, builds the network (bench_cnn.py's), records its RSS
(the baseline: interpreter, library, weights), runs STEPS training steps (forward,
cross-entropy, backward, Adam) and reports its peak RSS (VmHWM; not ru_maxrss, which
Linux carries over from the parent process). Rows give the peak in MiB and, in
the note, the peak above the baseline (what the steps themselves cost).

    python -m benchmarks.bench_memory [--quick]
"""
import json
import os
import subprocess
import sys

from benchmarks.timing import torch_or_none

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEPS = 5

_PROGRAM = r"""
import json, resource, sys
import numpy as np
sys.path.insert(0, {root!r})
from benchmarks import bench_cnn

library, steps = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(0)
images = rng.random((bench_cnn.BATCH, 28, 28, 1), dtype=np.float32)
labels = rng.integers(0, bench_cnn.CLASSES, bench_cnn.BATCH)
if library == "pytorch":
    import torch
    step = bench_cnn._torch(torch, images, labels)["train step"]
else:
    step = bench_cnn._ours(images, labels)["train step"]

def status_kib(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return None

baseline = status_kib("VmRSS")
for _ in range(steps):
    step()
# VmHWM is this process's own peak. ru_maxrss is not: Linux carries it over fork and
# execve, so a child of a big parent (python -m benchmarks after the GEMM runs) would
# report the parent's size.
peak = status_kib("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"baseline_kib": baseline or 0, "peak_kib": peak}}))
"""


def measure(library, steps=STEPS, threads=2):
    """{"baseline_kib", "peak_kib"} of `steps` training steps of `library` in a new process."""
    env = dict(os.environ, AUTOGRAD_CORE_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    completed = subprocess.run([sys.executable, "-c", _PROGRAM.format(root=ROOT), library, str(steps)],
                               capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    if completed.returncode != 0:
        raise RuntimeError("bench_memory: the %s process failed:\n%s" % (library, completed.stderr[-2000:]))
    return json.loads(completed.stdout.strip().splitlines()[-1])


def run(quick=False):
    """Peak RSS of each library's training steps; returns the result rows."""
    libraries = ["autograd_core"] + (["pytorch"] if torch_or_none() is not None else [])
    steps = 2 if quick else STEPS
    figures = {library: measure(library, steps) for library in libraries}
    rows = []
    for library, figure in figures.items():
        note = "peak %.0f MiB above the %.0f MiB after import and set-up; %d steps, 2 threads" % (
            (figure["peak_kib"] - figure["baseline_kib"]) / 1024, figure["baseline_kib"] / 1024, steps)
        if library == "autograd_core" and "pytorch" in figures:
            note += "; %.2fx PyTorch's peak" % (figure["peak_kib"] / figures["pytorch"]["peak_kib"])
        rows.append(dict(benchmark="cnn_train_step_peak_memory", case="seed CNN, batch 100, max RSS",
                         impl=library, seconds=float("nan"), peak_mib=figure["peak_kib"] / 1024, note=note))
    return rows


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print("%-36s %-14s %8.1f MiB  %s" % (row["case"], row["impl"], row["peak_mib"], row["note"]))
