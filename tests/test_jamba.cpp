// The Jamba hybrid (attention and Mamba-1 layers, dense and expert feed-forwards) against Hugging
// Face transformers and llama.cpp's perplexities, its sequence state (a KV cache and recurrent
// states side by side), and bad input.
#include <doctest/doctest.h>

#include "decode/perplexity.h"
#include "model_checks.h"

using namespace strata;

TEST_CASE("jamba logits match Hugging Face (F32 ≤ 1e-4, F16 ≤ 2e-3 relative to max |logit|)") {
    if (test::skip_without_shared("HF reference logits")) return;
    // F32: float32 on both sides, different summation orders. F16: weights rounded to 11-bit
    // mantissas perturb logits by ~1e-3 of their range (as for llama).
    const test::Reference ref = test::load_reference("jamba");
    for (auto [file, tol] : {std::pair{"jamba-f32.gguf", 1e-4}, std::pair{"jamba-f16.gguf", 2e-3}}) {
        CAPTURE(std::string(file));
        test::LoadedModel l = test::load_fixture(file);
        const double worst = test::worst_logit_error(*l.model, ref);
        MESSAGE(std::string(file), ": max |Δlogit| / max |logit| = ", worst);
        CHECK(worst <= tol);
    }
}

TEST_CASE("jamba greedy continuations equal Hugging Face's") {
    if (test::skip_without_shared("HF greedy continuations")) return;
    test::LoadedModel l = test::load_fixture("jamba-f32.gguf");
    for (const auto& p : test::load_reference("jamba").prompts) {
        CHECK(test::greedy(*l.model, p.prompt_ids, 32) == p.greedy);
    }
}

TEST_CASE("jamba perplexity: F32 within 0.05% of Hugging Face, quantized within 0.3% of llama.cpp") {
    if (test::skip_without_shared("perplexity fixtures")) return;
    for (const char* file : {"jamba-f32.gguf", "jamba-q4_k_m.gguf", "jamba-q6_k.gguf"}) {
        CAPTURE(std::string(file));
        test::check_perplexity(*test::load_fixture(file).model, file, "jamba");
    }
}

TEST_CASE("jamba sequence state: batch = steps, rollback via snapshots, clone, save/restore") {
    if (test::skip_without_shared("jamba-f32.gguf")) return;
    test::LoadedModel l = test::load_fixture("jamba-f32.gguf");
    // The same per-token arithmetic batched or not, up to float32 summation order.
    test::check_state_operations(*l.model, test::load_reference("jamba").prompts[0].ids, 1e-5);
    // Attention layers keep a row per position; the recurrent layers' share stays fixed.
    auto state = l.model->new_state(64);
    std::vector<float> logits;
    const std::vector<int32_t> one = {1};
    l.model->forward(*state, one, Logits::Last, logits);
    const size_t at_1 = state->used_bytes();
    l.model->forward(*state, one, Logits::Last, logits);
    // 2 attention layers × (K + V) × 2 KV heads × 32 dims × 4 bytes per position.
    CHECK(state->used_bytes() - at_1 == 2u * 2 * 2 * 32 * 4);
    // The usage report names both MoE layers.
    const std::string report = l.model->usage_report();
    CHECK(report.find("layer  1") != std::string::npos);
    CHECK(report.find("layer  3") != std::string::npos);
}

TEST_CASE("jamba bad input: per-layer head counts, missing mixer tensors") {
    if (test::skip_without_shared("jamba-f32.gguf")) return;
    test::LoadedModel l = test::load_fixture("jamba-f32.gguf");
    const auto kv_heads = [](std::vector<int32_t> counts) {
        return [counts](GgufWriter& w) { w.set_i32_array("jamba.attention.head_count_kv", counts); };
    };
    CHECK_THROWS_WITH_AS(test::load_rewritten(*l.file, "", kv_heads({0, 2, 0})),
                         doctest::Contains("'jamba.attention.head_count_kv' has 3 entries, expected one per layer (4)"),
                         Error);
    // Layer 2 declared an attention layer, but the file has its Mamba tensors.
    CHECK_THROWS_WITH_AS(test::load_rewritten(*l.file, "", kv_heads({0, 2, 2, 2})),
                         doctest::Contains("missing tensor 'blk.2.attn_q.weight'"), Error);
    CHECK_THROWS_WITH_AS(test::load_rewritten(*l.file, "blk.0.ssm_c_norm.weight", {}),
                         doctest::Contains("missing tensor 'blk.0.ssm_c_norm.weight' (expected shape [16])"), Error);
    CHECK_THROWS_WITH_AS(test::load_rewritten(*l.file, "blk.2.ssm_dt.bias", {}),
                         doctest::Contains("missing tensor 'blk.2.ssm_dt.bias'"), Error);
}
