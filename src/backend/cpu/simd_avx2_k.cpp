// AVX2 dot products of the K-quants with Q8_K activations. Reference: vec_dot_with_q8_k in
// quant_k.cpp, which reads every super-block as 16 groups of 16: x = d·scale_g·q - dmin·min_g.
//
// Per super-block the kernels form the same integers as the reference, in 8 int32 lanes whose sum
// is the reference's isum (Σ_g scale_g · (q·a)_g, with the per-type level offsets folded into
// bsums terms), then add d·d_a·isum to float lanes with one FMA; the min terms use bsums as the
// reference does. So only the float accumulation order differs.
//
// Bit layouts (quant_blocks.h): Q2_K/Q3_K keep 2 low bits of element e in byte e%32 of their
// half of 128 at shift 2·((e%128)/32) — one 32-byte load per half yields its four quarters of 32
// by shifting; Q6_K does the same with nibbles of ql and 2-bit pairs of qh; Q4_K/Q5_K keep
// element e's nibble in byte e%32 of each 64, high nibble for the second 32.
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "backend/cpu/simd_avx2.h"
#include "tensor/quant_blocks.h"

// clang-format off
#include "backend/cpu/simd_avx2_target.h"
#include "backend/cpu/simd_avx2_util.h"
// clang-format on

namespace strata::avx2 {

namespace {

// int16 lanes 0..7 = s[g], lanes 8..15 = s[g+1], from 16 int8 scales: a quarter of 32 elements is
// two groups of 16, and vpmaddubsw leaves the first group's products in the low 128-bit lane.
inline __m256i scale_pair(__m128i s8, int g) {
    const __m128i idx =
        _mm_add_epi8(_mm_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1), _mm_set1_epi8(static_cast<char>(g)));
    return _mm256_cvtepi8_epi16(_mm_shuffle_epi8(s8, idx));
}

// Σ_g s16[g] · bsums[g] over the 16 groups, spread over 8 int32 lanes.
inline __m256i dot_bsums(__m256i s16, const block_q8_K& y) { return _mm256_madd_epi16(s16, load32(y.bsums)); }

// Q2_K/Q3_K quarter k of a half: the 2-bit fields at shift 2k of each of the 32 bytes.
inline __m256i quarter_2bit(__m256i bytes, int k) {
    return _mm256_and_si256(_mm256_srli_epi16(bytes, 2 * k), _mm256_set1_epi8(3));
}

// Q4_K/Q5_K: six-bit scales and mins of the 8 groups of 32, unpacked from their 12 bytes
// (get_scale_min_k4 for all j at once): bytes 0..7 are the scales, 8..15 the mins.
inline void scales_mins_k4(const uint8_t* packed, uint8_t out[16]) {
    constexpr uint32_t kLow6 = 0x3f3f3f3f, kLow4 = 0x0f0f0f0f, kLow2 = 0x03030303;
    uint32_t u[3];
    std::memcpy(u, packed, 12);
    const uint32_t w[4] = {
        u[0] & kLow6,                                        // scales 0..3
        (u[2] & kLow4) | (((u[0] >> 6) & kLow2) << 4),       // scales 4..7
        u[1] & kLow6,                                        // mins 0..3
        ((u[2] >> 4) & kLow4) | (((u[1] >> 6) & kLow2) << 4),  // mins 4..7
    };
    std::memcpy(out, w, 16);
}

// Q3_K: the 16 six-bit scales (get_scale_q3), minus 32, as int8.
inline __m128i scales_q3(const uint8_t* packed) {
    constexpr uint32_t kLow4 = 0x0f0f0f0f, kLow2 = 0x03030303;
    uint32_t u[3];
    std::memcpy(u, packed, 12);
    const uint32_t w[4] = {
        (u[0] & kLow4) | ((u[2] & kLow2) << 4),                // scales 0..3: top bits at shift 0
        (u[1] & kLow4) | (((u[2] >> 2) & kLow2) << 4),         // 4..7: shift 2
        ((u[0] >> 4) & kLow4) | (((u[2] >> 4) & kLow2) << 4),  // 8..11: high nibbles, shift 4
        ((u[1] >> 4) & kLow4) | (((u[2] >> 6) & kLow2) << 4),  // 12..15: shift 6
    };
    return _mm_sub_epi8(load16(w), _mm_set1_epi8(32));
}

// Σ_j mins[j] · (bsums[2j] + bsums[2j+1]) for the 8 groups of 32 of Q4_K/Q5_K.
inline int min_dot_k4(const uint8_t* mins, const block_q8_K& y) {
    const __m128i pairs = _mm_hadd_epi16(load16(y.bsums), load16(y.bsums + 8));  // one sum per group of 32
    uint64_t m;
    std::memcpy(&m, mins, 8);
    const __m128i prod = _mm_madd_epi16(_mm_cvtepu8_epi16(_mm_cvtsi64_si128(static_cast<long long>(m))), pairs);
    const __m128i s = _mm_add_epi32(prod, _mm_unpackhi_epi64(prod, prod));
    return _mm_cvtsi128_si32(_mm_add_epi32(s, _mm_shuffle_epi32(s, 1)));
}

// Q4_K and Q5_K share everything but the fifth bit; `with_high` adds it from qh. NT activation
// rows (`stride` bytes apart) share each unpacked weight super-block; a row's float operations
// are the same for every NT, so its result does not depend on the grouping.
template <class Block, bool with_high, int NT>
void dot_k4(int64_t n, const void* w, const void* a, size_t stride, float* out) {
    const Block* x = static_cast<const Block*>(w);
    const block_q8_K* y[NT];
    activation_rows(a, stride, y);
    const __m256i low4 = _mm256_set1_epi8(0x0F);
    __m256 acc[NT];
    float min_sum[NT];
    for (int j = 0; j < NT; ++j) {
        acc[j] = _mm256_setzero_ps();
        min_sum[j] = 0;
    }
    for (int64_t i = 0; i < n / QK_K; ++i) {
        uint8_t sm[16];
        scales_mins_k4(x[i].scales, sm);
        const float d = half(x[i].d), dmin = half(x[i].dmin);
        __m256i high = _mm256_setzero_si256();
        if constexpr (with_high) high = load32(x[i].qh);
        __m256i isum[NT];
        for (int j = 0; j < NT; ++j) {
            min_sum[j] += (dmin * y[j][i].d) * static_cast<float>(min_dot_k4(sm + 8, y[j][i]));
            isum[j] = _mm256_setzero_si256();
        }
        for (int c = 0; c < 4; ++c) {  // chunks of 64: groups 2c (low nibbles) and 2c+1 (high)
            const __m256i q4 = load32(x[i].qs + 32 * c);
            __m256i lo = _mm256_and_si256(q4, low4);
            __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q4, 4), low4);
            if constexpr (with_high) {  // bit 2c of qh[l] belongs to element l of group 2c
                const __m256i one = _mm256_set1_epi8(1);
                lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(high, one), 4));
                hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(high, 1), one), 4));
                high = _mm256_srli_epi16(high, 2);
            }
            const __m256i slo = _mm256_set1_epi16(sm[2 * c]), shi = _mm256_set1_epi16(sm[2 * c + 1]);
            for (int j = 0; j < NT; ++j) {
                // Levels 0..31 times |a| <= 127: pair sums stay below 2^15.
                const __m256i plo = _mm256_maddubs_epi16(lo, load32(y[j][i].qs + 64 * c));
                const __m256i phi = _mm256_maddubs_epi16(hi, load32(y[j][i].qs + 64 * c + 32));
                isum[j] = _mm256_add_epi32(isum[j], _mm256_madd_epi16(plo, slo));
                isum[j] = _mm256_add_epi32(isum[j], _mm256_madd_epi16(phi, shi));
            }
        }
        for (int j = 0; j < NT; ++j) {
            acc[j] = _mm256_fmadd_ps(_mm256_set1_ps(d * y[j][i].d), _mm256_cvtepi32_ps(isum[j]), acc[j]);
        }
    }
    for (int j = 0; j < NT; ++j) out[j] = hsum(acc[j]) - min_sum[j];
}

