// Hostile inputs to `strata convert`, each a small file built here: config.json counts that would
// divide by zero, overflow, allocate gigabytes or be written as a u32 the loader refuses;
// safetensors shapes and offsets that overflow or point outside the file; tokenizer ids that are
// huge or negative; llama2.c headers whose sizes overflow. Every one must end in a strata::Error
// naming the file, the key and the value (never a crash, a raw C++ message or a huge allocation).
#include <doctest/doctest.h>

#include <climits>
#include <filesystem>
#include <string>
#include <vector>

#include "convert/hf_convert.h"
#include "convert/llama2c.h"
#include "format/gguf.h"
#include "format/safetensors.h"
#include "llama2c_builder.h"
#include "safetensors_builder.h"
#include "test_support.h"
#include "util/error.h"
#include "util/json.h"

using namespace strata;
namespace fs = std::filesystem;

namespace {

std::string error_of(const std::function<void()>& fn) {
    try {
        fn();
    } catch (const Error& e) {
        return e.what();
    } catch (const std::exception& e) {
        return std::string("raw C++ exception: ") + e.what();
    }
    return "no error";
}

std::string plan_error(const fs::path& dir) {
    return error_of([&] { plan_hf_conversion(dir.string()); });
}

void write_text(const fs::path& path, const std::string& text) {
    test::write_bytes(path, std::vector<uint8_t>(text.begin(), text.end()));
}

// A copy of fixture `model` (config, tokenizer and weights) whose config.json sets key = value
// (JSON text); an empty key leaves it as it is.
fs::path hf_folder(const std::string& model, const std::string& tag, const std::string& key = "",
                   const std::string& value = "") {
    const fs::path dir = test::folder_like(model, "limits-" + tag);
    fs::copy_file(test::fixture("hf/" + model + "/model.safetensors"), dir / "model.safetensors");
    if (!key.empty()) {  // edited as text: a JSON round trip would round the value
        std::string text = test::read_text(dir / "config.json");
        std::string needle = "\"";
        needle.append(key).append("\":");
        const size_t at = text.find(needle);
        REQUIRE(at != std::string::npos);
        const size_t begin = at + key.size() + 3, end = text.find_first_of(",\n}", begin);
        text = text.substr(0, begin) + " " + value + text.substr(end);
        fs::remove(dir / "config.json");
        write_text(dir / "config.json", text);
    }
    return dir;
}

#define CHECK_HAS(text, part) CHECK_MESSAGE((text).find(part) != std::string::npos, (text))

}  // namespace

