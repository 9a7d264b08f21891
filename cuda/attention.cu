// The KV cache ops: kv_write (rows into an F32, F16 or Q8_0 cache at their positions) and causal
// grouped-query attention of query rows over those caches, with an online softmax.
#include <cuda_fp16.h>

#include "backend/cuda/cuda_check.h"
#include "common.cuh"
#include "kernels.h"

namespace strata {
namespace {

// ---- Cache element access ---------------------------------------------------------------------
// Q8_0 (ggml-common.h block_q8_0): 32 elements per 34-byte block, x = d · q with d an IEEE half.
constexpr int kQ8Block = 32, kQ8BlockBytes = 2 + kQ8Block;

// Element e of a cache row, as a float.
struct CacheF32 {
    __device__ static float load(const char* row, int64_t e) { return reinterpret_cast<const float*>(row)[e]; }
};
struct CacheF16 {
    __device__ static float load(const char* row, int64_t e) {
        return __half2float(reinterpret_cast<const __half*>(row)[e]);
    }
};
struct CacheQ8_0 {
    __device__ static float load(const char* row, int64_t e) {
        const char* block = row + (e / kQ8Block) * kQ8BlockBytes;
        const float d = __half2float(*reinterpret_cast<const __half*>(block));
        return d * static_cast<float>(reinterpret_cast<const int8_t*>(block + 2)[e % kQ8Block]);
    }
};

// ---- kv_write ---------------------------------------------------------------------------------
// One thread per element of a source row (x), rows on y (grid_y, looped). 256 threads = 8 warps,
// and each warp covers 32 consecutive elements: for Q8_0 exactly one block (rows are whole
// blocks), so the block's max |x| is a warp reduction and lane j stores q[j].

// Stores element j (this thread's) of a row into cache row `dst`; every lane of the warp calls it
// for the same row (Q8_0 reduces across the warp).
struct StoreF32 {
    __device__ static void store(char* dst, int64_t j, float x) { reinterpret_cast<float*>(dst)[j] = x; }
};
struct StoreF16 {
    // __float2half_rn rounds to nearest even, as the CPU's fp32_to_fp16.
    __device__ static void store(char* dst, int64_t j, float x) { reinterpret_cast<__half*>(dst)[j] = __float2half_rn(x); }
};
struct StoreQ8_0 {
    // The reference quantizer (quantize_q8 in src/tensor/quant_legacy.cpp) operation for operation:
    // d = amax / 127, id = 1 / d (0 for an all-zero block), q = round(x · id) half away from zero
    // (roundf), d stored as a half rounded to nearest even. IEEE division and no fused ops in
    // between (nvcc without fast math), so the bytes match the CPU's.
    __device__ static void store(char* dst, int64_t j, float x) {
        const float amax = warp_max(fabsf(x));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        char* block = dst + (j / kQ8Block) * kQ8BlockBytes;
        if (j % kQ8Block == 0) *reinterpret_cast<__half*>(block) = __float2half_rn(d);
        reinterpret_cast<int8_t*>(block + 2)[j % kQ8Block] = static_cast<int8_t>(roundf(x * id));
    }
};

constexpr int kWriteBlock = 256;

template <class Store>
__global__ void kv_write_kernel(KvCacheRows caches, const char* src, size_t src_stride, int64_t width, int64_t n_rows,
                                const int32_t* positions) {
    const int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    // For Q8_0 the width is a multiple of 32, so a warp is either wholly inside the row or wholly
    // past it and the shuffles in store() see every lane.
    if (j >= width) return;
    for (int64_t t = blockIdx.y; t < n_rows; t += gridDim.y) {
        const int c = caches.count == 1 ? 0 : static_cast<int>(t);
        const int64_t pos = positions[t];
        if (pos < 0 || pos >= caches.n_ctx[c]) continue;  // the same for the whole warp
        const float x = reinterpret_cast<const float*>(src + t * src_stride)[j];
        Store::store(caches.data[c] + pos * static_cast<int64_t>(caches.row_stride[c]), j, x);
    }
}

// ---- attention --------------------------------------------------------------------------------
// One block per (row, query head), blockIdx.x = row · n_head + head. Its warps split the keys in
// chunks of 32 (warp w takes chunks w, w + n_warps, …), each warp keeping a running max m, sum l
// and output accumulator for its chunks (the online softmax of Milakov & Gimelshein 2018, the
// FlashAttention recurrence); at the end the block combines the warps' partial results through
// shared memory. Within a warp, lane d holds head dimensions d, d + 32, … of the query (in
// registers) and of the accumulator, so each key or value row is read by the warp in coalesced
// 32-element steps; a chunk's 32 scores are 32 warp sums, after which lane jj holds key jj's
// score and the softmax update is one max and one sum per chunk. Float accumulation throughout;
// the query stays F32 (the CPU rounds it to the cache type, which the suite's tolerance allows).
constexpr int kPerLane = kMaxAttentionHeadDim / kWarpSize;  // head dims per lane
constexpr int kMaxAttentionWarps = 8;

// The launch bounds make the compiler fit the largest block's registers (up to 8 warps × 32 ×
// 255 registers ≤ the SM's 64 Ki), so no launch fails for lack of them.
template <class KLoad, class VLoad>
__global__ void __launch_bounds__(kMaxAttentionWarps * kWarpSize) attention_kernel(KvCacheRows k_caches, KvCacheRows v_caches, const char* q, size_t q_stride,
                                 AttentionShape shape, const int32_t* positions, char* out, size_t out_stride) {
    __shared__ float acc_shared[kMaxAttentionWarps][kMaxAttentionHeadDim];
    __shared__ float m_shared[kMaxAttentionWarps], l_shared[kMaxAttentionWarps];
    const int64_t row = blockIdx.x / shape.n_head;
    const int h = static_cast<int>(blockIdx.x % shape.n_head);
    const int kvh = h / (shape.n_head / shape.n_head_kv);
    const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize, n_warps = blockDim.x / kWarpSize;
    const int hd_k = shape.head_dim_k, hd_v = shape.head_dim_v;
    const int c = k_caches.count == 1 ? 0 : static_cast<int>(row);
    float* o = reinterpret_cast<float*>(out + row * out_stride) + static_cast<int64_t>(h) * hd_v;

    const int64_t pos = positions[row];
    if (pos < 0 || pos >= k_caches.n_ctx[c] || pos >= v_caches.n_ctx[c]) {
        // A position outside the cache: no keys to read. NaN, so the caller's bug shows in the
        // logits instead of a fault (the whole block returns, before any barrier).
        for (int d = threadIdx.x; d < hd_v; d += blockDim.x) o[d] = __int_as_float(0x7fc00000);
        return;
    }
    const int64_t n_keys = pos + 1;
    const float* qh = reinterpret_cast<const float*>(q + row * q_stride) + static_cast<int64_t>(h) * hd_k;
    float qr[kPerLane], acc[kPerLane];
#pragma unroll
    for (int i = 0; i < kPerLane; ++i) {
        const int d = lane + i * kWarpSize;
        qr[i] = d < hd_k ? qh[d] : 0.0f;
        acc[i] = 0.0f;
    }
    const char* kc = k_caches.data[c];
    const char* vc = v_caches.data[c];
    const int64_t k_stride = static_cast<int64_t>(k_caches.row_stride[c]);
    const int64_t v_stride = static_cast<int64_t>(v_caches.row_stride[c]);
    const int64_t k_head = static_cast<int64_t>(kvh) * hd_k, v_head = static_cast<int64_t>(kvh) * hd_v;

    float m = -INFINITY, l = 0.0f;
    for (int64_t j0 = static_cast<int64_t>(warp) * kWarpSize; j0 < n_keys;
         j0 += static_cast<int64_t>(n_warps) * kWarpSize) {
        const int nj = static_cast<int>(n_keys - j0 < kWarpSize ? n_keys - j0 : kWarpSize);
        float score = -INFINITY;  // lane jj: key j0 + jj's
        for (int jj = 0; jj < nj; ++jj) {
            const char* krow = kc + (j0 + jj) * k_stride;
            float part = 0.0f;
#pragma unroll
            for (int i = 0; i < kPerLane; ++i) {
                const int d = lane + i * kWarpSize;
                if (d < hd_k) part += qr[i] * KLoad::load(krow, k_head + d);
            }
            const float s = warp_sum(part) * shape.scale;
            if (lane == jj) score = s;
        }
        // nj ≥ 1, so m_new is finite and exp(m − m_new) is 0 on the first chunk (m = −∞).
        const float m_new = fmaxf(m, warp_max(score));
        const float corr = expf(m - m_new);
        const float p = lane < nj ? expf(score - m_new) : 0.0f;
        l = l * corr + warp_sum(p);
#pragma unroll
        for (int i = 0; i < kPerLane; ++i) acc[i] *= corr;
        for (int jj = 0; jj < nj; ++jj) {
            const float pj = __shfl_sync(0xffffffffu, p, jj);
            const char* vrow = vc + (j0 + jj) * v_stride;
#pragma unroll
            for (int i = 0; i < kPerLane; ++i) {
                const int d = lane + i * kWarpSize;
                if (d < hd_v) acc[i] += pj * VLoad::load(vrow, v_head + d);
            }
        }
        m = m_new;
    }

    // Combine: out = Σ_w e^{m_w − M} acc_w / Σ_w e^{m_w − M} l_w with M the largest m_w. Warp 0
    // always has keys (n_keys ≥ 1), so M is finite; a warp without keys has m_w = −∞ and weighs 0.
#pragma unroll
    for (int i = 0; i < kPerLane; ++i) {
        const int d = lane + i * kWarpSize;
        if (d < hd_v) acc_shared[warp][d] = acc[i];
    }
    if (lane == 0) {
        m_shared[warp] = m;
        l_shared[warp] = l;
    }
    __syncthreads();
    // Loops over kMaxAttentionWarps with a guard (not to n_warps), so factor stays in registers.
    float M = -INFINITY;
#pragma unroll
    for (int w = 0; w < kMaxAttentionWarps; ++w) {
        if (w < n_warps) M = fmaxf(M, m_shared[w]);
    }
    float factor[kMaxAttentionWarps];
    float L = 0.0f;
#pragma unroll
    for (int w = 0; w < kMaxAttentionWarps; ++w) {
        factor[w] = w < n_warps ? expf(m_shared[w] - M) : 0.0f;
        if (w < n_warps) L += factor[w] * l_shared[w];
    }
    for (int d = threadIdx.x; d < hd_v; d += blockDim.x) {
        float sum = 0.0f;
#pragma unroll
        for (int w = 0; w < kMaxAttentionWarps; ++w) {
            if (w < n_warps) sum += factor[w] * acc_shared[w][d];
        }
        o[d] = sum / L;
    }
}

template <class Store>
void launch_write(const KvCacheRows& caches, const float* src, size_t src_stride, int64_t width, int64_t n_rows,
                  const int32_t* positions, cudaStream_t stream) {
    const dim3 grid(blocks_for(width, kWriteBlock), grid_y(n_rows));
    kv_write_kernel<Store><<<grid, kWriteBlock, 0, stream>>>(caches, reinterpret_cast<const char*>(src), src_stride,
                                                             width, n_rows, positions);
    STRATA_CUDA_CHECK(cudaGetLastError());
}

template <class KLoad, class VLoad>
void launch_attention_typed(const KvCacheRows& k_caches, const KvCacheRows& v_caches, const float* q, size_t q_stride,
                            int64_t n_rows, const AttentionShape& shape, const int32_t* positions, float* out,
                            size_t out_stride, cudaStream_t stream) {
    // 8 warps per block when there are few (row, head) blocks — a decode step: fewer blocks than
    // an H100 has SMs, so each block should bring more warps to its keys — else 4, which leaves
    // each warp more chunks of a prompt's shorter rows and more blocks resident per SM.
    const int64_t n_blocks = n_rows * shape.n_head;
    const int warps = n_blocks < 256 ? kMaxAttentionWarps : 4;
    attention_kernel<KLoad, VLoad><<<static_cast<unsigned>(n_blocks), warps * kWarpSize, 0, stream>>>(
        k_caches, v_caches, reinterpret_cast<const char*>(q), q_stride, shape, positions, reinterpret_cast<char*>(out),
        out_stride);
    STRATA_CUDA_CHECK(cudaGetLastError());
}

template <class KLoad>
void dispatch_v(CacheType v_type, const KvCacheRows& k_caches, const KvCacheRows& v_caches, const float* q,
                size_t q_stride, int64_t n_rows, const AttentionShape& shape, const int32_t* positions, float* out,
                size_t out_stride, cudaStream_t stream) {
    switch (v_type) {
        case CacheType::F32:
            return launch_attention_typed<KLoad, CacheF32>(k_caches, v_caches, q, q_stride, n_rows, shape, positions,
                                                           out, out_stride, stream);
        case CacheType::F16:
            return launch_attention_typed<KLoad, CacheF16>(k_caches, v_caches, q, q_stride, n_rows, shape, positions,
                                                           out, out_stride, stream);
        case CacheType::Q8_0:
            return launch_attention_typed<KLoad, CacheQ8_0>(k_caches, v_caches, q, q_stride, n_rows, shape,
                                                            positions, out, out_stride, stream);
    }
}

}  // namespace

void launch_kv_write(CacheType type, const KvCacheRows& caches, const float* src, size_t src_row_stride, int64_t width,
                     int64_t n_rows, const int32_t* positions, cudaStream_t stream) {
    if (n_rows == 0 || width == 0) return;
    switch (type) {
        case CacheType::F32: return launch_write<StoreF32>(caches, src, src_row_stride, width, n_rows, positions, stream);
        case CacheType::F16: return launch_write<StoreF16>(caches, src, src_row_stride, width, n_rows, positions, stream);
        case CacheType::Q8_0:
            return launch_write<StoreQ8_0>(caches, src, src_row_stride, width, n_rows, positions, stream);
    }
}

void launch_attention(CacheType k_type, CacheType v_type, const KvCacheRows& k_caches, const KvCacheRows& v_caches,
                      const float* q, size_t q_row_stride, int64_t n_rows, const AttentionShape& shape,
                      const int32_t* positions, float* out, size_t out_row_stride, cudaStream_t stream) {
    if (n_rows == 0 || shape.n_head == 0) return;
    switch (k_type) {
        case CacheType::F32:
            return dispatch_v<CacheF32>(v_type, k_caches, v_caches, q, q_row_stride, n_rows, shape, positions, out,
                                        out_row_stride, stream);
        case CacheType::F16:
            return dispatch_v<CacheF16>(v_type, k_caches, v_caches, q, q_row_stride, n_rows, shape, positions, out,
                                        out_row_stride, stream);
        case CacheType::Q8_0:
            return dispatch_v<CacheQ8_0>(v_type, k_caches, v_caches, q, q_row_stride, n_rows, shape, positions, out,
                                         out_row_stride, stream);
    }
}

}  // namespace strata
