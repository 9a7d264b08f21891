#include "model/jamba.h"

#include <variant>

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
    Jamba(const GgufFile& file, Backend& backend) : backend_(backend), ssm_(SsmHparams::from_gguf(file, false)) {
        const WeightLoader w(file);
        const std::vector<TransformerHparams> layer_hp = jamba_layer_hparams(file, ssm_);
        const MoeRouting routing = MoeRouting::from_gguf(file, ssm_.arch, {.normalize_top_k = false});
        token_embd_ = w.require("token_embd.weight", {ssm_.n_embd, ssm_.n_vocab});
        head_ = OutputHead::load(w, ssm_.n_embd, ssm_.n_vocab, token_embd_);
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
            layers_.push_back(std::move(l));
        }
        expert_counts_.resize(layers_.size());
        info_ = model_info(file, ssm_);
    }

    const ModelInfo& info() const override { return info_; }

    std::unique_ptr<SequenceState> new_state(int n_ctx) const override {
        std::vector<LayerShape> shapes;
        for (const JambaLayer& l : layers_) {
            LayerShape kv;
            kv.k_width = kv.v_width = int64_t{l.hp.n_head_kv} * l.hp.head_dim_k;
            shapes.push_back(std::holds_alternative<AttentionBlock>(l.mixer) ? kv : Mamba1Mixer::state_shape(ssm_));
        }
        return std::make_unique<SequenceState>(n_ctx, shapes);
    }

    void forward(SequenceState& state, std::span<const int32_t> tokens, Logits which,
                 std::vector<float>& logits) override {
        const int64_t n = static_cast<int64_t>(tokens.size());
        if (n == 0) fail("forward pass with no tokens");
        const int64_t n_past = state.n_past();
        const std::vector<int32_t> pos = state.next_positions(n);
        std::vector<float> x(static_cast<size_t>(n * ssm_.n_embd));
        backend_.get_rows(token_embd_, tokens.data(), n, x.data());
        for (int il = 0; il < ssm_.n_layer; ++il) {
            const JambaLayer& l = layers_[static_cast<size_t>(il)];
            if (const auto* a = std::get_if<AttentionBlock>(&l.mixer)) {
                a->forward(backend_, l.hp, state.kv(il), n_past, pos.data(), x.data(), n);
            } else {
                std::get<Mamba1Mixer>(l.mixer).forward(backend_, ssm_, state, il, x.data(), n);
            }
            if (const auto* moe = std::get_if<MoeBlock>(&l.ffn)) {
                moe->forward(backend_, l.hp, x.data(), n, expert_counts_[static_cast<size_t>(il)]);
            } else {
                std::get<FeedForwardBlock>(l.ffn).forward(backend_, l.hp, x.data(), n);
            }
        }
        state.advance(n);
        head_.forward(backend_, x.data(), n, ssm_.n_embd, ssm_.rms_eps, which, logits);
    }

    std::string usage_report() const override { return state_size_report(*this) + expert_usage_report(expert_counts_); }

private:
    Backend& backend_;
    SsmHparams ssm_;
    ModelInfo info_;
    TensorView token_embd_;
    OutputHead head_;
    std::vector<JambaLayer> layers_;
    ExpertCounts expert_counts_;
};

}  // namespace

std::unique_ptr<Model> make_jamba(const GgufFile& file, Backend& backend) {
    return std::make_unique<Jamba>(file, backend);
}

}  // namespace strata
