// jinja2's filters and tests (jinja2/filters.py, jinja2/tests.py) that chat templates use, plus
// transformers' tojson (json.dumps without HTML escaping, with indent/separators/sort_keys).
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
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
Value attribute_path(const Value& v, const std::string& path) {
    Value cur = v;
    size_t start = 0;
    while (true) {
        const size_t dot = path.find('.', start);
        const std::string part = path.substr(start, dot - start);
        const bool digits = !part.empty() && std::all_of(part.begin(), part.end(), [](char c) {
            return std::isdigit(static_cast<unsigned char>(c));
        });
        cur = digits ? get_item(cur, Value(static_cast<int64_t>(std::stoll(part)))) : get_item(cur, Value(part));
        if (dot == std::string::npos) return cur;
        start = dot + 1;
    }
}

// Sorting and uniqueness compare strings case-insensitively unless case_sensitive, as jinja2 does.
Value sort_key(const Value& v, bool case_sensitive) {
    return (!case_sensitive && v.is_string()) ? Value(lower_ascii(v.as_string())) : v;
}

Array sorted(Array items, bool reverse, bool case_sensitive, const Value* attribute) {
    auto key = [&](const Value& v) {
        return sort_key(attribute ? attribute_path(v, attribute->as_string()) : v, case_sensitive);
    };
    std::stable_sort(items.begin(), items.end(), [&](const Value& a, const Value& b) {
        return reverse ? key(b).compare(key(a)) < 0 : key(a).compare(key(b)) < 0;
    });
    return items;
}

// select/reject and selectattr/rejectattr: keep items whose value (or attribute) passes the
// test named by the first remaining argument, or is truthy when none is named.
Value select_items(const Value& input, const Args& args, bool by_attribute, bool keep_when) {
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
    for (const Value& item : iterate(input)) {
        const Value subject = by_attribute ? attribute_path(item, attribute) : item;
        const bool pass = test.empty() ? subject.truthy() : apply_test(test, subject, test_args);
        if (pass == keep_when) out.push_back(item);
    }
    return Value::array(std::move(out));
}

Value map_items(const Value& input, const Args& args) {
    Array out;
    if (const Value* attribute = opt(args, kKeywordOnly, "attribute")) {
        const Value* dflt = opt(args, kKeywordOnly, "default");
        for (const Value& item : iterate(input)) {
            Value v = attribute_path(item, attribute->as_string());
            out.push_back(v.is_undefined() && dflt ? *dflt : v);
        }
        return Value::array(std::move(out));
    }
    if (args.positional.empty()) fail("map() needs a filter name or attribute=");
    Args rest;
    rest.positional.assign(args.positional.begin() + 1, args.positional.end());
    rest.named = args.named;
    for (const Value& item : iterate(input)) out.push_back(apply_filter(args.positional[0].as_string(), item, rest));
    return Value::array(std::move(out));
}

Value length_of(const Value& v) {
    switch (v.kind()) {
        case Value::Kind::Undefined: return 0;
        case Value::Kind::String: return static_cast<int64_t>(utf8_offsets(v.as_string()).size() - 1);
        case Value::Kind::Array: return static_cast<int64_t>(v.items().size());
        case Value::Kind::Object: return static_cast<int64_t>(v.members().size());
        default: fail("object of type '", v.type_name(), "' has no len()");
    }
}

Value to_json(const Value& v, const Args& a) {
    const Value* indent = opt(a, 0, "indent");
    const int width = indent && !indent->is_none() ? static_cast<int>(indent->as_int()) : -1;
    // json.dumps' default separators depend on indent: (", ", ": ") without, (",", ": ") with.
    std::string item_sep = width < 0 ? ", " : ",", key_sep = ": ";
    if (const Value* sep = opt(a, kKeywordOnly, "separators"); sep && !sep->is_none()) {
        item_sep = sep->items().at(0).as_string();
        key_sep = sep->items().at(1).as_string();
    }
    return v.to_json(width, item_sep, key_sep, flag(a, kKeywordOnly, "sort_keys", false));
}

