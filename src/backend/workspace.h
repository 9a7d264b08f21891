// The activations of one forward pass: a bump allocator over backend memory, reset at the start
// of every pass, so passes allocate nothing once warm. A pass that needs more than the arena
// holds takes another chunk; the next reset replaces the chunks by one of their total size.
// Tensors come out in the same order at the same addresses each pass of the same shape, which
// lets a device backend replay a captured decode step.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "backend/buffer.h"

namespace strata {

class Workspace {
public:
    explicit Workspace(Backend& backend) : backend_(backend) {}

    // Forgets every tensor handed out since the last reset (their memory is reused).
    void reset();
    // A contiguous tensor of uninitialized memory, valid until the next reset.
    Tensor alloc(GgmlType type, int64_t ne0, int64_t ne1 = 1);
    Tensor f32(int64_t ne0, int64_t ne1 = 1) { return alloc(GgmlType::F32, ne0, ne1); }
    Tensor i32(int64_t n) { return alloc(GgmlType::I32, n); }
    size_t capacity() const;

private:
    // Offsets are rounded to this, so every tensor starts on a cache line (and a GPU's
    // 256-byte transaction boundary).
    static constexpr size_t kAlign = 256;

    Backend& backend_;
    std::vector<std::unique_ptr<BackendBuffer>> chunks_;
    size_t used_ = 0;        // bytes used in the last chunk
    size_t used_total_ = 0;  // bytes handed out since the reset, over all chunks
};

}  // namespace strata
