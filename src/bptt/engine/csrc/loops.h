// The compiled time loops of bptt's engine: what bptt.engine.rnn, lstm and gru run in Python, one step at
// a time, with the same buffers and the same order of operations.
//
// Tensors are time-major and contiguous, (T, B, features), float32 or float64 on a CPU, passed here as raw
// pointers with their sizes (ops.cpp turns torch's tensors into them). Each step is one matrix product
// (`gemm`) and one pass over the step's values that applies the whole cell, so a step makes one call into
// BLAS and no allocation. The backward runs one chunk of steps per call: the caller fills dL/dh_t with the
// outputs' gradients first, and does the chunk's weight-gradient products afterwards. When asked, the
// per-sequence norms ||dL/dh_t[b]||_2 (and ||dL/dc_t[b]||_2) are summed in float64 inside the loop.
#pragma once

#include <cmath>
#include <cstdint>

namespace bptt {

// C (m x n, row stride ldc) = alpha op(A) op(B) + beta C, all row-major; op transposes where asked.
// BLAS where torch links one that agrees with at::mm, else at::addmm (ops.cpp).
template <typename T>
void gemm(bool trans_a, bool trans_b, int m, int n, int k, T alpha, const T* a, int lda, const T* b, int ldb, T beta,
          T* c, int ldc);

// float32: exp from Cody-Waite range reduction and a degree-6 polynomial (Cephes' expf, about 1 ulp),
// without branches or calls, so that the loops around it vectorize (with -fno-trapping-math, the clamps
// become min/max; NaN stays NaN); tanh(a) = 2 sigmoid(2a) - 1. float64: the C library's, exactly (the
// gradchecks run in float64).
inline float exp_approx(float x) {
  x = x > 88.0f ? 88.0f : x;
  x = x < -87.3f ? -87.3f : x;
  float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  // round(x / ln 2)
  float r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float y = 1.9875691500e-4f;
  y = y * r + 1.3981999507e-3f;
  y = y * r + 8.3334519073e-3f;
  y = y * r + 4.1665795894e-2f;
  y = y * r + 1.6666665459e-1f;
  y = y * r + 5.0000001201e-1f;
  y = y * r * r + r + 1.0f;
  int32_t e = (static_cast<int32_t>(n) + 127) << 23;  // 2^n
  return y * __builtin_bit_cast(float, e);
}

inline float exp_(float x) { return exp_approx(x); }
inline double exp_(double x) { return std::exp(x); }
inline float sigmoid(float x) { return 1.0f / (1.0f + exp_approx(-x)); }
inline float tanh_(float x) { return 2.0f / (1.0f + exp_approx(-2.0f * x)) - 1.0f; }
inline double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
inline double tanh_(double x) { return std::tanh(x); }

// ||row||_2 of each of `rows` rows of `width` values, in float64.
template <typename T>
void row_norms(const T* values, int rows, int width, double* out) {
  for (int b = 0; b < rows; ++b) {
    const T* v = values + static_cast<int64_t>(b) * width;
    double sum = 0.0;
#pragma omp simd reduction(+ : sum)
    for (int j = 0; j < width; ++j) sum += static_cast<double>(v[j]) * static_cast<double>(v[j]);
    out[b] = std::sqrt(sum);
  }
}

// -- the simple RNN (rnn.cpp) -------------------------------------------------------------------------------
// act: 0 sigmoid, 1 tanh, 2 relu, 3 a slope per unit `slope` for a < 0 (leaky_relu, prelu); act'(0) is the
// slope, or 1 with `one_at_zero` (prelu). `out` (T, B, H) holds the input terms on entry unless `pre` is
// given (the pre-activations kept), and h_t on return. act' is read off h, or off `pre`.
template <typename T>
void rnn_forward(int steps, int B, int H, T* out, T* pre, const T* h0, const T* weight_hh, int act, const T* slope);

// One chunk of n steps, last first: grad_h (n, B, H) holds the outputs' gradients on entry and dL/dh_t on
// return; delta (n, B, H) gets dL/da_t; delta_next: that of the step after the chunk (null at T - 1).
template <typename T>
void rnn_backward(int n, int B, int H, const T* out, const T* pre, T* grad_h, T* delta, const T* delta_next,
                  const T* weight_hh, int act, const T* slope, bool one_at_zero, double* norms);

// -- the LSTM (lstm.cpp) ------------------------------------------------------------------------------------
// gates (T, B, 4H) hold x_t W_ih^T + b on entry and the activated [i, f, g, o] on return; cells c_t and
// tanh_cells tanh(c_t) (T, B, H); cell_out m_t = o * tanh(c_t) (T, B, H), the same memory as out without a
// projection; out h_t (T, B, P), h_t = m_t W_hr^T with a projection (weight_hr non-null).
template <typename T>
void lstm_forward(int steps, int B, int H, int P, T* gates, T* cells, T* tanh_cells, T* cell_out, T* out,
                  const T* h0, const T* c0, const T* weight_hh, const T* weight_hr);

// One chunk of n steps, last first. c_prev_first: c_{t-1} of its first step; grad_h (n, B, P): the outputs'
// gradients on entry, dL/dh_t on return; grad_gates (n, B, 4H): dL/d(pre-activation); grad_gates_next: that
// of the step after the chunk (null at T - 1); carry (B, H): dL/dc_{t+1} * f_{t+1} on entry (dL/dc_n or 0 at
// T - 1) and for the chunk before on return; grad_m (n, B, H): dL/dm_t, with a projection only.
template <typename T>
void lstm_backward(int n, int B, int H, int P, const T* gates, const T* cells, const T* tanh_cells,
                   const T* c_prev_first, T* grad_h, T* grad_gates, const T* grad_gates_next, T* carry,
                   const T* weight_hh, const T* weight_hr, T* grad_m, double* norms_h, double* norms_c);

// -- the GRU (gru.cpp) --------------------------------------------------------------------------------------
// gates (T, B, 3H) hold the input terms [x W_ir^T + b_ir + b_hr, x W_iz^T + b_iz + b_hz, x W_in^T + b_in] on
// entry and the activated [r, z, n] on return; candidate (T, B, H) gets u_n = h_{t-1} W_hn^T + b_hn; out h_t;
// scratch (B, 3H) holds each step's h_{t-1} W_hh^T.
template <typename T>
void gru_forward(int steps, int B, int H, T* gates, T* candidate, T* out, const T* h0, const T* weight_hh,
                 const T* bias_hn, T* scratch);

// One chunk of n steps, last first. h_prev_first: h_{t-1} of its first step; grad_h (n, B, H): the outputs'
// gradients on entry, dL/dh_t on return; delta (n, B, 4H): [du_n, dr~, dz~, dn~] (bptt.engine.gru);
// delta_next: that of the step after the chunk, and carry (B, H) = dL/dh_{t+1} * z_{t+1} (in and out), both
// unused at T - 1 (has_next false); weight_perm: W_hh with its blocks ordered (n, r, z).
template <typename T>
void gru_backward(int n, int B, int H, const T* gates, const T* candidate, const T* out, const T* h_prev_first,
                  T* grad_h, T* delta, const T* delta_next, T* carry, bool has_next, const T* weight_perm,
                  double* norms);

// -- minGRU and minLSTM (minrnn.cpp) ------------------------------------------------------------------------
// G = 2 (minGRU, blocks [p_h, p_z]) or 3 (minLSTM, [p_h, p_f, p_i]). p: one chunk's projection, G blocks of
// (n, B, H), each contiguous, block g at p + g * p_gate. out (n, B, H) gets h_t; h_prev: h_{t-1} of the
// chunk's first step.
template <typename T>
void min_forward(int G, int n, int B, int H, const T* p, int64_t p_gate, const T* h_prev, T* out);

// One chunk of n steps, last first. out: the chunk's h_t (n, B, H); h_prev_first: h_{t-1} of its first step;
// grad_h (n, B, H): the outputs' gradients on entry, dL/dh_t on return; delta: G blocks of (n, B, H), block g
// at delta + g * delta_gate, get dL/dp (minLSTM: [dp_h, dp_f, dp_i]); carry (B, H): (1 - z_{t+1}) dL/dh_{t+1}
// of the step after the chunk on entry (0 at T - 1), and of the chunk's first step on return.
template <typename T>
void min_backward(int G, int n, int B, int H, const T* p, int64_t p_gate, const T* out, const T* h_prev_first,
                  T* grad_h, T* delta, int64_t delta_gate, T* carry, double* norms);

}  // namespace bptt
