// matmul on weights of every stored type with F32 activations: y[t][r] = Σ_c w[r][c] · x[t][c],
// the weights dequantized on the fly inside the dot product (dequant.cuh; the float types are
// formats of one element per chunk), never as a whole matrix. The
// activations stay F32 (the op suite accepts either F32 or quantized activations), so a dot
// product differs from the dequantized weights' exact one only by float summation.
//
// A GEMV-shaped kernel that serves any number of tokens; integer dot products on quantized
// activations (ggml's MMVQ) and tensor-core tiles for long prompts (MMQ) are later speed work.
#include "backend/cuda/cuda_check.h"
#include "common.cuh"
#include "dequant.cuh"
#include "kernels.h"

namespace strata {
namespace {

// One warp per output row r: its lanes take 32 consecutive chunks of 32 weights at a time (32
// neighbouring blocks: one warp-wide sweep over 576 bytes of a Q4_0 row, 1152 of Q8_0), and each
// lane keeps kTile partial sums, one per token of the tile, so each weight is read and
// dequantized once per tile of tokens rather than once per token; warp_sum then reduces each sum
// across lanes. A block of 256 threads holds 8 warps = 8 rows: enough warps per SM to hide
// memory latency, and blocks small enough that the grid of n_rows / 8 blocks fills all SMs even
// for narrow matrices. Token tiles go along y (grid_y, looped beyond 65535 tiles).
constexpr int kBlock = 256;
constexpr int kRowsPerBlock = kBlock / kWarpSize;

template <class Fmt, int kTile>
__global__ void matmul_kernel(const char* w, size_t w_stride, const char* x, size_t x_stride, int64_t n_cols,
                                    int64_t n_rows, int64_t n_tokens, char* y, size_t y_stride) {
    const int lane = threadIdx.x % kWarpSize;
    const int64_t r = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + threadIdx.x / kWarpSize;
    if (r >= n_rows) return;  // the whole warp leaves together, so the shuffles below stay full
    const char* wr = w + static_cast<size_t>(r) * w_stride;
    for (int64_t t0 = static_cast<int64_t>(blockIdx.y) * kTile; t0 < n_tokens;
         t0 += static_cast<int64_t>(gridDim.y) * kTile) {
        const int nt = static_cast<int>(n_tokens - t0 < kTile ? n_tokens - t0 : kTile);
        float acc[kTile] = {};
        dot_row_partial<Fmt, kTile>(wr, n_cols, x + static_cast<size_t>(t0) * x_stride, x_stride, nt, lane, acc);
#pragma unroll
        for (int k = 0; k < kTile; ++k) {
            const float sum = warp_sum(acc[k]);
            if (lane == 0 && k < nt) reinterpret_cast<float*>(y + static_cast<size_t>(t0 + k) * y_stride)[r] = sum;
        }
    }
}

// One token (decode) gets a tile of 1, so no lane carries idle accumulators; more tokens a tile
// of 8, which cuts the weight reads eightfold while 8 accumulators and a chunk's 32 weights
// still fit in registers.
template <class Fmt>
void launch_rows(const void* w, size_t w_stride, const float* x, size_t x_stride, int64_t n_cols, int64_t n_rows,
                  int64_t n_tokens, float* y, size_t y_stride, cudaStream_t stream) {
    if (n_rows == 0 || n_tokens == 0) return;
    const char* wb = static_cast<const char*>(w);
    const char* xb = reinterpret_cast<const char*>(x);
    char* yb = reinterpret_cast<char*>(y);
    if (n_tokens == 1) {
        matmul_kernel<Fmt, 1><<<dim3(blocks_for(n_rows, kRowsPerBlock), 1), kBlock, 0, stream>>>(
            wb, w_stride, xb, x_stride, n_cols, n_rows, n_tokens, yb, y_stride);
    } else {
        constexpr int kTile = 8;
        const dim3 grid(blocks_for(n_rows, kRowsPerBlock), grid_y(blocks_for(n_tokens, kTile)));
        matmul_kernel<Fmt, kTile><<<grid, kBlock, 0, stream>>>(wb, w_stride, xb, x_stride, n_cols, n_rows,
                                                                     n_tokens, yb, y_stride);
    }
    STRATA_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

bool cuda_weight_type_supported(GgmlType type) {
    return visit_format(type, [](auto) {});
}

void launch_matmul(GgmlType type, const void* w, size_t w_row_stride, const float* x, size_t x_row_stride,
                   int64_t n_cols, int64_t n_rows, int64_t n_tokens, float* y, size_t y_row_stride,
                   cudaStream_t stream) {
    with_format(type, "matmul", [&](auto fmt) {
        launch_rows<decltype(fmt)>(w, w_row_stride, x, x_row_stride, n_cols, n_rows, n_tokens, y, y_row_stride,
                                    stream);
    });
}

}  // namespace strata
