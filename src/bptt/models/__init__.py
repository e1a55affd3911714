"""Sequence models built around the recurrent layers."""

from bptt.models.sequence import SequenceModel, build_recurrent

__all__ = ["SequenceModel", "build_recurrent"]
