#include "model/blocks.h"

#include <cmath>

#include "util/error.h"

namespace strata {

Tensor begin_pass(Pass& pass, const Tensor& token_embd, std::span<const int32_t> tokens,
                  std::span<const int32_t> positions) {
    const int64_t n = static_cast<int64_t>(tokens.size()), n_vocab = token_embd.ne[1];
    if (n == 0) fail("forward pass with no tokens");
    for (int32_t id : tokens) {
        if (id < 0 || id >= n_vocab) fail("token id ", id, " is outside the vocabulary (", n_vocab, " tokens)");
    }
    pass.ws.reset();
    const Tensor ids = pass.ws.i32(n);
    pass.backend.write(ids, tokens.data(), tokens.size_bytes());
    pass.positions = pass.ws.i32(n);
    pass.backend.write(pass.positions, positions.data(), positions.size_bytes());
    const Tensor x = pass.ws.f32(token_embd.ne[0], n);
    pass.backend.get_rows(token_embd, ids, x);
    return x;
}

std::span<const int32_t> sequence_positions(int64_t n_past, int64_t n, std::vector<int32_t>& out) {
    out.resize(static_cast<size_t>(n));
    for (int64_t t = 0; t < n; ++t) out[static_cast<size_t>(t)] = static_cast<int32_t>(n_past + t);
    return out;
}

AttentionBlock AttentionBlock::load(const WeightLoader& w, const std::string& p, const TransformerHparams& hp) {
    const int64_t d = hp.n_embd;
    const int64_t q_width = int64_t{hp.n_head} * hp.head_dim_k;
    const int64_t k_width = int64_t{hp.n_head_kv} * hp.head_dim_k;
    const int64_t v_width = int64_t{hp.n_head_kv} * hp.head_dim_v;
    const int64_t o_width = int64_t{hp.n_head} * hp.head_dim_v;
    AttentionBlock b;
    b.norm = w.require_f32(p + "attn_norm.weight", {d});
    b.wq = w.require(p + "attn_q.weight", {d, q_width});
    b.wk = w.require(p + "attn_k.weight", {d, k_width});
    b.wv = w.require(p + "attn_v.weight", {d, v_width});
    b.wo = w.require(p + "attn_output.weight", {o_width, d});
    b.bq = w.optional_f32(p + "attn_q.bias", {q_width});
    b.bk = w.optional_f32(p + "attn_k.bias", {k_width});
    b.bv = w.optional_f32(p + "attn_v.bias", {v_width});
    return b;
}

void AttentionBlock::forward(Pass& pass, const TransformerHparams& hp, std::span<const KvCache> caches,
                             const Tensor& x) const {
    Backend& be = pass.backend;
    Workspace::Scope scope(pass.ws);
    const int64_t n = pass.n_tokens();
    const Tensor h = pass.ws.f32(hp.n_embd, n);
    const Tensor q = pass.ws.f32(wq.ne[1], n), k = pass.ws.f32(wk.ne[1], n), v = pass.ws.f32(wv.ne[1], n);
    be.rmsnorm(x, norm, hp.rms_eps, h);
    be.matmul(wq, h, q);
    be.matmul(wk, h, k);
    be.matmul(wv, h, v);
    if (!bq.empty()) be.add_bias(q, bq);
    if (!bk.empty()) be.add_bias(k, bk);
    if (!bv.empty()) be.add_bias(v, bv);
    if (hp.rope.n_rot > 0) {
        be.rope(q, hp.n_head, pass.positions, hp.rope);
        be.rope(k, hp.n_head_kv, pass.positions, hp.rope);
    }
    be.kv_write(caches, k, v, pass.positions);

    AttentionParams ap;
    ap.n_head = hp.n_head;
    ap.n_head_kv = hp.n_head_kv;
    ap.head_dim_k = hp.head_dim_k;
    ap.head_dim_v = hp.head_dim_v;
    ap.scale = 1.0f / std::sqrt(static_cast<float>(hp.head_dim_k));
    const Tensor attn = pass.ws.f32(wo.ne[0], n);
    be.attention(q, caches, pass.positions, ap, attn);
    be.matmul(wo, attn, h);  // h is free again: it takes the projection
    be.add(x, h);
}

FeedForwardBlock FeedForwardBlock::load(const WeightLoader& w, const std::string& p, const TransformerHparams& hp) {
    FeedForwardBlock b;
    b.norm = w.require_f32(p + "ffn_norm.weight", {hp.n_embd});
    b.gate = w.require(p + "ffn_gate.weight", {hp.n_embd, hp.n_ff});
    b.up = w.require(p + "ffn_up.weight", {hp.n_embd, hp.n_ff});
    b.down = w.require(p + "ffn_down.weight", {hp.n_ff, hp.n_embd});
    return b;
}

void swiglu_ffn(Pass& pass, const Tensor& gate, const Tensor& up, const Tensor& down, const Tensor& h,
                const Tensor& out) {
    Workspace::Scope scope(pass.ws);
    const int64_t n = h.ne[1], n_ff = gate.ne[1];
    const Tensor g = pass.ws.f32(n_ff, n), u = pass.ws.f32(n_ff, n);
    pass.backend.matmul(gate, h, g);
    pass.backend.matmul(up, h, u);
    pass.backend.swiglu(g, u, g);
    pass.backend.matmul(down, g, out);
}

void FeedForwardBlock::forward(Pass& pass, const TransformerHparams& hp, const Tensor& x) const {
    Workspace::Scope scope(pass.ws);
    const Tensor h = pass.ws.f32(hp.n_embd, pass.n_tokens()), out = pass.ws.f32(hp.n_embd, pass.n_tokens());
    pass.backend.rmsnorm(x, norm, hp.rms_eps, h);
    swiglu_ffn(pass, gate, up, down, h, out);
    pass.backend.add(x, out);
}

OutputHead OutputHead::load(const WeightLoader& w, int64_t n_embd, int64_t n_vocab, const Tensor& token_embd) {
    OutputHead o;
    o.norm = w.require_f32("output_norm.weight", {n_embd});
    o.output = w.optional("output.weight", {n_embd, n_vocab});
    if (o.output.empty()) o.output = token_embd;  // tied embeddings
    return o;
}

void OutputHead::forward(Pass& pass, const Tensor& x, float eps, Logits which, std::vector<float>& logits) const {
    const int64_t n = x.ne[1];
    const Tensor rows = which == Logits::All ? x : x.rows(n - 1, n);
    const Tensor h = pass.ws.f32(rows.ne[0], rows.ne[1]), out = pass.ws.f32(output.ne[1], rows.ne[1]);
    pass.backend.rmsnorm(rows, norm, eps, h);
    pass.backend.matmul(output, h, out);
    logits.resize(static_cast<size_t>(out.n_elements()));
    pass.backend.read(out, logits.data(), logits.size() * sizeof(float));
}

}  // namespace strata
