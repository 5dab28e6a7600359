"""Frozen-trunk feature cache: push each image through the frozen trunk once, reuse it.

With a frozen trunk (VGG16 up to ``block5_conv3`` in the paper) the trunk's output for an
image is the same in every epoch, every fold and for every ``rho``; only the trainable tail
and head need the image each time. :class:`FeatureCache` stores that output per image so
that :class:`~sklearn_corrloss.classifier.CorrLossAUClassifier` computes it once and then
trains on the stored features (for VGG16 on a CPU a training step of the tail alone is
about 15 times cheaper than one through the whole network).

A stored row is found by two keys:

* the **trunk key** (:func:`trunk_key`): a SHA-256 over the trunk's and the input
  normalisation's tensors (so the weights, whether random with a seed, ImageNet or a file,
  and the freeze point are part of it), the backbone name, the image size, the computation
  precision and the storage dtype;
* the **image key** (:func:`image_keys`): the absolute path, size and modification time of
  an image file, or a SHA-256 of an in-memory image's pixels.

Changing any of them computes new features; nothing stale is ever read. The process-wide
:data:`FEATURE_CACHE` holds the stores, so clones made by ``GridSearchCV`` or
``cross_validate`` share them. In memory, stores beyond ``max_memory`` are dropped least
recently used first; on disk (``cache_dir``) every store is a folder of ``.npy`` parts that
other processes (``n_jobs``) and later runs reuse.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import threading
import time
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset, Subset

from ._atomic import atomic_output

__all__ = [
    "CACHE_DTYPES",
    "FEATURE_CACHE",
    "CachedFeatures",
    "FeatureCache",
    "FeatureCacheFull",
    "clear_feature_cache",
    "fill",
    "image_keys",
    "trunk_key",
]

#: Storage dtypes of cached features.
CACHE_DTYPES = ("float32", "float16")

_KEY_CHARS = 32  # hex characters kept of a SHA-256 (128 bits)


class FeatureCacheFull(MemoryError):
    """The features do not fit the in-memory budget or the free disk space.

    The estimators catch it and train without the cache (``feature_cache="auto"``) or
    re-raise it with advice (``feature_cache=True``).

    Examples
    --------
    >>> from torch.utils.data import TensorDataset
    >>> from sklearn_corrloss.networks import BackboneNet
    >>> net = BackboneNet(backbone="small_cnn", n_outputs=2).eval()
    >>> dataset = TensorDataset(torch.zeros(2, 3, 32, 32), torch.zeros(2, 2))
    >>> cache = FeatureCache(max_memory=1)  # one byte: nothing fits
    >>> store = cache.store("k", {"dtype": "float32"})
    >>> try:
    ...     fill(store, net, dataset, np.array(["a", "b"]), batch_size=2, cache=cache)
    ... except FeatureCacheFull as error:
    ...     print("full:", "budget" in str(error))
    full: True
    >>> len(store)
    0
    """


def _default_max_memory() -> int:
    """A quarter of the physical memory (2 GiB where it cannot be read)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")) // 4
    except (AttributeError, ValueError, OSError):
        return 2 * 2**30


def _format_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB"):
        if n < 1024:
            return f"{n:.0f} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


# --- keys -------------------------------------------------------------------------------------
def image_keys(X) -> np.ndarray:
    """One identity key per image: path, size and modification time, or a pixel hash.

    Parameters
    ----------
    X : ndarray
        Validated image input (see :func:`~sklearn_corrloss.images.check_image_input`):
        a 1-D object array of paths, or ``uint8`` images (N, H, W, 3) / (N, H, W).

    Returns
    -------
    ndarray of str, shape (N,)
        Equal keys mean the same image content (for files: the same file, unchanged).

    Raises
    ------
    FileNotFoundError
        If a path does not exist.

    Examples
    --------
    >>> images = np.zeros((3, 4, 4, 3), dtype=np.uint8)
    >>> images[2, 0, 0, 0] = 1
    >>> keys = image_keys(images)
    >>> bool(keys[0] == keys[1]), bool(keys[0] == keys[2])
    (True, False)
    """
    X = np.asarray(X) if not isinstance(X, np.ndarray) else X
    keys = np.empty(len(X), dtype=f"<U{_KEY_CHARS}")
    if X.dtype == object:  # paths
        for i, path in enumerate(X):
            path = os.path.abspath(os.fspath(path))
            try:
                stat = os.stat(path)
            except FileNotFoundError:
                raise FileNotFoundError(f"Image file not found: {path!r}.") from None
            token = f"file\0{path}\0{stat.st_size}\0{stat.st_mtime_ns}".encode()
            keys[i] = hashlib.sha256(token).hexdigest()[:_KEY_CHARS]
        return keys
    for i, image in enumerate(X):
        digest = hashlib.sha256(f"array\0{image.shape}\0{image.dtype.str}\0".encode())
        digest.update(memoryview(np.ascontiguousarray(image)).cast("B"))
        keys[i] = digest.hexdigest()[:_KEY_CHARS]
    return keys


