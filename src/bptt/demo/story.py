"""The demo's story in words: what each remedy family did to the measured numbers, and why.

Each paragraph gives the numbers this run measured, then the mechanism in the
words of the notes (the derivative of the activation, the chain rule over many
steps, the gates). Every verb that depends on the outcome ("learned it", "stayed
near chance", "vanished") is read from the numbers, so the text never claims
what the table does not show.
"""

from __future__ import annotations

import math

from bptt.demo.experiment import DemoResult, ModelResult, format_accuracy
from bptt.diagnostics.diagnosis import format_share

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


def _activation(models: dict[str, ModelResult], result: DemoResult) -> str | None:
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
    return ". ".join(parts) + "." if parts else None


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


def _gates(models: dict[str, ModelResult], result: DemoResult) -> str | None:
    found = [models[label] for label in ("LSTM (forget bias 5)", "GRU") if label in models]
    if not found:
        return None
    words = result.settings.delays["long"]
    text = (
        f"{'; '.join(_summary(m, result) for m in found)}. An LSTM carries its memory in the cell state, "
        "c_t = f_t c_{t-1} + i_t g_t: along it the gradient is multiplied by the forget gate f_t, not by W_hh "
        "and a squashing derivative at every step."
    )
    if (lstm := models.get("LSTM (forget bias 5)")) is not None:
        bias = lstm.outcomes["long"].config.forget_bias
        gate = 1 / (1 + math.exp(-bias))
        text += (
            f" Its forget-gate bias starts at {bias:g}: f = {gate:.3f} per step, {gate**words:.2g} after "
            f"{words} words, where a bias of 1 would give {1 / (1 + math.exp(-1)):.2f} per step and "
            f"{(1 / (1 + math.exp(-1))) ** words:.1g}."
        )
    text += " The GRU's update gate does the same with one state: the gates learn what to keep."
    if all(learned_long(m) for m in found):
        text += " So the polar word's information, and its gradient, survive the delay."
    return text


WRITERS = {
    "problem": _problem,
    "activation": _activation,
    "initialisation": _initialisation,
    "clipping": _clipping,
    "depth": _depth,
    "attention": _attention,
    "gates": _gates,
}


def remedy_paragraphs(result: DemoResult) -> dict[str, str]:
    """Heading -> paragraph for every remedy family the demo ran, in the order of the story."""
    models = result.by_label()
    paragraphs = {}
    for key, heading in REMEDIES.items():
        text = WRITERS[key](models, result)
        if text is not None:
            paragraphs[heading] = text
    return paragraphs
