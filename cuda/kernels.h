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

namespace strata {

// ---- get_rows.cu: out row i = table row ids[i], as floats --------------------------------------
void launch_get_rows_f32(const void* table, size_t table_row_stride, const int32_t* ids, int64_t n_ids,
                         int64_t n_cols, float* out, size_t out_row_stride, cudaStream_t stream);
void launch_get_rows_f16(const void* table, size_t table_row_stride, const int32_t* ids, int64_t n_ids,
                         int64_t n_cols, float* out, size_t out_row_stride, cudaStream_t stream);
// n_cols a multiple of 32 (Q8_0 blocks); the table's rows start on a block.
void launch_get_rows_q8_0(const void* table, size_t table_row_stride, const int32_t* ids, int64_t n_ids,
                          int64_t n_cols, float* out, size_t out_row_stride, cudaStream_t stream);

// ---- elementwise.cu ----------------------------------------------------------------------------
// out = x / sqrt(mean(x²) + eps) · weight per row; weight may be null (no scale); out may be x.
void launch_rmsnorm(const float* x, size_t x_row_stride, const float* weight, int64_t n_cols, int64_t n_rows,
                    float eps, float* out, size_t out_row_stride, cudaStream_t stream);
// x += y over [n_cols, n_rows].
void launch_add(float* x, size_t x_row_stride, const float* y, size_t y_row_stride, int64_t n_cols, int64_t n_rows,
                cudaStream_t stream);

// ---- matmul_float.cu: y[t][r] = Σ_c w[r][c] · x[t][c] --------------------------------------------
// w [n_cols, n_rows] in F32 or F16 (IEEE half bits), x [n_cols, n_tokens] and y [n_rows, n_tokens]
// in F32.
void launch_matmul_f32(const void* w, size_t w_row_stride, const float* x, size_t x_row_stride, int64_t n_cols,
                       int64_t n_rows, int64_t n_tokens, float* y, size_t y_row_stride, cudaStream_t stream);
void launch_matmul_f16(const void* w, size_t w_row_stride, const float* x, size_t x_row_stride, int64_t n_cols,
                       int64_t n_rows, int64_t n_tokens, float* y, size_t y_row_stride, cudaStream_t stream);

}  // namespace strata
