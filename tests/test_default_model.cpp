// The shipped default model reproduces the greedy continuation Hugging Face generated for it
// when it was trained (models/README.md), through the same CLI a user runs.
#include <doctest/doctest.h>

#include "test_support.h"

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
    REQUIRE(strata::test::run_strata("run -m " + dir + "shakespeare-q8_0.gguf -p 'ROMEO:' -n 96 --temp 0 2>/dev/null", &alone) == 0);
    REQUIRE(strata::test::run_strata("run -m " + dir + "shakespeare-q8_0.gguf -md " + dir +
                                         "shakespeare-draft-q8_0.gguf -p 'ROMEO:' -n 96 --temp 0 2>/dev/null",
                                     &drafted) == 0);
    CHECK(alone.size() > 100);
    CHECK(drafted == alone);
}
