// One table per architecture: config.json → GGUF keys (in the order llama.cpp's converter writes
// them; general.file_type where it puts it) and HF tensor names → GGUF names. Rows shared by
// several families (the decoder skeleton, attention, dense and expert FFNs, the Mamba mixer) are
// named groups, so a table reads as the list of parts its model is made of.
#include <cmath>
#include <limits>

#include "convert/hf_convert.h"
#include "util/error.h"

namespace strata {

namespace {

using Keys = HfConfig::Keys;
using R = Transform;

// Rules for values read from config.json -------------------------------------------------------

// Counts come through HfConfig::integer*, which has checked them against their key's range.
MetaRule u32_or_absent(const char* key, Keys names) {
    return {key, [names](const HfConfig& c) -> MetaValue {
                auto v = c.integer_if(names);
                if (!v) return {};
                return static_cast<uint32_t>(*v);
            }};
}
MetaRule u32_required(const char* key, Keys names) {
    return {key, [names](const HfConfig& c) -> MetaValue { return static_cast<uint32_t>(c.integer(names)); }};
}
MetaRule u32_or(const char* key, Keys names, uint32_t fallback) {
    return {key, [names, fallback](const HfConfig& c) -> MetaValue {
                return static_cast<uint32_t>(c.integer_or(names, fallback));
            }};
}
// A float the model divides by or raises to a power (epsilons, rope bases, scaling factors):
// positive and finite as a float32, else an Error naming the file and the key.
float positive_f32(const HfConfig& c, const Keys& names, double v) {
    if (!(v > 0) || v > std::numeric_limits<float>::max() || !(static_cast<float>(v) > 0)) {
        fail(c.path(), ": ", names.front(), " is ", v, ", expected a positive number within float32's range");
    }
    return static_cast<float>(v);
}
MetaRule f32_or_absent(const char* key, Keys names) {
    return {key, [names](const HfConfig& c) -> MetaValue {
                auto v = c.number(names);
                if (!v) return {};
                return positive_f32(c, names, *v);
            }};
}
MetaRule f32_or(const char* key, Keys names, double fallback) {
    return {key, [names, fallback](const HfConfig& c) -> MetaValue {
                return positive_f32(c, names, c.number(names).value_or(fallback));
            }};
}
// A count worked out from others (expand × d_model, d_inner / head_dim), checked as the GGUF
// loader will check it.
uint32_t derived_count(const HfConfig& c, const char* what, int64_t v, int64_t min, int64_t max) {
    if (v < min || v > max) fail(c.path(), ": ", what, " is ", v, ", expected ", min, " to ", max);
    return static_cast<uint32_t>(v);
}
constexpr int64_t kMaxWidth = int64_t{1} << 24;  // the GGUF loader's limit on derived widths
MetaRule u32_const(const char* key, uint32_t v) {
    return {key, [v](const HfConfig&) -> MetaValue { return v; }};
}
// write_model fills in the real value; the placeholder fixes the key's position.
const MetaRule kFileType = u32_const("general.file_type", 0);

const Keys kBlockCount = {"n_layers", "num_hidden_layers", "n_layer", "num_layers"};
const Keys kEmbd = {"hidden_size", "n_embd", "dim", "d_model", "mamba_d_model"};

// The scaling block of the rope: transformers 5 keeps it in rope_parameters, older configs in
// rope_scaling. Only linear scaling has a GGUF form without extra tensors.
std::string rope_scaling_type(const HfConfig& c) {
    for (const char* block : {"rope_parameters", "rope_scaling"}) {
        const Json* r = c.find(block);
        if (!r || !r->is_object()) continue;
        const Json* t = r->find("rope_type");
        if (!t) t = r->find("type");
        const std::string type = t && t->is_string() ? t->as_string() : "default";
        if (type == "default") return "";
        if (type != "linear") {
            fail(c.path(), ": ", block, " type '", type,
                 "' is not supported by strata convert (supported: default, linear)");
        }
        return type;
    }
    return "";
}

double rope_scaling_factor(const HfConfig& c) {
    for (const char* block : {"rope_parameters", "rope_scaling"}) {
        const Json* r = c.find(block);
        const Json* f = r && r->is_object() ? r->find("factor") : nullptr;
        if (f && f->is_number()) return f->as_number();
        if (f) fail(c.path(), ": ", block, ".factor is not a number");
    }
    fail(c.path(), ": linear rope scaling without a \"factor\"");
}

// TextModel.set_gguf_parameters: the keys every transformer gets, each when config.json has it.
std::vector<MetaRule> text_model_keys() {
    return {
        u32_required("block_count", kBlockCount),
        u32_or_absent("context_length", {"max_position_embeddings", "n_ctx", "n_positions", "max_length"}),
        u32_or_absent("embedding_length", {"hidden_size", "n_embd", "dim"}),
        u32_or_absent("feed_forward_length", {"intermediate_size", "n_inner", "hidden_dim"}),
        u32_or_absent("attention.head_count", {"num_attention_heads", "n_head", "n_heads"}),
        u32_or_absent("attention.head_count_kv", {"num_key_value_heads", "n_kv_heads"}),
        {"rope.freq_base",
         [](const HfConfig& c) -> MetaValue {
             auto theta = c.rope_theta();
             if (!theta) return {};
             return positive_f32(c, {"rope_theta"}, *theta);
         }},
        f32_or_absent("attention.layer_norm_rms_epsilon", {"rms_norm_eps", "norm_eps"}),
        f32_or_absent("attention.layer_norm_epsilon", {"layer_norm_eps", "layer_norm_epsilon", "norm_epsilon"}),
        u32_or_absent("expert_count", {"num_local_experts", "num_experts"}),
        u32_or_absent("expert_used_count", {"num_experts_per_tok", "num_experts_per_token"}),
        u32_or_absent("attention.key_length", {"head_dim"}),
        u32_or_absent("attention.value_length", {"head_dim"}),
        kFileType,
    };
}

std::vector<MetaRule> rope_scaling_keys() {
    return {
        {"rope.scaling.type",
         [](const HfConfig& c) -> MetaValue {
             std::string t = rope_scaling_type(c);
             if (t.empty()) return {};
             return t;
         }},
        {"rope.scaling.factor",
         [](const HfConfig& c) -> MetaValue {
             if (rope_scaling_type(c).empty()) return {};
             return positive_f32(c, {"rope_scaling.factor"}, rope_scaling_factor(c));
         }},
    };
}

std::vector<MetaRule> llama_keys() {
    std::vector<MetaRule> k = text_model_keys();
    k.push_back(u32_or_absent("vocab_size", {"vocab_size"}));
    k.push_back({"rope.dimension_count", [](const HfConfig& c) -> MetaValue {
                     if (auto head_dim = c.integer_if({"head_dim"})) return static_cast<uint32_t>(*head_dim);
                     // Both counts are ≥ 1 (their ranges), so the quotient is defined.
                     return derived_count(c, "hidden_size / num_attention_heads",
                                          c.integer(kEmbd) / c.integer({"num_attention_heads"}), 2, kMaxWidth);
                 }});
    for (MetaRule& r : rope_scaling_keys()) k.push_back(std::move(r));
    return k;
}

std::vector<MetaRule> qwen2_keys() {
    std::vector<MetaRule> k = text_model_keys();
    for (MetaRule& r : rope_scaling_keys()) k.push_back(std::move(r));
    return k;
}

std::vector<MetaRule> qwen2moe_keys() {
    std::vector<MetaRule> k = qwen2_keys();
    k.push_back(u32_or_absent("expert_feed_forward_length", {"moe_intermediate_size"}));
    k.push_back(u32_or_absent("expert_shared_feed_forward_length", {"shared_expert_intermediate_size"}));
    return k;
}

int64_t d_model(const HfConfig& c) { return c.integer(kEmbd); }

// Mamba's dt_rank "auto" is ceil(d_model / 16).
MetaRule dt_rank_key(Keys names) {
    return {"ssm.time_step_rank", [names](const HfConfig& c) -> MetaValue {
                return static_cast<uint32_t>(c.integer_or(names, (d_model(c) + 15) / 16));
            }};
}

std::vector<MetaRule> mamba_keys() {
    return {
        u32_const("context_length", 1u << 20),  // no limit of its own; llama.cpp writes 2^20
        u32_required("embedding_length", kEmbd),
        u32_const("feed_forward_length", 0),
        u32_const("attention.head_count", 0),
        u32_required("block_count", kBlockCount),
        u32_or("ssm.conv_kernel", {"conv_kernel", "d_conv"}, 4),
        {"ssm.inner_size",
         [](const HfConfig& c) -> MetaValue {
             return static_cast<uint32_t>(c.integer_or({"intermediate_size", "d_inner"}, 2 * d_model(c)));
         }},  // 2 × d_model ≤ 2^21: inside the loader's limit
        u32_or("ssm.state_size", {"state_size", "d_state"}, 16),
        dt_rank_key({"time_step_rank", "dt_rank"}),
        f32_or("attention.layer_norm_rms_epsilon", {"layer_norm_epsilon", "rms_norm_eps"}, 1e-5),
        {"ssm.dt_b_c_rms",
         [](const HfConfig& c) -> MetaValue { return c.string_or("model_type", "") == "falcon_mamba"; }},
        kFileType,
    };
}

int64_t mamba2_d_inner(const HfConfig& c) {
    return c.integer_or({"mamba_d_ssm", "intermediate_size", "d_inner"}, c.integer_or({"expand"}, 2) * d_model(c));
}

std::vector<MetaRule> mamba2_keys() {
    return {
        u32_const("context_length", 1u << 20),
        u32_required("embedding_length", kEmbd),
        u32_const("feed_forward_length", 0),
        u32_const("attention.head_count", 0),
        u32_required("block_count", kBlockCount),
        u32_or("ssm.conv_kernel", {"conv_kernel", "d_conv"}, 4),
        {"ssm.inner_size",
         [](const HfConfig& c) -> MetaValue {
             return derived_count(c, "the SSM inner size (expand × hidden_size)", mamba2_d_inner(c), 1, kMaxWidth);
         }},
        u32_or("ssm.state_size", {"state_size", "d_state"}, 128),
        // Mamba-2 has one dt per head: the "rank" is the head count.
        {"ssm.time_step_rank",
         [](const HfConfig& c) -> MetaValue {
             const int64_t d_inner = mamba2_d_inner(c), head_dim = c.integer_or({"mamba_d_head", "head_dim"}, 64);
             if (d_inner % head_dim != 0) {
                 fail(c.path(), ": the SSM inner size ", d_inner, " is not a multiple of head_dim ", head_dim);
             }
             return derived_count(c, "the SSM head count (inner size / head_dim)", d_inner / head_dim, 1, kMaxWidth);
         }},
        u32_or("ssm.group_count", {"n_groups", "num_groups"}, 1),
        f32_or("attention.layer_norm_rms_epsilon", {"layer_norm_epsilon", "rms_norm_eps"}, 1e-5),
        kFileType,
    };
}

std::vector<MetaRule> jamba_keys() {
    return {
        u32_required("block_count", kBlockCount),
        u32_required("context_length", {"max_position_embeddings", "n_ctx"}),
        u32_required("embedding_length", kEmbd),
        u32_required("feed_forward_length", {"intermediate_size"}),
        u32_required("attention.head_count", {"num_attention_heads"}),
        // Attention only every attn_layer_period layers from attn_layer_offset; the other layers
        // are Mamba and have no KV heads.
        {"attention.head_count_kv",
         [](const HfConfig& c) -> MetaValue {
             const int64_t n_layer = c.integer(kBlockCount), n_kv = c.integer({"num_key_value_heads"});
             const int64_t offset = c.integer({"attn_layer_offset"}), period = c.integer({"attn_layer_period"});
             if (offset >= n_layer) {
                 fail(c.path(), ": attn_layer_offset is ", offset, ", expected a layer below num_hidden_layers (",
                      n_layer, ")");
             }
             std::vector<int32_t> v(static_cast<size_t>(n_layer), 0);
             for (int64_t i = offset; i < n_layer; ++i) {
                 v[static_cast<size_t>(i)] = (i - offset) % period == 0 ? static_cast<int32_t>(n_kv) : 0;
             }
             return v;
         }},
        u32_or("ssm.conv_kernel", {"mamba_d_conv"}, 4),
        {"ssm.inner_size",
         [](const HfConfig& c) -> MetaValue {
             return derived_count(c, "the SSM inner size (mamba_expand × hidden_size)",
                                  c.integer({"mamba_expand"}) * d_model(c), 1, kMaxWidth);
         }},
        u32_or("ssm.state_size", {"mamba_d_state"}, 16),
        dt_rank_key({"mamba_dt_rank"}),
        f32_or("attention.layer_norm_rms_epsilon", {"layer_norm_epsilon", "rms_norm_eps"}, 1e-6),
        u32_required("expert_count", {"num_experts"}),
        u32_required("expert_used_count", {"num_experts_per_tok"}),
        kFileType,
    };
}

// Tensor names ---------------------------------------------------------------------------------

std::vector<TensorRule> join(std::initializer_list<std::vector<TensorRule>> groups) {
    std::vector<TensorRule> all;
    for (const auto& g : groups) all.insert(all.end(), g.begin(), g.end());
    return all;
}

const std::vector<TensorRule> kDecoder = {
    {"model.embed_tokens.weight", "token_embd.weight"},
    {"model.norm.weight", "output_norm.weight"},
    {"lm_head.weight", "output.weight"},
    {"model.layers.{bid}.input_layernorm.weight", "blk.{bid}.attn_norm.weight"},
    {"model.layers.{bid}.post_attention_layernorm.weight", "blk.{bid}.ffn_norm.weight"},
};

// Llama-family checkpoints rotate halves of each head (NeoX order); GGUF's llama rotates pairs,
// so Q and K rows are regrouped here and the model runs the pair rope.
const std::vector<TensorRule> kLlamaAttention = {
    {"model.layers.{bid}.self_attn.q_proj.weight", "blk.{bid}.attn_q.weight", R::PermuteQ},
    {"model.layers.{bid}.self_attn.q_proj.bias", "blk.{bid}.attn_q.bias", R::PermuteQ},
    {"model.layers.{bid}.self_attn.k_proj.weight", "blk.{bid}.attn_k.weight", R::PermuteK},
    {"model.layers.{bid}.self_attn.k_proj.bias", "blk.{bid}.attn_k.bias", R::PermuteK},
    {"model.layers.{bid}.self_attn.v_proj.weight", "blk.{bid}.attn_v.weight"},
    {"model.layers.{bid}.self_attn.v_proj.bias", "blk.{bid}.attn_v.bias"},
    {"model.layers.{bid}.self_attn.o_proj.weight", "blk.{bid}.attn_output.weight"},
};

// Qwen2 and Jamba keep the checkpoint's order (NeoX rope, or no rope at all).
const std::vector<TensorRule> kPlainAttention = {
    {"model.layers.{bid}.self_attn.q_proj.weight", "blk.{bid}.attn_q.weight"},
    {"model.layers.{bid}.self_attn.q_proj.bias", "blk.{bid}.attn_q.bias"},
    {"model.layers.{bid}.self_attn.k_proj.weight", "blk.{bid}.attn_k.weight"},
    {"model.layers.{bid}.self_attn.k_proj.bias", "blk.{bid}.attn_k.bias"},
    {"model.layers.{bid}.self_attn.v_proj.weight", "blk.{bid}.attn_v.weight"},
    {"model.layers.{bid}.self_attn.v_proj.bias", "blk.{bid}.attn_v.bias"},
    {"model.layers.{bid}.self_attn.o_proj.weight", "blk.{bid}.attn_output.weight"},
};

const std::vector<TensorRule> kDenseFfn = {
    {"model.layers.{bid}.mlp.gate_proj.weight", "blk.{bid}.ffn_gate.weight"},
    {"model.layers.{bid}.mlp.up_proj.weight", "blk.{bid}.ffn_up.weight"},
    {"model.layers.{bid}.mlp.down_proj.weight", "blk.{bid}.ffn_down.weight"},
};

// Router and experts under mlp.* (Qwen2-MoE, transformers-5 Mixtral). transformers 5 may also
// keep a block's experts fused: gate_up_proj [E, 2·ff, d] and down_proj [E, d, ff].
const std::vector<TensorRule> kMlpExperts = {
    {"model.layers.{bid}.mlp.gate.weight", "blk.{bid}.ffn_gate_inp.weight"},
    {"model.layers.{bid}.mlp.experts.gate_up_proj", "blk.{bid}.ffn_gate_exps.weight", R::GateHalf},
    {"model.layers.{bid}.mlp.experts.gate_up_proj", "blk.{bid}.ffn_up_exps.weight", R::UpHalf},
    {"model.layers.{bid}.mlp.experts.down_proj", "blk.{bid}.ffn_down_exps.weight"},
};

const std::vector<TensorRule> kMixtralExperts = {
    {"model.layers.{bid}.block_sparse_moe.gate.weight", "blk.{bid}.ffn_gate_inp.weight"},
    {"model.layers.{bid}.block_sparse_moe.experts.{xid}.w1.weight", "blk.{bid}.ffn_gate_exps.weight"},
    {"model.layers.{bid}.block_sparse_moe.experts.{xid}.w2.weight", "blk.{bid}.ffn_down_exps.weight"},
    {"model.layers.{bid}.block_sparse_moe.experts.{xid}.w3.weight", "blk.{bid}.ffn_up_exps.weight"},
};

const std::vector<TensorRule> kQwenMoe = {
    {"model.layers.{bid}.mlp.experts.{xid}.gate_proj.weight", "blk.{bid}.ffn_gate_exps.weight"},
    {"model.layers.{bid}.mlp.experts.{xid}.up_proj.weight", "blk.{bid}.ffn_up_exps.weight"},
    {"model.layers.{bid}.mlp.experts.{xid}.down_proj.weight", "blk.{bid}.ffn_down_exps.weight"},
    {"model.layers.{bid}.mlp.shared_expert.gate_proj.weight", "blk.{bid}.ffn_gate_shexp.weight"},
    {"model.layers.{bid}.mlp.shared_expert.up_proj.weight", "blk.{bid}.ffn_up_shexp.weight"},
    {"model.layers.{bid}.mlp.shared_expert.down_proj.weight", "blk.{bid}.ffn_down_shexp.weight"},
    {"model.layers.{bid}.mlp.shared_expert_gate.weight", "blk.{bid}.ffn_gate_inp_shexp.weight"},
};

const std::vector<TensorRule> kMambaBackbone = {
    {"backbone.embeddings.weight", "token_embd.weight"},
    {"backbone.embedding.weight", "token_embd.weight"},
    {"backbone.norm_f.weight", "output_norm.weight"},
    {"lm_head.weight", "output.weight"},
    {"backbone.layers.{bid}.norm.weight", "blk.{bid}.attn_norm.weight"},
    {"backbone.layers.{bid}.mixer.in_proj.weight", "blk.{bid}.ssm_in.weight"},
    {"backbone.layers.{bid}.mixer.conv1d.weight", "blk.{bid}.ssm_conv1d.weight", R::Squeeze},
    {"backbone.layers.{bid}.mixer.conv1d.bias", "blk.{bid}.ssm_conv1d.bias"},
    {"backbone.layers.{bid}.mixer.out_proj.weight", "blk.{bid}.ssm_out.weight"},
};

const std::vector<TensorRule> kMamba1Mixer = {
    {"backbone.layers.{bid}.mixer.x_proj.weight", "blk.{bid}.ssm_x.weight"},
    {"backbone.layers.{bid}.mixer.dt_proj.weight", "blk.{bid}.ssm_dt.weight"},
    {"backbone.layers.{bid}.mixer.dt_proj.bias", "blk.{bid}.ssm_dt.bias"},
    {"backbone.layers.{bid}.mixer.A_log", "blk.{bid}.ssm_a", R::NegExp},
    {"backbone.layers.{bid}.mixer.D", "blk.{bid}.ssm_d"},
};

// Mamba-2: A and D are per head; llama.cpp stores them as [1, n_head] to broadcast like Mamba-1's.
const std::vector<TensorRule> kMamba2Mixer = {
    {"backbone.layers.{bid}.mixer.dt_bias", "blk.{bid}.ssm_dt.bias"},
    {"backbone.layers.{bid}.mixer.A_log", "blk.{bid}.ssm_a", R::NegExpColumn},
    {"backbone.layers.{bid}.mixer.D", "blk.{bid}.ssm_d", R::Column},
    {"backbone.layers.{bid}.mixer.norm.weight", "blk.{bid}.ssm_norm.weight", R::GroupRows},
};

const std::vector<TensorRule> kJamba = {
    {"model.embed_tokens.weight", "token_embd.weight"},
    {"model.final_layernorm.weight", "output_norm.weight"},
    {"lm_head.weight", "output.weight"},
    {"model.layers.{bid}.input_layernorm.weight", "blk.{bid}.attn_norm.weight"},
    {"model.layers.{bid}.pre_ff_layernorm.weight", "blk.{bid}.ffn_norm.weight"},
    {"model.layers.{bid}.feed_forward.gate_proj.weight", "blk.{bid}.ffn_gate.weight"},
    {"model.layers.{bid}.feed_forward.up_proj.weight", "blk.{bid}.ffn_up.weight"},
    {"model.layers.{bid}.feed_forward.down_proj.weight", "blk.{bid}.ffn_down.weight"},
    {"model.layers.{bid}.feed_forward.router.weight", "blk.{bid}.ffn_gate_inp.weight"},
    {"model.layers.{bid}.feed_forward.experts.{xid}.gate_proj.weight", "blk.{bid}.ffn_gate_exps.weight"},
    {"model.layers.{bid}.feed_forward.experts.{xid}.up_proj.weight", "blk.{bid}.ffn_up_exps.weight"},
    {"model.layers.{bid}.feed_forward.experts.{xid}.down_proj.weight", "blk.{bid}.ffn_down_exps.weight"},
    {"model.layers.{bid}.mamba.in_proj.weight", "blk.{bid}.ssm_in.weight"},
    {"model.layers.{bid}.mamba.conv1d.weight", "blk.{bid}.ssm_conv1d.weight", R::Squeeze},
    {"model.layers.{bid}.mamba.conv1d.bias", "blk.{bid}.ssm_conv1d.bias"},
    {"model.layers.{bid}.mamba.x_proj.weight", "blk.{bid}.ssm_x.weight"},
    {"model.layers.{bid}.mamba.dt_proj.weight", "blk.{bid}.ssm_dt.weight"},
    {"model.layers.{bid}.mamba.dt_proj.bias", "blk.{bid}.ssm_dt.bias"},
    {"model.layers.{bid}.mamba.A_log", "blk.{bid}.ssm_a", R::NegExp},
    {"model.layers.{bid}.mamba.D", "blk.{bid}.ssm_d"},
    {"model.layers.{bid}.mamba.out_proj.weight", "blk.{bid}.ssm_out.weight"},
    {"model.layers.{bid}.mamba.dt_layernorm.weight", "blk.{bid}.ssm_dt_norm.weight"},
    {"model.layers.{bid}.mamba.b_layernorm.weight", "blk.{bid}.ssm_b_norm.weight"},
    {"model.layers.{bid}.mamba.c_layernorm.weight", "blk.{bid}.ssm_c_norm.weight"},
};

const std::vector<HfArchitecture>& architectures() {
    static const std::vector<HfArchitecture> table = {
        {"LlamaForCausalLM", "llama", llama_keys(), join({kDecoder, kLlamaAttention, kDenseFfn})},
        {"MistralForCausalLM", "llama", llama_keys(), join({kDecoder, kLlamaAttention, kDenseFfn})},
        {"MixtralForCausalLM", "llama", llama_keys(), join({kDecoder, kLlamaAttention, kMixtralExperts, kMlpExperts})},
        {"Qwen2ForCausalLM", "qwen2", qwen2_keys(), join({kDecoder, kPlainAttention, kDenseFfn})},
        {"Qwen2MoeForCausalLM", "qwen2moe", qwen2moe_keys(), join({kDecoder, kPlainAttention, kQwenMoe, kMlpExperts})},
        {"MambaForCausalLM", "mamba", mamba_keys(), join({kMambaBackbone, kMamba1Mixer})},
        {"Mamba2ForCausalLM", "mamba2", mamba2_keys(), join({kMambaBackbone, kMamba2Mixer})},
        {"JambaForCausalLM", "jamba", jamba_keys(), join({kJamba, kPlainAttention})},
    };
    return table;
}

}  // namespace

const HfArchitecture* find_hf_architecture(const std::string& hf_class) {
    for (const HfArchitecture& a : architectures()) {
        if (hf_class == a.hf_class) return &a;
    }
    return nullptr;
}

std::string hf_architecture_names() {
    std::string s;
    for (const HfArchitecture& a : architectures()) s += (s.empty() ? "" : ", ") + std::string(a.hf_class);
    return s;
}

}  // namespace strata
