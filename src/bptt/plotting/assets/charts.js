// Plain-SVG charts for bptt's pages: a line chart with a log or linear y axis, and a bar chart of
// ratios on a log axis. No library: each chart is drawn at its holder's width and drawn again when
// the window is resized. Every series carries data-key, so a page can highlight one model everywhere.
(function (root) {
  "use strict";
  const NS = "http://www.w3.org/2000/svg";

  function el(name, attrs, parent, text) {
    const node = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined && v !== null) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    if (parent) parent.appendChild(node);
    return node;
  }

  // A number as the pages write it: 3 significant digits, scientific outside [1e-3, 1e4).
  function fmt(v, digits) {
    if (v === null || v === undefined || Number.isNaN(v)) return "n/a";
    if (!isFinite(v)) return v > 0 ? "inf" : "-inf";
    if (v === 0) return "0";
    const a = Math.abs(v), d = digits || 2;
    if (a >= 1e-3 && a < 1e4) return String(Number(v.toPrecision(d + 1)));
    const [m, e] = v.toExponential(d - 1).split("e");
    return `${m}e${e.startsWith("+") ? e.slice(1) : e}`;
  }

  const positive = (v) => typeof v === "number" && isFinite(v) && v > 0;

  function logTicks(lo, hi) {
    const a = Math.floor(Math.log10(lo)), b = Math.ceil(Math.log10(hi));
    const every = Math.max(1, Math.ceil((b - a) / 6));
    const ticks = [];
    for (let e = a; e <= b; e++) if ((e - a) % every === 0) { const v = Math.pow(10, e); if (v >= lo && v <= hi) ticks.push(v); }
    if (ticks.length < 2) { ticks.length = 0; for (const v of linearTicks(lo, hi, 4)) if (v > 0) ticks.push(v); }
    return ticks;
  }
  function linearTicks(lo, hi, count) {
    const span = hi - lo || 1, raw = span / (count || 5), mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => span / s <= (count || 5)) || raw;
    const ticks = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) ticks.push(Math.abs(v) < step * 1e-9 ? 0 : v);
    return ticks;
  }
  function tickText(v, log) {
    if (!log) return fmt(v, 3);
    const e = Math.log10(v);
    if (Math.abs(e - Math.round(e)) >= 1e-9) return fmt(v, 2);
    return Math.round(e) === 0 ? "1" : `1e${Math.round(e)}`;
  }

  // The title above the drawing, as text that wraps at any width.
  function title(holder, text) {
    if (!text) return;
    const node = document.createElement("p");
    node.className = "chart-title";
    node.textContent = text;
    holder.appendChild(node);
  }

  function sizeOf(holder, spec) {
    const width = Math.max(260, Math.floor(holder.clientWidth || 640));
    const height = spec.height || Math.round(Math.min(360, Math.max(220, width * 0.5)));
    return { width, height };
  }

  // spec: {title, xLabel, yLabel, log, series: [{key, label, xs, ys, color, dash, width, reference}],
  //        hlines/vlines: [{at, label, color, dash}], yRange, legend (default true), onPick(key)}
  // reference series (bounds) never move the axis: they are clipped to the data's range.
  function lineChart(holder, spec) {
    holder.textContent = "";
    holder.classList.add("bptt-chart");
    const { width, height } = sizeOf(holder, spec);
    const small = width < 480;
    const m = { left: 60, right: 14, top: 10, bottom: 42 };
    title(holder, spec.title);
    const svg = el("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": spec.title || spec.yLabel || "chart" }, holder);
    const data = spec.series.filter((s) => !s.reference);
    const xs = spec.series.flatMap((s) => s.xs);
    let x0 = Math.min(...xs), x1 = Math.max(...xs);
    if (!(x1 > x0)) { x0 -= 1; x1 += 1; }
    let ys = data.flatMap((s) => s.ys).concat((spec.hlines || []).map((h) => h.at));
    ys = spec.log ? ys.filter(positive) : ys.filter((v) => typeof v === "number" && isFinite(v));
    let [y0, y1] = spec.yRange || (ys.length ? [Math.min(...ys), Math.max(...ys)] : [1, 10]);
    if (spec.log) { y0 /= 2; y1 *= 2; if (!(y1 > y0)) { y0 /= 10; y1 *= 10; } }
    else { const pad = (y1 - y0) * 0.05 || 1; y0 -= pad; y1 += pad; }
    const yTicks = spec.log ? logTicks(y0, y1) : linearTicks(y0, y1, 5);
    // Room for the widest tick label (about 7 px a character at 12 px) and the rotated axis label.
    m.left = 24 + 7 * Math.max(3, ...yTicks.map((v) => tickText(v, spec.log).length));
    const px = (x) => m.left + ((x - x0) / (x1 - x0)) * (width - m.left - m.right);
    const py = spec.log
      ? (y) => m.top + (1 - (Math.log(y) - Math.log(y0)) / (Math.log(y1) - Math.log(y0))) * (height - m.top - m.bottom)
      : (y) => m.top + (1 - (y - y0) / (y1 - y0)) * (height - m.top - m.bottom);
    const bottom = height - m.bottom, right = width - m.right;
    const clipId = `clip-${Math.random().toString(36).slice(2)}`;
    el("rect", { x: m.left, y: m.top, width: right - m.left, height: bottom - m.top }, el("clipPath", { id: clipId }, el("defs", {}, svg)));
    const axes = el("g", { class: "axes" }, svg);
    for (const v of yTicks) {
      el("line", { x1: m.left, x2: right, y1: py(v), y2: py(v), class: "grid" }, axes);
      el("text", { x: m.left - 4, y: py(v) + 4, "text-anchor": "end", class: "tick" }, axes, tickText(v, spec.log));
    }
    for (const v of linearTicks(x0, x1, small ? 4 : 7)) {
      if (spec.integerX && Math.round(v) !== v) continue;
      el("line", { x1: px(v), x2: px(v), y1: bottom, y2: bottom + 4, class: "axis" }, axes);
      el("text", { x: px(v), y: bottom + 16, "text-anchor": "middle", class: "tick" }, axes, fmt(v, 3));
    }
    el("rect", { x: m.left, y: m.top, width: right - m.left, height: bottom - m.top, class: "frame" }, axes);
    el("text", { x: (m.left + right) / 2, y: height - 6, "text-anchor": "middle", class: "label" }, svg, spec.xLabel || "");
    el("text", { transform: `translate(12 ${(m.top + bottom) / 2}) rotate(-90)`, "text-anchor": "middle", class: "label" }, svg, spec.yLabel || "");
    const plot = el("g", { "clip-path": `url(#${clipId})` }, svg);
    for (const h of spec.hlines || []) {
      if (spec.log && !positive(h.at)) continue;
      el("line", { x1: m.left, x2: right, y1: py(h.at), y2: py(h.at), stroke: h.color || "#888", "stroke-dasharray": h.dash || "4 3", class: "rule" }, plot);
    }
    for (const v of spec.vlines || []) {
      if (!(v.at >= x0 && v.at <= x1)) continue;
      el("line", { x1: px(v.at), x2: px(v.at), y1: m.top, y2: bottom, stroke: v.color || "#888", "stroke-dasharray": v.dash || "2 3", class: "rule", "data-rule": v.name || null }, plot);
    }
    for (const s of spec.series) {
      let d = "", open = false;
      const zeros = [];
      for (let i = 0; i < s.xs.length; i++) {
        const y = s.ys[i];
        const ok = spec.log ? positive(y) : typeof y === "number" && isFinite(y);
        if (!ok) { open = false; if (spec.log && y === 0) zeros.push(s.xs[i]); continue; }
        d += `${open ? "L" : "M"}${px(s.xs[i]).toFixed(1)} ${Math.max(-1e4, Math.min(1e4, py(y))).toFixed(1)}`;
        open = true;
      }
      const group = el("g", { class: `series${s.reference ? " reference" : ""}`, "data-key": s.key }, plot);
      el("path", { d, fill: "none", stroke: s.color, "stroke-width": s.width || 1.6, "stroke-dasharray": s.dash || null }, group);
      for (const x of zeros) el("path", { d: `M${px(x) - 3} ${bottom - 6}L${px(x) + 3} ${bottom - 6}L${px(x)} ${bottom - 1}Z`, fill: s.color }, group);
    }
    addCursor(svg, spec, { px, m, bottom, right, x0, x1 }, holder);
    if (spec.legend !== false) legend(holder, spec.series.filter((s) => s.label), spec.onPick);
    return svg;
  }

  // A hover (or focus) readout: the value of every series at the nearest x.
  function addCursor(svg, spec, frame, holder) {
    const { px, m, bottom, right, x0, x1 } = frame;
    const line = el("line", { y1: m.top, y2: bottom, class: "cursor", visibility: "hidden" }, svg);
    const readout = document.createElement("div");
    readout.className = "readout";
    readout.setAttribute("aria-live", "off");
    holder.appendChild(readout);
    const zone = el("rect", { x: m.left, y: m.top, width: right - m.left, height: bottom - m.top, fill: "transparent" }, svg);
    zone.addEventListener("pointermove", (event) => {
      const box = svg.getBoundingClientRect();
      const x = x0 + ((event.clientX - box.left - m.left) / (right - m.left)) * (x1 - x0);
      const parts = [];
      let at = null;
      for (const s of spec.series) {
        if (!s.label) continue;
        let best = 0;
        for (let i = 1; i < s.xs.length; i++) if (Math.abs(s.xs[i] - x) < Math.abs(s.xs[best] - x)) best = i;
        at = s.xs[best];
        parts.push(`${s.label}: ${fmt(s.ys[best], 3)}`);
      }
      if (at === null) return;
      line.setAttribute("x1", px(at)); line.setAttribute("x2", px(at)); line.setAttribute("visibility", "visible");
      readout.textContent = `${spec.xName || spec.xLabel || "x"} ${fmt(at, 3)}: ${parts.join("; ")}`;
    });
    zone.addEventListener("pointerleave", () => { line.setAttribute("visibility", "hidden"); readout.textContent = ""; });
  }

  function legend(holder, series, onPick) {
    const list = document.createElement("ul");
    list.className = "legend";
    for (const s of series) {
      const item = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.key = s.key;
      button.className = "pick";
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.borderTop = `${Math.max(2, s.width || 2)}px ${s.dash ? "dashed" : "solid"} ${s.color}`;
      button.append(swatch, document.createTextNode(s.label));
      if (onPick) button.addEventListener("click", () => onPick(s.key));
      else button.disabled = true;
      item.appendChild(button);
      list.appendChild(item);
    }
    holder.appendChild(list);
  }

  // rows: [{key, label, value, color}] drawn as horizontal bars on a log axis; refs: [{at, label}].
  function barChart(holder, spec) {
    holder.textContent = "";
    holder.classList.add("bptt-chart");
    const width = Math.max(260, Math.floor(holder.clientWidth || 640));
    const small = width < 520, rowHeight = 22;
    const labelWidth = small ? 0 : Math.min(230, width * 0.32);
    const m = { left: labelWidth + 8, right: 70, top: 8 + (spec.refs && spec.refs.length ? 14 : 0), bottom: 36 };
    title(holder, spec.title);
    const rowsHeight = spec.rows.length * (small ? rowHeight + 14 : rowHeight);
    const height = m.top + rowsHeight + m.bottom;
    const svg = el("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": spec.title || "bar chart" }, holder);
    const values = spec.rows.map((r) => r.value).filter(positive).concat((spec.refs || []).map((r) => r.at));
    let lo = Math.min(...values, 1), hi = Math.max(...values, 1);
    lo /= 3; hi *= 3;
    const px = (v) => m.left + ((Math.log(v) - Math.log(lo)) / (Math.log(hi) - Math.log(lo))) * (width - m.left - m.right);
    const bottom = m.top + rowsHeight;
    for (const v of logTicks(lo, hi)) {
      el("line", { x1: px(v), x2: px(v), y1: m.top, y2: bottom, class: "grid" }, svg);
      el("text", { x: px(v), y: bottom + 14, "text-anchor": "middle", class: "tick" }, svg, tickText(v, true));
    }
    el("text", { x: (m.left + width - m.right) / 2, y: height - 4, "text-anchor": "middle", class: "label" }, svg, spec.xLabel || "");
    spec.rows.forEach((r, i) => {
      const top = m.top + i * (small ? rowHeight + 14 : rowHeight);
      const barTop = small ? top + 13 : top + 3;
      const group = el("g", { class: "series bar", "data-key": r.key }, svg);
      el("text", { x: small ? m.left : labelWidth, y: small ? top + 10 : top + 15, "text-anchor": small ? "start" : "end", class: "tick" }, group, r.label);
      const ok = positive(r.value);
      if (ok) el("rect", { x: px(lo), y: barTop, width: Math.max(1, px(r.value) - px(lo)), height: rowHeight - 8, fill: r.color }, group);
      el("text", { x: ok ? px(r.value) + 4 : px(lo) + 4, y: barTop + rowHeight - 10, class: "value", "data-value": r.key }, group, ok ? fmt(r.value, 2) : r.value === 0 ? "0 (vanished)" : "n/a");
    });
    (spec.refs || []).forEach((r, i) => {
      el("line", { x1: px(r.at), x2: px(r.at), y1: m.top, y2: bottom, class: "rule", stroke: "#777", "stroke-dasharray": "4 3" }, svg);
      // Labels alternate sides of their line, so two close lines keep both readable.
      el("text", { x: px(r.at) + (i % 2 ? 3 : -3), y: m.top - 2, "text-anchor": i % 2 ? "start" : "end", class: "tick" }, svg, r.label);
    });
    return svg;
  }

  // Draw again at the new width when the window is resized (once per animation frame).
  function redrawOnResize(draw) {
    let pending = false, lastWidth = window.innerWidth;
    window.addEventListener("resize", () => {
      if (pending || window.innerWidth === lastWidth) return;
      pending = true;
      requestAnimationFrame(() => { pending = false; lastWidth = window.innerWidth; draw(); });
    });
  }

  root.BPTT = root.BPTT || {};
  root.BPTT.charts = { lineChart, barChart, fmt, redrawOnResize, logTicks, linearTicks };
})(typeof window !== "undefined" ? window : globalThis);
