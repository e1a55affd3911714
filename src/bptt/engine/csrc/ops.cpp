// torch's side of the compiled loops: the matrix product, and the operators torch.ops.bptt_loops.* that
// check their tensors and hand raw pointers to the loops (loops.h). bptt.engine.compiled calls them.
#include <ATen/ATen.h>
#include <torch/library.h>

#include <type_traits>

#include "loops.h"

extern "C" {
// Fortran BLAS, weak: resolved in the BLAS torch links when it exports one, else null (then at::addmm runs).
void sgemm_(const char*, const char*, const int*, const int*, const int*, const float*, const float*, const int*,
            const float*, const int*, const float*, float*, const int*) __attribute__((weak));
void dgemm_(const char*, const char*, const int*, const int*, const int*, const double*, const double*, const int*,
            const double*, const int*, const double*, double*, const int*) __attribute__((weak));
}

namespace bptt {

namespace {
bool use_blas = false;  // set by blas_check: a BLAS was found and agrees with at::mm
}

// A column-major BLAS computes C^T = op(B)^T op(A)^T, which is the row-major C in the same memory.
template <typename T>
void gemm(bool trans_a, bool trans_b, int m, int n, int k, T alpha, const T* a, int lda, const T* b, int ldb, T beta,
          T* c, int ldc) {
  if (m == 0 || n == 0) return;
  if (use_blas) {
    const char ta = trans_b ? 'T' : 'N', tb = trans_a ? 'T' : 'N';
    if constexpr (std::is_same_v<T, float>) {
      sgemm_(&ta, &tb, &n, &m, &k, &alpha, b, &ldb, a, &lda, &beta, c, &ldc);
    } else {
      dgemm_(&ta, &tb, &n, &m, &k, &alpha, b, &ldb, a, &lda, &beta, c, &ldc);
    }
    return;
  }
  const auto options = at::TensorOptions().dtype(std::is_same_v<T, float> ? at::kFloat : at::kDouble);
  auto view = [&](const T* p, int rows, int cols, int ld, bool trans) {
    at::Tensor t = at::from_blob(const_cast<T*>(p), {trans ? cols : rows, trans ? rows : cols}, {ld, 1}, options);
    return trans ? t.t() : t;
  };
  at::from_blob(c, {m, n}, {ldc, 1}, options).addmm_(view(a, m, k, lda, trans_a), view(b, k, n, ldb, trans_b), beta,
                                                     alpha);
}

template void gemm<float>(bool, bool, int, int, int, float, const float*, int, const float*, int, float, float*, int);
template void gemm<double>(bool, bool, int, int, int, double, const double*, int, const double*, int, double, double*,
                           int);

namespace {

// Whether the BLAS found agrees with at::mm on small products (an ILP64 BLAS, say, would not); until this
// has run, and wherever it says no, every product runs through at::addmm. Returns whether BLAS is used.
bool blas_check() {
  use_blas = false;
  if (sgemm_ == nullptr || dgemm_ == nullptr) return false;
  bool agrees = true;
  for (auto dtype : {at::kFloat, at::kDouble}) {
    at::Tensor a = at::arange(12, dtype).reshape({3, 4}).div_(7);
    at::Tensor b = at::arange(20, dtype).reshape({5, 4}).div_(5);
    at::Tensor got = at::zeros({3, 5}, dtype);
    use_blas = true;
    if (dtype == at::kFloat) {
      gemm<float>(false, true, 3, 5, 4, 1.0f, a.data_ptr<float>(), 4, b.data_ptr<float>(), 4, 0.0f,
                  got.data_ptr<float>(), 5);
    } else {
      gemm<double>(false, true, 3, 5, 4, 1.0, a.data_ptr<double>(), 4, b.data_ptr<double>(), 4, 0.0,
                   got.data_ptr<double>(), 5);
    }
    use_blas = false;
    agrees = agrees && at::allclose(got, at::mm(a, b.t()));
  }
  use_blas = agrees;
  return use_blas;
}

template <typename T>
T* ptr(const at::Tensor& t) {
  return t.data_ptr<T>();
}

template <typename T>
T* ptr(const std::optional<at::Tensor>& t) {
  return t.has_value() && t->defined() ? t->data_ptr<T>() : nullptr;
}

// Every tensor a loop reads or writes: contiguous, on the CPU, of the first one's dtype (float32 or float64).
void check(std::initializer_list<const at::Tensor*> tensors) {
  const at::ScalarType dtype = (*tensors.begin())->scalar_type();
  TORCH_CHECK(dtype == at::kFloat || dtype == at::kDouble, "bptt_loops: float32 or float64 only, got ", dtype);
  for (const at::Tensor* t : tensors) {
    TORCH_CHECK(t->device().is_cpu() && t->is_contiguous() && t->scalar_type() == dtype,
                "bptt_loops: every tensor contiguous, on the CPU, of one dtype");
  }
}

double* norms_ptr(const std::optional<at::Tensor>& norms) {
  if (!norms.has_value() || !norms->defined()) return nullptr;
  TORCH_CHECK(norms->scalar_type() == at::kDouble && norms->is_contiguous(), "bptt_loops: norms are float64");
  return norms->data_ptr<double>();
}

#define DISPATCH(tensor, call)               \
  if ((tensor).scalar_type() == at::kFloat) { \
    using T = float;                          \
    call;                                     \
  } else {                                    \
    using T = double;                         \
    call;                                     \
  }

void rnn_forward_op(at::Tensor out, const std::optional<at::Tensor>& pre, const at::Tensor& h0,
                    const at::Tensor& weight_hh, int64_t act, const std::optional<at::Tensor>& slope) {
  check({&out, &h0, &weight_hh});
  DISPATCH(out, rnn_forward<T>(out.size(0), out.size(1), out.size(2), ptr<T>(out), ptr<T>(pre), ptr<T>(h0),
                               ptr<T>(weight_hh), act, ptr<T>(slope)))
}

void rnn_backward_op(const at::Tensor& out, const std::optional<at::Tensor>& pre, at::Tensor grad_h,
                     at::Tensor delta, const std::optional<at::Tensor>& delta_next, const at::Tensor& weight_hh,
                     int64_t act, const std::optional<at::Tensor>& slope, bool one_at_zero,
                     const std::optional<at::Tensor>& norms) {
  check({&out, &grad_h, &delta, &weight_hh});
  DISPATCH(out, rnn_backward<T>(out.size(0), out.size(1), out.size(2), ptr<T>(out), ptr<T>(pre), ptr<T>(grad_h),
                                ptr<T>(delta), ptr<T>(delta_next), ptr<T>(weight_hh), act, ptr<T>(slope),
                                one_at_zero, norms_ptr(norms)))
}

void lstm_forward_op(at::Tensor gates, at::Tensor cells, at::Tensor tanh_cells, at::Tensor cell_out, at::Tensor out,
                     const at::Tensor& h0, const at::Tensor& c0, const at::Tensor& weight_hh,
                     const std::optional<at::Tensor>& weight_hr) {
  check({&gates, &cells, &tanh_cells, &cell_out, &out, &h0, &c0, &weight_hh});
  DISPATCH(gates, lstm_forward<T>(gates.size(0), gates.size(1), cells.size(2), out.size(2), ptr<T>(gates),
                                  ptr<T>(cells), ptr<T>(tanh_cells), ptr<T>(cell_out), ptr<T>(out), ptr<T>(h0),
                                  ptr<T>(c0), ptr<T>(weight_hh), ptr<T>(weight_hr)))
}

void lstm_backward_op(const at::Tensor& gates, const at::Tensor& cells, const at::Tensor& tanh_cells,
                      const at::Tensor& c_prev_first, at::Tensor grad_h, at::Tensor grad_gates,
                      const std::optional<at::Tensor>& grad_gates_next, at::Tensor carry,
                      const at::Tensor& weight_hh, const std::optional<at::Tensor>& weight_hr,
                      const std::optional<at::Tensor>& grad_m, const std::optional<at::Tensor>& norms_h,
                      const std::optional<at::Tensor>& norms_c) {
  check({&gates, &cells, &tanh_cells, &c_prev_first, &grad_h, &grad_gates, &carry, &weight_hh});
  DISPATCH(gates, lstm_backward<T>(gates.size(0), gates.size(1), cells.size(2), grad_h.size(2), ptr<T>(gates),
                                   ptr<T>(cells), ptr<T>(tanh_cells), ptr<T>(c_prev_first), ptr<T>(grad_h),
                                   ptr<T>(grad_gates), ptr<T>(grad_gates_next), ptr<T>(carry), ptr<T>(weight_hh),
                                   ptr<T>(weight_hr), ptr<T>(grad_m), norms_ptr(norms_h), norms_ptr(norms_c)))
}

void gru_forward_op(at::Tensor gates, at::Tensor candidate, at::Tensor out, const at::Tensor& h0,
                    const at::Tensor& weight_hh, const std::optional<at::Tensor>& bias_hn, at::Tensor scratch) {
  check({&gates, &candidate, &out, &h0, &weight_hh, &scratch});
  DISPATCH(gates, gru_forward<T>(gates.size(0), gates.size(1), out.size(2), ptr<T>(gates), ptr<T>(candidate),
                                 ptr<T>(out), ptr<T>(h0), ptr<T>(weight_hh), ptr<T>(bias_hn), ptr<T>(scratch)))
}

void gru_backward_op(const at::Tensor& gates, const at::Tensor& candidate, const at::Tensor& out,
                     const at::Tensor& h_prev_first, at::Tensor grad_h, at::Tensor delta,
                     const std::optional<at::Tensor>& delta_next, at::Tensor carry, bool has_next,
                     const at::Tensor& weight_perm, const std::optional<at::Tensor>& norms) {
  check({&gates, &candidate, &out, &h_prev_first, &grad_h, &delta, &carry, &weight_perm});
  DISPATCH(gates, gru_backward<T>(gates.size(0), gates.size(1), out.size(2), ptr<T>(gates), ptr<T>(candidate),
                                  ptr<T>(out), ptr<T>(h_prev_first), ptr<T>(grad_h), ptr<T>(delta),
                                  ptr<T>(delta_next), ptr<T>(carry), has_next, ptr<T>(weight_perm), norms_ptr(norms)))
}

// G = 2 or 3 blocks along dim 0, each contiguous and of the outputs' (n, B, H) shape and dtype (a chunk's
// slice of a (G, T, B, H) buffer is one).
void check_blocks(const at::Tensor& blocks, const at::Tensor& out) {
  TORCH_CHECK(blocks.dim() == 4 && (blocks.size(0) == 2 || blocks.size(0) == 3) && blocks.device().is_cpu() &&
                  blocks.scalar_type() == out.scalar_type() && blocks[0].is_contiguous() &&
                  blocks.sizes().slice(1).equals(out.sizes()),
              "bptt_loops: gate blocks (G, n, B, H), G 2 or 3, each contiguous, of the outputs' shape and dtype");
}

// A (B, H) state of the outputs' (n, B, H).
void check_state(const at::Tensor& state, const at::Tensor& out) {
  TORCH_CHECK(out.dim() == 3 && state.dim() == 2 && state.size(0) == out.size(1) && state.size(1) == out.size(2),
              "bptt_loops: a state (B, H) of the outputs' (n, B, H)");
}

void min_forward_op(const at::Tensor& p, const at::Tensor& h_prev, at::Tensor out) {
  check({&out, &h_prev});
  check_blocks(p, out);
  check_state(h_prev, out);
  DISPATCH(out, min_forward<T>(p.size(0), out.size(0), out.size(1), out.size(2), ptr<T>(p), p.stride(0),
                               ptr<T>(h_prev), ptr<T>(out)))
}

void min_backward_op(const at::Tensor& p, const at::Tensor& out, const at::Tensor& h_prev_first, at::Tensor grad_h,
                     at::Tensor delta, at::Tensor carry, const std::optional<at::Tensor>& norms) {
  check({&out, &h_prev_first, &grad_h, &carry});
  check_blocks(p, out);
  check_blocks(delta, out);
  check_state(h_prev_first, out);
  check_state(carry, out);
  TORCH_CHECK(p.size(0) == delta.size(0), "bptt_loops: as many gate blocks in delta as in p");
  TORCH_CHECK(grad_h.sizes().equals(out.sizes()), "bptt_loops: grad_h of the outputs' shape");
  TORCH_CHECK(!norms.has_value() || !norms->defined() ||
                  (norms->dim() == 2 && norms->size(0) == out.size(0) && norms->size(1) == out.size(1)),
              "bptt_loops: norms (n, B)");
  DISPATCH(out, min_backward<T>(p.size(0), out.size(0), out.size(1), out.size(2), ptr<T>(p), p.stride(0),
                                ptr<T>(out), ptr<T>(h_prev_first), ptr<T>(grad_h), ptr<T>(delta), delta.stride(0),
                                ptr<T>(carry), norms_ptr(norms)))
}

}  // namespace
}  // namespace bptt

