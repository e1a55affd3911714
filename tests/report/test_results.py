"""Results as shipped data: `bptt reproduce` end to end on a tiny budget, the CSV, the markdown table
and the README's copy of it, which is generated and never typed."""

from pathlib import Path

import pytest
from click.testing import CliRunner

from bptt.cli.main import main
from bptt.cli.report import command as report_command
from bptt.report.reproduce import spec_for
from bptt.report.results import ResultRow, markdown_table, read_csv, readme_table, update_readme, write_csv

ROOT = Path(__file__).resolve().parents[2]


def _row(**changes):
    values = {
        "task": "adding",
        "variant": "default",
        "seq_len": 600,
        "model": "GRU",
        "seed": 0,
        "cell": "gru",
        "activation": "tanh",
        "init": "pytorch",
        "hidden_size": 150,
        "status": "finished",
        "steps": 3500,
        "target_metric": 1e-3,
        "target_step": 3500,
        "metric": "mse",
        "test_metric": 7.4e-4,
        "test_loss": 7.4e-4,
        "baseline": 1 / 6,
        "chance_metric": 1 / 6,
        "train_seconds": 2770.0,
        "device": "cpu",
        "version": "0.1.0",
        "commit": "abc",
    }
    return ResultRow(**{**values, **changes})


def test_csv_round_trip_and_the_table_beside_the_published_rows(tmp_path):
    rows = [
        _row(),
        _row(seed=1, target_step=None, steps=8000, test_metric=2e-3, test_loss=2e-3),
        _row(
            task="copy",
            seq_len=1000,
            model="LSTM chrono",
            cell="lstm",
            metric="recall_accuracy",
            test_metric=0.1,
            test_loss=0.03,
            baseline=0.0204,
            target_metric=None,
            target_step=None,
        ),
        _row(
            task="temporal_order",
            seq_len=100,
            model="IRNN",
            cell="rnn",
            activation="relu",
            init="identity",
            metric="accuracy",
            test_metric=1.0,
            test_loss=0.001,
            chance_metric=0.25,
            target_metric=0.99,
            target_step=750,
        ),
    ]
    assert read_csv(write_csv(rows, tmp_path / "runs.csv")) == rows
    table = markdown_table(rows).splitlines()
    gru, chrono, irnn = table[2], table[3], table[4]
    assert "| adding | 600 | GRU | test MSE | 0.00137 (0.00074, 0.002) | 3500, - |" in gru
    assert (
        "5.3e-05 (Bai et al. 2018; their markers fall anywhere (variant tcn); these runs' one in each half)" in gru
        and "| 0.167 |" in gru
    )
    tcn = markdown_table([_row(variant="tcn")]).splitlines()[2]
    assert (
        tcn.startswith("| adding (tcn) | 600 | GRU |")
        and "(Bai et al. 2018; markers anywhere, as in variant tcn)" in tcn
    )
    assert "| copy | 1000 | LSTM chrono | test CE | 0.03 (0.03) | n/a | 0.0204 (Bai et al. 2018)" in chrono
    assert "| temporal_order | 100 | IRNN | test accuracy % | 100 (100) | 750 | - | 25 |" in irnn


def test_a_diverged_run_is_named_in_the_table_and_left_out_of_the_mean():
    rows = [
        _row(model="IRNN", test_metric=0.176, test_loss=0.176),
        _row(model="IRNN", seed=1, status="diverged", test_metric=1.49e20, test_loss=1.49e20),
        _row(model="IRNN", seed=2, test_metric=0.168, test_loss=0.168),
    ]
    line = markdown_table(rows).splitlines()[2]
    assert "| test MSE | 0.172 (0.176, diverged, 0.168) | 3500, 3500, 3500 (diverged) |" in line


def test_readme_block_is_replaced_between_its_markers_only(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- bptt:results x -->\nold\n<!-- /bptt:results -->\nafter\n")
    assert update_readme(readme, "x", "| new |\n")
    assert readme.read_text() == "intro\n<!-- bptt:results x -->\n| new |\n<!-- /bptt:results -->\nafter\n"
    assert readme_table(readme, "x") == "| new |\n"
    assert not update_readme(readme, "y", "| other |\n")


@pytest.mark.slow
def test_reproduce_runs_a_table_end_to_end_on_a_tiny_budget(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# r\n<!-- bptt:results canonical-quick -->\n<!-- /bptt:results -->\n")
    out = tmp_path / "results"
    code = main(
        [
            "reproduce",
            "canonical",
            "--quick",
            "--out",
            str(out),
            "--readme",
            str(readme),
            "--workers",
            "1",
            "--set",
            "steps=2",
            "--set",
            "eval_size=8",
            "--set",
            "eval_every=1",
            "--set",
            "checkpoint_every=1",
            "--set",
            "record_every=1",
            "--seeds",
            "0,1",
            "--filter",
            "task=temporal_order",
        ]
    )
    assert code == 0
    folder = out / "canonical-quick"
    rows = read_csv(folder / "runs.csv")
    planned = spec_for("canonical", True, {}, [0, 1], {"task": ["temporal_order"]}, check_tasks=False)[1].runs
    assert len(rows) == len(planned) == 11 * 2  # eleven rows per seed at L = 100 and 200
    assert {r.status for r in rows} == {"finished"} and {r.seed for r in rows} == {0, 1}
    assert {r.model for r in rows} == {"tanh RNN", "sigmoid RNN", "IRNN", "LSTM", "LSTM chrono", "GRU"}
    assert all(r.steps == 2 and r.commit for r in rows)
    assert "Sweep canonical-quick" in (folder / "report.html").read_text()
    table = (folder / "table.md").read_text()
    assert table == markdown_table(rows) == readme_table(readme, "canonical-quick")
    assert "run with overrides" in (folder / "spec.yaml").read_text()
    printed = CliRunner().invoke(report_command, ["--markdown", str(folder / "runs.csv")])
    assert printed.exit_code == 0 and printed.output == table
    # Again: everything is done, nothing runs, the same files come out.
    assert (
        main(
            [
                "reproduce",
                "canonical",
                "--quick",
                "--out",
                str(out),
                "--readme",
                str(readme),
                "--workers",
                "1",
                "--set",
                "steps=2",
                "--set",
                "eval_size=8",
                "--set",
                "eval_every=1",
                "--set",
                "checkpoint_every=1",
                "--set",
                "record_every=1",
                "--seeds",
                "0,1",
                "--filter",
                "task=temporal_order",
            ]
        )
        == 0
    )
    assert (folder / "table.md").read_text() == table


def test_the_readme_tables_are_generated_from_the_shipped_csvs():
    for csv_path in sorted((ROOT / "results").glob("*/runs.csv")):
        name = csv_path.parent.name
        assert readme_table(ROOT / "README.md", name) == markdown_table(read_csv(csv_path)), name
