"""Figures of the paper: correlation heatmaps, the rho curve and loss curves per rho.

Every function builds a :class:`matplotlib.figure.Figure` directly (no ``pyplot``), so
nothing opens a window or changes global matplotlib state; ``fig.savefig("x.png")``
renders with the Agg backend on machines without a display. Pass ``ax`` (or ``axes``) to
draw into an existing figure instead.

References
----------
Rieger, Pahl, Finzel, Schmid, "CorrLoss: Integrating Co-Occurrence Domain Knowledge for Affect
Recognition", ICPR 2022, arXiv:2210.17233 (Fig. 1 and 3-7).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .metrics import correlation_distance, label_correlation, label_names

__all__ = ["plot_correlation_heatmaps", "plot_loss_curves", "plot_rho_curve"]

#: Heatmaps show values in the cells up to this many labels.
_ANNOTATE_MAX_LABELS = 12


def _check_columns(frame: pd.DataFrame, columns: Sequence[str], name: str) -> None:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise ValueError(f"{name} lacks column(s) {missing}; it has {list(frame.columns)}.")


def plot_correlation_heatmaps(
    Y_true,
    Y_score,
    *,
    labels: Sequence[str] | None = None,
    titles: tuple[str, str] = ("ground truth", "prediction"),
    annotate: bool | None = None,
    axes=None,
) -> Figure:
    """Label correlations of the ground truth and of the predictions, side by side.

    The paper's Fig. 1 and Figs. 5-7: the Pearson (phi) matrix of the labels next to that
    of the predicted probabilities, on a shared [-1, 1] colour scale, with the correlation
    distance (sum over label pairs) in the title.

    Parameters
    ----------
    Y_true : array-like or DataFrame of shape (n_samples, n_labels)
        Binary labels; NaN marks unknown labels.
    Y_score : array-like of shape (n_samples, n_labels)
        Predicted probabilities (or binary predictions).
    labels : list of str, optional
        Label names; default the DataFrame columns of ``Y_true``.
    titles : (str, str), default=("ground truth", "prediction")
        Titles of the two panels.
    annotate : bool, optional
        Write the values into the cells; default when there are at most 12 labels.
    axes : pair of matplotlib Axes, optional
        Draw into these; default a new figure.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> Y = pd.DataFrame({"AU06": [1, 1, 0, 0, 1], "AU12": [1, 1, 0, 1, 1]})
    >>> fig = plot_correlation_heatmaps(Y, [[0.9, 0.8], [0.7, 0.9], [0.1, 0.2],
    ...                                     [0.2, 0.7], [0.6, 0.6]])
    >>> [ax.get_title() for ax in fig.axes[:2]]
    ['ground truth', 'prediction']
    """
    truth = label_correlation(Y_true)
    score = np.asarray(Y_score, dtype=np.float64)
    if score.shape != (np.shape(Y_true)[0], truth.shape[0]):
        raise ValueError(
            f"Y_true and Y_score must have the same shape, got {np.shape(Y_true)} and "
            f"{score.shape}."
        )
    names = list(labels) if labels is not None else label_names(Y_true, truth.shape[0])
    if len(names) != truth.shape[0]:
        raise ValueError(f"Got {len(names)} label names for {truth.shape[0]} labels.")
    predicted = label_correlation(score).to_numpy()
    distance = correlation_distance(Y_true, score) if len(names) > 1 else float("nan")
    if annotate is None:
        annotate = len(names) <= _ANNOTATE_MAX_LABELS
    if axes is None:
        size = 2.0 + 0.45 * len(names)
        fig = Figure(figsize=(2 * size + 1.2, size + 0.8), layout="constrained")
        axes = fig.subplots(1, 2)
    fig = axes[0].figure
    for ax, matrix, title in zip(axes, (truth.to_numpy(), predicted), titles):
        image = ax.imshow(matrix, vmin=-1, vmax=1, cmap="RdBu_r")
        ax.set_title(title)
        ax.set_xticks(range(len(names)), names, rotation=90)
        ax.set_yticks(range(len(names)), names)
        if annotate:
            for (row, column), value in np.ndenumerate(matrix):
                colour = "white" if abs(value) > 0.6 else "black"
                ax.text(column, row, f"{value:.2f}", ha="center", va="center", fontsize=7,
                        color=colour)  # fmt: skip
    fig.colorbar(image, ax=list(axes), label="Pearson r", shrink=0.8)
    fig.suptitle(f"label correlations (correlation distance {distance:.2f})")
    return fig


def plot_rho_curve(
    scores: pd.DataFrame,
    *,
    metric: str = "macro_f1",
    x: str = "rho",
    hue: str | None = None,
    ax=None,
) -> Figure:
    """Mean score per ``rho`` with standard-deviation error bars (the paper's Fig. 3).

    Parameters
    ----------
    scores : DataFrame
        One row per fold, e.g. ``search_rho(...).scores``.
    metric : str, default="macro_f1"
        Column to plot.
    x : str, default="rho"
        Column on the x axis.
    hue : str, optional
        Column that splits the data into one line each (e.g. a data set name).
    ax : matplotlib Axes, optional
        Draw into this; default a new figure.

    Returns
    -------
    matplotlib.figure.Figure
        The best mean of each line is marked.

    Examples
    --------
    >>> scores = pd.DataFrame({"rho": [0, 0, 0.3, 0.3], "fold": [0, 1, 0, 1],
    ...                        "macro_f1": [0.50, 0.54, 0.55, 0.57]})
    >>> fig = plot_rho_curve(scores)
    >>> fig.axes[0].get_xlabel(), fig.axes[0].get_ylabel()
    ('rho', 'macro F1')
    """
    _check_columns(scores, [x, metric] + ([hue] if hue else []), "scores")
    if ax is None:
        ax = Figure(figsize=(5, 3.5), layout="constrained").subplots()
    groups = scores.groupby(hue, sort=False) if hue else [(None, scores)]
    for name, group in groups:
        stats = group.groupby(x)[metric].agg(["mean", "std"]).fillna({"std": 0.0})
        line = ax.errorbar(
            stats.index, stats["mean"], yerr=stats["std"], marker="o", capsize=3, label=name
        )
        best = stats["mean"].idxmax()
        ax.plot(best, stats.loc[best, "mean"], marker="*", markersize=14,
                color=line[0].get_color(), linestyle="none")  # fmt: skip
    ax.set_xlabel(x)
    ax.set_ylabel(metric.replace("_", " ").replace("macro f1", "macro F1"))
    ax.set_title(f"{ax.get_ylabel()} per {x} (mean ± std over folds; ★ best)")
    if hue:
        ax.legend(title=hue)
    ax.grid(alpha=0.3)
    return ax.figure


def plot_loss_curves(
    curves: pd.DataFrame,
    *,
    by: str = "rho",
    losses: Sequence[str] = ("train_loss", "valid_loss"),
    axes=None,
) -> Figure:
    """Training and validation loss per epoch, one panel per ``rho`` (the paper's Fig. 4).

    Lines are means over folds with a band of one standard deviation; a widening gap
    between training and validation loss shows overfitting.

    Parameters
    ----------
    curves : DataFrame
        One row per fit and epoch, e.g. ``search_rho(...).curves`` (columns ``epoch``,
        ``by`` and the losses).
    by : str, default="rho"
        One panel per value of this column.
    losses : sequence of str, default=("train_loss", "valid_loss")
        Loss columns to draw; those absent from ``curves`` are skipped.
    axes : sequence of matplotlib Axes, optional
        One per panel; default a new figure.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> curves = pd.DataFrame({"rho": [0, 0, 0.5, 0.5], "fold": 0, "epoch": [1, 2, 1, 2],
    ...                        "train_loss": [0.7, 0.5, 0.6, 0.5],
    ...                        "valid_loss": [0.7, 0.6, 0.6, 0.55]})
    >>> fig = plot_loss_curves(curves)
    >>> [ax.get_title() for ax in fig.axes]
    ['rho = 0', 'rho = 0.5']
    """
    _check_columns(curves, ["epoch", by], "curves")
    present = [loss for loss in losses if loss in curves.columns]
    if not present:
        raise ValueError(f"curves has none of the loss columns {list(losses)}.")
    values = list(pd.unique(curves[by]))
    if axes is None:
        fig = Figure(figsize=(3.2 * len(values), 3.2), layout="constrained")
        axes = np.atleast_1d(fig.subplots(1, len(values), sharey=True))
    if len(axes) != len(values):
        raise ValueError(f"Need {len(values)} axes (one per {by}), got {len(axes)}.")
    for ax, value in zip(axes, values):
        stats = curves[curves[by] == value].groupby("epoch")[present].agg(["mean", "std"])
        for loss in present:
            mean, std = stats[(loss, "mean")], stats[(loss, "std")].fillna(0.0)
            ax.plot(stats.index, mean, marker=".", label=loss.replace("_", " "))
            ax.fill_between(stats.index, mean - std, mean + std, alpha=0.2)
        ax.set_title(f"{by} = {value:g}" if isinstance(value, float | int) else f"{by} = {value}")
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("loss")
    axes[0].legend()
    return axes[0].figure
