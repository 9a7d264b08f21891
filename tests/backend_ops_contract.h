// The contracts of backend.h computed on the host in double, straight from each op's comment: the
// yardstick the op suite (test_backend_ops.cpp) holds the reference backend to. Matrices are
// row-major float vectors [rows][width] (ggml's ne[0] = width is the contiguous one); weights and
// caches are passed as the values their type holds (test::roundtrip of what was uploaded).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <vector>

#include "backend/backend.h"

namespace strata::test {

inline double silu(double x) { return x / (1 + std::exp(-x)); }
inline double sigmoid(double x) { return 1 / (1 + std::exp(-x)); }
// torch.nn.functional.softplus with its default threshold.
inline double softplus(double x) { return x > 20 ? x : std::log1p(std::exp(x)); }

// y[t][r] = Σ_c w[r][c] · x[t][c].
inline std::vector<float> host_matmul(const std::vector<float>& w, const std::vector<float>& x, int64_t cols,
                                      int64_t rows, int64_t tokens) {
    std::vector<float> y(static_cast<size_t>(rows * tokens));
    for (int64_t t = 0; t < tokens; ++t) {
        for (int64_t r = 0; r < rows; ++r) {
            double sum = 0;
            for (int64_t c = 0; c < cols; ++c) sum += static_cast<double>(w[r * cols + c]) * x[t * cols + c];
            y[t * rows + r] = static_cast<float>(sum);
        }
    }
    return y;
}

// x / rms(x) · weight over each group of `group` values (rmsnorm: one group per row); `weight`
// empty: no scale.
inline std::vector<float> host_rmsnorm(const std::vector<float>& x, const std::vector<float>& weight, int64_t width,
                                       int64_t group, double eps) {
    std::vector<float> out(x.size());
    for (size_t g0 = 0; g0 < x.size(); g0 += static_cast<size_t>(group)) {
        double sum = 0;
        for (int64_t i = 0; i < group; ++i) sum += static_cast<double>(x[g0 + i]) * x[g0 + i];
        const double scale = 1 / std::sqrt(sum / static_cast<double>(group) + eps);
        for (int64_t i = 0; i < group; ++i) {
            const double w = weight.empty() ? 1.0 : weight[(g0 + i) % static_cast<size_t>(width)];
            out[g0 + i] = static_cast<float>(x[g0 + i] * scale * w);
        }
    }
    return out;
}

// Rotary embedding: pair i of a head turns by θ_i = pos · freq_scale · base^(−2i / n_rot) /
// factor_i (RoFormer eq. 15, ggml_rope_ext); dimensions past n_rot pass through. `factors`
// empty: none.
inline std::vector<float> host_rope(std::vector<float> x, int64_t n_heads, int64_t head_dim,
                                    const std::vector<int32_t>& positions, const RopeParams& p,
                                    const std::vector<float>& factors) {
    const int half = p.n_rot / 2;
    for (size_t t = 0; t < positions.size(); ++t) {
        for (int64_t h = 0; h < n_heads; ++h) {
            float* v = x.data() + (static_cast<int64_t>(t) * n_heads + h) * head_dim;
            for (int i = 0; i < half; ++i) {
                double theta = positions[t] * static_cast<double>(p.freq_scale) *
                               std::pow(static_cast<double>(p.freq_base), -2.0 * i / p.n_rot);
                if (!factors.empty()) theta /= factors[i];
                const int a = p.neox ? i : 2 * i, b = p.neox ? i + half : 2 * i + 1;
                const double x0 = v[a], x1 = v[b];
                v[a] = static_cast<float>(x0 * std::cos(theta) - x1 * std::sin(theta));
                v[b] = static_cast<float>(x0 * std::sin(theta) + x1 * std::cos(theta));
            }
        }
    }
    return x;
}

// Causal attention, the naive way: query row t of sequence seq[t] scores rows 0 … positions[t]
// of that sequence's cache, softmax, weighted sum of the value rows; query head h reads KV head
// h / (n_head / n_head_kv).
inline std::vector<float> host_attention(const std::vector<float>& q, const std::vector<std::vector<float>>& k,
                                         const std::vector<std::vector<float>>& v, const std::vector<int>& seq,
                                         const std::vector<int32_t>& positions, const AttentionParams& p) {
    const int64_t dk = p.head_dim_k, dv = p.head_dim_v, group = p.n_head / p.n_head_kv;
    const int64_t k_width = p.n_head_kv * dk, v_width = p.n_head_kv * dv;
    std::vector<float> out(positions.size() * static_cast<size_t>(p.n_head * dv));
    for (size_t t = 0; t < positions.size(); ++t) {
        const std::vector<float>& kc = k[static_cast<size_t>(seq[t])];
        const std::vector<float>& vc = v[static_cast<size_t>(seq[t])];
        for (int64_t h = 0; h < p.n_head; ++h) {
            const int64_t kvh = h / group;
            const float* qh = q.data() + (static_cast<int64_t>(t) * p.n_head + h) * dk;
            std::vector<double> w(static_cast<size_t>(positions[t]) + 1);
            for (size_t j = 0; j < w.size(); ++j) {
                double dot = 0;
                for (int64_t i = 0; i < dk; ++i) dot += static_cast<double>(qh[i]) * kc[j * k_width + kvh * dk + i];
                w[j] = dot * p.scale;
            }
            const double max = *std::max_element(w.begin(), w.end());
            double sum = 0;
            for (double& x : w) sum += x = std::exp(x - max);
            for (int64_t i = 0; i < dv; ++i) {
                double acc = 0;
                for (size_t j = 0; j < w.size(); ++j) acc += w[j] * vc[j * v_width + kvh * dv + i];
                out[(t * p.n_head + h) * dv + i] = static_cast<float>(acc / sum);
            }
        }
    }
    return out;
}

// The router: probabilities (softmax or sigmoid), the k most probable (ties to the lower id),
// optionally renormalized, times weights_scale; counts gain one per choice.
struct HostRoute {
    std::vector<float> ids, weights, counts;
};
inline HostRoute host_moe_route(const std::vector<float>& logits, int n_expert, int k, const MoeRouting& r,
                                const std::vector<int32_t>& counts) {
    HostRoute out;
    out.counts.assign(counts.begin(), counts.end());
    for (size_t t0 = 0; t0 < logits.size(); t0 += static_cast<size_t>(n_expert)) {
        std::vector<double> p(static_cast<size_t>(n_expert));
        const double max = *std::max_element(logits.begin() + t0, logits.begin() + t0 + n_expert);
        for (int e = 0; e < n_expert; ++e) {
            p[e] = r.gating == ExpertGating::Softmax ? std::exp(logits[t0 + e] - max) : sigmoid(logits[t0 + e]);
        }
        if (r.gating == ExpertGating::Softmax) {
            const double sum = std::accumulate(p.begin(), p.end(), 0.0);
            for (double& x : p) x /= sum;
        }
        std::vector<int> order(p.size());
        std::iota(order.begin(), order.end(), 0);
        std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return p[a] > p[b]; });
        double chosen = 0;
        for (int j = 0; j < k; ++j) chosen += p[order[j]];
        for (int j = 0; j < k; ++j) {
            out.ids.push_back(static_cast<float>(order[j]));
            out.weights.push_back(
                static_cast<float>(p[order[j]] / (r.normalize_top_k ? chosen : 1.0) * r.weights_scale));
            if (!out.counts.empty()) out.counts[order[j]] += 1;
        }
    }
    return out;
}

