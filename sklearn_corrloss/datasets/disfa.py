"""DISFA: per-AU intensity files (0-5) and the left / right camera videos.

Layout::

    ROOT/ActionUnit_Labels/SN001/SN001_au1.txt      lines "frame,intensity", frame from 1
    ROOT/Videos_LeftCamera/LeftVideoSN001_comp.avi   the video the labels describe
    ROOT/Frames_LeftCamera/SN001/00000.png           frames extracted by extract_disfa_frames

DISFA ships videos, not images: run :func:`extract_disfa_frames` once (resumable), or point
``frames_dir`` at frames you extracted before (``SN001/0.png`` as ME-GraphAU does, or
``SN001/00001.png`` with ``first_image_index=1`` as ffmpeg numbers them).

Intensity is turned into occurrence with ``intensity >= threshold``; the default 2 is the
convention of the AU-detection literature on DISFA (EAC-Net, JAA-Net, ME-GraphAU), which
treats A-level (1) activations as absent.

Sources (checked, not copied):

- ME-GraphAU, ``tool/DISFA_image_label_process.py`` (CVI-SZU/ME-GraphAU): reads
  ``ActionUnit_Labels/SN001/SN001_au1.txt`` lines ``frameIdx,AUIntensity``, occurrence
  ``intensity >= 2``; image of line t (0-based) is ``SN001/t.png``.
- OpenFace / FERA-2015 ``extract_au_labels`` and the OpenFace DISFA demo script
  (TadasBaltrusaitis): ``dlmread(..., ',')``, second column = intensity, 12 AUs
  1, 2, 4, 5, 6, 9, 12, 15, 17, 20, 25, 26, frame indices 0..n-1 for the video.
- Public DISFA preprocessing code reading ``Videos_LeftCamera/LeftVideoSN001_comp.avi``
  (also spelled ``Video_LeftCamera``, ``ActionUnits_Labels``; both are accepted) and
  counting label frames from 1 (``frame - 1`` is the video index).
- Mavadati et al., "DISFA: A Spontaneous Facial Action Intensity Database", IEEE Trans.
  Affective Computing 4(2), 2013.
"""

from __future__ import annotations

import re
from numbers import Real
from pathlib import Path

import numpy as np
import pandas as pd

from ._base import FRAME, PATH, SUBJECT, AUDataset, DatasetLayoutError, assemble
from ._files import (
    IMAGE_EXTENSIONS,
    describe,
    find_dir,
    index_images,
    resolve_root,
    select_ids,
    source_name,
)
from .au_names import au_number, normalize_au_name
from .frames import extract_frames

__all__ = [
    "DISFA_AUS",
    "extract_disfa_frames",
    "find_disfa_videos",
    "load_disfa",
    "read_disfa_intensity",
]

#: The 12 AUs coded in DISFA.
DISFA_AUS = [
    "AU01",
    "AU02",
    "AU04",
    "AU05",
    "AU06",
    "AU09",
    "AU12",
    "AU15",
    "AU17",
    "AU20",
    "AU25",
    "AU26",
]

_SUBJECT_DIR = re.compile(r"^SN\d{3}$", re.IGNORECASE)
_AU_FILE = re.compile(r"^(SN\d{3})_au(\d+)\.txt$", re.IGNORECASE)
_LABEL_DIRS = ("ActionUnit_Labels", "ActionUnits_Labels", "AU_Labels", "Labels")
_CAMERAS = {"left": "Left", "right": "Right"}


def _camera(camera: str) -> str:
    if camera not in _CAMERAS:
        raise ValueError(f"camera must be 'left' or 'right', got {camera!r}.")
    return _CAMERAS[camera]


