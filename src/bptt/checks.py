"""Argument checks shared across the package: a bad argument raises an error naming it.

Counts (sizes, lengths, windows, steps) are ints; a bool is not a count, even
though Python treats it as an int. Any ``numbers.Integral`` (a NumPy integer
too) is accepted and returned as a plain ``int``.
"""
from __future__ import annotations

import numbers
from typing import Any


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
