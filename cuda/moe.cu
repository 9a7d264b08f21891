// moe_ffn: out[t] = Σ_j weights[t][j] · down_e · (silu(gate_e · h[t]) ⊙ up_e · h[t]), e = ids[t][j]
// (ggml's mul_mat_id idea). The expert ids are read by the kernels on the device, never copied to
// the host, so the op queues like any other and a decode step stays capturable. Three GEMV-shaped
// launches over the n·k (token, choice) pairs p = t·k + j:
//   1. act[p] = gate_e · h[t]                          (moe_project_kernel, kSwiglu false)
//   2. act[p] = silu(act[p]) ⊙ (up_e · h[t])           (moe_project_kernel, kSwiglu true)
//   3. out[t] = Σ_j weights[t][j] · down_e · act[p]    (moe_down_kernel)
// gate and up run as two launches of one kernel so they may have different types (files mix
// them); the down projection sums the k choices itself, so out needs no zeroing and no atomics.
// Each pair reads its expert's rows on its own: grouping the pairs by expert (so a prompt reads
// each expert once) is later speed work.
#include "backend/cuda/cuda_check.h"
#include "common.cuh"
#include "dequant.cuh"
#include "kernels.h"

namespace strata {
namespace {

// Both kernels: one warp per output row (lanes over the row's chunks, as matmul.cu), 8
// warps = 8 rows per 256-thread block along x, the pairs (or tokens) along y, capped at 65535
// by grid_y and looped beyond. The warps of a block share one pair, so they read one expert's
// neighbouring rows and one activation row. No token tiles: the tokens of a tile would mostly
// want different experts.
constexpr int kBlock = 256;
constexpr int kRowsPerBlock = kBlock / kWarpSize;

// An expert id outside [0, n_expert) makes its outputs NaN instead of reading out of bounds:
// the router writes valid ids, and a NaN shows a slip where a clamp would hide it.
__device__ __forceinline__ float quiet_nan() { return __int_as_float(0x7fc00000); }

__device__ __forceinline__ const int32_t* ids_of(const char* ids, size_t ids_stride, int64_t t) {
    return reinterpret_cast<const int32_t*>(ids + static_cast<size_t>(t) * ids_stride);
}

// act [n_rows, n_pairs] (contiguous, row p for pair p) = expert rows · h[t]; with kSwiglu the
// gate's values already in act become silu(gate) · (this projection), as the CPU computes
// silu(g) · u = g / (1 + exp(−g)) · u.
template <class Fmt, bool kSwiglu>
__global__ void moe_project_kernel(MoeExperts w, const char* h, size_t h_stride, const char* ids, size_t ids_stride,
                                   int k, int64_t n_pairs, float* act) {
    const int lane = threadIdx.x % kWarpSize;
    const int64_t r = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + threadIdx.x / kWarpSize;
    if (r >= w.n_rows) return;  // the whole warp leaves together, so the shuffles below stay full
    for (int64_t p = blockIdx.y; p < n_pairs; p += gridDim.y) {
        const int64_t t = p / k;
        const int64_t e = ids_of(ids, ids_stride, t)[p % k];
        float* dst = act + p * w.n_rows + r;
        if (e < 0 || e >= w.n_expert) {  // the same e for the whole warp: it skips together
            if (lane == 0) *dst = quiet_nan();
            continue;
        }
        const char* row = static_cast<const char*>(w.data) + static_cast<size_t>(e) * w.expert_stride +
                          static_cast<size_t>(r) * w.row_stride;
        float acc[1] = {0.0f};
        dot_row_partial<Fmt, 1>(row, w.n_cols, h + static_cast<size_t>(t) * h_stride, 0, 1, lane, acc);
        const float dot = warp_sum(acc[0]);
        if (lane == 0) {
            if constexpr (kSwiglu) {
                const float g = *dst;
                *dst = g / (1.0f + expf(-g)) * dot;
            } else {
                *dst = dot;
            }
        }
    }
}

// out[t][r] = Σ_j weights[t][j] · (down_e row r · act[t·k + j]): each lane weights its partial
// sums, one warp_sum adds the k choices and the lanes at once.
template <class Fmt>
__global__ void moe_down_kernel(MoeExperts w, const float* act, const char* ids, size_t ids_stride,
                                const char* weights, size_t weights_stride, int k, int64_t n_tokens, char* out,
                                size_t out_stride) {
    const int lane = threadIdx.x % kWarpSize;
    const int64_t r = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + threadIdx.x / kWarpSize;
    if (r >= w.n_rows) return;
    for (int64_t t = blockIdx.y; t < n_tokens; t += gridDim.y) {
        const int32_t* ids_t = ids_of(ids, ids_stride, t);
        const float* weights_t = reinterpret_cast<const float*>(weights + static_cast<size_t>(t) * weights_stride);
        float total = 0.0f;
        bool bad_id = false;
        for (int j = 0; j < k; ++j) {
            const int64_t e = ids_t[j];
            if (e < 0 || e >= w.n_expert) {
                bad_id = true;
                continue;
            }
            const char* row = static_cast<const char*>(w.data) + static_cast<size_t>(e) * w.expert_stride +
                              static_cast<size_t>(r) * w.row_stride;
            const float* a = act + (t * k + j) * w.n_cols;
            float acc[1] = {0.0f};
            dot_row_partial<Fmt, 1>(row, w.n_cols, reinterpret_cast<const char*>(a), 0, 1, lane, acc);
            total += weights_t[j] * acc[0];
        }
        total = warp_sum(total);
        if (lane == 0) {
            reinterpret_cast<float*>(out + static_cast<size_t>(t) * out_stride)[r] = bad_id ? quiet_nan() : total;
        }
    }
}

template <bool kSwiglu>
void launch_project(const MoeExperts& w, const float* h, size_t h_stride, const int32_t* ids, size_t ids_stride,
                    int k, int64_t n_pairs, float* act, cudaStream_t stream) {
    with_format(w.type, "moe_ffn", [&](auto fmt) {
        const dim3 grid(blocks_for(w.n_rows, kRowsPerBlock), grid_y(n_pairs));
        moe_project_kernel<decltype(fmt), kSwiglu><<<grid, kBlock, 0, stream>>>(
            w, reinterpret_cast<const char*>(h), h_stride, reinterpret_cast<const char*>(ids), ids_stride, k, n_pairs,
            act);
        STRATA_CUDA_CHECK(cudaGetLastError());
    });
}

}  // namespace

void launch_moe_ffn(const float* h, size_t h_row_stride, int64_t n_tokens, const MoeExperts& gate,
                    const MoeExperts& up, const MoeExperts& down, const int32_t* ids, size_t ids_row_stride, int k,
                    const float* weights, size_t weights_row_stride, float* act, float* out, size_t out_row_stride,
                    cudaStream_t stream) {
    if (n_tokens == 0 || k == 0 || down.n_rows == 0) return;
    const int64_t n_pairs = n_tokens * k;
    if (gate.n_rows > 0) {
        launch_project<false>(gate, h, h_row_stride, ids, ids_row_stride, k, n_pairs, act, stream);
        launch_project<true>(up, h, h_row_stride, ids, ids_row_stride, k, n_pairs, act, stream);
    }
    with_format(down.type, "moe_ffn", [&](auto fmt) {
        const dim3 grid(blocks_for(down.n_rows, kRowsPerBlock), grid_y(n_tokens));
        moe_down_kernel<decltype(fmt)><<<grid, kBlock, 0, stream>>>(
            down, act, reinterpret_cast<const char*>(ids), ids_row_stride, reinterpret_cast<const char*>(weights),
            weights_row_stride, k, n_tokens, reinterpret_cast<char*>(out), out_row_stride);
        STRATA_CUDA_CHECK(cudaGetLastError());
    });
}

}  // namespace strata
