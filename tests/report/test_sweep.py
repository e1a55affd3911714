"""The sweep report: one self-contained HTML file."""

import itertools
import re
import sqlite3
from collections import Counter

import pytest

from bptt.cli.main import main
from bptt.config import build_config
from bptt.plotting.axes import at_float32_floor
from bptt.report.interactive import PAGE_NUMBERS, shares
from bptt.report.published import PUBLISHED
from bptt.report.sweep import run_point, told_apart
from bptt.store import Database, RunSummary
from bptt.training import Trainer

SMALL = {"hidden_size": 8, "batch_size": 8, "steps": 4, "eval_size": 16, "eval_every": 2, "progress": False}


def test_report_holds_every_figure_and_table_and_nothing_outside_itself(tmp_path, sweep_db):
    db = sweep_db()
    out = tmp_path / "report.html"
    assert main(["report", "--db", str(db), "--sweep", "s", "-o", str(out)]) == 0
    page = out.read_text()
    for title in (
        "Runs",
        "Final metric against length",
        "Success rate across seeds",
        "Convergence",
        "Gradient profiles",
        "Published results",
        "Runs that diverged or failed",
    ):
        assert f"<h2>{title}</h2>" in page
    # Two tasks: metric, convergence and gradient-profile figures for each.
    assert page.count("<svg") == 6
    assert page.count("<table>") == 1 + 2 + 1 + 1  # overview, success per task, published, problems
    assert "memoryless baseline" in page and "tanh+xavier" in page and "loss became" in page
    assert "0.177" in page and "Bai, Kolter, Koltun 2018" in page  # the tanh RNN row at T=600 met our run
    assert re.findall(r"""(?:src|href)\s*=\s*["'](?!#)""", page) == []
    # Its scripts are inline (the interactive layer), none loaded from outside.
    assert (
        "<link" not in page and re.findall(r"<script[^>]*\bsrc", page) == [] and re.findall(r"url\((?!#)", page) == []
    )
    assert "<script>" in page and 'id="bptt-data"' in page


def test_report_says_when_no_run_recorded_gradient_profiles(tmp_path, sweep_db):
    db = sweep_db(record_every=0)
    out = tmp_path / "report.html"
    assert main(["report", "--db", str(db), "-o", str(out)]) == 0
    page = out.read_text()
    assert page.count("no run recorded gradient profiles") == 2 and page.count("<svg") == 4


def test_report_errors_are_one_line(tmp_path, capsys, sweep_db):
    assert main(["report", "--db", str(tmp_path / "none.db")]) == 2
    assert "no database" in capsys.readouterr().err
    db = sweep_db(record_every=0)
    assert main(["report", "--db", str(db), "--sweep", "other"]) == 2
    assert "sweeps here: s" in capsys.readouterr().err


def test_published_numbers_carry_their_source():
    assert all(r.source and r.task and r.quantity in ("loss", "accuracy") for r in PUBLISHED)
    adding = {r.model: r.value for r in PUBLISHED if r.task == "adding"}
    assert adding == {"LSTM": 0.164, "GRU": 5.3e-5, "RNN (tanh)": 0.177, "TCN": 5.8e-5}


def test_report_explains_a_profile_at_the_float32_floor_and_says_when_no_run_failed(tmp_path):
    db = tmp_path / "floor.db"
    with Database(db) as store:
        # Sigmoid with a small W_hh: about (0.5 / 4)^k, under float32's floor within 40 steps. Tanh with an
        # orthogonal W_hh keeps its gradient far above it.
        for activation, scale in (("sigmoid", 0.5), ("tanh", 1.0)):
            config = build_config(
                {
                    **SMALL,
                    "task": "adding",
                    "seq_len": 150,
                    "activation": activation,
                    "init": "orthogonal",
                    "init_scale": scale,
                    "record_every": 2,
                }
            )
            Trainer(config, store, sweep="floor").run()
    out = tmp_path / "report.html"
    assert main(["report", "--db", str(db), "-o", str(out)]) == 0
    page = out.read_text()
    problems = page[page.index("<h2>Runs that diverged or failed</h2>") :]
    assert "None: every run finished." in problems and "<table>" not in problems
    assert "float32&#x27;s floor" in page and "sigmoid+orthogonal" in page.split("float32&#x27;s floor")[0][-400:]
    assert "tanh+orthogonal+clip1: the profile" not in page


def test_profiles_at_the_floor_are_told_apart():
    assert at_float32_floor([1e-2, 1e-31, 1e-31]) and not at_float32_floor([1.0, 1e-20, 0.0])


