// Causal multi-head attention over the KV cache in its stored type (F32, F16 or Q8_0), with
// grouped-query heads (GQA/MQA): query head h reads KV head h / (n_head / n_head_kv). The query
// head is converted once to the key type's dot-product pairing (as a matmul's activations are),
// so q·k is one vec_dot per key; softmax in float with the max subtracted.
#include <algorithm>
#include <cmath>

#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/cpu_tensor.h"
#include "util/error.h"
#include "util/thread_pool.h"

namespace strata {

namespace {

const KvCache& cache_of_row(std::span<const KvCache> caches, int64_t t) {
    return caches[caches.size() == 1 ? 0 : static_cast<size_t>(t)];
}

// Stores one F32 row in a cache row of the cache's type.
void store_row(const CpuKernels& kernels, const Tensor& cache, int64_t pos, const float* src) {
    if (pos < 0 || pos >= cache.ne[1]) fail("kv_write: position ", pos, " outside a cache of ", cache.ne[1], " rows");
    uint8_t* dst = row_bytes_at(cache, pos);
    if (cache.type == GgmlType::F32) {
        std::memcpy(dst, src, static_cast<size_t>(cache.ne[0]) * sizeof(float));
    } else {
        kernels.quantize(cache.type)(src, dst, cache.ne[0]);
    }
}

}  // namespace

void cpu_kv_write(const CpuKernels& kernels, std::span<const KvCache> caches, const Tensor& k, const Tensor& v,
                  const Tensor& positions) {
    const int32_t* pos = i32_data(positions);
    for (int64_t t = 0; t < k.ne[1]; ++t) {
        const KvCache& c = cache_of_row(caches, t);
        store_row(kernels, c.k, pos[t], f32_row(k, t));
        store_row(kernels, c.v, pos[t], f32_row(v, t));
    }
}

void cpu_attention(ThreadPool& pool, const CpuKernels& kernels, const Tensor& q, std::span<const KvCache> caches,
                   const Tensor& positions, const AttentionParams& p, const Tensor& out, AttentionScratch& scratch) {
    const int64_t n_tokens = q.ne[1];
    const int group = p.n_head / p.n_head_kv;
    const int32_t* pos = i32_data(positions);
    const int64_t n_keys_max = *std::max_element(pos, pos + n_tokens) + 1;
    const GgmlType k_type = caches[0].k.type, v_type = caches[0].v.type;
    const GgmlType q_type = type_traits(k_type).vec_dot_type;
    const vec_dot_fn dot = kernels.vec_dot(k_type);
    const from_float_fn to_q = q_type == GgmlType::F32 ? nullptr : kernels.quantize(q_type);
    const size_t k_head_bytes = row_size(k_type, p.head_dim_k), v_head_bytes = row_size(v_type, p.head_dim_v);
    const size_t q_bytes = row_size(q_type, p.head_dim_k);
    const auto to_float_v = type_traits(v_type).to_float;

    const size_t threads = static_cast<size_t>(pool.size());
    scratch.scores.resize(threads * static_cast<size_t>(n_keys_max));
    scratch.values.resize(threads * static_cast<size_t>(p.head_dim_v));
    scratch.query.resize(threads * q_bytes);
    // Hand (token, head) rows to other threads only in chunks of ~2^16 multiply-adds: a decode step
    // at a short context is a few thousand, less than waking a worker costs.
    const int64_t row_work = n_keys_max * (p.head_dim_k + p.head_dim_v);
    const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(1, row_work));
    pool.parallel_for(n_tokens * p.n_head, [&](int64_t i0, int64_t i1, int thread) {
        float* scores = scratch.scores.data() + static_cast<size_t>(thread) * static_cast<size_t>(n_keys_max);
        float* vtmp = scratch.values.data() + static_cast<size_t>(thread) * static_cast<size_t>(p.head_dim_v);
        uint8_t* qconv = scratch.query.data() + static_cast<size_t>(thread) * q_bytes;
        for (int64_t i = i0; i < i1; ++i) {
            const int64_t t = i / p.n_head;
            const int h = static_cast<int>(i % p.n_head);
            const int kvh = h / group;
            const KvCache& c = cache_of_row(caches, t);
            const float* qh = f32_row(q, t) + static_cast<int64_t>(h) * p.head_dim_k;
            const void* qd = qh;
            if (to_q) {
                to_q(qh, qconv, p.head_dim_k);
                qd = qconv;
            }
            const int64_t n_keys = pos[t] + 1;
            float max_score = -INFINITY;
            for (int64_t j = 0; j < n_keys; ++j) {
                scores[j] = dot(p.head_dim_k, row_bytes_at(c.k, j) + kvh * k_head_bytes, qd) * p.scale;
                max_score = std::max(max_score, scores[j]);
            }
            float sum = 0;
            for (int64_t j = 0; j < n_keys; ++j) {
                scores[j] = std::exp(scores[j] - max_score);
                sum += scores[j];
            }
            float* oh = f32_row(out, t) + static_cast<int64_t>(h) * p.head_dim_v;
            std::fill(oh, oh + p.head_dim_v, 0.0f);
            for (int64_t j = 0; j < n_keys; ++j) {
                const float w = scores[j] / sum;
                const uint8_t* vj = row_bytes_at(c.v, j) + kvh * v_head_bytes;
                if (v_type == GgmlType::F32) {
                    kernels.axpy_f32(p.head_dim_v, w, reinterpret_cast<const float*>(vj), oh);
                } else if (v_type == GgmlType::F16) {
                    kernels.axpy_f16(p.head_dim_v, w, reinterpret_cast<const uint16_t*>(vj), oh);
                } else {
                    to_float_v(vj, vtmp, p.head_dim_v);
                    kernels.axpy_f32(p.head_dim_v, w, vtmp, oh);
                }
            }
        }
    }, grain);
}

}  // namespace strata
