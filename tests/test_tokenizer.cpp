// Tokenizer tests: llama.cpp's own tokenizer fixtures (exact ids for 8 real vocabularies), the
// perplexity token stream of the reference models, special tokens, streaming detokenization and
// bad input (invalid UTF-8, empty text, multi-megabyte lines).
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "format/gguf.h"
#include "gguf_builder.h"
#include "test_support.h"
#include "tokenizer/stream_detokenizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"
#include "util/error.h"

namespace fs = std::filesystem;
using strata::Tokenizer;

namespace {

Tokenizer load(const fs::path& path) {
    auto file = strata::GgufFile::open(path.string());
    return Tokenizer::from_gguf(*file);
}

struct VocabCase {
    std::string text;
    std::vector<int32_t> ids;
};

// Reads NAME.gguf.inp / .out as llama.cpp's test-tokenizer-0 does: inputs are separated by
// "\n__ggml_vocab_test__\n" (so the file ends with one), outputs are one line of ids each.
std::vector<VocabCase> read_vocab_cases(const fs::path& gguf) {
    const std::string inp = strata::test::read_text(gguf.string() + ".inp");
    const std::string out = strata::test::read_text(gguf.string() + ".out");
    const std::string sep = "\n__ggml_vocab_test__\n";
    std::vector<VocabCase> cases;
    for (size_t pos = 0; pos < inp.size();) {
        size_t next = inp.find(sep, pos);
        if (next == std::string::npos) next = inp.size();
        cases.push_back({inp.substr(pos, next - pos), {}});
        pos = next + sep.size();
    }
    size_t line_start = 0;
    for (VocabCase& c : cases) {
        REQUIRE(line_start <= out.size());
        size_t line_end = out.find('\n', line_start);
        if (line_end == std::string::npos) line_end = out.size();
        const std::string line = out.substr(line_start, line_end - line_start);
        size_t pos = 0;
        while (pos < line.size()) {
            if (line[pos] == ' ') {
                ++pos;
                continue;
            }
            size_t used = 0;
            c.ids.push_back(std::stoi(line.substr(pos), &used));
            pos += used;
        }
        line_start = line_end + 1;
    }
    return cases;
}

bool is_valid_utf8(const std::string& s) {
    for (size_t pos = 0; pos < s.size();) {
        uint32_t cp;
        size_t len = strata::unicode::decode_utf8(s, pos, &cp);
        if (cp == strata::unicode::kReplacement && len == 1) return false;
        pos += len;
    }
    return true;
}

std::string ids_text(const std::vector<int32_t>& ids) {
    std::string s;
    for (int32_t id : ids) s += std::to_string(id) + " ";
    return s;
}

}  // namespace

TEST_CASE("tokenizer: llama.cpp vocab fixtures give exactly the expected ids") {
    if (strata::test::skip_without_shared("vocab fixtures")) return;
    std::vector<fs::path> vocabs;
    for (const auto& entry : fs::directory_iterator(strata::test::fixture("vocab"))) {
        if (entry.path().extension() == ".gguf") vocabs.push_back(entry.path());
    }
    std::sort(vocabs.begin(), vocabs.end());
    REQUIRE(vocabs.size() >= 8);
    for (const fs::path& path : vocabs) {
        CAPTURE(path.filename().string());
        const Tokenizer tok = load(path);
        const std::vector<VocabCase> cases = read_vocab_cases(path);
        REQUIRE(cases.size() >= 40);
        int passed = 0;
        for (const VocabCase& c : cases) {
            CAPTURE(c.text);
            const std::vector<int32_t> ids = tok.encode(c.text, /*add_special=*/false, /*parse_special=*/false);
            CHECK_MESSAGE(ids == c.ids, "got      ", ids_text(ids), "\nexpected ", ids_text(c.ids));
            // Every fixture string is valid UTF-8 and every vocabulary here can spell any byte, so
            // decoding is lossless (no clean_up_tokenization_spaces is applied).
            CHECK(tok.decode(ids) == c.text);
            passed += ids == c.ids;
        }
        MESSAGE(path.filename().string(), ": ", passed, "/", cases.size(), " strings exact");
    }
}

