"""MultiLabelBalancer against no balancing and ML-ROS on yeast; run time on a BP4D-sized matrix.

Usage: python benchmarks/bench_balancer.py [--n-samples 150000] [--n-labels 12]
       [--max-iter 4000] [--repeats 3] [--ml-ros-seeds 5] [--seed 0] [--output PATH.json]

Part 1 (quality): the MULAN yeast label matrix shipped with ``river`` (2,417 x 14). For no
balancing, ``MultiLabelBalancer`` (both objectives) and ML-ROS (Charte et al. 2015) at the
same output size, it prints MeanIR, MaxIR, CVIR, SCUMBLE and the output size. ML-ROS as
published stops once every minority label's IRLbl falls to the initial MeanIR; on yeast that
happens at 2,754 rows, so to reach the balancer's size it then re-selects the minority labels
(IRLbl > current MeanIR) and continues. Its stopping version is reported as well.

Part 2 (speed): a synthetic BP4D-sized label matrix (12 AUs with BP4D-like base rates and
co-occurrence from a Gaussian copula, 1% unknown labels), balanced with the paper's settings
(4,000 iterations, n_u = 6, lambda = 1e-5) on one thread; median wall-clock and CPU time of
``--repeats`` runs (CPU time is the fairer number on a shared machine).

Writes benchmarks/results/bench_balancer.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import numpy as np
from scipy.stats import norm
from threadpoolctl import threadpool_limits

from sklearn_corrloss.balancing import MultiLabelBalancer
from sklearn_corrloss.imbalance import imbalance_measures

# BP4D occurrence rates of AU 1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24 (FERA 2015 training
# partition, rounded); the skew is made stronger by halving the rarest ones.
AU_NAMES = [f"AU{n:02d}" for n in (1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24)]
BASE_RATES = np.array([0.21, 0.17, 0.20, 0.46, 0.55, 0.59, 0.56, 0.47, 0.08, 0.34, 0.08, 0.06])
CLUSTERS = [(0, 1), (3, 4, 5, 6, 7), (8, 9, 10, 11)]  # brow raise; smile; chin/lip press


def yeast_labels() -> np.ndarray:
    """The yeast label matrix from river's bundled CSV (no download)."""
    from river.datasets import Yeast

    return np.array([[float(v) for v in labels.values()] for _, labels in Yeast()])


def bp4d_like_labels(n_samples: int, n_labels: int, seed: int) -> np.ndarray:
    """Correlated binary labels with BP4D-like skew (Gaussian copula), 1% unknown."""
    rng = np.random.default_rng(seed)
    rates = np.resize(BASE_RATES, n_labels)
    corr = np.full((n_labels, n_labels), 0.05)
    for cluster in CLUSTERS:
        members = [i for i in cluster if i < n_labels]
        corr[np.ix_(members, members)] = 0.6
    np.fill_diagonal(corr, 1.0)
    latent = rng.multivariate_normal(np.zeros(n_labels), corr, size=n_samples)
    labels = (latent > norm.ppf(1 - rates)).astype(np.float64)
    labels[rng.random(labels.shape) < 0.01] = np.nan
    return labels


def ml_ros_indices(Y: np.ndarray, n_output: int, seed: int, *, continue_: bool = True):
    """Multi-label random oversampling (Charte et al. 2015, ML-ROS) up to ``n_output`` rows.

    Clones a random sample of each minority label (IRLbl > MeanIR) in turn; a label leaves
    the minority bag once its IRLbl falls to the MeanIR the round started with. With
    ``continue_``, an emptied bag is refilled from the current IRLbl and MeanIR until the
    output size is reached (the published algorithm stops).
    """
    rng = np.random.default_rng(seed)
    positive = Y == 1
    counts = positive.sum(axis=0).astype(np.float64)
    bags = [np.flatnonzero(positive[:, k]) for k in range(Y.shape[1])]
    indices = list(range(len(Y)))
    while len(indices) < n_output:
        ratio = counts.max() / counts
        mean_ir = ratio[np.isfinite(ratio)].mean()
        minority = [k for k in range(Y.shape[1]) if np.isfinite(ratio[k]) and ratio[k] > mean_ir]
        if not minority:
            break
        while minority and len(indices) < n_output:
            for label in list(minority):
                if len(indices) >= n_output:
                    break
                clone = int(bags[label][rng.integers(len(bags[label]))])
                indices.append(clone)
                counts += positive[clone]
                if counts.max() / counts[label] <= mean_ir:
                    minority.remove(label)
        if not continue_:
            break
    return np.asarray(indices)


def row(name, Y_out, **extra):
    measures = imbalance_measures(Y_out)
    return {"method": name, "n_output": len(Y_out), **measures.round(4).to_dict(), **extra}


