// strata quantize: llama-quantize's per-tensor type choices and bytes on every fixture file, its
// rules on shapes the fixtures do not reach, perplexity of the results, threads and failures.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "backend/backend.h"
#include "convert/quantize_model.h"
#include "decode/perplexity.h"
#include "format/gguf.h"
#include "model/model.h"
#include "reference.h"
#include "test_support.h"
#include "util/error.h"
#include "test_backend.h"

using namespace strata;
namespace fs = std::filesystem;

namespace {

const QuantMix& mix(const char* name) {
    const QuantMix* m = find_quant_mix(name);
    REQUIRE(m != nullptr);
    return *m;
}

fs::path quantize(const std::string& model, const char* type, int threads = 2) {
    const fs::path out = test::temp_dir() / ("quantize-" + model + "-" + type + ".gguf");
    std::shared_ptr<const GgufFile> in = GgufFile::open(test::fixture("gguf/" + model + "-f32.gguf").string());
    write_model(plan_from_gguf(in), mix(type), out.string(), threads);
    return out;
}

std::string lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

// Synthetic tensors for the rules: names and shapes only.
TensorSource tensor(const std::string& name, std::vector<int64_t> ne) {
    TensorSource t;
    t.name = name;
    t.ne = std::move(ne);
    return t;
}

std::vector<TensorSource> llama_like(int n_layer, int64_t d, int64_t ff, bool tied = false) {
    std::vector<TensorSource> ts = {tensor("token_embd.weight", {d, 32000}), tensor("output_norm.weight", {d})};
    if (!tied) ts.push_back(tensor("output.weight", {d, 32000}));
    for (int i = 0; i < n_layer; ++i) {
        const std::string p = "blk." + std::to_string(i) + ".";
        for (const char* w : {"attn_q", "attn_k", "attn_v", "attn_output"})
            ts.push_back(tensor(p + w + ".weight", {d, d}));
        ts.push_back(tensor(p + "attn_norm.weight", {d}));
        ts.push_back(tensor(p + "ffn_gate.weight", {d, ff}));
        ts.push_back(tensor(p + "ffn_up.weight", {d, ff}));
        ts.push_back(tensor(p + "ffn_down.weight", {ff, d}));
    }
    return ts;
}

GgmlType type_of(const std::vector<TensorSource>& ts, const std::vector<GgmlType>& types, const std::string& name) {
    for (size_t i = 0; i < ts.size(); ++i) {
        if (ts[i].name == name) return types[i];
    }
    FAIL("no tensor ", name);
    return GgmlType::F32;
}

}  // namespace

TEST_CASE("quantize: every llama.cpp fixture mix is reproduced, types and bytes") {
    if (test::skip_without_shared("llama.cpp fixtures")) return;
    // Without an importance matrix llama-quantize uses ggml's reference quantizers, which are
    // strata's, so every byte can agree (metadata order and tensor order included).
    const std::pair<const char*, std::vector<const char*>> cases[] = {
        {"llama", {"Q8_0", "Q4_0", "Q4_K_M", "Q6_K", "F16"}},  {"llama-draft", {"Q4_K_M", "Q6_K", "F16"}},
        {"mixtral", {"Q8_0", "Q4_0", "Q4_K_M", "Q6_K", "F16"}},       {"mamba", {"Q4_K_M", "Q6_K", "F16"}},
        {"mamba2", {"Q8_0", "Q4_0", "Q4_K_M", "Q6_K", "F16"}}, {"jamba", {"Q4_K_M", "Q6_K", "F16"}},
    };
    for (const auto& [model, types] : cases) {
        for (const char* type : types) {
            CAPTURE(std::string(model) + " " + type);
            const fs::path ours = quantize(model, type);
            const fs::path theirs = test::fixture("gguf/" + std::string(model) + "-" + lower(type) + ".gguf");
            auto a = GgufFile::open(ours.string());
            auto b = GgufFile::open(theirs.string());
            REQUIRE(a->tensor_infos().size() == b->tensor_infos().size());
            for (size_t i = 0; i < a->tensor_infos().size(); ++i) {
                const GgufTensorInfo& x = a->tensor_infos()[i];
                const GgufTensorInfo& y = b->tensor_infos()[i];
                CAPTURE(x.name);
                CHECK(x.name == y.name);
                CHECK(type_name(x.type) == std::string(type_name(y.type)));
                CHECK((x.nbytes == y.nbytes &&
                       std::memcmp(a->tensor(x.name).data, b->tensor(y.name).data, x.nbytes) == 0));
            }
            CHECK(test::read_bytes(ours) == test::read_bytes(theirs));
        }
    }
}

