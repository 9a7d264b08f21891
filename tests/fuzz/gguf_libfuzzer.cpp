// libFuzzer entry point (build with `make fuzz`, clang only): coverage-guided fuzzing of the
// GGUF reader. Crashing inputs it finds go to tests/data/gguf_crashes/ as regression tests.
#include "fuzz/gguf_fuzz_one.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    strata::fuzz::gguf_fuzz_one(data, size);
    return 0;
}
