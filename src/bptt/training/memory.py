"""The memory a run needs, estimated from its sizes before anything is built, and checked against what is free.

A run that cannot fit here is refused in a moment with one line giving the
estimate, before its model, data or database row exist, rather than failing in
the allocator minutes later. The estimate counts float32 tensors (4 bytes):

- weights, gradients and optimizer state: P (1 + 1 + s) with P the parameter
  count (the recurrent stack's counted by building it on the meta device, which allocates
  nothing) and s the optimizer's state per parameter (Adam 2, RMSprop 1 or 2, SGD 0 or 1);
- a training batch's stored activations: L T B H m, with m the floats per unit and step the
  cell keeps for its backward (its registry entry's ``stored_per_step``: g + 3 for a cell of g
  gate blocks, RNN 4, GRU 6, LSTM 7, IndRNN 4, ...);
- the data: the fixed validation and test sets and a training batch;
- an evaluation chunk (``EVAL_CHUNK`` examples, no gradients, one layer at a time): T C H (m - 1).

It is a lower bound of what the run allocates, so a run it refuses could not
have finished; typical runs need a small fraction of a laptop's memory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from bptt.config import RunConfig
from bptt.models import build_recurrent
from bptt.modules.cells import CELLS
from bptt.tasks import Task
from bptt.training.evaluation import EVAL_CHUNK

OPTIMIZER_STATE = {"adam": 2, "rmsprop": 1, "sgd": 0}
FLOAT_BYTES, TOKEN_BYTES = 4, 8
GIB = 2**30


class MemoryLimitError(ValueError):
    """A run whose estimated memory exceeds what is free: one line with the estimate."""


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes a run needs, by what needs them (see the module docstring)."""

    parameters: int  # a count, not bytes
    training_state: int
    activations: int
    data: int
    evaluation: int
    device: str

    @property
    def on_device(self) -> int:
        """Bytes on the run's device: the model, its training state and the activations."""
        return self.training_state + self.activations + self.evaluation

    @property
    def total(self) -> int:
        return self.on_device + self.data


def _time_steps(task: Task) -> int:
    steps = getattr(task, "num_steps", None) or task.seq_len
    if task.describe().get("variant") == "hochreiter":
        steps += steps // 10  # lengths reach 1.1 T
    return int(steps)


def _eval_examples(config: RunConfig, task: Task) -> int:
    sizes = task.describe().get("split_sizes")
    return int(sizes["val"] + sizes["test"]) if sizes else 2 * config.eval_size


def count_parameters(config: RunConfig, task: Task) -> int:
    """The number of parameters the model of ``config`` has on ``task``, from the sizes alone."""
    hidden = config.hidden_size
    count = 0
    layer_input = task.input_size
    if task.input_kind == "tokens":
        count += task.input_size * config.embedding_size
        layer_input = config.embedding_size
    recurrent = build_recurrent(config, layer_input, t_max=2, device="meta")  # nothing allocated, nothing drawn
    count += sum(p.numel() for p in recurrent.parameters())
    if config.readout == "attention":
        count += hidden * hidden + 2 * hidden
    return count + hidden * task.output_size + task.output_size


def estimate_memory(config: RunConfig, task: Task) -> MemoryEstimate:
    """What a run of ``config`` on ``task`` needs, computed from the sizes (nothing is allocated)."""
    steps, batch, hidden, layers = _time_steps(task), config.batch_size, config.hidden_size, config.num_layers
    stored = CELLS.get(config.cell).stored_per_step
    parameters = count_parameters(config, task)
    state = OPTIMIZER_STATE[config.optimizer] + (1 if config.momentum and config.optimizer != "adam" else 0)
    per_step = TOKEN_BYTES if task.input_kind == "tokens" else task.input_size * FLOAT_BYTES
    targets = steps * TOKEN_BYTES if task.kind == "per_step" else FLOAT_BYTES
    examples = _eval_examples(config, task)
    chunk = min(EVAL_CHUNK, max(1, examples // 2))
    return MemoryEstimate(
        parameters=parameters,
        training_state=parameters * (2 + state) * FLOAT_BYTES,
        activations=layers * steps * batch * hidden * stored * FLOAT_BYTES + steps * batch * per_step,
        data=(examples + batch) * (steps * per_step + targets),
        evaluation=steps * chunk * hidden * (stored - 1) * FLOAT_BYTES,
        device=config.device,
    )


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return None


def _cgroup_available() -> int | None:
    """What a cgroup v2 memory limit leaves (in a container the machine's free memory may not be ours)."""
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text().strip())
    except (OSError, ValueError):
        return None
    return None if limit == "max" else max(0, int(limit) - used)


def available_memory(device: str = "cpu") -> int | None:
    """Bytes free for a run on ``device`` now (host memory for cpu), or None where it cannot be told."""
    kind = torch.device(device).type
    if kind == "cuda":
        return int(torch.cuda.mem_get_info(torch.device(device))[0])
    if kind != "cpu":
        return None
    found = [value for value in (_meminfo_available(), _cgroup_available()) if value is not None]
    return min(found) if found else None


def _gib(size: int) -> str:
    return f"{size / GIB:.3g} GiB" if size >= GIB / 100 else f"{size / 2**20:.3g} MiB"


def check_memory(config: RunConfig, task: Task) -> MemoryEstimate:
    """The run's estimate; a ``MemoryLimitError`` with the estimate when it exceeds the memory available."""
    estimate = estimate_memory(config, task)
    host = available_memory("cpu")
    if torch.device(config.device).type == "cuda":
        free = available_memory(config.device)
        needs = [
            (estimate.on_device, free, f"free on {config.device}"),
            (estimate.data, host, "available in host memory"),
        ]
    else:
        needs = [(estimate.total, host, "available here")]
    for needed, free, where in needs:
        if free is not None and needed > free:
            parts = {
                "weights, gradients and optimizer state": estimate.training_state,
                "the activations of a training batch": estimate.activations,
                "the fixed evaluation sets and a batch": estimate.data,
                "an evaluation chunk": estimate.evaluation,
            }
            largest = max(parts, key=parts.__getitem__)
            raise MemoryLimitError(
                f"memory: this run needs about {_gib(needed)} ({largest}: {_gib(parts[largest])}) but "
                f"{_gib(free)} is {where}; lower seq_len, batch_size, hidden_size, num_layers or eval_size"
            )
    return estimate
