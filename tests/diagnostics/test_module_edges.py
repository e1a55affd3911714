"""`diagnose --module` on what a user brings: a batch-first model, a file that calls sys.exit or imports a file
beside it, and data that cannot be measured; each is one line, or works."""

import sys

import pytest
import torch

from bptt.cli.main import main

MODELS = """
import torch

class BatchFirst(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = torch.nn.GRU(2, 8, batch_first=True)
        self.out = torch.nn.Linear(8, 1)

    def forward(self, x):  # x: (B, T, 2)
        return self.out(self.rnn(x)[0][:, -1])

def batch_first():
    return BatchFirst()

class TimeFirst(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = torch.nn.GRU(3, 8)
        self.out = torch.nn.Linear(8, 4)

    def forward(self, x):  # x: (T, B, 3)
        return self.out(self.rnn(x)[0][-1])

def time_first():
    return TimeFirst()
"""


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models.py").write_text(MODELS)
    return tmp_path


def _line(capsys):
    (line,) = capsys.readouterr().err.strip().splitlines()
    return line


def test_a_batch_first_model_is_told_that_inputs_come_time_first_and_how_to_change_that(here, capsys):
    assert main(["diagnose", "--module", "models.py:batch_first", "--task", "adding", "--seq-len", "12"]) == 2
    line = _line(capsys)
    assert "inputs are fed time-first, (T, B, ...)" in line and "--batch-first" in line
    assert (
        main(["diagnose", "--module", "models.py:batch_first", "--task", "adding", "--seq-len", "12", "--batch-first"])
        == 0
    )


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("import sys\nsys.exit(7)\n", "--module: importing exits.py failed: it called sys.exit(7)"),
        ("import sys\ndef build():\n    sys.exit('no')\n", "--module: build() failed: it called sys.exit('no')"),
    ],
)
def test_a_module_file_that_calls_sys_exit_is_one_line(here, capsys, source, message):
    (here / "exits.py").write_text(source)
    assert main(["diagnose", "--module", "exits.py:build", "--task", "adding", "--seq-len", "8"]) == 2
    assert _line(capsys) == f"bptt: error: {message}"


def test_a_module_file_imports_a_file_beside_it_from_any_folder(here, capsys, monkeypatch):
    (here / "user").mkdir()
    (here / "user" / "layers.py").write_text("import torch\n\ndef recurrent():\n    return torch.nn.LSTM(2, 8)\n")
    (here / "user" / "model.py").write_text(
        "import torch\nfrom layers import recurrent\n\n"
        "class M(torch.nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n        self.rnn = recurrent()\n"
        "        self.out = torch.nn.Linear(8, 1)\n\n"
        "    def forward(self, x):\n        return self.out(self.rnn(x)[0][-1])\n\n"
        "def build():\n    return M()\n"
    )
    path = list(sys.path)
    assert main(["diagnose", "--module", "user/model.py:build", "--task", "adding", "--seq-len", "8", "--json"]) == 0
    assert sys.path == path  # the file's folder was on the path while it loaded, and only then


def _batch(path, inputs, targets):
    torch.save({"inputs": inputs, "targets": targets}, path)
    return path.name


@pytest.mark.parametrize(
    ("inputs", "targets", "message"),
    [
        (torch.full((10, 4, 3), float("nan")), torch.zeros(4, dtype=torch.long), "inputs hold nan or inf (120 of 120"),
        (torch.randn(10, 0, 3), torch.zeros(0, dtype=torch.long), "hold no examples, steps or features"),
        (
            torch.randn(10, 4, 3),
            torch.tensor([0, 1, 2, 9]),
            "the targets hold class id 9, but the module's output has 4",
        ),
        (torch.randn(10, 4, 3), torch.tensor([0, 1, 2, -1]), "class ids must be >= 0, got -1"),
        (torch.randn(10, 4, 3, dtype=torch.complex64), torch.zeros(4, dtype=torch.long), "must hold real numbers"),
    ],
)
def test_data_that_cannot_be_measured_is_one_line(here, capsys, inputs, targets, message):
    name = _batch(here / "batch.pt", inputs, targets)
    assert main(["diagnose", "--module", "models.py:time_first", "--data", name]) == 2
    line = _line(capsys)
    assert line.startswith("bptt: error: ") and message in line
