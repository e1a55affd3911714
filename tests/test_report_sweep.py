"""The sweep report (one self-contained HTML file) and the CSV/Parquet export."""
import csv
import re

import pytest

from bptt.cli.main import main
from bptt.config import build_config
from bptt.report.export import columns
from bptt.report.published import PUBLISHED
from bptt.store import Database
from bptt.training import Trainer

SMALL = {"hidden_size": 8, "batch_size": 8, "steps": 4, "eval_size": 16, "eval_every": 2, "progress": False}


def fill(db_path, record_every=2):
    """A small sweep's worth of runs: two remedies x two lengths x two seeds on adding, one tanh RNN at T=600."""
    with Database(db_path) as db:
        for init in ("pytorch", "xavier"):
            for seq_len in (8, 16):
                for seed in (0, 1):
                    config = build_config({**SMALL, "task": "adding", "init": init, "seq_len": seq_len, "seed": seed,
                                           "record_every": record_every})
                    Trainer(config, db, sweep="s").run()
        Trainer(build_config({**SMALL, "task": "adding", "seq_len": 600, "steps": 2,
                              "eval_every": 1}), db, sweep="s").run()
        Trainer(build_config({**SMALL, "task": "sentiment", "delay": 3, "record_every": record_every}), db,
                sweep="s").run()
        Trainer(build_config({**SMALL, "task": "adding", "seq_len": 40, "activation": "relu", "init": "identity",
                              "init_scale": 10.0, "steps": 50}), db, sweep="s").run()


def test_report_holds_every_figure_and_table_and_nothing_outside_itself(tmp_path, capsys):
    fill(tmp_path / "r.db")
    out = tmp_path / "report.html"
    assert main(["report", "--db", str(tmp_path / "r.db"), "--sweep", "s", "-o", str(out)]) == 0
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


def test_report_says_when_no_run_recorded_gradient_profiles(tmp_path):
    fill(tmp_path / "r.db", record_every=0)
    out = tmp_path / "report.html"
    assert main(["report", "--db", str(tmp_path / "r.db"), "-o", str(out)]) == 0
    page = out.read_text()
    assert page.count("no run recorded gradient profiles") == 2 and page.count("<svg") == 4


def test_report_errors_are_one_line(tmp_path, capsys):
    assert main(["report", "--db", str(tmp_path / "none.db")]) == 2
    assert "no database" in capsys.readouterr().err
    fill(tmp_path / "r.db", record_every=0)
    assert main(["report", "--db", str(tmp_path / "r.db"), "--sweep", "other"]) == 2
    assert "sweeps here: s" in capsys.readouterr().err


def test_published_numbers_carry_their_source():
    assert all(r.source and r.task and r.quantity in ("loss", "accuracy") for r in PUBLISHED)
    adding = {r.model: r.value for r in PUBLISHED if r.task == "adding"}
    assert adding == {"LSTM": 0.164, "GRU": 5.3e-5, "RNN (tanh)": 0.177, "TCN": 5.8e-5}


def test_export_csv_one_row_per_run(tmp_path):
    fill(tmp_path / "r.db", record_every=0)
    out = tmp_path / "runs.csv"
    assert main(["export", "--db", str(tmp_path / "r.db"), "--sweep", "s", "-o", str(out)]) == 0
    with open(out) as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 11 and list(rows[0]) == columns()
    assert {r["status"] for r in rows} == {"finished", "diverged"}
    assert rows[0]["config_init"] == "pytorch" and float(rows[0]["final_test_loss"]) > 0


def test_export_parquet(tmp_path, capsys):
    fill(tmp_path / "r.db", record_every=0)
    out = tmp_path / "runs.parquet"
    try:
        import pyarrow.parquet as pq
    except ImportError:
        assert main(["export", "--db", str(tmp_path / "r.db"), "-o", str(out)]) == 2
        assert "needs pyarrow" in capsys.readouterr().err
        pytest.skip("pyarrow is not installed")
    assert main(["export", "--db", str(tmp_path / "r.db"), "-o", str(out)]) == 0
    table = pq.read_table(out)
    assert table.num_rows == 11 and table.column_names == columns()
