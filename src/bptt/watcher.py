"""The gradient profile inside anyone's training loop: ``bptt.watch(model, every=100)``.

One line after the model is built::

    watch = bptt.watch(model, every=100, to=writer)   # writer: a TensorBoard SummaryWriter, "mlflow", ...
    for x, y in data:                                  # the user's own loop, unchanged
        loss = criterion(model(x), y)
        optimizer.zero_grad(); loss.backward(); optimizer.step()

The torch.nn recurrent layers of ``model`` become bptt's (``bptt.convert``, same
weights and outputs). On every ``every``-th training forward of each recurrent
layer (a forward in training mode with gradients on), the backward that
follows is recorded: per layer and direction, the batch-mean ||dL/dh_t|| by
lag, the memory horizon, the ratio g[lag] / g[0] at chosen lags, the share of
the W_hh update from the last ``recent`` steps, and the total gradient norm of
the model's parameters (before any clipping the loop does). A record is
complete once its backward has run; it is taken at the layer's next training
forward, or at ``flush()`` / ``close()``. Steps that are not recorded cost one
hook call.
"""

from __future__ import annotations

import html
import math
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from matplotlib.figure import Figure
from torch import nn

from bptt.checks import positive_int
from bptt.diagnostics.profile import DEFAULT_EPSILON, memory_horizon
from bptt.engine.recording import RECORD_ATTRIBUTE, GradientRecord
from bptt.lazy import load
from bptt.modules.base import RecurrentBase
from bptt.modules.convert import convert
from bptt.plotting.html import figure_svg

DEFAULT_LAGS = (10, 50)
DEFAULT_RECENT = 10


@dataclass(frozen=True, eq=False)
class WatchRecord:
    """One recorded backward of one recurrent layer.

    step: the layer's training forward this backward followed (1-based).
    layer: the layer's name in the model (``model.named_modules()``), "" for the model itself.
    profile: (num_layers, T) batch-mean ||dL/dh_t||_2 by lag, forward direction (``GradientProfile``'s convention).
    reverse: the same for the reverse direction of a bidirectional layer (lag k = step k), else None.
    horizon: memory horizon per layer (forward direction) at ``epsilon``; horizon_reverse likewise.
    ratios: lag -> g[top layer, lag] / g[top layer, 0] (NaN when g[0] is 0), for the lags the sequence
        reaches (a lag at or past T is left out, with a warning, rather than measured at T - 1).
    update_share: per layer, sum of ||delta_t^T h_{t-1}||_F over the last ``recent`` steps / over all steps.
    grad_norm: ||g||_2 over every parameter gradient of the watched model, None if none was seen.
    """

    step: int
    layer: str
    profile: torch.Tensor
    reverse: torch.Tensor | None
    horizon: list[int]
    horizon_reverse: list[int] | None
    ratios: dict[int, float]
    update_share: list[float]
    grad_norm: float | None
    recent: int
    epsilon: float

    def scalars(self) -> dict[str, float]:
        """Flat names for a logger: ``bptt/<layer>/horizon_l0``, ``bptt/<layer>/ratio_lag50``, ..."""
        prefix = f"bptt/{self.layer or 'model'}"
        values: dict[str, float] = {}
        for layer, horizon in enumerate(self.horizon):
            values[f"{prefix}/horizon_l{layer}"] = float(horizon)
            values[f"{prefix}/update_share_last{self.recent}_l{layer}"] = self.update_share[layer]
        for layer, horizon in enumerate(self.horizon_reverse or []):
            values[f"{prefix}/horizon_reverse_l{layer}"] = float(horizon)
        for lag, ratio in self.ratios.items():
            values[f"{prefix}/ratio_lag{lag}"] = ratio
        if self.grad_norm is not None:
            values["bptt/grad_norm"] = self.grad_norm
        return values

    def figure(self) -> Figure:
        """The profile of every layer (and direction) against lag, log scale, laid out to fit its own
        canvas: TensorBoard draws it as it is, so its legend and labels must lie inside the figure."""
        fig = Figure(figsize=(6.5, 3.6), layout="constrained")
        ax = fig.subplots()
        for layer in range(self.profile.shape[0]):
            _semilogy(ax, self.profile[layer], f"layer {layer}")
            if self.reverse is not None:
                _semilogy(ax, self.reverse[layer], f"layer {layer}, reverse", "--")
        ax.set_xlabel("lag k (steps back from the loss; reverse: from the first step)")
        ax.set_ylabel("batch-mean ||dL/dh_t||")
        ax.set_title(f"{self.layer or 'model'}: gradient profile at step {self.step}", fontsize=10)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, frameon=False)
        return fig


