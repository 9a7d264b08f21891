// Host-callable launchers of the CUDA kernels, one group per .cu file. They take raw device
// pointers, byte strides between rows (a Tensor's nb[1], so column views work unchanged) and the
// stream to queue on; they return once the kernel is queued and check the launch with
// STRATA_CUDA_CHECK (a failure throws strata::Error). Shapes are the caller's to check
// (src/backend/cuda/cuda_backend.cpp checks what would otherwise touch memory out of bounds).
// Matrices are [n_cols, n_rows]: row i starts at base + i · row_stride, its n_cols elements
// contiguous.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "tensor/ggml_type.h"

namespace strata {

// ---- The weight types of get_rows, matmul and moe_ffn ---------------------------------------------
// Whether the three have kernels for tables or weights of this type: the float types and every
// quantized type the type table has a dot product for (dequant.cuh lists them). Rows of a
// quantized type start on a block and hold whole blocks.
bool cuda_weight_type_supported(GgmlType type);

// ---- get_rows.cu: out row i = table row ids[i], as floats --------------------------------------
// The values are the reference dequantizers' exactly; an id outside [0, table_rows) gives a
// row of NaN (the caller checks ids).
void launch_get_rows(GgmlType type, const void* table, size_t table_row_stride, int64_t table_rows,
                     const int32_t* ids, int64_t n_ids, int64_t n_cols, float* out, size_t out_row_stride,
                     cudaStream_t stream);

// ---- elementwise.cu ----------------------------------------------------------------------------
// out = x / sqrt(mean(x²) + eps) · weight per row; weight may be null (no scale); out may be x.
void launch_rmsnorm(const float* x, size_t x_row_stride, const float* weight, int64_t n_cols, int64_t n_rows,
                    float eps, float* out, size_t out_row_stride, cudaStream_t stream);
// x += y over [n_cols, n_rows].
void launch_add(float* x, size_t x_row_stride, const float* y, size_t y_row_stride, int64_t n_cols, int64_t n_rows,
                cudaStream_t stream);
// out = silu(gate) ⊙ up over [n_cols, n_rows]; out may be gate or up.
void launch_swiglu(const float* gate, size_t gate_row_stride, const float* up, size_t up_row_stride, float* out,
                   size_t out_row_stride, int64_t n_cols, int64_t n_rows, cudaStream_t stream);
// x[t] += bias for every row t (bias contiguous [n_cols]).
void launch_add_bias(float* x, size_t x_row_stride, const float* bias, int64_t n_cols, int64_t n_rows,
                     cudaStream_t stream);
// x[t] += sigmoid(gate[t][0]) · y[t]; gate is one float per row, rows gate_row_stride bytes apart.
void launch_add_gated(float* x, size_t x_row_stride, const float* y, size_t y_row_stride, const float* gate,
                      size_t gate_row_stride, int64_t n_cols, int64_t n_rows, cudaStream_t stream);

// ---- rope.cu: in-place rotary embedding ----------------------------------------------------------
// The per-pair inverse frequencies base^(−2i/n_rot), computed on the host exactly as the CPU does
// (std::pow), passed by value (1 KiB of kernel parameters): n_rot / 2 ≤ kMaxRopePairs.
constexpr int kMaxRopePairs = 256;
struct RopeFreqs {
    float inv_freq[kMaxRopePairs];
};
// x [n_heads · head_dim, n_rows]: pair i of every head of row t turns by
// θ = (positions[t] · freq_scale) · inv_freq[i] / freq_factors[i] (freq_factors may be null), pairs
// (2i, 2i + 1) or, neox, (i, i + n_rot / 2).
void launch_rope(float* x, size_t x_row_stride, int64_t n_rows, int n_heads, int64_t head_dim, int n_rot, bool neox,
                 const int32_t* positions, float freq_scale, const RopeFreqs& freqs, const float* freq_factors,
                 cudaStream_t stream);

// ---- attention.cu: kv_write and attention over F32 / F16 / Q8_0 caches ---------------------------
enum class CacheType { F32, F16, Q8_0 };
// One side (keys or values) of the caches a launch reads or writes, by value in the kernel
// parameters: count 1 means every row uses cache 0 (one sequence); otherwise row i of the launch
// uses cache i, and the host splits a batch into launches of at most kMaxKvCaches rows.
constexpr int kMaxKvCaches = 64;
struct KvCacheRows {
    char* data[kMaxKvCaches];
    size_t row_stride[kMaxKvCaches];
    int64_t n_ctx[kMaxKvCaches];  // rows of the cache: a position at or past it is not written or read
    int count;
};
// Row t of src [width, n_rows] stored at row positions[t] of its cache in the cache's type (F16
// rounded to nearest even, Q8_0 by the reference quantizer: width a multiple of 32). Rows whose
// position lies outside the cache are not written.
void launch_kv_write(CacheType type, const KvCacheRows& caches, const float* src, size_t src_row_stride, int64_t width,
                     int64_t n_rows, const int32_t* positions, cudaStream_t stream);
// Causal attention with grouped-query heads: row t's query head h (q [n_head · head_dim_k, n_rows])
// attends to rows 0 … positions[t] of KV head h / (n_head / n_head_kv) of its cache; out
// [n_head · head_dim_v, n_rows]. A head whose position lies outside its cache gets NaN.
constexpr int kMaxAttentionHeadDim = 256;
struct AttentionShape {
    int n_head, n_head_kv, head_dim_k, head_dim_v;  // head dims ≤ kMaxAttentionHeadDim
    float scale;
};
void launch_attention(CacheType k_type, CacheType v_type, const KvCacheRows& k_caches, const KvCacheRows& v_caches,
                      const float* q, size_t q_row_stride, int64_t n_rows, const AttentionShape& shape,
                      const int32_t* positions, float* out, size_t out_row_stride, cudaStream_t stream);

// ---- moe_route.cu: the router ---------------------------------------------------------------------
// logits [n_expert, n_tokens] → ids I32 [k, n_tokens] and weights F32 [k, n_tokens], most probable
// first (ties to the lower id); counts (null: none) gains one per choice. n_expert ≤ kMaxMoeExperts.
constexpr int kMaxMoeExperts = 2048;
struct MoeRouteArgs {
    bool sigmoid;         // per-expert sigmoid, else softmax over the experts
    bool normalize_top_k; // the k chosen probabilities renormalized to sum to 1
    float weights_scale;
};
void launch_moe_route(const float* logits, size_t logits_row_stride, int n_expert, int64_t n_tokens, int k,
                      const MoeRouteArgs& args, int32_t* ids, size_t ids_row_stride, float* weights,
                      size_t weights_row_stride, int32_t* counts, cudaStream_t stream);

// ---- ssm.cu: the Mamba ops ------------------------------------------------------------------------
// Where a recurrent op records its state after each of the batch's last `count` tokens: ring row
// (positions[t] + 1) % depth, rows row_stride bytes apart. count 0: nothing (ring may be null).
struct SsmSnapshots {
    float* ring;
    size_t row_stride;
    int64_t depth;
    int64_t count;  // at most n_tokens
    const int32_t* positions;
};
// out[t][c] = silu(bias[c] + Σ_k weight[c][k] · x'[t + k][c]), x' = [conv_state; x], then
// conv_state (contiguous [n_channels, d_conv − 1]) ← the last d_conv − 1 rows of x'. weight
// contiguous [d_conv, n_channels]; bias may be null; out must not overlap x or conv_state.
void launch_ssm_conv(const float* x, size_t x_row_stride, const float* weight, const float* bias, float* conv_state,
                     int64_t n_channels, int d_conv, int64_t n_tokens, float* out, size_t out_row_stride,
                     const SsmSnapshots& snapshots, cudaStream_t stream);
// The selective scan (backend.h, Backend::ssm_scan), token by token. d_state ≤ kMaxSsmState.
constexpr int kMaxSsmState = 256;
struct SsmScanArgs {
    const float* x;   // [n_head · head_dim, n_tokens]
    size_t x_row_stride;
    const float* dt;  // [n_head, n_tokens]
    size_t dt_row_stride;
    const float* A;   // contiguous [n_head][d_state] (a_per_state) or [n_head]
    const float* B;   // [n_group · d_state, n_tokens]
    size_t B_row_stride;
    const float* C;
    size_t C_row_stride;
    const float* D;   // [n_head]
    float* state;     // contiguous [n_head][head_dim][d_state]
    float* y;         // [n_head · head_dim, n_tokens]
    size_t y_row_stride;
    int64_t n_head, head_dim, d_state, n_group, n_tokens;
    bool a_per_state;
};
void launch_ssm_scan(const SsmScanArgs& args, const SsmSnapshots& snapshots, cudaStream_t stream);
// out = (y ⊙ silu(z)) / rms over each of n_group groups of a row · weight (contiguous [n_cols]);
// out may be y.
void launch_rmsnorm_gated(const float* y, size_t y_row_stride, const float* z, size_t z_row_stride, const float* weight,
                          int64_t n_cols, int64_t n_rows, int64_t n_group, float eps, float* out,
                          size_t out_row_stride, cudaStream_t stream);

// ---- matmul.cu: y[t][r] = Σ_c w[r][c] · x[t][c] for every supported weight type ---------------
// w [n_cols, n_rows] in its stored type, x [n_cols, n_tokens] and y [n_rows, n_tokens] in F32.
void launch_matmul(GgmlType type, const void* w, size_t w_row_stride, const float* x, size_t x_row_stride,
                   int64_t n_cols, int64_t n_rows, int64_t n_tokens, float* y, size_t y_row_stride,
                   cudaStream_t stream);

// ---- moe.cu: the expert FFN, experts picked on the device ---------------------------------------
// One stack of expert matrices [n_cols, n_rows, n_expert]: expert e's row r starts at
// data + e · expert_stride + r · row_stride.
struct MoeExperts {
    GgmlType type;
    const void* data;
    size_t row_stride, expert_stride;
    int64_t n_cols, n_rows, n_expert;
};
// out[t] = Σ_j weights[t][j] · down_e · (silu(gate_e · h[t]) ⊙ up_e · h[t]) with e = ids[t][j],
// for h [n_embd, n_tokens], ids I32 and weights F32 [k, n_tokens], out [n_embd, n_tokens];
// gate and up [n_embd, n_ff, ·], down [n_ff, n_embd, ·]. act is scratch of n_ff · n_tokens · k
// floats. An expert id outside [0, n_expert) makes its token's outputs NaN (the router writes
// valid ids, and the host never sees them to check).
void launch_moe_ffn(const float* h, size_t h_row_stride, int64_t n_tokens, const MoeExperts& gate,
                    const MoeExperts& up, const MoeExperts& down, const int32_t* ids, size_t ids_row_stride, int k,
                    const float* weights, size_t weights_row_stride, float* act, float* out, size_t out_row_stride,
                    cudaStream_t stream);

}  // namespace strata
