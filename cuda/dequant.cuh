// The weight formats on the device: how a row of each stored type is cut into chunks that one
// thread dequantizes at once, and the dequantizers themselves, bit-identical to the reference
// ones of src/tensor/quant_legacy.cpp, quant_k.cpp and quant_float.cpp (get_rows returns their
// values exactly; matmul and moe_ffn dot them with F32 activations). Included by .cu files only.
//
// A format is a struct with
//   kChunk                       elements per chunk: 1 for the float types, 32 for the blocks
//                                (one block of 32, or one 32-element eighth of a super-block of 256)
//   dequant(row, c, v)           chunk c of the row starting at `row` (elements c·kChunk …) into v
// Chunks of 32 divide every quantized type: the K-quants' groups of 16 and 32 and IQ4_XS's
// groups of 32 never straddle one, so a chunk needs its super-block's d, dmin and one or two
// group scales only. The blocks are strata's own structs (quant_blocks.h compiles under nvcc);
// block sizes are all even, so their uint16_t fields are aligned wherever a row starts on a block.
//
// Every element is computed with the reference's operations in its order, written with the
// _rn intrinsics so that nvcc cannot contract a multiply and an add into one FMA (which rounds
// once instead of twice and would differ in the last bit).
#pragma once

#include <cuda_fp16.h>

#include <cstdint>

#include "backend/cuda/cuda_check.h"
#include "common.cuh"
#include "tensor/ggml_type.h"
#include "tensor/quant_blocks.h"

