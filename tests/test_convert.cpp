// strata convert: Hugging Face folders against llama.cpp's own conversions (layout, metadata and
// bytes) and against the Hugging Face logits; llama2.c checkpoints against a plain-float forward
// written here from run.c; malformed input.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>

#include "backend/backend.h"
#include "convert/hf_convert.h"
#include "convert/llama2c.h"
#include "convert/quantize_model.h"
#include "format/gguf.h"
#include "format/safetensors.h"
#include "model/model.h"
#include "reference.h"
#include "safetensors_builder.h"
#include "test_support.h"
#include "util/error.h"
#include "util/json.h"
#include "test_backend.h"

#ifdef STRATA_HAVE_SENTENCEPIECE
#include <sentencepiece_processor.h>
#endif

using namespace strata;
using strata::test::entry_of;
using strata::test::folder_like;
using strata::test::StEntry;
using strata::test::write_safetensors;
namespace fs = std::filesystem;

namespace {

const QuantMix& mix(const char* name) {
    const QuantMix* m = find_quant_mix(name);
    REQUIRE(m != nullptr);
    return *m;
}

fs::path convert(const fs::path& source, const std::string& tag, const char* type = "F32") {
    const fs::path out = test::temp_dir() / ("convert-" + tag + "-" + type + ".gguf");
    const ModelPlan plan =
        fs::is_directory(source) ? plan_hf_conversion(source.string()) : plan_llama2c_conversion(source.string(), "");
    write_model(plan, mix(type), out.string(), 2);
    return out;
}

// Differing 32-bit words between two F32 tensors, and the largest difference in units in the
// last place (same-sign floats: the distance of their bit patterns).
std::pair<int64_t, int64_t> ulp_diff(const void* a, const void* b, size_t nbytes) {
    int64_t count = 0, worst = 0;
    for (size_t i = 0; i < nbytes / 4; ++i) {
        int32_t x, y;
        std::memcpy(&x, static_cast<const uint8_t*>(a) + 4 * i, 4);
        std::memcpy(&y, static_cast<const uint8_t*>(b) + 4 * i, 4);
        if (x != y) ++count, worst = std::max<int64_t>(worst, std::abs(static_cast<int64_t>(x) - y));
    }
    return {count, worst};
}

// Same metadata (keys in order, types, encoded values), same tensor table (names, types,
// shapes, offsets) and data offset; tensor bytes equal except llama.cpp's -exp(A_log).
void check_same_file(const GgufFile& ours, const GgufFile& theirs) {
    REQUIRE(ours.metadata().size() == theirs.metadata().size());
    for (size_t i = 0; i < ours.metadata().size(); ++i) {
        const auto& [key, value] = ours.metadata()[i];
        CAPTURE(key);
        CHECK(key == theirs.metadata()[i].first);
        CHECK(value.type == theirs.metadata()[i].second.type);
        CHECK(value.raw == theirs.metadata()[i].second.raw);
    }
    CHECK(ours.alignment() == theirs.alignment());
    CHECK(ours.data_offset() == theirs.data_offset());
    REQUIRE(ours.tensor_infos().size() == theirs.tensor_infos().size());
    for (size_t i = 0; i < ours.tensor_infos().size(); ++i) {
        const GgufTensorInfo& a = ours.tensor_infos()[i];
        const GgufTensorInfo& b = theirs.tensor_infos()[i];
        CAPTURE(a.name);
        REQUIRE(a.name == b.name);
        CHECK(a.type == b.type);
        CHECK(a.n_dims == b.n_dims);
        CHECK(std::equal(a.ne, a.ne + kMaxDims, b.ne));
        CHECK(a.offset == b.offset);
        const TensorView x = ours.tensor(a.name), y = theirs.tensor(b.name);
        REQUIRE(x.nbytes == y.nbytes);
        if (std::memcmp(x.data, y.data, x.nbytes) == 0) continue;
        // llama.cpp computes A = -exp(A_log) with PyTorch's float32 exp, which is not correctly
        // rounded; strata's std::exp is. They may differ by one unit in the last place.
        REQUIRE_MESSAGE(a.name.find("ssm_a") != std::string::npos, "tensor data differs");
        const auto [count, worst] = ulp_diff(x.data, y.data, x.nbytes);
        MESSAGE(a.name, ": ", count, " of ", x.nbytes / 4, " values differ by at most ", worst, " ulp");
        CHECK(worst <= 1);
        CHECK(count * 50 <= static_cast<int64_t>(x.nbytes / 4));  // ≤ 2% (observed ~1%)
    }
}

bool strata_runs(const std::string& arch) {
    const std::string all = ", " + supported_architectures() + ",";
    return all.find(", " + arch + ",") != std::string::npos;
}

double relative_max_error(const std::vector<float>& a, const std::vector<float>& b) {
    REQUIRE(a.size() == b.size());
    double diff = 0, scale = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        REQUIRE(std::isfinite(a[i]));
        diff = std::max(diff, std::fabs(static_cast<double>(a[i]) - b[i]));
        scale = std::max(scale, std::fabs(static_cast<double>(b[i])));
    }
    return diff / scale;
}

