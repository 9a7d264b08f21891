// spm.h against the sentencepiece library itself (linked into the tests only): the same .model
// files, read through the library's API, must give the same ids for thousands of strings —
// Shakespeare, random Unicode of many scripts, control characters, long whitespace runs — and the
// GGUF vocabularies converted from those models must tokenize the same way through strata::Tokenizer.
#include <doctest/doctest.h>

#ifdef STRATA_HAVE_SENTENCEPIECE

#include <sentencepiece_processor.h>

#include <algorithm>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "format/gguf.h"
#include "spm_from_library.h"
#include "test_support.h"
#include "tokenizer/spm.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace {

struct Reference {
    sentencepiece::SentencePieceProcessor library;
    std::unique_ptr<spm::Model> ours;

    std::vector<int32_t> library_ids(const std::string& text) const {
        std::vector<int> ids;
        REQUIRE(library.Encode(text, &ids).ok());
        return {ids.begin(), ids.end()};
    }
    std::vector<int32_t> our_ids(const std::string& text) const {
        std::vector<int32_t> ids;
        ours->encode(text, /*add_dummy_prefix=*/true, ids);
        return ids;
    }
};

std::unique_ptr<Reference> load_reference(const std::string& relative) {
    auto ref = std::make_unique<Reference>();
    const auto status = ref->library.Load(strata::test::fixture(relative).string());
    REQUIRE_MESSAGE(status.ok(), status.ToString());
    ref->ours = std::make_unique<spm::Model>(strata::test::spm_model_from_library(ref->library));
    return ref;
}

// Code point ranges to draw random text from: scripts, marks, emoji, controls, spaces.
struct Pool {
    uint32_t first, last;
};
constexpr Pool kPools[] = {
    {0x20, 0x7E},       {0x20, 0x20},       {0x0A, 0x0A},       {0x09, 0x0D},     {0x01, 0x1F},
    {0x7F, 0x9F},       {0xA0, 0x24F},      {0x300, 0x36F},     {0x391, 0x3C9},   {0x400, 0x4FF},
    {0x5D0, 0x5EA},     {0x600, 0x6FF},     {0x900, 0x97F},     {0xE00, 0xE7F},   {0x1780, 0x17FF},
    {0x2000, 0x206F},   {0x3000, 0x303F},   {0x3040, 0x30FF},   {0x4E00, 0x9FFF}, {0xAC00, 0xD7A3},
    {0xFE00, 0xFE0F},   {0xFF00, 0xFFEF},   {0x1F300, 0x1F64F}, {0x1F900, 0x1F9FF}, {0x1F3FB, 0x1F3FF},
    {0x200D, 0x200D},   {0x10000, 0x10FFFF},
};

std::string random_unicode(std::mt19937& rng, size_t max_chars) {
    std::string s;
    const size_t n = 1 + rng() % max_chars;
    // A few pools per string, so scripts mix the way real text does (words, then an emoji…).
    const Pool& a = kPools[rng() % std::size(kPools)];
    const Pool& b = kPools[rng() % std::size(kPools)];
    for (size_t i = 0; i < n; ++i) {
        const Pool& p = rng() % 4 == 0 ? b : rng() % 3 == 0 ? kPools[0] : a;
        uint32_t cp = p.first + static_cast<uint32_t>(rng() % (p.last - p.first + 1));
        if (cp >= 0xD800 && cp <= 0xDFFF) cp = 'x';  // surrogates are not characters
        if (cp == 0x2581) cp = '_';                  // "▁" itself would decode as a space
        strata::unicode::append_utf8(s, cp);
    }
    return s;
}

std::vector<std::string> test_strings(std::mt19937& rng) {
    std::vector<std::string> strings;
    const std::string text = strata::test::read_text(strata::test::shared_dir() / "data" / "tinyshakespeare.txt");
    // Every paragraph (with its newlines) as one input, and every fourth line on its own.
    size_t pos = 0;
    for (size_t line = 0; pos < text.size(); ++line) {
        size_t end = std::min(text.find('\n', pos), text.size());
        if (line % 4 == 0) strings.push_back(text.substr(pos, end - pos));
        pos = end + 1;
    }
    for (pos = 0; pos < text.size();) {
        size_t end = std::min(text.find("\n\n", pos), text.size());
        strings.push_back(text.substr(pos, end - pos + 1));
        pos = end + 2;
    }
    for (int i = 0; i < 3000; ++i) strings.push_back(random_unicode(rng, 1 + rng() % 60));
    // Runs of spaces, newlines and tabs, alone and around words.
    for (int n = 1; n <= 70; ++n) {
        const std::string run(static_cast<size_t>(n), ' ');
        strings.push_back(run);
        strings.push_back(std::string(static_cast<size_t>(n), '\n'));
        strings.push_back("a" + run + "b");
        strings.push_back(" \n\t" + run + "\n\n x" + std::string(static_cast<size_t>(n % 7), '\t'));
    }
    return strings;
}

