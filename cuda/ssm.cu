// The state-space (Mamba) ops: the causal depthwise conv with its state, the selective scan (the
// recurrence, token by token; the chunked SSD form is later work) and Mamba-2's gated RMSNorm.
// Each follows the CPU code in src/backend/cpu/cpu_ssm.cpp expression for expression.
#include "backend/cuda/cuda_check.h"
#include "common.cuh"
#include "kernels.h"

namespace strata {
namespace {

__device__ inline float silu(float x) { return x / (1.0f + expf(-x)); }

// torch.nn.functional.softplus with its default threshold, as the CPU computes it.
__device__ inline float softplus(float x) { return x > 20.0f ? x : log1pf(expf(x)); }

// The ring slot of the state after the token at `position`; −1 for a slot outside the ring (a
// negative position: nothing is written rather than memory outside the ring).
__device__ inline int64_t snapshot_slot(const SsmSnapshots& s, int64_t t) {
    const int64_t slot = (static_cast<int64_t>(s.positions[t]) + 1) % s.depth;
    return slot >= 0 ? slot : -1;
}

// ---- ssm_conv ---------------------------------------------------------------------------------
// The output: one thread per (token, channel), channels along x (coalesced), tokens along y
// (grid_y, looped); each thread reads its d_conv inputs from x' = [conv_state; x] directly, so
// tokens are independent. 256 threads: the element-wise size of elementwise.cu.
constexpr int kConvBlock = 256;

__global__ void ssm_conv_kernel(const char* x, size_t x_stride, const float* weight, const float* bias,
                                const float* conv_state, int64_t n_channels, int d_conv, int64_t n_tokens, char* out,
                                size_t out_stride) {
    const int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (c >= n_channels) return;
    const int64_t n_state = d_conv - 1;
    const float* w = weight + c * d_conv;
    for (int64_t t = blockIdx.y; t < n_tokens; t += gridDim.y) {
        float acc = bias ? bias[c] : 0.0f;
        for (int k = 0; k < d_conv; ++k) {
            const int64_t r = t + k;  // row of x'
            const float xr = r < n_state ? conv_state[r * n_channels + c]
                                         : reinterpret_cast<const float*>(x + (r - n_state) * x_stride)[c];
            acc += w[k] * xr;
        }
        reinterpret_cast<float*>(out + t * out_stride)[c] = silu(acc);
    }
}

// The state: one thread per channel walks that channel's column. The state after token t is rows
// t + 1 … t + d_conv − 1 of x', so the snapshots of the last `count` tokens are read straight
// from x' in token order (a slot written twice keeps the later state, as on the CPU), then the
// state becomes rows n … n + d_conv − 2 of x'. Ascending rows read row n + r ≥ r before it is
// overwritten, and no thread touches another's channel, so the update is in place. Runs after
// ssm_conv_kernel (same stream), which reads the old state.
__global__ void ssm_conv_state_kernel(const char* x, size_t x_stride, float* conv_state, int64_t n_channels,
                                      int d_conv, int64_t n_tokens, SsmSnapshots snapshots) {
    const int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (c >= n_channels) return;
    const int64_t n_state = d_conv - 1;
    const auto row = [&](int64_t r) {
        return r < n_state ? conv_state[r * n_channels + c]
                           : reinterpret_cast<const float*>(x + (r - n_state) * x_stride)[c];
    };
    for (int64_t t = n_tokens - snapshots.count; t < n_tokens; ++t) {
        const int64_t slot = snapshot_slot(snapshots, t);
        if (slot < 0) continue;
        float* dst = reinterpret_cast<float*>(reinterpret_cast<char*>(snapshots.ring) + slot * snapshots.row_stride);
        for (int64_t r = 0; r < n_state; ++r) dst[r * n_channels + c] = row(t + 1 + r);
    }
    for (int64_t r = 0; r < n_state; ++r) conv_state[r * n_channels + c] = row(n_tokens + r);
}

// ---- ssm_scan ---------------------------------------------------------------------------------
// One warp per (head, channel) row of the state, 4 per block (128 threads; Mamba-1's thousands of
// channels and Mamba-2's heads × head_dim both give hundreds of blocks). Lane l keeps states
// l, l + 32, … of the row in registers for the whole batch and loops over the tokens in order:
// Δ, x and A are per row, B and C are read by the lanes in coalesced 32-float steps, and y is a
// warp sum. After each of the last `count` tokens the lanes copy their states to the ring.
constexpr int kScanWarps = 4;
constexpr int kStatePerLane = kMaxSsmState / kWarpSize;

__global__ void ssm_scan_kernel(SsmScanArgs a, SsmSnapshots snapshots) {
    const int lane = threadIdx.x % kWarpSize;
    const int64_t row = static_cast<int64_t>(blockIdx.x) * kScanWarps + threadIdx.x / kWarpSize;  // h · P + p
    if (row >= a.n_head * a.head_dim) return;  // the whole warp
    const int64_t N = a.d_state, h = row / a.head_dim, g = h / (a.n_head / a.n_group);
    float* state = a.state + row * N;
    float s[kStatePerLane], A[kStatePerLane];
#pragma unroll
    for (int i = 0; i < kStatePerLane; ++i) {
        const int64_t n = lane + i * kWarpSize;
        s[i] = n < N ? state[n] : 0.0f;
        A[i] = n < N ? (a.a_per_state ? a.A[h * N + n] : a.A[h]) : 0.0f;
    }
    const float D = a.D[h];
    const int64_t first_snapshot = a.n_tokens - snapshots.count;
    for (int64_t t = 0; t < a.n_tokens; ++t) {
        const float delta = softplus(reinterpret_cast<const float*>(reinterpret_cast<const char*>(a.dt) +
                                                                    t * a.dt_row_stride)[h]);
        const float xt = reinterpret_cast<const float*>(reinterpret_cast<const char*>(a.x) + t * a.x_row_stride)[row];
        const float* Bt =
            reinterpret_cast<const float*>(reinterpret_cast<const char*>(a.B) + t * a.B_row_stride) + g * N;
        const float* Ct =
            reinterpret_cast<const float*>(reinterpret_cast<const char*>(a.C) + t * a.C_row_stride) + g * N;
        float sum = 0.0f;
#pragma unroll
        for (int i = 0; i < kStatePerLane; ++i) {
            const int64_t n = lane + i * kWarpSize;
            if (n < N) {
                s[i] = expf(delta * A[i]) * s[i] + delta * Bt[n] * xt;
                sum += Ct[n] * s[i];
            }
        }
        sum = warp_sum(sum);
        // Every lane read x[t] before the warp sum, so y may even alias x.
        if (lane == 0) {
            reinterpret_cast<float*>(reinterpret_cast<char*>(a.y) + t * a.y_row_stride)[row] = sum + D * xt;
        }
        if (t >= first_snapshot) {
            const int64_t slot = snapshot_slot(snapshots, t);
            if (slot >= 0) {
                float* dst = reinterpret_cast<float*>(reinterpret_cast<char*>(snapshots.ring) +
                                                      slot * snapshots.row_stride) +
                             row * N;
#pragma unroll
                for (int i = 0; i < kStatePerLane; ++i) {
                    const int64_t n = lane + i * kWarpSize;
                    if (n < N) dst[n] = s[i];
                }
            }
        }
    }
#pragma unroll
    for (int i = 0; i < kStatePerLane; ++i) {
        const int64_t n = lane + i * kWarpSize;
        if (n < N) state[n] = s[i];
    }
}

// ---- rmsnorm_gated ----------------------------------------------------------------------------
// One block per (token, group), blockIdx.x = token · n_group + group, as rmsnorm: 256 threads
// stride over the group (Mamba-2's 1024…8192-wide groups: 4…32 elements each), block_sum, then
// each thread rescales the elements it read — so out may alias y.
constexpr int kGatedBlock = 256;

__global__ void rmsnorm_gated_kernel(const char* y, size_t y_stride, const char* z, size_t z_stride,
                                     const float* weight, int64_t group, int64_t n_group, float eps, char* out,
                                     size_t out_stride) {
    const int64_t t = blockIdx.x / n_group, g = blockIdx.x % n_group;
    const float* yr = reinterpret_cast<const float*>(y + t * y_stride) + g * group;
    const float* zr = reinterpret_cast<const float*>(z + t * z_stride) + g * group;
    const float* wr = weight + g * group;
    float* outr = reinterpret_cast<float*>(out + t * out_stride) + g * group;
    float sum = 0.0f;
    for (int64_t i = threadIdx.x; i < group; i += blockDim.x) {
        const float v = yr[i] * silu(zr[i]);
        sum += v * v;
    }
    sum = block_sum(sum);
    // IEEE sqrt and division, as rmsnorm_kernel and the CPU.
    const float scale = 1.0f / sqrtf(sum / static_cast<float>(group) + eps);
    for (int64_t i = threadIdx.x; i < group; i += blockDim.x) outr[i] = yr[i] * silu(zr[i]) * scale * wr[i];
}

}  // namespace

void launch_ssm_conv(const float* x, size_t x_row_stride, const float* weight, const float* bias, float* conv_state,
                     int64_t n_channels, int d_conv, int64_t n_tokens, float* out, size_t out_row_stride,
                     const SsmSnapshots& snapshots, cudaStream_t stream) {
    if (n_channels == 0 || n_tokens == 0) return;
    const char* xb = reinterpret_cast<const char*>(x);
    const dim3 grid(blocks_for(n_channels, kConvBlock), grid_y(n_tokens));
    ssm_conv_kernel<<<grid, kConvBlock, 0, stream>>>(xb, x_row_stride, weight, bias, conv_state, n_channels, d_conv,
                                                     n_tokens, reinterpret_cast<char*>(out), out_row_stride);
    STRATA_CUDA_CHECK(cudaGetLastError());
    ssm_conv_state_kernel<<<blocks_for(n_channels, kConvBlock), kConvBlock, 0, stream>>>(
        xb, x_row_stride, conv_state, n_channels, d_conv, n_tokens, snapshots);
    STRATA_CUDA_CHECK(cudaGetLastError());
}

void launch_ssm_scan(const SsmScanArgs& args, const SsmSnapshots& snapshots, cudaStream_t stream) {
    const int64_t rows = args.n_head * args.head_dim;
    if (rows == 0 || args.n_tokens == 0) return;
    ssm_scan_kernel<<<blocks_for(rows, kScanWarps), kScanWarps * kWarpSize, 0, stream>>>(args, snapshots);
    STRATA_CUDA_CHECK(cudaGetLastError());
}

void launch_rmsnorm_gated(const float* y, size_t y_row_stride, const float* z, size_t z_row_stride, const float* weight,
                          int64_t n_cols, int64_t n_rows, int64_t n_group, float eps, float* out,
                          size_t out_row_stride, cudaStream_t stream) {
    if (n_rows == 0 || n_cols == 0) return;
    rmsnorm_gated_kernel<<<static_cast<unsigned>(n_rows * n_group), kGatedBlock, 0, stream>>>(
        reinterpret_cast<const char*>(y), y_row_stride, reinterpret_cast<const char*>(z), z_row_stride, weight,
        n_cols / n_group, n_group, eps, reinterpret_cast<char*>(out), out_row_stride);
    STRATA_CUDA_CHECK(cudaGetLastError());
}

}  // namespace strata
