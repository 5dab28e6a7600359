"""BP4D-Spontaneous: frame-wise AU occurrence CSVs and the 2D frame images.

Layout (the BP4D distribution; folder names differ between copies, see ``labels_dir`` and
``images_dir``)::

    ROOT/AUCoding/AU_OCC/F001_T1.csv     one CSV per subject and task
    ROOT/Sequences(2D+3D)/F001/T1/0001.jpg  frame images (zero padding varies: 001, 0001, 2440)

Each occurrence CSV has a header row whose first cell names the frame column and whose
other cells are AU numbers (``0,1,2,3,...``); then one row per frame: the frame number,
then one code per AU: 1 present, 0 absent, 9 unknown / not coded. AUs that were not part
of the coding (most columns above 24) are 9 throughout and are left out by default.

Sources (checked, not copied):

- ME-GraphAU, ``tool/BP4D_image_label_process.py`` (CVI-SZU/ME-GraphAU): reads
  ``AUCoding/AU_OCC/{subject}_{task}.csv`` with ``header=0, index_col=0`` and AU numbers
  as column names; frames ``{subject}/{task}/{frame}.jpg``; tasks ``T1``...``T8``.
- FERA 2015 baseline, ``BP4D_baseline/shared_defs.m`` (TadasBaltrusaitis/FERA-2015) and
  OpenFace's ``extract_BP4D_labels``: frame number in column 1, code 9 = not coded.
- Public BP4D preprocessing scripts that look frames up in ``Sequences(2D+3D)`` trying
  both ``zfill(3)`` and ``zfill(4)`` frame names: hence frames are matched by number.
- Task names: Zhang et al., "BP4D-Spontaneous", Image and Vision Computing 32 (2014),
  as summarised in the CorrLoss paper (Rieger et al., ICPR 2022).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from ._base import (
    FRAME,
    PATH,
    SUBJECT,
    TASK,
    AUDataset,
    DatasetLayoutError,
    assemble,
    table_to_labels,
)
from ._files import (
    IMAGE_EXTENSIONS,
    describe,
    find_dir,
    index_images,
    read_label_csv,
    resolve_root,
    select_ids,
)
from .au_names import au_number, is_au_name, normalize_au_name

__all__ = ["BP4D_TASKS", "load_bp4d", "read_bp4d_occurrence"]

#: The eight BP4D elicitation tasks (Zhang et al. 2014).
BP4D_TASKS = {
    "T1": "happiness/amusement",
    "T2": "sadness",
    "T3": "surprise/startle",
    "T4": "embarrassment",
    "T5": "fear/nervous",
    "T6": "physical pain",
    "T7": "anger/upset",
    "T8": "disgust",
}

_LABEL_FILE = re.compile(r"^([FM]\d{3})_(T\d+)\.csv$", re.IGNORECASE)
_SUBJECT_DIR = re.compile(r"^[FM]\d{3}$", re.IGNORECASE)
_LABEL_DIRS = ("AUCoding/AU_OCC", "AU_OCC", "AUCoding")
_IMAGE_DIRS = ("Sequences(2D+3D)", "Sequences", "2D+3D", "img", "images", ".")


def read_bp4d_occurrence(path, *, unknown_values=(9,)) -> pd.DataFrame:
    """Read one BP4D AU occurrence CSV (``F001_T1.csv``).

    Parameters
    ----------
    path : str or Path
        The CSV file.
    unknown_values : sequence of int, default=(9,)
        Codes meaning "not coded"; they become NaN.

    Returns
    -------
    DataFrame
        Index: frame numbers (int); columns: AU names (``AU01``...) for every header cell
        that is an AU number (other header cells are ignored); values 1.0, 0.0 or NaN.
        Short rows leave their last AUs NaN.

    Raises
    ------
    ValueError
        On a row with more cells than the header, a non-integer or repeated frame number,
        or a code other than 0, 1 and ``unknown_values``; the message names the file.

    Examples
    --------
    >>> import io
    >>> csv = io.StringIO("0,1,2,4\\n2440,1,0,9\\n2441,0,0,9\\n")
    >>> read_bp4d_occurrence(csv)
          AU01  AU02  AU04
    2440   1.0   0.0   NaN
    2441   0.0   0.0   NaN
    """
    name, header, raw = read_label_csv(path, dataset="BP4D")
    if len(header) < 2:
        raise ValueError(
            f"BP4D label file {name}: expected a header 'frame,1,2,4,...' with AU numbers, "
            f"found {header}."
        )
    frames = pd.to_numeric(raw[0], errors="coerce")
    if frames.isna().any() or not np.all(frames == np.round(frames)):
        bad = raw.loc[frames.isna() | (frames != np.round(frames)), 0].head(3)
        raise ValueError(
            f"BP4D label file {name}: frame numbers must be integers, found {list(bad)}."
        )
    frames = frames.astype(np.int64)
    if frames.duplicated().any():
        raise ValueError(
            f"BP4D label file {name}: frame {int(frames[frames.duplicated()].iloc[0])} "
            "appears twice."
        )
    keep, names = [], []
    for j, cell in enumerate(header[1:], start=1):
        if not is_au_name(cell):
            continue
        au = normalize_au_name(cell)
        if au in names:
            raise ValueError(f"BP4D label file {name}: two columns for {au}.")
        keep.append(j)
        names.append(au)
    if not names:
        raise ValueError(
            f"BP4D label file {name}: no AU columns in header {header[:8]}; "
            "expected AU numbers such as 1,2,4,6."
        )
    codes = raw[keep].set_axis([header[j] for j in keep], axis=1)
    values = table_to_labels(codes, unknown_values=unknown_values, where=name)
    columns = dict(zip(names, values.T))
    table = pd.DataFrame(columns, index=pd.Index(frames.to_numpy(), name=None))
    return table[sorted(table.columns, key=au_number)]


def _find_images_dir(root: Path) -> Path:
    for candidate in _IMAGE_DIRS:
        folder = (root / candidate).resolve()
        if folder.is_dir() and any(
            p.is_dir() and _SUBJECT_DIR.match(p.name) for p in folder.iterdir()
        ):
            return folder
    raise DatasetLayoutError(
        f"BP4D: no image folder with subject folders (F001/T1/0001.jpg) under {root}; "
        f"looked in {list(_IMAGE_DIRS)}. Found: {describe(root)}. "
        "Pass images_dir=... to name it."
    )


def load_bp4d(
    root,
    *,
    labels_dir=None,
    images_dir=None,
    aus=None,
    subjects=None,
    tasks=None,
    unknown_values=(9,),
    drop_unlabeled: bool = True,
    on_missing: str = "drop",
    image_extensions=IMAGE_EXTENSIONS,
) -> AUDataset:
    """Load BP4D-Spontaneous frames with their AU occurrence labels.

    Parameters
    ----------
    root : str or Path
        The BP4D folder.
    labels_dir : str or Path, optional
        Folder of the ``F001_T1.csv`` files. Default: the first of ``AUCoding/AU_OCC``,
        ``AU_OCC``, ``AUCoding`` under ``root``.
    images_dir : str or Path, optional
        Folder holding ``F001/T1/<frame>.jpg``. Default: the first of
        ``Sequences(2D+3D)``, ``Sequences``, ``2D+3D``, ``img``, ``images`` or ``root``
        itself that has subject folders.
    aus : list of AU names, optional
        Label columns to keep (any spelling). Default: every AU with at least one coded
        frame (the 12 usual BP4D AUs 1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24 on the
        full data set).
    subjects, tasks : list of str, optional
        Load only these subjects (``F001``...) / tasks (``T1``...).
    unknown_values : sequence of int, default=(9,)
        Codes meaning "not coded": become NaN, never 0.
    drop_unlabeled : bool, default=True
        Drop frames whose kept AUs are all unknown.
    on_missing : {"drop", "raise"}, default="drop"
        A labelled frame without an image file is dropped with a warning, or raises.
    image_extensions : tuple of str
        Image file suffixes to consider.

    Returns
    -------
    AUDataset
        ``subjects`` ``F001``..., ``tasks`` ``T1``..., ``frames`` the CSV frame numbers,
        ``metadata['task_name']`` from :data:`BP4D_TASKS`.

    Raises
    ------
    DatasetLayoutError
        If the label or image folder is missing or holds no ``F001_T1.csv``-style files;
        the message lists what the folder holds.

    Notes
    -----
    Frames are matched to images by number, whatever the zero padding (``2440.jpg``,
    ``0012.jpg``, ``012.jpg``).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> occ = root / "AUCoding" / "AU_OCC"
    >>> occ.mkdir(parents=True)
    >>> _ = (occ / "F001_T1.csv").write_text("0,1,2,45\\n1,1,0,9\\n2,0,9,9\\n")
    >>> frames = root / "Sequences(2D+3D)" / "F001" / "T1"
    >>> frames.mkdir(parents=True)
    >>> for name in ("001.jpg", "002.jpg"):
    ...     (frames / name).touch()
    >>> ds = load_bp4d(root)
    >>> ds.labels
       AU01  AU02
    0   1.0   0.0
    1   0.0   NaN
    >>> ds.subjects.tolist(), ds.tasks.tolist(), ds.frames.tolist()
    (['F001', 'F001'], ['T1', 'T1'], [1, 2])
    """
    root = resolve_root(root, "BP4D")
    if labels_dir is None:
        labels_dir = find_dir(
            root,
            _LABEL_DIRS,
            dataset="BP4D",
            what="AU occurrence",
            example="AUCoding/AU_OCC/F001_T1.csv",
        )
    labels_dir = Path(labels_dir)
    images_dir = _find_images_dir(root) if images_dir is None else Path(images_dir)
    if not images_dir.is_dir():
        raise DatasetLayoutError(f"BP4D: images_dir {images_dir} is not a folder.")

    label_files = {}
    if labels_dir.is_dir():
        for path in labels_dir.iterdir():
            match = _LABEL_FILE.match(path.name)
            if match:
                key = (match.group(1).upper(), match.group(2).upper())
                label_files[key] = path
    if not label_files:
        raise DatasetLayoutError(
            f"BP4D: no occurrence CSVs named like F001_T1.csv in {labels_dir}. "
            f"Found: {describe(labels_dir)}."
        )
    keep_subjects = select_ids(
        {s for s, _ in label_files}, subjects, dataset="BP4D", what="subjects"
    )
    keep_tasks = select_ids({t for _, t in label_files}, tasks, dataset="BP4D", what="tasks")

    parts = []
    for subject, task in sorted(label_files):
        if subject not in keep_subjects or task not in keep_tasks:
            continue
        labels = read_bp4d_occurrence(label_files[subject, task], unknown_values=unknown_values)
        images = index_images(images_dir / subject / task, image_extensions)
        part = labels.reset_index(drop=True)
        part.insert(0, PATH, [_path_or_none(images.get(int(f))) for f in labels.index])
        part.insert(1, SUBJECT, subject)
        part.insert(2, TASK, task)
        part.insert(3, FRAME, labels.index.to_numpy())
        part.insert(4, "task_name", BP4D_TASKS.get(task))
        parts.append(part)
    if not parts:
        raise ValueError(
            f"BP4D: no label file for subjects {keep_subjects} and tasks {keep_tasks} "
            f"in {labels_dir}."
        )
    table = pd.concat(parts, ignore_index=True, sort=False)
    return assemble(
        table,
        name="bp4d",
        aus=aus,
        drop_unlabeled=drop_unlabeled,
        on_missing=on_missing,
        metadata_columns=["task_name"],
    )


def _path_or_none(path):
    return None if path is None else str(path)
