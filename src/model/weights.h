// Looks tensors up by name with the shape the architecture expects; every failure names the
// file, the tensor, and the expected and actual shapes.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "format/gguf.h"

namespace strata {

class WeightLoader {
public:
    explicit WeightLoader(const GgufFile& file) : file_(file) {}

    // Shape in ggml order (ne[0] first); throws when missing or of another shape.
    TensorView require(const std::string& name, std::initializer_list<int64_t> shape) const;
    // Empty view when absent; throws when present with another shape.
    TensorView optional(const std::string& name, std::initializer_list<int64_t> shape) const;
    // A small 1-D tensor (norm weight, bias) converted to float.
    std::vector<float> require_vector(const std::string& name, int64_t n) const;
    std::vector<float> optional_vector(const std::string& name, int64_t n) const;

    const GgufFile& file() const { return file_; }

private:
    const GgufFile& file_;
};

}  // namespace strata
