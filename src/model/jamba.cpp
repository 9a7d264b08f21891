#include "model/jamba.h"

#include <variant>

#include "backend/workspace.h"

#include "model/blocks.h"
#include "model/hparams.h"
#include "model/mamba_blocks.h"
#include "model/moe.h"
#include "util/error.h"

namespace strata {

namespace {

struct JambaLayer {
    TransformerHparams hp;
    std::variant<AttentionBlock, Mamba1Mixer> mixer;
    std::variant<FeedForwardBlock, MoeBlock> ffn;
};

class Jamba final : public Model {
public:
    Jamba(const GgufFile& file, Backend& backend)
        : backend_(backend), ws_(backend), ssm_(SsmHparams::from_gguf(file, false)) {
        const WeightLoader w(file, backend, weights_);
        const std::vector<TransformerHparams> layer_hp = jamba_layer_hparams(file, ssm_);
        const MoeRouting routing = moe_routing_from_gguf(file, ssm_.arch, {.normalize_top_k = false});
        token_embd_ = w.require("token_embd.weight", {ssm_.n_embd, ssm_.n_vocab});
        head_ = OutputHead::load(w, ssm_.n_embd, ssm_.n_vocab, token_embd_);
        std::vector<int> n_expert;
        for (int i = 0; i < ssm_.n_layer; ++i) {
            const std::string p = "blk." + std::to_string(i) + ".";
            JambaLayer l{layer_hp[static_cast<size_t>(i)], Mamba1Mixer{}, FeedForwardBlock{}};
            if (l.hp.n_head_kv > 0) {
                l.mixer = AttentionBlock::load(w, p, l.hp);
            } else {
                l.mixer = Mamba1Mixer::load(w, p, ssm_);
            }
            if (file.find_tensor_info(p + "ffn_gate_inp.weight")) {
                l.ffn = MoeBlock::load(w, p, l.hp, routing);
            } else {
                l.ffn = FeedForwardBlock::load(w, p, l.hp);
            }
            n_expert.push_back(std::holds_alternative<MoeBlock>(l.ffn) ? std::get<MoeBlock>(l.ffn).n_expert : 0);
            layers_.push_back(std::move(l));
        }
        usage_.init(backend, n_expert);
        info_ = model_info(file, ssm_);
    }

    const ModelInfo& info() const override { return info_; }

    std::unique_ptr<SequenceState> new_state(int n_ctx) const override {
        std::vector<LayerShape> shapes;
        for (const JambaLayer& l : layers_) {
            LayerShape kv;
            kv.k_width = kv.v_width = int64_t{l.hp.n_head_kv} * l.hp.head_dim_k;
            kv.head_dim_k = kv.head_dim_v = l.hp.head_dim_k;
            shapes.push_back(std::holds_alternative<AttentionBlock>(l.mixer) ? kv : Mamba1Mixer::state_shape(ssm_));
        }
        return std::make_unique<SequenceState>(&backend_, n_ctx, shapes, kv_cache_types());
    }

    void forward(SequenceState& state, std::span<const int32_t> tokens, Logits which,
                 std::vector<float>& logits) override {
        const int64_t n = static_cast<int64_t>(tokens.size());
        state.check_room(n);
        Pass pass{backend_, ws_, {}};
        const Tensor x = begin_pass(pass, token_embd_, tokens, sequence_positions(state.n_past(), n, positions_));
        for (int il = 0; il < ssm_.n_layer; ++il) {
            const JambaLayer& l = layers_[static_cast<size_t>(il)];
            if (const auto* a = std::get_if<AttentionBlock>(&l.mixer)) {
                a->forward(pass, l.hp, std::span(&state.kv(il), 1), x);
            } else {
                std::get<Mamba1Mixer>(l.mixer).forward(pass, ssm_, state, il, x);
            }
            if (const auto* moe = std::get_if<MoeBlock>(&l.ffn)) {
                moe->forward(pass, l.hp, x, usage_.counts(il));
            } else {
                std::get<FeedForwardBlock>(l.ffn).forward(pass, l.hp, x);
            }
        }
        state.advance(n);
        head_.forward(pass, x, ssm_.rms_eps, which, logits);
    }

    std::string usage_report() const override { return state_size_report(*this) + usage_.report(); }

private:
    Backend& backend_;
    WeightBuffers weights_;
    Workspace ws_;
    SsmHparams ssm_;
    ModelInfo info_;
    Tensor token_embd_;
    OutputHead head_;
    std::vector<JambaLayer> layers_;
    ExpertUsage usage_;
    std::vector<int32_t> positions_;
};

}  // namespace

std::unique_ptr<Model> make_jamba(const GgufFile& file, Backend& backend) {
    return std::make_unique<Jamba>(file, backend);
}

}  // namespace strata
