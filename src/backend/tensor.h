// The one tensor type of the compute interface, for weights, activations and state alike: a type,
// a shape and byte strides in ggml's convention, and the backend buffer holding the bytes. The
// address is in the owning backend's memory (device memory for a GPU backend; host memory, or the
// mapped file itself for weights, on the CPU): a model passes tensors to ops and never reads them.
// Views (row ranges, column ranges, one matrix of a stack) are new strides over the same bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string_view>

#include "tensor/ggml_type.h"

namespace strata {

class BackendBuffer;

struct Tensor {
    GgmlType type = GgmlType::F32;
    int64_t ne[4] = {1, 1, 1, 1};  // elements per dimension; ne[0] is the contiguous row
    // Byte strides: nb[0] is one block (one element for plain types), nb[1] one row, nb[2] one
    // matrix, nb[3] one stack of matrices. A column range of a matrix keeps the parent's nb[1].
    size_t nb[4] = {0, 0, 0, 0};
    void* data = nullptr;
    BackendBuffer* buffer = nullptr;
    std::string_view name;  // weights: the GGUF name, for messages

    bool empty() const { return data == nullptr; }
    int64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
    int64_t n_rows() const { return ne[1] * ne[2] * ne[3]; }
    // Bytes of one packed row of ne[0] elements.
    size_t row_bytes() const { return row_size(type, ne[0]); }
    // Rows follow one another without gaps, matrices likewise: the tensor is one span of nbytes().
    bool is_contiguous() const;
    // Bytes from the first element to the end of the last row (the span a contiguous tensor covers).
    size_t nbytes() const;
    // Byte offset of data inside its buffer.
    size_t offset() const;

    // Rows [begin, end) along ne[1] (of every matrix).
    Tensor rows(int64_t begin, int64_t end) const;
    // Columns [begin, end) along ne[0], keeping the row stride; for quantized types both ends
    // must fall on block boundaries.
    Tensor cols(int64_t begin, int64_t end) const;
    // Matrix i of a stack along ne[2] (MoE experts), as a 2-D tensor over the same bytes.
    Tensor matrix(int64_t i) const;
    // The same contiguous bytes read as another 2-D shape (ne0 · ne1 elements).
    Tensor reshape(int64_t ne0, int64_t ne1) const;
};

// A contiguous tensor of the given shape (up to four dims, ne[0] first) at `data`.
Tensor make_tensor(GgmlType type, std::initializer_list<int64_t> shape, void* data, BackendBuffer* buffer);

}  // namespace strata
