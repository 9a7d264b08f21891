// The command line refuses numbers it cannot honour, with one clear line and exit code 1: negative
// counts, a seed beyond 64 bits, sums that overflow, a context whose KV cache cannot fit in
// memory (before the state is made or the prompt echoed), thread counts the system cannot start.
#include <doctest/doctest.h>

#include <string>

#include "test_support.h"

namespace {

const std::string kModel = std::string(STRATA_SOURCE_DIR) + "/models/shakespeare-q8_0.gguf";

#define CHECK_HAS(text, part) CHECK_MESSAGE((text).find(part) != std::string::npos, (text))

}  // namespace

TEST_CASE("cli: negative counts, a seed past 64 bits and parse errors exit 1 with one clear line") {
    struct Case {
        std::string args, expected;
    };
    const Case cases[] = {
        {"run -m " + kModel + " -c -5 -p hi", "strata: error: --ctx-size: Value -5 not in range 0 to 2147483647"},
        {"run -m " + kModel + " --top-k -5 -p hi", "strata: error: --top-k: Value -5 not in range 0 to 2147483647"},
        {"chat -m " + kModel + " -n -5", "strata: error: --n-predict: Value -5 not in range -1 to 2147483647"},
        {"run -m " + kModel + " --repeat-last-n -2 -p hi", "--repeat-last-n: Value -2 not in range -1"},
        {"run -m " + kModel + " -t -3 -p hi", "--threads: Value -3 not in range 0 to 65536"},
        {"run -m " + kModel + " --seed 18446744073709551616 -p hi",
         "strata: error: --seed: '18446744073709551616' is not -1 (random) or a seed from 0 to 18446744073709551615"},
        {"run -m " + kModel + " --seed 12abc -p hi", "--seed: '12abc' is not -1 (random)"},
        {"run -p hi", "strata: error: --model is required"},
        {"run -m " + kModel + " --no-such-flag",
         "strata: error: The following argument was not expected: --no-such-flag"},
        {"bench -m " + kModel + " --threads-list 2,x", "strata: error: --threads-list: 'x' is not a thread count"},
        {"bench -m " + kModel + " -p 2000000000 -n 2000000000 -r 1",
         "strata: error: -p 2000000000 + -n 2000000000 tokens is more than the largest context (2147483647)"},
    };
    for (const Case& c : cases) {
        CAPTURE(c.args);
        std::string output;
        CHECK(strata::test::run_strata(c.args + " < /dev/null", &output) == 1);
        CHECK_HAS(output, c.expected);
    }
    std::string output;
    CHECK(strata::test::run_strata("--help", &output) == 0);
    CHECK(strata::test::run_strata("--version", &output) == 0);

    // The largest seed is used as given (it was clamped to 2^63 - 1).
    CHECK(strata::test::run_strata("run -m " + kModel + " --seed 18446744073709551615 -p hi -n 2 --temp 1", &output) ==
          0);
    CHECK_HAS(output, "seed 18446744073709551615");
}

TEST_CASE("cli: a context whose KV cache cannot fit fails at load, naming -c, before the prompt is echoed") {
    std::string output;
    CHECK(strata::test::run_strata("run -m " + kModel + " -c 2000000000 -p 'ROMEO:' -n 4", &output) == 1);
    CHECK_HAS(output, "strata: error: -c/--ctx-size 2000000000: the KV cache would need 1907.3 GiB (1024 bytes per "
                      "position), but only ");
    CHECK_HAS(output, "of memory is available; choose a smaller -c/--ctx-size (the model was trained with 256)");
    CHECK(output.find("ROMEO:") == std::string::npos);
    CHECK(strata::test::run_strata("bench -m " + kModel + " -p 2000000000 -n 1 -r 1", &output) == 1);
    CHECK_HAS(output, "strata: error: -p + -n 2000000001: the KV cache would need");
    // Beyond the training context but within memory: a warning, as llama.cpp gives.
    CHECK(strata::test::run_strata("run -m " + kModel + " -c 512 -p 'ROMEO:' -n 2 --temp 0", &output) == 0);
    CHECK_HAS(output, "strata: warning: -c/--ctx-size 512 is more than the model's training context (256)");
}

TEST_CASE("cli: threads that cannot start are an error, not a hang") {
#if defined(__SANITIZE_ADDRESS__)
    MESSAGE("skipped under AddressSanitizer: its shadow memory needs more address space than the limit leaves");
#else
    // 400 MB of address space holds the model and a few dozen 8 MB thread stacks, not 300.
    std::string output;
    CHECK(strata::test::run_shell("ulimit -v 400000; timeout 60 $STRATA bench -m " + kModel + " -t 300 -p 8 -n 2 -r 1",
                                  &output) == 1);
    CHECK_HAS(output, "strata: error: cannot start thread ");
    CHECK_HAS(output, " of 300 (Resource temporarily unavailable); use fewer threads (-t)");
#endif
}
