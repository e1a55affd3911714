"""Self-contained HTML pages: figures inline as SVG, scripts and styles inline, no outside file.

A page is a title, an optional lead paragraph and a list of sections; each
section holds paragraphs, tables, figures, notes (a heading, a lead-in and
paragraphs) and raw HTML in the order given. Figures are
``matplotlib.figure.Figure`` objects built without pyplot, so no backend is set.
A page may carry data (JSON) and scripts (``bptt/plotting/assets/*.js`` or
others), inlined, so it works offline from ``file://``.

Series drawn with a ``SeriesStyle`` carry an SVG id ``bptt-series--<key>--<n>``
(unique in the page), so a script can find every curve of one model in every
figure and highlight it.

Their text is drawn as written, never parsed as mathtext: a name holding ``$``
(a variant's, a task's, a module file's) is shown, not interpreted.
"""

from __future__ import annotations

import html
import io
import itertools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
import matplotlib
from matplotlib.axis import Axis, Tick
from matplotlib.figure import Figure
from matplotlib.text import Text

from bptt.files import write_bytes, write_text
from bptt.plotting.style import SERIES_ID_PREFIX

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

#: Text as <text> elements: a smaller page whose titles and labels are searchable.
SVG_SETTINGS: dict[RcKeyType, Any] = {"svg.fonttype": "none"}
_serial = itertools.count()
_NUMBER = re.compile(r"^[-+]?(\d[\d.,]*(e[-+]?\d+)?|\.\d+)\s*(%|x|steps?)?\+?$|^(n/a|never|-|diverged)$", re.IGNORECASE)


def asset(name: str, package: str = "bptt.plotting") -> str:
    """The text of ``assets/<name>`` in ``package``."""
    return resources.files(package).joinpath("assets", name).read_text(encoding="utf-8")


def plain_text(fig: Figure) -> Figure:
    """Draw every text of ``fig`` as written: ``$...$`` is not mathtext (an unknown command would fail).
    The axes' own numbers are left alone: a log axis writes its ticks as mathtext ("$10^{3}$")."""
    numbers = {id(axis.offsetText) for axis in fig.findobj(Axis)}
    for tick in fig.findobj(Tick):
        numbers.update((id(tick.label1), id(tick.label2)))
    for text in fig.findobj(Text):
        if id(text) not in numbers:
            text.set_parse_math(False)
    return fig


def figure_svg(fig: Figure) -> str:
    """The figure as inline SVG markup (no XML header); its series' ids made unique in the page."""
    plain_text(fig)
    tagged = list(fig.findobj(lambda a: (a.get_gid() or "").startswith(SERIES_ID_PREFIX)))
    given = [a.get_gid() for a in tagged]
    for artist, gid in zip(tagged, given):
        artist.set_gid(f"{gid}--{next(_serial)}")
    buffer = io.StringIO()
    try:
        with matplotlib.rc_context(SVG_SETTINGS):
            fig.savefig(buffer, format="svg", bbox_inches="tight")
    finally:
        for artist, gid in zip(tagged, given):
            artist.set_gid(gid)
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def save_figure(fig: Figure, stem: str | Path) -> list[Path]:
    """Write ``stem``.png and ``stem``.svg; return both paths. The figure stays open."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    plain_text(fig)
    formats: list[dict[str, Any]] = [{"format": "png", "dpi": 130}, {"format": "svg"}]
    for path, options in zip(paths, formats):
        buffer = io.BytesIO()
        fig.savefig(buffer, bbox_inches="tight", **options)
        write_bytes(path, buffer.getvalue())  # whole or not at all (bptt.files)
    return paths


@dataclass
class Table:
    """A table; ``keys`` names the series each row is about (a script highlights it with the curves)."""

    header: Sequence[str]
    rows: Sequence[Sequence[Any]]
    caption: str = ""
    keys: Sequence[str] | None = None
    prose: bool = False  # a column of sentences: wide, left-aligned, no numbers


@dataclass
class Note:
    """A heading, a lead-in sentence in bold and the paragraphs that follow it."""

    heading: str
    lead: str
    paragraphs: Sequence[str] = ()


@dataclass
class Raw:
    """HTML written by bptt itself (controls, chart holders), inserted as it is."""

    markup: str


@dataclass
class Link:
    """A paragraph that is one link: ``text`` to ``href`` (a page beside this one)."""

    text: str
    href: str


@dataclass
class Section:
    title: str
    blocks: list[Any] = field(default_factory=list)  # str (a paragraph), Table, Figure, Note, Raw, Link

    def add(self, block: Any) -> Section:
        self.blocks.append(block)
        return self


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape("" if value is None else str(value))


def numeric(value: Any) -> bool:
    """Whether a cell reads as a number (right-aligned): 0.39, 3.9e-03, 100 %, 53+, '4 / 50', n/a."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return True
    parts = [p.strip() for p in str(value).split("/")]
    return bool(str(value).strip()) and all(_NUMBER.match(p) for p in parts if p)


