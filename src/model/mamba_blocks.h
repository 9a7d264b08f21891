// The selective state-space blocks (Mamba-1 and Mamba-2 mixers) shared by the pure SSM models and
// the Jamba hybrid; their hyperparameters (SsmHparams) are read in hparams.cpp. Like the
// Transformer blocks, each applies its own pre-norm and adds its output to the residual stream
// x [n_tokens][n_embd] in place; its recurrent state lives in the sequence's SequenceState, one
// RecurrentLayer per block.
#pragma once

#include <string>
#include <vector>

#include "backend/backend.h"
#include "model/hparams.h"
#include "model/model.h"
#include "model/weights.h"
#include "state/sequence_state.h"

namespace strata {

// Mamba-1 (Gu & Dao 2023, Algorithm 2): x += out_proj(y ⊙ silu(z)) where [x_in, z] = in_proj(h),
// h = rmsnorm(x), u = silu(conv1d(x_in)), (Δ_low, B, C) = x_proj(u), Δ = softplus(dt_proj(Δ_low)),
// y = selective_scan(u, Δ, A, B, C) + D ⊙ u. Jamba normalizes Δ_low, B and C first (dt/b/c norms).
struct Mamba1Mixer {
    std::vector<float> norm;
    TensorView in_x, in_z;                       // row halves of ssm_in
    std::vector<float> conv_weight;              // [d_inner][d_conv]
    std::vector<float> conv_bias;                // [d_inner]; empty when absent
    TensorView x_dt, x_b, x_c;                   // row blocks of ssm_x: Δ_low [dt_rank], B [d_state], C [d_state]
    std::vector<float> dt_norm, b_norm, c_norm;  // Jamba's RMSNorm weights; empty when absent
    bool unit_norms = false;                     // dt_b_c_rms without weights
    TensorView dt_proj;                          // [dt_rank → d_inner]
    std::vector<float> dt_bias, A, D;            // A = −exp(A_log) [d_inner][d_state], as stored
    TensorView out;

    static Mamba1Mixer load(const WeightLoader& w, const std::string& prefix, const SsmHparams& hp);
    static LayerShape state_shape(const SsmHparams& hp);
    void forward(Backend& backend, const SsmHparams& hp, SequenceState& state, int layer, float* x, int64_t n) const;
};

// Mamba-2 (Dao & Gu 2024, "Transformers are SSMs", section 7): [z, xBC, Δ] = in_proj(h),
// xBC = silu(conv1d(xBC)) split into x, B, C; y = SSD(x, softplus(Δ + dt_bias), A, B, C) + D·x with
// one scalar A per head; x += out_proj(rmsnorm_groups(y ⊙ silu(z))).
struct Mamba2Mixer {
    std::vector<float> norm;
    TensorView in_z, in_xbc, in_dt;  // row blocks of ssm_in
    std::vector<float> conv_weight;  // [d_inner + 2·n_group·d_state][d_conv]
    std::vector<float> conv_bias;
    std::vector<float> dt_bias, A, D;  // [n_head] each
    std::vector<float> gate_norm;      // ssm_norm [d_inner]
    TensorView out;

    static Mamba2Mixer load(const WeightLoader& w, const std::string& prefix, const SsmHparams& hp);
    static LayerShape state_shape(const SsmHparams& hp);
    void forward(Backend& backend, const SsmHparams& hp, SequenceState& state, int layer, float* x, int64_t n) const;
};

// How a recurrent layer runs a batch of n tokens: all but the last k together, then the last k
// one at a time, each followed by a snapshot (k = SequenceState::snapshot_tokens(n)).
struct ScanSegment {
    int64_t begin = 0, end = 0;
    bool snapshot = false;
};
std::vector<ScanSegment> scan_segments(int64_t n, int64_t k);

// A tensor read whole into floats (small SSM parameters: conv weights, A, D, norms), with its
// shape checked like WeightLoader::require.
std::vector<float> load_floats(const WeightLoader& w, const std::string& name, std::initializer_list<int64_t> shape);
// Rows [begin, end) of a 2-D weight, as a weight of its own (one matmul per block of outputs).
TensorView row_block(const TensorView& t, int64_t begin, int64_t end);

// One line for --verbose (Model::usage_report): the bytes of a sequence's recurrent state, the
// same at every position, and of its KV cache per position where the model has attention.
std::string state_size_report(const Model& model);

}  // namespace strata
