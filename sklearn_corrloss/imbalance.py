"""Multi-label imbalance measures of Charte et al. (2015): IRLbl, MeanIR, MaxIR, CVIR, SCUMBLE."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .metrics import label_names

__all__ = [
    "check_label_matrix",
    "imbalance_measures",
    "irlbl",
    "measures_from_groups",
    "scumble",
]


def check_label_matrix(Y, *, name: str = "Y") -> np.ndarray:
    """Validate a binary multi-label matrix and return it as float64, NaN for unknown.

    Parameters
    ----------
    Y : array-like or DataFrame of shape (n_samples, n_labels)
        Entries 0/1 (bool, int or float); NaN (or ``pd.NA``) marks an unknown label.
    name : str, default="Y"
        Name used in error messages.

    Returns
    -------
    ndarray of shape (n_samples, n_labels), dtype float64

    Raises
    ------
    ValueError
        If ``Y`` is not 2-D, is empty, is not numeric, holds infinite values or any value
        other than 0, 1 and NaN.

    Examples
    --------
    >>> check_label_matrix([[1, 0], [0, float("nan")]])
    array([[ 1.,  0.],
           [ 0., nan]])
    >>> check_label_matrix([[1, 2]])
    Traceback (most recent call last):
    ...
    ValueError: Y must be a binary label matrix (0, 1, NaN for unknown); found values [2.0].
    """
    try:
        if isinstance(Y, pd.DataFrame):
            array = Y.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            array = np.asarray(Y, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"{name} must be a numeric binary label matrix (0, 1, NaN for unknown): {exc}"
        ) from exc
    if array.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D (n_samples, n_labels) label matrix, got shape {array.shape}; "
            "a single label column needs shape (n_samples, 1)."
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"{name} is empty: shape {array.shape}.")
    known = array[~np.isnan(array)]
    bad = np.unique(known[(known != 0) & (known != 1)])
    if bad.size:
        shown = ", ".join(repr(float(v)) for v in bad[:5]) + (", ..." if bad.size > 5 else "")
        raise ValueError(
            f"{name} must be a binary label matrix (0, 1, NaN for unknown); "
            f"found values [{shown}]."
        )
    return array


def irlbl(Y) -> pd.Series:
    r"""Imbalance ratio per label (IRLbl): positives of the most frequent label over this one's.

    Parameters
    ----------
    Y : array-like or DataFrame of shape (n_samples, n_labels)
        Binary labels; NaN (unknown) counts neither as positive nor as negative.

    Returns
    -------
    Series of shape (n_labels,)
        Indexed by label name; 1 for the most frequent label, ``inf`` for a label without
        any positive sample.

    Notes
    -----
    With :math:`h_k` the number of positives of label :math:`k`,

    .. math:: \mathrm{IRLbl}(k) = \frac{\max_j h_j}{h_k}.

    References
    ----------
    F. Charte, A. J. Rivera, M. J. del Jesus, F. Herrera, "Addressing imbalance in
    multilabel classification: Measures and random resampling algorithms",
    Neurocomputing 163 (2015) 3-16.

    Examples
    --------
    >>> irlbl(pd.DataFrame({"AU01": [1, 1, 1, 0], "AU02": [1, 0, 0, 0]}))
    AU01    1.0
    AU02    3.0
    Name: IRLbl, dtype: float64
    """
    array = check_label_matrix(Y)
    ratio = _ratios((array == 1).sum(axis=0).astype(np.float64))
    return pd.Series(ratio, index=label_names(Y, array.shape[1]), name="IRLbl")


def _ratios(counts: np.ndarray) -> np.ndarray:
    ratio = np.full(counts.shape, np.inf)
    np.divide(counts.max(), counts, out=ratio, where=counts > 0)
    return ratio


def _scumble(positive: np.ndarray, ratio: np.ndarray, weights=None) -> float:
    """Mean SCUMBLE over rows of a boolean (n, n_labels) matrix, each row counted ``weights``."""
    weights = np.ones(len(positive)) if weights is None else np.asarray(weights, np.float64)
    n_active = positive.sum(axis=1)
    labelled = n_active > 0
    per_row = np.zeros(len(positive))
    if labelled.any():
        finite = np.where(np.isfinite(ratio), ratio, 1.0)
        active = positive[labelled]
        log_ir = np.where(active, np.log(finite), 0.0)
        geometric = np.exp(log_ir.sum(axis=1) / n_active[labelled])
        arithmetic = (active * finite).sum(axis=1) / n_active[labelled]
        per_row[labelled] = 1.0 - geometric / arithmetic
    return float(per_row @ weights / weights.sum())


def scumble(Y) -> float:
    r"""SCUMBLE: how much rare and frequent labels occur together in the same samples.

    Parameters
    ----------
    Y : array-like or DataFrame of shape (n_samples, n_labels)
        Binary labels; NaN (unknown) is not a positive.

    Returns
    -------
    float
        In [0, 1); 0 when no sample mixes labels of different IRLbl.

    Notes
    -----
    For a sample :math:`i` with the set :math:`Y_i` of positive labels,

    .. math::
        \mathrm{SCUMBLE}_i = 1 - \frac{\left(\prod_{k \in Y_i} \mathrm{IRLbl}(k)
        \right)^{1/|Y_i|}}{\frac{1}{|Y_i|} \sum_{k \in Y_i} \mathrm{IRLbl}(k)},

    one minus the ratio of geometric to arithmetic mean; a sample without positives
    counts 0. SCUMBLE is the mean over all samples. Resampling cannot separate rare
    from frequent labels that share samples, so a high SCUMBLE limits what any
    resampler (including :class:`~sklearn_corrloss.balancing.MultiLabelBalancer`) can do.

    References
    ----------
    F. Charte, A. J. Rivera, M. J. del Jesus, F. Herrera, "Dealing with difficult minority
    labels in imbalanced multilabel data sets", Neurocomputing 326-327 (2019) 39-53.

    Examples
    --------
    >>> round(scumble([[1, 1], [1, 0], [1, 0], [1, 0]]), 4)
    0.05
    """
    array = check_label_matrix(Y)
    return _scumble(array == 1, irlbl(array).to_numpy())


def imbalance_measures(Y) -> pd.Series:
    r"""The standard multi-label imbalance measures of Charte et al. (2015).

    Parameters
    ----------
    Y : array-like or DataFrame of shape (n_samples, n_labels)
        Binary labels; NaN (unknown) counts neither as positive nor as negative.

    Returns
    -------
    Series
        ``MeanIR`` (mean IRLbl), ``MaxIR`` (largest IRLbl), ``CVIR`` (coefficient of
        variation of IRLbl, sample standard deviation over MeanIR) and ``SCUMBLE``.
        Labels without any positive sample (IRLbl infinite) are left out of MeanIR, MaxIR
        and CVIR; see :func:`irlbl` to spot them.

    Notes
    -----
    .. math::
        \mathrm{MeanIR} = \frac{1}{q} \sum_k \mathrm{IRLbl}(k), \quad
        \mathrm{CVIR} = \frac{1}{\mathrm{MeanIR}}
        \sqrt{\frac{\sum_k (\mathrm{IRLbl}(k) - \mathrm{MeanIR})^2}{q - 1}}

    Charte et al. call a data set imbalanced when MeanIR > 1.5 and CVIR > 0.2. On the
    MULAN yeast labels these functions give the published MeanIR 7.20, MaxIR 53.41,
    CVIR 1.88 and SCUMBLE 0.104.

    References
    ----------
    F. Charte, A. J. Rivera, M. J. del Jesus, F. Herrera, "Addressing imbalance in
    multilabel classification: Measures and random resampling algorithms",
    Neurocomputing 163 (2015) 3-16.

    Examples
    --------
    >>> Y = [[1, 1, 0], [1, 0, 0], [1, 0, 1], [1, 0, 0]]
    >>> imbalance_measures(Y).round(3)
    MeanIR     3.000
    MaxIR      4.000
    CVIR       0.577
    SCUMBLE    0.100
    dtype: float64
    """
    return measures_from_groups(check_label_matrix(Y) == 1)


def measures_from_groups(positive, weights=None) -> pd.Series:
    """:func:`imbalance_measures` of rows given once, each repeated ``weights`` times.

    Parameters
    ----------
    positive : array-like of bool, shape (n_rows, n_labels)
        True where a row is positive for a label (unknown counts as False).
    weights : array-like of shape (n_rows,), optional
        Times each row occurs (e.g. samples per unique label set); default 1.

    Returns
    -------
    Series
        ``MeanIR``, ``MaxIR``, ``CVIR``, ``SCUMBLE``, as :func:`imbalance_measures`.

    Examples
    --------
    >>> measures_from_groups([[True, False], [False, True]], weights=[3, 1])["MeanIR"]
    np.float64(2.0)
    """
    positive = np.asarray(positive, dtype=bool)
    weights = np.ones(len(positive)) if weights is None else np.asarray(weights, np.float64)
    ratio = _ratios(weights @ positive)
    finite = ratio[np.isfinite(ratio)]
    mean_ir = float(finite.mean()) if finite.size else float("nan")
    cv_ir = float(finite.std(ddof=1) / mean_ir) if finite.size > 1 else 0.0
    return pd.Series(
        {
            "MeanIR": mean_ir,
            "MaxIR": float(finite.max()) if finite.size else float("nan"),
            "CVIR": cv_ir,
            "SCUMBLE": _scumble(positive, ratio, weights),
        }
    )
