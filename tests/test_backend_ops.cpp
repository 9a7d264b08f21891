// The op conformance suite (issue 12): every op of the Backend interface, on every backend that
// can run here, against the reference backend (the CPU backend on its scalar kernels, one thread)
// on fresh random inputs. Each op has a table of cases (shapes, types, layouts) and a tolerance
// per op and type, justified where it is stated; a failure names the op, type, shape, backend and
// the max relative error. The reference itself is held to each op's contract computed on the
// host (backend_ops_contract.h) — attention against a naive softmax over the dequantized cache,
// moe_ffn against the unfused matmul/swiglu composition — so the code the CPU backend and the
// reference share is tested too. A new backend plugs in through list_backends(), unchanged here.
#include <doctest/doctest.h>

#include <array>
#include <numeric>
#include <span>

#include "backend_ops_contract.h"
#include "backend_ops_support.h"
#include "test_backend.h"

using namespace strata;
using namespace strata::test;

namespace {

// Odd multiples of a type's block: 67 floats, 9 blocks of 32, 3 super-blocks of 256.
int64_t odd_width(GgmlType type) {
    const int64_t block = type_traits(type).block_size;
    return block == 1 ? 67 : block * (block == 32 ? 9 : 3);
}

// ---- Tolerances ---------------------------------------------------------------------------------
// All relative to the largest expected output (max_rel_error), for any backend against the
// reference and for the reference against the contract in double. Over 200 runs the worst error
// seen was under 0.6 of its tolerance (8-bit matmul and attention), mostly under 0.1 of it; the
// CPU against the reference stays near 1e-7, except moe_ffn (~1e-3: a last-bit difference in the
// gate/up output can move one element of the down projection's 8-bit activations by a step).
// STRATA_OPS_VERBOSE=1 prints every comparison's error.

// matmul: the reference quantizes activations to the weight type's vec_dot_type (ggml's pairing)
// and sums in float; another backend may keep activations in F32 or round them to another format,
// and sum in any order. Both use the same weights, so the tolerance is the effect of rounding the
// activations on a dot product (the contract check, in double on float activations, sees it all):
//  - F32: summation order only, about √n·2^-24 of the partial sums;
//  - F16 / BF16: each activation off by up to 2^-11 / 2^-8 of itself with random signs, so the
//    output by about that fraction of a typical output;
//  - 8-bit blocks (Q8_0, Q8_1, Q8_K): a step of max|block|/127 ≈ σ/50 for normal data, an error
//    of σ/(50·√12) per element and about 0.6% of a typical output; 3× room for the worst output.
double matmul_tolerance(GgmlType weight) {
    switch (type_traits(weight).vec_dot_type) {
        case GgmlType::F32: return 1e-5;
        case GgmlType::F16: return 2e-3;
        case GgmlType::BF16: return 1.5e-2;
        default: return 3e-2;
    }
}
// get_rows: dequantization only, d·q per element; a backend may fold a block's scale and offset
// in another order (d·(q − 8) or d·q − 8·d), a few roundings of the element.
constexpr double kGetRowsTolerance = 1e-6;
// rmsnorm (and rmsnorm_gated): the sum of squares in another order and precision (double in the
// reference, float lanes in SIMD and GPU kernels: about √n·2^-24) and a fast reciprocal square
// root (CUDA's rsqrtf: 2 ulp).
constexpr double kRmsNormTolerance = 1e-5;
// add, add_bias: one float addition, rounded alike everywhere (the host's double sum is within
// half an ulp of it).
constexpr double kAddTolerance = 1e-7;
// Element-wise through exp (swiglu, add_gated, ssm_conv's SiLU, router probabilities): a few ulp
// of expf, more for a GPU's __expf (2 + 1.16·|x| ulp), and short float sums.
constexpr double kExpTolerance = 1e-5;
// rope: the angle pos·θ_i is computed in float; at positions up to 600 its absolute error reaches
// pos·2^-23 ≈ 7e-5 rad (a little more where θ_i is a running product of powers, as in ggml),
// which moves a rotated pair by that fraction of its length.
constexpr double kRopeTolerance = 2e-4;
// kv_write stores rows in the cache type: F32 and F16 (round to nearest even) are exact; Q8_0 may
// round a value at a tie the other way (x·(1/d) against x/d), one step of max|block|/127.
double cache_tolerance(GgmlType cache) { return cache == GgmlType::Q8_0 ? 1.0 / 127 : 0.0; }
// attention: scores against an F16 or Q8_0 cache may be taken with q rounded to the cache type
// (as vec_dot pairs them), an error in each score of about that rounding (2^-11; σ/50 per element
// for 8-bit blocks, as for matmul) that the softmax weights carry over; an F32 cache leaves
// float summation and expf only.
double attention_tolerance(GgmlType cache) {
    return cache == GgmlType::F32 ? 2e-5 : cache == GgmlType::F16 ? 5e-3 : 3e-2;
}
// moe_ffn: the down projection takes the errors of the gate and up projections along, so twice
// the weight type's matmul tolerance.
double moe_ffn_tolerance(GgmlType weight) { return 2 * matmul_tolerance(weight); }
// ssm_scan: the CPU's chunked (SSD) form for long batches computes each decay as
// exp(cum_t − cum_s) of float cumulative sums instead of a product of per-token exp(Δ·A); the
// sums' rounding, |cum|·2^-24 with |cum| up to ~100 in a 64-token chunk, makes relative errors of
// ~1e-5 in the decays, on top of float sums over d_state and the chunk.
constexpr double kScanTolerance = 1e-4;
// Copies of floats (conv states, snapshot rings, write/read/copy): exact.
constexpr double kExact = 0;

// ---- The backends, memory ops -------------------------------------------------------------------

TEST_CASE("backend_ops: the backends") {
    Backends& b = backends();
    REQUIRE(!b.tested.empty());
    CHECK(std::string(b.tested[0]->name()) == "cpu");
    for (const BackendInfo& s : b.skipped) MESSAGE("backend_ops: ", s.name, " skipped: ", s.why_not);
    CHECK_THROWS_AS(make_backend("no-such-backend", 1), Error);
}

// `strided`: fill_zero on a column view (see the column-view test case at the end).
void check_memory_ops(bool strided) {
    const Case c{"memory", "write/read/copy/fill_zero f32 [67, 5], load_weight f16 [96, 32]", strided};
    std::mt19937 rng = c.rng();
    const std::vector<float> a = normal(67 * 5, rng), b = normal(67 * 5, rng), w = normal(96 * 32, rng),
                             x = normal(96 * 2, rng);
    std::vector<uint8_t> w_bytes(row_size(GgmlType::F16, 96) * 32);
    type_traits(GgmlType::F16).from_float(w.data(), w_bytes.data(), 96 * 32);
    const Outputs ref = run_case(c, [&](Device& d) {
        const Tensor src = d.upload(GgmlType::F32, a, {67, 5}), dst = d.upload(GgmlType::F32, b, {67, 5});
        d.backend.copy(dst.rows(1, 3), src.rows(2, 4));  // row ranges: offsets into both buffers
        const Tensor zeroed = d.activation(b, 67, 5);
        d.backend.fill_zero(zeroed.rows(3, 5));
        TensorView host;
        host.name = "blk.0.ffn_up.weight";
        host.type = GgmlType::F16;
        host.n_dims = 2;
        host.ne[0] = 96;
        host.ne[1] = 32;
        host.data = w_bytes.data();
        host.nbytes = w_bytes.size();
        const Tensor loaded = d.backend.load_weight(host, d.weights), y = d.output(32, 2);
        d.backend.matmul(loaded, d.activation(x, 96, 2), y);
        return Outputs{{"copied", d.download(dst), kExact},
                       {"zeroed", d.download(zeroed), kExact},
                       {"loaded", d.download(loaded), kExact},
                       {"y", d.download(y), matmul_tolerance(GgmlType::F16)}};
    });
    std::vector<float> copied = b, zeroed = b;
    std::copy_n(a.begin() + 2 * 67, 2 * 67, copied.begin() + 67);
    std::fill(zeroed.begin() + 3 * 67, zeroed.end(), 0.0f);
    const std::vector<float> wq = roundtrip(GgmlType::F16, w);
    check_contract(c, ref, {copied, zeroed, wq, host_matmul(wq, x, 96, 32, 2)});
}

TEST_CASE("backend_ops: write, read, copy, fill_zero and load_weight") {
    for (bool strided : {false, true}) check_memory_ops(strided);
}

// ---- matmul, get_rows ---------------------------------------------------------------------------

struct MatmulShape {
    int64_t rows, tokens;
    bool strided;
};
// Decode, a strided decode, a prompt of column views, and one through the four-token kernels with
// a remainder (70 = 17·4 + 2).
constexpr MatmulShape kMatmulShapes[] = {{67, 1, false}, {61, 1, true}, {67, 33, true}, {19, 70, false}};

TEST_CASE("backend_ops: matmul on every weight type") {
    for (const GgmlType type : weight_types()) {
        for (const MatmulShape& s : kMatmulShapes) {
            const int64_t cols = odd_width(type);
            const Case c{str("matmul ", type_name(type)), str("w[", cols, ", ", s.rows, "] x ", s.tokens, " tokens"),
                         s.strided};
            std::mt19937 rng = c.rng();
            const std::vector<float> w = normal(cols * s.rows, rng), x = normal(cols * s.tokens, rng);
            const Outputs ref = run_case(c, [&](Device& d) {
                const Tensor y = d.output(s.rows, s.tokens);
                d.backend.matmul(d.upload(type, w, {cols, s.rows}), d.activation(x, cols, s.tokens), y);
                return Outputs{{"y", d.download(y), matmul_tolerance(type)}};
            });
            check_contract(c, ref, {host_matmul(roundtrip(type, w), x, cols, s.rows, s.tokens)});
        }
    }
}

TEST_CASE("backend_ops: get_rows on every weight type") {
    constexpr int64_t kVocab = 40;
    for (const GgmlType type : weight_types()) {
        for (const int64_t n : {1, 33}) {
            const int64_t width = odd_width(type);
            const Case c{str("get_rows ", type_name(type)), str("table[", width, ", ", kVocab, "] ", n, " ids"), n > 1};
            std::mt19937 rng = c.rng();
            const std::vector<float> table = normal(width * kVocab, rng);
            std::vector<int32_t> ids{kVocab - 1, 0};  // the last and first rows, then any, with repeats
            std::uniform_int_distribution<int32_t> any(0, kVocab - 1);
            while (static_cast<int64_t>(ids.size()) < n) ids.push_back(any(rng));
            ids.resize(static_cast<size_t>(n));
            const Outputs ref = run_case(c, [&](Device& d) {
                const Tensor out = d.output(width, n);
                d.backend.get_rows(d.upload(type, table, {width, kVocab}), d.upload_i32(ids), out);
                return Outputs{{"out", d.download(out), kGetRowsTolerance}};
            });
            const std::vector<float> rows = roundtrip(type, table);
            std::vector<float> want;
            for (const int32_t id : ids)
                want.insert(want.end(), rows.begin() + id * width, rows.begin() + (id + 1) * width);
            check_contract(c, ref, {want});
        }
    }
}

// ---- Row-wise float ops: rmsnorm, swiglu, add, add_bias, add_gated, rope --------------------------

struct RowsShape {
    int64_t width, tokens;
    bool strided;
};
constexpr RowsShape kRowsShapes[] = {{67, 1, false}, {67, 33, true}, {256, 70, false}, {4096, 2, true}};

TEST_CASE("backend_ops: rmsnorm, with and without a weight") {
    constexpr float kEps = 1e-5f;
    for (const RowsShape& s : kRowsShapes) {
        for (const bool weighted : {true, false}) {
            const Case c{"rmsnorm f32", str("[", s.width, ", ", s.tokens, "]", weighted ? " weighted" : ""), s.strided};
            std::mt19937 rng = c.rng();
            std::vector<float> x = normal(s.width * s.tokens, rng);
            const std::vector<float> weight = normal(s.width, rng), row_scale = normal(s.tokens, rng);
            // Rows of different magnitudes, as a residual stream has.
            for (int64_t i = 0; i < s.width * s.tokens; ++i) x[i] *= std::exp(row_scale[i / s.width]);
            const Outputs ref = run_case(c, [&](Device& d) {
                const Tensor out = d.output(s.width, s.tokens);
                const Tensor w = weighted ? d.upload(GgmlType::F32, weight, {s.width}) : Tensor{};
                d.backend.rmsnorm(d.activation(x, s.width, s.tokens), w, kEps, out);
                return Outputs{{"out", d.download(out), kRmsNormTolerance}};
            });
            check_contract(c, ref, {host_rmsnorm(x, weighted ? weight : std::vector<float>{}, s.width, s.width, kEps)});
        }
    }
}

TEST_CASE("backend_ops: swiglu, with out separate or aliasing an input") {
    enum Alias { kNone, kUp, kGate };
    const char* const alias_names[] = {"", " out=up", " out=gate"};
    for (const RowsShape& s : kRowsShapes) {
        for (const Alias alias : {kNone, kUp, kGate}) {
            const Case c{"swiglu f32", str("[", s.width, ", ", s.tokens, "]", alias_names[alias]), s.strided};
            std::mt19937 rng = c.rng();
            const std::vector<float> gate = normal(s.width * s.tokens, rng, 2.0f), up = normal(s.width * s.tokens, rng);
            const Outputs ref = run_case(c, [&](Device& d) {
                const Tensor g = d.activation(gate, s.width, s.tokens), u = d.activation(up, s.width, s.tokens);
                const Tensor out = alias == kUp ? u : alias == kGate ? g : d.output(s.width, s.tokens);
                d.backend.swiglu(g, u, out);
                return Outputs{{"out", d.download(out), kExpTolerance}};
            });
            std::vector<float> want(gate.size());
            for (size_t i = 0; i < want.size(); ++i) want[i] = static_cast<float>(silu(gate[i]) * up[i]);
            check_contract(c, ref, {want});
        }
    }
}

TEST_CASE("backend_ops: add, add_bias and add_gated") {
    for (const RowsShape& s : kRowsShapes) {
        const std::string shape = str("[", s.width, ", ", s.tokens, "]");
        std::mt19937 rng = case_rng("add " + shape);
        const std::vector<float> x = normal(s.width * s.tokens, rng), y = normal(s.width * s.tokens, rng);
        const std::vector<float> bias = normal(s.width, rng), gate = normal(s.tokens, rng, 2.0f);
        std::vector<float> sum(x.size()), biased(x.size()), gated(x.size());
        for (size_t i = 0; i < x.size(); ++i) {
            const size_t t = i / static_cast<size_t>(s.width), col = i % static_cast<size_t>(s.width);
            sum[i] = static_cast<float>(static_cast<double>(x[i]) + y[i]);
            biased[i] = static_cast<float>(static_cast<double>(x[i]) + bias[col]);
            gated[i] = static_cast<float>(x[i] + sigmoid(gate[t]) * y[i]);
        }
        // The three in-place additions, each with its operands and its contract.
        struct InPlace {
            const char* op;
            std::function<void(Device&, const Tensor&)> apply;
            const std::vector<float>& want;
            double tolerance;
        };
        const InPlace ops[] = {
            {"add f32", [&](Device& d, const Tensor& xt) { d.backend.add(xt, d.activation(y, s.width, s.tokens)); },
             sum, kAddTolerance},
            {"add_bias f32",
             [&](Device& d, const Tensor& xt) { d.backend.add_bias(xt, d.upload(GgmlType::F32, bias, {s.width})); },
             biased, kAddTolerance},
            {"add_gated f32",
             [&](Device& d, const Tensor& xt) {
                 d.backend.add_gated(xt, d.activation(y, s.width, s.tokens), d.activation(gate, 1, s.tokens));
             },
             gated, kExpTolerance},
        };
        for (const InPlace& op : ops) {
            const Case c{op.op, shape, s.strided};
            const Outputs ref = run_case(c, [&](Device& d) {
                const Tensor xt = d.activation(x, s.width, s.tokens);
                op.apply(d, xt);
                return Outputs{{"x", d.download(xt), op.tolerance}};
            });
            check_contract(c, ref, {op.want});
        }
    }
}

struct RopeCase {
    int head_dim, n_rot;
    bool neox, freq_factors;
    float freq_base, freq_scale;
    int64_t tokens;
    bool strided;
};
const RopeCase kRopeCases[] = {
    {64, 64, false, false, 1e4f, 1.0f, 1, false},  // GPT-J pairs, decode
    {64, 64, true, false, 1e4f, 1.0f, 33, true},   // NeoX pairs on a column view (q of a fused qkv)
    {64, 32, true, true, 5e5f, 0.25f, 70, false},  // half the head rotated, Llama-3.1 factors, linear scaling
    {32, 16, false, true, 1e4f, 0.5f, 33, true},   // the same with GPT-J pairs
    {32, 32, true, true, 1e6f, 1.0f, 1, true},
};

TEST_CASE("backend_ops: rope, GPT-J and NeoX pairs, partial rotation, frequency factors and scaling") {
    constexpr int kHeads = 3;
    for (const RopeCase& r : kRopeCases) {
        const int64_t width = int64_t{kHeads} * r.head_dim;
        const Case c{"rope f32",
                     str(kHeads, " heads of ", r.head_dim, " n_rot ", r.n_rot, r.neox ? " neox" : " gpt-j",
                         r.freq_factors ? " factors" : "", " base ", r.freq_base, " scale ", r.freq_scale, " x ",
                         r.tokens, " tokens"),
                     r.strided};
        std::mt19937 rng = c.rng();
        const std::vector<float> x = normal(width * r.tokens, rng), factors = uniform(r.n_rot / 2, rng, 1.0f, 8.0f);
        const std::vector<int32_t> pos = consecutive(r.tokens, std::uniform_int_distribution<int>(1, 500)(rng));
        RopeParams p;
        p.n_rot = r.n_rot;
        p.freq_base = r.freq_base;
        p.freq_scale = r.freq_scale;
        p.neox = r.neox;
        const Outputs ref = run_case(c, [&](Device& d) {
            RopeParams pd = p;
            if (r.freq_factors) pd.freq_factors = d.upload(GgmlType::F32, factors, {r.n_rot / 2});
            const Tensor xt = d.activation(x, width, r.tokens);
            d.backend.rope(xt, kHeads, d.upload_i32(pos), pd);
            return Outputs{{"x", d.download(xt), kRopeTolerance}};
        });
        check_contract(c, ref,
                       {host_rope(x, kHeads, r.head_dim, pos, p, r.freq_factors ? factors : std::vector<float>{})});
    }
}

// ---- kv_write and attention ---------------------------------------------------------------------

struct Sequence {
    int n_past, n_new;
};
struct AttentionCase {
    GgmlType cache;
    int n_head, n_head_kv, head_dim_k, head_dim_v;
    std::vector<Sequence> seqs;
    bool interleaved;  // the batch's rows alternate between the sequences (else each one's are adjacent)
    bool strided;
};
const AttentionCase kAttentionCases[] = {
    {GgmlType::F32, 4, 4, 64, 64, {{37, 1}}, false, false},  // decode, a KV head per head
    {GgmlType::F32, 8, 2, 32, 32, {{5, 70}}, false, true},   // a long prompt after a short one, GQA 4
    {GgmlType::F16, 8, 2, 64, 64, {{5, 70}}, false, false},
    {GgmlType::F16, 4, 1, 32, 32, {{100, 1}}, false, true},   // MQA decode; q, k, v, out column views
    {GgmlType::Q8_0, 4, 1, 32, 32, {{3, 70}}, false, false},  // MQA prompt
    {GgmlType::Q8_0, 4, 4, 64, 64, {{50, 1}}, false, true},
    {GgmlType::F32, 4, 2, 64, 32, {{10, 33}}, false, false},                  // value heads narrower than key heads
    {GgmlType::F16, 8, 2, 64, 64, {{20, 1}, {0, 5}, {40, 7}}, false, false},  // three sequences in one batch
    {GgmlType::Q8_0, 4, 1, 32, 32, {{9, 4}, {30, 1}, {0, 3}}, true, true},    // ... their rows interleaved
    {GgmlType::F32, 8, 8, 32, 32, {{12, 1}, {7, 1}}, false, false},           // two sequences decoding together
    // Long enough that a GPU kernel's warps each take several chunks of keys, on head widths that
    // are not multiples of 32, and a batch of more than 64 rows of several sequences (more rows
    // than the CUDA backend passes caches for in one launch).
    {GgmlType::F32, 4, 2, 80, 48, {{600, 1}}, false, true},
    {GgmlType::Q8_0, 4, 2, 64, 64, {{300, 40}}, false, false},
    {GgmlType::F16, 4, 2, 32, 32, {{3, 40}, {0, 30}, {10, 30}}, true, true},
};

TEST_CASE("backend_ops: kv_write and attention on F32, F16 and Q8_0 caches") {
    for (const AttentionCase& a : kAttentionCases) {
        const int64_t kw = int64_t{a.n_head_kv} * a.head_dim_k, vw = int64_t{a.n_head_kv} * a.head_dim_v;
        const int64_t qw = int64_t{a.n_head} * a.head_dim_k, ow = int64_t{a.n_head} * a.head_dim_v;
        std::string seqs;
        for (const Sequence& s : a.seqs) seqs += str(seqs.empty() ? "" : ", ", s.n_new, " at ", s.n_past);
        const Case c{str("attention ", type_name(a.cache)),
                     str(a.n_head, "/", a.n_head_kv, " heads of ", a.head_dim_k, "/", a.head_dim_v, ", tokens {", seqs,
                         "}", a.interleaved ? " interleaved" : ""),
                     a.strided};
        std::mt19937 rng = c.rng();
        const size_t n_seq = a.seqs.size();
        // The batch's rows: each sequence's new tokens in turn, or interleaved (the first token of
        // every sequence, then the second…); each row's sequence and position.
        std::vector<std::pair<int, int>> rows;  // (index in its sequence, sequence)
        for (size_t s = 0; s < n_seq; ++s) {
            for (int j = 0; j < a.seqs[s].n_new; ++j) rows.push_back({j, static_cast<int>(s)});
        }
        if (a.interleaved) std::stable_sort(rows.begin(), rows.end(), [](auto x, auto y) { return x.first < y.first; });
        std::vector<int> seq_of;
        std::vector<int32_t> pos;
        for (const auto& [j, s] : rows) {
            seq_of.push_back(s);
            pos.push_back(a.seqs[static_cast<size_t>(s)].n_past + j);
        }
        const auto n = static_cast<int64_t>(pos.size());
        // Per sequence: cache rows that are never written hold large garbage (8σ, so a backend
        // reading past positions[t] is far off), then the past rows, written by a first kv_write.
        std::vector<int64_t> n_ctx(n_seq);
        std::vector<std::vector<float>> garbage_k(n_seq), garbage_v(n_seq), past_k(n_seq), past_v(n_seq);
        for (size_t s = 0; s < n_seq; ++s) {
            n_ctx[s] = a.seqs[s].n_past + a.seqs[s].n_new + 2;
            garbage_k[s] = normal(kw * n_ctx[s], rng, 8.0f);
            garbage_v[s] = normal(vw * n_ctx[s], rng, 8.0f);
            past_k[s] = normal(kw * a.seqs[s].n_past, rng);
            past_v[s] = normal(vw * a.seqs[s].n_past, rng);
        }
        const std::vector<float> q = normal(qw * n, rng), k = normal(kw * n, rng), v = normal(vw * n, rng);
        AttentionParams p{a.n_head, a.n_head_kv, a.head_dim_k, a.head_dim_v, 1.0f / std::sqrt(float(a.head_dim_k))};

        const Outputs ref = run_case(c, [&](Device& d) {
            std::vector<KvCache> caches(n_seq), per_row;
            for (size_t s = 0; s < n_seq; ++s) {
                caches[s] = {d.upload(a.cache, garbage_k[s], {kw, n_ctx[s]}),
                             d.upload(a.cache, garbage_v[s], {vw, n_ctx[s]})};
                const int n_past = a.seqs[s].n_past;
                if (n_past == 0) continue;
                d.backend.kv_write(std::span(&caches[s], 1), d.activation(past_k[s], kw, n_past),
                                   d.activation(past_v[s], vw, n_past), d.upload_i32(consecutive(n_past, 0)));
            }
            for (const int s : seq_of) per_row.push_back(caches[static_cast<size_t>(s)]);
            // One sequence: the one-cache form of the span; several: a cache per row.
            const std::span<const KvCache> span = n_seq == 1 ? std::span<const KvCache>(caches) : per_row;
            const Tensor positions = d.upload_i32(pos), out = d.output(ow, n);
            d.backend.kv_write(span, d.activation(k, kw, n), d.activation(v, vw, n), positions);
            d.backend.attention(d.activation(q, qw, n), span, positions, p, out);
            std::vector<float> k_rows, v_rows;  // the rows each sequence uses
            for (size_t s = 0; s < n_seq; ++s) {
                const int64_t used = a.seqs[s].n_past + a.seqs[s].n_new;
                const std::vector<float> kr = d.download(caches[s].k.rows(0, used)),
                                         vr = d.download(caches[s].v.rows(0, used));
                k_rows.insert(k_rows.end(), kr.begin(), kr.end());
                v_rows.insert(v_rows.end(), vr.begin(), vr.end());
            }
            return Outputs{{"out", d.download(out), attention_tolerance(a.cache)},
                           {"k cache", k_rows, cache_tolerance(a.cache)},
                           {"v cache", v_rows, cache_tolerance(a.cache)}};
        });

        // The caches as the contract leaves them, in the cache type.
        std::vector<std::vector<float>> hk(n_seq), hv(n_seq);
        for (size_t s = 0; s < n_seq; ++s) {
            hk[s] = past_k[s];
            hv[s] = past_v[s];
            hk[s].resize(static_cast<size_t>(kw * (a.seqs[s].n_past + a.seqs[s].n_new)));
            hv[s].resize(static_cast<size_t>(vw * (a.seqs[s].n_past + a.seqs[s].n_new)));
        }
        for (int64_t t = 0; t < n; ++t) {
            const size_t s = static_cast<size_t>(seq_of[t]);
            std::copy_n(k.begin() + t * kw, kw, hk[s].begin() + pos[t] * kw);
            std::copy_n(v.begin() + t * vw, vw, hv[s].begin() + pos[t] * vw);
        }
        std::vector<float> k_rows, v_rows;
        for (size_t s = 0; s < n_seq; ++s) {
            hk[s] = roundtrip(a.cache, hk[s]);
            hv[s] = roundtrip(a.cache, hv[s]);
            k_rows.insert(k_rows.end(), hk[s].begin(), hk[s].end());
            v_rows.insert(v_rows.end(), hv[s].begin(), hv[s].end());
        }
        check_contract(c, ref, {host_attention(q, hk, hv, seq_of, pos, p), k_rows, v_rows});
    }
}

// ---- Mixture of experts -------------------------------------------------------------------------

struct MoeRouteCase {
    int n_expert, k;
    MoeRouting routing;
    int64_t tokens;
    bool counts, strided;
};
const MoeRouteCase kMoeRouteCases[] = {
    {8, 2, {ExpertGating::Softmax, true, 1.0f}, 33, true, false},    // Mixtral
    {8, 2, {ExpertGating::Softmax, false, 1.0f}, 1, true, true},     // Qwen2-MoE (norm_topk_prob false), decode
    {16, 4, {ExpertGating::Sigmoid, true, 2.5f}, 70, false, false},  // DeepSeek-V3: sigmoid, renormalized, scaled
    {16, 2, {ExpertGating::Sigmoid, false, 1.0f}, 5, true, true},
    {60, 4, {ExpertGating::Softmax, false, 1.0f}, 9, true, false},  // Qwen1.5-MoE's 60 experts
};

TEST_CASE("backend_ops: moe_route, softmax and sigmoid gating, renormalized or not, scaled, counted") {
    for (const MoeRouteCase& m : kMoeRouteCases) {
        const MoeRouting& r = m.routing;
        const Case c{str("moe_route ", r.gating == ExpertGating::Softmax ? "softmax" : "sigmoid"),
                     str(m.n_expert, " experts top ", m.k, r.normalize_top_k ? " renormalized" : "", " scale ",
                         r.weights_scale, " x ", m.tokens, " tokens", m.counts ? " counts" : ""),
                     m.strided};
        std::mt19937 rng = c.rng();
        // Logits on a grid 0.37 apart, so no two experts come near a tie that rounding could
        // flip; exact ties on purpose: every third token for the first place, every third after
        // that one across the k-th place (ties go to the lower id).
        std::vector<float> logits;
        for (int64_t t = 0; t < m.tokens; ++t) {
            std::vector<float> row(static_cast<size_t>(m.n_expert));
            for (int e = 0; e < m.n_expert; ++e) row[e] = 0.37f * static_cast<float>(e - m.n_expert / 2);
            std::shuffle(row.begin(), row.end(), rng);
            std::vector<int> order(row.size());
            std::iota(order.begin(), order.end(), 0);
            std::sort(order.begin(), order.end(), [&](int a, int b) { return row[a] > row[b]; });
            if (t % 3 == 1) row[order[1]] = row[order[0]];
            if (t % 3 == 2) row[order[m.k]] = row[order[m.k - 1]];
            logits.insert(logits.end(), row.begin(), row.end());
        }
        std::vector<int32_t> counts(static_cast<size_t>(m.counts ? m.n_expert : 0));
        for (int32_t& n : counts) n = std::uniform_int_distribution<int32_t>(0, 99)(rng);
        const Outputs ref = run_case(c, [&](Device& d) {
            const Tensor ids = d.upload_i32(std::vector<int32_t>(static_cast<size_t>(m.k * m.tokens), -1), m.k);
            const Tensor weights = d.output(m.k, m.tokens, false);
            const Tensor count_t = m.counts ? d.upload_i32(counts) : Tensor{};
            d.backend.moe_route(d.activation(logits, m.n_expert, m.tokens), m.k, r, ids, weights, count_t);
            return Outputs{{"ids", d.download(ids), kExact},
                           {"weights", d.download(weights), kExpTolerance},
                           {"counts", m.counts ? d.download(count_t) : std::vector<float>{}, kExact}};
        });
        const HostRoute want = host_moe_route(logits, m.n_expert, m.k, r, counts);
        check_contract(c, ref, {want.ids, want.weights, want.counts});
    }
}

struct MoeFfnCase {
    GgmlType type;
    int64_t n_embd, n_ff, tokens;
    bool strided;
};
const MoeFfnCase kMoeFfnCases[] = {
    {GgmlType::F32, 67, 45, 5, false},      // odd widths
    {GgmlType::Q8_0, 288, 96, 1, true},     // decode on column views
    {GgmlType::Q4_0, 288, 160, 33, false},  // a prompt: many tokens per expert
    {GgmlType::Q4_K, 256, 512, 9, true},    // K-quants
    {GgmlType::Q6_K, 512, 256, 3, false},
};

TEST_CASE("backend_ops: moe_ffn against the unfused matmul, swiglu, weighted sum") {
    constexpr int kExperts = 6, kChosen = 2;  // expert 5 is chosen by no token
    for (const MoeFfnCase& m : kMoeFfnCases) {
        const int64_t e = m.n_embd, f = m.n_ff, n = m.tokens;
        const Case c{str("moe_ffn ", type_name(m.type)),
                     str(kExperts, " experts [", e, ", ", f, "] top ", kChosen, " x ", n, " tokens"), m.strided};
        std::mt19937 rng = c.rng();
        const std::vector<float> h = normal(e * n, rng), weights = uniform(kChosen * n, rng, 0.1f, 1.0f);
        const std::vector<float> gate = normal(e * f * kExperts, rng, 1 / std::sqrt(float(e))),
                                 up = normal(e * f * kExperts, rng, 1 / std::sqrt(float(e))),
                                 down = normal(f * e * kExperts, rng, 1 / std::sqrt(float(f)));
        std::vector<int32_t> ids;
        for (int64_t t = 0; t < n; ++t) {
            std::vector<int32_t> experts = consecutive(kExperts - 1, 0);
            std::shuffle(experts.begin(), experts.end(), rng);
            ids.insert(ids.end(), experts.begin(), experts.begin() + kChosen);
        }
        const auto upload_experts = [&](Device& d) {
            return std::array<Tensor, 3>{d.upload(m.type, gate, {e, f, kExperts}),
                                         d.upload(m.type, up, {e, f, kExperts}),
                                         d.upload(m.type, down, {f, e, kExperts})};
        };
        const Outputs ref = run_case(c, [&](Device& d) {
            const auto [g, u, dn] = upload_experts(d);
            const Tensor out = d.output(e, n);
            d.backend.moe_ffn(d.activation(h, e, n), g, u, dn, d.upload_i32(ids, kChosen),
                              d.upload(GgmlType::F32, weights, {kChosen, n}), out);
            return Outputs{{"out", d.download(out), moe_ffn_tolerance(m.type)}};
        });
        // The unfused composition on the reference: per token and chosen expert, the gate and up
        // projections, swiglu, the down projection, summed on the host with the routing weights.
        Device d(*backends().reference, false);
        const auto [g, u, dn] = upload_experts(d);
        const Tensor ht = d.upload(GgmlType::F32, h, {e, n});
        std::vector<float> want(static_cast<size_t>(e * n), 0.0f);
        for (int64_t t = 0; t < n; ++t) {
            for (int j = 0; j < kChosen; ++j) {
                const int32_t x = ids[t * kChosen + j];
                const Tensor gt = d.output(f, 1), ut = d.output(f, 1), yt = d.output(e, 1);
                d.backend.matmul(g.matrix(x), ht.rows(t, t + 1), gt);
                d.backend.matmul(u.matrix(x), ht.rows(t, t + 1), ut);
                d.backend.swiglu(gt, ut, gt);
                d.backend.matmul(dn.matrix(x), gt, yt);
                const std::vector<float> y = d.download(yt);
                for (int64_t i = 0; i < e; ++i) want[t * e + i] += weights[t * kChosen + j] * y[i];
            }
        }
        check_contract(c, ref, {want});
    }
}

// ---- State-space ops: ssm_conv, ssm_scan, rmsnorm_gated -----------------------------------------

struct SsmConvCase {
    int64_t channels, tokens;
    bool bias;
    int64_t depth, count;  // the snapshot ring's slots and how many states it records
    bool strided;
};
const SsmConvCase kSsmConvCases[] = {
    {67, 1, true, 4, 1, false},   // decode, one snapshot
    {67, 33, false, 4, 4, true},  // a prompt's last 4 states; x a column view (Mamba's xBC)
    {160, 70, true, 8, 8, false},
    {64, 2, true, 0, 0, true},  // fewer tokens than the state's rows, no ring
};

// `strided_outputs`: the outputs too are column views when the case is strided (the contract
// allows it; the CPU backend does not: see the column-view test case at the end).
void check_ssm_conv(const SsmConvCase& s, bool strided_outputs) {
    constexpr int64_t kDConv = 4;
    const int64_t ch = s.channels, n = s.tokens, state_size = ch * (kDConv - 1);
    const Case c{"ssm_conv f32",
                 str(ch, " channels d_conv ", kDConv, " x ", n, " tokens", s.bias ? " bias" : "", " ring ", s.count,
                     "/", s.depth, s.strided ? (strided_outputs ? " inputs and outputs" : " inputs") : ""),
                 s.strided};
    std::mt19937 rng = c.rng();
    const std::vector<float> x = normal(ch * n, rng), weight = normal(kDConv * ch, rng, 0.5f), bias = normal(ch, rng),
                             state = normal(state_size, rng), ring = normal(state_size * s.depth, rng);
    const std::vector<int32_t> pos = consecutive(n, std::uniform_int_distribution<int>(5, 200)(rng));
    const Outputs ref = run_case(c, [&](Device& d) {
        const Tensor state_t = d.upload(GgmlType::F32, state, {ch, kDConv - 1}), out = d.output(ch, n, strided_outputs);
        const SnapshotRing snaps{s.depth ? d.upload(GgmlType::F32, ring, {state_size, s.depth}) : Tensor{}, s.count};
        d.backend.ssm_conv(d.activation(x, ch, n), d.upload(GgmlType::F32, weight, {kDConv, ch}),
                           s.bias ? d.upload(GgmlType::F32, bias, {ch}) : Tensor{}, state_t, out, d.upload_i32(pos),
                           snaps);
        return Outputs{{"out", d.download(out), kExpTolerance},
                       {"state", d.download(state_t), kExact},
                       {"ring", s.depth ? d.download(snaps.ring) : std::vector<float>{}, kExact}};
    });
    const HostRecurrent want =
        host_ssm_conv(x, ch, weight, kDConv, s.bias ? bias : std::vector<float>{}, state, pos, ring, s.depth, s.count);
    check_contract(c, ref, {want.out, want.state, want.ring});
}

TEST_CASE("backend_ops: ssm_conv with and without bias, its state and snapshots") {
    for (const SsmConvCase& s : kSsmConvCases) {
        for (bool strided : {false, true}) check_ssm_conv(s, strided);
    }
}

struct SsmScanCase {
    const char* model;
    SsmScanParams p;
    int64_t tokens, depth, count;
    bool strided;
};
const SsmScanCase kSsmScanCases[] = {
    {"mamba1", {48, 1, 16, 1, true}, 1, 4, 1, false},    // decode
    {"mamba1", {48, 1, 16, 1, true}, 70, 4, 4, true},    // a prompt; x, B, C column views (x_proj's output)
    {"mamba2", {8, 16, 32, 2, false}, 1, 4, 1, true},    // decode, two groups
    {"mamba2", {8, 16, 32, 2, false}, 70, 6, 6, false},  // the chunked path: a 64-token chunk and a remainder
    {"mamba2", {4, 8, 16, 4, false}, 9, 0, 0, true},     // a group per head, a short batch, no ring
    {"mamba2", {8, 16, 32, 1, false}, 130, 4, 3, true},  // two chunks and a remainder, fewer states than slots
    {"mamba2", {4, 8, 128, 1, false}, 5, 4, 2, false},   // Mamba-2's d_state 128: several states per GPU lane
};

void check_ssm_scan(const SsmScanCase& s, bool strided_outputs) {
    const SsmScanParams& p = s.p;
    const int64_t n = s.tokens, width = p.n_head * p.head_dim, bc_width = p.n_group * p.d_state;
    const int64_t state_size = width * p.d_state;
    const Case c{str("ssm_scan ", s.model),
                 str(p.n_head, " heads of ", p.head_dim, " d_state ", p.d_state, " groups ", p.n_group, " x ", n,
                     " tokens ring ", s.count, "/", s.depth,
                     s.strided ? (strided_outputs ? " inputs and outputs" : " inputs") : ""),
                 s.strided};
    std::mt19937 rng = c.rng();
    const std::vector<float> x = normal(width * n, rng), B = normal(bc_width * n, rng), C = normal(bc_width * n, rng),
                             D = normal(p.n_head, rng), state = normal(state_size, rng),
                             ring = normal(state_size * s.depth, rng);
    // Δ = softplus(dt) mostly in (0.1, 2); A as the models initialize it: Mamba-1's S4D-real
    // −(s + 1) per state, Mamba-2's −exp(U(0, ln 16)) per head.
    std::vector<float> dt = normal(p.n_head * n, rng), A;
    for (float& v : dt) v -= 0.5f;
    if (p.a_per_state) {
        for (int64_t i = 0; i < p.n_head * p.d_state; ++i) {
            A.push_back(-static_cast<float>(i % p.d_state + 1) * std::exp(0.1f * normal(1, rng)[0]));
        }
    } else {
        for (const float u : uniform(p.n_head, rng, 0.0f, std::log(16.0f))) A.push_back(-std::exp(u));
    }
    const std::vector<int32_t> pos = consecutive(n, std::uniform_int_distribution<int>(5, 200)(rng));
    const Outputs ref = run_case(c, [&](Device& d) {
        const Tensor state_t = d.upload(GgmlType::F32, state, {state_size}), y = d.output(width, n, strided_outputs);
        const SnapshotRing snaps{s.depth ? d.upload(GgmlType::F32, ring, {state_size, s.depth}) : Tensor{}, s.count};
        const Tensor At =
            p.a_per_state ? d.upload(GgmlType::F32, A, {p.d_state, p.n_head}) : d.upload(GgmlType::F32, A, {p.n_head});
        d.backend.ssm_scan(d.activation(x, width, n), d.activation(dt, p.n_head, n), At, d.activation(B, bc_width, n),
                           d.activation(C, bc_width, n), d.upload(GgmlType::F32, D, {p.n_head}), p, state_t, y,
                           d.upload_i32(pos), snaps);
        return Outputs{{"y", d.download(y), kScanTolerance},
                       {"state", d.download(state_t), kScanTolerance},
                       {"ring", s.depth ? d.download(snaps.ring) : std::vector<float>{}, kScanTolerance}};
    });
    const HostRecurrent want = host_ssm_scan(x, dt, A, B, C, D, p, state, pos, ring, s.depth, s.count);
    check_contract(c, ref, {want.out, want.state, want.ring});
}

TEST_CASE("backend_ops: ssm_scan, Mamba-1 and Mamba-2, one token and chunked batches, snapshots") {
    for (const SsmScanCase& s : kSsmScanCases) {
        for (bool strided : {false, true}) check_ssm_scan(s, strided);
    }
}

struct GatedNormCase {
    int64_t width, n_group, tokens;
    bool out_aliases_y, strided;
};
// out = y only on packed rows: a strided y would make out a column view (the last test case).
const GatedNormCase kGatedNormCases[] = {
    {128, 1, 1, false, false}, {128, 4, 33, true, false}, {96, 3, 70, false, true}, {256, 8, 2, true, false}};

void check_rmsnorm_gated(const GatedNormCase& g, bool strided_outputs) {
    constexpr float kEps = 1e-5f;
    const Case c{"rmsnorm_gated f32",
                 str("[", g.width, ", ", g.tokens, "] groups ", g.n_group, g.out_aliases_y ? " out=y" : "",
                     g.strided ? (strided_outputs ? " inputs and outputs" : " inputs") : ""),
                 g.strided};
    std::mt19937 rng = c.rng();
    const std::vector<float> y = normal(g.width * g.tokens, rng), z = normal(g.width * g.tokens, rng, 2.0f),
                             weight = normal(g.width, rng);
    const Outputs ref = run_case(c, [&](Device& d) {
        const Tensor yt = d.activation(y, g.width, g.tokens);
        const Tensor out = g.out_aliases_y ? yt : d.output(g.width, g.tokens, strided_outputs);
        d.backend.rmsnorm_gated(yt, d.activation(z, g.width, g.tokens), d.upload(GgmlType::F32, weight, {g.width}),
                                g.n_group, kEps, out);
        return Outputs{{"out", d.download(out), kRmsNormTolerance}};
    });
    std::vector<float> v(y.size());
    for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(y[i] * silu(z[i]));
    check_contract(c, ref, {host_rmsnorm(v, weight, g.width, g.width / g.n_group, kEps)});
}

TEST_CASE("backend_ops: rmsnorm_gated, one group and several") {
    for (const GatedNormCase& g : kGatedNormCases) {
        for (bool strided : {false, true}) check_rmsnorm_gated(g, strided);
    }
}

// Last in the file, so last to run: what each backend under test left out.
TEST_CASE("backend_ops: summary of the ops each backend does not implement") {
    for (const std::unique_ptr<Backend>& b : backends().tested) {
        const std::set<std::string>& ops = backends().not_implemented[b->name()];
        std::string list;
        for (const std::string& op : ops) list += (list.empty() ? "" : ", ") + op;
        if (ops.empty()) {
            MESSAGE("backend_ops: ", std::string(b->name()), " implements every op");
        } else {
            MESSAGE("backend_ops: ", std::string(b->name()), " does not implement ", ops.size(), " ops: ", list);
        }
    }
}

}  // namespace