// Where a recurrent op's snapshots go: the state after batch token t (position positions[t]) to
// ring slot (positions[t] + 1) % depth, for the last `count` tokens; other slots keep `ring`.
inline void host_snapshot(std::vector<float>& ring, const std::vector<float>& state, int64_t t, int64_t n,
                          const std::vector<int32_t>& positions, int64_t depth, int64_t count) {
    if (t < n - count) return;
    const int64_t slot = (positions[static_cast<size_t>(t)] + 1) % depth;
    std::copy(state.begin(), state.end(), ring.begin() + slot * static_cast<int64_t>(state.size()));
}

// Causal depthwise conv then SiLU over x' = [state; x] (state: the d_conv − 1 rows before the
// batch, oldest first); the new state is x's last d_conv − 1 rows of x'.
struct HostRecurrent {
    std::vector<float> out, state, ring;
};
inline HostRecurrent host_ssm_conv(const std::vector<float>& x, int64_t channels, const std::vector<float>& weight,
                                   int64_t d_conv, const std::vector<float>& bias, const std::vector<float>& state,
                                   const std::vector<int32_t>& positions, std::vector<float> ring, int64_t depth,
                                   int64_t count) {
    const auto n = static_cast<int64_t>(positions.size());
    std::vector<float> xp = state;  // x' = [state; x]
    xp.insert(xp.end(), x.begin(), x.end());
    HostRecurrent r;
    r.out.resize(x.size());
    for (int64_t t = 0; t < n; ++t) {
        for (int64_t c = 0; c < channels; ++c) {
            double sum = bias.empty() ? 0.0 : bias[c];
            for (int64_t k = 0; k < d_conv; ++k)
                sum += static_cast<double>(weight[c * d_conv + k]) * xp[(t + k) * channels + c];
            r.out[t * channels + c] = static_cast<float>(silu(sum));
        }
        const std::vector<float> after(xp.begin() + (t + 1) * channels, xp.begin() + (t + d_conv) * channels);
        host_snapshot(ring, after, t, n, positions, depth, count);
    }
    r.state.assign(xp.end() - (d_conv - 1) * channels, xp.end());
    r.ring = std::move(ring);
    return r;
}

