#include "model/hparams.h"

#include "util/error.h"

namespace strata {

TransformerHparams TransformerHparams::from_gguf(const GgufFile& f, bool rope_neox) {
    TransformerHparams h;
    h.arch = f.get_string("general.architecture");
    h.n_embd = f.get_u32(h.key("embedding_length"));
    h.n_layer = static_cast<int>(f.get_u32(h.key("block_count")));
    h.n_ff = f.get_u32(h.key("feed_forward_length"), 0);
    h.n_head = static_cast<int>(f.get_u32(h.key("attention.head_count")));
    h.n_head_kv = static_cast<int>(f.get_u32(h.key("attention.head_count_kv"), static_cast<uint32_t>(h.n_head)));
    if (h.n_head <= 0 || h.n_head_kv <= 0 || h.n_head % h.n_head_kv != 0) {
        fail(f.path(), ": attention.head_count ", h.n_head, " must be a positive multiple of head_count_kv ", h.n_head_kv);
    }
    const int default_head_dim = static_cast<int>(h.n_embd / h.n_head);
    h.head_dim_k = static_cast<int>(f.get_u32(h.key("attention.key_length"), static_cast<uint32_t>(default_head_dim)));
    h.head_dim_v = static_cast<int>(f.get_u32(h.key("attention.value_length"), static_cast<uint32_t>(default_head_dim)));
    h.rms_eps = f.get_f32(h.key("attention.layer_norm_rms_epsilon"), 1e-5f);
    h.n_ctx_train = static_cast<int>(f.get_u32(h.key("context_length"), 2048));

    h.rope.neox = rope_neox;
    h.rope.freq_base = f.get_f32(h.key("rope.freq_base"), 10000.0f);
    h.rope.n_rot = static_cast<int>(f.get_u32(h.key("rope.dimension_count"), static_cast<uint32_t>(h.head_dim_k)));
    if (h.rope.n_rot <= 0 || h.rope.n_rot > h.head_dim_k || h.rope.n_rot % 2 != 0) {
        fail(f.path(), ": rope.dimension_count ", h.rope.n_rot, " must be even and at most the head size ", h.head_dim_k);
    }
    const std::string scaling = f.get_string(h.key("rope.scaling.type"), "none");
    if (scaling == "linear") {
        const float factor = f.get_f32(h.key("rope.scaling.factor"), 1.0f);
        if (factor <= 0) fail(f.path(), ": rope.scaling.factor must be positive, got ", factor);
        h.rope.freq_scale = 1.0f / factor;
    } else if (scaling != "none") {
        fail(f.path(), ": rope scaling '", scaling, "' is not supported yet (supported: none, linear)");
    }
    h.n_expert = static_cast<int>(f.get_u32(h.key("expert_count"), 0));
    h.n_expert_used = static_cast<int>(f.get_u32(h.key("expert_used_count"), 0));
    // llama.cpp's Mixtral files give the expert width as feed_forward_length.
    h.n_ff_exp = f.get_u32(h.key("expert_feed_forward_length"), static_cast<uint32_t>(h.n_ff));
    h.n_ff_shexp = f.get_u32(h.key("expert_shared_feed_forward_length"), static_cast<uint32_t>(h.n_ff_exp));
    if (h.n_expert > 0 && (h.n_expert_used < 1 || h.n_expert_used > h.n_expert)) {
        fail(f.path(), ": ", h.key("expert_used_count"), " is ", h.n_expert_used, ", expected 1 to ",
             h.key("expert_count"), " (", h.n_expert, ")");
    }
    if (f.has(h.key("vocab_size"))) {
        h.n_vocab = f.get_u32(h.key("vocab_size"));
    } else if (f.has("tokenizer.ggml.tokens")) {
        h.n_vocab = static_cast<int64_t>(f.find("tokenizer.ggml.tokens")->count);
    } else {
        h.n_vocab = f.tensor("token_embd.weight").ne[1];
    }
    if (h.n_embd <= 0 || h.n_layer <= 0 || h.n_vocab <= 0) fail(f.path(), ": embedding length, block count and vocabulary must be positive");
    return h;
}

}  // namespace strata
