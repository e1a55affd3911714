"""The sweep report: one self-contained HTML file."""
import re

from bptt.cli.main import main
from bptt.report.published import PUBLISHED


def test_report_holds_every_figure_and_table_and_nothing_outside_itself(tmp_path, sweep_db):
    db = sweep_db()
    out = tmp_path / "report.html"
    assert main(["report", "--db", str(db), "--sweep", "s", "-o", str(out)]) == 0
    page = out.read_text()
    for title in ("Runs", "Final metric against length", "Success rate across seeds", "Convergence",
                  "Gradient profiles", "Published results", "Runs that diverged or failed"):
        assert f"<h2>{title}</h2>" in page
    # Two tasks: metric, convergence and gradient-profile figures for each.
    assert page.count("<svg") == 6
    assert page.count("<table>") == 1 + 2 + 1 + 1  # overview, success per task, published, problems
    assert "memoryless baseline" in page and "tanh+xavier" in page and "loss became" in page
    assert "0.177" in page and "Bai, Kolter, Koltun 2018" in page  # the tanh RNN row at T=600 met our run
    assert re.findall(r"""(?:src|href)\s*=\s*["'](?!#)""", page) == []
    assert "<link" not in page and "<script" not in page and re.findall(r"url\((?!#)", page) == []


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
