"""`bptt demo`: the story from the terminal alone, one self-contained page holding every figure, and a quick
version that tells the same story, smaller."""

import contextlib
import io
import re

import pytest
import torch

from bptt.build import make_model, make_task
from bptt.cli.main import main
from bptt.config import build_config
from bptt.demo.experiment import MODELS, DemoSettings, demo_plan
from bptt.demo.page import PAGE_FIGURES, jacobian_text
from bptt.demo.story import REMEDIES, outcome
from bptt.diagnostics import diagnose
from bptt.plotting.style import series_styles

LINE = re.compile(
    r"^\[\s*(\d+)/(\d+)\] (.+?): delay (\d+) (\d+) %, delay (\d+) (\d+) %; dL/dh lag \d+/lag 0 \S+; "
    r"memory horizon \d+ steps?(?:, reach \d+)?  \((\d+:\d\d) elapsed, (about \d+:\d\d left|done)\)$"
)


@pytest.fixture(scope="module")
def quick_demo(tmp_path_factory):
    """The quick demo run once, its stdout (a StringIO: not a terminal) kept for every test below."""
    out = tmp_path_factory.mktemp("demo")
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main(["demo", "--quick", "--out", str(out)])
    return code, buffer.getvalue(), (out / "index.html").read_text(), out


def _model_lines(printed):
    return {match.group(3): match for line in printed.splitlines() if (match := LINE.match(line))}


@pytest.mark.slow
def test_quick_demo_writes_a_self_contained_page_with_every_figure(quick_demo):
    code, printed, page, out = quick_demo
    assert code == 0 and f"wrote {out / 'index.html'}" in printed
    settings = DemoSettings.quick()
    for label in settings.models:
        assert label in printed and label in page
    assert page.count("<svg") == len(PAGE_FIGURES)
    for title in PAGE_FIGURES:
        assert title in page, title
    references = re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', page)
    # Nothing loaded from elsewhere; the links out are to the explorable and the page of demo --beyond, beside it.
    assert all(ref.startswith(("#", "data:", "explore.html")) or ref == "beyond.html" for ref in references), references
    assert re.findall(r'src\s*=\s*"(?!data:|#)', page) == []
    # Its scripts (the interactive layer) are inline: nothing is loaded from outside.
    assert "<link" not in page and re.findall(r"<script[^>]*\bsrc", page) == [] and "url(http" not in page
    assert (out / "explore.html").is_file() and 'href="explore.html"' in page
    assert '<a href="beyond.html">' in page
    assert "The six impacts of the vanishing gradient, measured" in page
    assert page.count("<table>") == 5  # the story, three impact tables, the verdicts
    assert "; tanh RNN:" not in page  # the impacts as tables, not semicolon prose


@pytest.mark.slow
def test_quick_demo_is_labelled_quick_and_tells_the_story_from_the_terminal(quick_demo):
    _, printed, page, _ = quick_demo
    first = printed.splitlines()[0]
    settings = DemoSettings.quick()
    assert first.startswith("bptt demo, quick version:") and f"{len(demo_plan(settings).runs)} training runs" in first
    assert re.search(r"about \d+ (seconds|minutes) on a quiet 2-core machine", first)
    assert "The vanishing gradient, shown (quick version)" in page and "quick version" in page
    # One line per model, as it finished (stdout here is not a terminal), counting up, with the time left.
    lines = _model_lines(printed)
    assert list(lines) == list(settings.models)
    assert [int(m.group(1)) for m in lines.values()] == list(range(1, len(settings.models) + 1))
    assert list(lines.values())[-1].group(9) == "done"
    # At the end, a paragraph per remedy family, in the notes' words.
    for heading in ("The problem", "Activation functions", "Skip (residual) connections", "Attention", "LSTM and GRU"):
        assert f"- {heading}. " in printed and heading in REMEDIES.values()
    assert "Pascanu et al.&#x27;s condition is sufficient" in page


