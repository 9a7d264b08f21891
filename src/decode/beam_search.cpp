#include "decode/beam_search.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <numeric>

#include "util/error.h"

namespace strata {

namespace {

struct Beam {
    std::unique_ptr<SequenceState> state;
    std::vector<int32_t> tokens;
    double log_prob = 0;
    std::vector<float> logits;  // the next position's, after the last token
};

struct Candidate {
    int beam;
    int32_t token;
    double log_prob;  // the beam's plus log p(token)
};

// Higher log-probability first; ties by beam, then token, so the order is deterministic.
bool better(const Candidate& a, const Candidate& b) {
    if (a.log_prob != b.log_prob) return a.log_prob > b.log_prob;
    if (a.beam != b.beam) return a.beam < b.beam;
    return a.token < b.token;
}

// Appends the beam's `k` best continuations. Only those can make the global top k, so a large
// vocabulary costs a selection, not a sort.
void best_continuations(const Beam& beam, int beam_index, int k, std::vector<int32_t>& order,
                        std::vector<Candidate>& out) {
    const std::vector<float>& l = beam.logits;
    const float max_logit = *std::max_element(l.begin(), l.end());
    if (!std::isfinite(max_logit)) fail("beam search: the largest logit is ", max_logit);
    double sum = 0;
    for (float x : l) sum += std::exp(static_cast<double>(x) - max_logit);
    const double log_z = max_logit + std::log(sum);  // log Σ exp(logit): log_softmax = logit − log_z

    order.resize(l.size());
    std::iota(order.begin(), order.end(), 0);
    const size_t n = std::min(order.size(), static_cast<size_t>(k));
    std::nth_element(order.begin(), order.begin() + static_cast<ptrdiff_t>(n) - 1, order.end(),
                     [&](int32_t a, int32_t b) {
                         return l[static_cast<size_t>(a)] > l[static_cast<size_t>(b)] ||
                                (l[static_cast<size_t>(a)] == l[static_cast<size_t>(b)] && a < b);
                     });
    for (size_t i = 0; i < n; ++i) {
        out.push_back({beam_index, order[i], beam.log_prob + l[static_cast<size_t>(order[i])] - log_z});
    }
}

// The finished hypotheses: at most n_beams, best first.
class FinishedSet {
public:
    FinishedSet(int n_beams, float length_penalty) : n_beams_(static_cast<size_t>(n_beams)), alpha_(length_penalty) {}

    double score(double log_prob, size_t length) const {
        return log_prob / std::pow(static_cast<double>(length), alpha_);
    }
    bool full() const { return hyps_.size() == n_beams_; }
    double worst() const { return hyps_.back().score; }
    const BeamResult& best() const { return hyps_.front(); }

    void add(std::vector<int32_t> tokens, double log_prob) {
        BeamResult r{std::move(tokens), log_prob, 0};
        r.score = score(log_prob, r.tokens.size());
        if (full() && !(r.score > worst())) return;
        auto at = std::upper_bound(hyps_.begin(), hyps_.end(), r.score,
                                   [](double s, const BeamResult& h) { return s > h.score; });
        hyps_.insert(at, std::move(r));
        if (hyps_.size() > n_beams_) hyps_.pop_back();
    }

private:
    size_t n_beams_;
    double alpha_;
    std::vector<BeamResult> hyps_;
};

}  // namespace

BeamResult beam_search(Model& model, const SequenceState& prompt_state, std::span<const float> prompt_logits,
                       const BeamParams& params, const std::function<bool(int32_t)>& is_eos) {
    if (params.n_beams < 1) fail("--beams must be at least 1, got ", params.n_beams);
    if (params.n_predict <= 0) return {};
    const int n_beams = params.n_beams;
    // Hugging Face keeps 2·N candidates: with one EOS id at most N of them can finish, so N
    // always remain to continue.
    const int n_candidates = 2 * n_beams;

    std::vector<Beam> running;
    running.push_back({prompt_state.clone(), {}, 0, {prompt_logits.begin(), prompt_logits.end()}});
    FinishedSet finished(n_beams, params.length_penalty);
    std::vector<Candidate> candidates;
    std::vector<int32_t> order;
    std::vector<float> step_logits;

    for (int step = 0; step < params.n_predict; ++step) {
        candidates.clear();
        for (size_t b = 0; b < running.size(); ++b)
            best_continuations(running[b], static_cast<int>(b), n_candidates, order, candidates);
        std::sort(candidates.begin(), candidates.end(), better);
        if (candidates.size() > static_cast<size_t>(n_candidates)) candidates.resize(static_cast<size_t>(n_candidates));

        const size_t length = static_cast<size_t>(step) + 1;
        const bool last = step + 1 == params.n_predict;
        auto ends = [&](const Candidate& c) { return last || (is_eos && is_eos(c.token)); };
        auto extended = [&](const Candidate& c) {
            std::vector<int32_t> t = running[static_cast<size_t>(c.beam)].tokens;
            t.push_back(c.token);
            return t;
        };
        // Only the top N may finish; the rest are spares that keep N beams running.
        for (size_t i = 0; i < std::min(candidates.size(), static_cast<size_t>(n_beams)); ++i) {
            if (ends(candidates[i])) finished.add(extended(candidates[i]), candidates[i].log_prob);
        }
        if (last) break;

        std::vector<const Candidate*> chosen;
        std::vector<int> children(running.size(), 0);
        for (const Candidate& c : candidates) {
            if (chosen.size() == static_cast<size_t>(n_beams)) break;
            if (ends(c)) continue;
            chosen.push_back(&c);
            ++children[static_cast<size_t>(c.beam)];
        }
        // A parent's last child takes its state; the others fork a copy (no re-prefill).
        std::vector<Beam> next;
        for (const Candidate* c : chosen) {
            Beam& parent = running[static_cast<size_t>(c->beam)];
            Beam child;
            child.state =
                --children[static_cast<size_t>(c->beam)] > 0 ? parent.state->clone() : std::move(parent.state);
            child.tokens = extended(*c);
            child.log_prob = c->log_prob;
            next.push_back(std::move(child));
        }
        // All the new beams go through the model together: one pass per step, not one per beam.
        std::vector<SequenceState*> states;
        std::vector<int32_t> tokens;
        for (size_t i = 0; i < next.size(); ++i) {
            states.push_back(next[i].state.get());
            tokens.push_back(chosen[i]->token);
        }
        if (!next.empty()) model.forward_batch(states, tokens, step_logits);
        const size_t n_vocab = static_cast<size_t>(model.info().n_vocab);
        for (size_t i = 0; i < next.size(); ++i) {
            next[i].logits.assign(step_logits.begin() + static_cast<int64_t>(i * n_vocab),
                                  step_logits.begin() + static_cast<int64_t>((i + 1) * n_vocab));
        }
        running = std::move(next);
        if (running.empty()) break;  // every candidate ended (several end-of-generation ids)

        // early_stopping=False: stop once N hypotheses are finished and the best running beam,
        // scored at its current length, cannot beat the worst of them.
        if (finished.full() && !(finished.score(running.front().log_prob, length) > finished.worst())) break;
    }
    return finished.best();
}

}  // namespace strata
