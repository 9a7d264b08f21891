// Attribute, item and slice access, iteration, Python's str and dict methods, and the global
// functions. Strings are indexed by code point, as Python indexes them.
#include <string.h>  // memmem

#include <algorithm>
#include <cctype>
#include <ctime>

#include "chat/jinja_builtins.h"
#include "util/error.h"

namespace strata::jinja {

namespace {

// The code point starting at byte i (invalid bytes count as themselves).
uint32_t code_point(const std::string& s, size_t i, size_t* length) {
    const auto c = static_cast<unsigned char>(s[i]);
    const size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 1;
    if (i + n > s.size() || n == 1) {
        *length = 1;
        return c;
    }
    uint32_t cp = c & (0x7F >> n);
    for (size_t k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
    *length = n;
    return cp;
}

// str.isspace() for a code point: Python's whitespace set.
bool python_space(uint32_t cp) {
    return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
           cp == 0x3000;
}

// Python's str.split(sep, maxsplit): without sep, runs of whitespace separate and empty pieces drop.
Array python_split(Budget& budget, const std::string& s, const Value* sep, int64_t maxsplit, bool from_right) {
    budget.bytes(s.size());
    std::vector<std::string> parts;
    if (sep && !sep->is_none()) {
        const std::string& d = sep->as_string();
        if (d.empty()) fail("split(): empty separator");
        if (!from_right) {
            size_t pos = 0;
            for (size_t hit; (maxsplit < 0 || static_cast<int64_t>(parts.size()) < maxsplit) &&
                             (hit = find_text(s, d, pos)) != std::string::npos;) {
                parts.push_back(s.substr(pos, hit - pos));
                pos = hit + d.size();
            }
            parts.push_back(s.substr(pos));
        } else {
            size_t end = s.size();
            for (size_t hit; (maxsplit < 0 || static_cast<int64_t>(parts.size()) < maxsplit) && end >= d.size() &&
                             (hit = rfind_text(s, d, end - d.size())) != std::string::npos;) {
                parts.push_back(s.substr(hit + d.size(), end - hit - d.size()));
                end = hit;
            }
            parts.push_back(s.substr(0, end));
            std::reverse(parts.begin(), parts.end());
        }
    } else {
        if (from_right && maxsplit >= 0) fail("rsplit() without a separator but with maxsplit is not supported");
        auto space = [&](size_t i) { return std::isspace(static_cast<unsigned char>(s[i])) != 0; };
        size_t i = 0;
        while (i < s.size() && space(i)) ++i;
        while (i < s.size()) {
            if (maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit) {
                parts.push_back(s.substr(i));  // the rest, trailing whitespace kept as Python keeps it
                break;
            }
            size_t j = i;
            while (j < s.size() && !space(j)) ++j;
            parts.push_back(s.substr(i, j - i));
            for (i = j; i < s.size() && space(i);) ++i;
        }
    }
    budget.items(parts.size());
    Array out;
    for (auto& p : parts) out.emplace_back(std::move(p));
    return out;
}

Array python_splitlines(Budget& budget, const std::string& s) {
    budget.bytes(s.size());
    Array out;
    size_t start = 0;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\n' || s[i] == '\r') {
            out.emplace_back(s.substr(start, i - start));
            if (s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n') ++i;
            start = i + 1;
        }
    }
    if (start < s.size()) out.emplace_back(s.substr(start));
    budget.items(out.size());
    return out;
}

std::string ascii_case(std::string s, bool upper) {
    for (char& c : s)
        c = static_cast<char>(upper ? std::toupper(static_cast<unsigned char>(c))
                                    : std::tolower(static_cast<unsigned char>(c)));
    return s;
}

int64_t code_point_index(const std::string& s, size_t byte) {
    if (byte == std::string::npos) return -1;
    return static_cast<int64_t>(utf8_length(std::string_view(s).substr(0, byte)));
}

int64_t count_of(const std::string& s, const std::string& sub) {
    if (sub.empty()) return static_cast<int64_t>(utf8_length(s) + 1);
    int64_t n = 0;
    for (size_t pos = find_text(s, sub); pos != std::string::npos; pos = find_text(s, sub, pos + sub.size())) ++n;
    return n;
}

// Python's str.title(): a letter after a non-letter starts a word.
std::string python_title(const std::string& s) {
    std::string out = s;
    bool in_word = false;
    for (char& c : out) {
        const auto u = static_cast<unsigned char>(c);
        c = static_cast<char>(in_word ? std::tolower(u) : std::toupper(u));
        in_word = std::isalpha(u) != 0;
    }
    return out;
}

std::string python_capitalize(const std::string& s) {
    std::string out = ascii_case(s, false);
    if (!out.empty()) out[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(out[0])));
    return out;
}

std::string python_replace(Budget& budget, const std::string& s, const std::string& from, const std::string& to,
                           int64_t count) {
    std::string out;
    // Each piece is charged before it is appended, so `s.replace('', s)` in a loop stops at the
    // string limit instead of growing quadratically.
    auto append = [&](std::string_view piece) {
        budget.append(out.size(), piece.size());
        out += piece;
    };
    size_t pos = 0;
    for (int64_t n = 0; count < 0 || n < count; ++n) {
        const size_t hit = from.empty() ? (pos <= s.size() ? pos : std::string::npos) : find_text(s, from, pos);
        if (hit == std::string::npos) break;
        append(std::string_view(s).substr(pos, hit - pos));
        append(to);
        if (from.empty()) {
            if (hit == s.size()) return out;
            append(std::string_view(s).substr(hit, 1));
            pos = hit + 1;
        } else {
            pos = hit + from.size();
        }
    }
    append(std::string_view(s).substr(std::min(pos, s.size())));
    return out;
}

bool affix_match(const std::string& s, const Value& affix, bool prefix) {
    auto one = [&](const std::string& a) {
        return a.size() <= s.size() &&
               (prefix ? s.compare(0, a.size(), a) == 0 : s.compare(s.size() - a.size(), a.size(), a) == 0);
    };
    if (affix.is_array())
        return std::any_of(affix.items().begin(), affix.items().end(),
                           [&](const Value& v) { return one(v.as_string()); });
    return one(affix.as_string());
}

const Value& arg(const Args& a, size_t i, const char* name, const std::string& method) {
    const Value* v = a.get(i, name);
    if (!v) fail(method, "() missing argument '", name, "'");
    return *v;
}

// A member lookup scans the members, comparing keys: charged for that, so a loop over a
// dict literal of a hundred thousand keys cannot look things up for free.
const Value* find_member(Budget& budget, const Value& obj, const std::string& key) {
    if (!obj.is_object()) return nullptr;
    budget.steps(1 + obj.members().size() * (1 + key.size() / kBytesPerStep));
    return obj.find(key);
}

// A method reads its arguments too (strip's chars, startswith's tuple, replace's texts).
void charge_arguments(Budget& budget, const Args& a) {
    auto charge = [&](const Value& v) {
        if (v.is_string()) budget.bytes(v.as_string().size());
        if (v.is_array()) budget.items(v.items().size());
    };
    for (const Value& v : a.positional) charge(v);
    for (const auto& [name, v] : a.named) charge(v);
}

Value string_method(Budget& budget, const std::string& s, const std::string& name, const Args& a) {
    const Value* v0 = a.get(0, "chars");
    auto chars = [&]() -> const std::string* { return v0 && !v0->is_none() ? &v0->as_string() : nullptr; };
    auto maxsplit = [&] {
        const Value* m = a.get(1, "maxsplit");
        return m ? m->as_int() : -1;
    };
    // Every method reads the string once, most make one of its size.
    budget.bytes(s.size());
    charge_arguments(budget, a);
    if (name == "strip") return python_strip(s, chars(), true, true);
    if (name == "lstrip") return python_strip(s, chars(), true, false);
    if (name == "rstrip") return python_strip(s, chars(), false, true);
    if (name == "split") return Value::array(python_split(budget, s, a.get(0, "sep"), maxsplit(), false));
    if (name == "rsplit") return Value::array(python_split(budget, s, a.get(0, "sep"), maxsplit(), true));
    if (name == "splitlines") return Value::array(python_splitlines(budget, s));
    if (name == "startswith") return affix_match(s, arg(a, 0, "prefix", name), true);
    if (name == "endswith") return affix_match(s, arg(a, 0, "suffix", name), false);
    if (name == "upper") return ascii_case(s, true);
    if (name == "lower") return ascii_case(s, false);
    if (name == "title") return python_title(s);
    if (name == "capitalize") return python_capitalize(s);
    if (name == "replace") {
        const Value* count = a.get(2, "count");
        return python_replace(budget, s, arg(a, 0, "old", name).as_string(), arg(a, 1, "new", name).as_string(),
                              count ? count->as_int() : -1);
    }
    if (name == "find") return code_point_index(s, find_text(s, arg(a, 0, "sub", name).as_string()));
    if (name == "rfind") return code_point_index(s, rfind_text(s, arg(a, 0, "sub", name).as_string()));
    if (name == "count") return count_of(s, arg(a, 0, "sub", name).as_string());
    if (name == "join") {
        std::string out;
        const Array items = iterate(budget, arg(a, 0, "iterable", name));
        for (size_t i = 0; i < items.size(); ++i) {
            const std::string& item = items[i].as_string();
            budget.append(out.size(), (i ? s.size() : 0) + item.size());
            if (i) out += s;
            out += item;
        }
        return out;
    }
    auto all_of = [&](auto pred) {
        return !s.empty() &&
               std::all_of(s.begin(), s.end(), [&](char c) { return pred(static_cast<unsigned char>(c)) != 0; });
    };
    if (name == "isdigit") return all_of([](unsigned char c) { return std::isdigit(c); });
    if (name == "isalpha") return all_of([](unsigned char c) { return std::isalpha(c); });
    if (name == "isspace") return all_of([](unsigned char c) { return std::isspace(c); });
    fail("'str' object has no attribute '", name, "'");
}

Value dict_method(Budget& budget, const Value& d, const std::string& name, const Args& a) {
    budget.items(d.members().size());
    if (name == "items") {
        Array out;
        for (const auto& [k, v] : d.members()) out.push_back(Value::array({Value(k), v}, true));
        return Value::array(std::move(out));
    }
    if (name == "keys" || name == "values") {
        Array out;
        for (const auto& [k, v] : d.members()) out.push_back(name == "keys" ? Value(k) : v);
        return Value::array(std::move(out));
    }
    // get
    const Value& key = arg(a, 0, "key", name);
    const Value* found = key.is_string() ? find_member(budget, d, key.as_string()) : nullptr;
    if (found) return *found;
    const Value* dflt = a.get(1, "default");
    return dflt ? *dflt : Value::none();
}

bool is_string_method(const std::string& n) {
    static const char* const names[] = {"strip",      "lstrip",     "rstrip",   "split",   "rsplit",
                                        "splitlines", "startswith", "endswith", "upper",   "lower",
                                        "title",      "capitalize", "replace",  "find",    "rfind",
                                        "count",      "join",       "isdigit",  "isalpha", "isspace"};
    return std::any_of(std::begin(names), std::end(names), [&](const char* m) { return n == m; });
}

// "[key]", naming a missing item in messages.
std::string item_name(Budget& budget, const Value& key) {
    std::string name = key.repr(budget);
    name.insert(name.begin(), '[');
    name.push_back(']');
    return name;
}

int64_t normalize_index(int64_t i, int64_t size) { return i < 0 ? i + size : i; }

}  // namespace

