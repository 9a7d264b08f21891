// The selective state-space blocks (Mamba-1 and Mamba-2 mixers) shared by the pure SSM models and
// the Jamba hybrid; their hyperparameters (SsmHparams) are read in hparams.cpp. Like the
// Transformer blocks, each applies its own pre-norm and adds its output to the residual stream
// x [n_embd, n_tokens] in place; its recurrent state lives in the sequence's SequenceState, one
// RecurrentLayer per block, and the conv and scan ops record its rollback snapshots themselves.
#pragma once

#include <string>
#include <vector>

#include "backend/backend.h"
#include "model/blocks.h"
#include "model/hparams.h"
#include "model/model.h"
#include "model/weights.h"
#include "state/sequence_state.h"

namespace strata {

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
