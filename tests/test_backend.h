// The backend and model loading the model suites share, so the same checks run unchanged on
// another backend: STRATA_TEST_BACKEND=cuda runs them on the GPU (tests/gpu/run.sh does).
#pragma once

#include <memory>

#include "backend/backend.h"
#include "format/gguf.h"
#include "model/model.h"

namespace strata::test {

// $STRATA_TEST_BACKEND ("cpu" when unset), with n_threads on the CPU.
std::unique_ptr<Backend> test_backend(int n_threads);
// load_model with an F32 KV cache: the comparisons with Hugging Face and the earlier exact
// results leave no room for F16 rounding of keys and values (the F16 default has its own test).
std::unique_ptr<Model> load_test_model(const GgufFile& file, Backend& backend);

}  // namespace strata::test
