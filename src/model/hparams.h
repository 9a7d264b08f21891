// Hyperparameters of every architecture, read from `<arch>.*` metadata keys with the defaults
// llama.cpp applies when a key is absent. One reader checks every integer key against a range
// (hparams.cpp), so a corrupt or hostile file fails here naming the file, the key, the value and
// the allowed range, before any size derived from it allocates or indexes anything.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "format/gguf.h"

namespace strata {

struct TransformerHparams {
    std::string arch;
    int64_t n_vocab = 0;
    int64_t n_embd = 0;
    int n_layer = 0;
    int64_t n_ff = 0;
    int n_head = 0, n_head_kv = 0;
    int head_dim_k = 0, head_dim_v = 0;
    float rms_eps = 1e-5f;
    int n_ctx_train = 0;
    RopeParams rope;
    // Mixture-of-experts layers (n_expert 0: dense). Each token runs n_expert_used experts of
    // hidden width n_ff_exp, plus a shared expert of width n_ff_shexp where the file has one.
    int n_expert = 0, n_expert_used = 0;
    int64_t n_ff_exp = 0, n_ff_shexp = 0;

    static TransformerHparams from_gguf(const GgufFile& f, bool rope_neox);
    std::string key(const char* suffix) const { return arch + "." + suffix; }
};

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

// Jamba's attention and feed-forward shape of every layer, in the form the Transformer blocks
// take: attention.head_count and head_count_kv are one number or one per layer, and a layer
// with head_count_kv 0 is a Mamba layer. Width, vocabulary and norm come from `ssm`.
std::vector<TransformerHparams> jamba_layer_hparams(const GgufFile& f, const SsmHparams& ssm);

}  // namespace strata
