// The tensor type table: ggml's type ids and block layouts, bit-compatible with ggml-common.h.
// Each type knows its block size, bytes per block, how to dequantize a row, how to quantize one
// (reference code), and the dot product of a weight row with an activation row quantized to the
// type ggml pairs it with (vec_dot_type). Fast SIMD kernels live behind the same signatures.
#pragma once

#include <cstddef>
#include <cstdint>

namespace strata {

// ggml's ids (ggml.h, enum ggml_type); gaps are ids ggml retired.
enum class GgmlType : uint32_t {
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    Q5_0 = 6,
    Q5_1 = 7,
    Q8_0 = 8,
    Q8_1 = 9,
    Q2_K = 10,
    Q3_K = 11,
    Q4_K = 12,
    Q5_K = 13,
    Q6_K = 14,
    Q8_K = 15,
    IQ2_XXS = 16,
    IQ2_XS = 17,
    IQ3_XXS = 18,
    IQ1_S = 19,
    IQ4_NL = 20,
    IQ3_S = 21,
    IQ2_S = 22,
    IQ4_XS = 23,
    I8 = 24,
    I16 = 25,
    I32 = 26,
    I64 = 27,
    F64 = 28,
    IQ1_M = 29,
    BF16 = 30,
};

struct TypeTraits {
    GgmlType type;
    const char* name;     // ggml's spelling: "f32", "q4_K", ...
    int64_t block_size;   // elements per block (1 for plain floats)
    size_t type_size;     // bytes per block
    bool is_quantized;
    // Dequantize n elements (n a multiple of block_size). Null if strata cannot decode the type.
    void (*to_float)(const void* src, float* dst, int64_t n);
    // Reference quantization of n floats (n a multiple of block_size). Null if not a target.
    void (*from_float)(const float* src, void* dst, int64_t n);
    // Activations are converted to this type before vec_dot (ggml's pairing: Q4_0 with Q8_0,
    // Q4_1 with Q8_1, K-quants with Q8_K, F16 with F16, F32 with F32).
    GgmlType vec_dot_type;
    // Dot product of n weights (this type) with n activations (vec_dot_type). Null if none.
    float (*vec_dot)(int64_t n, const void* weights, const void* activations);
};

// The traits of a type id as stored in a file; nullptr for ids strata does not know.
const TypeTraits* find_type_traits(uint32_t id);
// The traits of a known type (throws Error for a type strata has no table entry for).
const TypeTraits& type_traits(GgmlType type);
const char* type_name(GgmlType type);
// Looks a type up by its ggml name, case-insensitive ("q4_k", "F16"); nullptr if unknown.
const TypeTraits* find_type_by_name(const char* name);

// Bytes of a row of n elements; throws Error when n is not a multiple of the block size.
size_t row_size(GgmlType type, int64_t n);

}  // namespace strata
