"""Correlation distance, per-label F1 report, scorer and label selection."""

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator
from sklearn.metrics import f1_score, matthews_corrcoef

from sklearn_corrloss import (
    au_f1_report,
    correlation_distance,
    label_correlation,
    macro_f1,
    macro_f1_scorer,
    select_correlated_labels,
)


@pytest.fixture
def binary_pair():
    rng = np.random.default_rng(0)
    base = rng.random((300, 1))
    y_true = (rng.random((300, 5)) + base > 1.0).astype(int)
    y_pred = (rng.random((300, 5)) + 0.8 * base > 0.9).astype(int)
    y_true[:, 4] = 0  # a label without positives: phi is defined as 0
    return y_true, y_pred


def test_correlation_distance_matches_pairwise_matthews(binary_pair):
    y_true, y_pred = binary_pair
    u = y_true.shape[1]
    expected = sum(
        abs(
            matthews_corrcoef(y_true[:, a], y_true[:, b])
            - matthews_corrcoef(y_pred[:, a], y_pred[:, b])
        )
        for a in range(u)
        for b in range(a + 1, u)
    )
    assert correlation_distance(y_true, y_pred) == pytest.approx(expected, abs=1e-9)
    n_pairs = u * (u - 1) / 2
    assert correlation_distance(y_true, y_pred, normalize=True) == pytest.approx(
        expected / n_pairs, abs=1e-9
    )
    only = correlation_distance(y_true, y_pred, mask=[(0, 1)])
    assert only == pytest.approx(
        abs(
            matthews_corrcoef(y_true[:, 0], y_true[:, 1])
            - matthews_corrcoef(y_pred[:, 0], y_pred[:, 1])
        )
    )


def test_correlation_distance_zero_for_identical_and_errors(binary_pair):
    y_true, _ = binary_pair
    assert correlation_distance(y_true, y_true) == 0.0
    with pytest.raises(ValueError, match="same shape"):
        correlation_distance(y_true, y_true[:, :3])
    with pytest.raises(ValueError, match="at least 2 labels"):
        correlation_distance(y_true[:, :1], y_true[:, :1])
    with pytest.raises(ValueError, match="Y_score contains NaN"):
        correlation_distance(y_true, np.full(y_true.shape, np.nan))


def test_correlation_distance_with_unknown_labels(binary_pair):
    y_true, y_pred = binary_pair
    y_missing = y_true.astype(float)
    y_missing[:50, 0] = np.nan
    keep = slice(50, None)
    # pair (0, 1) must use rows 50: for both truth and prediction
    expected = abs(
        matthews_corrcoef(y_true[keep, 0], y_true[keep, 1])
        - matthews_corrcoef(y_pred[keep, 0], y_pred[keep, 1])
    )
    assert correlation_distance(y_missing, y_pred, mask=[(0, 1)]) == pytest.approx(expected)


def test_label_correlation_is_labelled_phi():
    y = pd.DataFrame({"AU01": [1, 1, 0, 0, 1, 0], "AU02": [1, 1, 0, 0, 0, 0], "AU04": [0] * 6})
    corr = label_correlation(y)
    assert list(corr.columns) == ["AU01", "AU02", "AU04"]
    assert corr.loc["AU01", "AU02"] == pytest.approx(matthews_corrcoef(y.AU01, y.AU02))
    assert corr.loc["AU04", "AU01"] == 0.0


def test_au_f1_report_matches_sklearn(binary_pair):
    y_true, y_pred = binary_pair
    names = [f"AU{i:02d}" for i in range(1, 6)]
    report = au_f1_report(pd.DataFrame(y_true, columns=names), y_pred)
    assert list(report.index) == [*names, "macro"]
    per_label = f1_score(y_true, y_pred, average=None, zero_division=0)
    np.testing.assert_allclose(report.loc[names, "f1"], per_label)
    assert report.loc["macro", "f1"] == pytest.approx(per_label.mean())
    assert report.loc["AU01", "support"] == y_true[:, 0].sum()
    assert macro_f1(y_true, y_pred) == pytest.approx(f1_score(y_true, y_pred, average="macro"))


def test_au_f1_report_skips_unknown_labels():
    y_true = np.array([[1, 0], [np.nan, 1], [0, 1]], dtype=float)
    y_pred = np.array([[1, 0], [0, 1], [1, 1]])
    report = au_f1_report(y_true, y_pred)
    assert report.loc["label_0", "n"] == 2
    assert report.loc["label_0", "f1"] == pytest.approx(f1_score([1, 0], [1, 1]))


def test_macro_f1_scorer_calls_predict():
    class Fixed(BaseEstimator):
        def predict(self, X):
            return np.asarray(X)

    y = np.array([[1, 0], [0, 1], [1, 1]])
    assert macro_f1_scorer(Fixed(), y, y) == pytest.approx(1.0)


def test_select_correlated_labels_arrays_and_frames():
    rng = np.random.default_rng(3)
    a = rng.random(500) < 0.4
    y = np.column_stack([a, a ^ (rng.random(500) < 0.1), rng.random(500) < 0.3])
    assert select_correlated_labels(y, threshold=0.4) == [0, 1]
    frame = pd.DataFrame(y.astype(int), columns=["AU01", "AU02", "AU15"])
    assert select_correlated_labels(frame) == ["AU01", "AU02"]
    assert select_correlated_labels(frame, threshold=0.0) == ["AU01", "AU02", "AU15"]
    with pytest.raises(ValueError, match="threshold"):
        select_correlated_labels(frame, threshold=2)
