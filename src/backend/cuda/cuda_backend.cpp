// The CUDA backend's host side: device memory, host ↔ device copies, and the ops that dispatch
// to the kernels of cuda/ on the backend's one stream. Everything is queued on that stream in
// call order, so ops need no synchronization between them; only read() and synchronize() wait.
// A skeleton so far: get_rows, rmsnorm, add and the F32/F16 matmul run on the GPU, every other
// op throws NotImplemented naming itself.
#include "backend/cuda/cuda_backend.h"

#include <cuda_runtime_api.h>

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

    // ---- Not yet on the GPU ------------------------------------------------------------------
    void rope(const Tensor&, int, const Tensor&, const RopeParams&) override { not_implemented("rope"); }
    void swiglu(const Tensor&, const Tensor&, const Tensor&) override { not_implemented("swiglu"); }
    void add_bias(const Tensor&, const Tensor&) override { not_implemented("add_bias"); }
    void add_gated(const Tensor&, const Tensor&, const Tensor&) override { not_implemented("add_gated"); }
    void kv_write(std::span<const KvCache>, const Tensor&, const Tensor&, const Tensor&) override {
        not_implemented("kv_write");
    }
    void attention(const Tensor&, std::span<const KvCache>, const Tensor&, const AttentionParams&,
                   const Tensor&) override {
        not_implemented("attention");
    }
    void moe_route(const Tensor&, int, const MoeRouting&, const Tensor&, const Tensor&, const Tensor&) override {
        not_implemented("moe_route");
    }
    void ssm_conv(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                  const SnapshotRing&) override {
        not_implemented("ssm_conv");
    }
    void ssm_scan(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                  const SsmScanParams&, const Tensor&, const Tensor&, const Tensor&, const SnapshotRing&) override {
        not_implemented("ssm_scan");
    }
    void rmsnorm_gated(const Tensor&, const Tensor&, const Tensor&, int64_t, float, const Tensor&) override {
        not_implemented("rmsnorm_gated");
    }

private:
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
