"""bptt selfcheck: every check runs and holds on a CPU, its table, and its exit code when one fails."""

import pytest
from click.testing import CliRunner

from bptt.bench import selfcheck
from bptt.cli import selfcheck as selfcheck_cli


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
