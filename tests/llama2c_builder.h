// Small llama2.c checkpoints (run.c's legacy format) built in a test: the 7-int32 header and,
// when the header is sane, as many float32 weights as it implies (all 0.01, so a converted model
// runs). Header-only like the other builders.
#pragma once

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <vector>

#include "test_support.h"

namespace strata::test {

struct Llama2cHeader {
    int32_t dim = 8, hidden_dim = 16, n_layers = 1, n_heads = 2, n_kv_heads = 2, vocab_size = 32, seq_len = 16;
};

// The header's weights in floats, as run.c's memory_map_weights lays them out.
inline int64_t llama2c_weight_count(const Llama2cHeader& h) {
    const int64_t dim = h.dim, hidden = h.hidden_dim, L = h.n_layers;
    const int64_t vocab = h.vocab_size < 0 ? -int64_t{h.vocab_size} : h.vocab_size;
    const int64_t head = dim / h.n_heads, kv_dim = h.n_kv_heads * head;
    return vocab * dim + L * dim + 2 * L * dim * dim + 2 * L * dim * kv_dim + L * dim + 3 * L * dim * hidden + dim +
           h.seq_len * head + (h.vocab_size < 0 ? vocab * dim : 0);
}

// Writes the header followed by `n_floats` weights (-1: as many as the header implies).
inline void write_llama2c(const std::filesystem::path& path, const Llama2cHeader& h, int64_t n_floats = -1) {
    if (n_floats < 0) n_floats = llama2c_weight_count(h);
    std::vector<uint8_t> bytes(28 + 4 * static_cast<size_t>(n_floats));
    std::memcpy(bytes.data(), &h, 28);
    const float w = 0.01f;
    for (int64_t i = 0; i < n_floats; ++i) std::memcpy(bytes.data() + 28 + 4 * i, &w, 4);
    write_bytes(path, bytes);
}

}  // namespace strata::test
