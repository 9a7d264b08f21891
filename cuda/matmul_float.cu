// matmul with F32, F16 or BF16 weights and F32 activations: y[t][r] = Σ_c w[r][c] · x[t][c].
//
// A GEMV-shaped kernel that serves any number of tokens: decode (one token) is bound by reading
// w once, and prefill reuses each read of w for a tile of tokens. Tensor cores and shared-memory
// tiling (a real GEMM for long prompts) are later work; this is the correctness baseline.
#include <cuda_fp16.h>

#include "backend/cuda/cuda_check.h"
#include "common.cuh"
#include "kernels.h"

namespace strata {
namespace {

// One warp per output row r: its 32 lanes read w's row at consecutive columns (one 128-byte
// transaction per step for F32, 64 for F16 and BF16) and each lane keeps kTile partial sums,
// one per token of the tile, so the row is read once per tile of tokens rather than once per token;
// warp_sum then reduces each sum across lanes. A block of 256 threads holds 8 warps = 8 rows:
// enough warps per SM to hide memory latency, and blocks small enough that the grid of
// n_rows / 8 blocks fills all SMs even for narrow matrices. Token tiles go along y.
constexpr int kBlock = 256;
constexpr int kRowsPerBlock = kBlock / kWarpSize;

__device__ inline float to_float(float v) { return v; }
__device__ inline float to_float(__half v) { return __half2float(v); }
// bfloat16 as its raw bits: the top half of a float (bf16_to_fp32), no conversion instruction.
struct Bf16Bits {
    uint16_t bits;
};
static_assert(sizeof(Bf16Bits) == 2, "Bf16Bits must read as one bfloat16 of the row");
__device__ inline float to_float(Bf16Bits v) { return __uint_as_float(static_cast<uint32_t>(v.bits) << 16); }

template <class W, int kTile>
__global__ void matmul_kernel(const char* w, size_t w_stride, const char* x, size_t x_stride, int64_t n_cols,
                              int64_t n_rows, int64_t n_tokens, char* y, size_t y_stride) {
    const int lane = threadIdx.x % kWarpSize;
    const int64_t r = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + threadIdx.x / kWarpSize;
    if (r >= n_rows) return;  // the whole warp leaves together, so the shuffles below stay full
    const W* wr = reinterpret_cast<const W*>(w + r * w_stride);
    for (int64_t t0 = static_cast<int64_t>(blockIdx.y) * kTile; t0 < n_tokens;
         t0 += static_cast<int64_t>(gridDim.y) * kTile) {
        const int nt = static_cast<int>(n_tokens - t0 < kTile ? n_tokens - t0 : kTile);
        float acc[kTile] = {};
        for (int64_t c = lane; c < n_cols; c += kWarpSize) {
            const float wv = to_float(wr[c]);
#pragma unroll
            for (int k = 0; k < kTile; ++k) {
                if (k < nt) acc[k] += wv * reinterpret_cast<const float*>(x + (t0 + k) * x_stride)[c];
            }
        }
#pragma unroll
        for (int k = 0; k < kTile; ++k) {
            const float sum = warp_sum(acc[k]);
            if (lane == 0 && k < nt) reinterpret_cast<float*>(y + (t0 + k) * y_stride)[r] = sum;
        }
    }
}

// One token (decode) gets a tile of 1, so no lane carries idle accumulators; more tokens a tile
// of 8, which cuts w's reads eightfold while 8 accumulators still fit in registers.
template <class W>
void launch(const void* w, size_t w_stride, const float* x, size_t x_stride, int64_t n_cols, int64_t n_rows,
            int64_t n_tokens, float* y, size_t y_stride, cudaStream_t stream) {
    if (n_rows == 0 || n_tokens == 0) return;
    const char* wb = static_cast<const char*>(w);
    const char* xb = reinterpret_cast<const char*>(x);
    char* yb = reinterpret_cast<char*>(y);
    if (n_tokens == 1) {
        matmul_kernel<W, 1><<<dim3(blocks_for(n_rows, kRowsPerBlock), 1), kBlock, 0, stream>>>(
            wb, w_stride, xb, x_stride, n_cols, n_rows, n_tokens, yb, y_stride);
    } else {
        constexpr int kTile = 8;
        const dim3 grid(blocks_for(n_rows, kRowsPerBlock), grid_y(blocks_for(n_tokens, kTile)));
        matmul_kernel<W, kTile><<<grid, kBlock, 0, stream>>>(wb, w_stride, xb, x_stride, n_cols, n_rows, n_tokens, yb,
                                                             y_stride);
    }
    STRATA_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

void launch_matmul_f32(const void* w, size_t w_row_stride, const float* x, size_t x_row_stride, int64_t n_cols,
                       int64_t n_rows, int64_t n_tokens, float* y, size_t y_row_stride, cudaStream_t stream) {
    launch<float>(w, w_row_stride, x, x_row_stride, n_cols, n_rows, n_tokens, y, y_row_stride, stream);
}

void launch_matmul_f16(const void* w, size_t w_row_stride, const float* x, size_t x_row_stride, int64_t n_cols,
                       int64_t n_rows, int64_t n_tokens, float* y, size_t y_row_stride, cudaStream_t stream) {
    launch<__half>(w, w_row_stride, x, x_row_stride, n_cols, n_rows, n_tokens, y, y_row_stride, stream);
}

void launch_matmul_bf16(const void* w, size_t w_row_stride, const float* x, size_t x_row_stride, int64_t n_cols,
                        int64_t n_rows, int64_t n_tokens, float* y, size_t y_row_stride, cudaStream_t stream) {
    launch<Bf16Bits>(w, w_row_stride, x, x_row_stride, n_cols, n_rows, n_tokens, y, y_row_stride, stream);
}

}  // namespace strata