_TRUNK_MEMO: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _tensor_bytes(tensor: torch.Tensor) -> memoryview:
    flat = tensor.detach().to("cpu").contiguous().reshape(-1)
    return memoryview(flat.view(torch.uint8).numpy()).cast("B")


def trunk_key(
    module,
    *,
    backbone: str,
    image_size: int,
    precision: str = "fp32",
    dtype: str = "float32",
) -> tuple[str, dict]:
    """Identity of a frozen trunk's output: what the cached features depend on.

    Parameters
    ----------
    module : BackboneNet
        Network with ``normalize`` and ``trunk`` submodules.
    backbone : str
    image_size : int
    precision : {"fp32", "bf16", "fp16"}, default="fp32"
        Precision the trunk runs in.
    dtype : {"float32", "float16"}, default="float32"
        Storage dtype of the features.

    Returns
    -------
    key : str
        32 hex characters of a SHA-256 over the description below and every tensor
        (parameters and buffers) of the trunk and of the input normalisation.
    description : dict
        Human-readable parts of the key: ``backbone``, ``trunk`` (its stage names),
        ``image_size``, ``precision``, ``dtype`` and ``weights`` (hash of the tensors).

    Examples
    --------
    >>> from sklearn_corrloss.networks import BackboneNet
    >>> _ = torch.manual_seed(0)
    >>> net = BackboneNet(backbone="small_cnn", n_outputs=2)
    >>> key, description = trunk_key(net, backbone="small_cnn", image_size=32)
    >>> sorted(description)
    ['backbone', 'dtype', 'image_size', 'precision', 'trunk', 'weights']
    >>> key == trunk_key(net, backbone="small_cnn", image_size=64)[0]
    False
    """
    tensors = [
        *(("normalize." + k, v) for k, v in module.normalize.named_buffers()),
        *(("trunk." + k, v) for k, v in module.trunk.named_parameters()),
        *(("trunk." + k, v) for k, v in module.trunk.named_buffers()),
    ]
    # Hashing VGG16's trunk (59 MB) takes about 0.1 s; a module whose tensors are the same
    # objects, unchanged since (same version counters), reuses its last hash.
    fingerprint = tuple(
        (name, id(t), t.data_ptr(), t._version, tuple(t.shape), str(t.dtype), str(t.device))
        for name, t in tensors
    )
    memo = _TRUNK_MEMO.get(module)
    if memo is not None and memo[0] == fingerprint:
        weights = memo[1]
    else:
        digest = hashlib.sha256()
        for name, tensor in tensors:
            digest.update(f"{name}\0{tuple(tensor.shape)}\0{tensor.dtype}\0".encode())
            digest.update(_tensor_bytes(tensor))
        weights = digest.hexdigest()[:_KEY_CHARS]
        _TRUNK_MEMO[module] = (fingerprint, weights)
    description = {
        "backbone": str(backbone),
        "trunk": [name for name, _ in module.trunk.named_children()],
        "image_size": int(image_size),
        "precision": str(precision),
        "dtype": str(dtype),
        "weights": weights,
    }
    token = json.dumps(description, sort_keys=True).encode()
    return hashlib.sha256(token).hexdigest()[:_KEY_CHARS], description


