"""The ``corrloss`` command: the paper's protocol, model files and predictions from a shell.

Subcommands wire the package's functions together; the work happens in
:mod:`sklearn_corrloss.experiments`, :mod:`sklearn_corrloss.report`,
:mod:`sklearn_corrloss.persistence`, the data set loaders and the face cropper. User mistakes
(a missing file, wrong columns, an unknown backbone) end with a one-line message on stderr
and a non-zero exit status (1; 2 for invalid command-line syntax), not a traceback;
``corrloss --traceback ...`` shows the traceback.

Data arguments (``DATA``) take one of:

- a manifest CSV (``path``, ``subject``, optional ``task``, one column per AU);
- ``LOADER:ROOT`` for a data set in its documented layout (``bp4d``, ``disfa``, ``ckplus``,
  ``affwild2``);
- ``synthetic:DOMAIN`` for the embedded synthetic faces (``lab``, ``lab_gray``, ``wild``).

Prefix ``NAME=`` to name a data set in the tables (``ck=ckplus:/data/CK+``).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from . import __version__
from ._atomic import atomic_output, check_output_path
from .balancing import MultiLabelBalancer
from .checkpoints import find_checkpoint
from .classifier import CorrLossAUClassifier
from .datasets.manifest import load_dataset, load_manifest, write_manifest
from .datasets.synthetic import DOMAINS, make_au_faces
from .experiments import DEFAULT_RHOS, calibrate, cross_dataset, evaluate, search_rho
from .face_detectors import DETECTORS
from .faces import FaceCropTransformer
from .networks import BACKBONES
from .parallel import connect
from .persistence import load_model, model_info, save_model
from .plotting import plot_loss_curves, plot_rho_curve
from .report import FULL, run_demo
from .selection import select_correlated_labels

__all__ = ["build_parser", "main"]

#: File suffixes read as videos by ``corrloss predict``.
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")
#: File suffixes read as images by ``corrloss predict``.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")

#: Estimator settings a TOML ``[estimator]`` table or the flags may set.
ESTIMATOR_KEYS = (
    "backbone",
    "weights",
    "freeze",
    "image_size",
    "augment",
    "rho",
    "threshold",
    "hidden_units",
    "dropout",
    "lr",
    "batch_size",
    "max_epochs",
    "clip_value",
    "train_split",
    "device",
    "precision",
    "cache_dir",
    "cache_dtype",
    "random_state",
)
#: Face-crop settings a TOML ``[face_crop]`` table or the flags may set.
CROP_KEYS = ("detector", "model_path", "confidence", "margin")

_CHUNK = 256  # images per prediction batch (bounds memory on long videos)
#: Folder under an experiment's ``--output`` with one result file per finished fit.
FITS = "fits"


class UserError(ValueError):
    """A mistake in the command line or its inputs; printed as one line."""


# --- configuration ----------------------------------------------------------------------------
def _read_toml(path: Path) -> dict:
    try:
        import tomllib  # Python >= 3.11
    except ModuleNotFoundError:  # pragma: no cover - Python 3.10
        try:
            import tomli as tomllib
        except ModuleNotFoundError:
            raise UserError(
                "Reading a TOML config needs Python >= 3.11 or the tomli package "
                "(pip install tomli)."
            ) from None
    if not path.is_file():
        raise FileNotFoundError(f"Config file not found: {path}")
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except tomllib.TOMLDecodeError as error:
        raise UserError(f"{path} is not valid TOML: {error}") from None


def _config(args) -> dict:
    """``{"estimator": {...}, "face_crop": {...}}`` from ``--config``, checked."""
    if getattr(args, "config", None) is None:
        return {"estimator": {}, "face_crop": {}}
    config = _read_toml(args.config)
    unknown = sorted(set(config) - {"estimator", "face_crop"})
    if unknown:
        raise UserError(
            f"{args.config}: unknown table(s) {unknown}; use [estimator] and [face_crop]."
        )
    for table, keys in (("estimator", ESTIMATOR_KEYS), ("face_crop", CROP_KEYS)):
        values = config.setdefault(table, {})
        if not isinstance(values, dict):
            raise UserError(f"{args.config}: {table} must be a table ([{table}]).")
        wrong = sorted(set(values) - set(keys))
        if wrong:
            raise UserError(
                f"{args.config}: unknown [{table}] setting(s) {wrong}; valid: {', '.join(keys)}."
            )
    return config


def _none(value):
    """``"none"`` (any case) means None, for flags and TOML (which has no null)."""
    return None if isinstance(value, str) and value.lower() == "none" else value


def _estimator_params(args, config: dict) -> dict:
    """Defaults < ``[estimator]`` of the config < flags."""
    params = {"backbone": "vgg16", "random_state": args.seed, **config["estimator"]}
    params.update({key: getattr(args, key) for key in ESTIMATOR_KEYS if hasattr(args, key)})
    for key in ("weights", "train_split", "clip_value"):
        if key in params:
            params[key] = _none(params[key])
    if params.get("train_split") == 0:
        params["train_split"] = None
    if params["backbone"] not in BACKBONES:
        raise UserError(
            f"Unknown backbone {params['backbone']!r}; choose one of {', '.join(BACKBONES)}."
        )
    return params


def _crop_settings(args, config: dict, image_size: int) -> dict | None:
    """Face-crop parameters, or None when ``--no-face-crop``."""
    if not args.face_crop:
        return None
    settings = {"detector": "auto", "confidence": 0.5, "margin": 0.0, **config["face_crop"]}
    settings.update({key: getattr(args, key) for key in CROP_KEYS if hasattr(args, key)})
    if settings.get("model_path") is not None:
        settings["model_path"] = os.fspath(settings["model_path"])
    return {**settings, "output_size": int(image_size)}


def _crop(X, settings: dict | None, args):
    """Face crops of images or paths (the paper's preprocessing), or ``X`` unchanged."""
    if settings is None:
        return X
    cache = getattr(args, "crop_cache", None)
    cropper = FaceCropTransformer(
        **settings,
        output="path" if cache is not None else "array",
        cache_dir=cache,
        verbose=0 if args.quiet else 1,
    )
    return cropper.fit_transform(X)


# --- data ---------------------------------------------------------------------------------------
@dataclass
class Data:
    """A data set as the commands use it."""

    name: str
    X: object  # uint8 images (N, H, W, 3) or a 1-D object array of paths
    labels: pd.DataFrame
    subjects: np.ndarray
    tasks: np.ndarray | None


def load_data(spec: str, args) -> Data:
    """Read a ``DATA`` argument: manifest CSV, ``LOADER:ROOT`` or ``synthetic:DOMAIN``."""
    name, equals, source = spec.partition("=")
    if not (equals and ":" not in name and re.fullmatch(r"[\w+.-]+", name)):
        name, source = "", spec  # no NAME= prefix
    prefix, colon, rest = source.partition(":")
    # One-letter prefixes are Windows drive letters, not loader names.
    if colon and re.fullmatch(r"[A-Za-z][\w+-]+", prefix):
        if prefix.lower() == "synthetic":
            if rest not in DOMAINS:
                raise UserError(
                    f"Unknown synthetic domain {rest!r}; choose one of {', '.join(DOMAINS)}."
                )
            faces = make_au_faces(
                n_subjects=args.synthetic_subjects,
                n_frames=args.synthetic_frames,
                domain=rest,
                image_size=args.synthetic_size,
                random_state=args.seed,
            )
            return Data(name or rest, faces.images, faces.labels, faces.subjects, faces.tasks)
        dataset = load_dataset(prefix, rest)
    elif source.lower().endswith(".csv") or Path(source).is_file():
        dataset = load_manifest(source)
    else:
        raise UserError(
            f"Cannot read data {spec!r}: give a manifest CSV, LOADER:ROOT (bp4d, disfa, "
            f"ckplus, affwild2) or synthetic:DOMAIN ({', '.join(DOMAINS)})."
        )
    return Data(
        name or dataset.name,
        np.asarray(dataset.paths, dtype=object),
        dataset.labels,
        np.asarray(dataset.subjects),
        None if dataset.tasks is None else np.asarray(dataset.tasks),
    )


def _select_aus(labels: pd.DataFrame, args) -> pd.DataFrame:
    if getattr(args, "aus", None):
        missing = [au for au in args.aus if au not in labels.columns]
        if missing:
            raise UserError(
                f"AU(s) {missing} are not in the data; it has {', '.join(labels.columns)}."
            )
        return labels[list(args.aus)]
    if getattr(args, "select_threshold", None) is not None:
        keep = select_correlated_labels(labels, args.select_threshold)
        if len(keep) < 2:
            raise UserError(
                f"Only {keep} correlate at |r| >= {args.select_threshold}; lower "
                "--select-threshold or name the AUs with --aus."
            )
        return labels[keep]
    return labels


# --- output -------------------------------------------------------------------------------------
def _print_table(frame: pd.DataFrame, digits: int = 3) -> None:
    with pd.option_context("display.width", 120, "display.max_columns", 20):
        print(frame.round(digits).to_string(index=False))


def _write_tables(folder: Path, tables: dict[str, pd.DataFrame]) -> None:
    # Every table is complete before any replaces its old version: an error while writing
    # leaves the earlier set of tables as it was, and no partial file.
    with contextlib.ExitStack() as stack:
        for name, table in tables.items():
            table.to_csv(stack.enter_context(atomic_output(folder / f"{name}.csv")), index=False)


# --- commands -----------------------------------------------------------------------------------
def _cmd_demo(args) -> int:
    if not args.quick:
        print(
            f"Full demo: {FULL.n_fits()} model fits on 3 x {FULL.n_subjects * FULL.n_frames:,} "
            "synthetic frames (the paper's rho grid, 5 folds, all 8 tasks). This takes tens of "
            "minutes on 2 CPU cores; an estimate for this machine follows. "
            "`corrloss demo --quick` takes 2-3 minutes."
        )
    run_demo(
        args.output,
        quick=args.quick,
        n_jobs=args.n_jobs,
        random_state=args.seed,
        progress=not args.quiet,
    )
    return 0


def _checkpoint_dir(args) -> Path | None:
    """``--checkpoint-dir`` (default with ``--resume``: ``MODEL.checkpoints``), checked."""
    directory = args.checkpoint_dir
    if directory is None and args.resume:
        directory = args.output.with_name(args.output.name + ".checkpoints")
    if directory is None:
        return None
    if directory.exists() and not directory.is_dir():
        raise UserError(f"Checkpoint folder {directory} is a file, not a folder.")
    if not args.resume and directory.is_dir() and any(directory.iterdir()):
        raise UserError(
            f"Checkpoint folder {directory} is not empty: pass --resume to continue the run "
            "it holds, or delete it (or choose another --checkpoint-dir) to start over."
        )
    if args.resume and find_checkpoint(directory) is None and not args.quiet:
        print(f"No checkpoint in {directory} to resume from; training from scratch.")
    return directory


def _cmd_train(args) -> int:
    check_output_path(args.output)  # before training, not after
    config = _config(args)
    params = _estimator_params(args, config)
    checkpoint_dir = _checkpoint_dir(args)
    model = CorrLossAUClassifier(
        **params,
        checkpoint_dir=None if checkpoint_dir is None else os.fspath(checkpoint_dir),
        resume=args.resume,
        verbose=0 if args.quiet else 1,
    )
    data = load_data(args.data, args)
    labels = _select_aus(data.labels, args)
    crop = _crop_settings(args, config, model.image_size)
    X = _crop(data.X, crop, args)
    model.fit(X, labels, groups=data.subjects)
    path = save_model(model, args.output, preprocessing={"face_crop": crop})
    print(
        f"Saved {path}: {type(model).__name__} for {len(model.classes_)} AUs "
        f"({', '.join(model.classes_)}), rho = {model.rho:g}, trained on {len(labels):,} images "
        f"of {len(np.unique(data.subjects))} subjects."
    )
    return 0


def _model_and_crop(args):
    model = load_model(args.model)
    crop = model_info(args.model).get("preprocessing", {}).get("face_crop")
    if args.face_crop is False:
        crop = None
    elif args.face_crop is True and crop is None:
        crop = _crop_settings(args, {"face_crop": {}}, getattr(model, "image_size", 224))
    return model, crop


def _cmd_evaluate(args) -> int:
    if args.output is not None:
        check_output_path(args.output)
    model, crop = _model_and_crop(args)
    data = load_data(args.data, args)
    result = evaluate(model, _crop(data.X, crop, args), data.labels)
    report = result.report.reset_index(names="au")
    _print_table(report)
    print(
        f"macro F1 {result.macro_f1:.3f}; correlation distance {result.correlation_distance:.3f} "
        f"(sum over {len(report) - 1} AUs' pairs, lower is better)"
    )
    if args.output is not None:
        with atomic_output(args.output) as tmp:
            report.assign(correlation_distance=result.correlation_distance).to_csv(
                tmp, index=False
            )
        print(f"Wrote {args.output}")
    return 0


def _inputs(paths: list[Path]) -> list[Path]:
    """Image files, the images in folders (sorted), and video files, in order."""
    files = []
    for path in paths:
        if path.is_dir():
            found = sorted(
                p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES + VIDEO_SUFFIXES
            )
            if not found:
                raise UserError(f"Folder {path} holds no image or video files.")
            files.extend(found)
        elif path.is_file():
            if path.suffix.lower() not in IMAGE_SUFFIXES + VIDEO_SUFFIXES:
                raise UserError(
                    f"{path}: unsupported file type {path.suffix!r}; images "
                    f"({', '.join(IMAGE_SUFFIXES)}) or videos ({', '.join(VIDEO_SUFFIXES)})."
                )
            files.append(path)
        else:
            raise FileNotFoundError(f"Input not found: {path}")
    return files


def _video_chunks(path: Path, every: int):
    """``(frame numbers, RGB frames)`` chunks of a video, every ``every``-th frame."""
    capture = cv2.VideoCapture(os.fspath(path))
    if not capture.isOpened():
        raise UserError(f"Cannot open video {path} (unsupported codec or not a video).")
    try:
        index, numbers, frames = 0, [], []
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            if index % every == 0:
                numbers.append(index)
                frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
                if len(frames) == _CHUNK:
                    yield numbers, np.stack(frames)
                    numbers, frames = [], []
            index += 1
        if frames:
            yield numbers, np.stack(frames)
        if index == 0:
            raise UserError(f"Video {path} has no readable frames.")
    finally:
        capture.release()


def _batches(files: list[Path], every: int):
    """``(sources, frame numbers, X)`` per batch, in input order: X holds image paths or
    the RGB frames of a video."""
    pending = []
    for path in [*files, None]:
        is_video = path is not None and path.suffix.lower() in VIDEO_SUFFIXES
        if pending and (path is None or is_video or len(pending) == _CHUNK):
            names = [os.fspath(p) for p in pending]
            yield names, [0] * len(names), np.asarray(names, dtype=object)
            pending = []
        if is_video:
            for numbers, frames in _video_chunks(path, every):
                yield [os.fspath(path)] * len(numbers), numbers, frames
        elif path is not None:
            pending.append(path)


def _cmd_predict(args) -> int:
    model, crop = _model_and_crop(args)
    if not isinstance(model, CorrLossAUClassifier):
        raise UserError(
            f"{args.model} holds a {type(model).__name__} on feature vectors; predict needs an "
            "image model (CorrLossAUClassifier, written by `corrloss train`)."
        )
    if args.every < 1:
        raise UserError(f"--every must be at least 1, got {args.every}.")
    if args.output is not None and os.fspath(args.output) != "-":
        check_output_path(args.output)
    files = _inputs(args.inputs)
    frames = []
    with tqdm(desc="Predicting", unit="frame", disable=args.quiet) as bar:
        for sources, numbers, X in _batches(files, args.every):
            table = pd.DataFrame(
                model.predict_proba(_crop(X, crop, args)), columns=[str(c) for c in model.classes_]
            )
            table.insert(0, "frame", numbers)
            table.insert(0, "source", sources)
            frames.append(table)
            bar.update(len(table))
    result = pd.concat(frames, ignore_index=True)
    if args.output is None or os.fspath(args.output) == "-":
        result.to_csv(sys.stdout, index=False, float_format="%.4f")
    else:
        with atomic_output(args.output) as tmp:
            result.to_csv(tmp, index=False, float_format="%.4f")
        print(f"Wrote {args.output}: {len(result):,} frames x {len(model.classes_)} AUs")
    return 0


def _experiment_inputs(args):
    check_output_path(args.output, folder=True)  # before the fits, not after
    config = _config(args)
    params = _estimator_params(args, config)
    estimator = CorrLossAUClassifier(**params)
    crop = _crop_settings(args, config, estimator.image_size)
    balancer = MultiLabelBalancer(random_state=args.seed) if args.balance else None
    return estimator, crop, balancer


def _run_options(args, verbose: int) -> dict:
    """Keyword arguments every experiment function takes from the command line."""
    return {
        "n_jobs": args.n_jobs,
        "scheduler": args.client,
        "results_dir": args.output / FITS,
        "random_state": args.seed,
        "verbose": 0 if args.quiet else verbose,
    }


def _finish(args, tables: dict[str, pd.DataFrame], summary: pd.DataFrame, message: str) -> int:
    """Write the tables, print the summary and where the output went."""
    _write_tables(args.output, tables)
    _print_table(summary)
    print(message)
    return 0


def _cmd_search(args) -> int:
    outside = [rho for rho in args.rhos if not 0.0 <= rho <= 1.0]
    if outside:  # refused before any data is read or any fit runs
        raise UserError(f"--rhos must lie in [0, 1] (the CorrLoss weight), got {outside}.")
    estimator, crop, balancer = _experiment_inputs(args)
    data = load_data(args.data, args)
    labels = _select_aus(data.labels, args)
    X = _crop(data.X, crop, args)
    result = search_rho(
        estimator,
        X,
        labels,
        data.subjects,
        rhos=args.rhos,
        cv=args.folds,
        balancer=balancer,
        **_run_options(args, verbose=2),
    )
    figures = args.output / "figures"
    with atomic_output(figures / "rho_curve.png") as tmp:
        plot_rho_curve(result.scores).savefig(tmp, dpi=110)
    if len(result.curves):
        with atomic_output(figures / "loss_curves.png") as tmp:
            plot_loss_curves(result.curves).savefig(tmp, dpi=110)
    tables = {
        "rho_search": result.summary,
        "rho_search_folds": result.scores,
        "loss_curves": result.curves,
        "per_au": result.per_au,
    }
    message = f"Best rho: {result.best_rho:g}. Tables and figures in {args.output}"
    return _finish(args, tables, result.summary, message)


def _positive_rho(estimator, command: str) -> float:
    if estimator.rho <= 0:
        raise UserError(
            f"{command} compares rho = 0 with a rho > 0: give --rho (e.g. the best rho of "
            "`corrloss search`) or rho in the config's [estimator] table."
        )
    return float(estimator.rho)


def _cmd_cross_dataset(args) -> int:
    estimator, crop, balancer = _experiment_inputs(args)
    rho = _positive_rho(estimator, "cross-dataset")
    datasets = [load_data(spec, args) for spec in args.data]
    names = [data.name for data in datasets]
    if len(set(names)) != len(names):
        raise UserError(f"Data set names must differ, got {names}; name them NAME=DATA.")
    sets = {d.name: (_crop(d.X, crop, args), d.labels, d.subjects) for d in datasets}
    result = cross_dataset(
        estimator,
        sets,
        rho=rho,
        balancer=balancer,
        select_threshold=args.select_threshold,
        cv=args.folds,
        **_run_options(args, verbose=5),
    )
    tables = {
        "cross_dataset": result.summary,
        "cross_dataset_folds": result.scores,
        "per_au": result.per_au,
    }
    return _finish(args, tables, result.summary, f"Tables in {args.output}")


def _cmd_calibrate(args) -> int:
    estimator, crop, _ = _experiment_inputs(args)
    rho = _positive_rho(estimator, "calibrate")
    data = load_data(args.data, args)
    if data.tasks is None:
        raise UserError(f"{args.data} has no task column; calibration holds out one task.")
    labels = _select_aus(data.labels, args)
    result = calibrate(
        estimator,
        _crop(data.X, crop, args),
        labels,
        data.subjects,
        data.tasks,
        rhos=(0.0, rho),
        epochs=args.calibration_epochs,
        held_out_tasks=args.tasks,
        **_run_options(args, verbose=5),
    )
    tables = {
        "calibration": result.summary,
        "calibration_stages": result.scores,
        "per_au": result.per_au,
    }
    return _finish(args, tables, result.summary, f"Tables in {args.output}")


def _cmd_manifest(args) -> int:
    relative = args.output.parent if args.relative else None
    dataset = write_manifest(args.dataset, args.root, args.output, relative_to=relative)
    print(
        f"Wrote {args.output}: {len(dataset):,} images of {len(np.unique(dataset.subjects))} "
        f"subjects, AUs {', '.join(dataset.aus)}."
    )
    return 0


def _on_scheduler(command):
    """Run an experiment command with ``args.client``: None, or a client of ``--scheduler``.

    The scheduler is connected before any data is read, so a wrong address fails at once.
    """

    @functools.wraps(command)
    def run(args) -> int:
        with contextlib.ExitStack() as stack:
            try:
                args.client = stack.enter_context(connect(args.scheduler))
            except ImportError as error:  # no dask extra
                raise UserError(str(error)) from None
            return command(args)

    return run


# --- parser -------------------------------------------------------------------------------------
def _add_scheduler_option(parser) -> None:
    parser.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run the fits on a Dask cluster, e.g. tcp://host:8786 (needs the dask extra); "
        "finished fits are kept in OUTPUT/fits, so a rerun skips them",
    )


