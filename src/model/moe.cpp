#include "model/moe.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "model/blocks.h"
#include "util/error.h"

namespace strata {

MoeRouting MoeRouting::from_gguf(const GgufFile& f, const std::string& arch, MoeRouting defaults) {
    MoeRouting r = defaults;
    const std::string gating_key = arch + ".expert_gating_func";
    if (f.has(gating_key)) {
        // llama.cpp's enum llama_expert_gating_func_type.
        const uint32_t g = f.get_u32(gating_key);
        if (g != 1 && g != 2) fail(f.path(), ": ", gating_key, " is ", g, ", expected 1 (softmax) or 2 (sigmoid)");
        r.gating = g == 1 ? ExpertGating::Softmax : ExpertGating::Sigmoid;
    }
    r.normalize_top_k = f.get_bool(arch + ".expert_weights_norm", r.normalize_top_k);
    r.weights_scale = f.get_f32(arch + ".expert_weights_scale", r.weights_scale);
    return r;
}

ExpertChoice route_tokens(const float* router_logits, int64_t n, int n_expert, int k, const MoeRouting& r) {
    ExpertChoice c;
    c.ids.resize(static_cast<size_t>(n * k));
    c.weights.resize(c.ids.size());
    std::vector<float> p(static_cast<size_t>(n_expert));
    std::vector<int32_t> order(p.size());
    for (int64_t t = 0; t < n; ++t) {
        const float* logits = router_logits + t * n_expert;
        if (r.gating == ExpertGating::Softmax) {
            const float max_logit = *std::max_element(logits, logits + n_expert);
            float sum = 0;
            for (int e = 0; e < n_expert; ++e) sum += p[e] = std::exp(logits[e] - max_logit);
            for (float& v : p) v /= sum;
        } else {
            for (int e = 0; e < n_expert; ++e) p[e] = 1.0f / (1.0f + std::exp(-logits[e]));
        }
        // Ties go to the lower expert id, so the choice is deterministic.
        std::iota(order.begin(), order.end(), 0);
        std::partial_sort(order.begin(), order.begin() + k, order.end(),
                          [&](int32_t a, int32_t b) { return p[a] > p[b] || (p[a] == p[b] && a < b); });
        float chosen_sum = 0;
        for (int j = 0; j < k; ++j) chosen_sum += p[order[j]];
        for (int j = 0; j < k; ++j) {
            const float w = r.normalize_top_k ? p[order[j]] / chosen_sum : p[order[j]];
            c.ids[t * k + j] = order[j];
            c.weights[t * k + j] = w * r.weights_scale;
        }
    }
    return c;
}

std::string expert_usage_report(const ExpertCounts& counts) {
    std::string s;
    char buf[64];
    for (size_t layer = 0; layer < counts.size(); ++layer) {
        const std::vector<uint64_t>& c = counts[layer];
        if (c.empty()) continue;
        const uint64_t total = std::accumulate(c.begin(), c.end(), uint64_t{0});
        std::snprintf(buf, sizeof buf, "layer %2zu (%llu choices):", layer, static_cast<unsigned long long>(total));
        s += buf;
        for (uint64_t v : c) {
            std::snprintf(buf, sizeof buf, " %5.1f%%", total ? 100.0 * static_cast<double>(v) / static_cast<double>(total) : 0.0);
            s += buf;
        }
        s += '\n';
    }
    return s.empty() ? s : "expert usage (share of each layer's choices, expert 0 first):\n" + s;
}

MoeBlock MoeBlock::load(const WeightLoader& w, const std::string& p, const TransformerHparams& hp,
                        const MoeRouting& routing) {
    const std::string& path = w.file().path();
    if (hp.n_expert <= 0) {
        fail(path, ": tensor '", p, "ffn_gate_inp.weight' routes to experts but ", hp.key("expert_count"),
             " is missing or 0");
    }
    const int64_t d = hp.n_embd, n_e = hp.n_expert, ff = hp.n_ff_exp, ff_sh = hp.n_ff_shexp;
    MoeBlock b;
    b.routing = routing;
    b.n_expert = hp.n_expert;
    b.n_expert_used = hp.n_expert_used;
    b.norm = w.require_vector(p + "ffn_norm.weight", d);
    try {
        b.gate_inp = w.require(p + "ffn_gate_inp.weight", {d, n_e});
        b.gate_exps = w.require(p + "ffn_gate_exps.weight", {d, ff, n_e});
        b.up_exps = w.require(p + "ffn_up_exps.weight", {d, ff, n_e});
        b.down_exps = w.require(p + "ffn_down_exps.weight", {ff, d, n_e});
        b.up_shexp = w.optional(p + "ffn_up_shexp.weight", {d, ff_sh});
        if (!b.up_shexp.empty()) {
            b.gate_shexp = w.require(p + "ffn_gate_shexp.weight", {d, ff_sh});
            b.down_shexp = w.require(p + "ffn_down_shexp.weight", {ff_sh, d});
            // llama.cpp writes this [n_embd] or [n_embd, 1]; both match.
            b.gate_inp_shexp = w.optional(p + "ffn_gate_inp_shexp.weight", {d, 1});
        }
    } catch (const Error& e) {
        // Expert shapes follow the metadata, so a mismatch may as well be the keys' fault.
        fail(e.what(), " (from ", hp.key("expert_count"), " = ", n_e, ", expert feed-forward length ", ff,
             ", shared ", ff_sh, ")");
    }
    return b;
}

void MoeBlock::forward(Backend& backend, const TransformerHparams& hp, float* x, int64_t n,
                       std::vector<uint64_t>& counts) const {
    const int64_t d = hp.n_embd;
    const int k = n_expert_used;
    std::vector<float> h(static_cast<size_t>(n * d)), router(static_cast<size_t>(n * n_expert));
    backend.rmsnorm(x, norm.data(), n, d, hp.rms_eps, h.data());
    backend.matmul(gate_inp, h.data(), n, router.data());
    const ExpertChoice choice = route_tokens(router.data(), n, n_expert, k, routing);

    // Choices grouped by expert (choice i belongs to token i / k), so each expert runs once as a
    // matrix product over its tokens: gather their rows, run the expert, scatter-add weighted.
    std::vector<std::vector<int64_t>> routed(static_cast<size_t>(n_expert));
    for (int64_t i = 0; i < n * k; ++i) routed[static_cast<size_t>(choice.ids[i])].push_back(i);
    counts.resize(static_cast<size_t>(n_expert));
    std::vector<float> y(static_cast<size_t>(n * d), 0.0f), rows, out;
    for (int e = 0; e < n_expert; ++e) {
        const std::vector<int64_t>& mine = routed[static_cast<size_t>(e)];
        if (mine.empty()) continue;
        counts[static_cast<size_t>(e)] += mine.size();
        const int64_t m = static_cast<int64_t>(mine.size());
        rows.resize(static_cast<size_t>(m * d));
        out.resize(rows.size());
        for (int64_t j = 0; j < m; ++j) std::copy_n(&h[(mine[j] / k) * d], d, &rows[j * d]);
        swiglu_ffn(backend, expert_slice(gate_exps, e), expert_slice(up_exps, e), expert_slice(down_exps, e),
                   rows.data(), m, out.data());
        for (int64_t j = 0; j < m; ++j) {
            const float wt = choice.weights[mine[j]];
            float* yt = &y[(mine[j] / k) * d];
            for (int64_t c = 0; c < d; ++c) yt[c] += wt * out[j * d + c];
        }
    }

    if (!up_shexp.empty()) {
        out.resize(static_cast<size_t>(n * d));
        swiglu_ffn(backend, gate_shexp, up_shexp, down_shexp, h.data(), n, out.data());
        std::vector<float> gate(static_cast<size_t>(n), 0.0f);
        if (!gate_inp_shexp.empty()) backend.matmul(gate_inp_shexp, h.data(), n, gate.data());
        for (int64_t t = 0; t < n; ++t) {
            // An ungated shared expert (DeepSeek) has weight 1, i.e. gate logit +∞.
            const float g = gate_inp_shexp.empty() ? 1.0f : 1.0f / (1.0f + std::exp(-gate[t]));
            for (int64_t c = 0; c < d; ++c) y[t * d + c] += g * out[t * d + c];
        }
    }
    backend.add(x, y.data(), n * d);
}

}  // namespace strata