std::vector<float> run_logits(const fs::path& gguf, const std::vector<int32_t>& ids) {
    auto file = GgufFile::open(gguf.string());
    auto backend = strata::test::test_backend(2);
    auto model = strata::test::load_test_model(*file, *backend);
    auto state = model->new_state(static_cast<int>(ids.size()));
    std::vector<float> logits;
    model->forward(*state, ids, Logits::All, logits);
    return logits;
}

}  // namespace

TEST_CASE("convert: every Hugging Face fixture gives llama.cpp's F32 file") {
    if (test::skip_without_shared("HF and llama.cpp fixtures")) return;
    for (const char* model : {"llama", "llama-draft", "mixtral", "mamba", "mamba2", "jamba"}) {
        CAPTURE(std::string(model));
        const fs::path ours = convert(test::fixture(std::string("hf/") + model), model);
        const fs::path theirs = test::fixture(std::string("gguf/") + model + "-f32.gguf");
        check_same_file(*GgufFile::open(ours.string()), *GgufFile::open(theirs.string()));
        if (std::string(model).find("mamba") == std::string::npos && std::string(model) != "jamba") {
            CHECK(test::read_bytes(ours) == test::read_bytes(theirs));  // nothing left to differ
        }
    }
}

TEST_CASE("convert: logits of the converted files match Hugging Face (F32 ≤ 1e-4 of max |logit|)") {
    if (test::skip_without_shared("HF reference logits")) return;
    // qwen2moe has no llama.cpp file (its converter wants tokenizer.json); the logits are its check.
    for (const char* model : {"llama", "llama-draft", "mixtral", "qwen2moe", "mamba", "mamba2", "jamba"}) {
        CAPTURE(std::string(model));
        const fs::path out = convert(test::fixture(std::string("hf/") + model), model);
        const std::string arch = GgufFile::open(out.string())->get_string("general.architecture");
        if (!strata_runs(arch)) {
            MESSAGE("SKIPPED logits for ", model, ": strata cannot run '", arch, "' yet");
            continue;
        }
        const test::Reference ref = test::load_reference(model);
        const double err = relative_max_error(run_logits(out, ref.prompts[0].ids), ref.prompts[0].logits);
        MESSAGE(std::string(model), ": max |Δlogit| / max |logit| = ", err);
        CHECK(err <= 1e-4);
    }
}

TEST_CASE("convert: Mistral and Qwen2 tables, checked with the llama checkpoint relabeled") {
    if (test::skip_without_shared("HF reference logits")) return;
    // Hugging Face's Mistral and Qwen2 (without biases) compute exactly what its Llama computes, so
    // the llama fixture under their class names must give the llama logits: through the permuted
    // pair rope for Mistral (GGUF arch llama), the unpermuted NeoX rope for Qwen2.
    const test::Reference ref = test::load_reference("llama");
    for (const char* hf_class : {"MistralForCausalLM", "Qwen2ForCausalLM"}) {
        CAPTURE(std::string(hf_class));
        const fs::path dir = folder_like("llama", hf_class);
        fs::copy_file(test::fixture("hf/llama/model.safetensors"), dir / "model.safetensors");
        std::string config = test::read_text(dir / "config.json");
        config.replace(config.find("LlamaForCausalLM"), 16, hf_class);
        test::write_bytes(dir / "config.json", std::vector<uint8_t>(config.begin(), config.end()));
        const fs::path out = convert(dir, hf_class);
        CHECK(GgufFile::open(out.string())->get_string("general.architecture") ==
              (std::string(hf_class) == "Qwen2ForCausalLM" ? "qwen2" : "llama"));
        const double err = relative_max_error(run_logits(out, ref.prompts[0].ids), ref.prompts[0].logits);
        CHECK(err <= 1e-4);
    }
}

