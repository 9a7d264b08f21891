// Small AVX2 building blocks shared by simd_avx2.cpp and simd_avx2_k.cpp. Include it after
// simd_avx2_target.h; everything here has internal linkage, so no AVX2 copy can leak to callers
// outside the region.
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace strata::avx2 {
namespace {

inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

inline float hmax(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// The raw half bits of a block scale as float (exact: every half is a float).
inline float half(uint16_t h) { return _cvtsh_ss(h); }

inline __m256i load32(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
inline __m128i load16(const void* p) { return _mm_loadu_si128(static_cast<const __m128i*>(p)); }

// Sum of u[i] * s[i] over each run of four bytes, into 8 int32 lanes: u unsigned (0..255), s
// signed. vpmaddubsw saturates its int16 pair sums, so the callers keep u * s pairs below 2^15:
// with |s| <= 127 that holds for u <= 128.
inline __m256i dot_u8_i8(__m256i u, __m256i s) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

// Signed · signed bytes in runs of four: vpmaddubsw needs one unsigned operand, so move x's sign
// onto y (|x| * sign(x)·y). Exact when x, y are in -127..127 (the levels of every format here).
inline __m256i dot_i8(__m256i x, __m256i y) {
    return dot_u8_i8(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
}

// Bytes 0..15 of the result are the low nibbles of p[0..15], bytes 16..31 their high nibbles
// (the element order of Q4_0/Q5_0 blocks).
inline __m256i nibbles32(const uint8_t* p) {
    const __m128i b = load16(p);
    const __m256i both = _mm256_inserti128_si256(_mm256_castsi128_si256(b), _mm_srli_epi16(b, 4), 1);
    return _mm256_and_si256(both, _mm256_set1_epi8(0x0F));
}

// 0xFF in byte j where bit j of the little-endian word at p is set, else 0.
inline __m256i bits32_to_bytes(const uint8_t* p) {
    uint32_t w;
    std::memcpy(&w, p, sizeof w);
    // Byte j takes byte j/8 of the word (the word is repeated in both 128-bit lanes), then tests bit j%8.
    const __m256i spread = _mm256_shuffle_epi8(
        _mm256_set1_epi32(static_cast<int>(w)),
        _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
    const __m256i bit = _mm256_set1_epi64x(static_cast<long long>(0x8040201008040201ull));
    return _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
}

// The NT activation rows of a multi-row kernel, `stride` bytes apart.
template <class Block, int NT>
void activation_rows(const void* a, size_t stride, const Block* (&rows)[NT]) {
    for (int j = 0; j < NT; ++j) rows[j] = reinterpret_cast<const Block*>(static_cast<const uint8_t*>(a) + j * stride);
}

// The vec_dot signature on top of a multi-row kernel run for one row.
template <void (*kernel)(int64_t, const void*, const void*, size_t, float*)>
float dot1(int64_t n, const void* w, const void* a) {
    float out;
    kernel(n, w, a, 0, &out);
    return out;
}

}  // namespace
}  // namespace strata::avx2
