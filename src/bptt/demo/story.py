"""The demo's story in words: what each remedy family did to the measured numbers, and why.

Each paragraph gives the numbers this run measured, then the mechanism in the
words of the notes (the derivative of the activation, the chain rule over many
steps, the gates). Every verb that depends on the outcome ("learned it", "stayed
near chance", "vanished") is read from the numbers, so the text never claims
what the table does not show. Each family's note opens with a lead-in, which
models learned the long delay and which did not (``remedy_notes``); the
gated cells' note reads the trained gates themselves (their measured product
over the delay), not the value their initial bias would give.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bptt.demo.experiment import DemoResult, ModelResult, format_accuracy
from bptt.diagnostics.wording import format_share

#: The remedy families in the order of the story, with their headings.
REMEDIES = {
    "problem": "The problem",
    "activation": "Activation functions",
    "initialisation": "Weight initialisation",
    "clipping": "Gradient clipping",
    "depth": "Skip (residual) connections",
    "attention": "Attention",
    "gates": "LSTM and GRU",
}
#: Test accuracy from which a model "learned it", and up to which it "stayed near chance" (chance: 50 %).
LEARNED, CHANCE = 0.75, 0.6


def outcome(accuracy: float | None) -> str:
    """How a test accuracy reads against chance (50 %)."""
    if accuracy is None or not math.isfinite(accuracy):
        return "diverged"
    if accuracy >= LEARNED:
        return "learned it"
    if accuracy <= CHANCE:
        return "stayed near chance"
    return "learned it only partly"


def _ratio(m: ModelResult) -> str:
    value = m.diagnosis.gradient_ratio
    return "n/a" if math.isnan(value) else f"{value:.1e}"


def vanished(m: ModelResult) -> bool:
    """Whether the gradient at the reported lag is below epsilon of lag 0."""
    return m.diagnosis.gradient_ratio < m.diagnosis.epsilon


def learned_long(m: ModelResult) -> bool:
    accuracy = m.accuracy("long")
    return accuracy is not None and math.isfinite(accuracy) and accuracy >= LEARNED


def _summary(m: ModelResult, result: DemoResult) -> str:
    """e.g. ``tanh RNN: 100 % at delay 4 (learned it), 54 % at delay 50 (stayed near chance), dL/dh ratio 8.8e-10``."""
    short, long = result.settings.delays["short"], result.settings.delays["long"]
    return (
        f"{m.label}: {format_accuracy(m.accuracy('short'))} at delay {short} ({outcome(m.accuracy('short'))}), "
        f"{format_accuracy(m.accuracy('long'))} at delay {long} ({outcome(m.accuracy('long'))}), "
        f"dL/dh at lag {m.diagnosis.lag_used} {_ratio(m)} of lag 0"
    )


def _fate(m: ModelResult, words: int) -> str:
    return (
        f"over {words} words the gradient vanishes all the same"
        if vanished(m)
        else f"over {words} words it kept {_ratio(m)} of its size"
    )


def _problem(models: dict[str, ModelResult], result: DemoResult) -> str | None:
    m = models.get("sigmoid RNN")
    if m is None:
        return None
    words = result.settings.delays["long"]
    shrinks = "shrinks toward zero" if vanished(m) else f"shrinks to {_ratio(m)} of its size"
    return (
        f"{_summary(m, result)}. The sigmoid's derivative is at most 1/4, and backpropagation through time "
        f"multiplies one such derivative per step into the gradient (the chain rule over every word): over "
        f"{words} words the gradient reaching the polar word {shrinks}, and "
        f"{format_share(m.diagnosis.update_share_recent)} of the W_hh update comes from the last "
        f"{m.diagnosis.recent} words. Early words barely take part in updating the weights: the vanishing "
        "gradient problem."
    )


def _activation(models: dict[str, ModelResult], result: DemoResult) -> list[str] | None:
    words = result.settings.delays["long"]
    parts = []
    if (m := models.get("tanh RNN")) is not None:
        parts.append(
            f"{_summary(m, result)}. Tanh's derivative reaches 1 where the sigmoid's stops at 1/4, so a "
            f"step can shrink the gradient less; but saturated units pass almost nothing back, and "
            f"{_fate(m, words)}"
        )
    if (m := models.get("IRNN (ReLU, identity init)")) is not None:
        ratio = m.diagnosis.gradient_ratio
        keeps = "does not vanish" if not vanished(m) else "still vanishes here"
        grows = (
            f"; here it even grows with lag ({_ratio(m)} times lag 0's size), the other side of the same coin"
            if ratio > 1
            else ""
        )
        parts.append(
            f"{_summary(m, result)}. IRNN is the ReLU remedy as the literature means it (Le, Jaitly & "
            "Hinton 2015): ReLU's derivative is exactly 1 where a unit is active, and W_hh starts as the "
            f"identity, so h_{{t-1}} passes on unchanged and the gradient {keeps}{grows}. The learning "
            f"rate is small ({m.outcomes['long'].config.lr:g}): with an identity W_hh, large updates let the "
            "state and the gradient grow without bound, and a plain ReLU RNN at the others' rate can die "
            "(its units stop at zero, and their gradient with them)"
        )
    if (m := models.get("leaky ReLU RNN + identity init")) is not None:
        parts.append(
            f"{_summary(m, result)}: leaky ReLU passes a small slope below zero instead of nothing, and with "
            "the same identity start and small learning rate behaves like IRNN"
        )
    return [f"{part}." for part in parts] if parts else None


def _initialisation(models: dict[str, ModelResult], result: DemoResult) -> str | None:
    found = [models[label] for label in ("sigmoid RNN + Xavier", "tanh RNN + Xavier") if label in models]
    if not found:
        return None
    words = result.settings.delays["long"]
    fate = (
        "the product vanishes as before"
        if all(vanished(m) for m in found)
        else "the measured ratios above say how much of the gradient survives"
    )
    return (
        f"{'; '.join(_summary(m, result) for m in found)}. Xavier (Glorot) initialisation chooses the starting "
        "scale of the weights so that signals neither grow nor shrink through one layer at the start: it "
        "addresses a bad starting scale. It does not change the activation's derivative, so every backward step "
        f"still multiplies by sigmoid' <= 1/4 or tanh' <= 1, and over {words} words {fate}."
    )


def _clipping(models: dict[str, ModelResult], result: DemoResult) -> str | None:
    m = models.get("tanh RNN + clipping")
    if m is None:
        return None
    final = m.outcomes["long"].final
    threshold = m.outcomes["long"].config.clip_norm
    return (
        f"{_summary(m, result)}; the gradient was clipped on {final.clipped_steps} of {final.steps} steps. "
        f"Clipping rescales the gradient when its norm exceeds a threshold ({threshold:g}): it addresses "
        "exploding gradients, and since it can only make a gradient smaller it cannot bring back one that "
        "vanished."
    )


def _depth(models: dict[str, ModelResult], result: DemoResult) -> str | None:
    deep, residual = models.get("tanh RNN x3"), models.get("tanh RNN x3 + residual")
    if deep is None or residual is None:
        return None
    ratio = lambda m: float(m.diagnosis.layers.weight_ih[0] / m.diagnosis.layers.weight_ih[-1])  # noqa: E731
    more = "more" if ratio(residual) > ratio(deep) else "no more"
    return (
        f"{_summary(deep, result)}; {_summary(residual, result)}. Residual connections add each layer's input to "
        "its output, so the gradient reaches the lower layers of a stack without passing through every layer: "
        f"the first layer's ||dL/dW_ih|| is {ratio(deep):.2g} of the top layer's without them and "
        f"{ratio(residual):.2g} with them ({more} for the bottom layer). They address depth, not time: inside "
        "every layer the gradient still crosses each word between the polar word and the end, one Jacobian per "
        "step."
    )


def _attention(models: dict[str, ModelResult], result: DemoResult) -> str | None:
    m = models.get("tanh RNN + attention")
    if m is None:
        return None
    ratio = m.diagnosis.gradient_ratio
    reading = (
        "above 1: the early state gets more gradient than the last one, as much as its attention weight gives it"
        if ratio > 1
        else "set by the attention weight on each state, not by a product of small factors"
    )
    return (
        f"{_summary(m, result)}. Attention reads every hidden state: the summary is a weighted sum of all h_t, so "
        "the loss reaches each h_t directly through its attention weight, and the gradient at an early step is "
        f"no longer only a product of Jacobians. That is why the ratio is {_ratio(m)}, {reading}. Attention "
        "reduces the reliance on long-term dependencies rather than carrying the gradient through them."
    )


def _lstm(m: ModelResult, result: DemoResult) -> str:
    """The LSTM's numbers in one story: the measured forget gates, the cell state's gradient, and
    the hidden state's, whose first crossing of epsilon (the horizon) and reach can differ."""
    d = m.diagnosis
    lag, horizon, reach = d.lag_used, d.horizon[-1], d.reach[-1]
    text = (
        f"{_summary(m, result)}. An LSTM carries its memory in the cell state, c_t = f_t c_{{t-1}} + i_t g_t: "
        "along it the gradient is multiplied by the forget gate f_t, not by W_hh and a squashing derivative."
    )
    if d.keep is not None:
        mean, best = d.keep.at(lag)
        bias = m.outcomes["long"].config.forget_bias
        text += (
            f" Measured after training, the forget gates keep {mean:.2g} of the cell state over the last {lag} "
            f"steps (the mean over units of each unit's product of f_t; the best-kept unit {best:.2g})"
        )
        if bias is not None:
            text += f", where the starting bias {bias:g} alone would give sigmoid({bias:g})^{lag} = {_sigmoid(bias) ** lag:.2g}"
        text += "."
    if not math.isnan(d.cell_ratio):
        text += f" Along the cell state the gradient at lag {lag} is {d.cell_ratio:.2g} of lag 0."
    whole = " (the whole sequence)" if reach == d.seq_len - 1 else ""
    if reach > horizon:
        text += (
            f" dL/dh_t itself is {_ratio(m)} of lag 0 at lag {lag}: it first falls below epsilon ({d.epsilon:g}) of "
            f"lag 0 at lag {horizon + 1}, a memory horizon of {horizon} steps, yet it does not keep falling: it stays "
            f"near that level and reaches back {reach} steps{whole}, because h_t reads the cell state through "
            "the output gate at every step. The horizon counts the first crossing; the reach, the last lag the "
            "gradient still arrives at."
        )
    else:
        text += f" dL/dh_t itself is {_ratio(m)} of lag 0 at lag {lag}, with a memory horizon of {horizon} steps."
    return text


