// SentencePiece's tokenizer.model: a serialized ModelProto (protocol buffers), read with a small
// wire-format reader instead of libprotobuf. Only the fields a GGUF vocabulary needs are kept.
// Schema: https://github.com/google/sentencepiece/blob/master/src/sentencepiece_model.proto
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "format/gguf.h"

namespace strata {

// ModelProto.SentencePiece.Type; the GGUF token types (tokenizer.ggml.token_type) use the same
// numbers.
enum class PieceType : int32_t { Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 };

struct SentencePieceModel {
    struct Piece {
        std::string text;
        float score = 0;
        PieceType type = PieceType::Normal;
    };
    std::vector<Piece> pieces;
    // TrainerSpec (field numbers in the comments), with the schema's defaults.
    int32_t model_type = 1;                                   // 3: UNIGRAM=1, BPE=2, WORD=3, CHAR=4
    bool byte_fallback = false;                               // 35
    int32_t unk_id = 0, bos_id = 1, eos_id = 2, pad_id = -1;  // 40..43; -1 = none
    // NormalizerSpec
    bool add_dummy_prefix = true;          // 3
    bool remove_extra_whitespaces = true;  // 4
    bool escape_whitespaces = true;        // 5
};

// Parses a tokenizer.model; throws Error naming the file and the byte offset of malformed data.
SentencePieceModel read_sentencepiece_model(const std::string& path);
SentencePieceModel parse_sentencepiece_model(const std::string& bytes, const std::string& name);

// The vocabulary as GGUF's tokenizer.ggml.* keys (model "llama"), written as llama.cpp's converter
// writes them: tokens, scores, token types, then padded with unused "[PADi]" tokens up to n_vocab
// (a model's embedding may be larger than its tokenizer). Special token ids are the caller's.
void add_llama_vocab(GgufWriter& w, const SentencePieceModel& sp, int64_t n_vocab, const std::string& source);

}  // namespace strata
