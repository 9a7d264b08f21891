// Speculative decoding (Leviathan et al. 2023, Chen et al. 2023): a small draft model proposes
// n tokens one by one, the target scores all of them in one batched pass, and the rejection rule
// keeps the longest acceptable prefix plus one token drawn from the target, so the output has
// exactly the target's distribution (with --temp 0: exactly the target's greedy tokens). Both
// states are rolled back past rejected tokens with SequenceState::truncate.
#pragma once

#include <cstdint>
#include <vector>

#include "decode/generate.h"
#include "decode/sampler.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace strata {

struct SpeculativeStats {
    int64_t drafted = 0;        // tokens the draft proposed
    int64_t accepted = 0;       // of those, kept
    int64_t target_passes = 0;  // batched target forward passes
    int64_t generated = 0;      // tokens produced (accepted drafts + one target token per pass)
    StopReason stop = StopReason::n_predict;

    double acceptance_rate() const { return drafted > 0 ? double(accepted) / double(drafted) : 0.0; }
    double tokens_per_pass() const { return target_passes > 0 ? double(generated) / double(target_passes) : 0.0; }
};

struct AcceptResult {
    int32_t token;  // x when accepted, else the replacement drawn from the residual
    bool accepted;
};
// One acceptance test (the heart of the method, exposed for tests): given the chain's draft
// distribution q and target distribution p at a position and the drafted token x ~ q, keeps x
// with probability min(1, p(x)/q(x)); otherwise draws from normalize(max(0, p − q)). `dense` is
// scratch of n_vocab floats, all zero (and left zero).
AcceptResult accept_or_resample(const TokenDistribution& p, const TokenDistribution& q, int32_t x,
                                std::vector<float>& dense, std::mt19937_64& rng);

// Throws Error unless the draft can stand in for the target: same vocabulary size, BOS and EOS,
// and the same text for every token.
void check_draft_compatible(const Tokenizer& target, const Tokenizer& draft);

struct SpeculativeParams {
    int n_predict = 128;
    int n_draft = 4;  // most tokens proposed per target pass (fewer near n_predict or a full context)
    // Drafting stops before a token whose draft probability (softmax of the raw logits) is below
    // this, as llama.cpp's --draft-p-min does: unsure drafts are mostly rejected and cost a draft
    // pass and a wider target pass each. 0: always draft n_draft.
    float p_min = 0.0f;
};

// Generates like generate() (same callback contract). The target state holds `tokens` but the
// last; the draft state holds any prefix of them (it catches up on the rest as it drafts).
SpeculativeStats generate_speculative(Model& target, SequenceState& target_state, Model& draft,
                                      SequenceState& draft_state, std::vector<int32_t>& tokens,
                                      const SpeculativeParams& params, Sampler& sampler, const TokenCallback& on_token);

}  // namespace strata
