// The sampler chain: turns one position's logits into the next token, in llama.cpp's order and
// with its math — repetition penalties, top-k, top-p, min-p, temperature, then a seeded draw
// (temperature 0: the most likely token after the penalties). The chain is a pure function of
// the logits and the tokens so far (`apply_sampler_chain`), so speculative decoding can evaluate it for
// the draft and the target at positions it has not committed yet; the Sampler adds the random
// generator, seeded, so a run is reproducible for a seed on any thread count.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

namespace strata {

struct SamplerParams {
    // Penalties on tokens among the last repeat_last_n of the sequence (prompt included; 0: off,
    // -1: the whole sequence), as llama.cpp applies them: a logit l of a token seen c times becomes
    // (l > 0 ? l / repeat_penalty : l · repeat_penalty) − c · frequency_penalty − presence_penalty.
    float repeat_penalty = 1.0f;  // 1: off
    int repeat_last_n = 64;
    float presence_penalty = 0.0f;
    float frequency_penalty = 0.0f;
    int top_k = 40;            // ≤ 0: off
    float top_p = 0.95f;       // 1: off
    float min_p = 0.05f;       // 0: off
    float temperature = 0.8f;  // 0: greedy
    uint64_t seed = 0;

    bool greedy() const { return temperature <= 0; }
};

struct TokenProb {
    int32_t id;
    float logit;
    float p;
};

// The chain's result: the tokens it kept and their probabilities (summing to 1). `sorted`: the
// list is in descending logit order (ties by id); otherwise in id order.
struct TokenDistribution {
    std::vector<TokenProb> tokens;
    bool sorted = false;
    std::vector<float> penalized;  // scratch: the logits after the penalties, reused between calls

    // p of `id` (0 when it was cut). Linear in the list's size.
    float prob(int32_t id) const;
};

// Applies the chain to logits given the sequence so far (for the penalties); greedy keeps the one
// best token with p = 1. Throws Error for empty logits or parameters outside their range.
void apply_sampler_chain(const SamplerParams& params, std::span<const float> logits, std::span<const int32_t> history,
                         TokenDistribution& out);

// A uniform double in [0, 1) from 53 bits of the generator: the same for a seed on every platform
// (std::uniform_real_distribution is not specified bit for bit).
double uniform01(std::mt19937_64& rng);
// Inverse-CDF draw over the list's order; a one-token list takes nothing from the generator.
int32_t draw(const TokenDistribution& dist, std::mt19937_64& rng);

class Sampler {
public:
    explicit Sampler(const SamplerParams& params);
    const SamplerParams& params() const { return params_; }

    // The next token after `history` (the prompt and what was generated so far).
    int32_t sample(std::span<const float> logits, std::span<const int32_t> history);
    // Speculative decoding evaluates the chain itself (apply_sampler_chain) and draws from here.
    std::mt19937_64& rng() { return rng_; }

private:
    SamplerParams params_;
    std::mt19937_64 rng_;
    TokenDistribution scratch_;
};

}  // namespace strata
