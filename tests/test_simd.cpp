// The CPU backend's SIMD kernels against the type table's scalar references, on fresh random rows
// (the seed is printed with any failure): dot products within a float-rounding bound, activation
// quantizers byte for byte, the matmul tiling and threading, and the kernel selection.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "backend/cpu/kernels.h"
#include "backend/tensor.h"
#include "tensor/float16.h"
#include "tensor/ggml_type.h"
#include "tensor/quant.h"
#include "tensor/tensor.h"
#include "util/cpu_features.h"
#include "util/thread_pool.h"

using namespace strata;

namespace {

uint32_t fresh_seed() { return std::random_device{}(); }

std::vector<float> normal_floats(size_t n, std::mt19937& rng, float mean = 0.0f, float stddev = 1.0f) {
    std::normal_distribution<float> dist(mean, stddev);
    std::vector<float> v(n);
    for (float& x : v) x = dist(rng);
    return v;
}

std::vector<uint8_t> quantize(GgmlType type, const float* x, int64_t n) {
    std::vector<uint8_t> q(row_size(type, n));
    quantize_row(type, x, q.data(), n);
    return q;
}

// The SIMD tables this CPU can run (none on a CPU without AVX2: the suite then checks only the
// selection).
std::vector<const CpuKernels*> simd_tables() {
    std::vector<const CpuKernels*> tables;
    if (const CpuKernels* k = cpu_kernels_avx2()) tables.push_back(k);
    return tables;
}

// How far a fast dot product may be from the reference, both computed from the same quantized
// rows. The integer dot of each block is exact in both; they differ only in how the float terms
// are rounded and summed. Each float addition of a running sum errs by at most 2^-24 times the
// partial sum, and any partial sum (a lane's or the reference's) is at most M = Σ_blocks
// 2·max|w|·Σ|a| (a weight with a min is a difference of a scale term and a min term, each at most
// 2·max|w| — the bound test_quant.cpp uses). The reference adds nb block terms in sequence, a
// lane of the SIMD kernel at most nb, the horizontal sum 3 more, and each block term carries at
// most 8 roundings of its own (scale products, int-to-float, the min term): so
// |fast - reference| <= 2^-24 · (2·nb + 16) · M. For the float types a "block" is one element
// and the reference sums in double, which only tightens its side.
double dot_tolerance(GgmlType wtype, const std::vector<float>& wd, const std::vector<float>& ad) {
    const int64_t bs = type_traits(wtype).block_size;
    const int64_t n = static_cast<int64_t>(wd.size());
    double m = 0;
    for (int64_t b = 0; b < n / bs; ++b) {
        double max_w = 0, abs_a = 0;
        for (int64_t i = b * bs; i < (b + 1) * bs; ++i) {
            max_w = std::max(max_w, std::fabs(static_cast<double>(wd[i])));
            abs_a += std::fabs(static_cast<double>(ad[i]));
        }
        m += 2 * max_w * abs_a;
    }
    return 0x1p-24 * static_cast<double>(2 * (n / bs) + 16) * m;
}

}  // namespace

TEST_CASE("SIMD vec_dot equals the reference within float rounding, on fresh random rows") {
    const uint32_t seed = fresh_seed();
    CAPTURE(seed);
    std::mt19937 rng(seed);
    const CpuKernels& ref = cpu_kernels_scalar();
    for (const CpuKernels* simd : simd_tables()) {
        const std::string isa = simd->isa;
        CAPTURE(isa);
        int checked = 0;
        for (uint32_t id = 0; id < CpuKernels::kTypes; ++id) {
            const TypeTraits* t = find_type_traits(id);
            if (!t || !t->vec_dot || simd->vec_dots[id] == ref.vec_dots[id]) continue;
            const std::string type = t->name;
            CAPTURE(type);
            ++checked;
            // Several lengths: one block, odd block counts (the kernels' tails), a model-sized row;
            // the float types also get lengths that are not a multiple of the vector width.
            std::vector<int64_t> lengths = {1, 3, 7, 16};
            if (t->block_size == 1) lengths = {1, 7, 33, 40, 100, 259};
            for (int64_t& n : lengths) n *= t->block_size == 1 ? 1 : t->block_size;
            lengths.push_back(4096);
            for (int64_t n : lengths) {
                CAPTURE(n);
                for (int rep = 0; rep < 3; ++rep) {
                    // A mean away from zero exercises the min terms of the K-quants.
                    const std::vector<float> w = normal_floats(static_cast<size_t>(n), rng, 0.3f);
                    const std::vector<float> x = normal_floats(static_cast<size_t>(n), rng);
                    const std::vector<uint8_t> wq = quantize(t->type, w.data(), n);
                    const std::vector<uint8_t> aq = quantize(t->vec_dot_type, x.data(), n);
                    std::vector<float> wd(w.size()), ad(x.size());
                    dequantize_row(t->type, wq.data(), wd.data(), n);
                    dequantize_row(t->vec_dot_type, aq.data(), ad.data(), n);
                    const double want = ref.vec_dot(t->type)(n, wq.data(), aq.data());
                    const double got = simd->vec_dot(t->type)(n, wq.data(), aq.data());
                    REQUIRE(std::isfinite(got));
                    CHECK(std::fabs(got - want) <= dot_tolerance(t->type, wd, ad));
                }
            }
        }
        MESSAGE(isa, ": ", checked, " vec_dot kernels checked against the reference");
        CHECK(checked >= 9);
    }
}

