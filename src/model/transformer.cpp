#include "model/transformer.h"

#include <cmath>
#include <cstring>

#include "backend/backend.h"
#include "model/hparams.h"
#include "model/weights.h"
#include "util/error.h"

namespace strata {

namespace {

struct Layer {
    std::vector<float> attn_norm, ffn_norm;
    TensorView wq, wk, wv, wo;
    std::vector<float> bq, bk, bv;  // attention biases (qwen2); empty when absent
    TensorView ffn_gate, ffn_up, ffn_down;
};

class Transformer final : public Model {
public:
    Transformer(const GgufFile& file, Backend& backend, bool rope_neox)
        : backend_(backend), hp_(TransformerHparams::from_gguf(file, rope_neox)) {
        const WeightLoader w(file);
        const int64_t d = hp_.n_embd;
        const int64_t q_width = int64_t{hp_.n_head} * hp_.head_dim_k;
        const int64_t k_width = int64_t{hp_.n_head_kv} * hp_.head_dim_k;
        const int64_t v_width = int64_t{hp_.n_head_kv} * hp_.head_dim_v;
        const int64_t o_width = int64_t{hp_.n_head} * hp_.head_dim_v;
        if (file.find_tensor_info("blk.0.ffn_gate_inp.weight")) {
            fail(file.path(), ": mixture-of-experts layers (ffn_gate_inp) are not supported yet");
        }
        token_embd_ = w.require("token_embd.weight", {d, hp_.n_vocab});
        output_norm_ = w.require_vector("output_norm.weight", d);
        output_ = w.optional("output.weight", {d, hp_.n_vocab});
        if (output_.empty()) output_ = token_embd_;  // tied embeddings
        if (hp_.n_ff <= 0) fail(file.path(), ": missing or zero ", hp_.key("feed_forward_length"));
        rope_factors_ = w.optional_vector("rope_freqs.weight", hp_.rope.n_rot / 2);
        if (!rope_factors_.empty()) hp_.rope.freq_factors = rope_factors_.data();
        for (int i = 0; i < hp_.n_layer; ++i) {
            const std::string p = "blk." + std::to_string(i) + ".";
            Layer l;
            l.attn_norm = w.require_vector(p + "attn_norm.weight", d);
            l.wq = w.require(p + "attn_q.weight", {d, q_width});
            l.wk = w.require(p + "attn_k.weight", {d, k_width});
            l.wv = w.require(p + "attn_v.weight", {d, v_width});
            l.wo = w.require(p + "attn_output.weight", {o_width, d});
            l.bq = w.optional_vector(p + "attn_q.bias", q_width);
            l.bk = w.optional_vector(p + "attn_k.bias", k_width);
            l.bv = w.optional_vector(p + "attn_v.bias", v_width);
            l.ffn_norm = w.require_vector(p + "ffn_norm.weight", d);
            l.ffn_gate = w.require(p + "ffn_gate.weight", {d, hp_.n_ff});
            l.ffn_up = w.require(p + "ffn_up.weight", {d, hp_.n_ff});
            l.ffn_down = w.require(p + "ffn_down.weight", {hp_.n_ff, d});
            layers_.push_back(std::move(l));
        }
        info_.arch = hp_.arch;
        info_.name = file.get_string("general.name", "");
        info_.n_vocab = hp_.n_vocab;
        info_.n_embd = d;
        info_.n_layer = hp_.n_layer;
        info_.n_ctx_train = hp_.n_ctx_train;
        attn_.n_head = hp_.n_head;
        attn_.n_head_kv = hp_.n_head_kv;
        attn_.head_dim_k = hp_.head_dim_k;
        attn_.head_dim_v = hp_.head_dim_v;
        attn_.scale = 1.0f / std::sqrt(static_cast<float>(hp_.head_dim_k));
    }

    const ModelInfo& info() const override { return info_; }

    std::unique_ptr<SequenceState> new_state(int n_ctx) const override {
        LayerShape shape{int64_t{hp_.n_head_kv} * hp_.head_dim_k, int64_t{hp_.n_head_kv} * hp_.head_dim_v};
        return std::make_unique<SequenceState>(n_ctx, std::vector<LayerShape>(static_cast<size_t>(hp_.n_layer), shape));
    }

