"""Loaders on tiny trees in each data set's documented layout: paths, labels, NaN, subjects."""

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from sklearn_corrloss.datasets._base import AUDataset, DatasetLayoutError
from sklearn_corrloss.datasets.affwild2 import load_affwild2, read_affwild2_au
from sklearn_corrloss.datasets.au_names import align_datasets, normalize_au_name, shared_aus
from sklearn_corrloss.datasets.bp4d import load_bp4d, read_bp4d_occurrence
from sklearn_corrloss.datasets.ckplus import load_ckplus, read_ckplus_facs
from sklearn_corrloss.datasets.disfa import (
    extract_disfa_frames,
    load_disfa,
    read_disfa_intensity,
)
from sklearn_corrloss.datasets.manifest import load_dataset, load_manifest, write_manifest

NAN = np.nan


def write_image(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.full((4, 4, 3), 127, np.uint8))


def write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def assert_labels(dataset, expected):
    """Compare labels with NaN-aware equality; ``expected`` is a dict of AU -> list."""
    frame = pd.DataFrame(expected, dtype=float)
    pd.testing.assert_frame_equal(dataset.labels, frame, check_names=False)


# ============================================================== AU names, alignment
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (1, "AU01"),
        ("1", "AU01"),
        ("AU1", "AU01"),
        ("au01", "AU01"),
        ("AU 1", "AU01"),
        ("AU_12", "AU12"),
        (" 26 ", "AU26"),
        (9.0, "AU09"),
        ("1.0000000e+01", None),
        (np.int64(4), "AU04"),
        ("AU101", "AU101"),
    ],
)
def test_normalize_au_name(name, expected):
    if expected is None:  # scientific notation is for the CK+ parser, not for names
        with pytest.raises(ValueError, match="Not an Action Unit"):
            normalize_au_name(name)
    else:
        assert normalize_au_name(name) == expected


@pytest.mark.parametrize("name", ["AU1_r", "1.5", 1.5, True, "smile", "", -1, None])
def test_normalize_au_name_rejects(name):
    with pytest.raises(ValueError, match="Not an Action Unit"):
        normalize_au_name(name)


def tiny(name, labels):
    n = len(next(iter(labels.values())))
    return AUDataset(
        paths=[f"{name}{i}.png" for i in range(n)],
        subjects=["s"] * n,
        labels=pd.DataFrame(labels),
        name=name,
    )


def test_align_datasets_keeps_shared_coded_aus():
    a = tiny("a", {"AU1": [1, 0], "AU2": [0, 1], "AU12": [1, 1], "AU45": [NAN, NAN]})
    b = tiny("b", {"AU01": [0], "AU12": [1], "AU45": [1], "AU26": [0]})
    assert shared_aus(a, b) == ["AU01", "AU12"]  # AU45 is not coded in a
    aligned = align_datasets(a, b)
    assert [d.aus for d in aligned] == [["AU01", "AU12"], ["AU01", "AU12"]]
    assert aligned[0].labels["AU12"].tolist() == [1.0, 1.0]
    assert a.aus == ["AU01", "AU02", "AU12", "AU45"]  # originals untouched


def test_align_datasets_errors_name_the_data_sets():
    a = tiny("bp4d", {"AU1": [1]})
    b = tiny("disfa", {"AU2": [1]})
    with pytest.raises(ValueError, match=r"share no coded AU \(bp4d: AU01; disfa: AU02\)"):
        align_datasets(a, b)
    with pytest.raises(ValueError, match="'disfa' does not code AU01"):
        align_datasets(a, b, aus=["AU1"])
    with pytest.raises(ValueError, match="at least two"):
        align_datasets(a)


