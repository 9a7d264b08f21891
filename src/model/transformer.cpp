#include "model/transformer.h"

#include <optional>

#include "backend/backend.h"
#include "backend/workspace.h"
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
        : backend_(backend), ws_(backend), hp_(TransformerHparams::from_gguf(file, rope_neox)) {
        const WeightLoader w(file, backend, weights_);
        const int64_t d = hp_.n_embd;
        token_embd_ = w.require("token_embd.weight", {d, hp_.n_vocab});
        head_ = OutputHead::load(w, d, hp_.n_vocab, token_embd_);
        hp_.rope.freq_factors = w.optional_f32("rope_freqs.weight", {hp_.rope.n_rot / 2});
        const MoeRouting routing = moe_routing_from_gguf(file, hp_.arch, moe);
        std::vector<int> n_expert;
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
            n_expert.push_back(l.moe ? l.moe->n_expert : 0);
        }
        usage_.init(backend, n_expert);
        info_ = model_info(file, hp_);
    }

    const ModelInfo& info() const override { return info_; }
    std::string usage_report() const override { return usage_.report(); }

    std::unique_ptr<SequenceState> new_state(int n_ctx) const override {
        LayerShape shape;
        shape.k_width = int64_t{hp_.n_head_kv} * hp_.head_dim_k;
        shape.v_width = int64_t{hp_.n_head_kv} * hp_.head_dim_v;
        shape.head_dim_k = hp_.head_dim_k;
        shape.head_dim_v = hp_.head_dim_v;
        return std::make_unique<SequenceState>(&backend_, n_ctx, std::vector<LayerShape>(static_cast<size_t>(hp_.n_layer), shape),
                                               kv_cache_types());
    }

    void forward(SequenceState& state, std::span<const int32_t> tokens, Logits which,
                 std::vector<float>& logits) override {
        const int64_t n = static_cast<int64_t>(tokens.size());
        state.check_room(n);
        Pass pass{backend_, ws_, {}};
        const Tensor x = begin_pass(pass, token_embd_, tokens, sequence_positions(state.n_past(), n, positions_));
        for (int il = 0; il < hp_.n_layer; ++il) {
            layers_[static_cast<size_t>(il)].attention.forward(pass, hp_, std::span(&state.kv(il), 1), x);
            feed_forward(pass, il, x);
        }
        state.advance(n);
        head_.forward(pass, x, hp_.rms_eps, which, logits);
    }

    // Every layer's projections and FFN run once over all the sequences' tokens; attention reads
    // each row's own sequence's cache, in the same call.
    void forward_batch(std::span<SequenceState* const> states, std::span<const int32_t> tokens,
                       std::vector<float>& logits) override {
        const size_t n = states.size();
        if (n == 0 || tokens.size() != n) fail("forward_batch: ", n, " states but ", tokens.size(), " tokens");
        positions_.resize(n);
        for (size_t i = 0; i < n; ++i) {
            states[i]->check_room(1);
            positions_[i] = states[i]->n_past();
        }
        Pass pass{backend_, ws_, {}};
        const Tensor x = begin_pass(pass, token_embd_, tokens, positions_);
        caches_.resize(n);
        for (int il = 0; il < hp_.n_layer; ++il) {
            for (size_t i = 0; i < n; ++i) caches_[i] = states[i]->kv(il);
            layers_[static_cast<size_t>(il)].attention.forward(pass, hp_, caches_, x);
            feed_forward(pass, il, x);
        }
        for (SequenceState* s : states) s->advance(1);
        head_.forward(pass, x, hp_.rms_eps, Logits::All, logits);
    }

private:
    void feed_forward(Pass& pass, int il, const Tensor& x) {
        const Layer& l = layers_[static_cast<size_t>(il)];
        if (l.moe) {
            l.moe->forward(pass, hp_, x, usage_.counts(il));
        } else {
            l.ffn->forward(pass, hp_, x);
        }
    }

    Backend& backend_;
    WeightBuffers weights_;
    Workspace ws_;
    TransformerHparams hp_;
    ModelInfo info_;
    Tensor token_embd_;
    OutputHead head_;
    std::vector<Layer> layers_;
    ExpertUsage usage_;
    std::vector<int32_t> positions_;  // host copies reused between passes
    std::vector<KvCache> caches_;
};

}  // namespace

std::unique_ptr<Model> make_transformer(const GgufFile& file, Backend& backend, bool rope_neox,
                                        const MoeRouting& moe) {
    return std::make_unique<Transformer>(file, backend, rope_neox, moe);
}

}  // namespace strata
