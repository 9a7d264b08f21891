// Hugging Face safetensors checkpoints: an 8-byte little-endian header length, a JSON header
// {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}, then the raw
// row-major tensor bytes (offsets relative to the end of the header). Files are mapped read-only
// and every offset is checked against the file size before a view is handed out.
// A checkpoint is one `model.safetensors` or shards listed by `model.safetensors.index.json`.
// Spec: https://github.com/huggingface/safetensors#format
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace strata {

struct SafetensorsTensor {
    std::string name;
    std::string dtype;           // as stored: "F32", "F16", "BF16", "I64", ...
    std::vector<int64_t> shape;  // PyTorch order: shape.back() is the contiguous dimension
    const uint8_t* data = nullptr;
    size_t nbytes = 0;
    std::string file;  // the shard it lives in (for messages)
    int64_t n_elements() const;
};

// One mapped .safetensors file.
class SafetensorsFile {
public:
    static std::unique_ptr<SafetensorsFile> open(const std::string& path);
    ~SafetensorsFile();
    SafetensorsFile(const SafetensorsFile&) = delete;
    SafetensorsFile& operator=(const SafetensorsFile&) = delete;

    const std::string& path() const { return path_; }
    // In the order of their names (as Python's safetensors lists them).
    const std::vector<SafetensorsTensor>& tensors() const { return tensors_; }

private:
    SafetensorsFile() = default;
    std::string path_;
    const uint8_t* base_ = nullptr;
    size_t size_ = 0;
    std::vector<SafetensorsTensor> tensors_;
};

// All shards of a checkpoint folder.
class SafetensorsCheckpoint {
public:
    // `dir` holds model.safetensors, or model.safetensors.index.json and the shards it names.
    static SafetensorsCheckpoint open(const std::string& dir);

    // Shard by shard (in file-name order), each shard's tensors by name: the order llama.cpp's
    // converter visits them, which decides the tensor order of the GGUF it writes.
    std::vector<const SafetensorsTensor*> tensors() const;
    const SafetensorsTensor* find(std::string_view name) const;
    // Throws Error naming the tensor and the checkpoint when absent.
    const SafetensorsTensor& at(std::string_view name) const;
    // The files read: the index (if any) and every shard.
    std::vector<std::string> paths() const;

private:
    std::string dir_, index_;
    std::vector<std::unique_ptr<SafetensorsFile>> files_;
    std::map<std::string, const SafetensorsTensor*, std::less<>> by_name_;
};

// Decodes a F32, F16 or BF16 tensor into floats (out is resized); throws Error naming the tensor
// for any other dtype.
void read_as_f32(const SafetensorsTensor& t, std::vector<float>& out);

}  // namespace strata
