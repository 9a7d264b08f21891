// The Jinja sandbox (src/chat/jinja_sandbox.h): a hostile tokenizer.chat_template gets a clear
// template error, never a crash, a hang or an exhausted memory, and `strata chat` falls back to
// the built-in format with a one-line notice. One case per hostile template of issue 19, plus
// Python's integer semantics where a 64-bit result exists.
#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <vector>

#include "chat/chat_template.h"
#include "chat/jinja.h"
#include "chat/jinja_sandbox.h"
#include "util/error.h"

using strata::ChatTemplate;
using namespace strata::jinja;

namespace {

// The rendered text, or "error: " and the message.
std::string render(const std::string& source) {
    try {
        return Template(source).render(Value::object({{"messages", Value::array()}}));
    } catch (const strata::Error& e) {
        return std::string("error: ") + e.what();
    }
}

// Checks that `source` fails with a message containing `message` (or one of the alternatives
// in it, separated by '|': which limit a runaway template hits first may vary), quickly (a limit
// hit late would be a hang in practice; every case here ends in well under a second).
void check_error(const std::string& source, const std::string& message) {
    const auto start = std::chrono::steady_clock::now();
    const std::string got = render(source);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    CAPTURE(source.substr(0, 200));
    CAPTURE(got.substr(0, 300));
    CHECK(got.rfind("error: chat template", 0) == 0);
    bool found = false;
    for (size_t from = 0, bar;; from = bar + 1) {
        bar = message.find('|', from);
        found = found || got.find(message.substr(from, bar - from)) != std::string::npos;
        if (bar == std::string::npos) break;
    }
    CHECK(found);
    CHECK(seconds < 5);
}

// The message of a runaway template: it is stopped by the string limit or the step budget.
const std::string kLimit = "bytes|steps";

std::string repeated(const std::string& s, int n) {
    std::string out;
    for (int i = 0; i < n; ++i) out += s;
    return out;
}

const std::string kNested = "nested more than";

}  // namespace

TEST_CASE("jinja sandbox: deep syntax is a template error, not a stack overflow") {
    const int deep = 10000;  // far beyond kMaxNesting, and within kMaxTemplateBytes
    // Nested blocks, lists, parentheses, unary operators.
    check_error(repeated("{% if true %}", deep) + "x" + repeated("{% endif %}", deep), kNested);
    check_error(repeated("{% for i in [1] %}", deep) + repeated("{% endfor %}", deep), kNested);
    check_error("{{ " + repeated("[", deep) + repeated("]", deep) + " }}", kNested);
    check_error("{{ " + repeated("(", deep) + "1" + repeated(")", deep) + " }}", kNested);
    check_error("{{ " + repeated("{'a': ", deep) + "1" + repeated("}", deep) + " }}", kNested);
    check_error("{{ " + repeated("not ", deep) + "x }}", kNested);
    check_error("{{ " + repeated("-", deep) + "1 }}", kNested);
    check_error("{{ 1 " + repeated("if x else 1 ", deep) + "}}", kNested);
    // Chains the parser builds in a loop nest all the same: filters, attributes, operators, calls.
    check_error("{{ 'a'" + repeated(" | trim", deep) + " }}", kNested);
    check_error("{{ x" + repeated(".a", deep) + " }}", kNested);
    check_error("{{ 1" + repeated(" + 1", deep) + " }}", kNested);
    check_error("{{ f" + repeated("()", deep) + " }}", kNested);
    check_error("{{ x" + repeated(" is defined", deep) + " }}", "cannot be chained");

    // Just inside the limit, a template still works.
    const int ok = kMaxNesting / 2;
    CHECK(render(repeated("{% if true %}", ok) + "x" + repeated("{% endif %}", ok)) == "x");
    CHECK(render("{{ " + repeated("(", ok) + "1" + repeated(")", ok) + " }}") == "1");
    CHECK(render("{{ 'a'" + repeated(" | trim", ok) + " }}") == "a");
}

