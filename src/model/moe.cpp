#include "model/moe.h"

#include <cstdio>
#include <numeric>

#include "util/error.h"

namespace strata {

MoeRouting moe_routing_from_gguf(const GgufFile& f, const std::string& arch, MoeRouting defaults) {
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

void ExpertUsage::init(Backend& backend, const std::vector<int>& n_expert) {
    backend_ = &backend;
    const int total = std::accumulate(n_expert.begin(), n_expert.end(), 0);
    counts_.assign(n_expert.size(), Tensor{});
    if (total == 0) return;
    buffer_ = backend.alloc(static_cast<size_t>(total) * sizeof(int32_t));
    size_t offset = 0;
    for (size_t layer = 0; layer < n_expert.size(); ++layer) {
        if (n_expert[layer] == 0) continue;
        counts_[layer] = buffer_->tensor(GgmlType::I32, {n_expert[layer]}, offset);
        offset += static_cast<size_t>(n_expert[layer]) * sizeof(int32_t);
    }
    backend.fill_zero(buffer_->tensor(GgmlType::I32, {total}));
}

std::string ExpertUsage::report() const {
    std::string s;
    char buf[64];
    for (size_t layer = 0; layer < counts_.size(); ++layer) {
        if (counts_[layer].empty()) continue;
        std::vector<int32_t> c(static_cast<size_t>(counts_[layer].ne[0]));
        backend_->read(counts_[layer], c.data(), c.size() * sizeof(int32_t));
        const uint64_t total = std::accumulate(c.begin(), c.end(), uint64_t{0});
        std::snprintf(buf, sizeof buf, "layer %2zu (%llu choices):", layer, static_cast<unsigned long long>(total));
        s += buf;
        for (int32_t v : c) {
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
    b.norm = w.require_f32(p + "ffn_norm.weight", {d});
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

void MoeBlock::forward(Pass& pass, const TransformerHparams& hp, const Tensor& x, const Tensor& counts) const {
    Backend& be = pass.backend;
    Workspace::Scope scope(pass.ws);
    const int64_t n = pass.n_tokens(), d = hp.n_embd;
    const Tensor h = pass.ws.f32(d, n), router = pass.ws.f32(n_expert, n);
    const Tensor ids = pass.ws.i32(n_expert_used, n), weights = pass.ws.f32(n_expert_used, n);
    const Tensor y = pass.ws.f32(d, n);
    be.rmsnorm(x, norm, hp.rms_eps, h);
    be.matmul(gate_inp, h, router);
    be.moe_route(router, n_expert_used, routing, ids, weights, counts);
    be.moe_ffn(h, gate_exps, up_exps, down_exps, ids, weights, y);
    if (!up_shexp.empty()) {
        const Tensor shared = pass.ws.f32(d, n);
        swiglu_ffn(pass, gate_shexp, up_shexp, down_shexp, h, shared);
        if (gate_inp_shexp.empty()) {
            be.add(y, shared);  // an ungated shared expert (DeepSeek) has weight 1
        } else {
            const Tensor gate = pass.ws.f32(1, n);
            be.matmul(gate_inp_shexp, h, gate);
            be.add_gated(y, shared, gate);
        }
    }
    be.add(x, y);
}

}  // namespace strata
