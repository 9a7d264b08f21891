// Decode time per token of a mixture-of-experts model against dense models of its active and of
// its total size, on synthetic llama-arch GGUFs with random Q8_0 weights written here.
//   build/bench/moe_bench [threads]
// Expect MoE ≈ dense-active and far below dense-total: decode reads only the k chosen experts.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "backend/backend.h"
#include "format/gguf.h"
#include "model/model.h"
#include "tensor/float16.h"

using namespace strata;
namespace fs = std::filesystem;

namespace {

constexpr int64_t kEmbd = 1024, kLayers = 4, kVocab = 512, kExperts = 32, kUsed = 2, kFfExpert = 1024;

uint64_t xorshift64(uint64_t& s) {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    return s;
}

// Random Q8_0 blocks (fp16 scale + 32 int8): weights of std ≈ 0.02, so activations stay finite.
GgufWriter::Producer random_q8_0(int64_t n_elements, uint64_t seed) {
    return [n_elements, seed](std::vector<uint8_t>& out) {
        uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
        const uint16_t scale = fp32_to_fp16(0.02f / 73.0f);  // int8 uniform on ±127 has std ≈ 73
        for (int64_t b = 0; b < n_elements / 32; ++b) {
            out.push_back(static_cast<uint8_t>(scale & 0xff));
            out.push_back(static_cast<uint8_t>(scale >> 8));
            for (int i = 0; i < 32; ++i) {
                out.push_back(static_cast<uint8_t>(static_cast<int8_t>(static_cast<int>(xorshift64(s) % 255) - 127)));
            }
        }
    };
}

// A llama-arch model; n_expert 0 makes dense layers of width n_ff, else n_expert experts of n_ff.
fs::path write_model(const std::string& name, int64_t n_ff, int64_t n_expert) {
    GgufWriter w;
    w.set_string("general.architecture", "llama");
    w.set_u32("llama.block_count", kLayers);
    w.set_u32("llama.embedding_length", kEmbd);
    w.set_u32("llama.feed_forward_length", static_cast<uint32_t>(n_ff));
    w.set_u32("llama.attention.head_count", 16);
    w.set_u32("llama.attention.head_count_kv", 4);
    w.set_u32("llama.context_length", 256);
    if (n_expert > 0) {
        w.set_u32("llama.expert_count", static_cast<uint32_t>(n_expert));
        w.set_u32("llama.expert_used_count", kUsed);
    }
    uint64_t seed = 0;
    auto q8 = [&](const std::string& tensor, std::vector<int64_t> ne) {
        int64_t n = 1;
        for (int64_t d : ne) n *= d;
        w.add_tensor(tensor, GgmlType::Q8_0, ne, random_q8_0(n, ++seed));
    };
    auto ones = std::make_shared<std::vector<float>>(kEmbd, 1.0f);
    auto router = std::make_shared<std::vector<float>>(kEmbd * kExperts);
    uint64_t s = 12345;
    for (float& v : *router) v = static_cast<float>(xorshift64(s) % 1000) / 1000.0f - 0.5f;
    q8("token_embd.weight", {kEmbd, kVocab});
    q8("output.weight", {kEmbd, kVocab});
    w.add_tensor("output_norm.weight", GgmlType::F32, {kEmbd}, ones->data());
    for (int64_t l = 0; l < kLayers; ++l) {
        const std::string p = "blk." + std::to_string(l) + ".";
        w.add_tensor(p + "attn_norm.weight", GgmlType::F32, {kEmbd}, ones->data());
        w.add_tensor(p + "ffn_norm.weight", GgmlType::F32, {kEmbd}, ones->data());
        q8(p + "attn_q.weight", {kEmbd, kEmbd});
        q8(p + "attn_k.weight", {kEmbd, kEmbd / 4});
        q8(p + "attn_v.weight", {kEmbd, kEmbd / 4});
        q8(p + "attn_output.weight", {kEmbd, kEmbd});
        if (n_expert > 0) {
            w.add_tensor(p + "ffn_gate_inp.weight", GgmlType::F32, {kEmbd, n_expert}, router->data());
            q8(p + "ffn_gate_exps.weight", {kEmbd, n_ff, n_expert});
            q8(p + "ffn_up_exps.weight", {kEmbd, n_ff, n_expert});
            q8(p + "ffn_down_exps.weight", {n_ff, kEmbd, n_expert});
        } else {
            q8(p + "ffn_gate.weight", {kEmbd, n_ff});
            q8(p + "ffn_up.weight", {kEmbd, n_ff});
            q8(p + "ffn_down.weight", {n_ff, kEmbd});
        }
    }
    const fs::path path = fs::temp_directory_path() / name;
    w.write(path.string());  // the shared vectors live until here
    return path;
}

struct Timing {
    double ms_per_token = 0;
    std::string usage;
};

// Prefill 16 tokens, then the mean of 32 single-token decode steps (after 2 warm-up steps).
Timing time_decode(const fs::path& path, int threads) {
    auto file = GgufFile::open(path.string());
    auto backend = make_cpu_backend(threads);
    auto model = load_model(*file, *backend);
    auto state = model->new_state(128);
    std::vector<int32_t> prompt(16);
    for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<int32_t>(i * 37 % kVocab);
    std::vector<float> logits;
    model->forward(*state, prompt, Logits::Last, logits);
    int32_t next = 1;
    for (int i = 0; i < 2; ++i) model->forward(*state, std::span<const int32_t>(&next, 1), Logits::Last, logits);
    const auto t0 = std::chrono::steady_clock::now();
    const int n = 32;
    for (int i = 0; i < n; ++i) {
        next = static_cast<int32_t>((next * 31 + 7) % kVocab);
        model->forward(*state, std::span<const int32_t>(&next, 1), Logits::Last, logits);
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return {1000.0 * s / n, model->usage_report()};
}

}  // namespace

int main(int argc, char** argv) {
    const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
    const fs::path moe = write_model("bench-moe.gguf", kFfExpert, kExperts);
    const fs::path active = write_model("bench-dense-active.gguf", kUsed * kFfExpert, 0);
    const fs::path total = write_model("bench-dense-total.gguf", kExperts * kFfExpert, 0);
    const Timing t_moe = time_decode(moe, threads);
    const Timing t_active = time_decode(active, threads);
    const Timing t_total = time_decode(total, threads);
    std::printf("d=%lld, %lld layers, Q8_0, %d threads; FFN width per token %lld\n", static_cast<long long>(kEmbd),
                static_cast<long long>(kLayers),
                threads, static_cast<long long>(kUsed * kFfExpert));
    std::printf("MoE %lld experts top-%lld: %.2f ms/token\n", static_cast<long long>(kExperts), static_cast<long long>(kUsed),
                t_moe.ms_per_token);
    std::printf("dense, active size (n_ff %lld): %.2f ms/token (MoE / this = %.2f)\n",
                static_cast<long long>(kUsed * kFfExpert), t_active.ms_per_token, t_moe.ms_per_token / t_active.ms_per_token);
    std::printf("dense, total size (n_ff %lld): %.2f ms/token (MoE / this = %.2f)\n",
                static_cast<long long>(kExperts * kFfExpert), t_total.ms_per_token, t_moe.ms_per_token / t_total.ms_per_token);
    std::printf("%s\n", t_moe.usage.c_str());
    for (const fs::path& p : {moe, active, total}) fs::remove(p);
}