TEST_CASE("tokenizer: llama-f32.gguf encodes the perplexity text to eval_ids.json") {
    if (strata::test::skip_without_shared("llama-f32.gguf")) return;
    const Tokenizer tok = load(strata::test::fixture("gguf/llama-f32.gguf"));
    const std::string text = strata::test::read_text(strata::test::fixture("hf/tokenizer/eval.txt"));
    const std::string json = strata::test::read_text(strata::test::fixture("hf/tokenizer/eval_ids.json"));
    std::vector<int32_t> expected;  // a flat JSON list of integers
    for (size_t pos = json.find_first_of("0123456789"); pos != std::string::npos;
         pos = json.find_first_of("0123456789", pos)) {
        size_t used = 0;
        expected.push_back(std::stoi(json.substr(pos, 12), &used));
        pos += used;
    }
    REQUIRE(expected.size() > 1000);
    const std::vector<int32_t> ids = tok.encode(text, /*add_special=*/true, /*parse_special=*/false);
    REQUIRE(ids.size() == expected.size());
    CHECK(ids == expected);
    CHECK(ids[0] == tok.bos());
    CHECK(tok.decode(ids) == text);
}

TEST_CASE("tokenizer: special tokens, BOS/EOS flags and metadata") {
    if (strata::test::skip_without_shared("vocab fixtures")) return;
    const Tokenizer spm = load(strata::test::fixture("vocab/ggml-vocab-llama-spm.gguf"));
    CHECK(spm.kind() == Tokenizer::Kind::spm);
    CHECK(spm.n_vocab() == 32000);
    CHECK(spm.bos() == 1);
    CHECK(spm.eos() == 2);
    CHECK(spm.add_bos());
    CHECK_FALSE(spm.add_eos());
    CHECK(spm.is_control(1));
    CHECK(spm.is_eog(2));
    CHECK_FALSE(spm.is_eog(1));

    CHECK(spm.encode("Hello", true, false) == std::vector<int32_t>{1, 15043});
    CHECK(spm.encode("", true, false) == std::vector<int32_t>{1});
    CHECK(spm.encode("", false, false).empty());
    // "<s>" is a control token: recognized only with parse_special; the text after a special token
    // gets SentencePiece's space prefix again, as in llama.cpp.
    CHECK(spm.encode("<s>Hello", false, true) == std::vector<int32_t>{1, 15043});
    const std::vector<int32_t> literal = spm.encode("<s>Hello", false, false);
    CHECK(std::find(literal.begin(), literal.end(), 1) == literal.end());
    CHECK(spm.decode(literal) == "<s>Hello");
    CHECK(spm.decode({1, 15043, 2}) == "Hello");
    CHECK(spm.decode({1, 15043, 2}, /*special=*/true) == "<s>Hello</s>");
    CHECK(spm.token_to_piece(13) == "\n");  // <0x0A>
    CHECK(spm.token_text(15043) == "\xE2\x96\x81Hello");
    CHECK_THROWS_AS(spm.token_to_piece(32000), strata::Error);
    CHECK_THROWS_AS(spm.token_to_piece(-1), strata::Error);

    const Tokenizer gpt2 = load(strata::test::fixture("vocab/ggml-vocab-gpt-2.gguf"));
    CHECK(gpt2.kind() == Tokenizer::Kind::bpe);
    CHECK_FALSE(gpt2.add_bos());
    CHECK(gpt2.is_eog(50256));
    CHECK(gpt2.encode("a<|endoftext|>b", true, true) == std::vector<int32_t>{64, 50256, 65});
    CHECK(gpt2.encode("<|endoftext|>", false, false).size() > 1);
    CHECK(gpt2.token_to_piece(50256).empty());
    CHECK(gpt2.token_to_piece(50256, true) == "<|endoftext|>");

    // User-defined tokens are always split out (mpt's runs of spaces are user-defined).
    const Tokenizer mpt = load(strata::test::fixture("vocab/ggml-vocab-mpt.gguf"));
    const std::vector<int32_t> spaced = mpt.encode("a    b", false, false);
    CHECK(mpt.token_type(spaced[1]) == strata::TokenType::user_defined);
    CHECK(mpt.decode(spaced) == "a    b");
}

