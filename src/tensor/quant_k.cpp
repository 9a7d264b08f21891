// Super-blocks of 256 (the K-quants, Q8_K and IQ4_XS): reference quantizers (ggml-quants.c
// quantize_row_*_ref, and quantize_iq4_xs without importance weights), dequantization and the
// integer dot products against Q8_K activations (ggml-cpu/quants.c, generic path).
//
// Every such weight block reads as 16 groups of 16 elements: x = (d * scale[g]) * q - dmin * min[g]
// with integer q, scale and min. Dequantization and the dot products work on that one unpacked
// form, so each type only says how its bits map onto it.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "tensor/float16.h"
#include "tensor/quant_blocks.h"
#include "tensor/quant_kernels.h"
#include "tensor/quant_search.h"

namespace strata {

namespace {

constexpr int kGroups = QK_K / 16;

struct UnpackedK {
    int8_t q[QK_K];
    int16_t scale[kGroups];
    int16_t min[kGroups];  // zero for symmetric types: subtracting 0*0 leaves x unchanged
    float d;
    float dmin;
};

// ---- bit layouts shared by several types ------------------------------------------------------

// Q2_K and Q3_K low bits: within each half of 128, element e's 2 bits sit in byte e%32 at
// shift 2*((e%128)/32).
void pack_2bit(const uint8_t* L, uint8_t* qs) {
    for (int j = 0; j < QK_K; j += 128) {
        for (int l = 0; l < 32; ++l) {
            qs[j / 4 + l] = static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) |
                                                 (L[j + l + 96] << 6));
        }
    }
}

int low_2bit(const uint8_t* qs, int e) { return (qs[(e / 128) * 32 + e % 32] >> (2 * ((e % 128) / 32))) & 3; }

// Q4_K and Q5_K low bits: within each 64, element e's nibble in byte e%32, high nibble for the
// second 32.
int low_4bit_of_64(const uint8_t* qs, int e) {
    const uint8_t b = qs[(e / 64) * 32 + e % 32];
    return e % 64 < 32 ? b & 0xF : b >> 4;
}

// Q3_K: 16 six-bit scales; low 4 bits of scale j in byte j%8 (high nibble for j >= 8), top 2 bits
// in byte 8 + j%4 at shift 2*(j/4). Scales are written in order j = 0..15 into zeroed bytes.
void set_scale_q3(uint8_t* scales, int j, int l) {
    if (j < 8) {
        scales[j] = static_cast<uint8_t>(l & 0xF);
    } else {
        scales[j - 8] |= static_cast<uint8_t>((l & 0xF) << 4);
    }
    scales[8 + j % 4] |= static_cast<uint8_t>((l >> 4) << (2 * (j / 4)));
}

int get_scale_q3(const uint8_t* scales, int j) {
    const int low = j < 8 ? scales[j] & 0xF : scales[j - 8] >> 4;
    return low | (((scales[8 + j % 4] >> (2 * (j / 4))) & 3) << 4);
}

// Q4_K/Q5_K: 8 six-bit scales and 8 six-bit mins in 12 bytes. Groups 0..3 keep both whole in
// bytes 0..7; groups 4..7 keep their low nibbles in bytes 8..11 and their top 2 bits in the
// spare top bits of bytes 0..7 (ggml's get_scale_min_k4).
void set_scale_min_k4(uint8_t* scales, int j, uint8_t ls, uint8_t lm) {
    if (j < 4) {
        scales[j] = ls;
        scales[j + 4] = lm;
    } else {
        scales[j + 4] = static_cast<uint8_t>((ls & 0xF) | ((lm & 0xF) << 4));
        scales[j - 4] |= static_cast<uint8_t>((ls >> 4) << 6);
        scales[j - 0] |= static_cast<uint8_t>((lm >> 4) << 6);
    }
}

void get_scale_min_k4(const uint8_t* scales, int j, uint8_t* sc, uint8_t* m) {
    if (j < 4) {
        *sc = scales[j] & 63;
        *m = scales[j + 4] & 63;
    } else {
        *sc = static_cast<uint8_t>((scales[j + 4] & 0xF) | ((scales[j - 4] >> 6) << 4));
        *m = static_cast<uint8_t>((scales[j + 4] >> 4) | ((scales[j - 0] >> 6) << 4));
    }
}

// ---- unpacking ----------------------------------------------------------------------------------

