// The machinery of the op conformance suite (test_backend_ops.cpp): the backends under test, host
// floats ↔ backend tensors, and running one case on the reference and on every backend.
//
// A case is a function that builds its tensors on a Device from host data, runs the op and
// downloads the outputs. run_case calls it once on the reference backend with contiguous tensors
// and once per backend under test in the case's layout (activations and outputs as column views
// of wider matrices when the case is strided), so a backend that mishandles row strides differs
// from the reference even though both share code.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <numeric>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "tensor/ggml_type.h"

namespace strata::test {

// ---- Random data ------------------------------------------------------------------------------

// One fresh seed per process; STRATA_TEST_SEED=n repeats a run.
inline uint32_t suite_seed() {
    static const uint32_t seed = [] {
        const char* env = std::getenv("STRATA_TEST_SEED");
        return env && *env ? static_cast<uint32_t>(std::strtoul(env, nullptr, 10)) : std::random_device{}();
    }();
    return seed;
}

// Each case draws from its own generator, seeded by the suite's seed and the case's label, so a
// failing case replays alone under a doctest filter.
inline std::mt19937 case_rng(const std::string& label) {
    std::seed_seq seq{suite_seed(), static_cast<uint32_t>(std::hash<std::string>{}(label))};
    return std::mt19937(seq);
}

inline std::vector<float> normal(size_t n, std::mt19937& rng, float stddev = 1.0f) {
    std::normal_distribution<float> dist(0.0f, stddev);
    std::vector<float> v(n);
    for (float& x : v) x = dist(rng);
    return v;
}

inline std::vector<float> uniform(size_t n, std::mt19937& rng, float lo, float hi) {
    std::uniform_real_distribution<float> dist(lo, hi);
    std::vector<float> v(n);
    for (float& x : v) x = dist(rng);
    return v;
}

// Builds a label from any streamable parts.
template <class... Parts>
std::string str(const Parts&... parts) {
    std::ostringstream os;
    (os << ... << parts);
    return os.str();
}

// from, from + 1, … (positions of consecutive tokens).
inline std::vector<int32_t> consecutive(int64_t n, int64_t from) {
    std::vector<int32_t> v(static_cast<size_t>(n));
    std::iota(v.begin(), v.end(), static_cast<int32_t>(from));
    return v;
}

// What a tensor of `type` holds after the host quantizes `v` into it (rows of whole blocks).
inline std::vector<float> roundtrip(GgmlType type, const std::vector<float>& v) {
    const TypeTraits& t = type_traits(type);
    const auto n = static_cast<int64_t>(v.size());
    std::vector<uint8_t> q(row_size(type, n));
    std::vector<float> out(v.size());
    t.from_float(v.data(), q.data(), n);
    t.to_float(q.data(), out.data(), n);
    return out;
}

// ---- Tensors on a backend ---------------------------------------------------------------------

class Device {
public:
    // Columns of NaN left and right of a strided view. 16 floats keep the view 64-byte aligned,
    // as the column views a model makes (q of a fused qkv, x of Mamba's xBC) are.
    static constexpr int64_t kPadLeft = 16, kPadRight = 3;

    Device(Backend& b, bool strided) : backend(b), strided(strided) {}

    Backend& backend;
    const bool strided;     // activations and outputs are column views of wider matrices
    WeightBuffers weights;  // what load_weight keeps

    // A contiguous tensor of `type` holding `values`, quantized on the host with from_float.
    Tensor upload(GgmlType type, const std::vector<float>& values, std::initializer_list<int64_t> shape) {
        Tensor t = alloc(type, shape);
        REQUIRE(static_cast<int64_t>(values.size()) == t.n_elements());
        std::vector<uint8_t> bytes(t.nbytes());
        type_traits(type).from_float(values.data(), bytes.data(), t.n_elements());
        backend.write(t, bytes.data(), bytes.size());
        return t;
    }

    // I32 [values.size()], or [ne0, values.size() / ne0].
    Tensor upload_i32(const std::vector<int32_t>& values, int64_t ne0 = 0) {
        const auto n = static_cast<int64_t>(values.size());
        Tensor t = ne0 ? alloc(GgmlType::I32, {ne0, n / ne0}) : alloc(GgmlType::I32, {n});
        backend.write(t, values.data(), values.size() * sizeof(int32_t));
        return t;
    }

