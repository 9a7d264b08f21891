// A bounded, deterministic mutation pass over the Jinja interpreter (CI's fuzz run), plus every
// input that ever crashed it, kept as a regression test. Coverage-guided fuzzing: `make fuzz`.
#include <doctest/doctest.h>

#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "fuzz/jinja_fuzz_one.h"
#include "test_support.h"
#include "util/json.h"

using namespace strata;
namespace fs = std::filesystem;

namespace {

// Seeds: the Jinja feature cases, the models' own templates (when ../shared is there), and a few
// templates that lean on the sandbox's limits.
std::vector<std::string> seed_corpus() {
    std::vector<std::string> seeds;
    const fs::path cases = fs::path(STRATA_SOURCE_DIR) / "tests/data/chat_templates/cases.json";
    const Json json = Json::parse(test::read_text(cases), "cases.json");
    for (const Json& c : json.at("features").items()) seeds.push_back(c.at("template").as_string());
    if (!test::shared_dir().empty()) {
        for (const auto& entry : fs::directory_iterator(test::fixture("templates"))) {
            if (entry.path().extension() == ".jinja") seeds.push_back(test::read_text(entry.path()));
        }
    }
    seeds.push_back("{% for i in range(3) %}{% for j in range(3) %}{{ i * j }}{% endfor %}{% endfor %}");
    seeds.push_back("{% set ns = namespace(s='ab') %}{% for i in range(8) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}");
    seeds.push_back("{% macro f(n) %}{% if n > 0 %}[{{ f(n - 1) }}]{% endif %}{% endmacro %}{{ f(5) }}");
    seeds.push_back("{{ 9223372036854775807 * 3 }}{{ (-9223372036854775807 - 1) // -1 }}{{ 0x1f }}{{ 1e9 }}");
    return seeds;
}

// Pieces of Jinja syntax the mutations insert, so most mutants still lex.
const char* const kTokens[] = {"{{ ",      " }}",        "{% ",    " %}",      "{%- ",
                               " -%}",     "{# ",        " #}",    "if ",      "endif",
                               "for ",     " in ",       "endfor", "set ",     "macro ",
                               "endmacro", "else",       "not ",   " and ",    " or ",
                               "(",        ")",          "[",      "]",        "{",
                               "}",        ",",          ".",      "|",        " is ",
                               "~",        "+",          "-",      "*",        "//",
                               "%",        "**",         "==",     "'",        "\"",
                               "\\x",      "\\u",        "0x",     "1e999",    "9223372036854775807",
                               "range(",   "namespace(", "loop.",  "messages", "message['content']",
                               "tojson",   "trim",       "join",   "map",      "selectattr",
                               "replace",  "split(",     "indent", "unique"};

std::string mutate(const std::vector<std::string>& seeds, const std::string& in, std::mt19937_64& rng) {
    std::string out = in;
    const int n = 1 + static_cast<int>(rng() % 4);
    for (int i = 0; i < n; ++i) {
        const size_t pos = out.empty() ? 0 : rng() % (out.size() + 1);
        const size_t span = std::min<size_t>(1 + rng() % 16, out.size() - std::min(pos, out.size()));
        switch (rng() % 6) {
            case 0: out.insert(pos, kTokens[rng() % std::size(kTokens)]); break;
            case 1: out.erase(pos, span); break;
            case 2: out.insert(pos, out.substr(pos, span)); break;  // duplicate a piece
            case 3:
                if (pos < out.size()) out[pos] = static_cast<char>(rng());
                break;
            case 4: {  // splice in a piece of another seed
                const std::string& other = seeds[rng() % seeds.size()];
                const size_t from = other.empty() ? 0 : rng() % other.size();
                out.insert(pos, other.substr(from, 1 + rng() % 32));
                break;
            }
            case 5: out.insert(pos, std::to_string(static_cast<int64_t>(rng()))); break;
        }
    }
    return out;
}

}  // namespace

TEST_CASE("bounded fuzz pass over the Jinja interpreter") {
    const std::vector<std::string> seeds = seed_corpus();
    std::mt19937_64 rng(20261207);
    const int kExecutions = 20000;
    int rendered = 0;
    for (int i = 0; i < kExecutions; ++i) {
        const std::string input = mutate(seeds, seeds[static_cast<size_t>(i) % seeds.size()], rng);
        rendered += fuzz::jinja_fuzz_one(reinterpret_cast<const uint8_t*>(input.data()), input.size());
    }
    MESSAGE("Jinja fuzz pass: ", kExecutions, " executions, ", rendered, " templates rendered, ",
            kExecutions - rendered, " rejected with an error (built-in format used), no crash");
    CHECK(rendered > 0);
    CHECK(rendered < kExecutions);
}

TEST_CASE("Jinja inputs that once crashed a fuzzer stay fixed") {
    const fs::path dir = fs::path(STRATA_SOURCE_DIR) / "tests/data/jinja_crashes";
    int n = 0;
    for (const auto& entry : fs::directory_iterator(dir)) {
        if (!entry.is_regular_file() || entry.path().filename() == "README.md") continue;
        const std::string bytes = test::read_text(entry.path());
        CAPTURE(entry.path().filename().string());
        fuzz::jinja_fuzz_one(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
        ++n;
    }
    MESSAGE(n, " regression inputs replayed");
}