def _table(block: Table) -> str:
    head = "".join(f'<th scope="col">{html.escape(str(h))}</th>' for h in block.header)
    rows = []
    for index, row in enumerate(block.rows):
        key = block.keys[index] if block.keys is not None else None
        attrs = f' data-key="{html.escape(key)}" tabindex="0"' if key else ""
        cells = "".join(f"<td{' class=num' if not block.prose and numeric(v) else ''}>{_cell(v)}</td>" for v in row)
        rows.append(f"<tr{attrs}>{cells}</tr>")
    caption = f"<caption>{html.escape(block.caption)}</caption>" if block.caption else ""
    kind = " prose" if block.prose else ""
    return (
        f'<div class="table-wrap{kind}"><table>{caption}<thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _block(block: Any) -> str:
    if isinstance(block, Figure):
        return f"<figure>{figure_svg(block)}</figure>"
    if isinstance(block, Table):
        return _table(block)
    if isinstance(block, Note):
        body = "".join(f"<p>{html.escape(p)}</p>" for p in block.paragraphs)
        return (
            f'<div class="note"><h3>{html.escape(block.heading)}</h3>'
            f'<p class="lead-in"><strong>{html.escape(block.lead)}</strong></p>{body}</div>'
        )
    if isinstance(block, Raw):
        return block.markup
    if isinstance(block, Link):
        return f'<p><a href="{html.escape(block.href)}">{html.escape(block.text)}</a></p>'
    return f"<p>{html.escape(str(block))}</p>"


_TEMPLATE = jinja2.Template(
    """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>{{ style }}</style></head><body>
<main>
<h1>{{ title }}</h1>
{% if lead %}<p class="lead">{{ lead }}</p>{% endif %}
{% for section in sections %}<section><h2>{{ section.title }}</h2>
{% for block in section.blocks %}{{ block }}
{% endfor %}</section>
{% endfor %}</main>
{% if data %}<script type="application/json" id="bptt-data">{{ data }}</script>{% endif %}
{% for script in scripts %}<script>{{ script }}</script>
{% endfor %}</body></html>
""",
    autoescape=False,
)


def _json(data: Any) -> str:
    """JSON safe inside a <script> element (no '</' can close it early)."""
    return json.dumps(data, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")


def render_page(
    title: str, sections: Sequence[Section], lead: str = "", *, data: Any = None, scripts: Sequence[str] = ()
) -> str:
    rendered = [{"title": html.escape(s.title), "blocks": [_block(b) for b in s.blocks]} for s in sections]
    return _TEMPLATE.render(
        title=html.escape(title),
        lead=html.escape(lead),
        sections=rendered,
        style=asset("page.css"),
        data=None if data is None else _json(data),
        scripts=list(scripts),
    )


def write_page(
    path: str | Path,
    title: str,
    sections: Sequence[Section],
    lead: str = "",
    *,
    data: Any = None,
    scripts: Sequence[str] = (),
) -> Path:
    """Write the page; ``data`` (JSON, in ``#bptt-data``) and ``scripts`` are inlined."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_text(path, render_page(title, sections, lead, data=data, scripts=scripts))
