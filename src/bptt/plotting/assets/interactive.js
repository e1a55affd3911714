// The interactive layer of the demo page and the sweep report. Reads the page's data (#bptt-data):
//   models: [{key, label, family, color, dash, width}]   every series of the page
//   groups: [{id, keys, epsilon, colors?: {key: colour}, lag: {profiles: {key: [g_k / g_0 by lag]}, lags?},
//             replay: {steps: [...], lags?: [...], profiles: {key: [[g_k / g_0 at lags] or null per step]}}}]
// (lag.lags, replay.lags: the lags the values stand at, when thinned; else every lag from 0).
// Picking a model (its button, a table row, a legend entry or a curve; Enter or Space on a focused
// one) highlights it in every figure and table; a family's checkbox hides its series; a lag slider
// draws each model's g[k] / g[0]; a training-step slider replays the profiles recorded in training.
(function (root) {
  "use strict";
  const charts = root.BPTT.charts;
  const holder = document.getElementById("bptt-data");
  if (!holder) return;
  const data = JSON.parse(holder.textContent);
  const models = Object.fromEntries(data.models.map((m) => [m.key, m]));
  const state = { picked: null, hidden: new Set() };
  const PREFIX = "bptt-series--";

  function keyOf(node) {
    if (node.dataset && node.dataset.key) return node.dataset.key;
    const id = node.id || "";
    return id.startsWith(PREFIX) ? id.slice(PREFIX.length).split("--")[0] : null;
  }

  function apply() {
    const nodes = document.querySelectorAll(`[id^="${PREFIX}"], [data-key]`);
    for (const node of nodes) {
      const key = keyOf(node), model = models[key];
      if (!model) continue;
      const control = node.matches("button, tr");
      node.classList.toggle("family-off", state.hidden.has(model.family) && !node.matches("button"));
      node.classList.toggle("dimmed", state.picked !== null && key !== state.picked && !control);
      if (node.matches("tr")) node.classList.toggle("dimmed", state.picked !== null && key !== state.picked);
      if (node.matches("button.pick")) node.setAttribute("aria-pressed", String(key === state.picked));
    }
    const said = document.getElementById("picked");
    if (said) said.textContent = state.picked ? `highlighted: ${models[state.picked].label} (pick it again to clear)` : "";
  }

  function pick(key) {
    if (!models[key]) return;
    state.picked = state.picked === key ? null : key;
    apply();
  }

  function setFamily(family, shown) {
    if (shown) state.hidden.delete(family); else state.hidden.add(family);
    const box = document.querySelector(`input[data-family="${family}"]`);
    if (box) box.checked = shown;
    drawAll();
  }

  const colour = (group, key) => (group.colors && group.colors[key]) || models[key].color;
  const visible = (keys) => keys.filter((k) => models[k] && !state.hidden.has(models[k].family));

  // Each model's g[k] / g[0] at ``lag``: from the nearest kept lag at or below it when the profiles were thinned.
  function lagRatios(group, lag) {
    let index = lag;
    if (group.lag.lags) { index = 0; while (index + 1 < group.lag.lags.length && group.lag.lags[index + 1] <= lag) index++; }
    const out = {};
    for (const key of group.keys) {
      const row = group.lag.profiles[key];
      if (row) out[key] = row[Math.min(index, row.length - 1)];
    }
    return out;
  }

  function drawLag(group) {
    const input = document.getElementById(`lag-${group.id}`), box = document.getElementById(`lag-chart-${group.id}`);
    if (!input || !box) return;
    const lag = Number(input.value), ratios = lagRatios(group, lag);
    document.getElementById(`lag-value-${group.id}`).textContent = String(lag);
    charts.barChart(box, {
      title: `dL/dh at lag ${lag} / at lag 0, each model`,
      xLabel: "||dL/dh_{T-1-k}|| / ||dL/dh_{T-1}|| (log scale)",
      rows: visible(group.keys).filter((k) => k in ratios).map((k) => ({ key: k, label: models[k].label, value: ratios[k], color: colour(group, k) })),
      refs: [{ at: group.epsilon, label: `epsilon ${group.epsilon}` }, { at: 1, label: "1" }],
    });
  }

  function drawReplay(group) {
    const input = document.getElementById(`step-${group.id}`), box = document.getElementById(`replay-chart-${group.id}`);
    if (!input || !box || !group.replay) return;
    const index = Number(input.value), step = group.replay.steps[index];
    document.getElementById(`step-value-${group.id}`).textContent = String(step);
    input.setAttribute("aria-valuetext", `step ${step}`);
    const series = [];
    for (const key of visible(group.keys)) {
      const row = (group.replay.profiles[key] || [])[index];
      if (!row) continue;
      const m = models[key];
      const lags = group.replay.lags || row.map((_, k) => k);
      series.push({ key, label: m.label, xs: lags, ys: row, color: colour(group, key), dash: m.dash, width: m.width });
    }
    if (!series.length) { box.textContent = `No profile recorded at step ${step}.`; return; }
    charts.lineChart(box, {
      title: `Gradient profile during training, step ${step}`,
      xLabel: "lag k (steps back from the loss)", xName: "lag", yLabel: "g[k] / g[0]", log: true, integerX: true,
      series, hlines: [{ at: group.epsilon, color: "#888", dash: "6 3" }], onPick: pick,
    });
  }

  function drawAll() {
    for (const group of data.groups) { drawLag(group); drawReplay(group); }
    apply();
  }

  document.addEventListener("click", (event) => {
    const target = event.target.closest(`[data-key], [id^="${PREFIX}"]`);
    if (target && !target.matches(".bptt-chart ul.legend button")) pick(keyOf(target));
  });
  document.addEventListener("keydown", (event) => {
    if ((event.key === "Enter" || event.key === " ") && event.target.matches("tr[data-key]")) {
      event.preventDefault();
      pick(event.target.dataset.key);
    }
  });
  for (const box of document.querySelectorAll("input[data-family]")) box.addEventListener("change", () => setFamily(box.dataset.family, box.checked));
  for (const group of data.groups) {
    for (const [name, draw] of [["lag", drawLag], ["step", drawReplay]]) {
      const input = document.getElementById(`${name}-${group.id}`);
      if (input) input.addEventListener("input", () => { draw(group); apply(); });
    }
  }
  drawAll();
  performance.mark("bptt-first-numbers");
  charts.redrawOnResize(drawAll);
  root.BPTT.page = { pick, setFamily, lagRatios, state, data };
})(typeof window !== "undefined" ? window : globalThis);
