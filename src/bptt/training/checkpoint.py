"""Checkpoints: written atomically, read without running code.

A checkpoint holds plain data only: tensors, numbers, strings, None and the
lists, tuples and dicts of them (a run's step, model and optimizer state, its
random-number-generator states, counters and config). It is read with
``torch.load(weights_only=True)``, whose unpickler builds nothing else, so a
crafted file cannot run code when a run resumes or is diagnosed; such a file
is refused with one line naming it. A file written by other code that holds
Python objects can be turned into a plain checkpoint with ``convert_checkpoint``
(``bptt convert-checkpoint PATH``), which does unpickle it and is only for files
the user trusts.

Writes go to a temporary name in the same folder, then a rename: a reader sees
the old file or the new one, never half of one, and a write that fails (a full
disk) removes its temporary file.
"""

from __future__ import annotations

import numbers
import os
import pickle
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

#: The keys every checkpoint of a training run holds.
CHECKPOINT_KEYS = ("step", "model")


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: the message names the file and what is wrong with it."""


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as handle:
            torch.save(state, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        tmp.unlink(missing_ok=True)
        # torch's zip writer reports a failed write (a full disk) as its own RuntimeError: raise the OSError.
        reason = _os_error_in(error)
        if reason is not None and reason is not error:
            raise reason from None
        raise


def _os_error_in(error: BaseException | None) -> OSError | None:
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, OSError):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def _first_line(error: BaseException) -> str:
    """The error's type and its first sentence."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0].split('. ')[0].rstrip('.')}" if text else type(error).__name__


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """The state saved at ``path``, read as plain data; a ``CheckpointError`` for anything else."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as error:
        raise CheckpointError(f"checkpoint {path}: cannot be read ({error.strerror})") from None
    if size == 0:
        raise CheckpointError(f"checkpoint {path}: the file is empty")
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols on the way to refusing a file
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if "GLOBAL" in str(error):  # the file names a class or function to call: an object, not plain data
            raise CheckpointError(
                f"checkpoint {path}: refused: it holds Python objects, which could run code when read; "
                f"if you trust the file, convert it with `bptt convert-checkpoint {path}`"
            ) from None
        raise CheckpointError(f"checkpoint {path}: truncated or corrupt (not a file torch.save wrote)") from None
    except Exception as error:  # a damaged file fails in many ways: zip, pickle, I/O
        raise CheckpointError(f"checkpoint {path}: truncated or corrupt ({_first_line(error)})") from None
    if not isinstance(state, dict) or any(key not in state for key in CHECKPOINT_KEYS):
        raise CheckpointError(
            f"checkpoint {path}: not a bptt checkpoint (it must map "
            f"{', '.join(CHECKPOINT_KEYS)} and the rest of a run's state)"
        )
    return state


def plain(value: Any, where: str = "state") -> Any:
    """``value`` as plain data: tensors, numbers, strings, None, lists, tuples and dicts of them.

    NumPy arrays become tensors and NumPy scalars Python numbers; anything else
    raises a ``CheckpointError`` naming where it sits (``state['model']...``).
    """
    if value is None or isinstance(value, (bool, str, torch.Tensor)):
        return value
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.array(value))
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, numbers.Number):
        return value
    if isinstance(value, torch.Size):
        return tuple(value)
    if isinstance(value, Mapping):
        return {key: plain(item, f"{where}[{key!r}]") for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        items = [plain(item, f"{where}[{index}]") for index, item in enumerate(value)]
        return items if isinstance(value, list) else tuple(items)
    raise CheckpointError(
        f"{where} is a {type(value).__module__}.{type(value).__qualname__}, which a plain checkpoint cannot hold"
    )


def convert_checkpoint(path: str | Path, output: str | Path | None = None) -> Path:
    """Rewrite a checkpoint that holds Python objects as a plain one (at ``output``, default in place).

    This unpickles the file, which runs whatever code it names: only for files
    the user trusts. Returns the path written.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path}: no such file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:
        raise CheckpointError(f"checkpoint {path}: cannot be read ({_first_line(error)})") from None
    try:
        converted = plain(state)
    except CheckpointError as error:
        raise CheckpointError(f"checkpoint {path}: {error}") from None
    if not isinstance(converted, dict) or any(key not in converted for key in CHECKPOINT_KEYS):
        raise CheckpointError(f"checkpoint {path}: not a bptt checkpoint (no {' or '.join(CHECKPOINT_KEYS)})")
    target = path if output is None else Path(output)
    save_checkpoint(target, converted)
    return target