# ============================================================== AUDataset itself
def test_audataset_validates_inputs():
    labels = pd.DataFrame({"AU1": [1, 0]})
    with pytest.raises(ValueError, match="subjects has 1 entries but there are 2"):
        AUDataset(paths=["a", "b"], labels=labels, subjects=["s"])
    with pytest.raises(ValueError, match=r"labels must be 1, 0 or empty.*\[2\]"):
        AUDataset(paths=["a", "b"], labels=pd.DataFrame({"AU1": [1, 2]}), subjects=["s", "s"])
    with pytest.raises(ValueError, match="several columns for AU01"):
        AUDataset(paths=["a"], labels=pd.DataFrame({"AU1": [1], "au01": [0]}), subjects=["s"])
    with pytest.raises(ValueError, match="Not an Action Unit"):
        AUDataset(paths=["a"], labels=pd.DataFrame({"smile": [1]}), subjects=["s"])


def test_audataset_subset_select_summary():
    ds = AUDataset(
        paths=["a", "b", "c"],
        subjects=["s1", "s1", "s2"],
        tasks=["T1"] * 3,
        frames=[3, 4, 5],
        labels=pd.DataFrame({"AU2": [1, NAN, 0], "AU1": [0, 1, 1]}),
        metadata=pd.DataFrame({"emotion": ["x", "y", "z"]}),
    )
    assert ds.aus == ["AU01", "AU02"]  # AU order, not file order
    part = ds.subset(ds.subjects == "s1")
    assert part.paths.tolist() == ["a", "b"] and part.frames.tolist() == [3, 4]
    assert part.metadata["emotion"].tolist() == ["x", "y"]
    assert ds.select_aus(["2"]).aus == ["AU02"]
    with pytest.raises(KeyError, match="no label column for AU04"):
        ds.select_aus([4])
    summary = ds.summary()
    assert summary.loc["AU02"].tolist() == [1, 1, 1, 0.5]
    assert "n_samples=3" in repr(ds)


# ============================================================== BP4D
BP4D_CSV_F001_T1 = """0,1,2,4,6,45
1,1,0,0,1,9
2,0,0,9,1,9
3,9,9,9,9,9
4,1,1,0,0,9
"""
BP4D_CSV_F001_T2 = """0,1,2,4,6,45
10,0,1,0,0,9
11,1,1,1
"""
BP4D_CSV_M001_T1 = """0,1,2,4,6,45
2440,0,0,1,0,9
2441,1,0,0,0,9
"""


@pytest.fixture
def bp4d_root(tmp_path):
    root = tmp_path / "BP4D"
    occ = root / "AUCoding" / "AU_OCC"
    write_text(occ / "F001_T1.csv", BP4D_CSV_F001_T1)
    write_text(occ / "F001_T2.csv", BP4D_CSV_F001_T2)  # ragged: short last row
    write_text(occ / "M001_T1.csv", BP4D_CSV_M001_T1)
    write_text(occ / "README.txt", "not a label file")
    images = root / "Sequences(2D+3D)"
    for frame in (1, 2, 3, 4):  # three-digit padding
        write_image(images / "F001" / "T1" / f"{frame:03d}.jpg")
    for frame in (10, 11):  # four-digit padding
        write_image(images / "F001" / "T2" / f"{frame:04d}.jpg")
    write_image(images / "M001" / "T1" / "2440.jpg")  # frame 2441 has no image
    return root


def test_bp4d_paths_labels_subjects_tasks(bp4d_root):
    with pytest.warns(UserWarning, match="1 labelled frame"):
        ds = load_bp4d(bp4d_root)
    assert ds.name == "bp4d"
    # frame 3 (all 9) is unlabelled and dropped; M001 2441 has no image and is dropped
    assert ds.frames.tolist() == [1, 2, 4, 10, 11, 2440]
    assert ds.subjects.tolist() == ["F001"] * 5 + ["M001"]
    assert ds.tasks.tolist() == ["T1", "T1", "T1", "T2", "T2", "T1"]
    names = [Path(p).relative_to(bp4d_root / "Sequences(2D+3D)").as_posix() for p in ds.paths]
    assert names == [
        "F001/T1/001.jpg",
        "F001/T1/002.jpg",
        "F001/T1/004.jpg",
        "F001/T2/0010.jpg",
        "F001/T2/0011.jpg",
        "M001/T1/2440.jpg",
    ]
    assert all(Path(p).is_file() for p in ds.paths)
    # AU45 is 9 everywhere: not coded, left out; 9 -> NaN, short row -> NaN
    assert_labels(
        ds,
        {
            "AU01": [1, 0, 1, 0, 1, 0],
            "AU02": [0, 0, 1, 1, 1, 0],
            "AU04": [0, NAN, 0, 0, 1, 1],
            "AU06": [1, 1, 0, 0, NAN, 0],
        },
    )
    assert ds.metadata["task_name"].tolist()[:4] == ["happiness/amusement"] * 3 + ["sadness"]


