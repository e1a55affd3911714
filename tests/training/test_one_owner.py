"""One owner per run: of two resumes started together, one takes the run up and the other is refused in one
line; a resume started while the run trains is refused too, so no duplicate is trained."""

import subprocess
import sys

import pytest

from bptt.config import build_config
from bptt.store import Database
from bptt.training import RunInUseError, train

SMALL = {
    "task": "adding",
    "seq_len": 8,
    "hidden_size": 8,
    "batch_size": 8,
    "eval_size": 16,
    "eval_every": 5,
    "checkpoint_every": 5,
    "progress": False,
}
FLAGS = ["--task", "adding", "--seq-len", "8", "--hidden-size", "8", "--batch-size", "8", "--eval-size", "16"]


def _interrupted_run(path, steps=10):
    with Database(path) as db:
        result = train(build_config({**SMALL, "steps": steps}), db)
        db.connection.execute("UPDATE runs SET status = 'interrupted' WHERE id = ?", (result.run_id,))
    return result.run_id


def test_of_two_claims_of_one_row_read_together_exactly_one_wins(tmp_path):
    run_id = _interrupted_run(tmp_path / "r.db")
    first, second = Database(tmp_path / "r.db"), Database(tmp_path / "r.db")
    seen_first, seen_second = first.run(run_id), second.run(run_id)
    config = build_config({**SMALL, "steps": 20}).model_dump()
    assert first.claim_run(run_id, config, seen=seen_first)
    assert not second.claim_run(run_id, config, seen=seen_second)
    assert second.run(run_id).status == "running"
    first.close()
    second.close()


def test_a_resume_of_a_run_another_process_claimed_meanwhile_is_refused_and_writes_nothing(tmp_path, monkeypatch):
    run_id = _interrupted_run(tmp_path / "r.db")
    db = Database(tmp_path / "r.db")
    latest = db.latest_run

    def then_claimed_elsewhere(identity, sweep=None):
        row = latest(identity, sweep)
        other = Database(tmp_path / "r.db")  # another process takes the run up between our read and our claim
        other.claim_run(run_id, row.config, seen=row)
        other.close()
        return row

    monkeypatch.setattr(db, "latest_run", then_claimed_elsewhere)
    with pytest.raises(RunInUseError, match="was taken up by another process a moment ago"):
        train(build_config({**SMALL, "steps": 20}), db, resume=True)
    assert [(r.id, r.steps_done) for r in db.runs()] == [(run_id, 10)]
    assert [s.step for s in db.steps(run_id)] == list(range(1, 11))


@pytest.mark.slow
def test_two_resumes_started_together_train_the_run_once(tmp_path):
    for trial in range(3):
        path = tmp_path / f"r{trial}.db"
        _interrupted_run(path)
        argv = [sys.executable, "-m", "bptt.cli.main", "train", "--db", str(path), *FLAGS]
        argv += ["--steps", "1500", "--resume", "--json"]
        processes = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in "ab"]
        results = [(p.wait(), p.stderr.read()) for p in processes]
        codes = sorted(code for code, _ in results)
        assert codes == [0, 2], results
        (refusal,) = [err.strip().splitlines() for code, err in results if code == 2]
        assert len(refusal) == 1 and refusal[0].startswith("bptt: error: --resume: run 1 ")
        assert "another process" in refusal[0]
        with Database(path) as db:
            (row,) = db.runs()
            assert row.status == "finished" and row.steps_done == 1500
            assert [s.step for s in db.steps(row.id)] == list(range(1, 1501))
