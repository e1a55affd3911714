"""Delayed sentiment: the polarity of one early word, read after ``delay`` neutral words.

Inputs are time-major token ids (T, B) long; targets are class ids (B,):
0 = negative, 1 = positive. The word lists ship as text files in ``bptt/tasks/data``.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Iterable
from importlib import resources
from typing import NamedTuple

import torch

from bptt.checks import is_int
from bptt.tasks.base import TASKS, Batch, Task, TaskError, TaskSettings, cross_entropy_baseline
from bptt.tasks.checks import check_generated, require_batch_size, require_int

PAD = 0
PAD_WORD = "<pad>"
CLASSES = ("negative", "positive")
DEFAULT_DELAY = 0
DEFAULT_NEGATION_PROB = 0.5
OPTIONS = ("negation_prob",)


class Lexicon(NamedTuple):
    """The vocabulary (id -> word, id 0 the padding) and the word lists as token ids."""

    words: tuple[str, ...]
    positive: tuple[int, ...]
    negative: tuple[int, ...]
    negations: tuple[int, ...]
    subjects: tuple[tuple[int, ...], ...]
    filler: tuple[tuple[int, ...], ...]


def _read_lines(name: str) -> list[list[str]]:
    """Lines of a shipped word list, split into words; blank lines and '#' comments skipped."""
    text = resources.files("bptt.tasks").joinpath("data", name).read_text(encoding="utf-8")
    lines = [line.split() for line in text.splitlines()]
    return [words for words in lines if words and not words[0].startswith("#")]


def load_lexicon() -> Lexicon:
    entries = {
        name: _read_lines(f"sentiment_{name}.txt")
        for name in ("positive", "negative", "negations", "subjects", "filler")
    }
    for name in ("positive", "negative", "negations"):
        assert all(len(line) == 1 for line in entries[name]), f"sentiment_{name}.txt: one word per line"
    ids = {PAD_WORD: PAD}
    for lines in entries.values():
        for word in (w for line in lines for w in line):
            ids.setdefault(word, len(ids))
    words = list(ids)
    flags = {w for name in ("positive", "negative", "negations") for line in entries[name] for w in line}
    for name in ("subjects", "filler"):
        leaked = flags.intersection(w for line in entries[name] for w in line)
        assert not leaked, f"sentiment_{name}.txt holds label words {sorted(leaked)}"
    as_ids = lambda name: tuple(tuple(ids[w] for w in line) for line in entries[name])  # noqa: E731
    return Lexicon(
        words=tuple(words),
        positive=tuple(line[0] for line in as_ids("positive")),
        negative=tuple(line[0] for line in as_ids("negative")),
        negations=tuple(line[0] for line in as_ids("negations")),
        subjects=as_ids("subjects"),
        filler=as_ids("filler"),
    )


def _padded(phrases: tuple[tuple[int, ...], ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """(P, W) ids padded with PAD, and (P,) lengths."""
    width = max(map(len, phrases))
    table = torch.tensor([list(p) + [PAD] * (width - len(p)) for p in phrases], dtype=torch.long)
    return table, torch.tensor([len(p) for p in phrases])


def _pick(ids: tuple[int, ...], batch_size: int, gen: torch.Generator) -> torch.Tensor:
    """(B,) ids drawn uniformly from ``ids``."""
    return torch.tensor(ids)[torch.randint(0, len(ids), (batch_size,), generator=gen)]


LEXICON = load_lexicon()
MAX_SUBJECT_LEN = max(map(len, LEXICON.subjects))


@TASKS.register("sentiment")
class SentimentTask(Task):
    r"""Delayed sentiment, the textbook example of short and long dependencies
    ("the food is good" against a 50-100 word sentence whose polar word comes early).

    Every sentence has exactly T = ``seq_len`` tokens, in this order:

    1. neutral filler (0 or more tokens, whatever length is left over), ending at a
       phrase boundary;
    2. a subject phrase ("the food is"), uniform over ``sentiment_subjects.txt``;
    3. with probability ``options["negation_prob"]`` (default 0.5), a negation
       ("not", "never"), uniform over ``sentiment_negations.txt``;
    4. the polar word at step T - 1 - delay: the polarity s is positive or negative
       with probability 1/2 each, the word uniform over that list;
    5. exactly ``delay`` neutral filler tokens (default 0: "the food is good").

    The label is y = s XOR negated (1 = positive, 0 = negative). Filler, subject, the
    lengths of the parts and the presence of a negation are all drawn independently
    of y, so y is a function of the polar word and the negation slot only and
    P(y = 1) = 1/2: a model that has forgotten step T - 1 - delay and the step before
    sits at chance. With negation_prob 0.5 neither token alone predicts y.

    ``delay`` (default 0) is the controlled variable: the number of tokens after the
    polar word. ``seq_len`` must be at least ``min_seq_len`` = the longest subject (3)
    + 1 (negation; 0 when negation_prob is 0) + 1 (polar word) + delay, and defaults
    to exactly that.

    Token id 0 is padding (never produced); ``vocabulary[i]`` is the word of id i,
    ``decode(ids)`` prints a sentence. Loss: cross-entropy at the last step; memoryless
    baseline ln 2; chance accuracy 0.5.
    """

    name = "sentiment"
    kind = "classification"
    input_kind = "tokens"
    input_size = len(LEXICON.words)
    output_size = len(CLASSES)
    metric_name = "accuracy"
    higher_is_better = True
    vocabulary = LEXICON.words
    classes = CLASSES
    lexicon = LEXICON

    def __init__(self, settings: TaskSettings) -> None:
        variant = check_generated(settings, self.name, options=OPTIONS, uses_delay=True)
        negation_prob = settings.options.get("negation_prob", DEFAULT_NEGATION_PROB)
        is_number = isinstance(negation_prob, numbers.Real) and not isinstance(negation_prob, bool)
        if not (is_number and 0 <= negation_prob <= 1):
            raise TaskError(
                f"options.negation_prob must be a number in [0, 1] for task {self.name!r}, got {negation_prob!r}"
            )
        self.negation_prob = float(negation_prob)
        delay = DEFAULT_DELAY if settings.delay is None else settings.delay
        delay = require_int(delay, "delay", self.name, 0)
        shortest = MAX_SUBJECT_LEN + (1 if self.negation_prob > 0 else 0) + 1 + delay
        seq_len = shortest if settings.seq_len is None else settings.seq_len
        if not is_int(seq_len) or seq_len < shortest:
            raise TaskError(
                f"seq_len must be an int >= {shortest} for task {self.name!r} with delay {delay} "
                f"(subject {MAX_SUBJECT_LEN} + negation {shortest - MAX_SUBJECT_LEN - 1 - delay} "
                f"+ polar word 1 + delay {delay}), got {seq_len!r}"
            )
        self.min_seq_len = shortest
        super().__init__(dataclasses.replace(settings, seq_len=int(seq_len), delay=delay, variant=variant))
        self._subjects, self._subject_lengths = _padded(LEXICON.subjects)
        self._filler, self._filler_lengths = _padded(LEXICON.filler)

    @property
    def delay(self) -> int:
        assert self.settings.delay is not None
        return self.settings.delay

    @property
    def baseline(self) -> float:
        return cross_entropy_baseline([0.5, 0.5])

    def describe(self) -> dict:
        return {**super().describe(), "delay": self.delay, "negation_prob": self.negation_prob}

    # -- vocabulary -----------------------------------------------------------------
    def decode(self, ids: Iterable[int] | torch.Tensor) -> str:
        """One sentence of token ids ((T,) tensor or list) as text; padding is skipped."""
        if isinstance(ids, torch.Tensor):
            if ids.dim() != 1:
                raise ValueError(f"decode takes one sentence of shape (T,), got shape {tuple(ids.shape)}")
            ids = ids.tolist()
        return " ".join(self.vocabulary[int(i)] for i in ids if int(i) != PAD)

    def encode(self, text: str) -> torch.Tensor:
        """Whitespace-separated words as (T,) token ids; unknown words raise ValueError."""
        index = {w: i for i, w in enumerate(self.vocabulary)}
        unknown = [w for w in text.split() if w not in index]
        if unknown:
            raise ValueError(f"words not in the sentiment vocabulary: {', '.join(unknown)}")
        return torch.tensor([index[w] for w in text.split()], dtype=torch.long)

    # -- sampling -------------------------------------------------------------------
    def _filler_tokens(self, count: int, batch_size: int, gen: torch.Generator, align_end: bool) -> torch.Tensor:
        """(B, count) filler: whole random phrases strung together and cut to ``count``
        tokens, starting at a phrase start (or, with ``align_end``, ending at a phrase end)."""
        per_row = math.ceil(count / int(self._filler_lengths.min()))
        phrase = torch.randint(0, len(self._filler), (batch_size, per_row), generator=gen)
        tokens = self._filler[phrase].flatten(1)  # (B, per_row * W)
        width = self._filler.shape[1]
        real = (torch.arange(width) < self._filler_lengths[phrase].unsqueeze(-1)).flatten(1)
        # A stable sort on the padding flag packs the real tokens together, in order.
        order = torch.argsort((real if align_end else ~real).to(torch.uint8), dim=1, stable=True)
        packed = tokens.gather(1, order)
        return packed[:, -count:] if align_end else packed[:, :count]

    def sample(self, batch_size: int, gen: torch.Generator) -> Batch:
        batch_size = require_batch_size(batch_size)
        steps, delay = self.seq_len, self.delay
        polar_step = steps - 1 - delay
        examples = torch.arange(batch_size)
        sentence = torch.full((batch_size, steps), PAD, dtype=torch.long)  # (B, T), transposed at the end

        positive = torch.randint(0, 2, (batch_size,), generator=gen).bool()
        positive_word = _pick(LEXICON.positive, batch_size, gen)
        negative_word = _pick(LEXICON.negative, batch_size, gen)
        sentence[:, polar_step] = torch.where(positive, positive_word, negative_word)

        negated = torch.rand(batch_size, generator=gen) < self.negation_prob
        negation = _pick(LEXICON.negations, batch_size, gen)
        sentence[negated, polar_step - 1] = negation[negated]

        subject = torch.randint(0, len(self._subjects), (batch_size,), generator=gen)
        subject_len = self._subject_lengths[subject]
        start = polar_step - negated.long() - subject_len  # (B,) first step of the subject
        for offset in range(self._subjects.shape[1]):
            inside = offset < subject_len
            sentence[examples[inside], (start + offset)[inside]] = self._subjects[subject, offset][inside]

        longest_lead = int(start.max())
        if longest_lead > 0:
            lead = self._filler_tokens(longest_lead, batch_size, gen, align_end=True)  # (B, longest_lead)
            # Right-align each lead so that it ends where that sentence's subject starts.
            step = torch.arange(polar_step).unsqueeze(0)  # (1, polar_step)
            source = (longest_lead - start.unsqueeze(1) + step).clamp(0, longest_lead - 1)
            in_lead = step < start.unsqueeze(1)
            sentence[:, :polar_step] = torch.where(in_lead, lead.gather(1, source), sentence[:, :polar_step])
        if delay > 0:
            sentence[:, polar_step + 1 :] = self._filler_tokens(delay, batch_size, gen, align_end=False)

        assert bool((sentence != PAD).all()), "every step of a sentence holds a word"
        targets = (positive ^ negated).long()
        return Batch(sentence.t().contiguous(), targets)  # inputs (T, B)
