// GGUF v3 (and v2) reader and writer. The reader maps the file read-only and hands out views:
// metadata strings and tensor data point into the mapping, nothing is copied. Every structural
// problem is reported as strata::Error naming the file and what is wrong.
// Spec: https://github.com/ggml-org/ggml/blob/master/docs/gguf.md
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tensor/ggml_type.h"
#include "tensor/tensor.h"

namespace strata {

enum class GgufType : uint32_t {
    UINT8 = 0,
    INT8 = 1,
    UINT16 = 2,
    INT16 = 3,
    UINT32 = 4,
    INT32 = 5,
    FLOAT32 = 6,
    BOOL = 7,
    STRING = 8,
    ARRAY = 9,
    UINT64 = 10,
    INT64 = 11,
    FLOAT64 = 12,
};

const char* gguf_type_name(GgufType type);

constexpr uint32_t kGgufMagic = 0x46554747;  // "GGUF" little-endian
constexpr uint32_t kGgufDefaultAlignment = 32;
constexpr int kMaxDims = 4;

// A metadata value as a view into the file. Scalars are decoded; arrays of numbers keep a pointer
// to their little-endian elements; arrays of strings and nested arrays are decoded into items.
struct GgufValue {
    GgufType type = GgufType::UINT8;
    union {
        uint64_t u64;
        int64_t i64;
        double f64;
        bool b;
    } scalar{};
    std::string_view str;             // STRING
    GgufType elem_type = GgufType::UINT8;  // ARRAY
    uint64_t count = 0;                    // ARRAY: number of elements
    const uint8_t* elems = nullptr;        // ARRAY of numbers/bools: raw elements
    std::vector<GgufValue> items;          // ARRAY of strings or arrays
    std::string_view raw;                  // the encoded value as stored (for copying)

    bool is_integer() const;
    bool is_float() const;
    // Numeric element i of an array of numbers, converted.
    double number_at(uint64_t i) const;
    // Short human-readable rendering (arrays summarized: type, length, first items).
    std::string to_string(size_t max_items = 8) const;
};

struct GgufTensorInfo {
    std::string name;
    GgmlType type;
    int n_dims = 0;
    int64_t ne[kMaxDims] = {1, 1, 1, 1};  // ggml order: ne[0] is the row length
    uint64_t offset = 0;                  // relative to the data section
    size_t nbytes = 0;
    int64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
};

class GgufFile {
public:
    struct Options {
        bool use_mmap = true;  // false: read the file into memory (--no-mmap)
    };
    static std::unique_ptr<GgufFile> open(const std::string& path, Options options);
    static std::unique_ptr<GgufFile> open(const std::string& path) { return open(path, Options{}); }
    // Parses an in-memory image (tests, fuzzing); `name` appears in error messages.
    static std::unique_ptr<GgufFile> from_bytes(std::vector<uint8_t> bytes, const std::string& name);
    ~GgufFile();
    GgufFile(const GgufFile&) = delete;
    GgufFile& operator=(const GgufFile&) = delete;

    const std::string& path() const { return path_; }
    uint32_t version() const { return version_; }
    uint32_t alignment() const { return alignment_; }
    uint64_t data_offset() const { return data_offset_; }
    size_t file_size() const { return size_; }
    bool is_mapped() const { return mapped_; }

    // Metadata in file order.
    const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return kv_; }
    const GgufValue* find(std::string_view key) const;
    bool has(std::string_view key) const { return find(key) != nullptr; }

    // Typed getters: missing keys and values of the wrong type throw Error naming file and key.
    // Integer getters accept any integer type whose value fits; float getters accept any number.
    uint64_t get_u64(std::string_view key) const;
    uint64_t get_u64(std::string_view key, uint64_t fallback) const;
    uint32_t get_u32(std::string_view key) const;
    uint32_t get_u32(std::string_view key, uint32_t fallback) const;
    int64_t get_i64(std::string_view key) const;
    int64_t get_i64(std::string_view key, int64_t fallback) const;
    float get_f32(std::string_view key) const;
    float get_f32(std::string_view key, float fallback) const;
    bool get_bool(std::string_view key, bool fallback) const;
    std::string get_string(std::string_view key) const;
    std::string get_string(std::string_view key, const std::string& fallback) const;
    // Arrays: element types are checked; numbers are converted.
    std::vector<std::string_view> get_strings(std::string_view key) const;
    std::vector<float> get_f32_array(std::string_view key) const;
    std::vector<int64_t> get_int_array(std::string_view key) const;

