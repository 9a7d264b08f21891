// Pre-tokenizers of byte-level BPE vocabularies: the regex splits that cut text into the words BPE
// merges within, chosen by GGUF's tokenizer.ggml.pre. Each regex is matched by hand-written code
// that reproduces what llama.cpp's splitter yields (its custom GPT-2/Llama-3 splitters and its
// std::regex path), so token ids agree with llama.cpp; no regex engine is involved.
#pragma once

#include <cstddef>
#include <string_view>
#include <vector>

namespace strata {

enum class PreTokenizer {
    default_,      // llama.cpp's fallback: punctuation runs, GPT-2, digit runs, 3-digit groups
    gpt2,          // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
    llama3,        // (?i:'s|…)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|…
    qwen2,         // as llama3 with single digits (\p{N})
    falcon,        // punctuation runs, GPT-2, 3-digit groups
    starcoder,     // single digits, then GPT-2 (also refact)
    deepseek_llm,  // newlines, cased-letter runs, ASCII/full-width punctuation, trailing spaces, CJK, digits
};

struct PreTokenizerInfo {
    PreTokenizer kind;
    bool ignore_merges;  // a word that is a whole token is taken as is (Llama 3 family)
    bool add_bos;        // default of tokenizer.ggml.add_bos_token for this family
};

// The pre-tokenizer for a tokenizer.ggml.pre value (empty: "default"); throws strata::Error for a
// name it does not know.
PreTokenizerInfo pre_tokenizer_from_name(std::string_view name);

// Splits text into words; appends the byte offset where each word ends (the last is text.size()).
// Any bytes are accepted: an invalid UTF-8 byte is classified like U+FFFD and stays one byte.
void pre_tokenize(PreTokenizer kind, std::string_view text, std::vector<size_t>& word_ends);

}  // namespace strata
