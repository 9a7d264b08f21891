// The hyperparameter reader (model/hparams.cpp) of every architecture: each out-of-range,
// inconsistent or missing key fails the load with an error naming the file, the key, the value
// and the allowed range. The files are synthetic and metadata-only, apart from the router
// tensors that make a layer MoE: with valid keys the load gets as far as the first tensor, so
// each case below fails on its key and nothing else. No fixtures needed.
#include <doctest/doctest.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "format/gguf.h"
#include "model/model.h"
#include "test_support.h"
#include "util/error.h"

using namespace strata;
namespace fs = std::filesystem;

namespace {

using Edit = std::function<void(GgufWriter&)>;

// An integer key as llama.cpp writes it (uint32), int32 when negative, uint64 beyond 32 bits.
Edit set(const std::string& key, int64_t v) {
    return [=](GgufWriter& w) {
        if (v < 0) {
            w.set_i32(key, static_cast<int32_t>(v));
        } else if (v > std::numeric_limits<uint32_t>::max()) {
            w.set_u64(key, static_cast<uint64_t>(v));
        } else {
            w.set_u32(key, static_cast<uint32_t>(v));
        }
    };
}
Edit set_array(const std::string& key, std::vector<int32_t> v) {
    return [=](GgufWriter& w) { w.set_i32_array(key, v); };
}
Edit unset(const std::string& key) {
    return [=](GgufWriter& w) { w.remove(key); };
}
Edit both(Edit a, Edit b) {
    return [=](GgufWriter& w) {
        a(w);
        b(w);
    };
}

// A router [n_embd, n_expert] for layer il: the tensor that makes the layer MoE.
void add_router(GgufWriter& w, int il, int64_t n_embd, int64_t n_expert) {
    static const std::vector<float> zeros(4096);
    REQUIRE(static_cast<size_t>(n_embd * n_expert) <= zeros.size());
    w.add_tensor("blk." + std::to_string(il) + ".ffn_gate_inp.weight", GgmlType::F32, {n_embd, n_expert}, zeros.data());
}

// Valid keys of a tiny model of each family (n_embd 64, 2 layers, 32 tokens).
void transformer_keys(GgufWriter& w, const std::string& arch) {
    w.set_string("general.architecture", arch);
    w.set_u32(arch + ".embedding_length", 64);
    w.set_u32(arch + ".block_count", 2);
    w.set_u32(arch + ".feed_forward_length", 128);
    w.set_u32(arch + ".attention.head_count", 4);
    w.set_u32(arch + ".attention.head_count_kv", 2);
    w.set_u32(arch + ".vocab_size", 32);
}
void llama_keys(GgufWriter& w) { transformer_keys(w, "llama"); }
// Mixtral: llama with 4 experts, 2 per token, both layers routed.
void mixtral_keys(GgufWriter& w) {
    transformer_keys(w, "llama");
    w.set_u32("llama.expert_count", 4);
    w.set_u32("llama.expert_used_count", 2);
    add_router(w, 0, 64, 4);
    add_router(w, 1, 64, 4);
}
void qwen2moe_keys(GgufWriter& w) {
    transformer_keys(w, "qwen2moe");
    w.set_u32("qwen2moe.expert_count", 4);
    w.set_u32("qwen2moe.expert_used_count", 2);
    w.set_u32("qwen2moe.expert_feed_forward_length", 32);
    add_router(w, 0, 64, 4);
}
void ssm_keys(GgufWriter& w, const std::string& arch) {
    w.set_string("general.architecture", arch);
    w.set_u32(arch + ".embedding_length", 64);
    w.set_u32(arch + ".block_count", 2);
    w.set_u32(arch + ".vocab_size", 32);
    w.set_u32(arch + ".ssm.conv_kernel", 4);
    w.set_u32(arch + ".ssm.inner_size", 128);
    w.set_u32(arch + ".ssm.state_size", 16);
    w.set_u32(arch + ".ssm.time_step_rank", 8);  // Mamba-1: Δ rank; Mamba-2: head count
}
void mamba_keys(GgufWriter& w) { ssm_keys(w, "mamba"); }
void mamba2_keys(GgufWriter& w) {
    ssm_keys(w, "mamba2");
    w.set_u32("mamba2.ssm.group_count", 2);
}
// Jamba: layer 0 Mamba with a dense FFN, layer 1 attention with experts.
void jamba_keys(GgufWriter& w) {
    ssm_keys(w, "jamba");
    w.set_u32("jamba.feed_forward_length", 128);
    w.set_u32("jamba.attention.head_count", 4);
    w.set_i32_array("jamba.attention.head_count_kv", {0, 2});
    w.set_u32("jamba.expert_count", 4);
    w.set_u32("jamba.expert_used_count", 2);
    add_router(w, 1, 64, 4);
}

fs::path write_model(const Edit& keys, const Edit& edit) {
    GgufWriter w;
    keys(w);
    if (edit) edit(w);
    const fs::path path = test::temp_dir() / "hparams.gguf";
    w.write(path.string());
    return path;
}

void load(const fs::path& path) {
    const auto file = GgufFile::open(path.string());
    const auto backend = make_cpu_backend(1);
    load_model(*file, *backend);
}

struct Case {
    Edit edit;
    std::string message;  // follows "<path>: " in the error
};

// The keys load (the model stops at its first missing tensor), and each edit of them fails with
// its message.
void check_cases(const Edit& keys, const std::vector<Case>& cases) {
    const fs::path valid = write_model(keys, {});
    CHECK_THROWS_WITH_AS(load(valid), doctest::Contains("missing tensor 'token_embd.weight'"), Error);
    for (const Case& c : cases) {
        const fs::path path = write_model(keys, c.edit);
        const std::string expected = path.string() + ": " + c.message;
        INFO(expected);
        CHECK_THROWS_WITH_AS(load(path), doctest::Contains(expected.c_str()), Error);
    }
}

}  // namespace

