"""`bptt demo --beyond`: every cell beyond the notes beside two references, on delayed sentiment at a long
delay, printed as it goes and written to its own page."""

import contextlib
import io

import pytest

from bptt.cli.main import main
from bptt.demo import beyond
from bptt.modules.cells import CELLS
from bptt.plotting.html import Link, Section, render_page
from bptt.report.published import CLAIM_OF_CELL


def test_the_page_has_every_cell_beyond_the_notes_and_the_references():
    chosen = beyond.models()
    assert [label for label, _ in chosen[:2]] == ["tanh RNN", "GRU"]
    assert {s["cell"] for _, s in chosen[2:]} == {
        name for name in CELLS.in_order() if name not in ("rnn", "lstm", "gru")
    }
    assert all(label == CLAIM_OF_CELL[s["cell"]] for label, s in chosen[2:])  # IndRNN, not indrnn
    assert beyond.BASE["delay"] == beyond.DELAY == 200


def test_a_link_is_a_paragraph_with_an_anchor():
    page = render_page("t", [Section("s", [Link("the other <page>", "beyond.html")])])
    assert '<p><a href="beyond.html">the other &lt;page&gt;</a></p>' in page


@pytest.mark.slow
def test_demo_beyond_prints_each_model_and_writes_its_own_page(tmp_path, monkeypatch):
    monkeypatch.setitem(beyond.BASE, "steps", 10)  # the page as it is, on a few steps
    monkeypatch.setitem(beyond.BASE, "eval_every", 10)
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main(["demo", "--beyond", "--out", str(tmp_path)])
    printed = buffer.getvalue()
    assert code == 0 and f"wrote {tmp_path / 'beyond.html'}" in printed
    page = (tmp_path / "beyond.html").read_text()
    models = beyond.models()
    for index, (label, _) in enumerate(models, start=1):
        assert f"[{index}/{len(models)}] {label}: accuracy " in printed
        assert label in page
    assert page.count("<svg") == 1 and "lag 200 / lag 0" in page and not (tmp_path / "index.html").exists()


def test_beyond_and_quick_together_are_refused(tmp_path, capsys):
    assert main(["demo", "--beyond", "--quick", "--out", str(tmp_path)]) == 2
    assert "give one of --quick and --beyond" in capsys.readouterr().err