def read_disfa_intensity(path, *, max_intensity: int = 5) -> pd.Series:
    """Read one DISFA AU file (``SN001_au1.txt``): frame number -> intensity.

    Parameters
    ----------
    path : str, Path or file object
        Lines ``frame,intensity`` (blank lines are skipped).
    max_intensity : int, default=5
        Largest valid intensity.

    Returns
    -------
    Series of int
        Indexed by frame number (DISFA counts from 1).

    Raises
    ------
    ValueError
        On a line without exactly two integers, a repeated frame, or an intensity outside
        0..max_intensity; the message names the file and line.

    Examples
    --------
    >>> import io
    >>> read_disfa_intensity(io.StringIO("1,0\\n2,3\\n3,1\\n")).tolist()
    [0, 3, 1]
    """
    name = source_name(path)
    if isinstance(path, (str, Path)):
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    else:
        lines = path.read().splitlines()
    frames, values = [], []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        cells = [c for c in re.split(r"[,\s]+", line.strip()) if c]
        try:
            if len(cells) != 2:
                raise ValueError(line)
            frame, value = (_as_int(c) for c in cells)
        except ValueError:
            raise ValueError(
                f"DISFA label file {name}, line {number}: expected 'frame,intensity' "
                f"(two integers), found {line.strip()!r}."
            ) from None
        if not 0 <= value <= max_intensity:
            raise ValueError(
                f"DISFA label file {name}, line {number}: intensity {value} is outside "
                f"0..{max_intensity}."
            )
        frames.append(frame)
        values.append(value)
    if not frames:
        raise ValueError(f"DISFA label file {name} is empty.")
    series = pd.Series(values, index=pd.Index(frames, dtype=np.int64), dtype=np.int64)
    if series.index.duplicated().any():
        frame = int(series.index[series.index.duplicated()][0])
        raise ValueError(f"DISFA label file {name}: frame {frame} appears twice.")
    return series


def _as_int(text: str) -> int:
    value = float(text)
    if not value.is_integer():
        raise ValueError(text)
    return int(value)


def _label_files(labels_dir: Path) -> dict[str, dict[str, Path]]:
    files: dict[str, dict[str, Path]] = {}
    for folder in sorted(labels_dir.iterdir()):
        if not (folder.is_dir() and _SUBJECT_DIR.match(folder.name)):
            continue
        for path in sorted(folder.iterdir()):
            match = _AU_FILE.match(path.name)
            if match:
                subject = match.group(1).upper()
                files.setdefault(subject, {})[normalize_au_name(match.group(2))] = path
    return files


def find_disfa_videos(root, *, camera: str = "left") -> dict[str, Path]:
    """DISFA videos of one camera: subject -> ``LeftVideoSN001_comp.avi``.

    Looks in ``root`` and its direct subfolders (``Videos_LeftCamera``,
    ``Video_LeftCamera``...), matching the file name case-insensitively.
    """
    prefix = _camera(camera)
    pattern = re.compile(rf"^{prefix}Video(SN\d{{3}}).*\.avi$", re.IGNORECASE)
    root = Path(root)
    folders = [root, *sorted(p for p in root.iterdir() if p.is_dir())]
    videos: dict[str, Path] = {}
    for folder in folders:
        for path in sorted(folder.iterdir()):
            match = pattern.match(path.name)
            if match and path.is_file():
                videos.setdefault(match.group(1).upper(), path)
    return videos


def _default_frames_dir(root: Path, camera: str) -> Path:
    return root / f"Frames_{_camera(camera)}Camera"


