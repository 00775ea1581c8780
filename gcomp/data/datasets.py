"""Datasets read from local files or shipped by scikit-learn: the IDX format (MNIST), MNIST, and
the 8x8 digits. Nothing is downloaded.

Samples are numpy arrays and ints, so a DataLoader can prefetch them in a background thread
(Note [Prefetching] in dataloader.py); ``.data`` and ``.targets`` give the whole split as
gcomp tensors.
"""

from __future__ import annotations

import functools
import gzip
import os
import zlib

import numpy as np

import gcomp
from gcomp import GcompError

from .dataset import Dataset

__all__ = ["read_idx", "MNIST", "load_digits", "Digits"]

# IDX type codes -> big-endian numpy dtypes (http://yann.lecun.com/exdb/mnist/)
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path) -> np.ndarray:
    """Read an IDX file (gzip-compressed or not) into a numpy array in native byte order.

    A missing, truncated or corrupt file raises a GcompError naming the file and the problem.
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise GcompError(f"cannot read IDX file {path}: {e.strerror or e}") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise GcompError(f"IDX file {path}: corrupt or truncated gzip data ({e})") from None
    if len(raw) < 4:
        raise GcompError(f"IDX file {path}: truncated: {len(raw)} bytes, shorter than the "
                         "4-byte header")
    if raw[0] != 0 or raw[1] != 0:
        raise GcompError(f"IDX file {path}: not an IDX file (the magic number should start "
                         f"with two zero bytes, got {raw[:2].hex()})")
    code, ndim = raw[2], raw[3]
    if code not in _IDX_TYPES:
        raise GcompError(f"IDX file {path}: unknown data type code 0x{code:02x} (expected one "
                         f"of {', '.join(f'0x{c:02x}' for c in _IDX_TYPES)})")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise GcompError(f"IDX file {path}: truncated header: {ndim} dimensions need "
                         f"{header} bytes, the file has {len(raw)}")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_TYPES[code])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    got = len(raw) - header
    if got != expected:
        what = "truncated" if got < expected else "has trailing bytes"
        raise GcompError(f"IDX file {path}: {what}: shape {list(shape)} of {dtype.name} needs "
                         f"{expected} bytes of data, found {got}")
    arr = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return arr.astype(dtype.newbyteorder("="))


class MNIST(Dataset):
    """MNIST from the four IDX files in a local directory (``root``, ``root/MNIST/raw`` or
    ``root/raw``; plain or ``.gz``). A sample is ``(image, label)``: a float32 array of shape
    (1, 28, 28) scaled to [0, 1] (what torchvision's ToTensor gives) and an int, each passed
    through ``transform`` / ``target_transform`` when given."""

    _FILES = {True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
              False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
    classes = [f"{i} - {w}" for i, w in enumerate(
        ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])]

    def __init__(self, root, train: bool = True, transform=None, target_transform=None,
                 download: bool = False):
        if download:
            raise GcompError("gcomp does not download datasets; place the MNIST IDX files "
                             f"({', '.join(self._FILES[train])}, optionally .gz) in {root}")
        self.root = os.fspath(root)
        self.train = train
        self.transform = transform
        self.target_transform = target_transform
        images_file, labels_file = (self._find(name) for name in self._FILES[train])
        images, labels = read_idx(images_file), read_idx(labels_file)
        if images.ndim != 3:
            raise GcompError(f"{images_file}: expected images of shape [N, rows, cols], got "
                             f"{list(images.shape)}")
        if labels.ndim != 1 or len(labels) != len(images):
            raise GcompError(f"{labels_file}: expected {len(images)} labels (one per image in "
                             f"{images_file}), got shape {list(labels.shape)}")
        self.images = images  # uint8 [N, 28, 28]
        self.labels = labels.astype(np.int64)

    def _find(self, name):
        dirs = [self.root, os.path.join(self.root, "MNIST", "raw"),
                os.path.join(self.root, "raw")]
        for d in dirs:
            for candidate in (name, name + ".gz"):
                path = os.path.join(d, candidate)
                if os.path.exists(path):
                    return path
        raise GcompError(f"MNIST file {name} (or {name}.gz) not found in "
                         f"{' or '.join(dirs)}; gcomp does not download datasets, place the "
                         "IDX files there")

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index):
        image = (self.images[index].astype(np.float32) / 255.0)[None]
        label = int(self.labels[index])
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            label = self.target_transform(label)
        return image, label

    @property
    def data(self):
        """All images, a uint8 tensor [N, 28, 28] (torchvision's ``MNIST.data``)."""
        return gcomp.from_numpy(self.images)

    @property
    def targets(self):
        return gcomp.from_numpy(self.labels)


@functools.lru_cache(maxsize=1)
def _sklearn_digits():
    try:
        from sklearn.datasets import load_digits as sk_load_digits
    except ImportError:
        raise GcompError("the digits dataset comes from scikit-learn, which is not installed: "
                         "pip install scikit-learn") from None
    d = sk_load_digits()
    images = (np.asarray(d.images, dtype=np.float32) / 16.0)[:, None]  # [N, 1, 8, 8] in [0, 1]
    labels = np.asarray(d.target, dtype=np.int64)
    images.flags.writeable = labels.flags.writeable = False  # shared by every caller (cached)
    return images, labels


def load_digits():
    """scikit-learn's 1797 8x8 digit images as gcomp tensors: (images float32 [1797, 1, 8, 8]
    scaled to [0, 1], labels int64 [1797])."""
    images, labels = _sklearn_digits()
    return gcomp.from_numpy(images), gcomp.from_numpy(labels)


class Digits(Dataset):
    """A train or test split of scikit-learn's 8x8 digits: a fixed random split by ``seed``
    with ``test_fraction`` of the samples in the test split. A sample is ``(image, label)``: a
    float32 array (1, 8, 8) in [0, 1] and an int."""

    def __init__(self, train: bool = True, test_fraction: float = 0.2, seed: int = 0,
                 transform=None, target_transform=None):
        if not 0.0 < test_fraction < 1.0:
            raise GcompError(f"test_fraction must be between 0 and 1, got {test_fraction}")
        images, labels = _sklearn_digits()
        order = np.random.default_rng(seed).permutation(len(images))
        n_test = int(round(len(images) * test_fraction))
        idx = np.sort(order[n_test:] if train else order[:n_test])
        self.images, self.labels = images[idx], labels[idx]
        self.train = train
        self.transform = transform
        self.target_transform = target_transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index):
        image, label = self.images[index], int(self.labels[index])
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            label = self.target_transform(label)
        return image, label

    @property
    def data(self):
        """All images of the split, float32 [N, 1, 8, 8]."""
        return gcomp.from_numpy(self.images)

    @property
    def targets(self):
        return gcomp.from_numpy(self.labels)
