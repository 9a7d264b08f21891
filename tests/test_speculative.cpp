// Speculative decoding: the rejection rule reproduces the target's distribution (chi-square on a
// synthetic p, q and on whole generations from Markov models), greedy output equals the target
// alone token for token on the fixture pairs, and an incompatible draft is refused.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <sstream>

#include "backend/backend.h"
#include "decode/generate.h"
#include "decode/speculative.h"
#include "format/gguf.h"
#include "markov_model.h"
#include "reference.h"
#include "test_support.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "test_backend.h"

using namespace strata;

namespace {

TokenDistribution distribution(const std::vector<float>& p) {
    TokenDistribution d;
    for (size_t i = 0; i < p.size(); ++i) {
        if (p[i] > 0) d.tokens.push_back({static_cast<int32_t>(i), 0.0f, p[i]});
    }
    return d;
}

double chi_square(const std::vector<int>& counts, const std::vector<double>& p, int n) {
    double chi2 = 0;
    for (size_t i = 0; i < p.size(); ++i) {
        if (p[i] == 0) {
            CHECK(counts[i] == 0);  // a token the target never gives must never come out
            continue;
        }
        chi2 += (counts[i] - p[i] * n) * (counts[i] - p[i] * n) / (p[i] * n);
    }
    return chi2;
}

// Loads a fixture GGUF, or returns nothing (with a message) for an architecture strata lacks yet.
struct Loaded {
    std::unique_ptr<GgufFile> file;
    std::unique_ptr<Backend> backend;
    std::unique_ptr<Model> model;
};
Loaded load_or_skip(const std::string& name) {
    Loaded l;
    l.file = GgufFile::open(test::fixture("gguf/" + name).string());
    l.backend = strata::test::test_backend(1);  // d ≤ 128: a second thread costs more in hand-offs than it saves
    try {
        l.model = strata::test::load_test_model(*l.file, *l.backend);
    } catch (const Error& e) {
        if (std::string(e.what()).find("is not supported") == std::string::npos) throw;
        MESSAGE(std::string("skipping "), std::string(name), ": ", std::string(e.what()));
    }
    return l;
}

auto accept_all = [](int32_t) { return true; };

// The n tokens the target alone generates after `prompt`.
std::vector<int32_t> alone(Model& target, const std::vector<int32_t>& prompt, int n, const SamplerParams& params) {
    auto state = target.new_state(static_cast<int>(prompt.size()) + n);
    std::vector<float> logits;
    target.forward(*state, prompt, Logits::Last, logits);
    std::vector<int32_t> tokens = prompt;
    Sampler sampler(params);
    generate(target, *state, logits, tokens, n, sampler, accept_all);
    return {tokens.begin() + static_cast<ptrdiff_t>(prompt.size()), tokens.end()};
}

// The n tokens speculative decoding generates after `prompt`. With p_min > 0 the draft starts
// empty and catches up on the prompt itself.
std::vector<int32_t> speculative(Model& target, Model& draft, const std::vector<int32_t>& prompt, int n,
                                 SpeculativeParams sp, const SamplerParams& params, SpeculativeStats* stats = nullptr) {
    const int n_ctx = static_cast<int>(prompt.size()) + n;
    auto ts = target.new_state(n_ctx), ds = draft.new_state(n_ctx);
    std::vector<float> logits;
    const auto head = std::span(prompt).first(prompt.size() - 1);
    target.forward(*ts, head, Logits::Last, logits);
    if (sp.p_min == 0) draft.forward(*ds, head, Logits::Last, logits);
    std::vector<int32_t> tokens = prompt;
    Sampler sampler(params);
    sp.n_predict = n;
    const SpeculativeStats st = generate_speculative(target, *ts, draft, *ds, tokens, sp, sampler, accept_all);
    CHECK(st.generated == n);
    CHECK(ts->n_past() == static_cast<int>(tokens.size()) - 1);
    if (stats) *stats = st;
    return {tokens.begin() + static_cast<ptrdiff_t>(prompt.size()), tokens.end()};
}

SamplerParams greedy() {
    SamplerParams s;
    s.temperature = 0;
    return s;
}

}  // namespace

