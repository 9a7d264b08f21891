#include "util/json.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "util/error.h"
#include "util/utf8.h"

namespace strata {

namespace {

constexpr int kMaxDepth = 256;

struct Parser {
    std::string_view s;
    const std::string& source;
    size_t pos = 0;

    [[noreturn]] void error(const char* what) const { fail(source, ": invalid JSON at byte ", pos, ": ", what); }

    void skip_ws() {
        while (pos < s.size() && (s[pos] == ' ' || s[pos] == '\t' || s[pos] == '\n' || s[pos] == '\r')) ++pos;
    }
    bool consume(std::string_view lit) {
        if (s.substr(pos, lit.size()) != lit) return false;
        pos += lit.size();
        return true;
    }
    unsigned hex4() {
        if (pos + 4 > s.size()) error("truncated \\u escape");
        unsigned v = 0;
        for (int i = 0; i < 4; ++i) {
            char c = s[pos++];
            v <<= 4;
            if (c >= '0' && c <= '9') v |= c - '0';
            else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
            else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
            else error("bad hex digit in \\u escape");
        }
        return v;
    }
    std::string string() {
        ++pos;  // opening quote
        std::string out;
        while (true) {
            if (pos >= s.size()) error("unterminated string");
            char c = s[pos++];
            if (c == '"') return out;
            if (static_cast<unsigned char>(c) < 0x20) error("control character in string");
            if (c != '\\') {
                out += c;
                continue;
            }
            if (pos >= s.size()) error("unterminated escape");
            char e = s[pos++];
            switch (e) {
                case '"': out += '"'; break;
                case '\\': out += '\\'; break;
                case '/': out += '/'; break;
                case 'b': out += '\b'; break;
                case 'f': out += '\f'; break;
                case 'n': out += '\n'; break;
                case 'r': out += '\r'; break;
                case 't': out += '\t'; break;
                case 'u': {
                    uint32_t cp = hex4();
                    if (cp >= 0xD800 && cp < 0xDC00 && consume("\\u")) {  // surrogate pair
                        uint32_t lo = hex4();
                        if (lo < 0xDC00 || lo >= 0xE000) error("bad low surrogate");
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    }
                    append_utf8(out, cp);
                    break;
                }
                default: error("unknown escape");
            }
        }
    }
    Json value(int depth) {
        if (depth > kMaxDepth) error("nesting too deep");
        skip_ws();
        if (pos >= s.size()) error("unexpected end");
        char c = s[pos];
        if (c == '{') {
            ++pos;
            Json obj = Json::object();
            skip_ws();
            if (pos < s.size() && s[pos] == '}') { ++pos; return obj; }
            while (true) {
                skip_ws();
                if (pos >= s.size() || s[pos] != '"') error("expected a key");
                std::string key = string();
                skip_ws();
                if (pos >= s.size() || s[pos] != ':') error("expected ':'");
                ++pos;
                obj.set(key, value(depth + 1));
                skip_ws();
                if (pos < s.size() && s[pos] == ',') { ++pos; continue; }
                if (pos < s.size() && s[pos] == '}') { ++pos; return obj; }
                error("expected ',' or '}'");
            }
        }
        if (c == '[') {
            ++pos;
            Json arr = Json::array();
            skip_ws();
            if (pos < s.size() && s[pos] == ']') { ++pos; return arr; }
            while (true) {
                arr.push_back(value(depth + 1));
                skip_ws();
                if (pos < s.size() && s[pos] == ',') { ++pos; continue; }
                if (pos < s.size() && s[pos] == ']') { ++pos; return arr; }
                error("expected ',' or ']'");
            }
        }
        if (c == '"') return Json(string());
        if (consume("true")) return Json(true);
        if (consume("false")) return Json(false);
        if (consume("null")) return Json();
        if (consume("NaN")) return Json(std::nan(""));  // Python's json writes these
        if (consume("Infinity")) return Json(HUGE_VAL);
        if (consume("-Infinity")) return Json(-HUGE_VAL);
        size_t start = pos;
        if (pos < s.size() && (s[pos] == '-' || s[pos] == '+')) ++pos;
        while (pos < s.size() && (isdigit(static_cast<unsigned char>(s[pos])) || s[pos] == '.' || s[pos] == 'e' ||
                                  s[pos] == 'E' || s[pos] == '-' || s[pos] == '+')) {
            ++pos;
        }
        if (start == pos) error("unexpected character");
        std::string num(s.substr(start, pos - start));
        char* end = nullptr;
        double d = std::strtod(num.c_str(), &end);
        if (end != num.c_str() + num.size()) error("malformed number");
        return Json(d);
    }
};

}  // namespace

Json Json::parse(std::string_view text, const std::string& source) {
    Parser p{text, source};
    Json v = p.value(0);
    p.skip_ws();
    if (p.pos != text.size()) p.error("trailing characters");
    return v;
}

bool Json::as_bool() const {
    if (kind_ != Kind::Bool) fail("JSON value is not a bool");
    return bool_;
}
double Json::as_number() const {
    if (kind_ != Kind::Number) fail("JSON value is not a number");
    return number_;
}
int64_t Json::as_int() const {
    double d = as_number();
    if (d != std::floor(d)) fail("JSON number ", d, " is not an integer");
    // Outside int64 the conversion is undefined: 2^63 is the first double past it.
    if (d < -9223372036854775808.0 || d >= 9223372036854775808.0) fail("JSON number ", d, " is outside int64");
    return static_cast<int64_t>(d);
}
const std::string& Json::as_string() const {
    if (kind_ != Kind::String) fail("JSON value is not a string");
    return string_;
}
const std::vector<Json>& Json::items() const {
    if (kind_ != Kind::Array) fail("JSON value is not an array");
    return items_;
}
const std::vector<std::pair<std::string, Json>>& Json::members() const {
    if (kind_ != Kind::Object) fail("JSON value is not an object");
    return members_;
}
const Json* Json::find(std::string_view key) const {
    if (kind_ != Kind::Object) return nullptr;
    for (const auto& [k, v] : members_) {
        if (k == key) return &v;
    }
    return nullptr;
}
const Json& Json::at(std::string_view key) const {
    const Json* v = find(key);
    if (!v) fail("JSON object has no key '", key, "'");
    return *v;
}
size_t Json::size() const { return kind_ == Kind::Array ? items_.size() : kind_ == Kind::Object ? members_.size() : 0; }

void Json::push_back(Json v) {
    if (kind_ != Kind::Array) fail("JSON value is not an array");
    items_.push_back(std::move(v));
}
void Json::set(const std::string& key, Json v) {
    if (kind_ != Kind::Object) fail("JSON value is not an object");
    for (auto& [k, old] : members_) {
        if (k == key) { old = std::move(v); return; }
    }
    members_.emplace_back(key, std::move(v));
}

void json_quote(std::string& out, std::string_view s) {
    out += '"';
    for (char c : s) {
        unsigned char u = static_cast<unsigned char>(c);
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            case '\b': out += "\\b"; break;
            case '\f': out += "\\f"; break;
            default:
                if (u < 0x20) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\u%04x", u);
                    out += buf;
                } else {
                    out += c;
                }
        }
    }
    out += '"';
}

