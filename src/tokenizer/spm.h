// spm.h — a SentencePiece BPE tokenizer in one header, stb-style: no dependencies beyond the C++
// standard library (C++17), so another project can lift the file as is.
//
//   In exactly one .cpp file:   #define SPM_IMPLEMENTATION
//                               #include "spm.h"
//   Everywhere else:            #include "spm.h"
//
// What it does (the encoding of SentencePiece's BPE model, e.g. Llama 1/2, Mistral, Phi-3):
//   - spaces become U+2581 "▁", and with add_dummy_prefix one "▁" is put in front of non-empty text;
//   - the text is cut into characters (user-defined pieces are matched first, longest first, and
//     never merged further);
//   - adjacent symbols are merged, highest piece score first (ties: leftmost), while the merged text
//     is a normal, user-defined or unused piece — with a priority queue and a linked list, so the
//     work is O(n log n), never quadratic;
//   - a finished symbol that is an unused piece is split back into the two symbols it came from;
//   - a symbol that is no piece becomes its bytes as <0xXX> pieces (byte fallback) when the model
//     has them, otherwise the unknown piece (consecutive unknowns collapse into one, as in the
//     sentencepiece library).
// Results equal sentencepiece's SentencePieceProcessor::Encode for models whose normalizer is
// "identity" without remove_extra_whitespaces (all Llama-style models). One deliberate difference:
// invalid UTF-8 is not replaced by U+FFFD; each invalid byte becomes its own symbol and so its byte
// piece, which keeps decode(encode(text)) == text for any bytes.
//
// Input text is never split at spaces (the library does not either), but it is processed in
// independent segments: between two adjacent characters that no mergeable piece contains side by
// side, no merge can ever happen, so cutting there changes nothing and keeps the queue small.
#ifndef SPM_H
#define SPM_H

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <cstring>
#include <unordered_map>
#include <utility>
#include <vector>

namespace spm {

namespace detail {

inline uint64_t mix(uint64_t h) {
    h ^= h >> 31;
    h *= 0xBF58476D1CE4E5B9ull;
    return h ^ (h >> 29);
}

inline uint64_t hash_bytes(std::string_view s) {
    uint64_t h = s.size() * 0x9E3779B97F4A7C15ull;
    size_t i = 0;
    for (; i + 8 <= s.size(); i += 8) {
        uint64_t v;
        std::memcpy(&v, s.data() + i, 8);
        h = mix(h ^ v);
    }
    uint64_t tail = 0;
    std::memcpy(&tail, s.data() + i, s.size() - i);
    return mix(h ^ tail);
}

// Open addressing with linear probing in a power-of-two table kept at most half full: a lookup
// reads one or two adjacent slots, where std::unordered_map chases a pointer per step (the merge
// loop is one lookup per candidate pair, so this is most of the encoding time).
class PieceTable {  // piece text → id; the texts live in the model's piece array
public:
    void insert(const std::string* pieces, int32_t id) {
        pieces_ = pieces;
        if (2 * (count_ + 1) > slots_.size()) grow();
        const std::string_view key = pieces[id];
        if (find(key) < 0) place(Slot{static_cast<uint32_t>(hash_bytes(key)), id});
    }
    int32_t find(std::string_view key) const {
        if (slots_.empty()) return -1;
        const auto hash = static_cast<uint32_t>(hash_bytes(key));
        for (size_t i = hash & mask(); slots_[i].id >= 0; i = (i + 1) & mask()) {
            if (slots_[i].hash == hash && pieces_[slots_[i].id] == key) return slots_[i].id;
        }
        return -1;
    }

private:
    struct Slot {
        uint32_t hash;
        int32_t id;  // -1: empty
    };
    size_t mask() const { return slots_.size() - 1; }
    void place(Slot slot) {
        size_t i = slot.hash & mask();
        while (slots_[i].id >= 0) i = (i + 1) & mask();
        slots_[i] = slot;
        ++count_;
    }
    void grow() {
        std::vector<Slot> old = std::move(slots_);
        slots_.assign(old.empty() ? 64 : 2 * old.size(), Slot{0, -1});
        count_ = 0;
        for (const Slot& slot : old) {
            if (slot.id >= 0) place(slot);
        }
    }
    std::vector<Slot> slots_;
    size_t count_ = 0;
    const std::string* pieces_ = nullptr;
};

class KeySet {  // nonzero 64-bit keys
public:
    void insert(uint64_t key) {
        if (contains(key)) return;
        if (2 * (count_ + 1) > slots_.size()) grow();
        place(key);
    }
    bool contains(uint64_t key) const {
        if (slots_.empty()) return false;
        for (size_t i = mix(key) & mask(); slots_[i] != 0; i = (i + 1) & mask()) {
            if (slots_[i] == key) return true;
        }
        return false;
    }

private:
    size_t mask() const { return slots_.size() - 1; }
    void place(uint64_t key) {
        size_t i = mix(key) & mask();
        while (slots_[i] != 0) i = (i + 1) & mask();
        slots_[i] = key;
        ++count_;
    }
    void grow() {
        std::vector<uint64_t> old = std::move(slots_);
        slots_.assign(old.empty() ? 64 : 2 * old.size(), 0);
        count_ = 0;
        for (uint64_t key : old) {
            if (key != 0) place(key);
        }
    }
    std::vector<uint64_t> slots_;
    size_t count_ = 0;
};

}  // namespace detail

// The piece types of sentencepiece's model proto (and of GGUF's tokenizer.ggml.token_type).
enum class PieceType : int32_t { normal = 1, unknown = 2, control = 3, user_defined = 4, unused = 5, byte = 6 };

class Model {
public:
    // Parallel arrays indexed by piece id, as stored in a .model file or a GGUF vocabulary.
    // Throws std::invalid_argument when the sizes differ or a piece is empty.
    Model(std::vector<std::string> pieces, std::vector<float> scores, std::vector<PieceType> types);
    Model(Model&&) = default;
    Model& operator=(Model&&) = default;
    Model(const Model&) = delete;  // lookup tables point into pieces_
    Model& operator=(const Model&) = delete;

