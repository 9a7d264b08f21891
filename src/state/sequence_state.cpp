#include "state/sequence_state.h"

#include <algorithm>
#include <cstring>

#include "util/error.h"

namespace strata {

namespace {

constexpr size_t kAlign = 256;  // every tensor on its own cache line / GPU transaction boundary

size_t aligned(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

void check_cache_type(const char* flag, GgmlType type, int64_t head_dim) {
    if (type != GgmlType::F32 && type != GgmlType::F16 && type != GgmlType::Q8_0) {
        fail(flag, " ", type_name(type), " is not a KV cache type (f32, f16, q8_0)");
    }
    const int64_t block = type_traits(type).block_size;
    if (head_dim % block != 0) {
        fail(flag, " ", type_name(type), " stores blocks of ", block, " values, but this model's heads have ", head_dim);
    }
}

}  // namespace

SequenceState::SequenceState(Backend* backend, int n_ctx, const std::vector<LayerShape>& layers, KvCacheTypes types)
    : backend_(backend), n_ctx_(n_ctx), types_(types), shapes_(layers) {
    if (n_ctx <= 0) fail("context size must be positive, got ", n_ctx);
    // Two passes over the layers: sizes first (one buffer for all), then the tensors in it.
    size_t total = 0;
    for (const LayerShape& l : layers) {
        if (l.k_width > 0) {
            check_cache_type("--cache-type-k", types.k, l.head_dim_k);
            check_cache_type("--cache-type-v", types.v, l.head_dim_v);
            total += aligned(row_size(types.k, l.k_width) * static_cast<size_t>(n_ctx));
            total += aligned(row_size(types.v, l.v_width) * static_cast<size_t>(n_ctx));
        }
        if (l.ssm_size > 0) total += aligned(static_cast<size_t>(l.conv_rows * l.conv_width) * 4) + aligned(l.ssm_size * 4);
    }
    kv_.resize(layers.size());
    recurrent_.resize(layers.size());
    if (total > 0) {
        if (!backend_) fail("a sequence state with KV or recurrent layers needs a backend");
        buffer_ = backend_->alloc(total);
    }
    size_t offset = 0;
    const auto take = [&](GgmlType type, int64_t ne0, int64_t ne1) {
        Tensor t = buffer_->tensor(type, {ne0, ne1}, offset);
        offset += aligned(t.nbytes());
        return t;
    };
    for (size_t i = 0; i < layers.size(); ++i) {
        const LayerShape& l = layers[i];
        if (l.k_width > 0) kv_[i] = {take(types.k, l.k_width, n_ctx), take(types.v, l.v_width, n_ctx)};
        if (l.ssm_size > 0) {
            recurrent_[i].conv = take(GgmlType::F32, l.conv_width, l.conv_rows);
            recurrent_[i].ssm = take(GgmlType::F32, l.ssm_size, 1);
        }
    }
    reset_recurrent();
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

void SequenceState::advance(int64_t n) {
    check_room(n);
    n_past_ += static_cast<int>(n);
    snapshot_from_ = std::max(snapshot_from_, n_past_ - rollback_depth_ + 1);
}

void SequenceState::allocate_rings() {
    rings_.reset();
    size_t total = 0;
    for (const RecurrentLayer& r : recurrent_) {
        if (!r.empty()) total += aligned(r.conv.nbytes() * rollback_depth_) + aligned(r.ssm.nbytes() * rollback_depth_);
    }
    if (total > 0) rings_ = backend_->alloc(total);
    size_t offset = 0;
    for (RecurrentLayer& r : recurrent_) {
        if (r.empty()) continue;
        if (rollback_depth_ == 0) {
            r.conv_ring = r.ssm_ring = Tensor{};
            continue;
        }
        r.conv_ring = rings_->tensor(GgmlType::F32, {r.conv.n_elements(), rollback_depth_}, offset);
        offset += aligned(r.conv_ring.nbytes());
        r.ssm_ring = rings_->tensor(GgmlType::F32, {r.ssm.n_elements(), rollback_depth_}, offset);
        offset += aligned(r.ssm_ring.nbytes());
    }
}

void SequenceState::set_rollback_depth(int depth) {
    if (depth < 0) fail("rollback depth must be at least 0, got ", depth);
    rollback_depth_ = depth;
    allocate_rings();
    snapshot_from_ = n_past_ + 1;
}

SnapshotRing SequenceState::conv_snapshots(int layer, int64_t n) const {
    return {recurrent(layer).conv_ring, rollback_depth_ ? std::min<int64_t>(n, rollback_depth_) : 0};
}

SnapshotRing SequenceState::ssm_snapshots(int layer, int64_t n) const {
    return {recurrent(layer).ssm_ring, rollback_depth_ ? std::min<int64_t>(n, rollback_depth_) : 0};
}

bool SequenceState::can_truncate(int n_past) const {
    if (n_past < 0 || n_past > n_past_) return false;
    const bool snapshot = n_past >= snapshot_from_ && n_past > n_past_ - rollback_depth_;
    return n_past == 0 || n_past == n_past_ || snapshot || !has_recurrent();
}

void SequenceState::reset_recurrent() {
    for (const RecurrentLayer& r : recurrent_) {
        if (r.empty()) continue;
        backend_->fill_zero(r.conv);
        backend_->fill_zero(r.ssm);
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
            const int64_t slot = n_past % rollback_depth_;
            for (const RecurrentLayer& r : recurrent_) {
                if (r.empty()) continue;
                backend_->copy(r.conv, r.conv_ring.rows(slot, slot + 1));
                backend_->copy(r.ssm, r.ssm_ring.rows(slot, slot + 1));
            }
        }
    }
    n_past_ = n_past;
}

template <class Fn>
void SequenceState::for_each_array(Fn fn) const {
    for (const KvCache& c : kv_) {
        if (c.k.empty()) continue;
        fn(c.k.rows(0, n_past_));
        fn(c.v.rows(0, n_past_));
    }
    for (const RecurrentLayer& r : recurrent_) {
        if (r.empty()) continue;
        fn(r.conv);
        fn(r.ssm);
        if (rollback_depth_ > 0) {
            fn(r.conv_ring);
            fn(r.ssm_ring);
        }
    }
}

std::unique_ptr<SequenceState> SequenceState::clone() const {
    auto c = std::make_unique<SequenceState>(backend_, n_ctx_, shapes_, types_);
    c->set_rollback_depth(rollback_depth_);
    c->n_past_ = n_past_;
    c->snapshot_from_ = snapshot_from_;
    std::vector<Tensor> dst;
    c->for_each_array([&](const Tensor& t) { dst.push_back(t); });
    size_t i = 0;
    for_each_array([&](const Tensor& t) { backend_->copy(dst[i++], t); });
    return c;
}

size_t SequenceState::bytes_per_position() const {
    size_t n = 0;
    for (const KvCache& c : kv_) {
        if (!c.k.empty()) n += c.k.row_bytes() + c.v.row_bytes();
    }
    return n;
}

size_t SequenceState::recurrent_bytes() const {
    size_t n = 0;
    for (const RecurrentLayer& r : recurrent_) {
        if (!r.empty()) n += static_cast<size_t>(1 + rollback_depth_) * (r.conv.nbytes() + r.ssm.nbytes());
    }
    return n;
}

size_t SequenceState::used_bytes() const {
    return static_cast<size_t>(n_past_) * bytes_per_position() + recurrent_bytes();
}

namespace {

constexpr uint32_t kStateMagic = 0x33415453;  // "STA3": KV rows, then recurrent states and snapshot rings
struct ImageHeader {
    uint32_t magic, n_past, n_layers, rollback_depth, snapshot_from, type_k, type_v;
};

}  // namespace

std::vector<uint8_t> SequenceState::save() const {
    std::vector<uint8_t> out(sizeof(ImageHeader));
    const ImageHeader header{kStateMagic,
                             static_cast<uint32_t>(n_past_),
                             static_cast<uint32_t>(kv_.size()),
                             static_cast<uint32_t>(rollback_depth_),
                             static_cast<uint32_t>(snapshot_from_),
                             static_cast<uint32_t>(types_.k),
                             static_cast<uint32_t>(types_.v)};
    std::memcpy(out.data(), &header, sizeof header);
    for_each_array([&](const Tensor& t) {
        const size_t at = out.size();
        out.resize(at + t.nbytes());
        backend_->read(t, out.data() + at, t.nbytes());
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
    if (header.type_k != static_cast<uint32_t>(types_.k) || header.type_v != static_cast<uint32_t>(types_.v)) {
        fail("saved sequence state has another KV cache type");
    }
    if (static_cast<int>(header.n_past) > n_ctx_) {
        fail("saved sequence state holds ", header.n_past, " tokens, more than the context");
    }
    const int depth = static_cast<int>(header.rollback_depth);
    size_t expected = sizeof header + header.n_past * bytes_per_position();
    for (const RecurrentLayer& r : recurrent_) {
        if (!r.empty()) expected += static_cast<size_t>(1 + depth) * (r.conv.nbytes() + r.ssm.nbytes());
    }
    if (depth > 1 << 20 || image.size() != expected) fail("saved sequence state has the wrong size");
    set_rollback_depth(depth);
    n_past_ = static_cast<int>(header.n_past);
    snapshot_from_ = static_cast<int>(header.snapshot_from);
    const uint8_t* p = image.data() + sizeof header;
    for_each_array([&](const Tensor& t) {
        backend_->write(t, p, t.nbytes());
        p += t.nbytes();
    });
}

}  // namespace strata
