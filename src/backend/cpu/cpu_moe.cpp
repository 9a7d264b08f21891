// The mixture-of-experts router and grouped expert FFN on the CPU. The expert FFN groups the
// choices by expert (choice i belongs to token i / k), so each expert runs once as a matrix
// product over its tokens: gather their rows, run the expert, scatter-add weighted.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/cpu_tensor.h"
#include "util/error.h"
#include "util/thread_pool.h"

namespace strata {

void cpu_moe_route(const Tensor& logits, int k, const MoeRouting& r, const Tensor& ids_t, const Tensor& weights_t,
                   const Tensor& counts_t, MoeScratch& scratch) {
    const int n_expert = static_cast<int>(logits.ne[0]);
    const int64_t n = logits.ne[1];
    if (k < 1 || k > n_expert) fail("moe_route: ", k, " experts per token of ", n_expert);
    std::vector<float>& p = scratch.probs;
    std::vector<int32_t>& order = scratch.order;
    p.resize(static_cast<size_t>(n_expert));
    order.resize(p.size());
    auto* ids = static_cast<int32_t*>(ids_t.data);
    auto* weights = static_cast<float*>(weights_t.data);
    auto* counts = counts_t.empty() ? nullptr : static_cast<int32_t*>(counts_t.data);
    for (int64_t t = 0; t < n; ++t) {
        const float* lt = f32_row(logits, t);
        if (r.gating == ExpertGating::Softmax) {
            const float max_logit = *std::max_element(lt, lt + n_expert);
            float sum = 0;
            for (int e = 0; e < n_expert; ++e) sum += p[e] = std::exp(lt[e] - max_logit);
            for (float& v : p) v /= sum;
        } else {
            for (int e = 0; e < n_expert; ++e) p[e] = 1.0f / (1.0f + std::exp(-lt[e]));
        }
        // Ties go to the lower expert id, so the choice is deterministic.
        std::iota(order.begin(), order.end(), 0);
        std::partial_sort(order.begin(), order.begin() + k, order.end(),
                          [&](int32_t a, int32_t b) { return p[a] > p[b] || (p[a] == p[b] && a < b); });
        float chosen_sum = 0;
        for (int j = 0; j < k; ++j) chosen_sum += p[order[j]];
        for (int j = 0; j < k; ++j) {
            const float w = r.normalize_top_k ? p[order[j]] / chosen_sum : p[order[j]];
            ids[t * k + j] = order[j];
            weights[t * k + j] = w * r.weights_scale;
            if (counts) ++counts[order[j]];
        }
    }
}

void cpu_moe_ffn(ThreadPool& pool, const CpuKernels& kernels, const Tensor& h, const Tensor& gate_exps,
                 const Tensor& up_exps, const Tensor& down_exps, const Tensor& ids_t, const Tensor& weights_t,
                 const Tensor& out, MoeScratch& s) {
    const int64_t n = h.ne[1], d = h.ne[0], k = ids_t.ne[0], n_expert = gate_exps.ne[2], n_ff = gate_exps.ne[1];
    const int32_t* ids = i32_data(ids_t);
    const auto* weights = static_cast<const float*>(weights_t.data);
    s.routed.resize(static_cast<size_t>(n_expert));
    for (auto& r : s.routed) r.clear();
    for (int64_t i = 0; i < n * k; ++i) {
        if (ids[i] < 0 || ids[i] >= n_expert) fail("moe_ffn: expert id ", ids[i], " of ", n_expert);
        s.routed[static_cast<size_t>(ids[i])].push_back(i);
    }
    for (int64_t t = 0; t < n; ++t) std::fill_n(f32_row(out, t), d, 0.0f);
    for (int64_t e = 0; e < n_expert; ++e) {
        const std::vector<int64_t>& mine = s.routed[static_cast<size_t>(e)];
        if (mine.empty()) continue;
        const int64_t m = static_cast<int64_t>(mine.size());
        s.rows.resize(static_cast<size_t>(m * d));
        s.out.resize(s.rows.size());
        s.gate.resize(static_cast<size_t>(m * n_ff));
        s.up.resize(s.gate.size());
        for (int64_t j = 0; j < m; ++j) std::copy_n(f32_row(h, mine[j] / k), d, &s.rows[j * d]);
        const Tensor rows = make_tensor(GgmlType::F32, {d, m}, s.rows.data(), nullptr);
        const Tensor g = make_tensor(GgmlType::F32, {n_ff, m}, s.gate.data(), nullptr);
        const Tensor u = make_tensor(GgmlType::F32, {n_ff, m}, s.up.data(), nullptr);
        const Tensor y = make_tensor(GgmlType::F32, {d, m}, s.out.data(), nullptr);
        cpu_matmul(pool, kernels, gate_exps.matrix(e), rows, g, s.activations);
        cpu_matmul(pool, kernels, up_exps.matrix(e), rows, u, s.activations);
        for (size_t i = 0; i < s.gate.size(); ++i) s.gate[i] = s.gate[i] / (1.0f + std::exp(-s.gate[i])) * s.up[i];
        cpu_matmul(pool, kernels, down_exps.matrix(e), g, y, s.activations);
        for (int64_t j = 0; j < m; ++j) {
            const float wt = weights[mine[j]];
            float* ot = f32_row(out, mine[j] / k);
            for (int64_t c = 0; c < d; ++c) ot[c] += wt * s.out[j * d + c];
        }
    }
}

}  // namespace strata
