"""The paper's experimental protocol, as functions that return tidy DataFrames.

- :func:`search_rho`: grid search over ``rho`` with subject-wise folds (paper Fig. 3) and the
  training / validation loss curves of every fit (Fig. 4).
- :func:`within_dataset_cv`: ``rho = 0`` against a chosen ``rho``, not balanced and balanced,
  mean and spread over subject-wise folds (Table II).
- :func:`cross_dataset`: train on each data set with its own AU selection, test on every other
  one on the shared AUs (Table III).
- :func:`calibrate`: leave one expression task out, fine-tune with ``partial_fit`` on half of
  its subjects, test on the other half (Table IV).
- :func:`per_au_f1_table`: per-AU F1 tables like Tables V and VI; :func:`summarize`: mean and
  standard deviation per condition; :func:`evaluate`: one fitted model on labelled data.

Every function accepts any scikit-learn multi-label estimator (``fit``, ``predict``, ideally
``predict_proba``; ``partial_fit`` for calibration), takes subject IDs as ``groups`` and a
``random_state``, and runs its independent fits through joblib (``n_jobs``) so that any
joblib backend can spread them: ``scheduler`` sends them to a Dask cluster, and
``results_dir`` keeps every finished fit in a folder so that a rerun skips it (resuming an
interrupted experiment); see :mod:`sklearn_corrloss.parallel`. Balancing (e.g.
:class:`~sklearn_corrloss.balancing.MultiLabelBalancer`) is applied to the training rows of
each fold only, never to test rows.

References
----------
Rieger, Pahl, Finzel, Schmid, "CorrLoss: Integrating Co-Occurrence Domain Knowledge for Affect
Recognition", ICPR 2022, arXiv:2210.17233.
"""

from __future__ import annotations

import inspect
import numbers
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.metrics import get_scorer
from sklearn.model_selection import GroupKFold, GroupShuffleSplit
from sklearn.utils import Bunch, _safe_indexing, check_random_state

from .metrics import au_f1_report, correlation_distance, label_names
from .parallel import ResultStore, estimator_fingerprint, fingerprint, run_jobs
from .selection import select_correlated_labels

__all__ = [
    "DEFAULT_RHOS",
    "calibrate",
    "cross_dataset",
    "evaluate",
    "loss_history",
    "per_au_f1_table",
    "search_rho",
    "summarize",
    "within_dataset_cv",
]

#: The rho grid of the paper's Fig. 3 (it reports optima of 0.3, 0.45, 0.6 and 0.8).
DEFAULT_RHOS = (0.0, 0.15, 0.3, 0.45, 0.6, 0.8)

#: Per-epoch entries read from a skorch ``history_`` (``loss_curve_`` of scikit-learn MLPs).
HISTORY_KEYS = ("train_loss", "valid_loss", "train_bce", "train_corr", "valid_bce", "valid_corr")

#: Metrics computed on every test fold.
METRICS = ("macro_f1", "correlation_distance")

_MAX_SEED = np.iinfo(np.int32).max


# --- input checks -----------------------------------------------------------------------------
def _label_frame(Y) -> pd.DataFrame:
    if isinstance(Y, pd.DataFrame):
        return Y
    array = np.asarray(Y)
    if array.ndim != 2:
        raise ValueError(f"Y must be a 2-D (n_samples, n_labels) label matrix, got {array.shape}.")
    return pd.DataFrame(array, columns=label_names(array))


def _check_groups(groups, n_samples: int, name: str = "groups") -> np.ndarray:
    if groups is None:
        raise ValueError(
            f"{name} is required: one subject ID per sample, so that folds are subject-wise."
        )
    groups = np.asarray(groups)
    if groups.shape != (n_samples,):
        raise ValueError(f"{name} must have shape ({n_samples},), got {groups.shape}.")
    return groups


def _check_same_length(X, Y: pd.DataFrame) -> None:
    if len(X) != len(Y):
        raise ValueError(f"X has {len(X)} samples but Y has {len(Y)}.")


def _check_cv(cv, groups=None):
    if cv is None or isinstance(cv, numbers.Integral):
        cv = GroupKFold(n_splits=5 if cv is None else int(cv))
    if isinstance(cv, GroupKFold) and groups is not None:
        subjects = np.unique(groups)
        if len(subjects) < cv.n_splits:
            raise ValueError(
                f"{cv.n_splits} subject-wise folds need at least {cv.n_splits} subjects, but the "
                f"data has {len(subjects)} ({', '.join(map(str, subjects[:5]))}); use fewer "
                "folds or data of more subjects."
            )
    return cv


def _seed(rng: np.random.RandomState | None) -> int | None:
    return None if rng is None else int(rng.randint(_MAX_SEED))


def _rng(random_state) -> np.random.RandomState | None:
    """None keeps the estimators' own ``random_state``; else a generator for derived seeds."""
    return None if random_state is None else check_random_state(random_state)


def _with_params(estimator, **params):
    """A clone of ``estimator`` with ``params`` set; ``random_state=None`` leaves it as is."""
    estimator = clone(estimator)
    if params.get("random_state", 0) is None or "random_state" not in estimator.get_params():
        params.pop("random_state", None)
    return estimator.set_params(**params)


def _accepts_groups(estimator) -> bool:
    fit = getattr(estimator, "fit", None)
    return fit is not None and "groups" in inspect.signature(fit).parameters


def _n_epochs(estimator) -> int:
    params = estimator.get_params()
    for key in ("max_epochs", "max_iter"):
        if isinstance(params.get(key), numbers.Integral):
            return int(params[key])
    return 0