def test_bp4d_options(bp4d_root):
    ds = load_bp4d(bp4d_root, aus=["AU4", 1], subjects=["F001"], tasks="T1", drop_unlabeled=False)
    assert ds.aus == ["AU01", "AU04"]
    assert ds.frames.tolist() == [1, 2, 3, 4]  # frame 3 kept, all NaN
    assert np.isnan(ds.labels.iloc[2]).all()
    with pytest.raises(FileNotFoundError, match="have no image file"):
        load_bp4d(bp4d_root, on_missing="raise")
    with pytest.raises(KeyError, match="AU99 are not in the label files"):
        load_bp4d(bp4d_root, aus=[99])
    with pytest.raises(ValueError, match=r"no label file for subjects \['M001'\]"):
        load_bp4d(bp4d_root, subjects=["M001"], tasks=["T2"])
    with pytest.raises(ValueError, match=r"unknown subjects \['F002'\]"):
        load_bp4d(bp4d_root, subjects=["F002"])


def test_bp4d_wrong_layout_says_what_it_expected_and_found(tmp_path):
    (tmp_path / "stuff").mkdir()
    with pytest.raises(DatasetLayoutError, match=r"AUCoding/AU_OCC.*Found: .*stuff/"):
        load_bp4d(tmp_path)
    write_text(tmp_path / "AUCoding" / "AU_OCC" / "subject1.csv", "0,1\n1,1\n")
    with pytest.raises(DatasetLayoutError, match=r"no occurrence CSVs named like F001_T1\.csv"):
        load_bp4d(tmp_path, images_dir=tmp_path)
    write_text(tmp_path / "AUCoding" / "AU_OCC" / "F001_T1.csv", "0,1\n1,1\n")
    with pytest.raises(DatasetLayoutError, match=r"no image folder .*F001/T1/0001\.jpg"):
        load_bp4d(tmp_path)


def test_bp4d_bad_label_files(tmp_path):
    bad = tmp_path / "F001_T1.csv"
    write_text(bad, "0,1,2\n1,1,2\n")
    with pytest.raises(ValueError, match=r"F001_T1\.csv column '2'.*found \[2\]"):
        read_bp4d_occurrence(bad)
    write_text(bad, "0,1,2\n1,1,0,1,1\n")
    with pytest.raises(ValueError, match=r"F001_T1\.csv, line 2: more values than the 3 columns"):
        read_bp4d_occurrence(bad)
    write_text(bad, "0,1\n1,1\n1,0\n")
    with pytest.raises(ValueError, match="frame 1 appears twice"):
        read_bp4d_occurrence(bad)
    # another unknown code is honoured, and the default one is then an error
    write_text(bad, "0,1\n1,-1\n2,1\n")
    assert read_bp4d_occurrence(bad, unknown_values=[-1])["AU01"].isna().tolist() == [True, False]


def test_bp4d_duplicate_frame_images_are_an_error(bp4d_root):
    write_image(bp4d_root / "Sequences(2D+3D)" / "F001" / "T1" / "1.jpg")
    with pytest.raises(ValueError, match="Two images for frame 1"):
        load_bp4d(bp4d_root)


# ============================================================== DISFA
def disfa_labels(root, subject, au, intensities, frames=None):
    frames = range(1, len(intensities) + 1) if frames is None else frames
    lines = "".join(f"{f},{v}\n" for f, v in zip(frames, intensities))
    write_text(root / "ActionUnit_Labels" / subject / f"{subject}_au{au}.txt", lines)