def _semilogy(ax: Any, values: torch.Tensor, label: str, style: str = "-") -> None:
    positive = [float(v) if math.isfinite(float(v)) and float(v) > 0 else math.nan for v in values]
    ax.semilogy(range(len(positive)), positive, style, label=label)


Sink = Callable[[WatchRecord], None]


def sink_for(target: Any) -> Sink:
    """A logging target as a callable taking each record: a TensorBoard ``SummaryWriter`` (anything with
    ``add_scalar`` and ``add_figure``), "mlflow" (the active MLflow run), or a callable. The sinks of
    ``bptt.integrations`` load here, when asked for."""
    if isinstance(target, str):
        if target == "mlflow":
            return load("bptt.integrations.mlflow", "MLflowSink")()
        raise ValueError(f"unknown logging target {target!r}; allowed: 'mlflow', a SummaryWriter, or a callable")
    if hasattr(target, "add_scalar") and hasattr(target, "add_figure"):
        return load("bptt.integrations.tensorboard", "TensorBoardSink")(target)
    if callable(target):
        return target
    raise TypeError(f"cannot log to a {type(target).__name__}: give a SummaryWriter, 'mlflow' or a callable")


@dataclass
class _Pending:
    step: int
    record: GradientRecord
    squares: list[float] = field(default_factory=lambda: [0.0])
    seen: list[bool] = field(default_factory=lambda: [False])
    handles: list[Any] = field(default_factory=list)