# --- stores -----------------------------------------------------------------------------------
class _Store:
    """Features of one trunk key: image key -> (part, row)."""

    location = "memory"

    def __init__(self, key: str, description: dict):
        self.key = key
        self.description = dict(description)
        self.dtype = np.dtype(description["dtype"])
        self.index: dict[str, tuple[int, int]] = {}
        self.lock = threading.RLock()
        self.nbytes = 0
        self.row_shape: tuple[int, ...] | None = None

    def __len__(self) -> int:
        return len(self.index)

    def locate(self, keys: Sequence[str]) -> list:
        """(part, row) per key, None where absent."""
        return [self.index.get(k) for k in keys]

    def row_nbytes(self) -> int | None:
        if self.row_shape is None:
            return None
        return int(np.prod(self.row_shape)) * self.dtype.itemsize

    def writer(self, keys: Sequence[str], row_shape: tuple[int, ...]):
        """A part of ``len(keys)`` rows, written batch by batch, added on ``commit()``."""
        raise NotImplementedError

    def add(self, keys: Sequence[str], features: np.ndarray) -> None:
        """Store ``features`` (one row per key) as one part."""
        writer = self.writer(keys, tuple(features.shape[1:]))
        writer.write(features)
        writer.commit()

    def read(self, location: tuple[int, int]) -> np.ndarray:
        raise NotImplementedError


class _MemoryWriter:
    def __init__(self, store: _MemoryStore, keys, row_shape):
        self.store, self.keys = store, list(keys)
        self.array = np.empty((len(self.keys), *row_shape), dtype=store.dtype)
        self.n = 0

    def write(self, batch: np.ndarray) -> None:
        self.array[self.n : self.n + len(batch)] = batch
        self.n += len(batch)

    def commit(self) -> None:
        if self.n != len(self.keys):
            raise ValueError(f"Wrote {self.n} rows for {len(self.keys)} keys.")
        self.store._add_part(self.keys, self.array)

    def abort(self) -> None:
        self.array = None


class _MemoryStore(_Store):
    def __init__(self, key, description):
        super().__init__(key, description)
        self.parts: list[np.ndarray] = []

    def writer(self, keys, row_shape):
        return _MemoryWriter(self, keys, row_shape)

    def _add_part(self, keys, features: np.ndarray) -> None:
        with self.lock:
            self.row_shape = tuple(features.shape[1:])
            part = len(self.parts)
            self.parts.append(features)
            self.nbytes += features.nbytes
            for row, key in enumerate(keys):
                self.index.setdefault(str(key), (part, row))

    def read(self, location):
        part, row = location
        return self.parts[part][row]


#: Seconds after which a temporary file or a part without keys counts as left by a killed
#: writer (no write takes this long; a live writer in another process is never touched).
_STALE_AFTER = 24 * 3600


def _remove_stale_files(directory: Path, max_age: float = _STALE_AFTER) -> list[Path]:
    """Delete what killed writers left in a cache folder, once it is ``max_age`` seconds old.

    That is temporary files (``.*.tmp``) and data parts whose keys file was never written
    (such parts are never read, so they only take space).
    """
    now = time.time()
    candidates = list(directory.glob(".*.tmp*")) + [
        part
        for part in directory.glob("part-*.npy")
        if not part.name.endswith(".keys.npy")
        and not part.with_name(part.name.removesuffix(".npy") + ".keys.npy").exists()
    ]
    removed = []
    for path in candidates:
        with contextlib.suppress(OSError):  # another process may remove it first
            if now - path.stat().st_mtime > max_age:
                path.unlink()
                removed.append(path)
    return removed