// The selective scan as backend.h writes it (Mamba eq. 2a-2b, Ā = exp(ΔA), B̄ = ΔB), one token
// after another.
inline HostRecurrent host_ssm_scan(const std::vector<float>& x, const std::vector<float>& dt,
                                   const std::vector<float>& A, const std::vector<float>& B,
                                   const std::vector<float>& C, const std::vector<float>& D, const SsmScanParams& p,
                                   const std::vector<float>& state0, const std::vector<int32_t>& positions,
                                   std::vector<float> ring, int64_t depth, int64_t count) {
    const int64_t P = p.head_dim, N = p.d_state, heads_per_group = p.n_head / p.n_group;
    const auto n = static_cast<int64_t>(positions.size());
    std::vector<double> s(state0.begin(), state0.end());
    HostRecurrent r;
    r.out.resize(x.size());
    for (int64_t t = 0; t < n; ++t) {
        for (int64_t h = 0; h < p.n_head; ++h) {
            const double delta = softplus(dt[t * p.n_head + h]);
            const int64_t g = h / heads_per_group;
            for (int64_t c = 0; c < P; ++c) {
                const double xv = x[(t * p.n_head + h) * P + c];
                double y = D[h] * xv;
                for (int64_t i = 0; i < N; ++i) {
                    const double a = p.a_per_state ? A[h * N + i] : A[h];
                    double& si = s[(h * P + c) * N + i];
                    si = std::exp(delta * a) * si + delta * B[(t * p.n_group + g) * N + i] * xv;
                    y += C[(t * p.n_group + g) * N + i] * si;
                }
                r.out[(t * p.n_head + h) * P + c] = static_cast<float>(y);
            }
        }
        r.state.assign(s.begin(), s.end());
        host_snapshot(ring, r.state, t, n, positions, depth, count);
    }
    r.ring = std::move(ring);
    return r;
}

}  // namespace strata::test