void unpack(const block_q2_K& b, UnpackedK& u) {
    for (int e = 0; e < QK_K; ++e) u.q[e] = static_cast<int8_t>(low_2bit(b.qs, e));
    for (int g = 0; g < kGroups; ++g) {
        u.scale[g] = b.scales[g] & 0xF;
        u.min[g] = b.scales[g] >> 4;
    }
    u.d = fp16_to_fp32(b.d);
    u.dmin = fp16_to_fp32(b.dmin);
}

void unpack(const block_q3_K& b, UnpackedK& u) {
    // The high bit of element e is bit e/32 of hmask[e%32]; a clear bit means q - 4.
    for (int e = 0; e < QK_K; ++e) {
        const bool high = b.hmask[e % 32] & (1 << (e / 32));
        u.q[e] = static_cast<int8_t>(low_2bit(b.qs, e) - (high ? 0 : 4));
    }
    for (int g = 0; g < kGroups; ++g) {
        u.scale[g] = static_cast<int16_t>(get_scale_q3(b.scales, g) - 32);
        u.min[g] = 0;
    }
    u.d = fp16_to_fp32(b.d);
    u.dmin = 0;
}

// Q4_K/Q5_K: each six-bit (scale, min) of a group of 32 serves both of its groups of 16.
void unpack_scales_mins_k4(const uint8_t* scales, uint16_t d, uint16_t dmin, UnpackedK& u) {
    for (int j = 0; j < QK_K / 32; ++j) {
        uint8_t sc, m;
        get_scale_min_k4(scales, j, &sc, &m);
        u.scale[2 * j] = u.scale[2 * j + 1] = sc;
        u.min[2 * j] = u.min[2 * j + 1] = m;
    }
    u.d = fp16_to_fp32(d);
    u.dmin = fp16_to_fp32(dmin);
}

void unpack(const block_q4_K& b, UnpackedK& u) {
    for (int e = 0; e < QK_K; ++e) u.q[e] = static_cast<int8_t>(low_4bit_of_64(b.qs, e));
    unpack_scales_mins_k4(b.scales, b.d, b.dmin, u);
}

void unpack(const block_q5_K& b, UnpackedK& u) {
    for (int e = 0; e < QK_K; ++e) {
        const bool high = b.qh[e % 32] & (1 << (e / 32));
        u.q[e] = static_cast<int8_t>(low_4bit_of_64(b.qs, e) + (high ? 16 : 0));
    }
    unpack_scales_mins_k4(b.scales, b.d, b.dmin, u);
}

void unpack(const block_q6_K& b, UnpackedK& u) {
    // Per half of 128: quarter k of element l (0..31) has its low nibble in ql[l + 32*(k%2)]
    // (high nibble for k >= 2) and its top 2 bits in qh[l] at shift 2k.
    for (int e = 0; e < QK_K; ++e) {
        const uint8_t* ql = b.ql + 64 * (e / 128);
        const uint8_t* qh = b.qh + 32 * (e / 128);
        const int k = (e % 128) / 32, l = e % 32;
        const int low = k < 2 ? ql[l + 32 * k] & 0xF : ql[l + 32 * (k - 2)] >> 4;
        u.q[e] = static_cast<int8_t>((low | (((qh[l] >> (2 * k)) & 3) << 4)) - 32);
    }
    for (int g = 0; g < kGroups; ++g) {
        u.scale[g] = b.scales[g];
        u.min[g] = 0;
    }
    u.d = fp16_to_fp32(b.d);
    u.dmin = 0;
}

void unpack(const block_q8_K& b, UnpackedK& u) {
    std::memcpy(u.q, b.qs, QK_K);
    std::fill(u.scale, u.scale + kGroups, int16_t{1});
    std::fill(u.min, u.min + kGroups, int16_t{0});
    u.d = b.d;
    u.dmin = 0;
}

int iq4_xs_scale(const block_iq4_xs& b, int ib) {
    return ((b.scales_l[ib / 2] >> (4 * (ib % 2))) & 0xF) | (((b.scales_h >> (2 * ib)) & 3) << 4);
}

