// The compute interface a model calls. A backend owns all memory a model computes on — weights,
// activations (a per-forward Workspace), KV cache and recurrent state — and runs ops on Tensors in
// that memory. The host boundary is narrow: token ids and positions go in through write(),
// logits come out through read(); every op between is queued, may run asynchronously, and is
// only waited for by read() or synchronize(). Nothing an op needs per step is baked into the
// call: positions (and so each sequence's length) are read from a tensor, so a device backend
// can capture one decode step and replay it.
//
// Conventions of every op: activations are F32 matrices [ne0 = width, ne1 = tokens] whose rows
// may be strided (column views, nb[1] larger than a row); outputs may be such views too; an empty
// Tensor stands for an absent optional input. Shapes are checked by the ops' callers (the model
// loaders check every weight's shape); backends check only what would otherwise corrupt memory.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "backend/buffer.h"
#include "backend/tensor.h"
#include "tensor/tensor.h"
#include "util/error.h"

namespace strata {

struct RopeParams {
    int n_rot = 0;             // rotated dimensions per head (rope.dimension_count)
    float freq_base = 10000.f;
    float freq_scale = 1.f;    // linear scaling: positions are multiplied by this
    bool neox = false;         // NeoX pairs (i, i + n_rot/2) instead of GPT-J pairs (2i, 2i+1)
    Tensor freq_factors;       // optional F32 [n_rot / 2] divisors (Llama-3.1 rope_freqs)
};

struct AttentionParams {
    int n_head = 0, n_head_kv = 0, head_dim_k = 0, head_dim_v = 0;
    float scale = 1.f;
};

// One sequence's keys and values for one attention layer: k [n_head_kv · head_dim_k, n_ctx] and
// v [n_head_kv · head_dim_v, n_ctx] in the cache's type (F32, F16 or Q8_0); row p holds position p.
struct KvCache {
    Tensor k, v;
};

// Shape of a selective state-space scan, shared by Mamba-1 and Mamba-2 (the SSD paper's view):
// the state holds n_head heads of [head_dim][d_state]; head h reads B and C of group
// h / (n_head / n_group). Mamba-1 is the case head_dim 1, one head per channel, one group, and
// A per head and state; Mamba-2 has one scalar A per head.
struct SsmScanParams {
    int64_t n_head = 0, head_dim = 1, d_state = 0, n_group = 1;
    bool a_per_state = false;  // A is [n_head][d_state] (Mamba-1), else [n_head] (Mamba-2)
};

// Where a recurrent op also records its state after each of the batch's last `count` tokens, for
// rolling back: ring [state size, depth] F32, the state after the token at position p going to
// slot (p + 1) % depth. count 0 records nothing.
struct SnapshotRing {
    Tensor ring;
    int64_t count = 0;
};

enum class ExpertGating { Softmax, Sigmoid };

// How router logits become the k chosen experts and their weights: probabilities over all n
// experts (softmax or per-expert sigmoid), the k most probable (ties to the lower id), their
// probabilities optionally renormalized to sum to 1, then multiplied by weights_scale.
struct MoeRouting {
    ExpertGating gating = ExpertGating::Softmax;
    bool normalize_top_k = true;  // Mixtral: yes; Qwen2-MoE (norm_topk_prob false) and Jamba: no
    float weights_scale = 1.0f;   // DeepSeek's routed_scaling_factor
};

// Thrown by a backend for an op or type it does not implement (yet); the message names both.
struct NotImplemented : Error {
    using Error::Error;
};

class Backend {
public:
    virtual ~Backend() = default;
    virtual const char* name() const = 0;
    virtual int n_threads() const = 0;

    // ---- Memory ------------------------------------------------------------------------------
    // A new buffer of `bytes` (contents undefined).
    virtual std::unique_ptr<BackendBuffer> alloc(size_t bytes) = 0;
    // A weight of a loaded file in this backend's memory: the CPU backend computes on the mapped
    // bytes in place (no copy, no extra RSS); a device backend uploads them into a buffer it
    // appends to `keep`.
    virtual Tensor load_weight(const TensorView& host, WeightBuffers& keep) = 0;
    // Host ↔ backend copies of the first `bytes` of a contiguous tensor. write returns once `src`
    // may be reused; read waits for the queued work and returns with `dst` filled.
    virtual void write(const Tensor& dst, const void* src, size_t bytes) = 0;
    virtual void read(const Tensor& src, void* dst, size_t bytes) = 0;
    // dst = src for two contiguous tensors of the same byte size, queued.
    virtual void copy(const Tensor& dst, const Tensor& src) = 0;
    // Zeroes t's elements (a view's rows only, not the bytes between them).
    virtual void fill_zero(const Tensor& t) = 0;
    // Waits until every queued op has finished.
    virtual void synchronize() {}

