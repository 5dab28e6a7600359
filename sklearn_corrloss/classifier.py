"""Multi-label classifiers trained with CorrLoss: skorch nets that behave like sklearn estimators.

:class:`CorrLossClassifier` works on feature vectors (an MLP), :class:`CorrLossAUClassifier`
on face images (a torchvision backbone with a frozen trunk, VGG16 as in the paper). Both
share :class:`MultiLabelNet`, which holds the training logic of the paper: Adam, gradient
clipping by value, the :class:`~sklearn_corrloss.losses.CorrBCELoss` criterion, a
group-aware validation split and restoring the weights of the epoch with the lowest
validation loss.
"""

from __future__ import annotations

import copy
import functools
import inspect
import math
import os
import warnings
from collections.abc import Mapping
from contextlib import contextmanager, suppress
from numbers import Integral, Real
from pathlib import Path
from types import MappingProxyType
from typing import ClassVar

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.metrics import f1_score
from sklearn.model_selection import GroupShuffleSplit, ShuffleSplit
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions, validate_parameter_constraints
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import assert_all_finite, check_is_fitted, validate_data
from skorch import NeuralNet
from skorch.callbacks import Callback, EpochTimer, PassthroughScoring, PrintLog
from skorch.dataset import Dataset as SkorchDataset
from skorch.dataset import unpack_data
from skorch.utils import TeeGenerator
from torch.utils.data import DataLoader, Subset

from .checkpoints import (
    CheckpointError,
    EpochCheckpoint,
    clear_checkpoints,
    describe_difference,
    find_checkpoint,
    read_checkpoint,
    remove_leftovers,
    run_fingerprint,
    set_rng_state,
)
from .feature_cache import (
    CACHE_DTYPES,
    FEATURE_CACHE,
    CachedFeatures,
    FeatureCacheFull,
    fill,
    image_keys,
    trunk_key,
)
from .images import ImageDataset, TransformedDataset, check_image_input, default_augmentation
from .losses import CorrBCELoss
from .metrics import macro_f1
from .networks import BACKBONES, BackboneNet, MLPHead

__all__ = [
    "CorrLossAUClassifier",
    "CorrLossClassifier",
    "GroupValidSplit",
    "MultiLabelNet",
    "RestoreBestWeights",
]

_MAX_SEED = np.iinfo(np.int32).max
#: DataLoader arguments the feature-cache fill takes over from ``iterator_valid__*``.
_LOADER_WORKER_KWARGS = frozenset(
    {
        "num_workers",
        "pin_memory",
        "pin_memory_device",
        "prefetch_factor",
        "multiprocessing_context",
        "worker_init_fn",
        "timeout",
    }
)
#: DataLoader arguments that only make sense with worker processes.
_WORKER_ONLY_KWARGS = frozenset(
    {
        "num_workers",
        "prefetch_factor",
        "persistent_workers",
        "multiprocessing_context",
        "worker_init_fn",
        "timeout",
    }
)


class GroupValidSplit:
    """Internal train/validation split that keeps each group (subject) on one side.

    A callable in skorch's ``train_split`` convention:
    ``split(dataset, y=None, groups=None) -> (dataset_train, dataset_valid)``.
    With ``groups`` it uses :class:`~sklearn.model_selection.GroupShuffleSplit`, so no
    subject appears in both parts (``valid_size`` is then the fraction of *groups*);
    without ``groups`` it falls back to a plain random split of the samples
    (:class:`~sklearn.model_selection.ShuffleSplit`).

    Parameters
    ----------
    valid_size : float in (0, 1), default=0.2
        Fraction of groups (or of samples, without groups) held out for validation.
    random_state : int, RandomState instance or None, default=None
        Seed of the shuffled split.

    Examples
    --------
    >>> import numpy as np
    >>> split = GroupValidSplit(0.5, random_state=0)
    >>> groups = np.repeat(["s1", "s2", "s3", "s4"], 3)
    >>> train, valid = split(np.arange(12), groups=groups)
    >>> set(groups[train.indices]) & set(groups[valid.indices])
    set()
    """

    def __init__(self, valid_size: float = 0.2, *, random_state=None):
        self.valid_size = valid_size
        self.random_state = random_state

    def __repr__(self) -> str:
        return f"GroupValidSplit({self.valid_size!r}, random_state={self.random_state!r})"

    def __call__(self, dataset, y=None, groups=None):
        """Split ``dataset`` into a training and a validation part.

        Parameters
        ----------
        dataset : sized dataset
            Anything with ``len`` that :class:`torch.utils.data.Subset` can index.
        y : array-like or None, default=None
            Ignored; accepted for skorch's ``train_split`` convention.
        groups : array-like of shape (n_samples,) or None, default=None
            Group (subject) of each sample; None splits the samples at random.

        Returns
        -------
        dataset_train, dataset_valid : torch.utils.data.Subset
            The two parts of ``dataset``; with ``groups``, no group is in both.
        """
        n_samples = len(dataset)
        if not 0.0 < float(self.valid_size) < 1.0:
            raise ValueError(f"valid_size must lie in (0, 1), got {self.valid_size!r}.")
        placeholder = np.zeros(n_samples)
        if groups is None:
            splitter = ShuffleSplit(
                n_splits=1, test_size=self.valid_size, random_state=self.random_state
            )
            train, valid = next(splitter.split(placeholder))
        else:
            groups = np.asarray(groups)
            if groups.shape != (n_samples,):
                raise ValueError(
                    f"groups must have shape ({n_samples},) like the data, got {groups.shape}."
                )
            n_groups = len(np.unique(groups))
            if n_groups < 2:
                raise ValueError(
                    f"A group-aware validation split needs at least 2 distinct groups, got "
                    f"{n_groups}; pass more subjects or train_split=None (corrloss: "
                    "--valid-size 0)."
                )
            splitter = GroupShuffleSplit(
                n_splits=1, test_size=self.valid_size, random_state=self.random_state
            )
            train, valid = next(splitter.split(placeholder, groups=groups))
        return Subset(dataset, train.tolist()), Subset(dataset, valid.tolist())


class RestoreBestWeights(Callback):
    """Keep the module weights of the best epoch in memory and restore them at the end.

    The paper's model selection: "keep the model with the lowest validation loss". The
    copy lives on the CPU and is dropped when training ends (and when pickling).

    Parameters
    ----------
    monitor : str, default="valid_loss"
        History key to compare. Epochs without it (no validation data) are ignored;
        when no epoch has it, the last weights are kept.
    lower_is_better : bool, default=True

    Attributes
    ----------
    best_epoch_ : int or None
        Epoch (1-based, as in the history) whose weights were kept in the last training call.
    best_score_ : float

    Examples
    --------
    Every :class:`CorrLossClassifier` already uses one; a plain skorch net can too:

    >>> import numpy as np, torch
    >>> from skorch import NeuralNetClassifier
    >>> from sklearn_corrloss.classifier import RestoreBestWeights
    >>> X = np.random.RandomState(0).rand(40, 3).astype("float32")
    >>> y = (X[:, 0] > 0.5).astype("int64")
    >>> restore = RestoreBestWeights()
    >>> net = NeuralNetClassifier(
    ...     torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Softmax(dim=-1)),
    ...     max_epochs=3, callbacks=[restore], verbose=0,
    ... ).fit(X, y)
    >>> restore.best_epoch_ in (1, 2, 3)
    True
    """

    def __init__(self, monitor: str = "valid_loss", lower_is_better: bool = True):
        self.monitor = monitor
        self.lower_is_better = lower_is_better

    def on_train_begin(self, net, **kwargs):
        """Forget the best score, epoch and weights of an earlier training call.

        Parameters
        ----------
        net : skorch.NeuralNet
            The net being trained.
        **kwargs
            Further arguments of skorch's callback hook (ignored).
        """
        self.best_score_ = math.inf if self.lower_is_better else -math.inf
        self.best_epoch_ = None
        self._best_state = None

    def on_epoch_end(self, net, **kwargs):
        """Copy the module weights (to the CPU) when ``monitor`` improved this epoch.

        Parameters
        ----------
        net : skorch.NeuralNet
            The net being trained; its history's last row holds ``monitor``.
        **kwargs
            Further arguments of skorch's callback hook (ignored).
        """
        score = net.history[-1].get(self.monitor)
        if score is None or not math.isfinite(score):
            return
        improved = score < self.best_score_ if self.lower_is_better else score > self.best_score_
        if improved:
            self.best_score_ = float(score)
            self.best_epoch_ = net.history[-1, "epoch"]
            self._best_state = {
                k: v.detach().to("cpu", copy=True) for k, v in net.module_.state_dict().items()
            }

    def on_train_end(self, net, **kwargs):
        """Load the best epoch's weights into ``net.module_`` (if not the last) and drop the copy.

        Parameters
        ----------
        net : skorch.NeuralNet
            The trained net.
        **kwargs
            Further arguments of skorch's callback hook (ignored).
        """
        state, self._best_state = getattr(self, "_best_state", None), None
        if state is not None and len(net.history) and self.best_epoch_ != net.history[-1, "epoch"]:
            net.module_.load_state_dict(state)
            if net.verbose:
                print(f"Restored the weights of epoch {self.best_epoch_} (best {self.monitor}).")

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_best_state"] = None
        return state

    def checkpoint_state(self) -> dict:
        """The best score, epoch and weights so far (for an epoch checkpoint).

        Returns
        -------
        dict
            ``best_score`` (float), ``best_epoch`` (int or None) and ``best_state``
            (the module's state dict on the CPU, or None).
        """
        return {
            "best_score": float(self.best_score_),
            "best_epoch": self.best_epoch_,
            "best_state": getattr(self, "_best_state", None),
        }

    def load_checkpoint_state(self, state: dict) -> None:
        """Continue from :meth:`checkpoint_state` (a resumed ``fit``).

        Parameters
        ----------
        state : dict
            A dict returned by :meth:`checkpoint_state`.
        """
        self.best_score_ = float(state["best_score"])
        self.best_epoch_ = state["best_epoch"]
        self._best_state = state["best_state"]


