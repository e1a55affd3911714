"""bptt selfcheck: every check runs and holds on a CPU, its table, and its exit code when one fails."""

import pytest
import torch
from click.testing import CliRunner

from bptt.bench import selfcheck
from bptt.cli import selfcheck as selfcheck_cli
from bptt.engine import minrnn


@pytest.mark.slow
def test_selfcheck_runs_every_check_and_each_holds_on_a_cpu():
    checks = selfcheck.run("cpu", quick=True)
    assert [c.name for c in checks] == [
        "compiled loops",
        "parity with torch.nn",
        "gradcheck",
        "recorded norms",
        "speed against torch.nn",
        "demo --quick",
    ]
    assert all(c.ok for c in checks), [c for c in checks if not c.ok]
    speed = checks[4].detail
    assert "bptt LSTM+record" in speed and "bptt GRU packed" in speed and "x @ 32x64x100" in speed
    assert sum(c.seconds for c in checks) < selfcheck.BUDGET_SECONDS


def test_the_table_and_the_exit_code(monkeypatch):
    monkeypatch.setattr(
        selfcheck,
        "run",
        lambda device, quick, progress: [
            selfcheck.Check("parity with torch.nn", True, "every engine", 1.0),
            selfcheck.Check("demo --quick", False, "exit 2: no page", 2.0),
        ],
    )
    done = CliRunner().invoke(selfcheck_cli.command, ["--quick"])
    assert done.exit_code == 1
    assert "FAILED" in done.output and "exit 2: no page" in done.output and "1 of 2 checks hold" in done.output


def test_a_device_this_machine_lacks_is_one_line_exit_2():
    done = CliRunner().invoke(selfcheck_cli.command, ["--device", "nonsense"])
    assert done.exit_code == 2 and "--device" in done.output


def test_the_gradcheck_row_covers_the_newer_cells_and_names_a_backward_that_fails(monkeypatch):
    check = selfcheck.gradchecks("cpu")
    assert check.ok and check.detail.startswith("20 backwards in float64"), check

    class Doubled(torch.autograd.Function):  # the identity, with a backward that doubles
        @staticmethod
        def forward(ctx, x):
            return x.clone()

        @staticmethod
        def backward(ctx, grad):
            return 2 * grad

    def wrong(cell, x, h0, w, b, record=None, loops=None):
        return minrnn.min_reference_layer(cell, Doubled.apply(x), h0, w, b)

    monkeypatch.setattr(minrnn, "min_layer", wrong)  # the compiled engine calls it too
    check = selfcheck.gradchecks("cpu")
    assert not check.ok  # a failed row naming each wrong backward, not an exception
    assert check.detail == "mingru on fast, mingru on compiled, minlstm on fast, minlstm on compiled"
