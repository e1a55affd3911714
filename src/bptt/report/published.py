"""Published results the sweep report compares against, as data, each with its source.

Transcribed from the papers named in each row's source. ``task`` and ``seq_len`` use this project's task names, so a row
meets our runs on the same task and length; ``quantity`` says which of our
numbers it is compared with:

    "loss"      our final test loss (adding: MSE; copy: mean cross-entropy over every step)
    "accuracy"  our final test accuracy, in percent

``model`` names the published model; ``matches`` says which of our configs
count as that model (None: nothing in this project is that model).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bptt.store import RunSummary

TCN = "Bai, Kolter, Koltun 2018 (TCN paper), Table 1; about 70K parameters (copy 16K)"
IRNN = "Le, Jaitly, Hinton 2015 (IRNN)"
LATER = (
    "LSTM, uRNN (Arjovsky et al. 2016), IndRNN (Li et al. 2018), expRNN (Lezcano-Casado & "
    "Martinez-Rubio 2019), coRNN (Rusch & Mishra 2021), LSSL (Gu et al. 2021), S4 (Gu et al. 2022)"
)


@dataclass(frozen=True)
class PublishedResult:
    source: str
    task: str
    seq_len: int | None  # None: the task's one length (MNIST: 784)
    model: str
    quantity: str  # "loss" or "accuracy"
    value: float | tuple[float, float]  # a number, or a (low, high) range
    note: str = ""

    def shown(self) -> str:
        if isinstance(self.value, tuple):
            return f"{self.value[0]:g}-{self.value[1]:g}"
        return f"{self.value:g}"


def _rnn(activation: str, inits: tuple[str, ...]) -> Callable[[dict[str, Any]], bool]:
    return lambda c: c.get("cell") == "rnn" and c.get("activation") == activation and c.get("init") in inits


MODELS: dict[str, Callable[[dict[str, Any]], bool] | None] = {
    "LSTM": lambda c: c.get("cell") == "lstm",
    "GRU": lambda c: c.get("cell") == "gru",
    "RNN (tanh)": _rnn("tanh", ("pytorch", "xavier", "orthogonal", "kaiming")),
    "IRNN": _rnn("relu", ("identity",)),
    "TCN": None,
    "uRNN": None,
    "IndRNN": None,
    "expRNN": None,
    "coRNN": None,
    "LSSL": None,
    "S4": None,
}

PUBLISHED: tuple[PublishedResult, ...] = (
    # Bai, Kolter, Koltun 2018, Table 1.
    *(
        PublishedResult(TCN, "mnist", None, m, "accuracy", v)
        for m, v in (("LSTM", 87.2), ("GRU", 96.2), ("RNN (tanh)", 21.5), ("TCN", 99.0))
    ),
    *(
        PublishedResult(TCN, "pmnist", None, m, "accuracy", v)
        for m, v in (("LSTM", 85.7), ("GRU", 87.3), ("RNN (tanh)", 25.3), ("TCN", 97.2))
    ),
    *(
        PublishedResult(TCN, "adding", 600, m, "loss", v, n)
        for m, v, n in (
            ("LSTM", 0.164, "at the memoryless baseline 1/6"),
            ("GRU", 5.3e-5, ""),
            ("RNN (tanh)", 0.177, "at the baseline"),
            ("TCN", 5.8e-5, ""),
        )
    ),
    *(
        PublishedResult(TCN, "copy", 1000, m, "loss", v, n)
        for m, v, n in (
            ("LSTM", 0.0204, "at the memoryless baseline 0.0204; Tallec & Ollivier 2018: forget-gate bias 1 beats it"),
            ("GRU", 0.0197, "near the baseline"),
            ("RNN (tanh)", 0.0202, "at the baseline"),
            ("TCN", 3.5e-5, ""),
        )
    ),
    # Le, Jaitly, Hinton 2015.
    PublishedResult(IRNN, "mnist", None, "RNN (tanh)", "accuracy", 35.0),
    PublishedResult(IRNN, "pmnist", None, "RNN (tanh)", "accuracy", 35.0),
    PublishedResult(IRNN, "mnist", None, "IRNN", "accuracy", (95.0, 97.0)),
    PublishedResult(IRNN, "pmnist", None, "IRNN", "accuracy", 82.0),
    # Later recurrent models.
    *(
        PublishedResult(LATER, "mnist", None, m, "accuracy", v)
        for m, v in (
            ("LSTM", (98.2, 98.9)),
            ("uRNN", 95.1),
            ("IndRNN", 99.0),
            ("expRNN", 98.7),
            ("coRNN", 99.3),
            ("LSSL", 99.53),
            ("S4", 99.63),
        )
    ),
    *(
        PublishedResult(LATER, "pmnist", None, m, "accuracy", v)
        for m, v in (
            ("LSTM", (88.0, 90.2)),
            ("uRNN", 91.4),
            ("IndRNN", 96.0),
            ("expRNN", 96.6),
            ("coRNN", 96.6),
            ("LSSL", 98.76),
            ("S4", 98.70),
        )
    ),
)


def our_value(quantity: str, final: RunSummary) -> float | None:
    """Our number for a published quantity, from a run's final summary."""
    if quantity == "loss":
        return final.test_loss
    metric = final.test_metric
    return None if metric is None else 100.0 * metric
