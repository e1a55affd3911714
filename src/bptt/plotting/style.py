"""How every figure tells its series apart: one colour per series, grouped by family.

Three families, three hues: the plain RNNs in blues and greys, the remedies
(initialisation, clipping, depth, residual connections, attention, IRNN) in warm
colours with broken lines, the gated cells (LSTM, GRU) in greens with thick
lines. Within a figure no two series share a colour. Legends sit outside the
axes, to the right, so they never cover the data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure

FAMILIES = ("plain", "remedy", "gated")
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


@dataclass(frozen=True)
class SeriesStyle:
    color: str
    linestyle: Any
    linewidth: float

    def line(self) -> dict[str, Any]:
        """Keyword arguments of ``Axes.plot``."""
        return {"color": self.color, "linestyle": self.linestyle, "linewidth": self.linewidth}


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
        styles[label] = SeriesStyle(color, linestyles[index % len(linestyles)], LINEWIDTH[family])
    return styles


def styles_for(labels: Iterable[str], families: Mapping[str, str] | None = None) -> dict[str, SeriesStyle]:
    """Styles for ``labels``: their family from ``families`` where given, else from the label itself."""
    families = families or {}
    return series_styles({label: families.get(label) or family_of_label(label) for label in labels})


def legend_outside(holder: Axes | Figure, axes: Axes | None = None, **options: Any) -> None:
    """The legend to the right of the axes (of ``axes`` for a figure-wide legend), never over the data."""
    options = {"fontsize": 7, "frameon": False, **options}
    if isinstance(holder, Figure):
        handles, labels = [], []
        for ax in holder.axes:
            for handle, label in zip(*ax.get_legend_handles_labels()):
                if label not in labels:
                    handles.append(handle)
                    labels.append(label)
        if handles:
            anchor = axes if axes is not None else holder.axes[-1]
            holder.legend(
                handles,
                labels,
                loc="upper left",
                bbox_to_anchor=(1.02, 1.0),
                bbox_transform=anchor.transAxes,
                borderaxespad=0.0,
                **options,
            )
        return
    if holder.get_legend_handles_labels()[0]:
        holder.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, **options)