@contextmanager
def _torch_seed(seed: int, device):
    """Seed torch inside a fork of its RNG state: nothing leaks to the caller."""
    device = torch.device(device if device is not None else "cpu")
    cuda = device.type == "cuda" and torch.cuda.is_available()
    devices = (
        [device.index if device.index is not None else torch.cuda.current_device()] if cuda else []
    )
    with torch.random.fork_rng(devices=devices):
        torch.default_generator.manual_seed(int(seed))
        if cuda:
            with torch.cuda.device(devices[0]):
                torch.cuda.manual_seed(int(seed))
        yield


@functools.cache
def _keyword_parameters(cls) -> tuple[str, ...]:
    """Names of the keyword-only ``__init__`` parameters of ``cls`` and its bases.

    The bases count too so that a mixin with its own ``__init__`` (for example skorch's
    ``AccelerateMixin``, which adds ``accelerator``) keeps the estimator's parameters.
    skorch's ``NeuralNet`` and the classes above it are left out: their parameters are
    fixed here or repeated by the estimators.
    """
    names: dict[str, None] = {}
    for klass in cls.__mro__:
        if klass is NeuralNet:
            break
        if "__init__" in vars(klass):
            signature = inspect.signature(klass.__init__)
            names.update(
                (p.name, None) for p in signature.parameters.values() if p.kind == p.KEYWORD_ONLY
            )
    return tuple(names)


#: Fitted attributes that checking training data sets (restored when the check fails).
_DATA_ATTRIBUTES = (
    "n_features_in_",
    "feature_names_in_",
    "classes_",
    "n_outputs_",
    "target_type_",
    "_y_dtype",
    "_label_binarizer",
)

_COMMON_CONSTRAINTS = {
    "rho": [Interval(Real, 0, 1, closed="both")],
    "threshold": [Interval(Real, 0, 1, closed="neither"), "array-like"],
    "hidden_units": [Interval(Integral, 1, None, closed="left")],
    "dropout": [Interval(Real, 0, 1, closed="left")],
    "lr": [Interval(Real, 0, None, closed="neither")],
    "batch_size": [Interval(Integral, 1, None, closed="left")],
    "max_epochs": [Interval(Integral, 1, None, closed="left")],
    "clip_value": [Interval(Real, 0, None, closed="neither"), None],
    "optimizer": [callable],
    "train_split": [Interval(Real, 0, 1, closed="neither"), callable, None],
    "callbacks": [list, StrOptions({"disable"}), None],
    "warm_start": ["boolean"],
    "verbose": ["verbose"],
    "device": [str, torch.device, None],
    "random_state": ["random_state"],
    "checkpoint_dir": [str, os.PathLike, None],
    "resume": ["boolean"],
}