TEST_CASE("llama hyperparameters: dimensions in range, head_count a multiple of head_count_kv, rope pairs") {
    check_cases(llama_keys, {
        {set("llama.embedding_length", 0), "llama.embedding_length is 0, expected 1 to 16777216"},
        {set("llama.embedding_length", (1 << 24) + 1), "llama.embedding_length is 16777217, expected 1 to 16777216"},
        {set("llama.embedding_length", int64_t{1} << 40),
         "llama.embedding_length is 1099511627776, expected 1 to 16777216"},
        {unset("llama.embedding_length"), "missing metadata key 'llama.embedding_length'"},
        {set("llama.block_count", 0), "llama.block_count is 0, expected 1 to 65536"},
        {set("llama.block_count", -1), "llama.block_count is -1, expected 1 to 65536"},
        {set("llama.feed_forward_length", 1 << 25), "llama.feed_forward_length is 33554432, expected 0 to 16777216"},
        {set("llama.attention.head_count", 0), "llama.attention.head_count is 0, expected 1 to 1048576"},
        {set("llama.attention.head_count", (1 << 20) + 1),
         "llama.attention.head_count is 1048577, expected 1 to 1048576"},
        {set("llama.attention.head_count_kv", 0),
         "llama.attention.head_count_kv is 0, expected 1 to llama.attention.head_count (4)"},
        {set("llama.attention.head_count_kv", 8),
         "llama.attention.head_count_kv is 8, expected 1 to llama.attention.head_count (4)"},
        {set("llama.attention.head_count", 3),
         "llama.attention.head_count is 3, expected a multiple of llama.attention.head_count_kv (2)"},
        {set("llama.attention.key_length", 0), "llama.attention.key_length is 0, expected 1 to 65536"},
        // 128 heads of a 64-wide embedding: the default head size n_embd / n_head is 0.
        {set("llama.attention.head_count", 128),
         "llama.attention.key_length is missing, and its default 0 is outside 1 to 65536"},
        {set("llama.attention.value_length", -2), "llama.attention.value_length is -2, expected 1 to 65536"},
        {set("llama.rope.dimension_count", 3), "llama.rope.dimension_count is 3, expected an even number"},
        {set("llama.rope.dimension_count", 32),
         "llama.rope.dimension_count is 32, expected 2 to the head size (16)"},
        {set("llama.context_length", -5), "llama.context_length is -5, expected 0 to 1073741824"},
        {set("llama.vocab_size", 0), "llama.vocab_size is 0, expected 1 to 16777216"},
    });
    // A dense model (no expert_count) does not read expert_used_count.
    CHECK_THROWS_WITH_AS(load(write_model(llama_keys, set("llama.expert_used_count", 2))),
                         doctest::Contains("missing tensor 'token_embd.weight'"), Error);
}

