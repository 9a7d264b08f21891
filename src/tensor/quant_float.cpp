// The plain float types. Dot products accumulate in double, as ggml's scalar ggml_vec_dot_f16 /
// _bf16 / _f32 do (ggml_float), so long rows lose no precision to the running sum.
#include <cstring>

#include "tensor/float16.h"
#include "tensor/quant_kernels.h"

namespace strata {

namespace {

template <float (*to_f32)(uint16_t)>
void widen_row(const void* src, float* dst, int64_t n) {
    const uint16_t* x = static_cast<const uint16_t*>(src);
    for (int64_t i = 0; i < n; ++i) dst[i] = to_f32(x[i]);
}

template <uint16_t (*from_f32)(float)>
void narrow_row(const float* src, void* dst, int64_t n) {
    uint16_t* y = static_cast<uint16_t*>(dst);
    for (int64_t i = 0; i < n; ++i) y[i] = from_f32(src[i]);
}

template <float (*to_f32)(uint16_t)>
float dot_16bit(int64_t n, const void* w, const void* a) {
    const uint16_t* x = static_cast<const uint16_t*>(w);
    const uint16_t* y = static_cast<const uint16_t*>(a);
    double sum = 0;
    for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(to_f32(x[i]) * to_f32(y[i]));
    return static_cast<float>(sum);
}

}  // namespace

void dequantize_row_f32(const void* src, float* dst, int64_t n) { std::memcpy(dst, src, n * sizeof(float)); }
void quantize_row_f32(const float* src, void* dst, int64_t n) { std::memcpy(dst, src, n * sizeof(float)); }

float vec_dot_f32(int64_t n, const void* w, const void* a) {
    const float* x = static_cast<const float*>(w);
    const float* y = static_cast<const float*>(a);
    double sum = 0;
    for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i] * y[i]);
    return static_cast<float>(sum);
}

void dequantize_row_f16(const void* src, float* dst, int64_t n) { widen_row<fp16_to_fp32>(src, dst, n); }
void quantize_row_f16(const float* src, void* dst, int64_t n) { narrow_row<fp32_to_fp16>(src, dst, n); }
float vec_dot_f16(int64_t n, const void* w, const void* a) { return dot_16bit<fp16_to_fp32>(n, w, a); }

void dequantize_row_bf16(const void* src, float* dst, int64_t n) { widen_row<bf16_to_fp32>(src, dst, n); }
void quantize_row_bf16(const float* src, void* dst, int64_t n) { narrow_row<fp32_to_bf16>(src, dst, n); }
float vec_dot_bf16(int64_t n, const void* w, const void* a) { return dot_16bit<bf16_to_fp32>(n, w, a); }

}  // namespace strata
