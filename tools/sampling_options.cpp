#include "sampling_options.h"

#include <charconv>
#include <climits>
#include <random>
#include <string>

strata::SamplerParams SamplingOptions::resolved() const {
    strata::SamplerParams p = params;
    p.seed = seed ? *seed : std::random_device{}();
    return p;
}

namespace {

// --seed takes -1 (random) or any 64-bit value; read here because CLI11 would clamp 2^64 - 1
// into an int64 without a word.
std::optional<uint64_t> parse_seed(const std::string& text) {
    if (text == "-1") return std::nullopt;
    uint64_t v = 0;
    const char* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, v);
    if (text.empty() || ec != std::errc() || ptr != end) {
        throw CLI::ValidationError("--seed", "'" + text + "' is not -1 (random) or a seed from 0 to 18446744073709551615");
    }
    return v;
}

}  // namespace

void add_sampling_options(CLI::App* cmd, SamplingOptions& o) {
    strata::SamplerParams& s = o.params;
    cmd->add_option("--repeat-penalty", s.repeat_penalty, "Penalize repeated tokens (1.0: off)")->capture_default_str();
    cmd->add_option("--repeat-last-n", s.repeat_last_n, "Tokens the penalties look back over (0: off, -1: all)")
        ->capture_default_str()
        ->check(CLI::Range(-1, INT_MAX));
    cmd->add_option("--presence-penalty", s.presence_penalty, "Subtracted from a seen token's logit (0: off)")
        ->capture_default_str();
    cmd->add_option("--frequency-penalty", s.frequency_penalty, "Subtracted per occurrence (0: off)")
        ->capture_default_str();
    cmd->add_option("--top-k", s.top_k, "Keep the k most likely tokens (0: off)")
        ->capture_default_str()
        ->check(CLI::Range(0, INT_MAX));
    cmd->add_option("--top-p", s.top_p, "Keep the smallest set with this much probability (1.0: off)")
        ->capture_default_str();
    cmd->add_option("--min-p", s.min_p, "Drop tokens below min-p times the best one's probability (0: off)")
        ->capture_default_str();
    cmd->add_option("--temp", s.temperature, "Temperature; 0 is greedy")->capture_default_str();
    cmd->add_option_function<std::string>(
        "--seed", [&o](const std::string& text) { o.seed = parse_seed(text); },
        "Random seed, 0 to 2^64-1 (default -1: random, printed when sampling)");
}
