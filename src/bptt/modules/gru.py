"""The GRU layer, with torch.nn.GRU's equations and gate order."""

from __future__ import annotations

from typing import Any

import torch

from bptt.engine import ENGINES
from bptt.engine.recording import LayerRecorders
from bptt.engine.reference import StepWatch
from bptt.modules.twins import TorchTwin


class GRU(TorchTwin):
    r"""GRU with torch.nn.GRU's equations and gate order (r, z, n):

    .. math::
        r, z = \sigma(\cdot),\; n = \tanh(x W_{in}^T + b_{in} + r \odot (h W_{hn}^T + b_{hn})),\;
        h_t = (1 - z) \odot n + z \odot h_{t-1}

    Args: as torch.nn.GRU, plus ``init``, ``init_scale``, ``residual``, ``engine``.
    ``init="chrono"`` with ``t_max``: z multiplies h_{t-1}, so z is the gate that
    keeps the state; its bias is b_z = log(u), u ~ U[1, t_max - 1] per unit
    (Tallec & Ollivier 2018), every other bias 0.
    """

    GATES = 3
    MODE = "GRU"

    def _chrono(self, bias_ih: torch.Tensor, keep: torch.Tensor) -> None:
        H = self.hidden_size
        bias_ih[H : 2 * H] = keep  # update gate z

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if "proj_size" in kwargs:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        super().__init__(*args, **kwargs)

    def _engine_call(
        self,
        engine: str,
        layer: int,
        direction: int,
        x: torch.Tensor,
        state: torch.Tensor,
        record: LayerRecorders | None,
        watch: StepWatch | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        extra = {} if watch is None else {"watch": watch}
        return ENGINES.get(engine).gru_layer(x, state, *self.layer_parameters(layer, direction), record, **extra)
