"""The table of a ladder sweep: one line per model, the longest length each seed solved, where the
climb stopped and why, accuracies, seconds per step and the published claim; every planned run in
the CSV, those not run saying why."""

from __future__ import annotations

import pytest

from bptt.cli.main import main
from bptt.report.ladder import WHAT_SOLVED_MEANS, ladder_table
from bptt.report.merge import merge_rows, row_key
from bptt.report.results import ResultRow, markdown_table, read_csv, readme_table, result_rows, write_csv
from bptt.report.sweep import build_report
from bptt.store import Database, RunSummary
from bptt.sweeps import expand_spec


def row(model="IndRNN", cell="indrnn", task="adding", seq_len=100, seed=0, loss=0.001, **changes):
    values = {
        "task": task,
        "variant": "default",
        "seq_len": seq_len,
        "model": model,
        "seed": seed,
        "cell": cell,
        "activation": "tanh",
        "init": "pytorch",
        "hidden_size": 128,
        "status": "finished",
        "steps": 500,
        "target_metric": None,
        "target_step": 500,
        "metric": "mse",
        "test_metric": loss,
        "test_loss": loss,
        "baseline": 1 / 6,
        "chance_metric": None,
        "train_seconds": 100.0,
        "device": "cpu",
        "version": "0.1.0",
        "commit": "abc",
        "role": "rung",
        "target_loss": 0.01,
        "note": None,
    }
    return ResultRow(**{**values, **changes})


def rows():
    out = [
        row(
            task="adding", seq_len=1000, steps=30, train_seconds=40.0, cpu_seconds=12.0, role="timing", target_loss=None
        ),
        row(model="tanh RNN", cell="rnn", seq_len=1000, steps=30, train_seconds=3.0, role="timing", target_loss=None),
    ]
    for seed in (0, 1, 2):
        out += [
            row(seq_len=100, seed=seed),
            row(seq_len=500, seed=seed, loss=0.002 if seed < 2 else 0.05),
            row(seq_len=1000, seed=seed, loss=0.2, target_step=None),
            row(
                seq_len=2000,
                seed=seed,
                status="not run",
                steps=0,
                loss=None,
                note="not run: every seed failed at T=1000",
            ),
            row(
                model="tanh RNN",
                cell="rnn",
                seq_len=100,
                seed=seed,
                loss=0.16 if seed else float("nan"),
                status="finished" if seed else "diverged",
            ),
            row(
                model="tanh RNN",
                cell="rnn",
                seq_len=500,
                seed=seed,
                status="not run",
                steps=0,
                loss=None,
                note="not run: every seed failed at T=100",
            ),
            row(
                task="mnist5k",
                seq_len=784,
                seed=seed,
                role=None,
                target_loss=None,
                metric="accuracy",
                test_metric=0.9 + 0.01 * seed,
                test_loss=0.3,
            ),
        ]
    out.append(
        row(
            model="tanh RNN",
            cell="rnn",
            task="mnist5k",
            seq_len=784,
            role=None,
            status="not run",
            steps=0,
            loss=None,
            note="not run yet",
        )
    )
    return out


