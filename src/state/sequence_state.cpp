#include "state/sequence_state.h"

#include <algorithm>
#include <cstring>

#include "util/error.h"

namespace strata {

SequenceState::SequenceState(int n_ctx, const std::vector<LayerShape>& layers) : n_ctx_(n_ctx) {
    if (n_ctx <= 0) fail("context size must be positive, got ", n_ctx);
    kv_.resize(layers.size());
    recurrent_.resize(layers.size());
    for (size_t i = 0; i < layers.size(); ++i) {
        KvLayer& l = kv_[i];
        l.k_width = layers[i].k_width;
        l.v_width = layers[i].v_width;
        l.k.resize(static_cast<size_t>(n_ctx * l.k_width));
        l.v.resize(static_cast<size_t>(n_ctx * l.v_width));
        RecurrentLayer& r = recurrent_[i];
        r.conv_rows = layers[i].conv_rows;
        r.conv_width = layers[i].conv_width;
        r.ssm_size = layers[i].ssm_size;
    }
    set_rollback_depth(kDefaultRollbackDepth);
}

bool SequenceState::has_recurrent() const {
    return std::any_of(recurrent_.begin(), recurrent_.end(), [](const RecurrentLayer& r) { return !r.empty(); });
}

void SequenceState::check_room(int64_t n) const {
    if (n_past_ + n > n_ctx_) {
        fail("context is full: ", n_past_, " tokens used + ", n, " new > context size ", n_ctx_,
             " (raise -c/--ctx-size)");
    }
}

std::vector<int32_t> SequenceState::next_positions(int64_t n) const {
    check_room(n);
    std::vector<int32_t> pos(static_cast<size_t>(n));
    for (int64_t t = 0; t < n; ++t) pos[static_cast<size_t>(t)] = static_cast<int32_t>(n_past_ + t);
    return pos;
}

void SequenceState::advance(int64_t n) {
    check_room(n);
    n_past_ += static_cast<int>(n);
    snapshot_from_ = std::max(snapshot_from_, n_past_ - rollback_depth_ + 1);
}

void SequenceState::set_rollback_depth(int depth) {
    if (depth < 0) fail("rollback depth must be at least 0, got ", depth);
    rollback_depth_ = depth;
    for (RecurrentLayer& r : recurrent_) {
        r.conv.resize(static_cast<size_t>(r.conv_rows * r.conv_width));
        r.ssm.resize(static_cast<size_t>(r.ssm_size));
        r.snapshots.assign(static_cast<size_t>(depth * r.floats()), 0.0f);
    }
    snapshot_from_ = n_past_ + 1;
}

int64_t SequenceState::snapshot_tokens(int64_t n) const { return std::min<int64_t>(n, rollback_depth_); }

void SequenceState::record_snapshot(int layer, int64_t pos) {
    RecurrentLayer& r = recurrent(layer);
    if (rollback_depth_ == 0 || r.empty()) return;
    float* slot = r.snapshots.data() + (pos % rollback_depth_) * r.floats();
    std::copy(r.conv.begin(), r.conv.end(), slot);
    std::copy(r.ssm.begin(), r.ssm.end(), slot + r.conv.size());
}

bool SequenceState::can_truncate(int n_past) const {
    if (n_past < 0 || n_past > n_past_) return false;
    const bool snapshot = n_past >= snapshot_from_ && n_past > n_past_ - rollback_depth_;
    return n_past == 0 || n_past == n_past_ || snapshot || !has_recurrent();
}

void SequenceState::reset_recurrent() {
    for (RecurrentLayer& r : recurrent_) {
        std::fill(r.conv.begin(), r.conv.end(), 0.0f);
        std::fill(r.ssm.begin(), r.ssm.end(), 0.0f);
    }
    snapshot_from_ = 1;
}

void SequenceState::truncate(int n_past) {
    if (n_past < 0 || n_past > n_past_) fail("cannot roll the sequence back to ", n_past, " (it holds ", n_past_, ")");
    if (n_past == n_past_) return;
    if (has_recurrent()) {
        if (n_past == 0) {
            reset_recurrent();
        } else if (!can_truncate(n_past)) {
            fail("cannot roll the recurrent state back to position ", n_past, ": snapshots are kept for positions ",
                 std::max(snapshot_from_, n_past_ - rollback_depth_ + 1), " to ", n_past_, " (rollback depth ",
                 rollback_depth_, ") and 0");
        } else {
            for (RecurrentLayer& r : recurrent_) {
                if (r.empty()) continue;
                const float* slot = r.snapshots.data() + (n_past % rollback_depth_) * r.floats();
                std::copy(slot, slot + r.conv.size(), r.conv.begin());
                std::copy(slot + r.conv.size(), slot + r.floats(), r.ssm.begin());
            }
        }
    }
    n_past_ = n_past;
}

std::unique_ptr<SequenceState> SequenceState::clone() const { return std::make_unique<SequenceState>(*this); }

size_t SequenceState::bytes_per_position() const {
    size_t n = 0;
    for (const KvLayer& l : kv_) n += static_cast<size_t>(l.k_width + l.v_width) * sizeof(float);
    return n;
}

size_t SequenceState::recurrent_bytes() const {
    size_t n = 0;
    for (const RecurrentLayer& r : recurrent_) {
        n += static_cast<size_t>((1 + rollback_depth_) * r.floats()) * sizeof(float);
    }
    return n;
}

size_t SequenceState::used_bytes() const {
    return static_cast<size_t>(n_past_) * bytes_per_position() + recurrent_bytes();
}

namespace {

constexpr uint32_t kStateMagic = 0x32415453;  // "STA2": KV rows, then recurrent states and snapshots
struct ImageHeader {
    uint32_t magic, n_past, n_layers, rollback_depth, snapshot_from;
};

// The image's arrays in order, each as (pointer, floats); shared by save and restore so the two
// cannot disagree on the layout.
template <class Kv, class Rec, class Fn>
void for_each_array(Kv& kv, Rec& recurrent, int n_past, Fn fn) {
    for (auto& l : kv) {
        fn(l.k.data(), n_past * l.k_width);
        fn(l.v.data(), n_past * l.v_width);
    }
    for (auto& r : recurrent) {
        fn(r.conv.data(), static_cast<int64_t>(r.conv.size()));
        fn(r.ssm.data(), static_cast<int64_t>(r.ssm.size()));
        fn(r.snapshots.data(), static_cast<int64_t>(r.snapshots.size()));
    }
}

}  // namespace

std::vector<uint8_t> SequenceState::save() const {
    std::vector<uint8_t> out(sizeof(ImageHeader));
    const ImageHeader header{kStateMagic, static_cast<uint32_t>(n_past_), static_cast<uint32_t>(kv_.size()),
                             static_cast<uint32_t>(rollback_depth_), static_cast<uint32_t>(snapshot_from_)};
    std::memcpy(out.data(), &header, sizeof header);
    for_each_array(kv_, recurrent_, n_past_, [&](const float* p, int64_t n) {
        const auto* bytes = reinterpret_cast<const uint8_t*>(p);
        out.insert(out.end(), bytes, bytes + n * static_cast<int64_t>(sizeof(float)));
    });
    return out;
}

void SequenceState::restore(const std::vector<uint8_t>& image) {
    ImageHeader header;
    if (image.size() < sizeof header) fail("saved sequence state is truncated");
    std::memcpy(&header, image.data(), sizeof header);
    if (header.magic != kStateMagic || header.n_layers != kv_.size()) {
        fail("saved sequence state belongs to another model");
    }
    if (static_cast<int>(header.n_past) > n_ctx_) {
        fail("saved sequence state holds ", header.n_past, " tokens, more than the context");
    }
    const int64_t depth = header.rollback_depth;
    size_t expected = sizeof header + header.n_past * bytes_per_position();
    for (const RecurrentLayer& r : recurrent_) {
        expected += static_cast<size_t>((1 + depth) * r.floats()) * sizeof(float);
    }
    if (image.size() != expected) fail("saved sequence state has the wrong size");
    set_rollback_depth(static_cast<int>(depth));
    n_past_ = static_cast<int>(header.n_past);
    snapshot_from_ = static_cast<int>(header.snapshot_from);
    const uint8_t* p = image.data() + sizeof header;
    for_each_array(kv_, recurrent_, n_past_, [&](float* dst, int64_t n) {
        std::memcpy(dst, p, static_cast<size_t>(n) * sizeof(float));
        p += n * static_cast<int64_t>(sizeof(float));
    });
}

}  // namespace strata
