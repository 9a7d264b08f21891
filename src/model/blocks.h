// The Transformer's building blocks, shared by every architecture that has them (llama, MoE
// models, Jamba's attention layers), and the frame of a forward pass. Each block applies its own
// pre-norm and adds its output to the residual stream x [n_embd, n_tokens] in place, taking its
// temporaries from the pass's workspace.
#pragma once

#include <span>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "backend/workspace.h"
#include "model/hparams.h"
#include "model/model.h"
#include "model/weights.h"
#include "state/sequence_state.h"

namespace strata {

// What every block's forward needs besides its weights: the backend, this pass's workspace and
// the positions of the batch's tokens (I32 [n] in backend memory).
struct Pass {
    Backend& backend;
    Workspace& ws;
    Tensor positions;
    int64_t n_tokens() const { return positions.ne[0]; }
};

// Starts a pass: resets the workspace, checks the token ids against the vocabulary, and puts the
// ids and positions into backend memory. The returned x [n_embd, n] holds the tokens' embeddings.
Tensor begin_pass(Pass& pass, const Tensor& token_embd, std::span<const int32_t> tokens,
                  std::span<const int32_t> positions);

// x += Wo · attention(rope(Wq·h), rope(Wk·h), Wv·h) with h = rmsnorm(x); the new tokens' keys and
// values are stored at their positions first. caches: one (every row is one sequence's) or one
// per row (beam search: row i extends the sequence whose cache is caches[i]).
struct AttentionBlock {
    Tensor norm;
    Tensor wq, wk, wv, wo;
    Tensor bq, bk, bv;  // attention biases (qwen2); empty when absent

    static AttentionBlock load(const WeightLoader& w, const std::string& prefix, const TransformerHparams& hp);
    void forward(Pass& pass, const TransformerHparams& hp, std::span<const KvCache> caches, const Tensor& x) const;
};

// x += W_down · (silu(W_gate·h) ⊙ W_up·h) with h = rmsnorm(x): the SwiGLU feed-forward.
struct FeedForwardBlock {
    Tensor norm;
    Tensor gate, up, down;

    static FeedForwardBlock load(const WeightLoader& w, const std::string& prefix, const TransformerHparams& hp);
    void forward(Pass& pass, const TransformerHparams& hp, const Tensor& x) const;
};

// The SwiGLU expert computation on already-normalized input h, shared with the MoE shared
// expert: out = down · (silu(gate·h) ⊙ up·h).
void swiglu_ffn(Pass& pass, const Tensor& gate, const Tensor& up, const Tensor& down, const Tensor& h,
                const Tensor& out);

// The final RMSNorm and the LM head; the head is the token embedding when the file has no
// output.weight (tied embeddings). forward() reads the logits back to the host: the pass's end.
struct OutputHead {
    Tensor norm;
    Tensor output;

    static OutputHead load(const WeightLoader& w, int64_t n_embd, int64_t n_vocab, const Tensor& token_embd);
    void forward(Pass& pass, const Tensor& x, float eps, Logits which, std::vector<float>& logits) const;
};

// The positions n_past … n_past + n − 1, in `out` (reused between passes).
std::span<const int32_t> sequence_positions(int64_t n_past, int64_t n, std::vector<int32_t>& out);

}  // namespace strata
