// The pure state-space language models: token embedding → n_layer × (x += mixer(rmsnorm(x))) →
// final RMSNorm → LM head, with Mamba-1 mixers (arch `mamba`) or Mamba-2 mixers (arch `mamba2`).
// No KV cache: a sequence's state is the same size at every position.
#pragma once

#include <memory>

#include "model/model.h"

namespace strata {

std::unique_ptr<Model> make_mamba(const GgufFile& file, Backend& backend);
std::unique_ptr<Model> make_mamba2(const GgufFile& file, Backend& backend);

}  // namespace strata
