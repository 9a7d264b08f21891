// Perplexity exactly as llama.cpp's `llama-perplexity` computes it, so figures compare 1:1:
// tokens = [BOS] + encode(text); chunk c = tokens[c·n_ctx, (c+1)·n_ctx) with its first token set
// to BOS; the logits at positions n_ctx/2 … n_ctx-2 score the next token; PPL = exp(mean NLL).
#pragma once

#include <cstdint>
#include <functional>
#include <span>

#include "model/model.h"

namespace strata {

struct PerplexityResult {
    double ppl = 0;
    double ppl_error = 0;  // llama.cpp's uncertainty: ppl · sqrt(var(NLL) / (count - 1))
    int64_t scored = 0;
    int chunks = 0;
};

// Runs up to max_chunks chunks (all that fit when max_chunks ≤ 0); on_chunk(i, n, running)
// reports after each chunk. Throws Error when the text is shorter than one chunk.
PerplexityResult perplexity(Model& model, std::span<const int32_t> tokens, int n_ctx, int max_chunks, int32_t bos,
                            const std::function<void(int, int, const PerplexityResult&)>& on_chunk = {});

}  // namespace strata