TEST_CASE("convert limits: config.json counts are range-checked by key before any use") {
    if (test::skip_without_shared("HF fixtures")) return;
    struct Case {
        const char* model;
        const char* key;
        const char* value;
        const char* expected;
    };
    const Case cases[] = {
        // Division by zero (rope.dimension_count, the Q/K permutation, Mamba-2's heads and groups).
        {"llama-draft", "num_attention_heads", "0", "num_attention_heads is 0, expected an integer from 1 to 1048576"},
        {"llama-draft", "head_dim", "0", "head_dim is 0, expected an integer from 1 to 65536"},
        {"mamba2", "n_groups", "0", "n_groups is 0, expected an integer from 1 to 1048576"},
        {"mamba2", "head_dim", "0", "head_dim is 0, expected an integer from 1 to 65536"},
        // Overflow, wrapping into a u32 the loader refuses, huge allocations.
        {"llama-draft", "hidden_size", "-9223372036854775808", "hidden_size is -9.2233720368547758e+18, expected an integer from 1 to 1048576"},
        {"llama-draft", "hidden_size", "4294967296", "hidden_size is 4294967296, expected an integer from 1 to 1048576"},
        {"llama-draft", "intermediate_size", "-1", "intermediate_size is -1, expected an integer from 1 to 1048576"},
        {"llama-draft", "num_hidden_layers", "134217729",
         "num_hidden_layers is 134217729, expected an integer from 1 to 4096"},
        {"llama-draft", "vocab_size", "32000000000", "vocab_size is 32000000000, expected an integer from 1 to 16777216"},
        {"llama-draft", "max_position_embeddings", "1e300", "max_position_embeddings is 1.0000000000000001e+300"},
        {"llama-draft", "num_key_value_heads", "1.5", "num_key_value_heads is 1.5, expected an integer"},
        {"llama-draft", "rms_norm_eps", "-1", "rms_norm_eps is -1, expected a positive number"},
        {"llama-draft", "rms_norm_eps", "1e300", "rms_norm_eps is 1e+300, expected a positive number within float32"},
        {"llama-draft", "num_key_value_heads", "3", "num_attention_heads (2) is not a multiple of num_key_value_heads (3)"},
        // Jamba's per-layer head counts: a negative offset indexed before the vector.
        {"jamba", "attn_layer_offset", "-1", "attn_layer_offset is -1, expected an integer from 0 to 4095"},
        {"jamba", "attn_layer_offset", "4", "attn_layer_offset is 4, expected a layer below num_hidden_layers (4)"},
        {"jamba", "attn_layer_period", "0", "attn_layer_period is 0, expected an integer from 1 to 4096"},
        {"jamba", "num_experts_per_tok", "5", "num_experts_per_tok is 5, expected 1 to the expert count (4)"},
        {"jamba", "mamba_expand", "100000", "mamba_expand is 100000, expected an integer from 1 to 1024"},
    };
    for (const Case& c : cases) {
        CAPTURE(c.key);
        CAPTURE(c.value);
        const fs::path dir = hf_folder(c.model, std::string(c.model) + "-" + c.key, c.key, c.value);
        const std::string error = plan_error(dir);
        CHECK_HAS(error, (dir / "config.json").string() + ": ");
        CHECK_HAS(error, c.expected);
    }

    // Through the CLI: one line, exit 1, no output file.
    const fs::path dir = hf_folder("llama-draft", "cli", "num_attention_heads", "0");
    std::string output;
    CHECK(test::run_strata("convert " + dir.string() + " -o " + (dir / "out.gguf").string(), &output) == 1);
    CHECK_HAS(output, "strata: error: " + (dir / "config.json").string() + ": num_attention_heads is 0");
    CHECK(!fs::exists(dir / "out.gguf"));
}

TEST_CASE("convert limits: tensors GGUF cannot hold are refused when planning (zero rows, bad head split)") {
    if (test::skip_without_shared("HF fixtures")) return;
    const SafetensorsCheckpoint draft = SafetensorsCheckpoint::open(test::fixture("hf/llama-draft").string());
    auto with_q_proj = [&](const std::string& tag, std::vector<int64_t> shape) {
        std::vector<test::StEntry> entries;
        for (const SafetensorsTensor* t : draft.tensors()) {
            test::StEntry e = test::entry_of(*t);
            if (t->name == "model.layers.0.self_attn.q_proj.weight") {
                int64_t n = 1;
                for (int64_t d : shape) n *= d;
                e.shape = shape;
                e.bytes.assign(static_cast<size_t>(n) * 4, 0);
            }
            entries.push_back(std::move(e));
        }
        const fs::path dir = test::folder_like("llama-draft", "limits-q-" + tag);
        test::write_safetensors(dir / "model.safetensors", entries);
        return dir;
    };
    // A layer with zero query rows: an empty tensor (nothing to memcpy) whose permutation divided by 0.
    std::string error = plan_error(with_q_proj("zero", {0, 64}));
    CHECK_HAS(error, "model.safetensors: tensor 'model.layers.0.self_attn.q_proj.weight' has shape [0, 64]; GGUF "
                     "tensors need every dimension ≥ 1");
    error = plan_error(with_q_proj("odd", {3, 64}));
    CHECK_HAS(error, "has shape [3, 64], whose rows do not split into 2 attention heads of even size");
    error = plan_error(with_q_proj("rank5", {2, 2, 2, 2, 4}));
    CHECK_HAS(error, "GGUF tensors have at most 4 dimensions");
}

