// A bounded, deterministic mutation pass over the GGUF reader (CI's fuzz run), plus every
// crashing input ever found, kept as a regression test. Coverage-guided fuzzing: `make fuzz`.
#include <doctest/doctest.h>

#include <filesystem>
#include <random>

#include "format/gguf.h"
#include "fuzz/gguf_fuzz_one.h"
#include "gguf_builder.h"
#include "test_support.h"

using namespace strata;
namespace fs = std::filesystem;

namespace {

// Seeds: a writer-made file with every metadata type and a few tensors, and a small fixture.
std::vector<std::vector<uint8_t>> seed_corpus() {
    std::vector<std::vector<uint8_t>> seeds;
    fs::path path = test::temp_dir() / "fuzz_seed.gguf";
    GgufWriter w;
    w.set_string("general.architecture", "llama");
    w.set_u32("llama.block_count", 2);
    w.set_bool("b", true);
    w.set_strings("tokenizer.ggml.tokens", {"a", "b", "<0x0A>"});
    w.set_f32_array("tokenizer.ggml.scores", {0.f, -1.f, -2.f});
    w.set_i32_array("tokenizer.ggml.token_type", {1, 1, 6});
    std::vector<float> x(64, 0.5f);
    w.add_tensor("token_embd.weight", GgmlType::F32, {32, 2}, x.data());
    std::vector<uint8_t> q(row_size(GgmlType::Q8_0, 64));
    type_traits(GgmlType::Q8_0).from_float(x.data(), q.data(), 64);
    w.add_tensor("blk.0.attn_q.weight", GgmlType::Q8_0, {64}, q.data());
    w.write(path.string());
    seeds.push_back(test::read_bytes(path));
    if (!test::shared_dir().empty()) seeds.push_back(test::read_bytes(test::fixture("gguf/llama-draft-q4_k_m.gguf")));
    return seeds;
}

std::vector<uint8_t> mutate(const std::vector<uint8_t>& in, std::mt19937_64& rng) {
    std::vector<uint8_t> out = in;
    // Mutations concentrate on the header region, where the parser's decisions are made.
    size_t header = std::min<size_t>(out.size(), 4096);
    int n = 1 + static_cast<int>(rng() % 4);
    for (int i = 0; i < n && !out.empty(); ++i) {
        size_t pos = rng() % header;
        switch (rng() % 6) {
            case 0: out[pos] ^= static_cast<uint8_t>(1u << (rng() % 8)); break;
            case 1: out[pos] = static_cast<uint8_t>(rng()); break;
            case 2: {  // an interesting 64-bit value (counts, lengths, dims, offsets)
                static const uint64_t kInteresting[] = {0, 1, 0x7f, 0xff, 0xffffffffull, 1ull << 32, 1ull << 63,
                                                        ~0ull, 0x7fffffffffffffffull, 31, 33};
                uint64_t v = kInteresting[rng() % std::size(kInteresting)];
                size_t n_bytes = std::min<size_t>(8, out.size() - pos);
                std::memcpy(out.data() + pos, &v, n_bytes);
                break;
            }
            case 3: out.resize(rng() % out.size()); header = std::min(header, out.size()); break;
            case 4: out.insert(out.begin() + static_cast<long>(pos), static_cast<uint8_t>(rng())); break;
            case 5: out.erase(out.begin() + static_cast<long>(pos)); header = std::min(header, out.size()); break;
        }
        if (header == 0) break;
    }
    return out;
}

}  // namespace

TEST_CASE("bounded fuzz pass over the GGUF reader") {
    auto seeds = seed_corpus();
    std::mt19937_64 rng(20261126);
    const int kExecutions = 20000;
    int parsed = 0;
    for (int i = 0; i < kExecutions; ++i) {
        const auto& seed = seeds[static_cast<size_t>(i) % seeds.size()];
        std::vector<uint8_t> input = mutate(seed, rng);
        parsed += fuzz::gguf_fuzz_one(input.data(), input.size());
    }
    MESSAGE("GGUF fuzz pass: ", kExecutions, " executions, ", parsed, " inputs parsed, ", kExecutions - parsed,
            " rejected with an error, no crash");
    CHECK(parsed > 0);
    CHECK(parsed < kExecutions);
}

TEST_CASE("inputs that once crashed a fuzzer stay fixed") {
    fs::path dir = fs::path(STRATA_SOURCE_DIR) / "tests/data/gguf_crashes";
    int n = 0;
    for (const auto& entry : fs::directory_iterator(dir)) {
        if (!entry.is_regular_file() || entry.path().filename() == "README.md") continue;
        auto bytes = test::read_bytes(entry.path());
        fuzz::gguf_fuzz_one(bytes.data(), bytes.size());
        ++n;
    }
    MESSAGE(n, " regression inputs replayed");
}
