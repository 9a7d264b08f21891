// The shipped default model reproduces the greedy continuation Hugging Face generated for it
// when it was trained (models/README.md), through the same CLI a user runs.
#include <doctest/doctest.h>

#include <sstream>

#include "test_support.h"

namespace {

// The generated text: run_strata merges stderr in, so drop strata's own log lines.
std::string text_only(const std::string& output) {
    std::istringstream in(output);
    std::string line, text;
    while (std::getline(in, line)) {
        if (line.rfind("strata: ", 0) != 0) text += line + "\n";
    }
    return text;
}

}  // namespace

TEST_CASE("default model: `strata run` reproduces the recipe's Hugging Face greedy sample") {
    const std::string model = std::string(STRATA_SOURCE_DIR) + "/models/shakespeare-q8_0.gguf";
    std::string out;
    REQUIRE(strata::test::run_strata("run -m " + model + " -p 'ROMEO:' -n 48 --temp 0", &out) == 0);
    const std::string expected =
        "ROMEO:\nI'll be a bravel: I'll go to me,\nAnd I'll go to me.\n\nCORIOLANUS:\nIt is a merry.\n\nCORIOLANUS";
    CHECK_MESSAGE(out.find(expected) != std::string::npos, out);
}

TEST_CASE("default model with its draft: greedy speculative decoding prints what the target alone prints") {
    const std::string dir = std::string(STRATA_SOURCE_DIR) + "/models/";
    std::string alone, drafted;
    REQUIRE(strata::test::run_strata("run -m " + dir + "shakespeare-q8_0.gguf -p 'ROMEO:' -n 96 --temp 0", &alone) == 0);
    REQUIRE(strata::test::run_strata("run -m " + dir + "shakespeare-q8_0.gguf -md " + dir +
                                         "shakespeare-draft-q8_0.gguf -p 'ROMEO:' -n 96 --temp 0",
                                     &drafted) == 0);
    CHECK(text_only(alone).size() > 100);
    CHECK(text_only(drafted) == text_only(alone));
}
