r"""expRNN: an RNN whose recurrent matrix stays orthogonal (Lezcano-Casado & Martínez-Rubio 2019),
through torch's own ``torch.nn.utils.parametrizations.orthogonal``."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import orthogonal

from bptt.engine import ACTIVATIONS, ENGINES
from bptt.engine.cells import rnn_cell
from bptt.engine.recording import LayerRecorders
from bptt.modules.base import RecurrentBase

EXPRNN_ACTIVATIONS = ("modrelu", "tanh")
ORTHOGONAL_MAPS = ("matrix_exp", "cayley")
ORTHOGONAL_INITS = ("henaff", "cayley")


def skew_init(size: int, kind: str, generator: torch.Generator | None, like: torch.Tensor) -> torch.Tensor:
    """A (size, size) skew-symmetric A0 of 2x2 rotation blocks [[0, s], [-s, 0]] (the expRNN paper's inits):
    "henaff": s ~ U(-pi, pi) (Henaff et al. 2016, for copy); "cayley": s = -sqrt((1 - cos t) / (1 + cos t)),
    t ~ U(0, pi/2) (Helfrich et al. 2018, for MNIST). exp(A0) is then a block-diagonal rotation."""
    blocks = size // 2
    angles = torch.empty(blocks, dtype=torch.float64, device=like.device)
    if kind == "henaff":
        angles.uniform_(-math.pi, math.pi, generator=generator)
    else:
        t = angles.uniform_(0, math.pi / 2, generator=generator)
        angles = -torch.sqrt((1 - torch.cos(t)) / (1 + torch.cos(t)))
    skew = torch.zeros(size, size, dtype=torch.float64, device=like.device)
    index = torch.arange(blocks, device=like.device) * 2
    skew[index, index + 1] = angles
    return (skew - skew.t()).to(like.dtype)


class ExpRNN(RecurrentBase):
    r"""An Elman RNN whose W_hh is orthogonal throughout training:

    .. math:: h_t = \mathrm{act}(x_t W_{ih}^T + b + h_{t-1} W_{hh}^T),\quad W_{hh} = B \, \phi(A),\; A = -A^T

    with phi = exp (``orthogonal_map="matrix_exp"``, expRNN) or the Cayley map
    (``"cayley"``, scoRNN-style), through ``torch.nn.utils.parametrizations.orthogonal``. Every
    singular value of W_hh is 1, so all the contraction of dh_t/dh_{t-1} = diag(act'(a_t)) W_hh
    is the activation's.

    Dynamic trivialisation is on (``use_trivialization=True``): the published init is placed in
    the base B (an orthogonal exp(A0), A0 of 2x2 rotation blocks: ``orthogonal_init`` "henaff",
    Henaff et al.'s, for copy, or "cayley", Helfrich et al.'s, for MNIST) and the trained skew
    parameter A starts at 0, so W_hh starts exactly at the init. The base is not moved during
    training (the expRNN paper's experiments keep it). ``reset_parameters`` assigns a fresh init
    through the parametrization (a new base, A back to 0).

    The name differs from ``init="orthogonal"`` of the plain RNN on purpose: that draws an
    orthogonal W_hh at the start and lets training leave the orthogonal group; here W_hh never
    leaves it.

    Args:
        activation: "modrelu" (the default; sign(a) relu(|a| + b) with a learned per-unit bias b,
            ``modrelu_bias_l{k}``, starting at U(-0.01, 0.01)) or "tanh".
        orthogonal_map, orthogonal_init: as above.
        orthogonal_lr_scale: the skew parameter A trains at the run's learning rate times this (the
            paper trains it 10 times slower: 0.1), as its own optimiser group (``parameter_groups``).
        The rest as every bptt layer; one bias per layer (``bias_ih_l{k}``); W_ih starts as Kaiming
        normal (fan in), b at 0.

    State dict: ``weight_ih_l{k}``, ``bias_ih_l{k}``, ``modrelu_bias_l{k}``,
    ``parametrizations.weight_hh_l{k}.original`` (A, under torch's encoding) and ``....0.base`` (B).
    Source: Lezcano-Casado & Martínez-Rubio, "Cheap Orthogonal Constraints in Neural Networks",
    ICML 2019 (copy solved at T = 1000-2000; sMNIST 98.7, pMNIST 96.6).
    """

    MODE = "EXPRNN"
    ORTHOGONAL = True

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        *,
        activation: str = "modrelu",
        orthogonal_map: str = "matrix_exp",
        orthogonal_init: str = "henaff",
        orthogonal_lr_scale: float = 0.1,
        **common: Any,
    ) -> None:
        for name, value, allowed in (
            ("activation", activation, EXPRNN_ACTIVATIONS),
            ("orthogonal_map", orthogonal_map, ORTHOGONAL_MAPS),
            ("orthogonal_init", orthogonal_init, ORTHOGONAL_INITS),
        ):
            if value not in allowed:
                raise ValueError(f"unknown {name} {value!r}; allowed: {', '.join(allowed)}")
        if not orthogonal_lr_scale > 0:
            raise ValueError(f"orthogonal_lr_scale must be above 0, got {orthogonal_lr_scale!r}")
        self.activation = activation
        self.orthogonal_map = orthogonal_map
        self.orthogonal_init = orthogonal_init
        self.orthogonal_lr_scale = float(orthogonal_lr_scale)
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, **common)
        if not any(p.is_meta for p in self.parameters()):  # torch's parametrization checks values
            for layer in range(num_layers):
                for direction in range(self.num_directions):
                    name = self._name("weight_hh", layer, direction)
                    orthogonal(self, name, orthogonal_map=orthogonal_map, use_trivialization=True)

    def _parameter_shapes(self, layer: int, layer_input: int) -> list[tuple[str, tuple[int, ...]]]:
        H = self.hidden_size
        shapes: list[tuple[str, tuple[int, ...]]] = [("weight_ih", (H, layer_input)), ("weight_hh", (H, H))]
        shapes += [("bias_ih", (H,))] if self.bias else []
        return shapes + ([("modrelu_bias", (H,))] if self.activation == "modrelu" else [])

    def layer_parameters(
        self, layer: int, direction: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(weight_ih, the orthogonal weight_hh, bias_ih or None) of one layer and direction."""
        weight_ih, weight_hh = self._param("weight_ih", layer, direction), self._param("weight_hh", layer, direction)
        return weight_ih, weight_hh, self._optional("bias_ih", layer, direction)

    def slope(self, layer: int, direction: int = 0) -> torch.Tensor | None:
        """modReLU's per-unit bias b, or None for tanh."""
        return getattr(self, self._name("modrelu_bias", layer, direction), None)

    def _skew_parameters(self) -> list[nn.Parameter]:
        if not parametrize.is_parametrized(self):
            return []
        return [self.parametrizations[name].original for name in self.parametrizations]

    def recurrent_weight(self, layer: int, direction: int = 0) -> torch.Tensor:
        """The trained tensor behind W_hh: the skew parameter A (its gradient is the layer's dL/dW_hh)."""
        name = self._name("weight_hh", layer, direction)
        return self.parametrizations[name].original if parametrize.is_parametrized(self, name) else getattr(self, name)

    def recurrent_matrix(self, layer: int, direction: int = 0) -> torch.Tensor:
        return getattr(self, self._name("weight_hh", layer, direction))

    def parameter_groups(self) -> list[tuple[list[nn.Parameter], float]]:
        """The skew parameters at ``orthogonal_lr_scale`` times the run's rate."""
        skews = self._skew_parameters()
        return [(skews, self.orthogonal_lr_scale)] if skews else []

    @torch.no_grad()
    def _initialise(self, generator: torch.Generator | None) -> None:
        for layer in range(self.num_layers):
            for direction in range(self.num_directions):
                weight_ih, _, bias = self.layer_parameters(layer, direction)
                weight_ih.normal_(0, 1 / math.sqrt(weight_ih.shape[1]), generator=generator)
                if bias is not None:
                    bias.zero_()
                modrelu = self.slope(layer, direction)
                if modrelu is not None:
                    modrelu.uniform_(-0.01, 0.01, generator=generator)
                name = self._name("weight_hh", layer, direction)
                like = self.recurrent_weight(layer, direction)
                start = torch.linalg.matrix_exp(skew_init(self.hidden_size, self.orthogonal_init, generator, like))
                if parametrize.is_parametrized(self, name):
                    setattr(self, name, start)  # torch's right_inverse: base = start, A = 0
                else:
                    getattr(self, name).copy_(start)

    def step(self, layer: int, x: torch.Tensor, state: torch.Tensor, direction: int = 0) -> torch.Tensor:
        weight_ih, weight_hh, bias = self.layer_parameters(layer, direction)
        p = nn.functional.linear(x, weight_ih, bias)
        return rnn_cell(p, state @ weight_hh.t(), ACTIVATIONS.get(self.activation), self.slope(layer, direction))

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
        weight_ih, weight_hh, bias = self.layer_parameters(layer, direction)  # W_hh computed once per call
        extra = {} if watch is None else {"watch": watch}
        run = ENGINES.get(engine).rnn_layer
        return run(
            x, state, weight_ih, weight_hh, bias, None, self.activation, self.slope(layer, direction), record, **extra
        )

    def _repr_cell(self) -> str:
        s = "" if self.activation == "modrelu" else f", activation={self.activation!r}"
        s += "" if self.orthogonal_map == "matrix_exp" else f", orthogonal_map={self.orthogonal_map!r}"
        s += "" if self.orthogonal_init == "henaff" else f", orthogonal_init={self.orthogonal_init!r}"
        return s
