// Causal multi-head attention over a float KV cache, with grouped-query heads (GQA/MQA):
// query head h reads KV head h / (n_head / n_head_kv). Softmax in float with the max subtracted.
#include <algorithm>
#include <cmath>
#include <vector>

#include "backend/backend.h"
#include "backend/cpu/kernels.h"
#include "util/thread_pool.h"

namespace strata {

void cpu_attention(ThreadPool& pool, const float* q, int64_t n_tokens, const float* k_cache, const float* v_cache,
                   int64_t n_past, const AttentionParams& p, float* out) {
    const int group = p.n_head / p.n_head_kv;
    const int64_t k_stride = static_cast<int64_t>(p.n_head_kv) * p.head_dim_k;
    const int64_t v_stride = static_cast<int64_t>(p.n_head_kv) * p.head_dim_v;
    const int64_t n_ctx_used = n_past + n_tokens;
    std::vector<std::vector<float>> scratch(static_cast<size_t>(pool.size()), std::vector<float>(n_ctx_used));
    const CpuKernels& kernels = cpu_kernels();
    const vec_dot_fn dot_f32 = kernels.vec_dot(GgmlType::F32);
    // Hand (token, head) rows to other threads only in chunks of ~2^16 multiply-adds: a decode step
    // at a short context is a few thousand, less than waking a worker costs.
    const int64_t row_work = n_ctx_used * (p.head_dim_k + p.head_dim_v);
    const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(1, row_work));
    pool.parallel_for(n_tokens * p.n_head, [&](int64_t i0, int64_t i1, int thread) {
        float* scores = scratch[static_cast<size_t>(thread)].data();
        for (int64_t i = i0; i < i1; ++i) {
            const int64_t t = i / p.n_head;
            const int h = static_cast<int>(i % p.n_head);
            const int kvh = h / group;
            const float* qh = q + (t * p.n_head + h) * p.head_dim_k;
            const int64_t n_keys = n_past + t + 1;
            float max_score = -INFINITY;
            for (int64_t j = 0; j < n_keys; ++j) {
                const float* kj = k_cache + j * k_stride + kvh * p.head_dim_k;
                scores[j] = dot_f32(p.head_dim_k, qh, kj) * p.scale;
                max_score = std::max(max_score, scores[j]);
            }
            float sum = 0;
            for (int64_t j = 0; j < n_keys; ++j) {
                scores[j] = std::exp(scores[j] - max_score);
                sum += scores[j];
            }
            float* oh = out + (t * p.n_head + h) * p.head_dim_v;
            std::fill(oh, oh + p.head_dim_v, 0.0f);
            for (int64_t j = 0; j < n_keys; ++j) {
                const float w = scores[j] / sum;
                const float* vj = v_cache + j * v_stride + kvh * p.head_dim_v;
                kernels.axpy_f32(p.head_dim_v, w, vj, oh);
            }
        }
    }, grain);
}

}  // namespace strata