TEST_CASE("convert --type: the same tensor types and bytes as llama-quantize's files") {
    if (test::skip_without_shared("llama.cpp quantized fixtures")) return;
    for (const char* type : {"F16", "Q8_0", "Q4_K_M"}) {
        CAPTURE(std::string(type));
        const fs::path ours = convert(test::fixture("hf/llama"), "llama", type);
        std::string lower = type;
        std::transform(lower.begin(), lower.end(), lower.begin(), [](char c) { return std::tolower(c); });
        auto a = GgufFile::open(ours.string());
        auto b = GgufFile::open(test::fixture("gguf/llama-" + lower + ".gguf").string());
        CHECK(a->get_u32("general.file_type") == b->get_u32("general.file_type"));
        // Same tensors; convert keeps the converter's order, llama-quantize sorts by block.
        REQUIRE(a->tensor_infos().size() == b->tensor_infos().size());
        for (const GgufTensorInfo& t : a->tensor_infos()) {
            CAPTURE(t.name);
            const TensorView x = a->tensor(t.name), y = b->tensor(t.name);
            CHECK(x.type == y.type);
            CHECK((x.nbytes == y.nbytes && std::memcmp(x.data, y.data, x.nbytes) == 0));
        }
    }
}

TEST_CASE("convert: sharded checkpoints and transformers-5 fused experts read like the plain ones") {
    if (test::skip_without_shared("HF fixtures")) return;
    // llama-draft split in two shards by name, as save_pretrained shards: the same file.
    const SafetensorsCheckpoint draft = SafetensorsCheckpoint::open(test::fixture("hf/llama-draft").string());
    const fs::path sharded = folder_like("llama-draft", "sharded");
    std::vector<StEntry> shard[2];
    Json weight_map = Json::object();
    const auto tensors = draft.tensors();
    for (size_t i = 0; i < tensors.size(); ++i) {
        const int s = i < tensors.size() / 2 ? 0 : 1;
        shard[s].push_back(entry_of(*tensors[i]));
        weight_map.set(tensors[i]->name,
                       s == 0 ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors");
    }
    write_safetensors(sharded / "model-00001-of-00002.safetensors", shard[0]);
    write_safetensors(sharded / "model-00002-of-00002.safetensors", shard[1]);
    Json index = Json::object();
    index.set("weight_map", weight_map);
    test::write_bytes(sharded / "model.safetensors.index.json", [&] {
        const std::string t = index.dump();
        return std::vector<uint8_t>(t.begin(), t.end());
    }());
    fs::path renamed = test::temp_dir() / "llama-draft";  // the folder name becomes general.name
    fs::remove_all(renamed);
    fs::rename(sharded, renamed);
    CHECK(test::read_bytes(convert(renamed, "sharded")) ==
          test::read_bytes(test::fixture("gguf/llama-draft-f32.gguf")));

    // Mixtral with each block's experts fused: gate_up_proj [E, 2·ff, d], down_proj [E, d, ff].
    const SafetensorsCheckpoint mixtral = SafetensorsCheckpoint::open(test::fixture("hf/mixtral").string());
    const fs::path fused = folder_like("mixtral", "fused");
    std::vector<StEntry> entries;
    for (const SafetensorsTensor* t : mixtral.tensors()) {
        if (t->name.find("block_sparse_moe") == std::string::npos) entries.push_back(entry_of(*t));
    }
    for (int layer = 0; layer < 2; ++layer) {
        const std::string p = "model.layers." + std::to_string(layer) + ".";
        entries.push_back(entry_of(mixtral.at(p + "block_sparse_moe.gate.weight"), p + "mlp.gate.weight"));
        StEntry gate_up{p + "mlp.experts.gate_up_proj", "F32", {4, 512, 128}, {}};
        StEntry down{p + "mlp.experts.down_proj", "F32", {4, 128, 256}, {}};
        for (int e = 0; e < 4; ++e) {
            const std::string x = p + "block_sparse_moe.experts." + std::to_string(e) + ".";
            for (const char* w : {"w1", "w3"}) {
                const SafetensorsTensor& t = mixtral.at(x + w + ".weight");
                gate_up.bytes.insert(gate_up.bytes.end(), t.data, t.data + t.nbytes);
            }
            const SafetensorsTensor& t = mixtral.at(x + "w2.weight");
            down.bytes.insert(down.bytes.end(), t.data, t.data + t.nbytes);
        }
        entries.push_back(std::move(gate_up));
        entries.push_back(std::move(down));
    }
    write_safetensors(fused / "model.safetensors", entries);
    auto ours = GgufFile::open(convert(fused, "fused").string());
    auto theirs = GgufFile::open(test::fixture("gguf/mixtral-f32.gguf").string());
    REQUIRE(ours->tensor_infos().size() == theirs->tensor_infos().size());
    for (const GgufTensorInfo& t : theirs->tensor_infos()) {
        CAPTURE(t.name);
        const TensorView x = ours->tensor(t.name), y = theirs->tensor(t.name);
        CHECK((x.nbytes == y.nbytes && std::memcmp(x.data, y.data, x.nbytes) == 0));
    }
}

namespace {

// run.c's forward pass in plain floats, straight from the checkpoint's weights.
std::vector<float> llama2c_reference_logits(const fs::path& path, const std::vector<int32_t>& tokens) {
    const Llama2cConfig c = read_llama2c_config(path.string());
    const std::vector<uint8_t> bytes = test::read_bytes(path);
    const float* w = reinterpret_cast<const float*>(bytes.data() + 28);
    const int dim = c.dim, hd = c.dim / c.n_heads, kv_dim = c.n_kv_heads * hd, hidden = c.hidden_dim, L = c.n_layers;
    const float *emb = w, *rms_att = emb + c.vocab_size * dim, *wq = rms_att + L * dim, *wk = wq + L * dim * dim,
                *wv = wk + L * dim * kv_dim, *wo = wv + L * dim * kv_dim, *rms_ffn = wo + L * dim * dim,
                *w1 = rms_ffn + L * dim, *w2 = w1 + L * dim * hidden, *w3 = w2 + L * hidden * dim,
                *rms_final = w3 + L * dim * hidden;
    auto matmul = [](const float* m, const std::vector<float>& x, int rows) {
        std::vector<float> y(static_cast<size_t>(rows));
        const int cols = static_cast<int>(x.size());
        for (int r = 0; r < rows; ++r) {
            double s = 0;
            for (int k = 0; k < cols; ++k) s += static_cast<double>(m[static_cast<size_t>(r) * cols + k]) * x[k];
            y[r] = static_cast<float>(s);
        }
        return y;
    };
    auto rmsnorm = [dim](const std::vector<float>& x, const float* g) {
        double ss = 0;
        for (float v : x) ss += static_cast<double>(v) * v;
        const float scale = static_cast<float>(1.0 / std::sqrt(ss / dim + 1e-5));
        std::vector<float> y(x.size());
        for (int i = 0; i < dim; ++i) y[i] = x[i] * scale * g[i];
        return y;
    };
    std::vector<std::vector<float>> kcache(L), vcache(L);
    std::vector<float> logits;
    for (size_t pos = 0; pos < tokens.size(); ++pos) {
        std::vector<float> x(emb + tokens[pos] * dim, emb + (tokens[pos] + 1) * dim);
        for (int l = 0; l < L; ++l) {
            std::vector<float> xb = rmsnorm(x, rms_att + l * dim);
            std::vector<float> q = matmul(wq + l * dim * dim, xb, dim), k = matmul(wk + l * dim * kv_dim, xb, kv_dim),
                               v = matmul(wv + l * dim * kv_dim, xb, kv_dim);
            for (int i = 0; i < dim; i += 2) {  // run.c's rope: pairs (i, i+1)
                const double angle = pos / std::pow(10000.0, (i % hd) / static_cast<double>(hd));
                const float cr = static_cast<float>(std::cos(angle)), ci = static_cast<float>(std::sin(angle));
                for (std::vector<float>* t : {&q, &k}) {
                    if (t == &k && i >= kv_dim) continue;
                    const float a = (*t)[i], b = (*t)[i + 1];
                    (*t)[i] = a * cr - b * ci, (*t)[i + 1] = a * ci + b * cr;
                }
            }
            kcache[l].insert(kcache[l].end(), k.begin(), k.end());
            vcache[l].insert(vcache[l].end(), v.begin(), v.end());
            std::vector<float> att_out(static_cast<size_t>(dim), 0.0f);
            for (int h = 0; h < c.n_heads; ++h) {
                const int kvh = h / (c.n_heads / c.n_kv_heads);
                std::vector<double> s(pos + 1);
                double mx = -1e300, sum = 0;
                for (size_t t = 0; t <= pos; ++t) {
                    double d = 0;
                    for (int i = 0; i < hd; ++i) d += q[h * hd + i] * kcache[l][t * kv_dim + kvh * hd + i];
                    s[t] = d / std::sqrt(static_cast<double>(hd));
                    mx = std::max(mx, s[t]);
                }
                for (double& e : s) sum += (e = std::exp(e - mx));
                for (size_t t = 0; t <= pos; ++t) {
                    for (int i = 0; i < hd; ++i)
                        att_out[h * hd + i] += static_cast<float>(s[t] / sum) * vcache[l][t * kv_dim + kvh * hd + i];
                }
            }
            std::vector<float> o = matmul(wo + l * dim * dim, att_out, dim);
            for (int i = 0; i < dim; ++i) x[i] += o[i];
            xb = rmsnorm(x, rms_ffn + l * dim);
            std::vector<float> g = matmul(w1 + l * dim * hidden, xb, hidden),
                               u = matmul(w3 + l * dim * hidden, xb, hidden);
            for (int i = 0; i < hidden; ++i) g[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
            std::vector<float> d = matmul(w2 + l * hidden * dim, g, dim);
            for (int i = 0; i < dim; ++i) x[i] += d[i];
        }
        std::vector<float> out = matmul(emb, rmsnorm(x, rms_final), c.vocab_size);  // shared classifier
        logits.insert(logits.end(), out.begin(), out.end());
    }
    return logits;
}

}  // namespace

TEST_CASE("convert: llama2.c stories260K runs in strata exactly like run.c (no Q/K permutation)") {
    if (test::skip_without_shared("llama2.c fixture")) return;
    const fs::path bin = test::fixture("llama2c/stories260K.bin");
    const fs::path out = convert(bin, "stories");
    auto f = GgufFile::open(out.string());
    CHECK(f->get_u32("llama.embedding_length") == 64);
    CHECK(f->get_u32("llama.feed_forward_length") == 172);
    CHECK(f->get_u32("llama.block_count") == 5);
    CHECK(f->get_u32("llama.attention.head_count_kv") == 4);
    CHECK(f->tensor("blk.4.ffn_down.weight").ne[0] == 172);
    CHECK(f->find_tensor_info("output.weight") == nullptr);  // shared classifier: tied
    const std::vector<int32_t> ids = {1, 300, 42, 7, 411, 99, 258, 17, 501, 3};
    const double err = relative_max_error(run_logits(out, ids), llama2c_reference_logits(bin, ids));
    MESSAGE("stories260K: max |Δlogit| / max |logit| = ", err);
    // Both sides in float32 with different summation orders; a wrong rope pairing gives O(1).
    CHECK(err <= 1e-4);

    // A tokenizer.bin as llama2.c exports it: spaces for "▁", "\n<s>\n" for BOS.
    std::vector<uint8_t> tok(4);
    const int32_t max_len = 8;
    std::memcpy(tok.data(), &max_len, 4);
    auto add = [&](const std::string& text, float score) {
        const int32_t len = static_cast<int32_t>(text.size());
        tok.insert(tok.end(), reinterpret_cast<const uint8_t*>(&score), reinterpret_cast<const uint8_t*>(&score) + 4);
        tok.insert(tok.end(), reinterpret_cast<const uint8_t*>(&len), reinterpret_cast<const uint8_t*>(&len) + 4);
        tok.insert(tok.end(), text.begin(), text.end());
    };
    add("<unk>", 0), add("\n<s>\n", 0), add("\n</s>\n", 0);
    for (int b = 0; b < 256; ++b) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "<0x%02X>", b);
        add(buf, 0);
    }
    add(" the", -259.0f);
    for (int i = 260; i < 512; ++i) add(std::to_string(i), -static_cast<float>(i));
    const fs::path tok_path = test::temp_dir() / "tok512.bin";
    test::write_bytes(tok_path, tok);
    const fs::path with_vocab = test::temp_dir() / "stories-vocab.gguf";
    write_model(plan_llama2c_conversion(bin.string(), tok_path.string()), mix("F32"), with_vocab.string(), 1);
    auto g = GgufFile::open(with_vocab.string());
    const auto tokens = g->get_strings("tokenizer.ggml.tokens");
    CHECK(tokens[1] == "<s>");
    CHECK(tokens[259] == "\xE2\x96\x81the");
    CHECK(tokens[3] == "<0x00>");
    const auto types = g->get_int_array("tokenizer.ggml.token_type");
    CHECK(types[0] == 2);
    CHECK(types[1] == 3);
    CHECK(types[3] == 6);
    CHECK(types[259] == 1);
    CHECK(g->get_f32_array("tokenizer.ggml.scores")[300] == -300.0f);
}

