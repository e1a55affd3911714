"""What every dataset task shares: fixed splits, seeded stratified splitting,
zero padding after the end, and the check for the optional ``data`` extra.

A dataset holds three splits (train, val, test) of examples stored batch-major,
``inputs`` (N, T, C); batches leave time-major, (T, B, C) float32, as every
task's do. Datasets with varying lengths pad with zeros after each sequence's
end and carry ``lengths``; their batches are cut to the longest sequence in
the batch.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from bptt.tasks.base import Batch, Task, TaskError, TaskSettings, cross_entropy_baseline, generator
from bptt.tasks.checks import reject_unused, require_batch_size

INSTALL_HINT = "pip install 'bptt[data]'"

#: Generator streams (see ``bptt.tasks.base.generator``) for a dataset's fixed
#: randomness; distinct from the streams 0-2 that tasks use for train/val/test.
SPLIT_STREAM = 101
PERMUTATION_STREAM = 102


def require(module: str, package: str, task: str) -> Any:
    """Import an optional dependency of the ``data`` extra, or raise a one-line ``TaskError``."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise TaskError(
            f"task {task!r} needs the {package} package, which is not installed; install the data extra: {INSTALL_HINT}"
        ) from None


@dataclass(frozen=True)
class Split:
    """One split of a dataset.

    inputs: (N, T, C) float32, or uint8 pixel intensities read as value / 255.
    targets: (N,) long class ids.
    lengths: (N,) long true lengths (zeros after the end), or None when all are T.
    """

    inputs: torch.Tensor
    targets: torch.Tensor
    lengths: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.targets.shape[0]


@dataclass(frozen=True)
class Splits:
    train: Split
    val: Split
    test: Split
    classes: tuple[str, ...]


def stratified_split(labels: np.ndarray, fractions: dict[str, float], seed: int) -> dict[str, np.ndarray]:
    """Split example indices by class, drawing from a generator seeded with ``seed``.

    Each named split receives ``round(N * fraction)`` examples in total, shared
    among the classes in proportion to their sizes (largest remainders get the
    leftover examples); the rest form "train". Returned indices are sorted.
    """
    labels = np.asarray(labels)
    classes, counts = np.unique(labels, return_counts=True)
    gen = generator(seed, SPLIT_STREAM)
    shuffled = {
        c: np.flatnonzero(labels == c)[torch.randperm(n, generator=gen).numpy()] for c, n in zip(classes, counts)
    }
    taken = dict.fromkeys(classes, 0)
    parts: dict[str, list[np.ndarray]] = {}
    for name, fraction in fractions.items():
        exact = counts * fraction
        quota = np.floor(exact).astype(int)
        leftover = round(len(labels) * fraction) - int(quota.sum())
        for i in np.argsort(-(exact - quota), kind="stable")[: max(leftover, 0)]:
            quota[i] += 1
        parts[name] = []
        for c, q in zip(classes, quota):
            parts[name].append(shuffled[c][taken[c] : taken[c] + q])
            taken[c] += q
    parts["train"] = [shuffled[c][taken[c] :] for c in classes]
    return {name: np.sort(np.concatenate(p)) for name, p in parts.items()}