void unpack(const block_iq4_xs& b, UnpackedK& u) {
    for (int e = 0; e < QK_K; ++e) {
        const uint8_t byte = b.qs[16 * (e / 32) + e % 16];
        u.q[e] = kvalues_iq4nl[e % 32 < 16 ? byte & 0xF : byte >> 4];
    }
    for (int g = 0; g < kGroups; ++g) {
        u.scale[g] = static_cast<int16_t>(iq4_xs_scale(b, g / 2) - 32);
        u.min[g] = 0;
    }
    u.d = fp16_to_fp32(b.d);
    u.dmin = 0;
}

template <class Block>
void dequantize_blocks(const void* src, float* dst, int64_t n) {
    const Block* b = static_cast<const Block*>(src);
    UnpackedK u;
    for (int64_t i = 0; i < n / QK_K; ++i) {
        unpack(b[i], u);
        for (int e = 0; e < QK_K; ++e) {
            const int g = e / 16;
            dst[i * QK_K + e] = (u.d * u.scale[g]) * u.q[e] - u.dmin * u.min[g];
        }
    }
}

// sum_e x_e a_e = d_w d_a sum_g scale_g (q . q_a)_g - dmin_w d_a sum_g min_g bsums_g: integer
// sums per group, two float multiplies per super-block.
template <class Block>
float vec_dot_with_q8_k(int64_t n, const void* w, const void* a) {
    const Block* x = static_cast<const Block*>(w);
    const block_q8_K* y = static_cast<const block_q8_K*>(a);
    UnpackedK u;
    float sumf = 0;
    for (int64_t i = 0; i < n / QK_K; ++i) {
        unpack(x[i], u);
        int isum = 0, msum = 0;
        for (int g = 0; g < kGroups; ++g) {
            int dot = 0;
            for (int j = 16 * g; j < 16 * g + 16; ++j) dot += u.q[j] * y[i].qs[j];
            isum += u.scale[g] * dot;
            msum += u.min[g] * y[i].bsums[g];
        }
        sumf += (u.d * y[i].d) * isum - (u.dmin * y[i].d) * msum;
    }
    return sumf;
}

// ---- quantization -------------------------------------------------------------------------------

// Q4_K / Q5_K: per group of 32 a (scale, min) fit with weights sqrt(mean x^2) + |x|, both then
// quantized to 6 bits against the block's largest; levels re-picked with the stored scales.
void quantize_scales_mins_k4(const float* x, int nmax, float rmin, int nstep, uint16_t* d_out,
                             uint16_t* dmin_out, uint8_t* scales_out, uint8_t* L) {
    uint8_t Laux[32];
    float weights[32];
    float mins[QK_K / 32];
    float scales[QK_K / 32];
    float max_scale = 0, max_min = 0;  // scales and mins come out non-negative
    for (int j = 0; j < QK_K / 32; ++j) {
        float sum_x2 = 0;
        for (int l = 0; l < 32; ++l) sum_x2 += x[32 * j + l] * x[32 * j + l];
        const float av_x = std::sqrt(sum_x2 / 32);
        for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(x[32 * j + l]);
        scales[j] = make_qkx2_quants(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, rmin, 0.1f, nstep,
                                     false);
        max_scale = std::max(max_scale, scales[j]);
        max_min = std::max(max_min, mins[j]);
    }
    const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    for (int j = 0; j < QK_K / 32; ++j) {
        const uint8_t ls = std::min<uint8_t>(63, static_cast<uint8_t>(nearest_int(inv_scale * scales[j])));
        const uint8_t lm = std::min<uint8_t>(63, static_cast<uint8_t>(nearest_int(inv_min * mins[j])));
        set_scale_min_k4(scales_out, j, ls, lm);
    }
    *d_out = fp32_to_fp16(max_scale / 63.f);
    *dmin_out = fp32_to_fp16(max_min / 63.f);
    for (int j = 0; j < QK_K / 32; ++j) {
        uint8_t sc, m;
        get_scale_min_k4(scales_out, j, &sc, &m);
        const float d = fp16_to_fp32(*d_out) * sc;
        if (!d) continue;
        const float dm = fp16_to_fp32(*dmin_out) * m;
        for (int ii = 0; ii < 32; ++ii) {
            L[32 * j + ii] = static_cast<uint8_t>(std::clamp(nearest_int((x[32 * j + ii] + dm) / d), 0, nmax));
        }
    }
}

}  // namespace

