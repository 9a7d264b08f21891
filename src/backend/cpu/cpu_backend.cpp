// The CPU backend: host memory (weights are the mapped file itself), quantized matmul
// (cpu_matmul.cpp: activations quantized to the weight type's pairing, as ggml does, then SIMD dot
// products chosen at startup), attention and MoE (cpu_ops.h), the SSM ops (cpu_ssm.h) and the
// element-wise ops, all over a thread pool. Ops run synchronously, so the queue is always empty.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "backend/backend.h"
#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/cpu_ssm.h"
#include "backend/cpu/cpu_tensor.h"
#include "backend/cpu/kernels.h"
#include "tensor/ggml_type.h"
#include "util/error.h"
#include "util/thread_pool.h"

namespace strata {

namespace {

// Host memory on 64-byte lines (a cache line; an AVX-512 register).
class HostBuffer final : public BackendBuffer {
public:
    HostBuffer(Backend& backend, size_t bytes) : BackendBuffer(backend, allocate(bytes), bytes) {}
    ~HostBuffer() override { std::free(base()); }

private:
    static void* allocate(size_t bytes) {
        void* p = std::aligned_alloc(64, std::max<size_t>(64, (bytes + 63) / 64 * 64));
        if (!p) fail("out of memory allocating ", bytes, " bytes");
        return p;
    }
};

class CpuBackend final : public Backend {
public:
    CpuBackend(int n_threads, const CpuKernels& kernels) : pool_(n_threads), kernels_(kernels) {}
    const char* name() const override { return "cpu"; }
    int n_threads() const override { return pool_.size(); }

    std::unique_ptr<BackendBuffer> alloc(size_t bytes) override { return std::make_unique<HostBuffer>(*this, bytes); }

    Tensor load_weight(const TensorView& host, WeightBuffers& keep) override {
        // Zero-copy: the tensor is the mapped bytes; the buffer only records where they are.
        void* data = const_cast<void*>(host.data);
        keep.push_back(std::make_unique<BackendBuffer>(*this, data, host.nbytes));
        Tensor t = make_tensor(host.type, {host.ne[0], host.ne[1], host.ne[2], host.ne[3]}, data, keep.back().get());
        t.name = host.name;
        return t;
    }

    void write(const Tensor& dst, const void* src, size_t bytes) override { std::memcpy(dst.data, src, bytes); }
    void read(const Tensor& src, void* dst, size_t bytes) override { std::memcpy(dst, src.data, bytes); }
    void copy(const Tensor& dst, const Tensor& src) override {
        if (dst.nbytes() != src.nbytes()) fail("copy: ", src.nbytes(), " bytes into a tensor of ", dst.nbytes());
        std::memcpy(dst.data, src.data, src.nbytes());
    }
    void fill_zero(const Tensor& t) override {
        if (t.is_contiguous()) {
            std::memset(t.data, 0, t.nbytes());
            return;
        }
        for (int64_t r = 0; r < t.n_rows(); ++r) {  // a view: its rows only, never the gaps between
            std::memset(static_cast<uint8_t*>(t.data) + (r % t.ne[1]) * t.nb[1] + (r / t.ne[1] % t.ne[2]) * t.nb[2] +
                            (r / (t.ne[1] * t.ne[2])) * t.nb[3],
                        0, t.row_bytes());
        }
    }

    void matmul(const Tensor& w, const Tensor& x, const Tensor& y) override {
        cpu_matmul(pool_, kernels_, w, x, y, activations_);
    }

    void get_rows(const Tensor& table, const Tensor& ids, const Tensor& out) override {
        const TypeTraits& tt = type_traits(table.type);
        if (!tt.to_float) fail("tensor '", table.name, "': cannot dequantize type ", tt.name);
        const int32_t* id = i32_data(ids);
        for (int64_t i = 0; i < ids.ne[0]; ++i) {
            if (id[i] < 0 || id[i] >= table.ne[1]) fail("get_rows: row ", id[i], " of ", table.ne[1]);
            tt.to_float(row_bytes_at(table, id[i]), f32_row(out, i), table.ne[0]);
        }
    }