class _DiskStore(_Store):
    """A folder of ``part-*.npy`` feature files, each with a ``part-*.keys.npy`` file.

    A part is complete once its keys file exists (written last, by an atomic rename), so
    several processes can add parts to the same folder. Rows are read with positional
    reads rather than kept mapped, so a process's resident memory does not grow with the
    number of images read; the operating system's page cache keeps hot parts in RAM.
    The ``.npy`` files open with ``np.load(path, mmap_mode="r")`` for inspection.
    """

    def __init__(self, key, description, directory: Path):
        super().__init__(key, description)
        self.location = str(directory)
        self.directory = directory
        self.parts: list[tuple[str, int]] = []  # (file, byte offset of the data)
        self._loaded: set[str] = set()
        self._files: dict[int, int] = {}
        self._pid = os.getpid()
        directory.mkdir(parents=True, exist_ok=True)
        _remove_stale_files(directory)
        meta = directory / "meta.json"
        if not meta.exists():
            with atomic_output(meta) as tmp:
                tmp.write_text(json.dumps(description, indent=2), encoding="utf-8")
        self.refresh()

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_files"], state["lock"] = {}, None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.lock = threading.RLock()

    def __del__(self):
        for fd in getattr(self, "_files", {}).values():
            if getattr(self, "_pid", None) == os.getpid():
                with contextlib.suppress(OSError):
                    os.close(fd)

    def refresh(self) -> None:
        """Pick up parts written since (by this or another process)."""
        with self.lock:
            for keys_file in sorted(self.directory.glob("part-*.keys.npy")):
                name = keys_file.name.removesuffix(".keys.npy")
                if name in self._loaded:
                    continue
                data_file = self.directory / f"{name}.npy"
                try:
                    keys = np.load(keys_file)
                    data = np.load(data_file, mmap_mode="r")
                except (OSError, ValueError) as error:
                    raise ValueError(
                        f"Damaged feature cache file in {self.directory}: {error}; delete the "
                        "folder to rebuild it."
                    ) from error
                if data.dtype != self.dtype or len(data) != len(keys):
                    raise ValueError(
                        f"Feature cache part {data_file} holds {len(data)} rows of "
                        f"{data.dtype} for {len(keys)} keys, expected {self.dtype}; delete the "
                        "folder to rebuild it."
                    )
                self.row_shape = tuple(data.shape[1:])
                part = len(self.parts)
                self.parts.append((str(data_file), int(data.offset)))
                self.nbytes += data.nbytes
                del data
                for row, key in enumerate(keys):
                    self.index.setdefault(str(key), (part, row))
                self._loaded.add(name)

    def writer(self, keys, row_shape):
        return _DiskWriter(self, keys, row_shape)

    def _fd(self, part: int) -> int:
        if self._pid != os.getpid():  # a forked DataLoader worker: its own descriptors
            self._files, self._pid = {}, os.getpid()
        fd = self._files.get(part)
        if fd is None:
            fd = self._files[part] = os.open(self.parts[part][0], os.O_RDONLY)
        return fd

    def read(self, location):
        part, row = location
        nbytes = self.row_nbytes()
        offset = self.parts[part][1] + row * nbytes
        if hasattr(os, "pread"):
            data = os.pread(self._fd(part), nbytes, offset)
        else:  # Windows: no positional read
            with open(self.parts[part][0], "rb") as f:
                f.seek(offset)
                data = f.read(nbytes)
        if len(data) != nbytes:
            raise ValueError(f"Feature cache file {self.parts[part][0]} is truncated.")
        return np.frombuffer(data, dtype=self.dtype).reshape(self.row_shape)


class _DiskWriter:
    """Streams rows into a temporary ``.npy`` file (memory: one batch), then publishes it."""

    def __init__(self, store: _DiskStore, keys, row_shape):
        self.store, self.keys = store, np.asarray(keys, dtype=f"<U{_KEY_CHARS}")
        self.name = f"part-{uuid.uuid4().hex}"
        self.path = store.directory / f"{self.name}.npy"
        self.tmp = store.directory / f".{self.name}.npy.tmp"
        self.n = 0
        self.file = open(self.tmp, "wb")  # noqa: SIM115 (closed in commit or abort)
        header = {
            "descr": np.lib.format.dtype_to_descr(store.dtype),
            "fortran_order": False,
            "shape": (len(self.keys), *row_shape),
        }
        np.lib.format.write_array_header_2_0(self.file, header)

    def write(self, batch: np.ndarray) -> None:
        self.file.write(memoryview(np.ascontiguousarray(batch, dtype=self.store.dtype)))
        self.n += len(batch)

    def commit(self) -> None:
        self.file.close()
        if self.n != len(self.keys):
            self.abort()
            raise ValueError(f"Wrote {self.n} rows for {len(self.keys)} keys.")
        with self.store.lock:
            os.replace(self.tmp, self.path)
            keys_path = self.store.directory / f"{self.name}.keys.npy"
            with atomic_output(keys_path) as tmp:  # written last: it completes the part
                np.save(tmp, self.keys)
            self.store.refresh()

    def abort(self) -> None:
        self.file.close()
        with contextlib.suppress(OSError):
            os.unlink(self.tmp)