TEST_CASE("SIMD axpy equals the reference within one rounding per element") {
    const uint32_t seed = fresh_seed();
    CAPTURE(seed);
    std::mt19937 rng(seed);
    for (const CpuKernels* simd : simd_tables()) {
        const std::string isa = simd->isa;
        CAPTURE(isa);
        for (int64_t n : {1, 7, 8, 32, 80, 131}) {
            CAPTURE(n);
            const std::vector<float> x = normal_floats(static_cast<size_t>(n), rng);
            const std::vector<float> y0 = normal_floats(static_cast<size_t>(n), rng);
            const float a = normal_floats(1, rng)[0];
            std::vector<float> want = y0, got = y0;
            cpu_kernels_scalar().axpy_f32(n, a, x.data(), want.data());
            simd->axpy_f32(n, a, x.data(), got.data());
            for (int64_t i = 0; i < n; ++i) {
                // The reference rounds a·x and then the sum, a fused multiply-add only the sum:
                // they differ by at most the product's rounding plus one of the sum's.
                const double tol = 0x1p-24 * (std::fabs(a * x[i]) + 2 * std::fabs(want[i]));
                CHECK(std::fabs(static_cast<double>(got[i]) - want[i]) <= tol);
            }
        }
    }
}

TEST_CASE("four-row kernels equal the one-row kernel bit for bit") {
    // The matmul groups tokens by four where it can; equality makes its result independent of
    // the grouping (a token gives the same logits alone or inside a prompt).
    const uint32_t seed = fresh_seed();
    CAPTURE(seed);
    std::mt19937 rng(seed);
    for (const CpuKernels* simd : simd_tables()) {
        const std::string isa = simd->isa;
        CAPTURE(isa);
        int checked = 0;
        for (uint32_t id = 0; id < CpuKernels::kTypes; ++id) {
            const TypeTraits* t = find_type_traits(id);
            if (!t || !simd->vec_dots_x4[id]) continue;
            const std::string type = t->name;
            CAPTURE(type);
            ++checked;
            const int64_t n = t->block_size == 1 ? 1000 : 7 * std::max<int64_t>(t->block_size, 32);
            const std::vector<float> w = normal_floats(static_cast<size_t>(n), rng, 0.3f);
            const std::vector<uint8_t> wq = quantize(t->type, w.data(), n);
            const size_t a_row = row_size(t->vec_dot_type, n);
            std::vector<uint8_t> aq(4 * a_row);
            for (int j = 0; j < 4; ++j) {
                const std::vector<float> x = normal_floats(static_cast<size_t>(n), rng);
                quantize_row(t->vec_dot_type, x.data(), aq.data() + j * a_row, n);
            }
            float four[4];
            simd->vec_dot_x4(t->type)(n, wq.data(), aq.data(), a_row, four);
            for (int j = 0; j < 4; ++j) {
                const float one = simd->vec_dot(t->type)(n, wq.data(), aq.data() + j * a_row);
                CHECK(std::memcmp(&one, &four[j], sizeof one) == 0);
            }
        }
        CHECK(checked >= 8);
    }
}

TEST_CASE("SIMD activation quantizers write the reference's bytes") {
    const uint32_t seed = fresh_seed();
    CAPTURE(seed);
    std::mt19937 rng(seed);
    const CpuKernels& ref = cpu_kernels_scalar();
    for (const CpuKernels* simd : simd_tables()) {
        const std::string isa = simd->isa;
        CAPTURE(isa);
        for (GgmlType type : {GgmlType::Q8_0, GgmlType::Q8_K, GgmlType::F16}) {
            const std::string name = type_name(type);
            CAPTURE(name);
            const bool replaced = simd->quantize(type) != ref.quantize(type);
            REQUIRE(replaced);
            const int64_t n = 16 * 256;
            std::vector<float> x;
            for (float stddev : {1.0f, 1e-3f, 1e-6f, 300.0f}) {  // 1e-6 reaches the f16 subnormals
                const std::vector<float> part = normal_floats(static_cast<size_t>(n), rng, 0.0f, stddev);
                x.insert(x.end(), part.begin(), part.end());
            }
            // Rounding ties, in three super-blocks. A: its largest magnitude is 127 (positive
            // first), so Q8_0's first block has scale 1 and k + 0.5 lands exactly on a tie (Q8_0
            // rounds it away from zero, Q8_K, with iscale -1, to even). B: the largest magnitude
            // appears negative first (it sets Q8_K's sign), plus f16 ties (1 + 2^-11 lies halfway
            // between two halves). C: zeros.
            std::vector<float> ties(3 * 256, 0.0f);
            for (size_t i = 0; i < 512; ++i) ties[i] = static_cast<float>(static_cast<int>(i % 64) - 32) + 0.5f;
            ties[0] = 127.0f;
            ties[5] = -127.0f;
            ties[300] = -127.0f;
            ties[301] = 127.0f;
            ties[302] = 1.0f + 0x1p-11f;
            ties[303] = 1.0f + 3 * 0x1p-11f;
            x.insert(x.end(), ties.begin(), ties.end());
            const int64_t total = static_cast<int64_t>(x.size());
            std::vector<uint8_t> want(row_size(type, total)), got(want.size());
            ref.quantize(type)(x.data(), want.data(), total);
            simd->quantize(type)(x.data(), got.data(), total);
            size_t first_diff = want.size();
            for (size_t i = 0; i < want.size() && first_diff == want.size(); ++i) {
                if (want[i] != got[i]) first_diff = i;
            }
            CAPTURE(first_diff);
            CHECK(first_diff == want.size());
        }
    }
}