    void rmsnorm(const Tensor& x, const Tensor& weight, float eps, const Tensor& out) override {
        const int64_t dim = x.ne[0];
        const float* w = f32_or_null(weight);
        pool_.parallel_for(x.ne[1], [&](int64_t t0, int64_t t1, int) {
            for (int64_t t = t0; t < t1; ++t) {
                const float* xt = f32_row(x, t);
                float* ot = f32_row(out, t);
                double sum = 0;
                for (int64_t i = 0; i < dim; ++i) sum += static_cast<double>(xt[i]) * xt[i];
                const float scale = 1.0f / std::sqrt(static_cast<float>(sum / static_cast<double>(dim)) + eps);
                for (int64_t i = 0; i < dim; ++i) ot[i] = xt[i] * scale * (w ? w[i] : 1.0f);
            }
        });
    }

    void rope(const Tensor& x, int n_heads, const Tensor& positions, const RopeParams& p) override {
        const int half = p.n_rot / 2;
        const int64_t head_dim = x.ne[0] / n_heads;
        const float* factors = f32_or_null(p.freq_factors);
        // theta_i = pos · base^(-2i/n_rot), as in the RoFormer paper (eq. 15) and ggml_rope.
        inv_freq_.resize(static_cast<size_t>(half));
        for (int i = 0; i < half; ++i) {
            inv_freq_[i] = std::pow(p.freq_base, -2.0f * static_cast<float>(i) / static_cast<float>(p.n_rot));
            if (factors) inv_freq_[i] /= factors[i];
        }
        const int32_t* pos = i32_data(positions);
        pool_.parallel_for(x.ne[1], [&](int64_t t0, int64_t t1, int) {
            for (int64_t t = t0; t < t1; ++t) {
                const float position = static_cast<float>(pos[t]) * p.freq_scale;
                for (int h = 0; h < n_heads; ++h) {
                    float* v = f32_row(x, t) + h * head_dim;
                    for (int i = 0; i < half; ++i) {
                        const float theta = position * inv_freq_[i];
                        const float c = std::cos(theta), s = std::sin(theta);
                        const int a = p.neox ? i : 2 * i, b = p.neox ? i + half : 2 * i + 1;
                        const float x0 = v[a], x1 = v[b];
                        v[a] = x0 * c - x1 * s;
                        v[b] = x0 * s + x1 * c;
                    }
                }
            }
        });
    }

