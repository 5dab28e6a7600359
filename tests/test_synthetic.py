"""Synthetic AU faces: contract, determinism, label structure, domains, rendering."""

import numpy as np
import pandas as pd
import pytest

from sklearn_corrloss.datasets import _render
from sklearn_corrloss.datasets.synthetic import (
    ALL_AUS,
    BP4D_TASKS,
    DEFAULT_AUS,
    DOMAINS,
    make_au_faces,
    make_au_labels,
)
from sklearn_corrloss.metrics import label_correlation


@pytest.fixture(scope="module")
def small():
    return {d: make_au_faces(n_subjects=3, n_frames=16, domain=d, image_size=48, random_state=0)
            for d in DOMAINS}  # fmt: skip


@pytest.fixture(scope="module")
def moderate():
    """Labels of 20 subjects x 60 frames per domain (the same as make_au_faces gives)."""
    return {d: make_au_labels(n_subjects=20, n_frames=60, domain=d, random_state=0)
            for d in DOMAINS}  # fmt: skip


def test_module_constants():
    assert list(BP4D_TASKS) == [f"T{i}" for i in range(1, 9)]
    assert BP4D_TASKS["T1"].startswith("happiness") and "pain" in BP4D_TASKS["T6"]
    assert DOMAINS == ("lab", "lab_gray", "wild")
    assert set(DEFAULT_AUS) < set(ALL_AUS) and len(DEFAULT_AUS) == 12


@pytest.mark.parametrize("domain", DOMAINS)
def test_shapes_dtypes_and_fields(small, domain):
    data = small[domain]
    n = 3 * 16
    assert data.images.shape == (n, 48, 48, 3) and data.images.dtype == np.uint8
    assert isinstance(data.labels, pd.DataFrame)
    assert list(data.labels.columns) == list(DEFAULT_AUS)
    assert data.labels.shape == (n, 12)
    assert all(dtype.kind == "i" for dtype in data.labels.dtypes)
    assert set(np.unique(data.labels.to_numpy())) <= {0, 1}
    assert data.intensities.shape == (n, 12)
    assert list(data.intensities.columns) == list(DEFAULT_AUS)
    assert data.intensities.to_numpy().min() >= 0 and data.intensities.to_numpy().max() <= 5
    assert data.subjects.shape == data.tasks.shape == data.sequences.shape == (n,)
    assert data.subjects.dtype.kind == "U" and data.tasks.dtype.kind == "U"
    assert data.sequences.dtype.kind == "i"
    assert data.boxes.shape == (n, 4) and data.boxes.dtype.kind == "i"
    assert data.domain == domain and domain in data.DESCR
    assert sorted(set(data.subjects)) == [f"{domain}-S00{i}" for i in (1, 2, 3)]


def test_subject_ids_never_shared_across_domains(small):
    ids = [set(small[d].subjects) for d in DOMAINS]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])


def test_tasks_and_sequences(small):
    data = small["lab"]
    for subject in np.unique(data.subjects):
        rows = data.subjects == subject
        assert sorted(set(data.tasks[rows])) == sorted(BP4D_TASKS)  # all eight tasks
        # one sequence per task, frames of a sequence are contiguous
        seqs = data.sequences[rows]
        assert len(np.unique(seqs)) == 8
        assert np.all(np.diff(seqs) >= 0)
    pairs = set(zip(data.sequences, data.subjects, data.tasks))
    assert len(pairs) == len(np.unique(data.sequences))  # a sequence = one subject, one task
    few = make_au_faces(n_subjects=2, n_frames=3, image_size=32, random_state=0)
    for subject in np.unique(few.subjects):
        assert len(set(few.tasks[few.subjects == subject])) == 3


