// The tensor type table: block geometry, fp16/bf16 conversions, quantize/dequantize accuracy,
// the integer dot products, and bit compatibility with files written by llama.cpp.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "format/gguf.h"
#include "tensor/float16.h"
#include "tensor/ggml_type.h"
#include "tensor/quant.h"
#include "test_support.h"
#include "util/error.h"

using namespace strata;

namespace {

std::vector<float> normal_floats(size_t n, uint32_t seed, float mean = 0.0f) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> dist(mean, 1.0f);
    std::vector<float> v(n);
    for (float& x : v) x = dist(rng);
    return v;
}

std::vector<uint8_t> quantize(GgmlType type, const std::vector<float>& x) {
    std::vector<uint8_t> q(row_size(type, static_cast<int64_t>(x.size())));
    quantize_row(type, x.data(), q.data(), static_cast<int64_t>(x.size()));
    return q;
}

std::vector<float> dequantize(GgmlType type, const void* q, int64_t n) {
    std::vector<float> x(static_cast<size_t>(n));
    dequantize_row(type, q, x.data(), n);
    return x;
}

// RMSE of `approx` against `exact`, relative to the RMS of `exact`.
double relative_rmse(const float* exact, const float* approx, size_t n) {
    double err = 0, sum = 0;
    for (size_t i = 0; i < n; ++i) {
        const double d = static_cast<double>(approx[i]) - exact[i];
        err += d * d;
        sum += static_cast<double>(exact[i]) * exact[i];
    }
    return sum > 0 ? std::sqrt(err / sum) : std::sqrt(err / static_cast<double>(n));
}

// Highest relative RMSE (RMSE / RMS of the input) each type may show after quantize ->
// dequantize, on N(0,1) rows and on the real weights of the llama.cpp fixtures. Our quantizers
// reproduce ggml's reference bit for bit (the fixture test checks it), so what we measure is what
// ggml achieves: each bound is the larger of the N(0,1) value and the worst fixture tensor
// (comments: N(0,1) / fixtures, measured once) plus ~5% headroom. f16 and bf16 only round: a
// relative step of 2^-10 (2^-7) gives at most 2^-10/sqrt(12) = 2.8e-4 (2.3e-3).
struct Bound {
    GgmlType type;
    double max_rel_rmse;
};
constexpr Bound kBounds[] = {
    {GgmlType::F32, 0.0},        // exact
    {GgmlType::F16, 2.2e-4},     // 2.08e-4 / 2.1e-4
    {GgmlType::BF16, 1.8e-3},    // 1.67e-3
    {GgmlType::Q8_0, 5.9e-3},    // 5.37e-3 / 5.64e-3
    {GgmlType::Q8_1, 5.7e-3},    // 5.37e-3 (same levels as Q8_0)
    {GgmlType::Q8_K, 7.4e-3},    // 7.03e-3 (one scale per 256: coarser than Q8_0)
    {GgmlType::Q6_K, 1.95e-2},   // 1.77e-2 / 1.82e-2
    {GgmlType::Q5_0, 4.8e-2},    // 4.26e-2 / 4.51e-2
    {GgmlType::Q5_1, 4.0e-2},    // 3.76e-2
    {GgmlType::Q5_K, 3.8e-2},    // 3.59e-2
    {GgmlType::Q4_0, 9.5e-2},    // 8.65e-2 / 9.03e-2
    {GgmlType::Q4_1, 8.3e-2},    // 7.82e-2
    {GgmlType::Q4_K, 7.6e-2},    // 7.14e-2 / 7.18e-2
    {GgmlType::IQ4_NL, 8.1e-2},  // 7.65e-2
    {GgmlType::IQ4_XS, 8.1e-2},  // 7.70e-2
    {GgmlType::Q3_K, 1.6e-1},    // 1.52e-1
    {GgmlType::Q2_K, 3.1e-1},    // 2.97e-1
};

double bound_for(GgmlType type) {
    for (const Bound& b : kBounds) {
        if (b.type == type) return b.max_rel_rmse;
    }
    FAIL("no RMSE bound for ", type_name(type));
    return 0;
}

