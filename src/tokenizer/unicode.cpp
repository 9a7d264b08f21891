#include "tokenizer/unicode.h"

#include <vector>

namespace strata::unicode {

namespace {

constexpr uint32_t kCodepointCount = 0x110000;

// One byte per code point (1.1 MB), expanded once from the generated runs: the pre-tokenizers ask
// for every character's class, and a direct index beats a binary search over 3 000 runs.
const std::vector<uint8_t>& flag_table() {
    static const std::vector<uint8_t> table = [] {
        std::vector<uint8_t> t(kCodepointCount);
        for (size_t i = 0; i < detail::kCodepointRunCount; ++i) {
            uint32_t end = i + 1 < detail::kCodepointRunCount ? detail::kCodepointRuns[i + 1].first : kCodepointCount;
            for (uint32_t cp = detail::kCodepointRuns[i].first; cp < end; ++cp) t[cp] = detail::kCodepointRuns[i].flags;
        }
        return t;
    }();
    return table;
}

bool is_continuation(uint8_t b) { return (b & 0xC0) == 0x80; }

}  // namespace

Flags flags(uint32_t cp) {
    if (cp >= kCodepointCount) return Flags{};
    return Flags{flag_table()[cp]};
}

size_t utf8_sequence_length(uint8_t lead) {
    if (lead < 0x80) return 1;
    if (lead < 0xC2) return 0;  // continuation byte, or C0/C1 (always overlong)
    if (lead < 0xE0) return 2;
    if (lead < 0xF0) return 3;
    if (lead < 0xF5) return 4;
    return 0;
}

size_t decode_utf8(std::string_view s, size_t pos, uint32_t* cp) {
    const auto* p = reinterpret_cast<const uint8_t*>(s.data()) + pos;
    size_t avail = s.size() - pos;
    size_t len = utf8_sequence_length(p[0]);
    *cp = kReplacement;
    if (len == 0 || len > avail) return 1;
    if (len == 1) {
        *cp = p[0];
        return 1;
    }
    for (size_t i = 1; i < len; ++i) {
        if (!is_continuation(p[i])) return 1;
    }
    uint32_t v;
    if (len == 2) {
        v = (uint32_t(p[0] & 0x1F) << 6) | (p[1] & 0x3F);
    } else if (len == 3) {
        v = (uint32_t(p[0] & 0x0F) << 12) | (uint32_t(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
        if (v < 0x800 || (v >= 0xD800 && v <= 0xDFFF)) return 1;
    } else {
        v = (uint32_t(p[0] & 0x07) << 18) | (uint32_t(p[1] & 0x3F) << 12) | (uint32_t(p[2] & 0x3F) << 6) |
            (p[3] & 0x3F);
        if (v < 0x10000 || v >= kCodepointCount) return 1;
    }
    *cp = v;
    return len;
}

}  // namespace strata::unicode
