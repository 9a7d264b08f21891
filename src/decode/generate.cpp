#include "decode/generate.h"

namespace strata {

GenerationResult generate(Model& model, SequenceState& state, std::vector<float>& logits, std::vector<int32_t>& tokens,
                          int n_predict, Sampler& sampler, const TokenCallback& on_token) {
    GenerationResult r;
    while (r.n_generated < n_predict) {
        const int32_t next = sampler.sample(logits, tokens);
        if (!on_token(next)) {
            r.stop = StopReason::callback;
            return r;
        }
        tokens.push_back(next);
        ++r.n_generated;
        if (r.n_generated == n_predict) break;
        if (state.n_past() >= state.n_ctx()) {
            r.stop = StopReason::context_full;
            return r;
        }
        model.forward(state, std::span<const int32_t>(&next, 1), Logits::Last, logits);
    }
    return r;
}

}  // namespace strata