    void forward(SequenceState& state, std::span<const int32_t> tokens, Logits which,
                 std::vector<float>& logits) override {
        const int64_t n = static_cast<int64_t>(tokens.size());
        if (n == 0) fail("forward pass with no tokens");
        state.check_room(n);
        const int64_t d = hp_.n_embd, n_past = state.n_past();
        const int64_t q_width = int64_t{hp_.n_head} * hp_.head_dim_k;
        const int64_t o_width = int64_t{hp_.n_head} * hp_.head_dim_v;

        std::vector<float> x(static_cast<size_t>(n * d)), cur(x.size()), q(static_cast<size_t>(n * q_width));
        std::vector<float> attn(static_cast<size_t>(n * o_width)), proj(x.size());
        std::vector<float> gate(static_cast<size_t>(n * hp_.n_ff)), up(gate.size());
        std::vector<int32_t> pos(static_cast<size_t>(n));
        for (int64_t t = 0; t < n; ++t) pos[t] = static_cast<int32_t>(n_past + t);

        backend_.get_rows(token_embd_, tokens.data(), n, x.data());
        for (int il = 0; il < hp_.n_layer; ++il) {
            const Layer& l = layers_[static_cast<size_t>(il)];
            KvLayer& kv = state.kv(il);
            // Attention: keys and values are written straight into this sequence's cache rows.
            float* k_new = kv.k_row(n_past);
            float* v_new = kv.v_row(n_past);
            backend_.rmsnorm(x.data(), l.attn_norm.data(), n, d, hp_.rms_eps, cur.data());
            backend_.matmul(l.wq, cur.data(), n, q.data());
            backend_.matmul(l.wk, cur.data(), n, k_new);
            backend_.matmul(l.wv, cur.data(), n, v_new);
            if (!l.bq.empty()) backend_.add_bias(q.data(), l.bq.data(), n, q_width);
            if (!l.bk.empty()) backend_.add_bias(k_new, l.bk.data(), n, kv.k_width);
            if (!l.bv.empty()) backend_.add_bias(v_new, l.bv.data(), n, kv.v_width);
            backend_.rope(q.data(), n, hp_.n_head, hp_.head_dim_k, pos.data(), hp_.rope);
            backend_.rope(k_new, n, hp_.n_head_kv, hp_.head_dim_k, pos.data(), hp_.rope);
            backend_.attention(q.data(), n, kv.k.data(), kv.v.data(), n_past, attn_, attn.data());
            backend_.matmul(l.wo, attn.data(), n, proj.data());
            backend_.add(x.data(), proj.data(), n * d);
            // SwiGLU feed-forward.
            backend_.rmsnorm(x.data(), l.ffn_norm.data(), n, d, hp_.rms_eps, cur.data());
            backend_.matmul(l.ffn_gate, cur.data(), n, gate.data());
            backend_.matmul(l.ffn_up, cur.data(), n, up.data());
            backend_.swiglu(gate.data(), up.data(), n * hp_.n_ff, gate.data());
            backend_.matmul(l.ffn_down, gate.data(), n, proj.data());
            backend_.add(x.data(), proj.data(), n * d);
        }
        state.advance(n);

        const int64_t first = which == Logits::All ? 0 : n - 1;
        const int64_t n_out = n - first;
        backend_.rmsnorm(x.data() + first * d, output_norm_.data(), n_out, d, hp_.rms_eps, cur.data());
        logits.resize(static_cast<size_t>(n_out * hp_.n_vocab));
        backend_.matmul(output_, cur.data(), n_out, logits.data());
    }

private:
    Backend& backend_;
    TransformerHparams hp_;
    ModelInfo info_;
    AttentionParams attn_;
    TensorView token_embd_, output_;
    std::vector<float> output_norm_, rope_factors_;
    std::vector<Layer> layers_;
};

}  // namespace

std::unique_ptr<Model> make_transformer(const GgufFile& file, Backend& backend, bool rope_neox) {
    return std::make_unique<Transformer>(file, backend, rope_neox);
}

}  // namespace strata
