"""The runs of a database as CSV or Parquet: one row per run."""

import csv

import pytest

from bptt.cli.main import main
from bptt.store.export import columns


def test_export_csv_one_row_per_run(tmp_path, sweep_db):
    db = sweep_db(record_every=0)
    out = tmp_path / "runs.csv"
    assert main(["export", "--db", str(db), "--sweep", "s", "-o", str(out)]) == 0
    with open(out) as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 11 and list(rows[0]) == columns()
    assert {r["status"] for r in rows} == {"finished", "diverged"}
    assert rows[0]["config_init"] == "pytorch" and float(rows[0]["final_test_loss"]) > 0


def test_export_parquet(tmp_path, capsys, sweep_db):
    db = sweep_db(record_every=0)
    out = tmp_path / "runs.parquet"
    try:
        import pyarrow.parquet as pq
    except ImportError:
        assert main(["export", "--db", str(db), "-o", str(out)]) == 2
        assert "needs pyarrow: pip install 'bptt[parquet]'" in capsys.readouterr().err
        pytest.skip("pyarrow is not installed")
    assert main(["export", "--db", str(db), "-o", str(out)]) == 0
    table = pq.read_table(out)
    assert table.num_rows == 11 and table.column_names == columns()
