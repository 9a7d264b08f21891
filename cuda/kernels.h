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

// ---- matmul_float.cu: y[t][r] = Σ_c w[r][c] · x[t][c] --------------------------------------------
// w [n_cols, n_rows] in F32, F16 (IEEE half bits) or BF16 (bfloat16 bits), x [n_cols, n_tokens]
// and y [n_rows, n_tokens] in F32.
void launch_matmul_f32(const void* w, size_t w_row_stride, const float* x, size_t x_row_stride, int64_t n_cols,
                       int64_t n_rows, int64_t n_tokens, float* y, size_t y_row_stride, cudaStream_t stream);
void launch_matmul_f16(const void* w, size_t w_row_stride, const float* x, size_t x_row_stride, int64_t n_cols,
                       int64_t n_rows, int64_t n_tokens, float* y, size_t y_row_stride, cudaStream_t stream);
void launch_matmul_bf16(const void* w, size_t w_row_stride, const float* x, size_t x_row_stride, int64_t n_cols,
                        int64_t n_rows, int64_t n_tokens, float* y, size_t y_row_stride, cudaStream_t stream);

// ---- matmul_quant.cu: the same for every supported weight type -----------------------------------
// The one entry the backend calls: quantized weights run here, the float types go on to the
// launchers above.
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