def extract_disfa_frames(
    root, *, camera: str = "left", frames_dir=None, subjects=None, progress: bool = False
) -> dict[str, int]:
    """Extract every frame of the DISFA videos to PNG files (resumable).

    Parameters
    ----------
    root : str or Path
        The DISFA folder (videos in ``root`` or a direct subfolder).
    camera : {"left", "right"}, default="left"
    frames_dir : str or Path, optional
        Where to write ``<subject>/00000.png``...; default ``root/Frames_LeftCamera``
        (or ``Frames_RightCamera``). Frame files are numbered from 0, so label frame f
        is image f - 1, what :func:`load_disfa` expects with ``first_image_index=0``.
    subjects : list of str, optional
        Only these subjects (``SN001``...).
    progress : bool, default=False
        Show a tqdm progress bar per video.

    Returns
    -------
    dict
        Subject -> number of frame files.

    Examples
    --------
    A stand-in DISFA folder with one three-frame video:

    >>> import tempfile
    >>> from pathlib import Path
    >>> import cv2, numpy as np
    >>> root = Path(tempfile.mkdtemp()) / "DISFA"
    >>> (root / "Videos_LeftCamera").mkdir(parents=True)
    >>> video = root / "Videos_LeftCamera" / "LeftVideoSN001_comp.avi"
    >>> writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5, (16, 16))
    >>> for value in (10, 120, 240):
    ...     writer.write(np.full((16, 16, 3), value, np.uint8))
    >>> writer.release()
    >>> extract_disfa_frames(root)
    {'SN001': 3}
    >>> sorted(p.name for p in (root / "Frames_LeftCamera" / "SN001").glob("*.png"))
    ['00000.png', '00001.png', '00002.png']
    >>> import shutil; shutil.rmtree(root.parent)
    """
    root = resolve_root(root, "DISFA")
    videos = find_disfa_videos(root, camera=camera)
    side = _camera(camera)
    if not videos:
        raise DatasetLayoutError(
            f"DISFA: no {side}Video<subject>_comp.avi video in {root} or its subfolders "
            f"(e.g. Videos_{side}Camera/{side}VideoSN001_comp.avi). "
            f"Found: {describe(root)}."
        )
    frames_dir = _default_frames_dir(root, camera) if frames_dir is None else Path(frames_dir)
    counts = {}
    for subject in select_ids(videos, subjects, dataset="DISFA", what="subjects"):
        paths = extract_frames(
            videos[subject], frames_dir / subject, ext=".png", start_number=0, progress=progress
        )
        counts[subject] = len(paths)
    return counts


