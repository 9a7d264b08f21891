// The CUDA backend's own check: its memory functions and its GPU ops (get_rows and matmul on every
// weight type, rmsnorm, add, moe_ffn) against host computations on fresh random inputs of awkward shapes —
// odd widths, 1, 9 and 33 tokens, column views whose row stride is wider than the row — with
// sentinels around every strided output to catch writes out of bounds. The conformance suite
// (test_backend_ops.cpp) compares every op of every backend with the CPU; this file spells out
// the cases a first GPU backend gets wrong. Skips loudly where no CUDA device can be used (a build
// without CUDA, or no GPU or driver: CI and the dev machine); tests/gpu/run.sh runs it on a GPU.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "tensor/float16.h"
#include "test_backend.h"

namespace {

using namespace strata;
using strata::test::weight_types;

// The cuda backend, or null after a MESSAGE naming why it cannot run here.
std::unique_ptr<Backend> cuda_or_skip() {
    for (const BackendInfo& b : list_backends()) {
        if (b.name == "cuda" && !b.available) MESSAGE("skipping the CUDA backend test: " << b.why_not);
        if (b.name == "cuda") return b.available ? make_backend("cuda", 1) : nullptr;
    }
    FAIL("list_backends() has no 'cuda' entry");
    return nullptr;
}

std::vector<float> random_floats(size_t n, std::mt19937& rng, float lo = -1.0f, float hi = 1.0f) {
    std::uniform_real_distribution<float> dist(lo, hi);
    std::vector<float> v(n);
    for (float& x : v) x = dist(rng);
    return v;
}

// An F32 matrix [cols, rows] on the device, as a column view of a wider parent when `pad` > 0
// (pad columns before it, pad + 1 after), so its row stride is not its row. The parent starts
// out random; `host` mirrors it and `at` addresses the view's elements in it.
struct Matrix {
    std::unique_ptr<BackendBuffer> buf;
    Tensor parent, view;
    std::vector<float> host;
    int64_t width = 0, first = 0;

    float& at(int64_t row, int64_t col) { return host[static_cast<size_t>(row * width + first + col)]; }
    bool in_view(size_t i) const {
        const int64_t col = static_cast<int64_t>(i) % width;
        return col >= first && col < first + view.ne[0];
    }
};

Matrix make_matrix(Backend& be, int64_t cols, int64_t rows, int64_t pad, std::mt19937& rng) {
    Matrix m;
    m.width = pad ? cols + 2 * pad + 1 : cols;
    m.first = pad;
    m.host = random_floats(static_cast<size_t>(m.width * rows), rng);
    m.buf = be.alloc(m.host.size() * sizeof(float));
    m.parent = m.buf->tensor(GgmlType::F32, {m.width, rows});
    m.view = m.parent.cols(m.first, m.first + cols);
    be.write(m.parent, m.host.data(), m.host.size() * sizeof(float));
    return m;
}

// The parent as the device holds it now, with every element outside the view checked against
// what was written there (an op must touch its view only).
std::vector<float> read_checked(Backend& be, const Matrix& m) {
    std::vector<float> got(m.host.size());
    be.read(m.parent, got.data(), got.size() * sizeof(float));
    size_t clobbered = 0;
    for (size_t i = 0; i < got.size(); ++i) clobbered += !m.in_view(i) && std::memcmp(&got[i], &m.host[i], 4) != 0;
    CHECK_MESSAGE(clobbered == 0, clobbered << " elements outside the view were written");
    return got;
}

// A weight of the given type uploaded through load_weight, as a model loads one (a stack of ne2
// expert matrices when ne2 > 1).
Tensor load(Backend& be, WeightBuffers& keep, GgmlType type, int64_t ne0, int64_t ne1, const void* bytes,
            int64_t ne2 = 1) {
    TensorView v;
    v.name = "test.weight";
    v.type = type;
    v.n_dims = ne2 > 1 ? 3 : 2;
    v.ne[0] = ne0;
    v.ne[1] = ne1;
    v.ne[2] = ne2;
    v.data = bytes;
    v.nbytes = row_size(type, ne0) * static_cast<size_t>(ne1 * ne2);
    return be.load_weight(v, keep);
}


// Random weights stored as `type` and their exact float values, through the type table's
// reference (de)quantization.
std::vector<uint8_t> encode(GgmlType type, const std::vector<float>& values, std::vector<float>& decoded) {
    const TypeTraits& tt = type_traits(type);
    const auto n = static_cast<int64_t>(values.size());
    std::vector<uint8_t> bytes(row_size(type, n));
    if (type == GgmlType::F32) {
        std::memcpy(bytes.data(), values.data(), bytes.size());
    } else {
        tt.from_float(values.data(), bytes.data(), n);
    }
    decoded.resize(values.size());
    tt.to_float(bytes.data(), decoded.data(), n);
    return bytes;
}

}  // namespace

