"""UCR/UEA time-series classification problems bundled inside ``sktime`` (no download).

``ucr:NAME`` reads ``NAME_TRAIN.ts`` and ``NAME_TEST.ts`` from the sktime
installation's ``sktime/datasets/data/NAME/`` with ``sktime.datasets.load_from_tsfile``.
The names offered are the bundled problems whose .ts header declares class
labels; with sktime 1.2 (train/test examples, length, channels, classes):

    ACSF1             100 / 100,  1460,        1, 10
    ArrowHead          36 / 175,   251,        1,  3
    BasicMotions       40 / 40,    100,        6,  4
    GunPoint           50 / 150,   150,        1,  2
    ItalyPowerDemand   67 / 1029,   24,        1,  2
    JapaneseVowels    270 / 370,   7-29,      12,  9
    OSULeaf           200 / 242,   427,        1,  6
    PLAID             537 / 537,   100-1344,   1, 11
    UnitTest           20 / 22,     24,        1,  2

Splits: the archive's test split is the test split; a stratified 20 % of the
archive's training split, drawn from ``settings.seed``, is the validation split.
Classes are numbered in the order of the header's ``@classLabel`` list
(labels matched without regard to case).

Normalisation (``options["normalise"]``): "series" (default, the UCR
convention) z-normalises each series and channel over its own true length;
"train" subtracts one mean and divides by one standard deviation per channel,
both taken over every time step of the training split (so amplitude
differences between series survive). A constant series is only centred.
Series of varying length are padded with zeros after their end and batches
carry ``lengths``.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np
import torch

from bptt.tasks.base import TASKS, TaskError, TaskSettings
from bptt.tasks.datasets.common import DatasetTask, Split, Splits, pad_sequences, require, stratified_split, take

NORMALISATIONS = ("series", "train")
VAL_FRACTION = 0.2
FLAT = 1e-8


def _data_root() -> Path:
    spec = importlib.util.find_spec("sktime")
    assert spec is not None and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"


def _header(path: Path) -> dict[str, list[str]]:
    """The .ts header: each ``@key value...`` line, key lower-cased, up to ``@data``."""
    header: dict[str, list[str]] = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            words = line.strip().split()
            if not words or not words[0].startswith("@"):
                continue
            key = words[0][1:].lower()
            if key == "data":
                break
            header[key] = words[1:]
    return header


@functools.lru_cache(maxsize=1)
def bundled_names() -> tuple[str, ...]:
    """Bundled problems with both splits and class labels, sorted."""
    names = []
    for folder in sorted(_data_root().iterdir()):
        train, test = folder / f"{folder.name}_TRAIN.ts", folder / f"{folder.name}_TEST.ts"
        if train.is_file() and test.is_file():
            label = _header(train).get("classlabel", [])
            if label and label[0].lower() == "true":
                names.append(folder.name)
    return tuple(names)


def _read(path: Path, classes: tuple[str, ...]) -> tuple[list[np.ndarray], np.ndarray]:
    """Each series as a (L_i, C) float64 array, and the class ids."""
    # sktime is optional (the data extra): imported only when a UCR task reads its files.
    from sktime.datasets import load_from_tsfile

    try:
        frame, labels = load_from_tsfile(str(path), return_data_type="nested_univ")
    except Exception as error:  # sktime raises several types for a malformed file
        raise TaskError(
            f"cannot read {path}: {str(error).splitlines()[0] if str(error) else type(error).__name__}"
        ) from None
    series = []
    for row in range(frame.shape[0]):
        channels = [np.asarray(frame.iat[row, c], dtype=np.float64) for c in range(frame.shape[1])]
        if len({len(ch) for ch in channels}) != 1:
            raise TaskError(f"{path}: case {row} has channels of different lengths")
        values = np.stack(channels, axis=1)
        if not np.isfinite(values).all():
            raise TaskError(f"{path}: case {row} has missing or non-finite values")
        series.append(values)
    index = {c.lower(): i for i, c in enumerate(classes)}  # sktime lower-cases some labels
    unknown = sorted({str(y) for y in labels if str(y).lower() not in index})
    if unknown:
        raise TaskError(f"{path}: labels {unknown} are not in the header's @classLabel list {list(classes)}")
    return series, np.array([index[str(y).lower()] for y in labels], dtype=np.int64)


@functools.lru_cache(maxsize=32)
def load_ucr_splits(name: str, normalise: str, seed: int) -> Splits:
    folder = _data_root() / name
    header = _header(folder / f"{name}_TRAIN.ts")
    classes = tuple(header["classlabel"][1:])
    train_series, train_y = _read(folder / f"{name}_TRAIN.ts", classes)
    test_series, test_y = _read(folder / f"{name}_TEST.ts", classes)

    if normalise == "series":

        def scale(s: np.ndarray) -> np.ndarray:
            std = s.std(axis=0)
            return (s - s.mean(axis=0)) / np.where(std < FLAT, 1.0, std)
    else:
        steps = np.concatenate(train_series, axis=0)
        mean, std = steps.mean(axis=0), steps.std(axis=0)
        std = np.where(std < FLAT, 1.0, std)

        def scale(s: np.ndarray) -> np.ndarray:
            return (s - mean) / std

    train_series = [scale(s) for s in train_series]
    test_series = [scale(s) for s in test_series]
    length = max(s.shape[0] for s in train_series + test_series)
    varying = len({s.shape[0] for s in train_series + test_series}) > 1

    def split(series: list[np.ndarray], y: np.ndarray) -> Split:
        inputs, lengths = pad_sequences(series, length)
        return Split(inputs, torch.from_numpy(y), lengths if varying else None)

    train = split(train_series, train_y)
    index = stratified_split(train_y, {"val": VAL_FRACTION}, seed)
    return Splits(take(train, index["train"]), take(train, index["val"]), split(test_series, test_y), classes)


@TASKS.register("ucr:")
class UCR(DatasetTask):
    """A bundled UCR/UEA problem, ``settings.options["name"]``; see the module docstring."""

    option_keys = ("name", "normalise")
    # The bundled problems are small (tens to hundreds of series): at the gated cells' 0.01 a model
    # fits the few training series and stays at chance on the test set (ArrowHead); at 0.001 for
    # 500 steps an LSTM learns GunPoint (91 %) and ArrowHead (65 %, chance 30 %).
    recommended = {"lr": 1e-3, "steps": 500}

    def __init__(self, settings: TaskSettings) -> None:
        self.name = f"ucr:{settings.options.get('name', '')}"
        super().__init__(settings)

    def _load(self) -> Splits:
        require("sktime", "sktime", self.name)
        names = bundled_names()
        asked = str(self.settings.options.get("name", ""))
        match = {n.lower(): n for n in names}.get(asked.lower())
        if match is None:
            raise TaskError(f"unknown UCR dataset {asked!r}; bundled with sktime: {', '.join(names)}")
        self.name = f"ucr:{match}"
        normalise = self.settings.options.get("normalise", "series")
        if normalise not in NORMALISATIONS:
            raise TaskError(f"options.normalise: {normalise!r} is not one of {', '.join(NORMALISATIONS)}")
        if self.settings.seq_len is not None:
            raise TaskError(f"seq_len: task {self.name!r} has the archive's lengths; leave seq_len unset")
        return load_ucr_splits(match, normalise, int(self.settings.seed))
