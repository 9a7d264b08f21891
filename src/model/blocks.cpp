#include "model/blocks.h"

#include <cmath>

namespace strata {

AttentionBlock AttentionBlock::load(const WeightLoader& w, const std::string& p, const TransformerHparams& hp) {
    const int64_t d = hp.n_embd;
    const int64_t q_width = int64_t{hp.n_head} * hp.head_dim_k;
    const int64_t k_width = int64_t{hp.n_head_kv} * hp.head_dim_k;
    const int64_t v_width = int64_t{hp.n_head_kv} * hp.head_dim_v;
    const int64_t o_width = int64_t{hp.n_head} * hp.head_dim_v;
    AttentionBlock b;
    b.norm = w.require_vector(p + "attn_norm.weight", d);
    b.wq = w.require(p + "attn_q.weight", {d, q_width});
    b.wk = w.require(p + "attn_k.weight", {d, k_width});
    b.wv = w.require(p + "attn_v.weight", {d, v_width});
    b.wo = w.require(p + "attn_output.weight", {o_width, d});
    b.bq = w.optional_vector(p + "attn_q.bias", q_width);
    b.bk = w.optional_vector(p + "attn_k.bias", k_width);
    b.bv = w.optional_vector(p + "attn_v.bias", v_width);
    return b;
}

void AttentionBlock::forward(Backend& backend, const TransformerHparams& hp, KvLayer& kv, int64_t n_past,
                             const int32_t* positions, float* x, int64_t n) const {
    const int64_t d = hp.n_embd;
    const int64_t q_width = int64_t{hp.n_head} * hp.head_dim_k;
    const int64_t o_width = int64_t{hp.n_head} * hp.head_dim_v;
    std::vector<float> h(static_cast<size_t>(n * d)), q(static_cast<size_t>(n * q_width));
    std::vector<float> attn(static_cast<size_t>(n * o_width)), proj(static_cast<size_t>(n * d));
    float* k_new = kv.k_row(n_past);
    float* v_new = kv.v_row(n_past);
    backend.rmsnorm(x, norm.data(), n, d, hp.rms_eps, h.data());
    backend.matmul(wq, h.data(), n, q.data());
    backend.matmul(wk, h.data(), n, k_new);
    backend.matmul(wv, h.data(), n, v_new);
    if (!bq.empty()) backend.add_bias(q.data(), bq.data(), n, q_width);
    if (!bk.empty()) backend.add_bias(k_new, bk.data(), n, kv.k_width);
    if (!bv.empty()) backend.add_bias(v_new, bv.data(), n, kv.v_width);
    backend.rope(q.data(), n, hp.n_head, hp.head_dim_k, positions, hp.rope);
    backend.rope(k_new, n, hp.n_head_kv, hp.head_dim_k, positions, hp.rope);
    AttentionParams ap;
    ap.n_head = hp.n_head;
    ap.n_head_kv = hp.n_head_kv;
    ap.head_dim_k = hp.head_dim_k;
    ap.head_dim_v = hp.head_dim_v;
    ap.scale = 1.0f / std::sqrt(static_cast<float>(hp.head_dim_k));
    backend.attention(q.data(), n, kv.k.data(), kv.v.data(), n_past, ap, attn.data());
    backend.matmul(wo, attn.data(), n, proj.data());
    backend.add(x, proj.data(), n * d);
}

FeedForwardBlock FeedForwardBlock::load(const WeightLoader& w, const std::string& p, const TransformerHparams& hp) {
    FeedForwardBlock b;
    b.norm = w.require_vector(p + "ffn_norm.weight", hp.n_embd);
    b.gate = w.require(p + "ffn_gate.weight", {hp.n_embd, hp.n_ff});
    b.up = w.require(p + "ffn_up.weight", {hp.n_embd, hp.n_ff});
    b.down = w.require(p + "ffn_down.weight", {hp.n_ff, hp.n_embd});
    return b;
}

void swiglu_ffn(Backend& backend, const TensorView& gate, const TensorView& up, const TensorView& down, const float* h,
                int64_t n, float* out) {
    const int64_t n_ff = gate.ne[1];
    std::vector<float> g(static_cast<size_t>(n * n_ff)), u(g.size());
    backend.matmul(gate, h, n, g.data());
    backend.matmul(up, h, n, u.data());
    backend.swiglu(g.data(), u.data(), n * n_ff, g.data());
    backend.matmul(down, g.data(), n, out);
}

void FeedForwardBlock::forward(Backend& backend, const TransformerHparams& hp, float* x, int64_t n) const {
    const int64_t d = hp.n_embd;
    std::vector<float> h(static_cast<size_t>(n * d)), out(h.size());
    backend.rmsnorm(x, norm.data(), n, d, hp.rms_eps, h.data());
    swiglu_ffn(backend, gate, up, down, h.data(), n, out.data());
    backend.add(x, out.data(), n * d);
}

}  // namespace strata