class MultiLabelNet(ClassifierMixin, NeuralNet):
    """Shared training logic of the CorrLoss classifiers (not used directly).

    Subclasses define ``__init__`` (keyword-only parameters, stored as is), the input
    check :meth:`_check_X`, :meth:`_build_module` and, if needed, :meth:`get_dataset`.

    Parameters
    ----------
    module, criterion, optimizer, lr, max_epochs, batch_size, iterator_train, \
iterator_valid, dataset, train_split, callbacks, predict_nonlinearity, warm_start, verbose, \
device, compile, use_caching, torch_load_kwargs, **kwargs
        The constructor of :class:`skorch.NeuralNet`, inherited unchanged: this base class
        is not instantiated itself (``fit`` needs the subclass hooks). Subclasses define
        their own keyword-only parameters (see :class:`CorrLossClassifier`); ``module``,
        ``criterion``, ``iterator_train``, ``iterator_valid``, ``dataset``, ``compile``,
        ``use_caching``, ``torch_load_kwargs`` and ``predict_nonlinearity`` are fixed
        class attributes here.

    Notes
    -----
    Differences from a plain :class:`skorch.NeuralNet`:

    * ``__init__`` only stores parameters; they are validated in ``fit`` with
      ``_parameter_constraints``; the module is built in ``fit`` from the data's shape.
    * ``fit(X, y, groups=None)``: ``groups`` goes to the validation split, not to the
      module; the default split (``train_split=0.2``) is :class:`GroupValidSplit`.
    * The criterion is :class:`~sklearn_corrloss.losses.CorrBCELoss` with the current
      ``rho``; the history gets ``train_bce``, ``train_corr``, ``valid_bce`` and
      ``valid_corr`` besides ``train_loss`` and ``valid_loss``.
    * Training shuffles, clips gradients by value, seeds torch from ``random_state``
      inside :func:`torch.random.fork_rng` (no global seeding) and restores the
      weights of the epoch with the lowest ``valid_loss`` (:class:`RestoreBestWeights`).

    Examples
    --------
    Both public estimators are ``MultiLabelNet`` subclasses:

    >>> from sklearn_corrloss import CorrLossAUClassifier, CorrLossClassifier
    >>> from sklearn_corrloss.classifier import MultiLabelNet
    >>> issubclass(CorrLossClassifier, MultiLabelNet)
    True
    >>> issubclass(CorrLossAUClassifier, MultiLabelNet)
    True
    """

    # skorch components that are fixed here rather than constructor parameters.
    module = None
    criterion = CorrBCELoss
    iterator_train = DataLoader
    iterator_valid = DataLoader
    dataset = SkorchDataset
    compile = False
    use_caching = "auto"
    torch_load_kwargs = None
    #: Outputs are logits; probabilities are their sigmoid (skorch cannot infer this).
    predict_nonlinearity = staticmethod(torch.sigmoid)

    # Fitted-state defaults: skorch sets these in __init__; class defaults keep
    # __init__ free of anything but parameters.
    history_ = None
    initialized_ = False
    virtual_params_ = MappingProxyType({})

    _parameter_constraints: ClassVar[dict] = dict(_COMMON_CONSTRAINTS)

    # --- parameters -------------------------------------------------------------------
    @classmethod
    def _init_param_names(cls) -> tuple[str, ...]:
        return _keyword_parameters(cls)

    def __setattr__(self, name, value):
        if name in self._init_param_names():
            # A constructor parameter (for example a transform that is an nn.Module) is
            # stored as is, not registered as a torch component the way skorch would.
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    def _store_params(self, arguments: dict) -> None:
        """Store the ``locals()`` of a subclass ``__init__``: parameters and ``**kwargs``."""
        kwargs = arguments["kwargs"]
        for name, value in arguments.items():
            if name not in ("self", "kwargs", "__class__"):
                setattr(self, name, value)
        self._params_to_validate = set(kwargs)
        vars(self).update(kwargs)

    def _get_param_names(self):
        names = self._init_param_names()
        # Extra keyword arguments: skorch routing parameters such as module__...,
        # optimizer__..., iterator_train__... (unknown names are refused in fit).
        extra = getattr(self, "_params_to_validate", set())
        return sorted(names) + sorted(k for k in extra if k in vars(self) and k not in names)

    __repr__ = BaseEstimator.__repr__

    def _check_params(self) -> None:
        validate_parameter_constraints(
            self._parameter_constraints,
            {k: getattr(self, k) for k in self._parameter_constraints},
            caller_name=type(self).__name__,
        )

    def set_params(self, **kwargs):
        """Set parameters; a new ``rho`` reaches the criterion at once, the module is kept.

        Parameters
        ----------
        **kwargs
            Parameter names and values, including skorch's routed ones such as
            ``optimizer__weight_decay``.

        Returns
        -------
        self
        """
        if "callbacks" in kwargs and not self.initialized_:
            # Before fit a plain parameter (skorch would build the callbacks right away).
            self.callbacks = kwargs.pop("callbacks")
        if "rho" in kwargs and self.initialized_:
            # Checked before anything is stored: a fitted model keeps its valid rho.
            validate_parameter_constraints(
                {"rho": self._parameter_constraints["rho"]},
                {"rho": kwargs["rho"]},
                caller_name=type(self).__name__,
            )
        super().set_params(**kwargs)
        if "rho" in kwargs and self.initialized_:
            self._sync_criterion()
        return self

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        tags.target_tags.multi_output = True
        tags.non_deterministic = False
        return tags

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "classes_") and getattr(self, "module_", None) is not None

    def get_metadata_routing(self):
        """Metadata routing: ``groups`` is consumed by ``fit``/``partial_fit`` themselves.

        Request it with ``set_fit_request(groups=True)`` (metadata routing enabled).

        Returns
        -------
        sklearn.utils.metadata_routing.MetadataRequest
            The estimator's metadata requests.
        """
        # The net routes groups to its own split; it is a plain consumer for sklearn.
        return BaseEstimator.get_metadata_routing(self)

    # --- hooks for subclasses ---------------------------------------------------------
    def _check_X(self, X, *, reset: bool):
        raise NotImplementedError

    def _build_module(self) -> torch.nn.Module:
        raise NotImplementedError

    def _training_dataset(self, dataset):
        """Wrap the training part of the split (for example with augmentation)."""
        return dataset

    # --- targets ----------------------------------------------------------------------
    def _encode_targets(self, y, *, reset: bool, classes=None) -> np.ndarray:
        name = type(self).__name__
        if y is None:
            raise ValueError(f"{name} requires y to be passed, but the target y is None.")
        names, label_dtype = None, None
        if isinstance(y, pd.DataFrame):
            names = np.asarray([str(c) for c in y.columns], dtype=object)
            duplicated = sorted({n for n in names if (names == n).sum() > 1})
            if duplicated:
                raise ValueError(
                    f"Y has duplicate label columns {duplicated}; each label (AU) must be one "
                    "column."
                )
            label_dtype = y.to_numpy().dtype  # int/bool columns stay int/bool in predict
            try:
                y_array = y.to_numpy(dtype=np.float64, na_value=np.nan)
            except (TypeError, ValueError) as error:
                raise ValueError(
                    f"Y must hold binary labels (0/1, NaN for unknown): {error}"
                ) from error
        elif sp.issparse(y):
            y_array = y.toarray()
        else:
            y_array = np.asarray(y)
        if y_array.ndim == 1:
            return self._encode_1d(y_array, reset=reset, classes=classes)
        if y_array.ndim != 2:
            raise ValueError(
                f"Y must be a (n_samples, n_labels) matrix or a 1-D target, got shape "
                f"{y_array.shape}."
            )
        n_labels = y_array.shape[1]
        if n_labels < 2:
            raise ValueError(
                f"Y has {n_labels} label column(s); CorrLoss needs a multi-label matrix with "
                "at least 2 labels. For a single binary or multiclass target pass a 1-D y."
            )
        try:
            Y = y_array.astype(np.float64)
        except (TypeError, ValueError) as error:
            raise ValueError(
                f"Y must hold binary labels (0/1, NaN for unknown), got dtype {y_array.dtype}."
            ) from error
        if np.isinf(Y).any():
            raise ValueError("Y contains infinite values; labels must be 0, 1 or NaN (unknown).")
        known = ~np.isnan(Y)
        bad = known & (Y != 0) & (Y != 1)
        if bad.any():
            raise ValueError(
                f"Y must be binary (0/1, NaN for unknown); found values {np.unique(Y[bad])[:5]}."
            )
        if not known.any():
            raise ValueError("Y holds no known label: every entry is NaN.")
        if reset:
            self.target_type_ = "multilabel-indicator"
            self.classes_ = names if names is not None else np.arange(n_labels)
            self.n_outputs_ = n_labels
            label_dtype = y_array.dtype if label_dtype is None else label_dtype
            self._y_dtype = label_dtype if label_dtype.kind in "biuf" else np.dtype(float)
        else:
            if self.target_type_ != "multilabel-indicator":
                raise ValueError(
                    f"This {name} was fitted on a 1-D {self.target_type_} target; got a "
                    f"label matrix of shape {y_array.shape}."
                )
            if n_labels != self.n_outputs_:
                raise ValueError(
                    f"Y has {n_labels} labels, but this {name} was fitted with "
                    f"{self.n_outputs_} labels {list(self.classes_)}."
                )
            if (
                names is not None
                and self.classes_.dtype == object
                and list(names) != list(self.classes_)
            ):
                raise ValueError(
                    f"Y's columns {list(names)} differ from the fitted labels "
                    f"{list(self.classes_)}."
                )
        return Y.astype(np.float32)

    def _encode_1d(self, y, *, reset: bool, classes=None) -> np.ndarray:
        if y.dtype.kind in "fc":
            assert_all_finite(y, input_name="y")
        check_classification_targets(y)
        if reset:
            binarizer = LabelBinarizer().fit(y if classes is None else np.asarray(classes))
            if len(binarizer.classes_) < 2:
                raise ValueError(
                    f"y has 1 class ({binarizer.classes_[0]!r}); a classifier needs at least "
                    "2 classes."
                )
            self._label_binarizer = binarizer
            self.classes_ = binarizer.classes_
            self.target_type_ = "binary" if len(binarizer.classes_) == 2 else "multiclass"
            self.n_outputs_ = 1 if self.target_type_ == "binary" else len(binarizer.classes_)
        elif self.target_type_ == "multilabel-indicator":
            raise ValueError(
                f"This {type(self).__name__} was fitted on a label matrix; got a 1-D target."
            )
        unseen = np.setdiff1d(np.unique(y), self.classes_)
        if unseen.size:
            raise ValueError(f"y contains labels {unseen[:5]} not seen in fit {self.classes_}.")
        return self._label_binarizer.transform(y).astype(np.float32)

    def _check_groups(self, groups, n_samples: int):
        if groups is None:
            return None
        groups = np.asarray(groups)
        if groups.ndim != 1 or len(groups) != n_samples:
            raise ValueError(
                f"groups must be 1-D with one entry per sample ({n_samples}), got shape "
                f"{groups.shape}."
            )
        return groups

    def _validate_training_data(self, X, y, groups, *, reset: bool, classes=None):
        # Rejected data leaves a fitted estimator as it was: validate_data resets
        # n_features_in_ before the labels are checked, so restore what was set.
        before = {key: vars(self)[key] for key in _DATA_ATTRIBUTES if key in vars(self)}
        try:
            self._check_params()
            X = self._check_X(X, reset=reset)
            n_samples = len(X)
            Y = self._encode_targets(y, reset=reset, classes=classes)
            if len(Y) != n_samples:
                raise ValueError(
                    f"X and y have inconsistent numbers of samples: X has {n_samples}, y has "
                    f"{len(Y)}."
                )
            groups = self._check_groups(groups, n_samples)
            self._check_threshold()
        except Exception:
            for key in _DATA_ATTRIBUTES:
                vars(self).pop(key, None)
            vars(self).update(before)
            raise
        return X, Y, groups

    def _check_threshold(self) -> np.ndarray:
        threshold = np.asarray(self.threshold, dtype=np.float64)
        if threshold.ndim == 1 and getattr(self, "target_type_", None) == "multilabel-indicator":
            if threshold.shape != (self.n_outputs_,):
                raise ValueError(
                    f"threshold must be a scalar or have one value per label "
                    f"({self.n_outputs_}), got shape {threshold.shape}."
                )
        elif threshold.ndim != 0:
            raise ValueError(
                f"threshold must be a scalar for a {getattr(self, 'target_type_', '')} target, "
                f"got shape {threshold.shape}."
            )
        if not np.all((threshold > 0) & (threshold < 1)):
            raise ValueError(f"threshold values must lie in (0, 1), got {self.threshold!r}.")
        return threshold

    # --- skorch initialisation --------------------------------------------------------
    @property
    def _default_callbacks(self):
        return [
            ("epoch_timer", EpochTimer()),
            ("train_loss", PassthroughScoring(name="train_loss", on_train=True)),
            ("valid_loss", PassthroughScoring(name="valid_loss")),
            ("train_bce", PassthroughScoring(name="train_bce", on_train=True)),
            ("train_corr", PassthroughScoring(name="train_corr", on_train=True)),
            ("valid_bce", PassthroughScoring(name="valid_bce")),
            ("valid_corr", PassthroughScoring(name="valid_corr")),
            ("restore_best", RestoreBestWeights(monitor="valid_loss")),
            ("checkpoint", EpochCheckpoint()),  # writes only when fit has checkpoint_dir
            ("print_log", PrintLog()),
        ]

    def initialize_module(self):
        """Build the network from the parameters and the fitted data shape.

        Returns
        -------
        self
            The net, with the new network in ``module_``.
        """
        self.module_ = self._build_module()
        return self

    def initialize_criterion(self):
        """``CorrBCELoss(rho=self.rho, **criterion__params)``.

        Returns
        -------
        self
            The net, with the new loss in ``criterion_``.
        """
        self.criterion_ = CorrBCELoss(rho=float(self.rho), **self.get_params_for("criterion"))
        return self

    def get_all_learnable_params(self):
        """Trainable (``requires_grad``) parameters only: a frozen trunk is left out."""
        for name, param in super().get_all_learnable_params():
            if param.requires_grad:
                yield name, param

    def _sync_criterion(self) -> None:
        criterion = getattr(self, "criterion_", None)
        if criterion is None or criterion.rho != float(self.rho):
            self._initialize_criterion()

    def _seeds(self) -> tuple[int, int]:
        rng = check_random_state(self.random_state)
        init_seed, train_seed = rng.randint(_MAX_SEED, size=2)
        return int(init_seed), int(train_seed)

    # --- training ---------------------------------------------------------------------
    def fit(self, X, y, groups=None):
        """Train a fresh network (unless ``warm_start``) on ``X`` and labels ``y``.

        Parameters
        ----------
        X : array-like
            Input; see the estimator's docstring.
        y : array-like or DataFrame of shape (n_samples, n_labels), or (n_samples,)
            Binary label matrix (NaN = unknown label, ignored by the loss); DataFrame
            columns become ``classes_``. A 1-D binary or multiclass target is
            binarised internally.
        groups : array-like of shape (n_samples,), optional
            Group (subject) IDs for the internal validation split: no group ends up in
            both parts. Not passed to the module.

        Returns
        -------
        self
        """
        continuing = self.warm_start and self.__sklearn_is_fitted__()
        X, Y, groups = self._validate_training_data(X, y, groups, reset=not continuing)
        init_seed, train_seed = self._seeds()
        checkpoint = self._start_checkpoints(X, Y, groups, train_seed)
        if not continuing:
            with _torch_seed(init_seed, self.device):
                self.initialize()
        if checkpoint is not None:
            train_seed = checkpoint["train_seed"]  # the split and shuffling continue as they were
        self.resumed_epoch_ = 0 if checkpoint is None else checkpoint["epoch"]
        return self._train(X, Y, groups, train_seed, checkpoint=checkpoint)

    def _start_checkpoints(self, X, Y, groups, train_seed: int):
        """Prepare ``checkpoint_dir`` for this fit; return the checkpoint to resume or None.

        Without ``resume`` the folder's old checkpoints are deleted; with it the latest
        one is read and must come from a run with the same settings and data.
        """
        self._checkpoint_run = None
        if self.checkpoint_dir is None:
            if self.resume:
                raise ValueError(
                    "resume=True needs checkpoint_dir: the folder of the run to continue."
                )
            return None
        directory = Path(os.fspath(self.checkpoint_dir))
        if directory.exists() and not directory.is_dir():
            raise NotADirectoryError(f"checkpoint_dir {directory} is a file, not a folder.")
        fingerprint = run_fingerprint(self, X, Y, groups)
        checkpoint = None
        if self.resume:
            path = find_checkpoint(directory)
            if path is not None:
                checkpoint = read_checkpoint(path)
                if checkpoint["fingerprint"] != fingerprint:
                    difference = describe_difference(checkpoint["fingerprint"], fingerprint)
                    raise CheckpointError(
                        f"Cannot resume from {path}: it was written by a run with other "
                        f"settings or data ({difference}). Resume with the same settings and "
                        "data, or start over (resume=False, or another checkpoint folder)."
                    )
                remove_leftovers(directory)
            elif self.verbose:
                print(f"No checkpoint in {directory}; training from scratch.")
        if checkpoint is None:
            clear_checkpoints(directory)
        seed = train_seed if checkpoint is None else checkpoint["train_seed"]
        self._checkpoint_run = {
            "directory": os.fspath(directory),
            "train_seed": seed,
            "fingerprint": fingerprint,
        }
        return checkpoint

    def _restore_checkpoint(self, checkpoint: dict) -> int:
        """Load a checkpoint into the initialised net; return the epochs left to train."""
        try:
            self.module_.load_state_dict(checkpoint["params"])
            self.optimizer_.load_state_dict(checkpoint["optimizer"])
        except (RuntimeError, ValueError, KeyError) as error:
            raise CheckpointError(
                f"Checkpoint {checkpoint['path']} does not fit this network: "
                f"{str(error).splitlines()[0]}"
            ) from error
        self.history_ = checkpoint["history"]
        state = checkpoint["state"]
        saved = state.get("callbacks", {})
        for name, callback in self.callbacks_:
            if name in saved and hasattr(callback, "load_checkpoint_state"):
                callback.load_checkpoint_state(saved[name])
        if state.get("grad_scaler") is not None:
            device_type = torch.device(self.device).type if self.device is not None else "cpu"
            self.grad_scaler_ = torch.amp.GradScaler(device_type)
            self.grad_scaler_.load_state_dict(state["grad_scaler"])
        self._resume_rng = state["rng"]  # set when the first resumed epoch starts
        done = checkpoint["epoch"]
        left = 0 if checkpoint["finished"] else max(self.max_epochs - done, 0)
        if self.verbose:
            how = (
                "it stopped early (early stopping or Ctrl+C); not training further"
                if checkpoint["finished"]
                else f"training {left} more epoch(s) up to max_epochs={self.max_epochs}"
            )
            print(f"Resuming from {checkpoint['path']} after epoch {done}: {how}.")
        return left

    def partial_fit(self, X, y, classes=None, groups=None):
        """Continue training the current network for ``max_epochs`` epochs.

        The module and the optimizer state are kept; the criterion uses the current
        ``rho`` (so ``set_params(rho=0.45)`` followed by ``partial_fit`` calibrates with
        the new weight, as in the paper's calibration on one expression). On an
        unfitted estimator this is ``fit``.

        Parameters
        ----------
        X, y, groups
            As in :meth:`fit`.
        classes : array-like, optional
            All classes of a 1-D target, for the first call (sklearn convention).

        Returns
        -------
        self
        """
        fitted = self.__sklearn_is_fitted__()
        X, Y, groups = self._validate_training_data(
            X, y, groups, reset=not fitted, classes=classes
        )
        self._checkpoint_run = None  # checkpoints are written (and resumed) by fit only
        init_seed, train_seed = self._seeds()
        if not fitted:
            with _torch_seed(init_seed, self.device):
                self.initialize()
        else:
            train_seed = (train_seed + 7919 * len(self.history_)) % _MAX_SEED
        return self._train(X, Y, groups, train_seed)

    def _train(self, X, Y, groups, seed: int, checkpoint=None):
        self.check_training_readiness()
        self._sync_criterion()
        with _torch_seed(seed, self.device):
            self.notify("on_train_begin", X=X, y=Y)
            # After on_train_begin, which resets the callbacks' state.
            epochs = None if checkpoint is None else self._restore_checkpoint(checkpoint)
            # skorch's EarlyStopping (and Ctrl+C) stop training with KeyboardInterrupt.
            with suppress(KeyboardInterrupt):
                self.fit_loop(X, Y, epochs=epochs, groups=groups)
            self.notify("on_train_end", X=X, y=Y)
        return self

    def fit_loop(self, X, y=None, epochs=None, *, groups=None):
        """Run ``epochs`` (default ``max_epochs``) epochs of training and validation.

        Parameters
        ----------
        X, y
            Validated input and encoded (n_samples, U) float labels.
        epochs : int, optional
        groups : array-like, optional
            Passed to the validation split.

        Returns
        -------
        self
        """
        self.check_training_readiness()
        epochs = self.max_epochs if epochs is None else epochs
        dataset_train, dataset_valid = self.get_split_datasets(X, y, groups=groups)
        on_epoch_kwargs = {"dataset_train": dataset_train, "dataset_valid": dataset_valid}
        iterator_train = self.get_iterator(dataset_train, training=True)
        iterator_valid = None
        if dataset_valid is not None and len(dataset_valid):
            iterator_valid = self.get_iterator(dataset_valid, training=False)
        rng, self._resume_rng = getattr(self, "_resume_rng", None), None
        if rng is not None:  # resuming: the random state at the end of the checkpoint's epoch
            set_rng_state(rng, self.device)
        for _ in range(epochs):
            self.notify("on_epoch_begin", **on_epoch_kwargs)
            self.run_single_epoch(
                iterator_train, training=True, prefix="train", step_fn=self.train_step
            )
            self.run_single_epoch(
                iterator_valid, training=False, prefix="valid", step_fn=self.validation_step
            )
            self.notify("on_epoch_end", **on_epoch_kwargs)
        return self

    def get_split_datasets(self, X, y=None, groups=None):
        """Training and validation datasets; ``groups`` reaches the split only.

        ``train_split``: a float uses :class:`GroupValidSplit` (seeded from
        ``random_state``); None trains on everything (no model selection); any other
        callable follows skorch's convention ``split(dataset, y, groups=...)``.

        Parameters
        ----------
        X : array-like or torch Dataset
            Training inputs, as passed to ``fit``.
        y : array-like or None, default=None
            Encoded targets.
        groups : array-like of shape (n_samples,) or None, default=None
            Group (subject) of each sample, passed to the split only.

        Returns
        -------
        dataset_train : torch Dataset
            The training part (wrapped by the subclass, e.g. with augmentation).
        dataset_valid : torch Dataset or None
            The validation part; None when ``train_split`` is None.
        """
        dataset = self.get_dataset(X, y)
        split = self.train_split
        if split is None:
            return self._training_dataset(dataset), None
        if isinstance(split, Real) and not isinstance(split, bool):
            seed = int(torch.randint(_MAX_SEED, (1,)).item())  # from the seeded fork
            split = GroupValidSplit(float(split), random_state=seed)
        kwargs = {} if groups is None else {"groups": groups}
        dataset_train, dataset_valid = split(dataset, y, **kwargs)
        return self._training_dataset(dataset_train), dataset_valid

    def get_iterator(self, dataset, training=False):
        """A DataLoader; training batches are shuffled unless ``iterator_train__shuffle``.

        Parameters
        ----------
        dataset : torch Dataset
            The data to iterate over.
        training : bool, default=False
            Use ``iterator_train`` and its parameters (else ``iterator_valid``).

        Returns
        -------
        torch.utils.data.DataLoader
            Batches of ``batch_size`` (``-1``: the whole dataset in one batch).
        """
        prefix = "iterator_train" if training else "iterator_valid"
        kwargs = self.get_params_for(prefix)
        kwargs.setdefault("batch_size", self.batch_size)
        if kwargs["batch_size"] == -1:  # skorch's "whole data set" (iterator_*__batch_size)
            kwargs["batch_size"] = max(len(dataset), 1)
        if training:
            kwargs.setdefault("shuffle", True)
        kwargs = self._iterator_kwargs(dataset, kwargs)
        iterator = self.iterator_train if training else self.iterator_valid
        return iterator(dataset, **kwargs)

    def _iterator_kwargs(self, dataset, kwargs: dict) -> dict:
        """Adjust the DataLoader arguments for ``dataset`` (hook for subclasses)."""
        return kwargs

    def get_loss(self, y_pred, y_true, X=None, training=False):
        """CorrBCE loss of a batch; records its BCE and CorrLoss parts in the history.

        Parameters
        ----------
        y_pred : torch.Tensor of shape (batch_size, n_labels)
            Logits of the module.
        y_true : torch.Tensor of shape (batch_size, n_labels)
            Encoded targets (NaN for unknown labels).
        X : object, default=None
            The input batch (unused by the loss).
        training : bool, default=False
            Whether the batch is a training batch (history keys ``train_*``, else
            ``valid_*``).

        Returns
        -------
        torch.Tensor
            The scalar loss.
        """
        loss = super().get_loss(y_pred, y_true, X=X, training=training)
        history = self.history_
        if history and history[-1]["batches"]:
            prefix = "train" if training else "valid"
            history.record_batch(f"{prefix}_bce", float(self.criterion_.last_bce))
            history.record_batch(f"{prefix}_corr", float(self.criterion_.last_corr))
        return loss

    def on_grad_computed(self, net, named_parameters, batch=None, training=False, **kwargs):
        """Clip gradients by value (``clip_value``), as in the paper.

        Parameters
        ----------
        net : skorch.NeuralNet
            The net itself (skorch's hook convention).
        named_parameters : iterable of (str, torch.nn.Parameter)
            The learnable parameters, with gradients computed.
        batch : object, default=None
            The current batch (unused).
        training : bool, default=False
            Whether this is a training step (unused).
        **kwargs
            Further arguments of skorch's hook (ignored).
        """
        if self.clip_value is not None:
            torch.nn.utils.clip_grad_value_([p for _, p in named_parameters], self.clip_value)

    # --- prediction -------------------------------------------------------------------
    def _get_predict_nonlinearity(self):
        return torch.sigmoid

    def _label_probabilities(self, X) -> np.ndarray:
        check_is_fitted(self)
        X = self._check_X(X, reset=False)
        return NeuralNet.predict_proba(self, X)

    def predict_proba(self, X):
        """Probabilities.

        Parameters
        ----------
        X : array-like

        Returns
        -------
        ndarray of shape (n_samples, n_labels)
            For a label matrix: the probability of each label (independent sigmoids).
            For a 1-D target: one column per class, rows summing to 1 (binary:
            ``[1 - p, p]``; multiclass: the per-class sigmoids normalised).
        """
        proba = self._label_probabilities(X)
        if self.target_type_ == "binary":
            return np.hstack([1.0 - proba, proba])
        if self.target_type_ == "multiclass":
            total = proba.sum(axis=1, keepdims=True)
            return np.where(total > 0, proba / np.where(total > 0, total, 1), 1 / proba.shape[1])
        return proba

    def predict(self, X):
        """Labels: ``predict_proba > threshold`` per label (argmax for multiclass).

        Parameters
        ----------
        X : array-like

        Returns
        -------
        ndarray of shape (n_samples, n_labels) with 0/1, or (n_samples,) class labels
            for a 1-D target.
        """
        proba = self._label_probabilities(X)
        threshold = self._check_threshold()
        if self.target_type_ == "binary":
            return self.classes_[(proba[:, 0] > threshold).astype(int)]
        if self.target_type_ == "multiclass":
            return self.classes_[np.argmax(proba, axis=1)]
        return (proba > threshold).astype(self._y_dtype)

    def score(self, X, y, sample_weight=None):
        """Macro F1 over labels (the paper's metric; NaN labels are ignored).

        For a 1-D target: :func:`sklearn.metrics.f1_score` with ``average="macro"``.

        Parameters
        ----------
        X : array-like
            Inputs.
        y : array-like of shape (n_samples, n_labels) or (n_samples,)
            True labels (NaN: unknown, ignored).
        sample_weight : array-like of shape (n_samples,) or None, default=None
            Sample weights; only for a 1-D target (a ValueError for label matrices).

        Returns
        -------
        float
            The macro F1 score.
        """
        prediction = self.predict(X)
        if self.target_type_ == "multilabel-indicator":
            if sample_weight is not None:
                raise ValueError("sample_weight is not supported for label matrices.")
            return macro_f1(y, prediction)
        return float(f1_score(y, prediction, average="macro", sample_weight=sample_weight))


