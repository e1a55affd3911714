// The simple RNN's time loops (loops.h describes the arguments).
#include "loops.h"

namespace bptt {

template <typename T>
void rnn_forward(int steps, int B, int H, T* out, T* pre, const T* h0, const T* weight_hh, int act, const T* slope) {
  const int64_t step = static_cast<int64_t>(B) * H;
  const T* h = h0;
  for (int t = 0; t < steps; ++t) {
    T* a = (pre ? pre : out) + t * step;
    T* y = out + t * step;
    gemm<T>(false, true, B, H, H, T(1), h, H, weight_hh, H, T(1), a, H);  // a += h_{t-1} W_hh^T
    switch (act) {
      case 0:
#pragma omp simd
        for (int64_t j = 0; j < step; ++j) y[j] = sigmoid(a[j]);
        break;
      case 1:
#pragma omp simd
        for (int64_t j = 0; j < step; ++j) y[j] = tanh_(a[j]);
        break;
      case 2:
#pragma omp simd
        for (int64_t j = 0; j < step; ++j) y[j] = a[j] > T(0) ? a[j] : T(0);
        break;
      default:
        for (int b = 0; b < B; ++b) {
          const T* ab = a + static_cast<int64_t>(b) * H;
          T* yb = y + static_cast<int64_t>(b) * H;
#pragma omp simd
          for (int j = 0; j < H; ++j) yb[j] = ab[j] >= T(0) ? ab[j] : ab[j] * slope[j];
        }
    }
    h = y;
  }
}

template <typename T>
void rnn_backward(int n, int B, int H, const T* out, const T* pre, T* grad_h, T* delta, const T* delta_next,
                  const T* weight_hh, int act, const T* slope, bool one_at_zero, double* norms) {
  const int64_t step = static_cast<int64_t>(B) * H;
  for (int k = n - 1; k >= 0; --k) {
    T* g = grad_h + k * step;
    const T* later = k == n - 1 ? delta_next : delta + (k + 1) * step;
    if (later) gemm<T>(false, false, B, H, H, T(1), later, H, weight_hh, H, T(1), g, H);  // += delta_{t+1} W_hh
    if (norms) row_norms<T>(g, B, H, norms + static_cast<int64_t>(k) * B);
    const T* y = out + k * step;
    const T* a = pre ? pre + k * step : y;
    T* d = delta + k * step;
    switch (act) {
      case 0:
#pragma omp simd
        for (int64_t j = 0; j < step; ++j) d[j] = g[j] * y[j] * (T(1) - y[j]);
        break;
      case 1:
#pragma omp simd
        for (int64_t j = 0; j < step; ++j) d[j] = g[j] * (T(1) - y[j] * y[j]);
        break;
      case 2:
#pragma omp simd
        for (int64_t j = 0; j < step; ++j) d[j] = y[j] > T(0) ? g[j] : T(0);
        break;
      default:
        for (int b = 0; b < B; ++b) {
          const int64_t row = static_cast<int64_t>(b) * H;
          if (one_at_zero) {
#pragma omp simd
            for (int j = 0; j < H; ++j) d[row + j] = g[row + j] * (a[row + j] >= T(0) ? T(1) : slope[j]);
          } else {
#pragma omp simd
            for (int j = 0; j < H; ++j) d[row + j] = g[row + j] * (a[row + j] > T(0) ? T(1) : slope[j]);
          }
        }
    }
  }
}

#define INSTANTIATE(T)                                                                                          \
  template void rnn_forward<T>(int, int, int, T*, T*, const T*, const T*, int, const T*);                     \
  template void rnn_backward<T>(int, int, int, const T*, const T*, T*, T*, const T*, const T*, int, const T*, \
                                bool, double*);
INSTANTIATE(float)
INSTANTIATE(double)

}  // namespace bptt