TEST_CASE("cpu_matmul with SIMD kernels matches per-row reference dot products") {
    const uint32_t seed = fresh_seed();
    CAPTURE(seed);
    std::mt19937 rng(seed);
    const CpuKernels& ref = cpu_kernels_scalar();
    std::vector<const CpuKernels*> tables = simd_tables();
    tables.push_back(&ref);
    ThreadPool pool(2);
    std::vector<uint8_t> scratch;
    for (const CpuKernels* kernels : tables) {
        const std::string isa = kernels->isa;
        CAPTURE(isa);
        for (GgmlType type : {GgmlType::F32, GgmlType::F16, GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_K,
                              GgmlType::Q6_K}) {
            const std::string name = type_name(type);
            CAPTURE(name);
            // Rows not a multiple of any tile, and enough of them that the tiles split across threads.
            const int64_t cols = 512, rows = 203, n_tokens = 5;
            const std::vector<float> w = normal_floats(static_cast<size_t>(rows * cols), rng, 0.1f);
            const std::vector<float> x = normal_floats(static_cast<size_t>(n_tokens * cols), rng);
            const size_t w_row = row_size(type, cols);
            std::vector<uint8_t> wq(w_row * rows);
            for (int64_t r = 0; r < rows; ++r) quantize_row(type, w.data() + r * cols, wq.data() + r * w_row, cols);
            const Tensor view = make_tensor(type, {cols, rows}, wq.data(), nullptr);
            std::vector<float> y(static_cast<size_t>(rows * n_tokens), NAN);
            std::vector<float> xs = x;
            cpu_matmul(pool, *kernels, view, make_tensor(GgmlType::F32, {cols, n_tokens}, xs.data(), nullptr),
                       make_tensor(GgmlType::F32, {rows, n_tokens}, y.data(), nullptr), scratch);

            const GgmlType at = type_traits(type).vec_dot_type;
            std::vector<float> wd(static_cast<size_t>(cols));
            for (int64_t t = 0; t < n_tokens; ++t) {
                const std::vector<uint8_t> aq = quantize(at, x.data() + t * cols, cols);
                std::vector<float> ad(static_cast<size_t>(cols));
                dequantize_row(at, aq.data(), ad.data(), cols);
                for (int64_t r = 0; r < rows; ++r) {
                    dequantize_row(type, wq.data() + r * w_row, wd.data(), cols);
                    const double want = ref.vec_dot(type)(cols, wq.data() + r * w_row, aq.data());
                    const float got = y[static_cast<size_t>(t * rows + r)];
                    REQUIRE(std::isfinite(got));
                    CHECK(std::fabs(got - want) <= dot_tolerance(type, wd, ad));
                }
            }
        }
    }
}

TEST_CASE("kernel selection: the reference when forced or when the CPU lacks the ISA") {
    CHECK(std::string(select_cpu_kernels(CpuFeatures::get(), true).isa) == "scalar");
    CHECK(std::string(select_cpu_kernels(CpuFeatures{}, false).isa) == "scalar");
    const CpuFeatures& f = CpuFeatures::get();
    const bool avx2 = f.avx2 && f.fma && f.f16c;
    CHECK((cpu_kernels_avx2() != nullptr) == avx2);
    if (avx2) CHECK(std::string(select_cpu_kernels(f, false).isa) == "avx2");
    // The process-wide choice follows STRATA_FORCE_SCALAR.
    const char* env = std::getenv("STRATA_FORCE_SCALAR");
    const bool forced = env && *env && std::string(env) != "0";
    CHECK(&cpu_kernels() == &select_cpu_kernels(f, forced));
    MESSAGE("kernels in use: ", std::string(cpu_kernels().isa), " (CPU: ", f.to_string(), ")");
    // Every kernel of the reference table is the type table's.
    for (uint32_t id = 0; id < CpuKernels::kTypes; ++id) {
        const TypeTraits* t = find_type_traits(id);
        if (!t) continue;
        const bool same = cpu_kernels_scalar().vec_dots[id] == t->vec_dot &&
                          cpu_kernels_scalar().quantizers[id] == t->from_float;
        CHECK(same);
    }
}
