"""Small shared data and fitted nets for the estimator tests (fast on one CPU core)."""

import numpy as np
import pandas as pd
import pytest

from sklearn_corrloss.classifier import CorrLossAUClassifier, CorrLossClassifier

#: Colours of the squares that mark labels 0..3 in the synthetic images (RGB).
SQUARE_COLOURS = np.array([[230, 30, 30], [30, 200, 30], [40, 40, 230], [10, 10, 10]])


def make_multilabel(n_samples=240, n_features=8, n_groups=12, seed=0):
    """Feature vectors with 4 labels in two correlated pairs, and subject groups."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_samples, n_features)).astype(np.float32)
    weights = rng.normal(size=(n_features, 4))
    weights[:, 1] = weights[:, 0] + 0.4 * weights[:, 1]  # label 1 follows label 0
    weights[:, 3] = weights[:, 2] + 0.4 * weights[:, 3]  # label 3 follows label 2
    Y = (X @ weights > 0.3).astype(int)
    groups = np.repeat(np.arange(n_groups), n_samples // n_groups)
    return X, Y, groups


def make_square_images(n_samples=160, size=32, seed=0):
    """Noisy grey images; label k present <=> a square of colour k in quadrant k.

    Labels co-occur (1 mostly with 0, 3 mostly with 2), like AUs do.
    """
    rng = np.random.default_rng(seed)
    Y = np.zeros((n_samples, 4), dtype=int)
    Y[:, 0] = rng.random(n_samples) < 0.5
    Y[:, 1] = np.where(rng.random(n_samples) < 0.8, Y[:, 0], rng.random(n_samples) < 0.5)
    Y[:, 2] = rng.random(n_samples) < 0.4
    Y[:, 3] = np.where(rng.random(n_samples) < 0.8, Y[:, 2], rng.random(n_samples) < 0.4)
    images = rng.normal(120, 20, size=(n_samples, size, size, 3)).clip(0, 255)
    half, side = size // 2, size // 4
    for i, k in zip(*np.nonzero(Y)):
        top = (k // 2) * half + rng.integers(0, half - side + 1)
        left = (k % 2) * half + rng.integers(0, half - side + 1)
        images[i, top : top + side, left : left + side] = SQUARE_COLOURS[k]
    return images.astype(np.uint8), Y


@pytest.fixture(scope="session")
def tabular():
    """(X, Y, groups): 240 samples, 8 features, 4 correlated labels, 12 subjects."""
    return make_multilabel()


@pytest.fixture(scope="session")
def tabular_frame(tabular):
    """The tabular data as DataFrames with AU-style label names."""
    X, Y, groups = tabular
    X_frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    Y_frame = pd.DataFrame(Y, columns=["AU01", "AU02", "AU06", "AU12"])
    return X_frame, Y_frame, groups


@pytest.fixture(scope="session")
def square_images():
    """(images, Y): 240 images of 32x32 with 4 labels (first 160 to train, rest to test)."""
    return make_square_images(n_samples=240)


def fast_classifier(**params):
    """A CorrLossClassifier with settings that train in well under a second."""
    settings = dict(hidden_units=32, lr=1e-2, max_epochs=15, batch_size=32, random_state=0)
    return CorrLossClassifier(**{**settings, **params})


def fast_au_classifier(**params):
    """A small_cnn CorrLossAUClassifier for 32x32 images."""
    settings = dict(
        backbone="small_cnn",
        weights=None,
        image_size=32,
        hidden_units=32,
        lr=1e-2,
        max_epochs=3,
        batch_size=32,
        random_state=0,
    )
    return CorrLossAUClassifier(**{**settings, **params})


@pytest.fixture(scope="session")
def fitted_classifier(tabular):
    """One shared fitted CorrLossClassifier (rho=0.3); do not mutate it in tests."""
    X, Y, groups = tabular
    return fast_classifier(rho=0.3).fit(X, Y, groups=groups)


@pytest.fixture(scope="session")
def fitted_au_classifier(square_images):
    """One shared small_cnn CorrLossAUClassifier fitted on 160 images; do not mutate it."""
    images, Y = square_images
    return fast_au_classifier(rho=0.2, max_epochs=10).fit(images[:160], Y[:160])
