// The CUDA backend's host side: device memory, host ↔ device copies, and the ops that dispatch
// to the kernels of cuda/ on the backend's one stream. Everything is queued on that stream in
// call order, so ops need no synchronization between them; only read() and synchronize() wait.
// Every op has a kernel; a type or shape a kernel does not cover throws NotImplemented naming it.
#include "backend/cuda/cuda_backend.h"

#include <cuda_runtime_api.h>

#include <cmath>
#include <string>

#include "backend/backend.h"
#include "backend/cuda/cuda_check.h"
#include "kernels.h"

namespace strata {
namespace {

// One cudaMalloc'd allocation, freed with the buffer.
class CudaBuffer final : public BackendBuffer {
public:
    using BackendBuffer::BackendBuffer;
    // Unchecked: a destructor must not throw, and a failed free has no caller left to tell.
    ~CudaBuffer() override { cudaFree(base()); }
};

[[noreturn]] void not_implemented(const std::string& what) {
    throw NotImplemented("cuda backend: " + what + " is not implemented yet");
}

class CudaBackend final : public Backend {
public:
    // The device is made current here, once: strata drives one device per process so far (two
    // backends on two devices from one thread would need a cudaSetDevice per call).
    explicit CudaBackend(int device) {
        STRATA_CUDA_CHECK(cudaSetDevice(device));
        // Non-blocking: the stream does not wait for, or hold up, work on the legacy default stream.
        STRATA_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    }
    ~CudaBackend() override {
        // Unchecked: queued work finishes before the stream goes; nothing can be thrown from here.
        cudaStreamSynchronize(stream_);
        cudaStreamDestroy(stream_);
    }

    const char* name() const override { return "cuda"; }
    int n_threads() const override { return 1; }

    // ---- Memory ------------------------------------------------------------------------------
    std::unique_ptr<BackendBuffer> alloc(size_t bytes) override {
        void* p = nullptr;
        // At least one byte, so even an empty buffer has an address (a null data means "absent").
        STRATA_CUDA_CHECK(cudaMalloc(&p, bytes ? bytes : 1));
        return std::make_unique<CudaBuffer>(*this, p, bytes);
    }

    Tensor load_weight(const TensorView& host, WeightBuffers& keep) override {
        std::unique_ptr<BackendBuffer> buf = alloc(host.nbytes);
        Tensor t = make_tensor(host.type, {host.ne[0], host.ne[1], host.ne[2], host.ne[3]}, buf->base(), buf.get());
        t.name = host.name;
        if (t.nbytes() != host.nbytes) {
            fail("tensor '", host.name, "': ", host.nbytes, " bytes in the file, ", t.nbytes(), " for its shape");
        }
        upload(t.data, host.data, host.nbytes);
        keep.push_back(std::move(buf));
        return t;
    }

    void write(const Tensor& dst, const void* src, size_t bytes) override {
        check_span(dst, bytes, "write");
        upload(dst.data, src, bytes);
    }

    void read(const Tensor& src, void* dst, size_t bytes) override {
        check_span(src, bytes, "read");
        STRATA_CUDA_CHECK(cudaMemcpyAsync(dst, src.data, bytes, cudaMemcpyDeviceToHost, stream_));
        STRATA_CUDA_CHECK(cudaStreamSynchronize(stream_));
    }

    void copy(const Tensor& dst, const Tensor& src) override {
        check_span(dst, dst.nbytes(), "copy");
        check_span(src, src.nbytes(), "copy");
        if (dst.nbytes() != src.nbytes()) {
            fail("cuda backend: copy of ", src.nbytes(), " bytes ('", src.name, "') into ", dst.nbytes(), " ('",
                 dst.name, "')");
        }
        STRATA_CUDA_CHECK(cudaMemcpyAsync(dst.data, src.data, src.nbytes(), cudaMemcpyDeviceToDevice, stream_));
    }

    void fill_zero(const Tensor& t) override {
        check_device(t, "fill_zero");
        if (t.is_contiguous()) {
            STRATA_CUDA_CHECK(cudaMemsetAsync(t.data, 0, t.nbytes(), stream_));
        } else if (t.ne[2] == 1 && t.ne[3] == 1) {  // a column view: pitched rows
            STRATA_CUDA_CHECK(
                cudaMemset2DAsync(t.data, t.nb[1], 0, t.row_bytes(), static_cast<size_t>(t.ne[1]), stream_));
        } else {
            fail("cuda backend: fill_zero of a strided tensor of more than 2 dimensions ('", t.name, "')");
        }
    }