TEST_CASE("quantize: perplexity of strata's llama files within 0.3% of llama.cpp's") {
    if (test::skip_without_shared("perplexity fixtures")) return;
    const std::vector<int32_t> tokens = test::load_eval_ids();
    for (const char* type : {"Q8_0", "Q4_0", "Q4_K_M", "Q6_K"}) {
        CAPTURE(std::string(type));
        auto file = GgufFile::open(quantize("llama", type).string());
        auto backend = strata::test::test_backend(2);
        auto model = strata::test::load_test_model(*file, *backend);
        const PerplexityResult r = perplexity(*model, tokens, 128, 16, 1);
        const double llamacpp = test::llamacpp_ppl("llama-" + lower(type) + ".gguf");
        MESSAGE("llama ", std::string(type), ": PPL ", r.ppl, " (llama.cpp ", llamacpp, "), ", file->file_size(),
                " bytes");
        REQUIRE(llamacpp > 0);
        CHECK(std::fabs(r.ppl / llamacpp - 1) <= 3e-3);
    }
}

TEST_CASE("quantize: llama.cpp's mix rules on shapes the fixtures do not reach") {
    using T = GgmlType;
    // A 32-layer Llama-2-7B-like model (rows of 4096 fit every block size).
    const auto ts = llama_like(32, 4096, 11008);
    const ModelFacts facts{"llama", 32, 32, 32, 0};
    auto types = choose_tensor_types(facts, ts, mix("Q4_K_M"));
    CHECK(type_of(ts, types, "output.weight") == T::Q6_K);
    CHECK(type_of(ts, types, "token_embd.weight") == T::Q4_K);
    CHECK(type_of(ts, types, "output_norm.weight") == T::F32);
    CHECK(type_of(ts, types, "blk.0.attn_q.weight") == T::Q4_K);
    // use_more_bits(i, 32): the first and last 4 layers, and every third from layer 6.
    for (int i : {0, 3, 6, 9, 27, 28, 31})
        CHECK(type_of(ts, types, "blk." + std::to_string(i) + ".attn_v.weight") == T::Q6_K);
    for (int i : {4, 5, 7, 26}) CHECK(type_of(ts, types, "blk." + std::to_string(i) + ".attn_v.weight") == T::Q4_K);
    CHECK(type_of(ts, types, "blk.30.ffn_down.weight") == T::Q6_K);
    CHECK(type_of(ts, types, "blk.10.ffn_down.weight") == T::Q4_K);
    // 11008 = 43·256: ffn_down rows fit Q4_K; a 4104-wide row would not.

    types = choose_tensor_types(facts, ts, mix("Q3_K_M"));
    CHECK(type_of(ts, types, "blk.0.attn_v.weight") == T::Q5_K);
    CHECK(type_of(ts, types, "blk.1.attn_v.weight") == T::Q5_K);
    CHECK(type_of(ts, types, "blk.2.attn_v.weight") == T::Q4_K);
    CHECK(type_of(ts, types, "blk.1.ffn_down.weight") == T::Q5_K);
    CHECK(type_of(ts, types, "blk.2.ffn_down.weight") == T::Q4_K);
    CHECK(type_of(ts, types, "blk.5.attn_output.weight") == T::Q4_K);
    CHECK(type_of(ts, types, "blk.5.ffn_up.weight") == T::Q3_K);

    types = choose_tensor_types(facts, ts, mix("Q3_K_L"));
    CHECK(type_of(ts, types, "blk.9.attn_v.weight") == T::Q5_K);
    CHECK(type_of(ts, types, "blk.9.ffn_down.weight") == T::Q5_K);
    CHECK(type_of(ts, types, "blk.9.attn_output.weight") == T::Q5_K);

    types = choose_tensor_types(facts, ts, mix("Q2_K"));
    CHECK(type_of(ts, types, "blk.9.attn_v.weight") == T::Q3_K);  // no GQA
    CHECK(type_of(ts, types, "blk.9.ffn_down.weight") == T::Q3_K);
    CHECK(type_of(ts, types, "blk.9.attn_output.weight") == T::Q3_K);
    CHECK(type_of(ts, types, "blk.9.ffn_gate.weight") == T::Q2_K);
    types = choose_tensor_types({"llama", 32, 32, 8, 0}, ts, mix("Q2_K"));
    CHECK(type_of(ts, types, "blk.9.attn_v.weight") == T::Q4_K);  // GQA 4

    types = choose_tensor_types(facts, ts, mix("Q4_K_S"));
    CHECK(type_of(ts, types, "blk.3.attn_v.weight") == T::Q5_K);
    CHECK(type_of(ts, types, "blk.4.attn_v.weight") == T::Q4_K);
    CHECK(type_of(ts, types, "blk.3.ffn_down.weight") == T::Q5_K);
    CHECK(type_of(ts, types, "blk.4.ffn_down.weight") == T::Q4_K);

    types = choose_tensor_types(facts, ts, mix("Q5_K_M"));
    CHECK(type_of(ts, types, "blk.0.attn_v.weight") == T::Q6_K);
    CHECK(type_of(ts, types, "blk.5.attn_v.weight") == T::Q5_K);
    types = choose_tensor_types(facts, ts, mix("Q5_K_S"));
    CHECK(type_of(ts, types, "blk.0.attn_v.weight") == T::Q5_K);

    // Eight experts (Mixtral-8x7B): V and K to Q8_0, attention output to Q5_K.
    types = choose_tensor_types({"llama", 32, 32, 8, 8}, ts, mix("Q4_K_M"));
    CHECK(type_of(ts, types, "blk.5.attn_v.weight") == T::Q8_0);
    CHECK(type_of(ts, types, "blk.5.attn_k.weight") == T::Q8_0);
    CHECK(type_of(ts, types, "blk.5.attn_output.weight") == T::Q5_K);

    // Tied embeddings are the output too; legacy mixes keep the output at Q6_K (Q8_0 for Q8_0).
    const auto tied = llama_like(2, 4096, 11008, true);
    types = choose_tensor_types({"llama", 2, 32, 32, 0}, tied, mix("Q4_0"));
    CHECK(type_of(tied, types, "token_embd.weight") == T::Q6_K);
    CHECK(type_of(tied, types, "blk.1.attn_v.weight") == T::Q4_0);
    types = choose_tensor_types({"llama", 2, 32, 32, 0}, tied, mix("Q8_0"));
    CHECK(type_of(tied, types, "token_embd.weight") == T::Q8_0);
    types = choose_tensor_types({"llama", 2, 32, 32, 0}, tied, mix("BF16"));
    CHECK(type_of(tied, types, "token_embd.weight") == T::BF16);
    CHECK(type_of(tied, types, "output_norm.weight") == T::F32);

    // Fallbacks for rows the block does not divide; routers, convolutions and vectors stay.
    const std::vector<TensorSource> odd = {tensor("blk.0.ffn_up.weight", {4128, 8}),
                                           tensor("blk.0.ffn_gate.weight", {176, 8}),
                                           tensor("blk.0.ssm_conv1d.weight", {4, 512}),
                                           tensor("blk.0.ffn_gate_inp.weight", {4096, 8}),
                                           tensor("blk.0.ssm_a", {16, 512}),
                                           tensor("blk.0.ssm_norm.weight", {512, 1})};
    std::vector<std::string> notes;
    types = choose_tensor_types({"mamba", 1, 0, 0, 0}, odd, mix("Q3_K_S"), &notes);
    CHECK(types == std::vector<GgmlType>{T::Q4_0, T::F16, T::F32, T::F32, T::F32, T::F32});
    REQUIRE(notes.size() == 2);
    CHECK(notes[0] == "blk.0.ffn_up.weight: row length 4128 is not a multiple of 256 (q3_K), using q4_0");
    types = choose_tensor_types({"mamba", 1, 0, 0, 0}, odd, mix("Q5_K_S"));
    CHECK(types[0] == T::Q5_1);
    types = choose_tensor_types({"mamba", 1, 0, 0, 0}, odd, mix("Q4_1"));
    CHECK(types[1] == T::F16);  // llama.cpp stops here; strata keeps the tensor in F16

    CHECK(find_quant_mix("q4_k_m") == &mix("Q4_K_M"));
    CHECK(find_quant_mix("Q4_K") == nullptr);
    CHECK(mix("Q4_K_M").file_type == 15);
    CHECK(mix("BF16").file_type == 32);
}