TEST_CASE("cuda backend: says whether it can run here, and why not") {
    for (const BackendInfo& b : list_backends()) {
        if (b.name != "cuda") continue;
        if (b.available) {
            CHECK(b.why_not.empty());
            CHECK(std::string(make_backend("cuda", 1)->name()) == "cuda");
        } else {
            MESSAGE("cuda backend unavailable: " << b.why_not);
            CHECK(!b.why_not.empty());
            CHECK_THROWS_AS(make_backend("cuda", 1), Error);
        }
        return;
    }
    FAIL("list_backends() has no 'cuda' entry");
}

TEST_CASE("cuda backend: write, read, copy and fill_zero") {
    std::unique_ptr<Backend> be = cuda_or_skip();
    if (!be) return;
    std::mt19937 rng(12);
    Matrix a = make_matrix(*be, 67, 5, 0, rng);
    // write returns once its source may be reused: scribbling over it afterwards changes nothing.
    std::vector<float> src = a.host;
    be->write(a.parent, src.data(), src.size() * sizeof(float));
    std::fill(src.begin(), src.end(), -7.0f);
    std::vector<float> got(a.host.size());
    be->read(a.parent, got.data(), got.size() * sizeof(float));
    CHECK(got == a.host);

    Matrix b = make_matrix(*be, 67, 5, 0, rng);
    be->copy(b.parent, a.parent);
    be->read(b.parent, got.data(), got.size() * sizeof(float));
    CHECK(got == a.host);

    // fill_zero on a column view zeroes the view only.
    Matrix c = make_matrix(*be, 33, 4, 3, rng);
    be->fill_zero(c.view);
    for (int64_t t = 0; t < 4; ++t)
        for (int64_t j = 0; j < 33; ++j) c.at(t, j) = 0.0f;
    CHECK(read_checked(*be, c) == c.host);

    // A tensor in host memory never reaches a kernel.
    float host_x[4] = {};
    const Tensor on_host = make_tensor(GgmlType::F32, {4, 1}, host_x, nullptr);
    CHECK_THROWS_AS(be->add(on_host, on_host), Error);
}

TEST_CASE("cuda backend: get_rows of tables of every weight type") {
    std::unique_ptr<Backend> be = cuda_or_skip();
    if (!be) return;
    std::mt19937 rng(7);
    const int64_t n_vocab = 50;
    for (GgmlType type : weight_types()) {
        const int64_t block = type_traits(type).block_size, cols = block == 1 ? 67 : 3 * block;
        std::vector<float> table_f;
        const std::vector<uint8_t> bytes =
            encode(type, random_floats(static_cast<size_t>(cols * n_vocab), rng), table_f);
        WeightBuffers keep;
        const Tensor whole = load(*be, keep, type, cols, n_vocab, bytes.data());
        for (bool table_view : {false, true}) {
            // A column view of the table skips its first block: row stride wider than the row.
            const Tensor table = table_view ? whole.cols(block, cols) : whole;
            const int64_t first = table_view ? block : 0, width = table.ne[0];
            for (int64_t n : {1, 33}) {
                for (int64_t pad : {0, 2}) {
                    const std::string type_str = type_name(type);  // CAPTURE prints a char* as a pointer
                    CAPTURE(type_str);
                    CAPTURE(table_view);
                    CAPTURE(n);
                    CAPTURE(pad);
                    std::vector<int32_t> ids(static_cast<size_t>(n));
                    for (int32_t& id : ids) id = static_cast<int32_t>(rng() % n_vocab);
                    ids[0] = static_cast<int32_t>(n_vocab - 1);  // the last row, where an overrun would show
                    std::unique_ptr<BackendBuffer> ids_buf = be->alloc(ids.size() * 4);
                    const Tensor ids_t = ids_buf->tensor(GgmlType::I32, {n});
                    be->write(ids_t, ids.data(), ids.size() * 4);
                    Matrix out = make_matrix(*be, width, n, pad, rng);
                    be->get_rows(table, ids_t, out.view);
                    for (int64_t i = 0; i < n; ++i)
                        for (int64_t j = 0; j < width; ++j) out.at(i, j) = table_f[ids[i] * cols + first + j];
                    // Exact: the device decodes each element with the reference's operations in its
                    // order, unfused (cuda/dequant.cuh). This assumes the host compiled the reference
                    // without FMA contraction, as the portable build does: with -march=native GCC may
                    // fuse the reference's q · d + m, and types with a min would differ in the last bit.
                    CHECK(read_checked(*be, out) == out.host);
                }
            }
        }
    }
}

