"""Figures: the data they draw, file output without a display, and input checks."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from sklearn_corrloss.metrics import correlation_distance, label_correlation
from sklearn_corrloss.plotting import plot_correlation_heatmaps, plot_loss_curves, plot_rho_curve


@pytest.fixture(scope="module")
def labels_and_scores():
    rng = np.random.RandomState(0)
    base = rng.rand(50)
    Y = pd.DataFrame({"AU01": base > 0.5, "AU02": base > 0.4, "AU12": rng.rand(50) > 0.5}).astype(
        int
    )
    scores = np.clip(Y.to_numpy() * 0.6 + rng.rand(50, 3) * 0.4, 0, 1)
    return Y, scores


def test_heatmaps_draw_label_and_prediction_correlations(labels_and_scores, tmp_path):
    Y, scores = labels_and_scores
    fig = plot_correlation_heatmaps(Y, scores)
    truth_ax, predicted_ax = fig.axes[:2]
    np.testing.assert_allclose(truth_ax.images[0].get_array(), label_correlation(Y).to_numpy())
    np.testing.assert_allclose(
        predicted_ax.images[0].get_array(), label_correlation(scores).to_numpy()
    )
    assert [t.get_text() for t in truth_ax.get_xticklabels()] == ["AU01", "AU02", "AU12"]
    assert f"{correlation_distance(Y, scores):.2f}" in fig._suptitle.get_text()
    assert truth_ax.images[0].get_clim() == (-1, 1)
    path = tmp_path / "heatmaps.png"
    fig.savefig(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plt.get_fignums() == []  # nothing registered with pyplot: no display needed


def test_heatmaps_check_shapes(labels_and_scores):
    Y, scores = labels_and_scores
    with pytest.raises(ValueError, match="same shape"):
        plot_correlation_heatmaps(Y, scores[:, :2])
    with pytest.raises(ValueError, match="label names"):
        plot_correlation_heatmaps(Y, scores, labels=["a", "b"])


def test_rho_curve_shows_fold_means_and_spread():
    scores = pd.DataFrame(
        {"rho": [0.0, 0.0, 0.3, 0.3, 0.6, 0.6], "macro_f1": [0.5, 0.6, 0.7, 0.7, 0.6, 0.4]}
    )
    fig = plot_rho_curve(scores)
    ax = fig.axes[0]
    x, y = (np.asarray(values, dtype=float) for values in ax.lines[0].get_data())
    np.testing.assert_allclose(x, [0.0, 0.3, 0.6])
    np.testing.assert_allclose(y, [0.55, 0.7, 0.5])
    (star,) = [line for line in ax.lines if line.get_marker() == "*"]  # the best mean
    star_x, star_y = star.get_data()
    assert (star_x[0], star_y[0]) == pytest.approx((0.3, 0.7))
    assert ax.get_ylabel() == "macro F1"


def test_rho_curve_one_line_per_hue_and_column_check():
    scores = pd.DataFrame(
        {"rho": [0.0, 0.5] * 2, "macro_f1": [0.1, 0.2, 0.3, 0.4], "data": ["A", "A", "B", "B"]}
    )
    ax = plot_rho_curve(scores, hue="data").axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["A", "B"]
    with pytest.raises(ValueError, match="lacks column"):
        plot_rho_curve(scores, metric="accuracy")


def test_loss_curves_one_panel_per_rho_with_fold_means():
    curves = pd.DataFrame(
        {
            "rho": [0.0] * 4 + [0.5] * 4,
            "fold": [0, 0, 1, 1] * 2,
            "epoch": [1, 2] * 4,
            "train_loss": [0.7, 0.5, 0.9, 0.7, 0.6, 0.5, 0.6, 0.5],
            "valid_loss": [0.7, 0.6, 0.7, 0.8, 0.6, 0.55, 0.6, 0.55],
        }
    )
    fig = plot_loss_curves(curves)
    assert [ax.get_title() for ax in fig.axes] == ["rho = 0", "rho = 0.5"]
    train, valid = fig.axes[0].lines
    np.testing.assert_allclose(train.get_ydata(), [0.8, 0.6])
    np.testing.assert_allclose(valid.get_ydata(), [0.7, 0.7])
    with pytest.raises(ValueError, match="none of the loss columns"):
        plot_loss_curves(curves, losses=["test_loss"])