def test_one_line_per_model_with_the_longest_length_each_seed_solved_and_why_it_stopped(tmp_path):
    table = ladder_table(rows())
    lines = table.splitlines()
    assert lines[0] == (
        "| model | adding: longest T solved (per seed) | mnist5k: test accuracy % (per seed) | "
        "CPU s per training step at T=1000 (adding) | published |"
    )
    indrnn, tanh = lines[2], lines[3]
    assert indrnn.startswith("| IndRNN | 500, 500, 100; stopped: every seed failed at T=1000 | 91 (90, 91, 92) | 0.4 |")
    assert "adding: solved at T=5000 (Li et al. 2018, read from Fig. 2)" in indrnn
    assert tanh.startswith("| tanh RNN | -, -, -; stopped: every seed failed at T=100 | not run yet | 0.1 |")
    assert "(Bai et al. 2018, Table 1)" in tanh
    corn = next(line for line in lines if line.startswith("| coRNN |"))  # a claim this sweep did not train
    assert corn.startswith(
        "| coRNN | not in this sweep | not in this sweep | not in this sweep | adding: solved at T=5000"
    )
    assert not any(line.startswith("| IndRNN | not in this sweep") for line in lines)
    assert WHAT_SOLVED_MEANS + "\n" in table
    ran = [r for r in rows() if r.status != "not run"]
    hours = sum(r.cpu_seconds or r.train_seconds for r in ran) / 3600
    assert table.endswith(
        f"\nRan so far: {len(ran)} runs, {hours:.1f} CPU-hours of training; 6 not run because their ladder stopped "
        "below them. Not run yet: 1, because the sweep has not reached them: it runs in the "
        "background on one core and resumes where it stopped (`bptt reproduce`); the spec's header gives what "
        "each row costs on this CPU.\n"
    )
    # every run ran or was stopped by its ladder: nothing more is said
    assert ladder_table([row(seq_len=100)]).endswith(WHAT_SOLVED_MEANS + "\n")
    # the README's table is markdown_table of the CSV: it picks this table for a ladder's rows
    assert markdown_table(read_csv(write_csv(rows(), tmp_path / "runs.csv"))) == table


def test_a_climb_still_under_way_and_one_at_the_top_rung():
    under_way = [row(seq_len=100), row(seq_len=500, status="interrupted", loss=None)]
    top = [row(seq_len=100), row(seq_len=500)]
    waiting = [row(seq_len=100), row(seq_len=500, status="not run", steps=0, loss=None, note="not run yet")]
    assert "| 100; T=500 interrupted |" in ladder_table(under_way)
    assert "| 500 (top rung T=500) |" in ladder_table(top)
    assert "| 100; T=500 not run yet |" in ladder_table(waiting)
    # a rung whose runs ended under an older step cap resumes before the next one opens: the line says so
    waits = "not run yet: waits for T=500"
    resumes = [row(seq_len=100), row(seq_len=500, loss=0.5), row(seq_len=1000, status="not run", loss=None, note=waits)]
    assert "| 100; T=1000 waits for T=500 |" in ladder_table(resumes)
    # solved needs a finished run with its test loss below the threshold (not at it)
    assert "| - (top rung" not in ladder_table([row(seq_len=100, loss=0.01)])
    assert "| IndRNN | not run yet |" in ladder_table([row(status="not run", steps=0, loss=None, note="not run yet")])


def test_the_csv_holds_every_planned_run_those_not_run_saying_why(tmp_path):
    spec = expand_spec(
        {
            "name": "climb",
            "base": {"hidden_size": 8, "steps": 2, "eval_size": 16, "cell": "gru"},
            "include": [{"name": "GRU", "task": "adding"}, {"name": "GRU", "task": "digits"}],
            "seeds": [0, 1],
            "ladder": {
                "rungs": {"adding": {"seq_len": [10, 20, 30], "solved_below": 0.01}},
                "timing": {"task": "adding", "seq_len": 30, "steps": 3, "eval_size": 4},
            },
        }
    )
    with Database(tmp_path / "r.db") as db:
        for run in spec.runs:
            if run.rung is not None and run.config.seq_len == 10:
                config = run.config.model_dump()
                if run.config.seed == 0:  # a run kept from before its spec's target changed
                    config["target_loss"] = 0.02
                row_id = db.create_run(run.identity, "gru", "adding", config, sweep="climb")
                db.record_progress(row_id, [], [], [], 2, 1.0, None)
                db.finish_run(row_id, "finished", RunSummary(test_loss=0.5, metric="mse", steps=2))
        found = result_rows(db, spec)
    assert len(found) == len(spec.runs) == 1 + 6 + 2
    by = {(r.role, r.task, r.seq_len, r.seed): r for r in found}
    assert by["timing", "adding", 30, 0].status == "not run" and by["timing", "adding", 30, 0].note == "not run yet"
    assert by["rung", "adding", 10, 1].status == "finished" and by["rung", "adding", 10, 1].target_loss == 0.01
    assert by["rung", "adding", 10, 0].target_loss == 0.02  # the target it trained to, not the spec's new one
    assert by["rung", "adding", 20, 0].note == "not run: every seed failed at T=10"
    assert by["rung", "adding", 30, 1].note == "not run: every seed failed at T=10"
    assert by[None, "digits", None, 0].note == "not run yet" and by[None, "digits", None, 0].role is None