TEST_CASE("the rejection rule turns draws from q into draws from p (chi-square, p = 0.001 threshold)") {
    // Overlapping supports with both directions of p/q, a token only q gives (3) and one only p
    // gives (4).
    const std::vector<float> p = {0.35f, 0.1f, 0.25f, 0.0f, 0.3f};
    const std::vector<float> q = {0.2f, 0.4f, 0.25f, 0.15f, 0.0f};
    const TokenDistribution dp = distribution(p), dq = distribution(q);
    std::vector<float> dense(p.size(), 0.0f);
    std::mt19937_64 rng(99);
    const int n = 40000;
    std::vector<int> counts(p.size(), 0);
    int accepted = 0;
    for (int i = 0; i < n; ++i) {
        const int32_t x = draw(dq, rng);
        const AcceptResult r = accept_or_resample(dp, dq, x, dense, rng);
        ++counts[static_cast<size_t>(r.token)];
        accepted += r.accepted;
    }
    CHECK(std::all_of(dense.begin(), dense.end(), [](float x) { return x == 0; }));
    const double chi2 = chi_square(counts, {0.35, 0.1, 0.25, 0.0, 0.3}, n);
    // Acceptance probability = Σ min(p, q) = 0.2 + 0.1 + 0.25 = 0.55.
    MESSAGE(std::string("single position: chi-square "), chi2, " (df 3, threshold 16.27), acceptance ",
            double(accepted) / n, " (expected 0.55)");
    CHECK(chi2 < 16.27);
    CHECK(std::abs(double(accepted) / n - 0.55) < 0.01);  // σ ≈ 0.0025
}

TEST_CASE("speculative sampling: the first two tokens' joint distribution is the target's") {
    // Markov target and draft over 6 tokens; the chain (top-k 4, temperature 0.9) applies to both.
    // Three tokens are generated so that with n_draft 3 the first pass drafts two.
    // Expected P(t1, t2) = p(t1 | prompt) · p(t2 | t1) from the target's chain alone.
    const int v = 6;
    test::MarkovModel target = test::MarkovModel::random(v, 1.0f, 11), draft = test::MarkovModel::random(v, 1.0f, 12);
    SamplerParams params;
    params.top_k = 4;
    params.top_p = 1.0f;
    params.min_p = 0.0f;
    params.temperature = 0.9f;
    auto target_p = [&](int32_t prev) {
        TokenDistribution d;
        apply_sampler_chain(params, std::span(target.row(prev), size_t(v)), {}, d);
        std::vector<double> p(size_t(v), 0.0);
        for (const TokenProb& t : d.tokens) p[size_t(t.id)] = t.p;
        return p;
    };
    const int32_t prompt_last = 2;
    std::vector<double> expected(size_t(v * v), 0.0);
    const auto p1 = target_p(prompt_last);
    for (int a = 0; a < v; ++a) {
        const auto p2 = target_p(a);
        for (int b = 0; b < v; ++b) expected[size_t(a * v + b)] = p1[size_t(a)] * p2[size_t(b)];
    }

    for (int n_draft : {1, 3}) {
        CAPTURE(n_draft);
        const int n = 6000;
        std::vector<int> counts(size_t(v * v), 0);
        params.seed = 2024 + static_cast<uint64_t>(n_draft);
        Sampler sampler(params);  // one generator across all runs: independent draws
        SpeculativeStats total;
        for (int i = 0; i < n; ++i) {
            auto ts = target.new_state(16), ds = draft.new_state(16);
            std::vector<int32_t> tokens = {prompt_last};
            auto st = generate_speculative(target, *ts, draft, *ds, tokens, {.n_predict = 3, .n_draft = n_draft},
                                           sampler, [](int32_t) { return true; });
            REQUIRE(tokens.size() == 4);
            ++counts[size_t(tokens[1] * v + tokens[2])];
            total.drafted += st.drafted;
            total.accepted += st.accepted;
        }
        // 16 nonzero cells (4 × 4 after top-k): df 15, 0.999 quantile 37.70.
        const double chi2 = chi_square(counts, expected, n);
        MESSAGE(std::string("n_draft "), n_draft, ": chi-square ", chi2, " (df 15, threshold 37.70), acceptance ",
                total.acceptance_rate());
        CHECK(chi2 < 37.70);
        CHECK(total.accepted > 0);
        CHECK(total.accepted < total.drafted);
    }
}

