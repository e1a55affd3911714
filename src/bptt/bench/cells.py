"""``bptt bench --scan-cells``: the scan cells (minGRU, minLSTM, LRU) against bptt's GRU, recording on.

At the adding task's shape (I = 2, B = 32, H = 128, T = 5000), every variant trains one step
(forward + backward of one layer, loss mean(output)) inside ``bptt.record_gradients``, as a
user recording dL/dh_t would; the variants run interleaved in one process, round after round,
and each round gives every variant its ratio time(GRU) / time(variant) against the GRU of the
same round, so a machine that slows down for a while slows both sides of a ratio alike. A row
gives the median ratio and its spread (the lowest and highest round).

Each row also gives its FLOP bound: the ratio that the matrix products alone would allow,
multiply-adds per step and sequence of the GRU over the variant's (forward; the backward
scales both alike):

- GRU: 3H (H + I) (its recurrent product is one small matrix product per step);
- minGRU, minLSTM: G H I (G = 2, 3), the input projection alone: no recurrent product, so the
  bound is far above what the elementwise recurrence allows, and says nothing;
- LRU (one block, state N): I H (the encoder) + 2 N H (B, real and imaginary) + 2 N H (Re(C x))
  + 2 H^2 (the GLU), every one a product over all T steps at once.

minGRU and minLSTM run what "auto" picks on a CPU, their compiled loops ("compiled", where they
build). Three more rows show what those are measured against: the same minGRU on the Python
loops ("fast"), on the parallel scan ("scan", ceil(log2 T) doubling rounds, for a GPU), and
the paper's log-space scan (Heinsen's ``logcumsumexp`` form, as ``minGRU-pytorch`` runs it,
autograd, no record).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

import bptt
from bptt.engine.scan import log_space_scan
from bptt.modules.base import RecurrentBase
from bptt.modules.lru import LRU
from bptt.modules.minrnn import MinGRU, MinLSTM

#: (I, B, H, T): the adding task's input at the issue's bench shape.
SHAPE = (2, 32, 128, 5000)
QUICK_SHAPE = (2, 32, 128, 500)
BASELINE = "bptt GRU+record"


class LogSpaceMinGRU(nn.Module):
    """The minGRU paper's parallel form (its appendix B.3, as ``minGRU-pytorch``): the gates in log
    space, then h = exp(log_space_scan); autograd differentiates it, and nothing is recorded."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.linear = nn.Linear(input_size, 2 * hidden_size)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        p_h, p_z = self.linear(x).chunk(2, dim=-1)
        log_h = torch.where(p_h >= 0, torch.log(F.relu(p_h) + 0.5), -F.softplus(-p_h))  # log g
        out = log_space_scan(-F.softplus(p_z), -F.softplus(-p_z) + log_h)
        return out, out[-1]


def flop_bound(name: str, input_size: int, hidden: int, state: int | None = None) -> float:
    """Multiply-adds per step and sequence of bptt's GRU over those of variant ``name`` (see the module docstring)."""
    I, H, N = input_size, hidden, state or hidden
    gru = 3 * H * (H + I)
    if "LRU" in name:
        return gru / (I * H + 4 * N * H + 2 * H * H)
    if "minLSTM" in name:
        return gru / (3 * H * I)
    if "minGRU" in name:
        return gru / (2 * H * I)
    return 1.0


def variants(input_size: int, hidden: int, device: str = "cpu") -> dict[str, tuple[nn.Module, bool]]:
    """name -> (module, records): every row's layer, the GRU first."""
    make = {"device": device}
    return {
        BASELINE: (bptt.GRU(input_size, hidden, **make), True),
        "bptt minGRU+record": (MinGRU(input_size, hidden, **make), True),
        "bptt minLSTM+record": (MinLSTM(input_size, hidden, **make), True),
        "bptt LRU+record (1 block)": (LRU(input_size, hidden, num_layers=1, **make), True),
        "bptt minGRU fast+record": (MinGRU(input_size, hidden, engine="fast", **make), True),
        "bptt minGRU scan+record": (MinGRU(input_size, hidden, engine="scan", **make), True),
        "minGRU log-space scan (paper, autograd)": (LogSpaceMinGRU(input_size, hidden).to(device), False),
    }


@dataclass(frozen=True)
class CellRow:
    """One variant against bptt's GRU: its median time, the median ratio and the rounds' spread."""

    variant: str
    engine: str
    seconds: float
    ratio: float
    lowest: float
    highest: float
    flop_bound: float


@dataclass
class CellBench:
    rows: list[CellRow] = field(default_factory=list)
    shape: tuple[int, int, int, int] = SHAPE
    rounds: int = 0
    threads: int = 0
    device: str = "cpu"
    baseline_seconds: float = 0.0

    def to_dict(self) -> dict:
        return {
            "shape": dict(zip(("input_size", "batch", "hidden", "seq_len"), self.shape)),
            "rounds": self.rounds,
            "threads": self.threads,
            "device": self.device,
            "baseline": BASELINE,
            "baseline_seconds": self.baseline_seconds,
            "rows": [asdict(r) for r in self.rows],
        }


def _train_step(module: nn.Module, records: bool, x: torch.Tensor, device: str) -> str:
    for p in module.parameters():
        p.grad = None

    def step() -> None:
        output, _ = module(x)
        loss = output.mean()
        loss.backward()

    if device.startswith("cuda"):
        torch.cuda.synchronize()
    if records:
        with bptt.record_gradients(module):
            step()
    else:
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return module.last_engine if isinstance(module, RecurrentBase) else "autograd"


def measure(
    shape: tuple[int, int, int, int] = SHAPE,
    rounds: int = 5,
    device: str = "cpu",
    only: tuple[str, ...] | None = None,
    progress: Callable[[str], None] | None = None,
) -> CellBench:
    """Every row at ``shape`` (I, B, H, T), ``rounds`` interleaved rounds after one warm-up round."""
    I, B, H, T = shape
    torch.manual_seed(0)
    table = {n: v for n, v in variants(I, H, device).items() if only is None or n == BASELINE or n in only}
    x = torch.rand(T, B, I, generator=torch.Generator().manual_seed(0)).to(device)
    times: dict[str, list[float]] = {name: [] for name in table}
    engines: dict[str, str] = {}
    for round_ in range(rounds + 1):
        for name, (module, records) in table.items():
            start = time.perf_counter()
            engines[name] = _train_step(module, records, x, device)
            if round_:  # the first round is a warm-up
                times[name].append(time.perf_counter() - start)
        if progress is not None:
            progress(f"I={I} B={B} H={H} T={T}: round {round_}/{rounds}")
    result = CellBench(shape=shape, rounds=rounds, threads=torch.get_num_threads(), device=device)
    result.baseline_seconds = statistics.median(times[BASELINE])
    for name in table:
        if name == BASELINE:
            continue
        ratios = [base / mine for base, mine in zip(times[BASELINE], times[name])]
        result.rows.append(
            CellRow(
                name,
                engines[name],
                statistics.median(times[name]),
                statistics.median(ratios),
                min(ratios),
                max(ratios),
                flop_bound(name, I, H),
            )
        )
    return result
