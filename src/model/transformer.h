// The Llama-family decoder (llama, mistral, qwen2): RMSNorm → attention with RoPE and a KV cache
// (GQA/MQA) → residual → RMSNorm → SwiGLU FFN → residual; then the output norm and head.
#pragma once

#include <memory>

#include "model/model.h"

namespace strata {

std::unique_ptr<Model> make_transformer(const GgufFile& file, Backend& backend, bool rope_neox);

}  // namespace strata
