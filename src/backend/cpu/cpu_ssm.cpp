#include "backend/cpu/cpu_ssm.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "backend/backend.h"
#include "util/thread_pool.h"

namespace strata {

namespace {

// torch.nn.functional.softplus with its default threshold: above 20, log(1 + e^x) = x in float.
float softplus(float x) { return x > 20.0f ? x : std::log1p(std::exp(x)); }

float silu(float x) { return x / (1.0f + std::exp(-x)); }

// Tokens per chunk of the SSD form. The result is exact for any size; 64 keeps a chunk's
// [L][L] decay-weighted C·Bᵀ block (16 KiB) in L1 while amortizing the state pass.
constexpr int64_t kSsdChunk = 64;
// Below this many tokens the recurrence is as fast and simpler (decode, rollback steps).
constexpr int64_t kSsdMinTokens = 8;

// Items per thread task so that a task does at least ~16k multiply-adds: waking a worker costs
// microseconds, more than a decode step's conv or scan of a small model.
int64_t grain(int64_t work_per_item) {
    return std::max<int64_t>(1, (int64_t{1} << 14) / std::max<int64_t>(1, work_per_item));
}

// The recurrence for heads [h0, h1), every token in order.
void scan_heads(int64_t h0, int64_t h1, const float* x, const float* dt, const float* A, const float* B, const float* C,
                const float* D, int64_t n_tokens, const SsmScanParams& p, float* state, float* y) {
    const int64_t P = p.head_dim, N = p.d_state, heads_per_group = p.n_head / p.n_group;
    for (int64_t t = 0; t < n_tokens; ++t) {
        for (int64_t h = h0; h < h1; ++h) {
            const float delta = softplus(dt[t * p.n_head + h]);
            const int64_t g = h / heads_per_group;
            const float* Bt = B + (t * p.n_group + g) * N;
            const float* Ct = C + (t * p.n_group + g) * N;
            const float* xt = x + (t * p.n_head + h) * P;
            float* yt = y + (t * p.n_head + h) * P;
            for (int64_t c = 0; c < P; ++c) {
                float* s = state + (h * P + c) * N;
                float sum = 0;
                for (int64_t i = 0; i < N; ++i) {
                    const float a = p.a_per_state ? A[h * N + i] : A[h];
                    s[i] = std::exp(delta * a) * s[i] + delta * Bt[i] * xt[c];
                    sum += Ct[i] * s[i];
                }
                yt[c] = sum + D[h] * xt[c];
            }
        }
    }
}

// One chunk of L tokens for head h (SSD paper, section 6 / Listing 1), with cum[i] = Σ_{j≤i} Δ_j·A
// and G[t][s] = C_t·B_s of the head's group:
//   y_t = e^{cum_t}·(H·C_t) + Σ_{s≤t} e^{cum_t − cum_s}·Δ_s·G[t][s]·x_s + D·x_t   (state in, diagonal block)
//   H  ← e^{cum_L}·H + Σ_s e^{cum_L − cum_s}·Δ_s·x_s ⊗ B_s                       (state passing)
// cum_t − cum_s ≤ 0 for s ≤ t, so every exponential is at most 1.
void ssd_chunk_head(int64_t h, int64_t L, const float* x, const float* delta, const float* A, const float* B,
                    const float* C, const float* D, const float* G, const SsmScanParams& p, float* state, float* y,
                    std::vector<float>& cum, std::vector<float>& w) {
    const int64_t P = p.head_dim, N = p.d_state, g = h / (p.n_head / p.n_group);
    const int64_t xs = p.n_head * P, bs = p.n_group * N;  // row strides of x/y and B/C
    float* H = state + h * P * N;
    float running = 0;
    for (int64_t i = 0; i < L; ++i) cum[i] = running += delta[i * p.n_head + h] * A[h];
    for (int64_t t = 0; t < L; ++t) {
        const float* Gt = G + t * L;
        for (int64_t s = 0; s <= t; ++s) w[s] = std::exp(cum[t] - cum[s]) * delta[s * p.n_head + h] * Gt[s];
        const float decay = std::exp(cum[t]);
        const float* Ct = C + t * bs + g * N;
        const float* xt = x + t * xs + h * P;
        float* yt = y + t * xs + h * P;
        for (int64_t c = 0; c < P; ++c) {
            const float* Hc = H + c * N;
            float acc = 0;
            for (int64_t i = 0; i < N; ++i) acc += Hc[i] * Ct[i];
            yt[c] = decay * acc + D[h] * xt[c];
        }
        for (int64_t s = 0; s <= t; ++s) {
            const float* xs_row = x + s * xs + h * P;
            for (int64_t c = 0; c < P; ++c) yt[c] += w[s] * xs_row[c];
        }
    }
    const float last = cum[L - 1];
    for (int64_t i = 0; i < P * N; ++i) H[i] *= std::exp(last);
    for (int64_t s = 0; s < L; ++s) {
        const float ws = std::exp(last - cum[s]) * delta[s * p.n_head + h];
        const float* Bs = B + s * bs + g * N;
        const float* xs_row = x + s * xs + h * P;
        for (int64_t c = 0; c < P; ++c) {
            const float wx = ws * xs_row[c];
            float* Hc = H + c * N;
            for (int64_t i = 0; i < N; ++i) Hc[i] += wx * Bs[i];
        }
    }
}

}  // namespace

void ssm_scan_reference(const float* x, const float* dt, const float* A, const float* B, const float* C, const float* D,
                        int64_t n_tokens, const SsmScanParams& p, float* state, float* y) {
    scan_heads(0, p.n_head, x, dt, A, B, C, D, n_tokens, p, state, y);
}

void ssd_chunked_scan(ThreadPool& pool, const float* x, const float* dt, const float* A, const float* B, const float* C,
                      const float* D, int64_t n_tokens, const SsmScanParams& p, float* state, float* y) {
    const int64_t N = p.d_state;
    std::vector<float> delta(static_cast<size_t>(n_tokens * p.n_head));
    for (size_t i = 0; i < delta.size(); ++i) delta[i] = softplus(dt[i]);
    std::vector<float> G(static_cast<size_t>(p.n_group * kSsdChunk * kSsdChunk));
    for (int64_t c0 = 0; c0 < n_tokens; c0 += kSsdChunk) {
        const int64_t L = std::min(kSsdChunk, n_tokens - c0);
        const float* Bc = B + c0 * p.n_group * N;
        const float* Cc = C + c0 * p.n_group * N;
        // G = C·Bᵀ (lower triangle) once per group, shared by the group's heads.
        pool.parallel_for(p.n_group * L, [&](int64_t r0, int64_t r1, int) {
            for (int64_t r = r0; r < r1; ++r) {
                const int64_t g = r / L, t = r % L;
                const float* Ct = Cc + (t * p.n_group + g) * N;
                for (int64_t s = 0; s <= t; ++s) {
                    const float* Bs = Bc + (s * p.n_group + g) * N;
                    float dot = 0;
                    for (int64_t i = 0; i < N; ++i) dot += Ct[i] * Bs[i];
                    G[static_cast<size_t>((g * L + t) * L + s)] = dot;
                }
            }
        });
        pool.parallel_for(p.n_head, [&](int64_t h0, int64_t h1, int) {
            std::vector<float> cum(static_cast<size_t>(L)), w(static_cast<size_t>(L));
            for (int64_t h = h0; h < h1; ++h) {
                const float* Gh = G.data() + (h / (p.n_head / p.n_group)) * L * L;
                ssd_chunk_head(h, L, x + c0 * p.n_head * p.head_dim, delta.data() + c0 * p.n_head, A, Bc, Cc, D, Gh, p,
                               state, y + c0 * p.n_head * p.head_dim, cum, w);
            }
        });
    }
}

void cpu_ssm_scan(ThreadPool& pool, const float* x, const float* dt, const float* A, const float* B, const float* C,
                  const float* D, int64_t n_tokens, const SsmScanParams& p, float* state, float* y) {
    if (!p.a_per_state && n_tokens >= kSsdMinTokens) {
        ssd_chunked_scan(pool, x, dt, A, B, C, D, n_tokens, p, state, y);
        return;
    }
    // Heads are independent: each thread runs its heads through every token.
    pool.parallel_for(
        p.n_head, [&](int64_t h0, int64_t h1, int) { scan_heads(h0, h1, x, dt, A, B, C, D, n_tokens, p, state, y); },
        grain(n_tokens * p.head_dim * p.d_state));
}

void cpu_ssm_conv(ThreadPool& pool, const float* x, int64_t n_tokens, int64_t n_channels, const float* weight,
                  int d_conv, const float* bias, float* conv_state, float* out) {
    const int64_t n_state = d_conv - 1;
    // Row r of x' = [conv_state; x].
    auto row = [&](int64_t r) { return r < n_state ? conv_state + r * n_channels : x + (r - n_state) * n_channels; };
    pool.parallel_for(
        n_tokens,
        [&](int64_t t0, int64_t t1, int) {
            for (int64_t t = t0; t < t1; ++t) {
                float* ot = out + t * n_channels;
                for (int64_t c = 0; c < n_channels; ++c) ot[c] = bias ? bias[c] : 0.0f;
                for (int k = 0; k < d_conv; ++k) {
                    const float* xr = row(t + k);
                    for (int64_t c = 0; c < n_channels; ++c) ot[c] += weight[c * d_conv + k] * xr[c];
                }
                for (int64_t c = 0; c < n_channels; ++c) ot[c] = silu(ot[c]);
            }
        },
        grain(n_channels * d_conv));
    // The new state is rows n_tokens … n_tokens + d_conv − 2 of x'; ascending order never
    // overwrites a state row before it is read.
    for (int64_t r = 0; r < n_state; ++r) {
        std::memmove(conv_state + r * n_channels, row(n_tokens + r), static_cast<size_t>(n_channels) * sizeof(float));
    }
}

void cpu_rmsnorm_gated(ThreadPool& pool, const float* y, const float* z, const float* weight, int64_t n_tokens,
                       int64_t dim, int64_t n_group, float eps, float* out) {
    const int64_t group = dim / n_group;
    pool.parallel_for(
        n_tokens * n_group,
        [&](int64_t r0, int64_t r1, int) {
            // v = y ⊙ silu(z) is computed twice (for the sum, then for the output) rather than
            // kept: no scratch, and out may alias y since each element is read before written.
            for (int64_t r = r0; r < r1; ++r) {
                const int64_t offset = r * group, w0 = (r % n_group) * group;
                double sum = 0;
                for (int64_t i = 0; i < group; ++i) {
                    const float v = y[offset + i] * silu(z[offset + i]);
                    sum += static_cast<double>(v) * v;
                }
                const float scale = 1.0f / std::sqrt(static_cast<float>(sum / static_cast<double>(group)) + eps);
                for (int64_t i = 0; i < group; ++i) {
                    out[offset + i] = y[offset + i] * silu(z[offset + i]) * scale * weight[w0 + i];
                }
            }
        },
        grain(group));
}

}  // namespace strata
