// rope: the in-place rotary embedding (RoFormer eq. 15, ggml_rope_ext), GPT-J pairs (2i, 2i + 1)
// or NeoX pairs (i, i + n_rot / 2), the first n_rot dimensions of each head; the rest pass through.
#include "backend/cuda/cuda_check.h"
#include "common.cuh"
#include "kernels.h"

namespace strata {
namespace {

// One thread per rotated pair of a row: a row's n_heads · n_rot / 2 pairs along x, rows along y
// (grid_y, looped). Each thread owns its two elements, so the in-place update needs no
// synchronization. The angle is formed as the CPU forms it — position = pos · freq_scale, then
// θ = position · inv_freq (inv_freq from the host's std::pow, divided by the factor here: the
// same IEEE operations) — so only sincosf (≤ 2 ulp, full range reduction without fast math)
// differs. 256 threads: the memory-bound element-wise size of elementwise.cu.
constexpr int kBlock = 256;

__global__ void rope_kernel(char* x, size_t x_stride, int64_t n_rows, int n_heads, int64_t head_dim, int half,
                            bool neox, const int32_t* positions, float freq_scale, RopeFreqs freqs,
                            const float* freq_factors) {
    const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (idx >= static_cast<int64_t>(n_heads) * half) return;
    const int64_t h = idx / half;
    const int i = static_cast<int>(idx % half);
    float inv_freq = freqs.inv_freq[i];
    if (freq_factors) inv_freq /= freq_factors[i];
    const int64_t a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
    for (int64_t t = blockIdx.y; t < n_rows; t += gridDim.y) {
        const float position = static_cast<float>(positions[t]) * freq_scale;
        const float theta = position * inv_freq;
        float s, c;
        sincosf(theta, &s, &c);
        float* v = reinterpret_cast<float*>(x + t * x_stride) + h * head_dim;
        const float x0 = v[a], x1 = v[b];
        v[a] = x0 * c - x1 * s;
        v[b] = x0 * s + x1 * c;
    }
}

}  // namespace

void launch_rope(float* x, size_t x_row_stride, int64_t n_rows, int n_heads, int64_t head_dim, int n_rot, bool neox,
                 const int32_t* positions, float freq_scale, const RopeFreqs& freqs, const float* freq_factors,
                 cudaStream_t stream) {
    const int half = n_rot / 2;
    if (n_rows == 0 || n_heads == 0 || half == 0) return;
    const dim3 grid(blocks_for(static_cast<int64_t>(n_heads) * half, kBlock), grid_y(n_rows));
    rope_kernel<<<grid, kBlock, 0, stream>>>(reinterpret_cast<char*>(x), x_row_stride, n_rows, n_heads, head_dim, half,
                                             neox, positions, freq_scale, freqs, freq_factors);
    STRATA_CUDA_CHECK(cudaGetLastError());
}

}  // namespace strata
