#include "tokenizer/stream_detokenizer.h"

#include "tokenizer/unicode.h"

namespace strata {

namespace {

// Whether bytes s[pos..] (fewer than the lead byte announces) can still become a valid character:
// each must be a continuation byte, and the second one must respect the lead's narrower range
// (no overlong forms, no surrogates, nothing above U+10FFFF).
bool is_valid_prefix(const std::string& s, size_t pos) {
    const auto lead = static_cast<uint8_t>(s[pos]);
    for (size_t i = pos + 1; i < s.size(); ++i) {
        const auto b = static_cast<uint8_t>(s[i]);
        if ((b & 0xC0) != 0x80) return false;
        if (i == pos + 1) {
            if ((lead == 0xE0 && b < 0xA0) || (lead == 0xED && b >= 0xA0) || (lead == 0xF0 && b < 0x90) ||
                (lead == 0xF4 && b >= 0x90)) {
                return false;
            }
        }
    }
    return true;
}

}  // namespace

std::string StreamDetokenizer::push(int32_t id) {
    pending_ += tokenizer_.token_to_piece(id, special_);
    std::string ready;
    size_t pos = 0;
    while (pos < pending_.size()) {
        const size_t len = unicode::utf8_sequence_length(static_cast<uint8_t>(pending_[pos]));
        if (len > 0 && pos + len > pending_.size() && is_valid_prefix(pending_, pos)) break;  // wait for more
        uint32_t cp;
        const size_t used = unicode::decode_utf8(pending_, pos, &cp);
        if (cp == unicode::kReplacement && used == 1) {
            unicode::append_utf8(ready, unicode::kReplacement);
        } else {
            ready.append(pending_, pos, used);
        }
        pos += used;
    }
    pending_.erase(0, pos);
    return ready;
}

std::string StreamDetokenizer::flush() {
    if (pending_.empty()) return {};
    pending_.clear();
    std::string out;
    unicode::append_utf8(out, unicode::kReplacement);
    return out;
}

}  // namespace strata
