"""Delayed sentiment against its spec: the polar word sits exactly ``delay`` tokens
before the end, the label is its polarity flipped by a negation, and nothing else
in the sentence says anything about the label.

The word lists are read here from the shipped files, not from the task module.
"""

from __future__ import annotations

from importlib import resources

import pytest
import torch

from bptt.tasks import TaskError, TaskSettings, build_task


def word_list(name: str) -> list[list[str]]:
    text = resources.files("bptt.tasks").joinpath("data", f"sentiment_{name}.txt").read_text()
    return [line.split() for line in text.splitlines() if line.strip() and not line.startswith("#")]


POSITIVE = {w for (w,) in word_list("positive")}
NEGATIVE = {w for (w,) in word_list("negative")}
NEGATIONS = {w for (w,) in word_list("negations")}
SUBJECTS = [tuple(line) for line in word_list("subjects")]
FILLER = {w for line in word_list("filler") for w in line}


def draw(batch_size: int, seed: int = 0, **settings):
    task = build_task("sentiment", TaskSettings(**settings))
    batch = task.sample(batch_size, torch.Generator().manual_seed(seed))
    words = [task.decode(batch.inputs[:, b]).split() for b in range(batch_size)]
    return task, batch, words


def test_word_lists_are_disjoint_where_it_matters():
    assert POSITIVE and NEGATIVE and NEGATIONS and SUBJECTS and FILLER
    assert len(POSITIVE) == len(NEGATIVE)
    flags = POSITIVE | NEGATIVE | NEGATIONS
    assert not flags & FILLER
    assert not flags & {w for s in SUBJECTS for w in s}
    assert not POSITIVE & NEGATIVE


@pytest.mark.parametrize(("delay", "seq_len"), [(0, None), (0, 12), (3, 9), (50, 60), (100, 110)])
def test_polar_word_exactly_delay_tokens_before_the_end(delay, seq_len):
    task, batch, sentences = draw(500, delay=delay, seq_len=seq_len)
    steps = seq_len if seq_len is not None else delay + 5
    assert task.seq_len == steps
    assert batch.inputs.shape == (steps, 500) and batch.inputs.dtype == torch.long
    assert batch.targets.shape == (500,) and batch.targets.dtype == torch.long
    assert int(batch.inputs.min()) >= 1 and int(batch.inputs.max()) < task.input_size  # no padding
    negated_count = 0
    for words, label in zip(sentences, batch.targets.tolist()):
        assert len(words) == steps
        polar = steps - 1 - delay
        assert words[polar] in POSITIVE | NEGATIVE
        negated = words[polar - 1] in NEGATIONS
        negated_count += negated
        end_of_subject = polar - 1 - negated
        assert tuple(words[end_of_subject - 2 : end_of_subject + 1]) in SUBJECTS
        before, after = words[: end_of_subject - 2], words[polar + 1 :]
        assert len(after) == delay
        assert all(w in FILLER for w in before + after)
        assert label == int((words[polar] in POSITIVE) != negated)
    assert 150 < negated_count < 350  # negation_prob 0.5


def test_short_sentence_the_food_is_good():
    task = build_task("sentiment", TaskSettings(seq_len=4, delay=0, options={"negation_prob": 0.0}))
    batch = task.sample(200, torch.Generator().manual_seed(0))
    sentences = [task.decode(batch.inputs[:, b]) for b in range(200)]
    assert all(len(s.split()) == 4 for s in sentences)
    assert all(tuple(s.split()[:3]) in SUBJECTS and s.split()[3] in POSITIVE | NEGATIVE for s in sentences)
    labels = [int(s.split()[3] in POSITIVE) for s in sentences]
    assert labels == batch.targets.tolist()
    assert task.decode(task.encode("the food is good")) == "the food is good"


def test_label_information_is_only_in_the_polar_word_and_negation():
    delay = 6
    task, batch, sentences = draw(6000, seed=1, delay=delay, seq_len=20)
    labels = batch.targets
    polar = 20 - 1 - delay
    # Everything except the polar word and the negation slot before it, per label.
    rest = torch.cat([batch.inputs[: polar - 1], batch.inputs[polar + 1 :]])  # (T - 2, B)
    histograms = [torch.bincount(rest[:, labels == y].flatten(), minlength=task.input_size).double() for y in (0, 1)]
    histograms = [h / h.sum() for h in histograms]
    total_variation = 0.5 * float((histograms[0] - histograms[1]).abs().sum())
    assert total_variation < 0.03
    # the negation alone and the sentence length before the subject say nothing either
    negated = torch.tensor([s[polar - 1] in NEGATIONS for s in sentences])
    for group in (negated, ~negated):
        assert float(labels[group].float().mean()) == pytest.approx(0.5, abs=0.03)
    # A model that reads only the last token, fit on half the sentences, is at chance on the other half.
    fit, held_out = slice(0, 3000), slice(3000, 6000)
    votes = torch.zeros(task.input_size, 2)
    votes.index_put_((batch.inputs[-1, fit], labels[fit]), torch.ones(3000), accumulate=True)
    guess = votes.argmax(1)[batch.inputs[-1, held_out]]
    assert float((guess == labels[held_out]).float().mean()) == pytest.approx(0.5, abs=0.03)


def test_vocabulary_and_decode():
    task = build_task("sentiment")
    assert task.input_kind == "tokens" and task.kind == "classification" and task.output_size == 2
    assert task.input_size == len(task.vocabulary)
    assert task.vocabulary[0] == "<pad>"
    assert len(set(task.vocabulary)) == len(task.vocabulary)
    assert set(task.vocabulary) >= POSITIVE | NEGATIVE | NEGATIONS | FILLER
    assert task.classes == ("negative", "positive")
    assert task.decode([0, task.vocabulary.index("good")]) == "good"
    with pytest.raises(ValueError, match=r"\(T,\)"):
        task.decode(torch.ones(3, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="zzz"):
        task.encode("the zzz is good")


def test_defaults_and_errors():
    task = build_task("sentiment")
    assert (task.delay, task.seq_len, task.negation_prob) == (0, 5, 0.5)
    assert build_task("sentiment", TaskSettings(delay=100)).seq_len == 105
    with pytest.raises(TaskError, match=r"^seq_len must be an int >= 55 for task 'sentiment' with delay 50"):
        build_task("sentiment", TaskSettings(delay=50, seq_len=54))
    with pytest.raises(TaskError, match=r"^delay must be an int >= 0 for task 'sentiment', got -1$"):
        build_task("sentiment", TaskSettings(delay=-1))
    with pytest.raises(TaskError, match=r"^options.negation_prob must be a number in \[0, 1\]"):
        build_task("sentiment", TaskSettings(options={"negation_prob": 1.5}))
    with pytest.raises(TaskError, match=r"^variant must be one of default for task 'sentiment'"):
        build_task("sentiment", TaskSettings(variant="imdb"))
    assert build_task("sentiment", TaskSettings(delay=3, options={"negation_prob": 0})).seq_len == 7
