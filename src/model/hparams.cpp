#include "model/hparams.h"

#include <optional>

#include "util/error.h"

namespace strata {

namespace {

// Limits far above any published model (embeddings of 2^14, vocabularies of 2^18, 256 experts,
// conv kernels of 4): a value beyond them is a corrupt file, not a big model. They keep every
// count inside int and every product of two dimensions far inside int64.
constexpr int64_t kMaxWidth = int64_t{1} << 24;     // embedding, feed-forward, SSM inner size, vocabulary
constexpr int64_t kMaxHeads = int64_t{1} << 20;     // attention heads, SSM heads and groups
constexpr int64_t kMaxHeadSize = int64_t{1} << 16;  // key/value length per head, SSM state size
constexpr int64_t kMaxConvKernel = int64_t{1} << 10;
constexpr int64_t kMaxLayers = int64_t{1} << 16;
constexpr int64_t kMaxExperts = int64_t{1} << 12;
constexpr int64_t kMaxContext = int64_t{1} << 30;

// An integer key in [min, max]; `fallback` when the key is absent (none: the key is required).
// `max_name` says where max comes from ("llama.expert_count") when it is not a fixed limit.
int64_t read_count(const GgufFile& f, const std::string& key, int64_t min, int64_t max,
                   std::optional<int64_t> fallback = std::nullopt, const std::string& max_name = "") {
    const bool present = f.has(key) || !fallback;
    const int64_t v = present ? f.get_i64(key) : *fallback;
    if (v >= min && v <= max) return v;
    const std::string upper = max_name.empty() ? std::to_string(max) : max_name + " (" + std::to_string(max) + ")";
    const std::string range = std::to_string(min) + " to " + upper;
    if (present) fail(f.path(), ": ", key, " is ", v, ", expected ", range);
    fail(f.path(), ": ", key, " is missing, and its default ", v, " is outside ", range);
}

// A key that is either one number for every layer or an array with one per layer, each in
// [min, max].
std::vector<int64_t> read_per_layer(const GgufFile& f, const std::string& key, int n_layer, int64_t min, int64_t max) {
    const GgufValue* v = f.find(key);
    if (!v || v->type != GgufType::ARRAY) {
        return std::vector<int64_t>(static_cast<size_t>(n_layer), read_count(f, key, min, max));
    }
    std::vector<int64_t> values = f.get_int_array(key);
    if (static_cast<int>(values.size()) != n_layer) {
        fail(f.path(), ": '", key, "' has ", values.size(), " entries, expected one per layer (", n_layer, ")");
    }
    for (size_t il = 0; il < values.size(); ++il) {
        if (values[il] < min || values[il] > max) {
            fail(f.path(), ": ", key, " is ", values[il], " for layer ", il, ", expected ", min, " to ", max);
        }
    }
    return values;
}

// The vocabulary size: <arch>.vocab_size, else the tokenizer's, else token_embd's rows.
int64_t vocab_size(const GgufFile& f, const std::string& arch) {
    const std::string key = arch + ".vocab_size";
    if (f.has(key)) return read_count(f, key, 1, kMaxWidth);
    const bool from_tokens = f.has("tokenizer.ggml.tokens");
    const int64_t n = from_tokens ? static_cast<int64_t>(f.find("tokenizer.ggml.tokens")->count)
                                  : f.tensor("token_embd.weight").ne[1];
    if (n < 1 || n > kMaxWidth) {
        fail(f.path(), ": ", key, " is missing, and ", from_tokens ? "tokenizer.ggml.tokens" : "token_embd.weight",
             " gives ", n, " tokens, expected 1 to ", kMaxWidth);
    }
    return n;
}

// The expert keys, shared by the Transformer family and Jamba. A layer with a router runs the
// top expert_used_count of expert_count experts, so 1 ≤ k ≤ n: route_tokens sorts n
// probabilities and takes the first k. With expert_count 0 the file is dense and
// expert_used_count is not read (a router there fails in MoeBlock::load, naming the tensor).
void read_experts(const GgufFile& f, TransformerHparams& h) {
    h.n_expert = static_cast<int>(read_count(f, h.key("expert_count"), 0, kMaxExperts, 0));
    if (h.n_expert > 0) {
        h.n_expert_used = static_cast<int>(
            read_count(f, h.key("expert_used_count"), 1, h.n_expert, std::nullopt, h.key("expert_count")));
    }
    // llama.cpp's Mixtral files give the expert width as feed_forward_length.
    h.n_ff_exp = read_count(f, h.key("expert_feed_forward_length"), h.n_expert > 0 ? 1 : 0, kMaxWidth, h.n_ff);
    h.n_ff_shexp = read_count(f, h.key("expert_shared_feed_forward_length"), 0, kMaxWidth, h.n_ff_exp);
}

}  // namespace

TransformerHparams TransformerHparams::from_gguf(const GgufFile& f, bool rope_neox) {
    TransformerHparams h;
    h.arch = f.get_string("general.architecture");
    h.n_embd = read_count(f, h.key("embedding_length"), 1, kMaxWidth);
    h.n_layer = static_cast<int>(read_count(f, h.key("block_count"), 1, kMaxLayers));
    h.n_ff = read_count(f, h.key("feed_forward_length"), 0, kMaxWidth, 0);
    h.n_head = static_cast<int>(read_count(f, h.key("attention.head_count"), 1, kMaxHeads));
    h.n_head_kv = static_cast<int>(
        read_count(f, h.key("attention.head_count_kv"), 1, h.n_head, h.n_head, h.key("attention.head_count")));
    if (h.n_head % h.n_head_kv != 0) {
        fail(f.path(), ": ", h.key("attention.head_count"), " is ", h.n_head, ", expected a multiple of ",
             h.key("attention.head_count_kv"), " (", h.n_head_kv, ")");
    }
    const int64_t default_head_dim = h.n_embd / h.n_head;
    h.head_dim_k = static_cast<int>(read_count(f, h.key("attention.key_length"), 1, kMaxHeadSize, default_head_dim));
    h.head_dim_v = static_cast<int>(read_count(f, h.key("attention.value_length"), 1, kMaxHeadSize, default_head_dim));
    h.rms_eps = f.get_f32(h.key("attention.layer_norm_rms_epsilon"), 1e-5f);
    h.n_ctx_train = static_cast<int>(read_count(f, h.key("context_length"), 0, kMaxContext, 2048));

    h.rope.neox = rope_neox;
    h.rope.freq_base = f.get_f32(h.key("rope.freq_base"), 10000.0f);
    h.rope.n_rot = static_cast<int>(
        read_count(f, h.key("rope.dimension_count"), 2, h.head_dim_k, h.head_dim_k, "the head size"));
    if (h.rope.n_rot % 2 != 0) {
        fail(f.path(), ": ", h.key("rope.dimension_count"), " is ", h.rope.n_rot,
             ", expected an even number (rope turns pairs)");
    }
    const std::string scaling = f.get_string(h.key("rope.scaling.type"), "none");
    if (scaling == "linear") {
        const float factor = f.get_f32(h.key("rope.scaling.factor"), 1.0f);
        if (factor <= 0) fail(f.path(), ": rope.scaling.factor must be positive, got ", factor);
        h.rope.freq_scale = 1.0f / factor;
    } else if (scaling != "none") {
        fail(f.path(), ": rope scaling '", scaling, "' is not supported yet (supported: none, linear)");
    }
    read_experts(f, h);
    h.n_vocab = vocab_size(f, h.arch);
    return h;
}

SsmHparams SsmHparams::from_gguf(const GgufFile& f, bool mamba2) {
    SsmHparams h;
    h.arch = f.get_string("general.architecture");
    h.n_embd = read_count(f, h.key("embedding_length"), 1, kMaxWidth);
    h.n_layer = static_cast<int>(read_count(f, h.key("block_count"), 1, kMaxLayers));
    h.n_ctx_train = static_cast<int>(read_count(f, h.key("context_length"), 0, kMaxContext, 0));
    h.n_vocab = vocab_size(f, h.arch);
    h.rms_eps = f.get_f32(h.key("attention.layer_norm_rms_epsilon"), 1e-5f);
    h.d_conv = static_cast<int>(read_count(f, h.key("ssm.conv_kernel"), 1, kMaxConvKernel));
    h.d_inner = read_count(f, h.key("ssm.inner_size"), 1, kMaxWidth);
    h.d_state = read_count(f, h.key("ssm.state_size"), 1, kMaxHeadSize);
    h.dt_b_c_rms = f.get_bool(h.key("ssm.dt_b_c_rms"), false);
    if (!mamba2) {
        h.dt_rank = read_count(f, h.key("ssm.time_step_rank"), 1, kMaxWidth);
        h.n_head = h.d_inner;  // every channel is its own head of one value
        h.head_dim = 1;
        return h;
    }
    h.n_group = read_count(f, h.key("ssm.group_count"), 1, kMaxHeads, 1);
    // llama.cpp writes the Mamba-2 head count as ssm.time_step_rank (attention.head_count is 0).
    h.dt_rank = read_count(f, h.key("ssm.time_step_rank"), 0, kMaxHeads, 0);
    h.n_head = h.dt_rank;
    if (h.n_head == 0) {
        const TensorView dt_bias = f.tensor_or_empty("blk.0.ssm_dt.bias");
        if (dt_bias.empty()) {
            fail(f.path(), ": ", h.key("ssm.time_step_rank"),
                 " (the SSM head count) is missing and blk.0.ssm_dt.bias is absent");
        }
        h.n_head = dt_bias.ne[0];
    }
    if (h.n_head % h.n_group != 0 || h.d_inner % h.n_head != 0) {
        fail(f.path(), ": inconsistent SSM dimensions: ", h.key("ssm.inner_size"), " ", h.d_inner,
             " must be a multiple of the head count ", h.n_head, ", itself a multiple of ", h.key("ssm.group_count"),
             " ", h.n_group);
    }
    h.head_dim = h.d_inner / h.n_head;
    return h;
}

std::vector<TransformerHparams> jamba_layer_hparams(const GgufFile& f, const SsmHparams& ssm) {
    TransformerHparams base;
    base.arch = ssm.arch;
    base.n_vocab = ssm.n_vocab;
    base.n_embd = ssm.n_embd;
    base.n_layer = ssm.n_layer;
    base.rms_eps = ssm.rms_eps;
    base.n_ctx_train = ssm.n_ctx_train;
    base.n_ff = read_count(f, base.key("feed_forward_length"), 1, kMaxWidth);
    base.rope.n_rot = 0;  // Jamba's attention has no positional encoding
    read_experts(f, base);

    const std::string head_key = base.key("attention.head_count"), kv_key = base.key("attention.head_count_kv");
    const std::vector<int64_t> n_head = read_per_layer(f, head_key, ssm.n_layer, 0, kMaxHeads);
    const std::vector<int64_t> n_head_kv = read_per_layer(f, kv_key, ssm.n_layer, 0, kMaxHeads);
    std::vector<TransformerHparams> layers;
    for (int il = 0; il < ssm.n_layer; ++il) {
        const int64_t heads = n_head[static_cast<size_t>(il)], kv = n_head_kv[static_cast<size_t>(il)];
        if (kv > 0 && (heads == 0 || heads % kv != 0)) {
            fail(f.path(), ": ", head_key, " is ", heads, " for layer ", il, ", expected a positive multiple of ",
                 kv_key, " (", kv, ")");
        }
        if (kv > 0 && base.n_embd % heads != 0) {
            fail(f.path(), ": ", head_key, " is ", heads, " for layer ", il, ", expected a divisor of ",
                 base.key("embedding_length"), " (", base.n_embd, ")");
        }
        TransformerHparams& h = layers.emplace_back(base);
        h.n_head = static_cast<int>(heads);
        h.n_head_kv = static_cast<int>(kv);
        h.head_dim_k = h.head_dim_v = heads > 0 ? static_cast<int>(h.n_embd / heads) : 0;
    }
    return layers;
}

}  // namespace strata
