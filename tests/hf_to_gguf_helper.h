// Test-only conversion of the float32 Qwen2-MoE fixture (config.json + model.safetensors) to a
// GGUF named the way llama.cpp's convert_hf_to_gguf.py names qwen2moe tensors: llama.cpp did not
// convert this fixture, and the tests must not depend on `strata convert`. Header-only because
// the test build compiles test_*.cpp and fixed helpers only.
#pragma once

#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "format/gguf.h"
#include "test_support.h"
#include "util/error.h"
#include "util/json.h"

namespace strata::test {

// A safetensors file read whole: 8-byte little-endian header length, a JSON header
// {name: {dtype, shape, data_offsets: [begin, end)}} and the raw data after it.
class SafetensorsF32 {
public:
    explicit SafetensorsF32(const std::filesystem::path& path) : path_(path.string()), bytes_(read_bytes(path)) {
        uint64_t header_len = 0;
        if (bytes_.size() < 8) fail(path_, ": too short for a safetensors header");
        std::memcpy(&header_len, bytes_.data(), 8);
        if (header_len > bytes_.size() - 8) fail(path_, ": header length ", header_len, " past the end of the file");
        header_ = Json::parse(std::string_view(reinterpret_cast<const char*>(bytes_.data()) + 8, header_len), path_);
        data_start_ = 8 + header_len;
    }

    std::vector<std::string> names() const {
        std::vector<std::string> out;
        for (const auto& [name, info] : header_.members()) {
            if (name != "__metadata__") out.push_back(name);
        }
        return out;
    }

