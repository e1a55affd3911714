"""The Ray backend on a local Ray instance gives the same rows as the local pool."""
import pytest

from bptt.store import Database
from bptt.sweeps import expand_spec, run_sweep

BASE = {"task": "adding", "seq_len": 8, "hidden_size": 8, "batch_size": 8, "steps": 10, "eval_size": 16,
        "eval_every": 5, "checkpoint_every": 5, "lr": 0.01}


@pytest.mark.slow
def test_ray_backend_gives_the_same_rows_as_the_local_pool(tmp_path):
    pytest.importorskip("ray")
    data = {"base": BASE, "grid": {"cell": ["rnn", "lstm"]}, "seeds": [0, 1]}
    local = run_sweep(expand_spec({"name": "local", **data}), tmp_path / "r.db", workers=2, threads=1,
                      progress=False)
    on_ray = run_sweep(expand_spec({"name": "ray", **data}), tmp_path / "r.db", backend="ray", workers=2,
                       threads=1, progress=False)
    assert local.statuses == on_ray.statuses == {"finished": 4}
    with Database(tmp_path / "r.db") as db:
        rows = {name: {r.identity: r for r in db.runs(sweep=name)} for name in ("local", "ray")}
        assert rows["local"].keys() == rows["ray"].keys()
        for identity, row in rows["local"].items():
            other = rows["ray"][identity]
            keep = lambda final: {k: v for k, v in final.to_dict().items()  # noqa: E731
                                  if k not in ("run_id", "train_seconds", "steps_per_second")}
            assert keep(row.final) == keep(other.final)
            assert db.steps(row.id) == db.steps(other.id)
            assert db.evals(row.id) == db.evals(other.id)
    again = run_sweep(expand_spec({"name": "ray", **data}), tmp_path / "r.db", backend="ray", progress=False)
    assert again.ran == 0 and again.skipped == 4  # nothing to run: Ray is not even started