@pytest.mark.slow
def test_quick_demo_keeps_the_direction_of_the_story(quick_demo):
    _, printed, _, _ = quick_demo
    lines = _model_lines(printed)
    short = {label: int(m.group(5)) for label, m in lines.items()}
    long = {label: int(m.group(7)) for label, m in lines.items()}
    assert int(next(iter(lines.values())).group(6)) > int(next(iter(lines.values())).group(4))
    # Every model learns the short delay; the plain RNNs stay near chance at the long one ...
    assert all(value >= 80 for value in short.values()), short
    for plain in ("sigmoid RNN", "tanh RNN"):
        assert long[plain] <= 65, long
    # ... where the gated cells, attention and IRNN learn it.
    for remedy in ("LSTM (forget bias 5)", "GRU", "tanh RNN + attention", "IRNN (ReLU, identity init)"):
        assert long[remedy] >= 85 and long[remedy] > max(long["sigmoid RNN"], long["tanh RNN"]) + 20, long


def test_the_quick_demo_is_the_full_one_smaller():
    full, quick = DemoSettings(), DemoSettings.quick()
    assert set(quick.models) < set(full.models) and quick.delays["long"] < full.delays["long"]
    assert all(quick.steps[d] <= full.steps[d] for d in full.steps)
    assert [m.label for m in quick.chosen()] == [m.label for m in MODELS if m.label in quick.models]
    assert quick.expected_seconds() < full.expected_seconds() <= 4 * 60


def test_the_demo_replaces_the_dying_relu_row_with_irnn():
    labels = {m.label: m for m in MODELS}
    assert "ReLU RNN" not in labels
    irnn = labels["IRNN (ReLU, identity init)"].settings
    assert irnn["activation"] == "relu" and irnn["init"] == "identity" and irnn["lr"] < 0.02


def test_outcome_words_follow_the_numbers():
    assert outcome(1.0) == "learned it" and outcome(0.52) == "stayed near chance"
    assert outcome(0.68) == "learned it only partly" and outcome(None) == "diverged"


def test_the_demo_palette_gives_every_model_its_own_colour_grouped_by_family():
    styles = series_styles({m.label: m.family for m in MODELS})
    assert len({s.color for s in styles.values()}) == len(MODELS)
    gated = [styles[m.label] for m in MODELS if m.family == "gated"]
    plain = [styles[m.label] for m in MODELS if m.family == "plain"]
    assert all(s.linewidth > p.linewidth for s in gated for p in plain)  # the families read apart
    with pytest.raises(ValueError, match="family must be one of"):
        series_styles({"x": "exotic"})


def _diagnosis(**settings):
    config = build_config(
        {
            "hidden_size": 16,
            "batch_size": 8,
            "eval_size": 16,
            "steps": 1,
            "progress": False,
            "task": "adding",
            "seq_len": 40,
            **settings,
        }
    )
    task = make_task(config)
    torch.manual_seed(0)
    return diagnose(make_model(config, task), task, examples=8, label="model")


def test_the_page_reads_the_jacobian_figure_from_the_same_numbers():
    # gamma sigma_max(W_hh) = 8 / 4 = 2: the bound says nothing, yet the product shrinks; 2 / 4: it must vanish.
    saturated = _diagnosis(activation="sigmoid", init="orthogonal", init_scale=8.0)
    small = _diagnosis(activation="sigmoid", init="orthogonal", init_scale=2.0)
    lstm = _diagnosis(cell="lstm")
    lines = jacobian_text({"saturated": saturated, "small": small, "LSTM": lstm})
    assert "sufficient" in lines[0]
    grows, shrinks, gated = lines[1:]
    assert grows.startswith("saturated: sigma_max(W_hh) = 8;") and "the bound grows with k" in grows
    assert "yet the product shrinks" in grows and "must vanish" not in grows
    assert shrinks.startswith("small: sigma_max(W_hh) = 2;") and "the bound shrinks with k" in shrinks
    assert gated.startswith("LSTM: a gated cell, so no bound is drawn")
    product = float(saturated.chain.product_norm[saturated.lag_used - 1])
    assert f"is {product:.1e} at k = {saturated.lag_used}" in grows


