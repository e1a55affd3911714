"""Files bptt writes: whole or not at all, in the format they came in, and folders that keep to themselves.

``write_text`` and ``write_bytes`` write through a temporary file in the same
folder (``NAME.tmp<pid>``), flushed to disk, then renamed over the target: a
reader, or a process killed at any moment, finds the old file or the new one,
never a mix or a partial file. A temporary file left by a process killed
mid-write is removed by the next write of the same file; one that fails (a full
disk) removes its own. An existing file keeps its permission bits, and a path
that is a symbolic link is written where it leads.

``read_text`` and ``TextFormat`` keep a file's encoding (UTF-8, with or without
a byte-order mark) and line endings (LF or CRLF) across an edit, so a README
that bptt updates changes only where bptt writes.

``ignored_folder`` creates a folder with a ``.gitignore`` of ``*`` inside, as
pytest does for its cache: the run folders bptt keeps beside a database do not
show up as untracked files in the user's git repository.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

UTF8_BOM = b"\xef\xbb\xbf"
GITIGNORE = "# Created by bptt: run state, not sources.\n*\n"


@dataclass(frozen=True)
class TextFormat:
    """How a text file is written: with a UTF-8 byte-order mark or not, and its line ending."""

    bom: bool = False
    newline: str = "\n"

    def encode(self, text: str) -> bytes:
        """``text`` (with ``\\n`` line endings) as this format's bytes."""
        if self.newline != "\n":
            text = text.replace("\n", self.newline)
        return (UTF8_BOM if self.bom else b"") + text.encode("utf-8")


def read_text(path: str | Path) -> tuple[str, TextFormat]:
    """A UTF-8 text file's text (line endings as ``\\n`` when the file uses CRLF throughout) and its format.

    Raises ``UnicodeDecodeError`` for a file that is not UTF-8, ``OSError`` for one that cannot be read.
    """
    data = Path(path).read_bytes()
    bom = data.startswith(UTF8_BOM)
    text = data[len(UTF8_BOM) :].decode("utf-8") if bom else data.decode("utf-8")
    crlf = "\r\n" in text and text.count("\r\n") == text.count("\n")
    return (text.replace("\r\n", "\n") if crlf else text), TextFormat(bom, "\r\n" if crlf else "\n")


def _pid_of(temporary: Path, name: str) -> int | None:
    suffix = temporary.name[len(name) + len(".tmp") :]
    return int(suffix) if suffix.isdigit() else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(path: Path) -> None:
    """Remove ``NAME.tmp<pid>`` files beside ``path`` whose writing process is gone (killed mid-write)."""
    for temporary in path.parent.glob(path.name + ".tmp*"):
        pid = _pid_of(temporary, path.name)
        if pid is not None and pid != os.getpid() and not _alive(pid):
            temporary.unlink(missing_ok=True)


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see the module docstring); returns the path written."""
    path = Path(path)
    if path.is_symlink():
        path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    temporary = path.with_name(f"{path.name}.tmp{os.getpid()}")
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        mode = None
    try:
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


def write_text(path: str | Path, text: str, form: TextFormat | None = None) -> Path:
    """Write ``text`` (``\\n`` line endings) atomically as UTF-8, in ``form`` (default: no BOM, LF)."""
    return write_bytes(path, (form or TextFormat()).encode(text))


def ignored_folder(path: str | Path) -> Path:
    """Create ``path`` (and its parents) if absent, with a ``.gitignore`` of ``*`` inside; an existing
    folder is left as it is."""
    path = Path(path)
    if not path.is_dir():
        path.mkdir(parents=True, exist_ok=True)
        write_text(path / ".gitignore", GITIGNORE)
    return path
