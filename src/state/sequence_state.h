// Everything one sequence carries between forward passes: its position and, per layer, either the
// keys and values of past tokens (attention) or a fixed-size recurrent state (Mamba: the last
// d_conv − 1 conv inputs and the SSM state). Forking (beam search), rolling back (speculative
// decoding, chat edits) and saving/restoring act on this object, never on the model.
//
// A recurrent state cannot be un-stepped, so rolling back needs a copy of it at the target
// position: the state keeps the recurrent state of each of the last `rollback_depth` positions
// (a ring of snapshots, written by the model as it steps). Cost: rollback_depth × the recurrent
// state in memory, and one copy of the recurrent state per token for the last rollback_depth
// tokens of each batch (every token when decoding one at a time).
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

// The state of one recurrent (Mamba) layer after the sequence's last token; its size does not
// depend on the position.
struct RecurrentLayer {
    int64_t conv_rows = 0, conv_width = 0, ssm_size = 0;
    std::vector<float> conv;       // [conv_rows][conv_width]: the last conv inputs, oldest first
    std::vector<float> ssm;        // [ssm_size]
    std::vector<float> snapshots;  // [rollback_depth][conv + ssm]: slot p % depth holds position p
    bool empty() const { return ssm_size == 0; }
    int64_t floats() const { return conv_rows * conv_width + ssm_size; }
};

struct LayerShape {
    int64_t k_width = 0, v_width = 0;  // 0: the layer has no KV cache
    // Recurrent layers: conv_rows (d_conv − 1) past inputs of conv_width channels and ssm_size
    // floats of SSM state; 0: the layer has none.
    int64_t conv_rows = 0, conv_width = 0, ssm_size = 0;
};

class SequenceState {
public:
    // Recurrent states of the last kDefaultRollbackDepth positions are kept: enough for
    // speculative decoding with drafts of that many tokens.
    static constexpr int kDefaultRollbackDepth = 8;

    SequenceState(int n_ctx, const std::vector<LayerShape>& layers);

    int n_ctx() const { return n_ctx_; }
    int n_past() const { return n_past_; }
    // Throws Error if n more tokens would not fit in the context.
    void check_room(int64_t n) const;
    void advance(int64_t n);
    // The positions n_past … n_past+n-1 of n new tokens; throws Error if they do not fit.
    std::vector<int32_t> next_positions(int64_t n) const;

    KvLayer& kv(int layer) { return kv_[static_cast<size_t>(layer)]; }
    RecurrentLayer& recurrent(int layer) { return recurrent_[static_cast<size_t>(layer)]; }
    bool has_recurrent() const;

    // How many positions back truncate() can reach on recurrent layers (0: only to the start).
    // Changing it forgets the snapshots taken so far.
    int rollback_depth() const { return rollback_depth_; }
    void set_rollback_depth(int depth);
    // For the model: of a batch of n tokens, the last snapshot_tokens(n) must each be followed by
    // record_snapshot, for every recurrent layer, so the state at their positions is kept.
    int64_t snapshot_tokens(int64_t n) const;
    // Copies the layer's current recurrent state as the state at position pos (after token pos−1).
    void record_snapshot(int layer, int64_t pos);

    // Rolls back to the first n_past tokens (n_past ≤ current). Attention rows past it are simply
    // overwritten later (free); recurrent layers copy their snapshot at n_past back (one copy of
    // the recurrent state). Throws Error when a recurrent layer has no snapshot there: positions
    // 0 and the last rollback_depth ones are reachable.
    void truncate(int n_past);
    // Whether truncate(n_past) would succeed.
    bool can_truncate(int n_past) const;
    // An independent copy (cost: a copy of the allocated cache and of the recurrent states).
    std::unique_ptr<SequenceState> clone() const;
    // A compact binary image of the used part (recurrent snapshots included, so a restored state
    // rolls back like the original), and its inverse (same model and context size).
    std::vector<uint8_t> save() const;
    void restore(const std::vector<uint8_t>& image);
    // Bytes of the used part of the state: n_past × bytes_per_position() of KV rows, plus
    // recurrent_bytes() for the recurrent states and their snapshots (constant in the position).
    size_t used_bytes() const;
    size_t bytes_per_position() const;
    size_t recurrent_bytes() const;

private:
    void reset_recurrent();

    int n_ctx_;
    int n_past_ = 0;
    int rollback_depth_ = kDefaultRollbackDepth;
    // Snapshots are valid for positions in [max(snapshot_from_, n_past_ − depth + 1), n_past_].
    int snapshot_from_ = 1;
    std::vector<KvLayer> kv_;
    std::vector<RecurrentLayer> recurrent_;
};

}  // namespace strata
