#include "backend/buffer.h"

#include "util/error.h"

namespace strata {

Tensor BackendBuffer::tensor(GgmlType type, std::initializer_list<int64_t> shape, size_t offset) {
    Tensor t = make_tensor(type, shape, static_cast<uint8_t*>(base_) + offset, this);
    if (offset + t.nbytes() > size_) {
        fail("a tensor of ", t.nbytes(), " bytes at offset ", offset, " does not fit a buffer of ", size_, " bytes");
    }
    return t;
}

}  // namespace strata