# --- folds and balancing ----------------------------------------------------------------------
def _balanced_rows(balancer, Y: pd.DataFrame, rows: np.ndarray, seed: int | None) -> np.ndarray:
    """Rows of ``Y[rows]`` after resampling: the balancer sees training rows only.

    The balancer resamples a column of row numbers, so images, subject IDs and any other
    per-row data follow without being copied; it must keep or repeat rows, not synthesise.
    """
    sampler = _with_params(balancer, random_state=seed)
    resampled, _ = sampler.fit_resample(rows.reshape(-1, 1), Y.iloc[rows])
    return np.asarray(resampled).ravel()


def _splits(cv, Y, groups, balancer, rng) -> list[tuple[np.ndarray, np.ndarray]]:
    splits = list(_check_cv(cv, groups).split(np.zeros((len(Y), 1)), Y, groups))
    if balancer is None:
        return splits
    return [(_balanced_rows(balancer, Y, train, _seed(rng)), test) for train, test in splits]


# --- scoring ----------------------------------------------------------------------------------
def _predictions(estimator, X) -> tuple[np.ndarray, np.ndarray]:
    Y_pred = np.asarray(estimator.predict(X), dtype=np.float64)
    if hasattr(estimator, "predict_proba"):
        Y_score = np.asarray(estimator.predict_proba(X), dtype=np.float64)
    else:
        Y_score = Y_pred
    return Y_pred, Y_score


def _metrics(Y_true, Y_pred, Y_score, labels: Sequence[str]) -> dict:
    Y_true = np.array(Y_true, dtype=np.float64)  # a writable copy (pandas may hand out views)
    report = au_f1_report(Y_true, Y_pred, labels=labels)
    result = {
        "macro_f1": float(report.loc["macro", "f1"]),
        "correlation_distance": (
            correlation_distance(Y_true, Y_score) if len(labels) > 1 else float("nan")
        ),
    }
    result.update({f"f1[{name}]": float(report.loc[name, "f1"]) for name in labels})
    return result


def _per_au_rows(condition: dict, metrics: dict, labels: Sequence[str]) -> list[dict]:
    return [{**condition, "au": name, "f1": metrics[f"f1[{name}]"]} for name in labels]


def loss_history(estimator) -> pd.DataFrame:
    """Per-epoch losses of a fitted estimator, one row per epoch.

    Reads a skorch ``history_`` (``train_loss``, ``valid_loss`` and the BCE / CorrLoss parts
    where recorded) or the ``loss_curve_`` of scikit-learn's MLPs (as ``train_loss``).

    Parameters
    ----------
    estimator : fitted estimator or Pipeline
        For a pipeline, its last step is read.

    Returns
    -------
    DataFrame
        Column ``epoch`` (from 1) and one column per recorded loss; empty if the
        estimator records no history.

    Examples
    --------
    >>> import warnings
    >>> from sklearn.neural_network import MLPClassifier
    >>> X = np.random.RandomState(0).normal(size=(20, 3))
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     model = MLPClassifier(max_iter=3, random_state=0).fit(X, X > 0)
    >>> loss_history(model).columns.tolist()
    ['epoch', 'train_loss']
    >>> len(loss_history(model))
    3
    """
    model = estimator[-1] if hasattr(estimator, "steps") else estimator
    history = getattr(model, "history_", None)
    if history is not None and len(history):
        rows = [{key: epoch.get(key, np.nan) for key in HISTORY_KEYS} for epoch in history]
    else:
        rows = [{"train_loss": value} for value in getattr(model, "loss_curve_", [])]
    frame = pd.DataFrame(rows, columns=[*HISTORY_KEYS]).dropna(axis=1, how="all")
    frame.insert(0, "epoch", np.arange(1, len(frame) + 1))
    return frame.astype(float).astype({"epoch": int})


class _FoldScorer:
    """Multi-metric scoring of one fitted fold.

    Returns the score used for ranking, the paper's metrics, per-label F1 and the fit's loss
    history (padded to ``n_epochs``): a flat dict of numbers, so that every fold's results
    and curves come back from wherever joblib ran the fit and fit in a result file.
    """

    def __init__(self, labels: Sequence[str], n_epochs: int, scoring=None):
        self.labels = list(labels)
        self.n_epochs = n_epochs
        self.scoring = get_scorer(scoring) if isinstance(scoring, str) else scoring

    def __call__(self, estimator, X, Y) -> dict:
        result = _metrics(Y, *_predictions(estimator, X), self.labels)
        result["score"] = (
            result["macro_f1"] if self.scoring is None else float(self.scoring(estimator, X, Y))
        )
        history = loss_history(estimator)
        for key in HISTORY_KEYS:
            values = history[key].to_numpy() if key in history else np.array([])
            for epoch in range(self.n_epochs):
                result[f"{key}@{epoch + 1}"] = (
                    float(values[epoch]) if epoch < len(values) else float("nan")
                )
        return result


# --- jobs -------------------------------------------------------------------------------------
def _store(results_dir) -> ResultStore | None:
    return None if results_dir is None else ResultStore(results_dir)


def _checked_data(X, Y, groups) -> tuple[pd.DataFrame, np.ndarray]:
    """Labels as a DataFrame and groups as an array, both checked against ``X``."""
    Y = _label_frame(Y)
    _check_same_length(X, Y)
    return Y, _check_groups(groups, len(Y))