TEST_CASE("jinja sandbox: recursive macros and deep values are bounded") {
    check_error("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "recurses more than");
    check_error("{% macro f(n) %}{{ f(n + 1) ~ n }}{% endmacro %}{{ f(0) }}", "recurses more than");
    // A recursive macro of modest depth (as tool templates render nested JSON schemas) works.
    CHECK(render("{% macro f(n) %}{% if n > 0 %}({{ f(n - 1) }}){% endif %}{% endmacro %}{{ f(20) }}") ==
          repeated("(", 20) + repeated(")", 20));

    // A list nested deeper than any schema, built at run time, then printed or serialized.
    const std::string deep_list =
        "{% set ns = namespace(x=[]) %}{% for i in range(100000) %}{% set ns.x = [ns.x] %}{% endfor %}";
    check_error(deep_list + "{{ ns.x | tojson }}", "nested more than");
    check_error(deep_list + "{{ ns.x }}", "nested more than");
    check_error("{% set ns = namespace(d={}) %}{% for i in range(1000) %}{% set ns.d = {'a': ns.d} %}{% endfor %}",
                "nested more than");
    // A namespace that holds itself (or a function) could make every printer loop forever.
    check_error("{% set ns = namespace() %}{% set ns.me = ns %}{{ ns }}", "namespace");
    check_error("{% set ns = namespace() %}{% set ns.l = [1, [ns]] %}{{ ns }}", "namespace");
    check_error("{% set ns = namespace() %}{% set ns.f = 'a'.upper %}", "function");
    check_error("{% set a = namespace() %}{% set b = namespace(a=a) %}", "namespace");
    CHECK(
        render("{% set ns = namespace(n=0) %}{% for i in range(3) %}{% set ns.n = ns.n + i %}{% endfor %}{{ ns.n }}") ==
        "3");
}

TEST_CASE("jinja sandbox: strings and output have a size limit") {
    // Doubling a string in a loop, and repeating one.
    check_error("{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
                kLimit);
    check_error("{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
                kLimit);
    check_error("{{ 'ab' * 9223372036854775807 }}", "bytes");
    check_error("{{ 'ab' * 100000000 }}", "bytes");
    check_error("{{ [1, 2] * 9223372036854775807 }}", "steps");
    check_error("{% set s = 'a' * 1000000 %}{{ s.replace('', s) }}", "bytes");
    check_error("{% set s = 'a' * 100000 %}{{ ((s ~ '\\n') * 100) | indent(1000000) }}", "bytes");
    check_error("{{ [1] | tojson(indent=9223372036854775807) }}", "bytes");
    // Output alone: many small writes.
    check_error("{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}", "output exceeds");
    check_error("{% set s = 'x' * 10000000 %}{{ s }}{{ s }}", "output exceeds");
    CHECK(render("{{ 'ab' * 3 }}{{ 'x' * -2 }}{{ [1] * 2 }}") == "ababab[1, 1]");
    // A kilobyte-sized conversation renders far from the limit.
    CHECK(render("{% for i in range(1000) %}{{ 'message ' ~ i ~ '\n' }}{% endfor %}").size() > 10000);
}

TEST_CASE("jinja sandbox: a step budget stops runaway loops") {
    check_error("{% for i in range(16000000) %}{% for j in range(16000000) %}{% endfor %}{% endfor %}", "steps");
    check_error("{% for i in range(9223372036854775807) %}{% endfor %}", "steps");
    check_error("{% for i in range(-9223372036854775807 - 1, 9223372036854775807) %}{% endfor %}", "steps");
    check_error("{% for i in range(9223372036854775807, -9223372036854775807 - 1, -1) %}{% endfor %}", "steps");
    check_error(
        "{% for i in range(1000) %}{% for j in range(1000) %}{% for k in range(1000) %}"
        "{% endfor %}{% endfor %}{% endfor %}",
        "steps");
    check_error("{% set l = range(100000) | list %}{{ l | unique | length }}", "steps");
    // Range bounds near the ends of int64 give Python's lengths without overflowing.
    CHECK(render("{{ range(9223372036854775800, 9223372036854775807, 3) | list }}") ==
          "[9223372036854775800, 9223372036854775803, 9223372036854775806]");
    CHECK(render("{{ range(-9223372036854775807 - 1, -9223372036854775807 - 1 + 10, 9223372036854775807) | list }}") ==
          "[-9223372036854775808]");
    CHECK(render("{{ range(5, 0, -2) | list }}") == "[5, 3, 1]");
    // Slices with steps near the ends of int64.
    CHECK(render("{{ 'abc'[1::9223372036854775807] }}{{ 'abc'[::-9223372036854775807 - 1] }}") == "bc");
    CHECK(render("{{ [1, 2, 3][::-9223372036854775807] }}") == "[3]");
}

TEST_CASE("jinja sandbox: a substring search is linear, not quadratic, on hostile texts") {
    const auto start = std::chrono::steady_clock::now();
    CHECK(render("{% set a = 'a' * 4000000 %}{{ (a ~ 'b') in (a ~ a) }}") == "False");
    CHECK(render("{% set a = 'a' * 1000000 %}{{ (a ~ a).find(a ~ 'b') }}{{ (a ~ a).rfind('b' ~ a) }}") == "-1-1");
    CHECK(render("{% set a = 'a' * 1000000 %}{{ ('b' ~ a ~ a).rfind('b' ~ a) }}") == "0");
    CHECK(render("{% set a = 'ab' * 500000 %}{{ a.strip(a) | length }}") == "0");
    CHECK(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() < 5);
    CHECK(render("{{ 'x" + repeated("a", 60) + "y'.find('" + repeated("a", 40) + "y') }}") == "21");
    CHECK(render("{{ 'x" + repeated("a", 60) + "y'.rfind('x" + repeated("a", 40) + "') }}") == "0");
    CHECK(render("{{ 'a-b-c'.split('-') }}{{ 'a-b-c'.rsplit('-', 1) }}") == "['a', 'b', 'c']['a-b', 'c']");
}

TEST_CASE("jinja sandbox: integers follow Python where the result fits in 64 bits, else a clear error") {
    check_error("{{ 9223372036854775807 * 3 }}", "integer overflow: 9223372036854775807 * 3");
    check_error("{{ 9223372036854775807 + 1 }}", "integer overflow");
    check_error("{{ -9223372036854775807 - 2 }}", "integer overflow");
    // INT64_MIN // -1 is 2^63 in Python, beyond 64 bits; INT64_MIN % -1 is 0 in Python, and here
    // (no undefined behaviour, no SIGFPE).
    check_error("{{ (-9223372036854775808) // -1 }}", "integer overflow: -(-9223372036854775808)");
    CHECK(render("{{ (-9223372036854775808) % -1 }}") == "0");
    check_error("{{ (-9223372036854775807 - 1) // -1 }}", "integer overflow");
    CHECK(render("{{ (-9223372036854775807 - 1) % -1 }}") == "0");
    CHECK(render("{{ -9223372036854775808 }} {{ [-9223372036854775808][0] < 0 }}") == "-9223372036854775808 True");
    check_error("{{ -9223372036854775808 | abs }}", "integer overflow");
    check_error("{{ 9223372036854775808 }}", "integer literal 9223372036854775808 does not fit in 64 bits");
    check_error("{{ -(9223372036854775808) }}", "does not fit in 64 bits");
    check_error("{{ -(-9223372036854775807 - 1) }}", "integer overflow");
    check_error("{{ (-9223372036854775807 - 1) | abs }}", "integer overflow");
    check_error("{{ [9223372036854775807, 1] | sum }}", "integer overflow");
    check_error("{{ 2 ** 64 }}", "integer overflow: 2 ** 64");
    check_error("{{ 10 ** 9223372036854775807 }}", "integer overflow");
    check_error("{{ 7 // 0 }}", "division or modulo by zero");
    check_error("{{ 7 % 0 }}", "division or modulo by zero");
    check_error("{{ 7.0 // 0 }}", "division or modulo by zero");
    check_error("{{ 4 is divisibleby 0 }}", "division or modulo by zero");
    CHECK(render("{{ (-9223372036854775807 - 1) is divisibleby(-1) }}") == "True");
    CHECK(render("{{ 2 ** 62 }} {{ (-2) ** 63 }} {{ 0 ** 0 }} {{ 1 ** 9223372036854775807 }}") ==
          "4611686018427387904 -9223372036854775808 1 1");
    CHECK(render("{{ 7 // -2 }} {{ 7 % -2 }} {{ -7 // 2 }} {{ -7 % 2 }} {{ 2 ** -1 }}") == "-4 -1 -4 1 0.5");
    CHECK(render("{{ 9223372036854775807 > 9223372036854775806 }}") == "True");  // exact, not via double
    // Float → int conversions: Python's int() of a float beyond 64 bits would be a big integer.
    check_error("{{ 1e300 | int }}", "integer overflow");
    check_error("{{ '1e300' | int }}", "integer overflow");
    check_error("{{ '99999999999999999999' | int }}", "integer overflow");
    check_error("{{ (1e308 * 10) | int }}", "infinity");
    CHECK(render("{{ 'nan' | float | int }} {{ ' 42 ' | int }} {{ '4.9' | int }} {{ 'x' | int(7) }}") == "0 42 4 7");
    check_error("{{ 0.0 ** -1 }}", "negative power");
    check_error("{{ (-8.0) ** 0.5 }}", "fractional power");
    check_error("{{ 10.0 ** 400 }}", "out of range");
}

TEST_CASE("jinja sandbox: malformed literals are template errors") {
    check_error("{{ 0xg }}", "malformed number literal '0xg'");
    check_error("{{ 0b2 }}", "malformed number literal '0b2'");
    check_error("{{ 0x }}", "");
    check_error("{{ 1e999 }}", "float literal 1e999 is out of range");
    check_error("{{ 99999999999999999999 }}", "integer literal 99999999999999999999 does not fit");
    check_error("{{ 0xffffffffffffffffff }}", "does not fit");
    check_error("{{ '\\xZZ' }}", "malformed \\x escape");
    check_error("{{ '\\x4' }}", "malformed \\x escape");
    check_error("{{ '\\U00110000' }}", "not a Unicode character");
    check_error("{{ '\\ud800' }}", "not a Unicode character");
    CHECK(render("{{ 0x1F }} {{ 0o17 }} {{ 0b101 }} {{ 1_000 }} {{ 1e-999 }} {{ 2.5e3 }} {{ '\\x41\\u00e9' }}") ==
          "31 15 5 1000 0.0 2500.0 Aé");
    check_error("{{ [1] | tojson(separators=[',']) }}", "separators");
    check_error(std::string(kMaxTemplateBytes + 1, ' '), "the limit is");
}

TEST_CASE("jinja sandbox: a failing model template falls back to the built-in format with a one-line notice") {
    const std::vector<strata::ChatMessage> conversation = {{"user", "hi"}};
    // Rejected when parsed: chat starts with the built-in format of the detected family.
    for (const std::string& source : std::vector<std::string>{"{{ 0xg }}<|im_start|>", "{{ 1e999 }}<|im_start|>",
                                                              "{{ " + repeated("(", 10000) + " }}<|im_start|>"}) {
        const ChatTemplate t = ChatTemplate::from_model(source, {});
        CHECK_FALSE(t.uses_jinja());
        CHECK(t.description() == "built-in chatml format");
        CHECK(t.notice().find("cannot use the model's chat template") != std::string::npos);
        CHECK(t.notice().find('\n') == std::string::npos);
        CHECK(t.apply(conversation, true) == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
    }
    // Failing when rendered: the session drops it (ChatSession::render) and goes on; the notice
    // stays one short line even when the template's own message is long and multi-line.
    for (const std::string source :
         {"{% for i in range(16000000) %}{% for j in range(16000000) %}{% endfor %}{% endfor %}<|im_start|>",
          "{{ 9223372036854775807 * 3 }}<|im_start|>",
          "{{ raise_exception('line one\nline two' * 1000) }}<|im_start|>"}) {
        ChatTemplate t = ChatTemplate::from_model(source, {});
        REQUIRE(t.uses_jinja());
        std::string reason;
        try {
            t.apply(conversation, true);
        } catch (const strata::Error& e) {
            reason = e.what();
        }
        REQUIRE_FALSE(reason.empty());
        t.drop_jinja(reason);
        CHECK_FALSE(t.uses_jinja());
        CHECK(t.notice().find("the model's chat template failed") != std::string::npos);
        CHECK(t.notice().find('\n') == std::string::npos);
        CHECK(t.notice().size() < 500);
        CHECK(t.apply(conversation, true) == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
    }
}
