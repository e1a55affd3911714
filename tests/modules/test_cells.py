"""Cells by name: the registry drives the config, the builder, the flags, the memory estimate, the
constraint hook, parameter groups, recording and the verdict."""

import pytest
import torch

import bptt
from bptt.build import make_model, make_task
from bptt.cli.main import main
from bptt.config import ConfigError, build_config
from bptt.engine.recording import RECORD_ATTRIBUTE, GradientRecord, StepRecorder
from bptt.modules import CELLS, constrain
from bptt.modules.cells import CellSetting
from bptt.modules.indrnn import IndRNN, recurrent_bound
from bptt.training import Trainer
from bptt.training.memory import count_parameters
from bptt.training.optim import build_optimizer

NEW_CELLS = [name for name in CELLS.in_order() if name not in ("rnn", "lstm", "gru")]


@pytest.mark.parametrize("cell", CELLS.in_order())
def test_every_cell_builds_from_its_entry_and_its_count_is_the_estimate(cell):
    config = build_config({"task": "adding", "seq_len": 12, "cell": cell, "hidden_size": 6})
    task = make_task(config)
    model = make_model(config, task)
    assert type(model.recurrent) is CELLS.get(cell).layer or isinstance(model.recurrent, CELLS.get(cell).layer)
    assert count_parameters(config, task) == sum(p.numel() for p in model.parameters())
    assert config.lr == CELLS.get(cell).defaults["lr"]
    out = model(task.train_batch(3, torch.Generator().manual_seed(0)).inputs)
    assert out.shape == (3, 1)


def test_a_cells_defaults_fill_what_the_run_leaves_unset_and_are_recorded():
    config = build_config({"task": "adding", "seq_len": 100, "cell": "indrnn"})
    assert (config.num_layers, config.lr, config.activation) == (2, 2e-4, "relu")
    assert config.cell_options == {"magnitude": 2.0}
    assert config.model_dump()["cell_options"] == {"magnitude": 2.0}
    mine = build_config(
        {"task": "adding", "cell": "indrnn", "num_layers": 3, "lr": 1e-3, "cell_options": {"magnitude": 3}}
    )
    assert (mine.num_layers, mine.lr, mine.cell_options["magnitude"]) == (3, 1e-3, 3.0)
    # a preset named as the task: the LRU's ring near 1 on adding, its own ring elsewhere; what is given wins
    lru = build_config({"task": "adding", "seq_len": 100, "cell": "lru"})
    assert lru.cell_preset == "adding" and (lru.cell_options["r_min"], lru.cell_options["r_max"]) == (0.99, 0.9999)
    assert build_config({"task": "copy", "cell": "lru"}).cell_options["r_min"] == 0.9
    given = build_config({"task": "adding", "cell": "lru", "cell_options": {"r_min": 0.5}})
    assert (given.cell_options["r_min"], given.cell_options["r_max"]) == (0.5, 0.9999)
    # The torch twins keep the identity their runs were stored under: nothing new in their dump changes it.
    assert build_config({"cell": "gru"}).cell_options == {} and build_config({"cell": "gru"}).cell_preset is None