def _cv_setup(estimator, X, Y, groups, random_state, scoring, results_dir) -> tuple:
    """What :func:`search_rho` and :func:`within_dataset_cv` start from.

    ``(Y, groups, rng, estimator, scorer, store)``: checked data, the random generator
    the folds and seeds are drawn from, the estimator with its seed, the fold scorer and
    the result store (or None).
    """
    Y, groups = _checked_data(X, Y, groups)
    rng = _rng(random_state)
    estimator = _with_params(estimator, random_state=_seed(rng))
    scorer = _FoldScorer(list(Y.columns), _n_epochs(estimator), scoring)
    return Y, groups, rng, estimator, scorer, _store(results_dir)


def _data_key(store, X, Y: pd.DataFrame, groups) -> str | None:
    """Content hash of a data set for result keys (only computed when results are stored)."""
    if store is None:
        return None
    return fingerprint((X, list(Y.columns), Y.to_numpy(), groups))


def _cv_fit(estimator, X, Y, groups, train, test, scorer) -> dict:
    """One (rho, fold) unit: fit on the ``train`` rows, score on the ``test`` rows.

    The estimator gets the training rows' subject IDs when its ``fit`` takes ``groups``, so
    its own validation split is subject-wise too.
    """
    _fit(estimator, _safe_indexing(X, train), Y.iloc[train], groups[train])
    return scorer(estimator, _safe_indexing(X, test), Y.iloc[test])


def _cv_jobs(estimator, X, Y, groups, *, param, values, splits, scorer, condition, store, data):
    """One job per (value, fold), in that order: ``(key, function, args, condition)``."""
    jobs = []
    for value in values:
        for fold, (train, test) in enumerate(splits):
            model = _with_params(estimator, **{param: value})
            row = {**condition, "rho": value, "fold": fold}
            key = None
            if store is not None:
                key = store.key(
                    "cv",
                    estimator=estimator_fingerprint(model),
                    data=data,
                    train=fingerprint(train),
                    test=fingerprint(test),
                    scorer=fingerprint(scorer),
                )
            jobs.append((key, _cv_fit, (model, X, Y, groups, train, test, scorer), row))
    return jobs


def _tidy(jobs, results, scorer: _FoldScorer):
    """Per-fold scores, per-AU F1 and loss curves of the CV jobs as long DataFrames."""
    scores, per_au, curves = [], [], []
    for (_, _, _, row), result in zip(jobs, results):
        scores.append({**row, "score": result["score"], **{m: result[m] for m in METRICS}})
        per_au.extend({**row, "au": name, "f1": result[f"f1[{name}]"]} for name in scorer.labels)
        for epoch in range(1, scorer.n_epochs + 1):
            losses = {key: result[f"{key}@{epoch}"] for key in HISTORY_KEYS}
            if not np.isnan(list(losses.values())).all():
                curves.append({**row, "epoch": epoch, **losses})
    curve_columns = [*(jobs[0][3] if jobs else {}), "epoch", *HISTORY_KEYS]
    curves = pd.DataFrame(curves, columns=curve_columns).dropna(axis=1, how="all")
    return pd.DataFrame(scores), pd.DataFrame(per_au), curves


def _search_record(param: str, values, results, n_splits: int) -> Bunch:
    """``cv_results_``, ``best_index_``, ``best_params_``, ``best_score_`` as GridSearchCV has.

    ``results`` holds one scorer dict per (value, fold), values outermost.
    """
    values = list(values)
    cv_results = {
        "params": [{param: value} for value in values],
        f"param_{param}": np.array(values, dtype=object),
    }
    for metric in ("score", *METRICS):
        table = np.array([result[metric] for result in results], dtype=float)
        table = table.reshape(len(values), n_splits)
        for fold in range(n_splits):
            cv_results[f"split{fold}_test_{metric}"] = table[:, fold]
        cv_results[f"mean_test_{metric}"] = table.mean(axis=1)
        cv_results[f"std_test_{metric}"] = table.std(axis=1)
    mean = pd.Series(cv_results["mean_test_score"])
    rank = mean.rank(method="min", ascending=False, na_option="bottom").to_numpy(dtype=np.int32)
    cv_results["rank_test_score"] = rank
    best = int(np.argmin(rank))
    return Bunch(
        cv_results_=cv_results,
        best_index_=best,
        best_params_={param: values[best]},
        best_score_=float(mean[best]),
        n_splits_=n_splits,
    )


# --- public protocol --------------------------------------------------------------------------
def summarize(scores: pd.DataFrame, by: Sequence[str], metrics: Sequence[str] | None = None):
    """Mean and standard deviation of per-fold scores for each condition.

    Parameters
    ----------
    scores : DataFrame
        One row per fit, as in the ``scores`` of the other functions here.
    by : list of str
        Condition columns (e.g. ``["balanced", "rho"]``), kept in order of appearance.
    metrics : list of str, optional
        Default: ``score``, ``macro_f1`` and ``correlation_distance`` where present.

    Returns
    -------
    DataFrame
        The ``by`` columns, ``<metric>_mean`` and ``<metric>_std`` (sample standard
        deviation, ddof=1) per metric, and ``n`` (number of fits).

    Examples
    --------
    >>> scores = pd.DataFrame({"rho": [0, 0, 0.5, 0.5], "macro_f1": [0.5, 0.7, 0.6, 0.6]})
    >>> summarize(scores, by=["rho"])
       rho  macro_f1_mean  macro_f1_std  n
    0  0.0            0.6      0.141421  2
    1  0.5            0.6      0.000000  2
    """
    by = list(by)
    if metrics is None:
        metrics = [m for m in ("score", *METRICS) if m in scores.columns]
    grouped = scores.groupby(by, sort=False)
    table = grouped[list(metrics)].agg(["mean", "std"])
    table.columns = [f"{metric}_{stat}" for metric, stat in table.columns]
    table["n"] = grouped.size()
    return table.reset_index()


