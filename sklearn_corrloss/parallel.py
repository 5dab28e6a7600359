"""Where and whether the experiments' independent fits run: Dask clusters and stored results.

- :func:`dask_backend`: run the joblib jobs of a block on a Dask cluster (a scheduler
  address or a :class:`distributed.Client`); :func:`connect` opens (and closes) the client.
- :class:`ResultStore`: a folder with one small JSON file per finished fit, named by a hash
  of everything that determines the fit, so that a rerun loads finished fits instead of
  repeating them (resuming an interrupted experiment).
- :func:`run_jobs`: runs a list of jobs through both: stored results are loaded, the rest run
  through joblib (on Dask if asked) and are stored as each one finishes.

Dask is an optional dependency (``pip install "sklearn-corrloss[dask]"``), imported only when
a scheduler is given.
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import joblib
import numpy as np
from sklearn.utils.parallel import Parallel, delayed

from ._atomic import atomic_output

__all__ = [
    "CONNECT_TIMEOUT",
    "DASK_WORKER_CONFIG",
    "ResultStore",
    "connect",
    "dask_backend",
    "estimator_fingerprint",
    "fingerprint",
    "run_jobs",
]

#: Seconds to wait for a Dask scheduler to answer before giving up.
CONNECT_TIMEOUT = 10.0

#: Dask configuration for workers that train PyTorch models on CPUs; set it where the
#: cluster is created: ``with dask.config.set(DASK_WORKER_CONFIG): LocalCluster(...)``.
#: distributed starts its workers with ``MALLOC_TRIM_THRESHOLD_=65536``, which makes glibc
#: map and unmap every large tensor allocation; CPU training then ran 2-2.3x slower
#: (``benchmarks/bench_dask.py``). ``None`` leaves the variable unset.
DASK_WORKER_CONFIG = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}

#: Estimator parameters that do not change a fit's result (left out of result keys).
_NEUTRAL_PARAMS = ("verbose", "n_jobs")


# --- Dask -------------------------------------------------------------------------------------
def _distributed():
    """The ``distributed`` module, or an ImportError that says how to install it."""
    try:
        import distributed
    except ImportError as error:
        raise ImportError(
            "Running on a Dask scheduler needs the dask extra: "
            'pip install "sklearn-corrloss[dask]"'
        ) from error
    return distributed


@contextlib.contextmanager
def connect(scheduler=None, *, timeout: float | None = None) -> Iterator:
    """A :class:`distributed.Client` for ``scheduler``, closed afterwards if opened here.

    Parameters
    ----------
    scheduler : None, str or distributed.Client
        ``None`` yields ``None`` (nothing to connect to); an address such as
        ``"tcp://10.0.0.5:8786"`` opens a client that is closed when the block ends; a
        client is yielded as is and left open.
    timeout : float, optional
        Seconds to wait for the scheduler; default :data:`CONNECT_TIMEOUT`.

    Yields
    ------
    distributed.Client or None

    Raises
    ------
    ImportError
        If an address or client is given and ``distributed`` is not installed.
    ConnectionError
        If no scheduler answers at the address within ``timeout`` seconds.
    ValueError
        If the address is malformed (e.g. no port).

    Examples
    --------
    >>> with connect(None) as client:
    ...     print(client)
    None
    """
    if scheduler is None:
        yield None
        return
    distributed = _distributed()
    if isinstance(scheduler, distributed.Client):
        yield scheduler
        return
    if not isinstance(scheduler, str):
        raise TypeError(
            "scheduler must be None, a Dask scheduler address such as 'tcp://host:8786' or a "
            f"distributed.Client, got {type(scheduler).__name__}."
        )
    try:  # checked first: a Client for a malformed address hangs when it is collected
        address = distributed.comm.addressing.normalize_address(scheduler)
        if not address.startswith("inproc://"):
            distributed.comm.get_address_host_port(address)
    except ValueError as error:
        raise ValueError(
            f"Invalid Dask scheduler address {scheduler!r}: {error}. "
            "Expected e.g. tcp://host:8786."
        ) from None
    timeout = CONNECT_TIMEOUT if timeout is None else timeout
    try:
        client = distributed.Client(address, timeout=timeout, set_as_default=False)
    except OSError as error:  # distributed raises OSError on a connection timeout
        raise ConnectionError(
            f"No Dask scheduler answered at {scheduler!r} within {timeout:g} s ({error}). "
            "Start one with `dask scheduler` (and workers with `dask worker ADDRESS`) or "
            "check the address."
        ) from None
    try:
        yield client
    finally:
        client.close()


@contextlib.contextmanager
def dask_backend(
    scheduler=None,
    *,
    resources: dict | None = None,
    scatter: Sequence | None = None,
    timeout: float | None = None,
) -> Iterator:
    """Run the joblib jobs of the block on a Dask cluster.

    Inside the block, :class:`sklearn.utils.parallel.Parallel` (and so every function of
    :mod:`sklearn_corrloss.experiments`, ``GridSearchCV`` and ``cross_validate``) sends its
    jobs to the cluster's workers through joblib's Dask backend. ``n_jobs`` is then ignored:
    the cluster's worker threads decide how many fits run at once. A worker that dies
    (killed, out of memory) has its jobs rerun on other workers.

    Parameters
    ----------
    scheduler : None, str or distributed.Client
        ``None``: nothing changes (the default joblib backend, or one configured around
        the block). An address (``"tcp://host:8786"``): a client is opened for the block and
        closed after it. A :class:`distributed.Client`: used as is and left open.
    resources : dict, optional
        Worker resources each job needs, e.g. ``{"GPU": 1}``: a job then runs only on
        workers started with ``--resources "GPU=1"``, one at a time per GPU.
    scatter : sequence, optional
        Objects (the data) to copy to every worker once, instead of with each job; a worker
        that dies then loses only its own copy.
    timeout : float, optional
        Seconds to wait for the scheduler; default :data:`CONNECT_TIMEOUT`.

    Yields
    ------
    distributed.Client or None
        The client in use (``None`` without a scheduler).

    Raises
    ------
    ImportError
        If a scheduler is given and the ``dask`` extra is not installed.
    ConnectionError
        If no scheduler answers at the address in time.
    ValueError
        If the address is malformed, or ``resources`` are given without a scheduler.

    Examples
    --------
    Without a scheduler the block runs as it would without this helper:

    >>> from sklearn.utils.parallel import Parallel, delayed
    >>> with dask_backend(None):
    ...     Parallel(n_jobs=1)(delayed(abs)(x) for x in [-1, -2])
    [1, 2]

    With a cluster (not run here)::

        with dask_backend("tcp://scheduler:8786", resources={"GPU": 1}):
            result = search_rho(net, X, Y, subjects)
    """
    if resources and scheduler is None:
        raise ValueError(f"resources={resources!r} need a Dask scheduler; none was given.")
    with connect(scheduler, timeout=timeout) as client:
        if client is None:
            yield None
            return
        from joblib import parallel_config

        _warn_about_malloc_trim(client)
        options = {"resources": dict(resources)} if resources else {}
        scatter = [item for item in scatter or () if item is not None]
        with parallel_config(backend="dask", client=client, scatter=scatter or None, **options):
            yield client


def _malloc_trim_setting() -> str | None:
    return os.environ.get("MALLOC_TRIM_THRESHOLD_")


def _warn_about_malloc_trim(client) -> None:
    """Warn when the workers run with the malloc setting that halves CPU training speed."""
    try:
        settings = client.run(_malloc_trim_setting)
    except Exception:  # a check only: never stop a run because of it
        return
    affected = sorted(worker for worker, value in settings.items() if value is not None)
    if affected:
        warnings.warn(
            f"{len(affected)} of {len(settings)} Dask workers run with MALLOC_TRIM_THRESHOLD_="
            f"{settings[affected[0]]}, which made PyTorch training on CPUs about 2x slower "
            "in benchmarks/bench_dask.py. Start the workers without it: see "
            "sklearn_corrloss.parallel.DASK_WORKER_CONFIG (GPU training is hardly affected).",
            RuntimeWarning,
            stacklevel=4,
        )


# --- stored results -----------------------------------------------------------------------------
def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return os.fspath(value)
    raise TypeError(f"Cannot store a {type(value).__name__} in a result file.")


class ResultStore:
    """A folder of finished fits: one JSON file per fit, named by a hash of its inputs.

    The experiment functions write every fit's result (scores, per-AU F1, loss curve) here
    as soon as it finishes, and load it instead of fitting again when the same fit comes
    up: same estimator class and parameters (``rho``, seed, epochs, ...), same data, same
    training and test rows, same scoring. A rerun after an interruption therefore repeats
    only the fits that had not finished; a changed setting gives new keys, so stale
    results are never reused. Files are written atomically (a temporary file moved into
    place), so a killed run leaves complete files or none.

    Parameters
    ----------
    path : str or os.PathLike
        The folder; created at the first write.

    Examples
    --------
    >>> import tempfile
    >>> store = ResultStore(tempfile.mkdtemp())
    >>> key = store.key("demo", rho=0.3, fold=1)
    >>> store.load(key) is None
    True
    >>> store.save(key, {"macro_f1": 0.5}, condition={"rho": 0.3, "fold": 1})
    {'macro_f1': 0.5}
    >>> store.load(key), len(store)
    ({'macro_f1': 0.5}, 1)
    """

    def __init__(self, path):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"ResultStore({os.fspath(self.path)!r})"

    def __len__(self) -> int:
        return len(self.files())

    @staticmethod
    def key(kind: str, **parts) -> str:
        """A stable key for one fit: ``kind`` and a hash of ``parts`` (any picklable values).

        Arrays and DataFrames are hashed by content (:func:`joblib.hash`), dictionaries
        independently of their order.

        Parameters
        ----------
        kind : str
            Prefix naming the kind of fit (e.g. the experiment).
        **parts
            What identifies the fit: estimator fingerprint, data fingerprint, rows, seed...

        Returns
        -------
        str
            ``"<kind>-<first 20 hex digits of the hash>"``, usable as a file name.
        """
        return f"{kind}-{joblib.hash(parts)[:20]}"

    def file(self, key: str) -> Path:
        """The file that holds the result of ``key``.

        Parameters
        ----------
        key : str
            A key from :meth:`key`.

        Returns
        -------
        Path
            ``<path>/<key>.json`` (it may not exist yet).
        """
        return self.path / f"{key}.json"

    def files(self) -> list[Path]:
        """The result files in the folder, sorted.

        Returns
        -------
        list of Path
            The ``.json`` files; empty when the folder does not exist.
        """
        return sorted(self.path.glob("*.json")) if self.path.is_dir() else []

    def load(self, key: str):
        """The stored result of ``key``, or ``None`` if it has not been stored.

        An unreadable file (edited by hand, or from another version) counts as missing,
        with a warning, and is overwritten by the next :meth:`save`.

        Parameters
        ----------
        key : str
            A key from :meth:`key`.

        Returns
        -------
        object or None
            The result as decoded from JSON, or None.
        """
        file = self.file(key)
        try:
            content = json.loads(file.read_text(encoding="utf-8"))
            if content.get("key") != key:
                raise ValueError("the file holds another key")
            return content["result"]
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, AttributeError) as error:
            warnings.warn(f"Ignoring unreadable result file {file}: {error}", stacklevel=2)
            return None

    def save(self, key: str, result, *, condition: dict | None = None):
        """Store ``result`` (JSON-serialisable: numbers, strings, lists, dicts, NumPy values).

        Parameters
        ----------
        key : str
            A key from :meth:`key`.
        result : object
            The fit's result.
        condition : dict or None, default=None
            What the fit was (e.g. rho and fold), written beside the result for people
            reading the file.

        Returns
        -------
        object
            The result as :meth:`load` will return it (after a JSON round trip).
        """
        content = {"key": key, "condition": condition or {}, "result": result}
        text = json.dumps(content, default=_json_default, indent=1)
        with atomic_output(self.file(key)) as tmp:
            tmp.write_text(text, encoding="utf-8")
        return json.loads(text)["result"]


def fingerprint(value) -> str:
    """A content hash of data (arrays, DataFrames, lists of paths) for result keys.

    Parameters
    ----------
    value : object
        Any picklable value.

    Returns
    -------
    str
        The :func:`joblib.hash` of ``value`` (hexadecimal).

    Examples
    --------
    >>> fingerprint(np.arange(3)) == fingerprint(np.arange(3))
    True
    >>> fingerprint(np.arange(3)) == fingerprint(np.arange(4))
    False
    """
    return joblib.hash(value)


def estimator_fingerprint(estimator) -> str:
    """A hash of an estimator's class and parameters (not ``verbose``/``n_jobs``).

    Parameters
    ----------
    estimator : estimator instance
        Anything with scikit-learn's ``get_params``; its top-level parameters count.

    Returns
    -------
    str
        The :func:`joblib.hash` of the class's module and name and the parameters.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> a = estimator_fingerprint(LogisticRegression(C=1.0, verbose=0))
    >>> a == estimator_fingerprint(LogisticRegression(C=1.0, verbose=1))
    True
    >>> a == estimator_fingerprint(LogisticRegression(C=2.0))
    False
    """
    params = {
        name: value
        for name, value in estimator.get_params(deep=False).items()
        if name not in _NEUTRAL_PARAMS
    }
    cls = type(estimator)
    return joblib.hash((cls.__module__, cls.__qualname__, params))


# --- running jobs -------------------------------------------------------------------------------
def _indexed(index: int, function: Callable, *args):
    return index, function(*args)


def run_jobs(
    jobs: Sequence[tuple],
    *,
    n_jobs: int | None = None,
    scheduler=None,
    store: ResultStore | None = None,
    shared: Sequence = (),
    verbose: int = 0,
) -> list:
    """Run independent jobs in parallel, reusing and storing results in ``store``.

    Parameters
    ----------
    jobs : sequence of (key, function, args, condition)
        ``function(*args)`` is one fit; ``key`` names its result in ``store`` (see
        :meth:`ResultStore.key`); ``condition`` (a dict) is written beside the result.
        Large arguments shared by all jobs (the data) should be the same objects in every
        job, so that they are sent to each worker once.
    n_jobs : int, optional
        joblib's ``n_jobs`` (ignored on a Dask cluster).
    scheduler : None, str or distributed.Client
        See :func:`dask_backend`.
    store : ResultStore, optional
        Results found here are not recomputed; new ones are written as they finish, so
        an interrupted run loses only the fits that were running.
    shared : sequence
        The shared large arguments, copied to every Dask worker once.
    verbose : int, default=0
        joblib's progress messages; with a store, also how many fits were reused.

    Returns
    -------
    list
        The results in the order of ``jobs``. With a store, every result is as read back
        from its JSON file (tuples become lists, NumPy numbers plain ones), whether it was
        computed now or earlier, so that both give identical tables.

    Examples
    --------
    >>> import tempfile
    >>> store = ResultStore(tempfile.mkdtemp())
    >>> jobs = [(store.key("square", x=x), pow, (x, 2), {"x": x}) for x in (2, 3)]
    >>> run_jobs(jobs, store=store)
    [4, 9]
    >>> run_jobs(jobs[:1] + [(store.key("square", x=4), pow, (4, 2), {"x": 4})],
    ...          store=store, verbose=1)
    Reusing 1 of 2 fits stored in ...; running 1.
    [4, 16]
    """
    results = [None] * len(jobs)
    todo = []
    for index, (key, _, _, _) in enumerate(jobs):
        stored = None if store is None else store.load(key)
        if stored is None:
            todo.append(index)
        else:
            results[index] = stored
    if store is not None and verbose and len(todo) < len(jobs):
        print(
            f"Reusing {len(jobs) - len(todo)} of {len(jobs)} fits stored in {store.path}; "
            f"running {len(todo)}.",
            flush=True,
        )
    if not todo:
        return results
    with dask_backend(scheduler, scatter=shared if scheduler is not None else None):
        parallel = Parallel(n_jobs=n_jobs, verbose=verbose, return_as="generator_unordered")
        calls = (delayed(_indexed)(index, jobs[index][1], *jobs[index][2]) for index in todo)
        for index, result in parallel(calls):
            if store is not None:
                key, _, _, condition = jobs[index]
                result = store.save(key, result, condition=condition)
            results[index] = result
    return results
