// The explorable's page: controls in, numbers, one sentence and four charts out. Everything but the
// singular values is computed and drawn at once on every change; the singular values of the step
// Jacobians follow in slices of a few milliseconds, so the page never stops answering.
(function (root) {
  "use strict";
  const { mechanism, charts } = root.BPTT;
  const fmt = charts.fmt;
  const config = JSON.parse(document.getElementById("bptt-explore-config").textContent);
  const NUMERIC = ["hidden_size", "seq_len", "spectral_norm", "input_scale", "clip", "seed", "lag", "step"];
  const settings = { ...config.defaults, clip: config.defaults.clip || 0, step: config.defaults.seq_len - 1 };
  let analysis = null, generation = 0, firstDrawn = false, waiting = [];

  // -- settings from the URL's hash and the controls -----------------------------------------
  function fromHash() {
    const params = new URLSearchParams(location.hash.slice(1));
    for (const [key, value] of params) {
      if (!(key in settings)) continue;
      settings[key] = NUMERIC.includes(key) ? Number(value) : value;
    }
  }
  function toHash() {
    const params = new URLSearchParams();
    for (const key of ["cell", "init", "hidden_size", "seq_len", "spectral_norm", "input_scale", "clip", "seed", "lag"]) params.set(key, settings[key]);
    try { history.replaceState(null, "", `#${params}`); } catch (error) { /* a page without history (file:// in some browsers) */ }
  }
  function clamp() {
    const T = settings.seq_len = Math.max(2, Math.min(config.limits.seq_len, Math.round(settings.seq_len) || 2));
    settings.hidden_size = Math.max(1, Math.min(config.limits.hidden_size, Math.round(settings.hidden_size) || 1));
    settings.lag = Math.max(1, Math.min(T - 1, Math.round(settings.lag) || 1));
    settings.step = Math.max(0, Math.min(T - 1, Math.round(settings.step) || 0));
    settings.seed = Math.max(0, Math.min(4294967295, Math.floor(settings.seed) || 0));
    settings.spectral_norm = settings.spectral_norm > 0 ? Math.min(config.limits.spectral_norm, settings.spectral_norm) : 0.05;
    settings.input_scale = settings.input_scale >= 0 ? Math.min(config.limits.input_scale, settings.input_scale) : 0;
    if (!(settings.clip >= 0)) settings.clip = 0;
    if (!(config.inits.includes(settings.init))) settings.init = config.defaults.init;
    if (!(settings.cell in config.cells)) settings.cell = config.defaults.cell;
  }
  function showControls() {
    for (const key of Object.keys(settings)) {
      const input = document.getElementById(key);
      if (!input) continue;
      if (key === "lag" || key === "step") input.max = String(settings.seq_len - 1);
      input.value = String(settings[key]);
      const out = document.getElementById(`${key}-value`);
      if (out) out.textContent = key === "clip" && !settings.clip ? "off" : String(settings[key]);
      if (input.type === "range") input.setAttribute("aria-valuetext", out ? out.textContent : String(settings[key]));
    }
  }
  function modelSettings() {
    return { cell: settings.cell, hidden_size: settings.hidden_size, seq_len: settings.seq_len, spectral_norm: settings.spectral_norm,
      init: settings.init, input_scale: settings.input_scale, clip: settings.clip > 0 ? settings.clip : null, seed: settings.seed, lag: settings.lag };
  }

  // -- the sentence --------------------------------------------------------------------------
  function sentence(a) {
    const n = a.numbers, k = a.lag, cell = settings.cell, name = config.cells[cell];
    const r = n.ratio, eps = mechanism.EPSILON;
    const state = r < eps ? "it has vanished" : r > 1 / eps ? "it has exploded" : r < 1 ? "it survives" : "it has grown";
    let text = `At lag ${k} the gradient is ${fmt(r)} of lag 0 (${state}): `;
    const sigma = n.spectral_norms[0];
    if (!(cell in mechanism.GATES)) {
      const gs = a.gamma * sigma;
      const why = { sigmoid: "sigmoid's derivative is at most 1/4", tanh: "tanh's derivative is at most 1, less where units saturate",
        relu: "ReLU's derivative is 1 where a unit is active and 0 where it is not", leaky_relu: "leaky ReLU's derivative is 1 or 0.01" }[cell];
      text += `${why}, and over the last ${k} steps the mean |act'| multiplies to ${fmt(n.factor_mean[k])}. `;
      text += gs < 1
        ? `With sigma_max(W_hh) = ${fmt(sigma, 3)}, each step keeps at most gamma sigma_max = ${fmt(gs, 3)} of it: Pascanu's condition holds, so it must vanish.`
        : `gamma sigma_max(W_hh) = ${fmt(gs, 3)} >= 1: Pascanu's bound allows growth and decides nothing; ` +
          (r < eps ? "the small factors (saturated or inactive units) make it vanish all the same."
            : r > 1 / eps ? "here W_hh's growth wins over the factors, and it explodes."
              : "here W_hh's growth and the factors roughly balance.");
    } else {
      // The gate's own path keeps what the product of the gates keeps; what else arrives came through W_hh.
      const keep = n.factor_mean[k], best = n.factor_max[k], lstm = cell === "lstm";
      const gate = lstm ? "forget gates" : "update gates", state = lstm ? "c" : "the state";
      const path = lstm ? "the cell state" : "the direct path h_{t-1} -> h_t";
      const cellRatio = lstm ? `; dL/dc at lag ${k} is ${fmt(n.cell[k] / n.cell[0])} of lag 0` : "";
      if (keep >= eps) {
        text += `${path} carries it: the ${gate} keep ${fmt(keep)} of ${state} over those ${k} steps (the best-kept unit ${fmt(best)})${cellRatio}.`;
      } else {
        text += `the ${gate} keep only ${fmt(keep)} of ${state} over those ${k} steps (the best-kept unit ${fmt(best)}), so ${path} alone loses it${cellRatio}`;
        text += r >= eps ? `: what arrives came back through W_hh, whose scale sigma_max = ${fmt(sigma, 3)} you set.` : ".";
      }
    }
    text += ` Memory horizon ${n.horizon} step${n.horizon === 1 ? "" : "s"}`;
    text += n.reach > n.horizon ? `, yet the gradient comes back above epsilon: reach ${n.reach} steps.` : ".";
    if (settings.clip > 0) {
      text += n.clip_factor < 1
        ? ` Clipping at ${fmt(settings.clip, 3)} scales the whole gradient (||dL/dtheta|| = ${fmt(n.grad_norm, 3)}) by ${fmt(n.clip_factor, 3)}: every lag alike, so the ratio is unchanged.`
        : ` ||dL/dtheta|| = ${fmt(n.grad_norm, 3)} is under the clipping threshold ${fmt(settings.clip, 3)}: clipping does nothing.`;
    }
    return text;
  }

  function readouts(a) {
    const n = a.numbers, k = a.lag, gated = settings.cell in mechanism.GATES;
    const set = (name, text) => { document.getElementById(`readout-${name}`).textContent = text; };
    set("ratio", fmt(n.ratio, 3));
    set("horizon", `${n.horizon} steps`);
    set("reach", `${n.reach} steps`);
    set("sigma", `${n.spectral_norms.map((v) => fmt(v, 3)).join(", ")} (${n.natural_norms.map((v) => fmt(v, 3)).join(", ")})`);
    set("gamma_sigma", gated ? "gated cell: no bound" : fmt(a.gamma * n.spectral_norms[0], 3));
    set("factor", `${fmt(n.factor_mean[k], 3)} / ${fmt(n.factor_max[k], 3)}`);
    set("cell_ratio", n.cell ? fmt(n.cell[k] / n.cell[0], 3) : "LSTM only");
    set("grad_norm", `${fmt(n.grad_norm, 3)} (x ${fmt(n.clip_factor, 3)})`);
    const rows = n.singular_values;
    set("step_sigma", rows && rows.length === settings.seq_len
      ? `${fmt(rows[settings.step][0], 3)} / ${fmt(rows[settings.step][rows[settings.step].length - 1], 3)}` : "computing");
  }

  // -- the charts ----------------------------------------------------------------------------
  const lagsOf = (values) => values.map((_, k) => k);
  function drawProfile(a) {
    const n = a.numbers, lags = lagsOf(n.profile), eps = mechanism.EPSILON;
    const series = [{ key: "h", label: "||dL/dh_t||", xs: lags, ys: n.profile, color: "#1f4e9c", width: 2.2 }];
    if (n.cell) series.push({ key: "c", label: "||dL/dc_t|| (cell state)", xs: lags, ys: n.cell, color: "#2ca02c", width: 2, dash: "2 3" });
    if (n.bound) series.push({ key: "bound", label: "Pascanu's bound g[0] (gamma sigma_max)^k", xs: lags, ys: n.bound, color: "#d62728", dash: "2 3", width: 1.4, reference: true });
    if (n.clip_factor < 1) series.push({ key: "clipped", label: "after clipping", xs: lags, ys: n.profile.map((v) => v * n.clip_factor), color: "#ff7f0e", dash: "6 3", width: 1.4 });
    charts.lineChart(document.getElementById("chart-profile"), {
      title: "Gradient profile by lag", xLabel: "lag k (steps back from the loss)", xName: "lag", yLabel: "||dL/dh_t||",
      log: true, integerX: true, series,
      hlines: [{ at: eps * n.profile[0], color: "#888", dash: "6 3" }],
      vlines: [{ at: a.lag, name: "lag", color: "#444" }, { at: n.horizon, name: "horizon", color: "#d62728" }, { at: n.reach, name: "reach", color: "#2ca02c" }],
    });
  }
  function drawFactors(a) {
    const n = a.numbers, lags = lagsOf(n.factor_mean), gated = settings.cell in mechanism.GATES;
    const what = settings.cell === "lstm" ? "forget gate f_t" : settings.cell === "gru" ? "update gate z_t" : "|act'(a_t)|";
    const series = [
      { key: "mean", label: gated ? `${what}: mean over units` : `mean_i ${what}`, xs: lags, ys: n.factor_mean, color: "#1f4e9c", width: 2 },
      { key: "max", label: gated ? `${what}: best-kept unit` : `max_i ${what}`, xs: lags, ys: n.factor_max, color: "#ff7f0e", width: 1.6, dash: "6 3" },
    ];
    if (!gated) series.push({ key: "gamma", label: "gamma^k", xs: lags, ys: lags.map((k) => Math.pow(a.gamma, k)), color: "#d62728", dash: "2 3", reference: true });
    charts.lineChart(document.getElementById("chart-factors"), {
      title: `Product over the last k steps: ${what}`, xLabel: "lag k", xName: "lag", yLabel: "product", log: true, integerX: true, series,
    });
  }
  function drawSteps(a) {
    const rows = a.numbers.singular_values, box = document.getElementById("chart-steps");
    if (!rows || rows.length < settings.seq_len) { box.textContent = "Singular values: computing..."; return; }
    const steps = rows.map((_, t) => t);
    charts.lineChart(box, {
      title: "Singular values of dh_t/dh_{t-1}, by step", xLabel: "step t", xName: "step", yLabel: "singular value", log: true, integerX: true,
      series: [
        { key: "max", label: "sigma_max", xs: steps, ys: rows.map((r) => r[0]), color: "#1f4e9c", width: 2 },
        { key: "median", label: "median", xs: steps, ys: rows.map((r) => r[Math.floor(r.length / 2)]), color: "#6f6f6f", width: 1.4 },
        { key: "min", label: "sigma_min", xs: steps, ys: rows.map((r) => r[r.length - 1]), color: "#ff7f0e", width: 1.4, dash: "6 3" },
      ],
      hlines: [{ at: 1, color: "#888", dash: "6 3" }], vlines: [{ at: settings.step, name: "step", color: "#444" }],
    });
    const row = rows[settings.step];
    charts.lineChart(document.getElementById("chart-spectrum"), {
      title: `All singular values at step ${settings.step}`, xLabel: "index i (largest first)", xName: "i", yLabel: "sigma_i", log: true, integerX: true,
      series: [{ key: "spectrum", label: `sigma_i(dh_t/dh_{t-1}), t = ${settings.step}`, xs: row.map((_, i) => i), ys: row, color: "#1f4e9c", width: 2 }],
      hlines: [{ at: 1, color: "#888", dash: "6 3" }],
    });
  }

  // -- computing -----------------------------------------------------------------------------
  function compute() {
    const mine = ++generation;
    analysis = mechanism.analyse(modelSettings());
    document.getElementById("sentence").textContent = sentence(analysis);
    readouts(analysis);
    drawProfile(analysis);
    drawFactors(analysis);
    drawSteps(analysis);
    if (!firstDrawn) { firstDrawn = true; performance.mark("bptt-first-numbers"); }
    const status = document.getElementById("status"), T = settings.seq_len;
    const slice = () => {
      if (mine !== generation) return;
      const started = performance.now();
      let done = (analysis.numbers.singular_values || []).length;
      while (done < T && performance.now() - started < 12) { mechanism.singularValuesOfSteps(analysis, done, done + 1); done++; }
      if (done < T) { status.textContent = `singular values: ${done} of ${T} steps`; setTimeout(slice, 0); return; }
      status.textContent = "";
      readouts(analysis);
      drawSteps(analysis);
      if (pending) return; // a newer setting is on its way: its numbers answer the waiting
      const resolved = waiting; waiting = [];
      for (const resolve of resolved) resolve(analysis.numbers);
    };
    setTimeout(slice, 0);
  }
  let pending = false;
  function schedule() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; clamp(); showControls(); toHash(); compute(); });
  }

  function bind() {
    for (const key of Object.keys(settings)) {
      const input = document.getElementById(key);
      if (!input) continue;
      input.addEventListener(input.tagName === "SELECT" ? "change" : "input", () => {
        if (input.type === "number" && input.value === "") return;
        settings[key] = NUMERIC.includes(key) ? Number(input.value) : input.value;
        if (key === "step" && analysis && analysis.numbers.singular_values && analysis.numbers.singular_values.length === settings.seq_len) {
          clamp(); showControls(); readouts(analysis); drawSteps(analysis); return;
        }
        schedule();
      });
    }
    document.getElementById("reseed").addEventListener("click", () => { settings.seed = (Math.imul(settings.seed, 2654435761) + 12345) >>> 0; schedule(); });
    document.getElementById("reset").addEventListener("click", () => { Object.assign(settings, config.defaults, { clip: config.defaults.clip || 0, step: config.defaults.seq_len - 1 }); schedule(); });
    window.addEventListener("hashchange", () => { fromHash(); schedule(); });
    charts.redrawOnResize(() => { if (analysis) { drawProfile(analysis); drawFactors(analysis); drawSteps(analysis); } });
  }

  fromHash();
  clamp();
  showControls();
  bind();
  compute();
  root.BPTT.explore = {
    settings: () => ({ ...modelSettings(), step: settings.step }),
    numbers: () => analysis.numbers,
    // A promise of the numbers once every singular value is in (at once when they already are).
    whenComplete: () => new Promise((resolve) => {
      if (analysis && analysis.numbers.singular_values && analysis.numbers.singular_values.length === settings.seq_len && !pending) resolve(analysis.numbers);
      else waiting.push(resolve);
    }),
  };
})(typeof window !== "undefined" ? window : globalThis);