TEST_CASE("mixtral-style MoE hyperparameters: 1 <= expert_used_count <= expert_count, expert widths") {
    check_cases(mixtral_keys, {
        {set("llama.expert_used_count", 5), "llama.expert_used_count is 5, expected 1 to llama.expert_count (4)"},
        {set("llama.expert_used_count", 0), "llama.expert_used_count is 0, expected 1 to llama.expert_count (4)"},
        {set("llama.expert_used_count", -1), "llama.expert_used_count is -1, expected 1 to llama.expert_count (4)"},
        {unset("llama.expert_used_count"), "missing metadata key 'llama.expert_used_count'"},
        {set("llama.expert_count", 4097), "llama.expert_count is 4097, expected 0 to 4096"},
        {set("llama.expert_count", -4), "llama.expert_count is -4, expected 0 to 4096"},
        // The expert width defaults to feed_forward_length.
        {unset("llama.feed_forward_length"),
         "llama.expert_feed_forward_length is missing, and its default 0 is outside 1 to 16777216"},
        {set("llama.expert_feed_forward_length", 0), "llama.expert_feed_forward_length is 0, expected 1 to 16777216"},
        {set("llama.expert_shared_feed_forward_length", (1 << 24) + 1),
         "llama.expert_shared_feed_forward_length is 16777217, expected 0 to 16777216"},
    });
    check_cases(qwen2moe_keys, {
        {set("qwen2moe.expert_used_count", 8),
         "qwen2moe.expert_used_count is 8, expected 1 to qwen2moe.expert_count (4)"},
        {set("qwen2moe.expert_used_count", 0),
         "qwen2moe.expert_used_count is 0, expected 1 to qwen2moe.expert_count (4)"},
    });
}

TEST_CASE("mamba hyperparameters: SSM sizes in range, the Δ rank required") {
    check_cases(mamba_keys, {
        {set("mamba.embedding_length", 0), "mamba.embedding_length is 0, expected 1 to 16777216"},
        {set("mamba.embedding_length", (1 << 24) + 1), "mamba.embedding_length is 16777217, expected 1 to 16777216"},
        {set("mamba.block_count", -3), "mamba.block_count is -3, expected 1 to 65536"},
        {set("mamba.vocab_size", 0), "mamba.vocab_size is 0, expected 1 to 16777216"},
        {set("mamba.context_length", -1), "mamba.context_length is -1, expected 0 to 1073741824"},
        {set("mamba.ssm.conv_kernel", 0), "mamba.ssm.conv_kernel is 0, expected 1 to 1024"},
        {set("mamba.ssm.conv_kernel", 1 << 20), "mamba.ssm.conv_kernel is 1048576, expected 1 to 1024"},
        {set("mamba.ssm.inner_size", 0), "mamba.ssm.inner_size is 0, expected 1 to 16777216"},
        {set("mamba.ssm.inner_size", int64_t{1} << 32), "mamba.ssm.inner_size is 4294967296, expected 1 to 16777216"},
        {set("mamba.ssm.state_size", 0), "mamba.ssm.state_size is 0, expected 1 to 65536"},
        {set("mamba.ssm.state_size", (1 << 16) + 1), "mamba.ssm.state_size is 65537, expected 1 to 65536"},
        {set("mamba.ssm.time_step_rank", 0), "mamba.ssm.time_step_rank is 0, expected 1 to 16777216"},
        {unset("mamba.ssm.time_step_rank"), "missing metadata key 'mamba.ssm.time_step_rank'"},
        {unset("mamba.ssm.state_size"), "missing metadata key 'mamba.ssm.state_size'"},
    });
}

