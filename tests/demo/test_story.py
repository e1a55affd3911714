"""The demo's table, paragraphs and verdict tell one story: the LSTM's numbers read from one diagnosis; the
remedies' notes open with a lead-in; the profiles recorded while the models train reach the page, and
recording them changes nothing the demo trains."""

import dataclasses
import json
import re

import pytest
import torch

from bptt.demo.experiment import DemoSettings, run_demo
from bptt.demo.page import page_data, write_demo_page
from bptt.demo.story import lead_in, remedy_notes, remedy_paragraphs
from bptt.demo.tables import table_header, table_rows

TINY = DemoSettings(
    steps={"short": 20, "long": 40},
    delays={"short": 3, "long": 12},
    models=("sigmoid RNN", "LSTM (forget bias 5)", "GRU"),
    overrides={"hidden_size": 8, "eval_size": 32},
    extra_seeds=(),
    examples=16,
    record_every=10,
)


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return run_demo(TINY)


def test_the_lstm_row_and_its_paragraph_read_the_same_numbers(tiny):
    lstm = tiny.by_label()["LSTM (forget bias 5)"]
    d = lstm.diagnosis
    row = dict(zip(table_header(tiny), table_rows(tiny)[1]))
    lag = d.lag_used
    mean, best = d.keep.at(lag)
    assert row[f"forget / update gate kept over {lag} steps (measured)"] == f"{mean:.2g}"
    assert row[f"dL/dc ratio lag {lag} / lag 0 (LSTM)"] == f"{d.cell_ratio:.1e}"
    assert row["memory horizon: first lag below epsilon"].rstrip("+") == str(d.horizon[-1])
    assert row["reach: last lag at or above epsilon"].rstrip("+") == str(d.reach[-1])
    (gates,) = [note for note in remedy_notes(tiny) if note.heading == "LSTM and GRU"]
    paragraph = gates.paragraphs[0]
    assert f"the forget gates keep {mean:.2g} of the cell state over the last {lag} steps" in paragraph
    assert f"the best-kept unit {best:.2g}" in paragraph
    assert f"sigmoid(5)^{lag} = {(1 / (1 + 2.718281828459045**-5)) ** lag:.2g}" in paragraph  # the bias, named as such
    assert f"Along the cell state the gradient at lag {lag} is {d.cell_ratio:.2g} of lag 0" in paragraph
    assert f"{d.gradient_ratio:.1e} of lag 0 at lag {lag}" in paragraph
    assert f"memory horizon of {d.horizon[-1]} steps" in paragraph
    if d.reach[-1] > d.horizon[-1]:
        assert f"reaches back {d.reach[-1]} steps" in paragraph and f"reach of {d.reach[-1]} steps" in d.verdict()
    assert f"keep {mean:.2g} of the state over the last {lag} steps" in d.verdict()


def test_each_remedy_note_opens_with_who_learned_the_long_delay(tiny):
    notes = remedy_notes(tiny)
    assert [n.heading for n in notes] == ["The problem", "LSTM and GRU"]
    for note in notes:
        assert note.lead.startswith("At delay 12: ") and note.paragraphs
        assert all(label in note.lead for label in note.labels)
    found = [tiny.by_label()[label] for label in ("sigmoid RNN", "GRU")]
    assert re.match(r"At delay 12: .+ (learned it|stayed near chance|learned it only partly)", lead_in(found, tiny))
    assert all(text.startswith("At delay 12:") for text in remedy_paragraphs(tiny).values())


def test_the_profiles_recorded_in_training_reach_the_page(tiny, tmp_path):
    for m in tiny.models:
        # Before training and every 10 steps of the long delay's run (the short one's would add a second 10, 20).
        assert [row.step for row in m.replay] == [0, 10, 20, 30, 40]
        assert all(len(row.hidden[-1]) == m.diagnosis.seq_len for row in m.replay)
        # The last record measures the trained model on the diagnosis's batch, in float64, as the diagnosis does.
        assert m.replay[-1].hidden[-1][::-1] == pytest.approx(m.diagnosis.profile.hidden[-1].tolist(), rel=1e-9)
        assert m.replay[0].hidden != m.replay[-1].hidden
    data = page_data(tiny)
    group = data["groups"][0]
    assert group["replay"]["steps"] == [0, 10, 20, 30, 40]
    for m, key in zip(tiny.models, group["keys"]):
        first = m.replay[0].hidden[-1][::-1]
        assert group["replay"]["profiles"][key][0] == pytest.approx([v / first[0] for v in first], rel=1e-3)
        ratio = group["lag"]["profiles"][key][m.diagnosis.lag_used]
        assert ratio == pytest.approx(m.diagnosis.gradient_ratio, rel=1e-3)
    path = write_demo_page(tiny, tmp_path / "index.html")
    page = path.read_text()
    embedded = json.loads(page.split('<script type="application/json" id="bptt-data">')[1].split("</script>")[0])
    assert embedded == json.loads(json.dumps(data))
    assert (tmp_path / "explore.html").is_file() and 'href="explore.html#cell=lstm' in page
    assert page.count('class="note"') == 2 and "<strong>At delay 12:" in page
    assert (
        page.count('class="pick"') == 3 and page.count('<input type="checkbox" data-family=') == 2
    )  # plain RNNs, gated cells


def test_recording_the_replay_changes_no_number_the_demo_reports(tiny):
    quiet = run_demo(dataclasses.replace(TINY, models=("LSTM (forget bias 5)",), record_every=0))
    (lstm,) = quiet.models
    recorded = tiny.by_label()["LSTM (forget bias 5)"]
    assert lstm.replay == [] and recorded.replay
    assert list(lstm.outcomes["long"].losses) == list(recorded.outcomes["long"].losses)
    assert torch.equal(lstm.diagnosis.profile.hidden, recorded.diagnosis.profile.hidden)
