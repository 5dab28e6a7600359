"""Peak resident memory of training and predicting from image paths, at two data-set sizes.

Usage: python benchmarks/bench_memory.py [--sizes 2000 20000] [--image-size 32]
       [--backbone small_cnn] [--modes stream disk] [--epochs 1] [--batch-size 64]
       [--workers 0] [--keep-images DIR]
Writes benchmarks/results/bench_memory.json.

``max(sizes)`` small PNG images are written to a temporary folder. For every mode and size
a fresh Python process then trains ``CorrLossAUClassifier`` (``weights=None``, the
backbone's paper freeze point) on the first N paths for ``--epochs`` epochs and predicts
all N, and reports its peak resident set size (``ru_maxrss``) and its resident size after
the imports and the network are ready (the baseline; most of it is PyTorch itself).
Modes:

* ``stream``: ``feature_cache=False``; images are decoded batch by batch.
* ``disk``: ``feature_cache=True, cache_dir=<fresh folder>``; trunk features are written
  to ``.npy`` files once and read back row by row.
* ``memory``: ``feature_cache=True`` in memory; grows with N by design (features are kept),
  bounded by ``FEATURE_CACHE.max_memory``; shown for comparison, not part of the goal.

Goal: peak RSS at the largest size at most 1.3 times that at the smallest, per mode
(``stream`` and ``disk``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np


def _rss_bytes() -> int:
    """Current resident set size of this process (Linux /proc; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _peak_rss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # Linux reports KiB


def write_images(folder: Path, n: int, size: int) -> list[str]:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        path = folder / f"img_{i:06d}.png"
        cv2.imwrite(str(path), rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8))
        paths.append(str(path))
    return paths


def child(args) -> None:
    """Train and predict in this process; print one JSON line with the memory figures."""
    import torch

    from sklearn_corrloss.classifier import CorrLossAUClassifier

    torch.set_num_threads(1)
    paths = sorted(str(p) for p in Path(args.image_dir).glob("img_*.png"))[: args.n]
    if len(paths) < args.n:
        raise SystemExit(f"{args.image_dir} holds {len(paths)} images, fewer than {args.n}.")
    rng = np.random.default_rng(1)
    Y = (rng.random((args.n, 4)) < 0.4).astype(np.float32)
    cache = {
        "stream": {"feature_cache": False},
        "disk": {"feature_cache": True, "cache_dir": args.cache_dir},
        "memory": {"feature_cache": True},
    }[args.mode]
    clf = CorrLossAUClassifier(
        backbone=args.backbone,
        weights=None,
        image_size=args.image_size,
        hidden_units=32,
        lr=1e-3,
        max_epochs=args.epochs,
        batch_size=args.batch_size,
        iterator_train__num_workers=args.workers,
        iterator_valid__num_workers=args.workers,
        random_state=0,
        **cache,
    )
    clf.set_params(max_epochs=0).fit(paths[:8], Y[:8])  # imports, network, optimizer ready
    baseline = _rss_bytes()
    start = time.perf_counter()
    clf.set_params(max_epochs=args.epochs).fit(paths, Y)
    proba = clf.predict_proba(paths)
    seconds = time.perf_counter() - start
    assert proba.shape == (args.n, 4)
    print(
        json.dumps(
            {
                "n_images": args.n,
                "mode": args.mode,
                "baseline_rss_bytes": baseline,
                "peak_rss_bytes": _peak_rss_bytes(),
                "seconds": seconds,
                "cache_info": clf.cache_info_,
            }
        )
    )


def run_child(mode: str, n: int, image_dir: Path, work: Path, args) -> dict:
    command = [
        sys.executable,
        __file__,
        "--child",
        "--mode",
        mode,
        "--n",
        str(n),
        "--image-dir",
        str(image_dir),
        "--cache-dir",
        str(work / f"cache-{mode}-{n}"),
        "--image-size",
        str(args.image_size),
        "--backbone",
        args.backbone,
        "--epochs",
        str(args.epochs),
        "--batch-size",
        str(args.batch_size),
        "--workers",
        str(args.workers),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{mode} at {n} images failed:\n{done.stderr[-3000:]}")
    row = json.loads(done.stdout.strip().splitlines()[-1])
    row["growth_bytes"] = row["peak_rss_bytes"] - row["baseline_rss_bytes"]
    print(
        f"{mode:>6} {n:>7} images: peak RSS {row['peak_rss_bytes'] / 2**20:7.1f} MiB "
        f"(baseline {row['baseline_rss_bytes'] / 2**20:.1f} MiB, growth "
        f"{row['growth_bytes'] / 2**20:.1f} MiB), {row['seconds']:.1f} s"
    )
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 20000])
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--backbone", default="small_cnn")
    parser.add_argument(
        "--modes", nargs="+", choices=["stream", "disk", "memory"], default=["stream", "disk"]
    )
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers")
    parser.add_argument("--keep-images", default=None, help="write the images here and keep them")
    parser.add_argument(
        "--output", default=str(Path(__file__).parent / "results" / "bench_memory.json")
    )
    # Internal: one measurement in a fresh process.
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="stream", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--image-dir", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--cache-dir", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args)
        return

    sizes = sorted(args.sizes)
    with tempfile.TemporaryDirectory(prefix="bench_memory_") as tmp:
        work = Path(tmp)
        image_dir = Path(args.keep_images) if args.keep_images else work / "images"
        image_dir.mkdir(parents=True, exist_ok=True)
        existing = len(list(image_dir.glob("img_*.png")))
        if existing < sizes[-1]:
            start = time.perf_counter()
            write_images(image_dir, sizes[-1], args.image_size)
            print(f"wrote {sizes[-1]} images in {time.perf_counter() - start:.1f} s")
        rows = [run_child(mode, n, image_dir, work, args) for mode in args.modes for n in sizes]
    ratios = {}
    for mode in args.modes:
        peaks = {r["n_images"]: r["peak_rss_bytes"] for r in rows if r["mode"] == mode}
        ratios[mode] = peaks[sizes[-1]] / peaks[sizes[0]]
        print(f"{mode}: peak RSS at {sizes[-1]} / at {sizes[0]} images = {ratios[mode]:.3f}")
    goal_modes = [m for m in args.modes if m != "memory"]
    growth = {
        mode: {r["n_images"]: r["growth_bytes"] for r in rows if r["mode"] == mode}
        for mode in args.modes
    }
    result = {
        "rows": rows,
        "growth_above_baseline_bytes": growth,
        "peak_ratio_largest_to_smallest": ratios,
        "within_1.3": {m: ratios[m] <= 1.3 for m in goal_modes},
    }
    import torch

    meta = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "sizes": sizes,
        "image_size": args.image_size,
        "backbone": args.backbone,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "workers": args.workers,
        "threads_per_child": 1,
    }
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps({"benchmark": "bench_memory", "meta": meta, "result": result}, indent=2)
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
