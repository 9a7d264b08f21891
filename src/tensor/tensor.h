// A typed, non-owning view of tensor bytes (usually inside a mapped GGUF file).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "tensor/ggml_type.h"

namespace strata {

struct TensorView {
    std::string_view name;
    GgmlType type = GgmlType::F32;
    int n_dims = 0;
    int64_t ne[4] = {1, 1, 1, 1};  // ggml order: ne[0] is the contiguous row length
    const void* data = nullptr;
    size_t nbytes = 0;

    bool empty() const { return data == nullptr; }
    int64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
    int64_t n_rows() const { return ne[1] * ne[2] * ne[3]; }
    size_t row_bytes() const { return row_size(type, ne[0]); }
    const uint8_t* row(int64_t i) const { return static_cast<const uint8_t*>(data) + i * row_bytes(); }
};

}  // namespace strata