def _add_common(parser, *, data: bool = True) -> None:
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    parser.add_argument("--n-jobs", type=int, default=None, help="parallel fits (joblib)")
    if data:
        group = parser.add_argument_group("synthetic:DOMAIN data")
        group.add_argument("--synthetic-subjects", type=int, default=10, metavar="N")
        group.add_argument("--synthetic-frames", type=int, default=40, metavar="N")
        group.add_argument("--synthetic-size", type=int, default=96, metavar="PX")


def _add_model_options(parser) -> None:
    s = argparse.SUPPRESS
    group = parser.add_argument_group("model (flags override the --config file)")
    group.add_argument("--config", type=Path, help="TOML file: [estimator] and [face_crop]")
    group.add_argument("--backbone", default=s, help=f"{', '.join(BACKBONES)} (default vgg16)")
    group.add_argument("--weights", default=s, help="imagenet (default), none, or a .pth file")
    group.add_argument("--freeze", default=s, help="paper (default), none, all, or a layer")
    group.add_argument("--image-size", dest="image_size", type=int, default=s, metavar="PX")
    group.add_argument("--augment", action=argparse.BooleanOptionalAction, default=s)
    group.add_argument("--rho", type=float, default=s, help="CorrLoss weight in [0, 1]")
    group.add_argument("--threshold", type=float, default=s)
    group.add_argument("--hidden-units", dest="hidden_units", type=int, default=s)
    group.add_argument("--dropout", type=float, default=s)
    group.add_argument("--lr", type=float, default=s)
    group.add_argument("--batch-size", dest="batch_size", type=int, default=s)
    group.add_argument("--epochs", dest="max_epochs", type=int, default=s)
    group.add_argument("--valid-size", dest="train_split", type=float, default=s,
                       help="subject-wise validation fraction (default 0.2; 0: none)")  # fmt: skip
    group.add_argument("--device", default=s, help="cpu (default) or cuda")
    group.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default=s,
                       help="mixed precision on a GPU (default fp32)")  # fmt: skip
    group.add_argument("--feature-cache", dest="cache_dir", type=str, default=s, metavar="DIR",
                       help="keep the frozen trunk's features here (default: in memory), "
                       "reused by later and resumed runs")  # fmt: skip
    group.add_argument("--cache-dtype", choices=("float32", "float16"), default=s,
                       help="storage type of cached features (default float32)")  # fmt: skip
    group.add_argument("--aus", nargs="+", metavar="AU", help="train on these AU columns only")
    group.add_argument("--select-threshold", type=float, metavar="R",
                       help="keep AUs with |r| >= R to another AU (the paper: 0.4)")  # fmt: skip
    _add_crop_options(parser, default=True)


