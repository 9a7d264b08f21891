// The Llama-family decoder (llama, mistral, qwen2, and their mixture-of-experts forms Mixtral and
// qwen2moe): RMSNorm → attention with RoPE and a KV cache (GQA/MQA) → residual → RMSNorm →
// SwiGLU FFN, or experts where a layer has a router (ffn_gate_inp) → residual; then the output
// norm and head.
#pragma once

#include <memory>

#include "model/model.h"
#include "model/moe.h"

namespace strata {

// `moe` is the architecture's routing where the file does not state it (moe_routing_from_gguf).
std::unique_ptr<Model> make_transformer(const GgufFile& file, Backend& backend, bool rope_neox,
                                        const MoeRouting& moe = {});

}  // namespace strata
