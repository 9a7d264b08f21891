#include "model/weights.h"

#include "tensor/ggml_type.h"
#include "util/error.h"

namespace strata {

namespace {

std::string shape_text(const int64_t* ne, size_t n) {
    std::string s = "[";
    for (size_t i = 0; i < n; ++i) s += (i ? ", " : "") + std::to_string(ne[i]);
    return s + "]";
}

}  // namespace

TensorView WeightLoader::optional(const std::string& name, std::initializer_list<int64_t> shape) const {
    TensorView t = file_.tensor_or_empty(name);
    if (t.empty()) return t;
    bool same = static_cast<size_t>(t.n_dims) <= shape.size();
    size_t d = 0;
    for (int64_t want : shape) {
        same = same && t.ne[d] == want;
        ++d;
    }
    if (!same) {
        fail(file_.path(), ": tensor '", name, "' has shape ", shape_text(t.ne, static_cast<size_t>(t.n_dims)),
             ", expected ", shape_text(std::data(shape), shape.size()));
    }
    return t;
}

TensorView WeightLoader::require(const std::string& name, std::initializer_list<int64_t> shape) const {
    TensorView t = optional(name, shape);
    if (t.empty()) {
        fail(file_.path(), ": missing tensor '", name, "' (expected shape ", shape_text(std::data(shape), shape.size()), ")");
    }
    return t;
}

std::vector<float> WeightLoader::optional_vector(const std::string& name, int64_t n) const {
    TensorView t = optional(name, {n});
    if (t.empty()) return {};
    const TypeTraits& tt = type_traits(t.type);
    if (!tt.to_float) fail(file_.path(), ": tensor '", name, "' has type ", tt.name, ", which strata cannot read");
    std::vector<float> out(static_cast<size_t>(n));
    tt.to_float(t.data, out.data(), n);
    return out;
}

std::vector<float> WeightLoader::require_vector(const std::string& name, int64_t n) const {
    require(name, {n});
    return optional_vector(name, n);
}

}  // namespace strata
