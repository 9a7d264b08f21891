// A Jinja template interpreter for the chat templates models ship in tokenizer.chat_template: the
// subset of jinja2 they use (if/for/set/macro, loop variables, break/continue, namespaces,
// filters, tests, Python string and dict methods, raise_exception, strftime_now), rendering
// byte-identical output to transformers' apply_chat_template (tests/data/chat_templates).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "chat/jinja_value.h"
#include "util/error.h"

namespace strata::jinja {

struct Node;

// What the constructor and render() throw when a library call inside the interpreter fails in a
// way the sandbox does not foresee (std::bad_alloc, std::out_of_range…): still an Error, so the
// chat falls back to its built-in format, but of its own type, so the fuzzers report it as a bug.
struct InternalError : Error {
    using Error::Error;
};

class Template {
public:
    // Throws Error("chat template line N: …") on a syntax error, a tag outside the subset, or a
    // template beyond the sandbox's limits (jinja_sandbox.h).
    explicit Template(std::string_view source);

    // Renders with the members of `variables` (an object) as the template's variables. Throws
    // Error for runtime errors (undefined values used as numbers, type errors, integer overflow),
    // for a render past the sandbox's limits, and for raise_exception() calls, whose message it
    // carries.
    std::string render(const Value& variables) const;

private:
    std::shared_ptr<const std::vector<Node>> body_;
};

}  // namespace strata::jinja
