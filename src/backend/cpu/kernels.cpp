// Kernel tables per ISA and the choice among them. A table starts as a copy of the type table's
// reference kernels; an ISA then overrides the entries it has a faster kernel for.
#include "backend/cpu/kernels.h"

#include <cstdlib>
#include <cstring>

#include "backend/cpu/simd_avx2.h"
#include "tensor/float16.h"
#include "util/cpu_features.h"

namespace strata {

namespace {

void axpy_f32_reference(int64_t n, float a, const float* x, float* y) {
    for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

void axpy_f16_reference(int64_t n, float a, const uint16_t* x, float* y) {
    for (int64_t i = 0; i < n; ++i) y[i] += a * fp16_to_fp32(x[i]);
}

CpuKernels reference_table() {
    CpuKernels k;
    k.isa = "scalar";
    k.axpy_f32 = axpy_f32_reference;
    k.axpy_f16 = axpy_f16_reference;
    for (uint32_t id = 0; id < CpuKernels::kTypes; ++id) {
        if (const TypeTraits* t = find_type_traits(id)) {
            k.vec_dots[id] = t->vec_dot;
            k.quantizers[id] = t->from_float;
        }
    }
    return k;
}

void set(CpuKernels& k, GgmlType weights, vec_dot_fn f) { k.vec_dots[static_cast<uint32_t>(weights)] = f; }
void set(CpuKernels& k, GgmlType weights, vec_dot_x4_fn f) { k.vec_dots_x4[static_cast<uint32_t>(weights)] = f; }
void set(CpuKernels& k, GgmlType activations, from_float_fn f) {
    k.quantizers[static_cast<uint32_t>(activations)] = f;
}

CpuKernels avx2_table() {
    using T = GgmlType;
    CpuKernels k = reference_table();
    k.isa = "avx2";
    set(k, T::F32, avx2::vec_dot_f32);
    set(k, T::F16, avx2::vec_dot_f16);
    set(k, T::BF16, avx2::vec_dot_bf16);
    set(k, T::Q8_0, avx2::vec_dot_q8_0_q8_0);
    set(k, T::Q4_0, avx2::vec_dot_q4_0_q8_0);
    set(k, T::Q5_0, avx2::vec_dot_q5_0_q8_0);
    set(k, T::Q2_K, avx2::vec_dot_q2_k_q8_k);
    set(k, T::Q3_K, avx2::vec_dot_q3_k_q8_k);
    set(k, T::Q4_K, avx2::vec_dot_q4_k_q8_k);
    set(k, T::Q5_K, avx2::vec_dot_q5_k_q8_k);
    set(k, T::Q6_K, avx2::vec_dot_q6_k_q8_k);
    k.axpy_f32 = avx2::axpy_f32;
    k.axpy_f16 = avx2::axpy_f16;
    set(k, T::F32, avx2::vec_dot_f32_x4);
    set(k, T::F16, avx2::vec_dot_f16_x4);
    set(k, T::Q8_0, avx2::vec_dot_q8_0_q8_0_x4);
    set(k, T::Q4_0, avx2::vec_dot_q4_0_q8_0_x4);
    set(k, T::Q5_0, avx2::vec_dot_q5_0_q8_0_x4);
    set(k, T::Q4_K, avx2::vec_dot_q4_k_q8_k_x4);
    set(k, T::Q5_K, avx2::vec_dot_q5_k_q8_k_x4);
    set(k, T::Q6_K, avx2::vec_dot_q6_k_q8_k_x4);
    set(k, T::Q8_0, avx2::quantize_row_q8_0);
    set(k, T::Q8_K, avx2::quantize_row_q8_k);
    set(k, T::F16, avx2::quantize_row_f16);
    return k;
}

bool has_avx2(const CpuFeatures& f) { return f.avx2 && f.fma && f.f16c; }

bool force_scalar_from_env() {
    const char* v = std::getenv("STRATA_FORCE_SCALAR");
    return v && *v && std::strcmp(v, "0") != 0;
}

}  // namespace

vec_dot_fn CpuKernels::vec_dot(GgmlType weights) const {
    const auto id = static_cast<uint32_t>(weights);
    return id < kTypes ? vec_dots[id] : nullptr;
}

vec_dot_x4_fn CpuKernels::vec_dot_x4(GgmlType weights) const {
    const auto id = static_cast<uint32_t>(weights);
    return id < kTypes ? vec_dots_x4[id] : nullptr;
}

from_float_fn CpuKernels::quantize(GgmlType type) const {
    const auto id = static_cast<uint32_t>(type);
    return id < kTypes ? quantizers[id] : nullptr;
}

const CpuKernels& cpu_kernels_scalar() {
    static const CpuKernels k = reference_table();
    return k;
}

const CpuKernels* cpu_kernels_avx2() {
    static const CpuKernels k = avx2_table();
    return has_avx2(CpuFeatures::get()) ? &k : nullptr;
}

const CpuKernels& select_cpu_kernels(const CpuFeatures& features, bool force_scalar) {
    if (!force_scalar && has_avx2(features) && has_avx2(CpuFeatures::get())) return *cpu_kernels_avx2();
    return cpu_kernels_scalar();
}

const CpuKernels& cpu_kernels() {
    static const CpuKernels& k = select_cpu_kernels(CpuFeatures::get(), force_scalar_from_env());
    return k;
}

}  // namespace strata
