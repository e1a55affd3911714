"""Argument checks shared across the package, each failure one clear error naming the argument."""
from __future__ import annotations

from typing import Any


def positive_int(name: str, value: Any) -> int:
    """``value`` if it is an int > 0 (not a bool); else TypeError (not an int) or ValueError (not positive)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value}")
    return value
