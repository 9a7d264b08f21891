// `strata info FILE`: header, metadata, tensor table and totals of a GGUF file.
#include <cstdio>
#include <string>

#include "commands.h"
#include "format/gguf.h"
#include "util/json.h"

namespace {

std::string shape_string(const strata::GgufTensorInfo& t) {
    std::string s = "[";
    for (int d = 0; d < t.n_dims; ++d) s += (d ? ", " : "") + std::to_string(t.ne[d]);
    return s + "]";
}

struct Totals {
    int64_t params = 0;
    uint64_t bytes = 0;
    double bits_per_weight() const { return params ? 8.0 * static_cast<double>(bytes) / static_cast<double>(params) : 0; }
};

Totals totals_of(const strata::GgufFile& f) {
    Totals t;
    for (const auto& info : f.tensor_infos()) {
        t.params += info.n_elements();
        t.bytes += info.nbytes;
    }
    return t;
}

void print_text(const strata::GgufFile& f) {
    std::printf("file: %s\n", f.path().c_str());
    std::printf("GGUF version %u, %zu bytes, alignment %u, data offset %llu, %zu metadata keys, %zu tensors\n",
                f.version(), f.file_size(), f.alignment(), static_cast<unsigned long long>(f.data_offset()),
                f.metadata().size(), f.tensor_infos().size());
    std::printf("\nmetadata:\n");
    for (const auto& [key, value] : f.metadata()) {
        std::printf("  %-45s %-8s %s\n", key.c_str(), strata::gguf_type_name(value.type), value.to_string().c_str());
    }
    std::printf("\ntensors:\n  %-40s %-8s %-24s %12s %12s\n", "name", "type", "shape", "bytes", "offset");
    for (const auto& t : f.tensor_infos()) {
        std::printf("  %-40s %-8s %-24s %12zu %12llu\n", t.name.c_str(), strata::type_name(t.type),
                    shape_string(t).c_str(), t.nbytes, static_cast<unsigned long long>(t.offset));
    }
    Totals tot = totals_of(f);
    std::printf("\ntotal: %lld parameters, %llu bytes of tensor data, %.3f bits per weight\n",
                static_cast<long long>(tot.params), static_cast<unsigned long long>(tot.bytes), tot.bits_per_weight());
}

void print_json(const strata::GgufFile& f) {
    using strata::Json;
    Json root = Json::object();
    root.set("file", f.path());
    root.set("version", static_cast<int64_t>(f.version()));
    root.set("alignment", static_cast<int64_t>(f.alignment()));
    root.set("data_offset", static_cast<int64_t>(f.data_offset()));
    Json meta = Json::object();
    for (const auto& [key, value] : f.metadata()) {
        Json entry = Json::object();
        entry.set("type", strata::gguf_type_name(value.type));
        if (value.type == strata::GgufType::ARRAY) {
            entry.set("element_type", strata::gguf_type_name(value.elem_type));
            entry.set("length", static_cast<int64_t>(value.count));
        }
        entry.set("value", value.to_string());
        meta.set(key, std::move(entry));
    }
    root.set("metadata", std::move(meta));
    Json tensors = Json::array();
    for (const auto& t : f.tensor_infos()) {
        Json entry = Json::object();
        entry.set("name", t.name);
        entry.set("type", strata::type_name(t.type));
        Json shape = Json::array();
        for (int d = 0; d < t.n_dims; ++d) shape.push_back(t.ne[d]);
        entry.set("shape", std::move(shape));
        entry.set("bytes", static_cast<int64_t>(t.nbytes));
        entry.set("offset", static_cast<int64_t>(t.offset));
        tensors.push_back(std::move(entry));
    }
    root.set("tensors", std::move(tensors));
    Totals tot = totals_of(f);
    root.set("parameters", tot.params);
    root.set("tensor_bytes", static_cast<int64_t>(tot.bytes));
    root.set("bits_per_weight", tot.bits_per_weight());
    std::printf("%s\n", root.dump(2).c_str());
}

}  // namespace

namespace {

void register_info(CLI::App& app) {
    auto* cmd = app.add_subcommand("info", "Print a GGUF file's header, metadata, tensors and totals");
    auto path = std::make_shared<std::string>();
    auto json = std::make_shared<bool>(false);
    cmd->add_option("file", *path, "GGUF file")->required();
    cmd->add_flag("--json", *json, "Machine-readable output");
    cmd->callback([path, json] {
        auto f = strata::GgufFile::open(*path);
        if (*json) print_json(*f);
        else print_text(*f);
    });
}

const CommandRegistration registration{80, "info", register_info};

}  // namespace
