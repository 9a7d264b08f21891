#include "model/blocks.h"

#include <algorithm>
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

namespace {

AttentionParams attention_params(const TransformerHparams& hp) {
    AttentionParams ap;
    ap.n_head = hp.n_head;
    ap.n_head_kv = hp.n_head_kv;
    ap.head_dim_k = hp.head_dim_k;
    ap.head_dim_v = hp.head_dim_v;
    ap.scale = 1.0f / std::sqrt(static_cast<float>(hp.head_dim_k));
    return ap;
}

}  // namespace

void AttentionBlock::project(Backend& backend, const TransformerHparams& hp, const float* x, int64_t n,
                             const int32_t* positions, float* q, float* k, float* v) const {
    const int64_t d = hp.n_embd;
    std::vector<float> h(static_cast<size_t>(n * d));
    backend.rmsnorm(x, norm.data(), n, d, hp.rms_eps, h.data());
    backend.matmul(wq, h.data(), n, q);
    backend.matmul(wk, h.data(), n, k);
    backend.matmul(wv, h.data(), n, v);
    if (!bq.empty()) backend.add_bias(q, bq.data(), n, wq.ne[1]);
    if (!bk.empty()) backend.add_bias(k, bk.data(), n, wk.ne[1]);
    if (!bv.empty()) backend.add_bias(v, bv.data(), n, wv.ne[1]);
    backend.rope(q, n, hp.n_head, hp.head_dim_k, positions, hp.rope);
    backend.rope(k, n, hp.n_head_kv, hp.head_dim_k, positions, hp.rope);
}

void AttentionBlock::forward(Backend& backend, const TransformerHparams& hp, KvLayer& kv, int64_t n_past,
                             const int32_t* positions, float* x, int64_t n) const {
    const int64_t d = hp.n_embd;
    std::vector<float> q(static_cast<size_t>(n * wq.ne[1]));
    std::vector<float> attn(static_cast<size_t>(n * wo.ne[0])), proj(static_cast<size_t>(n * d));
    // The new keys and values go straight into this sequence's cache rows.
    project(backend, hp, x, n, positions, q.data(), kv.k_row(n_past), kv.v_row(n_past));
    backend.attention(q.data(), n, kv.k.data(), kv.v.data(), n_past, attention_params(hp), attn.data());
    backend.matmul(wo, attn.data(), n, proj.data());
    backend.add(x, proj.data(), n * d);
}

void AttentionBlock::forward_rows(Backend& backend, const TransformerHparams& hp, std::span<KvLayer* const> kvs,
                                  const int32_t* positions, float* x) const {
    const int64_t n = static_cast<int64_t>(kvs.size()), d = hp.n_embd;
    const int64_t q_width = wq.ne[1], k_width = wk.ne[1], v_width = wv.ne[1], o_width = wo.ne[0];
    std::vector<float> q(static_cast<size_t>(n * q_width)), k(static_cast<size_t>(n * k_width));
    std::vector<float> v(static_cast<size_t>(n * v_width)), attn(static_cast<size_t>(n * o_width));
    std::vector<float> proj(static_cast<size_t>(n * d));
    project(backend, hp, x, n, positions, q.data(), k.data(), v.data());
    const AttentionParams ap = attention_params(hp);
    for (int64_t i = 0; i < n; ++i) {  // each row attends over its own sequence's cache
        KvLayer& kv = *kvs[static_cast<size_t>(i)];
        std::copy_n(k.data() + i * k_width, k_width, kv.k_row(positions[i]));
        std::copy_n(v.data() + i * v_width, v_width, kv.v_row(positions[i]));
        backend.attention(q.data() + i * q_width, 1, kv.k.data(), kv.v.data(), positions[i], ap, attn.data() + i * o_width);
    }
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

OutputHead OutputHead::load(const WeightLoader& w, int64_t n_embd, int64_t n_vocab, const TensorView& token_embd) {
    OutputHead o;
    o.norm = w.require_vector("output_norm.weight", n_embd);
    o.output = w.optional("output.weight", {n_embd, n_vocab});
    if (o.output.empty()) o.output = token_embd;  // tied embeddings
    return o;
}

void OutputHead::forward(Backend& backend, const float* x, int64_t n, int64_t n_embd, float eps, Logits which,
                         std::vector<float>& logits) const {
    const int64_t first = which == Logits::All ? 0 : n - 1;
    const int64_t n_out = n - first;
    std::vector<float> h(static_cast<size_t>(n_out * n_embd));
    backend.rmsnorm(x + first * n_embd, norm.data(), n_out, n_embd, eps, h.data());
    logits.resize(static_cast<size_t>(n_out * output.ne[1]));
    backend.matmul(output, h.data(), n_out, logits.data());
}

}  // namespace strata
