// The Llama-family Transformer against Hugging Face transformers (float32 logits, greedy
// continuations, perplexity) and llama.cpp's own perplexities for its quantized files.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "backend/backend.h"
#include "decode/perplexity.h"
#include "format/gguf.h"
#include "model/model.h"
#include "model_checks.h"
#include "reference.h"
#include "test_support.h"
#include "util/error.h"
#include "test_backend.h"

using namespace strata;
namespace fs = std::filesystem;

namespace {

using test::greedy;
using test::relative_max_error;
using Loaded = test::LoadedModel;

Loaded load(const std::string& name) { return test::load_fixture(name); }

}  // namespace

TEST_CASE("llama logits match Hugging Face (F32 ≤ 1e-4, F16 ≤ 2e-3 relative to max |logit|)") {
    if (test::skip_without_shared("HF reference logits")) return;
    // F32: both sides compute in float32 with different summation orders; 1e-4 of the logit range
    // leaves ~100x headroom over observed float32 reordering error at d=128.
    // F16: weights rounded to 11-bit mantissas (and activations to f16 for the dot products, as
    // ggml does) perturb logits by ~1e-3 of their range.
    struct Case {
        const char* file;
        const char* ref;
        double tol;
    };
    for (Case c : {Case{"llama-f32.gguf", "llama", 1e-4}, Case{"llama-draft-f32.gguf", "llama-draft", 1e-4},
                   Case{"llama-f16.gguf", "llama", 2e-3}, Case{"llama-draft-f16.gguf", "llama-draft", 2e-3}}) {
        CAPTURE(std::string(c.file));
        Loaded l = load(c.file);
        const double worst = test::worst_logit_error(*l.model, test::load_reference(c.ref));
        MESSAGE(std::string(c.file), ": max |Δlogit| / max |logit| = ", worst);
        CHECK(worst <= c.tol);
    }
}

TEST_CASE("greedy continuations equal Hugging Face's for the F32 files") {
    if (test::skip_without_shared("HF greedy continuations")) return;
    for (auto [file, ref_name] : {std::pair{"llama-f32.gguf", "llama"}, std::pair{"llama-draft-f32.gguf", "llama-draft"}}) {
        CAPTURE(std::string(file));
        Loaded l = load(file);
        const test::Reference ref = test::load_reference(ref_name);
        for (const auto& p : ref.prompts) CHECK(greedy(*l.model, p.prompt_ids, 32) == p.greedy);
    }
}

TEST_CASE("perplexity: F32 within 0.05% of Hugging Face, quantized within 0.3% of llama.cpp") {
    if (test::skip_without_shared("perplexity fixtures")) return;
    for (const char* file : {"llama-f32.gguf", "llama-draft-f32.gguf", "llama-f16.gguf", "llama-q8_0.gguf",
                             "llama-q4_0.gguf", "llama-q4_k_m.gguf", "llama-q6_k.gguf", "llama-draft-f16.gguf",
                             "llama-draft-q4_k_m.gguf", "llama-draft-q6_k.gguf"}) {
        CAPTURE(std::string(file));
        const std::string name = file;
        test::check_perplexity(*load(file).model, name, name.substr(0, name.rfind('-')));
    }
}

TEST_CASE("sequence state: batched prefill equals token-by-token; truncate, clone, save/restore") {
    if (test::skip_without_shared("llama-f32.gguf")) return;
    Loaded l = load("llama-f32.gguf");
    const test::Reference ref = test::load_reference("llama");
    const auto& p = ref.prompts[0];
    const int64_t V = l.model->info().n_vocab;
    std::vector<float> batch, step, after;
    auto a = l.model->new_state(64);
    l.model->forward(*a, std::span(p.ids).first(12), Logits::All, batch);
    auto b = l.model->new_state(64);
    for (int i = 0; i < 12; ++i) {
        l.model->forward(*b, std::span(p.ids).subspan(static_cast<size_t>(i), 1), Logits::Last, step);
        CHECK(relative_max_error(step.data(), batch.data() + i * V, static_cast<size_t>(V)) < 1e-5);
    }
    // Roll back 4 tokens and redo them: same logits as the first pass.
    a->truncate(8);
    l.model->forward(*a, std::span(p.ids).subspan(8, 4), Logits::Last, after);
    CHECK(relative_max_error(after.data(), batch.data() + 11 * V, static_cast<size_t>(V)) < 1e-5);
    // A clone and a restored image continue exactly like the original.
    auto c = a->clone();
    auto saved = a->save();
    auto d = l.model->new_state(64);
    d->restore(saved);
    std::vector<float> la, lc, ld;
    int32_t next = p.ids[12];
    l.model->forward(*a, std::span<const int32_t>(&next, 1), Logits::Last, la);
    l.model->forward(*c, std::span<const int32_t>(&next, 1), Logits::Last, lc);
    l.model->forward(*d, std::span<const int32_t>(&next, 1), Logits::Last, ld);
    CHECK(la == lc);
    CHECK(la == ld);
    auto other = l.model->new_state(8);  // too small for the 12 saved tokens
    CHECK_THROWS_AS(other->restore(saved), Error);
}

