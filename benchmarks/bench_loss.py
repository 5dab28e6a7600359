"""Time corr_loss (vectorised) against a per-pair Python-loop reference, forward + backward.

Usage: python benchmarks/bench_loss.py [--batch-size 64] [--labels 12 41] [--repeats 200]
Writes benchmarks/results/bench_loss.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from sklearn_corrloss import corr_loss


def per_pair_reference(y_prob: torch.Tensor, y_true: torch.Tensor) -> torch.Tensor:
    """Eq. 2 computed one pair at a time, as a straightforward implementation would."""
    n_labels = y_true.shape[1]
    total = y_prob.new_zeros(())
    n_pairs = 0
    for a in range(n_labels):
        for b in range(a + 1, n_labels):
            r = []
            for x in (y_true, y_prob):
                da, db = x[:, a] - x[:, a].mean(), x[:, b] - x[:, b].mean()
                denom = torch.sqrt((da * da).sum() * (db * db).sum())
                r.append((da * db).sum() / denom if denom > 0 else denom * 0)
            total = total + (r[0] - r[1]).abs()
            n_pairs += 1
    return total / n_pairs


def time_call(fn, y_prob_logits, y_true, repeats):
    times = []
    for _ in range(repeats):
        logits = y_prob_logits.clone().requires_grad_(True)
        start = time.perf_counter()
        fn(torch.sigmoid(logits), y_true).backward()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--labels", type=int, nargs="+", default=[12, 41])
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument(
        "--output", default=str(Path(__file__).parent / "results" / "bench_loss.json")
    )
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    results = []
    for n_labels in args.labels:
        logits = torch.randn(args.batch_size, n_labels)
        y_true = (torch.rand(args.batch_size, n_labels) < 0.3).float()
        loop_repeats = max(5, args.repeats // (n_labels // 4 + 1))
        vectorised = time_call(corr_loss, logits, y_true, args.repeats)
        reference = time_call(per_pair_reference, logits, y_true, loop_repeats)
        row = {
            "batch_size": args.batch_size,
            "n_labels": n_labels,
            "vectorised_ms": vectorised * 1e3,
            "per_pair_ms": reference * 1e3,
            "speedup": reference / vectorised,
        }
        results.append(row)
        print(
            f"B={args.batch_size} U={n_labels}: vectorised {row['vectorised_ms']:.3f} ms, "
            f"per-pair loop {row['per_pair_ms']:.2f} ms, speed-up {row['speedup']:.1f}x"
        )
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
    }
    out.write_text(
        json.dumps({"benchmark": "bench_loss", "meta": meta, "results": results}, indent=2)
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
