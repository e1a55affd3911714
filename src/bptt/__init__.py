"""bptt: train recurrent networks by backpropagation through time, and see, measure and fix the
vanishing gradient.

    result = bptt.train({"task": "adding", "seq_len": 50, "cell": "lstm"})
    bptt.diagnose(result.model, result.task)     # a notebook shows its figures and verdict

``import bptt`` loads the layers, the engine, the tasks and the config. ``train``,
``diagnose``, ``watch`` and ``Watch`` load the training loop, the diagnostics and
their figures on first use (``bptt.lazy``).
"""

from typing import TYPE_CHECKING

from bptt.config import RunConfig
from bptt.lazy import lazy_attributes
from bptt.modules import GRU, LSTM, RNN, convert, record_gradients
from bptt.provenance import __version__

if TYPE_CHECKING:
    from bptt.diagnostics.diagnosis import diagnose
    from bptt.training.loop import train
    from bptt.watcher import Watch, watch

__getattr__, __dir__ = lazy_attributes(
    __name__,
    {
        "diagnose": "bptt.diagnostics.diagnosis",
        "train": "bptt.training.loop",
        "Watch": "bptt.watcher",
        "watch": "bptt.watcher",
    },
)

__all__ = [
    "GRU",
    "LSTM",
    "RNN",
    "RunConfig",
    "Watch",
    "__version__",
    "convert",
    "diagnose",
    "record_gradients",
    "train",
    "watch",
]