// Every type strata can write (from_float set) and read back.
std::vector<GgmlType> quantizable_types() {
    std::vector<GgmlType> types;
    for (uint32_t id = 0; id < 64; ++id) {
        const TypeTraits* t = find_type_traits(id);
        if (t && t->from_float && t->to_float) types.push_back(t->type);
    }
    return types;
}

}  // namespace

TEST_CASE("type table: ggml's block geometry") {
    // Sizes from ggml-common.h (bytes per block of block_size elements).
    struct Expected {
        GgmlType type;
        const char* name;
        int64_t block;
        size_t bytes;
    };
    const Expected expected[] = {
        {GgmlType::F32, "f32", 1, 4},          {GgmlType::F16, "f16", 1, 2},
        {GgmlType::BF16, "bf16", 1, 2},        {GgmlType::Q4_0, "q4_0", 32, 18},
        {GgmlType::Q4_1, "q4_1", 32, 20},      {GgmlType::Q5_0, "q5_0", 32, 22},
        {GgmlType::Q5_1, "q5_1", 32, 24},      {GgmlType::Q8_0, "q8_0", 32, 34},
        {GgmlType::Q8_1, "q8_1", 32, 36},      {GgmlType::Q2_K, "q2_K", 256, 84},
        {GgmlType::Q3_K, "q3_K", 256, 110},    {GgmlType::Q4_K, "q4_K", 256, 144},
        {GgmlType::Q5_K, "q5_K", 256, 176},    {GgmlType::Q6_K, "q6_K", 256, 210},
        {GgmlType::Q8_K, "q8_K", 256, 292},    {GgmlType::IQ2_XXS, "iq2_xxs", 256, 66},
        {GgmlType::IQ2_XS, "iq2_xs", 256, 74}, {GgmlType::IQ3_XXS, "iq3_xxs", 256, 98},
        {GgmlType::IQ1_S, "iq1_s", 256, 50},   {GgmlType::IQ4_NL, "iq4_nl", 32, 18},
        {GgmlType::IQ3_S, "iq3_s", 256, 110},  {GgmlType::IQ2_S, "iq2_s", 256, 82},
        {GgmlType::IQ4_XS, "iq4_xs", 256, 136}, {GgmlType::I8, "i8", 1, 1},
        {GgmlType::I16, "i16", 1, 2},          {GgmlType::I32, "i32", 1, 4},
        {GgmlType::I64, "i64", 1, 8},          {GgmlType::F64, "f64", 1, 8},
        {GgmlType::IQ1_M, "iq1_m", 256, 56},
    };
    for (const Expected& e : expected) {
        const std::string name = e.name;
        CAPTURE(name);
        const TypeTraits& t = type_traits(e.type);
        CHECK(t.name == name);
        CHECK(t.block_size == e.block);
        CHECK(t.type_size == e.bytes);
        CHECK(find_type_by_name(e.name) == &t);
        CHECK(type_name(e.type) == name);
    }
    // Activation formats, as ggml pairs them.
    using T = GgmlType;
    const std::pair<T, T> pairs[] = {
        {T::F32, T::F32},   {T::F16, T::F16},     {T::BF16, T::BF16},   {T::Q4_0, T::Q8_0}, {T::Q5_0, T::Q8_0},
        {T::Q8_0, T::Q8_0}, {T::IQ4_NL, T::Q8_0}, {T::Q4_1, T::Q8_1},   {T::Q5_1, T::Q8_1}, {T::Q2_K, T::Q8_K},
        {T::Q3_K, T::Q8_K}, {T::Q4_K, T::Q8_K},   {T::Q5_K, T::Q8_K},   {T::Q6_K, T::Q8_K}, {T::IQ4_XS, T::Q8_K},
    };
    for (const auto& [weights, activations] : pairs) {
        const std::string name = type_name(weights);
        CAPTURE(name);
        CHECK(type_traits(weights).vec_dot_type == activations);
        const bool has_dot = type_traits(weights).vec_dot != nullptr;
        CHECK(has_dot);
    }
    CHECK(find_type_by_name("Q4_k") == &type_traits(GgmlType::Q4_K));
    CHECK(find_type_by_name("q4_2") == nullptr);
    // Retired ids (Q4_2, Q4_3) and ids past the table are unknown.
    CHECK(find_type_traits(4) == nullptr);
    CHECK(find_type_traits(5) == nullptr);
    CHECK(find_type_traits(31) == nullptr);
    CHECK_THROWS_AS(type_traits(static_cast<GgmlType>(4)), Error);
    // Listed-only types size rows but cannot be decoded.
    const bool decodable = type_traits(GgmlType::IQ2_XXS).to_float != nullptr;
    CHECK_FALSE(decodable);
    CHECK(row_size(GgmlType::IQ2_XXS, 512) == 132);
}

