// strata: one binary, one subcommand per job. Every error surfaces here as `strata: error: ...`.
#include <algorithm>
#include <cstdio>
#include <exception>

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
    s += "CUDA: on\n";
#else
    s += "CUDA: off (built without CUDA)\n";
#endif
    return s;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"strata: run large language models from GGUF files"};
    app.require_subcommand(1);
    app.set_version_flag("--version", version_text);
    auto commands = CommandRegistration::all();
    std::sort(commands.begin(), commands.end(), [](auto* a, auto* b) { return a->order < b->order; });
    for (const CommandRegistration* c : commands) c->fn(app);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    } catch (const strata::Error& e) {
        std::fflush(stdout);
        std::fprintf(stderr, "strata: error: %s\n", e.what());
        return 1;
    } catch (const std::exception& e) {
        std::fflush(stdout);
        std::fprintf(stderr, "strata: error: %s\n", e.what());
        return 1;
    }
    return 0;
}