TORCH_LIBRARY(bptt_loops, m) {
  m.def("blas_check() -> bool", &bptt::blas_check);
  m.def("rnn_forward(Tensor(a!) out, Tensor(b!)? pre, Tensor h0, Tensor weight_hh, int act, Tensor? slope) -> ()",
        &bptt::rnn_forward_op);
  m.def(
      "rnn_backward(Tensor out, Tensor? pre, Tensor(a!) grad_h, Tensor(b!) delta, Tensor? delta_next, "
      "Tensor weight_hh, int act, Tensor? slope, bool one_at_zero, Tensor(c!)? norms) -> ()",
      &bptt::rnn_backward_op);
  m.def(
      "lstm_forward(Tensor(a!) gates, Tensor(b!) cells, Tensor(c!) tanh_cells, Tensor(d!) cell_out, Tensor(e!) out, "
      "Tensor h0, Tensor c0, Tensor weight_hh, Tensor? weight_hr) -> ()",
      &bptt::lstm_forward_op);
  m.def(
      "lstm_backward(Tensor gates, Tensor cells, Tensor tanh_cells, Tensor c_prev_first, Tensor(a!) grad_h, "
      "Tensor(b!) grad_gates, Tensor? grad_gates_next, Tensor(c!) carry, Tensor weight_hh, Tensor? weight_hr, "
      "Tensor(d!)? grad_m, Tensor(e!)? norms_h, Tensor(f!)? norms_c) -> ()",
      &bptt::lstm_backward_op);
  m.def(
      "gru_forward(Tensor(a!) gates, Tensor(b!) candidate, Tensor(c!) out, Tensor h0, Tensor weight_hh, "
      "Tensor? bias_hn, Tensor(d!) scratch) -> ()",
      &bptt::gru_forward_op);
  m.def(
      "gru_backward(Tensor gates, Tensor candidate, Tensor out, Tensor h_prev_first, Tensor(a!) grad_h, "
      "Tensor(b!) delta, Tensor? delta_next, Tensor(c!) carry, bool has_next, Tensor weight_perm, "
      "Tensor(d!)? norms) -> ()",
      &bptt::gru_backward_op);
  m.def("min_forward(Tensor p, Tensor h_prev, Tensor(a!) out) -> ()", &bptt::min_forward_op);
  m.def(
      "min_backward(Tensor p, Tensor out, Tensor h_prev_first, Tensor(a!) grad_h, Tensor(b!) delta, "
      "Tensor(c!) carry, Tensor(d!)? norms) -> ()",
      &bptt::min_backward_op);
}
