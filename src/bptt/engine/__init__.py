"""The BPTT engine: hand-written forward/backward loops and per-step gradient recording.

``bptt.engine.fast`` is the engine registered as "fast"; ``record_gradients``
records the batch-mean norm of dL/dh_t at every step; ``bptt.engine.bench``
measures the engine against torch.nn.
"""
from bptt.engine.recording import GradientRecord, StepRecorder, record_gradients

__all__ = ["GradientRecord", "StepRecorder", "record_gradients"]