    void synchronize() override { STRATA_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

    // ---- Dense ops ---------------------------------------------------------------------------
    void matmul(const Tensor& w, const Tensor& x, const Tensor& y) override {
        if (!cuda_weight_type_supported(w.type)) {
            not_implemented(std::string("matmul on ") + type_name(w.type) + " weights");
        }
        check_matrix(w, w.type, "matmul");
        check_matrix(x, GgmlType::F32, "matmul");
        check_matrix(y, GgmlType::F32, "matmul");
        const int64_t cols = w.ne[0], rows = w.ne[1], n = x.ne[1];
        if (x.ne[0] != cols || y.ne[0] != rows || y.ne[1] != n) {
            fail("cuda backend: matmul of '", w.name, "' [", cols, ", ", rows, "] with x [", x.ne[0], ", ", n,
                 "] into y [", y.ne[0], ", ", y.ne[1], "]");
        }
        launch_matmul(w.type, w.data, w.nb[1], f32(x), x.nb[1], cols, rows, n, f32(y), y.nb[1], stream_);
    }

    void get_rows(const Tensor& table, const Tensor& ids, const Tensor& out) override {
        if (!cuda_weight_type_supported(table.type)) {
            not_implemented(std::string("get_rows on ") + type_name(table.type) + " tables");
        }
        check_matrix(table, table.type, "get_rows");
        check_matrix(ids, GgmlType::I32, "get_rows");
        check_matrix(out, GgmlType::F32, "get_rows");
        if (ids.ne[1] != 1 || out.ne[0] != table.ne[0] || out.ne[1] != ids.ne[0]) {
            fail("cuda backend: get_rows of ", ids.ne[0], " ids from '", table.name, "' [", table.ne[0], ", ",
                 table.ne[1], "] into out [", out.ne[0], ", ", out.ne[1], "]");
        }
        launch_get_rows(table.type, table.data, table.nb[1], table.ne[1], static_cast<const int32_t*>(ids.data),
                        ids.ne[0], table.ne[0], f32(out), out.nb[1], stream_);
    }

    void rmsnorm(const Tensor& x, const Tensor& weight, float eps, const Tensor& out) override {
        check_matrix(x, GgmlType::F32, "rmsnorm");
        check_matrix(out, GgmlType::F32, "rmsnorm");
        if (!weight.empty()) check_matrix(weight, GgmlType::F32, "rmsnorm");
        if (out.ne[0] != x.ne[0] || out.ne[1] != x.ne[1] || (!weight.empty() && weight.n_elements() != x.ne[0])) {
            fail("cuda backend: rmsnorm of x [", x.ne[0], ", ", x.ne[1], "] into out [", out.ne[0], ", ", out.ne[1],
                 "] with a weight of ", weight.empty() ? 0 : weight.n_elements(), " elements");
        }
        launch_rmsnorm(f32(x), x.nb[1], weight.empty() ? nullptr : f32(weight), x.ne[0], x.ne[1], eps, f32(out),
                       out.nb[1], stream_);
    }

    void add(const Tensor& x, const Tensor& y) override {
        check_matrix(x, GgmlType::F32, "add");
        check_matrix(y, GgmlType::F32, "add");
        if (x.ne[0] != y.ne[0] || x.ne[1] != y.ne[1]) {
            fail("cuda backend: add of y [", y.ne[0], ", ", y.ne[1], "] to x [", x.ne[0], ", ", x.ne[1], "]");
        }
        launch_add(f32(x), x.nb[1], f32(y), y.nb[1], x.ne[0], x.ne[1], stream_);
    }

    // ---- Mixture of experts ------------------------------------------------------------------
    // The expert ids stay on the device: the kernels pick each pair's expert matrix themselves.
    // The gate/up activations of every (token, choice) pair go to scratch from the stream-ordered
    // allocator: no synchronization, and freed in stream order once the down projection has run.
    void moe_ffn(const Tensor& h, const Tensor& gate_exps, const Tensor& up_exps, const Tensor& down_exps,
                 const Tensor& ids, const Tensor& weights, const Tensor& out) override {
        for (const Tensor* w : {&gate_exps, &up_exps, &down_exps}) {
            if (!cuda_weight_type_supported(w->type)) {
                not_implemented(std::string("moe_ffn on ") + type_name(w->type) + " experts");
            }
        }
        check_matrix(h, GgmlType::F32, "moe_ffn");
        check_matrix(ids, GgmlType::I32, "moe_ffn");
        check_matrix(weights, GgmlType::F32, "moe_ffn");
        check_matrix(out, GgmlType::F32, "moe_ffn");
        const auto experts = [&](const Tensor& t) {
            check_device(t, "moe_ffn");
            if (t.ne[3] != 1) fail("cuda backend: moe_ffn: expert tensor '", t.name, "' has ", t.ne[3], " stacks");
            return MoeExperts{t.type, t.data, t.nb[1], t.nb[2], t.ne[0], t.ne[1], t.ne[2]};
        };
        const MoeExperts gate = experts(gate_exps), up = experts(up_exps), down = experts(down_exps);
        const int64_t n_embd = h.ne[0], n = h.ne[1], k = ids.ne[0], n_ff = gate.n_rows, n_expert = gate.n_expert;
        if (gate.n_cols != n_embd || up.n_cols != n_embd || up.n_rows != n_ff || down.n_cols != n_ff ||
            down.n_rows != n_embd || up.n_expert != n_expert || down.n_expert != n_expert || k < 1 || k > n_expert ||
            ids.ne[1] != n || weights.ne[0] != k || weights.ne[1] != n || out.ne[0] != n_embd || out.ne[1] != n) {
            fail("cuda backend: moe_ffn of h [", n_embd, ", ", n, "] with ids [", k, ", ", ids.ne[1], "], weights [",
                 weights.ne[0], ", ", weights.ne[1], "], experts gate [", gate.n_cols, ", ", n_ff, ", ", n_expert,
                 "], up [", up.n_cols, ", ", up.n_rows, ", ", up.n_expert, "], down [", down.n_cols, ", ",
                 down.n_rows, ", ", down.n_expert, "] into out [", out.ne[0], ", ", out.ne[1], "]");
        }
        if (n == 0) return;
        const size_t act_bytes = static_cast<size_t>(n_ff * n * k) * sizeof(float);
        void* act = nullptr;
        STRATA_CUDA_CHECK(cudaMallocAsync(&act, act_bytes ? act_bytes : 1, stream_));
        // Freed unchecked only if a launch throws (a destructor must not throw); checked below.
        const auto free_async = [stream = stream_](void* p) { cudaFreeAsync(p, stream); };
        std::unique_ptr<void, decltype(free_async)> act_guard(act, free_async);
        launch_moe_ffn(f32(h), h.nb[1], n, gate, up, down, static_cast<const int32_t*>(ids.data), ids.nb[1],
                       static_cast<int>(k), f32(weights), weights.nb[1], static_cast<float*>(act), f32(out), out.nb[1],
                       stream_);
        STRATA_CUDA_CHECK(cudaFreeAsync(act_guard.release(), stream_));
    }

    // ---- Row-wise ops: rope, swiglu, add_bias, add_gated ---------------------------------------
    void rope(const Tensor& x, int n_heads, const Tensor& positions, const RopeParams& p) override {
        check_matrix(x, GgmlType::F32, "rope");
        check_positions(positions, x.ne[1], "rope");
        if (n_heads <= 0 || x.ne[0] % n_heads != 0 || p.n_rot < 0 || p.n_rot % 2 != 0 || p.n_rot > x.ne[0] / n_heads) {
            fail("cuda backend: rope of x [", x.ne[0], ", ", x.ne[1], "] as ", n_heads, " heads with n_rot ", p.n_rot);
        }
        const int half = p.n_rot / 2;
        if (half > kMaxRopePairs) {
            not_implemented("rope of " + std::to_string(p.n_rot) + " dimensions (at most " +
                            std::to_string(2 * kMaxRopePairs) + ")");
        }
        const float* factors = nullptr;
        if (!p.freq_factors.empty()) {
            check_matrix(p.freq_factors, GgmlType::F32, "rope");
            if (!p.freq_factors.is_contiguous() || p.freq_factors.n_elements() < half) {
                fail("cuda backend: rope: ", p.freq_factors.n_elements(), " frequency factors for ", half, " pairs");
            }
            factors = f32(p.freq_factors);
        }
        // The CPU's expression, on the host's std::pow, so both backends rotate by the same θ_i.
        RopeFreqs freqs{};
        for (int i = 0; i < half; ++i) {
            freqs.inv_freq[i] = std::pow(p.freq_base, -2.0f * static_cast<float>(i) / static_cast<float>(p.n_rot));
        }
        launch_rope(f32(x), x.nb[1], x.ne[1], n_heads, x.ne[0] / n_heads, p.n_rot, p.neox, i32(positions), p.freq_scale,
                    freqs, factors, stream_);
    }

    void swiglu(const Tensor& gate, const Tensor& up, const Tensor& out) override {
        check_matrix(gate, GgmlType::F32, "swiglu");
        check_matrix(up, GgmlType::F32, "swiglu");
        check_matrix(out, GgmlType::F32, "swiglu");
        if (!same_shape(gate, up) || !same_shape(gate, out)) {
            fail("cuda backend: swiglu of gate [", gate.ne[0], ", ", gate.ne[1], "] and up [", up.ne[0], ", ", up.ne[1],
                 "] into out [", out.ne[0], ", ", out.ne[1], "]");
        }
        launch_swiglu(f32(gate), gate.nb[1], f32(up), up.nb[1], f32(out), out.nb[1], gate.ne[0], gate.ne[1], stream_);
    }

    void add_bias(const Tensor& x, const Tensor& bias) override {
        check_matrix(x, GgmlType::F32, "add_bias");
        check_matrix(bias, GgmlType::F32, "add_bias");
        if (!bias.is_contiguous() || bias.n_elements() != x.ne[0]) {
            fail("cuda backend: add_bias of '", bias.name, "' (", bias.n_elements(), " elements) to x [", x.ne[0], ", ",
                 x.ne[1], "]");
        }
        launch_add_bias(f32(x), x.nb[1], f32(bias), x.ne[0], x.ne[1], stream_);
    }

    void add_gated(const Tensor& x, const Tensor& y, const Tensor& gate) override {
        check_matrix(x, GgmlType::F32, "add_gated");
        check_matrix(y, GgmlType::F32, "add_gated");
        check_matrix(gate, GgmlType::F32, "add_gated");
        if (!same_shape(x, y) || gate.ne[0] != 1 || gate.ne[1] != x.ne[1]) {
            fail("cuda backend: add_gated of y [", y.ne[0], ", ", y.ne[1], "] gated by [", gate.ne[0], ", ", gate.ne[1],
                 "] to x [", x.ne[0], ", ", x.ne[1], "]");
        }
        launch_add_gated(f32(x), x.nb[1], f32(y), y.nb[1], f32(gate), gate.nb[1], x.ne[0], x.ne[1], stream_);
    }

    // ---- Attention ---------------------------------------------------------------------------
    // Positions stay on the device: a row whose position lies outside its cache is not written
    // by kv_write and gets NaN from attention (the host cannot check without a synchronization).
    void kv_write(std::span<const KvCache> caches, const Tensor& k, const Tensor& v, const Tensor& positions) override {
        check_matrix(k, GgmlType::F32, "kv_write");
        check_matrix(v, GgmlType::F32, "kv_write");
        const int64_t n = k.ne[1];
        if (v.ne[1] != n) fail("cuda backend: kv_write of ", n, " key rows and ", v.ne[1], " value rows");
        check_positions(positions, n, "kv_write");
        const CacheTypes types = check_caches(caches, n, k.ne[0], v.ne[0], "kv_write");
        for_cache_launches(caches, n, [&](int64_t t0, int64_t rows, const KvCacheRows& kc, const KvCacheRows& vc) {
            launch_kv_write(types.k, kc, row_f32(k, t0), k.nb[1], k.ne[0], rows, i32(positions) + t0, stream_);
            launch_kv_write(types.v, vc, row_f32(v, t0), v.nb[1], v.ne[0], rows, i32(positions) + t0, stream_);
        });
    }

    void attention(const Tensor& q, std::span<const KvCache> caches, const Tensor& positions, const AttentionParams& p,
                   const Tensor& out) override {
        check_matrix(q, GgmlType::F32, "attention");
        check_matrix(out, GgmlType::F32, "attention");
        const int64_t n = q.ne[1];
        if (p.n_head <= 0 || p.n_head_kv <= 0 || p.n_head % p.n_head_kv != 0 || p.head_dim_k <= 0 ||
            p.head_dim_v <= 0 || q.ne[0] != int64_t{p.n_head} * p.head_dim_k ||
            out.ne[0] != int64_t{p.n_head} * p.head_dim_v || out.ne[1] != n) {
            fail("cuda backend: attention of q [", q.ne[0], ", ", n, "] into out [", out.ne[0], ", ", out.ne[1], "] with ",
                 p.n_head, "/", p.n_head_kv, " heads of ", p.head_dim_k, "/", p.head_dim_v);
        }
        if (p.head_dim_k > kMaxAttentionHeadDim || p.head_dim_v > kMaxAttentionHeadDim) {
            not_implemented("attention with heads of " + std::to_string(p.head_dim_k) + "/" +
                            std::to_string(p.head_dim_v) + " (at most " + std::to_string(kMaxAttentionHeadDim) + ")");
        }
        if (n * p.n_head > kMaxGridX) fail("cuda backend: attention of ", n, " rows × ", p.n_head, " heads");
        check_positions(positions, n, "attention");
        const CacheTypes types = check_caches(caches, n, int64_t{p.n_head_kv} * p.head_dim_k,
                                              int64_t{p.n_head_kv} * p.head_dim_v, "attention");
        // A Q8_0 head must be whole blocks for the kernel's per-head addressing.
        if ((types.k == CacheType::Q8_0 && p.head_dim_k % 32 != 0) ||
            (types.v == CacheType::Q8_0 && p.head_dim_v % 32 != 0)) {
            fail("cuda backend: attention: heads of ", p.head_dim_k, "/", p.head_dim_v,
                 " in a Q8_0 cache (multiples of 32 needed)");
        }
        const AttentionShape shape{p.n_head, p.n_head_kv, p.head_dim_k, p.head_dim_v, p.scale};
        for_cache_launches(caches, n, [&](int64_t t0, int64_t rows, const KvCacheRows& kc, const KvCacheRows& vc) {
            launch_attention(types.k, types.v, kc, vc, row_f32(q, t0), q.nb[1], rows, shape, i32(positions) + t0,
                             row_f32(out, t0), out.nb[1], stream_);
        });
    }

    // ---- Mixture of experts ------------------------------------------------------------------
    void moe_route(const Tensor& logits, int k, const MoeRouting& routing, const Tensor& ids, const Tensor& weights,
                   const Tensor& counts) override {
        check_matrix(logits, GgmlType::F32, "moe_route");
        check_matrix(ids, GgmlType::I32, "moe_route");
        check_matrix(weights, GgmlType::F32, "moe_route");
        const int64_t n_expert = logits.ne[0], n = logits.ne[1];
        if (k < 1 || k > n_expert) fail("cuda backend: moe_route: ", k, " experts per token of ", n_expert);
        if (n_expert > kMaxMoeExperts) {
            not_implemented("moe_route over " + std::to_string(n_expert) + " experts (at most " +
                            std::to_string(kMaxMoeExperts) + ")");
        }
        if (ids.ne[0] != k || ids.ne[1] != n || weights.ne[0] != k || weights.ne[1] != n) {
            fail("cuda backend: moe_route of ", n, " tokens top ", k, " into ids [", ids.ne[0], ", ", ids.ne[1],
                 "] and weights [", weights.ne[0], ", ", weights.ne[1], "]");
        }
        int32_t* count_data = nullptr;
        if (!counts.empty()) {
            check_matrix(counts, GgmlType::I32, "moe_route");
            if (!counts.is_contiguous() || counts.n_elements() != n_expert) {
                fail("cuda backend: moe_route: counts of ", counts.n_elements(), " experts, expected ", n_expert);
            }
            count_data = static_cast<int32_t*>(counts.data);
        }
        const MoeRouteArgs args{routing.gating == ExpertGating::Sigmoid, routing.normalize_top_k, routing.weights_scale};
        launch_moe_route(f32(logits), logits.nb[1], static_cast<int>(n_expert), n, k, args,
                         static_cast<int32_t*>(ids.data), ids.nb[1], f32(weights), weights.nb[1], count_data, stream_);
    }

    // ---- State-space (Mamba) ops -------------------------------------------------------------
    void ssm_conv(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& conv_state,
                  const Tensor& out, const Tensor& positions, const SnapshotRing& snapshots) override {
        check_matrix(x, GgmlType::F32, "ssm_conv");
        check_matrix(weight, GgmlType::F32, "ssm_conv");
        check_matrix(conv_state, GgmlType::F32, "ssm_conv");
        check_matrix(out, GgmlType::F32, "ssm_conv");
        if (!bias.empty()) check_matrix(bias, GgmlType::F32, "ssm_conv");
        const int64_t channels = x.ne[0], n = x.ne[1], d_conv = weight.ne[0];
        if (d_conv < 2 || d_conv > 1024 || weight.ne[1] != channels || !weight.is_contiguous() ||
            !conv_state.is_contiguous() || conv_state.n_elements() != channels * (d_conv - 1) ||
            !same_shape(out, x) || (!bias.empty() && (!bias.is_contiguous() || bias.n_elements() != channels))) {
            fail("cuda backend: ssm_conv of x [", channels, ", ", n, "] with weight [", weight.ne[0], ", ", weight.ne[1],
                 "], a state of ", conv_state.n_elements(), " elements, out [", out.ne[0], ", ", out.ne[1], "]");
        }
        // Tokens run in parallel and read x and the old state, so out must be separate memory.
        if (overlap(out, x) || overlap(out, conv_state)) fail("cuda backend: ssm_conv: out overlaps x or the state");
        const SsmSnapshots snaps = snapshot_args(snapshots, positions, n, conv_state.n_elements(), "ssm_conv");
        launch_ssm_conv(f32(x), x.nb[1], f32(weight), bias.empty() ? nullptr : f32(bias), f32(conv_state), channels,
                        static_cast<int>(d_conv), n, f32(out), out.nb[1], snaps, stream_);
    }

    void ssm_scan(const Tensor& x, const Tensor& dt, const Tensor& A, const Tensor& B, const Tensor& C, const Tensor& D,
                  const SsmScanParams& p, const Tensor& state, const Tensor& y, const Tensor& positions,
                  const SnapshotRing& snapshots) override {
        for (const Tensor* t : {&x, &dt, &A, &B, &C, &D, &state, &y}) check_matrix(*t, GgmlType::F32, "ssm_scan");
        const int64_t n = x.ne[1], width = p.n_head * p.head_dim, bc_width = p.n_group * p.d_state;
        if (p.n_head < 1 || p.head_dim < 1 || p.d_state < 1 || p.n_group < 1 || p.n_head % p.n_group != 0 ||
            x.ne[0] != width || !same_shape(y, x) || dt.ne[0] != p.n_head || dt.ne[1] != n || B.ne[0] != bc_width ||
            B.ne[1] != n || !same_shape(C, B) || !A.is_contiguous() ||
            A.n_elements() != (p.a_per_state ? p.n_head * p.d_state : p.n_head) || !D.is_contiguous() ||
            D.n_elements() != p.n_head || !state.is_contiguous() || state.n_elements() != width * p.d_state) {
            fail("cuda backend: ssm_scan of x [", x.ne[0], ", ", n, "] as ", p.n_head, " heads of ", p.head_dim,
                 " d_state ", p.d_state, " groups ", p.n_group, " with dt [", dt.ne[0], ", ", dt.ne[1], "], B [",
                 B.ne[0], ", ", B.ne[1], "], C [", C.ne[0], ", ", C.ne[1], "], A of ", A.n_elements(), ", D of ",
                 D.n_elements(), ", a state of ", state.n_elements(), ", y [", y.ne[0], ", ", y.ne[1], "]");
        }
        if (p.d_state > kMaxSsmState) {
            not_implemented("ssm_scan with d_state " + std::to_string(p.d_state) + " (at most " +
                            std::to_string(kMaxSsmState) + ")");
        }
        if (width / 4 >= kMaxGridX) fail("cuda backend: ssm_scan of ", width, " state rows");
        const SsmSnapshots snaps = snapshot_args(snapshots, positions, n, state.n_elements(), "ssm_scan");
        const SsmScanArgs args{f32(x), x.nb[1], f32(dt), dt.nb[1], f32(A), f32(B), B.nb[1], f32(C), C.nb[1], f32(D),
                               f32(state), f32(y), y.nb[1], p.n_head, p.head_dim, p.d_state, p.n_group, n,
                               p.a_per_state};
        launch_ssm_scan(args, snaps, stream_);
    }

    void rmsnorm_gated(const Tensor& y, const Tensor& z, const Tensor& weight, int64_t n_group, float eps,
                       const Tensor& out) override {
        check_matrix(y, GgmlType::F32, "rmsnorm_gated");
        check_matrix(z, GgmlType::F32, "rmsnorm_gated");
        check_matrix(weight, GgmlType::F32, "rmsnorm_gated");
        check_matrix(out, GgmlType::F32, "rmsnorm_gated");
        if (!same_shape(z, y) || !same_shape(out, y) || !weight.is_contiguous() || weight.n_elements() != y.ne[0] ||
            n_group < 1 || y.ne[0] % n_group != 0) {
            fail("cuda backend: rmsnorm_gated of y [", y.ne[0], ", ", y.ne[1], "] in ", n_group, " groups with z [",
                 z.ne[0], ", ", z.ne[1], "], a weight of ", weight.n_elements(), ", out [", out.ne[0], ", ",
                 out.ne[1], "]");
        }
        if (y.ne[1] * n_group > kMaxGridX) fail("cuda backend: rmsnorm_gated of ", y.ne[1], " rows × ", n_group, " groups");
        launch_rmsnorm_gated(f32(y), y.nb[1], f32(z), z.nb[1], f32(weight), y.ne[0], y.ne[1], n_group, eps, f32(out),
                             out.nb[1], stream_);
    }

private:
    // ---- Helpers of rope … rmsnorm_gated ------------------------------------------------------
    // gridDim.x's limit, for kernels with one block per row (× head or group).
    static constexpr int64_t kMaxGridX = 2147483647;

    static bool same_shape(const Tensor& a, const Tensor& b) { return a.ne[0] == b.ne[0] && a.ne[1] == b.ne[1]; }
    // Whether the bytes a and b span share any (views of one buffer may).
    static bool overlap(const Tensor& a, const Tensor& b) {
        const char *a0 = static_cast<const char*>(a.data), *b0 = static_cast<const char*>(b.data);
        return a0 < b0 + b.nbytes() && b0 < a0 + a.nbytes();
    }
    static const int32_t* i32(const Tensor& t) { return static_cast<const int32_t*>(t.data); }
    // Row `row` of an F32 matrix (a launch over a batch's rows from `row` on).
    static float* row_f32(const Tensor& t, int64_t row) {
        return reinterpret_cast<float*>(static_cast<char*>(t.data) + row * static_cast<int64_t>(t.nb[1]));
    }

    // Positions: I32, one per row at least, on this device.
    void check_positions(const Tensor& positions, int64_t n_rows, const char* op) const {
        check_matrix(positions, GgmlType::I32, op);
        if (!positions.is_contiguous() || positions.n_elements() < n_rows) {
            fail("cuda backend: ", op, ": ", positions.n_elements(), " positions for ", n_rows, " rows");
        }
    }

    // The caches of kv_write and attention: one, or one per row; all on this device, 2-D, of the
    // first one's K and V types (F32, F16 or Q8_0) and of the rows' widths.
    struct CacheTypes {
        CacheType k, v;
    };
    static CacheType cache_type(const Tensor& t, const char* op) {
        switch (t.type) {
            case GgmlType::F32: return CacheType::F32;
            case GgmlType::F16: return CacheType::F16;
            case GgmlType::Q8_0:
                if (t.ne[0] % 32 != 0) fail("cuda backend: ", op, ": a Q8_0 cache row of ", t.ne[0], " elements");
                return CacheType::Q8_0;
            default: not_implemented(std::string(op) + " on " + type_name(t.type) + " caches");
        }
    }
    CacheTypes check_caches(std::span<const KvCache> caches, int64_t n_rows, int64_t k_width, int64_t v_width,
                            const char* op) const {
        if (caches.empty() || (caches.size() != 1 && static_cast<int64_t>(caches.size()) != n_rows)) {
            fail("cuda backend: ", op, ": ", caches.size(), " caches for ", n_rows, " rows (one, or one per row)");
        }
        for (const KvCache& c : caches) {
            check_matrix(c.k, caches[0].k.type, op);
            check_matrix(c.v, caches[0].v.type, op);
            if (c.k.ne[0] != k_width || c.v.ne[0] != v_width) {
                fail("cuda backend: ", op, ": caches of rows ", c.k.ne[0], "/", c.v.ne[0], ", expected ", k_width, "/",
                     v_width);
            }
        }
        return {cache_type(caches[0].k, op), cache_type(caches[0].v, op)};
    }
    // One side (K or V) of the caches as the kernels take them.
    static KvCacheRows cache_rows(std::span<const KvCache> caches, bool values) {
        KvCacheRows r{};
        r.count = static_cast<int>(caches.size());
        for (size_t i = 0; i < caches.size(); ++i) {
            const Tensor& t = values ? caches[i].v : caches[i].k;
            r.data[i] = static_cast<char*>(t.data);
            r.row_stride[i] = t.nb[1];
            r.n_ctx[i] = t.ne[1];
        }
        return r;
    }
    // Calls launch(first row, rows, K caches, V caches) once for one cache, else once per
    // kMaxKvCaches rows (the caches travel in the kernel parameters).
    template <class Launch>
    static void for_cache_launches(std::span<const KvCache> caches, int64_t n_rows, Launch launch) {
        if (caches.size() == 1) {
            launch(int64_t{0}, n_rows, cache_rows(caches, false), cache_rows(caches, true));
            return;
        }
        for (int64_t t0 = 0; t0 < n_rows; t0 += kMaxKvCaches) {
            const int64_t rows = n_rows - t0 < kMaxKvCaches ? n_rows - t0 : kMaxKvCaches;
            const std::span<const KvCache> chunk = caches.subspan(static_cast<size_t>(t0), static_cast<size_t>(rows));
            launch(t0, rows, cache_rows(chunk, false), cache_rows(chunk, true));
        }
    }

    // The ring of an SSM op, when it records anything: F32 rows of the state's size.
    SsmSnapshots snapshot_args(const SnapshotRing& s, const Tensor& positions, int64_t n_rows, int64_t state_size,
                               const char* op) const {
        if (s.count < 0) fail("cuda backend: ", op, ": a snapshot count of ", s.count);
        SsmSnapshots r{};
        r.count = s.count < n_rows ? s.count : n_rows;
        if (r.count == 0) return r;
        check_matrix(s.ring, GgmlType::F32, op);
        if (s.ring.ne[0] != state_size || s.ring.ne[1] < 1) {
            fail("cuda backend: ", op, ": a snapshot ring [", s.ring.ne[0], ", ", s.ring.ne[1], "] for a state of ",
                 state_size);
        }
        check_positions(positions, n_rows, op);
        r.ring = f32(s.ring);
        r.row_stride = s.ring.nb[1];
        r.depth = s.ring.ne[1];
        r.positions = i32(positions);
        return r;
    }

    // ---- Shared helpers --------------------------------------------------------------------------
    // Host → device copy that returns once `src` may be reused. cudaMemcpyAsync from pageable
    // memory returns after staging, but from pinned memory it returns at once, so the stream is
    // synchronized to be safe either way. write() is called at the host boundary (token ids and
    // positions before a forward, weights at load), where nothing is left in flight to overlap.
    void upload(void* dst, const void* src, size_t bytes) {
        if (bytes == 0) return;
        STRATA_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream_));
        STRATA_CUDA_CHECK(cudaStreamSynchronize(stream_));
    }

