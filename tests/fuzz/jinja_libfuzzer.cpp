// libFuzzer entry point (build with `make fuzz`, clang only): coverage-guided fuzzing of the Jinja
// lexer, parser and renderer through ChatTemplate. Crashing inputs it finds go to
// tests/data/jinja_crashes/ as regression tests.
#include "fuzz/jinja_fuzz_one.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    strata::fuzz::jinja_fuzz_one(data, size);
    return 0;
}