    // Appends the piece ids of `text` to `out`.
    void encode(std::string_view text, bool add_dummy_prefix, std::vector<int32_t>& out) const;

    // The bytes a piece stands for: "▁" → ' ', <0xXX> → that byte, control and unknown → "".
    std::string piece_text(int32_t id) const;
    // Concatenated piece_text, less the dummy-prefix space of the first piece that has text.
    std::string decode(const std::vector<int32_t>& ids, bool strip_dummy_prefix) const;

    int32_t size() const { return static_cast<int32_t>(pieces_.size()); }
    const std::string& piece(int32_t id) const { return pieces_[static_cast<size_t>(id)]; }
    float score(int32_t id) const { return scores_[static_cast<size_t>(id)]; }
    PieceType type(int32_t id) const { return types_[static_cast<size_t>(id)]; }
    // Id of a piece's exact text (any type), or -1.
    int32_t piece_to_id(std::string_view piece) const;
    int32_t byte_to_id(uint8_t byte) const { return byte_ids_[byte]; }
    int32_t unk_id() const { return unk_id_; }
    bool has_byte_fallback() const { return has_byte_fallback_; }

private:
    struct Symbol {
        uint32_t start;  // byte offset in the normalized text
        uint32_t len;    // 0 once merged into its left neighbour
        int32_t prev;
        int32_t next;
        bool frozen;  // a user-defined piece: never merged
    };
    struct Bigram {
        int32_t left;
        int32_t right;
        float score;
        uint32_t size;
    };
    struct Session;  // scratch buffers of one encode call

    int32_t mergeable_id(std::string_view text) const;
    size_t user_defined_prefix(std::string_view text, size_t pos) const;
    bool can_merge_across(std::string_view text, size_t a, size_t b, size_t end) const;
    void encode_segment(Session& s, std::vector<int32_t>& out) const;
    void try_add_bigram(Session& s, int32_t left, int32_t right) const;
    void resegment(Session& s, std::string_view piece, std::vector<int32_t>& out) const;
    void append(const int32_t* first, const int32_t* last, std::vector<int32_t>& out) const;

    std::vector<std::string> pieces_;
    std::vector<float> scores_;
    std::vector<PieceType> types_;
    detail::PieceTable ids_;  // every piece (the first one, should a text repeat)
    detail::PieceTable user_defined_;
    std::array<bool, 256> user_defined_first_{};
    size_t user_defined_max_len_ = 0;
    detail::KeySet inner_pairs_;  // adjacent character pairs inside mergeable pieces
    std::array<int32_t, 256> byte_ids_{};
    int32_t unk_id_ = -1;
    bool has_byte_fallback_ = false;
};

}  // namespace spm

#endif  // SPM_H

#ifdef SPM_IMPLEMENTATION
#ifndef SPM_IMPLEMENTATION_DONE
#define SPM_IMPLEMENTATION_DONE

#include <algorithm>
#include <stdexcept>

