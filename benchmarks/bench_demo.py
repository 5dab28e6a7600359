"""Wall and CPU time of `corrloss demo --quick` (goal: at most 5 minutes on 2 CPU cores).

Usage: python benchmarks/bench_demo.py [--full] [--n-jobs -1] [--output DIR] [--seed 0]
Writes benchmarks/results/bench_demo.json.

Runs the demo in-process exactly as the command does (same settings, same parallelism) into
a temporary folder unless --output is given, and records its wall time, the CPU time of this
process and of the joblib worker processes (so a run on a busy machine can be told from a
slow one), the demo's own up-front estimate, and its summary table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

import torch

from sklearn_corrloss.report import FULL, QUICK, run_demo


def cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="time the full demo instead")
    parser.add_argument("--n-jobs", type=int, default=-1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, help="report folder (default: a temp folder)")
    args = parser.parse_args()

    messages = []
    with tempfile.TemporaryDirectory() as folder:
        output = args.output or Path(folder) / "demo"
        start_wall, start_cpu = time.perf_counter(), cpu_seconds()
        result = run_demo(
            output,
            quick=not args.full,
            n_jobs=args.n_jobs,
            random_state=args.seed,
            progress=False,
            echo=messages.append,
        )
        wall = time.perf_counter() - start_wall
        # joblib's worker processes are only counted once they have exited.
        from joblib.externals.loky import get_reusable_executor

        get_reusable_executor().shutdown(wait=True)
        cpu = cpu_seconds() - start_cpu
    settings = FULL if args.full else QUICK
    record = {
        "benchmark": "bench_demo",
        "meta": {
            "command": "corrloss demo" + ("" if args.full else " --quick"),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "cpu_count": os.cpu_count(),
            "load_average_1min_at_end": os.getloadavg()[0],
            "n_jobs": args.n_jobs,
            "n_fits": settings.n_fits(),
        },
        "result": {
            "wall_seconds": round(wall, 1),
            "cpu_seconds": round(cpu, 1),
            "goal_seconds": 300 if not args.full else None,
            "estimate_message": messages[0] if messages else None,
            "rho": result.rho,
            "summary": result.summary.to_dict(orient="records"),
        },
    }
    print(f"demo{'' if args.full else ' --quick'}: {wall:.0f} s wall, {cpu:.0f} s CPU "
          f"(load average {record['meta']['load_average_1min_at_end']:.1f})")  # fmt: skip
    print(messages[0] if messages else "")
    path = Path(__file__).parent / "results" / "bench_demo.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(record, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
