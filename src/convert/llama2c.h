// llama2.c checkpoints (Karpathy's run.c format) and its tokenizer.bin, converted to a llama GGUF.
// The checkpoint is a header of 7 int32 — dim, hidden_dim, n_layers, n_heads, n_kv_heads,
// vocab_size (negative: the classifier is stored separately instead of shared with the
// embedding), seq_len — then float32 weights in run.c's order, each weight of all layers together.
// llama2.c's rope rotates pairs (2i, 2i+1), which is GGUF's llama convention, so Q and K are
// written unpermuted (unlike Hugging Face checkpoints).
#pragma once

#include <string>

#include "convert/quantize_model.h"
#include "format/sentencepiece_model.h"

namespace strata {

struct Llama2cConfig {
    int dim = 0, hidden_dim = 0, n_layers = 0, n_heads = 0, n_kv_heads = 0, vocab_size = 0, seq_len = 0;
    bool shared_classifier = true;
};

// Reads and checks the header; throws Error naming the file and field.
Llama2cConfig read_llama2c_config(const std::string& path);

// llama2.c's tokenizer.bin: int32 max_token_length, then per token float32 score, int32 length and
// the bytes. Its export wrote spaces for SentencePiece's "▁" and "\n<s>\n" / "\n</s>\n" for BOS
// and EOS; both are undone, so the pieces read as the tokenizer.model they came from.
SentencePieceModel read_llama2c_tokenizer(const std::string& path, int vocab_size);

// `vocab`: a tokenizer.bin or a tokenizer.model; empty for a byte-level placeholder (the first
// 259 ids of a llama2.c byte-fallback vocabulary: <unk>, <s>, </s>, <0x00>…<0xFF>), noted in
// the plan's notes.
ModelPlan plan_llama2c_conversion(const std::string& checkpoint, const std::string& vocab);

}  // namespace strata
