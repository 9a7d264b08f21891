#include "backend/workspace.h"

#include <algorithm>

#include "backend/backend.h"

namespace strata {

namespace {

constexpr size_t kFirstChunk = size_t{1} << 20;

size_t round_up(size_t n, size_t a) { return (n + a - 1) / a * a; }

}  // namespace

void Workspace::reset() {
    if (chunks_.size() > 1) {
        // The queued ops of the last pass may still read the chunks being freed.
        backend_.synchronize();
        const size_t peak = peak_;
        chunks_.clear();
        chunks_.push_back(backend_.alloc(peak));
    }
    chunk_ = used_ = total_ = peak_ = 0;
}

Tensor Workspace::alloc(GgmlType type, int64_t ne0, int64_t ne1) {
    const size_t bytes = round_up(row_size(type, ne0) * static_cast<size_t>(ne1), kAlign);
    // Move on to the next chunk (taking a new one at the end) until the tensor fits.
    while (chunks_.empty() || used_ + bytes > chunks_[chunk_]->size()) {
        if (!chunks_.empty()) total_ += chunks_[chunk_]->size() - used_;
        if (chunks_.empty() || chunk_ + 1 == chunks_.size()) {
            const size_t last = chunks_.empty() ? 0 : chunks_.back()->size();
            chunks_.push_back(backend_.alloc(std::max({bytes, kFirstChunk, 2 * last})));
        }
        chunk_ = chunks_.size() == 1 ? 0 : chunk_ + 1;
        used_ = 0;
    }
    Tensor t = chunks_[chunk_]->tensor(type, {ne0, ne1}, used_);
    used_ += bytes;
    total_ += bytes;
    peak_ = std::max(peak_, total_);
    return t;
}

size_t Workspace::capacity() const {
    size_t n = 0;
    for (const auto& c : chunks_) n += c->size();
    return n;
}

}  // namespace strata