    // The tensor's shape in Hugging Face order (outermost first) and its float32 data.
    std::vector<int64_t> shape(const std::string& name) const {
        std::vector<int64_t> s;
        for (const Json& d : header_.at(name).at("shape").items()) s.push_back(d.as_int());
        return s;
    }
    const float* data(const std::string& name) const {
        const Json& info = header_.at(name);
        if (info.at("dtype").as_string() != "F32") fail(path_, ": tensor '", name, "' is ", info.at("dtype").as_string(), ", expected F32");
        const uint64_t begin = static_cast<uint64_t>(info.at("data_offsets")[0].as_int());
        const uint64_t end = static_cast<uint64_t>(info.at("data_offsets")[1].as_int());
        uint64_t n = 1;
        for (int64_t d : shape(name)) n *= static_cast<uint64_t>(d);
        if (end - begin != n * 4 || data_start_ + end > bytes_.size()) fail(path_, ": tensor '", name, "' has bad data_offsets");
        return reinterpret_cast<const float*>(bytes_.data() + data_start_ + begin);
    }

private:
    std::string path_;
    std::vector<uint8_t> bytes_;
    Json header_;
    size_t data_start_ = 0;
};

// Writes fixtures/hf/qwen2moe as a qwen2moe GGUF at `out`. Tensors are reversed into ggml order
// (HF [out, in] is ggml ne [in, out]); experts E of layer N are stacked into one
// [n_embd, n_ff, n_expert] tensor; Q/K are not permuted (qwen2 uses NeoX rope). The tokenizer keys
// are copied from llama-f32.gguf: all fixtures share one tokenizer.
inline void convert_qwen2moe_fixture(const std::filesystem::path& out) {
    const std::filesystem::path dir = fixture("hf/qwen2moe");
    const Json config = Json::parse(read_text(dir / "config.json"), (dir / "config.json").string());
    const SafetensorsF32 st(dir / "model.safetensors");
    const auto tokenizer_source = GgufFile::open(fixture("gguf/llama-f32.gguf").string());
    auto u32 = [&](const char* key) { return static_cast<uint32_t>(config.at(key).as_int()); };

    GgufWriter w;
    w.set_string("general.architecture", "qwen2moe");
    w.set_string("general.name", "qwen2moe fixture");
    w.set_u32("qwen2moe.block_count", u32("num_hidden_layers"));
    w.set_u32("qwen2moe.context_length", u32("max_position_embeddings"));
    w.set_u32("qwen2moe.embedding_length", u32("hidden_size"));
    w.set_u32("qwen2moe.feed_forward_length", u32("intermediate_size"));
    w.set_u32("qwen2moe.attention.head_count", u32("num_attention_heads"));
    w.set_u32("qwen2moe.attention.head_count_kv", u32("num_key_value_heads"));
    w.set_f32("qwen2moe.rope.freq_base", static_cast<float>(config.at("rope_parameters").at("rope_theta").as_number()));
    w.set_f32("qwen2moe.attention.layer_norm_rms_epsilon", static_cast<float>(config.at("rms_norm_eps").as_number()));
    w.set_u32("qwen2moe.expert_count", u32("num_experts"));
    w.set_u32("qwen2moe.expert_used_count", u32("num_experts_per_tok"));
    w.set_u32("qwen2moe.expert_feed_forward_length", u32("moe_intermediate_size"));
    w.set_u32("qwen2moe.expert_shared_feed_forward_length", u32("shared_expert_intermediate_size"));
    for (const auto& [key, value] : tokenizer_source->metadata()) {
        if (key.starts_with("tokenizer.")) w.set_value(key, value);
    }

    auto ggml_shape = [](std::vector<int64_t> s) { return std::vector<int64_t>(s.rbegin(), s.rend()); };
    const std::map<std::string, std::string> layer_names = {
        {"input_layernorm.weight", "attn_norm.weight"},
        {"post_attention_layernorm.weight", "ffn_norm.weight"},
        {"self_attn.q_proj.weight", "attn_q.weight"},
        {"self_attn.q_proj.bias", "attn_q.bias"},
        {"self_attn.k_proj.weight", "attn_k.weight"},
        {"self_attn.k_proj.bias", "attn_k.bias"},
        {"self_attn.v_proj.weight", "attn_v.weight"},
        {"self_attn.v_proj.bias", "attn_v.bias"},
        {"self_attn.o_proj.weight", "attn_output.weight"},
        {"mlp.gate.weight", "ffn_gate_inp.weight"},
        {"mlp.shared_expert.gate_proj.weight", "ffn_gate_shexp.weight"},
        {"mlp.shared_expert.up_proj.weight", "ffn_up_shexp.weight"},
        {"mlp.shared_expert.down_proj.weight", "ffn_down_shexp.weight"},
        {"mlp.shared_expert_gate.weight", "ffn_gate_inp_shexp.weight"},
    };
    const std::map<std::string, std::string> top_names = {
        {"model.embed_tokens.weight", "token_embd.weight"},
        {"model.norm.weight", "output_norm.weight"},
        {"lm_head.weight", "output.weight"},
    };
    const int64_t n_expert = config.at("num_experts").as_int();
    for (const std::string& name : st.names()) {
        if (auto it = top_names.find(name); it != top_names.end()) {
            w.add_tensor(it->second, GgmlType::F32, ggml_shape(st.shape(name)), st.data(name));
            continue;
        }
        // model.layers.N.<rest>
        const size_t n_end = name.find('.', 13);
        if (!name.starts_with("model.layers.") || n_end == std::string::npos) fail("unexpected tensor '", name, "'");
        const std::string blk = "blk." + name.substr(13, n_end - 13) + ".";
        const std::string rest = name.substr(n_end + 1);
        if (auto it = layer_names.find(rest); it != layer_names.end()) {
            w.add_tensor(blk + it->second, GgmlType::F32, ggml_shape(st.shape(name)), st.data(name));
        } else if (rest.starts_with("mlp.experts.0.")) {
            // mlp.experts.E.<proj>_proj.weight for every E, stacked along a new outermost axis.
            const std::string proj = rest.substr(14, rest.find('_', 14) - 14);
            const std::string layer_prefix = name.substr(0, n_end + 1) + "mlp.experts.";
            std::vector<int64_t> ne = ggml_shape(st.shape(name));
            ne.push_back(n_expert);
            w.add_tensor(blk + "ffn_" + proj + "_exps.weight", GgmlType::F32, ne, [&st, layer_prefix, proj, n_expert](std::vector<uint8_t>& bytes) {
                for (int64_t e = 0; e < n_expert; ++e) {
                    const std::string expert = layer_prefix + std::to_string(e) + "." + proj + "_proj.weight";
                    const auto* p = reinterpret_cast<const uint8_t*>(st.data(expert));
                    size_t n = 4;
                    for (int64_t d : st.shape(expert)) n *= static_cast<size_t>(d);
                    bytes.insert(bytes.end(), p, p + n);
                }
            });
        } else if (!rest.starts_with("mlp.experts.")) {
            fail("no GGUF name for tensor '", name, "'");
        }
    }
    w.write(out.string());
}

}  // namespace strata::test
