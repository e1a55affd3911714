"""A sequence model: input encoder -> recurrent stack -> readout -> head.

Tensors are time-major throughout: inputs (T, B, I) or token ids (T, B).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from bptt.config import RunConfig
from bptt.models.readout import AdditiveAttention, last_state, mean_state
from bptt.modules import init
from bptt.modules.base import RecurrentBase
from bptt.modules.cells import CELLS
from bptt.tasks.base import Task


def build_recurrent(
    config: RunConfig,
    input_size: int,
    generator: torch.Generator | None = None,
    t_max: int | None = None,
    device: torch.device | str | None = None,
) -> RecurrentBase:
    """The recurrent stack a config describes (truncated BPTT included), initialised from ``generator``;
    the cell's layer and its own arguments come from its registry entry (``bptt.modules.cells``).

    ``t_max`` is the longest dependency expected when the config leaves it unset (the task's length:
    chrono init's and IndRNN's bound read it).
    """
    spec = CELLS.get(config.cell)
    values = {**config.model_dump(), "t_max": config.t_max or t_max}
    return spec.layer(
        input_size,
        config.hidden_size,
        num_layers=config.num_layers,
        dropout=config.dropout,
        residual=config.residual,
        engine=config.engine,
        truncate=config.tbptt,
        generator=generator,
        device=device,
        **spec.layer_arguments(values),
    )


class SequenceModel(nn.Module):
    """Encoder, recurrent stack, readout and head for one task.

    encoder: an embedding of ``embedding_size`` for token tasks; for dense inputs
        none, since the recurrent layer's W_ih already is the linear input map.
    readout: "last" (h at each sequence's last real step), "mean" (mean over the
        real steps) or "attention" (additive attention over all steps).
        Per-step tasks skip the readout and apply the head at every step.
    head: a linear map to the task's outputs (logits or regression values).

    Every initial weight is drawn from ``generator`` (default: torch's global one).
    ``trained_steps`` counts the training steps the model has had (the ``Trainer``
    keeps it), so a diagnosis can say whether it measured a trained model.

    ``forward(inputs, lengths=None)`` returns (B, outputs), or (T, B, outputs)
    for per-step tasks.
    """

    def __init__(self, config: RunConfig, task: Task, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.config = config
        self.trained_steps = 0
        self.per_step = task.kind == "per_step"
        if task.input_kind == "tokens":
            self.encoder: nn.Module = init.embedding(task.input_size, config.embedding_size, generator)
            recurrent_input = config.embedding_size
        else:
            self.encoder = nn.Identity()
            recurrent_input = task.input_size
        self.recurrent = build_recurrent(config, recurrent_input, generator, t_max=task.describe().get("seq_len"))
        self.attention = (
            AdditiveAttention(config.hidden_size, generator=generator) if config.readout == "attention" else None
        )
        self.head = init.linear(config.hidden_size, task.output_size, generator=generator)

    def hidden_states(
        self, inputs: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(output (T, B, H) of the top layer, its final hidden state (B, H); for a layer whose output is
        not its state (``OUTPUT_IS_STATE``), the final state's first part, e.g. the LRU's complex x).

        With ``lengths``, the batch runs packed: each sequence stops at its own last step
        (its final state is taken there) and its padded steps come out as zeros.
        """
        embedded = self.encoder(inputs)
        if lengths is None:
            output, state = self.recurrent(embedded)
        else:
            packed = pack_padded_sequence(embedded, lengths.cpu(), enforce_sorted=False)
            packed_output, state = self.recurrent(packed)
            output, _ = pad_packed_sequence(packed_output, total_length=embedded.shape[0])
        h_n = state[0] if isinstance(state, tuple) else state
        return output, h_n[-1]

    def forward(self, inputs: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        output, h_last = self.hidden_states(inputs, lengths)  # (T, B, H), (B, H)
        if self.per_step:
            return self.head(output)
        if self.attention is not None:
            summary = self.attention(output, lengths)
        elif self.config.readout == "mean":
            summary = mean_state(output, lengths)
        elif lengths is None and not self.recurrent.residual and self.recurrent.OUTPUT_IS_STATE:
            # h_T itself rather than output[-1]: the loss then needs no gradient
            # buffer for the whole (T, B, H) output.
            summary = h_last
        else:
            summary = last_state(output, lengths)
        return self.head(summary)
