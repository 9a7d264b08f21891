// Each pre-tokenizer is a list of regexes applied one after the other: a regex cuts every fragment
// the previous ones produced into its matches and the gaps between them (llama.cpp's
// unicode_regex_split). Every regex here is a matcher: given a position, the length of the match
// that starts there (0: none), looking no further than the fragment's end, which acts as the end
// of the input for lookaheads and `$`. \s means Unicode White_Space, as in llama.cpp (which maps
// non-ASCII spaces to \v before handing text to std::regex).
#include "tokenizer/pre_tokenizer.h"

#include <cstdint>
#include <string>

#include "tokenizer/unicode.h"
#include "util/error.h"

namespace strata {

namespace {

using unicode::Flags;

struct Range {
    uint32_t first, last;
};

template <size_t N>
bool in_ranges(uint32_t cp, const Range (&ranges)[N]) {
    for (const Range& r : ranges) {
        if (cp >= r.first && cp <= r.last) return true;
    }
    return false;
}

// Code points [begin, end) of the text, as one regex sees them.
struct Fragment {
    const uint32_t* cp;
    size_t begin, end;
    Flags flags(size_t i) const { return unicode::flags(cp[i]); }
    bool is_space(size_t i) const { return flags(i).is_whitespace(); }
    bool is_newline(size_t i) const { return cp[i] == '\r' || cp[i] == '\n'; }
    // Neither \s, \p{L} nor \p{N}: what [^\s\p{L}\p{N}] accepts.
    bool is_other(size_t i) const {
        Flags f = flags(i);
        return !f.is_whitespace() && !f.is_letter() && !f.is_number();
    }
    template <class Pred>
    size_t run_end(size_t i, Pred pred) const {
        while (i < end && pred(i)) ++i;
        return i;
    }
};

using Matcher = size_t (*)(const Fragment&, size_t pos);
using Stage = void (*)(const Fragment&, std::vector<size_t>& ends);

// Leftmost matches, left to right, without overlap; gaps between them become fragments too.
template <Matcher match>
void scan(const Fragment& f, std::vector<size_t>& ends) {
    size_t gap = f.begin;
    for (size_t pos = f.begin; pos < f.end;) {
        size_t n = match(f, pos);
        if (n == 0) {
            ++pos;
            continue;
        }
        if (pos > gap) ends.push_back(pos);
        pos += n;
        ends.push_back(pos);
        gap = pos;
    }
    if (gap < f.end) ends.push_back(f.end);
}

uint32_t ascii_lower(uint32_t c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

// 's|'t|'re|'ve|'m|'ll|'d, optionally case-insensitive (only ASCII letters lower to these).
size_t match_contraction(const Fragment& f, size_t pos, bool ignore_case) {
    if (f.cp[pos] != '\'' || pos + 1 >= f.end) return 0;
    auto lower = [&](size_t i) { return ignore_case ? ascii_lower(f.cp[i]) : f.cp[i]; };
    uint32_t a = lower(pos + 1);
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if (pos + 2 >= f.end) return 0;
    uint32_t b = lower(pos + 2);
    return (a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l') ? 3 : 0;
}

// GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// Every position matches (llama.cpp's custom splitter emits an unmatched character on its own).
size_t match_gpt2(const Fragment& f, size_t pos) {
    if (size_t n = match_contraction(f, pos, false)) return n;
    const size_t start = pos + (f.cp[pos] == ' ' ? 1 : 0);
    if (start < f.end) {
        Flags g = f.flags(start);
        if (g.is_letter()) return f.run_end(start, [&](size_t i) { return f.flags(i).is_letter(); }) - pos;
        if (g.is_number()) return f.run_end(start, [&](size_t i) { return f.flags(i).is_number(); }) - pos;
        if (f.is_other(start)) return f.run_end(start, [&](size_t i) { return f.is_other(i); }) - pos;
    }
    const size_t spaces = f.run_end(pos, [&](size_t i) { return f.is_space(i); }) - pos;
    if (spaces > 1 && pos + spaces < f.end) return spaces - 1;  // \s+(?!\S): leave one for the next word
    return spaces > 0 ? spaces : 1;
}

// Llama 3: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|
//          \s*[\r\n]+|\s+(?!\S)|\s+          (Qwen 2: \p{N} instead of \p{N}{1,3})
template <size_t MaxDigits>
size_t match_llama3(const Fragment& f, size_t pos) {
    if (size_t n = match_contraction(f, pos, true)) return n;
    const Flags here = f.flags(pos);
    if (!f.is_newline(pos) && !here.is_number()) {
        if (here.is_letter() || (pos + 1 < f.end && f.flags(pos + 1).is_letter())) {
            return f.run_end(pos + 1, [&](size_t i) { return f.flags(i).is_letter(); }) - pos;
        }
    }
    if (here.is_number()) {
        size_t n = f.run_end(pos, [&](size_t i) { return f.flags(i).is_number(); }) - pos;
        return n < MaxDigits ? n : MaxDigits;
    }
    const size_t start = pos + (f.cp[pos] == ' ' ? 1 : 0);
    if (start >= f.end || f.is_other(start)) {
        size_t end = f.run_end(start, [&](size_t i) { return f.is_other(i); });
        return f.run_end(end, [&](size_t i) { return f.is_newline(i); }) - pos;
    }
    size_t spaces = 0;
    size_t through_newline = 0;  // \s*[\r\n]+ ends after the run's last newline
    for (size_t i = pos; i < f.end && f.is_space(i); ++i) {
        ++spaces;
        if (f.is_newline(i)) through_newline = spaces;
    }
    if (through_newline > 0) return through_newline;
    if (spaces > 1 && pos + spaces < f.end) return spaces - 1;
    return spaces > 0 ? spaces : 1;
}

bool is_symbol_in_punct_class(uint32_t c, bool with_backtick) {
    return c == '$' || c == '+' || c == '<' || c == '=' || c == '>' || c == '^' || c == '~' || c == '|' ||
           (with_backtick && c == '`');
}

// Falcon: [\p{P}\$\+<=>\^~\|`]+        default: [\p{P}\$\+<=>\^~\|]+
template <bool WithBacktick>
size_t match_punctuation_run(const Fragment& f, size_t pos) {
    return f.run_end(pos, [&](size_t i) {
        return f.flags(i).is_punctuation() || is_symbol_in_punct_class(f.cp[i], WithBacktick);
    }) - pos;
}

// [0-9][0-9][0-9]
size_t match_three_digits(const Fragment& f, size_t pos) {
    if (pos + 3 > f.end) return 0;
    for (size_t i = pos; i < pos + 3; ++i) {
        if (f.cp[i] < '0' || f.cp[i] > '9') return 0;
    }
    return 3;
}

// \p{N}
size_t match_digit(const Fragment& f, size_t pos) { return f.flags(pos).is_number() ? 1 : 0; }

// \p{N}+
size_t match_digit_run(const Fragment& f, size_t pos) {
    return f.run_end(pos, [&](size_t i) { return f.flags(i).is_number(); }) - pos;
}

// DeepSeek LLM's regexes name their classes as code point ranges. llama.cpp matches them with
// std::wregex after replacing non-ASCII spaces by \v, so a space never falls inside a range.

// Cased letters (Lu, Ll, Lt) as listed in DeepSeek's tokenizer.json.
constexpr Range kDeepseekLetters[] = {
    {0x41, 0x5A},       {0x61, 0x7A},       {0xB5, 0xB5},       {0xC0, 0xD6},       {0xD8, 0xF6},
    {0xF8, 0x1BA},      {0x1BC, 0x1BF},     {0x1C4, 0x293},     {0x295, 0x2AF},     {0x370, 0x373},
    {0x376, 0x377},     {0x37B, 0x37D},     {0x37F, 0x37F},     {0x386, 0x386},     {0x388, 0x38A},
    {0x38C, 0x38C},     {0x38E, 0x3A1},     {0x3A3, 0x3F5},     {0x3F7, 0x481},     {0x48A, 0x52F},
    {0x531, 0x556},     {0x10A0, 0x10C5},   {0x13A0, 0x13F5},   {0x13F8, 0x13FD},   {0x1C90, 0x1CBA},
    {0x1CBD, 0x1CBF},   {0x1D00, 0x1D2B},   {0x1D6B, 0x1D77},   {0x1D79, 0x1D9A},   {0x1E00, 0x1F15},
    {0x1F18, 0x1F1D},   {0x1F20, 0x1F45},   {0x1F48, 0x1F4D},   {0x1F50, 0x1F57},   {0x1F59, 0x1F59},
    {0x1F5B, 0x1F5B},   {0x1F5D, 0x1F5D},   {0x1F5F, 0x1F7D},   {0x1F80, 0x1FB4},   {0x1FB6, 0x1FBC},
    {0x1FBE, 0x1FBE},   {0x1FC2, 0x1FC4},   {0x1FC6, 0x1FCC},   {0x1FD0, 0x1FD3},   {0x1FD6, 0x1FDB},
    {0x1FE0, 0x1FEC},   {0x1FF2, 0x1FF4},   {0x1FF6, 0x1FFC},   {0x2102, 0x2102},   {0x2107, 0x2107},
    {0x210A, 0x2113},   {0x2115, 0x2115},   {0x2119, 0x211D},   {0x2124, 0x2124},   {0x2126, 0x2126},
    {0x2128, 0x2128},   {0x212A, 0x212D},   {0x212F, 0x2134},   {0x2139, 0x2139},   {0x213C, 0x213F},
    {0x2145, 0x2149},   {0x214E, 0x214E},   {0x2183, 0x2184},   {0x2C00, 0x2C7B},   {0x2C7E, 0x2CE4},
    {0x2CEB, 0x2CEE},   {0x2CF2, 0x2CF3},   {0xA640, 0xA66D},   {0xA680, 0xA69B},   {0xA722, 0xA76F},
    {0xA771, 0xA787},   {0xA78B, 0xA78E},   {0xAB70, 0xABBF},   {0xFB00, 0xFB06},   {0xFB13, 0xFB17},
    {0xFF21, 0xFF3A},   {0xFF41, 0xFF5A},   {0x10400, 0x1044F}, {0x104B0, 0x104D3}, {0x104D8, 0x104FB},
    {0x10C80, 0x10CB2}, {0x10CC0, 0x10CF2}, {0x118A0, 0x118DF}, {0x1E900, 0x1E943},
};
// [!-/:-~！-／：-～‘-‟　-。]
constexpr Range kDeepseekPunctuation[] = {{0x21, 0x2F},     {0x3A, 0x7E},     {0xFF01, 0xFF0F},
                                          {0xFF1A, 0xFF5E}, {0x2018, 0x201F}, {0x3000, 0x3002}};
// [一-龥ࠀ-一가-퟿]
constexpr Range kDeepseekCjk[] = {{0x4E00, 0x9FA5}, {0x800, 0x4E00}, {0xAC00, 0xD7FF}};

template <const auto& Ranges>
bool in_class(const Fragment& f, size_t i) {
    return !f.is_space(i) && in_ranges(f.cp[i], Ranges);
}

// [\r\n]
size_t match_newline(const Fragment& f, size_t pos) { return f.is_newline(pos) ? 1 : 0; }

// \s?[class]+
template <const auto& Ranges>
size_t match_space_then_class_run(const Fragment& f, size_t pos) {
    auto in = [&](size_t i) { return in_class<Ranges>(f, i); };
    if (f.is_space(pos) && pos + 1 < f.end && in(pos + 1)) return f.run_end(pos + 1, in) - pos;
    return f.run_end(pos, in) - pos;
}

// [class]+
template <const auto& Ranges>
size_t match_class_run(const Fragment& f, size_t pos) {
    return f.run_end(pos, [&](size_t i) { return in_class<Ranges>(f, i); }) - pos;
}

// \s+$ — whitespace that runs to the fragment's end.
void split_trailing_space(const Fragment& f, std::vector<size_t>& ends) {
    size_t start = f.end;
    while (start > f.begin && f.is_space(start - 1)) --start;
    if (start > f.begin) ends.push_back(start);
    if (start < f.end) ends.push_back(f.end);
}

struct StageList {
    const Stage* stages;
    size_t count;
};

template <size_t N>
constexpr StageList stage_list(const Stage (&stages)[N]) {
    return {stages, N};
}

constexpr Stage kGpt2[] = {scan<match_gpt2>};
constexpr Stage kLlama3[] = {scan<match_llama3<3>>};
constexpr Stage kQwen2[] = {scan<match_llama3<1>>};
constexpr Stage kDefault[] = {scan<match_punctuation_run<false>>, scan<match_gpt2>, scan<match_digit_run>,
                              scan<match_three_digits>};
constexpr Stage kFalcon[] = {scan<match_punctuation_run<true>>, scan<match_gpt2>, scan<match_three_digits>};
constexpr Stage kStarcoder[] = {scan<match_digit>, scan<match_gpt2>};
constexpr Stage kDeepseekLlm[] = {scan<match_newline>,
                                  scan<match_space_then_class_run<kDeepseekLetters>>,
                                  scan<match_space_then_class_run<kDeepseekPunctuation>>,
                                  split_trailing_space,
                                  scan<match_class_run<kDeepseekCjk>>,
                                  scan<match_digit_run>};

StageList stages_of(PreTokenizer kind) {
    switch (kind) {
        case PreTokenizer::default_: return stage_list(kDefault);
        case PreTokenizer::gpt2: return stage_list(kGpt2);
        case PreTokenizer::llama3: return stage_list(kLlama3);
        case PreTokenizer::qwen2: return stage_list(kQwen2);
        case PreTokenizer::falcon: return stage_list(kFalcon);
        case PreTokenizer::starcoder: return stage_list(kStarcoder);
        case PreTokenizer::deepseek_llm: return stage_list(kDeepseekLlm);
    }
    return stage_list(kDefault);
}

struct NamedPreTokenizer {
    std::string_view name;
    PreTokenizerInfo info;
};

// tokenizer.ggml.pre values, grouped as llama.cpp's vocabulary loader groups them.
constexpr NamedPreTokenizer kNames[] = {
    {"default", {PreTokenizer::default_, false, false}},
    {"llama3", {PreTokenizer::llama3, true, true}},
    {"llama-v3", {PreTokenizer::llama3, true, true}},
    {"llama-bpe", {PreTokenizer::llama3, true, true}},
    {"falcon3", {PreTokenizer::llama3, true, true}},
    {"pixtral", {PreTokenizer::llama3, true, true}},
    {"dbrx", {PreTokenizer::llama3, false, false}},
    {"smaug-bpe", {PreTokenizer::llama3, false, false}},
    {"qwen2", {PreTokenizer::qwen2, false, false}},
    {"stablelm2", {PreTokenizer::qwen2, false, false}},
    {"deepseek-r1-qwen", {PreTokenizer::qwen2, false, false}},
    {"deepseek-llm", {PreTokenizer::deepseek_llm, false, false}},
    {"falcon", {PreTokenizer::falcon, false, false}},
    {"gpt-2", {PreTokenizer::gpt2, false, false}},
    {"phi-2", {PreTokenizer::gpt2, false, false}},
    {"mpt", {PreTokenizer::gpt2, false, false}},
    {"olmo", {PreTokenizer::gpt2, false, false}},
    {"jais", {PreTokenizer::gpt2, false, false}},
    {"starcoder", {PreTokenizer::starcoder, false, false}},
    {"refact", {PreTokenizer::starcoder, false, false}},
    {"command-r", {PreTokenizer::starcoder, false, false}},
    {"smollm", {PreTokenizer::starcoder, false, false}},
    {"codeshell", {PreTokenizer::starcoder, false, false}},
};

}  // namespace

PreTokenizerInfo pre_tokenizer_from_name(std::string_view name) {
    if (name.empty()) name = "default";
    for (const auto& n : kNames) {
        if (n.name == name) return n.info;
    }
    std::string known;
    for (const auto& n : kNames) known += (known.empty() ? "" : ", ") + std::string(n.name);
    fail("tokenizer.ggml.pre: unsupported pre-tokenizer '", name, "' (supported: ", known, ")");
}

void pre_tokenize(PreTokenizer kind, std::string_view text, std::vector<size_t>& word_ends) {
    if (text.empty()) return;
    std::vector<uint32_t> cps;
    std::vector<size_t> offsets;  // byte offset of each code point, plus the end
    cps.reserve(text.size());
    offsets.reserve(text.size() + 1);
    for (size_t pos = 0; pos < text.size();) {
        uint32_t cp;
        size_t len = unicode::decode_utf8(text, pos, &cp);
        cps.push_back(cp);
        offsets.push_back(pos);
        pos += len;
    }
    offsets.push_back(text.size());

    std::vector<size_t> ends{cps.size()};
    std::vector<size_t> next;
    const StageList stages = stages_of(kind);
    for (size_t s = 0; s < stages.count; ++s) {
        next.clear();
        size_t begin = 0;
        for (size_t end : ends) {
            stages.stages[s](Fragment{cps.data(), begin, end}, next);
            begin = end;
        }
        ends.swap(next);
    }
    for (size_t end : ends) word_ends.push_back(offsets[end]);
}

}  // namespace strata