TEST_CASE("convert limits: safetensors shapes and offsets are checked with overflow-safe arithmetic") {
    const fs::path dir = test::temp_dir() / "limits-safetensors";
    fs::create_directories(dir);
    const fs::path path = dir / "model.safetensors";
    auto open_error = [&](const std::string& header, size_t data_bytes) {
        test::write_safetensors_raw(path, header, data_bytes);
        return error_of([&] { SafetensorsFile::open(path.string()); });
    };
    // 2^52 × 2^12 F32 is 2^66 bytes: wrapped to 0 it matched the empty data_offsets.
    CHECK_HAS(open_error(R"({"a": {"dtype": "F32", "shape": [4503599627370496, 4096], "data_offsets": [0, 0]}})", 0),
              "tensor 'a': F32 shape of too many elements needs more bytes, data_offsets give 0");
    CHECK_HAS(open_error(R"({"a": {"dtype": "F32", "shape": [4611686018427387904, 4], "data_offsets": [0, 0]}})", 0),
              "tensor 'a': shape entries must be integers from 0 to 2^53, got 4.61");
    CHECK_HAS(open_error(R"({"a": {"dtype": "F32", "shape": [4294967296, 4294967296, 16], "data_offsets": [0, 0]}})", 0),
              "shape of too many elements");
    CHECK_HAS(open_error(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [-8, 0]}})", 8),
              "tensor 'a': data_offsets must be non-negative integers, got [-8,0]");
    CHECK_HAS(open_error(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 1e300]}})", 8),
              "tensor 'a' ends at byte 1e+300 of the data section, but the file holds only 8");
    CHECK_HAS(open_error(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}})", 8), "are not ordered");
    CHECK_HAS(open_error(R"({"a": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}})", 8),
              "shape entries must be integers from 0 to 2^53, got -2");
    CHECK_HAS(open_error(R"({"a": {"dtype": "F32", "shape": [1e300], "data_offsets": [0, 8]}})", 8),
              "shape entries must be integers from 0 to 2^53");
    CHECK_HAS(open_error(R"({"a": {"dtype": "F32", "shape": "2", "data_offsets": [0, 8]}})", 8),
              "header entry needs dtype (string), shape (array)");

    // An empty tensor is valid safetensors; decoding it copies nothing (no memcpy from null).
    test::write_safetensors_raw(path, R"({"e": {"dtype": "F32", "shape": [0, 4294967296], "data_offsets": [0, 0]}})", 0);
    auto file = SafetensorsFile::open(path.string());
    REQUIRE(file->tensors().size() == 1);
    CHECK(file->tensors()[0].n_elements() == 0);
    std::vector<float> out(3, 1.0f);
    read_as_f32(file->tensors()[0], out);
    CHECK(out.empty());

    // An index naming a shard outside the folder.
    const std::string index = R"({"weight_map": {"a": "../model.safetensors"}})";
    write_text(dir / "model.safetensors.index.json", index);
    CHECK_HAS(error_of([&] { SafetensorsCheckpoint::open(dir.string()); }),
              "weight_map[\"a\"] is not a file name in the folder");
}

TEST_CASE("convert limits: tokenizer ids are checked against the vocabulary before they size anything") {
    if (test::skip_without_shared("HF fixtures")) return;
    // tokenizer.json (BPE): a huge id was a multi-terabyte allocation, a negative one a heap overflow.
    auto bpe_error = [&](const std::string& tag, const std::string& tokenizer_json) {
        const fs::path dir = hf_folder("llama-draft", "bpe-" + tag);
        fs::remove(dir / "tokenizer.model");
        write_text(dir / "tokenizer.json", tokenizer_json);
        return std::pair{plan_error(dir), (dir / "tokenizer.json").string()};
    };
    const std::string vocab = R"("model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": ["a b"]})";
    auto [error, path] = bpe_error("huge", "{" + vocab + R"(, "added_tokens": [{"id": 1e15, "content": "x"}]})");
    CHECK_HAS(error, path + ": added_tokens[0] has id 1000000000000000, expected an integer from 0 to 511 (the "
                            "model's vocabulary)");
    std::tie(error, path) = bpe_error("negative", "{" + vocab + R"(, "added_tokens": [{"id": -1, "content": "x"}]})");
    CHECK_HAS(error, path + ": added_tokens[0] has id -1");
    std::tie(error, path) = bpe_error("no-content", "{" + vocab + R"(, "added_tokens": [{"id": 3}]})");
    CHECK_HAS(error, path + ": added_tokens[0] has no \"content\"");
    std::tie(error, path) = bpe_error("string-id", R"({"model": {"type": "BPE", "vocab": {"a": "zero"}}})");
    CHECK_HAS(error, path + ": model.vocab token 'a' has id \"zero\"");
    std::tie(error, path) = bpe_error("merge", R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [["a"]]}})");
    CHECK_HAS(error, path + ": model.merges[0] is neither");

    // tokenizer_config.json's added_tokens_decoder over tokenizer.model: ids were parsed with
    // std::stoul, which took "-1" as 2^64 - 1 (then a heap overflow) and threw "stoul" on text.
    for (const char* id : {"-1", "99999999999999999999", "abc", "512"}) {
        CAPTURE(id);
        const fs::path dir = hf_folder("llama-draft", std::string("decoder-") + (id[0] == '-' ? "neg" : id));
        fs::remove(dir / "tokenizer_config.json");
        write_text(dir / "tokenizer_config.json",
                   std::string(R"({"added_tokens_decoder": {")") + id + R"(": {"content": "x", "special": true}}})");
        error = plan_error(dir);
        CHECK_HAS(error, (dir / "tokenizer_config.json").string() + ": added_tokens_decoder key '" + id +
                             "' is not a token id from 0 to 511");
    }

    // A vocabulary that does not match the embedding's rows would index past it at run time.
    error = plan_error(hf_folder("llama-draft", "vocab-600", "vocab_size", "600"));
    CHECK_HAS(error, "tokenizer.model: the vocabulary has 600 tokens (with config.json's vocab_size), but ");
    CHECK_HAS(error, "tensor 'model.embed_tokens.weight' has 512 rows");

    // A tokenizer file that is a directory: basic_filebuf::underflow reached the user.
    const fs::path dir = hf_folder("llama-draft", "tokenizer-dir");
    fs::create_directories(dir / "tokenizer.json");
    error = plan_error(dir);
    CHECK_HAS(error, (dir / "tokenizer.json").string() + ": not a regular file (a directory)");
}

