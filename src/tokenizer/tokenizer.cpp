#include "tokenizer/tokenizer.h"

#include <array>
#include <unordered_set>
#include <utility>

#include "format/gguf.h"
#include "tokenizer/bpe.h"
#include "tokenizer/spm.h"
#include "util/error.h"

namespace strata {

namespace {

// Tokens that end a turn, recognized by their text as llama.cpp does (GGUF files rarely say).
constexpr std::string_view kEndOfGenerationTexts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>",   "<|endoftext|>",
    "<|eom_id|>", "<EOT>",      "_<EOT>",  "<|end_of_text|>", "<end_of_utterance>",
};

// Special tokens written in the text. At each position the longest allowed token is taken, scanning
// left to right. (llama.cpp instead splits out the longest token everywhere first, then the next
// longest; the two differ only when a longer token starts inside a shorter one's match.)
class SpecialMatcher {
public:
    void add(std::string_view text, int32_t id) {
        int32_t node = 0;
        for (char c : text) {
            int32_t child = find(node, static_cast<uint8_t>(c));
            if (child < 0) {
                child = static_cast<int32_t>(nodes_.size());
                nodes_[static_cast<size_t>(node)].children.emplace_back(static_cast<uint8_t>(c), child);
                nodes_.emplace_back();
            }
            node = child;
        }
        if (nodes_[static_cast<size_t>(node)].id < 0) nodes_[static_cast<size_t>(node)].id = id;
        first_bytes_[static_cast<uint8_t>(text[0])] = true;
    }

    // {length, id} of the longest token at text[pos] that `allowed` accepts, or {0, -1}.
    template <class Allowed>
    std::pair<size_t, int32_t> match(std::string_view text, size_t pos, Allowed allowed) const {
        std::pair<size_t, int32_t> best{0, -1};
        if (!first_bytes_[static_cast<uint8_t>(text[pos])]) return best;
        int32_t node = 0;
        for (size_t i = pos; i < text.size(); ++i) {
            node = find(node, static_cast<uint8_t>(text[i]));
            if (node < 0) break;
            int32_t id = nodes_[static_cast<size_t>(node)].id;
            if (id >= 0 && allowed(id)) best = {i + 1 - pos, id};
        }
        return best;
    }

private:
    struct Node {
        std::vector<std::pair<uint8_t, int32_t>> children;
        int32_t id = -1;
    };
    int32_t find(int32_t node, uint8_t c) const {
        for (const auto& [byte, child] : nodes_[static_cast<size_t>(node)].children) {
            if (byte == c) return child;
        }
        return -1;
    }
    std::vector<Node> nodes_{1};
    std::array<bool, 256> first_bytes_{};
};

}  // namespace

struct Tokenizer::Impl {
    Kind kind = Kind::spm;
    std::unique_ptr<spm::Model> spm;
    std::unique_ptr<BpeModel> bpe;
    std::vector<TokenType> types;
    std::vector<std::string> pieces;  // what each token prints as, specials hidden
    SpecialMatcher specials;
    std::unordered_set<int32_t> eog;
    int32_t bos = -1, eos = -1, unk = -1, pad = -1;
    bool add_bos = false, add_eos = false, add_space_prefix = false;

    int32_t n_vocab() const { return static_cast<int32_t>(types.size()); }
    const std::string& text(int32_t id) const { return kind == Kind::spm ? spm->piece(id) : bpe->token(id); }
    void check(int32_t id) const {
        if (id < 0 || id >= n_vocab()) fail("token id ", id, " is outside the vocabulary [0, ", n_vocab(), ")");
    }
    bool is_special(int32_t id) const {
        TokenType t = types[static_cast<size_t>(id)];
        return t == TokenType::control || t == TokenType::unknown;
    }
};

