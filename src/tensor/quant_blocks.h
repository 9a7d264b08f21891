// ggml's quantized block layouts (ggml-common.h), byte for byte: these structs are how the blocks
// lie in a GGUF file. Scales stored as IEEE half are kept as raw uint16_t bits (see float16.h).
// Internal to src/tensor; the rest of strata sees only the type table (ggml_type.h).
#pragma once

#include <cstdint>

namespace strata {

constexpr int QK4_0 = 32;
constexpr int QK4_1 = 32;
constexpr int QK5_0 = 32;
constexpr int QK5_1 = 32;
constexpr int QK8_0 = 32;
constexpr int QK8_1 = 32;
constexpr int QK4_NL = 32;
constexpr int QK_K = 256;  // super-block of the K-quants and IQ4_XS
constexpr int K_SCALE_SIZE = 12;

// Q4_0: x = d * (q - 8), q in 0..15; element j in the low nibble of qs[j], j+16 in the high one.
struct block_q4_0 {
    uint16_t d;
    uint8_t qs[QK4_0 / 2];
};
static_assert(sizeof(block_q4_0) == 2 + QK4_0 / 2, "wrong q4_0 block size/padding");

// Q4_1: x = d * q + m, q in 0..15, same nibble order as Q4_0.
struct block_q4_1 {
    uint16_t d;
    uint16_t m;
    uint8_t qs[QK4_1 / 2];
};
static_assert(sizeof(block_q4_1) == 4 + QK4_1 / 2, "wrong q4_1 block size/padding");

// Q5_0: x = d * (q - 16); the 5th bit of element j is bit j of the little-endian word qh.
struct block_q5_0 {
    uint16_t d;
    uint8_t qh[4];
    uint8_t qs[QK5_0 / 2];
};
static_assert(sizeof(block_q5_0) == 2 + 4 + QK5_0 / 2, "wrong q5_0 block size/padding");

// Q5_1: x = d * q + m, q in 0..31, bits laid out as in Q5_0.
struct block_q5_1 {
    uint16_t d;
    uint16_t m;
    uint8_t qh[4];
    uint8_t qs[QK5_1 / 2];
};
static_assert(sizeof(block_q5_1) == 4 + 4 + QK5_1 / 2, "wrong q5_1 block size/padding");

// Q8_0: x = d * q, q in -127..127.
struct block_q8_0 {
    uint16_t d;
    int8_t qs[QK8_0];
};
static_assert(sizeof(block_q8_0) == 2 + QK8_0, "wrong q8_0 block size/padding");

// Q8_1: as Q8_0 plus s = d * sum(qs), which folds the weight's min into one multiply (Q4_1, Q5_1).
struct block_q8_1 {
    uint16_t d;
    uint16_t s;
    int8_t qs[QK8_1];
};
static_assert(sizeof(block_q8_1) == 4 + QK8_1, "wrong q8_1 block size/padding");

// Q2_K: 16 groups of 16; x = d * (scales[g] & 15) * q - dmin * (scales[g] >> 4), q in 0..3.
struct block_q2_K {
    uint8_t scales[QK_K / 16];
    uint8_t qs[QK_K / 4];
    uint16_t d;
    uint16_t dmin;
};
static_assert(sizeof(block_q2_K) == 4 + QK_K / 16 + QK_K / 4, "wrong q2_K block size/padding");

// Q3_K: 16 groups of 16; x = d * (scale6 - 32) * (q - 4), low 2 bits in qs, the third in hmask.
struct block_q3_K {
    uint8_t hmask[QK_K / 8];
    uint8_t qs[QK_K / 4];
    uint8_t scales[12];  // 16 six-bit scales: low nibbles in bytes 0..7, top 2 bits in 8..11
    uint16_t d;
};
static_assert(sizeof(block_q3_K) == 2 + QK_K / 4 + QK_K / 8 + 12, "wrong q3_K block size/padding");

// Q4_K: 8 groups of 32; x = d * sc * q - dmin * m with six-bit sc, m packed in scales.
struct block_q4_K {
    uint16_t d;
    uint16_t dmin;
    uint8_t scales[K_SCALE_SIZE];
    uint8_t qs[QK_K / 2];
};
static_assert(sizeof(block_q4_K) == 4 + K_SCALE_SIZE + QK_K / 2, "wrong q4_K block size/padding");

// Q5_K: Q4_K plus a fifth bit per element in qh.
struct block_q5_K {
    uint16_t d;
    uint16_t dmin;
    uint8_t scales[K_SCALE_SIZE];
    uint8_t qh[QK_K / 8];
    uint8_t qs[QK_K / 2];
};
static_assert(sizeof(block_q5_K) == 4 + K_SCALE_SIZE + QK_K / 2 + QK_K / 8, "wrong q5_K block size/padding");

// Q6_K: 16 groups of 16; x = d * scales[g] * (q - 32), low 4 bits in ql, top 2 in qh.
struct block_q6_K {
    uint8_t ql[QK_K / 2];
    uint8_t qh[QK_K / 4];
    int8_t scales[QK_K / 16];
    uint16_t d;
};
static_assert(sizeof(block_q6_K) == 2 + QK_K / 16 + 3 * QK_K / 4, "wrong q6_K block size/padding");

// Q8_K: activations for K-quant dot products; a float scale and the sums of each group of 16
// (bsums), so a weight's per-group min costs one multiply per group.
struct block_q8_K {
    float d;
    int8_t qs[QK_K];
    int16_t bsums[QK_K / 16];
};
static_assert(sizeof(block_q8_K) == 4 + QK_K + QK_K / 16 * 2, "wrong q8_K block size/padding");

// IQ4_NL: x = d * kvalues_iq4nl[q]; nibble order as Q4_0.
struct block_iq4_nl {
    uint16_t d;
    uint8_t qs[QK4_NL / 2];
};
static_assert(sizeof(block_iq4_nl) == 2 + QK4_NL / 2, "wrong iq4_nl block size/padding");

// IQ4_XS: 8 groups of 32 on the IQ4_NL grid, each with a six-bit scale (low 4 bits in scales_l,
// top 2 in scales_h); x = d * (scale - 32) * kvalues_iq4nl[q].
struct block_iq4_xs {
    uint16_t d;
    uint16_t scales_h;
    uint8_t scales_l[QK_K / 64];
    uint8_t qs[QK_K / 2];
};
static_assert(sizeof(block_iq4_xs) == 4 + QK_K / 64 + QK_K / 2, "wrong iq4_xs block size/padding");

// The 16 levels of IQ4_NL/IQ4_XS: a non-uniform grid fitted to the bell shape of weights.
inline constexpr int8_t kvalues_iq4nl[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                             1,    13,   25,  38,  53,  69,  89,  113};

// Sizes of the types strata lists but cannot decode (ggml-common.h), for row_size and `info`.
constexpr size_t kSizeIq2Xxs = 2 + QK_K / 8 * 2;
constexpr size_t kSizeIq2Xs = 2 + QK_K / 8 * 2 + QK_K / 32;
constexpr size_t kSizeIq2S = 2 + QK_K / 4 + QK_K / 16;
constexpr size_t kSizeIq3Xxs = 2 + 3 * (QK_K / 8);
constexpr size_t kSizeIq3S = 2 + 13 * (QK_K / 32) + QK_K / 64;
constexpr size_t kSizeIq1S = 2 + QK_K / 8 + QK_K / 16;
constexpr size_t kSizeIq1M = QK_K / 8 + QK_K / 16 + QK_K / 32;

}  // namespace strata
