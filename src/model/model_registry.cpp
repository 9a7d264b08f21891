// The one table of architectures: general.architecture → builder. Adding a family is a row here.
#include <functional>

#include "backend/backend.h"
#include "model/jamba.h"
#include "model/mamba.h"
#include "model/model.h"
#include "model/transformer.h"
#include "util/error.h"

namespace strata {

namespace {

struct Architecture {
    const char* name;
    std::function<std::unique_ptr<Model>(const GgufFile&, Backend&)> build;
};

const std::vector<Architecture>& architectures() {
    static const std::vector<Architecture> table = {
        // llama.cpp permutes Q/K of llama/mistral at conversion, so GGUF tensors take GPT-J rope;
        // qwen2 is converted unpermuted and uses NeoX rope.
        {"llama", [](const GgufFile& f, Backend& b) { return make_transformer(f, b, false); }},
        {"mistral", [](const GgufFile& f, Backend& b) { return make_transformer(f, b, false); }},
        {"qwen2", [](const GgufFile& f, Backend& b) { return make_transformer(f, b, true); }},
        // Mixtral is `llama` with experts (renormalized top-k); Qwen2-MoE keeps the raw top-k
        // probabilities (norm_topk_prob false).
        {"qwen2moe", [](const GgufFile& f, Backend& b) { return make_transformer(f, b, true, {.normalize_top_k = false}); }},
        {"mamba", make_mamba},
        {"mamba2", make_mamba2},
        {"jamba", make_jamba},
    };
    return table;
}

}  // namespace

std::string supported_architectures() {
    std::string s;
    for (const Architecture& a : architectures()) s += (s.empty() ? "" : ", ") + std::string(a.name);
    return s;
}

std::unique_ptr<Model> load_model(const GgufFile& file, Backend& backend) {
    const std::string arch = file.get_string("general.architecture");
    for (const Architecture& a : architectures()) {
        if (arch == a.name) return a.build(file, backend);
    }
    fail(file.path(), ": architecture '", arch, "' is not supported (supported: ", supported_architectures(), ")");
}

}  // namespace strata
