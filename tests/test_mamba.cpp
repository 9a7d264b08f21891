// Mamba-1 and Mamba-2: the state-space kernels against their references, the models against
// Hugging Face transformers (float32 logits, greedy continuations, perplexity) and llama.cpp's
// perplexities for its quantized files, the sequence-state operations, and bad input.
#include <doctest/doctest.h>

#include <random>

#include "backend/backend.h"
#include "backend/cpu/cpu_ssm.h"
#include "decode/perplexity.h"
#include "model_checks.h"
#include "util/thread_pool.h"

using namespace strata;

namespace {

std::vector<float> random_vector(std::mt19937& rng, size_t n, float lo, float hi) {
    std::uniform_real_distribution<float> dist(lo, hi);
    std::vector<float> v(n);
    for (float& x : v) x = dist(rng);
    return v;
}

// Scans n tokens from a random initial state with the reference and with `fast`; returns the
// worst error of y and of the final state, each relative to its largest value.
template <class Fast>
std::pair<double, double> scan_difference(const SsmScanParams& p, int64_t n, Fast fast, uint32_t seed) {
    std::mt19937 rng(seed);
    const auto sz = [](int64_t v) { return static_cast<size_t>(v); };
    const int64_t width = p.n_head * p.head_dim, bc = p.n_group * p.d_state;
    const auto x = random_vector(rng, sz(n * width), -1, 1);
    const auto dt = random_vector(rng, sz(n * p.n_head), -4, 1);  // Δ = softplus(dt) in (0.02, 1.3)
    const auto A = random_vector(rng, sz(p.a_per_state ? p.n_head * p.d_state : p.n_head), -2, -0.05f);
    const auto B = random_vector(rng, sz(n * bc), -1, 1);
    const auto C = random_vector(rng, sz(n * bc), -1, 1);
    const auto D = random_vector(rng, sz(p.n_head), -1, 1);
    const auto state0 = random_vector(rng, sz(width * p.d_state), -1, 1);
    std::vector<float> s_ref = state0, s_fast = state0, y_ref(sz(n * width)), y_fast(y_ref.size());
    ssm_scan_reference(x.data(), dt.data(), A.data(), B.data(), C.data(), D.data(), n, p, s_ref.data(), y_ref.data());
    fast(x.data(), dt.data(), A.data(), B.data(), C.data(), D.data(), n, p, s_fast.data(), y_fast.data());
    return {test::relative_max_error(y_fast.data(), y_ref.data(), y_ref.size()),
            test::relative_max_error(s_fast.data(), s_ref.data(), s_ref.size())};
}

}  // namespace

TEST_CASE("SSM scan: chunked SSD form and threaded recurrence equal the reference recurrence") {
    ThreadPool pool(2);
    // float32 sums in another order (C·B before the state, decays as differences of cumulative
    // sums): observed ~1e-6 of the output range; 1e-4 leaves headroom without hiding a wrong term.
    const double tol = 1e-4;
    SsmScanParams mamba2;
    mamba2.n_head = 4;
    mamba2.head_dim = 8;
    mamba2.d_state = 16;
    mamba2.n_group = 2;
    const auto chunked = [&](auto... args) { ssd_chunked_scan(pool, args...); };
    const auto backend_scan = [&](auto... args) { cpu_ssm_scan(pool, args...); };
    for (int64_t n : {1, 9, 64, 150}) {  // one token, partial chunk, exact chunk, 2 chunks + tail
        CAPTURE(n);
        auto [dy, ds] = scan_difference(mamba2, n, chunked, 7);
        CHECK(dy < tol);
        CHECK(ds < tol);
        auto [ty, ts] = scan_difference(mamba2, n, backend_scan, 8);
        CHECK(ty < tol);
        CHECK(ts < tol);
    }
    SsmScanParams mamba1;
    mamba1.n_head = 96;  // enough heads to be split across both threads
    mamba1.d_state = 16;
    mamba1.a_per_state = true;
    auto [y1, s1] = scan_difference(mamba1, 37, backend_scan, 9);
    CHECK(y1 == 0);  // the same loop per head, only split across threads
    CHECK(s1 == 0);
}

