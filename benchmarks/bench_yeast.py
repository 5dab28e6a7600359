"""Yeast (MULAN): CorrLossClassifier at several rho against scikit-learn baselines.

Usage: python benchmarks/bench_yeast.py [--rhos 0 0.1 0.3 0.5] [--seed 0] [--lrs 1e-3 1e-4]
Writes benchmarks/results/bench_yeast.json.

Data: river.datasets.Yeast (shipped with river, no download), MULAN's standard split:
the first 1,500 rows train, the last 917 test. Features are standardised on the
training rows. For every rho the CorrLossClassifier settings (learning rate and with it
the number of epochs, decision threshold) are chosen on a validation split of the
training rows (20 %, seeded); the chosen setting is then refitted on all 1,500 rows and
scored once on the test rows. Baselines run in the same process: MLPClassifier,
one-vs-rest LogisticRegression and ClassifierChain, with sklearn's 0.5 threshold and,
for a like-for-like comparison, with a threshold chosen on the same validation split.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings
from pathlib import Path

import numpy as np
import sklearn
import torch
from river.datasets import Yeast
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.multiclass import OneVsRestClassifier
from sklearn.multioutput import ClassifierChain
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

from sklearn_corrloss.classifier import CorrLossClassifier
from sklearn_corrloss.metrics import correlation_distance, macro_f1

THRESHOLDS = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5)
EPOCHS_FOR_LR = {1e-2: 30, 1e-3: 60, 1e-4: 300}


def load_yeast():
    rows = list(Yeast())
    X = np.array([list(x.values()) for x, _ in rows], dtype=np.float64)
    Y = np.array([[int(v) for v in y.values()] for _, y in rows])
    return X[:1500], Y[:1500], X[1500:], Y[1500:], list(rows[0][1])


def best_threshold(Y, proba):
    scores = {t: macro_f1(Y, proba > t) for t in THRESHOLDS}
    threshold = max(scores, key=scores.get)
    return threshold, scores[threshold]


def baselines(seed):
    return {
        "MLPClassifier": MLPClassifier(max_iter=500, random_state=seed),
        "OneVsRest(LogisticRegression)": OneVsRestClassifier(LogisticRegression(max_iter=2000)),
        "ClassifierChain(LogisticRegression)": ClassifierChain(
            LogisticRegression(max_iter=2000), random_state=seed
        ),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rhos", type=float, nargs="+", default=[0.0, 0.1, 0.3, 0.5])
    parser.add_argument("--lrs", type=float, nargs="+", default=[1e-3, 1e-4])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hidden-units", type=int, default=256)
    parser.add_argument("--dropout", type=float, default=0.5)
    parser.add_argument(
        "--output", default=str(Path(__file__).parent / "results" / "bench_yeast.json")
    )
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=ConvergenceWarning)

    X_train, Y_train, X_test, Y_test, labels = load_yeast()
    scaler = StandardScaler().fit(X_train)
    X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    X_fit, X_val, Y_fit, Y_val = train_test_split(
        X_train, Y_train, test_size=0.2, random_state=args.seed
    )
    print(
        f"yeast: {len(X_train)} train ({len(X_fit)} fit + {len(X_val)} validation), "
        f"{len(X_test)} test, {X_train.shape[1]} features, {len(labels)} labels"
    )

    baseline_rows = []
    for name, estimator in baselines(args.seed).items():
        start = time.perf_counter()
        threshold, val_f1 = best_threshold(
            Y_val, sklearn.clone(estimator).fit(X_fit, Y_fit).predict_proba(X_val)
        )
        estimator.fit(X_train, Y_train)
        proba = estimator.predict_proba(X_test)
        row = {
            "model": name,
            "test_macro_f1": macro_f1(Y_test, estimator.predict(X_test)),
            "test_macro_f1_tuned_threshold": macro_f1(Y_test, proba > threshold),
            "tuned_threshold": threshold,
            "valid_macro_f1_tuned_threshold": val_f1,
            "test_correlation_distance": correlation_distance(Y_test, proba),
            "seconds": time.perf_counter() - start,
        }
        baseline_rows.append(row)
        print(
            f"{name:38s} test F1 {row['test_macro_f1']:.4f} (tuned threshold "
            f"{threshold}: {row['test_macro_f1_tuned_threshold']:.4f}), corr. distance "
            f"{row['test_correlation_distance']:.2f}"
        )

    corrloss_rows = []
    for rho in args.rhos:
        start = time.perf_counter()
        candidates = []
        for lr in args.lrs:
            params = dict(
                rho=rho,
                lr=lr,
                max_epochs=EPOCHS_FOR_LR.get(lr, 100),
                hidden_units=args.hidden_units,
                dropout=args.dropout,
                random_state=args.seed,
            )
            proba = CorrLossClassifier(**params).fit(X_fit, Y_fit).predict_proba(X_val)
            threshold, val_f1 = best_threshold(Y_val, proba)
            candidates.append({**params, "threshold": threshold, "valid_macro_f1": val_f1})
        chosen = max(candidates, key=lambda c: c["valid_macro_f1"])
        settings = {k: v for k, v in chosen.items() if k != "valid_macro_f1"}
        clf = CorrLossClassifier(**settings).fit(X_train, Y_train)
        proba = clf.predict_proba(X_test)
        row = {
            "model": "CorrLossClassifier",
            "rho": rho,
            "selected": settings,
            "valid_macro_f1": chosen["valid_macro_f1"],
            "candidates": candidates,
            "test_macro_f1": clf.score(X_test, Y_test),
            "test_macro_f1_threshold_0.5": macro_f1(Y_test, proba > 0.5),
            "test_correlation_distance": correlation_distance(Y_test, proba),
            "best_epoch": dict(clf.callbacks_)["restore_best"].best_epoch_,
            "seconds": time.perf_counter() - start,
        }
        corrloss_rows.append(row)
        print(
            f"CorrLossClassifier rho={rho:<4} lr={settings['lr']:g} threshold="
            f"{settings['threshold']}: test F1 {row['test_macro_f1']:.4f} (0.5: "
            f"{row['test_macro_f1_threshold_0.5']:.4f}), corr. distance "
            f"{row['test_correlation_distance']:.2f}"
        )

    best_corrloss = max(r["test_macro_f1"] for r in corrloss_rows)
    best_default = max(r["test_macro_f1"] for r in baseline_rows)
    best_tuned = max(r["test_macro_f1_tuned_threshold"] for r in baseline_rows)
    summary = {
        "best_corrloss_test_macro_f1": best_corrloss,
        "best_baseline_test_macro_f1": best_default,
        "best_baseline_test_macro_f1_tuned_threshold": best_tuned,
        "gap_to_best_baseline": best_corrloss - best_default,
        "gap_to_best_tuned_baseline": best_corrloss - best_tuned,
        "within_0.02_of_best_baseline": best_corrloss >= best_default - 0.02,
        "within_0.02_of_best_tuned_baseline": best_corrloss >= best_tuned - 0.02,
    }
    print(json.dumps(summary, indent=2))
    meta = {
        "torch": torch.__version__,
        "sklearn": sklearn.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "load_average_1_5_15_min": os.getloadavg(),  # other processes add timing noise
        "seed": args.seed,
        "split": "MULAN standard: rows 0-1499 train, 1500-2416 test",
    }
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "benchmark": "bench_yeast",
                "meta": meta,
                "summary": summary,
                "baselines": baseline_rows,
                "corrloss": corrloss_rows,
            },
            indent=2,
            default=float,
        )
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