TEST_CASE("row_size and the row wrappers reject partial blocks and unsupported types") {
    CHECK(row_size(GgmlType::Q4_K, 4096) == 16 * 144);
    CHECK(row_size(GgmlType::Q8_0, 64) == 68);
    CHECK(row_size(GgmlType::F16, 3) == 6);
    CHECK_THROWS_WITH_AS(row_size(GgmlType::Q4_K, 100),
                         "a row of 100 elements is not a whole number of q4_K blocks (256 elements each)", Error);
    std::vector<float> x(256, 1.0f);
    std::vector<uint8_t> q(1024);
    CHECK_THROWS_AS(quantize_row(GgmlType::Q8_0, x.data(), q.data(), 33), Error);
    CHECK_THROWS_WITH_AS(quantize_row(GgmlType::IQ2_XXS, x.data(), q.data(), 256), "strata cannot quantize to iq2_xxs",
                         Error);
    CHECK_THROWS_WITH_AS(dequantize_row(GgmlType::I32, q.data(), x.data(), 4), "strata cannot decode i32 tensors",
                         Error);
}

TEST_CASE("fp16 conversions: special values and round-to-nearest-even") {
    const float inf = std::numeric_limits<float>::infinity();
    CHECK(fp32_to_fp16(1.0f) == 0x3C00);
    CHECK(fp32_to_fp16(-2.0f) == 0xC000);
    CHECK(fp32_to_fp16(65504.0f) == 0x7BFF);  // largest finite half
    CHECK(fp32_to_fp16(65519.0f) == 0x7BFF);  // below the midpoint to 65536
    CHECK(fp32_to_fp16(65520.0f) == 0x7C00);  // the midpoint rounds to even: infinity
    CHECK(fp32_to_fp16(inf) == 0x7C00);
    CHECK(fp32_to_fp16(-inf) == 0xFC00);
    CHECK(fp32_to_fp16(std::nanf("")) == 0x7E00);
    CHECK(fp32_to_fp16(-0.0f) == 0x8000);
    // Ties between two halves go to the even mantissa.
    CHECK(fp32_to_fp16(1.0f + 0x1p-11f) == 0x3C00);
    CHECK(fp32_to_fp16(1.0f + 3 * 0x1p-11f) == 0x3C02);
    // Subnormal halves: steps of 2^-24; 2^-25 is a tie with 0 and rounds to even (0).
    CHECK(fp32_to_fp16(0x1p-24f) == 0x0001);
    CHECK(fp32_to_fp16(0x1p-25f) == 0x0000);
    CHECK(fp32_to_fp16(3 * 0x1p-25f) == 0x0002);
    CHECK(fp32_to_fp16(0x1p-14f - 0x1p-24f) == 0x03FF);  // largest subnormal

    CHECK(fp16_to_fp32(0x0001) == 0x1p-24f);
    CHECK(fp16_to_fp32(0x03FF) == 0x1p-14f - 0x1p-24f);
    CHECK(fp16_to_fp32(0x0400) == 0x1p-14f);
    CHECK(fp16_to_fp32(0x7BFF) == 65504.0f);
    CHECK(fp16_to_fp32(0x7C00) == inf);
    CHECK(fp16_to_fp32(0xFC00) == -inf);
    CHECK(std::isnan(fp16_to_fp32(0x7E00)));
    CHECK(std::isnan(fp16_to_fp32(0x7C01)));
    CHECK(std::signbit(fp16_to_fp32(0x8000)));
    // Every finite half survives the round trip through float.
    for (uint32_t h = 0; h < 0x10000; ++h) {
        if ((h & 0x7C00) == 0x7C00) continue;
        if (fp32_to_fp16(fp16_to_fp32(static_cast<uint16_t>(h))) != h) FAIL("half 0x", std::hex, h);
    }
}