void quantize_row_q2_k(const float* src, void* dst, int64_t n) {
    block_q2_K* y = static_cast<block_q2_K*>(dst);
    uint8_t L[QK_K], Laux[16];
    float weights[16], mins[kGroups], scales[kGroups];
    const float q4scale = 15.f;
    for (int64_t i = 0; i < n / QK_K; ++i) {
        const float* x = src + i * QK_K;
        float max_scale = 0, max_min = 0;
        for (int j = 0; j < kGroups; ++j) {
            for (int l = 0; l < 16; ++l) weights[l] = std::fabs(x[16 * j + l]);
            // 2-bit levels: minimise the absolute error, which resists outliers better.
            scales[j] =
                make_qkx2_quants(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], Laux, -0.5f, 0.1f, 15, true);
            max_scale = std::max(max_scale, scales[j]);
            max_min = std::max(max_min, mins[j]);
        }
        std::fill(y[i].scales, y[i].scales + kGroups, uint8_t{0});
        y[i].d = fp32_to_fp16(max_scale > 0 ? max_scale / q4scale : 0.f);
        y[i].dmin = fp32_to_fp16(max_min > 0 ? max_min / q4scale : 0.f);
        if (max_scale > 0) {
            const float iscale = q4scale / max_scale;
            for (int j = 0; j < kGroups; ++j) y[i].scales[j] = static_cast<uint8_t>(nearest_int(iscale * scales[j]));
        }
        if (max_min > 0) {
            const float iscale = q4scale / max_min;
            for (int j = 0; j < kGroups; ++j) {
                y[i].scales[j] |= static_cast<uint8_t>(nearest_int(iscale * mins[j]) << 4);
            }
        }
        for (int j = 0; j < kGroups; ++j) {
            const float d = fp16_to_fp32(y[i].d) * (y[i].scales[j] & 0xF);
            if (!d) continue;
            const float dm = fp16_to_fp32(y[i].dmin) * (y[i].scales[j] >> 4);
            for (int ii = 0; ii < 16; ++ii) {
                L[16 * j + ii] = static_cast<uint8_t>(std::clamp(nearest_int((x[16 * j + ii] + dm) / d), 0, 3));
            }
        }
        pack_2bit(L, y[i].qs);
    }
}

void quantize_row_q3_k(const float* src, void* dst, int64_t n) {
    block_q3_K* y = static_cast<block_q3_K*>(dst);
    int8_t L[QK_K];
    float scales[kGroups];
    for (int64_t i = 0; i < n / QK_K; ++i) {
        const float* x = src + i * QK_K;
        float max_scale = 0, amax = 0;
        for (int j = 0; j < kGroups; ++j) {
            scales[j] = make_q3_quants(16, 4, x + 16 * j, L + 16 * j);
            if (std::fabs(scales[j]) > amax) {
                amax = std::fabs(scales[j]);
                max_scale = scales[j];
            }
        }
        std::memset(y[i].scales, 0, sizeof y[i].scales);
        if (max_scale) {
            // Signed 6-bit scales (-32..31); the largest lands on -32 so its sign is free.
            const float iscale = -32.f / max_scale;
            for (int j = 0; j < kGroups; ++j) {
                const int8_t l = static_cast<int8_t>(nearest_int(iscale * scales[j]));
                set_scale_q3(y[i].scales, j, std::clamp<int>(l, -32, 31) + 32);
            }
            y[i].d = fp32_to_fp16(1 / iscale);
        } else {
            y[i].d = fp32_to_fp16(0.f);
        }
        for (int j = 0; j < kGroups; ++j) {
            const float d = fp16_to_fp32(y[i].d) * (get_scale_q3(y[i].scales, j) - 32);
            if (!d) continue;
            for (int ii = 0; ii < 16; ++ii) {
                L[16 * j + ii] = static_cast<int8_t>(std::clamp(nearest_int(x[16 * j + ii] / d), -4, 3) + 4);
            }
        }
        // The third bit of element e goes to bit e/32 of hmask[e%32]; qs keeps the low two.
        std::memset(y[i].hmask, 0, sizeof y[i].hmask);
        uint8_t low[QK_K];
        for (int e = 0; e < QK_K; ++e) {
            if (L[e] > 3) y[i].hmask[e % 32] |= static_cast<uint8_t>(1 << (e / 32));
            low[e] = static_cast<uint8_t>(L[e] & 3);
        }
        pack_2bit(low, y[i].qs);
    }
}

