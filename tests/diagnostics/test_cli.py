"""`bptt diagnose` on a config, a saved run and a user's own torch.nn module; diagnose() on the models."""

import json

import pytest
import torch

from bptt.build import make_model
from bptt.cli.diagnose import _figures
from bptt.cli.main import main
from bptt.config import build_config
from bptt.diagnostics import diagnose, diagnose_module
from bptt.tasks import TaskSettings, build_task
from bptt.training import Trainer

SMALL = ["--hidden-size", "8", "--embedding-size", "4", "--examples", "8"]
USER_MODULE = '''
import torch
from torch import nn


class Wrapped(nn.Module):
    """A plain torch.nn.LSTM with a head on the last step."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(2, 8)
        self.head = nn.Linear(8, 1)

    def forward(self, x):
        return self.head(self.lstm(x)[0][-1])


def build():
    torch.manual_seed(0)
    return Wrapped()
'''


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_diagnose_a_config_prints_a_verdict_and_writes_every_figure(tmp_path, capsys):
    out = tmp_path / "figures"
    code = main(
        ["diagnose", "--task", "sentiment", "--delay", "20", "--activation", "sigmoid", *SMALL, "--out", str(out)]
    )
    assert code == 0
    text = capsys.readouterr().out
    assert "vanishing: dL/dh at lag 24 is" in text and "gradients must vanish" in text
    names = sorted(p.name for p in out.iterdir())
    for figure in ("profile", "contribution", "updates", "jacobian"):
        assert f"{figure}.png" in names and f"{figure}.svg" in names
    assert "layers.png" not in names  # one layer: no one-bar per-layer chart
    assert (
        main(["diagnose", "--task", "sentiment", "--delay", "20", "--num-layers", "2", *SMALL, "--out", str(out)]) == 0
    )
    assert (out / "layers.png").exists() and (out / "layers.svg").exists()


def _titles(fig):
    return [t for t in [fig._suptitle.get_text() if fig._suptitle else "", *(ax.get_title() for ax in fig.axes)] if t]


def test_every_figure_of_diagnose_says_when_the_model_was_measured():
    config = build_config(
        {
            "task": "adding",
            "seq_len": 10,
            "hidden_size": 8,
            "steps": 3,
            "eval_size": 16,
            "batch_size": 8,
            "progress": False,
        }
    )
    trainer = Trainer(config)
    fresh = diagnose(make_model(config, trainer.task), trainer.task, examples=8)
    trainer.run()
    trained = diagnose(trainer.model, trainer.task, examples=8)
    for result, state in ((fresh, "at initialisation"), (trained, "after 3 training steps")):
        pictures = _figures(result)
        assert sorted(pictures) == ["contribution", "jacobian", "profile", "updates"]
        assert all(any(title.endswith(state) for title in _titles(fig)) for fig in pictures.values()), state