def test_boxes_lie_inside_and_cover_the_face(small):
    for data in small.values():
        x, y, w, h = data.boxes.T
        assert np.all((x >= 0) & (y >= 0) & (w > 5) & (h > 5))
        assert np.all((x + w <= 48) & (y + h <= 48))
    lab = small["lab"]
    # the face is darker or lighter than its plain backdrop: pixels inside the box differ
    # from the corner pixel far more than the border does
    img, (x, y, w, h) = lab.images[0].astype(int), lab.boxes[0]
    inside = np.abs(img[y + h // 3 : y + 2 * h // 3, x + w // 3 : x + 2 * w // 3] - img[1, 1])
    assert inside.mean() > 10


def test_deterministic_and_seed_dependent():
    a = make_au_faces(n_subjects=2, n_frames=8, domain="wild", image_size=40, random_state=7)
    b = make_au_faces(n_subjects=2, n_frames=8, domain="wild", image_size=40, random_state=7)
    c = make_au_faces(n_subjects=2, n_frames=8, domain="wild", image_size=40, random_state=8)
    np.testing.assert_array_equal(a.images, b.images)
    pd.testing.assert_frame_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.boxes, b.boxes)
    assert not np.array_equal(a.images, c.images)
    rs = np.random.RandomState(3)
    d = make_au_faces(n_subjects=1, n_frames=8, image_size=32, random_state=rs)
    e = make_au_faces(n_subjects=1, n_frames=8, image_size=32, random_state=3)
    np.testing.assert_array_equal(d.images, e.images)


def test_labels_stable_across_image_size_subject_count_and_aus():
    small = make_au_faces(n_subjects=2, n_frames=10, image_size=32, random_state=1)
    large = make_au_faces(n_subjects=3, n_frames=10, image_size=64, random_state=1)
    pd.testing.assert_frame_equal(small.labels, large.labels.iloc[:20])
    pd.testing.assert_frame_equal(small.intensities, large.intensities.iloc[:20])
    picked = make_au_faces(n_subjects=2, n_frames=10, image_size=32, random_state=1,
                           aus=["AU12", "au6", "AU25"])  # fmt: skip
    assert list(picked.labels.columns) == ["AU12", "AU06", "AU25"]
    np.testing.assert_array_equal(picked.images, small.images)
    pd.testing.assert_series_equal(picked.labels["AU12"], small.labels["AU12"])


@pytest.mark.parametrize("domain", DOMAINS)
def test_make_au_labels_matches_make_au_faces(small, domain):
    faces = small[domain]
    labels = make_au_labels(n_subjects=3, n_frames=16, domain=domain, random_state=0)
    pd.testing.assert_frame_equal(labels.labels, faces.labels)
    pd.testing.assert_frame_equal(labels.intensities, faces.intensities)
    for key in ("subjects", "tasks", "sequences"):
        np.testing.assert_array_equal(labels[key], faces[key])
    assert "images" not in labels and "labels only" in labels.DESCR


def test_domains_draw_different_people():
    lab = make_au_faces(n_subjects=2, n_frames=8, domain="lab", image_size=32, random_state=0)
    gray = make_au_faces(n_subjects=2, n_frames=8, domain="lab_gray", image_size=32,
                         random_state=0)  # fmt: skip
    assert not lab.labels.equals(gray.labels)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"domain": "studio"}, "domain must be one of"),
        ({"aus": ["AU01", "AU99"]}, "AU99"),
        ({"aus": ["smile"]}, "aus must be a sequence of AU names"),
        ({"aus": ["AU01", "AU1"]}, "duplicates"),
        ({"aus": []}, "aus must name"),
        ({"n_subjects": 0}, "n_subjects must be an integer >= 1"),
        ({"n_frames": 2.5}, "n_frames must be an integer"),
        ({"image_size": 16}, "image_size must be an integer >= 32"),
    ],
)
def test_bad_parameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_au_faces(**{"n_subjects": 1, "n_frames": 2, **kwargs})


@pytest.mark.parametrize("domain", DOMAINS)
def test_label_correlations_have_real_structure(moderate, domain):
    corr = label_correlation(moderate[domain].labels)
    assert corr.loc["AU01", "AU02"] >= 0.5
    assert corr.loc["AU06", "AU12"] >= 0.4
    assert corr.loc["AU17", "AU24"] >= 0.25  # chin raiser with lip pressor
    assert corr.loc["AU04", "AU12"] < 0  # frown against smile
    upper = corr.to_numpy()[np.triu_indices(12, 1)]
    assert (np.abs(upper) < 0.05).sum() >= 5  # many pairs are unrelated
    assert (upper < -0.1).sum() >= 2  # and some are clearly negative


