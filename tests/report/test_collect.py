"""`bptt reproduce --collect` loses nothing: a database that holds none of the spec's runs is refused, rows it
does not replace stay, the README keeps its encoding and line endings, names cannot break the table, and a
fresh clone is told what to run. And `kill -9` at random moments during a collect leaves every file it writes
as its old version or its new one, never a mix or a partial file; a rerun brings the CSV and the README into
agreement."""

import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from bptt.cli.main import main
from bptt.report.reproduce import spec_for
from bptt.report.results import ResultRow, markdown_table, read_csv, readme_table, update_readme, write_csv
from bptt.store import Database, RunSummary
from bptt.sweeps import spec as spec_module
from bptt.sweeps.locks import lock_database
from bptt.tasks import TaskError

#: The runs of canonical-quick on temporal order at L = 100 and 200, seed 0 (eleven).
SELECTION = ["--seeds", "0", "--filter", "task=temporal_order"]
COLLECT = ["reproduce", "canonical", "--quick", "--collect", "--out", "results", "--readme", "README.md", *SELECTION]
README = "# r\n\n<!-- bptt:results canonical-quick -->\n<!-- /bptt:results -->\n\nafter\n"


def selected_runs(overrides=None):
    return spec_for("canonical", True, overrides or {}, [0], {"task": ["temporal_order"]}, check_tasks=False)[1]


def record(db_path, runs, metric=0.5, status="finished", sweep="canonical-quick"):
    """Rows for ``runs`` as a sweep would leave them (no training: the table needs only their ends)."""
    with Database(db_path) as db:
        for run in runs:
            c = run.config
            row = db.create_run(c.identity(), c.label(), c.task, c.model_dump(), sweep=sweep)
            db.record_progress(row, [], [], [], 10, 1.0, None)
            final = RunSummary(
                seq_len=c.seq_len,
                steps=10,
                test_loss=1.0,
                test_metric=metric,
                metric="accuracy",
                baseline=1.386,
                chance_metric=0.25,
                device="cpu",
                version="0",
                commit="abc",
            )
            db.finish_run(row, status, final if status == "finished" else None)


