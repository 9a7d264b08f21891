// Splits a template into text and the tokens inside {{ }} / {% %}, dropping comments, and applies
// jinja2's whitespace rules the way its lexer does (jinja2/lexer.py, `tokeniter`).
#include <cctype>
#include <charconv>
#include <cstring>

#include "chat/jinja_syntax.h"
#include "util/error.h"
#include "util/utf8.h"

namespace strata::jinja {

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// jinja2 reads the source line by line: "\r\n" and "\r" become "\n", and one trailing newline
// is dropped (keep_trailing_newline is off in transformers' environment).
std::string normalize_newlines(std::string_view src) {
    std::string out;
    out.reserve(src.size());
    for (size_t i = 0; i < src.size(); ++i) {
        if (src[i] == '\r') {
            out += '\n';
            if (i + 1 < src.size() && src[i + 1] == '\n') ++i;
        } else {
            out += src[i];
        }
    }
    if (!out.empty() && out.back() == '\n') out.pop_back();
    return out;
}

class Lexer {
public:
    explicit Lexer(std::string_view src) : src_(src) {}

    std::vector<Token> run() {
        // Whether the last thing consumed ended a line: lstrip_blocks then also strips a tag's
        // indentation when no newline separates it from the previous tag.
        bool line_starting = true;
        while (pos_ < src_.size()) {
            const size_t open = find_tag(pos_);
            std::string text(src_.substr(pos_, open - pos_));
            if (open == src_.size()) {
                emit_text(text);
                break;
            }
            const char type = src_[open + 1];  // '{', '%' or '#'
            const char mark = open + 2 < src_.size() ? src_[open + 2] : '\0';
            if (mark == '-') {
                while (!text.empty() && is_space(text.back())) text.pop_back();
            } else if (mark != '+' && type != '{') {
                const size_t l_pos = text.rfind('\n') + 1;  // npos + 1 == 0
                bool blank = l_pos < text.size();
                for (size_t i = l_pos; i < text.size(); ++i) blank = blank && is_space(text[i]);
                if ((l_pos > 0 || line_starting) && blank) text.resize(l_pos);
            }
            emit_text(text);
            advance_to(open + 2 + (mark == '-' || mark == '+' ? 1 : 0));
            if (type == '#') {
                line_starting = close_comment();
            } else {
                line_starting = lex_tag(type == '{');
            }
        }
        tokens_.push_back({Token::Kind::End, "", 0, 0, line_});
        return std::move(tokens_);
    }

private:
    [[noreturn]] void error(const std::string& what) const { fail("chat template line ", line_, ": ", what); }

