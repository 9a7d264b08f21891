// What a Jinja template can call besides its own macros: jinja2's filters and tests, the Python
// string and dict methods chat templates use (`content.split('</think>')`, `tool.items()`), and
// the globals transformers provides (range, namespace, dict, raise_exception, strftime_now).
// Semantics follow jinja2 3.1 and Python 3 for the cases tests/data/chat_templates checks.
//
// Each takes the render's Budget (jinja_sandbox.h) and charges it for the work it does and the
// values it creates, before creating them; functions it returns (string methods, range) keep a
// reference to it, so they must not outlive the render.
#pragma once

#include <string>

#include "chat/jinja_sandbox.h"
#include "chat/jinja_value.h"

namespace strata::jinja {

// `input | name(args)`; throws Error for an unknown filter or bad arguments.
Value apply_filter(Budget& budget, const std::string& name, const Value& input, const Args& args);
// `input is name(args)`; throws Error for an unknown test.
bool apply_test(Budget& budget, const std::string& name, const Value& input, const Args& args);

// obj.name as jinja2's getattr does it: a method of obj's type, else the member of that name,
// else undefined. Throws Error when obj itself is undefined.
Value get_attribute(Budget& budget, const Value& obj, const std::string& name);
// obj[key]: a member, list item (negative indices count from the end) or character, else the
// attribute of that name, else undefined. Throws Error when obj is undefined.
Value get_item(Budget& budget, const Value& obj, const Value& key);
// obj[start:stop:step] on a list, tuple or string (by code points); null bounds are open.
Value get_slice(Budget& budget, const Value& obj, const Value* start, const Value* stop, const Value* step);

// The items a for loop visits: list items, a string's characters, a dict's keys; nothing for
// undefined. Throws Error for other types.
Array iterate(Budget& budget, const Value& v);
// `needle in haystack`: substring, list item or dict key.
bool contains(Budget& budget, const Value& haystack, const Value& needle);

// range, namespace, dict, raise_exception and strftime_now.
Object global_functions(Budget& budget);

// The first occurrence of `needle` in `haystack` at or after `from` (npos: none), and the last
// one starting at or before `before`, in time linear in the texts (std::string::find is
// quadratic on texts like "aaa…ab"); the callers charge the bytes.
size_t find_text(const std::string& haystack, const std::string& needle, size_t from = 0);
size_t rfind_text(const std::string& haystack, const std::string& needle, size_t before = std::string::npos);

// str.strip(chars) with Python's whitespace (Unicode spaces included) when chars is null.
std::string python_strip(const std::string& s, const std::string* chars, bool left, bool right);

}  // namespace strata::jinja
