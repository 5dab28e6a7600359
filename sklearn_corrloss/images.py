"""Image input for the AU classifier: reading, checking, resizing, augmentation, datasets.

Images enter the networks as ``uint8`` tensors of shape (3, H, W) in RGB order; the
conversion to normalised floats happens inside the network (see
:class:`sklearn_corrloss.networks.ImageNormalize`), so the statistics always match the
backbone's weights and batches cross to an accelerator at a quarter of the float size.
Paths are read lazily, one image per ``__getitem__``, so a :class:`~torch.utils.data.DataLoader`
with workers streams data sets larger than memory.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision.transforms import v2

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "ImageDataset",
    "TransformedDataset",
    "check_image_input",
    "default_augmentation",
    "image_to_tensor",
    "read_image",
]

#: Channel means of ImageNet in RGB order, as used by torchvision's pretrained weights.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
#: Channel standard deviations of ImageNet in RGB order.
IMAGENET_STD = (0.229, 0.224, 0.225)


def read_image(path) -> np.ndarray:
    """Read an image file as an RGB ``uint8`` array of shape (H, W, 3).

    Grayscale files are expanded to three channels. Any format OpenCV decodes
    (JPEG, PNG, BMP, TIFF, ...) is accepted.

    Parameters
    ----------
    path : str or os.PathLike
        Image file.

    Returns
    -------
    ndarray of shape (H, W, 3), dtype uint8

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If the file exists but cannot be decoded as an image; the message names it.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = os.path.join(folder, "face.png")
    ...     _ = cv2.imwrite(path, np.zeros((4, 6, 3), dtype=np.uint8))
    ...     read_image(path).shape
    (4, 6, 3)
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Image file not found: {path!r}.")
    # np.fromfile + imdecode copes with non-ASCII paths on every platform.
    data = np.fromfile(path, dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise ValueError(f"Cannot decode image file {path!r}: not an image OpenCV can read.")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _is_path_sequence(X) -> bool:
    if isinstance(X, (str, bytes, os.PathLike)):
        return False
    if hasattr(X, "to_numpy") and getattr(X, "ndim", None) == 1:  # pandas Series
        X = X.to_numpy()
    if isinstance(X, np.ndarray):
        return (
            X.ndim == 1
            and X.dtype.kind in "USO"
            and all(isinstance(x, (str, os.PathLike)) for x in X)
        )
    if isinstance(X, Sequence):
        return len(X) > 0 and all(isinstance(x, (str, os.PathLike)) for x in X)
    return False


def check_image_input(X, *, check_files: bool = True):
    """Validate image input and return it as an array of images or an array of paths.

    Parameters
    ----------
    X : ndarray, list of str, or pandas Series
        ``uint8`` images of shape (N, H, W, 3) (RGB) or (N, H, W) (grayscale), or a
        1-D array/list of image file paths.
    check_files : bool, default=True
        For paths: check that every file exists and has a format OpenCV can decode
        (only the file header is read, the images are not loaded).

    Returns
    -------
    X : ndarray
        (N, H, W, 3) or (N, H, W) ``uint8`` images, or a 1-D object array of ``str`` paths.
    is_paths : bool

    Raises
    ------
    ValueError
        Empty input, wrong rank, wrong dtype or channel count, missing or unreadable
        files; the message names the problem (and the first offending files).

    Examples
    --------
    >>> images, is_paths = check_image_input(np.zeros((2, 8, 8, 3), dtype=np.uint8))
    >>> images.shape, is_paths
    ((2, 8, 8, 3), False)
    """
    if _is_path_sequence(X):
        paths = np.asarray([os.fspath(p) for p in np.asarray(X, dtype=object)], dtype=object)
        if paths.size == 0:
            raise ValueError("X is an empty list of image paths.")
        if check_files:
            missing = [p for p in paths if not os.path.isfile(p)]
            if missing:
                raise ValueError(f"{len(missing)} image file(s) not found, e.g. {missing[:3]!r}.")
            unreadable = [p for p in paths if not cv2.haveImageReader(p)]
            if unreadable:
                raise ValueError(
                    f"{len(unreadable)} file(s) are not images OpenCV can read, "
                    f"e.g. {unreadable[:3]!r}."
                )
        return paths, True
    if isinstance(X, torch.Tensor):
        X = X.numpy()
    if isinstance(X, (list, tuple)) and X and all(isinstance(x, np.ndarray) for x in X):
        shapes = sorted({x.shape for x in X})
        if len(shapes) > 1:
            raise ValueError(
                f"A list of images must share one shape to be stacked, got shapes {shapes[:3]}; "
                "resize them first or pass image file paths."
            )
        X = np.stack(X)
    if not isinstance(X, np.ndarray):
        raise ValueError(
            "X must be a uint8 image array of shape (N, H, W, 3) or (N, H, W), or a 1-D "
            f"list/array of image file paths; got {type(X).__name__}."
        )
    if X.ndim == 4 and X.shape[-1] == 1:
        X = X[..., 0]
    if X.ndim not in (3, 4):
        raise ValueError(
            "X must be a uint8 image array of shape (N, H, W, 3) or (N, H, W), or a 1-D "
            f"array of image file paths; got an array of rank {X.ndim} with shape {X.shape}."
        )
    if X.ndim == 4 and X.shape[-1] != 3:
        raise ValueError(
            f"Colour images must have 3 channels last (N, H, W, 3, RGB); got shape {X.shape}."
        )
    if X.dtype != np.uint8:
        raise ValueError(
            f"Image arrays must have dtype uint8 (values 0..255), got {X.dtype}; "
            "convert float images in [0, 1] with (X * 255).round().astype(np.uint8)."
        )
    if X.shape[0] == 0 or X.shape[1] == 0 or X.shape[2] == 0:
        raise ValueError(f"X contains no image pixels: shape {X.shape}.")
    return X, False


def image_to_tensor(image: np.ndarray) -> torch.Tensor:
    """(H, W, 3) or (H, W) ``uint8`` array -> (3, H, W) ``uint8`` tensor.

    Parameters
    ----------
    image : ndarray of shape (H, W, 3) or (H, W)
        An RGB or grayscale image.

    Returns
    -------
    torch.Tensor of shape (3, H, W)
        Channels first; a grayscale image's channel is repeated three times.

    Examples
    --------
    >>> image_to_tensor(np.zeros((4, 5), dtype=np.uint8)).shape
    torch.Size([3, 4, 5])
    """
    tensor = torch.from_numpy(np.ascontiguousarray(image))
    if tensor.ndim == 2:  # grayscale: repeat the channel
        return tensor.unsqueeze(0).expand(3, -1, -1).contiguous()
    return tensor.permute(2, 0, 1).contiguous()


def default_augmentation() -> v2.Compose:
    """Slight training-time augmentation for aligned face crops.

    A small random affine transform (rotation up to 5 degrees, shift up to 5 %, scale
    0.95-1.05), a horizontal flip and a slight change of brightness and contrast, as a
    :mod:`torchvision.transforms.v2` pipeline on ``uint8`` (3, H, W) tensors.

    Returns
    -------
    torchvision.transforms.v2.Compose
        The random transform (a new one per call).

    Examples
    --------
    >>> augment = default_augmentation()
    >>> augment(torch.zeros(3, 8, 8, dtype=torch.uint8)).dtype
    torch.uint8
    """
    return v2.Compose(
        [
            v2.RandomHorizontalFlip(),
            v2.RandomAffine(degrees=5, translate=(0.05, 0.05), scale=(0.95, 1.05)),
            v2.ColorJitter(brightness=0.1, contrast=0.1),
        ]
    )


class ImageDataset(Dataset):
    """Torch dataset over images in memory or on disk, resized to a square.

    Items are ``(image, label)`` with ``image`` a (3, S, S) ``uint8`` RGB tensor. Files
    are decoded lazily in ``__getitem__``; with a :class:`~torch.utils.data.DataLoader`
    and ``num_workers > 0`` they are read in parallel, batch by batch.

    Parameters
    ----------
    X : ndarray or array of str
        Output of :func:`check_image_input`: (N, H, W, 3) / (N, H, W) ``uint8`` images
        or a 1-D array of paths.
    y : array-like of shape (N, U), optional
        Labels (float, NaN for unknown). Without labels a dummy 0 is returned.
    image_size : int, default=224
        Side S of the square the images are resized to (antialiased bilinear).
    transform : callable, optional
        Applied to the resized ``uint8`` tensor (for example augmentation).

    Examples
    --------
    >>> ds = ImageDataset(np.zeros((2, 10, 12, 3), dtype=np.uint8), image_size=8)
    >>> ds[0][0].shape, len(ds)
    (torch.Size([3, 8, 8]), 2)
    """

    def __init__(self, X, y=None, *, image_size: int = 224, transform: Callable | None = None):
        self.X = X
        self.y = None if y is None else torch.as_tensor(np.asarray(y, dtype=np.float32))
        self.image_size = int(image_size)
        self.transform = transform
        self.is_paths = isinstance(X, np.ndarray) and X.dtype == object
        self._resize = v2.Resize((self.image_size, self.image_size), antialias=True)

    def __len__(self) -> int:
        return len(self.X)

    def load(self, i: int) -> torch.Tensor:
        """Image ``i`` as a resized (3, S, S) ``uint8`` tensor, without ``transform``.

        Parameters
        ----------
        i : int
            Index of the image.

        Returns
        -------
        torch.Tensor of shape (3, image_size, image_size)
            The RGB image (read from disk for paths).
        """
        image = read_image(self.X[i]) if self.is_paths else self.X[i]
        tensor = image_to_tensor(image)
        if tuple(tensor.shape[1:]) != (self.image_size, self.image_size):
            tensor = self._resize(tensor)
        return tensor

    def __getitem__(self, i):
        image = self.load(i)
        if self.transform is not None:
            image = self.transform(image)
        label = self.y[i] if self.y is not None else torch.zeros(())
        return image, label


class TransformedDataset(Dataset):
    """Apply ``transform`` to the input of every item of another dataset.

    Used to augment only the training part of a split (the validation part and
    prediction stay untouched).

    Parameters
    ----------
    dataset : torch Dataset
        Items ``(input, label)``.
    transform : callable
        Applied to each ``input``; ``label`` passes unchanged.

    Examples
    --------
    >>> base = ImageDataset(np.zeros((2, 8, 8, 3), dtype=np.uint8), image_size=8)
    >>> flipped = TransformedDataset(base, v2.RandomHorizontalFlip(p=1.0))
    >>> flipped[1][0].shape
    torch.Size([3, 8, 8])
    """

    def __init__(self, dataset: Dataset, transform: Callable):
        self.dataset = dataset
        self.transform = transform

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i):
        image, label = self.dataset[i]
        return self.transform(image), label
