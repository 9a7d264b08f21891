#include "model_options.h"

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "decode/speculative.h"
#include "tensor/ggml_type.h"
#include "util/cpu_features.h"
#include "util/error.h"

void add_model_options(CLI::App* cmd, ModelOptions& o) {
    cmd->add_option("-m,--model", o.path, "GGUF model file")->required();
    cmd->add_option("-t,--threads", o.threads, "CPU threads (default: physical cores)");
    cmd->add_option("-c,--ctx-size", o.n_ctx, "Context size in tokens (default: the model's, at most 4096)");
    cmd->add_flag("--no-mmap", o.no_mmap, "Read the file into memory instead of mapping it");
    cmd->add_option("--cache-type-k", o.cache_type_k, "KV cache type for keys (-ctk): f16 (default), f32, q8_0");
    cmd->add_option("--cache-type-v", o.cache_type_v, "KV cache type for values (-ctv): f16 (default), f32, q8_0");
}

namespace {

strata::GgmlType cache_type(const char* flag, const std::string& name) {
    const strata::TypeTraits* t = strata::find_type_by_name(name.c_str());
    using strata::GgmlType;
    if (!t || (t->type != GgmlType::F32 && t->type != GgmlType::F16 && t->type != GgmlType::Q8_0)) {
        strata::fail(flag, ": '", name, "' is not a KV cache type (f32, f16, q8_0)");
    }
    return t->type;
}

}  // namespace

LoadedModel load_model_for_cli(const ModelOptions& o) {
    auto start = std::chrono::steady_clock::now();
    LoadedModel m;
    m.file = strata::GgufFile::open(o.path, {.use_mmap = !o.no_mmap});
    const int threads = o.threads > 0 ? o.threads : strata::physical_cores();
    m.backend = strata::make_cpu_backend(threads);
    m.model = strata::load_model(*m.file, *m.backend);
    m.model->set_kv_cache_types({cache_type("--cache-type-k", o.cache_type_k), cache_type("--cache-type-v", o.cache_type_v)});
    m.tokenizer = std::make_unique<strata::Tokenizer>(strata::Tokenizer::from_gguf(*m.file));
    const auto& info = m.model->info();
    m.n_ctx = o.n_ctx > 0 ? o.n_ctx : std::min(info.n_ctx_train > 0 ? info.n_ctx_train : 4096, 4096);
    m.load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::fprintf(stderr, "strata: loaded %s (%s, %d layers, d=%lld, vocab %lld) in %.0f ms, %s, %d threads, ctx %d\n",
                 o.path.c_str(), info.arch.c_str(), info.n_layer, static_cast<long long>(info.n_embd),
                 static_cast<long long>(info.n_vocab), m.load_seconds * 1000, m.file->is_mapped() ? "mmap" : "read",
                 threads, m.n_ctx);
    return m;
}

LoadedModel load_draft_for_cli(const ModelOptions& options, const std::string& draft_path, const LoadedModel& target) {
    if (draft_path.empty()) return {};
    ModelOptions draft_options = options;
    draft_options.path = draft_path;
    LoadedModel d = load_model_for_cli(draft_options);
    strata::check_draft_compatible(*target.tokenizer, *d.tokenizer);
    return d;
}
