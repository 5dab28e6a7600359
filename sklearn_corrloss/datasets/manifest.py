"""Manifest CSVs: the generic format for any AU data set, and a writer for every loader.

A manifest is one CSV row per image::

    path,subject,task,frame,AU01,AU02,AU12
    /data/x/F001/T1/0001.jpg,F001,T1,1,1,0,
    /data/x/F001/T1/0002.jpg,F001,T1,2,0,0,1

``path`` and ``subject`` are required; ``task`` and ``frame`` are optional; every column
whose name is an AU spelling (``AU1``, ``au01``, ``12``...) is a label column, with 1, 0 or
an empty cell for unknown; any other column is kept as metadata. Relative paths are
relative to the CSV's folder.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ._base import FRAME, PATH, SUBJECT, TASK, AUDataset, to_binary_labels
from .affwild2 import load_affwild2
from .au_names import is_au_name, normalize_au_name
from .bp4d import load_bp4d
from .ckplus import load_ckplus
from .disfa import load_disfa

__all__ = ["LOADERS", "load_dataset", "load_manifest", "write_manifest"]


def load_manifest(
    path,
    *,
    root=None,
    path_col: str = PATH,
    subject_col: str = SUBJECT,
    task_col: str | None = TASK,
    frame_col: str | None = FRAME,
    au_columns=None,
    unknown_values=(),
    name: str | None = None,
) -> AUDataset:
    """Read a manifest CSV into an :class:`~sklearn_corrloss.datasets._base.AUDataset`.

    Parameters
    ----------
    path : str or Path
        The CSV file.
    root : str or Path, optional
        Folder that relative image paths are relative to; default the CSV's folder.
    path_col, subject_col : str, default="path", "subject"
        Required columns.
    task_col, frame_col : str or None, default="task", "frame"
        Optional columns; used when present.
    au_columns : list of str, optional
        Label columns; default every column whose name is an AU spelling.
    unknown_values : sequence of numbers, default=()
        Codes meaning "unknown" (e.g. ``[9]`` or ``[-1]``); empty cells are always
        unknown. Any other value than 0 and 1 is an error, so codes are never misread.
    name : str, optional
        Data set name; default the CSV's stem.

    Returns
    -------
    AUDataset
        Label columns normalised to ``AU01``...; other columns in ``metadata``.

    Raises
    ------
    ValueError
        If a required column is missing, there is no AU column, two columns name the same
        AU, or a label is not 0, 1, empty or an unknown code; the message names the file.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> csv = pathlib.Path(tempfile.mkdtemp()) / "mine.csv"
    >>> _ = csv.write_text("path,subject,AU1,au12,emotion\\n"
    ...                    "img/a.png,p1,1,,happy\\nimg/b.png,p2,0,1,sad\\n")
    >>> ds = load_manifest(csv)
    >>> ds.labels
       AU01  AU12
    0   1.0   NaN
    1   0.0   1.0
    >>> ds.subjects.tolist(), ds.metadata["emotion"].tolist()
    (['p1', 'p2'], ['happy', 'sad'])
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Manifest {path} does not exist.")
    text_columns = {c: str for c in (path_col, subject_col, task_col) if c is not None}
    try:
        table = pd.read_csv(path, dtype=text_columns, keep_default_na=False, na_values=[""])
    except pd.errors.EmptyDataError as error:
        raise ValueError(f"Manifest {path.name} is empty.") from error
    except pd.errors.ParserError as error:
        raise ValueError(f"Manifest {path.name} is ragged: {error}") from error
    table.columns = [str(c).strip() for c in table.columns]
    for required in (path_col, subject_col):
        if required not in table.columns:
            raise ValueError(
                f"Manifest {path.name}: no {required!r} column; columns are "
                f"{list(table.columns)}. Name the columns with path_col=/subject_col=."
            )
    if table.empty:
        raise ValueError(f"Manifest {path.name} has a header but no rows (no images).")
    core = [c for c in (path_col, subject_col, task_col, frame_col) if c in table.columns]
    if au_columns is None:
        au_columns = [c for c in table.columns if c not in core and is_au_name(c)]
    else:
        absent = [c for c in au_columns if c not in table.columns]
        if absent:
            raise ValueError(f"Manifest {path.name}: AU columns {absent} are not in the file.")
    if not au_columns:
        raise ValueError(
            f"Manifest {path.name}: no AU label column (such as AU01, AU1 or 1) among "
            f"{list(table.columns)}."
        )
    names = [normalize_au_name(c) for c in au_columns]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ValueError(f"Manifest {path.name}: several columns for {', '.join(duplicated)}.")
    if table[[path_col, subject_col]].isna().any().any():
        row = int(np.flatnonzero(table[[path_col, subject_col]].isna().any(axis=1))[0])
        raise ValueError(f"Manifest {path.name}: empty path or subject in data row {row + 1}.")
    labels = pd.DataFrame(
        {
            au: to_binary_labels(
                table[column].to_numpy(),
                unknown_values=unknown_values,
                where=f"Manifest {path.name} column {column!r}",
            )
            for au, column in zip(names, au_columns)
        }
    )
    base = Path(root) if root is not None else path.parent
    paths = [p if Path(p).is_absolute() else str(base / p) for p in table[path_col]]
    frames = None
    if frame_col is not None and frame_col in table.columns:
        frames = table[frame_col].to_numpy()
        if pd.isna(frames).any():
            raise ValueError(f"Manifest {path.name}: empty cells in {frame_col!r}.")
    metadata_columns = [c for c in table.columns if c not in core and c not in au_columns]
    return AUDataset(
        paths=paths,
        labels=labels,
        subjects=table[subject_col].to_numpy(),
        tasks=table[task_col].to_numpy() if task_col in table.columns else None,
        frames=frames,
        name=path.stem if name is None else name,
        metadata=table[metadata_columns],
    )