TEST_CASE("mamba2 hyperparameters: heads and groups in range and dividing the inner size") {
    check_cases(mamba2_keys, {
        {set("mamba2.embedding_length", -64), "mamba2.embedding_length is -64, expected 1 to 16777216"},
        {set("mamba2.ssm.inner_size", 0), "mamba2.ssm.inner_size is 0, expected 1 to 16777216"},
        {set("mamba2.ssm.state_size", -16), "mamba2.ssm.state_size is -16, expected 1 to 65536"},
        {set("mamba2.ssm.group_count", 0), "mamba2.ssm.group_count is 0, expected 1 to 1048576"},
        {set("mamba2.ssm.time_step_rank", (1 << 20) + 1),
         "mamba2.ssm.time_step_rank is 1048577, expected 0 to 1048576"},
        {set("mamba2.ssm.time_step_rank", 7),
         "inconsistent SSM dimensions: mamba2.ssm.inner_size 128 must be a multiple of the head count 7"},
        {set("mamba2.ssm.group_count", 3),
         "inconsistent SSM dimensions: mamba2.ssm.inner_size 128 must be a multiple of the head count 8, itself a "
         "multiple of mamba2.ssm.group_count 3"},
        // Without the key the head count comes from blk.0.ssm_dt.bias, absent here.
        {unset("mamba2.ssm.time_step_rank"),
         "mamba2.ssm.time_step_rank (the SSM head count) is missing and blk.0.ssm_dt.bias is absent"},
    });
}

TEST_CASE("jamba hyperparameters: experts, per-layer head counts and the SSM keys") {
    check_cases(jamba_keys, {
        // route_tokens would take the top 5 of 4 probabilities (a heap overflow), or none.
        {set("jamba.expert_used_count", 5), "jamba.expert_used_count is 5, expected 1 to jamba.expert_count (4)"},
        {set("jamba.expert_used_count", 0), "jamba.expert_used_count is 0, expected 1 to jamba.expert_count (4)"},
        {unset("jamba.expert_used_count"), "missing metadata key 'jamba.expert_used_count'"},
        {set("jamba.expert_count", 1 << 13), "jamba.expert_count is 8192, expected 0 to 4096"},
        {set("jamba.feed_forward_length", 0), "jamba.feed_forward_length is 0, expected 1 to 16777216"},
        {set_array("jamba.attention.head_count_kv", {0, 3}),
         "jamba.attention.head_count is 4 for layer 1, expected a positive multiple of "
         "jamba.attention.head_count_kv (3)"},
        {set_array("jamba.attention.head_count_kv", {0, -1}),
         "jamba.attention.head_count_kv is -1 for layer 1, expected 0 to 1048576"},
        {set_array("jamba.attention.head_count_kv", {0, 2, 0}),
         "'jamba.attention.head_count_kv' has 3 entries, expected one per layer (2)"},
        {set("jamba.attention.head_count", 0),
         "jamba.attention.head_count is 0 for layer 1, expected a positive multiple of "
         "jamba.attention.head_count_kv (2)"},
        {set_array("jamba.attention.head_count", {4, 1 << 21}),
         "jamba.attention.head_count is 2097152 for layer 1, expected 0 to 1048576"},
        {both(set("jamba.attention.head_count", 6), set_array("jamba.attention.head_count_kv", {0, 3})),
         "jamba.attention.head_count is 6 for layer 1, expected a divisor of jamba.embedding_length (64)"},
        {set("jamba.embedding_length", (1 << 24) + 1), "jamba.embedding_length is 16777217, expected 1 to 16777216"},
        {set("jamba.block_count", 0), "jamba.block_count is 0, expected 1 to 65536"},
        {set("jamba.ssm.state_size", 0), "jamba.ssm.state_size is 0, expected 1 to 65536"},
        {set("jamba.ssm.time_step_rank", 0), "jamba.ssm.time_step_rank is 0, expected 1 to 16777216"},
    });
}
