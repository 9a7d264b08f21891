// The CPU backend: quantized matmul (cpu_matmul.cpp: activations quantized to the weight type's
// pairing, as ggml does, then SIMD dot products chosen at startup), attention, the SSM ops and the
// element-wise ops, all over a thread pool.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "backend/backend.h"
#include "backend/cpu/cpu_ssm.h"
#include "backend/cpu/kernels.h"
#include "tensor/ggml_type.h"
#include "util/error.h"
#include "util/thread_pool.h"

namespace strata {

void cpu_attention(ThreadPool& pool, const float* q, int64_t n_tokens, const float* k_cache, const float* v_cache,
                   int64_t n_past, const AttentionParams& p, float* out);

namespace {

class CpuBackend final : public Backend {
public:
    explicit CpuBackend(int n_threads) : pool_(n_threads) {}
    const char* name() const override { return "cpu"; }
    int n_threads() const override { return pool_.size(); }

    void matmul(const TensorView& w, const float* x, int64_t n_tokens, float* y) override {
        cpu_matmul(pool_, cpu_kernels(), w, x, n_tokens, y, activations_);
    }

    void get_rows(const TensorView& table, const int32_t* ids, int64_t n, float* out) override {
        const TypeTraits& tt = type_traits(table.type);
        if (!tt.to_float) fail("tensor '", table.name, "': cannot dequantize type ", tt.name);
        const int64_t cols = table.ne[0], rows = table.ne[1];
        for (int64_t i = 0; i < n; ++i) {
            if (ids[i] < 0 || ids[i] >= rows) fail("token id ", ids[i], " is outside the vocabulary (", rows, " tokens)");
            tt.to_float(table.row(ids[i]), out + i * cols, cols);
        }
    }

    void rmsnorm(const float* x, const float* weight, int64_t n_tokens, int64_t dim, float eps, float* out) override {
        pool_.parallel_for(n_tokens, [&](int64_t t0, int64_t t1, int) {
            for (int64_t t = t0; t < t1; ++t) {
                const float* xt = x + t * dim;
                float* ot = out + t * dim;
                double sum = 0;
                for (int64_t i = 0; i < dim; ++i) sum += static_cast<double>(xt[i]) * xt[i];
                const float scale = 1.0f / std::sqrt(static_cast<float>(sum / static_cast<double>(dim)) + eps);
                for (int64_t i = 0; i < dim; ++i) ot[i] = xt[i] * scale * (weight ? weight[i] : 1.0f);
            }
        });
    }

    void rope(float* x, int64_t n_tokens, int n_heads, int head_dim, const int32_t* positions,
              const RopeParams& p) override {
        const int half = p.n_rot / 2;
        // theta_i = pos · base^(-2i/n_rot), as in the RoFormer paper (eq. 15) and ggml_rope.
        std::vector<float> inv_freq(static_cast<size_t>(half));
        for (int i = 0; i < half; ++i) {
            inv_freq[i] = std::pow(p.freq_base, -2.0f * static_cast<float>(i) / static_cast<float>(p.n_rot));
            if (p.freq_factors) inv_freq[i] /= p.freq_factors[i];
        }
        pool_.parallel_for(n_tokens, [&](int64_t t0, int64_t t1, int) {
            for (int64_t t = t0; t < t1; ++t) {
                const float pos = static_cast<float>(positions[t]) * p.freq_scale;
                for (int h = 0; h < n_heads; ++h) {
                    float* v = x + (t * n_heads + h) * head_dim;
                    for (int i = 0; i < half; ++i) {
                        const float theta = pos * inv_freq[i];
                        const float c = std::cos(theta), s = std::sin(theta);
                        const int a = p.neox ? i : 2 * i, b = p.neox ? i + half : 2 * i + 1;
                        const float x0 = v[a], x1 = v[b];
                        v[a] = x0 * c - x1 * s;
                        v[b] = x0 * s + x1 * c;
                    }
                }
            }
        });
    }

    void attention(const float* q, int64_t n_tokens, const float* k_cache, const float* v_cache, int64_t n_past,
                   const AttentionParams& p, float* out) override {
        cpu_attention(pool_, q, n_tokens, k_cache, v_cache, n_past, p, out);
    }

    void swiglu(const float* gate, const float* up, int64_t n, float* out) override {
        pool_.parallel_for(
            n,
            [&](int64_t i0, int64_t i1, int) {
                for (int64_t i = i0; i < i1; ++i) out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
            },
            4096);
    }

    void add(float* x, const float* y, int64_t n) override {
        for (int64_t i = 0; i < n; ++i) x[i] += y[i];
    }

    void add_bias(float* x, const float* bias, int64_t n_tokens, int64_t dim) override {
        for (int64_t t = 0; t < n_tokens; ++t) {
            for (int64_t i = 0; i < dim; ++i) x[t * dim + i] += bias[i];
        }
    }

    void ssm_conv(const float* x, int64_t n_tokens, int64_t n_channels, const float* weight, int d_conv,
                  const float* bias, float* conv_state, float* out) override {
        cpu_ssm_conv(pool_, x, n_tokens, n_channels, weight, d_conv, bias, conv_state, out);
    }

    void ssm_scan(const float* x, const float* dt, const float* A, const float* B, const float* C, const float* D,
                  int64_t n_tokens, const SsmScanParams& p, float* state, float* y) override {
        cpu_ssm_scan(pool_, x, dt, A, B, C, D, n_tokens, p, state, y);
    }

    void rmsnorm_gated(const float* y, const float* z, const float* weight, int64_t n_tokens, int64_t dim,
                       int64_t n_group, float eps, float* out) override {
        cpu_rmsnorm_gated(pool_, y, z, weight, n_tokens, dim, n_group, eps, out);
    }

private:
    ThreadPool pool_;
    std::vector<uint8_t> activations_;
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(int n_threads) { return std::make_unique<CpuBackend>(n_threads); }

}  // namespace strata