TEST_CASE("convert limits: llama2.c header fields by table, before the layout's arithmetic") {
    const fs::path dir = test::temp_dir() / "limits-llama2c";
    fs::create_directories(dir);
    const fs::path bin = dir / "model.bin";
    auto header_error = [&](test::Llama2cHeader h, int64_t n_floats = 0) {
        test::write_llama2c(bin, h, n_floats);
        return error_of([&] { read_llama2c_config(bin.string()); });
    };
    test::Llama2cHeader h;
    h.dim = 1 << 30;
    CHECK_HAS(header_error(h), bin.string() + ": header field dim is 1073741824, expected 1 to 1048576");
    h = {};
    h.vocab_size = INT_MIN;  // negating it overflowed
    CHECK_HAS(header_error(h), "header field vocab_size is -2147483648, expected ±1 to 16777216 (negative: an unshared");
    h = {};
    h.n_layers = 100000;
    CHECK_HAS(header_error(h), "header field n_layers is 100000, expected 1 to 4096");
    h = {};
    h.n_kv_heads = -2;
    CHECK_HAS(header_error(h), "header field n_kv_heads is -2");
    // The largest sizes the limits allow: products stay inside int64 and are compared with the file.
    h = {};
    h.dim = h.hidden_dim = 1 << 20;
    h.n_layers = 4096;
    h.n_heads = h.n_kv_heads = 1024;
    h.vocab_size = -(1 << 24);
    h.seq_len = 1 << 30;
    CHECK_HAS(header_error(h), "28 bytes, but the header (dim 1048576, hidden 1048576, 4096 layers, vocab 16777216, "
                               "unshared classifier, seq_len 1073741824) needs ");

    // tokenizer.bin: a token length was allocated before it was compared with the file.
    test::write_llama2c(bin, {});
    std::vector<uint8_t> tok(4 + 8);
    const int32_t max_len = 1 << 30, len = 1 << 30;
    std::memcpy(tok.data(), &max_len, 4);
    std::memcpy(tok.data() + 8, &len, 4);
    const fs::path tok_path = dir / "tokenizer.bin";
    test::write_bytes(tok_path, tok);
    CHECK_HAS(error_of([&] { plan_llama2c_conversion(bin.string(), tok_path.string()); }),
              tok_path.string() + ": token 0 of 32 is truncated or longer than");
}

TEST_CASE("convert limits: the GGUF writer refuses what the reader refuses") {
    GgufWriter w;
    const std::vector<float> data(4);
    CHECK_HAS(error_of([&] { w.add_tensor("t", GgmlType::F32, {4, 0}, data.data()); }),
              "tensor 't': dimension 1 is 0 (GGUF needs positive dimensions)");
    CHECK_HAS(error_of([&] { w.add_tensor("t", GgmlType::F32, {-4}, data.data()); }), "dimension 0 is -4");
    CHECK_HAS(error_of([&] { w.add_tensor("t", GgmlType::F32, {INT64_MAX, 4}, data.data()); }), "overflows");
}
