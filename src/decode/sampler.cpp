#include "decode/sampler.h"

#include <algorithm>
#include <cmath>

#include "util/error.h"

namespace strata {

namespace {

// Descending logit, ties by id: a total order, so the kept set and the draw order are the same
// with every standard library.
bool before(const TokenProb& a, const TokenProb& b) { return a.logit > b.logit || (a.logit == b.logit && a.id < b.id); }

void validate(const SamplerParams& s) {
    if (!(s.temperature >= 0)) fail("--temp must be ≥ 0, got ", s.temperature);
    if (!(s.top_p > 0 && s.top_p <= 1)) fail("--top-p must be in (0, 1], got ", s.top_p);
    if (!(s.min_p >= 0 && s.min_p <= 1)) fail("--min-p must be in [0, 1], got ", s.min_p);
    if (!(s.repeat_penalty > 0)) fail("--repeat-penalty must be > 0, got ", s.repeat_penalty);
    if (s.repeat_last_n < -1) fail("--repeat-last-n must be ≥ -1, got ", s.repeat_last_n);
    if (!std::isfinite(s.presence_penalty) || !std::isfinite(s.frequency_penalty)) fail("penalties must be finite");
}

// The logits with the penalties applied: `logits` itself when no penalty applies, else a copy
// in `work` (a copy of V floats costs far less than the candidate list built from it).
std::span<const float> apply_penalties(const SamplerParams& s, std::span<const float> logits,
                                       std::span<const int32_t> history, std::vector<float>& work) {
    const bool off = s.repeat_penalty == 1.0f && s.presence_penalty == 0.0f && s.frequency_penalty == 0.0f;
    if (off || s.repeat_last_n == 0 || history.empty()) return logits;
    const size_t n = s.repeat_last_n < 0 ? history.size() : std::min(history.size(), size_t(s.repeat_last_n));
    // Sorting the window counts each token's occurrences in O(n log n), independent of the vocabulary.
    std::vector<int32_t> window(history.end() - static_cast<ptrdiff_t>(n), history.end());
    std::sort(window.begin(), window.end());
    work.assign(logits.begin(), logits.end());
    for (size_t i = 0; i < window.size();) {
        size_t j = i;
        while (j < window.size() && window[j] == window[i]) ++j;
        const int32_t id = window[i];
        if (id >= 0 && static_cast<size_t>(id) < work.size()) {
            float& l = work[static_cast<size_t>(id)];
            l = l <= 0 ? l * s.repeat_penalty : l / s.repeat_penalty;
            l -= static_cast<float>(j - i) * s.frequency_penalty + s.presence_penalty;
        }
        i = j;
    }
    return work;
}

// The k best tokens, sorted, in one pass over the logits: a heap of k whose worst entry is the
// bar to pass. O(V) comparisons plus O(k log k · log V) heap updates on typical logits, and no
// V-sized list is written.
void top_k_select(std::span<const float> l, int k, TokenDistribution& d) {
    auto& c = d.tokens;
    c.clear();
    for (size_t i = 0; i < l.size(); ++i) {
        const TokenProb t{static_cast<int32_t>(i), l[i], 0.0f};
        if (c.size() < static_cast<size_t>(k)) {
            c.push_back(t);
            std::push_heap(c.begin(), c.end(), before);  // front: the worst kept token
        } else if (before(t, c.front())) {
            std::pop_heap(c.begin(), c.end(), before);
            c.back() = t;
            std::push_heap(c.begin(), c.end(), before);
        }
    }
    std::sort(c.begin(), c.end(), before);
    d.sorted = true;
}

// p = softmax(logit) over the list; the sum is in double so 150k small terms lose nothing.
void softmax(std::vector<TokenProb>& c) {
    float max_logit = -INFINITY;
    for (const TokenProb& t : c) max_logit = std::max(max_logit, t.logit);
    if (!std::isfinite(max_logit)) fail("cannot sample: the largest logit is ", max_logit);
    double sum = 0;
    for (TokenProb& t : c) {
        t.p = std::exp(t.logit - max_logit);
        sum += t.p;
    }
    for (TokenProb& t : c) t.p = static_cast<float>(t.p / sum);
}

void top_p(float p, TokenDistribution& d) {
    auto& c = d.tokens;
    if (p >= 1.0f || c.size() <= 1) return;
    softmax(c);
    // Find a prefix holding mass ≥ p without sorting everything: select the best m, then the next
    // 3m, … (each an O(V) nth_element over the rest), and sort only that prefix.
    size_t m = d.sorted ? c.size() : std::min(c.size(), size_t(64));
    if (!d.sorted) {
        size_t done = 0;
        double mass = 0;
        for (;;) {
            if (m < c.size())
                std::nth_element(c.begin() + static_cast<ptrdiff_t>(done), c.begin() + static_cast<ptrdiff_t>(m),
                                 c.end(), before);
            for (size_t i = done; i < m; ++i) mass += c[i].p;
            if (mass >= p || m == c.size()) break;
            done = m;
            m = std::min(c.size(), m * 4);
        }
        std::sort(c.begin(), c.begin() + static_cast<ptrdiff_t>(m), before);
    }
    // The cut in float, as llama.cpp accumulates, so it lands on the same token. Should the float
    // sum fall short of the double one, the rest is sorted and the scan goes on.
    float cum = 0;
    for (size_t i = 0; i < c.size(); ++i) {
        if (i == m) {
            std::sort(c.begin() + static_cast<ptrdiff_t>(m), c.end(), before);
            m = c.size();
        }
        cum += c[i].p;
        if (cum >= p) {
            c.resize(i + 1);
            break;
        }
    }
    d.sorted = true;
}

void min_p(float min_p, TokenDistribution& d) {
    auto& c = d.tokens;
    if (min_p <= 0.0f || c.size() <= 1) return;
    // p ≥ min_p · p_max  ⇔  logit ≥ max_logit + log(min_p): no softmax needed.
    float max_logit = -INFINITY;
    for (const TokenProb& t : c) max_logit = std::max(max_logit, t.logit);
    const float threshold = max_logit + std::log(min_p);
    std::erase_if(c, [&](const TokenProb& t) { return t.logit < threshold; });  // keeps the order
}

}  // namespace

float TokenDistribution::prob(int32_t id) const {
    for (const TokenProb& t : tokens) {
        if (t.id == id) return t.p;
    }
    return 0.0f;
}

void apply_sampler_chain(const SamplerParams& s, std::span<const float> logits, std::span<const int32_t> history,
                         TokenDistribution& out) {
    if (logits.empty()) fail("sampling from empty logits");
    const std::span<const float> l = apply_penalties(s, logits, history, out.penalized);
    auto& c = out.tokens;
    if (s.greedy()) {
        const size_t best = static_cast<size_t>(std::max_element(l.begin(), l.end()) - l.begin());  // first of ties
        if (std::isnan(l[best]) || l[best] == -INFINITY) fail("cannot sample: the best logit is ", l[best]);
        c.assign(1, {static_cast<int32_t>(best), l[best], 1.0f});
        out.sorted = true;
        return;
    }
    if (s.top_k > 0 && static_cast<size_t>(s.top_k) < l.size()) {
        top_k_select(l, s.top_k, out);
    } else {
        c.resize(l.size());
        for (size_t i = 0; i < l.size(); ++i) c[i] = {static_cast<int32_t>(i), l[i], 0.0f};
        out.sorted = false;
    }
    top_p(s.top_p, out);
    min_p(s.min_p, out);
    for (TokenProb& t : c) t.logit /= s.temperature;
    softmax(c);
}

double uniform01(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

int32_t draw(const TokenDistribution& dist, std::mt19937_64& rng) {
    if (dist.tokens.empty()) fail("sampling from an empty distribution");
    if (dist.tokens.size() == 1) return dist.tokens[0].id;  // greedy: no randomness consumed
    double u = uniform01(rng);
    for (const TokenProb& t : dist.tokens) {
        u -= t.p;
        if (u < 0) return t.id;
    }
    return dist.tokens.back().id;  // u landed in the rounding slack of the last few ulps
}

Sampler::Sampler(const SamplerParams& params) : params_(params), rng_(params.seed) { validate(params); }

int32_t Sampler::sample(std::span<const float> logits, std::span<const int32_t> history) {
    apply_sampler_chain(params_, logits, history, scratch_);
    return draw(scratch_, rng_);
}

}  // namespace strata
