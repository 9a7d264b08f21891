// AVX2+FMA+F16C kernels for the float types, the blocks of 32 (Q8_0, Q4_0, Q5_0) and the
// activation quantizers. References: quant_float.cpp, quant_legacy.cpp, quant_k.cpp.
//
// Dot products: the integer part of each block is exact (as in the reference); only the float
// accumulation order differs (8 lanes, several accumulators, one horizontal sum at the end), so
// results differ from the reference by float rounding only. The quantizers write the reference's
// bytes exactly.
#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <cstring>

#include "backend/cpu/simd_avx2.h"
#include "tensor/float16.h"
#include "tensor/quant_blocks.h"

// clang-format off
#include "backend/cpu/simd_avx2_target.h"
#include "backend/cpu/simd_avx2_util.h"
// clang-format on

namespace strata::avx2 {

namespace {

// Widen 8 half / bfloat16 values to float.
inline __m256 load8_f16(const uint16_t* p) { return _mm256_cvtph_ps(load16(p)); }
inline __m256 load8_bf16(const uint16_t* p) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(load16(p)), 16));
}
inline __m256 load8_f32(const float* p) { return _mm256_loadu_ps(p); }

// NT activation rows (`stride` bytes apart) against one weight row. Each row has four
// accumulators (FMA latency) whatever NT is, so its result is bit-identical alone or in a group;
// NT <= 2 keeps the 4·NT accumulators in registers. The last n % 8 run through `scalar`.
template <class T, __m256 (*load8)(const T*), float (*scalar)(T), int NT>
void dot_float(int64_t n, const void* w, const void* a, size_t stride, float* out) {
    const T* x = static_cast<const T*>(w);
    const T* y[NT];
    activation_rows(a, stride, y);
    __m256 acc[NT][4];
    for (int j = 0; j < NT; ++j) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        for (int k = 0; k < 4; ++k) {
            const __m256 wv = load8(x + i + 8 * k);
            for (int j = 0; j < NT; ++j) acc[j][k] = _mm256_fmadd_ps(wv, load8(y[j] + i + 8 * k), acc[j][k]);
        }
    }
    for (; i + 8 <= n; i += 8) {  // short rows (attention heads of 40, 80, ...)
        const __m256 wv = load8(x + i);
        for (int j = 0; j < NT; ++j) acc[j][0] = _mm256_fmadd_ps(wv, load8(y[j] + i), acc[j][0]);
    }
    for (int j = 0; j < NT; ++j) {
        float sum = hsum(_mm256_add_ps(_mm256_add_ps(acc[j][0], acc[j][1]), _mm256_add_ps(acc[j][2], acc[j][3])));
        for (int64_t t = i; t < n; ++t) sum += scalar(x[t]) * scalar(y[j][t]);
        out[j] = sum;
    }
}

inline float identity(float f) { return f; }
inline float f16_scalar(uint16_t h) { return half(h); }
inline float bf16_scalar(uint16_t h) { return bf16_to_fp32(h); }

// Blocks of 32 against Q8_0 for NT activation rows (`stride` bytes apart) at once:
// acc += (d_w · d_a) · (exact int32 partial dots of the block). A weight block is unpacked once
// for all NT rows. Each row keeps two accumulators (even and odd blocks) whatever NT is, so a
// row's result is bit-identical whether it is computed alone or in a group of NT.
template <class Block, __m256i (*levels)(const Block&), int NT>
void dot_blocks_q8_0(int64_t n, const void* w, const void* a, size_t stride, float* out) {
    const Block* x = static_cast<const Block*>(w);
    const block_q8_0* y[NT];
    activation_rows(a, stride, y);
    __m256 even[NT], odd[NT];
    for (int j = 0; j < NT; ++j) even[j] = odd[j] = _mm256_setzero_ps();
    auto block = [&](int64_t i, __m256* acc) {
        const __m256i q = levels(x[i]);
        const __m256i abs_q = _mm256_sign_epi8(q, q);
        const float dw = half(x[i].d);
        for (int j = 0; j < NT; ++j) {
            const __m256i p = dot_u8_i8(abs_q, _mm256_sign_epi8(load32(y[j][i].qs), q));
            acc[j] = _mm256_fmadd_ps(_mm256_set1_ps(dw * half(y[j][i].d)), _mm256_cvtepi32_ps(p), acc[j]);
        }
    };
    const int64_t nb = n / QK8_0;
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2) {
        block(i, even);
        block(i + 1, odd);
    }
    if (i < nb) block(i, even);
    for (int j = 0; j < NT; ++j) out[j] = hsum(_mm256_add_ps(even[j], odd[j]));
}