@pytest.fixture
def disfa_root(tmp_path):
    root = tmp_path / "DISFA"
    disfa_labels(root, "SN001", 1, [0, 1, 2, 5])
    disfa_labels(root, "SN001", 2, [0, 0, 3, 0])
    disfa_labels(root, "SN001", 12, [4, 0, 0, 2])
    disfa_labels(root, "SN002", 1, [3, 0, 0])
    disfa_labels(root, "SN002", 12, [0, 2])  # ragged: one frame short; no AU2 file
    for subject, n in (("SN001", 4), ("SN002", 3)):
        for i in range(n):
            write_image(root / "Frames_LeftCamera" / subject / f"{i:05d}.png")
    return root


def test_disfa_threshold_ragged_and_paths(disfa_root):
    ds = load_disfa(disfa_root)
    assert ds.name == "disfa" and ds.tasks is None
    assert ds.subjects.tolist() == ["SN001"] * 4 + ["SN002"] * 3
    assert ds.frames.tolist() == [1, 2, 3, 4, 1, 2, 3]
    assert [Path(p).name for p in ds.paths] == [f"{i:05d}.png" for i in (0, 1, 2, 3, 0, 1, 2)]
    assert_labels(
        ds,
        {
            "AU01": [0, 0, 1, 1, 1, 0, 0],
            "AU02": [0, 0, 1, 0, NAN, NAN, NAN],  # SN002 has no AU2 file: unknown, not absent
            "AU12": [1, 0, 0, 1, 0, 1, NAN],  # SN002 AU12 file ends early
        },
    )
    low = load_disfa(disfa_root, threshold=1, subjects=["SN001"])
    assert low.labels["AU01"].tolist() == [0, 1, 1, 1]


def test_disfa_image_numbering_and_missing_frames(disfa_root):
    for subject in ("SN001", "SN002"):  # ffmpeg-style frames from 1, SN001 one short
        folder = disfa_root / "ffmpeg" / subject
        for i in range(1, 4):
            write_image(folder / f"{i:05d}.png")
    with pytest.warns(UserWarning, match="1 labelled frame"):
        ds = load_disfa(disfa_root, frames_dir=disfa_root / "ffmpeg", first_image_index=1)
    assert [Path(p).name for p in ds.paths[:3]] == ["00001.png", "00002.png", "00003.png"]
    assert ds.frames.tolist() == [1, 2, 3, 1, 2, 3]


def test_disfa_wrong_layout_and_bad_files(tmp_path, disfa_root):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetLayoutError, match=r"ActionUnit_Labels.*Found: .* is empty"):
        load_disfa(tmp_path / "empty")
    bare = tmp_path / "bare"
    disfa_labels(bare, "SN001", 1, [0, 1])
    with pytest.raises(DatasetLayoutError, match="extract_disfa_frames"):
        load_disfa(bare)
    with pytest.raises(ValueError, match="threshold must be an intensity"):
        load_disfa(disfa_root, threshold=0)
    bad = tmp_path / "SN001_au1.txt"
    write_text(bad, "1,0\n2,7\n")
    with pytest.raises(ValueError, match=r"SN001_au1\.txt, line 2: intensity 7"):
        read_disfa_intensity(bad)
    write_text(bad, "1,0\n2\n")
    with pytest.raises(ValueError, match="line 2: expected 'frame,intensity'"):
        read_disfa_intensity(bad)


def test_disfa_from_video(tmp_path):
    root = tmp_path / "DISFA"
    disfa_labels(root, "SN003", 1, [0, 3, 4])
    video = root / "Videos_LeftCamera" / "LeftVideoSN003_comp.avi"
    video.parent.mkdir(parents=True)
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5, (16, 16))
    for value in (10, 120, 240):
        writer.write(np.full((16, 16, 3), value, np.uint8))
    writer.release()
    assert extract_disfa_frames(root) == {"SN003": 3}
    ds = load_disfa(root)
    assert ds.labels["AU01"].tolist() == [0, 1, 1]
    means = [cv2.imread(p).mean() for p in ds.paths]
    assert means == sorted(means)  # label frame f is video frame f - 1
    with pytest.raises(DatasetLayoutError, match="RightVideo"):
        extract_disfa_frames(root, camera="right")


