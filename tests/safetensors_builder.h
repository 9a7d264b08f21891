// Safetensors files and Hugging Face folders built in a test: entries written in the given order,
// and copies of a fixture folder without its weights, so a test can give them its own.
#pragma once

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "format/safetensors.h"
#include "test_support.h"
#include "util/json.h"

namespace strata::test {

// Writes a safetensors file: entries in the given order, data packed in that order.
struct StEntry {
    std::string name, dtype;
    std::vector<int64_t> shape;
    std::vector<uint8_t> bytes;
};
inline void write_safetensors(const std::filesystem::path& path, const std::vector<StEntry>& entries) {
    Json header = Json::object();
    size_t offset = 0;
    for (const StEntry& e : entries) {
        Json shape = Json::array(), offsets = Json::array();
        for (int64_t d : e.shape) shape.push_back(d);
        offsets.push_back(static_cast<int64_t>(offset));
        offsets.push_back(static_cast<int64_t>(offset + e.bytes.size()));
        Json entry = Json::object();
        entry.set("dtype", e.dtype);
        entry.set("shape", std::move(shape));
        entry.set("data_offsets", std::move(offsets));
        header.set(e.name, std::move(entry));
        offset += e.bytes.size();
    }
    const std::string text = header.dump();
    const uint64_t n = text.size();
    std::string file(8, '\0');
    std::memcpy(file.data(), &n, 8);
    file += text;
    for (const StEntry& e : entries) file.append(reinterpret_cast<const char*>(e.bytes.data()), e.bytes.size());
    write_bytes(path, std::vector<uint8_t>(file.begin(), file.end()));
}

// A file with any header text (hostile ones included) and `data_bytes` zero bytes after it.
inline void write_safetensors_raw(const std::filesystem::path& path, const std::string& header, size_t data_bytes) {
    const uint64_t n = header.size();
    std::string file(8, '\0');
    std::memcpy(file.data(), &n, 8);
    file += header;
    file.append(data_bytes, '\0');
    write_bytes(path, std::vector<uint8_t>(file.begin(), file.end()));
}

inline StEntry entry_of(const SafetensorsTensor& t, std::string name = "") {
    return {name.empty() ? t.name : name, t.dtype, t.shape, std::vector<uint8_t>(t.data, t.data + t.nbytes)};
}

// A copy of a fixture folder without its weights (config and tokenizer files only).
inline std::filesystem::path folder_like(const std::string& model, const std::string& tag) {
    const std::filesystem::path dir = temp_dir() / tag;
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    for (const char* f : {"config.json", "tokenizer.model", "tokenizer_config.json"}) {
        std::filesystem::copy_file(fixture("hf/" + model + "/" + f), dir / f);
    }
    return dir;
}

}  // namespace strata::test
