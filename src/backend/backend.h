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

// Shape of a selective state-space scan, shared by Mamba-1 and Mamba-2 (the SSD paper's view):
// the state holds n_head heads of [head_dim][d_state]; head h reads B and C of group
// h / (n_head / n_group). Mamba-1 is the case head_dim 1, one head per channel, one group, and
// A per head and state; Mamba-2 has one scalar A per head.
struct SsmScanParams {
    int64_t n_head = 0, head_dim = 1, d_state = 0, n_group = 1;
    bool a_per_state = false;  // A is [n_head][d_state] (Mamba-1), else [n_head] (Mamba-2)
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

    // --- State-space (Mamba) ops; conv_state and state are the sequence's recurrent state. ---
    // Causal depthwise conv1d over time, then SiLU (every Mamba variant applies it there):
    // out[t][c] = silu(bias[c] + Σ_k weight[c][k] · x'[t + k][c]) with x' = [conv_state; x], the
    // conv_state's d_conv − 1 rows of n_channels being the inputs before this batch, oldest
    // first. Afterwards conv_state holds the batch's last d_conv − 1 rows of x'.
    virtual void ssm_conv(const float* x, int64_t n_tokens, int64_t n_channels, const float* weight, int d_conv,
                          const float* bias, float* conv_state, float* out) = 0;
    // The selective scan, the recurrence of the Mamba paper's eq. 2a-2b with Ā = exp(ΔA) (its
    // zero-order hold, eq. 4) and B̄ = ΔB (the simplification its reference code and HF use):
    // per token t and head h, Δ = softplus(dt[t][h]) and for each channel p and state s
    //   state[h][p][s] ← exp(Δ · A[h][s]) · state[h][p][s] + Δ · B[t][g][s] · x[t][h][p]
    //   y[t][h][p] = Σ_s C[t][g][s] · state[h][p][s] + D[h] · x[t][h][p]
    // x, y [n_tokens][n_head · head_dim]; dt [n_tokens][n_head]; B, C [n_tokens][n_group · d_state].
    virtual void ssm_scan(const float* x, const float* dt, const float* A, const float* B, const float* C,
                          const float* D, int64_t n_tokens, const SsmScanParams& p, float* state, float* y) = 0;
    // Mamba-2's gated RMSNorm: v = y ⊙ silu(z), normalized over each of n_group groups of
    // dim / n_group values of a row, times weight [dim]. Rows of width dim; out may alias y.
    virtual void rmsnorm_gated(const float* y, const float* z, const float* weight, int64_t n_tokens, int64_t dim,
                               int64_t n_group, float eps, float* out) = 0;
};

// The CPU backend with n_threads workers.
std::unique_ptr<Backend> make_cpu_backend(int n_threads);

}  // namespace strata