def pad_sequences(series: list[np.ndarray], length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack (L_i, C) arrays into (N, length, C) float32, zeros after each end; and the lengths (N,)."""
    channels = series[0].shape[1]
    inputs = torch.zeros(len(series), length, channels)
    for i, s in enumerate(series):
        inputs[i, : s.shape[0]] = torch.from_numpy(np.asarray(s, dtype=np.float32))
    return inputs, torch.tensor([s.shape[0] for s in series], dtype=torch.long)


def take(split: Split, index: np.ndarray) -> Split:
    index_t = torch.as_tensor(index, dtype=torch.long)
    lengths = None if split.lengths is None else split.lengths[index_t]
    return Split(split.inputs[index_t], split.targets[index_t], lengths)


class DatasetTask(Task):
    """A classification task over a fixed dataset of sequences.

    Subclasses implement ``_load`` (cached, so building a task twice is cheap)
    and may set ``self.permutation`` (a fixed reordering of the time steps).
    ``train_batch`` draws examples of the training split without replacement
    within a batch (with replacement only when the batch is larger than the
    split); ``eval_set`` returns the whole validation or test split, in a fixed
    order. ``settings.eval_size`` does not apply.
    """

    kind = "classification"
    input_kind = "dense"
    #: Option keys (``settings.options``) the task reads; any other key is an error.
    option_keys: tuple[str, ...] = ()
    #: The dataset's own length, or None when it is set by ``settings.seq_len``.
    native_seq_len: int | None = None

    def __init__(self, settings: TaskSettings) -> None:
        super().__init__(settings)
        reject_unused(settings, self.name, ("delay", "variant"))
        unknown = sorted(set(settings.options) - set(self.option_keys))
        if unknown:
            allowed = ", ".join(self.option_keys) or "none"
            raise TaskError(f"options: task {self.name!r} does not take {', '.join(unknown)}; allowed: {allowed}")
        if self.native_seq_len is not None and settings.seq_len not in (None, self.native_seq_len):
            raise TaskError(
                f"seq_len: task {self.name!r} has fixed length {self.native_seq_len}, "
                f"got {settings.seq_len}; leave seq_len unset"
            )
        self.permutation: torch.Tensor | None = None
        self.data = self._load()
        self.output_size = len(self.data.classes)
        self.input_size = self.data.train.inputs.shape[2]
        self._eval: dict[str, Batch] = {}

    def _load(self) -> Splits:
        raise NotImplementedError

    # -- data ---------------------------------------------------------------------
    def _batch(self, split: Split, index: torch.Tensor | None) -> Batch:
        inputs, targets, lengths = split.inputs, split.targets, split.lengths
        if index is not None:
            inputs, targets = inputs[index], targets[index]
            lengths = None if lengths is None else lengths[index]
        if lengths is not None:
            inputs = inputs[:, : int(lengths.max())]
        if inputs.dtype == torch.uint8:
            inputs = inputs.float().div_(255.0)
        if self.permutation is not None:
            inputs = inputs[:, self.permutation]
        return Batch(
            inputs.transpose(0, 1).contiguous(),
            targets.clone(),  # (T, B, C)
            None if lengths is None else lengths.clone(),
        )

    def train_batch(self, batch_size: int, gen: torch.Generator) -> Batch:
        batch_size = require_batch_size(batch_size)
        n = len(self.data.train)
        if batch_size <= n:
            index = torch.randperm(n, generator=gen)[:batch_size]
        else:
            index = torch.randint(n, (batch_size,), generator=gen)
        return self._batch(self.data.train, index)

    def eval_set(self, split: Literal["val", "test"] = "test") -> Batch:
        if split not in ("val", "test"):
            raise ValueError(f"split must be 'val' or 'test', got {split!r}")
        if split not in self._eval:
            self._eval[split] = self._batch(getattr(self.data, split), None)
        return self._eval[split]

    @property
    def seq_len(self) -> int:
        """The longest sequence length over all splits."""
        return max(s.inputs.shape[1] for s in (self.data.train, self.data.val, self.data.test))

    # -- scoring ------------------------------------------------------------------
    @property
    def baseline(self) -> float:
        """Entropy (nats) of the training split's label distribution."""
        counts = torch.bincount(self.data.train.targets, minlength=self.output_size).double()
        return cross_entropy_baseline((counts / counts.sum()).tolist())

    @property
    def chance_metric(self) -> float:
        """Test accuracy of always predicting the training split's most frequent class."""
        majority = int(torch.bincount(self.data.train.targets, minlength=self.output_size).argmax())
        return float((self.data.test.targets == majority).double().mean())

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "seq_len": self.seq_len,
            "classes": self.output_size,
            "input_size": self.input_size,
            "split_sizes": {n: len(getattr(self.data, n)) for n in ("train", "val", "test")},
            "varying_length": self.data.train.lengths is not None,
        }