// Q6_K: q = (low nibble | 2 high bits << 4) - 32, folded as Σ s_g (q' · a)_g - 32 Σ s_g bsums_g
// with q' in 0..63 unsigned.
template <int NT>
void dot_q6_k(int64_t n, const void* w, const void* a, size_t stride, float* out) {
    const block_q6_K* x = static_cast<const block_q6_K*>(w);
    const block_q8_K* y[NT];
    activation_rows(a, stride, y);
    const __m256i low4 = _mm256_set1_epi8(0x0F), low2 = _mm256_set1_epi8(3);
    __m256 acc[NT];
    for (int j = 0; j < NT; ++j) acc[j] = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK_K; ++i) {
        const __m128i s8 = load16(x[i].scales);
        const __m256i s16 = _mm256_cvtepi8_epi16(s8);
        __m256i isum[NT];
        for (int j = 0; j < NT; ++j) {
            isum[j] = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(dot_bsums(s16, y[j][i]), 5));
        }
        for (int h = 0; h < 2; ++h) {
            const __m256i qa = load32(x[i].ql + 64 * h), qb = load32(x[i].ql + 64 * h + 32);
            const __m256i qh = load32(x[i].qh + 32 * h);
            for (int k = 0; k < 4; ++k) {
                const __m256i nib = k < 2 ? (k == 0 ? qa : qb) : _mm256_srli_epi16(k == 2 ? qa : qb, 4);
                const __m256i top = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * k), low2);
                const __m256i q = _mm256_or_si256(_mm256_and_si256(nib, low4), _mm256_slli_epi16(top, 4));
                const __m256i sp = scale_pair(s8, 8 * h + 2 * k);
                for (int j = 0; j < NT; ++j) {
                    // Levels 0..63 times |a| <= 127: pair sums up to 16002 < 2^15.
                    const __m256i p = _mm256_maddubs_epi16(q, load32(y[j][i].qs + 128 * h + 32 * k));
                    isum[j] = _mm256_add_epi32(isum[j], _mm256_madd_epi16(p, sp));
                }
            }
        }
        const float d = half(x[i].d);
        for (int j = 0; j < NT; ++j) {
            acc[j] = _mm256_fmadd_ps(_mm256_set1_ps(d * y[j][i].d), _mm256_cvtepi32_ps(isum[j]), acc[j]);
        }
    }
    for (int j = 0; j < NT; ++j) out[j] = hsum(acc[j]);
}

}  // namespace