inline __m256i levels_q8_0(const block_q8_0& b) { return load32(b.qs); }

inline __m256i levels_q4_0(const block_q4_0& b) { return _mm256_sub_epi8(nibbles32(b.qs), _mm256_set1_epi8(8)); }

// q = nibble + 16·bit - 16: OR-ing 0xF0 into the bytes whose fifth bit is clear gives nibble - 16.
inline __m256i levels_q5_0(const block_q5_0& b) {
    const __m256i clear = _mm256_andnot_si256(bits32_to_bytes(b.qh), _mm256_set1_epi8(static_cast<char>(0xF0)));
    return _mm256_or_si256(nibbles32(b.qs), clear);
}

// 32 int32 lanes (four vectors, elements in order) to 32 int8, saturating (callers stay in range).
inline __m256i pack_i32_to_i8(__m256i a, __m256i b, __m256i c, __m256i d) {
    // The packs work per 128-bit lane, leaving the 4-byte groups in order 0 2 4 6 1 3 5 7.
    const __m256i packed = _mm256_packs_epi16(_mm256_packs_epi32(a, b), _mm256_packs_epi32(c, d));
    return _mm256_permutevar8x32_epi32(packed, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

// std::round (half away from zero) of values with |v| < 2^23: truncate, then step away from
// zero when the dropped fraction (exact: v - trunc(v) needs no rounding) is at least 0.5.
inline __m256 round_half_away(__m256 v) {
    const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m256 sign = _mm256_and_ps(v, _mm256_set1_ps(-0.0f));
    const __m256 frac = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), _mm256_sub_ps(v, t));
    const __m256 step = _mm256_and_ps(_mm256_cmp_ps(frac, _mm256_set1_ps(0.5f), _CMP_GE_OQ), _mm256_set1_ps(1.0f));
    return _mm256_add_ps(t, _mm256_or_ps(step, sign));
}

inline __m256 abs8(__m256 v) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v); }

}  // namespace

float vec_dot_f32(int64_t n, const void* w, const void* a) {
    return dot1<dot_float<float, load8_f32, identity, 1>>(n, w, a);
}
float vec_dot_f16(int64_t n, const void* w, const void* a) {
    return dot1<dot_float<uint16_t, load8_f16, f16_scalar, 1>>(n, w, a);
}
float vec_dot_bf16(int64_t n, const void* w, const void* a) {
    return dot1<dot_float<uint16_t, load8_bf16, bf16_scalar, 1>>(n, w, a);
}
// Two pairs of rows: the weight row is in L1 for the second pass.
void vec_dot_f32_x4(int64_t n, const void* w, const void* a, size_t stride, float* out) {
    dot_float<float, load8_f32, identity, 2>(n, w, a, stride, out);
    dot_float<float, load8_f32, identity, 2>(n, w, static_cast<const uint8_t*>(a) + 2 * stride, stride, out + 2);
}
void vec_dot_f16_x4(int64_t n, const void* w, const void* a, size_t stride, float* out) {
    dot_float<uint16_t, load8_f16, f16_scalar, 2>(n, w, a, stride, out);
    dot_float<uint16_t, load8_f16, f16_scalar, 2>(n, w, static_cast<const uint8_t*>(a) + 2 * stride, stride, out + 2);
}

float vec_dot_q8_0_q8_0(int64_t n, const void* w, const void* a) {
    return dot1<dot_blocks_q8_0<block_q8_0, levels_q8_0, 1>>(n, w, a);
}
float vec_dot_q4_0_q8_0(int64_t n, const void* w, const void* a) {
    return dot1<dot_blocks_q8_0<block_q4_0, levels_q4_0, 1>>(n, w, a);
}
float vec_dot_q5_0_q8_0(int64_t n, const void* w, const void* a) {
    return dot1<dot_blocks_q8_0<block_q5_0, levels_q5_0, 1>>(n, w, a);
}
void vec_dot_q8_0_q8_0_x4(int64_t n, const void* w, const void* a, size_t stride, float* out) {
    dot_blocks_q8_0<block_q8_0, levels_q8_0, 4>(n, w, a, stride, out);
}
void vec_dot_q4_0_q8_0_x4(int64_t n, const void* w, const void* a, size_t stride, float* out) {
    dot_blocks_q8_0<block_q4_0, levels_q4_0, 4>(n, w, a, stride, out);
}
void vec_dot_q5_0_q8_0_x4(int64_t n, const void* w, const void* a, size_t stride, float* out) {
    dot_blocks_q8_0<block_q5_0, levels_q5_0, 4>(n, w, a, stride, out);
}

