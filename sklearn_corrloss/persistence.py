"""Model files that loading cannot turn into code execution.

A model file is a zip archive with two members:

- ``corrloss.json``: format name and version, the estimator's class (from an allow-list),
  its JSON-serialisable constructor parameters (``rho``, ``threshold``, backbone,
  ``image_size``, ...), the fitted attributes needed to predict (AU names in ``classes_``,
  ``n_features_in_``, ...), optional preprocessing settings (e.g. the face cropper used in
  training) and the package and torch versions that wrote it;
- ``weights.pt``: the network's ``state_dict`` written by :func:`torch.save`.

:func:`load_model` reads the JSON with :mod:`json`, builds the estimator only from a class on
the allow-list, and reads the weights with ``torch.load(..., weights_only=True)``, which
unpickles tensors and plain containers only: a pickle that would run code (a
``__reduce__`` payload) is refused with a :class:`ModelFileError`, never executed. Pickle
files, joblib dumps and bare torch checkpoints are refused too, since they are not in this
format.
"""

from __future__ import annotations

import inspect
import io
import json
import math
import numbers
import os
import pickle
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch
from sklearn.preprocessing import LabelBinarizer

from . import classifier
from ._atomic import atomic_output

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "ModelFileError",
    "load_model",
    "model_info",
    "save_model",
]

#: Name written into every model file.
FORMAT = "sklearn-corrloss-model"
#: Version of the layout; files with a newer version are refused.
FORMAT_VERSION = 1
#: Estimator classes a model file may name (all in :mod:`sklearn_corrloss.classifier`).
ALLOWED_CLASSES = ("CorrLossAUClassifier", "CorrLossClassifier")

#: Parameters of one training run that a model file leaves out (the loaded model has the
#: defaults): a checkpoint folder belongs to the machine and run that wrote it.
_RUN_PARAMS = ("checkpoint_dir", "resume")

#: Fitted attributes stored (when present) and how to turn their JSON back into values.
_FITTED = {
    "classes_": lambda value: np.asarray(
        value, dtype=object if all(isinstance(v, str) for v in value) else None
    ),
    "n_outputs_": int,
    "target_type_": str,
    "n_features_in_": int,
    "feature_names_in_": lambda value: np.asarray(value, dtype=object),
    "_y_dtype": lambda value: np.dtype(_check_dtype(value)),
}

_CONFIG = "corrloss.json"
_WEIGHTS = "weights.pt"
_MAX_CONFIG_BYTES = 1 << 20


class ModelFileError(ValueError):
    """A file is not a valid, safe sklearn-corrloss model file; the message says why.

    Examples
    --------
    >>> import tempfile
    >>> from sklearn_corrloss import ModelFileError, load_model
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     not_a_model = Path(folder) / "notes.zip"
    ...     _ = not_a_model.write_text("hello")
    ...     try:
    ...         load_model(not_a_model)
    ...     except ModelFileError as error:
    ...         print("refused:", "not a sklearn-corrloss model file" in str(error))
    refused: True
    """


def _check_dtype(name) -> str:
    if name not in ("bool", "int8", "int16", "int32", "int64", "uint8", "float32", "float64"):
        raise ModelFileError(f"unsupported label dtype {name!r}")
    return name


