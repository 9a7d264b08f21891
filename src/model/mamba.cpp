#include "model/mamba.h"

#include "backend/workspace.h"
#include "model/blocks.h"
#include "model/mamba_blocks.h"
#include "util/error.h"

namespace strata {

namespace {

template <class Mixer>
class MambaModel final : public Model {
public:
    MambaModel(const GgufFile& file, Backend& backend, bool mamba2)
        : backend_(backend), ws_(backend), hp_(SsmHparams::from_gguf(file, mamba2)) {
        const WeightLoader w(file, backend, weights_);
        token_embd_ = w.require("token_embd.weight", {hp_.n_embd, hp_.n_vocab});
        head_ = OutputHead::load(w, hp_.n_embd, hp_.n_vocab, token_embd_);
        for (int i = 0; i < hp_.n_layer; ++i) layers_.push_back(Mixer::load(w, "blk." + std::to_string(i) + ".", hp_));
        info_ = model_info(file, hp_);
    }

    const ModelInfo& info() const override { return info_; }

    std::unique_ptr<SequenceState> new_state(int n_ctx) const override {
        return std::make_unique<SequenceState>(
            &backend_, n_ctx, std::vector<LayerShape>(static_cast<size_t>(hp_.n_layer), Mixer::state_shape(hp_)),
            kv_cache_types());
    }

    void forward(SequenceState& state, std::span<const int32_t> tokens, Logits which,
                 std::vector<float>& logits) override {
        const int64_t n = static_cast<int64_t>(tokens.size());
        state.check_room(n);
        Pass pass{backend_, ws_, {}};
        const Tensor x = begin_pass(pass, token_embd_, tokens, sequence_positions(state.n_past(), n, positions_));
        for (int il = 0; il < hp_.n_layer; ++il) layers_[static_cast<size_t>(il)].forward(pass, hp_, state, il, x);
        state.advance(n);
        head_.forward(pass, x, hp_.rms_eps, which, logits);
    }

    std::string usage_report() const override { return state_size_report(*this); }

private:
    Backend& backend_;
    WeightBuffers weights_;
    Workspace ws_;
    SsmHparams hp_;
    ModelInfo info_;
    Tensor token_embd_;
    OutputHead head_;
    std::vector<Mixer> layers_;
    std::vector<int32_t> positions_;
};

}  // namespace

std::unique_ptr<Model> make_mamba(const GgufFile& file, Backend& backend) {
    return std::make_unique<MambaModel<Mamba1Mixer>>(file, backend, false);
}

std::unique_ptr<Model> make_mamba2(const GgufFile& file, Backend& backend) {
    return std::make_unique<MambaModel<Mamba2Mixer>>(file, backend, true);
}

}  // namespace strata