def test_demo_on_a_device_this_machine_lacks_is_one_line_before_any_training(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["demo", "--quick", "--device", "cuda", "--out", str(tmp_path / "demo")]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.startswith("bptt: error: --device must be a device this machine has: cpu") and "got 'cuda'" in err
    assert len(err.splitlines()) == 1
    assert captured.out == "" and not (tmp_path / "demo").exists()


def _series(browser, key):
    """(elements of model ``key`` in the page's figures, how many of them are dimmed, how many hidden)."""
    return browser.run(
        "const nodes = [...document.querySelectorAll(`figure [id^='bptt-series--${arguments[0]}--']`)];"
        "return [nodes.length, nodes.filter((n) => n.classList.contains('dimmed')).length,"
        " nodes.filter((n) => getComputedStyle(n).display === 'none').length];",
        key,
    )


@pytest.mark.slow
def test_the_demo_page_in_a_browser(quick_demo, browser, tmp_path):
    _, printed, _, out = quick_demo
    assert min(browser.load_times(out / "index.html")) < 1000  # from file://, navigation start to first numbers
    assert (out / "index.html").stat().st_size < 2_000_000  # one file, under 2 MB
    models = browser.run("return BPTT.page.data.models")
    keys = {m["label"]: m["key"] for m in models}
    assert list(keys) == list(DemoSettings.quick().models)
    # Pick the tanh RNN from the keyboard: its curves stay, every other model's dim, in every figure and table.
    pick = "button.pick[data-key='tanh-rnn']"
    browser.press(pick, "ENTER")
    assert browser.run(f"return document.querySelector(\"{pick}\").getAttribute('aria-pressed')") == "true"
    shown, dimmed, _ = _series(browser, "tanh-rnn")
    assert shown >= 5 and dimmed == 0  # accuracy, loss, profile, contribution, updates, Jacobian figures
    for label, key in keys.items():
        if key != "tanh-rnn":
            count, dim, _ = _series(browser, key)
            assert count > 0 and dim == count, label
    rows = browser.run(
        "return [...document.querySelectorAll('tr[data-key]')].map((r) => [r.dataset.key, r.classList.contains('dimmed')])"
    )
    assert {key for key, dim in rows if not dim} == {"tanh-rnn"}
    browser.press(pick, "ENTER")  # picked again: cleared
    assert _series(browser, "gru")[1] == 0
    # Hide the plain RNNs with the space bar on their checkbox.
    browser.press("input[data-family=plain]", "SPACE")
    for m in models:
        count, _, hidden = _series(browser, m["key"])
        assert hidden == (count if m["family"] == "plain" else 0), m["label"]
    browser.press("input[data-family=plain]", "SPACE")
    # The lag slider: at the demo's lag every bar reads the ratio the terminal printed for that model.
    printed_ratio = {
        m.group(1): float(m.group(2)) for m in re.finditer(r"\] (.+?): delay .*?dL/dh lag \d+/lag 0 (\S+);", printed)
    }
    lag = int(re.search(r"dL/dh lag (\d+)/lag 0", printed).group(1))
    slider = browser.key("lag-demo", "HOME", *(["ARROW_RIGHT"] * lag))
    assert slider.get_attribute("value") == str(lag)
    bars = browser.run(
        "return Object.fromEntries([...document.querySelectorAll('#lag-chart-demo [data-value]')].map((t) => [t.dataset.value, t.textContent]))"
    )
    for label, key in keys.items():
        assert float(bars[key]) == pytest.approx(printed_ratio[label], rel=0.07), label  # two significant digits
    # The training-step slider replays the profiles recorded before training and every 25 steps.
    steps = browser.run("return BPTT.page.data.groups[0].replay.steps")
    assert steps == list(range(0, 301, 25))  # before training, then every 25 steps
    title = lambda: browser.run("return document.querySelector('#replay-chart-demo .chart-title').textContent")  # noqa: E731
    assert title().endswith("step 300")
    browser.key("step-demo", "HOME")
    assert title().endswith("step 0")
    lines = browser.run("return document.querySelectorAll('#replay-chart-demo g.series path').length")
    assert lines >= len(keys)
    first, last = browser.run(
        "const p = BPTT.page.data.groups[0].replay.profiles['gru']; return [p[0], p[p.length - 1]]"
    )
    assert first != last  # the profile moved during training
    assert browser.errors() == []
    inked, colours = browser.screenshot(tmp_path / "demo.png")
    assert inked > 0.05 and colours > 50
    # At phone width nothing runs off the side: wide tables scroll in their own box, figures shrink.
    browser.open(out / "index.html", width=390, height=844)
    assert browser.run("return document.documentElement.scrollWidth <= window.innerWidth + 1")
    inked, colours = browser.screenshot(tmp_path / "phone.png")
    assert inked > 0.05 and colours > 50
    assert browser.errors() == []
