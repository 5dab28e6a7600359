"""Aff-Wild2 (ABAW challenges): per-video AU annotation files and cropped-aligned frames.

Layout (ABAW3 onwards; ABAW2 named the annotation folder ``AU_Set``)::

    ROOT/Annotations/AU_Detection_Challenge/Train_Set/<video>.txt
    ROOT/Annotations/AU_Detection_Challenge/Validation_Set/<video>.txt
    ROOT/cropped_aligned/<video>/00001.jpg

An annotation file starts with the header ``AU1,AU2,AU4,AU6,AU7,AU10,AU12,AU15,AU23,
AU24,AU25,AU26``; then line i (i = 1, 2, ...) holds frame i's labels, 1 present, 0 absent,
-1 not annotated (e.g. no face). Frame i's image is ``cropped_aligned/<video>/{i:05d}.jpg``;
frames without a detected face have no image. Videos with two annotated people have
``<video>_left`` / ``<video>_right`` files, each with its own frame folder.

Subjects: the data set gives no person IDs, so the video name (with ``_left`` /
``_right``) is the subject by default; a person filmed in several videos counts several
times (pass ``subject_func`` to map names to your own IDs).

Sources (checked, not copied):

- Public ABAW AU loaders that skip the header line, map line i to ``{i:05d}.jpg`` in
  ``cropped_aligned/<video>/`` and drop frames labelled -1 or without an image
  (``Annotations/AU_Set/Train_Set`` in ABAW2; ``annotations/AU_Detection_Challenge/
  Train_Set`` and ``Validation_Set`` in ABAW3-5).
- ABAW prediction writers that emit the same header and ``-1`` for frames without a face.
- Kollias & Zafeiriou, "Aff-Wild2: Extending the Aff-Wild database for affect
  recognition", arXiv:1811.07770, and the ABAW challenge papers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ._base import (
    FRAME,
    PATH,
    SUBJECT,
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
)
from .au_names import au_number, normalize_au_name

__all__ = ["AFFWILD2_AUS", "load_affwild2", "read_affwild2_au"]

#: The 12 AUs of the ABAW AU-detection challenge, in file order.
AFFWILD2_AUS = [
    "AU01",
    "AU02",
    "AU04",
    "AU06",
    "AU07",
    "AU10",
    "AU12",
    "AU15",
    "AU23",
    "AU24",
    "AU25",
    "AU26",
]

_ANNOTATION_DIRS = (
    "Annotations/AU_Detection_Challenge",
    "annotations/AU_Detection_Challenge",
    "ABAW Annotations/AU_Detection_Challenge",
    "Annotation/annotations/AU_Set",
    "annotations/AU_Set",
    "AU_Detection_Challenge",
    "AU_Set",
)
_IMAGE_DIRS = (
    "cropped_aligned",
    "cropped_aligned/cropped_aligned",
    "Cropped_aligned_image/cropped_aligned",
)
_SPLITS = {"train": "Train_Set", "validation": "Validation_Set"}


def read_affwild2_au(path, *, unknown_values=(-1,)) -> pd.DataFrame:
    """Read one Aff-Wild2 AU annotation file.

    Parameters
    ----------
    path : str, Path or file object
        Header ``AU1,AU2,...`` then one comma-separated line per frame.
    unknown_values : sequence of int, default=(-1,)
        Codes meaning "not annotated"; they become NaN.

    Returns
    -------
    DataFrame
        Index: frame numbers from 1 (line order); columns: AU names (``AU01``...) in AU
        order; values 1.0, 0.0 or NaN. Blank lines at the end are ignored.

    Raises
    ------
    ValueError
        On a header cell that is not an AU name, a line with a different number of cells
        than the header, or a code other than 0, 1 and ``unknown_values``; the message
        names the file and line.

    Examples
    --------
    >>> import io
    >>> text = "AU1,AU2,AU12\\n1,0,1\\n-1,-1,-1\\n0,0,1\\n"
    >>> read_affwild2_au(io.StringIO(text))
       AU01  AU02  AU12
    1   1.0   0.0   1.0
    2   NaN   NaN   NaN
    3   0.0   0.0   1.0
    """
    name, header, raw = read_label_csv(path, dataset="Aff-Wild2")
    try:
        aus = [normalize_au_name(cell) for cell in header]
    except ValueError as error:
        raise ValueError(
            f"Aff-Wild2 label file {name}: the first line must be the AU header "
            f"'AU1,AU2,AU4,...', found {','.join(header)!r} ({error})."
        ) from None
    short = raw.isna().any(axis=1).to_numpy()
    if short.any():
        row = int(np.flatnonzero(short)[0])
        raise ValueError(
            f"Aff-Wild2 label file {name}, data row {row + 1}: missing values for "
            f"{[header[j] for j in np.flatnonzero(raw.iloc[row].isna().to_numpy())]} "
            "(every frame has a value for every AU; -1 means not annotated)."
        )
    values = table_to_labels(
        raw.set_axis(header, axis=1), unknown_values=unknown_values, where=name
    )
    columns = dict(zip(aus, values.T))
    table = pd.DataFrame(columns, index=pd.RangeIndex(1, len(raw) + 1))
    return table[sorted(table.columns, key=au_number)]


def _splits(split, annotations_dir: Path) -> list[str]:
    if split == "all":
        found = sorted(
            p.name
            for p in annotations_dir.iterdir()
            if p.is_dir() and any(f.suffix.lower() == ".txt" for f in p.iterdir())
        )
        if not found:
            raise DatasetLayoutError(
                f"Aff-Wild2: no split folder with <video>.txt files (Train_Set, "
                f"Validation_Set) in {annotations_dir}. Found: {describe(annotations_dir)}."
            )
        return found
    names = [split] if isinstance(split, str) else list(split)
    folders = []
    for item in names:
        folder = _SPLITS.get(str(item).lower(), str(item))
        folders.append(folder)
    return folders


def load_affwild2(
    root,
    *,
    split="all",
    annotations_dir=None,
    images_dir=None,
    aus=None,
    videos=None,
    subject_func=None,
    unknown_values=(-1,),
    drop_unlabeled: bool = True,
    on_missing: str = "drop",
    image_extensions=IMAGE_EXTENSIONS,
) -> AUDataset:
    """Load Aff-Wild2 cropped-aligned frames with their AU annotations.

    Parameters
    ----------
    root : str or Path
        The Aff-Wild2 folder.
    split : {"all", "train", "validation"} or list of folder names, default="all"
        Annotation subfolders to read: ``"all"`` every subfolder holding ``.txt`` files
        (``Train_Set``, ``Validation_Set``), ``"train"`` ``Train_Set``, ``"validation"``
        ``Validation_Set``, or folder names.
    annotations_dir : str or Path, optional
        The folder holding ``Train_Set``/``Validation_Set``. Default: the first of
        ``Annotations/AU_Detection_Challenge``, ``annotations/AU_Detection_Challenge``,
        ``annotations/AU_Set``, ``AU_Detection_Challenge``, ``AU_Set`` (any case).
    images_dir : str or Path, optional
        The ``cropped_aligned`` folder (default: found under ``root``).
    aus : list of AU names, optional
        Default: the AUs in the file headers (the 12 of :data:`AFFWILD2_AUS`).
    videos : list of str, optional
        Only these videos (annotation file names without ``.txt``).
    subject_func : callable, optional
        Maps a video name to a subject ID; default the video name itself.
    unknown_values : sequence of int, default=(-1,)
        Codes meaning "not annotated": become NaN, never 0.
    drop_unlabeled : bool, default=True
        Drop frames whose kept AUs are all unknown (the -1 rows).
    on_missing : {"drop", "raise"}, default="drop"
        A labelled frame without a cropped image (no face found) is dropped with a
        warning, or raises.
    image_extensions : tuple of str, default=(".jpg", ".jpeg", ".png", ".bmp")
        Image file suffixes to consider (any case).

    Returns
    -------
    AUDataset
        ``subjects`` from the video names, no tasks, ``frames`` the 1-based frame numbers,
        ``metadata['video']`` and ``metadata['split']``.

    Raises
    ------
    DatasetLayoutError
        If the annotation or image folder is missing or holds no ``<video>.txt``; the
        message lists what was found.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> ann = root / "Annotations" / "AU_Detection_Challenge" / "Train_Set"
    >>> ann.mkdir(parents=True)
    >>> _ = (ann / "video1.txt").write_text("AU1,AU12\\n1,1\\n-1,-1\\n0,1\\n")
    >>> frames = root / "cropped_aligned" / "video1"
    >>> frames.mkdir(parents=True)
    >>> for i in (1, 2, 3):
    ...     (frames / f"{i:05d}.jpg").touch()
    >>> ds = load_affwild2(root)
    >>> ds.frames.tolist(), ds.labels.values.tolist()
    ([1, 3], [[1.0, 1.0], [0.0, 1.0]])
    """
    root = resolve_root(root, "Aff-Wild2")
    if annotations_dir is None:
        annotations_dir = find_dir(
            root,
            _ANNOTATION_DIRS,
            dataset="Aff-Wild2",
            what="AU annotation",
            example="Annotations/AU_Detection_Challenge/Train_Set/<video>.txt",
        )
    if images_dir is None:
        images_dir = find_dir(
            root,
            _IMAGE_DIRS,
            dataset="Aff-Wild2",
            what="cropped_aligned",
            example="cropped_aligned/<video>/00001.jpg",
        )
    annotations_dir, images_dir = Path(annotations_dir), Path(images_dir)

    files = []
    for folder_name in _splits(split, annotations_dir):
        folder = annotations_dir / folder_name
        if not folder.is_dir():
            raise DatasetLayoutError(
                f"Aff-Wild2: no {folder_name} folder in {annotations_dir} "
                f"(split={split!r}). Found: {describe(annotations_dir)}."
            )
        found = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".txt")
        if not found:
            raise DatasetLayoutError(
                f"Aff-Wild2: no <video>.txt annotation files in {folder}. "
                f"Found: {describe(folder)}."
            )
        files.extend((folder_name, p) for p in found)
    if videos is not None:
        wanted = {videos} if isinstance(videos, str) else {str(v) for v in videos}
        known = {p.stem for _, p in files}
        unknown = sorted(wanted - known)
        if unknown:
            raise ValueError(f"Aff-Wild2: unknown videos {unknown} (split={split!r}).")
        files = [(s, p) for s, p in files if p.stem in wanted]

    parts, header_aus = [], set()
    for split_name, path in files:
        video = path.stem
        labels = read_affwild2_au(path, unknown_values=unknown_values)
        header_aus.update(labels.columns)
        images = index_images(images_dir / video, image_extensions)
        part = labels.reset_index(drop=True)
        part.insert(0, PATH, [_str(images.get(int(f))) for f in labels.index])
        part.insert(1, SUBJECT, video if subject_func is None else str(subject_func(video)))
        part.insert(2, FRAME, labels.index.to_numpy())
        part.insert(3, "video", video)
        part.insert(4, "split", split_name)
        parts.append(part)
    table = pd.concat(parts, ignore_index=True, sort=False)
    return assemble(
        table,
        name="affwild2",
        aus=aus,
        drop_unlabeled=drop_unlabeled,
        on_missing=on_missing,
        metadata_columns=["video", "split"],
        default_aus=sorted(header_aus, key=au_number),
    )


def _str(path):
    return None if path is None else str(path)
