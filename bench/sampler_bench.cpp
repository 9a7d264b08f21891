// Sampler overhead per token on large vocabularies (32 000 and 150 000): greedy, llama.cpp's
// default chain, the chain with penalties, top-p alone and no truncation, best of several runs.
// Logits are N(0, 3²) — flatter than a real model's, so top-p keeps thousands of tokens (a hard case).
//   build/bench/sampler_bench
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <vector>

#include "decode/sampler.h"

namespace {

double microseconds_per_token(const strata::SamplerParams& params, const std::vector<float>& logits,
                              const std::vector<int32_t>& history) {
    strata::Sampler sampler(params);
    double best = 1e30;
    for (int rep = 0; rep < 5; ++rep) {
        constexpr int kDraws = 50;
        auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < kDraws; ++i) sampler.sample(logits, history);
        double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / kDraws;
        best = std::min(best, us);
    }
    return best;
}

}  // namespace

int main() {
    std::mt19937_64 rng(7);
    std::normal_distribution<float> normal(0.0f, 3.0f);
    std::printf("| vocab | greedy | default chain | + penalties | top-p 0.95 only | no truncation |\n|---|---|---|---|---|---|\n");
    for (int vocab : {32000, 150000}) {
        std::vector<float> logits(static_cast<size_t>(vocab));
        for (float& l : logits) l = normal(rng);
        std::vector<int32_t> history(256);
        for (int32_t& t : history) t = static_cast<int32_t>(rng() % static_cast<uint64_t>(vocab));
        strata::SamplerParams greedy;
        greedy.temperature = 0;
        strata::SamplerParams chain;  // top-k 40, top-p 0.95, min-p 0.05, temp 0.8
        strata::SamplerParams penalties = chain;
        penalties.repeat_penalty = 1.1f;
        penalties.frequency_penalty = 0.1f;
        penalties.presence_penalty = 0.1f;
        strata::SamplerParams top_p;
        top_p.top_k = 0;
        top_p.min_p = 0;
        strata::SamplerParams plain = top_p;
        plain.top_p = 1.0f;
        std::printf("| %d | %.1f µs | %.1f µs | %.1f µs | %.1f µs | %.1f µs |\n", vocab,
                    microseconds_per_token(greedy, logits, history), microseconds_per_token(chain, logits, history),
                    microseconds_per_token(penalties, logits, history), microseconds_per_token(top_p, logits, history),
                    microseconds_per_token(plain, logits, history));
    }
}
