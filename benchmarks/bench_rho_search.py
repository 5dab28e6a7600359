"""Rho search (7 values x 5 subject-wise folds) with and without the frozen-trunk feature cache.

Usage: python benchmarks/bench_rho_search.py [--subjects 10] [--frames 2] [--image-size 224]
       [--epochs 2] [--batch-size 16] [--backbone vgg16] [--freeze paper] [--threads 1]
       [--rhos 0 0.15 0.3 0.45 0.6 0.8 1.0] [--folds 5] [--order cached-first]
Writes benchmarks/results/bench_rho_search.json.

The same ``GridSearchCV(CorrLossAUClassifier(backbone="vgg16", weights=None,
freeze="paper", random_state=0), {"rho": rhos}, cv=GroupKFold(5), scoring=macro F1)`` runs
twice in one process on synthetic 224 x 224 AU faces (``make_au_faces``): once with
``feature_cache=False`` (every epoch of every fit pushes every image through the frozen
trunk) and once with ``feature_cache="auto"`` (each image goes through the trunk once, in
the first fit; every other fit, epoch and prediction reuses its features). The in-memory
cache is emptied before the cached run, so its time includes computing the features.
The two searches proceed one rho at a time (the 5 fits of that rho) in ABBA order, so
that changes in the machine's load hit both alike; that is the same work as one search
over all rhos. Reported: wall and CPU time of both searches and their ratios (goal >= 10),
mean test macro F1 per rho of both (goal: equal within 0.01), the largest difference of
any (rho, fold) score, and how many images the trunk processed in the cached run.

VGG16 at 224 x 224 runs at about one image per second through the trunk on this shared
2-core machine, so the uncached search is the slow part: 35 fits x epochs x images. The
defaults (20 images, 2 epochs) keep it near 15-20 minutes; the ratio grows with more
epochs and images, towards the trunk-to-tail cost ratio of a training step (about 15-17
for VGG16 at block5_conv3 on a CPU).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.model_selection import GridSearchCV, GroupKFold

from sklearn_corrloss.classifier import CorrLossAUClassifier
from sklearn_corrloss.datasets.synthetic import make_au_faces
from sklearn_corrloss.feature_cache import FEATURE_CACHE, clear_feature_cache
from sklearn_corrloss.metrics import macro_f1_scorer


def make_data(args):
    data = make_au_faces(
        n_subjects=args.subjects,
        n_frames=args.frames,
        image_size=args.image_size,
        random_state=0,
    )
    labels = data.labels
    # The most frequent AUs: every test fold then holds positives of most of them.
    columns = labels.mean().sort_values(ascending=False).index[: args.labels]
    return data.images, labels[list(columns)], data.subjects


def make_estimator(mode, args):
    return CorrLossAUClassifier(
        backbone=args.backbone,
        weights=None,
        freeze=args.freeze,
        image_size=args.image_size,
        max_epochs=args.epochs,
        batch_size=args.batch_size,
        feature_cache="auto" if mode == "cached" else False,
        random_state=0,
    )


def search_one_rho(mode, rho, images, labels, subjects, args) -> dict:
    """GridSearchCV over [rho] with GroupKFold: the 5 fits one rho adds to a search."""
    search = GridSearchCV(
        make_estimator(mode, args),
        {"rho": [rho]},
        scoring=macro_f1_scorer,
        cv=GroupKFold(n_splits=args.folds),
        refit=False,
        error_score="raise",
    )
    wall, cpu = time.perf_counter(), time.process_time()
    search.fit(images, labels, groups=subjects)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    results = search.cv_results_
    scores = [float(results[f"split{k}_test_score"][0]) for k in range(args.folds)]
    print(f"rho={rho:<5} {mode:>8}: {wall:7.1f} s wall, {cpu:7.1f} s CPU")
    return {"rho": rho, "mode": mode, "wall_s": wall, "cpu_s": cpu, "fold_scores": scores}


def run_searches(images, labels, subjects, args) -> list[dict]:
    """Both searches, one rho at a time in ABBA order, so that changes in the load of
    the machine hit both alike; the cache is emptied once, before the first rho."""
    clear_feature_cache()
    rows = []
    for i, rho in enumerate(args.rhos):
        order = ("cached", "uncached") if i % 2 == 0 else ("uncached", "cached")
        if args.order == "uncached-first":
            order = order[::-1]
        rows += [search_one_rho(m, rho, images, labels, subjects, args) for m in order]
    return rows


def summarize(rows, mode, args) -> dict:
    mine = sorted((r for r in rows if r["mode"] == mode), key=lambda r: args.rhos.index(r["rho"]))
    scores = np.array([r["fold_scores"] for r in mine])  # (n_rhos, n_folds)
    return {
        "seconds": float(sum(r["wall_s"] for r in mine)),
        "cpu_seconds": float(sum(r["cpu_s"] for r in mine)),
        "mean_macro_f1": scores.mean(axis=1).tolist(),
        "split_scores": scores.tolist(),
        "per_rho_wall_seconds": [r["wall_s"] for r in mine],
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=10)
    parser.add_argument("--frames", type=int, default=2, help="images per subject")
    parser.add_argument("--labels", type=int, default=5, help="most frequent AUs kept")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--backbone", default="vgg16")
    parser.add_argument("--freeze", default="paper")
    parser.add_argument(
        "--rhos", type=float, nargs="+", default=[0.0, 0.15, 0.3, 0.45, 0.6, 0.8, 1.0]
    )
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument(
        "--order", choices=["cached-first", "uncached-first"], default="cached-first"
    )
    parser.add_argument(
        "--output", default=str(Path(__file__).parent / "results" / "bench_rho_search.json")
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    images, labels, subjects = make_data(args)
    print(
        f"{len(images)} images of {args.image_size}px, {labels.shape[1]} AUs, "
        f"{len(set(subjects))} subjects; {args.backbone} freeze={args.freeze}, "
        f"{args.epochs} epoch(s), {torch.get_num_threads()} thread(s)"
    )
    rows = run_searches(images, labels, subjects, args)
    runs = {mode: summarize(rows, mode, args) for mode in ("cached", "uncached")}
    cached, uncached = runs["cached"], runs["uncached"]
    ratio = uncached["seconds"] / cached["seconds"]
    cpu_ratio = uncached["cpu_seconds"] / cached["cpu_seconds"]
    f1_diff = float(
        np.max(np.abs(np.subtract(cached["mean_macro_f1"], uncached["mean_macro_f1"])))
    )
    split_diff = float(
        np.max(np.abs(np.subtract(cached["split_scores"], uncached["split_scores"])))
    )
    info = FEATURE_CACHE.info()
    trunk_images = int(info["n_images"].sum()) if len(info) else 0
    result = {
        "uncached_seconds": uncached["seconds"],
        "cached_seconds": cached["seconds"],
        "speedup": ratio,
        "uncached_cpu_seconds": uncached["cpu_seconds"],
        "cached_cpu_seconds": cached["cpu_seconds"],
        "cpu_time_speedup": cpu_ratio,
        "rhos": list(args.rhos),
        "uncached_mean_macro_f1": uncached["mean_macro_f1"],
        "cached_mean_macro_f1": cached["mean_macro_f1"],
        "max_mean_macro_f1_difference": f1_diff,
        "max_split_score_difference": split_diff,
        "cached_trunk_images": trunk_images,
        "uncached_trunk_image_passes_estimate": len(args.rhos)
        * args.folds
        * (args.epochs * len(images) * (args.folds - 1) // args.folds + len(images) // args.folds),
        "details": runs,
        "speedup_at_least_10": ratio >= 10,
        "macro_f1_equal_within_0.01": f1_diff <= 0.01,
    }
    print(
        f"uncached {uncached['seconds']:.1f} s, cached {cached['seconds']:.1f} s: "
        f"{ratio:.1f}x faster (CPU time {cpu_ratio:.1f}x); mean macro F1 per rho differs by "
        f"at most {f1_diff:.2g} (per fold {split_diff:.2g}); the cached run pushed "
        f"{trunk_images} images through the trunk"
    )
    meta = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "load_average_1_5_15_min": os.getloadavg(),
        "n_images": len(images),
        "image_size": args.image_size,
        "n_labels": int(labels.shape[1]),
        "n_subjects": len(set(subjects)),
        "backbone": args.backbone,
        "freeze": args.freeze,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "folds": args.folds,
        "order": "ABBA per rho" + (" (uncached first)" if args.order == "uncached-first" else ""),
    }
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps({"benchmark": "bench_rho_search", "meta": meta, "result": result}, indent=2)
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