TEST_CASE("bad input: full context, wrong shapes, missing tensors, unknown architecture") {
    if (test::skip_without_shared("llama-f32.gguf")) return;
    Loaded l = load("llama-f32.gguf");
    auto state = l.model->new_state(4);
    std::vector<int32_t> five = {1, 2, 3, 4, 5};
    std::vector<float> logits;
    CHECK_THROWS_WITH_AS(l.model->forward(*state, five, Logits::Last, logits), doctest::Contains("context is full"), Error);
    std::vector<int32_t> bad_token = {1, 9999};
    CHECK_THROWS_WITH_AS(l.model->forward(*state, bad_token, Logits::Last, logits), doctest::Contains("outside the vocabulary"), Error);

    // Rewrite the file with one tensor dropped, one reshaped, or another architecture.
    auto rewrite = [&](const std::string& drop, const std::string& reshape, const std::string& arch) {
        GgufWriter w;
        for (const auto& [key, value] : l.file->metadata()) w.set_value(key, value);
        if (!arch.empty()) w.set_string("general.architecture", arch);
        for (const auto& t : l.file->tensor_infos()) {
            if (t.name == drop) continue;
            std::vector<int64_t> ne(t.ne, t.ne + t.n_dims);
            if (t.name == reshape) std::swap(ne[0], ne[1]);
            w.add_tensor(t.name, t.type, ne, l.file->tensor(t.name).data);
        }
        fs::path path = test::temp_dir() / "rewritten.gguf";
        w.write(path.string());
        auto f = GgufFile::open(path.string());
        auto backend = strata::test::test_backend(1);
        strata::test::load_test_model(*f, *backend);
    };
    CHECK_THROWS_WITH_AS(rewrite("blk.1.ffn_up.weight", "", ""), doctest::Contains("missing tensor 'blk.1.ffn_up.weight' (expected shape [128, 352])"), Error);
    CHECK_THROWS_WITH_AS(rewrite("", "blk.2.ffn_down.weight", ""), doctest::Contains("tensor 'blk.2.ffn_down.weight' has shape [128, 352], expected [352, 128]"), Error);
    CHECK_THROWS_WITH_AS(rewrite("", "", "gpt-j"), doctest::Contains("architecture 'gpt-j' is not supported (supported: llama"), Error);
}

TEST_CASE("perplexity in batches smaller than the chunk equals whole-chunk perplexity") {
    if (test::skip_without_shared("llama-f32.gguf")) return;
    Loaded l = load("llama-f32.gguf");
    const std::vector<int32_t> tokens = test::load_eval_ids();
    PerplexityResult whole = perplexity(*l.model, tokens, 128, 2, 1);
    PerplexityResult batched = perplexity(*l.model, tokens, {.n_ctx = 128, .max_chunks = 2, .n_batch = 48, .bos = 1});
    CHECK(batched.scored == whole.scored);
    CHECK(batched.ppl == doctest::Approx(whole.ppl).epsilon(1e-6));
}

TEST_CASE("forward_batch: one token for each of several sequences equals separate forwards") {
    if (test::skip_without_shared("llama-f32.gguf, mixtral-f32.gguf, mamba-f32.gguf")) return;
    for (const char* file : {"llama-f32.gguf", "mixtral-f32.gguf", "mamba-f32.gguf"}) {
        CAPTURE(std::string(file));
        Loaded l = load(file);
        const test::Reference ref = test::load_reference("llama");  // every fixture shares the tokenizer
        const int64_t V = l.model->info().n_vocab;
        // Three sequences at different positions (prompts of different lengths), then one token each.
        std::vector<std::unique_ptr<SequenceState>> batched, single;
        std::vector<int32_t> next;
        for (size_t i = 0; i < 3; ++i) {
            std::span<const int32_t> prompt = std::span(ref.prompts[i].ids).first(5 + 3 * i);
            std::vector<float> ignored;
            batched.push_back(l.model->new_state(32));
            single.push_back(l.model->new_state(32));
            l.model->forward(*batched.back(), prompt, Logits::Last, ignored);
            l.model->forward(*single.back(), prompt, Logits::Last, ignored);
            next.push_back(ref.prompts[i].ids[5 + 3 * i]);
        }
        std::vector<SequenceState*> states = {batched[0].get(), batched[1].get(), batched[2].get()};
        std::vector<float> together, alone;
        l.model->forward_batch(states, next, together);
        REQUIRE(together.size() == static_cast<size_t>(3 * V));
        for (size_t i = 0; i < 3; ++i) {
            l.model->forward(*single[i], std::span<const int32_t>(&next[i], 1), Logits::Last, alone);
            // Same math on the same rows; only the matmul's row grouping differs (4-token SIMD
            // kernels give bit-identical per-token results), so the tolerance is float rounding.
            CHECK(relative_max_error(together.data() + static_cast<int64_t>(i) * V, alone.data(), static_cast<size_t>(V)) < 1e-5);
            CHECK(batched[i]->n_past() == single[i]->n_past());
        }
    }
}