namespace {

std::vector<TokenType> read_token_types(const GgufFile& file, size_t n) {
    const std::string key = "tokenizer.ggml.token_type";
    std::vector<TokenType> types(n, TokenType::normal);
    if (!file.has(key)) return types;
    std::vector<int64_t> raw = file.get_int_array(key);
    if (raw.size() != n) fail(file.path(), ": ", key, " has ", raw.size(), " entries, expected ", n);
    for (size_t i = 0; i < n; ++i) {
        if (raw[i] < 0 || raw[i] > 6) fail(file.path(), ": ", key, "[", i, "] = ", raw[i], " is no token type (0..6)");
        types[i] = static_cast<TokenType>(raw[i]);
    }
    return types;
}

std::vector<float> read_scores(const GgufFile& file, size_t n) {
    const std::string key = "tokenizer.ggml.scores";
    if (!file.has(key)) return std::vector<float>(n, 0.0f);
    std::vector<float> scores = file.get_f32_array(key);
    if (scores.size() != n) fail(file.path(), ": ", key, " has ", scores.size(), " entries, expected ", n);
    return scores;
}

// A special token id from its key; `fallback` (llama.cpp's default for the model type) when absent.
int32_t read_token_id(const GgufFile& file, std::string_view key, int32_t fallback, int32_t n) {
    if (!file.has(key)) return fallback < n ? fallback : -1;
    int64_t id = file.get_i64(key);
    if (id >= n) fail(file.path(), ": ", key, " = ", id, " is outside the vocabulary of ", n, " tokens");
    return id < 0 ? -1 : static_cast<int32_t>(id);
}

spm::PieceType piece_type(TokenType t) {
    // An undefined type is taken as a normal piece: it can be merged and prints as text.
    return t == TokenType::undefined ? spm::PieceType::normal : static_cast<spm::PieceType>(t);
}

}  // namespace

Tokenizer Tokenizer::from_gguf(const GgufFile& file) {
    auto impl = std::make_shared<Impl>();
    const std::string model = file.get_string("tokenizer.ggml.model");
    const std::vector<std::string_view> texts = file.get_strings("tokenizer.ggml.tokens");
    if (texts.empty()) fail(file.path(), ": tokenizer.ggml.tokens is empty");
    for (size_t i = 0; i < texts.size(); ++i) {
        if (texts[i].empty()) fail(file.path(), ": tokenizer.ggml.tokens[", i, "] is empty");
    }
    const auto n = static_cast<int32_t>(texts.size());
    impl->types = read_token_types(file, texts.size());
    std::vector<std::string> tokens(texts.begin(), texts.end());

    if (model == "llama") {
        impl->kind = Kind::spm;
        std::vector<spm::PieceType> piece_types;
        piece_types.reserve(texts.size());
        for (TokenType t : impl->types) piece_types.push_back(piece_type(t));
        impl->spm = std::make_unique<spm::Model>(std::move(tokens), read_scores(file, texts.size()),
                                                 std::move(piece_types));
        impl->bos = read_token_id(file, "tokenizer.ggml.bos_token_id", 1, n);
        impl->eos = read_token_id(file, "tokenizer.ggml.eos_token_id", 2, n);
        impl->unk = read_token_id(file, "tokenizer.ggml.unknown_token_id", 0, n);
        impl->add_bos = file.get_bool("tokenizer.ggml.add_bos_token", true);
        impl->add_space_prefix = file.get_bool("tokenizer.ggml.add_space_prefix", true);
    } else if (model == "gpt2") {
        impl->kind = Kind::bpe;
        PreTokenizerInfo pre;
        try {
            pre = pre_tokenizer_from_name(file.get_string("tokenizer.ggml.pre", "default"));
        } catch (const Error& e) {
            fail(file.path(), ": ", e.what());
        }
        impl->bpe = std::make_unique<BpeModel>(std::move(tokens), file.get_strings("tokenizer.ggml.merges"), pre);
        impl->bos = read_token_id(file, "tokenizer.ggml.bos_token_id", -1, n);
        impl->eos = read_token_id(file, "tokenizer.ggml.eos_token_id", -1, n);
        impl->unk = read_token_id(file, "tokenizer.ggml.unknown_token_id", -1, n);
        impl->add_bos = file.get_bool("tokenizer.ggml.add_bos_token", pre.add_bos);
    } else {
        fail(file.path(), ": tokenizer.ggml.model '", model, "' is not supported (expected 'llama' or 'gpt2')");
    }
    impl->pad = read_token_id(file, "tokenizer.ggml.padding_token_id", -1, n);
    impl->add_eos = file.get_bool("tokenizer.ggml.add_eos_token", false);
    if (impl->add_bos && impl->bos < 0) {
        fail(file.path(), ": tokenizer.ggml.add_bos_token is true but there is no tokenizer.ggml.bos_token_id");
    }
    if (impl->add_eos && impl->eos < 0) {
        fail(file.path(), ": tokenizer.ggml.add_eos_token is true but there is no tokenizer.ggml.eos_token_id");
    }

    impl->pieces.resize(texts.size());
    for (int32_t id = 0; id < n; ++id) {
        switch (impl->types[static_cast<size_t>(id)]) {
            case TokenType::normal:
            case TokenType::undefined:
                impl->pieces[static_cast<size_t>(id)] =
                    impl->kind == Kind::spm ? impl->spm->piece_text(id) : impl->bpe->token_bytes(id);
                break;
            case TokenType::byte:
                if (impl->kind == Kind::spm) impl->pieces[static_cast<size_t>(id)] = impl->spm->piece_text(id);
                break;
            case TokenType::user_defined:
                impl->pieces[static_cast<size_t>(id)] = impl->text(id);
                [[fallthrough]];
            case TokenType::control:
            case TokenType::unknown:
                impl->specials.add(impl->text(id), id);
                break;
            case TokenType::unused:
                break;
        }
    }

    if (impl->eos >= 0) impl->eog.insert(impl->eos);
    for (const char* key : {"tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"}) {
        if (int32_t id = read_token_id(file, key, -1, n); id >= 0) impl->eog.insert(id);
    }
    for (int32_t id = 0; id < n; ++id) {
        for (std::string_view t : kEndOfGenerationTexts) {
            if (impl->text(id) == t) impl->eog.insert(id);
        }
    }
    return Tokenizer(std::move(impl));
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
    const Impl& m = *impl_;
    std::vector<int32_t> out;
    out.reserve(text.size() / 3 + 2);
    if (add_special && m.add_bos) out.push_back(m.bos);

    // SentencePiece puts its space prefix before every stretch of text that follows a special token
    // (or starts the input), as llama.cpp does.
    bool after_special = true;
    auto encode_text = [&](std::string_view raw) {
        if (m.kind == Kind::spm) {
            m.spm->encode(raw, m.add_space_prefix && after_special, out);
        } else {
            m.bpe->encode(raw, out);
        }
        after_special = false;
    };
    auto allowed = [&](int32_t id) {
        return m.types[static_cast<size_t>(id)] == TokenType::user_defined || (parse_special && m.is_special(id));
    };
    size_t raw_begin = 0;
    for (size_t pos = 0; pos < text.size();) {
        auto [len, id] = m.specials.match(text, pos, allowed);
        if (len == 0) {
            ++pos;
            continue;
        }
        if (pos > raw_begin) encode_text(text.substr(raw_begin, pos - raw_begin));
        out.push_back(id);
        after_special = true;
        pos += len;
        raw_begin = pos;
    }
    if (raw_begin < text.size()) encode_text(text.substr(raw_begin));

    if (add_special && m.add_eos) out.push_back(m.eos);
    return out;
}

