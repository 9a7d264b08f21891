// strata::Tokenizer: text ↔ token ids for a GGUF model, built only from its tokenizer.ggml.* keys.
// SentencePiece vocabularies (tokenizer.ggml.model "llama") go through spm.h, byte-level BPE ones
// ("gpt2") through bpe.h; special tokens, BOS/EOS and decoding are handled here, following
// llama.cpp's rules so ids match it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace strata {

class GgufFile;

// tokenizer.ggml.token_type values.
enum class TokenType : uint8_t {
    undefined = 0,
    normal = 1,
    unknown = 2,
    control = 3,
    user_defined = 4,
    unused = 5,
    byte = 6,
};

class Tokenizer {
public:
    enum class Kind { spm, bpe };

    // Throws strata::Error naming the file and key for a missing, mistyped or inconsistent key.
    static Tokenizer from_gguf(const GgufFile& file);

    // add_special: put BOS/EOS around the text as tokenizer.ggml.add_bos_token/add_eos_token say.
    // parse_special: control tokens written in the text ("<s>", "<|endoftext|>") become those
    // tokens; without it they are tokenized as plain text. User-defined tokens are always matched.
    // Any bytes are accepted; invalid UTF-8 is kept byte for byte where the vocabulary can (SPM byte
    // fallback, BPE byte spelling), so decode() gives the input back.
    std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special) const;

    // The bytes a token contributes to the output text. Control and unknown tokens give "" unless
    // `special`, then their text. Throws strata::Error for an id outside the vocabulary.
    const std::string& token_to_piece(int32_t id, bool special = false) const;
    // Concatenated pieces. For SentencePiece vocabularies with a space prefix, the space the
    // encoder put in front of the text is removed from the first normal token, so that
    // decode(encode(s)) == s.
    std::string decode(const std::vector<int32_t>& ids, bool special = false) const;

    // The vocabulary entry as stored in the file (▁ for spaces in SPM, Ġ in byte-level BPE).
    const std::string& token_text(int32_t id) const;
    TokenType token_type(int32_t id) const;

    Kind kind() const;
    int32_t n_vocab() const;
    int32_t bos() const;  // -1 when the vocabulary has none
    int32_t eos() const;
    int32_t unk() const;
    int32_t pad() const;
    bool add_bos() const;
    bool add_eos() const;
    bool is_control(int32_t id) const;
    // End of generation: EOS, EOT/EOM when given, and the turn-ending tokens llama.cpp knows by text.
    bool is_eog(int32_t id) const;

private:
    struct Impl;
    explicit Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
    std::shared_ptr<const Impl> impl_;  // immutable, so copies share it
};

}  // namespace strata