#: Loader of each data set name accepted by :func:`load_dataset` and :func:`write_manifest`.
LOADERS = {
    "bp4d": load_bp4d,
    "disfa": load_disfa,
    "ckplus": load_ckplus,
    "affwild2": load_affwild2,
    "manifest": load_manifest,
}

_ALIASES = {"ck+": "ckplus", "ck": "ckplus", "aff-wild2": "affwild2", "affwild": "affwild2"}


def load_dataset(dataset_name: str, root, **loader_kwargs) -> AUDataset:
    """Load a data set by name: ``bp4d``, ``disfa``, ``ckplus`` (``ck+``), ``affwild2``
    (``aff-wild2``) or ``manifest`` (``root`` is then the CSV file).

    Parameters
    ----------
    dataset_name : str
        A key of ``LOADERS`` or an alias (``ck+``, ``ck``, ``aff-wild2``, ``affwild``),
        in any case.
    root : str or Path
        The data set folder (the CSV for ``manifest``).
    **loader_kwargs
        Passed to the loader (``threshold=`` for DISFA, ``label_frames=`` for CK+...).

    Returns
    -------
    AUDataset
        What the loader returns.

    Raises
    ------
    ValueError
        If ``dataset_name`` is unknown; the message lists the names.

    Examples
    --------
    >>> sorted(LOADERS)
    ['affwild2', 'bp4d', 'ckplus', 'disfa', 'manifest']
    """
    key = str(dataset_name).strip().lower()
    key = _ALIASES.get(key, key)
    if key not in LOADERS:
        raise ValueError(
            f"Unknown data set {dataset_name!r}; choose one of {sorted(LOADERS)} "
            f"(aliases: {sorted(_ALIASES)})."
        )
    return LOADERS[key](root, **loader_kwargs)


def write_manifest(
    dataset_name: str, root, output_csv, *, relative_to=None, **loader_kwargs
) -> AUDataset:
    """Load a data set with its loader and write it as a manifest CSV.

    Parameters
    ----------
    dataset_name : str
        ``bp4d``, ``disfa``, ``ckplus``, ``affwild2`` or ``manifest``.
    root : str or Path
        The data set folder (the CSV for ``manifest``).
    output_csv : str or Path
        Manifest to write.
    relative_to : str or Path, optional
        Write image paths relative to this folder; default absolute paths.
    **loader_kwargs
        Passed to the loader (``threshold=`` for DISFA, ``label_frames=`` for CK+...).

    Returns
    -------
    AUDataset
        The loaded data set (e.g. to print ``len`` and ``aus``).

    Examples
    --------
    Normalise a hand-written manifest (any loader works the same way):

    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "mine.csv").write_text("path,subject,au1,AU12\\n"
    ...                                      "a.png,p1,1,0\\nb.png,p2,0,1\\n")
    >>> dataset = write_manifest("manifest", folder / "mine.csv", folder / "clean.csv")
    >>> len(dataset), dataset.aus
    (2, ['AU01', 'AU12'])
    >>> (folder / "clean.csv").read_text().splitlines()[0]
    'path,subject,AU01,AU12'
    >>> import shutil; shutil.rmtree(folder)
    """
    dataset = load_dataset(dataset_name, root, **loader_kwargs)
    dataset.to_manifest(output_csv, relative_to=relative_to)
    return dataset
