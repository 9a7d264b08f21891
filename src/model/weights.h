// Looks tensors up by name with the shape the architecture expects and hands them to the backend
// once, at load: every failure names the file, the tensor, and the expected and actual shapes.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>

#include "backend/backend.h"
#include "format/gguf.h"

namespace strata {

class WeightLoader {
public:
    // Buffers the backend makes for the weights go to `keep`, which the model holds.
    WeightLoader(const GgufFile& file, Backend& backend, WeightBuffers& keep)
        : file_(file), backend_(backend), keep_(keep) {}

    // A weight in its stored type. Shape in ggml order (ne[0] first); throws when missing or of
    // another shape.
    Tensor require(const std::string& name, std::initializer_list<int64_t> shape) const;
    // Empty tensor when absent; throws when present with another shape.
    Tensor optional(const std::string& name, std::initializer_list<int64_t> shape) const;
    // A small tensor (norm weight, bias, conv weights, A, D) converted to F32.
    Tensor require_f32(const std::string& name, std::initializer_list<int64_t> shape) const;
    Tensor optional_f32(const std::string& name, std::initializer_list<int64_t> shape) const;

    const GgufFile& file() const { return file_; }

private:
    TensorView find(const std::string& name, std::initializer_list<int64_t> shape, bool required) const;

    const GgufFile& file_;
    Backend& backend_;
    WeightBuffers& keep_;
};

}  // namespace strata