// Replaces each byte that is not part of valid UTF-8 by U+FFFD, as the library's normalizer does.
std::string replace_invalid(const std::string& s) {
    std::string out;
    for (size_t pos = 0; pos < s.size();) {
        uint32_t cp;
        size_t len = strata::unicode::decode_utf8(s, pos, &cp);
        if (cp == strata::unicode::kReplacement && len == 1) {
            strata::unicode::append_utf8(out, cp);
        } else {
            out.append(s, pos, len);
        }
        pos += len;
    }
    return out;
}

}  // namespace

TEST_CASE("spm: the same ids as the sentencepiece library for thousands of strings") {
    if (strata::test::skip_without_shared("sentencepiece .model fixtures")) return;
    for (const std::string model : {"tokenizers/llama2-tokenizer.model", "hf/tokenizer/tokenizer.model"}) {
        CAPTURE(model);
        const auto ref = load_reference(model);
        std::mt19937 rng(7);
        const std::vector<std::string> strings = test_strings(rng);
        size_t mismatches = 0;
        for (const std::string& s : strings) {
            const std::vector<int32_t> ours = ref->our_ids(s);
            if (ours != ref->library_ids(s) && ++mismatches <= 5) {
                CHECK_MESSAGE(false, "ids differ for '", s, "'");
            }
            CHECK(ref->ours->decode(ours, /*strip_dummy_prefix=*/true) == s);
        }
        MESSAGE(model, ": ", strings.size() - mismatches, "/", strings.size(), " strings give identical ids");
        CHECK(mismatches == 0);
    }
}

TEST_CASE("spm: invalid UTF-8 differs from the library only by keeping the bytes") {
    if (strata::test::skip_without_shared("sentencepiece .model fixtures")) return;
    const auto ref = load_reference("tokenizers/llama2-tokenizer.model");
    std::mt19937 rng(11);
    for (int i = 0; i < 500; ++i) {
        std::string s = random_unicode(rng, 20);
        for (int k = 0; k < 3; ++k) s.insert(rng() % (s.size() + 1), 1, static_cast<char>(0x80 + rng() % 0x80));
        CAPTURE(s);
        // The library turns every invalid byte into U+FFFD; we emit the byte's <0xXX> piece instead,
        // so decoding gives the input back. With the substitution done first, the ids agree.
        CHECK(ref->our_ids(replace_invalid(s)) == ref->library_ids(s));
        CHECK(ref->ours->decode(ref->our_ids(s), true) == s);
    }
}

TEST_CASE("spm: GGUF vocabularies tokenize like the .model files they came from") {
    if (strata::test::skip_without_shared("GGUF and .model fixtures")) return;
    struct Pair {
        const char* gguf;
        const char* model;
    };
    for (const Pair& p : {Pair{"vocab/ggml-vocab-llama-spm.gguf", "tokenizers/llama2-tokenizer.model"},
                          Pair{"gguf/llama-f32.gguf", "hf/tokenizer/tokenizer.model"}}) {
        CAPTURE(p.gguf);
        const auto ref = load_reference(p.model);
        auto file = strata::GgufFile::open(strata::test::fixture(p.gguf).string());
        const strata::Tokenizer tok = strata::Tokenizer::from_gguf(*file);
        REQUIRE(tok.n_vocab() == ref->library.GetPieceSize());
        for (int32_t id = 0; id < tok.n_vocab(); ++id) REQUIRE(tok.token_text(id) == ref->library.IdToPiece(id));
        std::mt19937 rng(3);
        for (int i = 0; i < 1000; ++i) {
            const std::string s = random_unicode(rng, 40);
            CAPTURE(s);
            CHECK(tok.encode(s, false, false) == ref->library_ids(s));
        }
    }
}

#endif  // STRATA_HAVE_SENTENCEPIECE
