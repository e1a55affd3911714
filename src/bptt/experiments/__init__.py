"""The shipped sweep specs: ``canonical`` (the field's tables at real budgets) and its CPU-sized
``canonical-quick``, ``modern`` (the remedies that reached thousands of steps), ``remedies`` and
``vanishing``. Each is a YAML file in this folder, its expected wall time on its first line;
``bptt sweep NAME`` and ``bptt reproduce NAME`` take the name.
"""

from __future__ import annotations

from pathlib import Path

FOLDER = Path(__file__).parent


class SpecNotFound(LookupError):
    """A spec name that is neither a file nor a shipped spec; its message names the shipped ones."""


def shipped() -> list[str]:
    """The names of the shipped specs."""
    return sorted(path.stem for path in FOLDER.glob("*.yaml"))


def spec_path(name_or_path: str | Path, field: str = "SPEC") -> Path:
    """A spec file: ``name_or_path`` itself when it is a file, else the shipped spec of that name; anything
    else is refused (``SpecNotFound`` naming ``field`` and the shipped names)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    names = ", ".join(shipped())
    if path.suffix or path.name != str(name_or_path):  # a path, not a name
        raise SpecNotFound(f"{field}: no file {name_or_path}; a shipped spec is given by its name: {names}")
    shipped_path = FOLDER / f"{path.name}.yaml"
    if not shipped_path.is_file():
        raise SpecNotFound(f"{field}: no file {name_or_path} and no shipped spec of that name; the shipped: {names}")
    return shipped_path