TEST_CASE("tokenizer: the stream detokenizer emits only whole UTF-8 characters") {
    if (strata::test::skip_without_shared("vocab fixtures")) return;
    for (const std::string name : {"vocab/ggml-vocab-llama-spm.gguf", "vocab/ggml-vocab-gpt-2.gguf"}) {
        const std::string vocab = name;
        CAPTURE(vocab);
        const Tokenizer tok = load(strata::test::fixture(name));
        const std::string text = "llama 🦙 ünïcödé 我想在 \xE1\x9E\x80 end";
        const std::vector<int32_t> ids = tok.encode(text, false, false);
        strata::StreamDetokenizer stream(tok);
        std::string streamed;
        for (int32_t id : ids) {
            std::string part = stream.push(id);
            // Whatever comes out decodes as complete characters on its own.
            CHECK(is_valid_utf8(part));
            streamed += part;
        }
        streamed += stream.flush();
        // Unlike decode(), streaming keeps SentencePiece's leading space: mid-generation, a "▁word"
        // token does mean " word".
        const std::string prefix = tok.kind() == Tokenizer::Kind::spm ? " " : "";
        CHECK(streamed == prefix + tok.decode(ids));
    }
    const Tokenizer tok = load(strata::test::fixture("vocab/ggml-vocab-llama-spm.gguf"));
    strata::StreamDetokenizer stream(tok);
    // <0xF0><0x9F><0xA6><0x99> is 🦙: nothing until the fourth byte.
    CHECK(stream.push(243).empty());
    CHECK(stream.push(162).empty());
    CHECK(stream.push(169).empty());
    CHECK(stream.push(156) == "🦙");
    // A byte that cannot continue the pending sequence: the stuck lead byte becomes U+FFFD.
    CHECK(stream.push(243).empty());
    CHECK(stream.push(68) == "\xEF\xBF\xBD" "A");  // <0xF0> then <0x41>
    CHECK(stream.push(243).empty());
    CHECK(stream.flush() == "\xEF\xBF\xBD");
    CHECK(stream.flush().empty());
}

TEST_CASE("tokenizer: invalid UTF-8 and random bytes never crash; byte-complete vocabularies round-trip") {
    if (strata::test::skip_without_shared("vocab fixtures")) return;
    std::mt19937 rng(1234);
    std::vector<std::string> inputs = {
        "\xFF", "\xC3", "abc\x80" "def", "\xE4\xBD", "\xED\xA0\x80", "\xF4\x90\x80\x80", "\xC0\xAF",
        std::string("a\0b", 3), "\xF0\x9F\xA6", "\xF0\x9F\xA6\x99\x99\x99", " \xFF ", "\n\xFE\n",
    };
    for (int i = 0; i < 200; ++i) {
        std::string s(static_cast<size_t>(rng() % 40), '\0');
        for (char& c : s) c = static_cast<char>(rng() & 0xFF);
        inputs.push_back(s);
    }
    std::vector<fs::path> vocabs;
    for (const auto& entry : fs::directory_iterator(strata::test::fixture("vocab"))) {
        if (entry.path().extension() == ".gguf") vocabs.push_back(entry.path());
    }
    for (const fs::path& path : vocabs) {
        const std::string vocab = path.filename().string();
        CAPTURE(vocab);
        const Tokenizer tok = load(path);
        // Invalid bytes are kept, not replaced by U+FFFD (as llama.cpp and the sentencepiece library
        // do): SPM emits their <0xXX> byte pieces, byte-level BPE their byte spelling. So where the
        // vocabulary has a token for every byte (llama-spm, phi-3 and gpt-2 here) any bytes come
        // back exactly. The others lack bytes that never occur in UTF-8 text (0xC0, 0xF5..0xFF;
        // falcon also some control bytes; deepseek spells them as user-defined tokens): such a byte
        // is dropped, as in llama.cpp.
        const bool every_byte = vocab == "ggml-vocab-llama-spm.gguf" || vocab == "ggml-vocab-phi-3.gguf" ||
                                vocab == "ggml-vocab-gpt-2.gguf";
        for (const std::string& s : inputs) {
            CAPTURE(s);
            const std::vector<int32_t> ids = tok.encode(s, true, true);
            for (int32_t id : ids) REQUIRE((id >= 0 && id < tok.n_vocab()));
            if (every_byte) CHECK(tok.decode(tok.encode(s, false, false)) == s);
        }
    }
}

