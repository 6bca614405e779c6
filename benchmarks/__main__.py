"""One entry point for every benchmark module (benchmarks/bench_<name>.py).

    python -m benchmarks [--quick] [--only gemm,conv] [--out DIR]

Prints one table and writes <out>/<name>.json per module:
    {"environment": {...}, "results": [rows from run(quick)]}
The default <out> is a new folder, benchmarks/results/<UTC time>/, so a run never
overwrites the committed reference results in benchmarks/results/*.json.
"""
import argparse
import importlib
import json
import os
import pkgutil
import platform
import sys
import time
import traceback

import numpy as np

import benchmarks


# The committed reference results; each run writes a new folder inside it.
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


# Modules that launch their own processes (mpirun): only with --only NAME.
NOT_BY_DEFAULT = ("distributed",)


def discover():
    """Names <name> of the modules benchmarks/bench_<name>.py, sorted."""
    return sorted(info.name[len("bench_"):] for info in pkgutil.iter_modules(benchmarks.__path__)
                  if info.name.startswith("bench_"))


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment():
    """What the numbers depend on: CPU, threads, SIMD path, numpy's BLAS, torch."""
    from autograd_core import kernels
    env = {
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "extension": kernels.extension_available(),
        "threads": kernels.get_num_threads(),
        "simd_level": "%d (%s)" % (kernels.get_simd_level(), kernels.SIMD_LEVELS[kernels.get_simd_level()]),
        "numpy": np.__version__,
        # OpenBLAS reads these when numpy loads; set, they can pin a slower kernel.
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
        "OPENBLAS_L2_SIZE": os.environ.get("OPENBLAS_L2_SIZE"),
        # autograd_core lets its waiting OpenMP threads spin only briefly (GOMP_SPINCOUNT
        # 10000) unless either variable is set (see autograd_core/kernels/runtime.py)
        "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"),
        "GOMP_SPINCOUNT": os.environ.get("GOMP_SPINCOUNT", "unset (autograd_core: 10000 unless OMP_WAIT_POLICY is set)"),
        # Other processes on the machine: the figures only compare within one run.
        "load_average_1_5_15_min": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "numpy_blas": None,
        "torch": None,
    }
    try:
        import threadpoolctl
        env["numpy_blas"] = [
            {key: pool.get(key) for key in ("internal_api", "version", "architecture", "num_threads",
                                            "threading_layer", "filepath")}
            for pool in threadpoolctl.threadpool_info() if pool.get("user_api") == "blas"]
    except ImportError:
        env["numpy_blas"] = "threadpoolctl not installed"
    try:
        import torch
        env["torch"] = torch.__version__
    except ImportError:
        pass
    return env


def _format_table(rows):
    header = ("benchmark", "case", "impl", "ms", "CPU ms", "GFLOP/s", "MiB", "note")

    def figure(row, key, scale, form):
        value = row.get(key)
        return form % (value * scale) if value is not None and value == value else ""

    lines = [(r["benchmark"], str(r["case"]), r["impl"], figure(r, "seconds", 1e3, "%.3f"),
              figure(r, "cpu_seconds", 1e3, "%.3f"), figure(r, "gflops", 1, "%.1f"),
              figure(r, "peak_mib", 1, "%.0f"), r.get("note", "") or "") for r in rows]
    widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h) for i, h in enumerate(header)]
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths)),
           "  ".join("-" * w for w in widths)]
    out += ["  ".join(cell.ljust(w) for cell, w in zip(line, widths)) for line in lines]
    return "\n".join(out)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer sizes and repeats")
    parser.add_argument("--only", default="", help="comma-separated names, e.g. gemm,conv (available: %s)"
                        % ", ".join(discover()))
    parser.add_argument("--simd", choices=("avx512", "avx2", "portable"),
                        help="force the C kernels' SIMD path (default: the best the CPU has), e.g. to "
                        "report the AVX2 dispatch on an AVX-512 machine")
    parser.add_argument("--out", help="folder for the JSON results (default: a new folder "
                        "benchmarks/results/<UTC time>/, never the committed results)")
    args = parser.parse_args(argv)

    names = discover()
    default = [name for name in names if name not in NOT_BY_DEFAULT]
    if args.only:
        wanted = [name.strip() for name in args.only.split(",") if name.strip()]
        unknown = [name for name in wanted if name not in names]
        if unknown:
            parser.error("--only: got %s, expected names from %s" % (", ".join(unknown), ", ".join(names)))
        names = wanted
    else:
        names = default

    if args.simd is not None:
        from autograd_core import kernels
        wanted = {"portable": 0, "avx2": 1, "avx512": 2}[args.simd]
        try:
            kernels.set_simd_level(wanted)
        except ValueError:
            parser.error("--simd %s: this CPU supports only up to %s"
                         % (args.simd, kernels.SIMD_LEVELS[kernels.cpu_simd_level()]))
    if args.out is None:
        args.out = os.path.join(RESULTS, time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))
    env = environment()
    print("environment: " + json.dumps(env, indent=None, default=str))
    if env["OPENBLAS_CORETYPE"] or env["OPENBLAS_L2_SIZE"]:
        print("note: OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE are set; numpy's BLAS may not be running its "
              "best kernel (see benchmarks/README.md)")
    os.makedirs(args.out, exist_ok=True)
    all_rows, failed = [], []
    for name in names:
        print("running bench_%s%s ..." % (name, " (quick)" if args.quick else ""), flush=True)
        try:
            module = importlib.import_module("benchmarks.bench_%s" % name)
            rows = module.run(quick=args.quick)
        except Exception:  # one broken benchmark should not hide the others' numbers
            traceback.print_exc()
            failed.append(name)
            continue
        all_rows.extend(rows)
        path = os.path.join(args.out, "%s.json" % name)
        with open(path, "w") as f:
            json.dump({"environment": env, "quick": args.quick, "results": rows}, f, indent=1, default=str)
    print()
    print(_format_table(all_rows))
    print("\nJSON written to %s" % args.out)
    if failed:
        print("failed: %s" % ", ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
