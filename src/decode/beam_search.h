// Beam search as Hugging Face transformers runs it (`num_beams`, `length_penalty`,
// early_stopping=False), so its continuations can be compared token for token: every step
// scores the running beams' continuations by summed log-probability, keeps the best 2·N
// candidates, finishes those of the top N that end in EOS (or reach the length limit) with score
// log_prob / length^length_penalty, and continues the best N that did not end.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "model/model.h"

namespace strata {

struct BeamParams {
    int n_beams = 4;
    int n_predict = 16;
    float length_penalty = 1.0f;  // > 0 favors longer hypotheses, < 0 shorter ones
};

struct BeamResult {
    std::vector<int32_t> tokens;  // the generated tokens, ending with the EOS that finished it if any
    double log_prob = 0;          // Σ log p of those tokens
    double score = 0;             // log_prob / tokens.size()^length_penalty
};

// Searches from `prompt_state` (the prompt processed; left untouched: each beam forks a clone)
// whose last logits are `prompt_logits`. `is_eos` may be empty: then no token ends a beam and
// every hypothesis runs to n_predict tokens. Each running beam takes one forward pass per step.
BeamResult beam_search(Model& model, const SequenceState& prompt_state, std::span<const float> prompt_logits,
                       const BeamParams& params, const std::function<bool(int32_t)>& is_eos);

}  // namespace strata
