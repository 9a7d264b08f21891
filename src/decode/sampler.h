// Picks the next token from logits. Greedy when temperature is 0; otherwise softmax(logits / T)
// sampled with a seeded generator, so a run is reproducible for a given seed.
#pragma once

#include <cstdint>
#include <random>
#include <span>

namespace strata {

struct SamplerParams {
    float temperature = 0.8f;
    uint64_t seed = 0;
};

class Sampler {
public:
    explicit Sampler(SamplerParams params) : params_(params), rng_(params.seed) {}
    int32_t sample(std::span<const float> logits);

private:
    SamplerParams params_;
    std::mt19937_64 rng_;
};

}  // namespace strata