    void swiglu(const Tensor& gate, const Tensor& up, const Tensor& out) override {
        const int64_t width = gate.ne[0];
        pool_.parallel_for(
            gate.ne[1],
            [&](int64_t t0, int64_t t1, int) {
                for (int64_t t = t0; t < t1; ++t) {
                    const float *g = f32_row(gate, t), *u = f32_row(up, t);
                    float* o = f32_row(out, t);
                    for (int64_t i = 0; i < width; ++i) o[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
                }
            },
            std::max<int64_t>(1, 4096 / width));
    }

    void add(const Tensor& x, const Tensor& y) override {
        for (int64_t t = 0; t < x.ne[1]; ++t) {
            float* xt = f32_row(x, t);
            const float* yt = f32_row(y, t);
            for (int64_t i = 0; i < x.ne[0]; ++i) xt[i] += yt[i];
        }
    }

    void add_bias(const Tensor& x, const Tensor& bias) override {
        const float* b = f32_or_null(bias);
        for (int64_t t = 0; t < x.ne[1]; ++t) {
            float* xt = f32_row(x, t);
            for (int64_t i = 0; i < x.ne[0]; ++i) xt[i] += b[i];
        }
    }

    void add_gated(const Tensor& x, const Tensor& y, const Tensor& gate) override {
        for (int64_t t = 0; t < x.ne[1]; ++t) {
            const float g = 1.0f / (1.0f + std::exp(-f32_row(gate, t)[0]));
            float* xt = f32_row(x, t);
            const float* yt = f32_row(y, t);
            for (int64_t i = 0; i < x.ne[0]; ++i) xt[i] += g * yt[i];
        }
    }

    void kv_write(std::span<const KvCache> caches, const Tensor& k, const Tensor& v, const Tensor& positions) override {
        cpu_kv_write(kernels_, caches, k, v, positions);
    }

    void attention(const Tensor& q, std::span<const KvCache> caches, const Tensor& positions, const AttentionParams& p,
                   const Tensor& out) override {
        cpu_attention(pool_, kernels_, q, caches, positions, p, out, attention_);
    }

    void moe_route(const Tensor& logits, int k, const MoeRouting& routing, const Tensor& ids, const Tensor& weights,
                   const Tensor& counts) override {
        cpu_moe_route(logits, k, routing, ids, weights, counts, moe_);
    }

    void moe_ffn(const Tensor& h, const Tensor& gate_exps, const Tensor& up_exps, const Tensor& down_exps,
                 const Tensor& ids, const Tensor& weights, const Tensor& out) override {
        cpu_moe_ffn(pool_, kernels_, h, gate_exps, up_exps, down_exps, ids, weights, out, moe_);
    }

    // The batch runs in one call except its last `count` tokens, which run one at a time, each
    // followed by a copy of the state into its ring slot.
    void ssm_conv(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& conv_state,
                  const Tensor& out, const Tensor& positions, const SnapshotRing& snapshots) override {
        const int64_t n = x.ne[1], channels = x.ne[0], d_conv = weight.ne[0];
        const float* xs = packed_f32(x, packed_[0]);
        float* state = static_cast<float*>(conv_state.data);
        float* o = packed_output(out, packed_[4]);
        for_segments(n, snapshots, positions, [&](int64_t t0, int64_t t1) {
            cpu_ssm_conv(pool_, xs + t0 * channels, t1 - t0, channels, static_cast<const float*>(weight.data),
                         static_cast<int>(d_conv), f32_or_null(bias), state, o + t0 * channels);
        }, conv_state);
        unpack_output(out, o);
    }

    void ssm_scan(const Tensor& x, const Tensor& dt, const Tensor& A, const Tensor& B, const Tensor& C, const Tensor& D,
                  const SsmScanParams& p, const Tensor& state, const Tensor& y, const Tensor& positions,
                  const SnapshotRing& snapshots) override {
        const float* xs = packed_f32(x, packed_[0]);
        const float* dts = packed_f32(dt, packed_[1]);
        const float* Bs = packed_f32(B, packed_[2]);
        const float* Cs = packed_f32(C, packed_[3]);
        const int64_t x_w = x.ne[0], dt_w = dt.ne[0], bc_w = B.ne[0];
        float* ys = packed_output(y, packed_[4]);
        for_segments(x.ne[1], snapshots, positions, [&](int64_t t0, int64_t t1) {
            cpu_ssm_scan(pool_, xs + t0 * x_w, dts + t0 * dt_w, static_cast<const float*>(A.data), Bs + t0 * bc_w,
                         Cs + t0 * bc_w, static_cast<const float*>(D.data), t1 - t0, p, static_cast<float*>(state.data),
                         ys + t0 * x_w);
        }, state);
        unpack_output(y, ys);
    }

    void rmsnorm_gated(const Tensor& y, const Tensor& z, const Tensor& weight, int64_t n_group, float eps,
                       const Tensor& out) override {
        const float* ys = packed_f32(y, packed_[0]);
        const float* zs = packed_f32(z, packed_[1]);
        float* o = packed_output(out, packed_[4]);
        cpu_rmsnorm_gated(pool_, ys, zs, static_cast<const float*>(weight.data), y.ne[1], y.ne[0], n_group, eps, o);
        unpack_output(out, o);
    }

private:
    // Runs step(t0, t1) over [0, n): all but the last snapshots.count tokens at once, then those
    // one by one, copying `state` into ring slot (positions[t] + 1) % depth after each.
    template <class Step>
    void for_segments(int64_t n, const SnapshotRing& snapshots, const Tensor& positions, Step step,
                      const Tensor& state) {
        const int64_t k = std::min(n, snapshots.count);
        if (n > k) step(0, n - k);
        const int32_t* pos = i32_data(positions);
        const int64_t depth = snapshots.ring.ne[1];
        for (int64_t t = n - k; t < n; ++t) {
            step(t, t + 1);
            std::memcpy(row_bytes_at(snapshots.ring, (pos[t] + 1) % depth), state.data, state.nbytes());
        }
    }

    ThreadPool pool_;
    const CpuKernels& kernels_;
    std::vector<uint8_t> activations_;
    std::vector<float> inv_freq_;
    std::vector<float> packed_[5];  // inputs packed for the SSM kernels, and one output
    AttentionScratch attention_;
    MoeScratch moe_;
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(int n_threads) {
    return std::make_unique<CpuBackend>(n_threads, cpu_kernels());
}

std::unique_ptr<Backend> make_reference_backend() { return std::make_unique<CpuBackend>(1, cpu_kernels_scalar()); }

}  // namespace strata
