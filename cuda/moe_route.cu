// moe_route: router logits → the k chosen experts and their weights, per token, on the device.
#include <climits>

#include "backend/cuda/cuda_check.h"
#include "common.cuh"
#include "kernels.h"

namespace strata {
namespace {

// One warp per token, 4 tokens per block (128 threads: enough warps in flight for a prompt,
// little idle for a decode step's one token). Lane l owns experts l, l + 32, …: their
// probabilities live in the warp's slice of shared memory, and since a lane only ever reads the
// experts it wrote, the warp needs no barrier. The softmax max and sum are warp reductions; each
// of the k picks is a warp arg-max under the order (probability descending, id ascending), so
// ties go to the lower id as on the CPU, and the winner's owner marks it taken (−∞). Lane 0 then
// finishes the weights in pick order exactly as the CPU does (the sum of the chosen, the
// renormalization, the scale) and counts the choices with atomicAdd (tokens run concurrently).
constexpr int kWarpsPerBlock = 4;

__global__ void moe_route_kernel(const char* logits, size_t logits_stride, int n_expert, int64_t n_tokens, int k,
                                 MoeRouteArgs args, char* ids, size_t ids_stride, char* weights, size_t weights_stride,
                                 int32_t* counts) {
    extern __shared__ float probs_shared[];
    const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
    const int64_t t = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + warp;
    if (t >= n_tokens) return;  // the whole warp; the kernel has no block barrier
    float* p = probs_shared + static_cast<int64_t>(warp) * n_expert;
    const float* lt = reinterpret_cast<const float*>(logits + t * logits_stride);
    if (!args.sigmoid) {
        float max_logit = -INFINITY;
        for (int e = lane; e < n_expert; e += kWarpSize) max_logit = fmaxf(max_logit, lt[e]);
        max_logit = warp_max(max_logit);
        float sum = 0.0f;
        for (int e = lane; e < n_expert; e += kWarpSize) sum += p[e] = expf(lt[e] - max_logit);
        sum = warp_sum(sum);
        for (int e = lane; e < n_expert; e += kWarpSize) p[e] /= sum;
    } else {
        for (int e = lane; e < n_expert; e += kWarpSize) p[e] = 1.0f / (1.0f + expf(-lt[e]));
    }

    int32_t* id_row = reinterpret_cast<int32_t*>(ids + t * ids_stride);
    float* w_row = reinterpret_cast<float*>(weights + t * weights_stride);
    for (int j = 0; j < k; ++j) {
        // This lane's best untaken expert; ascending ids and a strict > keep the lower id on ties.
        float best = -INFINITY;
        int best_e = INT_MAX;
        for (int e = lane; e < n_expert; e += kWarpSize) {
            if (p[e] > best) {
                best = p[e];
                best_e = e;
            }
        }
        // The warp's best: a total order, so every lane ends with the same winner.
        for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
            const float other = __shfl_xor_sync(0xffffffffu, best, offset);
            const int other_e = __shfl_xor_sync(0xffffffffu, best_e, offset);
            if (other > best || (other == best && other_e < best_e)) {
                best = other;
                best_e = other_e;
            }
        }
        // No untaken expert with a probability above −∞ (only with NaN logits): id −1, weight 0.
        const bool found = best_e < n_expert;
        if (lane == 0) {
            id_row[j] = found ? best_e : -1;
            w_row[j] = found ? best : 0.0f;
        }
        if (found && best_e % kWarpSize == lane) p[best_e] = -INFINITY;
    }
    if (lane == 0) {
        // Reads back this thread's own writes above (global memory is coherent within a thread).
        float chosen_sum = 0.0f;
        for (int j = 0; j < k; ++j) chosen_sum += w_row[j];
        for (int j = 0; j < k; ++j) {
            const float w = args.normalize_top_k ? w_row[j] / chosen_sum : w_row[j];
            w_row[j] = w * args.weights_scale;
            if (counts && id_row[j] >= 0) atomicAdd(&counts[id_row[j]], 1);
        }
    }
}

}  // namespace

void launch_moe_route(const float* logits, size_t logits_row_stride, int n_expert, int64_t n_tokens, int k,
                      const MoeRouteArgs& args, int32_t* ids, size_t ids_row_stride, float* weights,
                      size_t weights_row_stride, int32_t* counts, cudaStream_t stream) {
    if (n_tokens == 0) return;
    // n_expert ≤ kMaxMoeExperts (the host checks) keeps this at most 32 KiB, under the 48 KiB
    // of dynamic shared memory a launch gets without opting in.
    const size_t shared_bytes = static_cast<size_t>(kWarpsPerBlock) * static_cast<size_t>(n_expert) * sizeof(float);
    moe_route_kernel<<<blocks_for(n_tokens, kWarpsPerBlock), kWarpsPerBlock * kWarpSize, shared_bytes, stream>>>(
        reinterpret_cast<const char*>(logits), logits_row_stride, n_expert, n_tokens, k, args,
        reinterpret_cast<char*>(ids), ids_row_stride, reinterpret_cast<char*>(weights), weights_row_stride, counts);
    STRATA_CUDA_CHECK(cudaGetLastError());
}

}  // namespace strata