_FIT_DOC = """
    The training follows the paper: Adam (``lr``), gradient clipping by value
    (``clip_value``), batches of ``batch_size``, the loss
    :math:`(1 - \\rho)\\,\\mathrm{BCE} + \\rho\\, c / 2`
    (:class:`~sklearn_corrloss.losses.CorrBCELoss`), and the weights of the epoch with
    the lowest validation loss restored at the end.
"""


class CorrLossClassifier(MultiLabelNet):
    __doc__ = (
        """Multi-label classifier on feature vectors, trained with CorrLoss.

    An MLP (dense ``hidden_units`` + ReLU + dropout + one logit per label) as a skorch
    net with the scikit-learn API.
    """
        + _FIT_DOC
        + """
    Parameters
    ----------
    rho : float in [0, 1], default=0.0
        Weight of the correlation term (0: plain BCE).
    threshold : float in (0, 1) or array-like of shape (n_labels,), default=0.5
        Decision threshold of ``predict``, one for all labels or one per label.
    hidden_units : int, default=256
    dropout : float in [0, 1), default=0.5
    lr : float, default=1e-4
    batch_size : int, default=64
    max_epochs : int, default=100
    clip_value : float or None, default=1.0
        Gradients are clipped to ``[-clip_value, clip_value]``; None disables it.
    optimizer : torch optimizer class, default=torch.optim.Adam
        Further arguments as ``optimizer__weight_decay=...``.
    train_split : float in (0, 1), callable or None, default=0.2
        Internal validation split. A float: :class:`GroupValidSplit` with that
        fraction (group-aware when ``fit`` gets ``groups``; a plain random split of
        the samples otherwise). A callable: skorch's convention (for example
        ``skorch.dataset.ValidSplit(5)`` or ``predefined_split``). None: no
        validation, and the last epoch's weights are kept.
    callbacks : list of skorch callbacks, "disable" or None, default=None
        Added to the defaults (timer, loss parts, :class:`RestoreBestWeights` under the
        name ``restore_best``, print log); ``callbacks__restore_best=None`` removes one.
    warm_start : bool, default=False
        Whether ``fit`` continues from the current network.
    verbose : int, default=0
        1 prints a table per epoch.
    device : str, default="cpu"
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, shuffling, dropout and the validation split; the
        same value gives identical predictions on CPU. Global random states are not
        touched.
    checkpoint_dir : str or path, default=None
        Folder where ``fit`` writes a checkpoint at the end of every epoch (module,
        optimizer, history, random state, best weights so far; written atomically,
        see :mod:`~sklearn_corrloss.checkpoints`). Without ``resume`` a ``fit`` first
        deletes the folder's old checkpoints. ``partial_fit`` writes none. Give each
        concurrent fit its own folder.
    resume : bool, default=False
        Whether ``fit`` continues from the latest checkpoint in ``checkpoint_dir`` (up
        to ``max_epochs``) instead of starting over; with no checkpoint there it trains
        from scratch. The checkpoint must come from a run with the same parameters
        (``max_epochs``, ``verbose``, ``device`` and caching may differ) and the same
        data, or ``fit`` raises :class:`~sklearn_corrloss.checkpoints.CheckpointError`.
    **kwargs
        skorch routing parameters: ``module__*``, ``optimizer__*``, ``criterion__*``
        (for example ``criterion__mask``), ``iterator_train__*``, ``callbacks__*``.

    Attributes
    ----------
    classes_ : ndarray
        Label names (DataFrame columns) or ``0 .. n_labels - 1``; the classes of a
        1-D target.
    n_outputs_ : int
        Number of network outputs.
    target_type_ : str
        ``"multilabel-indicator"``, ``"binary"`` or ``"multiclass"``.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only for DataFrame input.
    module_ : MLPHead
    criterion_ : CorrBCELoss
    history_ : skorch.history.History
        Per epoch: ``train_loss``, ``valid_loss``, ``train_bce``, ``train_corr``,
        ``valid_bce``, ``valid_corr`` (``*_corr`` is ``c`` in [0, 2], before the ``/ 2``).
    resumed_epoch_ : int
        Epochs the last ``fit`` took over from a checkpoint (0: trained from scratch).

    See Also
    --------
    CorrLossAUClassifier : the same on face images.

    References
    ----------
    .. [1] Rieger, Pahl, Finzel, Schmid. "CorrLoss: Integrating Co-Occurrence Domain
       Knowledge for Affect Recognition." ICPR 2022. arXiv:2210.17233.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(60, 5)).astype(np.float32)
    >>> Y = np.column_stack([X[:, 0] > 0, X[:, 0] + X[:, 1] > 0, X[:, 2] > 0]).astype(int)
    >>> clf = CorrLossClassifier(rho=0.3, lr=1e-2, max_epochs=5, hidden_units=16,
    ...                          random_state=0).fit(X, Y)
    >>> clf.predict(X[:2]).shape
    (2, 3)
    >>> sorted(k for k in clf.history_[-1] if k.endswith(("_bce", "_corr")))
    ['train_bce', 'train_corr', 'valid_bce', 'valid_corr']
    """
    )

    def __init__(
        self,
        *,
        rho=0.0,
        threshold=0.5,
        hidden_units=256,
        dropout=0.5,
        lr=1e-4,
        batch_size=64,
        max_epochs=100,
        clip_value=1.0,
        optimizer=torch.optim.Adam,
        train_split=0.2,
        callbacks=None,
        warm_start=False,
        verbose=0,
        device="cpu",
        random_state=None,
        checkpoint_dir=None,
        resume=False,
        **kwargs,
    ):
        self._store_params(locals())

    def _check_X(self, X, *, reset: bool):
        X = validate_data(self, X, reset=reset, dtype=np.float32, ensure_all_finite=True)
        if not X.flags.writeable:
            X = X.copy()
        return X

    def _build_module(self):
        return MLPHead(
            self.n_features_in_,
            self.n_outputs_,
            hidden_units=self.hidden_units,
            dropout=self.dropout,
            **self.get_params_for("module"),
        )


