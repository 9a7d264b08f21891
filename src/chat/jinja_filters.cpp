// jinja2's filters and tests (jinja2/filters.py, jinja2/tests.py) that chat templates use, plus
// transformers' tojson (json.dumps without HTML escaping, with indent/separators/sort_keys).
#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <map>

#include "chat/jinja_builtins.h"
#include "util/error.h"

namespace strata::jinja {

namespace {

// Position of arguments that can only be passed by keyword.
constexpr size_t kKeywordOnly = SIZE_MAX;

const Value* opt(const Args& a, size_t i, const char* name) { return a.get(i, name); }

bool flag(const Args& a, size_t i, const char* name, bool dflt) {
    const Value* v = a.get(i, name);
    return v ? v->truthy() : dflt;
}

std::string lower_ascii(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

// jinja2's attribute paths: "a.b" walks members, digits index lists.
Value attribute_path(Budget& budget, const Value& v, const std::string& path) {
    budget.bytes(path.size());
    Value cur = v;
    size_t start = 0;
    while (true) {
        const size_t dot = path.find('.', start);
        const std::string part = path.substr(start, dot - start);
        const bool digits = !part.empty() && std::all_of(part.begin(), part.end(), [](char c) {
            return std::isdigit(static_cast<unsigned char>(c));
        });
        int64_t index = 0;
        if (!digits) {
            cur = get_item(budget, cur, Value(part));
        } else if (std::from_chars(part.data(), part.data() + part.size(), index).ec == std::errc()) {
            cur = get_item(budget, cur, Value(index));
        } else {
            cur = Value::undefined("[" + part + "]");  // beyond any list, as in Python
        }
        if (dot == std::string::npos) return cur;
        start = dot + 1;
    }
}

// Sorting and uniqueness compare strings case-insensitively unless case_sensitive, as jinja2 does.
Value sort_key(const Value& v, bool case_sensitive) {
    return (!case_sensitive && v.is_string()) ? Value(lower_ascii(v.as_string())) : v;
}

Array sorted(Budget& budget, Array items, bool reverse, bool case_sensitive, const Value* attribute) {
    // Each item's key is made once (not once per comparison), then the items are ordered by it.
    std::vector<std::pair<Value, size_t>> keys;
    keys.reserve(items.size());
    budget.items(items.size());
    for (size_t i = 0; i < items.size(); ++i) {
        const Value& v = items[i];
        keys.emplace_back(sort_key(attribute ? attribute_path(budget, v, attribute->as_string()) : v, case_sensitive),
                          i);
        if (keys.back().first.is_string()) budget.bytes(keys.back().first.as_string().size());
    }
    std::stable_sort(keys.begin(), keys.end(), [&](const auto& a, const auto& b) {
        return reverse ? b.first.compare(a.first, budget) < 0 : a.first.compare(b.first, budget) < 0;
    });
    Array out;
    out.reserve(items.size());
    for (const auto& key : keys) out.push_back(items[key.second]);
    return out;
}

// select/reject and selectattr/rejectattr: keep items whose value (or attribute) passes the
// test named by the first remaining argument, or is truthy when none is named.
Value select_items(Budget& budget, const Value& input, const Args& args, bool by_attribute, bool keep_when) {
    size_t first = 0;
    std::string attribute;
    if (by_attribute) {
        if (args.positional.empty()) fail("selectattr/rejectattr need an attribute name");
        attribute = args.positional[0].as_string();
        first = 1;
    }
    Args test_args;
    std::string test;
    if (args.positional.size() > first) {
        test = args.positional[first].as_string();
        test_args.positional.assign(args.positional.begin() + static_cast<long>(first) + 1, args.positional.end());
    }
    Array out;
    for (const Value& item : iterate(budget, input)) {
        const Value subject = by_attribute ? attribute_path(budget, item, attribute) : item;
        const bool pass = test.empty() ? subject.truthy() : apply_test(budget, test, subject, test_args);
        if (pass == keep_when) out.push_back(item);
    }
    return Value::array(std::move(out));
}

Value map_items(Budget& budget, const Value& input, const Args& args) {
    Array out;
    if (const Value* attribute = opt(args, kKeywordOnly, "attribute")) {
        const Value* dflt = opt(args, kKeywordOnly, "default");
        for (const Value& item : iterate(budget, input)) {
            Value v = attribute_path(budget, item, attribute->as_string());
            out.push_back(v.is_undefined() && dflt ? *dflt : v);
        }
        return Value::array(std::move(out));
    }
    if (args.positional.empty()) fail("map() needs a filter name or attribute=");
    Args rest;
    rest.positional.assign(args.positional.begin() + 1, args.positional.end());
    rest.named = args.named;
    const std::string filter = args.positional[0].as_string();
    for (const Value& item : iterate(budget, input)) out.push_back(apply_filter(budget, filter, item, rest));
    return Value::array(std::move(out));
}

Value length_of(Budget& budget, const Value& v) {
    switch (v.kind()) {
        case Value::Kind::Undefined: return 0;
        case Value::Kind::String:
            budget.bytes(v.as_string().size());
            return static_cast<int64_t>(utf8_length(v.as_string()));
        case Value::Kind::Array: return static_cast<int64_t>(v.items().size());
        case Value::Kind::Object: return static_cast<int64_t>(v.members().size());
        default: fail("object of type '", v.type_name(), "' has no len()");
    }
}

Value to_json(Budget& budget, const Value& v, const Args& a) {
    const Value* indent = opt(a, 0, "indent");
    // Python indents by ' ' * indent: a negative indent puts items on lines without spaces. An
    // indent wider than the string limit could not be written anyway.
    int width = -1;
    if (indent && !indent->is_none()) {
        width = static_cast<int>(std::clamp<int64_t>(indent->as_int(), 0, int64_t{kMaxStringBytes} + 1));
    }
    // json.dumps' default separators depend on indent: (", ", ": ") without, (",", ": ") with.
    std::string item_sep = width < 0 ? ", " : ",", key_sep = ": ";
    if (const Value* sep = opt(a, kKeywordOnly, "separators"); sep && !sep->is_none()) {
        if (!sep->is_array() || sep->items().size() != 2) fail("tojson: separators= takes two strings");
        item_sep = sep->items()[0].as_string();
        key_sep = sep->items()[1].as_string();
    }
    std::string out = v.to_json(budget, width, item_sep, key_sep, flag(a, kKeywordOnly, "sort_keys", false));
    budget.string(out.size());
    return out;
}

Value indent_text(Budget& budget, const Value& v, const Args& a) {
    const Value* w = opt(a, 0, "width");
    std::string pad;
    if (w && w->is_string()) {
        pad = w->as_string();
    } else {
        const int64_t width = w ? w->as_int() : 4;  // Python's ' ' * width: empty when negative
        budget.string(static_cast<uint64_t>(std::max<int64_t>(width, 0)));
        pad.assign(static_cast<size_t>(std::max<int64_t>(width, 0)), ' ');
    }
    const bool first = flag(a, 1, "first", false), blank = flag(a, 2, "blank", false);
    // jinja2 appends a newline before splitting lines, so a trailing newline survives.
    const std::string s = v.str(budget) + "\n";
    budget.bytes(s.size());
    std::vector<std::string> lines;
    size_t start = 0;
    for (size_t nl; (nl = s.find('\n', start)) != std::string::npos; start = nl + 1)
        lines.push_back(s.substr(start, nl - start));
    std::string out;
    for (size_t i = 0; i < lines.size(); ++i) {
        const bool indent_line = (i > 0 || first) && (blank || !lines[i].empty());
        budget.append(out.size(), 1 + (indent_line ? pad.size() : 0) + lines[i].size() + pad.size());
        if (i) out += '\n';
        if (indent_line) out += pad;
        out += lines[i];
    }
    if (first && !blank && lines[0].empty()) out = pad + out;
    return out;
}

Value round_number(const Value& v, const Args& a) {
    const Value* p = opt(a, 0, "precision");
    const Value* m = opt(a, 1, "method");
    const double scale = std::pow(10.0, p ? static_cast<double>(p->as_int()) : 0.0);
    const std::string method = m ? m->as_string() : "common";
    const double x = v.as_number() * scale;
    // A precision past a double's range: Python keeps the value (or rounds it to 0.0).
    if (!std::isfinite(x) && std::isfinite(v.as_number())) return v.as_number();
    if (scale == 0) return 0.0 * v.as_number();
    // Python's round() rounds halves to even; nearbyint does under the default rounding mode.
    const double r = method == "ceil" ? std::ceil(x) : method == "floor" ? std::floor(x) : std::nearbyint(x);
    return r / scale;
}

// Python's float(s) for a stripped string: an optional sign, then digits, inf or nan.
bool parse_float(const std::string& s, double* out) {
    const char* first = s.data();
    const char* last = s.data() + s.size();
    if (first != last && *first == '+') {  // from_chars takes a '-' but not a '+'
        ++first;
        if (first != last && *first == '-') return false;
    }
    const auto [end, ec] = std::from_chars(first, last, *out);
    if (first == last || end != last || (ec != std::errc() && ec != std::errc::result_out_of_range)) return false;
    if (ec == std::errc::result_out_of_range) *out = std::strtod(s.c_str(), nullptr);  // ±inf, or 0 for underflow
    return true;
}

// jinja2's int filter: int(x) for numbers, int(s) or else int(float(s)) for strings, the default
// when that is not a number (NaN included), an error when Python's result exceeds 64 bits.
Value to_int(const Value& v, const Args& a) {
    const Value* dflt = opt(a, 0, "default");
    const Value fallback = dflt ? *dflt : Value(0);
    if (v.kind() == Value::Kind::Float)
        return std::isnan(v.as_number()) ? fallback : Value(float_to_int(v.as_number()));
    if (v.is_number()) return v.as_int();
    if (!v.is_string()) return fallback;
    const std::string s = python_strip(v.as_string(), nullptr, true, true);
    const char* first = s.data() + (!s.empty() && s[0] == '+' ? 1 : 0);
    int64_t i = 0;
    const auto [end, ec] = std::from_chars(first, s.data() + s.size(), i);
    if (end == s.data() + s.size() && !s.empty()) {
        if (ec == std::errc()) return i;
        if (ec == std::errc::result_out_of_range) fail("integer overflow: int('", s, "') does not fit in 64 bits");
    }
    double d = 0;
    if (!parse_float(s, &d) || std::isnan(d)) return fallback;
    return float_to_int(d);
}

Value to_float(const Value& v, const Args& a) {
    const Value* dflt = opt(a, 0, "default");
    if (v.is_number()) return v.as_number();
    double d = 0;
    if (v.is_string() && parse_float(python_strip(v.as_string(), nullptr, true, true), &d)) return d;
    return dflt ? *dflt : Value(0.0);
}

Value min_max(Budget& budget, const Value& v, const Args& a, bool want_max) {
    const Array items =
        sorted(budget, iterate(budget, v), want_max, flag(a, 0, "case_sensitive", false), opt(a, 1, "attribute"));
    return items.empty() ? Value::undefined("min/max of an empty sequence") : items.front();
}

Value unique_items(Budget& budget, const Value& v, const Args& a) {
    const bool case_sensitive = flag(a, 0, "case_sensitive", false);
    const Value* attribute = opt(a, 1, "attribute");
    Array out, seen;
    // Quadratic in the worst case (values are not hashable here); each comparison is charged.
    for (const Value& item : iterate(budget, v)) {
        const Value key =
            sort_key(attribute ? attribute_path(budget, item, attribute->as_string()) : item, case_sensitive);
        if (std::none_of(seen.begin(), seen.end(), [&](const Value& s) { return s.equals(key, budget); })) {
            seen.push_back(key);
            out.push_back(item);
        }
    }
    return Value::array(std::move(out));
}

Value default_value(const Value& v, const Args& a) {
    const Value* dflt = opt(a, 0, "default_value");
    const bool use = flag(a, 1, "boolean", false) ? !v.truthy() : v.is_undefined();
    return use ? (dflt ? *dflt : Value("")) : v;
}

Value html_escape(Budget& budget, const Value& v) {
    const std::string s = v.str(budget);
    size_t size = 0;
    for (char c : s) size += c == '&' || c == '"' || c == '\'' ? 5 : c == '<' || c == '>' ? 4 : 1;
    budget.string(size);
    std::string out;
    out.reserve(size);
    for (char c : s) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&#34;"; break;
            case '\'': out += "&#39;"; break;
            default: out += c;
        }
    }
    return out;
}

using FilterFn = Value (*)(Budget&, const Value&, const Args&);

// A filter whose work is reading its input (a number, or a string it parses): charged for that.
template <Value (*fn)(const Value&, const Args&)>
Value reading(Budget& budget, const Value& v, const Args& a) {
    if (v.is_string()) budget.bytes(v.as_string().size());
    return fn(v, a);
}

// String filters are str() of the input, then the str method of that name.
template <const char* name>
Value string_filter(Budget& budget, const Value& v, const Args& a) {
    const std::string s = v.str(budget);
    budget.bytes(s.size());
    return get_attribute(budget, Value(s), name).function()(a);
}

constexpr char kLower[] = "lower", kUpper[] = "upper", kTitle[] = "title", kCapitalize[] = "capitalize",
               kReplace[] = "replace";

const std::map<std::string, FilterFn>& filters() {
    static const std::map<std::string, FilterFn> table = {
        {"trim",
         [](Budget& budget, const Value& v, const Args& a) -> Value {
             const Value* chars = opt(a, 0, "chars");
             const std::string s = v.str(budget);
             budget.bytes(s.size() + (chars && chars->is_string() ? chars->as_string().size() : 0));
             return python_strip(s, chars && !chars->is_none() ? &chars->as_string() : nullptr, true, true);
         }},
        {"length", [](Budget& budget, const Value& v, const Args&) { return length_of(budget, v); }},
        {"count", [](Budget& budget, const Value& v, const Args&) { return length_of(budget, v); }},
        {"tojson", to_json},
        {"join",
         [](Budget& budget, const Value& v, const Args& a) -> Value {
             const Value* sep = opt(a, 0, "d");
             const Value* attribute = opt(a, 1, "attribute");
             const std::string separator = sep ? sep->str(budget) : "";
             std::string out;
             bool first = true;
             for (const Value& item : iterate(budget, v)) {
                 const std::string text =
                     (attribute ? attribute_path(budget, item, attribute->as_string()) : item).str(budget);
                 budget.append(out.size(), (first ? 0 : separator.size()) + text.size());
                 if (!first) out += separator;
                 first = false;
                 out += text;
             }
             return out;
         }},
        {"list", [](Budget& budget, const Value& v, const Args&) { return Value::array(iterate(budget, v)); }},
        {"first",
         [](Budget& budget, const Value& v, const Args&) {
             if (v.is_array()) return v.items().empty() ? Value::undefined("first of an empty sequence") : v.items()[0];
             const Array items = iterate(budget, v);
             return items.empty() ? Value::undefined("first of an empty sequence") : items.front();
         }},
        {"last",
         [](Budget& budget, const Value& v, const Args&) {
             if (v.is_array())
                 return v.items().empty() ? Value::undefined("last of an empty sequence") : v.items().back();
             const Array items = iterate(budget, v);
             return items.empty() ? Value::undefined("last of an empty sequence") : items.back();
         }},
        {"select",
         [](Budget& budget, const Value& v, const Args& a) { return select_items(budget, v, a, false, true); }},
        {"reject",
         [](Budget& budget, const Value& v, const Args& a) { return select_items(budget, v, a, false, false); }},
        {"selectattr",
         [](Budget& budget, const Value& v, const Args& a) { return select_items(budget, v, a, true, true); }},
        {"rejectattr",
         [](Budget& budget, const Value& v, const Args& a) { return select_items(budget, v, a, true, false); }},
        {"map", map_items},
        {"items",
         [](Budget& budget, const Value& v, const Args&) {
             if (v.is_undefined()) return Value::array();
             return get_attribute(budget, v, "items").function()(Args{});
         }},
        {"string",
         [](Budget& budget, const Value& v, const Args&) {
             std::string s = v.str(budget);
             budget.string(s.size());
             return Value(std::move(s));
         }},
        {"lower", string_filter<kLower>},
        {"upper", string_filter<kUpper>},
        {"title", string_filter<kTitle>},
        {"capitalize", string_filter<kCapitalize>},
        {"replace", string_filter<kReplace>},
        {"default", reading<default_value>},
        {"d", reading<default_value>},
        {"round", reading<round_number>},
        {"int", reading<to_int>},
        {"float", reading<to_float>},
        {"abs",
         [](Budget&, const Value& v, const Args&) {
             if (v.kind() == Value::Kind::Float) return Value(std::fabs(v.as_number()));
             return Value(v.as_int() < 0 ? checked_neg(v.as_int()) : v.as_int());
         }},
        {"sum",
         [](Budget& budget, const Value& v, const Args& a) {
             const Value* attribute = opt(a, 0, "attribute");
             const Value* start = opt(a, 1, "start");
             Value total = start ? *start : Value(0);
             for (const Value& item : iterate(budget, v)) {
                 const Value x = attribute ? attribute_path(budget, item, attribute->as_string()) : item;
                 const bool ints = total.kind() != Value::Kind::Float && x.kind() != Value::Kind::Float;
                 total =
                     ints ? Value(checked_add(total.as_int(), x.as_int())) : Value(total.as_number() + x.as_number());
             }
             return total;
         }},
        {"min", [](Budget& budget, const Value& v, const Args& a) { return min_max(budget, v, a, false); }},
        {"max", [](Budget& budget, const Value& v, const Args& a) { return min_max(budget, v, a, true); }},
        {"unique", unique_items},
        {"reverse",
         [](Budget& budget, const Value& v, const Args&) {
             Array items = iterate(budget, v);
             std::reverse(items.begin(), items.end());
             if (!v.is_string()) return Value::array(std::move(items));
             std::string s;
             for (const Value& c : items) s += c.as_string();
             return Value(std::move(s));
         }},
        {"sort",
         [](Budget& budget, const Value& v, const Args& a) {
             return Value::array(sorted(budget, iterate(budget, v), flag(a, 0, "reverse", false),
                                        flag(a, 1, "case_sensitive", false), opt(a, 2, "attribute")));
         }},
        {"dictsort",
         [](Budget& budget, const Value& v, const Args& a) {
             const bool case_sensitive = flag(a, 0, "case_sensitive", false);
             const Value* by = opt(a, 1, "by");
             const size_t k = by && by->as_string() == "value" ? 1 : 0;
             Array pairs = get_attribute(budget, v, "items").function()(Args{}).items();
             std::stable_sort(pairs.begin(), pairs.end(), [&](const Value& x, const Value& y) {
                 return sort_key(x.items()[k], case_sensitive).compare(sort_key(y.items()[k], case_sensitive), budget) <
                        0;
             });
             if (flag(a, 2, "reverse", false)) std::reverse(pairs.begin(), pairs.end());
             return Value::array(std::move(pairs));
         }},
        {"indent", indent_text},
        {"safe", [](Budget&, const Value& v, const Args&) { return v; }},
        {"escape", [](Budget& budget, const Value& v, const Args&) { return html_escape(budget, v); }},
        {"e", [](Budget& budget, const Value& v, const Args&) { return html_escape(budget, v); }},
    };
    return table;
}

using TestFn = bool (*)(Budget&, const Value&, const Args&);

const Value& test_arg(const Args& a) {
    if (a.positional.empty()) fail("this test needs an argument");
    return a.positional[0];
}

bool is_lower_or_upper(Budget& budget, const Value& v, bool upper) {
    if (!v.is_string()) return false;
    const std::string& s = v.as_string();
    budget.bytes(s.size());
    bool cased = false;
    for (char c : s) {
        const bool is_lower = c >= 'a' && c <= 'z', is_upper = c >= 'A' && c <= 'Z';
        cased = cased || is_lower || is_upper;
        if ((upper && is_lower) || (!upper && is_upper)) return false;
    }
    return cased;
}

const std::map<std::string, TestFn>& tests() {
    using K = Value::Kind;
    static const std::map<std::string, TestFn> table = {
        {"defined", [](Budget&, const Value& v, const Args&) { return !v.is_undefined(); }},
        {"undefined", [](Budget&, const Value& v, const Args&) { return v.is_undefined(); }},
        {"none", [](Budget&, const Value& v, const Args&) { return v.is_none(); }},
        {"boolean", [](Budget&, const Value& v, const Args&) { return v.kind() == K::Bool; }},
        {"true", [](Budget&, const Value& v, const Args&) { return v.kind() == K::Bool && v.as_int() == 1; }},
        {"false", [](Budget&, const Value& v, const Args&) { return v.kind() == K::Bool && v.as_int() == 0; }},
        {"integer", [](Budget&, const Value& v, const Args&) { return v.kind() == K::Int; }},
        {"float", [](Budget&, const Value& v, const Args&) { return v.kind() == K::Float; }},
        {"number", [](Budget&, const Value& v, const Args&) { return v.is_number(); }},
        {"string", [](Budget&, const Value& v, const Args&) { return v.is_string(); }},
        {"mapping", [](Budget&, const Value& v, const Args&) { return v.is_object(); }},
        {"iterable", [](Budget&, const Value& v,
                        const Args&) { return v.is_undefined() || v.is_string() || v.is_array() || v.is_object(); }},
        {"sequence",
         [](Budget&, const Value& v, const Args&) { return v.is_string() || v.is_array() || v.is_object(); }},
        {"callable", [](Budget&, const Value& v, const Args&) { return v.kind() == K::Function; }},
        {"odd", [](Budget&, const Value& v, const Args&) { return v.as_int() % 2 != 0; }},
        {"even", [](Budget&, const Value& v, const Args&) { return v.as_int() % 2 == 0; }},
        {"divisibleby",
         [](Budget&, const Value& v, const Args& a) { return floor_mod(v.as_int(), test_arg(a).as_int()) == 0; }},
        {"eq", [](Budget& budget, const Value& v, const Args& a) { return v.equals(test_arg(a), budget); }},
        {"equalto", [](Budget& budget, const Value& v, const Args& a) { return v.equals(test_arg(a), budget); }},
        {"==", [](Budget& budget, const Value& v, const Args& a) { return v.equals(test_arg(a), budget); }},
        {"ne", [](Budget& budget, const Value& v, const Args& a) { return !v.equals(test_arg(a), budget); }},
        {"!=", [](Budget& budget, const Value& v, const Args& a) { return !v.equals(test_arg(a), budget); }},
        {"lt", [](Budget& budget, const Value& v, const Args& a) { return v.compare(test_arg(a), budget) < 0; }},
        {"lessthan", [](Budget& budget, const Value& v, const Args& a) { return v.compare(test_arg(a), budget) < 0; }},
        {"le", [](Budget& budget, const Value& v, const Args& a) { return v.compare(test_arg(a), budget) <= 0; }},
        {"gt", [](Budget& budget, const Value& v, const Args& a) { return v.compare(test_arg(a), budget) > 0; }},
        {"greaterthan",
         [](Budget& budget, const Value& v, const Args& a) { return v.compare(test_arg(a), budget) > 0; }},
        {"ge", [](Budget& budget, const Value& v, const Args& a) { return v.compare(test_arg(a), budget) >= 0; }},
        {"in", [](Budget& budget, const Value& v, const Args& a) { return contains(budget, test_arg(a), v); }},
        {"sameas", [](Budget& budget, const Value& v,
                      const Args& a) { return v.kind() == test_arg(a).kind() && v.equals(test_arg(a), budget); }},
        {"lower", [](Budget& budget, const Value& v, const Args&) { return is_lower_or_upper(budget, v, false); }},
        {"upper", [](Budget& budget, const Value& v, const Args&) { return is_lower_or_upper(budget, v, true); }},
    };
    return table;
}

}  // namespace

Value apply_filter(Budget& budget, const std::string& name, const Value& input, const Args& args) {
    const auto& table = filters();
    const auto it = table.find(name);
    if (it == table.end()) fail("no filter named '", name, "'");
    return it->second(budget, input, args);
}

bool apply_test(Budget& budget, const std::string& name, const Value& input, const Args& args) {
    const auto& table = tests();
    const auto it = table.find(name);
    if (it == table.end()) fail("no test named '", name, "'");
    return it->second(budget, input, args);
}

}  // namespace strata::jinja