class FeatureCache:
    """Process-wide store of frozen-trunk features, shared by all estimators and clones.

    Use the instance :data:`FEATURE_CACHE`; :class:`~sklearn_corrloss.classifier.
    CorrLossAUClassifier` reads and fills it (parameters ``feature_cache``, ``cache_dir``,
    ``cache_dtype``).

    Parameters
    ----------
    max_memory : int, optional
        Bytes of features kept in memory; the least recently used stores are dropped
        beyond it. Default: a quarter of the physical memory. Stores on disk
        (``cache_dir``) do not count.

    Examples
    --------
    >>> cache = FeatureCache(max_memory=2**20)
    >>> cache.info().columns.tolist()
    ['location', 'backbone', 'trunk_end', 'image_size', 'dtype', 'n_images', 'bytes']
    """

    def __init__(self, *, max_memory: int | None = None):
        self.max_memory = _default_max_memory() if max_memory is None else int(max_memory)
        self._stores: OrderedDict[tuple, _Store] = OrderedDict()
        self._lock = threading.RLock()

    def store(self, key: str, description: dict, cache_dir=None, *, create: bool = True):
        """The store of ``key`` in memory or under ``cache_dir``.

        An absent store is created, or with ``create=False`` None is returned (a folder
        on disk written by another process counts as present).

        Parameters
        ----------
        key : str
            The trunk key (from :func:`trunk_key`).
        description : dict
            What the key stands for (from :func:`trunk_key`); must hold ``dtype``, the
            storage dtype of the features.
        cache_dir : str, path or None, default=None
            None: a store in memory; a folder: a store on disk in ``cache_dir/key``.
        create : bool, default=True
            Create the store when it is absent.

        Returns
        -------
        store or None
            The store (used by :func:`fill` and :class:`CachedFeatures`), or None when
            it is absent and ``create=False``.
        """
        location = None if cache_dir is None else os.path.realpath(os.fspath(cache_dir))
        with self._lock:
            store = self._stores.get((location, key))
            if store is None:
                exists = location is not None and (Path(location) / key / "meta.json").exists()
                if not (create or exists):
                    return None
                if location is None:
                    store = _MemoryStore(key, description)
                else:
                    store = _DiskStore(key, description, Path(location) / key)
                self._stores[(location, key)] = store
            self._stores.move_to_end((location, key))
            return store

    def memory_bytes(self) -> int:
        """Bytes of features held in memory.

        Returns
        -------
        int
            The total over the in-memory stores (disk stores do not count).
        """
        with self._lock:
            return sum(s.nbytes for s in self._stores.values() if s.location == "memory")

    def reserve(self, store: _Store, nbytes: int) -> bool:
        """Make room for ``nbytes`` more in ``store``; False when it cannot fit.

        Disk stores always fit. For memory, other stores are dropped, least recently
        used first, until the total stays within ``max_memory``.

        Parameters
        ----------
        store : store
            A store from :meth:`store`.
        nbytes : int
            Bytes about to be added to it.

        Returns
        -------
        bool
            True when the bytes fit (within ``max_memory`` for a memory store).
        """
        if store.location != "memory":
            return True
        with self._lock:
            if store.nbytes + nbytes > self.max_memory:
                return False
            for other_key in list(self._stores):
                if self.memory_bytes() + nbytes <= self.max_memory:
                    break
                other = self._stores[other_key]
                if other is not store and other.location == "memory":
                    del self._stores[other_key]
            return self.memory_bytes() + nbytes <= self.max_memory

    def clear(self) -> None:
        """Forget every store (files on disk stay; they are found again by key)."""
        with self._lock:
            self._stores.clear()

    def info(self) -> pd.DataFrame:
        """One row per store: location, backbone, last frozen stage, image size, dtype,
        number of images and bytes.

        Returns
        -------
        DataFrame
            Columns ``location``, ``backbone``, ``trunk_end``, ``image_size``, ``dtype``,
            ``n_images`` and ``bytes``; least recently used store first.
        """
        rows = []
        with self._lock:
            for store in self._stores.values():
                trunk = store.description.get("trunk") or [None]
                rows.append(
                    {
                        "location": store.location,
                        "backbone": store.description.get("backbone"),
                        "trunk_end": trunk[-1],
                        "image_size": store.description.get("image_size"),
                        "dtype": store.description.get("dtype"),
                        "n_images": len(store),
                        "bytes": store.nbytes,
                    }
                )
        columns = ["location", "backbone", "trunk_end", "image_size", "dtype", "n_images", "bytes"]
        return pd.DataFrame(rows, columns=columns)