    // The checks that keep a kernel inside memory it may touch: the tensor lies in this
    // backend's device memory (a host pointer would fault the whole context), has the type the
    // kernel reads, and is 2-D (the kernels walk ne[0] × ne[1]).
    void check_device(const Tensor& t, const char* op) const {
        if (t.empty() || t.buffer == nullptr || &t.buffer->backend() != this) {
            fail("cuda backend: ", op, ": tensor '", t.name, "' is ",
                 t.empty() ? "empty" : "not in this backend's memory");
        }
    }
    void check_matrix(const Tensor& t, GgmlType type, const char* op) const {
        check_device(t, op);
        if (t.type != type) {
            fail("cuda backend: ", op, ": tensor '", t.name, "' is ", type_name(t.type), ", expected ",
                 type_name(type));
        }
        if (t.ne[2] != 1 || t.ne[3] != 1) {
            fail("cuda backend: ", op, ": tensor '", t.name, "' has ", t.ne[2] * t.ne[3], " matrices, expected one");
        }
    }
    void check_span(const Tensor& t, size_t bytes, const char* op) const {
        check_device(t, op);
        if (!t.is_contiguous() || bytes > t.nbytes()) {
            fail("cuda backend: ", op, " of ", bytes, " bytes into tensor '", t.name, "' of ", t.nbytes(),
                 t.is_contiguous() ? " bytes" : " bytes that is not contiguous");
        }
    }
    static float* f32(const Tensor& t) { return static_cast<float*>(t.data); }