namespace spm {

namespace detail {

constexpr std::string_view kSpace = "\xE2\x96\x81";  // U+2581, SentencePiece's visible space

// Length of the character at s[pos]: a valid UTF-8 sequence, else 1 (an invalid byte stands alone).
inline size_t char_length(std::string_view s, size_t pos) {
    const auto lead = static_cast<uint8_t>(s[pos]);
    size_t len = lead < 0x80 ? 1 : lead < 0xC2 ? 0 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : lead < 0xF5 ? 4 : 0;
    if (len <= 1) return 1;
    if (len > s.size() - pos) return 1;
    for (size_t i = 1; i < len; ++i) {
        if ((static_cast<uint8_t>(s[pos + i]) & 0xC0) != 0x80) return 1;
    }
    const auto b1 = static_cast<uint8_t>(s[pos + 1]);
    if ((lead == 0xE0 && b1 < 0xA0) || (lead == 0xED && b1 >= 0xA0) || (lead == 0xF0 && b1 < 0x90) ||
        (lead == 0xF4 && b1 >= 0x90)) {
        return 1;  // overlong, surrogate, or above U+10FFFF
    }
    return len;
}

// A character (at most 4 bytes) packed into 32 bits, to key pairs of characters cheaply.
inline uint32_t pack_char(std::string_view s, size_t pos, size_t len) {
    uint32_t v = 0;
    for (size_t i = 0; i < len; ++i) v = (v << 8) | static_cast<uint8_t>(s[pos + i]);
    return v | static_cast<uint32_t>(len) << 29;  // keeps "\0" distinct from "\0\0"
}

inline uint64_t pair_key(uint32_t a, uint32_t b) { return (uint64_t{a} << 32) | b; }

inline int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

// "<0x0A>" → 10, anything else → -1.
inline int parse_byte_piece(std::string_view p) {
    if (p.size() != 6 || p.substr(0, 3) != "<0x" || p[5] != '>') return -1;
    int hi = hex_value(p[3]);
    int lo = hex_value(p[4]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

}  // namespace detail

struct Model::Session {
    std::string_view text;  // the normalized text
    std::vector<Symbol> symbols;
    std::vector<Bigram> queue;  // a binary heap (std::push_heap/pop_heap)
    // Unused pieces formed by a merge, split back into their halves at the end (as the library does).
    std::unordered_map<std::string_view, std::pair<std::string_view, std::string_view>> rev_merge;
    std::vector<int32_t> ids;  // the current segment's pieces
    // Segments seen before in this text (most are words) and where their ids are in `cached`:
    // natural text repeats its words, and a lookup is far cheaper than redoing the merges.
    std::unordered_map<std::string_view, std::pair<size_t, size_t>> cache;
    std::vector<int32_t> cached;
    bool use_cache = false;
};

namespace detail {
constexpr size_t kMaxCachedSegment = 64;  // bytes; longer segments are rare and not worth keeping
constexpr size_t kMinTextToCache = 1024;  // a shorter text seldom repeats a word
}  // namespace detail

Model::Model(std::vector<std::string> pieces, std::vector<float> scores, std::vector<PieceType> types)
    : pieces_(std::move(pieces)), scores_(std::move(scores)), types_(std::move(types)) {
    if (scores_.size() != pieces_.size() || types_.size() != pieces_.size()) {
        throw std::invalid_argument("spm: pieces, scores and types differ in length");
    }
    byte_ids_.fill(-1);
    for (size_t i = 0; i < pieces_.size(); ++i) {
        const std::string_view p = pieces_[i];
        const auto id = static_cast<int32_t>(i);
        if (p.empty()) throw std::invalid_argument("spm: piece " + std::to_string(i) + " is empty");
        ids_.insert(pieces_.data(), id);
        if (types_[i] == PieceType::unknown && unk_id_ < 0) unk_id_ = id;
        if (types_[i] == PieceType::byte) {
            int b = detail::parse_byte_piece(p);
            if (b >= 0 && byte_ids_[static_cast<size_t>(b)] < 0) byte_ids_[static_cast<size_t>(b)] = id;
            has_byte_fallback_ = true;
        }
        if (types_[i] == PieceType::user_defined) {
            user_defined_.insert(pieces_.data(), id);
            user_defined_first_[static_cast<uint8_t>(p[0])] = true;
            user_defined_max_len_ = std::max(user_defined_max_len_, p.size());
        } else if (types_[i] == PieceType::normal || types_[i] == PieceType::unused) {
            size_t pos = 0;
            uint32_t prev = 0;
            while (pos < p.size()) {
                size_t len = detail::char_length(p, pos);
                uint32_t c = detail::pack_char(p, pos, len);
                if (pos > 0) inner_pairs_.insert(detail::pair_key(prev, c));  // never 0: see pack_char
                prev = c;
                pos += len;
            }
        }
    }
}

int32_t Model::piece_to_id(std::string_view piece) const {
    return ids_.find(piece);
}

int32_t Model::mergeable_id(std::string_view text) const {
    const int32_t id = ids_.find(text);
    if (id < 0) return -1;
    const PieceType t = types_[static_cast<size_t>(id)];
    return t == PieceType::normal || t == PieceType::user_defined || t == PieceType::unused ? id : -1;
}

// Length of the longest user-defined piece starting at text[pos], or 0.
size_t Model::user_defined_prefix(std::string_view text, size_t pos) const {
    if (!user_defined_first_[static_cast<uint8_t>(text[pos])]) return 0;
    for (size_t len = std::min(user_defined_max_len_, text.size() - pos); len > 0; --len) {
        if (user_defined_.find(text.substr(pos, len)) >= 0) return len;
    }
    return 0;
}

// Whether a merge could ever join the character at a (ending at b) with the one at b.
bool Model::can_merge_across(std::string_view text, size_t a, size_t b, size_t end) const {
    // Only word starts ("▁") and ASCII punctuation, spaces and controls are worth a lookup: inside
    // a word the answer is nearly always yes, and a missed cut only makes a segment longer.
    auto plain = [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               static_cast<unsigned char>(c) >= 0x80;
    };
    if (text.compare(b, detail::kSpace.size(), detail::kSpace) != 0 && plain(text[a]) && plain(text[b])) return true;
    uint32_t left = detail::pack_char(text, a, b - a);
    uint32_t right = detail::pack_char(text, b, end - b);
    return inner_pairs_.contains(detail::pair_key(left, right));
}

void Model::encode(std::string_view text, bool add_dummy_prefix, std::vector<int32_t>& out) const {
    if (text.empty()) return;
    std::string normalized;
    normalized.reserve(text.size() + text.size() / 4 + 3);
    if (add_dummy_prefix) normalized += detail::kSpace;
    for (size_t pos = 0; pos < text.size();) {
        const size_t space = std::min(text.find(' ', pos), text.size());
        normalized.append(text, pos, space - pos);
        if (space < text.size()) normalized += detail::kSpace;
        pos = space + 1;
    }

    Session s;
    s.text = normalized;
    s.use_cache = normalized.size() >= detail::kMinTextToCache;
    s.symbols.reserve(std::min<size_t>(normalized.size(), 256));
    s.queue.reserve(std::min<size_t>(normalized.size(), 256));
    size_t prev_start = 0;
    bool prev_frozen = true;  // nothing before the first symbol to merge with
    for (size_t pos = 0; pos < normalized.size();) {
        size_t len = user_defined_prefix(normalized, pos);
        const bool frozen = len > 0;
        if (!frozen) len = detail::char_length(normalized, pos);
        if (!s.symbols.empty() &&
            (frozen || prev_frozen || !can_merge_across(normalized, prev_start, pos, pos + len))) {
            encode_segment(s, out);
        }
        const auto index = static_cast<int32_t>(s.symbols.size());
        s.symbols.push_back(Symbol{static_cast<uint32_t>(pos), static_cast<uint32_t>(len), index - 1, -1, frozen});
        if (index > 0) s.symbols[static_cast<size_t>(index) - 1].next = index;
        prev_start = pos;
        prev_frozen = frozen;
        pos += len;
    }
    if (!s.symbols.empty()) encode_segment(s, out);
}

// Runs the merges over the symbols collected so far, appends their ids and clears them.
void Model::encode_segment(Session& s, std::vector<int32_t>& out) const {
    auto& sym = s.symbols;
    const std::string_view segment =
        s.text.substr(sym.front().start, sym.back().start + sym.back().len - sym.front().start);
    const bool cacheable = s.use_cache && segment.size() <= detail::kMaxCachedSegment;
    if (auto it = cacheable ? s.cache.find(segment) : s.cache.end(); it != s.cache.end()) {
        append(s.cached.data() + it->second.first, s.cached.data() + it->second.second, out);
        sym.clear();
        return;
    }

    auto lower_priority = [](const Bigram& a, const Bigram& b) {
        return a.score < b.score || (a.score == b.score && a.left > b.left);
    };
    s.queue.clear();
    for (size_t i = 1; i < sym.size(); ++i) try_add_bigram(s, static_cast<int32_t>(i - 1), static_cast<int32_t>(i));

    while (!s.queue.empty()) {
        std::pop_heap(s.queue.begin(), s.queue.end(), lower_priority);
        const Bigram b = s.queue.back();
        s.queue.pop_back();
        Symbol& left = sym[static_cast<size_t>(b.left)];
        Symbol& right = sym[static_cast<size_t>(b.right)];
        // Stale entry: one side has been merged into something else since it was queued.
        if (left.len == 0 || right.len == 0 || left.len + right.len != b.size) continue;
        left.len += right.len;
        right.len = 0;
        left.next = right.next;
        if (right.next >= 0) sym[static_cast<size_t>(right.next)].prev = b.left;
        try_add_bigram(s, left.prev, b.left);
        try_add_bigram(s, b.left, left.next);
    }

    s.ids.clear();
    for (const Symbol& x : sym) {
        if (x.len > 0) resegment(s, s.text.substr(x.start, x.len), s.ids);
    }
    append(s.ids.data(), s.ids.data() + s.ids.size(), out);
    if (cacheable) {
        s.cache.emplace(segment, std::make_pair(s.cached.size(), s.cached.size() + s.ids.size()));
        s.cached.insert(s.cached.end(), s.ids.begin(), s.ids.end());
    }
    sym.clear();
    s.rev_merge.clear();
}

// Without byte fallback, consecutive unknown pieces become one, as in the library.
void Model::append(const int32_t* first, const int32_t* last, std::vector<int32_t>& out) const {
    for (; first != last; ++first) {
        if (*first == unk_id_ && !has_byte_fallback_ && !out.empty() && out.back() == unk_id_) continue;
        out.push_back(*first);
    }
}

void Model::try_add_bigram(Session& s, int32_t left, int32_t right) const {
    if (left < 0 || right < 0) return;
    const Symbol& l = s.symbols[static_cast<size_t>(left)];
    const Symbol& r = s.symbols[static_cast<size_t>(right)];
    if (l.frozen || r.frozen) return;
    const std::string_view merged = s.text.substr(l.start, l.len + r.len);
    const int32_t id = mergeable_id(merged);
    if (id < 0) return;
    s.queue.push_back(Bigram{left, right, scores_[static_cast<size_t>(id)], static_cast<uint32_t>(merged.size())});
    std::push_heap(s.queue.begin(), s.queue.end(), [](const Bigram& a, const Bigram& b) {
        return a.score < b.score || (a.score == b.score && a.left > b.left);
    });
    if (types_[static_cast<size_t>(id)] == PieceType::unused) {
        s.rev_merge[merged] = {s.text.substr(l.start, l.len), s.text.substr(r.start, r.len)};
    }
}

void Model::resegment(Session& s, std::string_view piece, std::vector<int32_t>& out) const {
    const int32_t id = piece_to_id(piece);
    if (id >= 0 && types_[static_cast<size_t>(id)] == PieceType::unused) {
        if (auto it = s.rev_merge.find(piece); it != s.rev_merge.end()) {
            const auto halves = it->second;
            resegment(s, halves.first, out);
            resegment(s, halves.second, out);
            return;
        }
    }
    if (id >= 0 && id != unk_id_) {
        out.push_back(id);
    } else if (has_byte_fallback_) {
        for (char c : piece) {
            const int32_t byte_id = byte_ids_[static_cast<uint8_t>(c)];
            out.push_back(byte_id >= 0 ? byte_id : unk_id_);
        }
    } else if (unk_id_ >= 0) {
        out.push_back(unk_id_);
    }
}

std::string Model::piece_text(int32_t id) const {
    if (id < 0 || id >= size()) return {};
    const std::string& p = pieces_[static_cast<size_t>(id)];
    switch (types_[static_cast<size_t>(id)]) {
        case PieceType::control:
        case PieceType::unknown:
            return {};
        case PieceType::byte: {
            int b = detail::parse_byte_piece(p);
            return b < 0 ? std::string() : std::string(1, static_cast<char>(b));
        }
        default:
            break;
    }
    std::string text;
    text.reserve(p.size());
    for (size_t pos = 0; pos < p.size();) {
        if (p.compare(pos, detail::kSpace.size(), detail::kSpace) == 0) {
            text += ' ';
            pos += detail::kSpace.size();
        } else {
            text += p[pos++];
        }
    }
    return text;
}

std::string Model::decode(const std::vector<int32_t>& ids, bool strip_dummy_prefix) const {
    std::string text;
    bool first = strip_dummy_prefix;
    for (int32_t id : ids) {
        std::string piece = piece_text(id);
        if (piece.empty()) continue;
        if (first && piece[0] == ' ' && type(id) != PieceType::byte) piece.erase(0, 1);
        first = false;
        text += piece;
    }
    return text;
}

}  // namespace spm

#endif  // SPM_IMPLEMENTATION_DONE
#endif  // SPM_IMPLEMENTATION
