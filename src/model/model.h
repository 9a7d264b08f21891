// A loaded model: turns token ids into logits, advancing a SequenceState. Architectures register
// in one table (model_registry.cpp); callers never know which one they run.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "format/gguf.h"
#include "state/sequence_state.h"

namespace strata {

class Backend;

struct ModelInfo {
    std::string arch;       // general.architecture
    std::string name;       // general.name
    int64_t n_vocab = 0;
    int64_t n_embd = 0;
    int n_layer = 0;
    int n_ctx_train = 0;
};

// The summary every architecture reports, from its hyperparameters (any struct with these fields).
template <class Hparams>
ModelInfo model_info(const GgufFile& file, const Hparams& hp) {
    return {hp.arch, file.get_string("general.name", ""), hp.n_vocab, hp.n_embd, hp.n_layer, hp.n_ctx_train};
}

enum class Logits { Last, All };

class Model {
public:
    virtual ~Model() = default;
    virtual const ModelInfo& info() const = 0;
    // A fresh state for a sequence of up to n_ctx tokens.
    virtual std::unique_ptr<SequenceState> new_state(int n_ctx) const = 0;
    // Processes tokens at positions state.n_past() … (one batched pass) and advances the state.
    // Writes logits [1 or n_tokens][n_vocab] to `logits`.
    virtual void forward(SequenceState& state, std::span<const int32_t> tokens, Logits which,
                         std::vector<float>& logits) = 0;
    // Statistics gathered while running, for --verbose (MoE: how often each expert was chosen,
    // per layer); empty when the model keeps none.
    virtual std::string usage_report() const { return {}; }
    // One token for each of several sequences in a single pass (beam search), each state advancing
    // by one; logits [states.size()][n_vocab]. This default runs them one by one; architectures
    // whose layers can batch across sequences override it.
    virtual void forward_batch(std::span<SequenceState* const> states, std::span<const int32_t> tokens,
                               std::vector<float>& logits);

    // The KV cache types of the states new_state makes from now on (llama.cpp's -ctk/-ctv).
    void set_kv_cache_types(KvCacheTypes types) { kv_types_ = types; }
    KvCacheTypes kv_cache_types() const { return kv_types_; }

private:
    KvCacheTypes kv_types_;
};

// Builds the model for the file's general.architecture; the file must outlive the model.
// Throws Error listing the supported architectures for any other.
std::unique_ptr<Model> load_model(const GgufFile& file, Backend& backend);
// Architectures load_model knows, comma-separated (for messages and --help).
std::string supported_architectures();

}  // namespace strata
