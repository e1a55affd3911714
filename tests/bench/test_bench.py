"""The benchmark runs, reports ratios for every comparison, and its CLI prints tables or JSON."""

import json

import pytest
from click.testing import CliRunner

from bptt import bench
from bptt.bench import long, throughput
from bptt.cli import bench as bench_cli
from bptt.engine import compiled
from bptt.engine import memory as bench_memory


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
    # What auto chose on a CPU: the compiled loops for every cell, recording or not, packed or not.
    ours = "compiled" if compiled.available() else "fast"
    assert engines["bptt LSTM+record"] == engines["bptt RNN(tanh)"] == engines["bptt GRU packed"] == ours
    assert engines["bptt LSTM"] == ("compiled" if ours == "compiled" else "vendor") and engines["nn.GRU"] == "torch"
    assert {"nn.RNN(tanh) packed", "nn.GRU packed", "bptt GRU packed+record"} <= names


def test_flops_count():
    # 3 * 2 * G * H * (H + I) * B * T
    assert bench.flops_per_step("lstm", batch=2, hidden=3, seq_len=5, input_size=1) == 3 * 2 * 4 * 3 * 4 * 2 * 5


def test_cli_json_and_table(monkeypatch):
    def tiny(quick, device, progress, cells, shapes, only):
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


def test_filters_pick_cells_and_names_with_their_baselines():
    result = bench.measure(shapes=((2, 4, 3),), repeats=1, cells=("gru",), only=("record",))
    names = {t.name for t in result.timings}
    assert names == {"nn.GRU", "bptt GRU", "bptt GRU+record", "nn.GRU packed", "bptt GRU packed+record"}
    packed_only = bench.measure(shapes=((2, 4, 3),), repeats=1, cells=("rnn",), only=("packed",), packed_shapes=())
    assert packed_only.timings == []  # packed variants, but no packed shape


def test_a_slow_variant_is_timed_once_and_says_so(monkeypatch):
    monkeypatch.setattr(throughput, "SLOW_CALL", 0.0)
    result = bench.measure(shapes=((2, 4, 3),), repeats=3, cells=("lstm",), only=("packed",))
    assert result.timings and all(t.calls == 1 for t in result.timings)
    monkeypatch.setattr(throughput, "SLOW_CALL", 1e9)
    result = bench.measure(shapes=((2, 4, 3),), repeats=3, cells=("lstm",), only=("packed",))
    assert all(t.calls == 3 for t in result.timings)


@pytest.mark.parametrize(
    "args,field",
    [(["--cells", "lstm,foo"], "--cells"), (["--shapes", "16x64"], "--shapes"), (["--shapes", "0x1x2"], "--shapes")],
)
def test_bad_filters_are_one_line_and_exit_2(args, field):
    done = CliRunner().invoke(bench_cli.command, args)
    assert done.exit_code == 2 and field in done.output


@pytest.mark.slow
def test_a_long_recorded_step_stays_within_its_estimate():
    rows = long.run(("lstm", "gru"), seq_len=400)
    assert [r["cell"] for r in rows] == ["lstm", "gru"]
    for row in rows:
        assert row["ran"] in ("compiled", "recompute", "fast") and row["seconds"] > 0
        assert row["within"] and 0 < row["extra_bytes"] <= row["estimate_bytes"]


def test_recompute_keeps_at_most_a_quarter_of_the_storing_engines_memory():
    for cell in ("LSTM", "GRU"):
        storing = bench_memory.kept_bytes(cell, "compiled", 100_000, 32, 256)
        assert bench_memory.kept_bytes(cell, "recompute", 100_000, 32, 256) <= storing / 4


@pytest.mark.slow
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_recompute_measures_at_most_a_quarter_of_the_storing_engines_peak(cell):
    storing = bench.peak_memory(cell, "compiled", seq_len=4000)
    recomputing = bench.peak_memory(cell, "recompute", seq_len=4000)
    assert recomputing["ran"] == "recompute" and recomputing["extra_bytes"] <= storing["extra_bytes"] / 4