    // ---- Dense ops ---------------------------------------------------------------------------
    // y[t][r] = Σ_c w[r][c] · x[t][c] for a 2-D weight w [cols, rows] in any stored type.
    virtual void matmul(const Tensor& w, const Tensor& x, const Tensor& y) = 0;
    // out[i] = row ids[i] of table, as floats (embedding lookup); ids I32 [n], out [ne0, n]. The
    // caller checks the ids against the table.
    virtual void get_rows(const Tensor& table, const Tensor& ids, const Tensor& out) = 0;
    // out = x / rms(x) · weight per row (weight F32 [ne0], or empty: no scale).
    virtual void rmsnorm(const Tensor& x, const Tensor& weight, float eps, const Tensor& out) = 0;
    // In-place rotary embedding of x [n_heads · head_dim, n] at positions I32 [n].
    virtual void rope(const Tensor& x, int n_heads, const Tensor& positions, const RopeParams& p) = 0;
    // out = silu(gate) ⊙ up, element-wise (out may alias either).
    virtual void swiglu(const Tensor& gate, const Tensor& up, const Tensor& out) = 0;
    // x += y, element-wise over matrices of one shape.
    virtual void add(const Tensor& x, const Tensor& y) = 0;
    // x[t] += bias for every row t (bias F32 [ne0]).
    virtual void add_bias(const Tensor& x, const Tensor& bias) = 0;
    // x[t] += sigmoid(gate[t]) · y[t], gate [1, n]: a gated residual (the MoE shared expert).
    virtual void add_gated(const Tensor& x, const Tensor& y, const Tensor& gate) = 0;

    // ---- Attention ---------------------------------------------------------------------------
    // Row t of k and v [width, n] is converted to the cache's type and stored at row positions[t]
    // of caches[t] (of caches[0] when one cache is given: every row belongs to one sequence).
    virtual void kv_write(std::span<const KvCache> caches, const Tensor& k, const Tensor& v,
                          const Tensor& positions) = 0;
    // Causal attention with grouped-query heads: query row t (q [n_head · head_dim_k, n]) attends
    // to rows 0 … positions[t] of its cache (chosen as in kv_write), which already hold them;
    // out [n_head · head_dim_v, n].
    virtual void attention(const Tensor& q, std::span<const KvCache> caches, const Tensor& positions,
                           const AttentionParams& p, const Tensor& out) = 0;

    // ---- Mixture of experts ------------------------------------------------------------------
    // The router: logits [n_expert, n] become the k chosen experts ids I32 [k, n] and their
    // weights F32 [k, n], most probable first; counts I32 [n_expert] (optional) gains one per
    // choice (for --verbose statistics).
    virtual void moe_route(const Tensor& logits, int k, const MoeRouting& routing, const Tensor& ids,
                           const Tensor& weights, const Tensor& counts) = 0;
    // out[t] = Σ_j weights[t][j] · down_e · (silu(gate_e · h[t]) ⊙ up_e · h[t]) with e = ids[t][j],
    // the experts stacked along ne[2] of gate/up [n_embd, n_ff, n_expert] and down
    // [n_ff, n_embd, n_expert]; each chosen expert's weights are read once per call.
    virtual void moe_ffn(const Tensor& h, const Tensor& gate_exps, const Tensor& up_exps, const Tensor& down_exps,
                         const Tensor& ids, const Tensor& weights, const Tensor& out) = 0;

    // ---- State-space (Mamba) ops -------------------------------------------------------------
    // Causal depthwise conv1d over time, then SiLU (every Mamba variant applies it there):
    // out[t][c] = silu(bias[c] + Σ_k weight[c][k] · x'[t + k][c]) with x' = [conv_state; x], the
    // conv_state [n_channels, d_conv − 1] holding the inputs before this batch, oldest first;
    // weight F32 [d_conv, n_channels], bias optional. Afterwards conv_state holds the batch's last
    // d_conv − 1 rows of x'; `snapshots` records it after the last tokens.
    virtual void ssm_conv(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& conv_state,
                          const Tensor& out, const Tensor& positions, const SnapshotRing& snapshots) = 0;
    // The selective scan, the recurrence of the Mamba paper's eq. 2a-2b with Ā = exp(ΔA) (its
    // zero-order hold, eq. 4) and B̄ = ΔB (the simplification its reference code and HF use):
    // per token t and head h, Δ = softplus(dt[t][h]) and for each channel p and state s
    //   state[h][p][s] ← exp(Δ · A[h][s]) · state[h][p][s] + Δ · B[t][g][s] · x[t][h][p]
    //   y[t][h][p] = Σ_s C[t][g][s] · state[h][p][s] + D[h] · x[t][h][p]
    // x, y [n_head · head_dim, n]; dt [n_head, n]; B, C [n_group · d_state, n]; state F32
    // [n_head · head_dim · d_state]; `snapshots` records it after the last tokens.
    virtual void ssm_scan(const Tensor& x, const Tensor& dt, const Tensor& A, const Tensor& B, const Tensor& C,
                          const Tensor& D, const SsmScanParams& p, const Tensor& state, const Tensor& y,
                          const Tensor& positions, const SnapshotRing& snapshots) = 0;
    // Mamba-2's gated RMSNorm: v = y ⊙ silu(z), normalized over each of n_group groups of a row,
    // times weight F32 [ne0]. out may alias y.
    virtual void rmsnorm_gated(const Tensor& y, const Tensor& z, const Tensor& weight, int64_t n_group, float eps,
                               const Tensor& out) = 0;
};

// The CPU backend with n_threads workers and the best SIMD kernels this CPU has.
std::unique_ptr<Backend> make_cpu_backend(int n_threads);
// The CPU backend on the scalar reference kernels, one thread: the reference of the op suite.
std::unique_ptr<Backend> make_reference_backend();

// The backends compiled into this binary, by name ("cpu", "cuda"), and whether each can run here.
struct BackendInfo {
    std::string name;
    bool available = false;
    std::string why_not;  // when unavailable: the reason, for skip messages
};
std::vector<BackendInfo> list_backends();
// A backend by name; throws Error naming the backends built in when unknown or unavailable.
std::unique_ptr<Backend> make_backend(const std::string& name, int n_threads);

}  // namespace strata
