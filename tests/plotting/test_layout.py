"""Figures fit their own canvas: saved with a plain savefig, or drawn as TensorBoard draws the image that
bptt.watch logs, every legend, axis label, title and tick label lies inside the figure."""

import pytest
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image
from torch import nn

import bptt
from bptt.build import make_model, make_task
from bptt.config import build_config
from bptt.diagnostics import diagnose, figures
from bptt.plotting.style import legend_outside


def outside_the_canvas(fig):
    """What of ``fig`` reaches past its canvas, drawn at the figure's own size: each legend, title and axis
    label by name, and the extent of everything drawn (``Figure.get_tightbbox``, tick labels included)."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    width, height = fig.bbox.width, fig.bbox.height
    artists = [*fig.legends, *fig.texts]
    if fig._suptitle is not None:
        artists.append(fig._suptitle)
    for ax in fig.axes:
        artists += [ax.xaxis.label, ax.yaxis.label, ax.title, ax._left_title, ax._right_title]
        if ax.get_legend() is not None:
            artists.append(ax.get_legend())
    bad = []
    for artist in artists:
        if not artist.get_visible() or (hasattr(artist, "get_text") and not artist.get_text()):
            continue
        box = artist.get_window_extent(renderer)
        if box.x0 < -1 or box.y0 < -1 or box.x1 > width + 1 or box.y1 > height + 1:
            bad.append((type(artist).__name__, getattr(artist, "get_text", lambda: "legend")(), tuple(box.bounds)))
    drawn = fig.get_tightbbox(renderer).transformed(fig.dpi_scale_trans)  # inches to pixels
    if drawn.x0 < -1 or drawn.y0 < -1 or drawn.x1 > width + 1 or drawn.y1 > height + 1:
        bad.append(("everything drawn", "", tuple(drawn.bounds)))
    return bad


def test_the_check_finds_a_legend_cut_off():
    # A legend placed outside the axes of a figure laid out by hand: what savefig without bbox_inches cuts.
    fig = Figure(figsize=(4, 3))
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], label="a series with a long name")
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0))
    assert outside_the_canvas(fig)
    laid_out = Figure(figsize=(4, 3), layout="constrained")
    ax = laid_out.subplots()
    ax.plot([0, 1], [0, 1], label="a series with a long name")
    legend_outside(ax)
    assert outside_the_canvas(laid_out) == []


def _diagnosis(label, **settings):
    config = build_config(
        {
            "hidden_size": 8,
            "batch_size": 8,
            "eval_size": 16,
            "steps": 1,
            "progress": False,
            "task": "adding",
            "seq_len": 15,
        }
        | settings
    )
    task = make_task(config)
    return diagnose(make_model(config, task), task, examples=8, label=label)


@pytest.fixture(scope="module")
def many():
    """Twelve models, as many as the demo draws: the profile splits into one panel per family."""
    torch.manual_seed(0)
    made = {}
    for i, activation in enumerate(("sigmoid", "tanh", "relu", "leaky_relu") * 2):
        label = f"{activation} RNN {i}" + (" + xavier" if i % 2 else "")
        made[label] = _diagnosis(label, activation=activation, init="xavier" if i % 2 else "pytorch")
    made["LSTM"] = _diagnosis("LSTM", cell="lstm")
    made["GRU x2"] = _diagnosis("GRU x2", cell="gru", num_layers=2)
    return made


def test_a_saved_diagnosis_figure_keeps_its_legend_and_labels(tmp_path, many):
    for name, fig in many["LSTM"].figures().items():
        path = tmp_path / f"{name}.png"
        fig.savefig(path)  # no bbox_inches: the canvas as it is
        assert Image.open(path).size == (round(fig.get_figwidth() * fig.dpi), round(fig.get_figheight() * fig.dpi))
        assert outside_the_canvas(fig) == [], name
    for name, fig in figures.diagnosis_figures(many).items():
        assert outside_the_canvas(fig) == [], name


def test_many_models_are_split_into_panels_with_readable_legends(many):
    families = {
        label: "gated" if d.cell != "rnn" else "remedy" if "xavier" in d.label else "plain" for label, d in many.items()
    }
    fig = figures.profile_figure(many, families)
    assert [ax.get_title(loc="left") for ax in fig.axes] == ["plain RNNs", "remedies", "gated cells"]
    for ax in fig.axes:
        legend = ax.get_legend()
        assert legend is not None and all(t.get_fontsize() >= 9 for t in legend.get_texts())
    gated = [line.get_label() for line in fig.axes[2].get_lines()]
    assert "LSTM: dL/dc_t (cell state)" in gated  # dL/dc beside dL/dh for the LSTM


class _Writer:
    """What a TensorBoard SummaryWriter is given, drawn as TensorBoard draws a figure: the canvas as it is."""

    def __init__(self):
        self.figures = []

    def add_scalar(self, *args, **kwargs):
        pass

    def add_histogram_raw(self, *args, **kwargs):
        pass

    def flush(self):
        pass

    def add_figure(self, tag, figure, step):
        self.figures.append((outside_the_canvas(figure), figure.get_size_inches().tolist()))


class _Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(2, 6, num_layers=2)

    def forward(self, x):
        return self.rnn(x)[0][-1].sum()


def test_the_tensorboard_image_keeps_its_legend_and_x_label():
    model = _Model()
    writer = _Writer()
    watch = bptt.watch(model, every=1, to=writer)
    for _ in range(2):
        model(torch.randn(9, 3, 2)).backward()
    watch.close()
    assert len(writer.figures) == 2
    for outside, size in writer.figures:
        assert outside == [] and size == [6.5, 3.6]
    fig = watch.records[-1].figure()
    assert fig.axes[0].get_xlabel().startswith("lag k") and fig.axes[0].get_legend() is not None
