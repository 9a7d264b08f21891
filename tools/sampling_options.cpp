#include "sampling_options.h"

#include <random>

strata::SamplerParams SamplingOptions::resolved() const {
    strata::SamplerParams p = params;
    p.seed = seed >= 0 ? static_cast<uint64_t>(seed) : std::random_device{}();
    return p;
}

void add_sampling_options(CLI::App* cmd, SamplingOptions& o) {
    strata::SamplerParams& s = o.params;
    cmd->add_option("--repeat-penalty", s.repeat_penalty, "Penalize repeated tokens (1.0: off)")->capture_default_str();
    cmd->add_option("--repeat-last-n", s.repeat_last_n, "Tokens the penalties look back over (0: off, -1: all)")
        ->capture_default_str();
    cmd->add_option("--presence-penalty", s.presence_penalty, "Subtracted from a seen token's logit (0: off)")
        ->capture_default_str();
    cmd->add_option("--frequency-penalty", s.frequency_penalty, "Subtracted per occurrence (0: off)")
        ->capture_default_str();
    cmd->add_option("--top-k", s.top_k, "Keep the k most likely tokens (0: off)")->capture_default_str();
    cmd->add_option("--top-p", s.top_p, "Keep the smallest set with this much probability (1.0: off)")
        ->capture_default_str();
    cmd->add_option("--min-p", s.min_p, "Drop tokens below min-p times the best one's probability (0: off)")
        ->capture_default_str();
    cmd->add_option("--temp", s.temperature, "Temperature; 0 is greedy")->capture_default_str();
    cmd->add_option("--seed", o.seed, "Random seed (default: random, printed when sampling)");
}