# ============================================================== CK+
@pytest.fixture
def ckplus_root(tmp_path):
    root = tmp_path / "CK+"
    images = root / "cohn-kanade-images"
    for subject, sequence, n in (("S005", "001", 3), ("S005", "002", 4), ("S010", "001", 2)):
        for i in range(1, n + 1):
            write_image(images / subject / sequence / f"{subject}_{sequence}_{i:08d}.png")
    write_text(
        root / "FACS" / "S005" / "001" / "S005_001_00000003_facs.txt",
        "   9.0000000e+00   4.0000000e+00\n   1.7000000e+01   2.0000000e+00\n",
    )
    write_text(
        root / "FACS" / "S005" / "002" / "S005_002_00000004_facs.txt",
        "   1.0000000e+00   0.0000000e+00\n   2.0000000e+00   3.0000000e+00\n"
        "   1.2000000e+01   0.0000000e+00\n\n",
    )
    write_text(
        root / "Emotion" / "S005" / "001" / "S005_001_00000003_emotion.txt", "   3.0000000e+00\n"
    )
    (root / "FACS" / "S010" / "001").mkdir(parents=True)  # sequence without a FACS file
    return root


def test_ckplus_all_frames_carry_the_peak(ckplus_root):
    with pytest.warns(UserWarning, match=r"1 sequence\(s\) have no FACS file"):
        ds = load_ckplus(ckplus_root)
    assert ds.subjects.tolist() == ["S005"] * 7
    assert ds.tasks.tolist() == ["001"] * 3 + ["002"] * 4
    assert ds.frames.tolist() == [1, 2, 3, 1, 2, 3, 4]
    assert Path(ds.paths[0]).name == "S005_001_00000001.png"
    assert ds.aus == ["AU01", "AU02", "AU09", "AU12", "AU17"]
    assert_labels(
        ds,
        {
            "AU01": [0] * 3 + [1] * 4,
            "AU02": [0] * 3 + [1] * 4,
            "AU09": [1] * 3 + [0] * 4,
            "AU12": [0] * 3 + [1] * 4,  # intensity 0 = present, intensity not given
            "AU17": [1] * 3 + [0] * 4,
        },
    )
    emotions = ds.metadata["emotion"].tolist()
    assert emotions[:3] == ["disgust"] * 3 and pd.isna(emotions[3:]).all()


@pytest.mark.filterwarnings("ignore:CK\\+.*no FACS file")
def test_ckplus_last_last_k_and_neutral(ckplus_root):
    last = load_ckplus(ckplus_root, label_frames="last", subjects=["S005"])
    assert last.frames.tolist() == [3, 4]
    last_k = load_ckplus(ckplus_root, label_frames="last_k", k=2, n_neutral=1, aus=["AU1", 25])
    assert last_k.frames.tolist() == [1, 2, 3, 1, 3, 4]
    assert last_k.aus == ["AU01", "AU25"]  # AU25 never listed: coded absent
    assert_labels(last_k, {"AU01": [0, 0, 0, 0, 1, 1], "AU25": [0] * 6})
    assert last_k.metadata["emotion"].tolist()[:3] == ["neutral", "disgust", "disgust"]
    with pytest.raises(ValueError, match="label_frames must be one of"):
        load_ckplus(ckplus_root, label_frames="peak")


def test_ckplus_wrong_layout_and_bad_files(tmp_path, ckplus_root):
    write_image(tmp_path / "only-images" / "cohn-kanade-images" / "S005" / "001" / "x_1.png")
    with pytest.raises(DatasetLayoutError, match=r"no FACS label folder.*FACS/S005/001"):
        load_ckplus(tmp_path / "only-images")
    bad = tmp_path / "S005_001_00000003_facs.txt"
    write_text(bad, "1.2000000e+00 0.0000000e+00\n")  # the typo of the CK+ readme
    with pytest.raises(ValueError, match=r"S005_001_00000003_facs\.txt: AU number 1.2"):
        read_ckplus_facs(bad)
    write_text(ckplus_root / "Emotion" / "S005" / "001" / "S005_001_00000003_emotion.txt", "9\n")
    with pytest.raises(ValueError, match=r"code 9 is not in 0\.\.7"):
        load_ckplus(ckplus_root, subjects=["S005"])


