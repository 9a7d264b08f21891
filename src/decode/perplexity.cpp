#include "decode/perplexity.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "util/error.h"

namespace strata {

namespace {

// −log softmax(logits)[target], in double so long vocabularies do not lose digits.
double negative_log_likelihood(const float* logits, int64_t n_vocab, int32_t target) {
    float max_logit = *std::max_element(logits, logits + n_vocab);
    double sum = 0;
    for (int64_t i = 0; i < n_vocab; ++i) sum += std::exp(static_cast<double>(logits[i]) - max_logit);
    return std::log(sum) - (static_cast<double>(logits[target]) - max_logit);
}

PerplexityResult summarize(double nll_sum, double nll2_sum, int64_t count, int chunks) {
    PerplexityResult r;
    r.scored = count;
    r.chunks = chunks;
    const double mean = nll_sum / static_cast<double>(count);
    r.ppl = std::exp(mean);
    const double var = nll2_sum / static_cast<double>(count) - mean * mean;
    r.ppl_error = (var > 0 && count > 1) ? r.ppl * std::sqrt(var / static_cast<double>(count - 1)) : 0;
    return r;
}

}  // namespace

PerplexityResult perplexity(Model& model, std::span<const int32_t> tokens, const PerplexityParams& params,
                            const std::function<void(int, int, const PerplexityResult&)>& on_chunk) {
    const int n_ctx = params.n_ctx, max_chunks = params.max_chunks;
    const int n_batch = params.n_batch > 0 ? std::min(params.n_batch, n_ctx) : n_ctx;
    if (n_ctx < 4) fail("perplexity needs a context of at least 4 tokens, got ", n_ctx);
    int available = static_cast<int>(static_cast<int64_t>(tokens.size()) / n_ctx);
    if (available == 0) {
        fail("the text has ", tokens.size(), " tokens, fewer than one chunk of ", n_ctx, " (lower -c)");
    }
    const int n_chunks = max_chunks > 0 ? std::min(max_chunks, available) : available;
    const int64_t n_vocab = model.info().n_vocab;
    const int first = n_ctx / 2;
    auto state = model.new_state(n_ctx);
    std::vector<int32_t> chunk(static_cast<size_t>(n_ctx));
    std::vector<float> logits(static_cast<size_t>(n_ctx * n_vocab)), batch_logits;
    double nll_sum = 0, nll2_sum = 0;
    int64_t count = 0;
    for (int c = 0; c < n_chunks; ++c) {
        std::copy_n(tokens.begin() + static_cast<int64_t>(c) * n_ctx, n_ctx, chunk.begin());
        chunk[0] = params.bos;
        state->truncate(0);
        for (int b = 0; b < n_ctx; b += n_batch) {
            const int len = std::min(n_batch, n_ctx - b);
            model.forward(*state, std::span<const int32_t>(chunk).subspan(static_cast<size_t>(b), static_cast<size_t>(len)),
                          Logits::All, batch_logits);
            std::copy(batch_logits.begin(), batch_logits.end(), logits.begin() + static_cast<int64_t>(b) * n_vocab);
        }
        for (int i = first; i < n_ctx - 1; ++i) {
            double nll = negative_log_likelihood(logits.data() + static_cast<int64_t>(i) * n_vocab, n_vocab, chunk[i + 1]);
            nll_sum += nll;
            nll2_sum += nll * nll;
            ++count;
        }
        if (on_chunk) on_chunk(c + 1, n_chunks, summarize(nll_sum, nll2_sum, count, c + 1));
    }
    return summarize(nll_sum, nll2_sum, count, n_chunks);
}

}  // namespace strata
