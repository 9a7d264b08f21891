// What the .cu files share: warp and block sums (rmsnorm, the matmul's per-row dot products), the
// warp maximum, and the grid sizing they all use. Included by .cu files only.
#pragma once

#include <cstdint>

namespace strata {

// gridDim.y and gridDim.z are limited to 65535, so kernels put rows (or tokens) on y capped
// there and loop over the rest with stride gridDim.y.
constexpr int64_t kMaxGridY = 65535;
inline unsigned grid_y(int64_t n) { return static_cast<unsigned>(n < kMaxGridY ? (n > 0 ? n : 1) : kMaxGridY); }
inline unsigned blocks_for(int64_t n, int64_t per_block) {
    return static_cast<unsigned>((n + per_block - 1) / per_block);
}

constexpr int kWarpSize = 32;

// Butterfly reduction: after five xor-shuffles every lane holds the sum of all 32 lanes. The
// whole warp must call it (full mask).
__device__ inline float warp_sum(float v) {
    for (int offset = kWarpSize / 2; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}

// The same butterfly for the maximum (softmax maxima, Q8_0 block scales).
__device__ inline float warp_max(float v) {
    for (int offset = kWarpSize / 2; offset > 0; offset /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
    return v;
}

// Sum over a block of any multiple of 32 threads up to 1024, returned to every thread: each warp
// reduces by shuffles, warp 0 reduces the per-warp partial sums. Once per kernel (its shared
// slots are not fenced for a second call).
__device__ inline float block_sum(float v) {
    __shared__ float partial[kWarpSize];
    __shared__ float total;
    const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
    v = warp_sum(v);
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    if (warp == 0) {
        const int n_warps = blockDim.x / kWarpSize;
        float s = lane < n_warps ? partial[lane] : 0.0f;
        s = warp_sum(s);
        if (lane == 0) total = s;
    }
    __syncthreads();
    return total;
}

}  // namespace strata