def _add_crop_options(parser, *, default) -> None:
    s = argparse.SUPPRESS
    group = parser.add_argument_group("face cropping (the paper's preprocessing)")
    group.add_argument("--face-crop", action=argparse.BooleanOptionalAction, default=default,
                       help="crop faces first" + (" (default: as the model was trained)"
                                                  if default is None else ""))  # fmt: skip
    group.add_argument("--detector", choices=("auto", *DETECTORS), default=s)
    group.add_argument("--detector-model", dest="model_path", type=Path, default=s,
                       metavar="PATH", help="detector model file or folder")  # fmt: skip
    group.add_argument("--confidence", type=float, default=s)
    group.add_argument("--margin", type=float, default=s)
    group.add_argument("--crop-cache", type=Path, metavar="DIR",
                       help="keep crops as PNG files here (large data sets)")  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    """The ``corrloss`` argument parser (subcommands and their options)."""
    parser = argparse.ArgumentParser(
        prog="corrloss",
        description="CorrLoss for multi-label facial Action Unit detection (Rieger et al., "
        "ICPR 2022): the paper's experiments, model files and predictions.",
        epilog="DATA is a manifest CSV, LOADER:ROOT (bp4d, disfa, ckplus, affwild2) or "
        f"synthetic:DOMAIN ({', '.join(DOMAINS)}); prefix NAME= to name it. "
        "Start with `corrloss demo --quick`.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--traceback", action="store_true", help="show tracebacks of errors")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser(
        "demo",
        help="the paper's protocol on synthetic faces, as a report folder",
        description="Rho search, within-dataset CV, cross-domain evaluation and calibration "
        "on synthetic faces of three domains; writes CSV tables, PNG figures and report.md.",
    )
    demo.add_argument("--quick", action="store_true", help="small version: 2-3 minutes")
    demo.add_argument("--output", type=Path, default=Path("corrloss-demo"), metavar="DIR")
    _add_common(demo, data=False)
    demo.set_defaults(handler=_cmd_demo, n_jobs=-1)

    train = commands.add_parser("train", help="train a model and write a model file")
    train.add_argument("data", metavar="DATA")
    train.add_argument("-o", "--output", type=Path, required=True, metavar="MODEL",
                       help="model file to write (.zip)")  # fmt: skip
    _add_model_options(train)
    resume = train.add_argument_group("checkpoints (resuming a killed run)")
    resume.add_argument("--checkpoint-dir", type=Path, metavar="DIR",
                        help="write a checkpoint after every epoch here (must be empty "
                        "without --resume)")  # fmt: skip
    resume.add_argument("--resume", action="store_true",
                        help="continue from the last checkpoint in --checkpoint-dir (default "
                        "MODEL.checkpoints); without one, train from scratch")  # fmt: skip
    _add_common(train)
    train.set_defaults(handler=_cmd_train)

    evaluate_ = commands.add_parser(
        "evaluate", help="per-AU F1 and correlation distance of a model on labelled data"
    )
    evaluate_.add_argument("model", type=Path, metavar="MODEL")
    evaluate_.add_argument("data", metavar="DATA")
    evaluate_.add_argument("-o", "--output", type=Path, metavar="CSV", help="write the report")
    _add_crop_options(evaluate_, default=None)
    _add_common(evaluate_)
    evaluate_.set_defaults(handler=_cmd_evaluate)

    predict = commands.add_parser(
        "predict", help="per-frame AU probabilities for images, folders or videos (CSV)"
    )
    predict.add_argument("model", type=Path, metavar="MODEL")
    predict.add_argument("inputs", type=Path, nargs="+", metavar="INPUT",
                         help="image files, folders of images, video files")  # fmt: skip
    predict.add_argument("-o", "--output", type=Path, metavar="CSV", help="default: stdout")
    predict.add_argument("--every", type=int, default=1, metavar="N",
                         help="use every N-th video frame")  # fmt: skip
    _add_crop_options(predict, default=None)
    _add_common(predict, data=False)
    predict.set_defaults(handler=_cmd_predict)

    search = commands.add_parser("search", help="grid search over rho (paper Fig. 3 and 4)")
    search.add_argument("data", metavar="DATA")
    search.add_argument("--rhos", type=float, nargs="+", default=list(DEFAULT_RHOS))
    search.add_argument("--folds", type=int, default=5, help="subject-wise folds (default 5)")
    search.add_argument("--balance", action="store_true", help="balance the training folds")
    search.add_argument("-o", "--output", type=Path, default=Path("corrloss-search"))
    _add_model_options(search)
    _add_common(search)
    _add_scheduler_option(search)
    search.set_defaults(handler=_on_scheduler(_cmd_search))

    cross = commands.add_parser(
        "cross-dataset", help="train on each data set, test on the others (Table III)"
    )
    cross.add_argument("data", nargs="+", metavar="DATA", help="at least two data sets")
    cross.add_argument("--folds", type=int, default=5, help="models per training set")
    cross.add_argument("--balance", action="store_true", help="also on balanced training sets")
    cross.add_argument("-o", "--output", type=Path, default=Path("corrloss-cross-dataset"))
    _add_model_options(cross)
    cross.set_defaults(select_threshold=0.4)
    _add_common(cross)
    _add_scheduler_option(cross)
    cross.set_defaults(handler=_on_scheduler(_cmd_cross_dataset))

    calibrate_ = commands.add_parser(
        "calibrate", help="leave one task out, fine-tune on half of it (Table IV)"
    )
    calibrate_.add_argument("data", metavar="DATA", help="data with a task column")
    calibrate_.add_argument("--tasks", nargs="+", metavar="TASK", help="default: every task")
    calibrate_.add_argument("--calibration-epochs", type=int, default=10, metavar="N")
    calibrate_.add_argument("-o", "--output", type=Path, default=Path("corrloss-calibrate"))
    _add_model_options(calibrate_)
    _add_common(calibrate_)
    _add_scheduler_option(calibrate_)
    calibrate_.set_defaults(handler=_on_scheduler(_cmd_calibrate), balance=False)

    manifest = commands.add_parser(
        "manifest", help="write a manifest CSV for a data set in its documented layout"
    )
    manifest.add_argument("dataset", help="bp4d, disfa, ckplus or affwild2")
    manifest.add_argument("root", type=Path, help="the data set folder")
    manifest.add_argument("-o", "--output", type=Path, required=True, metavar="CSV")
    manifest.add_argument("--relative", action="store_true",
                          help="write image paths relative to the CSV's folder")  # fmt: skip
    manifest.set_defaults(handler=_cmd_manifest, quiet=False)
    return parser


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    if isinstance(error, KeyError):
        text = f"missing key {text}"
    return text or type(error).__name__


def main(argv=None) -> int:
    """Run ``corrloss`` with ``argv`` (default ``sys.argv[1:]``); return the exit status.

    Examples
    --------
    >>> main(["train", "missing.csv", "-o", "model.zip", "--quiet"])
    1
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    with _opencv_errors_only(not args.traceback):
        try:
            return args.handler(args)
        except KeyboardInterrupt:
            print("corrloss: interrupted", file=sys.stderr)
            return 130
        except (OSError, ValueError) as error:  # user mistakes: files, columns, settings
            if args.traceback:
                raise
            print(f"corrloss {args.command}: error: {_one_line(error)}", file=sys.stderr)
            return 1


@contextlib.contextmanager
def _opencv_errors_only(enabled: bool):
    """Silence OpenCV's warnings (a corrupt image's "PNG input buffer is incomplete" would
    precede the one-line error that names the file); restore the level afterwards."""
    previous = cv2.utils.logging.getLogLevel()
    if enabled:
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(previous)


if __name__ == "__main__":
    sys.exit(main())
