// The GRU's time loops (loops.h describes the arguments).
#include "loops.h"

namespace bptt {

template <typename T>
void gru_forward(int steps, int B, int H, T* gates, T* candidate, T* out, const T* h0, const T* weight_hh,
                 const T* bias_hn, T* scratch) {
  const int G = 3 * H;
  const T* h = h0;
  for (int t = 0; t < steps; ++t) {
    gemm<T>(false, true, B, G, H, T(1), h, H, weight_hh, H, T(0), scratch, G);  // u = h_{t-1} W_hh^T
    T* gt = gates + static_cast<int64_t>(t) * B * G;
    T* ut = candidate + static_cast<int64_t>(t) * B * H;
    T* ht = out + static_cast<int64_t>(t) * B * H;
    for (int b = 0; b < B; ++b) {
      T* a = gt + static_cast<int64_t>(b) * G;
      const T* u = scratch + static_cast<int64_t>(b) * G;
      const int64_t row = static_cast<int64_t>(b) * H;
      const T* hp = h + row;
#pragma omp simd
      for (int j = 0; j < 2 * H; ++j) a[j] = sigmoid(a[j] + u[j]);
#pragma omp simd
      for (int j = 0; j < H; ++j) {
        T un = u[2 * H + j] + (bias_hn ? bias_hn[j] : T(0));
        T cand = tanh_(a[2 * H + j] + a[j] * un);
        T z = a[H + j];
        a[2 * H + j] = cand;
        ut[row + j] = un;
        ht[row + j] = (T(1) - z) * cand + z * hp[j];
      }
    }
    h = ht;
  }
}

template <typename T>
void gru_backward(int n, int B, int H, const T* gates, const T* candidate, const T* out, const T* h_prev_first,
                  T* grad_h, T* delta, const T* delta_next, T* carry, bool has_next, const T* weight_perm,
                  double* norms) {
  const int G = 3 * H, D = 4 * H;
  const int64_t size = static_cast<int64_t>(B) * H;
  for (int k = n - 1; k >= 0; --k) {
    T* dh = grad_h + k * size;
    if (k < n - 1 || has_next) {
      const T* later = k == n - 1 ? delta_next : delta + static_cast<int64_t>(k + 1) * B * D;
#pragma omp simd
      for (int64_t j = 0; j < size; ++j) dh[j] += carry[j];                  // + dL/dh_{t+1} z_{t+1}
      gemm<T>(false, false, B, H, G, T(1), later, D, weight_perm, H, T(1), dh, H);  // + [du_n, dr~, dz~] W_hh
    }
    if (norms) row_norms<T>(dh, B, H, norms + static_cast<int64_t>(k) * B);
    const T* a_k = gates + static_cast<int64_t>(k) * B * G;
    const T* u_k = candidate + k * size;
    const T* hp_k = k == 0 ? h_prev_first : out + (k - 1) * size;
    T* d_k = delta + static_cast<int64_t>(k) * B * D;
    for (int b = 0; b < B; ++b) {
      const int64_t row = static_cast<int64_t>(b) * H;
      const T* a = a_k + static_cast<int64_t>(b) * G;
      T* d = d_k + static_cast<int64_t>(b) * D;
#pragma omp simd
      for (int j = 0; j < H; ++j) {
        T r = a[j], z = a[H + j], cand = a[2 * H + j], g = dh[row + j];
        T dn = g * (T(1) - z) * (T(1) - cand * cand);
        d[3 * H + j] = dn;
        d[2 * H + j] = g * (hp_k[row + j] - cand) * z * (T(1) - z);
        d[j] = dn * r;
        d[H + j] = dn * u_k[row + j] * r * (T(1) - r);
        carry[row + j] = g * z;
      }
    }
  }
}

#define INSTANTIATE(T)                                                                                      \
  template void gru_forward<T>(int, int, int, T*, T*, T*, const T*, const T*, const T*, T*);                \
  template void gru_backward<T>(int, int, int, const T*, const T*, const T*, const T*, T*, T*, const T*, T*, \
                                bool, const T*, double*);
INSTANTIATE(float)
INSTANTIATE(double)

}  // namespace bptt