TEST_CASE("bf16 conversions: special values and round-to-nearest-even") {
    const float inf = std::numeric_limits<float>::infinity();
    CHECK(fp32_to_bf16(1.0f) == 0x3F80);
    CHECK(fp32_to_bf16(1.0f + 0x1p-8f) == 0x3F80);      // tie, to even
    CHECK(fp32_to_bf16(1.0f + 3 * 0x1p-8f) == 0x3F82);  // tie, to even (up)
    CHECK(fp32_to_bf16(1.0f + 0x1p-8f + 0x1p-20f) == 0x3F81);
    CHECK(fp32_to_bf16(inf) == 0x7F80);
    CHECK(fp32_to_bf16(-inf) == 0xFF80);
    CHECK(fp32_to_bf16(fp32_from_bits(0x7F7FFFFF)) == 0x7F80);  // FLT_MAX rounds up to infinity
    CHECK(fp32_to_bf16(fp32_from_bits(0x7F800001)) == 0x7FC0);  // signalling NaN comes back quiet
    CHECK(fp32_to_bf16(fp32_from_bits(0xFFC00000)) == 0xFFC0);
    CHECK(fp32_to_bf16(fp32_from_bits(0x00010000)) == 0x0001);  // subnormal kept
    CHECK(bf16_to_fp32(0x0001) == fp32_from_bits(0x00010000));
    CHECK(bf16_to_fp32(0xC040) == -3.0f);
    CHECK(std::isnan(bf16_to_fp32(0x7FC0)));
}

TEST_CASE("Q4_0 known answer: ggml's rounding and clamping") {
    // x = j - 16: the largest magnitude is -16 (j = 0), so d = -16 / -8 = 2 and level
    // L = trunc(x/2 + 8.5) = (j + 1) / 2, with j = 31 clamped from 16 to 15.
    std::vector<float> x(32);
    for (int j = 0; j < 32; ++j) x[j] = static_cast<float>(j - 16);
    const std::vector<uint8_t> q = quantize(GgmlType::Q4_0, x);
    REQUIRE(q.size() == 18);
    CHECK(q[0] == 0x00);  // d = 2.0 as half: 0x4000, little-endian
    CHECK(q[1] == 0x40);
    for (int j = 0; j < 16; ++j) {
        const int lo = (j + 1) / 2, hi = std::min(15, (j + 17) / 2);
        CHECK(q[2 + j] == (lo | hi << 4));
    }
}

TEST_CASE("quantize -> dequantize error of every type on N(0,1) rows") {
    constexpr int64_t kRow = 4096;
    constexpr int kRows = 4;
    const std::vector<float> x = normal_floats(kRow * kRows, 1234);
    for (GgmlType type : quantizable_types()) {
        const std::string name = type_name(type);
        CAPTURE(name);
        std::vector<float> back(x.size());
        const size_t rb = row_size(type, kRow);
        std::vector<uint8_t> q(rb * kRows);
        for (int r = 0; r < kRows; ++r) {
            quantize_row(type, x.data() + r * kRow, q.data() + r * rb, kRow);
            dequantize_row(type, q.data() + r * rb, back.data() + r * kRow, kRow);
        }
        bool all_finite = true;
        for (float v : back) all_finite = all_finite && std::isfinite(v);
        REQUIRE(all_finite);
        const double rmse = relative_rmse(x.data(), back.data(), x.size());
        MESSAGE(name, " relative RMSE on N(0,1): ", rmse, " (bound ", bound_for(type), ")");
        CHECK(rmse <= bound_for(type));
    }
}

