"""How every figure tells its series apart: one colour per series, grouped by family.

Three families, three hues: the plain RNNs in blues and greys, the remedies
(initialisation, clipping, depth, residual connections, attention, IRNN) in warm
colours with broken lines, the gated cells (LSTM, GRU) in greens with thick
lines. Within a figure no two series share a colour. Legends sit outside the
axes, to the right, so they never cover the data; figures are laid out
(``layout="constrained"``) so that legends and labels fit their own canvas,
however the figure is saved. A figure of more series than one panel reads
well splits them into one panel per family (``family_panels``).

Every series drawn with a style carries an SVG id (``gid``) naming its series,
``bptt-series--<key>`` (``series_key``), and so do its legend entries: a page's
script highlights one model in every figure by that key.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure

FAMILIES = ("plain", "remedy", "gated")
FAMILY_NAMES = {"plain": "plain RNNs", "remedy": "remedies", "gated": "gated cells"}
#: The most series one panel holds before a figure splits them by family.
PANEL_LIMIT = 6
LEGEND_FONTSIZE = 9
SERIES_ID_PREFIX = "bptt-series--"
PALETTE = {
    "plain": ("#1f4e9c", "#5b9bd5", "#6f6f6f", "#17a2b8", "#a6bddb"),
    "remedy": (
        "#d62728",
        "#ff7f0e",
        "#8c564b",
        "#e377c2",
        "#bcbd22",
        "#b8860b",
        "#9467bd",
        "#f4a582",
        "#7f0000",
        "#fdd0a2",
    ),
    "gated": ("#2ca02c", "#00441b", "#74c476", "#1b9e77", "#a1d99b"),
}
LINESTYLES = {"plain": ("-",), "remedy": ("--", "-.", (0, (5, 1, 1, 1, 1, 1)), (0, (3, 1))), "gated": ("-",)}
LINEWIDTH = {"plain": 1.4, "remedy": 1.4, "gated": 2.2}
#: Colours outside every family, for the overflow of a family that has more series than colours.
SPARE = (
    "#393b79",
    "#637939",
    "#843c39",
    "#7b4173",
    "#3182bd",
    "#e6550d",
    "#31a354",
    "#756bb1",
    "#636363",
    "#9c9ede",
    "#cedb9c",
    "#e7969c",
)


def series_key(label: str) -> str:
    """A series' key in a page: its label in lower case, every run of other characters one '-'."""
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-") or "series"


@dataclass(frozen=True)
class SeriesStyle:
    color: str
    linestyle: Any
    linewidth: float
    key: str = ""

    @property
    def gid(self) -> str | None:
        return f"{SERIES_ID_PREFIX}{self.key}" if self.key else None

    def line(self) -> dict[str, Any]:
        """Keyword arguments of ``Axes.plot``."""
        return {"color": self.color, "linestyle": self.linestyle, "linewidth": self.linewidth, "gid": self.gid}

    def dash_pattern(self) -> str:
        """The line style as an SVG stroke-dasharray ("" for a solid line)."""
        if self.linestyle == "-":
            return ""
        if self.linestyle == "--":
            return "6 3"
        if self.linestyle == "-.":
            return "6 2 1 2"
        return " ".join(str(v) for v in self.linestyle[1]) if isinstance(self.linestyle, tuple) else "4 2"


#: Label parts every default run carries (clipping at norm 1, an LSTM's forget bias 1): not a remedy's mark.
DEFAULT_PARTS = frozenset({"clip1", "fb1"})


def family_of_label(label: str) -> str:
    """A run label's family (``RunConfig.label()``: the cell or activation, then its remedies)."""
    head, *parts = label.split(" [")[0].split("+")
    if head.split(" ")[0].lower() in ("lstm", "gru"):
        return "gated"
    return "remedy" if set(parts) - DEFAULT_PARTS else "plain"


def series_styles(families: Mapping[str, str]) -> dict[str, SeriesStyle]:
    """A style for every series (label -> family), in order: distinct colours, grouped by family."""
    used = dict.fromkeys(FAMILIES, 0)
    spare = iter(SPARE)
    styles = {}
    for label, family in families.items():
        if family not in FAMILIES:
            raise ValueError(f"family must be one of {', '.join(FAMILIES)}, got {family!r} for {label!r}")
        index = used[family]
        used[family] += 1
        colours = PALETTE[family]
        color = colours[index] if index < len(colours) else next(spare)
        linestyles = LINESTYLES[family]
        styles[label] = SeriesStyle(color, linestyles[index % len(linestyles)], LINEWIDTH[family], series_key(label))
    return styles


def styles_for(labels: Iterable[str], families: Mapping[str, str] | None = None) -> dict[str, SeriesStyle]:
    """Styles for ``labels``: their family from ``families`` where given, else from the label itself."""
    families = families or {}
    return series_styles({label: families.get(label) or family_of_label(label) for label in labels})


def family_panels(families: Mapping[str, str], limit: int = PANEL_LIMIT) -> list[tuple[str, list[str]]]:
    """The series of a figure grouped into panels: one panel of every label when there are at most
    ``limit``, else one per family in ``FAMILIES`` order, each titled with the family's name."""
    if len(families) <= limit:
        return [("", list(families))]
    return [
        (FAMILY_NAMES[family], [label for label, f in families.items() if f == family])
        for family in FAMILIES
        if family in families.values()
    ]


def _tag_legend(legend: Any, handles: list[Any]) -> None:
    """Give each legend entry the id of the series it stands for."""
    for handle, text, drawn in zip(handles, legend.texts, legend.legend_handles):
        gid = handle.get_gid() if hasattr(handle, "get_gid") else None
        if gid:
            text.set_gid(f"{gid}--legend")
            if drawn is not None:
                drawn.set_gid(f"{gid}--legend-mark")


def legend_outside(holder: Axes | Figure, axes: Axes | None = None, **options: Any) -> None:
    """The legend to the right of the axes, never over the data: for a figure (a legend of every
    axes), at the figure's right edge, which a constrained layout keeps inside the canvas.
    ``axes`` is accepted for older callers; a figure-wide legend sits right of every axes."""
    options = {"fontsize": LEGEND_FONTSIZE, "frameon": False, **options}
    if isinstance(holder, Figure):
        handles, labels = [], []
        for ax in holder.axes:
            for handle, label in zip(*ax.get_legend_handles_labels()):
                if label not in labels:
                    handles.append(handle)
                    labels.append(label)
        if handles:
            outside = holder.get_layout_engine() is not None
            place = {"loc": "outside right upper"} if outside else {"loc": "upper left", "bbox_to_anchor": (1.0, 1.0)}
            _tag_legend(holder.legend(handles, labels, **place, **options), handles)
        return
    handles, labels = holder.get_legend_handles_labels()
    if handles:
        legend = holder.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, **options)
        _tag_legend(legend, handles)
