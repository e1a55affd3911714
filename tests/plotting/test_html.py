"""Figures in the pages: text drawn as written, the axes' own numbers as the axes format them."""

import re

from matplotlib.figure import Figure

from bptt.plotting.html import figure_svg


def test_a_log_axis_reads_as_powers_of_ten_and_a_label_with_dollars_as_written():
    fig = Figure()
    ax = fig.subplots()
    ax.plot([100, 1000, 5000], [1e-2, 1e-1, 1.0], label="cost $5 + $6")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_title("a $\\notacommand title")
    ax.legend()
    svg = figure_svg(fig)
    drawn = re.sub(r"<!--.*?-->", "", svg, flags=re.S)  # matplotlib comments each text with its source
    assert "mathdefault" not in drawn and "10^{" not in drawn  # the ticks were typeset, not printed raw
    assert "cost $5 + $6" in svg and "a $\\notacommand title" in svg
