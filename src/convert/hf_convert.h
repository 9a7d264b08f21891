// Hugging Face checkpoint → GGUF, laid out as llama.cpp's convert_hf_to_gguf.py lays it out:
// the same architecture names, metadata keys (in the same order), tensor names, shapes, tensor
// order and transforms, so a strata file and llama.cpp's are interchangeable. Each supported
// architecture is one table (hf_architectures.cpp): its config.json → GGUF keys and its HF tensor
// names → GGUF names with the transform each needs.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "convert/quantize_model.h"
#include "format/gguf.h"
#include "util/json.h"

namespace strata {

// Reads a checkpoint folder (config.json, safetensors, tokenizer files) into a plan whose tensors
// are read and transformed one at a time when written. Throws Error naming the file and key or
// tensor for anything missing or inconsistent.
ModelPlan plan_hf_conversion(const std::string& dir);

// Shared with the llama2.c converter ------------------------------------------------------------

// general.architecture, general.type, general.name and a placeholder general.size_label (set by
// set_size_label once the tensors are known), in llama.cpp's order.
void add_general_metadata(GgufWriter& w, const std::string& arch, const std::string& name);
void set_size_label(ModelPlan& plan);
// llama.cpp's title for a model folder or file name: "llama-draft" → "Llama Draft".
std::string model_title(const std::string& id);

// The architecture tables (hf_architectures.cpp) ------------------------------------------------

// config.json. Every count is read through integer*(), which checks it against its key's range
// (kCountRanges in hf_config.cpp: the one place the limits live) before anything uses it; an
// error names the file, the key and the value.
class HfConfig {
public:
    HfConfig(Json json, std::string path) : json_(std::move(json)), path_(std::move(path)) {}
    const std::string& path() const { return path_; }
    const Json* find(const char* key) const;  // null values count as absent
    using Keys = std::vector<const char*>;    // alternative spellings, first present wins
    // A finite number (rope_theta, an epsilon), or none.
    std::optional<double> number(const Keys& keys) const;
    std::optional<int64_t> integer_if(const Keys& keys) const;  // a count within its range, or none
    int64_t integer(const Keys& keys) const;                    // the same, required
    int64_t integer_or(const Keys& keys, int64_t fallback) const;
    std::string string_or(const char* key, const std::string& fallback) const;
    // rope_parameters.rope_theta (transformers 5) or rope_theta (older).
    std::optional<double> rope_theta() const;

private:
    const Json* find_number(const Keys& keys, const char** found) const;
    Json json_;
    std::string path_;
};

// The vocabulary (hf_tokenizer.cpp): tokenizer.model, else tokenizer.json, with
// tokenizer_config.json, as tokenizer.* keys; returns the token count. `embd_rows`, the rows of
// the checkpoint's token embedding (named `embd_name` in errors) when it has one, bounds every
// token id and must equal the count.
int64_t add_hf_vocab(GgufWriter& w, const std::string& dir, const HfConfig& cfg,
                     std::optional<int64_t> embd_rows, const std::string& embd_name);

// A number from a JSON file, for a message: integers as integers, anything else with all its digits.
std::string json_number_text(double d);

// A metadata value; monostate means "not written" (an optional key absent from config.json).
using MetaValue = std::variant<std::monostate, uint32_t, float, bool, std::string, std::vector<int32_t>>;

struct MetaRule {
    const char* key;  // suffix after "<arch>.", or a full "general." key
    std::function<MetaValue(const HfConfig&)> value;
};

// How a tensor's data changes on the way (shapes in PyTorch order, outermost first).
enum class Transform {
    None,
    PermuteQ,      // rows regrouped from NeoX halves to GPT-J pairs per head (llama.cpp's permute)
    PermuteK,      // the same with the KV head count
    NegExp,        // A = -exp(A_log)
    Squeeze,       // drop dimensions of size 1 (conv1d [C, 1, K] → [C, K])
    Column,        // [n] → [n, 1] (Mamba-2 D)
    NegExpColumn,  // both (Mamba-2 A)
    GroupRows,     // [d_inner] → [n_groups, d_inner / n_groups] (Mamba-2 gated norm)
    GateHalf,      // fused experts [E, 2·ff, d]: the first ff rows of each
    UpHalf,        // ... and the second
};

// `hf` may hold {bid} (block) and {xid} (expert); rules with {xid} stack the experts of a block
// into one 3-D tensor [E, rows, cols], emitted where its first expert appears.
struct TensorRule {
    const char* hf;
    const char* gguf;
    Transform transform = Transform::None;
};

struct HfArchitecture {
    const char* hf_class;   // config.json "architectures"[0]
    const char* gguf_arch;  // general.architecture
    std::vector<MetaRule> keys;
    std::vector<TensorRule> tensors;
};

// nullptr when strata has no table for the class.
const HfArchitecture* find_hf_architecture(const std::string& hf_class);
std::string hf_architecture_names();

}  // namespace strata
