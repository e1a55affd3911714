"""Which code produced a result: the package version and, in a git checkout, the commit."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path
from typing import TypedDict

#: The package version; pyproject.toml gives the same.
__version__ = "0.1.0"


@functools.cache
def commit() -> str | None:
    """The git commit of the checkout ``bptt`` runs from (with "-dirty" when files differ from it),
    or None for an installed copy outside a checkout."""
    here = Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return None
        status = subprocess.run(
            ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no", "."],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("-dirty" if status.stdout.strip() else "")


class Provenance(TypedDict):
    """What a run's summary records of the code that trained it."""

    version: str
    commit: str | None


def provenance() -> Provenance:
    return {"version": __version__, "commit": commit()}