void Json::dump_to(std::string& out, int indent, int depth) const {
    auto newline = [&](int d) {
        if (indent < 0) return;
        out += '\n';
        out.append(static_cast<size_t>(indent * d), ' ');
    };
    switch (kind_) {
        case Kind::Null: out += "null"; break;
        case Kind::Bool: out += bool_ ? "true" : "false"; break;
        case Kind::Number: {
            char buf[32];
            if (std::isfinite(number_) && number_ == std::floor(number_) && std::fabs(number_) < 1e15) {
                std::snprintf(buf, sizeof buf, "%.0f", number_);
            } else {
                std::snprintf(buf, sizeof buf, "%.9g", number_);
            }
            out += buf;
            break;
        }
        case Kind::String: json_quote(out, string_); break;
        case Kind::Array:
            out += '[';
            for (size_t i = 0; i < items_.size(); ++i) {
                if (i) out += ',';
                newline(depth + 1);
                items_[i].dump_to(out, indent, depth + 1);
            }
            if (!items_.empty()) newline(depth);
            out += ']';
            break;
        case Kind::Object:
            out += '{';
            for (size_t i = 0; i < members_.size(); ++i) {
                if (i) out += ',';
                newline(depth + 1);
                json_quote(out, members_[i].first);
                out += indent < 0 ? ":" : ": ";
                members_[i].second.dump_to(out, indent, depth + 1);
            }
            if (!members_.empty()) newline(depth);
            out += '}';
            break;
    }
}

std::string Json::dump(int indent) const {
    std::string out;
    dump_to(out, indent, 0);
    return out;
}

}  // namespace strata
