// The CPU backend's hot kernels, picked once per process for the CPU it runs on: SIMD versions of
// the type table's vec_dot (weights · quantized activations) and of the activation quantizers
// (from_float of each vec_dot_type), falling back to the type table's scalar reference.
// The binary stays portable: the SIMD code is compiled for its ISA function by function and only
// called when CpuFeatures says the CPU has that ISA. STRATA_FORCE_SCALAR=1 in the environment
// selects the reference kernels (the in-binary baseline for `strata bench`).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "tensor/ggml_type.h"

namespace strata {

struct CpuFeatures;
struct Tensor;
class ThreadPool;

using vec_dot_fn = float (*)(int64_t n, const void* weights, const void* activations);
using from_float_fn = void (*)(const float* src, void* dst, int64_t n);
// One weight row against four activation rows `stride` bytes apart: out[j] is bit for bit the
// vec_dot of the same table for row j, so a matmul's result does not depend on how tokens are
// grouped; the weight row is unpacked once for the four.
using vec_dot_x4_fn = void (*)(int64_t n, const void* weights, const void* activations, size_t stride, float* out);
// y[i] += a · x[i] over n floats.
using axpy_fn = void (*)(int64_t n, float a, const float* x, float* y);
using axpy_f16_fn = void (*)(int64_t n, float a, const uint16_t* x, float* y);

struct CpuKernels {
    static constexpr uint32_t kTypes = 32;  // one slot per ggml type id (all known ids are < 31)

    const char* isa = "scalar";              // "scalar" or "avx2"
    vec_dot_fn vec_dots[kTypes] = {};        // by weight type id
    vec_dot_x4_fn vec_dots_x4[kTypes] = {};  // by weight type id; null where the ISA has none
    from_float_fn quantizers[kTypes] = {};   // by activation (vec_dot_type) id
    // Float helpers of attention: q·k is vec_dot of the cache type; the weighted sum of values is
    // axpy_f32 or, over an F16 cache, axpy_f16.
    axpy_fn axpy_f32 = nullptr;
    axpy_f16_fn axpy_f16 = nullptr;

    // Dot product of a row of `weights` with a row of its vec_dot_type; null when the type table
    // has none either.
    vec_dot_fn vec_dot(GgmlType weights) const;
    // The four-row form of vec_dot(weights); null when this table has none.
    vec_dot_x4_fn vec_dot_x4(GgmlType weights) const;
    // Quantizer of float activations to `type`; null when the type table has none.
    from_float_fn quantize(GgmlType type) const;
};

// The kernels of this process: the best ISA the CPU supports, or the reference when the
// environment sets STRATA_FORCE_SCALAR to anything but "" or "0" (read once, at the first call).
const CpuKernels& cpu_kernels();

// The selection rule behind cpu_kernels(), exposed for tests.
const CpuKernels& select_cpu_kernels(const CpuFeatures& features, bool force_scalar);
// The type table's reference kernels.
const CpuKernels& cpu_kernels_scalar();
// The AVX2 kernels (which also need FMA and F16C); nullptr when this CPU lacks one of them.
const CpuKernels* cpu_kernels_avx2();

// y[t][r] = Σ_c w[r][c] · x[t][c] with the given kernels (cpu_matmul.cpp) on host tensors (x and
// y F32, rows possibly strided): activations are quantized to the weight type's vec_dot_type
// into `scratch`, rows are split over the pool.
void cpu_matmul(ThreadPool& pool, const CpuKernels& kernels, const Tensor& w, const Tensor& x, const Tensor& y,
                std::vector<uint8_t>& scratch);

}  // namespace strata