# ============================================================== Aff-Wild2
AFF_HEADER = "AU1,AU2,AU4,AU6,AU7,AU10,AU12,AU15,AU23,AU24,AU25,AU26\n"


def aff_row(*values):
    return ",".join(str(v) for v in values) + "\n"


@pytest.fixture
def affwild2_root(tmp_path):
    root = tmp_path / "Aff-Wild2"
    ann = root / "Annotations" / "AU_Detection_Challenge"
    write_text(
        ann / "Train_Set" / "video1.txt",
        AFF_HEADER
        + aff_row(1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0)
        + aff_row(*[-1] * 12)
        + aff_row(0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1)
        + aff_row(0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        + "\n",
    )
    write_text(
        ann / "Train_Set" / "10-60-1280x720_left.txt",
        AFF_HEADER + aff_row(0, 0, 0, 1, 1, 0, 1, 0, 0, 0, 0, 0),
    )
    write_text(
        ann / "Validation_Set" / "video3.txt",
        AFF_HEADER + aff_row(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1),
    )
    crops = root / "cropped_aligned"
    for i in (1, 2, 3):  # frame 4 of video1: no face found, no crop
        write_image(crops / "video1" / f"{i:05d}.jpg")
    write_image(crops / "10-60-1280x720_left" / "00001.jpg")
    write_image(crops / "video3" / "00001.jpg")
    return root


def test_affwild2_alignment_unknown_and_missing(affwild2_root):
    with pytest.warns(UserWarning, match="1 labelled frame"):
        ds = load_affwild2(affwild2_root)
    assert ds.aus == [
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
    assert ds.subjects.tolist() == ["10-60-1280x720_left", "video1", "video1", "video3"]
    assert ds.frames.tolist() == [1, 1, 3, 1]  # video1 frame 2 is all -1, frame 4 no image
    assert [Path(p).relative_to(affwild2_root).as_posix() for p in ds.paths] == [
        "cropped_aligned/10-60-1280x720_left/00001.jpg",
        "cropped_aligned/video1/00001.jpg",
        "cropped_aligned/video1/00003.jpg",
        "cropped_aligned/video3/00001.jpg",
    ]
    assert ds.labels.loc[1, ["AU01", "AU12", "AU25"]].tolist() == [1, 1, 1]
    assert ds.labels.loc[2, ["AU04", "AU26"]].tolist() == [1, 1]
    assert ds.metadata["split"].tolist() == ["Train_Set"] * 3 + ["Validation_Set"]
    with pytest.warns(UserWarning, match="1 labelled frame"):
        kept = load_affwild2(
            affwild2_root,
            split="train",
            videos=["video1"],
            drop_unlabeled=False,
            aus=["AU1", "AU2"],
            subject_func=lambda video: video.upper(),
        )
    assert kept.frames.tolist() == [1, 2, 3]
    assert np.isnan(kept.labels.loc[1]).all()  # -1 read as NaN, never 0
    assert set(kept.subjects) == {"VIDEO1"}


def test_affwild2_wrong_layout_and_bad_files(tmp_path, affwild2_root):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetLayoutError, match=r"AU_Detection_Challenge.*Found: .* is empty"):
        load_affwild2(tmp_path / "empty")
    with pytest.raises(DatasetLayoutError, match="no Test_Set folder"):
        load_affwild2(affwild2_root, split="Test_Set")
    bad = tmp_path / "video9.txt"
    write_text(bad, AFF_HEADER + aff_row(1, 0, 0))
    with pytest.raises(ValueError, match=r"video9\.txt, data row 1: missing values for \['AU6'"):
        read_affwild2_au(bad)
    write_text(bad, "AU1,AU2\n1,0\n0,1,1\n")
    with pytest.raises(ValueError, match=r"video9\.txt, line 3: more values than the 2"):
        read_affwild2_au(bad)
    write_text(bad, "valence,arousal\n0.1,0.2\n")
    with pytest.raises(ValueError, match="first line must be the AU header"):
        read_affwild2_au(bad)
    write_text(bad, "AU1,AU2\n1,9\n")
    with pytest.raises(ValueError, match=r"video9\.txt column 'AU2'.*found \[9\]"):
        read_affwild2_au(bad)


# ============================================================== manifest
@pytest.mark.parametrize("dataset_name", ["bp4d", "disfa", "ck+", "aff-wild2"])
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_manifest_round_trip_for_every_loader(dataset_name, request, tmp_path):
    fixture = {
        "bp4d": "bp4d_root",
        "disfa": "disfa_root",
        "ck+": "ckplus_root",
        "aff-wild2": "affwild2_root",
    }[dataset_name]
    root = request.getfixturevalue(fixture)
    csv = tmp_path / "out" / "manifest.csv"
    loaded = write_manifest(dataset_name, root, csv)
    back = load_manifest(csv, name=loaded.name)
    assert back.paths.tolist() == loaded.paths.tolist()
    pd.testing.assert_frame_equal(back.labels, loaded.labels)
    assert back.subjects.tolist() == loaded.subjects.tolist()
    assert (back.tasks is None) == (loaded.tasks is None)
    if loaded.tasks is not None:
        assert back.tasks.tolist() == loaded.tasks.tolist()  # "001" stays a string
    assert back.frames.tolist() == loaded.frames.tolist()
    assert list(back.metadata.columns) == list(loaded.metadata.columns)
    for column in loaded.metadata:
        assert (
            back.metadata[column].fillna("").tolist()
            == loaded.metadata[column].fillna("").tolist()
        )
    relative = AUDataset.from_manifest(loaded.to_manifest(root / "rel.csv", relative_to=root))
    assert relative.paths.tolist() == loaded.paths.tolist()
    assert not Path(pd.read_csv(root / "rel.csv")["path"][0]).is_absolute()


def test_load_manifest_generic_csv(tmp_path):
    csv = tmp_path / "mine.csv"
    write_text(
        csv,
        "image,person,session,AU 1,au12,12x,note\n"
        "a.png,p1,001,1,,x,hi\n/abs/b.png,p2,002,0,1,y,\n",
    )
    ds = load_manifest(csv, path_col="image", subject_col="person", task_col="session")
    assert ds.paths.tolist() == [str(tmp_path / "a.png"), "/abs/b.png"]
    assert ds.tasks.tolist() == ["001", "002"] and ds.frames is None
    assert_labels(ds, {"AU01": [1, 0], "AU12": [NAN, 1]})
    assert list(ds.metadata.columns) == ["12x", "note"]
    write_text(csv, "path,subject,AU1,AU2\na.png,p1,NaN,yes\n")
    with pytest.raises(ValueError, match=r"column 'AU2': non-numeric label values \['yes'\]"):
        load_manifest(csv)
    write_text(csv, "path,subject,AU1\na.png,p1,NaN\nb.png,p1, 1\n")
    assert_labels(load_manifest(csv), {"AU01": [NAN, 1]})
    write_text(csv, "path,subject,AU1\na.png,p1,9\n")
    with pytest.raises(ValueError, match=r"mine\.csv column 'AU1'.*\[9\].*unknown_values"):
        load_manifest(csv)
    assert np.isnan(load_manifest(csv, unknown_values=[9]).labels["AU01"][0])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("path,AU1\na.png,1\n", "no 'subject' column"),
        ("path,subject,emotion\na.png,p,x\n", "no AU label column"),
        ("path,subject,AU1,1\na.png,p,1,1\n", "several columns for AU01"),
        ("path,subject,AU1\n,p,1\n", "empty path or subject in data row 1"),
    ],
)
def test_load_manifest_errors(tmp_path, text, message):
    csv = tmp_path / "bad.csv"
    write_text(csv, text)
    with pytest.raises(ValueError, match=message):
        load_manifest(csv)


def test_load_dataset_names(tmp_path, bp4d_root):
    with pytest.raises(ValueError, match="Unknown data set 'gft'"):
        load_dataset("gft", tmp_path)
    ds = load_dataset("BP4D", bp4d_root, subjects=["F001"])
    assert set(ds.subjects) == {"F001"}