TEST_CASE("SSM conv: causal depthwise conv with state, split batches equal one batch") {
    ThreadPool pool(2);
    std::mt19937 rng(3);
    const int d_conv = 4;
    const int64_t channels = 5, n = 7;
    const auto x = random_vector(rng, static_cast<size_t>(n * channels), -1, 1);
    const auto w = random_vector(rng, static_cast<size_t>(channels * d_conv), -1, 1);
    const auto bias = random_vector(rng, static_cast<size_t>(channels), -1, 1);
    const auto state0 = random_vector(rng, static_cast<size_t>((d_conv - 1) * channels), -1, 1);
    // out[t][c] = silu(bias[c] + Σ_k w[c][k]·x'[t+k][c]) written out directly.
    std::vector<float> expected(x.size());
    for (int64_t t = 0; t < n; ++t) {
        for (int64_t c = 0; c < channels; ++c) {
            double acc = bias[c];
            for (int k = 0; k < d_conv; ++k) {
                const int64_t r = t + k - (d_conv - 1);
                acc += w[c * d_conv + k] * (r < 0 ? state0[(r + d_conv - 1) * channels + c] : x[r * channels + c]);
            }
            expected[t * channels + c] = static_cast<float>(acc / (1 + std::exp(-acc)));
        }
    }
    std::vector<float> state = state0, out(x.size());
    cpu_ssm_conv(pool, x.data(), n, channels, w.data(), d_conv, bias.data(), state.data(), out.data());
    CHECK(test::relative_max_error(out.data(), expected.data(), out.size()) < 1e-6);
    // Splits shorter than the state (1 and 2 tokens) exercise the state shifting within itself.
    std::vector<float> split_state = state0, split_out(x.size());
    int64_t t0 = 0;
    for (int64_t len : {1, 2, 4}) {
        cpu_ssm_conv(pool, x.data() + t0 * channels, len, channels, w.data(), d_conv, bias.data(), split_state.data(),
                     split_out.data() + t0 * channels);
        t0 += len;
    }
    CHECK(split_out == out);
    CHECK(split_state == state);
    CHECK(std::equal(state.begin(), state.end(), x.end() - static_cast<int64_t>(state.size())));
}

TEST_CASE("gated RMSNorm normalizes each group of y ⊙ silu(z) separately") {
    ThreadPool pool(2);
    std::mt19937 rng(4);
    const int64_t n = 3, dim = 8, groups = 2, g = dim / groups;
    const auto y = random_vector(rng, n * dim, -2, 2), z = random_vector(rng, n * dim, -2, 2);
    const auto w = random_vector(rng, dim, 0.5f, 1.5f);
    std::vector<float> out(y.size());
    cpu_rmsnorm_gated(pool, y.data(), z.data(), w.data(), n, dim, groups, 1e-5f, out.data());
    for (int64_t r = 0; r < n * groups; ++r) {
        double v[4], ss = 0;
        for (int64_t i = 0; i < g; ++i) {
            const double zi = z[r * g + i];
            v[i] = y[r * g + i] * zi / (1 + std::exp(-zi));
            ss += v[i] * v[i];
        }
        for (int64_t i = 0; i < g; ++i) {
            CHECK(out[r * g + i] ==
                  doctest::Approx(v[i] / std::sqrt(ss / g + 1e-5) * w[(r % groups) * g + i]).epsilon(1e-5));
        }
    }
}

TEST_CASE("mamba and mamba2 logits match Hugging Face (F32 ≤ 1e-4 relative to max |logit|)") {
    if (test::skip_without_shared("HF reference logits")) return;
    // Both sides compute in float32; the remaining differences are summation orders (and, for
    // Mamba-2, HF's chunked scan against ours), ~1e-6 of the logit range.
    for (const char* name : {"mamba", "mamba2"}) {
        CAPTURE(std::string(name));
        test::LoadedModel l = test::load_fixture(std::string(name) + "-f32.gguf");
        const double worst = test::worst_logit_error(*l.model, test::load_reference(name));
        MESSAGE(std::string(name), "-f32.gguf: max |Δlogit| / max |logit| = ", worst);
        CHECK(worst <= 1e-4);
    }
}

TEST_CASE("mamba and mamba2 greedy continuations equal Hugging Face's") {
    if (test::skip_without_shared("HF greedy continuations")) return;
    for (const char* name : {"mamba", "mamba2"}) {
        CAPTURE(std::string(name));
        test::LoadedModel l = test::load_fixture(std::string(name) + "-f32.gguf");
        for (const auto& p : test::load_reference(name).prompts) {
            CHECK(test::greedy(*l.model, p.prompt_ids, 32) == p.greedy);
        }
    }
}

TEST_CASE("mamba perplexity: F32 within 0.05% of Hugging Face, quantized within 0.3% of llama.cpp") {
    if (test::skip_without_shared("perplexity fixtures")) return;
    for (const char* file : {"mamba-f32.gguf", "mamba-q4_k_m.gguf", "mamba-q6_k.gguf"}) {
        CAPTURE(std::string(file));
        test::check_perplexity(*test::load_fixture(file).model, file, "mamba");
    }
}

TEST_CASE("mamba2 perplexity: F32 within 0.05% of Hugging Face, quantized files near it") {
    if (test::skip_without_shared("perplexity fixtures")) return;
    // llama.cpp cannot load these files, so there are no llama.cpp figures: the quantized files are
    // held to their distance from the F32 result, with the margins llama.cpp's own files show
    // on the other fixtures (Q4_0 is the coarsest: +6% on llama, +6% on mixtral).
    const std::vector<int32_t> tokens = test::load_eval_ids();
    const double hf = test::load_reference("mamba2").ppl;
    test::LoadedModel f32 = test::load_fixture("mamba2-f32.gguf");
    const double base = perplexity(*f32.model, tokens, 128, 16, 1).ppl;
    MESSAGE("mamba2-f32.gguf: PPL ", base, " (HF ", hf, ")");
    CHECK(std::fabs(base / hf - 1) <= 5e-4);
    struct Case {
        const char* file;
        double tol;
    };
    for (Case c : {Case{"mamba2-q8_0.gguf", 5e-3}, Case{"mamba2-q6_k.gguf", 1e-2}, Case{"mamba2-q4_k_m.gguf", 3e-2},
                   Case{"mamba2-q4_0.gguf", 8e-2}}) {
        CAPTURE(std::string(c.file));
        test::LoadedModel l = test::load_fixture(c.file);
        const double ppl = perplexity(*l.model, tokens, 128, 16, 1).ppl;
        MESSAGE(std::string(c.file), ": PPL ", ppl, " (", 100 * (ppl / base - 1), "% from F32)");
        CHECK(std::fabs(ppl / base - 1) <= c.tol);
    }
}

