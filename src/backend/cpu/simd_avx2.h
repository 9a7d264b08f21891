// AVX2+FMA+F16C kernels with the type table's signatures (simd_avx2.cpp: float types, blocks of
// 32 and the activation quantizers; simd_avx2_k.cpp: the K-quants). Call them only when
// CpuFeatures reports avx2, fma and f16c; kernels.cpp does that check. Internal to backend/cpu.
#pragma once

#include <cstddef>
#include <cstdint>

namespace strata::avx2 {

float vec_dot_f32(int64_t n, const void* w, const void* a);
float vec_dot_f16(int64_t n, const void* w, const void* a);
float vec_dot_bf16(int64_t n, const void* w, const void* a);
float vec_dot_q8_0_q8_0(int64_t n, const void* w, const void* a);
float vec_dot_q4_0_q8_0(int64_t n, const void* w, const void* a);
float vec_dot_q5_0_q8_0(int64_t n, const void* w, const void* a);

float vec_dot_q2_k_q8_k(int64_t n, const void* w, const void* a);
float vec_dot_q3_k_q8_k(int64_t n, const void* w, const void* a);
float vec_dot_q4_k_q8_k(int64_t n, const void* w, const void* a);
float vec_dot_q5_k_q8_k(int64_t n, const void* w, const void* a);
float vec_dot_q6_k_q8_k(int64_t n, const void* w, const void* a);

// Four activation rows `stride` bytes apart against one weight row: out[j] is bit for bit what
// the vec_dot above returns for row j (the weight is unpacked once for the four).
void vec_dot_f32_x4(int64_t n, const void* w, const void* a, size_t stride, float* out);
void vec_dot_f16_x4(int64_t n, const void* w, const void* a, size_t stride, float* out);
void vec_dot_q8_0_q8_0_x4(int64_t n, const void* w, const void* a, size_t stride, float* out);
void vec_dot_q4_0_q8_0_x4(int64_t n, const void* w, const void* a, size_t stride, float* out);
void vec_dot_q5_0_q8_0_x4(int64_t n, const void* w, const void* a, size_t stride, float* out);
void vec_dot_q4_k_q8_k_x4(int64_t n, const void* w, const void* a, size_t stride, float* out);
void vec_dot_q5_k_q8_k_x4(int64_t n, const void* w, const void* a, size_t stride, float* out);
void vec_dot_q6_k_q8_k_x4(int64_t n, const void* w, const void* a, size_t stride, float* out);

// y[i] += a · x[i] (attention's weighted sum of values).
void axpy_f32(int64_t n, float a, const float* x, float* y);
void axpy_f16(int64_t n, float a, const uint16_t* x, float* y);

// Byte-exact with the reference quantizers (quantize_row_q8_0 / _q8_k / _f16).
void quantize_row_q8_0(const float* src, void* dst, int64_t n);
void quantize_row_q8_k(const float* src, void* dst, int64_t n);
void quantize_row_f16(const float* src, void* dst, int64_t n);

}  // namespace strata::avx2