def search_rho(
    estimator,
    X,
    Y,
    groups,
    *,
    rhos: Sequence[float] = DEFAULT_RHOS,
    cv=None,
    balancer=None,
    scoring=None,
    param: str = "rho",
    refit: bool = False,
    n_jobs: int | None = None,
    scheduler=None,
    results_dir=None,
    random_state=None,
    verbose: int = 0,
) -> Bunch:
    """Grid search over ``rho`` with subject-wise folds (paper Fig. 3 and Fig. 4).

    Parameters
    ----------
    estimator : estimator
        Multi-label estimator with a ``rho`` parameter (see ``param``), e.g.
        :class:`~sklearn_corrloss.classifier.CorrLossAUClassifier`.
    X : array-like of shape (n_samples, ...)
        Images or features.
    Y : DataFrame or array-like of shape (n_samples, n_labels)
        Binary labels; DataFrame columns name the AUs.
    groups : array-like of shape (n_samples,)
        Subject IDs: no subject is in a training and a test fold at once. If the
        estimator's ``fit`` takes ``groups`` (for its own validation split), it gets the
        training fold's IDs.
    rhos : sequence of float, default=DEFAULT_RHOS
        The grid.
    cv : int or group-aware splitter, default=None
        ``None`` means ``GroupKFold(5)`` as in the paper; an int ``k`` means ``GroupKFold(k)``.
    balancer : resampler, optional
        E.g. ``MultiLabelBalancer``; resamples the training rows of every fold.
    scoring : str or callable, optional
        A scikit-learn scorer name or ``scoring(estimator, X, Y)``, used to rank the
        candidates (column ``score``); default macro F1.
    param : str, default="rho"
        Name of the estimator parameter to search.
    refit : bool, default=False
        Refit the best ``rho`` on all data (``result.search.best_estimator_``).
    n_jobs : int, optional
        Parallel fits (joblib); each (rho, fold) pair is one job.
    scheduler : None, str or distributed.Client, optional
        Run the fits on a Dask cluster: a scheduler address (``"tcp://host:8786"``) or a
        client (see :func:`~sklearn_corrloss.parallel.dask_backend`; needs the ``dask``
        extra). The results are the same as without it, since every seed is drawn first.
    results_dir : str or path, optional
        Folder that keeps the result of every finished fit (one JSON file each, see
        :class:`~sklearn_corrloss.parallel.ResultStore`); fits whose results are there
        already are not repeated, so a rerun resumes an interrupted search.
    random_state : int, RandomState or None
        Seeds the estimator (if it has ``random_state``) and the balancer; ``None`` leaves
        the estimator's own setting.
    verbose : int, default=0
        joblib's progress messages; with ``results_dir``, also how many fits were reused.

    Returns
    -------
    Bunch
        ``scores`` (rho, fold, score, macro_f1, correlation_distance), ``summary`` (mean and
        std per rho), ``per_au`` (rho, fold, au, f1), ``curves`` (rho, fold, epoch and the
        recorded losses: Fig. 4), ``best_rho`` (float) and ``search`` (GridSearchCV-style
        ``cv_results_``, ``best_index_``, ``best_params_``, ``best_score_``, ``n_splits_``
        and, with ``refit=True``, ``best_estimator_``).

    Examples
    --------
    The protocol works with any multi-label estimator; here scikit-learn's MLP stands in
    and its ``alpha`` takes the place of ``rho``:

    >>> import warnings
    >>> from sklearn.neural_network import MLPClassifier
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(60, 4))
    >>> Y = pd.DataFrame({"AU01": X[:, 0] > 0, "AU02": X[:, 0] + X[:, 1] > 0}).astype(int)
    >>> subjects = np.repeat(np.arange(6), 10)
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     result = search_rho(MLPClassifier(max_iter=20), X, Y, subjects,
    ...                         rhos=[1e-4, 1.0], param="alpha", cv=3, random_state=0)
    >>> result.summary[["rho", "n"]]
          rho  n
    0  0.0001  3
    1  1.0000  3
    >>> sorted(result.curves.columns)
    ['epoch', 'fold', 'rho', 'train_loss']
    """
    Y, groups, rng, estimator, scorer, store = _cv_setup(
        estimator, X, Y, groups, random_state, scoring, results_dir
    )
    splits = _splits(cv, Y, groups, balancer, rng)
    jobs = _cv_jobs(
        estimator,
        X,
        Y,
        groups,
        param=param,
        values=rhos,
        splits=splits,
        scorer=scorer,
        condition={},
        store=store,
        data=_data_key(store, X, Y, groups),
    )
    results = run_jobs(
        jobs,
        n_jobs=n_jobs,
        scheduler=scheduler,
        store=store,
        shared=(X, Y, groups),
        verbose=verbose,
    )
    scores, per_au, curves = _tidy(jobs, results, scorer)
    summary = summarize(scores, by=["rho"])
    best_rho = float(summary.loc[summary["score_mean"].idxmax(), "rho"])
    search = _search_record(param, rhos, results, len(splits))
    if refit:
        search.best_estimator_ = _fit(_with_params(estimator, **search.best_params_), X, Y, groups)
    return Bunch(
        scores=scores,
        summary=summary,
        per_au=per_au,
        curves=curves,
        best_rho=best_rho,
        search=search,
    )