void quantize_row_q4_k(const float* src, void* dst, int64_t n) {
    block_q4_K* y = static_cast<block_q4_K*>(dst);
    uint8_t L[QK_K];
    for (int64_t i = 0; i < n / QK_K; ++i) {
        quantize_scales_mins_k4(src + i * QK_K, 15, -1.f, 20, &y[i].d, &y[i].dmin, y[i].scales, L);
        for (int j = 0; j < QK_K; j += 64) {
            for (int l = 0; l < 32; ++l) y[i].qs[j / 2 + l] = static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 4));
        }
    }
}

void quantize_row_q5_k(const float* src, void* dst, int64_t n) {
    block_q5_K* y = static_cast<block_q5_K*>(dst);
    uint8_t L[QK_K];
    for (int64_t i = 0; i < n / QK_K; ++i) {
        quantize_scales_mins_k4(src + i * QK_K, 31, -0.5f, 15, &y[i].d, &y[i].dmin, y[i].scales, L);
        std::memset(y[i].qh, 0, sizeof y[i].qh);
        for (int e = 0; e < QK_K; ++e) {
            if (L[e] > 15) y[i].qh[e % 32] |= static_cast<uint8_t>(1 << (e / 32));
        }
        for (int j = 0; j < QK_K; j += 64) {
            for (int l = 0; l < 32; ++l) {
                y[i].qs[j / 2 + l] = static_cast<uint8_t>((L[j + l] & 0xF) | ((L[j + l + 32] & 0xF) << 4));
            }
        }
    }
}

void quantize_row_q6_k(const float* src, void* dst, int64_t n) {
    block_q6_K* y = static_cast<block_q6_K*>(dst);
    int8_t L[QK_K];
    float scales[kGroups];
    for (int64_t i = 0; i < n / QK_K; ++i) {
        const float* x = src + i * QK_K;
        float max_scale = 0, max_abs_scale = 0;
        for (int ib = 0; ib < kGroups; ++ib) {
            scales[ib] = make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib);
            if (std::fabs(scales[ib]) > max_abs_scale) {
                max_abs_scale = std::fabs(scales[ib]);
                max_scale = scales[ib];
            }
        }
        if (max_abs_scale < 1e-15f) {
            std::memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        const float iscale = -128.f / max_scale;
        y[i].d = fp32_to_fp16(1 / iscale);
        for (int ib = 0; ib < kGroups; ++ib) {
            y[i].scales[ib] = static_cast<int8_t>(std::min(127, nearest_int(iscale * scales[ib])));
        }
        for (int j = 0; j < kGroups; ++j) {
            const float d = fp16_to_fp32(y[i].d) * y[i].scales[j];
            if (!d) continue;
            for (int ii = 0; ii < 16; ++ii) {
                L[16 * j + ii] = static_cast<int8_t>(std::clamp(nearest_int(x[16 * j + ii] / d), -32, 31) + 32);
            }
        }
        for (int j = 0; j < QK_K; j += 128) {
            uint8_t* ql = y[i].ql + j / 2;
            uint8_t* qh = y[i].qh + j / 4;
            for (int l = 0; l < 32; ++l) {
                const int8_t* q = L + j + l;
                ql[l] = static_cast<uint8_t>((q[0] & 0xF) | ((q[64] & 0xF) << 4));
                ql[l + 32] = static_cast<uint8_t>((q[32] & 0xF) | ((q[96] & 0xF) << 4));
                qh[l] = static_cast<uint8_t>((q[0] >> 4) | ((q[32] >> 4) << 2) | ((q[64] >> 4) << 4) |
                                             ((q[96] >> 4) << 6));
            }
        }
    }
}