TEST_CASE("convert: bad input fails clearly and leaves no output file") {
    if (test::skip_without_shared("HF fixtures")) return;
    const SafetensorsCheckpoint draft = SafetensorsCheckpoint::open(test::fixture("hf/llama-draft").string());
    std::vector<StEntry> all;
    for (const SafetensorsTensor* t : draft.tensors()) all.push_back(entry_of(*t));
    auto make = [&](const std::string& tag, std::vector<StEntry> entries) {
        const fs::path dir = folder_like("llama-draft", tag);
        write_safetensors(dir / "model.safetensors", entries);
        return dir;
    };
    auto edit_config = [](const fs::path& dir, const std::string& from, const std::string& to) {
        std::string text = test::read_text(dir / "config.json");
        const size_t at = text.find(from);
        REQUIRE(at != std::string::npos);
        text.replace(at, from.size(), to);
        test::write_bytes(dir / "config.json", std::vector<uint8_t>(text.begin(), text.end()));
    };
    auto plan_error = [](const fs::path& dir) {
        try {
            plan_hf_conversion(dir.string());
        } catch (const Error& e) {
            return std::string(e.what());
        }
        return std::string("no error");
    };

    fs::path dir = make("no-layers", all);
    edit_config(dir, "\"num_hidden_layers\"", "\"n_blocks\"");
    CHECK(plan_error(dir).find("missing key (one of: n_layers, num_hidden_layers") != std::string::npos);

    dir = make("unknown-arch", all);
    edit_config(dir, "LlamaForCausalLM", "GPTJForCausalLM");
    CHECK(plan_error(dir).find("architecture 'GPTJForCausalLM' is not supported (supported: LlamaForCausalLM") !=
          std::string::npos);

    dir = make("truncated", all);
    std::vector<uint8_t> bytes = test::read_bytes(dir / "model.safetensors");
    bytes.resize(bytes.size() - 1000);
    test::write_bytes(dir / "model.safetensors", bytes);
    CHECK(plan_error(dir).find("' ends at byte") != std::string::npos);
    CHECK(plan_error(dir).find("(truncated file?)") != std::string::npos);

    dir = make("bad-shape", all);
    auto bad = all;
    bad.back().shape = {65};
    write_safetensors(dir / "model.safetensors", bad);
    CHECK(plan_error(dir).find(
              "tensor 'model.norm.weight': F32 shape of 65 elements needs 260 bytes, data_offsets give 256") !=
          std::string::npos);

    dir = make("missing-shard", all);
    fs::rename(dir / "model.safetensors", dir / "model-00001-of-00002.safetensors");
    const std::string index = R"({"weight_map": {"model.norm.weight": "model-00002-of-00002.safetensors"}})";
    test::write_bytes(dir / "model.safetensors.index.json", std::vector<uint8_t>(index.begin(), index.end()));
    CHECK(plan_error(dir).find("names shard 'model-00002-of-00002.safetensors', which is missing") !=
          std::string::npos);

    // An integer tensor fails while writing: the error names it, and OUT never appears.
    auto ints = all;
    ints.back().dtype = "I32";
    dir = make("int-dtype", ints);
    const fs::path out = test::temp_dir() / "never.gguf";
    const ModelPlan plan = plan_hf_conversion(dir.string());
    CHECK_THROWS_WITH_AS(write_model(plan, mix("F16"), out.string(), 1),
                         doctest::Contains("tensor 'model.norm.weight' has dtype I32; expected F32, F16 or BF16"),
                         Error);
    CHECK(!fs::exists(out));
    CHECK(!test::temp_file_left(out));

    std::string output;
    CHECK(test::run_strata(
              "convert " + test::fixture("hf/llama-draft").string() + " -o " + out.string() + " --type q3_k_xs",
              &output) == 1);
    CHECK(output.find("unknown --type 'q3_k_xs'") != std::string::npos);
    CHECK(test::run_strata("convert " + test::fixture("llama2c/stories260K.bin").string() + " -o " + out.string(),
                           &output) == 0);
    CHECK(output.find("placeholder vocabulary") != std::string::npos);
}