TEST_CASE("vec_dot equals the dot product of the dequantized rows") {
    constexpr int64_t n = 4096;
    // A mean away from zero exercises the min terms of Q4_1, Q5_1 and the K-quants.
    const std::vector<float> w = normal_floats(n, 77, 0.3f);
    const std::vector<float> a = normal_floats(n, 78);
    for (uint32_t id = 0; id < 64; ++id) {
        const TypeTraits* t = find_type_traits(id);
        if (!t || !t->vec_dot) continue;
        const std::string name = t->name;
        CAPTURE(name);
        const std::vector<uint8_t> wq = quantize(t->type, w);
        const std::vector<uint8_t> aq = quantize(t->vec_dot_type, a);
        const std::vector<float> wd = dequantize(t->type, wq.data(), n);
        const std::vector<float> ad = dequantize(t->vec_dot_type, aq.data(), n);
        // Float error budget against the exact dot of the dequantized rows, in units of 2^-24
        // (integer sums are exact): the running sum rounds once per block, by at most the
        // partial sum; within a block at most 8 roundings (scale products, int-to-float, the
        // dequantized weight) act on terms no larger than max|w|·sum|a| over the block, since a
        // weight with a min is a difference of a scale term and a min term, each <= 2·max|w|.
        // Q8_1 stores s = d·sum(q) as a half: the min term m·s is off by up to 2^-11·|m·s|.
        const int64_t bs = t->block_size;
        double exact = 0, budget = 0, half_s = 0;
        for (int64_t b = 0; b < n / bs; ++b) {
            double max_w = 0, abs_a = 0, sum_a = 0;
            for (int64_t i = b * bs; i < (b + 1) * bs; ++i) {
                exact += static_cast<double>(wd[i]) * ad[i];
                max_w = std::max(max_w, std::fabs(static_cast<double>(wd[i])));
                abs_a += std::fabs(ad[i]);
                sum_a += ad[i];
            }
            budget += std::fabs(exact) + 8 * max_w * abs_a;
            half_s += max_w * std::fabs(sum_a);
        }
        const double tol = 0x1p-24 * budget + (t->vec_dot_type == GgmlType::Q8_1 ? 0x1p-11 * half_s : 0.0);
        const double got = t->vec_dot(n, wq.data(), aq.data());
        CHECK(std::fabs(got - exact) <= tol);
    }
}

TEST_CASE("llama.cpp fixtures: dequantization matches the f32 model, re-quantization matches the bytes") {
    if (test::skip_without_shared("llama.cpp quantized GGUF fixtures")) return;
    const char* models[] = {"llama", "llama-draft", "mixtral", "mamba", "mamba2", "jamba"};
    const char* variants[] = {"f16", "q8_0", "q4_0", "q4_k_m", "q6_k"};
    int files = 0;
    for (const char* model : models) {
        const auto reference = GgufFile::open(test::fixture(std::string("gguf/") + model + "-f32.gguf").string());
        for (const char* variant : variants) {
            const auto path = test::fixture(std::string("gguf/") + model + "-" + variant + ".gguf");
            if (!std::filesystem::exists(path)) continue;
            ++files;
            const auto file = GgufFile::open(path.string());
            for (const GgufTensorInfo& info : file->tensor_infos()) {
                const std::string file_name = path.filename().string();
                CAPTURE(file_name);
                CAPTURE(info.name);
                const TensorView q = file->tensor(info.name);
                const TensorView f = reference->tensor(info.name);
                REQUIRE(f.type == GgmlType::F32);
                REQUIRE(f.n_elements() == q.n_elements());
                const float* exact = static_cast<const float*>(f.data);
                const int64_t ne0 = q.ne[0];
                std::vector<float> back(static_cast<size_t>(q.n_elements()));
                std::vector<uint8_t> bytes(q.row_bytes());
                int64_t rows_differing = 0;
                for (int64_t r = 0; r < q.n_rows(); ++r) {
                    dequantize_row(q.type, q.row(r), back.data() + r * ne0, ne0);
                    quantize_row(q.type, exact + r * ne0, bytes.data(), ne0);
                    if (std::memcmp(bytes.data(), q.row(r), bytes.size()) != 0) ++rows_differing;
                }
                CHECK(relative_rmse(exact, back.data(), back.size()) <= bound_for(q.type));
                // llama-quantize without an importance matrix runs the reference quantizers.
                CHECK(rows_differing == 0);
            }
        }
    }
    CHECK(files >= 20);
}