TEST_CASE("mamba and mamba2 sequence state: batch = steps, rollback via snapshots, clone, save/restore") {
    if (test::skip_without_shared("mamba fixtures")) return;
    const std::vector<int32_t> ids = test::load_reference("mamba").prompts[0].ids;
    // Mamba-1 runs the same per-token arithmetic batched or not (1e-5: float32 noise only);
    // Mamba-2's 12-token batch takes the chunked scan, stepping the recurrence (see the kernel test).
    test::LoadedModel m1 = test::load_fixture("mamba-f32.gguf");
    test::check_state_operations(*m1.model, ids, 1e-5);
    test::LoadedModel m2 = test::load_fixture("mamba2-f32.gguf");
    test::check_state_operations(*m2.model, ids, 1e-4);
}

TEST_CASE("mamba state size does not grow with the position") {
    if (test::skip_without_shared("mamba-f32.gguf")) return;
    test::LoadedModel l = test::load_fixture("mamba-f32.gguf");
    auto state = l.model->new_state(1024);
    std::vector<int32_t> tokens(990);
    for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<int32_t>(3 + i % 500);
    std::vector<float> logits;
    l.model->forward(*state, std::span(tokens).first(10), Logits::Last, logits);
    const size_t at_10 = state->used_bytes();
    l.model->forward(*state, tokens, Logits::Last, logits);
    CHECK(state->n_past() == 1000);
    CHECK(state->used_bytes() == at_10);
    // 4 layers × (current + 8 snapshots) × (3 conv rows + 16 states) × 256 channels × 4 bytes.
    CHECK(at_10 == 4u * (1 + SequenceState::kDefaultRollbackDepth) * (3 + 16) * 256 * 4);
}

TEST_CASE("mamba bad input: missing SSM tensors and inconsistent dimensions") {
    if (test::skip_without_shared("mamba fixtures")) return;
    test::LoadedModel m1 = test::load_fixture("mamba-f32.gguf");
    CHECK_THROWS_WITH_AS(test::load_rewritten(*m1.file, "blk.1.ssm_conv1d.weight", {}),
                         doctest::Contains("missing tensor 'blk.1.ssm_conv1d.weight' (expected shape [4, 256])"),
                         Error);
    CHECK_THROWS_WITH_AS(test::load_rewritten(*m1.file, "blk.2.ssm_a", {}),
                         doctest::Contains("missing tensor 'blk.2.ssm_a' (expected shape [16, 256])"), Error);
    CHECK_THROWS_WITH_AS(
        test::load_rewritten(*m1.file, "", [](GgufWriter& w) { w.set_u32("mamba.ssm.inner_size", 300); }),
        doctest::Contains(
            "tensor 'blk.0.ssm_in.weight' has shape [128, 512], expected [128, 600] (from mamba.ssm.inner_size = 300"),
        Error);
    CHECK_THROWS_WITH_AS(
        test::load_rewritten(*m1.file, "", [](GgufWriter& w) { w.set_u32("mamba.ssm.state_size", 0); }),
        doctest::Contains("mamba.ssm.state_size is 0, expected 1 to 65536"), Error);

    test::LoadedModel m2 = test::load_fixture("mamba2-f32.gguf");
    // Without ssm.time_step_rank the head count comes from ssm_dt.bias.
    CHECK_NOTHROW(test::load_rewritten(*m2.file, "", [](GgufWriter& w) { w.remove("mamba2.ssm.time_step_rank"); }));
    CHECK_THROWS_WITH_AS(
        test::load_rewritten(*m2.file, "", [](GgufWriter& w) { w.set_u32("mamba2.ssm.time_step_rank", 7); }),
        doctest::Contains("inner_size 256 must be a multiple of the head count 7"), Error);
    CHECK_THROWS_WITH_AS(
        test::load_rewritten(*m2.file, "", [](GgufWriter& w) { w.set_u32("mamba2.ssm.time_step_rank", 16); }),
        doctest::Contains("tensor 'blk.0.ssm_in.weight' has shape [128, 584], expected [128, 592]"), Error);
    CHECK_THROWS_WITH_AS(test::load_rewritten(*m2.file, "blk.3.ssm_norm.weight", {}),
                         doctest::Contains("missing tensor 'blk.3.ssm_norm.weight'"), Error);
}