#: The process-wide cache used by :class:`~sklearn_corrloss.classifier.CorrLossAUClassifier`.
FEATURE_CACHE = FeatureCache()


def clear_feature_cache() -> None:
    """Free the in-memory features of :data:`FEATURE_CACHE` (files on disk stay).

    Examples
    --------
    >>> clear_feature_cache()
    >>> len(FEATURE_CACHE.info())
    0
    """
    FEATURE_CACHE.clear()


# --- computing and reading --------------------------------------------------------------------
def fill(
    store: _Store,
    module,
    dataset: Dataset,
    keys: np.ndarray,
    *,
    batch_size: int,
    device="cpu",
    autocast_dtype: torch.dtype | None = None,
    channels_last: bool = False,
    loader_kwargs: dict | None = None,
    progress: bool = False,
    cache: FeatureCache | None = None,
) -> int:
    """Compute the trunk output of the items of ``dataset`` whose key is not stored yet.

    Items with the same key are computed once. The loader has its own random generator,
    so filling never moves the global torch random state (results do not depend on
    whether the cache was warm).

    Parameters
    ----------
    store : store object
        From :meth:`FeatureCache.store`.
    module : BackboneNet
    dataset : Dataset
        Items ``(image, label)``, aligned with ``keys``.
    keys : array of str
        :func:`image_keys` of the items.
    batch_size : int
    device : str or torch.device, default="cpu"
    autocast_dtype : torch.dtype, optional
        Run the trunk under :func:`torch.autocast` with this dtype.
    channels_last : bool, default=False
    loader_kwargs : dict, optional
        More :class:`~torch.utils.data.DataLoader` arguments (``num_workers``, ...).
    progress : bool, default=False
        Show a tqdm progress bar.
    cache : FeatureCache, default=FEATURE_CACHE
        Where to reserve memory for an in-memory store.

    Returns
    -------
    int
        Number of images computed.

    Raises
    ------
    FeatureCacheFull
        The new features exceed the in-memory budget (``cache.max_memory``) or the free
        disk space. It is raised after at most one batch; nothing is stored then.

    Examples
    --------
    >>> from torch.utils.data import TensorDataset
    >>> from sklearn_corrloss.networks import BackboneNet
    >>> _ = torch.manual_seed(0)
    >>> net = BackboneNet(backbone="small_cnn", n_outputs=2).eval()
    >>> images = torch.randint(0, 255, (3, 3, 32, 32), dtype=torch.uint8)
    >>> dataset = TensorDataset(images, torch.zeros(3, 2))
    >>> cache = FeatureCache()
    >>> store = cache.store("small_cnn-32", {"dtype": "float32"})
    >>> fill(store, net, dataset, np.array(["a", "b", "a"]), batch_size=2, cache=cache)
    2
    >>> fill(store, net, dataset, np.array(["a", "b", "a"]), batch_size=2, cache=cache)
    0
    """
    cache = FEATURE_CACHE if cache is None else cache
    with store.lock:
        if isinstance(store, _DiskStore):
            store.refresh()
        missing: dict[str, int] = {}
        for position, (key, found) in enumerate(zip(keys, store.locate(keys))):
            if found is None:
                missing.setdefault(str(key), position)
        if not missing:
            return 0
        loader = DataLoader(
            Subset(dataset, list(missing.values())),
            batch_size=batch_size,
            shuffle=False,
            generator=torch.Generator(),
            **(loader_kwargs or {}),
        )
        missing_keys = list(missing)
        if store.row_nbytes() is not None:
            _reserve(cache, store, store.row_nbytes() * len(missing_keys))
        device = torch.device(device)
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(missing_keys), desc="Trunk features", unit="img")
        try:
            _fill_batches(
                store,
                module,
                loader,
                missing_keys,
                cache,
                device,
                autocast_dtype,
                channels_last,
                bar,
            )
        finally:
            if bar is not None:
                bar.close()
        return len(missing_keys)


