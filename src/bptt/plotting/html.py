"""Self-contained HTML pages: figures inline as SVG, no outside file.

A page is a title, an optional lead paragraph and a list of sections; each
section holds paragraphs, tables and figures in the order given. Figures are
``matplotlib.figure.Figure`` objects built without pyplot, so no backend is set.
"""

from __future__ import annotations

import html
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import matplotlib
from matplotlib.figure import Figure

#: Text as <text> elements: a smaller page whose titles and labels are searchable.
SVG_SETTINGS = {"svg.fonttype": "none"}


def figure_svg(fig: Figure) -> str:
    """The figure as inline SVG markup (no XML header)."""
    buffer = io.StringIO()
    with matplotlib.rc_context(SVG_SETTINGS):
        fig.savefig(buffer, format="svg", bbox_inches="tight")
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def save_figure(fig: Figure, stem: str | Path) -> list[Path]:
    """Write ``stem``.png and ``stem``.svg; return both paths. The figure stays open."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    fig.savefig(paths[0], dpi=130, bbox_inches="tight")
    fig.savefig(paths[1], bbox_inches="tight")
    return paths


@dataclass
class Table:
    header: Sequence[str]
    rows: Sequence[Sequence[Any]]
    caption: str = ""


@dataclass
class Link:
    """A paragraph that is one link: ``text`` to ``href`` (a page beside this one)."""

    text: str
    href: str


@dataclass
class Section:
    title: str
    blocks: list[Any] = field(default_factory=list)  # str (a paragraph), Table, Figure, Link

    def add(self, block: Any) -> Section:
        self.blocks.append(block)
        return self


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape("" if value is None else str(value))


def _block(block: Any) -> str:
    if isinstance(block, Figure):
        return f"<figure>{figure_svg(block)}</figure>"
    if isinstance(block, Table):
        head = "".join(f"<th>{html.escape(str(h))}</th>" for h in block.header)
        body = "".join("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>" for row in block.rows)
        caption = f"<caption>{html.escape(block.caption)}</caption>" if block.caption else ""
        return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    if isinstance(block, Link):
        return f'<p><a href="{html.escape(block.href)}">{html.escape(block.text)}</a></p>'
    return f"<p>{html.escape(str(block))}</p>"


_TEMPLATE = jinja2.Template(
    """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; border-bottom: 1px solid #ddd; padding-bottom: .2em; margin-top: 2em; }
table { border-collapse: collapse; margin: 1em 0; font-size: .9em; }
th, td { border: 1px solid #ccc; padding: .3em .6em; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
caption { caption-side: top; text-align: left; font-weight: 600; padding-bottom: .3em; }
figure { margin: 1em 0; } figure svg { max-width: 100%; height: auto; }
p.lead { font-size: 1.05em; color: #444; }
</style></head><body>
<h1>{{ title }}</h1>
{% if lead %}<p class="lead">{{ lead }}</p>{% endif %}
{% for section in sections %}<section><h2>{{ section.title }}</h2>
{% for block in section.blocks %}{{ block }}
{% endfor %}</section>
{% endfor %}</body></html>
""",
    autoescape=False,
)


def render_page(title: str, sections: Sequence[Section], lead: str = "") -> str:
    rendered = [{"title": html.escape(s.title), "blocks": [_block(b) for b in s.blocks]} for s in sections]
    return _TEMPLATE.render(title=html.escape(title), lead=html.escape(lead), sections=rendered)


def write_page(path: str | Path, title: str, sections: Sequence[Section], lead: str = "") -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_page(title, sections, lead), encoding="utf-8")
    return path
