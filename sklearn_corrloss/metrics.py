"""Evaluation metrics of the paper: macro F1 over labels and the correlation distance."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import make_scorer, precision_recall_fscore_support

from .losses import pair_mask, pearson_corr_matrix

__all__ = [
    "au_f1_report",
    "correlation_distance",
    "label_correlation",
    "label_names",
    "macro_f1",
    "macro_f1_scorer",
]


def label_names(Y, n_labels: int | None = None) -> list[str]:
    """Column names of a label DataFrame, else ``label_0``, ``label_1``, ...

    Parameters
    ----------
    Y : DataFrame or array-like of shape (n_samples, n_labels)
        Label matrix.
    n_labels : int or None, default=None
        Number of generic names for a non-DataFrame ``Y``; None: ``Y``'s number of
        columns.

    Returns
    -------
    list of str
        One name per label.

    Examples
    --------
    >>> label_names(np.zeros((2, 3)))
    ['label_0', 'label_1', 'label_2']
    """
    if isinstance(Y, pd.DataFrame):
        return [str(c) for c in Y.columns]
    if n_labels is None:
        n_labels = np.asarray(Y).shape[1]
    return [f"label_{i}" for i in range(n_labels)]


def _as_label_matrix(Y, name: str) -> np.ndarray:
    array = np.array(Y, dtype=np.float64)  # a copy: pandas 3 may hand out read-only views
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (n_samples, n_labels) matrix, got {array.shape}.")
    if np.isinf(array).any():
        raise ValueError(f"{name} contains infinite values.")
    return array


def _corr(Y: np.ndarray, observed: np.ndarray | None = None) -> np.ndarray:
    tensor = torch.as_tensor(Y, dtype=torch.float64)
    mask = None if observed is None else torch.as_tensor(observed)
    return pearson_corr_matrix(tensor, observed=mask).numpy()


def label_correlation(Y) -> pd.DataFrame:
    """Pearson (phi) correlation matrix of a label matrix, labelled.

    Parameters
    ----------
    Y : array-like or DataFrame of shape (n_samples, n_labels)
        Binary labels; NaN marks an unknown label (pairwise-complete rows are used).

    Returns
    -------
    DataFrame of shape (n_labels, n_labels)
        Index and columns are the label names. Labels without variance correlate 0.

    Examples
    --------
    >>> Y = pd.DataFrame({"AU01": [1, 1, 0, 0], "AU02": [1, 1, 0, 1]})
    >>> label_correlation(Y).round(3)
           AU01   AU02
    AU01  1.000  0.577
    AU02  0.577  1.000
    """
    names = label_names(Y)
    matrix = _corr(_as_label_matrix(Y, "Y"))
    return pd.DataFrame(matrix, index=names, columns=names)


def correlation_distance(Y_true, Y_score, *, normalize: bool = False, mask=None) -> float:
    r"""The paper's correlation metric: distance between label and prediction correlations.

    Parameters
    ----------
    Y_true : array-like of shape (n_samples, n_labels)
        Binary ground truth; NaN marks unknown labels (pairwise-complete rows).
    Y_score : array-like of shape (n_samples, n_labels)
        Predicted probabilities or binary predictions.
    normalize : bool, default=False
        False: sum over the selected pairs (the paper's Table IV values); True: mean.
    mask : None, bool (U, U) matrix or sequence of (a, b) pairs, optional
        Label pairs to use; default all pairs above the diagonal.

    Returns
    -------
    float
        Lower is better; 0 when the correlation structures are identical.

    Notes
    -----
    .. math:: d = \sum_{a < b} |r_y(a, b) - r_{\hat y}(a, b)|

    Examples
    --------
    >>> Y = np.array([[1, 1], [1, 0], [0, 0], [0, 1], [1, 1]])
    >>> correlation_distance(Y, Y)
    0.0
    """
    y_true = _as_label_matrix(Y_true, "Y_true")
    y_score = _as_label_matrix(Y_score, "Y_score")
    if y_true.shape != y_score.shape:
        raise ValueError(
            f"Y_true and Y_score must have the same shape, got {y_true.shape} and {y_score.shape}."
        )
    if np.isnan(y_score).any():
        raise ValueError("Y_score contains NaN.")
    if y_true.shape[1] < 2:
        raise ValueError(f"correlation_distance needs at least 2 labels, got {y_true.shape[1]}.")
    known = ~np.isnan(y_true)
    r_true = _corr(y_true)
    r_score = _corr(y_score, None if known.all() else known)
    pairs = pair_mask(y_true.shape[1], mask).numpy()
    differences = np.abs(r_true - r_score)[pairs]
    return float(differences.mean() if normalize else differences.sum())


def au_f1_report(Y_true, Y_pred, *, labels=None) -> pd.DataFrame:
    """Per-label precision, recall, F1 and support, with a macro-average row.

    Parameters
    ----------
    Y_true : array-like or DataFrame of shape (n_samples, n_labels)
        Binary ground truth; NaN entries are left out of that label's counts.
    Y_pred : array-like of shape (n_samples, n_labels)
        Binary predictions.
    labels : list of str, optional
        Row names; default the columns of ``Y_true`` if it is a DataFrame.

    Returns
    -------
    DataFrame
        Index: label names plus ``"macro"``; columns ``precision``, ``recall``,
        ``f1``, ``support`` (positives), ``n`` (known labels). F1 is
        ``tp / (tp + (fp + fn) / 2)``, 0 where undefined.

    Examples
    --------
    >>> report = au_f1_report([[1, 0], [1, 1], [0, 1]], [[1, 0], [0, 1], [0, 1]])
    >>> report.loc["macro", "f1"].round(3)
    np.float64(0.833)
    """
    y_true = _as_label_matrix(Y_true, "Y_true")
    y_pred = _as_label_matrix(Y_pred, "Y_pred")
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"Y_true and Y_pred must have the same shape, got {y_true.shape} and {y_pred.shape}."
        )
    names = list(labels) if labels is not None else label_names(Y_true, y_true.shape[1])
    rows = []
    for column in range(y_true.shape[1]):
        known = ~np.isnan(y_true[:, column])
        truth, pred = y_true[known, column], y_pred[known, column]
        precision, recall, f1, _ = precision_recall_fscore_support(
            truth, pred, average="binary", labels=[0, 1], pos_label=1, zero_division=0
        )
        rows.append((precision, recall, f1, int(truth.sum()), int(known.sum())))
    report = pd.DataFrame(rows, index=names, columns=["precision", "recall", "f1", "support", "n"])
    macro = report[["precision", "recall", "f1"]].mean()
    report.loc["macro"] = [*macro, report["support"].sum(), report["n"].sum()]
    return report.astype({"support": int, "n": int})


def macro_f1(Y_true, Y_pred) -> float:
    """Macro F1 over labels (paper Eq. 5), ignoring unknown (NaN) labels.

    Parameters
    ----------
    Y_true : array-like of shape (n_samples, n_labels)
        True labels, 0/1 or NaN (unknown, ignored).
    Y_pred : array-like of shape (n_samples, n_labels)
        Predicted 0/1 labels.

    Returns
    -------
    float
        The mean of the per-label F1 scores (the ``macro`` row of
        :func:`au_f1_report`).

    Examples
    --------
    >>> macro_f1([[1, 0], [1, 1], [0, 1]], [[1, 0], [0, 1], [0, 1]])
    0.8333333333333333

    As a scorer for model selection, ``macro_f1_scorer`` calls the estimator's ``predict``:

    >>> from sklearn.multioutput import MultiOutputClassifier
    >>> from sklearn.dummy import DummyClassifier
    >>> Y = [[1, 0], [1, 1], [0, 1], [1, 1]]
    >>> model = MultiOutputClassifier(DummyClassifier(strategy="most_frequent")).fit(Y, Y)
    >>> macro_f1_scorer(model, Y, Y)
    0.8571428571428571
    """
    return float(au_f1_report(Y_true, Y_pred).loc["macro", "f1"])


#: Scorer for ``GridSearchCV(scoring=macro_f1_scorer)``, calling ``predict``; for example
#: ``GridSearchCV(CorrLossClassifier(), {"rho": [0, 0.5]}, scoring=macro_f1_scorer)``
#: (:func:`macro_f1` shows it at work).
macro_f1_scorer = make_scorer(macro_f1)