TEST_CASE("convert: tokenizer.json BPE vocabularies, special tokens and the chat template") {
    if (test::skip_without_shared("HF fixtures")) return;
    const fs::path dir = folder_like("llama-draft", "bpe");
    fs::remove(dir / "tokenizer.model");
    fs::copy_file(test::fixture("hf/llama-draft/model.safetensors"), dir / "model.safetensors");
    const std::string tj =
        R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b", ["ab", "b"]]},
        "added_tokens": [{"id": 3, "content": "<|end|>", "special": true}, {"id": 4, "content": "<tool>", "special": false}]})";
    const std::string tc = R"({"eos_token": "<|end|>", "add_bos_token": false, "chat_template": "{{ messages }}"})";
    test::write_bytes(dir / "tokenizer.json", std::vector<uint8_t>(tj.begin(), tj.end()));
    test::write_bytes(dir / "tokenizer_config.json", std::vector<uint8_t>(tc.begin(), tc.end()));
    const fs::path out = test::temp_dir() / "bpe.gguf";
    write_model(plan_hf_conversion(dir.string()), mix("F32"), out.string(), 1);
    auto f = GgufFile::open(out.string());
    CHECK(f->get_string("tokenizer.ggml.model") == "gpt2");
    const auto tokens = f->get_strings("tokenizer.ggml.tokens");
    REQUIRE(tokens.size() == 512);  // padded to config.json's vocab_size
    CHECK((tokens[2] == "ab" && tokens[3] == "<|end|>" && tokens[5] == "[PAD5]"));
    const auto types = f->get_int_array("tokenizer.ggml.token_type");
    CHECK((types[0] == 1 && types[3] == 3 && types[4] == 4 && types[5] == 5));
    const auto merges = f->get_strings("tokenizer.ggml.merges");
    CHECK((merges.size() == 2 && merges[1] == "ab b"));
    // EOS found by content among tokenizer.json's added tokens wins over config.json's id 2.
    CHECK(f->get_u32("tokenizer.ggml.eos_token_id") == 3);
    CHECK(f->get_u32("tokenizer.ggml.bos_token_id") == 1);
    CHECK(!f->get_bool("tokenizer.ggml.add_bos_token", true));
    CHECK(f->get_string("tokenizer.chat_template") == "{{ messages }}");
}

