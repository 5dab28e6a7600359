"""Per-epoch training checkpoints from which a killed ``fit`` continues.

With ``checkpoint_dir`` set, :class:`~sklearn_corrloss.classifier.CorrLossClassifier` and
:class:`~sklearn_corrloss.classifier.CorrLossAUClassifier` write a checkpoint at the end of
every epoch (:class:`EpochCheckpoint`, a skorch :class:`~skorch.callbacks.Checkpoint`);
``resume=True`` makes ``fit`` continue from the latest one, so that a run killed by a crash,
an out-of-memory kill or a preempted cluster job loses at most one epoch. A folder holds::

    epoch-0007/          the latest complete checkpoint (older ones are removed)
        params.pt        the module's state_dict    (skorch ``save_params``)
        optimizer.pt     the optimizer's state_dict
        history.json     the skorch history
        state.pt         RNG states, the best weights kept by RestoreBestWeights, ...
        checkpoint.json  epoch, training seed and the run's fingerprint (settings, data)
    finished.json        written when ``fit`` ends: the epoch it ended at
    .tmp-<hex>/          a checkpoint being written; ignored, removed by the next run

Writes are atomic: a checkpoint is written into a temporary folder, flushed to disk and then
renamed to ``epoch-NNNN``, so a kill at any moment leaves the previous checkpoint intact and
never one that loads as a mix of two epochs. Everything is read back with
``torch.load(weights_only=True)`` and :mod:`json`: resuming never runs code from the folder.

A resumed ``fit`` restores the module, the optimizer, the history, the best weights kept so
far and the torch random state at the end of the checkpoint's epoch, and reuses the training
seed of the interrupted run (so the validation split and the shuffling continue as they
were): on the same machine it ends with the same model as an uninterrupted run. Training
draws only from torch's generators (shuffling, dropout, the split seed, augmentation), so
NumPy's and Python's global random states are neither used nor saved. On a GPU the CUDA
generator is saved too, but nondeterministic cuDNN kernels make even two uninterrupted runs
differ slightly, and a resumed one differs on that order. The fingerprint refuses to
resume with other settings or other data. Other callbacks than the estimators' own start
afresh (for example :class:`skorch.callbacks.EarlyStopping` counts its patience anew).

Examples
--------
>>> import tempfile
>>> import numpy as np
>>> from sklearn_corrloss.classifier import CorrLossClassifier
>>> X = np.random.default_rng(0).normal(size=(40, 4)).astype(np.float32)
>>> Y = (X[:, :2] > 0).astype(int)
>>> with tempfile.TemporaryDirectory() as folder:
...     # A run that ends (or is killed) after 2 of 4 epochs leaves epoch-0002/ ...
...     _ = CorrLossClassifier(max_epochs=2, checkpoint_dir=folder, random_state=0).fit(X, Y)
...     print(find_checkpoint(folder).name)
...     # ... and resume=True trains epochs 3 and 4 on top of it.
...     resumed = CorrLossClassifier(
...         max_epochs=4, checkpoint_dir=folder, resume=True, random_state=0
...     ).fit(X, Y)
epoch-0002
>>> resumed.resumed_epoch_, len(resumed.history_)
(2, 4)
>>> straight = CorrLossClassifier(max_epochs=4, random_state=0).fit(X, Y)
>>> bool(np.array_equal(resumed.predict_proba(X), straight.predict_proba(X)))
True
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import uuid
from pathlib import Path

import joblib
import numpy as np
import torch
from skorch.callbacks import Checkpoint
from skorch.history import History

from ._atomic import atomic_output

__all__ = [
    "CheckpointError",
    "EpochCheckpoint",
    "clear_checkpoints",
    "find_checkpoint",
    "read_checkpoint",
    "run_fingerprint",
]

#: Version of the folder layout written into ``checkpoint.json``.
CHECKPOINT_FORMAT = 1
#: Parameters that may differ between an interrupted run and its resumption: they do not
#: change the trained model (``max_epochs`` sets how far the resumed run goes).
RESUMABLE_CHANGES = frozenset(
    {
        "max_epochs",
        "verbose",
        "device",
        "checkpoint_dir",
        "resume",
        "warm_start",
        "feature_cache",
        "cache_dir",
        "callbacks",
    }
)

_EPOCH_DIR = re.compile(r"epoch-(\d+)")
_FILES = ("params.pt", "optimizer.pt", "history.json", "state.pt", "checkpoint.json")
_FINISHED = "finished.json"


class CheckpointError(ValueError):
    """A checkpoint folder cannot be resumed from: damaged, or written by another run.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     (Path(folder) / "epoch-0001").mkdir()  # an empty (damaged) checkpoint
    ...     try:
    ...         read_checkpoint(Path(folder) / "epoch-0001")
    ...     except CheckpointError as error:
    ...         print("refused:", "missing params.pt" in str(error))
    refused: True
    """


# --- file helpers -----------------------------------------------------------------------------
def _fsync(path: Path) -> None:
    """Flush a file (or, where the platform allows, a folder entry) to disk."""
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) if path.is_dir() else os.O_RDONLY
    try:
        fd = os.open(path, flags)
    except OSError:  # folders cannot be opened on Windows
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_json_atomic(path: Path, data: dict) -> None:
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")
        _fsync(tmp)


def _discard(path: Path) -> None:
    """Remove a folder of ours: first renamed (atomic), then deleted."""
    trash = path.with_name(f".old-{uuid.uuid4().hex}")
    try:
        os.replace(path, trash)
    except OSError:
        return
    shutil.rmtree(trash, ignore_errors=True)


def _epoch_dirs(directory: Path) -> list[tuple[int, Path]]:
    if not directory.is_dir():
        return []
    found = []
    for entry in directory.iterdir():
        match = _EPOCH_DIR.fullmatch(entry.name)
        if match and entry.is_dir():
            found.append((int(match.group(1)), entry))
    return sorted(found)


def _leftovers(directory: Path) -> list[Path]:
    """Temporary folders and files of interrupted writes."""
    if not directory.is_dir():
        return []
    return [
        entry
        for entry in directory.iterdir()
        if entry.name.startswith((".tmp-", ".old-"))
        or (entry.name.startswith(f".{_FINISHED}.") and ".tmp" in entry.name)
    ]


def remove_leftovers(directory) -> None:
    """Delete what interrupted writes left in ``directory`` (never a complete checkpoint)."""
    for entry in _leftovers(Path(directory)):
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                entry.unlink()


# --- public functions -------------------------------------------------------------------------
def find_checkpoint(directory) -> Path | None:
    """The latest complete checkpoint folder in ``directory``, or None.

    Parameters
    ----------
    directory : str or os.PathLike
        A ``checkpoint_dir``; it need not exist.

    Returns
    -------
    Path or None
        The ``epoch-NNNN`` folder with the highest epoch. Folders of interrupted writes
        (``.tmp-*``) are never returned.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     (Path(folder) / ".tmp-1234").mkdir()  # a write killed half-way
    ...     print(find_checkpoint(folder))
    None
    """
    found = _epoch_dirs(Path(os.fspath(directory)))
    return found[-1][1] if found else None


def clear_checkpoints(directory) -> None:
    """Delete the checkpoints in ``directory`` (a fresh ``fit`` starts with this).

    Only what :class:`EpochCheckpoint` writes is removed (``epoch-*`` folders, the
    ``finished.json`` marker, temporary folders); other files stay.

    Parameters
    ----------
    directory : str or os.PathLike

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     (Path(folder) / "epoch-0003").mkdir()
    ...     _ = (Path(folder) / "notes.txt").write_text("mine")
    ...     clear_checkpoints(folder)
    ...     print(sorted(p.name for p in Path(folder).iterdir()))
    ['notes.txt']
    """
    directory = Path(os.fspath(directory))
    with contextlib.suppress(FileNotFoundError):
        (directory / _FINISHED).unlink()
    for _, path in _epoch_dirs(directory):
        _discard(path)
    remove_leftovers(directory)


def _param_value(value):
    """A JSON value standing for a parameter (classes and functions by qualified name)."""
    if isinstance(value, np.ndarray | np.generic):
        value = value.tolist()
    if isinstance(value, tuple | list):
        return [_param_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _param_value(v) for k, v in value.items()}
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, type) or (callable(value) and hasattr(value, "__qualname__")):
        return f"{getattr(value, '__module__', '')}.{value.__qualname__}"
    return type(value).__name__  # e.g. a RandomState: its identity cannot be compared


def run_fingerprint(estimator, X, Y, groups=None) -> dict:
    """What must be equal for a checkpoint to be resumed: settings, labels and data.

    Parameters
    ----------
    estimator : CorrLoss estimator
        Its parameters (except :data:`RESUMABLE_CHANGES`) and ``classes_``.
    X : ndarray
        Validated input: numbers or images (hashed by content) or image paths (hashed by
        name).
    Y : ndarray
        Encoded label matrix.
    groups : array-like, optional

    Returns
    -------
    dict
        ``class``, ``params``, ``classes`` and ``data`` (a content hash of X, Y and
        groups, :func:`joblib.hash`).

    Examples
    --------
    >>> from sklearn_corrloss.classifier import CorrLossClassifier
    >>> X, Y = np.zeros((4, 2), np.float32), np.eye(4, 2, dtype=np.float32)
    >>> a = run_fingerprint(CorrLossClassifier(lr=0.1), X, Y)
    >>> a == run_fingerprint(CorrLossClassifier(lr=0.1, max_epochs=3), X, Y)
    True
    >>> a == run_fingerprint(CorrLossClassifier(lr=0.2), X, Y)
    False
    """
    params = {
        key: _param_value(value)
        for key, value in sorted(estimator.get_params(deep=False).items())
        if key not in RESUMABLE_CHANGES and not key.endswith("num_workers")
    }
    classes = getattr(estimator, "classes_", None)
    return {
        "class": type(estimator).__name__,
        "params": params,
        "classes": None if classes is None else [str(c) for c in classes],
        "data": joblib.hash((X, Y, None if groups is None else np.asarray(groups))),
    }


def describe_difference(saved: dict, current: dict) -> str:
    """A short text naming what differs between two fingerprints."""
    parts = []
    if saved.get("class") != current.get("class"):
        parts.append(f"estimator {saved.get('class')} then, {current.get('class')} now")
    old, new = saved.get("params", {}), current.get("params", {})
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            parts.append(f"{key}={old.get(key)!r} then, {new.get(key)!r} now")
    if saved.get("classes") != current.get("classes"):
        parts.append(f"labels {saved.get('classes')} then, {current.get('classes')} now")
    if saved.get("data") != current.get("data"):
        parts.append("other training data (X, y or groups)")
    return "; ".join(parts[:6]) or "unknown difference"


def read_checkpoint(path) -> dict:
    """Read and check one checkpoint folder written by :class:`EpochCheckpoint`.

    Parameters
    ----------
    path : str or os.PathLike
        An ``epoch-NNNN`` folder (see :func:`find_checkpoint`).

    Returns
    -------
    dict
        ``path``, ``epoch``, ``train_seed``, ``fingerprint``, ``finished`` (the run ended
        at this epoch before ``max_epochs``: early stopping or Ctrl+C), ``params`` and
        ``optimizer`` (state dicts), ``history`` (:class:`skorch.history.History`) and
        ``state`` (RNG states and callback states).

    Raises
    ------
    CheckpointError
        If a file is missing or cannot be read; the message names the folder.

    Examples
    --------
    >>> import tempfile
    >>> from sklearn_corrloss.classifier import CorrLossClassifier
    >>> X = np.random.default_rng(0).normal(size=(20, 3)).astype(np.float32)
    >>> Y = (X[:, :2] > 0).astype(int)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     _ = CorrLossClassifier(max_epochs=2, checkpoint_dir=folder).fit(X, Y)
    ...     checkpoint = read_checkpoint(find_checkpoint(folder))
    >>> checkpoint["epoch"], len(checkpoint["history"]), checkpoint["finished"]
    (2, 2, False)
    """
    path = Path(os.fspath(path))

    def damaged(reason: str) -> CheckpointError:
        return CheckpointError(
            f"Checkpoint {path} cannot be resumed from: {reason}. Delete {path.parent} (or "
            "choose another checkpoint folder) to start over."
        )

    missing = [name for name in _FILES if not (path / name).is_file()]
    if missing:
        raise damaged(f"missing {', '.join(missing)}")
    try:
        meta = json.loads((path / "checkpoint.json").read_text(encoding="utf-8"))
        if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"unknown format {meta.get('format')!r}")
        load = {"map_location": "cpu", "weights_only": True}
        params = torch.load(path / "params.pt", **load)
        optimizer = torch.load(path / "optimizer.pt", **load)
        state = torch.load(path / "state.pt", **load)
        history = History.from_file(os.fspath(path / "history.json"))
    except Exception as error:  # any failure means a damaged file
        text = " ".join(str(error).split())[:200]
        raise damaged(f"{type(error).__name__}: {text}") from error
    epoch = int(meta["epoch"])
    if len(history) != epoch:
        raise damaged(f"its history has {len(history)} epochs, expected {epoch}")
    finished = None
    marker = path.parent / _FINISHED
    if marker.is_file():
        with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
            finished = json.loads(marker.read_text(encoding="utf-8"))
    stopped = (
        isinstance(finished, dict)
        and finished.get("epoch") == epoch
        and finished.get("epoch", 0) < finished.get("max_epochs", 0)
    )
    return {
        "path": path,
        "epoch": epoch,
        "train_seed": int(meta["train_seed"]),
        "fingerprint": meta["fingerprint"],
        "finished": bool(stopped),
        "params": params,
        "optimizer": optimizer,
        "history": history,
        "state": state,
    }


def get_rng_state(device) -> dict:
    """The torch random states that training draws from (CPU, and the CUDA device)."""
    state = {"cpu": torch.get_rng_state(), "cuda": None}
    device = torch.device(device if device is not None else "cpu")
    if device.type == "cuda" and torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict, device) -> None:
    """Restore :func:`get_rng_state` (call it inside :func:`torch.random.fork_rng`)."""
    torch.set_rng_state(state["cpu"])
    device = torch.device(device if device is not None else "cpu")
    if state.get("cuda") is not None and device.type == "cuda" and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"], device)


# --- the callback -----------------------------------------------------------------------------
class EpochCheckpoint(Checkpoint):
    """Write a resumable checkpoint at the end of every epoch, atomically.

    A skorch :class:`~skorch.callbacks.Checkpoint` with ``monitor=None`` (every epoch)
    whose ``save_model`` writes into a temporary folder and renames it to
    ``epoch-NNNN`` (see the module description), then removes the previous epoch's
    folder. It is one of the default callbacks of the CorrLoss estimators (named
    ``"checkpoint"``) and does nothing unless their ``fit`` runs with ``checkpoint_dir``.
    Besides skorch's files (``params.pt``, ``optimizer.pt``, ``history.json``) it writes
    ``state.pt``: the torch random states, the ``grad_scaler_`` of fp16 training and the
    state of every callback with ``checkpoint_state``/``load_checkpoint_state`` methods
    (:class:`~sklearn_corrloss.classifier.RestoreBestWeights`: the best weights so far).

    When training ends before ``max_epochs`` (early stopping, Ctrl+C) it writes
    ``finished.json``, so resuming restores that model instead of training on.

    Unlike skorch's ``Checkpoint``, a failed write raises instead of being logged.

    Examples
    --------
    >>> from sklearn_corrloss.classifier import CorrLossClassifier
    >>> X = np.random.default_rng(0).normal(size=(20, 3)).astype(np.float32)
    >>> net = CorrLossClassifier(max_epochs=1).fit(X, (X[:, :2] > 0).astype(int))
    >>> type(dict(net.callbacks_)["checkpoint"]).__name__
    'EpochCheckpoint'
    """

    def __init__(self):
        super().__init__(
            monitor=None,
            f_params="params.pt",
            f_optimizer="optimizer.pt",
            f_criterion=None,
            f_history="history.json",
            event_name=None,
        )

    @staticmethod
    def _run(net) -> dict | None:
        return getattr(net, "_checkpoint_run", None)

    def on_epoch_end(self, net, **kwargs):
        """Save the epoch's checkpoint when ``fit`` runs with ``checkpoint_dir``.

        Parameters
        ----------
        net : MultiLabelNet
            The net being trained.
        **kwargs
            Further arguments of skorch's callback hook (ignored).
        """
        if self._run(net) is not None:
            self.save_model(net)

    def on_train_end(self, net, **kwargs):
        """Write ``finished.json`` (epochs run and ``max_epochs``) when ``fit`` checkpoints.

        Parameters
        ----------
        net : MultiLabelNet
            The trained net.
        **kwargs
            Further arguments of skorch's callback hook (ignored).
        """
        run = self._run(net)
        if run is None or not len(net.history):
            return
        marker = {"epoch": len(net.history), "max_epochs": int(net.max_epochs)}
        _write_json_atomic(Path(run["directory"]) / _FINISHED, marker)

    def save_model(self, net):
        """Write the checkpoint of the epoch that just ended (see the class description).

        Parameters
        ----------
        net : MultiLabelNet
            The net being trained, in a ``fit`` with ``checkpoint_dir``.
        """
        run = self._run(net)
        directory = Path(run["directory"])
        epoch = len(net.history)
        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / f".tmp-{uuid.uuid4().hex}"
        tmp.mkdir()
        try:
            net.save_params(
                f_params=tmp / self.f_params,
                f_optimizer=tmp / self.f_optimizer,
                f_history=os.fspath(tmp / self.f_history),
            )
            scaler = getattr(net, "grad_scaler_", None)
            state = {
                "rng": get_rng_state(net.device),
                "grad_scaler": None if scaler is None else scaler.state_dict(),
                "callbacks": {
                    name: callback.checkpoint_state()
                    for name, callback in net.callbacks_
                    if hasattr(callback, "checkpoint_state")
                },
            }
            torch.save(state, tmp / "state.pt")
            meta = {
                "format": CHECKPOINT_FORMAT,
                "epoch": epoch,
                "train_seed": int(run["train_seed"]),
                "fingerprint": run["fingerprint"],
            }
            (tmp / "checkpoint.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
            for name in _FILES:
                _fsync(tmp / name)
            _fsync(tmp)
            target = directory / f"epoch-{epoch:04d}"
            if target.exists():
                _discard(target)
            os.replace(tmp, target)
            _fsync(directory)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        for number, path in _epoch_dirs(directory):
            if number != epoch:
                _discard(path)
