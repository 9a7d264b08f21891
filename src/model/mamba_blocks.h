// The selective state-space blocks (Mamba-1 and Mamba-2 mixers) shared by the pure SSM models and
// the Jamba hybrid, and the hyperparameters they read. Like the Transformer blocks, each applies
// its own pre-norm and adds its output to the residual stream x [n_tokens][n_embd] in place; its
// recurrent state lives in the sequence's SequenceState, one RecurrentLayer per block.
#pragma once

#include <string>
#include <vector>

#include "backend/backend.h"
#include "model/blocks.h"
#include "model/model.h"
#include "model/weights.h"
#include "state/sequence_state.h"

namespace strata {

// `<arch>.ssm.*` metadata (llama.cpp's names). Mamba-2 files carry the head count in
// ssm.time_step_rank (Mamba-2 has no low-rank Δ projection); when absent it comes from the shape
// of blk.0.ssm_dt.bias.
struct SsmHparams {
    std::string arch;
    int64_t n_vocab = 0, n_embd = 0;
    int n_layer = 0;
    int n_ctx_train = 0;
    float rms_eps = 1e-5f;
    int d_conv = 0;
    int64_t d_inner = 0, d_state = 0;
    int64_t dt_rank = 0;               // Mamba-1: rank of the Δ projection
    int64_t n_head = 0, head_dim = 0;  // Mamba-2: heads of head_dim channels
    int64_t n_group = 1;               // Mamba-2: B/C groups
    bool dt_b_c_rms = false;           // Falcon-Mamba: unweighted RMSNorm on Δ, B and C

    static SsmHparams from_gguf(const GgufFile& f, bool mamba2);
    std::string key(const char* suffix) const { return arch + "." + suffix; }
};

// The vocabulary size: <arch>.vocab_size, else the tokenizer's, else token_embd's rows.
int64_t vocab_size(const GgufFile& f, const std::string& arch);

// Mamba-1 (Gu & Dao 2023, Algorithm 2): x += out_proj(y ⊙ silu(z)) where [x_in, z] = in_proj(h),
// h = rmsnorm(x), u = silu(conv1d(x_in)), (Δ_low, B, C) = x_proj(u), Δ = softplus(dt_proj(Δ_low)),
// y = selective_scan(u, Δ, A, B, C) + D ⊙ u. Jamba normalizes Δ_low, B and C first (dt/b/c norms).
struct Mamba1Mixer {
    Tensor norm;
    Tensor in;                      // ssm_in: rows x_in [d_inner], then z [d_inner]
    Tensor conv_weight;             // F32 [d_conv, d_inner]
    Tensor conv_bias;               // [d_inner]; empty when absent
    Tensor x_proj;                  // ssm_x: rows Δ_low [dt_rank], B [d_state], C [d_state]
    Tensor dt_norm, b_norm, c_norm;  // Jamba's RMSNorm weights; empty when absent
    bool unit_norms = false;         // dt_b_c_rms without weights
    Tensor dt_proj;                  // [dt_rank → d_inner]
    Tensor dt_bias, A, D;            // A = −exp(A_log) [d_state, d_inner], as stored
    Tensor out;

    static Mamba1Mixer load(const WeightLoader& w, const std::string& prefix, const SsmHparams& hp);
    static LayerShape state_shape(const SsmHparams& hp);
    void forward(Pass& pass, const SsmHparams& hp, const SequenceState& state, int layer, const Tensor& x) const;
};

// Mamba-2 (Dao & Gu 2024, "Transformers are SSMs", section 7): [z, xBC, Δ] = in_proj(h),
// xBC = silu(conv1d(xBC)) split into x, B, C; y = SSD(x, softplus(Δ + dt_bias), A, B, C) + D·x with
// one scalar A per head; x += out_proj(rmsnorm_groups(y ⊙ silu(z))).
struct Mamba2Mixer {
    Tensor norm;
    Tensor in;           // ssm_in: rows z [d_inner], xBC [d_inner + 2·n_group·d_state], Δ [n_head]
    Tensor conv_weight;  // F32 [d_conv, d_inner + 2·n_group·d_state]
    Tensor conv_bias;
    Tensor dt_bias, A, D;  // [n_head] each
    Tensor gate_norm;      // ssm_norm [d_inner]
    Tensor out;

    static Mamba2Mixer load(const WeightLoader& w, const std::string& prefix, const SsmHparams& hp);
    static LayerShape state_shape(const SsmHparams& hp);
    void forward(Pass& pass, const SsmHparams& hp, const SequenceState& state, int layer, const Tensor& x) const;
};

// One line for --verbose (Model::usage_report): the bytes of a sequence's recurrent state, the
// same at every position, and of its KV cache per position where the model has attention.
std::string state_size_report(const Model& model);

}  // namespace strata
