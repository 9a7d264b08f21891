// Blocks of 32 with one scale (ggml's first quantization family) and IQ4_NL, which shares their
// shape: reference quantizers (ggml-quants.c quantize_row_*_ref), dequantization and the
// integer dot products against Q8_0 / Q8_1 activations (ggml-cpu/quants.c, generic path).
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>

#include "tensor/float16.h"
#include "tensor/quant_blocks.h"
#include "tensor/quant_kernels.h"
#include "tensor/quant_search.h"

namespace strata {

namespace {

constexpr int kBlock = 32;

// A block as signed integer levels: x = q * d + m. Symmetric types store m = -0.0f, the one
// value whose addition leaves every float unchanged (even -0.0), so x equals ggml's q * d bit
// for bit.
struct Unpacked32 {
    int8_t q[kBlock];
    float d;
    float m;
};

// The 5th bits of 32 levels as the little-endian word of Q5_0/Q5_1 (bit j for element j).
uint32_t high_bits(const uint8_t* L) {
    uint32_t qh = 0;
    for (int j = 0; j < kBlock; ++j) qh |= static_cast<uint32_t>((L[j] & 0x10u) >> 4) << j;
    return qh;
}

// Element j in the low nibble of byte j, element j+16 in the high nibble.
void pack_nibbles(const uint8_t* L, uint8_t* qs) {
    for (int j = 0; j < kBlock / 2; ++j) qs[j] = static_cast<uint8_t>((L[j] & 0x0F) | ((L[j + 16] & 0x0F) << 4));
}

uint8_t nibble(const uint8_t* qs, int j) { return j < kBlock / 2 ? qs[j] & 0x0F : qs[j - kBlock / 2] >> 4; }

// Q4_0 / Q5_0: levels 0 .. 2*nhalf-1 for x = d * (L - nhalf). d = max / -nhalf puts the element of
// largest magnitude exactly on level 0, so the asymmetric range (-nhalf .. nhalf-1) is spent on
// that element's side.
float quantize_symmetric(const float* x, int nhalf, uint8_t* L) {
    float amax = 0, max = 0;
    for (int j = 0; j < kBlock; ++j) {
        if (amax < std::fabs(x[j])) {
            amax = std::fabs(x[j]);
            max = x[j];
        }
    }
    const float d = max / -nhalf;
    const float id = d ? 1.0f / d : 0.0f;
    for (int j = 0; j < kBlock; ++j) {
        // Truncation after adding nhalf + 0.5 is ggml's rounding (half away from the low end).
        L[j] = static_cast<uint8_t>(std::min(2 * nhalf - 1, static_cast<int>(x[j] * id + (nhalf + 0.5f))));
    }
    return d;
}

// Q4_1 / Q5_1: levels 0 .. nmax for x = d * L + min over the block's [min, max].
float quantize_asymmetric(const float* x, int nmax, uint8_t* L, float* min_out) {
    float min = FLT_MAX, max = -FLT_MAX;
    for (int j = 0; j < kBlock; ++j) {
        if (x[j] < min) min = x[j];
        if (x[j] > max) max = x[j];
    }
    const float d = (max - min) / nmax;
    const float id = d ? 1.0f / d : 0.0f;
    for (int j = 0; j < kBlock; ++j) {
        L[j] = static_cast<uint8_t>(std::min(nmax, static_cast<int>((x[j] - min) * id + 0.5f)));
    }
    *min_out = min;
    return d;
}

// Q8_0 / Q8_1: q = round(x * 127 / max|x|), rounding half away from zero (roundf).
float quantize_q8(const float* x, int8_t* qs) {
    float amax = 0;
    for (int j = 0; j < kBlock; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127;
    const float id = d ? 1.0f / d : 0.0f;
    for (int j = 0; j < kBlock; ++j) qs[j] = static_cast<int8_t>(std::round(x[j] * id));
    return d;
}

void unpack(const block_q4_0& b, Unpacked32& u) {
    for (int j = 0; j < kBlock; ++j) u.q[j] = static_cast<int8_t>(nibble(b.qs, j) - 8);
    u.d = fp16_to_fp32(b.d);
    u.m = -0.0f;
}

void unpack(const block_q4_1& b, Unpacked32& u) {
    for (int j = 0; j < kBlock; ++j) u.q[j] = static_cast<int8_t>(nibble(b.qs, j));
    u.d = fp16_to_fp32(b.d);
    u.m = fp16_to_fp32(b.m);
}

uint32_t load_qh(const uint8_t* qh) {
    uint32_t w;
    std::memcpy(&w, qh, sizeof w);
    return w;
}

void unpack(const block_q5_0& b, Unpacked32& u) {
    const uint32_t qh = load_qh(b.qh);
    for (int j = 0; j < kBlock; ++j) u.q[j] = static_cast<int8_t>((nibble(b.qs, j) | ((qh >> j & 1) << 4)) - 16);
    u.d = fp16_to_fp32(b.d);
    u.m = -0.0f;
}

void unpack(const block_q5_1& b, Unpacked32& u) {
    const uint32_t qh = load_qh(b.qh);
    for (int j = 0; j < kBlock; ++j) u.q[j] = static_cast<int8_t>(nibble(b.qs, j) | ((qh >> j & 1) << 4));
    u.d = fp16_to_fp32(b.d);
    u.m = fp16_to_fp32(b.m);
}

void unpack(const block_q8_0& b, Unpacked32& u) {
    std::memcpy(u.q, b.qs, kBlock);
    u.d = fp16_to_fp32(b.d);
    u.m = -0.0f;
}

void unpack(const block_q8_1& b, Unpacked32& u) {
    std::memcpy(u.q, b.qs, kBlock);
    u.d = fp16_to_fp32(b.d);
    u.m = -0.0f;
}

void unpack(const block_iq4_nl& b, Unpacked32& u) {
    for (int j = 0; j < kBlock; ++j) u.q[j] = kvalues_iq4nl[nibble(b.qs, j)];
    u.d = fp16_to_fp32(b.d);
    u.m = -0.0f;
}

template <class Block>
void dequantize_blocks(const void* src, float* dst, int64_t n) {
    const Block* b = static_cast<const Block*>(src);
    Unpacked32 u;
    for (int64_t i = 0; i < n / kBlock; ++i) {
        unpack(b[i], u);
        for (int j = 0; j < kBlock; ++j) dst[i * kBlock + j] = u.q[j] * u.d + u.m;
    }
}

int dot_levels(const int8_t* a, const int8_t* b) {
    int sum = 0;
    for (int j = 0; j < kBlock; ++j) sum += a[j] * b[j];
    return sum;
}

// Symmetric weights against Q8_0: per block, (d_w * d_a) times an exact integer dot.
template <class Block>
float vec_dot_with_q8_0(int64_t n, const void* w, const void* a) {
    const Block* x = static_cast<const Block*>(w);
    const block_q8_0* y = static_cast<const block_q8_0*>(a);
    Unpacked32 u;
    float sumf = 0;
    for (int64_t i = 0; i < n / kBlock; ++i) {
        unpack(x[i], u);
        sumf += dot_levels(u.q, y[i].qs) * (u.d * fp16_to_fp32(y[i].d));
    }
    return sumf;
}

// Weights with a min against Q8_1: sum (d_w q_w + m)(d_a q_a) = d_w d_a (q_w . q_a) + m * s,
// where Q8_1 carries s = d_a * sum(q_a).
template <class Block>
float vec_dot_with_q8_1(int64_t n, const void* w, const void* a) {
    const Block* x = static_cast<const Block*>(w);
    const block_q8_1* y = static_cast<const block_q8_1*>(a);
    Unpacked32 u;
    float sumf = 0;
    for (int64_t i = 0; i < n / kBlock; ++i) {
        unpack(x[i], u);
        sumf += (u.d * fp16_to_fp32(y[i].d)) * dot_levels(u.q, y[i].qs) + u.m * fp16_to_fp32(y[i].s);
    }
    return sumf;
}

}  // namespace

void quantize_row_q4_0(const float* src, void* dst, int64_t n) {
    block_q4_0* y = static_cast<block_q4_0*>(dst);
    uint8_t L[kBlock];
    for (int64_t i = 0; i < n / kBlock; ++i) {
        y[i].d = fp32_to_fp16(quantize_symmetric(src + i * kBlock, 8, L));
        pack_nibbles(L, y[i].qs);
    }
}

void quantize_row_q4_1(const float* src, void* dst, int64_t n) {
    block_q4_1* y = static_cast<block_q4_1*>(dst);
    uint8_t L[kBlock];
    for (int64_t i = 0; i < n / kBlock; ++i) {
        float min;
        y[i].d = fp32_to_fp16(quantize_asymmetric(src + i * kBlock, 15, L, &min));
        y[i].m = fp32_to_fp16(min);
        pack_nibbles(L, y[i].qs);
    }
}

void quantize_row_q5_0(const float* src, void* dst, int64_t n) {
    block_q5_0* y = static_cast<block_q5_0*>(dst);
    uint8_t L[kBlock];
    for (int64_t i = 0; i < n / kBlock; ++i) {
        y[i].d = fp32_to_fp16(quantize_symmetric(src + i * kBlock, 16, L));
        const uint32_t qh = high_bits(L);
        std::memcpy(y[i].qh, &qh, sizeof qh);
        pack_nibbles(L, y[i].qs);
    }
}

void quantize_row_q5_1(const float* src, void* dst, int64_t n) {
    block_q5_1* y = static_cast<block_q5_1*>(dst);
    uint8_t L[kBlock];
    for (int64_t i = 0; i < n / kBlock; ++i) {
        float min;
        y[i].d = fp32_to_fp16(quantize_asymmetric(src + i * kBlock, 31, L, &min));
        y[i].m = fp32_to_fp16(min);
        const uint32_t qh = high_bits(L);
        std::memcpy(y[i].qh, &qh, sizeof qh);
        pack_nibbles(L, y[i].qs);
    }
}

void quantize_row_q8_0(const float* src, void* dst, int64_t n) {
    block_q8_0* y = static_cast<block_q8_0*>(dst);
    for (int64_t i = 0; i < n / kBlock; ++i) y[i].d = fp32_to_fp16(quantize_q8(src + i * kBlock, y[i].qs));
}

void quantize_row_q8_1(const float* src, void* dst, int64_t n) {
    block_q8_1* y = static_cast<block_q8_1*>(dst);
    for (int64_t i = 0; i < n / kBlock; ++i) {
        const float d = quantize_q8(src + i * kBlock, y[i].qs);
        int sum = 0;
        for (int j = 0; j < kBlock; ++j) sum += y[i].qs[j];
        y[i].d = fp32_to_fp16(d);
        y[i].s = fp32_to_fp16(sum * d);
    }
}

// What llama-quantize writes (quantize_iq4_nl, scale search with ntry = 7). Recent ggml's
// quantize_row_iq4_nl_ref skips the search (ntry = -1) for speed on activations; files never
// come from it.
void quantize_row_iq4_nl(const float* src, void* dst, int64_t n) {
    block_iq4_nl* y = static_cast<block_iq4_nl*>(dst);
    uint8_t L[kBlock];
    for (int64_t i = 0; i < n / kBlock; ++i) {
        const float* x = src + i * kBlock;
        const float d = iq4nl_block_scale(x);
        y[i].d = fp32_to_fp16(d);
        // Levels are re-picked with the unrounded scale, as llama-quantize does.
        const float id = d ? 1 / d : 0;
        for (int j = 0; j < kBlock; ++j) L[j] = static_cast<uint8_t>(best_index_iq4nl(id * x[j]));
        pack_nibbles(L, y[i].qs);
    }
}

void dequantize_row_q4_0(const void* src, float* dst, int64_t n) { dequantize_blocks<block_q4_0>(src, dst, n); }
void dequantize_row_q4_1(const void* src, float* dst, int64_t n) { dequantize_blocks<block_q4_1>(src, dst, n); }
void dequantize_row_q5_0(const void* src, float* dst, int64_t n) { dequantize_blocks<block_q5_0>(src, dst, n); }
void dequantize_row_q5_1(const void* src, float* dst, int64_t n) { dequantize_blocks<block_q5_1>(src, dst, n); }
void dequantize_row_q8_0(const void* src, float* dst, int64_t n) { dequantize_blocks<block_q8_0>(src, dst, n); }
void dequantize_row_q8_1(const void* src, float* dst, int64_t n) { dequantize_blocks<block_q8_1>(src, dst, n); }
void dequantize_row_iq4_nl(const void* src, float* dst, int64_t n) { dequantize_blocks<block_iq4_nl>(src, dst, n); }

float vec_dot_q4_0_q8_0(int64_t n, const void* w, const void* a) { return vec_dot_with_q8_0<block_q4_0>(n, w, a); }
float vec_dot_q4_1_q8_1(int64_t n, const void* w, const void* a) { return vec_dot_with_q8_1<block_q4_1>(n, w, a); }
float vec_dot_q5_0_q8_0(int64_t n, const void* w, const void* a) { return vec_dot_with_q8_0<block_q5_0>(n, w, a); }
float vec_dot_q5_1_q8_1(int64_t n, const void* w, const void* a) { return vec_dot_with_q8_1<block_q5_1>(n, w, a); }
float vec_dot_q8_0_q8_0(int64_t n, const void* w, const void* a) { return vec_dot_with_q8_0<block_q8_0>(n, w, a); }
float vec_dot_iq4_nl_q8_0(int64_t n, const void* w, const void* a) {
    return vec_dot_with_q8_0<block_iq4_nl>(n, w, a);
}

}  // namespace strata
