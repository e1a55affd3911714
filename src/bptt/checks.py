"""Argument checks shared across the package: a bad argument raises an error naming it.

Counts (sizes, lengths, windows, steps) are ints; a bool is not a count, even
though Python treats it as an int. Any ``numbers.Integral`` (a NumPy integer
too) is accepted and returned as a plain ``int``. A device is named as torch
names one (``is_torch_device``) or, where work starts, is one this machine has
(``has_device``, ``device_name``).
"""

from __future__ import annotations

import numbers
import reprlib
from typing import Any

import torch


class NotAnIntError(TypeError, ValueError):
    """A count given as something other than an int.

    A ``TypeError``, as PyTorch raises for an argument of the wrong type, and a
    ``ValueError`` too, so that code catching ``ValueError`` for any bad
    argument catches this one as well.
    """


def is_int(value: Any) -> bool:
    """Whether ``value`` is an integer (``numbers.Integral``) and not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def positive_int(name: str, value: Any) -> int:
    """``value`` as an int, if it is an int >= 1.

    Raises ``NotAnIntError`` (a TypeError and a ValueError) when ``value`` is
    not an int, and ``ValueError`` when it is 0 or negative; both messages name
    the argument ``name``.
    """
    if not is_int(value):
        raise NotAnIntError(f"{name} must be a positive int, got {type(value).__name__} {value!r}")
    if value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def available_devices() -> list[str]:
    """The devices a run can use here: cpu, then cuda and cuda:0 ... cuda:N-1, then mps where present."""
    names = ["cpu"]
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count:
        names += ["cuda", *(f"cuda:{index}" for index in range(count))]
    if torch.backends.mps.is_available():
        names.append("mps")
    return names


def is_torch_device(value: Any) -> bool:
    """Whether torch reads ``value`` as a device (``cpu``, ``cuda``, ``cuda:1``, ``mps``, ...), here or elsewhere."""
    try:
        torch.device(value)
    except (RuntimeError, ValueError, TypeError):
        return False
    return True


def has_device(value: Any) -> bool:
    """Whether ``value`` names a device a run can use on this machine (see ``available_devices``)."""
    if not is_torch_device(value):
        return False
    device = torch.device(value)
    shown = device.type if device.index is None else f"{device.type}:{device.index}"
    return shown in available_devices() or (device.type == "cpu" and device.index in (None, 0))


def device_name(name: str, value: Any) -> str:
    """``value`` if it names a device this machine has (see ``available_devices``).

    Raises ``ValueError`` naming the argument ``name`` and the devices allowed
    here, also for names torch knows but a run cannot train on (``meta``).
    """
    if not has_device(value):
        raise ValueError(f"{name} must be a device this machine has: {', '.join(available_devices())}; got {value!r}")
    return str(value)


#: How much of a value an error message shows.
SHOWN_CHARACTERS = 80


def brief(value: Any, limit: int = SHOWN_CHARACTERS) -> str:
    """``repr(value)`` as an error message shows it: nested and long values cut short (reprlib), the text
    cut to ``limit`` characters with the count of what was left out. Its cost is bounded whatever the value
    (a long string, a deeply nested or alias-expanded list)."""
    text = _SHORT_REPR.repr(value)
    if len(text) > limit:
        text = f"{text[: limit - 1]}… ({len(text) - limit + 1:,} more characters)"
    return text


def _short_repr() -> reprlib.Repr:
    shortened = reprlib.Repr()
    shortened.maxlevel = 3
    shortened.maxstring = shortened.maxother = shortened.maxlong = SHOWN_CHARACTERS
    shortened.maxlist = shortened.maxtuple = shortened.maxdict = shortened.maxset = 6
    return shortened


_SHORT_REPR = _short_repr()
