// The CPU state-space (Mamba) kernels behind Backend::ssm_conv, ssm_scan and rmsnorm_gated.
// The scan has two forms: the recurrence, token by token (the readable reference, and the decode
// path), and the SSD paper's chunked state-passing form for long Mamba-2 batches; the tests check
// one against the other on random inputs.
#pragma once

#include <cstdint>

namespace strata {

class ThreadPool;
struct SsmScanParams;

void cpu_ssm_conv(ThreadPool& pool, const float* x, int64_t n_tokens, int64_t n_channels, const float* weight,
                  int d_conv, const float* bias, float* conv_state, float* out);
// Picks the chunked form for Mamba-2 batches of at least kSsdMinTokens tokens, else the recurrence
// threaded over heads.
void cpu_ssm_scan(ThreadPool& pool, const float* x, const float* dt, const float* A, const float* B, const float* C,
                  const float* D, int64_t n_tokens, const SsmScanParams& p, float* state, float* y);
void cpu_rmsnorm_gated(ThreadPool& pool, const float* y, const float* z, const float* weight, int64_t n_tokens,
                       int64_t dim, int64_t n_group, float eps, float* out);

// The recurrence on one thread: the reference for both scan forms.
void ssm_scan_reference(const float* x, const float* dt, const float* A, const float* B, const float* C, const float* D,
                        int64_t n_tokens, const SsmScanParams& p, float* state, float* y);
// The chunked form alone (scalar A per head only), for the tests.
void ssd_chunked_scan(ThreadPool& pool, const float* x, const float* dt, const float* A, const float* B, const float* C,
                      const float* D, int64_t n_tokens, const SsmScanParams& p, float* state, float* y);

}  // namespace strata
