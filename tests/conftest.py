import pytest
import torch

from bptt.config import build_config
from bptt.store import Database
from bptt.training import Trainer

SMALL = {"hidden_size": 8, "batch_size": 8, "steps": 4, "eval_size": 16, "eval_every": 2, "progress": False}


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


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


@pytest.fixture
def sweep_db(tmp_path):
    """Call it to get the path of a database holding the runs of sweep "s" (see ``fill``)."""

    def make(record_every=2):
        path = tmp_path / "r.db"
        fill(path, record_every)
        return path

    return make