def within_dataset_cv(
    estimator,
    X,
    Y,
    groups,
    *,
    rho: float,
    baseline_rho: float = 0.0,
    balancer=None,
    cv=None,
    scoring=None,
    param: str = "rho",
    n_jobs: int | None = None,
    scheduler=None,
    results_dir=None,
    random_state=None,
    verbose: int = 0,
) -> Bunch:
    """Subject-wise cross-validation, ``baseline_rho`` against ``rho`` (paper Table II).

    Both values are evaluated on the same folds; with a ``balancer`` the whole comparison is
    repeated with the training rows of every fold balanced (test rows never are).

    Parameters
    ----------
    estimator, X, Y, groups, cv, scoring, param, n_jobs, scheduler, results_dir
        As in :func:`search_rho`. A ``results_dir`` shared with :func:`search_rho` reuses
        its fits of the same rho, folds and seed.
    random_state, verbose
        As in :func:`search_rho`.
    rho : float
        The chosen value (e.g. ``search_rho(...).best_rho``).
    baseline_rho : float, default=0.0
        The value to compare against (0 is plain BCE).
    balancer : resampler, optional
        If given, every condition is run not balanced and balanced.

    Returns
    -------
    Bunch
        ``scores`` (balanced, rho, fold, score, macro_f1, correlation_distance),
        ``summary`` (Table II: mean and std per condition), ``per_au`` (balanced, rho, fold,
        au, f1: Table V) and ``curves`` (loss curves per fit).

    Examples
    --------
    >>> import warnings
    >>> from sklearn.neural_network import MLPClassifier
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(60, 4))
    >>> Y = pd.DataFrame({"AU01": X[:, 0] > 0, "AU02": X[:, 0] + X[:, 1] > 0}).astype(int)
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     result = within_dataset_cv(MLPClassifier(max_iter=20), X, Y,
    ...                                np.repeat(np.arange(6), 10), rho=1.0,
    ...                                baseline_rho=1e-4, param="alpha", cv=3, random_state=0)
    >>> result.summary[["balanced", "rho", "n"]]
       balanced     rho  n
    0     False  0.0001  3
    1     False  1.0000  3
    """
    Y, groups, rng, estimator, scorer, store = _cv_setup(
        estimator, X, Y, groups, random_state, scoring, results_dir
    )
    data = _data_key(store, X, Y, groups)
    jobs = []
    for balanced in [False, True] if balancer is not None else [False]:
        jobs += _cv_jobs(
            estimator,
            X,
            Y,
            groups,
            param=param,
            values=[baseline_rho, rho],
            splits=_splits(cv, Y, groups, balancer if balanced else None, rng),
            scorer=scorer,
            condition={"balanced": balanced},
            store=store,
            data=data,
        )
    results = run_jobs(
        jobs,
        n_jobs=n_jobs,
        scheduler=scheduler,
        store=store,
        shared=(X, Y, groups),
        verbose=verbose,
    )
    scores, per_au, curves = _tidy(jobs, results, scorer)
    return Bunch(
        scores=scores,
        summary=summarize(scores, by=["balanced", "rho"]),
        per_au=per_au,
        curves=curves,
    )


def _unpack_dataset(name: str, data) -> tuple:
    """``(X, Y, groups)`` from a tuple or from a Bunch with images/labels/subjects."""
    if isinstance(data, Mapping):
        try:
            X = data["images"] if "images" in data else data["data"]
            data = (X, data["labels"], data["subjects"])
        except KeyError as error:
            raise ValueError(
                f"Data set {name!r} must be (X, Y, groups) or a Bunch with images (or data), "
                f"labels and subjects; it lacks {error}."
            ) from None
    if not isinstance(data, Sequence) or len(data) != 3:
        raise ValueError(f"Data set {name!r} must be an (X, Y, groups) tuple.")
    X, Y, groups = data
    if not isinstance(Y, pd.DataFrame):
        raise TypeError(
            f"The labels of data set {name!r} must be a DataFrame with AU columns, "
            f"so that data sets can be matched on their shared AUs; got {type(Y).__name__}."
        )
    _check_same_length(X, Y)
    return X, Y, _check_groups(groups, len(Y), f"groups of data set {name!r}")


def _fit(estimator, X, Y, groups):
    estimator.fit(X, Y, **({"groups": groups} if _accepts_groups(estimator) else {}))
    return estimator


def _fit_and_test(estimator, X, Y, groups, rows, tests: dict, condition: dict):
    """One cross-dataset unit: fit on ``rows`` of a training set, test on the other sets."""
    labels = list(Y.columns)
    _fit(estimator, _safe_indexing(X, rows), Y.iloc[rows], groups[rows])
    scores, per_au = [], []
    for test_name, (X_test, Y_test, shared) in tests.items():
        columns = [labels.index(au) for au in shared]
        Y_pred, Y_score = _predictions(estimator, X_test)
        metrics = _metrics(Y_test[shared], Y_pred[:, columns], Y_score[:, columns], shared)
        row = {**condition, "test": test_name, "n_aus": len(shared)}
        scores.append({**row, **{m: metrics[m] for m in METRICS}})
        per_au.extend(_per_au_rows(row, metrics, shared))
    return scores, per_au


