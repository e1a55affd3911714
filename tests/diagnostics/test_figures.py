"""Figures that read: one colour per series, legends outside the data, bounds clipped to the data, zeros marked,
and titles that say when the models were measured."""

import math

import pytest
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_hex
from matplotlib.figure import Figure

from bptt.build import make_model, make_task
from bptt.config import build_config
from bptt.diagnostics import diagnose, figures
from bptt.plotting.axes import VANISHED, fit_to_data, plot_log, plot_reference, readable_log_ticks
from bptt.plotting.style import legend_outside, series_styles
from bptt.training import Trainer

SMALL = {"hidden_size": 8, "batch_size": 8, "eval_size": 16, "progress": False}


def _diagnosis(label, steps=0, **settings):
    config = build_config({**SMALL, "task": "adding", "seq_len": 12, "steps": max(steps, 1), **settings})
    if steps:
        trainer = Trainer(config)
        trainer.run()
        model, task = trainer.model, trainer.task
    else:
        task = make_task(config)
        model = make_model(config, task)
    return diagnose(model, task, examples=8, label=label)


@pytest.fixture(scope="module")
def diagnoses():
    torch.manual_seed(0)
    return {
        "sigmoid RNN": _diagnosis("sigmoid RNN", activation="sigmoid", init="orthogonal", init_scale=20.0),
        "tanh RNN": _diagnosis("tanh RNN"),
        "LSTM": _diagnosis("LSTM", cell="lstm"),
        "GRU x2": _diagnosis("GRU x2", cell="gru", num_layers=2),
    }


def _labelled_lines(ax):
    return [line for line in ax.get_lines() if not line.get_label().startswith("_")]


def _data_lines(ax, labels):
    return [line for line in _labelled_lines(ax) if line.get_label().split(" (")[0] in labels]


def test_every_series_of_a_figure_is_drawn_once_in_its_own_colour(diagnoses):
    fig = figures.profile_figure(diagnoses)
    lines = _data_lines(fig.axes[0], diagnoses)
    assert sorted(line.get_label() for line in lines) == sorted(diagnoses)
    colours = [to_hex(line.get_color()) for line in lines]
    assert len(set(colours)) == len(colours)


def test_the_palette_groups_families_and_never_repeats_a_colour():
    families = (
        {f"plain {i}": "plain" for i in range(3)}
        | {f"remedy {i}": "remedy" for i in range(12)}
        | {f"gated {i}": "gated" for i in range(3)}
    )
    styles = series_styles(families)
    assert len({s.color for s in styles.values()}) == len(families)  # a family past its palette borrows spares
    assert all(styles[f"gated {i}"].linewidth > styles["plain 0"].linewidth for i in range(3))
    assert {styles[f"remedy {i}"].linestyle for i in range(4)} != {"-"}
    with pytest.raises(ValueError, match="family must be one of"):
        series_styles({"x": "exotic"})


def test_legends_sit_outside_the_axes(diagnoses):
    for fig in (
        figures.profile_figure(diagnoses),
        figures.jacobian_figure(diagnoses),
        figures.update_figure(diagnoses),
    ):
        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        renderer = canvas.get_renderer()
        legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None] + list(fig.legends)
        assert legends
        for legend in legends:
            box = legend.get_window_extent(renderer)
            assert all(box.x0 >= ax.get_window_extent(renderer).x1 - 1 for ax in fig.axes)


def test_titles_say_whether_the_models_were_trained(diagnoses):
    assert figures.profile_figure(diagnoses).axes[0].get_title().endswith(", at initialisation")
    trained = {"tanh RNN": _diagnosis("tanh RNN", steps=3)}
    assert trained["tanh RNN"].trained_steps == 3 and trained["tanh RNN"].state == "after 3 training steps"
    assert figures.profile_figure(trained).axes[0].get_title() == (
        figures.TITLES["profile"] + ", after 3 training steps"
    )
    assert figures.update_figure(trained).get_suptitle().endswith("after 3 training steps")
    assert "(after 3 training steps)" in trained["tanh RNN"].verdict()


def test_bounds_are_clipped_to_the_data(diagnoses):
    sigmoid = diagnoses["sigmoid RNN"]
    assert float(sigmoid.chain.bound[-1]) > 1e8  # gamma sigma_max = 5: the bound climbs fast
    for fig, ax_index in ((figures.profile_figure(diagnoses), 0), (figures.jacobian_figure(diagnoses), 1)):
        low, high = fig.axes[ax_index].get_ylim()
        data = [
            v
            for line in _data_lines(fig.axes[ax_index], diagnoses)
            for v in line.get_ydata()
            if math.isfinite(v) and v > 0
        ]
        assert high <= 2.0 * max(max(data), 1.0) * 1.0001 and low >= min(data) / 2.0 * 0.9999


def test_series_that_are_exactly_zero_are_marked_not_dropped():
    ax = Figure().subplots()
    ax.set_yscale("log")
    assert plot_log(ax, [0, 1, 2], [0.0, 0.0, 0.0], "dead ReLU")
    assert not plot_log(ax, [0, 1, 2], [1.0, 0.5, 0.25], "tanh")
    labels = [line.get_label() for line in _labelled_lines(ax)]
    assert labels == [f"dead ReLU (v {VANISHED})", "tanh"]
    marker = _labelled_lines(ax)[0]
    assert list(marker.get_xdata()) == [0, 1, 2] and marker.get_marker() == "v"
    plot_reference(ax, [0, 1, 2], [1.0, 1e30, 1e60])
    fit_to_data(ax, [[1.0, 0.5, 0.25]])
    assert ax.get_ylim()[1] <= 2.0 + 1e-9  # the reference line did not move the axis


def test_a_one_layer_model_gets_no_per_layer_chart(diagnoses):
    assert "layers" not in figures.diagnosis_figures({"tanh RNN": diagnoses["tanh RNN"]})
    both = figures.diagnosis_figures(diagnoses)
    assert set(both) == {"profile", "contribution", "updates", "jacobian", "layers"}
    bars = list(both["layers"].axes[0].patches)
    assert len(bars) == 2  # only the stacked GRU, one bar per layer


def test_a_diagnosis_shows_itself_in_a_notebook(diagnoses):
    page = diagnoses["tanh RNN"]._repr_html_()
    assert page.count("<svg") == 4 and "tanh RNN: at initialisation" in page
    assert "memory horizon" in page and "of lag 0" in page


def test_log_ticks_over_a_small_range_read_as_plain_numbers():
    fig = Figure()
    ax = fig.subplots()
    ax.plot([1, 2, 3], [0.1725, 0.1731, 0.1740])
    ax.set_yscale("log")
    readable_log_ticks(ax)
    FigureCanvasAgg(fig).draw()
    labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert labels and all("10^" not in t and "times" not in t and t[0].isdigit() for t in labels)


def test_legend_outside_places_a_figure_legend_right_of_its_anchor():
    fig = Figure()
    left, right = fig.subplots(1, 2)
    left.plot([0, 1], [0, 1], label="a")
    right.plot([0, 1], [1, 0], label="b")
    right.plot([0, 1], [1, 0], label="a")
    legend_outside(fig, right)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["a", "b"]
