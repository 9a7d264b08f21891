// Beam search against Hugging Face: its `_beam_search` transcribed below over plain arrays and run
// on random Markov models (EOS, length penalties, early stopping), and its recorded
// `num_beams=4` continuations of the fixture models.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "backend/backend.h"
#include "decode/beam_search.h"
#include "format/gguf.h"
#include "markov_model.h"
#include "reference.h"
#include "test_support.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "test_backend.h"

using namespace strata;

namespace {

// transformers' GenerationMixin._beam_search for one sequence, step by step as its tensor code
// does it: N slots (all but the first start at −1e9), top 2N of the flattened N·V scores, the
// finished set merged by top-N, early_stopping=False's heuristic. Written independently of
// beam_search.cpp (no shared code) so the two check each other.
std::vector<int32_t> hf_beam_search(const test::MarkovModel& m, int32_t prompt_last, int n_beams, int max_new,
                                    double alpha, int32_t eos) {
    const int v = static_cast<int>(m.info().n_vocab), n = n_beams, k = 2 * n_beams;
    constexpr double kNeg = -1.0e9;
    std::vector<std::vector<int32_t>> running(static_cast<size_t>(n)), finished(static_cast<size_t>(n));
    std::vector<double> running_score(static_cast<size_t>(n), kNeg), finished_score(static_cast<size_t>(n), kNeg);
    std::vector<bool> is_finished(static_cast<size_t>(n), false);
    running_score[0] = 0;
    bool unsatisfied = true;
    for (int cur = 0; cur < max_new; ++cur) {
        std::vector<double> flat(static_cast<size_t>(n * v));
        for (int b = 0; b < n; ++b) {
            const float* row = m.row(running[size_t(b)].empty() ? prompt_last : running[size_t(b)].back());
            double z = 0;
            for (int t = 0; t < v; ++t) z += std::exp(static_cast<double>(row[t]));
            for (int t = 0; t < v; ++t) flat[size_t(b * v + t)] = running_score[size_t(b)] + row[t] - std::log(z);
        }
        std::vector<int> top(flat.size());
        std::iota(top.begin(), top.end(), 0);
        std::stable_sort(top.begin(), top.end(), [&](int a, int b) { return flat[size_t(a)] > flat[size_t(b)]; });
        top.resize(size_t(k));
        std::vector<std::vector<int32_t>> seq;
        std::vector<double> score;
        std::vector<bool> hits;
        for (int i : top) {
            seq.push_back(running[size_t(i / v)]);
            seq.back().push_back(i % v);
            score.push_back(flat[size_t(i)]);
            hits.push_back(i % v == eos || cur + 1 == max_new);
        }
        // Running beams for the next step: the best N that did not just end.
        std::vector<double> masked(score);
        for (int c = 0; c < k; ++c) masked[size_t(c)] += hits[size_t(c)] ? kNeg : 0;
        std::vector<int> order(size_t(k), 0);
        std::iota(order.begin(), order.end(), 0);
        std::stable_sort(order.begin(), order.end(),
                         [&](int a, int b) { return masked[size_t(a)] > masked[size_t(b)]; });
        for (int b = 0; b < n; ++b) {
            running[size_t(b)] = seq[size_t(order[size_t(b)])];
            running_score[size_t(b)] = masked[size_t(order[size_t(b)])];
        }
        // Finished: the top N that ended, at score / length^α, merged with the old set.
        std::vector<std::vector<int32_t>> merged_seq(finished);
        std::vector<double> merged_score(finished_score);
        std::vector<bool> merged_fin(is_finished);
        for (int c = 0; c < k; ++c) {
            const bool just = hits[size_t(c)] && c < n;
            double s = score[size_t(c)] / std::pow(cur + 1.0, alpha);
            s += unsatisfied ? 0 : kNeg;
            s += just ? 0 : kNeg;
            merged_seq.push_back(seq[size_t(c)]);
            merged_score.push_back(s);
            merged_fin.push_back(just);
        }
        std::vector<int> mo(merged_score.size());
        std::iota(mo.begin(), mo.end(), 0);
        std::stable_sort(mo.begin(), mo.end(),
                         [&](int a, int b) { return merged_score[size_t(a)] > merged_score[size_t(b)]; });
        for (int b = 0; b < n; ++b) {
            finished[size_t(b)] = merged_seq[size_t(mo[size_t(b)])];
            finished_score[size_t(b)] = merged_score[size_t(mo[size_t(b)])];
            is_finished[size_t(b)] = merged_fin[size_t(mo[size_t(b)])];
        }
        // _check_early_stop_heuristic with cur_len already advanced.
        const double best_running = running_score[0] / std::pow(cur + 1.0, alpha);
        bool improvement = false;
        const double min_finished = *std::min_element(finished_score.begin(), finished_score.end());
        for (int b = 0; b < n; ++b) improvement |= best_running > (is_finished[size_t(b)] ? min_finished : kNeg);
        unsatisfied = unsatisfied && improvement;
        if (!unsatisfied) break;
    }
    return finished[size_t(std::max_element(finished_score.begin(), finished_score.end()) - finished_score.begin())];
}

}  // namespace

