#include "backend/tensor.h"

#include "backend/buffer.h"
#include "util/error.h"

namespace strata {

bool Tensor::is_contiguous() const {
    return nb[1] == row_bytes() && nb[2] == nb[1] * static_cast<size_t>(ne[1]) &&
           nb[3] == nb[2] * static_cast<size_t>(ne[2]);
}

size_t Tensor::nbytes() const {
    if (n_elements() == 0) return 0;
    return row_bytes() + nb[1] * static_cast<size_t>(ne[1] - 1) + nb[2] * static_cast<size_t>(ne[2] - 1) +
           nb[3] * static_cast<size_t>(ne[3] - 1);
}

size_t Tensor::offset() const {
    return buffer ? static_cast<size_t>(static_cast<const uint8_t*>(data) - static_cast<const uint8_t*>(buffer->base()))
                  : 0;
}

Tensor Tensor::rows(int64_t begin, int64_t end) const {
    if (begin < 0 || end > ne[1] || begin > end) fail("tensor '", name, "': rows [", begin, ", ", end, ") of ", ne[1]);
    Tensor t = *this;
    t.ne[1] = end - begin;
    t.data = static_cast<uint8_t*>(data) + static_cast<size_t>(begin) * nb[1];
    // Rows of one matrix: the matrix stride shrinks with it, so a row range of packed rows is
    // itself contiguous (one span: copies, reads and writes take it whole).
    if (ne[2] == 1 && ne[3] == 1) t.nb[3] = t.nb[2] = t.nb[1] * static_cast<size_t>(t.ne[1]);
    return t;
}

Tensor Tensor::cols(int64_t begin, int64_t end) const {
    const int64_t block = type_traits(type).block_size;
    if (begin < 0 || end > ne[0] || begin > end || begin % block || end % block) {
        fail("tensor '", name, "': columns [", begin, ", ", end, ") of ", ne[0], " (blocks of ", block, ")");
    }
    Tensor t = *this;
    t.ne[0] = end - begin;
    t.data = static_cast<uint8_t*>(data) + static_cast<size_t>(begin / block) * nb[0];
    return t;
}

Tensor Tensor::matrix(int64_t i) const {
    if (i < 0 || i >= ne[2]) fail("tensor '", name, "': matrix ", i, " of ", ne[2]);
    Tensor t = *this;
    t.ne[2] = t.ne[3] = 1;
    t.data = static_cast<uint8_t*>(data) + static_cast<size_t>(i) * nb[2];
    t.nb[3] = t.nb[2] = nb[1] * static_cast<size_t>(ne[1]);
    return t;
}

Tensor Tensor::reshape(int64_t ne0, int64_t ne1) const {
    if (!is_contiguous() || ne0 * ne1 != n_elements()) {
        fail("tensor '", name, "': cannot view ", n_elements(), " elements as [", ne0, ", ", ne1, "]");
    }
    Tensor t = make_tensor(type, {ne0, ne1}, data, buffer);
    t.name = name;
    return t;
}

Tensor make_tensor(GgmlType type, std::initializer_list<int64_t> shape, void* data, BackendBuffer* buffer) {
    if (shape.size() == 0 || shape.size() > 4) fail("a tensor has 1 to 4 dimensions, got ", shape.size());
    Tensor t;
    t.type = type;
    int d = 0;
    for (int64_t n : shape) t.ne[d++] = n;
    t.nb[0] = type_traits(type).type_size;
    t.nb[1] = row_size(type, t.ne[0]);
    t.nb[2] = t.nb[1] * static_cast<size_t>(t.ne[1]);
    t.nb[3] = t.nb[2] * static_cast<size_t>(t.ne[2]);
    t.data = data;
    t.buffer = buffer;
    return t;
}

}  // namespace strata