// y += a·x with one rounding per element (FMA) where the reference rounds twice.
void axpy_f32(int64_t n, float a, const float* x, float* y) {
    const __m256 av = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(av, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; ++i) y[i] += a * x[i];
}

// y += a·x for a row of halves (attention over an F16 value cache).
void axpy_f16(int64_t n, float a, const uint16_t* x, float* y) {
    const __m256 av = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(av, load8_f16(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; ++i) y[i] += a * f16_scalar(x[i]);
}

// The reference's operations in the same order (d = amax / 127, id = 1 / d, round(x · id) half
// away from zero), so the bytes are the reference's. ggml's own AVX2 quantize_row_q8_0 differs
// from its reference in rare ties: it multiplies by 127 / amax and rounds half to even.
void quantize_row_q8_0(const float* src, void* dst, int64_t n) {
    block_q8_0* y = static_cast<block_q8_0*>(dst);
    for (int64_t i = 0; i < n / QK8_0; ++i) {
        const float* x = src + i * QK8_0;
        __m256 v[4];
        __m256 amax = _mm256_setzero_ps();
        for (int k = 0; k < 4; ++k) {
            v[k] = _mm256_loadu_ps(x + 8 * k);
            amax = _mm256_max_ps(amax, abs8(v[k]));
        }
        const float d = hmax(amax) / 127;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = fp32_to_fp16(d);
        __m256i q[4];
        for (int k = 0; k < 4; ++k) {
            q[k] = _mm256_cvttps_epi32(round_half_away(_mm256_mul_ps(v[k], _mm256_set1_ps(id))));
        }
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[i].qs), pack_i32_to_i8(q[0], q[1], q[2], q[3]));
    }
}

// As quantize_row_q8_k: the scale comes from the first element of largest magnitude (its sign
// matters: iscale = -127 / max), levels round half to even (nearest_int), and bsums are the
// sums of each 16 levels.
void quantize_row_q8_k(const float* src, void* dst, int64_t n) {
    block_q8_K* y = static_cast<block_q8_K*>(dst);
    for (int64_t i = 0; i < n / QK_K; ++i) {
        const float* x = src + i * QK_K;
        __m256 amaxv = _mm256_setzero_ps();
        for (int j = 0; j < QK_K; j += 8) amaxv = _mm256_max_ps(amaxv, abs8(_mm256_loadu_ps(x + j)));
        const float amax = hmax(amaxv);
        if (!amax) {
            std::memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        float max = 0;
        for (int j = 0; j < QK_K; j += 8) {
            const int hit = _mm256_movemask_ps(_mm256_cmp_ps(abs8(_mm256_loadu_ps(x + j)), _mm256_set1_ps(amax), _CMP_EQ_OQ));
            if (hit) {
                max = x[j + __builtin_ctz(static_cast<unsigned>(hit))];
                break;
            }
        }
        const float iscale = -127.f / max;
        const __m256 scale = _mm256_set1_ps(iscale);
        for (int j = 0; j < QK_K; j += 32) {
            __m256i q[4];
            for (int k = 0; k < 4; ++k) {
                // vcvtps2dq rounds half to even under the default MXCSR mode, as nearest_int does.
                q[k] = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + j + 8 * k), scale)),
                                        _mm256_set1_epi32(127));
            }
            const __m256i q8 = pack_i32_to_i8(q[0], q[1], q[2], q[3]);
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[i].qs + j), q8);
            // Sums of runs of four, then of the two groups of 16 (one per 128-bit lane).
            __m256i s = dot_u8_i8(_mm256_set1_epi8(1), q8);
            s = _mm256_hadd_epi32(s, s);
            s = _mm256_hadd_epi32(s, s);
            y[i].bsums[j / 16] = static_cast<int16_t>(_mm256_extract_epi32(s, 0));
            y[i].bsums[j / 16 + 1] = static_cast<int16_t>(_mm256_extract_epi32(s, 4));
        }
        y[i].d = 1 / iscale;
    }
}

// vcvtps2ph with round-to-nearest-even is fp32_to_fp16 for every finite input and infinities;
// NaNs stay NaN (payload bits may differ from the reference's 0x7E00).
void quantize_row_f16(const float* src, void* dst, int64_t n) {
    uint16_t* y = static_cast<uint16_t*>(dst);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    }
    for (; i < n; ++i) y[i] = fp32_to_fp16(src[i]);
}

}  // namespace strata::avx2

#include "backend/cpu/simd_avx2_target_end.h"