TEST_CASE("tokenizer: multi-megabyte single lines stay fast (no quadratic step)") {
    if (strata::test::skip_without_shared("vocab fixtures")) return;
    std::mt19937 rng(99);
    // 1 MiB of letters with rare spaces, and 256 KiB of one letter: long merge sequences for
    // SentencePiece, very long words for BPE's pre-tokenizer.
    std::string line(1u << 20, 'a');
    for (char& c : line) c = static_cast<char>(rng() % 1000 == 0 ? ' ' : 'a' + rng() % 26);
    const std::string same_letter(1u << 18, 'x');
    for (const std::string name : {"vocab/ggml-vocab-llama-spm.gguf", "vocab/ggml-vocab-gpt-2.gguf"}) {
        const std::string vocab = name;
        CAPTURE(vocab);
        const Tokenizer tok = load(strata::test::fixture(name));
        for (const std::string* text : {static_cast<const std::string*>(&line), &same_letter}) {
            auto t0 = std::chrono::steady_clock::now();
            const std::vector<int32_t> ids = tok.encode(*text, false, false);
            double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            MESSAGE(name, ": ", text->size() >> 10, " KiB in one line -> ", ids.size(), " tokens in ", seconds, " s");
            // About 0.2 s each in Release; a quadratic step would take hours.
            CHECK(seconds < 10.0);
            CHECK(tok.decode(ids) == *text);
        }
    }
}

TEST_CASE("tokenizer: errors name the file and the key") {
    using strata::test::GgufBytes;
    auto strings = [](GgufBytes& g, const std::string& key, const std::vector<std::string>& v) {
        g.str(key).put<uint32_t>(9).put<uint32_t>(8).put<uint64_t>(v.size());
        for (const auto& s : v) g.str(s);
    };
    auto expect_error = [](GgufBytes& g, const std::string& needle) {
        auto file = strata::GgufFile::from_bytes(g.b, "vocab.gguf");
        try {
            Tokenizer::from_gguf(*file);
            FAIL("no error for ", needle);
        } catch (const strata::Error& e) {
            CAPTURE(e.what());
            CHECK(std::string(e.what()).find("vocab.gguf") != std::string::npos);
            CHECK(std::string(e.what()).find(needle) != std::string::npos);
        }
    };
    {
        GgufBytes g;
        g.header(0, 1).kv_str("general.name", "x");
        expect_error(g, "tokenizer.ggml.model");
    }
    {
        GgufBytes g;
        g.header(0, 2).kv_str("tokenizer.ggml.model", "wordpiece");
        strings(g, "tokenizer.ggml.tokens", {"a", "b"});
        expect_error(g, "wordpiece");
    }
    {
        GgufBytes g;
        g.header(0, 4).kv_str("tokenizer.ggml.model", "gpt2").kv_str("tokenizer.ggml.pre", "no-such-pre");
        strings(g, "tokenizer.ggml.tokens", {"a", "b"});
        strings(g, "tokenizer.ggml.merges", {"a b"});
        expect_error(g, "no-such-pre");
    }
    {
        GgufBytes g;
        g.header(0, 3).kv_str("tokenizer.ggml.model", "llama").kv_u32("tokenizer.ggml.bos_token_id", 7);
        strings(g, "tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>"});
        expect_error(g, "tokenizer.ggml.bos_token_id");
    }
}