def test_the_report_in_a_browser(tmp_path, sweep_db, browser):
    db = sweep_db()
    out = tmp_path / "report.html"
    assert main(["report", "--db", str(db), "--sweep", "s", "-o", str(out)]) == 0
    assert min(browser.load_times(out)) < 1000  # from file://, navigation start to first numbers
    assert (out).stat().st_size < 2_000_000  # one file, under 2 MB
    data = browser.run("return BPTT.page.data")
    assert [g["id"] for g in data["groups"]] == ["adding", "sentiment"]
    # Pick a remedy from the keyboard: it stays, the others dim in every figure and the success table.
    browser.press("button.pick[data-key='tanh-xavier-clip1']", "ENTER")
    figures = browser.run(
        "return [...document.querySelectorAll('figure [id^=bptt-series--]')].map((n) => [n.id.split('--')[1], n.classList.contains('dimmed')])"
    )
    assert {key for key, dim in figures if not dim} == {"tanh-xavier-clip1"} and len(figures) > 10
    rows = browser.run(
        "return [...document.querySelectorAll('tr[data-key]')].filter((r) => !r.classList.contains('dimmed')).map((r) => r.dataset.key)"
    )
    assert rows == ["tanh-xavier-clip1"]
    # Hide the remedies' family (tanh+xavier+clip1 is one) with the space bar: its curves go, the plain ones stay.
    browser.press("input[data-family=remedy]", "SPACE")
    hidden = browser.run(
        "return [...document.querySelectorAll('figure [id^=bptt-series--]')]"
        ".map((n) => [n.id.split('--')[1], getComputedStyle(n).display === 'none'])"
    )
    assert {key for key, gone in hidden if gone} == {"tanh-xavier-clip1"}
    browser.press("input[data-family=remedy]", "SPACE")
    # Each remedy's ratio at lag 5 of adding, against the database's profiles read here: the mean over seeds
    # of the last recorded profile at the longest length (16), by lag.
    with Database(db, read_only=True) as store:
        runs = [r for r in store.runs(sweep="s") if r.task == "adding" and r.config["seq_len"] == 16]
        expected = {}
        for label in {r.label for r in runs}:
            last = [store.gradient_profiles(r.id)[-1].hidden[-1] for r in runs if r.label == label]
            by_lag = [sum(p[len(p) - 1 - k] for p in last) / len(last) for k in (0, 5)]
            expected[label] = by_lag[1] / by_lag[0]
    browser.key("lag-adding", "HOME", *(["ARROW_RIGHT"] * 5))
    shown = browser.run("return BPTT.page.lagRatios(BPTT.page.data.groups[0], 5)")
    bars = browser.run(
        "return Object.fromEntries([...document.querySelectorAll('#lag-chart-adding [data-value]')].map((t) => [t.dataset.value, t.textContent]))"
    )
    for label, value in expected.items():
        key = label.replace("+", "-")
        assert shown[key] == pytest.approx(value, rel=1e-3) and float(bars[key]) == pytest.approx(value, rel=0.07)
    # The training-step slider goes back to the first recorded step.
    browser.key("step-adding", "HOME")
    assert browser.run("return document.getElementById('step-value-adding').textContent") == "2"
    assert browser.errors() == []
    inked, colours = browser.screenshot(tmp_path / "report.png")
    assert inked > 0.05 and colours > 50
    browser.open(out, width=390, height=844)
    assert browser.run("return document.documentElement.scrollWidth <= window.innerWidth + 1")
    assert browser.errors() == []


def test_the_sliders_numbers_stay_within_the_pages_budget():
    # A canonical-sized sweep: 30 remedies over its tasks, profiles of 1000 lags recorded 10 times.
    budget = PAGE_NUMBERS // 30
    lags, steps, replay = shares(budget, 1000, 10)
    assert lags + steps * replay <= budget and lags >= 30 and replay >= 30 and steps == 10
    assert shares(10**9, 54, 15) == (54, 12, 54)  # small profiles are kept whole, 12 steps at most
    assert PAGE_NUMBERS * 9 < 1_000_000  # about 9 bytes a number in the page: under 1 MB for every slider


def test_a_label_holding_mathtext_is_drawn_as_written(tmp_path, capsys):
    db = tmp_path / "r.db"
    settings = {"task": "adding", "seq_len": 5, "hidden_size": 4, "batch_size": 4, "eval_size": 4, "steps": 4}
    with Database(db) as opened:
        Trainer(build_config({**settings, "eval_every": 2, "progress": False}), opened, sweep="s").run()
    connection = sqlite3.connect(db)
    connection.execute("UPDATE runs SET label = ?", ("$\\undefinedcmd{$",))
    connection.commit()
    connection.close()
    assert main(["report", "--db", str(db), "-o", str(tmp_path / "out.html")]) == 0, capsys.readouterr().err
    assert "\\undefinedcmd{" in (tmp_path / "out.html").read_text()


def test_runs_of_one_label_but_two_models_are_told_apart_by_what_differs(tmp_path):
    """Two learning rates under one label would be averaged as one remedy: each label names the rate. Runs
    that differ only in length, seed or schedule (steps) keep the plain label."""
    db = tmp_path / "r.db"

    def finished(store, settings):
        config = build_config({**SMALL, **settings})
        row = store.create_run(config.identity(), config.label(), config.task, config.model_dump())
        final = RunSummary(seq_len=config.seq_len, steps=config.steps, test_loss=1.0, test_metric=0.5, metric="m")
        store.finish_run(row, "finished", final)

    with Database(db) as store:
        for lr, seq_len, seed in itertools.product((0.001, 0.01), (50, 100), (0, 1)):
            settings = {"task": "copy", "cell": "lstm", "seq_len": seq_len, "seed": seed, "lr": lr}
            finished(store, {**settings, "steps": 4 + seq_len})
        finished(store, {"task": "adding", "seq_len": 50})
        points = told_apart([run_point(r) for r in store.runs()])
    labels = Counter((p.task, p.label) for p in points)
    lstm = "lstm+fb1+clip1"
    assert labels == {("copy", f"{lstm} (lr 0.001)"): 4, ("copy", f"{lstm} (lr 0.01)"): 4, ("adding", "tanh+clip1"): 1}
    out = tmp_path / "report.html"
    assert main(["report", "--db", str(db), "-o", str(out)]) == 0
    page = out.read_text()
    # In the runs' table as in the figures: four runs of each rate.
    for lr in ("0.001", "0.01"):
        assert re.search(rf"<td>{re.escape(lstm)} \(lr {lr}\)</td>\s*<td[^>]*>4</td>", page)