std::string python_strip(const std::string& s, const std::string* chars, bool left, bool right) {
    // The code points of `chars`, sorted, so stripping is linear in s whatever chars' length.
    std::vector<uint32_t> set;
    if (chars) {
        for (size_t i = 0, len; i < chars->size(); i += len) set.push_back(code_point(*chars, i, &len));
        std::sort(set.begin(), set.end());
    }
    auto strip_cp = [&](uint32_t cp) {
        return chars ? std::binary_search(set.begin(), set.end(), cp) : python_space(cp);
    };
    size_t begin = 0, end = s.size();
    while (left && begin < end) {
        size_t len;
        const uint32_t cp = code_point(s, begin, &len);
        if (!strip_cp(cp)) break;
        begin += len;
    }
    while (right && end > begin) {
        size_t start = end - 1;
        while (start > begin && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
        size_t len;
        const uint32_t cp = code_point(s, start, &len);
        if (!strip_cp(cp)) break;
        end = start;
    }
    return s.substr(begin, end - begin);
}

// glibc's memmem is the two-way algorithm: linear in the worst case, with constant extra space.
size_t find_text(const std::string& haystack, const std::string& needle, size_t from) {
    if (from > haystack.size()) return std::string::npos;
    const void* hit = memmem(haystack.data() + from, haystack.size() - from, needle.data(), needle.size());
    return hit ? static_cast<size_t>(static_cast<const char*>(hit) - haystack.data()) : std::string::npos;
}

size_t rfind_text(const std::string& haystack, const std::string& needle, size_t before) {
    // Short needles: the library's backward search is fast, and its worst case small.
    constexpr size_t kShortNeedle = 16;
    if (needle.size() <= kShortNeedle) return haystack.rfind(needle, before);
    if (needle.size() > haystack.size()) return std::string::npos;
    // The forward search over both texts reversed, for the part that can hold a match starting
    // at or before `before`.
    const size_t end = std::min(before, haystack.size() - needle.size()) + needle.size();
    const std::string text(haystack.rend() - static_cast<std::ptrdiff_t>(end), haystack.rend());
    const std::string reversed(needle.rbegin(), needle.rend());
    const size_t hit = find_text(text, reversed);
    return hit == std::string::npos ? hit : end - hit - needle.size();
}

Value get_attribute(Budget& budget, const Value& obj, const std::string& name) {
    if (obj.is_undefined()) fail("'", obj.undefined_name(), "' is undefined (reading its attribute '", name, "')");
    if (obj.is_string() && is_string_method(name)) {
        return Value::function(
            [&budget, obj, name](const Args& a) { return string_method(budget, obj.as_string(), name, a); });
    }
    if (obj.is_object() && !obj.is_namespace() &&
        (name == "items" || name == "keys" || name == "values" || name == "get")) {
        return Value::function([&budget, obj, name](const Args& a) { return dict_method(budget, obj, name, a); });
    }
    if (const Value* v = find_member(budget, obj, name)) return *v;
    return Value::undefined(name);
}

Value get_item(Budget& budget, const Value& obj, const Value& key) {
    if (obj.is_undefined()) fail("'", obj.undefined_name(), "' is undefined (reading an item)");
    if (obj.is_object() && key.is_string()) {
        if (const Value* v = find_member(budget, obj, key.as_string())) return *v;
    } else if ((obj.is_array() || obj.is_string()) && (key.kind() == Value::Kind::Int)) {
        if (obj.is_array()) {
            const int64_t i = normalize_index(key.as_int(), static_cast<int64_t>(obj.items().size()));
            if (i >= 0 && i < static_cast<int64_t>(obj.items().size())) return obj.items()[static_cast<size_t>(i)];
        } else {
            const std::string& s = obj.as_string();
            budget.bytes(s.size());
            const int64_t i = normalize_index(key.as_int(), static_cast<int64_t>(utf8_length(s)));
            // The i-th code point's bytes: from its first byte to the next non-continuation one.
            int64_t at = -1;
            for (size_t b = 0; i >= 0 && b < s.size(); ++b) {
                if ((static_cast<unsigned char>(s[b]) & 0xC0) == 0x80 || ++at != i) continue;
                size_t e = b + 1;
                while (e < s.size() && (static_cast<unsigned char>(s[e]) & 0xC0) == 0x80) ++e;
                return s.substr(b, e - b);
            }
        }
        return Value::undefined(item_name(budget, key));
    }
    if (key.is_string()) return get_attribute(budget, obj, key.as_string());
    return Value::undefined(item_name(budget, key));
}

Value get_slice(Budget& budget, const Value& obj, const Value* start, const Value* stop, const Value* step) {
    const bool is_str = obj.is_string();
    if (!is_str && !obj.is_array()) fail("'", obj.type_name(), "' object is not subscriptable");
    if (is_str) budget.bytes(obj.as_string().size());
    const std::vector<size_t> at = is_str ? utf8_offsets(obj.as_string()) : std::vector<size_t>{};
    const int64_t n = is_str ? static_cast<int64_t>(at.size()) - 1 : static_cast<int64_t>(obj.items().size());
    const int64_t st = step && !step->is_none() ? step->as_int() : 1;
    if (st == 0) fail("slice step cannot be zero");
    // Python's slice.indices(): clamp the bounds into range for the step's direction.
    auto bound = [&](const Value* v, int64_t dflt) {
        if (!v || v->is_none()) return dflt;
        int64_t i = v->as_int();
        if (i < 0) i += n;
        return st > 0 ? std::clamp<int64_t>(i, 0, n) : std::clamp<int64_t>(i, -1, n - 1);
    };
    const int64_t b = bound(start, st > 0 ? 0 : n - 1), e = bound(stop, st > 0 ? n : -1);
    // The number of items, computed in 128 bits: b + k * st may overflow 64 for a huge step.
    const __int128 span = st > 0 ? __int128{e} - b : __int128{b} - e;
    const __int128 stride = st > 0 ? __int128{st} : -__int128{st};
    const int64_t count = span > 0 ? static_cast<int64_t>((span - 1) / stride + 1) : 0;
    budget.items(static_cast<uint64_t>(count));
    std::string s;
    Array items;
    for (int64_t k = 0; k < count; ++k) {
        const auto i = static_cast<size_t>(b + static_cast<int64_t>(__int128{k} * st));
        if (is_str)
            s += obj.as_string().substr(at[i], at[i + 1] - at[i]);
        else
            items.push_back(obj.items()[i]);
    }
    return is_str ? Value(std::move(s)) : Value::array(std::move(items), obj.is_tuple());
}

Array iterate(Budget& budget, const Value& v) {
    switch (v.kind()) {
        case Value::Kind::Undefined: return {};
        case Value::Kind::Array: budget.items(v.items().size()); return v.items();
        case Value::Kind::Object: {
            budget.items(v.members().size());
            Array keys;
            for (const auto& m : v.members()) keys.emplace_back(m.first);
            return keys;
        }
        case Value::Kind::String: {
            const std::string& s = v.as_string();
            budget.items(utf8_length(s));
            const std::vector<size_t> at = utf8_offsets(s);
            Array chars;
            for (size_t i = 0; i + 1 < at.size(); ++i) chars.emplace_back(s.substr(at[i], at[i + 1] - at[i]));
            return chars;
        }
        default: fail("'", v.type_name(), "' object is not iterable");
    }
}

bool contains(Budget& budget, const Value& haystack, const Value& needle) {
    if (haystack.is_string()) {
        if (!needle.is_string()) fail("'in <string>' requires a string as left operand, not ", needle.type_name());
        budget.bytes(haystack.as_string().size() + needle.as_string().size());
        return find_text(haystack.as_string(), needle.as_string()) != std::string::npos;
    }
    if (haystack.is_object()) {
        return needle.is_string() && find_member(budget, haystack, needle.as_string()) != nullptr;
    }
    if (haystack.is_undefined()) return false;
    if (!haystack.is_array()) fail("argument of type '", haystack.type_name(), "' is not iterable");
    const Array& items = haystack.items();
    return std::any_of(items.begin(), items.end(), [&](const Value& v) { return v.equals(needle, budget); });
}

namespace {

// Python's len(range(start, stop, step)), in 128 bits so no bound overflows.
uint64_t range_length(int64_t start, int64_t stop, int64_t step) {
    const __int128 span = step > 0 ? __int128{stop} - start : __int128{start} - stop;
    const __int128 stride = step > 0 ? __int128{step} : -__int128{step};
    return span > 0 ? static_cast<uint64_t>((span - 1) / stride + 1) : 0;
}

}  // namespace

Object global_functions(Budget& budget) {
    Object g;
    g.emplace_back("range", Value::function([&budget](const Args& a) {
                       if (a.positional.empty() || a.positional.size() > 3) fail("range() takes 1 to 3 arguments");
                       const bool one = a.positional.size() == 1;
                       const int64_t start = one ? 0 : a.positional[0].as_int();
                       const int64_t stop = one ? a.positional[0].as_int() : a.positional[1].as_int();
                       const int64_t step = a.positional.size() == 3 ? a.positional[2].as_int() : 1;
                       if (step == 0) fail("range() step must not be zero");
                       // Charged before the list is built: a huge range is refused, not allocated.
                       const uint64_t n = range_length(start, stop, step);
                       budget.items(n);
                       Array out;
                       out.reserve(n);
                       for (uint64_t k = 0; k < n; ++k)
                           out.emplace_back(static_cast<int64_t>(start + __int128(k) * step));
                       return Value::array(std::move(out));
                   }));
    // dict(mapping, key=value…): a keyword replaces the mapping's member of that name, as in Python.
    auto keyword_object = [&budget](const Args& a) {
        Object members;
        if (!a.positional.empty()) members = a.positional[0].members();
        budget.items(members.size() + a.named.size());
        budget.steps(members.size() * a.named.size());
        for (const auto& named : a.named) {
            const auto same =
                std::find_if(members.begin(), members.end(), [&](const auto& m) { return m.first == named.first; });
            if (same != members.end())
                same->second = named.second;
            else
                members.push_back(named);
        }
        return members;
    };
    g.emplace_back("namespace", Value::function([keyword_object](const Args& a) {
                       return Value::namespace_object(keyword_object(a));
                   }));
    g.emplace_back("dict",
                   Value::function([keyword_object](const Args& a) { return Value::object(keyword_object(a)); }));
    g.emplace_back("raise_exception", Value::function([&budget](const Args& a) -> Value {
                       fail("the chat template raised: ",
                            a.positional.empty() ? std::string() : a.positional[0].str(budget));
                   }));
    g.emplace_back("strftime_now", Value::function([](const Args& a) {
                       const std::time_t now = std::time(nullptr);
                       std::tm local{};
                       localtime_r(&now, &local);
                       char buf[256];
                       const size_t n = std::strftime(buf, sizeof buf,
                                                      arg(a, 0, "format", "strftime_now").as_string().c_str(), &local);
                       return Value(std::string(buf, n));
                   }));
    return g;
}

}  // namespace strata::jinja
