// Turns generated token ids into printable text as they arrive. A character can be split across
// tokens (byte-fallback pieces like <0xE4><0xBD><0xA0>, or byte-level BPE tokens ending inside a
// multi-byte character), so bytes are held back until their UTF-8 sequence is complete: what
// push() returns is always whole characters, never half of one.
#pragma once

#include <cstdint>
#include <string>
#include <utility>

#include "tokenizer/tokenizer.h"

namespace strata {

class StreamDetokenizer {
public:
    // `special`: print control tokens' text (as Tokenizer::token_to_piece does).
    explicit StreamDetokenizer(Tokenizer tokenizer, bool special = false)
        : tokenizer_(std::move(tokenizer)), special_(special) {}

    // The complete characters that are now ready. Bytes that can never form a valid character
    // come out as U+FFFD at once, so the result is always valid UTF-8.
    std::string push(int32_t id);
    // What is still held back (an unfinished character) as one U+FFFD, or "" when nothing is.
    std::string flush();

private:
    Tokenizer tokenizer_;  // copies share the vocabulary
    bool special_;
    std::string pending_;
};

}  // namespace strata
