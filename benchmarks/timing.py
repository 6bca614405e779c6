"""Timing shared by the benchmarks: implementations measured in alternating blocks.

On a shared 2-core machine, and with two libraries in one process whose idle OpenMP
threads spin for a while after each call, timing one implementation after the other
would hand the second one the first's leftovers. So each implementation runs a block of
calls in turn, with a short pause between blocks, and each gets the median over all its
calls of wall time (time.perf_counter) and of the process's CPU time (time.process_time,
which other processes' load inflates less).
"""
import statistics
import time


def alternating_medians(functions, blocks, calls_per_block=1, warmup=2, pause=0.05):
    """{name: (median wall seconds, median CPU seconds)} of one call of each function.

    functions: {name: no-argument callable}; each runs `warmup` untimed calls first, then
    `blocks` blocks of `calls_per_block` timed calls, the names taking turns."""
    for function in functions.values():
        for _ in range(warmup):
            function()
    wall = {name: [] for name in functions}
    cpu = {name: [] for name in functions}
    for _ in range(blocks):
        for name, function in functions.items():
            time.sleep(pause)  # let the other library's spinning threads go to sleep
            for _ in range(calls_per_block):
                start_wall, start_cpu = time.perf_counter(), time.process_time()
                function()
                wall[name].append(time.perf_counter() - start_wall)
                cpu[name].append(time.process_time() - start_cpu)
    return {name: (statistics.median(wall[name]), statistics.median(cpu[name])) for name in functions}


def torch_or_none():
    """The torch module when it is importable (an optional reference), else None."""
    try:
        import torch
    except ImportError:
        return None
    return torch


def comparison_rows(benchmark, case, medians, reference="pytorch", ours="autograd_core", per=1, note=""):
    """Result rows for one case timed by alternating_medians: wall and CPU medians (divided
    by ``per``, e.g. the number of ops in a chain), and on our row the ratio to the
    reference's wall and CPU time when the reference ran."""
    rows = []
    for name, (wall, cpu) in medians.items():
        row_note = note
        if name == ours and reference in medians:
            ratio = "%.2fx %s's wall time, %.2fx its CPU time" % (
                wall / medians[reference][0], reference, cpu / max(medians[reference][1], 1e-12))
            row_note = "; ".join(part for part in (note, ratio) if part)
        rows.append(dict(benchmark=benchmark, case=case, impl=name, seconds=wall / per,
                         cpu_seconds=cpu / per, note=row_note))
    return rows


def thread_counts(quick, torch):
    """Yields 1 (and then 2, unless quick) with both libraries set to that many threads
    (torch may be None); our thread count is restored afterwards."""
    import autograd_core as ag

    previous = ag.get_num_threads()
    try:
        for threads in ((1,) if quick else (1, 2)):
            ag.set_num_threads(threads)
            if torch is not None:
                torch.set_num_threads(threads)
            yield threads
    finally:
        ag.set_num_threads(previous)
