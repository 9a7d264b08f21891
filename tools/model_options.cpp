#include "model_options.h"

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <fstream>
#include <string>

#include "decode/speculative.h"
#include "tensor/ggml_type.h"
#include "util/cpu_features.h"
#include "util/error.h"

void add_model_options(CLI::App* cmd, ModelOptions& o) {
    cmd->add_option("-m,--model", o.path, "GGUF model file")->required();
    cmd->add_option("-t,--threads", o.threads, "CPU threads (default: physical cores)")->check(CLI::Range(0, 1 << 16));
    cmd->add_option("-c,--ctx-size", o.n_ctx, "Context size in tokens (default: the model's, at most 4096)")
        ->check(CLI::Range(0, INT_MAX));
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

// What this process may still allocate: /proc/meminfo's MemAvailable, or the cgroup's limit
// less its usage when that is lower (containers). 0 when neither can be read.
uint64_t available_memory() {
    uint64_t avail = 0;
    std::ifstream meminfo("/proc/meminfo");
    for (std::string line; std::getline(meminfo, line);) {
        unsigned long long kib = 0;
        if (std::sscanf(line.c_str(), "MemAvailable: %llu kB", &kib) == 1) avail = kib * 1024;
    }
    unsigned long long max = 0, current = 0;
    std::ifstream limit("/sys/fs/cgroup/memory.max"), usage("/sys/fs/cgroup/memory.current");
    if ((limit >> max) && (usage >> current) && max > current && (avail == 0 || max - current < avail)) {
        avail = max - current;
    }
    return avail;
}

std::string gib(uint64_t bytes) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f GiB", static_cast<double>(bytes) / (1u << 30));
    return buf;
}

void check_context(const strata::Model& model, int n_ctx, const char* flag) {
    const int n_train = model.info().n_ctx_train;
    // One position's KV rows, from a state of one position (recurrent models have none).
    const uint64_t per_position = model.new_state(1)->bytes_per_position();
    const uint64_t need = per_position * static_cast<uint64_t>(n_ctx);  // < 2^31 × a row: no overflow
    const uint64_t avail = available_memory();
    if (avail > 0 && need > avail) {
        strata::fail(flag, " ", n_ctx, ": the KV cache would need ", gib(need), " (", per_position,
                     " bytes per position), but only ", gib(avail), " of memory is available; choose a smaller ",
                     flag, n_train > 0 ? " (the model was trained with " + std::to_string(n_train) + ")" : "");
    }
    if (n_train > 0 && n_ctx > n_train) {
        std::fprintf(stderr, "strata: warning: %s %d is more than the model's training context (%d): positions past it "
                     "were never trained\n", flag, n_ctx, n_train);
    }
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
    check_context(*m.model, m.n_ctx, o.ctx_flag);
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
