"""CK+ (Extended Cohn-Kanade): sequences from neutral to peak, FACS-coded at the peak frame.

Layout (the four zip files of the distribution, unpacked side by side)::

    ROOT/cohn-kanade-images/S005/001/S005_001_00000001.png ... S005_001_00000011.png
    ROOT/FACS/S005/001/S005_001_00000011_facs.txt       one per sequence: the peak frame
    ROOT/Emotion/S005/001/S005_001_00000011_emotion.txt  327 of the 593 sequences only

A FACS file has one line per AU present at the peak: the AU number and its intensity as
floats (``9.0000000e+00   4.0000000e+00`` is AU9 at intensity D); intensity 0 means
"present, intensity not given". Every AU not listed is absent (the peak frame is fully
coded). An emotion file holds one code: 0 neutral, 1 anger, 2 contempt, 3 disgust,
4 fear, 5 happy, 6 sadness, 7 surprise; no file means no emotion label.

Only the peak frame is coded. ``label_frames`` says which frames get the peak labels:
``"all"`` (the CorrLoss paper: every frame of the sequence), ``"last"`` (only the coded
frame) or ``"last_k"`` (the ``k`` frames up to the peak). ``n_neutral`` optionally labels the
first frames of each sequence as neutral (all AUs absent), a common CK+ protocol.

Sources (checked, not copied):

- ``ReadMeAboutCKPlus.txt`` of the CK+ distribution (Lucey et al. 2010), reproduced in
  public repositories: file layout, FACS line format, intensity 0 meaning, emotion codes,
  327 emotion files.
- Public CK+ loaders that map ``FACS/.../X_facs.txt`` to ``cohn-kanade-images/.../X.png``
  and ``Emotion/.../X_emotion.txt`` and parse each FACS line as ``int(float(value))``.
- Lucey et al., "The Extended Cohn-Kanade Dataset (CK+)", CVPR Workshops 2010.
- Rieger et al., "CorrLoss", ICPR 2022: the whole sequence carries the peak AUs.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ._base import FRAME, PATH, SUBJECT, TASK, AUDataset, DatasetLayoutError, assemble
from ._files import (
    describe,
    find_dir,
    index_images,
    resolve_root,
    select_ids,
    source_name,
)
from .au_names import au_number, normalize_au_name

__all__ = ["CKPLUS_EMOTIONS", "load_ckplus", "read_ckplus_emotion", "read_ckplus_facs"]

#: Emotion codes of the CK+ ``_emotion.txt`` files.
CKPLUS_EMOTIONS = {
    0: "neutral",
    1: "anger",
    2: "contempt",
    3: "disgust",
    4: "fear",
    5: "happy",
    6: "sadness",
    7: "surprise",
}

_SUBJECT_DIR = re.compile(r"^S\d{3}$", re.IGNORECASE)
_SEQUENCE_DIR = re.compile(r"^\d{3}$")
_FACS_FILE = re.compile(r"_(\d+)_facs\.txt$", re.IGNORECASE)
_IMAGE_DIRS = (
    "cohn-kanade-images",
    "extended-cohn-kanade-images/cohn-kanade-images",
    "CK+/cohn-kanade-images",
)
_FACS_DIRS = ("FACS", "FACS_labels/FACS", "CK+/FACS")
_EMOTION_DIRS = ("Emotion", "Emotion_labels/Emotion", "CK+/Emotion")
_LABEL_FRAMES = ("all", "last", "last_k")


def _read_numbers(path) -> tuple[str, list[list[float]]]:
    name = source_name(path)
    if isinstance(path, (str, Path)):
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    else:
        text = path.read()
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append([float(v) for v in line.split()])
        except ValueError:
            raise ValueError(
                f"{name}, line {number}: expected numbers, found {line.strip()!r}."
            ) from None
    return name, rows


def _whole(value: float, name: str, what: str) -> int:
    if not float(value).is_integer():
        raise ValueError(f"{name}: {what} {value!r} is not a whole number.")
    return int(value)


def read_ckplus_facs(path) -> pd.Series:
    """Read one CK+ FACS file: AU name -> intensity (0 = present, intensity not given).

    Parameters
    ----------
    path : str, Path or file object
        Lines ``<AU> <intensity>`` as floats; a line with only the AU number has
        intensity 0.

    Returns
    -------
    Series of int
        Indexed by AU name (``AU01``...) in AU order; an AU listed twice keeps its
        larger intensity.

    Raises
    ------
    ValueError
        On a line that is not one or two whole numbers, or an intensity outside 0..5;
        the message names the file.

    Examples
    --------
    >>> import io
    >>> read_ckplus_facs(io.StringIO("   9.0000000e+00   4.0000000e+00\\n"
    ...                              "   1.7000000e+01   0.0000000e+00\\n"))
    AU09    4
    AU17    0
    dtype: int64
    """
    name, rows = _read_numbers(path)
    intensities: dict[str, int] = {}
    for row in rows:
        if len(row) not in (1, 2):
            raise ValueError(f"CK+ FACS file {name}: expected 'AU intensity' lines, got {row}.")
        au = normalize_au_name(_whole(row[0], name, "AU number"))
        intensity = _whole(row[1], name, "intensity") if len(row) == 2 else 0
        if not 0 <= intensity <= 5:
            raise ValueError(f"CK+ FACS file {name}: intensity {intensity} of {au} is not 0..5.")
        intensities[au] = max(intensity, intensities.get(au, 0))
    order = sorted(intensities, key=au_number)
    return pd.Series([intensities[a] for a in order], index=order, dtype=np.int64)


def read_ckplus_emotion(path) -> str:
    """Read one CK+ emotion file and return the emotion name.

    Examples
    --------
    >>> import io
    >>> read_ckplus_emotion(io.StringIO("   3.0000000e+00\\n"))
    'disgust'
    """
    name, rows = _read_numbers(path)
    values = [v for row in rows for v in row]
    if len(values) != 1:
        raise ValueError(f"CK+ emotion file {name}: expected one code, found {values}.")
    code = _whole(values[0], name, "emotion code")
    if code not in CKPLUS_EMOTIONS:
        raise ValueError(f"CK+ emotion file {name}: code {code} is not in 0..7.")
    return CKPLUS_EMOTIONS[code]


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _single(folder: Path, pattern: str, name: str) -> Path | None:
    found = sorted(folder.glob(pattern)) if folder.is_dir() else []
    if len(found) > 1:
        raise ValueError(f"CK+: several {name} files in {folder}: {[p.name for p in found]}.")
    return found[0] if found else None


def load_ckplus(
    root,
    *,
    label_frames: str = "all",
    k: int = 3,
    n_neutral: int = 0,
    aus=None,
    subjects=None,
    images_dir=None,
    facs_dir=None,
    emotion_dir=None,
    drop_unlabeled: bool = True,
    on_missing: str = "drop",
) -> AUDataset:
    """Load CK+ sequences with the peak frame's AUs and, where present, the emotion.

    Parameters
    ----------
    root : str or Path
        The CK+ folder holding ``cohn-kanade-images``, ``FACS`` and ``Emotion``.
    label_frames : {"all", "last", "last_k"}, default="all"
        Frames that carry the peak labels: every frame of the sequence (the paper), only
        the coded peak frame, or the ``k`` frames ending at the peak.
    k : int, default=3
        Number of frames for ``label_frames="last_k"``.
    n_neutral : int, default=0
        Also keep the first ``n_neutral`` frames of each sequence with every AU absent
        and emotion ``"neutral"``. A frame is never both: peak frames win.
    aus : list of AU names, optional
        Label columns. Default: every AU coded in at least one loaded sequence. Any AU may
        be requested: CK+ peaks are fully coded, so an AU never listed is absent (0).
    subjects : list of str, optional
        Only these subjects (``S005``...).
    images_dir, facs_dir, emotion_dir : str or Path, optional
        Override the folder names (default ``cohn-kanade-images``, ``FACS``, ``Emotion``
        under ``root``; the emotion folder is optional).
    drop_unlabeled : bool, default=True
        Drop frames whose kept AUs are all unknown (does not happen in CK+; kept for a
        uniform interface).
    on_missing : {"drop", "raise"}, default="drop"
        What to do when the peak frame named by a FACS file has no image.

    Returns
    -------
    AUDataset
        ``subjects`` ``S005``..., ``tasks`` the sequence (``001``...), ``frames`` the image
        numbers, ``metadata['emotion']`` the emotion name or missing.

    Raises
    ------
    DatasetLayoutError
        If ``cohn-kanade-images`` or ``FACS`` is missing, or no sequence has a FACS file;
        the message lists what was found. Sequences without a FACS file are skipped with
        a warning.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> seq = root / "cohn-kanade-images" / "S005" / "001"
    >>> seq.mkdir(parents=True)
    >>> for i in (1, 2, 3):
    ...     (seq / f"S005_001_{i:08d}.png").touch()
    >>> facs = root / "FACS" / "S005" / "001"
    >>> facs.mkdir(parents=True)
    >>> _ = (facs / "S005_001_00000003_facs.txt").write_text(
    ...     "   9.0000000e+00   4.0000000e+00\\n   1.7000000e+01   2.0000000e+00\\n")
    >>> ds = load_ckplus(root, label_frames="last", n_neutral=1, aus=[1, 9, 17])
    >>> ds.frames.tolist(), ds.labels.values.tolist()
    ([1, 3], [[0.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    """
    if label_frames not in _LABEL_FRAMES:
        raise ValueError(f"label_frames must be one of {_LABEL_FRAMES}, got {label_frames!r}.")
    if not _is_int(k) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}.")
    if not _is_int(n_neutral) or n_neutral < 0:
        raise ValueError(f"n_neutral must be a non-negative integer, got {n_neutral!r}.")
    root = resolve_root(root, "CK+")
    if images_dir is None:
        images_dir = find_dir(
            root,
            _IMAGE_DIRS,
            dataset="CK+",
            what="image",
            example="cohn-kanade-images/S005/001/S005_001_00000001.png",
        )
    if facs_dir is None:
        facs_dir = find_dir(
            root,
            _FACS_DIRS,
            dataset="CK+",
            what="FACS label",
            example="FACS/S005/001/S005_001_00000011_facs.txt",
        )
    if emotion_dir is None:
        try:
            emotion_dir = find_dir(
                root,
                _EMOTION_DIRS,
                dataset="CK+",
                what="emotion",
                example="Emotion/S005/001/S005_001_00000011_emotion.txt",
            )
        except DatasetLayoutError:
            emotion_dir = None
    images_dir, facs_dir = Path(images_dir), Path(facs_dir)

    available = [p.name for p in images_dir.iterdir() if p.is_dir() and _SUBJECT_DIR.match(p.name)]
    if not available:
        raise DatasetLayoutError(
            f"CK+: no subject folders (S005/001/S005_001_00000001.png) in {images_dir}. "
            f"Found: {describe(images_dir)}."
        )
    rows, skipped = [], []
    for subject in select_ids(available, subjects, dataset="CK+", what="subjects"):
        for sequence_dir in sorted((images_dir / subject).iterdir()):
            if not (sequence_dir.is_dir() and _SEQUENCE_DIR.match(sequence_dir.name)):
                continue
            sequence = sequence_dir.name
            facs_file = _single(facs_dir / subject / sequence, "*_facs.txt", "FACS")
            if facs_file is None:
                skipped.append(f"{subject}/{sequence}")
                continue
            rows.extend(
                _sequence_rows(
                    subject,
                    sequence,
                    sequence_dir,
                    facs_file,
                    emotion_dir,
                    label_frames,
                    k,
                    n_neutral,
                )
            )
    if skipped:
        warnings.warn(
            f"CK+: {len(skipped)} sequence(s) have no FACS file and were skipped "
            f"(first: {skipped[:3]}).",
            UserWarning,
            stacklevel=2,
        )
    if not rows:
        raise DatasetLayoutError(
            "CK+: no sequence has a FACS file "
            f"(expected FACS/S005/001/S005_001_00000011_facs.txt). Found: {describe(facs_dir)}."
        )
    table = pd.DataFrame(rows)
    au_columns = [c for c in table.columns if c.startswith("AU")]
    requested = [] if aus is None else [normalize_au_name(a) for a in aus]
    for au in au_columns + requested:
        table[au] = table[au].fillna(0.0) if au in table else 0.0
    return assemble(
        table,
        name="ckplus",
        aus=aus,
        drop_unlabeled=drop_unlabeled,
        on_missing=on_missing,
        metadata_columns=["emotion"],
    )


def _sequence_rows(
    subject, sequence, sequence_dir, facs_file, emotion_dir, label_frames, k, n_neutral
):
    peak = int(_FACS_FILE.search(facs_file.name).group(1))
    images = index_images(sequence_dir, (".png", ".jpg", ".jpeg"))
    numbers = sorted(n for n in images if n <= peak) or [peak]
    if label_frames == "all":
        peak_frames = sorted(images) or [peak]
    elif label_frames == "last":
        peak_frames = [peak]
    else:
        peak_frames = numbers[-k:]
    peak_set = set(peak_frames)
    neutral_frames = [n for n in sorted(images)[:n_neutral] if n not in peak_set]

    present = {au: 1.0 for au in read_ckplus_facs(facs_file).index}
    emotion = None
    if emotion_dir is not None:
        emotion_file = _single(Path(emotion_dir) / subject / sequence, "*_emotion.txt", "emotion")
        if emotion_file is not None:
            emotion = read_ckplus_emotion(emotion_file)
    base = {SUBJECT: subject, TASK: sequence}
    rows = []
    for frame in neutral_frames:
        rows.append({**base, PATH: _str(images.get(frame)), FRAME: frame, "emotion": "neutral"})
    for frame in peak_frames:
        rows.append(
            {**base, PATH: _str(images.get(frame)), FRAME: frame, "emotion": emotion, **present}
        )
    return sorted(rows, key=lambda row: row[FRAME])


def _str(path):
    return None if path is None else str(path)
