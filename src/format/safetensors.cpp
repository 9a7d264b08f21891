// safetensors reader: maps each file, validates the JSON header against the file's size, and
// hands out views; nothing is copied until a tensor is decoded.
#include "format/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "tensor/float16.h"
#include "util/error.h"
#include "util/files.h"
#include "util/json.h"

namespace strata {

namespace fs = std::filesystem;

namespace {

// The header is JSON text; anything near this size is a corrupt length, not a real header
// (real ones are a few hundred bytes per tensor).
constexpr uint64_t kMaxHeaderBytes = 100u << 20;
constexpr double kMaxExactDouble = 9007199254740992.0;  // 2^53: JSON numbers above it are not exact integers

size_t dtype_size(const std::string& dtype) {
    if (dtype == "F64" || dtype == "I64" || dtype == "U64") return 8;
    if (dtype == "F32" || dtype == "I32" || dtype == "U32") return 4;
    if (dtype == "F16" || dtype == "BF16" || dtype == "I16" || dtype == "U16") return 2;
    if (dtype == "I8" || dtype == "U8" || dtype == "BOOL" || dtype == "F8_E4M3" || dtype == "F8_E5M2") return 1;
    return 0;
}

SafetensorsTensor parse_entry(const std::string& path, const std::string& name, const Json& entry, const uint8_t* data,
                              uint64_t data_size) {
    SafetensorsTensor t;
    t.name = name;
    t.file = path;
    const Json* dtype = entry.find("dtype");
    const Json* shape = entry.find("shape");
    const Json* offsets = entry.find("data_offsets");
    if (!dtype || !dtype->is_string() || !shape || !shape->is_array() || !offsets || !offsets->is_array() ||
        offsets->size() != 2) {
        fail(path, ": tensor '", name,
             "': header entry needs dtype (string), shape (array) and data_offsets ([begin, end])");
    }
    t.dtype = dtype->as_string();
    const size_t elem = dtype_size(t.dtype);
    if (elem == 0) fail(path, ": tensor '", name, "': unknown dtype '", t.dtype, "'");
    // Every number is checked as a double before it becomes an integer (a cast out of range is
    // undefined), and the element count with overflow-safe products: it must equal the bytes the
    // offsets give, which lie inside the file.
    bool has_zero = false;
    uint64_t n = 1;
    for (const Json& d : shape->items()) {
        const double v = d.is_number() ? d.as_number() : -1;
        if (!d.is_number() || v != std::floor(v) || v < 0 || v > kMaxExactDouble) {
            fail(path, ": tensor '", name, "': shape entries must be integers from 0 to 2^53, got ", d.dump());
        }
        t.shape.push_back(static_cast<int64_t>(v));
        if (v == 0) has_zero = true;
        else if (__builtin_mul_overflow(n, static_cast<uint64_t>(v), &n)) n = UINT64_MAX;  // past any file's size
    }
    if (has_zero) n = 0;
    uint64_t need = 0;
    if (__builtin_mul_overflow(n, static_cast<uint64_t>(elem), &need)) need = UINT64_MAX;
    double offset[2];
    for (size_t i = 0; i < 2; ++i) {
        const Json& o = (*offsets)[i];
        offset[i] = o.is_number() ? o.as_number() : -1;
        if (!o.is_number() || offset[i] != std::floor(offset[i]) || offset[i] < 0) {
            fail(path, ": tensor '", name, "': data_offsets must be non-negative integers, got ", offsets->dump());
        }
    }
    if (offset[1] < offset[0]) {
        fail(path, ": tensor '", name, "': data_offsets [", offset[0], ", ", offset[1], "] are not ordered");
    }
    if (offset[1] > static_cast<double>(data_size)) {
        fail(path, ": tensor '", name, "' ends at byte ", offset[1], " of the data section, but the file holds only ",
             data_size, " (truncated file?)");
    }
    const auto begin = static_cast<uint64_t>(offset[0]), end = static_cast<uint64_t>(offset[1]);
    if (end - begin != need) {
        const bool huge = need == UINT64_MAX;
        fail(path, ": tensor '", name, "': ", t.dtype, " shape of ", huge ? "too many" : std::to_string(n),
             " elements needs ", huge ? "more" : std::to_string(need), " bytes, data_offsets give ", end - begin);
    }
    t.data = data + begin;
    t.nbytes = static_cast<size_t>(end - begin);
    return t;
}

}  // namespace

int64_t SafetensorsTensor::n_elements() const {
    // The reader checked that the product of a shape without zeros fits its bytes.
    int64_t n = 1;
    for (int64_t d : shape) {
        if (d == 0) return 0;
    }
    for (int64_t d : shape) n *= d;
    return n;
}

std::unique_ptr<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
    std::unique_ptr<SafetensorsFile> f(new SafetensorsFile());
    f->path_ = path;
    const int fd = open_regular_file(path, &f->size_);
    if (f->size_ < 8) {
        ::close(fd);
        fail(path, ": ", f->size_,
             " bytes is too short for a safetensors file (needs at least the 8-byte header length)");
    }
    void* p = mmap(nullptr, f->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    ::close(fd);
    if (p == MAP_FAILED) fail(path, ": mmap failed (", std::strerror(errno), ")");
    f->base_ = static_cast<const uint8_t*>(p);

    uint64_t header_len = 0;
    std::memcpy(&header_len, f->base_, 8);
    if (header_len > kMaxHeaderBytes || header_len > f->size_ - 8) {
        fail(path, ": header length ", header_len, " does not fit the file of ", f->size_,
             " bytes (not safetensors, or truncated)");
    }
    const std::string_view text(reinterpret_cast<const char*>(f->base_ + 8), header_len);
    const Json header = Json::parse(text, path + " header");
    if (!header.is_object()) fail(path, ": header is not a JSON object");
    const uint8_t* data = f->base_ + 8 + header_len;
    const uint64_t data_size = f->size_ - 8 - header_len;
    for (const auto& [name, entry] : header.members()) {
        if (name == "__metadata__") continue;
        f->tensors_.push_back(parse_entry(path, name, entry, data, data_size));
    }
    std::sort(f->tensors_.begin(), f->tensors_.end(),
              [](const SafetensorsTensor& a, const SafetensorsTensor& b) { return a.name < b.name; });
    return f;
}

SafetensorsFile::~SafetensorsFile() {
    if (base_) munmap(const_cast<uint8_t*>(base_), size_);
}

SafetensorsCheckpoint SafetensorsCheckpoint::open(const std::string& dir) {
    SafetensorsCheckpoint c;
    c.dir_ = dir;
    const fs::path single = fs::path(dir) / "model.safetensors";
    const fs::path index = fs::path(dir) / "model.safetensors.index.json";
    std::vector<std::string> shards;
    std::map<std::string, std::string> expected;  // tensor -> shard, from the index
    if (fs::exists(index)) {
        c.index_ = index.string();
        const Json j = Json::parse(read_file(index.string()), index.string());
        const Json* map = j.find("weight_map");
        if (!map || !map->is_object()) fail(index.string(), ": no \"weight_map\" object");
        for (const auto& [name, shard] : map->members()) {
            if (!shard.is_string() || shard.as_string().empty() || shard.as_string().find('/') != std::string::npos ||
                shard.as_string() == "." || shard.as_string() == "..") {
                fail(index.string(), ": weight_map[\"", name, "\"] is not a file name in the folder");
            }
            expected[name] = shard.as_string();
            if (std::find(shards.begin(), shards.end(), shard.as_string()) == shards.end()) {
                shards.push_back(shard.as_string());
            }
        }
        std::sort(shards.begin(), shards.end());
    } else if (fs::exists(single)) {
        shards.push_back("model.safetensors");
    } else {
        fail(dir, ": no model.safetensors or model.safetensors.index.json");
    }
    for (const std::string& shard : shards) {
        const fs::path p = fs::path(dir) / shard;
        if (!fs::exists(p)) fail(index.string(), " names shard '", shard, "', which is missing from ", dir);
        c.files_.push_back(SafetensorsFile::open(p.string()));
        for (const SafetensorsTensor& t : c.files_.back()->tensors()) {
            if (!c.by_name_.emplace(t.name, &t).second) {
                fail(dir, ": tensor '", t.name, "' appears in more than one shard");
            }
        }
    }
    for (const auto& [name, shard] : expected) {
        const SafetensorsTensor* t = c.find(name);
        if (!t) fail(index.string(), ": tensor '", name, "' is listed in shard '", shard, "' but not stored there");
        if (fs::path(t->file).filename() != shard) {
            fail(index.string(), ": tensor '", name, "' is listed in '", shard, "' but stored in '", t->file, "'");
        }
    }
    return c;
}

std::vector<std::string> SafetensorsCheckpoint::paths() const {
    std::vector<std::string> out;
    if (!index_.empty()) out.push_back(index_);
    for (const auto& f : files_) out.push_back(f->path());
    return out;
}

std::vector<const SafetensorsTensor*> SafetensorsCheckpoint::tensors() const {
    std::vector<const SafetensorsTensor*> out;
    for (const auto& f : files_) {
        for (const SafetensorsTensor& t : f->tensors()) out.push_back(&t);
    }
    return out;
}

const SafetensorsTensor* SafetensorsCheckpoint::find(std::string_view name) const {
    auto it = by_name_.find(name);
    return it == by_name_.end() ? nullptr : it->second;
}

const SafetensorsTensor& SafetensorsCheckpoint::at(std::string_view name) const {
    const SafetensorsTensor* t = find(name);
    if (!t) fail(dir_, ": tensor '", name, "' is missing from the checkpoint");
    return *t;
}

void read_as_f32(const SafetensorsTensor& t, std::vector<float>& out) {
    const size_t n = static_cast<size_t>(t.n_elements());
    out.resize(n);
    if (n == 0 && (t.dtype == "F32" || t.dtype == "F16" || t.dtype == "BF16")) return;  // no memcpy from null
    if (t.dtype == "F32") {
        std::memcpy(out.data(), t.data, n * sizeof(float));
    } else if (t.dtype == "F16" || t.dtype == "BF16") {
        const bool bf16 = t.dtype == "BF16";
        for (size_t i = 0; i < n; ++i) {
            uint16_t h;
            std::memcpy(&h, t.data + 2 * i, 2);
            out[i] = bf16 ? bf16_to_fp32(h) : fp16_to_fp32(h);
        }
    } else {
        fail(t.file, ": tensor '", t.name, "' has dtype ", t.dtype, "; expected F32, F16 or BF16");
    }
}

}  // namespace strata