namespace strata {

// ---- Scalars ------------------------------------------------------------------------------------

// IEEE half bits → float: exact for every half (normal or subnormal), as fp16_to_fp32 is.
__device__ __forceinline__ float half_bits_to_float(uint16_t h) { return __half2float(__ushort_as_half(h)); }

// bfloat16 bits → float: the top half of a float, as bf16_to_fp32.
__device__ __forceinline__ float bf16_bits_to_float(uint16_t h) {
    return __uint_as_float(static_cast<uint32_t>(h) << 16);
}

// The 16 levels of IQ4_NL/IQ4_XS packed into two 64-bit constants (byte i of the low word is
// kvalues_iq4nl[i], of the high word kvalues_iq4nl[8 + i]): a lookup by shift in registers, where a
// table in memory would serialize the lanes of a warp that index it differently.
constexpr uint64_t pack_iq4nl_levels(int first) {
    uint64_t w = 0;
    for (int i = 0; i < 8; ++i) w |= static_cast<uint64_t>(static_cast<uint8_t>(kvalues_iq4nl[first + i])) << (8 * i);
    return w;
}
constexpr uint64_t kIq4nlLow = pack_iq4nl_levels(0), kIq4nlHigh = pack_iq4nl_levels(8);
static_assert(static_cast<int8_t>(kIq4nlLow & 0xFF) == -127 && static_cast<int8_t>(kIq4nlHigh >> 56) == 113,
              "IQ4_NL levels packed in the wrong order");

__device__ __forceinline__ float iq4nl_level(int q) {
    const uint64_t w = q < 8 ? kIq4nlLow : kIq4nlHigh;
    return static_cast<float>(static_cast<int8_t>(static_cast<uint8_t>(w >> (8 * (q & 7)))));
}

// ---- Float types: one element per chunk ---------------------------------------------------------

struct FmtF32 {
    static constexpr int kChunk = 1;
    __device__ static void dequant(const char* row, int64_t c, float (&v)[kChunk]) {
        v[0] = reinterpret_cast<const float*>(row)[c];
    }
};

struct FmtF16 {
    static constexpr int kChunk = 1;
    __device__ static void dequant(const char* row, int64_t c, float (&v)[kChunk]) {
        v[0] = half_bits_to_float(reinterpret_cast<const uint16_t*>(row)[c]);
    }
};

struct FmtBF16 {
    static constexpr int kChunk = 1;
    __device__ static void dequant(const char* row, int64_t c, float (&v)[kChunk]) {
        v[0] = bf16_bits_to_float(reinterpret_cast<const uint16_t*>(row)[c]);
    }
};

// ---- Blocks of 32 (quant_legacy.cpp: x = q · d + m, m = −0 for the symmetric types) -------------
// Element j of a block in the low nibble of qs[j], element j + 16 in the high nibble. Adding
// m = −0.0 leaves every float unchanged, so the symmetric types compute q · d alone.

struct FmtQ4_0 {
    static constexpr int kChunk = QK4_0;
    __device__ static void dequant(const char* row, int64_t c, float (&v)[kChunk]) {
        const block_q4_0& b = reinterpret_cast<const block_q4_0*>(row)[c];
        const float d = half_bits_to_float(b.d);
#pragma unroll
        for (int j = 0; j < kChunk / 2; ++j) {
            const int q = b.qs[j];
            v[j] = __fmul_rn(static_cast<float>((q & 0xF) - 8), d);
            v[j + 16] = __fmul_rn(static_cast<float>((q >> 4) - 8), d);
        }
    }
};

struct FmtQ4_1 {
    static constexpr int kChunk = QK4_1;
    __device__ static void dequant(const char* row, int64_t c, float (&v)[kChunk]) {
        const block_q4_1& b = reinterpret_cast<const block_q4_1*>(row)[c];
        const float d = half_bits_to_float(b.d), m = half_bits_to_float(b.m);
#pragma unroll
        for (int j = 0; j < kChunk / 2; ++j) {
            const int q = b.qs[j];
            v[j] = __fadd_rn(__fmul_rn(static_cast<float>(q & 0xF), d), m);
            v[j + 16] = __fadd_rn(__fmul_rn(static_cast<float>(q >> 4), d), m);
        }
    }
};

// Q5_0/Q5_1: the 5th bit of element j is bit j of the little-endian word qh (read bytewise: qh
// sits at an offset of 2 in the block, so it is not 4-byte aligned).
__device__ __forceinline__ uint32_t load_qh32(const uint8_t* qh) {
    return static_cast<uint32_t>(qh[0]) | static_cast<uint32_t>(qh[1]) << 8 | static_cast<uint32_t>(qh[2]) << 16 |
           static_cast<uint32_t>(qh[3]) << 24;
}

struct FmtQ5_0 {
    static constexpr int kChunk = QK5_0;
    __device__ static void dequant(const char* row, int64_t c, float (&v)[kChunk]) {
        const block_q5_0& b = reinterpret_cast<const block_q5_0*>(row)[c];
        const float d = half_bits_to_float(b.d);
        const uint32_t qh = load_qh32(b.qh);
#pragma unroll
        for (int j = 0; j < kChunk / 2; ++j) {
            const int q = b.qs[j];
            const int lo = (q & 0xF) | static_cast<int>((qh >> j & 1u) << 4);
            const int hi = (q >> 4) | static_cast<int>((qh >> (j + 16) & 1u) << 4);
            v[j] = __fmul_rn(static_cast<float>(lo - 16), d);
            v[j + 16] = __fmul_rn(static_cast<float>(hi - 16), d);
        }
    }
};

struct FmtQ5_1 {
    static constexpr int kChunk = QK5_1;
    __device__ static void dequant(const char* row, int64_t c, float (&v)[kChunk]) {
        const block_q5_1& b = reinterpret_cast<const block_q5_1*>(row)[c];
        const float d = half_bits_to_float(b.d), m = half_bits_to_float(b.m);
        const uint32_t qh = load_qh32(b.qh);
#pragma unroll
        for (int j = 0; j < kChunk / 2; ++j) {
            const int q = b.qs[j];
            const int lo = (q & 0xF) | static_cast<int>((qh >> j & 1u) << 4);
            const int hi = (q >> 4) | static_cast<int>((qh >> (j + 16) & 1u) << 4);
            v[j] = __fadd_rn(__fmul_rn(static_cast<float>(lo), d), m);
            v[j + 16] = __fadd_rn(__fmul_rn(static_cast<float>(hi), d), m);
        }
    }
};

struct FmtQ8_0 {
    static constexpr int kChunk = QK8_0;
    __device__ static void dequant(const char* row, int64_t c, float (&v)[kChunk]) {
        const block_q8_0& b = reinterpret_cast<const block_q8_0*>(row)[c];
        const float d = half_bits_to_float(b.d);
#pragma unroll
        for (int j = 0; j < kChunk; ++j) v[j] = __fmul_rn(static_cast<float>(b.qs[j]), d);
    }
};

struct FmtIQ4_NL {
    static constexpr int kChunk = QK4_NL;
    __device__ static void dequant(const char* row, int64_t c, float (&v)[kChunk]) {
        const block_iq4_nl& b = reinterpret_cast<const block_iq4_nl*>(row)[c];
        const float d = half_bits_to_float(b.d);
#pragma unroll
        for (int j = 0; j < kChunk / 2; ++j) {
            const int q = b.qs[j];
            v[j] = __fmul_rn(iq4nl_level(q & 0xF), d);
            v[j + 16] = __fmul_rn(iq4nl_level(q >> 4), d);
        }
    }
};

// ---- Super-blocks of 256 (quant_k.cpp: x = (d · scale[g]) · q − dmin · min[g], g = e / 16) ------
// Chunk c is eighth s = c % 8 of super-block c / 8: its elements e = 32·s … 32·s + 31, groups
// 2s and 2s + 1 of 16 (one group of 32 for Q4_K, Q5_K, IQ4_XS). d · scale and dmin · min are the
// reference's own products, computed once per group instead of once per element (the same
// roundings). The symmetric types have dmin = min = 0, and subtracting 0 · 0 = +0 leaves every
// float unchanged (−0 included), so they compute (d · scale) · q alone.
constexpr int kChunksPerSuperBlock = QK_K / 32;

// Q2_K/Q3_K low bits: element e's 2 bits sit in qs[(e / 128)·32 + e % 32] at shift 2·((e % 128) / 32),
// so eighth s reads bytes (s / 4)·32 … + 31 at shift 2·(s % 4).
struct FmtQ2_K {
    static constexpr int kChunk = 32;
    __device__ static void dequant(const char* row, int64_t c, float (&v)[kChunk]) {
        const block_q2_K& b = reinterpret_cast<const block_q2_K*>(row)[c / kChunksPerSuperBlock];
        const int s = static_cast<int>(c % kChunksPerSuperBlock);
        const float d = half_bits_to_float(b.d), dmin = half_bits_to_float(b.dmin);
        const uint8_t* qs = b.qs + (s / 4) * 32;
        const int shift = 2 * (s % 4);
#pragma unroll
        for (int half = 0; half < 2; ++half) {
            const int sc = b.scales[2 * s + half];
            const float dl = __fmul_rn(d, static_cast<float>(sc & 0xF));
            const float ml = __fmul_rn(dmin, static_cast<float>(sc >> 4));
#pragma unroll
            for (int i = 16 * half; i < 16 * half + 16; ++i) {
                const int q = (qs[i] >> shift) & 3;
                v[i] = __fsub_rn(__fmul_rn(dl, static_cast<float>(q)), ml);
            }
        }
    }
};

// Q3_K's six-bit scale of group j: low 4 bits in byte j % 8 (high nibble for j ≥ 8), top 2 bits in
// byte 8 + j % 4 at shift 2·(j / 4) (get_scale_q3).
__device__ __forceinline__ int q3_k_scale(const uint8_t* scales, int j) {
    const int low = j < 8 ? scales[j] & 0xF : scales[j - 8] >> 4;
    return low | (((scales[8 + j % 4] >> (2 * (j / 4))) & 3) << 4);
}

// Q3_K: q = low 2 bits − 4 where the high bit (bit e / 32 = s of hmask[e % 32]) is clear.
struct FmtQ3_K {
    static constexpr int kChunk = 32;
    __device__ static void dequant(const char* row, int64_t c, float (&v)[kChunk]) {
        const block_q3_K& b = reinterpret_cast<const block_q3_K*>(row)[c / kChunksPerSuperBlock];
        const int s = static_cast<int>(c % kChunksPerSuperBlock);
        const float d = half_bits_to_float(b.d);
        const uint8_t* qs = b.qs + (s / 4) * 32;
        const int shift = 2 * (s % 4);
        const int high_bit = 1 << s;
#pragma unroll
        for (int half = 0; half < 2; ++half) {
            const float dl = __fmul_rn(d, static_cast<float>(q3_k_scale(b.scales, 2 * s + half) - 32));
#pragma unroll
            for (int i = 16 * half; i < 16 * half + 16; ++i) {
                const int q = ((qs[i] >> shift) & 3) - ((b.hmask[i] & high_bit) ? 0 : 4);
                v[i] = __fmul_rn(dl, static_cast<float>(q));
            }
        }
    }
};

// Q4_K/Q5_K: the six-bit scale and min of group-of-32 j (get_scale_min_k4): groups 0..3 whole
// in bytes j and j + 4; groups 4..7 low nibbles in byte j + 4, top 2 bits in the top bits of
// bytes j − 4 (scale) and j (min).
__device__ __forceinline__ void k4_scale_min(const uint8_t* scales, int j, int& sc, int& m) {
    if (j < 4) {
        sc = scales[j] & 63;
        m = scales[j + 4] & 63;
    } else {
        sc = (scales[j + 4] & 0xF) | ((scales[j - 4] >> 6) << 4);
        m = (scales[j + 4] >> 4) | ((scales[j] >> 6) << 4);
    }
}

// Q4_K: element e's nibble in qs[(e / 64)·32 + e % 32], the high nibble for the second 32 of each 64,
// so eighth s reads bytes (s / 2)·32 … + 31, high nibbles when s is odd.
struct FmtQ4_K {
    static constexpr int kChunk = 32;
    __device__ static void dequant(const char* row, int64_t c, float (&v)[kChunk]) {
        const block_q4_K& b = reinterpret_cast<const block_q4_K*>(row)[c / kChunksPerSuperBlock];
        const int s = static_cast<int>(c % kChunksPerSuperBlock);
        int sc, m;
        k4_scale_min(b.scales, s, sc, m);
        const float dl = __fmul_rn(half_bits_to_float(b.d), static_cast<float>(sc));
        const float ml = __fmul_rn(half_bits_to_float(b.dmin), static_cast<float>(m));
        const uint8_t* qs = b.qs + (s / 2) * 32;
        const int shift = 4 * (s % 2);
#pragma unroll
        for (int i = 0; i < kChunk; ++i) {
            const int q = (qs[i] >> shift) & 0xF;
            v[i] = __fsub_rn(__fmul_rn(dl, static_cast<float>(q)), ml);
        }
    }
};

// Q5_K: Q4_K's nibbles plus 16 where bit e / 32 = s of qh[e % 32] is set.
struct FmtQ5_K {
    static constexpr int kChunk = 32;
    __device__ static void dequant(const char* row, int64_t c, float (&v)[kChunk]) {
        const block_q5_K& b = reinterpret_cast<const block_q5_K*>(row)[c / kChunksPerSuperBlock];
        const int s = static_cast<int>(c % kChunksPerSuperBlock);
        int sc, m;
        k4_scale_min(b.scales, s, sc, m);
        const float dl = __fmul_rn(half_bits_to_float(b.d), static_cast<float>(sc));
        const float ml = __fmul_rn(half_bits_to_float(b.dmin), static_cast<float>(m));
        const uint8_t* qs = b.qs + (s / 2) * 32;
        const int shift = 4 * (s % 2);
        const int high_bit = 1 << s;
#pragma unroll
        for (int i = 0; i < kChunk; ++i) {
            const int q = ((qs[i] >> shift) & 0xF) + ((b.qh[i] & high_bit) ? 16 : 0);
            v[i] = __fsub_rn(__fmul_rn(dl, static_cast<float>(q)), ml);
        }
    }
};

// Q6_K: per half h of 128, quarter k of element l (0..31) has its low nibble in
// ql[64h + l + 32·(k % 2)] (the high nibble for k ≥ 2) and its top 2 bits in qh[32h + l] at
// shift 2k; q = that six-bit value − 32. Eighth s is half s / 4, quarter s % 4.
struct FmtQ6_K {
    static constexpr int kChunk = 32;
    __device__ static void dequant(const char* row, int64_t c, float (&v)[kChunk]) {
        const block_q6_K& b = reinterpret_cast<const block_q6_K*>(row)[c / kChunksPerSuperBlock];
        const int s = static_cast<int>(c % kChunksPerSuperBlock);
        const int h = s / 4, k = s % 4;
        const float d = half_bits_to_float(b.d);
        const uint8_t* ql = b.ql + 64 * h + 32 * (k % 2);
        const uint8_t* qh = b.qh + 32 * h;
        const int low_shift = k < 2 ? 0 : 4, high_shift = 2 * k;
#pragma unroll
        for (int half = 0; half < 2; ++half) {
            const float dl = __fmul_rn(d, static_cast<float>(b.scales[2 * s + half]));
#pragma unroll
            for (int l = 16 * half; l < 16 * half + 16; ++l) {
                const int q = (((ql[l] >> low_shift) & 0xF) | (((qh[l] >> high_shift) & 3) << 4)) - 32;
                v[l] = __fmul_rn(dl, static_cast<float>(q));
            }
        }
    }
};

// IQ4_XS: group-of-32 s has the six-bit scale (low 4 bits: nibble s % 2 of scales_l[s / 2]; top
// 2: bits 2s, 2s + 1 of scales_h) minus 32, and its levels in qs[16s … 16s + 15] in Q4_0's nibble
// order.
struct FmtIQ4_XS {
    static constexpr int kChunk = 32;
    __device__ static void dequant(const char* row, int64_t c, float (&v)[kChunk]) {
        const block_iq4_xs& b = reinterpret_cast<const block_iq4_xs*>(row)[c / kChunksPerSuperBlock];
        const int s = static_cast<int>(c % kChunksPerSuperBlock);
        const int ls = ((b.scales_l[s / 2] >> (4 * (s % 2))) & 0xF) | (((b.scales_h >> (2 * s)) & 3) << 4);
        const float dl = __fmul_rn(half_bits_to_float(b.d), static_cast<float>(ls - 32));
        const uint8_t* qs = b.qs + 16 * s;
#pragma unroll
        for (int j = 0; j < kChunk / 2; ++j) {
            const int q = qs[j];
            v[j] = __fmul_rn(dl, iq4nl_level(q & 0xF));
            v[j + 16] = __fmul_rn(dl, iq4nl_level(q >> 4));
        }
    }
};

// ---- Dot products on the fly --------------------------------------------------------------------

// Lane `lane`'s share of the dot products of one weight row with nt ≤ kTile F32 activation rows
// (x0, x0 + x_stride bytes, …): the lanes of a warp take chunks lane, lane + 32, …, so for the
// block types a warp's reads cover 32 consecutive blocks (for the float types 32 consecutive
// elements) and every weight is dequantized once for the whole tile of tokens. The partial sums
// land in acc[0 … nt), each still to be reduced over the warp with warp_sum.
template <class Fmt, int kTile>
__device__ __forceinline__ void dot_row_partial(const char* w_row, int64_t n_cols, const char* x0, size_t x_stride,
                                                int nt, int lane, float (&acc)[kTile]) {
    const int64_t n_chunks = n_cols / Fmt::kChunk;
    for (int64_t c = lane; c < n_chunks; c += kWarpSize) {
        float v[Fmt::kChunk];
        Fmt::dequant(w_row, c, v);
#pragma unroll
        for (int k = 0; k < kTile; ++k) {
            if (k < nt) {
                const float* x =
                    reinterpret_cast<const float*>(x0 + static_cast<size_t>(k) * x_stride) + c * Fmt::kChunk;
#pragma unroll
                for (int i = 0; i < Fmt::kChunk; ++i) acc[k] += v[i] * x[i];
            }
        }
    }
}

// ---- Dispatch -----------------------------------------------------------------------------------

// Calls fn(Fmt{}) with the format of `type` and returns true, or returns false for a type that
// has no format here (fn is a generic lambda that launches a kernel template on decltype(fmt)).
// The list is every stored type the type table has a dot product for.
template <class Fn>
bool visit_format(GgmlType type, Fn&& fn) {
    switch (type) {
        case GgmlType::F32: fn(FmtF32{}); return true;
        case GgmlType::F16: fn(FmtF16{}); return true;
        case GgmlType::BF16: fn(FmtBF16{}); return true;
        case GgmlType::Q4_0: fn(FmtQ4_0{}); return true;
        case GgmlType::Q4_1: fn(FmtQ4_1{}); return true;
        case GgmlType::Q5_0: fn(FmtQ5_0{}); return true;
        case GgmlType::Q5_1: fn(FmtQ5_1{}); return true;
        case GgmlType::Q8_0: fn(FmtQ8_0{}); return true;
        case GgmlType::Q2_K: fn(FmtQ2_K{}); return true;
        case GgmlType::Q3_K: fn(FmtQ3_K{}); return true;
        case GgmlType::Q4_K: fn(FmtQ4_K{}); return true;
        case GgmlType::Q5_K: fn(FmtQ5_K{}); return true;
        case GgmlType::Q6_K: fn(FmtQ6_K{}); return true;
        case GgmlType::IQ4_NL: fn(FmtIQ4_NL{}); return true;
        case GgmlType::IQ4_XS: fn(FmtIQ4_XS{}); return true;
        default: return false;
    }
}

// visit_format for a launcher whose caller has checked the type (cuda_weight_type_supported):
// anything else is a bug, reported rather than run.
template <class Fn>
void with_format(GgmlType type, const char* op, Fn&& fn) {
    if (!visit_format(type, static_cast<Fn&&>(fn))) fail("cuda: ", op, " has no kernel for ", type_name(type));
}

}  // namespace strata