def test_diagnose_json_has_every_quantity(capsys):
    assert (
        main(
            [
                "diagnose",
                "--task",
                "adding",
                "--seq-len",
                "30",
                "--cell",
                "lstm",
                "--forget-bias",
                "1",
                *SMALL,
                "--json",
            ]
        )
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert report["source"] == "config" and report["cell"] == "lstm" and report["seq_len"] == 30
    for key in (
        "gradient_ratio",
        "memory_horizon",
        "update_share_last",
        "input_share_last",
        "sensitivity",
        "gradient_profile",
        "input_contribution",
        "update_terms",
        "jacobian",
        "layers",
        "verdict",
    ):
        assert key in report
    assert len(report["input_contribution"]) == 30
    assert len(report["gradient_profile"]["cell"][0]) == 30
    assert report["jacobian"]["condition"]["applies"] is False


def test_diagnose_a_users_torch_lstm(tmp_path, capsys):
    path = tmp_path / "user_model.py"
    path.write_text(USER_MODULE)
    out = tmp_path / "figures"
    code = main(
        [
            "diagnose",
            "--module",
            f"{path}:build",
            "--task",
            "adding",
            "--seq-len",
            "25",
            "--examples",
            "16",
            "--json",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["source"] == "module" and report["seq_len"] == 25
    assert len(report["input_contribution"]) == 25 and all(v >= 0 for v in report["input_contribution"])
    assert "of the input contribution" in report["verdict"]
    assert (out / "contribution.svg").exists()


def test_diagnose_a_saved_run_loads_its_checkpoint_and_history(tmp_path, capsys):
    db = tmp_path / "runs.db"
    assert (
        main(
            [
                "train",
                "--db",
                str(db),
                "--task",
                "sentiment",
                "--delay",
                "6",
                "--hidden-size",
                "8",
                "--embedding-size",
                "4",
                "--batch-size",
                "8",
                "--steps",
                "12",
                "--eval-size",
                "16",
                "--eval-every",
                "6",
                "--clip-norm",
                "0.01",
                "--record-every",
                "4",
                "--json",
            ]
        )
        == 0
    )
    capsys.readouterr()
    out = tmp_path / "figures"
    assert main(["diagnose", "--db", str(db), "--run", "1", "--examples", "8", "--json", "--out", str(out)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["source"] == "run" and report["run"] == 1 and report["seq_len"] == 11
    history = report["history"]
    assert history["steps_recorded"] == 12 and history["clipped_steps"] == 12 and history["skipped_steps"] == 0
    assert history["nan_events"] == []
    assert (out / "history.svg").exists()
    assert main(["diagnose", "--db", str(db), "--run", "1", "--examples", "8"]) == 0
    assert "training: 12 steps, 12 clipped" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args,message",
    [
        (["--db", "{db}", "--run", "7"], "--run: no run 7"),
        (["--run", "1"], "--db: no database at bptt.db"),
        (["--db", "{db}", "--task", "adding"], "--db applies to --run only"),
        (["--module", "nowhere.py:build", "--task", "adding"], "--module: file not found"),
        (["--module", "nofactory", "--task", "adding"], "expected path/to/file.py:factory"),
        (["--task", "chess"], "--task: must be one of"),
    ],
)
def test_diagnose_errors_are_one_line_with_exit_code_2(tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "empty.db"
    if "{db}" in args:
        from bptt.store import Database

        Database(db).close()
    code = main(["diagnose", *[a.replace("{db}", str(db)) for a in args]])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("bptt: error:") and message in err and err.count("\n") == 1


def test_diagnose_leaves_the_model_untouched_and_sees_attention_reach_back():
    config = build_config(
        {"task": "sentiment", "delay": 30, "hidden_size": 8, "embedding_size": 4, "readout": "attention"}
    )
    task = build_task("sentiment", TaskSettings(delay=30))
    model = make_model(config, task)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = diagnose(model, task, examples=8)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
    assert result.horizon[-1] == result.seq_len - 1  # every h_t reaches the loss directly
    assert result.verdict().startswith("no vanishing")


def test_diagnose_module_feeds_token_tasks_one_hot():
    task = build_task("sentiment", TaskSettings(delay=5))

    class BagOfWords(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.head = torch.nn.Linear(task.input_size, 2)

        def forward(self, x):  # (T, B, V) one-hot
            return self.head(x.mean(0))

    result = diagnose_module(BagOfWords(), task, examples=8)
    assert result.seq_len == task.seq_len
    # A bag of words weighs every position the same.
    assert result.input_share_recent == pytest.approx(min(10, task.seq_len) / task.seq_len)


@pytest.mark.parametrize(
    "args",
    [
        ["--batch-first"],
        ["--db", "x.db", "--run", "1", "--train"],
        ["--module", "m.py:f", "--train"],
        ["--data", "b.pt"],
        ["--module", "m.py:f", "--loss", "ce"],
        ["--module", "m.py:f", "--data", "b.pt", "--task", "adding"],
    ],
)
def test_options_that_do_not_apply_are_usage_errors(args, capsys):
    from bptt.cli.main import main

    assert main(["diagnose", *args]) == 2
    assert capsys.readouterr().err.startswith("bptt: error: ")


TOKEN_MODULE = '''
import torch
from torch import nn


class Tagger(nn.Module):
    """A user's own model: embedding, torch.nn.LSTM, linear head on the last step."""

    def __init__(self, vocabulary=160, classes=2):
        super().__init__()
        self.embed = nn.Embedding(vocabulary, 6)
        self.lstm = nn.LSTM(6, 8, batch_first=True)
        self.head = nn.Linear(8, classes)

    def forward(self, tokens):  # (B, T) ids
        out, _ = self.lstm(self.embed(tokens))
        return self.head(out[:, -1])


class EverySteps(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(2, 8)
        self.head = nn.Linear(8, 1)

    def forward(self, x):
        return self.head(self.lstm(x)[0])  # (T, B, 1): the whole sequence


def build():
    torch.manual_seed(0)
    return Tagger()


def build_sequence():
    return EverySteps()


def build_two_inputs():
    torch.manual_seed(0)
    return nn.Sequential(nn.LSTM(2, 4))
'''


def _module_file(tmp_path):
    path = tmp_path / "user_model.py"
    path.write_text(TOKEN_MODULE)
    return path


def test_diagnose_a_users_token_model_measures_everything(tmp_path, capsys):
    path = _module_file(tmp_path)
    code = main(
        [
            "diagnose",
            "--module",
            f"{path}:build",
            "--task",
            "sentiment",
            "--delay",
            "10",
            "--input",
            "tokens",
            "--batch-first",
            "--examples",
            "8",
            "--json",
            "--out",
            str(tmp_path / "fig"),
        ]
    )
    assert code == 0, capsys.readouterr().err
    report = json.loads(capsys.readouterr().out)
    assert report["source"] == "module" and report["cell"] == "lstm"
    assert len(report["gradient_profile"]["hidden"][0]) == report["seq_len"] == 15  # subject 3 + negation + word + 10
    assert report["memory_horizon"] and report["jacobian"]["product_norm"]
    assert {"profile.png", "updates.png", "jacobian.png", "contribution.png"} <= {
        p.name for p in (tmp_path / "fig").iterdir()
    }


@pytest.mark.parametrize("suffix", [".pt", ".npz"])
def test_diagnose_a_users_model_on_the_users_own_data(tmp_path, capsys, suffix):
    path = _module_file(tmp_path)
    gen = torch.Generator().manual_seed(0)
    inputs, targets = torch.randint(0, 160, (6, 12), generator=gen), torch.randint(0, 2, (6,), generator=gen)
    data = tmp_path / f"batch{suffix}"
    if suffix == ".pt":
        torch.save({"inputs": inputs, "targets": targets}, data)
    else:
        import numpy as np

        np.savez(data, inputs=inputs.numpy(), targets=targets.numpy())
    assert main(["diagnose", "--module", f"{path}:build", "--data", str(data), "--batch-first", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["data"] == str(data) and report["seq_len"] == 12 and "verdict" in report


@pytest.mark.parametrize(
    "args,message",
    [
        (
            ["--module", "{path}:build_sequence", "--task", "adding", "--seq-len", "10"],
            "the module's output has shape (10, 16, 1) but the targets have shape (16, 1)",
        ),
        (
            ["--module", "{path}:build", "--task", "adding", "--seq-len", "10"],
            "the module cannot take inputs of shape (10, 16, 2)",
        ),
        (
            ["--module", "{path}:build_two_inputs", "--task", "sentiment"],
            "the module cannot take inputs of shape (5, 16, 155)",
        ),
    ],
)
def test_a_module_and_data_that_do_not_fit_are_one_line_naming_both_shapes(tmp_path, capsys, args, message):
    path = _module_file(tmp_path)
    code = main(["diagnose", *[a.format(path=path) for a in args], "--examples", "16"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("bptt: error: ") and err.count("\n") == 1
    assert message in err
