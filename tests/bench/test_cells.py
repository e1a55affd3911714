"""``bptt bench --scan-cells``: every scan cell against bptt's GRU, recording on, with its FLOP bound."""

import json

import torch
from click.testing import CliRunner

from bptt.bench import cells
from bptt.cli import bench as bench_cli
from bptt.engine import compiled
from bptt.engine.minrnn import g
from bptt.engine.scan import reference_scan


def test_every_row_is_timed_against_the_gru_with_its_spread():
    result = cells.measure(shape=(2, 3, 4, 6), rounds=2)
    names = [row.variant for row in result.rows]
    assert names == [name for name in cells.variants(2, 4) if name != cells.BASELINE]
    for row in result.rows:
        assert 0 < row.lowest <= row.ratio <= row.highest and row.seconds > 0
    engines = {row.variant: row.engine for row in result.rows}
    assert engines["bptt minGRU+record"] == ("compiled" if compiled.available() else "fast")
    assert engines["bptt minGRU fast+record"] == "fast" and engines["bptt minGRU scan+record"] == "scan"
    assert engines["bptt LRU+record (1 block)"] == "fast"
    assert result.to_dict()["baseline"] == cells.BASELINE and result.baseline_seconds > 0


def test_flop_bounds():
    I, H = 2, 128
    gru = 3 * H * (H + I)
    assert cells.flop_bound("bptt LRU+record (1 block)", I, H) == gru / (I * H + 4 * H * H + 2 * H * H)
    assert cells.flop_bound("bptt minGRU+record", I, H) == gru / (2 * H * I)
    assert cells.flop_bound("bptt minLSTM+record", I, H) == gru / (3 * H * I)


def test_the_log_space_row_is_minGRU():
    """The paper's log-space form computes the same minGRU as the loop it is timed against."""
    module = cells.LogSpaceMinGRU(2, 3).double()
    x = torch.randn(7, 4, 2, dtype=torch.float64)
    out, _ = module(x)
    p_h, p_z = module.linear(x).chunk(2, dim=-1)
    z = torch.sigmoid(p_z)
    torch.testing.assert_close(out, reference_scan(1 - z, z * g(p_h), torch.zeros(4, 3, dtype=torch.float64)))


def test_cli_table_and_json(monkeypatch):
    real = cells.measure
    tiny = lambda shape, rounds=1, device="cpu", progress=None: real((2, 3, 4, 6), rounds=1)  # noqa: E731
    monkeypatch.setattr(cells, "measure", tiny)
    table = CliRunner().invoke(bench_cli.command, ["--scan-cells"])
    assert table.exit_code == 0 and "bptt minGRU+record" in table.output and "FLOP bound" in table.output
    data = json.loads(CliRunner().invoke(bench_cli.command, ["--scan-cells", "--json"]).output)
    assert data["shape"] == {"input_size": 2, "batch": 3, "hidden": 4, "seq_len": 6}
    assert {row["variant"] for row in data["rows"]} >= {"bptt minGRU+record", "bptt LRU+record (1 block)"}
