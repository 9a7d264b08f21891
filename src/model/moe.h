// Mixture-of-experts feed-forward (Mixtral, Qwen-MoE, Jamba; DeepSeek-style variants): a router
// picks k of n SwiGLU experts per token and mixes their outputs, and an optional shared expert
// runs on every token. How router logits become weights is data (MoeRouting, in backend.h), so a
// new variant is a row in the architecture table, not a new code path. Routing and the experts
// run inside the backend (moe_route, moe_ffn): the choices never visit the host.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "format/gguf.h"
#include "model/blocks.h"
#include "model/hparams.h"
#include "model/weights.h"

namespace strata {

// `defaults` overridden by the keys llama.cpp writes where a model states them:
// <arch>.expert_gating_func (1 softmax, 2 sigmoid), .expert_weights_norm, .expert_weights_scale.
MoeRouting moe_routing_from_gguf(const GgufFile& f, const std::string& arch, MoeRouting defaults);

// How often each expert was chosen, per layer (for --verbose): counters in backend memory that
// moe_route adds to, read only when a report is asked for.
class ExpertUsage {
public:
    // n_expert[layer]: the layer's expert count, 0 for a dense layer.
    void init(Backend& backend, const std::vector<int>& n_expert);
    const Tensor& counts(int layer) const { return counts_[static_cast<size_t>(layer)]; }
    // One line per MoE layer with each expert's share of that layer's choices; empty without any.
    std::string report() const;

private:
    Backend* backend_ = nullptr;
    std::unique_ptr<BackendBuffer> buffer_;
    std::vector<Tensor> counts_;
};

// x += Σ_i w_i · expert_i(h) + g · shared(h) with h = rmsnorm(x), the k experts and weights w_i
// from the router, and g = sigmoid(gate_inp_shexp · h) (1 when the shared expert is ungated).
struct MoeBlock {
    Tensor norm;
    Tensor gate_inp;                          // router [n_embd, n_expert]
    Tensor gate_exps, up_exps, down_exps;     // [n_embd, n_ff_exp, n_expert]; down [n_ff_exp, n_embd, n_expert]
    Tensor gate_shexp, up_shexp, down_shexp;  // the shared expert; empty when absent
    Tensor gate_inp_shexp;                    // [n_embd, 1]; empty when absent
    MoeRouting routing;
    int n_expert = 0, n_expert_used = 0;

    static MoeBlock load(const WeightLoader& w, const std::string& prefix, const TransformerHparams& hp,
                         const MoeRouting& routing);
    // With one token (decode) only the k chosen experts' weights are read. The choices are
    // added to counts (I32 [n_expert]).
    void forward(Pass& pass, const TransformerHparams& hp, const Tensor& x, const Tensor& counts) const;
};

}  // namespace strata
