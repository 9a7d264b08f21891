#include "decode/speculative.h"

#include <algorithm>
#include <cmath>

#include "util/error.h"

namespace strata {

namespace {

// The draft's confidence in its next token: max softmax(logits), whatever the chain.
float top_probability(std::span<const float> logits) {
    const float max_logit = *std::max_element(logits.begin(), logits.end());
    double sum = 0;
    for (float l : logits) sum += std::exp(static_cast<double>(l) - max_logit);
    return static_cast<float>(1.0 / sum);
}

}  // namespace

AcceptResult accept_or_resample(const TokenDistribution& p, const TokenDistribution& q, int32_t x,
                                std::vector<float>& dense, std::mt19937_64& rng) {
    for (const TokenProb& t : q.tokens) dense[static_cast<size_t>(t.id)] = t.p;
    const float px = p.prob(x), qx = dense[static_cast<size_t>(x)];
    // Draw only when the ratio is strictly between 0 and 1, so one-hot (greedy) distributions
    // consume no randomness.
    const bool accepted = px >= qx || (px > 0 && uniform01(rng) < static_cast<double>(px) / qx);
    AcceptResult r{x, accepted};
    if (!accepted) {
        TokenDistribution residual;  // max(0, p − q) lives where p does
        double sum = 0;
        for (const TokenProb& t : p.tokens) {
            const float d = t.p - dense[static_cast<size_t>(t.id)];
            if (d > 0) {
                residual.tokens.push_back({t.id, t.logit, d});
                sum += d;
            }
        }
        // p ≤ q everywhere means p = q up to rounding, where x would have been accepted: draw from p.
        if (sum <= 0) {
            residual = p;
            sum = 1;
        }
        for (TokenProb& t : residual.tokens) t.p = static_cast<float>(t.p / sum);
        r.token = draw(residual, rng);
    }
    for (const TokenProb& t : q.tokens) dense[static_cast<size_t>(t.id)] = 0;
    return r;
}

void check_draft_compatible(const Tokenizer& target, const Tokenizer& draft) {
    if (target.n_vocab() != draft.n_vocab()) {
        fail("the draft model's vocabulary has ", draft.n_vocab(), " tokens, the target's ", target.n_vocab());
    }
    if (target.bos() != draft.bos() || target.eos() != draft.eos()) {
        fail("the draft model's BOS/EOS (", draft.bos(), "/", draft.eos(), ") differ from the target's (", target.bos(),
             "/", target.eos(), ")");
    }
    for (int32_t id = 0; id < target.n_vocab(); ++id) {
        if (target.token_text(id) != draft.token_text(id)) {
            fail("the draft model's token ", id, " is '", draft.token_text(id), "', the target's '",
                 target.token_text(id), "': the vocabularies differ");
        }
    }
}

SpeculativeStats generate_speculative(Model& target, SequenceState& target_state, Model& draft,
                                      SequenceState& draft_state, std::vector<int32_t>& tokens,
                                      const SpeculativeParams& params, Sampler& sampler,
                                      const TokenCallback& on_token) {
    const int64_t n_vocab = target.info().n_vocab;
    if (draft.info().n_vocab != n_vocab)
        fail("the draft model has ", draft.info().n_vocab, " logits per token, the target ", n_vocab);
    if (params.n_draft < 0) fail("--draft must be ≥ 0, got ", params.n_draft);
    if (tokens.empty()) fail("speculative decoding needs at least one token to start from");
    const int past_in = static_cast<int>(tokens.size()) - 1;
    if (target_state.n_past() != past_in || draft_state.n_past() > past_in) {
        fail("speculative decoding: the target state must hold all but the last of the ", tokens.size(),
             " tokens and the draft state no more (target holds ", target_state.n_past(), ", draft ",
             draft_state.n_past(), ")");
    }
    // A pass adds up to n_draft + 1 positions and may roll all but one back: recurrent layers need
    // snapshots that deep (attention layers roll back any distance for free).
    for (SequenceState* s : {&target_state, &draft_state}) {
        if (s->rollback_depth() < params.n_draft + 1) s->set_rollback_depth(params.n_draft + 1);
    }
    const SamplerParams& chain = sampler.params();
    std::mt19937_64& rng = sampler.rng();
    SpeculativeStats st;
    std::vector<TokenDistribution> q;
    TokenDistribution p;
    std::vector<float> draft_logits, target_logits, dense(static_cast<size_t>(n_vocab), 0.0f);
    std::vector<int32_t> batch, produced;

    while (st.generated < params.n_predict) {
        const int past = target_state.n_past();
        const int room = target_state.n_ctx() - past;  // for [last token, drafts…]
        if (room < 1) {
            st.stop = StopReason::context_full;
            break;
        }
        const int n_max = std::min({params.n_draft, static_cast<int>(params.n_predict - st.generated) - 1, room - 1});
        const size_t base = tokens.size();

        // The draft proposes d_0 … d_{n-1}, each from its chain distribution q_j given the drafts
        // before it (appended to `tokens` for the penalties' history, removed below), and stops
        // early where it is unsure of its next token.
        int n = 0;
        if (n_max > 0) {
            q.resize(static_cast<size_t>(n_max));
            const auto unseen = std::span(tokens).subspan(static_cast<size_t>(draft_state.n_past()));
            draft.forward(draft_state, unseen, Logits::Last, draft_logits);
            while (params.p_min <= 0 || top_probability(draft_logits) >= params.p_min) {
                TokenDistribution& qn = q[static_cast<size_t>(n)];
                apply_sampler_chain(chain, draft_logits, tokens, qn);
                const int32_t d = draw(qn, rng);
                tokens.push_back(d);
                if (++n == n_max) break;
                draft.forward(draft_state, std::span<const int32_t>(&d, 1), Logits::Last, draft_logits);
            }
        }

        // One target pass scores the last accepted token and every draft.
        batch.assign(tokens.begin() + static_cast<ptrdiff_t>(base) - 1, tokens.end());
        target.forward(target_state, batch, Logits::All, target_logits);
        ++st.target_passes;
        auto target_row = [&](int i) {
            return std::span<const float>(target_logits)
                .subspan(static_cast<size_t>(i * n_vocab), static_cast<size_t>(n_vocab));
        };
        int k = 0;
        int32_t next = -1;
        for (; k < n; ++k) {
            apply_sampler_chain(chain, target_row(k), std::span(tokens).first(base + static_cast<size_t>(k)), p);
            const AcceptResult r =
                accept_or_resample(p, q[static_cast<size_t>(k)], tokens[base + static_cast<size_t>(k)], dense, rng);
            if (!r.accepted) {
                next = r.token;
                break;
            }
        }
        if (k == n) {  // all drafts kept: the target's own next token comes free with the pass
            apply_sampler_chain(chain, target_row(n), tokens, p);
            next = draw(p, rng);
        }
        st.drafted += n;
        st.accepted += k;

        produced.assign(tokens.begin() + static_cast<ptrdiff_t>(base),
                        tokens.begin() + static_cast<ptrdiff_t>(base) + k);
        produced.push_back(next);
        tokens.resize(base);
        for (int32_t t : produced) {
            if (!on_token(t)) {
                st.stop = StopReason::callback;
                break;
            }
            tokens.push_back(t);
            ++st.generated;
        }

        // Roll back past the rejected drafts: both models keep [last, d_0 … d_{k-1}] (no more than
        // the tokens kept); the draft catches up on the rest at its next turn.
        const int keep = std::min(past + 1 + k, static_cast<int>(tokens.size()));
        if (keep < target_state.n_past()) target_state.truncate(keep);
        if (st.stop == StopReason::callback) break;
        if (keep < draft_state.n_past()) draft_state.truncate(keep);
    }
    return st;
}

}  // namespace strata