def yeast_quality(max_iter: int, ml_ros_seeds: int, seed: int):
    Y = yeast_labels()
    rows = [row("none", Y)]
    for objective in ("log_spread", "cv2"):
        balancer = MultiLabelBalancer(max_iter=max_iter, objective=objective, random_state=seed)
        _, Y_out = balancer.fit_resample(np.arange(len(Y)), Y)
        rows.append(row(f"MultiLabelBalancer({objective})", Y_out, n_iter=balancer.n_iter_))
        ros = [row("", Y[ml_ros_indices(Y, len(Y_out), s)]) for s in range(ml_ros_seeds)]
        rows.append(
            {
                "method": f"ML-ROS (same size as {objective}, mean of {ml_ros_seeds} seeds)",
                "n_output": ros[0]["n_output"],
                **{
                    key: round(statistics.mean(r[key] for r in ros), 4)
                    for key in ("MeanIR", "MaxIR", "CVIR", "SCUMBLE")
                },
                "max_copies_of_one_sample": int(
                    np.bincount(ml_ros_indices(Y, len(Y_out), 0)).max()
                ),
            }
        )
    stop = ml_ros_indices(Y, 10 * len(Y), seed, continue_=False)
    rows.append(row("ML-ROS (published stopping rule)", Y[stop]))
    return rows


def bp4d_speed(n_samples: int, n_labels: int, max_iter: int, repeats: int, seed: int):
    Y = bp4d_like_labels(n_samples, n_labels, seed)
    X = np.arange(n_samples)
    times, cpu_times = [], []
    with threadpool_limits(limits=1):
        for _ in range(repeats):
            balancer = MultiLabelBalancer(max_iter=max_iter, random_state=seed)
            start, cpu_start = time.perf_counter(), time.process_time()
            _, Y_out = balancer.fit_resample(X, Y)
            times.append(time.perf_counter() - start)
            cpu_times.append(time.process_time() - cpu_start)
    return {
        "n_samples": n_samples,
        "n_labels": n_labels,
        "max_iter": max_iter,
        "n_groups": len(balancer.group_copies_),
        "n_iter": balancer.n_iter_,
        "n_output": len(Y_out),
        "seconds_median": statistics.median(times),
        "seconds_all": times,
        "cpu_seconds_median": statistics.median(cpu_times),
        "before": balancer.imbalance_before_.round(4).to_dict(),
        "after": balancer.imbalance_after_.round(4).to_dict(),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-samples", type=int, default=150_000)
    parser.add_argument("--n-labels", type=int, default=12)
    parser.add_argument("--max-iter", type=int, default=4000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ml-ros-seeds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--output", default=str(Path(__file__).parent / "results" / "bench_balancer.json")
    )
    args = parser.parse_args(argv)

    quality = yeast_quality(args.max_iter, args.ml_ros_seeds, args.seed)
    print(f"{'method':<52} {'rows':>6} {'MeanIR':>7} {'MaxIR':>7} {'CVIR':>6} {'SCUMBLE':>7}")
    for r in quality:
        print(
            f"{r['method']:<52} {r['n_output']:>6} {r['MeanIR']:>7.3f} {r['MaxIR']:>7.2f} "
            f"{r['CVIR']:>6.3f} {r['SCUMBLE']:>7.4f}"
        )
    ours, ros = quality[1], quality[2]
    checks = {
        "meanir_ratio_to_unbalanced": round(ours["MeanIR"] / quality[0]["MeanIR"], 4),
        "meanir_at_most_0.6_of_unbalanced": ours["MeanIR"] <= 0.6 * quality[0]["MeanIR"],
        "meanir_below_ml_ros_same_size": ours["MeanIR"] < ros["MeanIR"],
    }
    print(f"yeast checks: {checks}")

    speed = bp4d_speed(args.n_samples, args.n_labels, args.max_iter, args.repeats, args.seed)
    checks["bp4d_sized_at_most_2s"] = speed["seconds_median"] <= 2.0
    print(
        f"BP4D-sized {speed['n_samples']} x {speed['n_labels']} ({speed['n_groups']} groups, "
        f"max_iter={speed['max_iter']}, one thread): median {speed['seconds_median']:.3f} s "
        f"wall, {speed['cpu_seconds_median']:.3f} s CPU over {args.repeats} runs, "
        f"{speed['n_iter']} L-BFGS-B iterations, "
        f"{speed['n_output']} output rows; MeanIR {speed['before']['MeanIR']:.3f} -> "
        f"{speed['after']['MeanIR']:.3f}"
    )

    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"python": platform.python_version(), "numpy": np.__version__, "threads": 1}
    result = {
        "benchmark": "bench_balancer",
        "meta": meta,
        "args": vars(args),
        "yeast": quality,
        "bp4d_sized": speed,
        "checks": checks,
    }
    out.write_text(json.dumps(result, indent=2, default=float))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