TEST_CASE("cuda backend: rmsnorm with and without weight, strided and in place") {
    std::unique_ptr<Backend> be = cuda_or_skip();
    if (!be) return;
    std::mt19937 rng(3);
    const float eps = 1e-5f;
    for (int64_t cols : {67, 1029}) {
        const std::vector<float> w = random_floats(static_cast<size_t>(cols), rng, 0.5f, 1.5f);
        WeightBuffers keep;
        const Tensor w_t = load(*be, keep, GgmlType::F32, cols, 1, w.data());
        for (int64_t n : {1, 33}) {
            for (int mode = 0; mode < 4; ++mode) {  // bit 0: with weight; bit 1: x strided, out in place
                const bool weighted = mode & 1, in_place = mode & 2;
                CAPTURE(cols);
                CAPTURE(n);
                CAPTURE(mode);
                Matrix x = make_matrix(*be, cols, n, in_place ? 2 : 0, rng);
                Matrix out_separate = make_matrix(*be, cols, n, 3, rng);
                Matrix& out = in_place ? x : out_separate;
                std::vector<float> want(static_cast<size_t>(cols * n));
                for (int64_t t = 0; t < n; ++t) {
                    double ss = 0;
                    for (int64_t j = 0; j < cols; ++j) ss += double(x.at(t, j)) * x.at(t, j);
                    const double scale = 1.0 / std::sqrt(ss / double(cols) + eps);
                    for (int64_t j = 0; j < cols; ++j) {
                        want[t * cols + j] = float(x.at(t, j) * scale * (weighted ? w[j] : 1.0f));
                    }
                }
                be->rmsnorm(x.view, weighted ? w_t : Tensor{}, eps, out.view);
                const std::vector<float> got = read_checked(*be, out);
                // Float sums of ≤ 1029 squares in a tree of 256 lanes are within ~1e-6 relative of
                // the double sum; 1e-5 relative leaves a wide margin and still catches any slip.
                size_t bad = 0;
                for (int64_t t = 0; t < n; ++t)
                    for (int64_t j = 0; j < cols; ++j) {
                        const float g = got[static_cast<size_t>(t * out.width + out.first + j)], e = want[t * cols + j];
                        bad += !std::isfinite(g) || std::abs(g - e) > 1e-5f * std::abs(e) + 1e-7f;
                    }
                CHECK(bad == 0);
            }
        }
    }
}

TEST_CASE("cuda backend: add on strided rows") {
    std::unique_ptr<Backend> be = cuda_or_skip();
    if (!be) return;
    std::mt19937 rng(5);
    for (int64_t n : {1, 33}) {
        for (int64_t pad : {0, 1}) {
            CAPTURE(n);
            CAPTURE(pad);
            Matrix x = make_matrix(*be, 67, n, pad, rng);
            Matrix y = make_matrix(*be, 67, n, 1 - pad, rng);
            be->add(x.view, y.view);
            for (int64_t t = 0; t < n; ++t)
                for (int64_t j = 0; j < 67; ++j) x.at(t, j) += y.at(t, j);
            CHECK(read_checked(*be, x) == x.host);  // exact: one correctly rounded add per element
        }
    }
}

