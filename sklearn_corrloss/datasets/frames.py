"""Video -> frame image files with OpenCV, resumable.

Video data sets (DISFA) label frames by number; models read images. :func:`extract_frames`
writes frame ``i`` of a video to ``<out_dir>/<i, zero padded><ext>``. It is resumable:
frames already on disk are skipped, each image is written to a temporary name and renamed,
so an interrupted run never leaves a half-written frame behind, and a finished run leaves a
small marker so that the next call returns at once without decoding the video.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
from tqdm.auto import tqdm

from .._atomic import atomic_output

__all__ = ["extract_frames"]

_MARKER = ".frames_complete.json"


def _frame_path(out_dir: Path, index: int, digits: int, ext: str) -> Path:
    return out_dir / f"{index:0{digits}d}{ext}"


def _video_stamp(video: Path) -> dict:
    stat = video.stat()
    return {"video": video.name, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _read_marker(out_dir: Path, expected: dict) -> list[Path] | None:
    marker = out_dir / _MARKER
    if not marker.is_file():
        return None
    try:
        saved = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if {k: saved.get(k) for k in expected} != expected:
        return None
    paths = [out_dir / name for name in saved.get("files", [])]
    return paths if paths and all(p.is_file() for p in paths) else None


def extract_frames(
    video,
    out_dir,
    *,
    ext: str = ".png",
    start_number: int = 0,
    digits: int = 5,
    overwrite: bool = False,
    progress: bool = False,
) -> list[Path]:
    """Write every frame of a video to an image file; skip frames already written.

    Parameters
    ----------
    video : str or Path
        A video file OpenCV can read (``.avi``, ``.mp4``...).
    out_dir : str or Path
        Output folder (created).
    ext : str, default=".png"
        Image format by suffix (``.png`` lossless, ``.jpg`` smaller).
    start_number : int, default=0
        Number of the first frame's file (0: OpenCV's frame index; 1: ffmpeg's default).
    digits : int, default=5
        Zero padding of the file names (``00000.png``).
    overwrite : bool, default=False
        Rewrite frames that already exist.
    progress : bool, default=False
        Show a tqdm progress bar.

    Returns
    -------
    list of Path
        The frame files, in video order.

    Raises
    ------
    FileNotFoundError
        If ``video`` does not exist.
    ValueError
        If OpenCV cannot open or decode it (missing codec), or ``ext`` is not an image
        format OpenCV writes.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np, cv2
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> writer = cv2.VideoWriter(str(tmp / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"),
    ...                          10, (16, 16))
    >>> for value in (0, 128, 255):
    ...     writer.write(np.full((16, 16, 3), value, np.uint8))
    >>> writer.release()
    >>> [p.name for p in extract_frames(tmp / "clip.avi", tmp / "frames")]
    ['00000.png', '00001.png', '00002.png']
    """
    video = Path(video)
    out_dir = Path(out_dir)
    if not video.is_file():
        raise FileNotFoundError(f"Video {video} does not exist.")
    ext = ext if ext.startswith(".") else f".{ext}"
    if not cv2.haveImageWriter(f"x{ext}"):
        raise ValueError(f"OpenCV cannot write {ext!r} images; use '.png' or '.jpg'.")
    stamp = {**_video_stamp(video), "ext": ext, "start_number": start_number, "digits": digits}
    if not overwrite:
        done = _read_marker(out_dir, stamp)
        if done is not None:
            return done

    capture = cv2.VideoCapture(str(video))
    if not capture.isOpened():
        raise ValueError(f"OpenCV could not open video {video} (unsupported codec or file).")
    out_dir.mkdir(parents=True, exist_ok=True)
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    paths: list[Path] = []
    try:
        with tqdm(total=total, desc=video.name, unit="frame", disable=not progress) as bar:
            while capture.grab():
                path = _frame_path(out_dir, start_number + len(paths), digits, ext)
                if overwrite or not path.is_file():
                    ok, frame = capture.retrieve()
                    if not ok:
                        raise ValueError(f"OpenCV could not decode frame {len(paths)} of {video}.")
                    _write_image(path, frame, ext)
                paths.append(path)
                bar.update(1)
    finally:
        capture.release()
    if not paths:
        raise ValueError(f"OpenCV decoded no frame from {video} (unsupported codec?).")
    marker = {**stamp, "files": [p.name for p in paths]}
    with atomic_output(out_dir / _MARKER) as tmp:
        tmp.write_text(json.dumps(marker), encoding="utf-8")
    return paths


def _write_image(path: Path, frame, ext: str) -> None:
    ok, buffer = cv2.imencode(ext, frame)
    if not ok:
        raise ValueError(f"OpenCV could not encode a frame as {ext} for {path}.")
    with atomic_output(path) as temporary:
        temporary.write_bytes(buffer.tobytes())
