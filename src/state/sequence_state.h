// Everything one sequence carries between forward passes: its position and, per layer, either the
// keys and values of past tokens (attention) or a fixed-size recurrent state (Mamba: the last
// d_conv − 1 conv inputs and the SSM state). Forking (beam search), rolling back (speculative
// decoding, chat edits) and saving/restoring act on this object, never on the model.
//
// The position and the bookkeeping live on the host; the KV rows, the recurrent states and
// their rollback snapshots are tensors in the model's backend, and every operation on them
// (truncate, clone, save, restore) is a backend copy, read or write.
//
// A recurrent state cannot be un-stepped, so rolling back needs a copy of it at the target
// position: the state keeps the recurrent state of each of the last `rollback_depth` positions
// (a ring of snapshots, written by the scan ops as they step). Cost: rollback_depth × the
// recurrent state in memory, and one copy of the recurrent state per token for the last
// rollback_depth tokens of each batch (every token when decoding one at a time).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "backend/backend.h"

namespace strata {

// The state of one recurrent (Mamba) layer after the sequence's last token, the same size at
// every position, and its snapshot rings [size, rollback_depth] (slot p % depth: position p).
struct RecurrentLayer {
    Tensor conv;  // F32 [conv_width, conv_rows]: the last conv inputs, oldest first
    Tensor ssm;   // F32 [ssm_size]
    Tensor conv_ring, ssm_ring;
    bool empty() const { return ssm.empty(); }
};

struct LayerShape {
    // Attention layers: KV rows of k_width and v_width values, heads of head_dim_k/_v (0: no KV).
    int64_t k_width = 0, v_width = 0, head_dim_k = 0, head_dim_v = 0;
    // Recurrent layers: conv_rows (d_conv − 1) past inputs of conv_width channels and ssm_size
    // floats of SSM state; 0: the layer has none.
    int64_t conv_rows = 0, conv_width = 0, ssm_size = 0;
};

// The KV cache's storage types, llama.cpp's -ctk / -ctv: F16 (default), F32 or Q8_0.
struct KvCacheTypes {
    GgmlType k = GgmlType::F16, v = GgmlType::F16;
};

class SequenceState {
public:
    // Recurrent states of the last kDefaultRollbackDepth positions are kept: enough for
    // speculative decoding with drafts of that many tokens.
    static constexpr int kDefaultRollbackDepth = 8;

    // `backend` holds the layers' tensors; it may be null only when no layer has any state.
    SequenceState(Backend* backend, int n_ctx, const std::vector<LayerShape>& layers, KvCacheTypes types = {});

    int n_ctx() const { return n_ctx_; }
    int n_past() const { return n_past_; }
    // Throws Error if n more tokens would not fit in the context.
    void check_room(int64_t n) const;
    void advance(int64_t n);

    const KvCache& kv(int layer) const { return kv_[static_cast<size_t>(layer)]; }
    const RecurrentLayer& recurrent(int layer) const { return recurrent_[static_cast<size_t>(layer)]; }
    bool has_recurrent() const;
    KvCacheTypes kv_types() const { return types_; }

    // How many positions back truncate() can reach on recurrent layers (0: only to the start).
    // Changing it forgets the snapshots taken so far.
    int rollback_depth() const { return rollback_depth_; }
    void set_rollback_depth(int depth);
    // For the model: where a recurrent layer's conv and scan ops record the states after the last
    // tokens of a batch of n (the last min(n, depth), which keeps every reachable position).
    SnapshotRing conv_snapshots(int layer, int64_t n) const;
    SnapshotRing ssm_snapshots(int layer, int64_t n) const;

    // Rolls back to the first n_past tokens (n_past ≤ current). Attention rows past it are simply
    // overwritten later (free); recurrent layers copy their snapshot at n_past back (one copy of
    // the recurrent state). Throws Error when a recurrent layer has no snapshot there: positions
    // 0 and the last rollback_depth ones are reachable.
    void truncate(int n_past);
    // Whether truncate(n_past) would succeed.
    bool can_truncate(int n_past) const;
    // An independent copy (cost: a copy of the used KV rows and of the recurrent states).
    std::unique_ptr<SequenceState> clone() const;
    // A compact binary image of the used part (recurrent snapshots included, so a restored state
    // rolls back like the original), and its inverse (same model, cache types and context size).
    std::vector<uint8_t> save() const;
    void restore(const std::vector<uint8_t>& image);
    // Bytes of the used part of the state: n_past × bytes_per_position() of KV rows, plus
    // recurrent_bytes() for the recurrent states and their snapshots (constant in the position).
    size_t used_bytes() const;
    size_t bytes_per_position() const;
    size_t recurrent_bytes() const;

private:
    void reset_recurrent();
    void allocate_rings();
    // Calls fn(tensor, bytes) for every array of the saved image, in image order.
    template <class Fn>
    void for_each_array(Fn fn) const;

    Backend* backend_;
    int n_ctx_;
    int n_past_ = 0;
    int rollback_depth_ = kDefaultRollbackDepth;
    // Snapshots are valid for positions in [max(snapshot_from_, n_past_ − depth + 1), n_past_].
    int snapshot_from_ = 1;
    KvCacheTypes types_;
    std::vector<LayerShape> shapes_;
    std::vector<KvCache> kv_;
    std::vector<RecurrentLayer> recurrent_;
    std::unique_ptr<BackendBuffer> buffer_;  // KV rows and recurrent states
    std::unique_ptr<BackendBuffer> rings_;   // snapshot rings (re-made when the depth changes)
};

}  // namespace strata
