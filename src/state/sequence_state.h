// Everything one sequence carries between forward passes: its position and, per attention layer,
// the keys and values of past tokens. Forking (beam search), rolling back (speculative decoding,
// chat edits) and saving/restoring act on this object, never on the model. Recurrent (Mamba)
// layers add their conv/SSM state here behind the same operations.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

namespace strata {

// Keys and values of one attention layer: row p holds position p, [n_ctx][width] floats.
struct KvLayer {
    int64_t k_width = 0, v_width = 0;
    std::vector<float> k, v;
    bool empty() const { return k_width == 0; }
    float* k_row(int64_t pos) { return k.data() + pos * k_width; }
    float* v_row(int64_t pos) { return v.data() + pos * v_width; }
};

struct LayerShape {
    int64_t k_width = 0, v_width = 0;  // 0: the layer has no KV cache
};

class SequenceState {
public:
    SequenceState(int n_ctx, const std::vector<LayerShape>& layers);

    int n_ctx() const { return n_ctx_; }
    int n_past() const { return n_past_; }
    // Throws Error if n more tokens would not fit in the context.
    void check_room(int64_t n) const;
    void advance(int64_t n);

    KvLayer& kv(int layer) { return kv_[static_cast<size_t>(layer)]; }

    // Rolls back to the first n_past tokens (n_past ≤ current). Attention rows past it are simply
    // overwritten later, so this costs nothing.
    void truncate(int n_past);
    // An independent copy (cost: a copy of the used part of the cache).
    std::unique_ptr<SequenceState> clone() const;
    // A compact binary image of the used part, and its inverse (same model and context size).
    std::vector<uint8_t> save() const;
    void restore(const std::vector<uint8_t>& image);
    // Bytes of the used part of the state.
    size_t used_bytes() const;

private:
    int n_ctx_;
    int n_past_ = 0;
    std::vector<KvLayer> kv_;
};

}  // namespace strata
