// The backend and model loading the model suites share, so the same checks run unchanged on
// another backend: STRATA_TEST_BACKEND=cuda runs them on the GPU (tests/gpu/run.sh does).
#pragma once

#include <memory>
#include <vector>

#include "backend/backend.h"
#include "format/gguf.h"
#include "model/model.h"
#include "tensor/ggml_type.h"

namespace strata::test {

// $STRATA_TEST_BACKEND ("cpu" when unset), with n_threads on the CPU.
std::unique_ptr<Backend> test_backend(int n_threads);
// load_model with an F32 KV cache: the comparisons with Hugging Face and the earlier exact
// results leave no room for F16 rounding of keys and values (the F16 default has its own test).
std::unique_ptr<Model> load_test_model(const GgufFile& file, Backend& backend);

// The weight types the op suites cover: every type the type table can quantize to that has a dot
// product (Q8_1 and Q8_K are activation formats only; the IQ1–IQ3 grids have no quantizer).
inline std::vector<GgmlType> weight_types() {
    std::vector<GgmlType> types;
    for (uint32_t id = 0; id < 64; ++id) {
        const TypeTraits* t = find_type_traits(id);
        if (t && t->from_float && t->to_float && t->vec_dot) types.push_back(t->type);
    }
    return types;
}

}  // namespace strata::test
