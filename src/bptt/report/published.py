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

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bptt.plotting.html import Table
from bptt.store import RunSummary

if TYPE_CHECKING:
    from bptt.report.sweep import RunPoint

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


# -- the claims beside a ladder table ---------------------------------------------------------------
#: What each model's paper claims on the ladder's tasks and on sequential MNIST, one line per model.
#: Where a paper gives a curve and no number, the line says which figure it was read from. The MNIST
#: numbers are on all 60,000 training images (the ladder sweep's mnist5k trains on 3,500).
CLAIMS: dict[str, str] = {
    "tanh RNN": "adding T=600 MSE 0.177, copy T=1000 CE 0.0202: at the baseline; sMNIST 21.5 %, pMNIST 25.3 % "
    "(Bai et al. 2018, Table 1)",
    "IRNN": "adding: about as good as an LSTM at T=150-400 (Le et al. 2015, read from Fig. 2); sMNIST 97 %, "
    "pMNIST 82 %",
    "LSTM": "adding T=600 MSE 0.164, copy T=1000 CE 0.0204: at the baseline; sMNIST 87.2 %, pMNIST 85.7 % "
    "(Bai et al. 2018, Table 1); sMNIST 98.2-98.9 % in later papers",
    "LSTM chrono": "copy T=500 and 2000: below the memoryless baseline where a standard LSTM stays on it "
    "(Tallec & Ollivier 2018, read from the copy-task figure)",
    "GRU": "adding T=600 MSE 5.3e-5; copy T=1000 CE 0.0197, near the baseline; sMNIST 96.2 %, pMNIST 87.3 % "
    "(Bai et al. 2018, Table 1)",
    "IndRNN": "adding: solved at T=5000 (Li et al. 2018, read from Fig. 2); sMNIST 99.0 %, pMNIST 96.0 %",
    "expRNN": "copy: solved at T=1000 and 2000 (Lezcano-Casado & Martínez-Rubio 2019, read from Fig. 1); "
    "sMNIST 98.7 %, pMNIST 96.6 %",
    "coRNN": "adding: solved at T=5000 (Rusch & Mishra 2021, read from Fig. 1); sMNIST 99.3 %, pMNIST 96.6 %",
    "LRU": "no adding or copy rows of its own: Orvieto et al. 2023 report Long Range Arena (sCIFAR 89.0 %, "
    "ListOps 60.2 %)",
    "minGRU": "no adding or copy rows of its own: Feng et al. 2024 report selective copying and training speed "
    "(175x at T=512)",
    "minLSTM": "no adding or copy rows of its own: Feng et al. 2024 report selective copying and training speed",
    "LN-LSTM": "no adding, copy or sequential MNIST rows of its own (Ba et al. 2016)",
}
#: Which claim a run's cell (and, for the plain cells, its activation and init) stands for.
CLAIM_OF_CELL = {
    "indrnn": "IndRNN",
    "exprnn": "expRNN",
    "cornn": "coRNN",
    "lru": "LRU",
    "mingru": "minGRU",
    "minlstm": "minLSTM",
    "lnlstm": "LN-LSTM",
    "gru": "GRU",
}


def claim_name(cell: str, activation: str, init: str) -> str:
    """The name of the model in ``CLAIMS`` that a run of this cell, activation and init stands for ("": none)."""
    if cell == "lstm":
        return "LSTM chrono" if init == "chrono" else "LSTM"
    if cell == "rnn":
        return {"relu": "IRNN" if init == "identity" else "", "tanh": "tanh RNN"}.get(activation, "")
    return CLAIM_OF_CELL.get(cell, "")


def claim(cell: str, activation: str, init: str) -> str:
    """The published claim for a model of this cell, activation and init ("-" where none is known)."""
    return CLAIMS.get(claim_name(cell, activation, init), "-")


def published_table(points: list[RunPoint]) -> Table:
    """Our finished runs' mean beside each published number on a task the points hold."""
    rows = []
    for result in PUBLISHED:
        matches = MODELS.get(result.model)
        ours = [
            p
            for p in points
            if p.row.status == "finished"
            and p.row.task == result.task
            and matches is not None
            and matches(p.row.config)
            and (result.seq_len is None or p.final.seq_len == result.seq_len)
        ]
        if not ours and not any(p.row.task == result.task for p in points):
            continue  # a task this database never ran
        values = [our_value(result.quantity, p.final) for p in ours]
        finite = [v for v in values if v is not None and math.isfinite(v)]
        mean = statistics.fmean(finite) if finite else None
        labels = ", ".join(sorted({p.label for p in ours}))
        rows.append(
            [
                result.task,
                result.seq_len or "",
                result.model,
                result.quantity,
                result.shown(),
                "" if mean is None else mean,
                len(ours),
                labels,
                result.source,
                result.note or ("no counterpart in this project" if matches is None else ""),
            ]
        )
    return Table(
        ["task", "T", "model", "quantity", "published", "ours (mean)", "our runs", "our labels", "source", "note"],
        rows,
        "Published results on the tasks this database holds (loss: test MSE or cross-entropy; accuracy in %)",
    )
