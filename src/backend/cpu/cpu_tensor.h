// Host access to the CPU backend's tensors (internal to backend/cpu): row pointers that honour
// the row stride, and packing of strided views for kernels that take contiguous rows.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#include "backend/tensor.h"

namespace strata {

inline uint8_t* row_bytes_at(const Tensor& t, int64_t i) { return static_cast<uint8_t*>(t.data) + i * t.nb[1]; }
inline float* f32_row(const Tensor& t, int64_t i) { return reinterpret_cast<float*>(row_bytes_at(t, i)); }
inline const float* f32_or_null(const Tensor& t) { return t.empty() ? nullptr : static_cast<const float*>(t.data); }
inline const int32_t* i32_data(const Tensor& t) { return static_cast<const int32_t*>(t.data); }

// The F32 matrix t with its rows packed one after another: t's own memory when they already are,
// else a copy in `scratch` (reused between calls, so steady state allocates nothing).
inline const float* packed_f32(const Tensor& t, std::vector<float>& scratch) {
    const size_t width = static_cast<size_t>(t.ne[0]);
    if (t.nb[1] == width * sizeof(float)) return static_cast<const float*>(t.data);
    scratch.resize(width * static_cast<size_t>(t.ne[1]));
    for (int64_t r = 0; r < t.ne[1]; ++r) std::memcpy(&scratch[r * width], f32_row(t, r), width * sizeof(float));
    return scratch.data();
}

// Where a kernel that writes packed rows puts its output for t: t's own memory when its rows are
// packed, else `scratch`, which unpack_output then copies into t's rows.
inline float* packed_output(const Tensor& t, std::vector<float>& scratch) {
    if (t.nb[1] == static_cast<size_t>(t.ne[0]) * sizeof(float)) return static_cast<float*>(t.data);
    scratch.resize(static_cast<size_t>(t.ne[0] * t.ne[1]));
    return scratch.data();
}
inline void unpack_output(const Tensor& t, const float* packed) {
    if (packed == t.data) return;
    const size_t width = static_cast<size_t>(t.ne[0]);
    for (int64_t r = 0; r < t.ne[1]; ++r) std::memcpy(f32_row(t, r), packed + r * width, width * sizeof(float));
}

}  // namespace strata
