#include "model/weights.h"

#include <vector>

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

TensorView WeightLoader::find(const std::string& name, std::initializer_list<int64_t> shape, bool required) const {
    TensorView t = file_.tensor_or_empty(name);
    if (t.empty()) {
        if (required) {
            fail(file_.path(), ": missing tensor '", name, "' (expected shape ", shape_text(std::data(shape), shape.size()),
                 ")");
        }
        return t;
    }
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

Tensor WeightLoader::optional(const std::string& name, std::initializer_list<int64_t> shape) const {
    const TensorView v = find(name, shape, false);
    return v.empty() ? Tensor{} : backend_.load_weight(v, keep_);
}

Tensor WeightLoader::require(const std::string& name, std::initializer_list<int64_t> shape) const {
    return backend_.load_weight(find(name, shape, true), keep_);
}

Tensor WeightLoader::optional_f32(const std::string& name, std::initializer_list<int64_t> shape) const {
    const TensorView v = find(name, shape, false);
    if (v.empty()) return {};
    const TypeTraits& tt = type_traits(v.type);
    if (!tt.to_float) fail(file_.path(), ": tensor '", name, "' has type ", tt.name, ", which strata cannot read");
    std::vector<float> values(static_cast<size_t>(v.n_elements()));
    tt.to_float(v.data, values.data(), v.n_elements());
    auto buffer = backend_.alloc(values.size() * sizeof(float));
    Tensor t = buffer->tensor(GgmlType::F32, {v.ne[0], v.ne[1], v.ne[2], v.ne[3]});
    t.name = v.name;
    backend_.write(t, values.data(), values.size() * sizeof(float));
    keep_.push_back(std::move(buffer));
    return t;
}

Tensor WeightLoader::require_f32(const std::string& name, std::initializer_list<int64_t> shape) const {
    find(name, shape, true);
    return optional_f32(name, shape);
}

}  // namespace strata
