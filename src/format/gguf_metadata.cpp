// Typed access to GGUF metadata and tensors: lookups that fail with the file, key and the
// expected and actual types, so model loaders never see a value of the wrong kind.
#include <cmath>
#include <cstring>
#include <limits>
#include <sstream>

#include "format/gguf.h"
#include "util/error.h"

namespace strata {

const char* gguf_type_name(GgufType type) {
    switch (type) {
        case GgufType::UINT8: return "uint8";
        case GgufType::INT8: return "int8";
        case GgufType::UINT16: return "uint16";
        case GgufType::INT16: return "int16";
        case GgufType::UINT32: return "uint32";
        case GgufType::INT32: return "int32";
        case GgufType::FLOAT32: return "float32";
        case GgufType::BOOL: return "bool";
        case GgufType::STRING: return "string";
        case GgufType::ARRAY: return "array";
        case GgufType::UINT64: return "uint64";
        case GgufType::INT64: return "int64";
        case GgufType::FLOAT64: return "float64";
    }
    return "unknown";
}

namespace {

bool is_signed_int(GgufType t) {
    return t == GgufType::INT8 || t == GgufType::INT16 || t == GgufType::INT32 || t == GgufType::INT64;
}
bool is_unsigned_int(GgufType t) {
    return t == GgufType::UINT8 || t == GgufType::UINT16 || t == GgufType::UINT32 || t == GgufType::UINT64;
}

template <class T>
T load(const uint8_t* p) {
    T v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

std::string quoted(std::string_view s, size_t max_len) {
    std::string out = "\"";
    for (size_t i = 0; i < s.size() && i < max_len; ++i) {
        unsigned char ch = static_cast<unsigned char>(s[i]);
        if (ch == '\n') out += "\\n";
        else if (ch == '"' || ch == '\\') (out += '\\') += static_cast<char>(ch);
        else if (ch < 32) out += "\\x" + std::string(1, "0123456789abcdef"[ch >> 4]) + "0123456789abcdef"[ch & 15];
        else out += static_cast<char>(ch);
    }
    if (s.size() > max_len) out += "...";
    return out + "\"";
}

}  // namespace

bool GgufValue::is_integer() const { return is_signed_int(type) || is_unsigned_int(type); }
bool GgufValue::is_float() const { return type == GgufType::FLOAT32 || type == GgufType::FLOAT64; }

double GgufValue::number_at(uint64_t i) const {
    switch (elem_type) {
        case GgufType::UINT8:
        case GgufType::BOOL: return load<uint8_t>(elems + i);
        case GgufType::INT8: return load<int8_t>(elems + i);
        case GgufType::UINT16: return load<uint16_t>(elems + 2 * i);
        case GgufType::INT16: return load<int16_t>(elems + 2 * i);
        case GgufType::UINT32: return load<uint32_t>(elems + 4 * i);
        case GgufType::INT32: return load<int32_t>(elems + 4 * i);
        case GgufType::FLOAT32: return load<float>(elems + 4 * i);
        case GgufType::UINT64: return static_cast<double>(load<uint64_t>(elems + 8 * i));
        case GgufType::INT64: return static_cast<double>(load<int64_t>(elems + 8 * i));
        case GgufType::FLOAT64: return load<double>(elems + 8 * i);
        default: return 0;
    }
}

std::string GgufValue::to_string(size_t max_items) const {
    std::ostringstream os;
    if (is_unsigned_int(type)) os << scalar.u64;
    else if (is_signed_int(type)) os << scalar.i64;
    else if (is_float()) os << scalar.f64;
    else if (type == GgufType::BOOL) os << (scalar.b ? "true" : "false");
    else if (type == GgufType::STRING) os << quoted(str, 200);
    else {
        os << "[" << gguf_type_name(elem_type) << " x " << count << "]";
        uint64_t shown = std::min<uint64_t>(count, max_items);
        if (shown > 0) os << " ";
        for (uint64_t i = 0; i < shown; ++i) {
            if (i) os << ", ";
            if (elem_type == GgufType::STRING) os << quoted(items[i].str, 40);
            else if (elem_type == GgufType::ARRAY) os << items[i].to_string(3);
            else if (elem_type == GgufType::BOOL) os << (number_at(i) != 0 ? "true" : "false");
            else os << number_at(i);
        }
        if (count > shown) os << ", ...";
    }
    return os.str();
}

const GgufValue* GgufFile::find(std::string_view key) const {
    auto it = kv_index_.find(key);
    return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

namespace {

[[noreturn]] void wrong_type(const std::string& path, std::string_view key, const char* expected, const GgufValue& v) {
    fail(path, ": metadata key '", key, "' should be ", expected, ", but the file stores ", gguf_type_name(v.type),
         v.type == GgufType::ARRAY ? std::string(" of ") + gguf_type_name(v.elem_type) : std::string());
}

}  // namespace

#define STRATA_REQUIRE_KEY(key)                                                      \
    const GgufValue* v = find(key);                                                  \
    if (!v) fail(path_, ": missing metadata key '", key, "'")

uint64_t GgufFile::get_u64(std::string_view key) const {
    STRATA_REQUIRE_KEY(key);
    if (is_unsigned_int(v->type)) return v->scalar.u64;
    if (is_signed_int(v->type) && v->scalar.i64 >= 0) return static_cast<uint64_t>(v->scalar.i64);
    if (is_signed_int(v->type)) fail(path_, ": metadata key '", key, "' is negative (", v->scalar.i64, ")");
    wrong_type(path_, key, "an unsigned integer", *v);
}

uint64_t GgufFile::get_u64(std::string_view key, uint64_t fallback) const {
    return has(key) ? get_u64(key) : fallback;
}

uint32_t GgufFile::get_u32(std::string_view key) const {
    uint64_t x = get_u64(key);
    if (x > std::numeric_limits<uint32_t>::max()) fail(path_, ": metadata key '", key, "' = ", x, " is too large");
    return static_cast<uint32_t>(x);
}

uint32_t GgufFile::get_u32(std::string_view key, uint32_t fallback) const {
    return has(key) ? get_u32(key) : fallback;
}

int64_t GgufFile::get_i64(std::string_view key) const {
    STRATA_REQUIRE_KEY(key);
    if (is_signed_int(v->type)) return v->scalar.i64;
    if (is_unsigned_int(v->type) && v->scalar.u64 <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return static_cast<int64_t>(v->scalar.u64);
    }
    wrong_type(path_, key, "an integer", *v);
}

int64_t GgufFile::get_i64(std::string_view key, int64_t fallback) const { return has(key) ? get_i64(key) : fallback; }

float GgufFile::get_f32(std::string_view key) const {
    STRATA_REQUIRE_KEY(key);
    if (v->is_float()) return static_cast<float>(v->scalar.f64);
    if (is_unsigned_int(v->type)) return static_cast<float>(v->scalar.u64);
    if (is_signed_int(v->type)) return static_cast<float>(v->scalar.i64);
    wrong_type(path_, key, "a number", *v);
}

float GgufFile::get_f32(std::string_view key, float fallback) const { return has(key) ? get_f32(key) : fallback; }

bool GgufFile::get_bool(std::string_view key, bool fallback) const {
    const GgufValue* v = find(key);
    if (!v) return fallback;
    if (v->type != GgufType::BOOL) wrong_type(path_, key, "a bool", *v);
    return v->scalar.b;
}

std::string GgufFile::get_string(std::string_view key) const {
    STRATA_REQUIRE_KEY(key);
    if (v->type != GgufType::STRING) wrong_type(path_, key, "a string", *v);
    return std::string(v->str);
}

std::string GgufFile::get_string(std::string_view key, const std::string& fallback) const {
    return has(key) ? get_string(key) : fallback;
}

std::vector<std::string_view> GgufFile::get_strings(std::string_view key) const {
    STRATA_REQUIRE_KEY(key);
    if (v->type != GgufType::ARRAY || v->elem_type != GgufType::STRING) wrong_type(path_, key, "an array of strings", *v);
    std::vector<std::string_view> out;
    out.reserve(v->items.size());
    for (const GgufValue& item : v->items) out.push_back(item.str);
    return out;
}

std::vector<float> GgufFile::get_f32_array(std::string_view key) const {
    STRATA_REQUIRE_KEY(key);
    bool numeric = v->type == GgufType::ARRAY && (is_signed_int(v->elem_type) || is_unsigned_int(v->elem_type) ||
                                                   v->elem_type == GgufType::FLOAT32 || v->elem_type == GgufType::FLOAT64);
    if (!numeric) wrong_type(path_, key, "an array of numbers", *v);
    std::vector<float> out(v->count);
    for (uint64_t i = 0; i < v->count; ++i) out[i] = static_cast<float>(v->number_at(i));
    return out;
}

std::vector<int64_t> GgufFile::get_int_array(std::string_view key) const {
    STRATA_REQUIRE_KEY(key);
    bool integral = v->type == GgufType::ARRAY && (is_signed_int(v->elem_type) || is_unsigned_int(v->elem_type) ||
                                                    v->elem_type == GgufType::BOOL);
    if (!integral) wrong_type(path_, key, "an array of integers", *v);
    std::vector<int64_t> out(v->count);
    for (uint64_t i = 0; i < v->count; ++i) out[i] = static_cast<int64_t>(v->number_at(i));
    return out;
}

#undef STRATA_REQUIRE_KEY

const GgufTensorInfo* GgufFile::find_tensor_info(std::string_view name) const {
    auto it = tensor_index_.find(name);
    return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

TensorView GgufFile::tensor_or_empty(std::string_view name) const {
    const GgufTensorInfo* t = find_tensor_info(name);
    if (!t) return {};
    TensorView v;
    v.name = t->name;
    v.type = t->type;
    v.n_dims = t->n_dims;
    for (int d = 0; d < kMaxDims; ++d) v.ne[d] = t->ne[d];
    v.data = base_ + data_offset_ + t->offset;
    v.nbytes = t->nbytes;
    return v;
}

TensorView GgufFile::tensor(std::string_view name) const {
    TensorView v = tensor_or_empty(name);
    if (v.empty()) fail(path_, ": missing tensor '", name, "'");
    return v;
}

}  // namespace strata
