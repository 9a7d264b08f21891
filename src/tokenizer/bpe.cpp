#include "tokenizer/bpe.h"

#include <algorithm>

#include "tokenizer/unicode.h"

namespace strata {

namespace {

// GPT-2's bytes_to_unicode: printable bytes stand for themselves, the other 68 bytes (controls,
// space, DEL, NBSP, soft hyphen…) are moved to U+0100 onwards in byte order, so every byte has a
// visible, non-space spelling.
std::array<uint32_t, 256> byte_to_codepoint_table() {
    std::array<uint32_t, 256> table{};
    uint32_t next = 256;
    for (uint32_t b = 0; b < 256; ++b) {
        bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        table[b] = printable ? b : next++;
    }
    return table;
}

const std::array<uint32_t, 256>& byte_to_codepoint() {
    static const std::array<uint32_t, 256> table = byte_to_codepoint_table();
    return table;
}

// Inverse of byte_to_codepoint for code points below U+0144; -1 elsewhere.
int codepoint_to_byte(uint32_t cp) {
    static const std::array<int16_t, 0x144> table = [] {
        std::array<int16_t, 0x144> t;
        t.fill(-1);
        for (int b = 0; b < 256; ++b) t[byte_to_codepoint()[static_cast<size_t>(b)]] = static_cast<int16_t>(b);
        return t;
    }();
    return cp < table.size() ? table[cp] : -1;
}

uint64_t pair_key(int32_t left, int32_t right) {
    return ((static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right)) + 1;
}

constexpr size_t kMaxCachedWord = 64;     // bytes; longer words are rare and not worth keeping
constexpr size_t kMinTextToCache = 1024;  // a shorter text seldom repeats a word

// Heap order: the lowest rank on top; equal ranks, the leftmost pair first.
constexpr auto lower_priority = [](const auto& a, const auto& b) {
    return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
};

}  // namespace

BpeModel::BpeModel(std::vector<std::string> tokens, const std::vector<std::string_view>& merges,
                   PreTokenizerInfo pre)
    : tokens_(std::move(tokens)), pre_(pre) {
    ids_.reserve(tokens_.size());
    for (size_t i = 0; i < tokens_.size(); ++i) ids_.emplace(tokens_[i], static_cast<int32_t>(i));
    for (int b = 0; b < 256; ++b) {
        std::string spelled;
        unicode::append_utf8(spelled, byte_to_codepoint()[static_cast<size_t>(b)]);
        byte_ids_[static_cast<size_t>(b)] = token_to_id(spelled);
    }
    for (size_t rank = 0; rank < merges.size(); ++rank) {
        std::string_view m = merges[rank];
        // Split at the first space after the first character, as llama.cpp does.
        size_t space = m.find(' ', 1);
        if (space == std::string_view::npos) continue;
        std::string_view left = m.substr(0, space);
        std::string_view right = m.substr(space + 1);
        int32_t left_id = token_to_id(left);
        int32_t right_id = token_to_id(right);
        int32_t merged_id = token_to_id(std::string(left) + std::string(right));
        if (left_id < 0 || right_id < 0 || merged_id < 0) continue;
        merges_.insert(left_id, right_id, Merge{static_cast<int32_t>(rank), merged_id});
    }
}

int32_t BpeModel::token_to_id(std::string_view text) const {
    auto it = ids_.find(text);
    return it == ids_.end() ? -1 : it->second;
}

std::string BpeModel::token_bytes(int32_t id) const {
    const std::string& t = tokens_[static_cast<size_t>(id)];
    std::string bytes;
    bytes.reserve(t.size());
    for (size_t pos = 0; pos < t.size();) {
        uint32_t cp;
        size_t len = unicode::decode_utf8(t, pos, &cp);
        int b = codepoint_to_byte(cp);
        if (b >= 0) {
            bytes += static_cast<char>(b);
        } else {
            bytes.append(t, pos, len);
        }
        pos += len;
    }
    return bytes;
}

void BpeModel::encode(std::string_view text, std::vector<int32_t>& out) const {
    std::vector<size_t> word_ends;
    pre_tokenize(pre_.kind, text, word_ends);
    Scratch s;
    s.symbols.reserve(64);
    s.queue.reserve(64);
    size_t begin = 0;
    for (size_t end : word_ends) {
        const std::string_view word = text.substr(begin, end - begin);
        begin = end;
        const bool cacheable = text.size() >= kMinTextToCache && word.size() <= kMaxCachedWord;
        if (auto it = cacheable ? s.cache.find(word) : s.cache.end(); it != s.cache.end()) {
            out.insert(out.end(), s.cached.begin() + static_cast<ptrdiff_t>(it->second.first),
                       s.cached.begin() + static_cast<ptrdiff_t>(it->second.second));
            continue;
        }
        const size_t first = out.size();
        encode_word(word, s, out);
        if (cacheable) {
            s.cache.emplace(word, std::make_pair(s.cached.size(), s.cached.size() + out.size() - first));
            s.cached.insert(s.cached.end(), out.begin() + static_cast<ptrdiff_t>(first), out.end());
        }
    }
}

void BpeModel::encode_word(std::string_view word, Scratch& s, std::vector<int32_t>& out) const {
    if (pre_.ignore_merges) {
        s.spelled.clear();
        for (char c : word) unicode::append_utf8(s.spelled, byte_to_codepoint()[static_cast<uint8_t>(c)]);
        if (int32_t id = token_to_id(s.spelled); id >= 0) {
            out.push_back(id);
            return;
        }
    }
    // One symbol per byte, merged in place: a merge absorbs the right symbol into the left one.
    s.symbols.clear();
    s.queue.clear();
    const auto n = static_cast<int32_t>(word.size());
    for (int32_t i = 0; i < n; ++i) {
        s.symbols.push_back(Symbol{byte_ids_[static_cast<uint8_t>(word[static_cast<size_t>(i)])], i - 1,
                                   i + 1 < n ? i + 1 : -1});
    }
    for (int32_t i = 1; i < n; ++i) add_bigram(s, i - 1, i);

    while (!s.queue.empty()) {
        std::pop_heap(s.queue.begin(), s.queue.end(), lower_priority);
        const Bigram b = s.queue.back();
        s.queue.pop_back();
        Symbol& left = s.symbols[static_cast<size_t>(b.left)];
        Symbol& right = s.symbols[static_cast<size_t>(b.right)];
        if (left.id != b.left_id || right.id != b.right_id) continue;  // stale: a side changed
        left.id = b.merged_id;
        right.id = -2;  // absorbed
        left.next = right.next;
        if (right.next >= 0) s.symbols[static_cast<size_t>(right.next)].prev = b.left;
        add_bigram(s, left.prev, b.left);
        add_bigram(s, b.left, left.next);
    }
    // A byte whose character is missing from the vocabulary yields nothing, as in llama.cpp.
    for (int32_t i = n > 0 ? 0 : -1; i >= 0; i = s.symbols[static_cast<size_t>(i)].next) {
        if (s.symbols[static_cast<size_t>(i)].id >= 0) out.push_back(s.symbols[static_cast<size_t>(i)].id);
    }
}

void BpeModel::add_bigram(Scratch& s, int32_t left, int32_t right) const {
    if (left < 0 || right < 0) return;
    const int32_t left_id = s.symbols[static_cast<size_t>(left)].id;
    const int32_t right_id = s.symbols[static_cast<size_t>(right)].id;
    if (left_id < 0 || right_id < 0) return;
    const Merge* merge = merges_.find(left_id, right_id);
    if (merge == nullptr) return;
    s.queue.push_back(Bigram{merge->rank, left, right, left_id, right_id, merge->merged_id});
    std::push_heap(s.queue.begin(), s.queue.end(), lower_priority);
}

size_t BpeModel::MergeTable::slot_of(uint64_t key) const {
    const size_t mask = slots_.size() - 1;
    size_t i = static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> 20) & mask;
    while (slots_[i].key != 0 && slots_[i].key != key) i = (i + 1) & mask;
    return i;
}

void BpeModel::MergeTable::insert(int32_t left, int32_t right, Merge merge) {
    if (2 * (count_ + 1) > slots_.size()) grow();
    const uint64_t key = pair_key(left, right);
    Slot& slot = slots_[slot_of(key)];
    if (slot.key != 0) return;
    slot = Slot{key, merge};
    ++count_;
}

const BpeModel::Merge* BpeModel::MergeTable::find(int32_t left, int32_t right) const {
    if (slots_.empty()) return nullptr;
    const Slot& slot = slots_[slot_of(pair_key(left, right))];
    return slot.key != 0 ? &slot.merge : nullptr;
}

void BpeModel::MergeTable::grow() {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(old.empty() ? 1024 : 2 * old.size(), Slot{0, Merge{0, 0}});
    for (const Slot& slot : old) {
        if (slot.key != 0) slots_[slot_of(slot.key)] = slot;
    }
}

}  // namespace strata