TEST_CASE("convert: tokenizer.model pieces, scores and types as libsentencepiece reads them") {
    if (test::skip_without_shared("tokenizer fixtures")) return;
    const fs::path path = test::fixture("tokenizers/llama2-tokenizer.model");
    const SentencePieceModel m = read_sentencepiece_model(path.string());
    REQUIRE(m.pieces.size() == 32000);
    CHECK(m.byte_fallback);
    CHECK(m.add_dummy_prefix);
    CHECK((m.unk_id == 0 && m.bos_id == 1 && m.eos_id == 2 && m.pad_id == -1));
    CHECK(m.pieces[259].text == "\xE2\x96\x81\xE2\x96\x81");
#ifdef STRATA_HAVE_SENTENCEPIECE
    sentencepiece::SentencePieceProcessor sp;
    REQUIRE(sp.Load(path.string()).ok());
    for (int i = 0; i < sp.GetPieceSize(); ++i) {
        const auto& p = m.pieces[static_cast<size_t>(i)];
        const PieceType expected = sp.IsUnknown(i)   ? PieceType::Unknown
                                   : sp.IsControl(i) ? PieceType::Control
                                   : sp.IsByte(i)    ? PieceType::Byte
                                   : sp.IsUnused(i)  ? PieceType::Unused
                                                     : p.type;  // normal or user-defined
        if (p.text != sp.IdToPiece(i) || p.score != sp.GetScore(i) || p.type != expected) {
            FAIL("piece ", i, " differs: '", p.text, "' vs '", sp.IdToPiece(i), "'");
        }
    }
#else
    MESSAGE("libsentencepiece not found: pieces checked only by count and spot values");
#endif
    CHECK_THROWS_WITH_AS(parse_sentencepiece_model(std::string("\x0a\xff", 2), "bad.model"),
                         doctest::Contains("bad.model: malformed SentencePiece model at byte"), Error);
}
