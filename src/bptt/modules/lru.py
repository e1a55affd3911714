r"""The Linear Recurrent Unit of Orvieto, Smith, Gu, Fernando, Gulcehre, Pascanu & De (ICML 2023)."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from bptt.engine.lru import eigenvalues, lru_layer
from bptt.engine.recording import LayerRecorders
from bptt.modules.base import RecurrentBase

#: The ring's defaults: |lambda| in [R_MIN, R_MAX], phases in [0, MAX_PHASE] (the paper's long-range values).
R_MIN, R_MAX, MAX_PHASE = 0.9, 0.999, math.pi / 10
#: Named ring settings (the registry's presets; one named as a task is used for it). adding: |lambda| in
#: [0.99, 0.9999]: on adding T = 100 (2 blocks of 64, lr 3e-3) the default ring stayed at the memoryless
#: baseline for 1500 steps, this one solved it in 1000 (test MSE 0.0036); the sum the task asks for
#: weighs a value the same at any distance, which |lambda| near 1 does from the start.
LRU_PRESETS = {"adding": {"r_min": 0.99, "r_max": 0.9999}}
#: The learning-rate factor of the recurrence's parameters (the minimal-LRU code's ``lr_factor``).
LR_FACTOR = 0.5
#: Which LRU method each engine name runs (``bptt.engine.lru``).
METHOD_OF_ENGINE = {"fast": "sequential", "scan": "parallel", "reference": "reference"}


class LRU(RecurrentBase):
    r"""A deep LRU (Orvieto et al. 2023): ``num_layers`` blocks, each a layer norm, the Linear Recurrent
    Unit, GELU, a GLU and a skip connection, on a stream of ``hidden_size`` features:

    .. math::
        u_t = \mathrm{LN}(r_t),\quad x_t = \lambda \odot x_{t-1} + \gamma \odot (B u_t),\quad
        y_t = \mathrm{Re}(C x_t) + D \odot u_t,\\
        r'_t = r_t + (W_1 y'_t + b_1) \odot \sigma(W_2 y'_t + b_2),\quad y'_t = \mathrm{GELU}(y_t)

    with the complex diagonal state x_t (``state_size`` N values), lambda = exp(-exp(nu) + i exp(theta))
    (|lambda| < 1 for any nu), gamma = exp(gamma_log), B = B_re + i B_im (N, H),
    C = C_re + i C_im (H, N) and D (H,). A block whose input is not H wide (the first: the input's
    I features) starts with a linear map to H (the paper's encoder), r_t = x W_in^T + b_in. The
    GLU between blocks is what lets the stack compute products across channels (the adding task's
    value times marker), which no linear recurrence can.

    The recurrence is linear and diagonal: dx_t/dx_{t-1} = diag(lambda), the same at every step and
    for every input, so dL/dx over k steps shrinks exactly as |lambda_n|^k per state value.

    Args:
        input_size, hidden_size, num_layers (default 2), bias, batch_first, dropout, bidirectional: as
            torch.nn.RNN; ``bias=False`` drops the encoder's, the norm's and the GLU's biases.
        state_size: N, the complex state's size (default ``hidden_size``).
        r_min, r_max, max_phase: the ring init: |lambda| uniform on the ring r_min <= |z| <= r_max
            (by area), phase uniform in [0, max_phase]. Defaults 0.9, 0.999, pi/10: the paper's
            choices for its long-range tasks (a small phase range and |lambda| near 1).
        lr_factor: ``parameter_groups`` trains nu, theta, gamma and B at this factor times the run's
            learning rate (0.5, the minimal-LRU code's; the Trainer builds its optimiser from it).
        engine: "auto" ("fast" on a CPU, "scan" on a GPU), "fast" (the recurrence step by step, with
            its reverse pass recording dL/dx_t), "scan" (ceil(log2 T) parallel rounds) or "reference".
        truncate, generator, device, dtype: as every bptt layer. ``residual`` is refused: every block
            has its skip connection already.

    Init (the paper's): nu, theta from the ring; gamma_log = log sqrt(1 - |lambda|^2), the
    normalisation that keeps E|x_t|^2 = E|B u_t|^2 for white input however close |lambda| is to 1;
    B_re, B_im ~ N(0, 1/(2H)); C_re, C_im ~ N(0, 1/N); D ~ N(0, 1); the GLU's weights ~ N(0, 1/H)
    (flax Dense's lecun normal, untruncated) and biases 0; the encoder as torch.nn.Linear; the
    norm's weights 1 and biases 0.

    Parameters, per block ``l{k}`` (and ``_reverse``): ``weight_in``, ``bias_in`` (where the input is
    not H wide), ``norm_weight``, ``norm_bias``, ``nu_log``, ``theta_log``, ``gamma_log`` (N,),
    ``weight_b_re``, ``weight_b_im`` (N, H), ``weight_c_re``, ``weight_c_im`` (H, N), ``weight_d``
    (H,), ``weight_glu`` (2H, H) and ``bias_glu`` (2H,) ([W_1; W_2]).
    State: x, complex, (D * num_layers, B, N); the output is the stream r (T, B, H), not x.
    Source: Orvieto et al., "Resurrecting Recurrent Neural Networks for Long Sequences", ICML 2023.
    """

    MODE = "LRU"
    STATE_NAMES = ("x",)
    OUTPUT_IS_STATE = False
    DIAGONAL = True
    FIXED_DIAGONAL = True  # lambda is the whole step Jacobian, whatever the input
    COMPLEX_STATE = True
    DIAGONAL_WORDS = ("lambda", "every state value")
    ENGINE_CHOICES = ("auto", "fast", "scan", "reference")
    #: "auto": step by step on a CPU; on a GPU, the parallel scan (log2 T launches, not T).
    GPU_ENGINE = "scan"

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 2,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        *,
        state_size: int | None = None,
        r_min: float = R_MIN,
        r_max: float = R_MAX,
        max_phase: float = MAX_PHASE,
        lr_factor: float = LR_FACTOR,
        **common: Any,
    ) -> None:
        if common.get("residual"):
            raise ValueError("residual: every LRU block has its own skip connection; leave residual off")
        state_size = hidden_size if state_size is None else state_size
        if not isinstance(state_size, int) or isinstance(state_size, bool) or state_size < 1:
            raise ValueError(f"state_size must be a positive integer, got {state_size!r}")
        for name, value in (("r_min", r_min), ("r_max", r_max), ("max_phase", max_phase), ("lr_factor", lr_factor)):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
        if not 0 <= r_min <= r_max < 1:
            raise ValueError(f"the ring needs 0 <= r_min <= r_max < 1, got r_min={r_min!r}, r_max={r_max!r}")
        if not max_phase > 0 or not lr_factor > 0:
            name, value = ("max_phase", max_phase) if not max_phase > 0 else ("lr_factor", lr_factor)
            raise ValueError(f"{name} must be above 0, got {value!r}")
        self.state_size = state_size
        self.r_min, self.r_max, self.max_phase = float(r_min), float(r_max), float(max_phase)
        self.lr_factor = float(lr_factor)
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, **common)

    # -- parameters ------------------------------------------------------------------------
    def _parameter_shapes(self, layer: int, layer_input: int) -> list[tuple[str, tuple[int, ...]]]:
        H, N = self.hidden_size, self.state_size
        shapes: list[tuple[str, tuple[int, ...]]] = []
        if layer_input != H:
            shapes += [("weight_in", (H, layer_input))] + ([("bias_in", (H,))] if self.bias else [])
        shapes += [("norm_weight", (H,))] + ([("norm_bias", (H,))] if self.bias else [])
        shapes += [("nu_log", (N,)), ("theta_log", (N,)), ("gamma_log", (N,))]
        shapes += [("weight_b_re", (N, H)), ("weight_b_im", (N, H)), ("weight_c_re", (H, N)), ("weight_c_im", (H, N))]
        shapes += [("weight_d", (H,)), ("weight_glu", (2 * H, H))] + ([("bias_glu", (2 * H,))] if self.bias else [])
        return shapes

    def recurrence_parameters(
        self, layer: int, direction: int = 0
    ) -> tuple[
        torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor
    ]:
        """(nu_log, theta_log, gamma_log, B_re, B_im, C_re, C_im, D) of one block: ``bptt.engine.lru``'s order."""
        get = lambda stem: self._param(stem, layer, direction)  # noqa: E731
        return (
            get("nu_log"),
            get("theta_log"),
            get("gamma_log"),
            get("weight_b_re"),
            get("weight_b_im"),
            get("weight_c_re"),
            get("weight_c_im"),
            get("weight_d"),
        )

    def input_weight(self, layer: int, direction: int = 0) -> torch.Tensor:
        """The weight that reads the block's input: the encoder where there is one, else B's real part."""
        found = self._optional("weight_in", layer, direction)
        return found if found is not None else self._param("weight_b_re", layer, direction)

    def recurrent_weight(self, layer: int, direction: int = 0) -> torch.Tensor:
        """nu_log: it sets |lambda| = exp(-exp(nu_log)), how much of x_{t-1} each step keeps."""
        return self._param("nu_log", layer, direction)

    @property
    def projection_width(self) -> int:
        """N: a step watch is shown gamma B u_t, N complex values (``bptt.engine.lru``)."""
        return self.state_size

    def recurrent_matrix(self, layer: int, direction: int = 0) -> torch.Tensor:
        """|lambda| (N,): the magnitudes of the diagonal that multiplies x_{t-1} (its singular values)."""
        nu_log, theta_log = self.recurrence_parameters(layer, direction)[:2]
        return eigenvalues(nu_log, theta_log).abs()

    def parameter_groups(self) -> list[tuple[list[torch.nn.Parameter], float]]:
        """nu_log, theta_log, gamma_log, B_re and B_im at ``lr_factor`` times the run's rate (the
        minimal-LRU code trains them at half its rate)."""
        stems = ("nu_log", "theta_log", "gamma_log", "weight_b_re", "weight_b_im")
        members = [
            self.get_parameter(self._name(stem, layer, direction))
            for layer in range(self.num_layers)
            for direction in range(self.num_directions)
            for stem in stems
        ]
        return [] if self.lr_factor == 1 else [(members, self.lr_factor)]

    @torch.no_grad()
    def _initialise(self, generator: torch.Generator | None) -> None:
        H, N = self.hidden_size, self.state_size
        for layer in range(self.num_layers):
            for direction in range(self.num_directions):
                get = lambda stem: self._optional(stem, layer, direction)  # noqa: E731, B023
                weight_in = get("weight_in")
                if weight_in is not None:
                    scale = 1 / math.sqrt(weight_in.shape[1])
                    weight_in.uniform_(-scale, scale, generator=generator)
                    if get("bias_in") is not None:
                        get("bias_in").uniform_(-scale, scale, generator=generator)
                get("norm_weight").fill_(1.0)
                for stem in ("norm_bias", "bias_glu"):
                    if get(stem) is not None:
                        get(stem).zero_()
                ring(
                    get("nu_log"), get("theta_log"), get("gamma_log"), self.r_min, self.r_max, self.max_phase, generator
                )
                for stem, std in (("weight_b_re", 1 / math.sqrt(2 * H)), ("weight_b_im", 1 / math.sqrt(2 * H))):
                    get(stem).normal_(0, std, generator=generator)
                for stem in ("weight_c_re", "weight_c_im"):
                    get(stem).normal_(0, 1 / math.sqrt(N), generator=generator)
                get("weight_d").normal_(0, 1, generator=generator)
                get("weight_glu").normal_(0, 1 / math.sqrt(H), generator=generator)

    # -- states ----------------------------------------------------------------------------
    def _state_sizes(self) -> tuple[int, ...]:
        return (self.state_size,)

    def _zero_state(self, batch: int, like: torch.Tensor) -> torch.Tensor:
        dtype = (like.new_zeros(()) * 1j).dtype  # the complex dtype of the input's precision
        return like.new_zeros(self.num_layers * self.num_directions, batch, self.state_size, dtype=dtype)

    # -- running ---------------------------------------------------------------------------
    def _stream(self, layer: int, x: torch.Tensor, direction: int) -> torch.Tensor:
        """r (T, B, H): the block's input, mapped to H features where it is not H wide."""
        weight_in = self._optional("weight_in", layer, direction)
        return x if weight_in is None else F.linear(x, weight_in, self._optional("bias_in", layer, direction))

    def _normalised(self, layer: int, stream: torch.Tensor, direction: int) -> torch.Tensor:
        weight, bias = self._optional("norm_weight", layer, direction), self._optional("norm_bias", layer, direction)
        return F.layer_norm(stream, (self.hidden_size,), weight, bias)

    def _block(
        self, layer: int, direction: int, x: torch.Tensor, state: torch.Tensor, method: str, record: Any, watch: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        stream = self._stream(layer, x, direction)
        u = self._normalised(layer, stream, direction)
        y, x_last = lru_layer(u, state, *self.recurrence_parameters(layer, direction), record, method, watch=watch)
        gate = F.linear(
            F.gelu(y), self._param("weight_glu", layer, direction), self._optional("bias_glu", layer, direction)
        )
        value, opening = gate.chunk(2, dim=-1)
        return stream + value * torch.sigmoid(opening), x_last

    def step(self, layer: int, x: torch.Tensor, state: torch.Tensor, direction: int = 0) -> torch.Tensor:
        """One step of one block's recurrence from x_t (B, I) and x_{t-1} (B, N) complex: the next state."""
        u = self._normalised(layer, self._stream(layer, x, direction), direction)
        nu_log, theta_log, gamma_log, b_re, b_im = self.recurrence_parameters(layer, direction)[:5]
        driven = torch.complex(F.linear(u, b_re), F.linear(u, b_im)) * torch.exp(gamma_log)
        return eigenvalues(nu_log, theta_log) * state + driven

    def diagonal_jacobian(self, layer: int, x: torch.Tensor, direction: int = 0) -> torch.Tensor:
        """(T, B, N) dx_t/dx_{t-1} = lambda, complex, the same at every step and for every input."""
        nu_log, theta_log = self.recurrence_parameters(layer, direction)[:2]
        return eigenvalues(nu_log, theta_log).expand(x.shape[0], x.shape[1], -1)

    def _engine_call(
        self,
        engine: str,
        layer: int,
        direction: int,
        x: torch.Tensor,
        state: torch.Tensor,
        record: LayerRecorders | None,
        watch: Any = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self._block(layer, direction, x, state, METHOD_OF_ENGINE[engine], record, watch)

    def _repr_cell(self) -> str:
        s = "" if self.state_size == self.hidden_size else f", state_size={self.state_size}"
        for name, default in (("r_min", R_MIN), ("r_max", R_MAX), ("max_phase", MAX_PHASE), ("lr_factor", LR_FACTOR)):
            if getattr(self, name) != default:
                s += f", {name}={getattr(self, name):g}"
        return s


@torch.no_grad()
def ring(
    nu_log: torch.Tensor,
    theta_log: torch.Tensor,
    gamma_log: torch.Tensor,
    r_min: float,
    r_max: float,
    max_phase: float,
    generator: torch.Generator | None = None,
) -> None:
    """The paper's ring init, in place: |lambda|^2 uniform in [r_min^2, r_max^2] (so lambda is uniform
    by area on the ring), phase uniform in [0, max_phase], and gamma = sqrt(1 - |lambda|^2)."""
    # Drawn in (0, 1): a draw of exactly 0 would put an infinite value in nu_log or theta_log.
    tiny = torch.finfo(nu_log.dtype).tiny
    u1 = torch.rand(nu_log.shape, generator=generator, dtype=nu_log.dtype, device=nu_log.device).clamp_(min=tiny)
    u2 = torch.rand(theta_log.shape, generator=generator, dtype=theta_log.dtype, device=theta_log.device)
    u2.clamp_(min=tiny)
    nu_log.copy_(torch.log(-0.5 * torch.log(u1 * (r_max**2 - r_min**2) + r_min**2)))
    theta_log.copy_(torch.log(max_phase * u2))
    gamma_log.copy_(torch.log(torch.sqrt(1 - torch.exp(-2 * torch.exp(nu_log)))))
