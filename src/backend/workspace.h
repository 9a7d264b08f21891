// The activations of one forward pass: a bump allocator over backend memory, reset at the start
// of every pass, so passes allocate nothing once warm. Blocks take their temporaries inside a
// Workspace::Scope, which hands the memory back when the block ends, so a pass needs the
// activations of one layer, not of all. A pass that needs more than the arena holds takes another
// chunk; the next reset replaces the chunks by one of the peak size. Tensors come out in the same
// order at the same addresses each pass of the same shape, which lets a device backend replay a
// captured decode step.
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
    // A contiguous tensor of uninitialized memory, valid until the next reset or the end of the
    // Scope it was taken in.
    Tensor alloc(GgmlType type, int64_t ne0, int64_t ne1 = 1);
    Tensor f32(int64_t ne0, int64_t ne1 = 1) { return alloc(GgmlType::F32, ne0, ne1); }
    Tensor i32(int64_t ne0, int64_t ne1 = 1) { return alloc(GgmlType::I32, ne0, ne1); }
    size_t capacity() const;

    // Tensors taken while a Scope lives are given back when it ends (ops already queued on them
    // run first: a backend executes in order).
    class Scope {
    public:
        explicit Scope(Workspace& ws) : ws_(ws), chunk_(ws.chunk_), used_(ws.used_), total_(ws.total_) {}
        ~Scope() {
            ws_.chunk_ = chunk_;
            ws_.used_ = used_;
            ws_.total_ = total_;
        }
        Scope(const Scope&) = delete;
        Scope& operator=(const Scope&) = delete;

    private:
        Workspace& ws_;
        size_t chunk_, used_, total_;
    };

private:
    // Offsets are rounded to this, so every tensor starts on a cache line (and a GPU's
    // 256-byte transaction boundary).
    static constexpr size_t kAlign = 256;

    Backend& backend_;
    std::vector<std::unique_ptr<BackendBuffer>> chunks_;
    size_t chunk_ = 0;  // the chunk tensors are taken from
    size_t used_ = 0;   // bytes used in it
    size_t total_ = 0;  // bytes up to the current position, over all chunks (skipped tails included)
    size_t peak_ = 0;   // the most total_ reached since the last reset
};

}  // namespace strata
