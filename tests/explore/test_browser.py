"""The explorable in a real browser (headless Chromium): bptt's float64 numbers to 1e-6 for every cell and
activation, every control moved from the keyboard and its readouts checked against Python's, first numbers
in under a second from file://, no console error, a page that reads at 1280x800 and at phone width."""

import math
import os
import re
from pathlib import Path

import pytest

from bptt.explore.numbers import VECTOR_SETTINGS, measure
from bptt.explore.page import write_explorable
from bptt.explore.weights import ExploreSettings

RTOL = 1e-6


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    return write_explorable(tmp_path_factory.mktemp("explore") / "explore.html")


def _hash(settings):
    values = settings.to_dict()
    values["clip"] = values["clip"] or 0
    return "#" + "&".join(f"{k}={v}" for k, v in values.items())


def _close(ours, theirs, what, floor=0.0):
    """Every entry of ``ours`` within RTOL of ``theirs`` (absolute ``floor`` for values at rounding level)."""
    assert len(ours) == len(theirs), what
    for k, (a, b) in enumerate(zip(ours, theirs)):
        assert abs(a - b) <= RTOL * abs(b) + floor, f"{what}[{k}]: page {a!r}, bptt {b!r}"


def _compare(page_numbers, bptt):
    for name in ("profile", "factor_mean", "factor_max", "spectral_norms", "natural_norms"):
        _close(page_numbers[name], bptt[name], name)
    for name in ("cell", "bound"):
        assert (page_numbers[name] is None) == (bptt[name] is None), name
        if bptt[name] is not None:
            _close(page_numbers[name], bptt[name], name)
    for name in ("grad_norm", "clip_factor", "ratio"):
        _close([page_numbers[name]], [bptt[name]], name)
    assert (page_numbers["horizon"], page_numbers["reach"]) == (bptt["horizon"], bptt["reach"])
    for t, (row, expected) in enumerate(zip(page_numbers["singular_values"], bptt["singular_values"], strict=True)):
        # Every SVD (LAPACK's too) is accurate to about 1e-16 of the largest singular value: a value at
        # rounding level (an inactive ReLU unit's row) is compared to that, every other one to 1e-6.
        _close(row, expected, f"singular_values[{t}]", floor=1e-12 * expected[0])


@pytest.mark.parametrize("settings", VECTOR_SETTINGS, ids=lambda s: f"{s.cell}-{s.init}-H{s.hidden_size}-T{s.seq_len}")
def test_the_page_computes_bptts_numbers_to_1e_6(browser, page, settings):
    browser.open(page, _hash(settings))
    numbers = browser.settled()
    assert browser.run("return BPTT.explore.settings()")["cell"] == settings.cell
    _compare(numbers, measure(settings))
    assert browser.errors() == []


def _shown(browser, name):
    return browser.run(f"return document.getElementById('readout-{name}').textContent")


def _number(text):
    return float(re.match(r"[-+0-9.e]+", text.strip()).group(0))


def _check_readouts(browser):
    """The readouts and the sentence as shown agree with bptt's numbers for the page's settings."""
    numbers = browser.settled()
    shown = browser.run("return BPTT.explore.settings()")
    step = shown.pop("step")
    bptt = measure(ExploreSettings(**shown))
    _compare(numbers, bptt)
    lag = min(shown["lag"], shown["seq_len"] - 1)
    assert _number(_shown(browser, "ratio")) == pytest.approx(bptt["ratio"], rel=5e-3)
    assert _shown(browser, "horizon") == f"{bptt['horizon']} steps"
    assert _shown(browser, "reach") == f"{bptt['reach']} steps"
    assert _number(_shown(browser, "grad_norm")) == pytest.approx(bptt["grad_norm"], rel=5e-3)
    assert _number(_shown(browser, "factor")) == pytest.approx(bptt["factor_mean"][lag], rel=5e-3)
    assert _number(_shown(browser, "step_sigma")) == pytest.approx(bptt["singular_values"][step][0], rel=5e-3)
    sentence = browser.run("return document.getElementById('sentence').textContent")
    assert (
        sentence.startswith(f"At lag {lag} the gradient is ") and f"Memory horizon {bptt['horizon']} step" in sentence
    )
    ratio = float(sentence.split("the gradient is ")[1].split(" ")[0])
    assert ratio == pytest.approx(bptt["ratio"], rel=0.06)  # two significant digits
    return shown, step