def _jsonable(value):
    """``value`` as plain JSON types, or raise TypeError."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    elif isinstance(value, np.generic):
        value = value.item()
    elif isinstance(value, tuple):
        value = list(value)
    if isinstance(value, list):
        return [_jsonable(item) for item in value]
    if isinstance(value, dict):
        if not all(isinstance(key, str) for key in value):
            raise TypeError("dictionary keys must be strings")
        return {key: _jsonable(item) for key, item in value.items()}
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def _classes() -> dict:
    return {name: getattr(classifier, name) for name in ALLOWED_CLASSES}


def _package_version() -> str:
    from . import __version__  # the package imports this module's users, not the reverse

    return __version__


def save_model(estimator, path, *, preprocessing: dict | None = None) -> Path:
    """Write a fitted CorrLoss estimator to a safe model file.

    Parameters
    ----------
    estimator : CorrLossClassifier or CorrLossAUClassifier
        Fitted (it has ``module_`` and ``classes_``).
    path : str or os.PathLike
        File to write (``.zip`` is a good suffix); parent folders are created. It is
        written atomically: after an error no partial file is left and a file already at
        ``path`` is unchanged.
    preprocessing : dict, optional
        JSON-serialisable settings of the steps before the model (for example the
        ``FaceCropTransformer`` parameters used in training), returned by
        :func:`model_info` so that prediction can repeat them.

    Returns
    -------
    Path
        The file written.

    Notes
    -----
    Constructor parameters that are not JSON-serialisable (callbacks, a custom
    ``train_split`` or optimizer class) are not stored; they only matter for training and
    their names are kept under ``dropped_params``. The loaded model uses their defaults.
    ``checkpoint_dir`` and ``resume`` (one training run's settings) are never stored.

    Examples
    --------
    >>> import tempfile, numpy as np, pandas as pd
    >>> from sklearn_corrloss.classifier import CorrLossClassifier
    >>> X = np.random.RandomState(0).normal(size=(32, 4)).astype("float32")
    >>> Y = pd.DataFrame({"AU06": X[:, 0] > 0, "AU12": X[:, 1] > 0}).astype(int)
    >>> model = CorrLossClassifier(max_epochs=2, train_split=None, random_state=0).fit(X, Y)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = save_model(model, Path(folder) / "model.zip")
    ...     loaded = load_model(path)
    >>> loaded.classes_.tolist()
    ['AU06', 'AU12']
    >>> bool((loaded.predict_proba(X) == model.predict_proba(X)).all())
    True
    """
    name = type(estimator).__name__
    if name not in ALLOWED_CLASSES or not isinstance(estimator, _classes()[name]):
        raise TypeError(
            f"save_model writes {' and '.join(ALLOWED_CLASSES)} estimators, got {name}."
        )
    if getattr(estimator, "module_", None) is None or not hasattr(estimator, "classes_"):
        raise ValueError(f"This {name} is not fitted yet; call fit before save_model.")
    defaults = _constructor_defaults(type(estimator))
    params, dropped = {}, []
    for key, value in estimator.get_params(deep=False).items():
        if key in _RUN_PARAMS:
            continue
        try:
            params[key] = _jsonable(value)
        except TypeError:
            if not (key in defaults and defaults[key] is value):
                dropped.append(key)  # a default (e.g. optimizer=Adam) is simply left out
    attributes = {
        key: _jsonable(str(value) if key == "_y_dtype" else value)
        for key, value in vars(estimator).items()
        if key in _FITTED
    }
    try:
        preprocessing = _jsonable(preprocessing or {})
    except TypeError as error:
        raise TypeError(f"preprocessing must be JSON-serialisable: {error}.") from None
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "class": name,
        "params": params,
        "attributes": attributes,
        "dropped_params": dropped,
        "preprocessing": preprocessing,
        "versions": {"sklearn_corrloss": _package_version(), "torch": torch.__version__},
    }
    weights = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in estimator.module_.state_dict().items()}, weights)
    path = Path(path)
    # Written beside the target and moved onto it when complete: a failure never leaves a
    # half-written file, nor damages a model file already at ``path``.
    with (
        atomic_output(path) as tmp,
        zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive,
    ):
        archive.writestr(_CONFIG, json.dumps(config, indent=2))
        archive.writestr(_WEIGHTS, weights.getvalue())
    return path


def _open(path: Path) -> zipfile.ZipFile:
    if not path.is_file():
        raise FileNotFoundError(f"Model file not found: {path}")
    if not zipfile.is_zipfile(path):
        raise ModelFileError(
            f"{path} is not a sklearn-corrloss model file (expected a zip archive written "
            "by save_model; pickle and joblib files are refused; a truncated or corrupt "
            "model file reads the same)."
        )
    try:
        return zipfile.ZipFile(path)
    except zipfile.BadZipFile as error:
        raise ModelFileError(f"{path} is a corrupt zip archive ({error}).") from None


def _read_member(archive: zipfile.ZipFile, name: str, path: Path) -> bytes:
    """The bytes of member ``name``; a damaged archive raises ModelFileError (KeyError if
    the member is absent)."""
    try:
        return archive.read(name)
    except (zipfile.BadZipFile, zlib.error, EOFError) as error:
        raise ModelFileError(
            f"{path} is corrupt or truncated: cannot read {name} ({error})."
        ) from None


def _constructor_defaults(cls) -> dict:
    signature = inspect.signature(cls.__init__)
    return {
        name: parameter.default
        for name, parameter in signature.parameters.items()
        if parameter.default is not inspect.Parameter.empty
    }


def _read_config(archive: zipfile.ZipFile, path: Path) -> dict:
    try:
        info = archive.getinfo(_CONFIG)
    except KeyError:
        raise ModelFileError(
            f"{path} is not a sklearn-corrloss model file: it has no {_CONFIG} "
            "(files written by torch.save, pickle or joblib are not accepted)."
        ) from None
    if info.file_size > _MAX_CONFIG_BYTES:
        raise ModelFileError(f"{path}: {_CONFIG} is implausibly large ({info.file_size} bytes).")
    try:
        config = json.loads(_read_member(archive, _CONFIG, path).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelFileError(f"{path}: {_CONFIG} is not valid JSON ({error}).") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ModelFileError(f"{path}: {_CONFIG} does not describe a {FORMAT} file.")
    version = config.get("format_version")
    if not isinstance(version, numbers.Integral) or not 1 <= version <= FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: format version {version!r} is not supported (this package reads "
            f"version {FORMAT_VERSION}); upgrade sklearn-corrloss."
        )
    if config.get("class") not in ALLOWED_CLASSES:
        raise ModelFileError(
            f"{path}: class {config.get('class')!r} is not allowed; model files may only "
            f"name {', '.join(ALLOWED_CLASSES)}."
        )
    for key in ("params", "attributes"):
        if not isinstance(config.get(key), dict):
            raise ModelFileError(f"{path}: {_CONFIG} lacks the {key!r} table.")
    return config


def _read_weights(archive: zipfile.ZipFile, path: Path) -> dict:
    try:
        data = _read_member(archive, _WEIGHTS, path)
    except KeyError:
        raise ModelFileError(f"{path} has no {_WEIGHTS} member.") from None
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, AttributeError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise ModelFileError(
            f"{path}: refused to load {_WEIGHTS}: it is not a plain tensor state_dict "
            f"(torch.load with weights_only=True rejected it: {first_line})."
        ) from None
    if not isinstance(state, dict) or not all(
        isinstance(key, str) and isinstance(value, torch.Tensor) for key, value in state.items()
    ):
        raise ModelFileError(f"{path}: {_WEIGHTS} must map parameter names to tensors.")
    return state


def load_model(path, *, device: str | None = None):
    """Load an estimator written by :func:`save_model`, without executing code from the file.

    Parameters
    ----------
    path : str or os.PathLike
        Model file.
    device : str, optional
        Override the stored ``device`` (e.g. ``"cpu"`` for a model trained on ``"cuda"``).

    Returns
    -------
    CorrLossClassifier or CorrLossAUClassifier
        Ready to ``predict``, ``predict_proba`` and ``partial_fit``; its AU names
        (``classes_``), ``threshold`` and preprocessing settings are those saved.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ModelFileError
        If the file is not a model file of this format, names a class outside the
        allow-list, holds anything but tensors in its weights (e.g. a pickle with code),
        or its weights do not fit the network its configuration describes.

    Examples
    --------
    >>> import pickle, tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     bad = Path(folder) / "model.pkl"
    ...     _ = bad.write_bytes(pickle.dumps({"weights": [1, 2]}))
    ...     load_model(bad)
    Traceback (most recent call last):
    ...
    sklearn_corrloss.persistence.ModelFileError: ... is not a sklearn-corrloss model file ...
    """
    path = Path(os.fspath(path))
    with _open(path) as archive:
        config = _read_config(archive, path)
        state = _read_weights(archive, path)
    return _build(config, state, path, device)


def _build(config: dict, state: dict, path: Path, device: str | None):
    cls = _classes()[config["class"]]
    params = dict(config["params"])
    unknown = sorted(set(params) - set(cls().get_params(deep=False)))
    if unknown:
        raise ModelFileError(f"{path}: unknown {cls.__name__} parameter(s) {unknown}.")
    if device is not None:
        params["device"] = device
    if config.get("dropped_params"):
        warnings.warn(
            f"{path}: parameters {config['dropped_params']} were not stored (not "
            "JSON-serialisable); their defaults are used.",
            stacklevel=3,
        )
    # The stored state dict holds every weight: never fetch pretrained ones while loading.
    pretrained = params.pop("weights", None)
    estimator = cls(**params, **({"weights": None} if "weights" in cls().get_params() else {}))
    for key, value in config["attributes"].items():
        if key not in _FITTED:
            raise ModelFileError(f"{path}: unexpected fitted attribute {key!r}.")
        try:
            setattr(estimator, key, _FITTED[key](value))
        except (TypeError, ValueError) as error:
            raise ModelFileError(f"{path}: invalid fitted attribute {key!r}: {error}") from None
    if "classes_" not in config["attributes"]:
        raise ModelFileError(f"{path}: the file has no classes_ (label names).")
    if not isinstance(config["attributes"]["classes_"], list):
        raise ModelFileError(f"{path}: classes_ must be a list of label names.")
    if getattr(estimator, "target_type_", None) in ("binary", "multiclass"):
        estimator._label_binarizer = LabelBinarizer().fit(estimator.classes_)
    try:
        estimator._check_params()  # the constraints fit applies: rho in [0, 1], ...
        estimator.initialize()
    except (TypeError, ValueError, AttributeError, RuntimeError) as error:
        # Crafted or damaged settings (an optimizer named by a string, rho = 7, ...).
        detail = (str(error).strip() or type(error).__name__).splitlines()[0]
        hint = ""
        if estimator.device not in (None, "cpu"):
            hint = " (a model trained on another device loads with device='cpu')"
        raise ModelFileError(
            f"{path}: cannot build the estimator its {_CONFIG} describes{hint}: {detail}"
        ) from None
    try:
        estimator.module_.load_state_dict(state)
    except RuntimeError as error:
        raise ModelFileError(
            f"{path}: the weights do not fit the network of its configuration: "
            f"{str(error).splitlines()[0]}"
        ) from None
    estimator.module_.eval()
    if pretrained is not None:
        estimator.weights = pretrained  # as trained; only a refit would read it
    return estimator


def model_info(path) -> dict:
    """The configuration of a model file, without loading its weights.

    Parameters
    ----------
    path : str or os.PathLike
        Model file written by :func:`save_model`.

    Returns
    -------
    dict
        ``class``, ``params``, ``attributes`` (``classes_``: the AU names, ...),
        ``preprocessing``, ``dropped_params`` and ``versions``.

    Raises
    ------
    FileNotFoundError, ModelFileError
        As :func:`load_model`.

    Examples
    --------
    >>> import tempfile, numpy as np, pandas as pd
    >>> from sklearn_corrloss import CorrLossClassifier, save_model
    >>> X = np.random.RandomState(0).normal(size=(32, 4)).astype("float32")
    >>> Y = pd.DataFrame({"AU06": X[:, 0] > 0, "AU12": X[:, 1] > 0}).astype(int)
    >>> model = CorrLossClassifier(rho=0.3, max_epochs=1, train_split=None).fit(X, Y)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     info = model_info(save_model(model, Path(folder) / "model.zip"))
    >>> info["class"], info["params"]["rho"], info["attributes"]["classes_"]
    ('CorrLossClassifier', 0.3, ['AU06', 'AU12'])
    """
    path = Path(os.fspath(path))
    with _open(path) as archive:
        return _read_config(archive, path)
