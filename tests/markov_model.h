// A Model whose logits depend only on the last token: table[last][next]. Decoding algorithms
// (beam search, speculative sampling) can then be checked against probabilities computed by hand,
// in microseconds per step.
#pragma once

#include <random>
#include <vector>

#include "model/model.h"

namespace strata::test {

class MarkovModel : public Model {
public:
    // table: [n_vocab][n_vocab] logits, row = the previous token.
    MarkovModel(int n_vocab, std::vector<float> table) : table_(std::move(table)) {
        info_.arch = "markov";
        info_.n_vocab = n_vocab;
    }
    // Logits drawn from N(0, spread²), reproducible from the seed.
    static MarkovModel random(int n_vocab, float spread, unsigned seed) {
        std::mt19937 gen(seed);
        std::normal_distribution<float> normal(0.0f, spread);
        std::vector<float> table(static_cast<size_t>(n_vocab * n_vocab));
        for (float& x : table) x = normal(gen);
        return MarkovModel(n_vocab, std::move(table));
    }

    const ModelInfo& info() const override { return info_; }
    std::unique_ptr<SequenceState> new_state(int n_ctx) const override {
        return std::make_unique<SequenceState>(nullptr, n_ctx, std::vector<LayerShape>{});
    }
    void forward(SequenceState& state, std::span<const int32_t> tokens, Logits which,
                 std::vector<float>& logits) override {
        state.advance(static_cast<int64_t>(tokens.size()));
        const size_t v = static_cast<size_t>(info_.n_vocab);
        const auto rows = which == Logits::All ? tokens : tokens.last(1);
        logits.clear();
        for (int32_t t : rows) logits.insert(logits.end(), row(t), row(t) + v);
    }
    const float* row(int32_t previous) const { return table_.data() + static_cast<size_t>(previous * info_.n_vocab); }

private:
    ModelInfo info_;
    std::vector<float> table_;
};

}  // namespace strata::test