MOVES = (
    ("cell", ("ARROW_DOWN",), lambda s: s["cell"] == "tanh"),
    ("init", ("ARROW_DOWN", "ARROW_DOWN"), lambda s: s["init"] == "orthogonal"),
    ("spectral_norm", ("ARROW_RIGHT",) * 20, lambda s: s["spectral_norm"] == pytest.approx(1.2)),
    ("hidden_size", ("ARROW_LEFT",) * 8, lambda s: s["hidden_size"] == 24),
    ("seq_len", ("ARROW_LEFT",) * 30, lambda s: s["seq_len"] == 70),
    ("input_scale", ("ARROW_RIGHT",) * 10, lambda s: s["input_scale"] == pytest.approx(1.5)),
    ("clip", ("ARROW_RIGHT",) * 10, lambda s: s["clip"] == pytest.approx(0.5)),
    ("lag", ("ARROW_LEFT",) * 20, lambda s: s["lag"] == 30),
    ("step", ("HOME",), lambda s: s["step"] == 0),
    ("seed", ("ARROW_UP", "ARROW_UP"), lambda s: s["seed"] == 2),
    ("cell", ("ARROW_DOWN",) * 3, lambda s: s["cell"] == "lstm"),
    ("cell", ("ARROW_DOWN",), lambda s: s["cell"] == "gru"),
)


def test_every_control_moves_from_the_keyboard_and_the_numbers_follow(browser, page):
    browser.open(page)
    before, _ = _check_readouts(browser)
    for control, keys, arrived in MOVES:
        shown_before = _shown(browser, "ratio"), browser.run("return document.getElementById('sentence').textContent")
        browser.key(control, *keys)
        browser.wait("return document.activeElement && document.activeElement.id !== ''")
        browser.settled("return new Promise((r) => requestAnimationFrame(() => r(true)))")
        settings, step = _check_readouts(browser)
        assert arrived({**settings, "step": step}), (control, settings, step)
        if control != "step":  # the step moves the spectrum only
            assert (
                _shown(browser, "ratio"),
                browser.run("return document.getElementById('sentence').textContent"),
            ) != shown_before, control
    browser.key("reseed", "ENTER")
    seeded, _ = _check_readouts(browser)
    assert seeded["seed"] != 2
    browser.key("reset", "SPACE")
    reset, _ = _check_readouts(browser)
    assert reset == before
    assert browser.errors() == []


def test_every_control_is_labelled_and_reachable_with_tab(browser, page):
    browser.open(page)
    controls = browser.run(
        "return [...document.querySelectorAll('#controls input, #controls select, #controls button')]"
        ".map((c) => [c.id, c.tabIndex, c.tagName === 'BUTTON' ? c.textContent : "
        '(document.querySelector(`label[for="${c.id}"]`) || {}).textContent])'
    )
    assert len(controls) == 12
    assert all(tab >= 0 and label for _, tab, label in controls), controls


def test_first_numbers_within_a_second_from_file(browser, page, tmp_path):
    for fragment in ("", "#cell=lstm&hidden_size=64&seq_len=200"):
        assert min(browser.load_times(page, fragment)) < 1000, fragment
        assert browser.run("return document.getElementById('readout-ratio').textContent") != "-"
    assert not re.findall(r"""(?:src|href)\s*=\s*["'](?!#)""", page.read_text())
    assert page.stat().st_size < 2_000_000


def test_it_reads_at_1280x800_and_at_phone_width(browser, page, tmp_path):
    browser.open(page, width=1280, height=800)
    browser.settled()
    top = browser.run(
        "return ['sentence', 'chart-profile', 'cell'].map((id) => document.getElementById(id).getBoundingClientRect().top)"
    )
    assert all(0 <= y < 800 for y in top), top  # the sentence, the profile and the controls on the first screen
    # BPTT_SCREENSHOT=docs/explore.png keeps this screenshot: the README's picture of the explorable.
    shot = Path(os.environ.get("BPTT_SCREENSHOT") or tmp_path / "desktop.png")
    inked, colours = browser.screenshot(shot)
    assert inked > 0.05 and colours > 50
    browser.open(page, width=390, height=844)
    browser.settled()
    assert browser.run("return document.documentElement.scrollWidth <= window.innerWidth + 1")
    widths = browser.run(
        "return [...document.querySelectorAll('.bptt-chart svg')].map((s) => s.getBoundingClientRect().right)"
    )
    assert widths and max(widths) <= 391
    inked, colours = browser.screenshot(tmp_path / "phone.png")
    assert inked > 0.05 and colours > 50
    assert browser.errors() == []
    assert not math.isnan(browser.run("return BPTT.explore.numbers().ratio"))
