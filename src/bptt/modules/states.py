"""A layer's state and torch.nn's checks on it, in torch.nn's words.

The state is one tensor (D * num_layers, B, size) per part of ``STATE_NAMES``: a tensor
for one part (h), a tuple for more (an LSTM's (h, c), coRNN's (y, z)). Input and state
errors are torch.nn's exceptions with torch.nn's messages, so code that handles one
handles the other.
"""

from __future__ import annotations

import torch

from bptt.modules.timeloop import State


class StateContract:
    """The states half of ``RecurrentBase``: zero states, indexing and stacking the parts, and the checks."""

    STATE_NAMES: tuple[str, ...] = ("h",)

    # -- states ----------------------------------------------------------------------------
    def _state_sizes(self) -> tuple[int, ...]:
        """The size of each part of the state (``STATE_NAMES``)."""
        return (self.output_size,) * len(self.STATE_NAMES)

    def _zero_state(self, batch: int, like: torch.Tensor) -> State:
        layers = self.num_layers * self.num_directions
        parts = tuple(like.new_zeros(layers, batch, size) for size in self._state_sizes())
        return parts[0] if len(parts) == 1 else parts

    def _state_at(self, state: State, index: int) -> State:
        return state[index] if isinstance(state, torch.Tensor) else tuple(s[index] for s in state)

    def _stack_states(self, states: list[State]) -> State:
        if isinstance(states[0], torch.Tensor):
            return torch.stack(states)
        return tuple(torch.stack(parts) for parts in zip(*states))

    def _unbatch_state(self, state: State) -> State:
        return state.squeeze(1) if isinstance(state, torch.Tensor) else tuple(s.squeeze(1) for s in state)

    def _check_state_dims(self, hx: State, batched: bool) -> State:
        """torch.nn's check that hx has the input's batchedness; an unbatched hx gains its batch axis."""
        want = 3 if batched else 2
        kind = "batched 3-D" if batched else "unbatched 2-D"
        if len(self.STATE_NAMES) == 1:
            if hx.dim() != want:
                raise RuntimeError(f"For {kind} input, hx should also be {want}-D but got {hx.dim()}-D tensor")
            return hx if batched else hx.unsqueeze(1)
        names = ", ".join(f"{n}_0" for n in self.STATE_NAMES)
        if not isinstance(hx, (tuple, list)) or len(hx) != len(self.STATE_NAMES):
            raise TypeError(f"{type(self).__name__} hx must be a tuple ({names}), got {type(hx).__name__}")
        if any(part.dim() != want for part in hx):
            words = "hx and cx" if self.STATE_NAMES == ("h", "c") else f"the states ({names})"
            dims = ", ".join(f"{part.dim()}-D" for part in hx)
            raise RuntimeError(f"For {kind} input, {words} should also be {want}-D but got ({dims}) tensors")
        return tuple(hx) if batched else tuple(part.unsqueeze(1) for part in hx)

    # -- torch.nn's checks, in its words -------------------------------------------------------
    def check_input(self, input: torch.Tensor, batch_sizes: torch.Tensor | None) -> None:
        weight = next(self.parameters())
        if input.dtype != weight.dtype and not torch.is_autocast_enabled(input.device.type):
            raise ValueError(
                f"RNN input dtype ({input.dtype}) does not match weight dtype ({weight.dtype}). "
                f"Convert input: input.to({weight.dtype}), or convert model: model.to({input.dtype})"
            )
        expected_input_dim = 2 if batch_sizes is not None else 3
        if input.dim() != expected_input_dim:
            raise RuntimeError(f"input must have {expected_input_dim} dimensions, got {input.dim()}")
        if self.input_size != input.size(-1):
            raise RuntimeError(
                f"input.size(-1) must be equal to input_size. Expected {self.input_size}, got {input.size(-1)}"
            )

    def _expected_state_size(
        self, part: int, input: torch.Tensor, batch_sizes: torch.Tensor | None
    ) -> tuple[int, int, int]:
        """(D * num_layers, B, size): the shape part ``part`` of the initial state must have."""
        batch = int(batch_sizes[0]) if batch_sizes is not None else input.size(0 if self.batch_first else 1)
        return self.num_layers * self.num_directions, batch, self._state_sizes()[part]

    def get_expected_hidden_size(self, input: torch.Tensor, batch_sizes: torch.Tensor | None) -> tuple[int, int, int]:
        return self._expected_state_size(0, input, batch_sizes)

    def check_hidden_size(
        self, hx: torch.Tensor, expected_hidden_size: tuple[int, ...], msg: str = "Expected hidden size {}, got {}"
    ) -> None:
        if hx.size() != expected_hidden_size:
            raise RuntimeError(msg.format(expected_hidden_size, list(hx.size())))

    def check_forward_args(self, input: torch.Tensor, hidden: State, batch_sizes: torch.Tensor | None) -> None:
        self.check_input(input, batch_sizes)
        if isinstance(hidden, torch.Tensor):
            self.check_hidden_size(hidden, self._expected_state_size(0, input, batch_sizes))
            return
        for part, tensor in enumerate(hidden):
            expected = self._expected_state_size(part, input, batch_sizes)
            self.check_hidden_size(tensor, expected, f"Expected hidden[{part}] size {{}}, got {{}}")

    def permute_hidden(self, hx: State, permutation: torch.Tensor | None) -> State:
        if permutation is None:
            return hx
        if isinstance(hx, torch.Tensor):
            return hx.index_select(1, permutation)
        return tuple(part.index_select(1, permutation) for part in hx)