TEST_CASE("cuda backend: matmul with weights of every type") {
    std::unique_ptr<Backend> be = cuda_or_skip();
    if (!be) return;
    std::mt19937 rng(11);
    struct Shape {
        int64_t cols, rows;
    };
    for (GgmlType type : weight_types()) {
        // Quantized rows hold whole blocks: 3, 9 and 1 of them (9 blocks of 256 give each lane up
        // to 3 chunks of 32, so a lane sums at most 96 products).
        const int64_t block = type_traits(type).block_size;
        const std::vector<Shape> shapes = block == 1
                                              ? std::vector<Shape>{{67, 130}, {1027, 97}, {32, 1}}
                                              : std::vector<Shape>{{3 * block, 130}, {9 * block, 97}, {block, 1}};
        for (Shape s : shapes) {
            std::vector<float> w;
            const std::vector<uint8_t> bytes =
                encode(type, random_floats(static_cast<size_t>(s.cols * s.rows), rng), w);
            WeightBuffers keep;
            const Tensor w_t = load(*be, keep, type, s.cols, s.rows, bytes.data());
            for (int64_t n : {1, 9, 33}) {
                for (int64_t pad : {0, 2}) {
                    const std::string type_str = type_name(type);  // CAPTURE prints a char* as a pointer
                    CAPTURE(type_str);
                    CAPTURE(s.cols);
                    CAPTURE(s.rows);
                    CAPTURE(n);
                    CAPTURE(pad);
                    Matrix x = make_matrix(*be, s.cols, n, pad, rng);
                    Matrix y = make_matrix(*be, s.rows, n, 2 - pad, rng);
                    be->matmul(w_t, x.view, y.view);
                    const std::vector<float> got = read_checked(*be, y);
                    // The weights are dequantized exactly and x stays F32, so only float sums
                    // differ: each lane sums ≤ 96 products, then 5 shuffle adds: the error is below
                    // ~101 · 2⁻²⁴ ≈ 6e-6 of Σ|w·x|, in practice far less; 1e-5 of it still holds.
                    size_t bad = 0;
                    for (int64_t t = 0; t < n; ++t)
                        for (int64_t r = 0; r < s.rows; ++r) {
                            double sum = 0, mag = 0;
                            for (int64_t c = 0; c < s.cols; ++c) {
                                sum += double(w[r * s.cols + c]) * x.at(t, c);
                                mag += std::abs(double(w[r * s.cols + c]) * x.at(t, c));
                            }
                            const float g = got[static_cast<size_t>(t * y.width + y.first + r)];
                            bad += !std::isfinite(g) || std::abs(g - sum) > 1e-5 * mag + 1e-7;
                        }
                    CHECK(bad == 0);
                }
            }
        }
    }
}