def cross_dataset(
    estimator,
    train_sets: Mapping,
    test_sets: Mapping | None = None,
    *,
    rho: float,
    baseline_rho: float = 0.0,
    balancer=None,
    select_threshold: float | None = 0.4,
    cv=None,
    param: str = "rho",
    n_jobs: int | None = None,
    scheduler=None,
    results_dir=None,
    random_state=None,
    verbose: int = 0,
) -> Bunch:
    """Train on each data set, test on every other one on the shared AUs (paper Table III).

    For each training set the AUs are selected as in the paper (absolute correlation of at
    least ``select_threshold`` with another AU). One model is trained on the training part
    of every subject-wise fold of that set (so each cell has a mean and a spread), for
    ``baseline_rho`` and ``rho``, not balanced and (with a ``balancer``) balanced, and tested
    on every other set on the AUs it shares with the model.

    Parameters
    ----------
    estimator : estimator
        As in :func:`search_rho`.
    train_sets : mapping of str to (X, Y, groups)
        Named data sets; ``Y`` must be a DataFrame with AU columns. A Bunch with
        ``images`` (or ``data``), ``labels`` and ``subjects`` also works, e.g. the output
        of :func:`~sklearn_corrloss.datasets.synthetic.make_au_faces`.
    test_sets : mapping, optional
        Default: ``train_sets``. A set is never tested on itself (same name).
    rho, baseline_rho, balancer, param, n_jobs, scheduler, results_dir, random_state, verbose
        As in :func:`within_dataset_cv`.
    select_threshold : float or None, default=0.4
        AU selection per training set; ``None`` keeps all of its AUs.
    cv : int or group-aware splitter, default=None
        Folds of each training set; ``None`` means ``GroupKFold(5)``. Each fold's training
        part trains one model (its held-out part is unused).

    Returns
    -------
    Bunch
        ``scores`` (train, balanced, rho, fold, test, n_aus, macro_f1,
        correlation_distance), ``summary`` (mean and std per train/test cell and condition),
        ``per_au`` (F1 per shared AU: Table VI) and ``selected`` (the AUs kept per training
        set).

    Examples
    --------
    >>> import warnings
    >>> from sklearn.neural_network import MLPClassifier
    >>> def make(seed):
    ...     rng = np.random.RandomState(seed)
    ...     X = rng.normal(size=(40, 3))
    ...     Y = pd.DataFrame({"AU06": X[:, 0] > 0, "AU12": X[:, 0] + X[:, 1] > 0,
    ...                       "AU04": X[:, 2] > 0}).astype(int)
    ...     return X, Y, np.repeat(np.arange(4), 10)
    >>> sets = {"A": make(0), "B": make(1)}
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     result = cross_dataset(MLPClassifier(max_iter=20), sets, rho=1.0,
    ...                            baseline_rho=1e-4, param="alpha", cv=2, random_state=0)
    >>> result.selected
    {'A': ['AU06', 'AU12'], 'B': ['AU06', 'AU12']}
    >>> result.summary[["train", "test", "rho", "n"]]
      train test     rho  n
    0     A    B  0.0001  2
    1     A    B  1.0000  2
    2     B    A  0.0001  2
    3     B    A  1.0000  2
    """
    train_sets = {name: _unpack_dataset(name, data) for name, data in train_sets.items()}
    test_sets = (
        train_sets
        if test_sets is None
        else {name: _unpack_dataset(name, data) for name, data in test_sets.items()}
    )
    rng = _rng(random_state)
    store = _store(results_dir)
    data = {
        name: _data_key(store, *dataset) for name, dataset in {**train_sets, **test_sets}.items()
    }
    jobs, shared_data, selected = [], [], {}
    for train_name, (X, Y, groups) in train_sets.items():
        aus = (
            list(Y.columns)
            if select_threshold is None
            else select_correlated_labels(Y, select_threshold)
        )
        if len(aus) < 2:
            raise ValueError(
                f"Only {len(aus)} AU(s) of data set {train_name!r} correlate with another at "
                f"|r| >= {select_threshold}; lower select_threshold or use more data."
            )
        selected[train_name] = aus
        tests = {}
        for test_name, (X_test, Y_test, _) in test_sets.items():
            if test_name == train_name:
                continue
            shared = [au for au in aus if au in Y_test.columns]
            if not shared:
                warnings.warn(
                    f"Data set {test_name!r} shares no AU with the AUs selected on "
                    f"{train_name!r} ({aus}); that pair is skipped.",
                    stacklevel=2,
                )
                continue
            tests[test_name] = (X_test, Y_test, shared)
        Y_selected = Y[aus]  # one object for all jobs: sent to each Dask worker once
        shared_data += [X, Y_selected, groups, tests]  # tests: one dict for all its jobs
        splitter = _check_cv(cv, groups)
        folds = [train for train, _ in splitter.split(np.zeros((len(Y), 1)), Y, groups)]
        seed = _seed(rng)
        for balanced in [False, True] if balancer is not None else [False]:
            for fold, train in enumerate(folds):
                rows = _balanced_rows(balancer, Y, train, _seed(rng)) if balanced else train
                for value in (baseline_rho, rho):
                    model = _with_params(estimator, **{param: value, "random_state": seed})
                    condition = {
                        "train": train_name,
                        "balanced": balanced,
                        "rho": value,
                        "fold": fold,
                    }
                    key = None
                    if store is not None:
                        key = store.key(
                            "cross",
                            estimator=estimator_fingerprint(model),
                            data=data[train_name],
                            aus=aus,
                            rows=fingerprint(rows),
                            tests={name: (data[name], test[2]) for name, test in tests.items()},
                            condition=condition,
                        )
                    args = (model, X, Y_selected, groups, rows, tests, condition)
                    jobs.append((key, _fit_and_test, args, condition))
    results = run_jobs(
        jobs,
        n_jobs=n_jobs,
        scheduler=scheduler,
        store=store,
        shared=shared_data,
        verbose=verbose,
    )
    scores = pd.DataFrame([row for rows, _ in results for row in rows])
    per_au = pd.DataFrame([row for _, rows in results for row in rows])
    summary = summarize(scores, by=["train", "test", "balanced", "rho"]) if len(scores) else scores
    return Bunch(scores=scores, summary=summary, per_au=per_au, selected=selected)


