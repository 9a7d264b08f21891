// Each subcommand lives in its own file and registers itself here at static-initialization time:
//   static const CommandRegistration reg{30, "run", register_run};
// main() adds them to the CLI in `order`, so adding a subcommand touches no other file.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <vector>

struct CommandRegistration {
    using Register = void (*)(CLI::App&);
    CommandRegistration(int order, const char* name, Register fn);
    static std::vector<CommandRegistration*>& all();

    int order;
    const char* name;
    Register fn;
};