    const std::vector<GgufTensorInfo>& tensor_infos() const { return tensors_; }
    const GgufTensorInfo* find_tensor_info(std::string_view name) const;
    // A typed view of a tensor's bytes in the mapping; throws Error naming a missing tensor.
    TensorView tensor(std::string_view name) const;
    // nullptr-like empty view (data == nullptr) when absent.
    TensorView tensor_or_empty(std::string_view name) const;
    const uint8_t* data() const { return base_; }

private:
    GgufFile() = default;
    void parse();

    std::string path_;
    const uint8_t* base_ = nullptr;
    size_t size_ = 0;
    bool mapped_ = false;
    std::vector<uint8_t> owned_;  // when not mapped
    uint32_t version_ = 0;
    uint32_t alignment_ = kGgufDefaultAlignment;
    uint64_t data_offset_ = 0;
    std::vector<std::pair<std::string, GgufValue>> kv_;
    std::map<std::string, size_t, std::less<>> kv_index_;
    std::vector<GgufTensorInfo> tensors_;
    std::map<std::string, size_t, std::less<>> tensor_index_;
};

// Writes a GGUF v3 file. Metadata and tensor infos are declared first; tensor data is produced
// one tensor at a time while writing, so a model never has to be in memory at once.
class GgufWriter {
public:
    void set_u8(const std::string& key, uint8_t v);
    void set_u32(const std::string& key, uint32_t v);
    void set_i32(const std::string& key, int32_t v);
    void set_u64(const std::string& key, uint64_t v);
    void set_f32(const std::string& key, float v);
    void set_bool(const std::string& key, bool v);
    void set_string(const std::string& key, std::string_view v);
    void set_strings(const std::string& key, const std::vector<std::string>& v);
    void set_f32_array(const std::string& key, const std::vector<float>& v);
    void set_i32_array(const std::string& key, const std::vector<int32_t>& v);
    // Copies a value read from another file verbatim (any type, nested arrays included).
    void set_value(const std::string& key, const GgufValue& v);
    void remove(const std::string& key);
    bool has(const std::string& key) const;

    // Produces exactly row_size(type, ne[0]) * rows bytes into `out` when called.
    using Producer = std::function<void(std::vector<uint8_t>& out)>;
    void add_tensor(const std::string& name, GgmlType type, std::vector<int64_t> ne, Producer produce);
    // Convenience: data already in memory (copied only while writing).
    void add_tensor(const std::string& name, GgmlType type, std::vector<int64_t> ne, const void* data);

    void set_alignment(uint32_t alignment);
    // Writes everything; calls on_tensor(i, n) after each tensor (progress). The file appears
    // under `path` only when complete (util/files.h's AtomicFile): a failure or a signal leaves
    // whatever was there. Refuses a `path` that is one of `inputs` or an existing non-regular file.
    void write(const std::string& path, const std::function<void(size_t, size_t)>& on_tensor = {},
               const std::vector<std::string>& inputs = {}) const;

private:
    void set_raw(const std::string& key, GgufType type, std::string bytes);
    struct Kv {
        std::string key;
        GgufType type;
        std::string bytes;  // the value's encoding
    };
    struct Tensor {
        std::string name;
        GgmlType type;
        std::vector<int64_t> ne;
        size_t nbytes;
        Producer produce;
    };
    std::vector<Kv> kv_;
    std::vector<Tensor> tensors_;
    uint32_t alignment_ = kGgufDefaultAlignment;
};

}  // namespace strata
