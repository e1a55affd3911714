"""A real program written the way others write them, with one ``bptt.convert(model)`` line added:
it trains, saves and loads the whole model and calls flatten_parameters(), and its losses are
torch.nn's (float64, dropout on)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

PROGRAM = Path(__file__).parent / "programs" / "language_model.py"


def _run(cell, tmp_path, convert):
    args = [
        sys.executable,
        str(PROGRAM),
        "--cell",
        cell,
        "--steps",
        "10",
        "--save",
        str(tmp_path / f"{cell}{convert}.pt"),
    ]
    done = subprocess.run(args + (["--convert"] if convert else []), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize("cell", ["LSTM", "GRU", "RNN_TANH", "RNN_RELU"])
def test_the_language_model_program_trains_the_same_with_one_line_added(cell, tmp_path):
    theirs, ours = _run(cell, tmp_path, False), _run(cell, tmp_path, True)
    assert ours["rnn"].startswith("bptt.") and theirs["rnn"].startswith("torch.")
    assert ours["losses"] == pytest.approx(theirs["losses"], rel=1e-6)
    assert ours["test_loss"] == pytest.approx(theirs["test_loss"], rel=1e-6)
