// Code point classes and UTF-8 handling for the tokenizers, without ICU: the classes are a table
// generated from Unicode data (unicode_tables.cpp, made by gen_unicode_tables.py).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "util/utf8.h"

namespace strata::unicode {

// General category, coarsened the way the pre-tokenizer regexes use it (\p{L}, \p{N}, \p{M}, \p{P}).
// Cf/Co/Cs count as control and unassigned code points as undefined, as in llama.cpp.
enum class Category : uint8_t { undefined, number, letter, separator, mark, punctuation, symbol, control };

struct Flags {
    uint8_t bits = 0;
    Category category() const { return static_cast<Category>(bits & 0x7); }
    bool is_whitespace() const { return bits & 0x8; }  // Unicode White_Space, what regex \s means
    bool is_letter() const { return category() == Category::letter; }
    bool is_number() const { return category() == Category::number; }
    bool is_punctuation() const { return category() == Category::punctuation; }
};

Flags flags(uint32_t cp);

constexpr uint32_t kReplacement = 0xFFFD;

// Decodes the UTF-8 sequence starting at s[pos]. Returns its length in bytes; an invalid or
// truncated sequence, an overlong form, a surrogate or a value above U+10FFFF decodes as
// U+FFFD with length 1, so every byte of any input is consumed exactly once.
size_t decode_utf8(std::string_view s, size_t pos, uint32_t* cp);

using strata::append_utf8;  // src/util/utf8.h

// Length of the sequence a lead byte announces (1..4), or 0 for a byte that cannot start one.
size_t utf8_sequence_length(uint8_t lead);

namespace detail {
struct CodepointRun {
    uint32_t first;
    uint8_t flags;
};
extern const CodepointRun kCodepointRuns[];
extern const size_t kCodepointRunCount;
}  // namespace detail

}  // namespace strata::unicode
