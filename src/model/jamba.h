// Jamba (Lieber et al. 2024): a hybrid stack whose layers each pick a mixer, attention (with a
// KV cache and no positional encoding: the Mamba layers carry order) or a Mamba-1 mixer with
// RMS-normalized Δ, B and C, and a feed-forward, dense SwiGLU or mixture of experts. The file
// decides per layer: attention where attention.head_count_kv[layer] > 0, experts where the layer
// has a router (ffn_gate_inp).
#pragma once

#include <memory>

#include "model/model.h"

namespace strata {

std::unique_ptr<Model> make_jamba(const GgufFile& file, Backend& backend);

}  // namespace strata
