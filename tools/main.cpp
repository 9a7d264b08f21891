// strata: one binary, one subcommand per job. Every error surfaces here as `strata: error: ...`.
#include <algorithm>
#include <cstring>
#include <utility>
#include <cstdio>
#include <exception>
#include <new>

#include "commands.h"
#include "util/cpu_features.h"
#include "util/error.h"

CommandRegistration::CommandRegistration(int o, const char* n, Register f) : order(o), name(n), fn(f) {
    all().push_back(this);
}

std::vector<CommandRegistration*>& CommandRegistration::all() {
    static std::vector<CommandRegistration*> registry;
    return registry;
}

namespace {

std::string version_text() {
    std::string s = std::string("strata ") + STRATA_VERSION + "\n";
    s += "CPU features: " + strata::CpuFeatures::get().to_string() + "\n";
#ifdef STRATA_CUDA
    s += "CUDA: built in (a backend for every op, used by the tests; the CLI runs models on the CPU so far)\n";
#else
    s += "CUDA: off (built without CUDA)\n";
#endif
    return s;
}

// llama.cpp spells some options as one dash and several letters (-md, -sys); CLI11 reads those
// as bundled short flags, so they are rewritten to their long names before parsing.
void rewrite_llamacpp_aliases(int argc, char** argv) {
    static const std::pair<const char*, const char*> kAliases[] = {
        {"-md", "--model-draft"}, {"-sys", "--system-prompt"}, {"-ctk", "--cache-type-k"}, {"-ctv", "--cache-type-v"}};
    for (int i = 1; i < argc; ++i) {
        for (const auto& [alias, name] : kAliases) {
            if (std::strcmp(argv[i], alias) == 0) argv[i] = const_cast<char*>(name);
        }
    }
}

}  // namespace

int main(int argc, char** argv) {
    rewrite_llamacpp_aliases(argc, argv);
    CLI::App app{"strata: run large language models from GGUF files"};
    app.require_subcommand(1);
    app.set_version_flag("--version", version_text);
    auto commands = CommandRegistration::all();
    std::sort(commands.begin(), commands.end(), [](auto* a, auto* b) { return a->order < b->order; });
    for (const CommandRegistration* c : commands) c->fn(app);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        // --help and --version end here too (exit code 0). A real parse error is reported and
        // exits 1 like every other error (CLI11's own codes run from 101 to 114).
        if (e.get_exit_code() == 0) return app.exit(e);
        std::fprintf(stderr, "strata: error: %s\nRun with --help for more information.\n", e.what());
        return 1;
    } catch (const strata::Error& e) {
        std::fflush(stdout);
        std::fprintf(stderr, "strata: error: %s\n", e.what());
        return 1;
    } catch (const std::bad_alloc&) {
        std::fflush(stdout);
        std::fprintf(stderr, "strata: error: out of memory\n");
        return 1;
    } catch (const std::exception& e) {
        std::fflush(stdout);
        std::fprintf(stderr, "strata: error: %s\n", e.what());
        return 1;
    }
    return 0;
}
