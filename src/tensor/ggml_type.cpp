// The type table. Types strata can only list (the IQ1/IQ2/IQ3 grids, integers, f64) have their
// block geometry, so `strata info` can size them, and null kernels.
#include "tensor/ggml_type.h"

#include <cctype>
#include <cstring>

#include "tensor/quant.h"
#include "tensor/quant_blocks.h"
#include "tensor/quant_kernels.h"
#include "util/error.h"

namespace strata {

namespace {

using T = GgmlType;

constexpr TypeTraits kTable[] = {
    // type, name, block, bytes, quantized, to_float, from_float, vec_dot_type, vec_dot
    {T::F32, "f32", 1, 4, false, dequantize_row_f32, quantize_row_f32, T::F32, vec_dot_f32},
    {T::F16, "f16", 1, 2, false, dequantize_row_f16, quantize_row_f16, T::F16, vec_dot_f16},
    {T::Q4_0, "q4_0", QK4_0, sizeof(block_q4_0), true, dequantize_row_q4_0, quantize_row_q4_0, T::Q8_0,
     vec_dot_q4_0_q8_0},
    {T::Q4_1, "q4_1", QK4_1, sizeof(block_q4_1), true, dequantize_row_q4_1, quantize_row_q4_1, T::Q8_1,
     vec_dot_q4_1_q8_1},
    {T::Q5_0, "q5_0", QK5_0, sizeof(block_q5_0), true, dequantize_row_q5_0, quantize_row_q5_0, T::Q8_0,
     vec_dot_q5_0_q8_0},
    {T::Q5_1, "q5_1", QK5_1, sizeof(block_q5_1), true, dequantize_row_q5_1, quantize_row_q5_1, T::Q8_1,
     vec_dot_q5_1_q8_1},
    {T::Q8_0, "q8_0", QK8_0, sizeof(block_q8_0), true, dequantize_row_q8_0, quantize_row_q8_0, T::Q8_0,
     vec_dot_q8_0_q8_0},
    // Q8_1 and Q8_K are activation formats: ggml has no weight kernels for them either.
    {T::Q8_1, "q8_1", QK8_1, sizeof(block_q8_1), true, dequantize_row_q8_1, quantize_row_q8_1, T::Q8_1, nullptr},
    {T::Q2_K, "q2_K", QK_K, sizeof(block_q2_K), true, dequantize_row_q2_k, quantize_row_q2_k, T::Q8_K,
     vec_dot_q2_k_q8_k},
    {T::Q3_K, "q3_K", QK_K, sizeof(block_q3_K), true, dequantize_row_q3_k, quantize_row_q3_k, T::Q8_K,
     vec_dot_q3_k_q8_k},
    {T::Q4_K, "q4_K", QK_K, sizeof(block_q4_K), true, dequantize_row_q4_k, quantize_row_q4_k, T::Q8_K,
     vec_dot_q4_k_q8_k},
    {T::Q5_K, "q5_K", QK_K, sizeof(block_q5_K), true, dequantize_row_q5_k, quantize_row_q5_k, T::Q8_K,
     vec_dot_q5_k_q8_k},
    {T::Q6_K, "q6_K", QK_K, sizeof(block_q6_K), true, dequantize_row_q6_k, quantize_row_q6_k, T::Q8_K,
     vec_dot_q6_k_q8_k},
    {T::Q8_K, "q8_K", QK_K, sizeof(block_q8_K), true, dequantize_row_q8_k, quantize_row_q8_k, T::Q8_K, nullptr},
    {T::IQ2_XXS, "iq2_xxs", QK_K, kSizeIq2Xxs, true, nullptr, nullptr, T::Q8_K, nullptr},
    {T::IQ2_XS, "iq2_xs", QK_K, kSizeIq2Xs, true, nullptr, nullptr, T::Q8_K, nullptr},
    {T::IQ3_XXS, "iq3_xxs", QK_K, kSizeIq3Xxs, true, nullptr, nullptr, T::Q8_K, nullptr},
    {T::IQ1_S, "iq1_s", QK_K, kSizeIq1S, true, nullptr, nullptr, T::Q8_K, nullptr},
    {T::IQ4_NL, "iq4_nl", QK4_NL, sizeof(block_iq4_nl), true, dequantize_row_iq4_nl, quantize_row_iq4_nl, T::Q8_0,
     vec_dot_iq4_nl_q8_0},
    {T::IQ3_S, "iq3_s", QK_K, kSizeIq3S, true, nullptr, nullptr, T::Q8_K, nullptr},
    {T::IQ2_S, "iq2_s", QK_K, kSizeIq2S, true, nullptr, nullptr, T::Q8_K, nullptr},
    {T::IQ4_XS, "iq4_xs", QK_K, sizeof(block_iq4_xs), true, dequantize_row_iq4_xs, quantize_row_iq4_xs, T::Q8_K,
     vec_dot_iq4_xs_q8_k},
    {T::I8, "i8", 1, 1, false, nullptr, nullptr, T::I8, nullptr},
    {T::I16, "i16", 1, 2, false, nullptr, nullptr, T::I16, nullptr},
    {T::I32, "i32", 1, 4, false, nullptr, nullptr, T::I32, nullptr},
    {T::I64, "i64", 1, 8, false, nullptr, nullptr, T::I64, nullptr},
    {T::F64, "f64", 1, 8, false, nullptr, nullptr, T::F64, nullptr},
    {T::IQ1_M, "iq1_m", QK_K, kSizeIq1M, true, nullptr, nullptr, T::Q8_K, nullptr},
    {T::BF16, "bf16", 1, 2, false, dequantize_row_bf16, quantize_row_bf16, T::BF16, vec_dot_bf16},
};

bool equal_ignoring_case(const char* a, const char* b) {
    for (; *a && *b; ++a, ++b) {
        if (std::tolower(static_cast<unsigned char>(*a)) != std::tolower(static_cast<unsigned char>(*b))) return false;
    }
    return *a == *b;
}

const TypeTraits& checked_traits(GgmlType type, int64_t n) {
    const TypeTraits& t = type_traits(type);
    if (n % t.block_size != 0) {
        fail("a row of ", n, " elements is not a whole number of ", t.name, " blocks (", t.block_size,
             " elements each)");
    }
    return t;
}

}  // namespace

const TypeTraits* find_type_traits(uint32_t id) {
    for (const TypeTraits& t : kTable) {
        if (static_cast<uint32_t>(t.type) == id) return &t;
    }
    return nullptr;
}

const TypeTraits& type_traits(GgmlType type) {
    const TypeTraits* t = find_type_traits(static_cast<uint32_t>(type));
    if (!t) fail("unknown ggml type id ", static_cast<uint32_t>(type));
    return *t;
}

const char* type_name(GgmlType type) {
    const TypeTraits* t = find_type_traits(static_cast<uint32_t>(type));
    return t ? t->name : "unknown";
}

const TypeTraits* find_type_by_name(const char* name) {
    for (const TypeTraits& t : kTable) {
        if (equal_ignoring_case(t.name, name)) return &t;
    }
    return nullptr;
}

size_t row_size(GgmlType type, int64_t n) {
    const TypeTraits& t = checked_traits(type, n);
    return static_cast<size_t>(n / t.block_size) * t.type_size;
}

void quantize_row(GgmlType type, const float* src, void* dst, int64_t n) {
    const TypeTraits& t = checked_traits(type, n);
    if (!t.from_float) fail("strata cannot quantize to ", t.name);
    t.from_float(src, dst, n);
}

void dequantize_row(GgmlType type, const void* src, float* dst, int64_t n) {
    const TypeTraits& t = checked_traits(type, n);
    if (!t.to_float) fail("strata cannot decode ", t.name, " tensors");
    t.to_float(src, dst, n);
}

}  // namespace strata
