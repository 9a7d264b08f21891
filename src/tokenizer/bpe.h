// Byte-level BPE (GPT-2 style, GGUF tokenizer.ggml.model = "gpt2"): text is cut into words by a
// pre-tokenizer, each byte of a word is spelled as one printable character (GPT-2's bytes_to_unicode),
// and adjacent symbols are merged by merge rank, lowest first.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/pre_tokenizer.h"

namespace strata {

class BpeModel {
public:
    // tokens: the vocabulary in its byte-level spelling; merges: "left right" pairs, rank = index.
    // Merges naming text that is no token (or whose result is none) can never apply and are skipped.
    BpeModel(std::vector<std::string> tokens, const std::vector<std::string_view>& merges,
             PreTokenizerInfo pre);

    // Appends the ids of `text` (any bytes; nothing special is recognized here).
    void encode(std::string_view text, std::vector<int32_t>& out) const;

    int32_t size() const { return static_cast<int32_t>(tokens_.size()); }
    const std::string& token(int32_t id) const { return tokens_[static_cast<size_t>(id)]; }
    int32_t token_to_id(std::string_view text) const;
    // The bytes a token spells: each character mapped back through bytes_to_unicode (a character
    // outside that table is kept as its own UTF-8).
    std::string token_bytes(int32_t id) const;

private:
    struct Symbol {
        int32_t id;  // -1: the byte's character is no token
        int32_t prev;
        int32_t next;
    };
    struct Bigram {
        int32_t rank;
        int32_t left;
        int32_t right;
        int32_t left_id;
        int32_t right_id;
        int32_t merged_id;
    };
    struct Merge {
        int32_t rank;
        int32_t merged_id;
    };
    // (left id, right id) → merge; open addressing, since the merge loop does one lookup per
    // candidate pair and std::unordered_map's pointer chasing dominated the encoding time.
    class MergeTable {
    public:
        void insert(int32_t left, int32_t right, Merge merge);  // the first merge of a pair wins
        const Merge* find(int32_t left, int32_t right) const;

    private:
        struct Slot {
            uint64_t key;  // pair + 1; 0: empty
            Merge merge;
        };
        void grow();
        size_t slot_of(uint64_t key) const;
        std::vector<Slot> slots_;
        size_t count_ = 0;
    };
    struct Scratch {
        std::vector<Symbol> symbols;
        std::vector<Bigram> queue;
        std::string spelled;
        // Words seen before in this text and where their ids are in `cached` (text repeats words).
        std::unordered_map<std::string_view, std::pair<size_t, size_t>> cache;
        std::vector<int32_t> cached;
    };

    void encode_word(std::string_view word, Scratch& s, std::vector<int32_t>& out) const;
    void add_bigram(Scratch& s, int32_t left, int32_t right) const;

    std::vector<std::string> tokens_;
    std::unordered_map<std::string_view, int32_t> ids_;
    MergeTable merges_;
    std::array<int32_t, 256> byte_ids_{};         // token of each byte's single-character spelling
    PreTokenizerInfo pre_;
};

}  // namespace strata