    size_t find_tag(size_t from) const {
        for (size_t i = from; i + 1 < src_.size(); ++i) {
            if (src_[i] == '{' && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#')) return i;
        }
        return src_.size();
    }

    void advance_to(size_t p) {
        for (; pos_ < p; ++pos_) line_ += src_[pos_] == '\n';
    }

    void emit_text(const std::string& text) {
        if (!text.empty()) tokens_.push_back({Token::Kind::Text, text, 0, 0, line_});
    }

    // After a tag's closing delimiter: `-` strips all following whitespace, trim_blocks the one
    // newline after a block or comment (not after {{ }}), `+` keeps it. Returns whether the
    // consumed text ends with a newline.
    bool after_close(size_t close_end, bool dash, bool plus, bool is_block) {
        advance_to(close_end);
        size_t p = pos_;
        if (dash) {
            while (p < src_.size() && is_space(src_[p])) ++p;
        } else if (is_block && !plus && p < src_.size() && src_[p] == '\n') {
            ++p;
        }
        advance_to(p);
        return p > close_end && src_[p - 1] == '\n';
    }

    bool close_comment() {
        const size_t end = src_.find("#}", pos_);
        if (end == std::string_view::npos) error("comment not closed with #}");
        const bool dash = end > pos_ && src_[end - 1] == '-';
        const bool plus = end > pos_ && src_[end - 1] == '+';
        return after_close(end + 2, dash, plus, true);
    }

    // Tokens up to the closing }} or %}; braces must balance first, so "}}" inside a dict literal
    // does not end the tag.
    bool lex_tag(bool is_var) {
        tokens_.push_back({is_var ? Token::Kind::VarBegin : Token::Kind::BlockBegin, "", 0, 0, line_});
        const char close = is_var ? '}' : '%';
        int depth = 0;
        while (true) {
            while (pos_ < src_.size() && is_space(src_[pos_])) advance_to(pos_ + 1);
            if (pos_ >= src_.size()) error(is_var ? "expression not closed with }}" : "tag not closed with %}");
            const std::string_view rest = src_.substr(pos_);
            if (depth == 0) {
                const bool dash = rest.size() >= 3 && rest[0] == '-' && rest[1] == close && rest[2] == '}';
                const bool plus = !is_var && rest.size() >= 3 && rest[0] == '+' && rest[1] == close && rest[2] == '}';
                if (dash || plus || (rest.size() >= 2 && rest[0] == close && rest[1] == '}')) {
                    tokens_.push_back({is_var ? Token::Kind::VarEnd : Token::Kind::BlockEnd, "", 0, 0, line_});
                    return after_close(pos_ + (dash || plus ? 3 : 2), dash, plus, !is_var);
                }
            }
            const char c = rest[0];
            if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
                size_t n = 1;
                while (n < rest.size() && (std::isalnum(static_cast<unsigned char>(rest[n])) || rest[n] == '_')) ++n;
                push(Token::Kind::Name, std::string(rest.substr(0, n)), n);
            } else if (std::isdigit(static_cast<unsigned char>(c))) {
                lex_number(rest);
            } else if (c == '\'' || c == '"') {
                lex_string(rest);
            } else {
                static const char* const ops[] = {"//", "**", "==", "!=", "<=", ">=", "+", "-", "*",
                                                  "/",  "%",  "~",  "(",  ")",  "[",  "]", "{", "}",
                                                  "<",  ">",  "=",  ".",  ":",  "|",  ",", ";"};
                const char* op = nullptr;
                for (const char* o : ops) {
                    if (rest.substr(0, std::char_traits<char>::length(o)) == o) {
                        op = o;
                        break;
                    }
                }
                if (!op) error(std::string("unexpected character '") + c + "'");
                const std::string s(op);
                if (s == "(" || s == "[" || s == "{") ++depth;
                if ((s == ")" || s == "]" || s == "}") && --depth < 0) error("unexpected '" + s + "'");
                push(Token::Kind::Op, s, s.size());
            }
        }
    }

    void push(Token::Kind kind, std::string text, size_t length) {
        tokens_.push_back({kind, std::move(text), 0, 0, line_});
        advance_to(pos_ + length);
    }