Value indent_text(const Value& v, const Args& a) {
    const Value* w = opt(a, 0, "width");
    const std::string pad =
        w && w->is_string() ? w->as_string() : std::string(w ? static_cast<size_t>(w->as_int()) : 4, ' ');
    const bool first = flag(a, 1, "first", false), blank = flag(a, 2, "blank", false);
    // jinja2 appends a newline before splitting lines, so a trailing newline survives.
    const std::string s = v.str() + "\n";
    std::vector<std::string> lines;
    size_t start = 0;
    for (size_t nl; (nl = s.find('\n', start)) != std::string::npos; start = nl + 1)
        lines.push_back(s.substr(start, nl - start));
    std::string out;
    for (size_t i = 0; i < lines.size(); ++i) {
        if (i) out += '\n';
        const bool indent_line = (i > 0 || first) && (blank || !lines[i].empty());
        out += (indent_line ? pad : "") + lines[i];
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
    // Python's round() rounds halves to even; nearbyint does under the default rounding mode.
    const double r = method == "ceil" ? std::ceil(x) : method == "floor" ? std::floor(x) : std::nearbyint(x);
    return r / scale;
}

Value to_int(const Value& v, const Args& a) {
    const Value* dflt = opt(a, 0, "default");
    const Value fallback = dflt ? *dflt : Value(0);
    if (v.is_number()) return static_cast<int64_t>(v.as_number());
    if (!v.is_string()) return fallback;
    const std::string s = python_strip(v.as_string(), nullptr, true, true);
    try {
        size_t used = 0;
        const int64_t i = std::stoll(s, &used, 10);
        if (used == s.size()) return i;
        const double d = std::stod(s, &used);
        if (used == s.size()) return static_cast<int64_t>(d);
    } catch (const std::exception&) {}
    return fallback;
}

Value to_float(const Value& v, const Args& a) {
    const Value* dflt = opt(a, 0, "default");
    if (v.is_number()) return v.as_number();
    if (v.is_string()) {
        try {
            size_t used = 0;
            const std::string s = python_strip(v.as_string(), nullptr, true, true);
            const double d = std::stod(s, &used);
            if (used == s.size()) return d;
        } catch (const std::exception&) {}
    }
    return dflt ? *dflt : Value(0.0);
}

Value min_max(const Value& v, const Args& a, bool want_max) {
    const Array items = sorted(iterate(v), want_max, flag(a, 0, "case_sensitive", false), opt(a, 1, "attribute"));
    return items.empty() ? Value::undefined("min/max of an empty sequence") : items.front();
}

Value unique_items(const Value& v, const Args& a) {
    const bool case_sensitive = flag(a, 0, "case_sensitive", false);
    const Value* attribute = opt(a, 1, "attribute");
    Array out, seen;
    for (const Value& item : iterate(v)) {
        const Value key = sort_key(attribute ? attribute_path(item, attribute->as_string()) : item, case_sensitive);
        if (std::none_of(seen.begin(), seen.end(), [&](const Value& s) { return s.equals(key); })) {
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

Value html_escape(const Value& v) {
    std::string out;
    for (char c : v.str()) {
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

using FilterFn = Value (*)(const Value&, const Args&);

const std::map<std::string, FilterFn>& filters() {
    static const std::map<std::string, FilterFn> table = {
        {"trim",
         [](const Value& v, const Args& a) -> Value {
             const Value* chars = opt(a, 0, "chars");
             return python_strip(v.str(), chars && !chars->is_none() ? &chars->as_string() : nullptr, true, true);
         }},
        {"length", [](const Value& v, const Args&) { return length_of(v); }},
        {"count", [](const Value& v, const Args&) { return length_of(v); }},
        {"tojson", to_json},
        {"join",
         [](const Value& v, const Args& a) -> Value {
             const Value* sep = opt(a, 0, "d");
             const Value* attribute = opt(a, 1, "attribute");
             std::string out;
             bool first = true;
             for (const Value& item : iterate(v)) {
                 if (!first && sep) out += sep->str();
                 first = false;
                 out += (attribute ? attribute_path(item, attribute->as_string()) : item).str();
             }
             return out;
         }},
        {"list", [](const Value& v, const Args&) { return Value::array(iterate(v)); }},
        {"first",
         [](const Value& v, const Args&) {
             const Array items = iterate(v);
             return items.empty() ? Value::undefined("first of an empty sequence") : items.front();
         }},
        {"last",
         [](const Value& v, const Args&) {
             const Array items = iterate(v);
             return items.empty() ? Value::undefined("last of an empty sequence") : items.back();
         }},
        {"select", [](const Value& v, const Args& a) { return select_items(v, a, false, true); }},
        {"reject", [](const Value& v, const Args& a) { return select_items(v, a, false, false); }},
        {"selectattr", [](const Value& v, const Args& a) { return select_items(v, a, true, true); }},
        {"rejectattr", [](const Value& v, const Args& a) { return select_items(v, a, true, false); }},
        {"map", map_items},
        {"items",
         [](const Value& v, const Args&) {
             if (v.is_undefined()) return Value::array();
             return get_attribute(v, "items").function()(Args{});
         }},
        {"string", [](const Value& v, const Args&) { return Value(v.str()); }},
        {"lower",
         [](const Value& v, const Args&) { return get_attribute(Value(v.str()), "lower").function()(Args{}); }},
        {"upper",
         [](const Value& v, const Args&) { return get_attribute(Value(v.str()), "upper").function()(Args{}); }},
        {"title",
         [](const Value& v, const Args&) { return get_attribute(Value(v.str()), "title").function()(Args{}); }},
        {"capitalize",
         [](const Value& v, const Args&) { return get_attribute(Value(v.str()), "capitalize").function()(Args{}); }},
        {"replace",
         [](const Value& v, const Args& a) { return get_attribute(Value(v.str()), "replace").function()(a); }},
        {"default", default_value},
        {"d", default_value},
        {"round", round_number},
        {"int", to_int},
        {"float", to_float},
        {"abs",
         [](const Value& v, const Args&) {
             return v.kind() == Value::Kind::Float ? Value(std::fabs(v.as_number()))
                                                   : Value(static_cast<int64_t>(std::llabs(v.as_int())));
         }},
        {"sum",
         [](const Value& v, const Args& a) {
             const Value* attribute = opt(a, 0, "attribute");
             const Value* start = opt(a, 1, "start");
             Value total = start ? *start : Value(0);
             for (const Value& item : iterate(v)) {
                 const Value x = attribute ? attribute_path(item, attribute->as_string()) : item;
                 const bool ints = total.kind() != Value::Kind::Float && x.kind() != Value::Kind::Float;
                 total = ints ? Value(total.as_int() + x.as_int()) : Value(total.as_number() + x.as_number());
             }
             return total;
         }},
        {"min", [](const Value& v, const Args& a) { return min_max(v, a, false); }},
        {"max", [](const Value& v, const Args& a) { return min_max(v, a, true); }},
        {"unique", unique_items},
        {"reverse",
         [](const Value& v, const Args&) {
             Array items = iterate(v);
             std::reverse(items.begin(), items.end());
             if (!v.is_string()) return Value::array(std::move(items));
             std::string s;
             for (const Value& c : items) s += c.as_string();
             return Value(std::move(s));
         }},
        {"sort",
         [](const Value& v, const Args& a) {
             return Value::array(sorted(iterate(v), flag(a, 0, "reverse", false), flag(a, 1, "case_sensitive", false),
                                        opt(a, 2, "attribute")));
         }},
        {"dictsort",
         [](const Value& v, const Args& a) {
             const bool case_sensitive = flag(a, 0, "case_sensitive", false);
             const Value* by = opt(a, 1, "by");
             const size_t k = by && by->as_string() == "value" ? 1 : 0;
             Array pairs = get_attribute(v, "items").function()(Args{}).items();
             std::stable_sort(pairs.begin(), pairs.end(), [&](const Value& x, const Value& y) {
                 return sort_key(x.items()[k], case_sensitive).compare(sort_key(y.items()[k], case_sensitive)) < 0;
             });
             if (flag(a, 2, "reverse", false)) std::reverse(pairs.begin(), pairs.end());
             return Value::array(std::move(pairs));
         }},
        {"indent", indent_text},
        {"safe", [](const Value& v, const Args&) { return v; }},
        {"escape", [](const Value& v, const Args&) { return html_escape(v); }},
        {"e", [](const Value& v, const Args&) { return html_escape(v); }},
    };
    return table;
}

using TestFn = bool (*)(const Value&, const Args&);

const Value& test_arg(const Args& a) {
    if (a.positional.empty()) fail("this test needs an argument");
    return a.positional[0];
}

bool is_lower_or_upper(const Value& v, bool upper) {
    if (!v.is_string()) return false;
    const std::string& s = v.as_string();
    bool cased = false;
    for (char c : s) {
        const auto u = static_cast<unsigned char>(c);
        if (std::isalpha(u)) {
            cased = true;
            if ((upper && std::islower(u)) || (!upper && std::isupper(u))) return false;
        }
    }
    return cased;
}

const std::map<std::string, TestFn>& tests() {
    using K = Value::Kind;
    static const std::map<std::string, TestFn> table = {
        {"defined", [](const Value& v, const Args&) { return !v.is_undefined(); }},
        {"undefined", [](const Value& v, const Args&) { return v.is_undefined(); }},
        {"none", [](const Value& v, const Args&) { return v.is_none(); }},
        {"boolean", [](const Value& v, const Args&) { return v.kind() == K::Bool; }},
        {"true", [](const Value& v, const Args&) { return v.kind() == K::Bool && v.as_int() == 1; }},
        {"false", [](const Value& v, const Args&) { return v.kind() == K::Bool && v.as_int() == 0; }},
        {"integer", [](const Value& v, const Args&) { return v.kind() == K::Int; }},
        {"float", [](const Value& v, const Args&) { return v.kind() == K::Float; }},
        {"number", [](const Value& v, const Args&) { return v.is_number(); }},
        {"string", [](const Value& v, const Args&) { return v.is_string(); }},
        {"mapping", [](const Value& v, const Args&) { return v.is_object(); }},
        {"iterable", [](const Value& v,
                        const Args&) { return v.is_undefined() || v.is_string() || v.is_array() || v.is_object(); }},
        {"sequence", [](const Value& v, const Args&) { return v.is_string() || v.is_array() || v.is_object(); }},
        {"callable", [](const Value& v, const Args&) { return v.kind() == K::Function; }},
        {"odd", [](const Value& v, const Args&) { return v.as_int() % 2 != 0; }},
        {"even", [](const Value& v, const Args&) { return v.as_int() % 2 == 0; }},
        {"divisibleby", [](const Value& v, const Args& a) { return v.as_int() % test_arg(a).as_int() == 0; }},
        {"eq", [](const Value& v, const Args& a) { return v.equals(test_arg(a)); }},
        {"equalto", [](const Value& v, const Args& a) { return v.equals(test_arg(a)); }},
        {"==", [](const Value& v, const Args& a) { return v.equals(test_arg(a)); }},
        {"ne", [](const Value& v, const Args& a) { return !v.equals(test_arg(a)); }},
        {"!=", [](const Value& v, const Args& a) { return !v.equals(test_arg(a)); }},
        {"lt", [](const Value& v, const Args& a) { return v.compare(test_arg(a)) < 0; }},
        {"lessthan", [](const Value& v, const Args& a) { return v.compare(test_arg(a)) < 0; }},
        {"le", [](const Value& v, const Args& a) { return v.compare(test_arg(a)) <= 0; }},
        {"gt", [](const Value& v, const Args& a) { return v.compare(test_arg(a)) > 0; }},
        {"greaterthan", [](const Value& v, const Args& a) { return v.compare(test_arg(a)) > 0; }},
        {"ge", [](const Value& v, const Args& a) { return v.compare(test_arg(a)) >= 0; }},
        {"in", [](const Value& v, const Args& a) { return contains(test_arg(a), v); }},
        {"sameas",
         [](const Value& v, const Args& a) { return v.kind() == test_arg(a).kind() && v.equals(test_arg(a)); }},
        {"lower", [](const Value& v, const Args&) { return is_lower_or_upper(v, false); }},
        {"upper", [](const Value& v, const Args&) { return is_lower_or_upper(v, true); }},
    };
    return table;
}

}  // namespace

Value apply_filter(const std::string& name, const Value& input, const Args& args) {
    const auto& table = filters();
    const auto it = table.find(name);
    if (it == table.end()) fail("no filter named '", name, "'");
    return it->second(input, args);
}

bool apply_test(const std::string& name, const Value& input, const Args& args) {
    const auto& table = tests();
    const auto it = table.find(name);
    if (it == table.end()) fail("no test named '", name, "'");
    return it->second(input, args);
}

}  // namespace strata::jinja
