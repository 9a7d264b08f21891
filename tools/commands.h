// Each subcommand lives in its own file and registers itself on the CLI11 app.
#pragma once

#include <CLI/CLI.hpp>

void register_info(CLI::App& app);
void register_tokenize(CLI::App& app);
void register_run(CLI::App& app);
void register_perplexity(CLI::App& app);