class Watch:
    """Records the gradient profile on every ``every``-th backward (see the module docstring)."""

    def __init__(
        self,
        model: nn.Module,
        every: int = 100,
        *,
        lags: Iterable[int] = DEFAULT_LAGS,
        recent: int = DEFAULT_RECENT,
        epsilon: float = DEFAULT_EPSILON,
        to: Any = (),
        **options: Any,
    ) -> None:
        positive_int("every", every)
        if not 0 < epsilon < 1:
            raise ValueError(f"epsilon must lie in (0, 1), got {epsilon!r}")
        self.model = convert(model, **options)
        self.every, self.lags, self.recent, self.epsilon = every, tuple(lags), recent, epsilon
        self.layers = {name: m for name, m in self.model.named_modules() if isinstance(m, RecurrentBase)}
        if not self.layers:
            raise TypeError(
                f"bptt.watch needs a recurrent layer (torch.nn or bptt RNN, LSTM, GRU) in "
                f"{type(model).__name__}; found none"
            )
        targets = to if isinstance(to, (list, tuple)) else [to]
        self.sinks = [sink_for(t) for t in targets]
        self.records: list[WatchRecord] = []
        self._counts = dict.fromkeys(self.layers, 0)
        self._beyond: set[int] = set()  # lags past a recorded sequence's end, already warned about
        self._pending: dict[str, _Pending] = {}
        self._handles = [m.register_forward_pre_hook(self._before_forward(name)) for name, m in self.layers.items()]

    # -- the hooks -----------------------------------------------------------------------------
    def _before_forward(self, name: str) -> Callable[..., None]:
        def hook(module: nn.Module, args: tuple) -> None:
            if not (module.training and torch.is_grad_enabled()):
                return
            self._finish(name)
            self._counts[name] += 1
            if self._counts[name] % self.every == 0:
                self._open(name, self.layers[name])

        return hook

    def _open(self, name: str, module: RecurrentBase) -> None:
        record = GradientRecord(num_layers=module.num_layers, num_directions=module.num_directions, updates=True)
        object.__setattr__(module, RECORD_ATTRIBUTE, record)
        pending = _Pending(self._counts[name], record)
        if name == next(iter(self.layers)):  # the model's gradient norm, once per step
            for p in self.model.parameters():
                if p.requires_grad:
                    pending.handles.append(p.register_post_accumulate_grad_hook(self._square_into(pending)))
        self._pending[name] = pending

    @staticmethod
    def _square_into(pending: _Pending) -> Callable[[torch.Tensor], None]:
        def hook(param: torch.Tensor) -> None:
            if param.grad is not None:
                pending.squares[0] += float(torch.linalg.vector_norm(param.grad.detach(), dtype=torch.float64)) ** 2
                pending.seen[0] = True

        return hook

    def _finish(self, name: str) -> None:
        pending = self._pending.pop(name, None)
        if pending is None:
            return
        module = self.layers[name]
        if getattr(module, RECORD_ATTRIBUTE, None) is pending.record:
            object.__setattr__(module, RECORD_ATTRIBUTE, None)
        for handle in pending.handles:
            handle.remove()
        if pending.record.hidden is None:  # no backward ran through the layer
            return
        record = self._summarise(name, pending)
        self.records.append(record)
        for sink in self.sinks:
            sink(record)

    def _summarise(self, name: str, pending: _Pending) -> WatchRecord:
        rec = pending.record
        hidden, backward = rec.by_lag("hidden"), rec.by_lag("hidden", 1) if rec.num_directions == 2 else None
        assert hidden is not None  # _finish summarises a record only once its backward ran
        profile = hidden.detach().double().cpu()
        reverse = None if backward is None else backward.detach().double().cpu()
        top = profile[-1]
        first = float(top[0])
        # A lag the sequence does not reach is not measured (and said once): lag 50 of 40 steps would be lag 39.
        beyond = [lag for lag in self.lags if lag >= len(top) and lag not in self._beyond]
        if beyond:
            self._beyond.update(beyond)
            shown = ", ".join(f"ratio_lag{lag}" for lag in beyond)
            warnings.warn(
                f"bptt.watch: a {len(top)}-step sequence reaches lag {len(top) - 1} at most; {shown} not logged",
                stacklevel=2,
            )
        ratios = {lag: (float(top[lag]) / first if first > 0 else math.nan) for lag in self.lags if lag < len(top)}
        terms = rec.update_terms()
        shares = []
        for layer in range(profile.shape[0]):
            row = None if terms is None else terms[layer].detach().double().cpu()
            total = 0.0 if row is None else float(row.sum())
            recent = 0.0 if row is None else float(row[-self.recent :].sum())
            shares.append(recent / total if total > 0 else math.nan)
        grad_norm = math.sqrt(pending.squares[0]) if pending.seen[0] else None
        horizon = lambda table: [memory_horizon(row, self.epsilon) for row in table]  # noqa: E731
        return WatchRecord(
            pending.step,
            name,
            profile,
            reverse,
            horizon(profile),
            None if reverse is None else horizon(reverse),
            ratios,
            shares,
            grad_norm,
            self.recent,
            self.epsilon,
        )

    # -- the user's side -----------------------------------------------------------------------
    def flush(self) -> list[WatchRecord]:
        """Take every record whose backward has run (each layer's latest one); return all records."""
        for name in list(self._pending):
            self._finish(name)
        return self.records

    def close(self) -> list[WatchRecord]:
        """Flush, then remove the hooks (the layers stay bptt's). Returns all records."""
        self.flush()
        for handle in self._handles:
            handle.remove()
        self._handles = []
        return self.records

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def frame(self) -> Any:
        """The records as a pandas DataFrame: one row per record, a column per scalar."""
        try:
            import pandas  # optional: only this method needs it
        except ImportError:
            raise ImportError("Watch.frame needs pandas: pip install pandas") from None
        return pandas.DataFrame([{"step": r.step, "layer": r.layer, **r.scalars()} for r in self.records])

    def figure(self) -> Figure | None:
        """The latest record's profile (None before the first record)."""
        self.flush()
        return self.records[-1].figure() if self.records else None

    def _repr_html_(self) -> str:
        fig = self.figure()
        if fig is None:
            return f"<p>bptt.watch: no record yet (every {self.every} training steps)</p>"
        rows = "".join(
            f"<tr><td>{html.escape(k)}</td><td>{v:.4g}</td></tr>" for k, v in self.records[-1].scalars().items()
        )
        return f"<div>{figure_svg(fig)}<table>{rows}</table></div>"


def watch(model: nn.Module, every: int = 100, **kwargs: Any) -> Watch:
    """Record the per-step gradient profile of ``model``'s recurrent layers on every ``every``-th backward
    of the caller's own training loop (see ``bptt.watch`` module docstring and ``Watch``)."""
    return Watch(model, every, **kwargs)
