// The generation loop: sample a token, hand it to the caller, run it through the model, repeat.
// `run` and `chat` both drive it; speculative decoding (speculative.h) keeps the same contract.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "decode/sampler.h"
#include "model/model.h"

namespace strata {

// Called with each new token before it joins the sequence; returning false stops generation and
// drops the token (the caller's end-of-generation test goes here).
using TokenCallback = std::function<bool(int32_t)>;

enum class StopReason { n_predict, callback, context_full };

struct GenerationResult {
    int n_generated = 0;  // tokens accepted by the callback
    StopReason stop = StopReason::n_predict;
};

// Generates up to n_predict tokens after `tokens` (the sequence so far, all processed into
// `state`, with `logits` the last position's). Accepted tokens are appended to `tokens` and
// processed, except the last one when generation ends (it is in `tokens`, not yet in `state`).
GenerationResult generate(Model& model, SequenceState& state, std::vector<float>& logits, std::vector<int32_t>& tokens,
                          int n_predict, Sampler& sampler, const TokenCallback& on_token);

}  // namespace strata