class CorrLossAUClassifier(MultiLabelNet):
    __doc__ = (
        """Multi-label Action Unit detector on face images, trained with CorrLoss.

    The paper's model: a torchvision backbone (VGG16 by default) frozen up to a layer
    (``block5_conv3`` for VGG16), then dense ``hidden_units`` + ReLU + dropout + one
    logit per AU.
    """
        + _FIT_DOC
        + """
    Parameters
    ----------
    rho : float in [0, 1], default=0.0
        Weight of the correlation term (0: plain BCE).
    threshold : float in (0, 1) or array-like of shape (n_labels,), default=0.5
    backbone : str, default="vgg16"
        ``"vgg16"``, ``"resnet18"``, ``"resnet50"``, ``"mobilenet_v3_small"``,
        ``"efficientnet_b0"`` or ``"small_cnn"`` (tiny, for CPU work and tests).
    weights : None, "imagenet" or path, default="imagenet"
        ``"imagenet"``: torchvision's weights (downloaded once; offline this fails
        with a message asking for a local file); a path: a local state dict of the
        torchvision model (e.g. ``vgg16-397923af.pth``); None: random initialisation.
    freeze : str, default="paper"
        ``"paper"`` (VGG16: everything before block5_conv3 frozen; other backbones:
        all but the last block, see :data:`~sklearn_corrloss.networks.PAPER_FREEZE_POINTS`),
        ``"none"``, ``"all"`` (only the head trains), or the name of the first
        trainable layer (``"features.24"``, ``"block5_conv1"``, ``"layer4.0"``, ...).
    image_size : int, default=224
        Images are resized to ``image_size x image_size``.
    augment : bool or callable, default=False
        Slight augmentation of the training part only
        (:func:`~sklearn_corrloss.images.default_augmentation`), or your own
        transform of ``uint8`` (3, H, W) tensors. Never applied at predict time.
    feature_cache : {"auto", True, False}, default="auto"
        Reuse the frozen trunk's output (:mod:`~sklearn_corrloss.feature_cache`): each
        image goes through the trunk once and training runs only the trainable tail and
        the head, in every epoch, fold and clone (``GridSearchCV`` over ``rho``).
        ``"auto"`` uses it where it gives the same results as without: the trunk is
        frozen and not empty, and for training ``augment`` is off; otherwise it trains
        as usual. With ``"auto"``, ``predict`` reads stored features when every image
        has them (test folds, training images) and otherwise streams the images without
        storing anything. ``True`` also stores the features of predicted images and
        refuses (ValueError) where the cache is not valid. ``False`` never uses it.
    cache_dir : str or path, default=None
        None keeps the features in memory (within ``FEATURE_CACHE.max_memory``; beyond
        it ``"auto"`` warns and trains without the cache). A folder keeps them on disk
        as ``.npy`` files, reused by other processes and later runs.
    cache_dtype : {"float32", "float16"}, default="float32"
        Storage type of the cached features; ``"float16"`` halves memory and disk at
        the cost of a rounding error (results then differ slightly from uncached ones).
    precision : {"fp32", "bf16", "fp16"}, default="fp32"
        Mixed precision: the network runs under :func:`torch.autocast` with bfloat16 or
        float16 (float16 training uses a gradient scaler); the loss is always computed
        in float32. Meant for GPUs; on a CPU it works but is rarely faster.
    hidden_units, dropout, lr, batch_size, max_epochs, clip_value, optimizer, train_split, \
callbacks, warm_start, verbose, device, random_state, checkpoint_dir, resume, **kwargs
        As in :class:`CorrLossClassifier`; ``max_epochs`` defaults to 20.
        ``iterator_train__num_workers=4`` (and ``iterator_valid__num_workers``) read
        images in parallel worker processes. With ``device="cuda"`` the network and the
        image batches use the channels-last memory format, batches are loaded into
        pinned memory and copied to the GPU without blocking.

    Attributes
    ----------
    classes_ : ndarray
        AU names (DataFrame columns) or ``0 .. n_labels - 1``.
    n_outputs_ : int
    target_type_ : str
    module_ : BackboneNet
        ``normalize``, frozen ``trunk``, trainable ``tail`` and ``head``.
    criterion_ : CorrBCELoss
    history_ : skorch.history.History
        Per epoch: ``train_loss``, ``valid_loss``, ``train_bce``, ``train_corr``,
        ``valid_bce``, ``valid_corr``.
    cache_info_ : dict
        The feature cache in the last ``fit``/``partial_fit``: ``used`` (bool), and
        either ``reason`` (why not) or ``location`` (``"memory"`` or the folder),
        ``n_images``, ``computed`` (images pushed through the trunk) and ``reused``.

    Notes
    -----
    ``X`` is a ``uint8`` array of RGB images (N, H, W, 3), grayscale images (N, H, W),
    or a 1-D list/array of image paths. Paths are checked before training (existence
    and a readable image format) and then read lazily batch by batch, so data sets
    larger than memory train. Normalisation (ImageNet mean and std, matching
    torchvision weights) happens inside the network.

    References
    ----------
    .. [1] Rieger, Pahl, Finzel, Schmid. "CorrLoss: Integrating Co-Occurrence Domain
       Knowledge for Affect Recognition." ICPR 2022. arXiv:2210.17233.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> images = rng.integers(0, 256, size=(12, 16, 16, 3), dtype=np.uint8)
    >>> Y = rng.integers(0, 2, size=(12, 3))
    >>> clf = CorrLossAUClassifier(backbone="small_cnn", weights=None, image_size=16,
    ...                            hidden_units=8, max_epochs=2, random_state=0)
    >>> clf.fit(images, Y).predict_proba(images[:2]).shape
    (2, 3)
    """
    )

    _parameter_constraints: ClassVar[dict] = {
        **_COMMON_CONSTRAINTS,
        "backbone": [StrOptions(set(BACKBONES))],
        "weights": [str, os.PathLike, None],
        "freeze": [str],
        "image_size": [Interval(Integral, 8, None, closed="left")],
        "augment": ["boolean", callable],
        "feature_cache": [StrOptions({"auto"}), "boolean"],
        "cache_dir": [str, os.PathLike, None],
        "cache_dtype": [StrOptions(set(CACHE_DTYPES))],
        "precision": [StrOptions({"fp32", "bf16", "fp16"})],
    }

    def __init__(
        self,
        *,
        rho=0.0,
        threshold=0.5,
        backbone="vgg16",
        weights="imagenet",
        freeze="paper",
        image_size=224,
        augment=False,
        feature_cache="auto",
        cache_dir=None,
        cache_dtype="float32",
        precision="fp32",
        hidden_units=256,
        dropout=0.5,
        lr=1e-4,
        batch_size=64,
        max_epochs=20,
        clip_value=1.0,
        optimizer=torch.optim.Adam,
        train_split=0.2,
        callbacks=None,
        warm_start=False,
        verbose=0,
        device="cpu",
        random_state=None,
        checkpoint_dir=None,
        resume=False,
        **kwargs,
    ):
        self._store_params(locals())

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        tags.input_tags.string = True
        return tags

    def _check_X(self, X, *, reset: bool):
        X, _ = check_image_input(X, check_files=True)
        return X

    def _check_params(self) -> None:
        super()._check_params()
        if self.feature_cache is True and self.augment not in (False, None):
            raise ValueError(
                "feature_cache=True cannot be combined with augment: augmentation changes "
                "the trunk's input in every epoch, so cached features would change the "
                "results. Use feature_cache='auto' (trains without the cache) or False, or "
                "write a fixed set of augmented images and train on those."
            )

    def _build_module(self):
        return BackboneNet(
            backbone=self.backbone,
            n_outputs=self.n_outputs_,
            weights=self.weights,
            freeze=self.freeze,
            hidden_units=self.hidden_units,
            dropout=self.dropout,
            **self.get_params_for("module"),
        )

    def get_dataset(self, X, y=None):
        """The images as a dataset, or their cached trunk features.

        An :class:`~sklearn_corrloss.images.ImageDataset` (lazy for paths), or, where
        the feature cache is valid (see ``feature_cache``), a
        :class:`~sklearn_corrloss.feature_cache.CachedFeatures` over the stored trunk
        output, computed here for images not stored yet. ``y`` given means training.

        Parameters
        ----------
        X : array-like of images or paths, or torch Dataset
            Images as in ``fit``; a Dataset is returned unchanged.
        y : array-like of shape (n_samples, n_labels) or None, default=None
            Encoded targets; given for training data.

        Returns
        -------
        torch Dataset
            ``X`` itself, an ``ImageDataset`` or a ``CachedFeatures``.
        """
        if isinstance(X, torch.utils.data.Dataset):
            return X
        images = ImageDataset(X, y, image_size=self.image_size)
        training = y is not None
        reason = self._cache_refusal(training)
        dataset = None
        if reason is None:
            dataset, info = self._cached_features(images, y, training=training)
        else:
            if self.feature_cache is True:
                raise ValueError(f"feature_cache=True, but the cache is not valid: {reason}.")
            info = {"used": False, "reason": reason}
        if training:
            self.cache_info_ = info
        return images if dataset is None else dataset

    # --- frozen-trunk feature cache ---------------------------------------------------
    def _cache_refusal(self, training: bool) -> str | None:
        """Why the feature cache cannot be used (None: it can)."""
        if self.feature_cache is False:
            return "feature_cache=False"
        module = getattr(self, "module_", None)
        if not isinstance(module, BackboneNet) or not module.trunk_frozen:
            return f"freeze={self.freeze!r} leaves no frozen trunk"
        if any(p.requires_grad for p in module.trunk.parameters()):
            return "the trunk has trainable parameters"
        if training and self.augment not in (False, None):
            return "augmentation changes the trunk's input in every epoch"
        return None

    def _cached_features(self, images: ImageDataset, y, *, training: bool):
        key, description = trunk_key(
            self.module_,
            backbone=self.backbone,
            image_size=self.image_size,
            precision=self.precision,
            dtype=self.cache_dtype,
        )
        if not training and self.feature_cache == "auto":
            # Prediction reads stored features (a test fold of a search, training images)
            # but does not store new ones: inference on new images streams as usual.
            unavailable = {"used": False, "reason": "not every image has stored features"}
            store = FEATURE_CACHE.store(key, description, self.cache_dir, create=False)
            if store is None:
                return None, unavailable
            if hasattr(store, "refresh"):
                store.refresh()
            keys = image_keys(images.X)
            if any(loc is None for loc in store.locate(keys)):
                return None, unavailable
            return CachedFeatures(store, keys, y), {"used": True, "location": store.location}
        keys = image_keys(images.X)
        store = FEATURE_CACHE.store(key, description, self.cache_dir)
        params = self.get_params_for("iterator_valid")
        loader_kwargs = {k: v for k, v in params.items() if k in _LOADER_WORKER_KWARGS}
        if self._on_cuda():
            loader_kwargs.setdefault("pin_memory", True)
        try:
            computed = fill(
                store,
                self.module_,
                images,
                keys,
                batch_size=params.get("batch_size", self.batch_size),
                device=self.device if self.device is not None else "cpu",
                autocast_dtype=self._autocast_dtype(),
                channels_last=self._on_cuda(),
                loader_kwargs=loader_kwargs,
                progress=bool(self.verbose),
            )
        except FeatureCacheFull as error:
            if self.feature_cache is True:
                raise ValueError(
                    f"feature_cache=True, but {error}. Pass cache_dir=... to keep the "
                    "features on disk, raise FEATURE_CACHE.max_memory, or use "
                    "cache_dtype='float16'."
                ) from error
            warnings.warn(
                f"{error}; running without the feature cache. Pass cache_dir=... to keep "
                "the features on disk.",
                stacklevel=4,
            )
            return None, {"used": False, "reason": str(error)}
        info = {
            "used": True,
            "location": store.location,
            "n_images": len(keys),
            "computed": computed,
            "reused": len(keys) - computed,
        }
        if self.verbose:
            print(
                f"Trunk feature cache ({store.location}): {len(keys)} images, {computed} "
                f"computed, {len(keys) - computed} reused; training and prediction run only "
                f"the layers after {description['trunk'][-1]} of {self.backbone}."
            )
        return CachedFeatures(store, keys, y), info

    def _iterator_kwargs(self, dataset, kwargs: dict) -> dict:
        inner = dataset
        while isinstance(inner, Subset):
            inner = inner.dataset
        if isinstance(inner, CachedFeatures):
            # Stored features need no decoding workers (and would be copied into them).
            kwargs = {k: v for k, v in kwargs.items() if k not in _WORKER_ONLY_KWARGS}
        if self._on_cuda():
            kwargs.setdefault("pin_memory", True)
        return kwargs

    # --- devices and precision --------------------------------------------------------
    def _on_cuda(self) -> bool:
        return self.device is not None and torch.device(self.device).type == "cuda"

    def _autocast_dtype(self):
        return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[self.precision]

    def _to_device(self, x):
        """Non-blocking copy to the device; image batches in channels-last on CUDA."""
        if self.device is None:
            return x
        if isinstance(x, Mapping):
            return {k: self._to_device(v) for k, v in x.items()}
        if isinstance(x, torch.Tensor):
            x = x.to(self.device, non_blocking=True)
            if x.ndim == 4 and self._on_cuda():
                x = x.contiguous(memory_format=torch.channels_last)
        return x

    def initialize_module(self):
        """Build the network; channels-last memory format on CUDA.

        Returns
        -------
        self
            The net, with the new network in ``module_``.
        """
        super().initialize_module()
        if self._on_cuda():
            self.module_ = self.module_.to(memory_format=torch.channels_last)
        return self

    def initialize_optimizer(self, *args, **kwargs):
        """The optimizer, and a fresh gradient scaler for ``precision="fp16"``.

        Parameters
        ----------
        *args, **kwargs
            Passed on to :meth:`skorch.NeuralNet.initialize_optimizer`.

        Returns
        -------
        self
            The net, with the new optimizer in ``optimizer_``.
        """
        self.grad_scaler_ = None
        return super().initialize_optimizer(*args, **kwargs)

    def infer(self, x, **fit_params):
        """Forward pass of a batch (images or cached features) under ``precision``.

        Parameters
        ----------
        x : torch.Tensor or dict of torch.Tensor
            The input batch, copied to ``device`` here.
        **fit_params
            Further arguments of the module's ``forward``.

        Returns
        -------
        torch.Tensor of shape (batch_size, n_labels)
            The logits, in float32.
        """
        x = self._to_device(x)
        dtype = self._autocast_dtype()
        device_type = torch.device(self.device).type if self.device is not None else "cpu"
        with torch.autocast(device_type, dtype=dtype, enabled=dtype is not None):
            y_pred = super().infer(x, **fit_params)
        return y_pred.float() if dtype is not None else y_pred  # logits leave in float32

    def get_loss(self, y_pred, y_true, X=None, training=False):
        """The CorrBCE loss, always in float32 (labels copied without blocking).

        Parameters
        ----------
        y_pred : torch.Tensor of shape (batch_size, n_labels)
            Logits of the module.
        y_true : torch.Tensor of shape (batch_size, n_labels)
            Encoded targets (NaN for unknown labels), copied to ``device`` here.
        X : object, default=None
            The input batch (unused by the loss).
        training : bool, default=False
            Whether the batch is a training batch.

        Returns
        -------
        torch.Tensor
            The scalar loss.
        """
        return super().get_loss(y_pred, self._to_device(y_true), X=X, training=training)

    def train_step(self, batch, **fit_params):
        """One optimisation step; with ``precision="fp16"`` through a gradient scaler.

        Parameters
        ----------
        batch : tuple
            The input batch and its targets.
        **fit_params
            Further arguments of the module's ``forward``.

        Returns
        -------
        dict
            ``loss`` (the scalar loss tensor) and ``y_pred`` (the logits).
        """
        if self.precision != "fp16":
            return super().train_step(batch, **fit_params)
        scaler = getattr(self, "grad_scaler_", None)
        if scaler is None:
            device_type = torch.device(self.device).type if self.device is not None else "cpu"
            scaler = self.grad_scaler_ = torch.amp.GradScaler(device_type)
        self._zero_grad_optimizer()
        self._set_training(True)
        Xi, yi = unpack_data(batch)
        y_pred = self.infer(Xi, **fit_params)
        loss = self.get_loss(y_pred, yi, X=Xi, training=True)
        scaler.scale(loss).backward()
        for name in self._optimizers:
            scaler.unscale_(getattr(self, name + "_"))  # clipping sees true gradients
        self.notify(
            "on_grad_computed",
            named_parameters=TeeGenerator(self.get_all_learnable_params()),
            batch=batch,
            training=True,
        )
        for name in self._optimizers:
            scaler.step(getattr(self, name + "_"))
        scaler.update()
        return {"loss": loss, "y_pred": y_pred}

    def _training_dataset(self, dataset):
        if self.augment is False or self.augment is None:
            return dataset
        transform = default_augmentation() if self.augment is True else self.augment
        return TransformedDataset(dataset, copy.deepcopy(transform))
