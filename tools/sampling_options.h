// The sampler chain's flags, shared by run and chat, in llama.cpp's spelling, order and defaults.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <optional>

#include "decode/sampler.h"

struct SamplingOptions {
    strata::SamplerParams params;
    std::optional<uint64_t> seed;  // none (--seed -1, the default): a random seed

    // The parameters with the seed resolved (a random one when none was given).
    strata::SamplerParams resolved() const;
};

void add_sampling_options(CLI::App* cmd, SamplingOptions& o);
