// Mixture-of-experts feed-forward (Mixtral, Qwen-MoE, Jamba; DeepSeek-style variants): a router
// picks k of n SwiGLU experts per token and mixes their outputs, and an optional shared expert
// runs on every token. How router logits become weights is data (MoeRouting), so a new variant
// is a row in the architecture table, not a new code path.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "format/gguf.h"
#include "model/hparams.h"
#include "model/weights.h"

namespace strata {

enum class ExpertGating { Softmax, Sigmoid };

// How router logits become the k chosen experts and their weights: probabilities over all n
// experts (softmax or per-expert sigmoid), the k most probable, their probabilities optionally
// renormalized to sum to 1, then multiplied by weights_scale.
struct MoeRouting {
    ExpertGating gating = ExpertGating::Softmax;
    bool normalize_top_k = true;  // Mixtral: yes; Qwen2-MoE (norm_topk_prob false) and Jamba: no
    float weights_scale = 1.0f;   // DeepSeek's routed_scaling_factor

    // `defaults` overridden by the keys llama.cpp writes where a model states them:
    // <arch>.expert_gating_func (1 softmax, 2 sigmoid), .expert_weights_norm, .expert_weights_scale.
    static MoeRouting from_gguf(const GgufFile& f, const std::string& arch, MoeRouting defaults);
};

// The k experts each of n tokens runs and their weights: ids and weights are [n][k], most
// probable first.
struct ExpertChoice {
    std::vector<int32_t> ids;
    std::vector<float> weights;
};
ExpertChoice route_tokens(const float* router_logits, int64_t n, int n_expert, int k, const MoeRouting& routing);

// Times each expert was chosen: counts[layer][expert]; a dense layer's row is empty.
using ExpertCounts = std::vector<std::vector<uint64_t>>;
// One line per MoE layer with each expert's share of that layer's choices.
std::string expert_usage_report(const ExpertCounts& counts);

// x += Σ_i w_i · expert_i(h) + g · shared(h) with h = rmsnorm(x), the k experts and weights w_i
// from the router, and g = sigmoid(gate_inp_shexp · h) (1 when the shared expert is ungated).
struct MoeBlock {
    std::vector<float> norm;
    TensorView gate_inp;                          // router [n_embd, n_expert]
    TensorView gate_exps, up_exps, down_exps;     // [n_embd, n_ff_exp, n_expert]; down [n_ff_exp, n_embd, n_expert]
    TensorView gate_shexp, up_shexp, down_shexp;  // the shared expert; empty when absent
    TensorView gate_inp_shexp;                    // [n_embd, 1]; empty when absent
    MoeRouting routing;
    int n_expert = 0, n_expert_used = 0;

    static MoeBlock load(const WeightLoader& w, const std::string& prefix, const TransformerHparams& hp,
                         const MoeRouting& routing);
    // Runs each chosen expert once over all the tokens routed to it; with one token (decode) only
    // the k chosen experts' weights are read. Adds the choices to counts[expert].
    void forward(Backend& backend, const TransformerHparams& hp, float* x, int64_t n,
                 std::vector<uint64_t>& counts) const;
};

}  // namespace strata
