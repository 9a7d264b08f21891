#include "chat/jinja_value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "chat/jinja_sandbox.h"
#include "util/error.h"
#include "util/json.h"

namespace strata::jinja {

namespace {

[[noreturn]] void too_long(const char* what) {
    fail("a ", what, " longer than ", kMaxStringBytes, " bytes (the limit on any string a template makes)");
}

}  // namespace

const Value* Args::get(size_t i, std::string_view name) const {
    if (i < positional.size()) return &positional[i];
    for (const auto& [key, value] : named) {
        if (key == name) return &value;
    }
    return nullptr;
}

Value::Value(std::string s) : kind_(Kind::String), string_(std::make_shared<const std::string>(std::move(s))) {}

Value Value::undefined(std::string name) {
    Value v;
    v.string_ = std::make_shared<const std::string>(std::move(name));
    return v;
}

const std::string& Value::undefined_name() const {
    static const std::string unnamed;
    return string_ ? *string_ : unnamed;
}

void Value::set_depth(int depth) {
    if (depth > kMaxValueDepth) fail("a list or dict nested more than ", kMaxValueDepth, " levels deep");
    depth_ = static_cast<uint8_t>(depth);
}

Value Value::none() {
    Value v;
    v.kind_ = Kind::None;
    return v;
}

Value Value::array(Array items, bool tuple) {
    Value v;
    v.kind_ = Kind::Array;
    v.tuple_ = tuple;
    int deepest = 0;
    for (const Value& item : items) {
        deepest = std::max<int>(deepest, item.depth_);
        v.holds_reference_ = v.holds_reference_ || item.holds_reference_;
    }
    v.set_depth(deepest + 1);
    v.array_ = std::make_shared<Array>(std::move(items));
    return v;
}

Value Value::object(Object members) {
    Value v;
    v.kind_ = Kind::Object;
    int deepest = 0;
    for (const auto& member : members) {
        deepest = std::max<int>(deepest, member.second.depth_);
        v.holds_reference_ = v.holds_reference_ || member.second.holds_reference_;
    }
    v.set_depth(deepest + 1);
    v.object_ = std::make_shared<Object>(std::move(members));
    return v;
}

Value Value::namespace_object(Object members) {
    for (const auto& [key, value] : members) {
        if (value.holds_reference_) fail("namespace(", key, "=…): a namespace cannot hold a namespace or a function");
    }
    Value v = object(std::move(members));
    v.namespace_ = true;
    v.holds_reference_ = true;
    return v;
}

Value Value::function(Function fn) {
    Value v;
    v.kind_ = Kind::Function;
    v.holds_reference_ = true;
    v.function_ = std::make_shared<Function>(std::move(fn));
    return v;
}

Value Value::from_json(const Json& json) {
    switch (json.kind()) {
        case Json::Kind::Null: return none();
        case Json::Kind::Bool: return Value(json.as_bool());
        case Json::Kind::Number: {
            const double d = json.as_number();
            if (d == std::floor(d) && std::fabs(d) < 9007199254740992.0) return Value(static_cast<int64_t>(d));
            return Value(d);
        }
        case Json::Kind::String: return Value(json.as_string());
        case Json::Kind::Array: {
            Array items;
            for (const Json& item : json.items()) items.push_back(from_json(item));
            return array(std::move(items));
        }
        case Json::Kind::Object: {
            Object members;
            for (const auto& [key, value] : json.members()) members.emplace_back(key, from_json(value));
            return object(std::move(members));
        }
    }
    return none();
}

bool Value::truthy() const {
    switch (kind_) {
        case Kind::Undefined:
        case Kind::None: return false;
        case Kind::Bool:
        case Kind::Int: return int_ != 0;
        case Kind::Float: return float_ != 0;
        case Kind::String: return !string_->empty();
        case Kind::Array: return !array_->empty();
        case Kind::Object: return !object_->empty();
        case Kind::Function: return true;
    }
    return false;
}

int64_t Value::as_int() const {
    if (kind_ != Kind::Int && kind_ != Kind::Bool) fail("expected an integer, got ", type_name());
    return int_;
}

double Value::as_number() const {
    if (kind_ == Kind::Float) return float_;
    if (kind_ == Kind::Int || kind_ == Kind::Bool) return static_cast<double>(int_);
    fail("expected a number, got ", type_name());
}

const std::string& Value::as_string() const {
    if (kind_ != Kind::String) fail("expected a string, got ", type_name());
    return *string_;
}

const Array& Value::items() const {
    if (kind_ != Kind::Array) fail("expected a list, got ", type_name());
    return *array_;
}

const Object& Value::members() const {
    if (kind_ != Kind::Object) fail("expected a mapping, got ", type_name());
    return *object_;
}

const Function& Value::function() const {
    if (kind_ != Kind::Function) fail("'", type_name(), "' object is not callable");
    return *function_;
}

const Value* Value::find(std::string_view key) const {
    if (kind_ != Kind::Object) return nullptr;
    for (const auto& [k, v] : *object_) {
        if (k == key) return &v;
    }
    return nullptr;
}

void Value::set_member(const std::string& key, Value v) const {
    if (!is_namespace()) fail("cannot assign attribute '", key, "' on a ", type_name(), " (only on a namespace())");
    if (v.holds_reference_) fail("cannot assign a namespace or a function to the namespace attribute '", key, "'");
    if (v.depth_ + 1 > kMaxValueDepth) fail("a namespace nested more than ", kMaxValueDepth, " levels deep");
    for (auto& [k, existing] : *object_) {
        if (k == key) {
            existing = std::move(v);
            return;
        }
    }
    object_->emplace_back(key, std::move(v));
}

std::string Value::type_name() const {
    switch (kind_) {
        case Kind::Undefined: return "Undefined";
        case Kind::None: return "NoneType";
        case Kind::Bool: return "bool";
        case Kind::Int: return "int";
        case Kind::Float: return "float";
        case Kind::String: return "str";
        case Kind::Array: return tuple_ ? "tuple" : "list";
        case Kind::Object: return namespace_ ? "Namespace" : "dict";
        case Kind::Function: return "function";
    }
    return "?";
}

std::string python_float(double d) {
    if (std::isnan(d)) return "nan";
    if (std::isinf(d)) return d < 0 ? "-inf" : "inf";
    // Shortest round-trip digits, as Python's repr uses ("d.ddde±x"), re-laid out by Python's
    // rule below; in fixed buffers, as printing a list of floats calls this per item.
    char buf[64];
    const char* const end = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific).ptr;
    const char* p = buf;
    std::string out;
    if (*p == '-') {
        out += '-';
        ++p;
    }
    const char* const e = std::find(p, end, 'e');
    char digits[32];
    size_t n = 0;
    for (const char* q = p; q < e; ++q) {
        if (*q != '.') digits[n++] = *q;
    }
    int exp = 0;
    std::from_chars(e + (e[1] == '+' ? 2 : 1), end, exp);
    if (exp < -4 || exp >= 16) {
        out += digits[0];
        if (n > 1) out.append(".").append(digits + 1, n - 1);
        char ebuf[16];
        std::snprintf(ebuf, sizeof ebuf, "e%c%02d", exp < 0 ? '-' : '+', std::abs(exp));
        return out + ebuf;
    }
    if (exp < 0) return out.append("0.").append(static_cast<size_t>(-exp - 1), '0').append(digits, n);
    const size_t int_digits = static_cast<size_t>(exp) + 1;
    if (n <= int_digits) return out.append(digits, n).append(int_digits - n, '0').append(".0");
    return out.append(digits, int_digits).append(".").append(digits + int_digits, n - int_digits);
}

