"""`bptt demo --quick`: runs in seconds and writes one self-contained page holding every figure."""
import re

import pytest

from bptt.cli.main import main
from bptt.demo.experiment import MODELS
from bptt.demo.page import PAGE_FIGURES


@pytest.mark.slow
def test_quick_demo_writes_a_self_contained_page_with_every_figure(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    page = (out / "index.html").read_text()
    assert f"wrote {out / 'index.html'}" in printed
    for label, _ in MODELS:
        assert label in printed and label in page
    assert "sigmoid RNN: " in printed and "of lag 0" in printed
    assert page.count("<svg") == len(PAGE_FIGURES)
    for title in PAGE_FIGURES:
        assert title in page, title
    references = re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', page)
    assert all(ref.startswith(("#", "data:")) for ref in references), references
    assert "<link" not in page and "<script" not in page and "url(http" not in page
    assert "The six impacts of the vanishing gradient, measured" in page
