#include "model/transformer.h"

#include <optional>

#include "backend/backend.h"
#include "model/blocks.h"
#include "model/hparams.h"
#include "model/weights.h"
#include "util/error.h"

namespace strata {

namespace {

struct Layer {
    AttentionBlock attention;
    std::optional<FeedForwardBlock> ffn;  // dense layers
    std::optional<MoeBlock> moe;          // layers with a router
};

class Transformer final : public Model {
public:
    Transformer(const GgufFile& file, Backend& backend, bool rope_neox, const MoeRouting& moe)
        : backend_(backend), hp_(TransformerHparams::from_gguf(file, rope_neox)) {
        const WeightLoader w(file);
        const int64_t d = hp_.n_embd;
        token_embd_ = w.require("token_embd.weight", {d, hp_.n_vocab});
        head_ = OutputHead::load(w, d, hp_.n_vocab, token_embd_);
        rope_factors_ = w.optional_vector("rope_freqs.weight", hp_.rope.n_rot / 2);
        if (!rope_factors_.empty()) hp_.rope.freq_factors = rope_factors_.data();
        const MoeRouting routing = MoeRouting::from_gguf(file, hp_.arch, moe);
        expert_counts_.resize(static_cast<size_t>(hp_.n_layer));
        for (int i = 0; i < hp_.n_layer; ++i) {
            const std::string p = "blk." + std::to_string(i) + ".";
            Layer& l = layers_.emplace_back(Layer{AttentionBlock::load(w, p, hp_), {}, {}});
            // A router makes a layer MoE; models mixing dense and MoE layers (DeepSeek) need no flag.
            if (file.find_tensor_info(p + "ffn_gate_inp.weight")) {
                l.moe = MoeBlock::load(w, p, hp_, routing);
            } else {
                if (hp_.n_ff <= 0) fail(file.path(), ": missing or zero ", hp_.key("feed_forward_length"));
                l.ffn = FeedForwardBlock::load(w, p, hp_);
            }
        }
        info_ = model_info(file, hp_);
    }

    const ModelInfo& info() const override { return info_; }
    std::string usage_report() const override { return expert_usage_report(expert_counts_); }

    std::unique_ptr<SequenceState> new_state(int n_ctx) const override {
        LayerShape shape{int64_t{hp_.n_head_kv} * hp_.head_dim_k, int64_t{hp_.n_head_kv} * hp_.head_dim_v};
        return std::make_unique<SequenceState>(n_ctx, std::vector<LayerShape>(static_cast<size_t>(hp_.n_layer), shape));
    }

    void forward(SequenceState& state, std::span<const int32_t> tokens, Logits which,
                 std::vector<float>& logits) override {
        const int64_t n = static_cast<int64_t>(tokens.size());
        if (n == 0) fail("forward pass with no tokens");
        const int64_t n_past = state.n_past();
        const std::vector<int32_t> pos = state.next_positions(n);
        std::vector<float> x = embed(tokens);
        for (int il = 0; il < hp_.n_layer; ++il) {
            layers_[static_cast<size_t>(il)].attention.forward(backend_, hp_, state.kv(il), n_past, pos.data(), x.data(), n);
            feed_forward(il, x, n);
        }
        state.advance(n);
        head_.forward(backend_, x.data(), n, hp_.n_embd, hp_.rms_eps, which, logits);
    }

    // Every layer's projections and FFN run once over all the sequences' tokens; only attention
    // reads each sequence's own cache.
    void forward_batch(std::span<SequenceState* const> states, std::span<const int32_t> tokens,
                       std::vector<float>& logits) override {
        const int64_t n = static_cast<int64_t>(states.size());
        if (n == 0 || tokens.size() != states.size()) fail("forward_batch: ", n, " states but ", tokens.size(), " tokens");
        std::vector<int32_t> pos(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i) {
            states[static_cast<size_t>(i)]->check_room(1);
            pos[static_cast<size_t>(i)] = states[static_cast<size_t>(i)]->n_past();
        }
        std::vector<float> x = embed(tokens);
        std::vector<KvLayer*> kvs(static_cast<size_t>(n));
        for (int il = 0; il < hp_.n_layer; ++il) {
            for (int64_t i = 0; i < n; ++i) kvs[static_cast<size_t>(i)] = &states[static_cast<size_t>(i)]->kv(il);
            layers_[static_cast<size_t>(il)].attention.forward_rows(backend_, hp_, kvs, pos.data(), x.data());
            feed_forward(il, x, n);
        }
        for (SequenceState* s : states) s->advance(1);
        head_.forward(backend_, x.data(), n, hp_.n_embd, hp_.rms_eps, Logits::All, logits);
    }

private:
    std::vector<float> embed(std::span<const int32_t> tokens) {
        std::vector<float> x(tokens.size() * static_cast<size_t>(hp_.n_embd));
        backend_.get_rows(token_embd_, tokens.data(), static_cast<int64_t>(tokens.size()), x.data());
        return x;
    }

    void feed_forward(int il, std::vector<float>& x, int64_t n) {
        const Layer& l = layers_[static_cast<size_t>(il)];
        if (l.moe) {
            l.moe->forward(backend_, hp_, x.data(), n, expert_counts_[static_cast<size_t>(il)]);
        } else {
            l.ffn->forward(backend_, hp_, x.data(), n);
        }
    }

    Backend& backend_;
    TransformerHparams hp_;
    ModelInfo info_;
    TensorView token_embd_;
    OutputHead head_;
    std::vector<float> rope_factors_;
    std::vector<Layer> layers_;
    ExpertCounts expert_counts_;
};

}  // namespace

std::unique_ptr<Model> make_transformer(const GgufFile& file, Backend& backend, bool rope_neox,
                                        const MoeRouting& moe) {
    return std::make_unique<Transformer>(file, backend, rope_neox, moe);
}

}  // namespace strata