namespace {

void repr_string(std::string& out, const std::string& s) {
    // Python prefers single quotes, switching to double ones when that avoids escaping.
    const char quote = (s.find('\'') != std::string::npos && s.find('"') == std::string::npos) ? '"' : '\'';
    out += quote;
    for (unsigned char c : s) {
        if (c == '\\' || c == quote) {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c == '\n') {
            out += "\\n";
        } else if (c == '\r') {
            out += "\\r";
        } else if (c == '\t') {
            out += "\\t";
        } else if (c < 0x20 || c == 0x7f) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", c);
            out += buf;
        } else {
            out += static_cast<char>(c);
        }
    }
    out += quote;
}

// Strings grow by appends; past the limit the value is refused before anything larger is built.
void check_length(const std::string& out, const char* what) {
    if (out.size() > kMaxStringBytes) too_long(what);
}

}  // namespace

std::string Value::str(Budget& budget) const {
    switch (kind_) {
        case Kind::Undefined: return "";
        case Kind::String: budget.bytes(string_->size()); return *string_;
        default: return repr(budget);
    }
}

std::string Value::repr(Budget& budget) const {
    std::string out;
    repr_into(out, budget);
    budget.bytes(out.size());
    return out;
}

// Every value visited adds at least one byte, so the work is bounded by the string's limit too.
void Value::repr_into(std::string& out, Budget& budget) const {
    budget.steps(1);
    check_length(out, "printed value");
    switch (kind_) {
        case Kind::Undefined: break;
        case Kind::None: out += "None"; break;
        case Kind::Bool: out += int_ ? "True" : "False"; break;
        case Kind::Int: out += std::to_string(int_); break;
        case Kind::Float: out += python_float(float_); break;
        case Kind::String: repr_string(out, *string_); break;
        case Kind::Array:
            out += tuple_ ? "(" : "[";
            for (size_t i = 0; i < array_->size(); ++i) {
                if (i) out += ", ";
                (*array_)[i].repr_into(out, budget);
            }
            if (tuple_ && array_->size() == 1) out += ",";
            out += tuple_ ? ")" : "]";
            break;
        case Kind::Object:
            out += "{";
            for (size_t i = 0; i < object_->size(); ++i) {
                if (i) out += ", ";
                repr_string(out, (*object_)[i].first);
                out += ": ";
                (*object_)[i].second.repr_into(out, budget);
            }
            out += "}";
            break;
        case Kind::Function: out += "<function>"; break;
    }
    check_length(out, "printed value");
}