def _fine_tune(estimator, X, Y, groups, epochs: int):
    """Continue training for ``epochs`` epochs with ``partial_fit`` (same network)."""
    if not hasattr(estimator, "partial_fit"):
        raise TypeError(f"{type(estimator).__name__} has no partial_fit; it cannot calibrate.")
    fit_params = (
        {"groups": groups}
        if "groups" in inspect.signature(estimator.partial_fit).parameters
        else {}
    )
    if "max_epochs" in estimator.get_params():
        # skorch: one partial_fit call trains max_epochs epochs.
        estimator.set_params(max_epochs=epochs)
        estimator.partial_fit(X, Y, **fit_params)
    else:
        # scikit-learn: one partial_fit call is one pass over the data.
        for _ in range(epochs):
            estimator.partial_fit(X, Y, **fit_params)
    return estimator


def _calibrate_one(estimator, X, Y, groups, rows: dict, epochs: int, condition: dict):
    """One calibration unit: fit without the task, fine-tune on one half, test on the other."""
    labels = list(Y.columns)

    def part(name):
        return _safe_indexing(X, rows[name]), Y.iloc[rows[name]], groups[rows[name]]

    _fit(estimator, *part("train"))
    X_test, Y_test, _ = part("test")
    scores, per_au = [], []
    for stage in ("before", "after"):
        if stage == "after":
            _fine_tune(estimator, *part("calibration"), epochs)
        metrics = _metrics(Y_test, *_predictions(estimator, X_test), labels)
        row = {**condition, "stage": stage}
        scores.append({**row, **{m: metrics[m] for m in METRICS}})
        per_au.extend(_per_au_rows(row, metrics, labels))
    return scores, per_au


def calibrate(
    estimator,
    X,
    Y,
    groups,
    tasks,
    *,
    rhos: Sequence[float] = (0.0, 0.45),
    epochs: int = 10,
    held_out_tasks: Sequence | None = None,
    param: str = "rho",
    n_jobs: int | None = None,
    scheduler=None,
    results_dir=None,
    random_state=None,
    verbose: int = 0,
) -> Bunch:
    """Calibrate on one expression task with ``partial_fit`` (paper Table IV).

    For each task: train on all frames of the other tasks; split the task's subjects into
    two halves; fine-tune the same network on the first half's frames for ``epochs`` epochs
    with ``partial_fit``; test on the second half, before and after fine-tuning. This is
    done for every value in ``rhos`` (the same ``rho`` for training and fine-tuning).

    Parameters
    ----------
    estimator : estimator
        Needs ``partial_fit`` that continues training, e.g. ``CorrLossAUClassifier``.
    X, Y, groups, param, n_jobs, scheduler, results_dir, verbose
        As in :func:`search_rho`; a stored result is one (task, rho) unit (training,
        fine-tuning and both tests).
    tasks : array-like of shape (n_samples,)
        Expression task of each frame (BP4D: T1 ... T8).
    rhos : sequence of float, default=(0.0, 0.45)
        Values compared (the paper: 0 and 0.45).
    epochs : int, default=10
        Fine-tuning epochs (the paper: 10).
    held_out_tasks : sequence, optional
        Tasks to calibrate on; default every task (one model per task and rho).
    random_state : int, RandomState or None
        Seeds the subject halves, and the estimator if it has ``random_state``.

    Returns
    -------
    Bunch
        ``scores`` (task, rho, stage ``"before"``/``"after"``, macro_f1,
        correlation_distance), ``summary`` (Table IV: one row per task and rho, metrics
        after calibration, and ``macro_f1_before``), ``per_au`` and ``halves`` (task ->
        (calibration subjects, test subjects)).

    Examples
    --------
    >>> import warnings
    >>> from sklearn.neural_network import MLPClassifier
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(80, 3))
    >>> Y = pd.DataFrame({"AU01": X[:, 0] > 0, "AU02": X[:, 0] + X[:, 1] > 0}).astype(int)
    >>> subjects, tasks = np.tile(np.repeat(np.arange(4), 10), 2), np.repeat(["T1", "T2"], 40)
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     result = calibrate(MLPClassifier(max_iter=20), X, Y, subjects, tasks,
    ...                        rhos=[1e-4, 1.0], param="alpha", epochs=2, random_state=0)
    >>> result.summary[["task", "rho"]]
      task     rho
    0   T1  0.0001
    1   T1  1.0000
    2   T2  0.0001
    3   T2  1.0000
    """
    Y, groups = _checked_data(X, Y, groups)
    tasks = np.asarray(tasks)
    if tasks.shape != (len(Y),):
        raise ValueError(f"tasks must have shape ({len(Y)},), got {tasks.shape}.")
    if not isinstance(epochs, numbers.Integral) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}.")
    known = list(pd.unique(tasks))
    held_out = known if held_out_tasks is None else list(held_out_tasks)
    unknown = [task for task in held_out if task not in known]
    if unknown:
        raise ValueError(f"Unknown task(s) {unknown}; the data has tasks {known}.")
    rng = check_random_state(random_state)
    seed = None if random_state is None else _seed(rng)
    store = _store(results_dir)
    data = _data_key(store, X, Y, groups)
    jobs, halves = [], {}
    for task in held_out:
        task_rows = np.flatnonzero(tasks == task)
        task_subjects = np.unique(groups[task_rows])
        if len(task_subjects) < 2:
            raise ValueError(
                f"Task {task!r} has {len(task_subjects)} subject(s); calibration needs at least "
                "2 (one half to fine-tune on, one to test on)."
            )
        splitter = GroupShuffleSplit(n_splits=1, test_size=0.5, random_state=_seed(rng))
        calibration, test = next(splitter.split(task_rows, groups=groups[task_rows]))
        rows = {
            "train": np.flatnonzero(tasks != task),
            "calibration": task_rows[calibration],
            "test": task_rows[test],
        }
        halves[task] = (
            np.unique(groups[rows["calibration"]]).tolist(),
            np.unique(groups[rows["test"]]).tolist(),
        )
        for value in rhos:
            model = _with_params(estimator, **{param: value, "random_state": seed})
            condition = {"task": task, "rho": value}
            key = None
            if store is not None:
                key = store.key(
                    "calibrate",
                    estimator=estimator_fingerprint(model),
                    data=data,
                    rows={part: fingerprint(part_rows) for part, part_rows in rows.items()},
                    epochs=int(epochs),
                    condition=condition,
                )
            args = (model, X, Y, groups, rows, epochs, condition)
            jobs.append((key, _calibrate_one, args, condition))
    results = run_jobs(
        jobs,
        n_jobs=n_jobs,
        scheduler=scheduler,
        store=store,
        shared=(X, Y, groups),
        verbose=verbose,
    )
    scores = pd.DataFrame([row for rows, _ in results for row in rows])
    per_au = pd.DataFrame([row for _, rows in results for row in rows])
    after = scores[scores["stage"] == "after"].drop(columns="stage").reset_index(drop=True)
    before = scores.loc[scores["stage"] == "before", "macro_f1"].to_numpy()
    summary = after.assign(macro_f1_before=before)
    return Bunch(scores=scores, summary=summary, per_au=per_au, halves=halves)