    cudaStream_t stream_ = nullptr;
};

}  // namespace

// The runtime is linked statically, so this binary needs only the driver (libcuda) at run time;
// asking it for the device count is safe without a driver or GPU (it fails, it does not hang).
std::string cuda_unavailable_reason() {
    int n = 0;
    const cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess) {
        cudaGetLastError();  // clear the error, so later checked calls do not report it again
        std::string why = std::string("no CUDA device: ") + cudaGetErrorString(err);
        // Without a driver the runtime says "driver version is insufficient"; say which it is.
        int driver = 0, runtime = 0;
        if (err == cudaErrorInsufficientDriver && cudaDriverGetVersion(&driver) == cudaSuccess &&
            cudaRuntimeGetVersion(&runtime) == cudaSuccess) {
            why += driver == 0 ? " (no CUDA driver is installed)"
                               : " (the driver supports CUDA " + std::to_string(driver / 1000) + "." +
                                     std::to_string(driver % 1000 / 10) + ", this binary needs " +
                                     std::to_string(runtime / 1000) + "." + std::to_string(runtime % 1000 / 10) + ")";
        }
        return why;
    }
    if (n < 1) return "no CUDA device: the driver reports none";
    return "";
}

std::unique_ptr<Backend> make_cuda_backend(int device) {
    const std::string why = cuda_unavailable_reason();
    if (!why.empty()) fail("cannot create the cuda backend: ", why);
    int n = 0;
    STRATA_CUDA_CHECK(cudaGetDeviceCount(&n));
    if (device < 0 || device >= n) fail("cannot create the cuda backend: device ", device, " of ", n);
    return std::make_unique<CudaBackend>(device);
}

}  // namespace strata