std::string Value::to_json(Budget& budget, int indent, const std::string& item_sep, const std::string& key_sep,
                           bool sort_keys) const {
    std::string out;
    // Python's json.dumps layout: with an indent, every item on its own line; empty containers
    // stay "[]" / "{}".
    std::function<void(const Value&, int)> write = [&](const Value& v, int depth) {
        budget.steps(1);
        check_length(out, "JSON text");
        auto newline = [&](int d) {
            if (indent < 0) return;
            const size_t width = static_cast<size_t>(indent) * static_cast<size_t>(d);
            if (width > kMaxStringBytes - out.size()) too_long("JSON text");
            out += '\n';
            out.append(width, ' ');
        };
        switch (v.kind_) {
            case Kind::None: out += "null"; break;
            case Kind::Bool: out += v.int_ ? "true" : "false"; break;
            case Kind::Int: out += std::to_string(v.int_); break;
            case Kind::Float:
                if (std::isnan(v.float_))
                    out += "NaN";
                else if (std::isinf(v.float_))
                    out += v.float_ < 0 ? "-Infinity" : "Infinity";
                else
                    out += python_float(v.float_);
                break;
            case Kind::String: json_quote(out, *v.string_); break;
            case Kind::Array: {
                if (v.array_->empty()) {
                    out += "[]";
                    break;
                }
                out += '[';
                for (size_t i = 0; i < v.array_->size(); ++i) {
                    if (i) out += item_sep;
                    newline(depth + 1);
                    write((*v.array_)[i], depth + 1);
                }
                newline(depth);
                out += ']';
                break;
            }
            case Kind::Object: {
                if (v.object_->empty()) {
                    out += "{}";
                    break;
                }
                std::vector<const std::pair<std::string, Value>*> members;
                for (const auto& m : *v.object_) members.push_back(&m);
                if (sort_keys) {
                    std::stable_sort(members.begin(), members.end(),
                                     [](auto* a, auto* b) { return a->first < b->first; });
                }
                out += '{';
                for (size_t i = 0; i < members.size(); ++i) {
                    if (i) out += item_sep;
                    newline(depth + 1);
                    json_quote(out, members[i]->first);
                    out += key_sep;
                    write(members[i]->second, depth + 1);
                }
                newline(depth);
                out += '}';
                break;
            }
            case Kind::Undefined:
            case Kind::Function: fail("Object of type ", v.type_name(), " is not JSON serializable");
        }
        check_length(out, "JSON text");
    };
    write(*this, 0);
    budget.bytes(out.size());
    return out;
}

