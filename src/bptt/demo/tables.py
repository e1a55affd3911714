"""The demo's tables and the words beside its figures, read from the measured numbers.

``table_rows`` is the demo's one table (printed in the terminal and on the page):
accuracy at both delays, the memory horizon (the first lag where dL/dh falls below
epsilon of lag 0) beside the reach (the last lag at or above it), the gradient ratio
at the long delay, along dL/dh and, for an LSTM, along the cell state dL/dc, the
measured product of a gated cell's keep gate over the delay, and the steps to converge.
"""

from __future__ import annotations

import math

from bptt.demo.experiment import DemoResult, ModelResult, format_accuracy
from bptt.diagnostics.diagnosis import Diagnosis
from bptt.plotting.axes import data_limits
from bptt.plotting.html import Table

IMPACTS_TITLE = "The six impacts of the vanishing gradient, measured"


def _steps(value: int | None) -> str:
    return "never" if value is None else str(value)


def _sci(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.1e}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{100 * value:.0f} %"


def title(result: DemoResult) -> str:
    return "The vanishing gradient, shown" + (" (quick version)" if result.settings.quick_version else "")


def _keep_name(result: DemoResult) -> str:
    gates = {m.diagnosis.keep.gate for m in result.models if m.diagnosis.keep is not None}
    return " / ".join(sorted(gates)) or "keep"


def table_header(result: DemoResult) -> tuple[str, ...]:
    short, long = result.settings.delays["short"], result.settings.delays["long"]
    lag = result.models[0].diagnosis.lag_used if result.models else long
    return (
        "model",
        f"accuracy, delay {short}",
        f"accuracy, delay {long}",
        "memory horizon: first lag below epsilon",
        "reach: last lag at or above epsilon",
        f"dL/dh ratio lag {lag} / lag 0",
        f"dL/dc ratio lag {lag} / lag 0 (LSTM)",
        f"{_keep_name(result)} gate kept over {lag} steps (measured)",
        "steps to converge (short / long)",
    )


def _lags(value: int, d: Diagnosis) -> str:
    return f"{value}" + ("+" if value == d.seq_len - 1 else "")


def table_row(m: ModelResult) -> list[str]:
    d = m.diagnosis
    keep = "-" if d.keep is None else f"{d.keep.at(d.lag_used)[0]:.2g}"
    return [
        m.label,
        format_accuracy(m.accuracy("short")),
        format_accuracy(m.accuracy("long")),
        _lags(d.horizon[-1], d),
        _lags(d.reach[-1], d),
        _sci(d.gradient_ratio),
        "-" if math.isnan(d.cell_ratio) else _sci(d.cell_ratio),
        keep,
        f"{_steps(m.steps_to_converge('short'))} / {_steps(m.steps_to_converge('long'))}",
    ]


def table_rows(result: DemoResult) -> list[list[str]]:
    """The demo's one table: accuracy short/long, horizon and reach, the gradient ratios along h and c,
    the measured keep gate over the delay, steps to converge."""
    return [table_row(m) for m in result.models]


def jacobian_text(diagnoses: dict[str, Diagnosis]) -> list[str]:
    """What the Jacobian figure shows, read from the same numbers the figure draws."""
    lines = [
        "Every backward step multiplies the gradient by the step Jacobian J_t = dh_t/dh_{t-1} = "
        "diag(act'(a_t)) W_hh, so ||J_t||_2 <= gamma sigma_max(W_hh) (gamma = 1/4 for sigmoid, 1 for tanh and "
        "ReLU) and the product of k steps is at most (gamma sigma_max(W_hh))^k: the dotted bound on the right. "
        "Pascanu et al.'s condition is sufficient: when gamma sigma_max(W_hh) < 1 the bound shrinks and the "
        "gradient must vanish; above 1 the bound grows and guarantees nothing either way."
    ]
    top = data_limits([d.chain.product_norm.tolist() for d in diagnoses.values()] + [[1.0]])
    for label, d in diagnoses.items():
        chain = d.chain
        k = min(d.lag_used, len(chain.product_norm))
        product = float(chain.product_norm[k - 1]) if k > 0 else math.nan
        share, median = chain.shrinking_share(), float(chain.step_gains.median())
        measured = (
            f"the measured product (solid) is {_sci(product)} at k = {k}; sigma_max(J_t) < 1 at "
            f"{100 * share:.0f} % of steps (median {median:.2g}, left)"
        )
        condition = chain.condition
        if not condition.applies:
            lines.append(
                f"{label}: a gated cell, so no bound is drawn (its gates, not W_hh alone, set J_t); {measured}."
            )
            continue
        slope = condition.gamma * condition.sigma_max
        if condition.vanishing_guaranteed:
            reading = (
                f"gamma sigma_max(W_hh) = {slope:.2g} < 1, so the bound shrinks with k and the gradient must vanish"
            )
        else:
            leaves = top is not None and chain.bound is not None and float(chain.bound.max()) > top[1]
            reading = (
                f"gamma sigma_max(W_hh) = {slope:.2g} >= 1, so the bound grows with k"
                + (" (its dotted line leaves the top of the axis)" if leaves else "")
                + " and guarantees nothing"
            )
            if product < d.epsilon:
                reading += (
                    "; yet the product shrinks: most single steps already shrink every direction (act'(a_t) "
                    "far below gamma)"
                    if share >= 0.5
                    else "; yet the product shrinks although most single steps can grow some direction: saturated "
                    "units (act' near 0) pass almost nothing back, so what one step grows, later steps shrink"
                )
        lines.append(f"{label}: sigma_max(W_hh) = {condition.sigma_max:.3g}; {reading}; {measured}.")
    return lines


def impacts_tables(result: DemoResult) -> list[Table]:
    """The six impacts as tables: per model, across seeds, and through depth."""
    impacts = result.impacts()
    short, long = result.settings.delays["short"], result.settings.delays["long"]
    per_model = Table(
        (
            "model",
            f"slow convergence: steps to half the baseline (delay {short} / {long})",
            f"long-term dependencies: accuracy (delay {short} / {long})",
            "overemphasis on recent data: input contribution from the last 10 words",
            "instability: output change per relative input change",
        ),
        [
            [
                m.label,
                "{} / {}".format(*(_steps(v) for v in impacts["slow_convergence"][m.label])),
                "{} / {}".format(*(format_accuracy(v) for v in impacts["long_term_dependencies"][m.label])),
                _pct(impacts["recent_input_share"][m.label]),
                f"{impacts['sensitivity'][m.label]:.2g}",
            ]
            for m in result.models
        ],
        IMPACTS_TITLE,
    )
    models = result.by_label()
    seeds = Table(
        ("model", "seeds", "local minima: seeds stuck at the baseline", "instability: accuracy mean (min-max)"),
        [
            [
                label,
                str(len(models[label].seed_outcomes) + 1),
                _pct(impacts["local_minima"][label]),
                f"{_pct(spread.mean)} ({_pct(spread.low)}-{_pct(spread.high)})",
            ]
            for label, spread in impacts["seed_spread"].items()
        ],
        f"Across seeds at delay {long}",
    )
    tables = [per_model, seeds]
    if impacts["depth_bottom_to_top"]:
        tables.append(
            Table(
                ("model", "difficulty with depth: ||dL/dW_ih|| of layer 0 / layer 2"),
                [[label, _sci(v)] for label, v in impacts["depth_bottom_to_top"].items()],
                "Through depth (3 stacked layers)",
            )
        )
    return tables
