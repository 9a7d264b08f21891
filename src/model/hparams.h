// Hyperparameters of the Transformer family read from `<arch>.*` metadata keys, with the
// defaults llama.cpp applies when a key is absent.
#pragma once

#include <cstdint>
#include <string>

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

}  // namespace strata
