"""Console output: rich tables on a terminal, and wide enough not to wrap when piped."""

from __future__ import annotations

from rich.console import Console


def console(stderr: bool = False) -> Console:
    probe = Console(stderr=stderr)
    return probe if probe.is_terminal else Console(stderr=stderr, width=200)


def plural(count: int, noun: str) -> str:
    """``1 step``, ``2 steps``: a count and its noun, in the number the count asks for."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