def digest(folder):
    return {
        str(p.relative_to(folder)): hashlib.sha1(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def shipped(tmp_path, monkeypatch, capsys):
    """A checkout: README with the block, results/canonical-quick/ collected from runs.db (all nine runs)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "README.md").write_text(README)
    record(tmp_path / "results" / "canonical-quick" / "runs.db", selected_runs().runs)
    assert main(COLLECT) == 0, capsys.readouterr().err
    capsys.readouterr()
    return tmp_path


def test_a_database_with_none_of_the_runs_is_refused_and_nothing_is_written(shipped, capsys):
    record(shipped / "other.db", selected_runs().runs[:2], sweep="another-sweep")
    before = digest(shipped)
    assert main([*COLLECT, "--db", "other.db"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    count = len(selected_runs().runs)
    assert line == (
        f"bptt: error: --db: other.db holds none of the {count} runs of canonical-quick "
        "(its sweeps: another-sweep); nothing written"
    )
    assert digest(shipped) == before
    assert len(read_csv(shipped / "results" / "canonical-quick" / "runs.csv")) == count


def test_rows_the_database_does_not_hold_are_kept_and_replaced_ones_are_named(shipped, capsys):
    runs = selected_runs().runs
    record(shipped / "part.db", runs[:3], metric=0.9)  # three of them, with other results
    assert main([*COLLECT, "--db", "part.db"]) == 0
    out = capsys.readouterr().out
    rows = read_csv(shipped / "results" / "canonical-quick" / "runs.csv")
    kept = len(runs) - 3
    assert len(rows) == len(runs) and [r.test_metric for r in rows] == [0.9] * 3 + [0.5] * kept
    assert "3 earlier rows replaced by the database's runs: temporal_order T=100 tanh RNN seed 0;" in out
    assert f"{kept} earlier rows kept (the database does not hold them)" in out
    assert readme_table(shipped / "README.md", "canonical-quick") == markdown_table(rows)


def test_a_planned_run_that_nothing_ran_is_a_row_saying_so(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "README.md").write_text(README)
    runs = selected_runs().runs
    record(tmp_path / "part.db", runs[:3], metric=0.9)
    assert main([*COLLECT, "--db", "part.db"]) == 0, capsys.readouterr().err
    rows = read_csv(tmp_path / "results" / "canonical-quick" / "runs.csv")
    assert len(rows) == len(runs)
    assert [r.status for r in rows] == ["finished"] * 3 + ["not run"] * (len(runs) - 3)
    assert {r.note for r in rows[3:]} == {"not run yet"} and rows[3].test_metric is None
    table = readme_table(tmp_path / "README.md", "canonical-quick")
    assert (
        table == markdown_table(rows)
        and "| temporal_order | 200 | GRU | test accuracy % | - (-) | - (not run) |" in table
    )


def test_a_filtered_collect_still_draws_every_result_of_the_spec_in_its_report(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "README.md").write_text(README)
    both = spec_for("canonical", True, {}, [0, 1], {"task": ["temporal_order"]}, check_tasks=False)[1].runs
    record(tmp_path / "two.db", both)
    assert main([*COLLECT, "--db", "two.db"]) == 0, capsys.readouterr().err  # --seeds 0
    page = (tmp_path / "results" / "canonical-quick" / "report.html").read_text(encoding="utf-8")
    assert f"{len(both)} runs from two.db." in page and len(both) == 2 * len(selected_runs().runs)


def test_a_spec_change_that_renames_run_identities_replaces_the_rows_and_says_so(shipped, capsys):
    changed = selected_runs({"lr": 0.002})  # other identities, the same table rows
    record(shipped / "changed.db", changed.runs, metric=0.75)
    assert main([*COLLECT, "--db", "changed.db", "--set", "lr=0.002"]) == 0
    assert f"{len(changed.runs)} earlier rows replaced" in capsys.readouterr().out
    rows = read_csv(shipped / "results" / "canonical-quick" / "runs.csv")
    assert len(rows) == len(changed.runs) and {r.test_metric for r in rows} == {0.75}


def test_a_plain_collect_keeps_the_spec_written_with_overrides(shipped):
    spec_file = shipped / "results" / "canonical-quick" / "spec.yaml"
    spec_file.write_text("# run with overrides: {steps: 5}\n" + spec_file.read_text())
    header = spec_file.read_text()
    assert main(COLLECT) == 0
    assert spec_file.read_text() == header


def test_the_readme_keeps_its_line_endings_and_byte_order_mark(shipped):
    readme = shipped / "README.md"
    crlf = b"\xef\xbb\xbf" + README.replace("\n", "\r\n").encode()
    readme.write_bytes(crlf)
    assert main(COLLECT) == 0
    data = readme.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf# r\r\n") and b"\n" not in data.replace(b"\r\n", b"")
    assert data.endswith(b"<!-- /bptt:results -->\r\n\r\nafter\r\n") and b"| temporal_order | 100 |" in data


def test_a_readme_that_is_not_utf8_is_refused_before_anything_runs(shipped, capsys):
    readme = shipped / "README.md"
    readme.write_bytes(README.encode("utf-16"))
    before = digest(shipped)
    # Without --collect this would run the sweep first: the README is looked at before.
    assert main(["reproduce", "canonical", "--quick", "--out", "results", *SELECTION]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == "bptt: error: --readme: README.md is not UTF-8 text; bptt edits only UTF-8 files"
    assert digest(shipped) == before


def test_a_second_driver_of_the_same_runs_is_told_in_one_line_and_nothing_is_written(shipped, capsys):
    database = Path("results") / "canonical-quick" / "runs.db"
    held = lock_database(database, "canonical-quick")  # a reproduce of this table already running
    before = digest(shipped)
    try:
        assert main(["reproduce", "canonical", "--quick", "--out", "results", *SELECTION]) == 1
    finally:
        held.close()
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"bptt: error: sweep 'canonical-quick' is already running on {database} (lock ")
    assert digest(shipped) == before


def test_a_fresh_clone_is_told_what_to_run_and_needs_no_data_extra(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)

    def no_data_extra(config):
        raise TaskError(f"task {config.task!r} needs the data extra: pip install -e '.[data]'")

    monkeypatch.setattr(spec_module, "make_task", no_data_extra)  # as in a clone without the data extra
    assert main(["reproduce", "canonical", "--quick", "--collect"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == (
        "bptt: error: --collect: no database at results/canonical-quick/runs.db; `bptt reproduce canonical "
        "--quick` runs the sweep and writes it (or give the database a sweep ran into with --db)"
    )
    assert list(tmp_path.iterdir()) == []


NAMES = ["a|b", "end <!-- /bptt:results -->", "<!-- bptt:results canonical-quick -->", "x\\|y"]


def test_names_cannot_break_the_table_or_grow_the_readme(tmp_path):
    base = {
        "task": "adding",
        "variant": "default",
        "seq_len": 10,
        "seed": 0,
        "cell": "rnn",
        "activation": "tanh",
        "init": "pytorch",
        "hidden_size": 8,
        "status": "finished",
        "steps": 10,
        "target_metric": None,
        "target_step": None,
        "metric": "mse",
        "test_metric": 0.1,
        "test_loss": 0.1,
        "baseline": 1 / 6,
        "chance_metric": 1 / 6,
        "train_seconds": 1.0,
        "device": "cpu",
        "version": "0",
        "commit": "abc",
    }
    crafted = [ResultRow(**{**base, "model": name}) for name in [*NAMES, "ansi \x1b[31mred\x1b[0m", "two\nlines"]]
    path = write_csv(crafted, tmp_path / "runs.csv")
    table = markdown_table(read_csv(path))
    lines = table.splitlines()
    assert len(lines) == 2 + len(crafted) and all(line.count(" | ") == 7 for line in lines[2:])
    assert "<!--" not in table and "\x1b" not in table and "| a\\|b |" in table and "two\\nlines" in table
    readme = tmp_path / "README.md"
    readme.write_text(README)
    for _ in range(3):
        assert update_readme(readme, "canonical-quick", table)
    size = readme.stat().st_size
    assert update_readme(readme, "canonical-quick", table) and readme.stat().st_size == size
    assert readme_table(readme, "canonical-quick") == table


@pytest.mark.parametrize("name", ["two\nlines", "ansi \x1b[31mred", "tab\there", " "])
def test_a_variant_name_that_is_not_one_printable_line_is_refused(tmp_path, capsys, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    spec = {"name": "s", "base": {"task": "adding", "seq_len": 5, "steps": 2}, "variants": [{"name": name}]}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    assert main(["sweep", "spec.yaml", "--dry-run"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "variants[0].name: must be one line of printable text" in line and "\x1b" not in line


def test_a_dry_run_shows_names_as_text_not_markup(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = {
        "name": "s",
        "base": {"task": "adding", "seq_len": 5, "steps": 2},
        "variants": [{"name": "[bold]a|b[/]"}, {"name": "<!-- /bptt:results -->", "init": "xavier"}],
    }
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    assert main(["sweep", "spec.yaml", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "[bold]a|b[/]" in out and "<!-- /bptt:results -->" in out
    assert os.listdir(tmp_path) == ["spec.yaml"]


# -- kill -9 during a collect ---------------------------------------------------------------------
TRIALS = 21
FOLDER = "results/canonical-quick"
TEXT_FILES = ["README.md", f"{FOLDER}/runs.csv", f"{FOLDER}/table.md"]
REPORT = f"{FOLDER}/report.html"


def _collect(cwd, *extra):
    return subprocess.Popen(
        [sys.executable, "-m", "bptt.cli.main", *COLLECT, *extra],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _files(root):
    return {name: (root / name).read_bytes() for name in [*TEXT_FILES, REPORT]}


def _whole_report(data):
    return data.startswith(b"<!DOCTYPE html>") and data.rstrip().endswith(b"</html>")


@pytest.mark.slow
def test_kill_9_during_collect_leaves_old_or_new_files_and_a_rerun_agrees(tmp_path):
    (tmp_path / "README.md").write_text(README)
    runs = selected_runs().runs
    record(tmp_path / FOLDER / "runs.db", runs, metric=0.5)
    assert _collect(tmp_path).wait() == 0
    old = _files(tmp_path)
    record(tmp_path / "new.db", runs, metric=0.9)
    # The new versions, and how long a whole collect and its writing phase take here.
    started = time.monotonic()
    first = _collect(tmp_path, "--db", "new.db")
    csv = tmp_path / FOLDER / "runs.csv"
    while csv.read_bytes() == old[f"{FOLDER}/runs.csv"] and first.poll() is None:
        time.sleep(0.002)
    writing_from = time.monotonic()
    assert first.wait() == 0, first.stderr.read()
    whole, writing = time.monotonic() - started, time.monotonic() - writing_from
    new = _files(tmp_path)
    assert all(new[name] != old[name] for name in TEXT_FILES)
    rng = random.Random(0)
    outcomes = []
    for trial in range(TRIALS):
        for name, data in old.items():  # back to the old files each time
            (tmp_path / name).write_bytes(data)
        process = _collect(tmp_path, "--db", "new.db")
        if trial % 3 == 0:  # anywhere in the run, start-up included
            time.sleep(rng.uniform(0, whole))
        else:  # within the writing phase: from the moment the CSV is replaced
            while csv.read_bytes() == old[f"{FOLDER}/runs.csv"] and process.poll() is None:
                time.sleep(0.002)
            time.sleep(rng.uniform(0, writing))
        process.send_signal(signal.SIGKILL)
        process.wait()
        now = _files(tmp_path)
        for name in TEXT_FILES:
            assert now[name] in (old[name], new[name]), (trial, name)
        assert now[REPORT] == old[REPORT] or (_whole_report(now[REPORT]) and now[REPORT] != old[REPORT]), trial
        outcomes.append(tuple(now[name] == new[name] for name in TEXT_FILES))
    # The kills fell before, between and after the files' replacements, not all in one place.
    assert len(set(outcomes)) >= 2, outcomes
    # Run again to the end: the CSV and the README agree, and no temporary file is left.
    rerun = _collect(tmp_path, "--db", "new.db")
    assert rerun.wait() == 0, rerun.stderr.read()
    rows = read_csv(csv)
    assert readme_table(tmp_path / "README.md", "canonical-quick") == markdown_table(rows)
    assert (tmp_path / FOLDER / "table.md").read_text() == markdown_table(rows)
    assert _files(tmp_path)["README.md"] == new["README.md"]
    leftovers = list(tmp_path.rglob("*.tmp*"))
    assert not leftovers, leftovers