void quantize_row_q8_k(const float* src, void* dst, int64_t n) {
    block_q8_K* y = static_cast<block_q8_K*>(dst);
    for (int64_t i = 0; i < n / QK_K; ++i) {
        const float* x = src + i * QK_K;
        float max = 0, amax = 0;
        for (int j = 0; j < QK_K; ++j) {
            if (std::fabs(x[j]) > amax) {
                amax = std::fabs(x[j]);
                max = x[j];
            }
        }
        if (!amax) {
            std::memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        // -127 rather than -128 keeps every product of two int8 levels symmetric in range.
        const float iscale = -127.f / max;
        for (int j = 0; j < QK_K; ++j) y[i].qs[j] = static_cast<int8_t>(std::min(127, nearest_int(iscale * x[j])));
        for (int g = 0; g < kGroups; ++g) {
            int sum = 0;
            for (int j = 16 * g; j < 16 * g + 16; ++j) sum += y[i].qs[j];
            y[i].bsums[g] = static_cast<int16_t>(sum);
        }
        y[i].d = 1 / iscale;
    }
}

void quantize_row_iq4_xs(const float* src, void* dst, int64_t n) {
    block_iq4_xs* y = static_cast<block_iq4_xs*>(dst);
    float scales[QK_K / 32];
    uint8_t L[QK_K];
    for (int64_t i = 0; i < n / QK_K; ++i) {
        const float* x = src + i * QK_K;
        float max_scale = 0, amax_scale = 0;
        for (int ib = 0; ib < QK_K / 32; ++ib) {
            scales[ib] = iq4nl_block_scale(x + 32 * ib);
            if (std::fabs(scales[ib]) > amax_scale) {
                amax_scale = std::fabs(scales[ib]);
                max_scale = scales[ib];
            }
        }
        // Signed 6-bit group scales against d; levels re-picked with each group's stored scale.
        const float d = -max_scale / 32;
        y[i].d = fp32_to_fp16(d);
        y[i].scales_h = 0;
        const float id = d ? 1 / d : 0.f;
        for (int ib = 0; ib < QK_K / 32; ++ib) {
            const int l = std::clamp(nearest_int(id * scales[ib]), -32, 31);
            const float dl = d * l;
            const float idl = dl ? 1 / dl : 0.f;
            for (int j = 0; j < 32; ++j) L[32 * ib + j] = static_cast<uint8_t>(best_index_iq4nl(idl * x[32 * ib + j]));
            const int ls = l + 32;
            if (ib % 2 == 0) {
                y[i].scales_l[ib / 2] = static_cast<uint8_t>(ls & 0xF);
            } else {
                y[i].scales_l[ib / 2] |= static_cast<uint8_t>((ls & 0xF) << 4);
            }
            y[i].scales_h |= static_cast<uint16_t>((ls >> 4) << (2 * ib));
        }
        for (int ib = 0; ib < QK_K / 32; ++ib) {
            for (int j = 0; j < 16; ++j) {
                y[i].qs[16 * ib + j] = static_cast<uint8_t>(L[32 * ib + j] | (L[32 * ib + 16 + j] << 4));
            }
        }
    }
}

void dequantize_row_q2_k(const void* src, float* dst, int64_t n) { dequantize_blocks<block_q2_K>(src, dst, n); }
void dequantize_row_q3_k(const void* src, float* dst, int64_t n) { dequantize_blocks<block_q3_K>(src, dst, n); }
void dequantize_row_q4_k(const void* src, float* dst, int64_t n) { dequantize_blocks<block_q4_K>(src, dst, n); }
void dequantize_row_q5_k(const void* src, float* dst, int64_t n) { dequantize_blocks<block_q5_K>(src, dst, n); }
void dequantize_row_q6_k(const void* src, float* dst, int64_t n) { dequantize_blocks<block_q6_K>(src, dst, n); }
void dequantize_row_q8_k(const void* src, float* dst, int64_t n) { dequantize_blocks<block_q8_K>(src, dst, n); }
void dequantize_row_iq4_xs(const void* src, float* dst, int64_t n) { dequantize_blocks<block_iq4_xs>(src, dst, n); }

float vec_dot_q2_k_q8_k(int64_t n, const void* w, const void* a) { return vec_dot_with_q8_k<block_q2_K>(n, w, a); }
float vec_dot_q3_k_q8_k(int64_t n, const void* w, const void* a) { return vec_dot_with_q8_k<block_q3_K>(n, w, a); }
float vec_dot_q4_k_q8_k(int64_t n, const void* w, const void* a) { return vec_dot_with_q8_k<block_q4_K>(n, w, a); }
float vec_dot_q5_k_q8_k(int64_t n, const void* w, const void* a) { return vec_dot_with_q8_k<block_q5_K>(n, w, a); }
float vec_dot_q6_k_q8_k(int64_t n, const void* w, const void* a) { return vec_dot_with_q8_k<block_q6_K>(n, w, a); }
float vec_dot_iq4_xs_q8_k(int64_t n, const void* w, const void* a) {
    return vec_dot_with_q8_k<block_iq4_xs>(n, w, a);
}

}  // namespace strata
