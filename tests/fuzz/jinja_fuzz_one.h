// One fuzz execution over the Jinja interpreter: the input is a chat template, lexed, parsed and
// rendered with a conversation of every role, the way `strata chat` renders a GGUF's template
// (ChatTemplate, with its fallback to the built-in format when the template fails). Shared by the
// libFuzzer target and the bounded pass in the test suite.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "chat/chat_template.h"
#include "chat/jinja.h"
#include "util/error.h"

namespace strata::fuzz {

// Returns true if the template rendered, false if it was rejected with strata::Error (and the
// built-in format took over). Any other exception, a crash, or a jinja::InternalError (a library
// exception the sandbox did not foresee) is a bug: it aborts, so libFuzzer and the test suite
// both report it.
inline bool jinja_fuzz_one(const uint8_t* data, size_t size) {
    static const std::vector<ChatMessage> conversation = {
        {"system", "You are terse."},
        {"user", "Hello, who are you?"},
        {"assistant", " I am a model. <think>x</think>"},
        {"user", "Zwölf Boxkämpfer 🥊 \n\t jagen Viktor"},
    };
    const std::string source(reinterpret_cast<const char*>(data), size);
    try {
        jinja::Template{source};  // from_model() below turns a parse error into a notice
    } catch (const jinja::InternalError& e) {
        std::fprintf(stderr, "jinja_fuzz_one: %s\n", e.what());
        std::abort();
    } catch (const Error&) {
    }
    ChatTemplate t = ChatTemplate::from_model(source, {"<s>", "</s>"});
    bool rendered = t.uses_jinja();
    try {
        t.apply(conversation, true);
    } catch (const jinja::InternalError& e) {
        std::fprintf(stderr, "jinja_fuzz_one: %s\n", e.what());
        std::abort();
    } catch (const Error& e) {
        rendered = false;
        t.drop_jinja(e.what());
        t.apply(conversation, true);  // the built-in format never fails
    }
    if (t.notice().find('\n') != std::string::npos) {
        std::fprintf(stderr, "jinja_fuzz_one: a notice of more than one line: %s\n", t.notice().c_str());
        std::abort();
    }
    return rendered;
}

}  // namespace strata::fuzz
