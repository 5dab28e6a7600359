"""The ``corrloss demo``: the paper's protocol on synthetic AU faces, as a report folder.

:func:`run_demo` renders three synthetic domains that stand in for the paper's data sets
(``lab`` for BP4D, ``lab_gray`` for CK+, ``wild`` for an in-the-wild set such as Aff-Wild2),
crops the faces, and runs the rho search, within-dataset cross-validation (not balanced and
balanced), the cross-domain evaluation and the calibration on single expressions. It writes
CSV tables, PNG figures and ``report.md``, which sets every table beside the paper's numbers.
Every number in the report is computed in that run.

The model follows the paper's design of a frozen feature extractor with a trainable CorrLoss
head: faces are cropped with :class:`~sklearn_corrloss.faces.FaceCropTransformer` (at the
boxes the renderer drew; running the res10 detector would take most of the time budget) and
described by HOG features (OpenCV), standardised with the statistics of other synthetic
subjects (as a pretrained network's normalisation comes from other data), on which a
:class:`~sklearn_corrloss.classifier.CorrLossClassifier` (dense layer, ReLU, dropout, one
sigmoid per AU) trains with CorrLoss.
A small CNN trained from scratch on these images learns too little in a few minutes on two
CPU cores to show anything; the image classifier is what ``corrloss train`` uses.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from joblib import effective_n_jobs
from sklearn.model_selection import GroupShuffleSplit
from sklearn.preprocessing import StandardScaler
from sklearn.utils import Bunch, check_random_state
from sklearn.utils.parallel import Parallel, delayed
from tqdm.auto import tqdm

from .balancing import MultiLabelBalancer
from .classifier import CorrLossClassifier
from .datasets.synthetic import BP4D_TASKS, make_au_faces
from .experiments import (
    DEFAULT_RHOS,
    calibrate,
    cross_dataset,
    per_au_f1_table,
    search_rho,
    within_dataset_cv,
)
from .faces import FaceCropTransformer
from .plotting import plot_correlation_heatmaps, plot_loss_curves, plot_rho_curve

__all__ = ["FULL", "QUICK", "DemoSettings", "face_features", "run_demo", "write_report"]

#: The synthetic domains and the data sets of the paper they stand in for.
STAND_INS = {"lab": "BP4D", "lab_gray": "CK+", "wild": "an in-the-wild set (Aff-Wild2)"}

#: Numbers reported in the paper (macro F1 unless stated), for the report's comparisons.
PAPER = {
    "within": {  # Table II: (rho, [not balanced rho=0, rho>0], [balanced rho=0, rho>0])
        "CK+": (0.8, ["0.583 ± 0.027", "0.604 ± 0.026"], ["0.592 ± 0.030", "0.596 ± 0.022"]),
        "BP4D": (0.3, ["0.615 ± 0.029", "0.625 ± 0.026"], ["0.636 ± 0.033", "0.629 ± 0.025"]),
        "BP4D without AU10": (
            0.45,
            ["0.587 ± 0.017", "0.601 ± 0.014"],
            ["0.603 ± 0.038", "0.586 ± 0.039"],
        ),
        "GFT": (0.6, ["0.593 ± 0.020", "0.594 ± 0.015"], ["0.616 ± 0.017", "0.613 ± 0.019"]),
    },
    "cross": [  # Table III examples: (train, test, balanced, rho = 0, rho > 0)
        ("CK+", "BP4D", False, 0.210, 0.245),
        ("CK+", "BP4D", True, 0.247, 0.273),
        ("GFT", "BP4D", True, 0.450, 0.481),
        ("BP4D", "CK+", True, 0.405, 0.422),
    ],
    "calibration": [  # Table IV examples, rho = 0.45 vs 0: (task, metric, rho = 0, rho > 0)
        ("sadness", "macro F1", 0.63, 0.70),
        ("pain", "macro F1", 0.62, 0.68),
        ("happiness", "correlation distance", 8.8, 6.6),
        ("fear", "correlation distance", 15.2, 9.2),
    ],
}


@dataclass(frozen=True)
class DemoSettings:
    """Sizes and training settings of a demo run.

    The fields are the constructor's parameters; instances are frozen.

    Parameters
    ----------
    n_subjects, n_frames : int
        Synthetic subjects per domain and frames per subject (over the eight tasks).
    reference_subjects : int
        Further ``lab`` subjects whose features fix the standardisation (never trained or
        tested on).
    image_size, crop_size : int
        Rendered image side and face-crop side (pixels).
    hidden_units, dropout, lr, batch_size, max_epochs : int or float
        :class:`~sklearn_corrloss.classifier.CorrLossClassifier` settings.
    rhos : tuple of float
        Grid of the rho search.
    folds, cross_folds : int
        Subject-wise folds of the within-dataset experiments and of the cross-domain
        training sets.
    balance_cross : bool
        Also run the cross-domain evaluation on balanced training sets.
    calibration_tasks : tuple of str or None
        Held-out tasks of the calibration (None: all eight).
    calibration_epochs : int
        Fine-tuning epochs (the paper: 10).

    Examples
    --------
    Start from the quick settings and change a few (the class is a frozen dataclass):

    >>> import dataclasses
    >>> from sklearn_corrloss.report import QUICK
    >>> settings = dataclasses.replace(QUICK, rhos=(0.0, 0.3), max_epochs=5)
    >>> settings.rhos, settings.folds == QUICK.folds
    ((0.0, 0.3), True)
    """

    n_subjects: int = 30
    n_frames: int = 48
    reference_subjects: int = 10
    image_size: int = 96
    crop_size: int = 64
    hidden_units: int = 128
    dropout: float = 0.5
    lr: float = 1e-3
    batch_size: int = 128
    max_epochs: int = 20
    rhos: tuple = (0.0, 0.2, 0.4, 0.6)
    folds: int = 3
    cross_folds: int = 2
    balance_cross: bool = False
    calibration_tasks: tuple | None = ("T1", "T2", "T6")
    calibration_epochs: int = 10

    def n_fits(self) -> int:
        """Number of models the demo trains (each fine-tuning counted with its model).

        Returns
        -------
        int
            The number of fits over all stages of the demo (rho search, within-dataset,
            cross-domain and calibration runs).
        """
        n_tasks = (
            len(BP4D_TASKS) if self.calibration_tasks is None else len(self.calibration_tasks)
        )
        search = len(self.rhos) * self.folds
        within = 2 * 2 * self.folds
        cross = len(STAND_INS) * 2 * self.cross_folds * (2 if self.balance_cross else 1)
        return search + within + cross + 2 * n_tasks + 2


#: ``corrloss demo --quick``: about two to three minutes on two CPU cores.
QUICK = DemoSettings()
#: ``corrloss demo``: the paper's grid, five folds, all tasks, balanced cross-domain runs.
FULL = DemoSettings(
    n_subjects=60,
    n_frames=96,
    max_epochs=40,
    rhos=DEFAULT_RHOS,
    folds=5,
    cross_folds=5,
    balance_cross=True,
    calibration_tasks=None,
)


# --- data -------------------------------------------------------------------------------------
class _RenderedFaceBoxes:
    """Face "detector" for rendered images: returns the box the renderer drew.

    A callable detector for :class:`~sklearn_corrloss.faces.FaceCropTransformer`; it looks
    each image up by a hash of its pixels.
    """

    def __init__(self, images, boxes):
        self._boxes = {self._key(image): box for image, box in zip(images, boxes)}

    @staticmethod
    def _key(image) -> bytes:
        return hashlib.blake2b(np.ascontiguousarray(image).tobytes(), digest_size=16).digest()

    def __call__(self, rgb_image):
        box = self._boxes.get(self._key(rgb_image))
        return np.zeros((0, 4)) if box is None else np.asarray([box], dtype=np.float32)


def face_features(images, boxes, *, crop_size: int = 64, margin: float = 0.1) -> np.ndarray:
    """HOG features of square face crops: the demo's frozen feature extractor.

    Parameters
    ----------
    images : uint8 array of shape (N, H, W, 3)
        RGB images.
    boxes : array of shape (N, 4)
        Face box ``(x, y, w, h)`` per image (e.g. ``make_au_faces(...).boxes``).
    crop_size : int, default=64
        Side of the crops (a multiple of 8).
    margin : float, default=0.1
        Margin around each box, as in :class:`~sklearn_corrloss.faces.FaceCropTransformer`.

    Returns
    -------
    float32 array of shape (N, n_features)
        OpenCV HOG (16-pixel blocks, 8-pixel cells and stride, 9 orientations) of the
        grayscale crops: 1,764 features at 64 pixels.

    Examples
    --------
    >>> faces = make_au_faces(n_subjects=1, n_frames=2, image_size=48, random_state=0)
    >>> face_features(faces.images, faces.boxes, crop_size=32).shape
    (2, 324)
    """
    if crop_size % 8 or crop_size < 16:
        raise ValueError(f"crop_size must be a multiple of 8 and at least 16, got {crop_size}.")
    cropper = FaceCropTransformer(
        detector=_RenderedFaceBoxes(images, boxes),
        output_size=crop_size,
        margin=margin,
        on_missing="error",
    )
    crops = cropper.fit_transform(images)
    hog = cv2.HOGDescriptor((crop_size, crop_size), (16, 16), (8, 8), (8, 8), 9)
    return np.stack(
        [hog.compute(cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)).ravel() for crop in crops]
    ).astype(np.float32)


def _estimator(settings: DemoSettings, seed: int) -> CorrLossClassifier:
    return CorrLossClassifier(
        hidden_units=settings.hidden_units,
        dropout=settings.dropout,
        lr=settings.lr,
        batch_size=settings.batch_size,
        max_epochs=settings.max_epochs,
        random_state=seed,
    )


def _training_rows(settings: DemoSettings) -> float:
    """Rows x epochs of training in the whole demo, in units of ``n_rows * max_epochs``."""
    balanced = 2.0  # the balancer about doubles a training set
    n_tasks = (
        len(BP4D_TASKS) if settings.calibration_tasks is None else len(settings.calibration_tasks)
    )
    within_part = (settings.folds - 1) / settings.folds
    cross_part = (settings.cross_folds - 1) / settings.cross_folds
    return (
        len(settings.rhos) * settings.folds * within_part
        + 2 * settings.folds * within_part * (1 + balanced)
        + len(STAND_INS) * 2 * settings.cross_folds * cross_part
        * (1 + (balanced if settings.balance_cross else 0))
        + 2 * n_tasks * (len(BP4D_TASKS) - 1) / len(BP4D_TASKS)
        + 2 * 0.75
    )  # fmt: skip


def _timed_fit(estimator, X, Y, groups) -> float:
    start = time.perf_counter()
    estimator.fit(X, Y, groups=groups)
    return time.perf_counter() - start


def _estimate_seconds(settings: DemoSettings, X, Y, groups, parallel) -> float:
    """Wall time of the experiments, extrapolated from a timed two-epoch fit.

    The probe runs where the experiments' fits run (a joblib worker, one thread), which
    also starts the workers before the experiments need them.
    """
    probe = _estimator(settings, 0).set_params(max_epochs=2)
    (seconds,) = parallel([delayed(_timed_fit)(probe, X, Y, groups)])
    workers = effective_n_jobs(parallel.n_jobs)
    return seconds / 2 * settings.max_epochs * _training_rows(settings) / workers


def _domain_features(domain: str, n_subjects: int, settings: DemoSettings, seed: int):
    """HOG features, labels, subjects and tasks of one rendered domain."""
    faces = make_au_faces(
        n_subjects=n_subjects,
        n_frames=settings.n_frames,
        domain=domain,
        image_size=settings.image_size,
        random_state=seed,
    )
    features = face_features(faces.images, faces.boxes, crop_size=settings.crop_size)
    return features, faces.labels, faces.subjects, faces.tasks


def _fit_predict(estimator, X_train, Y_train, groups, X_test):
    return estimator.fit(X_train, Y_train, groups=groups).predict_proba(X_test)


# --- formatting -------------------------------------------------------------------------------
def _mean_std(mean: float, std: float, digits: int = 3) -> str:
    if math.isnan(std):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def _markdown(frame: pd.DataFrame, digits: int = 3) -> str:
    """A DataFrame as a GitHub Markdown table (index included if named)."""
    if frame.index.name is not None or isinstance(frame.index, pd.MultiIndex):
        frame = frame.reset_index()
    header = [str(column) for column in frame.columns]

    def cell(value) -> str:
        if isinstance(value, float | np.floating):
            return "" if np.isnan(value) else f"{value:.{digits}f}"
        return str(value)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.to_numpy()]
    return "\n".join(lines)


def _rho_label(rho: float) -> str:
    return f"rho = {rho:g}"


def _paired(frame: pd.DataFrame, keys: list[str], rho: float, metric: str) -> pd.DataFrame:
    """``metric`` mean ± std for rho = 0 and ``rho`` side by side, one row per ``keys``."""
    stats = frame.groupby([*keys, "rho"], sort=False)[metric].agg(["mean", "std"])
    rows = []
    for key, group in stats.groupby(level=keys, sort=False):
        by_rho = group.droplevel(keys)
        zero, chosen = by_rho.loc[0.0], by_rho.loc[rho]
        rows.append(
            {
                **dict(zip(keys, key if isinstance(key, tuple) else (key,))),
                _rho_label(0.0): _mean_std(zero["mean"], zero["std"]),
                _rho_label(rho): _mean_std(chosen["mean"], chosen["std"]),
                "difference": float(chosen["mean"] - zero["mean"]),
            }
        )
    return pd.DataFrame(rows)


# --- the run ----------------------------------------------------------------------------------
def run_demo(
    output="corrloss-demo",
    *,
    quick: bool = True,
    settings: DemoSettings | None = None,
    n_jobs: int | None = -1,
    random_state: int = 0,
    progress: bool = True,
    echo: Callable[[str], None] | None = print,
) -> Bunch:
    """Run the paper's protocol on synthetic faces and write a report folder.

    Parameters
    ----------
    output : str or Path, default="corrloss-demo"
        Folder to write (created; files in it are replaced).
    quick : bool, default=True
        :data:`QUICK` settings (minutes) or :data:`FULL` (the paper's grid and folds).
    settings : DemoSettings, optional
        Overrides ``quick``.
    n_jobs : int, default=-1
        Parallel fits (joblib; -1: all cores).
    random_state : int, default=0
        Seeds the data, the models and the balancer: a run is repeatable.
    progress : bool, default=True
        Show a tqdm progress bar (on stderr).
    echo : callable or None, default=print
        Receives the up-front time estimate and the summary table.

    Returns
    -------
    Bunch
        ``summary`` (the table printed and at the top of the report), ``search``,
        ``within``, ``cross``, ``calibration`` (the experiment results), ``best_rho``,
        ``rho`` (the rho > 0 compared with 0), ``files`` (paths written) and ``seconds``.

    Examples
    --------
    A tiny run (seconds; ``corrloss demo --quick`` runs :data:`QUICK`):

    >>> import tempfile
    >>> from sklearn_corrloss.report import DemoSettings, run_demo
    >>> tiny = DemoSettings(n_subjects=4, n_frames=16, reference_subjects=2, image_size=64,
    ...                     crop_size=32, hidden_units=16, max_epochs=2, rhos=(0.0, 0.5),
    ...                     folds=2, cross_folds=2, calibration_tasks=("T1",))
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     result = run_demo(folder, settings=tiny, n_jobs=1, progress=False, echo=None)
    ...     written = sorted(path.name for path in result.files.values())
    >>> result.best_rho in tiny.rhos, "report.md" in written
    (True, True)
    >>> result.summary.columns[0]
    'experiment'
    """
    settings = settings or (QUICK if quick else FULL)
    echo = echo or (lambda message: None)
    output = Path(output)
    (output / "tables").mkdir(parents=True, exist_ok=True)
    (output / "figures").mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    rng = check_random_state(random_state)
    seeds = {name: int(rng.randint(2**31 - 1)) for name in ("model", "balancer", "split")}
    workers = effective_n_jobs(n_jobs)
    bar = tqdm(total=7, desc="corrloss demo", unit="step", disable=not progress)

    def step(name: str) -> None:
        bar.set_postfix_str(name)

    step("rendering faces")
    parallel = Parallel(n_jobs=n_jobs)
    jobs = [
        delayed(_domain_features)(domain, settings.n_subjects, settings, random_state + offset)
        for offset, domain in enumerate(STAND_INS)
    ]
    reference_seed = random_state + len(STAND_INS)
    jobs.append(
        delayed(_domain_features)("lab", settings.reference_subjects, settings, reference_seed)
    )
    *rendered, reference = parallel(jobs)
    scaler = StandardScaler().fit(reference[0])
    sets = {
        domain: (scaler.transform(features).astype(np.float32), labels, subjects)
        for domain, (features, labels, subjects, _) in zip(STAND_INS, rendered)
    }
    tasks = rendered[0][3]
    bar.update()
    estimator = _estimator(settings, seeds["model"])
    balancer = MultiLabelBalancer(random_state=seeds["balancer"])
    X, Y, groups = sets["lab"]
    estimate = _estimate_seconds(settings, X, Y, groups, parallel)
    echo(
        f"corrloss demo{' --quick' if settings == QUICK else ''}: {settings.n_fits()} model fits "
        f"on 3 x {len(Y):,} synthetic frames; estimated {estimate / 60:.1f} minutes on "
        f"{workers} worker(s) (from a timed probe fit)."
    )

    step("rho search")
    search = search_rho(
        estimator, X, Y, groups, rhos=settings.rhos, cv=settings.folds, n_jobs=n_jobs
    )
    positive = search.summary[search.summary["rho"] > 0]
    rho = float(positive.loc[positive["score_mean"].idxmax(), "rho"])
    bar.update()

    step("within-dataset CV")
    within = within_dataset_cv(
        estimator, X, Y, groups, rho=rho, balancer=balancer, cv=settings.folds, n_jobs=n_jobs
    )
    bar.update()

    step("cross-domain")
    cross = cross_dataset(
        estimator,
        sets,
        rho=rho,
        balancer=balancer if settings.balance_cross else None,
        cv=settings.cross_folds,
        n_jobs=n_jobs,
    )
    bar.update()

    step("calibration")
    calibration = calibrate(
        estimator,
        X,
        Y,
        groups,
        tasks,
        rhos=(0.0, rho),
        epochs=settings.calibration_epochs,
        held_out_tasks=settings.calibration_tasks,
        n_jobs=n_jobs,
        random_state=seeds["split"],
    )
    bar.update()

    step("heatmaps")
    splitter = GroupShuffleSplit(n_splits=1, test_size=0.25, random_state=seeds["split"])
    train, test = next(splitter.split(X, groups=groups))
    models = [_estimator(settings, seeds["model"]).set_params(rho=value) for value in (0.0, rho)]
    probabilities = parallel(
        delayed(_fit_predict)(model, X[train], Y.iloc[train], groups[train], X[test])
        for model in models
    )
    predictions = dict(zip((0.0, rho), probabilities))
    bar.update()

    step("writing report")
    result = Bunch(
        settings=settings,
        search=search,
        within=within,
        cross=cross,
        calibration=calibration,
        best_rho=search.best_rho,
        rho=rho,
        heatmap_truth=Y.iloc[test],
        heatmap_predictions=predictions,
        seconds=None,
        random_state=random_state,
    )
    result.summary = summary_table(result)
    result.seconds = time.perf_counter() - start
    result.files = write_report(result, output)
    bar.update()
    bar.close()
    echo(_markdown(result.summary))
    echo(f"Report: {output / 'report.md'} ({time.perf_counter() - start:.0f} s in all)")
    return result


def summary_table(result: Bunch) -> pd.DataFrame:
    """Headline numbers of a demo run beside the paper's (one row per experiment)."""
    rho = result.rho
    zero, positive = _rho_label(0.0), _rho_label(rho)
    rows = []
    within = result.within.scores
    for balanced, paper in ((False, 1), (True, 2)):
        part = within[within["balanced"] == balanced]
        pair = _paired(part, ["balanced"], rho, "macro_f1").iloc[0]
        rows.append(
            {
                "experiment": f"within lab, {'balanced' if balanced else 'not balanced'} (II)",
                "metric": "macro F1",
                "ours rho = 0": pair[zero],
                "ours rho > 0": pair[positive],
                "paper rho = 0": PAPER["within"]["BP4D"][paper][0] + " (BP4D)",
                "paper rho > 0": PAPER["within"]["BP4D"][paper][1] + " (BP4D, 0.3)",
            }
        )
    cross = result.cross.scores
    cell = cross[(cross["train"] == "lab_gray") & (cross["test"] == "lab") & ~cross["balanced"]]
    pair = _paired(cell, ["train"], rho, "macro_f1").iloc[0]
    rows.append(
        {
            "experiment": "cross lab_gray -> lab (III)",
            "metric": "macro F1",
            "ours rho = 0": pair[zero],
            "ours rho > 0": pair[positive],
            "paper rho = 0": "0.210 (CK+ -> BP4D)",
            "paper rho > 0": "0.245",
        }
    )
    overall = cross[~cross["balanced"]].assign(all="all")
    pair = _paired(overall, ["all"], rho, "macro_f1").iloc[0]
    n_pairs = len(overall[["train", "test"]].drop_duplicates())
    rows.append(
        {
            "experiment": f"cross, all {n_pairs} pairs (III)",
            "metric": "macro F1",
            "ours rho = 0": pair[zero],
            "ours rho > 0": pair[positive],
            "paper rho = 0": "",
            "paper rho > 0": "higher in most cells",
        }
    )
    after = result.calibration.summary.assign(all="all")
    for metric, label, paper in (
        ("macro_f1", "macro F1", ("0.63 (sadness)", "0.70")),
        ("correlation_distance", "corr. distance", ("8.8 (happiness)", "6.6")),
    ):
        pair = _paired(after, ["all"], rho, metric).iloc[0]
        rows.append(
            {
                "experiment": f"calibration, mean of {after['task'].nunique()} tasks (IV)",
                "metric": label,
                "ours rho = 0": pair[zero],
                "ours rho > 0": pair[positive],
                "paper rho = 0": paper[0],
                "paper rho > 0": paper[1] + " (0.45)",
            }
        )
    return pd.DataFrame(rows)


# --- the report -------------------------------------------------------------------------------
def _figures(result: Bunch, folder: Path) -> dict[str, Path]:
    files = {}
    fig = plot_rho_curve(result.search.scores, metric="macro_f1")
    files["rho_curve"] = folder / "rho_curve.png"
    fig.savefig(files["rho_curve"], dpi=110)
    fig = plot_loss_curves(result.search.curves)
    files["loss_curves"] = folder / "loss_curves.png"
    fig.savefig(files["loss_curves"], dpi=110)
    for value, scores in result.heatmap_predictions.items():
        fig = plot_correlation_heatmaps(
            result.heatmap_truth, scores, titles=("labels", f"predictions, rho = {value:g}")
        )
        files[f"heatmaps_rho_{value:g}"] = folder / f"heatmaps_rho_{value:g}.png"
        fig.savefig(files[f"heatmaps_rho_{value:g}"], dpi=110)
    return files


def _tables(result: Bunch, folder: Path) -> dict[str, Path]:
    tables = {
        "summary": result.summary,
        "rho_search_folds": result.search.scores,
        "rho_search": result.search.summary,
        "loss_curves": result.search.curves,
        "table2_within_folds": result.within.scores,
        "table2_within": result.within.summary,
        "table3_cross_folds": result.cross.scores,
        "table3_cross": result.cross.summary,
        "table4_calibration_stages": result.calibration.scores,
        "table4_calibration": result.calibration.summary,
        "table5_per_au_within": per_au_f1_table(result.within.per_au, ["balanced", "rho"]),
        "table6_per_au_cross": per_au_f1_table(
            result.cross.per_au[~result.cross.per_au["balanced"]], ["train", "test", "rho"]
        ),
    }
    files = {}
    for name, table in tables.items():
        files[name] = folder / f"{name}.csv"
        keep_index = name.startswith(("table5", "table6"))
        table.to_csv(files[name], index=keep_index)
    return files


def _sentence_within(result: Bunch) -> str:
    rho = result.rho
    parts = []
    for balanced in (False, True):
        stats = result.within.summary[result.within.summary["balanced"] == balanced]
        base = stats[np.isclose(stats["rho"], 0.0)].iloc[0]
        corr = stats[np.isclose(stats["rho"], rho)].iloc[0]
        delta = corr["macro_f1_mean"] - base["macro_f1_mean"]
        spread = "smaller" if corr["macro_f1_std"] < base["macro_f1_std"] else "larger"
        parts.append(
            f"{'balanced' if balanced else 'not balanced'}: rho = {rho:g} changes the mean "
            f"macro F1 by {delta:+.3f} and its spread over folds is {spread} "
            f"({corr['macro_f1_std']:.3f} vs {base['macro_f1_std']:.3f})"
        )
    return "; ".join(parts) + "."


def _sentence_cross(result: Bunch) -> str:
    scores = result.cross.scores
    cells = _paired(scores, ["train", "test", "balanced"], result.rho, "macro_f1")
    better = int((cells["difference"] > 0).sum())
    return (
        f"rho = {result.rho:g} raises the mean macro F1 in {better} of {len(cells)} "
        f"train -> test cells (mean change {cells['difference'].mean():+.3f})."
    )


def _sentence_calibration(result: Bunch) -> str:
    summary = result.calibration.summary
    rho = result.rho
    f1 = _paired(summary, ["task"], rho, "macro_f1")
    distance = _paired(summary, ["task"], rho, "correlation_distance")
    gain = (summary["macro_f1"] - summary["macro_f1_before"]).mean()
    return (
        f"Fine-tuning on half of the held-out task's subjects changes macro F1 by "
        f"{gain:+.3f} on average (before -> after). After calibration, rho = {rho:g} has the "
        f"higher macro F1 in {int((f1['difference'] > 0).sum())} of {len(f1)} tasks and the "
        f"lower correlation distance in {int((distance['difference'] < 0).sum())} of "
        f"{len(distance)}."
    )


def write_report(result: Bunch, output) -> dict[str, Path]:
    """Write the tables (CSV), figures (PNG), ``settings.json`` and ``report.md`` of a run.

    Parameters
    ----------
    result : Bunch
        What :func:`run_demo` computed.
    output : str or Path
        The report folder.

    Returns
    -------
    dict of str to Path
        Every file written.

    Examples
    --------
    Write a run's report again, elsewhere (here a tiny run, see :func:`run_demo`):

    >>> import tempfile
    >>> from pathlib import Path
    >>> from sklearn_corrloss.report import DemoSettings, run_demo, write_report
    >>> tiny = DemoSettings(n_subjects=4, n_frames=16, reference_subjects=2, image_size=64,
    ...                     crop_size=32, hidden_units=16, max_epochs=2, rhos=(0.0, 0.5),
    ...                     folds=2, cross_folds=2, calibration_tasks=("T1",))
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     result = run_demo(Path(folder) / "run", settings=tiny, n_jobs=1, progress=False,
    ...                       echo=None)
    ...     files = write_report(result, Path(folder) / "copy")
    ...     report = files["report"].read_text()
    >>> report.splitlines()[0]
    '# CorrLoss demo report'
    """
    output = Path(output)
    (output / "tables").mkdir(parents=True, exist_ok=True)
    (output / "figures").mkdir(parents=True, exist_ok=True)
    files = _tables(result, output / "tables")
    files.update(_figures(result, output / "figures"))
    settings = {
        **dataclasses.asdict(result.settings),
        "random_state": result.random_state,
        "seconds": result.seconds,
        "python": platform.python_version(),
    }
    files["settings"] = output / "settings.json"
    files["settings"].write_text(json.dumps(settings, indent=2))
    files["report"] = output / "report.md"
    files["report"].write_text(_report_text(result, files, output), encoding="utf-8")
    return files


def _report_text(result: Bunch, files: dict[str, Path], output: Path) -> str:
    s = result.settings
    rho = result.rho

    def link(name: str) -> str:
        return files[name].relative_to(output).as_posix()

    search = result.search.summary[["rho", "macro_f1_mean", "macro_f1_std"]]
    search = search.assign(
        **{
            "macro F1": [
                _mean_std(m, d) for m, d in zip(search.macro_f1_mean, search.macro_f1_std)
            ]
        }
    )[["rho", "macro F1"]]
    within = _paired(result.within.scores, ["balanced"], rho, "macro_f1")
    within_distance = _paired(result.within.scores, ["balanced"], rho, "correlation_distance")
    paper_within = pd.DataFrame(
        [
            {"data set (rho)": f"{name} ({values[0]:g})", "not balanced": " / ".join(values[1]),
             "balanced": " / ".join(values[2])}
            for name, values in PAPER["within"].items()
        ]
    )  # fmt: skip
    cross = _paired(result.cross.scores, ["train", "test", "balanced"], rho, "macro_f1")
    paper_cross = pd.DataFrame(
        PAPER["cross"], columns=["train", "test", "balanced", "rho = 0", "rho > 0"]
    )
    calibration = _paired(result.calibration.summary, ["task"], rho, "macro_f1")
    calibration_distance = _paired(
        result.calibration.summary, ["task"], rho, "correlation_distance"
    )
    calibration.insert(1, "expression", [BP4D_TASKS.get(t, t) for t in calibration["task"]])
    calibration_distance.insert(
        1, "expression", [BP4D_TASKS.get(t, t) for t in calibration_distance["task"]]
    )
    paper_calibration = pd.DataFrame(
        PAPER["calibration"], columns=["task", "metric", "rho = 0", "rho = 0.45"]
    )
    per_au = per_au_f1_table(result.within.per_au[~result.within.per_au["balanced"]], ["rho"])
    per_au.columns = [_rho_label(c) for c in per_au.columns]
    per_au_cross = per_au_f1_table(result.cross.per_au[~result.cross.per_au["balanced"]], ["rho"])
    per_au_cross.columns = [_rho_label(c) for c in per_au_cross.columns]
    selected = ", ".join(f"{k}: {' '.join(v)}" for k, v in result.cross.selected.items())
    if result.best_rho > 0:
        best = f"Best rho: {result.best_rho:g}, used in the comparisons below."
    else:
        best = f"rho = 0 scored best; the comparisons below use the best rho > 0, rho = {rho:g}."
    heatmaps = [name for name in files if name.startswith("heatmaps_rho_")]
    lines = [
        "# CorrLoss demo report",
        "",
        f"Written by `corrloss demo{' --quick' if s == QUICK else ''}` in "
        f"{result.seconds:.0f} s (seed {result.random_state}). Every number below was "
        "computed in this run; the paper's numbers are quoted beside them for orientation.",
        "",
        "**Read this first.** The data are synthetic faces (three rendered domains standing in "
        "for BP4D, CK+ and an in-the-wild set), the features are HOG descriptors and the model "
        f"is a small CorrLoss head trained for {s.max_epochs} epochs, on "
        f"{s.n_subjects} subjects per domain. The paper trains VGG16 on real, licensed data. "
        "So the absolute F1 values are not comparable with the paper's, and with "
        f"{s.folds} folds the differences between conditions are often within the noise. What "
        "the run does show: the whole protocol (rho search, subject-wise cross-validation, "
        "balancing inside training folds only, cross-domain tests on shared AUs, calibration "
        "with `partial_fit`) working end to end, and how to read each table.",
        "",
        "## Summary",
        "",
        _markdown(result.summary),
        "",
        "## Setup",
        "",
        f"- Data: `make_au_faces`, {s.n_subjects} subjects x {s.n_frames} frames per domain, "
        f"rendered at {s.image_size} px; domains: "
        + ", ".join(f"`{k}` for {v}" for k, v in STAND_INS.items())
        + ".",
        f"- Faces cropped with `FaceCropTransformer` to {s.crop_size} px (at the rendered "
        "boxes), HOG features (OpenCV) standardised with the statistics of "
        f"{s.reference_subjects} further `lab` subjects, `CorrLossClassifier` with "
        f"{s.hidden_units} hidden units, dropout {s.dropout}, Adam lr {s.lr}, batch "
        f"{s.batch_size}, {s.max_epochs} epochs, gradient clipping 1, weights of the epoch "
        "with the lowest validation loss (subject-wise 20 % split) restored.",
        f"- Folds: `GroupKFold({s.folds})` on subjects. Balancing: `MultiLabelBalancer` on the "
        "training rows of each fold only.",
        "",
        "## 1. rho search (paper Fig. 3 and 4)",
        "",
        f"On `lab` (BP4D stand-in), {s.folds} subject-wise folds. {best} The paper found 0.3 "
        "for BP4D, 0.45 for BP4D without AU10, 0.6 for GFT and 0.8 for CK+.",
        "",
        _markdown(search),
        "",
        f"![rho curve]({link('rho_curve')})",
        "",
        "Loss curves per rho (mean over folds): in the paper the gap between training and "
        "validation loss, i.e. overfitting, shrinks as rho grows. Note that the loss itself "
        "changes with rho (the CorrLoss term replaces part of the BCE), so compare the gaps, "
        "not the levels.",
        "",
        f"![loss curves]({link('loss_curves')})",
        "",
        "## 2. Within-dataset cross-validation (paper Table II)",
        "",
        "Ours, `lab`, macro F1 (mean ± std over folds):",
        "",
        _markdown(within),
        "",
        "Correlation distance (sum over AU pairs, lower is better):",
        "",
        _markdown(within_distance),
        "",
        "Paper, macro F1 (rho = 0 / rho > 0):",
        "",
        _markdown(paper_within),
        "",
        "What it shows: " + _sentence_within(result) + " The paper's finding is that the "
        "means barely move while the spread over folds drops.",
        "",
        "## 3. Cross-domain evaluation (paper Table III)",
        "",
        f"Each domain trains {s.cross_folds} models (one per subject-wise fold) on the AUs "
        f"correlated at |r| >= 0.4 with another ({selected}); each is tested on the other "
        "domains on the shared AUs. Macro F1:",
        "",
        _markdown(cross),
        "",
        "Paper examples:",
        "",
        _markdown(paper_cross),
        "",
        "What it shows: " + _sentence_cross(result) + " The paper reports higher means with "
        "rho > 0 in most cells.",
        "",
        "## 4. Calibration on one expression (paper Table IV)",
        "",
        "For each held-out task: train on the other tasks of `lab`, fine-tune with "
        f"`partial_fit` for {s.calibration_epochs} epochs on half of the task's subjects, test "
        "on the other half. Macro F1 after calibration:",
        "",
        _markdown(calibration),
        "",
        "Correlation distance after calibration (lower is better):",
        "",
        _markdown(calibration_distance),
        "",
        "Paper examples:",
        "",
        _markdown(paper_calibration, digits=2),
        "",
        "What it shows: " + _sentence_calibration(result),
        "",
        "## 5. Per-AU F1 (paper Tables V and VI)",
        "",
        "Within `lab`, not balanced, mean over folds (the paper: 0.58 average F1 on 7 AUs of "
        "BP4D, against 0.50-0.65 for JPML, DSIN, SPERL, AUD, JAA and HMP):",
        "",
        _markdown(per_au),
        "",
        "Cross-domain, not balanced, mean over folds and test domains (the paper: 0.35 for "
        "BP4D -> GFT against 0.17 for JAA):",
        "",
        _markdown(per_au_cross),
        "",
        "## 6. Label and prediction correlations (paper Fig. 1 and 5-7)",
        "",
        "One model per rho trained on 75 % of the `lab` subjects, predicted probabilities on "
        "the other 25 %. CorrLoss should bring the right-hand matrix closer to the left one "
        "(smaller correlation distance in the title).",
        "",
        *[f"![{name}]({link(name)})" for name in heatmaps],
        "",
        "## Files",
        "",
        *[f"- `{path.relative_to(output).as_posix()}`" for path in files.values()],
        "",
        "Reference: Rieger, Pahl, Finzel, Schmid, *CorrLoss: Integrating Co-Occurrence Domain "
        "Knowledge for Affect Recognition*, ICPR 2022, arXiv:2210.17233.",
        "",
    ]
    return "\n".join(lines)
