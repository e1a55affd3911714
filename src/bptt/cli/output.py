"""Console output: rich tables on a terminal, and wide enough not to wrap when piped."""
from __future__ import annotations

from rich.console import Console


def console(stderr: bool = False) -> Console:
    probe = Console(stderr=stderr)
    return probe if probe.is_terminal else Console(stderr=stderr, width=200)
