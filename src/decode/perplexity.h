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

struct PerplexityParams {
    int n_ctx = 512;
    int max_chunks = 0;  // ≤ 0: every chunk that fits
    int n_batch = 0;     // tokens per forward pass within a chunk; ≤ 0: the whole chunk at once
    int32_t bos = 1;
};

// on_chunk(i, n, running) reports after each chunk. Throws Error when the text is shorter than
// one chunk.
PerplexityResult perplexity(Model& model, std::span<const int32_t> tokens, const PerplexityParams& params,
                            const std::function<void(int, int, const PerplexityResult&)>& on_chunk = {});
// Whole chunks per forward pass, no progress callback.
inline PerplexityResult perplexity(Model& model, std::span<const int32_t> tokens, int n_ctx, int max_chunks, int32_t bos) {
    return perplexity(model, tokens, PerplexityParams{n_ctx, max_chunks, 0, bos});
}

}  // namespace strata