def test_tasks_recruit_their_prototype_aus(moderate):
    data = moderate["lab"]
    rate = data.labels.groupby(data.tasks).mean()
    assert rate.loc["T1", "AU12"] > 2 * rate.drop("T1")["AU12"].mean()  # happiness smiles
    assert rate.loc["T3", "AU02"] == rate["AU02"].max()  # surprise raises the outer brows
    assert rate.loc["T6", ["AU04", "AU07"]].min() > 0.5  # pain: brow lowering, lid tightening
    assert rate.loc["T7", "AU23"] > rate.loc["T1", "AU23"]  # anger tightens the lips


def test_frame_coded_labels_follow_intensity(moderate):
    data = moderate["lab"]
    present = data.intensities.to_numpy() >= 1.0
    agreement = (present == data.labels.to_numpy().astype(bool)).mean()
    assert 0.93 < agreement < 1.0  # label noise, but mostly what the image shows
    changes = data.labels.groupby(data.sequences).nunique().max(axis=1)
    assert (changes > 1).mean() > 0.5  # onsets and offsets change labels within sequences


def test_lab_gray_is_grayscale_and_sequence_coded(moderate, small):
    images = small["lab_gray"].images
    assert np.array_equal(images[..., 0], images[..., 1])
    assert np.array_equal(images[..., 0], images[..., 2])
    colour = small["lab"].images.astype(int)
    assert np.abs(colour[..., 0] - colour[..., 2]).mean() > 5
    data = moderate["lab_gray"]
    assert (data.labels.groupby(data.sequences).nunique() == 1).to_numpy().all()
    assert (data.intensities.groupby(data.sequences).nunique() > 1).to_numpy().any()
    # frames go from neutral to the apex: the first frame shows less than the last
    totals = data.intensities.sum(axis=1).groupby(data.sequences)
    assert (totals.first() < totals.last()).mean() > 0.95


def test_wild_differs_from_lab(small):
    lab, wild = small["lab"], small["wild"]

    def sharpness(images):
        gray = images.astype(float).mean(axis=3)
        return np.abs(np.diff(gray, axis=2)).mean()

    def centre_spread(data):
        x, y, w, h = data.boxes.T.astype(float)
        return np.std(x + w / 2) + np.std(y + h / 2)

    assert centre_spread(wild) > 2 * centre_spread(lab)  # faces move about in the wild
    lab_face = np.median(lab.boxes[:, 2] * lab.boxes[:, 3])
    assert np.median(wild.boxes[:, 2] * wild.boxes[:, 3]) < lab_face  # and are smaller
    assert sharpness(wild.images) != sharpness(lab.images)


# --- renderer: each AU moves its own region -----------------------------------------------
UPPER = ("AU01", "AU02", "AU04", "AU05", "AU06", "AU07", "AU43")
LOWER = ("AU10", "AU12", "AU14", "AU15", "AU17", "AU23", "AU24", "AU25", "AU26")


def _draw(idt, au=None, strength=1.0, size=128):
    img = np.full((size, size, 3), 128, np.uint8)
    a = np.zeros(len(ALL_AUS))
    if au is not None:
        a[ALL_AUS.index(au)] = strength
    box = _render.render_head(img, idt, a, (0.0, 0.0, 0.0), size * 0.3, (size / 2, size / 2))
    return img.astype(int), box


@pytest.mark.parametrize("au", ALL_AUS)
def test_each_au_changes_its_own_region(au):
    idt = _render.sample_identity(np.random.default_rng(5))
    neutral, _ = _draw(idt)
    moved, _ = _draw(idt, au)
    diff = np.abs(moved - neutral).sum(axis=2)
    assert diff.sum() > 0, f"{au} leaves the face unchanged"
    rows = np.nonzero(diff.sum(axis=1))[0]
    centre = (rows * diff.sum(axis=1)[rows]).sum() / diff.sum()
    eye_line = 64 + 0.3 * 128 * idt["ey"]
    if au in UPPER:
        assert centre < eye_line + 0.3 * 128 * 0.25, au
    elif au in LOWER:
        assert centre > eye_line + 0.3 * 128 * 0.35, au
    weak, _ = _draw(idt, au, strength=0.3)
    assert np.abs(weak - neutral).sum() < diff.sum()  # graded intensity


def test_identities_differ():
    rng = np.random.default_rng(0)
    a, b = _render.sample_identity(rng), _render.sample_identity(rng)
    img_a, _ = _draw(a)
    img_b, _ = _draw(b)
    assert np.abs(img_a - img_b).mean() > 5
