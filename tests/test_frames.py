"""Video -> frame files: every frame in order, resumable, clear errors."""

import os

import cv2
import numpy as np
import pytest

import sklearn_corrloss.datasets.frames as frames_module
from sklearn_corrloss.datasets.frames import extract_frames

VALUES = (0, 60, 120, 180, 240)


@pytest.fixture
def video(tmp_path):
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 5, (16, 12))
    assert writer.isOpened()
    for value in VALUES:
        writer.write(np.full((12, 16, 3), value, np.uint8))
    writer.release()
    return path


def test_extracts_every_frame_in_order(video, tmp_path):
    paths = extract_frames(video, tmp_path / "out")
    assert [p.name for p in paths] == [f"{i:05d}.png" for i in range(len(VALUES))]
    images = [cv2.imread(str(p)) for p in paths]
    assert all(image.shape == (12, 16, 3) for image in images)
    means = np.array([image.mean() for image in images])
    np.testing.assert_allclose(means, VALUES, atol=8)  # MJPG is lossy
    assert not list((tmp_path / "out").glob(".*.tmp*"))  # no temporary files left behind


def test_numbering_and_format_options(video, tmp_path):
    paths = extract_frames(video, tmp_path / "jpg", ext="jpg", start_number=1, digits=3)
    assert [p.name for p in paths] == ["001.jpg", "002.jpg", "003.jpg", "004.jpg", "005.jpg"]


def test_resumes_without_rewriting_existing_frames(video, tmp_path):
    out = tmp_path / "out"
    first = extract_frames(video, out)
    assert len(first) == len(VALUES)
    first[2].unlink()
    (out / ".frames_complete.json").unlink()  # an interrupted run leaves no marker
    for path in first:
        if path.exists():
            os.utime(path, ns=(1, 1))
    second = extract_frames(video, out)
    assert [p.name for p in second] == [p.name for p in first]
    assert second[2].stat().st_mtime_ns != 1  # rewritten
    untouched = [p for i, p in enumerate(second) if i != 2]
    assert all(p.stat().st_mtime_ns == 1 for p in untouched)


def test_finished_run_returns_without_decoding(video, tmp_path, monkeypatch):
    out = tmp_path / "out"
    expected = extract_frames(video, out)

    def fail(*args, **kwargs):
        raise AssertionError("the video was opened again")

    monkeypatch.setattr(frames_module.cv2, "VideoCapture", fail)
    assert extract_frames(video, out) == expected
    expected[0].unlink()  # a missing file invalidates the marker
    with pytest.raises(AssertionError, match="opened again"):
        extract_frames(video, out)


def test_overwrite_rewrites(video, tmp_path):
    out = tmp_path / "out"
    paths = extract_frames(video, out)
    os.utime(paths[0], ns=(1, 1))
    extract_frames(video, out, overwrite=True)
    assert paths[0].stat().st_mtime_ns != 1


def test_errors(tmp_path, video):
    with pytest.raises(FileNotFoundError, match=r"missing\.avi does not exist"):
        extract_frames(tmp_path / "missing.avi", tmp_path / "out")
    not_video = tmp_path / "notes.avi"
    not_video.write_text("not a video")
    with pytest.raises(ValueError, match=r"OpenCV could not open|decoded no frame"):
        extract_frames(not_video, tmp_path / "out2")
    with pytest.raises(ValueError, match=r"cannot write '\.xyz' images"):
        extract_frames(video, tmp_path / "out3", ext=".xyz")
