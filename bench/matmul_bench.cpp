// Kernel-level matmul throughput (GMAC/s, one thread, thread CPU time so a shared machine's
// load does not count) of a 2048x2048 weight: the reference kernels, the AVX2 kernels one token
// per call (x1) and four tokens per call (x4), for decode (1 token) and prefill (64 tokens).
//   build/bench/matmul_bench
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <random>
#include <vector>

#include "backend/cpu/kernels.h"
#include "backend/tensor.h"
#include "tensor/quant.h"
#include "tensor/tensor.h"
#include "util/thread_pool.h"

using namespace strata;

namespace {

double thread_seconds() {
    timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

}  // namespace

int main() {
    const CpuKernels* avx2 = cpu_kernels_avx2();
    if (!avx2) {
        std::printf("this CPU has no AVX2+FMA+F16C\n");
        return 0;
    }
    const int64_t cols = 2048, rows = 2048, max_tokens = 64;
    ThreadPool pool(1);
    std::mt19937 rng(1);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    std::vector<float> w(static_cast<size_t>(cols * rows)), x(static_cast<size_t>(cols * max_tokens));
    for (float& v : w) v = dist(rng);
    for (float& v : x) v = dist(rng);
    std::vector<float> y(static_cast<size_t>(rows * max_tokens));
    std::vector<uint8_t> scratch;
    CpuKernels x1 = *avx2;
    std::memset(x1.vec_dots_x4, 0, sizeof x1.vec_dots_x4);
    const CpuKernels* tables[3] = {&cpu_kernels_scalar(), &x1, avx2};
    std::printf("| type | tokens | ref GMAC/s | avx2 x1 | avx2 x4 |\n|---|---|---|---|---|\n");
    for (GgmlType t : {GgmlType::F32, GgmlType::F16, GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_K, GgmlType::Q6_K}) {
        const size_t w_row = row_size(t, cols);
        std::vector<uint8_t> wq(w_row * rows);
        for (int64_t r = 0; r < rows; ++r) quantize_row(t, w.data() + r * cols, wq.data() + r * w_row, cols);
        const Tensor view = make_tensor(t, {cols, rows}, wq.data(), nullptr);
        for (int64_t n_tokens : {int64_t{1}, max_tokens}) {
            std::printf("| %s | %lld |", type_name(t), static_cast<long long>(n_tokens));
            for (int k = 0; k < 3; ++k) {
                double best = 1e30;
                for (int rep = 0; rep < (k == 0 ? 2 : 6); ++rep) {
                    const double t0 = thread_seconds();
                    cpu_matmul(pool, *tables[k], view, make_tensor(GgmlType::F32, {cols, n_tokens}, x.data(), nullptr),
                               make_tensor(GgmlType::F32, {rows, n_tokens}, y.data(), nullptr), scratch);
                    best = std::min(best, thread_seconds() - t0);
                }
                std::printf(" %.2f |", static_cast<double>(cols * rows * n_tokens) / best * 1e-9);
            }
            std::printf("\n");
        }
    }
    return 0;
}
