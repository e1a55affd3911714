"""The benchmark runs, reports ratios for every comparison, and its CLI prints tables or JSON."""

import json

from click.testing import CliRunner

from bptt import bench
from bptt.cli import bench as bench_cli


def test_measure_reports_every_comparison():
    result = bench.measure(shapes=((2, 4, 3),), repeats=1)
    names = {t.name for t in result.timings}
    assert {
        "nn.RNN(tanh)",
        "bptt RNN(prelu)",
        "bptt LSTM",
        "nn.GRU",
        "bptt RNN(tanh)+record",
        "bptt LSTM bidirectional",
        "bptt LSTM packed+record",
    } <= names
    assert len(result.ratios) == len(bench.COMPARISONS)
    assert all(r.ratio > 0 for r in result.ratios) and all(t.gflops > 0 for t in result.timings)
    engines = {t.name: t.engine for t in result.timings}
    # What auto chose on a CPU: torch.nn's kernel for the LSTM unless recording, ours otherwise.
    assert engines["bptt LSTM"] == "vendor" and engines["bptt LSTM+record"] == "fast"
    assert engines["bptt RNN(tanh)"] == "fast" and engines["nn.GRU"] == "torch"


def test_flops_count():
    # 3 * 2 * G * H * (H + I) * B * T
    assert bench.flops_per_step("lstm", batch=2, hidden=3, seq_len=5, input_size=1) == 3 * 2 * 4 * 3 * 4 * 2 * 5


def test_cli_json_and_table(monkeypatch):
    def tiny(quick, device, progress):
        result = bench.measure(shapes=((2, 4, 3),), repeats=1, variants=("nn.LSTM", "bptt LSTM"))
        result.memory.append(
            {"cell": "rnn", "engine": "fast", "seq_len": 3, "batch": 2, "hidden": 4, "extra_bytes": 96, "multiple": 1.0}
        )
        return result

    monkeypatch.setattr(bench, "run", tiny)
    done = CliRunner().invoke(bench_cli.command, ["--quick", "--json"])
    assert done.exit_code == 0, done.output
    data = json.loads(done.output)
    assert data["ratios"][0]["variant"] == "bptt LSTM" and data["ratios"][0]["baseline"] == "nn.LSTM"
    done = CliRunner().invoke(bench_cli.command, ["--quick"])
    assert done.exit_code == 0 and "speed-up" in done.output


def test_peak_memory_runs_its_probe_in_a_fresh_process():
    memory = bench.peak_memory("rnn", "fast", seq_len=200, batch=4, hidden=16)
    assert memory["hidden_state_bytes"] == 200 * 4 * 16 * 4
    assert isinstance(memory["extra_bytes"], int) and memory["extra_bytes"] >= 0
    assert memory["multiple"] == memory["extra_bytes"] / memory["hidden_state_bytes"]