def _fill_batches(
    store, module, loader, missing_keys, cache, device, autocast_dtype, channels_last, bar
) -> None:
    writer = None
    try:
        with torch.no_grad():
            for images, _ in loader:
                images = images.to(device, non_blocking=True)
                if channels_last and images.ndim == 4:
                    images = images.contiguous(memory_format=torch.channels_last)
                with torch.autocast(
                    device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None
                ):
                    features = module.forward_trunk(images)
                features = features.float().cpu().numpy().astype(store.dtype, copy=False)
                if not np.isfinite(features).all():
                    raise ValueError(
                        f"Trunk features overflow {store.dtype} (largest magnitude above its "
                        "range); use cache_dtype='float32'."
                    )
                if writer is None:
                    _reserve(cache, store, features[0].nbytes * len(missing_keys))
                    writer = store.writer(missing_keys, tuple(features.shape[1:]))
                writer.write(features)
                if bar is not None:
                    bar.update(len(features))
        if writer is not None:
            writer.commit()
    except BaseException:
        if writer is not None:
            writer.abort()
        raise


def _reserve(cache: FeatureCache, store: _Store, nbytes: int) -> None:
    if isinstance(store, _DiskStore):
        free = shutil.disk_usage(store.directory).free
        if nbytes > free:
            raise FeatureCacheFull(
                f"The trunk features need {_format_bytes(nbytes)} on disk, but "
                f"{store.directory} has {_format_bytes(free)} free"
            )
    elif not cache.reserve(store, nbytes):
        raise FeatureCacheFull(
            f"The trunk features of these images need {_format_bytes(store.nbytes + nbytes)}, "
            f"more than the in-memory cache budget of {_format_bytes(cache.max_memory)} "
            "(FEATURE_CACHE.max_memory)"
        )


class CachedFeatures(Dataset):
    """Dataset of stored trunk features: items ``({"features": tensor}, label)``.

    The dict input reaches the network as ``module(features=...)``, which runs only the
    trainable tail and the head (:meth:`~sklearn_corrloss.networks.BackboneNet.forward`).

    Parameters
    ----------
    store : store object
        From :meth:`FeatureCache.store`, filled for every key.
    keys : array of str
        Image key of each item.
    y : array-like of shape (N, U), optional
        Labels; a dummy 0 without.

    Examples
    --------
    >>> cache = FeatureCache()
    >>> store = cache.store("k", {"dtype": "float16"})
    >>> store.add(["a", "b"], np.ones((2, 3)))
    >>> features, label = CachedFeatures(store, ["b", "b", "a"])[1]
    >>> features["features"].dtype, features["features"].shape
    (torch.float32, torch.Size([3]))
    """

    def __init__(self, store: _Store, keys, y=None):
        locations = store.locate(keys)
        absent = [k for k, loc in zip(keys, locations) if loc is None]
        if absent:
            raise ValueError(f"{len(absent)} image(s) have no stored features, e.g. {absent[:3]}.")
        self.store = store
        self.locations = locations
        self.y = None if y is None else torch.as_tensor(np.asarray(y, dtype=np.float32))

    def __len__(self) -> int:
        return len(self.locations)

    def __getitem__(self, i):
        row = self.store.read(self.locations[i])
        features = torch.from_numpy(np.array(row, dtype=np.float32))
        label = self.y[i] if self.y is not None else torch.zeros(())
        return {"features": features}, label