def per_au_f1_table(per_au: pd.DataFrame, columns: Sequence[str] = ("rho",)) -> pd.DataFrame:
    """Mean F1 per AU and condition, with an average row (paper Tables V and VI).

    Parameters
    ----------
    per_au : DataFrame
        The ``per_au`` result of :func:`within_dataset_cv`, :func:`cross_dataset`,
        :func:`search_rho` or :func:`calibrate` (columns ``au``, ``f1`` and conditions).
    columns : sequence of str, default=("rho",)
        Condition columns that become the table's columns.

    Returns
    -------
    DataFrame
        One row per AU (in order of appearance) plus ``"average"``; one column per
        condition; cells are F1 means over folds (and test sets, if not in ``columns``).

    Examples
    --------
    >>> per_au = pd.DataFrame({"rho": [0, 0, 0.3, 0.3], "au": ["AU01", "AU02"] * 2,
    ...                        "f1": [0.5, 0.7, 0.6, 0.8]})
    >>> per_au_f1_table(per_au)  # doctest: +NORMALIZE_WHITESPACE
    rho        0.0  0.3
    au
    AU01       0.5  0.6
    AU02       0.7  0.8
    average    0.6  0.7
    """
    columns = list(columns)
    table = per_au.pivot_table(
        index="au", columns=columns, values="f1", aggfunc="mean", sort=False
    )
    table.loc["average"] = table.mean(axis=0)
    return table


def evaluate(estimator, X, Y) -> Bunch:
    """Per-AU report and correlation distance of a fitted model on labelled data.

    Parameters
    ----------
    estimator : fitted estimator
        Its ``classes_`` (AU names) must all be columns of ``Y``; extra columns are ignored.
    X : array-like
        Images or features.
    Y : DataFrame of shape (n_samples, n_labels)
        Binary labels with AU columns (a plain array must have exactly the model's labels).

    Returns
    -------
    Bunch
        ``report`` (per-AU precision, recall, F1, support, with a macro row),
        ``macro_f1`` and ``correlation_distance`` (sum over AU pairs, lower is better).

    Raises
    ------
    ValueError
        If the data lacks AUs the model predicts (e.g. a model file for another AU set).

    Examples
    --------
    >>> import warnings
    >>> from sklearn.neural_network import MLPClassifier
    >>> X = np.random.RandomState(0).normal(size=(30, 2))
    >>> Y = pd.DataFrame({"AU01": X[:, 0] > 0, "AU02": X[:, 1] > 0}).astype(int)
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     model = MLPClassifier(max_iter=50, random_state=0).fit(X, Y)
    >>> evaluate(model, X, Y).report.index.tolist()
    ['AU01', 'AU02', 'macro']
    """
    Y = _label_frame(Y)
    _check_same_length(X, Y)
    classes = list(getattr(estimator, "classes_", []))
    if classes and all(isinstance(name, str) for name in classes):
        missing = [name for name in classes if name not in Y.columns]
        if missing:
            raise ValueError(
                f"The model predicts AUs {classes}, but the labels lack {missing} "
                f"(label columns: {list(Y.columns)}). Was the model trained for another AU set?"
            )
        Y = Y[classes]
    classes = list(Y.columns)
    Y_pred, Y_score = _predictions(estimator, X)
    if Y_pred.shape[1] != len(classes):
        raise ValueError(
            f"The model predicts {Y_pred.shape[1]} labels but the data has {len(classes)}."
        )
    metrics = _metrics(Y, Y_pred, Y_score, classes)
    return Bunch(
        report=au_f1_report(Y, Y_pred, labels=classes),
        macro_f1=metrics["macro_f1"],
        correlation_distance=metrics["correlation_distance"],
    )