    // An F32 activation [cols, rows]: contiguous, or when strided columns [kPadLeft, kPadLeft +
    // cols) of a wider matrix whose other columns hold NaN, so that reading them poisons the result.
    Tensor activation(const std::vector<float>& values, int64_t cols, int64_t rows) {
        REQUIRE(static_cast<int64_t>(values.size()) == cols * rows);
        if (!strided) return upload(GgmlType::F32, values, {cols, rows});
        const int64_t width = kPadLeft + cols + kPadRight;
        std::vector<float> wide(static_cast<size_t>(width * rows), std::numeric_limits<float>::quiet_NaN());
        for (int64_t r = 0; r < rows; ++r) {
            std::copy_n(values.begin() + r * cols, cols, wide.begin() + r * width + kPadLeft);
        }
        const Tensor parent = upload(GgmlType::F32, wide, {width, rows});
        padded_.push_back(parent);
        return parent.cols(kPadLeft, kPadLeft + cols);
    }

    // An F32 output [cols, rows] full of NaN, so a value the op fails to write shows; strided
    // like activation() unless the op's contract wants it contiguous.
    Tensor output(int64_t cols, int64_t rows, bool may_stride = true) {
        const std::vector<float> nan(static_cast<size_t>(cols * rows), std::numeric_limits<float>::quiet_NaN());
        return may_stride ? activation(nan, cols, rows) : upload(GgmlType::F32, nan, {cols, rows});
    }

    // The values of t (a decodable type or I32; contiguous or a row-strided view), as floats.
    std::vector<float> download(const Tensor& t) {
        const size_t bytes = t.nbytes();
        std::vector<uint8_t> raw(bytes);
        backend.read(make_tensor(GgmlType::I8, {static_cast<int64_t>(bytes)}, t.data, t.buffer), raw.data(), bytes);
        std::vector<float> out(static_cast<size_t>(t.n_elements()));
        for (int64_t r = 0; r < t.n_rows(); ++r) {
            const int64_t i1 = r % t.ne[1], i2 = r / t.ne[1] % t.ne[2], i3 = r / (t.ne[1] * t.ne[2]);
            const uint8_t* row = raw.data() + i1 * t.nb[1] + i2 * t.nb[2] + i3 * t.nb[3];
            float* dst = out.data() + r * t.ne[0];
            if (t.type == GgmlType::I32) {
                for (int64_t i = 0; i < t.ne[0]; ++i) {
                    int32_t v;
                    std::memcpy(&v, row + i * 4, 4);
                    dst[i] = static_cast<float>(v);
                }
            } else {
                type_traits(t.type).to_float(row, dst, t.ne[0]);
            }
        }
        return out;
    }

    // Whether the padding columns around every strided view still hold NaN (nothing was written
    // outside a view).
    bool padding_intact() {
        for (const Tensor& parent : padded_) {
            const std::vector<float> v = download(parent);
            const int64_t width = parent.ne[0], cols = width - kPadLeft - kPadRight;
            for (int64_t i = 0; i < static_cast<int64_t>(v.size()); ++i) {
                const int64_t c = i % width;
                if ((c < kPadLeft || c >= kPadLeft + cols) && !std::isnan(v[static_cast<size_t>(i)])) return false;
            }
        }
        return true;
    }

private:
    Tensor alloc(GgmlType type, std::initializer_list<int64_t> shape) {
        const size_t bytes = make_tensor(type, shape, nullptr, nullptr).nbytes();
        buffers_.push_back(backend.alloc(bytes));
        return buffers_.back()->tensor(type, shape);
    }

