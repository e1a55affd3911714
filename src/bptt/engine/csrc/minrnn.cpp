// minGRU's and minLSTM's time loops (loops.h describes the arguments; bptt.engine.minrnn the equations).
#include "loops.h"

namespace bptt {

namespace {

// h~ = g(v) = v + 1/2 (v >= 0), sigmoid(v) below; slope = g'(v) = 1 from 0 up, s (1 - s) below.
template <typename T>
inline T candidate(T v, T s) {
  return v >= T(0) ? v + T(0.5) : s;
}

// minLSTM's z = sigmoid(softplus(a) - softplus(c)) with a = -p_f, c = -p_i, keep = 1 - z, and sigmoid(a),
// sigmoid(c): z = (1 + e^a) / ((1 + e^a) + (1 + e^c)), each exponent shifted by m = max(a, c, 0) so none
// overflows. Where both terms of a sigmoid's ratio underflow (float64, m above ~745), z or keep is 0 and so
// is dL/dd, which the sigmoid multiplies: the guard only keeps 0/0 from turning that 0 into NaN.
template <typename T>
__attribute__((always_inline)) inline void minlstm_gates(T p_f, T p_i, T& z, T& keep, T& sig_a, T& sig_c) {
  const T a = -p_f, c = -p_i;
  T m = a > c ? a : c;
  m = m > T(0) ? m : T(0);
  const T u0 = exp_(-m), ua = exp_(a - m), uc = exp_(c - m);
  const T total = T(1) / (u0 + ua + u0 + uc);
  z = (u0 + ua) * total;
  keep = (u0 + uc) * total;
  const T den_a = u0 + ua, den_c = u0 + uc;
  sig_a = ua / (den_a > T(0) ? den_a : T(1));
  sig_c = uc / (den_c > T(0) ? den_c : T(1));
}

}  // namespace

template <typename T>
void min_forward(int G, int n, int B, int H, const T* p, int64_t p_gate, const T* h_prev, T* out) {
  const int64_t size = static_cast<int64_t>(B) * H;
  const T* h = h_prev;
  for (int k = 0; k < n; ++k) {
    const T* ph = p + k * size;
    const T* p1 = ph + p_gate;
    T* ht = out + k * size;
    if (G == 2) {
#pragma omp simd
      for (int64_t j = 0; j < size; ++j) {
        const T z = sigmoid(p1[j]);
        ht[j] = z * candidate(ph[j], sigmoid(ph[j])) + (T(1) - z) * h[j];
      }
    } else {
      const T* p2 = p1 + p_gate;
#pragma omp simd
      for (int64_t j = 0; j < size; ++j) {
        T z, keep, sig_a, sig_c;
        minlstm_gates(p1[j], p2[j], z, keep, sig_a, sig_c);
        ht[j] = z * candidate(ph[j], sigmoid(ph[j])) + keep * h[j];
      }
    }
    h = ht;
  }
}

template <typename T>
void min_backward(int G, int n, int B, int H, const T* p, int64_t p_gate, const T* out, const T* h_prev_first,
                  T* grad_h, T* delta, int64_t delta_gate, T* carry, double* norms) {
  const int64_t size = static_cast<int64_t>(B) * H;
  for (int k = n - 1; k >= 0; --k) {
    T* dh = grad_h + k * size;
#pragma omp simd
    for (int64_t j = 0; j < size; ++j) dh[j] += carry[j];  // + (1 - z_{t+1}) dL/dh_{t+1}
    if (norms) row_norms<T>(dh, B, H, norms + static_cast<int64_t>(k) * B);
    const T* ph = p + k * size;
    const T* p1 = ph + p_gate;
    const T* hp = k == 0 ? h_prev_first : out + (k - 1) * size;
    T* d_h = delta + k * size;
    T* d_1 = d_h + delta_gate;
    if (G == 2) {
#pragma omp simd
      for (int64_t j = 0; j < size; ++j) {
        const T v = ph[j], s = sigmoid(v), z = sigmoid(p1[j]), g = dh[j];
        const T slope = v >= T(0) ? T(1) : s * (T(1) - s);
        d_h[j] = g * z * slope;
        d_1[j] = g * (candidate(v, s) - hp[j]) * z * (T(1) - z);
        carry[j] = g * (T(1) - z);
      }
    } else {
      const T* p2 = p1 + p_gate;
      T* d_2 = d_1 + delta_gate;
#pragma omp simd
      for (int64_t j = 0; j < size; ++j) {
        T z, keep, sig_a, sig_c;
        minlstm_gates(p1[j], p2[j], z, keep, sig_a, sig_c);
        const T v = ph[j], s = sigmoid(v), g = dh[j];
        const T slope = v >= T(0) ? T(1) : s * (T(1) - s);
        const T grad_d = g * (candidate(v, s) - hp[j]) * z * keep;  // dL/dd, d = softplus(a) - softplus(c)
        d_h[j] = g * z * slope;
        d_1[j] = -grad_d * sig_a;  // dd/dp_f = -sigmoid(-p_f)
        d_2[j] = grad_d * sig_c;   // dd/dp_i = sigmoid(-p_i)
        carry[j] = g * keep;
      }
    }
  }
}

#define INSTANTIATE(T)                                                                                  \
  template void min_forward<T>(int, int, int, int, const T*, int64_t, const T*, T*);                    \
  template void min_backward<T>(int, int, int, int, const T*, int64_t, const T*, const T*, T*, T*, int64_t, \
                                T*, double*);
INSTANTIATE(float)
INSTANTIATE(double)

}  // namespace bptt
