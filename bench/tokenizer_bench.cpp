// Tokenizer speed: MB/s on 1 MiB of tinyshakespeare, against the sentencepiece library on the same
// text in the same run (the baseline), for SentencePiece vocabularies, and for byte-level BPE ones.
//
//   tokenizer_bench [--shared DIR] [--repeat N]
//
// Each figure is the best of N runs (default 5). "whole" tokenizes the text as one string,
// "lines" line by line (how prompts usually arrive). Ids are checked against the library's; a
// mismatch is reported and makes the exit status 1.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <vector>

#include "format/gguf.h"
#include "tokenizer/spm.h"
#include "tokenizer/tokenizer.h"

#ifdef STRATA_HAVE_SENTENCEPIECE
#include "spm_from_library.h"  // tests/: the library's vocabulary as an spm::Model
#endif

namespace fs = std::filesystem;

namespace {

constexpr size_t kTextBytes = 1u << 20;

std::string read_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        std::fprintf(stderr, "tokenizer_bench: cannot open %s\n", path.c_str());
        std::exit(1);
    }
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::vector<std::string> split_lines(const std::string& text) {
    std::vector<std::string> lines;
    size_t pos = 0;
    while (pos < text.size()) {
        size_t end = std::min(text.find('\n', pos), text.size());
        lines.push_back(text.substr(pos, end - pos));
        pos = end + 1;
    }
    return lines;
}

using Encoder = std::function<std::vector<int32_t>(const std::string&)>;

struct Result {
    double mb_per_s;
    std::vector<int32_t> ids;  // of the whole text, or of all lines concatenated
};

Result measure(const Encoder& encode, const std::vector<std::string>& inputs, size_t bytes, int repeat) {
    Result r{0, {}};
    for (int i = 0; i < repeat; ++i) {
        std::vector<int32_t> ids;
        auto t0 = std::chrono::steady_clock::now();
        for (const std::string& s : inputs) {
            std::vector<int32_t> part = encode(s);
            ids.insert(ids.end(), part.begin(), part.end());
        }
        double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        r.mb_per_s = std::max(r.mb_per_s, static_cast<double>(bytes) / 1e6 / seconds);
        r.ids = std::move(ids);
    }
    return r;
}

struct Row {
    std::string name;
    Encoder encode;
};

// Runs every encoder on the whole text and on its lines; the first row is the baseline.
bool report(const std::string& title, const std::vector<Row>& rows, const std::string& text, int repeat) {
    const std::vector<std::string> whole{text};
    const std::vector<std::string> lines = split_lines(text);
    std::printf("\n%s\n", title.c_str());
    std::printf("  %-44s %12s %8s %12s %8s  %s\n", "tokenizer", "whole MB/s", "ratio", "lines MB/s", "ratio", "ids");
    bool same = true;
    Result base_whole, base_lines;
    for (size_t i = 0; i < rows.size(); ++i) {
        Result w = measure(rows[i].encode, whole, text.size(), repeat);
        Result l = measure(rows[i].encode, lines, text.size(), repeat);
        if (i == 0) {
            base_whole = w;
            base_lines = l;
        }
        const bool equal = w.ids == base_whole.ids && l.ids == base_lines.ids;
        same = same && equal;
        std::printf("  %-44s %12.2f %7.2fx %12.2f %7.2fx  %zu tokens%s\n", rows[i].name.c_str(), w.mb_per_s,
                    w.mb_per_s / base_whole.mb_per_s, l.mb_per_s, l.mb_per_s / base_lines.mb_per_s, w.ids.size(),
                    i == 0 ? " (baseline)" : equal ? ", identical" : ", DIFFERENT");
    }
    return same;
}

std::vector<int32_t> encode_spm(const spm::Model& m, const std::string& s) {
    std::vector<int32_t> ids;
    m.encode(s, true, ids);
    return ids;
}

strata::Tokenizer load_gguf(const fs::path& path) {
    auto file = strata::GgufFile::open(path.string());
    return strata::Tokenizer::from_gguf(*file);
}

#ifdef STRATA_HAVE_SENTENCEPIECE

