"""The paper's label selection: keep labels that co-occur with at least one other."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .metrics import label_correlation

__all__ = ["select_correlated_labels"]


def select_correlated_labels(Y, threshold: float = 0.4) -> list:
    """Labels whose absolute correlation with at least one other label reaches a threshold.

    The paper keeps, per training set, the AUs with correlation >= 0.4 to at least
    one other AU, so that CorrLoss has co-occurrence structure to work with.

    Parameters
    ----------
    Y : array-like or DataFrame of shape (n_samples, n_labels)
        Binary labels; NaN marks unknown labels.
    threshold : float in [0, 1], default=0.4
        Minimum absolute Pearson (phi) correlation.

    Returns
    -------
    list
        Column names for a DataFrame, else integer column indices, in column order.

    Examples
    --------
    >>> Y = pd.DataFrame({"AU01": [1, 1, 0, 0, 1], "AU02": [1, 1, 0, 0, 0],
    ...                   "AU15": [0, 1, 0, 1, 1]})
    >>> select_correlated_labels(Y, threshold=0.6)
    ['AU01', 'AU02']
    """
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must lie in [0, 1], got {threshold!r}.")
    corr = label_correlation(Y).to_numpy()
    off_diagonal = np.abs(corr) * (1 - np.eye(len(corr)))
    keep = np.flatnonzero((off_diagonal >= threshold).any(axis=1))
    if isinstance(Y, pd.DataFrame):
        return [Y.columns[i] for i in keep]
    return [int(i) for i in keep]