def load_disfa(
    root,
    *,
    threshold: int = 2,
    camera: str = "left",
    labels_dir=None,
    frames_dir=None,
    first_image_index: int = 0,
    aus=None,
    subjects=None,
    drop_unlabeled: bool = True,
    on_missing: str = "drop",
    image_extensions=IMAGE_EXTENSIONS,
) -> AUDataset:
    """Load DISFA frames with AU occurrence from the intensity files.

    Parameters
    ----------
    root : str or Path
        The DISFA folder.
    threshold : int, default=2
        An AU is present when its intensity is >= threshold (1..5). 2 is the common
        convention (EAC-Net, JAA-Net, ME-GraphAU).
    camera : {"left", "right"}, default="left"
        Which camera's frames; the labels are the same.
    labels_dir : str or Path, optional
        Folder of ``SN001/SN001_au1.txt``; default ``ActionUnit_Labels`` (or
        ``ActionUnits_Labels``, ``AU_Labels``, ``Labels``) under ``root``.
    frames_dir : str or Path, optional
        Folder of ``<subject>/<n>.png`` frames; default ``root/Frames_LeftCamera`` as
        written by :func:`extract_disfa_frames`.
    first_image_index : int, default=0
        Number of the image file that shows label frame 1 (0 for frames numbered from 0
        as OpenCV and ME-GraphAU do, 1 for ffmpeg's ``%05d.png``).
    aus : list of AU names, optional
        Default: every AU that has a label file (the 12 of :data:`DISFA_AUS`).
    subjects : list of str, optional
        Only these subjects (``SN001``...).
    drop_unlabeled : bool, default=True
        Drop frames whose kept AUs are all unknown (frames missing from every AU file).
    on_missing : {"drop", "raise"}, default="drop"
        A labelled frame without an image (video shorter than the labels, extraction
        incomplete) is dropped with a warning, or raises.
    image_extensions : tuple of str, default=(".jpg", ".jpeg", ".png", ".bmp")
        Image file suffixes to consider (any case).

    Returns
    -------
    AUDataset
        ``subjects`` ``SN001``..., no tasks, ``frames`` the label frame numbers (from 1).
        A frame missing from one AU file (ragged files) is NaN for that AU.

    Raises
    ------
    DatasetLayoutError
        If the label folder or a subject's frame folder is missing; the message lists
        what was found and how to extract frames.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> labels = root / "ActionUnit_Labels" / "SN001"
    >>> labels.mkdir(parents=True)
    >>> _ = (labels / "SN001_au1.txt").write_text("1,0\\n2,2\\n3,1\\n")
    >>> _ = (labels / "SN001_au12.txt").write_text("1,5\\n2,0\\n3,3\\n")
    >>> frames = root / "Frames_LeftCamera" / "SN001"
    >>> frames.mkdir(parents=True)
    >>> for i in range(3):
    ...     (frames / f"{i:05d}.png").touch()
    >>> ds = load_disfa(root)
    >>> ds.labels
       AU01  AU12
    0   0.0   1.0
    1   1.0   0.0
    2   0.0   1.0
    >>> [pathlib.Path(p).name for p in ds.paths]
    ['00000.png', '00001.png', '00002.png']
    """
    if isinstance(threshold, bool) or not isinstance(threshold, Real) or not 1 <= threshold <= 5:
        raise ValueError(f"threshold must be an intensity in 1..5, got {threshold!r}.")
    root = resolve_root(root, "DISFA")
    _camera(camera)
    if labels_dir is None:
        labels_dir = find_dir(
            root,
            _LABEL_DIRS,
            dataset="DISFA",
            what="AU label",
            example="ActionUnit_Labels/SN001/SN001_au1.txt",
        )
    labels_dir = Path(labels_dir)
    files = _label_files(labels_dir) if labels_dir.is_dir() else {}
    if not files:
        raise DatasetLayoutError(
            f"DISFA: no label files named like SN001/SN001_au1.txt in {labels_dir}. "
            f"Found: {describe(labels_dir)}."
        )
    frames_dir = _default_frames_dir(root, camera) if frames_dir is None else Path(frames_dir)
    keep_subjects = select_ids(files, subjects, dataset="DISFA", what="subjects")
    lacking = [s for s in keep_subjects if not (frames_dir / s).is_dir()]
    if lacking:
        videos = find_disfa_videos(root, camera=camera)
        raise DatasetLayoutError(
            f"DISFA: no frame images for {', '.join(lacking[:5])} in {frames_dir} "
            f"(expected {frames_dir.name}/{lacking[0]}/00000.png ...). DISFA ships videos "
            f"({len(videos)} {camera}-camera videos found under {root}): run "
            "extract_disfa_frames(root) once, or pass frames_dir=... Found: "
            f"{describe(frames_dir)}."
        )

    parts = []
    for subject in keep_subjects:
        intensities = pd.DataFrame(
            {au: read_disfa_intensity(path) for au, path in files[subject].items()}
        ).sort_index()
        occurrence = (intensities >= threshold).astype(np.float64).where(intensities.notna())
        occurrence = occurrence[sorted(occurrence.columns, key=au_number)]
        images = index_images(frames_dir / subject, image_extensions)
        frames = occurrence.index.to_numpy(dtype=np.int64)
        part = occurrence.reset_index(drop=True)
        offset = first_image_index - 1
        part.insert(0, PATH, [_str(images.get(int(f) + offset)) for f in frames])
        part.insert(1, SUBJECT, subject)
        part.insert(2, FRAME, frames)
        parts.append(part)
    table = pd.concat(parts, ignore_index=True, sort=False)
    return assemble(
        table, name="disfa", aus=aus, drop_unlabeled=drop_unlabeled, on_missing=on_missing
    )


def _str(path):
    return None if path is None else str(path)
