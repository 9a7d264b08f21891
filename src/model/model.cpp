#include "model/model.h"

#include <algorithm>

#include "util/error.h"

namespace strata {

void Model::forward_batch(std::span<SequenceState* const> states, std::span<const int32_t> tokens,
                          std::vector<float>& logits) {
    if (states.size() != tokens.size()) fail("forward_batch: ", states.size(), " states but ", tokens.size(), " tokens");
    const int64_t n_vocab = info().n_vocab;
    logits.resize(states.size() * static_cast<size_t>(n_vocab));
    std::vector<float> one;
    for (size_t i = 0; i < states.size(); ++i) {
        forward(*states[i], tokens.subspan(i, 1), Logits::Last, one);
        std::copy(one.begin(), one.end(), logits.begin() + static_cast<int64_t>(i) * n_vocab);
    }
}

}  // namespace strata