TEST_CASE("quantize: threads change no byte; a failure leaves no file; the CLI") {
    if (test::skip_without_shared("llama.cpp fixtures")) return;
    CHECK(test::read_bytes(quantize("mixtral", "Q4_K_M", 1)) == test::read_bytes(quantize("mixtral", "Q4_K_M", 3)));

    ModelPlan plan;
    plan.writer.set_string("general.architecture", "llama");
    TensorSource ok = tensor("a.weight", {32, 2}), broken = tensor("b.weight", {32, 2});
    ok.load = [](std::vector<float>& v) { v.assign(64, 1.0f); };
    broken.load = [](std::vector<float>&) { throw Error("b.weight: read failed"); };
    plan.tensors = {ok, broken};
    const fs::path out = test::temp_dir() / "broken.gguf";
    CHECK_THROWS_WITH_AS(write_model(plan, mix("Q8_0"), out.string(), 2), "b.weight: read failed", Error);
    CHECK(!fs::exists(out));
    CHECK(!test::temp_file_left(out));

    const std::string in = test::fixture("gguf/llama-draft-f32.gguf").string();
    std::string output;
    CHECK(test::run_strata("quantize " + in + " " + out.string() + " q4_k_m -t 2", &output) == 0);
    CHECK(output.find("-> 0.12 MiB (8.29 bits per weight)") != std::string::npos);
    CHECK(output.find("fallback: blk.0.ffn_down.weight: row length 176 is not a multiple of 256 (q4_K), using f16") !=
          std::string::npos);
    CHECK(test::run_strata("quantize " + in + " " + out.string() + " q4_k", &output) == 1);
    CHECK(output.find("strata: error: unknown quantization type 'q4_k' (supported: F32, F16, BF16, Q4_0") !=
          std::string::npos);
}