TEST_CASE("beam search equals a transcription of Hugging Face's on random Markov models") {
    int compared = 0, ended_early = 0;
    for (unsigned seed = 1; seed <= 12; ++seed) {
        // Spread 2: peaked enough that EOS (token 0) often wins a slot, so beams end early.
        test::MarkovModel m = test::MarkovModel::random(9, 2.0f, seed);
        for (int n_beams : {1, 2, 4}) {
            for (double alpha : {1.0, 0.0, 2.0, -0.5}) {
                for (int32_t eos : {-1, 0}) {
                    for (int max_new : {1, 4, 9}) {
                        CAPTURE(seed);
                        CAPTURE(n_beams);
                        CAPTURE(alpha);
                        CAPTURE(eos);
                        CAPTURE(max_new);
                        auto state = m.new_state(32);
                        std::vector<float> logits;
                        const int32_t prompt[] = {3, 5};
                        m.forward(*state, prompt, Logits::Last, logits);
                        std::function<bool(int32_t)> is_eos;
                        if (eos >= 0) is_eos = [eos](int32_t t) { return t == eos; };
                        BeamResult r = beam_search(
                            m, *state, logits,
                            {.n_beams = n_beams, .n_predict = max_new, .length_penalty = float(alpha)}, is_eos);
                        const auto expected = hf_beam_search(m, 5, n_beams, max_new, alpha, eos);
                        CHECK(r.tokens == expected);
                        CHECK(state->n_past() == 2);  // the prompt state is not consumed
                        ++compared;
                        ended_early += static_cast<int>(expected.size()) < max_new;
                    }
                }
            }
        }
    }
    MESSAGE(compared, " searches compared, ", ended_early, " ended before the length limit");
    CHECK(ended_early > 20);
}

TEST_CASE("beam search: --beams 4 -n 16 equals Hugging Face num_beams=4 on the fixture models") {
    if (test::skip_without_shared("HF beam continuations")) return;
    for (const char* name : {"llama", "mixtral", "mamba", "jamba"}) {
        CAPTURE(std::string(name));
        auto file = GgufFile::open(test::fixture(std::string("gguf/") + name + "-f32.gguf").string());
        auto backend = strata::test::test_backend(1);  // d = 128: one thread beats hand-offs between two
        std::unique_ptr<Model> model;
        try {
            model = strata::test::load_test_model(*file, *backend);
        } catch (const Error& e) {
            if (std::string(e.what()).find("is not supported") == std::string::npos) throw;
            MESSAGE(std::string("skipping "), std::string(name), ": ", std::string(e.what()));
            continue;
        }
        const test::Reference ref = test::load_reference(name);
        int matched = 0;
        for (const auto& p : ref.prompts) {
            auto state = model->new_state(static_cast<int>(p.prompt_ids.size()) + 16);
            std::vector<float> logits;
            model->forward(*state, p.prompt_ids, Logits::Last, logits);
            BeamResult r =
                beam_search(*model, *state, logits, {.n_beams = 4, .n_predict = 16, .length_penalty = 1.0f}, {});
            CHECK(r.tokens == p.beam4);
            matched += r.tokens == p.beam4;
        }
        MESSAGE(std::string(name), ": ", matched, "/", ref.prompts.size(), " beam-4 continuations match");
    }
}

TEST_CASE("strata run --beams prints the best beam") {
    if (test::skip_without_shared("llama-f32.gguf")) return;
    const std::string path = test::fixture("gguf/llama-f32.gguf").string();
    auto file = GgufFile::open(path);
    const Tokenizer tokenizer = Tokenizer::from_gguf(*file);
    const test::Reference ref = test::load_reference("llama");
    const std::string prompt = "First Citizen:";
    REQUIRE(tokenizer.encode(prompt, true, true) == ref.prompts[0].prompt_ids);
    std::string out;
    REQUIRE(test::run_strata("run -m " + path + " -p '" + prompt + "' --beams 4 -n 16 --ignore-eos", &out) == 0);
    std::string expected = prompt;
    for (int32_t id : ref.prompts[0].beam4) expected += tokenizer.token_to_piece(id);
    CHECK(out.find(expected) != std::string::npos);
}
