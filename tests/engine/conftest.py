"""Fixtures of the scan cells' engine tests: a record that needs no layer, and norms of kept gradients."""

import pytest
import torch
from torch import nn

from bptt.engine.recording import RECORD_ATTRIBUTE, GradientRecord, LayerRecorders, StepRecorder


def _open_record(seq_len: int) -> tuple[GradientRecord, LayerRecorders]:
    holder = nn.Module()
    record = GradientRecord(num_layers=1)
    object.__setattr__(holder, RECORD_ATTRIBUTE, record)
    return record, LayerRecorders(StepRecorder(holder, 0, 0, seq_len, "hidden"))


def _norms_of(states: list[torch.Tensor]) -> torch.Tensor:
    grads = [torch.view_as_real(s.grad).flatten(-2) if s.grad.is_complex() else s.grad for s in states]
    return torch.stack([torch.linalg.vector_norm(g, dim=-1) for g in grads])


@pytest.fixture
def open_record():
    """open_record(T) -> (an open one-layer GradientRecord, the LayerRecorders an engine call reports to)."""
    return _open_record


@pytest.fixture
def norms_of():
    """norms_of(states) -> (T, B) ||dL/dh_t[b]|| of states kept with retain_grad (complex: over re and im)."""
    return _norms_of
