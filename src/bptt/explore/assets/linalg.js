// Singular values of a square matrix, in float64: Householder bidiagonalisation, then the
// implicit-shift QR iteration on the bidiagonal (Golub & Kahan 1965; Golub & Reinsch 1970),
// values only. Accurate to about 1e-16 of the largest singular value, as LAPACK's are.
(function (root) {
  "use strict";
  const EPS = Math.pow(2, -52);
  const TINY = Math.pow(2, -966);

  function hypot(a, b) {
    const x = Math.abs(a), y = Math.abs(b);
    if (x > y) { const r = y / x; return x * Math.sqrt(1 + r * r); }
    if (y > 0) { const r = x / y; return y * Math.sqrt(1 + r * r); }
    return 0;
  }

  // a: Float64Array of n * n entries, column-major (a[i + j * n] is row i, column j); overwritten.
  // Returns the n singular values, descending.
  function singularValues(a, n) {
    const s = new Float64Array(n), e = new Float64Array(n), work = new Float64Array(n);
    const nct = n - 1, nrt = Math.max(0, n - 2);
    for (let k = 0; k < Math.max(nct, nrt); k++) {
      const ck = k * n;
      if (k < nct) {
        // The k-th column below the diagonal becomes a Householder vector; s[k] the diagonal.
        let norm = 0;
        for (let i = k; i < n; i++) norm = hypot(norm, a[i + ck]);
        if (norm !== 0) {
          if (a[k + ck] < 0) norm = -norm;
          for (let i = k; i < n; i++) a[i + ck] /= norm;
          a[k + ck] += 1;
        }
        s[k] = -norm;
      }
      for (let j = k + 1; j < n; j++) {
        const cj = j * n;
        if (k < nct && s[k] !== 0) {
          let t = 0;
          for (let i = k; i < n; i++) t += a[i + ck] * a[i + cj];
          t = -t / a[k + ck];
          for (let i = k; i < n; i++) a[i + cj] += t * a[i + ck];
        }
        e[j] = a[k + cj];
      }
      if (k < nrt) {
        // The k-th row right of the superdiagonal: the right-hand transformation.
        let norm = 0;
        for (let i = k + 1; i < n; i++) norm = hypot(norm, e[i]);
        if (norm !== 0) {
          if (e[k + 1] < 0) norm = -norm;
          for (let i = k + 1; i < n; i++) e[i] /= norm;
          e[k + 1] += 1;
        }
        e[k] = -norm;
        if (k + 1 < n && e[k] !== 0) {
          for (let i = k + 1; i < n; i++) work[i] = 0;
          for (let j = k + 1; j < n; j++) {
            const cj = j * n, ej = e[j];
            for (let i = k + 1; i < n; i++) work[i] += ej * a[i + cj];
          }
          for (let j = k + 1; j < n; j++) {
            const cj = j * n, t = -e[j] / e[k + 1];
            for (let i = k + 1; i < n; i++) a[i + cj] += t * work[i];
          }
        }
      }
    }
    let p = n;
    if (nct < n) s[nct] = a[nct + nct * n];
    if (nrt + 1 < p) e[nrt] = a[nrt + (p - 1) * n];
    e[p - 1] = 0;
    const last = p - 1;
    let iterations = 0;
    while (p > 0) {
      let k, kase;
      for (k = p - 2; k >= -1; k--) {
        if (k === -1) break;
        if (Math.abs(e[k]) <= TINY + EPS * (Math.abs(s[k]) + Math.abs(s[k + 1]))) { e[k] = 0; break; }
      }
      if (k === p - 2) {
        kase = 4;
      } else {
        let ks;
        for (ks = p - 1; ks >= k; ks--) {
          if (ks === k) break;
          const t = (ks !== p ? Math.abs(e[ks]) : 0) + (ks !== k + 1 ? Math.abs(e[ks - 1]) : 0);
          if (Math.abs(s[ks]) <= TINY + EPS * t) { s[ks] = 0; break; }
        }
        if (ks === k) kase = 3;
        else if (ks === p - 1) kase = 1;
        else { kase = 2; k = ks; }
      }
      k++;
      if (kase === 1) { // s[p-1] is negligible: deflate
        let f = e[p - 2];
        e[p - 2] = 0;
        for (let j = p - 2; j >= k; j--) {
          const t = hypot(s[j], f), cs = s[j] / t, sn = f / t;
          s[j] = t;
          if (j !== k) { f = -sn * e[j - 1]; e[j - 1] = cs * e[j - 1]; }
        }
      } else if (kase === 2) { // s[k-1] is negligible: split
        let f = e[k - 1];
        e[k - 1] = 0;
        for (let j = k; j < p; j++) {
          const t = hypot(s[j], f), cs = s[j] / t, sn = f / t;
          s[j] = t; f = -sn * e[j]; e[j] = cs * e[j];
        }
      } else if (kase === 3) { // one QR step with the Wilkinson-like shift
        const scale = Math.max(Math.abs(s[p - 1]), Math.abs(s[p - 2]), Math.abs(e[p - 2]), Math.abs(s[k]), Math.abs(e[k]));
        const sp = s[p - 1] / scale, spm1 = s[p - 2] / scale, epm1 = e[p - 2] / scale;
        const sk = s[k] / scale, ek = e[k] / scale;
        const b = ((spm1 + sp) * (spm1 - sp) + epm1 * epm1) / 2, c = (sp * epm1) * (sp * epm1);
        let shift = 0;
        if (b !== 0 || c !== 0) { shift = Math.sqrt(b * b + c); if (b < 0) shift = -shift; shift = c / (b + shift); }
        let f = (sk + sp) * (sk - sp) + shift, g = sk * ek;
        for (let j = k; j < p - 1; j++) {
          let t = hypot(f, g), cs = f / t, sn = g / t;
          if (j !== k) e[j - 1] = t;
          f = cs * s[j] + sn * e[j]; e[j] = cs * e[j] - sn * s[j]; g = sn * s[j + 1]; s[j + 1] = cs * s[j + 1];
          t = hypot(f, g); cs = f / t; sn = g / t; s[j] = t;
          f = cs * e[j] + sn * s[j + 1]; s[j + 1] = -sn * e[j] + cs * s[j + 1]; g = sn * e[j + 1]; e[j + 1] = cs * e[j + 1];
        }
        e[p - 2] = f;
        iterations++;
        if (iterations > 75 * n) throw new Error("singular values did not converge");
      } else { // converged: make s[k] positive and move it into order
        if (s[k] <= 0) s[k] = s[k] < 0 ? -s[k] : 0;
        while (k < last && s[k] < s[k + 1]) { const t = s[k]; s[k] = s[k + 1]; s[k + 1] = t; k++; }
        iterations = 0;
        p--;
      }
    }
    return s;
  }

  // The largest singular value of a (rows x cols) row-major block, via singularValues on its square part.
  function spectralNorm(block, size) {
    const a = new Float64Array(size * size);
    for (let i = 0; i < size; i++) for (let j = 0; j < size; j++) a[i + j * size] = block[i * size + j];
    return singularValues(a, size)[0];
  }

  root.BPTT = root.BPTT || {};
  root.BPTT.linalg = { singularValues, spectralNorm, hypot };
})(typeof window !== "undefined" ? window : globalThis);