const std::string& Tokenizer::token_to_piece(int32_t id, bool special) const {
    impl_->check(id);
    if (special && impl_->is_special(id)) return impl_->text(id);
    return impl_->pieces[static_cast<size_t>(id)];
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool special) const {
    const Impl& m = *impl_;
    std::string text;
    bool strip_space = m.kind == Kind::spm && m.add_space_prefix;
    for (int32_t id : ids) {
        const std::string& piece = token_to_piece(id, special);
        if (piece.empty()) continue;
        size_t skip = 0;
        if (strip_space && !m.is_special(id)) {
            skip = m.types[static_cast<size_t>(id)] == TokenType::normal && piece[0] == ' ' ? 1 : 0;
            strip_space = false;
        }
        text.append(piece, skip);
    }
    return text;
}

const std::string& Tokenizer::token_text(int32_t id) const {
    impl_->check(id);
    return impl_->text(id);
}

TokenType Tokenizer::token_type(int32_t id) const {
    impl_->check(id);
    return impl_->types[static_cast<size_t>(id)];
}

Tokenizer::Kind Tokenizer::kind() const { return impl_->kind; }
int32_t Tokenizer::n_vocab() const { return impl_->n_vocab(); }
int32_t Tokenizer::bos() const { return impl_->bos; }
int32_t Tokenizer::eos() const { return impl_->eos; }
int32_t Tokenizer::unk() const { return impl_->unk; }
int32_t Tokenizer::pad() const { return impl_->pad; }
bool Tokenizer::add_bos() const { return impl_->add_bos; }
bool Tokenizer::add_eos() const { return impl_->add_eos; }
bool Tokenizer::is_control(int32_t id) const { return token_type(id) == TokenType::control; }
bool Tokenizer::is_eog(int32_t id) const { return impl_->eog.count(id) != 0; }

}  // namespace strata
