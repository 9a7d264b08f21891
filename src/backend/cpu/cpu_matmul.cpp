// The CPU matmul y[t][r] = Σ_c w[r][c] · x[t][c] on a quantized weight: activations are quantized
// once to the weight type's vec_dot_type (as ggml does), then each (row, token) pair is one
// vec_dot — four tokens per call where the kernels have a four-row form, which unpacks each
// weight block once for the four. Threads split the rows; within a thread, a tile of rows small
// enough for L1 is visited by every token before the next tile, so a prompt streams each weight
// from memory once.
#include <algorithm>

#include "backend/cpu/kernels.h"
#include "backend/tensor.h"
#include "util/error.h"
#include "util/thread_pool.h"

namespace strata {

namespace {

// Bytes of weights per tile: half of a typical 32 KiB L1d, leaving room for the activation rows
// that the tile's rows share.
constexpr size_t kTileBytes = 16 * 1024;

// Least work worth handing to another thread: waking one and collecting its result costs a few
// microseconds, about what the SIMD kernels need for 2^18 multiply-adds (or to quantize 2^16
// floats). Smaller matmuls — every one of a d=128 model's decode steps — run on the caller.
constexpr int64_t kMinChunkMacs = int64_t{1} << 18;
constexpr int64_t kMinChunkFloats = int64_t{1} << 16;

}  // namespace

void cpu_matmul(ThreadPool& pool, const CpuKernels& kernels, const Tensor& w, const Tensor& x, const Tensor& y,
                std::vector<uint8_t>& scratch) {
    const TypeTraits& wt = type_traits(w.type);
    const vec_dot_fn dot = kernels.vec_dot(w.type);
    const vec_dot_x4_fn dot4 = kernels.vec_dot_x4(w.type);
    const from_float_fn quantize = kernels.quantize(wt.vec_dot_type);
    if (!dot || !quantize) fail("tensor '", w.name, "': type ", wt.name, " has no dot product kernel");
    const int64_t cols = w.ne[0], rows = w.ne[1], n_tokens = x.ne[1];
    if (x.ne[0] != cols || y.ne[0] != rows || y.ne[1] != n_tokens) {
        fail("matmul: weight '", w.name, "' [", cols, ", ", rows, "] with activations [", x.ne[0], ", ", n_tokens,
             "] into [", y.ne[0], ", ", y.ne[1], "]");
    }
    const size_t w_row = w.nb[1];
    const auto* xdata = static_cast<const uint8_t*>(x.data);
    const auto x_row = [&](int64_t t) { return reinterpret_cast<const float*>(xdata + t * x.nb[1]); };
    const size_t y_stride = y.nb[1] / sizeof(float);
    float* ydata = static_cast<float*>(y.data);

    // F32 weights pair with F32 activations: those are x itself, no copy needed.
    const uint8_t* a = xdata;
    size_t a_row = x.nb[1];
    if (wt.vec_dot_type != GgmlType::F32) {
        a_row = row_size(wt.vec_dot_type, cols);
        scratch.resize(static_cast<size_t>(n_tokens) * a_row);
        uint8_t* q = scratch.data();
        pool.parallel_for(
            n_tokens,
            [&](int64_t t0, int64_t t1, int) {
                for (int64_t t = t0; t < t1; ++t) quantize(x_row(t), q + t * a_row, cols);
            },
            std::max<int64_t>(1, kMinChunkFloats / cols));
        a = q;
    }

    const uint8_t* wdata = static_cast<const uint8_t*>(w.data);
    const int64_t tile = std::clamp<int64_t>(static_cast<int64_t>(kTileBytes / w_row), 1, 64);
    const int64_t grain = std::max(tile, kMinChunkMacs / (cols * n_tokens));
    pool.parallel_for(
        rows,
        [&](int64_t r0, int64_t r1, int) {
            for (int64_t rt = r0; rt < r1; rt += tile) {
                const int64_t re = std::min(r1, rt + tile);
                int64_t t = 0;
                for (; dot4 && t + 4 <= n_tokens; t += 4) {
                    const uint8_t* at = a + t * a_row;
                    for (int64_t r = rt; r < re; ++r) {
                        float out[4];
                        dot4(cols, wdata + r * w_row, at, a_row, out);
                        for (int j = 0; j < 4; ++j) ydata[(t + j) * y_stride + r] = out[j];
                    }
                }
                for (; t < n_tokens; ++t) {
                    const uint8_t* at = a + t * a_row;
                    float* yt = ydata + t * y_stride;
                    for (int64_t r = rt; r < re; ++r) yt[r] = dot(cols, wdata + r * w_row, at);
                }
            }
        },
        grain);
}

}  // namespace strata
