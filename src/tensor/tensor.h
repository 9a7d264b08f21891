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

// Matrix e of a 3-D tensor [ne0, ne1, n] (MoE experts stacked along ne[2]) as a 2-D view into
// the same bytes, so a matmul on it reads that expert's weights only.
inline TensorView expert_slice(const TensorView& t, int64_t e) {
    TensorView m = t;
    m.n_dims = 2;
    m.ne[2] = m.ne[3] = 1;
    m.nbytes = t.row_bytes() * static_cast<size_t>(t.ne[1]);
    m.data = static_cast<const uint8_t*>(t.data) + static_cast<size_t>(e) * m.nbytes;
    return m;
}

}  // namespace strata