bool Value::equals(const Value& other, Budget& budget) const {
    budget.steps(1);
    if (is_number() && other.is_number()) {
        if (kind_ == Kind::Float || other.kind_ == Kind::Float) return as_number() == other.as_number();
        return int_ == other.int_;
    }
    if (kind_ != other.kind_) return false;
    switch (kind_) {
        case Kind::Undefined:
        case Kind::None: return true;
        case Kind::String:
            if (string_->size() != other.string_->size()) return false;
            budget.bytes(string_->size());
            return *string_ == *other.string_;
        case Kind::Array:
            if (array_ == other.array_) return tuple_ == other.tuple_;
            return tuple_ == other.tuple_ && array_->size() == other.array_->size() &&
                   std::equal(array_->begin(), array_->end(), other.array_->begin(),
                              [&](const Value& a, const Value& b) { return a.equals(b, budget); });
        case Kind::Object:
            // A namespace compares by identity, as a Python object without __eq__ does.
            if (namespace_ || other.namespace_ || object_ == other.object_) return object_ == other.object_;
            if (object_->size() != other.object_->size()) return false;
            budget.items(object_->size() * object_->size());
            for (const auto& [k, v] : *object_) {
                const Value* o = other.find(k);
                if (!o || !v.equals(*o, budget)) return false;
            }
            return true;
        case Kind::Function: return function_ == other.function_;
        default: return false;
    }
}

int Value::compare(const Value& other, Budget& budget) const {
    budget.steps(1);
    if (is_number() && other.is_number()) {
        if (kind_ != Kind::Float && other.kind_ != Kind::Float) return int_ < other.int_ ? -1 : (int_ > other.int_);
        const double a = as_number(), b = other.as_number();
        return a < b ? -1 : (a > b ? 1 : 0);
    }
    if (kind_ == Kind::String && other.kind_ == Kind::String) {
        // Byte order of UTF-8 is code point order, which Python compares.
        budget.bytes(std::min(string_->size(), other.string_->size()));
        const int c = string_->compare(*other.string_);
        return c < 0 ? -1 : (c > 0 ? 1 : 0);
    }
    if (kind_ == Kind::Array && other.kind_ == Kind::Array) {
        const size_t n = std::min(array_->size(), other.array_->size());
        for (size_t i = 0; i < n; ++i) {
            if (const int c = (*array_)[i].compare((*other.array_)[i], budget)) return c;
        }
        return array_->size() < other.array_->size() ? -1 : (array_->size() > other.array_->size() ? 1 : 0);
    }
    fail("'<' not supported between instances of '", type_name(), "' and '", other.type_name(), "'");
}

std::vector<size_t> utf8_offsets(std::string_view s) {
    std::vector<size_t> offsets;
    for (size_t i = 0; i < s.size(); ++i) {
        // Continuation bytes (10xxxxxx) belong to the character before them.
        if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) offsets.push_back(i);
    }
    offsets.push_back(s.size());
    return offsets;
}

size_t utf8_length(std::string_view s) {
    size_t n = 0;
    for (const char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
    return n;
}

}  // namespace strata::jinja
