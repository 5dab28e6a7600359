"""A rho search sequentially, with joblib processes, on a local Dask cluster, and resumed.

Usage: python benchmarks/bench_dask.py [--workers 2] [--rhos 0 0.2 0.4 0.6] [--folds 3]
       [--subjects 16] [--frames 60] [--image-size 64] [--epochs 5]
Writes benchmarks/results/bench_dask.json.

One ``search_rho`` of ``CorrLossAUClassifier(backbone="small_cnn")`` on synthetic faces, run
four ways in one process, each with one thread per fit (``OMP_NUM_THREADS=1``):

* ``sequential``: ``n_jobs=1``;
* ``joblib``: ``n_jobs=--workers`` (loky worker processes);
* ``dask_trim``: ``scheduler=`` a ``LocalCluster`` of ``--workers`` single-threaded worker
  processes (started before the clock starts) with distributed's default worker
  environment, which sets ``MALLOC_TRIM_THRESHOLD_=65536``;
* ``dask``: the same with that variable unset (``docs/scaling.md``), and ``results_dir``;
* ``resumed``: the Dask run again into the same ``results_dir``: every fit is loaded.

The trunk feature cache is off by default: in one process it is shared by all fits, so
the sequential run would compute the trunk once while every worker process computes it
again, which measures the cache rather than the parallelism (``--feature-cache`` turns it
on). The Dask workers import the package before the clock starts, as on a long-lived
cluster; the joblib run's worker start-up is timed, as it happens on every call.

Reports wall times, the speed-ups over ``sequential`` and whether the score tables are
identical. On a machine with W free cores the parallel runs should approach W times faster;
a resumed run costs only the data hashing and the file reads.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch is imported: one thread per fit

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import dask.config
import pandas as pd
from distributed import Client, LocalCluster

from sklearn_corrloss import CorrLossAUClassifier, make_au_faces, search_rho
from sklearn_corrloss.parallel import DASK_WORKER_CONFIG

PARALLEL = ("joblib", "dask", "resumed", "dask_trim")


def _warm_up() -> None:
    import sklearn_corrloss.classifier  # noqa: F401 (imports torch, skorch, torchvision)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rhos", type=float, nargs="+", default=[0.0, 0.2, 0.4, 0.6])
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--subjects", type=int, default=16)
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument(
        "--feature-cache",
        action="store_true",
        help="use the in-memory trunk feature cache (off by default: see the docstring)",
    )
    args = parser.parse_args()

    faces = make_au_faces(
        n_subjects=args.subjects, n_frames=args.frames, image_size=args.image_size, random_state=0
    )
    net = CorrLossAUClassifier(
        backbone="small_cnn",
        weights=None,
        image_size=args.image_size,
        max_epochs=args.epochs,
        batch_size=64,
        lr=1e-3,
        feature_cache="auto" if args.feature_cache else False,
    )
    data = (faces.images, faces.labels, faces.subjects)
    common = dict(rhos=args.rhos, cv=args.folds, random_state=0)
    n_fits = len(args.rhos) * args.folds
    print(
        f"{n_fits} fits of {len(faces.images)} images ({args.image_size} px), {args.epochs} epochs"
    )

    def timed(name, **kwargs):
        start = time.perf_counter()
        result = search_rho(net, *data, **common, **kwargs)
        seconds = time.perf_counter() - start
        print(f"{name:>10}: {seconds:7.1f} s")
        return seconds, result

    times, results = {}, {}
    times["sequential"], results["sequential"] = timed("sequential", n_jobs=1)
    times["joblib"], results["joblib"] = timed("joblib", n_jobs=args.workers)
    with tempfile.TemporaryDirectory() as fits:
        # DASK_WORKER_CONFIG unsets MALLOC_TRIM_THRESHOLD_; distributed's default sets it.
        # The default run goes last: a LocalCluster's nanny also sets the variable in this
        # process's environment, where later worker processes would inherit it.
        default = {key: 65536 for key in DASK_WORKER_CONFIG}
        for name, setting in (("dask", DASK_WORKER_CONFIG), ("dask_trim", default)):
            with (
                dask.config.set(setting),
                LocalCluster(
                    n_workers=args.workers,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                ) as cluster,
                Client(cluster) as client,
            ):
                client.wait_for_workers(args.workers)
                client.run(_warm_up)  # a long-lived cluster has imported torch long ago
                store = {"results_dir": fits} if name == "dask" else {}
                times[name], results[name] = timed(name, scheduler=client, **store)
                if name == "dask":
                    times["resumed"], results["resumed"] = timed(
                        "resumed", scheduler=client, results_dir=fits
                    )
        n_stored = len(list(Path(fits).glob("*.json")))

    identical = {}
    for name in PARALLEL:
        try:
            pd.testing.assert_frame_equal(
                results["sequential"].scores, results[name].scores, check_exact=True
            )
            identical[name] = True
        except AssertionError:
            identical[name] = False
    speedup = {name: times["sequential"] / times[name] for name in PARALLEL}
    for name, value in speedup.items():
        print(f"speed-up {name:>8}: {value:5.2f}x  identical scores: {identical[name]}")

    output = {
        "settings": vars(args),
        "n_fits": n_fits,
        "n_stored_fits": n_stored,
        "seconds": times,
        "speedup_over_sequential": speedup,
        "scores_identical_to_sequential": identical,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
    }
    path = Path(__file__).parent / "results" / "bench_dask.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(output, indent=2))
    print(f"Wrote {path}")


if __name__ == "__main__":
    main()
