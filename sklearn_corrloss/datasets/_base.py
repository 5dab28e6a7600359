"""The common result of every loader: image paths, AU labels, subjects, tasks, frames.

Every loader (BP4D, DISFA, CK+, Aff-Wild2, manifest CSV) returns an :class:`AUDataset`.
Labels are a float DataFrame with one column per AU named ``AU01``, ``AU02``...; a value is
1 (present), 0 (absent) or NaN (unknown / not coded), never an unknown code read as 0.
A manifest CSV is the same table on disk, so any data set round-trips through
:meth:`AUDataset.to_manifest` and :meth:`AUDataset.from_manifest`.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .._atomic import atomic_output
from .au_names import au_number, is_au_name, normalize_au_name

__all__ = ["AUDataset", "DatasetLayoutError"]

#: Column names of the manifest CSV (other than AU and metadata columns).
PATH, SUBJECT, TASK, FRAME = "path", "subject", "task", "frame"
_MISSING_TEXT = frozenset({"", "nan", "na", "n/a", "none", "null"})


class DatasetLayoutError(FileNotFoundError):
    """A data set root does not have the expected files; the message says what was found.

    It is a :class:`FileNotFoundError`, so ``except OSError`` catches it too.

    Examples
    --------
    >>> import tempfile
    >>> from sklearn_corrloss.datasets import DatasetLayoutError, load_bp4d
    >>> with tempfile.TemporaryDirectory() as empty:
    ...     try:
    ...         load_bp4d(empty)
    ...     except DatasetLayoutError:
    ...         print("not a BP4D folder")
    not a BP4D folder
    """


def _str_array(values, what: str, n: int | None = None) -> np.ndarray:
    array = np.asarray(values, dtype=object)
    if array.ndim != 1:
        raise ValueError(f"{what} must be one-dimensional, got shape {array.shape}.")
    if n is not None and len(array) != n:
        raise ValueError(f"{what} has {len(array)} entries but there are {n} samples.")
    if pd.isna(pd.Series(array, dtype=object)).any():
        raise ValueError(f"{what} contains missing values.")
    return np.array([str(v) for v in array], dtype=object)


def to_binary_labels(values, *, unknown_values=(), where: str = "labels") -> np.ndarray:
    """Convert label codes to floats 1/0/NaN; anything else is an error naming ``where``.

    Parameters
    ----------
    values : array-like
        Numbers (or numeric strings); empty/NaN entries stay NaN.
    unknown_values : sequence of numbers
        Codes that mean "unknown / not coded" (BP4D's 9, Aff-Wild2's -1): become NaN.
    where : str
        Named in the error message (file name, column).

    Examples
    --------
    >>> to_binary_labels([1, 0, 9, None], unknown_values=[9])
    array([ 1.,  0., nan, nan])
    """
    raw = pd.Series(np.asarray(values, dtype=object))
    numeric = pd.to_numeric(raw, errors="coerce")
    unresolved = numeric.isna() & raw.notna()
    if unresolved.any():
        text = raw[unresolved].astype(str).str.strip().str.lower()
        not_numeric = ~text.isin(_MISSING_TEXT)
        if not_numeric.any():
            bad = list(dict.fromkeys(raw[unresolved][not_numeric].astype(str)))[:5]
            raise ValueError(f"{where}: non-numeric label values {bad}.")
    array = numeric.to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
    return codes_to_binary(array, unknown_values=unknown_values, where=where)


def codes_to_binary(array: np.ndarray, *, unknown_values=(), where: str = "labels") -> np.ndarray:
    """Map unknown codes of a float array to NaN (in place) and check the rest is 0 or 1."""
    for code in unknown_values:
        array[array == float(code)] = np.nan
    known = ~np.isnan(array)
    invalid = known & (array != 0) & (array != 1)
    if invalid.any():
        bad = sorted({float(v) for v in array[invalid]})[:5]
        shown = [int(v) if v.is_integer() else v for v in bad]
        hint = f" (unknown codes in use: {list(unknown_values)})" if unknown_values else ""
        raise ValueError(
            f"{where}: labels must be 1, 0 or empty (unknown), found {shown}{hint}. "
            "Pass unknown_values=[...] if these codes mean 'not coded'."
        )
    return array


def table_to_labels(table: pd.DataFrame, *, unknown_values=(), where: str = "labels"):
    """Label codes of every column of ``table`` as a float matrix of 1/0/NaN.

    Numeric columns (what pandas' C parser gives for clean files) take a vectorised path;
    other columns go through :func:`to_binary_labels`, whose error names the column.
    """
    numeric = [
        pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
        for dtype in table.dtypes
    ]
    if all(numeric) and len(table.columns):
        values = table.to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
        for code in unknown_values:
            values[values == float(code)] = np.nan
        if np.all(np.isnan(values) | (values == 0) | (values == 1)):
            return values
    columns = []
    for column in table.columns:
        series = table[column]
        label = f"{where} column {column!r}"
        if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
            values = series.to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
            columns.append(codes_to_binary(values, unknown_values=unknown_values, where=label))
        else:
            columns.append(
                to_binary_labels(series.to_numpy(), unknown_values=unknown_values, where=label)
            )
    return np.column_stack(columns) if columns else np.empty((len(table), 0))


def _label_frame(labels) -> pd.DataFrame:
    if not isinstance(labels, pd.DataFrame):
        raise TypeError(f"labels must be a pandas DataFrame, got {type(labels).__name__}.")
    names = [normalize_au_name(c) for c in labels.columns]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ValueError(f"labels has several columns for {', '.join(duplicated)}.")
    values = table_to_labels(labels, where="labels")
    frame = pd.DataFrame(values, columns=names, index=pd.RangeIndex(len(labels)))
    return frame[sorted(frame.columns, key=au_number)]


@dataclass(eq=False)
class AUDataset:
    """A labelled AU data set: image paths, labels, subjects, tasks and frame numbers.

    Parameters
    ----------
    paths : sequence of str of length n_samples
        Image files.
    labels : DataFrame of shape (n_samples, n_aus)
        Columns are AU names in any spelling (normalised to ``AU01``...), values 1, 0 or
        NaN (unknown / not coded).
    subjects : sequence of str of length n_samples
        Subject IDs: use them as ``groups`` in ``GroupKFold`` so no subject is in two folds.
    tasks : sequence of str, optional
        Task / sequence IDs where the data set has them (BP4D ``T1``...``T8``, CK+
        sequence ``001``...), else None.
    frames : sequence of int, optional
        Frame numbers as the data set counts them.
    name : str, default="dataset"
        Data set name, shown in messages.
    metadata : DataFrame, optional
        Further per-sample columns (CK+ ``emotion``, BP4D ``task_name``, Aff-Wild2 ``split``).

    Attributes
    ----------
    aus : list of str
        The label columns.

    Examples
    --------
    >>> ds = AUDataset(paths=["a.png", "b.png"], subjects=["s1", "s2"],
    ...                labels=pd.DataFrame({"1": [1, 0], "au12": [None, 1]}))
    >>> ds.aus
    ['AU01', 'AU12']
    >>> ds.labels
       AU01  AU12
    0   1.0   NaN
    1   0.0   1.0
    """

    paths: np.ndarray
    labels: pd.DataFrame
    subjects: np.ndarray
    tasks: np.ndarray | None = None
    frames: np.ndarray | None = None
    name: str = "dataset"
    metadata: pd.DataFrame = field(default=None)

    def __post_init__(self):
        self.paths = _str_array(self.paths, "paths")
        n = len(self.paths)
        self.labels = _label_frame(self.labels)
        if len(self.labels) != n:
            raise ValueError(f"labels has {len(self.labels)} rows but there are {n} paths.")
        self.subjects = _str_array(self.subjects, "subjects", n)
        if self.tasks is not None:
            self.tasks = _str_array(self.tasks, "tasks", n)
        if self.frames is not None:
            frames = np.asarray(self.frames)
            if frames.shape != (n,):
                raise ValueError(f"frames has shape {frames.shape}; expected ({n},).")
            if frames.size and not np.issubdtype(frames.dtype, np.integer):
                as_float = frames.astype(np.float64)
                if not np.all(np.isfinite(as_float) & (as_float == np.round(as_float))):
                    raise ValueError("frames must be whole numbers.")
            self.frames = frames.astype(np.int64)
        if self.metadata is None:
            self.metadata = pd.DataFrame(index=pd.RangeIndex(n))
        else:
            if len(self.metadata) != n:
                raise ValueError(f"metadata has {len(self.metadata)} rows but there are {n}.")
            self.metadata = pd.DataFrame(self.metadata).reset_index(drop=True)
        self.name = str(self.name)

    # ------------------------------------------------------------------ basics
    def __len__(self) -> int:
        return len(self.paths)

    def __repr__(self) -> str:
        return (
            f"AUDataset(name={self.name!r}, n_samples={len(self)}, "
            f"n_subjects={len(np.unique(self.subjects))}, aus={self.aus})"
        )

    @property
    def aus(self) -> list[str]:
        return list(self.labels.columns)

    def subset(self, index) -> AUDataset:
        """A new data set with the rows selected by a boolean mask or integer indices.

        Parameters
        ----------
        index : array-like of bool of shape (n_samples,) or array-like of int
            The rows to keep, as a mask or as positions.

        Returns
        -------
        AUDataset
            The selected rows, with a fresh 0-based index.

        Examples
        --------
        >>> ds = AUDataset(paths=["a", "b", "c"], subjects=["s1", "s1", "s2"],
        ...                labels=pd.DataFrame({"AU01": [1, 0, 1]}))
        >>> ds.subset(ds.subjects == "s2").paths.tolist()
        ['c']
        """
        index = np.asarray(index)
        if index.dtype == bool:
            if index.shape != (len(self),):
                raise ValueError(f"Boolean mask of shape {index.shape}; expected ({len(self)},).")
            index = np.flatnonzero(index)
        index = index.astype(np.intp)
        return AUDataset(
            paths=self.paths[index],
            labels=self.labels.iloc[index].reset_index(drop=True),
            subjects=self.subjects[index],
            tasks=None if self.tasks is None else self.tasks[index],
            frames=None if self.frames is None else self.frames[index],
            name=self.name,
            metadata=self.metadata.iloc[index].reset_index(drop=True),
        )

    def select_aus(self, aus) -> AUDataset:
        """A new data set with only the given AU columns (any spelling), in AU order.

        Parameters
        ----------
        aus : iterable of str or int
            AU names or numbers (``"AU1"``, ``"AU01"``, ``1`` ...).

        Returns
        -------
        AUDataset
            All rows, with these label columns only.

        Raises
        ------
        KeyError
            If an AU has no label column; the message lists the available AUs.

        Examples
        --------
        >>> ds = AUDataset(paths=["a"], subjects=["s"],
        ...                labels=pd.DataFrame({"AU01": [1], "AU02": [0], "AU04": [1]}))
        >>> ds.select_aus([4, "AU1"]).aus
        ['AU01', 'AU04']
        """
        keep = sorted({normalize_au_name(a) for a in aus}, key=au_number)
        missing = [a for a in keep if a not in self.labels.columns]
        if missing:
            raise KeyError(
                f"{self.name}: no label column for {', '.join(missing)}; "
                f"available: {', '.join(self.aus) or 'none'}."
            )
        new = self.subset(np.arange(len(self)))
        new.labels = new.labels[keep]
        return new

    def summary(self) -> pd.DataFrame:
        """Per-AU counts: positives, negatives, unknown and the base rate of known labels.

        Returns
        -------
        DataFrame
            One row per AU; columns ``positive``, ``negative``, ``unknown`` and
            ``base_rate`` (positives among known labels; NaN without known labels).

        Examples
        --------
        >>> ds = AUDataset(paths=["a", "b", "c"], subjects=["s"] * 3,
        ...                labels=pd.DataFrame({"AU01": [1, 0, None]}))
        >>> ds.summary()
              positive  negative  unknown  base_rate
        AU01         1         1        1        0.5
        """
        positive = (self.labels == 1).sum()
        negative = (self.labels == 0).sum()
        unknown = self.labels.isna().sum()
        with np.errstate(invalid="ignore", divide="ignore"):
            rate = positive / (positive + negative)
        return pd.DataFrame(
            {"positive": positive, "negative": negative, "unknown": unknown, "base_rate": rate}
        )

    # ------------------------------------------------------------------ manifest
    def to_frame(self) -> pd.DataFrame:
        """One table: ``path``, ``subject``, [``task``], [``frame``], metadata, AU columns.

        Returns
        -------
        DataFrame
            One row per sample (the manifest layout).

        Raises
        ------
        ValueError
            If a metadata column has the name of a manifest or AU column.
        """
        columns = {PATH: self.paths, SUBJECT: self.subjects}
        if self.tasks is not None:
            columns[TASK] = self.tasks
        if self.frames is not None:
            columns[FRAME] = self.frames
        table = pd.DataFrame(columns, index=pd.RangeIndex(len(self)))
        clash = [c for c in self.metadata.columns if c in table.columns or is_au_name(c)]
        if clash:
            raise ValueError(f"metadata columns {clash} clash with manifest or AU columns.")
        return pd.concat([table, self.metadata, self.labels], axis=1)

    def to_manifest(self, path, *, relative_to=None) -> Path:
        """Write the data set as a manifest CSV that :meth:`from_manifest` reads back.

        Parameters
        ----------
        path : str or Path
            CSV file to write (parent folders are created). It is written atomically:
            after an error an existing file keeps its content.
        relative_to : str or Path, optional
            Write image paths relative to this folder (e.g. the CSV's folder, for a data
            set that moves with its manifest). Default: paths as stored (absolute for
            the loaders).

        Returns
        -------
        Path
            The written file. Unknown labels are written as empty cells.
        """
        path = Path(path)
        table = self.to_frame()
        if relative_to is not None:
            base = Path(relative_to).resolve()
            table[PATH] = [os.path.relpath(Path(p).resolve(), base) for p in self.paths]
        with atomic_output(path) as tmp:
            table.to_csv(tmp, index=False, float_format="%g")
        return path

    @classmethod
    def from_manifest(cls, path, **kwargs) -> AUDataset:
        """Read a manifest CSV; see :func:`sklearn_corrloss.datasets.manifest.load_manifest`.

        Parameters
        ----------
        path : str or Path
            The CSV file.
        **kwargs
            Further arguments of ``load_manifest`` (``root=``, ``unknown_values=`` ...).

        Returns
        -------
        AUDataset
            The data set the manifest describes.
        """
        from .manifest import load_manifest

        return load_manifest(path, **kwargs)


def assemble(
    table: pd.DataFrame,
    *,
    name: str,
    aus=None,
    drop_unlabeled: bool = True,
    on_missing: str = "drop",
    metadata_columns=(),
    default_aus=None,
) -> AUDataset:
    """Turn a loader's long table into an :class:`AUDataset`.

    ``table`` has ``path`` (None where the image is missing), ``subject``, optionally
    ``task`` and ``frame``, the ``metadata_columns`` and AU columns (floats 1/0/NaN).
    ``aus`` chooses label columns (default ``default_aus``, else every AU column with at
    least one known label); images that are missing are dropped with a warning or raise;
    rows whose selected labels are all unknown are dropped when ``drop_unlabeled``.
    """
    if on_missing not in ("drop", "raise"):
        raise ValueError(f"on_missing must be 'drop' or 'raise', got {on_missing!r}.")
    au_columns = [c for c in table.columns if c.startswith("AU") and is_au_name(c)]
    if aus is None:
        if default_aus is not None:
            keep = [normalize_au_name(a) for a in default_aus]
        else:
            keep = [c for c in au_columns if table[c].notna().any()]
    else:
        keep = [normalize_au_name(a) for a in aus]
        unavailable = [a for a in keep if a not in au_columns]
        if unavailable:
            raise KeyError(
                f"{name}: requested AUs {', '.join(unavailable)} are not in the label files; "
                f"available: {', '.join(sorted(au_columns, key=au_number)) or 'none'}."
            )
    keep = sorted(dict.fromkeys(keep), key=au_number)
    for au in keep:
        if au not in table.columns:
            table[au] = np.nan
    missing = table[PATH].isna().to_numpy()
    if missing.any():
        examples = table.loc[missing, [SUBJECT, FRAME]].head(3).to_dict("records")
        message = (
            f"{name}: {int(missing.sum())} labelled frame(s) have no image file "
            f"(first: {examples})."
        )
        if on_missing == "raise":
            raise FileNotFoundError(message + " Pass on_missing='drop' to skip them.")
        warnings.warn(message + " They were dropped.", UserWarning, stacklevel=3)
        table = table.loc[~missing]
    if drop_unlabeled and keep:
        table = table.loc[table[keep].notna().any(axis=1).to_numpy()]
    table = table.reset_index(drop=True)
    return AUDataset(
        paths=table[PATH].to_numpy(),
        labels=table[keep],
        subjects=table[SUBJECT].to_numpy(),
        tasks=table[TASK].to_numpy() if TASK in table else None,
        frames=table[FRAME].to_numpy() if FRAME in table else None,
        name=name,
        metadata=table[list(metadata_columns)],
    )