    // Integer literals in base 2, 8, 10 or 16 (with `_` between digits) and decimal floats, as
    // jinja2's lexer reads them. Python's integers are unbounded and its 1e999 is inf: a literal
    // that does not fit in 64 bits, or overflows a double, is an error here, as is a prefix without
    // digits (`0x`, `0b2`).
    void lex_number(std::string_view rest) {
        size_t n = 0;
        std::string digits;
        auto malformed = [&](size_t length) {
            error("malformed number literal '" + std::string(rest.substr(0, length)) + "'");
        };
        if (rest.size() > 2 && rest[0] == '0' && std::strchr("xXoObB", rest[1])) {
            const int base = (rest[1] == 'x' || rest[1] == 'X') ? 16 : (rest[1] == 'o' || rest[1] == 'O') ? 8 : 2;
            n = 2;
            while (n < rest.size() && (std::isalnum(static_cast<unsigned char>(rest[n])) || rest[n] == '_')) {
                if (rest[n] != '_') digits += rest[n];
                ++n;
            }
            int64_t value = 0;
            const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value, base);
            if (digits.empty() || end != digits.data() + digits.size()) malformed(n);
            if (ec == std::errc::result_out_of_range)
                error("integer literal " + std::string(rest.substr(0, n)) + too_large);
            tokens_.push_back({Token::Kind::Int, std::string(rest.substr(0, n)), value, 0, line_});
            advance_to(pos_ + n);
            return;
        }
        auto take_digits = [&] {
            while (n < rest.size() && (std::isdigit(static_cast<unsigned char>(rest[n])) || rest[n] == '_')) {
                if (rest[n] != '_') digits += rest[n];
                ++n;
            }
        };
        take_digits();
        bool is_float = false;
        if (n + 1 < rest.size() && rest[n] == '.' && std::isdigit(static_cast<unsigned char>(rest[n + 1]))) {
            is_float = true;
            digits += rest[n++];
            take_digits();
        }
        if (n < rest.size() && (rest[n] == 'e' || rest[n] == 'E')) {
            size_t m = n + 1;
            if (m < rest.size() && (rest[m] == '+' || rest[m] == '-')) ++m;
            if (m < rest.size() && std::isdigit(static_cast<unsigned char>(rest[m]))) {
                is_float = true;
                digits += std::string(rest.substr(n, m - n));
                n = m;
                take_digits();
            }
        }
        const std::string spelling(rest.substr(0, n));
        Token t{is_float ? Token::Kind::Float : Token::Kind::Int, spelling, 0, 0, line_};
        const char* first = digits.data();
        const char* last = digits.data() + digits.size();
        if (is_float) {
            const auto [end, ec] = std::from_chars(first, last, t.float_value);
            if (end != last) malformed(n);
            // Out of range: an underflow is 0.0 in Python too; an overflow would be inf.
            const bool negative_exponent =
                digits.find("e-") != std::string::npos || digits.find("E-") != std::string::npos;
            if (ec == std::errc::result_out_of_range && !negative_exponent) {
                error("float literal " + spelling + " is out of range for a double");
            }
            if (ec == std::errc::result_out_of_range) t.float_value = 0.0;
        } else {
            uint64_t magnitude = 0;
            const auto [end, ec] = std::from_chars(first, last, magnitude);
            if (end != last) malformed(n);
            constexpr uint64_t kMinMagnitude = uint64_t{1} << 63;  // |INT64_MIN|
            if (ec == std::errc::result_out_of_range || magnitude > kMinMagnitude) {
                error("integer literal " + spelling + too_large);
            }
            t.needs_minus = magnitude == kMinMagnitude;
            t.int_value = t.needs_minus ? INT64_MIN : static_cast<int64_t>(magnitude);
        }
        tokens_.push_back(t);
        advance_to(pos_ + n);
    }

    static constexpr const char* too_large = " does not fit in 64 bits";

    // Python string escapes, as jinja2 decodes them ("unicode-escape"); unknown ones stay as written.
    void lex_string(std::string_view rest) {
        const char quote = rest[0];
        std::string value;
        size_t i = 1;
        for (;; ++i) {
            if (i >= rest.size()) error("string not closed");
            const char c = rest[i];
            if (c == quote) break;
            if (c != '\\' || i + 1 >= rest.size()) {
                value += c;
                continue;
            }
            const char e = rest[++i];
            auto hex = [&](size_t digits) {
                const std::string_view spelled = rest.substr(i + 1, std::min(digits, rest.size() - i - 1));
                uint32_t cp = 0;
                const auto [end, ec] = std::from_chars(spelled.data(), spelled.data() + spelled.size(), cp, 16);
                if (spelled.size() < digits || end != spelled.data() + spelled.size() || ec != std::errc()) {
                    error(std::string("truncated or malformed \\") + e + " escape");
                }
                // Python accepts a lone surrogate in a str, but it cannot become UTF-8 text.
                if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
                    error(std::string("\\") + e + " escape of " + std::string(spelled) + " is not a Unicode character");
                }
                i += digits;
                append_utf8(value, cp);
            };
            switch (e) {
                case 'n': value += '\n'; break;
                case 't': value += '\t'; break;
                case 'r': value += '\r'; break;
                case 'b': value += '\b'; break;
                case 'f': value += '\f'; break;
                case 'v': value += '\v'; break;
                case 'a': value += '\a'; break;
                case '0': value += '\0'; break;
                case '\\': value += '\\'; break;
                case '\'': value += '\''; break;
                case '"': value += '"'; break;
                case '\n': break;
                case 'x': hex(2); break;
                case 'u': hex(4); break;
                case 'U': hex(8); break;
                default: value += '\\'; value += e;
            }
        }
        push(Token::Kind::String, value, i + 1);
    }

    std::string_view src_;
    size_t pos_ = 0;
    int line_ = 1;
    std::vector<Token> tokens_;
};

}  // namespace

std::vector<Token> lex(std::string_view source) {
    const std::string normalized = normalize_newlines(source);
    return Lexer(normalized).run();
}

}  // namespace strata::jinja
