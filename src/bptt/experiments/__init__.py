"""The shipped sweep specs: ``canonical`` (the field's tables at real budgets) and its CPU-sized
``canonical-quick``, ``remedies`` and ``vanishing``. Each is a YAML file in this folder, its
expected wall time on its first line; ``bptt sweep NAME`` and ``bptt reproduce NAME`` take the name.
"""

from __future__ import annotations

from pathlib import Path

FOLDER = Path(__file__).parent


def shipped() -> list[str]:
    """The names of the shipped specs."""
    return sorted(path.stem for path in FOLDER.glob("*.yaml"))


def spec_path(name_or_path: str | Path) -> Path:
    """A spec file: ``name_or_path`` itself when it is a file, else the shipped spec of that name.

    A name that is neither stays as given, so that loading it reports the missing file.
    """
    path = Path(name_or_path)
    if path.is_file() or path.suffix:
        return path
    shipped_path = FOLDER / f"{name_or_path}.yaml"
    return shipped_path if shipped_path.is_file() else path
