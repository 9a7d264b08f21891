// Row-wise and element-wise ops on F32 activations: rmsnorm, the residual add, swiglu, the bias
// add and the gated residual add.
#include "backend/cuda/cuda_check.h"
#include "common.cuh"
#include "kernels.h"

namespace strata {
namespace {

// rmsnorm: one block per row, since the scale needs the whole row's sum of squares. 256 threads
// (8 warps) stride over the row (a model's 256…8192 columns give each 1…32 elements, reads
// coalesced), reduce with block_sum, then scale the elements each thread read. Rows go on x
// (up to 2³¹ − 1 blocks), so no row loop is needed.
constexpr int kRmsnormBlock = 256;

__global__ void rmsnorm_kernel(const char* x, size_t x_stride, const float* weight, int64_t n_cols, float eps,
                               char* out, size_t out_stride) {
    const int64_t row = blockIdx.x;
    const float* xr = reinterpret_cast<const float*>(x + row * x_stride);
    float* outr = reinterpret_cast<float*>(out + row * out_stride);
    float sum = 0.0f;
    for (int64_t i = threadIdx.x; i < n_cols; i += blockDim.x) sum += xr[i] * xr[i];
    sum = block_sum(sum);
    // IEEE sqrt and division (not rsqrtf) so the scale matches the CPU's to rounding.
    const float scale = 1.0f / sqrtf(sum / static_cast<float>(n_cols) + eps);
    // Each thread rewrites only the elements it read, so out may alias x.
    for (int64_t i = threadIdx.x; i < n_cols; i += blockDim.x) {
        outr[i] = xr[i] * scale * (weight ? weight[i] : 1.0f);
    }
}

// add: one thread per element, a row's columns along x (coalesced), rows along y capped at
// grid_y and looped; 256 threads is the usual size for a memory-bound element-wise kernel
// (full occupancy on sm_90, and small enough that narrow rows waste little).
constexpr int kAddBlock = 256;

__global__ void add_kernel(char* x, size_t x_stride, const char* y, size_t y_stride, int64_t n_cols, int64_t n_rows) {
    const int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (j >= n_cols) return;
    for (int64_t i = blockIdx.y; i < n_rows; i += gridDim.y) {
        reinterpret_cast<float*>(x + i * x_stride)[j] += reinterpret_cast<const float*>(y + i * y_stride)[j];
    }
}

// swiglu, add_bias and add_gated have add's shape: one thread per element of a row (x), rows on
// y. Each thread reads its element's inputs before it writes the element, and no other thread
// touches that element, so out may alias an input. silu and sigmoid use expf (not __expf), the
// CPU's expressions term for term.
__global__ void swiglu_kernel(const char* gate, size_t gate_stride, const char* up, size_t up_stride, char* out,
                              size_t out_stride, int64_t n_cols, int64_t n_rows) {
    const int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (j >= n_cols) return;
    for (int64_t i = blockIdx.y; i < n_rows; i += gridDim.y) {
        const float g = reinterpret_cast<const float*>(gate + i * gate_stride)[j];
        const float u = reinterpret_cast<const float*>(up + i * up_stride)[j];
        reinterpret_cast<float*>(out + i * out_stride)[j] = g / (1.0f + expf(-g)) * u;
    }
}

__global__ void add_bias_kernel(char* x, size_t x_stride, const float* bias, int64_t n_cols, int64_t n_rows) {
    const int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (j >= n_cols) return;
    const float b = bias[j];
    for (int64_t i = blockIdx.y; i < n_rows; i += gridDim.y) reinterpret_cast<float*>(x + i * x_stride)[j] += b;
}

__global__ void add_gated_kernel(char* x, size_t x_stride, const char* y, size_t y_stride, const char* gate,
                                 size_t gate_stride, int64_t n_cols, int64_t n_rows) {
    const int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (j >= n_cols) return;
    for (int64_t i = blockIdx.y; i < n_rows; i += gridDim.y) {
        const float g = 1.0f / (1.0f + expf(-*reinterpret_cast<const float*>(gate + i * gate_stride)));
        reinterpret_cast<float*>(x + i * x_stride)[j] += g * reinterpret_cast<const float*>(y + i * y_stride)[j];
    }
}

}  // namespace

void launch_rmsnorm(const float* x, size_t x_row_stride, const float* weight, int64_t n_cols, int64_t n_rows,
                    float eps, float* out, size_t out_row_stride, cudaStream_t stream) {
    if (n_rows == 0 || n_cols == 0) return;
    rmsnorm_kernel<<<static_cast<unsigned>(n_rows), kRmsnormBlock, 0, stream>>>(
        reinterpret_cast<const char*>(x), x_row_stride, weight, n_cols, eps, reinterpret_cast<char*>(out),
        out_row_stride);
    STRATA_CUDA_CHECK(cudaGetLastError());
}

void launch_add(float* x, size_t x_row_stride, const float* y, size_t y_row_stride, int64_t n_cols, int64_t n_rows,
                cudaStream_t stream) {
    if (n_rows == 0 || n_cols == 0) return;
    const dim3 grid(blocks_for(n_cols, kAddBlock), grid_y(n_rows));
    add_kernel<<<grid, kAddBlock, 0, stream>>>(reinterpret_cast<char*>(x), x_row_stride,
                                               reinterpret_cast<const char*>(y), y_row_stride, n_cols, n_rows);
    STRATA_CUDA_CHECK(cudaGetLastError());
}

void launch_swiglu(const float* gate, size_t gate_row_stride, const float* up, size_t up_row_stride, float* out,
                   size_t out_row_stride, int64_t n_cols, int64_t n_rows, cudaStream_t stream) {
    if (n_rows == 0 || n_cols == 0) return;
    const dim3 grid(blocks_for(n_cols, kAddBlock), grid_y(n_rows));
    swiglu_kernel<<<grid, kAddBlock, 0, stream>>>(reinterpret_cast<const char*>(gate), gate_row_stride,
                                                  reinterpret_cast<const char*>(up), up_row_stride,
                                                  reinterpret_cast<char*>(out), out_row_stride, n_cols, n_rows);
    STRATA_CUDA_CHECK(cudaGetLastError());
}

void launch_add_bias(float* x, size_t x_row_stride, const float* bias, int64_t n_cols, int64_t n_rows,
                     cudaStream_t stream) {
    if (n_rows == 0 || n_cols == 0) return;
    const dim3 grid(blocks_for(n_cols, kAddBlock), grid_y(n_rows));
    add_bias_kernel<<<grid, kAddBlock, 0, stream>>>(reinterpret_cast<char*>(x), x_row_stride, bias, n_cols, n_rows);
    STRATA_CUDA_CHECK(cudaGetLastError());
}

void launch_add_gated(float* x, size_t x_row_stride, const float* y, size_t y_row_stride, const float* gate,
                      size_t gate_row_stride, int64_t n_cols, int64_t n_rows, cudaStream_t stream) {
    if (n_rows == 0 || n_cols == 0) return;
    const dim3 grid(blocks_for(n_cols, kAddBlock), grid_y(n_rows));
    add_gated_kernel<<<grid, kAddBlock, 0, stream>>>(reinterpret_cast<char*>(x), x_row_stride,
                                                     reinterpret_cast<const char*>(y), y_row_stride,
                                                     reinterpret_cast<const char*>(gate), gate_row_stride, n_cols,
                                                     n_rows);
    STRATA_CUDA_CHECK(cudaGetLastError());
}

}  // namespace strata
