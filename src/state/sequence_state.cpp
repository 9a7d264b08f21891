#include "state/sequence_state.h"

#include <cstring>

#include "util/error.h"

namespace strata {

SequenceState::SequenceState(int n_ctx, const std::vector<LayerShape>& layers) : n_ctx_(n_ctx) {
    if (n_ctx <= 0) fail("context size must be positive, got ", n_ctx);
    kv_.resize(layers.size());
    for (size_t i = 0; i < layers.size(); ++i) {
        KvLayer& l = kv_[i];
        l.k_width = layers[i].k_width;
        l.v_width = layers[i].v_width;
        l.k.resize(static_cast<size_t>(n_ctx * l.k_width));
        l.v.resize(static_cast<size_t>(n_ctx * l.v_width));
    }
}

void SequenceState::check_room(int64_t n) const {
    if (n_past_ + n > n_ctx_) {
        fail("context is full: ", n_past_, " tokens used + ", n, " new > context size ", n_ctx_,
             " (raise -c/--ctx-size)");
    }
}

void SequenceState::advance(int64_t n) {
    check_room(n);
    n_past_ += static_cast<int>(n);
}

void SequenceState::truncate(int n_past) {
    if (n_past < 0 || n_past > n_past_) fail("cannot roll the sequence back to ", n_past, " (it holds ", n_past_, ")");
    n_past_ = n_past;
}

std::unique_ptr<SequenceState> SequenceState::clone() const { return std::make_unique<SequenceState>(*this); }

size_t SequenceState::used_bytes() const {
    size_t n = 0;
    for (const KvLayer& l : kv_) n += static_cast<size_t>(n_past_ * (l.k_width + l.v_width)) * sizeof(float);
    return n;
}

namespace {
constexpr uint32_t kStateMagic = 0x54415453;  // "STAT"
}

std::vector<uint8_t> SequenceState::save() const {
    std::vector<uint8_t> out(12 + used_bytes());
    uint32_t header[3] = {kStateMagic, static_cast<uint32_t>(n_past_), static_cast<uint32_t>(kv_.size())};
    std::memcpy(out.data(), header, sizeof header);
    uint8_t* p = out.data() + sizeof header;
    for (const KvLayer& l : kv_) {
        size_t kb = static_cast<size_t>(n_past_ * l.k_width) * sizeof(float);
        size_t vb = static_cast<size_t>(n_past_ * l.v_width) * sizeof(float);
        std::memcpy(p, l.k.data(), kb);
        std::memcpy(p + kb, l.v.data(), vb);
        p += kb + vb;
    }
    return out;
}

void SequenceState::restore(const std::vector<uint8_t>& image) {
    uint32_t header[3];
    if (image.size() < sizeof header) fail("saved sequence state is truncated");
    std::memcpy(header, image.data(), sizeof header);
    if (header[0] != kStateMagic || header[2] != kv_.size()) fail("saved sequence state belongs to another model");
    if (static_cast<int>(header[1]) > n_ctx_) fail("saved sequence state holds ", header[1], " tokens, more than the context");
    const int saved_past = n_past_;
    n_past_ = static_cast<int>(header[1]);
    if (image.size() != sizeof header + used_bytes()) {
        n_past_ = saved_past;
        fail("saved sequence state has the wrong size");
    }
    const uint8_t* p = image.data() + sizeof header;
    for (KvLayer& l : kv_) {
        size_t kb = static_cast<size_t>(n_past_ * l.k_width) * sizeof(float);
        size_t vb = static_cast<size_t>(n_past_ * l.v_width) * sizeof(float);
        std::memcpy(l.k.data(), p, kb);
        std::memcpy(l.v.data(), p + kb, vb);
        p += kb + vb;
    }
}

}  // namespace strata