@pytest.mark.slow
def test_reproduce_modern_end_to_end_on_a_tiny_budget(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# r\n<!-- bptt:results modern -->\n<!-- /bptt:results -->\n")
    out = tmp_path / "results"
    argv = ["reproduce", "modern", "--out", str(out), "--readme", str(readme), "--workers", "1", "--seeds", "0,1"]
    for setting in ("steps=2", "eval_size=8", "eval_every=1", "checkpoint_every=1", "hidden_size=8"):
        argv += ["--set", setting]
    argv += ["--filter", "cell=gru", "--filter", "task=adding,mnist5k"]
    assert main(argv) == 0
    rows = read_csv(out / "modern" / "runs.csv")
    by = {(r.role, r.task, r.seq_len, r.seed): r for r in rows}
    assert by["timing", "adding", 1000, 0].status == "finished" and by["timing", "adding", 1000, 0].cpu_seconds > 0
    assert by["rung", "adding", 100, 1].status == "finished"  # two steps solve nothing: the climb stops there
    assert by["rung", "adding", 500, 0].note == "not run: every seed failed at T=100"
    table = (out / "modern" / "table.md").read_text()
    assert table == markdown_table(rows) == readme_table(readme, "modern")
    gru = next(line for line in table.splitlines() if line.startswith("| GRU |"))
    assert gru.startswith("| GRU | -, -; stopped: every seed failed at T=100 | ")


def test_a_database_that_lacks_a_run_never_erases_its_row_and_a_new_plan_is_no_replacement():
    timing = row(seq_len=1000, steps=30, role="timing", target_loss=None, cpu_seconds=12.0)
    waiting = row(seq_len=1000, status="not run", steps=0, test_loss=None, test_metric=None, note="not run yet")
    earlier = [timing, waiting]
    # The database holds neither run: its rows are placeholders, the rung's with a new note.
    fresh = [
        row(seq_len=1000, status="not run", steps=0, role="timing", target_loss=None, test_loss=None, note="x"),
        row(seq_len=1000, status="not run", steps=0, test_loss=None, test_metric=None, note="not run yet: waits"),
    ]
    merged = merge_rows(earlier, fresh)
    # The timing run only the CSV holds is kept, and named so; the rung's new note replaces nothing.
    assert merged.rows == [timing, fresh[1]] and merged.replaced == [] and merged.kept == [row_key(timing)]
    # A row "running" that the database does not hold (collected from another one, mid-run) is no result.
    stale = row(seq_len=1000, status="running", steps=0, test_loss=None, test_metric=None)
    assert merge_rows([stale], fresh[1:]).rows == fresh[1:]
    # A rerun still running leaves the earlier result in place until it ends, and the collect names it kept.
    rerun = row(seq_len=1000, steps=30, role="timing", target_loss=None, status="running", test_loss=None)
    merged = merge_rows(earlier, [rerun, fresh[1]])
    assert merged.rows == [timing, fresh[1]] and merged.kept == [row_key(timing)]
    # A run the database holds replaces the row, and is named.
    ran = row(seq_len=1000, steps=30, role="timing", target_loss=None, cpu_seconds=9.0)
    merged = merge_rows(earlier, [ran, fresh[1]])
    assert merged.rows == [ran, fresh[1]] and len(merged.replaced) == 1


def test_a_planned_run_without_a_length_is_the_row_its_run_records_with_one():
    """mnist5k's length is its data's (784), known once a run records it: the planned row (no length)
    and the ran row (784) are one row, either way round, and a third length is no match."""
    kw = {"task": "mnist5k", "role": None, "target_loss": None}
    planned = row(seq_len=None, status="not run", steps=0, test_loss=None, test_metric=None, note="not run yet", **kw)
    ran = row(seq_len=784, test_metric=0.9, **kw)
    assert merge_rows([planned], [ran]).rows == [ran]  # the run replaces its placeholder
    assert merge_rows([ran], [planned]).rows == [ran]  # a database without the run keeps it
    other = row(seq_len=100, test_metric=0.5, **kw)
    assert merge_rows([ran, other], [planned]).rows == [planned, ran, other]  # two lengths: no guess


def test_before_any_rung_ran_a_model_reads_where_its_lowest_rung_stands():
    planned = [
        row(seq_len=1000, status="not run", test_loss=None, note="not run yet: waits for T=500"),
        row(seq_len=100, status="not run", test_loss=None, note="not run yet"),
        row(seq_len=500, status="not run", test_loss=None, note="not run yet: waits for T=100 (0 of 3 seeds done)"),
    ]
    table = ladder_table(planned)
    line = next(line for line in table.splitlines() if line.startswith("| IndRNN"))
    assert line.split(" | ")[1] == "not run yet"


def test_a_rung_is_solved_by_its_threshold_not_by_the_validation_stop_below_it():
    # stop_at 0.5: the run stopped at validation 0.005; test 0.008 is below the threshold 0.01.
    line = ladder_table([row(seq_len=100, loss=0.008, target_loss=0.005, solved_below=0.01)]).splitlines()[2]
    assert line.split(" | ")[1] == "100 (top rung T=100)"
    older = ladder_table([row(seq_len=100, loss=0.008, target_loss=0.005)]).splitlines()[2]  # a CSV without it
    assert older.split(" | ")[1] == "-"


def test_the_report_draws_the_spec_s_own_runs_only_not_its_timing_runs_nor_what_it_no_longer_plans(tmp_path):
    spec = expand_spec(
        {
            "name": "climb",
            "base": {"hidden_size": 8, "steps": 2, "eval_size": 16, "cell": "gru"},
            "include": [{"name": "GRU", "task": "adding"}],
            "seeds": [0, 1],
            "ladder": {
                "rungs": {"adding": {"seq_len": [10, 20], "solved_below": 0.01}},
                "timing": {"task": "adding", "seq_len": 1000, "steps": 3, "eval_size": 4},
            },
        }
    )
    with Database(tmp_path / "r.db") as db:
        for run in spec.runs:
            if run.timing or run.config.seq_len == 10:
                row_id = db.create_run(run.identity, "gru", "adding", run.config.model_dump(), sweep="climb")
                loss = 0.9 if run.timing else 0.5  # three steps at T=1000: no result, only a time
                db.finish_run(row_id, "finished", RunSummary(test_loss=loss, test_metric=loss, metric="mse", steps=2))
        # a run of settings the spec planned once and no longer does, at a length of its own
        old = spec.runs[0].config.model_copy(update={"seq_len": 777, "lr": 0.5})
        row_id = db.create_run("gru+adding+old-settings", "gru", "adding", old.model_dump(), sweep="climb")
        db.finish_run(row_id, "finished", RunSummary(test_loss=1.0, test_metric=1.0, metric="mse", steps=30))
    results = frozenset(r.identity for r in spec.runs if not r.timing)
    timing = frozenset(r.identity for r in spec.runs if r.timing)
    assert len(results) == 4 and len(timing) == 1
    whole = build_report(tmp_path / "r.db", tmp_path / "all.html", "climb").read_text(encoding="utf-8")
    page = build_report(tmp_path / "r.db", tmp_path / "r.html", "climb", only=results, timing=timing)
    page = page.read_text(encoding="utf-8")
    assert "4 runs from r.db." in whole
    assert "2 runs from r.db (left out: 1 timing run and 1 run of settings the spec no longer plans)." in page
    for length in ("seq_len 1000", "seq_len 777"):  # neither the timing run's length nor the dropped run's is drawn
        assert length in whole and length not in page