float vec_dot_q4_k_q8_k(int64_t n, const void* w, const void* a) { return dot1<dot_k4<block_q4_K, false, 1>>(n, w, a); }
float vec_dot_q5_k_q8_k(int64_t n, const void* w, const void* a) { return dot1<dot_k4<block_q5_K, true, 1>>(n, w, a); }
float vec_dot_q6_k_q8_k(int64_t n, const void* w, const void* a) { return dot1<dot_q6_k<1>>(n, w, a); }
void vec_dot_q4_k_q8_k_x4(int64_t n, const void* w, const void* a, size_t stride, float* out) {
    dot_k4<block_q4_K, false, 4>(n, w, a, stride, out);
}
void vec_dot_q5_k_q8_k_x4(int64_t n, const void* w, const void* a, size_t stride, float* out) {
    dot_k4<block_q5_K, true, 4>(n, w, a, stride, out);
}
void vec_dot_q6_k_q8_k_x4(int64_t n, const void* w, const void* a, size_t stride, float* out) {
    dot_q6_k<4>(n, w, a, stride, out);
}

// q = low2 + 4·hbit - 4, folded as Σ s_g (q' · a)_g - 4 Σ s_g bsums_g with q' = low2 | hbit << 2.
float vec_dot_q3_k_q8_k(int64_t n, const void* w, const void* a) {
    const block_q3_K* x = static_cast<const block_q3_K*>(w);
    const block_q8_K* y = static_cast<const block_q8_K*>(a);
    const __m256i one = _mm256_set1_epi8(1);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK_K; ++i) {
        const __m128i s8 = scales_q3(x[i].scales);
        __m256i isum = _mm256_slli_epi32(dot_bsums(_mm256_cvtepi8_epi16(s8), y[i]), 2);
        isum = _mm256_sub_epi32(_mm256_setzero_si256(), isum);
        __m256i hmask = load32(x[i].hmask);  // bit j of byte l: element l of quarter j (of 8)
        for (int h = 0; h < 2; ++h) {
            const __m256i q2 = load32(x[i].qs + 32 * h);
            for (int k = 0; k < 4; ++k) {
                const __m256i hbit = _mm256_slli_epi16(_mm256_and_si256(hmask, one), 2);
                hmask = _mm256_srli_epi16(hmask, 1);
                const __m256i q = _mm256_or_si256(quarter_2bit(q2, k), hbit);
                const __m256i p = _mm256_maddubs_epi16(q, load32(y[i].qs + 128 * h + 32 * k));
                isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p, scale_pair(s8, 8 * h + 2 * k)));
            }
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(half(x[i].d) * y[i].d), _mm256_cvtepi32_ps(isum), acc);
    }
    return hsum(acc);
}

// Scales in the low nibbles of scales[g], mins in the high nibbles; levels 0..3.
float vec_dot_q2_k_q8_k(int64_t n, const void* w, const void* a) {
    const block_q2_K* x = static_cast<const block_q2_K*>(w);
    const block_q8_K* y = static_cast<const block_q8_K*>(a);
    const __m128i low4 = _mm_set1_epi8(0x0F);
    __m256 acc = _mm256_setzero_ps(), acc_min = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK_K; ++i) {
        const __m128i packed = load16(x[i].scales);
        const __m128i s8 = _mm_and_si128(packed, low4);
        const __m128i m8 = _mm_and_si128(_mm_srli_epi16(packed, 4), low4);
        const __m256i msum = dot_bsums(_mm256_cvtepu8_epi16(m8), y[i]);
        acc_min = _mm256_fmadd_ps(_mm256_set1_ps(half(x[i].dmin) * y[i].d), _mm256_cvtepi32_ps(msum), acc_min);
        __m256i isum = _mm256_setzero_si256();
        for (int h = 0; h < 2; ++h) {
            const __m256i q2 = load32(x[i].qs + 32 * h);
            for (int k = 0; k < 4; ++k) {
                const __m256i p = _mm256_maddubs_epi16(quarter_2bit(q2, k), load32(y[i].qs + 128 * h + 32 * k));
                isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p, scale_pair(s8, 8 * h + 2 * k)));
            }
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(half(x[i].d) * y[i].d), _mm256_cvtepi32_ps(isum), acc);
    }
    return hsum(acc) - hsum(acc_min);
}

}  // namespace strata::avx2

#include "backend/cpu/simd_avx2_target_end.h"