    std::vector<std::unique_ptr<BackendBuffer>> buffers_;
    std::vector<Tensor> padded_;
};

// ---- Comparing outputs ------------------------------------------------------------------------

// One downloaded output of a case and how close another backend's must be to it.
struct Output {
    std::string name;
    std::vector<float> values;
    double tolerance;
};
using Outputs = std::vector<Output>;

// The worst difference relative to the expected output's scale, max|got − want| / max|want|
// (relative to each element it would blow up where an output crosses zero). Infinite for a NaN
// or Inf on either side and for a size mismatch, so those never pass.
inline double max_rel_error(const std::vector<float>& got, const std::vector<float>& want) {
    if (got.size() != want.size()) return INFINITY;
    double diff = 0, scale = 0;
    for (size_t i = 0; i < got.size(); ++i) {
        if (!std::isfinite(got[i]) || !std::isfinite(want[i])) return INFINITY;
        diff = std::max(diff, std::fabs(static_cast<double>(got[i]) - want[i]));
        scale = std::max(scale, std::fabs(static_cast<double>(want[i])));
    }
    return diff == 0 ? 0 : diff / std::max(scale, 1e-30);
}

// STRATA_OPS_VERBOSE=1 prints every comparison's error (to see how much room a tolerance leaves).
inline void check_close(const std::string& where, const std::string& name, const std::vector<float>& got,
                        const std::vector<float>& want, double tolerance) {
    const double err = max_rel_error(got, want);
    if (std::getenv("STRATA_OPS_VERBOSE"))
        std::fprintf(stderr, "%-90s %-8s %.2e (tol %.1e)\n", where.c_str(), name.c_str(), err, tolerance);
    if (!(err <= tolerance)) {
        FAIL_CHECK(where, ": ", name, " max relative error ", err, " > tolerance ", tolerance,
                   " (STRATA_TEST_SEED=", suite_seed(), " repeats it)");
    }
}

// ---- The backends under test ------------------------------------------------------------------

struct Backends {
    std::unique_ptr<Backend> reference = make_reference_backend();
    std::vector<std::unique_ptr<Backend>> tested;  // every available backend, the CPU first
    std::vector<BackendInfo> skipped;              // built in, but unable to run here
    // By backend: the ops (op and type) that threw NotImplemented.
    std::map<std::string, std::set<std::string>> not_implemented;

    Backends() {
        // An odd thread count, so row splits are uneven and some thread gets a partial tile.
        constexpr int kThreads = 3;
        for (const BackendInfo& b : list_backends()) {
            if (b.available) {
                tested.push_back(make_backend(b.name, kThreads));
            } else {
                skipped.push_back(b);
            }
        }
    }
};

inline Backends& backends() {
    static Backends b;
    return b;
}

// ---- Running a case ----------------------------------------------------------------------------

struct Case {
    std::string op;        // the op and type, e.g. "matmul q4_K" (what the not-implemented summary lists)
    std::string shape;     // the rest of the label
    bool strided = false;  // activations and outputs are column views on the backends under test
    std::string label() const { return op + " " + shape + (strided ? " strided" : ""); }
    std::mt19937 rng() const { return case_rng(label()); }
};

// Builds the case's tensors on the device from host data, runs the op, downloads the outputs.
using CaseFn = std::function<Outputs(Device&)>;

// Runs a case on the reference and on every backend under test, and checks each output of each
// backend against the reference's within the output's tolerance. Returns the reference's outputs,
// for the caller to check against the op's contract computed on the host (empty if the reference
// failed). A NotImplemented is recorded for the summary; it fails only the CPU, which implements
// every op.
inline Outputs run_case(const Case& c, const CaseFn& run) {
    const std::string label = c.label();
    Outputs ref;
    try {
        Device d(*backends().reference, false);
        ref = run(d);
    } catch (const std::exception& e) {
        FAIL_CHECK(label, " on the reference backend threw: ", std::string(e.what()));
        return {};
    }
    for (const std::unique_ptr<Backend>& b : backends().tested) {
        const std::string where = label + " on " + b->name();
        try {
            Device d(*b, c.strided);
            const Outputs got = run(d);
            REQUIRE(got.size() == ref.size());
            for (size_t i = 0; i < got.size(); ++i) {
                check_close(where, got[i].name, got[i].values, ref[i].values, ref[i].tolerance);
            }
            if (!d.padding_intact()) FAIL_CHECK(where, ": wrote outside a column view (its padding columns changed)");
        } catch (const NotImplemented& e) {
            if (std::strcmp(b->name(), "cpu") == 0) {
                FAIL_CHECK(where, ": the CPU must implement every op, but: ", std::string(e.what()));
            } else {
                backends().not_implemented[b->name()].insert(c.op);
            }
        } catch (const std::exception& e) {
            FAIL_CHECK(where, " threw: ", std::string(e.what()));
        }
    }
    return ref;
}

// The reference's outputs against the contract computed on the host, in the same order.
inline void check_contract(const Case& c, const Outputs& ref, const std::vector<std::vector<float>>& want) {
    if (ref.empty()) return;  // the reference threw: already failed
    REQUIRE(ref.size() == want.size());
    const std::string where = c.label() + ": reference vs contract";
    for (size_t i = 0; i < ref.size(); ++i) check_close(where, ref[i].name, ref[i].values, want[i], ref[i].tolerance);
}

}  // namespace strata::test