def _sigmoid(value: float) -> float:
    return 1 / (1 + math.exp(-value))


def _gates(models: dict[str, ModelResult], result: DemoResult) -> list[str] | None:
    found = [models[label] for label in ("LSTM (forget bias 5)", "GRU") if label in models]
    if not found:
        return None
    paragraphs = []
    if (lstm := models.get("LSTM (forget bias 5)")) is not None:
        paragraphs.append(_lstm(lstm, result))
    if (gru := models.get("GRU")) is not None:
        text = (
            f"{_summary(gru, result)}. The GRU's update gate does the same with one state: "
            "h_t = (1 - z_t) n_t + z_t h_{t-1} keeps z_t of the old state at every step"
        )
        if gru.diagnosis.keep is not None:
            lag = gru.diagnosis.lag_used
            mean, best = gru.diagnosis.keep.at(lag)
            text += f"; measured, it keeps {mean:.2g} over the last {lag} steps (the best-kept unit {best:.2g})"
        paragraphs.append(text + ". The gates learn what to keep.")
    if all(learned_long(m) for m in found):
        paragraphs[-1] += " So the polar word's information, and its gradient, survive the delay."
    return paragraphs


WRITERS = {
    "problem": _problem,
    "activation": _activation,
    "initialisation": _initialisation,
    "clipping": _clipping,
    "depth": _depth,
    "attention": _attention,
    "gates": _gates,
}