bool bench_sentencepiece(const fs::path& shared, const std::string& text, int repeat) {
    struct Case {
        const char* model;
        const char* gguf;  // the same vocabulary converted by llama.cpp
    };
    bool same = true;
    for (const Case& c : {Case{"tokenizers/llama2-tokenizer.model", "vocab/ggml-vocab-llama-spm.gguf"},
                          Case{"hf/tokenizer/tokenizer.model", "gguf/llama-f32.gguf"}}) {
        sentencepiece::SentencePieceProcessor sp;
        if (!sp.Load((shared / "fixtures" / c.model).string()).ok()) {
            std::fprintf(stderr, "tokenizer_bench: cannot load %s\n", c.model);
            return false;
        }
        const spm::Model ours = strata::test::spm_model_from_library(sp);
        const strata::Tokenizer tok = load_gguf(shared / "fixtures" / c.gguf);
        std::vector<Row> rows = {
            {"sentencepiece library", [&](const std::string& s) {
                 std::vector<int> ids;
                 sp.Encode(s, &ids);
                 return std::vector<int32_t>(ids.begin(), ids.end());
             }},
            {"spm.h (pieces from the library)", [&](const std::string& s) { return encode_spm(ours, s); }},
            {std::string("strata::Tokenizer (") + c.gguf + ")",
             [&](const std::string& s) { return tok.encode(s, false, false); }},
        };
        same = report(std::string("SentencePiece: ") + c.model + " (" + std::to_string(sp.GetPieceSize()) + " pieces)",
                      rows, text, repeat) && same;
    }
    return same;
}
#endif

void bench_bpe(const fs::path& shared, const std::string& text, int repeat) {
    for (const char* name : {"ggml-vocab-gpt-2.gguf", "ggml-vocab-deepseek-llm.gguf", "ggml-vocab-falcon.gguf"}) {
        const strata::Tokenizer tok = load_gguf(shared / "fixtures" / "vocab" / name);
        std::vector<Row> rows = {{std::string("strata::Tokenizer (") + name + ")",
                                  [&](const std::string& s) { return tok.encode(s, false, false); }}};
        report(std::string("byte-level BPE: ") + name + " (no baseline library available)", rows, text, repeat);
    }
}

// Single lines of 10 MiB: nothing splits them into lines, so any step that is quadratic in the
// length of a merge sequence or a word would show here.
void bench_long_lines(const fs::path& shared, const std::string& text) {
    std::string prose;  // the text repeated, newlines turned into spaces
    while (prose.size() < 10 * kTextBytes) prose += text;
    prose.resize(10 * kTextBytes);
    std::replace(prose.begin(), prose.end(), '\n', ' ');
    std::string letters(10 * kTextBytes, 'a');  // pseudo-random letters, a space every ~1000
    uint32_t x = 12345;
    for (char& c : letters) {
        x = x * 1664525u + 1013904223u;
        c = (x >> 16) % 1000 == 0 ? ' ' : static_cast<char>('a' + (x >> 8) % 26);
    }
    const std::string one_letter(kTextBytes, 'x');
    std::printf("\nsingle lines (best of 1)\n");
    for (const char* name : {"ggml-vocab-llama-spm.gguf", "ggml-vocab-gpt-2.gguf"}) {
        const strata::Tokenizer tok = load_gguf(shared / "fixtures" / "vocab" / name);
        struct Input {
            const char* what;
            const std::string* text;
        };
        for (const Input& in : {Input{"10 MiB of prose", &prose}, Input{"10 MiB of random letters", &letters},
                                Input{"1 MiB of 'x'", &one_letter}}) {
            auto t0 = std::chrono::steady_clock::now();
            const size_t n = tok.encode(*in.text, false, false).size();
            double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            std::printf("  %-28s %-26s %8.3f s %8.2f MB/s  %zu tokens\n", name, in.what, seconds,
                        static_cast<double>(in.text->size()) / 1e6 / seconds, n);
        }
    }
}

}  // namespace

int main(int argc, char** argv) {
    fs::path shared = fs::path(STRATA_SOURCE_DIR).parent_path() / "shared";
    if (const char* env = std::getenv("STRATA_SHARED")) shared = env;
    int repeat = 5;
    for (int i = 1; i < argc; ++i) {
        if (!std::strcmp(argv[i], "--shared") && i + 1 < argc) {
            shared = argv[++i];
        } else if (!std::strcmp(argv[i], "--repeat") && i + 1 < argc) {
            repeat = std::max(1, std::atoi(argv[++i]));
        } else {
            std::fprintf(stderr, "usage: tokenizer_bench [--shared DIR] [--repeat N]\n");
            return 2;
        }
    }
    std::string text = read_file(shared / "data" / "tinyshakespeare.txt");
    text.resize(std::min(text.size(), kTextBytes));  // ASCII, so no character is cut
    std::printf("text: %zu bytes of tinyshakespeare, %zu lines; best of %d runs\n", text.size(),
                split_lines(text).size(), repeat);
    bool same = true;
#ifdef STRATA_HAVE_SENTENCEPIECE
    same = bench_sentencepiece(shared, text, repeat);
#else
    std::printf("(built without the sentencepiece library: no baseline)\n");
#endif
    bench_bpe(shared, text, repeat);
    bench_long_lines(shared, text);
    return same ? 0 : 1;
}