// moe_ffn with gate, up and down of three different types (files mix them) against the
// composition on the host, on column views; the last token's second choice names an expert that
// does not exist, which makes that token's outputs NaN and leaves the others alone.
TEST_CASE("cuda backend: moe_ffn with mixed expert types, ids read on the device") {
    std::unique_ptr<Backend> be = cuda_or_skip();
    if (!be) return;
    std::mt19937 rng(13);
    constexpr int64_t kEmbd = 256, kFf = 512, kExperts = 4, kChosen = 2;
    std::vector<float> gate, up, down;
    const std::vector<uint8_t> gate_bytes =
        encode(GgmlType::Q4_K, random_floats(static_cast<size_t>(kEmbd * kFf * kExperts), rng, -0.1f, 0.1f), gate);
    const std::vector<uint8_t> up_bytes =
        encode(GgmlType::Q8_0, random_floats(static_cast<size_t>(kEmbd * kFf * kExperts), rng, -0.1f, 0.1f), up);
    const std::vector<uint8_t> down_bytes =
        encode(GgmlType::Q6_K, random_floats(static_cast<size_t>(kFf * kEmbd * kExperts), rng, -0.1f, 0.1f), down);
    WeightBuffers keep;
    const Tensor gate_t = load(*be, keep, GgmlType::Q4_K, kEmbd, kFf, gate_bytes.data(), kExperts);
    const Tensor up_t = load(*be, keep, GgmlType::Q8_0, kEmbd, kFf, up_bytes.data(), kExperts);
    const Tensor down_t = load(*be, keep, GgmlType::Q6_K, kFf, kEmbd, down_bytes.data(), kExperts);
    for (int64_t n : {1, 5}) {
        CAPTURE(n);
        std::vector<int32_t> ids(static_cast<size_t>(kChosen * n));
        for (int64_t t = 0; t < n; ++t) {
            ids[t * kChosen] = static_cast<int32_t>(rng() % kExperts);
            ids[t * kChosen + 1] = static_cast<int32_t>((ids[t * kChosen] + 1 + rng() % (kExperts - 1)) % kExperts);
        }
        const bool poison = n > 1;
        if (poison) ids.back() = kExperts;
        const std::vector<float> weights = random_floats(ids.size(), rng, 0.1f, 1.0f);
        std::unique_ptr<BackendBuffer> ids_buf = be->alloc(ids.size() * 4), weights_buf = be->alloc(ids.size() * 4);
        const Tensor ids_t = ids_buf->tensor(GgmlType::I32, {kChosen, n});
        const Tensor weights_t = weights_buf->tensor(GgmlType::F32, {kChosen, n});
        be->write(ids_t, ids.data(), ids.size() * 4);
        be->write(weights_t, weights.data(), weights.size() * 4);
        Matrix h = make_matrix(*be, kEmbd, n, 2, rng);
        Matrix out = make_matrix(*be, kEmbd, n, 1, rng);
        be->moe_ffn(h.view, gate_t, up_t, down_t, ids_t, weights_t, out.view);
        const std::vector<float> got = read_checked(*be, out);
        double max_want = 0, max_diff = 0;
        size_t not_finite = 0, not_nan = 0;
        for (int64_t t = 0; t < n; ++t) {
            const bool poisoned = poison && t == n - 1;
            std::vector<double> want(static_cast<size_t>(kEmbd), 0.0);
            for (int64_t j = 0; j < kChosen && !poisoned; ++j) {
                const int64_t e = ids[t * kChosen + j];
                std::vector<double> act(static_cast<size_t>(kFf));
                for (int64_t r = 0; r < kFf; ++r) {
                    double g = 0, u = 0;
                    for (int64_t c = 0; c < kEmbd; ++c) {
                        g += double(gate[(e * kFf + r) * kEmbd + c]) * h.at(t, c);
                        u += double(up[(e * kFf + r) * kEmbd + c]) * h.at(t, c);
                    }
                    act[r] = g / (1 + std::exp(-g)) * u;
                }
                for (int64_t r = 0; r < kEmbd; ++r) {
                    double y = 0;
                    for (int64_t c = 0; c < kFf; ++c) y += double(down[(e * kEmbd + r) * kFf + c]) * act[c];
                    want[r] += weights[t * kChosen + j] * y;
                }
            }
            for (int64_t r = 0; r < kEmbd; ++r) {
                const float g = got[static_cast<size_t>(t * out.width + out.first + r)];
                if (poisoned) {
                    not_nan += !std::isnan(g);
                } else if (!std::isfinite(g)) {
                    ++not_finite;
                } else {
                    max_want = std::max(max_want, std::abs(want[r]));
                    max_diff = std::max(max_diff, std::abs(g - want[r]));
                }
            }
        }
        CHECK(not_finite == 0);
        CHECK(not_nan == 0);
        // Exact weights and F32 activations: float sums of 256 and 512 products and expf leave
        // errors near 1e-6 of the largest output; 1e-4 is a wide margin.
        CHECK(max_diff <= 1e-4 * max_want);
    }
}

TEST_CASE("cuda backend: ops not on the GPU yet throw NotImplemented naming the op") {
    std::unique_ptr<Backend> be = cuda_or_skip();
    if (!be) return;
    std::mt19937 rng(1);
    Matrix x = make_matrix(*be, 64, 2, 0, rng);
    Matrix y = make_matrix(*be, 3, 2, 0, rng);
    // Q8_1 is an activation format: no backend has weight kernels for it.
    const std::vector<uint8_t> q8_1(row_size(GgmlType::Q8_1, 64) * 3);
    WeightBuffers keep;
    const Tensor w = load(*be, keep, GgmlType::Q8_1, 64, 3, q8_1.data());
    CHECK_THROWS_WITH_AS(be->matmul(w, x.view, y.view), "cuda backend: matmul on q8_1 weights is not implemented yet",
                         NotImplemented);
}
