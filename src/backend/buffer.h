// Memory a backend owns: a buffer is one allocation in the backend's memory space (device memory
// for a GPU; host memory, or a view of mapped file bytes, for the CPU), freed by its destructor.
// Every Tensor names the buffer it lives in.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <memory>
#include <vector>

#include "backend/tensor.h"

namespace strata {

class Backend;

class BackendBuffer {
public:
    BackendBuffer(Backend& backend, void* base, size_t size) : backend_(backend), base_(base), size_(size) {}
    virtual ~BackendBuffer() = default;
    BackendBuffer(const BackendBuffer&) = delete;
    BackendBuffer& operator=(const BackendBuffer&) = delete;

    Backend& backend() const { return backend_; }
    void* base() const { return base_; }
    size_t size() const { return size_; }
    // A contiguous tensor of the given shape starting `offset` bytes into the buffer; throws
    // Error when it does not fit.
    Tensor tensor(GgmlType type, std::initializer_list<int64_t> shape, size_t offset = 0);

private:
    Backend& backend_;
    void* base_;
    size_t size_;
};

// The buffers a loaded model keeps for its weights (freed with the model).
using WeightBuffers = std::vector<std::unique_ptr<BackendBuffer>>;

}  // namespace strata
