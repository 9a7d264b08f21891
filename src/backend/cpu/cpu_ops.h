// The CPU backend's larger ops on host tensors (internal to backend/cpu): attention over the
// typed KV cache (cpu_attention.cpp) and the mixture-of-experts router and expert FFN
// (cpu_moe.cpp). Each keeps its scratch in a struct the backend owns, so steady state allocates
// nothing.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "backend/backend.h"
#include "backend/cpu/kernels.h"

namespace strata {

class ThreadPool;

struct AttentionScratch {
    std::vector<float> scores;  // per thread: one row of attention scores
    std::vector<float> values;  // per thread: one dequantized value head (Q8_0 caches)
    std::vector<uint8_t> query; // per thread: the query head in the key cache's dot-product type
};

void cpu_kv_write(const CpuKernels& kernels, std::span<const KvCache> caches, const Tensor& k, const Tensor& v,
                  const Tensor& positions);
void cpu_attention(ThreadPool& pool, const CpuKernels& kernels, const Tensor& q, std::span<const KvCache> caches,
                   const Tensor& positions, const AttentionParams& p, const Tensor& out, AttentionScratch& scratch);

struct MoeScratch {
    std::vector<float> probs;
    std::vector<int32_t> order;
    std::vector<std::vector<int64_t>> routed;  // per expert: the choices (token · k + j) routed to it
    std::vector<float> rows, gate, up, out;    // one expert's gathered inputs and activations
    std::vector<uint8_t> activations;          // cpu_matmul's quantized activations
};

void cpu_moe_route(const Tensor& logits, int k, const MoeRouting& routing, const Tensor& ids, const Tensor& weights,
                   const Tensor& counts, MoeScratch& scratch);
void cpu_moe_ffn(ThreadPool& pool, const CpuKernels& kernels, const Tensor& h, const Tensor& gate_exps,
                 const Tensor& up_exps, const Tensor& down_exps, const Tensor& ids, const Tensor& weights,
                 const Tensor& out, MoeScratch& scratch);

}  // namespace strata
