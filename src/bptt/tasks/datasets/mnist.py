"""Sequential and permuted MNIST, read from the standard IDX files in ``settings.data_dir``.

Files (each may also be gzipped, with a ``.gz`` suffix): ``train-images-idx3-ubyte``
(60000 x 28 x 28), ``train-labels-idx1-ubyte`` (60000), ``t10k-images-idx3-ubyte``
(10000 x 28 x 28), ``t10k-labels-idx1-ubyte`` (10000). Nothing is downloaded.

Each image is fed one pixel per step in row-major order, intensities scaled to
[0, 1]: 784 steps of 1 feature, 10 classes, the class read at the last step.
Splits: a stratified 1/12 of the training files (5000 of 60000), drawn from
``settings.seed``, is the validation split, the other 55000 train; the t10k
files are the test split. ``pmnist`` feeds the pixels in one fixed order, a
permutation of the 784 positions drawn from ``settings.seed``.
"""

from __future__ import annotations

import functools
import gzip
import zlib
from pathlib import Path

import numpy as np
import torch

from bptt.tasks.base import TASKS, TaskError
from bptt.tasks.datasets.common import DatasetTask, Split, Splits, stratified_split, take
from bptt.tasks.datasets.digits import pixel_permutation

FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
SIDE = 28
VAL_FRACTION = 1 / 12
UBYTE = 0x08


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """An unsigned-byte IDX array of ``ndim`` dimensions (magic 0x0000 08 ndim, big-endian
    uint32 sizes, then the data). A gzipped file (``.gz``) is decompressed first."""
    try:
        raw = path.read_bytes()
        if path.suffix == ".gz":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as error:
        raise TaskError(f"cannot read {path}: {error}") from None
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise TaskError(f"{path} is not an IDX file: {len(raw)} bytes, shorter than the {header}-byte header")
    if raw[0] != 0 or raw[1] != 0 or raw[2] != UBYTE or raw[3] != ndim:
        raise TaskError(
            f"{path} is not a {ndim}-dimensional unsigned-byte IDX file: "
            f"magic {raw[:4].hex()}, expected 000008{ndim:02x}"
        )
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(dims))
    if len(raw) - header != expected:
        raise TaskError(
            f"{path} is truncated or corrupt: header says {'x'.join(map(str, dims))} "
            f"({expected} bytes of data), found {len(raw) - header}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _find(directory: Path, stem: str) -> Path:
    for path in (directory / stem, directory / f"{stem}.gz"):
        if path.is_file():
            return path
    raise TaskError(f"data_dir: {stem} (or {stem}.gz) not found in {directory}")


@functools.lru_cache(maxsize=4)
def _read_pair(images_path: Path, labels_path: Path, stamp: tuple[int, ...]) -> Split:
    """Images (N, 784, 1) uint8 and labels, checked against each other."""
    images, labels = read_idx(images_path, 3), read_idx(labels_path, 1)
    if images.shape[1:] != (SIDE, SIDE):
        raise TaskError(f"{images_path}: images are {images.shape[1]}x{images.shape[2]}, expected {SIDE}x{SIDE}")
    if images.shape[0] != labels.shape[0]:
        raise TaskError(
            f"{labels_path} holds {labels.shape[0]} labels for the {images.shape[0]} images of {images_path}"
        )
    if labels.size and labels.max() > 9:
        raise TaskError(f"{labels_path}: label {int(labels.max())} is not a digit 0-9")
    inputs = torch.from_numpy(images.reshape(-1, SIDE * SIDE, 1).copy())
    return Split(inputs, torch.from_numpy(labels.astype(np.int64)))


def _stamp(*paths: Path) -> tuple[int, ...]:
    return tuple(v for p in paths for v in (p.stat().st_mtime_ns, p.stat().st_size))


def load_mnist_splits(data_dir: str, seed: int) -> Splits:
    directory = Path(data_dir).expanduser()
    if not directory.is_dir():
        raise TaskError(
            f"data_dir: {directory} is not a directory; it should hold the MNIST IDX files {', '.join(FILES.values())}"
        )
    paths = tuple(_find(directory, stem) for stem in FILES.values())
    return _splits(paths, _stamp(*paths), seed)


@functools.lru_cache(maxsize=4)
def _splits(paths: tuple[Path, ...], stamp: tuple[int, ...], seed: int) -> Splits:
    """The splits of the files ``paths`` (in the order of ``FILES``) as they were at ``stamp``."""
    train_images, train_labels, test_images, test_labels = paths
    train = _read_pair(train_images, train_labels, stamp[:4])
    test = _read_pair(test_images, test_labels, stamp[4:])
    index = stratified_split(train.targets.numpy(), {"val": VAL_FRACTION}, seed)
    return Splits(take(train, index["train"]), take(train, index["val"]), test, tuple(str(c) for c in range(10)))


@TASKS.register("mnist")
class MNIST(DatasetTask):
    """MNIST, one pixel per step (784 steps, 1 feature, 10 classes); 55000/5000/10000 examples."""

    name = "mnist"
    native_seq_len = SIDE * SIDE

    def _load(self) -> Splits:
        if not self.settings.data_dir:
            raise TaskError(
                f"data_dir: task {self.name!r} reads the MNIST IDX files from data_dir (--data-dir); none was given"
            )
        return load_mnist_splits(self.settings.data_dir, int(self.settings.seed))


@TASKS.register("pmnist")
class PermutedMNIST(MNIST):
    """MNIST with the 784 pixels in one fixed, seeded order."""

    name = "pmnist"

    def _load(self) -> Splits:
        splits = super()._load()
        self.permutation = pixel_permutation(int(self.settings.seed), SIDE * SIDE)
        return splits