@pytest.mark.parametrize(
    "values,message",
    [
        ({"cell": "indrnn", "cell_options": {"dt": 0.1}}, "cell 'indrnn' has no setting 'dt'; its settings: magnitude"),
        (
            {"cell": "indrnn", "cell_options": {"magnitude": 0.5}},
            "cell_options.magnitude: must be a finite number above 1",
        ),
        ({"cell": "lstm", "cell_options": {"magnitude": 2}}, "cell 'lstm' has no setting 'magnitude'"),
        ({"cell": "indrnn", "activation": "prelu"}, "activation: cell 'indrnn' takes relu, tanh, sigmoid"),
        ({"cell": "indrnn", "init": "xavier"}, "init and init_scale apply to cells rnn, lstm, gru"),
        ({"cell": "indrnn", "engine": "vendor"}, "engine: cell 'indrnn' runs on auto, fast, reference"),
        ({"cell": "indrnn", "cell_preset": "mnist"}, "cell_preset: cell 'indrnn' has presets none"),
    ],
)
def test_a_cells_settings_are_checked_with_one_line(values, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        build_config(values)


def test_a_text_setting_without_choices_takes_text_and_refuses_anything_else():
    setting = CellSetting("label", "plain", "a free-text setting")
    assert setting.check("striped") == "striped"
    with pytest.raises(ValueError, match="must be text"):
        setting.check(3)
    # the other kinds keep their checks
    assert CellSetting("flag", False, "a switch").check("true") is True
    assert CellSetting("count", 2, "a count", at_least=1).check("3") == 3
    with pytest.raises(ValueError, match="must be an integer"):
        CellSetting("count", 2, "a count").check(2.5)


def test_cell_flags_and_cell_option_reach_the_config(tmp_path, capsys):
    db = str(tmp_path / "r.db")
    args = ["train", "--db", db, "--task", "adding", "--seq-len", "8", "--cell", "indrnn", "--hidden-size", "4"]
    assert main([*args, "--steps", "2", "--magnitude", "3", "--json"]) == 0
    assert '"magnitude": 3.0' in capsys.readouterr().out
    assert main([*args, "--steps", "2", "--cell-option", "magnitude=0.5"]) == 2
    assert "--cell-option magnitude: must be a finite number above 1 (got 0.5)" in capsys.readouterr().err


def test_the_trainer_applies_a_layers_constraint_after_each_step():
    config = build_config(
        {"task": "adding", "seq_len": 10, "cell": "indrnn", "hidden_size": 5, "steps": 3, "lr": 1.0, "progress": False}
    )
    trainer = Trainer(config)
    bound = recurrent_bound(10)
    trainer.run()
    u = [trainer.model.recurrent.recurrent_weight(layer) for layer in range(2)]
    assert all(float(w.abs().max()) <= bound + 1e-7 for w in u)
    layer = IndRNN(2, 3, t_max=4)
    with torch.no_grad():
        layer.weight_hh_l0.fill_(5.0)
    constrain(torch.nn.Sequential(layer))
    assert torch.allclose(layer.weight_hh_l0, torch.full((3,), recurrent_bound(4)))


class _Grouped(IndRNN):
    def parameter_groups(self):
        return [([self.weight_hh_l0], 0.1)]


def test_parameter_groups_a_layer_declares_train_at_their_own_rate():
    config = build_config({"cell": "indrnn", "lr": 0.5})
    model = torch.nn.Sequential(_Grouped(2, 3))
    optimizer = build_optimizer(config, model.parameters(), model)
    rates = sorted(group["lr"] for group in optimizer.param_groups)
    assert rates == [pytest.approx(0.05), 0.5]
    assert optimizer.param_groups[1]["params"] == [model[0].weight_hh_l0]


def test_record_gradients_names_the_state_it_records():
    layer = bptt.modules.IndRNN(2, 4, 2)
    with bptt.record_gradients(layer) as rec:
        out, _ = layer(torch.randn(7, 3, 2))
        out[-1].sum().backward()
    assert rec.names == ("h",) and rec.hidden.shape == (2, 7) and torch.equal(rec.series("h"), rec.hidden)
    assert rec.cell is None
    with pytest.raises(ValueError, match="holds h"):
        rec.series("c")


def test_the_verdict_names_the_mechanism_and_the_diagonal_spectrum():
    config = build_config({"task": "adding", "seq_len": 30, "cell": "indrnn", "hidden_size": 8})
    task = make_task(config)
    diagnosis = bptt.diagnose(make_model(config, task), task, examples=8)
    verdict = diagnosis.verdict()
    assert "IndRNN: each unit keeps its state" in verdict
    assert "the step Jacobian is diagonal" in verdict and "max |u|" in verdict
    spectrum = diagnosis.spectrum
    u = make_model(config, task).recurrent.weight_hh_l1.detach().double()
    assert torch.allclose(spectrum.weights, u.abs())
    # Exact: each step's eigenvalues are act'(a_t) u, so their magnitudes never exceed max |u|.
    assert float(spectrum.diagonal.abs().max()) <= float(u.abs().max()) + 1e-12
    assert diagnosis.updates.weight_hh.shape == (2, 30) and diagnosis.layers.weight_hh.shape == (2,)


def test_a_complex_states_gradient_is_recorded_as_the_norm_of_its_real_and_imaginary_parts():
    module = torch.nn.Module()
    record = GradientRecord(num_layers=1, names=("x",))
    object.__setattr__(module, RECORD_ATTRIBUTE, record)
    grads = torch.randn(3, 2, 4, dtype=torch.complex128)
    StepRecorder(module, 0, 0, 3, "hidden", batch=2).put(0, grads)
    expected = grads.abs().square().sum(-1).sqrt().mean(-1)
    torch.testing.assert_close(record.series("x")[0], expected)


@pytest.mark.parametrize("value", ["inf", "nan", "1e309", "two"])
def test_a_cells_float_setting_must_be_finite_on_the_command_line(tmp_path, capsys, value):
    args = ["train", "--db", str(tmp_path / "r.db"), "--cell", "cornn", "--dt", value]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("bptt: error: --cell-option dt: must be") and len(err.splitlines()) == 1
    assert not (tmp_path / "r.db").exists()
