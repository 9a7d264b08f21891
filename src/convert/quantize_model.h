// Writing a whole model in chosen tensor types, as llama.cpp's `llama-quantize` does: the mix
// (Q4_K_M, Q8_0, ...) picks each tensor's type with llama.cpp's rules (llama_tensor_get_type:
// which tensors get more bits, which stay float, fallbacks for rows that are not a multiple of
// the block size), and tensors are converted one at a time while the file is written.
// `strata quantize` feeds it a GGUF file; `strata convert` feeds it a converted checkpoint.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "format/gguf.h"
#include "tensor/ggml_type.h"

namespace strata {

// A target of `strata quantize` / `strata convert --type`: llama.cpp's llama_ftype.
struct QuantMix {
    const char* name;       // "Q4_K_M", as llama-quantize spells it
    uint32_t file_type;     // the llama_ftype id written to general.file_type
    GgmlType default_type;  // the type of tensors no rule singles out
};
// Case-insensitive ("q4_k_m"); nullptr when unknown.
const QuantMix* find_quant_mix(std::string_view name);
// The mixes strata writes, comma-separated (for --help and errors).
std::string quant_mix_names();

// What the mix rules look at besides tensor names (llama.cpp reads them from the hparams).
struct ModelFacts {
    std::string arch;  // general.architecture
    int n_layer = 0;
    int n_head = 0, n_head_kv = 0;  // of layer 0, for the grouped-query ratio
    int n_expert = 0;
};

// One tensor of the output file.
struct TensorSource {
    std::string name;
    std::vector<int64_t> ne;                        // ggml order, ne[0] the row length
    GgmlType type = GgmlType::F32;                  // as stored in the source
    const void* raw = nullptr;                      // its bytes in `type`, copied when kept
    std::function<void(std::vector<float>&)> load;  // its values as float32 (resizes)
    size_t source_bytes = 0;                        // for the before/after summary
};

// A model ready to be written: metadata in final order (general.file_type and
// general.quantization_version are set by write_model), its tensors in final order, and whatever
// the loaders read from kept alive until the write is done.
struct ModelPlan {
    GgufWriter writer;
    ModelFacts facts;
    std::vector<TensorSource> tensors;
    std::vector<std::shared_ptr<const void>> keep_alive;
    std::vector<std::string> inputs;  // every file read: the output may be none of them
    std::vector<std::string> notes;  // what the user should hear about the conversion
};

struct WriteSummary {
    size_t n_tensors = 0;
    int64_t n_params = 0;
    uint64_t bytes_in = 0, bytes_out = 0;
    std::vector<std::string> fallbacks;                 // tensors whose row length forced another type
    std::vector<std::pair<GgmlType, int>> type_counts;  // tensors written per type
    double seconds = 0;
    double bpw_in() const { return n_params ? 8.0 * static_cast<double>(bytes_in) / static_cast<double>(n_params) : 0; }
    double bpw_out() const {
        return n_params ? 8.0 * static_cast<double>(bytes_out) / static_cast<double>(n_params) : 0;
    }
};

// Two lines for the CLI: tensors per type, and sizes before/after with bits per weight.
std::string summary_text(const WriteSummary& s, const std::string& path);

// The type of every tensor under `mix` (same order as `tensors`); each fallback forced by a row
// length adds a line to fallback_notes.
std::vector<GgmlType> choose_tensor_types(const ModelFacts& facts, const std::vector<TensorSource>& tensors,
                                          const QuantMix& mix, std::vector<std::string>* fallback_notes = nullptr);

// Converts and writes the plan to `path` through a temporary file renamed at the end, so a
// failure never leaves a partial file under that name; refuses a `path` that is one of
// plan.inputs or an existing non-regular file. Rows are quantized on n_threads threads;
// a progress bar shows on a terminal.
WriteSummary write_model(const ModelPlan& plan, const QuantMix& mix, const std::string& path, int n_threads);

// `strata quantize`: the tensors of a GGUF file in llama-quantize's order (global tensors, then
// block by block, each by name), metadata copied.
ModelPlan plan_from_gguf(std::shared_ptr<const GgufFile> file);

}  // namespace strata