TEST_CASE("greedy speculative decoding equals the target alone, token for token") {
    if (test::skip_without_shared("draft/target fixture pair")) return;
    Loaded draft = load_or_skip("llama-draft-f32.gguf");
    REQUIRE(draft.model);
    for (const char* name : {"llama-f32.gguf", "mamba-f32.gguf", "jamba-f32.gguf"}) {
        CAPTURE(std::string(name));
        Loaded target = load_or_skip(name);
        if (!target.model) continue;
        const test::Reference ref = test::load_reference(std::string(name).substr(0, std::string(name).find("-f32")));
        SpeculativeStats total;
        for (const auto& p : ref.prompts) {
            const std::vector<int32_t> expected = alone(*target.model, p.prompt_ids, 32, greedy());
            // n_draft 12 rolls back further than a recurrent state's default snapshot depth (8).
            for (SpeculativeParams sp :
                 {SpeculativeParams{.n_draft = 1}, SpeculativeParams{.n_draft = 4}, SpeculativeParams{.n_draft = 12},
                  SpeculativeParams{.n_draft = 8, .p_min = 0.6f}}) {
                CAPTURE(sp.n_draft);
                SpeculativeStats st;
                CHECK(speculative(*target.model, *draft.model, p.prompt_ids, 32, sp, greedy(), &st) == expected);
                total.drafted += st.drafted;
                total.accepted += st.accepted;
                total.target_passes += st.target_passes;
                total.generated += st.generated;
            }
        }
        MESSAGE(std::string(name), ": acceptance ", total.acceptance_rate(), ", ", total.tokens_per_pass(),
                " tokens per target pass");
    }
}

TEST_CASE("speculative decoding keeps the penalties' history: greedy with --repeat-penalty matches too") {
    if (test::skip_without_shared("draft/target fixture pair")) return;
    Loaded target = load_or_skip("llama-f32.gguf"), draft = load_or_skip("llama-draft-f32.gguf");
    const test::Reference ref = test::load_reference("llama");
    SamplerParams params = greedy();
    params.repeat_penalty = 1.3f;
    params.frequency_penalty = 0.2f;
    params.repeat_last_n = 16;
    const std::vector<int32_t> expected = alone(*target.model, ref.prompts[1].prompt_ids, 32, params);
    CHECK(speculative(*target.model, *draft.model, ref.prompts[1].prompt_ids, 32, {.n_draft = 4}, params) == expected);
    CHECK(expected != ref.prompts[1].greedy);  // the penalties did change the text
}

TEST_CASE("a draft with another vocabulary is refused") {
    if (test::skip_without_shared("vocab fixtures")) return;
    auto target = GgufFile::open(test::fixture("gguf/llama-f32.gguf").string());
    auto draft = GgufFile::open(test::fixture("gguf/llama-draft-f32.gguf").string());
    auto other = GgufFile::open(test::fixture("vocab/ggml-vocab-llama-spm.gguf").string());
    const Tokenizer t = Tokenizer::from_gguf(*target), d = Tokenizer::from_gguf(*draft),
                    o = Tokenizer::from_gguf(*other);
    CHECK_NOTHROW(check_draft_compatible(t, d));
    CHECK_THROWS_WITH_AS(check_draft_compatible(t, o),
                         doctest::Contains("the draft model's vocabulary has 32000 tokens, the target's 512"), Error);
}

TEST_CASE("strata run --model-draft at --temp 0 prints what the target alone prints") {
    if (test::skip_without_shared("draft/target fixture pair")) return;
    const std::string target = test::fixture("gguf/llama-f32.gguf").string();
    const std::string draft = test::fixture("gguf/llama-draft-f32.gguf").string();
    auto stdout_text = [](const std::string& args) {
        std::string out, kept;
        REQUIRE(test::run_strata(args, &out) == 0);
        std::istringstream in(out);
        for (std::string line; std::getline(in, line);) {
            if (line.rfind("strata:", 0) != 0) kept += line + "\n";
        }
        return kept;
    };
    const std::string common = " -p 'First Citizen:' -n 40 --temp 0 --ignore-eos";
    CHECK(stdout_text("run -m " + target + " --model-draft " + draft + common) ==
          stdout_text("run -m " + target + common));
}
