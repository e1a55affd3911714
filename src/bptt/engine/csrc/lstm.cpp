// The LSTM's time loops (loops.h describes the arguments).
#include "loops.h"

namespace bptt {

template <typename T>
void lstm_forward(int steps, int B, int H, int P, T* gates, T* cells, T* tanh_cells, T* cell_out, T* out,
                  const T* h0, const T* c0, const T* weight_hh, const T* weight_hr) {
  const int G = 4 * H;
  const T* h = h0;
  const T* c = c0;
  for (int t = 0; t < steps; ++t) {
    T* gt = gates + static_cast<int64_t>(t) * B * G;
    gemm<T>(false, true, B, G, P, T(1), h, P, weight_hh, P, T(1), gt, G);  // gates += h_{t-1} W_hh^T
    T* ct = cells + static_cast<int64_t>(t) * B * H;
    T* tt = tanh_cells + static_cast<int64_t>(t) * B * H;
    T* mt = cell_out + static_cast<int64_t>(t) * B * H;
    for (int b = 0; b < B; ++b) {
      T* a = gt + static_cast<int64_t>(b) * G;
      const int64_t row = static_cast<int64_t>(b) * H;
#pragma omp simd
      for (int j = 0; j < 2 * H; ++j) a[j] = sigmoid(a[j]);
#pragma omp simd
      for (int j = 2 * H; j < 3 * H; ++j) a[j] = tanh_(a[j]);
#pragma omp simd
      for (int j = 3 * H; j < G; ++j) a[j] = sigmoid(a[j]);
#pragma omp simd
      for (int j = 0; j < H; ++j) {
        T cell = a[H + j] * c[row + j] + a[j] * a[2 * H + j];
        T tc = tanh_(cell);
        ct[row + j] = cell;
        tt[row + j] = tc;
        mt[row + j] = a[3 * H + j] * tc;
      }
    }
    T* ht = out + static_cast<int64_t>(t) * B * P;
    if (weight_hr) gemm<T>(false, true, B, P, H, T(1), mt, H, weight_hr, H, T(0), ht, P);  // h_t = m_t W_hr^T
    h = ht;
    c = ct;
  }
}

template <typename T>
void lstm_backward(int n, int B, int H, int P, const T* gates, const T* cells, const T* tanh_cells,
                   const T* c_prev_first, T* grad_h, T* grad_gates, const T* grad_gates_next, T* carry,
                   const T* weight_hh, const T* weight_hr, T* grad_m, double* norms_h, double* norms_c) {
  const int G = 4 * H;
  for (int k = n - 1; k >= 0; --k) {
    T* dh = grad_h + static_cast<int64_t>(k) * B * P;
    const T* later = k == n - 1 ? grad_gates_next : grad_gates + static_cast<int64_t>(k + 1) * B * G;
    if (later) gemm<T>(false, false, B, P, G, T(1), later, G, weight_hh, P, T(1), dh, P);  // += dG_{t+1} W_hh
    if (norms_h) row_norms<T>(dh, B, P, norms_h + static_cast<int64_t>(k) * B);
    const T* dm = dh;
    if (weight_hr) {
      T* m = grad_m + static_cast<int64_t>(k) * B * H;
      gemm<T>(false, false, B, H, P, T(1), dh, P, weight_hr, H, T(0), m, H);  // dL/dm_t = dL/dh_t W_hr
      dm = m;
    }
    const T* a_k = gates + static_cast<int64_t>(k) * B * G;
    const T* tc_k = tanh_cells + static_cast<int64_t>(k) * B * H;
    const T* cp_k = k == 0 ? c_prev_first : cells + static_cast<int64_t>(k - 1) * B * H;
    T* dg_k = grad_gates + static_cast<int64_t>(k) * B * G;
    for (int b = 0; b < B; ++b) {
      const int64_t row = static_cast<int64_t>(b) * H;
      const T* a = a_k + static_cast<int64_t>(b) * G;
      T* dg = dg_k + static_cast<int64_t>(b) * G;
      const T* tc = tc_k + row;
      const T* cp = cp_k + row;
      const T* dmb = dm + row;
      T* cy = carry + row;
      double sum = 0.0;
#pragma omp simd reduction(+ : sum)
      for (int j = 0; j < H; ++j) {
        T i = a[j], f = a[H + j], g = a[2 * H + j], o = a[3 * H + j];
        T dc = cy[j] + dmb[j] * o * (T(1) - tc[j] * tc[j]);
        dg[j] = dc * g * i * (T(1) - i);
        dg[H + j] = dc * cp[j] * f * (T(1) - f);
        dg[2 * H + j] = dc * i * (T(1) - g * g);
        dg[3 * H + j] = dmb[j] * tc[j] * o * (T(1) - o);
        cy[j] = dc * f;
        sum += static_cast<double>(dc) * static_cast<double>(dc);
      }
      if (norms_c) norms_c[static_cast<int64_t>(k) * B + b] = std::sqrt(sum);
    }
  }
}

#define INSTANTIATE(T)                                                                                        \
  template void lstm_forward<T>(int, int, int, int, T*, T*, T*, T*, T*, const T*, const T*, const T*,         \
                                const T*);                                                                    \
  template void lstm_backward<T>(int, int, int, int, const T*, const T*, const T*, const T*, T*, T*, const T*, \
                                 T*, const T*, const T*, T*, double*, double*);
INSTANTIATE(float)
INSTANTIATE(double)

}  // namespace bptt
