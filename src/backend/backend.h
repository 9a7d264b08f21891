// The compute interface a model calls. A model describes its math in these ops; a backend runs
// them on its device. Activations are row-major float matrices [n_tokens][width]; weights are
// TensorViews in their stored (usually quantized) type and are never dequantized as a whole.
#pragma once

#include <cstdint>
#include <memory>

#include "tensor/tensor.h"

namespace strata {

class ThreadPool;

struct RopeParams {
    int n_rot = 0;             // rotated dimensions per head (rope.dimension_count)
    float freq_base = 10000.f;
    float freq_scale = 1.f;    // linear scaling: positions are multiplied by this
    bool neox = false;         // NeoX pairs (i, i + n_rot/2) instead of GPT-J pairs (2i, 2i+1)
    const float* freq_factors = nullptr;  // optional per-pair divisors (Llama-3.1 rope_freqs)
};

struct AttentionParams {
    int n_head = 0, n_head_kv = 0, head_dim_k = 0, head_dim_v = 0;
    float scale = 1.f;
};

class Backend {
public:
    virtual ~Backend() = default;
    virtual const char* name() const = 0;
    virtual int n_threads() const = 0;

    // y[t][r] = Σ_c w[r][c] · x[t][c] for a 2-D weight w (ne[0] = columns, ne[1] = rows).
    virtual void matmul(const TensorView& w, const float* x, int64_t n_tokens, float* y) = 0;
    // out[i] = row ids[i] of table, dequantized (embedding lookup).
    virtual void get_rows(const TensorView& table, const int32_t* ids, int64_t n, float* out) = 0;
    // out = x / rms(x) · weight, per row of width dim (weight may be null: no scale).
    virtual void rmsnorm(const float* x, const float* weight, int64_t n_tokens, int64_t dim, float eps, float* out) = 0;
    // In-place rotary embedding of [n_tokens][n_heads · head_dim] at the given positions.
    virtual void rope(float* x, int64_t n_tokens, int n_heads, int head_dim, const int32_t* positions,
                      const RopeParams& p) = 0;
    // Causal attention of n_tokens queries at positions n_past … n_past+n_tokens-1 over the cache
    // rows 0 … n_past+n_tokens-1 (which already hold this batch's keys and values).
    virtual void attention(const float* q, int64_t n_tokens, const float* k_cache, const float* v_cache,
                           int64_t n_past, const AttentionParams& p, float* out) = 0;
    // out = silu(gate) ⊙ up, element-wise over n values.
    virtual void swiglu(const float* gate, const float* up, int64_t n, float* out) = 0;
    // x += y, element-wise over n values.
    virtual void add(float* x, const float* y, int64_t n) = 0;
    // x[t] += bias for every row t of width dim.
    virtual void add_bias(float* x, const float* bias, int64_t n_tokens, int64_t dim) = 0;
};

// The CPU backend with n_threads workers.
std::unique_ptr<Backend> make_cpu_backend(int n_threads);

}  // namespace strata