@dataclass(frozen=True)
class RemedyNote:
    """One remedy family: its heading, a lead-in (which models learned the long delay) and the paragraphs."""

    heading: str
    lead: str
    paragraphs: list[str]
    labels: list[str]


#: The models each family's note is about, in the order of the story.
FAMILY_MODELS = {
    "problem": ("sigmoid RNN",),
    "activation": ("tanh RNN", "IRNN (ReLU, identity init)", "leaky ReLU RNN + identity init"),
    "initialisation": ("sigmoid RNN + Xavier", "tanh RNN + Xavier"),
    "clipping": ("tanh RNN + clipping",),
    "depth": ("tanh RNN x3", "tanh RNN x3 + residual"),
    "attention": ("tanh RNN + attention",),
    "gates": ("LSTM (forget bias 5)", "GRU"),
}


def lead_in(found: list[ModelResult], result: DemoResult) -> str:
    """Which of ``found`` learned the long delay and which did not, e.g.
    ``At delay 50: IRNN (ReLU, identity init) learned it; tanh RNN stayed near chance.``"""
    groups: dict[str, list[str]] = {}
    for m in found:
        groups.setdefault(outcome(m.accuracy("long")), []).append(m.label)
    said = "; ".join(f"{' and '.join(labels)} {verb}" for verb, labels in groups.items())
    return f"At delay {result.settings.delays['long']}: {said}."


def remedy_notes(result: DemoResult) -> list[RemedyNote]:
    """A note for every remedy family the demo ran, in the order of the story."""
    models = result.by_label()
    notes = []
    for key, heading in REMEDIES.items():
        text = WRITERS[key](models, result)
        if text is None:
            continue
        paragraphs = text if isinstance(text, list) else [text]
        found = [models[label] for label in FAMILY_MODELS[key] if label in models]
        notes.append(RemedyNote(heading, lead_in(found, result), paragraphs, [m.label for m in found]))
    return notes


def remedy_paragraphs(result: DemoResult) -> dict[str, str]:
    """Heading -> the lead-in and paragraphs as one text, for every remedy family the demo ran."""
    return {note.heading: " ".join([note.lead, *note.paragraphs]) for note in remedy_notes(result)}
