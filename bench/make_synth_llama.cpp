// A synthetic llama GGUF with the widths of a real 1B-class model (d=2048, ff=5632, 16 heads,
// 4 KV heads; layer count from the command line) and the tokenizer of a small fixture, weights
// N(0, 0.02). The fixtures are d=128, where per-op overheads hide kernel speed; this is for
// benchmarks only (its output is noise). Built and used by bench/simd_bench.sh:
//   c++ -std=c++20 -O2 -Isrc bench/make_synth_llama.cpp build/libstrata_core.a -lpthread
//   ./a.out fixture-f32.gguf out.gguf [layers]
#include <cstdlib>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "format/gguf.h"

using namespace strata;

int main(int argc, char** argv) {
    if (argc < 3) return 2;
    const std::string fixture = argv[1], out = argv[2];
    const int64_t d = 2048, ff = 5632, n_head = 16, n_kv = 4, vocab = 512;
    const int layers = argc > 3 ? std::atoi(argv[3]) : 2;
    const auto src = GgufFile::open(fixture);
    if (src->get_u32("llama.vocab_size", 0) != vocab) return 3;
    GgufWriter w;
    for (const auto& [key, value] : src->metadata()) w.set_value(key, value);
    w.set_u32("llama.block_count", static_cast<uint32_t>(layers));
    w.set_u32("llama.embedding_length", d);
    w.set_u32("llama.feed_forward_length", ff);
    w.set_u32("llama.attention.head_count", n_head);
    w.set_u32("llama.attention.head_count_kv", n_kv);
    w.set_u32("llama.attention.key_length", d / n_head);
    w.set_u32("llama.attention.value_length", d / n_head);
    w.set_u32("llama.rope.dimension_count", d / n_head);
    auto add = [&](const std::string& name, std::vector<int64_t> ne, float mean, float stddev) {
        w.add_tensor(name, GgmlType::F32, ne, [ne, mean, stddev, name](std::vector<uint8_t>& buf) {
            size_t n = 1;
            for (int64_t e : ne) n *= static_cast<size_t>(e);
            buf.resize(n * sizeof(float));
            std::mt19937 rng(static_cast<uint32_t>(std::hash<std::string>{}(name)));
            std::normal_distribution<float> dist(mean, stddev);
            float* f = reinterpret_cast<float*>(buf.data());
            for (size_t i = 0; i < n; ++i) f[i] = dist(rng);
        });
    };
    add("token_embd.weight", {d, vocab}, 0, 1);
    add("output.weight", {d, vocab}, 0, 0.02f);
    add("output_norm.weight", {d}, 1, 0.01f);
    for (int l = 0; l < layers; ++l) {
        const std::string p = "blk." + std::to_string(l) + ".";
        add(p + "attn_norm.weight", {d}, 1, 0.01f);
        add(p + "ffn_norm.weight", {d}, 1, 0.01f);
        add(p + "attn_q.weight", {d, d}, 0, 0.02f);
        add(p + "attn_k.weight", {d, d / n_head * n_kv}, 0, 0.02f);
        add(p + "attn_v.weight", {d, d / n_head * n_kv}, 0, 0.02f);
        add(p + "attn_output.weight", {d, d}, 0, 0.02f);
        add(p + "ffn_gate.weight", {d, ff}, 0, 0.02f);
        add(p + "ffn_up.weight", {d, ff}, 0, 0.02f);
        add(p + "ffn_down.weight", {ff, d}, 0, 0.02f);
    }
    w.write(out);
    return 0;
}
