// The Transformer's building blocks, shared by every architecture that has them (llama, MoE
// models, Jamba's attention layers). Each block applies its own pre-norm and adds its output to
// the residual stream x [n_tokens][n_embd] in place.
#pragma once

#include <span>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "model/hparams.h"
#include "model/model.h"
#include "model/weights.h"
#include "state/sequence_state.h"

namespace strata {

// x += Wo · attention(rope(Wq·h), rope(Wk·h), Wv·h) with h = rmsnorm(x); keys and values of the
// new tokens are written into the sequence's cache rows n_past … n_past+n-1.
struct AttentionBlock {
    std::vector<float> norm;
    TensorView wq, wk, wv, wo;
    std::vector<float> bq, bk, bv;  // attention biases (qwen2); empty when absent

    static AttentionBlock load(const WeightLoader& w, const std::string& prefix, const TransformerHparams& hp);
    void forward(Backend& backend, const TransformerHparams& hp, KvLayer& kv, int64_t n_past, const int32_t* positions,
                 float* x, int64_t n) const;
    // One new token for each of several sequences (beam search): row i of x belongs to the
    // sequence whose cache is kvs[i], at position positions[i].
    void forward_rows(Backend& backend, const TransformerHparams& hp, std::span<KvLayer* const> kvs,
                      const int32_t* positions, float* x) const;

private:
    // h = rmsnorm(x); q, k, v = projections of h (+ biases), rope applied to q and k.
    void project(Backend& backend, const TransformerHparams& hp, const float* x, int64_t n, const int32_t* positions,
                 float* q, float* k, float* v) const;
};

// x += W_down · (silu(W_gate·h) ⊙ W_up·h) with h = rmsnorm(x): the SwiGLU feed-forward.
struct FeedForwardBlock {
    std::vector<float> norm;
    TensorView gate, up, down;

    static FeedForwardBlock load(const WeightLoader& w, const std::string& prefix, const TransformerHparams& hp);
    void forward(Backend& backend, const TransformerHparams& hp, float* x, int64_t n) const;
};

// The SwiGLU expert computation on already-normalized input h, shared with the MoE experts:
// out = down · (silu(gate·h) ⊙ up·h).
void swiglu_ffn(Backend& backend, const TensorView& gate, const TensorView& up, const TensorView& down, const float* h,
                int64_t n, float* out);

// The final RMSNorm and the LM head; the head is the token embedding when the file has no
// output.weight (tied embeddings).
struct OutputHead {
    std::vector<float> norm;
    TensorView output;

    static OutputHead load(const WeightLoader& w, int64_t n_embd, int64_t n_vocab, const TensorView& token_embd);
    void forward(Backend& backend, const float* x, int64_t n, int64_t n_embd, float eps, Logits which,
                 std::vector<float>& logits) const;
};

}  // namespace strata
