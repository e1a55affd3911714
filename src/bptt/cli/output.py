"""Console output: rich tables on a terminal, and wide enough not to wrap when piped.

Text that came from outside (names from a spec, a database or a CSV, values from a
file) is shown through ``printable``: a newline, a tab or an ANSI escape in it is
shown as ``\\n``, ``\\t`` or ``\\x1b``, never sent to the terminal.
"""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

#: The longest error line printed; the rest is cut, with its count.
MAX_LINE = 1000


def console(stderr: bool = False) -> Console:
    probe = Console(stderr=stderr)
    return probe if probe.is_terminal else Console(stderr=stderr, width=200)


def plural(count: int, noun: str) -> str:
    """``1 step``, ``2 steps``: a count and its noun, in the number the count asks for."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def printable(text: str) -> str:
    """``text`` with every control character (newlines, tabs, ANSI escapes) written as its escape."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def cell(value: object) -> Text:
    """A table cell for text from outside: printable, and never read as rich markup (``[bold]``, ``[/]``)."""
    return Text(printable(str(value)))


def one_line(text: str, limit: int = MAX_LINE) -> str:
    """``text`` as one printable line of at most ``limit`` characters (the rest cut, and counted)."""
    line = printable(text.strip())
    if len(line) > limit:
        line = f"{line[: limit - 1]}… ({len(line) - limit + 1:,} more characters)"
    return line
