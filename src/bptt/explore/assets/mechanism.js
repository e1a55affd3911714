// The explorable's mechanism in float64: the weight generator, one recurrent layer's forward and
// backward through time, its step Jacobians, and every number the page shows. The same generator,
// cells and numbers as bptt.explore (weights.py, numbers.py), which the page is tested against.
(function (root) {
  "use strict";
  const GOLDEN = 0x9e3779b9;
  const STREAMS = { weight_ih: 1, weight_hh: 2, bias_ih: 3, bias_hh: 4, readout: 5, inputs: 6 };
  const INPUT_SIZE = 4, NEGATIVE_SLOPE = 0.01, FORGET_BIAS = 1, EPSILON = 1e-3;
  const GATES = { lstm: 4, gru: 3 };
  const GAMMA = { sigmoid: 0.25, tanh: 1, relu: 1, leaky_relu: 1 };

  // -- the generator: murmur3's finaliser over a Weyl sequence, one stream per tensor ------------
  function fmix32(z) {
    z = (z ^ (z >>> 16)) >>> 0;
    z = Math.imul(z, 0x85ebca6b) >>> 0;
    z = (z ^ (z >>> 13)) >>> 0;
    z = Math.imul(z, 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  }
  function symmetric(seed, stream, count) {
    const key = fmix32((seed + Math.imul(GOLDEN, STREAMS[stream])) >>> 0);
    const out = new Float64Array(count);
    for (let n = 0; n < count; n++) {
      const draw = fmix32((key + Math.imul(GOLDEN, n + 1)) >>> 0);
      out[n] = 2 * (draw / 4294967296) - 1;
    }
    return out;
  }

  // -- the network (torch.nn's layout, row-major) ------------------------------------------------
  function gramSchmidt(rows, H) { // the rows of an H x H block made orthonormal, in order
    const q = Float64Array.from(rows);
    for (let i = 0; i < H; i++) {
      for (let j = 0; j < i; j++) {
        let dot = 0;
        for (let c = 0; c < H; c++) dot += q[j * H + c] * q[i * H + c];
        for (let c = 0; c < H; c++) q[i * H + c] -= dot * q[j * H + c];
      }
      let sq = 0;
      for (let c = 0; c < H; c++) sq += q[i * H + c] * q[i * H + c];
      const norm = Math.sqrt(sq);
      for (let c = 0; c < H; c++) q[i * H + c] /= norm;
    }
    return q;
  }

  function makeNetwork(settings) {
    const H = settings.hidden_size, I = INPUT_SIZE, G = GATES[settings.cell] || 1, T = settings.seq_len;
    const seed = settings.seed >>> 0, init = settings.init;
    const standard = 1 / Math.sqrt(H), xavierIh = Math.sqrt(6 / (I + H)), xavierHh = Math.sqrt(6 / (2 * H));
    const weightIh = symmetric(seed, "weight_ih", G * H * I);
    const ihScale = init === "xavier" || init === "orthogonal" ? xavierIh : standard;
    for (let n = 0; n < weightIh.length; n++) weightIh[n] *= ihScale;
    const raw = symmetric(seed, "weight_hh", G * H * H);
    const weightHh = new Float64Array(G * H * H), natural = [];
    for (let g = 0; g < G; g++) {
      let block = raw.subarray(g * H * H, (g + 1) * H * H);
      if (init === "random") block = block.map((v) => v * standard);
      else if (init === "xavier") block = block.map((v) => v * xavierHh);
      else if (init === "orthogonal") block = gramSchmidt(block, H);
      else { block = new Float64Array(H * H); for (let i = 0; i < H; i++) block[i * H + i] = 1; }
      const norm = root.BPTT.linalg.spectralNorm(block, H);
      natural.push(norm);
      const scale = settings.spectral_norm / norm;
      for (let n = 0; n < H * H; n++) weightHh[g * H * H + n] = block[n] * scale;
    }
    let biasIh, biasHh;
    if (init === "random") {
      biasIh = symmetric(seed, "bias_ih", G * H).map((v) => v * standard);
      biasHh = symmetric(seed, "bias_hh", G * H).map((v) => v * standard);
    } else {
      biasIh = new Float64Array(G * H); biasHh = new Float64Array(G * H);
    }
    if (settings.cell === "lstm") for (let i = H; i < 2 * H; i++) biasIh[i] += FORGET_BIAS;
    const inputs = symmetric(seed, "inputs", T * I).map((v) => settings.input_scale * v);
    return { settings, H, I, G, T, weightIh, weightHh, biasIh, biasHh, readout: symmetric(seed, "readout", H), inputs, natural };
  }

  // -- activations ------------------------------------------------------------------------------
  const sigmoid = (a) => 1 / (1 + Math.exp(-a));
  function activate(cell, a) {
    if (cell === "sigmoid") return sigmoid(a);
    if (cell === "tanh") return Math.tanh(a);
    if (cell === "relu") return a > 0 ? a : 0;
    return a > 0 ? a : NEGATIVE_SLOPE * a;
  }
  function derivative(cell, a, h) { // act'(a), read off h where bptt reads it
    if (cell === "sigmoid") return h * (1 - h);
    if (cell === "tanh") return 1 - h * h;
    if (cell === "relu") return h > 0 ? 1 : 0;
    return a > 0 ? 1 : NEGATIVE_SLOPE;
  }

  // pre[t] (G*H) = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh, kept split as p (input) and u (recurrent).
  function forward(net) {
    const { H, I, G, T, settings } = net, cell = settings.cell, GH = G * H;
    const h = new Float64Array((T + 1) * H), c = new Float64Array((T + 1) * H); // row 0: the zero state
    const p = new Float64Array(T * GH), u = new Float64Array(T * GH), gates = new Float64Array(T * GH);
    for (let t = 0; t < T; t++) {
      const hp = t * H, o = t * GH;
      for (let r = 0; r < GH; r++) {
        let sx = net.biasIh[r], sh = net.biasHh[r];
        for (let i = 0; i < I; i++) sx += net.weightIh[r * I + i] * net.inputs[t * I + i];
        for (let j = 0; j < H; j++) sh += net.weightHh[r * H + j] * h[hp + j];
        p[o + r] = sx; u[o + r] = sh;
      }
      const hn = (t + 1) * H;
      if (cell === "lstm") {
        for (let j = 0; j < H; j++) {
          const ig = sigmoid(p[o + j] + u[o + j]), fg = sigmoid(p[o + H + j] + u[o + H + j]);
          const gg = Math.tanh(p[o + 2 * H + j] + u[o + 2 * H + j]), og = sigmoid(p[o + 3 * H + j] + u[o + 3 * H + j]);
          gates[o + j] = ig; gates[o + H + j] = fg; gates[o + 2 * H + j] = gg; gates[o + 3 * H + j] = og;
          c[hn + j] = fg * c[hp + j] + ig * gg;
          h[hn + j] = og * Math.tanh(c[hn + j]);
        }
      } else if (cell === "gru") {
        for (let j = 0; j < H; j++) {
          const rg = sigmoid(p[o + j] + u[o + j]), zg = sigmoid(p[o + H + j] + u[o + H + j]);
          const ng = Math.tanh(p[o + 2 * H + j] + rg * u[o + 2 * H + j]);
          gates[o + j] = rg; gates[o + H + j] = zg; gates[o + 2 * H + j] = ng;
          h[hn + j] = (1 - zg) * ng + zg * h[hp + j];
        }
      } else {
        for (let j = 0; j < H; j++) {
          const a = p[o + j] + u[o + j];
          gates[o + j] = a;
          h[hn + j] = activate(cell, a);
        }
      }
    }
    return { h, c, p, u, gates };
  }

  const norm2 = (v, from, size) => { let s = 0; for (let i = 0; i < size; i++) s += v[from + i] * v[from + i]; return Math.sqrt(s); };

  // Backpropagation through time of L = v . h_{T-1}: ||dL/dh_t|| (and ||dL/dc_t||) by step, and ||dL/dtheta||.
  function backward(net, state) {
    const { H, I, G, T, settings } = net, cell = settings.cell, GH = G * H;
    const hidden = new Float64Array(T), cellNorms = cell === "lstm" ? new Float64Array(T) : null;
    const gW = new Float64Array(GH * H), gU = new Float64Array(GH * I), gBih = new Float64Array(GH), gBhh = new Float64Array(GH);
    let gh = Float64Array.from(net.readout), carry = new Float64Array(H);
    const delta = new Float64Array(GH), deltaIn = new Float64Array(GH); // d pre (recurrent side, input side)
    for (let t = T - 1; t >= 0; t--) {
      hidden[t] = norm2(gh, 0, H);
      const o = t * GH, hp = t * H, hn = (t + 1) * H, g = state.gates;
      const next = new Float64Array(H);
      if (cell === "lstm") {
        const gc = new Float64Array(H);
        for (let j = 0; j < H; j++) {
          const ig = g[o + j], fg = g[o + H + j], gg = g[o + 2 * H + j], og = g[o + 3 * H + j];
          const tc = Math.tanh(state.c[hn + j]);
          gc[j] = carry[j] + gh[j] * og * (1 - tc * tc);
          delta[j] = gc[j] * gg * ig * (1 - ig);
          delta[H + j] = gc[j] * state.c[hp + j] * fg * (1 - fg);
          delta[2 * H + j] = gc[j] * ig * (1 - gg * gg);
          delta[3 * H + j] = gh[j] * tc * og * (1 - og);
          carry[j] = gc[j] * fg;
        }
        cellNorms[t] = norm2(gc, 0, H);
        deltaIn.set(delta);
      } else if (cell === "gru") {
        for (let j = 0; j < H; j++) {
          const rg = g[o + j], zg = g[o + H + j], ng = g[o + 2 * H + j], hprev = state.h[hp + j];
          const dn = gh[j] * (1 - zg) * (1 - ng * ng);
          deltaIn[j] = dn * state.u[o + 2 * H + j] * rg * (1 - rg);
          deltaIn[H + j] = gh[j] * (hprev - ng) * zg * (1 - zg);
          deltaIn[2 * H + j] = dn;
          delta[j] = deltaIn[j]; delta[H + j] = deltaIn[H + j]; delta[2 * H + j] = dn * rg;
          next[j] = gh[j] * zg;
        }
      } else {
        for (let j = 0; j < H; j++) delta[j] = gh[j] * derivative(cell, g[o + j], state.h[hn + j]);
        deltaIn.set(delta);
      }
      for (let r = 0; r < GH; r++) {
        const d = delta[r], di = deltaIn[r];
        gBhh[r] += d; gBih[r] += di;
        for (let j = 0; j < H; j++) { gW[r * H + j] += d * state.h[hp + j]; next[j] += net.weightHh[r * H + j] * d; }
        for (let i = 0; i < I; i++) gU[r * I + i] += di * net.inputs[t * I + i];
      }
      gh = next;
    }
    let squares = 0;
    for (const a of [gW, gU, gBih, gBhh]) for (let i = 0; i < a.length; i++) squares += a[i] * a[i];
    return { hidden, cell: cellNorms, gradNorm: Math.sqrt(squares) };
  }

  // The step Jacobian ds_t/ds_{t-1} as an S x S column-major matrix (S = H, or 2H for an LSTM's (h, c)).
  function jacobian(net, state, t) {
    const { H, G, settings } = net, cell = settings.cell, GH = G * H, o = t * GH, g = state.gates;
    const W = net.weightHh, hp = t * H, hn = (t + 1) * H;
    if (cell === "lstm") {
      const S = 2 * H, J = new Float64Array(S * S);
      for (let j = 0; j < H; j++) {
        const ig = g[o + j], fg = g[o + H + j], gg = g[o + 2 * H + j], og = g[o + 3 * H + j];
        const tc = Math.tanh(state.c[hn + j]), dtc = og * (1 - tc * tc), cprev = state.c[hp + j];
        const ci = gg * ig * (1 - ig), cf = cprev * fg * (1 - fg), cg = ig * (1 - gg * gg), ho = tc * og * (1 - og);
        for (let k = 0; k < H; k++) {
          const dc = ci * W[j * H + k] + cf * W[(H + j) * H + k] + cg * W[(2 * H + j) * H + k];
          J[H + j + k * S] = dc; // dc_t / dh_{t-1}
          J[j + k * S] = ho * W[(3 * H + j) * H + k] + dtc * dc; // dh_t / dh_{t-1}
        }
        J[H + j + (H + j) * S] = fg; // dc_t / dc_{t-1}
        J[j + (H + j) * S] = dtc * fg; // dh_t / dc_{t-1}
      }
      return { J, S };
    }
    const J = new Float64Array(H * H);
    for (let j = 0; j < H; j++) {
      if (cell === "gru") {
        const rg = g[o + j], zg = g[o + H + j], ng = g[o + 2 * H + j], un = state.u[o + 2 * H + j];
        const dn = (1 - zg) * (1 - ng * ng), dz = (state.h[hp + j] - ng) * zg * (1 - zg), dr = dn * un * rg * (1 - rg);
        for (let k = 0; k < H; k++) J[j + k * H] = dz * W[(H + j) * H + k] + dr * W[j * H + k] + dn * rg * W[(2 * H + j) * H + k];
        J[j + j * H] += zg;
      } else {
        const d = derivative(cell, g[o + j], state.h[hn + j]);
        for (let k = 0; k < H; k++) J[j + k * H] = d * W[j * H + k];
      }
    }
    return { J, S: H };
  }

  // Each step's factor: |act'(a_t)| (plain RNNs), f_t (LSTM), z_t (GRU); T x H, row-major.
  function factors(net, state) {
    const { H, G, T, settings } = net, cell = settings.cell, out = new Float64Array(T * H);
    for (let t = 0; t < T; t++) for (let j = 0; j < H; j++) {
      const o = t * G * H;
      out[t * H + j] = cell === "lstm" || cell === "gru" ? state.gates[o + H + j]
        : Math.abs(derivative(cell, state.gates[o + j], state.h[(t + 1) * H + j]));
    }
    return out;
  }

  function byLag(values) { return Array.from(values).reverse(); }

  function runningProducts(net, perStep) {
    const { H, T, settings } = net, gated = settings.cell in GATES;
    const mean = [1], max = [1];
    if (gated) { // each unit's product over the last k steps; the mean and the largest over units
      const unit = new Float64Array(H).fill(1);
      for (let k = 1; k < T; k++) {
        const t = T - k;
        let s = 0, m = 0;
        for (let j = 0; j < H; j++) { unit[j] *= perStep[t * H + j]; s += unit[j]; m = Math.max(m, unit[j]); }
        mean.push(s / H); max.push(m);
      }
    } else {
      for (let k = 1; k < T; k++) {
        const t = T - k;
        let s = 0, m = 0;
        for (let j = 0; j < H; j++) { s += perStep[t * H + j]; m = Math.max(m, perStep[t * H + j]); }
        mean.push(mean[k - 1] * (s / H)); max.push(max[k - 1] * m);
      }
    }
    return { mean, max };
  }

  function horizon(profile) {
    const first = profile[0];
    if (!(first > 0) || !isFinite(first)) return 0;
    for (let k = 0; k < profile.length; k++) if (!(profile[k] >= EPSILON * first)) return k - 1;
    return profile.length - 1;
  }
  function reach(profile) {
    const first = profile[0];
    if (!(first > 0) || !isFinite(first)) return 0;
    for (let k = profile.length - 1; k >= 0; k--) if (profile[k] >= EPSILON * first) return k;
    return 0;
  }

  // Everything but the singular values of the step Jacobians: fast, drawn at once.
  function analyse(settings) {
    const net = makeNetwork(settings), state = forward(net), grads = backward(net, state);
    const profile = byLag(grads.hidden), T = settings.seq_len, gated = settings.cell in GATES;
    const lag = Math.min(settings.lag, T - 1), spectral = [];
    for (let g = 0; g < net.G; g++) spectral.push(root.BPTT.linalg.spectralNorm(net.weightHh.subarray(g * net.H * net.H, (g + 1) * net.H * net.H), net.H));
    let bound = null, gamma = null;
    if (!gated) {
      gamma = GAMMA[settings.cell];
      bound = profile.map((_, k) => profile[0] * Math.pow(gamma * spectral[0], k));
    }
    const clip = settings.clip;
    const clipFactor = clip == null || grads.gradNorm <= clip ? 1 : clip / grads.gradNorm;
    const products = runningProducts(net, factors(net, state));
    return {
      net, state, settings, gamma, lag,
      numbers: {
        settings, profile, cell: grads.cell ? byLag(grads.cell) : null, bound,
        factor_mean: products.mean, factor_max: products.max,
        spectral_norms: spectral, natural_norms: net.natural,
        horizon: horizon(profile), reach: reach(profile),
        ratio: profile[0] > 0 ? profile[lag] / profile[0] : NaN,
        grad_norm: grads.gradNorm, clip_factor: clipFactor,
        singular_values: null,
      },
    };
  }

  // The singular values of J_t for steps [from, to): appended to analysis.numbers.singular_values.
  function singularValuesOfSteps(analysis, from, to) {
    const rows = analysis.numbers.singular_values || (analysis.numbers.singular_values = []);
    for (let t = from; t < to; t++) {
      const { J, S } = jacobian(analysis.net, analysis.state, t);
      rows.push(Array.from(root.BPTT.linalg.singularValues(J, S)));
    }
    return rows;
  }

  root.BPTT = root.BPTT || {};
  root.BPTT.mechanism = {
    INPUT_SIZE, EPSILON, GAMMA, GATES, symmetric, makeNetwork, forward, backward, jacobian, analyse,
    singularValuesOfSteps, horizon, reach,
  };
})(typeof window !== "undefined" ? window : globalThis);
