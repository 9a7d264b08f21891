// What a Jinja template can call besides its own macros: jinja2's filters and tests, the Python
// string and dict methods chat templates use (`content.split('</think>')`, `tool.items()`), and
// the globals transformers provides (range, namespace, dict, raise_exception, strftime_now).
// Semantics follow jinja2 3.1 and Python 3 for the cases tests/data/chat_templates checks.
#pragma once

#include <string>

#include "chat/jinja_value.h"

namespace strata::jinja {

// `input | name(args)`; throws Error for an unknown filter or bad arguments.
Value apply_filter(const std::string& name, const Value& input, const Args& args);
// `input is name(args)`; throws Error for an unknown test.
bool apply_test(const std::string& name, const Value& input, const Args& args);

// obj.name as jinja2's getattr does it: a method of obj's type, else the member of that name,
// else undefined. Throws Error when obj itself is undefined.
Value get_attribute(const Value& obj, const std::string& name);
// obj[key]: a member, list item (negative indices count from the end) or character, else the
// attribute of that name, else undefined. Throws Error when obj is undefined.
Value get_item(const Value& obj, const Value& key);
// obj[start:stop:step] on a list, tuple or string (by code points); null bounds are open.
Value get_slice(const Value& obj, const Value* start, const Value* stop, const Value* step);

// The items a for loop visits: list items, a string's characters, a dict's keys; nothing for
// undefined. Throws Error for other types.
Array iterate(const Value& v);
// `needle in haystack`: substring, list item or dict key.
bool contains(const Value& haystack, const Value& needle);

// range, namespace, dict, raise_exception and strftime_now.
Object global_functions();

// str.strip(chars) with Python's whitespace (Unicode spaces included) when chars is null.
std::string python_strip(const std::string& s, const std::string* chars, bool left, bool right);

}  // namespace strata::jinja
